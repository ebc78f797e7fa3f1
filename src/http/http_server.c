/* SPDX-License-Identifier: MIT */

/*
 * The libmicrohttpd side of http_server.h. A connection's upload is
 * collected into a bounded buffer; the route and the limit are decided from
 * the first call, before any body byte is read, so a 404 or 413 costs
 * nothing. Handlers run once the whole body is in.
 */

#include "http/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"

#define HTTP_SERVER_MAX_ROUTES 64
/* Bytes of a connection's memory pool (its request line and headers, and
 * the read buffer the body passes through): libmicrohttpd zeroes the pool
 * between two requests of a connection, which cost about 4% of an ingest
 * at its default of 32 KiB. A request line and headers past about 9 KB
 * are refused with 431 (docs/operate.md). */
#define HTTP_SERVER_POOL_BYTES (16 * 1024)

struct route {
    char *method;
    char *path;
    int is_prefix; /* path is a prefix: http_server_route_prefix() */
    size_t max_body;
    http_server_handler_fn *fn;  /* or */
    http_server_async_fn *async; /* one of the two */
    void *user;
};

struct http_server_reply {
    struct MHD_Connection *conn;
    int status;
    char *body;
    char *headers[HTTP_SERVER_MAX_REPLY_HEADERS][2]; /* name, value: http_server_reply_header() */
    size_t header_count;
    const char *content_type; /* static, or NULL for JSON: http_server_reply_content_type() */
    atomic_int is_done;
};

struct http_server {
    struct MHD_Daemon *mhd;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    int port;
    struct route routes[HTTP_SERVER_MAX_ROUTES];
    size_t route_count;
    atomic_llong next_request;
    atomic_int suspended; /* asynchronous requests not completed yet */
};

/* Per request state, kept in MHD's con_cls. */
struct request_state {
    const struct route *route;
    struct buf body;
    int too_big;
    int is_started; /* an asynchronous handler has it */
    struct http_server_reply reply;
    char request_id[24];
};

const char *
http_server_header(const struct http_server_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *
http_server_query(const struct http_server_request *req, const char *name)
{
    const char *v = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
    enum MHD_Result has;

    if (v != NULL)
        return v;
    /* "?all" without "=": libmicrohttpd keeps the key with a NULL value. */
    has = MHD_lookup_connection_value_n(req->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), &v,
                                        NULL);
    return has == MHD_YES ? "" : NULL;
}

int
http_server_peer_is_loopback(const struct http_server_request *req)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = info != NULL ? info->client_addr : NULL;

    if (sa == NULL)
        return 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;

        return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        const uint8_t *b = s6->sin6_addr.s6_addr;

        if (IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
            return 1;
        return IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) && b[12] == 127;
    }
    return 0;
}

static int
parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *len, int *port)
{
    const char *colon = strrchr(addr, ':');
    char host[128];
    char *end;
    long p;

    if (colon == NULL)
        return -1;
    p = strtol(colon + 1, &end, 10);
    if (*end != '\0' || end == colon + 1 || p < 0 || p > 65535)
        return -1;
    (void)snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
    memset(ss, 0, sizeof(*ss));
    if (host[0] == '[') {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        size_t hl = strlen(host);

        if (hl < 2 || host[hl - 1] != ']')
            return -1;
        host[hl - 1] = '\0';
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)p);
        if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
            return -1;
        *len = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)p);
        if (host[0] == '\0' || strcmp(host, "0.0.0.0") == 0)
            s4->sin_addr.s_addr = htonl(INADDR_ANY);
        else if (strcmp(host, "localhost") == 0)
            s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        else if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
            return -1;
        *len = sizeof(*s4);
    }
    *port = (int)p;
    return 0;
}

int
http_server_open(struct http_server **out, const char *addr, struct error *err)
{
    struct http_server *srv = xcalloc(1, sizeof(*srv));

    if (parse_addr(addr, &srv->addr, &srv->addr_len, &srv->port) == -1) {
        free(srv);
        return error_set(err, ERROR_INVALID,
                         "listen address %s: use host:port, such as 127.0.0.1:8480", addr);
    }
    *out = srv;
    return 0;
}

static int
add_route(struct http_server *srv, const char *method, const char *path, size_t max_body,
          struct route **out, struct error *err)
{
    struct route *r;

    if (srv->route_count == HTTP_SERVER_MAX_ROUTES)
        return error_set(err, ERROR_INVALID, "more than %d HTTP routes", HTTP_SERVER_MAX_ROUTES);
    for (size_t i = 0; i < srv->route_count; i++) {
        if (strcmp(srv->routes[i].path, path) == 0)
            return error_set(err, ERROR_INVALID, "two routes for %s", path);
    }
    r = &srv->routes[srv->route_count++];
    r->method = method ? xstrdup(method) : NULL;
    r->path = xstrdup(path);
    r->max_body = max_body;
    *out = r;
    return 0;
}

