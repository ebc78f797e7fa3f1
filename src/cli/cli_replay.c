/* SPDX-License-Identifier: MIT */

/*
 * concord replay --since T [--system S]: run journaled changes again
 * through the current config's maps, after a map was fixed. A change that a
 * later change of the same copy superseded is skipped, so a replay never
 * reverts a record; the jobs it makes go behind live work.
 */

#include "cli/cli.h"

#include <stdio.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "store/store.h"

static int
run(const struct cli_args *args)
{
    struct config *cfg = NULL;
    struct store *st = NULL;
    struct error err = {0};
    const char *since = cli_opt(args, "since"), *system = cli_opt(args, "system");
    int64_t since_ms;
    int n, rc = 0;

    if (since == NULL || args->argc != 0) {
        fprintf(stderr, "usage: %s\n", cli_cmd_replay.usage);
        return 2;
    }
    if (cli_parse_time(since, clock_now_ms(), &since_ms) == -1) {
        fprintf(stderr, "concord: --since %s: use 2026-11-26T05:00:00Z or an age (30m, 2h)\n",
                since);
        return 2;
    }
    if (cli_open(args, &cfg, &st) == -1)
        return 1;
    if (system != NULL && config_system_find(cfg, system) == NULL) {
        fprintf(stderr, "concord: no system %s in %s\n", system, args->config_path);
        cli_close(cfg, st);
        return 2;
    }
    n = store_journal_replay(st, since_ms, system, clock_now_ms(), &err);
    if (n == -1) {
        fprintf(stderr, "concord: %s\n", err.msg);
        rc = 1;
    } else {
        printf("%d change%s queued for replay\n", n, n == 1 ? "" : "s");
    }
    cli_close(cfg, st);
    return rc;
}

static const char *const options[] = {"since", "system", NULL};

const struct cli_command cli_cmd_replay = {
    .name = "replay",
    .usage = "concord replay [-c FILE] --since T [--system S]",
    .summary = "run journaled changes again through the current maps (never reverts a record)",
    .run = run,
    .options = options,
};
