/* SPDX-License-Identifier: MIT */

/*
 * Webhook endpoints (DESIGN.md, step 1): one per system. The signature is
 * checked over the raw body, the body must be JSON, and the change is
 * journaled before the answer: 202 once durable, 200 for a delivery id
 * already journaled, 400 for malformed JSON, 401 for a bad signature, 503
 * while the store cannot take it. Nothing is journaled unless the answer
 * is 2xx.
 */

#include "daemon/daemon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "config/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "engine/engine.h"
#include "http/http_server.h"
#include "http/http_sig.h"

struct webhook {
    const struct config_system *sys;
    struct engine *engine;
};

static char *
error_body(const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    char *text;

    cJSON_AddStringToObject(o, "error", msg);
    text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

/* http_sig_input.header over the request: the scheme names the headers it reads. */
static const char *
request_header(const void *user, const char *name)
{
    return http_server_header(user, name);
}

static int
signature_ok(const struct config_system *sys, const struct http_server_request *req,
             struct error *err)
{
    struct http_sig_input in = {
        .header = request_header,
        .user = req,
        .method = req->method,
        .body = req->body,
        .body_len = req->body_len,
        .now_s = (int64_t)time(NULL),
    };

    return http_sig_verify(&sys->webhook.signature, &in, err) == 0;
}

/* One webhook waiting for its commit. */
struct webhook_call {
    struct http_server_reply *reply;
    char *delivery_id; /* copied: the header lives in the connection's memory */
    char request_id[24];
    const char *system;
    char *reply_body; /* NULL, or the answer's body (webhook.reply_with) */
};

static void
on_ingested(void *arg, enum engine_ingest_result result)
{
    struct webhook_call *call = arg;

    switch (result) {
    case ENGINE_INGEST_ACCEPTED:
        if (call->reply_body != NULL) {
            http_server_reply_finish(call->reply, 200, call->reply_body);
            call->reply_body = NULL;
        } else {
            http_server_reply_finish(call->reply, 202, xstrdup("{\"status\":\"accepted\"}"));
        }
        break;
    case ENGINE_INGEST_DUPLICATE:
        log_debug(&(struct log_ctx){.system = call->system, .request_id = call->request_id},
                  "repeated delivery %s acknowledged", call->delivery_id);
        if (call->reply_body != NULL) {
            http_server_reply_finish(call->reply, 200, call->reply_body);
            call->reply_body = NULL;
        } else {
            http_server_reply_finish(call->reply, 200, xstrdup("{\"status\":\"duplicate\"}"));
        }
        break;
    case ENGINE_INGEST_STOPPING:
        http_server_reply_finish(call->reply, 503,
                                 error_body("concord is shutting down; send it again"));
        break;
    case ENGINE_INGEST_UNAVAILABLE:
        http_server_reply_finish(
            call->reply, 503,
            error_body("the store is unavailable; nothing was recorded, send it again"));
        break;
    }
    free(call->delivery_id);
    free(call->reply_body);
    free(call);
}

/*
 * A calendar kind's push (engine_push_check()): a Google channel's
 * header-only notification, a Graph handshake or notification batch.
 * Refusals and handshakes are answered at once; a notification is
 * journaled as a hint ({}), which makes concord poll the calendar.
 */
static void
on_push(const struct webhook *w, const struct http_server_request *req,
        struct http_server_reply *reply)
{
    const struct config_system *sys = w->sys;
    struct log_ctx ctx = {.system = sys->name, .request_id = req->request_id};
    struct engine_push_request pr = {
        .validation_token = http_server_query(req, "validationToken"),
        .channel_id = http_server_header(req, "X-Goog-Channel-ID"),
        .channel_token = http_server_header(req, "X-Goog-Channel-Token"),
        .resource_state = http_server_header(req, "X-Goog-Resource-State"),
        .message_number = http_server_header(req, "X-Goog-Message-Number"),
        .body = req->body,
        .body_len = req->body_len,
    };
    struct engine_push_answer a;
    struct webhook_call *call;

    engine_push_check(w->engine, sys, &pr, &a);
    if (!a.journal) {
        if (a.why[0] != '\0') {
            log_warn(&ctx, "push refused: %s", a.why);
            engine_note_signature_failure(w->engine, sys->name);
        }
        if (a.content_type != NULL)
            http_server_reply_content_type(reply, a.content_type);
        http_server_reply_finish(reply, a.status, a.body);
        return;
    }
    log_trace(LOG_TRACE_WEBHOOK, &ctx, "push: the calendar changed");
    call = xcalloc(1, sizeof(*call));
    call->reply = reply;
    call->system = sys->name;
    (void)snprintf(call->request_id, sizeof(call->request_id), "%s", req->request_id);
    call->delivery_id = a.delivery_id[0] != '\0' ? xstrdup(a.delivery_id) : NULL;
    engine_ingest_start(w->engine, sys->name, call->delivery_id, "{}", 2, NULL, on_ingested, call);
}

static void
on_webhook(void *user, const struct http_server_request *req, struct http_server_reply *reply)
{
    const struct webhook *w = user;
    const struct config_system *sys = w->sys;
    struct log_ctx ctx = {.system = sys->name, .request_id = req->request_id};
    struct error err = {0};
    struct webhook_call *call;
    cJSON *parsed;

    log_trace(LOG_TRACE_WEBHOOK, &ctx, "webhook: %zu bytes", req->body_len);
    if (sys->push.enabled) {
        on_push(w, req, reply);
        return;
    }
    if (sys->webhook.has_signature && !signature_ok(sys, req, &err)) {
        log_warn(&ctx, "webhook refused: %s", err.msg);
        engine_note_signature_failure(w->engine, sys->name);
        http_server_reply_finish(reply, 401, error_body(err.msg));
        return;
    }
    /* An empty body (Google's push: only headers) is a hint of a change,
     * journaled as {} for a collection with `hint: poll`. */
    const char *body = req->body_len > 0 ? req->body : "{}";
    size_t body_len = req->body_len > 0 ? req->body_len : 2;

    parsed = cJSON_ParseWithLength(body, body_len);
    if (parsed == NULL) {
        http_server_reply_finish(reply, 400, error_body("the body is not valid JSON"));
        return;
    }
    const char *echo = sys->webhook.reply_header != NULL
                           ? http_server_header(req, sys->webhook.reply_header)
                           : NULL;
    if (sys->webhook.reply_header != NULL && (echo == NULL || echo[0] == '\0')) {
        char msg[160];

        (void)snprintf(msg, sizeof(msg), "the %s header is missing", sys->webhook.reply_header);
        cJSON_Delete(parsed);
        http_server_reply_finish(reply, 400, error_body(msg));
        return;
    }
    call = xcalloc(1, sizeof(*call));
    if (echo != NULL) {
        /* The sender checks that the answer holds base64 of its request id. */
        size_t len = strlen(echo);

        call->reply_body = xmalloc(4 * ((len + 2) / 3) + 1);
        (void)EVP_EncodeBlock((unsigned char *)call->reply_body, (const unsigned char *)echo,
                              (int)len);
    }
    call->reply = reply;
    call->system = sys->name;
    (void)snprintf(call->request_id, sizeof(call->request_id), "%s", req->request_id);
    if (sys->webhook.delivery_id_header != NULL)
        call->delivery_id = xstrdup(http_server_header(req, sys->webhook.delivery_id_header));
    /* The body stays in the suspended connection until the reply. */
    engine_ingest_start(w->engine, sys->name, call->delivery_id, body, body_len, parsed,
                        on_ingested, call);
}

int
daemon_webhook_routes(struct http_server *srv, const struct config *cfg, struct engine *engine,
                      void **state, struct error *err)
{
    struct webhook *webhooks = xcalloc(cfg->system_count, sizeof(*webhooks));

    *state = webhooks;
    for (size_t i = 0; i < cfg->system_count; i++) {
        const struct config_system *sys = &cfg->systems[i];

        if (!sys->webhook.enabled)
            continue;
        webhooks[i].sys = sys;
        webhooks[i].engine = engine;
        if (http_server_route_async(srv, "POST", sys->webhook.path, sys->webhook.max_body_bytes,
                                    on_webhook, &webhooks[i], err) == -1)
            return error_wrap(err, "system %s", sys->name);
    }
    return 0;
}
