/* SPDX-License-Identifier: MIT */

/*
 * tests/unit/test_http_client.c — the outbound client (src/http/http_client.c)
 * against a tiny scripted HTTP/1.1 server on 127.0.0.1 that runs in a thread
 * of the test: one poll() loop, keep-alive, and a mode that says how it
 * answers (200 with JSON, 503 with Retry-After, close, never, a big body).
 */
/* link: http config */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "core/clock.h"
#include "core/error.h"
#include "http/http_client.h"

enum srv_mode {
    SRV_OK = 1, /* 200, {"ok":true} */
    SRV_503,    /* 503 with retry-after: 2 */
    SRV_CLOSE,  /* read the request, close without a word */
    SRV_HANG,   /* read the request, never answer */
    SRV_BIG,    /* 200 with big_len bytes of 'x' */
};

#define SRV_MAX_CONNS 128
#define SRV_CONN_BUF  65536

struct srv_conn {
    int fd;
    size_t len;
    char buf[SRV_CONN_BUF];
};

struct server {
    int listen_fd;
    int port;
    int stop_pipe[2];
    pthread_t thread;
    pthread_mutex_t mu;
    /* Under mu: */
    enum srv_mode mode;
    size_t big_len;
    int connections; /* accepted so far */
    int requests;    /* complete requests read so far */
    char last_head[4096];
    char last_body[4096];
    struct srv_conn *conns[SRV_MAX_CONNS];
};

static void
srv_send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        if (n <= 0)
            return; /* the client went away: fine for these tests */
        p += n;
        len -= (size_t)n;
    }
}

static void
srv_answer(struct server *s, int fd, enum srv_mode mode, size_t big_len)
{
    char head[256];
    int n;

    (void)s;
    if (mode == SRV_OK) {
        static const char body[] = "{\"ok\":true}";

        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
        srv_send_all(fd, head, (size_t)n);
    } else if (mode == SRV_503) {
        static const char resp[] = "HTTP/1.1 503 Service Unavailable\r\nretry-after:  2 \r\n"
                                   "Content-Length: 0\r\n\r\n";

        srv_send_all(fd, resp, strlen(resp));
    } else if (mode == SRV_BIG) {
        char *body = malloc(big_len);

        memset(body, 'x', big_len);
        n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", big_len);
        srv_send_all(fd, head, (size_t)n);
        srv_send_all(fd, body, big_len);
        free(body);
    }
}

static size_t
srv_content_length(const char *head)
{
    for (const char *p = strstr(head, "\r\n"); p != NULL; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, "content-length:", 15) == 0)
            return (size_t)strtoul(p + 17, NULL, 10);
    }
    return 0;
}

/* Handle every complete request in c's buffer. Returns -1 to close c. */
static int
srv_process(struct server *s, struct srv_conn *c)
{
    for (;;) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        size_t head_len, body_len, total;
        enum srv_mode mode;
        size_t big_len;

        if (end == NULL)
            return 0;
        head_len = (size_t)(end - c->buf) + 4;
        *end = '\0';
        body_len = srv_content_length(c->buf);
        *end = '\r';
        total = head_len + body_len;
        if (total > c->len)
            return 0;
        pthread_mutex_lock(&s->mu);
        s->requests++;
        (void)snprintf(s->last_head, sizeof(s->last_head), "%.*s", (int)head_len, c->buf);
        (void)snprintf(s->last_body, sizeof(s->last_body), "%.*s", (int)body_len,
                       c->buf + head_len);
        mode = s->mode;
        big_len = s->big_len;
        pthread_mutex_unlock(&s->mu);
        memmove(c->buf, c->buf + total, c->len - total);
        c->len -= total;
        if (mode == SRV_CLOSE)
            return -1;
        srv_answer(s, c->fd, mode, big_len);
    }
}

