/* SPDX-License-Identifier: MIT */

/*
 * The schema's walk of the whole tree: the top-level keys in the order
 * references need them (models first: collections name them; then systems
 * with their collections; then syncs, which name both), and the small
 * top-level sections themselves: listen, store, log, retention, health,
 * alerts and models. Each bigger section has its own file (config_int.h
 * lists them).
 *
 * Every problem is recorded with the position of the node it is about and
 * the walk goes on, so one run of `concord check` lists them all (a missing
 * key points at the mapping that lacks it). Messages start with the dotted
 * key path ("systems.crm.retry.cap_ms: ...") and never quote a secret:
 * scalars under secret keys are not shown at all. docs/config.md is the
 * reference of every key.
 */

#include "config/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"
#include "core/log.h"
#include "core/xmalloc.h"

/* How many edit distances "did you mean" may compute in one load, so a
 * config with thousands of bad references (a fuzzer's) stays fast. */
#define HINT_BUDGET 200000

static const char *const top_keys[] = {"listen",        "store",           "log",       "systems",
                                       "models",        "syncs",           "health",    "alerts",
                                       "tombstone_ttl", "echo_window",     "retention", "admin",
                                       "automations",   "automation_depth"};
static const char *const retention_keys[] = {"journal", "versions", "attempts", "inbox", "runs"};
static const char *const alerts_keys[] = {"every", "group", "min_interval", "webhook", "email"};
static const char *const email_keys[] = {"url", "from", "to", "username", "password"};
static const char *const health_keys[] = {"lag", "inbox_growth", "window", "webhook_grace"};
static const char *const log_keys[] = {"level", "format", "trace"};
static const char *const log_levels[] = {"error", "warn", "info", "debug"};
static const char *const log_formats[] = {"json", "text", "auto"};
static const char *const model_keys[] = {"fields"};
static const char *const type_names[] = {"string",  "integer",   "decimal",
                                         "boolean", "timestamp", "date"};

static void
parse_listen(struct config_ctx *c, const struct config_node *v)
{
    char buf[64];
    const char *colon, *p;
    long port = 0;

    if (config_get_str(c, v, "listen", &c->cfg->listen) == -1)
        return;
    colon = strrchr(v->value, ':');
    for (p = colon != NULL ? colon + 1 : ""; *p >= '0' && *p <= '9' && port <= 65535; p++)
        port = port * 10 + (*p - '0');
    if (colon == NULL || colon == v->value || colon[1] == '\0' || *p != '\0' || port > 65535)
        CONFIG_PROBLEM(c, v, "listen: expected \"host:port\", got %s; hint: 127.0.0.1:8480",
                       config_node_show(v, buf, sizeof(buf)));
}

/* A relative sqlite path is relative to the file, not to the working directory. */
static void
parse_store(struct config_ctx *c, const struct config_node *v)
{
    struct config *cfg = c->cfg;
    const char *url, *file;

    if (v != NULL && config_get_str(c, v, "store", &cfg->store_url) == -1)
        return;
    url = cfg->store_url;
    if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0)
        return;
    if (strncmp(url, "sqlite:", 7) != 0) {
        /* A store URL may hold a password: it is not quoted. */
        if (v != NULL)
            CONFIG_PROBLEM(
                c, v, "store: unknown kind of store; hint: write sqlite:PATH or postgres://...");
        return;
    }
    file = url + 7;
    if (file[0] == '\0') {
        if (v != NULL)
            CONFIG_PROBLEM(c, v, "store: sqlite: needs a file path; hint: sqlite:concord.db");
        return;
    }
    if (file[0] != '/' && strcmp(file, ":memory:") != 0 && c->base_dir != NULL) {
        char *abs = xasprintf("sqlite:%s%s%s", c->base_dir,
                              c->base_dir[strlen(c->base_dir) - 1] == '/' ? "" : "/", file);

        free(cfg->store_url);
        cfg->store_url = abs;
    }
}

