/* SPDX-License-Identifier: MIT */

/*
 * Operators' actions (admin.h), for the CLI and the admin API alike. Each
 * runs in one transaction on the caller's store handle: the change itself
 * (a job made pending, an entry closed, a correction journaled from
 * ENGINE_OPERATOR_SYSTEM for the daemon's writer to merge, a pause row)
 * and its row in the audit log commit together or not at all.
 *
 * These were the bodies of cli_retry.c, cli_skip.c, cli_edit.c,
 * cli_pause.c, cli_replay.c and cli_twoway.c; the commands now parse
 * their arguments, call these and print the result.
 */

#include "engine/admin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include "engine/engine.h"
#include "model/value.h"
#include "store/store.h"

/* Add the audit row of an action inside the open transaction. target and
 * detail may be NULL; detail is borrowed. */
static int
audit(struct store *st, const struct admin_actor *who, const char *action, const char *target,
      const cJSON *detail, struct error *err)
{
    struct store_audit a = {
        .at_ms = clock_now_ms(),
        .who = xstrdup(who->name),
        .via = xstrdup(who->via),
        .action = xstrdup(action),
        .target = target ? xstrdup(target) : NULL,
        .detail = detail ? cJSON_PrintUnformatted(detail) : NULL,
    };
    int64_t id;
    int rc = store_audit_add(st, &a, &id, err);

    store_audit_fini(&a);
    return rc;
}

/* End the transaction of an action that returned rc: commit when it did
 * something (1), roll back otherwise. Returns rc, or -1 when the commit fails. */
static int
settle(struct store *st, int rc, struct error *err)
{
    if (rc != 1) {
        store_rollback(st);
        return rc;
    }
    return store_commit(st, err) == -1 ? -1 : 1;
}

/* Journal body (an operator's change; "by" is added) inside the open
 * transaction, for the daemon's writer to merge. */
static int
journal_operator(struct store *st, const struct admin_actor *who, cJSON *body, struct error *err)
{
    char *text;
    int64_t seq;
    int rc;

    cJSON_AddStringToObject(body, "by", who->name);
    text = value_canonical_text(body);
    rc = store_journal_add(st, ENGINE_OPERATOR_SYSTEM, NULL, clock_now_ms(), text, strlen(text),
                           &seq, err);
    free(text);
    if (rc == 0)
        return error_set(err, ERROR_INTERNAL, "an operator's change was taken for a repeat");
    return rc == 1 ? 0 : -1;
}

static void
result(struct admin_result *res, int64_t count, int64_t record_id)
{
    res->count = count;
    res->record_id = record_id;
}

int
admin_parse_time(const char *text, int64_t now_ms, int64_t *out_ms)
{
    struct tm tm;
    char *end;
    long long n = strtoll(text, &end, 10);

    if (end != text && n >= 0 && end[0] != '\0' && (end[1] == '\0' || strcmp(end, "ms") == 0)) {
        int64_t unit = 0;

        switch (end[0]) {
        case 'm':
            unit = end[1] == 's' ? 1 : 60000;
            break;
        case 's':
            unit = 1000;
            break;
        case 'h':
            unit = 3600000;
            break;
        case 'd':
            unit = 86400000;
            break;
        default:
            return -1;
        }
        if (n > INT64_MAX / unit / 2)
            return -1;
        *out_ms = now_ms - (int64_t)n * unit;
        return 0;
    }
    memset(&tm, 0, sizeof(tm));
    end = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
    if (end == NULL)
        end = strptime(text, "%Y-%m-%d", &tm);
    if (end == NULL || (*end != '\0' && strcmp(end, "Z") != 0))
        return -1;
    *out_ms = (int64_t)timegm(&tm) * 1000;
    return 0;
}

/* ---- retry, skip ---- */

int
admin_retry(struct store *st, const struct admin_actor *who, int64_t inbox_id,
            struct admin_result *res, struct error *err)
{
    char target[40];
    int rc;

    memset(res, 0, sizeof(*res));
    if (store_begin(st, err) == -1)
        return -1;
    rc = store_inbox_retry(st, inbox_id, clock_now_ms(), err);
    (void)snprintf(target, sizeof(target), "inbox %" PRId64, inbox_id);
    if (rc == 1 && audit(st, who, "retry", target, NULL, err) == -1)
        rc = -1;
    rc = settle(st, rc, err);
    if (rc == 1) {
        result(res, 1, 0);
        (void)snprintf(res->message, sizeof(res->message), "entry %" PRId64 " queued again",
                       inbox_id);
    }
    return rc;
}

