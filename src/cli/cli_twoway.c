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
 * guarantees. Inbox entries are closed in the same transaction. The
 * actions are engine/admin.h's, as for the admin API.
 */

#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "engine/admin.h"
#include "model/model.h"
#include "model/value.h"
#include "store/store.h"

/* ---- conflicts ---- */

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
            cJSON_AddItemToArray(arr, admin_entry_json(&list[i]));
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

/* ---- resolve, approve, restore: engine/admin.h ---- */

static int
run_resolve(const struct cli_args *args)
{
    const char *take = cli_opt(args, "take"), *value = cli_opt(args, "value");
    const char *record = cli_opt(args, "record");
    struct admin_resolution how = {.take = take, .is_new = args->is_new};
    struct config *cfg = NULL;
    struct store *st = NULL;
    struct error err = {0};
    struct admin_result res;
    cJSON *given = NULL;
    int rc, ways = (take != NULL) + (value != NULL) + (record != NULL) + args->is_new;

    if (args->argc != 1 || ways != 1) {
        fprintf(stderr, "usage: %s\n", cli_cmd_resolve.usage);
        return 2;
    }
    if (cli_parse_id(args->argv[0], "an inbox", &how.inbox_id) == -1 ||
        (record && cli_parse_id(record, "a record", &how.record_id) == -1))
        return 2;
    if (value != NULL && (given = cJSON_Parse(value)) == NULL) {
        fprintf(stderr, "concord: --value is not JSON: %s (a string needs quotes: '\"x\"')\n",
                value);
        return 2;
    }
    how.value = given;
    if (cli_open(args, &cfg, &st) == -1) {
        cJSON_Delete(given);
        return 1;
    }
    rc = cli_admin_done(admin_resolve(st, cfg, cli_actor(), &how, &res, &err), &res, &err,
                        "no open conflict with that id (see concord conflicts)");
    cJSON_Delete(given);
    cli_close(cfg, st);
    return rc;
}

static int
run_approve(const struct cli_args *args)
{
    const char *system = cli_opt(args, "system");
    struct config *cfg = NULL;
    struct store *st = NULL;
    struct error err = {0};
    struct admin_result res;
    int64_t id = 0;
    int rc;

    if ((args->argc == 1) == (system != NULL || args->all) || args->argc > 1) {
        fprintf(stderr, "usage: %s\n", cli_cmd_approve.usage);
        return 2;
    }
    if (args->argc == 1 && cli_parse_id(args->argv[0], "an inbox", &id) == -1)
        return 2;
    if (cli_open(args, &cfg, &st) == -1)
        return 1;
    rc = cli_admin_done(admin_approve(st, cli_actor(), id, system, &res, &err), &res, &err,
                        "no held delete to approve (see concord held)");
    cli_close(cfg, st);
    return rc;
}

static int
run_restore(const struct cli_args *args)
{
    struct config *cfg = NULL;
    struct store *st = NULL;
    struct error err = {0};
    struct admin_result res;
    int64_t id;
    int rc;

    if (cli_one_id(args, &cli_cmd_restore, "a record", &id) == -1)
        return 2;
    if (cli_open(args, &cfg, &st) == -1)
        return 1;
    rc = cli_admin_done(admin_restore(st, cli_actor(), id, &res, &err), &res, &err,
                        "no such record (its tombstone may have been purged)");
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
