/* SPDX-License-Identifier: MIT */

/* The Link header (RFC 8288), as paginated APIs use it for their next page. */
#ifndef CONCORD_HTTP_HTTP_LINK_H
#define CONCORD_HTTP_HTTP_LINK_H

/*
 * The target of the rel="next" link of a Link header value
 * ('<https://api/x?page=2>; rel="next", <...>; rel="last"'), malloc()ed;
 * NULL when there is none (or its target is empty). Any bytes are safe.
 */
char *http_link_next(const char *link);

#endif
