/* SPDX-License-Identifier: MIT */

/* What the commands share: opening the config and the store, times. */

#include "cli/cli.h"

#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "engine/admin.h"
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

const char *
cli_opt(const struct cli_args *args, const char *name)
{
    for (int i = 0; i < args->opt_count; i++) {
        if (strcmp(args->opt_names[i], name) == 0)
            return args->opt_values[i];
    }
    return NULL;
}

const char *
cli_operator(void)
{
    static char name[64];
    const char *env = getenv("CONCORD_OPERATOR");
    struct passwd pw, *found = NULL;
    char buf[1024];

    if (env != NULL && *env != '\0')
        return env;
    if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &found) == 0 && found != NULL) {
        (void)snprintf(name, sizeof(name), "%s", found->pw_name);
        return name;
    }
    return "unknown";
}

void
cli_print_json(cJSON *v)
{
    char *text = cJSON_Print(v);

    if (text != NULL)
        puts(text);
    free(text);
    cJSON_Delete(v);
}

int
cli_parse_id(const char *text, const char *what, int64_t *out)
{
    char *end;
    long long v = strtoll(text, &end, 10);

    if (*end != '\0' || v <= 0) {
        fprintf(stderr, "concord: %s is not %s id\n", text, what);
        return -1;
    }
    *out = v;
    return 0;
}

int
cli_one_id(const struct cli_args *args, const struct cli_command *cmd, const char *what,
           int64_t *out)
{
    if (args->argc != 1) {
        fprintf(stderr, "usage: %s\n", cmd->usage);
        return -1;
    }
    return cli_parse_id(args->argv[0], what, out);
}

const struct admin_actor *
cli_actor(void)
{
    static struct admin_actor actor;

    actor.name = cli_operator();
    actor.via = "cli";
    return &actor;
}

int
cli_admin_done(int rc, const struct admin_result *res, const struct error *err, const char *missing)
{
    if (rc == 1) {
        printf("%s\n", res->message);
        return 0;
    }
    if (rc == 0)
        fprintf(stderr, "concord: %s\n", missing ? missing : res->message);
    else
        fprintf(stderr, "concord: %s\n", err->msg);
    return 1;
}

int
cli_parse_time_opt(const char *opt, const char *text, int64_t now_ms, int64_t *out_ms)
{
    if (admin_parse_time(text, now_ms, out_ms) == 0)
        return 0;
    fprintf(stderr, "concord: --%s %s: use 2026-11-26T05:00:00Z or an age (30m, 2h)\n", opt, text);
    return -1;
}
