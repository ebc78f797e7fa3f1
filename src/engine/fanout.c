/* SPDX-License-Identifier: MIT */

/*
 * Fan-out (DESIGN.md, step 5): after a record changed, every other
 * collection bound to its model by a sync gets the state its map_out gives.
 * Where that differs from the link's base on the fields the map writes, a
 * job is queued; store_job_put() coalesces it with one that has not
 * started. A job delivers the record's state as it is when the job is
 * claimed, so a coalesced job always writes the newest state. The create
 * for a new record's new copy may be claimed as it is queued instead
 * (deliver.c, "jobs born claimed").
 */

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "engine/engine_int.h"
#include "engine/shape.h"
#include "map/map.h"
#include "store/store.h"

static int
sync_has(const struct config_sync *s, const struct config_collection *cc)
{
    for (size_t i = 0; i < s->collection_count; i++) {
        if (s->collections[i] == cc)
            return 1;
    }
    return 0;
}

static int
park_mapping(struct engine *e, const struct engine_coll *c, int64_t record_id, const char *reason,
             struct error *err)
{
    struct inbox_entry entry = {
        .kind = INBOX_MAPPING,
        .system = c->cfg->system->name,
        .collection = c->cfg->name,
        .record_id = record_id,
        .reason = (char *)(uintptr_t)reason,
        .created_at_ms = clock_now_ms(),
    };
    int64_t id;

    log_warn(&(struct log_ctx){.system = c->cfg->system->name,
                               .collection = c->cfg->name,
                               .record_id = record_id},
             "record not mapped out: %s", reason);
    return store_inbox_add(e->st, &entry, &id, err);
}

/*
 * Whether the record belongs in collection c: it is live and passes the
 * sync's filter for c. A filter that fails to run parks the record for c.
 * Returns 1, 0, or 2 when it was parked, -1.
 */
static int
belongs(struct engine *e, const struct engine_coll *c, const struct engine_change *ch,
        struct error *err)
{
    struct error merr = {0};
    int rc;

    if (ch->is_deleted)
        return 0;
    if (c->filter == NULL)
        return 1;
    rc = map_jq_test(c->filter, ch->state, &merr);
    if (rc == -1)
        return park_mapping(e, c, ch->record_id, merr.msg, err) == -1 ? -1 : 2;
    return rc;
}

