/* SPDX-License-Identifier: MIT */

/*
 * bench/bare.c: the ceilings of webhook ingress on this machine, for
 * bench/run.sh.
 *
 *     bare PORT pool                internal thread pool of 2, epoll: reads each
 *                                   POST body to the end and answers 202 at once
 *     bare PORT tpc                 the same, one thread per connection
 *     bare PORT durable STORE_PATH  pool of 2, epoll, suspend/resume (concord's
 *                                   own server flags): answers 202 only once the
 *                                   body is committed to SQLite
 *     bare fsync FILE [COUNT [KIB]] the disk's own latency: COUNT (300) writes of
 *                                   KIB (4) KiB, each followed by fdatasync()
 *
 * The servers answer 202 {"status":"accepted"} to a POST, as concord does
 * for a journaled webhook, and 200 with the same body to anything else.
 * They listen on 127.0.0.1 until SIGTERM or SIGINT.
 *
 * durable is the least that durable ingest must do: a table of (delivery
 * id UNIQUE, body) in WAL mode with synchronous=FULL, and group commit.
 * The HTTP threads suspend each connection whose body is complete and
 * queue the body; one writer thread takes everything queued since its
 * last turn, inserts it all in one transaction, commits (one fsync of the
 * WAL) and resumes the connections, which answer 202 (500 if the commit
 * failed). On exit it prints one line to stdout:
 *
 *     BARE_DURABLE commits=N rows=R batch_mean=B commit_p50_us=X commit_p99_us=Y
 *         commit_mean_us=M span_us=S busy_us=U commit_total_us=C cpu_us=P
 *         wal_frames=F
 *
 * commit_* time each COMMIT alone (the WAL write, its fsync and, every
 * 1000 pages, SQLite's checkpoint). span_us runs from the writer's first
 * turn to the end of its last; busy_us is the wall time of its turns (from
 * taking the queue to the last resume), commit_total_us that of their
 * COMMITs, cpu_us the writer thread's CPU time, wal_frames the pages its
 * commits wrote to the WAL (a WAL hook counts them, and checkpoints every
 * 1000 pages as SQLite's default autocheckpoint does).
 *
 * fsync writes blocks of KIB KiB in turn over a file of 256 of them (written
 * and synced once first, so the timed writes change no metadata, as in a
 * WAL that starts over), and prints to stdout:
 *
 *     BARE_FSYNC kib=K count=N p50_us=X p99_us=Y max_us=Z mean_us=M
 */

#define _GNU_SOURCE

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <sqlite3.h>

#define BODY_MAX      (64 * 1024)
#define COMMITS_MAX   (1 << 20)
#define FSYNC_BLOCKS  256
#define FSYNC_KIB_MAX 1024

static const char accepted[] = "{\"status\":\"accepted\"}";
static const char failed[] = "{\"status\":\"failed\"}";

enum req_state {
    REQ_READING,
    REQ_QUEUED, /* suspended, waiting for the writer */
    REQ_COMMITTED,
    REQ_FAILED,
};

/* Per request. The durable mode keeps the body and the delivery id. */
struct req {
    enum req_state state;
    int too_big;
    char *body;
    size_t body_len;
    size_t body_cap;
    char *delivery;
    struct MHD_Connection *conn;
    struct req *next; /* in the writer's queue */
};

/* The durable mode's writer: a queue under a mutex and its statistics. */
static struct durable {
    int on;
    sqlite3 *db;
    sqlite3_stmt *insert;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct req *head, *tail;
    int stopping;
    int in_flight;             /* queued or being committed; under mu */
    long commits, rows;        /* written by the writer only */
    uint32_t *commit_us;       /* one per commit, up to COMMITS_MAX */
    int64_t first_us, last_us; /* start of the first turn, end of the last */
    int64_t busy_us, commit_total_us;
    int wal_frames_last;
    int64_t wal_frames;
} dur = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static int64_t
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return (x > y) - (x < y);
}

