/* SPDX-License-Identifier: MIT */

/*
 * Calendars of caldav systems (docs/calendars.md, "The caldav kind"). A
 * collection is one calendar on a CalDAV server (RFC 4791); its records are
 * canonical appointments (connectors/appt.h) with two more keys, "href"
 * (the event's path: the copy's id) and "etag", so a link's base holds the
 * ETag of the state concord last merged.
 *
 * Reads (the poll thread, or `concord poll`): a sync-collection REPORT
 * (RFC 6578) from the token of the last read, the changed events fetched
 * by calendar-multiget (an event whose ETag is the one its base holds is
 * not fetched at all) and journaled as polled records, removed ones as
 * deletions; the REPORT's new token commits with the last of them. A
 * truncated answer (507 on the calendar) is read on from its token. A
 * refused token (DAV:valid-sync-token) starts a full read, which deletes,
 * once complete, the linked events it did not see; the events it finds are
 * the copies concord links by their href, or by their UID when they moved,
 * so none is made twice.
 *
 * Writes (the writer claims, the delivery thread sends): a create is a PUT
 * to a new href with If-None-Match: *, the href kept in the job so that a
 * create whose answer was lost is sent again to the same place (a second
 * try finds it there: 412); an update is a PUT, a delete a DELETE, both
 * with If-Match on the ETag. A 412 means the event changed since concord
 * read it: the job reads it again (GET), journals what it found, waits
 * until the merge has taken it (the sync's rules and conflict policy, as
 * for any change), and writes the merged record with If-Match on the ETag
 * it read. What the map does not write (attendees someone added, the zone
 * an event was written in) is kept from the event as concord knows it.
 *
 * The job's state between these steps lives in jobs.expect (JSON):
 *   {"href": H}                 a create's href, chosen once
 *   {"reread": true}            read the event again before writing
 *   {"after": SEQ, "state": S}  write once change SEQ (S, read back) merged
 *   {"after": SEQ, "gone": true}  ... the event was gone (404)
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <cjson/cJSON.h>

#include "connectors/appt.h"
#include "connectors/caldav_xml.h"
#include "connectors/ical.h"
#include "connectors/oauth.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/retry.h"
#include "core/xmalloc.h"
#include "engine/engine_int.h"
#include "engine/poll.h"
#include "model/value.h"
#include "store/store.h"

/* Events fetched by one calendar-multiget. */
#define CALDAV_MULTIGET_BATCH 100
/* How long a job waits for the merge of what it read back, between looks. */
#define CALDAV_AFTER_WAIT_MS 50
/* How long a create waits for the poll's discovery of its calendar. */
#define CALDAV_DISCOVERY_WAIT_MS 1000

int
engine_caldav_is(const struct config_collection *cc)
{
    return cc != NULL && cc->system->profile == CONFIG_PROFILE_CALDAV;
}

/* ---- hrefs and URLs ---- */

/* "http://host:port" of a base URL (no path), malloc()ed. */
static char *
origin_of(const char *base_url)
{
    const char *host = strstr(base_url, "://");
    size_t n = host != NULL ? (size_t)(host - base_url) + 3 : 0;

    n += strcspn(base_url + n, "/?#");
    return xstrndup(base_url, n);
}

/* The URL of an href (a path on the server, or already a URL). */
static char *
url_of(const struct config_system *sys, const char *href)
{
    char *origin, *url;

    if (strncmp(href, "http://", 7) == 0 || strncmp(href, "https://", 8) == 0)
        return xstrdup(href);
    origin = origin_of(sys->base_url);
    url = xasprintf("%s%s%s", origin, href[0] == '/' ? "" : "/", href);
    free(origin);
    return url;
}

/* A collection's path in one spelling, ending with '/'. */
static char *
collection_path(const char *href)
{
    char *p = caldav_href_path(href), *q;
    size_t n = strlen(p);

    if (n > 0 && p[n - 1] == '/')
        return p;
    q = xasprintf("%s/", p);
    free(p);
    return q;
}

/* The calendar the config names by path or URL, or NULL (a name, or none:
 * discovery finds it). malloc()ed. */
static char *
calendar_configured(const struct config_collection *cc)
{
    const char *cal = cc->caldav_calendar;

    if (cal == NULL ||
        (cal[0] != '/' && strncmp(cal, "http://", 7) != 0 && strncmp(cal, "https://", 8) != 0))
        return NULL;
    return collection_path(cal);
}

/* Where discovery keeps the calendar it found (store_meta). */
static char *
meta_key(const struct config_collection *cc)
{
    return xasprintf("caldav.calendar.%s", cc->name);
}

/*
 * The calendar's path: from the config, or from what discovery found for
 * this server and this name. Returns 1 with *out malloc()ed, 0 when not
 * known yet, -1.
 */
static int
calendar_known(struct store *st, const struct config_collection *cc, char **out, struct error *err)
{
    char *key, *text = NULL;
    cJSON *meta;
    const char *base, *want, *path;
    int rc;

    if ((*out = calendar_configured(cc)) != NULL)
        return 1;
    key = meta_key(cc);
    rc = store_meta_get(st, key, &text, err);
    free(key);
    if (rc == -1 || text == NULL)
        return rc == -1 ? -1 : 0;
    meta = cJSON_Parse(text);
    free(text);
    base = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "base"));
    want = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "want"));
    path = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "path"));
    rc = 0;
    if (base != NULL && want != NULL && path != NULL && strcmp(base, cc->system->base_url) == 0 &&
        strcmp(want, cc->caldav_calendar ? cc->caldav_calendar : "") == 0) {
        *out = xstrdup(path);
        rc = 1;
    }
    cJSON_Delete(meta);
    return rc;
}

/* ---- requests of a read ---- */

/* One answer of a read's request. */
struct dav_answer {
    int done;
    enum http_outcome outcome;
    long status;
    char *body;
    size_t len;
    char *error;
};

static void
dav_done(void *user, const struct http_response *r)
{
    struct dav_answer *a = user;

    a->outcome = r->outcome;
    a->status = r->status;
    a->body = xstrndup(r->body ? r->body : "", r->body_len);
    a->len = r->body_len;
    a->error = r->error ? xstrdup(r->error) : NULL;
    a->done = 1;
}

static void
dav_answer_fini(struct dav_answer *a)
{
    free(a->body);
    free(a->error);
    memset(a, 0, sizeof(*a));
}

/*
 * Send one request of a read and wait for its answer: the system's auth,
 * Depth, and an XML body. Returns 0 with *a filled (its outcome may be a
 * failure), or -1 when it could not be sent at all (err).
 */
