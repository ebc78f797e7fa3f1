/* SPDX-License-Identifier: MIT */

/*
 * The schema: walks the node tree of config_parse.c with a table of keys per
 * section and fills a struct config. Every problem is recorded with the
 * position of the node it is about and the walk goes on, so one run of
 * `concord check` lists them all (a missing key points at the mapping that
 * lacks it). Messages start with the dotted key path
 * ("systems.crm.retry.cap_ms: ...") and never quote a secret: scalars under
 * secret keys are not shown at all.
 *
 * Order matters for references: models first (collections name them), then
 * systems with their collections, then syncs (they name both). docs/config.md
 * is the reference of every key handled here.
 */

#include "config/config.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <jq.h>

#include "config/config_int.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/secret.h"
#include "core/xmalloc.h"

/* How many edit distances "did you mean" may compute in one load, so a
 * config with thousands of bad references (a fuzzer's) stays fast. */
#define HINT_BUDGET 200000

struct config_ctx {
    struct config_diags *diags;
    struct config *cfg;
    const char *base_dir;
    size_t hint_budget;
    unsigned flags; /* CONFIG_LOAD_* */
};

#define CONFIG_PROBLEM(c, n, ...) config_diag_add((c)->diags, (n)->line, (n)->col, __VA_ARGS__)

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

/* The collections the smartbill and oblio kinds know. */
static const char *const smartbill_collections[] = {"invoices", "proformas", "payments"};
static const char *const oblio_collections[] = {"invoices", "proformas", "notices"};
/*
 * The collections the stripe kind knows: where the API keeps them, the
 * prefix of their event types, the event that deletes one (NULL: none),
 * and whether concord writes them (customers) or only reads them.
 */
struct stripe_kind {
    const char *name;
    const char *path;
    const char *events;
    const char *deleted;
    int writable;
};
static const struct stripe_kind stripe_kinds[] = {
    {"customers", "/v1/customers", "customer.", "customer.deleted", 1},
    {"payment_intents", "/v1/payment_intents", "payment_intent.", NULL, 0},
    {"charges", "/v1/charges", "charge.", NULL, 0},
    {"invoices", "/v1/invoices", "invoice.", "invoice.deleted", 0},
    {"checkout_sessions", "/v1/checkout/sessions", "checkout.session.", NULL, 0},
};
static const char *const soft_delete_keys[] = {"column", "value"};
static const char *const retry_keys[] = {"max_attempts", "base_ms", "cap_ms",     "jitter",
                                         "delays",       "max_age", "stop_header"};
static const char *const rate_limit_keys[] = {"rate", "per", "burst"};
static const char *const breaker_keys[] = {"failures", "failure_rate", "min_requests", "window",
                                           "cooldown"};
static const char *const delete_guard_keys[] = {"max_count", "max_share", "min_count", "window"};
static const char *const auth_keys[] = {"headers", "bearer", "basic", "oauth2"};
static const char *const oauth2_keys[] = {"grant",     "token_url",     "authorize_url",
                                          "client_id", "client_secret", "refresh_token",
                                          "scope",     "credentials",   "renew_before"};
static const char *const oauth2_grants[] = {"client_credentials", "refresh_token"};
static const char *const oauth2_credentials[] = {"body", "basic"};
static const char *const basic_keys[] = {"username", "password"};
static const char *const webhook_keys[] = {"path", "delivery_id_header", "max_body_bytes",
                                           "signature", "reply_with"};
static const char *const sig_keys[] = {"scheme",      "header", "secret",
                                       "encoding",    "prefix", "timestamp_header",
                                       "tolerance_s", "signed", "url"};
/* In the order of enum config_sig_scheme; sig_scheme_reads says what each reads. */
static const char *const sig_schemes[] = {"hmac",   "stripe",  "standard-webhooks",
                                          "github", "shopify", "hubspot-v3"};
static const char *const sig_scheme_reads[] = {
    NULL,
    "Stripe-Signature (t=...,v1=hex)",
    "webhook-id, webhook-timestamp and webhook-signature (v1,base64)",
    "X-Hub-Signature-256 (sha256=hex)",
    "X-Shopify-Hmac-Sha256 (base64)",
    "X-HubSpot-Signature-v3 (base64) and X-HubSpot-Request-Timestamp",
};
_Static_assert(ARRAY_COUNT(sig_schemes) == ARRAY_COUNT(sig_scheme_reads),
               "one description per signature scheme");
_Static_assert(ARRAY_COUNT(sig_schemes) == CONFIG_SIG_SCHEME_HUBSPOT_V3,
               "one name per enum config_sig_scheme value");
static const char *const sig_encodings[] = {"hex", "base64"};
static const char *const collection_keys[] = {"model",
                                              "id",
                                              "record",
                                              "match",
                                              "deleted_when",
                                              "map_in",
                                              "map_out",
                                              "create",
                                              "update",
                                              "delete",
                                              "created_id",
                                              "created_id_from",
                                              "idempotency_header",
                                              "idempotency_field",
                                              "lookup",
                                              "lookup_result",
                                              "restore",
                                              "numbering",
                                              "on_delete",
                                              "archive",
                                              "updated_at",
                                              "on_conflict",
                                              "poll",
                                              "hint",
                                              "deleted_id",
                                              "string_values",
                                              "body",
                                              "table",
                                              "key",
                                              "soft_delete",
                                              "query",
                                              "calendar"};
static const char *const hint_modes[] = {"poll"};
static const char *const created_id_froms[] = {"answer", "request"};
static const char *const numbering_keys[] = {"next",         "items",  "series",
                                             "series_field", "number", "confirm"};
static const char *const body_kinds[] = {"json", "form"};
/* "cancel" (kind caldav) is archive with {status: cancelled}: parse_on_delete(). */
static const char *const delete_modes[] = {"delete", "archive", "ignore", "cancel"};
static const char *const poll_keys[] = {"every", "cron", "jitter",    "list",  "items",
                                        "each",  "page", "reconcile", "cursor"};
static const char *const cursor_keys[] = {
    "kind",  "param",   "field", "format", "overlap", "token",   "resync_status", "next",
    "delta", "removed", "list",  "object", "type",    "deleted", "body",          "window"};
static const char *const cursor_kinds[] = {"none",       "updated_since", "sync_token",
                                           "delta_link", "events",        "search"};
static const char *const conflict_keys[] = {"status", "id", "id_after"};
static const char *const cursor_formats[] = {"ms", "s", "iso"};
static const char *const page_keys[] = {"kind", "param", "size_param", "size", "next", "has_more"};
static const char *const page_kinds[] = {"none", "number", "offset", "cursor", "link"};
static const char *const entry_keys[] = {"path", "jq", "const", "default", "values", "else"};
static const char *const model_keys[] = {"fields"};
static const char *const type_names[] = {"string",  "integer",   "decimal",
                                         "boolean", "timestamp", "date"};
static const char *const sync_keys[] = {"model",    "origin",  "collections", "owners",
                                        "conflict", "prefer",  "skew",        "write_back",
                                        "match",    "filters", "automations"};
static const char *const conflict_policies[] = {"manual", "owner", "newest", "prefer"};
static const char *const match_keys[] = {"field", "normalize", "country"};
static const char *const normalize_names[] = {"exact", "text", "email", "phone", "vat"};
static const char *const http_methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};

/* ---- Small helpers over nodes ---- */

static char *
config_join(const char *parent, const char *key)
{
    return parent[0] == '\0' ? xstrdup(key) : xasprintf("%s.%s", parent, key);
}

static const struct config_node *
config_node_get(const struct config_node *map, const char *key)
{
    if (map == NULL || map->kind != CONFIG_NODE_MAPPING)
        return NULL;
    for (size_t i = 0; i + 1 < map->kid_count; i += 2) {
        if (strcmp(map->kids[i]->value, key) == 0)
            return map->kids[i + 1];
    }
    return NULL;
}

/* The key node of key in map, for problems about the key itself; NULL if absent. */
static const struct config_node *
config_node_key(const struct config_node *map, const char *key)
{
    if (map == NULL || map->kind != CONFIG_NODE_MAPPING)
        return NULL;
    for (size_t i = 0; i + 1 < map->kid_count; i += 2) {
        if (strcmp(map->kids[i]->value, key) == 0)
            return map->kids[i];
    }
    return NULL;
}

static int
config_node_is_null(const struct config_node *n)
{
    return n->kind == CONFIG_NODE_SCALAR && !n->is_quoted &&
           (n->value[0] == '\0' || strcmp(n->value, "~") == 0 || strcmp(n->value, "null") == 0);
}

/* How a node reads in a message: a value is quoted and cut, a collection named. */
static const char *
config_node_show(const struct config_node *n, char *out, size_t len)
{
    if (n->kind == CONFIG_NODE_MAPPING)
        return "a mapping";
    if (n->kind == CONFIG_NODE_SEQUENCE)
        return "a list";
    if (config_node_is_null(n))
        return "nothing";
    if (n->len > 40)
        (void)snprintf(out, len, "\"%.40s...\"", n->value);
    else
        (void)snprintf(out, len, "\"%s\"", n->value);
    return out;
}

static int
config_in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s, list[i]) == 0)
            return (int)i;
    }
    return -1;
}

/* The name closest to word when it is close enough to be a typo, or NULL. */
static const char *
closest(struct config_ctx *c, const char *word, const char *const *names, size_t n)
{
    size_t best = SIZE_MAX, wlen = strlen(word);
    const char *pick = NULL;

    for (size_t i = 0; i < n && c->hint_budget > 0; i++, c->hint_budget--) {
        size_t d = config_edit_distance(word, names[i]);

        if (d < best) {
            best = d;
            pick = names[i];
        }
    }
    if (pick == NULL || best == 0 || best > (wlen >= 4 ? 2U : 1U) || best >= strlen(pick))
        return NULL;
    return pick;
}

/* "; hint: did you mean "x"?" or "" when nothing is close. */
static const char *
config_did_you_mean(struct config_ctx *c, const char *word, const char *const *names, size_t n,
                    char *out, size_t len)
{
    const char *pick = closest(c, word, names, n);

    if (pick == NULL)
        return "";
    (void)snprintf(out, len, "; hint: did you mean \"%s\"?", pick);
    return out;
}

static void
config_check_keys(struct config_ctx *c, const struct config_node *map, const char *path,
                  const char *const *allowed, size_t n)
{
    for (size_t i = 0; i + 1 < map->kid_count; i += 2) {
        const struct config_node *k = map->kids[i];
        char hint[1100], list[1024] = "";
        const char *pick;

        if (config_in_list(k->value, allowed, n) >= 0)
            continue;
        pick = closest(c, k->value, allowed, n);
        if (pick != NULL) {
            (void)snprintf(hint, sizeof(hint), "did you mean \"%s\"?", pick);
        } else {
            size_t used = 0;

            for (size_t j = 0; j < n && used < sizeof(list); j++)
                used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
                                         j > 0 ? ", " : "", allowed[j]);
            (void)snprintf(hint, sizeof(hint), "expected one of %.1000s", list);
        }
        if (path[0] == '\0')
            CONFIG_PROBLEM(c, k, "unknown key \"%s\"; hint: %s", k->value, hint);
        else
            CONFIG_PROBLEM(c, k, "%s: unknown key \"%s\"; hint: %s", path, k->value, hint);
    }
}

/* Whether n is a mapping; if not, says so. With n NULL, says nothing. */
static int
config_want_map(struct config_ctx *c, const struct config_node *n, const char *path)
{
    char buf[64];

    if (n == NULL)
        return 0;
    if (n->kind == CONFIG_NODE_MAPPING)
        return 1;
    CONFIG_PROBLEM(c, n, "%s: expected a mapping, got %s", path,
                   config_node_show(n, buf, sizeof(buf)));
    return 0;
}

static void
config_missing(struct config_ctx *c, const struct config_node *parent, const char *path,
               const char *key)
{
    if (path[0] == '\0')
        CONFIG_PROBLEM(c, parent, "missing required key \"%s\"", key);
    else
        CONFIG_PROBLEM(c, parent, "%s: missing required key \"%s\"", path, key);
}

static int
config_get_str(struct config_ctx *c, const struct config_node *n, const char *path, char **out)
{
    char buf[64];

    if (n->kind != CONFIG_NODE_SCALAR || config_node_is_null(n)) {
        CONFIG_PROBLEM(c, n, "%s: expected a string, got %s", path,
                       config_node_show(n, buf, sizeof(buf)));
        return -1;
    }
    free(*out);
    *out = xstrdup(n->value);
    return 0;
}

/* The string at key of map into *out, when the key is there. */
static void
config_opt_str(struct config_ctx *c, const struct config_node *map, const char *path,
               const char *key, char **out)
{
    const struct config_node *v = config_node_get(map, key);
    char *p;

    if (v == NULL)
        return;
    p = config_join(path, key);
    (void)config_get_str(c, v, p, out);
    free(p);
}

/* The integers a key accepts, both ends included. */
struct config_range {
    int64_t lo;
    int64_t hi;
};

static int
config_get_int(struct config_ctx *c, const struct config_node *n, const char *path,
               struct config_range r, int64_t *out)
{
    int64_t lo = r.lo, hi = r.hi;
    char buf[64];
    char *end;
    long long v;

    if (n->kind != CONFIG_NODE_SCALAR || config_node_is_null(n)) {
        CONFIG_PROBLEM(c, n, "%s: expected an integer, got %s", path,
                       config_node_show(n, buf, sizeof(buf)));
        return -1;
    }
    errno = 0;
    v = strtoll(n->value, &end, 10);
    if (*end != '\0' || end == n->value || n->value[0] == ' ') {
        CONFIG_PROBLEM(c, n, "%s: expected an integer, got %s", path,
                       config_node_show(n, buf, sizeof(buf)));
        return -1;
    }
    if (errno == ERANGE || v < lo || v > hi) {
        /* The value is all digits here: it needs no quotes. */
        if (hi >= INT32_MAX)
            CONFIG_PROBLEM(c, n, "%s: %.30s is out of range; hint: must be at least %lld", path,
                           n->value, (long long)lo);
        else
            CONFIG_PROBLEM(c, n, "%s: %.30s is out of range; hint: must be between %lld and %lld",
                           path, n->value, (long long)lo, (long long)hi);
        return -1;
    }
    *out = v;
    return 0;
}

static void
config_opt_int(struct config_ctx *c, const struct config_node *map, const char *path,
               const char *key, struct config_range r, int64_t *out)
{
    const struct config_node *v = config_node_get(map, key);
    char *p;

    if (v == NULL)
        return;
    p = config_join(path, key);
    (void)config_get_int(c, v, p, r, out);
    free(p);
}

/* A YAML boolean at key of map (unquoted true or false) into *out, when the key is there. */
static void
config_opt_bool(struct config_ctx *c, const struct config_node *map, const char *path,
                const char *key, int *out)
{
    const struct config_node *v = config_node_get(map, key);
    char buf[64];

    if (v == NULL)
        return;
    if (v->kind == CONFIG_NODE_SCALAR && !v->is_quoted &&
        (strcmp(v->value, "true") == 0 || strcmp(v->value, "false") == 0)) {
        *out = strcmp(v->value, "true") == 0;
        return;
    }
    CONFIG_PROBLEM(c, v, "%s.%s: expected true or false, got %s", path, key,
                   config_node_show(v, buf, sizeof(buf)));
}

/* ---- Durations and numbers ---- */

int
config_duration_ms(const char *s, int64_t *out_ms)
{
    static const struct {
        const char *name;
        int64_t ms;
    } units[] = {{"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    int64_t v = 0;
    const char *p = s;

    if (s == NULL || !(*p >= '0' && *p <= '9'))
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (INT64_MAX / 4 - (*p - '0')) / 10)
            return -1;
        v = v * 10 + (*p - '0');
    }
    for (size_t i = 0; i < ARRAY_COUNT(units); i++) {
        if (strcmp(p, units[i].name) != 0)
            continue;
        if (v > INT64_MAX / 4 / units[i].ms)
            return -1;
        *out_ms = v * units[i].ms;
        return 0;
    }
    return -1;
}

int
config_now_offset(const char *s, size_t len, int64_t *out_ms)
{
    char text[40];
    int64_t v;

    if (len < 3 || len >= sizeof(text) || strncmp(s, "now", 3) != 0)
        return -1;
    if (len == 3) {
        *out_ms = 0;
        return 0;
    }
    if (s[3] != '-' && s[3] != '+')
        return -1;
    (void)snprintf(text, sizeof(text), "%.*s", (int)(len - 4), s + 4);
    if (config_duration_ms(text, &v) == -1)
        return -1;
    *out_ms = s[3] == '-' ? -v : v;
    return 0;
}

/* Every "{...}" of a list path is a time (config_now_offset); else a problem at n. */
static void
check_list_times(struct config_ctx *c, const struct config_node *n, const char *path,
                 const char *list)
{
    for (const char *p = strchr(list, '{'); p != NULL; p = strchr(p + 1, '{')) {
        const char *end = strchr(p, '}');
        int64_t off;

        if (end == NULL || config_now_offset(p + 1, (size_t)(end - p - 1), &off) == -1) {
            int len = end != NULL && end - p < 40 ? (int)(end - p + 1) : 40;

            CONFIG_PROBLEM(
                c, n,
                "%s: a list may hold only times such as {now}, {now-30d} or {now+365d}; got "
                "\"%.*s\"; hint: units ms, s, m, h, d",
                path, len, p);
            return;
        }
        p = end;
    }
}

/* A duration of at least lo ms at n into *out; says why not at n. */
static int
config_get_duration(struct config_ctx *c, const struct config_node *n, const char *path, int64_t lo,
                    int64_t *out)
{
    char buf[64];
    int64_t v;

    if (n->kind != CONFIG_NODE_SCALAR || config_node_is_null(n) ||
        config_duration_ms(n->value, &v) == -1) {
        CONFIG_PROBLEM(c, n,
                       "%s: expected a duration such as 250ms, 5s, 5m, 2h or 1d (a bare number is "
                       "milliseconds), got %s",
                       path, config_node_show(n, buf, sizeof(buf)));
        return -1;
    }
    if (v < lo) {
        CONFIG_PROBLEM(c, n, "%s: %s is too short; hint: must be at least %lld ms", path,
                       config_node_show(n, buf, sizeof(buf)), (long long)lo);
        return -1;
    }
    *out = v;
    return 0;
}

static void
config_opt_duration(struct config_ctx *c, const struct config_node *map, const char *path,
                    const char *key, int64_t lo, int64_t *out)
{
    const struct config_node *v = config_node_get(map, key);
    char *p;

    if (v == NULL)
        return;
    p = config_join(path, key);
    (void)config_get_duration(c, v, p, lo, out);
    free(p);
}

/* A finite number from lo to hi (both included) at n; what says the range in the message. */
static int
config_get_number(struct config_ctx *c, const struct config_node *n, const char *path, double lo,
                  double hi, const char *what, double *out)
{
    char buf[64], *end = NULL;
    double d = 0;

    errno = 0;
    if (n->kind == CONFIG_NODE_SCALAR && !config_node_is_null(n))
        d = strtod(n->value, &end);
    if (end == NULL || end == n->value || *end != '\0' || errno != 0 || n->value[0] == ' ' ||
        !(d >= lo && d <= hi)) {
        CONFIG_PROBLEM(c, n, "%s: expected %s, got %s", path, what,
                       config_node_show(n, buf, sizeof(buf)));
        return -1;
    }
    *out = d;
    return 0;
}

/* The index of the value of key among choices, or -1 (reported unless absent). */
static int
config_opt_choice(struct config_ctx *c, const struct config_node *map, const char *path,
                  const char *key, const char *const *choices, size_t n)
{
    const struct config_node *v = config_node_get(map, key);
    char buf[64], list[128] = "", hint[96];
    size_t used = 0;
    int i;

    if (v == NULL)
        return -1;
    if (v->kind == CONFIG_NODE_SCALAR && (i = config_in_list(v->value, choices, n)) >= 0)
        return i;
    for (size_t j = 0; j < n && used < sizeof(list); j++)
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", j > 0 ? ", " : "",
                                 choices[j]);
    CONFIG_PROBLEM(c, v, "%s.%s: expected one of %s, got %s%s", path, key, list,
                   config_node_show(v, buf, sizeof(buf)),
                   v->kind == CONFIG_NODE_SCALAR
                       ? config_did_you_mean(c, v->value, choices, n, hint, sizeof(hint))
                       : "");
    return -1;
}

static int
name_ok(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s != '\0'; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return 0;
    }
    return 1;
}

/* Names of systems, collections and models go into "s.c" and URLs. */
static void
config_check_name(struct config_ctx *c, const struct config_node *k, const char *path,
                  const char *what)
{
    if (!name_ok(k->value))
        CONFIG_PROBLEM(c, k, "%s: %s name \"%.64s\" may hold only letters, digits, \"_\" and \"-\"",
                       path, what, k->value);
}

/* RFC 9110 §5.6.2: a header name is a token. */
static int
config_header_name_ok(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s != '\0'; s++) {
        if (*s <= ' ' || *s >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", *s) != NULL)
            return 0;
    }
    return 1;
}

/* ---- jq ---- */

struct jq_msg {
    char text[200];
    int have;
};

/* libjq reports compile errors through this instead of writing to stderr. */
static void
jq_message(void *data, jv msg)
{
    struct jq_msg *m = data;

    if (!m->have && jv_get_kind(msg) == JV_KIND_STRING) {
        const char *s = jv_string_value(msg), *q;
        size_t n;

        if (strncmp(s, "jq: error: ", 11) == 0)
            s += 11;
        n = strcspn(s, "\n");
        if (n > 0 && s[n - 1] == ':')
            n--; /* libjq's next line would show the program: we have it */
        q = strstr(s, " (Unix shell quoting issues?)");
        if (q != NULL && (size_t)(q - s) < n) {
            /* Not a shell here: keep what comes before and after the aside. */
            size_t head = (size_t)(q - s), skip = strlen(" (Unix shell quoting issues?)");

            if (head + skip > n)
                skip = n - head;
            (void)snprintf(m->text, sizeof(m->text), "%.*s%.*s", (int)head, s,
                           (int)(n - head - skip), q + skip);
            m->have = 1;
            jv_free(msg);
            return;
        }
        if (n >= sizeof(m->text))
            n = sizeof(m->text) - 1;
        memcpy(m->text, s, n);
        m->text[n] = '\0';
        m->have = 1;
    }
    jv_free(msg);
}

/*
 * Whether a jq program ends inside a string literal. libjq 1.6 leaks the
 * lexer's buffer on that error, so it is caught here and libjq never sees
 * it. Strings nest through interpolation: "a \("b") c". Deeper nesting
 * than the stack is left to libjq.
 */
