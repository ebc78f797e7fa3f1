/* SPDX-License-Identifier: MIT */

/*
 * The SQLite store. WAL mode with synchronous=FULL: a commit that returned
 * survives kill -9 and power loss. Statements are prepared once per handle
 * and reused; each function binds, steps and resets one of them.
 */

#include "store/store.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "core/error.h"
#include "core/xmalloc.h"
#include "store/store_int.h"

enum stmt_id {
    S_BEGIN,
    S_BEGIN_READ,
    S_SAVEPOINT,
    S_RELEASE,
    S_ROLLBACK_TO,
    S_COMMIT,
    S_ROLLBACK,
    S_JOURNAL_ADD,
    S_JOURNAL_PENDING,
    S_JOURNAL_STATE,
    S_JOURNAL_STATE_ONLY,
    S_JOURNAL_COPY_WAITING,
    S_JOURNAL_LAST,
    S_JOURNAL_REPLAY,
    S_INBOX_CLOSE_CHANGE,
    S_INBOX_RESOLVE,
    S_JOB_DROP_PARKED,
    S_JOB_SENT,
    S_JOB_EXPECT,
    S_SYSTEM_PAUSE,
    S_SYSTEM_PAUSED,
    S_SYSTEM_BREAKER,
    S_RECORD_GET,
    S_RECORD_ADD,
    S_RECORD_UPDATE,
    S_VERSION_ADD,
    S_VERSION_GET,
    S_HISTORY,
    S_LINK_BY_EXT,
    S_LINK_BY_RECORD,
    S_LINK_GET,
    S_LINK_ADD,
    S_LINK_SET,
    S_JOB_COALESCE,
    S_JOB_ADD,
    S_JOB_DUE,
    S_JOB_ORPHANS,
    S_JOB_CLAIM,
    S_JOB_LIST,
    S_JOB_GET,
    S_JOB_NEXT_DUE,
    S_JOB_SET,
    S_JOB_DONE,
    S_JOB_BLOCKED,
    S_JOB_UNKNOWN_RETRIED,
    S_ATTEMPTS_LIST,
    S_JOB_SIBLING,
    S_JOB_ABSORB,
    S_ATTEMPT_ADD,
    S_INBOX_ADD,
    S_INBOX_LIST,
    S_INBOX_LIST_ALL,
    S_INBOX_GET,
    S_INBOX_STATE,
    S_JOB_RETRY,
    S_JOURNAL_RETRY,
    S_SYSTEM_OK,
    S_SYSTEM_FAIL,
    S_STATS_JOBS,
    S_STATS_INBOX,
    S_STATS_SYSTEM,
    S_LINK_ADD_UNLESS,
    S_LINK_BY_EXT_OR_GONE,
    S_LINK_AND_RECORD,
    S_RECORD_VERSION,
    S_LINK_ADD_NOTED,
    S_JOB_ADD_CLAIMED,
    S_COUNT
};

/* A new link's id: never one a deleted link had (its keys went out). */
#define NEXT_LINK_ID STORE_NEXT_ID("links", "links_floor")

