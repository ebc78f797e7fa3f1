/* SPDX-License-Identifier: MIT */

/*
 * concord runs [AUTOMATION] [--record N] [--state S] [--limit N]: the
 * automation runs, newest first, each with what started it (record,
 * version, event, source), its state (running, waiting, done, failed,
 * cancelled, cut, skipped) and every action's outcome. The JSON is
 * admin_runs_json()'s (engine/admin.h), as GET /api/runs.
 */

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

    return cJSON_IsString(v) ? v->valuestring : "-";
}

static double
num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static void
print_run(const cJSON *r)
{
    const cJSON *a, *note = cJSON_GetObjectItemCaseSensitive(r, "note");

    printf("run %.0f  %s  record %.0f (%s) v%.0f, %s by %s  %s", num(r, "id"), str(r, "automation"),
           num(r, "record"), str(r, "model"), num(r, "version"), str(r, "event"), str(r, "source"),
           str(r, "state"));
    if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(r, "next_at")))
        printf(" (next %s)", str(r, "next_at"));
    if (num(r, "depth") > 0)
        printf(" depth %.0f", num(r, "depth"));
    printf("  %s\n", str(r, "created_at"));
    if (cJSON_IsString(note))
        printf("    %s\n", note->valuestring);
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(r, "actions"))
    {
        const cJSON *out = cJSON_GetObjectItemCaseSensitive(a, "outcome");

        printf("  %2.0f %-7s %-9s", num(a, "n"), str(a, "action"), str(a, "state"));
        if (num(a, "attempts") > 1)
            printf(" (%.0f attempts)", num(a, "attempts"));
        if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(a, "inbox")))
            printf(" [inbox %.0f]", num(a, "inbox"));
        printf("%s%s\n", cJSON_IsString(out) ? " " : "",
               cJSON_IsString(out) ? out->valuestring : "");
    }
}

static int
parse_limit(const char *text, int *out)
{
    char *end;
    long long n;

    if (text == NULL)
        return 0;
    n = strtoll(text, &end, 10);
    if (*end != '\0' || end == text || n < 1 || n > 100000)
        return -1;
    *out = (int)n;
    return 0;
}

static int
run(const struct cli_args *args)
{
    const char *record = cli_opt(args, "record");
    struct admin_runs_filter f = {.state = cli_opt(args, "state")};
    struct config *cfg = NULL;
    struct store *st = NULL;
    struct error err = {0};
    cJSON *arr = NULL;
    int rc = 0;

    if (args->argc > 1) {
        fprintf(stderr, "usage: %s\n", cli_cmd_runs.usage);
        return 2;
    }
    f.automation = args->argc == 1 ? args->argv[0] : NULL;
    if (parse_limit(cli_opt(args, "limit"), &f.limit) == -1) {
        fprintf(stderr, "concord: --limit: give a count from 1 to 100000\n");
        return 2;
    }
    if (record != NULL) {
        char *end;

        f.record_id = strtoll(record, &end, 10);
        if (*end != '\0' || f.record_id < 1) {
            fprintf(stderr, "concord: --record %s: give a record id\n", record);
            return 2;
        }
    }
    if (cli_open(args, &cfg, &st) == -1)
        return 1;
    if (admin_runs_json(st, cfg, &f, &arr, &err) == -1) {
        fprintf(stderr, "concord: %s\n", err.msg);
        rc = 1;
    } else if (args->json) {
        cli_print_json(arr);
    } else {
        const cJSON *r;

        if (cJSON_GetArraySize(arr) == 0)
            printf("no automation run%s\n", f.automation ? " of that automation" : " yet");
        cJSON_ArrayForEach(r, arr)
        {
            print_run(r);
        }
        cJSON_Delete(arr);
    }
    cli_close(cfg, st);
    return rc;
}

static const char *const options[] = {"record", "state", "limit", NULL};

const struct cli_command cli_cmd_runs = {
    .name = "runs",
    .usage = "concord runs [-c FILE] [--json] [--record N] [--state S] [--limit N] [AUTOMATION]",
    .summary = "automation runs, newest first: what started each, its state, each action's outcome",
    .run = run,
    .options = options,
};
