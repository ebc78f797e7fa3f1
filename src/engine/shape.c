/* SPDX-License-Identifier: MIT */

/*
 * Collections whose records are canonical appointments (shape.h): Google
 * Calendar and Microsoft Graph events read into appointments and written
 * back from them, with connectors/gcal_event.c and connectors/graph_event.c
 * doing the shaping. This file adds what those pure conversions cannot do
 * alone: reading a series whole whatever part of it the change list named
 * (Google lists an overridden occurrence as an event of its own; Graph's
 * calendarView/delta lists occurrences, never the series master), laying a
 * record's mapped fields over what the copy holds before writing (the
 * series first, then its occurrences that differ, one request each), and
 * comparing as appointments, so that time zones and key order are no
 * change.
 */

#include "engine/shape.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "connectors/appt.h"
#include "connectors/gcal_event.h"
#include "connectors/graph_event.h"
#include "core/clock.h"
#include "core/compiler.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "engine/engine_int.h"
#include "model/value.h"
#include "store/store.h"

/* Pages of one series' exceptions (Google) or instances (Graph) read at most. */
#define SHAPE_MAX_PAGES 50
/* Series read again, at most, for a Graph removal that names no series. */
#define SHAPE_SWEEP_MAX 200
/* The window of a Graph series' instances read for its exceptions. */
#define GRAPH_PAST_MS  (400LL * 86400000LL)
#define GRAPH_AHEAD_MS (800LL * 86400000LL)

/* The keys a record has besides its appointment. */
static const char *const record_keys[] = {"id", "updated"};

static int
is_google(const struct config_collection *cc)
{
    return cc->shape == CONFIG_SHAPE_GCAL_EVENT;
}

/* s for a URL: every byte but letters, digits and "-._~=" as %XX. */
static char *
url_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = xmalloc(strlen(s) * 3 + 1), *o = out;

    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~' || *p == '=') {
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