struct jq_scan {
    int in_string[32]; /* per level: 1 inside "...", 0 inside \(...) or the top */
    int parens[32];
    int depth;
};

/* One character inside a string literal; returns how many more to skip, -1 to give up. */
static int
scan_in_string(struct jq_scan *sc, const char *s)
{
    if (*s == '"') {
        sc->depth--;
        return 0;
    }
    if (*s != '\\' || s[1] == '\0')
        return 0;
    if (s[1] != '(')
        return 1; /* an escape: the next character is taken as is */
    if (sc->depth + 1 >= (int)ARRAY_COUNT(sc->in_string))
        return -1;
    sc->depth++;
    sc->in_string[sc->depth] = 0;
    sc->parens[sc->depth] = 0;
    return 1;
}

/* One character of code (the top, or inside \(...)); same returns. */
static int
scan_in_code(struct jq_scan *sc, const char *s)
{
    if (*s == '"') {
        if (sc->depth + 1 >= (int)ARRAY_COUNT(sc->in_string))
            return -1;
        sc->depth++;
        sc->in_string[sc->depth] = 1;
    } else if (*s == '(') {
        sc->parens[sc->depth]++;
    } else if (*s == ')' && sc->depth > 0 && sc->parens[sc->depth] == 0) {
        sc->depth--; /* the end of an interpolation */
    } else if (*s == ')') {
        sc->parens[sc->depth]--;
    }
    return 0;
}

/*
 * Whether a jq program ends inside a string literal. libjq 1.6 leaks the
 * lexer's buffer on that error, so it is caught here and libjq never sees
 * it. Strings nest through interpolation: "a \("b") c". Deeper nesting
 * than the scanner's stack is left to libjq.
 */
static int
jq_unterminated_string(const char *s)
{
    struct jq_scan sc = {.depth = 0};

    for (; *s != '\0'; s++) {
        int skip;

        if (*s == '#' && sc.depth == 0) {
            s += strcspn(s, "\n"); /* a comment runs to the end of the line */
            if (*s == '\0')
                break;
            continue;
        }
        skip = sc.in_string[sc.depth] ? scan_in_string(&sc, s) : scan_in_code(&sc, s);
        if (skip < 0)
            return 0;
        s += skip;
    }
    return sc.depth > 0 && sc.in_string[sc.depth];
}

int
config_jq_problem(const char *program, char *why, size_t why_len)
{
    struct jq_msg m = {.have = 0};
    jq_state *jq;
    int rc = 0;

    if (jq_unterminated_string(program)) {
        (void)snprintf(why, why_len, "jq does not compile: a string is not closed");
        return -1;
    }
    jq = jq_init();
    if (jq == NULL) {
        (void)snprintf(why, why_len, "cannot start libjq");
        return -1;
    }
    jq_set_error_cb(jq, jq_message, &m);
    if (!jq_compile(jq, program)) {
        (void)snprintf(why, why_len, "jq does not compile: %s", m.have ? m.text : "syntax error");
        rc = -1;
    }
    jq_teardown(&jq);
    return rc;
}

static void
config_check_jq(struct config_ctx *c, const struct config_node *n, const char *path)
{
    char why[260];

    if (config_jq_problem(n->value, why, sizeof(why)) == -1)
        CONFIG_PROBLEM(c, n, "%s: %s", path, why);
}

/* A jq expression at key of map, checked to compile, into *out. */
static void
config_opt_jq(struct config_ctx *c, const struct config_node *map, const char *path,
              const char *key, char **out)
{
    const struct config_node *v = config_node_get(map, key);
    char *p;

    if (v == NULL)
        return;
    p = config_join(path, key);
    if (config_get_str(c, v, p, out) == 0)
        config_check_jq(c, v, p);
    free(p);
}

/* ---- Secrets ---- */

/*
 * A secret reference at n into *out, resolved. The scalar is never shown:
 * if it is not a reference, it may be the secret itself.
 */
static int
config_get_secret(struct config_ctx *c, const struct config_node *n, const char *path,
                  struct secret *out)
{
    char why[400];

    if (n->kind != CONFIG_NODE_SCALAR || config_node_is_null(n)) {
        CONFIG_PROBLEM(c, n, "%s: expected a secret reference (env:NAME or file:PATH), got %s",
                       path,
                       n->kind == CONFIG_NODE_MAPPING    ? "a mapping"
                       : n->kind == CONFIG_NODE_SEQUENCE ? "a list"
                                                         : "nothing");
        return -1;
    }
    if (strncmp(n->value, "env:", 4) == 0 && !config_secret_is_ref(n->value)) {
        CONFIG_PROBLEM(c, n, "%s: env: must be followed by a variable name (letters, digits and _)",
                       path);
        return -1;
    }
    if (!config_secret_is_ref(n->value)) {
        CONFIG_PROBLEM(c, n,
                       "%s: secret written as a literal; hint: put it in the environment and write "
                       "env:NAME",
                       path);
        return -1;
    }
    if (c->flags & CONFIG_LOAD_NO_SECRETS) {
        out->ref = xstrdup(n->value); /* checked for form, not read */
        return 0;
    }
    if (config_secret_resolve(n->value, c->base_dir, out, why, sizeof(why)) == -1) {
        CONFIG_PROBLEM(c, n, "%s: %s", path, why);
        return -1;
    }
    return 0;
}

/* ---- Top level: listen, store, log ---- */

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

/* ---- Models ---- */

static const char **
model_names(const struct config *cfg)
{
    const char **names = xcalloc(cfg->model_count + 1, sizeof(*names));

    for (size_t i = 0; i < cfg->model_count; i++)
        names[i] = cfg->models[i].name;
    return names;
}

/* The model called name, or NULL after saying so at n. */
static const struct config_model *
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

/* ---- Systems: retry, auth, webhook ---- */

static void
parse_delays(struct config_ctx *c, const struct config_node *v, const char *path,
             struct retry_policy *r)
{
    char buf[64];
    size_t ok = 0;

    if (v->kind != CONFIG_NODE_SEQUENCE || v->kid_count == 0 || v->kid_count > RETRY_MAX_DELAYS) {
        CONFIG_PROBLEM(
            c, v, "%s: expected a list of 1 to %d durations, got %s; hint: [0, 5s, 5m, 30m, 2h]",
            path, RETRY_MAX_DELAYS,
            v->kind == CONFIG_NODE_SEQUENCE && v->kid_count > 0
                ? "a longer list"
                : config_node_show(v, buf, sizeof(buf)));
        return;
    }
    for (size_t i = 0; i < v->kid_count; i++) {
        char *p = xasprintf("%s[%zu]", path, i);

        if (config_get_duration(c, v->kids[i], p, 0, &r->delays_ms[i]) == 0)
            ok++;
        free(p);
    }
    if (ok == v->kid_count)
        r->delay_count = v->kid_count;
}

/* "Header-Name: value": an answer that carries it is not retried. */
static void
parse_stop_header(struct config_ctx *c, const struct config_node *v, const char *path,
                  struct config_system *s)
{
    char buf[64], *name = NULL, *colon, *value = NULL, *end;

    if (config_get_str(c, v, path, &name) == -1)
        return;
    colon = strchr(name, ':');
    if (colon != NULL) {
        *colon = '\0';
        value = colon + 1 + strspn(colon + 1, " \t");
        end = value + strlen(value);
        while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
    }
    if (value == NULL || !config_header_name_ok(name) || value[0] == '\0' ||
        strpbrk(value, "\r\n") != NULL) {
        CONFIG_PROBLEM(
            c, v, "%s: expected \"Header-Name: value\", got %s; hint: Stripe-Should-Retry: false",
            path, config_node_show(v, buf, sizeof(buf)));
        free(name);
        return;
    }
    s->retry_stop_header_name = name;
    s->retry_stop_header_value = xstrdup(value);
}

static void
parse_jitter(struct config_ctx *c, const struct config_node *v, const char *path,
             struct retry_policy *r)
{
    const struct config_node *j = config_node_get(v, "jitter");
    double d;
    char *p;

    if (j == NULL)
        return;
    p = config_join(path, "jitter");
    if (config_get_number(c, j, p, 0, 1, "a number from 0 to 1", &d) == 0)
        r->jitter = d;
    free(p);
}

/*
 * retry: either delays (a list) or base_ms/cap_ms (exponential); without
 * either the default list stays. max_attempts defaults to what the list
 * allows, or to 8 for the exponential form, and is cut to what a list
 * allows (retry.h).
 */
static void
config_parse_retry(struct config_ctx *c, const struct config_node *v, const char *path,
                   struct config_system *s)
{
    struct retry_policy *r = &s->retry;
    const struct config_node *cap, *base, *delays, *attempts_n;
    int64_t attempts = -1;
    char *p;

    if (!config_want_map(c, v, path))
        return;
    config_check_keys(c, v, path, retry_keys, ARRAY_COUNT(retry_keys));
    cap = config_node_get(v, "cap_ms");
    base = config_node_get(v, "base_ms");
    delays = config_node_get(v, "delays");
    attempts_n = config_node_get(v, "max_attempts");
    config_opt_int(c, v, path, "max_attempts", (struct config_range){1, INT_MAX}, &attempts);
    if (delays != NULL && (base != NULL || cap != NULL)) {
        CONFIG_PROBLEM(
            c, base != NULL ? base : cap,
            "%s: give either delays or base_ms/cap_ms, not both; hint: delays lists each "
            "wait, base_ms and cap_ms make a doubling schedule",
            path);
    } else if (delays != NULL) {
        p = config_join(path, "delays");
        parse_delays(c, delays, p, r);
        free(p);
    } else if (base != NULL || cap != NULL) {
        r->delay_count = 0; /* exponential */
        r->max_attempts = 8;
        config_opt_int(c, v, path, "base_ms", (struct config_range){0, INT64_MAX / 4}, &r->base_ms);
        config_opt_int(c, v, path, "cap_ms", (struct config_range){0, INT64_MAX / 4}, &r->cap_ms);
        if (r->cap_ms < r->base_ms)
            CONFIG_PROBLEM(
                c, cap != NULL ? cap : base,
                "%s.cap_ms: %lld is less than base_ms %lld; hint: the cap must be at least "
                "the first delay",
                path, (long long)r->cap_ms, (long long)r->base_ms);
    }
    if (r->delay_count > 0)
        r->max_attempts = (int)r->delay_count + 1;
    if (attempts_n != NULL && attempts >= 1 && (r->delay_count == 0 || attempts < r->max_attempts))
        r->max_attempts = (int)attempts;
    parse_jitter(c, v, path, r);
    config_opt_duration(c, v, path, "max_age", 0, &r->max_age_ms);
    if (config_node_get(v, "stop_header") != NULL) {
        p = config_join(path, "stop_header");
        parse_stop_header(c, config_node_get(v, "stop_header"), p, s);
        free(p);
    }
}

/* rate_limit: {rate, per, burst}. */
static void
config_parse_rate_limit(struct config_ctx *c, const struct config_node *v, const char *path,
                        struct config_rate_limit *rl)
{
    const struct config_node *rate_n = config_node_get(v, "rate"),
                             *burst_n = config_node_get(v, "burst");
    double rate = 0, burst = 0;
    int64_t per_ms = 1000;
    char *p;

    if (!config_want_map(c, v, path))
        return;
    config_check_keys(c, v, path, rate_limit_keys, ARRAY_COUNT(rate_limit_keys));
    config_opt_duration(c, v, path, "per", 1, &per_ms);
    p = config_join(path, "rate");
    if (rate_n == NULL) {
        config_missing(c, v, path, "rate");
    } else if (config_get_number(c, rate_n, p, 0, 1e9, "a number of requests above 0", &rate) ==
                   0 &&
               !(rate > 0)) {
        char buf[64];

        CONFIG_PROBLEM(
            c, rate_n,
            "%s: expected a number of requests above 0, got %s; hint: leave rate_limit out "
            "for no limit",
            p, config_node_show(rate_n, buf, sizeof(buf)));
        rate = 0;
    }
    free(p);
    burst = rate >= 1 ? rate : 1;
    if (burst_n != NULL) {
        p = config_join(path, "burst");
        (void)config_get_number(c, burst_n, p, 1, 1e9, "a number of at least 1", &burst);
        free(p);
    }
    if (rate > 0) {
        rl->rate_per_s = rate * 1000.0 / (double)per_ms;
        rl->burst = burst;
    }
}

/*
 * A non-empty list of HTTP statuses 400..599 at v into *out and *count
 * (what they held is freed); example is the hint's list ("[403]").
 */
static void
config_parse_status_list(struct config_ctx *c, const struct config_node *v, const char *path,
                         const char *example, int **out, size_t *count)
{
    if (v->kind != CONFIG_NODE_SEQUENCE || v->kid_count == 0) {
        char buf[64];

        CONFIG_PROBLEM(c, v, "%s: expected a list of HTTP status codes, got %s; hint: %s", path,
                       config_node_show(v, buf, sizeof(buf)), example);
        return;
    }
    free(*out);
    *out = xcalloc(v->kid_count, sizeof(**out));
    *count = 0;
    for (size_t i = 0; i < v->kid_count; i++) {
        char *p = xasprintf("%s[%zu]", path, i);
        int64_t code;

        if (config_get_int(c, v->kids[i], p, (struct config_range){400, 599}, &code) == 0)
            (*out)[(*count)++] = (int)code;
        free(p);
    }
}

/* rate_limited_status: [403, ...] — answers that mean "rate limited". */
static void
config_parse_limited_status(struct config_ctx *c, const struct config_node *v, const char *path,
                            struct config_rate_limit *rl)
{
    config_parse_status_list(c, v, path, "[403]", &rl->limited_status, &rl->limited_status_count);
}

/* breaker: off, or {failures, failure_rate, min_requests, window, cooldown}. */
static void
config_parse_breaker(struct config_ctx *c, const struct config_node *v, const char *path,
                     struct config_system *s)
{
    struct breaker_policy *b = &s->breaker;
    int64_t failures = b->failures_to_open, min_requests = b->min_requests;
    char buf[64], *p;

    if (v->kind == CONFIG_NODE_SCALAR && !v->is_quoted &&
        (strcmp(v->value, "off") == 0 || strcmp(v->value, "false") == 0)) {
        s->breaker_enabled = 0;
        return;
    }
    if (v->kind != CONFIG_NODE_MAPPING) {
        CONFIG_PROBLEM(c, v, "%s: expected a mapping or off, got %s", path,
                       config_node_show(v, buf, sizeof(buf)));
        return;
    }
    config_check_keys(c, v, path, breaker_keys, ARRAY_COUNT(breaker_keys));
    config_opt_int(c, v, path, "failures", (struct config_range){0, INT_MAX}, &failures);
    b->failures_to_open = (int)failures;
    if (config_node_get(v, "failure_rate") != NULL) {
        p = config_join(path, "failure_rate");
        (void)config_get_number(c, config_node_get(v, "failure_rate"), p, 0, 1,
                                "a number from 0 to 1", &b->failure_rate);
        free(p);
    }
    config_opt_int(c, v, path, "min_requests", (struct config_range){1, INT_MAX}, &min_requests);
    b->min_requests = (int)min_requests;
    config_opt_duration(c, v, path, "window", BREAKER_BUCKETS, &b->window_ms);
    config_opt_duration(c, v, path, "cooldown", 0, &b->cooldown_ms);
}

/* A share: a number from 0 to 1 ("0.25") or a percentage ("25%"). */
static int
config_get_share(struct config_ctx *c, const struct config_node *n, const char *path, double *out)
{
    char buf[64], *end = NULL;
    double d = -1;

    errno = 0;
    if (n->kind == CONFIG_NODE_SCALAR && !config_node_is_null(n) && n->value[0] != ' ') {
        d = strtod(n->value, &end);
        if (end != n->value && *end == '%' && end[1] == '\0')
            d /= 100; /* "25%" */
        else if (end == n->value || *end != '\0')
            d = -1;
    }
    if (errno != 0 || !(d >= 0 && d <= 1)) {
        CONFIG_PROBLEM(c, n,
                       "%s: expected a number from 0 to 1 or a percentage such as \"25%%\", got %s",
                       path, config_node_show(n, buf, sizeof(buf)));
        return -1;
    }
    *out = d;
    return 0;
}

/* delete_guard: off, or {max_count, max_share, min_count, window}. */
static void
config_parse_delete_guard(struct config_ctx *c, const struct config_node *v, const char *path,
                          struct config_system *s)
{
    char buf[64], *p;

    if (v->kind == CONFIG_NODE_SCALAR && !v->is_quoted &&
        (strcmp(v->value, "off") == 0 || strcmp(v->value, "false") == 0)) {
        s->delete_guard_enabled = 0;
        return;
    }
    if (v->kind != CONFIG_NODE_MAPPING) {
        CONFIG_PROBLEM(c, v, "%s: expected a mapping or off, got %s", path,
                       config_node_show(v, buf, sizeof(buf)));
        return;
    }
    config_check_keys(c, v, path, delete_guard_keys, ARRAY_COUNT(delete_guard_keys));
    config_opt_int(c, v, path, "max_count", (struct config_range){0, INT32_MAX},
                   &s->delete_guard_max_count);
    if (config_node_get(v, "max_share") != NULL) {
        p = config_join(path, "max_share");
        (void)config_get_share(c, config_node_get(v, "max_share"), p, &s->delete_guard_max_share);
        free(p);
    }
    config_opt_int(c, v, path, "min_count", (struct config_range){0, INT32_MAX},
                   &s->delete_guard_min_count);
    config_opt_duration(c, v, path, "window", 1, &s->delete_guard_window_ms);
}

/* The 64 digits, then the pad character. */
static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";

/* RFC 4648 §4 base64 of len bytes, NUL-terminated, into a new buffer. */
static char *
config_base64(const unsigned char *in, size_t len, size_t *out_len)
{
    char *out = xmalloc(len / 3 * 4 + 5);
    size_t o = 0, i = 0;

    for (; i + 2 < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];

        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = b64[v >> 6 & 63];
        out[o++] = b64[v & 63];
    }
    if (i < len) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0);

        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = b64[i + 1 < len ? (v >> 6 & 63) : 64];
        out[o++] = b64[64];
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

/* Replace s's value by prefix + value (the ref stays: it is what a person may see). */
static void
config_secret_prefix(struct secret *s, const char *prefix)
{
    size_t plen = strlen(prefix);
    char *v;

    if (s->value == NULL) /* not read (CONFIG_LOAD_NO_SECRETS): nothing to prefix */
        return;
    v = xmalloc(plen + s->len + 1);
    memcpy(v, prefix, plen);
    memcpy(v + plen, s->value, s->len);
    v[plen + s->len] = '\0';
    explicit_bzero(s->value, s->len);
    free(s->value);
    s->value = v;
    s->len += plen;
}

/* A header value goes on the wire as is: a line break would forge headers. */
static void
check_header_value(struct config_ctx *c, const struct config_node *n, const char *path,
                   const struct secret *s)
{
    if (s->value != NULL && strpbrk(s->value, "\r\n") != NULL)
        CONFIG_PROBLEM(c, n, "%s: the value of %s holds a line break, which a header cannot carry",
                       path, s->ref);
}

static struct config_header *
add_header(struct config_system *s, const char *name)
{
    struct config_header *h = &s->auth_headers[s->auth_header_count++];

    h->name = xstrdup(name);
    return h;
}

static int
header_taken(struct config_ctx *c, const struct config_system *s, const struct config_node *at,
             const char *path, const char *name)
{
    for (size_t i = 0; i + 1 < s->auth_header_count; i++) {
        if (strcasecmp(s->auth_headers[i].name, name) == 0) {
            CONFIG_PROBLEM(c, at, "%s: header %s is set twice", path, name);
            return 1;
        }
    }
    return 0;
}

static void
parse_basic(struct config_ctx *c, const struct config_node *v, const char *path,
            struct config_system *s)
{
    const struct config_node *user = config_node_get(v, "username"),
                             *pw = config_node_get(v, "password");
    struct config_header *h;
    struct secret sec = {0};
    char *joined, *enc, *p;
    size_t ulen, enc_len;

    config_check_keys(c, v, path, basic_keys, ARRAY_COUNT(basic_keys));
    if (user == NULL)
        config_missing(c, v, path, "username");
    if (pw == NULL)
        config_missing(c, v, path, "password");
    if (user == NULL || pw == NULL)
        return;
    p = config_join(path, "password");
    if (config_get_secret(c, pw, p, &sec) == 0 && user->kind == CONFIG_NODE_SCALAR &&
        !config_node_is_null(user)) {
        h = add_header(s, "Authorization");
        if (!header_taken(c, s, v, path, "Authorization")) {
            /* RFC 7617: base64(user ":" password). */
            ulen = user->len;
            joined = xmalloc(ulen + 1 + sec.len + 1);
            memcpy(joined, user->value, ulen);
            joined[ulen] = ':';
            memcpy(joined + ulen + 1, sec.value, sec.len + 1);
            enc = config_base64((const unsigned char *)joined, ulen + 1 + sec.len, &enc_len);
            explicit_bzero(joined, ulen + 1 + sec.len);
            free(joined);
            h->value.ref = xstrdup(sec.ref);
            h->value.value = enc;
            h->value.len = enc_len;
            config_secret_prefix(&h->value, "Basic ");
        }
    } else if (user->kind != CONFIG_NODE_SCALAR || config_node_is_null(user)) {
        char *up = config_join(path, "username");
        char *ignored = NULL;

        (void)config_get_str(c, user, up, &ignored);
        free(ignored);
        free(up);
    }
    secret_fini(&sec);
    free(p);
}

/* A URL that is absolute (http/https) or a path under the system's base_url. */
static void
config_get_url_or_path(struct config_ctx *c, const struct config_node *v, const char *path,
                       char **out)
{
    if (config_get_str(c, v, path, out) == -1)
        return;
    if ((*out)[0] != '/' && strncmp(*out, "http://", 7) != 0 && strncmp(*out, "https://", 8) != 0)
        CONFIG_PROBLEM(
            c, v,
            "%s: expected a URL (http:// or https://) or a path under base_url (/...), got "
            "\"%.60s\"",
            path, *out);
}

static void
parse_oauth2(struct config_ctx *c, const struct config_node *v, const char *path,
             struct config_system *s)
{
    struct config_oauth2 *o = &s->oauth2;
    const struct config_node *n;
    char *p;
    int pick;

