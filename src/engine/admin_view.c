/* SPDX-License-Identifier: MIT */

/*
 * What an operator reads (admin.h), as JSON: the inbox, one entry with its
 * attempts and diff, status, a record's history, changes and explanation,
 * a plan, the audit log. `concord X --json` prints these and the admin API
 * sends them, so the two never differ; the CLI's text output is drawn from
 * the same objects.
 *
 * These were the bodies of cli_common.c (the inbox row), cli_inbox.c,
 * cli_status.c, cli_history.c, cli_explain.c and cli_plan.c. Nothing here
 * writes.
 */

#include "engine/admin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include "engine/engine.h"
#include "engine/plan.h"
#include "engine/poll.h"
#include "map/map.h"
#include "model/value.h"
#include "store/store.h"

static void
add_time(cJSON *o, const char *key, int64_t at_ms)
{
    char ts[32];

    if (at_ms > 0)
        cJSON_AddStringToObject(o, key, clock_format_ms(at_ms, ts, sizeof(ts)));
    else
        cJSON_AddNullToObject(o, key);
}

/* ---- the inbox ---- */

cJSON *
admin_entry_json(const struct inbox_entry *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *detail = e->detail ? cJSON_Parse(e->detail) : NULL;
    char ts[32];

    cJSON_AddNumberToObject(o, "id", (double)e->id);
    cJSON_AddStringToObject(o, "kind", inbox_kind_name(e->kind));
    cJSON_AddStringToObject(o, "state", e->state);
    if (e->record_id)
        cJSON_AddNumberToObject(o, "record", (double)e->record_id);
    else
        cJSON_AddNullToObject(o, "record");
    cJSON_AddStringToObject(o, "system", e->system ? e->system : "");
    if (e->collection)
        cJSON_AddStringToObject(o, "collection", e->collection);
    else
        cJSON_AddNullToObject(o, "collection");
    cJSON_AddStringToObject(o, "reason", e->reason ? e->reason : "");
    if (e->http_status)
        cJSON_AddNumberToObject(o, "http_status", e->http_status);
    else
        cJSON_AddNullToObject(o, "http_status");
    if (e->response)
        cJSON_AddStringToObject(o, "response", e->response);
    cJSON_AddNumberToObject(o, "attempts", e->attempts);
    if (e->job_id)
        cJSON_AddNumberToObject(o, "job", (double)e->job_id);
    if (e->journal_seq)
        cJSON_AddNumberToObject(o, "change", (double)e->journal_seq);
    cJSON_AddStringToObject(o, "created_at", clock_format_ms(e->created_at_ms, ts, sizeof(ts)));
    if (e->field != NULL)
        cJSON_AddStringToObject(o, "field", e->field);
    if (detail != NULL)
        cJSON_AddItemToObject(o, "detail", detail);
    return o;
}

int
admin_inbox_json(struct store *st, enum inbox_kind kind, int open_only, cJSON **out,
                 struct error *err)
{
    struct inbox_entry *list = NULL;
    int n = kind == 0 ? store_inbox_list(st, open_only ? "open" : NULL, &list, err)
                      : store_inbox_by_kind(st, kind, open_only, &list, err);
    cJSON *arr;

    if (n == -1)
        return -1;
    arr = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, admin_entry_json(&list[i]));
    store_inbox_free(list, n);
    *out = arr;
    return 0;
}

