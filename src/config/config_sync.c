/* SPDX-License-Identifier: MIT */

/*
 * syncs.X: the model a sync carries, its origins and collections, and the
 * rules checked against them: field owners, the conflict policy, natural
 * keys for first contact (match) and per-collection filters. Runs after
 * the systems, whose collections it borrows.
 */

#include "config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"
#include "core/xmalloc.h"

static const char *const sync_keys[] = {"model",    "origin",  "collections", "owners",
                                        "conflict", "prefer",  "skew",        "write_back",
                                        "match",    "filters", "automations"};
static const char *const conflict_policies[] = {"manual", "owner", "newest", "prefer"};
static const char *const match_keys[] = {"field", "normalize", "country"};
static const char *const normalize_names[] = {"exact", "text", "email", "phone", "vat"};

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

void
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
