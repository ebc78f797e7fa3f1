/* SPDX-License-Identifier: MIT */

/*
 * Deliveries to SQL systems (kinds sqlite and postgres). The planner in
 * deliver.c treats a table like any target: the collection's synthesized
 * endpoints say INSERT (a create), UPDATE (of the copy whose key is
 * d->ext_id) and DELETE, and d->body is the row map_out made. Here, on the
 * delivery thread, they become sql_upsert() and sql_delete() calls, and
 * each answer is handed back as an HTTP one would be, so the writer
 * applies it the same way: 201/200 with the row as written, 204 for a delete,
 * 422 with the database's words for a row it refuses (permanent), and
 * "not sent" when the database could not be reached or was busy
 * (transient: retried on the system's schedule).
 *
 * Guarantee: no duplicate create. A batch runs in one transaction (a
 * backfill writes hundreds of rows per commit); when a row fails, the batch
 * is rolled back and each row runs alone, so every failure is its own
 * row's. A COMMIT (or a PostgreSQL INSERT) that failed transiently may have
 * been applied: such a create is answered as lost (outcome unknown), never
 * run again here; SQLite's failures are local and leave nothing.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/secret.h"
#include "core/xmalloc.h"
#include "engine/engine_int.h"

struct sql_table
engine_sql_table(const struct config_collection *cc)
{
    return (struct sql_table){
        .table = cc->sql_table,
        .key = cc->sql_key,
        .updated_at = cc->updated_at_path,
        .soft_delete = cc->sql_soft_delete,
        .soft_delete_value = cc->sql_soft_delete_value,
        .query = cc->sql_query,
    };
}

int
engine_coll_is_sql(const struct engine_coll *c)
{
    return c->cfg->system->kind != CONFIG_SYSTEM_HTTP;
}

int
engine_sql_open(const struct config_system *sys, struct sql_conn **out, struct error *err)
{
    if (sys->kind == CONFIG_SYSTEM_SQLITE)
        return sql_open(SQL_SQLITE, sys->db_path, out, err);
    return sql_open(SQL_POSTGRES, secret_bytes(&sys->dsn), out, err);
}

/* One delivery's statement; its answer in *status and *body (malloc()ed). */
static int
run_one(struct engine *e, struct engine_sys *sys, struct engine_delivery *d, long *status,
        char **body, struct error *err)
{
    const struct engine_coll *c = &e->colls[d->coll_index];
    cJSON *row = NULL, *answer;
    char *key = NULL;
    int rc;

    if (strcmp(d->method, "DELETE") == 0) {
        rc = sql_delete(sys->sql, &c->sql, d->ext_id ? d->ext_id : "", err);
        if (rc == -1)
            return -1;
        *status = 204;
        *body = xstrdup("");
        return 0;
    }
    row = d->body ? cJSON_Parse(d->body) : NULL;
    if (!cJSON_IsObject(row)) {
        cJSON_Delete(row);
        return error_set(err, ERROR_PERMANENT, "the row to write is not an object");
    }
    if (strcmp(d->method, "UPDATE") == 0 && d->ext_id != NULL) {
        /* Only the columns that changed: a plain UPDATE of the row. */
        cJSON_DeleteItemFromObjectCaseSensitive(row, c->sql.key);
        cJSON_AddStringToObject(row, c->sql.key, d->ext_id);
        rc = sql_update(sys->sql, &c->sql, row, &key, err);
        cJSON_Delete(row);
        if (rc == -1)
            return -1;
        if (rc == 0) { /* the row is gone, as a 404 says of a copy */
            *status = 404;
            *body = xstrdup("{\"error\":\"no row has this key\"}");
            return 0;
        }
    } else {
        rc = sql_upsert(sys->sql, &c->sql, row, &key, err);
        cJSON_Delete(row);
        if (rc == -1)
            return -1;
    }
    /* The answer is the row as the table now holds it (its defaults and
     * triggers included): the link's base, so the next read of the row
     * finds it in sync instead of journaling concord's own write. */
    rc = sql_get(sys->sql, &c->sql, key ? key : "", &answer, err);
    if (rc == -1) {
        free(key);
        return -1;
    }
    if (rc == 0) {
        answer = cJSON_CreateObject();
        cJSON_AddStringToObject(answer, c->sql.key, key ? key : "");
    }
    *body = cJSON_PrintUnformatted(answer);
    cJSON_Delete(answer);
    free(key);
    *status = strcmp(d->method, "INSERT") == 0 ? 201 : 200;
    return 0;
}

