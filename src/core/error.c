/* SPDX-License-Identifier: MIT */

/*
 * The error helpers of error.h. Messages are truncated, never overflowed: a
 * sentence that does not fit in struct error's buffer loses its tail.
 */

#include "core/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void error_vset(struct error *err, enum error_kind kind, const char *fmt, va_list ap)
    PRINTF_LIKE(3, 0);

static void
error_vset(struct error *err, enum error_kind kind, const char *fmt, va_list ap)
{
    err->kind = kind;
    (void)vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
}

int
error_set(struct error *err, enum error_kind kind, const char *fmt, ...)
{
    va_list ap;

    if (err->kind != ERROR_NONE)
        return -1; /* keep the root cause; see error.h */
    va_start(ap, fmt);
    error_vset(err, kind, fmt, ap);
    va_end(ap);
    return -1;
}

int
error_set_errno(struct error *err, enum error_kind kind, const char *fmt, ...)
{
    int saved = errno;
    char why[128];
    size_t len;
    va_list ap;

    if (err->kind != ERROR_NONE)
        return -1;
    va_start(ap, fmt);
    error_vset(err, kind, fmt, ap);
    va_end(ap);
    /* The GNU strerror_r returns its text, which may not be in why. */
    const char *text = strerror_r(saved, why, sizeof(why));
    len = strlen(err->msg);
    if (len < sizeof(err->msg))
        (void)snprintf(err->msg + len, sizeof(err->msg) - len, ": %s", text);
    errno = saved;
    return -1;
}

int
error_wrap(struct error *err, const char *fmt, ...)
{
    char prefix[256];
    char old[sizeof(err->msg)];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    if (err->kind == ERROR_NONE)
        err->kind = ERROR_INTERNAL; /* a wrap without a cause is a bug */
    /* Truncation keeps the front: the context and the start of the cause. */
    size_t plen = strnlen(prefix, sizeof(prefix));
    if (plen > sizeof(err->msg) - 3)
        plen = sizeof(err->msg) - 3;
    memcpy(err->msg, prefix, plen);
    err->msg[plen] = ':';
    err->msg[plen + 1] = ' ';
    size_t room = sizeof(err->msg) - plen - 3;
    size_t olen = strnlen(old, room);
    memcpy(err->msg + plen + 2, old, olen);
    err->msg[plen + 2 + olen] = '\0';
    return -1;
}

void
error_clear(struct error *err)
{
    err->kind = ERROR_NONE;
    err->msg[0] = '\0';
}

const char *
error_kind_name(enum error_kind kind)
{
    switch (kind) {
    case ERROR_NONE:
        return "none";
    case ERROR_INVALID:
        return "invalid";
    case ERROR_IO:
        return "io";
    case ERROR_STORE:
        return "store";
    case ERROR_TRANSIENT:
        return "transient";
    case ERROR_PERMANENT:
        return "permanent";
    case ERROR_MAPPING:
        return "mapping";
    case ERROR_AUTH:
        return "auth";
    case ERROR_INTERNAL:
        return "internal";
    }
    return "unknown";
}

void
compiler_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "concord: assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}
