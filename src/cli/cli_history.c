/* SPDX-License-Identifier: MIT */

/* concord history RECORD: every version, its source and time. */

#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "store/store.h"

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

static int
run(const struct cli_args *args)
{
    struct config *cfg = NULL;
    struct store *st = NULL;
    struct version *list = NULL;
    struct error err = {0};
    int64_t id;
    int n;

    if (cli_one_id(args, &cli_cmd_history, "a record", &id) == -1)
        return 2;
    if (cli_open(args, &cfg, &st) == -1)
        return 1;
    n = store_history(st, id, &list, &err);
    if (n == -1) {
        fprintf(stderr, "concord: %s\n", err.msg);
        cli_close(cfg, st);
        return 1;
    }
    if (n == 0) {
        fprintf(stderr, "concord: no record %lld\n", (long long)id);
        cli_close(cfg, st);
        return 1;
    }
    if (args->json) {
        cJSON *arr = cJSON_CreateArray();

        for (int i = 0; i < n; i++)
            cJSON_AddItemToArray(arr, version_json(&list[i]));
        cli_print_json(arr);
    } else {
        for (int i = 0; i < n; i++) {
            char ts[32];

            printf("v%lld  %s  from %s\n      %s\n", (long long)list[i].version,
                   cli_time(list[i].at_ms, ts, sizeof(ts)), list[i].source,
                   list[i].diff ? list[i].diff : list[i].state);
        }
    }
    store_versions_free(list, n);
    cli_close(cfg, st);
    return 0;
}

const struct cli_command cli_cmd_history = {
    .name = "history",
    .usage = "concord history [-c FILE] [--json] RECORD",
    .summary = "every version of a record, with its source system and time",
    .run = run,
};

/* concord changes RECORD: every change that concerned the record's copies,
 * with what became of it (applied, an echo, refused fields, conflicts...). */
static int
run_changes(const struct cli_args *args)
{
    struct config *cfg = NULL;
    struct store *st = NULL;
    struct store_copy_change *list = NULL;
    struct error err = {0};
    int64_t id;
    int n;

    if (cli_one_id(args, &cli_cmd_changes, "a record", &id) == -1)
        return 2;
    if (cli_open(args, &cfg, &st) == -1)
        return 1;
    n = store_copy_changes(st, id, &list, &err);
    if (n == -1) {
        fprintf(stderr, "concord: %s\n", err.msg);
        cli_close(cfg, st);
        return 1;
    }
    if (args->json) {
        cJSON *arr = cJSON_CreateArray();

        for (int i = 0; i < n; i++) {
            cJSON *o = cJSON_CreateObject();
            char ts[32];

            cJSON_AddNumberToObject(o, "change", (double)list[i].seq);
            cJSON_AddStringToObject(o, "system", list[i].system ? list[i].system : "");
            if (list[i].collection)
                cJSON_AddStringToObject(o, "collection", list[i].collection);
            if (list[i].ext_id)
                cJSON_AddStringToObject(o, "copy", list[i].ext_id);
            cJSON_AddStringToObject(o, "received_at",
                                    clock_format_ms(list[i].received_at_ms, ts, sizeof(ts)));
            cJSON_AddStringToObject(o, "state", change_state_name(list[i].state));
            if (list[i].note)
                cJSON_AddStringToObject(o, "note", list[i].note);
            else
                cJSON_AddNullToObject(o, "note");
            cJSON_AddItemToArray(arr, o);
        }
        cli_print_json(arr);
    } else {
        for (int i = 0; i < n; i++) {
            char ts[32];

            printf("change %lld  %s  from %s%s%s  %s%s%s\n", (long long)list[i].seq,
                   cli_time(list[i].received_at_ms, ts, sizeof(ts)),
                   list[i].collection ? list[i].collection : list[i].system,
                   list[i].ext_id ? " copy " : "", list[i].ext_id ? list[i].ext_id : "",
                   change_state_name(list[i].state), list[i].note ? ": " : "",
                   list[i].note ? list[i].note : "");
        }
    }
    store_copy_changes_free(list, n);
    cli_close(cfg, st);
    return 0;
}

const struct cli_command cli_cmd_changes = {
    .name = "changes",
    .usage = "concord changes [-c FILE] [--json] RECORD",
    .summary = "every change that concerned a record's copies, and what became of it",
    .run = run_changes,
};
