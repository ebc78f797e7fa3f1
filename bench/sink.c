/* SPDX-License-Identifier: MIT */

/*
 * bench/sink.c: a CRM stand-in that measures what reaches it. A
 * libmicrohttpd server (thread pool of 2, epoll) on 127.0.0.1:
 *
 *   POST /contacts        201 {"id":"<n>"}   (n counts from 1)
 *   PUT  /contacts/ID     200 {"id":"ID"}
 *   GET  /stats           200 {"count":...,"p50_us":...,...}
 *   GET  /count           200 {"count":...}: no sort of the samples, for
 *                         polling while a run goes on
 *   POST /reset           200, forgets every sample
 *
 * Each POST or PUT body is searched for "phone_number":"<digits>"; the
 * digits are the CLOCK_MONOTONIC time in ns at which the change was sent
 * (bench/webhook.lua puts it in the shop's `phone`, which concord maps to
 * the CRM's `phone_number`). The sink keeps receipt minus send for every
 * write, the earliest send and the latest receipt, so /stats gives the
 * end-to-end latency and the relay rate:
 *   count / (last_recv_ns - first_send_ns).
 * It also counts the TCP connections that carried writes ("connections"):
 * how well the client reuses keep-alive connections.
 *
 *     sink PORT [MAX_SAMPLES]
 */

#define _GNU_SOURCE

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#define BODY_MAX 65536

static uint32_t *samples; /* latency in µs, one per timed write */
static size_t max_samples;
static atomic_size_t nsamples;
static atomic_ullong creates, updates, untimed, next_id;
static atomic_ullong first_send_ns = UINT64_MAX, last_recv_ns;
static atomic_ullong write_conns; /* connections that carried a write since the reset */
static atomic_ullong reset_epoch; /* how many resets so far */

struct req {
    size_t len;
    char body[BODY_MAX + 1];
};

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
atomic_min(atomic_ullong *a, uint64_t v)
{
    unsigned long long cur = atomic_load(a);

    while (v < cur && !atomic_compare_exchange_weak(a, &cur, v))
        ;
}

static void
atomic_max(atomic_ullong *a, uint64_t v)
{
    unsigned long long cur = atomic_load(a);

    while (v > cur && !atomic_compare_exchange_weak(a, &cur, v))
        ;
}

/* Record one write whose body holds "phone_number":"<ns>". */
static void
record(const char *body, uint64_t recv)
{
    static const char key[] = "\"phone_number\":";
    const char *p = strstr(body, key);
    uint64_t sent = 0;
    size_t i;

    if (p != NULL) {
        p += sizeof(key) - 1;
        while (*p == ' ')
            p++;
        if (*p == '"')
            p++;
        while (*p >= '0' && *p <= '9')
            sent = sent * 10 + (uint64_t)(*p++ - '0');
    }
    atomic_max(&last_recv_ns, recv);
    if (sent == 0 || sent > recv) {
        atomic_fetch_add(&untimed, 1);
        return;
    }
    atomic_min(&first_send_ns, sent);
    i = atomic_fetch_add(&nsamples, 1);
    if (i < max_samples) {
        uint64_t us = (recv - sent) / 1000;

        samples[i] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    }
}

/* A connection's mark: the reset epoch (+ 1) in which it was counted. */
static void
on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
              enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    (void)conn;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = calloc(1, sizeof(unsigned long long));
    } else {
        free(*socket_context);
        *socket_context = NULL;
    }
}

/* Count conn once per reset epoch. A connection is served by one thread. */
static void
note_connection(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    unsigned long long *mark = ci != NULL ? ci->socket_context : NULL;
    unsigned long long epoch = atomic_load(&reset_epoch) + 1;

    if (mark != NULL && *mark != epoch) {
        *mark = epoch;
        atomic_fetch_add(&write_conns, 1);
    }
}

static int
cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return (x > y) - (x < y);
}

