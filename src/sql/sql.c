/* SPDX-License-Identifier: MIT */

/*
 * The backend-independent half of sql.h: checking and quoting identifiers,
 * building each statement's text, the per-connection statement cache, JSON
 * to parameters, and the transaction rule (a failed call fails the
 * transaction). The backends, sql_sqlite.c and sql_pg.c, only prepare, bind,
 * run and convert result cells; neither builds SQL.
 */

#include "sql/sql.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include "sql/sql_int.h"

/* PostgreSQL truncates longer names (NAMEDATALEN - 1); refuse them instead. */
#define SQL_IDENT_MAX_LEN 63
/* A statement text longer than this is refused (a runaway query in a config). */
#define SQL_TEXT_MAX_LEN ((size_t)1024 * 1024)
/* A backend's scratch text: the largest single cell converted (a bytea, a long text). */
#define SQL_SCRATCH_MAX_LEN ((size_t)1 << 30)
/* Rows per page and columns per written row. */
#define SQL_LIMIT_MAX   1000000
#define SQL_COLUMNS_MAX 1000
/* Rows of up to this many columns bind from the stack. */
#define SQL_STACK_PARAMS 32

/* ---- identifiers and statement text ---- */

static int
ident_ok(const char *s, size_t len)
{
    if (len == 0 || len > SQL_IDENT_MAX_LEN)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch < 0x20 || ch == 0x7f)
            return 0;
    }
    return 1;
}

/* Append "name" with embedded quotes doubled. Returns 0, or -1 when the buffer is full. */
static int
put_ident(struct buf *b, const char *s, size_t len)
{
    const char *q;

    if (buf_append(b, "\"", 1) == -1)
        return -1;
    while ((q = memchr(s, '"', len)) != NULL) {
        size_t n = (size_t)(q - s) + 1;

        if (buf_append(b, s, n) == -1 || buf_append(b, "\"", 1) == -1)
            return -1;
        s += n;
        len -= n;
    }
    return buf_append(b, s, len) == -1 || buf_append(b, "\"", 1) == -1 ? -1 : 0;
}

/* Whether table is "name" or "schema.name" with both parts quotable. */
static int
table_name_ok(const char *table)
{
    const char *dot = strchr(table, '.');

    if (dot == NULL)
        return ident_ok(table, strlen(table));
    return ident_ok(table, (size_t)(dot - table)) && ident_ok(dot + 1, strlen(dot + 1));
}

static int
column_name_ok(const char *name)
{
    return name != NULL && ident_ok(name, strlen(name));
}

static int
put_table(struct buf *b, const char *table)
{
    const char *dot = strchr(table, '.');

    if (dot == NULL)
        return put_ident(b, table, strlen(table));
    if (put_ident(b, table, (size_t)(dot - table)) == -1 || buf_append(b, ".", 1) == -1)
        return -1;
    return put_ident(b, dot + 1, strlen(dot + 1));
}

static int
put_col(struct buf *b, const char *name)
{
    return put_ident(b, name, strlen(name));
}

/* A placeholder: ?N for SQLite, $N for PostgreSQL (both numbered from 1). */
static int
put_param(struct sql_conn *c, int n)
{
    return buf_printf(&c->text, c->kind == SQL_SQLITE ? "?%d" : "$%d", n);
}

/* The query's text without trailing blanks and semicolons, which a subquery cannot hold. */
static size_t
query_len(const char *q)
{
    size_t len = strlen(q);

    while (len > 0 && (q[len - 1] == ';' || q[len - 1] == ' ' || q[len - 1] == '\t' ||
                       q[len - 1] == '\n' || q[len - 1] == '\r'))
        len--;
    return len;
}

/* What reads select from: the table, or the query as a subquery. */
static int
put_source(struct sql_conn *c, const struct sql_table *t)
{
    if (t->query == NULL)
        return put_table(&c->text, t->table);
    if (buf_puts(&c->text, "(") == -1 || buf_append(&c->text, t->query, query_len(t->query)) == -1)
        return -1;
    return buf_puts(&c->text, ") AS \"q\"");
}

int
sql_table_check(const struct sql_table *t, struct error *err)
{
    cJSON *v;

    if (t == NULL || t->table == NULL || t->key == NULL)
        return error_set(err, ERROR_INVALID, "sql table: table and key are required");
    if (!table_name_ok(t->table))
        return error_set(
            err, ERROR_INVALID,
            "sql table \"%s\": not a valid name (1 to 63 bytes per part, no control characters)",
            t->table);
    if (!column_name_ok(t->key))
        return error_set(err, ERROR_INVALID, "sql table %s: key \"%s\" is not a valid column name",
                         t->table, t->key);
    if (t->updated_at != NULL && !column_name_ok(t->updated_at))
        return error_set(err, ERROR_INVALID,
                         "sql table %s: updated_at \"%s\" is not a valid column name", t->table,
                         t->updated_at);
    if (t->soft_delete != NULL && !column_name_ok(t->soft_delete))
        return error_set(err, ERROR_INVALID,
                         "sql table %s: soft_delete \"%s\" is not a valid column name", t->table,
                         t->soft_delete);
    if (t->soft_delete_value != NULL) {
        v = cJSON_Parse(t->soft_delete_value);
        if (v == NULL)
            return error_set(err, ERROR_INVALID, "sql table %s: soft_delete_value is not JSON",
                             t->table);
        cJSON_Delete(v);
    }
    if (t->query != NULL && query_len(t->query) == 0)
        return error_set(err, ERROR_INVALID, "sql table %s: the query is empty", t->table);
    return 0;
}

/* The statement text did not fit, or a name in t did not quote. */
static int
text_failed(struct sql_conn *c, const struct sql_table *t, struct error *err)
{
    if (c->text.len + 64 >= c->text.max_len)
        return error_set(err, ERROR_INVALID, "sql table %s: the statement is too long", t->table);
    return sql_table_check(t, err) == -1
               ? -1
               : error_set(err, ERROR_INTERNAL, "sql table %s: cannot build the statement",
                           t->table);
}

/* ---- the statement cache ---- */

static uint64_t
hash_text(const char *s, size_t len)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a */

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static void
stmt_drop(struct sql_conn *c, struct sql_stmt *st)
{
    if (st->text == NULL)
        return;
    c->backend->finalize(c, st);
    free(st->text);
    free(st->modes);
    memset(st, 0, sizeof(*st));
}

/* The cached statement for the text in c->text, prepared in this session; or NULL. */
static struct sql_stmt *
stmt_find(struct sql_conn *c, uint64_t h)
{
    const char *text = buf_str(&c->text);

    for (size_t i = 0; i < SQL_CACHE_COUNT; i++) {
        struct sql_stmt *st = &c->cache[i];

        if (st->text != NULL && st->hash == h && strcmp(st->text, text) == 0 &&
            st->epoch == c->epoch) {
            st->used = ++c->tick;
            return st;
        }
    }
    return NULL;
}

