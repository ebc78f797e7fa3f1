/* SPDX-License-Identifier: MIT */

/*
 * The PostgreSQL backend of sql.h, over libpq. Each statement is prepared
 * once per session with untyped parameters, so the server infers every
 * parameter's type from its use (a timestamptz column compares with a
 * timestamptz, an int key with an int) and casts the text we send; the
 * inferred types, read back with PQdescribePrepared(), say which row values
 * to send as bytes (bytea) or JSON text (json, jsonb). Each call is one
 * PQexecPrepared() round trip; results come back as text and are mapped by
 * the column's type OID. Inside a transaction, an upsert whose caller does
 * not want the key is sent in pipeline mode without waiting; flush() reads
 * the results of up to SQL_PIPELINE_MAX of them at once, so a backfill pays
 * one round trip per batch instead of one per row.
 *
 * The session runs with TimeZone UTC and DateStyle ISO, so timestamps read
 * as "YYYY-MM-DD HH:MM:SS[.ffffff]+00" and become ISO 8601 with a "Z". A
 * lost connection fails the call that found it (ERROR_TRANSIENT); the next
 * call reconnects once with PQreset() and prepares its statements again.
 * Inside a transaction there is no reconnect: the transaction is gone, and
 * the caller's sql_rollback() clears the way.
 */

#include "sql/sql.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include "sql/sql_int.h"

/* Built-in type OIDs (src/include/catalog/pg_type.dat); fixed since PostgreSQL 9.4. */
#define PG_OID_BOOL        16
#define PG_OID_BYTEA       17
#define PG_OID_INT8        20
#define PG_OID_INT2        21
#define PG_OID_INT4        23
#define PG_OID_OID         26
#define PG_OID_JSON        114
#define PG_OID_FLOAT4      700
#define PG_OID_FLOAT8      701
#define PG_OID_TIMESTAMP   1114
#define PG_OID_TIMESTAMPTZ 1184
#define PG_OID_NUMERIC     1700
#define PG_OID_JSONB       3802

/* Parameters of up to this many values are passed from the stack. */
#define PG_STACK_PARAMS 32

/*
 * The session's settings: the timestamp forms of sql.h, hex bytea, and
 * floats printed exactly (shortest exact form from PostgreSQL 12 on).
 */
static const char pg_session_sql[] = "SET TimeZone TO 'UTC'; SET DateStyle TO 'ISO, YMD'; "
                                     "SET bytea_output TO 'hex'; SET extra_float_digits TO 3";

static int
kind_of_state(const char *state)
{
    static const char *const transient[] = {
        "40001", /* serialization_failure */
        "40P01", /* deadlock_detected */
        "55P03", /* lock_not_available */
        "57014", /* query_canceled (statement_timeout) */
        "57P01", /* admin_shutdown (pg_terminate_backend) */
        "57P02", /* crash_shutdown */
        "57P03", /* cannot_connect_now */
    };

    if (state == NULL)
        return ERROR_PERMANENT; /* libpq refused the call itself */
    /* Classes 08 connection, 53 insufficient resources, 58 system (I/O) errors. */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 ||
        strncmp(state, "58", 2) == 0)
        return ERROR_TRANSIENT;
    for (size_t i = 0; i < ARRAY_COUNT(transient); i++) {
        if (strcmp(state, transient[i]) == 0)
            return ERROR_TRANSIENT;
    }
    return ERROR_PERMANENT;
}

/*
 * The error of a failed result: the primary message (never DETAIL, which
 * quotes row values) and the SQLSTATE. A connection that went bad makes
 * it transient whatever the message.
 */
static int
result_error(struct sql_conn *c, const PGresult *r, struct sql_result *res, struct error *err)
{
    const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r != NULL ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char line[400];
    int kind;

    sql_message_line(line, sizeof(line), msg != NULL ? msg : PQerrorMessage(c->db));
    kind = PQstatus(c->db) != CONNECTION_OK ? ERROR_TRANSIENT : kind_of_state(state);
    /* 0A000: "cached plan must not change result type"; 26000: the statement is gone. */
    if (res != NULL && state != NULL &&
        (strcmp(state, "0A000") == 0 || strcmp(state, "26000") == 0))
        res->stale = 1;
    if (state != NULL)
        return error_set(err, (enum error_kind)kind, "%s [%s]", line, state);
    return error_set(err, (enum error_kind)kind, "%s", line);
}

