/* SPDX-License-Identifier: MIT */

/*
 * The public face of the config module: config_load(), config_parse() and
 * config_check() run the pipeline (config_file.c -> config_parse.c ->
 * config_schema.c and the files of its walk, which call config_secret.c)
 * and turn the collected problems into a report; config_free() and the
 * look-ups. The list of problems and the edit distance behind "did you
 * mean" live here because every stage uses them.
 */

#include "config/config.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config/config_int.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/secret.h"
#include "core/xmalloc.h"

/* A message longer than this is cut: one line must stay readable. */
#define DIAG_MAX_LEN 1200

void
config_diag_add(struct config_diags *d, int line, int col, const char *fmt, ...)
{
    char msg[DIAG_MAX_LEN + 1];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* One problem, one line: a key or value with a newline must not break it. */
    for (char *p = msg; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    }
    if (d->count == d->cap) {
        d->cap = d->cap == 0 ? 8 : d->cap * 2;
        d->items = xreallocarray(d->items, d->cap, sizeof(*d->items));
    }
    d->items[d->count] =
        (struct config_diag){.line = line, .col = col, .msg = xstrdup(msg), .seq = d->count};
    d->count++;
}

void
config_diags_fini(struct config_diags *d)
{
    for (size_t i = 0; i < d->count; i++)
        free(d->items[i].msg);
    free(d->items);
    d->items = NULL;
    d->count = 0;
    d->cap = 0;
}

static int
cmp_diag(const void *a, const void *b)
{
    const struct config_diag *x = a, *y = b;

    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

char *
config_diags_report(struct config_diags *d, const char *name)
{
    struct buf b;

    qsort(d->items, d->count, sizeof(*d->items), cmp_diag);
    buf_init(&b, SIZE_MAX / 2);
    for (size_t i = 0; i < d->count; i++) {
        const struct config_diag *g = &d->items[i];

        if (buf_printf(&b, "%s:%d:%d: %s\n", name, g->line, g->col, g->msg) == -1)
            break; /* cannot happen: the limit is the address space */
    }
    return buf_take(&b);
}

size_t
config_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[65];

    if (la > 64 || lb > 64)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];

        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);

            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/*
 * The last directory of path, absolute when it can be made so: relative
 * store paths and secret files are taken from it, whatever the working
 * directory of the process that loads the file.
 */
static char *
dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash == NULL ? xstrdup(".") : xstrndup(path, (size_t)(slash - path));
    char *abs;

    if (dir[0] == '\0') {
        free(dir);
        return xstrdup("/");
    }
    abs = realpath(dir, NULL);
    if (abs == NULL)
        return dir;
    free(dir);
    return abs;
}

/* The whole pipeline after the bytes are in memory. */
static struct config *
run(const char *text, size_t len, const char *name, const char *base_dir, unsigned flags,
    struct config_diags *d)
{
    struct config_node *root = config_yaml_parse(text, len, d);
    struct config *cfg;

