/* SPDX-License-Identifier: MIT */

/*
 * Outbound HTTP: many transfers in flight at once over libcurl's multi
 * interface, with keep-alive connections reused per host.
 *
 * One struct http_client belongs to one thread (the delivery worker). The
 * owner submits requests, then calls http_client_run() in its loop; each
 * finished transfer is handed to the request's callback, on that thread,
 * from inside http_client_run(). http_client_wakeup() may be called from any
 * thread to make a waiting http_client_run() return early.
 *
 * Nothing here decides policy: the response says what happened (status,
 * headers, body, and for transport failures whether the request may have
 * reached the server), and the engine decides what it means.
 *
 * libcurl sends a request again by itself when a reused keep-alive
 * connection dies before any answer byte. A request marked send_once is
 * never sent twice that way (http_client.c says how), so the engine may
 * send a create without an idempotency key over a kept-alive connection.
 */
#ifndef CONCORD_HTTP_HTTP_CLIENT_H
#define CONCORD_HTTP_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/compiler.h"

struct error;
struct http_client;

/* How a transfer ended. */
enum http_outcome {
    HTTP_OUTCOME_RESPONSE = 1, /* the server answered; see status */
    HTTP_OUTCOME_NOT_SENT,     /* the server cannot hold the whole request: DNS, connect
                                  refused; for send_once, no byte of the body left */
    HTTP_OUTCOME_TIMEOUT,      /* no full answer in time: the request may have been applied */
    HTTP_OUTCOME_LOST,         /* connection reset or closed after sending: may have been applied */
};

struct http_header {
    const char *name;
    const char *value;
};

struct http_response {
    enum http_outcome outcome;
    long status;      /* HTTP status when outcome is RESPONSE, else 0 */
    const char *body; /* the body (NUL-terminated), at most max_body bytes; never NULL */
    size_t body_len;
    int body_truncated;      /* 1 when the body was longer than max_body */
    const char *retry_after; /* the Retry-After header's value, or NULL */
    const char *error;       /* for transport failures: libcurl's text; else NULL */
    int64_t elapsed_us;      /* from submit to completion */
    /* libcurl sent the request more than once (a reused connection closed
     * before any answer byte, and it started over on a new one): the
     * answer is the last copy's, and an earlier copy may have been carried
     * out. Never for a send-once request with a body (on_prereq()
     * refuses the resend); one without a body goes over a fresh
     * connection, which only HTTP/2's refused-stream retry sends twice. */
    int resent;
    void *handle; /* private: for http_response_header() */
};

/*
 * The value of a header of the answer (case-insensitive name; the last one
 * when repeated), or NULL. Valid only inside the done callback.
 */
const char *http_response_header(const struct http_response *resp, const char *name);

/*
 * Called once per submitted request with its response. resp and all its
 * strings are borrowed for the duration of the call only.
 */
typedef void http_client_done_fn(void *user, const struct http_response *resp);

struct http_request {
    const char *method;                /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *url;                   /* absolute: "http://127.0.0.1:8482/contacts/42" */
    const struct http_header *headers; /* extra headers; may be NULL */
    size_t header_count;
    const char *body; /* may be NULL; sent as application/json when set */
    size_t body_len;
    int64_t timeout_ms; /* whole transfer, connect included */
    size_t max_body;    /* response body bytes kept; more is dropped and flagged */
    int send_once;      /* 1: must not reach the server twice (a create without an
                           idempotency key): libcurl never resends it by itself, and
                           it reuses only a connection idle under a second or two */
    http_client_done_fn *done;
    void *user;
};

/* A new client. On success *out is the caller's; release with http_client_free(). */
MUST_CHECK int http_client_new(struct http_client **out, struct error *err);

/*
 * Release a client. Transfers still in flight are aborted without calling
 * their callbacks. Accepts NULL.
 */
void http_client_free(struct http_client *c);

/*
 * Start a transfer. Everything in req is copied; req may be released on
 * return. Returns 0, or -1 (err set, callback never called) if libcurl
 * refuses the transfer.
 */
MUST_CHECK int http_client_submit(struct http_client *c, const struct http_request *req,
                                  struct error *err);

/*
 * Drive transfers for at most timeout_ms (0 = do not wait), calling the done
 * callbacks of those that finish. Returns the number of transfers still in
 * flight.
 */
int http_client_run(struct http_client *c, int timeout_ms);

/* Make a concurrent or the next http_client_run() return at once. Any thread. */
void http_client_wakeup(struct http_client *c);

/* Transfers in flight now. */
size_t http_client_in_flight(const struct http_client *c);

#endif