static int
dav_send(const struct engine_poll_job *job, const char *method, const char *url, const char *depth,
         const char *body, struct dav_answer *a, struct error *err)
{
    const struct config_system *sys = job->cc->system;
    struct http_header headers[20];
    char *bearer = NULL;
    size_t n = 0;
    int rc;

    for (size_t i = 0; i < sys->auth_header_count && n < 16; i++, n++) {
        headers[n].name = sys->auth_headers[i].name;
        headers[n].value = secret_bytes(&sys->auth_headers[i].value);
    }
    if (sys->oauth2.enabled) {
        if (job->oauth == NULL)
            return error_set(err, ERROR_INTERNAL, "%s: no OAuth2 token cache", sys->name);
        if (oauth_header(job->oauth, sys, &bearer, err) == -1)
            return -1;
        headers[n].name = "Authorization";
        headers[n++].value = bearer;
    }
    headers[n].name = "Depth";
    headers[n++].value = depth;
    headers[n].name = "Content-Type";
    headers[n++].value = "application/xml; charset=utf-8";
    struct http_request req = {
        .method = method,
        .url = url,
        .headers = headers,
        .header_count = n,
        .body = body,
        .body_len = body != NULL ? strlen(body) : 0,
        .timeout_ms = sys->timeout_ms,
        .max_body = CALDAV_XML_MAX_BYTES,
        .done = dav_done,
        .user = a,
    };
    memset(a, 0, sizeof(*a));
    log_trace(LOG_TRACE_POLL, &(struct log_ctx){.system = sys->name, .collection = job->cc->name},
              "-> %s %s", method, url);
    rc = http_client_submit(job->http, &req, err);
    while (rc == 0 && !a->done)
        (void)http_client_run(job->http, 100);
    if (rc == 0 && a->outcome == HTTP_OUTCOME_RESPONSE && a->status == 401 && bearer != NULL)
        oauth_reject(job->oauth, sys, bearer);
    oauth_value_free(bearer);
    if (rc == 0)
        log_trace(
            LOG_TRACE_POLL, &(struct log_ctx){.system = sys->name, .collection = job->cc->name},
            "<- %s%ld, %zu bytes", a->outcome == HTTP_OUTCOME_RESPONSE ? "HTTP " : "no answer ",
            a->outcome == HTTP_OUTCOME_RESPONSE ? a->status : (long)a->outcome, a->len);
    return rc;
}

/* Say in rep->error why a request's answer stops the read. */
static void
dav_failed(struct engine_poll_report *rep, const char *method, const char *path,
           const struct dav_answer *a)
{
    if (a->outcome != HTTP_OUTCOME_RESPONSE)
        (void)snprintf(rep->error, sizeof(rep->error), "%s %s: %.200s", method, path,
                       a->error ? a->error : "no answer");
    else
        (void)snprintf(rep->error, sizeof(rep->error), "%s %s: HTTP %ld: %.200s", method, path,
                       a->status, a->body ? a->body : "");
}

/*
 * One request whose answer must be a multistatus: *ms filled. Returns 1,
 * 0 with rep->error set (the answer says no), -1 (err).
 */
static int
dav_multistatus(const struct engine_poll_job *job, const char *method, const char *path,
                const char *depth, const char *body, struct caldav_multistatus *ms,
                struct engine_poll_report *rep, struct error *err)
{
    char *url = url_of(job->cc->system, path);
    struct dav_answer a;
    struct error perr = {0};
    int rc = dav_send(job, method, url, depth, body, &a, err);

    free(url);
    if (rc == -1)
        return -1;
    if (a.outcome != HTTP_OUTCOME_RESPONSE || a.status != 207) {
        dav_failed(rep, method, path, &a);
        dav_answer_fini(&a);
        return 0;
    }
    rc = caldav_xml_parse_multistatus(a.body, a.len, path, ms, &perr);
    dav_answer_fini(&a);
    if (rc == -1) {
        (void)snprintf(rep->error, sizeof(rep->error), "%s %s: %.300s", method, path, perr.msg);
        return 0;
    }
    return 1;
}

/* ---- discovery ---- */

/* The last segment of a collection's path ("/ana/work/" -> "work"), into out. */
static void
last_segment(const char *path, char *out, size_t len)
{
    size_t n = strlen(path);
    const char *start;

    while (n > 0 && path[n - 1] == '/')
        n--;
    start = path + n;
    while (start > path && start[-1] != '/')
        start--;
    (void)snprintf(out, len, "%.*s", (int)(path + n - start), start);
}

/*
 * Pick the calendar from the home's members: the one named want (display
 * name or last segment), or the only calendar of events. Returns its path
 * (malloc()ed), or NULL with rep->error saying what there is.
 */
static char *
pick_calendar(const struct caldav_multistatus *ms, const char *want, struct engine_poll_report *rep)
{
    const struct caldav_response *found = NULL;
    char names[300] = "", seg[128];
    int count = 0;

    for (size_t i = 0; i < ms->response_count; i++) {
        const struct caldav_response *r = &ms->responses[i];
        size_t used = strlen(names);

        if (r->is_self || !r->is_calendar || !r->has_vevent || r->path == NULL)
            continue;
        last_segment(r->path, seg, sizeof(seg));
        if (want != NULL && (strcmp(seg, want) == 0 ||
                             (r->displayname != NULL && strcmp(r->displayname, want) == 0)))
            return collection_path(r->path);
        (void)snprintf(names + used, sizeof(names) - used, "%s%s", used ? ", " : "", r->path);
        found = r;
        count++;
    }
    if (want == NULL && count == 1)
        return collection_path(found->path);
    if (want != NULL)
        (void)snprintf(rep->error, sizeof(rep->error),
                       "discovery: no calendar named %.80s; there are: %.200s", want,
                       count ? names : "none");
    else
        (void)snprintf(rep->error, sizeof(rep->error),
                       "discovery: %s; hint: name one in the collection's calendar: %.200s",
                       count ? "the account has several calendars of events" : "no calendar",
                       count ? names : "(none)");
    return NULL;
}

/* The first href that a property gives among ms's responses, or NULL. */
static const char *
found_href(const struct caldav_multistatus *ms, int home)
{
    for (size_t i = 0; i < ms->response_count; i++) {
        const char *h = home ? ms->responses[i].home_href : ms->responses[i].principal_href;

        if (h != NULL && h[0] != '\0')
            return h;
    }
    return NULL;
}

/*
 * Find the calendar (RFC 4791 §7.1 and RFC 5397): the current user's
 * principal at base_url, its calendar-home-set, the home's calendars.
 * Returns 1 with *out (a path, malloc()ed) and the find kept in the store,
 * 0 with rep->error, -1.
 */
