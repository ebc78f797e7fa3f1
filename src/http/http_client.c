/* SPDX-License-Identifier: MIT */

/*
 * The outbound HTTP client of http_client.h, over libcurl's multi interface.
 *
 * One CURLM per client holds the connection cache, so keep-alive
 * connections are reused across transfers to the same host. Each transfer
 * owns an easy handle and copies of everything in the request; finished
 * transfers go back to a short free list and their easy handles are reset
 * and reused.
 *
 * Classification of failures (what the engine needs to know is whether the
 * request may have reached the server): libcurl calls every transfer's
 * pre-request callback (on_prereq) once a connection is up (TCP, TLS), new
 * or reused, just before it sends the request, and again before each
 * request it sends anew by itself. A failure before the first call is
 * HTTP_OUTCOME_NOT_SENT whatever its code. (libcurl's "pretransfer" timer
 * marks the same point, but a resend whose new connection fails ends with
 * "could not connect" about a request that did go out once.) A send-once
 * request has a second rule, "Send-once requests" below.
 */

#include "http/http_client.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/xmalloc.h"

#define CLIENT_MAX_FREE        64  /* idle transfers kept for reuse */
#define CLIENT_MAX_HOST_CONNS  32  /* connections per host; more transfers wait for one */
#define CLIENT_MAX_IDLE_CONNS  128 /* idle connections kept for reuse, all hosts together */
#define CLIENT_RETRY_AFTER_MAX 128 /* longer Retry-After values are ignored */
/* A send-once request reuses only a connection idle no longer than this
 * (CURLOPT_MAXAGE_CONN); see "Send-once requests" for why. */
#define CLIENT_SEND_ONCE_MAX_IDLE_S 1L

struct transfer {
    struct http_client *client;
    CURL *easy;
    struct transfer *prev, *next; /* in the client's in-flight or free list */
    struct curl_slist *headers;
    char *method;
    char *url;
    char *body;
    size_t body_len;
    size_t body_given; /* send-once: body bytes that may have gone out (on_prereq()) */
    int send_once;
    int attempts;       /* calls of on_prereq: requests libcurl was about to send */
    int resend_refused; /* send-once: libcurl tried to send it again and was refused */
    struct buf resp;
    int truncated;
    int has_retry_after;
    char retry_after[CLIENT_RETRY_AFTER_MAX];
    char errbuf[CURL_ERROR_SIZE];
    int64_t start_ns;
    http_client_done_fn *done;
    void *user;
};

