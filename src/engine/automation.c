/* SPDX-License-Identifier: MIT */

/*
 * Automations (DESIGN.md, step 7; docs/automations.md): when a record
 * changes like this, do that, durably and once.
 *
 * Two halves. The writer, inside the transaction of every new record
 * version (engine_automation_seen(), called by engine_fanout()), decides
 * which automations the version triggers (an event, or a field's
 * transition, and the jq conditions) and adds a run for each, keyed by
 * (automation, record, version): the run commits with the change that
 * caused it or not at all, and a replay, a repeated webhook or a restart
 * that makes no new version adds no run. The same turn cancels the
 * record's waiting runs whose trigger no longer holds.
 *
 * The automation thread, on its own store handle, takes due runs one at a
 * time and carries out their actions in order:
 *   set, create, update  are journaled as a change of ENGINE_AUTOMATION_SYSTEM
 *                        with the delivery id "run:R:N", in the transaction
 *                        that moves the run on: once, whatever happens; the
 *                        writer applies it (merge.c) under the source
 *                        "automation:NAME", and it fans out like any change;
 *   http, notify         are sent, at least once, with the retries of the
 *                        target system's schedule; a permanent failure, or
 *                        the last, parks the run in the inbox, whence
 *                        `concord retry` makes it due again;
 *   wait                 puts the run to sleep in the store until its time,
 *                        so a restart does not lose it.
 * The changes an automation's actions make can trigger automations in
 * turn; each run knows its chain, and one deeper than automation_depth is
 * cut, logged, counted and put in the inbox instead of run.
 */

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "connectors/oauth.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/retry.h"
#include "core/xmalloc.h"
#include "engine/engine_int.h"
#include "http/http_notify.h"
#include "map/map.h"
#include "model/value.h"
#include "store/store.h"

/* The longest the automation thread sleeps: the CLI may have made a run
 * due (concord retry). */
#define AUTO_IDLE_MS 250
/* Bytes of an answer kept in the inbox. */
#define AUTO_MAX_BODY (64 * 1024)
/* Records one update action may change at most. */
#define AUTO_MAX_MATCH 100
/* Records an update's match reads from the store at a time (those that
 * hold its first field), before it checks the others on each. */
#define AUTO_MATCH_PAGE 500
/* An http action held by its system's budget for at most this long waits
 * on the automation thread (outside any transaction); a longer hold (a
 * 429's block, a slow rate) puts the run off in the store instead. */
#define AUTO_NAP_MAX_MS 1000
/* A run held while its system's breaker is half-open (the probe is out)
 * looks again this soon: the probe's answer may close it at any moment. */
#define AUTO_PROBE_LOOK_MS 1000

/* One action, compiled. */
struct auto_action {
    const struct config_action *cfg;
    const struct config_model *model; /* SET, CREATE, UPDATE */
    struct map *fields;               /* SET, CREATE, UPDATE: context -> model fields */
    struct map *record;               /* UPDATE: context -> {"record": id} */
    struct map *match;                /* UPDATE: context -> {field: value} */
    struct map *body;                 /* HTTP: context -> the body */
    const struct config_system *system;
    struct engine_sys *sys; /* HTTP: the system's budget and breaker (budget.c), shared */
};

/* One automation, compiled. */
struct auto_rule {
    const struct config_automation *cfg;
    struct map_jq **conds;
    struct auto_action *actions; /* NULL in the writer's copy */
    /* Its conditions read the run's context only through new and current
     * (map_jq_reads_only()): at a new version, where those two are the
     * record as it is now, they give every waiting run the same answer. */
    int reads_record_only;
};

/* The keys of a run's context that a waiting run's check sets to the
 * record as it is now (still_holds()). */
static const char *const record_keys[] = {"new", "current", NULL};

struct auto_rules {
    struct auto_rule *rules;
    size_t count;
};

/* What a count and a log line are about: family{automation, event} (no
 * event for a family of the one label) and a line of level. */
struct auto_tell {
    struct metric_family *family; /* NULL: no count */
    const char *automation;
    const char *event;
    enum log_level level;
    int64_t record_id;
};

/* A count and a log line of the writer's, held until its transaction
 * commits (tell()). */
struct auto_note {
    struct metric_family *family;
    char *automation, *event;
    enum log_level level;
    int64_t record_id;
    char *line; /* NULL: no line */
};

struct engine_automation {
    struct auto_rules writer; /* triggers and conditions, for the writer */
    struct auto_rules runner; /* the automation thread's own copy (libjq is one thread's) */
    struct store *st;         /* the automation thread's handle */
    struct http_client *http;
    pthread_t thread;
    int started;
    atomic_int stop;
    _Atomic int64_t stop_by; /* clock_mono_ms(): when a stop cuts off a request in flight */
    pthread_cond_t cv;       /* e->mu: wakes the automation thread */
    int kicked;              /* e->mu */
    int added;               /* writer only: runs added since the last kick */
    /* Writer only: the run whose journaled change is being applied. */
    int64_t cause_run;
    int cause_step;
    int cause_depth;
    cJSON *cause_chain; /* the automations that led here, oldest first */
    /* Writer only: counts and lines held until its commit (tell()). */
    struct auto_note *held;
    size_t held_count, held_cap;
    struct metric_family *runs, *actions, *cut;
};

/* ---- compiling ---- */

static int
compile_action(const struct config *cfg, const struct config_action *a, struct auto_action *x,
               struct error *err)
{
    x->cfg = a;
    if (a->model != NULL) {
        x->model = config_model_find(cfg, a->model);
        if (x->model == NULL)
            return error_set(err, ERROR_INVALID, "no model %s", a->model);
        if (map_new(&a->fields, x->model, MAP_IN, &x->fields, err) == -1)
            return error_wrap(err, "fields");
    }
    if (a->record.entry_count > 0 && map_new(&a->record, NULL, MAP_OUT, &x->record, err) == -1)
        return error_wrap(err, "record");
    if (a->match.entry_count > 0 && map_new(&a->match, x->model, MAP_IN, &x->match, err) == -1)
        return error_wrap(err, "match");
    if (a->body.entry_count > 0 && map_new(&a->body, NULL, MAP_OUT, &x->body, err) == -1)
        return error_wrap(err, "body");
    if (a->system != NULL && (x->system = config_system_find(cfg, a->system)) == NULL)
        return error_set(err, ERROR_INVALID, "no system %s", a->system);
    return 0;
}

static void
rules_free(struct auto_rules *r)
{
    for (size_t i = 0; i < r->count; i++) {
        struct auto_rule *x = &r->rules[i];

        for (size_t k = 0; x->conds != NULL && k < x->cfg->condition_count; k++)
            map_jq_free(x->conds[k]);
        free(x->conds);
        for (size_t k = 0; x->actions != NULL && k < x->cfg->action_count; k++) {
            map_free(x->actions[k].fields);
            map_free(x->actions[k].record);
            map_free(x->actions[k].match);
            map_free(x->actions[k].body);
        }
        free(x->actions);
    }
    free(r->rules);
    memset(r, 0, sizeof(*r));
}

static int
compile_rules(const struct config *cfg, int with_actions, struct auto_rules *out, struct error *err)
{
    out->rules = xcalloc(cfg->automation_count + 1, sizeof(*out->rules));
    for (size_t i = 0; i < cfg->automation_count; i++) {
        const struct config_automation *a = &cfg->automations[i];
        struct auto_rule *x = &out->rules[out->count++];

        x->cfg = a;
        x->conds = xcalloc(a->condition_count + 1, sizeof(*x->conds));
        x->reads_record_only = 1;
        for (size_t k = 0; k < a->condition_count; k++) {
            if (map_jq_new(a->conditions[k], &x->conds[k], err) == -1)
                return error_wrap(err, "automation %s: if", a->name);
            x->reads_record_only &= map_jq_reads_only(a->conditions[k], record_keys);
        }
        if (!with_actions)
            continue;
        x->actions = xcalloc(a->action_count + 1, sizeof(*x->actions));
        for (size_t k = 0; k < a->action_count; k++) {
            if (compile_action(cfg, &a->actions[k], &x->actions[k], err) == -1)
                return error_wrap(err, "automation %s: action %zu", a->name, k + 1);
        }
    }
    return 0;
}

static const struct auto_rule *
rule_named(const struct auto_rules *r, const char *name)
{
    for (size_t i = 0; i < r->count; i++) {
        if (strcmp(r->rules[i].cfg->name, name) == 0)
            return &r->rules[i];
    }
    return NULL;
}

static const char *
action_name(enum config_action_kind k)
{
    static const char *const names[] = {"", "set", "create", "update", "http", "notify", "wait"};

    return (size_t)k < ARRAY_COUNT(names) ? names[k] : "?";
}

/*
 * What action a is, in a few words that a reload keeps unless it makes it
 * another action: its kind and its target ("http crm POST /notes", "set
 * order"), not its values or text, and never a secret.
 */
static char *
action_sig(const struct config_action *a)
{
    switch (a->kind) {
    case CONFIG_ACTION_SET:
    case CONFIG_ACTION_CREATE:
    case CONFIG_ACTION_UPDATE:
        return xasprintf("%s %s", action_name(a->kind), a->model ? a->model : "?");
    case CONFIG_ACTION_HTTP:
        return xasprintf("http %s %s %s", a->system ? a->system : "?",
                         a->request.method ? a->request.method : "?",
                         a->request.path ? a->request.path : "?");
    case CONFIG_ACTION_NOTIFY:
    case CONFIG_ACTION_WAIT:
        break;
    }
    return xstrdup(action_name(a->kind));
}

/* The actions of automation a, as action_sig()s: what a run started with. */
static cJSON *
actions_plan(const struct config_automation *a)
{
    cJSON *plan = cJSON_CreateArray();

    for (size_t i = 0; i < a->action_count; i++) {
        char *sig = action_sig(&a->actions[i]);

        cJSON_AddItemToArray(plan, cJSON_CreateString(sig));
        free(sig);
    }
    return plan;
}

/* ---- counts and log lines ---- */

static void
note_emit(const struct auto_note *n)
{
    if (n->family != NULL)
        metric_add(n->family, 1,
                   n->event != NULL ? (const char *[]){n->automation, n->event}
                                    : (const char *[]){n->automation});
    if (n->line != NULL && log_level_current >= n->level)
        log_write(n->level, &(struct log_ctx){.record_id = n->record_id}, "%s", n->line);
}