static int
discover(const struct engine_poll_job *job, char **out, struct engine_poll_report *rep,
         struct error *err)
{
    const struct config_collection *cc = job->cc;
    struct caldav_multistatus ms = {0};
    char *base = caldav_href_path(cc->system->base_url), *body, *principal = NULL, *home = NULL;
    int rc;

    if (base[0] == '\0') {
        free(base);
        base = xstrdup("/");
    }
    body = caldav_xml_propfind_principal();
    rc = dav_multistatus(job, "PROPFIND", base, "0", body, &ms, rep, err);
    free(body);
    if (rc == 1 && found_href(&ms, 0) == NULL) {
        (void)snprintf(rep->error, sizeof(rep->error),
                       "discovery: PROPFIND %s names no current-user-principal; hint: give the "
                       "collection its calendar: /path/",
                       base);
        rc = 0;
    }
    if (rc == 1)
        principal = caldav_href_path(found_href(&ms, 0));
    caldav_multistatus_fini(&ms);
    if (rc == 1) {
        body = caldav_xml_propfind_home();
        rc = dav_multistatus(job, "PROPFIND", principal, "0", body, &ms, rep, err);
        free(body);
        if (rc == 1 && found_href(&ms, 1) == NULL) {
            (void)snprintf(rep->error, sizeof(rep->error),
                           "discovery: PROPFIND %s names no calendar-home-set", principal);
            rc = 0;
        }
        if (rc == 1)
            home = collection_path(found_href(&ms, 1));
        caldav_multistatus_fini(&ms);
    }
    if (rc == 1) {
        body = caldav_xml_propfind_calendars();
        rc = dav_multistatus(job, "PROPFIND", home, "1", body, &ms, rep, err);
        free(body);
        if (rc == 1 && (*out = pick_calendar(&ms, cc->caldav_calendar, rep)) == NULL)
            rc = 0;
        caldav_multistatus_fini(&ms);
    }
    if (rc == 1 && !job->dry_run) {
        cJSON *meta = cJSON_CreateObject();
        char *text, *key = meta_key(cc);

        cJSON_AddStringToObject(meta, "base", cc->system->base_url);
        cJSON_AddStringToObject(meta, "want", cc->caldav_calendar ? cc->caldav_calendar : "");
        cJSON_AddStringToObject(meta, "path", *out);
        text = cJSON_PrintUnformatted(meta);
        cJSON_Delete(meta);
        if (store_meta_set(job->st, key, text, err) == -1)
            rc = -1;
        else
            log_info(&(struct log_ctx){.system = cc->system->name, .collection = cc->name},
                     "discovery: the calendar of %s is %s", cc->name, *out);
        free(text);
        free(key);
        if (rc == -1) {
            free(*out);
            *out = NULL;
        }
    }
    free(base);
    free(principal);
    free(home);
    return rc;
}

/* ---- reads ---- */

/* What one sync-collection answer asks of the read. */
struct round {
    char **fetch; /* paths of events to fetch */
    size_t fetch_count;
    char **gone; /* paths of removed events */
    size_t gone_count;
};

static void
round_fini(struct round *r)
{
    for (size_t i = 0; i < r->fetch_count; i++)
        free(r->fetch[i]);
    for (size_t i = 0; i < r->gone_count; i++)
        free(r->gone[i]);
    free(r->fetch);
    free(r->gone);
    memset(r, 0, sizeof(*r));
}

/* The ETag a link's base holds, into out ("" when none). */
static void
base_etag(const char *base, char *out, size_t len)
{
    cJSON *b = base != NULL ? cJSON_Parse(base) : NULL;
    const char *etag = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "etag"));

    (void)snprintf(out, len, "%s", etag != NULL ? etag : "");
    cJSON_Delete(b);
}

/*
 * Sort a sync answer's responses: removed events, events whose ETag is the
 * one their base holds (in sync: not fetched), events to fetch. The
 * collection itself and other collections (an href ending in '/') are not
 * events. With seen, every event present is noted for the full read's
 * missing copies. Returns 0 or -1.
 */
static int
sort_changes(const struct engine_poll_job *job, const struct caldav_multistatus *ms, int seen,
             struct round *out, struct engine_poll_report *rep, struct error *err)
{
    out->fetch = xcalloc(ms->response_count + 1, sizeof(*out->fetch));
    out->gone = xcalloc(ms->response_count + 1, sizeof(*out->gone));
    for (size_t i = 0; i < ms->response_count; i++) {
        const struct caldav_response *r = &ms->responses[i];
        size_t n = r->path != NULL ? strlen(r->path) : 0;
        struct link l = {0};
        char etag[256];
        int found;

        if (r->is_self || n == 0 || r->path[n - 1] == '/')
            continue;
        if (r->status == 404) {
            out->gone[out->gone_count++] = xstrdup(r->path);
            continue;
        }
        if (r->status < 200 || r->status >= 300)
            continue;
        if (seen && store_seen_add(job->st, r->path, err) == -1)
            return -1;
        found = store_link_by_ext(job->st, job->cc->name, r->path, &l, err);
        if (found == -1)
            return -1;
        base_etag(found ? l.base : NULL, etag, sizeof(etag));
        link_fini(&l);
        if (r->etag != NULL && etag[0] != '\0' && strcmp(etag, r->etag) == 0) {
            rep->read++;
            rep->unchanged++; /* what concord knows: no need to fetch it */
            continue;
        }
        out->fetch[out->fetch_count++] = xstrdup(r->path);
    }
    return 0;
}

/* An event's record: the appointment its text holds, its href and ETag.
 * NULL (logged) when the text is no event concord can read. */
static cJSON *
event_record(const struct engine_poll_job *job, const char *path, const char *etag,
             const char *text)
{
    struct error perr = {0};
    cJSON *appt = NULL;

    if (text == NULL || appt_from_ical(text, strlen(text), &appt, &perr) == -1) {
        log_warn(&(struct log_ctx){.system = job->cc->system->name, .collection = job->cc->name},
                 "%s is skipped: %s", path, text == NULL ? "no calendar-data" : perr.msg);
        return NULL;
    }
    cJSON_AddStringToObject(appt, "href", path);
    if (etag != NULL)
        cJSON_AddStringToObject(appt, "etag", etag);
    return appt;
}

/*
 * Events that moved: an href concord does not know whose UID is a linked
 * event's is that event, moved (re-imported, renamed by the server; a
 * calendar holds one event per UID, RFC 4791 §5.3.2.1), and its link
 * follows it, so no second record is made and its old href's removal
 * deletes nothing. Not in a dry run. Inside the batch's transaction.
 */
