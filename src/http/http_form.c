/* SPDX-License-Identifier: MIT */

/* Form bodies with bracket notation, Stripe style (http_form.h). */

#include "http/http_form.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/buf.h"
#include "core/xmalloc.h"

/* Past this magnitude an integral double has no exact plain-digit form
 * that every reader agrees on; ECMAScript switches to exponents here. */
#define FORM_INTEGER_LIMIT 1e21

/* Room for any number's text: 22 for a 21-digit integer and its sign, 26
 * for "-0.000000" and 17 digits, 24 for an exponent form. */
#define FORM_NUMBER_LEN 40

/* How much of a key an error message quotes. */
#define FORM_KEY_QUOTE_LEN 120

/* The bytes form encoding keeps as they are: RFC 3986's unreserved set,
 * which is also what Python's quote_plus() (stripe-python's urlencode())
 * keeps. */
static int
is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* Append s with every other byte as %XX and a space as '+'. Returns 0, or
 * -1 past the buffer's maximum. */
static int
put_escaped(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = (const unsigned char *)s;

    while (*p != '\0') {
        const unsigned char *run = p;

        while (*p != '\0' && is_unreserved(*p))
            p++;
        if (p > run && buf_append(b, run, (size_t)(p - run)) == -1)
            return -1;
        if (*p == '\0')
            break;
        if (*p == ' ') {
            if (buf_append(b, "+", 1) == -1)
                return -1;
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};

            if (buf_append(b, e, sizeof(e)) == -1)
                return -1;
        }
        p++;
    }
    return 0;
}

/*
 * Write the form text of the finite number d into out: the fewest
 * significant digits (at most 17) that strtod() reads back as d, laid out
 * as ECMAScript's Number::toString does: plain digits below 1e21 ("2000",
 * "100000000000000000000", "1.5", "0.000001"), an exponent only below
 * 1e-6 ("1e-7"). Returns 0, or -1 for an integral d of magnitude
 * FORM_INTEGER_LIMIT or more, which would need an exponent.
 */
static int
number_text(double d, char out[FORM_NUMBER_LEN])
{
    char e[FORM_NUMBER_LEN], digits[FORM_NUMBER_LEN];
    const char *p;
    size_t k = 0, o = 0;
    long n;

    if (d == 0) {
        /* Both zeros: "-0" would read as a string to most servers. */
        memcpy(out, "0", 2);
        return 0;
    }
    if (d == floor(d) && fabs(d) >= FORM_INTEGER_LIMIT)
        return -1;
    for (int prec = 1; prec <= 17; prec++) {
        (void)snprintf(e, sizeof(e), "%.*e", prec - 1, d);
        if (strtod(e, NULL) == d)
            break;
    }
    /* e is "-d.ddde-XX": take the digits, then the exponent. */
    p = e;
    if (*p == '-')
        out[o++] = *p++;
    for (; *p != 'e' && *p != '\0'; p++)
        if (*p >= '0' && *p <= '9')
            digits[k++] = *p;
    while (k > 1 && digits[k - 1] == '0')
        k--;
    n = (*p == 'e' ? strtol(p + 1, NULL, 10) : 0) + 1; /* d = 0.digits * 10^n */
    if (n >= (long)k && n <= 21) {
        memcpy(out + o, digits, k);
        o += k;
        for (long i = (long)k; i < n; i++)
            out[o++] = '0';
    } else if (n > 0 && n <= 21) {
        memcpy(out + o, digits, (size_t)n);
        o += (size_t)n;
        out[o++] = '.';
        memcpy(out + o, digits + n, k - (size_t)n);
        o += k - (size_t)n;
    } else if (n > -6 && n <= 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (long i = n; i < 0; i++)
            out[o++] = '0';
        memcpy(out + o, digits, k);
        o += k;
    } else {
        out[o++] = digits[0];
        if (k > 1) {
            out[o++] = '.';
            memcpy(out + o, digits + 1, k - 1);
            o += k - 1;
        }
        o += (size_t)snprintf(out + o, FORM_NUMBER_LEN - o, "e%c%ld", n - 1 < 0 ? '-' : '+',
                              labs(n - 1));
    }
    out[o] = '\0';
    return 0;
}

