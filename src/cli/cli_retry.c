/* SPDX-License-Identifier: MIT */

/*
 * concord retry ID | --all | --system S --error TEXT --since T --until T:
 * put failed work back in line, one entry or in bulk by a filter. Retried
 * jobs go behind live work. The running daemon notices within a quarter of
 * a second.
 */

#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "store/store.h"

/* The filter of a bulk retry; unset fields match everything. */
struct filter {
    const char *system;
    const char *error;
    const char *kind;
    int64_t since_ms, until_ms;
};

static int
matches(const struct filter *f, const struct inbox_entry *e)
{
    if (f->system && (e->system == NULL || strcmp(f->system, e->system) != 0))
        return 0;
    if (f->error && (e->reason == NULL || strstr(e->reason, f->error) == NULL))
        return 0;
    if (f->kind && strcmp(f->kind, inbox_kind_name(e->kind)) != 0)
        return 0;
    return e->created_at_ms >= f->since_ms && e->created_at_ms <= f->until_ms;
}

static int
retry_matching(struct store *st, const struct filter *f)
{
    struct inbox_entry *list = NULL;
    struct error err = {0};
    int n = store_inbox_list(st, "open", &list, &err), done = 0;

    if (n == -1) {
        fprintf(stderr, "concord: %s\n", err.msg);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        int rc;

        if (!matches(f, &list[i]))
            continue;
        rc = store_inbox_retry(st, list[i].id, clock_now_ms(), &err);
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
parse_filter(const struct cli_args *args, struct filter *f)
{
    const char *since = cli_opt(args, "since"), *until = cli_opt(args, "until");
    int64_t now = clock_now_ms();

    f->system = cli_opt(args, "system");
    f->error = cli_opt(args, "error");
    f->kind = cli_opt(args, "kind");
    f->since_ms = 0;
    f->until_ms = INT64_MAX;
    if (since != NULL && cli_parse_time(since, now, &f->since_ms) == -1) {
        fprintf(stderr, "concord: --since %s: use 2026-11-26T05:00:00Z or an age (30m, 2h)\n",
                since);
        return -1;
    }
    if (until != NULL && cli_parse_time(until, now, &f->until_ms) == -1) {
        fprintf(stderr, "concord: --until %s: use 2026-11-26T05:00:00Z or an age (30m, 2h)\n",
                until);
        return -1;
    }
    return 0;
}

static int
retry_one(struct store *st, const char *arg)
{
    struct error err = {0};
    char *end;
    long long id = strtoll(arg, &end, 10);
    int found;

    if (*end != '\0' || id <= 0) {
        fprintf(stderr, "concord: %s is not an inbox id\n", arg);
        return 2;
    }
    found = store_inbox_retry(st, id, clock_now_ms(), &err);
    if (found == -1) {
        fprintf(stderr, "concord: %s\n", err.msg);
        return 1;
    }
    if (found == 0) {
        fprintf(stderr, "concord: no open inbox entry %lld (see concord failed)\n", id);
        return 1;
    }
    printf("entry %lld queued again\n", id);
    return 0;
}

static int
run(const struct cli_args *args)
{
    struct config *cfg = NULL;
    struct store *st = NULL;
    struct filter f;
    int bulk = args->all || args->opt_count > 0, rc;

    if (parse_filter(args, &f) == -1)
        return 2;
    if (bulk == (args->argc == 1) || args->argc > 1) {
        fprintf(stderr, "usage: %s\n", cli_cmd_retry.usage);
        return 2;
    }
    if (cli_open(args, &cfg, &st) == -1)
        return 1;
    rc = bulk ? retry_matching(st, &f) : retry_one(st, args->argv[0]);
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
