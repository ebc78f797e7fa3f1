/* SPDX-License-Identifier: MIT */

/* concord status: per system, the backlog, what is in flight, what failed;
 * and the polled collections. The JSON is admin_status_json()'s
 * (engine/admin.h), as GET /api/status; the table is drawn from it. */

#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "core/error.h"
#include "engine/admin.h"
#include "store/store.h"

/* A string member, or def when it is missing or null. */
static const char *
str(const cJSON *o, const char *key, const char *def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    return cJSON_IsString(v) ? v->valuestring : def;
}

static long long
num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    return cJSON_IsNumber(v) ? (long long)v->valuedouble : 0;
}

/* An ISO time as the table shows it: "2026-11-26 05:41:52Z". */
static const char *
when(const char *iso, char *out, size_t len)
{
    if (iso == NULL || strlen(iso) < 19)
        return iso ? iso : "never";
    (void)snprintf(out, len, "%.10s %.8sZ", iso, iso + 11);
    return out;
}

static void
print_systems(const cJSON *systems)
{
    const cJSON *s;

    printf("%-12s %-9s %8s %9s %7s  %-21s  %s\n", "SYSTEM", "STATE", "BACKLOG", "IN FLIGHT",
           "FAILED", "LAST SUCCESS", "LAST ERROR");
    cJSON_ArrayForEach(s, systems)
    {
        const cJSON *health = cJSON_GetObjectItemCaseSensitive(s, "health");
        const char *state = str(health, "state", "ok"), *why = str(health, "reason", NULL);
        char t1[32];

        printf("%-12s %-9s %8lld %9lld %7lld  %-21s  %s\n", str(s, "name", "?"), state,
               num(s, "backlog"), num(s, "in_flight"), num(s, "failed"),
               when(str(s, "last_success_at", NULL), t1, sizeof(t1)), str(s, "last_error", "-"));
        if (why != NULL)
            printf("%-12s why: %s\n", "", why);
    }
}

static void
print_polls(const cJSON *polls)
{
    const cJSON *p;

    if (polls == NULL)
        return;
    printf("\n%-24s %-21s %-21s %9s  %s\n", "POLLED", "LAST READ", "NEXT", "ROWS", "STATE");
    cJSON_ArrayForEach(p, polls)
    {
        const cJSON *progress = cJSON_GetObjectItemCaseSensitive(p, "progress");
        char t1[32], t2[32], state[200];

        if (cJSON_IsObject(progress))
            (void)snprintf(state, sizeof(state), "%s: %s",
                           strcmp(str(progress, "kind", ""), "reconcile") == 0 ? "reconcile"
                                                                               : "reading",
                           str(progress, "text", "?"));
        else
            (void)snprintf(state, sizeof(state), "%s",
                           cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "reading"))
                               ? "reading"
                               : str(p, "last_error", "ok"));
        printf("%-24s %-21s %-21s %9lld  %s\n", str(p, "collection", "?"),
               when(str(p, "last_ok_at", NULL), t1, sizeof(t1)),
               when(str(p, "next_at", NULL), t2, sizeof(t2)), num(p, "rows_read"), state);
    }
}

static int
run(const struct cli_args *args)
{
    struct config *cfg = NULL;
    struct store *st = NULL;
    struct error err = {0};
    cJSON *root = NULL;
    int rc = 0;

    if (cli_open(args, &cfg, &st) == -1)
        return 1;
    if (admin_status_json(st, cfg, &root, &err) == -1) {
        fprintf(stderr, "concord: %s\n", err.msg);
        rc = 1;
    } else if (args->json) {
        cli_print_json(root);
    } else {
        print_systems(cJSON_GetObjectItemCaseSensitive(root, "systems"));
        print_polls(cJSON_GetObjectItemCaseSensitive(root, "polls"));
        cJSON_Delete(root);
    }
    cli_close(cfg, st);
    return rc;
}

const struct cli_command cli_cmd_status = {
    .name = "status",
    .usage = "concord status [-c FILE] [--json]",
    .summary = "per system: health and why, backlog, in flight, failed, last success and error",
    .run = run,
};
