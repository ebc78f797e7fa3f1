/* SPDX-License-Identifier: MIT */

/*
 * systems.X.collections.Y: the model a collection holds, its field maps
 * in and out, its calls (create, update, delete, restore, lookup), ids,
 * numbering, what a deletion does (on_delete, archive), on_conflict, the
 * tables of SQL systems, and the order in which the rest is filled in: the
 * poll (config_poll.c), then the named kind's defaults (config_stripe.c,
 * config_invoicing.c, config_hubspot.c, config_calendar.c) over whatever
 * the operator did not say.
 */

#include "config/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config/config_int.h"
#include "core/buf.h"
#include "core/xmalloc.h"

static const char *const soft_delete_keys[] = {"column", "value"};
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
                                              "lookup_missing",
                                              "restore",
                                              "numbering",
                                              "on_delete",
                                              "archive",
                                              "updated_at",
                                              "event_time",
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
static const char *const conflict_keys[] = {"status", "id", "id_after"};
static const char *const entry_keys[] = {"path", "jq", "const", "default", "values", "else"};
static const char *const http_methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
static const char *const sql_collection_keys[] = {"table", "key", "soft_delete", "query"};

/*
 * A map's source path is keys joined by dots (address.city, items.0.sku,
 * an optional leading dot as in jq). One with an empty key never finds a
 * value, and one with a pipe is a jq expression written where a path goes:
 * either would map nothing, silently, on every change.
 */
static void
check_source_path(struct config_ctx *c, const struct config_node *at, const char *path,
                  const char *p)
{
    const char *keys = p[0] == '.' ? p + 1 : p;

    if (keys[0] == '\0')
        return; /* "." is the whole record */
    if (strchr(p, '|') != NULL)
        CONFIG_PROBLEM(c, at,
                       "%s: \"%.80s\" is not a path; hint: a path is keys joined by dots "
                       "(address.city); for a jq expression write {jq: '%.80s'}",
                       path, p, p);
    else if (keys[0] == '.' || strstr(keys, "..") != NULL || keys[strlen(keys) - 1] == '.')
        CONFIG_PROBLEM(c, at,
                       "%s: \"%.80s\" has an empty key between dots; hint: a path is keys "
                       "joined by dots (address.city)",
                       path, p);
}

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
        if (e->path != NULL && e->path[0] != '\0')
            check_source_path(c, path_n, path, e->path);
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
        if (e->path[0] != '\0')
            check_source_path(c, v, path, e->path);
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

void
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

/* A named kind's call, unless the operator gave one: path is taken (freed if unused). */
void
config_set_endpoint(struct config_endpoint *ep, const char *method, char *path)
{
    if (ep->method != NULL) {
        free(path);
        return;
    }
    ep->method = xstrdup(method);
    ep->path = path;
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
    /* Without updated_at, the event's time is the state's time. */
    config_opt_str(c, v, path, "event_time", &col->event_time_path);
    if (col->event_time_path != NULL && col->updated_at_path == NULL)
        col->updated_at_path = xstrdup(CONFIG_EVENT_TIME_FIELD);
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
    static const char *const http_only[] = {
        "create", "update",        "delete",         "created_id",         "created_id_from",
        "lookup", "lookup_result", "lookup_missing", "idempotency_header", "idempotency_field",
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
 * model, id, record, match, deleted_when and the field maps: what a
 * collection holds and how its records are found in a webhook.
 */
static void
parse_records(struct config_ctx *c, const struct config_node *v, const char *path,
              struct config_collection *col)
{
    const struct config_node *model_n = config_node_get(v, "model"), *m;
    const struct config_model *model = NULL;
    char *p;

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
}

/* The keys only a caldav or a SQL system's collection takes: read there, refused elsewhere. */
static void
parse_kind_keys(struct config_ctx *c, const struct config_node *v, const char *path,
                struct config_collection *col)
{
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
}

/* The calls that write copies, and what goes with them: ids, idempotency, lookup, numbering. */
static void
parse_calls(struct config_ctx *c, const struct config_node *v, const char *path,
            struct config_collection *col)
{
    const struct config_node *m;

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
    if (config_node_get(v, "lookup_missing") != NULL) {
        int64_t status = 404;

        config_opt_int(c, v, path, "lookup_missing", (struct config_range){400, 499}, &status);
        col->lookup_missing_status = (int)status;
    }
    if ((m = config_node_get(v, "numbering")) != NULL) {
        char *p = config_join(path, "numbering");

        parse_numbering(c, m, p, &col->numbering);
        free(p);
    }
}

/*
 * poll at m (config_poll.c), told what kind of system reads it; a SQL
 * table with updated_at is read from a watermark of it.
 */
static void
parse_collection_poll(struct config_ctx *c, const struct config_node *v,
                      const struct config_node *m, const char *path, struct config_collection *col)
{
    char *p = config_join(path, "poll");

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
        CONFIG_PROBLEM(c, config_node_key(v, "poll"),
                       "%s: a poll reads records in through map_in, and this collection has none; "
                       "hint: add map_in, or remove poll",
                       p);
    free(p);
}

/* body and string_values (how writes are encoded), hint and deleted_id (what a webhook means). */
static void
parse_body_and_hint(struct config_ctx *c, const struct config_node *v, const char *path,
                    struct config_collection *col)
{
    const struct config_node *m;

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
    if (config_node_get(v, "deleted_id") != NULL) {
        config_opt_str(c, v, path, "deleted_id", &col->deleted_id_path);
        if (config_node_get(v, "hint") == NULL || config_node_get(v, "deleted_when") == NULL)
            CONFIG_PROBLEM(
                c, config_node_key(v, "deleted_id"),
                "%s.deleted_id: it names the copy a deletion event of a hint is about; hint: "
                "it goes with hint: poll and deleted_when",
                path);
    }
}

/*
 * One collection, in an order that matters: on_delete's default and needs
 * depend on the calls, and a hint on the poll; the named kind's defaults
 * come after all of it (config_parse_collections()).
 */
static void
parse_collection(struct config_ctx *c, const struct config_node *v, const char *path,
                 struct config_collection *col)
{
    const struct config_node *m;

    if (!config_want_map(c, v, path))
        return;
    config_check_keys(c, v, path, collection_keys, ARRAY_COUNT(collection_keys));
    parse_records(c, v, path, col);
    parse_kind_keys(c, v, path, col);
    parse_calls(c, v, path, col);
    parse_on_delete(c, v, path, col);
    if ((m = config_node_get(v, "on_conflict")) != NULL) {
        char *p = config_join(path, "on_conflict");

        parse_on_conflict(c, m, p, col);
        free(p);
    }
    if ((m = config_node_get(v, "poll")) != NULL)
        parse_collection_poll(c, v, m, path, col);
    parse_body_and_hint(c, v, path, col);
}

void
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
