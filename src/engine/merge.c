/* SPDX-License-Identifier: MIT */

/*
 * What one journaled change does (DESIGN.md, steps 2 to 4): find the
 * collection it belongs to, map it into the model, compare it field by field
 * with the link's base, apply what changed to the record under the sync's
 * origin rules, and hand the new version to fan-out. It runs inside the
 * writer's transaction, so a change and all that it causes commit together.
 *
 * Only fields that differ from the base count as changed, so a lossy map
 * never invents a change, and the echo of concord's own write (equal to the
 * base it left) changes nothing. See docs/internals/merge.md.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/clock.h"
#include "core/compiler.h"
#include "core/error.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/xmalloc.h"
#include "engine/engine_int.h"
#include "engine/shape.h"
#include "map/map.h"
#include "model/value.h"
#include "store/store.h"

/* Everything known about the change being processed. */
struct merge_ctx {
    struct engine *e;
    const struct change *ch;
    int coll;                       /* index into e->colls */
    const struct config_sync *sync; /* the sync that governs the collection */
    const cJSON *record;            /* the system's record, inside body */
    char ext_id[256];
    int64_t now;
    int64_t src_at;     /* when the change was made at its source (or received) */
    const char *source; /* who made the change: "shop.customers", "operator:alice" */
    int refresh[8];     /* collections whose contested value a settled conflict released */
    size_t refresh_count;
};

/* The collection of the change's system that takes body, or -1. */
static int
route(struct engine *e, const char *system, const cJSON *body, struct error *err)
{
    for (size_t i = 0; i < e->coll_count; i++) {
        struct engine_coll *c = &e->colls[i];
        int rc;

        if (strcmp(c->cfg->system->name, system) != 0)
            continue;
        if (c->match == NULL)
            return (int)i;
        rc = map_jq_test(c->match, body, err);
        if (rc == -1)
            return error_wrap(err, "%s: match", c->cfg->name);
        if (rc == 1)
            return (int)i;
    }
    return -2;
}

/* Count a change of m's collection for the metrics: at once, or once its
 * batch stands (engine_process_journal()). */
static void
count(struct merge_ctx *m, int64_t *held, struct metric_family *f)
{
    if (m->e->holding_counts && held != NULL)
        held[m->coll]++;
    else
        metric_add(f, 1, (const char *[]){m->e->colls[m->coll].cfg->name});
}

/* A batch stood (add its counts) or was undone (drop them). */
static void
held_counts_end(struct engine *e, int stood)
{
    for (size_t i = 0; e->held_applied != NULL && i < e->coll_count; i++) {
        const char *name[] = {e->colls[i].cfg->name};

        if (stood && e->held_applied[i] > 0)
            metric_add(e->metrics.applied, (double)e->held_applied[i], name);
        if (stood && e->held_echoes[i] > 0)
            metric_add(e->metrics.echoes, (double)e->held_echoes[i], name);
        e->held_applied[i] = e->held_echoes[i] = 0;
    }
    e->holding_counts = 0;
}

static int
park_change(struct merge_ctx *m, const char *reason, struct error *err)
{
    struct engine_coll *c = m->coll >= 0 ? &m->e->colls[m->coll] : NULL;
    struct inbox_entry entry = {
        .kind = INBOX_MAPPING,
        .system = m->ch->system,
        .collection = c ? c->cfg->name : NULL,
        .journal_seq = m->ch->seq,
        .reason = (char *)(uintptr_t)reason,
        .created_at_ms = m->now,
    };
    int64_t id;

    log_warn(&(struct log_ctx){.system = m->ch->system, .collection = c ? c->cfg->name : NULL},
             "change %lld parked: %s", (long long)m->ch->seq, reason);
    if (store_inbox_add(m->e->st, &entry, &id, err) == -1)
        return -1;
    return store_journal_set_state(m->e->st, m->ch->seq, CHANGE_FAILED, reason, err);
}

/* The fields of incoming that differ from base, as a new array of names. */
static cJSON *
changed_fields(const cJSON *incoming, const cJSON *base)
{
    cJSON *names = cJSON_CreateArray();
    const cJSON *f;

    cJSON_ArrayForEach(f, incoming)
    {
        const cJSON *old = base ? cJSON_GetObjectItemCaseSensitive(base, f->string) : NULL;

        if (old == NULL || !value_equal(f, old))
            cJSON_AddItemToArray(names, cJSON_CreateString(f->string));
    }
    return names;
}

/* Equal, where a missing value and a JSON null are the same. */
static int
same(const cJSON *a, const cJSON *b)
{
    if (a == NULL || cJSON_IsNull(a))
        return b == NULL || cJSON_IsNull(b);
    return b != NULL && value_equal(a, b);
}

/* The system a source names ("shop.customers" -> "shop"), or NULL. */
static const char *
system_of(const struct engine *e, const char *source)
{
    const struct config_collection *cc = source ? config_collection_find(e->cfg, source) : NULL;

    return cc ? cc->system->name : NULL;
}

/* A record's field times, parsed (an empty object when none). */
static cJSON *
load_meta(struct merge_ctx *m, int64_t record_id, struct error *err, int *failed)
{
    char *text = NULL;
    cJSON *meta = NULL;

    *failed = store_record_meta(m->e->st, record_id, &text, err) == -1;
    if (text != NULL)
        meta = cJSON_Parse(text);
    free(text);
    return meta ? meta : cJSON_CreateObject();
}

static cJSON *
side_json(const struct engine_side *side)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddItemToObject(o, "value",
                          side->value ? cJSON_Duplicate(side->value, 1) : cJSON_CreateNull());
    cJSON_AddStringToObject(o, "source", side->source ? side->source : "unknown");
    if (side->system != NULL)
        cJSON_AddStringToObject(o, "system", side->system);
    cJSON_AddNumberToObject(o, "at", (double)side->at_ms);
    return o;
}

/*
 * The record's side of an open conflict of field is the value just set
 * there (by its source, or a person's edit): the conflict shows it, and
 * `concord resolve --take` gives it, rather than the value the record held
 * when the conflict opened, which would revert the newer one.
 */
static int
refresh_ours(struct merge_ctx *m, int64_t record_id, const char *field, const cJSON *value,
             struct error *err)
{
    struct inbox_entry open = {0};
    int found = store_conflict_open(m->e->st, record_id, field, &open, err);
    cJSON *d = found == 1 && open.detail ? cJSON_Parse(open.detail) : NULL;
    char *text;
    int rc = found == -1 ? -1 : 0;

    if (cJSON_IsObject(d)) {
        struct engine_side ours = {
            .value = value,
            .source = m->source,
            .system = system_of(m->e, m->source),
            .at_ms = m->src_at,
        };

        cJSON_DeleteItemFromObjectCaseSensitive(d, "ours");
        cJSON_AddItemToObject(d, "ours", side_json(&ours));
        text = value_canonical_text(d);
        rc = store_inbox_set_detail(m->e->st, open.id, field, text, NULL, NULL, m->now, err);
        free(text);
    }
    cJSON_Delete(d);
    inbox_entry_fini(&open);
    return rc;
}

/*
 * Make the new version of an existing record from the fields in take (names
 * into incoming). state is the record's current state, updated in place.
 * Returns 1 when a version was made, 0 when the record holds them already,
 * -1. With to_source, the source collection is brought to the result too.
 */
static int
apply_fields(struct merge_ctx *m, const struct record *rec, cJSON *state, const cJSON *incoming,
             const cJSON *take, int to_source, struct error *err)
{
    cJSON *diff = cJSON_CreateObject(), *meta = NULL;
    const cJSON *name;
    char *state_text = NULL, *diff_text = NULL, *meta_text = NULL;
    int failed = 0, rc = -1;

    meta = load_meta(m, rec->id, err, &failed);
    if (failed)
        goto out;
    cJSON_ArrayForEach(name, take)
    {
        const cJSON *nv = cJSON_GetObjectItemCaseSensitive(incoming, name->valuestring);
        cJSON *old = cJSON_GetObjectItemCaseSensitive(state, name->valuestring);
        cJSON *pair, *when;

        if (nv == NULL || (old != NULL && value_equal(old, nv)))
            continue; /* the record has it already */
        pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, old ? cJSON_Duplicate(old, 1) : cJSON_CreateNull());
        cJSON_AddItemToArray(pair, cJSON_Duplicate(nv, 1));
        cJSON_AddItemToObject(diff, name->valuestring, pair);
        if (old != NULL)
            cJSON_ReplaceItemInObjectCaseSensitive(state, name->valuestring,
                                                   cJSON_Duplicate(nv, 1));
        else
            cJSON_AddItemToObject(state, name->valuestring, cJSON_Duplicate(nv, 1));
        when = cJSON_CreateArray();
        cJSON_AddItemToArray(when, cJSON_CreateNumber((double)m->src_at));
        cJSON_AddItemToArray(when, cJSON_CreateString(m->source));
        cJSON_DeleteItemFromObjectCaseSensitive(meta, name->valuestring);
        cJSON_AddItemToObject(meta, name->valuestring, when);
        if (refresh_ours(m, rec->id, name->valuestring, nv, err) == -1) {
            failed = 1;
            break;
        }
    }
    if (failed)
        goto out;
    struct engine_change fc = {
        .record_id = rec->id,
        .version = rec->version,
        .model = rec->model,
        .state = state,
        .source_coll = m->coll,
        .priority = m->ch->is_replay,
        .to_source = to_source,
    };
    if (cJSON_GetArraySize(diff) == 0) {
        /* Nothing new, but the source may still hold a value it lost. */
        rc = to_source && m->coll >= 0 ? engine_fanout_to(m->e, m->coll, &fc, err) : 0;
        goto out;
    }
    struct version v = {
        .record_id = rec->id,
        .version = rec->version + 1,
        .source = (char *)(uintptr_t)m->source,
        .journal_seq = m->ch->seq,
        .at_ms = m->now,
    };
    fc.version = v.version;
    state_text = value_canonical_text(state);
    diff_text = value_canonical_text(diff);
    meta_text = value_canonical_text(meta);
    v.state = state_text;
    v.diff = diff_text;
    if (store_record_update(m->e->st, &v, 0, err) == -1 ||
        store_record_set_meta(m->e->st, rec->id, meta_text, err) == -1 ||
        engine_keys_update(m->e, m->sync, rec->id, rec->model, state, err) == -1 ||
        engine_fanout(m->e, &fc, err) == -1)
        goto out;
    rc = 1;
