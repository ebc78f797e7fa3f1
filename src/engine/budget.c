/* SPDX-License-Identifier: MIT */

/*
 * A system's request budget and circuit breaker, shared by the threads
 * that send to it: the writer (deliveries: may_send() and system_feedback()
 * in deliver.c), the automation thread (http actions, automation.c) and
 * the daemon's reader (polls, poll.c: the budget only). One budget per
 * system, so the sum of all never passes its rate, and one breaker, so an
 * automation does not hammer a system its deliveries found down (nor the
 * reverse). The rate figures an answer carries are read here too, once for
 * the deliveries and the http actions (engine_budget_figures()), so an
 * X-RateLimit-Remaining of 0 answered to either holds both until its reset.
 *
 * sys->budget_mu guards sys->rl, sys->br, sys->br_saved and the last rate
 * figures learnt (sys->figures_*, whose count the delivery thread reads
 * without it, to look at its held claims only when one came). It is held
 * only for the arithmetic of ratelimit.c and breaker.c: never across a
 * request, a sleep or the store, so a thread inside a store transaction
 * may take it, and a thread holding it never waits for anything. Breaker
 * transitions are written to the store after the lock is let go, by the
 * thread that sees them first, on its own store handle.
 */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/breaker.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/ratelimit.h"
#include "engine/engine_int.h"
#include "store/store.h"

enum engine_hold
engine_budget_take(struct engine_sys *sys, int64_t now_ms, int64_t *wait_ms,
                   struct engine_take *took)
{
    enum engine_hold hold = ENGINE_GO;
    int64_t wait;

    *wait_ms = 0;
    if (took != NULL)
        *took = (struct engine_take){0};
    pthread_mutex_lock(&sys->budget_mu);
    wait = ratelimit_wait_ms(&sys->rl, now_ms);
    if (wait > 0) {
        hold = ENGINE_HOLD_RATE;
        *wait_ms = wait;
    } else if (sys->cfg->breaker_enabled && !breaker_allow(&sys->br, now_ms)) {
        /* The breaker last: in half-open, allowing is sending the one probe. */
        hold = ENGINE_HOLD_BREAKER;
        *wait_ms = breaker_wait_ms(&sys->br, now_ms);
    } else {
        (void)ratelimit_take(&sys->rl, now_ms);
        if (took != NULL)
            took->take = ratelimit_last_take(&sys->rl);
        if (took != NULL && sys->cfg->breaker_enabled)
            took->probe = breaker_probe(&sys->br);
    }
    pthread_mutex_unlock(&sys->budget_mu);
    return hold;
}

void
engine_budget_give_back(struct engine_sys *sys, const struct engine_take *took, int64_t now_ms)
{
    pthread_mutex_lock(&sys->budget_mu);
    (void)ratelimit_give_back(&sys->rl, took->take, now_ms);
    if (sys->cfg->breaker_enabled)
        breaker_unprobe(&sys->br, took->probe);
    pthread_mutex_unlock(&sys->budget_mu);
}

int64_t
engine_budget_take_rate(struct engine_sys *sys, int64_t now_ms)
{
    int64_t wait;

    pthread_mutex_lock(&sys->budget_mu);
    wait = ratelimit_wait_ms(&sys->rl, now_ms);
    if (wait <= 0) {
        (void)ratelimit_take(&sys->rl, now_ms);
        wait = 0;
    }
    pthread_mutex_unlock(&sys->budget_mu);
    return wait;
}

void
engine_budget_note(struct engine_sys *sys, const struct engine_budget_answer *a, int64_t now_ms)
{
    pthread_mutex_lock(&sys->budget_mu);
    if (a->block_until_ms > 0)
        ratelimit_block_until(&sys->rl, a->block_until_ms);
    if (a->remaining >= 0 && a->reset_at_ms > 0)
        ratelimit_observe(&sys->rl, a->remaining, a->reset_at_ms, now_ms);
    /* For the delivery thread's held claims, whose tokens were taken
     * before (engine_budget_learnt()): figures ratelimit_observe() kept. */
    if (a->remaining >= 0 && a->reset_at_ms > now_ms) {
        sys->figures_remaining = a->remaining;
        sys->figures_reset_ms = a->reset_at_ms;
        atomic_fetch_add(&sys->figures_seq, 1);
    }
    if (sys->cfg->breaker_enabled && a->breaker_ok >= 0)
        breaker_record(&sys->br, a->breaker_ok, now_ms, a->what);
    pthread_mutex_unlock(&sys->budget_mu);
}

