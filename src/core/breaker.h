/* SPDX-License-Identifier: MIT */

/*
 * A circuit breaker per remote system: when the system keeps failing,
 * deliveries to it pause instead of burning every job's attempts, and one
 * probe request now and then finds out when it is back.
 *
 *   closed    --(failures_to_open transient failures in a row, or a
 *                failure share >= failure_rate over window_ms with at
 *                least min_requests results)-->                        open
 *   open      --(cooldown_ms passed; the next allowed request is the
 *                probe)-->                                             half-open
 *   half-open --(the probe succeeds)-->                                closed
 *   half-open --(the probe fails; the cooldown starts again)-->        open
 *
 * Pure: the caller passes "now" in milliseconds; nothing here reads a
 * clock or allocates. The failure window is a ring of BREAKER_BUCKETS
 * buckets of window_ms / BREAKER_BUCKETS each, so memory is constant and
 * "the last window" means the current bucket and the nine before it.
 *
 * A struct breaker is embedded in its owner (one per system), used by one
 * thread at a time, and owns nothing (no _fini). See
 * docs/internals/retry-policy.md.
 */
#ifndef CONCORD_CORE_BREAKER_H
#define CONCORD_CORE_BREAKER_H

#include <stdint.h>

#define BREAKER_BUCKETS    10
#define BREAKER_REASON_LEN 160

struct breaker_policy {
    int failures_to_open; /* transient failures in a row that open it; <= 0: never */
    double failure_rate;  /* 0 < rate <= 1: a failure share that opens it; else never */
    int min_requests;     /* results needed in the window before the share counts; >= 1 */
    int64_t window_ms;    /* the span of the failure share; >= BREAKER_BUCKETS */
    int64_t cooldown_ms;  /* how long it stays open before a probe; >= 0 */
};

enum breaker_state {
    BREAKER_CLOSED = 0, /* requests flow */
    BREAKER_OPEN,       /* requests wait for the cooldown */
    BREAKER_HALF_OPEN,  /* one probe may go; its result decides */
};

/* Private to breaker.c: the counts of one slice of the window. */
struct breaker_bucket {
    int64_t slot; /* now_ms / bucket width when it was filled */
    uint32_t ok;
    uint32_t failed;
};

struct breaker {
    struct breaker_policy policy; /* a copy, made by breaker_init() */
    enum breaker_state state;
    /*
     * Why it is open or half-open, for `concord status`: "5 consecutive
     * failures: HTTP 503 from POST /contacts", "failure rate 62% over
     * 30 s", "probe failed: timeout from PUT /contacts/7". "" when closed.
     */
    char reason[BREAKER_REASON_LEN];
    int64_t opened_at_ms; /* when it last opened; 0 before the first time */
    /* Private to breaker.c. */
    int consecutive_failures;
    int probe_out;            /* half-open: the probe has gone and not reported */
    int64_t probe_sent_at_ms; /* when it went */
    uint64_t probes;          /* probes let go so far: the last one's number */
    struct breaker_bucket buckets[BREAKER_BUCKETS];
};

/*
 * The defaults of a system's `breaker:` section: 5 failures in a row, or a
 * failure share of 50% over 30 s with at least 20 results; cooldown 30 s.
 */
struct breaker_policy breaker_policy_default(void);

/*
 * Start a closed breaker that follows policy (copied; values out of range
 * are read as documented in struct breaker_policy). May be called again on
 * a live breaker: it starts afresh.
 */
void breaker_init(struct breaker *b, const struct breaker_policy *policy);

/*
 * Whether a request to the system may go at now_ms: 1 when closed; when
 * open and cooldown_ms has passed since opened_at_ms, it turns half-open
 * and this request is the probe (1); when half-open, 1 only if no probe is
 * out, and this request becomes the probe. Else 0. A probe that has not
 * reported within cooldown_ms is taken as lost, and another may go.
 */
int breaker_allow(struct breaker *b, int64_t now_ms);

/*
 * The number of the probe out now (half-open, its result not in): the
 * probes breaker_allow() let go are numbered 1, 2, ... Read right after
 * an allow that said 1 it tells whether that request is the probe (not 0)
 * or went through a closed breaker (0). 0 when no probe is out.
 */
uint64_t breaker_probe(const struct breaker *b);

/*
 * The probe numbered probe (breaker_probe()) was let go but will not be
 * sent (its claim was undone): if it is still the one out, the half-open
 * breaker lets another go at once, instead of taking it as lost after a
 * cooldown. Else nothing changes.
 */
void breaker_unprobe(struct breaker *b, uint64_t probe);

/*
 * How long until breaker_allow() may say 1 when nothing is recorded
 * meanwhile: 0 when it would say 1 at now_ms, else the milliseconds until
 * the cooldown (or a lost probe's wait) ends. Changes nothing.
 */
int64_t breaker_wait_ms(const struct breaker *b, int64_t now_ms);

/*
 * The result of a request that breaker_allow() let go. ok is 1 when the
 * system answered as a healthy system does (any 2xx, and also permanent
 * answers such as 400 or 422, which are the record's fault), 0 for a
 * transient failure (timeout, connection error, 5xx, 429). what (NULL
 * allowed; copied, cut to fit the reason) says what failed, e.g. "HTTP 503
 * from POST /contacts".
 *   closed: counts it; may open the breaker, with reason and opened_at_ms.
 *   half-open: it is the probe's result: ok closes the breaker and starts
 *     its counts afresh; a failure opens it again at now_ms.
 *   open: ignored (a request that left before the breaker opened).
 */
void breaker_record(struct breaker *b, int ok, int64_t now_ms, const char *what);

/* "closed", "open" or "half-open"; "unknown" for anything else. */
const char *breaker_state_name(enum breaker_state state);

#endif