    if (!config_want_map(c, v, path))
        return;
    config_check_keys(c, v, path, oauth2_keys, ARRAY_COUNT(oauth2_keys));
    o->enabled = 1;
    o->margin_ms = 60000;
    n = config_node_get(v, "token_url");
    if (n == NULL) {
        config_missing(c, v, path, "token_url");
    } else {
        p = config_join(path, "token_url");
        config_get_url_or_path(c, n, p, &o->token_url);
        free(p);
    }
    if ((n = config_node_get(v, "authorize_url")) != NULL) {
        p = config_join(path, "authorize_url");
        config_get_url_or_path(c, n, p, &o->authorize_url);
        free(p);
    }
    if (config_node_get(v, "client_id") == NULL)
        config_missing(c, v, path, "client_id");
    config_opt_str(c, v, path, "client_id", &o->client_id);
    if ((n = config_node_get(v, "client_secret")) == NULL) {
        config_missing(c, v, path, "client_secret");
    } else {
        p = config_join(path, "client_secret");
        (void)config_get_secret(c, n, p, &o->client_secret);
        free(p);
    }
    if ((n = config_node_get(v, "refresh_token")) != NULL) {
        p = config_join(path, "refresh_token");
        (void)config_get_secret(c, n, p, &o->refresh_token);
        free(p);
    }
    config_opt_str(c, v, path, "scope", &o->scope);
    config_opt_duration(c, v, path, "renew_before", 0, &o->margin_ms);
    o->grant = config_node_get(v, "refresh_token") != NULL || o->authorize_url != NULL
                   ? CONFIG_GRANT_REFRESH_TOKEN
                   : CONFIG_GRANT_CLIENT_CREDENTIALS;
    pick = config_opt_choice(c, v, path, "grant", oauth2_grants, ARRAY_COUNT(oauth2_grants));
    if (pick >= 0)
        o->grant = pick == 0 ? CONFIG_GRANT_CLIENT_CREDENTIALS : CONFIG_GRANT_REFRESH_TOKEN;
    if (o->grant == CONFIG_GRANT_CLIENT_CREDENTIALS && config_node_get(v, "refresh_token") != NULL)
        CONFIG_PROBLEM(
            c, config_node_get(v, "refresh_token"),
            "%s.refresh_token: the client_credentials grant takes no refresh token; hint: "
            "write grant: refresh_token, or remove it",
            path);
    o->credentials_basic = config_opt_choice(c, v, path, "credentials", oauth2_credentials,
                                             ARRAY_COUNT(oauth2_credentials)) == 1;
}

static void
config_parse_auth(struct config_ctx *c, const struct config_node *v, const char *path,
                  struct config_system *s)
{
    const struct config_node *headers, *bearer, *basic;
    char *p;

    if (!config_want_map(c, v, path))
        return;
    config_check_keys(c, v, path, auth_keys, ARRAY_COUNT(auth_keys));
    headers = config_node_get(v, "headers");
    bearer = config_node_get(v, "bearer");
    basic = config_node_get(v, "basic");
    p = config_join(path, "headers");
    s->auth_headers =
        xcalloc((headers != NULL ? headers->kid_count / 2 : 0) + 2, sizeof(*s->auth_headers));
    if (config_want_map(c, headers, p)) {
        for (size_t i = 0; i + 1 < headers->kid_count; i += 2) {
            const struct config_node *k = headers->kids[i];
            char *hp = config_join(p, k->value);
            struct config_header *h = add_header(s, k->value);

            if (!config_header_name_ok(k->value))
                CONFIG_PROBLEM(c, k, "%s: \"%.64s\" is not a valid header name", p, k->value);
            else if (!header_taken(c, s, k, p, k->value) &&
                     config_get_secret(c, headers->kids[i + 1], hp, &h->value) == 0)
                check_header_value(c, headers->kids[i + 1], hp, &h->value);
            free(hp);
        }
    }
    free(p);
    if (bearer != NULL) {
        p = config_join(path, "bearer");
        struct config_header *h = add_header(s, "Authorization");

        if (!header_taken(c, s, bearer, p, "Authorization") &&
            config_get_secret(c, bearer, p, &h->value) == 0) {
            check_header_value(c, bearer, p, &h->value);
            config_secret_prefix(&h->value, "Bearer ");
        }
        free(p);
    }
    p = config_join(path, "basic");
    if (config_want_map(c, basic, p))
        parse_basic(c, basic, p, s);
    free(p);
    if (config_node_get(v, "oauth2") != NULL) {
        p = config_join(path, "oauth2");
        parse_oauth2(c, config_node_get(v, "oauth2"), p, s);
        for (size_t i = 0; i < s->auth_header_count; i++) {
            if (strcasecmp(s->auth_headers[i].name, "Authorization") == 0)
                CONFIG_PROBLEM(
                    c, config_node_get(v, "oauth2"),
                    "%s: oauth2 sends its own Authorization header; hint: remove bearer, "
                    "basic or the Authorization header",
                    p);
        }
        free(p);
    }
}

/*
 * Whether a standard-webhooks secret is usable: after an optional "whsec_",
 * standard base64 (padding optional, as the spec's libraries accept it)
 * that decodes to at least one byte. Mirrors http_sig.c's decoder.
 */
static int
sig_secret_is_base64(const struct secret *s)
{
    const char *v = secret_bytes(s);
    size_t len = s->len, pad = 0;

    if (len >= 6 && strncmp(v, "whsec_", 6) == 0) {
        v += 6;
        len -= 6;
    }
    while (pad < 2 && len > 0 && v[len - 1] == '=') {
        len--;
        pad++;
    }
    if (len < 2 || len % 4 == 1 || (pad > 0 && (len + pad) % 4 != 0))
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = v[i];

        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '+' || ch == '/'))
            return 0;
    }
    return 1;
}

/*
 * secret: one reference, or a list of up to CONFIG_SIG_MAX_SECRETS during a
 * rotation ([env:NEW, env:OLD]); a signature made with any of them passes.
 */
static void
config_parse_sig_secrets(struct config_ctx *c, const struct config_node *v, const char *path,
                         struct config_signature *sig)
{
    struct secret *slots[CONFIG_SIG_MAX_SECRETS] = {&sig->secret, &sig->secret_rotated};
    const struct config_node *items[CONFIG_SIG_MAX_SECRETS];
    size_t n = 0;

    if (v->kind == CONFIG_NODE_SEQUENCE) {
        if (v->kid_count == 0 || v->kid_count > CONFIG_SIG_MAX_SECRETS) {
            CONFIG_PROBLEM(
                c, v,
                "%s: expected one secret reference, or two during a rotation, got a list "
                "of %zu; hint: list the new secret first and the old one second: "
                "[env:NEW, env:OLD]",
                path, v->kid_count);
            return;
        }
        for (size_t i = 0; i < v->kid_count; i++)
            items[n++] = v->kids[i];
    } else {
        items[n++] = v;
    }
    for (size_t i = 0; i < n; i++) {
        char *p = v->kind == CONFIG_NODE_SEQUENCE ? xasprintf("%s[%zu]", path, i) : xstrdup(path);

        if (config_get_secret(c, items[i], p, slots[i]) == 0 &&
            sig->scheme_kind == CONFIG_SIG_SCHEME_STANDARD_WEBHOOKS && slots[i]->value != NULL &&
            !sig_secret_is_base64(slots[i]))
            CONFIG_PROBLEM(
                c, items[i],
                "%s: a standard-webhooks secret is base64 after its whsec_ prefix, and this "
                "one is not; hint: copy the secret exactly as the sender shows it",
                p);
        free(p);
    }
    sig->secret_count = n;
}

/*
 * The keys that only the generic hmac scheme reads, refused with a named
 * scheme: it fixes its headers and encoding, so a value here would be
 * ignored or, worse, believed.
 */
static void
refuse_hmac_keys(struct config_ctx *c, const struct config_node *v, const char *path,
                 const struct config_signature *sig)
{
    static const char *const hmac_only[] = {"header", "encoding", "prefix", "timestamp_header",
                                            "signed"};
    const char *reads = sig_scheme_reads[sig->scheme_kind - 1];
    int has_ts = sig->scheme_kind != CONFIG_SIG_SCHEME_GITHUB &&
                 sig->scheme_kind != CONFIG_SIG_SCHEME_SHOPIFY;

    for (size_t i = 0; i < ARRAY_COUNT(hmac_only); i++) {
        const struct config_node *k = config_node_key(v, hmac_only[i]);

        if (k != NULL)
            CONFIG_PROBLEM(c, k,
                           "%s.%s: scheme %s fixes its headers and encoding: it reads %s; hint: "
                           "remove the key, or use scheme hmac to set it",
                           path, hmac_only[i], sig->scheme, reads);
    }
    if (!has_ts && config_node_key(v, "tolerance_s") != NULL)
        CONFIG_PROBLEM(c, config_node_key(v, "tolerance_s"),
                       "%s.tolerance_s: scheme %s signs no timestamp; hint: remove the key", path,
                       sig->scheme);
}

/* hubspot-v3's url: the absolute URL HubSpot calls, as registered with it. */
static void
parse_sig_url(struct config_ctx *c, const struct config_node *url, const char *path,
              struct config_signature *sig)
{
    char *p = config_join(path, "url");

    if (config_get_str(c, url, p, &sig->url) == 0 && strncmp(sig->url, "https://", 8) != 0 &&
        strncmp(sig->url, "http://", 7) != 0)
        CONFIG_PROBLEM(c, url,
                       "%s: expected an absolute http:// or https:// URL; hint: give the URL as "
                       "registered with HubSpot, https://concord.example.com/webhooks/crm",
                       p);
    free(p);
}

static void
parse_signature(struct config_ctx *c, const struct config_node *v, const char *path,
                struct config_signature *sig)
{
    const struct config_node *secret = config_node_get(v, "secret");
    const struct config_node *url = config_node_get(v, "url");
    int i;

    if (!config_want_map(c, v, path))
        return;
    config_check_keys(c, v, path, sig_keys, ARRAY_COUNT(sig_keys));
    sig->scheme_kind = CONFIG_SIG_SCHEME_HMAC;
    i = config_opt_choice(c, v, path, "scheme", sig_schemes, ARRAY_COUNT(sig_schemes));
    if (i >= 0) {
        free(sig->scheme);
        sig->scheme = xstrdup(sig_schemes[i]);
        sig->scheme_kind = (enum config_sig_scheme)(CONFIG_SIG_SCHEME_HMAC + i);
    }
    if (sig->scheme_kind == CONFIG_SIG_SCHEME_HMAC && config_node_get(v, "header") == NULL)
        config_missing(c, v, path, "header");
    if (secret == NULL) {
        config_missing(c, v, path, "secret");
    } else {
        char *p = config_join(path, "secret");

        config_parse_sig_secrets(c, secret, p, sig);
        free(p);
    }
    config_opt_int(c, v, path, "tolerance_s", (struct config_range){1, INT64_MAX / 4},
                   &sig->tolerance_s);
    if (sig->scheme_kind == CONFIG_SIG_SCHEME_HUBSPOT_V3) {
        if (url == NULL)
            CONFIG_PROBLEM(
                c, v,
                "%s: missing required key \"url\"; hint: hubspot-v3 signs the URL it calls: "
                "give the public URL of this webhook, "
                "https://concord.example.com/webhooks/crm",
                path);
        else
            parse_sig_url(c, url, path, sig);
    } else if (url != NULL) {
        CONFIG_PROBLEM(c, config_node_key(v, "url"),
                       "%s.url: only scheme hubspot-v3 signs the URL; hint: remove the key", path);
    }
    if (sig->scheme_kind != CONFIG_SIG_SCHEME_HMAC) {
        refuse_hmac_keys(c, v, path, sig);
        return;
    }
    config_opt_str(c, v, path, "header", &sig->header);
    i = config_opt_choice(c, v, path, "encoding", sig_encodings, ARRAY_COUNT(sig_encodings));
    if (i >= 0)
        sig->encoding = (enum config_sig_encoding)(CONFIG_SIG_HEX + i);
    config_opt_str(c, v, path, "prefix", &sig->prefix);
    config_opt_str(c, v, path, "timestamp_header", &sig->timestamp_header);
    config_opt_str(c, v, path, "signed", &sig->signed_template);
    if (strstr(sig->signed_template, "{body}") == NULL)
        CONFIG_PROBLEM(c, config_node_get(v, "signed"),
                       "%s.signed: the template must contain {body}", path);
    if (strstr(sig->signed_template, "{timestamp}") != NULL && sig->timestamp_header == NULL)
        CONFIG_PROBLEM(
            c, v,
            "%s: signed uses {timestamp} but timestamp_header is not set; hint: name the "
            "header that carries the timestamp",
            path);
}

static void
config_parse_webhook(struct config_ctx *c, const struct config_node *v, const char *path,
                     struct config_webhook *w)
{
    const struct config_node *sig;
    int64_t max_body = (int64_t)w->max_body_bytes;

    if (!config_want_map(c, v, path))
        return;
    w->enabled = 1;
    config_check_keys(c, v, path, webhook_keys, ARRAY_COUNT(webhook_keys));
    config_opt_str(c, v, path, "path", &w->path);
    if (w->path[0] != '/')
        CONFIG_PROBLEM(c, config_node_get(v, "path"), "%s.path: must start with \"/\"", path);
    config_opt_str(c, v, path, "delivery_id_header", &w->delivery_id_header);
    config_opt_str(c, v, path, "reply_with", &w->reply_header);
    config_opt_int(c, v, path, "max_body_bytes", (struct config_range){1, INT32_MAX}, &max_body);
    w->max_body_bytes = (size_t)max_body;
    sig = config_node_get(v, "signature");
    if (sig != NULL) {
        char *p = config_join(path, "signature");

        w->has_signature = 1;
        parse_signature(c, sig, p, &w->signature);
        free(p);
    }
}

/* ---- Collections: field maps and endpoints ---- */

static void
entry_source(struct config_ctx *c, const struct config_node *v, const char *path,
             struct config_map_entry *e)
{
    const struct config_node *path_n = config_node_get(v, "path"), *jq_n = config_node_get(v, "jq");
    const struct config_node *const_n = config_node_get(v, "const");
    int sources = (path_n != NULL) + (jq_n != NULL) + (const_n != NULL);

    if (sources != 1) {
        CONFIG_PROBLEM(c, v, "%s: give exactly one of path, jq and const (%d given)", path,
                       sources);
        return;
    }
    if (path_n != NULL) {
        e->source = CONFIG_MAP_PATH;
        config_opt_str(c, v, path, "path", &e->path);
    } else if (jq_n != NULL) {
        e->source = CONFIG_MAP_JQ;
        config_opt_jq(c, v, path, "jq", &e->jq);
    } else {
        e->source = CONFIG_MAP_CONST;
        e->const_value = config_node_json(const_n);
    }
}

static void
parse_entry(struct config_ctx *c, const struct config_node *v, const char *path,
            struct config_map_entry *e)
{
    const struct config_node *values, *other;
    char buf[64];

    if (v->kind == CONFIG_NODE_SCALAR && !config_node_is_null(v)) {
        e->source = CONFIG_MAP_PATH; /* "email: contact_email" is {path: contact_email} */
        e->path = xstrdup(v->value);
        return;
    }
    if (v->kind != CONFIG_NODE_MAPPING) {
        CONFIG_PROBLEM(c, v, "%s: expected a path or a mapping with path, jq or const, got %s",
                       path, config_node_show(v, buf, sizeof(buf)));
        return;
    }
    config_check_keys(c, v, path, entry_keys, ARRAY_COUNT(entry_keys));
    entry_source(c, v, path, e);
    if (config_node_get(v, "default") != NULL)
        e->default_value = config_node_json(config_node_get(v, "default"));
    values = config_node_get(v, "values");
    other = config_node_get(v, "else");
    if (values != NULL) {
        char *p = config_join(path, "values");

        if (config_want_map(c, values, p))
            e->values = config_node_json(values);
        free(p);
    }
    if (other != NULL && values == NULL)
        CONFIG_PROBLEM(c, other,
                       "%s.else: else needs values; hint: else is what a value missing from "
                       "values becomes",
                       path);
    else if (other != NULL)
        e->values_default = config_node_json(other);
}

static void
parse_map(struct config_ctx *c, const struct config_node *v, const char *path,
          const struct config_model *model, struct config_map *out)
{
    if (!config_want_map(c, v, path))
        return;
    out->entries = xcalloc(v->kid_count / 2 + 1, sizeof(*out->entries));
    for (size_t i = 0; i + 1 < v->kid_count; i += 2) {
        const struct config_node *k = v->kids[i];
        struct config_map_entry *e = &out->entries[out->entry_count++];
        char *p = config_join(path, k->value);

        e->target = xstrdup(k->value);
        e->pos = (struct config_pos){k->line, k->col};
        if (model != NULL && config_model_field(model, k->value) == NULL) {
            const char **names = xcalloc(model->field_count + 1, sizeof(*names));
            char hint[128];

            for (size_t j = 0; j < model->field_count; j++)
                names[j] = model->fields[j].name;
            CONFIG_PROBLEM(
                c, k, "%s: model \"%s\" has no field \"%.64s\"%s", path, model->name, k->value,
                config_did_you_mean(c, k->value, names, model->field_count, hint, sizeof(hint)));
            free(names);
        }
        parse_entry(c, v->kids[i + 1], p, e);
        free(p);
    }
}

static void
config_parse_endpoint(struct config_ctx *c, const struct config_node *map, const char *path,
                      const char *key, struct config_endpoint *ep)
{
    const struct config_node *v = config_node_get(map, key);
    const char *s, *sp, *rest;
    char buf[64], method[8];
    size_t mlen;

    if (v == NULL)
        return;
    s = v->kind == CONFIG_NODE_SCALAR ? v->value : "";
    sp = strchr(s, ' ');
    mlen = sp != NULL ? (size_t)(sp - s) : 0;
    rest = sp != NULL ? sp + strspn(sp, " ") : "";
    if (mlen > 0 && mlen < sizeof(method)) {
        memcpy(method, s, mlen);
        method[mlen] = '\0';
    } else {
        method[0] = '\0';
    }
    if (config_in_list(method, http_methods, ARRAY_COUNT(http_methods)) < 0 || rest[0] != '/' ||
        strpbrk(rest, " \t") != NULL) {
        CONFIG_PROBLEM(c, v,
                       "%s.%s: expected \"METHOD /path\" with METHOD one of GET, POST, PUT, PATCH, "
                       "DELETE, got %s",
                       path, key, config_node_show(v, buf, sizeof(buf)));
        return;
    }
    free(ep->method); /* a kind's own (reported as an error) gives way */
    free(ep->path);
    ep->method = xstrdup(method);
    ep->path = xstrdup(rest);
}

/* numbering: reading a series' next number around each create. */
static void
parse_numbering(struct config_ctx *c, const struct config_node *v, const char *path,
                struct config_numbering *n)
{
    static const char *const required[] = {"next", "series", "series_field", "number", "confirm"};

    if (!config_want_map(c, v, path))
        return;
    config_check_keys(c, v, path, numbering_keys, ARRAY_COUNT(numbering_keys));
    for (size_t i = 0; i < ARRAY_COUNT(required); i++) {
        if (config_node_get(v, required[i]) == NULL)
            config_missing(c, v, path, required[i]);
    }
    n->enabled = 1;
    config_parse_endpoint(c, v, path, "next", &n->next);
    config_parse_endpoint(c, v, path, "confirm", &n->confirm);
    config_opt_str(c, v, path, "items", &n->items_path);
    config_opt_str(c, v, path, "series", &n->item_series_path);
    config_opt_str(c, v, path, "series_field", &n->series_field);
    config_opt_str(c, v, path, "number", &n->number_path);
}

/* id, created_id: a path, or a list of paths whose values make a composite id. */
static void
parse_created_id(struct config_ctx *c, const struct config_node *v, const char *path,
                 const char *key, char **out)
{
    char *p = config_join(path, key);
    char buf[64];

    if (v->kind != CONFIG_NODE_SEQUENCE) {
        (void)config_get_str(c, v, p, out);
        free(p);
        return;
    }
    if (v->kid_count < 1 || v->kid_count > 4) {
        CONFIG_PROBLEM(c, v, "%s: expected one to four paths, got %zu", p, v->kid_count);
        free(p);
        return;
    }
    struct buf b;

    buf_init(&b, 1024);
    for (size_t i = 0; i < v->kid_count; i++) {
        const struct config_node *k = v->kids[i];

        if (k->kind != CONFIG_NODE_SCALAR || config_node_is_null(k) ||
            strchr(k->value, ',') != NULL)
            CONFIG_PROBLEM(c, k, "%s[%zu]: expected a path, got %s", p, i,
                           config_node_show(k, buf, sizeof(buf)));
        else if (buf_printf(&b, "%s%s", i > 0 ? "," : "", k->value) == -1)
            CONFIG_PROBLEM(c, k, "%s[%zu]: too long", p, i);
    }
    free(*out);
    *out = buf_take(&b);
    free(p);
}

/* archive: {system field: scalar}, the fields a copy gets instead of a delete. */
static void
parse_archive(struct config_ctx *c, const struct config_node *v, const char *path,
              struct config_collection *col)
{
    char buf[64];

    if (v->kind != CONFIG_NODE_MAPPING || v->kid_count == 0) {
        CONFIG_PROBLEM(c, v,
                       "%s: expected a mapping of system field to value, got %s; hint: archive: "
                       "{status: archived}",
                       path,
                       v->kind == CONFIG_NODE_MAPPING ? "an empty mapping"
                                                      : config_node_show(v, buf, sizeof(buf)));
        return;
    }
    for (size_t i = 0; i + 1 < v->kid_count; i += 2) {
        const struct config_node *val = v->kids[i + 1];

        if (val->kind != CONFIG_NODE_SCALAR) {
            CONFIG_PROBLEM(c, val, "%s.%s: expected a single value, got %s", path,
                           v->kids[i]->value, config_node_show(val, buf, sizeof(buf)));
            return;
        }
    }
    col->archive = config_node_json(v);
}

/*
 * on_delete: cancel, for a collection of a caldav system: a record's
 * deletion cancels its event (STATUS:CANCELLED) instead of deleting it,
 * which is archive with {status: cancelled}.
 */
static void
caldav_cancel(struct config_ctx *c, const struct config_node *v, const char *path,
              struct config_collection *col)
{
    if (col->system->profile != CONFIG_PROFILE_CALDAV) {
        CONFIG_PROBLEM(c, config_node_get(v, "on_delete"),
                       "%s.on_delete: cancel is for collections of caldav systems (it cancels the "
                       "event); hint: on_delete: archive, with archive: {status: cancelled}",
                       path);
        return;
    }
    col->on_delete = CONFIG_DELETE_ARCHIVE;
    if (config_node_get(v, "archive") != NULL) {
        CONFIG_PROBLEM(c, config_node_key(v, "archive"),
                       "%s.archive: cancel sets status: cancelled and nothing else; hint: remove "
                       "archive, or write on_delete: archive",
                       path);
        return;
    }
    col->archive = cJSON_CreateObject();
    cJSON_AddStringToObject(col->archive, "status", "cancelled");
}

