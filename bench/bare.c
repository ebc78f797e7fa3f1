/* SPDX-License-Identifier: MIT */

/*
 * bench/bare.c: the ceiling of HTTP ingress on this machine. A bare
 * libmicrohttpd server that reads each POST body to the end and answers
 * 202 {"status":"accepted"}, as concord does for a journaled webhook, with
 * no work in between. Any other method is answered 200 with the same body.
 *
 *     bare PORT pool   internal thread pool of 2, epoll (the fastest)
 *     bare PORT tpc    thread per connection (what concord's server uses)
 *
 * Listens on 127.0.0.1 until SIGTERM or SIGINT.
 */

#define _GNU_SOURCE

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

static const char accepted[] = "{\"status\":\"accepted\"}";

/* Per request: how many body bytes were read. */
struct req {
    size_t body_len;
};

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    struct req *r = *con_cls;
    struct MHD_Response *resp;
    enum MHD_Result rc;

    (void)cls;
    (void)url;
    (void)version;
    (void)upload_data;
    if (r == NULL) {
        r = calloc(1, sizeof(*r));
        if (r == NULL)
            return MHD_NO;
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        r->body_len += *upload_data_size;
        *upload_data_size = 0;
        return MHD_YES;
    }
    resp = MHD_create_response_from_buffer(sizeof(accepted) - 1, (void *)(uintptr_t)accepted,
                                           MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    rc = MHD_queue_response(conn, strcmp(method, "POST") == 0 ? 202 : 200, resp);
    MHD_destroy_response(resp);
    return rc;
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    free(*con_cls);
    *con_cls = NULL;
}

int
main(int argc, char **argv)
{
    struct sockaddr_in addr;
    struct MHD_Daemon *d;
    sigset_t set;
    int sig;
    long port;
    int pool;

    if (argc != 3 || (strcmp(argv[2], "pool") != 0 && strcmp(argv[2], "tpc") != 0)) {
        fprintf(stderr, "usage: bare PORT pool|tpc\n");
        return 2;
    }
    port = strtol(argv[1], NULL, 10);
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "bare: bad port %s\n", argv[1]);
        return 2;
    }
    pool = strcmp(argv[2], "pool") == 0;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (pool)
        d = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port,
                             NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &addr,
                             MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)2,
                             MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                             MHD_OPTION_CONNECTION_LIMIT, (unsigned int)1024,
                             MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1, MHD_OPTION_END);
    else /* the flags of concord's src/http/http_server.c */
        d = MHD_start_daemon(
            MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG,
            (uint16_t)port, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &addr,
            MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT,
            (unsigned int)60, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)1024,
            MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "bare: cannot listen on 127.0.0.1:%ld\n", port);
        return 1;
    }
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    return 0;
}
