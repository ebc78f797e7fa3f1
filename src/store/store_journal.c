/* SPDX-License-Identifier: MIT */

/*
 * Look-ups of one journaled change, for work that waits on its processing:
 * a CalDAV write that met a newer copy journals that copy and goes on only
 * once the merge has taken it (engine/caldav.c).
 */

#include "store/store.h"

#include "core/error.h"
#include "store/store_int.h"

enum {
    J_STATE = 0,
    J_COUNT,
};

static const char *const sql[J_COUNT] = {
    [J_STATE] = "SELECT state FROM journal WHERE seq = ?1",
};

/* The store_int_stmt() slots of this file. */
#define SLOT0 128
_Static_assert(SLOT0 + J_COUNT <= STORE_EXTRA_SLOTS, "store_journal.c needs more statement slots");

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