static int
follow_moves(const struct engine_poll_job *job, const cJSON *items, struct error *err)
{
    const struct config_collection *cc = job->cc;
    const cJSON *item;

    if (job->dry_run)
        return 0;
    cJSON_ArrayForEach(item, items)
    {
        const char *href = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "href"));
        const char *uid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "uid"));
        struct link l = {0};
        int found, rc = 0;

        if (href == NULL || uid == NULL)
            continue;
        found = store_link_by_ext(job->st, cc->name, href, &l, err);
        link_fini(&l);
        if (found != 0) {
            if (found == -1)
                return -1;
            continue;
        }
        found = store_link_by_base(job->st, cc->name, "uid", uid, &l, err);
        if (found == 1 && strcmp(l.ext_id, href) != 0) {
            log_info(
                &(struct log_ctx){
                    .system = cc->system->name, .collection = cc->name, .record_id = l.record_id},
                "event %s moved to %s (its UID is the same): its link follows", l.ext_id, href);
            rc = store_link_set(job->st, l.id, href, l.base, clock_now_ms(), err);
        }
        link_fini(&l);
        if (found == -1 || rc == -1)
            return -1;
    }
    return 0;
}

/*
 * Fetch count events (calendar-multiget) and take them in one transaction:
 * journaled where they differ from their base; an event gone meanwhile is a
 * deletion. Returns 1, 0 with rep->error, -1.
 */
static int
fetch_batch(const struct engine_poll_job *job, const char *calendar, char *const *paths,
            size_t count, const char *holder, struct engine_poll_report *rep, struct error *err)
{
    struct caldav_multistatus ms = {0};
    char *body = caldav_xml_multiget((const char *const *)paths, count);
    cJSON *items = cJSON_CreateArray();
    int rc = dav_multistatus(job, "REPORT", calendar, "1", body, &ms, rep, err);

    free(body);
    if (rc != 1) {
        cJSON_Delete(items);
        return rc;
    }
    for (size_t i = 0; i < ms.response_count; i++) {
        const struct caldav_response *r = &ms.responses[i];
        cJSON *rec;

        if (r->is_self || r->path == NULL || r->status == 404)
            continue;
        rec = event_record(job, r->path, r->etag, r->calendar_data);
        if (rec != NULL) {
            cJSON_AddItemToArray(items, rec);
        } else {
            rep->read++;
            rep->skipped++;
        }
    }
    if (store_begin(job->st, err) == -1 || follow_moves(job, items, err) == -1 ||
        engine_poll_take(job, items, 0, rep, err) == -1)
        goto failed;
    for (size_t i = 0; i < ms.response_count; i++) {
        const struct caldav_response *r = &ms.responses[i];

        /* Removed between the sync and the fetch. */
        if (!r->is_self && r->path != NULL && r->status == 404) {
            rep->deleted++;
            if (engine_poll_gone(job, r->path, err) == -1)
                goto failed;
        }
    }
    if (engine_poll_keep(job, NULL, holder, err) == -1 || store_commit(job->st, err) == -1)
        goto failed;
    cJSON_Delete(items);
    caldav_multistatus_fini(&ms);
    engine_poll_page_done(job, rep);
    return 1;
failed:
    store_rollback(job->st);
    cJSON_Delete(items);
    caldav_multistatus_fini(&ms);
    return -1;
}

/*
 * One sync answer: fetch and take the events it names, then, in one
 * transaction, its deletions and its token. Returns 1, 0 (rep->error), -1.
 */
static int
take_round(const struct engine_poll_job *job, const char *calendar,
           const struct caldav_multistatus *ms, int seen, const char *holder,
           struct engine_poll_report *rep, struct error *err)
{
    struct round r = {0};
    cJSON *cur = cJSON_CreateObject();
    char *text;
    int rc = sort_changes(job, ms, seen, &r, rep, err) == -1 ? -1 : 1;

    for (size_t i = 0; rc == 1 && i < r.fetch_count; i += CALDAV_MULTIGET_BATCH) {
        size_t n =
            r.fetch_count - i < CALDAV_MULTIGET_BATCH ? r.fetch_count - i : CALDAV_MULTIGET_BATCH;

        if (job->stop != NULL && atomic_load(job->stop)) {
            (void)snprintf(rep->error, sizeof(rep->error), "stopped part way");
            rc = 0;
            break;
        }
        rc = fetch_batch(job, calendar, r.fetch + i, n, holder, rep, err);
    }
    if (rc != 1) {
        round_fini(&r);
        cJSON_Delete(cur);
        return rc;
    }
    if (ms->sync_token != NULL)
        cJSON_AddStringToObject(cur, "token", ms->sync_token);
    text = value_canonical_text(cur);
    cJSON_Delete(cur);
    if (store_begin(job->st, err) == -1)
        rc = -1;
    for (size_t i = 0; rc == 1 && i < r.gone_count; i++) {
        rep->read++;
        rep->deleted++;
        if (engine_poll_gone(job, r.gone[i], err) == -1)
            rc = -1;
    }
    /* Guarantee: a round's changes and the token after them commit
     * together (or after them: a batch committed alone is read again). */
    if (rc == 1 && (engine_poll_keep(job, ms->sync_token ? text : NULL, holder, err) == -1 ||
                    store_commit(job->st, err) == -1))
        rc = -1;
    if (rc == -1)
        store_rollback(job->st);
    free(text);
    round_fini(&r);
    if (rc == 1) {
        rep->pages++;
        engine_poll_page_done(job, rep);
    }
    return rc;
}

/* The token a cursor holds, malloc()ed, or NULL. */
static char *
cursor_token(const char *cursor)
{
    cJSON *c = cursor != NULL ? cJSON_Parse(cursor) : NULL;
    const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "token"));
    char *out = t != NULL ? xstrdup(t) : NULL;

    cJSON_Delete(c);
    return out;
}

/* Whether a sync answer refuses its token (RFC 6578 §3.2: 403 or 409 with
 * DAV:valid-sync-token). */
static int
token_refused(const struct dav_answer *a)
{
    struct caldav_error_body e = {0};
    int refused;

    if (a->outcome != HTTP_OUTCOME_RESPONSE || (a->status != 403 && a->status != 409))
        return 0;
    refused = caldav_xml_parse_error(a->body, a->len, &e) == 1 &&
              e.condition == CALDAV_CONDITION_VALID_SYNC_TOKEN;
    caldav_error_body_fini(&e);
    return refused;
}

/* The calendar discovery found is gone (404): forget it, so the next read
 * finds it again. Returns 0 or -1. */