/* One encoding in progress. */
struct encoder {
    struct buf body; /* the pairs so far */
    struct buf key;  /* the key of the value at hand, escaped: a[b][0] */
    size_t max_len;  /* the caller's limit on the body */
    struct error *err;
};

/* Fail with the caller's size limit in the message. Returns -1. */
static int
too_large(struct encoder *e)
{
    return error_set(e->err, ERROR_PERMANENT, "the form body is larger than %zu bytes", e->max_len);
}

/* Append "key=text" (text escaped here) to the body. */
static int
put_pair(struct encoder *e, const char *text)
{
    if ((e->body.len > 0 && buf_append(&e->body, "&", 1) == -1) ||
        buf_append(&e->body, e->key.data, e->key.len) == -1 || buf_append(&e->body, "=", 1) == -1 ||
        put_escaped(&e->body, text) == -1)
        return too_large(e);
    return 0;
}

/* Cut the key back to its first len bytes, after a child is done. */
static void
key_cut(struct encoder *e, size_t len)
{
    e->key.len = len;
    if (e->key.data != NULL)
        e->key.data[len] = '\0';
}

static int encode_value(struct encoder *e, const cJSON *v, int parts);

/*
 * Append the pairs of the children of container v, whose own key (parts
 * parts long, 0 for the top level) is in e->key. Object members go under
 * [name] (bare at the top level), array items under [i].
 */
static int
encode_children(struct encoder *e, const cJSON *v, int parts)
{
    size_t mark = e->key.len;
    int index = 0;

    if (parts >= HTTP_FORM_MAX_DEPTH)
        return error_set(e->err, ERROR_PERMANENT, "the value at %.*s nests deeper than %d levels",
                         FORM_KEY_QUOTE_LEN, e->key.data, HTTP_FORM_MAX_DEPTH);
    for (const cJSON *c = v->child; c != NULL; c = c->next, index++) {
        int r;

        if (cJSON_IsArray(v)) {
            r = buf_printf(&e->key, "[%d]", index);
        } else if (c->string == NULL || c->string[0] == '\0') {
            /* "a[]" would read back as "append to a"; a bare "=v" as nothing. */
            return error_set(e->err, ERROR_PERMANENT, "an empty key under %.*s cannot be encoded",
                             FORM_KEY_QUOTE_LEN, parts == 0 ? "the top level" : e->key.data);
        } else if (parts == 0) {
            r = put_escaped(&e->key, c->string);
        } else {
            r = buf_append(&e->key, "[", 1) == -1 || put_escaped(&e->key, c->string) == -1 ||
                        buf_append(&e->key, "]", 1) == -1
                    ? -1
                    : 0;
        }
        /* Every key ends up in the body, so a key past the limit is a body past it. */
        if (r == -1)
            return too_large(e);
        if (encode_value(e, c, parts + 1) == -1)
            return -1;
        key_cut(e, mark);
    }
    return 0;
}

/* Append the pairs of v, whose key (parts parts long) is in e->key. */
static int
encode_value(struct encoder *e, const cJSON *v, int parts)
{
    char num[FORM_NUMBER_LEN];

    if (cJSON_IsObject(v) || cJSON_IsArray(v)) {
        /* Stripe unsets a list or a hash given an empty value. */
        if (v->child == NULL)
            return put_pair(e, "");
        return encode_children(e, v, parts);
    }
    if (cJSON_IsString(v))
        return put_pair(e, v->valuestring);
    if (cJSON_IsTrue(v))
        return put_pair(e, "true");
    if (cJSON_IsFalse(v))
        return put_pair(e, "false");
    if (cJSON_IsNull(v))
        return put_pair(e, "");
    if (cJSON_IsNumber(v)) {
        if (!isfinite(v->valuedouble))
            return error_set(e->err, ERROR_PERMANENT, "the number at %.*s is not finite",
                             FORM_KEY_QUOTE_LEN, e->key.data);
        if (number_text(v->valuedouble, num) == -1)
            return error_set(e->err, ERROR_PERMANENT,
                             "the integer %g at %.*s is too large for a form (1e21 or more)",
                             v->valuedouble, FORM_KEY_QUOTE_LEN, e->key.data);
        return put_pair(e, num);
    }
    return error_set(e->err, ERROR_PERMANENT, "the value at %.*s is raw or invalid JSON",
                     FORM_KEY_QUOTE_LEN, e->key.data);
}