static const char *
str_of(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A copy of a record without its own keys (and the collection's
 * idempotency field): the appointment. */
static cJSON *
appt_part(const struct config_collection *cc, const cJSON *rec)
{
    cJSON *a = cJSON_IsObject(rec) ? cJSON_Duplicate(rec, 1) : cJSON_CreateObject();

    for (size_t i = 0; i < ARRAY_COUNT(record_keys); i++)
        cJSON_DeleteItemFromObjectCaseSensitive(a, record_keys[i]);
    if (cc != NULL && cc->idempotency_field != NULL)
        cJSON_DeleteItemFromObjectCaseSensitive(a, cc->idempotency_field);
    return a;
}

/* ---- reading ---- */

void
shape_reader_fini(struct shape_reader *r)
{
    for (size_t i = 0; i < r->done_count; i++)
        free(r->done[i]);
    free(r->done);
    r->done = NULL;
    r->done_count = r->done_cap = 0;
}

/* Note series id as read in this read; 0 when it was already. */
static int
reader_mark(struct shape_reader *r, const char *id)
{
    for (size_t i = 0; i < r->done_count; i++) {
        if (strcmp(r->done[i], id) == 0)
            return 0;
    }
    if (r->done_count == r->done_cap) {
        r->done_cap = r->done_cap ? r->done_cap * 2 : 16;
        r->done = xreallocarray(r->done, r->done_cap, sizeof(*r->done));
    }
    r->done[r->done_count++] = xstrdup(id);
    return 1;
}

static void
add_removed(cJSON *out, const char *id)
{
    cJSON *rec = cJSON_CreateObject(), *why = cJSON_CreateObject();

    cJSON_AddStringToObject(rec, "id", id);
    cJSON_AddStringToObject(why, "reason", "deleted");
    cJSON_AddItemToObject(rec, SHAPE_REMOVED, why);
    cJSON_AddItemToArray(out, rec);
}

static void
add_skipped(struct shape_reader *r, cJSON *out, const char *id, const char *why)
{
    cJSON *rec = cJSON_CreateObject();

    log_warn(&(struct log_ctx){.system = r->cc->system->name, .collection = r->cc->name},
             "event %s cannot be read as an appointment, and is left alone: %s", id, why);
    r->skipped++;
    cJSON_AddStringToObject(rec, "id", id);
    cJSON_AddStringToObject(rec, SHAPE_SKIPPED, why);
    cJSON_AddItemToArray(out, rec);
}

/* The record of event ev (with its series' instances, or NULL), appended
 * to out; an event that cannot be read is appended as skipped. */
static void
add_event(struct shape_reader *r, cJSON *out, const cJSON *ev, const cJSON *instances)
{
    const struct config_collection *cc = r->cc;
    const char *id = str_of(ev, "id");
    const char *updated = str_of(ev, is_google(cc) ? "updated" : "lastModifiedDateTime");
    struct error err = {0};
    cJSON *appt = NULL;
    int rc = is_google(cc) ? appt_from_gcal(ev, instances, &appt, &err)
                           : appt_from_graph(ev, instances, &appt, &err);

    if (rc == -1) {
        add_skipped(r, out, id ? id : "?", err.msg);
        return;
    }
    cJSON_AddStringToObject(appt, "id", id ? id : "");
    if (updated != NULL)
        cJSON_AddStringToObject(appt, "updated", updated);
    cJSON_AddItemToArray(out, appt);
}

/* The path of url under the system's base_url, for messages. */
static const char *
url_path(const struct config_collection *cc, const char *url)
{
    size_t n = strlen(cc->system->base_url);

    return strncmp(url, cc->system->base_url, n) == 0 ? url + n : url;
}

/*
 * GET url as JSON. Returns 1 with *out, 0 with *status 404 or 410 (gone),
 * 0 with why filled (no answer, another status, no JSON), or -1.
 */
static int
get_json(struct shape_reader *r, const char *url, long *status, cJSON **out, char *why,
         size_t why_len, struct error *err)
{
    struct shape_answer a = {0};

    *out = NULL;
    *status = 0;
    if (r->get(r->user, url, &a, err) == -1)
        return -1;
    *status = a.status;
    if (a.status == 0)
        (void)snprintf(why, why_len, "GET %s: %.200s", url_path(r->cc, url),
                       a.error ? a.error : "no answer");
    else if (a.status == 404 || a.status == 410)
        ;
    else if (a.status < 200 || a.status >= 300)
        (void)snprintf(why, why_len, "GET %s: HTTP %ld: %.200s", url_path(r->cc, url), a.status,
                       a.body ? a.body : "");
    else if ((*out = cJSON_Parse(a.body ? a.body : "")) == NULL || !cJSON_IsObject(*out))
        (void)snprintf(why, why_len, "GET %s: the answer is no JSON object", url_path(r->cc, url));
    free(a.body);
    free(a.error);
    if (*out != NULL && !cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    return *out != NULL ? 1 : 0;
}

/* The event sid of the collection's calendar, or NULL with gone set (404,
 * 410) or why filled; -1 in *rc on a store failure. */
static cJSON *
get_event(struct shape_reader *r, const char *sid, int *gone, char *why, size_t why_len, int *rc,
          struct error *err)
{
    char *id = url_escape(sid);
    char *url = xasprintf("%s%s/%s", r->cc->system->base_url, r->cc->shape_events, id);
    cJSON *ev = NULL;
    long status;

    *rc = get_json(r, url, &status, &ev, why, why_len, err);
    *gone = *rc == 0 && (status == 404 || status == 410);
    free(url);
    free(id);
    return ev;
}

/*
 * A Google series read whole: the series event, and its overridden and
 * cancelled instances (events.list by its iCalUID, deleted ones too: the
 * instances share it). Appends its record (or its removal) to out.
 * Returns 1, 0 with why filled, or -1.
 */
static int
gcal_series(struct shape_reader *r, const char *sid, cJSON *out, char *why, size_t why_len,
            struct error *err)
{
    const struct config_collection *cc = r->cc;
    int gone, rc;
    cJSON *ev = get_event(r, sid, &gone, why, why_len, &rc, err), *instances, *page;
    char *uid, *tok = NULL;

    if (ev == NULL) {
        if (gone)
            add_removed(out, sid);
        return rc == -1 ? -1 : gone;
    }
    if (appt_gcal_is_deleted(ev) ||
        !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(ev, "recurrence"))) {
        if (appt_gcal_is_deleted(ev))
            add_removed(out, sid);
        else
            add_event(r, out, ev, NULL);
        cJSON_Delete(ev);
        return 1;
    }
    uid = url_escape(str_of(ev, "iCalUID") ? str_of(ev, "iCalUID") : "");
    instances = cJSON_CreateArray();
    rc = 1;
    for (int pages = 0; rc == 1 && pages < SHAPE_MAX_PAGES; pages++) {
        char *url =
            xasprintf("%s%s?iCalUID=%s&showDeleted=true&maxResults=2500%s%s", cc->system->base_url,
                      cc->shape_events, uid, tok ? "&pageToken=" : "", tok ? tok : "");
        const cJSON *item;
        long status;

        rc = get_json(r, url, &status, &page, why, why_len, err);
        free(url);
        if (rc == 0 && why[0] == '\0')
            (void)snprintf(why, why_len, "GET %s: HTTP %ld", cc->shape_events, status);
        if (rc != 1)
            break;
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(page, "items"))
        {
            const char *of = str_of(item, "recurringEventId");

            if (of != NULL && strcmp(of, sid) == 0)
                cJSON_AddItemToArray(instances, cJSON_Duplicate(item, 1));
        }
        free(tok);
        tok = str_of(page, "nextPageToken") ? url_escape(str_of(page, "nextPageToken")) : NULL;
        cJSON_Delete(page);
        if (tok == NULL)
            break;
    }
    if (rc == 1)
        add_event(r, out, ev, instances);
    free(tok);
    free(uid);
    cJSON_Delete(instances);
    cJSON_Delete(ev);
    return rc;
}

/*
 * A Graph series read whole: its master, and its instances over a window
 * around now (exceptions and cancelled occurrences count; plain
 * occurrences are skipped by appt_from_graph()). Appends its record (or
 * its removal) to out. Returns 1, 0 with why filled, or -1.
 */
static int
graph_series(struct shape_reader *r, const char *sid, cJSON *out, char *why, size_t why_len,
             struct error *err)
{
    const struct config_collection *cc = r->cc;
    int gone, rc;
    cJSON *ev = get_event(r, sid, &gone, why, why_len, &rc, err), *instances, *page;
    char from[40], to[40], *id, *url;