static int
matches(const struct admin_filter *f, const struct inbox_entry *e)
{
    if (f->system && (e->system == NULL || strcmp(f->system, e->system) != 0))
        return 0;
    if (f->error && (e->reason == NULL || strstr(e->reason, f->error) == NULL))
        return 0;
    if (f->kind && strcmp(f->kind, inbox_kind_name(e->kind)) != 0)
        return 0;
    return e->created_at_ms >= f->since_ms && (f->until_ms == 0 || e->created_at_ms <= f->until_ms);
}

static cJSON *
filter_json(const struct admin_filter *f)
{
    cJSON *o = cJSON_CreateObject();
    char ts[32];

    if (f->is_all)
        cJSON_AddBoolToObject(o, "all", 1);
    if (f->system)
        cJSON_AddStringToObject(o, "system", f->system);
    if (f->error)
        cJSON_AddStringToObject(o, "error", f->error);
    if (f->kind)
        cJSON_AddStringToObject(o, "kind", f->kind);
    if (f->since_ms > 0)
        cJSON_AddStringToObject(o, "since", clock_format_ms(f->since_ms, ts, sizeof(ts)));
    if (f->until_ms > 0)
        cJSON_AddStringToObject(o, "until", clock_format_ms(f->until_ms, ts, sizeof(ts)));
    return o;
}

int
admin_retry_matching(struct store *st, const struct admin_actor *who, const struct admin_filter *f,
                     struct admin_result *res, struct error *err)
{
    struct inbox_entry *list = NULL;
    int64_t done = 0, now = clock_now_ms();
    int n, rc = 1;
    cJSON *detail;

    memset(res, 0, sizeof(*res));
    if (!f->is_all && !f->system && !f->error && !f->kind && f->since_ms == 0 && f->until_ms == 0)
        return error_set(err, ERROR_INVALID,
                         "name a filter (system, error, kind, since, until), or all");
    if (store_begin(st, err) == -1)
        return -1;
    n = store_inbox_list(st, "open", &list, err);
    for (int i = 0; i < n && rc == 1; i++) {
        if (!matches(f, &list[i]))
            continue;
        rc = store_inbox_retry(st, list[i].id, now, err);
        if (rc == -1)
            error_wrap(err, "retry %" PRId64, list[i].id);
        else
            done += rc;
        rc = rc == -1 ? -1 : 1;
    }
    if (n == -1)
        rc = -1;
    store_inbox_free(list, n > 0 ? n : 0);
    detail = filter_json(f);
    cJSON_AddNumberToObject(detail, "count", (double)done);
    if (rc == 1 && done > 0 && audit(st, who, "retry", "inbox", detail, err) == -1)
        rc = -1;
    cJSON_Delete(detail);
    if (settle(st, rc, err) == -1)
        return -1;
    result(res, done, 0);
    (void)snprintf(res->message, sizeof(res->message), "%" PRId64 " entr%s queued again", done,
                   done == 1 ? "y" : "ies");
    return 0;
}

/*
 * A held delete skipped: the record stays, but its copy was deleted in its
 * system all the same. The link forgets that copy's id, as for a copy
 * concord deleted, so a later version makes the copy anew there instead of
 * writing to an id that no longer exists. Returns 0 or -1.
 */
static int
skip_held(struct store *st, int64_t inbox_id, int64_t now, struct error *err)
{
    struct inbox_entry e = {0};
    struct link l = {0};
    cJSON *detail = NULL;
    const cJSON *ext;
    int rc = store_inbox_get_full(st, inbox_id, &e, err);

    if (rc != 1 || e.kind != INBOX_HELD || strcmp(e.state, "open") != 0 || e.collection == NULL)
        goto out;
    detail = e.detail != NULL ? cJSON_Parse(e.detail) : NULL;
    ext = cJSON_GetObjectItemCaseSensitive(detail, "ext_id");
    rc = store_link_by_record(st, e.collection, e.record_id, &l, err);
    if (rc == 1 && cJSON_IsString(ext) && l.ext_id != NULL &&
        strcmp(l.ext_id, ext->valuestring) == 0)
        rc = store_link_gone(st, l.id, e.record_id, now, "the copy was deleted in its system", err);
out:
    cJSON_Delete(detail);
    link_fini(&l);
    inbox_entry_fini(&e);
    return rc == -1 ? -1 : 0;
}

