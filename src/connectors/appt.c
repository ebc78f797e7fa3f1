/* SPDX-License-Identifier: MIT */

/*
 * The canonical appointment (appt.h): wall-clock arithmetic, zones through
 * libical's zone data, normalisation and comparison. The formats live
 * elsewhere: iCalendar in ical.c, Google's JSON in gcal_event.c, Graph's in
 * graph_event.c. This file knows none of them.
 */

#include "connectors/appt.h"

#include <ctype.h>
#include <libical/ical.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "core/xmalloc.h"
#include "model/normalize.h"
#include "model/value.h"

/* Limits on what one appointment may hold: inputs from the network are
 * bounded before anything is built from them. */
#define APPT_MAX_TEXT_LEN  ((size_t)256 * 1024) /* a title, description or location */
#define APPT_MAX_LIST      5000                 /* attendees, exdates, rdates, exceptions */
#define APPT_MAX_RRULE_LEN 1024

/* cJSON allocates with malloc(); like xmalloc(), running out aborts. */
static cJSON *
need(cJSON *v)
{
    ASSERT(v != NULL);
    return v;
}

static const cJSON *
get(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* Whether v is absent or JSON null. */
static int
is_none(const cJSON *v)
{
    return v == NULL || cJSON_IsNull(v);
}

/* --- wall-clock time ------------------------------------------------------ */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * algorithm); m in 1..12. */
static int64_t
days_from_civil(int64_t y, int64_t m, int64_t d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, struct appt_fields *f)
{
    int64_t era, doe, yoe, doy, mp, m;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    m = mp < 10 ? mp + 3 : mp - 9;
    f->day = (int)(doy - (153 * mp + 2) / 5 + 1);
    f->month = (int)m;
    f->year = (int)(yoe + era * 400 + (m <= 2));
}

int64_t
appt_civil(int year, int month, int day, int hour, int minute, int second)
{
    int64_t y = year, m = (int64_t)month - 1;

    y += m >= 0 ? m / 12 : (m - 11) / 12;
    m = ((m % 12) + 12) % 12;
    return days_from_civil(y, m + 1, 1) * APPT_DAY_S + ((int64_t)day - 1) * APPT_DAY_S +
           (int64_t)hour * 3600 + (int64_t)minute * 60 + second;
}

void
appt_civil_split(int64_t civil_s, struct appt_fields *out)
{
    int64_t days =
        civil_s >= 0 ? civil_s / APPT_DAY_S : -((-civil_s + APPT_DAY_S - 1) / APPT_DAY_S);
    int64_t rest = civil_s - days * APPT_DAY_S;

    civil_from_days(days, out);
    out->hour = (int)(rest / 3600);
    out->minute = (int)(rest / 60 % 60);
    out->second = (int)(rest % 60);
    /* 1970-01-01 was a Thursday (4). */
    out->weekday = (int)(((days % 7) + 7 + 4) % 7);
}

static int
days_in_month(int year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

    return month == 2 && leap ? 29 : days[month - 1];
}

/* Exactly n digits at *p; stops at the first non-digit, so it never reads
 * past the terminating NUL. */
static int
digits(const char **p, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        char c = (*p)[i];

        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int
expect(const char **p, char c)
{
    if (**p != c)
        return -1;
    (*p)++;
    return 0;
}

/* The offset after a time: "Z", "+03:00", "+0300" or "+03". */
static int
parse_offset(const char **p, struct appt_text *out)
{
    int sign, oh, om = 0;

    if (**p == 'Z' || **p == 'z') {
        (*p)++;
        out->has_offset = 1;
        return 0;
    }
    if (**p != '+' && **p != '-')
        return 0;
    sign = **p == '-' ? -1 : 1;
    (*p)++;
    if (digits(p, 2, &oh) != 0)
        return -1;
    if (**p == ':') {
        (*p)++;
        if (digits(p, 2, &om) != 0)
            return -1;
    } else if (**p >= '0' && **p <= '9' && digits(p, 2, &om) != 0) {
        return -1;
    }
    if (oh > 23 || om > 59)
        return -1;
    out->has_offset = 1;
    out->offset_s = sign * (oh * 3600 + om * 60);
    return 0;
}

/* "HH:MM[:SS[.fraction]]" at *p, after the 'T'; the fraction is dropped. */
static int
parse_time_of_day(const char **p, int *h, int *mi, int *sec)
{
    *sec = 0;
    if (digits(p, 2, h) != 0 || expect(p, ':') != 0 || digits(p, 2, mi) != 0)
        return -1;
    if (**p == ':') {
        (*p)++;
        if (digits(p, 2, sec) != 0)
            return -1;
        if (**p == '.' || **p == ',') {
            (*p)++;
            if (**p < '0' || **p > '9')
                return -1;
            while (**p >= '0' && **p <= '9')
                (*p)++;
        }
    }
    return *h > 23 || *mi > 59 || *sec > 59 ? -1 : 0;
}

int
appt_text_parse(const char *s, struct appt_text *out)
{
    const char *p = s;
    int y, mo, d, h, mi, sec;

    memset(out, 0, sizeof(*out));
    if (s == NULL || digits(&p, 4, &y) != 0 || expect(&p, '-') != 0 || digits(&p, 2, &mo) != 0 ||
        expect(&p, '-') != 0 || digits(&p, 2, &d) != 0)
        return -1;
    if (y < 1 || y > 3000 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return -1;
    if (*p == '\0') {
        out->is_date = 1;
        out->civil_s = appt_civil(y, mo, d, 0, 0, 0);
        return 0;
    }
    if ((*p != 'T' && *p != 't') || (p++, parse_time_of_day(&p, &h, &mi, &sec)) != 0 ||
        parse_offset(&p, out) != 0 || *p != '\0')
        return -1;
    out->civil_s = appt_civil(y, mo, d, h, mi, sec);
    return 0;
}

enum text_form {
    FORM_INSTANT,
    FORM_LOCAL,
    FORM_DATE
};

static int
format_as(int64_t s, enum text_form form, char out[APPT_TEXT_MAX])
{
    struct appt_fields f;
    char text[96]; /* GCC cannot see that the fields are bounded */

    out[0] = '\0';
    if (s < APPT_CIVIL_MIN || s > APPT_CIVIL_MAX)
        return -1;
    appt_civil_split(s, &f);
    if (form == FORM_DATE)
        (void)snprintf(text, sizeof(text), "%04d-%02d-%02d", f.year, f.month, f.day);
    else
        (void)snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d%s", f.year, f.month,
                       f.day, f.hour, f.minute, f.second, form == FORM_INSTANT ? "Z" : "");
    if (strlen(text) >= APPT_TEXT_MAX)
        return -1;
    memcpy(out, text, strlen(text) + 1);
    return 0;
}

int
appt_format_instant(int64_t utc_s, char out[APPT_TEXT_MAX])
{
    return format_as(utc_s, FORM_INSTANT, out);
}

int
appt_format_local(int64_t civil_s, char out[APPT_TEXT_MAX])
{
    return format_as(civil_s, FORM_LOCAL, out);
}

int
appt_format_date(int64_t civil_s, char out[APPT_TEXT_MAX])
{
    return format_as(civil_s, FORM_DATE, out);
}

/* --- time zones ----------------------------------------------------------- */

static int
is_utc_name(const char *s)
{
    static const char *const names[] = {
        "UTC",           "Etc/UTC",   "GMT",       "Etc/GMT",       "Z",
        "Zulu",          "Etc/Zulu",  "UCT",       "Etc/UCT",       "Universal",
        "Etc/Universal", "GMT0",      "Etc/GMT0",  "GMT+0",         "GMT-0",
        "Etc/GMT+0",     "Etc/GMT-0", "Greenwich", "Etc/Greenwich",
    };

    for (size_t i = 0; i < ARRAY_COUNT(names); i++) {
        if (strcasecmp(s, names[i]) == 0)
            return 1;
    }
    return 0;
}

/* Whether s may be handed to libical as a zone name: libical builds a file
 * path from it, so no "..", no leading '/', nothing but the characters IANA
 * names use. */
static int
tz_name_plausible(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n >= APPT_TZ_MAX || s[0] == '/' || s[n - 1] == '/')
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (!isalnum(c) && c != '/' && c != '_' && c != '-' && c != '+')
            return 0;
        if (c == '/' && s[i + 1] == '/')
            return 0;
    }
    return 1;
}

