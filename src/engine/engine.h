/* SPDX-License-Identifier: MIT */

/*
 * The flow of DESIGN.md, running: ingest (group-committed journal), map in,
 * merge, record, fan out, deliver. One writer thread owns the store handle
 * and makes every write; one delivery thread drives the HTTP transfers.
 * HTTP handlers hand changes in with engine_ingest_start() and are called
 * back once the commit that holds their change has returned.
 *
 * Lifecycle: engine_new() -> engine_start() -> engine_ingest_start()... ->
 * engine_stop() -> engine_free(). docs/internals/job-lifecycle.md tells
 * the story of one job.
 */
#ifndef CONCORD_ENGINE_ENGINE_H
#define CONCORD_ENGINE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/compiler.h"

struct cJSON;
struct engine;
struct error;
struct store;

/*
 * The pseudo-system of operators' corrections (concord edit). The CLI
 * journals {"record": N, "fields": {...}, "by": NAME} under this name; the
 * engine applies it as a change made by that person.
 */
#define ENGINE_OPERATOR_SYSTEM "@operator"

/*
 * Build an engine for cfg (borrowed: it must outlive the engine) over the
 * store at cfg->store_url: open the store, compile every map, and recover
 * jobs that a previous run left in flight. On success *out is the caller's.
 */
MUST_CHECK int engine_new(const struct config *cfg, struct engine **out, struct error *err);

/* Start the writer and delivery threads. */
MUST_CHECK int engine_start(struct engine *e, struct error *err);

/* What became of an ingested change. */
enum engine_ingest_result {
    ENGINE_INGEST_ACCEPTED = 1, /* journaled, durably */
    ENGINE_INGEST_DUPLICATE,    /* its delivery id was journaled before */
    ENGINE_INGEST_UNAVAILABLE,  /* the store failed: nothing was journaled */
    ENGINE_INGEST_STOPPING,     /* the engine is shutting down */
};

/*
 * Stop: no new work is claimed, deliveries in flight get until deadline_ms
 * (from now) to finish, changes already journaled are processed, and the
 * threads end. Jobs not started stay queued for the next start. Call once,
 * after the HTTP server stopped handing in changes.
 */
void engine_stop(struct engine *e, int64_t deadline_ms);

/* Release the engine (stopping it first if needed). Accepts NULL. */
void engine_free(struct engine *e);

/* Called once with what became of a change handed in by engine_ingest_start(). */
typedef void engine_ingest_done_fn(void *arg, enum engine_ingest_result result);

/*
 * Hand in a change without waiting. done(arg, result) is called exactly
 * once: from the writer thread after the commit that holds the change (or
 * its failure), or at once with ENGINE_INGEST_STOPPING. system, delivery_id
 * and body are borrowed until then. parsed (may be NULL) is body as the
 * caller parsed it, given to the engine: processing in the same run takes
 * it instead of parsing the body again on the writer's thread. Any thread.
 */
void engine_ingest_start(struct engine *e, const char *system, const char *delivery_id,
                         const char *body, size_t body_len, struct cJSON *parsed,
                         engine_ingest_done_fn *done, void *arg);

/* Whether the store answered its last use: 1 when healthy. Any thread. */
int engine_is_ready(const struct engine *e);

/* ---- operating it (engine/health.c) ---- */

enum engine_health_state {
    ENGINE_HEALTH_OK = 0,
    ENGINE_HEALTH_DEGRADED,
    ENGINE_HEALTH_DOWN,
};

/* A system's health, always with a reason when it is not ok. */
struct engine_health {
    enum engine_health_state state;
    char reason[600]; /* "" when ok; else each finding, "; "-separated, worst first */
};

/* "ok", "degraded" or "down". */
const char *engine_health_name(enum engine_health_state s);

/*
 * Judge sys from what the store says at now_ms (any store handle: the CLI's
 * or the daemon's): an open circuit or refused credentials are down; lag
 * over health.lag, a failed inbox that grew by health.inbox_growth within
 * health.window, webhooks missed (a poll found changes well after the
 * last webhook), or a pause are degraded. Returns 0 with *out, or -1.
 */
MUST_CHECK int engine_health_of(const struct config *cfg, const struct config_system *sys,
                                struct store *st, int64_t now_ms, struct engine_health *out,
                                struct error *err);

/* The /metrics text (Prometheus 0.0.4), with the store's gauges read now. */
char *engine_metrics_text(struct engine *e);

/* The last hour of deliveries per minute and lag, one point per 10 s, as
 * JSON {"step_s", "points": [{"t", "delivered_per_min", "lag_s"}]}
 * (malloc()ed), for the dashboard. */
char *engine_series_json(struct engine *e);

/* A webhook's signature was refused (for the metrics). */
void engine_note_signature_failure(struct engine *e, const char *system);

/* ---- push notifications of the calendar kinds (engine/push.c) ---- */

/* A delivery to a calendar system's webhook path, as the daemon saw it. */
struct engine_push_request {
    const char *validation_token; /* Graph's handshake: ?validationToken=, or NULL */
    const char *channel_id;       /* Google: X-Goog-Channel-ID, or NULL */
    const char *channel_token;    /* Google: X-Goog-Channel-Token, or NULL */
    const char *resource_state;   /* Google: X-Goog-Resource-State ("sync", "exists"...) */
    const char *message_number;   /* Google: X-Goog-Message-Number, or NULL */
    const char *body;             /* Graph: the notification batch (JSON) */
    size_t body_len;
};

/* What to answer it. */
struct engine_push_answer {
    int journal;              /* 1: journal a hint ({}) and answer 202 once it is durable */
    char delivery_id[200];    /* with journal: the id that drops a sender's repeat, or "" */
    int status;               /* without journal: the answer's status */
    char *body;               /* without journal: its body (malloc()ed), or NULL */
    const char *content_type; /* static; NULL for JSON */
    char why[200];            /* a refusal's reason, for the log; never a secret */
};

/*
 * Check a delivery to sys, a google_calendar or microsoft_graph system
 * with public_url: a Google channel's notification must name a channel
 * concord opened and carry its X-Goog-Channel-Token; each Graph
 * notification must carry its subscription's clientState; a Graph
 * validation handshake is answered with its token as text/plain. Fills
 * *out (its body is the caller's). Any thread.
 */
void engine_push_check(struct engine *e, const struct config_system *sys,
                       const struct engine_push_request *req, struct engine_push_answer *out);

#endif