static const char *const stmt_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_BEGIN_READ] = "BEGIN",
    [S_SAVEPOINT] = "SAVEPOINT item",
    [S_RELEASE] = "RELEASE item",
    [S_ROLLBACK_TO] = "ROLLBACK TO item",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_JOURNAL_ADD] = "INSERT INTO journal (system, delivery_id, received_at, body, collection, "
                      "ext_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
    [S_JOURNAL_PENDING] = "SELECT seq, system, delivery_id, received_at, body, replay, "
                          "collection, ext_id FROM journal WHERE state = 0 ORDER BY seq LIMIT ?1",
    [S_JOURNAL_STATE_ONLY] = "UPDATE journal SET state = ?2, note = ?3, replay = 0 WHERE seq = ?1",
    [S_JOURNAL_LAST] = "SELECT coalesce(max(seq), 0) FROM journal",
    [S_JOURNAL_COPY_WAITING] = "SELECT state, body FROM journal WHERE collection = ?1 AND "
                               "ext_id = ?2 ORDER BY seq DESC LIMIT 1",
    [S_JOURNAL_STATE] = "UPDATE journal SET state = ?2, note = ?3, replay = 0, "
                        "collection = coalesce(?4, collection), ext_id = coalesce(?5, ext_id) "
                        "WHERE seq = ?1",
    [S_JOURNAL_REPLAY] =
        "UPDATE journal SET state = 0, replay = 1, note = NULL "
        "WHERE received_at >= ?1 AND (?2 IS NULL OR system = ?2) AND state <> 0 "
        "AND system NOT LIKE '@%' AND (ext_id IS NULL OR NOT EXISTS (SELECT 1 FROM journal j2 "
        "WHERE j2.collection = journal.collection AND j2.ext_id = journal.ext_id "
        "AND j2.seq > journal.seq)) RETURNING seq",
    [S_INBOX_CLOSE_CHANGE] = "UPDATE inbox SET state = 'retried', updated_at = ?2 "
                             "WHERE journal_seq = ?1 AND state = 'open'",
    [S_RECORD_GET] = "SELECT id, model, version, state, deleted, updated_at FROM records "
                     "WHERE id = ?1",
    [S_RECORD_ADD] = "INSERT INTO records (model, version, state, created_at, updated_at, "
                     "field_meta) VALUES (?1, 1, ?2, ?3, ?3, ?4)",
    [S_RECORD_UPDATE] = "UPDATE records SET version = ?2, state = ?3, deleted = ?4, "
                        "updated_at = ?5 WHERE id = ?1",
    [S_VERSION_ADD] = "INSERT INTO versions (record_id, version, state, diff, source, "
                      "journal_seq, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [S_VERSION_GET] = "SELECT record_id, version, state, diff, source, journal_seq, at "
                      "FROM versions WHERE record_id = ?1 AND version = ?2",
    [S_HISTORY] = "SELECT record_id, version, state, diff, source, journal_seq, at "
                  "FROM versions WHERE record_id = ?1 ORDER BY version",
    [S_LINK_BY_EXT] = "SELECT id, collection, record_id, ext_id, base FROM links "
                      "WHERE collection = ?1 AND ext_id = ?2",
    [S_LINK_BY_RECORD] = "SELECT id, collection, record_id, ext_id, base FROM links "
                         "WHERE collection = ?1 AND record_id = ?2",
    [S_LINK_GET] = "SELECT id, collection, record_id, ext_id, base FROM links WHERE id = ?1",
    [S_LINK_ADD] = "INSERT INTO links (id, collection, record_id, ext_id, base, updated_at) "
                   "VALUES (" NEXT_LINK_ID ", ?1, ?2, ?3, ?4, ?5)",
    [S_LINK_SET] =
        "UPDATE links SET ext_id = coalesce(?2, ext_id), base = ?3, "
        "updated_at = ?4, recent = " STORE_RECENT_NOTE_OVER(
            "CASE WHEN ?5 IS NULL THEN NULL ELSE ?3 END", "?4", "?5", "?6") " WHERE id = ?1",
    [S_JOB_COALESCE] = "UPDATE jobs SET version = ?2, op = ?3, priority = min(priority, ?4) "
                       "WHERE link_id = ?1 AND state = 1",
    [S_JOB_ADD] = "INSERT INTO jobs (link_id, record_id, version, system, collection, op, "
                  "state, attempts, next_at, created_at, priority) "
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, 0, ?7, ?7, ?8)",
    [S_JOB_DUE] = "SELECT id, link_id, record_id, version, system, collection, op, state, "
                  "attempts, next_at, created_at, priority, sent_version, expect FROM jobs "
                  "WHERE state = 1 AND system = ?3 AND next_at <= ?1 "
                  "ORDER BY priority, next_at, id LIMIT ?2",
    [S_JOB_ORPHANS] = "SELECT id, link_id, record_id, version, system, collection, op, state, "
                      "attempts, next_at, created_at, priority, sent_version, expect FROM jobs "
                      "WHERE state = 1 AND system NOT IN (SELECT value FROM json_each(?1)) "
                      "ORDER BY id LIMIT ?2",
    [S_JOB_LIST] =
        "SELECT id, link_id, record_id, version, system, collection, op, state, "
        "attempts, next_at, created_at, priority, sent_version, expect FROM jobs WHERE state = ?1 ORDER BY id",
    [S_JOB_GET] =
        "SELECT id, link_id, record_id, version, system, collection, op, state, "
        "attempts, next_at, created_at, priority, sent_version, expect FROM jobs WHERE id = ?1",
    /* Priorities are 0 (live) and 1 (replays, retries): a seek each. */
    [S_JOB_NEXT_DUE] = "SELECT min((SELECT min(next_at) FROM jobs WHERE state = 1 AND "
                       "system = ?1 AND priority = p.column1)) FROM (VALUES (0), (1)) p",
    [S_JOB_SET] = "UPDATE jobs SET state = ?2, attempts = coalesce(?3, attempts), "
                  "next_at = coalesce(?4, next_at) WHERE id = ?1",
    [S_JOB_DONE] = "DELETE FROM jobs WHERE id = ?1",
    [S_JOB_SIBLING] = "SELECT id, link_id, record_id, version, system, collection, op, state, "
                      "attempts, next_at, created_at, priority, sent_version, expect FROM jobs "
                      "WHERE link_id = ?1 AND id <> ?2 AND state = 1 ORDER BY id LIMIT 1",
    /* The newer job's op: what the last fan-out decided (a delete, once the
     * record left the collection while the other job was in flight). */
    [S_JOB_ABSORB] =
        "UPDATE jobs SET op = CASE WHEN (SELECT version FROM jobs WHERE id = ?2) > version "
        "THEN (SELECT op FROM jobs WHERE id = ?2) ELSE op END, "
        "version = max(version, (SELECT version FROM jobs WHERE id = ?2)), "
        "priority = min(priority, (SELECT priority FROM jobs WHERE id = ?2)) "
        "WHERE id = ?1",
    [S_ATTEMPTS_LIST] = "SELECT n, at, outcome, http_status, request, response, elapsed_ms "
                        "FROM attempts WHERE job_id = ?1 ORDER BY n",
    [S_JOB_BLOCKED] = "SELECT EXISTS (SELECT 1 FROM jobs j JOIN inbox i ON i.job_id = j.id "
                      "WHERE j.link_id = ?1 AND j.state = 3 AND i.kind = 2 AND i.state = 'open')",
    /* Newest first: an entry is recent, so the scan by id stops soon. */
    [S_JOB_UNKNOWN_RETRIED] = "SELECT coalesce((SELECT state = 'retried' FROM inbox WHERE "
                              "job_id = ?1 AND kind = 2 ORDER BY id DESC LIMIT 1), 0)",
    [S_ATTEMPT_ADD] = "INSERT OR REPLACE INTO attempts (job_id, n, at, outcome, http_status, "
                      "request, response, elapsed_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [S_INBOX_ADD] = "INSERT INTO inbox (kind, system, collection, record_id, job_id, "
                    "journal_seq, reason, http_status, response, attempts, created_at, "
                    "updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
    [S_INBOX_LIST] = "SELECT id, kind, state, system, collection, record_id, job_id, "
                     "journal_seq, reason, http_status, response, attempts, created_at, "
                     "updated_at FROM inbox WHERE state = ?1 ORDER BY id DESC",
    [S_INBOX_LIST_ALL] = "SELECT id, kind, state, system, collection, record_id, job_id, "
                         "journal_seq, reason, http_status, response, attempts, created_at, "
                         "updated_at FROM inbox ORDER BY id DESC",
    [S_INBOX_GET] = "SELECT id, kind, state, system, collection, record_id, job_id, "
                    "journal_seq, reason, http_status, response, attempts, created_at, "
                    "updated_at FROM inbox WHERE id = ?1",
    [S_INBOX_STATE] = "UPDATE inbox SET state = ?2, updated_at = ?3 WHERE id = ?1",
    [S_JOB_RETRY] = "UPDATE jobs SET state = 1, attempts = 0, next_at = ?2, priority = 1 "
                    "WHERE id = ?1 AND state = 3",
    [S_JOB_DROP_PARKED] = "DELETE FROM jobs WHERE id = ?1 AND state = 3",
    [S_JOB_SENT] = "UPDATE jobs SET sent_version = ?2 WHERE id = ?1",
    [S_JOB_CLAIM] = "UPDATE jobs SET state = 2, sent_version = CASE WHEN ?3 THEN ?2 "
                    "ELSE sent_version END WHERE id = ?1",
    [S_JOB_EXPECT] = "UPDATE jobs SET expect = ?2 WHERE id = ?1",
    [S_INBOX_RESOLVE] = "UPDATE inbox SET state = ?2, resolved_by = ?3, note = ?4, "
                        "updated_at = ?5 WHERE id = ?1 AND state = 'open'",
    [S_SYSTEM_PAUSE] = "INSERT INTO system_state (system, paused, paused_by) VALUES (?1, ?2, ?3) "
                       "ON CONFLICT (system) DO UPDATE SET paused = excluded.paused, "
                       "paused_by = excluded.paused_by",
    [S_SYSTEM_PAUSED] = "SELECT system FROM system_state WHERE paused = 1",
    [S_SYSTEM_BREAKER] = "INSERT INTO system_state (system, breaker, breaker_reason, breaker_at) "
                         "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (system) DO UPDATE SET "
                         "breaker = excluded.breaker, breaker_reason = excluded.breaker_reason, "
                         "breaker_at = excluded.breaker_at",
    [S_JOURNAL_RETRY] = "UPDATE journal SET state = 0, note = NULL WHERE seq = ?1",
    [S_SYSTEM_OK] = "INSERT INTO system_state (system, last_success_at) VALUES (?1, ?2) "
                    "ON CONFLICT (system) DO UPDATE SET last_success_at = excluded.last_success_at",
    [S_SYSTEM_FAIL] = "INSERT INTO system_state (system, last_error_at, last_error) "
                      "VALUES (?1, ?2, ?3) ON CONFLICT (system) DO UPDATE SET "
                      "last_error_at = excluded.last_error_at, last_error = excluded.last_error",
    [S_STATS_JOBS] = "SELECT (SELECT count(*) FROM jobs WHERE system = ?1 AND state = 1), "
                     "(SELECT count(*) FROM jobs WHERE system = ?1 AND state = 2)",
    [S_STATS_INBOX] = "SELECT count(*) FROM inbox WHERE state = 'open' AND system = ?1",
    [S_STATS_SYSTEM] = "SELECT last_success_at, last_error_at, last_error, paused, paused_by, "
                       "breaker, breaker_reason, breaker_at FROM system_state WHERE system = ?1",
    [S_LINK_ADD_UNLESS] = "INSERT INTO links (id, collection, record_id, updated_at) VALUES "
                          "(" NEXT_LINK_ID ", ?1, ?2, ?3) ON CONFLICT DO NOTHING",
    /* S_LINK_BY_EXT, or (only when it finds nothing) T_LINK_BY_GONE's row,
     * marked by its last column. NOT EXISTS, not an ORDER BY, says which
     * comes first: an ORDER BY makes SQLite sort the union, which cost 3x
     * the two reads. */
    [S_LINK_BY_EXT_OR_GONE] =
        "SELECT id, collection, record_id, ext_id, base, 0 FROM links "
        "WHERE collection = ?1 AND ext_id = ?2 UNION ALL "
        "SELECT id, collection, record_id, NULL, NULL, 1 FROM links "
        "WHERE collection = ?1 AND gone_ext_id = ?2 AND ext_id IS NULL AND NOT EXISTS "
        "(SELECT 1 FROM links WHERE collection = ?1 AND ext_id = ?2) LIMIT 1",
    /* S_LINK_GET and S_RECORD_GET in one */
    [S_LINK_AND_RECORD] =
        "SELECT l.id, l.collection, l.record_id, l.ext_id, l.base, r.id, r.model, r.version, "
        "r.state, r.deleted, r.updated_at FROM links l JOIN records r ON r.id = ?2 "
        "WHERE l.id = ?1",
    [S_RECORD_VERSION] = "SELECT version, deleted FROM records WHERE id = ?1",
    /* S_LINK_ADD_UNLESS with a write noted in its recent states: what
     * STORE_RECENT_NOTE gives a link that has none. */
    [S_LINK_ADD_NOTED] = "INSERT INTO links (id, collection, record_id, updated_at, recent) "
                         "VALUES (" NEXT_LINK_ID ", ?1, ?2, ?3, coalesce(concord_recent_note("
                         "NULL, ?4, ?3, 'w'), json_array(json_array(?3, ?4, 'w')))) "
                         "ON CONFLICT DO NOTHING",
    /* S_JOB_ADD and S_JOB_CLAIM in one: a job running from the start */
    [S_JOB_ADD_CLAIMED] = "INSERT INTO jobs (link_id, record_id, version, system, collection, op, "
                          "state, attempts, next_at, created_at, priority, sent_version) "
                          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, 2, 0, ?7, ?7, ?8, ?9)",
};

struct store {
    sqlite3 *db;
    char *path;
    int in_tx;
    int synchronous_full; /* the URL's setting */
    int is_lazy;          /* the open transaction commits without an fsync */
    int wal_frames;       /* pages in the WAL after the last commit (store_no_autocheckpoint) */
    int busy_timeout_ms;
    struct store_lock *lock; /* the file's turns at writing (store_lock.c) */
    int lock_held;           /* this handle's open transaction has the turn */
    /* store_begin_late(): the write transaction is not begun yet, and
     * journal entries wait here for the commit */
    int late;
    int in_read; /* a late transaction that has only read: a read transaction */
    struct staged *staged;
    size_t staged_count, staged_cap;
    /* store_journal_note_copy()'s note, written with the change's state */
    int64_t copy_seq;
    char *copy_collection, *copy_ext_id;
    sqlite3_stmt *stmts[S_COUNT];
    sqlite3_stmt *extra[STORE_EXTRA_SLOTS]; /* other files' statements: store_int_stmt() */
};

static int
db_error(struct store *st, struct error *err, const char *what)
{
    return error_set(err, ERROR_STORE, "%s: %s", what, sqlite3_errmsg(st->db));
}

/* The prepared statement id, reset and with its bindings cleared. */
static sqlite3_stmt *
stmt(struct store *st, enum stmt_id id, struct error *err)
{
    if (st->stmts[id] == NULL &&
        sqlite3_prepare_v3(st->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &st->stmts[id],
                           NULL) != SQLITE_OK) {
        db_error(st, err, "prepare");
        return NULL;
    }
    sqlite3_reset(st->stmts[id]);
    sqlite3_clear_bindings(st->stmts[id]);
    return st->stmts[id];
}

static void
bind_text(sqlite3_stmt *s, int i, const char *text)
{
    if (text == NULL)
        sqlite3_bind_null(s, i);
    else
        sqlite3_bind_text(s, i, text, -1, SQLITE_STATIC);
}

