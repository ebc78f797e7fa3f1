/* SPDX-License-Identifier: MIT */

/*
 * Typed field values (value.h): coercion to the canonical form of each model
 * type, canonical comparison and text, and dotted-path look-ups.
 *
 * Decimals never pass through a binary double when the input is text: a
 * string is read digit by digit. A JSON number is already a double, so it is
 * first written back as its shortest round-trip text ("0.1", not
 * "0.1000000000000000055511151231257827") and that text is then read as a
 * decimal. docs/internals/mapping.md explains the forms.
 *
 * Number formatting uses snprintf()/strtod(), which follow LC_NUMERIC;
 * concord never calls setlocale(), so the "C" locale's '.' applies.
 */

#include "model/value.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/xmalloc.h"

/* Values quoted in error messages are cut to this many bytes. */
#define QUOTE_MAX 64

/* A decimal's point may sit at most this far from its digits: enough for
 * every double (1e308, 5e-324) and far more than any amount of money. */
#define DECIMAL_MAX_SHIFT 400

/* Integers are exact in a double (and in every JSON parser) up to 2^53. */
#define INTEGER_MAX 9007199254740992.0

/* Epoch seconds of 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z. */
#define EPOCH_MIN (-62167219200LL)
#define EPOCH_MAX 253402300799LL

/* --- decimals ----------------------------------------------------------- */

/*
 * Read s[0..n) as a decimal number: optional blanks, an optional sign,
 * digits with at most one '.', an optional exponent, optional blanks.
 * Returns the canonical text (malloc()ed) or NULL when it is not a number.
 */
static char *
decimal_from_text(const char *s, size_t n)
{
    const char *end = s + n;
    char *digits, *out, *p;
    size_t count = 0, first, last, ndig;
    long frac_count = 0, exp = 0, shift, point;
    int negative = 0, seen_point = 0, seen_digit = 0;

    while (s < end && isspace((unsigned char)*s))
        s++;
    while (end > s && isspace((unsigned char)end[-1]))
        end--;
    if (s < end && (*s == '+' || *s == '-'))
        negative = *s++ == '-';
    digits = xmalloc((size_t)(end - s) + 1);
    for (; s < end; s++) {
        if (*s >= '0' && *s <= '9') {
            digits[count++] = *s;
            frac_count += seen_point;
            seen_digit = 1;
        } else if (*s == '.' && !seen_point) {
            seen_point = 1;
        } else {
            break;
        }
    }
    if (!seen_digit)
        goto fail;
    if (s < end && (*s == 'e' || *s == 'E')) {
        int exp_negative = 0, exp_digit = 0;

        s++;
        if (s < end && (*s == '+' || *s == '-'))
            exp_negative = *s++ == '-';
        for (; s < end && *s >= '0' && *s <= '9'; s++) {
            exp_digit = 1;
            if (exp < 100000)
                exp = exp * 10 + (*s - '0');
        }
        if (!exp_digit)
            goto fail;
        if (exp_negative)
            exp = -exp;
    }
    if (s != end)
        goto fail;

    /* The value is digits * 10^shift; drop zeros on both sides. */
    shift = exp - frac_count;
    for (first = 0; first < count && digits[first] == '0'; first++)
        ;
    if (first == count) {
        free(digits);
        return xstrdup("0");
    }
    for (last = count; digits[last - 1] == '0'; last--)
        shift++;
    ndig = last - first;
    if (shift > DECIMAL_MAX_SHIFT || shift < -(long)ndig - DECIMAL_MAX_SHIFT)
        goto fail;
    point = (long)ndig + shift; /* digits before the point; may be <= 0 */

    out = p = xmalloc(ndig + DECIMAL_MAX_SHIFT + 8);
    if (negative)
        *p++ = '-';
    if (shift >= 0) {
        memcpy(p, digits + first, ndig);
        p += ndig;
        memset(p, '0', (size_t)shift);
        p += shift;
    } else if (point > 0) {
        memcpy(p, digits + first, (size_t)point);
        p += point;
        *p++ = '.';
        memcpy(p, digits + first + point, ndig - (size_t)point);
        p += ndig - (size_t)point;
    } else {
        *p++ = '0';
        *p++ = '.';
        memset(p, '0', (size_t)-point);
        p += -point;
        memcpy(p, digits + first, ndig);
        p += ndig;
    }
    *p = '\0';
    free(digits);
    return out;
fail:
    free(digits);
    return NULL;
}

