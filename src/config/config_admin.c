/* SPDX-License-Identifier: MIT */

/*
 * The admin: section of the config (docs/config.md, "The admin API"):
 *
 *   admin:
 *     listen: 127.0.0.1:8489     # optional: its own listener
 *     tokens: {alice: env:ADMIN_TOKEN_ALICE, ci: file:/run/secrets/ci}
 *
 * Each token is a secret reference like every secret of the config; its
 * name is who the audit log says acted. Problems are reported the way
 * config_schema.c reports them ("admin.tokens.ci: ..."), and no message
 * ever shows a token's value: a too short or repeated token is named by
 * its key only. The daemon's side is daemon/daemon_admin.c.
 */

#include "config/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"
#include "core/secret.h"
#include "core/xmalloc.h"

/* A token shorter than this is refused: it could be guessed. 16 bytes of
 * `openssl rand -hex 24` are far more than needed; a word is not. */
#define ADMIN_TOKEN_MIN_BYTES 16

/* Token names go into the audit log and the inbox's "by". */
#define ADMIN_NAME_MAX 64

#define PROBLEM(d, n, ...) config_diag_add((d), (n)->line, (n)->col, __VA_ARGS__)

static const char *const admin_keys[] = {"listen", "tokens"};

struct admin_ctx {
    struct config_diags *d;
    struct config *cfg;
    const char *base_dir;
    unsigned flags;
};

static void
check_keys(struct admin_ctx *c, const struct config_node *map)
{
    for (size_t i = 0; i + 1 < map->kid_count; i += 2) {
        const struct config_node *k = map->kids[i];
        const char *pick = NULL;
        int known = 0;

        for (size_t j = 0; j < ARRAY_COUNT(admin_keys); j++) {
            known |= strcmp(k->value, admin_keys[j]) == 0;
            if (config_edit_distance(k->value, admin_keys[j]) <= 2)
                pick = admin_keys[j];
        }
        if (known)
            continue;
        if (pick != NULL)
            PROBLEM(c->d, k, "admin: unknown key \"%.64s\"; hint: did you mean \"%s\"?", k->value,
                    pick);
        else
            PROBLEM(c->d, k, "admin: unknown key \"%.64s\"; hint: expected one of listen, tokens",
                    k->value);
    }
}

/* "host:port" with a port of 0..65535, as the top-level listen. */
static int
addr_ok(const char *s)
{
    const char *colon = strrchr(s, ':'), *p;
    long port = 0;

    if (colon == NULL || colon == s || colon[1] == '\0')
        return 0;
    for (p = colon + 1; *p >= '0' && *p <= '9' && port <= 65535; p++)
        port = port * 10 + (*p - '0');
    return *p == '\0' && port <= 65535;
}

static void
parse_listen(struct admin_ctx *c, const struct config_node *v)
{
    char buf[64];

    if (v->kind != CONFIG_NODE_SCALAR || config_node_is_null(v) || !addr_ok(v->value)) {
        PROBLEM(c->d, v, "admin.listen: expected \"host:port\", got %s; hint: 127.0.0.1:8489",
                config_node_show(v, buf, sizeof(buf)));
        return;
    }
    if (c->cfg->listen != NULL && strcmp(v->value, c->cfg->listen) == 0) {
        PROBLEM(c->d, v,
                "admin.listen: %s is the webhooks' listener; hint: leave admin.listen out to "
                "serve the admin API there (to this machine only), or give it a port of its own",
                config_node_show(v, buf, sizeof(buf)));
        return;
    }
    c->cfg->admin.listen = xstrdup(v->value);
}

static int
name_ok(const char *s)
{
    size_t n = 0;

    for (; s[n] != '\0'; n++) {
        char ch = s[n];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '.'))
            return 0;
    }
    return n > 0 && n <= ADMIN_NAME_MAX;
}

/* The reference at v into *out, resolved unless CONFIG_LOAD_NO_SECRETS. The
 * scalar is never shown: if it is no reference, it may be the token. */
static int
get_secret(struct admin_ctx *c, const struct config_node *v, const char *name, struct secret *out)
{
    char why[400];

    if (v->kind != CONFIG_NODE_SCALAR || config_node_is_null(v)) {
        PROBLEM(c->d, v,
                "admin.tokens.%s: expected a secret reference (env:NAME or file:PATH), got %s",
                name,
                v->kind == CONFIG_NODE_MAPPING    ? "a mapping"
                : v->kind == CONFIG_NODE_SEQUENCE ? "a list"
                                                  : "nothing");
        return -1;
    }
    if (!config_secret_is_ref(v->value)) {
        PROBLEM(c->d, v,
                "admin.tokens.%s: token written as a literal; hint: put it in the environment "
                "and write env:NAME, or in a file and write file:PATH",
                name);
        return -1;
    }
    if (c->flags & CONFIG_LOAD_NO_SECRETS) {
        out->ref = xstrdup(v->value); /* checked for form, not read */
        return 0;
    }
    if (config_secret_resolve(v->value, c->base_dir, out, why, sizeof(why)) == -1) {
        PROBLEM(c->d, v, "admin.tokens.%s: %s", name, why);
        return -1;
    }
    return 0;
}