int
http_server_route_prefix(struct http_server *srv, const char *prefix, size_t max_body,
                         http_server_async_fn *fn, void *user, struct error *err)
{
    struct route *r;

    if (add_route(srv, NULL, prefix, max_body, &r, err) == -1)
        return -1;
    r->is_prefix = 1;
    r->async = fn;
    r->user = user;
    return 0;
}

int
http_server_route(struct http_server *srv, const char *method, const char *path, size_t max_body,
                  http_server_handler_fn *fn, void *user, struct error *err)
{
    struct route *r;

    if (add_route(srv, method, path, max_body, &r, err) == -1)
        return -1;
    r->fn = fn;
    r->user = user;
    return 0;
}

int
http_server_route_async(struct http_server *srv, const char *method, const char *path,
                        size_t max_body, http_server_async_fn *fn, void *user, struct error *err)
{
    struct route *r;

    if (add_route(srv, method, path, max_body, &r, err) == -1)
        return -1;
    r->async = fn;
    r->user = user;
    return 0;
}

void
http_server_reply_header(struct http_server_reply *reply, const char *name, const char *value)
{
    if (reply->header_count == HTTP_SERVER_MAX_REPLY_HEADERS)
        return;
    reply->headers[reply->header_count][0] = xstrdup(name);
    reply->headers[reply->header_count++][1] = xstrdup(value);
}

void
http_server_reply_content_type(struct http_server_reply *reply, const char *content_type)
{
    reply->content_type = content_type;
}

void
http_server_reply_finish(struct http_server_reply *reply, int status, char *body)
{
    reply->status = status;
    reply->body = body;
    atomic_store(&reply->is_done, 1);
    /* It counts as suspended until on_completed(): libmicrohttpd takes a
     * resumed connection back only at its thread's next turn, and
     * MHD_stop_daemon() aborts the process if one is still out then. */
    MHD_resume_connection(reply->conn);
}

static enum MHD_Result
reply_with(struct MHD_Connection *conn, int status, char *body, const char *content_type,
           const struct http_server_reply *extra)
{
    struct MHD_Response *resp;
    enum MHD_Result rc;
    size_t len = body ? strlen(body) : 0;

    resp = MHD_create_response_from_buffer(len, body ? body : (char *)(uintptr_t) "",
                                           body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }
    if (body != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                content_type ? content_type : "application/json");
    for (size_t i = 0; extra != NULL && i < extra->header_count; i++)
        MHD_add_response_header(resp, extra->headers[i][0], extra->headers[i][1]);
    rc = MHD_queue_response(conn, (unsigned int)status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result
reply(struct MHD_Connection *conn, int status, char *body, const char *content_type)
{
    return reply_with(conn, status, body, content_type, NULL);
}

static char *
json_error(const char *msg)
{
    struct buf b;

    buf_init(&b, 4096);
    if (buf_puts(&b, "{\"error\":\"") == 0) {
        for (const char *p = msg; *p != '\0'; p++) {
            unsigned char c = (unsigned char)*p;
            int rc = c == '"' || c == '\\' ? buf_printf(&b, "\\%c", c)
                     : c < 0x20            ? buf_printf(&b, "\\u%04x", c)
                                           : buf_append(&b, p, 1);

            if (rc == -1)
                break;
        }
    }
    if (buf_puts(&b, "\"}") == -1) {
        buf_fini(&b);
        return xstrdup("{\"error\":\"error text too long\"}");
    }
    return buf_take(&b);
}

/* The exact route of path, else the longest prefix route it starts with. */
static const struct route *
find_route(const struct http_server *srv, const char *path)
{
    const struct route *best = NULL;

    for (size_t i = 0; i < srv->route_count; i++) {
        const struct route *r = &srv->routes[i];

        if (!r->is_prefix && strcmp(r->path, path) == 0)
            return r;
        if (r->is_prefix && strncmp(r->path, path, strlen(r->path)) == 0 &&
            (best == NULL || strlen(r->path) > strlen(best->path)))
            best = r;
    }
    return best;
}

/* The first call for a request: decide route and limit before any body. */
static enum MHD_Result
begin(struct http_server *srv, struct MHD_Connection *conn, const char *url, const char *method,
      void **con_cls)
{
    const struct route *r = find_route(srv, url);
    struct request_state *rs;
    const char *cl;

    if (r == NULL)
        return reply(conn, 404, json_error("no such path"), NULL);
    if (r->method != NULL && strcmp(r->method, method) != 0)
        return reply(conn, 405, json_error("method not allowed"), NULL);
    cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl != NULL && strtoull(cl, NULL, 10) > r->max_body)
        return reply(conn, 413, json_error("the body is larger than this endpoint accepts"), NULL);
    rs = xcalloc(1, sizeof(*rs));
    rs->route = r;
    buf_init(&rs->body, r->max_body);
    (void)snprintf(rs->request_id, sizeof(rs->request_id), "r-%06lld",
                   (long long)atomic_fetch_add(&srv->next_request, 1) + 1);
    *con_cls = rs;
    return MHD_YES;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    struct http_server *srv = cls;
    struct request_state *rs = *con_cls;
    int status = 500;
    const char *content_type = NULL;
    char *body;

    (void)version;
    if (rs == NULL)
        return begin(srv, conn, url, method, con_cls);
    if (*upload_data_size > 0) {
        if (!rs->too_big && buf_append(&rs->body, upload_data, *upload_data_size) == -1)
            rs->too_big = 1; /* keep reading, then answer 413 */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (rs->too_big)
        return reply(conn, 413, json_error("the body is larger than this endpoint accepts"), NULL);
    if (rs->is_started) {
        /* Resumed: the asynchronous handler finished its reply. */
        if (!atomic_load(&rs->reply.is_done))
            return MHD_YES;
        body = rs->reply.body;
        rs->reply.body = NULL;
        return reply_with(conn, rs->reply.status, body, rs->reply.content_type, &rs->reply);
    }
    struct http_server_request req = {
        .method = method,
        .path = url,
        .body = buf_str(&rs->body),
        .body_len = rs->body.len,
        .request_id = rs->request_id,
        .conn = conn,
    };
    if (rs->route->async != NULL) {
        rs->is_started = 1;
        rs->reply.conn = conn;
        atomic_fetch_add(&srv->suspended, 1);
        MHD_suspend_connection(conn);
        rs->route->async(rs->route->user, &req, &rs->reply);
        return MHD_YES;
    }
    body = rs->route->fn(rs->route->user, &req, &status, &content_type);
    return reply(conn, status, body, content_type);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    struct http_server *srv = cls;
    struct request_state *rs = *con_cls;

    (void)conn;
    (void)toe;
    if (rs == NULL)
        return;
    if (rs->is_started)
        atomic_fetch_sub(&srv->suspended, 1);
    buf_fini(&rs->body);
    free(rs->reply.body);
    for (size_t i = 0; i < rs->reply.header_count; i++) {
        free(rs->reply.headers[i][0]);
        free(rs->reply.headers[i][1]);
    }
    free(rs);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) PRINTF_LIKE(2, 0);

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];

    (void)cls;
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    log_debug(NULL, "http: %s", msg);
}

