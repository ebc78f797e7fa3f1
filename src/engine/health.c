/* SPDX-License-Identifier: MIT */

/*
 * Operating concord: each system's health, judged from the store, and the
 * metrics the daemon serves at /metrics. Counters are kept where things
 * happen (the writer, the delivery and poll threads); gauges are read from
 * the store at each scrape, so they hold whatever process wrote them.
 */

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/xmalloc.h"
#include "engine/engine.h"
#include "engine/engine_int.h"
#include "store/store.h"

const char *
engine_health_name(enum engine_health_state s)
{
    return s == ENGINE_HEALTH_DOWN ? "down" : s == ENGINE_HEALTH_DEGRADED ? "degraded" : "ok";
}

/* "7m", "2h", "45s": a duration for a reason. */
static const char *
span(int64_t ms, char *out, size_t len)
{
    int64_t s = ms / 1000;

    if (s >= 7200)
        (void)snprintf(out, len, "%lldh", (long long)(s / 3600));
    else if (s >= 120)
        (void)snprintf(out, len, "%lldm", (long long)(s / 60));
    else
        (void)snprintf(out, len, "%llds", (long long)s);
    return out;
}

static void finding(struct engine_health *h, enum engine_health_state state, const char *fmt, ...)
    PRINTF_LIKE(3, 4);

static void
finding(struct engine_health *h, enum engine_health_state state, const char *fmt, ...)
{
    size_t used = strlen(h->reason);
    va_list ap;

    if (state > h->state)
        h->state = state;
    if (used > 0 && used + 2 < sizeof(h->reason)) {
        memcpy(h->reason + used, "; ", 3);
        used += 2;
    }
    va_start(ap, fmt);
    (void)vsnprintf(h->reason + used, sizeof(h->reason) - used, fmt, ap);
    va_end(ap);
}

/* Whether a last error says the system refused concord's credentials. */
static int
is_auth_error(const struct config_system *sys, const char *error)
{
    int rate_403 = 0;

    for (size_t i = 0; i < sys->rate_limit.limited_status_count; i++)
        rate_403 |= sys->rate_limit.limited_status[i] == 403;
    return strstr(error, ": HTTP 401") != NULL || strstr(error, "oauth2:") != NULL ||
           (!rate_403 && strstr(error, ": HTTP 403") != NULL);
}

static int64_t
report_int(const cJSON *r, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, key);

    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

/* Webhooks missed: a read of a polled collection found changes well after
 * the last webhook came (or none ever came, after the first read). */
static int
webhook_silence(const struct config *cfg, const struct config_system *sys, struct store *st,
                int64_t last_webhook_ms, struct engine_health *h, struct error *err)
{
    char t1[40], t2[40];

    for (size_t i = 0; i < cfg->collection_count; i++) {
        const struct config_collection *cc = &cfg->collections[i];
        struct store_poll p;
        cJSON *r;
        int64_t found;

        if (cc->system != sys || !cc->poll.enabled)
            continue;
        if (store_poll_get(st, cc->name, -1, &p, err) == -1)
            return -1;
        r = p.report != NULL ? cJSON_Parse(p.report) : NULL;
        found = report_int(r, "new") + report_int(r, "drifted") + report_int(r, "deleted");
        const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "kind"));

        if (found > 0 && p.last_ok_at_ms > 0 &&
            (last_webhook_ms > 0 ? p.last_ok_at_ms - last_webhook_ms > cfg->health.webhook_grace_ms
                                 : p.rows_read > report_int(r, "read")))
            finding(h, ENGINE_HEALTH_DEGRADED,
                    "webhooks missed: a %s of %s at %s found %lld change%s that no webhook "
                    "brought (last webhook: %s)",
                    kind != NULL && strcmp(kind, "reconcile") == 0 ? "reconcile" : "poll", cc->name,
                    clock_format_ms(p.last_ok_at_ms, t1, sizeof(t1)), (long long)found,
                    found == 1 ? "" : "s",
                    last_webhook_ms > 0 ? clock_format_ms(last_webhook_ms, t2, sizeof(t2))
                                        : "never");
        cJSON_Delete(r);
        store_poll_fini(&p);
    }
    return 0;
}

