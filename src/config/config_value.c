/* SPDX-License-Identifier: MIT */

/*
 * Reading typed values off the node tree, for every part of the schema's
 * walk: a key's node, a string, an integer in a range, a duration, a share,
 * one of a list of choices, a name, a secret reference. Each getter reports
 * what is wrong at the node (config_int.h, CONFIG_PROBLEM) and leaves its
 * output alone; an opt_ getter does nothing when its key is absent. Also
 * the duration syntax of config.h (config_duration_ms, config_now_offset)
 * and "did you mean" hints for unknown keys and names.
 */

#include "config/config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"
#include "core/secret.h"
#include "core/xmalloc.h"

char *
config_join(const char *parent, const char *key)
{
    return parent[0] == '\0' ? xstrdup(key) : xasprintf("%s.%s", parent, key);
}

const struct config_node *
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
const struct config_node *
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

int
config_node_is_null(const struct config_node *n)
{
    return n->kind == CONFIG_NODE_SCALAR && !n->is_quoted &&
           (n->value[0] == '\0' || strcmp(n->value, "~") == 0 || strcmp(n->value, "null") == 0);
}

/* How a node reads in a message: a value is quoted and cut, a collection named. */
const char *
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

int
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
const char *
config_did_you_mean(struct config_ctx *c, const char *word, const char *const *names, size_t n,
                    char *out, size_t len)
{
    const char *pick = closest(c, word, names, n);

    if (pick == NULL)
        return "";
    (void)snprintf(out, len, "; hint: did you mean \"%s\"?", pick);
    return out;
}

void
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
int
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

void
config_missing(struct config_ctx *c, const struct config_node *parent, const char *path,
               const char *key)
{
    if (path[0] == '\0')
        CONFIG_PROBLEM(c, parent, "missing required key \"%s\"", key);
    else
        CONFIG_PROBLEM(c, parent, "%s: missing required key \"%s\"", path, key);
}

int
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
void
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

int
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

void
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
void
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

/* A duration of at least lo ms at n into *out; says why not at n. */
int
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

void
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
int
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

/* A share: a number from 0 to 1 ("0.25") or a percentage ("25%"). */
int
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

/* The index of the value of key among choices, or -1 (reported unless absent). */
int
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

int
config_name_ok(const char *s)
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
void
config_check_name(struct config_ctx *c, const struct config_node *k, const char *path,
                  const char *what)
{
    if (!config_name_ok(k->value))
        CONFIG_PROBLEM(c, k, "%s: %s name \"%.64s\" may hold only letters, digits, \"_\" and \"-\"",
                       path, what, k->value);
}

/* RFC 9110 §5.6.2: a header name is a token. */
int
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

/*
 * A secret reference at n into *out, resolved. The scalar is never shown:
 * if it is not a reference, it may be the secret itself.
 */
int
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