/* The zone libical knows by that name; NULL if none. */
static icaltimezone *
zone_named(const char *name)
{
    if (!tz_name_plausible(name))
        return NULL;
    return icaltimezone_get_builtin_timezone(name);
}

int
appt_tz_canonical(const char *name, char out[APPT_TZ_MAX])
{
    const char *cand = name;
    int slashes = 0;

    out[0] = '\0';
    if (name == NULL || name[0] == '\0')
        return 1;
    /* The name itself, then (for a vendor TZID that starts with '/') each
     * suffix after a '/', longest first. */
    for (size_t i = 0; cand != NULL; i++) {
        if (is_utc_name(cand))
            return 1;
        if (zone_named(cand) != NULL) {
            (void)snprintf(out, APPT_TZ_MAX, "%s", cand);
            return 1;
        }
        if (name[0] != '/')
            return 0;
        cand = NULL;
        for (; name[i] != '\0' && slashes < 16; i++) {
            if (name[i] == '/') {
                slashes++;
                cand = name + i + 1;
                break;
            }
        }
    }
    return 0;
}

/* libical's offset of a zone at a UTC instant, for appt_local_to_utc(). */
static int
zone_offset(void *zone, int64_t utc_s)
{
    struct icaltimetype tt =
        icaltime_from_timet_with_zone((time_t)utc_s, 0, icaltimezone_get_utc_timezone());
    int is_daylight = 0;
    int off = icaltimezone_get_utc_offset_of_utc_time((icaltimezone *)zone, &tt, &is_daylight);

    /* Real offsets lie within ±15 h; anything else is broken zone data. */
    return off >= -26 * 3600 && off <= 26 * 3600 ? off : 0;
}

int64_t
appt_local_to_utc(appt_utc_offset_fn *offset_at, void *zone, int64_t civil_s)
{
    /* The offsets in force a day before and a day after: around one local
     * time there is at most one change, so these are the two candidates. */
    int before = offset_at(zone, civil_s - APPT_DAY_S);
    int after = offset_at(zone, civil_s + APPT_DAY_S);
    int64_t u1 = civil_s - before, u2 = civil_s - after;
    int ok1 = offset_at(zone, u1) == before, ok2 = offset_at(zone, u2) == after;

    if (ok1 && ok2)
        return u1 < u2 ? u1 : u2; /* repeated: the first of the two */
    if (ok1)
        return u1;
    if (ok2)
        return u2;
    return u1; /* skipped: the offset before the gap */
}

/* The zone for tz ("" is UTC: *zone NULL). Returns 0, or -1 if unknown. */
static int
zone_for(const char *tz, icaltimezone **zone, struct error *err)
{
    char canon[APPT_TZ_MAX];

    *zone = NULL;
    if (!appt_tz_canonical(tz, canon))
        return error_set(err, ERROR_MAPPING, "unknown time zone \"%.64s\"", tz);
    if (canon[0] != '\0')
        *zone = zone_named(canon);
    return 0;
}

int
appt_tz_local_to_utc(const char *tz, int64_t civil_s, int64_t *utc_s, struct error *err)
{
    icaltimezone *zone;
    int64_t u;

    if (zone_for(tz, &zone, err) != 0)
        return -1;
    u = zone == NULL ? civil_s : appt_local_to_utc(zone_offset, zone, civil_s);
    if (u < APPT_CIVIL_MIN || u > APPT_CIVIL_MAX)
        return error_set(err, ERROR_MAPPING, "a time outside years 0001-3000");
    *utc_s = u;
    return 0;
}

int
appt_tz_utc_to_local(const char *tz, int64_t utc_s, int64_t *civil_s, struct error *err)
{
    icaltimezone *zone;
    int64_t l;

    if (zone_for(tz, &zone, err) != 0)
        return -1;
    l = zone == NULL ? utc_s : utc_s + zone_offset(zone, utc_s);
    if (l < APPT_CIVIL_MIN || l > APPT_CIVIL_MAX)
        return error_set(err, ERROR_MAPPING, "a time outside years 0001-3000");
    *civil_s = l;
    return 0;
}

/* --- one point in time ---------------------------------------------------- */

/* An instant from a parsed text: its offset, else a local time in tz. */
static int
instant_of(const struct appt_text *t, const char *tz, int64_t *utc_s, struct error *err)
{
    if (t->has_offset) {
        *utc_s = t->civil_s - t->offset_s;
        if (*utc_s < APPT_CIVIL_MIN || *utc_s > APPT_CIVIL_MAX)
            return error_set(err, ERROR_MAPPING, "a time outside years 0001-3000");
        return 0;
    }
    return appt_tz_local_to_utc(tz, t->civil_s, utc_s, err);
}

/* Whether obj has only the keys a start or end may have. */
static int
when_keys(const cJSON *obj, const char *what, struct error *err)
{
    static const char *const keys[] = {"at", "date", "local", "tz"};
    const cJSON *v;

    cJSON_ArrayForEach(v, obj)
    {
        size_t i = 0;

        while (i < ARRAY_COUNT(keys) && (v->string == NULL || strcmp(v->string, keys[i]) != 0))
            i++;
        if (i == ARRAY_COUNT(keys))
            return error_set(err, ERROR_MAPPING, "%s: unknown field \"%.32s\"", what,
                             v->string ? v->string : "");
    }
    return 0;
}

/* An "at" (its text parsed into t) in the zone named zone. */
static int
read_at(const struct appt_text *t, const char *text, const char *zone, const char *what,
        struct appt_when *out, struct error *err)
{
    if (t->is_date)
        return error_set(err, ERROR_MAPPING, "%s: at \"%.40s\" has no time of day", what, text);
    if (!appt_tz_canonical(zone, out->tz))
        return error_set(err, ERROR_MAPPING, "%s: unknown time zone \"%.64s\"", what, zone);
    if (!t->has_offset && out->tz[0] == '\0')
        return error_set(err, ERROR_MAPPING,
                         "%s: at \"%.40s\" needs an offset or a tz (use local for a floating "
                         "time)",
                         what, text);
    out->kind = APPT_WHEN_AT;
    return instant_of(t, out->tz, &out->s, err) == 0 ? 0 : error_wrap(err, "%s", what);
}