/* The q-th percentile (0..100) of n sorted samples. */
static uint32_t
pct(const uint32_t *v, long n, int q)
{
    long i = (n * q + 99) / 100 - 1;

    if (n == 0)
        return 0;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static enum MHD_Result
answer(struct MHD_Connection *conn, const char *method, int ok)
{
    struct MHD_Response *resp;
    enum MHD_Result rc;
    const char *text = ok ? accepted : failed;

    resp = MHD_create_response_from_buffer(strlen(text), (void *)(uintptr_t)text,
                                           MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    rc = MHD_queue_response(conn, !ok ? 500 : strcmp(method, "POST") == 0 ? 202 : 200, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* The durable mode: keep the body's bytes (up to BODY_MAX). */
static void
keep_body(struct req *r, const char *data, size_t len)
{
    if (r->too_big || r->body_len + len > BODY_MAX) {
        r->too_big = 1;
        return;
    }
    if (r->body_len + len > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 2048;
        char *p;

        while (cap < r->body_len + len)
            cap *= 2;
        p = realloc(r->body, cap);
        if (p == NULL) {
            r->too_big = 1;
            return;
        }
        r->body = p;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
}

/* The durable mode: suspend the connection and hand the request to the writer. */
static void
queue_for_writer(struct req *r)
{
    r->state = REQ_QUEUED;
    MHD_suspend_connection(r->conn);
    pthread_mutex_lock(&dur.mu);
    r->next = NULL;
    if (dur.tail != NULL)
        dur.tail->next = r;
    else
        dur.head = r;
    dur.tail = r;
    dur.in_flight++;
    pthread_cond_signal(&dur.cv);
    pthread_mutex_unlock(&dur.mu);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    struct req *r = *con_cls;

    (void)cls;
    (void)url;
    (void)version;
    if (r == NULL) {
        r = calloc(1, sizeof(*r));
        if (r == NULL)
            return MHD_NO;
        r->conn = conn;
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (dur.on)
            keep_body(r, upload_data, *upload_data_size);
        else
            r->body_len += *upload_data_size;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!dur.on || strcmp(method, "POST") != 0)
        return answer(conn, method, 1);
    switch (r->state) {
    case REQ_READING:
        if (r->too_big)
            return MHD_NO;
        {
            const char *id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Shop-Delivery");

            r->delivery = id != NULL ? strdup(id) : NULL;
        }
        queue_for_writer(r);
        return MHD_YES;
    case REQ_QUEUED: /* not resumed yet */
        return MHD_YES;
    case REQ_COMMITTED:
        return answer(conn, method, 1);
    case REQ_FAILED:
        break;
    }
    return answer(conn, method, 0);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    struct req *r = *con_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (r != NULL) {
        free(r->body);
        free(r->delivery);
        free(r);
    }
    *con_cls = NULL;
}

static int
exec_sql(const char *sql)
{
    char *msg = NULL;

    if (sqlite3_exec(dur.db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "bare: %s: %s\n", sql, msg ? msg : sqlite3_errmsg(dur.db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* One turn: everything in batch in one transaction. Returns 0 or -1. */
static int
commit_batch(struct req *batch)
{
    int64_t t0;
    long n = 0;

    if (exec_sql("BEGIN IMMEDIATE") == -1)
        return -1;
    for (struct req *r = batch; r != NULL; r = r->next, n++) {
        if (r->delivery != NULL)
            sqlite3_bind_text(dur.insert, 1, r->delivery, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(dur.insert, 1);
        sqlite3_bind_blob(dur.insert, 2, r->body, (int)r->body_len, SQLITE_STATIC);
        if (sqlite3_step(dur.insert) != SQLITE_DONE) {
            fprintf(stderr, "bare: insert: %s\n", sqlite3_errmsg(dur.db));
            sqlite3_reset(dur.insert);
            (void)exec_sql("ROLLBACK");
            return -1;
        }
        sqlite3_reset(dur.insert);
    }
    sqlite3_clear_bindings(dur.insert);
    t0 = now_us();
    if (exec_sql("COMMIT") == -1) {
        (void)exec_sql("ROLLBACK");
        return -1;
    }
    t0 = now_us() - t0;
    if (dur.commits < COMMITS_MAX)
        dur.commit_us[dur.commits] = (uint32_t)t0;
    dur.commit_total_us += t0;
    dur.commits++;
    dur.rows += n;
    return 0;
}

/* Called by the writer thread itself, after its last turn. */
static void
durable_report(void)
{
    long n = dur.commits < COMMITS_MAX ? dur.commits : COMMITS_MAX;
    struct timespec cpu = {0, 0};

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
    qsort(dur.commit_us, (size_t)n, sizeof(*dur.commit_us), cmp_u32);
    printf("BARE_DURABLE commits=%ld rows=%ld batch_mean=%.1f commit_p50_us=%u commit_p99_us=%u "
           "commit_mean_us=%lld span_us=%lld busy_us=%lld commit_total_us=%lld cpu_us=%lld "
           "wal_frames=%lld\n",
           dur.commits, dur.rows, dur.commits ? (double)dur.rows / (double)dur.commits : 0.0,
           pct(dur.commit_us, n, 50), pct(dur.commit_us, n, 99),
           (long long)(dur.commits ? dur.commit_total_us / dur.commits : 0),
           (long long)(dur.last_us - dur.first_us), (long long)dur.busy_us,
           (long long)dur.commit_total_us, (long long)cpu.tv_sec * 1000000 + cpu.tv_nsec / 1000,
           (long long)dur.wal_frames);
    fflush(stdout);
}

static void *
writer_main(void *arg)
{
    (void)arg;
    for (;;) {
        struct req *batch, *next;
        int ok, n = 0;
        int64_t t0;

        pthread_mutex_lock(&dur.mu);
        while (dur.head == NULL && !dur.stopping)
            pthread_cond_wait(&dur.cv, &dur.mu);
        batch = dur.head;
        dur.head = dur.tail = NULL;
        pthread_mutex_unlock(&dur.mu);
        if (batch == NULL) {
            durable_report();
            return NULL;
        }
        t0 = now_us();
        if (dur.first_us == 0)
            dur.first_us = t0;
        ok = commit_batch(batch) == 0;
        for (struct req *r = batch; r != NULL; r = next, n++) {
            next = r->next;
            r->state = ok ? REQ_COMMITTED : REQ_FAILED;
            MHD_resume_connection(r->conn); /* r may be freed from here on */
        }
        dur.last_us = now_us();
        dur.busy_us += dur.last_us - t0;
        pthread_mutex_lock(&dur.mu);
        dur.in_flight -= n;
        pthread_mutex_unlock(&dur.mu);
    }
}

/* SQLite's WAL hook, after each commit: count the frames written, and
 * checkpoint past 1000 as the default autocheckpoint (which this replaces)
 * does. frames is the WAL's length; it starts over after a checkpoint. */
static int
on_wal_commit(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)arg;
    dur.wal_frames += frames >= dur.wal_frames_last ? frames - dur.wal_frames_last : frames;
    dur.wal_frames_last = frames;
    if (frames >= 1000)
        (void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return SQLITE_OK;
}

static int
durable_open(const char *path)
{
    if (sqlite3_open_v2(path, &dur.db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        fprintf(stderr, "bare: open %s: %s\n", path, dur.db ? sqlite3_errmsg(dur.db) : "no memory");
        return -1;
    }
    if (exec_sql("PRAGMA journal_mode = WAL") == -1 ||
        exec_sql("PRAGMA synchronous = FULL") == -1 ||
        exec_sql("CREATE TABLE IF NOT EXISTS webhooks (id INTEGER PRIMARY KEY, "
                 "delivery TEXT UNIQUE, body BLOB NOT NULL)") == -1)
        return -1;
    if (sqlite3_prepare_v2(dur.db, "INSERT OR IGNORE INTO webhooks (delivery, body) VALUES (?, ?)",
                           -1, &dur.insert, NULL) != SQLITE_OK) {
        fprintf(stderr, "bare: prepare: %s\n", sqlite3_errmsg(dur.db));
        return -1;
    }
    (void)sqlite3_wal_hook(dur.db, on_wal_commit, NULL);
    dur.commit_us = calloc(COMMITS_MAX, sizeof(*dur.commit_us));
    if (dur.commit_us == NULL)
        return -1;
    dur.on = 1;
    return 0;
}

/* bare fsync FILE [COUNT [KIB]] */
static int
fsync_probe(const char *path, long count, long kib)
{
    static char block[FSYNC_KIB_MAX * 1024];
    size_t block_len = (size_t)kib * 1024;
    uint32_t *us;
    int64_t t0, sum = 0;
    int fd;

    us = calloc((size_t)count, sizeof(*us));
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (us == NULL || fd == -1) {
        perror("bare: fsync probe");
        return 1;
    }
    memset(block, 'w', sizeof(block));
    /* The file's size first, so that the timed writes change no metadata. */
    for (long i = 0; i < FSYNC_BLOCKS; i++) {
        if (pwrite(fd, block, block_len, (off_t)i * (off_t)block_len) != (ssize_t)block_len) {
            perror("bare: fsync probe");
            return 1;
        }
    }
    if (fsync(fd) == -1) {
        perror("bare: fsync probe");
        return 1;
    }
    for (long i = 0; i < count; i++) {
        off_t off = (off_t)(i % FSYNC_BLOCKS) * (off_t)block_len;

        t0 = now_us();
        if (pwrite(fd, block, block_len, off) != (ssize_t)block_len || fdatasync(fd) == -1) {
            perror("bare: fsync probe");
            return 1;
        }
        us[i] = (uint32_t)(now_us() - t0);
        sum += us[i];
    }
    close(fd);
    unlink(path);
    qsort(us, (size_t)count, sizeof(*us), cmp_u32);
    printf("BARE_FSYNC kib=%ld count=%ld p50_us=%u p99_us=%u max_us=%u mean_us=%lld\n", kib, count,
           pct(us, count, 50), pct(us, count, 99), us[count - 1], (long long)(sum / count));
    free(us);
    return 0;
}

static int
usage(void)
{
    fprintf(stderr, "usage: bare PORT pool|tpc\n"
                    "       bare PORT durable STORE_PATH\n"
                    "       bare fsync FILE [COUNT [KIB]]\n");
    return 2;
}

int
main(int argc, char **argv)
{
    struct sockaddr_in addr;
    struct MHD_Daemon *d;
    pthread_t writer;
    sigset_t set;
    int sig;
    long port;
    const char *mode;

    if (argc >= 3 && strcmp(argv[1], "fsync") == 0) {
        long count = argc > 3 ? strtol(argv[3], NULL, 10) : 300;

        long kib = argc > 4 ? strtol(argv[4], NULL, 10) : 4;

        return count > 0 && kib > 0 && kib <= FSYNC_KIB_MAX && argc <= 5
                   ? fsync_probe(argv[2], count, kib)
                   : usage();
    }
    if (argc < 3)
        return usage();
    mode = argv[2];
    if (strcmp(mode, "durable") == 0
            ? argc != 4
            : argc != 3 || (strcmp(mode, "pool") != 0 && strcmp(mode, "tpc") != 0))
        return usage();
    port = strtol(argv[1], NULL, 10);
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "bare: bad port %s\n", argv[1]);
        return 2;
    }
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (strcmp(mode, "durable") == 0) {
        if (durable_open(argv[3]) == -1)
            return 1;
        if (pthread_create(&writer, NULL, writer_main, NULL) != 0) {
            fprintf(stderr, "bare: cannot start the writer thread\n");
            return 1;
        }
    }

    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (strcmp(mode, "tpc") != 0)
        d = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
                                 (dur.on ? MHD_ALLOW_SUSPEND_RESUME : 0),
                             (uint16_t)port, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR,
                             &addr, MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)2,
                             MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                             MHD_OPTION_CONNECTION_LIMIT, (unsigned int)1024,
                             MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1, MHD_OPTION_END);
    else
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
    if (!dur.on) {
        MHD_stop_daemon(d);
        return 0;
    }
    /* MHD must not be stopped with a connection suspended: stop accepting,
     * let the writer answer what it holds (for up to 5 s), then stop. */
    (void)MHD_quiesce_daemon(d);
    for (int i = 0; i < 500; i++) {
        int busy;

        pthread_mutex_lock(&dur.mu);
        busy = dur.in_flight;
        pthread_mutex_unlock(&dur.mu);
        if (busy == 0)
            break;
        usleep(10000);
    }
    MHD_stop_daemon(d);
    pthread_mutex_lock(&dur.mu);
    dur.stopping = 1;
    pthread_cond_signal(&dur.cv);
    pthread_mutex_unlock(&dur.mu);
    pthread_join(writer, NULL);
    sqlite3_finalize(dur.insert);
    sqlite3_close(dur.db);
    free(dur.commit_us);
    return 0;
}
