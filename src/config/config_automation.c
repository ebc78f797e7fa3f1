/* SPDX-License-Identifier: MIT */

/*
 * The automations: section of the config (docs/automations.md), with the
 * top-level automation_depth and each sync's automations key:
 *
 *   automations:
 *     invoice_completed_booking:
 *       model: booking
 *       on: "status: * -> completed"     # or created | updated | deleted
 *       if: '.new.total > 0'             # jq over the context; or a list
 *       actions:
 *         - create: {model: invoice, fields: {booking: {path: record}, total: {path: new.total}}}
 *         - notify: {webhook: env:STAFF_WEBHOOK, text: "Booking {new.code} completed"}
 *
 * Problems are reported the way config_schema.c reports them
 * ("automations.x.actions[2].http.system: ..."), at the node they are
 * about, and no message shows a secret. It runs after the rest of the
 * schema, so models, systems, syncs and alerts are known. What the engine
 * does with an automation is in engine/automation.c.
 */

#include "config/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config/config_int.h"
#include "core/secret.h"
#include "core/xmalloc.h"

#define PROBLEM(c, n, ...) config_diag_add((c)->d, (n)->line, (n)->col, __VA_ARGS__)

/* The default of automation_depth: a chain of runs, each caused by the
 * change the one before made, is cut past this many links. */
#define AUTOMATION_DEPTH_DEFAULT 5

struct actx {
    struct config_diags *d;
    struct config *cfg;
    const char *base_dir;
    unsigned flags;
    const struct config_model *model; /* the automation's model, while one is parsed */
};

static const char *const automation_keys[] = {"model", "on", "if", "actions"};
static const char *const action_kinds[] = {"set", "create", "update", "http", "notify", "wait"};
static const char *const create_keys[] = {"model", "fields"};
static const char *const update_keys[] = {"model", "record", "match", "fields"};
static const char *const http_keys[] = {"system", "request", "body", "idempotency_header"};
static const char *const notify_keys[] = {"webhook", "email", "text"};
static const char *const email_keys[] = {"to", "subject", "url", "from", "username", "password"};
static const char *const wait_keys[] = {"until", "before", "after"};
static const char *const value_keys[] = {"path", "jq", "const", "default"};
static const char *const event_names[] = {"created", "updated", "deleted"};
static const char *const http_methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
/* The names at the top of a run's context (engine/automation.c makes it). */
static const char *const context_names[] = {"new",     "old",   "current",    "source",
                                            "record",  "model", "version",    "event",
                                            "changed", "run",   "automation", "depth"};

/* ---- small helpers over nodes (config_value.c has the ones shared by every section) ---- */

static char *
join(const char *parent, const char *key)
{
    return xasprintf("%s.%s", parent, key);
}