    if (ev == NULL) {
        if (gone)
            add_removed(out, sid);
        return rc == -1 ? -1 : gone;
    }
    if (strcmp(str_of(ev, "type") ? str_of(ev, "type") : "", "seriesMaster") != 0) {
        add_event(r, out, ev, NULL);
        cJSON_Delete(ev);
        return 1;
    }
    id = url_escape(sid);
    (void)clock_format_ms(r->now_ms - GRAPH_PAST_MS, from, sizeof(from));
    (void)clock_format_ms(r->now_ms + GRAPH_AHEAD_MS, to, sizeof(to));
    url = xasprintf("%s%s/%s/instances?startDateTime=%s&endDateTime=%s&$top=1000",
                    cc->system->base_url, cc->shape_events, id, from, to);
    instances = cJSON_CreateArray();
    rc = 1;
    for (int pages = 0; rc == 1 && url != NULL && pages < SHAPE_MAX_PAGES; pages++) {
        const cJSON *item;
        const char *next;
        long status;

        rc = get_json(r, url, &status, &page, why, why_len, err);
        if (rc == 0 && why[0] == '\0')
            (void)snprintf(why, why_len, "GET %s/%s/instances: HTTP %ld", cc->shape_events, sid,
                           status);
        free(url);
        url = NULL;
        if (rc != 1)
            break;
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(page, "value"))
        {
            cJSON_AddItemToArray(instances, cJSON_Duplicate(item, 1));
        }
        next = str_of(page, "@odata.nextLink");
        url = next != NULL ? xstrdup(next) : NULL;
        cJSON_Delete(page);
    }
    free(url);
    if (rc == 1)
        add_event(r, out, ev, instances);
    free(id);
    cJSON_Delete(instances);
    cJSON_Delete(ev);
    return rc;
}

static int
read_series(struct shape_reader *r, const char *sid, cJSON *out, char *why, size_t why_len,
            struct error *err)
{
    if (!reader_mark(r, sid))
        return 1; /* read whole earlier in this read */
    return is_google(r->cc) ? gcal_series(r, sid, out, why, why_len, err)
                            : graph_series(r, sid, out, why, why_len, err);
}

/* Add id to the series list of a page, once. */
static void
series_add(char ***list, size_t *n, const char *id)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*list)[i], id) == 0)
            return;
    }
    *list = xreallocarray(*list, *n + 1, sizeof(**list));
    (*list)[(*n)++] = xstrdup(id);
}

/*
 * What one item of a page is about: 1 a series or an event to read again
 * (*series set), 2 a removal, 3 a removal that names no known copy
 * (Graph), 0 an event of its own, -1 on a store failure.
 */
static int
item_kind(struct shape_reader *r, const cJSON *item, const char *id, const char **series,
          struct error *err)
{
    const char *type = str_of(item, "type");

    *series = NULL;
    if (cJSON_GetObjectItemCaseSensitive(item, SHAPE_REMOVED) != NULL) {
        struct link l = {0};
        int found;

        if (is_google(r->cc))
            return 2;
        /* Graph's removals name an occurrence as often as an event, and an
         * event moved out of the window as often as a deleted one: a copy
         * concord links is read again (gone: a deletion; there: a change);
         * the rest may be a series' occurrence. */
        found = store_link_by_ext(r->st, r->cc->name, id, &l, err);
        link_fini(&l);
        if (found == 1)
            *series = id;
        return found == -1 ? -1 : found ? 1 : 3;
    }
    if (is_google(r->cc)) {
        if ((*series = str_of(item, "recurringEventId")) != NULL)
            return 1;
        if (appt_gcal_is_deleted(item))
            return 2;
        if (cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(item, "recurrence"))) {
            *series = id;
            return 1;
        }
        return 0;
    }
    if (type != NULL && (strcmp(type, "occurrence") == 0 || strcmp(type, "exception") == 0)) {
        *series = str_of(item, "seriesMasterId");
        return *series != NULL ? 1 : 0;
    }
    if (type != NULL && strcmp(type, "seriesMaster") == 0) {
        *series = id;
        return 1;
    }
    return 0;
}

int
shape_page(struct shape_reader *r, const cJSON *items, cJSON **out, char *why, size_t why_len,
           struct error *err)
{
    cJSON *recs = cJSON_CreateArray();
    const cJSON *item;
    char **series = NULL, **swept = NULL;
    size_t series_count = 0;
    int nameless = 0, rc = 0, n_swept = 0;

