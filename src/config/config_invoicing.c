/* SPDX-License-Identifier: MIT */

/*
 * Kinds smartbill and oblio (docs/invoicing.md): the Romanian invoicing
 * services. Both take the company's cif; SmartBill authenticates with
 * Basic auth and cannot list its documents, Oblio with OAuth2 client
 * credentials and lists them by id. Their collections (invoices,
 * proformas, payments or notices) are issued documents: numbered creates,
 * an id of series and number, and a cancel for a delete.
 */

#include "config/config.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config/config_int.h"
#include "core/xmalloc.h"

/* The collections the smartbill and oblio kinds know. */
static const char *const smartbill_collections[] = {"invoices", "proformas", "payments"};
static const char *const oblio_collections[] = {"invoices", "proformas", "notices"};

/* cif: a company's tax id, letters and digits ("RO12345678"). */
static void
parse_cif(struct config_ctx *c, const struct config_node *v, const char *path,
          struct config_system *s)
{
    const struct config_node *n = config_node_get(v, "cif");
    char *p;

    if (n == NULL) {
        config_missing(c, v, path, "cif");
        return;
    }
    p = config_join(path, "cif");
    if (config_get_str(c, n, p, &s->cif) == 0) {
        for (const char *q = s->cif; *q != '\0'; q++) {
            if (!((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') ||
                  (*q >= '0' && *q <= '9'))) {
                CONFIG_PROBLEM(c, n, "%s: expected letters and digits, such as RO12345678", p);
                break;
            }
        }
    }
    free(p);
}

/*
 * systems.X of kind smartbill: Basic auth from username (the account's
 * e-mail) and token, the company's cif on every call, 30 calls in 10 s
 * (a token bucket of 3 and 2.7/s never makes 31), its 403 block, and
 * errorText, which may say no in a 200.
 */
void
config_smartbill_system(struct config_ctx *c, const struct config_node *v, const char *path,
                        struct config_system *s)
{
    const struct config_node *user = config_node_get(v, "username"),
                             *tok = config_node_get(v, "token");

    config_profile_base(c, v, path, s, CONFIG_PROFILE_SMARTBILL, "https://ws.smartbill.ro",
                        "username and token");
    if (config_node_key(v, "webhook") != NULL)
        CONFIG_PROBLEM(c, config_node_key(v, "webhook"),
                       "%s.webhook: SmartBill sends no webhooks; hint: remove webhook", path);
    parse_cif(c, v, path, s);
    if (user == NULL)
        config_missing(c, v, path, "username");
    if (tok == NULL)
        config_missing(c, v, path, "token");
    if (user != NULL && tok != NULL)
        config_basic_auth(c, path, user, "token", tok, s);
    if (config_node_get(v, "rate_limit") == NULL) {
        s->rate_limit.rate_per_s = 2.7;
        s->rate_limit.burst = 3;
    }
    if (config_node_get(v, "rate_limited_status") == NULL) {
        s->rate_limit.limited_status = xcalloc(1, sizeof(int));
        s->rate_limit.limited_status[0] = 403;
        s->rate_limit.limited_status_count = 1;
    }
    if (config_node_get(v, "rate_limited_block") == NULL)
        s->rate_limit.block_ms = 600000; /* "blocked for 10 minutes" */
    s->errors.message_path = xstrdup("errorText");
    s->errors.in_ok_path = xstrdup("errorText");
}

/*
 * systems.X of kind oblio: OAuth2 client credentials from email and
 * api_secret at /api/authorize/token, and the company's cif.
 */
void
config_oblio_system(struct config_ctx *c, const struct config_node *v, const char *path,
                    struct config_system *s)
{
    const struct config_node *email = config_node_get(v, "email"),
                             *sec = config_node_get(v, "api_secret");
    char *p;