int
admin_skip(struct store *st, const struct admin_actor *who, int64_t inbox_id, const char *reason,
           struct admin_result *res, struct error *err)
{
    char target[40];
    cJSON *detail = NULL;
    int64_t now = clock_now_ms();
    int rc;

    memset(res, 0, sizeof(*res));
    if (store_begin(st, err) == -1)
        return -1;
    rc = skip_held(st, inbox_id, now, err) == -1
             ? -1
             : store_inbox_resolve(st, inbox_id, "skipped", who->name, reason, now, err);
    (void)snprintf(target, sizeof(target), "inbox %" PRId64, inbox_id);
    if (reason != NULL) {
        detail = cJSON_CreateObject();
        cJSON_AddStringToObject(detail, "reason", reason);
    }
    if (rc == 1 && audit(st, who, "skip", target, detail, err) == -1)
        rc = -1;
    cJSON_Delete(detail);
    rc = settle(st, rc, err);
    if (rc == 1) {
        result(res, 1, 0);
        (void)snprintf(res->message, sizeof(res->message), "entry %" PRId64 " skipped by %s",
                       inbox_id, who->name);
    }
    return rc;
}

/* ---- edit ---- */

/* The fields of edited that differ from old, checked against the model;
 * NULL (err says why) when one is not the model's or not of its type. */
static cJSON *
fields_to_set(const struct config_model *model, const cJSON *old, const cJSON *edited,
              struct error *err)
{
    cJSON *fields = cJSON_CreateObject();
    const cJSON *f;

    cJSON_ArrayForEach(f, edited)
    {
        const struct config_field *fd = config_model_field(model, f->string);
        struct error why = {0};
        cJSON *v = NULL;

        if (fd == NULL) {
            error_set(err, ERROR_INVALID, "%s has no field \"%s\"", model->name, f->string);
            goto fail;
        }
        if (value_coerce(fd->type, f, &v, &why) == -1) {
            error_set(err, ERROR_INVALID, "field \"%s\": %s", f->string, why.msg);
            goto fail;
        }
        if (!value_equal(v, cJSON_GetObjectItemCaseSensitive(old, f->string)))
            cJSON_AddItemToObject(fields, f->string, v);
        else
            cJSON_Delete(v);
    }
    return fields;
fail:
    cJSON_Delete(fields);
    return NULL;
}

/* The record an edit is about: 1 with *id, 0 when there is none. */
static int
edit_target(struct store *st, const struct admin_edit *ed, int64_t *id, struct error *err)
{
    struct inbox_entry e = {0};
    int found;

    if ((ed->inbox_id > 0) == (ed->record_id > 0))
        return error_set(err, ERROR_INVALID, "name an inbox entry or a record, not both");
    if (ed->record_id > 0) {
        *id = ed->record_id;
        return 1;
    }
    found = store_inbox_get(st, ed->inbox_id, &e, err);
    if (found != 1)
        return found;
    if (strcmp(e.state, "open") != 0)
        error_set(err, ERROR_INVALID, "inbox entry %" PRId64 " is %s, not open", e.id, e.state);
    else if (e.record_id <= 0)
        error_set(err, ERROR_INVALID, "inbox entry %" PRId64 " has no record to edit", e.id);
    *id = e.record_id;
    inbox_entry_fini(&e);
    return err->kind != ERROR_NONE ? -1 : 1;
}

/* Journal the correction and close the entry, with the audit row. */
static int
journal_edit(struct store *st, const struct admin_actor *who, const struct admin_edit *ed,
             int64_t record_id, cJSON *fields, struct error *err)
{
    cJSON *body = cJSON_CreateObject(), *detail = cJSON_CreateObject();
    char target[40];
    int rc = 1;

    cJSON_AddNumberToObject(body, "record", (double)record_id);
    cJSON_AddItemReferenceToObject(body, "fields", fields);
    cJSON_AddItemReferenceToObject(detail, "fields", fields);
    if (ed->inbox_id > 0)
        cJSON_AddNumberToObject(detail, "inbox", (double)ed->inbox_id);
    (void)snprintf(target, sizeof(target), "record %" PRId64, record_id);
    if (store_begin(st, err) == -1) {
        rc = -1;
    } else if (journal_operator(st, who, body, err) == -1) {
        rc = -1;
    } else if (ed->inbox_id > 0 && store_inbox_resolve(st, ed->inbox_id, "edited", who->name, NULL,
                                                       clock_now_ms(), err) != 1) {
        if (err->kind == ERROR_NONE)
            error_set(err, ERROR_INVALID, "inbox entry %" PRId64 " is not open", ed->inbox_id);
        rc = -1;
    } else if (audit(st, who, "edit", target, detail, err) == -1) {
        rc = -1;
    }
    cJSON_Delete(body);
    cJSON_Delete(detail);
    return settle(st, rc, err);
}

