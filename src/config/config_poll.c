/* SPDX-License-Identifier: MIT */

/*
 * collections.Y.poll: reading a collection's changes on a schedule (every
 * or cron), by a list call with a cursor (what changed since the last
 * read) and pages, or by reading each linked copy. Which keys a cursor or
 * page kind takes is one table per mapping (cursor_kind_keys,
 * page_kind_keys), so the keys of another kind are refused by name.
 */

#include "config/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"
#include "core/xmalloc.h"

static const char *const poll_keys[] = {"every", "cron", "jitter",    "list",  "items",
                                        "each",  "page", "reconcile", "cursor"};
static const char *const cursor_keys[] = {
    "kind",  "param",   "field", "format", "overlap", "token",   "resync_status", "next",
    "delta", "removed", "list",  "object", "type",    "deleted", "body",          "window"};
static const char *const cursor_kinds[] = {"none",       "updated_since", "sync_token",
                                           "delta_link", "events",        "search"};
static const char *const cursor_formats[] = {"ms", "s", "iso"};
static const char *const page_keys[] = {"kind", "param", "size_param", "size", "next", "has_more"};
static const char *const page_kinds[] = {"none", "number", "offset", "cursor", "link"};

/* Bit i of a kind mask stands for kind number i of cursor_kinds or page_kinds. */
#define KIND(i) (1U << (i))

/* A key of poll.cursor or poll.page and the kinds that take it. */
struct kind_key {
    const char *key;
    unsigned allowed;  /* the kinds that take it */
    unsigned required; /* the kinds that need it */
    const char *what;  /* what it is, for the hint of a missing one */
};

/* cursor_kinds: none, updated_since, sync_token, delta_link, events, search. */
static const struct kind_key cursor_kind_keys[] = {
    {"param", KIND(1) | KIND(2) | KIND(4), KIND(1) | KIND(2),
     "the query parameter that carries the cursor"},
    {"field", KIND(1) | KIND(5), KIND(1) | KIND(5),
     "the records' timestamp field, such as updated_at"},
    {"format", KIND(1) | KIND(5), 0, NULL},
    {"overlap", KIND(1) | KIND(5), 0, NULL},
    {"token", KIND(2), KIND(2),
     "where the last page's answer holds the next token, such as nextSyncToken"},
    {"resync_status", KIND(2) | KIND(3) | KIND(4), 0, NULL},
    {"next", KIND(3) | KIND(5), 0, NULL},
    {"delta", KIND(3), 0, NULL},
    {"removed", KIND(3), 0, NULL},
    {"list", KIND(4) | KIND(5), KIND(4) | KIND(5),
     "the call that reads, such as \"GET /v1/events\" or \"POST /contacts/search\""},
    {"object", KIND(4), 0, NULL},
    {"type", KIND(4), 0, NULL},
    {"deleted", KIND(4), 0, NULL},
    {"body", KIND(5), KIND(5), "the search's JSON body, with \"{since}\" and \"{after}\""},
    {"window", KIND(5), 0, NULL},
};

/* page_kinds: none, number, offset, cursor, link. */
static const struct kind_key page_kind_keys[] = {
    {"param", KIND(1) | KIND(2) | KIND(3), KIND(1) | KIND(2) | KIND(3),
     "the query parameter that carries the page number, offset or cursor"},
    {"size_param", KIND(1) | KIND(2) | KIND(3) | KIND(4), 0, NULL},
    {"size", KIND(1) | KIND(2) | KIND(3) | KIND(4), 0, NULL},
    {"next", KIND(3), KIND(3), "where an answer holds the next page's cursor, such as next_cursor"},
    {"has_more", KIND(1) | KIND(2) | KIND(3) | KIND(4), 0, NULL},
};

/* Each kind written with what it needs, for hints. */
static const char *const cursor_examples[] = {
    "cursor: none",
    "cursor: {kind: updated_since, param: updated_since, field: updated_at}",
    "cursor: {kind: sync_token, param: sync_token, token: nextSyncToken}",
    "cursor: delta_link",
    "cursor: {kind: events, list: \"GET /v1/events\"}",
    "cursor: {kind: search, list: \"POST /search\", body: {...}, field: updated_at}"};
