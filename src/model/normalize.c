/* SPDX-License-Identifier: MIT */

/*
 * Natural keys (normalize.h). Every kind walks its input once with explicit
 * bounds (start and end pointers, never a terminator found by hand), and
 * writes into a buffer sized from the input or, for phone numbers, into a
 * small fixed one that is checked before every write: a phone number has at
 * most 15 digits, so an input with more is refused as soon as they are
 * counted, however long it is.
 *
 * Letters are folded by hand rather than with tolower()/toupper(), which
 * follow the locale and could touch bytes of UTF-8 sequences.
 */

#include "model/normalize.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/xmalloc.h"
#include "model/value.h"

/* E.164: at most 15 digits, country code included. We ask for at least 6:
 * fewer is an extension or a short code, not a number that identifies. */
#define PHONE_DIGITS_MIN 6
#define PHONE_DIGITS_MAX 15

/* The most digits an input may carry before its key is cut from them: the
 * 15 of the number and an "00" international prefix. */
#define PHONE_RAW_MAX (PHONE_DIGITS_MAX + 2)

/* A calling code has 1 to 3 digits (1, 40, 358). */
#define COUNTRY_DIGITS_MAX 3

/* Where a kind reads its input: a borrowed string, or a number's text. */
struct source {
    const char *s, *end;
    char *owned; /* freed by source_fini() */
};

static int
is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static char
ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static char
ascii_upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* Move *s and *end inwards past ASCII whitespace. */
static void
trim(const char **s, const char **end)
{
    while (*s < *end && is_blank(**s))
        (*s)++;
    while (*end > *s && is_blank((*end)[-1]))
        (*end)--;
}

/*
 * Point src at the text of v: a string's bytes, or a number's canonical
 * text. With whole_only, a number must be a whole non-negative one (its text
 * all digits). Returns 0, or -1 when v gives no text (null, a boolean, an
 * array, a non-finite number).
 */
static int
source_init(struct source *src, const cJSON *v, int whole_only)
{
    src->owned = NULL;
    if (cJSON_IsString(v) && v->valuestring != NULL) {
        src->s = v->valuestring;
        src->end = src->s + strlen(src->s);
        return 0;
    }
    if (!cJSON_IsNumber(v))
        return -1;
    src->owned = value_canonical_text(v);
    src->s = src->owned;
    src->end = src->s + strlen(src->s);
    if (strcmp(src->owned, "null") == 0) /* inf and nan have no text */
        goto fail;
    if (whole_only) {
        for (const char *p = src->s; p < src->end; p++) {
            if (!is_digit(*p))
                goto fail;
        }
    }
    return 0;
fail:
    free(src->owned);
    src->owned = NULL;
    return -1;
}

static void
source_fini(struct source *src)
{
    free(src->owned);
    src->owned = NULL;
}

/* --- text kinds ---------------------------------------------------------- */

static char *
exact_key(const struct source *src)
{
    if (src->s == src->end)
        return NULL;
    return xstrndup(src->s, (size_t)(src->end - src->s));
}

static char *
text_key(const struct source *src)
{
    const char *s = src->s, *end = src->end;
    char *out;
    size_t n = 0;
    int gap = 0;

    trim(&s, &end);
    if (s == end)
        return NULL;
    out = xmalloc((size_t)(end - s) + 1);
    for (; s < end; s++) {
        if (is_blank(*s)) {
            gap = 1;
            continue;
        }
        if (gap)
            out[n++] = ' '; /* never first: the input is trimmed */
        gap = 0;
        out[n++] = ascii_lower(*s);
    }
    out[n] = '\0';
    return out;
}

static char *
email_key(const struct source *src)
{
    const char *s = src->s, *end = src->end, *at = NULL;
    char *out;
    size_t n = 0;

    trim(&s, &end);
    for (const char *p = s; p < end; p++) {
        if (*p != '@')
            continue;
        if (at != NULL)
            return NULL; /* a second '@' */
        at = p;
    }
    if (at == NULL || at == s || at + 1 == end)
        return NULL;
    out = xmalloc((size_t)(end - s) + 1);
    for (; s < end; s++)
        out[n++] = ascii_lower(*s);
    out[n] = '\0';
    return out;
}

static char *
vat_key(const struct source *src)
{
    char *out = xmalloc((size_t)(src->end - src->s) + 1);
    size_t n = 0;

    for (const char *p = src->s; p < src->end; p++) {
        if (is_blank(*p) || *p == '.' || *p == '-' || *p == '/')
            continue;
        out[n++] = ascii_upper(*p);
    }
    if (n == 0) {
        free(out);
        return NULL;
    }
    out[n] = '\0';
    return out;
}

/* --- phone numbers --------------------------------------------------------- */

/* The characters a phone number may carry between its digits. */
static int
is_phone_separator(char c)
{
    return is_blank(c) || c == '-' || c == '.' || c == '/' || c == '(' || c == ')';
}

/*
 * Where the number in [s, end) ends: end itself, or the start of a trailing
 * extension ("ext", "x" or "#", any case, then digits with blanks, '.', ':'
 * or '-' around them). NULL when some other character comes first, or the
 * extension is not one.
 */
