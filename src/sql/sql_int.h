/* SPDX-License-Identifier: MIT */

/*
 * What an SQL backend implements, and the connection they share. Only
 * src/sql/ includes this. sql.c builds every statement's text, keeps the
 * statement cache and turns JSON into parameters; a backend prepares, binds
 * typed parameters, runs, and turns result cells into JSON.
 */
#ifndef CONCORD_SQL_SQL_INT_H
#define CONCORD_SQL_SQL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "sql/sql.h"

struct cJSON;
struct error;

/* Prepared statements kept per connection; the least recently used goes first. */
#define SQL_CACHE_COUNT 64
/*
 * Deferred writes a connection queues before it waits for their results.
 * Each result is a few dozen bytes, so the server never blocks on a full
 * socket while we are still sending (libpq's pipeline deadlock).
 */
#define SQL_PIPELINE_MAX 100

/* How a parameter's JSON value is turned into a bound value (decided at prepare). */
enum sql_param_mode {
    SQL_MODE_PLAIN = 0, /* by the JSON type */
    SQL_MODE_BYTES,     /* a bytea / BLOB column: base64 text is decoded */
    SQL_MODE_JSON,      /* a json column: any value is bound as its JSON text */
};

enum sql_param_type {
    SQL_PARAM_NULL = 0,
    SQL_PARAM_INT,
    SQL_PARAM_DOUBLE,
    SQL_PARAM_BOOL,
    SQL_PARAM_TEXT,
    SQL_PARAM_BLOB,
};

/* One bound value. text/len are borrowed for the call (TEXT, BLOB). */
struct sql_param {
    enum sql_param_type type;
    int64_t i; /* INT; BOOL as 0/1 */
    double d;  /* DOUBLE */
    const char *text;
    size_t len;
    char *owned; /* freed by sql.c after the call: decoded bytes, printed JSON */
};

/* A statement in the cache. The text is the key. */
struct sql_stmt {
    char *text;    /* NULL: the slot is free */
    uint64_t hash; /* of text */
    uint64_t used; /* the connection's tick at the last use */
    int param_count;
    unsigned char *modes; /* param_count entries of enum sql_param_mode */
    void *handle;         /* sqlite3_stmt * */
    char name[24];        /* pg: the prepared statement's name */
    unsigned epoch;       /* pg: the connection epoch it was prepared in */
};

/* What a run collects; zero it, set the wants, read the outputs. */
struct sql_result {
    int want_rows;           /* build rows */
    int want_first;          /* keep column 0 of the first row as text in first */
    int may_defer;           /* the backend may queue the statement and return at once */
    int64_t write_index;     /* the write's index in its transaction (with may_defer) */
    const char *mark_col[2]; /* columns whose text, in the last row, goes to mark[] */
    struct cJSON *rows;      /* an array when want_rows; the caller frees it */
    int64_t row_count;
    int64_t changes; /* rows an INSERT/UPDATE/DELETE touched */
    char *first;     /* malloc()ed; NULL if no row or the cell is NULL */
    char *mark[2];   /* malloc()ed; NULL if no row */
    int stale;       /* on failure: the statement is out of date; drop it from the cache */
    int deferred;    /* queued: no outputs yet; its failure comes from flush() */
};

struct sql_backend {
    const char *name;
    int (*open)(struct sql_conn *c, const char *target, struct error *err);
    void (*close)(struct sql_conn *c);
    /*
     * Prepare st->text (st->param_count parameters) and fill st->modes;
     * cols[i] names the column of table that parameter i is written into,
     * or NULL (table is NULL for reads).
     */
    int (*prepare)(struct sql_conn *c, struct sql_stmt *st, const char *table,
                   const char *const *cols, struct error *err);
    void (*finalize)(struct sql_conn *c, struct sql_stmt *st);
    int (*run)(struct sql_conn *c, struct sql_stmt *st, const struct sql_param *params,
               struct sql_result *res, struct error *err);
    int (*exec)(struct sql_conn *c, const char *sql, struct error *err);
    /*
     * Wait for the queued (deferred) writes. On failure *failed_index is the
     * transaction index of the write the database refused, or -1. NULL for
     * a backend that never defers.
     */
    int (*flush)(struct sql_conn *c, int64_t *failed_index, struct error *err);
};

struct sql_conn {
    const struct sql_backend *backend;
    enum sql_kind kind;
    void *db; /* sqlite3 * or PGconn *, owned by the backend */
    struct sql_stmt cache[SQL_CACHE_COUNT];
    uint64_t tick;
    unsigned epoch;       /* pg: bumped at each reconnect; older statements are gone */
    unsigned stmt_seq;    /* pg: for statement names */
    int in_txn;           /* between sql_begin() and sql_commit()/sql_rollback() */
    int txn_failed;       /* a call failed inside the transaction */
    int closing;          /* sql_close() runs: statements need no server-side clean-up */
    int updating;         /* sql_update() runs: the write is an UPDATE, not an upsert */
    int64_t txn_writes;   /* upserts and deletes so far in the transaction */
    int64_t failed_write; /* the index of the write the database refused, or -1 */
    int64_t queued_count; /* deferred writes not yet flushed */
    int64_t queued_first; /* the transaction index of the first of them */
    struct buf text;      /* the statement being built */
    struct buf scratch;   /* backends: a cell's converted text */
};

extern const struct sql_backend sql_backend_sqlite;
extern const struct sql_backend sql_backend_pg;

/* Base64 (RFC 4648, padded) of len bytes: malloc()ed, NUL-terminated. */
char *sql_base64_encode(const unsigned char *data, size_t len);

/* Decode base64 text; returns 0 and a malloc()ed *out of *out_len bytes, or -1 if not base64. */
int sql_base64_decode(const char *text, size_t len, unsigned char **out, size_t *out_len);

/* Parse text as JSON; when it is not JSON, a JSON string of it. Never NULL. */
struct cJSON *sql_json_or_string(const char *text, size_t len);

/* A 64-bit integer as JSON: a number within +-2^53, else a string of its digits. */
struct cJSON *sql_json_int(int64_t v);

/* Whether a database text is a number that a double keeps exactly (<= 15 digits). */
int sql_numeric_fits_double(const char *text);

/* Copy text into a malloc()ed string without its newlines (one-line messages). */
void sql_message_line(char *out, size_t out_len, const char *text);

#endif
