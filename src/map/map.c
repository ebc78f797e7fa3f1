/* SPDX-License-Identifier: MIT */

/*
 * Field maps (map.h): compile a config_map once, apply it to many records.
 *
 * Each entry is evaluated in the order map.h gives: source (path, jq or
 * const) -> default when null or missing -> value map -> coercion (MAP_IN).
 * Path sources are read with value_path_get(), never through jq: a native
 * copy costs a fraction of a jq run, and most entries are plain copies.
 * docs/internals/mapping.md has the whole picture.
 */

#include "map/map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "core/xmalloc.h"
#include "map/map_int.h"
#include "model/value.h"

struct map_entry {
    char *target; /* MAP_IN: a model field; MAP_OUT: a dotted output path */
    enum config_map_source source;
    char *path;            /* CONFIG_MAP_PATH */
    struct map_jq *jq;     /* CONFIG_MAP_JQ */
    cJSON *const_value;    /* CONFIG_MAP_CONST */
    cJSON *default_value;  /* NULL or a copy */
    cJSON *values;         /* NULL or a copy */
    cJSON *values_default; /* NULL or a copy */
    enum config_type type; /* MAP_IN: the target field's type; MAP_OUT: the source
                              model field's (0 when not a plain field) */
    int is_decimal;        /* MAP_OUT: the source is a decimal model field */
};

struct map {
    enum map_direction dir;
    struct map_entry *entries;
    size_t entry_count;
};

static const struct config_field *
model_field(const struct config_model *model, const char *name)
{
    if (model == NULL)
        return NULL;
    for (size_t i = 0; i < model->field_count; i++) {
        if (strcmp(model->fields[i].name, name) == 0)
            return &model->fields[i];
    }
    return NULL;
}

/* Whether a dotted target path is well formed: no empty segment. */
static int
target_ok(const char *t)
{
    size_t len = strlen(t);

    return len > 0 && t[0] != '.' && t[len - 1] != '.' && strstr(t, "..") == NULL;
}

/* Whether output path a is b or lies inside it ("a" and "a.b"). */
static int
target_nests(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t n = la < lb ? la : lb;

    return strncmp(a, b, n) == 0 && la != lb && (la < lb ? b[n] : a[n]) == '.';
}

static int
compile_entry(const struct config_map_entry *spec, const struct config_model *model,
              enum map_direction dir, struct map_entry *e, struct error *err)
{
    const char *target = spec->target ? spec->target : "";

    e->target = xstrdup(target);
    e->source = spec->source;
    if (dir == MAP_IN) {
        const struct config_field *f = model_field(model, target);

        if (f == NULL)
            return error_set(err, ERROR_INVALID, "map entry \"%s\": model \"%s\" has no such field",
                             target, model && model->name ? model->name : "?");
        e->type = f->type;
    } else if (!target_ok(target)) {
        return error_set(err, ERROR_INVALID, "map entry \"%s\": not a dotted output path", target);
    }
    switch (spec->source) {
    case CONFIG_MAP_PATH: {
        const struct config_field *f;
        const char *p;

        if (spec->path == NULL)
            return error_set(err, ERROR_INVALID, "map entry \"%s\": no path", target);
        e->path = xstrdup(spec->path);
        p = spec->path[0] == '.' ? spec->path + 1 : spec->path;
        f = dir == MAP_OUT ? model_field(model, p) : NULL;
        e->is_decimal = f != NULL && f->type == CONFIG_TYPE_DECIMAL;
        if (f != NULL)
            e->type = f->type;
        break;
    }
    case CONFIG_MAP_JQ:
        if (spec->jq == NULL)
            return error_set(err, ERROR_INVALID, "map entry \"%s\": no jq expression", target);
        if (map_jq_new(spec->jq, &e->jq, err) != 0)
            return error_wrap(err, "map entry \"%s\"", target);
        break;
    case CONFIG_MAP_CONST:
        e->const_value =
            spec->const_value ? cJSON_Duplicate(spec->const_value, 1) : cJSON_CreateNull();
        break;
    default:
        return error_set(err, ERROR_INVALID, "map entry \"%s\": no source (path, jq or const)",
                         target);
    }
    if (spec->default_value != NULL)
        e->default_value = cJSON_Duplicate(spec->default_value, 1);
    if (spec->values != NULL) {
        if (!cJSON_IsObject(spec->values))
            return error_set(err, ERROR_INVALID, "map entry \"%s\": values is not a map", target);
        e->values = cJSON_Duplicate(spec->values, 1);
    }
    if (spec->values_default != NULL)
        e->values_default = cJSON_Duplicate(spec->values_default, 1);
    return 0;
}

int
map_new(const struct config_map *spec, const struct config_model *model, enum map_direction dir,
        struct map **out, struct error *err)
{
    struct map *m;
    size_t count = spec ? spec->entry_count : 0;