    *out = NULL;
    why[0] = '\0';
    cJSON_ArrayForEach(item, items)
    {
        const char *id = str_of(item, "id"), *of;
        int kind;

        if (id == NULL || id[0] == '\0') {
            cJSON_AddItemToArray(recs, cJSON_Duplicate(item, 1)); /* counted as skipped */
            continue;
        }
        kind = item_kind(r, item, id, &of, err);
        if (kind == -1) {
            rc = -1;
            goto out;
        }
        if (kind == 1)
            series_add(&series, &series_count, of);
        else if (kind == 2)
            add_removed(recs, id);
        else if (kind == 3)
            nameless = 1;
        else
            add_event(r, recs, item, NULL);
    }
    for (size_t i = 0; i < series_count && rc == 0 && why[0] == '\0'; i++)
        rc = read_series(r, series[i], recs, why, why_len, err) == -1 ? -1 : 0;
    /* A removal that names no linked copy may be an occurrence of a series
     * concord holds: read the linked series again, once per read. */
    if (nameless && !r->swept && rc == 0 && why[0] == '\0') {
        r->swept = 1;
        n_swept = store_push_series(r->st, r->cc->name, SHAPE_SWEEP_MAX, &swept, err);
        if (n_swept == -1)
            rc = -1;
        for (int i = 0; i < n_swept && rc == 0 && why[0] == '\0'; i++)
            rc = read_series(r, swept[i], recs, why, why_len, err) == -1 ? -1 : 0;
    }
out:
    for (size_t i = 0; i < series_count; i++)
        free(series[i]);
    free(series);
    for (int i = 0; i < n_swept; i++)
        free(swept[i]);
    free(swept);
    if (rc == 0 && why[0] == '\0')
        *out = recs;
    else
        cJSON_Delete(recs);
    return rc;
}

int
shape_gone(struct shape_reader *r, const char *id, char *why, size_t why_len, struct error *err)
{
    int gone, rc;
    cJSON *ev;

    why[0] = '\0';
    ev = get_event(r, id, &gone, why, why_len, &rc, err);
    if (rc == -1)
        return -1;
    if (ev == NULL)
        return why[0] != '\0' ? 0 : gone;
    gone = is_google(r->cc) && appt_gcal_is_deleted(ev);
    cJSON_Delete(ev);
    return gone;
}

int
shape_same(const cJSON *record, const char *base)
{
    cJSON *b = base != NULL ? cJSON_Parse(base) : NULL, *x, *y;
    int same;

    if (!cJSON_IsObject(b) || !cJSON_IsObject(record)) {
        cJSON_Delete(b);
        return 0;
    }
    x = appt_part(NULL, record);
    y = appt_part(NULL, b);
    same = appt_equal(x, y);
    cJSON_Delete(x);
    cJSON_Delete(y);
    cJSON_Delete(b);
    return same;
}

/* ---- writing ---- */

/* Lay value over the start or end object old (a time): a date or a local
 * time replaces it; an instant keeps old's zone unless it names one. */
static cJSON *
lay_time(const cJSON *old, const cJSON *value)
{
    cJSON *t;
    const cJSON *f;

    if (!cJSON_IsObject(old) || !cJSON_IsObject(value) ||
        cJSON_GetObjectItemCaseSensitive(value, "date") != NULL ||
        cJSON_GetObjectItemCaseSensitive(value, "local") != NULL)
        return cJSON_Duplicate(value, 1);
    t = cJSON_Duplicate(old, 1);
    if (cJSON_GetObjectItemCaseSensitive(value, "at") != NULL) {
        cJSON_DeleteItemFromObjectCaseSensitive(t, "date");
        cJSON_DeleteItemFromObjectCaseSensitive(t, "local");
    }
    cJSON_ArrayForEach(f, value)
    {
        cJSON_DeleteItemFromObjectCaseSensitive(t, f->string);
        if (!cJSON_IsNull(f))
            cJSON_AddItemToObject(t, f->string, cJSON_Duplicate(f, 1));
    }
    return t;
}

/* Lay the fields of value over obj: objects merge, null removes, the rest
 * replaces. top: obj is the appointment (start and end are times). */
static void
lay_over(cJSON *obj, const cJSON *value, int top)
{
    const cJSON *f;

    cJSON_ArrayForEach(f, value)
    {
        cJSON *old = cJSON_GetObjectItemCaseSensitive(obj, f->string), *next;

        if (cJSON_IsNull(f)) {
            cJSON_DeleteItemFromObjectCaseSensitive(obj, f->string);
            continue;
        }
        if (top && (strcmp(f->string, "start") == 0 || strcmp(f->string, "end") == 0)) {
            next = lay_time(old, f);
        } else if (cJSON_IsObject(f) && cJSON_IsObject(old)) {
            next = cJSON_Duplicate(old, 1);
            lay_over(next, f, 0);
        } else {
            next = cJSON_Duplicate(f, 1);
        }
        cJSON_DeleteItemFromObjectCaseSensitive(obj, f->string);
        cJSON_AddItemToObject(obj, f->string, next);
    }
}

/* base's appointment with desired laid over it (not canonical yet). */
static cJSON *
laid(const struct engine_coll *c, const cJSON *base, const cJSON *desired)
{
    cJSON *full = appt_part(c->cfg, base), *top = appt_part(c->cfg, desired);

    lay_over(full, top, 1);
    cJSON_Delete(top);
    return full;
}

int
shape_differs(const struct engine_coll *c, const cJSON *desired, const cJSON *base)
{
    cJSON *full, *norm = NULL, *b;
    struct error ignored = {0};
    int differs;

    if (!cJSON_IsObject(base))
        return 1;
    full = laid(c, base, desired);
    b = appt_part(c->cfg, base);
    differs = appt_normalize(full, &norm, &ignored) == -1 || !appt_equal(norm, b);
    cJSON_Delete(norm);
    cJSON_Delete(full);
    cJSON_Delete(b);
    return differs;
}