static void *
srv_main(void *arg)
{
    struct server *s = arg;

    for (;;) {
        struct pollfd pfd[SRV_MAX_CONNS + 2];
        int map[SRV_MAX_CONNS + 2];
        nfds_t n = 0;

        pfd[n++] = (struct pollfd){.fd = s->stop_pipe[0], .events = POLLIN};
        pfd[n++] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
        for (int i = 0; i < SRV_MAX_CONNS; i++) {
            if (s->conns[i] != NULL) {
                map[n] = i;
                pfd[n++] = (struct pollfd){.fd = s->conns[i]->fd, .events = POLLIN};
            }
        }
        if (poll(pfd, n, -1) < 0)
            continue;
        if (pfd[0].revents != 0)
            return NULL;
        if (pfd[1].revents & POLLIN) {
            int fd = accept(s->listen_fd, NULL, NULL);

            for (int i = 0; fd >= 0 && i < SRV_MAX_CONNS; i++) {
                if (s->conns[i] == NULL) {
                    s->conns[i] = calloc(1, sizeof(struct srv_conn));
                    s->conns[i]->fd = fd;
                    fd = -1;
                    pthread_mutex_lock(&s->mu);
                    s->connections++;
                    pthread_mutex_unlock(&s->mu);
                }
            }
            if (fd >= 0)
                close(fd);
        }
        for (nfds_t k = 2; k < n; k++) {
            struct srv_conn *c = s->conns[map[k]];
            ssize_t got;

            if (pfd[k].revents == 0)
                continue;
            got = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
            if (got > 0) {
                c->len += (size_t)got;
                if (srv_process(s, c) == 0 && c->len < sizeof(c->buf))
                    continue;
            }
            close(c->fd);
            free(c);
            s->conns[map[k]] = NULL;
        }
    }
}