/* {field: [copy's value, value to write]} for a job entry, or NULL. */
static cJSON *
job_diff(const struct config *cfg, struct store *st, const struct inbox_entry *e)
{
    const struct config_collection *cc =
        e->collection ? config_collection_find(cfg, e->collection) : NULL;
    const struct config_model *model = cc ? config_model_find(cfg, cc->model) : NULL;
    struct record rec = {0};
    struct link l = {0};
    struct error err = {0};
    struct map *m = NULL;
    cJSON *state = NULL, *desired = NULL, *base = NULL, *diff = NULL;
    const cJSON *f;

    if (model == NULL || cc->map_out.entry_count == 0 ||
        store_record_get(st, e->record_id, &rec, &err) != 1)
        return NULL;
    if (store_link_by_record(st, cc->name, e->record_id, &l, &err) == -1 ||
        map_new(&cc->map_out, model, MAP_OUT, &m, &err) == -1)
        goto out;
    state = cJSON_Parse(rec.state);
    if (map_apply(m, state, &desired, &err) == -1)
        goto out;
    base = l.base ? cJSON_Parse(l.base) : NULL;
    diff = cJSON_CreateObject();
    cJSON_ArrayForEach(f, desired)
    {
        const cJSON *old = base ? cJSON_GetObjectItemCaseSensitive(base, f->string) : NULL;
        cJSON *pair;

        if (old != NULL && value_equal(old, f))
            continue;
        pair = cJSON_AddArrayToObject(diff, f->string);
        cJSON_AddItemToArray(pair, old ? cJSON_Duplicate(old, 1) : cJSON_CreateNull());
        cJSON_AddItemToArray(pair, cJSON_Duplicate(f, 1));
    }
out:
    cJSON_Delete(state);
    cJSON_Delete(desired);
    cJSON_Delete(base);
    map_free(m);
    link_fini(&l);
    record_fini(&rec);
    return diff;
}

static int
attempts_json(struct store *st, int64_t job_id, cJSON **out, struct error *err)
{
    struct attempt_row *rows = NULL;
    int n = job_id ? store_attempts_list(st, job_id, &rows, err) : 0;
    char ts[32];

    if (n == -1)
        return -1;
    *out = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        cJSON *a = cJSON_CreateObject();

        cJSON_AddNumberToObject(a, "n", rows[i].n);
        cJSON_AddStringToObject(a, "at", clock_format_ms(rows[i].at_ms, ts, sizeof(ts)));
        cJSON_AddStringToObject(a, "outcome", rows[i].outcome ? rows[i].outcome : "");
        if (rows[i].http_status)
            cJSON_AddNumberToObject(a, "http_status", rows[i].http_status);
        cJSON_AddStringToObject(a, "request", rows[i].request ? rows[i].request : "");
        cJSON_AddStringToObject(a, "response", rows[i].response ? rows[i].response : "");
        cJSON_AddNumberToObject(a, "elapsed_ms", (double)rows[i].elapsed_ms);
        cJSON_AddItemToArray(*out, a);
    }
    if (n > 0)
        store_attempts_free(rows, n);
    return 0;
}

int
admin_entry_detail_json(struct store *st, const struct config *cfg, int64_t id, cJSON **out,
                        struct error *err)
{
    struct inbox_entry e = {0};
    cJSON *o, *attempts = NULL, *diff;
    int found = store_inbox_get_full(st, id, &e, err);

    if (found != 1)
        return found;
    if (attempts_json(st, e.job_id, &attempts, err) == -1) {
        inbox_entry_fini(&e);
        return -1;
    }
    o = admin_entry_json(&e);
    cJSON_AddItemToObject(o, "attempts_made", attempts);
    diff = e.job_id ? job_diff(cfg, st, &e) : NULL;
    cJSON_AddItemToObject(o, "diff", diff ? diff : cJSON_CreateNull());
    inbox_entry_fini(&e);
    *out = o;
    return 1;
}

/* ---- status ---- */

static cJSON *
system_json(const char *name, const struct store_system_stats *s)
{
    cJSON *o = cJSON_CreateObject(), *br;

    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddNumberToObject(o, "backlog", (double)s->backlog);
    cJSON_AddNumberToObject(o, "in_flight", (double)s->in_flight);
    cJSON_AddNumberToObject(o, "failed", (double)s->failed);
    add_time(o, "last_success_at", s->last_success_at_ms);
    add_time(o, "last_error_at", s->last_error_at_ms);
    if (s->last_error[0] != '\0')
        cJSON_AddStringToObject(o, "last_error", s->last_error);
    else
        cJSON_AddNullToObject(o, "last_error");
    cJSON_AddBoolToObject(o, "paused", s->is_paused);
    if (s->is_paused)
        cJSON_AddStringToObject(o, "paused_by", s->paused_by);
    br = cJSON_AddObjectToObject(o, "breaker");
    cJSON_AddStringToObject(br, "state", s->breaker[0] ? s->breaker : "closed");
    if (s->breaker_reason[0] != '\0')
        cJSON_AddStringToObject(br, "reason", s->breaker_reason);
    add_time(br, "since", s->breaker_at_ms);
    return o;
}