/*
 * Prepare the text in c->text into the free or least recently used slot
 * (dropping a copy of an earlier session). table and cols say which column
 * each parameter is written into (see sql_int.h). No writes may be queued.
 */
static struct sql_stmt *
stmt_new(struct sql_conn *c, uint64_t h, int param_count, const char *table,
         const char *const *cols, struct error *err)
{
    const char *text = buf_str(&c->text);
    struct sql_stmt *slot = NULL;

    for (size_t i = 0; i < SQL_CACHE_COUNT; i++) {
        struct sql_stmt *st = &c->cache[i];

        if (st->text != NULL && st->hash == h && strcmp(st->text, text) == 0) {
            slot = st; /* prepared in a lost session */
            break;
        }
        if (slot == NULL || (slot->text != NULL && (st->text == NULL || st->used < slot->used)))
            slot = st;
    }
    stmt_drop(c, slot);
    slot->text = xstrndup(text, c->text.len);
    slot->hash = h;
    slot->param_count = param_count;
    slot->modes = xcalloc(param_count > 0 ? (size_t)param_count : 1, 1);
    if (c->backend->prepare(c, slot, table, cols, err) == -1) {
        free(slot->text);
        free(slot->modes);
        memset(slot, 0, sizeof(*slot));
        return NULL;
    }
    slot->used = ++c->tick;
    return slot;
}

/* For calls that queue nothing (nothing is queued when they start). */
static struct sql_stmt *
stmt_get(struct sql_conn *c, int param_count, const char *table, const char *const *cols,
         struct error *err)
{
    uint64_t h = hash_text(buf_str(&c->text), c->text.len);
    struct sql_stmt *st = stmt_find(c, h);

    return st != NULL ? st : stmt_new(c, h, param_count, table, cols, err);
}

/* ---- parameters ---- */

static void
params_release(struct sql_param *p, int n)
{
    for (int i = 0; i < n; i++) {
        free(p[i].owned);
        p[i].owned = NULL;
    }
}

static void
param_text(struct sql_param *p, const char *text)
{
    p->type = SQL_PARAM_TEXT;
    p->text = text;
    p->len = strlen(text);
}

/* Whether text is an int64 exactly as printed ("-12", not "012" or "+1"). */
static int
canonical_int(const char *text, int64_t *out)
{
    const char *d = text[0] == '-' ? text + 1 : text;
    char *end;
    long long v;

    if (d[0] < '0' || d[0] > '9' || (d[0] == '0' && (d[1] != '\0' || d != text)))
        return 0;
    for (const char *s = d; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return 0;
    }
    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return 0;
    *out = v;
    return 1;
}

/* Whether text is a double exactly as the SQLite backend prints one (%.17g). */
static int
canonical_double(const char *text, double *out)
{
    char again[40];
    char *end;
    double d;

    if (strpbrk(text, ".e") == NULL || strlen(text) >= sizeof(again))
        return 0;
    errno = 0;
    d = strtod(text, &end);
    if (errno != 0 || *end != '\0' || !isfinite(d))
        return 0;
    (void)snprintf(again, sizeof(again), "%.17g", d);
    if (strcmp(again, text) != 0)
        return 0;
    *out = d;
    return 1;
}

/*
 * A key or watermark given as text. PostgreSQL casts the text to the
 * column's type. SQLite compares storage classes, and a column declared
 * without a type keeps numbers as numbers, so a text that is exactly a
 * printed number binds as that number (a TEXT column converts it back to
 * the same text before comparing).
 */
static void
param_key(struct sql_conn *c, struct sql_param *p, const char *text)
{
    memset(p, 0, sizeof(*p));
    param_text(p, text);
    if (c->kind != SQL_SQLITE)
        return;
    if (canonical_int(text, &p->i))
        p->type = SQL_PARAM_INT;
    else if (canonical_double(text, &p->d))
        p->type = SQL_PARAM_DOUBLE;
}

static void
param_json_text(struct sql_param *p, const cJSON *v)
{
    char *s = cJSON_PrintUnformatted(v);

    if (s == NULL)
        abort(); /* cJSON ran out of memory; xmalloc's rule applies */
    p->owned = xstrdup(s);
    cJSON_free(s);
    param_text(p, p->owned);
}