int
appt_when_get(const cJSON *obj, const char *what, struct appt_when *out, struct error *err)
{
    const cJSON *at = get(obj, "at"), *date = get(obj, "date"), *local = get(obj, "local");
    const cJSON *tz = get(obj, "tz"), *v;
    struct appt_text t;

    memset(out, 0, sizeof(*out));
    if (!cJSON_IsObject(obj))
        return error_set(err, ERROR_MAPPING, "%s: not an object", what);
    if (when_keys(obj, what, err) != 0)
        return -1;
    if ((at != NULL) + (date != NULL) + (local != NULL) != 1)
        return error_set(err, ERROR_MAPPING, "%s: needs exactly one of at, date, local", what);
    v = at ? at : date ? date : local;
    if (!cJSON_IsString(v) || appt_text_parse(v->valuestring, &t) != 0)
        return error_set(err, ERROR_MAPPING, "%s: \"%.40s\" is not a time", what,
                         cJSON_IsString(v) ? v->valuestring : "");
    if (!is_none(tz) && (!cJSON_IsString(tz) || at == NULL))
        return error_set(err, ERROR_MAPPING, "%s: tz belongs only with at", what);
    if (at != NULL)
        return read_at(&t, at->valuestring, cJSON_IsString(tz) ? tz->valuestring : "", what, out,
                       err);
    if (date != NULL && !t.is_date)
        return error_set(err, ERROR_MAPPING, "%s: date \"%.40s\" is not YYYY-MM-DD", what,
                         date->valuestring);
    if (local != NULL && (t.is_date || t.has_offset))
        return error_set(err, ERROR_MAPPING,
                         "%s: local \"%.40s\" must be a date and time without offset", what,
                         local->valuestring);
    out->kind = date != NULL ? APPT_WHEN_DATE : APPT_WHEN_LOCAL;
    out->s = t.civil_s;
    return 0;
}

int
appt_when_text(const struct appt_when *w, char out[APPT_TEXT_MAX])
{
    switch (w->kind) {
    case APPT_WHEN_AT:
        return appt_format_instant(w->s, out);
    case APPT_WHEN_DATE:
        return appt_format_date(w->s, out);
    case APPT_WHEN_LOCAL:
        return appt_format_local(w->s, out);
    }
    out[0] = '\0';
    return -1;
}

cJSON *
appt_when_json(const struct appt_when *w)
{
    char text[APPT_TEXT_MAX];
    cJSON *o;

    if (appt_when_text(w, text) != 0)
        return NULL;
    o = need(cJSON_CreateObject());
    if (w->kind == APPT_WHEN_AT) {
        cJSON_AddItemToObject(o, "at", need(cJSON_CreateString(text)));
        if (w->tz[0] != '\0')
            cJSON_AddItemToObject(o, "tz", need(cJSON_CreateString(w->tz)));
    } else {
        cJSON_AddItemToObject(o, w->kind == APPT_WHEN_DATE ? "date" : "local",
                              need(cJSON_CreateString(text)));
    }
    return o;
}

int
appt_when_from_text(const char *text, const struct appt_when *like, struct appt_when *out,
                    struct error *err)
{
    struct appt_text t;

    *out = *like;
    if (appt_text_parse(text, &t) != 0)
        return error_set(err, ERROR_MAPPING, "\"%.40s\" is not a time", text ? text : "");
    switch (like->kind) {
    case APPT_WHEN_AT:
        if (t.is_date)
            return error_set(err, ERROR_MAPPING, "\"%.40s\" is a date; the series has times", text);
        return instant_of(&t, like->tz, &out->s, err);
    case APPT_WHEN_DATE:
        if (!t.is_date)
            return error_set(err, ERROR_MAPPING, "\"%.40s\" is not a date; the series is all-day",
                             text);
        out->s = t.civil_s;
        return 0;
    case APPT_WHEN_LOCAL:
        if (t.is_date || t.has_offset)
            return error_set(err, ERROR_MAPPING,
                             "\"%.40s\" is not a floating local time, as the series' start is",
                             text);
        out->s = t.civil_s;
        return 0;
    }
    return error_set(err, ERROR_INTERNAL, "appt_when_from_text: no kind");
}

/* Whether two points are the same time: kind and instant, and zone if
 * use_tz. */
static int
when_same(const struct appt_when *a, const struct appt_when *b, int use_tz)
{
    return a->kind == b->kind && a->s == b->s && (!use_tz || strcmp(a->tz, b->tz) == 0);
}

/* The civil time of w as shown on a wall clock (its zone for an instant). */
static int
when_local(const struct appt_when *w, int64_t *civil_s, struct error *err)
{
    if (w->kind != APPT_WHEN_AT) {
        *civil_s = w->s;
        return 0;
    }
    return appt_tz_utc_to_local(w->tz, w->s, civil_s, err);
}

/* --- normalising fields --------------------------------------------------- */

static const char *const appt_keys[] = {
    "uid",       "title",     "description", "location",   "status",   "start", "end",
    "organizer", "attendees", "recurrence",  "exceptions", "sequence", NULL,
};
static const char *const exception_keys[] = {
    "recurrence_id", "title",     "description", "location", "status", "start",
    "end",           "organizer", "attendees",   "sequence", "uid",    NULL,
};

static int
check_keys(const cJSON *obj, const char *const *keys, const char *what, struct error *err)
{
    const cJSON *v;

    cJSON_ArrayForEach(v, obj)
    {
        size_t i = 0;

        while (keys[i] != NULL && (v->string == NULL || strcmp(keys[i], v->string) != 0))
            i++;
        if (keys[i] == NULL)
            return error_set(err, ERROR_MAPPING, "%s: unknown field \"%.32s\"", what,
                             v->string ? v->string : "");
    }
    return 0;
}

/* The length of the well-formed UTF-8 sequence at s (RFC 3629: no
 * overlong forms, no surrogates, nothing past U+10FFFF), or 0. */
static size_t
utf8_len(const unsigned char *s)
{
    unsigned cp;
    size_t n;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        n = 2, cp = s[0] & 0x1fu;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        n = 3, cp = s[0] & 0x0fu;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4, cp = s[0] & 0x07u;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0; /* also stops at the NUL */
        cp = cp << 6 | (s[i] & 0x3fu);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

/*
 * A copy of s as calendars can carry it: CRLF and CR become LF (one line
 * end, whatever system wrote it); the other control characters but TAB,
 * which RFC 5545 does not allow in text, are dropped; a byte that is not
 * UTF-8 becomes U+FFFD; blanks at the end are dropped. Every writer then
 * sees the same text, and every reader gives it back.
 */
static char *
clean_text(const char *s)
{
    size_t n = strlen(s), w = 0;
    char *out = xcalloc(n + 1, 3);

    for (size_t r = 0; r < n;) {
        unsigned char c = (unsigned char)s[r];
        size_t len = utf8_len((const unsigned char *)s + r);

        if (c == '\r') {
            out[w++] = '\n';
            r += s[r + 1] == '\n' ? 2 : 1;
        } else if (len == 0) {
            memcpy(out + w, "\xef\xbf\xbd", 3);
            w += 3;
            r++;
        } else if (len > 1 || c == '\n' || c == '\t' || (c >= 0x20 && c != 0x7f)) {
            memcpy(out + w, s + r, len);
            w += len;
            r += len;
        } else {
            r++;
        }
    }
    /* iCalendar readers drop blanks at the end of a line, so the text does. */
    while (w > 0 && (out[w - 1] == ' ' || out[w - 1] == '\t'))
        w--;
    out[w] = '\0';
    return out;
}

/* Whether s is UTF-8 without control characters (a uid, an address). */
static int
is_plain(const char *s)
{
    while (*s != '\0') {
        size_t len = utf8_len((const unsigned char *)s);

        if (len == 0 || (len == 1 && ((unsigned char)*s < 0x20 || *s == 0x7f)))
            return 0;
        s += len;
    }
    return 1;
}

/* A text field: NULL in *out when absent, null or empty (after cleaning). */
static int
norm_text(const cJSON *obj, const char *key, char **out, struct error *err)
{
    const cJSON *v = get(obj, key);
    size_t n;
    char *s;

    *out = NULL;
    if (is_none(v))
        return 0;
    if (!cJSON_IsString(v))
        return error_set(err, ERROR_MAPPING, "%s is not a string", key);
    n = strlen(v->valuestring);
    if (n == 0)
        return 0;
    if (n > APPT_MAX_TEXT_LEN)
        return error_set(err, ERROR_MAPPING, "%s: %zu bytes; at most %zu", key, n,
                         APPT_MAX_TEXT_LEN);
    s = clean_text(v->valuestring);
    if (s[0] == '\0') {
        free(s);
        return 0;
    }
    *out = s;
    return 0;
}

/* A status; *out NULL when absent (the caller picks the default). */
static int
norm_status(const cJSON *v, const char **out, struct error *err)
{
    *out = NULL;
    if (is_none(v))
        return 0;
    if (cJSON_IsString(v)) {
        if (strcasecmp(v->valuestring, "confirmed") == 0)
            *out = "confirmed";
        else if (strcasecmp(v->valuestring, "tentative") == 0)
            *out = "tentative";
        else if (strcasecmp(v->valuestring, "cancelled") == 0 ||
                 strcasecmp(v->valuestring, "canceled") == 0)
            *out = "cancelled";
    }
    if (*out == NULL)
        return error_set(err, ERROR_MAPPING,
                         "status must be confirmed, tentative or cancelled, not %.32s",
                         cJSON_IsString(v) ? v->valuestring : "a non-string");
    return 0;
}

/* An attendee's status in its canonical spelling ("needsAction",
 * "NEEDS-ACTION" and "needs_action" are all "needs-action"); NULL if
 * unknown. */
static const char *
partstat(const char *s)
{
    static const char *const names[] = {"needs-action", "accepted", "declined", "tentative"};
    char folded[16];
    size_t n = 0;

    /* Lower-cased, without '-' and '_', it must be a name without '-'. */
    for (; *s != '\0' && n + 1 < sizeof(folded); s++) {
        char c = *s;

        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != '-' && c != '_')
            folded[n++] = c;
    }
    folded[n] = '\0';
    for (size_t i = 0; *s == '\0' && i < ARRAY_COUNT(names); i++) {
        const char *a = folded, *b = names[i];

        for (; *b != '\0'; b++) {
            if (*b != '-' && *a++ != *b)
                break;
        }
        if (*b == '\0' && *a == '\0')
            return names[i];
    }
    return NULL;
}