static const char *const page_examples[] = {
    "page: none", "page: {kind: number, param: page}", "page: {kind: offset, param: offset}",
    "page: {kind: cursor, param: cursor, next: next_cursor}", "page: link"};

/* The names of mask as "a", "a and b", "a, b and c" (last is " and " or " or "). */
static const char *
kind_list(unsigned mask, const char *const *names, size_t n, const char *last, char *out,
          size_t len)
{
    size_t total = 0, seen = 0, used = 0;

    for (size_t i = 0; i < n; i++)
        total += (mask >> i) & 1U;
    out[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++) {
        if (((mask >> i) & 1U) == 0)
            continue;
        used += (size_t)snprintf(out + used, len - used, "%s%s",
                                 seen == 0           ? ""
                                 : seen + 1 == total ? last
                                                     : ", ",
                                 names[i]);
        seen++;
    }
    return out;
}

/* What poll.cursor and poll.page each know. */
struct kind_table {
    const char *what; /* "cursor" or "page" */
    const char *const *kinds;
    size_t kind_count;
    const char *const *keys; /* every key the mapping may hold */
    size_t key_count;
    const struct kind_key *kind_keys;
    size_t kind_key_count;
    const char *const *examples; /* per kind */
};

static const struct kind_table cursor_table = {
    .what = "cursor",
    .kinds = cursor_kinds,
    .kind_count = ARRAY_COUNT(cursor_kinds),
    .keys = cursor_keys,
    .key_count = ARRAY_COUNT(cursor_keys),
    .kind_keys = cursor_kind_keys,
    .kind_key_count = ARRAY_COUNT(cursor_kind_keys),
    .examples = cursor_examples,
};
static const struct kind_table page_table = {
    .what = "page",
    .kinds = page_kinds,
    .kind_count = ARRAY_COUNT(page_kinds),
    .keys = page_keys,
    .key_count = ARRAY_COUNT(page_keys),
    .kind_keys = page_kind_keys,
    .kind_key_count = ARRAY_COUNT(page_kind_keys),
    .examples = page_examples,
};

/*
 * The kind of poll.cursor or poll.page at v: a bare kind ("link") or a
 * mapping with kind. Returns its index in t->kinds, or -1 after saying why.
 */
static int
poll_kind(struct config_ctx *c, const struct config_node *v, const char *path,
          const struct kind_table *t)
{
    char buf[64], list[128], hint[96];
    int i;

    if (v->kind == CONFIG_NODE_MAPPING) {
        config_check_keys(c, v, path, t->keys, t->key_count);
        if (config_node_get(v, "kind") == NULL) {
            config_missing(c, v, path, "kind");
            return -1;
        }
        return config_opt_choice(c, v, path, "kind", t->kinds, t->kind_count);
    }
    if (v->kind == CONFIG_NODE_SCALAR &&
        (i = config_in_list(v->value, t->kinds, t->kind_count)) >= 0)
        return i;
    CONFIG_PROBLEM(
        c, v, "%s: expected a mapping with kind, or one of %s, got %s%s", path,
        kind_list(~0U, t->kinds, t->kind_count, " or ", list, sizeof(list)),
        config_node_show(v, buf, sizeof(buf)),
        v->kind == CONFIG_NODE_SCALAR && !config_node_is_null(v)
            ? config_did_you_mean(c, v->value, t->kinds, t->kind_count, hint, sizeof(hint))
            : "");
    return -1;
}

/*
 * The keys of poll.cursor or poll.page at v against its kind k: a key of
 * other kinds is reported at the key, a missing one at the mapping; a bare
 * kind that needs keys is reported at v.
 */