static void
note_fini(struct auto_note *n)
{
    free(n->automation);
    free(n->event);
    free(n->line);
    memset(n, 0, sizeof(*n));
}

/*
 * Count t and write the line fmt (NULL: none). On the automation thread's
 * handle, at once; on the writer's (st is e->st), once its transaction
 * commits (engine_automation_kick()): a turn, or a change's savepoint,
 * that is rolled back takes back the runs it added or cancelled, and
 * their counts and lines go with them (engine_automation_undo()), or a
 * run would be counted and logged as often as its change was tried.
 */
static void PRINTF_LIKE(4, 5)
    tell(struct engine *e, const struct store *st, const struct auto_tell *t, const char *fmt, ...)
{
    struct engine_automation *a = e->automation;
    struct auto_note n = {
        .family = t->family,
        .automation = xstrdup(t->automation),
        .event = t->event != NULL ? xstrdup(t->event) : NULL,
        .level = t->level,
        .record_id = t->record_id,
    };

    if (fmt != NULL) {
        va_list ap;
        int len;

        va_start(ap, fmt);
        len = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        n.line = xmalloc((size_t)(len > 0 ? len : 0) + 1);
        va_start(ap, fmt);
        (void)vsnprintf(n.line, (size_t)(len > 0 ? len : 0) + 1, fmt, ap);
        va_end(ap);
    }
    if (st != e->st) {
        note_emit(&n);
        note_fini(&n);
        return;
    }
    if (a->held_count == a->held_cap) {
        a->held_cap = a->held_cap ? a->held_cap * 2 : 16;
        a->held = xreallocarray(a->held, a->held_cap, sizeof(*a->held));
    }
    a->held[a->held_count++] = n;
}

size_t
engine_automation_mark(const struct engine *e)
{
    return e->automation != NULL ? e->automation->held_count : 0;
}

void
engine_automation_undo(struct engine *e, size_t mark)
{
    struct engine_automation *a = e->automation;

    while (a != NULL && a->held_count > mark)
        note_fini(&a->held[--a->held_count]);
}

/* ---- triggers ---- */

/* Whether value v (NULL: missing) reads as text t: "null", a string's
 * own text, or another value's canonical JSON ("12", "true"). */
static int
value_is(const cJSON *v, const char *t)
{
    char *text;
    int same;

    if (v == NULL || cJSON_IsNull(v))
        return strcmp(t, "null") == 0;
    if (cJSON_IsString(v))
        return strcmp(v->valuestring, t) == 0;
    text = value_canonical_text(v);
    same = strcmp(text, t) == 0;
    free(text);
    return same;
}

static int
side_accepts(const struct config_values *side, const cJSON *v)
{
    if (side->any)
        return 1;
    for (size_t i = 0; i < side->count; i++) {
        if (value_is(v, side->values[i]))
            return 1;
    }
    return 0;
}

/* Equal, where a missing value and a JSON null are the same. */
static int
same(const cJSON *a, const cJSON *b)
{
    if (a == NULL || cJSON_IsNull(a))
        return b == NULL || cJSON_IsNull(b);
    return b != NULL && value_equal(a, b);
}

/* Whether the change in ctx (event, old, new) is the rule's trigger. */
static int
triggered(const struct config_automation *a, const cJSON *ctx)
{
    const char *event = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ctx, "event"));
    const cJSON *old = cJSON_GetObjectItemCaseSensitive(ctx, "old");
    const cJSON *nv = cJSON_GetObjectItemCaseSensitive(ctx, "new");
    const cJSON *ov, *vv;

    if (event == NULL)
        return 0;
    if (a->field == NULL)
        return ((a->on & CONFIG_ON_CREATED) && strcmp(event, "created") == 0) ||
               ((a->on & CONFIG_ON_UPDATED) && strcmp(event, "updated") == 0) ||
               ((a->on & CONFIG_ON_DELETED) && strcmp(event, "deleted") == 0);
    if (strcmp(event, "deleted") == 0)
        return 0;
    ov = cJSON_IsObject(old) ? cJSON_GetObjectItemCaseSensitive(old, a->field) : NULL;
    vv = cJSON_GetObjectItemCaseSensitive(nv, a->field);
    return !same(ov, vv) && side_accepts(&a->from, ov) && side_accepts(&a->to, vv);
}

/* Whether every condition of rule holds over ctx: 1, 0, or -1 when one
 * fails to run (err says which). */
static int
conditions_hold(const struct auto_rule *r, const cJSON *ctx, struct error *err)
{
    for (size_t i = 0; i < r->cfg->condition_count; i++) {
        int rc = map_jq_test(r->conds[i], ctx, err);

        if (rc != 1)
            return rc == -1 ? error_wrap(err, "automation %s: if %s", r->cfg->name,
                                         r->cfg->conditions[i])
                            : 0;
    }
    return 1;
}

/* The part of still_holds() that reads no run's own context: whether the
 * record (state; deleted) still meets the trigger of a. */
static int
trigger_still_met(const struct config_automation *a, const cJSON *state, int deleted,
                  const char **why)
{
    if (deleted && !(a->on & CONFIG_ON_DELETED)) {
        *why = "the record was deleted";
        return 0;
    }
    if (a->field != NULL &&
        !side_accepts(&a->to, cJSON_GetObjectItemCaseSensitive(state, a->field))) {
        *why = "the field left the value the trigger went to";
        return 0;
    }
    return 1;
}

/*
 * Whether a waiting run's trigger still holds for the record as it is now
 * (state; deleted): the record is live (unless the trigger is its
 * deletion), a transition's field still has a value the trigger goes to,
 * and the conditions hold with "new" the current state. 1, 0, -1.
 */
static int
still_holds(const struct auto_rule *r, const cJSON *ctx, const cJSON *state, int deleted,
            const char **why, struct error *err)
{
    cJSON *now;
    int rc;

    if (!trigger_still_met(r->cfg, state, deleted, why))
        return 0;
    now = cJSON_Duplicate(ctx, 1);
    cJSON_ReplaceItemInObjectCaseSensitive(now, "new", cJSON_Duplicate(state, 1));
    cJSON_DeleteItemFromObjectCaseSensitive(now, "current");
    cJSON_AddItemToObject(now, "current", cJSON_Duplicate(state, 1));
    rc = conditions_hold(r, now, err);
    cJSON_Delete(now);
    if (rc == 0)
        *why = "its conditions no longer hold";
    return rc;
}

/* ---- the writer's half ---- */

/* The old state from the new one and the version's diff {field: [old, new]}. */
static cJSON *
old_state(const cJSON *state, const cJSON *diff)
{
    cJSON *old = cJSON_Duplicate(state, 1);
    const cJSON *pair;

    cJSON_ArrayForEach(pair, diff)
    {
        const cJSON *was = cJSON_GetArrayItem(pair, 0);

        if (strcmp(pair->string, "deleted") == 0)
            continue;
        cJSON_DeleteItemFromObjectCaseSensitive(old, pair->string);
        if (was != NULL && !cJSON_IsNull(was))
            cJSON_AddItemToObject(old, pair->string, cJSON_Duplicate(was, 1));
    }
    return old;
}

/* The context of a new version: what its runs' conditions and actions read. */
static cJSON *
version_context(const struct engine_change *c, const struct version *v)
{
    cJSON *ctx = cJSON_CreateObject(), *diff = v->diff ? cJSON_Parse(v->diff) : NULL;
    cJSON *changed = cJSON_CreateArray();
    const cJSON *pair;
    const char *event = c->version <= 1 ? "created"
                        : c->is_deleted && cJSON_GetObjectItemCaseSensitive(diff, "deleted")
                            ? "deleted"
                            : "updated";

    cJSON_AddNumberToObject(ctx, "record", (double)c->record_id);
    cJSON_AddStringToObject(ctx, "model", c->model);
    cJSON_AddNumberToObject(ctx, "version", (double)c->version);
    cJSON_AddStringToObject(ctx, "event", event);
    cJSON_AddStringToObject(ctx, "source", v->source ? v->source : "unknown");
    cJSON_AddItemToObject(ctx, "old",
                          strcmp(event, "created") == 0   ? cJSON_CreateNull()
                          : strcmp(event, "deleted") == 0 ? cJSON_Duplicate(c->state, 1)
                                                          : old_state(c->state, diff));
    cJSON_AddItemToObject(ctx, "new", cJSON_Duplicate(c->state, 1));
    cJSON_ArrayForEach(pair, diff)
    {
        if (strcmp(pair->string, "deleted") != 0)
            cJSON_AddItemToArray(changed, cJSON_CreateString(pair->string));
    }
    cJSON_AddItemToObject(ctx, "changed", changed);
    cJSON_AddBoolToObject(ctx, "deleted", c->is_deleted);
    cJSON_Delete(diff);
    return ctx;
}

/* The strings of list joined by sep ("a -> b -> c"), into out. */
static const char *
joined_text(const cJSON *list, const char *sep, char *out, size_t len)
{
    const cJSON *n;
    size_t used = 0;

    out[0] = '\0';
    cJSON_ArrayForEach(n, list)
    {
        if (used < len)
            used += (size_t)snprintf(out + used, len - used, "%s%s", used > 0 ? sep : "",
                                     cJSON_IsString(n) ? n->valuestring : "?");
    }
    return out;
}

/* A run deeper than automation_depth: kept as "cut", with an inbox entry
 * (retrying it runs it after all), a warning and a count. */
static int
cut_run(struct engine *e, int64_t run_id, const struct engine_change *c, const char *name,
        const char *chain, struct error *err)
{
    struct engine_automation *a = e->automation;
    struct store_step step = {0};
    char reason[700];
    int64_t id;

    (void)snprintf(reason, sizeof(reason),
                   "automation loop cut: %s would run at depth %d, past automation_depth %lld "
                   "(chain: %s -> %s); retry runs it once, skip drops it",
                   name, (int)(e->cfg->automation_depth + 1), (long long)e->cfg->automation_depth,
                   chain, name);
    tell(e, e->st,
         &(struct auto_tell){
             .family = a->cut, .automation = name, .level = LOG_WARN, .record_id = c->record_id},
         "%s", reason);
    struct inbox_entry entry = {
        .kind = INBOX_FAILED,
        .record_id = c->record_id,
        .reason = reason,
        .created_at_ms = clock_now_ms(),
    };
    if (store_inbox_add(e->st, &entry, &id, err) == -1)
        return -1;
    step = (struct store_step){.run_id = run_id,
                               .n = 0,
                               .kind = "cut",
                               .state = "cut",
                               .outcome = reason,
                               .inbox_id = id,
                               .at_ms = clock_now_ms()};
    return store_step_put(e->st, &step, err);
}