static void
parse_log(struct config_ctx *c, const struct config_node *v)
{
    int i;

    if (!config_want_map(c, v, "log"))
        return;
    config_check_keys(c, v, "log", log_keys, ARRAY_COUNT(log_keys));
    i = config_opt_choice(c, v, "log", "level", log_levels, ARRAY_COUNT(log_levels));
    if (i >= 0)
        c->cfg->log_level = xstrdup(log_levels[i]);
    i = config_opt_choice(c, v, "log", "format", log_formats, ARRAY_COUNT(log_formats));
    if (i >= 0)
        c->cfg->log_format = xstrdup(log_formats[i]);
    const struct config_node *t = config_node_get(v, "trace");
    char bad[64];

    for (size_t k = 0; t != NULL && k < (t->kind == CONFIG_NODE_SEQUENCE ? t->kid_count : 1); k++) {
        const struct config_node *one = t->kind == CONFIG_NODE_SEQUENCE ? t->kids[k] : t;

        if (one->kind != CONFIG_NODE_SCALAR ||
            log_trace_parse(one->value, &c->cfg->log_trace, bad, sizeof(bad)) == -1)
            CONFIG_PROBLEM(c, one,
                           "log.trace: unknown subsystem \"%s\"; hint: http, webhook, merge, poll, "
                           "writer or all",
                           one->kind == CONFIG_NODE_SCALAR ? bad : "?");
    }
}

static const char **
model_names(const struct config *cfg)
{
    const char **names = xcalloc(cfg->model_count + 1, sizeof(*names));

    for (size_t i = 0; i < cfg->model_count; i++)
        names[i] = cfg->models[i].name;
    return names;
}

/* The model called name, or NULL after saying so at n. */
const struct config_model *
config_ref_model(struct config_ctx *c, const struct config_node *n, const char *path,
                 const char *name)
{
    const struct config_model *m = config_model_find(c->cfg, name);
    const char **names;
    char hint[128];

    if (m != NULL || n == NULL)
        return m;
    names = model_names(c->cfg);
    CONFIG_PROBLEM(c, n, "%s: no model is called \"%.64s\"%s", path, name,
                   config_did_you_mean(c, name, names, c->cfg->model_count, hint, sizeof(hint)));
    free(names);
    return NULL;
}

static void
parse_field(struct config_ctx *c, const struct config_node *k, const struct config_node *v,
            const char *path, struct config_field *f)
{
    char buf[64], hint[128];
    int i;

    f->name = xstrdup(k->value);
    f->pos = (struct config_pos){k->line, k->col};
    if (v->kind != CONFIG_NODE_SCALAR || config_node_is_null(v)) {
        CONFIG_PROBLEM(c, v, "%s: expected a type name, got %s", path,
                       config_node_show(v, buf, sizeof(buf)));
        return;
    }
    i = config_in_list(v->value, type_names, ARRAY_COUNT(type_names));
    if (i >= 0) {
        f->type = (enum config_type)(CONFIG_TYPE_STRING + i);
        return;
    }
    if (strncmp(v->value, "ref:", 4) == 0) {
        f->type = CONFIG_TYPE_REF;
        f->ref_model = xstrdup(v->value + 4);
        (void)config_ref_model(c, v, path, f->ref_model);
        return;
    }
    if (config_did_you_mean(c, v->value, type_names, ARRAY_COUNT(type_names), hint,
                            sizeof(hint))[0])
        CONFIG_PROBLEM(c, v, "%s: unknown type %s%s", path, config_node_show(v, buf, sizeof(buf)),
                       hint);
    else
        CONFIG_PROBLEM(
            c, v,
            "%s: unknown type %s; hint: string, integer, decimal, boolean, timestamp, date or "
            "ref:MODEL",
            path, config_node_show(v, buf, sizeof(buf)));
}

static void
parse_model(struct config_ctx *c, const struct config_node *v, const char *path,
            struct config_model *m)
{
    const struct config_node *fields;
    char *fpath;

    if (!config_want_map(c, v, path))
        return;
    config_check_keys(c, v, path, model_keys, ARRAY_COUNT(model_keys));
    fields = config_node_get(v, "fields");
    if (fields == NULL) {
        config_missing(c, v, path, "fields");
        return;
    }
    fpath = config_join(path, "fields");
    if (config_want_map(c, fields, fpath)) {
        m->fields = xcalloc(fields->kid_count / 2 + 1, sizeof(*m->fields));
        for (size_t i = 0; i + 1 < fields->kid_count; i += 2) {
            char *p = config_join(fpath, fields->kids[i]->value);

            parse_field(c, fields->kids[i], fields->kids[i + 1], p, &m->fields[m->field_count++]);
            free(p);
        }
    }
    free(fpath);
}