struct http_client {
    CURLM *multi;
    struct transfer *active; /* in flight, doubly linked */
    struct transfer *idle;   /* free list, singly linked through next */
    size_t active_count;
    size_t idle_count;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;

static void
global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Forget the request-specific parts of t; the easy handle stays. */
static void
transfer_clear(struct transfer *t)
{
    /* Header values carry credentials (auth headers): wipe before freeing. */
    for (struct curl_slist *l = t->headers; l != NULL; l = l->next)
        explicit_bzero(l->data, strlen(l->data));
    curl_slist_free_all(t->headers);
    t->headers = NULL;
    free(t->method);
    t->method = NULL;
    free(t->url);
    t->url = NULL;
    free(t->body);
    t->body = NULL;
    t->body_len = 0;
    t->body_given = 0;
    t->send_once = 0;
    t->attempts = 0;
    t->resend_refused = 0;
    buf_fini(&t->resp);
    t->truncated = 0;
    t->has_retry_after = 0;
    t->retry_after[0] = '\0';
    t->errbuf[0] = '\0';
    t->done = NULL;
    t->user = NULL;
}

static void
transfer_destroy(struct transfer *t)
{
    transfer_clear(t);
    curl_easy_cleanup(t->easy);
    free(t);
}

static void
active_unlink(struct http_client *c, struct transfer *t)
{
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        c->active = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    t->prev = t->next = NULL;
    c->active_count--;
}

/* Return a finished transfer to the free list, or destroy it if that is full. */
static void
transfer_release(struct http_client *c, struct transfer *t)
{
    if (c->idle_count >= CLIENT_MAX_FREE) {
        transfer_destroy(t);
        return;
    }
    transfer_clear(t);
    t->next = c->idle;
    c->idle = t;
    c->idle_count++;
}

static size_t
on_body(char *data, size_t size, size_t nmemb, void *user)
{
    struct transfer *t = user;
    size_t len = size * nmemb, room = t->resp.max_len - t->resp.len;

    if (len <= room && buf_append(&t->resp, data, len) == 0)
        return len;
    /*
     * Keep what fits and stop the transfer: reading the rest would only
     * tie up the connection. classify() still reports the response.
     */
    if (room > 0) {
        int rc = buf_append(&t->resp, data, room); /* room is what max_len leaves */

        ASSERT(rc == 0);
    }
    t->truncated = 1;
    return CURL_WRITEFUNC_ERROR;
}

static int
ascii_lower(int ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

static int
has_prefix_nocase(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);

    if (len < n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (ascii_lower((unsigned char)s[i]) != prefix[i])
            return 0;
    }
    return 1;
}

/* Header lines, one per call, CRLF included; we keep only Retry-After. */
static size_t
on_header(char *data, size_t size, size_t nmemb, void *user)
{
    struct transfer *t = user;
    size_t len = size * nmemb;
    const char *v, *end;

    /* A new status line (after 100 Continue, say) starts a new header set. */
    if (has_prefix_nocase(data, len, "http/")) {
        t->has_retry_after = 0;
        return len;
    }
    if (!has_prefix_nocase(data, len, "retry-after:"))
        return len;
    v = data + strlen("retry-after:");
    end = data + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if ((size_t)(end - v) < sizeof(t->retry_after)) {
        memcpy(t->retry_after, v, (size_t)(end - v));
        t->retry_after[end - v] = '\0';
        t->has_retry_after = 1;
    }
    return len;
}

int
http_client_new(struct http_client **out, struct error *err)
{
    struct http_client *c;

    (void)pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return error_set(err, ERROR_INTERNAL, "curl_global_init: %s",
                         curl_easy_strerror(global_rc));
    c = xcalloc(1, sizeof(*c));
    c->multi = curl_multi_init();
    if (c->multi == NULL) {
        free(c);
        return error_set(err, ERROR_INTERNAL, "curl_multi_init failed");
    }
    (void)curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)CLIENT_MAX_HOST_CONNS);
    /* libcurl's default keeps 4 connections per transfer in flight *now*:
     * whenever the number in flight dips, it closes connections it needs
     * again a moment later (a relay of 20,000 changes with 32 in flight
     * opened 1,207 connections; with a fixed size, 32). */
    (void)curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)CLIENT_MAX_IDLE_CONNS);
    *out = c;
    return 0;
}

void
http_client_free(struct http_client *c)
{
    if (c == NULL)
        return;
    while (c->active != NULL) {
        struct transfer *t = c->active;

        (void)curl_multi_remove_handle(c->multi, t->easy);
        active_unlink(c, t);
        transfer_destroy(t);
    }
    while (c->idle != NULL) {
        struct transfer *t = c->idle;

        c->idle = t->next;
        transfer_destroy(t);
    }
    curl_multi_cleanup(c->multi);
    free(c);
}

/* A header name or value must not break the request's framing. */
static int
header_is_safe(const char *s)
{
    return strpbrk(s, "\r\n") == NULL;
}

static int
method_is_token(const char *m)
{
    if (*m == '\0')
        return 0;
    for (; *m != '\0'; m++) {
        if (*m < 'A' || *m > 'Z')
            return 0;
    }
    return 1;
}

static int
names_match(const char *a, const char *b)
{
    return strlen(a) == strlen(b) && has_prefix_nocase(a, strlen(a), b);
}