int
admin_edit(struct store *st, const struct config *cfg, const struct admin_actor *who,
           const struct admin_edit *ed, struct admin_result *res, struct error *err)
{
    const struct config_model *model;
    struct record rec = {0};
    cJSON *old = NULL, *fields = NULL;
    int64_t id = 0;
    int rc, n;

    memset(res, 0, sizeof(*res));
    if (!cJSON_IsObject(ed->fields))
        return error_set(err, ERROR_INVALID, "the edit must be a JSON object of fields");
    rc = edit_target(st, ed, &id, err);
    if (rc == 1)
        rc = store_record_get(st, id, &rec, err);
    if (rc != 1)
        return rc;
    model = config_model_find(cfg, rec.model);
    if (model == NULL) {
        rc = error_set(err, ERROR_INVALID, "record %" PRId64 "'s model %s is not in the config", id,
                       rec.model);
        goto out;
    }
    old = cJSON_Parse(rec.state);
    fields = fields_to_set(model, old, ed->fields, err);
    if (fields == NULL) {
        rc = -1;
        goto out;
    }
    n = cJSON_GetArraySize(fields);
    result(res, n, id);
    if (n == 0)
        (void)snprintf(res->message, sizeof(res->message), "record %" PRId64 ": nothing changed",
                       id);
    else if ((rc = journal_edit(st, who, ed, id, fields, err)) == 1)
        (void)snprintf(res->message, sizeof(res->message),
                       "record %" PRId64 ": %d field%s changed by %s; the daemon makes the new "
                       "version and delivers it",
                       id, n, n == 1 ? "" : "s", who->name);
out:
    cJSON_Delete(old);
    cJSON_Delete(fields);
    record_fini(&rec);
    return rc;
}

/* ---- resolve ---- */

/* The value a side of the conflict proposes, when system names it. */
static const cJSON *
side_of(const cJSON *detail, const char *system)
{
    static const char *const sides[] = {"ours", "theirs"};

    for (size_t i = 0; i < 2; i++) {
        const cJSON *side = cJSON_GetObjectItemCaseSensitive(detail, sides[i]);
        const cJSON *sys = cJSON_GetObjectItemCaseSensitive(side, "system");
        const cJSON *src = cJSON_GetObjectItemCaseSensitive(side, "source");

        if ((cJSON_IsString(sys) && strcmp(sys->valuestring, system) == 0) ||
            (cJSON_IsString(src) && strcmp(src->valuestring, system) == 0))
            return cJSON_GetObjectItemCaseSensitive(side, "value");
    }
    return NULL;
}

static cJSON *
resolution_json(const struct admin_resolution *how)
{
    cJSON *o = cJSON_CreateObject();

    if (how->take)
        cJSON_AddStringToObject(o, "take", how->take);
    if (how->value)
        cJSON_AddItemToObject(o, "value", cJSON_Duplicate(how->value, 1));
    if (how->record_id)
        cJSON_AddNumberToObject(o, "record", (double)how->record_id);
    if (how->is_new)
        cJSON_AddBoolToObject(o, "new", 1);
    return o;
}

/* The record an ambiguous match's copy joins, inside the transaction: an
 * existing live one of the model, or a new empty one. */
static int
match_record(struct store *st, const struct config_collection *cc, int64_t *record_id,
             struct error *err)
{
    struct record rec = {0};
    struct link l = {0};
    int has;

    if (*record_id == 0)
        return store_record_add(st, cc->model, "{}", "operator", 0, clock_now_ms(), record_id, err);
    has = store_record_get(st, *record_id, &rec, err);
    if (has == 1 && (rec.is_deleted || strcmp(rec.model, cc->model) != 0))
        has = 0;
    record_fini(&rec);
    if (has != 1)
        return has == -1 ? -1
                         : error_set(err, ERROR_INVALID, "no live %s record %" PRId64, cc->model,
                                     *record_id);
    has = store_link_by_record(st, cc->name, *record_id, &l, err);
    if (has == 1 && l.ext_id != NULL)
        error_set(err, ERROR_INVALID, "record %" PRId64 " already has copy %s in %s", *record_id,
                  l.ext_id, cc->name);
    /* Its create there may have made a copy already: linking this one
     * would leave one of the two without a record. */
    else if (has == 1 && (has = store_link_create_open(st, l.id, err)) == 1)
        error_set(err, ERROR_INVALID,
                  "record %" PRId64 "'s create in %s is under way, or its outcome unknown: "
                  "resolve this once it is settled",
                  *record_id, cc->name);
    link_fini(&l);
    return err->kind != ERROR_NONE ? -1 : 0;
}

