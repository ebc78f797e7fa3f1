/* SPDX-License-Identifier: MIT */

/*
 * The circuit breaker of breaker.h: the three states, the consecutive
 * failure count and the failure share over a ring of time buckets. The
 * engine asks breaker_allow() before sending to a system and reports with
 * breaker_record(); what to do with a job the breaker holds back (leave it
 * pending) is the engine's business, not this file's.
 */

#include "core/breaker.h"

#include <stdio.h>
#include <string.h>

struct breaker_policy
breaker_policy_default(void)
{
    return (struct breaker_policy){
        .failures_to_open = 5,
        .failure_rate = 0.5,
        .min_requests = 20,
        .window_ms = 30000,
        .cooldown_ms = 30000,
    };
}

static void
clear_counts(struct breaker *b)
{
    b->consecutive_failures = 0;
    for (size_t i = 0; i < BREAKER_BUCKETS; i++)
        b->buckets[i] = (struct breaker_bucket){.slot = INT64_MIN, .ok = 0, .failed = 0};
}

void
breaker_init(struct breaker *b, const struct breaker_policy *policy)
{
    memset(b, 0, sizeof(*b));
    b->policy = *policy;
    if (b->policy.min_requests < 1)
        b->policy.min_requests = 1;
    if (b->policy.window_ms < BREAKER_BUCKETS)
        b->policy.window_ms = BREAKER_BUCKETS;
    if (b->policy.cooldown_ms < 0)
        b->policy.cooldown_ms = 0;
    b->state = BREAKER_CLOSED;
    clear_counts(b);
}

/* The bucket number of now_ms (floor division, so negative times work too). */
static int64_t
slot_of(const struct breaker *b, int64_t now_ms)
{
    int64_t width = b->policy.window_ms / BREAKER_BUCKETS;

    return now_ms >= 0 ? now_ms / width : -((-(now_ms + 1)) / width) - 1;
}

static size_t
ring_index(int64_t slot)
{
    int64_t i = slot % BREAKER_BUCKETS;

    return (size_t)(i < 0 ? i + BREAKER_BUCKETS : i);
}

static void
count(struct breaker *b, int ok, int64_t now_ms)
{
    int64_t slot = slot_of(b, now_ms);
    struct breaker_bucket *k = &b->buckets[ring_index(slot)];

    if (k->slot != slot)
        *k = (struct breaker_bucket){.slot = slot, .ok = 0, .failed = 0};
    if (ok && k->ok < UINT32_MAX)
        k->ok++;
    else if (!ok && k->failed < UINT32_MAX)
        k->failed++;
}

/* The results of the current bucket and the BREAKER_BUCKETS - 1 before it. */
static void
window_totals(const struct breaker *b, int64_t now_ms, uint64_t *total, uint64_t *failed)
{
    int64_t cur = slot_of(b, now_ms);

    *total = 0;
    *failed = 0;
    for (size_t i = 0; i < BREAKER_BUCKETS; i++) {
        const struct breaker_bucket *k = &b->buckets[i];

        if (k->slot == INT64_MIN || k->slot > cur || k->slot <= cur - BREAKER_BUCKETS)
            continue;
        *total += (uint64_t)k->ok + k->failed;
        *failed += k->failed;
    }
}

/* "30 s", "5 min", "250 ms": the window as a person wrote it. */
static void
format_span(char *out, size_t len, int64_t ms)
{
    if (ms % 3600000 == 0)
        (void)snprintf(out, len, "%lld h", (long long)(ms / 3600000));
    else if (ms % 60000 == 0)
        (void)snprintf(out, len, "%lld min", (long long)(ms / 60000));
    else if (ms % 1000 == 0)
        (void)snprintf(out, len, "%lld s", (long long)(ms / 1000));
    else
        (void)snprintf(out, len, "%lld ms", (long long)ms);
}

static void
trip(struct breaker *b, int64_t now_ms)
{
    b->state = BREAKER_OPEN;
    b->opened_at_ms = now_ms;
    b->probe_out = 0;
}

