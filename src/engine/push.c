/* SPDX-License-Identifier: MIT */

/*
 * Push registrations of the calendar kinds (docs/calendars.md, "Push"):
 * Google watch channels and Microsoft Graph change-notification
 * subscriptions that announce the system's public_url, so that a change in
 * the calendar makes concord poll it now instead of at its next turn.
 *
 * The poll thread keeps them alive (engine_push_tick()): Google channels
 * cannot be renewed, so a new one is opened renew_before ahead of the
 * newest one's end and the older ones are stopped once it answers (for a
 * moment both are live: no change falls between them); a Graph
 * subscription is renewed with a PATCH, and made again when Graph no
 * longer knows it. Every registration is in the store with the secret its
 * notifications carry (X-Goog-Channel-Token, clientState), so a restarted
 * daemon goes on with the registrations it made instead of leaking them,
 * and a system whose public_url was removed has its registrations stopped.
 *
 * The HTTP threads check each notification against the registrations in
 * memory (engine_push_check()): a wrong or unknown token or clientState is
 * refused, a Graph validation handshake is answered with its token as
 * text/plain at once (Graph waits 10 s), a Google channel's first "sync"
 * message is only acknowledged, and the rest are journaled as hints.
 */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <cjson/cJSON.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "engine/engine_int.h"
#include "engine/poll.h"
#include "model/value.h"
#include "store/store.h"

/* How soon a failed registration is tried again, at most. */
#define PUSH_RETRY_MS 30000
/* How often a system's registrations are looked at. */
#define PUSH_CHECK_MS 1000

struct push_reg {
    char *system;
    char *id;
    char *resource_id; /* Google's resourceId; NULL for Graph */
    char *secret;      /* X-Goog-Channel-Token or clientState */
    int64_t expires_at_ms;
    int64_t created_at_ms;
    int renew_now; /* Graph said reauthorizationRequired: renew at the next look */
    int removed;   /* Graph said subscriptionRemoved: make another */
};

struct engine_push {
    pthread_mutex_t mu; /* regs: read by the HTTP threads, changed by the poll thread */
    struct push_reg *regs;
    size_t count, cap;
    int64_t *next_at; /* poll thread: per system, when to look again */
};

static void
reg_fini(struct push_reg *r)
{
    if (r->secret != NULL)
        explicit_bzero(r->secret, strlen(r->secret));
    free(r->system);
    free(r->id);
    free(r->resource_id);
    free(r->secret);
    memset(r, 0, sizeof(*r));
}

/* Add a registration (mu held). */
static void
reg_add(struct engine_push *p, const char *system, const char *id, const char *resource_id,
        const char *secret, int64_t expires_at_ms, int64_t created_at_ms)
{
    struct push_reg *r;

    if (p->count == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 8;
        p->regs = xreallocarray(p->regs, p->cap, sizeof(*p->regs));
    }
    r = &p->regs[p->count++];
    memset(r, 0, sizeof(*r));
    r->system = xstrdup(system);
    r->id = xstrdup(id);
    r->resource_id = resource_id ? xstrdup(resource_id) : NULL;
    r->secret = xstrdup(secret);
    r->expires_at_ms = expires_at_ms;
    r->created_at_ms = created_at_ms;
}

/* The registration (system, id), or NULL (mu held). */
static struct push_reg *
reg_find(struct engine_push *p, const char *system, const char *id)
{
    for (size_t i = 0; i < p->count; i++) {
        if (strcmp(p->regs[i].system, system) == 0 && strcmp(p->regs[i].id, id) == 0)
            return &p->regs[i];
    }
    return NULL;
}

