/* SPDX-License-Identifier: MIT */

/*
 * concord inbox [ID]: everything that needs a person, in one id space
 * (DESIGN.md, "What needs a person"). Without an id, the open entries; with
 * one, the whole entry: its reason, every attempt with its request and
 * answer, and the diff the job tries to apply (the fields the target's map
 * writes whose values differ from the copy's last known state): the JSON
 * of admin_entry_detail_json() (engine/admin.h), as GET /api/inbox/{id}.
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

static void
print_text(const cJSON *o)
{
    const cJSON *f, *a;

    cJSON_ArrayForEach(f, o)
    {
        if (strcmp(f->string, "attempts_made") == 0 || strcmp(f->string, "diff") == 0)
            continue;
        if (cJSON_IsString(f))
            printf("%-11s %s\n", f->string, f->valuestring);
        else if (cJSON_IsNumber(f))
            printf("%-11s %.0f\n", f->string, f->valuedouble);
    }
    f = cJSON_GetObjectItemCaseSensitive(o, "diff");
    if (cJSON_IsObject(f) && cJSON_GetArraySize(f) > 0) {
        printf("diff it tries to apply (copy -> new):\n");
        cJSON_ArrayForEach(a, f)
        {
            char *from = cJSON_PrintUnformatted(cJSON_GetArrayItem(a, 0));
            char *to = cJSON_PrintUnformatted(cJSON_GetArrayItem(a, 1));

            printf("  %-18s %s -> %s\n", a->string, from, to);
            free(from);
            free(to);
        }
    }
    f = cJSON_GetObjectItemCaseSensitive(o, "attempts_made");
    cJSON_ArrayForEach(a, f)
    {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(a, "http_status");

        printf("attempt %d  %s  %-9s %s -> %s%.0f: %s\n",
               (int)cJSON_GetObjectItemCaseSensitive(a, "n")->valuedouble,
               cJSON_GetObjectItemCaseSensitive(a, "at")->valuestring,
               cJSON_GetObjectItemCaseSensitive(a, "outcome")->valuestring,
               cJSON_GetObjectItemCaseSensitive(a, "request")->valuestring, st ? "HTTP " : "",
               st ? st->valuedouble : 0.0,
               cJSON_GetObjectItemCaseSensitive(a, "response")->valuestring);
    }
}

static int
show_one(const struct cli_args *args, const struct config *cfg, struct store *st)
{
    struct error err = {0};
    int64_t id;
    cJSON *o = NULL;
    int found;

    if (cli_parse_id(args->argv[0], "an inbox", &id) == -1)
        return 2;
    found = admin_entry_detail_json(st, cfg, id, &o, &err);
    if (found != 1) {
        fprintf(stderr, "concord: %s\n", found == -1 ? err.msg : "no inbox entry with that id");
        return 1;
    }
    if (args->json) {
        cli_print_json(o);
    } else {
        print_text(o);
        cJSON_Delete(o);
    }
    return 0;
}

static int
run(const struct cli_args *args)
{
    struct config *cfg = NULL;
    struct store *st = NULL;
    int rc;

    if (args->argc == 0)
        return cli_cmd_failed.run(args); /* every kind is a failure, until conflicts come */
    if (args->argc != 1) {
        fprintf(stderr, "usage: %s\n", cli_cmd_inbox.usage);
        return 2;
    }
    if (cli_open(args, &cfg, &st) == -1)
        return 1;
    rc = show_one(args, cfg, st);
    cli_close(cfg, st);
    return rc;
}

const struct cli_command cli_cmd_inbox = {
    .name = "inbox",
    .usage = "concord inbox [-c FILE] [--json] [--all] [ID]",
    .summary = "everything that needs a person; with an ID, its attempts, answers and diff",
    .run = run,
};