/* One row value, converted as the column's mode says (sql.h, "Writing binds"). */
static void
param_value(struct sql_param *p, const cJSON *v, enum sql_param_mode mode)
{
    memset(p, 0, sizeof(*p));
    if (v == NULL || cJSON_IsNull(v)) {
        p->type = SQL_PARAM_NULL;
        return;
    }
    if (mode == SQL_MODE_JSON) {
        param_json_text(p, v);
        return;
    }
    if (mode == SQL_MODE_BYTES && cJSON_IsString(v)) {
        unsigned char *bytes = NULL;
        size_t len = 0;

        if (sql_base64_decode(v->valuestring, strlen(v->valuestring), &bytes, &len) == 0) {
            p->type = SQL_PARAM_BLOB;
            p->owned = (char *)bytes;
            p->text = p->owned;
            p->len = len;
            return;
        }
    }
    if (cJSON_IsBool(v)) {
        p->type = SQL_PARAM_BOOL;
        p->i = cJSON_IsTrue(v) ? 1 : 0;
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;

        if (d == trunc(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0) {
            p->type = SQL_PARAM_INT;
            p->i = (int64_t)d;
        } else {
            p->type = SQL_PARAM_DOUBLE;
            p->d = d;
        }
    } else if (cJSON_IsString(v)) {
        param_text(p, v->valuestring);
    } else {
        param_json_text(p, v);
    }
}

/* ---- running ---- */

/* Every call ends here: a failure inside a transaction fails the transaction. */
static int
done(struct sql_conn *c, int rc)
{
    if (rc == -1 && c->in_txn)
        c->txn_failed = 1;
    return rc;
}

static int
guard(struct sql_conn *c, const struct sql_table *t, struct error *err)
{
    if (c->txn_failed)
        return error_set(err, ERROR_INTERNAL,
                         "sql: an earlier call of this transaction failed; call sql_rollback()");
    if (t != NULL && (t->table == NULL || t->key == NULL))
        return error_set(err, ERROR_INVALID, "sql table: table and key are required");
    return 0;
}

/*
 * Wait for the writes queued so far. When the database refused one, the
 * call at hand fails with its error, and c->failed_write names it.
 */
static int
settle(struct sql_conn *c, struct error *err)
{
    int64_t failed = -1;

    if (c->queued_count == 0)
        return 0;
    if (c->backend->flush(c, &failed, err) == 0)
        return 0;
    if (failed >= 0 && err->kind == ERROR_PERMANENT && c->failed_write < 0)
        c->failed_write = failed;
    return -1;
}

/* The start of a call that reads, or writes without queueing. */
static int
enter(struct sql_conn *c, const struct sql_table *t, struct error *err)
{
    return guard(c, t, err) == -1 || settle(c, err) == -1 ? -1 : 0;
}

static int
run(struct sql_conn *c, struct sql_stmt *st, struct sql_param *params, struct sql_result *res,
    struct error *err)
{
    int rc = c->backend->run(c, st, params, res, err);

    params_release(params, st->param_count);
    if (rc == -1 && res->stale)
        stmt_drop(c, st);
    return rc;
}

static void
result_fini(struct sql_result *res)
{
    cJSON_Delete(res->rows);
    free(res->first);
    free(res->mark[0]);
    free(res->mark[1]);
    memset(res, 0, sizeof(*res));
}

/* ---- the API ---- */

static const struct sql_backend *
backend_for(enum sql_kind kind)
{
    switch (kind) {
    case SQL_SQLITE:
        return &sql_backend_sqlite;
    case SQL_POSTGRES:
        return &sql_backend_pg;
    }
    return NULL;
}

int
sql_open(enum sql_kind kind, const char *target, struct sql_conn **out, struct error *err)
{
    const struct sql_backend *backend = backend_for(kind);
    struct sql_conn *c;

    if (backend == NULL)
        return error_set(err, ERROR_INVALID, "sql: unknown database kind %d", (int)kind);
    if (target == NULL || target[0] == '\0')
        return error_set(err, ERROR_INVALID, "sql: no %s database named", backend->name);
    c = xcalloc(1, sizeof(*c));
    c->backend = backend;
    c->kind = kind;
    c->failed_write = -1;
    buf_init(&c->text, SQL_TEXT_MAX_LEN);
    buf_init(&c->scratch, SQL_SCRATCH_MAX_LEN);
    if (backend->open(c, target, err) == -1) {
        buf_fini(&c->text);
        buf_fini(&c->scratch);
        free(c);
        return -1;
    }
    *out = c;
    return 0;
}

void
sql_close(struct sql_conn *c)
{
    if (c == NULL)
        return;
    sql_rollback(c);
    c->closing = 1;
    for (size_t i = 0; i < SQL_CACHE_COUNT; i++)
        stmt_drop(c, &c->cache[i]);
    c->backend->close(c);
    buf_fini(&c->text);
    buf_fini(&c->scratch);
    free(c);
}

enum sql_kind
sql_conn_kind(const struct sql_conn *c)
{
    return c->kind;
}

/* The WHERE, ORDER BY and LIMIT of a page read; fills params, returns their count or -1. */
static int
put_page(struct sql_conn *c, const struct sql_table *t, const struct sql_watermark *after,
         int incremental, struct sql_param *params)
{
    const char *ua = after != NULL ? after->updated_at : NULL;
    const char *key = after != NULL ? after->key : NULL;
    struct buf *b = &c->text;
    int n = 0, rc = 0;

    /*
     * Guarantee: an incremental read skips no row. The row comparison
     * (updated_at, key) > (w.updated_at, w.key) and ORDER BY (updated_at,
     * key) use the same order, so rows sharing the watermark's updated_at
     * and a greater key (later pages, or committed since) are still ahead.
     */
    if (incremental && ua != NULL && key != NULL) {
        rc |= buf_puts(b, " WHERE (") || put_col(b, t->updated_at) || buf_puts(b, ", ") ||
              put_col(b, t->key) || buf_puts(b, ") > (") || put_param(c, 1) || buf_puts(b, ", ") ||
              put_param(c, 2) || buf_puts(b, ")");
        param_key(c, &params[n++], ua);
        param_key(c, &params[n++], key);
    } else if (incremental && ua != NULL) {
        rc |= buf_puts(b, " WHERE ") || put_col(b, t->updated_at) || buf_puts(b, " >= ") ||
              put_param(c, 1);
        param_key(c, &params[n++], ua);
    } else if (incremental) {
        rc |= buf_puts(b, " WHERE ") || put_col(b, t->updated_at) || buf_puts(b, " IS NOT NULL");
    } else if (key != NULL) {
        rc |= buf_puts(b, " WHERE ") || put_col(b, t->key) || buf_puts(b, " > ") || put_param(c, 1);
        param_key(c, &params[n++], key);
    } else {
        rc |= buf_puts(b, " WHERE ") || put_col(b, t->key) || buf_puts(b, " IS NOT NULL");
    }
    rc |= buf_puts(b, " ORDER BY ");
    if (incremental)
        rc |= put_col(b, t->updated_at) || buf_puts(b, ", ");
    rc |= put_col(b, t->key) || buf_puts(b, " LIMIT ") || put_param(c, n + 1);
    return rc == 0 ? n : -1;
}

/*
 * SQLite's page after a watermark (w.updated_at, w.key), in two halves: the
 * rows that share the watermark's time and have a greater key, then the
 * later ones. SQLite seeks its (updated_at, key) index only by updated_at
 * for the row comparison put_page() writes, and steps over every row that
 * shares that time up to the key: a table whose rows were written in one
 * go (a backfill) made each page cost as much as all the pages before it.
 * Each half here is one seek; the same rows, in the same order.
 */
static int
put_split_page(struct sql_conn *c, const struct sql_table *t, const struct sql_watermark *after,
               struct sql_param *params)
{
    struct buf *b = &c->text;
    int rc = 0;

    rc |= buf_puts(b, "SELECT * FROM (SELECT * FROM ") || put_source(c, t) ||
          buf_puts(b, " WHERE ") || put_col(b, t->updated_at) || buf_puts(b, " = ?1 AND ") ||
          put_col(b, t->key) || buf_puts(b, " > ?2 ORDER BY ") || put_col(b, t->updated_at) ||
          buf_puts(b, ", ") || put_col(b, t->key) || buf_puts(b, " LIMIT ?3) UNION ALL ");
    rc |= buf_puts(b, "SELECT * FROM (SELECT * FROM ") || put_source(c, t) ||
          buf_puts(b, " WHERE ") || put_col(b, t->updated_at) || buf_puts(b, " > ?1 ORDER BY ") ||
          put_col(b, t->updated_at) || buf_puts(b, ", ") || put_col(b, t->key) ||
          buf_puts(b, " LIMIT ?3)");
    rc |= buf_puts(b, " ORDER BY ") || put_col(b, t->updated_at) || buf_puts(b, ", ") ||
          put_col(b, t->key) || buf_puts(b, " LIMIT ?3");
    param_key(c, &params[0], after->updated_at);
    param_key(c, &params[1], after->key);
    return rc == 0 ? 2 : -1;
}

/* What a page read asks for (sql_read_page()'s arguments). */
struct page_ask {
    const struct sql_watermark *after;
    int incremental;
    size_t limit;
};

static int
read_page(struct sql_conn *c, const struct sql_table *t, const struct page_ask *ask, cJSON **rows,
          struct sql_watermark *next, struct error *err)
{
    const struct sql_watermark *after = ask->after;
    int incremental = ask->incremental;
    size_t limit = ask->limit;
    struct sql_param params[3];
    struct sql_result res = {0};
    struct sql_stmt *st;
    int n;

    if (limit == 0 || limit > SQL_LIMIT_MAX)
        return error_set(err, ERROR_INVALID, "sql read %s: a page holds 1 to %d rows", t->table,
                         SQL_LIMIT_MAX);
    if (incremental && t->updated_at == NULL)
        return error_set(err, ERROR_INVALID,
                         "sql read %s: an incremental read needs an updated_at column", t->table);
    buf_reset(&c->text);
    if (!column_name_ok(t->key) || (incremental && !column_name_ok(t->updated_at)) ||
        (t->query == NULL && !table_name_ok(t->table)))
        return text_failed(c, t, err);
    if (c->kind == SQL_SQLITE && incremental && after != NULL && after->updated_at != NULL &&
        after->key != NULL)
        n = put_split_page(c, t, after, params);
    else if (buf_puts(&c->text, "SELECT * FROM ") == -1 || put_source(c, t) == -1)
        n = -1;
    else
        n = put_page(c, t, after, incremental, params);
    if (n == -1)
        return text_failed(c, t, err);
    memset(&params[n], 0, sizeof(params[n]));
    params[n].type = SQL_PARAM_INT;
    params[n].i = (int64_t)limit;
    st = stmt_get(c, n + 1, NULL, NULL, err);
    if (st == NULL)
        return error_wrap(err, "sql read %s", t->table);
    res.want_rows = 1;
    res.mark_col[0] = incremental ? t->updated_at : NULL;
    res.mark_col[1] = t->key;
    if (run(c, st, params, &res, err) == -1)
        return error_wrap(err, "sql read %s", t->table);
    if (res.row_count > 0 && res.mark[1] == NULL) {
        result_fini(&res);
        return error_set(err, ERROR_PERMANENT, "sql read %s: a row has no %s (NULL)", t->table,
                         t->key);
    }
    *rows = res.rows;
    if (res.row_count > 0) {
        next->updated_at = res.mark[0];
        next->key = res.mark[1];
    } else {
        next->updated_at = after != NULL ? xstrdup(after->updated_at) : NULL;
        next->key = after != NULL ? xstrdup(after->key) : NULL;
    }
    free(res.first);
    return (int)res.row_count;
}

int
sql_read_page(struct sql_conn *c, const struct sql_table *t, const struct sql_watermark *after,
              int incremental, size_t limit, cJSON **rows, struct sql_watermark *next,
              struct error *err)
{
    const struct page_ask ask = {after, incremental, limit};

    if (enter(c, t, err) == -1)
        return done(c, -1);
    return done(c, read_page(c, t, &ask, rows, next, err));
}

int
sql_count(struct sql_conn *c, const struct sql_table *t, int64_t *n, struct error *err)
{
    struct sql_result res = {0};
    struct sql_stmt *st;
    char *end = NULL;
    long long v;

    if (enter(c, t, err) == -1)
        return done(c, -1);
    buf_reset(&c->text);
    if ((t->query == NULL && !table_name_ok(t->table)) ||
        buf_puts(&c->text, "SELECT count(*) FROM ") || put_source(c, t))
        return done(c, text_failed(c, t, err));
    st = stmt_get(c, 0, NULL, NULL, err);
    res.want_first = 1;
    if (st == NULL || run(c, st, NULL, &res, err) == -1)
        return done(c, error_wrap(err, "sql count %s", t->table));
    errno = 0;
    v = res.first != NULL ? strtoll(res.first, &end, 10) : 0;
    if (res.first == NULL || errno != 0 || *end != '\0') {
        result_fini(&res);
        return done(c, error_set(err, ERROR_INTERNAL, "sql count %s: not a count", t->table));
    }
    result_fini(&res);
    *n = v;
    return done(c, 0);
}

static int
get_row(struct sql_conn *c, const struct sql_table *t, const char *key, cJSON **row,
        struct error *err)
{
    struct sql_param params[1];
    struct sql_result res = {0};
    struct sql_stmt *st;

    buf_reset(&c->text);
    if (!column_name_ok(t->key) || (t->query == NULL && !table_name_ok(t->table)) ||
        buf_puts(&c->text, "SELECT * FROM ") || put_source(c, t) || buf_puts(&c->text, " WHERE ") ||
        put_col(&c->text, t->key) || buf_puts(&c->text, " = ") || put_param(c, 1))
        return text_failed(c, t, err);
    param_key(c, &params[0], key);
    st = stmt_get(c, 1, NULL, NULL, err);
    res.want_rows = 1;
    if (st == NULL || run(c, st, params, &res, err) == -1)
        return error_wrap(err, "sql get %s %s", t->table, key);
    if (res.row_count == 0) {
        result_fini(&res);
        return 0;
    }
    *row = cJSON_DetachItemFromArray(res.rows, 0);
    result_fini(&res);
    return 1;
}

int
sql_get(struct sql_conn *c, const struct sql_table *t, const char *key, cJSON **row,
        struct error *err)
{
    if (enter(c, t, err) == -1)
        return done(c, -1);
    if (key == NULL)
        return done(c, error_set(err, ERROR_INVALID, "sql get %s: no key", t->table));
    return done(c, get_row(c, t, key, row, err));
}

static int
exec_txn(struct sql_conn *c, const char *sql, struct error *err)
{
    return c->backend->exec(c, sql, err);
}

int
sql_begin(struct sql_conn *c, struct error *err)
{
    if (c->in_txn)
        return error_set(err, ERROR_INTERNAL, "sql begin: a transaction is already open");
    if (exec_txn(c, c->kind == SQL_SQLITE ? "BEGIN IMMEDIATE" : "BEGIN", err) == -1)
        return error_wrap(err, "sql begin");
    c->in_txn = 1;
    c->txn_failed = 0;
    c->txn_writes = 0;
    c->failed_write = -1;
    return 0;
}

int
sql_commit(struct sql_conn *c, struct error *err)
{
    if (!c->in_txn)
        return error_set(err, ERROR_INTERNAL, "sql commit: no transaction is open");
    if (guard(c, NULL, err) == -1)
        return -1;
    if (settle(c, err) == -1 || exec_txn(c, "COMMIT", err) == -1) {
        c->txn_failed = 1;
        return error_wrap(err, "sql commit");
    }
    c->in_txn = 0;
    return 0;
}

void
sql_rollback(struct sql_conn *c)
{
    struct error ignored = {0};
    int64_t failed = -1;

    if (!c->in_txn)
        return;
    /* Results of queued writes come first; their errors no longer matter. */
    if (c->queued_count > 0)
        (void)c->backend->flush(c, &failed, &ignored);
    /* A lost connection took its transaction with it; the next call reconnects. */
    (void)exec_txn(c, "ROLLBACK", &ignored);
    c->in_txn = 0;
    c->txn_failed = 0;
}

int64_t
sql_txn_failed_write(const struct sql_conn *c)
{
    return c->failed_write;
}

int
sql_exec(struct sql_conn *c, const char *sql, struct error *err)
{
    if (enter(c, NULL, err) == -1)
        return done(c, -1);
    return done(c, c->backend->exec(c, sql, err));
}

/* ON CONFLICT (key) DO UPDATE SET every other column = excluded.column. */
static int
put_conflict(struct sql_conn *c, const struct sql_table *t, const char *const *cols, int n)
{
    struct buf *b = &c->text;
    int rc = buf_puts(b, " ON CONFLICT (") || put_col(b, t->key) || buf_puts(b, ") DO UPDATE SET ");
    int set = 0;

    for (int i = 0; i < n; i++) {
        if (strcmp(cols[i], t->key) == 0)
            continue;
        rc |= buf_puts(b, set++ ? ", " : "") || put_col(b, cols[i]) ||
              buf_puts(b, " = excluded.") || put_col(b, cols[i]);
    }
    /* A row of only the key still returns it: a no-op update, not DO NOTHING. */
    if (set == 0)
        rc |= put_col(b, t->key) || buf_puts(b, " = excluded.") || put_col(b, t->key);
    return rc;
}

/*
 * UPDATE t SET every other column WHERE key = its parameter, RETURNING the
 * key (no row: the row is gone). Parameters follow the row's order.
 */
static int
put_update(struct sql_conn *c, const struct sql_table *t, const char *const *cols, int n)
{
    struct buf *b = &c->text;
    int rc = buf_puts(b, "UPDATE ") || put_table(b, t->table) || buf_puts(b, " SET ");
    int set = 0, key = 0;

    for (int i = 0; i < n; i++) {
        if (strcmp(cols[i], t->key) == 0) {
            key = i + 1;
            continue;
        }
        rc |= buf_puts(b, set++ ? ", " : "") || put_col(b, cols[i]) || buf_puts(b, " = ") ||
              put_param(c, i + 1);
    }
    if (set == 0) /* only the key: a no-op that still says whether the row is there */
        rc |= put_col(b, t->key) || buf_puts(b, " = ") || put_param(c, key);
    rc |= buf_puts(b, " WHERE ") || put_col(b, t->key) || buf_puts(b, " = ") || put_param(c, key) ||
          buf_puts(b, " RETURNING ") || put_col(b, t->key);
    return rc == 0 ? 0 : -1;
}

/*
 * The INSERT of an upsert: columns in the row's order, the key's conflict
 * clause when the row holds the key, RETURNING the key. (With c->updating,
 * the UPDATE of sql_update().)
 */
static int
put_upsert(struct sql_conn *c, const struct sql_table *t, const char *const *cols, int n,
           int has_key)
{
    struct buf *b = &c->text;
    int rc;

    if (c->updating)
        return put_update(c, t, cols, n);
    rc = buf_puts(b, "INSERT INTO ") || put_table(b, t->table);

    if (n == 0)
        rc |= buf_puts(b, " DEFAULT VALUES");
    for (int i = 0; i < n; i++)
        rc |= buf_puts(b, i == 0 ? " (" : ", ") || put_col(b, cols[i]);
    for (int i = 0; i < n; i++)
        rc |= buf_puts(b, i == 0 ? ") VALUES (" : ", ") || put_param(c, i + 1);
    if (n > 0)
        rc |= buf_puts(b, ")");
    if (has_key)
        rc |= put_conflict(c, t, cols, n);
    rc |= buf_puts(b, " RETURNING ") || put_col(b, t->key);
    return rc == 0 ? 0 : -1;
}

/* A row taken apart for an upsert. */
struct row_cols {
    const char **cols;    /* column names, borrowed from the row */
    const cJSON **values; /* their values */
    int count;
    int has_key; /* the key is among them (not null) */
};

/* One write of a transaction, for telling whose failure it is. */
struct write {
    int64_t index; /* among the transaction's writes */
    int mine;      /* a failure is this write's own, not a queued one's */
};

/* The row's columns: a null key is left out (the database assigns one). Returns 0 or -1. */
static int
row_columns(const struct sql_table *t, const cJSON *row, struct row_cols *rc, struct error *err)
{
    rc->count = 0;
    rc->has_key = 0;
    for (const cJSON *v = row->child; v != NULL; v = v->next) {
        int is_key = strcmp(v->string, t->key) == 0;

        if (is_key && cJSON_IsNull(v))
            continue;
        if (!column_name_ok(v->string))
            return error_set(err, ERROR_PERMANENT, "column \"%s\" is not a valid name", v->string);
        rc->cols[rc->count] = v->string;
        rc->values[rc->count++] = v;
        rc->has_key |= is_key;
    }
    return 0;
}

/*
 * The prepared upsert for these columns. Preparing waits for the server, so
 * queued writes settle first; w->mine is 0 when that is what failed.
 */
static struct sql_stmt *
upsert_stmt(struct sql_conn *c, const struct sql_table *t, const struct row_cols *rc,
            struct write *w, struct error *err)
{
    struct sql_stmt *st;
    uint64_t h;

    buf_reset(&c->text);
    if (!table_name_ok(t->table) || !column_name_ok(t->key) ||
        put_upsert(c, t, rc->cols, rc->count, rc->has_key) == -1) {
        text_failed(c, t, err);
        return NULL;
    }
    h = hash_text(buf_str(&c->text), c->text.len);
    st = stmt_find(c, h);
    if (st != NULL)
        return st;
    if (settle(c, err) == -1) {
        w->mine = 0;
        return NULL;
    }
    return stmt_new(c, h, rc->count, t->table, rc->cols, err);
}

/* Bind and run (or queue) the upsert of row; see sql_upsert(). */
static int
upsert(struct sql_conn *c, const struct sql_table *t, const cJSON *row, char **key_out,
       struct write *w, struct error *err)
{
    const char *stack_cols[SQL_STACK_PARAMS] = {0};
    const cJSON *stack_values[SQL_STACK_PARAMS] = {0};
    struct sql_param params_stack[SQL_STACK_PARAMS];
    struct row_cols rc = {stack_cols, stack_values, 0, 0};
    struct sql_param *params = params_stack;
    struct sql_result res = {0};
    struct sql_stmt *st = NULL;
    int n = cJSON_GetArraySize(row), out = -1;

    if (n > SQL_COLUMNS_MAX)
        return error_set(err, ERROR_PERMANENT, "the row has %d columns; at most %d", n,
                         SQL_COLUMNS_MAX);
    if (n > SQL_STACK_PARAMS) {
        rc.cols = xcalloc((size_t)n, sizeof(const char *));
        rc.values = xcalloc((size_t)n, sizeof(const cJSON *));
        params = xcalloc((size_t)n, sizeof(*params));
    }
    if (row_columns(t, row, &rc, err) == 0)
        st = upsert_stmt(c, t, &rc, w, err);
    if (st == NULL)
        goto out;
    for (int i = 0; i < rc.count; i++)
        param_value(&params[i], rc.values[i], (enum sql_param_mode)st->modes[i]);
    res.want_first = key_out != NULL;
    res.may_defer = c->in_txn && key_out == NULL && c->backend->flush != NULL;
    res.write_index = w->index;
    if (run(c, st, params, &res, err) == -1)
        goto out;
    out = 0;
    if (res.deferred && c->queued_count >= SQL_PIPELINE_MAX && settle(c, err) == -1) {
        w->mine = 0;
        out = -1;
    }
    if (key_out != NULL) {
        *key_out = res.first;
        res.first = NULL;
    }
    result_fini(&res);
out:
    if (rc.cols != stack_cols) {
        free(rc.cols);
        free(rc.values);
        free(params);
    }
    return out;
}

int
sql_upsert(struct sql_conn *c, const struct sql_table *t, const cJSON *row, char **key_out,
           struct error *err)
{
    struct write w = {c->txn_writes, 1};

    if (guard(c, t, err) == -1)
        return done(c, -1);
    if (c->in_txn)
        c->txn_writes++;
    if (!cJSON_IsObject(row))
        return done(c, error_set(err, ERROR_PERMANENT, "sql upsert %s: the row is not an object",
                                 t->table));
    /* Only an upsert that returns nothing may be queued; one that does waits for the queue. */
    if (key_out != NULL && settle(c, err) == -1)
        return done(c, error_wrap(err, "sql upsert %s", t->table));
    if (upsert(c, t, row, key_out, &w, err) == -1) {
        if (w.mine && c->in_txn && err->kind == ERROR_PERMANENT && c->failed_write < 0)
            c->failed_write = w.index;
        return done(c, error_wrap(err, "sql upsert %s", t->table));
    }
    return done(c, 0);
}

int
sql_update(struct sql_conn *c, const struct sql_table *t, const cJSON *row, char **key_out,
           struct error *err)
{
    struct write w = {c->txn_writes, 1};
    char *key = NULL;
    int rc;

    if (guard(c, t, err) == -1)
        return done(c, -1);
    if (c->in_txn)
        c->txn_writes++;
    const cJSON *k = cJSON_IsObject(row) ? cJSON_GetObjectItemCaseSensitive(row, t->key) : NULL;

    if (!cJSON_IsString(k) && !cJSON_IsNumber(k))
        return done(c, error_set(err, ERROR_PERMANENT,
                                 "sql update %s: the row is not an object with its key", t->table));
    if (settle(c, err) == -1)
        return done(c, error_wrap(err, "sql update %s", t->table));
    c->updating = 1;
    rc = upsert(c, t, row, &key, &w, err);
    c->updating = 0;
    if (rc == -1) {
        if (w.mine && c->in_txn && err->kind == ERROR_PERMANENT && c->failed_write < 0)
            c->failed_write = w.index;
        return done(c, error_wrap(err, "sql update %s", t->table));
    }
    rc = key != NULL;
    if (key_out != NULL)
        *key_out = key;
    else
        free(key);
    return done(c, rc);
}

/*
 * How a soft delete stamps updated_at: "now" in the form the row's value
 * has, so that it sorts among the times the table's other writers stamp.
 * A fixed ISO text in a column of epoch numbers sorts after every number
 * in SQLite (text above integers): that row became the watermark, and no
 * row written after it was read again. Epoch numbers (ms or s) and ISO
 * 8601 text (separator, fraction and zone kept; the time is the zone's
 * local time) are stamped in kind; NULL gets the default (ISO UTC text in
 * SQLite, clock_timestamp() in PostgreSQL); any other form is left as it
 * is rather than stamped in a form that sorts wrong. PostgreSQL reads a
 * typed timestamp as ISO text too, so there the database's time is first
 * written in the value's form and then assigned as $3, whose type the
 * server takes from the column: a TEXT column keeps the form (where
 * clock_timestamp() would be stored as "2026-01-02 10:00:00.5+00", which
 * sorts before every "2026-01-02T..." of that day), a typed one parses it.
 */
struct stamp {
    const char *expr; /* the SQL that is assigned; NULL: updated_at is left alone */
    int iso;          /* SQLite text: expr takes ?3 (format), ?4 (shift), ?5 (zone) */
    int pg_iso;       /* PostgreSQL ISO text: now is to be made, then assigned as $3 */
    char fmt[40], shift[24], zone[8];
    char now[64]; /* PostgreSQL: the database's time in the value's form */
};

/* Whether s begins with pattern: '#' a digit, '?' 'T' or ' ', '+' a sign, else itself. */
static int
shaped(const char *s, const char *pattern)
{
    for (; *pattern != '\0'; s++, pattern++) {
        int ok = *pattern == '#'   ? *s >= '0' && *s <= '9'
                 : *pattern == '?' ? *s == 'T' || *s == ' '
                 : *pattern == '+' ? *s == '+' || *s == '-'
                                   : *s == *pattern;

        if (!ok)
            return 0;
    }
    return 1;
}

/* Fill st for the ISO 8601 text v, or return -1 for no such form. */
static int
stamp_iso(const char *v, int sqlite, struct stamp *st)
{
    size_t len = strlen(v), z = 19;
    const char *zone;
    int minutes = 0;

    if (len < 19 || !shaped(v, "####-##-##?##:##:##"))
        return -1;
    if (v[z] == '.')
        z += 1 + strspn(v + z + 1, "0123456789");
    zone = v + z;
    if (strcmp(zone, "Z") != 0 && zone[0] != '\0') {
        size_t n = strlen(zone);

        if ((n != 3 && n != 5 && n != 6) || !shaped(zone, n == 3   ? "+##"
                                                          : n == 5 ? "+####"
                                                                   : "+##:##"))
            return -1;
        minutes = ((zone[1] - '0') * 10 + (zone[2] - '0')) * 60;
        if (n > 3)
            minutes += (zone[n - 2] - '0') * 10 + (zone[n - 1] - '0');
        minutes *= zone[0] == '-' ? -1 : 1;
    }
    (void)snprintf(st->shift, sizeof(st->shift), "%+d minutes", minutes);
    (void)snprintf(st->zone, sizeof(st->zone), "%s", zone);
    if (!sqlite) {
        /* to_char(): the separator quoted ("DDTH" would be an ordinal). */
        (void)snprintf(st->fmt, sizeof(st->fmt), "YYYY-MM-DD\"%c\"HH24:MI:SS%s", v[10],
                       v[19] != '.'  ? ""
                       : z - 20 == 6 ? ".US"
                                     : ".MS");
        st->pg_iso = 1;
        return 0;
    }
    (void)snprintf(st->fmt, sizeof(st->fmt), "%%Y-%%m-%%d%c%%H:%%M:%s", v[10],
                   v[19] == '.' ? "%f" : "%S");
    st->iso = 1;
    st->expr = "strftime(?3, 'now', ?4) || ?5";
    return 0;
}

static void
stamp_of(const struct sql_conn *c, const cJSON *v, struct stamp *st)
{
    int sqlite = c->kind == SQL_SQLITE;
    double n = 0;

    memset(st, 0, sizeof(*st));
    if (v == NULL || cJSON_IsNull(v)) {
        st->expr = sqlite ? "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')" : "clock_timestamp()";
        return;
    }
    if (cJSON_IsNumber(v))
        n = v->valuedouble;
    else if (cJSON_IsString(v) && v->valuestring[0] != '\0' &&
             strspn(v->valuestring, "0123456789") == strlen(v->valuestring))
        n = strtod(v->valuestring, NULL);
    else if (cJSON_IsString(v) && stamp_iso(v->valuestring, sqlite, st) == -1 && !sqlite)
        st->expr = "clock_timestamp()"; /* a typed date or time of another form */
    if (n <= 0 || n != trunc(n))
        return;
    if (n >= 100000000000.0) /* past 1973 in ms, or past the year 5000 in s */
        st->expr = sqlite ? "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
                          : "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";
    else
        st->expr = sqlite ? "CAST(strftime('%s', 'now') AS INTEGER)"
                          : "extract(epoch FROM clock_timestamp())::bigint";
}

/* UPDATE ... SET soft_delete = $2 [, updated_at = now] WHERE key = $1 AND it differs. */
static int
put_soft_delete(struct sql_conn *c, const struct sql_table *t, const struct stamp *st)
{
    struct buf *b = &c->text;
    int rc = buf_puts(b, "UPDATE ") || put_table(b, t->table) || buf_puts(b, " SET ") ||
             put_col(b, t->soft_delete) || buf_puts(b, " = ") || put_param(c, 2);

    if (st->expr != NULL)
        rc |= buf_puts(b, ", ") || put_col(b, t->updated_at) || buf_puts(b, " = ") ||
              buf_puts(b, st->expr);
    rc |= buf_puts(b, " WHERE ") || put_col(b, t->key) || buf_puts(b, " = ") || put_param(c, 1) ||
          buf_puts(b, " AND ") || put_col(b, t->soft_delete) ||
          buf_puts(b, c->kind == SQL_SQLITE ? " IS NOT " : " IS DISTINCT FROM ") || put_param(c, 2);
    return rc == 0 ? 0 : -1;
}

/* PostgreSQL: the database's time now, in st's form, into st->now; $3 is
 * then assigned. 0, or -1. */
static int
pg_now_text(struct sql_conn *c, struct stamp *st, struct error *err)
{
    struct sql_param params[3] = {0};
    struct sql_result res = {0};
    struct sql_stmt *stmt;

    buf_reset(&c->text);
    if (buf_puts(&c->text, "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC' + CAST(") ||
        put_param(c, 1) || buf_puts(&c->text, " AS interval), CAST(") || put_param(c, 2) ||
        buf_puts(&c->text, " AS text)) || CAST(") || put_param(c, 3) ||
        buf_puts(&c->text, " AS text)"))
        return error_set(err, ERROR_INTERNAL, "sql: a time's statement is too long");
    param_text(&params[0], st->shift);
    param_text(&params[1], st->fmt);
    param_text(&params[2], st->zone);
    stmt = stmt_get(c, 3, NULL, NULL, err);
    res.want_first = 1;
    if (stmt == NULL || run(c, stmt, params, &res, err) == -1)
        return error_wrap(err, "read the database's time");
    if (res.first == NULL ||
        snprintf(st->now, sizeof(st->now), "%s", res.first) >= (int)sizeof(st->now)) {
        result_fini(&res);
        return error_set(err, ERROR_INTERNAL, "sql: the database's time is no time");
    }
    result_fini(&res);
    st->expr = "$3";
    return 0;
}

/* The stamp for the row of key: from its updated_at as it stands. 0, or -1. */
static int
soft_stamp(struct sql_conn *c, const struct sql_table *t, const char *key, struct stamp *st,
           struct error *err)
{
    cJSON *row = NULL;
    int got;

    memset(st, 0, sizeof(*st));
    if (t->updated_at == NULL)
        return 0;
    got = get_row(c, t, key, &row, err);
    if (got == -1)
        return -1;
    stamp_of(c, got == 1 ? cJSON_GetObjectItemCaseSensitive(row, t->updated_at) : NULL, st);
    cJSON_Delete(row);
    return st->pg_iso ? pg_now_text(c, st, err) : 0;
}

static int
delete_row(struct sql_conn *c, const struct sql_table *t, const char *key, struct error *err)
{
    const char *cols[5] = {NULL, t->soft_delete, NULL, NULL, NULL};
    struct sql_param params[5] = {0};
    struct sql_result res = {0};
    struct sql_stmt *st;
    struct stamp stamp = {0};
    cJSON *value = NULL;
    int rc, n = 1;

    if (t->soft_delete != NULL) {
        value = cJSON_Parse(t->soft_delete_value != NULL ? t->soft_delete_value : "true");
        if (value == NULL)
            return error_set(err, ERROR_INVALID, "soft_delete_value is not JSON");
        if (soft_stamp(c, t, key, &stamp, err) == -1) {
            cJSON_Delete(value);
            return -1;
        }
        n = stamp.iso ? 5 : stamp.pg_iso ? 3 : 2;
        buf_reset(&c->text);
        rc = column_name_ok(t->soft_delete) &&
                     (t->updated_at == NULL || column_name_ok(t->updated_at))
                 ? put_soft_delete(c, t, &stamp)
                 : -1;
    } else {
        buf_reset(&c->text);
        rc = buf_puts(&c->text, "DELETE FROM ") || put_table(&c->text, t->table) ||
             buf_puts(&c->text, " WHERE ") || put_col(&c->text, t->key) ||
             buf_puts(&c->text, " = ") || put_param(c, 1);
    }
    if (rc != 0 || !table_name_ok(t->table) || !column_name_ok(t->key)) {
        cJSON_Delete(value);
        return text_failed(c, t, err);
    }
    st = stmt_get(c, n, t->table, cols, err);
    if (st == NULL) {
        cJSON_Delete(value);
        return -1;
    }
    param_key(c, &params[0], key);
    if (value != NULL)
        param_value(&params[1], value, (enum sql_param_mode)st->modes[1]);
    if (stamp.pg_iso)
        param_text(&params[2], stamp.now);
    if (stamp.iso) {
        param_text(&params[2], stamp.fmt);
        param_text(&params[3], stamp.shift);
        param_text(&params[4], stamp.zone);
    }
    rc = run(c, st, params, &res, err);
    cJSON_Delete(value);
    if (rc == -1)
        return -1;
    rc = res.changes > 0 ? 1 : 0;
    result_fini(&res);
    return rc;
}

int
sql_delete(struct sql_conn *c, const struct sql_table *t, const char *key, struct error *err)
{
    int64_t index = c->txn_writes;
    int rc;

    if (enter(c, t, err) == -1)
        return done(c, -1);
    if (key == NULL)
        return done(c, error_set(err, ERROR_INVALID, "sql delete %s: no key", t->table));
    if (c->in_txn)
        c->txn_writes++;
    rc = delete_row(c, t, key, err);
    if (rc == -1) {
        if (c->in_txn && err->kind == ERROR_PERMANENT && c->failed_write < 0)
            c->failed_write = index;
        return done(c, error_wrap(err, "sql delete %s %s", t->table, key));
    }
    return done(c, rc);
}

int
sql_row_is_deleted(const struct sql_table *t, const cJSON *row)
{
    const cJSON *v;
    cJSON *want;
    int deleted;

    if (t->soft_delete == NULL || row == NULL)
        return 0;
    v = cJSON_GetObjectItemCaseSensitive(row, t->soft_delete);
    if (v == NULL)
        return 0;
    want = cJSON_Parse(t->soft_delete_value != NULL ? t->soft_delete_value : "true");
    if (want == NULL)
        return 0;
    deleted = cJSON_Compare(v, want, 1) || (cJSON_IsBool(want) && cJSON_IsNumber(v) &&
                                            v->valuedouble == (cJSON_IsTrue(want) ? 1.0 : 0.0));
    cJSON_Delete(want);
    return deleted;
}

void
sql_watermark_fini(struct sql_watermark *w)
{
    if (w == NULL)
        return;
    free(w->updated_at);
    free(w->key);
    w->updated_at = NULL;
    w->key = NULL;
}

/* ---- helpers for the backends (sql_int.h) ---- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *
sql_base64_encode(const unsigned char *data, size_t len)
{
    char *out = xmalloc((len + 2) / 3 * 4 + 1);
    size_t o = 0, i = 0;

    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];

        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)data[i] << 16 | (i + 1 < len ? (uint32_t)data[i + 1] << 8 : 0);

        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
        if (i + 1 < len)
            out[o - 2] = b64_alphabet[(v >> 6) & 63];
    }
    out[o] = '\0';
    return out;
}

static int
b64_value(char ch)
{
    const char *p = ch != '\0' ? strchr(b64_alphabet, ch) : NULL;

    return p != NULL ? (int)(p - b64_alphabet) : -1;
}

int
sql_base64_decode(const char *text, size_t len, unsigned char **out, size_t *out_len)
{
    unsigned char *bytes;
    size_t o = 0;

    if (len % 4 != 0)
        return -1;
    bytes = xmalloc(len / 4 * 3 + 1);
    for (size_t i = 0; i < len; i += 4) {
        int a = b64_value(text[i]), b = b64_value(text[i + 1]);
        int last = i + 4 == len;
        int pad2 = last && text[i + 2] == '=' && text[i + 3] == '=';
        int pad1 = last && !pad2 && text[i + 3] == '=';
        int c3 = pad2 ? 0 : b64_value(text[i + 2]), d = pad2 || pad1 ? 0 : b64_value(text[i + 3]);

        if (a < 0 || b < 0 || c3 < 0 || d < 0) {
            free(bytes);
            return -1;
        }
        bytes[o++] = (unsigned char)(a << 2 | b >> 4);
        if (!pad2)
            bytes[o++] = (unsigned char)((b & 15) << 4 | c3 >> 2);
        if (!pad2 && !pad1)
            bytes[o++] = (unsigned char)((c3 & 3) << 6 | d);
    }
    *out = bytes;
    *out_len = o;
    return 0;
}

cJSON *
sql_json_or_string(const char *text, size_t len)
{
    /* len + 1: cJSON checks the NUL itself when it must end the text. */
    cJSON *v = cJSON_ParseWithLengthOpts(text, len + 1, NULL, 1);

    if (v == NULL)
        v = cJSON_CreateString(text);
    if (v == NULL)
        abort(); /* out of memory; xmalloc's rule */
    return v;
}