/* The later news of an ambiguous match's copy, which waited with it
 * (merge.c, match_news()), is read again after its first change. */
static int
retry_later(struct store *st, const cJSON *detail, struct error *err)
{
    const cJSON *seq;

    cJSON_ArrayForEach(seq, cJSON_GetObjectItemCaseSensitive(detail, "later"))
    {
        if (cJSON_IsNumber(seq) &&
            store_journal_set_state(st, (int64_t)seq->valuedouble, CHANGE_NEW, NULL, err) == -1)
            return -1;
    }
    return 0;
}

/* Link an ambiguous match's copy to a record (record_id 0: a new, empty
 * one), and process its changes again through that link. */
static int
resolve_match(struct store *st, const struct config *cfg, const struct admin_actor *who,
              const struct inbox_entry *e, const struct admin_resolution *how,
              struct admin_result *res, struct error *err)
{
    const struct config_collection *cc =
        e->collection ? config_collection_find(cfg, e->collection) : NULL;
    cJSON *d = e->detail ? cJSON_Parse(e->detail) : NULL, *detail = resolution_json(how);
    const cJSON *ext = cJSON_GetObjectItemCaseSensitive(d, "ext_id");
    int64_t now = clock_now_ms(), link_id, record_id = how->is_new ? 0 : how->record_id;
    struct link l = {0};
    char target[40];
    int rc = -1, has = 0;

    if (cc == NULL || !cJSON_IsString(ext)) {
        error_set(err, ERROR_INVALID, "entry %" PRId64 " does not name its copy", e->id);
        goto out;
    }
    (void)snprintf(target, sizeof(target), "inbox %" PRId64, e->id);
    if (store_begin(st, err) == -1)
        goto out;
    if (match_record(st, cc, &record_id, err) == -1 ||
        (has = store_link_by_record(st, cc->name, record_id, &l, err)) == -1 ||
        (has == 1 ? store_link_set(st, l.id, ext->valuestring, NULL, now, err)
                  : store_link_add(st, cc->name, record_id, ext->valuestring, NULL, now, &link_id,
                                   err)) == -1 ||
        store_inbox_retry(st, e->id, now, err) != 1 || retry_later(st, d, err) == -1 ||
        store_inbox_set_detail(st, e->id, NULL, e->detail, "resolved", who->name, now, err) == -1 ||
        audit(st, who, "resolve", target, detail, err) == -1) {
        if (err->kind == ERROR_NONE)
            error_set(err, ERROR_INVALID, "entry %" PRId64 " is not open", e->id);
        store_rollback(st);
        goto out;
    }
    rc = settle(st, 1, err);
    if (rc == 1) {
        result(res, 1, record_id);
        (void)snprintf(res->message, sizeof(res->message),
                       "entry %" PRId64 " resolved by %s: copy %s of %s %s record %" PRId64, e->id,
                       who->name, ext->valuestring, cc->name, how->is_new ? "makes a new" : "joins",
                       record_id);
    }
out:
    link_fini(&l);
    cJSON_Delete(d);
    cJSON_Delete(detail);
    return rc;
}

/* Whether v fits the conflict's field, checked before the conflict is
 * closed: a value the operator change would park instead would leave the
 * conflict closed with the record's side kept. 0, or -1 with err set. */
static int
check_value(struct store *st, const struct config *cfg, const struct inbox_entry *e, const cJSON *v,
            struct error *err)
{
    struct record rec = {0};
    const struct config_model *model;
    const struct config_field *fd;
    struct error verr = {0};
    cJSON *coerced = NULL;
    int rc = store_record_get(st, e->record_id, &rec, err);

