/* SPDX-License-Identifier: MIT */

/*
 * concord plan (plan.h): read, merge in a transaction that is rolled back,
 * and report the writes that would follow.
 */

#include "engine/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "connectors/oauth.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include "engine/engine_int.h"
#include "map/map.h"
#include "model/value.h"
#include "store/store.h"

/* The bodies a dry-run read would journal, in order. */
struct collected {
    char **bodies;
    size_t count, cap;
};

static void
collect(void *user, const char *body)
{
    struct collected *c = user;

    if (c->count == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->bodies = xreallocarray(c->bodies, c->cap, sizeof(*c->bodies));
    }
    c->bodies[c->count++] = xstrdup(body);
}

/* Whether collection cc is in scope (NULL: everything). */
static int
in_scope(const struct config *cfg, const char *scope, const struct config_collection *cc)
{
    if (scope == NULL || strcmp(scope, cc->name) == 0)
        return 1;
    for (size_t i = 0; i < cfg->sync_count; i++) {
        if (strcmp(cfg->syncs[i].name, scope) != 0)
            continue;
        for (size_t k = 0; k < cfg->syncs[i].collection_count; k++) {
            if (cfg->syncs[i].collections[k] == cc)
                return 1;
        }
    }
    return 0;
}

static int
scope_exists(const struct config *cfg, const char *scope)
{
    if (scope == NULL || config_collection_find(cfg, scope) != NULL)
        return 1;
    for (size_t i = 0; i < cfg->sync_count; i++) {
        if (strcmp(cfg->syncs[i].name, scope) == 0)
            return 1;
    }
    return 0;
}

static struct engine_plan_change *
add_change(struct engine_plan *p)
{
    p->changes = xreallocarray(p->changes, p->change_count + 1, sizeof(*p->changes));
    memset(&p->changes[p->change_count], 0, sizeof(*p->changes));
    return &p->changes[p->change_count++];
}

/* What job j would write, added to the plan (nothing when it would send
 * nothing). */
static int
plan_job(struct engine *e, const struct job *j, struct engine_plan *p, struct error *err)
{
    int ci = engine_coll_index(e, j->collection);
    struct engine_coll *c = ci >= 0 ? &e->colls[ci] : NULL;
    struct link l = {0};
    struct record rec = {0};
    struct engine_ref_gap gap = {0};
    struct error merr = {0};
    cJSON *state = NULL, *desired = NULL, *base = NULL, *fields = NULL;
    enum job_op op = j->op;
    const char *opname;
    int rc = -1, refs;

    if (c == NULL || c->map_out == NULL)
        return 0;
    if (store_link_get(e->st, j->link_id, &l, err) == -1 ||
        store_record_get(e->st, j->record_id, &rec, err) == -1)
        goto out;
    op = engine_job_op(c, op, rec.is_deleted);
    if (op == 0 || ((op == JOB_OP_DELETE || op == JOB_OP_ARCHIVE) && l.ext_id == NULL) ||
        (op == JOB_OP_DELETE && c->cfg->remove.method == NULL)) {
        rc = 0;
        goto out;
    }
    if (op == JOB_OP_DELETE) {
        struct engine_plan_change *ch = add_change(p);

        ch->system = xstrdup(c->cfg->system->name);
        ch->collection = xstrdup(c->cfg->name);
        ch->op = "delete";
        ch->record_id = j->record_id;
        ch->copy = xstrdup(l.ext_id);
        rc = 0;
        goto out;
    }
    state = cJSON_Parse(rec.state);
    refs = engine_refs_out(e, ci, state, &gap, err);
    if (refs == -1)
        goto out;
    if (map_apply(c->map_out, state, &desired, &merr) == -1) {
        p->issues = xreallocarray(p->issues, p->issue_count + 1, sizeof(*p->issues));
        p->issues[p->issue_count++] = (struct engine_plan_issue){
            .kind = "mapping",
            .collection = xstrdup(c->cfg->name),
            .record_id = j->record_id,
            .reason = xstrdup(merr.msg),
        };
        rc = 0;
        goto out;
    }
    if (op == JOB_OP_ARCHIVE)
        engine_archive_fields(c, desired);
    base = l.ext_id && l.base ? cJSON_Parse(l.base) : NULL;
    if (base != NULL && engine_caldav_is(c->cfg)) {
        /* An event is written whole, as concord knows it with the map's
         * fields over it (caldav.c). */
        cJSON *whole = engine_caldav_compose(desired, base);

        cJSON_Delete(desired);
        desired = whole;
    }
    if (base != NULL) {
        const cJSON *f;

        fields = cJSON_CreateObject();
        cJSON_ArrayForEach(f, desired)
        {
            const cJSON *old = cJSON_GetObjectItemCaseSensitive(base, f->string);

            if (old == NULL || !value_equal(old, f)) {
                cJSON *pair = cJSON_CreateArray();

                cJSON_AddItemToArray(pair, old ? cJSON_Duplicate(old, 1) : cJSON_CreateNull());
                cJSON_AddItemToArray(pair, cJSON_Duplicate(f, 1));
                cJSON_AddItemToObject(fields, f->string, pair);
            }
        }
        if (cJSON_GetArraySize(fields) == 0) {
            rc = 0; /* the copy holds it already: nothing would be sent */
            goto out;
        }
        opname = op == JOB_OP_ARCHIVE ? "archive" : "update";
    } else {
        fields = desired;
        desired = NULL;
        opname = l.ext_id ? (op == JOB_OP_ARCHIVE ? "archive" : "update") : "create";
    }
    struct engine_plan_change *ch = add_change(p);

    ch->system = xstrdup(c->cfg->system->name);
    ch->collection = xstrdup(c->cfg->name);
    ch->op = opname;
    ch->record_id = j->record_id;
    ch->copy = l.ext_id ? xstrdup(l.ext_id) : NULL;
    ch->fields = value_canonical_text(fields);
    if (refs == 0 && gap.record_id != 0)
        ch->note = xasprintf("after record %lld is created there (field %s refers to it)",
                             (long long)gap.record_id, gap.field);
    rc = 0;
out:
    cJSON_Delete(state);
    cJSON_Delete(desired);
    cJSON_Delete(base);
    cJSON_Delete(fields);
    link_fini(&l);
    record_fini(&rec);
    return rc;
}

