/* SPDX-License-Identifier: MIT */

/* Inside the store: the schema's migrations. Only src/store/ includes this. */
#ifndef CONCORD_STORE_STORE_INT_H
#define CONCORD_STORE_STORE_INT_H

#include <stddef.h>

#include <sqlite3.h>

#include "core/compiler.h"

struct error;
struct store;

/* Statement slots for the store's files other than store_sqlite.c. */
#define STORE_EXTRA_SLOTS 153

/*
 * The id for an INSERT into TABLE (links, automation_runs): NULL (SQLite's
 * own, the top id + 1) unless meta's FLOOR key holds the id of a deleted
 * top row (migration 15's triggers), then the next id above both. Keys
 * sent out are built from these ids, so one must never come back. Only
 * meta is read while there is no floor: the top id costs a second cursor
 * (a third more per insert); store_retention_prune() drops a floor the
 * table has passed.
 */
#define STORE_NEXT_ID(TABLE, FLOOR)                                                  \
    "(SELECT max(CAST(value AS INTEGER), coalesce((SELECT max(id) FROM " TABLE "), " \
    "0)) + 1 FROM meta WHERE key = '" FLOOR "')"

/*
 * SQL for links.recent with one state noted (engine/recent.c): [at, state, kind]
 * appended, the oldest dropped past six, nothing when the newest is
 * already that state of that kind (a retry), and a fresh list in place of
 * anything that is not one. STATE, AT and KIND are parameters. The list
 * concord writes is noted in C (store_recent.c); the JSON functions of
 * STORE_RECENT_NOTE_SQL take any other.
 */
#define STORE_RECENT_NOTE(STATE, AT, KIND) STORE_RECENT_NOTE_OVER(STATE, AT, KIND, "NULL")

/* STORE_RECENT_NOTE, except that the newest entry is replaced rather than
 * followed when it is OVER (a text, or NULL) of the same kind: the write
 * noted at its claim, once its answer says what the copy holds. */
#define STORE_RECENT_NOTE_OVER(STATE, AT, KIND, OVER)                         \
    "coalesce(concord_recent_note(recent, " STATE ", " AT ", " KIND ", " OVER \
    "), " STORE_RECENT_NOTE_SQL(STATE, AT, KIND, OVER) ")"

/* STORE_RECENT_NOTE_OVER by SQLite's JSON functions alone. */
#define STORE_RECENT_NOTE_SQL(STATE, AT, KIND, OVER)                                              \
    "CASE WHEN " STATE " IS NULL THEN recent "                                                    \
    "WHEN recent IS NULL OR json_valid(recent) = 0 THEN json_array(json_array(" AT ", " STATE     \
    ", " KIND ")) "                                                                               \
    "WHEN json_type(recent) <> 'array' THEN json_array(json_array(" AT ", " STATE ", " KIND ")) " \
    "WHEN json_extract(recent, '$[#-1][1]') IS " STATE " AND json_extract(recent, '$[#-1][2]') "  \
    "IS " KIND " THEN recent "                                                                    \
    "WHEN " OVER " IS NOT NULL AND json_extract(recent, '$[#-1][1]') IS " OVER " AND "            \
    "json_extract(recent, '$[#-1][2]') IS " KIND " THEN json_set(recent, '$[#-1]', "              \
    "json_array(" AT ", " STATE ", " KIND ")) "                                                   \
    "WHEN json_array_length(recent) >= 6 THEN json_insert(json_remove(recent, '$[0]'), '$[#]', "  \
    "json_array(" AT ", " STATE ", " KIND ")) "                                                   \
    "ELSE json_insert(recent, '$[#]', json_array(" AT ", " STATE ", " KIND ")) END"

/* The VFS the store opens its file with (store_vfs.c): SQLite's "unix",
 * with a WAL's frames written out together at each commit. */
#define STORE_VFS_NAME "concord-unix"

/* Register STORE_VFS_NAME (once; any thread). Returns SQLite's code. */
int store_vfs_register(void);

/* Add concord_recent_note() (store_recent.c) to a connection, before a
 * statement that uses STORE_RECENT_NOTE is prepared (store_open() does).
 * Returns SQLite's code. */
int store_recent_register(sqlite3 *db);

/* Turns at writing for the handles of one process on one file
 * (store_lock.c): first come, first served. */
struct store_lock;

/* The file's queue, made at its first handle; NULL for an in-memory store
 * (the calls below then do nothing). */
struct store_lock *store_lock_get(const char *path);

/* A handle of the file is closed; the last one frees the queue. Accepts NULL. */
void store_lock_put(struct store_lock *l);

/* Wait for the turn, up to timeout_ms. Returns 1 with it, 0 without. */
int store_lock_take(struct store_lock *l, int timeout_ms);

/* Pass the turn on to the next in the queue, or let it go. */
void store_lock_give(struct store_lock *l);

/* Step a statement that writes only the connection's own temporary tables:
 * it neither waits for the turn nor begins a late transaction. */
MUST_CHECK int store_int_exec_temp(struct store *st, sqlite3_stmt *s, const char *what,
                                   struct error *err);

/* How many migrations exist. */
int store_schema_count(void);

/* The SQL of migration n (0-based); borrowed, static. */
const char *store_schema_migration(int n);

/*
 * The prepared statement in slot (each file owns a range of slots: see
 * store_twoway.c), prepared from sql the first time, reset and with its
 * bindings cleared. NULL with err set when it does not prepare.
 */
sqlite3_stmt *store_int_stmt(struct store *st, int slot, const char *sql, struct error *err);

/* Step a statement that returns no rows. Returns 0 or -1 (err names what). */
MUST_CHECK int store_int_exec(struct store *st, sqlite3_stmt *s, const char *what,
                              struct error *err);

/* Fills *out from the current row of a statement. */
typedef void store_int_fill_fn(sqlite3_stmt *s, void *out);
/* Releases the elements of a list filled by store_int_many_rows(). */
typedef void store_int_free_fn(void *list, int count);

/* Step a statement that returns at most one row: 1 with *out filled, 0 when
 * there is none, -1. */
MUST_CHECK int store_int_one_row(struct store *st, sqlite3_stmt *s, store_int_fill_fn *fill,
                                 void *out, const char *what, struct error *err);

/* Step a statement to its end into a malloc()ed array of elem_size
 * elements. Returns the count with *out set, or -1. */
MUST_CHECK int store_int_many_rows(struct store *st, sqlite3_stmt *s, size_t elem_size,
                                   store_int_fill_fn *fill, store_int_free_fn *free_list,
                                   void **out, const char *what, struct error *err);

/* Column i as a malloc()ed string, or NULL. */
char *store_int_col_text(sqlite3_stmt *s, int i);

/* Bind text (NULL binds SQL NULL), borrowed until the statement is reset. */
void store_int_bind_text(sqlite3_stmt *s, int i, const char *text);

/* 1 inside store_begin() .. store_commit(). */
int store_int_in_tx(const struct store *st);

/* The connection, for statements prepared once (store_forget()). */
sqlite3 *store_int_db(struct store *st);

/* Rows the last statement changed. */
int store_int_changes(struct store *st);

/* Run SQL without rows. Returns 0 or -1. */
MUST_CHECK int store_int_exec_sql(struct store *st, const char *sql, struct error *err);

#endif
