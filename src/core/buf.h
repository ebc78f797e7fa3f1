/* SPDX-License-Identifier: MIT */

/*
 * A growable byte buffer with a maximum fixed at creation (curl's dynbuf).
 * Webhook bodies, HTTP responses and request bodies all live in one, so no
 * input from the network can make concord allocate without bound.
 *
 * The buffer is embedded in its owner: buf_init() a struct buf, use it,
 * buf_fini() it. Its contents are always NUL-terminated.
 */
#ifndef CONCORD_CORE_BUF_H
#define CONCORD_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "core/compiler.h"

struct buf {
    char *data;     /* NUL-terminated; NULL until the first append */
    size_t len;     /* bytes used, without the NUL */
    size_t cap;     /* bytes allocated */
    size_t max_len; /* appends that would pass this many bytes fail */
};

/* Prepare an empty buffer that may hold at most max_len bytes. */
void buf_init(struct buf *b, size_t max_len);

/* Release the memory; the buffer may be buf_init()ed again. */
void buf_fini(struct buf *b);

/* Empty the buffer and keep its memory. */
void buf_reset(struct buf *b);

/* Append len bytes. Returns 0, or -1 (and appends nothing) past max_len. */
MUST_CHECK int buf_append(struct buf *b, const void *data, size_t len);

/* Append a string. Same returns as buf_append(). */
MUST_CHECK int buf_puts(struct buf *b, const char *s);

/* Append formatted text. Same returns as buf_append(). */
MUST_CHECK int buf_printf(struct buf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);

/* The contents as a string: "" for an empty buffer, never NULL. */
const char *buf_str(const struct buf *b);

/* Move the contents out: a malloc()ed string the caller frees; b is left empty. */
char *buf_take(struct buf *b);

/* Room for any integer buf_int_text() writes, with its NUL. */
#define BUF_INT_SIZE 21

/* v's digits as "%lld" prints them, and a NUL, at out (BUF_INT_SIZE
 * bytes). Returns the length. For the hot paths where snprintf() cost more
 * than the rest (a backfill prints several ids a row). */
size_t buf_int_text(long long v, char *out);

#endif