int
http_server_start(struct http_server *srv, struct error *err)
{
    /* Two threads on epoll: nothing here blocks (waiting handlers are
     * asynchronous and suspend their connection), so a connection costs
     * no thread and no context switch beyond the poll. */
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                         MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    const union MHD_DaemonInfo *info;

    if (srv->addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    srv->mhd = MHD_start_daemon(
        flags, (uint16_t)srv->port, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER,
        mhd_log, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&srv->addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned int)2, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)1024, MHD_OPTION_LISTENING_ADDRESS_REUSE,
        (unsigned int)1, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_SERVER_POOL_BYTES,
        MHD_OPTION_END);
    if (srv->mhd == NULL)
        return error_set(err, ERROR_IO, "listen on port %d: the address is taken or not available",
                         srv->port);
    info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
    if (info != NULL && info->port != 0)
        srv->port = info->port;
    return 0;
}

void
http_server_stop(struct http_server *srv)
{
    struct timespec tick = {0, 10 * 1000 * 1000};

    if (srv == NULL || srv->mhd == NULL)
        return;
    MHD_socket listen_fd = MHD_quiesce_daemon(srv->mhd);

    /* The listening socket is now ours, but libmicrohttpd's threads take
     * it out of their epoll sets a moment later: closing it now raced
     * with them (ThreadSanitizer saw it), and a number reused meanwhile
     * could be another file's. shutdown() stops the listening at once
     * (a connection attempt is refused, one in the backlog reset) and
     * keeps the descriptor; it is closed once the threads are gone. */
    if (listen_fd != MHD_INVALID_SOCKET)
        (void)shutdown(listen_fd, SHUT_RDWR);
    /* Suspended connections wait for their replies (a webhook for its
     * commit): libmicrohttpd must not be stopped under them. */
    for (int i = 0; i < 3000 && atomic_load(&srv->suspended) > 0; i++)
        nanosleep(&tick, NULL);
    MHD_stop_daemon(srv->mhd);
    srv->mhd = NULL;
    if (listen_fd != MHD_INVALID_SOCKET)
        close(listen_fd);
}

void
http_server_close(struct http_server *srv)
{
    if (srv == NULL)
        return;
    http_server_stop(srv);
    for (size_t i = 0; i < srv->route_count; i++) {
        free(srv->routes[i].method);
        free(srv->routes[i].path);
    }
    free(srv);
}

int
http_server_port(const struct http_server *srv)
{
    return srv->port;
}
