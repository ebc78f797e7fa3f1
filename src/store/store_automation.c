/* SPDX-License-Identifier: MIT */

/*
 * The store's part of automations (migration 10): one row per run, keyed
 * by (automation, record, version) so that the change that starts a run
 * can never start it twice, and one row per action of a run with its
 * outcome. The writer adds runs in the transaction of the record change;
 * the automation thread moves them on (engine/automation.c decides how).
 * An action that failed for good holds the id of its inbox entry, so
 * `concord retry` and `concord skip` of that entry reach the run
 * (store_run_inbox_retry(), store_run_inbox_skip(), called from the
 * inbox's own functions).
 */

#include "store/store.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "store/store_int.h"

enum {
    R_ADD = 0,
    R_DUE,
    R_NEXT,
    R_SET,
    R_WAITING,
    R_LIST,
    R_GET,
    S_PUT,
    S_LIST,
    S_BY_SEQ,
    S_OUTCOME,
    S_BY_INBOX,
    R_RETRY,
    R_SKIP,
    REC_WHERE,
    R_MAX,
    R_CONTEXT,
    R_COUNT,
};

/* A new run's id: never one a deleted run had (its actions' keys went out). */
#define NEXT_RUN_ID STORE_NEXT_ID("automation_runs", "runs_floor")

#define RUN_COLS                                                                                  \
    "id, automation, record_id, version, model, depth, state, step, attempts, next_at, context, " \
    "note, created_at, updated_at"

static const char *const sql[R_COUNT] = {
    [R_ADD] = "INSERT INTO automation_runs (id, automation, record_id, version, model, depth, "
              "state, step, attempts, next_at, context, note, created_at, updated_at) VALUES "
              "(" NEXT_RUN_ID ", ?1, ?2, ?3, ?4, ?5, ?6, 0, 0, ?7, ?8, ?9, ?10, ?10) "
              "ON CONFLICT DO NOTHING RETURNING id",
    [R_DUE] = "SELECT " RUN_COLS " FROM automation_runs WHERE state IN ('running', 'waiting') "
              "AND next_at <= ?1 ORDER BY next_at, id LIMIT 1",
    [R_NEXT] = "SELECT min(next_at) FROM automation_runs WHERE state IN ('running', 'waiting')",
    [R_SET] = "UPDATE automation_runs SET state = ?2, step = ?3, attempts = ?4, next_at = ?5, "
              "note = ?6, updated_at = ?7 WHERE id = ?1 AND (?8 IS NULL OR state = ?8)",
    [R_WAITING] = "SELECT " RUN_COLS " FROM automation_runs WHERE record_id = ?1 AND state = "
                  "'waiting' AND automation NOT IN (SELECT value FROM json_each(coalesce(?2, "
                  "'[]'))) ORDER BY id",
    [R_LIST] = "SELECT " RUN_COLS " FROM automation_runs WHERE (?1 IS NULL OR automation = ?1) "
               "AND (?2 = 0 OR record_id = ?2) AND id > ?3 ORDER BY id DESC LIMIT ?4",
    [R_GET] = "SELECT " RUN_COLS " FROM automation_runs WHERE id = ?1",
    [S_PUT] = "INSERT INTO automation_steps (run_id, n, kind, state, attempts, outcome, "
              "http_status, journal_seq, inbox_id, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
              "?9, ?10) ON CONFLICT (run_id, n) DO UPDATE SET kind = ?3, state = ?4, attempts = "
              "CASE WHEN ?4 = 'sending' THEN attempts + 1 ELSE max(attempts, ?5) END, outcome = "
              "?6, http_status = ?7, journal_seq = coalesce(?8, journal_seq), inbox_id = ?9, at "
              "= ?10",
    [S_LIST] = "SELECT run_id, n, kind, state, attempts, outcome, http_status, journal_seq, "
               "inbox_id, at FROM automation_steps WHERE run_id = ?1 ORDER BY n",
    [S_BY_SEQ] = "SELECT s.run_id, s.n, r.automation, r.depth, r.context FROM automation_steps s "
                 "JOIN automation_runs r ON r.id = s.run_id WHERE s.journal_seq = ?1",
    [S_OUTCOME] = "UPDATE automation_steps SET state = ?3, outcome = ?4, at = ?5 WHERE run_id = "
                  "?1 AND n = ?2",
    [S_BY_INBOX] = "SELECT run_id, n FROM automation_steps WHERE inbox_id = ?1",
    [R_RETRY] = "UPDATE automation_runs SET state = 'running', attempts = 0, next_at = ?2, note "
                "= NULL, updated_at = ?2 WHERE id = ?1 AND state IN ('failed', 'cut')",
    [R_SKIP] = "UPDATE automation_runs SET state = 'skipped', note = ?2, updated_at = ?3 WHERE "
               "id = ?1 AND state IN ('failed', 'cut')",
    [REC_WHERE] = "SELECT id FROM records WHERE model = ?1 AND deleted = 0 AND "
                  "json_extract(state, '$.\"' || ?2 || '\"') IS json_extract(?3, '$') "
                  "AND id > ?5 ORDER BY id LIMIT ?4",
    [R_MAX] = "SELECT coalesce(max(id), 0) FROM automation_runs",
    [R_CONTEXT] = "UPDATE automation_runs SET context = ?2 WHERE id = ?1",
};