    config_profile_base(c, v, path, s, CONFIG_PROFILE_OBLIO, "https://www.oblio.eu",
                        "email and api_secret");
    parse_cif(c, v, path, s);
    if (email == NULL)
        config_missing(c, v, path, "email");
    if (sec == NULL)
        config_missing(c, v, path, "api_secret");
    s->oauth2.enabled = 1;
    s->oauth2.grant = CONFIG_GRANT_CLIENT_CREDENTIALS;
    s->oauth2.token_url = xstrdup("/api/authorize/token");
    s->oauth2.margin_ms = 60000;
    config_opt_str(c, v, path, "email", &s->oauth2.client_id);
    if (sec != NULL) {
        p = config_join(path, "api_secret");
        (void)config_get_secret(c, sec, p, &s->oauth2.client_secret);
        free(p);
    }
    s->errors.message_path = xstrdup("statusMessage");
    /* Oblio signs nothing: its webhooks only ask for a poll (hint: poll),
     * and each carries X-Oblio-Request-Id, the same on a retry, whose
     * base64 the answer must hold. */
    if (config_node_key(v, "webhook") != NULL)
        CONFIG_PROBLEM(
            c, config_node_key(v, "webhook"),
            "%s.webhook: an oblio system's webhook is /webhooks/%s; hint: remove webhook", path,
            s->name);
    s->webhook.enabled = 1;
    s->webhook.delivery_id_header = xstrdup("X-Oblio-Request-Id");
    s->webhook.reply_header = xstrdup("X-Oblio-Request-Id");
}

/* A constant field every write of col carries, unless its map_out sets it. */
static void
map_out_const(struct config_collection *col, const char *target, const char *value)
{
    struct config_map_entry *e;

    if (col->map_out.entry_count == 0 || value == NULL)
        return;
    for (size_t i = 0; i < col->map_out.entry_count; i++) {
        if (strcmp(col->map_out.entries[i].target, target) == 0)
            return;
    }
    col->map_out.entries = xreallocarray(col->map_out.entries, col->map_out.entry_count + 1,
                                         sizeof(*col->map_out.entries));
    e = &col->map_out.entries[col->map_out.entry_count++];
    memset(e, 0, sizeof(*e));
    e->target = xstrdup(target);
    e->source = CONFIG_MAP_CONST;
    e->const_value = cJSON_CreateString(value);
    e->pos = col->pos;
}

/*
 * The payments collection of a smartbill system: each record is a payment
 * (a collection, in SmartBill's words) of one invoice, `POST /payment`.
 * The answer names no payment (but a receipt's number), so the copy's id
 * is made from what was sent, TYPE/SERIES/NUMBER of the invoice paid, and
 * a deleted record deletes the payment by them. Nothing is read back: an
 * invoice's poll reads its payment status. No key makes a resend safe, so
 * a lost answer waits in the inbox as "outcome unknown".
 */
static void
smartbill_payments(struct config_ctx *c, const struct config_node *v, const char *path,
                   struct config_collection *col)
{
    const char *cif = col->system->cif != NULL ? col->system->cif : "";