static int
forget_calendar(const struct engine_poll_job *job, struct error *err)
{
    char *key = meta_key(job->cc);
    int rc = job->dry_run ? 0 : store_meta_set(job->st, key, NULL, err);

    free(key);
    return rc;
}

int
engine_caldav_read(const struct engine_poll_job *job, const char *cursor, const char *holder,
                   struct engine_poll_report *rep, struct error *err)
{
    const struct config_collection *cc = job->cc;
    struct log_ctx lc = {.system = cc->system->name, .collection = cc->name};
    int64_t started = clock_now_ms();
    char *calendar = NULL, *token = cursor_token(cursor), *url = NULL, *fixed;
    int seen = job->reconcile, rc, more = 1;

    fixed = calendar_configured(cc);
    rc = calendar_known(job->st, cc, &calendar, err);
    if (rc == 0)
        rc = discover(job, &calendar, rep, err);
    if (rc != 1)
        goto out;
    url = url_of(cc->system, calendar);
    for (int rounds = 0; more && rounds < 100000; rounds++) {
        struct caldav_multistatus ms = {0};
        struct error perr = {0};
        struct dav_answer a;
        char *body;

        if (job->stop != NULL && atomic_load(job->stop)) {
            (void)snprintf(rep->error, sizeof(rep->error), "stopped part way");
            break;
        }
        body = caldav_xml_sync_collection(token, 0, 0);
        rc = dav_send(job, "REPORT", url, "0", body, &a, err);
        free(body);
        if (rc == -1)
            goto out;
        if (token != NULL && !rep->resynced && token_refused(&a)) {
            /* The token is gone: read the calendar whole; what the full
             * read does not see was deleted meanwhile. */
            log_info(&lc, "sync token refused (HTTP %ld, valid-sync-token): a full read", a.status);
            dav_answer_fini(&a);
            rep->resynced = seen = 1;
            free(token);
            token = NULL;
            if ((rc = store_seen_reset(job->st, err)) == -1)
                goto out;
            continue;
        }
        if (a.outcome == HTTP_OUTCOME_RESPONSE && a.status == 404 && fixed == NULL &&
            (rc = forget_calendar(job, err)) == -1) {
            dav_answer_fini(&a);
            goto out;
        }
        if (a.outcome != HTTP_OUTCOME_RESPONSE || a.status != 207) {
            dav_failed(rep, "REPORT", calendar, &a);
            dav_answer_fini(&a);
            break;
        }
        rc = caldav_xml_parse_multistatus(a.body, a.len, calendar, &ms, &perr);
        dav_answer_fini(&a);
        if (rc == -1) {
            (void)snprintf(rep->error, sizeof(rep->error), "REPORT %s: %.300s", calendar, perr.msg);
            break;
        }
        rc = take_round(job, calendar, &ms, seen, holder, rep, err);
        /* RFC 6578 §3.6: a 507 on the calendar itself says more changes
         * wait; the report is made again from the token it gave. */
        more = ms.is_truncated;
        if (rc == 1 && more && ms.sync_token == NULL) {
            (void)snprintf(rep->error, sizeof(rep->error),
                           "REPORT %s: a truncated answer (507) without a sync-token", calendar);
            rc = 0;
        }
        if (rc == 1 && more) {
            free(token);
            token = xstrdup(ms.sync_token);
            log_debug(&lc, "sync-collection truncated (507): reading on from its token");
        }
        caldav_multistatus_fini(&ms);
        if (rc != 1)
            goto out;
    }
    rc = 0;
    rep->complete = !more && rep->error[0] == '\0';
    if (seen && rep->complete && engine_poll_missing(job, started, rep, err) == -1)
        rc = -1;
out:
    free(fixed);
    free(url);
    free(calendar);
    free(token);
    return rc == -1 ? -1 : 0;
}

/* ---- writes ---- */

void
engine_caldav_req_free(struct engine_caldav_req *req)
{
    if (req == NULL)
        return;
    free(req->href);
    free(req->wire);
    free(req->if_match);
    free(req);
}

/* A new event's name: a random UUID (RFC 9562, version 4), into out. */
static void
new_uuid(char out[37])
{
    unsigned char b[16];
    size_t got = 0;

    while (got < sizeof(b)) {
        ssize_t n = getrandom(b + got, sizeof(b) - got, 0);

        if (n > 0)
            got += (size_t)n;
        else if (n == -1 && errno != EINTR)
            break;
    }
    for (; got < sizeof(b); got++) /* no getrandom(): the clock's generator */
        b[got] = (unsigned char)(clock_random_unit() * 256.0);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    (void)snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                   b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
                   b[13], b[14], b[15]);
}

/* Whether a time object is an instant shown in a zone ({"at", "tz"}). */
static int
zoned_at(const cJSON *t)
{
    return cJSON_IsObject(t) && cJSON_GetObjectItemCaseSensitive(t, "at") != NULL &&
           cJSON_GetObjectItemCaseSensitive(t, "tz") != NULL;
}

/*
 * The appointment to write: the event as concord knows it (base, NULL for
 * a new one), with what the map writes (desired) over it. A map's null
 * clears a field. A start or end written as an instant without a zone
 * keeps the zone the event was written in, so a moved meeting stays in
 * its zone; an organizer's fields are taken one by one. href and etag are
 * not the event's own. A new cJSON object.
 */
cJSON *
engine_caldav_compose(const cJSON *desired, const cJSON *base)
{
    cJSON *out = cJSON_IsObject(base) ? cJSON_Duplicate(base, 1) : cJSON_CreateObject();
    const cJSON *f;

    cJSON_DeleteItemFromObjectCaseSensitive(out, "href");
    cJSON_DeleteItemFromObjectCaseSensitive(out, "etag");
    cJSON_ArrayForEach(f, desired)
    {
        cJSON *old = cJSON_GetObjectItemCaseSensitive(out, f->string), *nv;
        int is_time = strcmp(f->string, "start") == 0 || strcmp(f->string, "end") == 0;

        if (strcmp(f->string, "href") == 0 || strcmp(f->string, "etag") == 0)
            continue;
        if (cJSON_IsNull(f)) {
            cJSON_DeleteItemFromObjectCaseSensitive(out, f->string);
            continue;
        }
        nv = cJSON_Duplicate(f, 1);
        if (is_time && cJSON_IsObject(f) && cJSON_GetObjectItemCaseSensitive(f, "at") != NULL &&
            cJSON_GetObjectItemCaseSensitive(f, "tz") == NULL && zoned_at(old))
            cJSON_AddItemToObject(nv, "tz",
                                  cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(old, "tz"), 1));
        if (strcmp(f->string, "organizer") == 0 && cJSON_IsObject(f) && cJSON_IsObject(old)) {
            const cJSON *k;

            cJSON_Delete(nv);
            nv = cJSON_Duplicate(old, 1);
            cJSON_ArrayForEach(k, f)
            {
                cJSON_DeleteItemFromObjectCaseSensitive(nv, k->string);
                if (!cJSON_IsNull(k))
                    cJSON_AddItemToObject(nv, k->string, cJSON_Duplicate(k, 1));
            }
        }
        cJSON_DeleteItemFromObjectCaseSensitive(out, f->string);
        cJSON_AddItemToObject(out, f->string, nv);
    }
    return out;
}

