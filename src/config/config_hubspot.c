/* SPDX-License-Identifier: MIT */

/*
 * Kind hubspot (docs/hubspot.md): a private app's token, HubSpot's rate
 * limit, and with client_secret and public_url the webhooks signed with
 * X-HubSpot-Signature-v3. Its contacts collection gets the CRM v3 calls,
 * a create that meets an existing email linked through on_conflict, and a
 * poll that searches by lastmodifieddate with the properties the maps name.
 */

#include "config/config.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config/config_int.h"
#include "core/xmalloc.h"

/* The collections the hubspot kind knows. */
static const char *const hubspot_collections[] = {"contacts"};

/* public_url: concord's address as HubSpot calls it; v3 signs it with the path. */
static void
parse_public_url(struct config_ctx *c, const struct config_node *n, const char *path,
                 struct config_system *s)
{
    char *p = config_join(path, "public_url"), *url = NULL;
    size_t len;

    if (config_get_str(c, n, p, &url) == 0) {
        len = strlen(url);
        while (len > 0 && url[len - 1] == '/')
            url[--len] = '\0';
        if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)
            CONFIG_PROBLEM(c, n,
                           "%s: expected the URL HubSpot calls, starting with https://; hint: "
                           "public_url: https://sync.example.com",
                           p);
        else
            s->webhook.signature.url = xasprintf("%s%s", url, s->webhook.path);
    }
    free(url);
    free(p);
}

/*
 * systems.X of kind hubspot: a private app's token as a bearer, HubSpot's
 * `message` in the inbox, 100 requests in any 10 s (a bucket of 10 refilled
 * at 9/s never makes 101), and with client_secret a webhook checked with
 * X-HubSpot-Signature-v3 over public_url and the webhook's path.
 */
void
config_hubspot_system(struct config_ctx *c, const struct config_node *v, const char *path,
                      struct config_system *s)
{
    const struct config_node *tok = config_node_get(v, "token"),
                             *cs = config_node_get(v, "client_secret");
    const struct config_node *pu = config_node_get(v, "public_url");
    char *p;

    config_profile_base(c, v, path, s, CONFIG_PROFILE_HUBSPOT, "https://api.hubapi.com", "token");
    if (config_node_key(v, "webhook") != NULL)
        CONFIG_PROBLEM(
            c, config_node_key(v, "webhook"),
            "%s.webhook: a hubspot system's webhook is its client_secret and public_url; "
            "hint: remove webhook (its path is /webhooks/%s)",
            path, s->name);
    if (tok == NULL)
        config_missing(c, v, path, "token");
    else
        config_bearer_key(c, tok, path, "token", s);
    if (cs != NULL) {
        s->webhook.enabled = 1;
        s->webhook.has_signature = 1;
        free(s->webhook.signature.scheme);
        s->webhook.signature.scheme = xstrdup("hubspot-v3");
        s->webhook.signature.scheme_kind = CONFIG_SIG_SCHEME_HUBSPOT_V3;
        p = config_join(path, "client_secret");
        config_parse_sig_secrets(c, cs, p, &s->webhook.signature);
        free(p);
        if (pu == NULL)
            CONFIG_PROBLEM(
                c, v,
                "%s: missing required key \"public_url\"; hint: HubSpot signs the URL it "
                "calls: public_url: https://sync.example.com (concord's address as HubSpot "
                "sees it)",
                path);
        else
            parse_public_url(c, pu, path, s);
    } else if (pu != NULL) {
        CONFIG_PROBLEM(
            c, config_node_key(v, "public_url"),
            "%s.public_url: it is where HubSpot's signed webhooks come, and without "
            "client_secret there are none; hint: add client_secret: env:HUBSPOT_SECRET, or "
            "remove public_url",
            path);
    }
    s->errors.message_path = xstrdup("message");
    if (config_node_get(v, "rate_limit") == NULL) {
        s->rate_limit.rate_per_s = 9; /* 100 in any 10 s: Free and Starter private apps */
        s->rate_limit.burst = 10;
    }
    /* HubSpot's 429 has no Retry-After; its window is 10 s. */
    if (config_node_get(v, "rate_limited_block") == NULL)
        s->rate_limit.block_ms = 10000;
}