int
engine_health_of(const struct config *cfg, const struct config_system *sys, struct store *st,
                 int64_t now_ms, struct engine_health *out, struct error *err)
{
    struct store_system_stats s;
    struct store_health_facts f;
    char d1[24], d2[24];

    memset(out, 0, sizeof(*out));
    if (store_system_stats(st, sys->name, &s, err) == -1 ||
        store_health_facts(st, sys->name, now_ms - cfg->health.window_ms, &f, err) == -1)
        return -1;
    if (strcmp(s.breaker, "open") == 0)
        finding(out, ENGINE_HEALTH_DOWN, "circuit open: %s", s.breaker_reason);
    if (s.last_error_at_ms > s.last_success_at_ms && is_auth_error(sys, s.last_error))
        finding(out, ENGINE_HEALTH_DOWN, "authentication failed: %s", s.last_error);
    if (s.is_paused)
        finding(out, ENGINE_HEALTH_DEGRADED, "paused by %s", s.paused_by);
    if (f.oldest_pending_ms > 0 && now_ms - f.oldest_pending_ms > cfg->health.lag_ms)
        finding(out, ENGINE_HEALTH_DEGRADED,
                "lag: the oldest pending delivery has waited %s (limit %s)",
                span(now_ms - f.oldest_pending_ms, d1, sizeof(d1)),
                span(cfg->health.lag_ms, d2, sizeof(d2)));
    if (f.inbox_recent >= cfg->health.inbox_growth)
        finding(out, ENGINE_HEALTH_DEGRADED,
                "the failed inbox grows: %lld new entries in %s (%lld open)",
                (long long)f.inbox_recent, span(cfg->health.window_ms, d1, sizeof(d1)),
                (long long)f.inbox_open);
    if (sys->webhook.enabled && webhook_silence(cfg, sys, st, f.last_webhook_ms, out, err) == -1)
        return -1;
    return 0;
}

/* ---- metrics ---- */

static const double latency_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                         1,     2.5,  5,     10,   30,  60,   300};

void
engine_metrics_setup(struct engine *e)
{
    struct engine_metrics *m = &e->metrics;
    struct metrics *r = m->reg = metrics_new();

    m->ingested = metrics_counter(r, "concord_changes_ingested_total",
                                  "Changes journaled, by the system they came from.", "system");
    m->webhooks = metrics_counter(r, "concord_webhooks_received_total",
                                  "Webhook deliveries accepted (duplicates included).", "system");
    m->sig_failures = metrics_counter(r, "concord_webhook_signature_failures_total",
                                      "Webhooks refused for their signature.", "system");
    m->applied = metrics_counter(r, "concord_changes_applied_total",
                                 "Changes that changed a record, by collection.", "collection");
    m->echoes =
        metrics_counter(r, "concord_changes_echo_total",
                        "Changes recognised as the echo of concord's own write.", "collection");
    m->deliveries = metrics_counter(r, "concord_deliveries_total",
                                    "Delivery attempts, by outcome: ok, transient, permanent, "
                                    "unknown.",
                                    "system,collection,outcome");
    m->retries = metrics_counter(r, "concord_delivery_retries_total",
                                 "Deliveries scheduled to be tried again.", "system,collection");
    m->delivery_seconds =
        metrics_histogram(r, "concord_delivery_duration_seconds", "Time of one delivery request.",
                          "system", latency_buckets, ARRAY_COUNT(latency_buckets));
    m->e2e_seconds =
        metrics_histogram(r, "concord_end_to_end_seconds", "From a change seen to its delivery.",
                          "system", latency_buckets, ARRAY_COUNT(latency_buckets));
    m->rate_waits = metrics_counter(r, "concord_rate_limit_waits_total",
                                    "Deliveries held back by a system's request budget.", "system");
    m->poll_seconds =
        metrics_histogram(r, "concord_poll_duration_seconds", "Time of one read.", "collection",
                          latency_buckets, ARRAY_COUNT(latency_buckets));
    m->poll_records = metrics_counter(r, "concord_poll_records_read_total",
                                      "Records read by polls and reconciles.", "collection");
    m->queue =
        metrics_gauge(r, "concord_queue_depth", "Deliveries pending or in flight.", "system");
    m->lag = metrics_gauge(r, "concord_lag_seconds",
                           "Age of the oldest pending or running delivery.", "system");
    m->circuit = metrics_gauge(r, "concord_circuit_state",
                               "The circuit breaker: 0 closed, 1 half-open, 2 open.", "system");
    m->inbox = metrics_gauge(r, "concord_failed_inbox_size",
                             "Open failed, unknown and mapping entries.", "system");
    m->conflicts = metrics_gauge(r, "concord_conflicts_open", "Open conflicts.", "system");
    m->health =
        metrics_gauge(r, "concord_system_health", "Health: 0 ok, 1 degraded, 2 down.", "system");
}

void
engine_note_signature_failure(struct engine *e, const char *system)
{
    metric_add(e->metrics.sig_failures, 1, (const char *[]){system});
}

int
engine_webhook_seen(struct engine *e, const char *system, int64_t at_ms, struct error *err)
{
    metric_add(e->metrics.webhooks, 1, (const char *[]){system});
    for (size_t i = 0; i < e->sys_count; i++) {
        struct engine_sys *s = &e->systems[i];

        if (strcmp(s->cfg->name, system) != 0)
            continue;
        /* At most once a second: under load, one write per delivery would
         * cost more than the second it could tell. */
        if (at_ms - s->webhook_noted_ms < 1000)
            return 0;
        s->webhook_noted_ms = at_ms;
        return store_webhook_seen(e->st, system, at_ms, err);
    }
    return 0;
}