char *
appt_email_key(const char *s)
{
    cJSON *tmp;
    char *key;

    if (strncasecmp(s, "mailto:", 7) == 0)
        s += 7;
    tmp = need(cJSON_CreateString(s));
    key = normalize_key(NORMALIZE_EMAIL, tmp, NULL);
    cJSON_Delete(tmp);
    if (key != NULL && (!is_plain(key) || strpbrk(key, " \"") != NULL)) {
        free(key); /* not an address a calendar can write back */
        return NULL;
    }
    return key;
}

/* A person's name into o, as one line; Graph fills a missing one with the
 * address, which is no name. */
static void
add_name(cJSON *o, const char *name)
{
    char *clean = clean_text(name);

    for (char *c = clean; *c != '\0'; c++) {
        if (*c == '\n' || *c == '\t')
            *c = ' ';
    }
    if (clean[0] != '\0' && strcasecmp(clean, get(o, "email")->valuestring) != 0)
        cJSON_AddItemToObject(o, "name", need(cJSON_CreateString(clean)));
    free(clean);
}

/* A person ({"email", "name", and for an attendee "status" and
 * "optional"}). */
static int
norm_person(const cJSON *in, int is_attendee, cJSON **out, struct error *err)
{
    static const char *const org_keys[] = {"email", "name", NULL};
    static const char *const att_keys[] = {"email", "name", "status", "optional", NULL};
    const char *what = is_attendee ? "attendee" : "organizer";
    const cJSON *email = get(in, "email"), *name = get(in, "name");
    const cJSON *status = get(in, "status"), *optional = get(in, "optional");
    const char *st = "needs-action";
    char *key;
    cJSON *o;

    if (!cJSON_IsObject(in))
        return error_set(err, ERROR_MAPPING, "%s is not an object", what);
    if (check_keys(in, is_attendee ? att_keys : org_keys, what, err) != 0)
        return -1;
    if (!cJSON_IsString(email) || (key = appt_email_key(email->valuestring)) == NULL)
        return error_set(err, ERROR_MAPPING, "%s: \"%.64s\" is not an email address", what,
                         cJSON_IsString(email) ? email->valuestring : "");
    if (!is_none(name) && !cJSON_IsString(name)) {
        error_set(err, ERROR_MAPPING, "%s %s: name is not a string", what, key);
        free(key);
        return -1;
    }
    if (is_attendee && !is_none(status) &&
        (!cJSON_IsString(status) || (st = partstat(status->valuestring)) == NULL)) {
        error_set(err, ERROR_MAPPING,
                  "attendee %s: status must be needs-action, accepted, declined or tentative", key);
        free(key);
        return -1;
    }
    o = need(cJSON_CreateObject());
    cJSON_AddItemToObject(o, "email", need(cJSON_CreateString(key)));
    free(key);
    if (cJSON_IsString(name))
        add_name(o, name->valuestring);
    if (is_attendee) {
        cJSON_AddItemToObject(o, "status", need(cJSON_CreateString(st)));
        if (cJSON_IsTrue(optional))
            cJSON_AddItemToObject(o, "optional", need(cJSON_CreateTrue()));
    }
    *out = o;
    return 0;
}

static int
compare_email(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;

    return strcmp(get(x, "email")->valuestring, get(y, "email")->valuestring);
}

/* Attendees sorted by email, one per email (the first kept). *out is an
 * array, possibly empty; NULL when in is absent or null. */
static int
norm_attendees(const cJSON *in, cJSON **out, struct error *err)
{
    cJSON **items, *arr;
    int n, count = 0;

    *out = NULL;
    if (is_none(in))
        return 0;
    if (!cJSON_IsArray(in))
        return error_set(err, ERROR_MAPPING, "attendees is not an array");
    n = cJSON_GetArraySize(in);
    if (n > APPT_MAX_LIST)
        return error_set(err, ERROR_MAPPING, "%d attendees; at most %d", n, APPT_MAX_LIST);
    items = xcalloc((size_t)n + 1, sizeof(cJSON *));
    for (int i = 0; i < n; i++) {
        if (norm_person(cJSON_GetArrayItem(in, i), 1, &items[count], err) != 0) {
            for (int j = 0; j < count; j++)
                cJSON_Delete(items[j]);
            free(items);
            return -1;
        }
        count++;
    }
    /* A stable order for equal emails keeps the first one listed. */
    for (int i = 1; i < count; i++) {
        for (int j = i; j > 0 && compare_email(&items[j - 1], &items[j]) > 0; j--) {
            cJSON *t = items[j];

            items[j] = items[j - 1];
            items[j - 1] = t;
        }
    }
    arr = need(cJSON_CreateArray());
    for (int i = 0; i < count; i++) {
        if (i > 0 && compare_email(&items[i - 1], &items[i]) == 0) {
            cJSON_Delete(items[i]);
            items[i] = items[i - 1]; /* compare the next one with the kept one */
            continue;
        }
        cJSON_AddItemToArray(arr, items[i]);
    }
    free(items);
    *out = arr;
    return 0;
}

static int
compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The strings of arr (all strings), sorted, without repeats, as a new
 * array; NULL if arr is empty. */
static cJSON *
sorted_unique(const cJSON *arr)
{
    int n = cJSON_GetArraySize(arr), k = 0;
    const char **v;
    const cJSON *it;
    cJSON *out;

    if (n == 0)
        return NULL;
    v = xcalloc((size_t)n, sizeof(const char *));
    cJSON_ArrayForEach(it, arr) v[k++] = it->valuestring;
    qsort(v, (size_t)k, sizeof(const char *), compare_strings);
    out = need(cJSON_CreateArray());
    for (int i = 0; i < k; i++) {
        if (i == 0 || strcmp(v[i], v[i - 1]) != 0)
            cJSON_AddItemToArray(out, need(cJSON_CreateString(v[i])));
    }
    free(v);
    return out;
}