int
value_decimal_canonical(const char *s, char *out, size_t out_len)
{
    char *d = decimal_from_text(s, strlen(s));
    size_t len;

    if (d == NULL)
        return -1;
    len = strlen(d);
    if (len >= out_len) {
        free(d);
        return -1;
    }
    memcpy(out, d, len + 1);
    free(d);
    return 0;
}

/* The shortest text that strtod() reads back as d (d finite). */
static void
number_text(double d, char out[32])
{
    for (int prec = 15; prec <= 17; prec++) {
        (void)snprintf(out, 32, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            return;
    }
}

/* The decimal form of a finite number or of a raw JSON number; NULL when v
 * is neither. */
int
value_small_integer(const cJSON *v, long long *out)
{
    double d = cJSON_IsNumber(v) ? v->valuedouble : 0.0;

    if (!cJSON_IsNumber(v) || !(d > -1e15 && d < 1e15) || d != (double)(long long)d)
        return 0;
    *out = (long long)d;
    return 1;
}

static char *
decimal_of(const cJSON *v)
{
    char text[32];

    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;

        if (!isfinite(d))
            return NULL;
        long long i;

        /* An integer below 10^15 is its digits (and -0 is 0). */
        if (value_small_integer(v, &i)) {
            (void)snprintf(text, sizeof(text), "%lld", i);
            return xstrdup(text);
        }
        number_text(d, text);
        return decimal_from_text(text, strlen(text));
    }
    if (cJSON_IsRaw(v) && v->valuestring != NULL)
        return decimal_from_text(v->valuestring, strlen(v->valuestring));
    return NULL;
}

/* --- messages ------------------------------------------------------------ */

/* v as JSON text, cut to QUOTE_MAX bytes (a cut ends in "..."). */
static void
quote(const cJSON *v, char out[QUOTE_MAX + 1])
{
    char *text = v ? cJSON_PrintUnformatted(v) : NULL;
    size_t len;

    if (text == NULL) {
        (void)snprintf(out, QUOTE_MAX + 1, "%s", v ? "(value)" : "(missing)");
        return;
    }
    len = strlen(text);
    if (len > QUOTE_MAX) {
        len = QUOTE_MAX - 3;
        while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80)
            len--; /* do not split a UTF-8 sequence */
        memcpy(out, text, len);
        memcpy(out + len, "...", 4);
    } else {
        memcpy(out, text, len + 1);
    }
    free(text);
}

static int
not_a(const cJSON *in, const char *what, struct error *err)
{
    char q[QUOTE_MAX + 1];

    quote(in, q);
    return error_set(err, ERROR_MAPPING, "%s is not %s", q, what);
}

/* --- timestamps and dates ------------------------------------------------ */

static int
is_leap(long year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int
days_in_month(long year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    return month == 2 && is_leap(year) ? 29 : days[month - 1];
}

/* Read exactly n digits at *p; -1 when they are not all digits. */
static long
fixed_digits(const char **p, const char *end, int n)
{
    long v = 0;

    if (end - *p < n)
        return -1;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];

        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    return v;
}

/* "YYYY-MM-DD" at *p, validated. Returns 0 or -1. */
static int
parse_date(const char **p, const char *end, struct tm *tm)
{
    long year, month, day;

    if ((year = fixed_digits(p, end, 4)) < 0 || *p >= end || *(*p)++ != '-' ||
        (month = fixed_digits(p, end, 2)) < 0 || *p >= end || *(*p)++ != '-' ||
        (day = fixed_digits(p, end, 2)) < 0)
        return -1;
    if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, (int)month))
        return -1;
    memset(tm, 0, sizeof(*tm));
    tm->tm_year = (int)year - 1900;
    tm->tm_mon = (int)month - 1;
    tm->tm_mday = (int)day;
    return 0;
}

/*
 * Read a timestamp text: a date, optionally followed by 'T' or ' ' and
 * HH:MM[:SS[.fff...]], optionally followed by 'Z' or an offset (+HH:MM,
 * +HHMM, +HH). No offset means UTC. Writes epoch seconds and milliseconds
 * (fractions beyond milliseconds are cut). Returns 0 or -1.
 */