/* Forget (system, id) in memory and in the store. */
static int
reg_forget(struct engine *e, const char *system, const char *id, struct error *err)
{
    struct engine_push *p = e->push;
    char *sys = xstrdup(system), *rid = xstrdup(id);
    int rc = store_push_delete(e->poll_st, sys, rid, err);

    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->count; i++) {
        if (strcmp(p->regs[i].system, sys) == 0 && strcmp(p->regs[i].id, rid) == 0) {
            reg_fini(&p->regs[i]);
            p->regs[i] = p->regs[--p->count];
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
    free(sys);
    free(rid);
    return rc;
}

/* Keep a new or renewed registration, in the store first. */
static int
reg_keep(struct engine *e, const struct push_reg *r, struct error *err)
{
    struct engine_push *p = e->push;
    struct push_reg *have;
    struct store_push row = {
        .system = r->system,
        .id = r->id,
        .resource_id = r->resource_id,
        .secret = r->secret,
        .expires_at_ms = r->expires_at_ms,
        .created_at_ms = r->created_at_ms,
    };

    if (store_push_put(e->poll_st, &row, err) == -1)
        return -1;
    pthread_mutex_lock(&p->mu);
    have = reg_find(p, r->system, r->id);
    if (have != NULL) {
        have->expires_at_ms = r->expires_at_ms;
        have->renew_now = 0;
    } else {
        reg_add(p, r->system, r->id, r->resource_id, r->secret, r->expires_at_ms, r->created_at_ms);
    }
    pthread_mutex_unlock(&p->mu);
    return 0;
}

int
engine_push_load(struct engine *e, struct error *err)
{
    struct engine_push *p = xcalloc(1, sizeof(*p));
    struct store_push *rows = NULL;
    int n;

    pthread_mutex_init(&p->mu, NULL);
    p->next_at = xcalloc(e->sys_count + 1, sizeof(*p->next_at));
    e->push = p;
    if (e->poll_st == NULL)
        return 0; /* nothing is polled: nothing is pushed either */
    n = store_push_list(e->poll_st, &rows, err);
    if (n == -1)
        return -1;
    for (int i = 0; i < n; i++)
        reg_add(p, rows[i].system, rows[i].id, rows[i].resource_id, rows[i].secret,
                rows[i].expires_at_ms, rows[i].created_at_ms);
    store_push_free(rows, n);
    return 0;
}

void
engine_push_free(struct engine *e)
{
    struct engine_push *p = e->push;

    if (p == NULL)
        return;
    for (size_t i = 0; i < p->count; i++)
        reg_fini(&p->regs[i]);
    free(p->regs);
    free(p->next_at);
    pthread_mutex_destroy(&p->mu);
    free(p);
    e->push = NULL;
}

/* ---- checking notifications (HTTP threads) ---- */

/* Equal secrets, in time that does not depend on where they differ. */
static int
secret_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = la != lb;

    for (size_t i = 0; i < la; i++)
        diff |= (unsigned char)(a[i] ^ b[i < lb ? i : 0]);
    return diff == 0 && lb > 0;
}

static void
refuse(struct engine_push_answer *out, int status, const char *why)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "error", why);
    out->status = status;
    out->body = cJSON_PrintUnformatted(o);
    out->journal = 0;
    (void)snprintf(out->why, sizeof(out->why), "%s", why);
    cJSON_Delete(o);
}

/* A Google channel's notification: headers only. */
static void
check_google(struct engine_push *p, const struct config_system *sys,
             const struct engine_push_request *req, struct engine_push_answer *out)
{
    struct push_reg *r;
    int ok;

    if (req->channel_id == NULL || req->channel_id[0] == '\0') {
        refuse(out, 400, "not a channel notification: X-Goog-Channel-ID is missing");
        return;
    }
    pthread_mutex_lock(&p->mu);
    r = reg_find(p, sys->name, req->channel_id);
    ok = r != NULL && req->channel_token != NULL && secret_equal(r->secret, req->channel_token);
    pthread_mutex_unlock(&p->mu);
    if (!ok) {
        refuse(out, 401, "unknown channel, or X-Goog-Channel-Token is not the channel's: refused");
        return;
    }
    if (req->resource_state != NULL && strcmp(req->resource_state, "sync") == 0) {
        out->status = 200; /* a new channel's first message: nothing changed */
        return;
    }
    out->journal = 1;
    (void)snprintf(out->delivery_id, sizeof(out->delivery_id), "push:%.80s:%.40s", req->channel_id,
                   req->message_number ? req->message_number : "");
    if (req->message_number == NULL)
        out->delivery_id[0] = '\0';
}

/* A Graph batch of change (or lifecycle) notifications: each must carry
 * the clientState of the subscription it names. */