    if (rc != 1) {
        record_fini(&rec);
        return rc == -1 ? -1 : 0; /* the change says what became of it */
    }
    model = config_model_find(cfg, rec.model);
    fd = model ? config_model_field(model, e->field) : NULL;
    rc = 0;
    if (fd != NULL && value_coerce(fd->type, v, &coerced, &verr) == -1)
        rc = error_set(err, ERROR_INVALID, "conflict %" PRId64 ": field %s: %s", e->id, e->field,
                       verr.msg);
    cJSON_Delete(coerced);
    record_fini(&rec);
    return rc;
}

/* Settle a field conflict with a side's value or a given one. */
static int
resolve_field(struct store *st, const struct config *cfg, const struct admin_actor *who,
              const struct inbox_entry *e, const struct admin_resolution *how,
              struct admin_result *res, struct error *err)
{
    cJSON *d = e->detail ? cJSON_Parse(e->detail) : NULL, *body = NULL, *detail = NULL;
    const cJSON *v = how->take ? side_of(d, how->take) : how->value;
    char target[40];
    int rc = -1;

    if (how->record_id || how->is_new) {
        error_set(err, ERROR_INVALID,
                  "record and new are for ambiguous matches; use take or value");
        goto out;
    }
    if (v == NULL) {
        error_set(err, ERROR_INVALID, "%s is not a side of conflict %" PRId64, how->take, e->id);
        goto out;
    }
    if (check_value(st, cfg, e, v, err) == -1)
        goto out;
    body = cJSON_CreateObject();
    cJSON_AddNumberToObject(body, "record", (double)e->record_id);
    cJSON_AddItemToObject(cJSON_AddObjectToObject(body, "fields"), e->field, cJSON_Duplicate(v, 1));
    detail = resolution_json(how);
    (void)snprintf(target, sizeof(target), "inbox %" PRId64, e->id);
    if (store_begin(st, err) == -1)
        goto out;
    rc = 1;
    if (journal_operator(st, who, body, err) == -1 ||
        store_inbox_resolve(st, e->id, "resolved", who->name, NULL, clock_now_ms(), err) != 1 ||
        audit(st, who, "resolve", target, detail, err) == -1)
        rc = -1;
    if (rc == -1 && err->kind == ERROR_NONE)
        error_set(err, ERROR_INVALID, "conflict %" PRId64 " is not open", e->id);
    rc = settle(st, rc, err);
    if (rc == 1) {
        result(res, 1, e->record_id);
        (void)snprintf(res->message, sizeof(res->message),
                       "conflict %" PRId64 " resolved by %s: %s of record %" PRId64 " %s", e->id,
                       who->name, e->field, e->record_id,
                       how->take ? "takes that system's value" : "takes the given value");
    }
out:
    cJSON_Delete(d);
    cJSON_Delete(body);
    cJSON_Delete(detail);
    return rc;
}

int
admin_resolve(struct store *st, const struct config *cfg, const struct admin_actor *who,
              const struct admin_resolution *how, struct admin_result *res, struct error *err)
{
    struct inbox_entry e = {0};
    int ways = (how->take != NULL) + (how->value != NULL) + (how->record_id > 0) + how->is_new;
    int rc;

    memset(res, 0, sizeof(*res));
    if (ways != 1)
        return error_set(err, ERROR_INVALID, "give exactly one of take, value, record and new");
    rc = store_inbox_get_full(st, how->inbox_id, &e, err);
    if (rc == 1 && (e.kind != INBOX_CONFLICT || strcmp(e.state, "open") != 0))
        rc = 0;
    if (rc != 1)
        goto out;
    if (e.field != NULL && strcmp(e.field, "@match") == 0) {
        if (how->record_id == 0 && !how->is_new)
            rc = error_set(err, ERROR_INVALID,
                           "entry %" PRId64 " is an ambiguous match: resolve it with a record "
                           "or new",
                           e.id);
        else
            rc = resolve_match(st, cfg, who, &e, how, res, err);
    } else {
        rc = resolve_field(st, cfg, who, &e, how, res, err);
    }
out:
    inbox_entry_fini(&e);
    return rc;
}

/* ---- approve ---- */

static int
approve_one(struct store *st, const struct admin_actor *who, const struct inbox_entry *e,
            struct error *err)
{
    int64_t now = clock_now_ms();
    char target[40];
    cJSON *detail = cJSON_CreateObject();
    int rc;