    if (dir == MAP_IN && model == NULL && count > 0)
        return error_set(err, ERROR_INVALID, "an inbound map needs a model");
    m = xcalloc(1, sizeof(*m));
    m->dir = dir;
    m->entries = xcalloc(count ? count : 1, sizeof(*m->entries));
    for (size_t i = 0; i < count; i++) {
        m->entry_count = i + 1;
        if (compile_entry(&spec->entries[i], model, dir, &m->entries[i], err) != 0)
            goto fail;
        for (size_t j = 0; dir == MAP_OUT && j < i; j++) {
            if (target_nests(m->entries[j].target, m->entries[i].target)) {
                (void)error_set(err, ERROR_INVALID,
                                "map entries \"%s\" and \"%s\": one is inside the other",
                                m->entries[j].target, m->entries[i].target);
                goto fail;
            }
        }
    }
    *out = m;
    return 0;
fail:
    map_free(m);
    return -1;
}

void
map_free(struct map *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->entry_count; i++) {
        struct map_entry *e = &m->entries[i];

        free(e->target);
        free(e->path);
        map_jq_free(e->jq);
        cJSON_Delete(e->const_value);
        cJSON_Delete(e->default_value);
        cJSON_Delete(e->values);
        cJSON_Delete(e->values_default);
    }
    free(m->entries);
    free(m);
}

/* The key a value is looked up by in a value map; 0 when it has none. */
static int
lookup_key(const cJSON *v, char *key, size_t key_len)
{
    cJSON *text = NULL;
    struct error ignored = {0};

    if (cJSON_IsString(v)) {
        (void)snprintf(key, key_len, "%s", v->valuestring);
        return strlen(v->valuestring) < key_len;
    }
    if (cJSON_IsNull(v)) {
        (void)snprintf(key, key_len, "null");
        return 1;
    }
    if (!cJSON_IsBool(v) && !cJSON_IsNumber(v) && !cJSON_IsRaw(v))
        return 0;
    if (value_coerce(CONFIG_TYPE_STRING, v, &text, &ignored) != 0)
        return 0;
    (void)snprintf(key, key_len, "%s", text->valuestring);
    cJSON_Delete(text);
    return 1;
}

/* Put item at the dotted path target of out, creating objects on the way. */
static void
set_path(cJSON *out, const char *target, cJSON *item)
{
    cJSON *cur = out;
    const char *seg = target;

    for (;;) {
        const char *dot = strchr(seg, '.');
        char *name = dot ? xstrndup(seg, (size_t)(dot - seg)) : xstrdup(seg);
        cJSON *next = cJSON_GetObjectItemCaseSensitive(cur, name);

        if (dot == NULL) {
            if (next != NULL)
                cJSON_ReplaceItemViaPointer(cur, next, item);
            else
                cJSON_AddItemToObject(cur, name, item);
            free(name);
            return;
        }
        if (next == NULL || !cJSON_IsObject(next)) {
            /* map_new() rejects targets nested in each other, so any value
             * here is an object made by an earlier entry. */
            cJSON *obj = cJSON_CreateObject();

            if (NEVER(next != NULL))
                cJSON_ReplaceItemViaPointer(cur, next, obj);
            else
                cJSON_AddItemToObject(cur, name, obj);
            next = obj;
        }
        free(name);
        cur = next;
        seg = dot + 1;
    }
}

/* Evaluate one entry. *value is set to the value (owned by *owned when that
 * is not NULL, else borrowed) or NULL when the target is left out. */
/* The record as jq sees it, converted on first use and shared by every jq
 * entry of one map_apply(). */
struct jq_input {
    const cJSON *record;
    jv value;
    int ready;
};

static int
entry_value(const struct map_entry *e, struct jq_input *in, const cJSON **value, cJSON **owned,
            struct error *err)
{
    const cJSON *input = in->record;
    const cJSON *v = NULL;
    char key[512];

    *owned = NULL;
    switch (e->source) {
    case CONFIG_MAP_PATH:
        v = value_path_get(input, e->path);
        break;
    case CONFIG_MAP_JQ:
        if (!in->ready) {
            if (map_jq_input(input, &in->value, err) != 0)
                return -1;
            in->ready = 1;
        }
        if (map_jq_eval_jv(e->jq, jv_copy(in->value), owned, err) != 0)
            return -1;
        v = *owned;
        break;
    case CONFIG_MAP_CONST:
        v = e->const_value;
        break;
    }
    if ((v == NULL || cJSON_IsNull(v)) && e->default_value != NULL)
        v = e->default_value;
    if (v != NULL && e->values != NULL) {
        const cJSON *hit = NULL;

        if (lookup_key(v, key, sizeof(key)))
            hit = cJSON_GetObjectItemCaseSensitive(e->values, key);
        if (hit != NULL)
            v = hit;
        else if (e->values_default != NULL)
            v = e->values_default;
    }
    *value = v;
    return 0;
}

