/* SPDX-License-Identifier: MIT */

/*
 * tests/fuzz/fuzz_recent.c — links.recent noted in C (src/store/store_recent.c,
 * concord_recent_note()) against SQLite's JSON functions
 * (STORE_RECENT_NOTE_SQL): for any list text, state, kind and state to
 * replace, the note STORE_RECENT_NOTE_OVER makes is the one the JSON
 * functions alone make, and the C function answers either that very text
 * or NULL. The input is "recent\0state\0kind\0over" (no over: NULL); a
 * first byte 'N' stands for a NULL list.
 */
/* link: store */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store/store_int.h"

#define FUZZ_MAX_INPUT 8192

/* libFuzzer fixes this name. NOLINTNEXTLINE(readability-identifier-naming) */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sqlite3 *db;
static sqlite3_stmt *both, *ref;

static void
open_once(void)
{
    if (db != NULL)
        return;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK || store_recent_register(db) != SQLITE_OK ||
        sqlite3_prepare_v2(
            db,
            "SELECT " STORE_RECENT_NOTE_OVER(
                "?2", "?3", "?4",
                "?5") ", "
                      "concord_recent_note(recent, ?2, ?3, ?4, ?5) FROM (SELECT ?1 AS recent)",
            -1, &both, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "SELECT " STORE_RECENT_NOTE_SQL("?2", "?3", "?4", "?5") " FROM (SELECT "
                                                                                   "?1 AS recent)",
                           -1, &ref, NULL) != SQLITE_OK)
        abort();
}

/* A part of the input up to the next NUL: its length. */
static size_t
part(const uint8_t *at, size_t left)
{
    const uint8_t *nul = memchr(at, '\0', left);

    return nul != NULL ? (size_t)(nul - at) : left;
}

/* One note's parts. */
struct note {
    const uint8_t *recent, *state, *kind, *over;
    size_t recent_len, state_len, kind_len, over_len;
    int null_list;
};

static void
bind(sqlite3_stmt *s, const struct note *n)
{
    sqlite3_reset(s);
    if (n->null_list)
        sqlite3_bind_null(s, 1);
    else
        sqlite3_bind_text(s, 1, (const char *)n->recent, (int)n->recent_len, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, (const char *)n->state, (int)n->state_len, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, 1700000000000LL + (int64_t)n->recent_len);
    sqlite3_bind_text(s, 4, (const char *)n->kind, (int)n->kind_len, SQLITE_TRANSIENT);
    if (n->over == NULL)
        sqlite3_bind_null(s, 5);
    else
        sqlite3_bind_text(s, 5, (const char *)n->over, (int)n->over_len, SQLITE_TRANSIENT);
}

/* Column i of s's row as text and length (NULL for a NULL). */
static const char *
column(sqlite3_stmt *s, int i, size_t *len)
{
    const char *t = (const char *)sqlite3_column_text(s, i);

    *len = (size_t)sqlite3_column_bytes(s, i);
    return t;
}

static int
same(const char *a, size_t a_len, const char *b, size_t b_len)
{
    if (a == NULL || b == NULL)
        return a == b;
    return a_len == b_len && memcmp(a, b, a_len) == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct note n = {.recent = data, .null_list = size > 0 && data[0] == 'N'};
    const uint8_t *end = data + size;
    size_t got_len, fast_len, want_len;
    const char *got, *fast, *want;

    if (size > FUZZ_MAX_INPUT)
        return 0;
    open_once();
    n.recent_len = part(n.recent, size);
    n.state = n.recent + n.recent_len + (n.recent_len < size);
    n.state_len = part(n.state, (size_t)(end - n.state));
    n.kind = n.state + n.state_len + (n.state + n.state_len < end);
    n.kind_len = part(n.kind, (size_t)(end - n.kind));
    if (n.kind + n.kind_len < end) {
        n.over = n.kind + n.kind_len + 1;
        n.over_len = (size_t)(end - n.over);
    }
    bind(both, &n);
    bind(ref, &n);
    if (sqlite3_step(both) != SQLITE_ROW || sqlite3_step(ref) != SQLITE_ROW)
        return 0; /* a text SQLite refuses (too big, bad UTF-8 at a limit) */
    got = column(both, 0, &got_len);
    fast = column(both, 1, &fast_len);
    want = column(ref, 0, &want_len);
    if (!same(got, got_len, want, want_len) ||
        (fast != NULL && !same(fast, fast_len, want, want_len))) {
        fprintf(stderr, "recent note differs:\n  C:    %.*s\n  JSON: %.*s\n", (int)fast_len,
                fast ? fast : "(null)", (int)want_len, want ? want : "(null)");
        abort();
    }
    return 0;
}