    (void)snprintf(target, sizeof(target), "inbox %" PRId64, e->id);
    if (e->system)
        cJSON_AddStringToObject(detail, "system", e->system);
    if (e->record_id)
        cJSON_AddNumberToObject(detail, "record", (double)e->record_id);
    if (store_begin(st, err) == -1) {
        cJSON_Delete(detail);
        return -1;
    }
    rc = store_inbox_retry(st, e->id, now, err);
    if (rc == 1 &&
        (store_inbox_set_detail(st, e->id, NULL, NULL, "approved", who->name, now, err) == -1 ||
         audit(st, who, "approve", target, detail, err) == -1))
        rc = -1;
    cJSON_Delete(detail);
    return settle(st, rc, err);
}

int
admin_approve(struct store *st, const struct admin_actor *who, int64_t inbox_id, const char *system,
              struct admin_result *res, struct error *err)
{
    struct inbox_entry *list = NULL;
    int64_t done = 0;
    int n, rc = 0;

    memset(res, 0, sizeof(*res));
    n = store_inbox_by_kind(st, INBOX_HELD, 1, &list, err);
    for (int i = 0; i < n && rc != -1; i++) {
        if (inbox_id != 0
                ? list[i].id != inbox_id
                : system != NULL && (list[i].system == NULL || strcmp(list[i].system, system) != 0))
            continue;
        rc = approve_one(st, who, &list[i], err);
        done += rc == 1;
    }
    if (n > 0)
        store_inbox_free(list, n);
    if (n == -1 || rc == -1)
        return -1;
    result(res, done, 0);
    (void)snprintf(res->message, sizeof(res->message), "%" PRId64 " held delete%s approved by %s",
                   done, done == 1 ? "" : "s", who->name);
    return done > 0;
}

/* ---- pause, resume, replay, restore, reads ---- */

static int
set_paused(struct store *st, const struct config *cfg, const struct admin_actor *who,
           const char *system, int paused, struct admin_result *res, struct error *err)
{
    char target[160];
    int rc = 1;

    memset(res, 0, sizeof(*res));
    if (config_system_find(cfg, system) == NULL)
        return 0;
    (void)snprintf(target, sizeof(target), "system %s", system);
    if (store_begin(st, err) == -1)
        return -1;
    if (store_system_pause(st, system, paused, who->name, err) == -1 ||
        audit(st, who, paused ? "pause" : "resume", target, NULL, err) == -1)
        rc = -1;
    rc = settle(st, rc, err);
    if (rc == 1) {
        result(res, 1, 0);
        (void)snprintf(res->message, sizeof(res->message), "%s: deliveries %s", system,
                       paused ? "paused; changes keep being journaled and queued" : "resumed");
    }
    return rc;
}

int
admin_pause(struct store *st, const struct config *cfg, const struct admin_actor *who,
            const char *system, struct admin_result *res, struct error *err)
{
    return set_paused(st, cfg, who, system, 1, res, err);
}

int
admin_resume(struct store *st, const struct config *cfg, const struct admin_actor *who,
             const char *system, struct admin_result *res, struct error *err)
{
    return set_paused(st, cfg, who, system, 0, res, err);
}

int
admin_replay(struct store *st, const struct config *cfg, const struct admin_actor *who,
             const struct admin_filter *f, struct admin_result *res, struct error *err)
{
    char target[160];
    cJSON *detail;
    int n, rc = 1;

    memset(res, 0, sizeof(*res));
    if (f->system != NULL && config_system_find(cfg, f->system) == NULL)
        return error_set(err, ERROR_INVALID, "no system %s in %s", f->system, cfg->path);
    if (f->since_ms <= 0)
        return error_set(err, ERROR_INVALID, "a replay needs since: how far back to go");
    (void)snprintf(target, sizeof(target), "system %s", f->system ? f->system : "*");
    if (store_begin(st, err) == -1)
        return -1;
    n = store_journal_replay(st, f->since_ms, f->system, clock_now_ms(), err);
    detail = filter_json(f);
    cJSON_AddNumberToObject(detail, "count", n);
    if (n == -1 || audit(st, who, "replay", target, detail, err) == -1)
        rc = -1;
    cJSON_Delete(detail);
    if (settle(st, rc, err) == -1)
        return -1;
    result(res, n, 0);
    (void)snprintf(res->message, sizeof(res->message), "%d change%s queued for replay", n,
                   n == 1 ? "" : "s");
    return 0;
}

int
admin_restore(struct store *st, const struct admin_actor *who, int64_t record_id,
              struct admin_result *res, struct error *err)
{
    struct record rec = {0};
    cJSON *body;
    char target[40];
    int rc;

