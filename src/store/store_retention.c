/* SPDX-License-Identifier: MIT */

/*
 * Retention and erasure: old journal rows, versions, attempts, settled
 * inbox entries and finished automation runs are pruned in small batches (the checkpointer's
 * handle, never blocking the writer for long), and `concord forget` erases one person's record
 * everywhere in the store, overwriting what it deletes.
 */

#include "store/store.h"

#include <stdlib.h>
#include <string.h>

#include "core/compiler.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include "model/model.h"
#include "store/store_int.h"

/* Each statement deletes at most ?2 rows older than ?1 that nothing still
 * needs: unprocessed journal rows, and rows an open inbox entry or a job
 * names, stay. */
static const char *const prune_sql[] = {
    ("DELETE FROM journal WHERE seq IN (SELECT seq FROM journal WHERE received_at < ?1 AND "
     "state <> 0 AND seq NOT IN (SELECT journal_seq FROM inbox WHERE state = 'open' AND "
     "journal_seq IS NOT NULL) LIMIT ?2)"),
    ("DELETE FROM versions WHERE (record_id, version) IN (SELECT v.record_id, v.version FROM "
     "versions v JOIN records r ON r.id = v.record_id WHERE v.at < ?1 AND v.version < r.version "
     "AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.record_id = v.record_id AND j.sent_version = "
     "v.version) LIMIT ?2)"),
    ("DELETE FROM attempts WHERE (job_id, n) IN (SELECT a.job_id, a.n FROM attempts a WHERE "
     "a.at < ?1 AND a.job_id NOT IN (SELECT id FROM jobs) AND a.job_id NOT IN (SELECT job_id FROM "
     "inbox WHERE state = 'open' AND job_id IS NOT NULL) LIMIT ?2)"),
    ("DELETE FROM inbox WHERE id IN (SELECT id FROM inbox WHERE state <> 'open' AND "
     "updated_at < ?1 LIMIT ?2)"),
};

/* A floor the table has passed goes (STORE_NEXT_ID): its top row is above
 * it, so SQLite's own next id is too, and the INSERTs read meta alone again.
 * Deleting that top row sets a floor anew. */
_Static_assert(152 < STORE_EXTRA_SLOTS, "store_int.h: raise STORE_EXTRA_SLOTS");
static const char *const floor_sql[] = {
    ("DELETE FROM meta WHERE key = 'links_floor' AND CAST(value AS INTEGER) < "
     "(SELECT max(id) FROM links)"),
    ("DELETE FROM meta WHERE key = 'runs_floor' AND CAST(value AS INTEGER) < "
     "(SELECT max(id) FROM automation_runs)"),
};

static int
drop_passed_floors(struct store *st, struct error *err)
{
    for (size_t i = 0; i < ARRAY_COUNT(floor_sql); i++) {
        /* Slots 151..152: this file's third range. */
        sqlite3_stmt *s = store_int_stmt(st, 151 + (int)i, floor_sql[i], err);

        if (s == NULL || store_int_exec(st, s, "drop a passed id floor", err) == -1)
            return -1;
    }
    return 0;
}

int
store_retention_prune(struct store *st, const int64_t before_ms[4], int64_t batch,
                      struct error *err)
{
    int total = 0;

    if (drop_passed_floors(st, err) == -1)
        return -1;

    for (size_t i = 0; i < 4; i++) {
        sqlite3_stmt *s;

        if (before_ms[i] <= 0)
            continue;
        /* Slots 80..83: this file's (store_audit.c has 64 and up). */
        s = store_int_stmt(st, 80 + (int)i, prune_sql[i], err);
        if (s == NULL)
            return -1;
        sqlite3_bind_int64(s, 1, before_ms[i]);
        sqlite3_bind_int64(s, 2, batch);
        if (store_int_exec(st, s, "prune old rows", err) == -1)
            return -1;
        total += store_int_changes(st);
    }
    return total;
}

/* Finished automation runs (done, cancelled, skipped: a failed or cut one
 * waits in the inbox, and a running or waiting one is not finished) last
 * changed before ?1, at most ?2 of them, oldest first: their actions' rows,
 * then the runs. One transaction holds both, so both pick the same runs. */
