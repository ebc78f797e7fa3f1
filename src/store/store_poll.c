/* SPDX-License-Identifier: MIT */

/*
 * The store's part of scheduled reads (migration 5): each polled
 * collection's cursor, schedule and last outcome, and the set of copies a
 * reconcile has seen (a temporary table of the reading connection).
 */

#include "store/store.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/xmalloc.h"
#include "store/store_int.h"

enum {
    P_GET = 0,
    P_ENSURE,
    P_CURSOR,
    P_FINISH,
    P_FAIL,
    P_REQUEST,
    P_STARTED,
    P_PROGRESS,
    P_SEEN_ADD,
    P_MISSING,
    P_RECONCILE_REQUEST,
    P_LEASE,
    P_RELEASE,
    P_HOLDER,
    P_LINKED,
    P_COUNT,
};

static const char *const sql[P_COUNT] = {
    [P_GET] = "SELECT cursor, next_at, last_ok_at, last_error, last_error_at, rows_read, "
              "progress, report, reconcile_at FROM polls WHERE collection = ?1",
    [P_ENSURE] = "INSERT OR IGNORE INTO polls (collection, next_at) VALUES (?1, ?2)",
    [P_CURSOR] = "UPDATE polls SET cursor = ?2 WHERE collection = ?1",
    /* next_at -1: asked for while a read ran (a hint); the read's end keeps
     * it due, so the hint is not lost under the read's schedule. */
    [P_FINISH] = "UPDATE polls SET last_ok_at = ?2, rows_read = rows_read + ?3, "
                 "next_at = CASE WHEN next_at = -1 THEN 0 ELSE ?4 END, "
                 "report = ?5, progress = NULL, reconcile_at = coalesce(?6, reconcile_at) "
                 "WHERE collection = ?1",
    [P_FAIL] = "UPDATE polls SET last_error = ?2, last_error_at = ?3, "
               "next_at = CASE WHEN next_at = -1 THEN 0 ELSE ?4 END, progress = "
               "NULL, report = ?5 WHERE collection = ?1",
    [P_REQUEST] = "UPDATE polls SET next_at = -1 WHERE collection = ?1",
    [P_STARTED] = "UPDATE polls SET next_at = 0 WHERE collection = ?1 AND next_at = -1",
    [P_PROGRESS] = "UPDATE polls SET progress = ?2 WHERE collection = ?1",
    [P_SEEN_ADD] = "INSERT OR IGNORE INTO temp.poll_seen (ext_id) VALUES (?1)",
    [P_MISSING] = "SELECT ext_id FROM links WHERE collection = ?1 AND ext_id IS NOT NULL AND "
                  "updated_at < ?2 AND ext_id NOT IN (SELECT ext_id FROM temp.poll_seen) "
                  "ORDER BY ext_id",
    [P_RECONCILE_REQUEST] =
        "UPDATE polls SET reconcile_at = -1, next_at = -1 WHERE collection = ?1",
    [P_LEASE] = "UPDATE polls SET lease_until = ?3, lease_holder = ?4 WHERE collection = ?1 AND "
                "(lease_until IS NULL OR lease_until < ?2 OR lease_holder = ?4 OR "
                "lease_holder = ?5)",
    [P_RELEASE] = "UPDATE polls SET lease_until = NULL, lease_holder = NULL WHERE collection = ?1 "
                  "AND lease_holder = ?2",
    [P_HOLDER] = "SELECT lease_holder FROM polls WHERE collection = ?1 AND lease_until >= ?2",
    [P_LINKED] = "SELECT ext_id FROM links WHERE collection = ?1 AND ext_id IS NOT NULL AND "
                 "ext_id > ?2 ORDER BY ext_id LIMIT ?3",
};

/* The store_int_stmt() slots of this file start here (store_twoway.c has
 * the ones below). */
#define SLOT0 40
_Static_assert(SLOT0 + P_COUNT <= STORE_EXTRA_SLOTS, "store_poll.c needs more statement slots");