static int
parse_timestamp(const char *s, size_t n, int64_t *epoch_s, int *ms)
{
    const char *p = s, *end = s + n;
    struct tm tm;
    long hour = 0, min = 0, sec = 0, frac_ms = 0, off_s = 0;
    time_t t;

    while (p < end && isspace((unsigned char)*p))
        p++;
    while (end > p && isspace((unsigned char)end[-1]))
        end--;
    if (parse_date(&p, end, &tm) != 0)
        return -1;
    if (p < end && (*p == 'T' || *p == 't' || *p == ' ')) {
        p++;
        if ((hour = fixed_digits(&p, end, 2)) < 0 || p >= end || *p++ != ':' ||
            (min = fixed_digits(&p, end, 2)) < 0)
            return -1;
        if (p < end && *p == ':') {
            p++;
            if ((sec = fixed_digits(&p, end, 2)) < 0)
                return -1;
            if (p < end && (*p == '.' || *p == ',')) {
                int nd = 0;

                p++;
                for (; p < end && *p >= '0' && *p <= '9'; p++, nd++) {
                    if (nd < 3)
                        frac_ms = frac_ms * 10 + (*p - '0');
                }
                if (nd == 0)
                    return -1;
                for (; nd < 3; nd++)
                    frac_ms *= 10;
            }
        }
        if (hour > 23 || min > 59 || sec > 60) /* 60: a leap second */
            return -1;
        if (p < end && (*p == 'Z' || *p == 'z')) {
            p++;
        } else if (p < end && (*p == '+' || *p == '-')) {
            int sign = *p++ == '-' ? -1 : 1;
            long oh, om = 0;

            if ((oh = fixed_digits(&p, end, 2)) < 0)
                return -1;
            if (p < end && *p == ':')
                p++;
            if ((p < end || p[-1] == ':') && (om = fixed_digits(&p, end, 2)) < 0)
                return -1;
            if (oh > 23 || om > 59)
                return -1;
            off_s = sign * (oh * 3600 + om * 60);
        }
    }
    if (p != end)
        return -1;
    tm.tm_hour = (int)hour;
    tm.tm_min = (int)min;
    tm.tm_sec = (int)sec;
    t = timegm(&tm);
    *epoch_s = (int64_t)t - off_s;
    *ms = (int)frac_ms;
    return 0;
}