/* Whether a list of libical BY values is empty. */
static int
by_empty(const short *list)
{
    return list[0] == ICAL_RECURRENCE_ARRAY_MAX;
}

static void
by_set(short *list, short v)
{
    list[0] = v;
    list[1] = ICAL_RECURRENCE_ARRAY_MAX;
}

/* RFC 5545 §3.3.10: the parts a rule leaves out come from DTSTART. Write
 * them out, so "FREQ=WEEKLY" and "FREQ=WEEKLY;BYDAY=MO" (from a Monday)
 * compare equal. */
static void
explicit_days(struct icalrecurrencetype *r, const struct appt_fields *f)
{
    int no_days = by_empty(r->by_day) && by_empty(r->by_month_day) && by_empty(r->by_year_day) &&
                  by_empty(r->by_week_no);

    switch (r->freq) {
    case ICAL_WEEKLY_RECURRENCE:
        if (by_empty(r->by_day))
            by_set(r->by_day, (short)(f->weekday + 1)); /* libical: Sunday is 1 */
        break;
    case ICAL_MONTHLY_RECURRENCE:
        if (no_days)
            by_set(r->by_month_day, (short)f->day);
        break;
    case ICAL_YEARLY_RECURRENCE:
        if (no_days) {
            if (by_empty(r->by_month))
                by_set(r->by_month, (short)f->month);
            by_set(r->by_month_day, (short)f->day);
        }
        break;
    default:
        break;
    }
}

static struct icaltimetype
tt_of(int64_t civil_s, int is_date, int is_utc)
{
    struct icaltimetype tt = icaltime_null_time();
    struct appt_fields f;

    appt_civil_split(civil_s, &f);
    tt.year = f.year;
    tt.month = f.month;
    tt.day = f.day;
    tt.is_date = is_date;
    if (!is_date) {
        tt.hour = f.hour;
        tt.minute = f.minute;
        tt.second = f.second;
    }
    if (is_utc)
        tt.zone = icaltimezone_get_utc_timezone();
    return tt;
}

/* UNTIL in the form RFC 5545 asks for the series' start: UTC for an
 * instant (a bare date is the end of that day in the series' zone), a date
 * for a date, a floating time for a floating time. */
static int
canonical_until(struct icalrecurrencetype *r, const struct appt_when *start, struct error *err)
{
    struct icaltimetype u = r->until;
    int64_t civil, utc;

    if (icaltime_is_null_time(u))
        return 0;
    civil = appt_civil(u.year, u.month, u.day, u.is_date ? 23 : u.hour, u.is_date ? 59 : u.minute,
                       u.is_date ? 59 : u.second);
    if (civil < APPT_CIVIL_MIN || civil > APPT_CIVIL_MAX)
        return error_set(err, ERROR_MAPPING, "RRULE UNTIL outside years 0001-3000");
    switch (start->kind) {
    case APPT_WHEN_AT:
        if (icaltime_is_utc(u))
            utc = civil;
        else if (appt_tz_local_to_utc(start->tz, civil, &utc, err) != 0)
            return -1;
        r->until = tt_of(utc, 0, 1);
        break;
    case APPT_WHEN_DATE:
        r->until = tt_of(civil, 1, 0);
        break;
    case APPT_WHEN_LOCAL:
        r->until = tt_of(civil, 0, 0);
        break;
    }
    return 0;
}

static int
canonical_rrule(const char *text, const struct appt_when *start, char **out, struct error *err)
{
    struct icalrecurrencetype r;
    struct appt_fields f;
    int64_t local;
    char *s;

    if (strncasecmp(text, "RRULE:", 6) == 0)
        text += 6;
    if (strlen(text) > APPT_MAX_RRULE_LEN)
        return error_set(err, ERROR_MAPPING, "RRULE longer than %d bytes", APPT_MAX_RRULE_LEN);
    r = icalrecurrencetype_from_string(text);
    icalerror_clear_errno();
    if (r.freq == ICAL_NO_RECURRENCE)
        return error_set(err, ERROR_MAPPING, "\"%.64s\" is not an RRULE", text);
    if (when_local(start, &local, err) != 0 || canonical_until(&r, start, err) != 0)
        return error_wrap(err, "RRULE");
    appt_civil_split(local, &f);
    explicit_days(&r, &f);
    s = icalrecurrencetype_as_string_r(&r);
    if (s == NULL)
        return error_set(err, ERROR_MAPPING, "\"%.64s\" cannot be written as an RRULE", text);
    *out = xstrdup(s);
    icalmemory_free_buffer(s);
    return 0;
}

/* Append the canonical texts of the times in list (exdates or rdates) to
 * dest. */
static int
norm_times(const cJSON *list, const char *what, const struct appt_when *start, cJSON *dest,
           struct error *err)
{
    const cJSON *it;

    if (is_none(list))
        return 0;
    if (!cJSON_IsArray(list))
        return error_set(err, ERROR_MAPPING, "recurrence.%s is not an array", what);
    if (cJSON_GetArraySize(list) + cJSON_GetArraySize(dest) > APPT_MAX_LIST)
        return error_set(err, ERROR_MAPPING, "recurrence.%s: more than %d", what, APPT_MAX_LIST);
    cJSON_ArrayForEach(it, list)
    {
        struct appt_when w;
        char text[APPT_TEXT_MAX];

        if (!cJSON_IsString(it))
            return error_set(err, ERROR_MAPPING, "recurrence.%s: not a string", what);
        if (appt_when_from_text(it->valuestring, start, &w, err) != 0 ||
            appt_when_text(&w, text) != 0)
            return error_wrap(err, "recurrence.%s", what);
        cJSON_AddItemToArray(dest, need(cJSON_CreateString(text)));
    }
    return 0;
}

/* The series being built, for its exceptions to be compared with. */
struct series {
    cJSON *out; /* the normalised appointment so far */
    struct appt_when start, end;
    char *rrule;
    cJSON *exdates, *rdates; /* arrays of canonical texts, unsorted */
};

static int
norm_recurrence(const cJSON *rec, struct series *s, struct error *err)
{
    static const char *const keys[] = {"rrule", "exdates", "rdates", NULL};
    const cJSON *rrule = get(rec, "rrule");

    if (!cJSON_IsObject(rec))
        return error_set(err, ERROR_MAPPING, "recurrence is not an object");
    if (check_keys(rec, keys, "recurrence", err) != 0)
        return -1;
    if (!is_none(rrule)) {
        if (!cJSON_IsString(rrule))
            return error_set(err, ERROR_MAPPING, "recurrence.rrule is not a string");
        if (rrule->valuestring[0] != '\0' &&
            canonical_rrule(rrule->valuestring, &s->start, &s->rrule, err) != 0)
            return error_wrap(err, "recurrence.rrule");
    }
    if (norm_times(get(rec, "exdates"), "exdates", &s->start, s->exdates, err) != 0 ||
        norm_times(get(rec, "rdates"), "rdates", &s->start, s->rdates, err) != 0)
        return -1;
    return 0;
}

/* Whether two optional JSON values differ (absent and null are the same;
 * for lists, absent is the empty list). */
static int
differs(const cJSON *a, const cJSON *b)
{
    if (is_none(a) || (cJSON_IsArray(a) && cJSON_GetArraySize(a) == 0))
        a = NULL;
    if (is_none(b) || (cJSON_IsArray(b) && cJSON_GetArraySize(b) == 0))
        b = NULL;
    if (a == NULL || b == NULL)
        return a != b;
    return !value_equal(a, b);
}

