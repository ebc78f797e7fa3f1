/* SPDX-License-Identifier: MIT */

/* The bounded buffer of buf.h. Growth doubles, capped by max_len + 1. */

#include "core/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xmalloc.h"

void
buf_init(struct buf *b, size_t max_len)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max_len = max_len;
}

void
buf_fini(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void
buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

static int
reserve(struct buf *b, size_t extra)
{
    size_t need, cap;

    if (extra > b->max_len || b->len > b->max_len - extra)
        return -1;
    need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    if (cap > b->max_len + 1)
        cap = b->max_len + 1;
    b->data = xreallocarray(b->data, cap, 1);
    b->cap = cap;
    return 0;
}

int
buf_append(struct buf *b, const void *data, size_t len)
{
    if (reserve(b, len) == -1)
        return -1;
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int
buf_puts(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || reserve(b, (size_t)n) == -1)
        return -1;
    va_start(ap, fmt);
    (void)vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

const char *
buf_str(const struct buf *b)
{
    return b->data ? b->data : "";
}

char *
buf_take(struct buf *b)
{
    char *s = b->data ? b->data : xstrdup("");

    b->data = NULL;
    b->len = b->cap = 0;
    return s;
}

size_t
buf_int_text(long long v, char *out)
{
    char digits[24];
    size_t at = sizeof(digits), n = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

    do {
        digits[--at] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        out[n++] = '-';
    memcpy(out + n, digits + at, sizeof(digits) - at);
    n += sizeof(digits) - at;
    out[n] = '\0';
    return n;
}
