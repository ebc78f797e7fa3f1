/* SPDX-License-Identifier: MIT */

/* concord history RECORD: every version, its source and time; and concord
 * changes RECORD. The JSON is admin_history_json()'s and
 * admin_changes_json()'s (engine/admin.h), as the admin API's. */

#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "core/error.h"
#include "engine/admin.h"
#include "store/store.h"

static const char *
str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    return cJSON_IsString(v) || cJSON_IsRaw(v) ? v->valuestring : "";
}

/* An ISO time as people read it here: "2026-11-26 05:41:52Z". */
static const char *
when(const char *iso, char *out, size_t len)
{
    (void)snprintf(out, len, "%.10s %.8sZ", iso, strlen(iso) >= 19 ? iso + 11 : "");
    return out;
}

static void
print_versions(const cJSON *arr)
{
    const cJSON *v;

    cJSON_ArrayForEach(v, arr)
    {
        const char *diff = str(v, "diff");
        char ts[32];

        printf("v%.0f  %s  from %s\n      %s\n",
               cJSON_GetObjectItemCaseSensitive(v, "version")->valuedouble,
               when(str(v, "at"), ts, sizeof(ts)), str(v, "source"),
               strcmp(diff, "null") != 0 ? diff : str(v, "state"));
    }
}

static void
print_changes(const cJSON *arr)
{
    const cJSON *c;

    cJSON_ArrayForEach(c, arr)
    {
        const char *copy = str(c, "copy"), *note = str(c, "note");
        const char *from = str(c, "collection");
        char ts[32];

        printf("change %.0f  %s  from %s%s%s  %s%s%s\n",
               cJSON_GetObjectItemCaseSensitive(c, "change")->valuedouble,
               when(str(c, "received_at"), ts, sizeof(ts)), from[0] ? from : str(c, "system"),
               copy[0] ? " copy " : "", copy, str(c, "state"), note[0] ? ": " : "", note);
    }
}

/* Run one of the two: view fills the JSON, print shows it as text. */
static int
show(const struct cli_args *args, const struct cli_command *cmd,
     int (*view)(struct store *, int64_t, cJSON **, struct error *), void (*print)(const cJSON *))
{
    struct config *cfg = NULL;
    struct store *st = NULL;
    struct error err = {0};
    cJSON *arr = NULL;
    int64_t id;
    int found;

    if (cli_one_id(args, cmd, "a record", &id) == -1)
        return 2;
    if (cli_open(args, &cfg, &st) == -1)
        return 1;
    found = view(st, id, &arr, &err);
    if (found != 1) {
        if (found == -1)
            fprintf(stderr, "concord: %s\n", err.msg);
        else
            fprintf(stderr, "concord: no record %lld\n", (long long)id);
    } else if (args->json) {
        cli_print_json(arr);
    } else {
        print(arr);
        cJSON_Delete(arr);
    }
    cli_close(cfg, st);
    return found == 1 ? 0 : 1;
}

static int
run(const struct cli_args *args)
{
    return show(args, &cli_cmd_history, admin_history_json, print_versions);
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
    return show(args, &cli_cmd_changes, admin_changes_json, print_changes);
}

const struct cli_command cli_cmd_changes = {
    .name = "changes",
    .usage = "concord changes [-c FILE] [--json] RECORD",
    .summary = "every change that concerned a record's copies, and what became of it",
    .run = run_changes,
};
