/* SPDX-License-Identifier: MIT */

/*
 * The calendar kinds (docs/calendars.md): caldav (a CalDAV server, its
 * calendars read by sync-collection), google_calendar and microsoft_graph
 * (OAuth2 with a refresh token, push registrations under public_url).
 * Their collections hold canonical appointments; the engine's shapes and
 * engine/caldav.c make the requests.
 */

#include "config/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"
#include "core/xmalloc.h"

/*
 * systems.X of kind caldav: a CalDAV server (RFC 4791), whose calendars are
 * collections of appointments (docs/calendars.md). base_url is the server,
 * where discovery starts; username and password give Basic auth, or auth
 * gives any other kind (a bearer, OAuth2). A CalDAV server sends no
 * webhooks: a poll reads each calendar's changes.
 */
void
config_caldav_system(struct config_ctx *c, const struct config_node *v, const char *path,
                     struct config_system *s)
{
    const struct config_node *user = config_node_get(v, "username"),
                             *pass = config_node_get(v, "password");

    s->profile = CONFIG_PROFILE_CALDAV;
    if (config_node_get(v, "base_url") == NULL)
        config_missing(c, v, path, "base_url");
    else
        config_parse_base_url(c, config_node_get(v, "base_url"), path, s);
    if (config_node_key(v, "webhook") != NULL)
        CONFIG_PROBLEM(
            c, config_node_key(v, "webhook"),
            "%s.webhook: CalDAV servers send no webhooks; hint: remove webhook, and give "
            "each collection a poll (it reads what changed by sync-collection)",
            path);
    if (user != NULL && pass == NULL)
        config_missing(c, v, path, "password");
    if (pass != NULL && user == NULL)
        config_missing(c, v, path, "username");
    if (user != NULL && config_node_key(v, "auth") != NULL)
        CONFIG_PROBLEM(c, config_node_key(v, "auth"),
                       "%s.auth: username and password are the system's Basic auth already; hint: "
                       "keep one of them",
                       path);
    else if (user != NULL && pass != NULL)
        config_basic_auth(c, path, user, "password", pass, s);
}

/*
 * A collection of a caldav system: one calendar, whose records are
 * canonical appointments (docs/calendars.md) with their href (the copy's
 * id) and etag. concord reads it by sync-collection and writes each event
 * with PUT (If-None-Match / If-Match) and DELETE (engine/caldav.c), so the
 * endpoints are its own: set here as markers, and refused when written.
 */
void
config_caldav_collection(struct config_ctx *c, const struct config_node *v, const char *path,
                         struct config_collection *col)
{
    static const char *const not_here[] = {"id",
                                           "record",
                                           "match",
                                           "create",
                                           "update",
                                           "delete",
                                           "created_id",
                                           "idempotency_header",
                                           "idempotency_field",
                                           "lookup",
                                           "lookup_result",
                                           "lookup_missing",
                                           "restore",
                                           "numbering",
                                           "on_conflict",
                                           "hint",
                                           "deleted_id",
                                           "string_values",
                                           "body"};
    const struct config_node *n;

    for (size_t i = 0; i < ARRAY_COUNT(not_here); i++)
        if (config_node_key(v, not_here[i]) != NULL)
            CONFIG_PROBLEM(
                c, config_node_key(v, not_here[i]),
                "%s.%s: a caldav collection is a calendar: concord reads it by "
                "sync-collection and writes its events with PUT and DELETE, each event's "
                "href its id; hint: remove %s",
                path, not_here[i], not_here[i]);
    if ((n = config_node_get(v, "calendar")) != NULL &&
        (n->kind != CONFIG_NODE_SCALAR || config_node_is_null(n) || n->value[0] == '\0'))
        CONFIG_PROBLEM(
            c, n, "%s.calendar: expected the calendar's path (/ana/work/), URL or display name",
            path);
    else
        config_opt_str(c, v, path, "calendar", &col->caldav_calendar);
    if (n == NULL && config_node_get(v, "poll") == NULL && config_node_get(v, "map_out") != NULL)
        CONFIG_PROBLEM(c, v,
                       "%s: without calendar, the calendar is found by discovery, which the poll "
                       "does, and this collection has no poll; hint: calendar: /user/calendar/, or "
                       "poll: {every: 1m}",
                       path);
    free(col->id_path);
    col->id_path = xstrdup("href");
    free(col->created_id_path);
    col->created_id_path = xstrdup("href");
    if (config_node_get(v, "map_out") != NULL) {
        /* Markers for the engine's plan; caldav.c makes each request. */
        config_set_endpoint(&col->create, "PUT", xstrdup("/"));
        config_set_endpoint(&col->update, "PUT", xstrdup("/"));
        config_set_endpoint(&col->remove, "DELETE", xstrdup("/"));
    }
}