static void
check_kind_keys(struct config_ctx *c, const struct config_node *v, const char *path,
                const struct kind_table *t, int k)
{
    const char *needed[16] = {NULL};
    unsigned bit = KIND(k), need = 0;
    char list[128];

    for (size_t j = 0; j < t->kind_key_count && j < ARRAY_COUNT(needed); j++) {
        const struct kind_key *kk = &t->kind_keys[j];
        const struct config_node *key = config_node_key(v, kk->key);

        needed[j] = kk->key;
        if (kk->required & bit)
            need |= KIND(j);
        if (key != NULL && (kk->allowed & bit) == 0)
            CONFIG_PROBLEM(
                c, key, "%s.%s: %s is only for %s kind%s %s, not %s; hint: remove it", path,
                kk->key, kk->key, t->what, (kk->allowed & (kk->allowed - 1)) != 0 ? "s" : "",
                kind_list(kk->allowed, t->kinds, t->kind_count, " and ", list, sizeof(list)),
                t->kinds[k]);
        else if (key == NULL && (kk->required & bit) && v->kind == CONFIG_NODE_MAPPING)
            CONFIG_PROBLEM(c, v, "%s: missing required key \"%s\"; hint: %s kind %s needs it: %s",
                           path, kk->key, t->what, t->kinds[k], kk->what);
    }
    if (v->kind != CONFIG_NODE_MAPPING && need != 0)
        CONFIG_PROBLEM(c, v, "%s: %s kind %s needs %s, which a bare kind cannot give; hint: %s",
                       path, t->what, t->kinds[k],
                       kind_list(need, needed, ARRAY_COUNT(needed), " and ", list, sizeof(list)),
                       t->examples[k]);
}

/* What an events cursor reads unless told otherwise: Stripe's feed. */
void
config_poll_events_defaults(struct config_poll *pl)
{
    pl->resync_status = xcalloc(1, sizeof(*pl->resync_status));
    pl->resync_status[0] = 404; /* Stripe: "No such event" once it is past retention */
    pl->resync_status_count = 1;
    pl->cursor_param = xstrdup("ending_before");
    pl->event_object_path = xstrdup("data.object");
    pl->event_type_path = xstrdup("type");
    pl->event_deleted_suffix = xstrdup(".deleted");
}

/* config_opt_str() over a default: the default goes when the key is given. */
static void
replace_str(struct config_ctx *c, const struct config_node *v, const char *path, const char *key,
            char **out)
{
    char *given = NULL;

    if (config_node_get(v, key) == NULL)
        return;
    config_opt_str(c, v, path, key, &given);
    if (given != NULL) {
        free(*out);
        *out = given;
    }
}

/* format: how a watermark is written (ms, s or iso); the default stays otherwise. */
static void
parse_cursor_format(struct config_ctx *c, const struct config_node *v, const char *path,
                    struct config_poll *pl)
{
    int i = config_opt_choice(c, v, path, "format", cursor_formats, ARRAY_COUNT(cursor_formats));

    if (i >= 0) {
        free(pl->cursor_format);
        pl->cursor_format = xstrdup(cursor_formats[i]);
    }
}

/*
 * poll.cursor of kind search: the call (any method; a body goes as JSON),
 * its body, where records hold their last-change time, and how many
 * results one query can page through.
 */
static void
parse_search_cursor(struct config_ctx *c, const struct config_node *v, const char *path,
                    struct config_poll *pl)
{
    const struct config_node *b = config_node_get(v, "body");

    config_parse_endpoint(c, v, path, "list", &pl->search);
    if (b != NULL) {
        char *p = config_join(path, "body");

        if (config_want_map(c, b, p))
            pl->search_body = config_node_json(b);
        free(p);
    }
    config_opt_str(c, v, path, "field", &pl->cursor_field);
    parse_cursor_format(c, v, path, pl);
    config_opt_duration(c, v, path, "overlap", 0, &pl->overlap_ms);
    replace_str(c, v, path, "next", &pl->search_next_path);
    config_opt_int(c, v, path, "window", (struct config_range){1, INT32_MAX}, &pl->search_window);
}