/* NOTICEs and WARNINGs ("no transaction in progress") are not ours to print. */
static void
ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static int
session_setup(struct sql_conn *c, struct error *err)
{
    PGresult *r = PQexec(c->db, pg_session_sql);
    int rc = 0;

    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = result_error(c, r, NULL, err);
    PQclear(r);
    return rc == 0 ? 0 : error_wrap(err, "postgres session set-up");
}

/* Whether target parses as a conninfo or URI; a bare word is a database name. */
static int
conninfo_parses(const char *target)
{
    PQconninfoOption *opts;
    char *msg = NULL;

    if (strchr(target, '=') == NULL && strncmp(target, "postgres", 8) != 0)
        return 1;
    opts = PQconninfoParse(target, &msg);
    /* The message may quote the string, password included: never shown. */
    PQfreemem(msg);
    if (opts == NULL)
        return 0;
    PQconninfoFree(opts);
    return 1;
}

/* libpq gives connection failures no SQLSTATE; its words decide. */
static enum error_kind
connect_kind(PGconn *conn, const char *msg)
{
    static const char *const permanent[] = {
        "authentication",    "pg_hba.conf", "does not exist", "password",
        "permission denied", "invalid",     "not supported",
    };

    if (PQconnectionNeedsPassword(conn))
        return ERROR_PERMANENT;
    for (size_t i = 0; i < ARRAY_COUNT(permanent); i++) {
        if (strstr(msg, permanent[i]) != NULL)
            return ERROR_PERMANENT;
    }
    return ERROR_TRANSIENT; /* refused, timed out, starting up, too many clients */
}

static int
pg_open(struct sql_conn *c, const char *target, struct error *err)
{
    /* Entries before dbname yield to the conninfo; client_encoding after it wins. */
    const char *const keys[] = {"connect_timeout", "fallback_application_name", "dbname",
                                "client_encoding", NULL};
    const char *const values[] = {"10", "concord", target, "UTF8", NULL};
    char line[400];
    PGconn *conn;

    if (!conninfo_parses(target))
        return error_set(
            err, ERROR_PERMANENT,
            "postgres: the connection string does not parse (check its keywords, quoting and URI form)");
    conn = PQconnectdbParams(keys, values, 1);
    if (conn == NULL)
        abort(); /* libpq ran out of memory; xmalloc's rule applies */
    if (PQstatus(conn) != CONNECTION_OK) {
        sql_message_line(line, sizeof(line), PQerrorMessage(conn));
        error_set(err, connect_kind(conn, line), "connect to postgres: %s", line);
        PQfinish(conn);
        return -1;
    }
    PQsetNoticeProcessor(conn, ignore_notice, NULL);
    c->db = conn;
    if (session_setup(c, err) == -1) {
        PQfinish(conn);
        c->db = NULL;
        return -1;
    }
    return 0;
}

static void
pg_close(struct sql_conn *c)
{
    PQfinish(c->db);
    c->db = NULL;
}

/*
 * A usable connection: reconnect once if the last call lost it. Inside a
 * transaction a new session would run the rest of the batch outside it (and
 * COMMIT would "succeed"), so there the loss is reported instead.
 */
static int
ready(struct sql_conn *c, struct error *err)
{
    char line[400];

    if (PQstatus(c->db) == CONNECTION_OK)
        return 0;
    if (c->in_txn)
        return error_set(err, ERROR_TRANSIENT,
                         "postgres: the connection was lost and its transaction with it");
    PQreset(c->db);
    c->epoch++; /* the old session's prepared statements are gone either way */
    if (PQstatus(c->db) != CONNECTION_OK) {
        sql_message_line(line, sizeof(line), PQerrorMessage(c->db));
        return error_set(err, ERROR_TRANSIENT, "reconnect to postgres: %s", line);
    }
    return session_setup(c, err);
}

static int
prepare_named(struct sql_conn *c, struct sql_stmt *st, struct error *err)
{
    PGresult *r;
    int rc = 0;

    (void)snprintf(st->name, sizeof(st->name), "concord_%u", ++c->stmt_seq);
    r = PQprepare(c->db, st->name, st->text, st->param_count, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = result_error(c, r, NULL, err);
    PQclear(r);
    st->epoch = c->epoch;
    return rc;
}

static int
pg_prepare(struct sql_conn *c, struct sql_stmt *st, const char *table, const char *const *cols,
           struct error *err)
{
    PGresult *r;
    int n;

    (void)table; /* the server's inferred parameter types say more than column names */
    (void)cols;
    if (ready(c, err) == -1 || prepare_named(c, st, err) == -1)
        return -1;
    r = PQdescribePrepared(c->db, st->name);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        result_error(c, r, NULL, err);
        PQclear(r);
        return -1;
    }
    n = PQnparams(r);
    for (int i = 0; i < n && i < st->param_count; i++) {
        Oid type = PQparamtype(r, i);

        if (type == PG_OID_BYTEA)
            st->modes[i] = SQL_MODE_BYTES;
        else if (type == PG_OID_JSON || type == PG_OID_JSONB)
            st->modes[i] = SQL_MODE_JSON;
    }
    PQclear(r);
    return 0;
}