/*
 * A run whose conditions failed to run (a jq error) stops, with an inbox
 * entry (every failure is visible) on its action n (kind): before its
 * first action ("if"), where `concord retry` checks the conditions again
 * (after a fix, say), or at the end of a wait ("wait"), where it goes on
 * after the wait; `concord skip` drops it. The run is "failed" already, or
 * moved there by the caller.
 */
static int
condition_failed(struct engine *e, struct store *st, const struct store_run *run, int n,
                 const char *kind, const char *why, struct error *err)
{
    struct store_step step = {0};
    char reason[900];
    int64_t id;

    (void)snprintf(reason, sizeof(reason),
                   "automation %s, run %lld: a condition failed to run%s: %.650s; retry %s, skip "
                   "drops the run",
                   run->automation, (long long)run->id,
                   strcmp(kind, "wait") == 0 ? " at the end of its wait" : "", why,
                   strcmp(kind, "wait") == 0 ? "goes on after the wait"
                                             : "checks the conditions again");
    tell(e, st,
         &(struct auto_tell){.family = e->automation->runs,
                             .automation = run->automation,
                             .event = "failed",
                             .level = LOG_WARN,
                             .record_id = run->record_id},
         "parked in the inbox: %s", reason);
    struct inbox_entry entry = {
        .kind = INBOX_FAILED,
        .record_id = run->record_id,
        .reason = reason,
        .created_at_ms = clock_now_ms(),
    };
    if (store_inbox_add(st, &entry, &id, err) == -1)
        return -1;
    step = (struct store_step){.run_id = run->id,
                               .n = n,
                               .kind = (char *)(uintptr_t)kind,
                               .state = "failed",
                               .outcome = reason,
                               .inbox_id = id,
                               .at_ms = clock_now_ms()};
    return store_step_put(st, &step, err);
}

/*
 * Add the run of rule r for the version in ctx. Guarantee: once per
 * trigger. The run is keyed by (automation, record, version) and added in
 * the transaction of the version itself: the change that made the version
 * commits with its runs or not at all, and no repeat of it adds a second.
 */
static int
add_run(struct engine *e, const struct auto_rule *r, const struct engine_change *c, cJSON *ctx,
        const char *if_error, struct error *err)
{
    struct engine_automation *a = e->automation;
    int depth = a->cause_run != 0 ? a->cause_depth + 1 : 0;
    int cut = depth > e->cfg->automation_depth;
    cJSON *chain = a->cause_chain ? cJSON_Duplicate(a->cause_chain, 1) : cJSON_CreateArray();
    char chain_buf[400], *text;
    int64_t id = 0;
    int rc;

    (void)joined_text(chain, " -> ", chain_buf, sizeof(chain_buf));
    cJSON_AddItemToArray(chain, cJSON_CreateString(r->cfg->name));
    cJSON_AddStringToObject(ctx, "automation", r->cfg->name);
    cJSON_AddNumberToObject(ctx, "depth", depth);
    cJSON_AddItemToObject(ctx, "chain", chain);
    /* A run goes on by its action's number: the actions it started with
     * tell whether a reload changed what that number means. */
    cJSON_AddItemToObject(ctx, "plan", actions_plan(r->cfg));
    text = value_canonical_text(ctx);
    struct store_run run = {
        .automation = r->cfg->name,
        .record_id = c->record_id,
        .version = c->version,
        .model = (char *)(uintptr_t)c->model,
        .depth = depth,
        .state = cut        ? "cut"
                 : if_error ? "failed"
                            : "running",
        .next_at_ms = clock_now_ms(),
        .context = text,
        .note = cut        ? "automation loop cut: past automation_depth"
                : if_error ? "a condition failed to run"
                           : NULL,
        .created_at_ms = clock_now_ms(),
    };
    rc = store_run_add(e->st, &run, &id, err);
    free(text);
    if (rc != 1)
        return rc; /* 0: this version started it before (a replay, a repeat) */
    /* Its line comes below, once it is known what became of it. */
    tell(e, e->st,
         &(struct auto_tell){
             .family = a->runs, .automation = r->cfg->name, .event = cut ? "cut" : "started"},
         NULL);
    if (cut)
        return cut_run(e, id, c, r->cfg->name, chain_buf, err);
    if (if_error != NULL)
        return condition_failed(e, e->st,
                                &(struct store_run){.id = id,
                                                    .automation = (char *)(uintptr_t)r->cfg->name,
                                                    .record_id = c->record_id},
                                0, "if", if_error, err);
    a->added++;
    tell(e, e->st,
         &(struct auto_tell){
             .automation = r->cfg->name, .level = LOG_INFO, .record_id = c->record_id},
         "automation %s: run %lld for version %lld of record %lld", r->cfg->name, (long long)id,
         (long long)c->version, (long long)c->record_id);
    return 0;
}

/* A run the writer cancels: its trigger no longer holds. */
static int
cancel_run(struct engine *e, struct store *st, const struct store_run *run, const char *why,
           struct error *err)
{
    char note[200];
    struct store_run_move m = {
        .id = run->id,
        .from = run->state,
        .state = "cancelled",
        .step = run->step,
        .attempts = run->attempts,
        .next_at_ms = run->next_at_ms,
        .note = note,
        .now_ms = clock_now_ms(),
    };
    int rc;

    (void)snprintf(note, sizeof(note), "cancelled: the trigger no longer holds (%s)", why);
    rc = store_run_set(st, &m, err);
    if (rc != 1)
        return rc;
    tell(e, st,
         &(struct auto_tell){.family = e->automation->runs,
                             .automation = run->automation,
                             .event = "cancelled",
                             .level = LOG_INFO,
                             .record_id = run->record_id},
         "automation %s: run %lld %s", run->automation, (long long)run->id, note);
    return store_step_outcome(st, run->id, run->step, "cancelled", note, m.now_ms, err);
}

/*
 * Whether r's conditions hold for every waiting run at once, with the
 * record as it is now (state): r->reads_record_only says that the rest of
 * a run's context cannot change their answer, so a context of new and
 * current alone gives each run's answer. 1 only when they hold; a 0 or a
 * failure to run is left to the runs' own checks, which tell each run.
 */
static int
holds_for_all(const struct auto_rule *r, const cJSON *state)
{
    cJSON *now = cJSON_CreateObject();
    struct error err = {0};
    int rc;

    cJSON_AddItemToObject(now, "new", cJSON_Duplicate(state, 1));
    cJSON_AddItemToObject(now, "current", cJSON_Duplicate(state, 1));
    rc = conditions_hold(r, now, &err);
    cJSON_Delete(now);
    return rc == 1;
}

/*
 * The automations of the change's model whose waiting runs all still hold
 * at this version, known without reading one: a trigger the record still
 * meets, and no conditions, or conditions that read only the record and
 * hold for it now. A JSON array of names (free()), or NULL for none.
 * Every version of a record checks its waiting runs, and with `on:
 * updated` and a long wait each version adds one: reading them all (and
 * running their conditions one by one) made a record that changes often
 * cost the square of its versions.
 */
static char *
rules_kept(const struct auto_rules *rs, const struct engine_change *c)
{
    cJSON *names = cJSON_CreateArray();
    char *text = NULL;

    for (size_t i = 0; i < rs->count; i++) {
        const struct auto_rule *r = &rs->rules[i];
        const char *why = NULL;

        if (strcmp(r->cfg->model, c->model) != 0 ||
            !trigger_still_met(r->cfg, c->state, c->is_deleted, &why))
            continue;
        if (r->cfg->condition_count == 0 || (r->reads_record_only && holds_for_all(r, c->state)))
            cJSON_AddItemToArray(names, cJSON_CreateString(r->cfg->name));
    }
    if (cJSON_GetArraySize(names) > 0)
        text = value_canonical_text(names);
    cJSON_Delete(names);
    return text;
}

/* The record's waiting runs whose trigger no longer holds are cancelled. */
static int
recheck_waiting(struct engine *e, const struct engine_change *c, struct error *err)
{
    struct store_run *runs = NULL;
    char *kept = rules_kept(&e->automation->writer, c);
    int n = store_runs_waiting(e->st, c->record_id, kept, &runs, err), rc = 0;

    for (int i = 0; i < n && rc == 0; i++) {
        const struct auto_rule *r = rule_named(&e->automation->writer, runs[i].automation);
        cJSON *ctx = cJSON_Parse(runs[i].context);
        const char *why = "the automation is no longer in the config";
        struct error cerr = {0};
        int holds = r != NULL && ctx != NULL
                        ? still_holds(r, ctx, c->state, c->is_deleted, &why, &cerr)
                        : 0;

        if (holds == -1) {
            tell(e, e->st,
                 &(struct auto_tell){.automation = runs[i].automation,
                                     .level = LOG_WARN,
                                     .record_id = c->record_id},
                 "%s: the run waits on", cerr.msg);
            holds = 1;
        }
        if (!holds)
            rc = cancel_run(e, e->st, &runs[i], why, err);
        cJSON_Delete(ctx);
    }
    store_runs_free(runs, n);
    free(kept);
    return n == -1 ? -1 : rc;
}

static int
model_has_rules(const struct auto_rules *r, const char *model)
{
    for (size_t i = 0; i < r->count; i++) {
        if (r->rules[i].cfg->model != NULL && strcmp(r->rules[i].cfg->model, model) == 0)
            return 1;
    }
    return 0;
}

int
engine_automation_seen(struct engine *e, const struct engine_change *c, struct error *err)
{
    struct engine_automation *a = e->automation;
    struct version v = {0};
    cJSON *base;
    int found, rc = 0;

    if (a == NULL || !model_has_rules(&a->writer, c->model))
        return 0;
    found = store_version_get(e->st, c->record_id, c->version, &v, err);
    if (found != 1)
        return found;
    base = version_context(c, &v);
    for (size_t i = 0; i < a->writer.count && rc == 0; i++) {
        const struct auto_rule *r = &a->writer.rules[i];
        struct error cerr = {0};
        cJSON *ctx;
        int holds;

        if (strcmp(r->cfg->model, c->model) != 0 || !triggered(r->cfg, base))
            continue;
        ctx = cJSON_Duplicate(base, 1);
        cJSON_AddStringToObject(ctx, "automation", r->cfg->name);
        holds = conditions_hold(r, ctx, &cerr);
        cJSON_DeleteItemFromObjectCaseSensitive(ctx, "automation");
        /* A condition that failed to run is a failure like any: the run
         * is kept, failed, with an inbox entry whose retry checks again. */
        if (holds == -1)
            cJSON_AddTrueToObject(ctx, "if_error");
        if (holds != 0)
            rc = add_run(e, r, c, ctx, holds == -1 ? cerr.msg : NULL, err);
        cJSON_Delete(ctx);
    }
    cJSON_Delete(base);
    version_fini(&v);
    return rc == -1 ? -1 : recheck_waiting(e, c, err);
}