/* Add name to the property list *names ("a,b"), once. */
static void
property_add(char **names, const char *path)
{
    const char *name;
    size_t len;

    if (path == NULL)
        return;
    path += path[0] == '.';
    if (strncmp(path, "properties.", 11) != 0)
        return;
    name = path + 11;
    len = strcspn(name, ".");
    if (len == 0)
        return;
    for (const char *q = *names; q != NULL && *q != '\0';) {
        size_t n = strcspn(q, ",");

        if (n == len && strncmp(q, name, len) == 0)
            return;
        q += n + (q[n] == ',');
    }
    char *next = xasprintf("%s%s%.*s", *names ? *names : "", *names ? "," : "", (int)len, name);

    free(*names);
    *names = next;
}

/*
 * The search a hubspot poll makes: contacts changed since the watermark,
 * oldest first, 200 a page, with the properties the maps name.
 */
static cJSON *
hubspot_search_body(const char *names)
{
    cJSON *body = cJSON_CreateObject(), *groups = cJSON_AddArrayToObject(body, "filterGroups");
    cJSON *group = cJSON_CreateObject(), *filters = cJSON_AddArrayToObject(group, "filters");
    cJSON *filter = cJSON_CreateObject(), *sorts = cJSON_AddArrayToObject(body, "sorts");
    cJSON *sort = cJSON_CreateObject(), *props = cJSON_AddArrayToObject(body, "properties");

    cJSON_AddStringToObject(filter, "propertyName", "lastmodifieddate");
    cJSON_AddStringToObject(filter, "operator", "GTE");
    cJSON_AddStringToObject(filter, "value", "{since}");
    cJSON_AddItemToArray(filters, filter);
    cJSON_AddItemToArray(groups, group);
    cJSON_AddStringToObject(sort, "propertyName", "lastmodifieddate");
    cJSON_AddStringToObject(sort, "direction", "ASCENDING");
    cJSON_AddItemToArray(sorts, sort);
    for (const char *q = names; *q != '\0';) {
        size_t n = strcspn(q, ",");
        char *one = xasprintf("%.*s", (int)n, q);

        cJSON_AddItemToArray(props, cJSON_CreateString(one));
        free(one);
        q += n + (q[n] == ',');
    }
    cJSON_AddNumberToObject(body, "limit", 200);
    cJSON_AddStringToObject(body, "after", "{after}");
    return body;
}

/* A hubspot collection's webhooks: routed, read as hints, deletions taken. */
static void
hubspot_webhooks(struct config_ctx *c, const struct config_node *v, const char *path,
                 struct config_collection *col)
{
    if (!col->system->webhook.enabled)
        return;
    if (col->match_jq == NULL)
        col->match_jq = xstrdup("type == \"array\" and any(.[]; (.subscriptionType // \"\") | "
                                "startswith(\"contact.\"))");
    if (!col->poll.enabled) {
        if (col->map_in.entry_count > 0)
            CONFIG_PROBLEM(
                c, v,
                "%s: HubSpot's webhooks name a contact, not its properties: a collection "
                "that reads contacts needs poll, which each webhook starts; hint: poll: "
                "{every: 1h}",
                path);
        return;
    }
    if (config_node_get(v, "hint") == NULL)
        col->webhook_hint = 1;
    if (col->deleted_jq == NULL)
        col->deleted_jq = xstrdup(".subscriptionType == \"contact.deletion\" or "
                                  ".subscriptionType == \"contact.privacyDeletion\"");
    if (col->deleted_id_path == NULL)
        col->deleted_id_path = xstrdup("objectId");
}

/* Whether map_out writes the contact's email, which HubSpot keeps unique. */
static int
writes_email(const struct config_collection *col)
{
    for (size_t i = 0; i < col->map_out.entry_count; i++) {
        const char *t = col->map_out.entries[i].target;

        if (t != NULL && strcmp(t + (t[0] == '.'), "properties.email") == 0)
            return 1;
    }
    return 0;
}

