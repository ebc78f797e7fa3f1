/* SPDX-License-Identifier: MIT */

/*
 * concord audit [--limit N]: the audit log of operators' actions (retry,
 * skip, edit, resolve, approve, pause, resume, replay, restore, poll,
 * reconcile), newest first: when, who (the local user for the CLI, the
 * admin token's name for the API), through which door, what and to what.
 * The JSON is admin_audit_json()'s (engine/admin.h), as GET /api/audit.
 */

#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

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

static void
print_text(const cJSON *arr)
{
    const cJSON *a;

    if (cJSON_GetArraySize(arr) == 0) {
        printf("no operator's action yet\n");
        return;
    }
    printf("%5s  %-24s  %-12s %-4s %-9s  %-18s  %s\n", "ID", "AT", "WHO", "VIA", "ACTION", "TARGET",
           "DETAIL");
    cJSON_ArrayForEach(a, arr)
    {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(a, "detail");
        char *detail = cJSON_IsNull(d) ? NULL : cJSON_PrintUnformatted(d);

        printf("%5.0f  %-24s  %-12s %-4s %-9s  %-18s  %s\n",
               cJSON_GetObjectItemCaseSensitive(a, "id")->valuedouble, str(a, "at"), str(a, "who"),
               str(a, "via"), str(a, "action"), str(a, "target"), detail ? detail : "");
        free(detail);
    }
}

static int
run(const struct cli_args *args)
{
    const char *limit_text = cli_opt(args, "limit");
    struct config *cfg = NULL;
    struct store *st = NULL;
    struct error err = {0};
    cJSON *arr = NULL;
    int64_t limit = 100;
    int rc = 0;

    if (args->argc != 0) {
        fprintf(stderr, "usage: %s\n", cli_cmd_audit.usage);
        return 2;
    }
    if (limit_text != NULL) {
        char *end;

        limit = strtoll(limit_text, &end, 10);
        if (*end != '\0' || end == limit_text || limit < 1 || limit > 100000) {
            fprintf(stderr, "concord: --limit %s: give a count from 1 to 100000\n", limit_text);
            return 2;
        }
    }
    if (cli_open(args, &cfg, &st) == -1)
        return 1;
    if (admin_audit_json(st, (int)limit, 0, &arr, &err) == -1) {
        fprintf(stderr, "concord: %s\n", err.msg);
        rc = 1;
    } else if (args->json) {
        cli_print_json(arr);
    } else {
        print_text(arr);
        cJSON_Delete(arr);
    }
    cli_close(cfg, st);
    return rc;
}

static const char *const options[] = {"limit", NULL};

const struct cli_command cli_cmd_audit = {
    .name = "audit",
    .usage = "concord audit [-c FILE] [--json] [--limit N]",
    .summary = "who did what: every operator's action, from the CLI or the admin API, newest first",
    .run = run,
    .options = options,
};