/*
 * on_delete, archive and updated_at, after the endpoints: the default of
 * on_delete and what each mode needs depend on them.
 */
static void
parse_on_delete(struct config_ctx *c, const struct config_node *v, const char *path,
                struct config_collection *col)
{
    const struct config_node *mode_n = config_node_get(v, "on_delete"),
                             *archive_n = config_node_get(v, "archive");
    int i = config_opt_choice(c, v, path, "on_delete", delete_modes, ARRAY_COUNT(delete_modes));
    const struct config_node *at = mode_n != NULL ? mode_n : v; /* where problems of the mode go */

    config_opt_str(c, v, path, "updated_at", &col->updated_at_path);
    if (i == 3) {
        caldav_cancel(c, v, path, col);
        return;
    }
    if (i >= 0)
        col->on_delete = (enum config_delete_mode)(CONFIG_DELETE_DELETE + i);
    else
        col->on_delete = col->remove.method != NULL ? CONFIG_DELETE_DELETE : CONFIG_DELETE_IGNORE;
    if (mode_n != NULL && i < 0)
        return; /* already reported; the rest would guess */
    /* The calendar kinds fill in their calls after this (config_calendar_collection()). */
    int calls = col->system->profile == CONFIG_PROFILE_GOOGLE_CALENDAR ||
                col->system->profile == CONFIG_PROFILE_MICROSOFT_GRAPH;
    /* A bad delete or update endpoint is reported by config_parse_endpoint(): no second word here.
     */
    if (col->on_delete == CONFIG_DELETE_DELETE && mode_n != NULL && col->remove.method == NULL &&
        config_node_get(v, "delete") == NULL && !calls)
        CONFIG_PROBLEM(c, at,
                       "%s.on_delete: delete needs the collection's delete call; hint: add delete: "
                       "\"DELETE /path/{id}\", or use archive or ignore",
                       path);
    if (col->on_delete == CONFIG_DELETE_ARCHIVE) {
        if (archive_n == NULL) {
            CONFIG_PROBLEM(
                c, at,
                "%s.on_delete: archive needs the key archive with the fields to set; hint: "
                "archive: {status: archived}",
                path);
        } else {
            char *p = config_join(path, "archive");

            parse_archive(c, archive_n, p, col);
            free(p);
        }
        if (col->update.method == NULL && config_node_get(v, "update") == NULL && !calls)
            CONFIG_PROBLEM(
                c, at,
                "%s.on_delete: archive writes the copy with the collection's update call; "
                "hint: add update: \"PATCH /path/{id}\", or use delete or ignore",
                path);
    } else if (archive_n != NULL) {
        CONFIG_PROBLEM(
            c, config_node_key(v, "archive"),
            "%s.archive: archive is used only with on_delete: archive; hint: add on_delete: "
            "archive, or remove archive",
            path);
    }
}

/* ---- Collections: poll ---- */

/* Bit i of a kind mask stands for kind number i of cursor_kinds or page_kinds. */
#define KIND(i) (1U << (i))

/* A key of poll.cursor or poll.page and the kinds that take it. */
struct kind_key {
    const char *key;
    unsigned allowed;  /* the kinds that take it */
    unsigned required; /* the kinds that need it */
    const char *what;  /* what it is, for the hint of a missing one */
};

/* cursor_kinds: none, updated_since, sync_token, delta_link, events, search. */
static const struct kind_key cursor_kind_keys[] = {
    {"param", KIND(1) | KIND(2) | KIND(4), KIND(1) | KIND(2),
     "the query parameter that carries the cursor"},
    {"field", KIND(1) | KIND(5), KIND(1) | KIND(5),
     "the records' timestamp field, such as updated_at"},
    {"format", KIND(1) | KIND(5), 0, NULL},
    {"overlap", KIND(1) | KIND(5), 0, NULL},
    {"token", KIND(2), KIND(2),
     "where the last page's answer holds the next token, such as nextSyncToken"},
    {"resync_status", KIND(2) | KIND(3) | KIND(4), 0, NULL},
    {"next", KIND(3) | KIND(5), 0, NULL},
    {"delta", KIND(3), 0, NULL},
    {"removed", KIND(3), 0, NULL},
    {"list", KIND(4) | KIND(5), KIND(4) | KIND(5),
     "the call that reads, such as \"GET /v1/events\" or \"POST /contacts/search\""},
    {"object", KIND(4), 0, NULL},
    {"type", KIND(4), 0, NULL},
    {"deleted", KIND(4), 0, NULL},
    {"body", KIND(5), KIND(5), "the search's JSON body, with \"{since}\" and \"{after}\""},
    {"window", KIND(5), 0, NULL},
};

/* page_kinds: none, number, offset, cursor, link. */
static const struct kind_key page_kind_keys[] = {
    {"param", KIND(1) | KIND(2) | KIND(3), KIND(1) | KIND(2) | KIND(3),
     "the query parameter that carries the page number, offset or cursor"},
    {"size_param", KIND(1) | KIND(2) | KIND(3) | KIND(4), 0, NULL},
    {"size", KIND(1) | KIND(2) | KIND(3) | KIND(4), 0, NULL},
    {"next", KIND(3), KIND(3), "where an answer holds the next page's cursor, such as next_cursor"},
    {"has_more", KIND(1) | KIND(2) | KIND(3) | KIND(4), 0, NULL},
};

/* Each kind written with what it needs, for hints. */
static const char *const cursor_examples[] = {
    "cursor: none",
    "cursor: {kind: updated_since, param: updated_since, field: updated_at}",
    "cursor: {kind: sync_token, param: sync_token, token: nextSyncToken}",
    "cursor: delta_link",
    "cursor: {kind: events, list: \"GET /v1/events\"}",
    "cursor: {kind: search, list: \"POST /search\", body: {...}, field: updated_at}"};
static const char *const page_examples[] = {
    "page: none", "page: {kind: number, param: page}", "page: {kind: offset, param: offset}",
    "page: {kind: cursor, param: cursor, next: next_cursor}", "page: link"};

/* The names of mask as "a", "a and b", "a, b and c" (last is " and " or " or "). */
static const char *
kind_list(unsigned mask, const char *const *names, size_t n, const char *last, char *out,
          size_t len)
{
    size_t total = 0, seen = 0, used = 0;

    for (size_t i = 0; i < n; i++)
        total += (mask >> i) & 1U;
    out[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++) {
        if (((mask >> i) & 1U) == 0)
            continue;
        used += (size_t)snprintf(out + used, len - used, "%s%s",
                                 seen == 0           ? ""
                                 : seen + 1 == total ? last
                                                     : ", ",
                                 names[i]);
        seen++;
    }
    return out;
}

/* What poll.cursor and poll.page each know. */
struct kind_table {
    const char *what; /* "cursor" or "page" */
    const char *const *kinds;
    size_t kind_count;
    const char *const *keys; /* every key the mapping may hold */
    size_t key_count;
    const struct kind_key *kind_keys;
    size_t kind_key_count;
    const char *const *examples; /* per kind */
};

static const struct kind_table cursor_table = {
    .what = "cursor",
    .kinds = cursor_kinds,
    .kind_count = ARRAY_COUNT(cursor_kinds),
    .keys = cursor_keys,
    .key_count = ARRAY_COUNT(cursor_keys),
    .kind_keys = cursor_kind_keys,
    .kind_key_count = ARRAY_COUNT(cursor_kind_keys),
    .examples = cursor_examples,
};
static const struct kind_table page_table = {
    .what = "page",
    .kinds = page_kinds,
    .kind_count = ARRAY_COUNT(page_kinds),
    .keys = page_keys,
    .key_count = ARRAY_COUNT(page_keys),
    .kind_keys = page_kind_keys,
    .kind_key_count = ARRAY_COUNT(page_kind_keys),
    .examples = page_examples,
};

/*
 * The kind of poll.cursor or poll.page at v: a bare kind ("link") or a
 * mapping with kind. Returns its index in t->kinds, or -1 after saying why.
 */
static int
poll_kind(struct config_ctx *c, const struct config_node *v, const char *path,
          const struct kind_table *t)
{
    char buf[64], list[128], hint[96];
    int i;

    if (v->kind == CONFIG_NODE_MAPPING) {
        config_check_keys(c, v, path, t->keys, t->key_count);
        if (config_node_get(v, "kind") == NULL) {
            config_missing(c, v, path, "kind");
            return -1;
        }
        return config_opt_choice(c, v, path, "kind", t->kinds, t->kind_count);
    }
    if (v->kind == CONFIG_NODE_SCALAR &&
        (i = config_in_list(v->value, t->kinds, t->kind_count)) >= 0)
        return i;
    CONFIG_PROBLEM(
        c, v, "%s: expected a mapping with kind, or one of %s, got %s%s", path,
        kind_list(~0U, t->kinds, t->kind_count, " or ", list, sizeof(list)),
        config_node_show(v, buf, sizeof(buf)),
        v->kind == CONFIG_NODE_SCALAR && !config_node_is_null(v)
            ? config_did_you_mean(c, v->value, t->kinds, t->kind_count, hint, sizeof(hint))
            : "");
    return -1;
}

/*
 * The keys of poll.cursor or poll.page at v against its kind k: a key of
 * other kinds is reported at the key, a missing one at the mapping; a bare
 * kind that needs keys is reported at v.
 */
static void
check_kind_keys(struct config_ctx *c, const struct config_node *v, const char *path,
                const struct kind_table *t, int k)
{
    const char *needed[16] = {NULL};
    unsigned bit = KIND(k), need = 0;
    char list[128];

    for (size_t j = 0; j < t->kind_key_count && j < ARRAY_COUNT(needed); j++) {
        const struct kind_key *kk = &t->kind_keys[j];
        const struct config_node *key = config_node_key(v, kk->key);

        needed[j] = kk->key;
        if (kk->required & bit)
            need |= KIND(j);
        if (key != NULL && (kk->allowed & bit) == 0)
            CONFIG_PROBLEM(
                c, key, "%s.%s: %s is only for %s kind%s %s, not %s; hint: remove it", path,
                kk->key, kk->key, t->what, (kk->allowed & (kk->allowed - 1)) != 0 ? "s" : "",
                kind_list(kk->allowed, t->kinds, t->kind_count, " and ", list, sizeof(list)),
                t->kinds[k]);
        else if (key == NULL && (kk->required & bit) && v->kind == CONFIG_NODE_MAPPING)
            CONFIG_PROBLEM(c, v, "%s: missing required key \"%s\"; hint: %s kind %s needs it: %s",
                           path, kk->key, t->what, t->kinds[k], kk->what);
    }
    if (v->kind != CONFIG_NODE_MAPPING && need != 0)
        CONFIG_PROBLEM(c, v, "%s: %s kind %s needs %s, which a bare kind cannot give; hint: %s",
                       path, t->what, t->kinds[k],
                       kind_list(need, needed, ARRAY_COUNT(needed), " and ", list, sizeof(list)),
                       t->examples[k]);
}

/* What an events cursor reads unless told otherwise: Stripe's feed. */
static void
config_poll_events_defaults(struct config_poll *pl)
{
    pl->resync_status = xcalloc(1, sizeof(*pl->resync_status));
    pl->resync_status[0] = 404; /* Stripe: "No such event" once it is past retention */
    pl->resync_status_count = 1;
    pl->cursor_param = xstrdup("ending_before");
    pl->event_object_path = xstrdup("data.object");
    pl->event_type_path = xstrdup("type");
    pl->event_deleted_suffix = xstrdup(".deleted");
}

/* config_opt_str() over a default: the default goes when the key is given. */
static void
replace_str(struct config_ctx *c, const struct config_node *v, const char *path, const char *key,
            char **out)
{
    char *given = NULL;

    if (config_node_get(v, key) == NULL)
        return;
    config_opt_str(c, v, path, key, &given);
    if (given != NULL) {
        free(*out);
        *out = given;
    }
}

/* format: how a watermark is written (ms, s or iso); the default stays otherwise. */
static void
parse_cursor_format(struct config_ctx *c, const struct config_node *v, const char *path,
                    struct config_poll *pl)
{
    int i = config_opt_choice(c, v, path, "format", cursor_formats, ARRAY_COUNT(cursor_formats));

    if (i >= 0) {
        free(pl->cursor_format);
        pl->cursor_format = xstrdup(cursor_formats[i]);
    }
}

/*
 * poll.cursor of kind search: the call (any method; a body goes as JSON),
 * its body, where records hold their last-change time, and how many
 * results one query can page through.
 */
static void
parse_search_cursor(struct config_ctx *c, const struct config_node *v, const char *path,
                    struct config_poll *pl)
{
    const struct config_node *b = config_node_get(v, "body");

    config_parse_endpoint(c, v, path, "list", &pl->search);
    if (b != NULL) {
        char *p = config_join(path, "body");

        if (config_want_map(c, b, p))
            pl->search_body = config_node_json(b);
        free(p);
    }
    config_opt_str(c, v, path, "field", &pl->cursor_field);
    parse_cursor_format(c, v, path, pl);
    config_opt_duration(c, v, path, "overlap", 0, &pl->overlap_ms);
    replace_str(c, v, path, "next", &pl->search_next_path);
    config_opt_int(c, v, path, "window", (struct config_range){1, INT32_MAX}, &pl->search_window);
}

/* poll.cursor: how a poll reads only what changed. */
static void
parse_poll_cursor(struct config_ctx *c, const struct config_node *v, const char *path,
                  struct config_poll *pl)
{
    const struct config_node *rs;
    int k = poll_kind(c, v, path, &cursor_table);

    if (k < 0)
        return;
    pl->cursor = (enum config_cursor_kind)(CONFIG_CURSOR_NONE + k);
    if (pl->cursor == CONFIG_CURSOR_UPDATED_SINCE || pl->cursor == CONFIG_CURSOR_SEARCH) {
        pl->cursor_format = xstrdup("ms");
        pl->overlap_ms = 2000;
    } else if (pl->cursor == CONFIG_CURSOR_SYNC_TOKEN || pl->cursor == CONFIG_CURSOR_DELTA_LINK) {
        pl->resync_status = xcalloc(1, sizeof(*pl->resync_status));
        pl->resync_status[0] = 410;
        pl->resync_status_count = 1;
    }
    if (pl->cursor == CONFIG_CURSOR_DELTA_LINK) {
        pl->delta_next_path = xstrdup("@odata.nextLink");
        pl->delta_path = xstrdup("@odata.deltaLink");
        pl->removed_path = xstrdup("@removed");
    } else if (pl->cursor == CONFIG_CURSOR_EVENTS) {
        config_poll_events_defaults(pl);
    }
    if (pl->cursor == CONFIG_CURSOR_SEARCH) {
        pl->search_next_path = xstrdup("paging.next.after");
        pl->search_window = 10000;
    }
    check_kind_keys(c, v, path, &cursor_table, k);
    if (v->kind != CONFIG_NODE_MAPPING || pl->cursor == CONFIG_CURSOR_NONE)
        return;
    if (pl->cursor == CONFIG_CURSOR_SEARCH) {
        parse_search_cursor(c, v, path, pl);
        return;
    }
    if (pl->cursor == CONFIG_CURSOR_DELTA_LINK || pl->cursor == CONFIG_CURSOR_EVENTS) {
        replace_str(c, v, path, "next", &pl->delta_next_path);
        replace_str(c, v, path, "delta", &pl->delta_path);
        replace_str(c, v, path, "removed", &pl->removed_path);
        replace_str(c, v, path, "param", &pl->cursor_param);
        replace_str(c, v, path, "object", &pl->event_object_path);
        replace_str(c, v, path, "type", &pl->event_type_path);
        replace_str(c, v, path, "deleted", &pl->event_deleted_suffix);
        if (pl->cursor == CONFIG_CURSOR_EVENTS) {
            config_parse_endpoint(c, v, path, "list", &pl->events);
            if (pl->events.method != NULL && strcmp(pl->events.method, "GET") != 0)
                CONFIG_PROBLEM(
                    c, config_node_get(v, "list"),
                    "%s.list: the event list is read with GET, got %s; hint: list: \"GET "
                    "%.64s\"",
                    path, pl->events.method, pl->events.path);
        }
        if ((rs = config_node_get(v, "resync_status")) != NULL) {
            char *p = config_join(path, "resync_status");

            free(pl->resync_status);
            pl->resync_status = NULL;
            pl->resync_status_count = 0;
            config_parse_status_list(c, rs, p, "[410]", &pl->resync_status,
                                     &pl->resync_status_count);
            free(p);
        }
        return;
    }
    config_opt_str(c, v, path, "param", &pl->cursor_param);
    if (pl->cursor == CONFIG_CURSOR_UPDATED_SINCE) {
        config_opt_str(c, v, path, "field", &pl->cursor_field);
        parse_cursor_format(c, v, path, pl);
        config_opt_duration(c, v, path, "overlap", 0, &pl->overlap_ms);
        return;
    }
    config_opt_str(c, v, path, "token", &pl->token_path);
    rs = config_node_get(v, "resync_status");
    if (rs != NULL) {
        char *p = config_join(path, "resync_status");

        config_parse_status_list(c, rs, p, "[410]", &pl->resync_status, &pl->resync_status_count);
        free(p);
    }
}

/* poll.page: how one poll walks the pages of the list. */
static void
parse_poll_page(struct config_ctx *c, const struct config_node *v, const char *path,
                struct config_poll *pl)
{
    int k = poll_kind(c, v, path, &page_table);

    if (k < 0)
        return;
    pl->page = (enum config_page_kind)(CONFIG_PAGE_NONE + k);
    check_kind_keys(c, v, path, &page_table, k);
    if (v->kind != CONFIG_NODE_MAPPING || pl->page == CONFIG_PAGE_NONE)
        return;
    if (pl->page != CONFIG_PAGE_LINK)
        config_opt_str(c, v, path, "param", &pl->page_param);
    config_opt_str(c, v, path, "size_param", &pl->size_param);
    config_opt_int(c, v, path, "size", (struct config_range){1, 10000}, &pl->page_size);
    if (pl->page == CONFIG_PAGE_CURSOR)
        config_opt_str(c, v, path, "next", &pl->next_path);
    config_opt_str(c, v, path, "has_more", &pl->has_more_path);
}

/* poll: reading the collection's changes on a schedule. */
/* poll: sql is 1 for a table (no list, cursor or page), 2 for a profile's
 * collection (the list may be left to the profile), 3 for a calendar of a
 * caldav system (read by sync-collection: no list, cursor or page), 0
 * otherwise. */
static void
config_parse_poll(struct config_ctx *c, const struct config_node *v, const char *path,
                  struct config_poll *pl, int sql)
{
    const struct config_node *n;
    char buf[64], *p;

    if (!config_want_map(c, v, path))
        return;
    pl->enabled = 1;
    config_check_keys(c, v, path, poll_keys, ARRAY_COUNT(poll_keys));
    if ((n = config_node_get(v, "cron")) != NULL) {
        char why[160];
        size_t at = 0;

        if (config_node_get(v, "every") != NULL)
            CONFIG_PROBLEM(c, config_node_key(v, "every"),
                           "%s: every and cron do not go together; hint: keep one of them", path);
        if (n->kind != CONFIG_NODE_SCALAR || config_node_is_null(n))
            CONFIG_PROBLEM(c, n,
                           "%s.cron: expected a cron expression such as \"*/5 * * * *\", got %s",
                           path, config_node_show(n, buf, sizeof(buf)));
        else if (cron_parse(n->value, &pl->cron, why, sizeof(why), &at) == -1)
            config_diag_add(c->diags, n->line, n->col + (int)at + (n->is_quoted ? 1 : 0),
                            "%s.cron: %s; hint: five fields, minute hour day month weekday, "
                            "in UTC: \"*/5 * * * *\"",
                            path, why);
        else
            pl->has_cron = 1;
    } else if (config_node_get(v, "every") == NULL) {
        config_missing(c, v, path, "every");
    }
    config_opt_duration(c, v, path, "every", 100, &pl->every_ms);
    if ((n = config_node_get(v, "jitter")) != NULL) {
        p = config_join(path, "jitter");
        (void)config_get_share(c, n, p, &pl->jitter);
        free(p);
    }
    if (sql == 1 || sql == 3) {
        /* A table is read by its key, or by (updated_at, key); a calendar by
         * sync-collection from its last token: nothing to say. */
        static const char *const http_only[] = {"list", "items", "cursor", "page"};

        for (size_t i = 0; i < ARRAY_COUNT(http_only); i++)
            if (config_node_key(v, http_only[i]) != NULL)
                CONFIG_PROBLEM(c, config_node_key(v, http_only[i]),
                               sql == 1
                                   ? "%s.%s: a table is read in pages of its key, incrementally "
                                     "when the collection names updated_at; hint: remove %s"
                                   : "%s.%s: a calendar is read by sync-collection, from the "
                                     "token of its last read; hint: remove %s",
                               path, http_only[i], http_only[i]);
        pl->page_size = 1000;
        config_opt_duration(c, v, path, "reconcile", 1000, &pl->reconcile_every_ms);
        return;
    }
    if ((n = config_node_get(v, "each")) != NULL) {
        /* Each linked copy read in turn: no list, so no cursor or pages. */
        static const char *const list_only[] = {"list", "items", "cursor", "page"};

        for (size_t i = 0; i < ARRAY_COUNT(list_only); i++)
            if (config_node_key(v, list_only[i]) != NULL)
                CONFIG_PROBLEM(c, config_node_key(v, list_only[i]),
                               "%s.%s: a poll with `each` reads every linked copy by its id, not a "
                               "list; hint: remove %s",
                               path, list_only[i], list_only[i]);
        config_parse_endpoint(c, v, path, "each", &pl->each);
        if (pl->each.method != NULL && strcmp(pl->each.method, "GET") != 0)
            CONFIG_PROBLEM(c, n,
                           "%s.each: a copy is read with GET, got %s; hint: each: \"GET %.64s\"",
                           path, config_node_show(n, buf, sizeof(buf)), pl->each.path);
        config_opt_duration(c, v, path, "reconcile", 1000, &pl->reconcile_every_ms);
        return;
    }
    if ((n = config_node_get(v, "list")) == NULL && sql != 2) /* 2: the profile knows it */
        config_missing(c, v, path, "list");
    config_parse_endpoint(c, v, path, "list", &pl->list);
    if (pl->list.method != NULL && strcmp(pl->list.method, "GET") != 0)
        CONFIG_PROBLEM(c, n,
                       "%s.list: the list is read with GET, got %s; hint: list: \"GET %.64s\"",
                       path, config_node_show(n, buf, sizeof(buf)), pl->list.path);
    if (pl->list.path != NULL) {
        p = config_join(path, "list");
        check_list_times(c, n, p, pl->list.path);
        free(p);
    }
    config_opt_str(c, v, path, "items", &pl->items_path);
    if ((n = config_node_get(v, "cursor")) != NULL) {
        p = config_join(path, "cursor");
        parse_poll_cursor(c, n, p, pl);
        free(p);
    }
    if (pl->cursor == CONFIG_CURSOR_DELTA_LINK && pl->items_path == NULL)
        pl->items_path = xstrdup("value"); /* where Graph's answers hold their items */
    if ((n = config_node_get(v, "page")) != NULL) {
        p = config_join(path, "page");
        parse_poll_page(c, n, p, pl);
        if (pl->cursor == CONFIG_CURSOR_DELTA_LINK && pl->page != CONFIG_PAGE_NONE)
            CONFIG_PROBLEM(
                c, n,
                "%s: a delta_link cursor walks its pages by their next links; hint: remove "
                "page",
                p);
        free(p);
    }
    config_opt_duration(c, v, path, "reconcile", 1000, &pl->reconcile_every_ms);
}