/* The parameters Google refuses beside a syncToken (EXTERNAL-APIS.md §3.4). */
static const char *const gcal_token_drop[] = {
    "iCalUID", "orderBy",   "privateExtendedProperty", "q", "sharedExtendedProperty", "timeMin",
    "timeMax", "updatedMin"};
static const char *const push_keys[] = {"ttl", "renew_before"};

/* s percent-encoded for one path segment (a calendar id: "c_team@group..."). */
static char *
path_segment(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = xmalloc(strlen(s) * 3 + 1), *o = out;

    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~' || *p == '@') {
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

/* The OAuth2 part of a calendar kind: client_id, client_secret, refresh_token
 * (or `concord auth`), and the provider's endpoints unless given. */
static void
calendar_oauth(struct config_ctx *c, const struct config_node *v, const char *path,
               struct config_system *s, char *token_url, char *authorize_url, const char *scope)
{
    struct config_oauth2 *o = &s->oauth2;
    const struct config_node *n;
    char *p;

    o->enabled = 1;
    o->grant = CONFIG_GRANT_REFRESH_TOKEN;
    o->margin_ms = 60000;
    o->scope = xstrdup(scope);
    config_oauth_client(c, v, path, o);
    if ((n = config_node_get(v, "token_url")) != NULL) {
        free(token_url);
        token_url = NULL;
        p = config_join(path, "token_url");
        config_get_url_or_path(c, n, p, &token_url);
        free(p);
    }
    if ((n = config_node_get(v, "authorize_url")) != NULL) {
        free(authorize_url);
        authorize_url = NULL;
        p = config_join(path, "authorize_url");
        config_get_url_or_path(c, n, p, &authorize_url);
        free(p);
    }
    o->token_url = token_url;
    o->authorize_url = authorize_url;
}

/*
 * public_url and push: the address Google's channels and Graph's
 * subscriptions announce (concord's webhook path under it), how long each
 * lives and how long before its end it is replaced or renewed.
 */
static void
calendar_push(struct config_ctx *c, const struct config_node *v, const char *path,
              struct config_system *s, int64_t ttl_ms)
{
    const struct config_node *pu = config_node_get(v, "public_url"),
                             *push = config_node_get(v, "push");
    char *p, *url = NULL;
    size_t len;

    if (config_node_key(v, "webhook") != NULL)
        CONFIG_PROBLEM(
            c, config_node_key(v, "webhook"),
            "%s.webhook: a %s system's webhook is /webhooks/%s under its public_url; hint: "
            "remove webhook",
            path, config_profile_name(s->profile), s->name);
    s->push.ttl_ms = ttl_ms;
    s->push.renew_before_ms = 3600000;
    if (push != NULL) {
        p = config_join(path, "push");
        if (pu == NULL)
            CONFIG_PROBLEM(
                c, config_node_key(v, "push"),
                "%s: push registrations announce public_url, and there is none; hint: add "
                "public_url: https://sync.example.com, or remove push",
                p);
        if (config_want_map(c, push, p)) {
            config_check_keys(c, push, p, push_keys, ARRAY_COUNT(push_keys));
            config_opt_duration(c, push, p, "ttl", 1000, &s->push.ttl_ms);
            config_opt_duration(c, push, p, "renew_before", 100, &s->push.renew_before_ms);
        }
        if (config_node_get(push, "renew_before") == NULL &&
            s->push.renew_before_ms > s->push.ttl_ms / 2)
            s->push.renew_before_ms = s->push.ttl_ms / 2;
        if (s->push.renew_before_ms >= s->push.ttl_ms)
            CONFIG_PROBLEM(
                c, push,
                "%s: renew_before must be shorter than ttl, or a registration is replaced "
                "as soon as it is made; hint: renew_before: 1h",
                p);
        free(p);
    }
    if (pu == NULL)
        return;
    p = config_join(path, "public_url");
    if (config_get_str(c, pu, p, &url) == 0) {
        len = strlen(url);
        while (len > 0 && url[len - 1] == '/')
            url[--len] = '\0';
        if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) {
            CONFIG_PROBLEM(c, pu,
                           "%s: expected concord's address as the provider calls it, starting with "
                           "https:// (behind a TLS-terminating proxy); hint: public_url: "
                           "https://sync.example.com",
                           p);
        } else {
            s->push.enabled = 1;
            s->push.url = xasprintf("%s%s", url, s->webhook.path);
            s->webhook.enabled = 1;
        }
    }
    free(url);
    free(p);
}

/*
 * systems.X of kind google_calendar: one calendar (`calendar`, default
 * primary) of a Google account, by OAuth2 with a refresh token, read by
 * sync token and written as events; with public_url, watch channels.
 */