/* Keep in exc (the exception being built) value under key if it differs
 * from the series; value is taken (NULL: the exception clears the field). */
static void
keep_if_differs(cJSON *exc, const struct series *s, const char *key, cJSON *value)
{
    if (differs(value, get(s->out, key))) {
        cJSON_AddItemToObject(exc, key, value != NULL ? value : need(cJSON_CreateNull()));
        return;
    }
    cJSON_Delete(value);
}

/* The start and end of an exception, kept only where they differ from what
 * the recurrence gives the occurrence (its id, and the series' length). */
static int
exception_times(const cJSON *in, const struct series *s, const struct appt_when *rid, cJSON *exc,
                struct error *err)
{
    struct appt_when def_start = *rid, def_end = s->end, st, en;
    cJSON *js, *je;

    def_end.s = rid->s + (s->end.s - s->start.s);
    if (get(in, "start") == NULL && get(in, "end") == NULL)
        return 0;
    st = def_start;
    if (get(in, "start") != NULL && appt_when_get(get(in, "start"), "start", &st, err) != 0)
        return -1;
    en = st;
    en.s = st.s + (s->end.s - s->start.s);
    if (st.kind == s->end.kind)
        memcpy(en.tz, s->end.tz, sizeof(en.tz));
    if (get(in, "end") != NULL && appt_when_get(get(in, "end"), "end", &en, err) != 0)
        return -1;
    if (st.kind != en.kind)
        return error_set(err, ERROR_MAPPING, "start and end are not the same kind of time");
    if (en.s < st.s)
        return error_set(err, ERROR_MAPPING, "end is before start");
    if (when_same(&st, &def_start, 0) && when_same(&en, &def_end, 0))
        return 0;
    js = appt_when_json(&st);
    je = appt_when_json(&en);
    if (js == NULL || je == NULL) {
        cJSON_Delete(js);
        cJSON_Delete(je);
        return error_set(err, ERROR_MAPPING, "a time outside years 0001-3000");
    }
    cJSON_AddItemToObject(exc, "start", js);
    cJSON_AddItemToObject(exc, "end", je);
    return 0;
}

static int
exception_people(const cJSON *in, const struct series *s, cJSON *exc, struct error *err)
{
    const cJSON *org = get(in, "organizer");
    cJSON *v = NULL;

    if (org != NULL) {
        if (!is_none(org) && norm_person(org, 0, &v, err) != 0)
            return -1;
        keep_if_differs(exc, s, "organizer", v);
    }
    if (get(in, "attendees") != NULL) {
        if (norm_attendees(get(in, "attendees"), &v, err) != 0)
            return -1;
        if (differs(v, get(s->out, "attendees")))
            cJSON_AddItemToObject(exc, "attendees", v != NULL ? v : need(cJSON_CreateArray()));
        else
            cJSON_Delete(v);
    }
    return 0;
}

/*
 * One exception reduced to what differs from the series. *out is NULL when
 * nothing differs; a cancelled occurrence goes to s->exdates instead.
 */
static int
fold_exception(const cJSON *in, struct series *s, cJSON **out, struct error *err)
{
    static const char *const texts[] = {"title", "description", "location"};
    const cJSON *rid = get(in, "recurrence_id");
    struct appt_when when;
    char text[APPT_TEXT_MAX];
    const char *status;
    cJSON *exc;

    *out = NULL;
    if (!cJSON_IsObject(in))
        return error_set(err, ERROR_MAPPING, "not an object");
    if (check_keys(in, exception_keys, "exception", err) != 0)
        return -1;
    if (!cJSON_IsString(rid))
        return error_set(err, ERROR_MAPPING, "recurrence_id is missing");
    if (appt_when_from_text(rid->valuestring, &s->start, &when, err) != 0 ||
        appt_when_text(&when, text) != 0)
        return error_wrap(err, "recurrence_id");
    if (norm_status(get(in, "status"), &status, err) != 0)
        return -1;
    if (status != NULL && strcmp(status, "cancelled") == 0) {
        cJSON_AddItemToArray(s->exdates, need(cJSON_CreateString(text)));
        return 0;
    }
    exc = need(cJSON_CreateObject());
    cJSON_AddItemToObject(exc, "recurrence_id", need(cJSON_CreateString(text)));
    for (size_t i = 0; i < ARRAY_COUNT(texts); i++) {
        char *v;

        if (get(in, texts[i]) == NULL)
            continue; /* not given: the series' value */
        if (norm_text(in, texts[i], &v, err) != 0)
            goto fail;
        keep_if_differs(exc, s, texts[i], v != NULL ? need(cJSON_CreateString(v)) : NULL);
        free(v);
    }
    if (status != NULL)
        keep_if_differs(exc, s, "status", need(cJSON_CreateString(status)));
    if (exception_times(in, s, &when, exc, err) != 0 || exception_people(in, s, exc, err) != 0)
        goto fail;
    if (cJSON_GetArraySize(exc) == 1) {
        cJSON_Delete(exc); /* only its id: the occurrence as the series has it */
        return 0;
    }
    *out = exc;
    return 0;

fail:
    cJSON_Delete(exc);
    return error_wrap(err, "recurrence_id %s", text);
}

static int
compare_rid(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;

    return strcmp(get(x, "recurrence_id")->valuestring, get(y, "recurrence_id")->valuestring);
}

/* Whether the sorted array of strings holds s. */
static int
holds(const cJSON *arr, const char *s)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, arr)
    {
        if (strcmp(it->valuestring, s) == 0)
            return 1;
    }
    return 0;
}

/* The exceptions, folded, sorted by recurrence id, into *out (NULL if
 * none). Needs s->exdates to be final, which folding itself adds to. */
static int
norm_exceptions(const cJSON *list, struct series *s, cJSON **out, struct error *err)
{
    int n = cJSON_GetArraySize(list), count = 0;
    cJSON **items, *exdates = NULL, *arr = NULL;
    int rc = -1;

    *out = NULL;
    if (!cJSON_IsArray(list))
        return error_set(err, ERROR_MAPPING, "exceptions is not an array");
    if (n > APPT_MAX_LIST)
        return error_set(err, ERROR_MAPPING, "%d exceptions; at most %d", n, APPT_MAX_LIST);
    items = xcalloc((size_t)n + 1, sizeof(cJSON *));
    for (int i = 0; i < n; i++) {
        if (fold_exception(cJSON_GetArrayItem(list, i), s, &items[count], err) != 0) {
            error_wrap(err, "exceptions[%d]", i);
            goto out;
        }
        count += items[count] != NULL;
    }
    qsort(items, (size_t)count, sizeof(cJSON *), compare_rid);
    exdates = sorted_unique(s->exdates);
    arr = need(cJSON_CreateArray());
    for (int i = 0; i < count; i++) {
        const char *rid = get(items[i], "recurrence_id")->valuestring;

        if (i + 1 < count && compare_rid(&items[i], &items[i + 1]) == 0) {
            error_set(err, ERROR_MAPPING, "exceptions: two for the occurrence %s", rid);
            goto out;
        }
        if (exdates != NULL && holds(exdates, rid))
            continue; /* the occurrence does not happen at all */
        cJSON_AddItemToArray(arr, items[i]);
        items[i] = NULL;
    }
    rc = 0;
out:
    if (rc == 0 && cJSON_GetArraySize(arr) > 0) {
        *out = arr;
        arr = NULL;
    }
    cJSON_Delete(arr);
    cJSON_Delete(exdates);
    for (int i = 0; i < count; i++)
        cJSON_Delete(items[i]);
    free(items);
    return rc;
}

