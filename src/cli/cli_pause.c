/* SPDX-License-Identifier: MIT */

/* concord pause SYSTEM and concord resume SYSTEM: hold or release deliveries. */

#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "core/error.h"
#include "store/store.h"

static int
set_paused(const struct cli_args *args, int paused, const char *usage)
{
    struct config *cfg = NULL;
    struct store *st = NULL;
    struct error err = {0};
    int rc = 0;

    if (args->argc != 1) {
        fprintf(stderr, "usage: %s\n", usage);
        return 2;
    }
    if (cli_open(args, &cfg, &st) == -1)
        return 1;
    if (config_system_find(cfg, args->argv[0]) == NULL) {
        fprintf(stderr, "concord: no system %s in %s\n", args->argv[0], args->config_path);
        rc = 2;
    } else if (store_system_pause(st, args->argv[0], paused, cli_operator(), &err) == -1) {
        fprintf(stderr, "concord: %s\n", err.msg);
        rc = 1;
    } else {
        printf("%s: deliveries %s\n", args->argv[0],
               paused ? "paused; changes keep being journaled and queued" : "resumed");
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