int
shape_desired(const struct engine_coll *c, const char *prefix, int64_t link_id, const char *base,
              cJSON **desired, struct error *err)
{
    cJSON *b = base != NULL ? cJSON_Parse(base) : NULL, *full, *norm = NULL;
    int rc;

    full = laid(c, cJSON_IsObject(b) ? b : NULL, *desired);
    cJSON_Delete(b);
    if (str_of(full, "uid") == NULL) {
        /* With the store's part: a new store counts links from 1 again. */
        char *uid = prefix[0] != '\0'
                        ? xasprintf("concord-%s-%lld@%s", prefix, (long long)link_id, c->cfg->name)
                        : xasprintf("concord-%lld@%s", (long long)link_id, c->cfg->name);

        cJSON_DeleteItemFromObjectCaseSensitive(full, "uid");
        cJSON_AddStringToObject(full, "uid", uid);
        free(uid);
    }
    rc = appt_normalize(full, &norm, err);
    cJSON_Delete(full);
    if (rc == -1)
        return error_wrap(err, "%s: the appointment to write", c->cfg->name);
    cJSON_Delete(*desired);
    *desired = norm;
    return 0;
}

/* The system's event for appointment a; NULL with err. */
static cJSON *
to_event(const struct config_collection *cc, const cJSON *a, struct error *err)
{
    cJSON *ev = NULL, *instances = NULL;
    int rc = is_google(cc) ? appt_to_gcal(a, &ev, &instances, err)
                           : appt_to_graph(a, &ev, &instances, err);

    cJSON_Delete(instances);
    return rc == -1 ? NULL : ev;
}

/* A Google event id from an idempotency key ("concord-12-3"): Google's
 * ids are base32hex, [a-v0-9], 5 to 1024 of them. */
static char *
gcal_id(const char *key)
{
    char *id = xasprintf("%s%s", key, strlen(key) < 5 ? "00000" : "");

    for (char *p = id; *p != '\0'; p++) {
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
        if (!((*p >= 'a' && *p <= 'v') || (*p >= '0' && *p <= '9')))
            *p = 'v';
    }
    return id;
}

/* An update: the members of ev that differ from what base's event holds;
 * a recurrence or attendee list the copy has and ev has not, as null. */
static cJSON *
changed_members(const struct config_collection *cc, const cJSON *ev, const char *base)
{
    cJSON *b = base != NULL ? cJSON_Parse(base) : NULL, *ba = NULL, *bev = NULL, *out;
    struct error ignored = {0};
    const cJSON *f;

    if (cJSON_IsObject(b)) {
        ba = appt_part(cc, b);
        bev = to_event(cc, ba, &ignored);
    }
    out = cJSON_CreateObject();
    cJSON_ArrayForEach(f, ev)
    {
        const cJSON *old = cJSON_GetObjectItemCaseSensitive(bev, f->string);

        if (is_google(cc) && strcmp(f->string, "iCalUID") == 0)
            continue; /* it cannot change */
        if (old == NULL || !value_equal(f, old))
            cJSON_AddItemToObject(out, f->string, cJSON_Duplicate(f, 1));
    }
    cJSON_ArrayForEach(f, bev)
    {
        if ((strcmp(f->string, "recurrence") == 0 || strcmp(f->string, "attendees") == 0) &&
            cJSON_GetObjectItemCaseSensitive(ev, f->string) == NULL)
            cJSON_AddNullToObject(out, f->string);
    }
    cJSON_Delete(bev);
    cJSON_Delete(ba);
    cJSON_Delete(b);
    return out;
}

/* The member of list (exceptions) whose recurrence_id is rid, or NULL. */
static const cJSON *
exception_of(const cJSON *list, const char *rid)
{
    const cJSON *x;

    cJSON_ArrayForEach(x, list)
    {
        const char *r = str_of(x, "recurrence_id");

        if (r != NULL && strcmp(r, rid) == 0)
            return x;
    }
    return NULL;
}

/* Whether the array list holds the string s. */
static int
has_text(const cJSON *list, const char *s)
{
    const cJSON *x;

    cJSON_ArrayForEach(x, list)
    {
        if (cJSON_IsString(x) && strcmp(x->valuestring, s) == 0)
            return 1;
    }
    return 0;
}

static const cJSON *
exdates_of(const cJSON *appt)
{
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(appt, "recurrence"),
                                            "exdates");
}

/*
 * The first occurrence of series a (to write) that the copy b does not hold
 * as a has it: *rid its recurrence id (points into a or b); *cancel 1 when a
 * cancels it and the system takes that as an occurrence's delete (Graph:
 * Google's cancellations are EXDATE lines of the series), or when a Google
 * exception is left over from an earlier form of the series. Returns 1, or 0
 * when every occurrence agrees.
 */
