/* SPDX-License-Identifier: MIT */

/*
 * Alerts: a thread judges every system's health every alerts.every and
 * tells people when it changes, through a Slack-compatible webhook and/or
 * e-mail. Changes are grouped (a message waits alerts.group after the
 * first change, so a burst is one message) and rate limited (at most one
 * message per alerts.min_interval); a system back to ok is reported as
 * resolved, with what it was. Only the state is compared, so a reason
 * that changes while the state stays (a lag growing) is not news. A
 * message that could not be sent is tried again at the next turn.
 */

#include "daemon/daemon.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/secret.h"
#include "core/xmalloc.h"
#include "engine/engine.h"
#include "http/http_notify.h"
#include "store/store.h"

#define SEND_TIMEOUT_MS 10000

struct alerts {
    const struct config *cfg;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    struct store *st;
    struct engine_health *reported; /* what the last message said, per system */
    struct engine_health *now;
};

/* One line per system whose state is not what was last reported. */
static int
compose(struct alerts *a, struct buf *body, char *subject, size_t len)
{
    const struct config *cfg = a->cfg;
    int n = 0, bad = 0;
    const char *first = NULL, *first_state = NULL;

    for (size_t i = 0; i < cfg->system_count; i++) {
        const struct engine_health *was = &a->reported[i], *is = &a->now[i];

        if (was->state == is->state)
            continue;
        if (n++ == 0) {
            first = cfg->systems[i].name;
            first_state =
                is->state == ENGINE_HEALTH_OK ? "resolved" : engine_health_name(is->state);
        }
        if (is->state == ENGINE_HEALTH_OK)
            bad |= buf_printf(body, "RESOLVED %s is ok again (it was %s: %s)\n",
                              cfg->systems[i].name, engine_health_name(was->state), was->reason);
        else
            bad |= buf_printf(body, "%s %s is %s: %s\n",
                              is->state == ENGINE_HEALTH_DOWN ? "DOWN" : "DEGRADED",
                              cfg->systems[i].name, engine_health_name(is->state), is->reason);
    }
    if (n == 1)
        (void)snprintf(subject, len, "concord: %s %s", first, first_state);
    else
        (void)snprintf(subject, len, "concord: %d systems changed health", n);
    return bad ? -1 : n;
}

static int
send_all(struct alerts *a, const char *subject, const char *text)
{
    const struct config_alerts *c = &a->cfg->alerts;
    struct error err = {0};
    int failed = 0;

    if (secret_bytes(&c->webhook) != NULL && c->webhook.len > 0) {
        char *msg = xasprintf("%s\n%s", subject, text);

        if (http_notify_webhook(secret_bytes(&c->webhook), msg, SEND_TIMEOUT_MS, NULL, &err) ==
            -1) {
            log_warn(NULL, "alert not sent to the webhook: %s", err.msg);
            failed = 1;
        }
        free(msg);
    }
    if (c->smtp_url != NULL) {
        struct http_mail m = {
            .url = c->smtp_url,
            .user = c->smtp_user,
            .password = secret_bytes(&c->smtp_password),
            .from = c->mail_from,
            .to = (const char *const *)c->mail_to,
            .to_count = c->mail_to_count,
            .subject = subject,
            .body = text,
        };

        error_clear(&err);
        if (http_notify_mail(&m, SEND_TIMEOUT_MS, &err) == -1) {
            log_warn(NULL, "alert not sent by e-mail: %s", err.msg);
            failed = 1;
        }
    }
    return failed ? -1 : 0;
}

static void
turn(struct alerts *a, int64_t *pending_since, int64_t *last_sent)
{
    const struct config *cfg = a->cfg;
    int64_t mono = clock_mono_ms(), now = clock_now_ms();
    char subject[200];
    struct error err = {0};
    struct buf body;
    int changed = 0, n;

    for (size_t i = 0; i < cfg->system_count; i++) {
        if (engine_health_of(cfg, &cfg->systems[i], a->st, now, &a->now[i], &err) == -1) {
            log_warn(NULL, "alerts: %s", err.msg);
            return;
        }
        changed |= a->now[i].state != a->reported[i].state;
    }
    if (!changed) {
        *pending_since = 0;
        return;
    }
    if (*pending_since == 0)
        *pending_since = mono;
    if (mono - *pending_since < cfg->alerts.group_ms ||
        (*last_sent > 0 && mono - *last_sent < cfg->alerts.min_interval_ms))
        return;
    buf_init(&body, 64 * 1024);
    n = compose(a, &body, subject, sizeof(subject));
    if (n > 0 && send_all(a, subject, buf_str(&body)) == 0) {
        log_info(NULL, "alert sent: %s", subject);
        memcpy(a->reported, a->now, cfg->system_count * sizeof(*a->now));
        *last_sent = mono;
        *pending_since = 0;
    }
    buf_fini(&body);
}

static void *
alerts_main(void *arg)
{
    struct alerts *a = arg;
    int64_t pending_since = 0, last_sent = 0;

    (void)pthread_setname_np(pthread_self(), "concord-alerts");
    pthread_mutex_lock(&a->mu);
    while (!a->stop) {
        struct timespec ts;
        int64_t ns;

        pthread_mutex_unlock(&a->mu);
        turn(a, &pending_since, &last_sent);
        pthread_mutex_lock(&a->mu);
        clock_gettime(CLOCK_REALTIME, &ts);
        ns = ts.tv_nsec + (a->cfg->alerts.every_ms % 1000) * 1000000;
        ts.tv_sec += (time_t)(a->cfg->alerts.every_ms / 1000 + ns / 1000000000);
        ts.tv_nsec = ns % 1000000000;
        if (!a->stop)
            (void)pthread_cond_timedwait(&a->cv, &a->mu, &ts);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

int
daemon_alerts_start(const struct config *cfg, struct alerts **out, struct error *err)
{
    struct alerts *a;

    *out = NULL;
    if (!cfg->alerts.enabled)
        return 0;
    a = xcalloc(1, sizeof(*a));
    a->cfg = cfg;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    a->reported = xcalloc(cfg->system_count + 1, sizeof(*a->reported));
    a->now = xcalloc(cfg->system_count + 1, sizeof(*a->now));
    if (store_open(&a->st, cfg->store_url, err) == -1 ||
        pthread_create(&a->thread, NULL, alerts_main, a) != 0) {
        store_close(a->st);
        free(a->reported);
        free(a->now);
        free(a);
        return error_set(err, ERROR_INTERNAL, "alerts: cannot start");
    }
    *out = a;
    return 0;
}

void
daemon_alerts_stop(struct alerts *a)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->mu);
    a->stop = 1;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->thread, NULL);
    store_close(a->st);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    free(a->reported);
    free(a->now);
    free(a);
}