    if (col->poll.enabled)
        CONFIG_PROBLEM(
            c, config_node_key(v, "poll"),
            "%s.poll: SmartBill cannot list payments; an invoices poll reads each invoice's "
            "payment status; hint: remove poll",
            path);
    if (col->map_out.entry_count == 0)
        return;
    col->issued = 1;
    map_out_const(col, "companyVatCode", cif);
    config_set_endpoint(&col->create, "POST", xstrdup("/SBORO/api/payment"));
    config_set_endpoint(
        &col->remove, "DELETE",
        xasprintf("/SBORO/api/payment/v2?cif=%s&paymentType={id.0}&invoiceSeries={id.1}&"
                  "invoiceNumber={id.2}",
                  cif));
    if (config_node_get(v, "on_delete") == NULL)
        col->on_delete = CONFIG_DELETE_DELETE;
    if (config_node_get(v, "created_id") == NULL) {
        free(col->created_id_path);
        col->created_id_path = xstrdup("type,invoicesList.0.seriesName,invoicesList.0.number");
        col->created_id_from_request = 1;
    }
}

/*
 * How an invoice's or an estimate's (inv 0) number is read before a create
 * and confirmed after: the series list, then the document's own status.
 */
static void
smartbill_numbering(struct config_numbering *n, int inv, const char *cif)
{
    n->enabled = 1;
    n->next.method = xstrdup("GET");
    n->next.path = xasprintf("/SBORO/api/series?cif=%s&type=%s", cif, inv ? "f" : "p");
    n->items_path = xstrdup("list");
    n->item_series_path = xstrdup("name");
    n->series_field = xstrdup("seriesName");
    n->number_path = xstrdup("nextNumber");
    n->confirm.method = xstrdup("GET");
    n->confirm.path =
        inv ? xasprintf("/SBORO/api/invoice/paymentstatus?cif=%s&seriesname={seriesName}&"
                        "number={number}",
                        cif)
            : xasprintf("/SBORO/api/estimate/invoices?cif=%s&seriesname={seriesName}&"
                        "number={number}",
                        cif);
}

/*
 * A collection of a smartbill system: invoices or proformas. Creates are
 * numbered (collections.X.numbering; engine/deliver.c "Numbered
 * creates"), the copy's id is "SERIES/NUMBER", and a deleted record cancels
 * its document (which keeps its number). Nothing can be read back.
 */
void
config_smartbill_collection(struct config_ctx *c, const struct config_node *v, const char *path,
                            struct config_collection *col, const struct config_node *key)
{
    const struct config_system *s = col->system;
    int inv = strcmp(col->short_name, "invoices") == 0;
    const char *doc = inv ? "invoice" : "estimate", *cif = s->cif != NULL ? s->cif : "";
    struct config_numbering *n = &col->numbering;

    if (config_in_list(col->short_name, smartbill_collections, ARRAY_COUNT(smartbill_collections)) <
        0) {
        CONFIG_PROBLEM(
            c, key,
            "%s: a smartbill system knows the collections invoices, proformas and payments; "
            "hint: name it so",
            path);
        return;
    }
    if (strcmp(col->short_name, "payments") == 0) {
        smartbill_payments(c, v, path, col);
        return;
    }
    if (col->poll.enabled && !inv)
        CONFIG_PROBLEM(
            c, config_node_key(v, "poll"),
            "%s.poll: SmartBill cannot list its documents; concord is the record of what it "
            "issued; hint: remove poll",
            path);
    if (col->poll.enabled && col->poll.each.method == NULL) {
        /* Nothing can be listed, but each invoice's payment status can be
         * asked for: a poll reads it for every invoice concord issued. */
        config_set_endpoint(&col->poll.each, "GET",
                            xasprintf("/SBORO/api/invoice/paymentstatus?cif=%s&seriesname={id.0}&"
                                      "number={id.1}",
                                      cif));
    }
    if (config_node_get(v, "id") == NULL) {
        free(col->id_path);
        col->id_path = xstrdup("series,number");
    }
    if (col->map_out.entry_count == 0)
        return;
    col->issued = 1;
    map_out_const(col, "companyVatCode", cif);
    config_set_endpoint(&col->create, "POST", xasprintf("/SBORO/api/%s", doc));
    config_set_endpoint(
        &col->remove, "PUT",
        xasprintf("/SBORO/api/%s/cancel?cif=%s&seriesname={id.0}&number={id.1}", doc, cif));
    config_set_endpoint(
        &col->restore, "PUT",
        xasprintf("/SBORO/api/%s/restore?cif=%s&seriesname={id.0}&number={id.1}", doc, cif));
    if (config_node_get(v, "on_delete") == NULL)
        col->on_delete = CONFIG_DELETE_DELETE; /* a cancel: SmartBill keeps the number */
    if (config_node_get(v, "created_id") == NULL) {
        free(col->created_id_path);
        col->created_id_path = xstrdup("series,number");
    }
    if (!n->enabled)
        smartbill_numbering(n, inv, cif);
}

/*
 * A collection of an oblio system: invoices, proformas or notices. Creates
 * carry idempotencyKey; the copy's id is "SERIES/NUMBER"; a poll lists the
 * documents by id (Oblio has no updated-since filter).
 */
void
config_oblio_collection(struct config_ctx *c, const struct config_node *v, const char *path,
                        struct config_collection *col, const struct config_node *key)
{
    const char *cif = col->system->cif != NULL ? col->system->cif : "";
    const char *doc = strcmp(col->short_name, "invoices") == 0    ? "invoice"
                      : strcmp(col->short_name, "proformas") == 0 ? "proforma"
                                                                  : "notice";
    struct config_poll *pl = &col->poll;