static const char *const sql_collection_keys[] = {"table", "key", "soft_delete", "query"};

/*
 * A collection of a SQL system: its table, key, soft-delete column and
 * read query. Its writes are the table's upserts and deletes, so the HTTP
 * endpoints are synthesized ("INSERT /t", "UPDATE /t/{id}", "DELETE
 * /t/{id}") and may not be written; its external id is the key.
 */
static void
parse_sql_collection(struct config_ctx *c, const struct config_node *v, const char *path,
                     struct config_collection *col)
{
    static const char *const http_only[] = {"create",
                                            "update",
                                            "delete",
                                            "created_id",
                                            "created_id_from",
                                            "lookup",
                                            "lookup_result",
                                            "idempotency_header",
                                            "idempotency_field",
                                            "id"};
    const struct config_node *n;
    char *p;

    for (size_t i = 0; i < ARRAY_COUNT(http_only); i++)
        if (config_node_key(v, http_only[i]) != NULL)
            CONFIG_PROBLEM(c, config_node_key(v, http_only[i]),
                           "%s.%s: a collection of a %s system writes its table with upserts and "
                           "deletes; hint: remove %s%s",
                           path, http_only[i],
                           col->system->kind == CONFIG_SYSTEM_SQLITE ? "sqlite" : "postgres",
                           http_only[i],
                           strcmp(http_only[i], "id") == 0 ? " (key names the column)" : "");
    if (config_node_get(v, "table") == NULL)
        config_missing(c, v, path, "table");
    config_opt_str(c, v, path, "table", &col->sql_table);
    config_opt_str(c, v, path, "key", &col->sql_key);
    config_opt_str(c, v, path, "query", &col->sql_query);
    if (col->sql_key == NULL)
        col->sql_key = xstrdup("id");
    if ((n = config_node_get(v, "soft_delete")) != NULL) {
        p = config_join(path, "soft_delete");
        if (n->kind == CONFIG_NODE_SCALAR && !config_node_is_null(n)) {
            col->sql_soft_delete = xstrdup(n->value); /* a bare column: set to true */
        } else if (config_want_map(c, n, p)) {
            const struct config_node *val = config_node_get(n, "value");

            config_check_keys(c, n, p, soft_delete_keys, ARRAY_COUNT(soft_delete_keys));
            if (config_node_get(n, "column") == NULL)
                config_missing(c, n, p, "column");
            config_opt_str(c, n, p, "column", &col->sql_soft_delete);
            if (val != NULL && val->kind == CONFIG_NODE_SCALAR) {
                cJSON *j = config_node_json(val);

                col->sql_soft_delete_value = cJSON_PrintUnformatted(j);
                cJSON_Delete(j);
            } else if (val != NULL) {
                CONFIG_PROBLEM(c, val, "%s.value: expected a value such as true or \"deleted\"", p);
            }
        }
        free(p);
    }
    free(col->id_path);
    col->id_path = xstrdup(col->sql_key);
    free(col->created_id_path);
    col->created_id_path = xstrdup(col->sql_key);
    if (col->sql_table != NULL && config_node_get(v, "map_out") != NULL) {
        col->create.method = xstrdup("INSERT");
        col->create.path = xasprintf("/%s", col->sql_table);
        col->update.method = xstrdup("UPDATE");
        col->update.path = xasprintf("/%s/{id}", col->sql_table);
        col->remove.method = xstrdup("DELETE");
        col->remove.path = xasprintf("/%s/{id}", col->sql_table);
    }
}

/*
 * on_conflict: the status of a create's answer that names an existing
 * copy (HubSpot's 409), and where: a path in the answer, or the text of
 * the error message that the id follows ("Existing ID: ").
 */
static void
parse_on_conflict(struct config_ctx *c, const struct config_node *v, const char *path,
                  struct config_collection *col)
{
    int64_t status = 409;

    if (!config_want_map(c, v, path))
        return;
    config_check_keys(c, v, path, conflict_keys, ARRAY_COUNT(conflict_keys));
    config_opt_int(c, v, path, "status", (struct config_range){400, 499}, &status);
    col->conflict_status = (int)status;
    config_opt_str(c, v, path, "id", &col->conflict_id_path);
    config_opt_str(c, v, path, "id_after", &col->conflict_id_after);
    if (col->conflict_id_after != NULL && col->conflict_id_after[0] == '\0')
        CONFIG_PROBLEM(c, config_node_get(v, "id_after"),
                       "%s.id_after: expected the text the id follows, such as \"Existing ID: \"",
                       path);
    if ((col->conflict_id_path == NULL) == (config_node_get(v, "id_after") == NULL))
        CONFIG_PROBLEM(
            c, v,
            "%s: expected exactly one of id (a path in the answer) and id_after (the text "
            "of the error message the id follows); hint: id_after: \"Existing ID: \"",
            path);
    if (col->create.method == NULL && col->system->profile == CONFIG_PROFILE_NONE)
        CONFIG_PROBLEM(c, v,
                       "%s: it settles a create's answer, and this collection has no create; hint: "
                       "add create, or remove on_conflict",
                       path);
}

/*
 * A collection of a caldav system: one calendar, whose records are
 * canonical appointments (docs/calendars.md) with their href (the copy's
 * id) and etag. concord reads it by sync-collection and writes each event
 * with PUT (If-None-Match / If-Match) and DELETE (engine/caldav.c), so the
 * endpoints are its own: set here as markers, and refused when written.
 */
static void config_set_endpoint(struct config_endpoint *ep, const char *method, char *path);

static void
config_caldav_collection(struct config_ctx *c, const struct config_node *v, const char *path,
                         struct config_collection *col)
{
    static const char *const not_here[] = {"id",
                                           "record",
                                           "match",
                                           "create",
                                           "update",
                                           "delete",
                                           "created_id",
                                           "idempotency_header",
                                           "idempotency_field",
                                           "lookup",
                                           "lookup_result",
                                           "restore",
                                           "numbering",
                                           "on_conflict",
                                           "hint",
                                           "deleted_id",
                                           "string_values",
                                           "body"};
    const struct config_node *n;

    for (size_t i = 0; i < ARRAY_COUNT(not_here); i++)
        if (config_node_key(v, not_here[i]) != NULL)
            CONFIG_PROBLEM(
                c, config_node_key(v, not_here[i]),
                "%s.%s: a caldav collection is a calendar: concord reads it by "
                "sync-collection and writes its events with PUT and DELETE, each event's "
                "href its id; hint: remove %s",
                path, not_here[i], not_here[i]);
    if ((n = config_node_get(v, "calendar")) != NULL &&
        (n->kind != CONFIG_NODE_SCALAR || config_node_is_null(n) || n->value[0] == '\0'))
        CONFIG_PROBLEM(
            c, n, "%s.calendar: expected the calendar's path (/ana/work/), URL or display name",
            path);
    else
        config_opt_str(c, v, path, "calendar", &col->caldav_calendar);
    if (n == NULL && config_node_get(v, "poll") == NULL && config_node_get(v, "map_out") != NULL)
        CONFIG_PROBLEM(c, v,
                       "%s: without calendar, the calendar is found by discovery, which the poll "
                       "does, and this collection has no poll; hint: calendar: /user/calendar/, or "
                       "poll: {every: 1m}",
                       path);
    free(col->id_path);
    col->id_path = xstrdup("href");
    free(col->created_id_path);
    col->created_id_path = xstrdup("href");
    if (config_node_get(v, "map_out") != NULL) {
        /* Markers for the engine's plan; caldav.c makes each request. */
        config_set_endpoint(&col->create, "PUT", xstrdup("/"));
        config_set_endpoint(&col->update, "PUT", xstrdup("/"));
        config_set_endpoint(&col->remove, "DELETE", xstrdup("/"));
    }
}

static void
parse_collection(struct config_ctx *c, const struct config_node *v, const char *path,
                 struct config_collection *col)
{
    const struct config_node *model_n = config_node_get(v, "model"), *m;
    const struct config_model *model = NULL;
    char *p;

    if (!config_want_map(c, v, path))
        return;
    config_check_keys(c, v, path, collection_keys, ARRAY_COUNT(collection_keys));
    if (model_n == NULL)
        config_missing(c, v, path, "model");
    else
        config_opt_str(c, v, path, "model", &col->model);
    if (col->model != NULL) {
        p = config_join(path, "model");
        model = config_ref_model(c, model_n, p, col->model);
        free(p);
    }
    if (config_node_get(v, "id") != NULL)
        parse_created_id(c, config_node_get(v, "id"), path, "id", &col->id_path);
    config_opt_str(c, v, path, "record", &col->record_path);
    config_opt_jq(c, v, path, "match", &col->match_jq);
    config_opt_jq(c, v, path, "deleted_when", &col->deleted_jq);
    m = config_node_get(v, "map_in");
    if (m != NULL) {
        p = config_join(path, "map_in");
        parse_map(c, m, p, model, &col->map_in);
        free(p);
    }
    m = config_node_get(v, "map_out");
    if (m != NULL) {
        p = config_join(path, "map_out");
        parse_map(c, m, p, NULL, &col->map_out);
        free(p);
    }
    if (col->system->profile == CONFIG_PROFILE_CALDAV)
        config_caldav_collection(c, v, path, col);
    else if (config_node_key(v, "calendar") != NULL)
        CONFIG_PROBLEM(
            c, config_node_key(v, "calendar"),
            "%s.calendar: calendar is for collections of caldav systems; hint: remove it", path);
    if (col->system->kind != CONFIG_SYSTEM_HTTP)
        parse_sql_collection(c, v, path, col);
    else
        for (size_t i = 0; i < ARRAY_COUNT(sql_collection_keys); i++)
            if (config_node_key(v, sql_collection_keys[i]) != NULL)
                CONFIG_PROBLEM(c, config_node_key(v, sql_collection_keys[i]),
                               "%s.%s: %s is for collections of sqlite and postgres systems; hint: "
                               "remove it",
                               path, sql_collection_keys[i], sql_collection_keys[i]);
    config_parse_endpoint(c, v, path, "create", &col->create);
    config_parse_endpoint(c, v, path, "update", &col->update);
    config_parse_endpoint(c, v, path, "delete", &col->remove);
    config_parse_endpoint(c, v, path, "restore", &col->restore);
    if (config_node_get(v, "created_id") != NULL)
        parse_created_id(c, config_node_get(v, "created_id"), path, "created_id",
                         &col->created_id_path);
    if (config_opt_choice(c, v, path, "created_id_from", created_id_froms,
                          ARRAY_COUNT(created_id_froms)) == 1)
        col->created_id_from_request = 1;
    config_opt_str(c, v, path, "idempotency_header", &col->idempotency_header);
    config_opt_str(c, v, path, "idempotency_field", &col->idempotency_field);
    config_parse_endpoint(c, v, path, "lookup", &col->lookup);
    config_opt_str(c, v, path, "lookup_result", &col->lookup_result_path);
    if ((m = config_node_get(v, "numbering")) != NULL) {
        p = config_join(path, "numbering");
        parse_numbering(c, m, p, &col->numbering);
        free(p);
    }
    parse_on_delete(c, v, path, col);
    if ((m = config_node_get(v, "on_conflict")) != NULL) {
        p = config_join(path, "on_conflict");
        parse_on_conflict(c, m, p, col);
        free(p);
    }
    if ((m = config_node_get(v, "poll")) != NULL) {
        p = config_join(path, "poll");
        config_parse_poll(c, m, p, &col->poll,
                          col->system->kind != CONFIG_SYSTEM_HTTP         ? 1
                          : col->system->profile == CONFIG_PROFILE_CALDAV ? 3
                          : col->system->profile != CONFIG_PROFILE_NONE   ? 2
                                                                          : 0);
        if (col->system->kind != CONFIG_SYSTEM_HTTP && col->updated_at_path != NULL) {
            col->poll.cursor = CONFIG_CURSOR_UPDATED_SINCE;
            col->poll.cursor_field = xstrdup(col->updated_at_path);
            col->poll.overlap_ms = 2000;
        }
        if (col->poll.enabled && config_node_get(v, "map_in") == NULL)
            CONFIG_PROBLEM(
                c, config_node_key(v, "poll"),
                "%s: a poll reads records in through map_in, and this collection has none; "
                "hint: add map_in, or remove poll",
                p);
        free(p);
    }
    if (config_node_get(v, "body") != NULL) {
        int i = config_opt_choice(c, v, path, "body", body_kinds, ARRAY_COUNT(body_kinds));

        col->body_form = i == 1;
    }
    if ((m = config_node_get(v, "hint")) != NULL) {
        int i = config_opt_choice(c, v, path, "hint", hint_modes, ARRAY_COUNT(hint_modes));

        col->webhook_hint = i >= 0;
        if (i >= 0 && !col->poll.enabled)
            CONFIG_PROBLEM(
                c, m,
                "%s.hint: a hint asks for a poll, and this collection has no poll; hint: add "
                "poll (with a long `every`: the hints say when)",
                path);
    }
    config_opt_str(c, v, path, "string_values", &col->string_values_path);
    if ((m = config_node_get(v, "deleted_id")) != NULL) {
        config_opt_str(c, v, path, "deleted_id", &col->deleted_id_path);
        if (config_node_get(v, "hint") == NULL || config_node_get(v, "deleted_when") == NULL)
            CONFIG_PROBLEM(
                c, config_node_key(v, "deleted_id"),
                "%s.deleted_id: it names the copy a deletion event of a hint is about; hint: "
                "it goes with hint: poll and deleted_when",
                path);
    }
}

static void config_stripe_collection(struct config_ctx *c, const struct config_node *v,
                                     const char *path, struct config_collection *col,
                                     const struct config_node *key);
static void config_smartbill_collection(struct config_ctx *c, const struct config_node *v,
                                        const char *path, struct config_collection *col,
                                        const struct config_node *key);
static void config_oblio_collection(struct config_ctx *c, const struct config_node *v,
                                    const char *path, struct config_collection *col,
                                    const struct config_node *key);
static void config_hubspot_collection(struct config_ctx *c, const struct config_node *v,
                                      const char *path, struct config_collection *col,
                                      const struct config_node *key);
static void config_calendar_collection(struct config_ctx *c, const struct config_node *v,
                                       const char *path, struct config_collection *col,
                                       const struct config_node *key);

static void
config_parse_collections(struct config_ctx *c, const struct config_node *v, const char *path,
                         struct config_system *s)
{
    struct config *cfg = c->cfg;

    if (!config_want_map(c, v, path))
        return;
    for (size_t i = 0; i + 1 < v->kid_count; i += 2) {
        const struct config_node *k = v->kids[i];
        struct config_collection *col = &cfg->collections[cfg->collection_count++];
        char *p = config_join(path, k->value);

        config_check_name(c, k, path, "collection");
        col->name = xasprintf("%s.%s", s->name, k->value);
        col->short_name = xstrdup(k->value);
        col->system = s;
        col->id_path = xstrdup("id");
        col->created_id_path = xstrdup("id");
        col->on_delete = CONFIG_DELETE_IGNORE; /* parse_on_delete() decides */
        col->poll.cursor = CONFIG_CURSOR_NONE; /* poll.enabled 0 until config_parse_poll() */
        col->poll.page = CONFIG_PAGE_NONE;
        col->poll.jitter = 0.1;
        col->poll.page_size = 100;
        col->pos = (struct config_pos){k->line, k->col};
        parse_collection(c, v->kids[i + 1], p, col);
        if (s->profile == CONFIG_PROFILE_STRIPE && v->kids[i + 1]->kind == CONFIG_NODE_MAPPING)
            config_stripe_collection(c, v->kids[i + 1], p, col, k);
        else if (s->profile == CONFIG_PROFILE_SMARTBILL &&
                 v->kids[i + 1]->kind == CONFIG_NODE_MAPPING)
            config_smartbill_collection(c, v->kids[i + 1], p, col, k);
        else if (s->profile == CONFIG_PROFILE_OBLIO && v->kids[i + 1]->kind == CONFIG_NODE_MAPPING)
            config_oblio_collection(c, v->kids[i + 1], p, col, k);
        else if (s->profile == CONFIG_PROFILE_HUBSPOT &&
                 v->kids[i + 1]->kind == CONFIG_NODE_MAPPING)
            config_hubspot_collection(c, v->kids[i + 1], p, col, k);
        else if ((s->profile == CONFIG_PROFILE_GOOGLE_CALENDAR ||
                  s->profile == CONFIG_PROFILE_MICROSOFT_GRAPH) &&
                 v->kids[i + 1]->kind == CONFIG_NODE_MAPPING)
            config_calendar_collection(c, v->kids[i + 1], p, col, k);
        free(p);
    }
}

/* ---- Systems ---- */

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

static void
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

/*
 * systems.X of kind stripe: an http system whose base_url (Stripe's, unless
 * given: a simulator's), auth (api_key, a secret, as a bearer token),
 * webhook (webhook_secret: Stripe-Signature), rate limit (25/s, test mode),
 * and do-not-retry header are Stripe's; its collections are filled in by
 * config_stripe_collection(). docs/stripe.md.
 */
static void
config_stripe_system(struct config_ctx *c, const struct config_node *v, const char *path,
                     struct config_system *s)
{
    const struct config_node *n;
    char *p;

    s->profile = CONFIG_PROFILE_STRIPE;
    if ((n = config_node_get(v, "base_url")) != NULL)
        config_parse_base_url(c, n, path, s);
    else
        s->base_url = xstrdup("https://api.stripe.com");
    if (config_node_key(v, "auth") != NULL)
        CONFIG_PROBLEM(c, config_node_key(v, "auth"),
                       "%s.auth: a stripe system authenticates with its api_key; hint: remove auth",
                       path);
    if ((n = config_node_get(v, "api_key")) == NULL) {
        config_missing(c, v, path, "api_key");
    } else {
        p = config_join(path, "api_key");
        s->auth_headers = xcalloc(1, sizeof(*s->auth_headers));
        s->auth_headers[0].name = xstrdup("Authorization");
        s->auth_header_count = 1;
        if (config_get_secret(c, n, p, &s->auth_headers[0].value) == 0)
            config_secret_prefix(&s->auth_headers[0].value, "Bearer ");
        free(p);
    }
    if ((n = config_node_get(v, "webhook_secret")) != NULL) {
        if (config_node_key(v, "webhook") != NULL)
            CONFIG_PROBLEM(
                c, config_node_key(v, "webhook"),
                "%s.webhook: a stripe system's webhook is its webhook_secret; hint: remove "
                "webhook (its path is /webhooks/%s)",
                path, s->name);
        s->webhook.enabled = 1;
        s->webhook.has_signature = 1;
        free(s->webhook.signature.scheme);
        s->webhook.signature.scheme = xstrdup("stripe");
        s->webhook.signature.scheme_kind = CONFIG_SIG_SCHEME_STRIPE;
        p = config_join(path, "webhook_secret");
        config_parse_sig_secrets(c, n, p, &s->webhook.signature);
        free(p);
    }
    if (s->errors.message_path == NULL)
        s->errors.message_path = xstrdup("error.message");
    if (config_node_get(v, "rate_limit") == NULL) {
        s->rate_limit.rate_per_s = 25; /* test mode's limit; live allows 100 */
        s->rate_limit.burst = 25;
    }
}

/*
 * A collection of a stripe system: what the operator did not say is
 * Stripe's. Webhooks are events (the record at data.object, routed by
 * type); writes are forms with an Idempotency-Key; a poll reads the event
 * feed after the last event, and the list whole with starting_after.
 */
static void
config_stripe_collection(struct config_ctx *c, const struct config_node *v, const char *path,
                         struct config_collection *col, const struct config_node *key)
{
    struct config_poll *pl = &col->poll;
    const struct stripe_kind *k = NULL;
    char buf[200];

    for (size_t i = 0; i < ARRAY_COUNT(stripe_kinds); i++) {
        if (strcmp(col->short_name, stripe_kinds[i].name) == 0)
            k = &stripe_kinds[i];
    }
    if (k == NULL) {
        CONFIG_PROBLEM(c, key,
                       "%s: a stripe system knows the collections customers, payment_intents, "
                       "charges, invoices and checkout_sessions; hint: name it so",
                       path);
        return;
    }
    if (col->record_path == NULL)
        col->record_path = xstrdup("data.object");
    (void)snprintf(buf, sizeof(buf), ".type | startswith(\"%s\")", k->events);
    if (col->match_jq == NULL)
        col->match_jq = xstrdup(buf);
    if (col->deleted_jq == NULL && k->deleted != NULL) {
        (void)snprintf(buf, sizeof(buf), ".type == \"%s\"", k->deleted);
        col->deleted_jq = xstrdup(buf);
    }
    if (config_node_get(v, "body") == NULL)
        col->body_form = 1;
    if (k->writable && col->map_out.entry_count > 0) {
        if (col->create.method == NULL) {
            col->create.method = xstrdup("POST");
            col->create.path = xstrdup(k->path);
        }
        if (col->update.method == NULL) {
            col->update.method = xstrdup("POST"); /* Stripe updates with POST */
            col->update.path = xasprintf("%s/{id}", k->path);
        }
        if (col->remove.method == NULL) {
            col->remove.method = xstrdup("DELETE");
            col->remove.path = xasprintf("%s/{id}", k->path);
            if (config_node_get(v, "on_delete") == NULL)
                col->on_delete = CONFIG_DELETE_DELETE;
        }
    }
    if (col->map_out.entry_count > 0 && col->idempotency_header == NULL)
        col->idempotency_header = xstrdup("Idempotency-Key");
    if (!pl->enabled)
        return;
    if (pl->list.method == NULL) {
        pl->list.method = xstrdup("GET");
        pl->list.path = xasprintf("%s?limit=100", k->path);
        if (pl->items_path == NULL)
            pl->items_path = xstrdup("data");
        if (pl->page == CONFIG_PAGE_NONE) {
            pl->page = CONFIG_PAGE_CURSOR;
            pl->page_param = xstrdup("starting_after");
            pl->next_path = xstrdup("data.-1.id");
            pl->has_more_path = xstrdup("has_more");
        }
    }
    if (pl->cursor == CONFIG_CURSOR_NONE &&
        config_node_get(config_node_get(v, "poll"), "cursor") == NULL) {
        pl->cursor = CONFIG_CURSOR_EVENTS;
        pl->events.method = xstrdup("GET");
        pl->events.path = xasprintf("/v1/events?type=%s*", k->events);
        config_poll_events_defaults(pl);
    }
}