static void
check_graph(struct engine_push *p, const struct config_system *sys,
            const struct engine_push_request *req, struct engine_push_answer *out)
{
    cJSON *body = cJSON_ParseWithLength(req->body ? req->body : "", req->body_len);
    const cJSON *item, *list = cJSON_GetObjectItemCaseSensitive(body, "value");
    int good = 0, bad = 0, changes = 0;

    if (req->validation_token != NULL) {
        /* The handshake of a new or moved subscription: the token back, as
         * text, at once. */
        out->status = 200;
        out->body = xstrdup(req->validation_token);
        out->content_type = "text/plain; charset=utf-8";
        cJSON_Delete(body);
        return;
    }
    if (!cJSON_IsArray(list)) {
        cJSON_Delete(body);
        refuse(out, 400, "not a change notification: no `value` list");
        return;
    }
    pthread_mutex_lock(&p->mu);
    cJSON_ArrayForEach(item, list)
    {
        const cJSON *sid = cJSON_GetObjectItemCaseSensitive(item, "subscriptionId");
        const cJSON *cs = cJSON_GetObjectItemCaseSensitive(item, "clientState");
        const cJSON *life = cJSON_GetObjectItemCaseSensitive(item, "lifecycleEvent");
        struct push_reg *r = cJSON_IsString(sid) ? reg_find(p, sys->name, sid->valuestring) : NULL;

        if (r == NULL || !cJSON_IsString(cs) || !secret_equal(r->secret, cs->valuestring)) {
            bad++;
            continue;
        }
        good++;
        if (cJSON_IsString(life) && strcmp(life->valuestring, "reauthorizationRequired") == 0)
            r->renew_now = 1;
        else if (cJSON_IsString(life) && strcmp(life->valuestring, "subscriptionRemoved") == 0)
            r->removed = 1;
        else
            changes++; /* a change, or "missed": read what changed */
    }
    pthread_mutex_unlock(&p->mu);
    cJSON_Delete(body);
    if (good == 0 && bad > 0) {
        refuse(out, 401,
               "unknown subscription, or clientState is not the subscription's: "
               "refused");
        return;
    }
    if (bad > 0)
        log_warn(&(struct log_ctx){.system = sys->name},
                 "%d notification(s) of a batch had an unknown subscription or clientState: "
                 "dropped",
                 bad);
    if (changes == 0) {
        out->status = 202;
        out->body = xstrdup("{\"status\":\"accepted\"}");
        return;
    }
    out->journal = 1;
}

void
engine_push_check(struct engine *e, const struct config_system *sys,
                  const struct engine_push_request *req, struct engine_push_answer *out)
{
    memset(out, 0, sizeof(*out));
    if (e->push == NULL) {
        refuse(out, 503, "concord is starting; send it again");
        return;
    }
    if (sys->profile == CONFIG_PROFILE_GOOGLE_CALENDAR)
        check_google(e->push, sys, req, out);
    else
        check_graph(e->push, sys, req, out);
}

/* ---- keeping registrations alive (the poll thread) ---- */

/* A random secret or id: n bytes as hex into out (2n + 1 bytes). */
static void
random_hex(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char rnd[48];

    if (n > sizeof(rnd))
        n = sizeof(rnd);
    if (getrandom(rnd, n, 0) != (ssize_t)n) {
        for (size_t i = 0; i < n; i++)
            rnd[i] = (unsigned char)(clock_random_unit() * 256.0);
    }
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[rnd[i] >> 4];
        out[2 * i + 1] = hex[rnd[i] & 15];
    }
    out[2 * n] = '\0';
    explicit_bzero(rnd, sizeof(rnd));
}

/* One call of the registration API: 1 with the answer parsed (a 2xx; NULL
 * when it has no JSON body), 0 with *status (and why) for anything else,
 * -1. */