/* Park job j with a mapping problem (writer, in a transaction). */
static int
park(struct engine *e, const struct job *j, enum inbox_kind kind, const char *reason, int status,
     const char *response, struct error *err)
{
    struct inbox_entry entry = {
        .kind = kind,
        .system = j->system,
        .collection = j->collection,
        .record_id = j->record_id,
        .job_id = j->id,
        .reason = (char *)(uintptr_t)reason,
        .http_status = status,
        .response = (char *)(uintptr_t)response,
        .attempts = j->attempts,
        .created_at_ms = clock_now_ms(),
    };

    log_info(&(struct log_ctx){.system = j->system,
                               .collection = j->collection,
                               .record_id = j->record_id,
                               .job_id = j->id},
             "job parked in the inbox (%s): %s", inbox_kind_name(kind), reason);
    return engine_park(e, &entry, err);
}

/* Keep expect (JSON; NULL: none) with job j. */
static int
set_expect(struct engine *e, int64_t job_id, cJSON *expect, struct error *err)
{
    char *text = expect != NULL ? cJSON_PrintUnformatted(expect) : NULL;
    int rc = store_job_set_expect(e->st, job_id, text, err);

    free(text);
    return rc;
}

/* Put j off by ms without a request. Returns 0 or -1. */
static int
put_off(struct engine *e, const struct job *j, int64_t ms, struct error *err)
{
    return store_job_set(e->st, j->id, JOB_PENDING, j->attempts, clock_now_ms() + ms, err) == -1
               ? -1
               : 0;
}

/*
 * A create's href: the one its job chose before (a create sent again goes
 * to the same place), or a new one in the calendar, kept with the job
 * before anything is sent. Returns 1 with *out, 0 when the calendar is not
 * known yet (the job is put off), -1.
 */
static int
create_href(struct engine *e, const struct job *j, const struct engine_coll *c, const cJSON *expect,
            char **out, struct error *err)
{
    const char *kept = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(expect, "href"));
    char *calendar = NULL, uuid[37];
    cJSON *x;
    int rc;

    if (kept != NULL) {
        *out = xstrdup(kept);
        return 1;
    }
    rc = calendar_known(e->st, c->cfg, &calendar, err);
    if (rc != 1) {
        if (rc == 0)
            log_debug(&(struct log_ctx){.system = j->system, .job_id = j->id},
                      "a create waits for the discovery of %s's calendar (the poll)", c->cfg->name);
        return rc == -1 ? -1 : put_off(e, j, CALDAV_DISCOVERY_WAIT_MS, err);
    }
    new_uuid(uuid);
    *out = xasprintf("%s%s.ics", calendar, uuid);
    free(calendar);
    /* Guarantee: no duplicate create. The href is on disk before the PUT
     * is sent, so a create whose answer was lost goes to it again. */
    x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "href", *out);
    rc = set_expect(e, j->id, x, err);
    cJSON_Delete(x);
    if (rc == -1) {
        free(*out);
        *out = NULL;
    }
    return rc == -1 ? -1 : 1;
}

/* The uid of a new event: its href's name ("/cal/U.ics" -> "U"). */
static char *
uid_of(const char *href)
{
    const char *name = strrchr(href, '/');
    size_t n;

    name = name != NULL ? name + 1 : href;
    n = strlen(name);
    if (n > 4 && strcmp(name + n - 4, ".ics") == 0)
        n -= 4;
    return xstrndup(name, n);
}

/*
 * The PUT of an event: the appointment to write (normalised), its text,
 * and the record a success leaves as the base (*desired: the appointment
 * and href). Returns 1 with req->wire set, 0 when the job was parked (the
 * map gives no appointment), -1.
 */
static int
put_event(struct engine *e, const struct job *j, cJSON *appt, struct engine_caldav_req *req,
          cJSON **desired, struct error *err)
{
    struct error merr = {0};
    cJSON *norm = NULL;
    char reason[700];

    if (appt_normalize(appt, &norm, &merr) == -1 ||
        appt_to_ical(norm, clock_now_ms() / 1000, &req->wire, &merr) == -1) {
        cJSON_Delete(norm);
        (void)snprintf(reason, sizeof(reason), "no event can be written: %s", merr.msg);
        return park(e, j, INBOX_MAPPING, reason, 0, NULL, err) == -1 ? -1 : 0;
    }
    cJSON_AddStringToObject(norm, "href", req->href);
    cJSON_Delete(*desired);
    *desired = norm;
    req->method = "PUT";
    return 1;
}

/* The event's ETag as concord knows it: base's "etag", or NULL. */
static const char *
etag_in(const cJSON *base)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(base, "etag"));
}

/*
 * After a re-read: whether its change (expect's "after") was merged.
 * Returns 1 when it was (or is unknown: gone from the journal), 0 when not
 * yet (the job is put off), -1.
 */
static int
reread_merged(struct engine *e, const struct job *j, const cJSON *after, struct error *err)
{
    enum change_state state = CHANGE_NEW;
    int rc = store_journal_state(e->st, (int64_t)after->valuedouble, &state, err);

    if (rc == -1)
        return -1;
    if (rc == 1 && state == CHANGE_NEW)
        return put_off(e, j, CALDAV_AFTER_WAIT_MS, err) == -1 ? -1 : 0;
    return 1;
}

/* A request to read the event again (GET): *desired goes. */
static int
reread(const struct link *l, cJSON **desired, struct engine_caldav_req *req)
{
    cJSON_Delete(*desired);
    *desired = NULL;
    req->step = ENGINE_CALDAV_REREAD;
    req->method = "GET";
    req->href = xstrdup(l->ext_id);
    return 1;
}