int
http_form_encode(const cJSON *obj, size_t max_len, char **out, struct error *err)
{
    struct encoder e = {.max_len = max_len, .err = err};
    int r;

    *out = NULL;
    if (!cJSON_IsObject(obj))
        return error_set(err, ERROR_PERMANENT, "a form body is encoded from an object, not from %s",
                         obj == NULL           ? "nothing"
                         : cJSON_IsArray(obj)  ? "an array"
                         : cJSON_IsString(obj) ? "a string"
                         : cJSON_IsNumber(obj) ? "a number"
                         : cJSON_IsBool(obj)   ? "a boolean"
                         : cJSON_IsNull(obj)   ? "null"
                                               : "an invalid value");
    buf_init(&e.body, max_len);
    buf_init(&e.key, max_len);
    r = encode_children(&e, obj, 0);
    if (r == 0)
        *out = buf_take(&e.body);
    buf_fini(&e.body);
    buf_fini(&e.key);
    return r;
}

/* The value of hex digit c (either case), or -1. */
static int
hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/*
 * Decode the len bytes at s ('+' a space, %XX a byte) into out, which has
 * room for len + 1 bytes, and NUL-terminate it. Returns 0, or -1 with
 * *bad_at the offset in s of a bad escape or a NUL byte and *why saying
 * which.
 */
static int
unescape(const char *s, size_t len, char *out, size_t *bad_at, const char **why)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        size_t at = i;
        unsigned char c = (unsigned char)s[i];

        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = len - i >= 3 ? hex_value(s[i + 1]) : -1;
            int lo = len - i >= 3 ? hex_value(s[i + 2]) : -1;

            if (hi < 0 || lo < 0) {
                *bad_at = at;
                *why = "a '%' not followed by two hex digits";
                return -1;
            }
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        /* cJSON strings end at the first NUL, so one would be cut silently. */
        if (c == '\0') {
            *bad_at = at;
            *why = "a NUL byte";
            return -1;
        }
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return 0;
}

/* A part of a key: the name, or the text between one pair of brackets. */
struct form_part {
    size_t at;  /* offset in the body */
    size_t len; /* raw (still escaped) length */
};

/* One decoding in progress. */
struct decoder {
    const char *body;
    char *name;  /* a decoded part; room for the whole body */
    char *value; /* the decoded value; room for the whole body */
    struct error *err;
};

/* Fail for the body's byte at; the offset, not the bytes, goes in the
 * message, so no untrusted text reaches a log. Returns -1. */
static int
malformed(struct decoder *d, size_t at, const char *why)
{
    return error_set(d->err, ERROR_INVALID, "the form body at byte %zu: %s", at, why);
}

/* Add child under name; cJSON fails only out of memory, which aborts as
 * xmalloc() does. */
static void
add_child(cJSON *parent, const char *name, cJSON *child)
{
    cJSON_bool added;

    ASSERT(child != NULL);
    added = cJSON_AddItemToObject(parent, name, child);
    ASSERT(added);
}

/*
 * Split the key at [at, end) into parts: the name up to the first '[',
 * then each [segment]. Returns the number of parts, or -1 (err set) for an
 * empty name, unbalanced brackets, text after a ']' or too many parts.
 */
static int
split_key(struct decoder *d, size_t at, size_t end, struct form_part parts[HTTP_FORM_MAX_DEPTH])
{
    const char *b = d->body;
    size_t p = at;
    int count = 0;

    while (p < end && b[p] != '[' && b[p] != ']')
        p++;
    if (p < end && b[p] == ']')
        return malformed(d, p, "a ']' without its '['");
    if (p == at)
        return malformed(d, at, "a key with an empty name");
    parts[count++] = (struct form_part){at, p - at};
    while (p < end) {
        size_t open = p, close = p + 1;

        if (b[p] != '[')
            return malformed(d, p, "text after a ']' in a key");
        while (close < end && b[close] != ']' && b[close] != '[')
            close++;
        if (close == end || b[close] == '[')
            return malformed(d, open, "a '[' without its ']'");
        if (count == HTTP_FORM_MAX_DEPTH)
            return malformed(d, open, "a key nested deeper than 32 levels");
        parts[count++] = (struct form_part){open + 1, close - open - 1};
        p = close + 1;
    }
    return count;
}