/* A read's progress as its reader noted it, with the line concord status
 * and the dashboard show ("412 of 1,000 rows (41%), ...") and the share
 * (percent; none while the total is unknown). */
static int64_t
count_of(const cJSON *o, const char *key)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, key);

    return cJSON_IsNumber(n) ? (int64_t)n->valuedouble : 0;
}

static cJSON *
progress_json(const char *text)
{
    cJSON *o = cJSON_Parse(text);
    struct engine_poll_report r = {0};
    char line[160];

    if (!cJSON_IsObject(o))
        return o;
    r.read = count_of(o, "read");
    r.expected = count_of(o, "expected");
    r.elapsed_ms = count_of(o, "elapsed_ms");
    engine_poll_progress_line(&r, 0, line, sizeof(line));
    cJSON_AddStringToObject(o, "text", line);
    if (engine_poll_progress_pct(&r) >= 0)
        cJSON_AddNumberToObject(o, "percent", engine_poll_progress_pct(&r));
    return o;
}

/* A polled collection's state; reading: a read holds its lease now (its
 * next_at is then the time it fell due, in the past: "now" says more). */
static cJSON *
poll_json(const char *collection, const struct store_poll *p, int reading)
{
    cJSON *o = cJSON_CreateObject();
    char ts[32];

    cJSON_AddStringToObject(o, "collection", collection);
    cJSON_AddStringToObject(o, "last_ok_at",
                            p->last_ok_at_ms > 0 ? clock_format_ms(p->last_ok_at_ms, ts, sizeof(ts))
                                                 : "never");
    cJSON_AddStringToObject(
        o, "next_at",
        p->next_at_ms <= 0 || reading ? "now" : clock_format_ms(p->next_at_ms, ts, sizeof(ts)));
    cJSON_AddBoolToObject(o, "reading", reading);
    cJSON_AddNumberToObject(o, "rows_read", (double)p->rows_read);
    if (p->last_error)
        cJSON_AddStringToObject(o, "last_error", p->last_error);
    if (p->progress && reading) /* a reader killed part way left its last */
        cJSON_AddItemToObject(o, "progress", progress_json(p->progress));
    if (p->report)
        cJSON_AddItemToObject(o, "last_report", cJSON_Parse(p->report));
    return o;
}

int
admin_status_json(struct store *st, const struct config *cfg, cJSON **out, struct error *err)
{
    cJSON *root = cJSON_CreateObject(), *systems = cJSON_AddArrayToObject(root, "systems");
    cJSON *polls = NULL;

    for (size_t i = 0; i < cfg->system_count; i++) {
        struct store_system_stats s;

        struct engine_health h;
        cJSON *o, *ho;

        if (store_system_stats(st, cfg->systems[i].name, &s, err) == -1 ||
            engine_health_of(cfg, &cfg->systems[i], st, clock_now_ms(), &h, err) == -1)
            goto fail;
        o = system_json(cfg->systems[i].name, &s);
        /* The health first, after the name: what an operator reads first. */
        ho = cJSON_CreateObject();
        cJSON_AddStringToObject(ho, "state", engine_health_name(h.state));
        if (h.reason[0] != '\0')
            cJSON_AddStringToObject(ho, "reason", h.reason);
        else
            cJSON_AddNullToObject(ho, "reason");
        cJSON_AddItemToObject(o, "health", ho);
        cJSON_AddItemToArray(systems, o);
    }
    for (size_t i = 0; i < cfg->collection_count; i++) {
        const struct config_collection *cc = &cfg->collections[i];
        struct store_poll p = {0};
        char *holder = NULL;

        if (!cc->poll.enabled)
            continue;
        if (store_poll_get(st, cc->name, -1, &p, err) == -1 ||
            store_poll_holder(st, cc->name, clock_now_ms(), &holder, err) == -1) {
            store_poll_fini(&p);
            goto fail;
        }
        if (polls == NULL)
            polls = cJSON_AddArrayToObject(root, "polls");
        cJSON_AddItemToArray(polls, poll_json(cc->name, &p, holder != NULL));
        free(holder);
        store_poll_fini(&p);
    }
    *out = root;
    return 0;
fail:
    cJSON_Delete(root);
    return -1;
}