void
config_gcal_system(struct config_ctx *c, const struct config_node *v, const char *path,
                   struct config_system *s)
{
    char *cal = NULL, *seg;

    config_profile_base(c, v, path, s, CONFIG_PROFILE_GOOGLE_CALENDAR,
                        "https://www.googleapis.com/calendar/v3", "client_id and client_secret");
    calendar_oauth(c, v, path, s, xstrdup("https://oauth2.googleapis.com/token"),
                   xstrdup("https://accounts.google.com/o/oauth2/v2/auth"),
                   "https://www.googleapis.com/auth/calendar");
    config_opt_str(c, v, path, "calendar", &cal);
    seg = path_segment(cal != NULL && cal[0] != '\0' ? cal : "primary");
    s->push.resource = xasprintf("/calendars/%s/events", seg);
    free(seg);
    free(cal);
    calendar_push(c, v, path, s, 7 * 86400000LL);
    if (config_node_get(v, "rate_limit") == NULL) {
        s->rate_limit.rate_per_s = 10; /* 600 requests a minute per user */
        s->rate_limit.burst = 10;
    }
}

/*
 * systems.X of kind microsoft_graph: one mailbox's calendar (`user`, default
 * me; `calendar`, default the default one) by OAuth2 with a refresh token
 * (Microsoft rotates it on every use: the store keeps the new one), read by
 * calendarView/delta and written as events; with public_url, change
 * notification subscriptions. Bodies are asked for as text.
 */
void
config_graph_system(struct config_ctx *c, const struct config_node *v, const char *path,
                    struct config_system *s)
{
    char *tenant = NULL, *user = NULL, *cal = NULL, *mb, *seg;
    struct config_header *h;

    config_profile_base(c, v, path, s, CONFIG_PROFILE_MICROSOFT_GRAPH,
                        "https://graph.microsoft.com/v1.0", "client_id and client_secret");
    config_opt_str(c, v, path, "tenant", &tenant);
    seg = path_segment(tenant != NULL && tenant[0] != '\0' ? tenant : "common");
    calendar_oauth(c, v, path, s,
                   xasprintf("https://login.microsoftonline.com/%s/oauth2/v2.0/token", seg),
                   xasprintf("https://login.microsoftonline.com/%s/oauth2/v2.0/authorize", seg),
                   "offline_access https://graph.microsoft.com/Calendars.ReadWrite");
    free(seg);
    config_opt_str(c, v, path, "user", &user);
    if (user == NULL || user[0] == '\0' || strcmp(user, "me") == 0) {
        mb = xstrdup("me");
    } else {
        seg = path_segment(user);
        mb = xasprintf("users/%s", seg);
        free(seg);
    }
    config_opt_str(c, v, path, "calendar", &cal);
    if (cal != NULL && cal[0] != '\0') {
        seg = path_segment(cal);
        s->push.resource = xasprintf("%s/calendars/%s/events", mb, seg);
        free(seg);
    } else {
        s->push.resource = xasprintf("%s/events", mb);
    }
    free(mb);
    free(user);
    free(cal);
    free(tenant);
    calendar_push(c, v, path, s, 10070 * 60000LL);
    /* Plain-text bodies, not HTML (graph_event.h). */
    s->auth_headers = xcalloc(1, sizeof(*s->auth_headers));
    s->auth_header_count = 1;
    h = &s->auth_headers[0];
    h->name = xstrdup("Prefer");
    h->value.ref = xstrdup("(the microsoft_graph kind)");
    h->value.value = xstrdup("outlook.body-content-type=\"text\"");
    h->value.len = strlen(h->value.value);
    if (config_node_get(v, "max_in_flight") == NULL)
        s->max_in_flight = 4; /* Graph's 4 concurrent requests per mailbox */
}

/* The collections the calendar kinds know. */
static const char *const calendar_collections[] = {"events"};

/* A google_calendar collection's poll: events.list by sync token, paged by
 * pageToken, with the parameters Google refuses beside a token left out. */