    if (root == NULL)
        return NULL;
    cfg = config_schema_build(root, name, base_dir, flags, d);
    config_node_free(root);
    if (d->count > 0) {
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

/* err gets the first problem, and how many others there are. */
static int
fail_with(struct config_diags *d, const char *name, struct error *err)
{
    char *report = config_diags_report(d, name);
    char *nl = strchr(report, '\n');

    if (nl != NULL)
        *nl = '\0';
    if (d->count > 1)
        error_set(err, ERROR_INVALID, "%s (and %zu more)", report, d->count - 1);
    else
        error_set(err, ERROR_INVALID, "%s", report);
    free(report);
    config_diags_fini(d);
    return -1;
}

int
config_parse(const char *text, size_t len, const char *name, struct config **out, struct error *err)
{
    struct config_diags d = {0};
    struct config *cfg = run(text, len, name, NULL, 0, &d);

    if (cfg == NULL)
        return fail_with(&d, name, err);
    config_diags_fini(&d);
    *out = cfg;
    return 0;
}

int
config_load(const char *path, struct config **out, struct error *err)
{
    return config_load_flags(path, 0, out, err);
}

int
config_load_flags(const char *path, unsigned flags, struct config **out, struct error *err)
{
    struct config_diags d = {0};
    struct config *cfg;
    char *text = NULL, *dir;
    size_t len = 0;

    if (config_read_file(path, &text, &len, err) == -1)
        return -1;
    dir = dir_of(path);
    cfg = run(text, len, path, dir, flags, &d);
    free(dir);
    free(text);
    if (cfg == NULL)
        return fail_with(&d, path, err);
    config_diags_fini(&d);
    *out = cfg;
    return 0;
}

int
config_check(const char *path, char **report, struct error *err)
{
    struct config_diags d = {0};
    struct config *cfg;
    char *text = NULL, *dir;
    size_t len = 0;
    int count;

    if (config_read_file(path, &text, &len, err) == -1)
        return -1;
    dir = dir_of(path);
    cfg = run(text, len, path, dir, 0, &d);
    free(dir);
    free(text);
    config_free(cfg);
    if (d.count > (size_t)INT_MAX)
        d.count = (size_t)INT_MAX; /* cannot happen under CONFIG_MAX_BYTES */
    count = (int)d.count;
    *report = count > 0 ? config_diags_report(&d, path) : NULL;
    config_diags_fini(&d);
    return count;
}

static void
map_fini(struct config_map *m)
{
    for (size_t i = 0; i < m->entry_count; i++) {
        struct config_map_entry *e = &m->entries[i];

        free(e->target);
        free(e->path);
        free(e->jq);
        cJSON_Delete(e->const_value);
        cJSON_Delete(e->default_value);
        cJSON_Delete(e->values);
        cJSON_Delete(e->values_default);
    }
    free(m->entries);
    m->entries = NULL;
    m->entry_count = 0;
}

void
config_map_fini(struct config_map *m)
{
    map_fini(m);
}

static void
system_fini(struct config_system *s)
{
    struct config_signature *sig = &s->webhook.signature;

    free(s->name);
    free(s->base_url);
    free(s->webhook.path);
    free(s->webhook.delivery_id_header);
    free(sig->scheme);
    free(s->webhook.reply_header);
    free(sig->header);
    secret_fini(&sig->secret);
    secret_fini(&sig->secret_rotated);
    free(sig->prefix);
    free(sig->timestamp_header);
    free(sig->signed_template);
    free(sig->url);
    for (size_t i = 0; i < s->auth_header_count; i++) {
        free(s->auth_headers[i].name);
        secret_fini(&s->auth_headers[i].value);
    }
    free(s->auth_headers);
    free(s->cif);
    free(s->push.url);
    free(s->push.resource);
    free(s->errors.message_path);
    free(s->errors.in_ok_path);
    free(s->oauth2.token_url);
    free(s->oauth2.authorize_url);
    free(s->oauth2.client_id);
    free(s->oauth2.scope);
    secret_fini(&s->oauth2.client_secret);
    secret_fini(&s->oauth2.refresh_token);
    free(s->retry_stop_header_name);
    free(s->retry_stop_header_value);
    free(s->db_path);
    secret_fini(&s->dsn);
    free(s->rate_limit.limited_status);
}

static void
poll_fini(struct config_poll *p)
{
    free(p->list.method);
    free(p->list.path);
    free(p->each.method);
    free(p->each.path);
    free(p->items_path);
    free(p->cursor_param);
    free(p->cursor_field);
    free(p->cursor_format);
    free(p->token_path);
    free(p->resync_status);
    free(p->delta_next_path);
    free(p->delta_path);
    free(p->removed_path);
    free(p->events.method);
    free(p->events.path);
    free(p->event_object_path);
    free(p->event_type_path);
    free(p->event_deleted_suffix);
    free(p->search.method);
    free(p->search.path);
    cJSON_Delete(p->search_body);
    free(p->search_next_path);
    free(p->page_param);
    free(p->size_param);
    free(p->next_path);
    free(p->has_more_path);
    for (size_t i = 0; i < p->token_drop_count; i++)
        free(p->token_drop[i]);
    free(p->token_drop);
}

static void
collection_fini(struct config_collection *c)
{
    free(c->name);
    free(c->short_name);
    free(c->model);
    free(c->id_path);
    free(c->record_path);
    free(c->match_jq);
    free(c->deleted_jq);
    map_fini(&c->map_in);
    map_fini(&c->map_out);
    free(c->create.method);
    free(c->create.path);
    free(c->update.method);
    free(c->update.path);
    free(c->remove.method);
    free(c->remove.path);
    free(c->created_id_path);
    free(c->idempotency_header);
    free(c->idempotency_field);
    free(c->lookup.method);
    free(c->lookup.path);
    free(c->lookup_result_path);
    free(c->restore.method);
    free(c->restore.path);
    free(c->numbering.next.method);
    free(c->numbering.next.path);
    free(c->numbering.confirm.method);
    free(c->numbering.confirm.path);
    free(c->numbering.items_path);
    free(c->numbering.item_series_path);
    free(c->numbering.series_field);
    free(c->numbering.number_path);
    free(c->sql_table);
    free(c->sql_key);
    free(c->sql_soft_delete);
    free(c->sql_soft_delete_value);
    free(c->sql_query);
    free(c->caldav_calendar);
    cJSON_Delete(c->archive);
    cJSON_Delete(c->remove_body);
    cJSON_Delete(c->restore_body);
    free(c->updated_at_path);
    free(c->event_time_path);
    free(c->conflict_id_path);
    free(c->conflict_id_after);
    free(c->deleted_id_path);
    free(c->string_values_path);
    free(c->shape_events);
    poll_fini(&c->poll);
}

static void
sync_fini(struct config_sync *s)
{
    for (size_t j = 0; j < s->origin_count; j++)
        free(s->origins[j]);
    free(s->origins);
    free(s->collections);
    for (size_t j = 0; j < s->owner_count; j++) {
        for (size_t k = 0; k < s->owners[j].system_count; k++)
            free(s->owners[j].systems[k]);
        free(s->owners[j].systems);
        free(s->owners[j].field);
    }
    free(s->owners);
    free(s->prefer);
    for (size_t j = 0; j < s->match_count; j++) {
        free(s->match[j].field);
        free(s->match[j].country);
    }
    free(s->match);
    for (size_t j = 0; j < s->filter_count; j++)
        free(s->filters[j].jq);
    free(s->filters);
    free(s->name);
    free(s->model);
}

void
config_free(struct config *cfg)
{
    if (cfg != NULL) {
        secret_fini(&cfg->alerts.webhook);
        secret_fini(&cfg->alerts.smtp_password);
        free(cfg->alerts.smtp_url);
        free(cfg->alerts.mail_from);
        free(cfg->alerts.smtp_user);
        for (size_t i = 0; i < cfg->alerts.mail_to_count; i++)
            free(cfg->alerts.mail_to[i]);
        free(cfg->alerts.mail_to);
    }
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->system_count; i++)
        system_fini(&cfg->systems[i]);
    free(cfg->systems);
    for (size_t i = 0; i < cfg->model_count; i++) {
        for (size_t j = 0; j < cfg->models[i].field_count; j++) {
            free(cfg->models[i].fields[j].name);
            free(cfg->models[i].fields[j].ref_model);
        }
        free(cfg->models[i].fields);
        free(cfg->models[i].name);
    }
    free(cfg->models);
    for (size_t i = 0; i < cfg->collection_count; i++)
        collection_fini(&cfg->collections[i]);
    free(cfg->collections);
    config_automations_fini(cfg); /* before the syncs: it frees their automation fields */
    for (size_t i = 0; i < cfg->sync_count; i++)
        sync_fini(&cfg->syncs[i]);
    free(cfg->syncs);
    free(cfg->path);
    free(cfg->listen);
    free(cfg->store_url);
    free(cfg->log_level);
    free(cfg->log_format);
    config_admin_fini(&cfg->admin);
    free(cfg);
}

const struct config_system *
config_system_find(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->system_count; i++) {
        if (cfg->systems[i].name != NULL && strcmp(cfg->systems[i].name, name) == 0)
            return &cfg->systems[i];
    }
    return NULL;
}

const struct config_collection *
config_collection_find(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->collection_count; i++) {
        if (cfg->collections[i].name != NULL && strcmp(cfg->collections[i].name, name) == 0)
            return &cfg->collections[i];
    }
    return NULL;
}

const struct config_model *
config_model_find(const struct config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->model_count; i++) {
        if (cfg->models[i].name != NULL && strcmp(cfg->models[i].name, name) == 0)
            return &cfg->models[i];
    }
    return NULL;
}

const struct config_field *
config_model_field(const struct config_model *m, const char *name)
{
    for (size_t i = 0; i < m->field_count; i++) {
        if (m->fields[i].name != NULL && strcmp(m->fields[i].name, name) == 0)
            return &m->fields[i];
    }
    return NULL;
}