static void
bind_id(sqlite3_stmt *s, int i, int64_t v)
{
    if (v == 0)
        sqlite3_bind_null(s, i);
    else
        sqlite3_bind_int64(s, i, v);
}

static char *
col_text(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);

    return t ? xstrndup((const char *)t, (size_t)sqlite3_column_bytes(s, i)) : NULL;
}

static int begin_tx(struct store *st, struct error *err);
static void give_turn(struct store *st);
static int journal_insert(struct store *st, const char *system, const char *delivery_id,
                          const char *collection, const char *ext_id, int64_t received_at_ms,
                          const char *body, size_t body_len, int64_t *seq, struct error *err);

/*
 * Before a statement that writes. Inside a late transaction
 * (store_begin_late()) the first write begins it for real. Outside any
 * transaction the statement waits for the file's turn (store_lock.c), and
 * returns 1: the caller gives the turn up once the statement ran.
 * Returns 0, 1 or -1.
 */
static int
before_write(struct store *st, sqlite3_stmt *s, struct error *err)
{
    if (st->in_tx || sqlite3_stmt_readonly(s))
        return 0;
    if (st->late)
        return begin_tx(st, err) == -1 ? -1 : 0;
    return store_lock_take(st->lock, st->busy_timeout_ms);
}

/* Step a statement that returns no rows. */
static int
exec_stmt(struct store *st, sqlite3_stmt *s, struct error *err, const char *what)
{
    int turn = before_write(st, s, err), rc;

    if (turn == -1)
        return -1;
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (turn == 1)
        store_lock_give(st->lock);
    if (rc != SQLITE_DONE)
        return db_error(st, err, what);
    return 0;
}

/* Fills *out from the current row of a statement. */
typedef void row_fill_fn(sqlite3_stmt *s, void *out);

/*
 * Step a statement that returns at most one row: 1 with *out filled by
 * fill, 0 when there is no row, -1 (err names what was read).
 */
static int
one_row(struct store *st, sqlite3_stmt *s, row_fill_fn *fill, void *out, const char *what,
        struct error *err)
{
    int turn = before_write(st, s, err), rc;

    if (turn == -1)
        return -1;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        fill(s, out);
    sqlite3_reset(s);
    if (turn == 1)
        store_lock_give(st->lock);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_error(st, err, what);
    return rc == SQLITE_ROW;
}

/* Releases the elements of a list filled by many_rows() when it fails. */
typedef void rows_free_fn(void *list, int count);

/*
 * Step a statement to its end, filling a growing array of elem_size
 * elements with fill. Returns the count with *out the malloc()ed array, or
 * -1 (what was read goes to free_list, err names what).
 */
static int
many_rows(struct store *st, sqlite3_stmt *s, size_t elem_size, row_fill_fn *fill,
          rows_free_fn *free_list, void **out, const char *what, struct error *err)
{
    char *list = NULL;
    size_t cap = 0;
    int n = 0, rc, turn = before_write(st, s, err);

    if (turn == -1)
        return -1;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if ((size_t)n == cap) {
            cap = cap ? cap * 2 : 16;
            list = xreallocarray(list, cap, elem_size);
        }
        memset(list + (size_t)n * elem_size, 0, elem_size);
        fill(s, list + (size_t)n++ * elem_size);
    }
    sqlite3_reset(s);
    if (turn == 1)
        store_lock_give(st->lock);
    if (rc != SQLITE_DONE) {
        free_list(list, n);
        return db_error(st, err, what);
    }
    *out = list;
    return n;
}