/* ---- alerts (docs/operate.md) ---- */

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

/* ---- SmartBill and Oblio (docs/invoicing.md) ---- */

/* cif: a company's tax id, letters and digits ("RO12345678"). */
static void
parse_cif(struct config_ctx *c, const struct config_node *v, const char *path,
          struct config_system *s)
{
    const struct config_node *n = config_node_get(v, "cif");
    char *p;

    if (n == NULL) {
        config_missing(c, v, path, "cif");
        return;
    }
    p = config_join(path, "cif");
    if (config_get_str(c, n, p, &s->cif) == 0) {
        for (const char *q = s->cif; *q != '\0'; q++) {
            if (!((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') ||
                  (*q >= '0' && *q <= '9'))) {
                CONFIG_PROBLEM(c, n, "%s: expected letters and digits, such as RO12345678", p);
                break;
            }
        }
    }
    free(p);
}

/* The name a named kind is written with ("smartbill"). */
static const char *
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

/* The defaults of a named kind's http system (base_url unless given). */
static void
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
    if (config_node_key(v, "webhook") != NULL && profile == CONFIG_PROFILE_SMARTBILL)
        CONFIG_PROBLEM(c, config_node_key(v, "webhook"),
                       "%s.webhook: SmartBill sends no webhooks; hint: remove webhook", path);
    if (profile == CONFIG_PROFILE_SMARTBILL || profile == CONFIG_PROFILE_OBLIO)
        parse_cif(c, v, path, s);
}

/*
 * Basic auth from the system's username and the secret at key (its node
 * sec): the Authorization header of every request. The encoded pair is a
 * secret too, named by the secret's reference.
 */
static void
config_basic_auth(struct config_ctx *c, const char *path, const struct config_node *user,
                  const char *key, const struct config_node *sec_n, struct config_system *s)
{
    struct secret sec = {0};
    char *p = config_join(path, key);

    if (config_get_secret(c, sec_n, p, &sec) == 0) {
        char *up = config_join(path, "username"), *name = NULL;

        if (config_get_str(c, user, up, &name) == 0) {
            size_t ulen = strlen(name), enc_len;
            char *joined = xmalloc(ulen + 1 + sec.len + 1), *enc;

            memcpy(joined, name, ulen);
            joined[ulen] = ':';
            memcpy(joined + ulen + 1, secret_bytes(&sec), sec.len + 1);
            enc = config_base64((const unsigned char *)joined, ulen + 1 + sec.len, &enc_len);
            explicit_bzero(joined, ulen + 1 + sec.len);
            free(joined);
            s->auth_headers = xcalloc(1, sizeof(*s->auth_headers));
            s->auth_headers[0].name = xstrdup("Authorization");
            s->auth_headers[0].value.ref = xstrdup(sec.ref);
            s->auth_headers[0].value.value = enc;
            s->auth_headers[0].value.len = enc_len;
            config_secret_prefix(&s->auth_headers[0].value, "Basic ");
            s->auth_header_count = 1;
        }
        free(name);
        free(up);
    }
    secret_fini(&sec);
    free(p);
}

/*
 * systems.X of kind smartbill: Basic auth from username (the account's
 * e-mail) and token, the company's cif on every call, 30 calls in 10 s
 * (a token bucket of 3 and 2.7/s never makes 31), its 403 block, and
 * errorText, which may say no in a 200.
 */
static void
config_smartbill_system(struct config_ctx *c, const struct config_node *v, const char *path,
                        struct config_system *s)
{
    const struct config_node *user = config_node_get(v, "username"),
                             *tok = config_node_get(v, "token");

    config_profile_base(c, v, path, s, CONFIG_PROFILE_SMARTBILL, "https://ws.smartbill.ro",
                        "username and token");
    if (user == NULL)
        config_missing(c, v, path, "username");
    if (tok == NULL)
        config_missing(c, v, path, "token");
    if (user != NULL && tok != NULL)
        config_basic_auth(c, path, user, "token", tok, s);
    if (config_node_get(v, "rate_limit") == NULL) {
        s->rate_limit.rate_per_s = 2.7;
        s->rate_limit.burst = 3;
    }
    if (config_node_get(v, "rate_limited_status") == NULL) {
        s->rate_limit.limited_status = xcalloc(1, sizeof(int));
        s->rate_limit.limited_status[0] = 403;
        s->rate_limit.limited_status_count = 1;
    }
    if (config_node_get(v, "rate_limited_block") == NULL)
        s->rate_limit.block_ms = 600000; /* "blocked for 10 minutes" */
    s->errors.message_path = xstrdup("errorText");
    s->errors.in_ok_path = xstrdup("errorText");
}

/*
 * systems.X of kind oblio: OAuth2 client credentials from email and
 * api_secret at /api/authorize/token, and the company's cif.
 */
static void
config_oblio_system(struct config_ctx *c, const struct config_node *v, const char *path,
                    struct config_system *s)
{
    const struct config_node *email = config_node_get(v, "email"),
                             *sec = config_node_get(v, "api_secret");
    char *p;

    config_profile_base(c, v, path, s, CONFIG_PROFILE_OBLIO, "https://www.oblio.eu",
                        "email and api_secret");
    if (email == NULL)
        config_missing(c, v, path, "email");
    if (sec == NULL)
        config_missing(c, v, path, "api_secret");
    s->oauth2.enabled = 1;
    s->oauth2.grant = CONFIG_GRANT_CLIENT_CREDENTIALS;
    s->oauth2.token_url = xstrdup("/api/authorize/token");
    s->oauth2.margin_ms = 60000;
    config_opt_str(c, v, path, "email", &s->oauth2.client_id);
    if (sec != NULL) {
        p = config_join(path, "api_secret");
        (void)config_get_secret(c, sec, p, &s->oauth2.client_secret);
        free(p);
    }
    s->errors.message_path = xstrdup("statusMessage");
    /* Oblio signs nothing: its webhooks only ask for a poll (hint: poll),
     * and each carries X-Oblio-Request-Id, the same on a retry, whose
     * base64 the answer must hold. */
    if (config_node_key(v, "webhook") != NULL)
        CONFIG_PROBLEM(
            c, config_node_key(v, "webhook"),
            "%s.webhook: an oblio system's webhook is /webhooks/%s; hint: remove webhook", path,
            s->name);
    s->webhook.enabled = 1;
    s->webhook.delivery_id_header = xstrdup("X-Oblio-Request-Id");
    s->webhook.reply_header = xstrdup("X-Oblio-Request-Id");
}

/* A constant field every write of col carries, unless its map_out sets it. */
static void
map_out_const(struct config_collection *col, const char *target, const char *value)
{
    struct config_map_entry *e;

    if (col->map_out.entry_count == 0 || value == NULL)
        return;
    for (size_t i = 0; i < col->map_out.entry_count; i++) {
        if (strcmp(col->map_out.entries[i].target, target) == 0)
            return;
    }
    col->map_out.entries = xreallocarray(col->map_out.entries, col->map_out.entry_count + 1,
                                         sizeof(*col->map_out.entries));
    e = &col->map_out.entries[col->map_out.entry_count++];
    memset(e, 0, sizeof(*e));
    e->target = xstrdup(target);
    e->source = CONFIG_MAP_CONST;
    e->const_value = cJSON_CreateString(value);
    e->pos = col->pos;
}

static void
config_set_endpoint(struct config_endpoint *ep, const char *method, char *path)
{
    if (ep->method != NULL) {
        free(path);
        return;
    }
    ep->method = xstrdup(method);
    ep->path = path;
}

/*
 * The payments collection of a smartbill system: each record is a payment
 * (a collection, in SmartBill's words) of one invoice, `POST /payment`.
 * The answer names no payment (but a receipt's number), so the copy's id
 * is made from what was sent, TYPE/SERIES/NUMBER of the invoice paid, and
 * a deleted record deletes the payment by them. Nothing is read back: an
 * invoice's poll reads its payment status. No key makes a resend safe, so
 * a lost answer waits in the inbox as "outcome unknown".
 */
static void
smartbill_payments(struct config_ctx *c, const struct config_node *v, const char *path,
                   struct config_collection *col)
{
    const char *cif = col->system->cif != NULL ? col->system->cif : "";

    if (col->poll.enabled)
        CONFIG_PROBLEM(
            c, config_node_key(v, "poll"),
            "%s.poll: SmartBill cannot list payments; an invoices poll reads each invoice's "
            "payment status; hint: remove poll",
            path);
    if (col->map_out.entry_count == 0)
        return;
    col->issued = 1;
    map_out_const(col, "companyVatCode", cif);
    config_set_endpoint(&col->create, "POST", xstrdup("/SBORO/api/payment"));
    config_set_endpoint(
        &col->remove, "DELETE",
        xasprintf("/SBORO/api/payment/v2?cif=%s&paymentType={id.0}&invoiceSeries={id.1}&"
                  "invoiceNumber={id.2}",
                  cif));
    if (config_node_get(v, "on_delete") == NULL)
        col->on_delete = CONFIG_DELETE_DELETE;
    if (config_node_get(v, "created_id") == NULL) {
        free(col->created_id_path);
        col->created_id_path = xstrdup("type,invoicesList.0.seriesName,invoicesList.0.number");
        col->created_id_from_request = 1;
    }
}

/*
 * A collection of a smartbill system: invoices or proformas. Creates are
 * numbered (collections.X.numbering; engine/deliver.c "Numbered
 * creates"), the copy's id is "SERIES/NUMBER", and a deleted record cancels
 * its document (which keeps its number). Nothing can be read back.
 */
static void
config_smartbill_collection(struct config_ctx *c, const struct config_node *v, const char *path,
                            struct config_collection *col, const struct config_node *key)
{
    const struct config_system *s = col->system;
    int inv = strcmp(col->short_name, "invoices") == 0;
    const char *doc = inv ? "invoice" : "estimate", *cif = s->cif != NULL ? s->cif : "";
    struct config_numbering *n = &col->numbering;

    if (config_in_list(col->short_name, smartbill_collections, ARRAY_COUNT(smartbill_collections)) <
        0) {
        CONFIG_PROBLEM(
            c, key,
            "%s: a smartbill system knows the collections invoices, proformas and payments; "
            "hint: name it so",
            path);
        return;
    }
    if (strcmp(col->short_name, "payments") == 0) {
        smartbill_payments(c, v, path, col);
        return;
    }
    if (col->poll.enabled && !inv)
        CONFIG_PROBLEM(
            c, config_node_key(v, "poll"),
            "%s.poll: SmartBill cannot list its documents; concord is the record of what it "
            "issued; hint: remove poll",
            path);
    if (col->poll.enabled && col->poll.each.method == NULL) {
        /* Nothing can be listed, but each invoice's payment status can be
         * asked for: a poll reads it for every invoice concord issued. */
        config_set_endpoint(&col->poll.each, "GET",
                            xasprintf("/SBORO/api/invoice/paymentstatus?cif=%s&seriesname={id.0}&"
                                      "number={id.1}",
                                      cif));
    }
    if (config_node_get(v, "id") == NULL) {
        free(col->id_path);
        col->id_path = xstrdup("series,number");
    }
    if (col->map_out.entry_count == 0)
        return;
    col->issued = 1;
    map_out_const(col, "companyVatCode", cif);
    config_set_endpoint(&col->create, "POST", xasprintf("/SBORO/api/%s", doc));
    config_set_endpoint(
        &col->remove, "PUT",
        xasprintf("/SBORO/api/%s/cancel?cif=%s&seriesname={id.0}&number={id.1}", doc, cif));
    config_set_endpoint(
        &col->restore, "PUT",
        xasprintf("/SBORO/api/%s/restore?cif=%s&seriesname={id.0}&number={id.1}", doc, cif));
    if (config_node_get(v, "on_delete") == NULL)
        col->on_delete = CONFIG_DELETE_DELETE; /* a cancel: SmartBill keeps the number */
    if (config_node_get(v, "created_id") == NULL) {
        free(col->created_id_path);
        col->created_id_path = xstrdup("series,number");
    }
    if (!n->enabled) {
        n->enabled = 1;
        n->next.method = xstrdup("GET");
        n->next.path = xasprintf("/SBORO/api/series?cif=%s&type=%s", cif, inv ? "f" : "p");
        n->items_path = xstrdup("list");
        n->item_series_path = xstrdup("name");
        n->series_field = xstrdup("seriesName");
        n->number_path = xstrdup("nextNumber");
        n->confirm.method = xstrdup("GET");
        n->confirm.path =
            inv ? xasprintf("/SBORO/api/invoice/paymentstatus?cif=%s&seriesname={seriesName}&"
                            "number={number}",
                            cif)
                : xasprintf("/SBORO/api/estimate/invoices?cif=%s&seriesname={seriesName}&"
                            "number={number}",
                            cif);
    }
}

/*
 * A collection of an oblio system: invoices, proformas or notices. Creates
 * carry idempotencyKey; the copy's id is "SERIES/NUMBER"; a poll lists the
 * documents by id (Oblio has no updated-since filter).
 */
static void
config_oblio_collection(struct config_ctx *c, const struct config_node *v, const char *path,
                        struct config_collection *col, const struct config_node *key)
{
    const char *cif = col->system->cif != NULL ? col->system->cif : "";
    const char *doc = strcmp(col->short_name, "invoices") == 0    ? "invoice"
                      : strcmp(col->short_name, "proformas") == 0 ? "proforma"
                                                                  : "notice";
    struct config_poll *pl = &col->poll;

    if (config_in_list(col->short_name, oblio_collections, ARRAY_COUNT(oblio_collections)) < 0) {
        CONFIG_PROBLEM(c, key,
                       "%s: an oblio system knows the collections invoices, proformas and notices; "
                       "hint: name it so",
                       path);
        return;
    }
    if (config_node_get(v, "id") == NULL) {
        free(col->id_path);
        col->id_path = xstrdup("seriesName,number");
    }
    if (col->match_jq == NULL)
        col->match_jq = xasprintf(".topic | startswith(\"%c%s/\")", doc[0] - 'a' + 'A', doc + 1);
    if (pl->enabled && config_node_get(v, "hint") == NULL)
        col->webhook_hint = 1; /* a webhook says "something changed": poll now */
    if (col->map_out.entry_count > 0) {
        col->issued = 1;
        map_out_const(col, "cif", cif);
        config_set_endpoint(&col->create, "POST", xasprintf("/api/docs/%s", doc));
        /* A deleted record (or one its filter drops) cancels its document,
         * which keeps its number: Oblio's cancel takes a JSON body. */
        if (col->remove.method == NULL) {
            config_set_endpoint(&col->remove, "PUT", xasprintf("/api/docs/%s/cancel", doc));
            col->remove_body = cJSON_CreateObject();
            cJSON_AddStringToObject(col->remove_body, "cif", cif);
            cJSON_AddStringToObject(col->remove_body, "seriesName", "{id.0}");
            cJSON_AddStringToObject(col->remove_body, "number", "{id.1}");
            if (config_node_get(v, "on_delete") == NULL)
                col->on_delete = CONFIG_DELETE_DELETE;
        }
        if (col->idempotency_field == NULL && col->idempotency_header == NULL)
            col->idempotency_field = xstrdup("idempotencyKey");
        if (config_node_get(v, "created_id") == NULL) {
            free(col->created_id_path);
            col->created_id_path = xstrdup("data.seriesName,data.number");
        }
    }
    if (pl->enabled && pl->list.method == NULL) {
        pl->list.method = xstrdup("GET");
        pl->list.path = xasprintf(
            "/api/docs/%s/list?cif=%s&orderBy=id&orderDir=ASC&limitPerPage=100", doc, cif);
        if (pl->items_path == NULL)
            pl->items_path = xstrdup("data");
        if (pl->page == CONFIG_PAGE_NONE) {
            pl->page = CONFIG_PAGE_OFFSET;
            pl->page_param = xstrdup("offset");
            pl->page_size = 100;
        }
    }
}

/* ---- HubSpot (docs/hubspot.md) ---- */

/* The collections the hubspot kind knows. */
static const char *const hubspot_collections[] = {"contacts"};

/* public_url: concord's address as HubSpot calls it; v3 signs it with the path. */
static void
parse_public_url(struct config_ctx *c, const struct config_node *n, const char *path,
                 struct config_system *s)
{
    char *p = config_join(path, "public_url"), *url = NULL;
    size_t len;

    if (config_get_str(c, n, p, &url) == 0) {
        len = strlen(url);
        while (len > 0 && url[len - 1] == '/')
            url[--len] = '\0';
        if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)
            CONFIG_PROBLEM(c, n,
                           "%s: expected the URL HubSpot calls, starting with https://; hint: "
                           "public_url: https://sync.example.com",
                           p);
        else
            s->webhook.signature.url = xasprintf("%s%s", url, s->webhook.path);
    }
    free(url);
    free(p);
}

/*
 * systems.X of kind hubspot: a private app's token as a bearer, HubSpot's
 * `message` in the inbox, 100 requests in any 10 s (a bucket of 10 refilled
 * at 9/s never makes 101), and with client_secret a webhook checked with
 * X-HubSpot-Signature-v3 over public_url and the webhook's path.
 */
static void
config_hubspot_system(struct config_ctx *c, const struct config_node *v, const char *path,
                      struct config_system *s)
{
    const struct config_node *tok = config_node_get(v, "token"),
                             *cs = config_node_get(v, "client_secret");
    const struct config_node *pu = config_node_get(v, "public_url");
    char *p;

    config_profile_base(c, v, path, s, CONFIG_PROFILE_HUBSPOT, "https://api.hubapi.com", "token");
    if (config_node_key(v, "webhook") != NULL)
        CONFIG_PROBLEM(
            c, config_node_key(v, "webhook"),
            "%s.webhook: a hubspot system's webhook is its client_secret and public_url; "
            "hint: remove webhook (its path is /webhooks/%s)",
            path, s->name);
    if (tok == NULL) {
        config_missing(c, v, path, "token");
    } else {
        p = config_join(path, "token");
        s->auth_headers = xcalloc(1, sizeof(*s->auth_headers));
        s->auth_headers[0].name = xstrdup("Authorization");
        s->auth_header_count = 1;
        if (config_get_secret(c, tok, p, &s->auth_headers[0].value) == 0)
            config_secret_prefix(&s->auth_headers[0].value, "Bearer ");
        free(p);
    }
    if (cs != NULL) {
        s->webhook.enabled = 1;
        s->webhook.has_signature = 1;
        free(s->webhook.signature.scheme);
        s->webhook.signature.scheme = xstrdup("hubspot-v3");
        s->webhook.signature.scheme_kind = CONFIG_SIG_SCHEME_HUBSPOT_V3;
        p = config_join(path, "client_secret");
        config_parse_sig_secrets(c, cs, p, &s->webhook.signature);
        free(p);
        if (pu == NULL)
            CONFIG_PROBLEM(
                c, v,
                "%s: missing required key \"public_url\"; hint: HubSpot signs the URL it "
                "calls: public_url: https://sync.example.com (concord's address as HubSpot "
                "sees it)",
                path);
        else
            parse_public_url(c, pu, path, s);
    } else if (pu != NULL) {
        CONFIG_PROBLEM(
            c, config_node_key(v, "public_url"),
            "%s.public_url: it is where HubSpot's signed webhooks come, and without "
            "client_secret there are none; hint: add client_secret: env:HUBSPOT_SECRET, or "
            "remove public_url",
            path);
    }
    s->errors.message_path = xstrdup("message");
    if (config_node_get(v, "rate_limit") == NULL) {
        s->rate_limit.rate_per_s = 9; /* 100 in any 10 s: Free and Starter private apps */
        s->rate_limit.burst = 10;
    }
    /* HubSpot's 429 has no Retry-After; its window is 10 s. */
    if (config_node_get(v, "rate_limited_block") == NULL)
        s->rate_limit.block_ms = 10000;
}

/* Add name to the property list *names ("a,b"), once. */
static void
property_add(char **names, const char *path)
{
    const char *name;
    size_t len;

    if (path == NULL)
        return;
    path += path[0] == '.';
    if (strncmp(path, "properties.", 11) != 0)
        return;
    name = path + 11;
    len = strcspn(name, ".");
    if (len == 0)
        return;
    for (const char *q = *names; q != NULL && *q != '\0';) {
        size_t n = strcspn(q, ",");

        if (n == len && strncmp(q, name, len) == 0)
            return;
        q += n + (q[n] == ',');
    }
    char *next = xasprintf("%s%s%.*s", *names ? *names : "", *names ? "," : "", (int)len, name);

    free(*names);
    *names = next;
}

/*
 * The search a hubspot poll makes: contacts changed since the watermark,
 * oldest first, 200 a page, with the properties the maps name.
 */
static cJSON *
hubspot_search_body(const char *names)
{
    cJSON *body = cJSON_CreateObject(), *groups = cJSON_AddArrayToObject(body, "filterGroups");
    cJSON *group = cJSON_CreateObject(), *filters = cJSON_AddArrayToObject(group, "filters");
    cJSON *filter = cJSON_CreateObject(), *sorts = cJSON_AddArrayToObject(body, "sorts");
    cJSON *sort = cJSON_CreateObject(), *props = cJSON_AddArrayToObject(body, "properties");

    cJSON_AddStringToObject(filter, "propertyName", "lastmodifieddate");
    cJSON_AddStringToObject(filter, "operator", "GTE");
    cJSON_AddStringToObject(filter, "value", "{since}");
    cJSON_AddItemToArray(filters, filter);
    cJSON_AddItemToArray(groups, group);
    cJSON_AddStringToObject(sort, "propertyName", "lastmodifieddate");
    cJSON_AddStringToObject(sort, "direction", "ASCENDING");
    cJSON_AddItemToArray(sorts, sort);
    for (const char *q = names; *q != '\0';) {
        size_t n = strcspn(q, ",");
        char *one = xasprintf("%.*s", (int)n, q);

        cJSON_AddItemToArray(props, cJSON_CreateString(one));
        free(one);
        q += n + (q[n] == ',');
    }
    cJSON_AddNumberToObject(body, "limit", 200);
    cJSON_AddStringToObject(body, "after", "{after}");
    return body;
}