static int
call(const struct engine_poll_job *job, const char *method, const char *url, const cJSON *body,
     long *status, cJSON **answer, char *why, size_t why_len, struct error *err)
{
    char *text = body ? cJSON_PrintUnformatted(body) : NULL, *got = NULL, *error = NULL;
    int rc = engine_poll_call(job, method, url, text, status, &got, &error, err);

    free(text);
    *answer = NULL;
    if (rc == -1)
        return -1;
    if (*status >= 200 && *status < 300) {
        *answer = got != NULL && got[0] != '\0' ? cJSON_Parse(got) : NULL;
        rc = 1;
    } else {
        const char *at = strstr(url, "://");

        at = at ? strchr(at + 3, '/') : url;
        if (*status == 0)
            (void)snprintf(why, why_len, "%s %s: %.200s", method, at ? at : url,
                           error ? error : "no answer");
        else
            (void)snprintf(why, why_len, "%s %s: HTTP %ld: %.200s", method, at ? at : url, *status,
                           got ? got : "");
        rc = 0;
    }
    free(got);
    free(error);
    return rc;
}

/* Google's expiration: milliseconds, as a string of digits or a number. */
static int64_t
google_ms(const cJSON *v, int64_t fallback)
{
    if (cJSON_IsString(v) && v->valuestring[0] >= '0' && v->valuestring[0] <= '9')
        return strtoll(v->valuestring, NULL, 10);
    if (cJSON_IsNumber(v))
        return (int64_t)v->valuedouble;
    return fallback;
}

/* Open a new watch channel on the calendar. Returns 1, 0 (why), -1. */
static int
google_open(struct engine *e, const struct engine_poll_job *job, char *why, size_t why_len,
            struct error *err)
{
    const struct config_system *sys = job->cc->system;
    int64_t now = clock_now_ms(), want = now + sys->push.ttl_ms;
    char id[64], secret[97], ttl[32], *url;
    cJSON *body = cJSON_CreateObject(), *params = cJSON_CreateObject(), *answer = NULL;
    long status;
    int rc;

    memcpy(id, "concord-", 8);
    random_hex(id + 8, 16);
    random_hex(secret, 24);
    (void)snprintf(ttl, sizeof(ttl), "%lld", (long long)(sys->push.ttl_ms / 1000));
    cJSON_AddStringToObject(body, "id", id);
    cJSON_AddStringToObject(body, "type", "web_hook");
    cJSON_AddStringToObject(body, "address", sys->push.url);
    cJSON_AddStringToObject(body, "token", secret);
    cJSON_AddNumberToObject(body, "expiration", (double)want);
    cJSON_AddStringToObject(params, "ttl", ttl);
    cJSON_AddItemToObject(body, "params", params);
    url = xasprintf("%s%s/watch", sys->base_url, sys->push.resource);
    rc = call(job, "POST", url, body, &status, &answer, why, why_len, err);
    free(url);
    cJSON_Delete(body);
    if (rc == 1) {
        const cJSON *rid = cJSON_GetObjectItemCaseSensitive(answer, "resourceId");
        struct push_reg r = {
            .system = sys->name,
            .id = id,
            .resource_id = cJSON_IsString(rid) ? rid->valuestring : NULL,
            .secret = secret,
            .expires_at_ms =
                google_ms(cJSON_GetObjectItemCaseSensitive(answer, "expiration"), want),
            .created_at_ms = now,
        };

        rc = reg_keep(e, &r, err) == -1 ? -1 : 1;
        if (rc == 1)
            log_info(&(struct log_ctx){.system = sys->name},
                     "push: watch channel %s opened, until %lld", id, (long long)r.expires_at_ms);
    }
    explicit_bzero(secret, sizeof(secret));
    cJSON_Delete(answer);
    return rc;
}

/* Stop a channel (a 404: it is gone already). Returns 1, 0 (why), -1. */
static int
google_stop(struct engine *e, const struct engine_poll_job *job, const char *id,
            const char *resource_id, char *why, size_t why_len, struct error *err)
{
    const struct config_system *sys = job->cc->system;
    cJSON *body = cJSON_CreateObject(), *answer = NULL;
    char *url = xasprintf("%s/channels/stop", sys->base_url);
    long status;
    int rc;

    cJSON_AddStringToObject(body, "id", id);
    cJSON_AddStringToObject(body, "resourceId", resource_id ? resource_id : "");
    rc = call(job, "POST", url, body, &status, &answer, why, why_len, err);
    free(url);
    cJSON_Delete(body);
    cJSON_Delete(answer);
    if (rc == 0 && status == 404)
        rc = 1;
    if (rc == 1) {
        log_info(&(struct log_ctx){.system = sys->name}, "push: watch channel %s stopped", id);
        rc = reg_forget(e, sys->name, id, err) == -1 ? -1 : 1;
    }
    return rc;
}