void
engine_automation_kick(struct engine *e)
{
    struct engine_automation *a = e->automation;

    if (a == NULL)
        return;
    for (size_t i = 0; i < a->held_count; i++) {
        note_emit(&a->held[i]);
        note_fini(&a->held[i]);
    }
    a->held_count = 0;
    if (a->added == 0)
        return;
    a->added = 0;
    pthread_mutex_lock(&e->mu);
    a->kicked = 1;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&e->mu);
}

int
engine_automation_begin(struct engine *e, int64_t seq, struct error *err)
{
    struct engine_automation *a = e->automation;
    struct store_run_cause cause = {0};
    cJSON *ctx;
    int found;

    if (a == NULL)
        return 0;
    found = store_step_by_seq(e->st, seq, &cause, err);
    if (found != 1)
        return found;
    ctx = cause.context ? cJSON_Parse(cause.context) : NULL;
    a->cause_run = cause.run_id;
    a->cause_step = cause.step;
    a->cause_depth = cause.depth;
    cJSON_Delete(a->cause_chain);
    a->cause_chain = cJSON_DetachItemFromObjectCaseSensitive(ctx, "chain");
    if (!cJSON_IsArray(a->cause_chain)) {
        cJSON_Delete(a->cause_chain);
        a->cause_chain = cJSON_CreateArray();
        cJSON_AddItemToArray(a->cause_chain, cJSON_CreateString(cause.automation));
    }
    cJSON_Delete(ctx);
    store_run_cause_fini(&cause);
    return 0;
}

int
engine_automation_end(struct engine *e, int ok, const char *outcome, struct error *err)
{
    struct engine_automation *a = e->automation;
    int rc = 0;

    if (a == NULL || a->cause_run == 0)
        return 0;
    rc = store_step_outcome(e->st, a->cause_run, a->cause_step, ok ? "ok" : "refused", outcome,
                            clock_now_ms(), err);
    engine_automation_abandon(e);
    return rc;
}

void
engine_automation_abandon(struct engine *e)
{
    struct engine_automation *a = e->automation;

    if (a == NULL)
        return;
    a->cause_run = 0;
    cJSON_Delete(a->cause_chain);
    a->cause_chain = NULL;
}

/* ---- templates ---- */

/* Append text to b; percent-encoded (RFC 3986 unreserved kept) with encode. */
static int
put_text(struct buf *b, const char *text, int encode)
{
    if (!encode)
        return buf_append(b, text, strlen(text));
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        char esc[4];
        int ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                 *p == '-' || *p == '.' || *p == '_' || *p == '~';

        if (ok && buf_append(b, (const char *)p, 1) == -1)
            return -1;
        (void)snprintf(esc, sizeof(esc), "%%%02X", *p);
        if (!ok && buf_append(b, esc, 3) == -1)
            return -1;
    }
    return 0;
}

/* Whether text, as a whole segment of a URL's path, is "." or "..": curl
 * resolves those (RFC 3986), so /notes/.. would go to /. */
static int
dot_segment(const char *text)
{
    return strcmp(text, ".") == 0 || strcmp(text, "..") == 0;
}

/*
 * tmpl with each {path} replaced by the value at path in ctx (a string as
 * it is, null as nothing, anything else as JSON). Returns a malloc()ed
 * string, or NULL with why (len bytes) set: too long, or, for a URL's path
 * (is_path: percent-encoded), a placeholder with no value or a dot segment
 * as its value, which would send the request elsewhere than its template
 * says (the collection, a level up), as a delivery refuses one
 * (engine_expand_path()).
 */
static char *
render(const char *tmpl, const cJSON *ctx, int is_path, char *why, size_t len)
{
    struct buf b;
    char *out = NULL;

    buf_init(&b, 64 * 1024);
    for (const char *s = tmpl; *s != '\0';) {
        const char *open = strchr(s, '{'), *close = open ? strchr(open, '}') : NULL;
        char *path, *text;
        const cJSON *v;

        if (open == NULL || close == NULL) {
            if (buf_append(&b, s, strlen(s)) == -1)
                goto toolong;
            break;
        }
        if (buf_append(&b, s, (size_t)(open - s)) == -1)
            goto toolong;
        path = xstrndup(open + 1, (size_t)(close - open - 1));
        v = value_path_get(ctx, path[0] == '.' ? path + 1 : path);
        text = v == NULL || cJSON_IsNull(v) ? xstrdup("")
               : cJSON_IsString(v)          ? xstrdup(v->valuestring)
                                            : value_canonical_text(v);
        if (is_path && (text[0] == '\0' || dot_segment(text))) {
            (void)snprintf(why, len,
                           text[0] == '\0' ? "no value for {%s}" : "{%s} is \"%s\", a dot segment",
                           path, text);
            free(path);
            free(text);
            goto out;
        }
        free(path);
        if (put_text(&b, text, is_path) == -1) {
            free(text);
            goto toolong;
        }
        free(text);
        s = close + 1;
    }
    out = buf_take(&b);
    goto out;
toolong:
    (void)snprintf(why, len, "longer than 64 KiB once filled");
out:
    buf_fini(&b);
    return out;
}

/* ---- the automation thread ---- */

/* What one action came to. */
enum auto_verdict {
    AUTO_OK = 1,
    AUTO_RETRY,  /* transient: try again on the schedule */
    AUTO_FAILED, /* for good: the inbox */
};

struct auto_result {
    enum auto_verdict verdict;
    int http_status;
    char outcome[600];   /* for people */
    char *response;      /* NULL, or the answer's first bytes (malloc()ed) */
    char *retry_after;   /* NULL, or the answer's Retry-After (malloc()ed) */
    int64_t journal_seq; /* a journaled action's change */
};

static void
result_fini(struct auto_result *r)
{
    free(r->response);
    free(r->retry_after);
    memset(r, 0, sizeof(*r));
}

/* The context an action reads: the run's, with "run" and "current" (the
 * record as it is now). */
static cJSON *
action_context(struct store *st, const struct store_run *run, struct error *err, int *failed)
{
    cJSON *ctx = cJSON_Parse(run->context);
    struct record rec = {0};
    int found = store_record_get(st, run->record_id, &rec, err);

    *failed = found == -1;
    if (ctx == NULL)
        ctx = cJSON_CreateObject();
    cJSON_AddNumberToObject(ctx, "run", (double)run->id);
    cJSON_AddItemToObject(ctx, "current",
                          found == 1 && rec.state ? cJSON_Parse(rec.state) : cJSON_CreateNull());
    record_fini(&rec);
    return ctx;
}

/* Whether the record id holds every field of match after the first (the
 * store found it by the first): 1, 0, -1. */
static int
holds_the_rest(struct store *st, int64_t id, const cJSON *first, struct error *err)
{
    struct record rec = {0};
    cJSON *state = NULL;
    int found = store_record_get(st, id, &rec, err);
    int all = found == 1 && (state = cJSON_Parse(rec.state)) != NULL;

    for (const cJSON *g = first->next; all && g != NULL; g = g->next)
        all = same(cJSON_GetObjectItemCaseSensitive(state, g->string), g);
    cJSON_Delete(state);
    record_fini(&rec);
    return found == -1 ? -1 : all;
}

/*
 * The ids of the live records that hold every field of match (the first
 * AUTO_MAX_MATCH by id), into ids. The store finds the records by the
 * first field, a page at a time, and each is read for the others: the
 * records that hold them all may lie past the first AUTO_MAX_MATCH that
 * hold the first.
 */
static int
match_targets(struct store *st, const struct auto_action *x, const cJSON *match, cJSON *ids,
              struct error *err)
{
    const cJSON *f = match->child;
    char *value = value_canonical_text(f);
    struct store_where w = {
        .model = x->model->name, .field = f->string, .value_json = value, .limit = AUTO_MATCH_PAGE};
    int n = AUTO_MATCH_PAGE, rc = 0;

    while (rc == 0 && n == AUTO_MATCH_PAGE && cJSON_GetArraySize(ids) < AUTO_MAX_MATCH) {
        int64_t *found = NULL;

        n = store_records_where(st, &w, &found, err);
        for (int i = 0; i < n && rc == 0 && cJSON_GetArraySize(ids) < AUTO_MAX_MATCH; i++) {
            rc = holds_the_rest(st, found[i], f, err);
            if (rc == 1)
                cJSON_AddItemToArray(ids, cJSON_CreateNumber((double)found[i]));
            rc = rc == -1 ? -1 : 0;
        }
        if (n > 0)
            w.after_id = found[n - 1];
        free(found);
        if (n == -1)
            rc = -1;
    }
    free(value);
    return rc;
}

/* The ids of the records an update action changes, into *ids. */
static int
update_targets(struct store *st, const struct auto_action *x, const cJSON *ctx, cJSON *ids,
               struct error *err)
{
    cJSON *got = NULL;
    int rc = 0;

    if (x->record != NULL) {
        const cJSON *id;

        if (map_apply(x->record, ctx, &got, err) == -1)
            return -1;
        id = cJSON_GetObjectItemCaseSensitive(got, "record");
        if (cJSON_IsString(id) && id->valuestring[0] >= '0' && id->valuestring[0] <= '9')
            cJSON_AddItemToArray(ids, cJSON_CreateNumber(strtod(id->valuestring, NULL)));
        else if (cJSON_IsNumber(id) && id->valuedouble >= 1)
            cJSON_AddItemToArray(ids, cJSON_CreateNumber(id->valuedouble));
        cJSON_Delete(got);
        return 0;
    }
    if (map_apply(x->match, ctx, &got, err) == -1)
        return -1;
    /* A missing value matches nothing. */
    if (got != NULL && got->child != NULL)
        rc = match_targets(st, x, got, ids, err);
    cJSON_Delete(got);
    return rc;
}

