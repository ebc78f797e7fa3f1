/* SPDX-License-Identifier: MIT */

/*
 * The commands of the Two-way issue (docs/two-way.md):
 *
 *   concord conflicts [--all]                 conflicts, with both sides and the base
 *   concord resolve ID --take SYSTEM | --value JSON | --record N | --new
 *   concord held                              deletes held by the mass-delete guard
 *   concord approve ID | --system S | --all   let held deletes through
 *   concord restore RECORD                    bring a deleted record back
 *
 * What changes a record is journaled from the operator and done by the
 * daemon's writer, like any change, so it fans out with the usual
 * guarantees. Inbox entries are closed in the same transaction.
 */

#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "engine/engine.h"
#include "model/model.h"
#include "model/value.h"
#include "store/store.h"

/* ---- conflicts ---- */

static cJSON *
entry_json(const struct inbox_entry *e)
{
    cJSON *o = cli_inbox_entry_json(e);
    cJSON *detail = e->detail ? cJSON_Parse(e->detail) : NULL;

    if (e->field != NULL)
        cJSON_AddStringToObject(o, "field", e->field);
    if (detail != NULL)
        cJSON_AddItemToObject(o, "detail", detail);
    return o;
}

static void
print_side(const char *label, const cJSON *side)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(side, "value");
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(side, "source");
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(side, "at");
    char *text = v ? value_canonical_text(v) : NULL;
    char ts[32];

    printf("    %-7s %s  from %s at %s\n", label, text ? text : "null",
           cJSON_IsString(src) ? src->valuestring : "?",
           cli_time(cJSON_IsNumber(at) ? (int64_t)at->valuedouble : 0, ts, sizeof(ts)));
    free(text);
}

static void
print_conflict(const struct inbox_entry *e)
{
    cJSON *d = e->detail ? cJSON_Parse(e->detail) : NULL;
    const cJSON *base = cJSON_GetObjectItemCaseSensitive(d, "base");
    const cJSON *policy = cJSON_GetObjectItemCaseSensitive(d, "policy");
    const cJSON *winner = cJSON_GetObjectItemCaseSensitive(d, "winner");
    char ts[32], *text;

    if (e->field != NULL && strcmp(e->field, "@match") == 0) {
        printf("#%lld  %s  match  %s\n    %s\n", (long long)e->id, e->state,
               e->collection ? e->collection : "?", e->reason);
        cJSON_Delete(d);
        return;
    }
    printf("#%lld  %s  record %lld  field %s  (%s)\n", (long long)e->id, e->state,
           (long long)e->record_id, e->field ? e->field : "?",
           cli_time(e->created_at_ms, ts, sizeof(ts)));
    text = base ? value_canonical_text(base) : NULL;
    printf("    %-7s %s\n", "base", text ? text : "null");
    free(text);
    print_side("ours", cJSON_GetObjectItemCaseSensitive(d, "ours"));
    print_side("theirs", cJSON_GetObjectItemCaseSensitive(d, "theirs"));
    if (strcmp(e->state, "open") != 0)
        printf("    settled: %s (winner: %s)\n",
               cJSON_IsString(policy) ? policy->valuestring : "by a person",
               cJSON_IsString(winner) ? winner->valuestring : "?");
    cJSON_Delete(d);
}

static int
list_kind(const struct cli_args *args, enum inbox_kind kind, int open_only)
{
    struct config *cfg = NULL;
    struct store *st = NULL;
    struct error err = {0};
    struct inbox_entry *list = NULL;
    int n;

    if (cli_open(args, &cfg, &st) == -1)
        return 1;
    n = store_inbox_by_kind(st, kind, open_only, &list, &err);
    if (n == -1) {
        fprintf(stderr, "concord: %s\n", err.msg);
        cli_close(cfg, st);
        return 1;
    }
    if (args->json) {
        cJSON *arr = cJSON_CreateArray();

        for (int i = 0; i < n; i++)
            cJSON_AddItemToArray(arr, entry_json(&list[i]));
        cli_print_json(arr);
    } else if (n == 0) {
        printf(kind == INBOX_CONFLICT ? "no %sconflicts\n" : "no %sheld deletes\n",
               open_only ? "open " : "");
    } else {
        for (int i = 0; i < n; i++) {
            if (kind == INBOX_CONFLICT)
                print_conflict(&list[i]);
            else
                printf("#%lld  %s  %s  record %lld\n    %s\n", (long long)list[i].id, list[i].state,
                       list[i].collection ? list[i].collection : "?", (long long)list[i].record_id,
                       list[i].reason);
        }
    }
    store_inbox_free(list, n);
    cli_close(cfg, st);
    return 0;
}

