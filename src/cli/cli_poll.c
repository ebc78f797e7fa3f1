/* SPDX-License-Identifier: MIT */

/*
 * concord poll COLLECTION       read a polled collection now, from its cursor
 * concord reconcile COLLECTION  read it whole, and after a complete read
 *                               delete what it no longer holds (under the
 *                               delete rules and the mass-delete guard)
 *
 * The read runs in this process with its own store handle and HTTP client;
 * what it finds is journaled and the daemon merges it (or does at its next
 * start). A lease in the store keeps two readers of one collection apart.
 * On a terminal the read shows a progress bar, with the rate and the time
 * left once it knows the total; elsewhere it prints a progress line every
 * two seconds.
 */

#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "connectors/oauth.h"
#include "core/clock.h"
#include "core/error.h"
#include "engine/poll.h"
#include "http/http_client.h"
#include "store/store.h"

struct progress {
    int tty;
    int64_t last_ms;
    const char *name;
};

/* On a terminal, one line redrawn after each page, with a bar once the
 * total is known; elsewhere a line every ENGINE_POLL_PROGRESS_MS, the first
 * only once the read has taken that long. */
static void
show_progress(void *user, const struct engine_poll_report *r)
{
    struct progress *p = user;
    char line[200];

    if (p->tty) {
        engine_poll_progress_line(r, 1, line, sizeof(line));
        fprintf(stderr, "\r%s: %s\033[K", p->name, line);
        fflush(stderr);
    } else if (engine_poll_progress_due(r, &p->last_ms)) {
        engine_poll_progress_line(r, 0, line, sizeof(line));
        fprintf(stderr, "%s: %s\n", p->name, line);
    }
}

static void
print_report(const struct cli_args *args, const char *name, const struct engine_poll_report *r)
{
    if (args->json) {
        char *text = engine_poll_report_json(r);
        cJSON *o = cJSON_Parse(text);

        free(text);
        cJSON_AddStringToObject(o, "collection", name);
        cli_print_json(o);
        return;
    }
    printf("%s %s: %s, %lld pages, %lld read: %lld in sync, %lld drifted, %lld new", name,
           r->reconcile ? "reconcile" : "poll", r->complete ? "complete" : "stopped part way",
           (long long)r->pages, (long long)r->read, (long long)r->unchanged, (long long)r->changed,
           (long long)r->fresh);
    if (r->reconcile)
        printf(", %lld missing%s", (long long)r->missing,
               r->complete ? " (their deletes are journaled)" : " (nothing deleted)");
    if (r->resynced)
        printf("; the cursor was refused and the read started over");
    printf(" in %.1f s\n", (double)r->elapsed_ms / 1000.0);
    if (r->error[0])
        printf("  stopped: %s\n", r->error);
}

static int
run_read(const struct cli_args *args, int reconcile, const struct cli_command *cmd)
{
    struct config *cfg = NULL;
    struct store *st = NULL;
    struct http_client *http = NULL;
    struct oauth *oauth = NULL;
    struct error err = {0};
    struct engine_poll_report rep;
    const struct config_collection *cc;
    struct progress prog = {.tty = isatty(2)};
    char *report = NULL;
    int rc = 1;

    if (args->argc != 1) {
        fprintf(stderr, "usage: %s\n", cmd->usage);
        return 2;
    }
    /* A read talks to the system: it needs the secrets. */
    if (config_load(args->config_path, &cfg, &err) == -1) {
        fprintf(stderr, "concord: %s\n", err.msg);
        return 1;
    }
    cc = config_collection_find(cfg, args->argv[0]);
    if (cc == NULL || !cc->poll.enabled) {
        fprintf(stderr, "concord: %s is not a polled collection (it needs a poll section)\n",
                args->argv[0]);
        config_free(cfg);
        return 2;
    }
    if (store_open(&st, cfg->store_url, &err) == -1 || http_client_new(&http, &err) == -1 ||
        oauth_new(cfg, &oauth, &err) == -1) {
        fprintf(stderr, "concord: %s\n", err.msg);
        goto out;
    }
    prog.name = cc->name;
    struct engine_poll_job job = {
        .cfg = cfg,
        .cc = cc,
        .st = st,
        .http = http,
        .oauth = oauth,
        .reconcile = reconcile,
        .progress = show_progress,
        .user = &prog,
    };
    /* Another reader (the daemon's scheduled read) may hold the collection:
     * wait for it, up to a minute. */
    for (int waited = 0;; waited++) {
        if (engine_poll_run(&job, &rep, &err) == -1) {
            fprintf(stderr, "%sconcord: %s\n", prog.tty ? "\n" : "", err.msg);
            goto out;
        }
        if (!rep.busy || waited == 600)
            break;
        if (waited == 0)
            fprintf(stderr, "concord: %s; waiting for it\n", rep.error);
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (rep.busy) {
        fprintf(stderr, "concord: %s; try again when it is done\n", rep.error);
        goto out;
    }
    if (prog.tty && rep.pages > 0)
        fputc('\n', stderr);
    report = engine_poll_report_json(&rep);
    {
        int64_t now = clock_now_ms();
        int64_t next = engine_poll_next_due(cc, now);

        if ((rep.error[0] ? store_poll_fail(st, cc->name, rep.error, now, next, report, &err)
                          : store_poll_finish(st, cc->name, now, rep.read, next, report,
                                              reconcile && rep.complete ? now : 0, &err)) == -1)
            fprintf(stderr, "concord: %s\n", err.msg);
    }
    print_report(args, cc->name, &rep);
    rc = rep.error[0] ? 1 : 0;
out:
    free(report);
    http_client_free(http);
    oauth_free(oauth);
    store_close(st);
    config_free(cfg);
    return rc;
}

static int
run_poll(const struct cli_args *args)
{
    return run_read(args, 0, &cli_cmd_poll);
}

static int
run_reconcile(const struct cli_args *args)
{
    return run_read(args, 1, &cli_cmd_reconcile);
}

const struct cli_command cli_cmd_poll = {
    .name = "poll",
    .usage = "concord poll [-c FILE] [--json] COLLECTION",
    .summary = "read a polled collection now, from its cursor",
    .run = run_poll,
};

const struct cli_command cli_cmd_reconcile = {
    .name = "reconcile",
    .usage = "concord reconcile [-c FILE] [--json] COLLECTION",
    .summary = "read a collection whole, repair drift, and delete what it no longer holds",
    .run = run_reconcile,
};
