/* SPDX-License-Identifier: MIT */

/*
 * concord plan [SYNC|COLLECTION]: a dry run. The polled collections in
 * scope are read whole, and what they and the pending backlog would change
 * is shown, per system: creates, updates with a field diff, deletes, and
 * what would need a person. Nothing is changed (engine/plan.h).
 */

#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "core/error.h"
#include "engine/admin.h"
#include "engine/plan.h"
#include "model/value.h"

/* An update's field diff for people: name: "a" -> "b", ... */
static void
print_fields(const char *op, const char *fields)
{
    cJSON *f = fields ? cJSON_Parse(fields) : NULL;
    const cJSON *x;
    int first = 1;

    if (f == NULL || strcmp(op, "update") != 0) {
        printf("%s", fields ? fields : "");
        cJSON_Delete(f);
        return;
    }
    cJSON_ArrayForEach(x, f)
    {
        char *a = value_canonical_text(cJSON_GetArrayItem(x, 0));
        char *b = value_canonical_text(cJSON_GetArrayItem(x, 1));

        printf("%s%s: %s -> %s", first ? "" : ", ", x->string, a, b);
        first = 0;
        free(a);
        free(b);
    }
    cJSON_Delete(f);
}

static void
print_text(const struct engine_plan *p)
{
    for (size_t i = 0; i < p->read_count; i++) {
        const struct engine_poll_report *r = &p->reads[i];

        printf("read %s: %s, %lld read: %lld in sync, %lld drifted, %lld new, %lld missing%s%s\n",
               p->read_names[i], r->complete ? "complete" : "incomplete (deletes nothing)",
               (long long)r->read, (long long)r->unchanged, (long long)r->changed,
               (long long)r->fresh, (long long)r->missing, r->error[0] ? ": " : "", r->error);
    }
    if (p->read_count > 0)
        printf("\n");
    if (p->change_count == 0) {
        printf("no writes would follow\n");
    } else {
        printf("%-10s %-20s %-8s %7s %-10s %s\n", "SYSTEM", "COLLECTION", "OP", "RECORD", "COPY",
               "FIELDS");
        /* (a delete's line ends at its copy: the copy column is padded) */
        for (size_t i = 0; i < p->change_count; i++) {
            const struct engine_plan_change *c = &p->changes[i];

            printf("%-10s %-20s %-8s %7lld %-10s%s", c->system, c->collection, c->op,
                   (long long)c->record_id, c->copy ? c->copy : "-", c->fields ? " " : "");
            print_fields(c->op, c->fields);
            if (c->note)
                printf("  (%s)", c->note);
            printf("\n");
        }
    }
    for (size_t i = 0; i < p->issue_count; i++) {
        if (i == 0)
            printf("\nfor a person:\n");
        printf("  %-9s record %lld  %s: %s\n", p->issues[i].kind, (long long)p->issues[i].record_id,
               p->issues[i].collection ? p->issues[i].collection : "-", p->issues[i].reason);
    }
    for (size_t i = 0; i < p->run_count; i++) {
        const struct engine_plan_run *r = &p->runs[i];

        if (i == 0)
            printf("\nautomations that would run:\n");
        printf("  %-24s record %lld v%lld (%s): %s%s\n", r->automation, (long long)r->record_id,
               (long long)r->version, r->event, r->actions,
               r->is_cut      ? "  (cut: past automation_depth)"
               : r->is_failed ? "  (a condition fails to run: to the inbox)"
                              : "");
    }
    printf("\n(a dry run: nothing was changed)\n");
}

static int
run(const struct cli_args *args)
{
    struct config *cfg = NULL;
    struct error err = {0};
    struct engine_plan p;

    if (args->argc > 1) {
        fprintf(stderr, "usage: %s\n", cli_cmd_plan.usage);
        return 2;
    }
    /* Reads talk to the systems: the secrets are needed. */
    if (config_load(args->config_path, &cfg, &err) == -1) {
        fprintf(stderr, "concord: %s\n", err.msg);
        return 1;
    }
    if (engine_plan(cfg, args->argc ? args->argv[0] : NULL, &p, &err) == -1) {
        fprintf(stderr, "concord: %s\n", err.msg);
        config_free(cfg);
        return err.kind == ERROR_INVALID ? 2 : 1;
    }
    if (args->json)
        cli_print_json(admin_plan_json(&p));
    else
        print_text(&p);
    engine_plan_fini(&p);
    config_free(cfg);
    return 0;
}

const struct cli_command cli_cmd_plan = {
    .name = "plan",
    .usage = "concord plan [-c FILE] [--json] [SYNC|COLLECTION]",
    .summary = "a dry run: what a reconcile and the pending backlog would write, changing nothing",
    .run = run,
};