static void
pg_finalize(struct sql_conn *c, struct sql_stmt *st)
{
    char sql[64];

    /* Statements of a lost session, or of one about to close, need no DEALLOCATE. */
    if (c->closing || st->name[0] == '\0' || st->epoch != c->epoch ||
        PQstatus(c->db) != CONNECTION_OK || PQtransactionStatus(c->db) == PQTRANS_INERROR)
        return;
    (void)snprintf(sql, sizeof(sql), "DEALLOCATE \"%s\"", st->name);
    PQclear(PQexec(c->db, sql));
}

/* The shortest text that reads back as the same double. */
static void
format_double(char *out, size_t out_len, double d)
{
    (void)snprintf(out, out_len, "%.15g", d);
    if (strtod(out, NULL) != d)
        (void)snprintf(out, out_len, "%.17g", d);
}

/* Parameters as libpq wants them: text, except bytes sent as binary. */
static void
param_texts(const struct sql_param *p, int n, const char **values, int *lengths, int *formats,
            char (*nums)[32])
{
    for (int i = 0; i < n; i++) {
        values[i] = NULL;
        lengths[i] = 0;
        formats[i] = 0;
        switch (p[i].type) {
        case SQL_PARAM_NULL:
            break;
        case SQL_PARAM_INT:
            (void)snprintf(nums[i], sizeof(nums[i]), "%" PRId64, p[i].i);
            values[i] = nums[i];
            break;
        case SQL_PARAM_DOUBLE:
            format_double(nums[i], sizeof(nums[i]), p[i].d);
            values[i] = nums[i];
            break;
        case SQL_PARAM_BOOL:
            values[i] = p[i].i ? "true" : "false";
            break;
        case SQL_PARAM_TEXT:
            values[i] = p[i].text;
            break;
        case SQL_PARAM_BLOB:
            values[i] = p[i].text;
            lengths[i] = (int)p[i].len;
            formats[i] = 1;
            break;
        }
    }
}

/* "2026-11-26 10:00:00.123+00" -> "2026-11-26T10:00:00.123Z" (tz), without the Z otherwise. */
static const char *
iso_text(struct sql_conn *c, const char *v, int tz)
{
    struct buf *b = &c->scratch;
    size_t len;

    buf_reset(b);
    if (buf_puts(b, v) == -1)
        return v;
    len = b->len;
    if (len > 10 && b->data[10] == ' ')
        b->data[10] = 'T';
    if (tz && len > 3 && strcmp(b->data + len - 3, "+00") == 0) {
        b->data[len - 3] = 'Z';
        b->data[len - 2] = '\0';
        b->len = len - 2;
    }
    return buf_str(b);
}