static int
norm_times_of(const cJSON *in, struct series *s, struct error *err)
{
    const cJSON *end = get(in, "end");

    if (get(in, "start") == NULL)
        return error_set(err, ERROR_MAPPING, "start is missing");
    if (appt_when_get(get(in, "start"), "start", &s->start, err) != 0)
        return -1;
    s->end = s->start;
    if (s->start.kind == APPT_WHEN_DATE)
        s->end.s += APPT_DAY_S;
    if (!is_none(end) && appt_when_get(end, "end", &s->end, err) != 0)
        return -1;
    if (s->start.kind != s->end.kind)
        return error_set(err, ERROR_MAPPING, "start and end are not the same kind of time");
    if (s->end.s < s->start.s)
        return error_set(err, ERROR_MAPPING, "end is before start");
    if (s->start.kind == APPT_WHEN_DATE && s->end.s == s->start.s)
        s->end.s += APPT_DAY_S; /* an all-day event lasts at least its day */
    return 0;
}

static int
add_when(cJSON *o, const char *key, const struct appt_when *w, struct error *err)
{
    cJSON *j = appt_when_json(w);

    if (j == NULL)
        return error_set(err, ERROR_MAPPING, "%s: outside years 0001-3000", key);
    cJSON_AddItemToObject(o, key, j);
    return 0;
}

/* uid, the texts and status, start and end, people, sequence. */
static int
norm_plain_fields(const cJSON *in, struct series *s, struct error *err)
{
    static const char *const texts[] = {"title", "description", "location"};
    const cJSON *uid = get(in, "uid"), *seq = get(in, "sequence");
    const char *status;
    cJSON *v;

    if (!cJSON_IsString(uid) || uid->valuestring[0] == '\0')
        return error_set(err, ERROR_MAPPING, "uid is missing");
    if (strlen(uid->valuestring) > 1024)
        return error_set(err, ERROR_MAPPING, "uid longer than 1024 bytes");
    if (!is_plain(uid->valuestring))
        return error_set(err, ERROR_MAPPING, "uid holds a control character or is not UTF-8");
    cJSON_AddItemToObject(s->out, "uid", need(cJSON_CreateString(uid->valuestring)));
    for (size_t i = 0; i < ARRAY_COUNT(texts); i++) {
        char *t;

        if (norm_text(in, texts[i], &t, err) != 0)
            return -1;
        if (t != NULL)
            cJSON_AddItemToObject(s->out, texts[i], need(cJSON_CreateString(t)));
        free(t);
    }
    if (norm_status(get(in, "status"), &status, err) != 0)
        return -1;
    cJSON_AddItemToObject(s->out, "status",
                          need(cJSON_CreateString(status ? status : "confirmed")));
    if (norm_times_of(in, s, err) != 0 || add_when(s->out, "start", &s->start, err) != 0 ||
        add_when(s->out, "end", &s->end, err) != 0)
        return -1;
    if (!is_none(get(in, "organizer"))) {
        if (norm_person(get(in, "organizer"), 0, &v, err) != 0)
            return -1;
        cJSON_AddItemToObject(s->out, "organizer", v);
    }
    if (norm_attendees(get(in, "attendees"), &v, err) != 0)
        return -1;
    if (v != NULL && cJSON_GetArraySize(v) > 0)
        cJSON_AddItemToObject(s->out, "attendees", v);
    else
        cJSON_Delete(v);
    if (!is_none(seq) &&
        (!cJSON_IsNumber(seq) || seq->valuedouble < 0 || seq->valuedouble > 2147483647.0 ||
         seq->valuedouble != (double)(int)seq->valuedouble))
        return error_set(err, ERROR_MAPPING, "sequence is not a whole number >= 0");
    return 0;
}

static void
add_recurrence(struct series *s)
{
    cJSON *rec = need(cJSON_CreateObject());
    cJSON *ex = sorted_unique(s->exdates), *rd = sorted_unique(s->rdates);

    if (s->rrule != NULL)
        cJSON_AddItemToObject(rec, "rrule", need(cJSON_CreateString(s->rrule)));
    if (ex != NULL)
        cJSON_AddItemToObject(rec, "exdates", ex);
    if (rd != NULL)
        cJSON_AddItemToObject(rec, "rdates", rd);
    cJSON_AddItemToObject(s->out, "recurrence", rec);
}

int
appt_normalize(const cJSON *in, cJSON **out, struct error *err)
{
    struct series s = {0};
    const cJSON *rec = get(in, "recurrence"), *exc = get(in, "exceptions");
    cJSON *exceptions = NULL;
    int rc = -1;

    if (!cJSON_IsObject(in))
        return error_set(err, ERROR_MAPPING, "an appointment is a JSON object");
    if (check_keys(in, appt_keys, "appointment", err) != 0)
        return -1;
    s.out = need(cJSON_CreateObject());
    s.exdates = need(cJSON_CreateArray());
    s.rdates = need(cJSON_CreateArray());
    if (norm_plain_fields(in, &s, err) != 0)
        goto done;
    if (!is_none(rec) && norm_recurrence(rec, &s, err) != 0)
        goto done;
    if (s.rrule == NULL && cJSON_GetArraySize(s.rdates) == 0) {
        if (!is_none(exc) && cJSON_GetArraySize(exc) > 0) {
            error_set(err, ERROR_MAPPING, "exceptions without a recurrence");
            goto done;
        }
    } else {
        if (!is_none(exc) && norm_exceptions(exc, &s, &exceptions, err) != 0)
            goto done;
        add_recurrence(&s);
        if (exceptions != NULL)
            cJSON_AddItemToObject(s.out, "exceptions", exceptions);
    }
    if (!is_none(get(in, "sequence")))
        cJSON_AddItemToObject(s.out, "sequence",
                              need(cJSON_CreateNumber(get(in, "sequence")->valuedouble)));
    *out = s.out;
    s.out = NULL;
    rc = 0;
done:
    cJSON_Delete(s.out);
    cJSON_Delete(s.exdates);
    cJSON_Delete(s.rdates);
    free(s.rrule);
    return rc;
}

/* --- occurrences ---------------------------------------------------------- */

int
appt_occurrence(const cJSON *appt, const cJSON *exception, cJSON **out, struct error *err)
{
    static const char *const copied[] = {"uid",    "title",     "description", "location",
                                         "status", "organizer", "attendees",   "sequence"};
    struct appt_when start, end, rid, st, en;
    const cJSON *v;
    cJSON *o;

    if (appt_when_get(get(appt, "start"), "start", &start, err) != 0 ||
        appt_when_get(get(appt, "end"), "end", &end, err) != 0)
        return -1;
    v = get(exception, "recurrence_id");
    if (!cJSON_IsString(v) || appt_when_from_text(v->valuestring, &start, &rid, err) != 0)
        return error_set(err, ERROR_MAPPING, "exception without a valid recurrence_id");
    st = rid;
    en = end;
    en.s = rid.s + (end.s - start.s);
    if (get(exception, "start") != NULL &&
        (appt_when_get(get(exception, "start"), "start", &st, err) != 0 ||
         appt_when_get(get(exception, "end"), "end", &en, err) != 0))
        return error_wrap(err, "exception %s", v->valuestring);
    o = need(cJSON_CreateObject());
    for (size_t i = 0; i < ARRAY_COUNT(copied); i++) {
        const cJSON *x = get(exception, copied[i]);

        if (x == NULL)
            x = get(appt, copied[i]);
        if (!is_none(x))
            cJSON_AddItemToObject(o, copied[i], need(cJSON_Duplicate(x, 1)));
    }
    if (add_when(o, "start", &st, err) != 0 || add_when(o, "end", &en, err) != 0) {
        cJSON_Delete(o);
        return -1;
    }
    cJSON_AddItemToObject(o, "recurrence_id", need(cJSON_CreateString(v->valuestring)));
    *out = o;
    return 0;
}

