/* SPDX-License-Identifier: MIT */

/*
 * Kind stripe (docs/stripe.md): an http system whose base_url, auth
 * (api_key as a bearer), webhook (Stripe-Signature), rate limit and
 * do-not-retry header are Stripe's, and whose collections (customers,
 * payment_intents, charges, invoices, checkout_sessions) get Stripe's
 * calls, event routing and event-feed polls unless the operator says
 * otherwise.
 */

#include "config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"
#include "core/xmalloc.h"

/*
 * The collections the stripe kind knows: where the API keeps them, the
 * prefix of their event types, the event that deletes one (NULL: none),
 * and whether concord writes them (customers) or only reads them.
 */
struct stripe_kind {
    const char *name;
    const char *path;
    const char *events;
    const char *deleted;
    int writable;
};
static const struct stripe_kind stripe_kinds[] = {
    {"customers", "/v1/customers", "customer.", "customer.deleted", 1},
    {"payment_intents", "/v1/payment_intents", "payment_intent.", NULL, 0},
    {"charges", "/v1/charges", "charge.", NULL, 0},
    {"invoices", "/v1/invoices", "invoice.", "invoice.deleted", 0},
    {"checkout_sessions", "/v1/checkout/sessions", "checkout.session.", NULL, 0},
};

/*
 * systems.X of kind stripe: an http system whose base_url (Stripe's, unless
 * given: a simulator's), auth (api_key, a secret, as a bearer token),
 * webhook (webhook_secret: Stripe-Signature), rate limit (25/s, test mode),
 * and do-not-retry header are Stripe's; its collections are filled in by
 * config_stripe_collection(). docs/stripe.md.
 */
void
config_stripe_system(struct config_ctx *c, const struct config_node *v, const char *path,
                     struct config_system *s)
{
    const struct config_node *n;
    char *p;

    s->profile = CONFIG_PROFILE_STRIPE;
    if ((n = config_node_get(v, "base_url")) != NULL)
        config_parse_base_url(c, n, path, s);
    else
        s->base_url = xstrdup("https://api.stripe.com");
    if (config_node_key(v, "auth") != NULL)
        CONFIG_PROBLEM(c, config_node_key(v, "auth"),
                       "%s.auth: a stripe system authenticates with its api_key; hint: remove auth",
                       path);
    if ((n = config_node_get(v, "api_key")) == NULL)
        config_missing(c, v, path, "api_key");
    else
        config_bearer_key(c, n, path, "api_key", s);
    if ((n = config_node_get(v, "webhook_secret")) != NULL) {
        if (config_node_key(v, "webhook") != NULL)
            CONFIG_PROBLEM(
                c, config_node_key(v, "webhook"),
                "%s.webhook: a stripe system's webhook is its webhook_secret; hint: remove "
                "webhook (its path is /webhooks/%s)",
                path, s->name);
        s->webhook.enabled = 1;
        s->webhook.has_signature = 1;
        free(s->webhook.signature.scheme);
        s->webhook.signature.scheme = xstrdup("stripe");
        s->webhook.signature.scheme_kind = CONFIG_SIG_SCHEME_STRIPE;
        p = config_join(path, "webhook_secret");
        config_parse_sig_secrets(c, n, p, &s->webhook.signature);
        free(p);
    }
    if (s->errors.message_path == NULL)
        s->errors.message_path = xstrdup("error.message");
    if (config_node_get(v, "rate_limit") == NULL) {
        s->rate_limit.rate_per_s = 25; /* test mode's limit; live allows 100 */
        s->rate_limit.burst = 25;
    }
}

/*
 * A collection of a stripe system: what the operator did not say is
 * Stripe's. Webhooks are events (the record at data.object, routed by
 * type); writes are forms with an Idempotency-Key; a poll reads the event
 * feed after the last event, and the list whole with starting_after.
 */
void
config_stripe_collection(struct config_ctx *c, const struct config_node *v, const char *path,
                         struct config_collection *col, const struct config_node *key)
{
    struct config_poll *pl = &col->poll;
    const struct stripe_kind *k = NULL;
    char buf[200];

    for (size_t i = 0; i < ARRAY_COUNT(stripe_kinds); i++) {
        if (strcmp(col->short_name, stripe_kinds[i].name) == 0)
            k = &stripe_kinds[i];
    }
    if (k == NULL) {
        CONFIG_PROBLEM(c, key,
                       "%s: a stripe system knows the collections customers, payment_intents, "
                       "charges, invoices and checkout_sessions; hint: name it so",
                       path);
        return;
    }
    if (col->record_path == NULL)
        col->record_path = xstrdup("data.object");
    /* Stripe objects carry no last-change time and webhooks come in any
     * order: the event's creation time orders the states, so a late older
     * event does not revert a newer one. */
    if (col->event_time_path == NULL) {
        col->event_time_path = xstrdup("created");
        if (col->updated_at_path == NULL)
            col->updated_at_path = xstrdup(CONFIG_EVENT_TIME_FIELD);
    }
    (void)snprintf(buf, sizeof(buf), ".type | startswith(\"%s\")", k->events);
    if (col->match_jq == NULL)
        col->match_jq = xstrdup(buf);
    if (col->deleted_jq == NULL && k->deleted != NULL) {
        (void)snprintf(buf, sizeof(buf), ".type == \"%s\"", k->deleted);
        col->deleted_jq = xstrdup(buf);
    }
    if (config_node_get(v, "body") == NULL)
        col->body_form = 1;
    if (k->writable && col->map_out.entry_count > 0) {
        if (col->create.method == NULL) {
            col->create.method = xstrdup("POST");
            col->create.path = xstrdup(k->path);
        }
        if (col->update.method == NULL) {
            col->update.method = xstrdup("POST"); /* Stripe updates with POST */
            col->update.path = xasprintf("%s/{id}", k->path);
        }
        if (col->remove.method == NULL) {
            col->remove.method = xstrdup("DELETE");
            col->remove.path = xasprintf("%s/{id}", k->path);
            if (config_node_get(v, "on_delete") == NULL)
                col->on_delete = CONFIG_DELETE_DELETE;
        }
    }
    if (col->map_out.entry_count > 0 && col->idempotency_header == NULL)
        col->idempotency_header = xstrdup("Idempotency-Key");
    if (!pl->enabled)
        return;
    if (pl->list.method == NULL) {
        pl->list.method = xstrdup("GET");
        pl->list.path = xasprintf("%s?limit=100", k->path);
        if (pl->items_path == NULL)
            pl->items_path = xstrdup("data");
        if (pl->page == CONFIG_PAGE_NONE) {
            pl->page = CONFIG_PAGE_CURSOR;
            pl->page_param = xstrdup("starting_after");
            pl->next_path = xstrdup("data.-1.id");
            pl->has_more_path = xstrdup("has_more");
        }
    }
    if (pl->cursor == CONFIG_CURSOR_NONE &&
        config_node_get(config_node_get(v, "poll"), "cursor") == NULL) {
        pl->cursor = CONFIG_CURSOR_EVENTS;
        pl->events.method = xstrdup("GET");
        pl->events.path = xasprintf("/v1/events?type=%s*", k->events);
        config_poll_events_defaults(pl);
    }
}