/* A hubspot collection's webhooks: routed, read as hints, deletions taken. */
static void
hubspot_webhooks(struct config_ctx *c, const struct config_node *v, const char *path,
                 struct config_collection *col)
{
    if (!col->system->webhook.enabled)
        return;
    if (col->match_jq == NULL)
        col->match_jq = xstrdup("type == \"array\" and any(.[]; (.subscriptionType // \"\") | "
                                "startswith(\"contact.\"))");
    if (!col->poll.enabled) {
        if (col->map_in.entry_count > 0)
            CONFIG_PROBLEM(
                c, v,
                "%s: HubSpot's webhooks name a contact, not its properties: a collection "
                "that reads contacts needs poll, which each webhook starts; hint: poll: "
                "{every: 1h}",
                path);
        return;
    }
    if (config_node_get(v, "hint") == NULL)
        col->webhook_hint = 1;
    if (col->deleted_jq == NULL)
        col->deleted_jq = xstrdup(".subscriptionType == \"contact.deletion\" or "
                                  ".subscriptionType == \"contact.privacyDeletion\"");
    if (col->deleted_id_path == NULL)
        col->deleted_id_path = xstrdup("objectId");
}

/*
 * A collection of a hubspot system: contacts. Writes are JSON with every
 * property a string; a create that meets the same email is linked to the
 * contact HubSpot names (on_conflict) and written as an update; a poll
 * searches by lastmodifieddate, and a reconcile lists the contacts whole.
 */
static void
config_hubspot_collection(struct config_ctx *c, const struct config_node *v, const char *path,
                          struct config_collection *col, const struct config_node *key)
{
    static const char base[] = "/crm/v3/objects/contacts";
    struct config_poll *pl = &col->poll;
    char *names = NULL;

    if (config_in_list(col->short_name, hubspot_collections, ARRAY_COUNT(hubspot_collections)) <
        0) {
        CONFIG_PROBLEM(
            c, key, "%s: a hubspot system knows the collection contacts; hint: name it so", path);
        return;
    }
    if (col->map_out.entry_count > 0) {
        config_set_endpoint(&col->create, "POST", xstrdup(base));
        config_set_endpoint(&col->update, "PATCH", xasprintf("%s/{id}", base));
        if (col->remove.method == NULL && config_node_get(v, "on_delete") == NULL)
            col->on_delete = CONFIG_DELETE_DELETE;
        config_set_endpoint(&col->remove, "DELETE", xasprintf("%s/{id}", base));
        if (config_node_get(v, "on_conflict") == NULL) {
            col->conflict_status = 409;
            col->conflict_id_after = xstrdup("Existing ID: ");
        }
        if (col->string_values_path == NULL)
            col->string_values_path = xstrdup("properties");
    }
    if (col->updated_at_path == NULL)
        col->updated_at_path = xstrdup("properties.lastmodifieddate");
    hubspot_webhooks(c, v, path, col);
    if (!pl->enabled)
        return;
    for (size_t i = 0; i < col->map_in.entry_count; i++)
        property_add(&names, col->map_in.entries[i].path);
    for (size_t i = 0; i < col->map_out.entry_count; i++)
        property_add(&names, col->map_out.entries[i].target);
    property_add(&names, "properties.lastmodifieddate");
    if (pl->list.method == NULL) {
        pl->list.method = xstrdup("GET");
        pl->list.path = xasprintf("%s?limit=100&properties=%s", base, names);
        if (pl->page == CONFIG_PAGE_NONE) {
            pl->page = CONFIG_PAGE_CURSOR;
            pl->page_param = xstrdup("after");
            pl->next_path = xstrdup("paging.next.after");
        }
    }
    if (pl->items_path == NULL)
        pl->items_path = xstrdup("results");
    if (pl->cursor == CONFIG_CURSOR_NONE &&
        config_node_get(config_node_get(v, "poll"), "cursor") == NULL) {
        pl->cursor = CONFIG_CURSOR_SEARCH;
        pl->search.method = xstrdup("POST");
        pl->search.path = xasprintf("%s/search", base);
        pl->search_body = hubspot_search_body(names);
        pl->cursor_field = xstrdup("properties.lastmodifieddate");
        pl->cursor_format = xstrdup("ms");
        pl->overlap_ms = 10000; /* the search index lags writes by seconds */
        pl->search_next_path = xstrdup("paging.next.after");
        pl->search_window = 10000;
    }
    free(names);
}

/*
 * systems.X of kind caldav: a CalDAV server (RFC 4791), whose calendars are
 * collections of appointments (docs/calendars.md). base_url is the server,
 * where discovery starts; username and password give Basic auth, or auth
 * gives any other kind (a bearer, OAuth2). A CalDAV server sends no
 * webhooks: a poll reads each calendar's changes.
 */
static void
config_caldav_system(struct config_ctx *c, const struct config_node *v, const char *path,
                     struct config_system *s)
{
    const struct config_node *user = config_node_get(v, "username"),
                             *pass = config_node_get(v, "password");

    s->profile = CONFIG_PROFILE_CALDAV;
    if (config_node_get(v, "base_url") == NULL)
        config_missing(c, v, path, "base_url");
    else
        config_parse_base_url(c, config_node_get(v, "base_url"), path, s);
    if (config_node_key(v, "webhook") != NULL)
        CONFIG_PROBLEM(
            c, config_node_key(v, "webhook"),
            "%s.webhook: CalDAV servers send no webhooks; hint: remove webhook, and give "
            "each collection a poll (it reads what changed by sync-collection)",
            path);
    if (user != NULL && pass == NULL)
        config_missing(c, v, path, "password");
    if (pass != NULL && user == NULL)
        config_missing(c, v, path, "username");
    if (user != NULL && config_node_key(v, "auth") != NULL)
        CONFIG_PROBLEM(c, config_node_key(v, "auth"),
                       "%s.auth: username and password are the system's Basic auth already; hint: "
                       "keep one of them",
                       path);
    else if (user != NULL && pass != NULL)
        config_basic_auth(c, path, user, "password", pass, s);
}

/* ---- Google Calendar and Microsoft Graph (docs/calendars.md) ---- */

/* The parameters Google refuses beside a syncToken (EXTERNAL-APIS.md §3.4). */
static const char *const gcal_token_drop[] = {
    "iCalUID", "orderBy",   "privateExtendedProperty", "q", "sharedExtendedProperty", "timeMin",
    "timeMax", "updatedMin"};
static const char *const push_keys[] = {"ttl", "renew_before"};

/* s percent-encoded for one path segment (a calendar id: "c_team@group..."). */
static char *
path_segment(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = xmalloc(strlen(s) * 3 + 1), *o = out;

    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~' || *p == '@') {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

/* The OAuth2 part of a calendar kind: client_id, client_secret, refresh_token
 * (or `concord auth`), and the provider's endpoints unless given. */
static void
calendar_oauth(struct config_ctx *c, const struct config_node *v, const char *path,
               struct config_system *s, char *token_url, char *authorize_url, const char *scope)
{
    struct config_oauth2 *o = &s->oauth2;
    const struct config_node *n;
    char *p;

    o->enabled = 1;
    o->grant = CONFIG_GRANT_REFRESH_TOKEN;
    o->margin_ms = 60000;
    o->scope = xstrdup(scope);
    if (config_node_get(v, "client_id") == NULL)
        config_missing(c, v, path, "client_id");
    config_opt_str(c, v, path, "client_id", &o->client_id);
    if ((n = config_node_get(v, "client_secret")) == NULL) {
        config_missing(c, v, path, "client_secret");
    } else {
        p = config_join(path, "client_secret");
        (void)config_get_secret(c, n, p, &o->client_secret);
        free(p);
    }
    if ((n = config_node_get(v, "refresh_token")) != NULL) {
        p = config_join(path, "refresh_token");
        (void)config_get_secret(c, n, p, &o->refresh_token);
        free(p);
    }
    if ((n = config_node_get(v, "token_url")) != NULL) {
        free(token_url);
        token_url = NULL;
        p = config_join(path, "token_url");
        config_get_url_or_path(c, n, p, &token_url);
        free(p);
    }
    if ((n = config_node_get(v, "authorize_url")) != NULL) {
        free(authorize_url);
        authorize_url = NULL;
        p = config_join(path, "authorize_url");
        config_get_url_or_path(c, n, p, &authorize_url);
        free(p);
    }
    o->token_url = token_url;
    o->authorize_url = authorize_url;
}

/*
 * public_url and push: the address Google's channels and Graph's
 * subscriptions announce (concord's webhook path under it), how long each
 * lives and how long before its end it is replaced or renewed.
 */
static void
calendar_push(struct config_ctx *c, const struct config_node *v, const char *path,
              struct config_system *s, int64_t ttl_ms)
{
    const struct config_node *pu = config_node_get(v, "public_url"),
                             *push = config_node_get(v, "push");
    char *p, *url = NULL;
    size_t len;

    if (config_node_key(v, "webhook") != NULL)
        CONFIG_PROBLEM(
            c, config_node_key(v, "webhook"),
            "%s.webhook: a %s system's webhook is /webhooks/%s under its public_url; hint: "
            "remove webhook",
            path, config_profile_name(s->profile), s->name);
    s->push.ttl_ms = ttl_ms;
    s->push.renew_before_ms = 3600000;
    if (push != NULL) {
        p = config_join(path, "push");
        if (pu == NULL)
            CONFIG_PROBLEM(
                c, config_node_key(v, "push"),
                "%s: push registrations announce public_url, and there is none; hint: add "
                "public_url: https://sync.example.com, or remove push",
                p);
        if (config_want_map(c, push, p)) {
            config_check_keys(c, push, p, push_keys, ARRAY_COUNT(push_keys));
            config_opt_duration(c, push, p, "ttl", 1000, &s->push.ttl_ms);
            config_opt_duration(c, push, p, "renew_before", 100, &s->push.renew_before_ms);
        }
        if (config_node_get(push, "renew_before") == NULL &&
            s->push.renew_before_ms > s->push.ttl_ms / 2)
            s->push.renew_before_ms = s->push.ttl_ms / 2;
        if (s->push.renew_before_ms >= s->push.ttl_ms)
            CONFIG_PROBLEM(
                c, push,
                "%s: renew_before must be shorter than ttl, or a registration is replaced "
                "as soon as it is made; hint: renew_before: 1h",
                p);
        free(p);
    }
    if (pu == NULL)
        return;
    p = config_join(path, "public_url");
    if (config_get_str(c, pu, p, &url) == 0) {
        len = strlen(url);
        while (len > 0 && url[len - 1] == '/')
            url[--len] = '\0';
        if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) {
            CONFIG_PROBLEM(c, pu,
                           "%s: expected concord's address as the provider calls it, starting with "
                           "https:// (behind a TLS-terminating proxy); hint: public_url: "
                           "https://sync.example.com",
                           p);
        } else {
            s->push.enabled = 1;
            s->push.url = xasprintf("%s%s", url, s->webhook.path);
            s->webhook.enabled = 1;
        }
    }
    free(url);
    free(p);
}

/*
 * systems.X of kind google_calendar: one calendar (`calendar`, default
 * primary) of a Google account, by OAuth2 with a refresh token, read by
 * sync token and written as events; with public_url, watch channels.
 */
static void
config_gcal_system(struct config_ctx *c, const struct config_node *v, const char *path,
                   struct config_system *s)
{
    char *cal = NULL, *seg;

    config_profile_base(c, v, path, s, CONFIG_PROFILE_GOOGLE_CALENDAR,
                        "https://www.googleapis.com/calendar/v3", "client_id and client_secret");
    calendar_oauth(c, v, path, s, xstrdup("https://oauth2.googleapis.com/token"),
                   xstrdup("https://accounts.google.com/o/oauth2/v2/auth"),
                   "https://www.googleapis.com/auth/calendar");
    config_opt_str(c, v, path, "calendar", &cal);
    seg = path_segment(cal != NULL && cal[0] != '\0' ? cal : "primary");
    s->push.resource = xasprintf("/calendars/%s/events", seg);
    free(seg);
    free(cal);
    calendar_push(c, v, path, s, 7 * 86400000LL);
    if (config_node_get(v, "rate_limit") == NULL) {
        s->rate_limit.rate_per_s = 10; /* 600 requests a minute per user */
        s->rate_limit.burst = 10;
    }
}

/*
 * systems.X of kind microsoft_graph: one mailbox's calendar (`user`, default
 * me; `calendar`, default the default one) by OAuth2 with a refresh token
 * (Microsoft rotates it on every use: the store keeps the new one), read by
 * calendarView/delta and written as events; with public_url, change
 * notification subscriptions. Bodies are asked for as text.
 */
static void
config_graph_system(struct config_ctx *c, const struct config_node *v, const char *path,
                    struct config_system *s)
{
    char *tenant = NULL, *user = NULL, *cal = NULL, *mb, *seg;
    struct config_header *h;

    config_profile_base(c, v, path, s, CONFIG_PROFILE_MICROSOFT_GRAPH,
                        "https://graph.microsoft.com/v1.0", "client_id and client_secret");
    config_opt_str(c, v, path, "tenant", &tenant);
    seg = path_segment(tenant != NULL && tenant[0] != '\0' ? tenant : "common");
    calendar_oauth(c, v, path, s,
                   xasprintf("https://login.microsoftonline.com/%s/oauth2/v2.0/token", seg),
                   xasprintf("https://login.microsoftonline.com/%s/oauth2/v2.0/authorize", seg),
                   "offline_access https://graph.microsoft.com/Calendars.ReadWrite");
    free(seg);
    config_opt_str(c, v, path, "user", &user);
    if (user == NULL || user[0] == '\0' || strcmp(user, "me") == 0) {
        mb = xstrdup("me");
    } else {
        seg = path_segment(user);
        mb = xasprintf("users/%s", seg);
        free(seg);
    }
    config_opt_str(c, v, path, "calendar", &cal);
    if (cal != NULL && cal[0] != '\0') {
        seg = path_segment(cal);
        s->push.resource = xasprintf("%s/calendars/%s/events", mb, seg);
        free(seg);
    } else {
        s->push.resource = xasprintf("%s/events", mb);
    }
    free(mb);
    free(user);
    free(cal);
    free(tenant);
    calendar_push(c, v, path, s, 10070 * 60000LL);
    /* Plain-text bodies, not HTML (graph_event.h). */
    s->auth_headers = xcalloc(1, sizeof(*s->auth_headers));
    s->auth_header_count = 1;
    h = &s->auth_headers[0];
    h->name = xstrdup("Prefer");
    h->value.ref = xstrdup("(the microsoft_graph kind)");
    h->value.value = xstrdup("outlook.body-content-type=\"text\"");
    h->value.len = strlen(h->value.value);
    if (config_node_get(v, "max_in_flight") == NULL)
        s->max_in_flight = 4; /* Graph's 4 concurrent requests per mailbox */
}

/* The collections the calendar kinds know. */
static const char *const calendar_collections[] = {"events"};

/* A google_calendar collection's poll: events.list by sync token, paged by
 * pageToken, with the parameters Google refuses beside a token left out. */
static void
gcal_poll(const struct config_node *v, struct config_collection *col, const char *events)
{
    struct config_poll *pl = &col->poll;
    const struct config_node *poll = config_node_get(v, "poll");

    if (pl->list.method == NULL) {
        pl->list.method = xstrdup("GET");
        pl->list.path = xasprintf("%s?maxResults=250", events);
    }
    if (pl->items_path == NULL)
        pl->items_path = xstrdup("items");
    if (config_node_get(poll, "cursor") == NULL) {
        pl->cursor = CONFIG_CURSOR_SYNC_TOKEN;
        pl->cursor_param = xstrdup("syncToken");
        pl->token_path = xstrdup("nextSyncToken");
        pl->resync_status = xcalloc(1, sizeof(*pl->resync_status));
        pl->resync_status[0] = 410;
        pl->resync_status_count = 1;
    }
    if (pl->cursor == CONFIG_CURSOR_SYNC_TOKEN && pl->token_drop == NULL) {
        pl->token_drop = xcalloc(ARRAY_COUNT(gcal_token_drop), sizeof(*pl->token_drop));
        for (size_t i = 0; i < ARRAY_COUNT(gcal_token_drop); i++)
            pl->token_drop[pl->token_drop_count++] = xstrdup(gcal_token_drop[i]);
    }
    if (config_node_get(poll, "page") == NULL) {
        pl->page = CONFIG_PAGE_CURSOR;
        pl->page_param = xstrdup("pageToken");
        pl->next_path = xstrdup("nextPageToken");
    }
}

/* A microsoft_graph collection's poll: calendarView/delta over a window
 * from 30 days back to a year ahead, fixed at each full round. */
static void
graph_poll(const struct config_node *v, struct config_collection *col, const char *events)
{
    struct config_poll *pl = &col->poll;
    size_t len = strlen(events) - strlen("/events");

    if (pl->list.method == NULL) {
        pl->list.method = xstrdup("GET");
        pl->list.path = xasprintf("%.*s/calendarView/delta?startDateTime={now-30d}&"
                                  "endDateTime={now+365d}",
                                  (int)len, events);
    }
    if (config_node_get(config_node_get(v, "poll"), "cursor") == NULL) {
        pl->cursor = CONFIG_CURSOR_DELTA_LINK;
        pl->delta_next_path = xstrdup("@odata.nextLink");
        pl->delta_path = xstrdup("@odata.deltaLink");
        pl->removed_path = xstrdup("@removed");
        pl->resync_status = xcalloc(1, sizeof(*pl->resync_status));
        pl->resync_status[0] = 410;
        pl->resync_status_count = 1;
    }
    if (pl->items_path == NULL)
        pl->items_path = xstrdup("value");
}

/*
 * The collection of a calendar kind: events, whose records are canonical
 * appointments (plus "id" and "updated"): read from the system's events
 * and written as them (engine/shape.c). Creates carry an idempotency key
 * (Google: the event's own id; Graph: transactionId); a deleted record
 * deletes its event unless on_delete says otherwise; with public_url, a
 * push only says "something changed": the collection is polled now.
 */
static void
config_calendar_collection(struct config_ctx *c, const struct config_node *v, const char *path,
                           struct config_collection *col, const struct config_node *key)
{
    const struct config_system *s = col->system;
    int google = s->profile == CONFIG_PROFILE_GOOGLE_CALENDAR;
    const char *events = s->push.resource;
    char *ev;

    if (config_in_list(col->short_name, calendar_collections, ARRAY_COUNT(calendar_collections)) <
        0) {
        CONFIG_PROBLEM(c, key, "%s: a %s system knows the collection events; hint: name it so",
                       path, config_profile_name(s->profile));
        return;
    }
    ev = google ? xstrdup(events) : xasprintf("/%s", events);
    col->shape = google ? CONFIG_SHAPE_GCAL_EVENT : CONFIG_SHAPE_GRAPH_EVENT;
    col->shape_events = xstrdup(ev);
    if (col->updated_at_path == NULL)
        col->updated_at_path = xstrdup("updated");
    if (col->map_out.entry_count > 0) {
        config_set_endpoint(&col->create, "POST", xstrdup(ev));
        config_set_endpoint(&col->update, "PATCH", xasprintf("%s/{id}", ev));
        if (col->remove.method == NULL && config_node_get(v, "on_delete") == NULL)
            col->on_delete = CONFIG_DELETE_DELETE;
        config_set_endpoint(&col->remove, "DELETE", xasprintf("%s/{id}", ev));
        if (col->idempotency_field == NULL && col->idempotency_header == NULL)
            col->idempotency_field = xstrdup(google ? "id" : "transactionId");
        /* Google: a create sent again under its id finds it taken (409):
         * that event is the record's (engine/shape.c names it). */
        if (google && config_node_get(v, "on_conflict") == NULL)
            col->conflict_status = 409;
    }
    if (col->poll.enabled) {
        if (google)
            gcal_poll(v, col, ev);
        else
            graph_poll(v, col, ev);
    }
    if (s->push.enabled) {
        if (!col->poll.enabled)
            CONFIG_PROBLEM(
                c, v,
                "%s: a push only says that something changed, and this collection has no "
                "poll to read what; hint: poll: {every: 1h}",
                path);
        if (col->poll.enabled && config_node_get(v, "hint") == NULL)
            col->webhook_hint = 1;
    }
    free(ev);
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

static void
parse_system(struct config_ctx *c, const struct config_node *v, const char *path,
             struct config_system *s)
{
    const struct config_node *sub;
    int64_t in_flight = s->max_in_flight;
    char *p;