static sqlite3_stmt *
pstmt(struct store *st, int id, struct error *err)
{
    return store_int_stmt(st, SLOT0 + id, sql[id], err);
}

static void
poll_from_row(sqlite3_stmt *s, void *out)
{
    struct store_poll *p = out;

    p->cursor = store_int_col_text(s, 0);
    p->next_at_ms = sqlite3_column_int64(s, 1);
    p->last_ok_at_ms = sqlite3_column_int64(s, 2);
    p->last_error = store_int_col_text(s, 3);
    p->last_error_at_ms = sqlite3_column_int64(s, 4);
    p->rows_read = sqlite3_column_int64(s, 5);
    p->progress = store_int_col_text(s, 6);
    p->report = store_int_col_text(s, 7);
    p->reconcile_at_ms = sqlite3_column_int64(s, 8);
}

void
store_poll_fini(struct store_poll *p)
{
    free(p->cursor);
    free(p->last_error);
    free(p->progress);
    free(p->report);
    memset(p, 0, sizeof(*p));
}

int
store_poll_get(struct store *st, const char *collection, int64_t first_at_ms,
               struct store_poll *out, struct error *err)
{
    sqlite3_stmt *s;

    memset(out, 0, sizeof(*out));
    if (first_at_ms >= 0) {
        if ((s = pstmt(st, P_ENSURE, err)) == NULL)
            return -1;
        store_int_bind_text(s, 1, collection);
        sqlite3_bind_int64(s, 2, first_at_ms);
        if (store_int_exec(st, s, "note a polled collection", err) == -1)
            return -1;
    }
    if ((s = pstmt(st, P_GET, err)) == NULL)
        return -1;
    store_int_bind_text(s, 1, collection);
    return store_int_one_row(st, s, poll_from_row, out, "read a poll's state", err) == -1 ? -1 : 0;
}

static int
exec_text(struct store *st, int id, const char *collection, const char *text, const char *what,
          struct error *err)
{
    sqlite3_stmt *s = pstmt(st, id, err);

    if (s == NULL)
        return -1;
    store_int_bind_text(s, 1, collection);
    if (text != NULL || id == P_CURSOR || id == P_PROGRESS)
        store_int_bind_text(s, 2, text);
    return store_int_exec(st, s, what, err);
}

int
store_poll_set_cursor(struct store *st, const char *collection, const char *cursor,
                      struct error *err)
{
    return exec_text(st, P_CURSOR, collection, cursor, "write a poll's cursor", err);
}

int
store_poll_progress(struct store *st, const char *collection, const char *progress,
                    struct error *err)
{
    return exec_text(st, P_PROGRESS, collection, progress, "write a poll's progress", err);
}

int
store_poll_request(struct store *st, const char *collection, int reconcile, struct error *err)
{
    return exec_text(st, reconcile ? P_RECONCILE_REQUEST : P_REQUEST, collection, NULL,
                     "ask for a poll", err);
}

int
store_poll_started(struct store *st, const char *collection, struct error *err)
{
    return exec_text(st, P_STARTED, collection, NULL, "note a poll's start", err);
}

int
store_poll_finish(struct store *st, const char *collection, int64_t now_ms, int64_t rows,
                  int64_t next_at_ms, const char *report, int64_t reconcile_at_ms,
                  struct error *err)
{
    sqlite3_stmt *s = pstmt(st, P_FINISH, err);

    if (s == NULL)
        return -1;
    store_int_bind_text(s, 1, collection);
    sqlite3_bind_int64(s, 2, now_ms);
    sqlite3_bind_int64(s, 3, rows);
    sqlite3_bind_int64(s, 4, next_at_ms);
    store_int_bind_text(s, 5, report);
    if (reconcile_at_ms > 0)
        sqlite3_bind_int64(s, 6, reconcile_at_ms);
    return store_int_exec(st, s, "note a poll's end", err);
}

