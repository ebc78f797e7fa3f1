/* SPDX-License-Identifier: MIT */

/*
 * The rules of a sync that merge.c applies (docs/two-way.md): who may
 * change which field, how a conflict is settled, how a record is found by
 * its natural keys on first contact, and when deletes are held back.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "core/xmalloc.h"
#include "engine/engine_int.h"
#include "model/normalize.h"
#include "model/value.h"
#include "store/store.h"

const struct config_sync *
engine_sync_of(const struct engine *e, int ci)
{
    return ci >= 0 && (size_t)ci < e->coll_count ? e->colls[ci].sync : NULL;
}

const struct config_sync *
engine_sync_of_model(const struct engine *e, const char *model)
{
    for (size_t i = 0; i < e->cfg->sync_count; i++) {
        if (strcmp(e->cfg->syncs[i].model, model) == 0)
            return &e->cfg->syncs[i];
    }
    return NULL;
}

static const struct config_field_owner *
owner_of(const struct config_sync *s, const char *field)
{
    for (size_t i = 0; i < s->owner_count; i++) {
        if (strcmp(s->owners[i].field, field) == 0)
            return &s->owners[i];
    }
    return NULL;
}

static int
index_of(char *const *names, size_t count, const char *name)
{
    for (size_t i = 0; name != NULL && i < count; i++) {
        if (strcmp(names[i], name) == 0)
            return (int)i;
    }
    return -1;
}

/* How strongly system holds field: 0 strongest, -1 not at all. */
static int
rank(const struct config_sync *s, const char *system, const char *field)
{
    const struct config_field_owner *o = owner_of(s, field);

    return o ? index_of(o->systems, o->system_count, system)
             : index_of(s->origins, s->origin_count, system);
}

int
engine_may_change(const struct config_sync *s, const char *system, const char *field)
{
    return s != NULL && rank(s, system, field) >= 0;
}

int
engine_may_write(const struct config_sync *s, const char *system)
{
    if (s == NULL)
        return 0;
    if (index_of(s->origins, s->origin_count, system) >= 0)
        return 1;
    for (size_t i = 0; i < s->owner_count; i++) {
        if (index_of(s->owners[i].systems, s->owners[i].system_count, system) >= 0)
            return 1;
    }
    return 0;
}

enum engine_verdict
engine_settle(const struct config_sync *s, const char *field, const struct engine_side *ours,
              const struct engine_side *theirs, const char **why)
{
    switch (s->conflict) {
    case CONFIG_CONFLICT_OWNER: {
        int r_ours = ours->system ? rank(s, ours->system, field) : -1;
        int r_theirs = theirs->system ? rank(s, theirs->system, field) : -1;

        *why = "owner";
        if (r_theirs >= 0 && (r_ours < 0 || r_theirs < r_ours))
            return ENGINE_TAKE_THEIRS;
        if (r_ours >= 0 && (r_theirs < 0 || r_ours < r_theirs))
            return ENGINE_KEEP_OURS;
        break;
    }
    case CONFIG_CONFLICT_NEWEST:
        *why = "newest";
        if (theirs->at_ms > ours->at_ms + s->skew_ms)
            return ENGINE_TAKE_THEIRS;
        if (ours->at_ms > theirs->at_ms + s->skew_ms)
            return ENGINE_KEEP_OURS;
        *why = "newest, but within the clock-skew tolerance";
        break;
    case CONFIG_CONFLICT_PREFER:
        *why = "prefer";
        if (theirs->system != NULL && strcmp(theirs->system, s->prefer) == 0)
            return ENGINE_TAKE_THEIRS;
        if (ours->system != NULL && strcmp(ours->system, s->prefer) == 0)
            return ENGINE_KEEP_OURS;
        *why = "prefer, but neither side is the preferred system";
        break;
    case CONFIG_CONFLICT_MANUAL:
        *why = "manual";
        break;
    }
    if (s->conflict == CONFIG_CONFLICT_OWNER)
        *why = "owner, but neither side owns the field more than the other";
    return ENGINE_MANUAL;
}

