/* SPDX-License-Identifier: MIT */

/*
 * The SQLite backend of sql.h: a database file someone else owns, written
 * and read through statements that sql.c builds and caches. SQLite is
 * dynamically typed, so a cell maps by its storage class, refined by the
 * column's declared type where one says more (BOOLEAN 0/1 -> true/false,
 * JSON text -> parsed JSON); a parameter written into a column declared
 * BLOB or JSON is converted by the mode prepare() finds in the table's
 * declared types. The file's journal mode and pragmas are its owner's; this
 * file changes none of them but the busy timeout.
 */

#include "sql/sql.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include "sql/sql_int.h"

/* How long a statement waits for another writer's lock before SQLITE_BUSY. */
#define SQLITE_BUSY_TIMEOUT_MS 1000
/* The longest cell kept as text (a key, a watermark, a RETURNING value). */
#define SQLITE_CELL_MAX_LEN ((size_t)1 << 30)

/* A cell's declared type, as far as it changes the JSON. */
enum decl {
    DECL_OTHER = 0,
    DECL_BOOL,
    DECL_JSON,
};

static enum error_kind
kind_of(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_NOMEM:
    case SQLITE_INTERRUPT:
    case SQLITE_PROTOCOL:
        return ERROR_TRANSIENT;
    default:
        return ERROR_PERMANENT;
    }
}

static int
fail(struct sql_conn *c, int rc, struct error *err)
{
    return error_set(err, kind_of(rc), "%s", sqlite3_errmsg(c->db));
}