/* The name closest to word when it is close enough to be a typo, or NULL. */
static const char *
closest(const char *word, const char *const *names, size_t n)
{
    size_t best = SIZE_MAX, wlen = strlen(word);
    const char *pick = NULL;

    for (size_t i = 0; i < n; i++) {
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

/* "; hint: did you mean "x"?", or what the names are, into out. */
static const char *
hint_for(const char *word, const char *const *names, size_t n, char *out, size_t len)
{
    const char *pick = closest(word, names, n);
    size_t used;

    if (pick != NULL) {
        (void)snprintf(out, len, "; hint: did you mean \"%s\"?", pick);
        return out;
    }
    used = (size_t)snprintf(out, len, "; hint: expected one of ");
    for (size_t i = 0; i < n && used < len; i++)
        used += (size_t)snprintf(out + used, len - used, "%s%s", i > 0 ? ", " : "", names[i]);
    return out;
}

static void
check_keys(struct actx *c, const struct config_node *map, const char *path,
           const char *const *allowed, size_t n)
{
    for (size_t i = 0; i + 1 < map->kid_count; i += 2) {
        const struct config_node *k = map->kids[i];
        char hint[400];

        if (config_in_list(k->value, allowed, n) < 0)
            PROBLEM(c, k, "%s: unknown key \"%.64s\"%s", path, k->value,
                    hint_for(k->value, allowed, n, hint, sizeof(hint)));
    }
}

static int
want_map(struct actx *c, const struct config_node *n, const char *path)
{
    char buf[64];

    if (n->kind == CONFIG_NODE_MAPPING)
        return 1;
    PROBLEM(c, n, "%s: expected a mapping, got %s", path, config_node_show(n, buf, sizeof(buf)));
    return 0;
}

static int
get_str(struct actx *c, const struct config_node *n, const char *path, char **out)
{
    char buf[64];

    if (n->kind != CONFIG_NODE_SCALAR || config_node_is_null(n)) {
        PROBLEM(c, n, "%s: expected a string, got %s", path, config_node_show(n, buf, sizeof(buf)));
        return -1;
    }
    free(*out);
    *out = xstrdup(n->value);
    return 0;
}

static int
get_duration(struct actx *c, const struct config_node *n, const char *path, int64_t *out)
{
    char buf[64];

    if (n->kind != CONFIG_NODE_SCALAR || config_node_is_null(n) ||
        config_duration_ms(n->value, out) == -1) {
        PROBLEM(c, n,
                "%s: expected a duration such as 250ms, 5s, 5m, 2h or 1d (a bare number is "
                "milliseconds), got %s",
                path, config_node_show(n, buf, sizeof(buf)));
        return -1;
    }
    return 0;
}

static void
check_jq(struct actx *c, const struct config_node *n, const char *path)
{
    char why[260];

    if (config_jq_problem(n->value, why, sizeof(why)) == -1)
        PROBLEM(c, n, "%s: %s", path, why);
}

/* A secret reference at n into *out, resolved; the scalar is never shown. */
static void
get_secret(struct actx *c, const struct config_node *n, const char *path, struct secret *out)
{
    char why[400];

    if (n->kind != CONFIG_NODE_SCALAR || config_node_is_null(n)) {
        PROBLEM(c, n, "%s: expected a secret reference (env:NAME or file:PATH)", path);
        return;
    }
    if (!config_secret_is_ref(n->value)) {
        PROBLEM(c, n,
                "%s: secret written as a literal; hint: put it in the environment and write "
                "env:NAME",
                path);
        return;
    }
    if (c->flags & CONFIG_LOAD_NO_SECRETS) {
        out->ref = xstrdup(n->value);
        return;
    }
    if (config_secret_resolve(n->value, c->base_dir, out, why, sizeof(why)) == -1)
        PROBLEM(c, n, "%s: %s", path, why);
}

static const struct config_model *
find_model(struct actx *c, const struct config_node *n, const char *path)
{
    const struct config_model *m = config_model_find(c->cfg, n->value);
    const char **names;
    char hint[400];

    if (m != NULL)
        return m;
    names = xcalloc(c->cfg->model_count + 1, sizeof(*names));
    for (size_t i = 0; i < c->cfg->model_count; i++)
        names[i] = c->cfg->models[i].name;
    PROBLEM(c, n, "%s: no model named \"%.64s\"%s", path, n->value,
            c->cfg->model_count > 0
                ? hint_for(n->value, names, c->cfg->model_count, hint, sizeof(hint))
                : "");
    free(names);
    return NULL;
}

/* Whether model has field; if not, says so at k. */
static int
check_field(struct actx *c, const struct config_model *m, const struct config_node *k,
            const char *path)
{
    const char **names;
    char hint[400];

    if (m == NULL || config_model_field(m, k->value) != NULL)
        return 1;
    names = xcalloc(m->field_count + 1, sizeof(*names));
    for (size_t i = 0; i < m->field_count; i++)
        names[i] = m->fields[i].name;
    PROBLEM(c, k, "%s: model \"%s\" has no field \"%.64s\"%s", path, m->name, k->value,
            m->field_count > 0 ? hint_for(k->value, names, m->field_count, hint, sizeof(hint))
                               : "");
    free(names);
    return 0;
}

/* ---- values and templates over the run's context ---- */

/* Whether path (dotted, leading '.' allowed) starts with a name of the
 * context; if not, says so at n. */
static void
check_context_path(struct actx *c, const struct config_node *n, const char *path, const char *p)
{
    char head[64], hint[400];
    size_t len;

    if (*p == '.')
        p++;
    len = strcspn(p, ".");
    if (len == 0 || len >= sizeof(head)) {
        PROBLEM(c, n, "%s: \"%.64s\" is not a path into the run's context", path, p);
        return;
    }
    memcpy(head, p, len);
    head[len] = '\0';
    if (config_in_list(head, context_names, ARRAY_COUNT(context_names)) < 0)
        PROBLEM(c, n, "%s: the run's context has no \"%s\"%s", path, head,
                hint_for(head, context_names, ARRAY_COUNT(context_names), hint, sizeof(hint)));
}

/* A template's {placeholders}: each a path into the context, none left open. */
static void
check_template(struct actx *c, const struct config_node *n, const char *path)
{
    for (const char *s = n->value; *s != '\0'; s++) {
        const char *end, *bad;
        char inner[128];
        size_t len;

        if (*s == '}') {
            PROBLEM(c, n, "%s: a \"}\" without its \"{\"", path);
            return;
        }
        if (*s != '{')
            continue;
        end = strchr(s + 1, '}');
        if (end == NULL) {
            PROBLEM(c, n, "%s: a \"{\" without its \"}\"; hint: placeholders look like {new.id}",
                    path);
            return;
        }
        len = (size_t)(end - s - 1);
        bad = strpbrk(s + 1, "{ \t");
        if (len == 0 || len >= sizeof(inner) || (bad != NULL && bad < end)) {
            PROBLEM(c, n,
                    "%s: \"%.*s\" is not a placeholder; hint: placeholders look like {new.id}",
                    path, (int)(end - s + 1 > 60 ? 60 : end - s + 1), s);
            return;
        }
        memcpy(inner, s + 1, len);
        inner[len] = '\0';
        check_context_path(c, n, path, inner);
        s = end;
    }
}

/* One value: a scalar or a list is a constant; a mapping with path, jq or
 * const computes it; any other mapping is a constant object. */
static void
parse_value(struct actx *c, const struct config_node *v, const char *path,
            struct config_map_entry *e)
{
    const struct config_node *p = config_node_get(v, "path"), *jq = config_node_get(v, "jq");
    const struct config_node *k = config_node_get(v, "const");
    int sources = (p != NULL) + (jq != NULL) + (k != NULL);

    e->source = CONFIG_MAP_CONST;
    if (v->kind != CONFIG_NODE_MAPPING || (sources == 0 && config_node_get(v, "default") == NULL)) {
        e->const_value = config_node_json(v);
        return;
    }
    check_keys(c, v, path, value_keys, ARRAY_COUNT(value_keys));
    if (sources != 1) {
        PROBLEM(c, v, "%s: give exactly one of path, jq and const (%d given)", path, sources);
        return;
    }
    if (p != NULL) {
        e->source = CONFIG_MAP_PATH;
        if (get_str(c, p, path, &e->path) == 0)
            check_context_path(c, p, path, e->path);
    } else if (jq != NULL) {
        e->source = CONFIG_MAP_JQ;
        if (get_str(c, jq, path, &e->jq) == 0)
            check_jq(c, jq, path);
    } else {
        e->const_value = config_node_json(k);
    }
    if (config_node_get(v, "default") != NULL)
        e->default_value = config_node_json(config_node_get(v, "default"));
}

/* A mapping target -> value into out; targets are fields of model when it
 * is not NULL (else dotted output paths). */
static void
parse_values(struct actx *c, const struct config_node *v, const char *path,
             const struct config_model *model, struct config_map *out)
{
    if (!want_map(c, v, path))
        return;
    if (v->kid_count == 0)
        PROBLEM(c, v, "%s: name at least one field", path);
    out->entries = xcalloc(v->kid_count / 2 + 1, sizeof(*out->entries));
    for (size_t i = 0; i + 1 < v->kid_count; i += 2) {
        const struct config_node *k = v->kids[i];
        struct config_map_entry *e = &out->entries[out->entry_count++];
        char *p = join(path, k->value);

        e->target = xstrdup(k->value);
        e->pos = (struct config_pos){k->line, k->col};
        if (model != NULL)
            (void)check_field(c, model, k, path);
        parse_value(c, v->kids[i + 1], p, e);
        free(p);
    }
}

/* Whether every sync of model lets automations set the fields of m; says
 * which one does not, at the field's key. */
static void
check_allowed(struct actx *c, const char *model, const struct config_map *m, const char *path)
{
    for (size_t s = 0; s < c->cfg->sync_count; s++) {
        const struct config_sync *sync = &c->cfg->syncs[s];

        if (!sync->automation_fields_given || sync->model == NULL ||
            strcmp(sync->model, model) != 0)
            continue;
        for (size_t i = 0; i < m->entry_count; i++) {
            int ok = 0;

            for (size_t f = 0; f < sync->automation_field_count; f++)
                ok |= strcmp(sync->automation_fields[f], m->entries[i].target) == 0;
            if (!ok)
                config_diag_add(c->d, m->entries[i].pos.line, m->entries[i].pos.col,
                                "%s.%s: sync %s lets automations set only the fields in its "
                                "automations list",
                                path, m->entries[i].target, sync->name);
        }
    }
}

/* ---- actions ---- */

static void
parse_set(struct actx *c, const struct config_node *v, const char *path, struct config_action *a)
{
    if (c->model == NULL)
        return;
    a->model = xstrdup(c->model->name);
    parse_values(c, v, path, c->model, &a->fields);
    check_allowed(c, a->model, &a->fields, path);
}

/* model: and fields: of create and update. */
static const struct config_model *
target_model(struct actx *c, const struct config_node *v, const char *path, struct config_action *a)
{
    const struct config_node *m = config_node_get(v, "model"), *f = config_node_get(v, "fields");
    const struct config_model *model = NULL;
    char *p;

    if (m == NULL)
        PROBLEM(c, v, "%s: missing required key \"model\"", path);
    else if (get_str(c, m, path, &a->model) == 0)
        model = find_model(c, m, path);
    if (f == NULL) {
        PROBLEM(c, v, "%s: missing required key \"fields\"", path);
        return model;
    }
    p = join(path, "fields");
    parse_values(c, f, p, model, &a->fields);
    if (model != NULL)
        check_allowed(c, model->name, &a->fields, p);
    free(p);
    return model;
}

static void
parse_create(struct actx *c, const struct config_node *v, const char *path, struct config_action *a)
{
    if (!want_map(c, v, path))
        return;
    check_keys(c, v, path, create_keys, ARRAY_COUNT(create_keys));
    (void)target_model(c, v, path, a);
}

static void
parse_update(struct actx *c, const struct config_node *v, const char *path, struct config_action *a)
{
    const struct config_node *rec, *match;
    const struct config_model *model;
    char *p;

    if (!want_map(c, v, path))
        return;
    check_keys(c, v, path, update_keys, ARRAY_COUNT(update_keys));
    model = target_model(c, v, path, a);
    rec = config_node_get(v, "record");
    match = config_node_get(v, "match");
    if ((rec != NULL) == (match != NULL)) {
        PROBLEM(c, v,
                "%s: give exactly one of record (the record's id) and match (field values "
                "that find the records)",
                path);
        return;
    }
    if (rec != NULL) {
        p = join(path, "record");
        a->record.entries = xcalloc(1, sizeof(*a->record.entries));
        a->record.entry_count = 1;
        a->record.entries[0].target = xstrdup("record");
        a->record.entries[0].pos = (struct config_pos){rec->line, rec->col};
        parse_value(c, rec, p, &a->record.entries[0]);
        free(p);
        return;
    }
    p = join(path, "match");
    parse_values(c, match, p, model, &a->match);
    free(p);
}

static void
parse_request(struct actx *c, const struct config_node *v, const char *path,
              struct config_action *a)
{
    char buf[64], method[8];
    const char *s, *sp;
    size_t mlen;

    s = v->kind == CONFIG_NODE_SCALAR ? v->value : "";
    sp = strchr(s, ' ');
    mlen = sp != NULL ? (size_t)(sp - s) : 0;
    if (mlen > 0 && mlen < sizeof(method)) {
        memcpy(method, s, mlen);
        method[mlen] = '\0';
    } else {
        method[0] = '\0';
    }
    sp = sp != NULL ? sp + strspn(sp, " ") : "";
    if (config_in_list(method, http_methods, ARRAY_COUNT(http_methods)) < 0 || sp[0] != '/' ||
        strpbrk(sp, " \t") != NULL) {
        PROBLEM(c, v,
                "%s: expected \"METHOD /path\" with METHOD one of GET, POST, PUT, PATCH, DELETE, "
                "got %s",
                path, config_node_show(v, buf, sizeof(buf)));
        return;
    }
    a->request.method = xstrdup(method);
    a->request.path = xstrdup(sp);
    check_template(c, v, path);
}

static void
parse_http(struct actx *c, const struct config_node *v, const char *path, struct config_action *a)
{
    const struct config_node *sys, *req, *n;
    const struct config_system *s;
    char *p;

    if (!want_map(c, v, path))
        return;
    check_keys(c, v, path, http_keys, ARRAY_COUNT(http_keys));
    sys = config_node_get(v, "system");
    req = config_node_get(v, "request");
    if (sys == NULL)
        PROBLEM(c, v, "%s: missing required key \"system\"", path);
    if (req == NULL)
        PROBLEM(c, v, "%s: missing required key \"request\"", path);
    p = join(path, "system");
    if (sys != NULL && get_str(c, sys, p, &a->system) == 0) {
        s = config_system_find(c->cfg, a->system);
        if (s == NULL)
            PROBLEM(c, sys, "%s: no system named \"%.64s\"", p, a->system);
        else if (s->kind != CONFIG_SYSTEM_HTTP)
            PROBLEM(c, sys, "%s: %s is a database; an http action needs an HTTP system", p,
                    a->system);
    }
    free(p);
    p = join(path, "request");
    if (req != NULL)
        parse_request(c, req, p, a);
    free(p);
    if ((n = config_node_get(v, "body")) != NULL) {
        p = join(path, "body");
        parse_values(c, n, p, NULL, &a->body);
        free(p);
    }
    if ((n = config_node_get(v, "idempotency_header")) != NULL) {
        p = join(path, "idempotency_header");
        (void)get_str(c, n, p, &a->idempotency_header);
        free(p);
    }
}

static void
parse_mail_to(struct actx *c, const struct config_node *to, const char *path,
              struct config_action *a)
{
    size_t n = to->kind == CONFIG_NODE_SEQUENCE ? to->kid_count : 1;

    a->mail_to = xcalloc(n + 1, sizeof(*a->mail_to));
    if (to->kind == CONFIG_NODE_MAPPING || n == 0) {
        PROBLEM(c, to, "%s: expected an address or a list of addresses", path);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const struct config_node *x = to->kind == CONFIG_NODE_SEQUENCE ? to->kids[i] : to;

        if (get_str(c, x, path, &a->mail_to[a->mail_to_count]) == 0)
            a->mail_to_count++;
    }
}

static void
parse_email(struct actx *c, const struct config_node *v, const char *path, struct config_action *a)
{
    const struct config_node *n;
    char *p;

    if (!want_map(c, v, path))
        return;
    check_keys(c, v, path, email_keys, ARRAY_COUNT(email_keys));
    if ((n = config_node_get(v, "to")) == NULL)
        PROBLEM(c, v, "%s: missing required key \"to\"", path);
    else
        parse_mail_to(c, n, path, a);
    if ((n = config_node_get(v, "subject")) != NULL && get_str(c, n, path, &a->subject) == 0)
        check_template(c, n, path);
    if ((n = config_node_get(v, "url")) != NULL && get_str(c, n, path, &a->smtp_url) == 0 &&
        strncmp(a->smtp_url, "smtp://", 7) != 0 && strncmp(a->smtp_url, "smtps://", 8) != 0)
        PROBLEM(c, n, "%s.url: expected smtp://HOST:PORT or smtps://HOST:PORT", path);
    if ((n = config_node_get(v, "from")) != NULL)
        (void)get_str(c, n, path, &a->mail_from);
    if ((n = config_node_get(v, "username")) != NULL)
        (void)get_str(c, n, path, &a->smtp_user);
    if ((n = config_node_get(v, "password")) != NULL) {
        p = join(path, "password");
        get_secret(c, n, p, &a->smtp_password);
        free(p);
    }
    if (a->smtp_url == NULL && c->cfg->alerts.smtp_url == NULL)
        PROBLEM(c, v, "%s: no SMTP server; hint: give url and from here, or configure alerts.email",
                path);
    else if (a->smtp_url != NULL && a->mail_from == NULL)
        PROBLEM(c, v, "%s: missing required key \"from\"", path);
}

static void
parse_notify(struct actx *c, const struct config_node *v, const char *path, struct config_action *a)
{
    const struct config_node *n;
    char *p;

    if (!want_map(c, v, path))
        return;
    check_keys(c, v, path, notify_keys, ARRAY_COUNT(notify_keys));
    if ((n = config_node_get(v, "text")) == NULL) {
        PROBLEM(c, v, "%s: missing required key \"text\"", path);
    } else {
        p = join(path, "text");
        if (get_str(c, n, p, &a->text) == 0)
            check_template(c, n, p);
        free(p);
    }
    if ((n = config_node_get(v, "webhook")) != NULL) {
        p = join(path, "webhook");
        get_secret(c, n, p, &a->webhook);
        free(p);
    }
    if ((n = config_node_get(v, "email")) != NULL) {
        p = join(path, "email");
        parse_email(c, n, p, a);
        free(p);
    }
    if (config_node_get(v, "webhook") == NULL && config_node_get(v, "email") == NULL)
        PROBLEM(c, v, "%s: no sink; hint: add webhook: env:STAFF_WEBHOOK_URL, or email", path);
}

static void
parse_wait_until(struct actx *c, const struct config_node *v, const char *path,
                 struct config_action *a)
{
    const struct config_node *until = config_node_get(v, "until"),
                             *before = config_node_get(v, "before");
    const struct config_node *after = config_node_get(v, "after");
    const struct config_field *f;
    char *p = join(path, "until");
    int64_t ms = 0;

    check_keys(c, v, path, wait_keys, ARRAY_COUNT(wait_keys));
    if (until == NULL)
        PROBLEM(c, v, "%s: missing required key \"until\" (a timestamp field)", path);
    else if (get_str(c, until, p, &a->wait_field) == 0 && check_field(c, c->model, until, p) &&
             c->model != NULL) {
        f = config_model_field(c->model, a->wait_field);
        if (f->type != CONFIG_TYPE_TIMESTAMP && f->type != CONFIG_TYPE_DATE)
            PROBLEM(c, until, "%s: %s is not a timestamp or a date", p, a->wait_field);
    }
    free(p);
    if (before != NULL && after != NULL)
        PROBLEM(c, after, "%s: give before or after, not both", path);
    else if (before != NULL || after != NULL) {
        p = join(path, before != NULL ? "before" : "after");
        if (get_duration(c, before != NULL ? before : after, p, &ms) == 0)
            a->wait_ms = before != NULL ? -ms : ms;
        free(p);
    }
}

static void
parse_wait(struct actx *c, const struct config_node *v, const char *path, struct config_action *a)
{
    if (v->kind == CONFIG_NODE_MAPPING)
        parse_wait_until(c, v, path, a);
    else
        (void)get_duration(c, v, path, &a->wait_ms);
}

static void
parse_action(struct actx *c, const struct config_node *v, const char *path, struct config_action *a)
{
    typedef void parse_fn(struct actx *, const struct config_node *, const char *,
                          struct config_action *);
    static parse_fn *const parsers[] = {parse_set,  parse_create, parse_update,
                                        parse_http, parse_notify, parse_wait};
    const struct config_node *k;
    char hint[400], *p;
    int kind;

    a->pos = (struct config_pos){v->line, v->col};
    if (v->kind != CONFIG_NODE_MAPPING || v->kid_count != 2) {
        PROBLEM(c, v,
                "%s: expected a mapping with one key: set, create, update, http, notify or "
                "wait",
                path);
        return;
    }
    k = v->kids[0];
    kind = config_in_list(k->value, action_kinds, ARRAY_COUNT(action_kinds));
    if (kind < 0) {
        PROBLEM(c, k, "%s: unknown action \"%.64s\"%s", path, k->value,
                hint_for(k->value, action_kinds, ARRAY_COUNT(action_kinds), hint, sizeof(hint)));
        return;
    }
    a->kind = (enum config_action_kind)(kind + 1);
    p = join(path, k->value);
    parsers[kind](c, v->kids[1], p, a);
    free(p);
}

/* ---- the trigger ---- */

/* One side of "FROM -> TO" (len bytes at s) into *out. */
static int
parse_side(const char *s, size_t len, struct config_values *out)
{
    char *text = xstrndup(s, len), *save = NULL, *tok;
    int rc = 0;

    for (tok = strtok_r(text, "|", &save); tok != NULL; tok = strtok_r(NULL, "|", &save)) {
        size_t n;

        tok += strspn(tok, " \t");
        n = strlen(tok);
        while (n > 0 && (tok[n - 1] == ' ' || tok[n - 1] == '\t'))
            tok[--n] = '\0';
        if (n >= 2 && (tok[0] == '"' || tok[0] == '\'') && tok[n - 1] == tok[0]) {
            tok[n - 1] = '\0';
            tok++;
        } else if (n == 0) {
            rc = -1;
            break;
        } else if (strcmp(tok, "*") == 0 || strcmp(tok, "any") == 0) {
            out->any = 1;
            continue;
        }
        out->values = xreallocarray(out->values, out->count + 1, sizeof(*out->values));
        out->values[out->count++] = xstrdup(tok);
    }
    free(text);
    if (rc == 0 && out->any && out->count > 0)
        rc = -1; /* "* | paid" means nothing more than "*" */
    return out->any || out->count > 0 ? rc : -1;
}

/* "FIELD: FROM -> TO" (field given apart when spec is a mapping's value). */
static void
parse_transition(struct actx *c, const struct config_node *n, const char *field, const char *spec,
                 const char *path, struct config_automation *a)
{
    const char *arrow = strstr(spec, "->");

    a->field = xstrdup(field);
    if (arrow == NULL || strstr(arrow + 2, "->") != NULL ||
        parse_side(spec, (size_t)(arrow - spec), &a->from) == -1 ||
        parse_side(arrow + 2, strlen(arrow + 2), &a->to) == -1) {
        PROBLEM(c, n,
                "%s: expected FIELD: FROM -> TO, each side * (any) or values separated by |, as "
                "in \"status: pending -> paid\" or \"status: * -> cancelled\"",
                path);
        return;
    }
    if (c->model != NULL && config_model_field(c->model, field) == NULL) {
        const char **names = xcalloc(c->model->field_count + 1, sizeof(*names));
        char hint[400];

        for (size_t i = 0; i < c->model->field_count; i++)
            names[i] = c->model->fields[i].name;
        PROBLEM(c, n, "%s: model \"%s\" has no field \"%.64s\"%s", path, c->model->name, field,
                c->model->field_count > 0
                    ? hint_for(field, names, c->model->field_count, hint, sizeof(hint))
                    : "");
        free(names);
    }
}

/* One event name at n into a's mask. */
static void
parse_event(struct actx *c, const struct config_node *n, const char *path,
            struct config_automation *a)
{
    char hint[400];
    int i = n->kind == CONFIG_NODE_SCALAR ? config_in_list(n->value, event_names, 3) : -1;

    if (i >= 0) {
        a->on |= 1u << i;
        return;
    }
    PROBLEM(c, n,
            "%s: expected created, updated, deleted, or a transition such as \"status: * -> "
            "paid\"%s",
            path,
            n->kind == CONFIG_NODE_SCALAR ? hint_for(n->value, event_names, 3, hint, sizeof(hint))
                                          : "");
}

static void
parse_on(struct actx *c, const struct config_node *v, const char *path, struct config_automation *a)
{
    const char *colon;
    char *field;

    if (v->kind == CONFIG_NODE_SEQUENCE) {
        for (size_t i = 0; i < v->kid_count; i++)
            parse_event(c, v->kids[i], path, a);
        if (v->kid_count == 0)
            PROBLEM(c, v, "%s: name at least one event", path);
        return;
    }
    if (v->kind == CONFIG_NODE_MAPPING) {
        if (v->kid_count != 2 || v->kids[1]->kind != CONFIG_NODE_SCALAR) {
            PROBLEM(c, v, "%s: a transition is one field: \"FROM -> TO\"", path);
            return;
        }
        parse_transition(c, v->kids[1], v->kids[0]->value, v->kids[1]->value, path, a);
        return;
    }
    colon = v->kind == CONFIG_NODE_SCALAR ? strchr(v->value, ':') : NULL;
    if (colon == NULL) {
        parse_event(c, v, path, a);
        return;
    }
    field = xstrndup(v->value, (size_t)(colon - v->value));
    field[strcspn(field, " \t")] = '\0';
    parse_transition(c, v, field, colon + 1, path, a);
    free(field);
}

static void
parse_conditions(struct actx *c, const struct config_node *v, const char *path,
                 struct config_automation *a)
{
    size_t n = v->kind == CONFIG_NODE_SEQUENCE ? v->kid_count : 1;

    a->conditions = xcalloc(n + 1, sizeof(*a->conditions));
    for (size_t i = 0; i < n; i++) {
        const struct config_node *x = v->kind == CONFIG_NODE_SEQUENCE ? v->kids[i] : v;

        if (get_str(c, x, path, &a->conditions[a->condition_count]) == 0) {
            check_jq(c, x, path);
            a->condition_count++;
        }
    }
}

static void
parse_actions(struct actx *c, const struct config_node *v, const char *path,
              struct config_automation *a)
{
    if (v->kind != CONFIG_NODE_SEQUENCE || v->kid_count == 0) {
        PROBLEM(c, v, "%s: expected a list of actions (set, create, update, http, notify, wait)",
                path);
        return;
    }
    a->actions = xcalloc(v->kid_count, sizeof(*a->actions));
    for (size_t i = 0; i < v->kid_count; i++) {
        char *p = xasprintf("%s[%zu]", path, i + 1);

        parse_action(c, v->kids[i], p, &a->actions[a->action_count++]);
        free(p);
    }
}

static void
parse_automation(struct actx *c, const struct config_node *v, const char *path,
                 struct config_automation *a)
{
    const struct config_node *n;
    char *p;

    c->model = NULL;
    if (!want_map(c, v, path))
        return;
    check_keys(c, v, path, automation_keys, ARRAY_COUNT(automation_keys));
    if ((n = config_node_get(v, "model")) == NULL)
        PROBLEM(c, v, "%s: missing required key \"model\"", path);
    else if (get_str(c, n, path, &a->model) == 0)
        c->model = find_model(c, n, path);
    p = join(path, "on");
    if ((n = config_node_get(v, "on")) == NULL)
        PROBLEM(c, v, "%s: missing required key \"on\"", path);
    else
        parse_on(c, n, p, a);
    free(p);
    if ((n = config_node_get(v, "if")) != NULL) {
        p = join(path, "if");
        parse_conditions(c, n, p, a);
        free(p);
    }
    p = join(path, "actions");
    if ((n = config_node_get(v, "actions")) == NULL)
        PROBLEM(c, v, "%s: missing required key \"actions\"", path);
    else
        parse_actions(c, n, p, a);
    free(p);
    c->model = NULL;
}

/* ---- syncs.X.automations and the section ---- */

static void
parse_sync_fields(struct actx *c, const struct config_node *v, const char *path,
                  struct config_sync *s)
{
    const struct config_model *m = s->model ? config_model_find(c->cfg, s->model) : NULL;

    if (v->kind != CONFIG_NODE_SEQUENCE) {
        PROBLEM(c, v, "%s: expected a list of the fields automations may set ([] for none)", path);
        return;
    }
    s->automation_fields_given = 1;
    s->automation_fields = xcalloc(v->kid_count + 1, sizeof(*s->automation_fields));
    for (size_t i = 0; i < v->kid_count; i++) {
        const struct config_node *f = v->kids[i];

        if (get_str(c, f, path, &s->automation_fields[s->automation_field_count]) == 0 &&
            check_field(c, m, f, path))
            s->automation_field_count++;
        else
            free(s->automation_fields[s->automation_field_count]);
        s->automation_fields[s->automation_field_count] = NULL;
    }
}

static void
parse_syncs_automations(struct actx *c, const struct config_node *syncs)
{
    if (syncs == NULL || syncs->kind != CONFIG_NODE_MAPPING)
        return;
    for (size_t i = 0; i + 1 < syncs->kid_count; i += 2) {
        const struct config_node *v = config_node_get(syncs->kids[i + 1], "automations");
        char *p;

        if (v == NULL)
            continue;
        for (size_t s = 0; s < c->cfg->sync_count; s++) {
            if (strcmp(c->cfg->syncs[s].name, syncs->kids[i]->value) != 0)
                continue;
            p = xasprintf("syncs.%s.automations", c->cfg->syncs[s].name);
            parse_sync_fields(c, v, p, &c->cfg->syncs[s]);
            free(p);
        }
    }
}

static void
parse_depth(struct actx *c, const struct config_node *v)
{
    char *end = NULL;
    long long n = v->kind == CONFIG_NODE_SCALAR ? strtoll(v->value, &end, 10) : 0;

    if (end == NULL || end == v->value || *end != '\0' || n < 1 || n > 100) {
        char buf[64];

        PROBLEM(c, v, "automation_depth: expected an integer from 1 to 100, got %s",
                config_node_show(v, buf, sizeof(buf)));
        return;
    }
    c->cfg->automation_depth = n;
}

void
config_automations_parse(const struct config_node *root, struct config *cfg, const char *base_dir,
                         unsigned flags, struct config_diags *d)
{
    struct actx c = {.d = d, .cfg = cfg, .base_dir = base_dir, .flags = flags};
    const struct config_node *v = config_node_get(root, "automations");

    cfg->automation_depth = AUTOMATION_DEPTH_DEFAULT;
    if (config_node_get(root, "automation_depth") != NULL)
        parse_depth(&c, config_node_get(root, "automation_depth"));
    parse_syncs_automations(&c, config_node_get(root, "syncs"));
    if (v == NULL || config_node_is_null(v) || !want_map(&c, v, "automations"))
        return;
    cfg->automations = xcalloc(v->kid_count / 2 + 1, sizeof(*cfg->automations));
    for (size_t i = 0; i + 1 < v->kid_count; i += 2) {
        const struct config_node *k = v->kids[i];
        struct config_automation *a = &cfg->automations[cfg->automation_count++];
        char *p = join("automations", k->value);

        a->name = xstrdup(k->value);
        a->pos = (struct config_pos){k->line, k->col};
        if (!config_name_ok(k->value))
            PROBLEM(&c, k,
                    "automations: automation name \"%.64s\" may hold only letters, digits, \"_\" "
                    "and \"-\"",
                    k->value);
        parse_automation(&c, v->kids[i + 1], p, a);
        free(p);
    }
}

/* ---- releasing ---- */

static void
values_fini(struct config_values *v)
{
    for (size_t i = 0; i < v->count; i++)
        free(v->values[i]);
    free(v->values);
    memset(v, 0, sizeof(*v));
}

static void
action_fini(struct config_action *a)
{
    free(a->model);
    config_map_fini(&a->fields);
    config_map_fini(&a->record);
    config_map_fini(&a->match);
    free(a->system);
    free(a->request.method);
    free(a->request.path);
    config_map_fini(&a->body);
    free(a->idempotency_header);
    secret_fini(&a->webhook);
    free(a->text);
    free(a->subject);
    free(a->smtp_url);
    free(a->mail_from);
    for (size_t i = 0; i < a->mail_to_count; i++)
        free(a->mail_to[i]);
    free(a->mail_to);
    free(a->smtp_user);
    secret_fini(&a->smtp_password);
    free(a->wait_field);
}

void
config_automations_fini(struct config *cfg)
{
    for (size_t i = 0; i < cfg->automation_count; i++) {
        struct config_automation *a = &cfg->automations[i];

        free(a->name);
        free(a->model);
        free(a->field);
        values_fini(&a->from);
        values_fini(&a->to);
        for (size_t k = 0; k < a->condition_count; k++)
            free(a->conditions[k]);
        free(a->conditions);
        for (size_t k = 0; k < a->action_count; k++)
            action_fini(&a->actions[k]);
        free(a->actions);
    }
    free(cfg->automations);
    cfg->automations = NULL;
    cfg->automation_count = 0;
    for (size_t s = 0; s < cfg->sync_count; s++) {
        for (size_t i = 0; i < cfg->syncs[s].automation_field_count; i++)
            free(cfg->syncs[s].automation_fields[i]);
        free(cfg->syncs[s].automation_fields);
        cfg->syncs[s].automation_fields = NULL;
        cfg->syncs[s].automation_field_count = 0;
    }
}