out:
    free(state_text);
    free(diff_text);
    free(meta_text);
    cJSON_Delete(diff);
    cJSON_Delete(meta);
    return rc;
}

/* Append formatted text to a fixed buffer of size cap holding a string; what
 * does not fit is cut. */
static void PRINTF_LIKE(3, 4) append(char *out, size_t cap, const char *fmt, ...)
{
    size_t len = strlen(out);
    va_list ap;

    if (len + 1 >= cap)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(out + len, cap - len, fmt, ap);
    va_end(ap);
}

static char *
names_text(const cJSON *names)
{
    char *text = cJSON_PrintUnformatted(names);

    return text ? text : xstrdup("[]");
}

/*
 * Keep a conflict where a person can see it: an open entry for a manual
 * one (an open conflict of the same field is brought up to date instead of
 * a second one), a settled entry for one the policy decided.
 */
static int
note_conflict(struct merge_ctx *m, int64_t record_id, const char *field, const cJSON *base,
              const struct engine_side *ours, const struct engine_side *theirs,
              enum engine_verdict verdict, const char *why, struct error *err)
{
    struct inbox_entry open = {0};
    cJSON *detail = cJSON_CreateObject();
    char *detail_text, reason[700], *a = value_canonical_text(ours->value),
                                    *b = value_canonical_text(theirs->value);
    const char *state = verdict == ENGINE_MANUAL ? NULL : "settled";
    int found, rc = -1;
    int64_t id = 0;

    cJSON_AddStringToObject(detail, "field", field);
    cJSON_AddItemToObject(detail, "base", base ? cJSON_Duplicate(base, 1) : cJSON_CreateNull());
    cJSON_AddItemToObject(detail, "ours", side_json(ours));
    cJSON_AddItemToObject(detail, "theirs", side_json(theirs));
    cJSON_AddStringToObject(detail, "policy", why);
    cJSON_AddStringToObject(detail, "winner",
                            verdict == ENGINE_TAKE_THEIRS ? "theirs"
                            : verdict == ENGINE_KEEP_OURS ? "ours"
                                                          : "none");
    detail_text = value_canonical_text(detail);
    (void)snprintf(reason, sizeof(reason), "%s changed %s to %.200s while %s set it to %.200s%s%s",
                   theirs->source, field, b, ours->source ? ours->source : "concord", a,
                   verdict == ENGINE_MANUAL ? "" : "; settled by policy: ",
                   verdict == ENGINE_MANUAL ? "" : why);
    log_warn(&(struct log_ctx){.system = m->ch->system,
                               .collection = m->e->colls[m->coll].cfg->name,
                               .record_id = record_id},
             "conflict: %s", reason);
    found = store_conflict_open(m->e->st, record_id, field, &open, err);
    if (found == -1)
        goto out;
    if (found) {
        /* The copy that proposed the open conflict's value kept it while the
         * conflict was open (engine_keep_contested()): once the conflict is
         * settled, or another copy's value is the one contested, it gets
         * the record again. */
        cJSON *d = open.detail ? cJSON_Parse(open.detail) : NULL;
        const cJSON *src = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(d, "theirs"), "source");
        int ci = cJSON_IsString(src) ? engine_coll_index(m->e, src->valuestring) : -1;

        if (verdict == ENGINE_MANUAL && ci >= 0 && theirs->source != NULL &&
            strcmp(src->valuestring, theirs->source) == 0)
            ci = -1; /* the same copy still proposes it */
        if (ci >= 0 && m->refresh_count < sizeof(m->refresh) / sizeof(m->refresh[0]))
            m->refresh[m->refresh_count++] = ci;
        cJSON_Delete(d);
    }
    if (found && verdict == ENGINE_MANUAL) {
        rc = store_inbox_set_detail(m->e->st, open.id, field, detail_text, NULL, NULL, m->now, err);
        goto out;
    }
    if (found && store_inbox_set_detail(m->e->st, open.id, NULL, open.detail, "settled", "policy",
                                        m->now, err) == -1)
        goto out;
    struct inbox_entry entry = {
        .kind = INBOX_CONFLICT,
        .system = (char *)(uintptr_t)(theirs->system ? theirs->system : m->ch->system),
        .collection = (char *)(uintptr_t)m->e->colls[m->coll].cfg->name,
        .record_id = record_id,
        .journal_seq = m->ch->seq,
        .reason = reason,
        .created_at_ms = m->now,
    };
    if (store_inbox_add(m->e->st, &entry, &id, err) == -1 ||
        store_inbox_set_detail(m->e->st, id, field, detail_text, state, state ? "policy" : NULL,
                               m->now, err) == -1)
        goto out;
    rc = 0;
out:
    inbox_entry_fini(&open);
    cJSON_Delete(detail);
    free(detail_text);
    free(a);
    free(b);
    return rc;
}

/* A link's recent states (recent.c), parsed; an empty array when none. */
static cJSON *
load_recent(struct merge_ctx *m, const struct link *l, struct error *err, int *failed)
{
    char *text = NULL;
    cJSON *recent = NULL;

    *failed = store_link_recent(m->e->st, l->id, &text, err) == -1;
    if (text != NULL)
        recent = cJSON_Parse(text);
    free(text);
    return recent ? recent : cJSON_CreateArray();
}

/* The system's last-change time of a state in its own shape, or -1. */
static int64_t
ts_of(const struct engine_coll *c, const cJSON *sys_state)
{
    int64_t at;

    if (c->cfg->updated_at_path == NULL ||
        value_timestamp_ms(value_path_get(sys_state, c->cfg->updated_at_path), &at) == -1)
        return -1;
    return at;
}

/* Entry i of recent: its time, kind and state (parsed, the caller's). */
static cJSON *
recent_state(const cJSON *entry, int64_t *at, char *kind)
{
    const cJSON *when = cJSON_GetArrayItem(entry, 0), *text = cJSON_GetArrayItem(entry, 1);
    const cJSON *k = cJSON_GetArrayItem(entry, 2);

    *at = cJSON_IsNumber(when) ? (int64_t)when->valuedouble : 0;
    *kind = cJSON_IsString(k) ? k->valuestring[0] : 'w';
    return cJSON_IsString(text) ? cJSON_Parse(text->valuestring) : NULL;
}

/*
 * Whether incoming is the late echo of a state concord wrote to this copy
 * within the echo window: equal, on every field the map reads, to one of
 * the link's past writes. Returns the write's time, or 0 when it is not one.
 */
static int64_t
late_echo(struct merge_ctx *m, const cJSON *recent, const cJSON *incoming)
{
    struct engine_coll *c = &m->e->colls[m->coll];
    const cJSON *w;
    int64_t found = 0;

    cJSON_ArrayForEach(w, recent)
    {
        int64_t at;
        char kind;
        cJSON *state = recent_state(w, &at, &kind), *mapped = NULL;
        struct error ignored = {0};
        const cJSON *f;
        int equal = 1;

        if (state == NULL || kind != 'w' || at < m->now - m->e->cfg->echo_window_ms ||
            map_apply(c->map_in, state, &mapped, &ignored) == -1) {
            cJSON_Delete(state);
            continue;
        }
        cJSON_ArrayForEach(f, incoming)
        {
            if (!same(f, cJSON_GetObjectItemCaseSensitive(mapped, f->string)))
                equal = 0;
        }
        cJSON_ArrayForEach(f, mapped)
        {
            if (!same(f, cJSON_GetObjectItemCaseSensitive(incoming, f->string)))
                equal = 0;
        }
        cJSON_Delete(mapped);
        cJSON_Delete(state);
        if (equal)
            found = at;
    }
    return found;
}

/*
 * News older than what concord knows the copy holds (its updated_at is
 * before the base's): the state the copy had at that time, the newest
 * recent state no later than it, to merge against. NULL when none is known.
 */
static cJSON *
base_as_of(const struct engine_coll *c, const cJSON *recent, int64_t ts)
{
    const cJSON *w;
    cJSON *best = NULL;
    int64_t best_ts = -1;

    cJSON_ArrayForEach(w, recent)
    {
        int64_t at, t;
        char kind;
        cJSON *state = recent_state(w, &at, &kind);

        t = state ? ts_of(c, state) : -1;
        if (t >= 0 && t <= ts && t >= best_ts) {
            cJSON_Delete(best);
            best = state;
            best_ts = t;
        } else {
            cJSON_Delete(state);
        }
    }
    return best;
}

/* A copy that holds an older write of concord's, landed late: its base
 * becomes what it holds, and the record is written to it again. */
static int
rewrite_copy(struct merge_ctx *m, const struct link *l, const struct record *rec, int64_t echo_at,
             struct error *err)
{
    char *rec_text = value_canonical_text(m->record), note[200];
    int rc;

    (void)snprintf(note, sizeof(note),
                   "the copy holds concord's write of %lld ms, which landed after a newer one: "
                   "written again",
                   (long long)echo_at);
    log_info(&(struct log_ctx){.system = m->ch->system,
                               .collection = m->e->colls[m->coll].cfg->name,
                               .record_id = rec->id},
             "%s", note);
    rc = store_link_set_noted(m->e->st, l->id, NULL, rec_text, m->now, 'r', err) == -1 ||
                 engine_fanout_record(m->e, m->coll, rec, err) == -1
             ? -1
             : store_journal_set_state(m->e->st, m->ch->seq, CHANGE_UNCHANGED, note, err);
    free(rec_text);
    return rc;
}

