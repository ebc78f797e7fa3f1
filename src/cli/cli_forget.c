/* SPDX-License-Identifier: MIT */

/*
 * concord forget RECORD [--propagate]: erase a person's data from the store
 * (a GDPR erasure request): the record, its history, its copies' links
 * and the journal rows about it, overwritten on disk. With --propagate the
 * record is first deleted through the running daemon, so every copy is
 * deleted (or archived) as the collections' delete modes say, and erased
 * once those deliveries are done.
 */

#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "engine/admin.h"
#include "model/model.h"
#include "store/store.h"

/* Wait until the daemon deleted the record and its deliveries are done. */
static int
await_propagation(struct store *st, int64_t id, long timeout_s)
{
    int64_t deadline = clock_mono_ms() + (int64_t)timeout_s * 1000;
    struct error err = {0};

    for (;;) {
        struct record rec = {0};
        int64_t jobs = 0;
        int found = store_record_get(st, id, &rec, &err);
        int deleted = found == 1 && rec.is_deleted;

        record_fini(&rec);
        if (found == -1 || store_record_jobs(st, id, &jobs, &err) == -1) {
            fprintf(stderr, "concord: %s\n", err.msg);
            return -1;
        }
        if (deleted && jobs == 0)
            return 0;
        if (clock_mono_ms() > deadline) {
            fprintf(stderr,
                    "concord: record %lld: the delete was not delivered within %ld s (%s); "
                    "is the daemon running? Nothing was erased\n",
                    (long long)id, timeout_s,
                    deleted ? "deliveries still queued" : "not processed yet");
            return -1;
        }
        struct timespec ts = {0, 100 * 1000 * 1000};

        (void)nanosleep(&ts, NULL);
    }
}

static int
run_forget(const struct cli_args *args)
{
    const char *propagate = cli_opt(args, "propagate");
    const char *timeout = cli_opt(args, "timeout");
    struct config *cfg = NULL;
    struct store *st = NULL;
    struct record rec = {0};
    struct error err = {0};
    struct admin_result res;
    int64_t id;
    int rc = 1, found;

    if (cli_one_id(args, &cli_cmd_forget, "record", &id) == -1)
        return 2;
    if (cli_open(args, &cfg, &st) == -1)
        return 1;
    found = store_record_get(st, id, &rec, &err);
    if (found <= 0) {
        fprintf(stderr, "concord: %s\n", found == 0 ? "no such record" : err.msg);
        rc = found == 0 ? 2 : 1;
        goto out;
    }
    if (propagate != NULL && !rec.is_deleted) {
        if (admin_delete_record(st, cli_actor(), id, &res, &err) != 1) {
            fprintf(stderr, "concord: %s\n", err.msg);
            rc = 1;
            goto out;
        }
        if (await_propagation(st, id, timeout ? strtol(timeout, NULL, 10) : 60) == -1) {
            rc = 1;
            goto out;
        }
    }
    if (admin_forget(st, cli_actor(), id, &res, &err) != 1) {
        fprintf(stderr, "concord: %s\n", err.msg);
        rc = 1;
        goto out;
    }
    printf("%s; %s\n", res.message,
           propagate != NULL ? "its copies were deleted first"
                             : "its copies stay in their systems (--propagate deletes them)");
    rc = 0;
out:
    record_fini(&rec);
    cli_close(cfg, st);
    return rc;
}

static const char *const forget_options[] = {"timeout", NULL};
static const char *const forget_flags[] = {"propagate", NULL};

const struct cli_command cli_cmd_forget = {
    .name = "forget",
    .usage = "concord forget [-c FILE] [--propagate] [--timeout SECONDS] RECORD",
    .summary = "erase a person's record from the store (GDPR); --propagate deletes its copies",
    .run = run_forget,
    .options = forget_options,
    .flags = forget_flags,
};
