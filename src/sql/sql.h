/* SPDX-License-Identifier: MIT */

/*
 * SQL tables as systems: read rows incrementally, write upserts and deletes.
 *
 * A table of someone else's database (SQLite file or PostgreSQL server) is a
 * collection. The engine polls it page by page with keyset pagination, never
 * OFFSET: an incremental read orders by (updated_at, key) and resumes after
 * the watermark of the last row it saw, so rows that share one updated_at
 * value are never skipped across a page boundary; a full read orders by key.
 * Writes are INSERT ... ON CONFLICT (key) DO UPDATE and DELETE (or an UPDATE
 * that sets a soft-delete column).
 *
 * Two backends sit behind this header, sql_sqlite.c and sql_pg.c (libpq);
 * sql.c builds the statements, caches them prepared on the connection (keyed
 * by their text, so per table and column set) and converts between rows and
 * JSON. Identifiers are always quoted ("a""b"), values always bound.
 *
 * Rows are cJSON objects, column name -> value. Reading maps:
 *   integers (INTEGER, int2/4/8, oid)    number; beyond +-2^53 a string of its digits
 *   numeric                              number with <= 15 significant digits, else string
 *   REAL, float4/8                       number; NaN and +-Infinity as strings
 *   TEXT, varchar, uuid, anything else   string (PostgreSQL's text form)
 *   NULL                                 null
 *   bool (sqlite: declared BOOL*, 0/1)   true / false
 *   json, jsonb (sqlite: declared JSON*) the parsed JSON (text that is not JSON stays a string)
 *   timestamptz                          "2026-11-26T10:00:00.123Z": ISO 8601 in UTC, with the
 *                                        fraction PostgreSQL keeps (up to 6 digits, trailing
 *                                        zeros dropped, none on a whole second)
 *   timestamp                            the same without the "Z" (a naive time)
 *   date                                 "2026-11-26"
 *   sqlite dates                         as stored (SQLite has no date type)
 *   bytea, BLOB                          base64 (RFC 4648, padded)
 * Writing binds: number -> int64 if integral, else double; string -> text
 * (PostgreSQL casts it to the column's type, so "2026-..." fills a
 * timestamptz and "5" an int); bool -> 1/0 (sqlite), 'true'/'false' (pg);
 * null -> NULL; object/array -> JSON text. Into a bytea / declared-BLOB
 * column a base64 string is decoded to bytes; into a json/jsonb /
 * declared-JSON column every value is written as its JSON text. So a row
 * read from one table writes back unchanged into a table of the same shape.
 *
 * Errors: ERROR_TRANSIENT when trying again later may work (connection
 * refused or lost, SQLITE_BUSY/LOCKED, deadlock, serialization failure, lock
 * timeout, too many connections); ERROR_PERMANENT when the database refuses
 * this statement or row (unknown table or column, constraint violation, bad
 * value for the type, authentication); ERROR_INVALID for a bad struct
 * sql_table (an identifier we cannot quote, soft_delete_value not JSON);
 * ERROR_INTERNAL for misuse (sql_begin twice, a call after a failed one in a
 * transaction). The message carries the database's own words, which name the
 * column or constraint; it never carries a password, nor DETAIL lines
 * (they quote row values).
 *
 * Threads: a struct sql_conn belongs to one thread at a time; distinct
 * connections may be used in parallel.
 */
#ifndef CONCORD_SQL_SQL_H
#define CONCORD_SQL_SQL_H

#include <stddef.h>
#include <stdint.h>

#include "core/compiler.h"

struct cJSON;
struct error;

enum sql_kind {
    SQL_SQLITE = 1,
    SQL_POSTGRES,
};

/* One connection with its prepared statements; opaque. */
struct sql_conn;

/*
 * How a collection sits in a database. The caller owns the strings; they
 * are only read during each call (nothing is kept), so a config reload may
 * free them between calls.
 */
struct sql_table {
    const char *table;             /* "t" or "schema.t"; each part quoted as an identifier */
    const char *key;               /* unique column (primary key or unique index), text or int */
    const char *updated_at;        /* NULL: no incremental reads; else the updated-at column */
    const char *soft_delete;       /* NULL: deletes are real DELETEs; else the column set */
    const char *soft_delete_value; /* JSON text of the value set ("true", "\"deleted\"");
                                      NULL means "true" */
    const char *query;             /* NULL, or a SELECT read instead of the table (wrapped as
                                      a subquery, so it must yield key and updated_at) */
};