static const char *
phone_end(const char *s, const char *end)
{
    const char *p = s, *q;
    int digits = 0;

    while (p < end && (is_digit(*p) || is_phone_separator(*p)))
        p++;
    if (p == end)
        return end;
    q = p;
    if (*q == '#' || ascii_lower(*q) == 'x')
        q += 1;
    else if (end - q >= 3 && ascii_lower(q[0]) == 'e' && ascii_lower(q[1]) == 'x' &&
             ascii_lower(q[2]) == 't')
        q += 3;
    else
        return NULL;
    for (; q < end; q++) {
        if (is_digit(*q))
            digits = 1;
        else if (!is_blank(*q) && *q != '.' && *q != ':' && *q != '-')
            return NULL;
    }
    return digits ? p : NULL;
}

/* The digits of a calling code ("40", "+40") in [*cc, *cc + *cc_len), or
 * -1 when country is not 1 to 3 digits, the first not 0. */
static int
country_digits(const char *country, const char **cc, size_t *cc_len)
{
    size_t n = 0;

    if (*country == '+')
        country++;
    while (n <= COUNTRY_DIGITS_MAX && is_digit(country[n]))
        n++;
    if (n == 0 || n > COUNTRY_DIGITS_MAX || country[n] != '\0' || country[0] == '0')
        return -1;
    *cc = country;
    *cc_len = n;
    return 0;
}

/* "+" prefix, then digits[0..count) as a new string. */
static char *
phone_join(const char *prefix, size_t prefix_len, const char *digits, size_t count)
{
    char *out = xmalloc(prefix_len + count + 1);

    memcpy(out, prefix, prefix_len);
    memcpy(out + prefix_len, digits, count);
    out[prefix_len + count] = '\0';
    return out;
}

static char *
phone_key(const struct source *src, const char *country)
{
    const char *s = src->s, *end = src->end, *cc;
    char digits[PHONE_RAW_MAX];
    char prefix[1 + COUNTRY_DIGITS_MAX];
    size_t count = 0, cc_len;
    int plus = 0, trunk_seen = 0, intl;

    trim(&s, &end);
    if (s < end && *s == '+') {
        plus = 1;
        s++;
    }
    if ((end = phone_end(s, end)) == NULL)
        return NULL;
    for (; s < end; s++) {
        if (is_digit(*s)) {
            if (count == PHONE_RAW_MAX)
                return NULL; /* too long for any key; stop reading */
            digits[count++] = *s;
            continue;
        }
        /* "+40 (0)722..." and "0040 (0)722...": a "(0)" right after a
         * country code of 1 to 3 digits is the national trunk prefix that
         * international dialling leaves out. */
        intl = plus || (count >= 2 && digits[0] == '0' && digits[1] == '0');
        if (*s == '(' && !trunk_seen && intl && end - s >= 3 && s[1] == '0' && s[2] == ')') {
            size_t cc_count = plus ? count : count - 2;

            if (cc_count >= 1 && cc_count <= COUNTRY_DIGITS_MAX) {
                trunk_seen = 1;
                s += 2;
                continue;
            }
        }
        if (!is_phone_separator(*s))
            return NULL;
    }
    if (plus || (count >= 2 && digits[0] == '0' && digits[1] == '0')) {
        const char *d = plus ? digits : digits + 2;
        size_t n = plus ? count : count - 2;

        if (n < PHONE_DIGITS_MIN || n > PHONE_DIGITS_MAX || d[0] == '0')
            return NULL;
        return phone_join("+", 1, d, n);
    }
    if (country == NULL || *country == '\0') {
        if (count < PHONE_DIGITS_MIN || count > PHONE_DIGITS_MAX)
            return NULL;
        return phone_join("", 0, digits, count);
    }
    if (country_digits(country, &cc, &cc_len) != 0)
        return NULL;
    if (count > 0 && digits[0] == '0') {
        memmove(digits, digits + 1, count - 1); /* one trunk '0', no more */
        count--;
    }
    if (count == 0 || cc_len + count < PHONE_DIGITS_MIN || cc_len + count > PHONE_DIGITS_MAX)
        return NULL;
    prefix[0] = '+';
    memcpy(prefix + 1, cc, cc_len);
    return phone_join(prefix, 1 + cc_len, digits, count);
}

/* --- the entry point ------------------------------------------------------- */

char *
normalize_key(enum normalize_kind kind, const cJSON *value, const char *country)
{
    struct source src;
    char *key = NULL;
    int whole_only = kind == NORMALIZE_PHONE || kind == NORMALIZE_VAT;

    if (value == NULL || source_init(&src, value, whole_only) != 0)
        return NULL;
    switch (kind) {
    case NORMALIZE_EXACT:
        key = exact_key(&src);
        break;
    case NORMALIZE_TEXT:
        key = text_key(&src);
        break;
    case NORMALIZE_EMAIL:
        key = email_key(&src);
        break;
    case NORMALIZE_PHONE:
        key = phone_key(&src, country);
        break;
    case NORMALIZE_VAT:
        key = vat_key(&src);
        break;
    }
    source_fini(&src);
    return key;
}
