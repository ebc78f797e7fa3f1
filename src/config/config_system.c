/* SPDX-License-Identifier: MIT */

/*
 * systems.X: the defaults every system starts from, its kind (http,
 * sqlite, postgres, or a named kind that fills in what the vendor's API
 * fixes), base_url or the SQL kinds' database, timeouts, errors, and the
 * order of its sections: retry, auth, webhook, collections, rate limits,
 * breaker and delete guard, each parsed in its own file. A key that only
 * a named kind reads is refused on every other kind (profile_keys).
 */

#include "config/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"
#include "core/xmalloc.h"

static const char *const system_keys[] = {"kind",
                                          "base_url",
                                          "api_key",
                                          "webhook_secret",
                                          "path",
                                          "dsn",
                                          "timeout_ms",
                                          "max_in_flight",
                                          "retry",
                                          "auth",
                                          "webhook",
                                          "collections",
                                          "rate_limit",
                                          "rate_limited_status",
                                          "rate_limited_block",
                                          "breaker",
                                          "delete_guard",
                                          "errors",
                                          "username",
                                          "token",
                                          "cif",
                                          "email",
                                          "api_secret",
                                          "client_secret",
                                          "public_url",
                                          "password",
                                          "client_id",
                                          "refresh_token",
                                          "token_url",
                                          "authorize_url",
                                          "calendar",
                                          "push",
                                          "tenant",
                                          "user"};
static const char *const errors_keys[] = {"message", "in_ok"};
static const char *const system_kinds[] = {
    "http",  "sqlite",  "postgres", "stripe",          "smartbill",
    "oblio", "hubspot", "caldav",   "google_calendar", "microsoft_graph"};

/* The keys a named kind owns: an error on any other kind of system. */
struct profile_keys {
    enum config_profile profile;
    const char *kinds; /* for the message */
    const char *key;
};
static const struct profile_keys profile_keys[] = {
    {CONFIG_PROFILE_STRIPE, "kind stripe", "api_key"},
    {CONFIG_PROFILE_STRIPE, "kind stripe", "webhook_secret"},
    {CONFIG_PROFILE_SMARTBILL, "kinds smartbill and caldav", "username"},
    {CONFIG_PROFILE_CALDAV, "kinds smartbill and caldav", "username"},
    {CONFIG_PROFILE_SMARTBILL, "kinds smartbill and hubspot", "token"},
    {CONFIG_PROFILE_HUBSPOT, "kinds smartbill and hubspot", "token"},
    {CONFIG_PROFILE_SMARTBILL, "kinds smartbill and oblio", "cif"},
    {CONFIG_PROFILE_OBLIO, "kinds smartbill and oblio", "cif"},
    {CONFIG_PROFILE_OBLIO, "kind oblio", "email"},
    {CONFIG_PROFILE_OBLIO, "kind oblio", "api_secret"},
    {CONFIG_PROFILE_CALDAV, "kind caldav", "password"},
    {CONFIG_PROFILE_HUBSPOT, "kinds hubspot, google_calendar and microsoft_graph", "client_secret"},
    {CONFIG_PROFILE_GOOGLE_CALENDAR, "kinds hubspot, google_calendar and microsoft_graph",
     "client_secret"},
    {CONFIG_PROFILE_MICROSOFT_GRAPH, "kinds hubspot, google_calendar and microsoft_graph",
     "client_secret"},
    {CONFIG_PROFILE_HUBSPOT, "kinds hubspot, google_calendar and microsoft_graph", "public_url"},
    {CONFIG_PROFILE_GOOGLE_CALENDAR, "kinds hubspot, google_calendar and microsoft_graph",
     "public_url"},
    {CONFIG_PROFILE_MICROSOFT_GRAPH, "kinds hubspot, google_calendar and microsoft_graph",
     "public_url"},
    {CONFIG_PROFILE_GOOGLE_CALENDAR, "kinds google_calendar and microsoft_graph", "client_id"},
    {CONFIG_PROFILE_MICROSOFT_GRAPH, "kinds google_calendar and microsoft_graph", "client_id"},
    {CONFIG_PROFILE_GOOGLE_CALENDAR, "kinds google_calendar and microsoft_graph", "refresh_token"},
    {CONFIG_PROFILE_MICROSOFT_GRAPH, "kinds google_calendar and microsoft_graph", "refresh_token"},
    {CONFIG_PROFILE_GOOGLE_CALENDAR, "kinds google_calendar and microsoft_graph", "token_url"},
    {CONFIG_PROFILE_MICROSOFT_GRAPH, "kinds google_calendar and microsoft_graph", "token_url"},
    {CONFIG_PROFILE_GOOGLE_CALENDAR, "kinds google_calendar and microsoft_graph", "authorize_url"},
    {CONFIG_PROFILE_MICROSOFT_GRAPH, "kinds google_calendar and microsoft_graph", "authorize_url"},
    {CONFIG_PROFILE_GOOGLE_CALENDAR, "kinds google_calendar and microsoft_graph", "calendar"},
    {CONFIG_PROFILE_MICROSOFT_GRAPH, "kinds google_calendar and microsoft_graph", "calendar"},
    {CONFIG_PROFILE_GOOGLE_CALENDAR, "kinds google_calendar and microsoft_graph", "push"},
    {CONFIG_PROFILE_MICROSOFT_GRAPH, "kinds google_calendar and microsoft_graph", "push"},
    {CONFIG_PROFILE_MICROSOFT_GRAPH, "kind microsoft_graph", "tenant"},
    {CONFIG_PROFILE_MICROSOFT_GRAPH, "kind microsoft_graph", "user"},
};

