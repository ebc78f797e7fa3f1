/* SPDX-License-Identifier: MIT */

/*
 * The store's part of health (migration 8): the facts engine/health.c
 * judges a system by, and when its last webhook came.
 */

#include "store/store.h"

#include <string.h>

#include "core/error.h"
#include "model/model.h"
#include "store/store_int.h"

enum {
    H_OLDEST = 0,
    H_INBOX,
    H_CONFLICTS,
    H_WEBHOOK,
    H_WEBHOOK_SEEN,
    H_COUNT,
};

static const char *const sql[H_COUNT] = {
    [H_OLDEST] = "SELECT min(x) FROM (SELECT min(created_at) AS x FROM jobs WHERE system = ?1 AND "
                 "state = 1 UNION ALL SELECT min(created_at) FROM jobs WHERE system = ?1 AND "
                 "state = 2)",
    [H_INBOX] = "SELECT coalesce(sum(created_at >= ?2), 0), count(*) FROM inbox WHERE state = "
                "'open' AND system = ?1 AND kind IN (?3, ?4, ?5)",
    [H_CONFLICTS] = "SELECT count(*) FROM inbox WHERE state = 'open' AND system = ?1 AND kind = ?2",
    [H_WEBHOOK] = "SELECT last_webhook_at FROM system_state WHERE system = ?1",
    [H_WEBHOOK_SEEN] = "INSERT INTO system_state (system, last_webhook_at) VALUES (?1, ?2) "
                       "ON CONFLICT (system) DO UPDATE SET last_webhook_at = ?2",
};

/* The store_int_stmt() slots of this file (store_oauth.c has the ones below). */
#define SLOT0 58
_Static_assert(SLOT0 + H_COUNT <= STORE_EXTRA_SLOTS, "store_health.c needs more statement slots");

static sqlite3_stmt *
hstmt(struct store *st, int id, struct error *err)
{
    return store_int_stmt(st, SLOT0 + id, sql[id], err);
}

/* The first column of the one row of s, as an integer (0 for NULL). */
static int
one_int(struct store *st, sqlite3_stmt *s, int64_t *a, int64_t *b, const char *what,
        struct error *err)
{
    int rc = sqlite3_step(s);

    (void)st;
    if (rc == SQLITE_ROW) {
        *a = sqlite3_column_int64(s, 0);
        if (b != NULL)
            *b = sqlite3_column_int64(s, 1);
    } else if (rc != SQLITE_DONE) {
        sqlite3_reset(s);
        return error_set(err, ERROR_STORE, "%s: %s", what, sqlite3_errstr(rc));
    }
    sqlite3_reset(s);
    return 0;
}

int
store_health_facts(struct store *st, const char *system, int64_t since_ms,
                   struct store_health_facts *out, struct error *err)
{
    sqlite3_stmt *s;

    memset(out, 0, sizeof(*out));
    if ((s = hstmt(st, H_OLDEST, err)) == NULL)
        return -1;
    store_int_bind_text(s, 1, system);
    if (one_int(st, s, &out->oldest_pending_ms, NULL, "read the oldest job", err) == -1)
        return -1;
    if ((s = hstmt(st, H_INBOX, err)) == NULL)
        return -1;
    store_int_bind_text(s, 1, system);
    sqlite3_bind_int64(s, 2, since_ms);
    sqlite3_bind_int(s, 3, INBOX_FAILED);
    sqlite3_bind_int(s, 4, INBOX_UNKNOWN);
    sqlite3_bind_int(s, 5, INBOX_MAPPING);
    if (one_int(st, s, &out->inbox_recent, &out->inbox_open, "count the inbox", err) == -1)
        return -1;
    if ((s = hstmt(st, H_CONFLICTS, err)) == NULL)
        return -1;
    store_int_bind_text(s, 1, system);
    sqlite3_bind_int(s, 2, INBOX_CONFLICT);
    if (one_int(st, s, &out->conflicts_open, NULL, "count the conflicts", err) == -1)
        return -1;
    if ((s = hstmt(st, H_WEBHOOK, err)) == NULL)
        return -1;
    store_int_bind_text(s, 1, system);
    return one_int(st, s, &out->last_webhook_ms, NULL, "read the last webhook", err);
}

int
store_webhook_seen(struct store *st, const char *system, int64_t at_ms, struct error *err)
{
    sqlite3_stmt *s = hstmt(st, H_WEBHOOK_SEEN, err);

    if (s == NULL)
        return -1;
    store_int_bind_text(s, 1, system);
    sqlite3_bind_int64(s, 2, at_ms);
    return store_int_exec(st, s, "note a webhook", err);
}

int
store_meta_set(struct store *st, const char *key, const char *value, struct error *err)
{
    /* Rare (a start, a reload): prepared each time. */
    const char *text = value != NULL ? "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)"
                                     : "DELETE FROM meta WHERE key = ?1";
    sqlite3_stmt *s = NULL;
    int rc;

    if (sqlite3_prepare_v2(store_int_db(st), text, -1, &s, NULL) != SQLITE_OK) {
        sqlite3_finalize(s);
        return error_set(err, ERROR_STORE, "write a note: %s", sqlite3_errmsg(store_int_db(st)));
    }
    store_int_bind_text(s, 1, key);
    if (value != NULL)
        store_int_bind_text(s, 2, value);
    rc = store_int_exec(st, s, "write a note", err); /* waits for its turn (store_lock.c) */
    sqlite3_finalize(s);
    return rc;
}

int
store_meta_get(struct store *st, const char *key, char **out, struct error *err)
{
    sqlite3_stmt *s = store_int_stmt(st, 85, "SELECT value FROM meta WHERE key = ?1", err);
    int rc;

    *out = NULL;
    if (s == NULL)
        return -1;
    store_int_bind_text(s, 1, key);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *out = store_int_col_text(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE
               ? 0
               : error_set(err, ERROR_STORE, "read a note: %s", sqlite3_errstr(rc));
}