/* Read the store's gauges into the registry. */
static int
scrape_store(struct engine *e, struct error *err)
{
    struct engine_metrics *m = &e->metrics;
    int64_t now = clock_now_ms();

    if (e->scrape_st == NULL && store_open(&e->scrape_st, e->cfg->store_url, err) == -1)
        return -1;
    for (size_t i = 0; i < e->cfg->system_count; i++) {
        const struct config_system *sys = &e->cfg->systems[i];
        const char *l[] = {sys->name};
        struct store_system_stats s;
        struct store_health_facts f;
        struct engine_health h;

        if (store_system_stats(e->scrape_st, sys->name, &s, err) == -1 ||
            store_health_facts(e->scrape_st, sys->name, now - e->cfg->health.window_ms, &f, err) ==
                -1 ||
            engine_health_of(e->cfg, sys, e->scrape_st, now, &h, err) == -1)
            return -1;
        metric_set(m->queue, (double)(s.backlog + s.in_flight), l);
        metric_set(m->lag,
                   f.oldest_pending_ms > 0 ? (double)(now - f.oldest_pending_ms) / 1000.0 : 0, l);
        metric_set(m->circuit,
                   strcmp(s.breaker, "open") == 0        ? 2
                   : strcmp(s.breaker, "half-open") == 0 ? 1
                                                         : 0,
                   l);
        metric_set(m->inbox, (double)f.inbox_open, l);
        metric_set(m->conflicts, (double)f.conflicts_open, l);
        metric_set(m->health, (double)h.state, l);
    }
    return 0;
}

char *
engine_metrics_text(struct engine *e)
{
    struct error err = {0};

    pthread_mutex_lock(&e->scrape_mu);
    if (scrape_store(e, &err) == -1)
        log_warn(NULL, "metrics: %s", err.msg);
    pthread_mutex_unlock(&e->scrape_mu);
    return metrics_render(e->metrics.reg);
}

/* ---- the last hour, for the dashboard ---- */

#define SERIES_POINTS 360 /* an hour of ENGINE_SERIES_STEP_MS */

struct engine_series {
    int64_t at[SERIES_POINTS];
    double per_min[SERIES_POINTS];
    double lag_s[SERIES_POINTS];
    int count, next;
    double ok_before; /* deliveries ok at the last sample */
    int64_t before_ms;
};

void
engine_series_sample(struct engine *e, struct store *st)
{
    int64_t now = clock_now_ms(), oldest = 0;
    double ok = metric_sum(e->metrics.deliveries, 2, "ok");
    struct engine_series *s;
    struct error err = {0};

    for (size_t i = 0; i < e->cfg->system_count; i++) {
        struct store_health_facts f;

        if (store_health_facts(st, e->cfg->systems[i].name, now, &f, &err) == -1)
            return;
        if (f.oldest_pending_ms > 0 && (oldest == 0 || f.oldest_pending_ms < oldest))
            oldest = f.oldest_pending_ms;
    }
    pthread_mutex_lock(&e->scrape_mu);
    if (e->series == NULL)
        e->series = xcalloc(1, sizeof(*e->series));
    s = e->series;
    if (s->before_ms > 0 && now > s->before_ms) {
        s->at[s->next] = now;
        s->per_min[s->next] = (ok - s->ok_before) * 60000.0 / (double)(now - s->before_ms);
        s->lag_s[s->next] = oldest > 0 ? (double)(now - oldest) / 1000.0 : 0;
        s->next = (s->next + 1) % SERIES_POINTS;
        if (s->count < SERIES_POINTS)
            s->count++;
    }
    s->ok_before = ok;
    s->before_ms = now;
    pthread_mutex_unlock(&e->scrape_mu);
}

char *
engine_series_json(struct engine *e)
{
    cJSON *root = cJSON_CreateObject(), *points;
    char *text;

    cJSON_AddNumberToObject(root, "step_s", ENGINE_SERIES_STEP_MS / 1000);
    points = cJSON_AddArrayToObject(root, "points");
    pthread_mutex_lock(&e->scrape_mu);
    for (int i = 0; e->series != NULL && i < e->series->count; i++) {
        const struct engine_series *s = e->series;
        int k = (s->next - s->count + i + SERIES_POINTS) % SERIES_POINTS;
        cJSON *p = cJSON_CreateObject();
        char ts[40];

        cJSON_AddStringToObject(p, "t", clock_format_ms(s->at[k], ts, sizeof(ts)));
        cJSON_AddNumberToObject(p, "delivered_per_min", (double)(int64_t)(s->per_min[k] + 0.5));
        cJSON_AddNumberToObject(p, "lag_s", (double)(int64_t)s->lag_s[k]);
        cJSON_AddItemToArray(points, p);
    }
    pthread_mutex_unlock(&e->scrape_mu);
    text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}