static void
system_defaults(struct config_system *s, const char *name)
{
    s->name = xstrdup(name);
    s->kind = CONFIG_SYSTEM_HTTP;
    s->timeout_ms = 10000;
    s->max_in_flight = 8;
    s->retry = retry_policy_default();
    s->rate_limit.rate_per_s = 0;
    s->rate_limit.burst = 1;
    s->rate_limit.block_ms = 60000;
    s->breaker = breaker_policy_default();
    s->breaker_enabled = 1;
    s->delete_guard_enabled = 1;
    s->delete_guard_max_count = 50;
    s->delete_guard_max_share = 0.25;
    s->delete_guard_min_count = 10;
    s->delete_guard_window_ms = 300000;
    s->webhook.path = xasprintf("/webhooks/%s", name);
    s->webhook.max_body_bytes = 1048576;
    s->webhook.signature.scheme = xstrdup("hmac");
    s->webhook.signature.encoding = CONFIG_SIG_HEX;
    s->webhook.signature.tolerance_s = 300;
    s->webhook.signature.signed_template = xstrdup("{body}");
}

void
config_parse_base_url(struct config_ctx *c, const struct config_node *v, const char *path,
                      struct config_system *s)
{
    char *p = config_join(path, "base_url");
    size_t len, host;

    if (config_get_str(c, v, p, &s->base_url) == 0) {
        host = strncmp(s->base_url, "https://", 8) == 0  ? 8
               : strncmp(s->base_url, "http://", 7) == 0 ? 7
                                                         : 0;
        len = strlen(s->base_url);
        while (host > 0 && len > host && s->base_url[len - 1] == '/')
            s->base_url[--len] = '\0';
        if (host == 0 || len == host)
            CONFIG_PROBLEM(c, v, "%s: expected a URL that starts with http:// or https://", p);
    }
    free(p);
}

/* Section number i of parse_system()'s list. */
static void
parse_section(struct config_ctx *c, size_t i, const struct config_node *sub, const char *p,
              struct config_system *s)
{
    switch (i) {
    case 0:
        config_parse_retry(c, sub, p, s);
        break;
    case 1:
        config_parse_auth(c, sub, p, s);
        break;
    case 2:
        config_parse_webhook(c, sub, p, &s->webhook);
        break;
    case 3:
        config_parse_collections(c, sub, p, s);
        break;
    case 4:
        config_parse_rate_limit(c, sub, p, &s->rate_limit);
        break;
    case 5:
        config_parse_limited_status(c, sub, p, &s->rate_limit);
        break;
    case 6:
        config_parse_breaker(c, sub, p, s);
        break;
    default:
        config_parse_delete_guard(c, sub, p, s);
        break;
    }
}