/* Bring the copies that held a contested value to the record as it is now. */
static int
refresh_contested(struct merge_ctx *m, int64_t record_id, struct error *err)
{
    struct record rec = {0};
    size_t n = m->refresh_count;
    int rc;

    if (n == 0)
        return 0;
    m->refresh_count = 0;
    rc = store_record_get(m->e->st, record_id, &rec, err);
    for (size_t i = 0; i < n && rc == 1; i++)
        rc = engine_fanout_record(m->e, m->refresh[i], &rec, err) == -1 ? -1 : 1;
    record_fini(&rec);
    return rc == -1 ? -1 : 0;
}

/* A change to the copy of a deleted record: the delete stands, and the
 * copy is brought in line with it (deleted, archived or left alone). */
static int
merge_into_deleted(struct merge_ctx *m, const struct record *rec, struct error *err)
{
    cJSON *state = cJSON_Parse(rec->state);
    char note[200];
    struct engine_change fc = {
        .record_id = rec->id,
        .version = rec->version,
        .model = rec->model,
        .state = state,
        .is_deleted = 1,
        .source_coll = -1,
    };
    int rc = engine_fanout_to(m->e, m->coll, &fc, err);

    cJSON_Delete(state);
    (void)snprintf(note, sizeof(note),
                   "record %lld is deleted: the change is ignored (concord restore %lld brings "
                   "it back)",
                   (long long)rec->id, (long long)rec->id);
    return rc == -1 ? -1 : store_journal_set_state(m->e->st, m->ch->seq, CHANGE_IGNORED, note, err);
}

/*
 * A change to a copy concord already links: a three-way merge, field by
 * field, of the incoming state, the link's base (what the copy held when it
 * last agreed with concord) and the record.
 */
static int
merge_linked(struct merge_ctx *m, struct link *l, const cJSON *incoming, struct error *err)
{
    struct engine_coll *c = &m->e->colls[m->coll];
    const char *system = c->cfg->system->name;
    struct record rec = {0};
    cJSON *base_sys = NULL, *base_in = NULL, *changed = NULL, *state = NULL, *meta = NULL;
    cJSON *take = NULL, *refused = NULL;
    struct error ignored = {0};
    char *rec_text = NULL, *note = NULL;
    enum change_state cstate = CHANGE_UNCHANGED;
    int conflicts = 0, manual = 0, to_source = 0, failed = 0, rc = -1, found, stale = 0;
    int64_t echo_at, ts_in, ts_base;
    cJSON *recent = NULL;
    const cJSON *name;
    char why[1024] = "";

    found = store_record_get(m->e->st, l->record_id, &rec, err);
    if (found <= 0)
        return found == 0 ? error_set(err, ERROR_INTERNAL, "link to missing record %lld",
                                      (long long)l->record_id)
                          : -1;
    if (rec.is_deleted) {
        rc = merge_into_deleted(m, &rec, err);
        record_fini(&rec);
        return rc;
    }
    recent = load_recent(m, l, err, &failed);
    if (failed)
        goto out;
    base_sys = l->base ? cJSON_Parse(l->base) : NULL;
    ts_in = ts_of(c, m->record);
    ts_base = base_sys ? ts_of(c, base_sys) : -1;
    if (!m->ch->is_replay && base_sys != NULL) {
        if (ts_in >= 0 && ts_base >= 0 && ts_in < ts_base) {
            /* Stale news: the copy changed since (concord wrote to it).
             * Merge what it says against what the copy held then, so no
             * field it did not touch is reverted, and leave the base. */
            cJSON_Delete(base_sys);
            base_sys = base_as_of(c, recent, ts_in);
            if (base_sys == NULL) {
                note = xstrdup("older than the copy's state concord knows: ignored");
                rc = store_journal_set_state(m->e->st, m->ch->seq, CHANGE_IGNORED, note, err);
                goto out;
            }
            stale = 1;
        }
    }
    /* A late echo of concord's own write is one even when news came since
     * (stale): merged against the copy's older state, the values concord
     * wrote would pass for the system's change, and could win a conflict
     * (newest) over a newer one. */
    echo_at = m->ch->is_replay ? 0 : late_echo(m, recent, incoming);
    if (echo_at > 0 && ts_in >= 0 && ts_base >= 0 && ts_in > ts_base) {
        /* The copy holds an older write of concord's, and since after the
         * base: a write that timed out landed after a newer one. The copy
         * is what it says; it is written the record again. */
        rc = rewrite_copy(m, l, &rec, echo_at, err);
        goto out;
    }
    if (echo_at > 0) {
        note = xasprintf("the echo of what concord wrote at %lld ms", (long long)echo_at);
        count(m, m->e->held_echoes, m->e->metrics.echoes);
        rc = store_journal_set_state(m->e->st, m->ch->seq, CHANGE_UNCHANGED, note, err);
        goto out;
    }
    /* A base that no longer maps (the map changed) counts as empty, and so
     * does every base for a replay: the change is read again through the
     * current map, field by field against the record. */
    if (base_sys != NULL && !m->ch->is_replay &&
        map_apply(c->map_in, base_sys, &base_in, &ignored) == -1)
        base_in = NULL;
    changed = changed_fields(incoming, base_in);
    /* The copy holds this state now, whatever we make of it. */
    rec_text = engine_copy_text(c->base_keep, c->base_keep_count, m->record);
    if (!stale && store_link_set_noted(m->e->st, l->id, NULL, rec_text, m->now, 'r', err) == -1)
        goto out;
    if (cJSON_GetArraySize(changed) == 0) {
        note = xstrdup("equal to the base: an echo or a repeat");
        count(m, m->e->held_echoes, m->e->metrics.echoes);
        rc = store_journal_set_state(m->e->st, m->ch->seq, CHANGE_UNCHANGED, note, err);
        goto out;
    }
    state = cJSON_Parse(rec.state);
    if (state == NULL)
        state = cJSON_CreateObject();
    meta = load_meta(m, rec.id, err, &failed);
    if (failed)
        goto out;
    take = cJSON_CreateArray();
    refused = cJSON_CreateArray();
    cJSON_ArrayForEach(name, changed)
    {
        const char *f = name->valuestring;
        const cJSON *iv = cJSON_GetObjectItemCaseSensitive(incoming, f);
        const cJSON *rv = cJSON_GetObjectItemCaseSensitive(state, f);
        const cJSON *bv = base_in ? cJSON_GetObjectItemCaseSensitive(base_in, f) : NULL;
        const cJSON *when = cJSON_GetObjectItemCaseSensitive(meta, f);
        const cJSON *src = cJSON_GetArrayItem(when, 1);
        const char *policy = "";
        enum engine_verdict verdict;

        if (same(rv, iv))
            continue; /* the same change on both sides, or none: nothing to refuse */
        if (!engine_may_change(m->sync, system, f)) {
            cJSON_AddItemToArray(refused, cJSON_CreateString(f));
            continue;
        }
        if (m->ch->is_replay || same(rv, bv)) {
            cJSON_AddItemToArray(take, cJSON_CreateString(f));
            continue; /* changed on this side only */
        }
        /* Changed on both sides since the base, to different values. */
        struct engine_side ours = {
            .value = rv,
            .source = cJSON_IsString(src) ? src->valuestring : NULL,
            .system = system_of(m->e, cJSON_IsString(src) ? src->valuestring : NULL),
            .at_ms = cJSON_IsNumber(cJSON_GetArrayItem(when, 0))
                         ? (int64_t)cJSON_GetArrayItem(when, 0)->valuedouble
                         : rec.updated_at_ms,
        };
        struct engine_side theirs = {
            .value = iv, .source = m->source, .system = system, .at_ms = m->src_at};
        verdict = engine_settle(m->sync, f, &ours, &theirs, &policy);
        if (note_conflict(m, rec.id, f, bv, &ours, &theirs, verdict, policy, err) == -1)
            goto out;
        conflicts++;
        if (verdict == ENGINE_TAKE_THEIRS)
            cJSON_AddItemToArray(take, cJSON_CreateString(f));
        else if (verdict == ENGINE_KEEP_OURS)
            to_source = 1;
        else
            manual++;
    }
    if (cJSON_GetArraySize(refused) > 0) {
        char *names = names_text(refused);

        append(why, sizeof(why), "refused %s: %s may not change %s under sync %s%s; ", names,
               system, cJSON_GetArraySize(refused) > 1 ? "them" : "it", m->sync->name,
               m->sync->write_back ? " (written back)" : "");
        log_warn(
            &(struct log_ctx){.system = system, .collection = c->cfg->name, .record_id = rec.id},
            "change %lld: %s may not change %s", (long long)m->ch->seq, system, names);
        if (m->sync->write_back)
            to_source = 1;
        free(names);
    }
    if (stale) {
        to_source = 1; /* the copy was overwritten since: give it the result */
        append(why, sizeof(why), "older than the copy's base: merged against its state then; ");
    }
    if (conflicts > 0)
        append(why, sizeof(why), "%d conflict%s (%d for a person: concord conflicts); ", conflicts,
               conflicts > 1 ? "s" : "", manual);
    rc = apply_fields(m, &rec, state, incoming, take, to_source, err);
    if (rc == -1 || refresh_contested(m, rec.id, err) == -1) {
        rc = -1;
        goto out;
    }
    if (rc == 1)
        cstate = CHANGE_APPLIED;
    else if (cJSON_GetArraySize(refused) > 0 && cJSON_GetArraySize(take) == 0 && conflicts == 0)
        cstate = CHANGE_REFUSED;
    if (why[0] == '\0' && rc == 0)
        append(why, sizeof(why), "the record holds these values already");
    if (cstate == CHANGE_APPLIED)
        count(m, m->e->held_applied, m->e->metrics.applied);
    rc = store_journal_set_state(m->e->st, m->ch->seq, cstate, why[0] ? why : NULL, err);
out:
    free(note);
    free(rec_text);
    cJSON_Delete(base_sys);
    cJSON_Delete(base_in);
    cJSON_Delete(changed);
    cJSON_Delete(state);
    cJSON_Delete(meta);
    cJSON_Delete(take);
    cJSON_Delete(refused);
    cJSON_Delete(recent);
    record_fini(&rec);
    return rc;
}

