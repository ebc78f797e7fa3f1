/* SPDX-License-Identifier: MIT */

/*
 * concord retry ID | --all | --system S --error TEXT --since T --until T:
 * put failed work back in line, one entry or in bulk by a filter. Retried
 * jobs go behind live work. The running daemon notices within a quarter of
 * a second. The work is admin_retry() and admin_retry_matching()
 * (engine/admin.h), as for POST /api/inbox/{id}/retry and /api/retry.
 */

#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "engine/admin.h"
#include "store/store.h"

static int
parse_filter(const struct cli_args *args, struct admin_filter *f)
{
    const char *since = cli_opt(args, "since"), *until = cli_opt(args, "until");
    int64_t now = clock_now_ms();

    memset(f, 0, sizeof(*f));
    f->system = cli_opt(args, "system");
    f->error = cli_opt(args, "error");
    f->kind = cli_opt(args, "kind");
    f->is_all = args->all;
    if (since != NULL && cli_parse_time_opt("since", since, now, &f->since_ms) == -1)
        return -1;
    if (until != NULL && cli_parse_time_opt("until", until, now, &f->until_ms) == -1)
        return -1;
    return 0;
}

static int
run(const struct cli_args *args)
{
    struct config *cfg = NULL;
    struct store *st = NULL;
    struct error err = {0};
    struct admin_result res;
    struct admin_filter f;
    int bulk = args->all || args->opt_count > 0, rc;
    int64_t id = 0;
    char missing[96];

    if (parse_filter(args, &f) == -1)
        return 2;
    if (bulk == (args->argc == 1) || args->argc > 1) {
        fprintf(stderr, "usage: %s\n", cli_cmd_retry.usage);
        return 2;
    }
    if (!bulk && cli_parse_id(args->argv[0], "an inbox", &id) == -1)
        return 2;
    if (cli_open(args, &cfg, &st) == -1)
        return 1;
    (void)snprintf(missing, sizeof(missing), "no open inbox entry %lld (see concord failed)",
                   (long long)id);
    if (bulk)
        rc = cli_admin_done(admin_retry_matching(st, cli_actor(), &f, &res, &err) == 0 ? 1 : -1,
                            &res, &err, NULL);
    else
        rc = cli_admin_done(admin_retry(st, cli_actor(), id, &res, &err), &res, &err, missing);
    cli_close(cfg, st);
    return rc;
}

static const char *const options[] = {"system", "error", "kind", "since", "until", NULL};

const struct cli_command cli_cmd_retry = {
    .name = "retry",
    .usage = "concord retry [-c FILE] ID | --all | [--system S] [--error TEXT] [--kind K] "
             "[--since T] [--until T]",
    .summary = "queue failed entries again, one or in bulk by a filter; the daemon delivers them",
    .run = run,
    .options = options,
};
