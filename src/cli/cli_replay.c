/* SPDX-License-Identifier: MIT */

/*
 * concord replay --since T [--system S]: run journaled changes again
 * through the current config's maps, after a map was fixed. A change that a
 * later change of the same copy superseded is skipped, so a replay never
 * reverts a record; the jobs it makes go behind live work
 * (admin_replay(), engine/admin.h).
 */

#include "cli/cli.h"

#include <stdio.h>

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
    struct error err = {0};
    struct admin_result res;
    struct admin_filter f = {.system = cli_opt(args, "system")};
    const char *since = cli_opt(args, "since");
    int rc;

    if (since == NULL || args->argc != 0) {
        fprintf(stderr, "usage: %s\n", cli_cmd_replay.usage);
        return 2;
    }
    if (cli_parse_time_opt("since", since, clock_now_ms(), &f.since_ms) == -1)
        return 2;
    if (cli_open(args, &cfg, &st) == -1)
        return 1;
    rc = admin_replay(st, cfg, cli_actor(), &f, &res, &err);
    rc = cli_admin_done(rc == 0 ? 1 : -1, &res, &err, NULL);
    if (rc != 0 && err.kind == ERROR_INVALID)
        rc = 2;
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