/*
 * Whether a transient failure of d may still have been applied: an INSERT
 * on PostgreSQL whose connection (or COMMIT) was lost may have committed.
 * Such a create is answered as lost, so it is never sent again blindly; an
 * update or delete states the whole change and may be sent again.
 */
static int
maybe_applied(const struct engine_sys *sys, const struct engine_delivery *d)
{
    return sys->cfg->kind == CONFIG_SYSTEM_POSTGRES && strcmp(d->method, "INSERT") == 0;
}

/* Hand d its answer: a status and body, or a failure of kind err (a
 * transient one as "not sent", or as "lost" when lost is set). */
static void
answer(struct engine_delivery *d, long status, const char *body, const struct error *err, int lost,
       int64_t started_us, void (*done)(void *, const struct http_response *))
{
    struct http_response resp = {
        .outcome = HTTP_OUTCOME_RESPONSE,
        .status = status,
        .body = body ? body : "",
        .body_len = body ? strlen(body) : 0,
        .elapsed_us = clock_mono_ms() * 1000 - started_us,
    };
    char *text = NULL;

    if (err != NULL && err->kind == ERROR_PERMANENT) {
        /* The database refuses this row: like a 422, never retried. */
        cJSON *o = cJSON_CreateObject();

        cJSON_AddStringToObject(o, "error", err->msg);
        text = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        resp.status = 422;
        resp.body = text;
        resp.body_len = strlen(text);
    } else if (err != NULL) {
        resp.outcome = lost ? HTTP_OUTCOME_LOST : HTTP_OUTCOME_NOT_SENT;
        resp.status = 0;
        resp.body = "";
        resp.body_len = 0;
        resp.error = err->msg;
    }
    done(d, &resp);
    free(text);
}

void
engine_sql_deliver(struct engine *e, struct engine_sys *sys, struct engine_delivery **list,
                   size_t count, void (*done)(void *, const struct http_response *))
{
    int64_t started_us = clock_mono_ms() * 1000;
    long *status = xcalloc(count, sizeof(*status));
    char **body = xcalloc(count, sizeof(*body));
    struct error err = {0};
    size_t i;

    if (sys->sql == NULL && engine_sql_open(sys->cfg, &sys->sql, &err) == -1) {
        /* Even a refused login is retried on the schedule: the operator
         * may fix the database while the jobs wait. */
        log_warn(&(struct log_ctx){.system = sys->cfg->name}, "%s", err.msg);
        err.kind = ERROR_TRANSIENT;
        for (i = 0; i < count; i++)
            answer(list[i], 0, NULL, &err, 0, started_us, done);
        goto out;
    }
    /* All in one transaction; on the first failure, each alone. */
    if (count > 1 && sql_begin(sys->sql, &err) == 0) {
        for (i = 0; i < count; i++) {
            if (run_one(e, sys, list[i], &status[i], &body[i], &err) == -1)
                break;
        }
        if (i == count && sql_commit(sys->sql, &err) == 0) {
            for (i = 0; i < count; i++)
                answer(list[i], status[i], body[i], NULL, 0, started_us, done);
            goto out;
        }
        sql_rollback(sys->sql);
        if (i == count && err.kind != ERROR_PERMANENT) {
            /* Guarantee: no duplicate create. A COMMIT whose answer was
             * lost may have committed: nothing is run again here. */
            err.kind = ERROR_TRANSIENT;
            for (i = 0; i < count; i++)
                answer(list[i], 0, NULL, &err, maybe_applied(sys, list[i]), started_us, done);
            goto out;
        }
        for (i = 0; i < count; i++) {
            free(body[i]);
            body[i] = NULL;
        }
    }
    for (i = 0; i < count; i++) {
        error_clear(&err);
        if (run_one(e, sys, list[i], &status[i], &body[i], &err) == -1) {
            if (err.kind != ERROR_PERMANENT && err.kind != ERROR_TRANSIENT)
                err.kind = ERROR_TRANSIENT;
            answer(list[i], 0, NULL, &err, maybe_applied(sys, list[i]), started_us, done);
        } else {
            answer(list[i], status[i], body[i], NULL, 0, started_us, done);
        }
    }
out:
    for (i = 0; i < count; i++)
        free(body[i]);
    free(body);
    free(status);
}