/* The name a named kind is written with ("smartbill"). */
const char *
config_profile_name(enum config_profile profile)
{
    switch (profile) {
    case CONFIG_PROFILE_STRIPE:
        return system_kinds[3];
    case CONFIG_PROFILE_SMARTBILL:
        return system_kinds[4];
    case CONFIG_PROFILE_OBLIO:
        return system_kinds[5];
    case CONFIG_PROFILE_HUBSPOT:
        return system_kinds[6];
    case CONFIG_PROFILE_CALDAV:
        return system_kinds[7];
    case CONFIG_PROFILE_GOOGLE_CALENDAR:
        return system_kinds[8];
    case CONFIG_PROFILE_MICROSOFT_GRAPH:
        return system_kinds[9];
    case CONFIG_PROFILE_NONE:
        break;
    }
    return system_kinds[0];
}

/* The start of a named kind's http system: base_url unless given, auth refused. */
void
config_profile_base(struct config_ctx *c, const struct config_node *v, const char *path,
                    struct config_system *s, enum config_profile profile, const char *base_url,
                    const char *owner)
{
    s->profile = profile;
    if (config_node_get(v, "base_url") != NULL)
        config_parse_base_url(c, config_node_get(v, "base_url"), path, s);
    else
        s->base_url = xstrdup(base_url);
    if (config_node_key(v, "auth") != NULL)
        CONFIG_PROBLEM(c, config_node_key(v, "auth"),
                       "%s.auth: a %s system authenticates with its %s; hint: "
                       "remove auth",
                       path, config_profile_name(profile), owner);
}

/* systems.X of kind sqlite (path: the database file) or postgres (dsn: a
 * secret reference to a libpq conninfo). */
static void
parse_sql_system(struct config_ctx *c, const struct config_node *v, const char *path,
                 struct config_system *s)
{
    const struct config_node *n;
    char *p;

    s->base_url = xstrdup("");
    if (config_node_key(v, "base_url") != NULL)
        CONFIG_PROBLEM(c, config_node_key(v, "base_url"),
                       "%s.base_url: a %s system has no base_url; hint: %s", path,
                       s->kind == CONFIG_SYSTEM_SQLITE ? "sqlite" : "postgres",
                       s->kind == CONFIG_SYSTEM_SQLITE ? "path: data.db" : "dsn: env:PG_DSN");
    if (s->kind == CONFIG_SYSTEM_SQLITE) {
        if (config_node_key(v, "dsn") != NULL)
            CONFIG_PROBLEM(c, config_node_key(v, "dsn"),
                           "%s.dsn: dsn is for kind postgres; hint: path: data.db", path);
        if ((n = config_node_get(v, "path")) == NULL) {
            config_missing(c, v, path, "path");
            return;
        }
        if (n->kind != CONFIG_NODE_SCALAR || config_node_is_null(n) || n->value[0] == '\0') {
            CONFIG_PROBLEM(c, n, "%s.path: expected the database file, such as data.db", path);
            return;
        }
        if (n->value[0] == '/' || c->base_dir == NULL)
            s->db_path = xstrdup(n->value);
        else
            s->db_path =
                xasprintf("%s%s%s", c->base_dir,
                          c->base_dir[strlen(c->base_dir) - 1] == '/' ? "" : "/", n->value);
        return;
    }
    if (config_node_key(v, "path") != NULL)
        CONFIG_PROBLEM(c, config_node_key(v, "path"),
                       "%s.path: path is for kind sqlite; hint: dsn: env:PG_DSN (a libpq conninfo)",
                       path);
    if ((n = config_node_get(v, "dsn")) == NULL) {
        config_missing(c, v, path, "dsn");
        return;
    }
    p = config_join(path, "dsn");
    (void)config_get_secret(c, n, p, &s->dsn);
    free(p);
}