    if (config_in_list(col->short_name, oblio_collections, ARRAY_COUNT(oblio_collections)) < 0) {
        CONFIG_PROBLEM(c, key,
                       "%s: an oblio system knows the collections invoices, proformas and notices; "
                       "hint: name it so",
                       path);
        return;
    }
    if (config_node_get(v, "id") == NULL) {
        free(col->id_path);
        col->id_path = xstrdup("seriesName,number");
    }
    if (col->match_jq == NULL)
        col->match_jq = xasprintf(".topic | startswith(\"%c%s/\")", doc[0] - 'a' + 'A', doc + 1);
    if (pl->enabled && config_node_get(v, "hint") == NULL)
        col->webhook_hint = 1; /* a webhook says "something changed": poll now */
    if (col->map_out.entry_count > 0) {
        col->issued = 1;
        map_out_const(col, "cif", cif);
        config_set_endpoint(&col->create, "POST", xasprintf("/api/docs/%s", doc));
        /* A deleted record (or one its filter drops) cancels its document,
         * which keeps its number: Oblio's cancel takes a JSON body. */
        if (col->remove.method == NULL) {
            config_set_endpoint(&col->remove, "PUT", xasprintf("/api/docs/%s/cancel", doc));
            col->remove_body = cJSON_CreateObject();
            cJSON_AddStringToObject(col->remove_body, "cif", cif);
            cJSON_AddStringToObject(col->remove_body, "seriesName", "{id.0}");
            cJSON_AddStringToObject(col->remove_body, "number", "{id.1}");
            if (config_node_get(v, "on_delete") == NULL)
                col->on_delete = CONFIG_DELETE_DELETE;
        }
        /* Its record back (an order paid again): the cancelled document
         * is restored, as SmartBill's is, not a second one issued. */
        if (col->restore.method == NULL && col->remove_body != NULL) {
            config_set_endpoint(&col->restore, "PUT", xasprintf("/api/docs/%s/restore", doc));
            col->restore_body = cJSON_Duplicate(col->remove_body, 1);
        }
        if (col->idempotency_field == NULL && col->idempotency_header == NULL)
            col->idempotency_field = xstrdup("idempotencyKey");
        if (config_node_get(v, "created_id") == NULL) {
            free(col->created_id_path);
            col->created_id_path = xstrdup("data.seriesName,data.number");
        }
    }
    if (pl->enabled && pl->list.method == NULL) {
        pl->list.method = xstrdup("GET");
        pl->list.path = xasprintf(
            "/api/docs/%s/list?cif=%s&orderBy=id&orderDir=ASC&limitPerPage=100", doc, cif);
        if (pl->items_path == NULL)
            pl->items_path = xstrdup("data");
        if (pl->page == CONFIG_PAGE_NONE) {
            pl->page = CONFIG_PAGE_OFFSET;
            pl->page_param = xstrdup("offset");
            pl->page_size = 100;
        }
    }
}