/* The header list: the caller's, Content-Type for a body, no "Expect: 100-continue". */
static int
build_headers(struct transfer *t, const struct http_request *req, struct error *err)
{
    int has_content_type = 0;

    for (size_t i = 0; i < req->header_count; i++) {
        const struct http_header *h = &req->headers[i];
        char *line;
        struct curl_slist *l;

        if (h->name == NULL || h->name[0] == '\0' || strchr(h->name, ':') != NULL ||
            !header_is_safe(h->name) || h->value == NULL || !header_is_safe(h->value))
            return error_set(err, ERROR_INVALID, "%s %s: header %zu is not a valid header",
                             req->method, req->url, i);
        has_content_type |= names_match(h->name, "content-type");
        /* "Name;" is curl's way to send a header with an empty value. */
        line = h->value[0] != '\0' ? xasprintf("%s: %s", h->name, h->value)
                                   : xasprintf("%s;", h->name);
        l = curl_slist_append(t->headers, line);
        explicit_bzero(line, strlen(line));
        free(line);
        if (l == NULL)
            return error_set(err, ERROR_INTERNAL, "curl_slist_append failed");
        t->headers = l;
    }
    if (req->body != NULL && !has_content_type) {
        struct curl_slist *l = curl_slist_append(t->headers, "Content-Type: application/json");

        if (l == NULL)
            return error_set(err, ERROR_INTERNAL, "curl_slist_append failed");
        t->headers = l;
    }
    {
        struct curl_slist *l = curl_slist_append(t->headers, "Expect:");

        if (l == NULL)
            return error_set(err, ERROR_INTERNAL, "curl_slist_append failed");
        t->headers = l;
    }
    return 0;
}

/*
 * Send-once requests: keep-alive without silent resends.
 *
 * When a transfer over a reused keep-alive connection ends without an
 * answer byte (the server closed the connection while the request was on
 * its way), libcurl closes it and sends the request again over a new one
 * (lib/transfer.c, Curl_retry_request(); libcurl 7.88 in Debian 12 and
 * later alike). It cannot know whether the server acted on the first copy:
 * for a create without an idempotency key that is a duplicate.
 *
 * libcurl calls the pre-request callback before every request it sends,
 * the first and any it sends anew over another connection. on_prereq()
 * lets the first one of a send-once request go and refuses any other,
 * which ends the transfer (CURLE_ABORTED_BY_CALLBACK) before anything is
 * sent again. The body (CURLOPT_POSTFIELDS) goes out with the request's
 * headers, in one write when it is under 64 KiB, so it counts as handed
 * out from the first pre-request call on. Then:
 *
 * - The request never got that far (no connection, DNS, TLS): nothing was
 *   sent, and the failure is HTTP_OUTCOME_NOT_SENT: safe to send again.
 * - It did: the request may have been carried out, even when the server
 *   closed the connection without reading it, since nothing tells the two
 *   apart. A failure is LOST or TIMEOUT, which the engine settles by key or
 *   look-up, or parks as "outcome unknown".
 *
 * (A body fed by a read callback, whose seek callback refuses to rewind,
 * would tell "not a byte of the body handed out yet" apart, but libcurl
 * then writes the headers and the body separately: two packets a request,
 * and a relay 10% slower for a race as rare as the one below.)
 *
 * The race that makes a resend necessary is a server closing an idle
 * connection just as the request reaches it. libcurl checks a cached
 * connection before reusing it and drops one whose close has already
 * arrived, so the race needs a connection idle for about as long as the
 * server keeps idle connections: 5 s in Node.js and Apache 2.4, 2 s in
 * older gunicorn, 60-75 s in nginx and in load balancers. A send-once
 * request therefore reuses only a connection idle at most
 * CLIENT_SEND_ONCE_MAX_IDLE_S = 1 s (CURLOPT_MAXAGE_CONN; libcurl 7.88
 * counts idle time in whole seconds and refuses more than that, so under
 * 2 s there, 1 s in libcurl 8, which counts milliseconds). Under load a
 * connection idles for milliseconds, so creates still share connections;
 * at a trickle each opens its own, as before. (libcurl's once-a-second
 * sweep of dead connections applies the sweeping transfer's limit to all
 * of them, so a send-once request also closes other connections idle that
 * long: a reconnect now and then for the others.) Should the race be lost
 * all the same, the create is LOST, never sent twice.
 *
 * A send-once request without a body goes over a fresh connection, where
 * libcurl never resends.
 */