#define FINISHED_RUNS                                                                     \
    "SELECT id FROM automation_runs WHERE state IN ('done', 'cancelled', 'skipped') AND " \
    "updated_at < ?1 ORDER BY updated_at, id LIMIT ?2"

static const char *const prune_runs_sql[] = {
    "DELETE FROM automation_steps WHERE run_id IN (" FINISHED_RUNS ")",
    "DELETE FROM automation_runs WHERE id IN (" FINISHED_RUNS ")",
};

int
store_retention_prune_runs(struct store *st, int64_t before_ms, int64_t batch, struct error *err)
{
    int runs = 0;

    for (size_t i = 0; before_ms > 0 && i < ARRAY_COUNT(prune_runs_sql); i++) {
        /* Slots 141..142: this file's second range. */
        sqlite3_stmt *s = store_int_stmt(st, 141 + (int)i, prune_runs_sql[i], err);

        if (s == NULL)
            return -1;
        sqlite3_bind_int64(s, 1, before_ms);
        sqlite3_bind_int64(s, 2, batch);
        if (store_int_exec(st, s, "prune finished automation runs", err) == -1)
            return -1;
        runs = store_int_changes(st);
    }
    return runs;
}

/* ---- forget ---- */

/* The statements of an erasure, in order; ?1 is the record. The journal
 * goes with the rows that name the record, its copies, or its natural
 * keys' values (an e-mail in a webhook body the record was made from).
 * A value counts only as a whole JSON string ("ann@x.com", quotes and
 * all), so another person's "joann@x.com" keeps its rows. */
static const char *const forget_sql[] = {
    "CREATE TEMP TABLE IF NOT EXISTS forget_seq (seq INTEGER PRIMARY KEY)",
    "DELETE FROM temp.forget_seq",
    ("INSERT OR IGNORE INTO temp.forget_seq SELECT journal_seq FROM versions WHERE record_id = ?1 "
     "AND journal_seq IS NOT NULL"),
    ("INSERT OR IGNORE INTO temp.forget_seq SELECT j.seq FROM journal j JOIN links l ON "
     "j.collection = l.collection AND (j.ext_id = l.ext_id OR j.ext_id = l.gone_ext_id) WHERE "
     "l.record_id = ?1"),
    ("INSERT OR IGNORE INTO temp.forget_seq SELECT seq FROM journal WHERE system = '@operator' AND "
     "json_valid(body) AND json_extract(body, '$.record') = ?1"),
    ("INSERT OR IGNORE INTO temp.forget_seq SELECT j.seq FROM journal j, record_keys k WHERE "
     "k.record_id = ?1 AND length(k.value) >= 3 AND instr(lower(CAST(j.body AS TEXT)), "
     "'\"' || lower(k.value) || '\"') > 0"),
    /* The changes automation runs of the record journaled (they copy its fields). */
    ("INSERT OR IGNORE INTO temp.forget_seq SELECT s.journal_seq FROM automation_steps s JOIN "
     "automation_runs r ON r.id = s.run_id WHERE r.record_id = ?1 AND s.journal_seq IS NOT NULL"),
    ("DELETE FROM attempts WHERE job_id IN (SELECT id FROM jobs WHERE record_id = ?1) OR job_id "
     "IN (SELECT job_id FROM inbox WHERE record_id = ?1 OR journal_seq IN (SELECT seq FROM "
     "temp.forget_seq))"),
    /* Attempts of finished jobs (gone) are found by what they hold: the
     * copy's id in the request, a natural key's value in the answer. */
    ("DELETE FROM attempts WHERE EXISTS (SELECT 1 FROM links l WHERE l.record_id = ?1 AND "
     "(l.ext_id IS NOT NULL AND (request LIKE '%/' || l.ext_id OR request LIKE '%/' || l.ext_id "
     "|| '?%') OR l.gone_ext_id IS NOT NULL AND request LIKE '%/' || l.gone_ext_id)) OR EXISTS "
     "(SELECT 1 FROM record_keys k WHERE k.record_id = ?1 AND length(k.value) >= 3 AND "
     "instr(lower(coalesce(response, '')), '\"' || lower(k.value) || '\"') > 0)"),
    "DELETE FROM inbox WHERE record_id = ?1 OR journal_seq IN (SELECT seq FROM temp.forget_seq)",
    "DELETE FROM journal WHERE seq IN (SELECT seq FROM temp.forget_seq)",
    "DELETE FROM jobs WHERE record_id = ?1",
    "DELETE FROM versions WHERE record_id = ?1",
    "DELETE FROM record_keys WHERE record_id = ?1",
    "DELETE FROM links WHERE record_id = ?1",
    ("DELETE FROM automation_steps WHERE run_id IN (SELECT id FROM automation_runs WHERE "
     "record_id = ?1)"),
    "DELETE FROM automation_runs WHERE record_id = ?1",
    "DELETE FROM records WHERE id = ?1",
};