static void
gcal_poll(const struct config_node *v, struct config_collection *col, const char *events)
{
    struct config_poll *pl = &col->poll;
    const struct config_node *poll = config_node_get(v, "poll");

    if (pl->list.method == NULL) {
        pl->list.method = xstrdup("GET");
        pl->list.path = xasprintf("%s?maxResults=250", events);
    }
    if (pl->items_path == NULL)
        pl->items_path = xstrdup("items");
    if (config_node_get(poll, "cursor") == NULL) {
        pl->cursor = CONFIG_CURSOR_SYNC_TOKEN;
        pl->cursor_param = xstrdup("syncToken");
        pl->token_path = xstrdup("nextSyncToken");
        pl->resync_status = xcalloc(1, sizeof(*pl->resync_status));
        pl->resync_status[0] = 410;
        pl->resync_status_count = 1;
    }
    if (pl->cursor == CONFIG_CURSOR_SYNC_TOKEN && pl->token_drop == NULL) {
        pl->token_drop = xcalloc(ARRAY_COUNT(gcal_token_drop), sizeof(*pl->token_drop));
        for (size_t i = 0; i < ARRAY_COUNT(gcal_token_drop); i++)
            pl->token_drop[pl->token_drop_count++] = xstrdup(gcal_token_drop[i]);
    }
    if (config_node_get(poll, "page") == NULL) {
        pl->page = CONFIG_PAGE_CURSOR;
        pl->page_param = xstrdup("pageToken");
        pl->next_path = xstrdup("nextPageToken");
    }
}

/* A microsoft_graph collection's poll: calendarView/delta over a window
 * from 30 days back to a year ahead, fixed at each full round. */
static void
graph_poll(const struct config_node *v, struct config_collection *col, const char *events)
{
    struct config_poll *pl = &col->poll;
    size_t len = strlen(events) - strlen("/events");

    if (pl->list.method == NULL) {
        pl->list.method = xstrdup("GET");
        pl->list.path = xasprintf("%.*s/calendarView/delta?startDateTime={now-30d}&"
                                  "endDateTime={now+365d}",
                                  (int)len, events);
    }
    if (config_node_get(config_node_get(v, "poll"), "cursor") == NULL) {
        pl->cursor = CONFIG_CURSOR_DELTA_LINK;
        pl->delta_next_path = xstrdup("@odata.nextLink");
        pl->delta_path = xstrdup("@odata.deltaLink");
        pl->removed_path = xstrdup("@removed");
        pl->resync_status = xcalloc(1, sizeof(*pl->resync_status));
        pl->resync_status[0] = 410;
        pl->resync_status_count = 1;
    }
    if (pl->items_path == NULL)
        pl->items_path = xstrdup("value");
}

/*
 * The collection of a calendar kind: events, whose records are canonical
 * appointments (plus "id" and "updated"): read from the system's events
 * and written as them (engine/shape.c). Creates carry an idempotency key
 * (Google: the event's own id; Graph: transactionId); a deleted record
 * deletes its event unless on_delete says otherwise; with public_url, a
 * push only says "something changed": the collection is polled now.
 */
void
config_calendar_collection(struct config_ctx *c, const struct config_node *v, const char *path,
                           struct config_collection *col, const struct config_node *key)
{
    const struct config_system *s = col->system;
    int google = s->profile == CONFIG_PROFILE_GOOGLE_CALENDAR;
    const char *events = s->push.resource;
    char *ev;

    if (config_in_list(col->short_name, calendar_collections, ARRAY_COUNT(calendar_collections)) <
        0) {
        CONFIG_PROBLEM(c, key, "%s: a %s system knows the collection events; hint: name it so",
                       path, config_profile_name(s->profile));
        return;
    }
    ev = google ? xstrdup(events) : xasprintf("/%s", events);
    col->shape = google ? CONFIG_SHAPE_GCAL_EVENT : CONFIG_SHAPE_GRAPH_EVENT;
    col->shape_events = xstrdup(ev);
    if (col->updated_at_path == NULL)
        col->updated_at_path = xstrdup("updated");
    if (col->map_out.entry_count > 0) {
        config_set_endpoint(&col->create, "POST", xstrdup(ev));
        config_set_endpoint(&col->update, "PATCH", xasprintf("%s/{id}", ev));
        if (col->remove.method == NULL && config_node_get(v, "on_delete") == NULL)
            col->on_delete = CONFIG_DELETE_DELETE;
        config_set_endpoint(&col->remove, "DELETE", xasprintf("%s/{id}", ev));
        if (col->idempotency_field == NULL && col->idempotency_header == NULL)
            col->idempotency_field = xstrdup(google ? "id" : "transactionId");
        /* Google: a create sent again under its id finds it taken (409):
         * that event is the record's (engine/shape.c names it). */
        if (google && config_node_get(v, "on_conflict") == NULL)
            col->conflict_status = 409;
    }
    if (col->poll.enabled) {
        if (google)
            gcal_poll(v, col, ev);
        else
            graph_poll(v, col, ev);
    }
    if (s->push.enabled) {
        if (!col->poll.enabled)
            CONFIG_PROBLEM(
                c, v,
                "%s: a push only says that something changed, and this collection has no "
                "poll to read what; hint: poll: {every: 1h}",
                path);
        if (col->poll.enabled && config_node_get(v, "hint") == NULL)
            col->webhook_hint = 1;
    }
    free(ev);
}
