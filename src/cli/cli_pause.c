/* SPDX-License-Identifier: MIT */

/* concord pause SYSTEM and concord resume SYSTEM: hold or release
 * deliveries (admin_pause(), admin_resume(): engine/admin.h). */

#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "core/error.h"
#include "engine/admin.h"
#include "store/store.h"

static int
set_paused(const struct cli_args *args, int paused, const char *usage)
{
    struct config *cfg = NULL;
    struct store *st = NULL;
    struct error err = {0};
    struct admin_result res;
    int rc;

    if (args->argc != 1) {
        fprintf(stderr, "usage: %s\n", usage);
        return 2;
    }
    if (cli_open(args, &cfg, &st) == -1)
        return 1;
    rc = paused ? admin_pause(st, cfg, cli_actor(), args->argv[0], &res, &err)
                : admin_resume(st, cfg, cli_actor(), args->argv[0], &res, &err);
    if (rc == 0) {
        fprintf(stderr, "concord: no system %s in %s\n", args->argv[0], args->config_path);
        rc = 2;
    } else {
        rc = cli_admin_done(rc, &res, &err, NULL);
    }
    cli_close(cfg, st);
    return rc;
}

static int
run_pause(const struct cli_args *args)
{
    return set_paused(args, 1, cli_cmd_pause.usage);
}

static int
run_resume(const struct cli_args *args)
{
    return set_paused(args, 0, cli_cmd_resume.usage);
}

const struct cli_command cli_cmd_pause = {
    .name = "pause",
    .usage = "concord pause [-c FILE] SYSTEM",
    .summary = "hold deliveries to a system (changes are still taken in and queued)",
    .run = run_pause,
};

const struct cli_command cli_cmd_resume = {
    .name = "resume",
    .usage = "concord resume [-c FILE] SYSTEM",
    .summary = "release deliveries to a paused system",
    .run = run_resume,
};