/* ---- records ---- */

int
admin_record_json(struct store *st, int64_t id, cJSON **out, struct error *err)
{
    struct record rec = {0};
    int found = store_record_get(st, id, &rec, err);
    cJSON *o;

    if (found != 1)
        return found;
    o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "record", (double)rec.id);
    cJSON_AddStringToObject(o, "model", rec.model);
    cJSON_AddNumberToObject(o, "version", (double)rec.version);
    cJSON_AddBoolToObject(o, "deleted", rec.is_deleted);
    add_time(o, "updated_at", rec.updated_at_ms);
    /* Stored JSON goes out as it is: cJSON would round large numbers. */
    cJSON_AddItemToObject(o, "state", cJSON_CreateRaw(rec.state ? rec.state : "null"));
    record_fini(&rec);
    *out = o;
    return 1;
}

static cJSON *
version_json(const struct version *v)
{
    cJSON *o = cJSON_CreateObject();
    char ts[32];

    cJSON_AddNumberToObject(o, "version", (double)v->version);
    cJSON_AddStringToObject(o, "source", v->source ? v->source : "");
    cJSON_AddStringToObject(o, "at", clock_format_ms(v->at_ms, ts, sizeof(ts)));
    if (v->journal_seq)
        cJSON_AddNumberToObject(o, "change", (double)v->journal_seq);
    /* Stored JSON goes out as it is: cJSON would round large numbers. */
    cJSON_AddItemToObject(o, "state", cJSON_CreateRaw(v->state ? v->state : "null"));
    cJSON_AddItemToObject(o, "diff", cJSON_CreateRaw(v->diff ? v->diff : "null"));
    return o;
}

int
admin_history_json(struct store *st, int64_t id, cJSON **out, struct error *err)
{
    struct version *list = NULL;
    int n = store_history(st, id, &list, err);
    cJSON *arr;

    if (n <= 0)
        return n;
    arr = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, version_json(&list[i]));
    store_versions_free(list, n);
    *out = arr;
    return 1;
}

static cJSON *
copy_change_json(const struct store_copy_change *c)
{
    cJSON *o = cJSON_CreateObject();
    char ts[32];

    cJSON_AddNumberToObject(o, "change", (double)c->seq);
    cJSON_AddStringToObject(o, "system", c->system ? c->system : "");
    if (c->collection)
        cJSON_AddStringToObject(o, "collection", c->collection);
    if (c->ext_id)
        cJSON_AddStringToObject(o, "copy", c->ext_id);
    cJSON_AddStringToObject(o, "received_at", clock_format_ms(c->received_at_ms, ts, sizeof(ts)));
    cJSON_AddStringToObject(o, "state", change_state_name(c->state));
    if (c->note)
        cJSON_AddStringToObject(o, "note", c->note);
    else
        cJSON_AddNullToObject(o, "note");
    return o;
}

int
admin_changes_json(struct store *st, int64_t id, cJSON **out, struct error *err)
{
    struct store_copy_change *list = NULL;
    struct record rec = {0};
    int n = store_copy_changes(st, id, &list, err), found = 1;
    cJSON *arr;

    if (n == -1)
        return -1;
    if (n == 0) {
        found = store_record_get(st, id, &rec, err);
        record_fini(&rec);
        if (found != 1)
            return found;
    }
    arr = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, copy_change_json(&list[i]));
    store_copy_changes_free(list, n);
    *out = arr;
    return 1;
}

/* ---- explain ---- */

/* The sync of a model (the first), or NULL. */
static const struct config_sync *
sync_of(const struct config *cfg, const char *model)
{
    for (size_t i = 0; i < cfg->sync_count; i++) {
        if (cfg->syncs[i].model != NULL && strcmp(cfg->syncs[i].model, model) == 0)
            return &cfg->syncs[i];
    }
    return NULL;
}