static int
listen_on_any_port(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    CHECK(fd >= 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &alen) == 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static struct server *
srv_start(enum srv_mode mode)
{
    struct server *s = calloc(1, sizeof(*s));

    s->listen_fd = listen_on_any_port(&s->port);
    CHECK(listen(s->listen_fd, 128) == 0);
    CHECK(pipe(s->stop_pipe) == 0);
    pthread_mutex_init(&s->mu, NULL);
    s->mode = mode;
    CHECK(pthread_create(&s->thread, NULL, srv_main, s) == 0);
    return s;
}

static void
srv_set_mode(struct server *s, enum srv_mode mode, size_t big_len)
{
    pthread_mutex_lock(&s->mu);
    s->mode = mode;
    s->big_len = big_len;
    pthread_mutex_unlock(&s->mu);
}

static int
srv_count(struct server *s, const int *field)
{
    int v;

    pthread_mutex_lock(&s->mu);
    v = *field;
    pthread_mutex_unlock(&s->mu);
    return v;
}

static void
srv_stop(struct server *s)
{
    CHECK(write(s->stop_pipe[1], "x", 1) == 1);
    pthread_join(s->thread, NULL);
    for (int i = 0; i < SRV_MAX_CONNS; i++) {
        if (s->conns[i] != NULL) {
            close(s->conns[i]->fd);
            free(s->conns[i]);
        }
    }
    close(s->listen_fd);
    close(s->stop_pipe[0]);
    close(s->stop_pipe[1]);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* What a callback saw, copied out of the borrowed response. */
struct result {
    int calls;
    enum http_outcome outcome;
    long status;
    char *body;
    size_t body_len;
    int body_truncated;
    char *retry_after;
    char *error;
    int64_t elapsed_us;
    int resent;
};

static void
on_done(void *user, const struct http_response *resp)
{
    struct result *r = user;

    r->calls++;
    r->outcome = resp->outcome;
    r->status = resp->status;
    r->resent = resp->resent;
    CHECK(resp->body != NULL);
    CHECK_EQ(resp->body[resp->body_len], '\0');
    free(r->body);
    r->body = strndup(resp->body, resp->body_len);
    r->body_len = resp->body_len;
    r->body_truncated = resp->body_truncated;
    free(r->retry_after);
    r->retry_after = resp->retry_after != NULL ? strdup(resp->retry_after) : NULL;
    free(r->error);
    r->error = resp->error != NULL ? strdup(resp->error) : NULL;
    r->elapsed_us = resp->elapsed_us;
}

static void
result_fini(struct result *r)
{
    free(r->body);
    free(r->retry_after);
    free(r->error);
    memset(r, 0, sizeof(*r));
}

static char *
url_for(int port, const char *path)
{
    char *u = malloc(128);

    (void)snprintf(u, 128, "http://127.0.0.1:%d%s", port, path);
    return u;
}

static void
submit_get(struct http_client *c, const char *url, int64_t timeout_ms, size_t max_body,
           struct result *r)
{
    struct http_request req = {.method = "GET",
                               .url = url,
                               .timeout_ms = timeout_ms,
                               .max_body = max_body,
                               .done = on_done,
                               .user = r};
    struct error err = {0};

    if (http_client_submit(c, &req, &err) != 0)
        check_fail(__FILE__, __LINE__, "submit: %s", err.msg);
}

/* Run the client until *calls reaches want, or fail after deadline_ms. */
static void
run_until(struct http_client *c, const int *calls, int want, int64_t deadline_ms)
{
    int64_t end = clock_mono_ms() + deadline_ms;

    while (*calls < want) {
        if (clock_mono_ms() > end)
            check_fail(__FILE__, __LINE__, "only %d of %d transfers finished in time", *calls,
                       want);
        (void)http_client_run(c, 100);
    }
}

static struct http_client *
client_new(void)
{
    struct http_client *c = NULL;
    struct error err = {0};

    if (http_client_new(&c, &err) != 0)
        check_fail(__FILE__, __LINE__, "http_client_new: %s", err.msg);
    return c;
}

static void
ok_response_and_the_request_as_sent(void)
{
    struct server *s = srv_start(SRV_OK);
    struct http_client *c = client_new();
    char *url = url_for(s->port, "/contacts/42?x=1");
    const struct http_header hdrs[] = {{"X-Test", "yes"}, {"Authorization", "Bearer t0k"}};
    static const char body[] = "{\"name\":\"Ada\"}";
    struct http_request req = {.method = "PUT",
                               .url = url,
                               .headers = hdrs,
                               .header_count = 2,
                               .body = body,
                               .body_len = strlen(body),
                               .timeout_ms = 5000,
                               .max_body = 4096,
                               .done = on_done};
    struct result r = {0};
    struct error err = {0};

    req.user = &r;
    CHECK_EQ(http_client_submit(c, &req, &err), 0);
    free(url); /* the request is copied */
    CHECK_EQ(http_client_in_flight(c), 1);
    run_until(c, &r.calls, 1, 5000);
    CHECK_EQ(r.calls, 1);
    CHECK_EQ(r.outcome, HTTP_OUTCOME_RESPONSE);
    CHECK_EQ(r.status, 200);
    CHECK_STR_EQ(r.body, "{\"ok\":true}");
    CHECK_EQ(r.body_truncated, 0);
    CHECK(r.retry_after == NULL);
    CHECK(r.error == NULL);
    CHECK(r.elapsed_us > 0);
    CHECK_EQ(http_client_in_flight(c), 0);

    pthread_mutex_lock(&s->mu);
    CHECK(strncmp(s->last_head, "PUT /contacts/42?x=1 HTTP/1.1\r\n", 31) == 0);
    CHECK(strstr(s->last_head, "\r\nX-Test: yes\r\n") != NULL);
    CHECK(strstr(s->last_head, "\r\nAuthorization: Bearer t0k\r\n") != NULL);
    CHECK(strstr(s->last_head, "\r\nContent-Type: application/json\r\n") != NULL);
    CHECK(strstr(s->last_head, "\r\nContent-Length: 14\r\n") != NULL);
    CHECK(strcasestr(s->last_head, "expect:") == NULL);
    CHECK_STR_EQ(s->last_body, body);
    pthread_mutex_unlock(&s->mu);

    result_fini(&r);
    http_client_free(c);
    srv_stop(s);
}

static void
get_sends_no_content_type(void)
{
    struct server *s = srv_start(SRV_OK);
    struct http_client *c = client_new();
    char *url = url_for(s->port, "/contacts");
    struct result r = {0};

    submit_get(c, url, 5000, 4096, &r);
    run_until(c, &r.calls, 1, 5000);
    CHECK_EQ(r.status, 200);
    pthread_mutex_lock(&s->mu);
    CHECK(strncmp(s->last_head, "GET /contacts HTTP/1.1\r\n", 24) == 0);
    CHECK(strcasestr(s->last_head, "content-type") == NULL);
    pthread_mutex_unlock(&s->mu);
    free(url);
    result_fini(&r);
    http_client_free(c);
    srv_stop(s);
}

static void
status_503_carries_retry_after(void)
{
    struct server *s = srv_start(SRV_503);
    struct http_client *c = client_new();
    char *url = url_for(s->port, "/contacts");
    struct result r = {0};

    submit_get(c, url, 5000, 4096, &r);
    run_until(c, &r.calls, 1, 5000);
    CHECK_EQ(r.outcome, HTTP_OUTCOME_RESPONSE);
    CHECK_EQ(r.status, 503);
    CHECK_STR_EQ(r.retry_after, "2");
    CHECK_STR_EQ(r.body, "");
    CHECK_EQ(r.body_len, 0);
    free(url);
    result_fini(&r);
    http_client_free(c);
    srv_stop(s);
}

static void
closed_port_is_not_sent(void)
{
    int port;
    int fd = listen_on_any_port(&port); /* bound, never listening: connect is refused */
    struct http_client *c = client_new();
    char *url = url_for(port, "/");
    struct result r = {0};

    submit_get(c, url, 5000, 4096, &r);
    run_until(c, &r.calls, 1, 5000);
    CHECK_EQ(r.outcome, HTTP_OUTCOME_NOT_SENT);
    CHECK_EQ(r.status, 0);
    CHECK(r.error != NULL && r.error[0] != '\0');
    CHECK_STR_EQ(r.body, "");
    close(fd);
    free(url);
    result_fini(&r);
    http_client_free(c);
}

static void
close_without_answer_is_lost(void)
{
    struct server *s = srv_start(SRV_CLOSE);
    struct http_client *c = client_new();
    char *url = url_for(s->port, "/contacts");
    struct result r = {0};

    submit_get(c, url, 5000, 4096, &r);
    run_until(c, &r.calls, 1, 5000);
    CHECK_EQ(r.outcome, HTTP_OUTCOME_LOST);
    CHECK_EQ(r.status, 0);
    CHECK(r.error != NULL);
    CHECK(srv_count(s, &s->requests) >= 1);
    free(url);
    result_fini(&r);
    http_client_free(c);
    srv_stop(s);
}

static void
no_answer_times_out(void)
{
    struct server *s = srv_start(SRV_HANG);
    struct http_client *c = client_new();
    char *url = url_for(s->port, "/slow");
    struct result r = {0};
    int64_t start = clock_mono_ms(), took;

    submit_get(c, url, 300, 4096, &r);
    run_until(c, &r.calls, 1, 5000);
    took = clock_mono_ms() - start;
    CHECK_EQ(r.outcome, HTTP_OUTCOME_TIMEOUT);
    CHECK(took >= 250);
    CHECK(took < 2000);
    CHECK(r.elapsed_us >= 250000 && r.elapsed_us < 2000000);
    free(url);
    result_fini(&r);
    http_client_free(c);
    srv_stop(s);
}

static void
timeout_on_a_reused_connection_is_a_timeout(void)
{
    struct server *s = srv_start(SRV_OK);
    struct http_client *c = client_new();
    char *url = url_for(s->port, "/x");
    struct result r = {0};

    submit_get(c, url, 5000, 4096, &r);
    run_until(c, &r.calls, 1, 5000);
    CHECK_EQ(r.status, 200);
    srv_set_mode(s, SRV_HANG, 0);
    submit_get(c, url, 300, 4096, &r);
    run_until(c, &r.calls, 2, 5000);
    CHECK_EQ(r.outcome, HTTP_OUTCOME_TIMEOUT); /* sent on the kept-alive connection */
    CHECK_EQ(srv_count(s, &s->connections), 1);
    free(url);
    result_fini(&r);
    http_client_free(c);
    srv_stop(s);
}

static void
long_body_is_truncated_at_max_body(void)
{
    struct server *s = srv_start(SRV_BIG);
    struct http_client *c = client_new();
    char *url = url_for(s->port, "/big");
    struct result r = {0};

    srv_set_mode(s, SRV_BIG, 100000);
    submit_get(c, url, 5000, 1000, &r);
    run_until(c, &r.calls, 1, 5000);
    CHECK_EQ(r.outcome, HTTP_OUTCOME_RESPONSE);
    CHECK_EQ(r.status, 200);
    CHECK_EQ(r.body_len, 1000);
    CHECK_EQ(strlen(r.body), 1000);
    CHECK_EQ(r.body_truncated, 1);

    srv_set_mode(s, SRV_BIG, 1000); /* exactly max_body: complete, not truncated */
    submit_get(c, url, 5000, 1000, &r);
    run_until(c, &r.calls, 2, 5000);
    CHECK_EQ(r.status, 200);
    CHECK_EQ(r.body_len, 1000);
    CHECK_EQ(r.body_truncated, 0);
    free(url);
    result_fini(&r);
    http_client_free(c);
    srv_stop(s);
}

static void
fifty_in_flight_share_kept_alive_connections(void)
{
    struct server *s = srv_start(SRV_OK);
    struct http_client *c = client_new();
    char *url = url_for(s->port, "/many");
    struct result r[50];
    int done = 0, conns;

    memset(r, 0, sizeof(r));
    for (int i = 0; i < 50; i++)
        submit_get(c, url, 10000, 4096, &r[i]);
    CHECK_EQ(http_client_in_flight(c), 50);
    for (int64_t end = clock_mono_ms() + 10000; done < 50;) {
        CHECK(clock_mono_ms() < end);
        (void)http_client_run(c, 100);
        done = 0;
        for (int i = 0; i < 50; i++)
            done += r[i].calls;
    }
    for (int i = 0; i < 50; i++) {
        CHECK_EQ(r[i].calls, 1);
        CHECK_EQ(r[i].outcome, HTTP_OUTCOME_RESPONSE);
        CHECK_EQ(r[i].status, 200);
    }
    conns = srv_count(s, &s->connections);
    CHECK(conns < 50);
    CHECK_EQ(srv_count(s, &s->requests), 50);

    /* Sequential requests afterwards open no new connection. */
    for (int i = 0; i < 5; i++) {
        submit_get(c, url, 5000, 4096, &r[0]);
        run_until(c, &r[0].calls, 2 + i, 5000);
        CHECK_EQ(r[0].status, 200);
    }
    CHECK_EQ(srv_count(s, &s->connections), conns);
    for (int i = 0; i < 50; i++)
        result_fini(&r[i]);
    free(url);
    http_client_free(c);
    srv_stop(s);
}

static void
submit_write(struct http_client *c, const char *method, const char *url, const char *body,
             int send_once, struct result *r)
{
    struct http_request req = {.method = method,
                               .url = url,
                               .body = body,
                               .body_len = body != NULL ? strlen(body) : 0,
                               .timeout_ms = 5000,
                               .max_body = 4096,
                               .send_once = send_once,
                               .done = on_done,
                               .user = r};
    struct error err = {0};

    if (http_client_submit(c, &req, &err) != 0)
        check_fail(__FILE__, __LINE__, "submit: %s", err.msg);
}

static void
send_once_bodies_go_as_sent_with_every_method(void)
{
    static const char *const methods[] = {"POST", "PUT", "PATCH"};
    static const char body[] = "{\"name\":\"Ada\",\"n\":1}";
    struct server *s = srv_start(SRV_OK);
    struct http_client *c = client_new();
    char *url = url_for(s->port, "/contacts");
    struct result r = {0};
    char line[64];

    for (int i = 0; i < 3; i++) {
        submit_write(c, methods[i], url, body, 1, &r);
        run_until(c, &r.calls, i + 1, 5000);
        CHECK_EQ(r.outcome, HTTP_OUTCOME_RESPONSE);
        CHECK_EQ(r.status, 200);
        (void)snprintf(line, sizeof(line), "%s /contacts HTTP/1.1\r\n", methods[i]);
        pthread_mutex_lock(&s->mu);
        CHECK(strncmp(s->last_head, line, strlen(line)) == 0);
        CHECK(strstr(s->last_head, "\r\nContent-Length: 20\r\n") != NULL);
        CHECK(strstr(s->last_head, "\r\nContent-Type: application/json\r\n") != NULL);
        CHECK(strcasestr(s->last_head, "transfer-encoding") == NULL);
        CHECK(strcasestr(s->last_head, "expect:") == NULL);
        CHECK_STR_EQ(s->last_body, body);
        pthread_mutex_unlock(&s->mu);
    }
    /* One after the other, they shared one kept-alive connection. */
    CHECK_EQ(srv_count(s, &s->connections), 1);
    free(url);
    result_fini(&r);
    http_client_free(c);
    srv_stop(s);
}

/*
 * The server reads a request on a kept-alive connection and closes it
 * without answering: it may have carried the request out. libcurl sends a
 * plain request again by itself over a new connection; a send-once one it
 * must not.
 */
static void
send_once_is_not_resent_when_a_reused_connection_dies(void)
{
    struct server *s = srv_start(SRV_OK);
    struct http_client *c = client_new();
    char *url = url_for(s->port, "/contacts");
    struct result r = {0};

    submit_write(c, "POST", url, "{\"a\":1}", 1, &r);
    run_until(c, &r.calls, 1, 5000);
    CHECK_EQ(r.status, 200);
    CHECK_EQ(r.resent, 0);
    srv_set_mode(s, SRV_CLOSE, 0);
    submit_write(c, "POST", url, "{\"a\":2}", 1, &r);
    run_until(c, &r.calls, 2, 5000);
    CHECK_EQ(r.outcome, HTTP_OUTCOME_LOST);
    CHECK(r.error != NULL && strstr(r.error, "not sent again") != NULL);
    CHECK_EQ(r.resent, 0);                   /* refused, never sent twice */
    CHECK_EQ(srv_count(s, &s->requests), 2); /* one copy of each */

    /* What the guard prevents: the same with a plain request. */
    srv_set_mode(s, SRV_OK, 0);
    submit_write(c, "POST", url, "{\"a\":3}", 0, &r);
    run_until(c, &r.calls, 3, 5000);
    CHECK_EQ(r.status, 200);
    srv_set_mode(s, SRV_CLOSE, 0);
    submit_write(c, "POST", url, "{\"a\":4}", 0, &r);
    run_until(c, &r.calls, 4, 5000);
    CHECK_EQ(r.outcome, HTTP_OUTCOME_LOST);
    CHECK_EQ(srv_count(s, &s->requests), 5); /* {"a":4} arrived twice */
    CHECK_EQ(r.resent, 1);                   /* and the answer says so */
    free(url);
    result_fini(&r);
    http_client_free(c);
    srv_stop(s);
}

static void
send_once_reuses_only_a_recently_used_connection(void)
{
    struct server *s = srv_start(SRV_OK);
    struct http_client *c = client_new();
    char *url = url_for(s->port, "/contacts");
    struct result r = {0};
    struct timespec idle = {.tv_sec = 2, .tv_nsec = 100 * 1000 * 1000};

    submit_write(c, "POST", url, "{}", 1, &r);
    run_until(c, &r.calls, 1, 5000);
    submit_get(c, url, 5000, 4096, &r);
    run_until(c, &r.calls, 2, 5000);
    CHECK_EQ(srv_count(s, &s->connections), 1);
    /* Idle past CLIENT_SEND_ONCE_MAX_IDLE_S, whole seconds as libcurl
     * 7.88 counts them: a plain request still reuses the connection... */
    nanosleep(&idle, NULL);
    submit_get(c, url, 5000, 4096, &r);
    run_until(c, &r.calls, 3, 5000);
    CHECK_EQ(srv_count(s, &s->connections), 1);
    /* ...which the send-once one, coming right after it, may reuse. */
    submit_write(c, "POST", url, "{}", 1, &r);
    run_until(c, &r.calls, 4, 5000);
    CHECK_EQ(srv_count(s, &s->connections), 1);
    nanosleep(&idle, NULL);
    submit_write(c, "POST", url, "{}", 1, &r);
    run_until(c, &r.calls, 5, 5000);
    CHECK_EQ(r.status, 200);
    CHECK_EQ(srv_count(s, &s->connections), 2);
    free(url);
    result_fini(&r);
    http_client_free(c);
    srv_stop(s);
}

static void
send_once_without_a_body_takes_a_fresh_connection(void)
{
    struct server *s = srv_start(SRV_OK);
    struct http_client *c = client_new();
    char *url = url_for(s->port, "/contacts");
    struct result r = {0};

    for (int i = 0; i < 2; i++) {
        submit_write(c, "POST", url, NULL, 1, &r);
        run_until(c, &r.calls, i + 1, 5000);
        CHECK_EQ(r.status, 200);
    }
    CHECK_EQ(srv_count(s, &s->connections), 2);
    free(url);
    result_fini(&r);
    http_client_free(c);
    srv_stop(s);
}

/* n GETs at once, run until all are answered. */
static void
get_round(struct http_client *c, const char *url, int n)
{
    struct result r[20];
    int done = 0;

    CHECK(n <= 20);
    memset(r, 0, sizeof(r));
    for (int i = 0; i < n; i++)
        submit_get(c, url, 10000, 4096, &r[i]);
    for (int64_t end = clock_mono_ms() + 10000; done < n;) {
        CHECK(clock_mono_ms() < end);
        (void)http_client_run(c, 100);
        done = 0;
        for (int i = 0; i < n; i++)
            done += r[i].calls;
    }
    for (int i = 0; i < n; i++) {
        CHECK_EQ(r[i].status, 200);
        result_fini(&r[i]);
    }
}

static void
idle_connections_outlive_a_quiet_moment(void)
{
    struct server *s = srv_start(SRV_OK);
    struct http_client *c = client_new();
    char *url = url_for(s->port, "/burst");
    int conns;

    get_round(c, url, 20);
    conns = srv_count(s, &s->connections);
    /* With libcurl's default cache (4 per transfer in flight), each of
     * these would close one of the burst's connections. */
    for (int i = 0; i < 10; i++)
        get_round(c, url, 1);
    get_round(c, url, 20);
    CHECK_EQ(srv_count(s, &s->connections), conns);
    free(url);
    http_client_free(c);
    srv_stop(s);
}

struct chain {
    struct http_client *c;
    const char *url;
    struct result r;
};

/* Submits the next request from inside the callback, three in all. */
static void
on_chain(void *user, const struct http_response *resp)
{
    struct chain *ch = user;
    struct http_request req = {.method = "GET",
                               .url = ch->url,
                               .timeout_ms = 5000,
                               .max_body = 64,
                               .done = on_chain,
                               .user = ch};
    struct error err = {0};

    on_done(&ch->r, resp);
    if (ch->r.calls < 3)
        CHECK_EQ(http_client_submit(ch->c, &req, &err), 0);
}

static void
callback_may_submit_the_next_request(void)
{
    struct server *s = srv_start(SRV_OK);
    struct chain ch = {0};
    char *url = url_for(s->port, "/chain");
    struct http_request req = {
        .method = "GET", .timeout_ms = 5000, .max_body = 64, .done = on_chain, .user = &ch};
    struct error err = {0};

    ch.c = client_new();
    ch.url = url;
    req.url = url;
    CHECK_EQ(http_client_submit(ch.c, &req, &err), 0);
    run_until(ch.c, &ch.r.calls, 3, 5000);
    CHECK_EQ(ch.r.status, 200);
    CHECK_EQ(http_client_in_flight(ch.c), 0);
    CHECK_EQ(srv_count(s, &s->requests), 3);
    result_fini(&ch.r);
    free(url);
    http_client_free(ch.c);
    srv_stop(s);
}

static void *
wake_later(void *arg)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};

    nanosleep(&ts, NULL); /* the point is to be late, not to wait for anything */
    http_client_wakeup(arg);
    return NULL;
}