static char *
stats_json(void)
{
    size_t n = atomic_load(&nsamples), kept = n < max_samples ? n : max_samples;
    uint32_t *copy = malloc((kept ? kept : 1) * sizeof(*copy));
    unsigned long long first = atomic_load(&first_send_ns), last = atomic_load(&last_recv_ns);
    uint32_t p50 = 0, p90 = 0, p99 = 0, max = 0;
    char *out = malloc(1024);

    if (copy == NULL || out == NULL) {
        free(copy);
        free(out);
        return NULL;
    }
    memcpy(copy, samples, kept * sizeof(*copy));
    if (kept > 0) {
        qsort(copy, kept, sizeof(*copy), cmp_u32);
        p50 = copy[(kept - 1) * 50 / 100];
        p90 = copy[(kept - 1) * 90 / 100];
        p99 = copy[(kept - 1) * 99 / 100];
        max = copy[kept - 1];
    }
    free(copy);
    snprintf(out, 1024,
             "{\"count\":%llu,\"creates\":%llu,\"updates\":%llu,\"untimed\":%llu,"
             "\"timed\":%zu,\"first_send_ns\":%llu,\"last_recv_ns\":%llu,"
             "\"p50_us\":%u,\"p90_us\":%u,\"p99_us\":%u,\"max_us\":%u,\"connections\":%llu}\n",
             (unsigned long long)(atomic_load(&creates) + atomic_load(&updates)),
             (unsigned long long)atomic_load(&creates), (unsigned long long)atomic_load(&updates),
             (unsigned long long)atomic_load(&untimed), n, first == UINT64_MAX ? 0 : first, last,
             p50, p90, p99, max, (unsigned long long)atomic_load(&write_conns));
    return out;
}

static void
reset(void)
{
    atomic_fetch_add(&reset_epoch, 1);
    atomic_store(&write_conns, 0);
    atomic_store(&nsamples, 0);
    atomic_store(&creates, 0);
    atomic_store(&updates, 0);
    atomic_store(&untimed, 0);
    atomic_store(&next_id, 0);
    atomic_store(&first_send_ns, UINT64_MAX);
    atomic_store(&last_recv_ns, 0);
}

static enum MHD_Result
answer(struct MHD_Connection *conn, unsigned int status, char *text)
{
    struct MHD_Response *resp;
    enum MHD_Result rc;

    if (text == NULL)
        return MHD_NO;
    resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static char *
id_json(const char *id)
{
    char *out = malloc(96);

    if (out != NULL)
        snprintf(out, 96, "{\"id\":\"%.64s\"}", id);
    return out;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    struct req *r = *con_cls;
    uint64_t recv;

    (void)cls;
    (void)version;
    if (r == NULL) {
        r = malloc(sizeof(*r));
        if (r == NULL)
            return MHD_NO;
        r->len = 0;
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;

        if (n > BODY_MAX - r->len)
            n = BODY_MAX - r->len;
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        *upload_data_size = 0;
        return MHD_YES;
    }
    r->body[r->len] = '\0';
    recv = now_ns();
    if (strcmp(method, "POST") == 0 && strcmp(url, "/contacts") == 0) {
        char id[32];

        record(r->body, recv);
        note_connection(conn);
        atomic_fetch_add(&creates, 1);
        snprintf(id, sizeof(id), "%llu", (unsigned long long)atomic_fetch_add(&next_id, 1) + 1);
        return answer(conn, 201, id_json(id));
    }
    if (strcmp(method, "PUT") == 0 && strncmp(url, "/contacts/", 10) == 0) {
        record(r->body, recv);
        note_connection(conn);
        atomic_fetch_add(&updates, 1);
        return answer(conn, 200, id_json(url + 10));
    }
    if (strcmp(method, "GET") == 0 && strcmp(url, "/count") == 0) {
        char *out = malloc(64);

        if (out != NULL)
            snprintf(out, 64, "{\"count\":%llu}\n",
                     (unsigned long long)(atomic_load(&creates) + atomic_load(&updates)));
        return answer(conn, 200, out);
    }
    if (strcmp(method, "GET") == 0 && strcmp(url, "/stats") == 0)
        return answer(conn, 200, stats_json());
    if (strcmp(method, "POST") == 0 && strcmp(url, "/reset") == 0) {
        reset();
        return answer(conn, 200, strdup("{\"reset\":true}\n"));
    }
    return answer(conn, 404, strdup("{\"error\":\"no such path\"}"));
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

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: sink PORT [MAX_SAMPLES]\n");
        return 2;
    }
    port = strtol(argv[1], NULL, 10);
    max_samples = argc == 3 ? (size_t)strtoul(argv[2], NULL, 10) : (size_t)4 << 20;
    if (port <= 0 || port > 65535 || max_samples == 0) {
        fprintf(stderr, "sink: bad arguments\n");
        return 2;
    }
    samples = calloc(max_samples, sizeof(*samples));
    if (samples == NULL) {
        fprintf(stderr, "sink: out of memory\n");
        return 1;
    }
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL,
                         NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &addr,
                         MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)2, MHD_OPTION_NOTIFY_COMPLETED,
                         on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned int)1024,
                         MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "sink: cannot listen on 127.0.0.1:%ld\n", port);
        return 1;
    }
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    free(samples);
    return 0;
}