static int
cmp_change(const void *a, const void *b)
{
    const struct engine_plan_change *x = a, *y = b;
    int c = strcmp(x->collection, y->collection);

    if (c != 0)
        return c;
    if (x->record_id != y->record_id)
        return x->record_id < y->record_id ? -1 : 1;
    return strcmp(x->op, y->op);
}

/* Read the polled collections in scope, dry. */
static int
read_all(const struct config *cfg, const char *scope, struct engine_plan *p,
         struct collected *found, struct error *err)
{
    struct store *st = NULL;
    struct http_client *http = NULL;
    struct oauth *oauth = NULL;
    int rc = -1;

    if (store_open(&st, cfg->store_url, err) == -1 || http_client_new(&http, err) == -1 ||
        oauth_new(cfg, &oauth, err) == -1)
        goto out;
    for (size_t i = 0; i < cfg->collection_count; i++) {
        const struct config_collection *cc = &cfg->collections[i];

        if (!cc->poll.enabled || !in_scope(cfg, scope, cc))
            continue;
        struct engine_poll_job job = {
            .cfg = cfg,
            .cc = cc,
            .st = st,
            .http = http,
            .oauth = oauth,
            .reconcile = 1,
            .dry_run = 1,
            .collect = collect,
            .user = found,
        };
        p->reads = xreallocarray(p->reads, p->read_count + 1, sizeof(*p->reads));
        p->read_names = xreallocarray(p->read_names, p->read_count + 1, sizeof(char *));
        p->read_names[p->read_count] = xstrdup(cc->name);
        if (engine_poll_run(&job, &p->reads[p->read_count++], err) == -1)
            goto out;
    }
    rc = 0;
out:
    http_client_free(http);
    oauth_free(oauth);
    store_close(st);
    return rc;
}

/* The automation runs the plan's changes started (ids above after_id). */
static int
plan_runs(struct engine *e, int64_t after_id, struct engine_plan *p, struct error *err)
{
    struct store_runs_query q = {.after_id = after_id, .limit = 10000};
    struct store_run *runs = NULL;
    int n = store_runs_list(e->st, &q, &runs, err);

    if (n == -1)
        return -1;
    p->runs = xcalloc((size_t)n + 1, sizeof(*p->runs));
    for (int i = n - 1; i >= 0; i--) {
        const struct store_run *r = &runs[i];
        cJSON *ctx = cJSON_Parse(r->context);
        const char *event = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ctx, "event"));
        struct engine_plan_run *x = &p->runs[p->run_count++];
        char actions[200] = "";
        size_t used = 0;

        for (size_t a = 0; a < e->cfg->automation_count; a++) {
            const struct config_automation *au = &e->cfg->automations[a];
            static const char *const kinds[] = {"",     "set",    "create", "update",
                                                "http", "notify", "wait"};

            if (strcmp(au->name, r->automation) != 0)
                continue;
            for (size_t k = 0; k < au->action_count && used < sizeof(actions); k++)
                used += (size_t)snprintf(actions + used, sizeof(actions) - used, "%s%s",
                                         k > 0 ? ", " : "", kinds[au->actions[k].kind]);
        }
        x->automation = xstrdup(r->automation);
        x->record_id = r->record_id;
        x->version = r->version;
        x->event = xstrdup(event ? event : "?");
        x->actions = xstrdup(actions);
        x->is_cut = strcmp(r->state, "cut") == 0;
        x->is_failed = strcmp(r->state, "failed") == 0;
        cJSON_Delete(ctx);
    }
    store_runs_free(runs, n);
    return 0;
}