static void
wakeup_ends_a_waiting_run(void)
{
    struct http_client *c = client_new();
    pthread_t th;
    int64_t start;

    http_client_wakeup(c); /* before: the next run returns at once */
    start = clock_mono_ms();
    CHECK_EQ(http_client_run(c, 10000), 0);
    CHECK(clock_mono_ms() - start < 2000);

    CHECK(pthread_create(&th, NULL, wake_later, c) == 0);
    start = clock_mono_ms();
    CHECK_EQ(http_client_run(c, 10000), 0);
    CHECK(clock_mono_ms() - start < 5000);
    pthread_join(th, NULL);
    http_client_free(c);
}

static void
free_aborts_transfers_without_callbacks(void)
{
    struct server *s = srv_start(SRV_HANG);
    struct http_client *c = client_new();
    char *url = url_for(s->port, "/hang");
    struct result r = {0};
    int64_t end = clock_mono_ms() + 5000;

    for (int i = 0; i < 3; i++)
        submit_get(c, url, 10000, 4096, &r);
    while (srv_count(s, &s->requests) < 3) {
        CHECK(clock_mono_ms() < end);
        CHECK_EQ(http_client_run(c, 50), 3);
    }
    http_client_free(c);
    CHECK_EQ(r.calls, 0);
    free(url);
    srv_stop(s);
}