/* kind: http, sqlite, postgres, or a named kind, whose own keys config_<kind>_system() reads. */
static void
parse_kind(struct config_ctx *c, const struct config_node *v, const char *path,
           struct config_system *s)
{
    if (config_node_get(v, "kind") == NULL)
        config_missing(c, v, path, "kind");
    int k = config_opt_choice(c, v, path, "kind", system_kinds, ARRAY_COUNT(system_kinds));
    if (k == 3) /* stripe: an http system with Stripe's ways */
        config_stripe_system(c, v, path, s);
    else if (k == 4)
        config_smartbill_system(c, v, path, s);
    else if (k == 5)
        config_oblio_system(c, v, path, s);
    else if (k == 6)
        config_hubspot_system(c, v, path, s);
    else if (k == 7)
        config_caldav_system(c, v, path, s);
    else if (k == 8)
        config_gcal_system(c, v, path, s);
    else if (k == 9)
        config_graph_system(c, v, path, s);
    else if (k > 0)
        s->kind = (enum config_system_kind)(CONFIG_SYSTEM_HTTP + k);
}

/* The keys of named kinds that s's kind does not own, each reported once. */
static void
refuse_profile_keys(struct config_ctx *c, const struct config_node *v, const char *path,
                    const struct config_system *s)
{
    for (size_t i = 0; i < ARRAY_COUNT(profile_keys); i++) {
        const struct profile_keys *pk = &profile_keys[i];
        int owned = 0;

        for (size_t j = 0; j < ARRAY_COUNT(profile_keys); j++)
            owned |=
                strcmp(profile_keys[j].key, pk->key) == 0 && profile_keys[j].profile == s->profile;
        if (!owned && config_node_key(v, pk->key) != NULL &&
            (i == 0 || strcmp(profile_keys[i - 1].key, pk->key) != 0))
            CONFIG_PROBLEM(c, config_node_key(v, pk->key),
                           "%s.%s: %s is for %s; hint: an http system sets auth and webhook", path,
                           pk->key, pk->key, pk->kinds);
    }
}

/* Where a plain http system is (base_url) or a SQL one's database; a named kind did its own. */
static void
parse_address(struct config_ctx *c, const struct config_node *v, const char *path,
              struct config_system *s)
{
    if (s->profile != CONFIG_PROFILE_NONE) {
        /* config_<kind>_system() did the kind's part */
    } else if (s->kind == CONFIG_SYSTEM_HTTP) {
        if (config_node_get(v, "base_url") == NULL)
            config_missing(c, v, path, "base_url");
        else
            config_parse_base_url(c, config_node_get(v, "base_url"), path, s);
        for (size_t i = 0; i < 2; i++) {
            static const char *const sql_keys[] = {"path", "dsn"};

            if (config_node_key(v, sql_keys[i]) != NULL)
                CONFIG_PROBLEM(
                    c, config_node_key(v, sql_keys[i]),
                    "%s.%s: %s is for kinds sqlite and postgres; hint: an http system has "
                    "base_url",
                    path, sql_keys[i], sql_keys[i]);
        }
    } else {
        parse_sql_system(c, v, path, s);
    }
}

/* errors: where the system's answers say what went wrong. */
static void
parse_errors(struct config_ctx *c, const struct config_node *v, const char *path,
             struct config_system *s)
{
    char *p = config_join(path, "errors");

    if (config_want_map(c, v, p)) {
        config_check_keys(c, v, p, errors_keys, ARRAY_COUNT(errors_keys));
        config_opt_str(c, v, p, "message", &s->errors.message_path);
        config_opt_str(c, v, p, "in_ok", &s->errors.in_ok_path);
    }
    free(p);
}

/* The sections of parse_section(), in its order. */
static void
parse_sections(struct config_ctx *c, const struct config_node *v, const char *path,
               struct config_system *s)
{
    static const char *const sections[] = {"retry",       "auth",        "webhook",
                                           "collections", "rate_limit",  "rate_limited_status",
                                           "breaker",     "delete_guard"};