/* The system's registrations as copies (mu taken here), newest last. */
static size_t
regs_of(struct engine *e, const char *system, struct push_reg **out)
{
    struct engine_push *p = e->push;
    size_t n = 0;

    pthread_mutex_lock(&p->mu);
    *out = xcalloc(p->count + 1, sizeof(**out));
    for (size_t i = 0; i < p->count; i++) {
        const struct push_reg *r = &p->regs[i];

        if (strcmp(r->system, system) != 0)
            continue;
        (*out)[n] = *r;
        (*out)[n].system = xstrdup(r->system);
        (*out)[n].id = xstrdup(r->id);
        (*out)[n].resource_id = r->resource_id ? xstrdup(r->resource_id) : NULL;
        (*out)[n].secret = xstrdup(r->secret);
        n++;
    }
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 1; i < n; i++) {
        for (size_t k = i; k > 0 && (*out)[k].expires_at_ms < (*out)[k - 1].expires_at_ms; k--) {
            struct push_reg t = (*out)[k];

            (*out)[k] = (*out)[k - 1];
            (*out)[k - 1] = t;
        }
    }
    return n;
}

static void
regs_free(struct push_reg *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        reg_fini(&list[i]);
    free(list);
}

/* A registration made where none was live: changes made meanwhile were
 * pushed to no one, so the collection is read now. */
static int
read_the_gap(struct engine *e, const struct engine_poll_job *job, struct error *err)
{
    log_info(&(struct log_ctx){.system = job->cc->system->name, .collection = job->cc->name},
             "push: no registration was live; %s is read now", job->cc->name);
    return store_poll_request(e->poll_st, job->cc->name, 0, err) == -1 ? -1 : 1;
}

/*
 * How long before r's end it is replaced: renew_before, or half of the
 * life it was given when that is shorter. Google may grant less than it
 * was asked (its own cap); a channel that lives less than renew_before
 * would otherwise be replaced at every look, a new channel a second.
 */
static int64_t
renew_margin(const struct config_system *sys, const struct push_reg *r)
{
    int64_t half = (r->expires_at_ms - r->created_at_ms) / 2;

    return half > 0 && half < sys->push.renew_before_ms ? half : sys->push.renew_before_ms;
}

/*
 * Google: a live channel whose end is further than renew_before; else a
 * new one (then the older ones are stopped: channels cannot be renewed).
 * With push off, every channel is stopped. Returns 1, 0 (why), -1.
 */
static int
google_tick(struct engine *e, const struct engine_poll_job *job, char *why, size_t why_len,
            struct error *err)
{
    const struct config_system *sys = job->cc->system;
    struct push_reg *regs;
    int64_t now = clock_now_ms();
    size_t n = regs_of(e, sys->name, &regs), keep = n;
    int rc = 1;

    if (sys->push.enabled &&
        (n == 0 || regs[n - 1].expires_at_ms - now <= renew_margin(sys, &regs[n - 1]))) {
        rc = google_open(e, job, why, why_len, err);
        if (rc == 1 && (n == 0 || regs[n - 1].expires_at_ms <= now))
            rc = read_the_gap(e, job, err);
        keep = n + 1; /* the new one, newer than all of these */
    } else if (sys->push.enabled) {
        keep = n - 1; /* the newest stays */
    }
    for (size_t i = 0; i < n && rc == 1; i++) {
        if (i == keep)
            continue;
        if (regs[i].expires_at_ms <= now)
            rc = reg_forget(e, sys->name, regs[i].id, err) == -1 ? -1 : 1; /* ended by itself */
        else
            rc = google_stop(e, job, regs[i].id, regs[i].resource_id, why, why_len, err);
    }
    regs_free(regs, n);
    return rc;
}

/* A Graph subscription's expirationDateTime for now + the system's ttl. */
static void
graph_expiry(const struct config_system *sys, char *out, size_t len)
{
    (void)clock_format_ms((clock_now_ms() + sys->push.ttl_ms) / 1000 * 1000, out, len);
}