static int
exec_sql(struct store *st, const char *sql, struct error *err)
{
    char *msg = NULL;

    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        error_set(err, ERROR_STORE, "%s", msg ? msg : sqlite3_errmsg(st->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int
migrate(struct store *st, struct error *err)
{
    sqlite3_stmt *s = NULL;
    int have = 0;

    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
        return db_error(st, err, "read schema version");
    if (sqlite3_step(s) == SQLITE_ROW)
        have = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    if (have > store_schema_count())
        return error_set(err, ERROR_STORE,
                         "schema version %d is newer than this concord knows (%d); upgrade concord",
                         have, store_schema_count());
    for (int n = have; n < store_schema_count(); n++) {
        char setver[64];

        (void)snprintf(setver, sizeof(setver), "PRAGMA user_version = %d", n + 1);
        if (exec_sql(st, "BEGIN IMMEDIATE", err) == -1)
            return error_wrap(err, "migrate to schema %d", n + 1);
        if (exec_sql(st, store_schema_migration(n), err) == -1 || exec_sql(st, setver, err) == -1 ||
            exec_sql(st, "COMMIT", err) == -1) {
            (void)sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
            return error_wrap(err, "migrate to schema %d", n + 1);
        }
    }
    return 0;
}

/* What a store URL says: "sqlite:PATH[?busy_timeout_ms=N&synchronous=full|normal]". */
struct sqlite_url {
    char *path;
    int busy_timeout_ms; /* how long a write waits for another process's lock */
    int synchronous_full;
};

static int
parse_url(const char *url, struct sqlite_url *u, struct error *err)
{
    const char *rest, *q;

    if (strncmp(url, "sqlite://", 9) == 0)
        rest = url + 9;
    else if (strncmp(url, "sqlite:", 7) == 0)
        rest = url + 7;
    else
        return error_set(err, ERROR_INVALID, "store url: use sqlite:PATH");
    q = strchr(rest, '?');
    u->path = q ? xstrndup(rest, (size_t)(q - rest)) : xstrdup(rest);
    u->busy_timeout_ms = 10000;
    u->synchronous_full = 1;
    if (u->path[0] == '\0')
        return error_set(err, ERROR_INVALID, "store url: no path after sqlite:");
    while (q != NULL && q[1] != '\0') {
        const char *opt = q + 1;
        char *end;

        q = strchr(opt, '&');
        if (strncmp(opt, "busy_timeout_ms=", 16) == 0) {
            long v = strtol(opt + 16, &end, 10);

            if (end == opt + 16 || (*end != '\0' && *end != '&') || v < 0 || v > 3600000)
                return error_set(err, ERROR_INVALID,
                                 "store url: busy_timeout_ms takes 0 to 3600000");
            u->busy_timeout_ms = (int)v;
        } else if (strncmp(opt, "synchronous=full", 16) == 0 &&
                   (opt[16] == '\0' || opt[16] == '&')) {
            u->synchronous_full = 1;
        } else if (strncmp(opt, "synchronous=normal", 18) == 0 &&
                   (opt[18] == '\0' || opt[18] == '&')) {
            u->synchronous_full = 0;
        } else {
            return error_set(err, ERROR_INVALID,
                             "store url: unknown option; use busy_timeout_ms=N or "
                             "synchronous=full|normal");
        }
    }
    return 0;
}

/* Once per process, before SQLite starts: no memory statistics, which
 * concord never reads and which cost a global mutex per allocation. */
static void
sqlite_setup(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int
store_open(struct store **out, const char *url, struct error *err)
{
    static pthread_once_t setup_once = PTHREAD_ONCE_INIT;
    struct sqlite_url u = {0};
    struct store *st;

    (void)pthread_once(&setup_once, sqlite_setup);

    if (parse_url(url, &u, err) == -1) {
        free(u.path);
        return -1;
    }
    st = xcalloc(1, sizeof(*st));
    st->path = u.path;
    st->synchronous_full = u.synchronous_full;
    if (store_vfs_register() != SQLITE_OK) {
        error_set(err, ERROR_STORE, "open %s: the store's SQLite VFS could not be registered",
                  st->path);
        store_close(st);
        return -1;
    }
    if (sqlite3_open_v2(st->path, &st->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        STORE_VFS_NAME) != SQLITE_OK) {
        error_set(err, ERROR_STORE, "open %s: %s", st->path,
                  st->db ? sqlite3_errmsg(st->db) : "out of memory");
        store_close(st);
        return -1;
    }
    if (store_recent_register(st->db) != SQLITE_OK) {
        error_set(err, ERROR_STORE, "open %s: add concord_recent_note(): %s", st->path,
                  sqlite3_errmsg(st->db));
        store_close(st);
        return -1;
    }
    sqlite3_busy_timeout(st->db, u.busy_timeout_ms);
    st->busy_timeout_ms = u.busy_timeout_ms;
    st->lock = store_lock_get(st->path);
    /* Guarantee: nothing acknowledged is lost. FULL syncs the WAL at every
     * commit, so a returned commit survives power loss (DESIGN.md). NORMAL
     * is the operator's explicit choice to trade that for speed. */
    if (exec_sql(st, "PRAGMA journal_mode = WAL", err) == -1 ||
        exec_sql(st,
                 u.synchronous_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
                 err) == -1 ||
        exec_sql(st, "PRAGMA foreign_keys = OFF; PRAGMA temp_store = MEMORY;", err) == -1 ||
        migrate(st, err) == -1) {
        error_wrap(err, "open %s", st->path);
        store_close(st);
        return -1;
    }
    *out = st;
    return 0;
}

/* SQLite's WAL hook: note the WAL's size after each commit. */
static int
on_wal_commit(void *arg, sqlite3 *db, const char *name, int frames)
{
    struct store *st = arg;

    (void)db;
    (void)name;
    st->wal_frames = frames;
    return SQLITE_OK;
}

int
store_no_autocheckpoint(struct store *st, struct error *err)
{
    if (exec_sql(st, "PRAGMA wal_autocheckpoint = 0", err) == -1)
        return -1;
    /* Replaces the autocheckpoint's hook: the WAL's size is ours to watch. */
    (void)sqlite3_wal_hook(st->db, on_wal_commit, st);
    return 0;
}

int
store_wal_frames(const struct store *st)
{
    return st->wal_frames;
}

int
store_checkpoint(struct store *st, struct error *err)
{
    int rc = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);

    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        return db_error(st, err, "checkpoint");
    if (rc == SQLITE_OK)
        st->wal_frames = 0; /* or fewer: the next commit tells */
    return 0;
}

/* A journal entry of a late transaction, written at its commit. */
struct staged {
    char *system, *collection, *ext_id;
    int64_t received_at_ms;
    char *body;
    size_t body_len;
};

static void
drop_staged(struct store *st)
{
    for (size_t i = 0; i < st->staged_count; i++) {
        free(st->staged[i].system);
        free(st->staged[i].collection);
        free(st->staged[i].ext_id);
        free(st->staged[i].body);
    }
    free(st->staged);
    st->staged = NULL;
    st->staged_count = st->staged_cap = 0;
}

/* Forget a copy note that was not written (its change was undone). */
static void
drop_copy_note(struct store *st)
{
    st->copy_seq = 0;
    free(st->copy_collection);
    free(st->copy_ext_id);
    st->copy_collection = st->copy_ext_id = NULL;
}

void
store_close(struct store *st)
{
    if (st == NULL)
        return;
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(st->stmts[i]);
    for (int i = 0; i < STORE_EXTRA_SLOTS; i++)
        sqlite3_finalize(st->extra[i]);
    sqlite3_close(st->db);
    give_turn(st); /* closed inside a transaction: it ended */
    drop_copy_note(st);
    drop_staged(st);
    store_lock_put(st->lock);
    free(st->path);
    free(st);
}

/*
 * After a lazy transaction: every commit waits for the disk again. This
 * only fails when the connection is still inside a transaction (a failed
 * ROLLBACK); is_lazy then stays set, and the next store_begin() tries
 * again and refuses to begin until it succeeds, so no ordinary transaction
 * ever commits without its fsync.
 */
static int
end_lazy(struct store *st, struct error *err)
{
    if (!st->is_lazy)
        return 0;
    if (exec_sql(st, "PRAGMA synchronous = FULL", err) == -1)
        return error_wrap(err, "set synchronous=FULL again");
    st->is_lazy = 0;
    return 0;
}

/* The open transaction ended: the next handle in the queue may write. */
static void
give_turn(struct store *st)
{
    if (st->lock_held) {
        st->lock_held = 0;
        store_lock_give(st->lock);
    }
}

/* Step a transaction statement (BEGIN, COMMIT) of this file. */
static int
step_tx(struct store *st, enum stmt_id id, const char *what, struct error *err)
{
    sqlite3_stmt *s = stmt(st, id, err);
    int rc;

    if (s == NULL)
        return -1;
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : db_error(st, err, what);
}

/* A late transaction's reads end: they were one snapshot. */
static int
end_read(struct store *st, struct error *err)
{
    if (!st->in_read)
        return 0;
    st->in_read = 0;
    return step_tx(st, S_COMMIT, "end a read", err);
}

/* BEGIN IMMEDIATE, at whatever level the handle is set to, once it is
 * this handle's turn. */
static int
begin_tx(struct store *st, struct error *err)
{
    sqlite3_stmt *s;
    int rc, took = 0;

    if (end_read(st, err) == -1)
        return -1;
    s = stmt(st, S_BEGIN, err);
    if (s == NULL)
        return -1;
    if (!st->lock_held)
        took = st->lock_held = store_lock_take(st->lock, st->busy_timeout_ms);
    /* Stepped here: SQLite counts BEGIN IMMEDIATE as a write, and
     * exec_stmt() would queue it for the turn this handle has. */
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        db_error(st, err, "begin");
        if (took) /* not a transaction that is open already */
            give_turn(st);
        return -1;
    }
    st->late = 0;
    st->in_tx = 1;
    return 0;
}

int
store_begin(struct store *st, struct error *err)
{
    if (end_lazy(st, err) == -1)
        return -1;
    return begin_tx(st, err);
}

int
store_begin_late(struct store *st, struct error *err)
{
    /* Its reads share one snapshot (a read transaction, which takes no
     * lock): one read of the WAL's index for the page, not one a row. */
    if (end_lazy(st, err) == -1 || step_tx(st, S_BEGIN_READ, "begin a read", err) == -1)
        return -1;
    st->in_read = 1;
    st->late = 1;
    return 0;
}

/* A late transaction's journal entries, in order: begins it for real. */
static int
write_staged(struct store *st, struct error *err)
{
    struct staged *list = st->staged;
    size_t n = st->staged_count;
    int64_t seq;
    int rc = 0;

    st->staged = NULL; /* taken: journal_insert() writes them through */
    st->staged_count = st->staged_cap = 0;
    if (n > 0 && !st->in_tx)
        rc = begin_tx(st, err);
    for (size_t i = 0; i < n; i++) {
        struct staged *g = &list[i];

        if (rc == 0 && journal_insert(st, g->system, NULL, g->collection, g->ext_id,
                                      g->received_at_ms, g->body, g->body_len, &seq, err) == -1)
            rc = -1;
        free(g->system);
        free(g->collection);
        free(g->ext_id);
        free(g->body);
    }
    free(list);
    return rc;
}

int
store_begin_lazy(struct store *st, struct error *err)
{
    struct error ignored = {0};

    /* SQLite takes the level at the commit, and refuses to change it inside
     * a transaction: set it now, and set it back at the end. */
    if (st->synchronous_full && !st->is_lazy) {
        if (exec_sql(st, "PRAGMA synchronous = NORMAL", err) == -1)
            return -1;
        st->is_lazy = 1;
    }
    if (begin_tx(st, err) == -1) {
        (void)end_lazy(st, &ignored);
        return -1;
    }
    return 0;
}

int
store_commit(struct store *st, struct error *err)
{
    sqlite3_stmt *s;

    if (st->late || st->staged_count > 0) {
        st->late = 0;
        if (write_staged(st, err) == -1) {
            store_rollback(st);
            return -1;
        }
        if (!st->in_tx)
            return end_read(st, err); /* it wrote nothing */
    }
    s = stmt(st, S_COMMIT, err);
    if (s == NULL || exec_stmt(st, s, err, "commit") == -1) {
        store_rollback(st);
        return -1;
    }
    st->in_tx = 0;
    give_turn(st);
    drop_copy_note(st);
    (void)end_lazy(st, &(struct error){0}); /* or the next store_begin() */
    return 0;
}

int
store_savepoint(struct store *st, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_SAVEPOINT, err);

    return s == NULL ? -1 : exec_stmt(st, s, err, "savepoint");
}

int
store_release(struct store *st, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_RELEASE, err);

    return s == NULL ? -1 : exec_stmt(st, s, err, "release a savepoint");
}

int
store_rollback_savepoint(struct store *st, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_ROLLBACK_TO, err);

    drop_copy_note(st);
    /* ROLLBACK TO keeps the savepoint open; release it too. */
    if (s == NULL || exec_stmt(st, s, err, "roll back a savepoint") == -1)
        return -1;
    return store_release(st, err);
}

void
store_rollback(struct store *st)
{
    if (!sqlite3_get_autocommit(st->db))
        (void)sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    st->in_tx = 0;
    st->late = 0;
    st->in_read = 0;
    drop_staged(st);
    give_turn(st);
    drop_copy_note(st);
    (void)end_lazy(st, &(struct error){0}); /* or the next store_begin() */
}

/* ---- journal ---- */

/* Keep a journal entry of a late transaction for its commit, in order. */
static void
stage(struct store *st, const char *system, const char *collection, const char *ext_id,
      int64_t received_at_ms, const char *body, size_t body_len)
{
    struct staged *g;

    if (st->staged_count == st->staged_cap) {
        st->staged_cap = st->staged_cap ? st->staged_cap * 2 : 64;
        st->staged = xreallocarray(st->staged, st->staged_cap, sizeof(*st->staged));
    }
    g = &st->staged[st->staged_count++];
    g->system = xstrdup(system);
    g->collection = collection != NULL ? xstrdup(collection) : NULL;
    g->ext_id = ext_id != NULL ? xstrdup(ext_id) : NULL;
    g->received_at_ms = received_at_ms;
    g->body = xmalloc(body_len + 1);
    memcpy(g->body, body, body_len);
    g->body_len = body_len;
}

/*
 * One journal entry, with its copy when it is known (collection and ext_id
 * may be NULL). In a late transaction an entry without a delivery id waits
 * for the commit (store_begin_late()); anything written before it writes
 * what waits first, so the journal keeps the order of the calls. Returns
 * as store_journal_add().
 */
static int
journal_insert(struct store *st, const char *system, const char *delivery_id,
               const char *collection, const char *ext_id, int64_t received_at_ms, const char *body,
               size_t body_len, int64_t *seq, struct error *err)
{
    sqlite3_stmt *s;

    *seq = 0;
    if (st->late && !st->in_tx && delivery_id == NULL) {
        stage(st, system, collection, ext_id, received_at_ms, body, body_len);
        return 1;
    }
    if (st->staged_count > 0 && write_staged(st, err) == -1)
        return -1;
    s = stmt(st, S_JOURNAL_ADD, err);
    if (s == NULL)
        return -1;
    bind_text(s, 1, system);
    bind_text(s, 2, delivery_id);
    sqlite3_bind_int64(s, 3, received_at_ms);
    sqlite3_bind_blob64(s, 4, body, body_len, SQLITE_STATIC);
    bind_text(s, 5, collection);
    bind_text(s, 6, ext_id);
    if (exec_stmt(st, s, err, "journal a change") == -1)
        return -1;
    if (sqlite3_changes(st->db) == 0)
        return 0; /* the unique (system, delivery_id) index: a repeat */
    *seq = sqlite3_last_insert_rowid(st->db);
    return 1;
}