/* A new record's field times: every field was set by its first source.
 * The records.field_meta text, malloc()ed. */
static char *
first_times(const struct merge_ctx *m, const cJSON *incoming)
{
    return value_canonical_times(incoming, (double)m->src_at, m->source);
}

/*
 * News of a copy whose ambiguous match is open already: it waits with that
 * conflict (its detail's "later" lists it, and resolving it reads them all
 * again, in order), rather than a second conflict for the same copy, which
 * could not be resolved once the first had linked it.
 */
static int
match_news(struct merge_ctx *m, struct inbox_entry *open, const cJSON *candidates,
           struct error *err)
{
    cJSON *d = open->detail ? cJSON_Parse(open->detail) : NULL;
    cJSON *later;
    char *text, note[100];
    int rc;

    if (!cJSON_IsObject(d)) {
        cJSON_Delete(d);
        d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "field", "@match");
        cJSON_AddStringToObject(d, "ext_id", m->ext_id);
    }
    later = cJSON_GetObjectItemCaseSensitive(d, "later");
    if (!cJSON_IsArray(later)) {
        cJSON_DeleteItemFromObjectCaseSensitive(d, "later");
        later = cJSON_AddArrayToObject(d, "later");
    }
    cJSON_AddItemToArray(later, cJSON_CreateNumber((double)m->ch->seq));
    cJSON_DeleteItemFromObjectCaseSensitive(d, "candidates");
    cJSON_AddItemToObject(d, "candidates", cJSON_Duplicate(candidates, 1));
    text = value_canonical_text(d);
    (void)snprintf(note, sizeof(note), "held: an ambiguous match (inbox %lld)",
                   (long long)open->id);
    rc = store_inbox_set_detail(m->e->st, open->id, "@match", text, NULL, NULL, m->now, err) == -1
             ? -1
             : store_journal_set_state(m->e->st, m->ch->seq, CHANGE_HELD, note, err);
    free(text);
    cJSON_Delete(d);
    return rc;
}

/* More than one record matches a new copy: a person says which, or none. */
static int
ambiguous_match(struct merge_ctx *m, const int64_t *ids, int n, const char *why_text,
                struct error *err)
{
    struct engine_coll *c = &m->e->colls[m->coll];
    cJSON *detail = cJSON_CreateObject(), *cand = cJSON_CreateArray();
    char reason[800], *detail_text, note[100], list[300] = "";
    int64_t id;
    int rc = -1;

    for (int i = 0; i < n; i++) {
        cJSON_AddItemToArray(cand, cJSON_CreateNumber((double)ids[i]));
        append(list, sizeof(list), "%s%lld", i ? ", " : "", (long long)ids[i]);
    }
    cJSON_AddStringToObject(detail, "field", "@match");
    cJSON_AddItemToObject(detail, "candidates", cand);
    cJSON_AddStringToObject(detail, "ext_id", m->ext_id);
    struct inbox_entry open = {0};
    int found = store_match_conflict_find(m->e->st, c->cfg->name, m->ext_id, &open, err);

    if (found != 0) {
        rc = found == -1 ? -1 : match_news(m, &open, cand, err);
        inbox_entry_fini(&open);
        cJSON_Delete(detail);
        return rc;
    }
    detail_text = value_canonical_text(detail);
    (void)snprintf(reason, sizeof(reason),
                   "%.100s's new copy %.100s matches record%s %.200s by its natural keys%.60s: "
                   "concord resolve "
                   "ID --record N links it, --new makes a new record",
                   c->cfg->name, m->ext_id, n > 1 ? "s" : "", list, why_text);
    struct inbox_entry entry = {
        .kind = INBOX_CONFLICT,
        .system = m->ch->system,
        .collection = c->cfg->name,
        .journal_seq = m->ch->seq,
        .reason = reason,
        .created_at_ms = m->now,
    };
    log_warn(&(struct log_ctx){.system = m->ch->system, .collection = c->cfg->name},
             "no link made: %s", reason);
    if (store_inbox_add(m->e->st, &entry, &id, err) == -1 ||
        store_inbox_set_detail(m->e->st, id, "@match", detail_text, NULL, NULL, m->now, err) == -1)
        goto out;
    m->e->match_open = 1;
    (void)snprintf(note, sizeof(note), "held: an ambiguous match (inbox %lld)", (long long)id);
    rc = store_journal_set_state(m->e->st, m->ch->seq, CHANGE_HELD, note, err);
out:
    cJSON_Delete(detail);
    free(detail_text);
    return rc;
}

/* Whether link_id's create was born claimed in the turn under way. */
static int
born_this_turn(const struct engine *e, int64_t link_id)
{
    for (const struct engine_delivery *d = e->born; d != NULL; d = d->next) {
        if (d->link_id == link_id)
            return 1;
    }
    return 0;
}

/*
 * Whether a copy concord has not seen is one it made itself, with a create
 * whose answer was lost and that waits to be settled: equal, on every field
 * the map writes, to the version that create carried. Its echo, or the news
 * of its deletion, can come before the create is settled. Then the copy is
 * linked (the create's job finds it there) and *l is that link. Returns 1
 * when it was one, 0 when not, -1.
 */
static int
pinned_link(struct merge_ctx *m, struct link *l, struct error *err)
{
    struct engine_coll *c = &m->e->colls[m->coll];
    struct store_pinned *pins = NULL;
    int n, rc = 0;

    if (c->map_out == NULL)
        return 0;
    n = store_pinned_creates(m->e->st, c->cfg->name, &pins, err);
    for (int i = 0; i < n && rc == 0; i++) {
        struct version v = {0};
        struct error merr = {0};
        cJSON *state = NULL, *desired = NULL;
        int got;

        /* A create born claimed in this turn goes out only after its
         * commit: no copy can be its yet, however alike. */
        if (born_this_turn(m->e, pins[i].link_id))
            continue;
        got = store_version_get(m->e->st, pins[i].record_id, pins[i].sent_version, &v, err);

        if (got == -1) {
            rc = -1;
            break;
        }
        state = got ? cJSON_Parse(v.state) : NULL;
        if (state != NULL && map_apply(c->map_out, state, &desired, &merr) == 0 &&
            !(c->cfg->shape != CONFIG_SHAPE_NONE
                  ? shape_differs(c, desired, m->record)
                  : map_out_differs(c->map_out, desired, m->record))) {
            char *rec_text = value_canonical_text(m->record);

            log_info(&(struct log_ctx){.system = m->ch->system,
                                       .collection = c->cfg->name,
                                       .record_id = pins[i].record_id},
                     "copy %s is the one concord's create made (its answer was lost): linked",
                     m->ext_id);
            rc =
                store_link_set(m->e->st, pins[i].link_id, m->ext_id, rec_text, m->now, err) == -1 ||
                        engine_copy_found(m->e, c->cfg->name, m->ext_id, pins[i].record_id, err) ==
                            -1
                    ? -1
                    : store_link_get(m->e->st, pins[i].link_id, l, err);
            free(rec_text);
        }
        cJSON_Delete(state);
        cJSON_Delete(desired);
        version_fini(&v);
    }
    free(pins);
    return n == -1 ? -1 : rc;
}

/*
 * A copy concord has not seen whose natural key is that of a deleted record
 * with a create to this collection whose outcome is unknown: the copy that
 * create made, found only after the record was deleted (and changed since,
 * so pinned_link() could not tell by content). It is linked to the
 * tombstone, and deleted like the record's other copies. Returns 1 when it
 * was one, 0 when not, -1.
 */
static int
orphan_of_tombstone(struct merge_ctx *m, const cJSON *incoming, struct error *err)
{
    struct engine_coll *c = &m->e->colls[m->coll];
    struct store_pinned *pins = NULL;
    int n, rc = 0;

    if (m->sync == NULL || m->sync->match_count == 0)
        return 0;
    n = store_pinned_creates(m->e->st, c->cfg->name, &pins, err);
    for (int i = 0; i < n && rc == 0; i++) {
        struct record rec = {0};
        cJSON *state = NULL;
        int got = store_record_get(m->e->st, pins[i].record_id, &rec, err);

        if (got == -1) {
            rc = -1;
            break;
        }
        state = got && rec.is_deleted ? cJSON_Parse(rec.state) : NULL;
        if (state != NULL && engine_keys_equal(m->sync, state, incoming)) {
            char *rec_text = value_canonical_text(m->record);

            log_info(&(struct log_ctx){.system = m->ch->system,
                                       .collection = c->cfg->name,
                                       .record_id = rec.id},
                     "copy %s is the one a lost create made for deleted record %lld: linked, to "
                     "be deleted",
                     m->ext_id, (long long)rec.id);
            rc =
                store_link_set(m->e->st, pins[i].link_id, m->ext_id, rec_text, m->now, err) == -1 ||
                        engine_copy_found(m->e, c->cfg->name, m->ext_id, rec.id, err) == -1
                    ? -1
                : merge_into_deleted(m, &rec, err) == -1 ? -1
                                                         : 1;
            free(rec_text);
        }
        cJSON_Delete(state);
        record_fini(&rec);
    }
    free(pins);
    return n == -1 ? -1 : rc;
}

/* A copy concord has not seen: linked to the record its natural keys find,
 * or a new record, when its system may make one. */