/* Before each request libcurl sends, the first and any it sends anew. */
static int
on_prereq(void *user, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
    struct transfer *t = user;

    (void)primary_ip;
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    if (t->attempts++ > 0 && t->send_once && t->body_given > 0) {
        t->resend_refused = 1;
        return CURL_PREREQFUNC_ABORT;
    }
    if (t->send_once)
        t->body_given = t->body_len; /* goes out with the headers */
    return CURL_PREREQFUNC_OK;
}

/* Set every option of one transfer. Returns the first failing code. */
static CURLcode
setup_easy(struct transfer *t, const struct http_request *req)
{
    CURL *e = t->easy;
    CURLcode rc = CURLE_OK;

#define SET(opt, val)                           \
    do {                                        \
        if (rc == CURLE_OK)                     \
            rc = curl_easy_setopt(e, opt, val); \
    } while (0)
    SET(CURLOPT_URL, t->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? (long)req->timeout_ms : 0L);
    SET(CURLOPT_PREREQFUNCTION, on_prereq);
    SET(CURLOPT_PREREQDATA, t);
    /* A send-once request without a body: see "Send-once requests". */
    SET(CURLOPT_FRESH_CONNECT, req->send_once && t->body_len == 0 ? 1L : 0L);
    SET(CURLOPT_TCP_NODELAY, 1L);
    SET(CURLOPT_PROXY, ""); /* never a proxy from the environment */
    SET(CURLOPT_HTTPHEADER, t->headers);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, t);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, t);
    SET(CURLOPT_ERRORBUFFER, t->errbuf);
    SET(CURLOPT_PRIVATE, t);
    if (strcmp(t->method, "GET") == 0 && req->body == NULL) {
        SET(CURLOPT_HTTPGET, 1L);
    } else if (strcmp(t->method, "HEAD") == 0) {
        SET(CURLOPT_NOBODY, 1L);
    } else {
        /* A POST's body goes with any method; CUSTOMREQUEST names it. */
        if (req->body != NULL || strcmp(t->method, "POST") == 0) {
            SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)t->body_len);
            SET(CURLOPT_POSTFIELDS, t->body);
        }
        if (t->send_once && t->body_len > 0)
            SET(CURLOPT_MAXAGE_CONN, CLIENT_SEND_ONCE_MAX_IDLE_S);
        if (strcmp(t->method, "POST") != 0)
            SET(CURLOPT_CUSTOMREQUEST, t->method);
    }
#undef SET
    return rc;
}

/* An idle transfer with a reset easy handle, or a new one. NULL if curl fails. */
static struct transfer *
transfer_get(struct http_client *c)
{
    struct transfer *t = c->idle;

    if (t != NULL) {
        c->idle = t->next;
        c->idle_count--;
        t->next = NULL;
        curl_easy_reset(t->easy);
        return t;
    }
    t = xcalloc(1, sizeof(*t));
    t->easy = curl_easy_init();
    if (t->easy == NULL) {
        free(t);
        return NULL;
    }
    t->client = c;
    buf_init(&t->resp, 0);
    return t;
}

int
http_client_submit(struct http_client *c, const struct http_request *req, struct error *err)
{
    struct transfer *t;
    CURLcode rc;
    CURLMcode mrc;

    if (req->method == NULL || !method_is_token(req->method) || req->url == NULL)
        return error_set(err, ERROR_INVALID, "HTTP request without a valid method and URL");
    t = transfer_get(c);
    if (t == NULL)
        return error_set(err, ERROR_INTERNAL, "curl_easy_init failed");
    t->method = xstrdup(req->method);
    t->url = xstrdup(req->url);
    /* The body is copied: the caller may free req on return (http_client.h). */
    if (req->body != NULL) {
        t->body = xmalloc(req->body_len + 1);
        memcpy(t->body, req->body, req->body_len);
        t->body[req->body_len] = '\0';
        t->body_len = req->body_len;
    }
    t->send_once = req->send_once;
    buf_init(&t->resp, req->max_body);
    t->done = req->done;
    t->user = req->user;
    if (build_headers(t, req, err) == -1) {
        transfer_release(c, t);
        return -1;
    }
    rc = setup_easy(t, req);
    if (rc != CURLE_OK) {
        transfer_release(c, t);
        return error_set(err, ERROR_INVALID, "%s %s: %s", req->method, req->url,
                         curl_easy_strerror(rc));
    }
    t->start_ns = clock_mono_ns();
    mrc = curl_multi_add_handle(c->multi, t->easy);
    if (mrc != CURLM_OK) {
        transfer_release(c, t);
        return error_set(err, ERROR_INTERNAL, "%s %s: %s", req->method, req->url,
                         curl_multi_strerror(mrc));
    }
    t->prev = NULL;
    t->next = c->active;
    if (c->active != NULL)
        c->active->prev = t;
    c->active = t;
    c->active_count++;
    return 0;
}