static void
parse_models(struct config_ctx *c, const struct config_node *v)
{
    struct config *cfg = c->cfg;
    size_t n;

    if (!config_want_map(c, v, "models"))
        return;
    n = v->kid_count / 2;
    cfg->models = xcalloc(n + 1, sizeof(*cfg->models));
    /* Names first: a field may refer to a model defined further down. */
    for (size_t i = 0; i < n; i++) {
        const struct config_node *k = v->kids[2 * i];

        config_check_name(c, k, "models", "model");
        cfg->models[i].name = xstrdup(k->value);
        cfg->models[i].pos = (struct config_pos){k->line, k->col};
    }
    cfg->model_count = n;
    for (size_t i = 0; i < n; i++) {
        char *p = config_join("models", v->kids[2 * i]->value);

        parse_model(c, v->kids[2 * i + 1], p, &cfg->models[i]);
        free(p);
    }
}

static void
parse_email(struct config_ctx *c, const struct config_node *v, const char *path,
            struct config_alerts *a)
{
    const struct config_node *to = config_node_get(v, "to"), *n;
    char *p;

    config_check_keys(c, v, path, email_keys, ARRAY_COUNT(email_keys));
    if (config_node_get(v, "url") == NULL)
        config_missing(c, v, path, "url");
    if (config_node_get(v, "from") == NULL)
        config_missing(c, v, path, "from");
    if (to == NULL)
        config_missing(c, v, path, "to");
    config_opt_str(c, v, path, "url", &a->smtp_url);
    if (a->smtp_url != NULL && strncmp(a->smtp_url, "smtp://", 7) != 0 &&
        strncmp(a->smtp_url, "smtps://", 8) != 0)
        CONFIG_PROBLEM(c, config_node_get(v, "url"),
                       "%s.url: expected smtp://HOST:PORT or smtps://HOST:PORT", path);
    config_opt_str(c, v, path, "from", &a->mail_from);
    config_opt_str(c, v, path, "username", &a->smtp_user);
    if ((n = config_node_get(v, "password")) != NULL) {
        p = config_join(path, "password");
        (void)config_get_secret(c, n, p, &a->smtp_password);
        free(p);
    }
    p = config_join(path, "to");
    if (to != NULL && to->kind == CONFIG_NODE_SCALAR) {
        a->mail_to = xcalloc(1, sizeof(char *));
        if (config_get_str(c, to, p, &a->mail_to[0]) == 0)
            a->mail_to_count = 1;
    } else if (to != NULL && to->kind == CONFIG_NODE_SEQUENCE && to->kid_count > 0) {
        a->mail_to = xcalloc(to->kid_count, sizeof(char *));
        for (size_t i = 0; i < to->kid_count; i++) {
            if (config_get_str(c, to->kids[i], p, &a->mail_to[a->mail_to_count]) == 0)
                a->mail_to_count++;
        }
    } else if (to != NULL) {
        CONFIG_PROBLEM(c, to, "%s: expected an address or a list of addresses", p);
    }
    free(p);
}

static void
parse_alerts(struct config_ctx *c, const struct config_node *v, struct config_alerts *a)
{
    const struct config_node *n;

    config_check_keys(c, v, "alerts", alerts_keys, ARRAY_COUNT(alerts_keys));
    a->enabled = 1;
    config_opt_duration(c, v, "alerts", "every", 100, &a->every_ms);
    config_opt_duration(c, v, "alerts", "group", 0, &a->group_ms);
    config_opt_duration(c, v, "alerts", "min_interval", 0, &a->min_interval_ms);
    if ((n = config_node_get(v, "webhook")) != NULL)
        (void)config_get_secret(c, n, "alerts.webhook", &a->webhook);
    if ((n = config_node_get(v, "email")) != NULL && config_want_map(c, n, "alerts.email"))
        parse_email(c, n, "alerts.email", a);
    if (config_node_get(v, "webhook") == NULL && config_node_get(v, "email") == NULL)
        CONFIG_PROBLEM(c, v, "alerts: no sink; hint: add webhook: env:SLACK_WEBHOOK_URL, or email");
}

