/* SPDX-License-Identifier: MIT */

/*
 * The retry schedules (exponential and list), the give-up rule and the
 * Retry-After parser of retry.h. All are pure:
 * no clock, no randomness, no allocation. HTTP-dates are parsed by hand
 * (no locale, no TZ, no timegm) and turned into Unix time with the
 * days-from-civil formula, so the result does not depend on the host.
 */

#include "core/retry.h"

#include <stddef.h>
#include <string.h>

#define RETRY_AFTER_MAX_MS (86400LL * 1000) /* one day, retry.h */
#define MS_PER_DAY         (86400LL * 1000)

struct retry_policy
retry_policy_default(void)
{
    static const int64_t delays[] = {
        0,
        5000,
        5 * 60000,
        30 * 60000,
        2 * 3600000LL,
        5 * 3600000LL,
        10 * 3600000LL,
        10 * 3600000LL,
    };
    struct retry_policy p = {
        .base_ms = 1000,
        .cap_ms = 600000,
        .jitter = 0.2,
        .max_attempts = (int)ARRAY_COUNT(delays) + 1,
        .delay_count = ARRAY_COUNT(delays),
        .max_age_ms = 0,
    };

    memcpy(p.delays_ms, delays, sizeof(delays));
    return p;
}

/* base << (attempt - 1), capped, without ever shifting past what int64_t holds. */
static int64_t
exponential_ms(const struct retry_policy *p, uint32_t attempt)
{
    int64_t base = p->base_ms > 0 ? p->base_ms : 0;
    int64_t cap = p->cap_ms > 0 ? p->cap_ms : 0;
    uint32_t shift = attempt > 1 ? attempt - 1 : 0;
    int64_t delay;

    if (base == 0)
        delay = 0;
    else if (shift >= 63 || base > (cap >> shift))
        delay = cap;
    else
        delay = base << shift;
    return delay > cap ? cap : delay;
}

static int64_t
listed_ms(const struct retry_policy *p, uint32_t attempt)
{
    size_t n = p->delay_count < RETRY_MAX_DELAYS ? p->delay_count : RETRY_MAX_DELAYS;
    size_t i = attempt > 1 ? attempt - 1 : 0;

    if (i >= n)
        i = n - 1; /* past the list: retry_exhausted() stops the job before this */
    return p->delays_ms[i] > 0 ? p->delays_ms[i] : 0;
}

int64_t
retry_delay_ms(const struct retry_policy *p, uint32_t attempt, double r)
{
    double jitter = p->jitter;
    int64_t delay, cut;

    delay = p->delay_count > 0 ? listed_ms(p, attempt) : exponential_ms(p, attempt);

    /* NaN fails every comparison, so it ends up as "no jitter". */
    if (!(jitter > 0.0))
        return delay;
    if (jitter > 1.0)
        jitter = 1.0;
    if (!(r > 0.0))
        return delay;
    if (r >= 1.0)
        r = 0.999999;
    cut = (int64_t)((double)delay * jitter * r);
    if (cut < 0 || cut > delay)
        cut = delay;
    return delay - cut;
}

int
retry_attempt_limit(const struct retry_policy *p)
{
    int limit = p->max_attempts;

    if (p->delay_count > 0) {
        size_t n = p->delay_count < RETRY_MAX_DELAYS ? p->delay_count : RETRY_MAX_DELAYS;

        /* n + 1 <= 33, so the cast is exact. */
        if (limit <= 0 || (size_t)limit > n + 1)
            limit = (int)n + 1;
    }
    return limit >= 1 ? limit : 1;
}

int
retry_exhausted(const struct retry_policy *p, int attempts, int64_t created_at_ms, int64_t now_ms)
{
    if (attempts >= retry_attempt_limit(p))
        return 1;
    if (p->max_age_ms <= 0 || now_ms <= created_at_ms)
        return 0;
    /* now_ms - created_at_ms could overflow for absurd inputs: compare without it. */
    if (created_at_ms < 0 && now_ms > INT64_MAX + created_at_ms)
        return 1;
    return now_ms - created_at_ms > p->max_age_ms;
}