static void
bad_requests_are_refused_at_submit(void)
{
    struct http_client *c = client_new();
    const struct http_header evil[] = {{"X-A", "1\r\nX-Injected: 1"}};
    struct http_request req = {.method = "GET",
                               .url = "http://127.0.0.1:1/",
                               .headers = evil,
                               .header_count = 1,
                               .timeout_ms = 1000,
                               .max_body = 64,
                               .done = on_done};
    struct result r = {0};
    struct error err = {0};

    req.user = &r;
    CHECK_EQ(http_client_submit(c, &req, &err), -1);
    CHECK_EQ(err.kind, ERROR_INVALID);
    error_clear(&err);
    req.header_count = 0;
    req.method = "GET /x HTTP/1.0\r\n";
    CHECK_EQ(http_client_submit(c, &req, &err), -1);
    CHECK_EQ(http_client_in_flight(c), 0);
    CHECK_EQ(http_client_run(c, 0), 0);
    CHECK_EQ(r.calls, 0);
    http_client_free(c);
}

const struct check_case check_cases[] = {
    CHECK_CASE(ok_response_and_the_request_as_sent),
    CHECK_CASE(get_sends_no_content_type),
    CHECK_CASE(status_503_carries_retry_after),
    CHECK_CASE(closed_port_is_not_sent),
    CHECK_CASE(close_without_answer_is_lost),
    CHECK_CASE(no_answer_times_out),
    CHECK_CASE(timeout_on_a_reused_connection_is_a_timeout),
    CHECK_CASE(long_body_is_truncated_at_max_body),
    CHECK_CASE(fifty_in_flight_share_kept_alive_connections),
    CHECK_CASE(idle_connections_outlive_a_quiet_moment),
    CHECK_CASE(send_once_bodies_go_as_sent_with_every_method),
    CHECK_CASE(send_once_is_not_resent_when_a_reused_connection_dies),
    CHECK_CASE(send_once_reuses_only_a_recently_used_connection),
    CHECK_CASE(send_once_without_a_body_takes_a_fresh_connection),
    CHECK_CASE(callback_may_submit_the_next_request),
    CHECK_CASE(wakeup_ends_a_waiting_run),
    CHECK_CASE(free_aborts_transfers_without_callbacks),
    CHECK_CASE(bad_requests_are_refused_at_submit),
    {0},
};