/* How source's map_in reads field: "path email", "jq ...", "constant". */
static void
mapping_of(const struct config *cfg, const char *source, const char *field, char *out,
           size_t out_len)
{
    const struct config_collection *cc = source ? config_collection_find(cfg, source) : NULL;

    (void)snprintf(out, out_len, "%s", cc ? "not mapped in now" : "none (not read from a system)");
    for (size_t i = 0; cc != NULL && i < cc->map_in.entry_count; i++) {
        const struct config_map_entry *me = &cc->map_in.entries[i];

        if (strcmp(me->target, field) != 0)
            continue;
        if (me->source == CONFIG_MAP_PATH)
            (void)snprintf(out, out_len, "%s.map_in: %s <- %s", cc->name, field, me->path);
        else if (me->source == CONFIG_MAP_JQ)
            (void)snprintf(out, out_len, "%s.map_in: %s <- jq %.200s", cc->name, field, me->jq);
        else
            (void)snprintf(out, out_len, "%s.map_in: %s <- a constant", cc->name, field);
        return;
    }
}

/* What explain reads besides the record, and what it must free. */
struct explain {
    const struct config *cfg;
    struct store *st;
    struct record rec;
    struct version *versions;
    int nv;
    struct inbox_entry *conflicts;
    int nc;
    cJSON **details; /* the conflicts' parsed detail */
    cJSON *meta;     /* {field: [at_ms, source]} */
};

/* The rule that let source set field. */
static void
rule_of(const struct explain *x, const char *source, const char *field, int ci, char *out,
        size_t out_len)
{
    const struct config *cfg = x->cfg;
    const struct config_sync *s = sync_of(cfg, x->rec.model);
    const struct config_collection *cc = source ? config_collection_find(cfg, source) : NULL;
    const struct inbox_entry *conflict = ci >= 0 ? &x->conflicts[ci] : NULL;
    const cJSON *detail = ci >= 0 ? x->details[ci] : NULL;
    const cJSON *policy = cJSON_GetObjectItemCaseSensitive(detail, "policy");
    const cJSON *winner = cJSON_GetObjectItemCaseSensitive(detail, "winner");

    if (conflict != NULL && strcmp(conflict->state, "settled") == 0) {
        (void)snprintf(out, out_len,
                       "the last conflict on it (inbox %" PRId64 ") was settled by policy %s, "
                       "for %s",
                       conflict->id, cJSON_IsString(policy) ? policy->valuestring : "?",
                       cJSON_IsString(winner) ? winner->valuestring : "?");
        return;
    }
    if (conflict != NULL) {
        (void)snprintf(out, out_len,
                       "the last conflict on it (inbox %" PRId64 ") was resolved by %s",
                       conflict->id, conflict->state);
        return;
    }
    if (source != NULL && strncmp(source, "operator:", 9) == 0) {
        (void)snprintf(out, out_len, "an operator's change");
        return;
    }
    if (s == NULL || cc == NULL) {
        (void)snprintf(out, out_len, "unknown");
        return;
    }
    for (size_t i = 0; i < s->owner_count; i++) {
        if (strcmp(s->owners[i].field, field) == 0) {
            (void)snprintf(out, out_len, "%s owns %s in sync %s", cc->system->name, field, s->name);
            return;
        }
    }
    (void)snprintf(out, out_len, "%s is an origin of sync %s", cc->system->name, s->name);
}

/* The index of the last closed conflict of the record's field, or -1. */
static int
settled_for(const struct explain *x, const char *field)
{
    int found = -1;

    for (int i = 0; i < x->nc; i++) {
        const struct inbox_entry *c = &x->conflicts[i];

        if (c->record_id == x->rec.id && c->field != NULL && strcmp(c->field, field) == 0 &&
            strcmp(c->state, "open") != 0)
            found = i;
    }
    return found;
}

