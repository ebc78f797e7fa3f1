/* SPDX-License-Identifier: MIT */

/* concord status: per system, the backlog, what is in flight, what failed. */

#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "engine/engine.h"
#include "store/store.h"

static void
add_time(cJSON *o, const char *key, int64_t at_ms)
{
    char ts[32];

    if (at_ms > 0)
        cJSON_AddStringToObject(o, key, clock_format_ms(at_ms, ts, sizeof(ts)));
    else
        cJSON_AddNullToObject(o, key);
}

/* The polled collections: schedule, last outcome, and a read in progress. */
static int
polls(const struct cli_args *args, const struct config *cfg, struct store *st, cJSON *root)
{
    cJSON *list = NULL;
    struct error err = {0};

    for (size_t i = 0; i < cfg->collection_count; i++) {
        const struct config_collection *cc = &cfg->collections[i];
        struct store_poll p = {0};
        char t1[32], t2[32];

        if (!cc->poll.enabled)
            continue;
        if (store_poll_get(st, cc->name, -1, &p, &err) == -1) {
            fprintf(stderr, "concord: %s\n", err.msg);
            return 1;
        }
        if (list == NULL) {
            list = cJSON_AddArrayToObject(root, "polls");
            if (!args->json)
                printf("\n%-24s %-21s %-21s %9s  %s\n", "POLLED", "LAST READ", "NEXT", "ROWS",
                       "STATE");
        }
        if (args->json) {
            cJSON *o = cJSON_CreateObject();

            cJSON_AddStringToObject(o, "collection", cc->name);
            cJSON_AddStringToObject(o, "last_ok_at", cli_time(p.last_ok_at_ms, t1, sizeof(t1)));
            cJSON_AddStringToObject(
                o, "next_at", p.next_at_ms <= 0 ? "now" : cli_time(p.next_at_ms, t2, sizeof(t2)));
            cJSON_AddNumberToObject(o, "rows_read", (double)p.rows_read);
            if (p.last_error)
                cJSON_AddStringToObject(o, "last_error", p.last_error);
            if (p.progress)
                cJSON_AddItemToObject(o, "progress", cJSON_Parse(p.progress));
            if (p.report)
                cJSON_AddItemToObject(o, "last_report", cJSON_Parse(p.report));
            cJSON_AddItemToArray(list, o);
        } else {
            printf("%-24s %-21s %-21s %9lld  %s\n", cc->name,
                   cli_time(p.last_ok_at_ms, t1, sizeof(t1)),
                   p.next_at_ms <= 0 ? "now" : cli_time(p.next_at_ms, t2, sizeof(t2)),
                   (long long)p.rows_read,
                   p.progress     ? p.progress
                   : p.last_error ? p.last_error
                                  : "ok");
        }
        store_poll_fini(&p);
    }
    return 0;
}

static int
run(const struct cli_args *args)
{
    struct config *cfg = NULL;
    struct store *st = NULL;
    struct error err = {0};
    cJSON *root, *list;
    int rc = 0;

    if (cli_open(args, &cfg, &st) == -1)
        return 1;
    root = cJSON_CreateObject();
    list = cJSON_AddArrayToObject(root, "systems");
    if (!args->json)
        printf("%-12s %-9s %8s %9s %7s  %-21s  %s\n", "SYSTEM", "STATE", "BACKLOG", "IN FLIGHT",
               "FAILED", "LAST SUCCESS", "LAST ERROR");
    for (size_t i = 0; i < cfg->system_count; i++) {
        struct store_system_stats s;
        struct engine_health h;
        char t1[32];

        if (store_system_stats(st, cfg->systems[i].name, &s, &err) == -1 ||
            engine_health_of(cfg, &cfg->systems[i], st, clock_now_ms(), &h, &err) == -1) {
            fprintf(stderr, "concord: %s\n", err.msg);
            rc = 1;
            break;
        }
        if (args->json) {
            cJSON *o = cJSON_CreateObject();

            cJSON_AddStringToObject(o, "name", cfg->systems[i].name);
            cJSON *ho = cJSON_AddObjectToObject(o, "health");
            cJSON_AddStringToObject(ho, "state", engine_health_name(h.state));
            if (h.reason[0] != '\0')
                cJSON_AddStringToObject(ho, "reason", h.reason);
            else
                cJSON_AddNullToObject(ho, "reason");
            cJSON_AddNumberToObject(o, "backlog", (double)s.backlog);
            cJSON_AddNumberToObject(o, "in_flight", (double)s.in_flight);
            cJSON_AddNumberToObject(o, "failed", (double)s.failed);
            add_time(o, "last_success_at", s.last_success_at_ms);
            add_time(o, "last_error_at", s.last_error_at_ms);
            if (s.last_error[0] != '\0')
                cJSON_AddStringToObject(o, "last_error", s.last_error);
            else
                cJSON_AddNullToObject(o, "last_error");
            cJSON_AddBoolToObject(o, "paused", s.is_paused);
            if (s.is_paused)
                cJSON_AddStringToObject(o, "paused_by", s.paused_by);
            cJSON *br = cJSON_AddObjectToObject(o, "breaker");
            cJSON_AddStringToObject(br, "state", s.breaker[0] ? s.breaker : "closed");
            if (s.breaker_reason[0] != '\0')
                cJSON_AddStringToObject(br, "reason", s.breaker_reason);
            add_time(br, "since", s.breaker_at_ms);
            cJSON_AddItemToArray(list, o);
        } else {
            printf("%-12s %-9s %8lld %9lld %7lld  %-21s  %s\n", cfg->systems[i].name,
                   engine_health_name(h.state), (long long)s.backlog, (long long)s.in_flight,
                   (long long)s.failed, cli_time(s.last_success_at_ms, t1, sizeof(t1)),
                   s.last_error[0] ? s.last_error : "-");
            if (h.state != ENGINE_HEALTH_OK)
                printf("%-12s why: %s\n", "", h.reason);
        }
    }
    if (rc == 0)
        rc = polls(args, cfg, st, root);
    if (args->json && rc == 0)
        cli_print_json(root);
    else
        cJSON_Delete(root);
    cli_close(cfg, st);
    return rc;
}

const struct cli_command cli_cmd_status = {
    .name = "status",
    .usage = "concord status [-c FILE] [--json]",
    .summary = "per system: health and why, backlog, in flight, failed, last success and error",
    .run = run,
};