int
engine_caldav_claim(struct engine *e, const struct job *j, const struct engine_coll *c,
                    const struct link *l, enum job_op op, cJSON **desired,
                    struct engine_caldav_req **out, struct error *err)
{
    cJSON *expect = j->expect != NULL ? cJSON_Parse(j->expect) : NULL, *base = NULL, *appt;
    const cJSON *after = cJSON_GetObjectItemCaseSensitive(expect, "after");
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(expect, "state");
    int gone = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(expect, "gone")), rc = 1;
    struct engine_caldav_req *req = xcalloc(1, sizeof(*req));
    const char *uid;

    req->step = ENGINE_CALDAV_WRITE;
    if (cJSON_IsNumber(after) && (rc = reread_merged(e, j, after, err)) != 1)
        goto out;
    if (!cJSON_IsNumber(after) && l->ext_id != NULL &&
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(expect, "reread"))) {
        rc = reread(l, desired, req);
        goto out;
    }
    /* What the event holds, as far as concord knows: what the re-read
     * found (merged into the record by now), else the link's base. */
    base = cJSON_IsObject(state) ? cJSON_Duplicate(state, 1)
           : l->base != NULL     ? cJSON_Parse(l->base)
                                 : NULL;
    if (op != JOB_OP_UPSERT && gone) {
        /* Deleted in the calendar already: nothing is left to delete or
         * to cancel. */
        rc = store_link_gone(e->st, l->id, j->record_id, clock_now_ms(), "the copy was deleted",
                             err) == -1 ||
                     store_job_done(e->st, j->id, err) == -1
                 ? -1
                 : 0;
        goto out;
    }
    if (op == JOB_OP_DELETE) {
        req->method = "DELETE";
        req->href = xstrdup(l->ext_id);
        req->if_match = etag_in(base) ? xstrdup(etag_in(base)) : NULL;
        goto out;
    }
    if (l->ext_id == NULL) {
        if ((rc = create_href(e, j, c, expect, &req->href, err)) != 1)
            goto out;
        appt = engine_caldav_compose(*desired, NULL);
        uid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(appt, "uid"));
        if (uid == NULL || uid[0] == '\0') {
            char *made = uid_of(req->href);

            cJSON_DeleteItemFromObjectCaseSensitive(appt, "uid");
            cJSON_AddStringToObject(appt, "uid", made);
            free(made);
        }
        req->if_none_match = 1;
        rc = put_event(e, j, appt, req, desired, err);
        cJSON_Delete(appt);
        goto out;
    }
    if (!gone && (base == NULL || etag_in(base) == NULL)) {
        /* Its ETag is not known (a copy matched by its keys, a server that
         * gave none): read it first, so that nothing there is overwritten
         * unseen. */
        rc = reread(l, desired, req);
        goto out;
    }
    appt = engine_caldav_compose(*desired, base);
    if (!gone) {
        cJSON *known = engine_caldav_compose(NULL, base);
        int same = appt_equal(appt, known);

        cJSON_Delete(known);
        if (same) {
            /* The event holds this already: its base is what was read. */
            char *text = value_canonical_text(base);

            rc = (cJSON_IsObject(state) &&
                  store_link_set(e->st, l->id, NULL, text, clock_now_ms(), err) == -1) ||
                         store_job_done(e->st, j->id, err) == -1
                     ? -1
                     : 0;
            free(text);
            cJSON_Delete(appt);
            goto out;
        }
    }
    req->href = xstrdup(l->ext_id);
    if (gone)
        req->if_none_match = 1; /* deleted there, the record lives: made again */
    else
        req->if_match = xstrdup(etag_in(base));
    rc = put_event(e, j, appt, req, desired, err);
    cJSON_Delete(appt);
out:
    cJSON_Delete(expect);
    cJSON_Delete(base);
    if (rc == 1)
        *out = req;
    else
        engine_caldav_req_free(req);
    return rc;
}

void
engine_caldav_fill(struct engine *e, struct engine_delivery *d, struct engine_caldav_req *req)
{
    const struct engine_coll *c = &e->colls[d->coll_index];
    const struct engine_sys *sys = &e->systems[c->sys_index];

    free(d->method);
    d->method = xstrdup(req->method);
    free(d->url);
    d->url = url_of(c->cfg->system, req->href);
    free(d->path);
    d->path = xstrdup(req->href);
    if (d->is_create) {
        free(d->ext_id);
        d->ext_id = xstrdup(req->href);
    }
    free(d->wire);
    d->wire = req->wire;
    req->wire = NULL;
    if (req->step == ENGINE_CALDAV_REREAD) {
        free(d->body);
        d->body = NULL;
    }
    free(d->cond);
    d->cond = req->if_match;
    req->if_match = NULL;
    d->caldav = (int)req->step;
    /* The system's auth, the body's type and the condition; one more
     * for an OAuth2 token (submit_all()). */
    free(d->headers);
    d->headers = xcalloc(sys->header_count + 4, sizeof(*d->headers));
    memcpy(d->headers, sys->headers, sys->header_count * sizeof(*d->headers));
    d->header_count = sys->header_count;
    if (d->wire != NULL) {
        d->headers[d->header_count].name = "Content-Type";
        d->headers[d->header_count++].value = "text/calendar; charset=utf-8";
    }
    if (req->if_none_match) {
        d->headers[d->header_count].name = "If-None-Match";
        d->headers[d->header_count++].value = "*";
    } else if (d->cond != NULL) {
        d->headers[d->header_count].name = "If-Match";
        d->headers[d->header_count++].value = d->cond;
    }
    engine_caldav_req_free(req);
}

char *
engine_caldav_base(const struct engine_delivery *d)
{
    cJSON *base = d->body != NULL ? cJSON_Parse(d->body) : NULL;
    char *text;

    if (!cJSON_IsObject(base)) {
        cJSON_Delete(base);
        base = cJSON_CreateObject();
    }
    cJSON_DeleteItemFromObjectCaseSensitive(base, "etag");
    if (d->etag != NULL && d->etag[0] != '\0')
        cJSON_AddStringToObject(base, "etag", d->etag);
    text = value_canonical_text(base);
    cJSON_Delete(base);
    return text;
}

/* Journal body (the writer's handle, in its transaction); *seq its place. */
static int
journal(struct engine *e, const struct engine_coll *c, cJSON *body, int64_t now_ms, int64_t *seq,
        struct error *err)
{
    char *text = value_canonical_text(body);
    int rc =
        store_journal_add(e->st, c->cfg->system->name, NULL, now_ms, text, strlen(text), seq, err);

    free(text);
    cJSON_Delete(body);
    return rc == -1 ? -1 : 0;
}

/*
 * The event a re-read found (or its absence): journaled as the calendar's
 * news, which the merge takes as it takes a poll's; the job writes once
 * that is done (engine_caldav_claim()).
 */