/* The store_int_stmt() slots of this file (the Workflow issue's range). */
#define SLOT0 104
_Static_assert(SLOT0 + R_COUNT <= STORE_EXTRA_SLOTS,
               "store_automation.c needs more statement slots");

static sqlite3_stmt *
stmt(struct store *st, int id, struct error *err)
{
    return store_int_stmt(st, SLOT0 + id, sql[id], err);
}

void
store_run_fini(struct store_run *r)
{
    free(r->automation);
    free(r->model);
    free(r->state);
    free(r->context);
    free(r->note);
    memset(r, 0, sizeof(*r));
}

void
store_runs_free(struct store_run *list, int count)
{
    for (int i = 0; list != NULL && i < count; i++)
        store_run_fini(&list[i]);
    free(list);
}

void
store_step_fini(struct store_step *s)
{
    free(s->kind);
    free(s->state);
    free(s->outcome);
    memset(s, 0, sizeof(*s));
}

void
store_steps_free(struct store_step *list, int count)
{
    for (int i = 0; list != NULL && i < count; i++)
        store_step_fini(&list[i]);
    free(list);
}

static void
id_from_row(sqlite3_stmt *s, void *out)
{
    *(int64_t *)out = sqlite3_column_int64(s, 0);
}

int
store_run_add(struct store *st, const struct store_run *r, int64_t *id, struct error *err)
{
    sqlite3_stmt *s = stmt(st, R_ADD, err);

    if (s == NULL)
        return -1;
    store_int_bind_text(s, 1, r->automation);
    sqlite3_bind_int64(s, 2, r->record_id);
    sqlite3_bind_int64(s, 3, r->version);
    store_int_bind_text(s, 4, r->model);
    sqlite3_bind_int(s, 5, r->depth);
    store_int_bind_text(s, 6, r->state);
    sqlite3_bind_int64(s, 7, r->next_at_ms);
    store_int_bind_text(s, 8, r->context);
    store_int_bind_text(s, 9, r->note);
    sqlite3_bind_int64(s, 10, r->created_at_ms);
    return store_int_one_row(st, s, id_from_row, id, "add an automation run", err);
}

static void
run_from_row(sqlite3_stmt *s, void *out)
{
    struct store_run *r = out;

    r->id = sqlite3_column_int64(s, 0);
    r->automation = store_int_col_text(s, 1);
    r->record_id = sqlite3_column_int64(s, 2);
    r->version = sqlite3_column_int64(s, 3);
    r->model = store_int_col_text(s, 4);
    r->depth = sqlite3_column_int(s, 5);
    r->state = store_int_col_text(s, 6);
    r->step = sqlite3_column_int(s, 7);
    r->attempts = sqlite3_column_int(s, 8);
    r->next_at_ms = sqlite3_column_int64(s, 9);
    r->context = store_int_col_text(s, 10);
    r->note = store_int_col_text(s, 11);
    r->created_at_ms = sqlite3_column_int64(s, 12);
    r->updated_at_ms = sqlite3_column_int64(s, 13);
}

static void
runs_free(void *list, int count)
{
    store_runs_free(list, count);
}

int
store_run_due(struct store *st, int64_t now_ms, struct store_run *out, struct error *err)
{
    sqlite3_stmt *s = stmt(st, R_DUE, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, now_ms);
    return store_int_one_row(st, s, run_from_row, out, "read a due automation run", err);
}