/* What each cursor kind reads unless told otherwise. */
static void
cursor_defaults(struct config_poll *pl)
{
    if (pl->cursor == CONFIG_CURSOR_UPDATED_SINCE || pl->cursor == CONFIG_CURSOR_SEARCH) {
        pl->cursor_format = xstrdup("ms");
        pl->overlap_ms = 2000;
    } else if (pl->cursor == CONFIG_CURSOR_SYNC_TOKEN || pl->cursor == CONFIG_CURSOR_DELTA_LINK) {
        pl->resync_status = xcalloc(1, sizeof(*pl->resync_status));
        pl->resync_status[0] = 410;
        pl->resync_status_count = 1;
    }
    if (pl->cursor == CONFIG_CURSOR_DELTA_LINK) {
        pl->delta_next_path = xstrdup("@odata.nextLink");
        pl->delta_path = xstrdup("@odata.deltaLink");
        pl->removed_path = xstrdup("@removed");
    } else if (pl->cursor == CONFIG_CURSOR_EVENTS) {
        config_poll_events_defaults(pl);
    }
    if (pl->cursor == CONFIG_CURSOR_SEARCH) {
        pl->search_next_path = xstrdup("paging.next.after");
        pl->search_window = 10000;
    }
}

/* poll.cursor of kind delta_link or events: where the feed's answers hold what. */
static void
parse_feed_cursor(struct config_ctx *c, const struct config_node *v, const char *path,
                  struct config_poll *pl)
{
    const struct config_node *rs;

    replace_str(c, v, path, "next", &pl->delta_next_path);
    replace_str(c, v, path, "delta", &pl->delta_path);
    replace_str(c, v, path, "removed", &pl->removed_path);
    replace_str(c, v, path, "param", &pl->cursor_param);
    replace_str(c, v, path, "object", &pl->event_object_path);
    replace_str(c, v, path, "type", &pl->event_type_path);
    replace_str(c, v, path, "deleted", &pl->event_deleted_suffix);
    if (pl->cursor == CONFIG_CURSOR_EVENTS) {
        config_parse_endpoint(c, v, path, "list", &pl->events);
        if (pl->events.method != NULL && strcmp(pl->events.method, "GET") != 0)
            CONFIG_PROBLEM(c, config_node_get(v, "list"),
                           "%s.list: the event list is read with GET, got %s; hint: list: \"GET "
                           "%.64s\"",
                           path, pl->events.method, pl->events.path);
    }
    if ((rs = config_node_get(v, "resync_status")) != NULL) {
        char *p = config_join(path, "resync_status");

        free(pl->resync_status);
        pl->resync_status = NULL;
        pl->resync_status_count = 0;
        config_parse_status_list(c, rs, p, "[410]", &pl->resync_status, &pl->resync_status_count);
        free(p);
    }
}

/* poll.cursor: how a poll reads only what changed. */
static void
parse_poll_cursor(struct config_ctx *c, const struct config_node *v, const char *path,
                  struct config_poll *pl)
{
    const struct config_node *rs;
    int k = poll_kind(c, v, path, &cursor_table);

    if (k < 0)
        return;
    pl->cursor = (enum config_cursor_kind)(CONFIG_CURSOR_NONE + k);
    cursor_defaults(pl);
    check_kind_keys(c, v, path, &cursor_table, k);
    if (v->kind != CONFIG_NODE_MAPPING || pl->cursor == CONFIG_CURSOR_NONE)
        return;
    if (pl->cursor == CONFIG_CURSOR_SEARCH) {
        parse_search_cursor(c, v, path, pl);
        return;
    }
    if (pl->cursor == CONFIG_CURSOR_DELTA_LINK || pl->cursor == CONFIG_CURSOR_EVENTS) {
        parse_feed_cursor(c, v, path, pl);
        return;
    }
    config_opt_str(c, v, path, "param", &pl->cursor_param);
    if (pl->cursor == CONFIG_CURSOR_UPDATED_SINCE) {
        config_opt_str(c, v, path, "field", &pl->cursor_field);
        parse_cursor_format(c, v, path, pl);
        config_opt_duration(c, v, path, "overlap", 0, &pl->overlap_ms);
        return;
    }
    config_opt_str(c, v, path, "token", &pl->token_path);
    rs = config_node_get(v, "resync_status");
    if (rs != NULL) {
        char *p = config_join(path, "resync_status");

        config_parse_status_list(c, rs, p, "[410]", &pl->resync_status, &pl->resync_status_count);
        free(p);
    }
}