int
store_journal_add(struct store *st, const char *system, const char *delivery_id,
                  int64_t received_at_ms, const char *body, size_t body_len, int64_t *seq,
                  struct error *err)
{
    return journal_insert(st, system, delivery_id, NULL, NULL, received_at_ms, body, body_len, seq,
                          err);
}

int
store_journal_add_copy(struct store *st, const char *system, const char *collection,
                       const char *ext_id, int64_t received_at_ms, const char *body,
                       size_t body_len, struct error *err)
{
    int64_t seq;

    return journal_insert(st, system, NULL, collection, ext_id, received_at_ms, body, body_len,
                          &seq, err) == -1
               ? -1
               : 0;
}

static void
seq_from_row(sqlite3_stmt *s, void *out)
{
    *(int64_t *)out = sqlite3_column_int64(s, 0);
}

int
store_journal_last(struct store *st, int64_t *seq, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_JOURNAL_LAST, err);

    *seq = 0;
    if (s == NULL)
        return -1;
    return one_row(st, s, seq_from_row, seq, "read the journal's end", err) == -1 ? -1 : 0;
}

static void
waiting_from_row(sqlite3_stmt *s, void *out)
{
    *(char **)out = sqlite3_column_int(s, 0) == CHANGE_NEW ? col_text(s, 1) : NULL;
}

int
store_journal_copy_waiting(struct store *st, const char *collection, const char *ext_id,
                           char **body, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_JOURNAL_COPY_WAITING, err);
    int rc;

    *body = NULL;
    if (s == NULL)
        return -1;
    bind_text(s, 1, collection);
    bind_text(s, 2, ext_id);
    rc = one_row(st, s, waiting_from_row, body, "read a copy's journal", err);
    return rc == 1 && *body != NULL ? 1 : rc == -1 ? -1 : 0;
}

int
store_journal_pending(struct store *st, int limit, struct change **out, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_JOURNAL_PENDING, err);
    struct change *list = NULL;
    int n = 0, rc;

    if (s == NULL)
        return -1;
    sqlite3_bind_int(s, 1, limit);
    list = xcalloc((size_t)limit, sizeof(*list));
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct change *c = &list[n++];
        const void *body = sqlite3_column_blob(s, 4);

        c->seq = sqlite3_column_int64(s, 0);
        c->system = col_text(s, 1);
        c->delivery_id = col_text(s, 2);
        c->received_at_ms = sqlite3_column_int64(s, 3);
        c->body_len = (size_t)sqlite3_column_bytes(s, 4);
        c->body = xstrndup(body ? body : "", c->body_len);
        c->is_replay = sqlite3_column_int(s, 5);
        c->collection = col_text(s, 6);
        c->ext_id = col_text(s, 7);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        store_changes_free(list, n);
        return db_error(st, err, "read the journal");
    }
    *out = list;
    return n;
}

void
store_changes_free(struct change *changes, int count)
{
    for (int i = 0; i < count; i++)
        change_fini(&changes[i]);
    free(changes);
}

int
store_journal_set_state(struct store *st, int64_t seq, enum change_state state, const char *note,
                        struct error *err)
{
    /* Without a copy to note, the statement leaves the copy's columns (and
     * their index) alone. */
    int noted = st->copy_seq == seq;
    sqlite3_stmt *s = stmt(st, noted ? S_JOURNAL_STATE : S_JOURNAL_STATE_ONLY, err);
    int rc;

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, seq);
    sqlite3_bind_int(s, 2, (int)state);
    bind_text(s, 3, note);
    if (noted) {
        bind_text(s, 4, st->copy_collection);
        bind_text(s, 5, st->copy_ext_id);
    }
    rc = exec_stmt(st, s, err, "mark a change");
    if (st->copy_seq == seq)
        drop_copy_note(st);
    return rc;
}

/* ---- records ---- */

/* A record from the columns at col on: id, model, version, state,
 * deleted, updated_at. */
static void
record_columns(sqlite3_stmt *s, int col, struct record *r)
{
    r->id = sqlite3_column_int64(s, col);
    r->model = col_text(s, col + 1);
    r->version = sqlite3_column_int64(s, col + 2);
    r->state = col_text(s, col + 3);
    r->is_deleted = sqlite3_column_int(s, col + 4);
    r->updated_at_ms = sqlite3_column_int64(s, col + 5);
}

static void
record_from_row(sqlite3_stmt *s, void *out)
{
    record_columns(s, 0, out);
}

int
store_record_get(struct store *st, int64_t id, struct record *out, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_RECORD_GET, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, id);
    return one_row(st, s, record_from_row, out, "read a record", err);
}

/* The row of S_RECORD_VERSION. */
struct record_version {
    int64_t version;
    int is_deleted;
};

static void
record_version_fill(sqlite3_stmt *s, void *out)
{
    struct record_version *v = out;

    v->version = sqlite3_column_int64(s, 0);
    v->is_deleted = sqlite3_column_int(s, 1);
}

int
store_record_version(struct store *st, int64_t id, int64_t *version, int *is_deleted,
                     struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_RECORD_VERSION, err);
    struct record_version v = {0};
    int rc;

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, id);
    rc = one_row(st, s, record_version_fill, &v, "read a record's version", err);
    if (rc == 1) {
        *version = v.version;
        *is_deleted = v.is_deleted;
    }
    return rc;
}

static int
version_add(struct store *st, const struct version *v, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_VERSION_ADD, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, v->record_id);
    sqlite3_bind_int64(s, 2, v->version);
    bind_text(s, 3, v->state);
    bind_text(s, 4, v->diff);
    bind_text(s, 5, v->source);
    bind_id(s, 6, v->journal_seq);
    sqlite3_bind_int64(s, 7, v->at_ms);
    return exec_stmt(st, s, err, "write a version");
}

int
store_record_add(struct store *st, const char *model, const char *state, const char *source,
                 int64_t journal_seq, int64_t now_ms, int64_t *id, struct error *err)
{
    return store_record_add_meta(st, model, state, NULL, source, journal_seq, now_ms, id, err);
}

int
store_record_add_meta(struct store *st, const char *model, const char *state, const char *meta,
                      const char *source, int64_t journal_seq, int64_t now_ms, int64_t *id,
                      struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_RECORD_ADD, err);
    struct version v = {0};

    if (s == NULL)
        return -1;
    bind_text(s, 1, model);
    bind_text(s, 2, state);
    sqlite3_bind_int64(s, 3, now_ms);
    bind_text(s, 4, meta);
    if (exec_stmt(st, s, err, "add a record") == -1)
        return -1;
    v.record_id = sqlite3_last_insert_rowid(st->db);
    v.version = 1;
    v.state = (char *)(uintptr_t)state;
    v.source = (char *)(uintptr_t)source;
    v.journal_seq = journal_seq;
    v.at_ms = now_ms;
    if (version_add(st, &v, err) == -1)
        return -1;
    *id = v.record_id;
    return 0;
}

int
store_record_update(struct store *st, const struct version *v, int is_deleted, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_RECORD_UPDATE, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, v->record_id);
    sqlite3_bind_int64(s, 2, v->version);
    bind_text(s, 3, v->state);
    sqlite3_bind_int(s, 4, is_deleted);
    sqlite3_bind_int64(s, 5, v->at_ms);
    if (exec_stmt(st, s, err, "update a record") == -1)
        return -1;
    return version_add(st, v, err);
}

static void
version_from_row(sqlite3_stmt *s, void *out)
{
    struct version *v = out;

    v->record_id = sqlite3_column_int64(s, 0);
    v->version = sqlite3_column_int64(s, 1);
    v->state = col_text(s, 2);
    v->diff = col_text(s, 3);
    v->source = col_text(s, 4);
    v->journal_seq = sqlite3_column_int64(s, 5);
    v->at_ms = sqlite3_column_int64(s, 6);
}

int
store_version_get(struct store *st, int64_t record_id, int64_t version, struct version *out,
                  struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_VERSION_GET, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, record_id);
    sqlite3_bind_int64(s, 2, version);
    return one_row(st, s, version_from_row, out, "read a version", err);
}

static void
versions_free(void *list, int count)
{
    store_versions_free(list, count);
}

int
store_history(struct store *st, int64_t record_id, struct version **out, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_HISTORY, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, record_id);
    return many_rows(st, s, sizeof(struct version), version_from_row, versions_free, (void **)out,
                     "read a history", err);
}

void
store_versions_free(struct version *versions, int count)
{
    for (int i = 0; i < count; i++)
        version_fini(&versions[i]);
    free(versions);
}

/* ---- links ---- */

static void
link_fill(sqlite3_stmt *s, void *out)
{
    struct link *l = out;

    l->id = sqlite3_column_int64(s, 0);
    l->collection = col_text(s, 1);
    l->record_id = sqlite3_column_int64(s, 2);
    l->ext_id = col_text(s, 3);
    l->base = col_text(s, 4);
}

static int
link_row(struct store *st, sqlite3_stmt *s, struct link *out, struct error *err)
{
    return one_row(st, s, link_fill, out, "read a link", err);
}

int
store_link_by_ext(struct store *st, const char *collection, const char *ext_id, struct link *out,
                  struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_LINK_BY_EXT, err);

    if (s == NULL)
        return -1;
    bind_text(s, 1, collection);
    bind_text(s, 2, ext_id);
    return link_row(st, s, out, err);
}