static cJSON *
field_json(const struct explain *x, const cJSON *f)
{
    const cJSON *when = cJSON_GetObjectItemCaseSensitive(x->meta, f->string);
    const cJSON *src = cJSON_GetArrayItem(when, 1), *at = cJSON_GetArrayItem(when, 0);
    const char *source = cJSON_IsString(src) ? src->valuestring : NULL;
    const struct version *setter = NULL;
    char rule[300], mapping[400], ts[32];
    cJSON *o = cJSON_CreateObject();

    /* The last version whose diff names the field (or the first). */
    for (int i = 0; i < x->nv; i++) {
        cJSON *diff = x->versions[i].diff ? cJSON_Parse(x->versions[i].diff) : NULL;

        if (i == 0 || cJSON_GetObjectItemCaseSensitive(diff, f->string) != NULL)
            setter = &x->versions[i];
        cJSON_Delete(diff);
    }
    if (source == NULL && setter != NULL)
        source = setter->source;
    rule_of(x, source, f->string, settled_for(x, f->string), rule, sizeof(rule));
    mapping_of(x->cfg, source, f->string, mapping, sizeof(mapping));
    if (source != NULL && strncmp(source, "automation:", 11) == 0 && setter != NULL &&
        setter->journal_seq != 0) {
        struct error aerr = {0};
        int found = admin_automation_setter(x->st, x->cfg, setter->journal_seq, f->string, rule,
                                            sizeof(rule), mapping, sizeof(mapping), &aerr);

        if (found != 1)
            (void)snprintf(rule, sizeof(rule), "an automation's change");
    }
    cJSON_AddStringToObject(o, "field", f->string);
    cJSON_AddItemToObject(o, "value", cJSON_Duplicate(f, 1));
    cJSON_AddStringToObject(o, "source", source ? source : "unknown");
    if (setter != NULL) {
        cJSON_AddNumberToObject(o, "version", (double)setter->version);
        if (setter->journal_seq)
            cJSON_AddNumberToObject(o, "change", (double)setter->journal_seq);
    }
    cJSON_AddStringToObject(o, "rule", rule);
    cJSON_AddStringToObject(o, "mapping", mapping);
    cJSON_AddStringToObject(o, "at",
                            clock_format_ms(cJSON_IsNumber(at) ? (int64_t)at->valuedouble
                                            : setter           ? setter->at_ms
                                                               : x->rec.updated_at_ms,
                                            ts, sizeof(ts)));
    return o;
}

static void
explain_fini(struct explain *x)
{
    for (int i = 0; x->details != NULL && i < x->nc; i++)
        cJSON_Delete(x->details[i]);
    free(x->details);
    cJSON_Delete(x->meta);
    if (x->nc > 0)
        store_inbox_free(x->conflicts, x->nc);
    if (x->nv > 0)
        store_versions_free(x->versions, x->nv);
    record_fini(&x->rec);
}

int
admin_explain_json(struct store *st, const struct config *cfg, int64_t id, cJSON **out,
                   struct error *err)
{
    struct explain x = {.cfg = cfg, .st = st};
    char *meta_text = NULL;
    cJSON *o, *fields, *state;
    const cJSON *f;
    int found = store_record_get(st, id, &x.rec, err);

    if (found != 1)
        return found;
    if ((x.nv = store_history(st, id, &x.versions, err)) == -1 ||
        store_record_meta(st, id, &meta_text, err) == -1 ||
        (x.nc = store_inbox_by_kind(st, INBOX_CONFLICT, 0, &x.conflicts, err)) == -1) {
        explain_fini(&x);
        return -1;
    }
    x.details = xcalloc((size_t)x.nc + 1, sizeof(*x.details));
    for (int i = 0; i < x.nc; i++)
        x.details[i] = x.conflicts[i].detail ? cJSON_Parse(x.conflicts[i].detail) : NULL;
    x.meta = meta_text ? cJSON_Parse(meta_text) : NULL;
    free(meta_text);
    o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "record", (double)x.rec.id);
    cJSON_AddStringToObject(o, "model", x.rec.model);
    cJSON_AddNumberToObject(o, "version", (double)x.rec.version);
    cJSON_AddBoolToObject(o, "deleted", x.rec.is_deleted);
    fields = cJSON_AddArrayToObject(o, "fields");
    state = cJSON_Parse(x.rec.state);
    cJSON_ArrayForEach(f, state)
    {
        cJSON_AddItemToArray(fields, field_json(&x, f));
    }
    cJSON_Delete(state);
    explain_fini(&x);
    *out = o;
    return 1;
}

/* ---- plan, audit ---- */

