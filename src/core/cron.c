/* SPDX-License-Identifier: MIT */

/*
 * The cron parser and next-time search of cron.h. The parser is a small
 * hand-written scanner over the five fields (no sscanf, no strtol: a
 * value's digits are read here so that "+5", " 5" or "0x5" cannot slip
 * through), filling one bit set per field. The search turns the start
 * into a date once (civil_from_days, the inverse of retry.c's
 * days-from-civil), then walks the calendar forward month by month and day
 * by day, jumping over months, days and hours whose bits are clear.
 */

#include "core/cron.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MS_PER_MINUTE   60000
#define MINUTES_PER_DAY 1440
/* 400 Gregorian years: 146097 days, exactly 20871 weeks, so the calendar
 * (dates and weekdays together) repeats with this period. */
#define GREGORIAN_CYCLE_DAYS 146097
/* Longest token quoted back in a reason, so a reason stays one short line. */
#define QUOTE_MAX 16

enum cron_field {
    CRON_MINUTE,
    CRON_HOUR,
    CRON_DOM,
    CRON_MONTH,
    CRON_DOW,
    CRON_FIELD_COUNT,
};

struct field_spec {
    const char *name;         /* as the reasons spell it */
    int low, high;            /* values accepted; a step may be 1 to high */
    const char *const *names; /* three-letter names of low, low + 1, ...; or NULL */
    const char *names_range;  /* "jan-dec", for reasons */
};

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul",
                                          "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const struct field_spec field_specs[CRON_FIELD_COUNT] = {
    {"minute", 0, 59, NULL, NULL},
    {"hour", 0, 23, NULL, NULL},
    {"day-of-month", 1, 31, NULL, NULL},
    {"month", 1, 12, month_names, "jan-dec"},
    /* 0-7 as in Vixie cron: 7 is Sunday too, so "*" is 0-7 and "*\/2" is
     * 0,2,4,6. */
    {"day-of-week", 0, 7, dow_names, "sun-sat"},
};

struct cron_macro {
    const char *name;
    const char *fields;
};

