/* SPDX-License-Identifier: MIT */

/*
 * concord failed: the inbox's view of failures (failed deliveries, unknown
 * outcomes, mapping errors), one line each. concord inbox shows one entry
 * whole.
 */

#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "engine/admin.h"
#include "store/store.h"

static int
run(const struct cli_args *args)
{
    struct config *cfg = NULL;
    struct store *st = NULL;
    struct inbox_entry *list = NULL;
    struct error err = {0};
    int n;

    if (cli_open(args, &cfg, &st) == -1)
        return 1;
    n = store_inbox_list(st, args->all ? NULL : "open", &list, &err);
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
        printf("nothing failed\n");
    } else {
        printf("%5s  %-8s %7s  %-18s %8s  %s\n", "ID", "KIND", "RECORD", "SYSTEM", "ATTEMPTS",
               "REASON");
        for (int i = 0; i < n; i++) {
            const struct inbox_entry *e = &list[i];

            printf("%5lld  %-8s %7lld  %-18s %8d  %s\n", (long long)e->id, inbox_kind_name(e->kind),
                   (long long)e->record_id,
                   e->collection ? e->collection : (e->system ? e->system : "-"), e->attempts,
                   e->reason);
        }
    }
    store_inbox_free(list, n);
    cli_close(cfg, st);
    return 0;
}

const struct cli_command cli_cmd_failed = {
    .name = "failed",
    .usage = "concord failed [-c FILE] [--json] [--all]",
    .summary = "list what failed and waits for a person (id, record, system, reason, attempts)",
    .run = run,
};