static int
hex_nibble(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* bytea's hex output ("\x0102") as base64; other forms stay text. */
static cJSON *
bytea_json(const char *v, size_t len)
{
    unsigned char *bytes;
    size_t n = 0;
    char *b64;
    cJSON *j;

    if (len < 2 || v[0] != '\\' || v[1] != 'x' || len % 2 != 0)
        return cJSON_CreateString(v);
    bytes = xmalloc(len / 2 + 1);
    for (size_t i = 2; i + 1 < len; i += 2) {
        int hi = hex_nibble(v[i]), lo = hex_nibble(v[i + 1]);

        if (hi < 0 || lo < 0) {
            free(bytes);
            return cJSON_CreateString(v);
        }
        bytes[n++] = (unsigned char)(hi << 4 | lo);
    }
    b64 = sql_base64_encode(bytes, n);
    j = cJSON_CreateString(b64);
    free(b64);
    free(bytes);
    return j;
}

static cJSON *
cell(struct sql_conn *c, const PGresult *r, int row, int col, Oid type)
{
    const char *v = PQgetvalue(r, row, col);
    size_t len = (size_t)PQgetlength(r, row, col);
    cJSON *j;

    if (PQgetisnull(r, row, col))
        return cJSON_CreateNull();
    switch (type) {
    case PG_OID_BOOL:
        return cJSON_CreateBool(v[0] == 't');
    case PG_OID_INT2:
    case PG_OID_INT4:
    case PG_OID_INT8:
    case PG_OID_OID:
        return sql_json_int(strtoll(v, NULL, 10));
    case PG_OID_FLOAT4:
    case PG_OID_FLOAT8:
    case PG_OID_NUMERIC:
        /* NaN and Infinity have no JSON number; long numerics would lose digits. */
        if ((type != PG_OID_NUMERIC || sql_numeric_fits_double(v)) &&
            strpbrk(v, "0123456789") != NULL && strpbrk(v, "NI") == NULL)
            j = cJSON_CreateNumber(strtod(v, NULL));
        else
            j = cJSON_CreateString(v);
        break;
    case PG_OID_JSON:
    case PG_OID_JSONB:
        return sql_json_or_string(v, len);
    case PG_OID_TIMESTAMP:
    case PG_OID_TIMESTAMPTZ:
        j = cJSON_CreateString(iso_text(c, v, type == PG_OID_TIMESTAMPTZ));
        break;
    case PG_OID_BYTEA:
        j = bytea_json(v, len);
        break;
    default:
        j = cJSON_CreateString(v);
        break;
    }
    if (j == NULL)
        abort(); /* cJSON ran out of memory; xmalloc's rule applies */
    return j;
}

static int
find_field(const PGresult *r, const char *name)
{
    for (int i = 0; i < PQnfields(r); i++) {
        if (strcmp(PQfname(r, i), name) == 0)
            return i;
    }
    return -1;
}

static int
collect_marks(struct sql_conn *c, const PGresult *r, struct sql_result *res, struct error *err)
{
    int last = PQntuples(r) - 1;

    for (int m = 0; m < 2; m++) {
        int col;
        Oid type;

        if (res->mark_col[m] == NULL)
            continue;
        col = find_field(r, res->mark_col[m]);
        if (col < 0)
            return error_set(err, ERROR_PERMANENT, "the result has no column \"%s\"",
                             res->mark_col[m]);
        if (last < 0 || PQgetisnull(r, last, col))
            continue;
        type = PQftype(r, col);
        /* The same text the row shows, which the server parses back to the same value. */
        res->mark[m] =
            xstrdup(type == PG_OID_TIMESTAMP || type == PG_OID_TIMESTAMPTZ
                        ? iso_text(c, PQgetvalue(r, last, col), type == PG_OID_TIMESTAMPTZ)
                        : PQgetvalue(r, last, col));
    }
    return 0;
}

static int
collect(struct sql_conn *c, PGresult *r, struct sql_result *res, struct error *err)
{
    int nrows = PQntuples(r), ncols = PQnfields(r);
    const char *tuples = PQcmdTuples(r);
    Oid *types;

    res->row_count = nrows;
    if (tuples[0] != '\0')
        res->changes = strtoll(tuples, NULL, 10);
    if (res->want_first && nrows > 0 && ncols > 0 && !PQgetisnull(r, 0, 0))
        res->first = xstrdup(PQgetvalue(r, 0, 0));
    if (collect_marks(c, r, res, err) == -1)
        return -1;
    if (!res->want_rows)
        return 0;
    res->rows = cJSON_CreateArray();
    types = xcalloc(ncols > 0 ? (size_t)ncols : 1, sizeof(*types));
    for (int j = 0; j < ncols; j++)
        types[j] = PQftype(r, j);
    for (int i = 0; i < nrows; i++) {
        cJSON *row = cJSON_CreateObject();

        if (row == NULL || res->rows == NULL)
            abort();
        for (int j = 0; j < ncols; j++)
            cJSON_AddItemToObject(row, PQfname(r, j), cell(c, r, i, j, types[j]));
        cJSON_AddItemToArray(res->rows, row);
    }
    free(types);
    return 0;
}

/* Parameters as PQexecPrepared() takes them. */
struct pg_params {
    const char **values;
    int *lengths;
    int *formats;
};

/* Queue the statement in pipeline mode; its result is read by pg_flush(). */
static int
pg_send(struct sql_conn *c, struct sql_stmt *st, const struct pg_params *pp, struct sql_result *res,
        struct error *err)
{
    PGconn *pq = c->db;

    /* A reconnect (the only thing that changes the epoch) never happens in a transaction. */
    if (NEVER(st->epoch != c->epoch))
        return error_set(err, ERROR_INTERNAL, "postgres: a statement of a lost session");
    if (PQpipelineStatus(pq) == PQ_PIPELINE_OFF && PQenterPipelineMode(pq) != 1)
        return result_error(c, NULL, NULL, err);
    if (c->queued_count == 0)
        c->queued_first = res->write_index;
    if (PQsendQueryPrepared(pq, st->name, st->param_count, pp->values, pp->lengths, pp->formats,
                            0) != 1)
        return result_error(c, NULL, NULL, err);
    c->queued_count++;
    res->deferred = 1;
    return 0;
}

/*
 * Read the queued results up to the sync point. Each query yields its
 * result and then NULL; after the first error the rest come back
 * PGRES_PIPELINE_ABORTED. A lost connection yields NULL for ever, hence
 * the bound.
 */
static int
pg_flush(struct sql_conn *c, int64_t *failed_index, struct error *err)
{
    PGconn *pq = c->db;
    int64_t count = c->queued_count, idx = 0;
    int failed = 0, synced = 0;

    *failed_index = -1;
    c->queued_count = 0;
    if (PQpipelineSync(pq) != 1)
        count = -1; /* nothing will come */
    for (int64_t step = 0; step < 2 * count + 2 && !synced; step++) {
        PGresult *r = PQgetResult(pq);

        if (r == NULL) {
            if (PQstatus(pq) != CONNECTION_OK)
                break;
            idx++;
            continue;
        }
        if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
            synced = 1;
        } else if (PQresultStatus(r) == PGRES_FATAL_ERROR && !failed) {
            failed = 1;
            result_error(c, r, NULL, err);
            if (PQstatus(pq) == CONNECTION_OK) {
                *failed_index = c->queued_first + idx;
                error_wrap(err, "write %" PRId64 " of the transaction", *failed_index);
            }
        }
        PQclear(r);
    }
    if (!failed && !synced)
        result_error(c, NULL, NULL, err);
    (void)PQexitPipelineMode(pq); /* fails only with a lost connection; PQreset() ends it then */
    return failed || !synced ? -1 : 0;
}