/* The row of S_LINK_BY_EXT_OR_GONE: a link, or the mark of a deleted copy. */
struct link_or_gone {
    struct link *link;
    int gone;
};

static void
link_or_gone_fill(sqlite3_stmt *s, void *out)
{
    struct link_or_gone *g = out;

    if (sqlite3_column_int(s, 5) != 0)
        g->gone = 1;
    else
        link_fill(s, g->link);
}

int
store_link_by_ext_or_gone(struct store *st, const char *collection, const char *ext_id,
                          struct link *out, int *gone, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_LINK_BY_EXT_OR_GONE, err);
    struct link_or_gone g = {.link = out};
    int rc;

    if (s == NULL)
        return -1;
    bind_text(s, 1, collection);
    bind_text(s, 2, ext_id);
    rc = one_row(st, s, link_or_gone_fill, &g, "read a link", err);
    if (rc != -1)
        *gone = g.gone;
    return rc == 1 && g.gone ? 0 : rc;
}

/* The row of S_LINK_AND_RECORD. */
struct link_and_record {
    struct link *link;
    struct record *record;
};

static void
link_and_record_fill(sqlite3_stmt *s, void *out)
{
    struct link_and_record *lr = out;

    link_fill(s, lr->link);
    record_columns(s, 5, lr->record);
}

int
store_link_and_record(struct store *st, int64_t link_id, int64_t record_id, struct link *link,
                      struct record *record, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_LINK_AND_RECORD, err);
    struct link_and_record lr = {.link = link, .record = record};

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, link_id);
    sqlite3_bind_int64(s, 2, record_id);
    return one_row(st, s, link_and_record_fill, &lr, "read a link and its record", err);
}

int
store_link_by_record(struct store *st, const char *collection, int64_t record_id, struct link *out,
                     struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_LINK_BY_RECORD, err);

    if (s == NULL)
        return -1;
    bind_text(s, 1, collection);
    sqlite3_bind_int64(s, 2, record_id);
    return link_row(st, s, out, err);
}

int
store_link_get(struct store *st, int64_t id, struct link *out, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_LINK_GET, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, id);
    return link_row(st, s, out, err);
}

int
store_link_add(struct store *st, const char *collection, int64_t record_id, const char *ext_id,
               const char *base, int64_t now_ms, int64_t *id, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_LINK_ADD, err);

    if (s == NULL)
        return -1;
    bind_text(s, 1, collection);
    sqlite3_bind_int64(s, 2, record_id);
    bind_text(s, 3, ext_id);
    bind_text(s, 4, base);
    sqlite3_bind_int64(s, 5, now_ms);
    if (exec_stmt(st, s, err, "add a link") == -1)
        return -1;
    *id = sqlite3_last_insert_rowid(st->db);
    return 0;
}

int
store_link_add_unless(struct store *st, const char *collection, int64_t record_id, int64_t now_ms,
                      int64_t *id, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_LINK_ADD_UNLESS, err);

    if (s == NULL)
        return -1;
    bind_text(s, 1, collection);
    sqlite3_bind_int64(s, 2, record_id);
    sqlite3_bind_int64(s, 3, now_ms);
    if (exec_stmt(st, s, err, "add a link") == -1)
        return -1;
    if (sqlite3_changes(st->db) == 0)
        return 0; /* links_record: the collection has one */
    *id = sqlite3_last_insert_rowid(st->db);
    return 1;
}

int
store_link_add_noted(struct store *st, const char *collection, int64_t record_id, int64_t now_ms,
                     const char *written, int64_t *id, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_LINK_ADD_NOTED, err);

    if (s == NULL)
        return -1;
    bind_text(s, 1, collection);
    sqlite3_bind_int64(s, 2, record_id);
    sqlite3_bind_int64(s, 3, now_ms);
    bind_text(s, 4, written);
    if (exec_stmt(st, s, err, "add a link") == -1)
        return -1;
    if (sqlite3_changes(st->db) == 0)
        return 0; /* links_record: the collection has one */
    *id = sqlite3_last_insert_rowid(st->db);
    return 1;
}

int
store_link_set_written(struct store *st, int64_t link_id, const char *ext_id, const char *base,
                       int64_t now_ms, char kind, const char *over, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_LINK_SET, err);
    char k[2] = {kind, '\0'};

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, link_id);
    bind_text(s, 2, ext_id);
    bind_text(s, 3, base);
    sqlite3_bind_int64(s, 4, now_ms);
    if (kind != 0)
        sqlite3_bind_text(s, 5, k, 1, SQLITE_TRANSIENT);
    bind_text(s, 6, over);
    return exec_stmt(st, s, err, "update a link");
}

int
store_link_set_noted(struct store *st, int64_t link_id, const char *ext_id, const char *base,
                     int64_t now_ms, char kind, struct error *err)
{
    return store_link_set_written(st, link_id, ext_id, base, now_ms, kind, NULL, err);
}

int
store_link_set(struct store *st, int64_t link_id, const char *ext_id, const char *base,
               int64_t now_ms, struct error *err)
{
    return store_link_set_noted(st, link_id, ext_id, base, now_ms, 0, err);
}

/* ---- jobs ---- */

static void
job_from_row(sqlite3_stmt *s, void *out)
{
    struct job *j = out;

    j->id = sqlite3_column_int64(s, 0);
    j->link_id = sqlite3_column_int64(s, 1);
    j->record_id = sqlite3_column_int64(s, 2);
    j->version = sqlite3_column_int64(s, 3);
    j->system = col_text(s, 4);
    j->collection = col_text(s, 5);
    j->op = (enum job_op)sqlite3_column_int(s, 6);
    j->state = (enum job_state)sqlite3_column_int(s, 7);
    j->attempts = sqlite3_column_int(s, 8);
    j->next_at_ms = sqlite3_column_int64(s, 9);
    j->created_at_ms = sqlite3_column_int64(s, 10);
    j->priority = sqlite3_column_int(s, 11);
    j->sent_version = sqlite3_column_int64(s, 12);
    j->expect = col_text(s, 13);
}

int
store_job_put(struct store *st, const struct job *j, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_JOB_COALESCE, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, j->link_id);
    sqlite3_bind_int64(s, 2, j->version);
    sqlite3_bind_int(s, 3, (int)j->op);
    sqlite3_bind_int(s, 4, j->priority);
    if (exec_stmt(st, s, err, "coalesce a job") == -1)
        return -1;
    if (sqlite3_changes(st->db) > 0)
        return 0;
    return store_job_add(st, j, err);
}

/* A new job's columns, ?1 to ?8 of S_JOB_ADD and S_JOB_ADD_CLAIMED. */
static void
bind_job(sqlite3_stmt *s, const struct job *j)
{
    sqlite3_bind_int64(s, 1, j->link_id);
    sqlite3_bind_int64(s, 2, j->record_id);
    sqlite3_bind_int64(s, 3, j->version);
    bind_text(s, 4, j->system);
    bind_text(s, 5, j->collection);
    sqlite3_bind_int(s, 6, (int)j->op);
    sqlite3_bind_int64(s, 7, j->next_at_ms);
    sqlite3_bind_int(s, 8, j->priority);
}

int
store_job_add(struct store *st, const struct job *j, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_JOB_ADD, err);
    if (s == NULL)
        return -1;
    bind_job(s, j);
    if (exec_stmt(st, s, err, "queue a job") == -1)
        return -1;
    return 1;
}

int
store_job_add_claimed(struct store *st, const struct job *j, int64_t *id, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_JOB_ADD_CLAIMED, err);

    if (s == NULL)
        return -1;
    bind_job(s, j);
    bind_id(s, 9, j->sent_version);
    if (exec_stmt(st, s, err, "queue a job") == -1)
        return -1;
    *id = sqlite3_last_insert_rowid(st->db);
    return 0;
}

static void
jobs_free(void *list, int count)
{
    store_jobs_free(list, count);
}

static int
job_rows(struct store *st, sqlite3_stmt *s, struct job **out, struct error *err)
{
    return many_rows(st, s, sizeof(struct job), job_from_row, jobs_free, (void **)out, "read jobs",
                     err);
}

int
store_job_due(struct store *st, const char *system, int64_t now_ms, int limit, struct job **out,
              struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_JOB_DUE, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, now_ms);
    sqlite3_bind_int(s, 2, limit);
    bind_text(s, 3, system);
    return job_rows(st, s, out, err);
}

int
store_job_orphans(struct store *st, const char *systems_json, int limit, struct job **out,
                  struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_JOB_ORPHANS, err);

    if (s == NULL)
        return -1;
    bind_text(s, 1, systems_json);
    sqlite3_bind_int(s, 2, limit);
    return job_rows(st, s, out, err);
}

int
store_job_list(struct store *st, enum job_state state, struct job **out, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_JOB_LIST, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int(s, 1, (int)state);
    return job_rows(st, s, out, err);
}

void
store_jobs_free(struct job *jobs, int count)
{
    for (int i = 0; i < count; i++)
        job_fini(&jobs[i]);
    free(jobs);
}

int
store_job_get(struct store *st, int64_t id, struct job *out, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_JOB_GET, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, id);
    return one_row(st, s, job_from_row, out, "read a job", err);
}

int
store_job_next_due(struct store *st, const char *const *systems, size_t n, int64_t *at_ms,
                   struct error *err)
{
    int found = 0;

    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *s = stmt(st, S_JOB_NEXT_DUE, err);
        int rc;