cJSON *
sql_json_int(int64_t v)
{
    const int64_t exact = (int64_t)1 << 53; /* a double holds every integer up to here */
    char digits[24];
    cJSON *j;

    if (v >= -exact && v <= exact) {
        j = cJSON_CreateNumber((double)v);
    } else {
        (void)snprintf(digits, sizeof(digits), "%" PRId64, v);
        j = cJSON_CreateString(digits);
    }
    if (j == NULL)
        abort();
    return j;
}

int
sql_numeric_fits_double(const char *text)
{
    const char *s = text;
    int digits = 0, seen = 0, dot = 0;

    if (*s == '-' || *s == '+')
        s++;
    if (*s == '\0')
        return 0;
    for (; *s != '\0'; s++) {
        if (*s == '.' && !dot) {
            dot = 1;
            continue;
        }
        if (*s < '0' || *s > '9')
            return 0;
        seen |= *s != '0';
        digits += seen;
    }
    return digits <= 15;
}

void
sql_message_line(char *out, size_t out_len, const char *text)
{
    size_t o = 0;

    if (out_len == 0)
        return;
    for (const char *s = text; *s != '\0' && o + 1 < out_len; s++)
        out[o++] = (char)(*s == '\n' || *s == '\r' || *s == '\t' ? ' ' : *s);
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
}