/* poll.page: how one poll walks the pages of the list. */
static void
parse_poll_page(struct config_ctx *c, const struct config_node *v, const char *path,
                struct config_poll *pl)
{
    int k = poll_kind(c, v, path, &page_table);

    if (k < 0)
        return;
    pl->page = (enum config_page_kind)(CONFIG_PAGE_NONE + k);
    check_kind_keys(c, v, path, &page_table, k);
    if (v->kind != CONFIG_NODE_MAPPING || pl->page == CONFIG_PAGE_NONE)
        return;
    if (pl->page != CONFIG_PAGE_LINK)
        config_opt_str(c, v, path, "param", &pl->page_param);
    config_opt_str(c, v, path, "size_param", &pl->size_param);
    config_opt_int(c, v, path, "size", (struct config_range){1, 10000}, &pl->page_size);
    if (pl->page == CONFIG_PAGE_CURSOR)
        config_opt_str(c, v, path, "next", &pl->next_path);
    config_opt_str(c, v, path, "has_more", &pl->has_more_path);
}

/* Every "{...}" of a list path is a time (config_now_offset); else a problem at n. */
static void
check_list_times(struct config_ctx *c, const struct config_node *n, const char *path,
                 const char *list)
{
    for (const char *p = strchr(list, '{'); p != NULL; p = strchr(p + 1, '{')) {
        const char *end = strchr(p, '}');
        int64_t off;

        if (end == NULL || config_now_offset(p + 1, (size_t)(end - p - 1), &off) == -1) {
            int len = end != NULL && end - p < 40 ? (int)(end - p + 1) : 40;

            CONFIG_PROBLEM(
                c, n,
                "%s: a list may hold only times such as {now}, {now-30d} or {now+365d}; got "
                "\"%.*s\"; hint: units ms, s, m, h, d",
                path, len, p);
            return;
        }
        p = end;
    }
}

/* every or cron (UTC), and jitter: when the polls run. */
static void
parse_schedule(struct config_ctx *c, const struct config_node *v, const char *path,
               struct config_poll *pl)
{
    const struct config_node *n;
    char buf[64];

    if ((n = config_node_get(v, "cron")) != NULL) {
        char why[160];
        size_t at = 0;

        if (config_node_get(v, "every") != NULL)
            CONFIG_PROBLEM(c, config_node_key(v, "every"),
                           "%s: every and cron do not go together; hint: keep one of them", path);
        if (n->kind != CONFIG_NODE_SCALAR || config_node_is_null(n))
            CONFIG_PROBLEM(c, n,
                           "%s.cron: expected a cron expression such as \"*/5 * * * *\", got %s",
                           path, config_node_show(n, buf, sizeof(buf)));
        else if (cron_parse(n->value, &pl->cron, why, sizeof(why), &at) == -1)
            config_diag_add(c->diags, n->line, n->col + (int)at + (n->is_quoted ? 1 : 0),
                            "%s.cron: %s; hint: five fields, minute hour day month weekday, "
                            "in UTC: \"*/5 * * * *\"",
                            path, why);
        else
            pl->has_cron = 1;
    } else if (config_node_get(v, "every") == NULL) {
        config_missing(c, v, path, "every");
    }
    config_opt_duration(c, v, path, "every", 100, &pl->every_ms);
    if ((n = config_node_get(v, "jitter")) != NULL) {
        char *p = config_join(path, "jitter");

        (void)config_get_share(c, n, p, &pl->jitter);
        free(p);
    }
}

/*
 * A table is read by its key, or by (updated_at, key); a calendar by
 * sync-collection from its last token (sql 1 or 3, config_parse_poll()):
 * the keys of a list are refused.
 */
static void
refuse_list_keys(struct config_ctx *c, const struct config_node *v, const char *path, int sql)
{
    static const char *const http_only[] = {"list", "items", "cursor", "page"};

    for (size_t i = 0; i < ARRAY_COUNT(http_only); i++)
        if (config_node_key(v, http_only[i]) != NULL)
            CONFIG_PROBLEM(c, config_node_key(v, http_only[i]),
                           sql == 1 ? "%s.%s: a table is read in pages of its key, incrementally "
                                      "when the collection names updated_at; hint: remove %s"
                                    : "%s.%s: a calendar is read by sync-collection, from the "
                                      "token of its last read; hint: remove %s",
                           path, http_only[i], http_only[i]);
}