/*
 * set, create, update: journal the change, in the transaction that moves
 * the run on. Guarantee: an action's change is made once. Its delivery id
 * names the run and the action, so even a second journaling is refused.
 */
static void
journal_action(struct engine *e, const struct store_run *run, const struct auto_action *x,
               const cJSON *ctx, struct auto_result *res)
{
    struct engine_automation *a = e->automation;
    cJSON *body = cJSON_CreateObject(), *fields = NULL, *ids = cJSON_CreateArray();
    struct error err = {0};
    char delivery[64], *text = NULL;
    int64_t seq = 0;
    int rc;

    res->verdict = AUTO_FAILED;
    if (map_apply(x->fields, ctx, &fields, &err) == -1 ||
        (x->cfg->kind == CONFIG_ACTION_UPDATE && update_targets(a->st, x, ctx, ids, &err) == -1)) {
        (void)snprintf(res->outcome, sizeof(res->outcome), "%s", err.msg);
        goto out;
    }
    if (x->cfg->kind == CONFIG_ACTION_SET)
        cJSON_AddItemToArray(ids, cJSON_CreateNumber((double)run->record_id));
    if (x->cfg->kind == CONFIG_ACTION_UPDATE && cJSON_GetArraySize(ids) == 0) {
        res->verdict = AUTO_OK;
        (void)snprintf(res->outcome, sizeof(res->outcome), "no %s record matched: nothing to do",
                       x->model->name);
        goto out;
    }
    cJSON_AddStringToObject(body, "op", action_name(x->cfg->kind));
    cJSON_AddStringToObject(body, "automation", run->automation);
    cJSON_AddNumberToObject(body, "run", (double)run->id);
    cJSON_AddNumberToObject(body, "step", run->step);
    cJSON_AddStringToObject(body, "model", x->model->name);
    cJSON_AddItemToObject(body, "records", ids);
    ids = NULL;
    cJSON_AddItemToObject(body, "fields", fields);
    fields = NULL;
    text = value_canonical_text(body);
    (void)snprintf(delivery, sizeof(delivery), "run:%lld:%d", (long long)run->id, run->step);
    rc = store_journal_add(a->st, ENGINE_AUTOMATION_SYSTEM, delivery, clock_now_ms(), text,
                           strlen(text), &seq, &err);
    if (rc == -1) {
        res->verdict = AUTO_RETRY;
        (void)snprintf(res->outcome, sizeof(res->outcome), "%s", err.msg);
        goto out;
    }
    res->verdict = AUTO_OK;
    res->journal_seq = rc == 1 ? seq : 0;
    (void)snprintf(res->outcome, sizeof(res->outcome), "journaled as change %lld", (long long)seq);
out:
    free(text);
    cJSON_Delete(body);
    cJSON_Delete(fields);
    cJSON_Delete(ids);
}

/* Whether an answer's status means "too many requests": 429, or one the
 * system's profile names (rate_limited_status). */
static int
limited_status(const struct config_system *sys, long status)
{
    if (status == 429)
        return 1;
    for (size_t i = 0; i < sys->rate_limit.limited_status_count; i++) {
        if (sys->rate_limit.limited_status[i] == status)
            return 1;
    }
    return 0;
}

/* Whether an answer's status means "try again later". */
static int
transient_status(const struct config_system *sys, long status)
{
    return status == 408 || status >= 500 || limited_status(sys, status);
}

/* One HTTP request, waited for. */
struct auto_fetch {
    int done;
    enum http_outcome outcome;
    long status;
    char *body;
    char *retry_after;
    char *error;
    long rl_remaining;   /* the answer's rate figures (engine_budget_figures()) */
    int64_t rl_reset_ms; /* clock_now_ms() */
};

static void
fetch_done(void *user, const struct http_response *resp)
{
    struct auto_fetch *f = user;

    f->done = 1;
    f->outcome = resp->outcome;
    f->status = resp->status;
    f->body = xstrdup(resp->body);
    f->retry_after = resp->retry_after ? xstrdup(resp->retry_after) : NULL;
    f->error = resp->error ? xstrdup(resp->error) : NULL;
    engine_budget_figures(resp, clock_now_ms(), &f->rl_remaining, &f->rl_reset_ms);
}

/* Send req and wait for its answer, or for a stop's deadline (f->done 0):
 * a stop lets the request in flight finish, since one cut off is sent
 * again at the next start though the system may have taken it. */
static int
fetch(struct engine *e, struct http_request *req, struct auto_fetch *f, struct error *err)
{
    struct engine_automation *a = e->automation;

    req->done = fetch_done;
    req->user = f;
    req->max_body = AUTO_MAX_BODY;
    if (http_client_submit(a->http, req, err) == -1)
        return -1;
    while (!f->done && !(atomic_load(&a->stop) && clock_mono_ms() >= atomic_load(&a->stop_by)))
        (void)http_client_run(a->http, 100);
    return 0;
}

/* The headers of a request to sys: its auth, the key, the bearer. */
static size_t
request_headers(const struct config_system *sys, struct http_header *h, size_t cap,
                const char *key_name, const char *key, const char *bearer)
{
    size_t n = 0;

    for (size_t i = 0; i < sys->auth_header_count && n + 2 < cap; i++, n++) {
        h[n].name = sys->auth_headers[i].name;
        h[n].value = secret_bytes(&sys->auth_headers[i].value);
    }
    if (key_name != NULL) {
        h[n].name = key_name;
        h[n++].value = key;
    }
    if (bearer != NULL) {
        h[n].name = "Authorization";
        h[n++].value = bearer;
    }
    return n;
}

static void
judge_fetch(const struct config_system *sys, const char *what, const struct auto_fetch *f,
            struct auto_result *res)
{
    if (!f->done) {
        res->verdict = AUTO_RETRY;
        (void)snprintf(res->outcome, sizeof(res->outcome), "%s: cut off by a stop", what);
        return;
    }
    res->http_status = f->outcome == HTTP_OUTCOME_RESPONSE ? (int)f->status : 0;
    /* The first KiB of the answer, as a delivery's inbox entry keeps it. */
    res->response = f->body ? xstrndup(f->body, strnlen(f->body, 1024)) : NULL;
    res->retry_after = f->retry_after ? xstrdup(f->retry_after) : NULL;
    if (f->outcome != HTTP_OUTCOME_RESPONSE) {
        res->verdict = AUTO_RETRY;
        (void)snprintf(res->outcome, sizeof(res->outcome), "%s: no answer: %s", what,
                       f->error ? f->error : "connection failed");
        return;
    }
    res->verdict = f->status >= 200 && f->status < 300 ? AUTO_OK
                   : transient_status(sys, f->status) || (f->status == 401 && sys->oauth2.enabled)
                       ? AUTO_RETRY
                       : AUTO_FAILED;
    (void)snprintf(res->outcome, sizeof(res->outcome), "%s: HTTP %ld%s%.200s", what, f->status,
                   res->verdict == AUTO_OK ? "" : ": ",
                   res->verdict == AUTO_OK ? "" : (f->body ? f->body : ""));
}

/*
 * What an http action's answer teaches its system's budget and breaker,
 * as a delivery's does: a 429 (or a rate-limited status) blocks the
 * system for Retry-After or its rate_limited_block; X-RateLimit-Remaining
 * spreads (or, at 0, holds) what is left until its reset, for the
 * deliveries too; a transient failure counts against the breaker, any
 * other answer for it. A request cut off by a stop reports nothing (a
 * probe's result is then taken as lost).
 */
static void
feed_budget(const struct auto_action *x, const struct auto_fetch *f, const struct auto_result *res,
            const char *what)
{
    const struct config_system *sys = x->system;
    int64_t mono = clock_mono_ms(), now = clock_now_ms(), after = 0;
    char failed[BREAKER_REASON_LEN];
    struct engine_budget_answer a = {
        .remaining = f->done ? f->rl_remaining : -1,
        .reset_at_ms = mono + (f->rl_reset_ms - now),
        .breaker_ok = !f->done ? -1 : res->verdict != AUTO_RETRY,
        .what = failed,
    };

    if (x->sys == NULL)
        return;
    if (f->done && f->outcome == HTTP_OUTCOME_RESPONSE)
        (void)snprintf(failed, sizeof(failed), "HTTP %ld from %.120s", f->status, what);
    else
        (void)snprintf(failed, sizeof(failed), "%.60s from %.90s",
                       f->error ? f->error : "no answer", what);
    if (f->done && f->outcome == HTTP_OUTCOME_RESPONSE && limited_status(sys, f->status)) {
        if (f->retry_after == NULL || retry_after_parse(f->retry_after, now, &after) == -1)
            after = sys->rate_limit.block_ms;
        a.block_until_ms = mono + after;
        log_warn(&(struct log_ctx){.system = sys->name},
                 "rate limited (HTTP %ld) by an automation's request: no request for %lld ms",
                 f->status, (long long)after);
    }
    engine_budget_note(x->sys, &a, mono);
}

/* http: the templated request to the action's system. At least once: a
 * key header (idempotency_header) lets the system drop a repeat. */