static int
merge_new(struct merge_ctx *m, const cJSON *incoming, struct error *err)
{
    struct engine_coll *c = &m->e->colls[m->coll];
    char *state_text = NULL, *rec_text = NULL, *meta_text = NULL, *note = NULL;
    int64_t record_id, link_id, *ids = NULL;
    int rc = -1, n;

    if (!engine_may_write(m->sync, c->cfg->system->name)) {
        note = xasprintf("%s is not an origin of %s: no record is made from its copy %s",
                         c->cfg->system->name, c->cfg->model, m->ext_id);
        rc = store_journal_set_state(m->e->st, m->ch->seq, CHANGE_REFUSED, note, err);
        free(note);
        return rc;
    }
    n = orphan_of_tombstone(m, incoming, err);
    if (n != 0)
        return n == -1 ? -1 : 0;
    n = engine_keys_match(m->e, m->sync, c->cfg->model, incoming, &ids, err);
    if (n == -1)
        return -1;
    if (n > 1) {
        rc = ambiguous_match(m, ids, n, "", err);
        free(ids);
        return rc;
    }
    if (n == 1) {
        struct link l = {0};
        int has = store_link_by_record(m->e->st, c->cfg->name, ids[0], &l, err);

        if (has == 1 && l.ext_id != NULL) {
            link_fini(&l);
            rc = ambiguous_match(m, ids, n, ", which already has another copy there", err);
            free(ids);
            return rc;
        }
        /* Guarantee: no duplicate. The copy joins the record it matches; a
         * create still queued for that record becomes an update of it. */
        if (has == 0)
            rc =
                store_link_add(m->e->st, c->cfg->name, ids[0], m->ext_id, NULL, m->now, &l.id, err);
        else if (has == 1)
            rc = store_link_set(m->e->st, l.id, m->ext_id, NULL, m->now, err);
        l.record_id = ids[0];
        free(l.base);
        l.base = NULL;
        if (rc != -1 && has != -1)
            rc = engine_copy_found(m->e, c->cfg->name, m->ext_id, ids[0], err);
        if (rc != -1 && has != -1) {
            log_info(
                &(struct log_ctx){
                    .system = m->ch->system, .collection = c->cfg->name, .record_id = ids[0]},
                "copy %s matched record %lld by its natural keys", m->ext_id, (long long)ids[0]);
            rc = merge_linked(m, &l, incoming, err);
        } else {
            rc = -1;
        }
        link_fini(&l);
        free(ids);
        return rc;
    }
    state_text = value_canonical_text(incoming);
    rec_text = engine_copy_text(c->base_keep, c->base_keep_count, m->record);
    meta_text = first_times(m, incoming);
    if (store_record_add_meta(m->e->st, c->cfg->model, state_text, meta_text, c->cfg->name,
                              m->ch->seq, m->now, &record_id, err) == -1 ||
        store_link_add(m->e->st, c->cfg->name, record_id, m->ext_id, rec_text, m->now, &link_id,
                       err) == -1 ||
        engine_keys_update(m->e, m->sync, record_id, c->cfg->model, incoming, err) == -1)
        goto out;
    /* An ambiguous match this copy had stays open: its candidate is gone
     * (deleted), and whether the copy should be a record of its own, or is
     * a stray of the deleted one, is a person's call (concord conflicts). */
    struct engine_change fc = {
        .record_id = record_id,
        .version = 1,
        .model = c->cfg->model,
        .state = incoming,
        .state_text = state_text,
        .source_coll = m->coll,
        .priority = m->ch->is_replay,
        .is_new = 1,
    };
    if (engine_fanout(m->e, &fc, err) == -1 ||
        store_journal_set_state(m->e->st, m->ch->seq, CHANGE_APPLIED, NULL, err) == -1)
        goto out;
    log_debug(&(struct log_ctx){.system = m->ch->system,
                                .collection = c->cfg->name,
                                .record_id = record_id},
              "record created from %s", m->ext_id);
    count(m, m->e->held_applied, m->e->metrics.applied);
    rc = 0;
out:
    free(state_text);
    free(meta_text);
    free(rec_text);
    return rc;
}

/* The mass-delete guard held a delete: it waits in the inbox for approval. */
static int
hold_delete(struct merge_ctx *m, const struct record *rec, struct error *err)
{
    struct engine_coll *c = &m->e->colls[m->coll];
    const struct config_system *sys = c->cfg->system;
    cJSON *detail = cJSON_CreateObject();
    char reason[600], note[200], *detail_text;
    int64_t id;
    int rc = -1;

    cJSON_AddStringToObject(detail, "ext_id", m->ext_id);
    detail_text = value_canonical_text(detail);
    (void)snprintf(reason, sizeof(reason),
                   "the mass-delete guard of %s holds this delete of record %lld (copy %s): more "
                   "than %lld deletes, or more than %.0f%% of its copies, within %lld s; concord "
                   "approve ID lets it through, concord skip ID drops it",
                   sys->name, (long long)rec->id, m->ext_id, (long long)sys->delete_guard_max_count,
                   sys->delete_guard_max_share * 100.0,
                   (long long)(sys->delete_guard_window_ms / 1000));
    struct inbox_entry entry = {
        .kind = INBOX_HELD,
        .system = m->ch->system,
        .collection = c->cfg->name,
        .record_id = rec->id,
        .journal_seq = m->ch->seq,
        .reason = reason,
        .created_at_ms = m->now,
    };
    log_warn(
        &(struct log_ctx){.system = sys->name, .collection = c->cfg->name, .record_id = rec->id},
        "delete held: %s", reason);
    if (store_inbox_add(m->e->st, &entry, &id, err) == -1 ||
        store_inbox_set_detail(m->e->st, id, NULL, detail_text, NULL, NULL, m->now, err) == -1)
        goto out;
    (void)snprintf(note, sizeof(note), "held by the mass-delete guard (inbox %lld)", (long long)id);
    rc = store_journal_set_state(m->e->st, m->ch->seq, CHANGE_HELD, note, err);
out:
    cJSON_Delete(detail);
    free(detail_text);
    return rc;
}

/* The copy was deleted in its system. */
static int
merge_delete(struct merge_ctx *m, struct link *l, int found, struct error *err)
{
    struct engine_coll *c = &m->e->colls[m->coll];
    struct record rec = {0};
    cJSON *state = NULL;
    int rc, closed;

    /* A copy some record could not be told apart for is gone: its ambiguous
     * match needs no one any more (also when the copy was linked since). */
    closed = store_match_conflict_close(m->e->st, c->cfg->name, m->ext_id, m->now,
                                        "the copy was deleted in its system", err);
    if (closed == -1)
        return -1;
    if (!found) {
        struct link gone = {0};
        int was = store_link_by_gone(m->e->st, c->cfg->name, m->ext_id, &gone, err);

        link_fini(&gone);
        if (was == -1)
            return -1;
        return store_journal_set_state(m->e->st, m->ch->seq,
                                       was ? CHANGE_UNCHANGED : CHANGE_IGNORED,
                                       was      ? "the copy is deleted already"
                                       : closed ? "a delete of a copy concord never linked; its "
                                                  "ambiguous match is closed"
                                                : "a delete of a copy concord never linked",
                                       err);
    }
    if (!engine_may_write(m->sync, c->cfg->system->name))
        return store_journal_set_state(m->e->st, m->ch->seq, CHANGE_REFUSED,
                                       "a delete from a system that is not an origin", err);
    rc = store_record_get(m->e->st, l->record_id, &rec, err);
    if (rc <= 0)
        return rc == 0 ? error_set(err, ERROR_INTERNAL, "link to missing record") : -1;
    if (rec.is_deleted) {
        rc = store_link_gone(m->e->st, l->id, rec.id, m->now, "the copy was deleted", err) == -1
                 ? -1
                 : store_journal_set_state(m->e->st, m->ch->seq, CHANGE_UNCHANGED,
                                           "already deleted", err);
        record_fini(&rec);
        return rc;
    }
    rc = store_held_approved(m->e->st, m->ch->seq, err);
    if (rc == 0)
        rc = engine_guard_delete(m->e, c->sys_index, m->now, err) == 1 ? 2 : 0;
    if (rc == -1 || rc == 2) {
        rc = rc == -1 ? -1 : hold_delete(m, &rec, err);
        record_fini(&rec);
        return rc;
    }
    struct version v = {
        .record_id = rec.id,
        .version = rec.version + 1,
        .state = rec.state,
        .diff = "{\"deleted\":[false,true]}",
        .source = (char *)(uintptr_t)c->cfg->name,
        .journal_seq = m->ch->seq,
        .at_ms = m->now,
    };
    state = cJSON_Parse(rec.state);
    struct engine_change fc = {
        .record_id = rec.id,
        .version = v.version,
        .model = rec.model,
        .state = state,
        .is_deleted = 1,
        .source_coll = m->coll,
        .priority = m->ch->is_replay,
    };
    rc = store_link_gone(m->e->st, l->id, rec.id, m->now, "the copy was deleted in its system",
                         err) == -1 ||
                 store_record_update(m->e->st, &v, 1, err) == -1 ||
                 store_record_deleted_cleanup(m->e->st, rec.id, m->now, "the record was deleted",
                                              err) == -1 ||
                 engine_fanout(m->e, &fc, err) == -1 ||
                 store_journal_set_state(m->e->st, m->ch->seq, CHANGE_APPLIED, "deleted", err) == -1
             ? -1
             : 0;
    cJSON_Delete(state);
    record_fini(&rec);
    return rc;
}

/* When the change was made at its source: the record's own time where the
 * collection names one, else when concord received it. */
static int64_t
source_time(const struct engine_coll *c, const struct change *ch, const cJSON *record)
{
    int64_t at;

    if (c->cfg->updated_at_path != NULL &&
        value_timestamp_ms(value_path_get(record, c->cfg->updated_at_path), &at) == 0)
        return at;
    return ch->received_at_ms;
}

/*
 * A webhook of a collection with `hint: poll`: its events (a list, or the
 * body as one) that deleted_when marks are deletions of the copies
 * deleted_id names, each journaled as its own change (so the delete rules
 * and the mass-delete guard see each one, as a reconcile's); any other
 * event makes the collection be polled now. (A search does not show a
 * deleted record: HubSpot's contact.deletion is the only news of one.)
 */