/* Format epoch seconds and milliseconds as canonical UTC text. */
static int
format_timestamp(int64_t epoch_s, int ms, char out[96])
{
    struct tm tm;
    time_t t = (time_t)epoch_s;

    if (epoch_s < EPOCH_MIN || epoch_s > EPOCH_MAX || gmtime_r(&t, &tm) == NULL)
        return -1;
    if (ms != 0)
        (void)snprintf(out, 96, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                       tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    else
        (void)snprintf(out, 96, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                       tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return 0;
}

static int
coerce_timestamp(const cJSON *in, cJSON **out, struct error *err)
{
    int64_t epoch_s;
    int ms;
    char text[96]; /* 25 bytes are enough; GCC cannot see the fields are bounded */

    if (cJSON_IsString(in)) {
        if (parse_timestamp(in->valuestring, strlen(in->valuestring), &epoch_s, &ms) != 0)
            return not_a(in, "a timestamp", err);
    } else if (cJSON_IsNumber(in)) {
        double d = in->valuedouble, total_ms;

        if (!isfinite(d) || d < (double)EPOCH_MIN || d > (double)EPOCH_MAX + 1)
            return not_a(in, "a timestamp (epoch seconds out of range)", err);
        total_ms = round(d * 1000.0);
        epoch_s = (int64_t)floor(total_ms / 1000.0);
        ms = (int)(total_ms - (double)epoch_s * 1000.0);
    } else {
        return not_a(in, "a timestamp", err);
    }
    if (format_timestamp(epoch_s, ms, text) != 0)
        return not_a(in, "a timestamp in years 0000-9999", err);
    *out = cJSON_CreateString(text);
    return 0;
}

int
value_timestamp_ms(const cJSON *v, int64_t *out_ms)
{
    int64_t epoch_s;
    int ms;

    if (cJSON_IsString(v)) {
        if (parse_timestamp(v->valuestring, strlen(v->valuestring), &epoch_s, &ms) != 0)
            return -1;
        *out_ms = epoch_s * 1000 + ms;
        return 0;
    }
    if (cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble >= 0 &&
        v->valuedouble < 1e15) {
        /* Epoch seconds, or milliseconds past the year 5138 in seconds. */
        double d = v->valuedouble;

        *out_ms = d >= 1e11 ? (int64_t)d : (int64_t)round(d * 1000.0);
        return 0;
    }
    return -1;
}

static int
coerce_date(const cJSON *in, cJSON **out, struct error *err)
{
    const char *s, *p, *end;
    struct tm tm;
    int64_t epoch_s;
    int ms;
    char text[11];

    if (!cJSON_IsString(in))
        return not_a(in, "a date", err);
    s = in->valuestring;
    end = s + strlen(s);
    while (*s != '\0' && isspace((unsigned char)*s))
        s++;
    p = s;
    if (parse_date(&p, end, &tm) != 0)
        return not_a(in, "a date", err);
    /* A timestamp gives its date as written, not converted to UTC. */
    if (parse_timestamp(s, (size_t)(end - s), &epoch_s, &ms) != 0)
        return not_a(in, "a date", err);
    memcpy(text, s, 10);
    text[10] = '\0';
    *out = cJSON_CreateString(text);
    return 0;
}

/* --- the other types ----------------------------------------------------- */

static int
coerce_decimal(const cJSON *in, cJSON **out, struct error *err)
{
    char *d = NULL;

    if (cJSON_IsString(in))
        d = decimal_from_text(in->valuestring, strlen(in->valuestring));
    else if (cJSON_IsNumber(in) || cJSON_IsRaw(in))
        d = decimal_of(in);
    if (d == NULL)
        return not_a(in, "a decimal", err);
    *out = cJSON_CreateString(d);
    free(d);
    return 0;
}

/* A canonical decimal text without fraction, within +/-2^53, as a double. */
static int
integer_of_decimal(const char *d, double *v)
{
    char *endp;
    long long n;

    if (strchr(d, '.') != NULL || strlen(d) > 17)
        return -1;
    n = strtoll(d, &endp, 10);
    if (*endp != '\0' || n > (1LL << 53) || n < -(1LL << 53))
        return -1;
    *v = (double)n;
    return 0;
}

static int
coerce_integer(const cJSON *in, cJSON **out, struct error *err)
{
    double v;

    if (cJSON_IsNumber(in)) {
        v = in->valuedouble;
        if (!isfinite(v) || v != floor(v) || fabs(v) > INTEGER_MAX)
            return not_a(in, "an integer (whole and within +/-2^53)", err);
        *out = cJSON_CreateNumber(v + 0.0); /* -0 becomes 0 */
        return 0;
    }
    if (cJSON_IsString(in) || cJSON_IsRaw(in)) {
        char *d = cJSON_IsString(in) ? decimal_from_text(in->valuestring, strlen(in->valuestring))
                                     : decimal_of(in);
        int rc = d ? integer_of_decimal(d, &v) : -1;

        free(d);
        if (rc != 0)
            return not_a(in, "an integer (whole and within +/-2^53)", err);
        *out = cJSON_CreateNumber(v);
        return 0;
    }
    return not_a(in, "an integer", err);
}

static int
coerce_boolean(const cJSON *in, cJSON **out, struct error *err)
{
    static const char *const yes[] = {"true", "yes", "1"};
    static const char *const no[] = {"false", "no", "0"};

    if (cJSON_IsBool(in)) {
        *out = cJSON_CreateBool(cJSON_IsTrue(in));
        return 0;
    }
    if (cJSON_IsNumber(in) && (in->valuedouble == 0 || in->valuedouble == 1)) {
        *out = cJSON_CreateBool(in->valuedouble == 1);
        return 0;
    }
    if (cJSON_IsString(in)) {
        const char *s = in->valuestring;
        size_t len;

        while (isspace((unsigned char)*s))
            s++;
        len = strlen(s);
        while (len > 0 && isspace((unsigned char)s[len - 1]))
            len--;
        for (size_t i = 0; i < ARRAY_COUNT(yes); i++) {
            if (len == strlen(yes[i]) && strncasecmp(s, yes[i], len) == 0) {
                *out = cJSON_CreateTrue();
                return 0;
            }
            if (len == strlen(no[i]) && strncasecmp(s, no[i], len) == 0) {
                *out = cJSON_CreateFalse();
                return 0;
            }
        }
    }
    return not_a(in, "a boolean", err);
}

static int
coerce_string(const cJSON *in, cJSON **out, struct error *err)
{
    char *d;

    if (cJSON_IsString(in)) {
        *out = cJSON_CreateString(in->valuestring);
        return 0;
    }
    if (cJSON_IsBool(in)) {
        *out = cJSON_CreateString(cJSON_IsTrue(in) ? "true" : "false");
        return 0;
    }
    if ((d = decimal_of(in)) != NULL) {
        *out = cJSON_CreateString(d);
        free(d);
        return 0;
    }
    return not_a(in, "a string", err);
}

static int
coerce_ref(const cJSON *in, cJSON **out, struct error *err)
{
    double v;
    char *d;

    if (cJSON_IsString(in)) {
        if (in->valuestring[0] == '\0')
            return not_a(in, "a reference id (it is empty)", err);
        *out = cJSON_CreateString(in->valuestring);
        return 0;
    }
    if ((d = decimal_of(in)) != NULL && integer_of_decimal(d, &v) == 0) {
        *out = cJSON_CreateString(d);
        free(d);
        return 0;
    }
    free(d);
    return not_a(in, "a reference id (a string or an integer)", err);
}

int
value_coerce(enum config_type type, const cJSON *in, cJSON **out, struct error *err)
{
    if (in == NULL || cJSON_IsNull(in)) {
        *out = cJSON_CreateNull();
        return 0;
    }
    /* A raw value (an exact number written by a map) that is not a number
     * is read as JSON first. */
    if (cJSON_IsRaw(in) && type != CONFIG_TYPE_DECIMAL && type != CONFIG_TYPE_INTEGER) {
        char *d = decimal_of(in);

        if (d == NULL) {
            cJSON *parsed = in->valuestring ? cJSON_Parse(in->valuestring) : NULL;
            int rc;

            if (parsed == NULL)
                return not_a(in, "a JSON value", err);
            rc = value_coerce(type, parsed, out, err);
            cJSON_Delete(parsed);
            return rc;
        }
        free(d);
    }
    switch (type) {
    case CONFIG_TYPE_STRING:
        return coerce_string(in, out, err);
    case CONFIG_TYPE_INTEGER:
        return coerce_integer(in, out, err);
    case CONFIG_TYPE_DECIMAL:
        return coerce_decimal(in, out, err);
    case CONFIG_TYPE_BOOLEAN:
        return coerce_boolean(in, out, err);
    case CONFIG_TYPE_TIMESTAMP:
        return coerce_timestamp(in, out, err);
    case CONFIG_TYPE_DATE:
        return coerce_date(in, out, err);
    case CONFIG_TYPE_REF:
        return coerce_ref(in, out, err);
    }
    return error_set(err, ERROR_INTERNAL, "unknown field type %d", (int)type);
}

/* --- comparison and canonical text --------------------------------------- */

/* How many members before x in obj have x's key. JSON text may repeat a
 * key; the n-th "a" of one object is compared with the n-th "a" of the
 * other, so a value always equals itself. */
static size_t
key_rank(const cJSON *obj, const cJSON *x)
{
    size_t n = 0;

    for (const cJSON *p = obj->child; p != x; p = p->next) {
        if (strcmp(p->string, x->string) == 0)
            n++;
    }
    return n;
}

/* The member of obj with key name that has n others of that key before it. */
static const cJSON *
nth_member(const cJSON *obj, const char *name, size_t n)
{
    for (const cJSON *p = obj->child; p != NULL; p = p->next) {
        if (strcmp(p->string, name) == 0 && n-- == 0)
            return p;
    }
    return NULL;
}

int
value_equal(const cJSON *a, const cJSON *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    if (cJSON_IsNumber(a) && cJSON_IsNumber(b))
        return a->valuedouble == b->valuedouble;
    if (cJSON_IsRaw(a) || cJSON_IsRaw(b)) {
        char *da = decimal_of(a), *db = decimal_of(b);
        int eq = -1;

        if (da != NULL && db != NULL)
            eq = strcmp(da, db) == 0;
        else if ((da != NULL) != (db != NULL) && (cJSON_IsNumber(a) || cJSON_IsNumber(b)))
            eq = 0;
        free(da);
        free(db);
        if (eq >= 0)
            return eq;
        /* A raw value that is not a number: compare what it holds. */
        {
            cJSON *pa = cJSON_IsRaw(a) ? cJSON_Parse(a->valuestring ? a->valuestring : "") : NULL;
            cJSON *pb = cJSON_IsRaw(b) ? cJSON_Parse(b->valuestring ? b->valuestring : "") : NULL;

            if ((cJSON_IsRaw(a) && pa == NULL) || (cJSON_IsRaw(b) && pb == NULL))
                eq = 0;
            else
                eq = value_equal(pa ? pa : a, pb ? pb : b);
            cJSON_Delete(pa);
            cJSON_Delete(pb);
            return eq;
        }
    }
    if ((a->type & 0xFF) != (b->type & 0xFF))
        return 0;
    if (cJSON_IsString(a))
        return strcmp(a->valuestring, b->valuestring) == 0;
    if (cJSON_IsArray(a)) {
        const cJSON *x = a->child, *y = b->child;

        for (; x != NULL && y != NULL; x = x->next, y = y->next) {
            if (!value_equal(x, y))
                return 0;
        }
        return x == NULL && y == NULL;
    }
    if (cJSON_IsObject(a)) {
        int na = cJSON_GetArraySize(a), nb = cJSON_GetArraySize(b);

        if (na != nb)
            return 0;
        for (const cJSON *x = a->child; x != NULL; x = x->next) {
            const cJSON *y = nth_member(b, x->string, key_rank(a, x));

            if (y == NULL || !value_equal(x, y))
                return 0;
        }
        return 1;
    }
    return 1; /* null, true, false */
}

/* A growing text; data ends in a NUL once value_canonical_text() is done
 * with it. */
struct text {
    char *data;
    size_t len, cap;
};

/* Room for n more bytes and the NUL. */
static void
text_grow(struct text *t, size_t n)
{
    size_t cap = t->cap ? t->cap : 256;

    while (cap < t->len + n + 1)
        cap *= 2;
    t->data = xreallocarray(t->data, cap, 1);
    t->cap = cap;
}

static inline void
text_reserve(struct text *t, size_t n)
{
    if (t->len + n + 1 > t->cap)
        text_grow(t, n);
}

static void
text_put(struct text *t, const char *s, size_t n)
{
    text_reserve(t, n);
    memcpy(t->data + t->len, s, n);
    t->len += n;
}

static inline void
text_putc(struct text *t, char c)
{
    text_reserve(t, 1);
    t->data[t->len++] = c;
}

static void
text_puts(struct text *t, const char *s)
{
    text_put(t, s, strlen(s));
}

/* Whether one of the eight bytes of w is below 0x20, '"' or '\\': the
 * zero-byte test of Hacker's Delight (6-1), exact as a yes or no. */
static int
has_special(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');

    return (((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b)) & high ? 1 : 0;
}

/* s as a JSON string: '"', '\\' and control characters escaped, every
 * other byte as it is. Written in place: eight plain bytes at a time (a
 * record's notes and addresses are most of what the writer prints), the
 * rest a byte at a time. */
static void
text_string(struct text *t, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t len = strlen(s);
    char *o;

    text_reserve(t, len + 2);
    o = t->data + t->len;
    *o++ = '"';
    while (len > 0) {
        unsigned char c = (unsigned char)*s;
        uint64_t w;
        char e;

        if (len >= 8) {
            memcpy(&w, s, 8);
            if (!has_special(w)) {
                memcpy(o, s, 8);
                o += 8;
                s += 8;
                len -= 8;
                continue;
            }
        }
        s++;
        len--;
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = (char)c;
            continue;
        }
        /* an escape is six bytes at most; the rest needs len and the quote */
        t->len = (size_t)(o - t->data);
        text_reserve(t, len + 7);
        o = t->data + t->len;
        switch (c) {
        case '"':
        case '\\':
            e = (char)c;
            break;
        case '\b':
            e = 'b';
            break;
        case '\f':
            e = 'f';
            break;
        case '\n':
            e = 'n';
            break;
        case '\r':
            e = 'r';
            break;
        case '\t':
            e = 't';
            break;
        default:
            e = 0;
        }
        *o++ = '\\';
        if (e != 0) {
            *o++ = e;
        } else {
            memcpy(o, "u00", 3);
            o[3] = hex[c >> 4];
            o[4] = hex[c & 0xf];
            o += 5;
        }
    }
    *o++ = '"';
    t->len = (size_t)(o - t->data);
}

/* An integer's digits, as "%lld" prints them. */
static void
text_integer(struct text *t, long long v)
{
    char digits[BUF_INT_SIZE];

    text_put(t, digits, buf_int_text(v, digits));
}

struct member {
    const cJSON *item;
    size_t index; /* keeps repeated keys in their order: qsort is not stable */
};

static int
compare_keys(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    int c = strcmp(x->item->string, y->item->string);

    if (c != 0)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* An object's members in the canonical order: by key, repeated keys in
 * their order. */
static void
sort_members(struct member *keys, size_t n)
{
    if (n > 16) {
        qsort(keys, n, sizeof(*keys), compare_keys);
        return;
    }
    /* A record's few fields: an insertion sort, no call per compare. */
    for (size_t a = 1; a < n; a++) {
        struct member m = keys[a];
        size_t b = a;

        for (; b > 0 && compare_keys(&keys[b - 1], &m) > 0; b--)
            keys[b] = keys[b - 1];
        keys[b] = m;
    }
}

static void text_value(struct text *t, const cJSON *v);

/* An object of these members, sorted (keys is sorted in place). */
static void
text_members(struct text *t, struct member *keys, size_t n)
{
    sort_members(keys, n);
    text_putc(t, '{');
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            text_putc(t, ',');
        text_string(t, keys[i].item->string);
        text_putc(t, ':');
        text_value(t, keys[i].item);
    }
    text_putc(t, '}');
}

static void
text_value(struct text *t, const cJSON *v)
{
    long long whole;
    char *d;

    if (cJSON_IsNull(v) || cJSON_IsInvalid(v)) {
        text_puts(t, "null");
    } else if (cJSON_IsBool(v)) {
        text_puts(t, cJSON_IsTrue(v) ? "true" : "false");
    } else if (cJSON_IsString(v)) {
        text_string(t, v->valuestring);
    } else if (value_small_integer(v, &whole)) {
        text_integer(t, whole); /* decimal_of()'s first case, in place */
    } else if (cJSON_IsNumber(v) || cJSON_IsRaw(v)) {
        if ((d = decimal_of(v)) != NULL) {
            text_puts(t, d);
            free(d);
        } else if (cJSON_IsRaw(v)) {
            cJSON *parsed = cJSON_Parse(v->valuestring ? v->valuestring : "");

            text_value(t, parsed); /* NULL (unparsable) prints as null */
            cJSON_Delete(parsed);
        } else {
            text_puts(t, "null"); /* a non-finite number has no JSON form */
        }
    } else if (cJSON_IsArray(v)) {
        text_putc(t, '[');
        for (const cJSON *x = v->child; x != NULL; x = x->next) {
            text_value(t, x);
            if (x->next != NULL)
                text_putc(t, ',');
        }
        text_putc(t, ']');
    } else if (cJSON_IsObject(v)) {
        size_t n = (size_t)cJSON_GetArraySize(v), i = 0;
        struct member few[16];
        struct member *keys = n <= ARRAY_COUNT(few) ? few : xcalloc(n, sizeof(*keys));

        for (const cJSON *x = v->child; x != NULL; x = x->next, i++) {
            keys[i].item = x;
            keys[i].index = i;
        }
        text_members(t, keys, n);
        if (keys != few)
            free(keys);
    } else {
        text_puts(t, "null");
    }
}

/* The text made, NUL-terminated: the caller's to free. */
static char *
text_finish(struct text *t)
{
    text_reserve(t, 0);
    t->data[t->len] = '\0';
    return t->data;
}

char *
value_canonical_text(const cJSON *v)
{
    struct text t = {0};

    if (v == NULL)
        return xstrdup("null");
    text_value(&t, v);
    return text_finish(&t);
}

char *
value_canonical_members(const cJSON *const *members, size_t n)
{
    struct text t = {0};
    struct member few[16], *keys = n <= ARRAY_COUNT(few) ? few : xcalloc(n, sizeof(*keys));

    for (size_t i = 0; i < n; i++) {
        keys[i].item = members[i];
        keys[i].index = i;
    }
    text_members(&t, keys, n);
    if (keys != few)
        free(keys);
    return text_finish(&t);
}

int
value_reads_back(const cJSON *v)
{
    if (cJSON_IsRaw(v) || (cJSON_IsNumber(v) && !isfinite(v->valuedouble)))
        return 0;
    if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
        for (const cJSON *x = v->child; x != NULL; x = x->next) {
            if (!value_reads_back(x))
                return 0;
        }
    }
    return 1;
}

char *
value_canonical_times(const cJSON *fields, double at, const char *source)
{
    struct text t = {0};
    cJSON when = {.type = cJSON_Number, .valuedouble = at}; /* as cJSON_CreateNumber() */
    size_t n = 0;
    struct member few[16], *keys = few;
    const cJSON *x;

    cJSON_ArrayForEach(x, fields)
    {
        n++;
    }
    if (n > ARRAY_COUNT(few))
        keys = xcalloc(n, sizeof(*keys));
    n = 0;
    cJSON_ArrayForEach(x, fields)
    {
        if (x->string != NULL) { /* (an object takes no member without a key) */
            keys[n].item = x;
            keys[n].index = n;
            n++;
        }
    }
    sort_members(keys, n);
    text_putc(&t, '{');
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            text_putc(&t, ',');
        text_string(&t, keys[i].item->string);
        text_put(&t, ":[", 2);
        text_value(&t, &when);
        if (source != NULL) { /* (cJSON_CreateString(NULL) adds nothing) */
            text_putc(&t, ',');
            text_string(&t, source);
        }
        text_putc(&t, ']');
    }
    text_putc(&t, '}');
    if (keys != few)
        free(keys);
    return text_finish(&t);
}