/* A token's value, once read: long enough, and no other name's. */
static void
check_value(struct admin_ctx *c, const struct config_node *v, const struct config_admin_token *t)
{
    const struct config_admin *a = &c->cfg->admin;

    if (t->secret.value == NULL)
        return; /* not read (CONFIG_LOAD_NO_SECRETS) */
    if (t->secret.len < ADMIN_TOKEN_MIN_BYTES) {
        PROBLEM(c->d, v,
                "admin.tokens.%s: the token has %zu bytes, fewer than %d; hint: make one with "
                "`openssl rand -hex 24`",
                t->name, t->secret.len, ADMIN_TOKEN_MIN_BYTES);
        return;
    }
    for (size_t i = 0; i < a->token_count; i++) {
        const struct secret *o = &a->tokens[i].secret;

        if (o->value != NULL && o->len == t->secret.len &&
            memcmp(o->value, t->secret.value, o->len) == 0) {
            PROBLEM(c->d, v,
                    "admin.tokens.%s: the same token as %s; hint: give each name its own token, "
                    "so the audit log can tell them apart",
                    t->name, a->tokens[i].name);
            return;
        }
    }
}

static void
parse_tokens(struct admin_ctx *c, const struct config_node *v)
{
    struct config_admin *a = &c->cfg->admin;
    char buf[64];

    if (v->kind != CONFIG_NODE_MAPPING || v->kid_count == 0) {
        PROBLEM(c->d, v,
                "admin.tokens: expected a mapping of names to secret references, got %s; hint: "
                "tokens: {alice: env:ADMIN_TOKEN_ALICE}",
                v->kind == CONFIG_NODE_MAPPING ? "an empty mapping"
                                               : config_node_show(v, buf, sizeof(buf)));
        return;
    }
    a->tokens = xcalloc(v->kid_count / 2, sizeof(*a->tokens));
    for (size_t i = 0; i + 1 < v->kid_count; i += 2) {
        const struct config_node *k = v->kids[i], *val = v->kids[i + 1];
        struct config_admin_token t = {.pos = {k->line, k->col}};

        if (!name_ok(k->value)) {
            PROBLEM(c->d, k,
                    "admin.tokens: name \"%.64s\" may hold only letters, digits, \"_\", \"-\" "
                    "and \".\", at most %d",
                    k->value, ADMIN_NAME_MAX);
            continue;
        }
        t.name = k->value;
        if (get_secret(c, val, k->value, &t.secret) == -1)
            continue;
        check_value(c, val, &t);
        t.name = xstrdup(k->value);
        a->tokens[a->token_count++] = t;
    }
}

void
config_admin_parse(const struct config_node *v, struct config *cfg, const char *base_dir,
                   unsigned flags, struct config_diags *d)
{
    struct admin_ctx c = {.d = d, .cfg = cfg, .base_dir = base_dir, .flags = flags};
    const struct config_node *listen, *tokens;
    char buf[64];

    cfg->admin.pos = (struct config_pos){v->line, v->col};
    if (v->kind != CONFIG_NODE_MAPPING) {
        PROBLEM(d, v, "admin: expected a mapping with tokens (and listen), got %s",
                config_node_show(v, buf, sizeof(buf)));
        return;
    }
    check_keys(&c, v);
    listen = config_node_get(v, "listen");
    tokens = config_node_get(v, "tokens");
    if (listen != NULL)
        parse_listen(&c, listen);
    if (tokens != NULL)
        parse_tokens(&c, tokens);
    if (listen != NULL && tokens == NULL)
        PROBLEM(d, listen,
                "admin.listen: the admin API is off without admin.tokens; hint: add "
                "tokens: {NAME: env:VARIABLE}, or leave admin out");
}

void
config_admin_fini(struct config_admin *a)
{
    for (size_t i = 0; i < a->token_count; i++) {
        free(a->tokens[i].name);
        secret_fini(&a->tokens[i].secret);
    }
    free(a->tokens);
    free(a->listen);
    memset(a, 0, sizeof(*a));
}
