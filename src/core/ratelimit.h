/* SPDX-License-Identifier: MIT */

/*
 * The request budget of one remote system: a token bucket, plus what the
 * system itself says about its limits (429 / Retry-After, a profile's
 * "you are blocked" answer, X-RateLimit-Remaining and -Reset). Pure: the
 * caller passes "now" in milliseconds (any monotonic or wall clock, used
 * consistently); nothing here reads a clock, sleeps or allocates.
 *
 * The guarantee, which every function below keeps: over any window of T
 * milliseconds, ratelimit_take() succeeds at most burst + rate_per_s * T /
 * 1000 times, not counting takes given back (ratelimit_give_back()). Blocks
 * and the server's own figures only ever take requests away, never add
 * any. See docs/internals/retry-policy.md.
 *
 * A struct ratelimit is embedded in its owner (one per system) and used by
 * one thread at a time; it owns nothing, so it has no _fini.
 */
#ifndef CONCORD_CORE_RATELIMIT_H
#define CONCORD_CORE_RATELIMIT_H

#include <stdint.h>

/* Fields are private to ratelimit.c; read them only in tests. */
struct ratelimit {
    double rate_per_s;        /* tokens added per second; 0: no bucket (unlimited) */
    double burst;             /* the bucket's size, >= 1 */
    double tokens;            /* 0..burst, as of last_ms */
    int64_t last_ms;          /* when tokens was last brought up to date */
    int64_t blocked_until_ms; /* nothing is taken before this; INT64_MIN: no block */
    int64_t server_reset_ms;  /* the server's figures hold until then; INT64_MIN: none */
    long server_remaining;    /* requests the server still allows before server_reset_ms */
    int64_t last_take_ms;     /* the last successful take; INT64_MIN: none yet */
    int64_t prev_take_ms;     /* last_take_ms before it was last set */
    uint64_t takes;           /* successful takes not given back: the last one's number */
    uint64_t observed_at;     /* takes when the server's figures last came */
};

/*
 * Start a budget of rate_per_s requests per second with bursts of up to
 * burst (values below 1 are read as 1), full at now_ms. rate_per_s <= 0 (or
 * NaN) means no bucket at all: only blocks and the server's figures limit.
 * May be called again on a live budget (a config reload): it starts afresh.
 */
void ratelimit_init(struct ratelimit *rl, double rate_per_s, double burst, int64_t now_ms);

/*
 * Take one request's token at now_ms. Returns 0 when it was taken (the
 * request may go now), else the milliseconds (>= 1) to wait until one is
 * available, and then nothing is taken. Waiting that long and calling
 * again succeeds, unless another take, block or observation came between.
 * A clock that steps back is read as standing still.
 */
int64_t ratelimit_take(struct ratelimit *rl, int64_t now_ms);

/*
 * The number of the last successful take (1, 2, ...): read right after a
 * ratelimit_take() that returned 0, it names that take for
 * ratelimit_give_back().
 */
uint64_t ratelimit_last_take(const struct ratelimit *rl);

/*
 * Give back the take numbered take, whose request will not be sent (its
 * claim was undone), at now_ms. Only the last take not given back yet,
 * and only when no server figures came after it, can be: then the budget
 * is as if it had never been made (the bucket's token is back, capped at
 * burst as a refill would be; the server's remaining is one more), and
 * the take before it is the last one, so takes are given back in the
 * reverse order they were made. Else nothing changes and the take counts
 * as used: a give-back never lets more through than the guarantee above.
 * The spacing of the server's figures counts from the take before again;
 * after a second give-back in a row, still from that one (a little
 * slower, never faster). Returns 1 when given back, 0 not.
 */
int ratelimit_give_back(struct ratelimit *rl, uint64_t take, int64_t now_ms);

/* What ratelimit_take() would return at now_ms, without taking anything. */
int64_t ratelimit_wait_ms(const struct ratelimit *rl, int64_t now_ms);

/*
 * Take nothing before until_ms: the system answered 429 with Retry-After,
 * or an answer its profile calls "rate limited". A block is only ever
 * lengthened: a later call with an earlier until_ms changes nothing.
 */
void ratelimit_block_until(struct ratelimit *rl, int64_t until_ms);

/*
 * What the system said in X-RateLimit-Remaining (remaining) and
 * X-RateLimit-Reset (reset_at_ms, already turned into an absolute time by
 * the caller), on an answer received at now_ms. The latest observation
 * replaces the previous one. Then, until reset_at_ms:
 *   - remaining == 0: nothing is taken (a block until reset_at_ms);
 *   - otherwise at most remaining requests are taken, and when remaining
 *     is small (fewer than the bucket could take before the reset, or
 *     there is no bucket) they are spread evenly: after a take at time t
 *     that leaves n of them, the next waits until
 *     t + (reset_at_ms - t) / (n + 1). Remaining 4 with 4 s to the reset
 *     allows one request a second, not 4 at once. A take made before the
 *     observation counts as t too, so an answer that comes back right
 *     after its request does not restart the spacing.
 * The bucket's own limit applies on top. An observation with remaining < 0
 * or reset_at_ms <= now_ms is ignored.
 */
void ratelimit_observe(struct ratelimit *rl, long remaining, int64_t reset_at_ms, int64_t now_ms);

#endif