/* each (at n): every linked copy read in turn, so no list, cursor or pages. */
static void
parse_each(struct config_ctx *c, const struct config_node *v, const struct config_node *n,
           const char *path, struct config_poll *pl)
{
    static const char *const list_only[] = {"list", "items", "cursor", "page"};
    char buf[64];

    for (size_t i = 0; i < ARRAY_COUNT(list_only); i++)
        if (config_node_key(v, list_only[i]) != NULL)
            CONFIG_PROBLEM(c, config_node_key(v, list_only[i]),
                           "%s.%s: a poll with `each` reads every linked copy by its id, not a "
                           "list; hint: remove %s",
                           path, list_only[i], list_only[i]);
    config_parse_endpoint(c, v, path, "each", &pl->each);
    if (pl->each.method != NULL && strcmp(pl->each.method, "GET") != 0)
        CONFIG_PROBLEM(c, n, "%s.each: a copy is read with GET, got %s; hint: each: \"GET %.64s\"",
                       path, config_node_show(n, buf, sizeof(buf)), pl->each.path);
}

/* list, items, cursor and page: reading the collection by its list call. */
static void
parse_list(struct config_ctx *c, const struct config_node *v, const char *path,
           struct config_poll *pl, int sql)
{
    const struct config_node *n;
    char buf[64], *p;

    if ((n = config_node_get(v, "list")) == NULL && sql != 2) /* 2: the profile knows it */
        config_missing(c, v, path, "list");
    config_parse_endpoint(c, v, path, "list", &pl->list);
    if (pl->list.method != NULL && strcmp(pl->list.method, "GET") != 0)
        CONFIG_PROBLEM(c, n,
                       "%s.list: the list is read with GET, got %s; hint: list: \"GET %.64s\"",
                       path, config_node_show(n, buf, sizeof(buf)), pl->list.path);
    if (pl->list.path != NULL) {
        p = config_join(path, "list");
        check_list_times(c, n, p, pl->list.path);
        free(p);
    }
    config_opt_str(c, v, path, "items", &pl->items_path);
    if ((n = config_node_get(v, "cursor")) != NULL) {
        p = config_join(path, "cursor");
        parse_poll_cursor(c, n, p, pl);
        free(p);
    }
    if (pl->cursor == CONFIG_CURSOR_DELTA_LINK && pl->items_path == NULL)
        pl->items_path = xstrdup("value"); /* where Graph's answers hold their items */
    if ((n = config_node_get(v, "page")) != NULL) {
        p = config_join(path, "page");
        parse_poll_page(c, n, p, pl);
        if (pl->cursor == CONFIG_CURSOR_DELTA_LINK && pl->page != CONFIG_PAGE_NONE)
            CONFIG_PROBLEM(
                c, n,
                "%s: a delta_link cursor walks its pages by their next links; hint: remove "
                "page",
                p);
        free(p);
    }
}

/*
 * poll: reading the collection's changes on a schedule. sql is 1 for a
 * table (no list, cursor or page), 2 for a profile's collection (the list
 * may be left to the profile), 3 for a calendar of a caldav system (read
 * by sync-collection: no list, cursor or page), 0 otherwise.
 */
void
config_parse_poll(struct config_ctx *c, const struct config_node *v, const char *path,
                  struct config_poll *pl, int sql)
{
    const struct config_node *n;

    if (!config_want_map(c, v, path))
        return;
    pl->enabled = 1;
    config_check_keys(c, v, path, poll_keys, ARRAY_COUNT(poll_keys));
    parse_schedule(c, v, path, pl);
    if (sql == 1 || sql == 3) {
        refuse_list_keys(c, v, path, sql);
        pl->page_size = 1000;
    } else if ((n = config_node_get(v, "each")) != NULL) {
        parse_each(c, v, n, path, pl);
    } else {
        parse_list(c, v, path, pl, sql);
    }
    config_opt_duration(c, v, path, "reconcile", 1000, &pl->reconcile_every_ms);
}