/*
 * Where a read stands: the (updated_at, key) of the last row seen, as text
 * (the row's own value in the form above: ISO 8601, digits, or the column's
 * text). Both NULL means from the start. The strings are malloc()ed and
 * owned by whoever holds the struct; release them with sql_watermark_fini().
 * The text round-trips: passed back, the database compares it as the
 * column's own type (PostgreSQL) or storage class (SQLite), so the
 * watermark can be stored and resumed after a restart.
 */
struct sql_watermark {
    char *updated_at;
    char *key;
};

/*
 * Connect. target is a file path for SQLITE (the file must exist: a missing
 * one is a config error, not an empty database), or a libpq conninfo string
 * ("host=... port=... dbname=... user=...") or postgresql:// URI for
 * POSTGRES. PostgreSQL sessions run with TimeZone UTC and DateStyle ISO (the
 * timestamp forms above rely on it) and connect_timeout 10 unless the
 * conninfo says otherwise; SQLite waits up to 1 s for another writer's lock
 * before SQLITE_BUSY. On success *out is the caller's (sql_close()); on
 * failure it is untouched. Errors: refused, unreachable, starting up, too
 * many clients -> ERROR_TRANSIENT; a conninfo that does not parse, failed
 * authentication, an unknown database or role, a missing sqlite file ->
 * ERROR_PERMANENT. The message never quotes the conninfo.
 */
MUST_CHECK int sql_open(enum sql_kind kind, const char *target, struct sql_conn **out,
                        struct error *err);

/* Close the connection and its statements; an open transaction is rolled back. Accepts NULL. */
void sql_close(struct sql_conn *c);

/* The backend of an open connection. */
enum sql_kind sql_conn_kind(const struct sql_conn *c);

/*
 * Check t before using it (for config validation): table and key set, every
 * identifier quotable (1..63 bytes, no control characters; table may be
 * "schema.table"), soft_delete_value valid JSON. Returns 0, or -1 with
 * ERROR_INVALID naming the field. The other functions check t as well.
 */
MUST_CHECK int sql_table_check(const struct sql_table *t, struct error *err);

/*
 * Read the next page of at most limit rows (limit >= 1), after *after
 * (NULL or all-NULL: from the start).
 *   incremental (t->updated_at must be set): rows whose (updated_at, key)
 *     is greater than (after->updated_at, after->key), ordered by
 *     (updated_at, key). With after->updated_at set and after->key NULL:
 *     rows with updated_at >= after->updated_at ("since a time"). Rows whose
 *     updated_at is NULL are never returned: give the column a default.
 *   full: rows with key > after->key, ordered by key.
 * The comparison is loss-free for rows sharing one updated_at value, and a
 * row committed later with an updated_at equal to the watermark and a
 * greater key is still found. (A row whose transaction commits after a read
 * has passed its updated_at is not: writers that stamp updated_at long
 * before they commit need the caller to re-read an overlap.) An index on
 * (updated_at, key) keeps each page one index range scan.
 * On success returns the row count (0: nothing more for now), sets *rows to
 * a cJSON array of row objects (the caller frees it with cJSON_Delete(),
 * also when empty) and fills *next with the watermark after the last row,
 * or a copy of *after when there are none; *next is overwritten without
 * being freed, and the caller releases it with sql_watermark_fini(). On
 * failure neither is touched.
 */
MUST_CHECK int sql_read_page(struct sql_conn *c, const struct sql_table *t,
                             const struct sql_watermark *after, int incremental, size_t limit,
                             struct cJSON **rows, struct sql_watermark *next, struct error *err);

/* Count the rows of t (of its query when set) into *n, for progress. Returns 0 or -1. */
MUST_CHECK int sql_count(struct sql_conn *c, const struct sql_table *t, int64_t *n,
                         struct error *err);

/*
 * Read one row by key (for look-ups), from the query when t has one.
 * Returns 1 and sets *row (the caller's; cJSON_Delete()), 0 when no row has
 * that key (*row untouched), -1 on error.
 */
MUST_CHECK int sql_get(struct sql_conn *c, const struct sql_table *t, const char *key,
                       struct cJSON **row, struct error *err);

