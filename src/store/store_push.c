/* SPDX-License-Identifier: MIT */

/*
 * The store's part of the calendar kinds' push (the push_channels
 * migration; engine/push.c): each system's live watch channels (Google) or
 * change-notification subscriptions (Graph), with the secret their
 * notifications carry and when they expire, so that a restarted daemon
 * stops or renews what it registered before instead of leaking it; and the
 * recurring series of a calendar collection, for a Graph delta's removal
 * that names no series.
 */

#include "store/store.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "store/store_int.h"

enum {
    PUSH_LIST = 0,
    PUSH_PUT,
    PUSH_DELETE,
    PUSH_SERIES,
    PUSH_COUNT,
};

static const char *const sql[PUSH_COUNT] = {
    [PUSH_LIST] = "SELECT system, id, resource_id, secret, expires_at, created_at FROM "
                  "push_channels ORDER BY system, expires_at, id",
    [PUSH_PUT] = "INSERT OR REPLACE INTO push_channels (system, id, resource_id, secret, "
                 "expires_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [PUSH_DELETE] = "DELETE FROM push_channels WHERE system = ?1 AND id = ?2",
    /* A recurring appointment's canonical text holds "recurrence":{ (keys
     * sorted, compact): the base is the link's last known state. */
    [PUSH_SERIES] = "SELECT ext_id FROM links WHERE collection = ?1 AND ext_id IS NOT NULL AND "
                    "instr(base, '\"recurrence\":{') > 0 ORDER BY id LIMIT ?2",
};

/* The store_int_stmt() slots of this file (store_audit.c has the ones below). */
#define SLOT0 96
_Static_assert(SLOT0 + PUSH_COUNT <= STORE_EXTRA_SLOTS, "store_push.c needs more statement slots");

static sqlite3_stmt *
pstmt(struct store *st, int id, struct error *err)
{
    return store_int_stmt(st, SLOT0 + id, sql[id], err);
}

void
store_push_fini(struct store_push *p)
{
    /* The secret authenticates notifications: leave no copy in freed memory. */
    if (p->secret != NULL)
        explicit_bzero(p->secret, strlen(p->secret));
    free(p->system);
    free(p->id);
    free(p->resource_id);
    free(p->secret);
    memset(p, 0, sizeof(*p));
}

void
store_push_free(struct store_push *list, int count)
{
    for (int i = 0; list != NULL && i < count; i++)
        store_push_fini(&list[i]);
    free(list);
}

static void
push_list_free(void *list, int count)
{
    store_push_free(list, count);
}

static void
push_from_row(sqlite3_stmt *s, void *out)
{
    struct store_push *p = out;

    p->system = store_int_col_text(s, 0);
    p->id = store_int_col_text(s, 1);
    p->resource_id = store_int_col_text(s, 2);
    p->secret = store_int_col_text(s, 3);
    p->expires_at_ms = sqlite3_column_int64(s, 4);
    p->created_at_ms = sqlite3_column_int64(s, 5);
}

int
store_push_list(struct store *st, struct store_push **out, struct error *err)
{
    sqlite3_stmt *s = pstmt(st, PUSH_LIST, err);

    *out = NULL;
    if (s == NULL)
        return -1;
    return store_int_many_rows(st, s, sizeof(struct store_push), push_from_row, push_list_free,
                               (void **)out, "read the push registrations", err);
}

int
store_push_put(struct store *st, const struct store_push *p, struct error *err)
{
    sqlite3_stmt *s = pstmt(st, PUSH_PUT, err);

    if (s == NULL)
        return -1;
    store_int_bind_text(s, 1, p->system);
    store_int_bind_text(s, 2, p->id);
    store_int_bind_text(s, 3, p->resource_id);
    store_int_bind_text(s, 4, p->secret);
    sqlite3_bind_int64(s, 5, p->expires_at_ms);
    sqlite3_bind_int64(s, 6, p->created_at_ms);
    return store_int_exec(st, s, "write a push registration", err);
}

int
store_push_delete(struct store *st, const char *system, const char *id, struct error *err)
{
    sqlite3_stmt *s = pstmt(st, PUSH_DELETE, err);

    if (s == NULL)
        return -1;
    store_int_bind_text(s, 1, system);
    store_int_bind_text(s, 2, id);
    return store_int_exec(st, s, "forget a push registration", err);
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
store_push_series(struct store *st, const char *collection, int limit, char ***out,
                  struct error *err)
{
    sqlite3_stmt *s = pstmt(st, PUSH_SERIES, err);

    *out = NULL;
    if (s == NULL)
        return -1;
    store_int_bind_text(s, 1, collection);
    sqlite3_bind_int(s, 2, limit);
    return store_int_many_rows(st, s, sizeof(char *), text_from_row, texts_free, (void **)out,
                               "find the recurring series of a calendar", err);
}