static enum normalize_kind
kind_of(enum config_normalize n)
{
    switch (n) {
    case CONFIG_NORMALIZE_TEXT:
        return NORMALIZE_TEXT;
    case CONFIG_NORMALIZE_EMAIL:
        return NORMALIZE_EMAIL;
    case CONFIG_NORMALIZE_PHONE:
        return NORMALIZE_PHONE;
    case CONFIG_NORMALIZE_VAT:
        return NORMALIZE_VAT;
    case CONFIG_NORMALIZE_EXACT:
        break;
    }
    return NORMALIZE_EXACT;
}

static char *
key_of(const struct config_match_key *k, const cJSON *state)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(state, k->field);

    return v ? normalize_key(kind_of(k->normalize), v, k->country) : NULL;
}

int
engine_keys_update(struct engine *e, const struct config_sync *s, int64_t record_id,
                   const char *model, const cJSON *state, struct error *err)
{
    const char *names[16];
    char *values[16];
    size_t n = 0;
    int rc;

    if (s == NULL || s->match_count == 0)
        return 0;
    for (size_t i = 0; i < s->match_count && n < 16; i++, n++) {
        names[n] = s->match[i].field;
        values[n] = key_of(&s->match[i], state);
    }
    rc = store_keys_set(e->st, record_id, model, names, (const char *const *)values, n, err);
    for (size_t i = 0; i < n; i++)
        free(values[i]);
    return rc;
}

int
engine_keys_match(struct engine *e, const struct config_sync *s, const char *model,
                  const cJSON *state, int64_t **out, struct error *err)
{
    int64_t *all = NULL;
    size_t count = 0;

    *out = NULL;
    for (size_t i = 0; s != NULL && i < s->match_count; i++) {
        char *key = key_of(&s->match[i], state);
        int64_t *ids = NULL;
        int n;

        if (key == NULL)
            continue;
        n = store_keys_find(e->st, model, s->match[i].field, key, &ids, err);
        free(key);
        if (n == -1) {
            free(all);
            return -1;
        }
        for (int j = 0; j < n && count < 16; j++) {
            size_t k = 0;

            while (k < count && all[k] != ids[j])
                k++;
            if (k == count) {
                all = xreallocarray(all, count + 1, sizeof(*all));
                all[count++] = ids[j];
            }
        }
        free(ids);
    }
    *out = all;
    return (int)count;
}

int
engine_guard_delete(struct engine *e, int sys_index, int64_t now_ms, struct error *err)
{
    struct engine_sys *sys = &e->systems[sys_index];
    const struct config_system *cfg = sys->cfg;
    int64_t held = 0, linked = 0, count;
    size_t keep = 0;

    if (!cfg->delete_guard_enabled)
        return 0;
    /* The deletes let through before this engine began (a restart, a
     * reload) count too, or a mass delete split by one would pass. */
    if (!sys->deletes_read) {
        int64_t *times = NULL;
        int n = store_deletes_since(e->st, cfg->name, now_ms - cfg->delete_guard_window_ms, &times,
                                    err);

        if (n == -1)
            return -1;
        free(sys->delete_times);
        sys->delete_times = times;
        sys->delete_count = sys->delete_cap = (size_t)n;
        sys->deletes_read = 1;
    }
    for (size_t i = 0; i < sys->delete_count; i++) {
        if (sys->delete_times[i] > now_ms - cfg->delete_guard_window_ms)
            sys->delete_times[keep++] = sys->delete_times[i];
    }
    sys->delete_count = keep;
    /* Once tripped, the guard holds every delete of the system until a
     * person has looked at what it held. */
    if (store_held_count(e->st, cfg->name, &held, err) == -1)
        return -1;
    if (held > 0)
        return 1;
    for (size_t i = 0; i < e->coll_count; i++) {
        int64_t n = 0;

        if (e->colls[i].sys_index != sys_index)
            continue;
        if (store_linked_count(e->st, e->colls[i].cfg->name, &n, err) == -1)
            return -1;
        linked += n;
    }
    count = (int64_t)sys->delete_count + 1;
    if (count > cfg->delete_guard_max_count ||
        (count >= cfg->delete_guard_min_count &&
         (double)count > cfg->delete_guard_max_share * (double)linked))
        return 1;
    if (sys->delete_count == sys->delete_cap) {
        sys->delete_cap = sys->delete_cap ? sys->delete_cap * 2 : 16;
        sys->delete_times = xreallocarray(sys->delete_times, sys->delete_cap, sizeof(int64_t));
    }
    sys->delete_times[sys->delete_count++] = now_ms;
    return 0;
}