/* retention (v NULL when absent): how long processed rows are kept; the defaults first. */
static void
parse_retention(struct config_ctx *c, const struct config_node *v)
{
    struct config *cfg = c->cfg;

    cfg->keep_journal_ms = 30 * 86400000LL;
    cfg->keep_versions_ms = 90 * 86400000LL;
    cfg->keep_attempts_ms = 30 * 86400000LL;
    cfg->keep_inbox_ms = 90 * 86400000LL;
    cfg->keep_runs_ms = 30 * 86400000LL;
    if (!config_want_map(c, v, "retention"))
        return;
    config_check_keys(c, v, "retention", retention_keys, ARRAY_COUNT(retention_keys));
    config_opt_duration(c, v, "retention", "journal", 0, &cfg->keep_journal_ms);
    config_opt_duration(c, v, "retention", "versions", 0, &cfg->keep_versions_ms);
    config_opt_duration(c, v, "retention", "attempts", 0, &cfg->keep_attempts_ms);
    config_opt_duration(c, v, "retention", "inbox", 0, &cfg->keep_inbox_ms);
    config_opt_duration(c, v, "retention", "runs", 0, &cfg->keep_runs_ms);
}

/* health (v NULL when absent): when concord calls itself unhealthy (docs/operate.md). */
static void
parse_health(struct config_ctx *c, const struct config_node *v)
{
    struct config_health *h = &c->cfg->health;

    if (!config_want_map(c, v, "health"))
        return;
    config_check_keys(c, v, "health", health_keys, ARRAY_COUNT(health_keys));
    config_opt_duration(c, v, "health", "lag", 1000, &h->lag_ms);
    config_opt_int(c, v, "health", "inbox_growth", (struct config_range){1, INT32_MAX},
                   &h->inbox_growth);
    config_opt_duration(c, v, "health", "window", 1000, &h->window_ms);
    config_opt_duration(c, v, "health", "webhook_grace", 0, &h->webhook_grace_ms);
}

struct config *
config_schema_build(const struct config_node *root, const char *name, const char *base_dir,
                    unsigned flags, struct config_diags *d)
{
    struct config *cfg = xcalloc(1, sizeof(*cfg));
    struct config_ctx c = {
        .diags = d, .cfg = cfg, .base_dir = base_dir, .hint_budget = HINT_BUDGET, .flags = flags};
    char buf[64];

    cfg->path = xstrdup(name);
    cfg->listen = xstrdup("127.0.0.1:8480");
    cfg->store_url = xstrdup("sqlite:concord.db");
    cfg->tombstone_ttl_ms = 30 * 86400000LL;
    cfg->echo_window_ms = 600000;
    cfg->health = (struct config_health){300000, 10, 900000, 120000};
    if (root->kind != CONFIG_NODE_MAPPING) {
        CONFIG_PROBLEM(&c, root, "expected a mapping with systems, models and syncs, got %s",
                       config_node_show(root, buf, sizeof(buf)));
        return cfg;
    }
    config_check_keys(&c, root, "", top_keys, ARRAY_COUNT(top_keys));
    if (config_node_get(root, "listen") != NULL)
        parse_listen(&c, config_node_get(root, "listen"));
    parse_store(&c, config_node_get(root, "store"));
    config_opt_duration(&c, root, "", "tombstone_ttl", 0, &cfg->tombstone_ttl_ms);
    config_opt_duration(&c, root, "", "echo_window", 0, &cfg->echo_window_ms);
    parse_retention(&c, config_node_get(root, "retention"));
    cfg->alerts.every_ms = 30000;
    cfg->alerts.group_ms = 10000;
    cfg->alerts.min_interval_ms = 300000;
    if (config_want_map(&c, config_node_get(root, "alerts"), "alerts"))
        parse_alerts(&c, config_node_get(root, "alerts"), &cfg->alerts);
    parse_health(&c, config_node_get(root, "health"));
    if (config_node_get(root, "log") != NULL)
        parse_log(&c, config_node_get(root, "log"));
    if (config_node_get(root, "models") == NULL)
        config_missing(&c, root, "", "models");
    parse_models(&c, config_node_get(root, "models"));
    if (config_node_get(root, "systems") == NULL)
        config_missing(&c, root, "", "systems");
    config_parse_systems(&c, config_node_get(root, "systems"));
    config_parse_syncs(&c, config_node_get(root, "syncs"));
    if (config_node_get(root, "admin") != NULL)
        config_admin_parse(config_node_get(root, "admin"), cfg, base_dir, flags, d);
    config_automations_parse(root, cfg, base_dir, flags, d);
    return cfg;
}
