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

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

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

static int
signature_ok(const struct config_system *sys, const struct http_server_request *req,
             struct error *err)
{
    const struct config_signature *sig = &sys->webhook.signature;
    struct http_sig_input in = {
        .signature = http_server_header(req, sig->header),
        .timestamp = sig->timestamp_header ? http_server_header(req, sig->timestamp_header) : NULL,
        .body = req->body,
        .body_len = req->body_len,
        .now_s = (int64_t)time(NULL),
    };

    return http_sig_verify(sig, &in, err) == 0;
}

static char *
on_webhook(void *user, const struct http_server_request *req, int *status,
           const char **content_type)
{
    const struct webhook *w = user;
    const struct config_system *sys = w->sys;
    struct log_ctx ctx = {.system = sys->name, .request_id = req->request_id};
    struct error err = {0};
    const char *delivery_id = NULL;
    cJSON *parsed;

    (void)content_type;
    if (sys->webhook.has_signature && !signature_ok(sys, req, &err)) {
        log_warn(&ctx, "webhook refused: %s", err.msg);
        *status = 401;
        return error_body(err.msg);
    }
    parsed = cJSON_ParseWithLength(req->body, req->body_len);
    if (parsed == NULL) {
        *status = 400;
        return error_body("the body is not valid JSON");
    }
    cJSON_Delete(parsed);
    if (sys->webhook.delivery_id_header != NULL)
        delivery_id = http_server_header(req, sys->webhook.delivery_id_header);
    switch (engine_ingest(w->engine, sys->name, delivery_id, req->body, req->body_len)) {
    case ENGINE_INGEST_ACCEPTED:
        *status = 202;
        return xstrdup("{\"status\":\"accepted\"}");
    case ENGINE_INGEST_DUPLICATE:
        log_debug(&ctx, "repeated delivery %s acknowledged", delivery_id);
        *status = 200;
        return xstrdup("{\"status\":\"duplicate\"}");
    case ENGINE_INGEST_STOPPING:
        *status = 503;
        return error_body("concord is shutting down; send it again");
    case ENGINE_INGEST_UNAVAILABLE:
        break;
    }
    *status = 503;
    return error_body("the store is unavailable; nothing was recorded, send it again");
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
        if (http_server_route(srv, "POST", sys->webhook.path, sys->webhook.max_body_bytes,
                              on_webhook, &webhooks[i], err) == -1)
            return error_wrap(err, "system %s", sys->name);
    }
    return 0;
}
