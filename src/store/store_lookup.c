/* SPDX-License-Identifier: MIT */

/*
 * Look-ups that a connector's reads and writes need beyond the flow's own:
 * the state of one journaled change (a CalDAV write that met a newer copy
 * journals that copy and goes on once the merge has taken it), and a link
 * found by a field of its base (an event that moved to another href keeps
 * its UID). engine/caldav.c uses both.
 */

#include "store/store.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "store/store_int.h"

enum {
    J_STATE = 0,
    J_LINK_BY_BASE,
    J_COUNT,
};

static const char *const sql[J_COUNT] = {
    [J_STATE] = "SELECT state FROM journal WHERE seq = ?1",
    /* No index: a full read's unknown copies are few. */
    [J_LINK_BY_BASE] = "SELECT id, collection, record_id, ext_id, base FROM links "
                       "WHERE collection = ?1 AND ext_id IS NOT NULL AND base IS NOT NULL "
                       "AND json_valid(base) AND json_extract(base, '$.' || ?2) = ?3 "
                       "ORDER BY id LIMIT 2",
};

/* The store_int_stmt() slots of this file. */
#define SLOT0 128
_Static_assert(SLOT0 + J_COUNT <= STORE_EXTRA_SLOTS, "store_lookup.c needs more statement slots");

static void
state_from_row(sqlite3_stmt *s, void *out)
{
    *(enum change_state *)out = (enum change_state)sqlite3_column_int(s, 0);
}

int
store_journal_state(struct store *st, int64_t seq, enum change_state *out, struct error *err)
{
    sqlite3_stmt *s = store_int_stmt(st, SLOT0 + J_STATE, sql[J_STATE], err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, seq);
    return store_int_one_row(st, s, state_from_row, out, "read a journaled change's state", err);
}

static void
link_from_row(sqlite3_stmt *s, void *out)
{
    struct link *l = out;

    l->id = sqlite3_column_int64(s, 0);
    l->collection = store_int_col_text(s, 1);
    l->record_id = sqlite3_column_int64(s, 2);
    l->ext_id = store_int_col_text(s, 3);
    l->base = store_int_col_text(s, 4);
}

static void
links_free(void *list, int count)
{
    struct link *l = list;

    for (int i = 0; i < count; i++)
        link_fini(&l[i]);
    free(l);
}

int
store_link_by_base(struct store *st, const char *collection, const char *field, const char *value,
                   struct link *out, struct error *err)
{
    sqlite3_stmt *s = store_int_stmt(st, SLOT0 + J_LINK_BY_BASE, sql[J_LINK_BY_BASE], err);
    struct link *found = NULL;
    int n;

    if (s == NULL)
        return -1;
    store_int_bind_text(s, 1, collection);
    store_int_bind_text(s, 2, field);
    store_int_bind_text(s, 3, value);
    n = store_int_many_rows(st, s, sizeof(*found), link_from_row, links_free, (void **)&found,
                            "find a link by its base", err);
    if (n == 1) {
        *out = found[0];
        memset(&found[0], 0, sizeof(found[0]));
    }
    links_free(found, n > 0 ? n : 0);
    return n == -1 ? -1 : n == 1;
}