/* Queue what one target collection needs. */
static int
fanout_one(struct engine *e, int ci, const struct engine_change *ch, struct error *err)
{
    struct engine_coll *c = &e->colls[ci];
    struct link l = {0};
    int64_t record_id = ch->record_id;
    const cJSON *state = ch->state;
    struct job j = {
        .record_id = record_id,
        .version = ch->version,
        .system = (char *)(uintptr_t)c->cfg->system->name,
        .collection = (char *)(uintptr_t)c->cfg->name,
        .op = JOB_OP_UPSERT,
        .next_at_ms = clock_now_ms(),
        .priority = ch->priority,
    };
    int in = belongs(e, c, ch, err);
    int found;
    int rc = -1;

    if (in == -1 || in == 2)
        return in == -1 ? -1 : 0;
    /* A record made just now has no link to look for; one that is there
     * all the same (a stray of an id used before) is taken as below. */
    if (in && ch->is_new) {
        struct engine_born *born = NULL;

        /* Its create may be claimed at once (deliver.c): the write it
         * sends is noted with the link. */
        found = engine_born_plan(e, ci, ch, &born, err);
        if (found == 1)
            found = store_link_add_noted(e->st, c->cfg->name, record_id, j.next_at_ms,
                                         engine_born_noted(born), &j.link_id, err);
        else if (found == 0)
            found = store_link_add_unless(e->st, c->cfg->name, record_id, j.next_at_ms, &j.link_id,
                                          err);
        if (found == 1 && (born != NULL ? engine_born_claim(e, ci, born, &j, err)
                                        : store_job_add(e->st, &j, err)) == -1)
            found = -1;
        engine_born_free(born);
        if (found == 1)
            e->fanout_queued++;
        if (found != 0)
            return found == -1 ? -1 : 0;
    }
    found = store_link_by_record(e->st, c->cfg->name, record_id, &l, err);
    if (found == -1)
        return -1;
    /* A delete or archive of the copy that failed and waits in the inbox is
     * moot once the record belongs here again: a retry would remove the
     * copy of a live record. */
    if (in && found &&
        store_link_removal_moot(e->st, l.id, j.next_at_ms,
                                "moot: the record is back (restored, or a newer version)",
                                err) == -1) {
        link_fini(&l);
        return -1;
    }
    if (!in) {
        /* Deleted, or filtered out: the collection's delete mode says what
         * becomes of a copy; where there is none, nothing is written. */
        int has_copy = found && l.ext_id != NULL;

        link_fini(&l);
        if (!found || c->cfg->on_delete == CONFIG_DELETE_IGNORE)
            return 0;
        if (!has_copy && c->cfg->on_delete == CONFIG_DELETE_ARCHIVE)
            return 0;
        j.op = c->cfg->on_delete == CONFIG_DELETE_ARCHIVE ? JOB_OP_ARCHIVE : JOB_OP_DELETE;
        j.link_id = l.id;
        return store_job_put(e->st, &j, err) == -1 ? -1 : 0;
    }
    if (found && l.ext_id != NULL && l.base != NULL) {
        struct error merr = {0};
        struct engine_ref_gap gap = {0};
        cJSON *desired = NULL, *base = cJSON_Parse(l.base), *out = cJSON_Duplicate(state, 1);
        int differs, refs = engine_refs_out(e, ci, out, &gap, err);

        if (refs == -1) {
            cJSON_Delete(out);
            cJSON_Delete(base);
            link_fini(&l);
            return -1;
        }
        if (refs == 0) {
            /* A reference without its copy there yet: the job sorts it out. */
            cJSON_Delete(out);
            cJSON_Delete(base);
            goto queue;
        }
        rc = map_apply(c->map_out, out, &desired, &merr);
        cJSON_Delete(out);
        if (rc == -1) {
            cJSON_Delete(base);
            link_fini(&l);
            return park_mapping(e, c, record_id, merr.msg, err);
        }
        if (ch->contested && engine_keep_contested(e, c, &l, record_id, desired, err) == -1) {
            cJSON_Delete(desired);
            cJSON_Delete(base);
            link_fini(&l);
            return -1;
        }
        differs = c->cfg->shape != CONFIG_SHAPE_NONE ? shape_differs(c, desired, base)
                                                     : map_out_differs(c->map_out, desired, base);
        cJSON_Delete(desired);
        cJSON_Delete(base);
        /* A delete or archive still queued for the copy (the record was
         * deleted, or left the filter, and is back: a restore) would undo
         * the state it holds: the upsert takes its place. */
        if (!differs)
            differs = store_link_removing(e->st, l.id, err);
        if (differs <= 0) {
            link_fini(&l);
            return differs; /* the copy holds this state already, or -1 */
        }
    }
queue:
    rc = -1;
    if (!found &&
        store_link_add(e->st, c->cfg->name, record_id, NULL, NULL, j.next_at_ms, &l.id, err) == -1)
        goto out;
    j.link_id = l.id;
    /* A link made just now has no job to fold this one into. */
    if ((found ? store_job_put(e->st, &j, err) : store_job_add(e->st, &j, err)) == -1)
        goto out;
    e->fanout_queued++;
    rc = 0;
out:
    link_fini(&l);
    return rc;
}

int
engine_fanout_to(struct engine *e, int ci, const struct engine_change *ch, struct error *err)
{
    if (e->colls[ci].map_out == NULL)
        return 0;
    if (fanout_one(e, ci, ch, err) == -1)
        return error_wrap(err, "fan out to %s", e->colls[ci].cfg->name);
    return 0;
}

int
engine_fanout_record(struct engine *e, int ci, const struct record *rec, struct error *err)
{
    cJSON *state = cJSON_Parse(rec->state);
    struct engine_change fc = {
        .record_id = rec->id,
        .version = rec->version,
        .model = rec->model,
        .state = state,
        .source_coll = -1,
    };
    int rc = engine_fanout_to(e, ci, &fc, err);

    cJSON_Delete(state);
    return rc;
}

int
engine_fanout(struct engine *e, const struct engine_change *ch, struct error *err)
{
    int source_coll = ch->source_coll;
    const char *model = ch->model;
    const struct config_collection *src = source_coll >= 0 ? e->colls[source_coll].cfg : NULL;

    /* Step 7 rides on step 5: a new version is seen by the automations in
     * the same transaction, and only a new one: each version starts its
     * runs once. */
    if (!ch->is_rewrite && engine_automation_seen(e, ch, err) == -1)
        return -1;
    for (size_t s = 0; s < e->cfg->sync_count; s++) {
        const struct config_sync *sync = &e->cfg->syncs[s];

        if (strcmp(sync->model, model) != 0 || (src != NULL && !sync_has(sync, src)))
            continue;
        for (size_t i = 0; i < sync->collection_count; i++) {
            int ci = engine_coll_index(e, sync->collections[i]->name);

            if (ci < 0 || (ci == source_coll && !ch->to_source))
                continue;
            if (engine_fanout_to(e, ci, ch, err) == -1)
                return -1;
        }
    }
    return 0;
}
