/* SPDX-License-Identifier: MIT */

/* concord run: the daemon. */

#include "cli/cli.h"

#include <stdlib.h>

#include "daemon/daemon.h"

static int
run(const struct cli_args *args)
{
    struct daemon_options opts = {
        .config_path = args->config_path,
        .shutdown_deadline_ms = 10000,
    };

    return daemon_run(&opts);
}

const struct cli_command cli_cmd_run = {
    .name = "run",
    .usage = "concord run [-c FILE]",
    .summary = "run the daemon: take changes in, keep the systems in agreement",
    .run = run,
};