/* Add the pair whose key is at [at, key_end) and value at [val, end). */
static int
decode_pair(struct decoder *d, cJSON *root, size_t at, size_t key_end, size_t val, size_t end)
{
    struct form_part parts[HTTP_FORM_MAX_DEPTH];
    cJSON *node = root;
    const char *why;
    size_t bad;
    int count = split_key(d, at, key_end, parts);

    if (count == -1)
        return -1;
    if (unescape(d->body + val, end - val, d->value, &bad, &why) == -1)
        return malformed(d, val + bad, why);
    for (int i = 0; i < count; i++) {
        cJSON *child;

        if (parts[i].len == 0) {
            /* "[]": the next index, as in expand[]=a&expand[]=b. */
            (void)snprintf(d->name, 16, "%d", cJSON_GetArraySize(node));
        } else if (unescape(d->body + parts[i].at, parts[i].len, d->name, &bad, &why) == -1) {
            return malformed(d, parts[i].at + bad, why);
        }
        child = cJSON_GetObjectItemCaseSensitive(node, d->name);
        if (i == count - 1) {
            if (child != NULL)
                return malformed(d, at,
                                 cJSON_IsObject(child) ? "a key that is both a value and a parent"
                                                       : "a key given twice");
            add_child(node, d->name, cJSON_CreateString(d->value));
        } else if (child == NULL) {
            child = cJSON_CreateObject();
            add_child(node, d->name, child);
            node = child;
        } else if (!cJSON_IsObject(child)) {
            return malformed(d, at, "a key that is both a value and a parent");
        } else {
            node = child;
        }
    }
    return 0;
}

/* Whether the members of object o are named "0", "1", ... in that order. */
static int
is_index_run(const cJSON *o)
{
    char want[16];
    int i = 0;

    for (const cJSON *c = o->child; c != NULL; c = c->next, i++) {
        (void)snprintf(want, sizeof(want), "%d", i);
        if (strcmp(c->string, want) != 0)
            return 0;
    }
    return 1;
}

/* Turn every object below o whose keys are an index run into an array. The
 * tree is ours and fresh, so the members' names are our strdup()s. */
static void
arrays_from_indexes(cJSON *o)
{
    for (cJSON *c = o->child; c != NULL; c = c->next) {
        if (!cJSON_IsObject(c))
            continue;
        arrays_from_indexes(c);
        if (c->child != NULL && is_index_run(c)) {
            c->type = cJSON_Array;
            for (cJSON *m = c->child; m != NULL; m = m->next) {
                cJSON_free(m->string);
                m->string = NULL;
            }
        }
    }
}

int
http_form_decode(const char *body, size_t len, cJSON **out, struct error *err)
{
    /* Decoding never lengthens text, so len + 1 bytes hold any part; 16
     * hold an index. */
    struct decoder d = {
        .body = body, .name = xmalloc(len + 16), .value = xmalloc(len + 1), .err = err};
    cJSON *root = cJSON_CreateObject();
    size_t at = 0;
    int r = 0;

    ASSERT(root != NULL);
    *out = NULL;
    while (r == 0 && at < len) {
        const char *amp = memchr(body + at, '&', len - at);
        size_t end = amp != NULL ? (size_t)(amp - body) : len;
        const char *eq = memchr(body + at, '=', end - at);
        size_t key_end = eq != NULL ? (size_t)(eq - body) : end;

        if (end > at)
            r = decode_pair(&d, root, at, key_end, eq != NULL ? key_end + 1 : end, end);
        at = end + 1;
    }
    free(d.name);
    free(d.value);
    if (r == -1) {
        cJSON_Delete(root);
        return -1;
    }
    arrays_from_indexes(root);
    *out = root;
    return 0;
}