/* Whether w is the instant (or date, or local time) of occurrence civil_s
 * of a series whose start is like start; 1 or 0. */
static int
occurrence_is(const struct appt_when *start, int64_t civil_s, const struct appt_when *w)
{
    struct error ignored = {0};
    int64_t utc;

    if (start->kind != APPT_WHEN_AT)
        return civil_s == w->s;
    return appt_tz_local_to_utc(start->tz, civil_s, &utc, &ignored) == 0 && utc == w->s;
}

/* Whether the RRULE text, from the series' start, gives an occurrence at w.
 * COUNT and UNTIL are left out: the question is whether w is on the rule's
 * grid. 1, 0, or -1 when that cannot be told. */
static int
rule_gives(const char *text, const struct appt_when *start, const struct appt_when *w)
{
    struct error ignored = {0};
    struct icalrecurrencetype r = icalrecurrencetype_from_string(text);
    int64_t from, target;
    icalrecur_iterator *it;
    int found = -1; /* stepped APPT_OCCURS_MAX times without passing w */

    icalerror_clear_errno();
    if (r.freq == ICAL_NO_RECURRENCE || when_local(start, &from, &ignored) != 0 ||
        when_local(w, &target, &ignored) != 0)
        return -1;
    r.count = 0;
    r.until = icaltime_null_time();
    it = icalrecur_iterator_new(r, tt_of(from, start->kind == APPT_WHEN_DATE, 0));
    if (it == NULL) {
        icalerror_clear_errno();
        return -1;
    }
    for (int n = 0; n < APPT_OCCURS_MAX && found != 1; n++) {
        struct icaltimetype tt = icalrecur_iterator_next(it);
        int64_t civil;

        if (icaltime_is_null_time(tt)) {
            found = 0; /* the rule ends before w */
            break;
        }
        civil = appt_civil(tt.year, tt.month, tt.day, tt.hour, tt.minute, tt.second);
        if (civil > target + 2 * APPT_DAY_S) {
            found = 0; /* past it: an offset moves an instant a day at most */
            break;
        }
        if (occurrence_is(start, civil, w))
            found = 1;
    }
    icalrecur_iterator_free(it);
    icalerror_clear_errno();
    return found;
}

int
appt_occurs(const cJSON *appt, const char *rid)
{
    struct error ignored = {0};
    struct appt_when start, w, d;
    const cJSON *rec = get(appt, "recurrence"), *rule = get(rec, "rrule"), *x;

    if (appt_when_get(get(appt, "start"), "start", &start, &ignored) != 0 ||
        appt_when_from_text(rid, &start, &w, &ignored) != 0)
        return -1;
    if (w.s == start.s)
        return 1;
    cJSON_ArrayForEach(x, get(rec, "rdates"))
    {
        if (cJSON_IsString(x) && appt_when_from_text(x->valuestring, &start, &d, &ignored) == 0 &&
            d.s == w.s)
            return 1;
    }
    return cJSON_IsString(rule) ? rule_gives(rule->valuestring, &start, &w) : 0;
}

/* --- comparison ----------------------------------------------------------- */

static const struct {
    unsigned bit;
    const char *name;
} field_names[] = {
    {APPT_FIELD_UID, "uid"},
    {APPT_FIELD_TITLE, "title"},
    {APPT_FIELD_DESCRIPTION, "description"},
    {APPT_FIELD_LOCATION, "location"},
    {APPT_FIELD_STATUS, "status"},
    {APPT_FIELD_START, "start"},
    {APPT_FIELD_END, "end"},
    {APPT_FIELD_ORGANIZER, "organizer"},
    {APPT_FIELD_ATTENDEES, "attendees"},
    {APPT_FIELD_RECURRENCE, "recurrence"},
    {APPT_FIELD_EXCEPTIONS, "exceptions"},
    {APPT_FIELD_SEQUENCE, "sequence"},
};

const char *
appt_field_name(unsigned field)
{
    for (size_t i = 0; i < ARRAY_COUNT(field_names); i++) {
        if (field_names[i].bit == field)
            return field_names[i].name;
    }
    return "?";
}

char *
appt_diff_text(unsigned mask, char *out, unsigned out_len)
{
    size_t used = 0;

    if (out_len == 0)
        return out;
    out[0] = '\0';
    for (size_t i = 0; i < ARRAY_COUNT(field_names); i++) {
        int n;

        if (!(mask & field_names[i].bit))
            continue;
        n = snprintf(out + used, out_len - used, "%s%s", used > 0 ? ", " : "", field_names[i].name);
        if (n < 0 || (size_t)n >= out_len - used)
            break;
        used += (size_t)n;
    }
    return out;
}

/* Whether two start or end values mean the same time; zones count if
 * use_tz. Values that are not canonical compare as JSON. */
static int
same_time(const cJSON *a, const cJSON *b, int use_tz)
{
    struct appt_when x, y;
    struct error err = {0};

    if (a == NULL || b == NULL)
        return a == b;
    if (appt_when_get(a, "a", &x, &err) != 0 || appt_when_get(b, "b", &y, &err) != 0)
        return value_equal(a, b);
    return when_same(&x, &y, use_tz);
}

/* A copy of an exception list without the zones of its times, which do
 * not change when a single occurrence happens. */
static cJSON *
without_zones(const cJSON *list)
{
    cJSON *copy = need(cJSON_Duplicate(list, 1)), *it;

    cJSON_ArrayForEach(it, copy)
    {
        if (cJSON_IsObject(get(it, "start")))
            cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(it, "start"),
                                                    "tz");
        if (cJSON_IsObject(get(it, "end")))
            cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(it, "end"),
                                                    "tz");
    }
    return copy;
}

static int
same_exceptions(const cJSON *a, const cJSON *b)
{
    cJSON *x, *y;
    int same;

    if (a == NULL || b == NULL)
        return a == b;
    x = without_zones(a);
    y = without_zones(b);
    same = value_equal(x, y);
    cJSON_Delete(x);
    cJSON_Delete(y);
    return same;
}

unsigned
appt_diff(const cJSON *a, const cJSON *b)
{
    static const struct {
        unsigned bit;
        const char *key;
    } plain[] = {
        {APPT_FIELD_UID, "uid"},
        {APPT_FIELD_TITLE, "title"},
        {APPT_FIELD_DESCRIPTION, "description"},
        {APPT_FIELD_LOCATION, "location"},
        {APPT_FIELD_STATUS, "status"},
        {APPT_FIELD_ORGANIZER, "organizer"},
        {APPT_FIELD_ATTENDEES, "attendees"},
        {APPT_FIELD_RECURRENCE, "recurrence"},
        {APPT_FIELD_SEQUENCE, "sequence"},
    };
    int recurring = get(a, "recurrence") != NULL || get(b, "recurrence") != NULL;
    unsigned mask = 0;

    for (size_t i = 0; i < ARRAY_COUNT(plain); i++) {
        if (!value_equal(get(a, plain[i].key), get(b, plain[i].key)))
            mask |= plain[i].bit;
    }
    if (!same_time(get(a, "start"), get(b, "start"), recurring))
        mask |= APPT_FIELD_START;
    if (!same_time(get(a, "end"), get(b, "end"), recurring))
        mask |= APPT_FIELD_END;
    if (!same_exceptions(get(a, "exceptions"), get(b, "exceptions")))
        mask |= APPT_FIELD_EXCEPTIONS;
    return mask;
}

int
appt_equal(const cJSON *a, const cJSON *b)
{
    return (appt_diff(a, b) & ~(unsigned)(APPT_FIELD_SEQUENCE | APPT_FIELD_UID)) == 0;
}