/* Graph: make the subscription. Returns 1, 0 (why), -1. */
static int
graph_create(struct engine *e, const struct engine_poll_job *job, char *why, size_t why_len,
             struct error *err)
{
    const struct config_system *sys = job->cc->system;
    char secret[97], when[40], *url = xasprintf("%s/subscriptions", sys->base_url);
    cJSON *body = cJSON_CreateObject(), *answer = NULL;
    int64_t now = clock_now_ms(), exp;
    long status;
    int rc;

    random_hex(secret, 24);
    graph_expiry(sys, when, sizeof(when));
    cJSON_AddStringToObject(body, "changeType", "created,updated,deleted");
    cJSON_AddStringToObject(body, "notificationUrl", sys->push.url);
    cJSON_AddStringToObject(body, "lifecycleNotificationUrl", sys->push.url);
    cJSON_AddStringToObject(body, "resource", sys->push.resource);
    cJSON_AddStringToObject(body, "expirationDateTime", when);
    cJSON_AddStringToObject(body, "clientState", secret);
    /* Graph calls back (the handshake) before it answers. */
    rc = call(job, "POST", url, body, &status, &answer, why, why_len, err);
    free(url);
    cJSON_Delete(body);
    if (rc == 1) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(answer, "id");

        if (!cJSON_IsString(id)) {
            (void)snprintf(why, why_len, "POST /subscriptions: the answer names no id");
            rc = 0;
        } else {
            struct push_reg r = {
                .system = sys->name, .id = id->valuestring, .secret = secret, .created_at_ms = now};

            if (value_timestamp_ms(cJSON_GetObjectItemCaseSensitive(answer, "expirationDateTime"),
                                   &exp) == -1)
                exp = now + sys->push.ttl_ms;
            r.expires_at_ms = exp;
            rc = reg_keep(e, &r, err) == -1 ? -1 : 1;
            if (rc == 1)
                log_info(&(struct log_ctx){.system = sys->name},
                         "push: subscription %s made, until %lld", r.id, (long long)exp);
        }
    }
    explicit_bzero(secret, sizeof(secret));
    cJSON_Delete(answer);
    return rc;
}

/* Graph: renew (PATCH) reg; a subscription Graph no longer knows is
 * forgotten, and *gone set. Returns 1, 0 (why), -1. */
static int
graph_renew(struct engine *e, const struct engine_poll_job *job, const struct push_reg *reg,
            int *gone, char *why, size_t why_len, struct error *err)
{
    const struct config_system *sys = job->cc->system;
    char when[40], *url = xasprintf("%s/subscriptions/%s", sys->base_url, reg->id);
    cJSON *body = cJSON_CreateObject(), *answer = NULL;
    struct push_reg r = *reg;
    long status;
    int rc;

    graph_expiry(sys, when, sizeof(when));
    cJSON_AddStringToObject(body, "expirationDateTime", when);
    rc = call(job, "PATCH", url, body, &status, &answer, why, why_len, err);
    free(url);
    cJSON_Delete(body);
    *gone = rc == 0 && status == 404;
    if (*gone) {
        log_info(&(struct log_ctx){.system = sys->name},
                 "push: subscription %s is gone; another is made", reg->id);
        rc = reg_forget(e, sys->name, reg->id, err) == -1 ? -1 : 1;
    } else if (rc == 1) {
        if (value_timestamp_ms(cJSON_GetObjectItemCaseSensitive(answer, "expirationDateTime"),
                               &r.expires_at_ms) == -1)
            r.expires_at_ms = clock_now_ms() + sys->push.ttl_ms;
        rc = reg_keep(e, &r, err) == -1 ? -1 : 1;
        if (rc == 1)
            log_info(&(struct log_ctx){.system = sys->name},
                     "push: subscription %s renewed, until %lld", r.id, (long long)r.expires_at_ms);
    }
    cJSON_Delete(answer);
    return rc;
}

