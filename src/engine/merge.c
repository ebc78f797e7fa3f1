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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "engine/engine_int.h"
#include "map/map.h"
#include "model/value.h"
#include "store/store.h"

/* Everything known about the change being processed. */
struct merge_ctx {
    struct engine *e;
    const struct change *ch;
    int coll;            /* index into e->colls */
    const cJSON *record; /* the system's record, inside body */
    char ext_id[256];
    int64_t now;
    const char *source; /* who made the change: "shop.customers", "operator:alice" */
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

/* The external id at path in rec, as text. Returns 0, or -1 when missing. */
static int
ext_id_of(const cJSON *rec, const char *path, char *out, size_t out_len)
{
    const cJSON *v = value_path_get(rec, path);

    if (cJSON_IsString(v) && v->valuestring[0] != '\0') {
        (void)snprintf(out, out_len, "%s", v->valuestring);
        return strlen(v->valuestring) < out_len ? 0 : -1;
    }
    if (cJSON_IsNumber(v)) {
        (void)snprintf(out, out_len, "%.17g", v->valuedouble);
        return 0;
    }
    return -1;
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

/* Make the new version of an existing record from the changed fields. */
static int
apply_fields(struct merge_ctx *m, int64_t record_id, const cJSON *incoming, const cJSON *changed,
             struct error *err)
{
    struct record rec = {0};
    cJSON *state = NULL, *diff = NULL;
    const cJSON *name;
    char *state_text = NULL, *diff_text = NULL;
    int rc = store_record_get(m->e->st, record_id, &rec, err);

    if (rc <= 0)
        return rc == 0 ? error_set(err, ERROR_INTERNAL, "link to missing record %lld",
                                   (long long)record_id)
                       : -1;
    state = cJSON_Parse(rec.state);
    if (state == NULL)
        state = cJSON_CreateObject();
    diff = cJSON_CreateObject();
    cJSON_ArrayForEach(name, changed)
    {
        const cJSON *nv = cJSON_GetObjectItemCaseSensitive(incoming, name->valuestring);
        cJSON *old = cJSON_GetObjectItemCaseSensitive(state, name->valuestring);
        cJSON *pair;

        if (old != NULL && value_equal(old, nv))
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
    }
    rc = 0;
    if (cJSON_GetArraySize(diff) > 0) {
        struct version v = {
            .record_id = record_id,
            .version = rec.version + 1,
            .source = (char *)(uintptr_t)m->source,
            .journal_seq = m->ch->seq,
            .at_ms = m->now,
        };
        struct engine_change fc = {
            .record_id = record_id,
            .version = v.version,
            .model = rec.model,
            .state = state,
            .source_coll = m->coll,
            .priority = m->ch->is_replay,
        };

        state_text = value_canonical_text(state);
        diff_text = value_canonical_text(diff);
        v.state = state_text;
        v.diff = diff_text;
        if (store_record_update(m->e->st, &v, 0, err) == -1 || engine_fanout(m->e, &fc, err) == -1)
            rc = -1;
        else
            rc = 1;
    }
    free(state_text);
    free(diff_text);
    cJSON_Delete(state);
    cJSON_Delete(diff);
    record_fini(&rec);
    return rc;
}

static char *
names_text(const cJSON *names)
{
    char *text = cJSON_PrintUnformatted(names);

    return text ? text : xstrdup("[]");
}

/* A change to a copy concord already links. */
static int
merge_linked(struct merge_ctx *m, struct link *l, const cJSON *incoming, struct error *err)
{
    struct engine_coll *c = &m->e->colls[m->coll];
    cJSON *base_sys = l->base ? cJSON_Parse(l->base) : NULL;
    cJSON *base_in = NULL, *changed = NULL;
    struct error ignored = {0};
    char *rec_text = value_canonical_text(m->record);
    enum change_state state = CHANGE_UNCHANGED;
    char *note = NULL;
    int rc = -1;

    /* A base that no longer maps (the map changed) counts as empty, and so
     * does every base for a replay: the change is read again through the
     * current map, field by field against the record. */
    if (base_sys != NULL && !m->ch->is_replay &&
        map_apply(c->map_in, base_sys, &base_in, &ignored) == -1)
        base_in = NULL;
    changed = changed_fields(incoming, base_in);
    /* The copy holds this state now, whatever we make of it. */
    if (store_link_set(m->e->st, l->id, NULL, rec_text, m->now, err) == -1)
        goto out;
    if (cJSON_GetArraySize(changed) == 0) {
        note = xstrdup("equal to the base: an echo or a repeat");
    } else if (!engine_is_origin(m->e, c->cfg->model, c->cfg->system->name)) {
        char *names = names_text(changed);

        state = CHANGE_REFUSED;
        note = xasprintf("%s may not change %s: it is not an origin of %s", c->cfg->system->name,
                         names, c->cfg->model);
        log_warn(&(struct log_ctx){.system = m->ch->system,
                                   .collection = c->cfg->name,
                                   .record_id = l->record_id},
                 "change refused: %s", note);
        free(names);
    } else {
        int applied = apply_fields(m, l->record_id, incoming, changed, err);

        if (applied == -1)
            goto out;
        state = applied ? CHANGE_APPLIED : CHANGE_UNCHANGED;
        if (!applied)
            note = xstrdup("the record holds these values already");
    }
    rc = store_journal_set_state(m->e->st, m->ch->seq, state, note, err);
out:
    free(note);
    free(rec_text);
    cJSON_Delete(base_sys);
    cJSON_Delete(base_in);
    cJSON_Delete(changed);
    return rc;
}

/* A copy concord has not seen: a new record, when its system may make one. */
static int
merge_new(struct merge_ctx *m, const cJSON *incoming, struct error *err)
{
    struct engine_coll *c = &m->e->colls[m->coll];
    char *state_text = NULL, *rec_text = NULL, *note = NULL;
    int64_t record_id, link_id;
    int rc = -1;

    if (!engine_is_origin(m->e, c->cfg->model, c->cfg->system->name)) {
        note = xasprintf("%s is not an origin of %s: no record is made from its copy %s",
                         c->cfg->system->name, c->cfg->model, m->ext_id);
        rc = store_journal_set_state(m->e->st, m->ch->seq, CHANGE_REFUSED, note, err);
        free(note);
        return rc;
    }
    state_text = value_canonical_text(incoming);
    rec_text = value_canonical_text(m->record);
    if (store_record_add(m->e->st, c->cfg->model, state_text, c->cfg->name, m->ch->seq, m->now,
                         &record_id, err) == -1 ||
        store_link_add(m->e->st, c->cfg->name, record_id, m->ext_id, rec_text, m->now, &link_id,
                       err) == -1)
        goto out;
    struct engine_change fc = {
        .record_id = record_id,
        .version = 1,
        .model = c->cfg->model,
        .state = incoming,
        .source_coll = m->coll,
        .priority = m->ch->is_replay,
    };
    if (engine_fanout(m->e, &fc, err) == -1 ||
        store_journal_set_state(m->e->st, m->ch->seq, CHANGE_APPLIED, NULL, err) == -1)
        goto out;
    log_debug(&(struct log_ctx){.system = m->ch->system,
                                .collection = c->cfg->name,
                                .record_id = record_id},
              "record created from %s", m->ext_id);
    rc = 0;
out:
    free(state_text);
    free(rec_text);
    return rc;
}

/* The copy was deleted in its system. */
static int
merge_delete(struct merge_ctx *m, struct link *l, int found, struct error *err)
{
    struct engine_coll *c = &m->e->colls[m->coll];
    struct record rec = {0};
    cJSON *state = NULL;
    int rc;

    if (!found)
        return store_journal_set_state(m->e->st, m->ch->seq, CHANGE_IGNORED,
                                       "a delete of a copy concord never linked", err);
    if (!engine_is_origin(m->e, c->cfg->model, c->cfg->system->name))
        return store_journal_set_state(m->e->st, m->ch->seq, CHANGE_REFUSED,
                                       "a delete from a system that is not an origin", err);
    rc = store_record_get(m->e->st, l->record_id, &rec, err);
    if (rc <= 0)
        return rc == 0 ? error_set(err, ERROR_INTERNAL, "link to missing record") : -1;
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
    rc = store_record_update(m->e->st, &v, 1, err) == -1 || engine_fanout(m->e, &fc, err) == -1 ||
                 store_journal_set_state(m->e->st, m->ch->seq, CHANGE_APPLIED, "deleted", err) == -1
             ? -1
             : 0;
    cJSON_Delete(state);
    record_fini(&rec);
    return rc;
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
    int found, is_delete = 0, rc = -1;

    m->record = c->cfg->record_path ? value_path_get(body, c->cfg->record_path) : body;
    if (!cJSON_IsObject(m->record))
        return park_change(m, "the webhook holds no record object where `record` points", err);
    if (ext_id_of(m->record, c->cfg->id_path, m->ext_id, sizeof(m->ext_id)) == -1)
        return park_change(m, "the record has no usable id where `id` points", err);
    if (c->deleted != NULL) {
        is_delete = map_jq_test(c->deleted, body, &merr);
        if (is_delete == -1)
            return park_change(m, merr.msg, err);
    }
    if (store_journal_note_copy(m->e->st, m->ch->seq, c->cfg->name, m->ext_id, err) == -1)
        return -1;
    found = store_link_by_ext(m->e->st, c->cfg->name, m->ext_id, &l, err);
    if (found == -1)
        return -1;
    /* A copy concord does not know, while a create to this collection is in
     * flight, may be that create's echo: read it once the create's answer
     * has told concord the new copy's id, or it would make a second record. */
    if (!found && c->creates_in_flight > 0)
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
    rc = found ? merge_linked(m, &l, incoming, err) : merge_new(m, incoming, err);
out:
    cJSON_Delete(incoming);
    link_fini(&l);
    return rc;
}

/*
 * An operator's correction (concord edit), journaled by the CLI as
 * {"record": N, "fields": {...}, "by": "alice"} from the system "@operator".
 * It makes a new version with the operator as its source, which fans out to
 * every collection, as any change does.
 */
static int
process_operator(struct merge_ctx *m, const cJSON *body, struct error *err)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(body, "record");
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(body, "fields");
    const cJSON *by = cJSON_GetObjectItemCaseSensitive(body, "by");
    struct record rec = {0};
    const struct config_model *model;
    cJSON *incoming = NULL, *changed = NULL;
    const cJSON *f;
    char source[160], reason[600];
    int rc;

    if (!cJSON_IsNumber(id) || !cJSON_IsObject(fields))
        return park_change(m, "an operator change needs a record id and fields", err);
    rc = store_record_get(m->e->st, (int64_t)id->valuedouble, &rec, err);
    if (rc <= 0)
        return rc == 0 ? park_change(m, "an operator change names no existing record", err) : -1;
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
        (void)snprintf(source, sizeof(source), "operator:%s",
                       cJSON_IsString(by) ? by->valuestring : "unknown");
        m->source = source;
        rc = apply_fields(m, rec.id, incoming, changed, err);
        if (rc != -1)
            rc = store_journal_set_state(m->e->st, m->ch->seq,
                                         rc == 1 ? CHANGE_APPLIED : CHANGE_UNCHANGED, NULL, err);
    }
    cJSON_Delete(incoming);
    cJSON_Delete(changed);
    record_fini(&rec);
    return rc == -1 ? -1 : 0;
}