static void
http_action(struct engine *e, const struct store_run *run, const struct auto_action *x,
            const cJSON *ctx, struct auto_result *res)
{
    const struct config_system *sys = x->system;
    struct auto_fetch f = {0};
    struct http_header headers[20];
    struct error err = {0};
    cJSON *body = NULL;
    char why[200] = "", key[80], what[400];
    char *path = render(x->cfg->request.path, ctx, 1, why, sizeof(why)), *url = NULL, *text = NULL,
         *bearer = NULL;

    res->verdict = AUTO_FAILED;
    (void)snprintf(what, sizeof(what), "%s %s", x->cfg->request.method,
                   path ? path : x->cfg->request.path);
    if (path == NULL || (x->body != NULL && map_apply(x->body, ctx, &body, &err) == -1)) {
        (void)snprintf(res->outcome, sizeof(res->outcome), "%.300s: %.280s", what,
                       path == NULL ? why : err.msg);
        goto out;
    }
    if (sys->oauth2.enabled && oauth_header(e->oauth, sys, &bearer, &err) == -1) {
        res->verdict = AUTO_RETRY;
        (void)snprintf(res->outcome, sizeof(res->outcome), "%.300s: %.280s", what, err.msg);
        goto out;
    }
    /* The store's part too (engine.c, load_idem_prefix()): a new store
     * counts runs from 1 again, and must not send an old store's key. */
    if (e->idem_prefix[0] != '\0')
        (void)snprintf(key, sizeof(key), "concord-run-%s-%lld-%d", e->idem_prefix,
                       (long long)run->id, run->step);
    else
        (void)snprintf(key, sizeof(key), "concord-run-%lld-%d", (long long)run->id, run->step);
    url = xasprintf("%s%s", sys->base_url, path);
    text = body ? value_canonical_text(body) : NULL;
    struct http_request req = {
        .method = x->cfg->request.method,
        .url = url,
        .headers = headers,
        .header_count = request_headers(sys, headers, ARRAY_COUNT(headers),
                                        x->cfg->idempotency_header, key, bearer),
        .body = text,
        .body_len = text ? strlen(text) : 0,
        .timeout_ms = sys->timeout_ms,
    };
    if (fetch(e, &req, &f, &err) == -1) {
        res->verdict = AUTO_RETRY;
        (void)snprintf(res->outcome, sizeof(res->outcome), "%.300s: %.280s", what, err.msg);
        goto out;
    }
    if (f.done && f.outcome == HTTP_OUTCOME_RESPONSE && f.status == 401 && bearer != NULL)
        oauth_reject(e->oauth, sys, bearer);
    judge_fetch(sys, what, &f, res);
    feed_budget(x, &f, res, what);
out:
    oauth_value_free(bearer);
    free(f.body);
    free(f.retry_after);
    free(f.error);
    free(path);
    free(url);
    free(text);
    cJSON_Delete(body);
}

/* notify: a webhook message and/or an e-mail. */
static void
notify_action(struct engine *e, const struct auto_action *x, const cJSON *ctx,
              struct auto_result *res)
{
    const struct config_action *c = x->cfg;
    const struct config_alerts *al = &e->cfg->alerts;
    char why[200] = "";
    char *text = render(c->text, ctx, 0, why, sizeof(why)), *subject = NULL;
    struct error err = {0};
    int rc = 0;

    res->verdict = AUTO_OK;
    if (text == NULL) {
        res->verdict = AUTO_FAILED;
        (void)snprintf(res->outcome, sizeof(res->outcome), "the text is too long");
        return;
    }
    if (c->webhook.value != NULL) {
        struct http_notify_answer ans = {0};

        rc = http_notify_webhook(secret_bytes(&c->webhook), text, 10000, &ans, &err);
        /* The status for the inbox, and a 429's or 503's wait, which
         * settle() honours as it does an http action's. */
        if (rc == -1)
            res->http_status = (int)ans.status;
        if (rc == -1 && ans.retry_after_sec > 0)
            res->retry_after = xasprintf("%lld", (long long)ans.retry_after_sec);
    }
    if (rc == 0 && c->mail_to_count > 0) {
        const int own = c->smtp_url != NULL;

        subject =
            render(c->subject ? c->subject : "concord: {automation}", ctx, 0, why, sizeof(why));
        struct http_mail m = {
            .url = own ? c->smtp_url : al->smtp_url,
            .user = own ? c->smtp_user : al->smtp_user,
            .password = own ? (c->smtp_password.value ? secret_bytes(&c->smtp_password) : NULL)
                            : (al->smtp_password.value ? secret_bytes(&al->smtp_password) : NULL),
            .from = own ? c->mail_from : al->mail_from,
            .to = (const char *const *)c->mail_to,
            .to_count = c->mail_to_count,
            .subject = subject ? subject : "concord",
            .body = text,
        };
        rc = http_notify_mail(&m, 10000, &err);
    }
    if (rc == -1) {
        res->verdict = err.kind == ERROR_PERMANENT ? AUTO_FAILED : AUTO_RETRY;
        (void)snprintf(res->outcome, sizeof(res->outcome), "notify: %s", err.msg);
    } else {
        (void)snprintf(res->outcome, sizeof(res->outcome), "notified%s%s",
                       c->webhook.value != NULL ? " the webhook" : "",
                       c->mail_to_count > 0 ? " by e-mail" : "");
    }
    free(text);
    free(subject);
}

/* When a wait that starts now ends: the delay from now, or the field's
 * time plus the offset. -1 when the field holds no time. */
static int64_t
wait_until(const struct config_action *c, const cJSON *ctx, int64_t now)
{
    const cJSON *cur = cJSON_GetObjectItemCaseSensitive(ctx, "current");
    int64_t at;

    if (c->wait_field == NULL)
        return now + c->wait_ms;
    if (value_timestamp_ms(cJSON_GetObjectItemCaseSensitive(cur, c->wait_field), &at) == -1)
        return -1;
    return at + c->wait_ms;
}

/* ---- moving a run on ---- */

/* Note an action's row. */
static int
note_step(struct store *st, const struct store_run *run, const char *kind, const char *state,
          int attempts, const struct auto_result *res, int64_t inbox_id, struct error *err)
{
    struct store_step s = {
        .run_id = run->id,
        .n = run->step,
        .kind = (char *)(uintptr_t)kind,
        .state = (char *)(uintptr_t)state,
        .attempts = attempts,
        .outcome = res ? (char *)(uintptr_t)res->outcome : NULL,
        .http_status = res ? res->http_status : 0,
        .journal_seq = res ? res->journal_seq : 0,
        .inbox_id = inbox_id,
        .at_ms = clock_now_ms(),
    };

    return store_step_put(st, &s, err);
}

static int
move(struct store *st, const struct store_run *run, const char *state, int step, int attempts,
     int64_t next_at, const char *note, struct error *err)
{
    struct store_run_move m = {
        .id = run->id,
        .from = run->state,
        .state = state,
        .step = step,
        .attempts = attempts,
        .next_at_ms = next_at,
        .note = note,
        .now_ms = clock_now_ms(),
    };

    return store_run_set(st, &m, err);
}

/* The run failed for good at its action: the inbox, whence retry makes
 * it due again. */
static int
park_run(struct engine *e, const struct store_run *run, const struct auto_action *x,
         const struct auto_result *res, int attempts, struct error *err)
{
    struct engine_automation *a = e->automation;
    char reason[900];
    int64_t id;

    (void)snprintf(reason, sizeof(reason), "automation %s, run %lld, action %d (%s): %s",
                   run->automation, (long long)run->id, run->step + 1, action_name(x->cfg->kind),
                   res->outcome);
    struct inbox_entry entry = {
        .kind = INBOX_FAILED,
        .system = x->system ? x->system->name : NULL,
        .record_id = run->record_id,
        .reason = reason,
        .http_status = res->http_status,
        .response = res->response,
        .attempts = attempts,
        .created_at_ms = clock_now_ms(),
    };
    log_warn(&(struct log_ctx){.system = entry.system, .record_id = run->record_id},
             "parked in the inbox: %s", reason);
    metric_add(a->actions, 1,
               (const char *[]){run->automation, action_name(x->cfg->kind), "failed"});
    metric_add(a->runs, 1, (const char *[]){run->automation, "failed"});
    if (store_inbox_add(a->st, &entry, &id, err) == -1 ||
        note_step(a->st, run, action_name(x->cfg->kind), "failed", attempts, res, id, err) == -1)
        return -1;
    return move(a->st, run, "failed", run->step, attempts, run->next_at_ms, reason, err);
}

/* Record what an action came to, and move the run on. */
static int
settle(struct engine *e, const struct store_run *run, const struct auto_action *x,
       struct auto_result *res, int attempts, struct error *err)
{
    struct engine_automation *a = e->automation;
    const struct retry_policy def = retry_policy_default();
    const struct retry_policy *p = x->system ? &x->system->retry : &def;
    const char *kind = action_name(x->cfg->kind);
    int64_t now = clock_now_ms(), delay, after;

    if (res->verdict == AUTO_OK) {
        metric_add(a->actions, 1, (const char *[]){run->automation, kind, "ok"});
        if (note_step(a->st, run, kind, res->journal_seq ? "queued" : "ok", attempts, res, 0,
                      err) == -1)
            return -1;
        return move(a->st, run, "running", run->step + 1, 0, now, NULL, err) == -1 ? -1 : 0;
    }
    /* Attempts only: a run may have waited for days before this action,
     * so the schedule's max_age (the age of a job) does not apply. */
    if (res->verdict == AUTO_FAILED || retry_exhausted(p, attempts, now, now))
        return park_run(e, run, x, res, attempts, err);
    delay = retry_delay_ms(p, (uint32_t)attempts, clock_random_unit());
    if (res->retry_after != NULL && retry_after_parse(res->retry_after, now, &after) == 0 &&
        after > delay)
        delay = after;
    log_info(&(struct log_ctx){.system = x->system ? x->system->name : NULL,
                               .record_id = run->record_id},
             "automation %s, run %lld, action %d failed (attempt %d), next in %lld ms: %s",
             run->automation, (long long)run->id, run->step + 1, attempts, (long long)delay,
             res->outcome);
    metric_add(a->actions, 1, (const char *[]){run->automation, kind, "retry"});
    if (note_step(a->st, run, kind, "retrying", attempts, res, 0, err) == -1)
        return -1;
    return move(a->st, run, "running", run->step, attempts, now + delay, NULL, err) == -1 ? -1 : 0;
}

/* A wait's time came: the run goes on if its trigger still holds. */
static int
end_wait(struct engine *e, const struct auto_rule *r, const struct store_run *run, const cJSON *ctx,
         struct error *err)
{
    struct engine_automation *a = e->automation;
    const cJSON *cur = cJSON_GetObjectItemCaseSensitive(ctx, "current");
    const char *why = "the record is gone";
    struct error cerr = {0};
    struct record rec = {0};
    int holds = 0, found = store_record_get(a->st, run->record_id, &rec, err);

    if (found == -1)
        return -1;
    if (found == 1)
        holds = still_holds(r, ctx, cur, rec.is_deleted, &why, &cerr);
    record_fini(&rec);
    /* A condition that fails to run is no "no": a person looks, and a
     * retry goes on after the wait. */
    if (holds == -1)
        return condition_failed(e, a->st, run, run->step, "wait", cerr.msg, err) == -1 ||
                       move(a->st, run, "failed", run->step + 1, 0, run->next_at_ms,
                            "a condition failed to run at the end of its wait", err) == -1
                   ? -1
                   : 0;
    if (!holds)
        return cancel_run(e, a->st, run, why, err);
    struct auto_result res = {.verdict = AUTO_OK};
    (void)snprintf(res.outcome, sizeof(res.outcome), "waited until %s",
                   clock_format_ms(run->next_at_ms, (char[40]){0}, 40));
    if (note_step(a->st, run, "wait", "ok", 1, &res, 0, err) == -1)
        return -1;
    return move(a->st, run, "running", run->step + 1, 0, clock_now_ms(), NULL, err) == -1 ? -1 : 0;
}

