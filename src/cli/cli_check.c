/* SPDX-License-Identifier: MIT */

/* concord check: validate a config; every problem as file:line:col. */

#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

#include "config/config.h"
#include "core/error.h"

static int
run(const struct cli_args *args)
{
    struct error err = {0};
    char *report = NULL;
    int n = config_check(args->config_path, &report, &err);

    if (n == -1) {
        fprintf(stderr, "concord: %s\n", err.msg);
        return 2;
    }
    if (n > 0) {
        fputs(report, stderr);
        fprintf(stderr, "%s: %d problem%s\n", args->config_path, n, n == 1 ? "" : "s");
        free(report);
        return 2;
    }
    free(report);
    printf("%s: ok\n", args->config_path);
    return 0;
}

const struct cli_command cli_cmd_check = {
    .name = "check",
    .usage = "concord check [-c FILE]",
    .summary = "validate a config; exit 0 when valid, 2 with every problem listed when not",
    .run = run,
};