    for (size_t i = 0; i < ARRAY_COUNT(sections); i++) {
        const struct config_node *sub = config_node_get(v, sections[i]);
        char *p;

        /* A named kind's auth is its credentials (reported if given); a
         * caldav system's may be either. */
        if (sub == NULL ||
            (s->profile != CONFIG_PROFILE_NONE &&
             !(s->profile == CONFIG_PROFILE_CALDAV && s->auth_header_count == 0) && i == 1))
            continue;
        p = config_join(path, sections[i]);
        parse_section(c, i, sub, p, s);
        free(p);
    }
}

static void
parse_system(struct config_ctx *c, const struct config_node *v, const char *path,
             struct config_system *s)
{
    const struct config_node *sub;
    int64_t in_flight;

    if (!config_want_map(c, v, path))
        return;
    config_check_keys(c, v, path, system_keys, ARRAY_COUNT(system_keys));
    parse_kind(c, v, path, s);
    refuse_profile_keys(c, v, path, s);
    parse_address(c, v, path, s);
    config_opt_int(c, v, path, "timeout_ms", (struct config_range){1, INT32_MAX}, &s->timeout_ms);
    in_flight = s->max_in_flight; /* the kind's default (parse_kind()) */
    config_opt_int(c, v, path, "max_in_flight", (struct config_range){1, 1024}, &in_flight);
    s->max_in_flight = (int)in_flight;
    if (s->kind != CONFIG_SYSTEM_HTTP && config_node_get(v, "max_in_flight") == NULL)
        s->max_in_flight = 1024; /* rows per batch: one transaction each */
    config_opt_duration(c, v, path, "rate_limited_block", 1, &s->rate_limit.block_ms);
    if ((sub = config_node_get(v, "errors")) != NULL)
        parse_errors(c, sub, path, s);
    parse_sections(c, v, path, s);
    if (s->profile == CONFIG_PROFILE_STRIPE && s->retry_stop_header_name == NULL) {
        s->retry_stop_header_name = xstrdup("Stripe-Should-Retry");
        s->retry_stop_header_value = xstrdup("false");
    }
}

static void
check_webhook_paths(struct config_ctx *c, const struct config_node *systems)
{
    const struct config *cfg = c->cfg;

    for (size_t i = 0; i < cfg->system_count; i++) {
        for (size_t j = 0; j < i && cfg->systems[i].webhook.enabled; j++) {
            if (!cfg->systems[j].webhook.enabled ||
                strcmp(cfg->systems[i].webhook.path, cfg->systems[j].webhook.path) != 0)
                continue;
            CONFIG_PROBLEM(
                c, systems->kids[2 * i], "systems.%s: webhook path %s is used by system %s too",
                cfg->systems[i].name, cfg->systems[i].webhook.path, cfg->systems[j].name);
            break;
        }
    }
}

void
config_parse_systems(struct config_ctx *c, const struct config_node *v)
{
    struct config *cfg = c->cfg;
    size_t n, ncol = 0;

    if (!config_want_map(c, v, "systems"))
        return;
    n = v->kid_count / 2;
    if (n == 0)
        CONFIG_PROBLEM(c, v, "systems: at least one system is required");
    /* Sized once, so the borrowed pointers of collections and syncs stay valid. */
    for (size_t i = 0; i < n; i++) {
        const struct config_node *cols = config_node_get(v->kids[2 * i + 1], "collections");

        if (cols != NULL && cols->kind == CONFIG_NODE_MAPPING)
            ncol += cols->kid_count / 2;
    }
    cfg->systems = xcalloc(n + 1, sizeof(*cfg->systems));
    cfg->collections = xcalloc(ncol + 1, sizeof(*cfg->collections));
    for (size_t i = 0; i < n; i++) {
        const struct config_node *k = v->kids[2 * i];

        config_check_name(c, k, "systems", "system");
        system_defaults(&cfg->systems[i], k->value);
        cfg->systems[i].pos = (struct config_pos){k->line, k->col};
    }
    cfg->system_count = n;
    for (size_t i = 0; i < n; i++) {
        char *p = config_join("systems", v->kids[2 * i]->value);

        parse_system(c, v->kids[2 * i + 1], p, &cfg->systems[i]);
        free(p);
    }
    check_webhook_paths(c, v);
}
