/* SPDX-License-Identifier: MIT */

/*
 * What an operator reads about automations, for both doors (engine/admin.h):
 * the runs with their state and each action's outcome (concord runs, GET
 * /api/runs), and which automation run set a field (concord explain).
 * The runs themselves are made and moved on by engine/automation.c.
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

static const struct config_automation *
automation_of(const struct config *cfg, const char *name)
{
    for (size_t i = 0; cfg != NULL && i < cfg->automation_count; i++) {
        if (strcmp(cfg->automations[i].name, name) == 0)
            return &cfg->automations[i];
    }
    return NULL;
}

static const char *
kind_name(enum config_action_kind k)
{
    static const char *const names[] = {"", "set", "create", "update", "http", "notify", "wait"};

    return (size_t)k < ARRAY_COUNT(names) ? names[k] : "?";
}

static cJSON *
step_json(const struct store_step *s)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddNumberToObject(o, "n", s->n + 1);
    cJSON_AddStringToObject(o, "action", s->kind ? s->kind : "?");
    cJSON_AddStringToObject(o, "state", s->state ? s->state : "?");
    cJSON_AddNumberToObject(o, "attempts", s->attempts);
    if (s->outcome)
        cJSON_AddStringToObject(o, "outcome", s->outcome);
    else
        cJSON_AddNullToObject(o, "outcome");
    if (s->http_status)
        cJSON_AddNumberToObject(o, "http_status", s->http_status);
    if (s->journal_seq)
        cJSON_AddNumberToObject(o, "change", (double)s->journal_seq);
    if (s->inbox_id)
        cJSON_AddNumberToObject(o, "inbox", (double)s->inbox_id);
    add_time(o, "at", s->at_ms);
    return o;
}

/* The actions of a run: those it reached as they went, the rest "pending"
 * (or "not run" once the run ended). */
static cJSON *
actions_json(const struct config_automation *a, const struct store_run *r,
             const struct store_step *steps, int n)
{
    cJSON *arr = cJSON_CreateArray();
    int live = strcmp(r->state, "running") == 0 || strcmp(r->state, "waiting") == 0;
    size_t count = a != NULL ? a->action_count : 0;

    for (int i = 0; i < n; i++) {
        if ((size_t)steps[i].n >= count || strcmp(steps[i].kind, "cut") == 0)
            cJSON_AddItemToArray(arr, step_json(&steps[i]));
    }
    for (size_t k = 0; k < count; k++) {
        const struct store_step *s = NULL;
        cJSON *o;

        for (int i = 0; i < n; i++) {
            if ((size_t)steps[i].n == k && strcmp(steps[i].kind, "cut") != 0)
                s = &steps[i];
        }
        if (s != NULL) {
            cJSON_AddItemToArray(arr, step_json(s));
            continue;
        }
        o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "n", (double)k + 1);
        cJSON_AddStringToObject(o, "action", kind_name(a->actions[k].kind));
        cJSON_AddStringToObject(o, "state", live ? "pending" : "not run");
        cJSON_AddNumberToObject(o, "attempts", 0);
        cJSON_AddNullToObject(o, "outcome");
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

static cJSON *
run_json(const struct config *cfg, const struct store_run *r, const struct store_step *steps, int n)
{
    cJSON *o = cJSON_CreateObject(), *ctx = r->context ? cJSON_Parse(r->context) : NULL;
    const cJSON *chain = cJSON_GetObjectItemCaseSensitive(ctx, "chain");

    cJSON_AddNumberToObject(o, "id", (double)r->id);
    cJSON_AddStringToObject(o, "automation", r->automation);
    cJSON_AddNumberToObject(o, "record", (double)r->record_id);
    cJSON_AddStringToObject(o, "model", r->model);
    cJSON_AddNumberToObject(o, "version", (double)r->version);
    cJSON_AddStringToObject(
        o, "event",
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ctx, "event"))
            ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ctx, "event"))
            : "?");
    cJSON_AddStringToObject(
        o, "source",
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ctx, "source"))
            ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ctx, "source"))
            : "?");
    cJSON_AddStringToObject(o, "state", r->state);
    cJSON_AddNumberToObject(o, "depth", r->depth);
    cJSON_AddItemToObject(o, "chain", chain ? cJSON_Duplicate(chain, 1) : cJSON_CreateArray());
    if (strcmp(r->state, "running") == 0 || strcmp(r->state, "waiting") == 0)
        add_time(o, "next_at", r->next_at_ms);
    else
        cJSON_AddNullToObject(o, "next_at");
    if (r->note)
        cJSON_AddStringToObject(o, "note", r->note);
    else
        cJSON_AddNullToObject(o, "note");
    add_time(o, "created_at", r->created_at_ms);
    add_time(o, "updated_at", r->updated_at_ms);
    cJSON_AddItemToObject(o, "actions",
                          actions_json(automation_of(cfg, r->automation), r, steps, n));
    cJSON_Delete(ctx);
    return o;
}

int
admin_runs_json(struct store *st, const struct config *cfg, const struct admin_runs_filter *f,
                cJSON **out, struct error *err)
{
    struct store_runs_query q = {
        .automation = f->automation,
        .record_id = f->record_id,
        .limit = f->limit > 0 ? f->limit : 50,
    };
    struct store_run *runs = NULL;
    cJSON *arr;
    int n;

    /* A name that is no longer in the config may still have runs: no check. */
    n = store_runs_list(st, &q, &runs, err);
    if (n == -1)
        return -1;
    arr = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        struct store_step *steps = NULL;
        int ns = store_steps_list(st, runs[i].id, &steps, err);

        if (ns == -1) {
            cJSON_Delete(arr);
            store_runs_free(runs, n);
            return -1;
        }
        if (f->state == NULL || strcmp(f->state, runs[i].state) == 0)
            cJSON_AddItemToArray(arr, run_json(cfg, &runs[i], steps, ns));
        store_steps_free(steps, ns);
    }
    store_runs_free(runs, n);
    *out = arr;
    return 0;
}

int
admin_automation_setter(struct store *st, const struct config *cfg, int64_t journal_seq,
                        const char *field, char *rule, size_t rule_len, char *mapping,
                        size_t mapping_len, struct error *err)
{
    struct store_run_cause c = {0};
    const struct config_automation *a;
    const struct config_action *act;
    int found = store_step_by_seq(st, journal_seq, &c, err);

    if (found != 1)
        return found;
    a = automation_of(cfg, c.automation);
    act = a != NULL && (size_t)c.step < a->action_count ? &a->actions[c.step] : NULL;
    (void)snprintf(rule, rule_len, "automation %s, run %" PRId64 ", action %d (%s)", c.automation,
                   c.run_id, c.step + 1, act ? kind_name(act->kind) : "no longer in the config");
    (void)snprintf(mapping, mapping_len, "none (set by an automation)");
    for (size_t i = 0; act != NULL && i < act->fields.entry_count; i++) {
        const struct config_map_entry *me = &act->fields.entries[i];

        if (strcmp(me->target, field) != 0)
            continue;
        if (me->source == CONFIG_MAP_PATH)
            (void)snprintf(mapping, mapping_len, "automations.%s: %s <- %s", c.automation, field,
                           me->path);
        else if (me->source == CONFIG_MAP_JQ)
            (void)snprintf(mapping, mapping_len, "automations.%s: %s <- jq %.200s", c.automation,
                           field, me->jq);
        else
            (void)snprintf(mapping, mapping_len, "automations.%s: %s <- a constant", c.automation,
                           field);
    }
    store_run_cause_fini(&c);
    return 1;
}
