/* SPDX-License-Identifier: MIT */

/*
 * The token bucket and the server-side limits of ratelimit.h. Every wait is
 * the largest of three independent limits, each of which only loosens as
 * time passes: a block (429, a profile's "blocked" answer), the server's
 * X-RateLimit figures, and the bucket. take() commits only when all three
 * allow, and computes them with the very expressions wait_ms() uses, so
 * "wait that long, then take" succeeds. Doubles hold the tokens; the bucket
 * is brought up to date lazily, on each call.
 */

#include "core/ratelimit.h"

#include <math.h>

/* A wait longer than this (about 3500 years) is reported as this. */
#define RATELIMIT_WAIT_MAX (INT64_MAX / 4)

void
ratelimit_init(struct ratelimit *rl, double rate_per_s, double burst, int64_t now_ms)
{
    /* NaN fails every comparison: it becomes "no bucket", and burst 1. */
    rl->rate_per_s = rate_per_s > 0 ? rate_per_s : 0;
    rl->burst = burst >= 1 ? burst : 1;
    rl->tokens = rl->burst;
    rl->last_ms = now_ms;
    rl->blocked_until_ms = INT64_MIN;
    rl->server_reset_ms = INT64_MIN;
    rl->server_remaining = 0;
    rl->last_take_ms = INT64_MIN;
    rl->prev_take_ms = INT64_MIN;
    rl->takes = 0;
    rl->observed_at = 0;
}

/* The tokens at now_ms: the bucket refilled since last_ms, never above burst. */
static double
tokens_at(const struct ratelimit *rl, int64_t now_ms)
{
    double t = rl->tokens;

    if (now_ms > rl->last_ms)
        t += (double)(now_ms - rl->last_ms) * rl->rate_per_s / 1000.0;
    return t < rl->burst ? t : rl->burst;
}

static int64_t
bucket_wait(const struct ratelimit *rl, int64_t now_ms)
{
    double need, w;
    int64_t wait;

    if (rl->rate_per_s <= 0)
        return 0;
    if (tokens_at(rl, now_ms) >= 1.0)
        return 0;
    need = 1.0 - tokens_at(rl, now_ms);
    w = ceil(need * 1000.0 / rl->rate_per_s);
    if (!(w < (double)RATELIMIT_WAIT_MAX))
        return RATELIMIT_WAIT_MAX;
    wait = w >= 1 ? (int64_t)w : 1;
    /* Rounding may leave the refill a hair short of one token: step past it,
     * so that take() at now + wait finds the token this promised. */
    for (int i = 0; i < 4 && tokens_at(rl, now_ms + wait) < 1.0; i++)
        wait++;
    return wait;
}

static int64_t
server_wait(const struct ratelimit *rl, int64_t now_ms)
{
    int64_t next;

    if (rl->server_reset_ms <= now_ms)
        return 0; /* no figures, or they have expired */
    if (rl->server_remaining <= 0)
        return rl->server_reset_ms - now_ms;
    if (rl->last_take_ms == INT64_MIN || rl->last_take_ms >= rl->server_reset_ms ||
        rl->server_remaining >= INT32_MAX)
        return 0; /* nothing to spread after, or so many left that spacing is nil */
    /* When the bucket alone would not spend what is left before the reset,
     * it is the tighter limit: no spacing. (As time passes the bucket's
     * share only shrinks, so this never turns a promised wait into a longer
     * one.) */
    if (rl->rate_per_s > 0 &&
        (double)rl->server_remaining >=
            tokens_at(rl, now_ms) +
                rl->rate_per_s * (double)(rl->server_reset_ms - now_ms) / 1000.0)
        return 0;
    /* Spread what is left evenly up to the reset. */
    next = rl->last_take_ms + (rl->server_reset_ms - rl->last_take_ms) / (rl->server_remaining + 1);
    return next > now_ms ? next - now_ms : 0;
}

int64_t
ratelimit_wait_ms(const struct ratelimit *rl, int64_t now_ms)
{
    int64_t wait = 0, w;

    if (rl->blocked_until_ms > now_ms)
        wait = rl->blocked_until_ms - now_ms;
    w = server_wait(rl, now_ms);
    if (w > wait)
        wait = w;
    w = bucket_wait(rl, now_ms);
    if (w > wait)
        wait = w;
    return wait;
}

int64_t
ratelimit_take(struct ratelimit *rl, int64_t now_ms)
{
    int64_t wait = ratelimit_wait_ms(rl, now_ms);

    if (wait > 0)
        return wait;
    if (rl->rate_per_s > 0) {
        rl->tokens = tokens_at(rl, now_ms) - 1.0;
        if (now_ms > rl->last_ms)
            rl->last_ms = now_ms;
    }
    if (rl->server_reset_ms > now_ms)
        rl->server_remaining--;
    rl->prev_take_ms = rl->last_take_ms;
    rl->last_take_ms = now_ms;
    rl->takes++;
    return 0;
}

uint64_t
ratelimit_last_take(const struct ratelimit *rl)
{
    return rl->takes;
}

/*
 * Why only the last take, and why then exactly: since it was made nothing
 * but the refill changed the bucket. Had it not been made, the bucket
 * would hold one token more until that reached burst and the refill
 * stopped there: min(burst, tokens + 1) now, either way. (After a later
 * take that is no longer so: the later one may have found a bucket that
 * the refill had filled to burst either way.) The server's remaining: the
 * same figures still hold, none having come since, and the take counted
 * against them if they held when it was made (last_take_ms is that time,
 * or after several give-backs a later one: then a take that counted may
 * not be given its request back, never the reverse).
 */
int
ratelimit_give_back(struct ratelimit *rl, uint64_t take, int64_t now_ms)
{
    if (take == 0 || take != rl->takes || rl->observed_at >= take)
        return 0;
    if (rl->rate_per_s > 0) {
        double t = tokens_at(rl, now_ms) + 1.0;

        rl->tokens = t < rl->burst ? t : rl->burst;
        if (now_ms > rl->last_ms)
            rl->last_ms = now_ms;
    }
    if (rl->server_reset_ms > rl->last_take_ms)
        rl->server_remaining++;
    rl->last_take_ms = rl->prev_take_ms;
    rl->takes--;
    return 1;
}

void
ratelimit_block_until(struct ratelimit *rl, int64_t until_ms)
{
    if (until_ms > rl->blocked_until_ms)
        rl->blocked_until_ms = until_ms;
}

void
ratelimit_observe(struct ratelimit *rl, long remaining, int64_t reset_at_ms, int64_t now_ms)
{
    if (remaining < 0 || reset_at_ms <= now_ms)
        return;
    rl->server_reset_ms = reset_at_ms;
    rl->server_remaining = remaining;
    rl->observed_at = rl->takes;
}