static int
process_one(struct engine *e, const struct change *ch, int64_t now, struct error *err)
{
    struct merge_ctx m = {.e = e, .ch = ch, .coll = -1, .now = now};
    struct error merr = {0};
    cJSON *body = cJSON_ParseWithLength(ch->body, ch->body_len);
    int rc;

    if (body == NULL)
        return park_change(&m, "the body is not JSON", err);
    if (strcmp(ch->system, ENGINE_OPERATOR_SYSTEM) == 0) {
        rc = process_operator(&m, body, err);
        cJSON_Delete(body);
        return rc;
    }
    m.coll = route(e, ch->system, body, &merr);
    if (m.coll >= 0)
        m.source = e->colls[m.coll].cfg->name;
    if (m.coll == -1) {
        rc = park_change(&m, merr.msg, err);
    } else if (m.coll == -2) {
        rc = store_journal_set_state(e->st, ch->seq, CHANGE_IGNORED,
                                     "no collection of this system takes the change", err);
    } else {
        rc = merge_change(&m, body, err);
    }
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
    struct error item = {0};
    char reason[600];
    int rc;

    if (store_savepoint(e->st, err) == -1)
        return -1;
    rc = process_one(e, ch, now, &item);
    if (rc != -1)
        return store_release(e->st, err) == -1 ? -1 : rc;
    if (store_rollback_savepoint(e->st, err) == -1)
        return -1;
    (void)snprintf(reason, sizeof(reason), "concord could not process this change: %s", item.msg);
    return park_change(&m, reason, err);
}

int
engine_process_journal(struct engine *e, int limit, struct error *err)
{
    struct change *changes = NULL;
    int64_t now = clock_now_ms();
    int n = store_journal_pending(e->st, limit, &changes, err);
    int handled = 0;

    if (n == -1)
        return -1;
    for (int i = 0; i < n; i++) {
        int rc = process_isolated(e, &changes[i], now, err);

        if (rc == -1) {
            error_wrap(err, "change %lld", (long long)changes[i].seq);
            store_changes_free(changes, n);
            return -1;
        }
        if (rc == 1)
            break; /* keep the journal's order: the rest waits with it */
        handled++;
    }
    store_changes_free(changes, n);
    return handled;
}
