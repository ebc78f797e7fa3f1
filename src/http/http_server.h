/* SPDX-License-Identifier: MIT */

/*
 * Inbound HTTP: routes, body limits and answers, over libmicrohttpd with a
 * pool of two threads on epoll. A handler must not block: quick ones answer
 * at once; one that waits (a webhook waits for its commit) is asynchronous
 * and finishes its reply later, its connection suspended meanwhile. Unknown paths are answered 404
 * and bodies above a route's limit 413 before the handler runs, so no handler sees more than it
 * allowed.
 */
#ifndef CONCORD_HTTP_HTTP_SERVER_H
#define CONCORD_HTTP_HTTP_SERVER_H

#include <stddef.h>

#include "core/compiler.h"

struct error;
struct http_server;
struct http_server_request;

/* What a handler sees. All pointers are borrowed for the call. */
struct http_server_request {
    const char *method;
    const char *path;
    const char *body; /* NUL-terminated for convenience; may hold NULs */
    size_t body_len;
    const char *request_id; /* for logs: "r-000042" */
    void *conn;             /* for http_server_header() */
};

/* The value of a request header (case-insensitive), or NULL. */
const char *http_server_header(const struct http_server_request *req, const char *name);

/* The value of a query parameter ("?all=1": "1"; "?all": ""), or NULL. */
const char *http_server_query(const struct http_server_request *req, const char *name);

/* 1 when the client connected from the loopback (127.0.0.0/8 or ::1). */
int http_server_peer_is_loopback(const struct http_server_request *req);

/*
 * A handler fills *status and returns the body text (malloc()ed, freed by
 * the server; NULL for none). The content type is application/json unless
 * *content_type is set to a static string.
 */
typedef char *http_server_handler_fn(void *user, const struct http_server_request *req, int *status,
                                     const char **content_type);

/*
 * An asynchronous handler: it gets a reply to finish, now or later, from
 * any thread, with http_server_reply_finish(). The connection is suspended
 * meanwhile and holds no thread, so a handler may wait for a commit
 * without blocking the server's few threads. The request (body, headers)
 * stays valid until the reply is finished.
 */
struct http_server_reply;
typedef void http_server_async_fn(void *user, const struct http_server_request *req,
                                  struct http_server_reply *reply);

/*
 * Answer an asynchronous request: status and a JSON body (malloc()ed, taken;
 * NULL for none). Exactly once per reply; any thread.
 */
void http_server_reply_finish(struct http_server_reply *reply, int status, char *body);

/* The content type of the answer's body (a static string; the default is
 * application/json), before http_server_reply_finish(). */
void http_server_reply_content_type(struct http_server_reply *reply, const char *content_type);

/* How many headers an answer may add with http_server_reply_header(). */
#define HTTP_SERVER_MAX_REPLY_HEADERS 4

/*
 * Add a header to the answer (WWW-Authenticate, Allow), before
 * http_server_reply_finish(). name and value are copied; at most
 * HTTP_SERVER_MAX_REPLY_HEADERS are kept, more are ignored.
 */
void http_server_reply_header(struct http_server_reply *reply, const char *name, const char *value);

/*
 * Listen on addr ("127.0.0.1:8480", "[::1]:8480" or ":8480") with no routes
 * yet. Add routes before requests arrive: http_server_route() is not safe
 * once requests are served. On success *out is the caller's; release with
 * http_server_close(), which stops accepting and waits for handlers.
 */
MUST_CHECK int http_server_open(struct http_server **out, const char *addr, struct error *err);

/*
 * Serve method (NULL = any) requests for exactly path with fn(user, ...).
 * Bodies above max_body bytes are answered 413. Returns 0, or -1.
 */
MUST_CHECK int http_server_route(struct http_server *srv, const char *method, const char *path,
                                 size_t max_body, http_server_handler_fn *fn, void *user,
                                 struct error *err);

/* Serve method requests for exactly path with an asynchronous handler. */
MUST_CHECK int http_server_route_async(struct http_server *srv, const char *method,
                                       const char *path, size_t max_body, http_server_async_fn *fn,
                                       void *user, struct error *err);

/*
 * Serve every request whose path starts with prefix ("/api/"), whatever its
 * method, with an asynchronous handler: the handler routes within it and
 * answers 404 and 405 itself. An exact route is preferred to a prefix.
 */
MUST_CHECK int http_server_route_prefix(struct http_server *srv, const char *prefix,
                                        size_t max_body, http_server_async_fn *fn, void *user,
                                        struct error *err);

/* Start serving. */
MUST_CHECK int http_server_start(struct http_server *srv, struct error *err);

/*
 * Stop accepting connections; handlers in progress finish, and replies not
 * finished yet are waited for (up to 30 s: longer than the store waits for
 * a lock, so each gets its answer). Idempotent.
 */
void http_server_stop(struct http_server *srv);

/* Stop and release. Accepts NULL. */
void http_server_close(struct http_server *srv);

/* The port actually bound (useful with port 0). */
int http_server_port(const struct http_server *srv);

#endif