/* Graph: delete a subscription (push turned off, or a spare). */
static int
graph_delete(struct engine *e, const struct engine_poll_job *job, const char *id, char *why,
             size_t why_len, struct error *err)
{
    const struct config_system *sys = job->cc->system;
    char *url = xasprintf("%s/subscriptions/%s", sys->base_url, id);
    cJSON *answer = NULL;
    long status;
    int rc = call(job, "DELETE", url, NULL, &status, &answer, why, why_len, err);

    free(url);
    cJSON_Delete(answer);
    if (rc == 0 && status == 404)
        rc = 1;
    return rc == 1 ? (reg_forget(e, sys->name, id, err) == -1 ? -1 : 1) : rc;
}

/*
 * Graph: one live subscription, renewed renew_before ahead of its end (or
 * at once after reauthorizationRequired), made again when Graph removed
 * it or it ended. With push off, every one is deleted. Returns 1, 0
 * (why), -1.
 */
static int
graph_tick(struct engine *e, const struct engine_poll_job *job, char *why, size_t why_len,
           struct error *err)
{
    const struct config_system *sys = job->cc->system;
    struct push_reg *regs;
    int64_t now = clock_now_ms();
    size_t n = regs_of(e, sys->name, &regs);
    int rc = 1, live = 0, gone = 0;

    for (size_t i = 0; i < n && rc == 1; i++) {
        int newest = i + 1 == n;

        if (!sys->push.enabled || !newest)
            rc = graph_delete(e, job, regs[i].id, why, why_len, err);
        else if (regs[i].removed || regs[i].expires_at_ms <= now)
            rc = reg_forget(e, sys->name, regs[i].id, err) == -1 ? -1 : 1;
        else if (regs[i].renew_now || regs[i].expires_at_ms - now <= sys->push.renew_before_ms) {
            rc = graph_renew(e, job, &regs[i], &gone, why, why_len, err);
            live = rc == 1 && !gone;
        } else {
            live = 1;
        }
    }
    regs_free(regs, n);
    if (rc == 1 && sys->push.enabled && !live) {
        rc = graph_create(e, job, why, why_len, err);
        if (rc == 1)
            rc = read_the_gap(e, job, err);
    }
    return rc;
}

void
engine_push_tick(struct engine *e)
{
    struct engine_push *p = e->push;
    int64_t now = clock_now_ms();

    if (p == NULL)
        return;
    for (size_t i = 0; i < e->sys_count && !atomic_load(&e->stop_poller); i++) {
        const struct config_system *sys = e->systems[i].cfg;
        struct push_reg *regs = NULL;
        size_t n;
        const struct config_collection *cc = NULL;
        struct error err = {0};
        char why[400] = "";
        int rc;

        if (p->next_at[i] > now || (sys->profile != CONFIG_PROFILE_GOOGLE_CALENDAR &&
                                    sys->profile != CONFIG_PROFILE_MICROSOFT_GRAPH))
            continue;
        n = regs_of(e, sys->name, &regs);
        regs_free(regs, n);
        if (!sys->push.enabled && n == 0)
            continue;
        for (size_t k = 0; k < e->coll_count && cc == NULL; k++) {
            if (e->colls[k].cfg->system == sys)
                cc = e->colls[k].cfg;
        }
        if (cc == NULL)
            continue; /* registrations ask for polls: without a collection, none */
        struct engine_poll_job job = {
            .cfg = e->cfg,
            .cc = cc,
            .st = e->poll_st,
            .http = e->poll_http,
            .oauth = e->oauth,
            .stop = &e->stop_poller,
        };
        rc = sys->profile == CONFIG_PROFILE_GOOGLE_CALENDAR
                 ? google_tick(e, &job, why, sizeof(why), &err)
                 : graph_tick(e, &job, why, sizeof(why), &err);
        if (rc != 1) {
            int64_t retry = sys->push.ttl_ms / 10;

            retry = retry < 1000 ? 1000 : retry > PUSH_RETRY_MS ? PUSH_RETRY_MS : retry;
            log_warn(&(struct log_ctx){.system = sys->name},
                     "push registration failed (tried again in %lld ms): %s", (long long)retry,
                     rc == -1 ? err.msg : why);
            p->next_at[i] = clock_now_ms() + retry;
        } else {
            p->next_at[i] = clock_now_ms() + PUSH_CHECK_MS;
        }
    }
}