        if (s == NULL)
            return -1;
        bind_text(s, 1, systems[i]);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL &&
            (!found || sqlite3_column_int64(s, 0) < *at_ms)) {
            *at_ms = sqlite3_column_int64(s, 0);
            found = 1;
        }
        sqlite3_reset(s);
        if (rc != SQLITE_ROW)
            return db_error(st, err, "read the next due job");
    }
    return found;
}

int
store_job_set(struct store *st, int64_t job_id, enum job_state state, int attempts,
              int64_t next_at_ms, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_JOB_SET, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, job_id);
    sqlite3_bind_int(s, 2, (int)state);
    if (state == JOB_PENDING) {
        sqlite3_bind_int(s, 3, attempts);
        sqlite3_bind_int64(s, 4, next_at_ms);
    }
    return exec_stmt(st, s, err, "update a job");
}

int
store_job_done(struct store *st, int64_t job_id, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_JOB_DONE, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, job_id);
    return exec_stmt(st, s, err, "finish a job");
}

int
store_job_unknown_retried(struct store *st, int64_t job_id, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_JOB_UNKNOWN_RETRIED, err);
    int rc, retried = 0;

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, job_id);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        retried = sqlite3_column_int(s, 0);
    sqlite3_reset(s);
    if (rc != SQLITE_ROW)
        return db_error(st, err, "check a job's inbox entry");
    return retried;
}

int
store_job_link_blocked(struct store *st, int64_t link_id, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_JOB_BLOCKED, err);
    int rc, blocked = 0;

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, link_id);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        blocked = sqlite3_column_int(s, 0);
    sqlite3_reset(s);
    if (rc != SQLITE_ROW)
        return db_error(st, err, "check a link's parked jobs");
    return blocked;
}

static void
attempt_fill(sqlite3_stmt *s, void *out)
{
    struct attempt_row *a = out;

    a->n = sqlite3_column_int(s, 0);
    a->at_ms = sqlite3_column_int64(s, 1);
    a->outcome = col_text(s, 2);
    a->http_status = sqlite3_column_int(s, 3);
    a->request = col_text(s, 4);
    a->response = col_text(s, 5);
    a->elapsed_ms = sqlite3_column_int64(s, 6);
}

static void
attempts_free(void *list, int count)
{
    store_attempts_free(list, count);
}

int
store_attempts_list(struct store *st, int64_t job_id, struct attempt_row **out, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_ATTEMPTS_LIST, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, job_id);
    return many_rows(st, s, sizeof(struct attempt_row), attempt_fill, attempts_free, (void **)out,
                     "read attempts", err);
}

void
store_attempts_free(struct attempt_row *rows, int count)
{
    for (int i = 0; i < count; i++) {
        free(rows[i].outcome);
        free(rows[i].request);
        free(rows[i].response);
    }
    free(rows);
}

int
store_attempt_add(struct store *st, const struct attempt *a, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_ATTEMPT_ADD, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, a->job_id);
    sqlite3_bind_int(s, 2, a->n);
    sqlite3_bind_int64(s, 3, a->at_ms);
    bind_text(s, 4, a->outcome);
    bind_id(s, 5, a->http_status);
    bind_text(s, 6, a->request);
    bind_text(s, 7, a->response);
    sqlite3_bind_int64(s, 8, a->elapsed_ms);
    return exec_stmt(st, s, err, "record an attempt");
}

/* ---- inbox ---- */

int
store_inbox_add(struct store *st, const struct inbox_entry *e, int64_t *id, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_INBOX_ADD, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int(s, 1, (int)e->kind);
    bind_text(s, 2, e->system);
    bind_text(s, 3, e->collection);
    bind_id(s, 4, e->record_id);
    bind_id(s, 5, e->job_id);
    bind_id(s, 6, e->journal_seq);
    bind_text(s, 7, e->reason ? e->reason : "");
    bind_id(s, 8, e->http_status);
    bind_text(s, 9, e->response);
    sqlite3_bind_int(s, 10, e->attempts);
    sqlite3_bind_int64(s, 11, e->created_at_ms);
    if (exec_stmt(st, s, err, "add to the inbox") == -1)
        return -1;
    *id = sqlite3_last_insert_rowid(st->db);
    return 0;
}

static void
inbox_from_row(sqlite3_stmt *s, void *out)
{
    struct inbox_entry *e = out;

    e->id = sqlite3_column_int64(s, 0);
    e->kind = (enum inbox_kind)sqlite3_column_int(s, 1);
    e->state = col_text(s, 2);
    e->system = col_text(s, 3);
    e->collection = col_text(s, 4);
    e->record_id = sqlite3_column_int64(s, 5);
    e->job_id = sqlite3_column_int64(s, 6);
    e->journal_seq = sqlite3_column_int64(s, 7);
    e->reason = col_text(s, 8);
    e->http_status = sqlite3_column_int(s, 9);
    e->response = col_text(s, 10);
    e->attempts = sqlite3_column_int(s, 11);
    e->created_at_ms = sqlite3_column_int64(s, 12);
    e->updated_at_ms = sqlite3_column_int64(s, 13);
}

static void
inbox_free_list(void *list, int count)
{
    store_inbox_free(list, count);
}

int
store_inbox_list(struct store *st, const char *state, struct inbox_entry **out, struct error *err)
{
    sqlite3_stmt *s = stmt(st, state ? S_INBOX_LIST : S_INBOX_LIST_ALL, err);

    if (s == NULL)
        return -1;
    if (state != NULL)
        bind_text(s, 1, state);
    return many_rows(st, s, sizeof(struct inbox_entry), inbox_from_row, inbox_free_list,
                     (void **)out, "read the inbox", err);
}

void
store_inbox_free(struct inbox_entry *entries, int count)
{
    for (int i = 0; i < count; i++)
        inbox_entry_fini(&entries[i]);
    free(entries);
}

int
store_inbox_get(struct store *st, int64_t id, struct inbox_entry *out, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_INBOX_GET, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, id);
    return one_row(st, s, inbox_from_row, out, "read an inbox entry", err);
}

static int
inbox_retry_in_tx(struct store *st, int64_t id, int64_t now_ms, struct error *err)
{
    struct inbox_entry e = {0};
    sqlite3_stmt *s;
    int found = store_inbox_get(st, id, &e, err);

    if (found <= 0)
        return found;
    found = strcmp(e.state, "open") == 0;
    if (found && e.job_id != 0) {
        s = stmt(st, S_JOB_RETRY, err);
        if (s == NULL)
            goto fail;
        sqlite3_bind_int64(s, 1, e.job_id);
        sqlite3_bind_int64(s, 2, now_ms);
        if (exec_stmt(st, s, err, "requeue a job") == -1)
            goto fail;
    } else if (found && e.journal_seq != 0) {
        s = stmt(st, S_JOURNAL_RETRY, err);
        if (s == NULL)
            goto fail;
        sqlite3_bind_int64(s, 1, e.journal_seq);
        if (exec_stmt(st, s, err, "requeue a change") == -1)
            goto fail;
    } else if (found && store_run_inbox_retry(st, id, now_ms, err) == -1) {
        goto fail; /* an automation's action: its run is due again */
    }
    if (found) {
        s = stmt(st, S_INBOX_STATE, err);
        if (s == NULL)
            goto fail;
        sqlite3_bind_int64(s, 1, id);
        bind_text(s, 2, "retried");
        sqlite3_bind_int64(s, 3, now_ms);
        if (exec_stmt(st, s, err, "mark an inbox entry") == -1)
            goto fail;
    }
    inbox_entry_fini(&e);
    return found;
fail:
    inbox_entry_fini(&e);
    return -1;
}

int
store_inbox_retry(struct store *st, int64_t id, int64_t now_ms, struct error *err)
{
    int own = !st->in_tx, rc;

    if (own && store_begin(st, err) == -1)
        return -1;
    rc = inbox_retry_in_tx(st, id, now_ms, err);
    if (own) {
        if (rc == -1)
            store_rollback(st);
        else if (store_commit(st, err) == -1)
            return -1;
    }
    return rc;
}

/* ---- per-system state ---- */

int
store_system_note(struct store *st, const char *system, int64_t at_ms, const char *error_text,
                  struct error *err)
{
    sqlite3_stmt *s = stmt(st, error_text ? S_SYSTEM_FAIL : S_SYSTEM_OK, err);

    if (s == NULL)
        return -1;
    bind_text(s, 1, system);
    sqlite3_bind_int64(s, 2, at_ms);
    if (error_text != NULL)
        bind_text(s, 3, error_text);
    return exec_stmt(st, s, err, "note a system's state");
}

int
store_system_stats(struct store *st, const char *system, struct store_system_stats *out,
                   struct error *err)
{
    struct store_system_stats r = {0};
    sqlite3_stmt *s = stmt(st, S_STATS_JOBS, err);

