/* SPDX-License-Identifier: MIT */

/*
 * The store's part of the audit log (migration 8): one row per operator's
 * action, from the CLI or the admin API, with who did it. Rows are only
 * ever added; `concord audit` and GET /api/audit read them newest first.
 * What an action is and who counts as its author is decided in
 * engine/admin.c; this file only keeps the rows.
 */

#include "store/store.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "store/store_int.h"

enum {
    A_ADD = 0,
    A_LIST,
    A_COUNT,
};

static const char *const sql[A_COUNT] = {
    [A_ADD] = "INSERT INTO audit (at, who, via, action, target, detail) "
              "VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
    [A_LIST] = "SELECT id, at, who, via, action, target, detail FROM audit "
               "WHERE ?2 <= 0 OR id < ?2 ORDER BY id DESC LIMIT ?1",
};

/* The store_int_stmt() slots of this file (store_oauth.c has the ones below 64). */
#define SLOT0 64
_Static_assert(SLOT0 + A_COUNT <= STORE_EXTRA_SLOTS, "store_audit.c needs more statement slots");

void
store_audit_fini(struct store_audit *a)
{
    free(a->who);
    free(a->via);
    free(a->action);
    free(a->target);
    free(a->detail);
    memset(a, 0, sizeof(*a));
}

void
store_audit_free(struct store_audit *list, int count)
{
    for (int i = 0; list != NULL && i < count; i++)
        store_audit_fini(&list[i]);
    free(list);
}

static void
id_from_row(sqlite3_stmt *s, void *out)
{
    *(int64_t *)out = sqlite3_column_int64(s, 0);
}

int
store_audit_add(struct store *st, const struct store_audit *a, int64_t *id, struct error *err)
{
    sqlite3_stmt *s = store_int_stmt(st, SLOT0 + A_ADD, sql[A_ADD], err);
    int64_t got = 0;

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, a->at_ms);
    store_int_bind_text(s, 2, a->who);
    store_int_bind_text(s, 3, a->via);
    store_int_bind_text(s, 4, a->action);
    store_int_bind_text(s, 5, a->target);
    store_int_bind_text(s, 6, a->detail);
    if (store_int_one_row(st, s, id_from_row, &got, "add to the audit log", err) != 1)
        return err->kind != ERROR_NONE ? -1
                                       : error_set(err, ERROR_STORE, "add to the audit log: no id");
    *id = got;
    return 0;
}

static void
audit_from_row(sqlite3_stmt *s, void *out)
{
    struct store_audit *a = out;

    a->id = sqlite3_column_int64(s, 0);
    a->at_ms = sqlite3_column_int64(s, 1);
    a->who = store_int_col_text(s, 2);
    a->via = store_int_col_text(s, 3);
    a->action = store_int_col_text(s, 4);
    a->target = store_int_col_text(s, 5);
    a->detail = store_int_col_text(s, 6);
}

static void
audit_list_free(void *list, int count)
{
    store_audit_free(list, count);
}

int
store_audit_list(struct store *st, int limit, int64_t before_id, struct store_audit **out,
                 struct error *err)
{
    sqlite3_stmt *s = store_int_stmt(st, SLOT0 + A_LIST, sql[A_LIST], err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int(s, 1, limit);
    sqlite3_bind_int64(s, 2, before_id);
    return store_int_many_rows(st, s, sizeof(struct store_audit), audit_from_row, audit_list_free,
                               (void **)out, "read the audit log", err);
}