int
store_poll_fail(struct store *st, const char *collection, const char *error, int64_t now_ms,
                int64_t next_at_ms, const char *report, struct error *err)
{
    sqlite3_stmt *s = pstmt(st, P_FAIL, err);

    if (s == NULL)
        return -1;
    store_int_bind_text(s, 1, collection);
    store_int_bind_text(s, 2, error);
    sqlite3_bind_int64(s, 3, now_ms);
    sqlite3_bind_int64(s, 4, next_at_ms);
    store_int_bind_text(s, 5, report);
    return store_int_exec(st, s, "note a poll's failure", err);
}

int
store_seen_reset(struct store *st, struct error *err)
{
    return store_int_exec_sql(st,
                              "CREATE TEMP TABLE IF NOT EXISTS poll_seen (ext_id TEXT PRIMARY KEY) "
                              "WITHOUT ROWID; DELETE FROM temp.poll_seen;",
                              err);
}

int
store_seen_add(struct store *st, const char *ext_id, struct error *err)
{
    sqlite3_stmt *s = pstmt(st, P_SEEN_ADD, err);

    if (s == NULL)
        return -1;
    store_int_bind_text(s, 1, ext_id);
    return store_int_exec_temp(st, s, "note a copy seen", err);
}

static void
text_from_row(sqlite3_stmt *s, void *out)
{
    *(char **)out = store_int_col_text(s, 0);
}

static void
texts_free(void *list, int count)
{
    char **l = list;

    for (int i = 0; l != NULL && i < count; i++)
        free(l[i]);
    free(l);
}

int
store_seen_missing(struct store *st, const char *collection, int64_t before_ms, char ***out,
                   struct error *err)
{
    sqlite3_stmt *s = pstmt(st, P_MISSING, err);

    if (s == NULL)
        return -1;
    store_int_bind_text(s, 1, collection);
    sqlite3_bind_int64(s, 2, before_ms);
    return store_int_many_rows(st, s, sizeof(char *), text_from_row, texts_free, (void **)out,
                               "find copies a read did not see", err);
}

int
store_linked_page(struct store *st, const char *collection, const char *after, int limit,
                  char ***out, struct error *err)
{
    sqlite3_stmt *s = pstmt(st, P_LINKED, err);

    if (s == NULL)
        return -1;
    store_int_bind_text(s, 1, collection);
    store_int_bind_text(s, 2, after != NULL ? after : "");
    sqlite3_bind_int(s, 3, limit);
    return store_int_many_rows(st, s, sizeof(char *), text_from_row, texts_free, (void **)out,
                               "list a collection's linked copies", err);
}

int
store_poll_lease(struct store *st, const char *collection, int64_t now_ms, int64_t until_ms,
                 const char *holder, const char *dead_holder, struct error *err)
{
    sqlite3_stmt *s = pstmt(st, P_LEASE, err);

    if (s == NULL)
        return -1;
    store_int_bind_text(s, 1, collection);
    sqlite3_bind_int64(s, 2, now_ms);
    sqlite3_bind_int64(s, 3, until_ms);
    store_int_bind_text(s, 4, holder);
    store_int_bind_text(s, 5, dead_holder);
    if (store_int_exec(st, s, "take a poll's lease", err) == -1)
        return -1;
    return sqlite3_changes(sqlite3_db_handle(s)) == 1;
}

int
store_poll_holder(struct store *st, const char *collection, int64_t now_ms, char **out,
                  struct error *err)
{
    sqlite3_stmt *s = pstmt(st, P_HOLDER, err);

    *out = NULL;
    if (s == NULL)
        return -1;
    store_int_bind_text(s, 1, collection);
    sqlite3_bind_int64(s, 2, now_ms);
    return store_int_one_row(st, s, text_from_row, out, "read a poll's lease", err) == -1 ? -1 : 0;
}

int
store_poll_release(struct store *st, const char *collection, const char *holder, struct error *err)
{
    sqlite3_stmt *s = pstmt(st, P_RELEASE, err);

    if (s == NULL)
        return -1;
    store_int_bind_text(s, 1, collection);
    store_int_bind_text(s, 2, holder);
    return store_int_exec(st, s, "release a poll's lease", err);
}