int
engine_plan(const struct config *cfg, const char *scope, struct engine_plan *p, struct error *err)
{
    struct collected found = {0};
    struct engine *e = NULL;
    struct job *jobs = NULL;
    struct inbox_entry *before = NULL, *after = NULL;
    int64_t max_seen = 0, seq, max_run = 0;
    int nj = 0, nb = 0, na = 0, rc = -1, in_tx = 0;

    memset(p, 0, sizeof(*p));
    if (!scope_exists(cfg, scope))
        return error_set(err, ERROR_INVALID, "no sync or collection named %s", scope);
    if (read_all(cfg, scope, p, &found, err) == -1 || engine_setup(cfg, &e, err) == -1)
        goto out;
    /* Guarantee: plan changes nothing. All of it happens in a transaction
     * that is rolled back. */
    if (store_begin(e->st, err) == -1)
        goto out;
    in_tx = 1;
    if ((nb = store_inbox_list(e->st, "open", &before, err)) == -1)
        goto out;
    for (int i = 0; i < nb; i++)
        max_seen = before[i].id > max_seen ? before[i].id : max_seen;
    if (store_runs_max_id(e->st, &max_run, err) == -1)
        goto out;
    for (size_t i = 0; i < found.count; i++) {
        cJSON *body = cJSON_Parse(found.bodies[i]);
        const cJSON *coll = cJSON_GetObjectItemCaseSensitive(body, "@poll");
        const struct config_collection *cc =
            cJSON_IsString(coll) ? config_collection_find(cfg, coll->valuestring) : NULL;
        int added = cc ? store_journal_add(e->st, cc->system->name, NULL, clock_now_ms(),
                                           found.bodies[i], strlen(found.bodies[i]), &seq, err)
                       : 0;

        cJSON_Delete(body);
        if (added == -1)
            goto out;
    }
    for (;;) {
        int n = engine_process_journal(e, 256, err);

        if (n == -1)
            goto out;
        if (n == 0)
            break;
    }
    if (plan_runs(e, max_run, p, err) == -1)
        goto out;
    if ((nj = store_job_list(e->st, JOB_PENDING, &jobs, err)) == -1)
        goto out;
    for (int i = 0; i < nj; i++) {
        const struct config_collection *cc = config_collection_find(cfg, jobs[i].collection);

        /* A collection's plan shows every write its read would cause; a
         * sync's, the writes to its collections. */
        int shown = cc != NULL && (scope == NULL || config_collection_find(cfg, scope) != NULL ||
                                   in_scope(cfg, scope, cc));

        if (shown && plan_job(e, &jobs[i], p, err) == -1)
            goto out;
    }
    if ((na = store_inbox_list(e->st, "open", &after, err)) == -1)
        goto out;
    for (int i = na - 1; i >= 0; i--) {
        if (after[i].id <= max_seen)
            continue;
        p->issues = xreallocarray(p->issues, p->issue_count + 1, sizeof(*p->issues));
        p->issues[p->issue_count++] = (struct engine_plan_issue){
            .kind = inbox_kind_name(after[i].kind),
            .collection = after[i].collection ? xstrdup(after[i].collection) : NULL,
            .record_id = after[i].record_id,
            .reason = xstrdup(after[i].reason),
        };
    }
    if (p->change_count > 1)
        qsort(p->changes, p->change_count, sizeof(*p->changes), cmp_change);
    rc = 0;
out:
    if (in_tx)
        store_rollback(e->st);
    if (nj > 0)
        store_jobs_free(jobs, nj);
    if (nb > 0)
        store_inbox_free(before, nb);
    if (na > 0)
        store_inbox_free(after, na);
    for (size_t i = 0; i < found.count; i++)
        free(found.bodies[i]);
    free(found.bodies);
    engine_free(e);
    if (rc == -1)
        engine_plan_fini(p);
    return rc;
}

void
engine_plan_fini(struct engine_plan *p)
{
    for (size_t i = 0; i < p->read_count; i++)
        free(p->read_names[i]);
    free(p->read_names);
    free(p->reads);
    for (size_t i = 0; i < p->change_count; i++) {
        free(p->changes[i].system);
        free(p->changes[i].collection);
        free(p->changes[i].copy);
        free(p->changes[i].fields);
        free(p->changes[i].note);
    }
    free(p->changes);
    for (size_t i = 0; i < p->issue_count; i++) {
        free(p->issues[i].collection);
        free(p->issues[i].reason);
    }
    free(p->issues);
    for (size_t i = 0; i < p->run_count; i++) {
        free(p->runs[i].automation);
        free(p->runs[i].event);
        free(p->runs[i].actions);
    }
    free(p->runs);
    memset(p, 0, sizeof(*p));
}
