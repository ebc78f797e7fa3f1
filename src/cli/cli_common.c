/* SPDX-License-Identifier: MIT */

/* What the commands share: opening the config and the store, times. */

#include "cli/cli.h"

#include <stdio.h>
#include <time.h>

#include "config/config.h"
#include "core/error.h"
#include "store/store.h"

int
cli_open(const struct cli_args *args, struct config **cfg, struct store **st)
{
    struct error err = {0};

    if (config_load_flags(args->config_path, CONFIG_LOAD_NO_SECRETS, cfg, &err) == -1) {
        fprintf(stderr, "concord: %s\n", err.msg);
        return -1;
    }
    if (store_open(st, (*cfg)->store_url, &err) == -1) {
        fprintf(stderr, "concord: %s\n", err.msg);
        config_free(*cfg);
        *cfg = NULL;
        return -1;
    }
    return 0;
}

void
cli_close(struct config *cfg, struct store *st)
{
    store_close(st);
    config_free(cfg);
}

const char *
cli_time(int64_t at_ms, char *out, size_t out_len)
{
    time_t secs = (time_t)(at_ms / 1000);
    struct tm tm;

    if (at_ms <= 0) {
        (void)snprintf(out, out_len, "never");
        return out;
    }
    gmtime_r(&secs, &tm);
    (void)strftime(out, out_len, "%Y-%m-%d %H:%M:%SZ", &tm);
    return out;
}