static int
is_space(char c)
{
    return c == ' ' || c == '\t';
}

static int
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static char
lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The year that contains day number days (since 1970-01-01). */
static int64_t
year_of_days(int64_t days)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;

    return yoe + era * 400 + (mp >= 10);
}

static int
days_in_month(int64_t y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : days[m - 1];
}

/* A cursor over the value; every parser advances it or fails. */
struct scan {
    const char *p;
    const char *end;
};

/* Match word (case-insensitively) at the cursor. */
static int
scan_word(struct scan *s, const char *word)
{
    size_t n = strlen(word);

    if ((size_t)(s->end - s->p) < n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (lower(s->p[i]) != lower(word[i]))
            return -1;
    }
    s->p += n;
    return 0;
}

/* Exactly n digits (1 to 4). */
static int
scan_digits(struct scan *s, int n, int *out)
{
    int v = 0;

    if (s->end - s->p < n)
        return -1;
    for (int i = 0; i < n; i++) {
        if (!is_digit(s->p[i]))
            return -1;
        v = v * 10 + (s->p[i] - '0');
    }
    s->p += n;
    *out = v;
    return 0;
}

static int
scan_char(struct scan *s, char c)
{
    if (s->p == s->end || *s->p != c)
        return -1;
    s->p++;
    return 0;
}

static const char *const month_names[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
static const char *const day_short[7] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
static const char *const day_long[7] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                        "Friday", "Saturday", "Sunday"};

static int
scan_month(struct scan *s, int *month)
{
    for (int i = 0; i < 12; i++) {
        if (scan_word(s, month_names[i]) == 0) {
            *month = i + 1;
            return 0;
        }
    }
    return -1;
}

/* "08:49:37" */
static int
scan_time(struct scan *s, int *h, int *m, int *sec)
{
    if (scan_digits(s, 2, h) == -1 || scan_char(s, ':') == -1 || scan_digits(s, 2, m) == -1 ||
        scan_char(s, ':') == -1 || scan_digits(s, 2, sec) == -1)
        return -1;
    return 0;
}

struct date {
    int64_t year;
    int month, day, hour, min, sec;
};

/* IMF-fixdate after the day name: ", 06 Nov 1994 08:49:37 GMT" */
static int
scan_imf_rest(struct scan *s, struct date *d)
{
    int year;

    if (scan_char(s, ',') == -1 || scan_char(s, ' ') == -1 || scan_digits(s, 2, &d->day) == -1 ||
        scan_char(s, ' ') == -1 || scan_month(s, &d->month) == -1 || scan_char(s, ' ') == -1 ||
        scan_digits(s, 4, &year) == -1 || scan_char(s, ' ') == -1 ||
        scan_time(s, &d->hour, &d->min, &d->sec) == -1 || scan_char(s, ' ') == -1 ||
        scan_word(s, "GMT") == -1)
        return -1;
    d->year = year;
    return 0;
}

/*
 * RFC 850 after the day name: ", 06-Nov-94 08:49:37 GMT". A two-digit year
 * that would be more than 50 years in the future is the most recent past
 * year with those digits (RFC 9110 §5.6.7).
 */
static int
scan_rfc850_rest(struct scan *s, struct date *d, int64_t now_ms)
{
    int yy;
    int64_t now_year, year;

    if (scan_char(s, ',') == -1 || scan_char(s, ' ') == -1 || scan_digits(s, 2, &d->day) == -1 ||
        scan_char(s, '-') == -1 || scan_month(s, &d->month) == -1 || scan_char(s, '-') == -1 ||
        scan_digits(s, 2, &yy) == -1 || scan_char(s, ' ') == -1 ||
        scan_time(s, &d->hour, &d->min, &d->sec) == -1 || scan_char(s, ' ') == -1 ||
        scan_word(s, "GMT") == -1)
        return -1;
    now_year = year_of_days(now_ms / MS_PER_DAY);
    /* Keep the year four digits long even for an absurd "now". */
    if (now_year < 100)
        now_year = 100;
    if (now_year > 9899)
        now_year = 9899;
    year = now_year - now_year % 100 + yy;
    if (year > now_year + 50)
        year -= 100;
    d->year = year;
    return 0;
}