/* A wait begins: the run sleeps in the store until its time. */
static int
begin_wait(struct engine *e, const struct store_run *run, const struct auto_action *x,
           const cJSON *ctx, struct error *err)
{
    struct engine_automation *a = e->automation;
    int64_t now = clock_now_ms(), until = wait_until(x->cfg, ctx, now);
    struct auto_result res = {.verdict = AUTO_OK};
    char when[40];

    if (until == -1) {
        res.verdict = AUTO_FAILED;
        (void)snprintf(res.outcome, sizeof(res.outcome), "%s holds no time to wait for",
                       x->cfg->wait_field);
        return park_run(e, run, x, &res, 1, err);
    }
    (void)snprintf(res.outcome, sizeof(res.outcome), "until %s%s",
                   clock_format_ms(until, when, sizeof(when)),
                   until <= now ? " (already past: at once)" : "");
    if (note_step(a->st, run, "wait", "waiting", 0, &res, 0, err) == -1)
        return -1;
    return move(a->st, run, "waiting", run->step, 0, until, res.outcome, err) == -1 ? -1 : 0;
}

/* Whether an operator paused system (concord pause): 1, 0, -1. */
static int
system_paused(struct store *st, const char *system, struct error *err)
{
    char **names = NULL;
    int n = store_systems_paused(st, &names, err), found = 0;

    for (int i = 0; i < n; i++) {
        found |= strcmp(names[i], system) == 0;
        free(names[i]);
    }
    free(names);
    return n == -1 ? -1 : found;
}

/*
 * An http action's system holds it back (its budget has no token for
 * wait_ms, or its breaker is open): the run is put off, its attempts
 * untouched (it was not sent), with a note that `concord runs` shows.
 * While the breaker is half-open another request is the probe, whose
 * answer may close it soon: the run looks again within a second.
 */
static int
hold_run(struct store *st, const struct store_run *run, const struct auto_action *x,
         enum engine_hold hold, int64_t wait_ms, struct error *err)
{
    char note[400], reason[BREAKER_REASON_LEN];
    enum breaker_state state = engine_budget_breaker(x->sys, reason, sizeof(reason));

    if (hold == ENGINE_HOLD_BREAKER && state == BREAKER_HALF_OPEN && wait_ms > AUTO_PROBE_LOOK_MS)
        wait_ms = AUTO_PROBE_LOOK_MS;
    if (wait_ms < 50)
        wait_ms = 50;
    if (hold == ENGINE_HOLD_BREAKER)
        (void)snprintf(note, sizeof(note),
                       "held: the circuit breaker of %s is %s (%s); not sent, no attempt counted",
                       x->system->name, breaker_state_name(state), reason);
    else
        (void)snprintf(note, sizeof(note),
                       "held: the request budget of %s has no token for %lld ms; not sent, no "
                       "attempt counted",
                       x->system->name, (long long)wait_ms);
    return move(st, run, "running", run->step, run->attempts, clock_now_ms() + wait_ms, note,
                err) == -1
               ? -1
               : 0;
}

/* What run_once() carries out outside the transaction. */
struct auto_send {
    const struct auto_action *x; /* an http or notify action to send; NULL: none */
    int attempt;                 /* which attempt of it this is */
    int64_t nap_ms;              /* > 0: first wait this long for its system's budget */
};

/*
 * Whether the run's action is out by the store's account: counted and
 * "sending", with no answer noted. Only a crash while it was out (or a
 * failed commit of its answer) leaves it so: the answer's transaction
 * notes it, and a stop waits for it. 1, 0, -1.
 */
static int
cut_off_unanswered(struct store *st, const struct store_run *run, struct error *err)
{
    struct store_step *steps = NULL;
    int n = store_steps_list(st, run->id, &steps, err), out = 0;

    for (int i = 0; i < n; i++)
        out |= steps[i].n == run->step && strcmp(steps[i].state, "sending") == 0;
    store_steps_free(steps, n);
    return n == -1 ? -1 : out && run->attempts > 0;
}

/*
 * An http or notify action is about to leave (out->x), unless an operator
 * paused its system (the run looks again in a second), or an http action's
 * system holds it back: its request budget, shared with the deliveries to
 * that system, has no token yet, or its circuit breaker is open. A short
 * wait for a token is out->nap_ms: nothing is written, and the caller
 * waits outside the transaction and comes back; a longer one, or the
 * breaker, puts the run off (hold_run()).
 */
static int
begin_send(const struct store_run *run, const struct auto_action *x, struct auto_send *out,
           struct store *st, struct error *err)
{
    int paused = x->system != NULL ? system_paused(st, x->system->name, err) : 0, again;

    if (paused != 0)
        return paused == -1 ? -1
               : move(st, run, "running", run->step, run->attempts, clock_now_ms() + 1000,
                      "the system is paused", err) == -1
                   ? -1
                   : 0;
    if (x->cfg->kind == CONFIG_ACTION_HTTP && x->sys != NULL) {
        int64_t wait = 0;
        enum engine_hold hold = engine_budget_take(x->sys, clock_mono_ms(), &wait, NULL);

        if (hold == ENGINE_HOLD_RATE && wait <= AUTO_NAP_MAX_MS) {
            out->nap_ms = wait;
            return 0;
        }
        if (hold != ENGINE_GO)
            return hold_run(st, run, x, hold, wait, err);
    }
    /* Cut off by a crash: sent again (at least once) as the attempt it
     * was, as a delivery's is (its attempt counts when its answer is in):
     * a crash costs no attempt, and the attempts never pass the
     * schedule's. */
    again = cut_off_unanswered(st, run, err);
    if (again == -1)
        return -1;
    out->x = x;
    out->attempt = again ? run->attempts : run->attempts + 1;
    if (again) {
        log_info(&(struct log_ctx){.record_id = run->record_id},
                 "automation %s, run %lld: action %d was out at the last stop; sent again as "
                 "attempt %d (at least once)",
                 run->automation, (long long)run->id, run->step + 1, out->attempt);
        return 0;
    }
    /* Counted before it leaves: a crash while it is out counts it, and at
     * the next start it is sent again, as that attempt. */
    if (note_step(st, run, action_name(x->cfg->kind), "sending", out->attempt, NULL, 0, err) == -1)
        return -1;
    return move(st, run, "running", run->step, out->attempt, run->next_at_ms, NULL, err) == -1 ? -1
                                                                                               : 0;
}

/*
 * Whether a reload changed what the run's action number means: one of its
 * actions up to the current one is no longer the one it started with (an
 * action put in before it, one taken out, the list reordered). Carried on
 * by number, the run would do an action it did already, or skip one; it
 * is parked in the inbox instead: a retry goes on at that number of the
 * new list (whose actions become the run's), skip ends it. Returns 1 when
 * it was parked, 0, -1.
 */
static int
park_if_moved(struct engine *e, const struct auto_rule *r, const struct store_run *run,
              const cJSON *ctx, struct error *err)
{
    struct engine_automation *a = e->automation;
    const cJSON *plan = cJSON_GetObjectItemCaseSensitive(ctx, "plan");
    cJSON *now_plan, *stored;
    char reason[900], was[300], now[300], *text;
    struct store_step step = {0};
    int moved = 0, rc;
    int64_t id;

    /* A run from before runs kept their actions, or one that did all of
     * its own (it only has to be marked done), has nothing to mis-do. */
    if (!cJSON_IsArray(plan) || run->step >= cJSON_GetArraySize(plan))
        return 0;
    for (int i = 0; i <= run->step && i < cJSON_GetArraySize(plan) && !moved; i++) {
        const char *old = cJSON_GetStringValue(cJSON_GetArrayItem(plan, i));
        char *sig = (size_t)i < r->cfg->action_count ? action_sig(&r->cfg->actions[i]) : NULL;

        moved = sig == NULL || old == NULL || strcmp(old, sig) != 0;
        free(sig);
    }
    if (!moved)
        return 0;
    now_plan = actions_plan(r->cfg);
    (void)snprintf(reason, sizeof(reason),
                   "automation %s, run %lld: the automation changed under the run at action %d "
                   "(a reload): its actions were [%s], they are now [%s]; retry goes on at action "
                   "%d of the new list, skip ends the run",
                   run->automation, (long long)run->id, run->step + 1,
                   joined_text(plan, "; ", was, sizeof(was)),
                   joined_text(now_plan, "; ", now, sizeof(now)), run->step + 1);
    log_warn(&(struct log_ctx){.record_id = run->record_id}, "parked in the inbox: %s", reason);
    metric_add(a->runs, 1, (const char *[]){run->automation, "failed"});
    /* The stored context (without what action_context() added) takes the
     * new actions, so that a retry goes on with them. */
    stored = cJSON_Parse(run->context);
    if (stored == NULL)
        stored = cJSON_CreateObject();
    cJSON_DeleteItemFromObjectCaseSensitive(stored, "plan");
    cJSON_AddItemToObject(stored, "plan", now_plan);
    text = value_canonical_text(stored);
    cJSON_Delete(stored);
    struct inbox_entry entry = {
        .kind = INBOX_FAILED,
        .record_id = run->record_id,
        .reason = reason,
        .created_at_ms = clock_now_ms(),
    };
    rc = store_inbox_add(a->st, &entry, &id, err);
    step = (struct store_step){.run_id = run->id,
                               .n = run->step,
                               .kind = "changed",
                               .state = "failed",
                               .outcome = reason,
                               .inbox_id = id,
                               .at_ms = clock_now_ms()};
    if (rc == 0)
        rc = store_step_put(a->st, &step, err) == -1 ||
                     store_run_set_context(a->st, run->id, text, err) == -1 ||
                     move(a->st, run, "failed", run->step, run->attempts, run->next_at_ms,
                          "the automation changed under the run", err) == -1
                 ? -1
                 : 1;
    free(text);
    return rc;
}

/* Take the run's next action in the open transaction; *out says what to
 * carry out outside it (an http or notify action, or a nap), if any. */