/*
 * A create whose answer was lost is settled by reading the contact by its
 * email, which HubSpot keeps unique: a 404 says the create did not happen
 * (it is sent again: should it have happened after all, the 409 links it),
 * a contact that it did (linked, no second contact). The read asks for the
 * properties the maps name, so the base it gives compares whole. Without
 * the email in map_out there is nothing to look up by.
 */
static void
hubspot_lookup(const struct config_node *v, struct config_collection *col, const char *base,
               const char *names)
{
    if (col->lookup.method != NULL || config_node_get(v, "lookup") != NULL || !writes_email(col))
        return;
    config_set_endpoint(
        &col->lookup, "GET",
        xasprintf("%s/{properties.email}?idProperty=email&properties=%s", base, names));
    if (config_node_get(v, "lookup_missing") == NULL)
        col->lookup_missing_status = 404;
}

/*
 * A collection of a hubspot system: contacts. Writes are JSON with every
 * property a string; a create that meets the same email is linked to the
 * contact HubSpot names (on_conflict) and written as an update, and one
 * whose answer was lost is looked up by its email (hubspot_lookup()); a poll
 * searches by lastmodifieddate, and a reconcile lists the contacts whole.
 */
void
config_hubspot_collection(struct config_ctx *c, const struct config_node *v, const char *path,
                          struct config_collection *col, const struct config_node *key)
{
    static const char base[] = "/crm/v3/objects/contacts";
    struct config_poll *pl = &col->poll;
    char *names = NULL;

    if (config_in_list(col->short_name, hubspot_collections, ARRAY_COUNT(hubspot_collections)) <
        0) {
        CONFIG_PROBLEM(
            c, key, "%s: a hubspot system knows the collection contacts; hint: name it so", path);
        return;
    }
    if (col->map_out.entry_count > 0) {
        config_set_endpoint(&col->create, "POST", xstrdup(base));
        config_set_endpoint(&col->update, "PATCH", xasprintf("%s/{id}", base));
        if (col->remove.method == NULL && config_node_get(v, "on_delete") == NULL)
            col->on_delete = CONFIG_DELETE_DELETE;
        config_set_endpoint(&col->remove, "DELETE", xasprintf("%s/{id}", base));
        if (config_node_get(v, "on_conflict") == NULL) {
            col->conflict_status = 409;
            col->conflict_id_after = xstrdup("Existing ID: ");
        }
        if (col->string_values_path == NULL)
            col->string_values_path = xstrdup("properties");
    }
    if (col->updated_at_path == NULL)
        col->updated_at_path = xstrdup("properties.lastmodifieddate");
    hubspot_webhooks(c, v, path, col);
    for (size_t i = 0; i < col->map_in.entry_count; i++)
        property_add(&names, col->map_in.entries[i].path);
    for (size_t i = 0; i < col->map_out.entry_count; i++)
        property_add(&names, col->map_out.entries[i].target);
    property_add(&names, "properties.lastmodifieddate");
    hubspot_lookup(v, col, base, names);
    if (!pl->enabled) {
        free(names);
        return;
    }
    if (pl->list.method == NULL) {
        pl->list.method = xstrdup("GET");
        pl->list.path = xasprintf("%s?limit=100&properties=%s", base, names);
        if (pl->page == CONFIG_PAGE_NONE) {
            pl->page = CONFIG_PAGE_CURSOR;
            pl->page_param = xstrdup("after");
            pl->next_path = xstrdup("paging.next.after");
        }
    }
    if (pl->items_path == NULL)
        pl->items_path = xstrdup("results");
    if (pl->cursor == CONFIG_CURSOR_NONE &&
        config_node_get(config_node_get(v, "poll"), "cursor") == NULL) {
        pl->cursor = CONFIG_CURSOR_SEARCH;
        pl->search.method = xstrdup("POST");
        pl->search.path = xasprintf("%s/search", base);
        pl->search_body = hubspot_search_body(names);
        pl->cursor_field = xstrdup("properties.lastmodifieddate");
        pl->cursor_format = xstrdup("ms");
        pl->overlap_ms = 10000; /* the search index lags writes by seconds */
        pl->search_next_path = xstrdup("paging.next.after");
        pl->search_window = 10000;
    }
    free(names);
}