void
engine_budget_figures(const struct http_response *resp, int64_t now_ms, long *remaining,
                      int64_t *reset_at_ms)
{
    const char *rem = http_response_header(resp, "X-RateLimit-Remaining");
    const char *reset = http_response_header(resp, "X-RateLimit-Reset");
    char *end;

    *remaining = -1;
    *reset_at_ms = 0;
    if (rem != NULL && reset != NULL) {
        long r = strtol(rem, &end, 10);
        long long t = strtoll(reset, NULL, 10);

        if (*end == '\0' && r >= 0 && t > 0) {
            *remaining = r;
            *reset_at_ms = t > 1000000000LL ? (int64_t)t * 1000 : now_ms + (int64_t)t * 1000;
            return;
        }
    }
    rem = http_response_header(resp, "X-HubSpot-RateLimit-Remaining");
    reset = http_response_header(resp, "X-HubSpot-RateLimit-Interval-Milliseconds");
    if (rem != NULL && reset != NULL) {
        long r = strtol(rem, &end, 10);
        long long iv = strtoll(reset, NULL, 10);

        if (*end == '\0' && r >= 0 && iv > 0 && iv <= 86400000LL) {
            *remaining = r;
            *reset_at_ms = now_ms + (int64_t)iv;
        }
    }
}

enum engine_hold
engine_budget_held(struct engine_sys *sys, int64_t now_ms, uint64_t *probe)
{
    enum engine_hold hold = ENGINE_GO;

    *probe = 0;
    pthread_mutex_lock(&sys->budget_mu);
    if (sys->rl.blocked_until_ms > now_ms) {
        hold = ENGINE_HOLD_RATE;
    } else if (sys->cfg->breaker_enabled && sys->br.state != BREAKER_CLOSED) {
        /* Half-open, its one probe may be among them: that one alone. */
        hold = ENGINE_HOLD_BREAKER;
        *probe = breaker_probe(&sys->br);
    }
    pthread_mutex_unlock(&sys->budget_mu);
    return hold;
}

int
engine_budget_learnt(struct engine_sys *sys, unsigned *seen, int64_t now_ms, long *remaining)
{
    unsigned seq = atomic_load(&sys->figures_seq);
    int in_force;

    if (seq == *seen)
        return 0;
    pthread_mutex_lock(&sys->budget_mu);
    *seen = atomic_load(&sys->figures_seq);
    *remaining = sys->figures_remaining;
    in_force = sys->figures_reset_ms > now_ms;
    pthread_mutex_unlock(&sys->budget_mu);
    return in_force;
}

enum breaker_state
engine_budget_breaker(struct engine_sys *sys, char *reason, size_t reason_len)
{
    enum breaker_state state;

    pthread_mutex_lock(&sys->budget_mu);
    state = sys->br.state;
    if (reason != NULL && reason_len > 0)
        (void)snprintf(reason, reason_len, "%s", sys->br.reason);
    pthread_mutex_unlock(&sys->budget_mu);
    return state;
}

void
engine_budget_persist(struct engine_sys *sys, struct store *st)
{
    char reason[BREAKER_REASON_LEN];
    enum breaker_state state;
    struct error err = {0};
    int changed;

    pthread_mutex_lock(&sys->budget_mu);
    state = sys->br.state;
    changed = state != sys->br_saved;
    if (changed) {
        sys->br_saved = state;
        (void)snprintf(reason, sizeof(reason), "%s", sys->br.reason);
    }
    pthread_mutex_unlock(&sys->budget_mu);
    if (!changed)
        return;
    log_warn(&(struct log_ctx){.system = sys->cfg->name}, "circuit breaker %s: %s",
             breaker_state_name(state), reason);
    if (store_system_breaker(st, sys->cfg->name, breaker_state_name(state), reason, clock_now_ms(),
                             &err) == -1)
        log_error(&(struct log_ctx){.system = sys->cfg->name}, "%s", err.msg);
}