int
store_run_get(struct store *st, int64_t id, struct store_run *out, struct error *err)
{
    sqlite3_stmt *s = stmt(st, R_GET, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, id);
    return store_int_one_row(st, s, run_from_row, out, "read an automation run", err);
}

static void
maybe_int_from_row(sqlite3_stmt *s, void *out)
{
    *(int64_t *)out =
        sqlite3_column_type(s, 0) == SQLITE_NULL ? INT64_MIN : sqlite3_column_int64(s, 0);
}

int
store_run_next_due(struct store *st, int64_t *at_ms, struct error *err)
{
    sqlite3_stmt *s = stmt(st, R_NEXT, err);
    int64_t at = INT64_MIN;
    int rc;

    if (s == NULL)
        return -1;
    rc = store_int_one_row(st, s, maybe_int_from_row, &at, "read the next automation run", err);
    if (rc != 1 || at == INT64_MIN)
        return rc == -1 ? -1 : 0;
    *at_ms = at;
    return 1;
}

int
store_run_set(struct store *st, const struct store_run_move *m, struct error *err)
{
    sqlite3_stmt *s = stmt(st, R_SET, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, m->id);
    store_int_bind_text(s, 2, m->state);
    sqlite3_bind_int(s, 3, m->step);
    sqlite3_bind_int(s, 4, m->attempts);
    sqlite3_bind_int64(s, 5, m->next_at_ms);
    store_int_bind_text(s, 6, m->note);
    sqlite3_bind_int64(s, 7, m->now_ms);
    store_int_bind_text(s, 8, m->from);
    if (store_int_exec(st, s, "move an automation run on", err) == -1)
        return -1;
    return store_int_changes(st) > 0;
}

int
store_run_set_context(struct store *st, int64_t id, const char *context, struct error *err)
{
    sqlite3_stmt *s = stmt(st, R_CONTEXT, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, id);
    store_int_bind_text(s, 2, context);
    return store_int_exec(st, s, "note an automation run's actions", err);
}

int
store_runs_waiting(struct store *st, int64_t record_id, const char *skip_json,
                   struct store_run **out, struct error *err)
{
    sqlite3_stmt *s = stmt(st, R_WAITING, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, record_id);
    store_int_bind_text(s, 2, skip_json);
    return store_int_many_rows(st, s, sizeof(struct store_run), run_from_row, runs_free,
                               (void **)out, "read the waiting runs of a record", err);
}

int
store_runs_list(struct store *st, const struct store_runs_query *q, struct store_run **out,
                struct error *err)
{
    sqlite3_stmt *s = stmt(st, R_LIST, err);

    if (s == NULL)
        return -1;
    store_int_bind_text(s, 1, q->automation);
    sqlite3_bind_int64(s, 2, q->record_id);
    sqlite3_bind_int64(s, 3, q->after_id);
    sqlite3_bind_int(s, 4, q->limit > 0 ? q->limit : 50);
    return store_int_many_rows(st, s, sizeof(struct store_run), run_from_row, runs_free,
                               (void **)out, "read automation runs", err);
}

int
store_runs_max_id(struct store *st, int64_t *out, struct error *err)
{
    sqlite3_stmt *s = stmt(st, R_MAX, err);

    if (s == NULL)
        return -1;
    return store_int_one_row(st, s, id_from_row, out, "read the last automation run", err) == -1
               ? -1
               : 0;
}

static void
bind_or_null(sqlite3_stmt *s, int i, int64_t v)
{
    if (v != 0)
        sqlite3_bind_int64(s, i, v);
    else
        sqlite3_bind_null(s, i);
}

int
store_step_put(struct store *st, const struct store_step *p, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_PUT, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, p->run_id);
    sqlite3_bind_int(s, 2, p->n);
    store_int_bind_text(s, 3, p->kind);
    store_int_bind_text(s, 4, p->state);
    sqlite3_bind_int(s, 5, p->attempts);
    store_int_bind_text(s, 6, p->outcome);
    bind_or_null(s, 7, p->http_status);
    bind_or_null(s, 8, p->journal_seq);
    bind_or_null(s, 9, p->inbox_id);
    sqlite3_bind_int64(s, 10, p->at_ms);
    return store_int_exec(st, s, "note an automation action", err);
}