    if (s == NULL)
        return -1;
    bind_text(s, 1, system);
    if (sqlite3_step(s) == SQLITE_ROW) {
        r.backlog = sqlite3_column_int64(s, 0);
        r.in_flight = sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    s = stmt(st, S_STATS_INBOX, err);
    if (s == NULL)
        return -1;
    bind_text(s, 1, system);
    if (sqlite3_step(s) == SQLITE_ROW)
        r.failed = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    s = stmt(st, S_STATS_SYSTEM, err);
    if (s == NULL)
        return -1;
    bind_text(s, 1, system);
    if (sqlite3_step(s) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(s, 2);

        const unsigned char *by = sqlite3_column_text(s, 4);
        const unsigned char *br = sqlite3_column_text(s, 5);
        const unsigned char *why = sqlite3_column_text(s, 6);

        r.last_success_at_ms = sqlite3_column_int64(s, 0);
        r.last_error_at_ms = sqlite3_column_int64(s, 1);
        if (t != NULL)
            (void)snprintf(r.last_error, sizeof(r.last_error), "%s", (const char *)t);
        r.is_paused = sqlite3_column_int(s, 3);
        if (by != NULL)
            (void)snprintf(r.paused_by, sizeof(r.paused_by), "%s", (const char *)by);
        if (br != NULL)
            (void)snprintf(r.breaker, sizeof(r.breaker), "%s", (const char *)br);
        if (why != NULL)
            (void)snprintf(r.breaker_reason, sizeof(r.breaker_reason), "%s", (const char *)why);
        r.breaker_at_ms = sqlite3_column_int64(s, 7);
    }
    sqlite3_reset(s);
    *out = r;
    return 0;
}

/* ---- the Delivery issue: copies in the journal, replays, operator actions ---- */

int
store_journal_note_copy(struct store *st, int64_t seq, const char *collection, const char *ext_id,
                        struct error *err)
{
    /* Written with the change's state (store_journal_set_state()): one
     * update of the row instead of two. */
    (void)err;
    drop_copy_note(st);
    st->copy_seq = seq;
    st->copy_collection = collection ? xstrdup(collection) : NULL;
    st->copy_ext_id = ext_id ? xstrdup(ext_id) : NULL;
    return 0;
}

static int
journal_replay_in_tx(struct store *st, int64_t since_ms, const char *system, int64_t now_ms,
                     struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_JOURNAL_REPLAY, err);
    int64_t *seqs = NULL;
    size_t n = 0, cap = 0;
    int rc;

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, since_ms);
    bind_text(s, 2, system);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            seqs = xreallocarray(seqs, cap, sizeof(*seqs));
        }
        seqs[n++] = sqlite3_column_int64(s, 0);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        free(seqs);
        return db_error(st, err, "mark changes for replay");
    }
    for (size_t i = 0; i < n; i++) {
        s = stmt(st, S_INBOX_CLOSE_CHANGE, err);
        if (s == NULL) {
            free(seqs);
            return -1;
        }
        sqlite3_bind_int64(s, 1, seqs[i]);
        sqlite3_bind_int64(s, 2, now_ms);
        if (exec_stmt(st, s, err, "close a replayed change's entry") == -1) {
            free(seqs);
            return -1;
        }
    }
    free(seqs);
    return n > INT32_MAX ? INT32_MAX : (int)n;
}

int
store_journal_replay(struct store *st, int64_t since_ms, const char *system, int64_t now_ms,
                     struct error *err)
{
    int own = !st->in_tx, rc;

    if (own && store_begin(st, err) == -1)
        return -1;
    rc = journal_replay_in_tx(st, since_ms, system, now_ms, err);
    if (!own)
        return rc;
    if (rc == -1) {
        store_rollback(st);
        return -1;
    }
    if (store_commit(st, err) == -1)
        return -1;
    return rc;
}

int
store_job_claim(struct store *st, int64_t job_id, int note_sent, int64_t sent_version,
                struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_JOB_CLAIM, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, job_id);
    if (sent_version != 0)
        sqlite3_bind_int64(s, 2, sent_version);
    sqlite3_bind_int(s, 3, note_sent != 0);
    return exec_stmt(st, s, err, "claim a job");
}

int
store_job_set_sent(struct store *st, int64_t job_id, int64_t version, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_JOB_SENT, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, job_id);
    if (version == 0)
        sqlite3_bind_null(s, 2);
    else
        sqlite3_bind_int64(s, 2, version);
    return exec_stmt(st, s, err, "note a job's sent version");
}

int
store_job_set_expect(struct store *st, int64_t job_id, const char *expect, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_JOB_EXPECT, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, job_id);
    bind_text(s, 2, expect);
    return exec_stmt(st, s, err, "note a job's expected number");
}

static int
inbox_resolve_in_tx(struct store *st, int64_t id, const char *state, const char *by,
                    const char *note, int64_t now_ms, struct error *err)
{
    struct inbox_entry e = {0};
    sqlite3_stmt *s;
    int found = store_inbox_get(st, id, &e, err);

    if (found <= 0)
        return found;
    found = strcmp(e.state, "open") == 0;
    if (found && e.job_id != 0) {
        s = stmt(st, S_JOB_DROP_PARKED, err);
        if (s == NULL ||
            (sqlite3_bind_int64(s, 1, e.job_id), exec_stmt(st, s, err, "drop a parked job")) == -1)
            found = -1;
    } else if (found == 1 && e.journal_seq == 0 &&
               store_run_inbox_skip(st, id, note, now_ms, err) == -1) {
        found = -1; /* an automation's action: its run ends */
    }
    if (found == 1) {
        s = stmt(st, S_INBOX_RESOLVE, err);
        if (s == NULL)
            found = -1;
        else {
            sqlite3_bind_int64(s, 1, id);
            bind_text(s, 2, state);
            bind_text(s, 3, by);
            bind_text(s, 4, note);
            sqlite3_bind_int64(s, 5, now_ms);
            if (exec_stmt(st, s, err, "resolve an inbox entry") == -1)
                found = -1;
        }
    }
    inbox_entry_fini(&e);
    return found;
}

int
store_inbox_resolve(struct store *st, int64_t id, const char *state, const char *by,
                    const char *note, int64_t now_ms, struct error *err)
{
    int own = !st->in_tx, rc;

    if (own && store_begin(st, err) == -1)
        return -1;
    rc = inbox_resolve_in_tx(st, id, state, by, note, now_ms, err);
    if (own) {
        if (rc == -1)
            store_rollback(st);
        else if (store_commit(st, err) == -1)
            return -1;
    }
    return rc;
}

int
store_system_pause(struct store *st, const char *system, int paused, const char *by,
                   struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_SYSTEM_PAUSE, err);

    if (s == NULL)
        return -1;
    bind_text(s, 1, system);
    sqlite3_bind_int(s, 2, paused);
    bind_text(s, 3, paused ? by : NULL);
    return exec_stmt(st, s, err, "pause or resume a system");
}

int
store_systems_paused(struct store *st, char ***out, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_SYSTEM_PAUSED, err);
    char **list = NULL;
    size_t cap = 0;
    int n = 0, rc;

    if (s == NULL)
        return -1;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if ((size_t)n + 1 >= cap) {
            cap = cap ? cap * 2 : 8;
            list = xreallocarray(list, cap, sizeof(*list));
        }
        list[n++] = col_text(s, 0);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        for (int i = 0; i < n; i++)
            free(list[i]);
        free(list);
        return db_error(st, err, "read paused systems");
    }
    *out = list;
    return n;
}

int
store_system_breaker(struct store *st, const char *system, const char *state, const char *reason,
                     int64_t at_ms, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_SYSTEM_BREAKER, err);

    if (s == NULL)
        return -1;
    bind_text(s, 1, system);
    bind_text(s, 2, state);
    bind_text(s, 3, reason);
    sqlite3_bind_int64(s, 4, at_ms);
    return exec_stmt(st, s, err, "note a breaker's state");
}

int
store_job_sibling(struct store *st, int64_t link_id, int64_t job_id, struct job *out,
                  struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_JOB_SIBLING, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, link_id);
    sqlite3_bind_int64(s, 2, job_id);
    return one_row(st, s, job_from_row, out, "read a link's jobs", err);
}

int
store_job_absorb(struct store *st, int64_t keep_id, int64_t drop_id, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_JOB_ABSORB, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, keep_id);
    sqlite3_bind_int64(s, 2, drop_id);
    if (exec_stmt(st, s, err, "fold a job into another") == -1)
        return -1;
    return store_job_done(st, drop_id, err);
}

/* ---- for the store's other files (store_int.h) ---- */

sqlite3_stmt *
store_int_stmt(struct store *st, int slot, const char *sql, struct error *err)
{
    if (st->extra[slot] == NULL && sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                                      &st->extra[slot], NULL) != SQLITE_OK) {
        db_error(st, err, "prepare");
        return NULL;
    }
    sqlite3_reset(st->extra[slot]);
    sqlite3_clear_bindings(st->extra[slot]);
    return st->extra[slot];
}

int
store_int_exec(struct store *st, sqlite3_stmt *s, const char *what, struct error *err)
{
    return exec_stmt(st, s, err, what);
}

int
store_int_exec_temp(struct store *st, sqlite3_stmt *s, const char *what, struct error *err)
{
    int rc = sqlite3_step(s);

    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : db_error(st, err, what);
}

int
store_int_one_row(struct store *st, sqlite3_stmt *s, store_int_fill_fn *fill, void *out,
                  const char *what, struct error *err)
{
    return one_row(st, s, fill, out, what, err);
}

int
store_int_many_rows(struct store *st, sqlite3_stmt *s, size_t elem_size, store_int_fill_fn *fill,
                    store_int_free_fn *free_list, void **out, const char *what, struct error *err)
{
    return many_rows(st, s, elem_size, fill, free_list, out, what, err);
}

char *
store_int_col_text(sqlite3_stmt *s, int i)
{
    return col_text(s, i);
}

void
store_int_bind_text(sqlite3_stmt *s, int i, const char *text)
{
    bind_text(s, i, text);
}

int
store_int_in_tx(const struct store *st)
{
    return st->in_tx;
}

sqlite3 *
store_int_db(struct store *st)
{
    return st->db;
}

int
store_int_changes(struct store *st)
{
    return sqlite3_changes(st->db);
}

int
store_int_exec_sql(struct store *st, const char *sql, struct error *err)
{
    return exec_sql(st, sql, err);
}