/* --- paths --------------------------------------------------------------- */

cJSON *
value_object_at(cJSON *obj, const char *path)
{
    for (const char *p = path; obj != NULL && *p != '\0';) {
        size_t n = strcspn(p, ".");
        cJSON *x = cJSON_IsObject(obj) ? obj->child : NULL;

        while (x != NULL &&
               !(x->string != NULL && strncmp(x->string, p, n) == 0 && x->string[n] == '\0'))
            x = x->next;
        obj = x;
        p += n + (p[n] == '.');
    }
    return cJSON_IsObject(obj) ? obj : NULL;
}

const cJSON *
value_path_get(const cJSON *obj, const char *path)
{
    const cJSON *cur = obj;
    const char *seg = path;

    if (obj == NULL || path == NULL)
        return NULL;
    if (*seg == '.')
        seg++;
    if (*seg == '\0')
        return obj;
    for (;;) {
        const char *dot = strchr(seg, '.');
        size_t len = dot ? (size_t)(dot - seg) : strlen(seg);
        const cJSON *next = NULL;

        if (len == 0)
            return NULL;
        if (cJSON_IsObject(cur)) {
            for (const cJSON *x = cur->child; x != NULL; x = x->next) {
                if (x->string != NULL && strncmp(x->string, seg, len) == 0 &&
                    x->string[len] == '\0') {
                    next = x;
                    break;
                }
            }
        } else if (cJSON_IsArray(cur)) {
            size_t index = 0, i;

            for (i = 0; i < len && seg[i] >= '0' && seg[i] <= '9' && index < 100000000; i++)
                index = index * 10 + (size_t)(seg[i] - '0');
            if (i == len)
                next = cJSON_GetArrayItem(cur, (int)index);
            else if (len == 2 && seg[0] == '-' && seg[1] == '1') /* the last one */
                next = cJSON_GetArrayItem(cur, cJSON_GetArraySize(cur) - 1);
        }
        if (next == NULL)
            return NULL;
        cur = next;
        if (dot == NULL)
            return cur;
        seg = dot + 1;
    }
}