static void
step_from_row(sqlite3_stmt *s, void *out)
{
    struct store_step *p = out;

    p->run_id = sqlite3_column_int64(s, 0);
    p->n = sqlite3_column_int(s, 1);
    p->kind = store_int_col_text(s, 2);
    p->state = store_int_col_text(s, 3);
    p->attempts = sqlite3_column_int(s, 4);
    p->outcome = store_int_col_text(s, 5);
    p->http_status = sqlite3_column_int(s, 6);
    p->journal_seq = sqlite3_column_int64(s, 7);
    p->inbox_id = sqlite3_column_int64(s, 8);
    p->at_ms = sqlite3_column_int64(s, 9);
}

static void
steps_free(void *list, int count)
{
    store_steps_free(list, count);
}

int
store_steps_list(struct store *st, int64_t run_id, struct store_step **out, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_LIST, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, run_id);
    return store_int_many_rows(st, s, sizeof(struct store_step), step_from_row, steps_free,
                               (void **)out, "read an automation run's actions", err);
}

static void
cause_from_row(sqlite3_stmt *s, void *out)
{
    struct store_run_cause *c = out;

    c->run_id = sqlite3_column_int64(s, 0);
    c->step = sqlite3_column_int(s, 1);
    c->automation = store_int_col_text(s, 2);
    c->depth = sqlite3_column_int(s, 3);
    c->context = store_int_col_text(s, 4);
}

void
store_run_cause_fini(struct store_run_cause *c)
{
    free(c->automation);
    free(c->context);
    memset(c, 0, sizeof(*c));
}

int
store_step_by_seq(struct store *st, int64_t seq, struct store_run_cause *out, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_BY_SEQ, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, seq);
    return store_int_one_row(st, s, cause_from_row, out, "read the run of a change", err);
}

int
store_step_outcome(struct store *st, int64_t run_id, int n, const char *state, const char *outcome,
                   int64_t now_ms, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_OUTCOME, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_int(s, 2, n);
    store_int_bind_text(s, 3, state);
    store_int_bind_text(s, 4, outcome);
    sqlite3_bind_int64(s, 5, now_ms);
    return store_int_exec(st, s, "note an automation action's outcome", err);
}

/* The run whose action's failure is inbox entry inbox_id: 1 with *run_id, 0, -1. */
static int
run_of_entry(struct store *st, int64_t inbox_id, int64_t *run_id, struct error *err)
{
    sqlite3_stmt *s = stmt(st, S_BY_INBOX, err);

    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, inbox_id);
    return store_int_one_row(st, s, id_from_row, run_id, "read the run of an inbox entry", err);
}

int
store_run_inbox_retry(struct store *st, int64_t inbox_id, int64_t now_ms, struct error *err)
{
    sqlite3_stmt *s;
    int64_t run_id = 0;
    int rc = run_of_entry(st, inbox_id, &run_id, err);

    if (rc != 1)
        return rc;
    s = stmt(st, R_RETRY, err);
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_int64(s, 2, now_ms);
    return store_int_exec(st, s, "requeue an automation run", err) == -1 ? -1 : 1;
}

int
store_run_inbox_skip(struct store *st, int64_t inbox_id, const char *note, int64_t now_ms,
                     struct error *err)
{
    sqlite3_stmt *s;
    int64_t run_id = 0;
    int rc = run_of_entry(st, inbox_id, &run_id, err);

    if (rc != 1)
        return rc;
    s = stmt(st, R_SKIP, err);
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, run_id);
    store_int_bind_text(s, 2, note);
    sqlite3_bind_int64(s, 3, now_ms);
    return store_int_exec(st, s, "skip an automation run", err) == -1 ? -1 : 1;
}

static void
ids_free(void *list, int count)
{
    (void)count;
    free(list);
}

int
store_records_where(struct store *st, const struct store_where *w, int64_t **out, struct error *err)
{
    sqlite3_stmt *s = stmt(st, REC_WHERE, err);

    if (s == NULL)
        return -1;
    store_int_bind_text(s, 1, w->model);
    store_int_bind_text(s, 2, w->field);
    store_int_bind_text(s, 3, w->value_json);
    sqlite3_bind_int(s, 4, w->limit);
    sqlite3_bind_int64(s, 5, w->after_id);
    return store_int_many_rows(st, s, sizeof(int64_t), id_from_row, ids_free, (void **)out,
                               "find records by a field", err);
}
