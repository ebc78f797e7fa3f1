/* SPDX-License-Identifier: MIT */

/*
 * concord retry ID | --all: put failed work back in line. The running
 * daemon notices within a quarter of a second.
 */

#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "store/store.h"

static int
retry_all(struct store *st)
{
    struct inbox_entry *list = NULL;
    struct error err = {0};
    int n = store_inbox_list(st, "open", &list, &err), done = 0;

    if (n == -1) {
        fprintf(stderr, "concord: %s\n", err.msg);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        int rc = store_inbox_retry(st, list[i].id, clock_now_ms(), &err);

        if (rc == -1) {
            fprintf(stderr, "concord: retry %lld: %s\n", (long long)list[i].id, err.msg);
            store_inbox_free(list, n);
            return 1;
        }
        done += rc;
    }
    store_inbox_free(list, n);
    printf("%d entr%s queued again\n", done, done == 1 ? "y" : "ies");
    return 0;
}

static int
run(const struct cli_args *args)
{
    struct config *cfg = NULL;
    struct store *st = NULL;
    struct error err = {0};
    int rc = 0;

    if (!args->all && args->argc != 1) {
        fprintf(stderr, "usage: %s\n", cli_cmd_retry.usage);
        return 2;
    }
    if (cli_open(args, &cfg, &st) == -1)
        return 1;
    if (args->all) {
        rc = retry_all(st);
    } else {
        char *end;
        long long id = strtoll(args->argv[0], &end, 10);
        int found;

        if (*end != '\0' || id <= 0) {
            fprintf(stderr, "concord: %s is not an inbox id\n", args->argv[0]);
            rc = 2;
        } else if ((found = store_inbox_retry(st, id, clock_now_ms(), &err)) == -1) {
            fprintf(stderr, "concord: %s\n", err.msg);
            rc = 1;
        } else if (found == 0) {
            fprintf(stderr, "concord: no open inbox entry %lld (see concord failed)\n", id);
            rc = 1;
        } else {
            printf("entry %lld queued again\n", id);
        }
    }
    cli_close(cfg, st);
    return rc;
}

const struct cli_command cli_cmd_retry = {
    .name = "retry",
    .usage = "concord retry [-c FILE] ID | --all",
    .summary = "queue a failed entry again (or all of them); the daemon delivers it",
    .run = run,
};