static int
pg_run(struct sql_conn *c, struct sql_stmt *st, const struct sql_param *params,
       struct sql_result *res, struct error *err)
{
    const char *stack_values[PG_STACK_PARAMS];
    int stack_lengths[PG_STACK_PARAMS], stack_formats[PG_STACK_PARAMS];
    char stack_nums[PG_STACK_PARAMS][32];
    const char **values = stack_values;
    int *lengths = stack_lengths, *formats = stack_formats;
    char(*nums)[32] = stack_nums;
    int n = st->param_count, rc;
    PGresult *r;

    if (ready(c, err) == -1)
        return -1;
    if (st->epoch != c->epoch && prepare_named(c, st, err) == -1)
        return -1;
    if (n > PG_STACK_PARAMS) {
        values = xcalloc((size_t)n, sizeof(*values));
        lengths = xcalloc((size_t)n, sizeof(*lengths));
        formats = xcalloc((size_t)n, sizeof(*formats));
        nums = xcalloc((size_t)n, sizeof(*nums));
    }
    param_texts(params, n, values, lengths, formats, nums);
    if (res->may_defer) {
        const struct pg_params pp = {values, lengths, formats};

        rc = pg_send(c, st, &pp, res, err);
    } else {
        r = PQexecPrepared(c->db, st->name, n, values, lengths, formats, 0);
        if (PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK)
            rc = collect(c, r, res, err);
        else
            rc = result_error(c, r, res, err);
        PQclear(r);
    }
    if (n > PG_STACK_PARAMS) {
        free(values);
        free(lengths);
        free(formats);
        free(nums);
    }
    if (rc == -1) {
        cJSON_Delete(res->rows);
        res->rows = NULL;
    }
    return rc;
}

static int
pg_exec(struct sql_conn *c, const char *sql, struct error *err)
{
    ExecStatusType status;
    PGresult *r;
    int rc = 0;

    if (strcmp(sql, "ROLLBACK") == 0 && PQstatus(c->db) != CONNECTION_OK)
        return 0; /* the transaction went with the connection */
    if (ready(c, err) == -1)
        return -1;
    r = PQexec(c->db, sql);
    status = PQresultStatus(r);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && status != PGRES_EMPTY_QUERY)
        rc = result_error(c, r, NULL, err);
    else if (strcmp(sql, "COMMIT") == 0 && strcmp(PQcmdStatus(r), "ROLLBACK") == 0)
        rc = error_set(err, ERROR_PERMANENT, "postgres rolled the transaction back");
    PQclear(r);
    return rc;
}

const struct sql_backend sql_backend_pg = {
    .name = "postgres",
    .open = pg_open,
    .close = pg_close,
    .prepare = pg_prepare,
    .finalize = pg_finalize,
    .run = pg_run,
    .exec = pg_exec,
    .flush = pg_flush,
};