    if (!config_want_map(c, v, path))
        return;
    config_check_keys(c, v, path, system_keys, ARRAY_COUNT(system_keys));
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
    config_opt_int(c, v, path, "timeout_ms", (struct config_range){1, INT32_MAX}, &s->timeout_ms);
    config_opt_int(c, v, path, "max_in_flight", (struct config_range){1, 1024}, &in_flight);
    s->max_in_flight = (int)in_flight;
    if (s->kind != CONFIG_SYSTEM_HTTP && config_node_get(v, "max_in_flight") == NULL)
        s->max_in_flight = 500; /* rows per batch: one transaction each */
    config_opt_duration(c, v, path, "rate_limited_block", 1, &s->rate_limit.block_ms);
    if ((sub = config_node_get(v, "errors")) != NULL) {
        p = config_join(path, "errors");
        if (config_want_map(c, sub, p)) {
            config_check_keys(c, sub, p, errors_keys, ARRAY_COUNT(errors_keys));
            config_opt_str(c, sub, p, "message", &s->errors.message_path);
            config_opt_str(c, sub, p, "in_ok", &s->errors.in_ok_path);
        }
        free(p);
    }
    static const char *const sections[] = {"retry",       "auth",        "webhook",
                                           "collections", "rate_limit",  "rate_limited_status",
                                           "breaker",     "delete_guard"};
    for (size_t i = 0; i < ARRAY_COUNT(sections); i++) {
        sub = config_node_get(v, sections[i]);
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

static void
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

/* ---- Syncs ---- */

static void
sync_origin(struct config_ctx *c, const struct config_node *n, const char *path,
            struct config_sync *s)
{
    const struct config *cfg = c->cfg;
    const char **names;
    char hint[128], buf[64];

    if (n->kind != CONFIG_NODE_SCALAR || config_node_is_null(n)) {
        CONFIG_PROBLEM(c, n, "%s: expected a system name, got %s", path,
                       config_node_show(n, buf, sizeof(buf)));
        return;
    }
    if (config_system_find(cfg, n->value) != NULL) {
        s->origins[s->origin_count++] = xstrdup(n->value);
        return;
    }
    names = xcalloc(cfg->system_count + 1, sizeof(*names));
    for (size_t i = 0; i < cfg->system_count; i++)
        names[i] = cfg->systems[i].name;
    CONFIG_PROBLEM(c, n, "%s: no system is called \"%.64s\"%s", path, n->value,
                   config_did_you_mean(c, n->value, names, cfg->system_count, hint, sizeof(hint)));
    free(names);
}

static void
sync_collection(struct config_ctx *c, const struct config_node *n, const char *path,
                struct config_sync *s)
{
    struct config *cfg = c->cfg;
    const struct config_collection *col;
    const char **names;
    char hint[128], buf[64];

    if (n->kind != CONFIG_NODE_SCALAR || config_node_is_null(n)) {
        CONFIG_PROBLEM(c, n, "%s: expected \"system.collection\", got %s", path,
                       config_node_show(n, buf, sizeof(buf)));
        return;
    }
    col = config_collection_find(cfg, n->value);
    if (col == NULL) {
        names = xcalloc(cfg->collection_count + 1, sizeof(*names));
        for (size_t i = 0; i < cfg->collection_count; i++)
            names[i] = cfg->collections[i].name;
        CONFIG_PROBLEM(
            c, n, "%s: no collection is called \"%.64s\"%s", path, n->value,
            config_did_you_mean(c, n->value, names, cfg->collection_count, hint, sizeof(hint)));
        free(names);
        return;
    }
    if (s->model != NULL && col->model != NULL && strcmp(s->model, col->model) != 0)
        CONFIG_PROBLEM(c, n,
                       "%s: collection %s holds model \"%s\", but sync \"%s\" is for model \"%s\"",
                       path, col->name, col->model, s->name, s->model);
    /* The pointer is borrowed from cfg->collections, which no longer moves. */
    s->collections[s->collection_count++] = &cfg->collections[col - cfg->collections];
}

/* ---- Syncs: owners, conflicts, natural keys, filters ---- */

/*
 * What a sync's rules are checked against. known is 0 when a collection of
 * the sync did not resolve (already reported): the system a rule names may
 * be that collection's, so it is then only checked to exist.
 */
struct sync_scope {
    const struct config_model *model; /* NULL when unknown (already reported) */
    const char **systems;             /* the systems with a collection in the sync */
    size_t system_count;
    const char **collections; /* the names of the sync's collections */
    size_t collection_count;
    int known;
};

static void
scope_init(struct config_ctx *c, const struct config_sync *s, int known, struct sync_scope *sc)
{
    sc->model = s->model != NULL ? config_model_find(c->cfg, s->model) : NULL;
    sc->systems = xcalloc(s->collection_count + 1, sizeof(*sc->systems));
    sc->collections = xcalloc(s->collection_count + 1, sizeof(*sc->collections));
    sc->system_count = 0;
    sc->collection_count = 0;
    sc->known = known;
    for (size_t i = 0; i < s->collection_count; i++) {
        const char *sys = s->collections[i]->system->name;

        sc->collections[sc->collection_count++] = s->collections[i]->name;
        if (config_in_list(sys, sc->systems, sc->system_count) < 0)
            sc->systems[sc->system_count++] = sys;
    }
}

static void
scope_fini(struct sync_scope *sc)
{
    free(sc->systems);
    free(sc->collections);
}

/* "a, b, c" into out. */
static const char *
name_list(const char *const *names, size_t n, char *out, size_t len)
{
    size_t used = 0;

    out[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++)
        used += (size_t)snprintf(out + used, len - used, "%s%s", i > 0 ? ", " : "", names[i]);
    return out;
}

/* A system at n that must have a collection in the sync: its name, or NULL after saying why. */
static const char *
sync_system_ref(struct config_ctx *c, const struct config_node *n, const char *path,
                const struct config_sync *s, const struct sync_scope *sc)
{
    const struct config *cfg = c->cfg;
    char buf[64], hint[192], list[200];

    if (n->kind != CONFIG_NODE_SCALAR || config_node_is_null(n)) {
        CONFIG_PROBLEM(c, n, "%s: expected a system name, got %s", path,
                       config_node_show(n, buf, sizeof(buf)));
        return NULL;
    }
    if (config_in_list(n->value, sc->systems, sc->system_count) >= 0)
        return n->value;
    if (config_system_find(cfg, n->value) != NULL) {
        if (!sc->known)
            return n->value;
        CONFIG_PROBLEM(
            c, n, "%s: system \"%s\" has no collection in sync \"%s\"; hint: its systems are %s",
            path, n->value, s->name, name_list(sc->systems, sc->system_count, list, sizeof(list)));
    } else if (sc->known) {
        /* A typo of one of the sync's systems, or the list of them. */
        if (config_did_you_mean(c, n->value, sc->systems, sc->system_count, hint,
                                sizeof(hint))[0] == '\0')
            (void)snprintf(hint, sizeof(hint), "; hint: the systems of sync \"%.32s\" are %.64s",
                           s->name, name_list(sc->systems, sc->system_count, list, sizeof(list)));
        CONFIG_PROBLEM(c, n, "%s: no system is called \"%.64s\"%s", path, n->value, hint);
    } else {
        const char **names = xcalloc(cfg->system_count + 1, sizeof(*names));

        for (size_t i = 0; i < cfg->system_count; i++)
            names[i] = cfg->systems[i].name;
        CONFIG_PROBLEM(
            c, n, "%s: no system is called \"%.64s\"%s", path, n->value,
            config_did_you_mean(c, n->value, names, cfg->system_count, hint, sizeof(hint)));
        free(names);
    }
    return NULL;
}

/* Whether the scalar n names a field of the sync's model; says so at n if not. */
static int
sync_field(struct config_ctx *c, const struct config_node *n, const char *path,
           const struct sync_scope *sc)
{
    const struct config_model *m = sc->model;
    const char **names;
    char hint[128];

    if (m == NULL || config_model_field(m, n->value) != NULL)
        return 1;
    names = xcalloc(m->field_count + 1, sizeof(*names));
    for (size_t i = 0; i < m->field_count; i++)
        names[i] = m->fields[i].name;
    CONFIG_PROBLEM(c, n, "%s: model \"%s\" has no field \"%.64s\"%s", path, m->name, n->value,
                   config_did_you_mean(c, n->value, names, m->field_count, hint, sizeof(hint)));
    free(names);
    return 0;
}

/* owners: {FIELD: SYSTEM or [SYSTEM, ...]}, strongest first. */
static void
parse_owners(struct config_ctx *c, const struct config_node *v, const char *path,
             struct config_sync *s, const struct sync_scope *sc)
{
    if (!config_want_map(c, v, path))
        return;
    s->owners = xcalloc(v->kid_count / 2 + 1, sizeof(*s->owners));
    for (size_t i = 0; i + 1 < v->kid_count; i += 2) {
        const struct config_node *k = v->kids[i], *val = v->kids[i + 1];
        struct config_field_owner *o = &s->owners[s->owner_count++];
        size_t n = val->kind == CONFIG_NODE_SEQUENCE ? val->kid_count : 1;
        char *p = config_join(path, k->value);

        o->field = xstrdup(k->value);
        o->pos = (struct config_pos){k->line, k->col};
        /* An array of pointers. NOLINTNEXTLINE(bugprone-sizeof-expression) */
        o->systems = xcalloc(n + 1, sizeof(*o->systems));
        (void)sync_field(c, k, path, sc);
        if (val->kind == CONFIG_NODE_SEQUENCE && n == 0)
            CONFIG_PROBLEM(c, val, "%s: name at least one system", p);
        for (size_t j = 0; j < n; j++) {
            const struct config_node *item = val->kind == CONFIG_NODE_SEQUENCE ? val->kids[j] : val;
            const char *name = sync_system_ref(c, item, p, s, sc);

            if (name == NULL)
                continue;
            if (config_in_list(name, (const char *const *)o->systems, o->system_count) >= 0)
                CONFIG_PROBLEM(c, item, "%s: system \"%s\" is named twice", p, name);
            else
                o->systems[o->system_count++] = xstrdup(name);
        }
        free(p);
    }
}

/* conflict with its companions prefer (conflict: prefer) and skew (conflict: newest). */
static void
parse_conflict(struct config_ctx *c, const struct config_node *v, const char *path,
               struct config_sync *s, const struct sync_scope *sc)
{
    const struct config_node *policy_n = config_node_get(v, "conflict"),
                             *prefer_n = config_node_get(v, "prefer");
    int i = config_opt_choice(c, v, path, "conflict", conflict_policies,
                              ARRAY_COUNT(conflict_policies));

    if (i >= 0)
        s->conflict = (enum config_conflict_policy)(CONFIG_CONFLICT_MANUAL + i);
    if (policy_n != NULL && i < 0)
        return; /* already reported; the rest would guess */
    if (s->conflict == CONFIG_CONFLICT_PREFER && prefer_n == NULL && policy_n != NULL) {
        CONFIG_PROBLEM(c, policy_n,
                       "%s.conflict: prefer needs the key prefer with the system that wins; hint: "
                       "prefer: SYSTEM",
                       path);
    } else if (prefer_n != NULL && s->conflict != CONFIG_CONFLICT_PREFER) {
        CONFIG_PROBLEM(
            c, config_node_key(v, "prefer"),
            "%s.prefer: prefer is used only with conflict: prefer; hint: add conflict: prefer, "
            "or remove prefer",
            path);
    } else if (prefer_n != NULL) {
        char *p = config_join(path, "prefer");
        const char *name = sync_system_ref(c, prefer_n, p, s, sc);

        if (name != NULL)
            s->prefer = xstrdup(name);
        free(p);
    }
    if (config_node_get(v, "skew") != NULL && s->conflict != CONFIG_CONFLICT_NEWEST)
        CONFIG_PROBLEM(
            c, config_node_key(v, "skew"),
            "%s.skew: skew is used only with conflict: newest; hint: add conflict: newest, "
            "or remove skew",
            path);
    else
        config_opt_duration(c, v, path, "skew", 0, &s->skew_ms);
}

/* A calling code: 1 to 3 digits, a leading "+" dropped. NULL when it is not one. */
static char *
calling_code(const char *s)
{
    size_t n;

    if (*s == '+')
        s++;
    n = strspn(s, "0123456789");
    if (n == 0 || n > 3 || s[n] != '\0')
        return NULL;
    return xstrdup(s);
}

static void
parse_match_country(struct config_ctx *c, const struct config_node *n, const char *path,
                    struct config_match_key *m)
{
    const struct config_node *country_n = config_node_get(n, "country");
    char buf[64];

    if (country_n == NULL)
        return;
    if (m->normalize != CONFIG_NORMALIZE_PHONE) {
        CONFIG_PROBLEM(
            c, config_node_key(n, "country"),
            "%s.country: country is used only with normalize: phone; hint: add normalize: "
            "phone, or remove country",
            path);
        return;
    }
    if (country_n->kind == CONFIG_NODE_SCALAR)
        m->country = calling_code(country_n->value);
    if (m->country == NULL)
        CONFIG_PROBLEM(
            c, country_n,
            "%s.country: expected a calling code of 1 to 3 digits, got %s; hint: \"40\" for "
            "Romania, \"44\" for the United Kingdom",
            path, config_node_show(country_n, buf, sizeof(buf)));
}

/* One natural key: FIELD, or {field: FIELD, normalize: ..., country: ...}. */
static void
parse_match_key(struct config_ctx *c, const struct config_node *n, const char *path,
                const struct sync_scope *sc, struct config_match_key *m)
{
    const struct config_node *field_n = n;
    char buf[64];
    int i = -1;

    m->pos = (struct config_pos){n->line, n->col};
    if (n->kind == CONFIG_NODE_MAPPING) {
        config_check_keys(c, n, path, match_keys, ARRAY_COUNT(match_keys));
        field_n = config_node_get(n, "field");
        if (field_n == NULL)
            config_missing(c, n, path, "field");
        else
            config_opt_str(c, n, path, "field", &m->field);
        i = config_opt_choice(c, n, path, "normalize", normalize_names,
                              ARRAY_COUNT(normalize_names));
    } else if (n->kind == CONFIG_NODE_SCALAR && !config_node_is_null(n)) {
        m->field = xstrdup(n->value);
    } else {
        CONFIG_PROBLEM(
            c, n,
            "%s: expected a model field or a mapping with field, normalize and country, got %s",
            path, config_node_show(n, buf, sizeof(buf)));
        return;
    }
    if (m->field != NULL)
        (void)sync_field(c, field_n, path, sc);
    if (i >= 0)
        m->normalize = (enum config_normalize)(CONFIG_NORMALIZE_EXACT + i);
    else
        m->normalize = m->field != NULL && strcmp(m->field, "email") == 0 ? CONFIG_NORMALIZE_EMAIL
                                                                          : CONFIG_NORMALIZE_EXACT;
    if (n->kind == CONFIG_NODE_MAPPING && (config_node_get(n, "normalize") == NULL || i >= 0))
        parse_match_country(c, n, path, m);
}

/* match: the natural keys, in order. */
static void
parse_match(struct config_ctx *c, const struct config_node *v, const char *path,
            struct config_sync *s, const struct sync_scope *sc)
{
    char buf[64];

    if (v->kind != CONFIG_NODE_SEQUENCE) {
        CONFIG_PROBLEM(c, v, "%s: expected a list of model fields, got %s; hint: [email]", path,
                       config_node_show(v, buf, sizeof(buf)));
        return;
    }
    s->match = xcalloc(v->kid_count + 1, sizeof(*s->match));
    for (size_t i = 0; i < v->kid_count; i++) {
        struct config_match_key *m = &s->match[s->match_count++];
        char *p = xasprintf("%s[%zu]", path, i);

        parse_match_key(c, v->kids[i], p, sc, m);
        for (size_t j = 0; j < i && m->field != NULL; j++) {
            if (s->match[j].field != NULL && strcmp(s->match[j].field, m->field) == 0) {
                CONFIG_PROBLEM(c, v->kids[i],
                               "%s: field \"%s\" is matched twice; hint: it is %s[%zu] too", p,
                               m->field, path, j);
                break;
            }
        }
        free(p);
    }
}

/* The sync's collection called name, or NULL after saying so at k. */
static struct config_collection *
filter_collection(struct config_ctx *c, const struct config_node *k, const char *path,
                  const struct config_sync *s, const struct sync_scope *sc)
{
    char hint[128], list[200];

    for (size_t i = 0; i < s->collection_count; i++) {
        if (strcmp(s->collections[i]->name, k->value) == 0)
            return s->collections[i];
    }
    if (config_collection_find(c->cfg, k->value) != NULL)
        CONFIG_PROBLEM(
            c, k,
            "%s: collection %s is not in sync \"%s\"; hint: add it to collections, or remove "
            "its filter",
            path, k->value, s->name);
    else if (config_did_you_mean(c, k->value, sc->collections, sc->collection_count, hint,
                                 sizeof(hint))[0])
        CONFIG_PROBLEM(c, k, "%s: no collection is called \"%.64s\"%s", path, k->value, hint);
    else
        CONFIG_PROBLEM(
            c, k,
            "%s: no collection is called \"%.64s\"; hint: the collections of sync \"%s\" are "
            "%s",
            path, k->value, s->name,
            name_list(sc->collections, sc->collection_count, list, sizeof(list)));
    return NULL;
}

/* filters: {COLLECTION: jq condition over the model record}. */
static void
parse_filters(struct config_ctx *c, const struct config_node *v, const char *path,
              struct config_sync *s, const struct sync_scope *sc)
{
    if (!config_want_map(c, v, path))
        return;
    s->filters = xcalloc(v->kid_count / 2 + 1, sizeof(*s->filters));
    for (size_t i = 0; i + 1 < v->kid_count; i += 2) {
        const struct config_node *k = v->kids[i], *val = v->kids[i + 1];
        struct config_collection *col = filter_collection(c, k, path, s, sc);
        char *p = config_join(path, k->value), *jq = NULL;

        if (config_get_str(c, val, p, &jq) == 0)
            config_check_jq(c, val, p);
        if (col != NULL && jq != NULL) {
            struct config_filter *f = &s->filters[s->filter_count++];

            f->collection = col;
            f->jq = jq;
            f->pos = (struct config_pos){k->line, k->col};
        } else {
            free(jq);
        }
        free(p);
    }
}

/* The keys of a sync that need its model and collections resolved first. */
static void
parse_sync_rules(struct config_ctx *c, const struct config_node *v, const char *path,
                 struct config_sync *s, int known)
{
    const struct config_node *n;
    struct sync_scope sc;
    char *p;

    scope_init(c, s, known, &sc);
    if ((n = config_node_get(v, "owners")) != NULL) {
        p = config_join(path, "owners");
        parse_owners(c, n, p, s, &sc);
        free(p);
    }
    parse_conflict(c, v, path, s, &sc);
    config_opt_bool(c, v, path, "write_back", &s->write_back);
    if ((n = config_node_get(v, "match")) != NULL) {
        p = config_join(path, "match");
        parse_match(c, n, p, s, &sc);
        free(p);
    }
    if ((n = config_node_get(v, "filters")) != NULL) {
        p = config_join(path, "filters");
        parse_filters(c, n, p, s, &sc);
        free(p);
    }
    scope_fini(&sc);
}

static void
parse_sync(struct config_ctx *c, const struct config_node *v, const char *path,
           struct config_sync *s)
{
    const struct config_node *origin = config_node_get(v, "origin"),
                             *cols = config_node_get(v, "collections");
    char *p;

    if (!config_want_map(c, v, path))
        return;
    config_check_keys(c, v, path, sync_keys, ARRAY_COUNT(sync_keys));
    if (config_node_get(v, "model") == NULL)
        config_missing(c, v, path, "model");
    config_opt_str(c, v, path, "model", &s->model);
    if (s->model != NULL) {
        p = config_join(path, "model");
        if (config_ref_model(c, config_node_get(v, "model"), p, s->model) == NULL) {
            free(s->model);
            s->model = NULL; /* no second complaint per collection */
        }
        free(p);
    }
    if (origin == NULL) {
        config_missing(c, v, path, "origin");
    } else {
        p = config_join(path, "origin");
        size_t n = origin->kind == CONFIG_NODE_SEQUENCE ? origin->kid_count : 1;

        s->origins = xcalloc(n + 1, sizeof(*s->origins));
        if (origin->kind == CONFIG_NODE_SEQUENCE && n == 0)
            CONFIG_PROBLEM(c, origin, "%s: name at least one system", p);
        for (size_t i = 0; i < n; i++)
            sync_origin(c, origin->kind == CONFIG_NODE_SEQUENCE ? origin->kids[i] : origin, p, s);
        free(p);
    }
    if (cols == NULL) {
        config_missing(c, v, path, "collections");
    } else if (cols->kind != CONFIG_NODE_SEQUENCE || cols->kid_count == 0) {
        p = config_join(path, "collections");
        CONFIG_PROBLEM(c, cols, "%s: expected a list of \"system.collection\"", p);
        free(p);
    } else {
        p = config_join(path, "collections");
        /* An array of pointers. NOLINTNEXTLINE(bugprone-sizeof-expression) */
        s->collections = xcalloc(cols->kid_count + 1, sizeof(*s->collections));
        for (size_t i = 0; i < cols->kid_count; i++)
            sync_collection(c, cols->kids[i], p, s);
        free(p);
    }
    parse_sync_rules(c, v, path, s,
                     cols != NULL && cols->kind == CONFIG_NODE_SEQUENCE &&
                         s->collection_count == cols->kid_count);
}

static void
config_parse_syncs(struct config_ctx *c, const struct config_node *v)
{
    struct config *cfg = c->cfg;
    size_t n;

    if (!config_want_map(c, v, "syncs"))
        return;
    n = v->kid_count / 2;
    cfg->syncs = xcalloc(n + 1, sizeof(*cfg->syncs));
    for (size_t i = 0; i < n; i++) {
        const struct config_node *k = v->kids[2 * i];
        struct config_sync *s = &cfg->syncs[cfg->sync_count++];
        char *p = config_join("syncs", k->value);

        s->name = xstrdup(k->value);
        s->pos = (struct config_pos){k->line, k->col};
        s->conflict = CONFIG_CONFLICT_MANUAL;
        s->skew_ms = 2000;
        parse_sync(c, v->kids[2 * i + 1], p, s);
        free(p);
    }
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
    cfg->keep_journal_ms = 30 * 86400000LL;
    cfg->keep_versions_ms = 90 * 86400000LL;
    cfg->keep_attempts_ms = 30 * 86400000LL;
    cfg->keep_inbox_ms = 90 * 86400000LL;
    cfg->keep_runs_ms = 30 * 86400000LL;
    if (config_want_map(&c, config_node_get(root, "retention"), "retention")) {
        const struct config_node *r = config_node_get(root, "retention");

        config_check_keys(&c, r, "retention", retention_keys, ARRAY_COUNT(retention_keys));
        config_opt_duration(&c, r, "retention", "journal", 0, &cfg->keep_journal_ms);
        config_opt_duration(&c, r, "retention", "versions", 0, &cfg->keep_versions_ms);
        config_opt_duration(&c, r, "retention", "attempts", 0, &cfg->keep_attempts_ms);
        config_opt_duration(&c, r, "retention", "inbox", 0, &cfg->keep_inbox_ms);
        config_opt_duration(&c, r, "retention", "runs", 0, &cfg->keep_runs_ms);
    }
    cfg->alerts.every_ms = 30000;
    cfg->alerts.group_ms = 10000;
    cfg->alerts.min_interval_ms = 300000;
    if (config_want_map(&c, config_node_get(root, "alerts"), "alerts"))
        parse_alerts(&c, config_node_get(root, "alerts"), &cfg->alerts);
    if (config_want_map(&c, config_node_get(root, "health"), "health")) {
        const struct config_node *h = config_node_get(root, "health");

        config_check_keys(&c, h, "health", health_keys, ARRAY_COUNT(health_keys));
        config_opt_duration(&c, h, "health", "lag", 1000, &cfg->health.lag_ms);
        config_opt_int(&c, h, "health", "inbox_growth", (struct config_range){1, INT32_MAX},
                       &cfg->health.inbox_growth);
        config_opt_duration(&c, h, "health", "window", 1000, &cfg->health.window_ms);
        config_opt_duration(&c, h, "health", "webhook_grace", 0, &cfg->health.webhook_grace_ms);
    }
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