int
store_forget(struct store *st, int64_t record_id, int64_t *journal_rows, struct error *err)
{
    int64_t rows = 0;

    /* What is deleted is overwritten with zeros, in the database and in
     * the WAL's copies, so no trace stays in free pages. */
    if (store_int_exec_sql(st, "PRAGMA secure_delete = ON", err) == -1 ||
        store_begin(st, err) == -1)
        return -1;
    for (size_t i = 0; i < ARRAY_COUNT(forget_sql); i++) {
        sqlite3_stmt *s = NULL;
        int rc;

        if (sqlite3_prepare_v2(store_int_db(st), forget_sql[i], -1, &s, NULL) != SQLITE_OK) {
            (void)error_set(err, ERROR_STORE, "forget: %s", sqlite3_errmsg(store_int_db(st)));
            sqlite3_finalize(s);
            store_rollback(st);
            return -1;
        }
        if (sqlite3_bind_parameter_count(s) >= 1)
            sqlite3_bind_int64(s, 1, record_id);
        rc = sqlite3_step(s);
        if (strncmp(forget_sql[i], "DELETE FROM journal", 19) == 0)
            rows = sqlite3_changes(store_int_db(st));
        sqlite3_finalize(s);
        if (rc != SQLITE_DONE) {
            (void)error_set(err, ERROR_STORE, "forget: %s", sqlite3_errstr(rc));
            store_rollback(st);
            return -1;
        }
    }
    if (store_commit(st, err) == -1)
        return -1;
    if (journal_rows != NULL)
        *journal_rows = rows;
    /* Copy the WAL into the database and empty it: the pages it held
     * before the erasure are gone with it. Readers (the daemon's) may hold
     * it a moment: try for up to ten seconds. */
    for (int tries = 0; tries < 100; tries++) {
        sqlite3_stmt *s = NULL;
        int busy = 1;

        if (sqlite3_prepare_v2(store_int_db(st), "PRAGMA wal_checkpoint(TRUNCATE)", -1, &s, NULL) ==
                SQLITE_OK &&
            sqlite3_step(s) == SQLITE_ROW)
            busy = sqlite3_column_int(s, 0);
        sqlite3_finalize(s);
        if (!busy)
            return 0;
        sqlite3_sleep(100);
    }
    return error_set(err, ERROR_STORE,
                     "the record is erased, but the WAL could not be emptied: readers kept it; "
                     "run concord forget again when the daemon is idle");
}

int
store_record_jobs(struct store *st, int64_t record_id, int64_t *n, struct error *err)
{
    sqlite3_stmt *s = store_int_stmt(st, 84, "SELECT count(*) FROM jobs WHERE record_id = ?1", err);
    int rc;

    *n = 0;
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, record_id);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *n = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? 0 : error_set(err, ERROR_STORE, "count a record's jobs");
}

int
store_link_gone_id(struct store *st, int64_t link_id, char **out, struct error *err)
{
    sqlite3_stmt *s = store_int_stmt(
        st, 86, "SELECT gone_ext_id FROM links WHERE id = ?1 AND ext_id IS NULL", err);
    int rc;

    *out = NULL;
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, link_id);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *out = store_int_col_text(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : error_set(err, ERROR_STORE, "read a link");
}
