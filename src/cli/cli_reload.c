/* SPDX-License-Identifier: MIT */

/*
 * concord reload: check the config, then ask the running daemon (its pid
 * is in the store) to load it again, and say what became of it. The daemon
 * does the same on SIGHUP: a valid config is swapped in once the
 * deliveries in flight are done, and queued work is delivered with the new
 * maps; an invalid one is refused and the running config stays.
 */

#include "cli/cli.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "store/store.h"

/* Whether pid is a concord process (not a reused pid of something else). */
static int
is_concord(long pid)
{
    char path[64], comm[64] = "";
    FILE *f;

    (void)snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    if (fgets(comm, sizeof(comm), f) == NULL)
        comm[0] = '\0';
    fclose(f);
    return strncmp(comm, "concord", 7) == 0;
}

static int
run_reload(const struct cli_args *args)
{
    struct config *cfg = NULL;
    struct store *st = NULL;
    struct error err = {0};
    char *pid_text = NULL, *outcome = NULL;
    int64_t asked = clock_now_ms(), deadline = clock_mono_ms() + 30000;
    long pid;
    int rc = 1;

    /* The same loader as the daemon's: what it would refuse is shown here. */
    if (cli_open(args, &cfg, &st) == -1)
        return 2;
    if (store_meta_get(st, "daemon.pid", &pid_text, &err) == -1) {
        fprintf(stderr, "concord: %s\n", err.msg);
        goto out;
    }
    pid = pid_text != NULL ? strtol(pid_text, NULL, 10) : 0;
    if (pid <= 0 || !is_concord(pid) || kill((pid_t)pid, SIGHUP) == -1) {
        fprintf(stderr, "concord: no running daemon for %s (is concord run up?)\n", cfg->store_url);
        goto out;
    }
    for (;;) {
        char *end = NULL;
        long long at;

        free(outcome);
        outcome = NULL;
        if (store_meta_get(st, "daemon.reload", &outcome, &err) == -1) {
            fprintf(stderr, "concord: %s\n", err.msg);
            goto out;
        }
        at = outcome != NULL ? strtoll(outcome, &end, 10) : 0;
        if (outcome != NULL && at >= asked) {
            const char *what = end != NULL && *end == ' ' ? end + 1 : "";

            printf("reload: %s\n", strcmp(what, "ok") == 0 ? "the new config is in" : what);
            rc = strcmp(what, "ok") == 0 ? 0 : 1;
            goto out;
        }
        if (clock_mono_ms() > deadline) {
            fprintf(stderr, "concord: the daemon (pid %ld) did not finish the reload in 30 s\n",
                    pid);
            goto out;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};

        (void)nanosleep(&ts, NULL);
    }
out:
    free(pid_text);
    free(outcome);
    cli_close(cfg, st);
    return rc;
}

const struct cli_command cli_cmd_reload = {
    .name = "reload",
    .usage = "concord reload [-c FILE]",
    .summary = "check the config and have the running daemon swap it in",
    .run = run_reload,
};