static int
next_occurrence(const struct config_collection *cc, const cJSON *a, const cJSON *b,
                const char **rid, int *cancel)
{
    const cJSON *ax = cJSON_GetObjectItemCaseSensitive(a, "exceptions");
    const cJSON *bx = cJSON_GetObjectItemCaseSensitive(b, "exceptions"), *x;

    *cancel = 0;
    if (cJSON_GetObjectItemCaseSensitive(a, "recurrence") == NULL)
        return 0;
    if (!is_google(cc)) {
        cJSON_ArrayForEach(x, exdates_of(a))
        {
            if (cJSON_IsString(x) && !has_text(exdates_of(b), x->valuestring)) {
                *rid = x->valuestring;
                *cancel = 1;
                return 1;
            }
        }
    }
    cJSON_ArrayForEach(x, ax)
    {
        const char *r = str_of(x, "recurrence_id");
        const cJSON *y = r != NULL ? exception_of(bx, r) : NULL;

        if (r != NULL && (y == NULL || !value_equal(x, y))) {
            *rid = r;
            return 1;
        }
    }
    /* An exception the copy holds and a no longer has: the occurrence is
     * the series' again (unless a cancels it). Google keeps an exception
     * whose occurrence the series no longer has (its start or rule moved)
     * as an event of its own: that one is deleted, or it would stay in
     * the calendar beside the moved series. */
    cJSON_ArrayForEach(x, bx)
    {
        const char *r = str_of(x, "recurrence_id");

        if (r != NULL && exception_of(ax, r) == NULL && !has_text(exdates_of(a), r) &&
            !(!is_google(cc) && has_text(exdates_of(b), r))) {
            *rid = r;
            *cancel = is_google(cc) && appt_occurs(a, r) == 0;
            return 1;
        }
    }
    return 0;
}

/* The event body that writes occurrence rid of appointment a in full. */
static cJSON *
occurrence_body(const struct config_collection *cc, const cJSON *a, const char *rid,
                struct error *err)
{
    static const char *const drop[] = {
        "id",        "iCalUID",       "iCalUId",           "transactionId", "recurrence",
        "organizer", "originalStart", "originalStartTime", "recurrence_id"};
    const cJSON *x = exception_of(cJSON_GetObjectItemCaseSensitive(a, "exceptions"), rid);
    cJSON *plain = NULL, *occ = NULL, *ev;

    if (x == NULL) {
        plain = cJSON_CreateObject();
        cJSON_AddStringToObject(plain, "recurrence_id", rid);
        x = plain;
    }
    if (appt_occurrence(a, x, &occ, err) == -1) {
        cJSON_Delete(plain);
        return NULL;
    }
    cJSON_Delete(plain);
    cJSON_DeleteItemFromObjectCaseSensitive(occ, "recurrence_id");
    ev = to_event(cc, occ, err);
    cJSON_Delete(occ);
    for (size_t i = 0; ev != NULL && i < ARRAY_COUNT(drop); i++)
        cJSON_DeleteItemFromObjectCaseSensitive(ev, drop[i]);
    return ev;
}

/* The instant (or a date's midnight) of a time text, in ms; 0 if none. */
static int64_t
text_ms(const char *text)
{
    struct appt_text t;

    if (text == NULL || appt_text_parse(text, &t) == -1)
        return 0;
    return (t.civil_s - (t.has_offset ? t.offset_s : 0)) * 1000;
}

/* The occurrence id the note hint gives for rid, or NULL. */
static char *
hinted_id(const char *hint, const char *rid)
{
    cJSON *h = hint != NULL ? cJSON_Parse(hint) : NULL;
    const char *r = str_of(h, "occurrence"), *id = str_of(h, "occurrence_id");
    char *out = r != NULL && id != NULL && strcmp(r, rid) == 0 ? xstrdup(id) : NULL;

    cJSON_Delete(h);
    return out;
}

/* The request for occurrence rid of series ext_id (see shape_request()). */
static int
occurrence_request(const struct config_collection *cc, const cJSON *a, const cJSON *b,
                   const char *ext_id, const char *hint, const char *rid, int cancel,
                   struct shape_request *out, struct error *err)
{
    char *sid = url_escape(ext_id), *occ = NULL, *oid;
    cJSON *ev = NULL;

    out->occurrence = xstrdup(rid);
    out->step = SHAPE_STEP_OCCURRENCE;
    if (is_google(cc)) {
        char iid[1200];

        if (appt_gcal_instance_id(ext_id, rid, iid, sizeof(iid)) == -1) {
            free(sid);
            return error_set(err, ERROR_MAPPING, "%s: occurrence %s has no instance id", cc->name,
                             rid);
        }
        occ = xstrdup(iid);
    } else {
        occ = hinted_id(hint, rid);
    }
    if (occ == NULL) {
        /* Graph's occurrence ids are its own: read the series' instances
         * around the occurrence (and where the copy moved it). */
        const cJSON *bx = exception_of(cJSON_GetObjectItemCaseSensitive(b, "exceptions"), rid);
        int64_t at = text_ms(rid),
                moved = text_ms(str_of(cJSON_GetObjectItemCaseSensitive(bx, "start"), "at"));
        int64_t lo = at, hi = at;
        char from[40], to[40];

        if (moved != 0) {
            lo = moved < lo ? moved : lo;
            hi = moved > hi ? moved : hi;
        }
        (void)clock_format_ms(lo - 2 * 86400000LL, from, sizeof(from));
        (void)clock_format_ms(hi + 2 * 86400000LL, to, sizeof(to));
        out->step = SHAPE_STEP_FIND;
        out->method = xstrdup("GET");
        out->path = xasprintf("%s/%s/instances?startDateTime=%s&endDateTime=%s&$top=1000",
                              cc->shape_events, sid, from, to);
        free(sid);
        return 0;
    }
    oid = url_escape(occ);
    free(occ);
    out->path = xasprintf("%s/%s", cc->shape_events, oid);
    free(oid);
    free(sid);
    if (cancel) {
        out->method = xstrdup("DELETE");
        return 0;
    }
    ev = occurrence_body(cc, a, rid, err);
    if (ev == NULL)
        return error_wrap(err, "%s: occurrence %s", cc->name, rid);
    out->method = xstrdup("PATCH");
    out->body = cJSON_PrintUnformatted(ev);
    cJSON_Delete(ev);
    return 0;
}