static cJSON *
plan_change_json(const struct engine_plan_change *c)
{
    cJSON *x = cJSON_CreateObject();

    cJSON_AddStringToObject(x, "system", c->system);
    cJSON_AddStringToObject(x, "collection", c->collection);
    cJSON_AddStringToObject(x, "op", c->op);
    cJSON_AddNumberToObject(x, "record", (double)c->record_id);
    if (c->copy)
        cJSON_AddStringToObject(x, "copy", c->copy);
    else
        cJSON_AddNullToObject(x, "copy");
    cJSON_AddItemToObject(x, "fields", c->fields ? cJSON_Parse(c->fields) : cJSON_CreateNull());
    if (c->note)
        cJSON_AddStringToObject(x, "note", c->note);
    return x;
}

cJSON *
admin_plan_json(const struct engine_plan *p)
{
    cJSON *o = cJSON_CreateObject(), *reads = cJSON_AddArrayToObject(o, "reads");
    cJSON *changes = cJSON_AddArrayToObject(o, "changes");
    cJSON *issues = cJSON_AddArrayToObject(o, "issues");

    for (size_t i = 0; i < p->read_count; i++) {
        char *text = engine_poll_report_json(&p->reads[i]);
        cJSON *r = cJSON_Parse(text);

        free(text);
        cJSON_DeleteItemFromObjectCaseSensitive(r, "elapsed_ms");
        cJSON_AddStringToObject(r, "collection", p->read_names[i]);
        cJSON_AddItemToArray(reads, r);
    }
    for (size_t i = 0; i < p->change_count; i++)
        cJSON_AddItemToArray(changes, plan_change_json(&p->changes[i]));
    for (size_t i = 0; i < p->issue_count; i++) {
        cJSON *x = cJSON_CreateObject();

        cJSON_AddStringToObject(x, "kind", p->issues[i].kind);
        if (p->issues[i].collection)
            cJSON_AddStringToObject(x, "collection", p->issues[i].collection);
        cJSON_AddNumberToObject(x, "record", (double)p->issues[i].record_id);
        cJSON_AddStringToObject(x, "reason", p->issues[i].reason);
        cJSON_AddItemToArray(issues, x);
    }
    cJSON *runs = cJSON_AddArrayToObject(o, "automations");

    for (size_t i = 0; i < p->run_count; i++) {
        cJSON *x = cJSON_CreateObject();

        cJSON_AddStringToObject(x, "automation", p->runs[i].automation);
        cJSON_AddNumberToObject(x, "record", (double)p->runs[i].record_id);
        cJSON_AddNumberToObject(x, "version", (double)p->runs[i].version);
        cJSON_AddStringToObject(x, "event", p->runs[i].event);
        cJSON_AddStringToObject(x, "actions", p->runs[i].actions);
        cJSON_AddBoolToObject(x, "cut", p->runs[i].is_cut);
        cJSON_AddBoolToObject(x, "condition_failed", p->runs[i].is_failed);
        cJSON_AddItemToArray(runs, x);
    }
    return o;
}

int
admin_audit_json(struct store *st, int limit, int64_t before_id, cJSON **out, struct error *err)
{
    struct store_audit *list = NULL;
    int n = store_audit_list(st, limit, before_id, &list, err);
    cJSON *arr;

    if (n == -1)
        return -1;
    arr = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON *detail = list[i].detail ? cJSON_Parse(list[i].detail) : NULL;

        cJSON_AddNumberToObject(o, "id", (double)list[i].id);
        add_time(o, "at", list[i].at_ms);
        cJSON_AddStringToObject(o, "who", list[i].who ? list[i].who : "");
        cJSON_AddStringToObject(o, "via", list[i].via ? list[i].via : "");
        cJSON_AddStringToObject(o, "action", list[i].action ? list[i].action : "");
        if (list[i].target)
            cJSON_AddStringToObject(o, "target", list[i].target);
        else
            cJSON_AddNullToObject(o, "target");
        cJSON_AddItemToObject(o, "detail", detail ? detail : cJSON_CreateNull());
        cJSON_AddItemToArray(arr, o);
    }
    store_audit_free(list, n);
    *out = arr;
    return 0;
}