    memset(res, 0, sizeof(*res));
    rc = store_record_get(st, record_id, &rec, err);
    if (rc == 1 && !rec.is_deleted)
        rc = error_set(err, ERROR_INVALID, "record %" PRId64 " is not deleted", record_id);
    record_fini(&rec);
    if (rc != 1)
        return rc;
    body = cJSON_CreateObject();
    cJSON_AddNumberToObject(body, "restore", (double)record_id);
    (void)snprintf(target, sizeof(target), "record %" PRId64, record_id);
    if (store_begin(st, err) == -1) {
        cJSON_Delete(body);
        return -1;
    }
    rc = 1;
    if (journal_operator(st, who, body, err) == -1 ||
        audit(st, who, "restore", target, NULL, err) == -1)
        rc = -1;
    cJSON_Delete(body);
    rc = settle(st, rc, err);
    if (rc == 1) {
        result(res, 1, record_id);
        (void)snprintf(res->message, sizeof(res->message),
                       "record %" PRId64
                       " will be restored by %s and written to every collection again",
                       record_id, who->name);
    }
    return rc;
}

int
admin_delete_record(struct store *st, const struct admin_actor *who, int64_t record_id,
                    struct admin_result *res, struct error *err)
{
    struct record rec = {0};
    cJSON *body;
    char target[40];
    int rc;

    memset(res, 0, sizeof(*res));
    rc = store_record_get(st, record_id, &rec, err);
    if (rc == 1 && rec.is_deleted)
        rc = error_set(err, ERROR_INVALID, "record %" PRId64 " is deleted already", record_id);
    record_fini(&rec);
    if (rc != 1)
        return rc;
    body = cJSON_CreateObject();
    cJSON_AddNumberToObject(body, "record", (double)record_id);
    cJSON_AddTrueToObject(body, "delete");
    (void)snprintf(target, sizeof(target), "record %" PRId64, record_id);
    if (store_begin(st, err) == -1) {
        cJSON_Delete(body);
        return -1;
    }
    rc = 1;
    if (journal_operator(st, who, body, err) == -1 ||
        audit(st, who, "delete", target, NULL, err) == -1)
        rc = -1;
    cJSON_Delete(body);
    rc = settle(st, rc, err);
    if (rc == 1) {
        result(res, 1, record_id);
        (void)snprintf(res->message, sizeof(res->message),
                       "record %" PRId64 " will be deleted by %s in every collection", record_id,
                       who->name);
    }
    return rc;
}

int
admin_forget(struct store *st, const struct admin_actor *who, int64_t record_id,
             struct admin_result *res, struct error *err)
{
    char target[40];
    int64_t rows = 0;

    memset(res, 0, sizeof(*res));
    if (store_forget(st, record_id, &rows, err) == -1)
        return -1;
    (void)snprintf(target, sizeof(target), "record %" PRId64, record_id);
    if (store_begin(st, err) == -1)
        return -1;
    if (settle(st, audit(st, who, "forget", target, NULL, err) == -1 ? -1 : 1, err) != 1)
        return -1;
    result(res, rows, record_id);
    (void)snprintf(res->message, sizeof(res->message),
                   "record %" PRId64 " erased, with its history and %" PRId64 " journal row%s",
                   record_id, rows, rows == 1 ? "" : "s");
    return 1;
}

int
admin_read_request(struct store *st, const struct config *cfg, const struct admin_actor *who,
                   const char *collection, int reconcile, struct admin_result *res,
                   struct error *err)
{
    const struct config_collection *cc = config_collection_find(cfg, collection);
    struct store_poll p = {0};
    char target[200];
    int rc = 1;

    memset(res, 0, sizeof(*res));
    if (cc == NULL || !cc->poll.enabled)
        return 0;
    (void)snprintf(target, sizeof(target), "collection %s", cc->name);
    if (store_begin(st, err) == -1)
        return -1;
    /* The row exists once the daemon polled; make it so a request has a place. */
    if (store_poll_get(st, cc->name, clock_now_ms(), &p, err) == -1 ||
        store_poll_request(st, cc->name, reconcile, err) == -1 ||
        audit(st, who, reconcile ? "reconcile" : "poll", target, NULL, err) == -1)
        rc = -1;
    store_poll_fini(&p);
    rc = settle(st, rc, err);
    if (rc == 1) {
        result(res, 1, 0);
        (void)snprintf(res->message, sizeof(res->message),
                       "%s: a %s is asked for; the daemon reads it at its next turn", cc->name,
                       reconcile ? "reconcile" : "poll");
    }
    return rc;
}
