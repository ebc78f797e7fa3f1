/* SPDX-License-Identifier: MIT */

/* concord skip ID [--reason TEXT]: give up on an inbox entry, on the record
 * (admin_skip(), engine/admin.h). */

#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

#include "config/config.h"
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
    char missing[96];
    int64_t id;
    int rc;

    if (cli_one_id(args, &cli_cmd_skip, "an inbox", &id) == -1)
        return 2;
    if (cli_open(args, &cfg, &st) == -1)
        return 1;
    (void)snprintf(missing, sizeof(missing), "no open inbox entry %lld (see concord failed)",
                   (long long)id);
    rc = cli_admin_done(admin_skip(st, cli_actor(), id, cli_opt(args, "reason"), &res, &err), &res,
                        &err, missing);
    cli_close(cfg, st);
    return rc;
}

static const char *const options[] = {"reason", NULL};

const struct cli_command cli_cmd_skip = {
    .name = "skip",
    .usage = "concord skip [-c FILE] ID [--reason TEXT]",
    .summary = "give up on an inbox entry; who skipped it and why are recorded",
    .run = run,
    .options = options,
};
