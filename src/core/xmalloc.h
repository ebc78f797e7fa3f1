/* SPDX-License-Identifier: MIT */

/*
 * Allocation that never returns NULL. Out of memory aborts the process; that
 * is safe for concord because every change is durable before it is
 * acknowledged and every job is leased (DESIGN.md, "Guarantees"), so a crash
 * loses nothing. Sizes that come from the network are bounded before they
 * reach these functions.
 */
#ifndef CONCORD_CORE_XMALLOC_H
#define CONCORD_CORE_XMALLOC_H

#include <stddef.h>

/* malloc(); the result is the caller's, released with free(). */
void *xmalloc(size_t size);

/* calloc(), with the multiplication checked for overflow. */
void *xcalloc(size_t count, size_t size);

/* realloc() of count elements of size bytes, checked for overflow. */
void *xreallocarray(void *ptr, size_t count, size_t size);

/* strdup(); xstrdup(NULL) returns NULL. */
char *xstrdup(const char *s);

/* A copy of the first len bytes of s, NUL-terminated. */
char *xstrndup(const char *s, size_t len);

/* A newly allocated formatted string, released with free(). */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