static int
read_back(struct engine *e, struct engine_delivery *d, struct job *j, int64_t now_ms,
          struct error *err)
{
    const struct engine_coll *c = &e->colls[d->coll_index];
    cJSON *body = cJSON_CreateObject(), *expect = cJSON_CreateObject(), *appt = NULL;
    struct error perr = {0};
    char reason[600];
    int64_t seq = 0;
    int rc;

    cJSON_AddStringToObject(body, "@poll", c->cfg->name);
    if (d->status == 404 || d->status == 410) {
        cJSON_AddStringToObject(body, "@missing", d->ext_id);
        cJSON_AddTrueToObject(expect, "gone");
    } else if (d->resp_truncated ||
               appt_from_ical(d->resp_body, strlen(d->resp_body), &appt, &perr) == -1) {
        cJSON_Delete(body);
        cJSON_Delete(expect);
        (void)snprintf(reason, sizeof(reason),
                       "GET %.200s: the event changed since concord read it, and what it holds "
                       "now cannot be read: %.300s",
                       d->path, d->resp_truncated ? "larger than 256 KiB" : perr.msg);
        return park(e, j, INBOX_FAILED, reason, (int)d->status, d->resp_body, err);
    } else {
        cJSON_AddStringToObject(appt, "href", d->ext_id);
        if (d->etag != NULL)
            cJSON_AddStringToObject(appt, "etag", d->etag);
        cJSON_AddItemToObject(expect, "state", cJSON_Duplicate(appt, 1));
        cJSON_AddItemToObject(body, "record", appt);
    }
    if (journal(e, c, body, now_ms, &seq, err) == -1) {
        cJSON_Delete(expect);
        return -1;
    }
    cJSON_AddNumberToObject(expect, "after", (double)seq);
    rc = set_expect(e, j->id, expect, err);
    cJSON_Delete(expect);
    log_info(&(struct log_ctx){.system = j->system,
                               .collection = j->collection,
                               .record_id = j->record_id,
                               .job_id = j->id},
             "%s read again (%s): merged first (change %lld), then written", d->path,
             d->status == 200 ? "it changed" : "it is gone", (long long)seq);
    return rc == -1 ? -1 : put_off(e, j, 0, err);
}

/*
 * A write met a newer event (412): read it again, merge, then write. A
 * create that met one at its href made it before (its answer was lost):
 * the event is linked as the record's copy, with what was sent as its
 * base, and read again the same way.
 */
static int
changed_there(struct engine *e, struct engine_delivery *d, struct job *j, const char *href,
              const char *base, int64_t now_ms, struct error *err)
{
    const struct engine_coll *c = &e->colls[d->coll_index];
    const struct retry_policy *p = &c->cfg->system->retry;
    char reason[700];
    struct link other = {0};
    cJSON *x;
    int rc;

    if (retry_exhausted(p, j->attempts, j->created_at_ms, now_ms)) {
        (void)snprintf(reason, sizeof(reason),
                       "gave up after %d attempts: %s %s kept meeting a newer event (HTTP %ld)",
                       j->attempts, d->method, d->path, d->status);
        return park(e, j, INBOX_FAILED, reason, (int)d->status, d->resp_body, err);
    }
    if (href != NULL) {
        rc = store_link_by_ext(e->st, c->cfg->name, href, &other, err);
        if (rc == 1 && other.id != d->link_id) {
            (void)snprintf(reason, sizeof(reason),
                           "%s %s answered %ld: the event is %s, which concord links to record "
                           "%lld: two records would share one copy",
                           d->method, d->path, d->status, href, (long long)other.record_id);
            link_fini(&other);
            return park(e, j, INBOX_FAILED, reason, (int)d->status, d->resp_body, err);
        }
        link_fini(&other);
        if (rc == -1 || store_link_set(e->st, d->link_id, href, base, now_ms, err) == -1 ||
            engine_copy_found(e, c->cfg->name, href, d->record_id, err) == -1 ||
            store_job_set_sent(e->st, j->id, 0, err) == -1)
            return -1;
    }
    x = cJSON_CreateObject();
    cJSON_AddTrueToObject(x, "reread");
    rc = set_expect(e, j->id, x, err);
    cJSON_Delete(x);
    log_info(&(struct log_ctx){.system = j->system,
                               .collection = j->collection,
                               .record_id = j->record_id,
                               .job_id = j->id},
             "%s %s answered %ld: the event changed since concord read it; reading it again",
             d->method, d->path, d->status);
    return rc == -1 ? -1 : put_off(e, j, 0, err);
}

/* The event a create's no-uid-conflict names (403/409, RFC 4791 §5.3.2.1),
 * malloc()ed, or NULL. */
static char *
uid_taken_by(const struct engine_delivery *d)
{
    struct caldav_error_body eb = {0};
    char *href = NULL;

    if ((d->status == 403 || d->status == 409) && d->resp_body != NULL &&
        caldav_xml_parse_error(d->resp_body, strlen(d->resp_body), &eb) == 1 &&
        eb.condition == CALDAV_CONDITION_NO_UID_CONFLICT && eb.href != NULL)
        href = caldav_href_path(eb.href);
    caldav_error_body_fini(&eb);
    return href;
}

int
engine_caldav_apply(struct engine *e, struct engine_delivery *d, struct job *j, int64_t now_ms,
                    struct error *err)
{
    char *taken;
    int rc;

    if (d->outcome != HTTP_OUTCOME_RESPONSE)
        return 0;
    if (d->caldav == ENGINE_CALDAV_REREAD) {
        if ((d->status >= 200 && d->status < 300) || d->status == 404 || d->status == 410)
            return read_back(e, d, j, now_ms, err) == -1 ? -1 : 1;
        return 0;
    }
    /* A server may say an update's event is gone with a 404 instead. */
    if (d->status == 412 || (d->status == 404 && !d->is_create && d->op != JOB_OP_DELETE)) {
        /* A create found an event at its href: its own, sent before. */
        char *base = d->is_create && d->body ? xstrdup(d->body) : NULL;

        rc = changed_there(e, d, j, d->is_create ? d->ext_id : NULL, base, now_ms, err);
        free(base);
        return rc == -1 ? -1 : 1;
    }
    if (d->is_create && (taken = uid_taken_by(d)) != NULL) {
        /* The UID is another event's: that event is the copy (with no
         * base: fields where they differ are conflicts, as on first contact). */
        rc = changed_there(e, d, j, taken, NULL, now_ms, err);
        free(taken);
        return rc == -1 ? -1 : 1;
    }
    if (d->status >= 200 && d->status < 300 && j->expect != NULL &&
        store_job_set_expect(e->st, j->id, NULL, err) == -1)
        return -1;
    return 0;
}
