/* SPDX-License-Identifier: MIT */

/* The allocation wrappers of xmalloc.h; each aborts with a message on failure. */

#include "core/xmalloc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
out_of_memory(size_t size)
{
    fprintf(stderr, "concord: out of memory allocating %zu bytes\n", size);
    abort();
}

void *
xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);

    if (p == NULL)
        out_of_memory(size);
    return p;
}

void *
xcalloc(size_t count, size_t size)
{
    void *p;

    if (count == 0 || size == 0)
        count = size = 1;
    p = calloc(count, size);
    if (p == NULL)
        out_of_memory(count * size);
    return p;
}

void *
xreallocarray(void *ptr, size_t count, size_t size)
{
    void *p;

    if (size != 0 && count > SIZE_MAX / size)
        out_of_memory(SIZE_MAX);
    p = realloc(ptr, count * size != 0 ? count * size : 1);
    if (p == NULL)
        out_of_memory(count * size);
    return p;
}

char *
xstrdup(const char *s)
{
    if (s == NULL)
        return NULL;
    return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t len)
{
    char *p = xmalloc(len + 1);

    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *
xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *p;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&p, fmt, ap);
    va_end(ap);
    if (n < 0)
        out_of_memory(0);
    return p;
}