/* asctime after the day name: " Nov  6 08:49:37 1994" */
static int
scan_asctime_rest(struct scan *s, struct date *d)
{
    int year;

    if (scan_char(s, ' ') == -1 || scan_month(s, &d->month) == -1 || scan_char(s, ' ') == -1)
        return -1;
    if (scan_char(s, ' ') == 0) {
        if (scan_digits(s, 1, &d->day) == -1)
            return -1;
    } else if (scan_digits(s, 2, &d->day) == -1) {
        return -1;
    }
    if (scan_char(s, ' ') == -1 || scan_time(s, &d->hour, &d->min, &d->sec) == -1 ||
        scan_char(s, ' ') == -1 || scan_digits(s, 4, &year) == -1)
        return -1;
    d->year = year;
    return 0;
}

static int
scan_http_date(struct scan *s, int64_t now_ms, struct date *d)
{
    struct scan save = *s;

    /* The long day names first: "Sunday" must not match as "Sun" + "day". */
    for (int i = 0; i < 7; i++) {
        *s = save;
        if (scan_word(s, day_long[i]) == 0)
            return scan_rfc850_rest(s, d, now_ms);
    }
    for (int i = 0; i < 7; i++) {
        *s = save;
        if (scan_word(s, day_short[i]) == 0) {
            if (s->p < s->end && *s->p == ',')
                return scan_imf_rest(s, d);
            return scan_asctime_rest(s, d);
        }
    }
    return -1;
}

static int
parse_date(struct scan *s, int64_t now_ms, int64_t *out_delay_ms)
{
    struct date d = {0};
    int64_t at_ms;

    if (scan_http_date(s, now_ms, &d) == -1 || s->p != s->end)
        return -1;
    if (d.month < 1 || d.month > 12 || d.day < 1 || d.day > days_in_month(d.year, d.month) ||
        d.hour > 23 || d.min > 59 || d.sec > 60)
        return -1;
    /* Years have four digits at most (see above), so this cannot overflow. */
    at_ms = (days_from_civil(d.year, d.month, d.day) * 86400 + d.hour * 3600 + d.min * 60 + d.sec) *
            1000;
    if (at_ms <= now_ms)
        *out_delay_ms = 0;
    else if (now_ms < 0 && at_ms > INT64_MAX + now_ms)
        *out_delay_ms = RETRY_AFTER_MAX_MS;
    else
        *out_delay_ms = at_ms - now_ms < RETRY_AFTER_MAX_MS ? at_ms - now_ms : RETRY_AFTER_MAX_MS;
    return 0;
}

/* delay-seconds: 1*DIGIT, saturating at one day. */
static int
parse_seconds(struct scan *s, int64_t *out_delay_ms)
{
    int64_t secs = 0;

    if (s->p == s->end)
        return -1;
    for (; s->p < s->end; s->p++) {
        if (!is_digit(*s->p))
            return -1;
        if (secs < RETRY_AFTER_MAX_MS / 1000)
            secs = secs * 10 + (*s->p - '0');
    }
    *out_delay_ms = secs < RETRY_AFTER_MAX_MS / 1000 ? secs * 1000 : RETRY_AFTER_MAX_MS;
    return 0;
}

int
retry_after_parse(const char *value, int64_t now_ms, int64_t *out_delay_ms)
{
    struct scan s;
    int64_t delay;

    if (value == NULL)
        return -1;
    s.p = value;
    s.end = value + strlen(value);
    while (s.p < s.end && is_space(*s.p))
        s.p++;
    while (s.end > s.p && is_space(s.end[-1]))
        s.end--;
    if (s.p == s.end)
        return -1;
    if (is_digit(*s.p)) {
        if (parse_seconds(&s, &delay) == -1)
            return -1;
    } else if (parse_date(&s, now_ms, &delay) == -1) {
        return -1;
    }
    *out_delay_ms = delay;
    return 0;
}