static int
sqlite_open(struct sql_conn *c, const char *target, struct error *err)
{
    sqlite3 *db = NULL;
    int rc;

    /* No SQLITE_OPEN_CREATE: a missing file is a wrong path, not an empty database. */
    rc = sqlite3_open_v2(target, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        error_set(err, kind_of(rc) == ERROR_TRANSIENT ? ERROR_TRANSIENT : ERROR_PERMANENT,
                  "open sqlite %s: %s", target, db != NULL ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close_v2(db);
        return -1;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, SQLITE_BUSY_TIMEOUT_MS);
    c->db = db;
    return 0;
}

static void
sqlite_close(struct sql_conn *c)
{
    sqlite3_close_v2(c->db);
    c->db = NULL;
}

static enum sql_param_mode
mode_of_decl(const char *decl)
{
    if (decl == NULL)
        return SQL_MODE_PLAIN;
    if (strcasestr(decl, "BLOB") != NULL)
        return SQL_MODE_BYTES;
    if (strcasestr(decl, "JSON") != NULL)
        return SQL_MODE_JSON;
    return SQL_MODE_PLAIN;
}

/* The mode of each parameter from the declared types of the columns it is written into. */
static int
find_modes(struct sql_conn *c, struct sql_stmt *st, const char *table, const char *const *cols,
           struct error *err)
{
    const char *dot = strchr(table, '.');
    sqlite3_stmt *q = NULL;
    int rc;

    rc = sqlite3_prepare_v2(c->db,
                            dot != NULL
                                ? "SELECT type FROM pragma_table_info(?1, ?2) WHERE name = ?3"
                                : "SELECT type FROM pragma_table_info(?1) WHERE name = ?3",
                            -1, &q, NULL);
    if (rc != SQLITE_OK)
        return fail(c, rc, err);
    if (dot != NULL) {
        sqlite3_bind_text(q, 1, dot + 1, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, table, (int)(dot - table), SQLITE_STATIC);
    } else {
        sqlite3_bind_text(q, 1, table, -1, SQLITE_STATIC);
    }
    for (int i = 0; i < st->param_count; i++) {
        if (cols[i] == NULL)
            continue;
        sqlite3_bind_text(q, 3, cols[i], -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW)
            st->modes[i] = (unsigned char)mode_of_decl((const char *)sqlite3_column_text(q, 0));
        sqlite3_reset(q);
    }
    sqlite3_finalize(q);
    return 0;
}

static int
sqlite_prepare(struct sql_conn *c, struct sql_stmt *st, const char *table, const char *const *cols,
               struct error *err)
{
    sqlite3_stmt *s = NULL;
    int rc;

    rc = sqlite3_prepare_v3(c->db, st->text, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
    if (rc != SQLITE_OK)
        return fail(c, rc, err);
    if (NEVER(sqlite3_bind_parameter_count(s) != st->param_count)) {
        sqlite3_finalize(s);
        return error_set(err, ERROR_INTERNAL, "sqlite: the statement's parameters do not match");
    }
    st->handle = s;
    if (table != NULL && cols != NULL && find_modes(c, st, table, cols, err) == -1) {
        sqlite3_finalize(s);
        st->handle = NULL;
        return -1;
    }
    return 0;
}

static void
sqlite_finalize(struct sql_conn *c, struct sql_stmt *st)
{
    (void)c;
    sqlite3_finalize(st->handle);
    st->handle = NULL;
}

static void
bind(sqlite3_stmt *s, const struct sql_param *params, int n)
{
    for (int i = 0; i < n; i++) {
        const struct sql_param *p = &params[i];

        /* SQLITE_STATIC: the values outlive the step; sql.c frees them after run(). */
        switch (p->type) {
        case SQL_PARAM_NULL:
            sqlite3_bind_null(s, i + 1);
            break;
        case SQL_PARAM_INT:
        case SQL_PARAM_BOOL:
            sqlite3_bind_int64(s, i + 1, p->i);
            break;
        case SQL_PARAM_DOUBLE:
            sqlite3_bind_double(s, i + 1, p->d);
            break;
        case SQL_PARAM_TEXT:
            sqlite3_bind_text64(s, i + 1, p->text, p->len, SQLITE_STATIC, SQLITE_UTF8);
            break;
        case SQL_PARAM_BLOB:
            sqlite3_bind_blob64(s, i + 1, p->text, p->len, SQLITE_STATIC);
            break;
        }
    }
}

static enum decl
decl_of(sqlite3_stmt *s, int col)
{
    const char *d = sqlite3_column_decltype(s, col);

    if (d == NULL)
        return DECL_OTHER;
    if (strncasecmp(d, "BOOL", 4) == 0)
        return DECL_BOOL;
    if (strcasestr(d, "JSON") != NULL)
        return DECL_JSON;
    return DECL_OTHER;
}

static cJSON *
cell(sqlite3_stmt *s, int col, enum decl decl)
{
    const char *text;
    cJSON *v = NULL;
    double d;

    switch (sqlite3_column_type(s, col)) {
    case SQLITE_INTEGER:
        if (decl == DECL_BOOL)
            return cJSON_CreateBool(sqlite3_column_int64(s, col) != 0);
        return sql_json_int(sqlite3_column_int64(s, col));
    case SQLITE_FLOAT:
        d = sqlite3_column_double(s, col);
        v = isfinite(d) ? cJSON_CreateNumber(d)
                        : cJSON_CreateString(d > 0 ? "Infinity" : "-Infinity");
        break;
    case SQLITE_TEXT:
        text = (const char *)sqlite3_column_text(s, col);
        if (decl == DECL_JSON)
            return sql_json_or_string(text, (size_t)sqlite3_column_bytes(s, col));
        v = cJSON_CreateString(text);
        break;
    case SQLITE_BLOB: {
        char *b64 =
            sql_base64_encode(sqlite3_column_blob(s, col), (size_t)sqlite3_column_bytes(s, col));

        v = cJSON_CreateString(b64);
        free(b64);
        break;
    }
    default:
        v = cJSON_CreateNull();
        break;
    }
    if (v == NULL)
        abort(); /* cJSON ran out of memory; xmalloc's rule applies */
    return v;
}

/*
 * A cell as watermark text: the form param_key() in sql.c binds back to the
 * same value (integers in digits, reals as %.17g, text as is). Returns 0,
 * or -1 for NULL.
 */
static int
cell_text(sqlite3_stmt *s, int col, struct buf *out)
{
    char num[40];
    int rc = 0;

    buf_reset(out);
    switch (sqlite3_column_type(s, col)) {
    case SQLITE_INTEGER:
        (void)snprintf(num, sizeof(num), "%" PRId64, (int64_t)sqlite3_column_int64(s, col));
        rc = buf_puts(out, num);
        break;
    case SQLITE_FLOAT:
        (void)snprintf(num, sizeof(num), "%.17g", sqlite3_column_double(s, col));
        rc = buf_puts(out, num);
        break;
    case SQLITE_NULL:
        return -1;
    default: /* TEXT; a BLOB key cannot round-trip and compares as its bytes */
        rc = buf_append(out, sqlite3_column_blob(s, col), (size_t)sqlite3_column_bytes(s, col));
        break;
    }
    return rc == 0 ? 0 : -1;
}

static int
find_column(sqlite3_stmt *s, const char *name)
{
    if (name == NULL)
        return -1;
    for (int i = 0; i < sqlite3_column_count(s); i++) {
        if (strcmp(sqlite3_column_name(s, i), name) == 0)
            return i;
    }
    return -2;
}

/* The per-page facts about the result's columns, found at the first row. */
struct page {
    int ncols;
    enum decl *decls;
    int mark_idx[2];
    int mark_null[2]; /* the last row's mark cell is NULL */
    struct buf mark[2];
};

static int
page_start(sqlite3_stmt *s, struct page *pg, const struct sql_result *res, struct error *err)
{
    pg->ncols = sqlite3_column_count(s);
    pg->decls = xcalloc(pg->ncols > 0 ? (size_t)pg->ncols : 1, sizeof(*pg->decls));
    for (int i = 0; i < pg->ncols; i++)
        pg->decls[i] = decl_of(s, i);
    for (int m = 0; m < 2; m++) {
        pg->mark_idx[m] = find_column(s, res->mark_col[m]);
        if (pg->mark_idx[m] == -2)
            return error_set(err, ERROR_PERMANENT, "the result has no column \"%s\"",
                             res->mark_col[m]);
    }
    return 0;
}

static void
take_row(sqlite3_stmt *s, struct page *pg, struct sql_result *res)
{
    if (res->want_first && res->row_count == 1 && sqlite3_column_type(s, 0) != SQLITE_NULL) {
        struct buf first;

        buf_init(&first, SQLITE_CELL_MAX_LEN);
        if (cell_text(s, 0, &first) == 0)
            res->first = buf_take(&first);
        buf_fini(&first);
    }
    for (int m = 0; m < 2; m++) {
        if (pg->mark_idx[m] >= 0)
            pg->mark_null[m] = cell_text(s, pg->mark_idx[m], &pg->mark[m]) == -1;
    }
    if (res->want_rows) {
        cJSON *row = cJSON_CreateObject();

        if (row == NULL)
            abort();
        for (int i = 0; i < pg->ncols; i++)
            cJSON_AddItemToObject(row, sqlite3_column_name(s, i), cell(s, i, pg->decls[i]));
        cJSON_AddItemToArray(res->rows, row);
    }
}

static int
step_all(struct sql_conn *c, sqlite3_stmt *s, struct sql_result *res, struct error *err)
{
    struct page pg = {0};
    int rc, out = 0;

    for (int m = 0; m < 2; m++)
        buf_init(&pg.mark[m], SQLITE_CELL_MAX_LEN);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        res->row_count++;
        if (res->row_count == 1 && page_start(s, &pg, res, err) == -1) {
            out = -1;
            break;
        }
        take_row(s, &pg, res);
    }
    if (out == 0 && rc != SQLITE_DONE)
        out = fail(c, rc, err);
    for (int m = 0; m < 2; m++) {
        if (out == 0 && res->row_count > 0 && pg.mark_idx[m] >= 0 && !pg.mark_null[m])
            res->mark[m] = pg.mark[m].len > 0 ? buf_take(&pg.mark[m]) : xstrdup("");
        buf_fini(&pg.mark[m]);
    }
    free(pg.decls);
    return out;
}

static int
sqlite_run(struct sql_conn *c, struct sql_stmt *st, const struct sql_param *params,
           struct sql_result *res, struct error *err)
{
    sqlite3_stmt *s = st->handle;
    int rc;

    bind(s, params, st->param_count);
    if (res->want_rows) {
        res->rows = cJSON_CreateArray();
        if (res->rows == NULL)
            abort();
    }
    rc = step_all(c, s, res, err);
    if (rc == 0 && !sqlite3_stmt_readonly(s))
        res->changes = sqlite3_changes(c->db);
    sqlite3_reset(s);
    if (rc == -1) {
        cJSON_Delete(res->rows);
        res->rows = NULL;
        free(res->first);
        res->first = NULL;
    }
    return rc;
}

static int
sqlite_exec(struct sql_conn *c, const char *sql, struct error *err)
{
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);

    return rc == SQLITE_OK ? 0 : fail(c, rc, err);
}

const struct sql_backend sql_backend_sqlite = {
    .name = "sqlite",
    .open = sqlite_open,
    .close = sqlite_close,
    .prepare = sqlite_prepare,
    .finalize = sqlite_finalize,
    .run = sqlite_run,
    .exec = sqlite_exec,
    .flush = NULL, /* every call runs to completion */
};
