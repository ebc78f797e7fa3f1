/* SPDX-License-Identifier: MIT */

/*
 * concord explain RECORD: each field's current value, and what set it: the
 * source (a collection, an operator), the change and the version, the rule
 * that let it through (an origin, an owner, a settled conflict, a person),
 * the map entry that read it, and when.
 */

#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include "model/model.h"
#include "model/value.h"
#include "store/store.h"

/* The sync of a model (the first), or NULL. */
static const struct config_sync *
sync_of(const struct config *cfg, const char *model)
{
    for (size_t i = 0; i < cfg->sync_count; i++) {
        if (strcmp(cfg->syncs[i].model, model) == 0)
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

/* The rule that let source set field. */
static void
rule_of(const struct config *cfg, const struct config_sync *s, const char *source,
        const char *field, const struct inbox_entry *conflict, const cJSON *detail, char *out,
        size_t out_len)
{
    const struct config_collection *cc = source ? config_collection_find(cfg, source) : NULL;
    const cJSON *policy = cJSON_GetObjectItemCaseSensitive(detail, "policy");
    const cJSON *winner = cJSON_GetObjectItemCaseSensitive(detail, "winner");

    if (conflict != NULL && strcmp(conflict->state, "settled") == 0) {
        (void)snprintf(out, out_len,
                       "the last conflict on it (inbox %lld) was settled by "
                       "policy %s, for %s",
                       (long long)conflict->id, cJSON_IsString(policy) ? policy->valuestring : "?",
                       cJSON_IsString(winner) ? winner->valuestring : "?");
        return;
    }
    if (conflict != NULL) {
        (void)snprintf(out, out_len, "the last conflict on it (inbox %lld) was resolved by %s",
                       (long long)conflict->id, conflict->state);
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

/* The index of the last closed conflict of a record's field in list, or -1. */
static int
settled_for(const struct inbox_entry *list, int n, int64_t record_id, const char *field)
{
    int found = -1;

    for (int i = 0; i < n; i++) {
        if (list[i].record_id == record_id && list[i].field != NULL &&
            strcmp(list[i].field, field) == 0 && strcmp(list[i].state, "open") != 0)
            found = i;
    }
    return found;
}

static int
run(const struct cli_args *args)
{
    struct config *cfg = NULL;
    struct store *st = NULL;
    struct error err = {0};
    struct record rec = {0};
    struct version *versions = NULL;
    struct inbox_entry *conflicts = NULL;
    cJSON *state = NULL, *meta = NULL, *out = NULL, **details = NULL;
    char *meta_text = NULL;
    int64_t id;
    int nv = 0, nc = 0, rc = 1, found;

    if (cli_one_id(args, &cli_cmd_explain, "a record", &id) == -1)
        return 2;
    if (cli_open(args, &cfg, &st) == -1)
        return 1;
    found = store_record_get(st, id, &rec, &err);
    if (found != 1) {
        fprintf(stderr, "concord: %s\n", found == -1 ? err.msg : "no such record");
        goto out;
    }
    if ((nv = store_history(st, id, &versions, &err)) == -1 ||
        store_record_meta(st, id, &meta_text, &err) == -1 ||
        (nc = store_inbox_by_kind(st, INBOX_CONFLICT, 0, &conflicts, &err)) == -1) {
        fprintf(stderr, "concord: %s\n", err.msg);
        goto out;
    }
    details = xcalloc((size_t)nc + 1, sizeof(*details));
    for (int i = 0; i < nc; i++)
        details[i] = conflicts[i].detail ? cJSON_Parse(conflicts[i].detail) : NULL;
    state = cJSON_Parse(rec.state);
    meta = meta_text ? cJSON_Parse(meta_text) : NULL;
    out = cJSON_CreateObject();
    cJSON_AddNumberToObject(out, "record", (double)rec.id);
    cJSON_AddStringToObject(out, "model", rec.model);
    cJSON_AddNumberToObject(out, "version", (double)rec.version);
    cJSON_AddBoolToObject(out, "deleted", rec.is_deleted);
    cJSON *fields = cJSON_AddArrayToObject(out, "fields");
    const cJSON *f;
    cJSON_ArrayForEach(f, state)
    {
        const cJSON *when = cJSON_GetObjectItemCaseSensitive(meta, f->string);
        const cJSON *src = cJSON_GetArrayItem(when, 1), *at = cJSON_GetArrayItem(when, 0);
        const char *source = cJSON_IsString(src) ? src->valuestring : NULL;
        const struct version *setter = NULL;
        char rule[300], mapping[400], ts[32];
        cJSON *o = cJSON_CreateObject();

        /* The last version whose diff names the field (or the first). */
        for (int i = 0; i < nv; i++) {
            cJSON *diff = versions[i].diff ? cJSON_Parse(versions[i].diff) : NULL;

            if (i == 0 || cJSON_GetObjectItemCaseSensitive(diff, f->string) != NULL)
                setter = &versions[i];
            cJSON_Delete(diff);
        }
        if (source == NULL && setter != NULL)
            source = setter->source;
        int ci = settled_for(conflicts, nc, rec.id, f->string);

        rule_of(cfg, sync_of(cfg, rec.model), source, f->string, ci >= 0 ? &conflicts[ci] : NULL,
                ci >= 0 ? details[ci] : NULL, rule, sizeof(rule));
        mapping_of(cfg, source, f->string, mapping, sizeof(mapping));
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
                                clock_format_ms(cJSON_IsNumber(at)
                                                    ? (int64_t)at->valuedouble
                                                    : (setter ? setter->at_ms : rec.updated_at_ms),
                                                ts, sizeof(ts)));
        cJSON_AddItemToArray(fields, o);
    }
    if (args->json) {
        cli_print_json(out);
        out = NULL;
    } else {
        const cJSON *o;

        printf("record %lld (%s), version %lld%s\n", (long long)rec.id, rec.model,
               (long long)rec.version, rec.is_deleted ? ", deleted" : "");
        cJSON_ArrayForEach(o, fields)
        {
            char *v = value_canonical_text(cJSON_GetObjectItemCaseSensitive(o, "value"));
            const cJSON *ver = cJSON_GetObjectItemCaseSensitive(o, "version");
            const cJSON *ch = cJSON_GetObjectItemCaseSensitive(o, "change");

            printf("  %s = %s\n      set by %s in v%lld",
                   cJSON_GetObjectItemCaseSensitive(o, "field")->valuestring, v,
                   cJSON_GetObjectItemCaseSensitive(o, "source")->valuestring,
                   cJSON_IsNumber(ver) ? (long long)ver->valuedouble : 0LL);
            if (cJSON_IsNumber(ch))
                printf(" (change %lld)", (long long)ch->valuedouble);
            printf(" at %s\n      rule: %s\n      mapping: %s\n",
                   cJSON_GetObjectItemCaseSensitive(o, "at")->valuestring,
                   cJSON_GetObjectItemCaseSensitive(o, "rule")->valuestring,
                   cJSON_GetObjectItemCaseSensitive(o, "mapping")->valuestring);
            free(v);
        }
    }
    rc = 0;
out:
    for (int i = 0; details != NULL && i < nc; i++)
        cJSON_Delete(details[i]);
    free(details);
    cJSON_Delete(out);
    cJSON_Delete(state);
    cJSON_Delete(meta);
    free(meta_text);
    if (nc > 0)
        store_inbox_free(conflicts, nc);
    if (nv > 0)
        store_versions_free(versions, nv);
    record_fini(&rec);
    cli_close(cfg, st);
    return rc;
}

const struct cli_command cli_cmd_explain = {
    .name = "explain",
    .usage = "concord explain [-c FILE] [--json] RECORD",
    .summary = "each field's value, and which system, change, rule and mapping set it, and when",
    .run = run,
};
