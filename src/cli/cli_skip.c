/* SPDX-License-Identifier: MIT */

/* concord skip ID [--reason TEXT]: give up on an inbox entry, on the record. */

#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

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
    const char *reason = cli_opt(args, "reason");
    char *end;
    long long id;
    int rc;

    if (args->argc != 1) {
        fprintf(stderr, "usage: %s\n", cli_cmd_skip.usage);
        return 2;
    }
    id = strtoll(args->argv[0], &end, 10);
    if (*end != '\0' || id <= 0) {
        fprintf(stderr, "concord: %s is not an inbox id\n", args->argv[0]);
        return 2;
    }
    if (cli_open(args, &cfg, &st) == -1)
        return 1;
    rc = store_inbox_resolve(st, id, "skipped", cli_operator(), reason, clock_now_ms(), &err);
    if (rc == -1)
        fprintf(stderr, "concord: %s\n", err.msg);
    else if (rc == 0)
        fprintf(stderr, "concord: no open inbox entry %lld (see concord failed)\n", id);
    else
        printf("entry %lld skipped by %s\n", id, cli_operator());
    cli_close(cfg, st);
    return rc == 1 ? 0 : 1;
}

static const char *const options[] = {"reason", NULL};

const struct cli_command cli_cmd_skip = {
    .name = "skip",
    .usage = "concord skip [-c FILE] ID [--reason TEXT]",
    .summary = "give up on an inbox entry; who skipped it and why are recorded",
    .run = run,
    .options = options,
};