static int
step_in_tx(struct engine *e, const struct auto_rule *r, const struct store_run *run,
           const cJSON *ctx, struct auto_send *out, struct error *err)
{
    struct engine_automation *a = e->automation;
    const struct auto_action *x;
    int rc;

    *out = (struct auto_send){0};
    rc = park_if_moved(e, r, run, ctx, err);
    if (rc != 0)
        return rc == -1 ? -1 : 0;
    if (strcmp(run->state, "waiting") == 0)
        return end_wait(e, r, run, ctx, err);
    if ((size_t)run->step >= r->cfg->action_count) {
        metric_add(a->runs, 1, (const char *[]){run->automation, "done"});
        log_info(&(struct log_ctx){.record_id = run->record_id}, "automation %s: run %lld done",
                 run->automation, (long long)run->id);
        return move(a->st, run, "done", run->step, 0, run->next_at_ms, NULL, err) == -1 ? -1 : 0;
    }
    if (run->step == 0 && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ctx, "if_error"))) {
        /* Its conditions failed to run when it started: check them again. */
        struct error cerr = {0};
        int holds = conditions_hold(r, ctx, &cerr);

        if (holds == 0)
            return cancel_run(e, a->st, run, "its conditions do not hold", err);
        if (holds == -1)
            return condition_failed(e, a->st, run, 0, "if", cerr.msg, err) == -1 ||
                           move(a->st, run, "failed", 0, run->attempts, run->next_at_ms,
                                "a condition failed to run", err) == -1
                       ? -1
                       : 0;
    }
    x = &r->actions[run->step];
    switch (x->cfg->kind) {
    case CONFIG_ACTION_WAIT:
        return begin_wait(e, run, x, ctx, err);
    case CONFIG_ACTION_SET:
    case CONFIG_ACTION_CREATE:
    case CONFIG_ACTION_UPDATE: {
        struct auto_result res = {0};

        journal_action(e, run, x, ctx, &res);
        rc = settle(e, run, x, &res, run->attempts + 1, err);
        result_fini(&res);
        return rc;
    }
    case CONFIG_ACTION_HTTP:
    case CONFIG_ACTION_NOTIFY:
        return begin_send(run, x, out, a->st, err);
    }
    return 0;
}

/*
 * Whether run, sent outside any transaction, is still where it was when
 * its action left (running at that action): 1, 0, -1. `concord forget`
 * may have erased it meanwhile with its record; what the answer says is
 * then noted nowhere, neither in a row of the run nor in the inbox.
 */
static int
run_still_there(struct store *st, const struct store_run *run, struct error *err)
{
    struct store_run now = {0};
    int found = store_run_get(st, run->id, &now, err);
    int same = found == 1 && strcmp(now.state, run->state) == 0 && now.step == run->step;

    store_run_fini(&now);
    if (found == 1 && !same)
        log_warn(&(struct log_ctx){.record_id = run->record_id},
                 "automation %s, run %lld: moved on while action %d was out; its answer is dropped",
                 run->automation, (long long)run->id, run->step + 1);
    if (found == 0)
        log_info(NULL,
                 "automation %s, run %lld: erased while an action was out; its answer is dropped",
                 run->automation, (long long)run->id);
    return found == -1 ? -1 : same;
}

/* A run whose automation left the config (a reload) ends. */
static int
orphan(struct engine *e, const struct store_run *run, struct error *err)
{
    return cancel_run(e, e->automation->st, run, "the automation is no longer in the config", err);
}

/* Wait up to wait_ms for a stop, or (on_kick) for new runs. */
static void
nap(struct engine *e, int64_t wait_ms, int on_kick)
{
    struct engine_automation *a = e->automation;
    struct timespec ts = clock_deadline(wait_ms);

    pthread_mutex_lock(&e->mu);
    while (!(on_kick && a->kicked) && !atomic_load(&a->stop)) {
        if (pthread_cond_timedwait(&a->cv, &e->mu, &ts) != 0)
            break;
    }
    if (on_kick)
        a->kicked = 0;
    pthread_mutex_unlock(&e->mu);
}

/*
 * Carry out one due run's next action. Returns 1 when one was due, 0, -1.
 * An http action that waits briefly for its system's budget is waited for
 * here, outside any transaction, and then looked at again (1): the
 * automation thread carries out one action at a time, so the wait holds
 * up the others, as a slow answer would.
 */
static int
run_once(struct engine *e, struct error *err)
{
    struct engine_automation *a = e->automation;
    struct store_run run = {0};
    const struct auto_action *cur = NULL;
    struct auto_send send = {0};
    const struct auto_rule *r;
    cJSON *ctx = NULL;
    int found, failed = 0, there = 0, rc = -1;

    if (store_begin(a->st, err) == -1)
        return -1;
    found = store_run_due(a->st, clock_now_ms(), &run, err);
    if (found != 1) {
        store_rollback(a->st);
        return found;
    }
    r = rule_named(&a->runner, run.automation);
    if (r != NULL && run.step >= 0 && (size_t)run.step < r->cfg->action_count)
        cur = &r->actions[run.step];
    ctx = action_context(a->st, &run, err, &failed);
    if (failed ||
        (r == NULL ? orphan(e, &run, err) : step_in_tx(e, r, &run, ctx, &send, err)) == -1 ||
        store_commit(a->st, err) == -1) {
        store_rollback(a->st);
        goto out;
    }
    if (send.nap_ms > 0)
        nap(e, send.nap_ms, 0);
    if (send.x != NULL) {
        struct auto_result res = {0};

        run.attempts = send.attempt;
        if (send.x->cfg->kind == CONFIG_ACTION_HTTP)
            http_action(e, &run, send.x, ctx, &res);
        else
            notify_action(e, send.x, ctx, &res);
        if (store_begin(a->st, err) == -1 || (there = run_still_there(a->st, &run, err)) == -1 ||
            (there && settle(e, &run, send.x, &res, run.attempts, err) == -1) ||
            store_commit(a->st, err) == -1) {
            store_rollback(a->st);
            result_fini(&res);
            goto out;
        }
        result_fini(&res);
    }
    rc = 1;
out:
    /* A breaker this action moved (half-open for its probe, open or
     * closed by its answer) is shown by concord status. */
    if (cur != NULL && cur->sys != NULL)
        engine_budget_persist(cur->sys, a->st);
    cJSON_Delete(ctx);
    store_run_fini(&run);
    return rc;
}

/* The writer takes up what an action journaled. */
static void
wake_writer(struct engine *e)
{
    pthread_mutex_lock(&e->mu);
    pthread_cond_signal(&e->writer_cv);
    pthread_mutex_unlock(&e->mu);
}

static void
sleep_until_due(struct engine *e)
{
    struct error err = {0};
    int64_t due = 0, now = clock_now_ms(), wait = AUTO_IDLE_MS;

    if (store_run_next_due(e->automation->st, &due, &err) == 1 && due - now < wait)
        wait = due - now < 1 ? 1 : due - now;
    nap(e, wait, 1);
}

static void *
automator_main(void *arg)
{
    struct engine *e = arg;
    struct engine_automation *a = e->automation;

    (void)pthread_setname_np(pthread_self(), "concord-auto"); /* for top -H and perf */
    while (!atomic_load(&a->stop)) {
        struct error err = {0};
        int rc = run_once(e, &err);

        if (rc == 1) {
            wake_writer(e);
            continue;
        }
        if (rc == -1)
            log_error(NULL, "automations: %s", err.msg);
        sleep_until_due(e);
    }
    return NULL;
}

/* ---- lifecycle ---- */

int
engine_automation_setup(struct engine *e, struct error *err)
{
    struct engine_automation *a;
    struct metrics *reg = e->metrics.reg;

    if (e->cfg->automation_count == 0)
        return 0;
    a = e->automation = xcalloc(1, sizeof(*a));
    pthread_cond_init(&a->cv, NULL);
    a->runs = metrics_counter(reg, "concord_automation_runs_total",
                              "Automation runs, by what became of them: started, done, failed, "
                              "cancelled, cut.",
                              "automation,event");
    a->actions = metrics_counter(reg, "concord_automation_actions_total",
                                 "Automation actions carried out, by outcome: ok, retry, failed.",
                                 "automation,action,outcome");
    a->cut =
        metrics_counter(reg, "concord_automation_loops_cut_total",
                        "Automation runs cut for passing automation_depth (a loop).", "automation");
    return compile_rules(e->cfg, 0, &a->writer, err);
}

int
engine_automation_open(struct engine *e, struct error *err)
{
    struct engine_automation *a = e->automation;

    if (a == NULL)
        return 0;
    if (store_open(&a->st, e->cfg->store_url, err) == -1 || http_client_new(&a->http, err) == -1 ||
        compile_rules(e->cfg, 1, &a->runner, err) == -1)
        return -1;
    for (size_t i = 0; i < a->runner.count; i++) {
        const struct auto_rule *r = &a->runner.rules[i];

        for (size_t k = 0; k < r->cfg->action_count; k++) {
            struct auto_action *x = &r->actions[k];

            for (size_t s = 0; x->system != NULL && s < e->sys_count; s++) {
                if (e->systems[s].cfg == x->system)
                    x->sys = &e->systems[s];
            }
        }
    }
    return 0;
}

int
engine_automation_start(struct engine *e, struct error *err)
{
    struct engine_automation *a = e->automation;

    if (a == NULL || a->st == NULL)
        return 0;
    if (pthread_create(&a->thread, NULL, automator_main, e) != 0)
        return error_set(err, ERROR_INTERNAL, "start the automation thread");
    a->started = 1;
    return 0;
}

void
engine_automation_stop(struct engine *e, int64_t until_mono_ms)
{
    struct engine_automation *a = e->automation;

    if (a == NULL || !a->started)
        return;
    atomic_store(&a->stop_by, until_mono_ms);
    atomic_store(&a->stop, 1);
    pthread_mutex_lock(&e->mu);
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&e->mu);
    http_client_wakeup(a->http);
    pthread_join(a->thread, NULL);
    a->started = 0;
}

void
engine_automation_free(struct engine *e)
{
    struct engine_automation *a = e->automation;

    if (a == NULL)
        return;
    engine_automation_stop(e, 0);
    engine_automation_undo(e, 0);
    free(a->held);
    rules_free(&a->writer);
    rules_free(&a->runner);
    http_client_free(a->http);
    store_close(a->st);
    cJSON_Delete(a->cause_chain);
    pthread_cond_destroy(&a->cv);
    free(a);
    e->automation = NULL;
}