static int
take_hint(struct merge_ctx *m, const cJSON *body, struct error *err)
{
    const struct engine_coll *c = &m->e->colls[m->coll];
    const cJSON *ev, *one = cJSON_IsArray(body) ? body->child : body;
    int deletions = 0, others = 0;
    char note[120];

    for (ev = one; ev != NULL; ev = cJSON_IsArray(body) ? ev->next : NULL) {
        struct error jerr = {0};
        char ext[256];
        int del = c->deleted != NULL && c->cfg->deleted_id_path != NULL
                      ? map_jq_test(c->deleted, ev, &jerr)
                      : 0;

        if (del == 1 && engine_ext_id(c->cfg->deleted_id_path, ev, ext, sizeof(ext)) == 0) {
            cJSON *gone = cJSON_CreateObject();
            char *text;
            int64_t seq;
            int rc;

            cJSON_AddStringToObject(gone, "@poll", c->cfg->name);
            cJSON_AddStringToObject(gone, "@missing", ext);
            text = value_canonical_text(gone);
            rc = store_journal_add(m->e->st, c->cfg->system->name, NULL, m->ch->received_at_ms,
                                   text, strlen(text), &seq, err);
            free(text);
            cJSON_Delete(gone);
            if (rc == -1)
                return -1;
            deletions++;
            m->e->journal_grew = 1;
        } else {
            others++;
        }
    }
    if (others > 0 && store_poll_request(m->e->st, c->cfg->name, 0, err) == -1)
        return -1;
    (void)snprintf(note, sizeof(note), "a hint: %s%s%d deletion%s journaled",
                   others > 0 ? "the collection is polled now" : "", others > 0 ? "; " : "",
                   deletions, deletions == 1 ? "" : "s");
    return store_journal_set_state(m->e->st, m->ch->seq, CHANGE_IGNORED,
                                   deletions == 0 ? "a hint: the collection is polled now" : note,
                                   err);
}

/*
 * Copies a full read found as concord last knew them ({"@poll": ...,
 * "@check": [ext ids]}): each gets the record again wherever the record
 * maps to something else, so a write that never reached a copy is made
 * now. (A copy that did not change says nothing of the record; without
 * this, a reconcile would leave such a copy behind for good.)
 */
static int
check_copies(struct merge_ctx *m, const cJSON *ids, struct error *err)
{
    const struct engine_coll *c = &m->e->colls[m->coll];
    const cJSON *id;
    int64_t queued = 0;
    char note[160];

    cJSON_ArrayForEach(id, ids)
    {
        struct link l = {0};
        struct record rec = {0};
        int64_t jobs = 0;
        int found = cJSON_IsString(id)
                        ? store_link_by_ext(m->e->st, c->cfg->name, id->valuestring, &l, err)
                        : 0;

        if (found == 1)
            found = store_record_get(m->e->st, l.record_id, &rec, err);
        /* A copy with a job queued or under way gets the record by it. */
        if (found == 1 && !rec.is_deleted && store_link_jobs(m->e->st, l.id, &jobs, err) == -1)
            found = -1;
        if (found == 1 && !rec.is_deleted && jobs == 0) {
            cJSON *state = cJSON_Parse(rec.state);
            struct engine_change fc = {
                .record_id = rec.id,
                .version = rec.version,
                .model = rec.model,
                .state = state,
                .source_coll = -1,
                .contested = 1, /* a value it holds in an open conflict is no loss */
            };
            int64_t before = m->e->fanout_queued;

            found = engine_fanout_to(m->e, m->coll, &fc, err) == -1 ? -1 : 1;
            cJSON_Delete(state);
            if (m->e->fanout_queued > before) {
                queued++;
                log_info(&(struct log_ctx){.system = c->cfg->system->name,
                                           .collection = c->cfg->name,
                                           .record_id = rec.id},
                         "copy %s is not what record %lld maps to, though it did not change: "
                         "the record is written to it again",
                         id->valuestring, (long long)rec.id);
            }
        }
        record_fini(&rec);
        link_fini(&l);
        if (found == -1)
            return -1;
    }
    (void)snprintf(note, sizeof(note), "a full read's unchanged copies: %lld written again",
                   (long long)queued);
    return store_journal_set_state(m->e->st, m->ch->seq, CHANGE_UNCHANGED, note, err);
}

void
engine_stamp_event_time(const struct config_collection *cc, const cJSON *event, cJSON *record)
{
    const cJSON *at;

    if (cc->event_time_path == NULL || !cJSON_IsObject(record) || record == event)
        return;
    at = value_path_get(event, cc->event_time_path);
    if (!cJSON_IsNumber(at) && !cJSON_IsString(at))
        return;
    cJSON_DeleteItemFromObjectCaseSensitive(record, CONFIG_EVENT_TIME_FIELD);
    cJSON_AddItemToObject(record, CONFIG_EVENT_TIME_FIELD, cJSON_Duplicate(at, 0));
}

/* Decide, map and merge one change whose collection is known. Returns 0,
 * 1 when the change must wait for a later turn, or -1. */
static int
merge_change(struct merge_ctx *m, const cJSON *body, struct error *err)
{
    struct engine_coll *c = &m->e->colls[m->coll];
    struct link l = {0};
    cJSON *incoming = NULL;
    struct error merr = {0};
    char why[400];
    int found, is_delete = 0, was_gone = 0, rc = -1;

    const cJSON *polled = cJSON_GetObjectItemCaseSensitive(body, "@poll");
    const cJSON *missing = cJSON_GetObjectItemCaseSensitive(body, "@missing");
    static const cJSON empty = {.type = cJSON_Object};

    /* A webhook that only says "something changed" (Google's and Graph's
     * carry no record): the collection is polled now instead. */
    if (c->cfg->webhook_hint && polled == NULL)
        return take_hint(m, body, err);
    if (polled != NULL && cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(body, "@check")))
        return check_copies(m, cJSON_GetObjectItemCaseSensitive(body, "@check"), err);
    /* A polled record is the record itself ({"@poll": ..., "record": ...});
     * a copy a complete reconcile did not find is a delete. */
    if (cJSON_IsString(missing)) {
        m->record = &empty;
        (void)snprintf(m->ext_id, sizeof(m->ext_id), "%s", missing->valuestring);
        is_delete = 1;
    } else {
        m->record = polled                ? cJSON_GetObjectItemCaseSensitive(body, "record")
                    : c->cfg->record_path ? value_path_get(body, c->cfg->record_path)
                                          : body;
        if (!cJSON_IsObject(m->record))
            return park_change(m, "the webhook holds no record object where `record` points", err);
        if (engine_ext_id(c->cfg->id_path, m->record, m->ext_id, sizeof(m->ext_id)) == -1)
            return park_change(m, "the record has no usable id where `id` points", err);
    }
    if (c->deleted != NULL && !is_delete) {
        is_delete = map_jq_test(c->deleted, polled ? m->record : body, &merr);
        if (is_delete == -1)
            return park_change(m, merr.msg, err);
    }
    m->src_at = source_time(c, m->ch, m->record);
    /* A poll journals its copy with the change; others are noted now. */
    if ((m->ch->ext_id == NULL || strcmp(m->ch->ext_id, m->ext_id) != 0 ||
         m->ch->collection == NULL || strcmp(m->ch->collection, c->cfg->name) != 0) &&
        store_journal_note_copy(m->e->st, m->ch->seq, c->cfg->name, m->ext_id, err) == -1)
        return -1;
    /* (Whether a deleted copy had the id is read with the link: a pinned
     * link found instead writes no other link's deleted copy.) */
    found = store_link_by_ext_or_gone(m->e->st, c->cfg->name, m->ext_id, &l, &was_gone, err);
    if (found == 0)
        found = pinned_link(m, &l, err);
    if (found == -1)
        return -1;
    if (!found && !is_delete && was_gone)
        return store_journal_set_state(m->e->st, m->ch->seq, CHANGE_IGNORED,
                                       "news of a copy that was deleted", err);
    /* A copy concord does not know, while a create to this collection is in
     * flight, may be that create's echo: read it once the create's answer
     * has told concord the new copy's id, or it would make a second record.
     * (One born this turn is not sent yet: it has no echo.) */
    if (!found && c->creates_in_flight - c->creates_born > 0)
        return 1;
    if (is_delete) {
        rc = merge_delete(m, &l, found, err);
        goto out;
    }
    if (c->map_in == NULL) {
        rc = store_journal_set_state(m->e->st, m->ch->seq, CHANGE_IGNORED,
                                     "the collection has no map_in", err);
        goto out;
    }
    if (map_apply(c->map_in, m->record, &incoming, &merr) == -1) {
        rc = park_change(m, merr.msg, err);
        goto out;
    }
    rc = engine_refs_in(m->e, m->coll, incoming, why, sizeof(why), err);
    if (rc != 1) {
        rc = rc == -1 ? -1 : park_change(m, why, err);
        goto out;
    }
    rc = found ? merge_linked(m, &l, incoming, err) : merge_new(m, incoming, err);
out:
    cJSON_Delete(incoming);
    link_fini(&l);
    return rc;
}

/* An operator's restore of a deleted record ({"restore": N, "by": ...}):
 * a new live version, written again to every collection. */