static int
run_conflicts(const struct cli_args *args)
{
    if (args->argc != 0) {
        fprintf(stderr, "usage: %s\n", cli_cmd_conflicts.usage);
        return 2;
    }
    return list_kind(args, INBOX_CONFLICT, !args->all);
}

static int
run_held(const struct cli_args *args)
{
    if (args->argc != 0) {
        fprintf(stderr, "usage: %s\n", cli_cmd_held.usage);
        return 2;
    }
    return list_kind(args, INBOX_HELD, !args->all);
}

/* ---- resolve ---- */

/* The value a side of the conflict proposes, when SYSTEM names it. */
static const cJSON *
side_of(const cJSON *detail, const char *system)
{
    static const char *const sides[] = {"ours", "theirs"};

    for (size_t i = 0; i < 2; i++) {
        const cJSON *side = cJSON_GetObjectItemCaseSensitive(detail, sides[i]);
        const cJSON *sys = cJSON_GetObjectItemCaseSensitive(side, "system");
        const cJSON *src = cJSON_GetObjectItemCaseSensitive(side, "source");

        if ((cJSON_IsString(sys) && strcmp(sys->valuestring, system) == 0) ||
            (cJSON_IsString(src) && strcmp(src->valuestring, system) == 0))
            return cJSON_GetObjectItemCaseSensitive(side, "value");
    }
    return NULL;
}

/* Link an ambiguous match's copy to record_id (0: a new, empty record), and
 * process its change again through that link. */
static int
resolve_match(struct config *cfg, struct store *st, const struct inbox_entry *e, int64_t record_id)
{
    const struct config_collection *cc =
        e->collection ? config_collection_find(cfg, e->collection) : NULL;
    cJSON *d = e->detail ? cJSON_Parse(e->detail) : NULL;
    const cJSON *ext = cJSON_GetObjectItemCaseSensitive(d, "ext_id");
    struct error err = {0};
    struct record rec = {0};
    struct link l = {0};
    int64_t now = clock_now_ms(), link_id;
    int rc = -1, has;
    char note[160];

    if (cc == NULL || !cJSON_IsString(ext)) {
        fprintf(stderr, "concord: entry %lld does not name its copy\n", (long long)e->id);
        goto out;
    }
    if (store_begin(st, &err) == -1)
        goto fail;
    if (record_id != 0) {
        has = store_record_get(st, record_id, &rec, &err);
        if (has == -1)
            goto fail;
        if (has == 0 || rec.is_deleted || strcmp(rec.model, cc->model) != 0) {
            store_rollback(st);
            fprintf(stderr, "concord: no live %s record %lld\n", cc->model, (long long)record_id);
            goto out;
        }
    } else if (store_record_add(st, cc->model, "{}", "operator", 0, now, &record_id, &err) == -1) {
        goto fail;
    }
    has = store_link_by_record(st, cc->name, record_id, &l, &err);
    if (has == -1)
        goto fail;
    if (has == 1 && l.ext_id != NULL) {
        store_rollback(st);
        fprintf(stderr, "concord: record %lld already has copy %s in %s\n", (long long)record_id,
                l.ext_id, cc->name);
        goto out;
    }
    if ((has == 1 ? store_link_set(st, l.id, ext->valuestring, NULL, now, &err)
                  : store_link_add(st, cc->name, record_id, ext->valuestring, NULL, now, &link_id,
                                   &err)) == -1 ||
        store_inbox_retry(st, e->id, now, &err) != 1)
        goto fail;
    (void)snprintf(note, sizeof(note), "linked to record %lld", (long long)record_id);
    if (store_inbox_set_detail(st, e->id, NULL, e->detail, "resolved", cli_operator(), now, &err) ==
            -1 ||
        store_commit(st, &err) == -1)
        goto fail;
    printf("entry %lld resolved by %s: copy %s of %s %s record %lld\n", (long long)e->id,
           cli_operator(), ext->valuestring, cc->name, rec.id ? "joins" : "makes a new",
           (long long)record_id);
    rc = 0;
    goto out;
fail:
    store_rollback(st);
    fprintf(stderr, "concord: %s\n", err.msg[0] ? err.msg : "the entry is not open");
out:
    record_fini(&rec);
    link_fini(&l);
    cJSON_Delete(d);
    return rc;
}