/*
 * Transactions, for writing batches: sql_begin(), any number of upserts and
 * deletes, sql_commit(). SQLite takes the write lock at once (BEGIN
 * IMMEDIATE). A failed call inside a transaction fails the whole
 * transaction on both backends (PostgreSQL aborts it anyway): every later
 * call returns ERROR_INTERNAL until sql_rollback(), and nothing of it is
 * kept; redo the rows still wanted in a new one. When sql_commit() fails,
 * call sql_rollback() too. sql_rollback() never fails and may be called
 * without a transaction. sql_begin() inside a transaction is ERROR_INTERNAL.
 *
 * Inside a transaction an sql_upsert() with key_out NULL may be queued
 * (PostgreSQL sends up to 100 in one pipeline before it waits: one round
 * trip per batch, not per row). It returns 0 at once, and if the database
 * then refuses the row, a later call of the same transaction fails with
 * that row's error instead, at the latest sql_commit(). So a caller that
 * needs to know which row was refused asks sql_txn_failed_write().
 */
MUST_CHECK int sql_begin(struct sql_conn *c, struct error *err);
MUST_CHECK int sql_commit(struct sql_conn *c, struct error *err);
void sql_rollback(struct sql_conn *c);

/*
 * After a call of a transaction failed with ERROR_PERMANENT because the
 * database refused one of its writes: that write's 0-based index among the
 * transaction's sql_upsert() and sql_delete() calls, in call order (the row
 * to park; redo the others). -1 when no write was refused (the failure was
 * transient, or not a row's). Valid until the next sql_begin().
 */
int64_t sql_txn_failed_write(const struct sql_conn *c);

/*
 * Write one row (an object, column -> value; the mapping above). When the
 * row holds t->key with a non-null value: INSERT ... ON CONFLICT (key) DO
 * UPDATE SET every other given column, so columns the row does not name
 * keep their values. Otherwise a plain INSERT, and the database assigns the
 * key. Either way *key_out (when key_out is not NULL) receives the row's key
 * as text, as the database returns it (the caller frees it). The columns
 * are written exactly as given; updated_at changes only if the row sets it
 * or the database has a default or trigger. Returns 0 or -1 (see the error
 * kinds above; a column that does not exist names it). Inside a
 * transaction, with key_out NULL, the write may be queued: see above.
 */
MUST_CHECK int sql_upsert(struct sql_conn *c, const struct sql_table *t, const struct cJSON *row,
                          char **key_out, struct error *err);

/*
 * Update the row whose key the row holds, in the columns the row names only
 * (UPDATE ... SET ... WHERE key = ...): unlike an upsert, a column the row
 * leaves out is never needed, NOT NULL or not. Returns 1 when the row was
 * there (*key_out, when not NULL, its key: the caller frees), 0 when no row
 * has that key, -1 on error (as sql_upsert()). Never queued.
 */
MUST_CHECK int sql_update(struct sql_conn *c, const struct sql_table *t, const struct cJSON *row,
                          char **key_out, struct error *err);

/*
 * Delete the row with this key. Without t->soft_delete a DELETE; with it an
 * UPDATE setting that column to soft_delete_value (and updated_at to the
 * current time when t->updated_at is set: pg clock_timestamp(), sqlite
 * ISO 8601 text "YYYY-MM-DDTHH:MM:SS.sssZ"), only if it does not hold the
 * value already. Returns 1 when a row changed, 0 when none did (missing, or
 * already soft-deleted: not an error), -1 on error.
 */
MUST_CHECK int sql_delete(struct sql_conn *c, const struct sql_table *t, const char *key,
                          struct error *err);

/*
 * Whether a row read from t is soft-deleted: 1 when t->soft_delete is set
 * and the row's column equals soft_delete_value (true also matches 1, false
 * 0, for SQLite columns not declared BOOLEAN), else 0.
 */
int sql_row_is_deleted(const struct sql_table *t, const struct cJSON *row);

/*
 * Run statements verbatim, without parameters and without results (schema
 * set-up in tests and tools). Never splice data into sql. Returns 0 or -1.
 */
MUST_CHECK int sql_exec(struct sql_conn *c, const char *sql, struct error *err);

/* Free the watermark's strings and set them to NULL. Accepts NULL. */
void sql_watermark_fini(struct sql_watermark *w);

#endif