static int
process_restore(struct merge_ctx *m, int64_t id, struct error *err)
{
    struct record rec = {0};
    cJSON *state = NULL;
    int rc = store_record_get(m->e->st, id, &rec, err);

    if (rc <= 0)
        return rc == 0 ? park_change(m,
                                     "a restore names no existing record (or its tombstone "
                                     "was purged)",
                                     err)
                       : -1;
    if (!rec.is_deleted) {
        record_fini(&rec);
        return store_journal_set_state(m->e->st, m->ch->seq, CHANGE_UNCHANGED,
                                       "the record is not deleted", err);
    }
    struct version v = {
        .record_id = rec.id,
        .version = rec.version + 1,
        .state = rec.state,
        .diff = "{\"deleted\":[true,false]}",
        .source = (char *)(uintptr_t)m->source,
        .journal_seq = m->ch->seq,
        .at_ms = m->now,
    };
    state = cJSON_Parse(rec.state);
    struct engine_change fc = {
        .record_id = rec.id,
        .version = v.version,
        .model = rec.model,
        .state = state,
        .source_coll = -1,
    };
    rc =
        store_record_update(m->e->st, &v, 0, err) == -1 ||
                engine_keys_update(m->e, engine_sync_of_model(m->e, rec.model), rec.id, rec.model,
                                   state, err) == -1 ||
                engine_fanout(m->e, &fc, err) == -1 ||
                store_journal_set_state(m->e->st, m->ch->seq, CHANGE_APPLIED, "restored", err) == -1
            ? -1
            : 0;
    log_info(&(struct log_ctx){.record_id = rec.id}, "record restored by %s", m->source);
    cJSON_Delete(state);
    record_fini(&rec);
    return rc;
}

/*
 * An operator deletes a record (concord forget --propagate): a new version,
 * deleted, that fans out to every collection's delete mode, as a source's
 * delete does, without the mass-delete guard (a person asked for it).
 */
static int
operator_delete(struct merge_ctx *m, int64_t record_id, struct error *err)
{
    struct record rec = {0};
    cJSON *state;
    int rc = store_record_get(m->e->st, record_id, &rec, err);

    if (rc <= 0)
        return rc == 0 ? park_change(m, "an operator delete names no existing record", err) : -1;
    if (rec.is_deleted) {
        record_fini(&rec);
        return store_journal_set_state(m->e->st, m->ch->seq, CHANGE_UNCHANGED, "already deleted",
                                       err);
    }
    struct version v = {
        .record_id = rec.id,
        .version = rec.version + 1,
        .state = rec.state,
        .diff = "{\"deleted\":[false,true]}",
        .source = (char *)(uintptr_t)m->source,
        .journal_seq = m->ch->seq,
        .at_ms = m->now,
    };
    state = cJSON_Parse(rec.state);
    struct engine_change fc = {
        .record_id = rec.id,
        .version = v.version,
        .model = rec.model,
        .state = state,
        .is_deleted = 1,
        .source_coll = -1,
    };
    m->sync = engine_sync_of_model(m->e, rec.model);
    rc = store_record_update(m->e->st, &v, 1, err) == -1 ||
                 store_record_deleted_cleanup(m->e->st, rec.id, m->now, "the record was deleted",
                                              err) == -1 ||
                 engine_fanout(m->e, &fc, err) == -1 ||
                 store_journal_set_state(m->e->st, m->ch->seq, CHANGE_APPLIED, "deleted", err) == -1
             ? -1
             : 0;
    cJSON_Delete(state);
    record_fini(&rec);
    return rc;
}

/*
 * An operator's correction (concord edit, concord resolve), journaled by the
 * CLI as {"record": N, "fields": {...}, "by": "alice"} from the system
 * "@operator". It makes a new version with the operator as its source, which
 * fans out to every collection, as any change does; and where the record
 * held the values already (a conflict settled for the record's side), the
 * record is still written to every copy that differs from it.
 */
static int
process_operator(struct merge_ctx *m, const cJSON *body, struct error *err)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(body, "record");
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(body, "fields");
    const cJSON *by = cJSON_GetObjectItemCaseSensitive(body, "by");
    const cJSON *restore = cJSON_GetObjectItemCaseSensitive(body, "restore");
    struct record rec = {0};
    const struct config_model *model;
    cJSON *incoming = NULL, *changed = NULL, *state = NULL;
    const cJSON *f;
    char source[160], reason[600];
    int rc;

    (void)snprintf(source, sizeof(source), "operator:%s",
                   cJSON_IsString(by) ? by->valuestring : "unknown");
    m->source = source;
    m->src_at = m->ch->received_at_ms;
    if (cJSON_IsNumber(restore))
        return process_restore(m, (int64_t)restore->valuedouble, err);
    if (cJSON_IsNumber(id) && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "delete")))
        return operator_delete(m, (int64_t)id->valuedouble, err);
    if (!cJSON_IsNumber(id) || !cJSON_IsObject(fields))
        return park_change(m, "an operator change needs a record id and fields", err);
    rc = store_record_get(m->e->st, (int64_t)id->valuedouble, &rec, err);
    if (rc <= 0)
        return rc == 0 ? park_change(m, "an operator change names no existing record", err) : -1;
    if (rec.is_deleted) {
        (void)snprintf(reason, sizeof(reason), "record %lld is deleted: concord restore %lld first",
                       (long long)rec.id, (long long)rec.id);
        rc = park_change(m, reason, err);
        record_fini(&rec);
        return rc;
    }
    m->sync = engine_sync_of_model(m->e, rec.model);
    model = config_model_find(m->e->cfg, rec.model);
    incoming = cJSON_CreateObject();
    changed = cJSON_CreateArray();
    rc = 0;
    cJSON_ArrayForEach(f, fields)
    {
        const struct config_field *fd = model ? config_model_field(model, f->string) : NULL;
        struct error verr = {0};
        cJSON *v = NULL;

        if (fd == NULL || value_coerce(fd->type, f, &v, &verr) == -1) {
            (void)snprintf(reason, sizeof(reason),
                           "operator change of record %lld: field \"%s\": %s", (long long)rec.id,
                           f->string, fd ? verr.msg : "no such field");
            rc = park_change(m, reason, err) == -1 ? -1 : 2;
            break;
        }
        cJSON_AddItemToObject(incoming, f->string, v);
        cJSON_AddItemToArray(changed, cJSON_CreateString(f->string));
    }
    if (rc == 0) {
        state = cJSON_Parse(rec.state);
        if (state == NULL)
            state = cJSON_CreateObject();
        rc = apply_fields(m, &rec, state, incoming, changed, 0, err);
        if (rc == 0) {
            /* No new version: the record as it is, to every copy that
             * differs (a conflict settled for the record's side). */
            struct engine_change fc = {
                .record_id = rec.id,
                .version = rec.version,
                .model = rec.model,
                .state = state,
                .source_coll = -1,
                .is_rewrite = 1,
            };
            rc = engine_fanout(m->e, &fc, err);
        }
        if (rc != -1)
            rc = store_journal_set_state(m->e->st, m->ch->seq,
                                         rc == 1 ? CHANGE_APPLIED : CHANGE_UNCHANGED, NULL, err);
    }
    cJSON_Delete(incoming);
    cJSON_Delete(changed);
    cJSON_Delete(state);
    record_fini(&rec);
    return rc == -1 ? -1 : 0;
}

/* Whether sync s lets automations set field (syncs.X.automations). */
static int
automation_may_set(const struct config_sync *s, const char *field)
{
    if (s == NULL || !s->automation_fields_given)
        return 1;
    for (size_t i = 0; i < s->automation_field_count; i++) {
        if (strcmp(s->automation_fields[i], field) == 0)
            return 1;
    }
    return 0;
}

/* The fields of fields that sync s lets automations set, as an array of
 * names; the others are named in refused. */
static cJSON *
automation_take(const struct config_sync *s, const cJSON *fields, char *refused, size_t len)
{
    cJSON *take = cJSON_CreateArray();
    const cJSON *f;

    cJSON_ArrayForEach(f, fields)
    {
        if (automation_may_set(s, f->string))
            cJSON_AddItemToArray(take, cJSON_CreateString(f->string));
        else
            append(refused, len, "%s%s", refused[0] ? ", " : "", f->string);
    }
    return take;
}

/* An automation's set or update: the fields of model on each record named.
 * A record of another model is left alone: an update's record: may name
 * any id (an external number that looks like one). */
static int
automation_update(struct merge_ctx *m, const char *model, const cJSON *records, const cJSON *fields,
                  char *outcome, size_t len, int *applied, struct error *err)
{
    const cJSON *id;
    int rc = 0;

    cJSON_ArrayForEach(id, records)
    {
        struct record rec = {0};
        cJSON *state = NULL, *take = NULL;
        char refused[300] = "";
        int found = cJSON_IsNumber(id)
                        ? store_record_get(m->e->st, (int64_t)id->valuedouble, &rec, err)
                        : 0;

        if (found == -1)
            return -1;
        if (found == 0 || rec.is_deleted) {
            append(outcome, len, "%srecord %lld is %s: left alone", outcome[0] ? "; " : "",
                   cJSON_IsNumber(id) ? (long long)id->valuedouble : 0LL,
                   found ? "deleted" : "gone");
            record_fini(&rec);
            continue;
        }
        if (strcmp(rec.model, model) != 0) {
            append(outcome, len, "%srecord %lld is a %s, not a %s: left alone",
                   outcome[0] ? "; " : "", (long long)rec.id, rec.model, model);
            record_fini(&rec);
            continue;
        }
        m->sync = engine_sync_of_model(m->e, rec.model);
        take = automation_take(m->sync, fields, refused, sizeof(refused));
        state = cJSON_Parse(rec.state);
        if (state == NULL)
            state = cJSON_CreateObject();
        rc = apply_fields(m, &rec, state, fields, take, 0, err);
        if (rc != -1) {
            append(outcome, len, "%srecord %lld: %s", outcome[0] ? "; " : "", (long long)rec.id,
                   rc == 1 ? "changed" : "holds these values already");
            if (refused[0] != '\0')
                append(outcome, len, " (sync %s lets no automation set %s)", m->sync->name,
                       refused);
            *applied += rc;
        }
        cJSON_Delete(state);
        cJSON_Delete(take);
        record_fini(&rec);
        if (rc == -1)
            return -1;
    }
    if (outcome[0] == '\0')
        append(outcome, len, "no record to change");
    return 0;
}