static int
run_resolve(const struct cli_args *args)
{
    const char *take = cli_opt(args, "take"), *value = cli_opt(args, "value");
    const char *record = cli_opt(args, "record");
    int fresh = args->is_new;
    struct config *cfg = NULL;
    struct store *st = NULL;
    struct error err = {0};
    struct inbox_entry e = {0};
    cJSON *detail = NULL, *chosen = NULL, *body = NULL, *fields;
    int64_t id, rec_id = 0;
    int rc = 1, found, ways = (take != NULL) + (value != NULL) + (record != NULL) + fresh;

    if (args->argc != 1 || ways != 1) {
        fprintf(stderr, "usage: %s\n", cli_cmd_resolve.usage);
        return 2;
    }
    if (cli_parse_id(args->argv[0], "an inbox", &id) == -1 ||
        (record && cli_parse_id(record, "a record", &rec_id) == -1))
        return 2;
    if (cli_open(args, &cfg, &st) == -1)
        return 1;
    found = store_inbox_get_full(st, id, &e, &err);
    if (found != 1 || e.kind != INBOX_CONFLICT || strcmp(e.state, "open") != 0) {
        fprintf(stderr, "concord: %s\n",
                found == -1 ? err.msg : "no open conflict with that id (see concord conflicts)");
        goto out;
    }
    if (e.field != NULL && strcmp(e.field, "@match") == 0) {
        if (record == NULL && !fresh) {
            fprintf(stderr,
                    "concord: entry %lld is an ambiguous match: resolve it with --record "
                    "N or --new\n",
                    (long long)id);
            goto out;
        }
        rc = resolve_match(cfg, st, &e, rec_id) == 0 ? 0 : 1;
        goto out;
    }
    if (record != NULL || fresh) {
        fprintf(stderr, "concord: --record and --new are for ambiguous matches; use --take "
                        "SYSTEM or --value JSON\n");
        goto out;
    }
    detail = e.detail ? cJSON_Parse(e.detail) : NULL;
    if (take != NULL) {
        const cJSON *v = side_of(detail, take);

        if (v == NULL) {
            fprintf(stderr, "concord: %s is not a side of conflict %lld\n", take, (long long)id);
            goto out;
        }
        chosen = cJSON_Duplicate(v, 1);
    } else if ((chosen = cJSON_Parse(value)) == NULL) {
        fprintf(stderr, "concord: --value is not JSON: %s (a string needs quotes: '\"x\"')\n",
                value);
        goto out;
    }
    body = cJSON_CreateObject();
    cJSON_AddNumberToObject(body, "record", (double)e.record_id);
    fields = cJSON_AddObjectToObject(body, "fields");
    cJSON_AddItemToObject(fields, e.field, chosen);
    chosen = NULL;
    if (cli_journal_operator(st, body, id, "resolved", NULL) == 0) {
        printf("conflict %lld resolved by %s: %s of record %lld %s\n", (long long)id,
               cli_operator(), e.field, (long long)e.record_id,
               take ? "takes that system's value" : "takes the given value");
        rc = 0;
    }
out:
    cJSON_Delete(chosen);
    cJSON_Delete(body);
    cJSON_Delete(detail);
    inbox_entry_fini(&e);
    cli_close(cfg, st);
    return rc;
}

/* ---- approve ---- */

static int
approve_one(struct store *st, int64_t id, struct error *err)
{
    int64_t now = clock_now_ms();
    int rc;

    if (store_begin(st, err) == -1)
        return -1;
    rc = store_inbox_retry(st, id, now, err);
    if (rc == 1 &&
        store_inbox_set_detail(st, id, NULL, NULL, "approved", cli_operator(), now, err) == -1)
        rc = -1;
    if (rc != 1) {
        store_rollback(st);
        return rc;
    }
    return store_commit(st, err) == -1 ? -1 : 1;
}

