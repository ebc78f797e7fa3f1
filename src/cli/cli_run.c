/* SPDX-License-Identifier: MIT */

/* concord run: the daemon. */

#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/log.h"
#include "daemon/daemon.h"

static int
run(const struct cli_args *args)
{
    const char *level = cli_opt(args, "log-level"), *trace = cli_opt(args, "trace");
    struct daemon_options opts = {
        .config_path = args->config_path,
        .shutdown_deadline_ms = 10000,
        .log_level = level,
    };
    enum log_level l;
    char bad[64];

    if (level != NULL && log_level_parse(level, &l) == -1) {
        fprintf(stderr, "concord: --log-level %s: expected error, warn, info or debug\n", level);
        return 2;
    }
    if (trace != NULL && log_trace_parse(trace, &opts.trace, bad, sizeof(bad)) == -1) {
        fprintf(stderr,
                "concord: --trace: unknown subsystem %s; hint: http, webhook, merge, poll, "
                "writer or all\n",
                bad);
        return 2;
    }
    return daemon_run(&opts);
}

static const char *const run_options[] = {"log-level", "trace", NULL};

const struct cli_command cli_cmd_run = {
    .name = "run",
    .usage = "concord run [-c FILE] [--log-level LEVEL] [--trace http,webhook,merge,poll,writer]",
    .summary = "run the daemon: take changes in, keep the systems in agreement",
    .run = run,
    .options = run_options,
};