/* After a failure while closed: open when either rule says so. */
static void
maybe_open(struct breaker *b, int64_t now_ms, const char *what)
{
    const struct breaker_policy *p = &b->policy;
    uint64_t total, failed;
    char span[32];

    if (p->failures_to_open > 0 && b->consecutive_failures >= p->failures_to_open) {
        if (what != NULL && what[0] != '\0')
            (void)snprintf(b->reason, sizeof(b->reason), "%d consecutive failures: %s",
                           b->consecutive_failures, what);
        else
            (void)snprintf(b->reason, sizeof(b->reason), "%d consecutive failures",
                           b->consecutive_failures);
        trip(b, now_ms);
        return;
    }
    if (!(p->failure_rate > 0 && p->failure_rate <= 1))
        return;
    window_totals(b, now_ms, &total, &failed);
    if (total < (uint64_t)p->min_requests || (double)failed < p->failure_rate * (double)total)
        return;
    format_span(span, sizeof(span), p->window_ms);
    (void)snprintf(b->reason, sizeof(b->reason), "failure rate %d%% over %s",
                   (int)(((double)failed * 100.0 / (double)total) + 0.5), span);
    trip(b, now_ms);
}

/* Whether the cooldown that started at since_ms is over at now_ms. */
static int
cooled(const struct breaker *b, int64_t since_ms, int64_t now_ms)
{
    return now_ms >= since_ms && now_ms - since_ms >= b->policy.cooldown_ms;
}

int
breaker_allow(struct breaker *b, int64_t now_ms)
{
    switch (b->state) {
    case BREAKER_CLOSED:
        return 1;
    case BREAKER_OPEN:
        if (!cooled(b, b->opened_at_ms, now_ms))
            return 0;
        b->state = BREAKER_HALF_OPEN;
        break;
    case BREAKER_HALF_OPEN:
        /* A probe whose result never came is lost: let another go. */
        if (b->probe_out && !cooled(b, b->probe_sent_at_ms, now_ms))
            return 0;
        break;
    default:
        return 0;
    }
    b->probe_out = 1;
    b->probe_sent_at_ms = now_ms;
    b->probes++;
    return 1;
}

uint64_t
breaker_probe(const struct breaker *b)
{
    return b->state == BREAKER_HALF_OPEN && b->probe_out ? b->probes : 0;
}

void
breaker_unprobe(struct breaker *b, uint64_t probe)
{
    if (probe != 0 && breaker_probe(b) == probe)
        b->probe_out = 0;
}

static int64_t
cooldown_left(const struct breaker *b, int64_t since_ms, int64_t now_ms)
{
    if (cooled(b, since_ms, now_ms))
        return 0;
    if (now_ms < since_ms)
        return b->policy.cooldown_ms; /* the clock stepped back: wait a whole cooldown */
    return b->policy.cooldown_ms - (now_ms - since_ms);
}

int64_t
breaker_wait_ms(const struct breaker *b, int64_t now_ms)
{
    switch (b->state) {
    case BREAKER_CLOSED:
        return 0;
    case BREAKER_OPEN:
        return cooldown_left(b, b->opened_at_ms, now_ms);
    case BREAKER_HALF_OPEN:
        return b->probe_out ? cooldown_left(b, b->probe_sent_at_ms, now_ms) : 0;
    default:
        return b->policy.cooldown_ms;
    }
}

void
breaker_record(struct breaker *b, int ok, int64_t now_ms, const char *what)
{
    switch (b->state) {
    case BREAKER_CLOSED:
        count(b, ok, now_ms);
        if (ok) {
            b->consecutive_failures = 0;
            return;
        }
        if (b->consecutive_failures < INT32_MAX)
            b->consecutive_failures++;
        maybe_open(b, now_ms, what);
        return;
    case BREAKER_HALF_OPEN:
        if (ok) {
            b->state = BREAKER_CLOSED;
            b->reason[0] = '\0';
            b->probe_out = 0;
            clear_counts(b);
            return;
        }
        if (what != NULL && what[0] != '\0')
            (void)snprintf(b->reason, sizeof(b->reason), "probe failed: %s", what);
        else
            (void)snprintf(b->reason, sizeof(b->reason), "probe failed");
        trip(b, now_ms);
        return;
    case BREAKER_OPEN:
    default:
        return; /* sent before it opened: the cooldown decides, not this */
    }
}

const char *
breaker_state_name(enum breaker_state state)
{
    switch (state) {
    case BREAKER_CLOSED:
        return "closed";
    case BREAKER_OPEN:
        return "open";
    case BREAKER_HALF_OPEN:
        return "half-open";
    default:
        return "unknown";
    }
}