int
map_apply(const struct map *m, const cJSON *input, cJSON **out, struct error *err)
{
    struct jq_input jin = {NULL, {0}, 0};
    const struct map_entry *failed = NULL;
    cJSON *result;

    if (!cJSON_IsObject(input))
        return error_set(err, ERROR_MAPPING, "the record is not a JSON object");
    result = cJSON_CreateObject();
    jin.record = input;
    for (size_t i = 0; i < m->entry_count; i++) {
        const struct map_entry *e = failed = &m->entries[i];
        const cJSON *v;
        cJSON *owned, *item = NULL;

        if (entry_value(e, &jin, &v, &owned, err) != 0)
            goto fail;
        if (v == NULL) {
            cJSON_Delete(owned);
            continue; /* missing: a thin payload changes nothing it does not name */
        }
        if (m->dir == MAP_IN) {
            int rc = value_coerce(e->type, v, &item, err);

            cJSON_Delete(owned);
            if (rc != 0)
                goto fail;
            if (cJSON_GetObjectItemCaseSensitive(result, e->target) != NULL)
                cJSON_ReplaceItemInObjectCaseSensitive(result, e->target, item);
            else
                cJSON_AddItemToObject(result, e->target, item);
            continue;
        }
        if (e->is_decimal && cJSON_IsString(v)) {
            char exact[512];

            /* Exact on the wire: "12.50" becomes the JSON number 12.5. */
            if (value_decimal_canonical(v->valuestring, exact, sizeof(exact)) == 0)
                item = cJSON_CreateRaw(exact);
        }
        if (item == NULL)
            item = owned && v == owned ? owned : cJSON_Duplicate(v, 1);
        if (item != owned)
            cJSON_Delete(owned);
        set_path(result, e->target, item);
    }
    if (jin.ready)
        jv_free(jin.value);
    *out = result;
    return 0;
fail:
    if (jin.ready)
        jv_free(jin.value);
    cJSON_Delete(result);
    return error_wrap(err, "field \"%s\"", failed->target);
}

/* Whether a value is a number written exactly (raw) or a JSON number. */
static int
is_number(const cJSON *v)
{
    return cJSON_IsNumber(v) || cJSON_IsRaw(v);
}

/* value_equal(), and a number equals a numeric string of the same decimal
 * value: a system may echo 12.5 back as "12.50", or take "12.5" for 12.5. */
static int
same_value(const cJSON *a, const cJSON *b)
{
    cJSON *da = NULL, *db = NULL;
    struct error ignored = {0};
    int same;

    if (value_equal(a, b))
        return 1;
    if (!(is_number(a) || is_number(b)) || !(is_number(a) || cJSON_IsString(a)) ||
        !(is_number(b) || cJSON_IsString(b)))
        return 0;
    if (value_coerce(CONFIG_TYPE_DECIMAL, a, &da, &ignored) != 0 ||
        value_coerce(CONFIG_TYPE_DECIMAL, b, &db, &ignored) != 0) {
        cJSON_Delete(da);
        return 0;
    }
    same = strcmp(da->valuestring, db->valuestring) == 0;
    cJSON_Delete(da);
    cJSON_Delete(db);
    return same;
}

/* Whether a value written from a model field of type t is the one the
 * system holds in its own form: a timestamp in its zone or with its
 * precision, a boolean, a count or a date as text. Both are read as the
 * field's type, as map_in would read the system's. */
static int
same_as_type(enum config_type t, const cJSON *d, const cJSON *b)
{
    cJSON *cd = NULL, *cb = NULL;
    struct error ignored = {0};
    int same;

    if (t != CONFIG_TYPE_TIMESTAMP && t != CONFIG_TYPE_DATE && t != CONFIG_TYPE_BOOLEAN &&
        t != CONFIG_TYPE_INTEGER)
        return 0;
    same = value_coerce(t, d, &cd, &ignored) == 0 && value_coerce(t, b, &cb, &ignored) == 0 &&
           !cJSON_IsNull(cd) && value_equal(cd, cb);
    cJSON_Delete(cd);
    cJSON_Delete(cb);
    return same;
}

int
map_out_differs(const struct map *m, const cJSON *desired, const cJSON *base)
{
    for (size_t i = 0; i < m->entry_count; i++) {
        const struct map_entry *e = &m->entries[i];
        const cJSON *d = value_path_get(desired, e->target);
        const cJSON *b = base ? value_path_get(base, e->target) : NULL;

        if (d == NULL)
            continue; /* not written this time */
        if (b == NULL)
            return 1;
        if (!same_value(d, b) && (e->values != NULL || !same_as_type(e->type, d, b)))
            return 1;
    }
    return 0;
}
