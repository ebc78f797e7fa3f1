/* SPDX-License-Identifier: MIT */

/*
 * concord inbox [ID]: everything that needs a person, in one id space
 * (DESIGN.md, "What needs a person"). Without an id, the open entries; with
 * one, the whole entry: its reason, every attempt with its request and
 * answer, and the diff the job tries to apply (the fields the target's map
 * writes whose values differ from the copy's last known state).
 */

#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "map/map.h"
#include "model/value.h"
#include "store/store.h"

/* {field: [copy's value, value to write]} for a job entry, or NULL. */
static cJSON *
job_diff(const struct config *cfg, struct store *st, const struct inbox_entry *e)
{
    const struct config_collection *cc = config_collection_find(cfg, e->collection);
    const struct config_model *model = cc ? config_model_find(cfg, cc->model) : NULL;
    struct record rec = {0};
    struct link l = {0};
    struct error err = {0};
    struct map *m = NULL;
    cJSON *state = NULL, *desired = NULL, *base = NULL, *diff = NULL;
    const cJSON *f;

    if (model == NULL || cc->map_out.entry_count == 0 ||
        store_record_get(st, e->record_id, &rec, &err) != 1)
        return NULL;
    if (store_link_by_record(st, cc->name, e->record_id, &l, &err) == -1 ||
        map_new(&cc->map_out, model, MAP_OUT, &m, &err) == -1)
        goto out;
    state = cJSON_Parse(rec.state);
    if (map_apply(m, state, &desired, &err) == -1)
        goto out;
    base = l.base ? cJSON_Parse(l.base) : NULL;
    diff = cJSON_CreateObject();
    cJSON_ArrayForEach(f, desired)
    {
        const cJSON *old = base ? cJSON_GetObjectItemCaseSensitive(base, f->string) : NULL;
        cJSON *pair;

        if (old != NULL && value_equal(old, f))
            continue;
        pair = cJSON_AddArrayToObject(diff, f->string);
        cJSON_AddItemToArray(pair, old ? cJSON_Duplicate(old, 1) : cJSON_CreateNull());
        cJSON_AddItemToArray(pair, cJSON_Duplicate(f, 1));
    }
out:
    cJSON_Delete(state);
    cJSON_Delete(desired);
    cJSON_Delete(base);
    map_free(m);
    link_fini(&l);
    record_fini(&rec);
    return diff;
}

static cJSON *
attempts_json(struct store *st, int64_t job_id)
{
    struct attempt_row *rows = NULL;
    struct error err = {0};
    cJSON *arr = cJSON_CreateArray();
    int n = job_id ? store_attempts_list(st, job_id, &rows, &err) : 0;
    char ts[32];

    for (int i = 0; i < n; i++) {
        cJSON *a = cJSON_CreateObject();

        cJSON_AddNumberToObject(a, "n", rows[i].n);
        cJSON_AddStringToObject(a, "at", clock_format_ms(rows[i].at_ms, ts, sizeof(ts)));
        cJSON_AddStringToObject(a, "outcome", rows[i].outcome ? rows[i].outcome : "");
        if (rows[i].http_status)
            cJSON_AddNumberToObject(a, "http_status", rows[i].http_status);
        cJSON_AddStringToObject(a, "request", rows[i].request ? rows[i].request : "");
        cJSON_AddStringToObject(a, "response", rows[i].response ? rows[i].response : "");
        cJSON_AddNumberToObject(a, "elapsed_ms", (double)rows[i].elapsed_ms);
        cJSON_AddItemToArray(arr, a);
    }
    if (n > 0)
        store_attempts_free(rows, n);
    return arr;
}

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
    struct inbox_entry e = {0};
    struct error err = {0};
    char *end;
    long long id = strtoll(args->argv[0], &end, 10);
    cJSON *o, *diff;

    if (*end != '\0' || id <= 0 || store_inbox_get(st, id, &e, &err) != 1) {
        fprintf(stderr, "concord: no inbox entry %s\n", args->argv[0]);
        return 1;
    }
    o = cli_inbox_entry_json(&e);
    cJSON_AddItemToObject(o, "attempts_made", attempts_json(st, e.job_id));
    diff = e.job_id ? job_diff(cfg, st, &e) : NULL;
    cJSON_AddItemToObject(o, "diff", diff ? diff : cJSON_CreateNull());
    if (args->json) {
        cli_print_json(o);
    } else {
        print_text(o);
        cJSON_Delete(o);
    }
    inbox_entry_fini(&e);
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