static int
run_approve(const struct cli_args *args)
{
    const char *system = cli_opt(args, "system");
    struct config *cfg = NULL;
    struct store *st = NULL;
    struct error err = {0};
    struct inbox_entry *list = NULL;
    int n, done = 0, rc = 0;
    int64_t id = 0;

    if ((args->argc == 1) == (system != NULL || args->all) || args->argc > 1) {
        fprintf(stderr, "usage: %s\n", cli_cmd_approve.usage);
        return 2;
    }
    if (args->argc == 1 && cli_parse_id(args->argv[0], "an inbox", &id) == -1)
        return 2;
    if (cli_open(args, &cfg, &st) == -1)
        return 1;
    n = store_inbox_by_kind(st, INBOX_HELD, 1, &list, &err);
    for (int i = 0; i < n && rc == 0; i++) {
        if (id != 0
                ? list[i].id != id
                : system != NULL && (list[i].system == NULL || strcmp(list[i].system, system) != 0))
            continue;
        if (approve_one(st, list[i].id, &err) == -1)
            rc = 1;
        else
            done++;
    }
    if (n == -1 || rc != 0)
        fprintf(stderr, "concord: %s\n", err.msg);
    else if (done == 0)
        fprintf(stderr, "concord: no held delete to approve (see concord held)\n");
    else
        printf("%d held delete%s approved by %s\n", done, done == 1 ? "" : "s", cli_operator());
    if (n > 0)
        store_inbox_free(list, n);
    cli_close(cfg, st);
    return n == -1 || rc != 0 || done == 0 ? 1 : 0;
}

/* ---- restore ---- */

static int
run_restore(const struct cli_args *args)
{
    struct config *cfg = NULL;
    struct store *st = NULL;
    struct error err = {0};
    struct record rec = {0};
    cJSON *body;
    int64_t id;
    int found, rc = 1;

    if (cli_one_id(args, &cli_cmd_restore, "a record", &id) == -1)
        return 2;
    if (cli_open(args, &cfg, &st) == -1)
        return 1;
    found = store_record_get(st, id, &rec, &err);
    if (found != 1 || !rec.is_deleted) {
        fprintf(stderr, "concord: %s\n",
                found == -1  ? err.msg
                : found == 0 ? "no such record (its tombstone may have been purged)"
                             : "the record is not deleted");
    } else {
        body = cJSON_CreateObject();
        cJSON_AddNumberToObject(body, "restore", (double)id);
        if (cli_journal_operator(st, body, 0, NULL, NULL) == 0) {
            printf("record %lld will be restored by %s and written to every collection again\n",
                   (long long)id, cli_operator());
            rc = 0;
        }
        cJSON_Delete(body);
    }
    record_fini(&rec);
    cli_close(cfg, st);
    return rc;
}

static const char *const resolve_options[] = {"take", "value", "record", NULL};
static const char *const approve_options[] = {"system", NULL};

const struct cli_command cli_cmd_conflicts = {
    .name = "conflicts",
    .usage = "concord conflicts [-c FILE] [--all] [--json]",
    .summary = "conflicts waiting for a person (--all: settled ones too), with both sides",
    .run = run_conflicts,
};

const struct cli_command cli_cmd_resolve = {
    .name = "resolve",
    .usage = "concord resolve [-c FILE] ID --take SYSTEM | --value JSON | --record N | --new",
    .summary = "settle a conflict: take a side's value, give one, or link an ambiguous match",
    .run = run_resolve,
    .options = resolve_options,
};

const struct cli_command cli_cmd_held = {
    .name = "held",
    .usage = "concord held [-c FILE] [--all] [--json]",
    .summary = "deletes held back by the mass-delete guard",
    .run = run_held,
};

const struct cli_command cli_cmd_approve = {
    .name = "approve",
    .usage = "concord approve [-c FILE] ID | --system SYSTEM | --all",
    .summary = "let held deletes through",
    .run = run_approve,
    .options = approve_options,
};

const struct cli_command cli_cmd_restore = {
    .name = "restore",
    .usage = "concord restore [-c FILE] RECORD",
    .summary = "bring a deleted record back and write it to every collection again",
    .run = run_restore,
    .options = NULL,
};