/* Whether body (an update's members) is empty: the event agrees. */
static int
is_empty(const cJSON *body)
{
    return body == NULL || body->child == NULL;
}

void
shape_request_fini(struct shape_request *r)
{
    free(r->body);
    free(r->method);
    free(r->path);
    free(r->occurrence);
    memset(r, 0, sizeof(*r));
}

int
shape_request(const struct engine_coll *c, const cJSON *desired, const char *base,
              const char *ext_id, const char *hint, struct shape_request *out, struct error *err)
{
    const struct config_collection *cc = c->cfg;
    const char *key = cc->idempotency_field ? str_of(desired, cc->idempotency_field) : NULL;
    cJSON *a = appt_part(cc, desired), *ev, *body;

    memset(out, 0, sizeof(*out));
    ev = to_event(cc, a, err);
    if (ev == NULL) {
        cJSON_Delete(a);
        return error_wrap(err, "%s", cc->name);
    }
    if (ext_id == NULL) {
        if (key != NULL && is_google(cc)) {
            char *id = gcal_id(key);

            cJSON_DeleteItemFromObjectCaseSensitive(ev, "id");
            cJSON_AddStringToObject(ev, "id", id);
            free(id);
        } else if (key != NULL) {
            cJSON_DeleteItemFromObjectCaseSensitive(ev, "transactionId");
            cJSON_AddStringToObject(ev, "transactionId", key);
        }
        body = ev;
        ev = NULL;
    } else if (!is_google(cc) &&
               strcmp(str_of(a, "status") ? str_of(a, "status") : "", "cancelled") == 0) {
        /* Graph cancels a meeting with an action, not a field. */
        char *id = url_escape(ext_id);

        body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "comment", "");
        out->method = xstrdup("POST");
        out->path = xasprintf("%s/%s/cancel", cc->shape_events, id);
        free(id);
    } else {
        body = changed_members(cc, ev, base);
        if (is_empty(body)) {
            /* The series agrees: its occurrences next, one a request. */
            cJSON *b = base != NULL ? cJSON_Parse(base) : NULL, *ba = appt_part(cc, b);
            const char *rid;
            int cancel, rc = 0;

            if (next_occurrence(cc, a, ba, &rid, &cancel)) {
                cJSON_Delete(body);
                body = NULL;
                rc = occurrence_request(cc, a, ba, ext_id, hint, rid, cancel, out, err);
            }
            cJSON_Delete(ba);
            cJSON_Delete(b);
            if (rc == -1 || out->step != SHAPE_STEP_SERIES) {
                cJSON_Delete(ev);
                cJSON_Delete(a);
                if (rc == -1)
                    shape_request_fini(out);
                return rc;
            }
        }
    }
    out->body = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    cJSON_Delete(ev);
    cJSON_Delete(a);
    return 0;
}

char *
shape_found(const cJSON *answer, const char *occurrence)
{
    int64_t want = text_ms(occurrence);
    const cJSON *x;

    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(answer, "value"))
    {
        const char *id = str_of(x, "id"), *orig = str_of(x, "originalStart");

        if (id != NULL && orig != NULL && want != 0 && text_ms(orig) == want) {
            cJSON *h = cJSON_CreateObject();
            char *text;

            cJSON_AddStringToObject(h, "occurrence", occurrence);
            cJSON_AddStringToObject(h, "occurrence_id", id);
            text = cJSON_PrintUnformatted(h);
            cJSON_Delete(h);
            return text;
        }
    }
    return NULL;
}

int
shape_more(const struct engine_coll *c, const char *sent, const char *base)
{
    cJSON *s = sent != NULL ? cJSON_Parse(sent) : NULL,
          *b = base != NULL ? cJSON_Parse(base) : NULL;
    cJSON *a = appt_part(c->cfg, s), *ba = appt_part(c->cfg, b), *ev, *members = NULL;
    struct error ignored = {0};
    const char *rid;
    int cancel, more = 0;

    ev = cJSON_IsObject(b) ? to_event(c->cfg, a, &ignored) : NULL;
    if (ev != NULL) {
        members = changed_members(c->cfg, ev, base);
        more = is_empty(members) && next_occurrence(c->cfg, a, ba, &rid, &cancel);
    }
    cJSON_Delete(members);
    cJSON_Delete(ev);
    cJSON_Delete(ba);
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(s);
    return more;
}

