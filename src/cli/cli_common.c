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
#include "engine/engine.h"
#include "model/value.h"
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

int
cli_parse_time(const char *text, int64_t now_ms, int64_t *out_ms)
{
    struct tm tm;
    char *end;
    long long n = strtoll(text, &end, 10);

    if (end != text && n >= 0 && end[0] != '\0' && (end[1] == '\0' || strcmp(end, "ms") == 0)) {
        int64_t unit = 0;

        switch (end[0]) {
        case 'm':
            unit = end[1] == 's' ? 1 : 60000;
            break;
        case 's':
            unit = 1000;
            break;
        case 'h':
            unit = 3600000;
            break;
        case 'd':
            unit = 86400000;
            break;
        default:
            return -1;
        }
        if (n > INT64_MAX / unit / 2)
            return -1;
        *out_ms = now_ms - (int64_t)n * unit;
        return 0;
    }
    memset(&tm, 0, sizeof(tm));
    end = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
    if (end == NULL)
        end = strptime(text, "%Y-%m-%d", &tm);
    if (end == NULL || (*end != '\0' && strcmp(end, "Z") != 0))
        return -1;
    *out_ms = (int64_t)timegm(&tm) * 1000;
    return 0;
}

cJSON *
cli_inbox_entry_json(const struct inbox_entry *e)
{
    cJSON *o = cJSON_CreateObject();
    char ts[32];

    cJSON_AddNumberToObject(o, "id", (double)e->id);
    cJSON_AddStringToObject(o, "kind", inbox_kind_name(e->kind));
    cJSON_AddStringToObject(o, "state", e->state);
    if (e->record_id)
        cJSON_AddNumberToObject(o, "record", (double)e->record_id);
    else
        cJSON_AddNullToObject(o, "record");
    cJSON_AddStringToObject(o, "system", e->system ? e->system : "");
    if (e->collection)
        cJSON_AddStringToObject(o, "collection", e->collection);
    else
        cJSON_AddNullToObject(o, "collection");
    cJSON_AddStringToObject(o, "reason", e->reason ? e->reason : "");
    if (e->http_status)
        cJSON_AddNumberToObject(o, "http_status", e->http_status);
    else
        cJSON_AddNullToObject(o, "http_status");
    if (e->response)
        cJSON_AddStringToObject(o, "response", e->response);
    cJSON_AddNumberToObject(o, "attempts", e->attempts);
    if (e->job_id)
        cJSON_AddNumberToObject(o, "job", (double)e->job_id);
    if (e->journal_seq)
        cJSON_AddNumberToObject(o, "change", (double)e->journal_seq);
    cJSON_AddStringToObject(o, "created_at", clock_format_ms(e->created_at_ms, ts, sizeof(ts)));
    return o;
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

int
cli_journal_operator(struct store *st, cJSON *body, int64_t inbox_id, const char *inbox_state,
                     const char *note)
{
    struct error err = {0};
    char *text;
    int64_t seq;
    int rc = -1;

    cJSON_AddStringToObject(body, "by", cli_operator());
    text = value_canonical_text(body);
    if (store_begin(st, &err) == 0 &&
        store_journal_add(st, ENGINE_OPERATOR_SYSTEM, NULL, clock_now_ms(), text, strlen(text),
                          &seq, &err) == 1 &&
        (inbox_id == 0 || store_inbox_resolve(st, inbox_id, inbox_state, cli_operator(),
                                              note ? note : text, clock_now_ms(), &err) == 1) &&
        store_commit(st, &err) == 0)
        rc = 0;
    if (rc == -1) {
        store_rollback(st);
        fprintf(stderr, "concord: %s\n", err.msg[0] ? err.msg : "the inbox entry is not open");
    }
    free(text);
    return rc;
}