/* The collection of system sys that holds model, or -1. */
static int
coll_of(const struct engine *e, const struct config_system *sys, const char *model)
{
    for (size_t i = 0; i < e->coll_count; i++) {
        if (e->colls[i].cfg->system == sys && strcmp(e->colls[i].cfg->model, model) == 0)
            return (int)i;
    }
    return -1;
}

int
engine_refs_in(struct engine *e, int ci, cJSON *state, char *why, size_t why_len, struct error *err)
{
    const struct config_collection *cc = e->colls[ci].cfg;
    const struct config_model *model = config_model_find(e->cfg, cc->model);

    for (size_t i = 0; model != NULL && i < model->field_count; i++) {
        const struct config_field *fd = &model->fields[i];
        cJSON *v = cJSON_GetObjectItemCaseSensitive(state, fd->name);
        struct link l = {0};
        int rc, cr;
        char id[32];

        if (fd->type != CONFIG_TYPE_REF || !cJSON_IsString(v))
            continue;
        cr = coll_of(e, cc->system, fd->ref_model);
        if (cr < 0) {
            (void)snprintf(why, why_len,
                           "field %s refers to a %s, but no collection of %s holds %s records",
                           fd->name, fd->ref_model, cc->system->name, fd->ref_model);
            return 0;
        }
        rc = store_link_by_ext(e->st, e->colls[cr].cfg->name, v->valuestring, &l, err);
        if (rc == -1)
            return -1;
        if (rc == 0) {
            (void)snprintf(why, why_len,
                           "field %s refers to %.100s in %s, which concord has not linked to a "
                           "record yet: retry this entry once that %s has arrived",
                           fd->name, v->valuestring, e->colls[cr].cfg->name, fd->ref_model);
            return 0;
        }
        (void)snprintf(id, sizeof(id), "%lld", (long long)l.record_id);
        link_fini(&l);
        cJSON_ReplaceItemInObjectCaseSensitive(state, fd->name, cJSON_CreateString(id));
    }
    return 1;
}

int
engine_refs_out(struct engine *e, int ci, cJSON *state, struct engine_ref_gap *gap,
                struct error *err)
{
    const struct config_collection *cc = e->colls[ci].cfg;
    const struct config_model *model = config_model_find(e->cfg, cc->model);

    for (size_t i = 0; model != NULL && i < model->field_count; i++) {
        const struct config_field *fd = &model->fields[i];
        cJSON *v = cJSON_GetObjectItemCaseSensitive(state, fd->name);
        struct link l = {0};
        char *end;
        long long rid;
        int rc, cr;

        if (fd->type != CONFIG_TYPE_REF || !cJSON_IsString(v))
            continue;
        rid = strtoll(v->valuestring, &end, 10);
        cr = coll_of(e, cc->system, fd->ref_model);
        gap->field = fd->name;
        gap->record_id = *end == '\0' && rid > 0 ? rid : 0;
        gap->coll = cr;
        if (gap->record_id == 0 || cr < 0)
            return 0;
        rc = store_link_by_record(e->st, e->colls[cr].cfg->name, gap->record_id, &l, err);
        if (rc == -1)
            return -1;
        if (rc == 0 || l.ext_id == NULL) {
            gap->link_id = rc ? l.id : 0;
            link_fini(&l);
            return 0;
        }
        cJSON_ReplaceItemInObjectCaseSensitive(state, fd->name, cJSON_CreateString(l.ext_id));
        link_fini(&l);
    }
    return 1;
}

int
engine_keys_equal(const struct config_sync *s, const cJSON *a, const cJSON *b)
{
    for (size_t i = 0; s != NULL && i < s->match_count; i++) {
        char *ka = key_of(&s->match[i], a), *kb = key_of(&s->match[i], b);
        int eq = ka != NULL && kb != NULL && strcmp(ka, kb) == 0;

        free(ka);
        free(kb);
        if (eq)
            return 1;
    }
    return 0;
}