/* before (an appointment) with occurrence rid as a (the one sent) has it. */
static void
apply_occurrence(const struct config_collection *cc, cJSON *before, const cJSON *a, const char *rid)
{
    cJSON *bx = cJSON_GetObjectItemCaseSensitive(before, "exceptions"), *x;
    const cJSON *ax = exception_of(cJSON_GetObjectItemCaseSensitive(a, "exceptions"), rid);
    int i = 0;

    cJSON_ArrayForEach(x, bx)
    {
        const char *r = str_of(x, "recurrence_id");

        if (r != NULL && strcmp(r, rid) == 0) {
            cJSON_DeleteItemFromArray(bx, i);
            break;
        }
        i++;
    }
    if (ax != NULL) {
        if (bx == NULL)
            bx = cJSON_AddArrayToObject(before, "exceptions");
        cJSON_AddItemToArray(bx, cJSON_Duplicate(ax, 1));
    }
    if (!is_google(cc) && has_text(exdates_of(a), rid) && !has_text(exdates_of(before), rid)) {
        cJSON *r = cJSON_GetObjectItemCaseSensitive(before, "recurrence"), *list;

        list = cJSON_GetObjectItemCaseSensitive(r, "exdates");
        if (list == NULL && r != NULL)
            list = cJSON_AddArrayToObject(r, "exdates");
        if (list != NULL)
            cJSON_AddItemToArray(list, cJSON_CreateString(rid));
    }
}

/* The exceptions (and Graph: the exdates) the copy held before a series'
 * write, laid into appt (the answer read), but for those the answer's
 * exdates cancel, and in Graph those whose occurrence the series no longer
 * has: Outlook drops a series' exceptions when its time or pattern
 * changes, so there is none to look for (Google keeps them: next_occurrence()
 * deletes them). */
static void
keep_occurrences(const struct config_collection *cc, cJSON *appt, const cJSON *before)
{
    const cJSON *x;
    cJSON *list = cJSON_CreateArray();

    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(before, "exceptions"))
    {
        const char *r = str_of(x, "recurrence_id");

        if (r != NULL && !has_text(exdates_of(appt), r) &&
            (is_google(cc) || appt_occurs(appt, r) != 0))
            cJSON_AddItemToArray(list, cJSON_Duplicate(x, 1));
    }
    cJSON_DeleteItemFromObjectCaseSensitive(appt, "exceptions");
    cJSON_AddItemToObject(appt, "exceptions", list);
    if (!is_google(cc) && exdates_of(appt) == NULL && exdates_of(before) != NULL)
        cJSON_AddItemToObject(cJSON_GetObjectItemCaseSensitive(appt, "recurrence"), "exdates",
                              cJSON_Duplicate(exdates_of(before), 1));
}

char *
shape_new_base(const struct engine_coll *c, const char *sent, const char *ext_id,
               const cJSON *answer, int was_create, const char *before, enum shape_step step,
               const char *occurrence)
{
    const struct config_collection *cc = c->cfg;
    cJSON *s = sent != NULL ? cJSON_Parse(sent) : NULL, *rec = NULL;
    cJSON *b = before != NULL ? cJSON_Parse(before) : NULL;
    struct error ignored = {0};
    char *text;

    if (step == SHAPE_STEP_OCCURRENCE && cJSON_IsObject(b) && occurrence != NULL) {
        cJSON *appt = appt_part(cc, b), *a = appt_part(cc, s), *norm = NULL;

        apply_occurrence(cc, appt, a, occurrence);
        cJSON_Delete(a);
        if (appt_normalize(appt, &norm, &ignored) == 0) {
            cJSON_Delete(appt);
            appt = norm;
        }
        rec = appt;
        if (str_of(b, "id") != NULL)
            cJSON_AddStringToObject(rec, "id", str_of(b, "id"));
        if (str_of(b, "updated") != NULL)
            cJSON_AddStringToObject(rec, "updated", str_of(b, "updated"));
    } else if (cJSON_IsObject(answer) && str_of(answer, "id") != NULL) {
        cJSON *appt = NULL, *norm = NULL;
        const char *updated = str_of(answer, is_google(cc) ? "updated" : "lastModifiedDateTime");
        int rc = is_google(cc) ? appt_from_gcal(answer, NULL, &appt, &ignored)
                               : appt_from_graph(answer, NULL, &appt, &ignored);

        /* The answer to a series' write holds the series alone: its
         * occurrences are as the copy held them, and the occurrence steps
         * that follow (shape_more()) write those that differ. */
        if (rc == 0 && !was_create && cJSON_IsObject(b) &&
            cJSON_GetObjectItemCaseSensitive(appt, "recurrence")) {
            keep_occurrences(cc, appt, b);
            if (appt_normalize(appt, &norm, &ignored) == 0) {
                cJSON_Delete(appt);
                appt = norm;
            }
        }
        if (rc == 0) {
            rec = appt;
            cJSON_AddStringToObject(rec, "id", str_of(answer, "id"));
            if (updated != NULL)
                cJSON_AddStringToObject(rec, "updated", updated);
        }
    }
    if (rec == NULL) {
        rec = appt_part(cc, s);
        if (ext_id != NULL)
            cJSON_AddStringToObject(rec, "id", ext_id);
    }
    text = value_canonical_text(rec);
    cJSON_Delete(rec);
    cJSON_Delete(s);
    cJSON_Delete(b);
    return text;
}

int
shape_conflict_id(const struct config_collection *cc, const char *body, char *out, size_t len)
{
    cJSON *b;
    const char *id;
    int rc = 0;

    if (!is_google(cc) || body == NULL)
        return 0;
    b = cJSON_Parse(body);
    id = str_of(b, "id");
    if (id != NULL && strlen(id) < len) {
        (void)snprintf(out, len, "%s", id);
        rc = 1;
    }
    cJSON_Delete(b);
    return rc;
}