static const struct cron_macro cron_macros[] = {
    {"@hourly", "0 * * * *"},   {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
    {"@weekly", "0 0 * * 0"},   {"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
};

struct parser {
    const char *text;
    size_t pos;
    char *why;
    size_t why_len;
    size_t bad_at;
};

static int
is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static int
is_alpha(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static int
is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* A field ends at a blank or at the end of the text. */
static int
is_field_end(char ch)
{
    return ch == '\0' || is_blank(ch);
}

static char
lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

static char
cur(const struct parser *p)
{
    return p->text[p->pos];
}

/* Record the failure: the reason and where. Returns -1 for the caller to return. */
static int fail(struct parser *p, size_t at, const char *fmt, ...) PRINTF_LIKE(3, 4);

static int
fail(struct parser *p, size_t at, const char *fmt, ...)
{
    va_list ap;

    p->bad_at = at;
    if (p->why != NULL && p->why_len > 0) {
        va_start(ap, fmt);
        (void)vsnprintf(p->why, p->why_len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/*
 * text[at, at + len) made safe to quote in a one-line reason: printable
 * ASCII only (anything else becomes '?'), cut at QUOTE_MAX with "...".
 */
static void
quote(char out[QUOTE_MAX + 4], const char *text, size_t at, size_t len)
{
    size_t n = len < QUOTE_MAX ? len : QUOTE_MAX, i;

    for (i = 0; i < n; i++) {
        char ch = text[at + i];

        out[i] = ch >= 0x20 && ch < 0x7f ? ch : '?';
    }
    if (len > n) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
}

/* The character at p->pos, described for a reason: "'x'" or "byte 0x07". */
static int
fail_unexpected(struct parser *p, const struct field_spec *f)
{
    unsigned char ch = (unsigned char)cur(p);

    if (ch >= 0x20 && ch < 0x7f)
        return fail(p, p->pos, "%s: unexpected '%c'", f->name, (char)ch);
    return fail(p, p->pos, "%s: unexpected byte 0x%02x", f->name, (unsigned)ch);
}

/*
 * A run of digits at p->pos as a number, saturating at 100000 (more than
 * any field allows, so an overlong number is still "out of range" rather
 * than wrapping into it). Returns the count of digits read.
 */
static size_t
read_digits(struct parser *p, int *out)
{
    size_t n = 0;
    int v = 0;

    while (is_digit(p->text[p->pos + n])) {
        if (v < 100000)
            v = v * 10 + (p->text[p->pos + n] - '0');
        n++;
    }
    p->pos += n;
    *out = v;
    return n;
}

/* One value: a number in f's range, or one of f's names. */
static int
parse_value(struct parser *p, const struct field_spec *f, int *out)
{
    size_t at = p->pos, n;
    char q[QUOTE_MAX + 4];

    if (is_digit(cur(p))) {
        n = read_digits(p, out);
        if (*out < f->low || *out > f->high) {
            quote(q, p->text, at, n);
            return fail(p, at, "%s %s is out of range %d-%d", f->name, q, f->low, f->high);
        }
        return 0;
    }
    if (is_alpha(cur(p))) {
        for (n = 0; is_alpha(p->text[at + n]); n++)
            ;
        quote(q, p->text, at, n);
        if (f->names == NULL)
            return fail(p, at, "%s \"%s\" is not a number", f->name, q);
        for (int i = 0; n == 3 && f->names[i] != NULL; i++) {
            const char *name = f->names[i];

            if (lower(q[0]) == name[0] && lower(q[1]) == name[1] && lower(q[2]) == name[2]) {
                p->pos += n;
                *out = f->low + i;
                return 0;
            }
        }
        return fail(p, at, "%s \"%s\" is not a name (%s)", f->name, q, f->names_range);
    }
    if (is_field_end(cur(p)) || cur(p) == ',')
        return fail(p, p->pos, "%s: a range needs an end", f->name);
    return fail_unexpected(p, f);
}

/*
 * One list item: '*', a value or a range, then maybe "/step". Sets its
 * values in *bits.
 */
static int
parse_item(struct parser *p, const struct field_spec *f, uint64_t *bits)
{
    size_t item_at = p->pos;
    int low, high, step = 1, single = 0;

    if (cur(p) == '*') {
        low = f->low;
        high = f->high;
        p->pos++;
    } else {
        if (parse_value(p, f, &low) == -1)
            return -1;
        high = low;
        single = 1;
        if (cur(p) == '-') {
            p->pos++;
            if (parse_value(p, f, &high) == -1)
                return -1;
            single = 0;
            if (low > high) {
                char q[QUOTE_MAX + 4];

                quote(q, p->text, item_at, p->pos - item_at);
                return fail(p, item_at, "%s range %s runs backwards (ranges do not wrap)", f->name,
                            q);
            }
        }
    }
    if (cur(p) == '/') {
        size_t step_at = ++p->pos;
        char q[QUOTE_MAX + 4];

        if (read_digits(p, &step) == 0)
            return fail(p, step_at, "%s: '/' needs a step number", f->name);
        quote(q, p->text, step_at, p->pos - step_at);
        if (step < 1 || step > f->high)
            return fail(p, step_at, "%s step %s is out of range 1-%d", f->name, q, f->high);
        /* Vixie cron refuses "5/15"; say what to write instead. */
        if (single)
            return fail(p, item_at, "%s: a step needs '*' or a range before it (write %d-%d/%s)",
                        f->name, low, f->high, q);
    }
    for (int v = low; v <= high; v += step)
        *bits |= 1ULL << v;
    return 0;
}

/* One field: a comma-separated list of items, up to a blank or the end. */
static int
parse_field(struct parser *p, const struct field_spec *f, uint64_t *bits)
{
    *bits = 0;
    for (;;) {
        if (cur(p) == ',' || is_field_end(cur(p)))
            return fail(p, p->pos, "%s: empty list item", f->name);
        if (parse_item(p, f, bits) == -1)
            return -1;
        if (is_field_end(cur(p)))
            return 0;
        if (cur(p) != ',')
            return fail_unexpected(p, f);
        p->pos++;
    }
}

static void
skip_blanks(struct parser *p)
{
    while (is_blank(cur(p)))
        p->pos++;
}

/* The five fields from p->pos to the end of the text. */
static int
parse_fields(struct parser *p, struct cron *out)
{
    uint64_t bits[CRON_FIELD_COUNT];
    int star[CRON_FIELD_COUNT];

    for (int i = 0; i < CRON_FIELD_COUNT; i++) {
        skip_blanks(p);
        if (cur(p) == '\0')
            return fail(p, p->pos,
                        "missing the %s field (a cron expression has 5: minute hour "
                        "day-of-month month day-of-week)",
                        field_specs[i].name);
        star[i] = cur(p) == '*';
        if (parse_field(p, &field_specs[i], &bits[i]) == -1)
            return -1;
    }
    skip_blanks(p);
    if (cur(p) != '\0')
        return fail(p, p->pos,
                    "too many fields (a cron expression has 5: minute hour day-of-month month "
                    "day-of-week)");
    /* Vixie's 7 is Sunday: fold it onto 0. */
    bits[CRON_DOW] = (bits[CRON_DOW] | (bits[CRON_DOW] >> 7)) & 0x7f;
    out->minute = bits[CRON_MINUTE];
    out->hour = (uint32_t)bits[CRON_HOUR];
    out->dom = (uint32_t)bits[CRON_DOM];
    out->month = (uint16_t)bits[CRON_MONTH];
    out->dow = (uint8_t)bits[CRON_DOW];
    out->dom_star = star[CRON_DOM];
    out->dow_star = star[CRON_DOW];
    return 0;
}

/* Whether text[at, at + len) spells word, in any case. */
static int
word_is(const char *text, size_t at, size_t len, const char *word)
{
    size_t k = 0;

    while (k < len && word[k] != '\0' && lower(text[at + k]) == word[k])
        k++;
    return k == len && word[k] == '\0';
}

/* "@daily" and friends, at p->pos: the word up to a blank, then only blanks. */
static int
parse_macro(struct parser *p, struct cron *out)
{
    size_t at = p->pos, n = 0;
    char q[QUOTE_MAX + 4];

    while (!is_field_end(p->text[at + n]))
        n++;
    for (size_t i = 0; i < ARRAY_COUNT(cron_macros); i++) {
        struct parser sub = {.text = cron_macros[i].fields};

        if (!word_is(p->text, at, n, cron_macros[i].name))
            continue;
        p->pos = at + n;
        skip_blanks(p);
        if (cur(p) != '\0')
            return fail(p, p->pos, "unexpected text after %s", cron_macros[i].name);
        /* The expansions are constants that parse: a failure is a bug here. */
        if (NEVER(parse_fields(&sub, out) == -1))
            return fail(p, at, "%s: internal error", cron_macros[i].name);
        return 0;
    }
    if (word_is(p->text, at, n, "@reboot"))
        return fail(p, at, "@reboot is not supported: it has no next time");
    quote(q, p->text, at, n);
    return fail(p, at,
                "unknown macro \"%s\" (@hourly @daily @midnight @weekly @monthly @yearly "
                "@annually)",
                q);
}

int
cron_parse(const char *text, struct cron *out, char *why, size_t why_len, size_t *bad_at)
{
    struct parser p = {.text = text, .why = why, .why_len = why_len};
    struct cron c;
    int rc;

    memset(&c, 0, sizeof(c));
    if (why != NULL && why_len > 0)
        why[0] = '\0';
    if (text == NULL) {
        rc = fail(&p, 0, "no cron expression");
    } else {
        skip_blanks(&p);
        if (cur(&p) == '\0')
            rc = fail(&p, p.pos, "empty cron expression");
        else if (cur(&p) == '@')
            rc = parse_macro(&p, &c);
        else
            rc = parse_fields(&p, &c);
    }
    if (rc == -1) {
        if (bad_at != NULL)
            *bad_at = p.bad_at;
        return -1;
    }
    *out = c;
    return 0;
}

/* Floor division and modulo, for times before 1970. b > 0. */
static int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return a % b < 0 ? q - 1 : q;
}

static int
floor_mod(int64_t a, int b)
{
    return (int)(a - floor_div(a, b) * b);
}

/* Days since 1970-01-01 to the proleptic Gregorian date (Howard Hinnant's civil_from_days). */
static void
civil_from_days(int64_t days, int64_t *year, int *month, int *day)
{
    int64_t z = days + 719468;
    int64_t era = floor_div(z, GREGORIAN_CYCLE_DAYS);
    int64_t doe = z - era * GREGORIAN_CYCLE_DAYS;                        /* [0, 146096] */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    int64_t mp = (5 * doy + 2) / 153;                                    /* [0, 11], March = 0 */

    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = yoe + era * 400 + (*month <= 2);
}

static int
days_in_month(int64_t year, int month)
{
    static const int days[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);

    return month == 2 ? 28 + leap : days[month];
}

/* The lowest set bit of bits at or above from, or -1. */
static int
next_bit(uint64_t bits, int from)
{
    if (from > 63)
        return -1;
    bits &= ~0ULL << from;
    return bits == 0 ? -1 : __builtin_ctzll(bits);
}

/*
 * Whether some date has a month in months and a day of the month in doms
 * (February counted with 29 days). When a schedule needs both its dom and
 * its dow (the AND rule), this is whether it can ever fire: each date of
 * the calendar, 29 February included, falls on every day of the week
 * within the 400-year cycle.
 */
static int
some_date_exists(uint32_t months, uint32_t doms)
{
    for (int m = 1; m <= 12; m++) {
        int last = m == 2 ? 29 : days_in_month(1, m);

        if ((months >> m & 1) && (doms & (uint32_t)((2ULL << last) - 1)) != 0)
            return 1;
    }
    return 0;
}

/* Where the search stands: a day (as days since 1970 and as a date) and a time in it. */
struct walk {
    int64_t day, year;
    int month, mday, hour, minute;
};

/* On to 00:00 of the 1st of the next month. */
static void
walk_next_month(struct walk *w)
{
    w->day += days_in_month(w->year, w->month) - w->mday + 1;
    w->mday = 1;
    w->hour = w->minute = 0;
    if (++w->month > 12) {
        w->month = 1;
        w->year++;
    }
}

/* On to 00:00 of day mday of this month, which has that many days; or of the day after. */
static void
walk_to_day(struct walk *w, int mday)
{
    if (mday > days_in_month(w->year, w->month)) {
        walk_next_month(w);
        return;
    }
    w->day += mday - w->mday;
    w->mday = mday;
    w->hour = w->minute = 0;
}

/*
 * The first time at or after w's hour and minute on w's day that hours and
 * minutes allow: 1 with *at_min set (minutes since 1970), or 0 if none is
 * left that day.
 */
static int
first_time_in_day(const struct walk *w, uint64_t hours, uint64_t minutes, int64_t *at_min)
{
    int h = next_bit(hours, w->hour);
    int m = h == w->hour ? next_bit(minutes, w->minute) : next_bit(minutes, 0);

    if (h >= 0 && m < 0) {
        /* Nothing left in this hour: the first minute of the next allowed one. */
        h = next_bit(hours, w->hour + 1);
        m = next_bit(minutes, 0);
    }
    if (h < 0)
        return 0;
    *at_min = w->day * MINUTES_PER_DAY + h * 60 + m;
    return 1;
}

int64_t
cron_next(const struct cron *c, int64_t after_ms)
{
    /* Only the bits cron.h defines; a hand-made struct may carry others. */
    uint64_t minutes = c->minute & ((1ULL << 60) - 1);
    uint64_t hours = c->hour & ((1ULL << 24) - 1);
    uint32_t doms = c->dom & 0xfffffffeU;
    uint32_t months = c->month & 0x1ffeU;
    uint32_t dows = ((uint32_t)c->dow | (uint32_t)c->dow >> 7) & 0x7fU;
    int both = c->dom_star || c->dow_star; /* Vixie: then dom AND dow, else dom OR dow */
    int64_t start_min, last_day;
    struct walk w;

    if (minutes == 0 || hours == 0 || doms == 0 || months == 0 || dows == 0)
        return -1;
    if (both && !some_date_exists(months, doms))
        return -1;                                      /* "0 0 31 2 *": no such date */
    start_min = floor_div(after_ms, MS_PER_MINUTE) + 1; /* strictly after */
    w.day = floor_div(start_min, MINUTES_PER_DAY);
    w.hour = (int)(start_min - w.day * MINUTES_PER_DAY) / 60;
    w.minute = (int)(start_min - w.day * MINUTES_PER_DAY) % 60;
    civil_from_days(w.day, &w.year, &w.month, &w.mday);
    /*
     * A schedule that can fire matches some day in every window of one
     * cycle (and then at its first allowed time), so the walk ends within
     * one; the bound only guards the loop.
     */
    last_day = w.day + GREGORIAN_CYCLE_DAYS;
    while (w.day <= last_day) {
        int64_t at_min;
        int dom_ok, dow_ok;

        if (!(months >> w.month & 1)) {
            walk_next_month(&w);
            continue;
        }
        if (both && !c->dom_star && !(doms >> w.mday & 1)) {
            /* The day of the month must match: jump to the next one that does. */
            int next = next_bit(doms, w.mday);

            walk_to_day(&w, next < 0 ? 32 : next);
            continue;
        }
        dom_ok = (int)(doms >> w.mday & 1);
        dow_ok = (int)(dows >> floor_mod(w.day + 4, 7) & 1); /* 1970-01-01 was a Thursday */
        if ((both ? dom_ok && dow_ok : dom_ok || dow_ok) &&
            first_time_in_day(&w, hours, minutes, &at_min))
            return at_min > INT64_MAX / MS_PER_MINUTE ? -1 : at_min * MS_PER_MINUTE;
        walk_to_day(&w, w.mday + 1);
    }
    return -1;
}