/*
 * What a finished transfer means for the engine: see the top of this file
 * and "Send-once requests". Guarantee: NOT_SENT only when the server
 * cannot hold the whole request, so sending it again cannot duplicate it.
 */
static enum http_outcome
classify(const struct transfer *t, CURLcode code)
{
    if (code == CURLE_OK || (code == CURLE_WRITE_ERROR && t->truncated))
        return HTTP_OUTCOME_RESPONSE;
    if (t->attempts == 0)
        return HTTP_OUTCOME_NOT_SENT; /* never got to sending: DNS, connect, TLS */
    if (code == CURLE_OPERATION_TIMEDOUT)
        return HTTP_OUTCOME_TIMEOUT;
    return HTTP_OUTCOME_LOST;
}

static void
on_done(struct http_client *c, struct transfer *t, CURLcode code)
{
    struct http_response resp;
    char why[CURL_ERROR_SIZE + 64];

    memset(&resp, 0, sizeof(resp));
    resp.outcome = classify(t, code);
    if (resp.outcome == HTTP_OUTCOME_RESPONSE) {
        (void)curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &resp.status);
        resp.retry_after = t->has_retry_after ? t->retry_after : NULL;
        resp.handle = t->easy;
    } else {
        resp.error = t->errbuf[0] != '\0' ? t->errbuf : curl_easy_strerror(code);
        if (t->resend_refused) {
            /* libcurl's own words would be "seek callback returned error". */
            (void)snprintf(why, sizeof(why), "%s (the connection closed; not sent again)",
                           resp.error);
            resp.error = why;
        }
    }
    resp.body = buf_str(&t->resp);
    resp.body_len = t->resp.len;
    resp.body_truncated = t->truncated;
    resp.elapsed_us = (clock_mono_ns() - t->start_ns) / 1000;
    resp.resent = t->attempts > 1 && !t->resend_refused;

    (void)curl_multi_remove_handle(c->multi, t->easy);
    active_unlink(c, t);
    /* The callback may submit new requests; t is not on the free list yet. */
    if (t->done != NULL)
        t->done(t->user, &resp);
    transfer_release(c, t);
}

/* Hand every finished transfer to its callback. Returns how many finished. */
static int
drain(struct http_client *c)
{
    CURLMsg *msg;
    int queued, finished = 0;

    while ((msg = curl_multi_info_read(c->multi, &queued)) != NULL) {
        char *priv = NULL;
        struct transfer *t;

        if (msg->msg != CURLMSG_DONE)
            continue;
        (void)curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        t = (struct transfer *)(void *)priv;
        if (NEVER(t == NULL))
            continue;
        on_done(c, t, msg->data.result);
        finished++;
    }
    return finished;
}

int
http_client_run(struct http_client *c, int timeout_ms)
{
    int running = 0;

    (void)curl_multi_perform(c->multi, &running);
    if (drain(c) == 0 && timeout_ms > 0) {
        (void)curl_multi_poll(c->multi, NULL, 0, timeout_ms, NULL);
        (void)curl_multi_perform(c->multi, &running);
        (void)drain(c);
    }
    return (int)c->active_count;
}

void
http_client_wakeup(struct http_client *c)
{
    (void)curl_multi_wakeup(c->multi);
}

size_t
http_client_in_flight(const struct http_client *c)
{
    return c->active_count;
}

const char *
http_response_header(const struct http_response *resp, const char *name)
{
    struct curl_header *h = NULL;

    if (resp->handle == NULL ||
        curl_easy_header(resp->handle, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK || h == NULL)
        return NULL;
    return h->value;
}