/* An automation's create: a new record of model, fanned out to its syncs. */
static int
automation_create(struct merge_ctx *m, const char *model, const cJSON *fields, char *outcome,
                  size_t len, struct error *err)
{
    const struct config_sync *s = engine_sync_of_model(m->e, model);
    char refused[300] = "", *text, *meta;
    cJSON *take = automation_take(s, fields, refused, sizeof(refused)),
          *state = cJSON_CreateObject();
    const cJSON *f;
    int64_t id;
    int rc;

    cJSON_ArrayForEach(f, take)
    {
        cJSON_AddItemToObject(
            state, f->valuestring,
            cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(fields, f->valuestring), 1));
    }
    text = value_canonical_text(state);
    meta = first_times(m, state);
    rc =
        store_record_add_meta(m->e->st, model, text, meta, m->source, m->ch->seq, m->now, &id, err);
    free(meta);
    if (rc == 0) {
        struct engine_change fc = {
            .record_id = id,
            .version = 1,
            .model = model,
            .state = state,
            .state_text = text,
            .source_coll = -1,
            .is_new = 1,
        };
        m->sync = s;
        rc = engine_keys_update(m->e, s, id, model, state, err) == -1 ||
                     engine_fanout(m->e, &fc, err) == -1
                 ? -1
                 : 0;
        append(outcome, len, "created %s record %lld", model, (long long)id);
        if (refused[0] != '\0' && s != NULL)
            append(outcome, len, " (sync %s lets no automation set %s)", s->name, refused);
    }
    free(text);
    cJSON_Delete(take);
    cJSON_Delete(state);
    return rc;
}

/*
 * A change an automation's action journaled (automation.c, from
 * ENGINE_AUTOMATION_SYSTEM): fields set on records (set, update) or a new
 * record (create), made by the source "automation:NAME" and fanned out
 * like any change. A sync's automations list limits the fields; a record
 * deleted meanwhile is left alone. What it did is noted on the action.
 */
static int
process_automation(struct merge_ctx *m, const cJSON *body, struct error *err)
{
    const char *op = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "op"));
    const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "automation"));
    const char *model = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "model"));
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(body, "fields");
    char source[160], outcome[600] = "";
    int rc, applied = 0;

    if (op == NULL || name == NULL || model == NULL || !cJSON_IsObject(fields) ||
        config_model_find(m->e->cfg, model) == NULL)
        return park_change(m,
                           "an automation's change needs op, automation, a model of the "
                           "config and fields",
                           err);
    (void)snprintf(source, sizeof(source), "automation:%s", name);
    m->source = source;
    m->src_at = m->ch->received_at_ms;
    if (engine_automation_begin(m->e, m->ch->seq, err) == -1)
        return -1;
    if (strcmp(op, "create") == 0) {
        rc = automation_create(m, model, fields, outcome, sizeof(outcome), err);
        applied = rc == 0;
    } else {
        rc = automation_update(m, model, cJSON_GetObjectItemCaseSensitive(body, "records"), fields,
                               outcome, sizeof(outcome), &applied, err);
    }
    if (rc == -1) {
        engine_automation_abandon(m->e); /* the caller undoes the change */
        return -1;
    }
    if (engine_automation_end(m->e, 1, outcome, err) == -1)
        return -1;
    return store_journal_set_state(m->e->st, m->ch->seq,
                                   applied > 0 ? CHANGE_APPLIED : CHANGE_UNCHANGED, outcome, err);
}

static int
process_one(struct engine *e, const struct change *ch, int64_t now, struct error *err)
{
    struct merge_ctx m = {.e = e, .ch = ch, .coll = -1, .now = now};
    struct error merr = {0};
    cJSON *body = engine_parsed_take(e, ch->seq, ch->body, ch->body_len);
    int rc;

    if (body == NULL)
        body = cJSON_ParseWithLength(ch->body, ch->body_len);
    if (body == NULL)
        return park_change(&m, "the body is not JSON", err);
    if (strcmp(ch->system, ENGINE_OPERATOR_SYSTEM) == 0) {
        rc = process_operator(&m, body, err);
        cJSON_Delete(body);
        return rc;
    }
    if (strcmp(ch->system, ENGINE_AUTOMATION_SYSTEM) == 0) {
        rc = process_automation(&m, body, err);
        cJSON_Delete(body);
        return rc;
    }
    const cJSON *polled = cJSON_GetObjectItemCaseSensitive(body, "@poll");

    /* A polled record names its collection; a webhook is routed. */
    m.coll = cJSON_IsString(polled) ? engine_coll_index(e, polled->valuestring)
                                    : route(e, ch->system, body, &merr);
    if (cJSON_IsString(polled) && m.coll < 0)
        m.coll = -2;
    if (m.coll >= 0) {
        m.source = e->colls[m.coll].cfg->name;
        m.sync = e->colls[m.coll].sync;
    }
    if (m.coll == -1) {
        rc = park_change(&m, merr.msg, err);
    } else if (m.coll == -2) {
        rc = store_journal_set_state(e->st, ch->seq, CHANGE_IGNORED,
                                     "no collection of this system takes the change", err);
    } else {
        const char *rp = e->colls[m.coll].cfg->record_path;

        if (!cJSON_IsString(polled) && rp != NULL)
            engine_stamp_event_time(e->colls[m.coll].cfg, body, value_object_at(body, rp));
        rc = merge_change(&m, body, err);
    }
    log_trace(LOG_TRACE_MERGE,
              &(struct log_ctx){.system = ch->system,
                                .collection = m.coll >= 0 ? e->colls[m.coll].cfg->name : NULL},
              "change %lld from %s (%s): merged%s", (long long)ch->seq, ch->system,
              m.ext_id[0] ? m.ext_id : "no copy id", rc == -1 ? " with a store error" : "");
    cJSON_Delete(body);
    return rc;
}

/*
 * Process one change in a savepoint: a change that fails on something of
 * its own is undone alone and parked in the inbox with the reason, so it
 * can never block the journal behind it. Returns as process_one().
 */
static int
process_isolated(struct engine *e, const struct change *ch, int64_t now, struct error *err)
{
    struct merge_ctx m = {.e = e, .ch = ch, .coll = -1, .now = now};
    struct engine_delivery *born = e->born;
    size_t told = engine_automation_mark(e);
    struct error item = {0};
    char reason[600];
    int rc;

    if (store_savepoint(e->st, err) == -1)
        return -1;
    rc = process_one(e, ch, now, &item);
    if (rc != -1)
        return store_release(e->st, err) == -1 ? -1 : rc;
    engine_born_drop(e, born);       /* its claims are undone with it */
    engine_automation_undo(e, told); /* and its runs' counts and lines */
    if (store_rollback_savepoint(e->st, err) == -1)
        return -1;
    (void)snprintf(reason, sizeof(reason), "concord could not process this change: %s", item.msg);
    return park_change(&m, reason, err);
}

/*
 * Process changes[from..n) in one savepoint, which costs a copy of every
 * page a change touches, so one a batch instead of one a change. Returns
 * as process_one() for the first change that did not return 0, with *done
 * the changes that did; -1 means the savepoint was rolled back (nothing of
 * the batch stands, and *done is 0) and the batch is to be done again one
 * change at a time, or that the store failed (err set).
 */
static int
process_batch(struct engine *e, struct change *changes, int from, int n, int64_t now, int *done,
              int *failed_at, struct error *err)
{
    struct engine_delivery *born = e->born;
    size_t told = engine_automation_mark(e);
    struct error item = {0};
    int rc = 0, i;

    *done = 0;
    *failed_at = -1;
    if (e->held_applied == NULL) {
        e->held_applied = xcalloc(e->coll_count + 1, sizeof(*e->held_applied));
        e->held_echoes = xcalloc(e->coll_count + 1, sizeof(*e->held_echoes));
    }
    if (store_savepoint(e->st, err) == -1)
        return -1;
    e->holding_counts = 1;
    for (i = from; i < n && rc == 0; i++) {
        rc = process_one(e, &changes[i], now, &item);
        if (rc == 0)
            (*done)++;
    }
    if (rc != -1) {
        int released = store_release(e->st, err);

        held_counts_end(e, released == 0);
        return released == -1 ? -1 : rc;
    }
    held_counts_end(e, 0);
    *done = 0;
    engine_born_drop(e, born);       /* the creates it claimed are claimed again in the redo */
    engine_automation_undo(e, told); /* its runs are counted and logged in the redo */
    if (store_rollback_savepoint(e->st, err) == -1)
        return -1;
    /* Its in-memory marks (a log line, the hint that a match is open) may
     * be made twice; what is in the store is made once. */
    *failed_at = i - 1;
    return -1;
}

int
engine_process_journal(struct engine *e, int limit, struct error *err)
{
    struct change *changes = NULL;
    int64_t now = clock_now_ms();
    int n, handled = 0;

    /* A change may journal more (a hint's deletions): they are read too. */
    do {
        int waits = 0, i = 0;

        e->journal_grew = 0;
        n = store_journal_pending(e->st, limit - handled, &changes, err);
        if (n == -1)
            return -1;
        while (i < n && !waits) {
            int done = 0, failed_at = -1, rc;

            rc = process_batch(e, changes, i, n, now, &done, &failed_at, err);
            if (rc == -1 && failed_at < 0) {
                error_wrap(err, "change %lld", (long long)changes[i].seq);
                store_changes_free(changes, n);
                return -1;
            }
            handled += done;
            i += done;
            waits = rc == 1;
            /* A change failed on something of its own: the batch again,
             * each change in its own savepoint, up to the one that failed
             * (parked with the reason). */
            for (; rc == -1 && i <= failed_at; i++) {
                int one = process_isolated(e, &changes[i], now, err);

                if (one == -1) {
                    error_wrap(err, "change %lld", (long long)changes[i].seq);
                    store_changes_free(changes, n);
                    return -1;
                }
                if (one == 1) {
                    waits = 1;
                    break; /* keep the journal's order: the rest waits with it */
                }
                handled++;
            }
        }
        store_changes_free(changes, n);
        changes = NULL;
        if (waits)
            break;
    } while (e->journal_grew && handled < limit);
    return handled;
}
