/* SPDX-License-Identifier: MIT */

/*
 * tests/unit/test_ratelimit.c — the token bucket and the server's limits
 * (src/core/ratelimit.c). The random cases print their seed; rerun one with
 * CONCORD_TEST_SEED=N ./test_ratelimit bucket_never_exceeds_burst_plus_rate.
 */
/* link: core */

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "check.h"
#include "core/ratelimit.h"

#define T0 1700000000000LL /* an arbitrary "now" in epoch ms */

static void
burst_then_rate(void)
{
    struct ratelimit rl;

    ratelimit_init(&rl, 5, 5, T0);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(ratelimit_take(&rl, T0), 0);
    CHECK_EQ(ratelimit_take(&rl, T0), 200); /* one token every 200 ms */
    CHECK_EQ(ratelimit_take(&rl, T0 + 150), 50);
    CHECK_EQ(ratelimit_take(&rl, T0 + 200), 0);
    CHECK_EQ(ratelimit_take(&rl, T0 + 200), 200);
    /* A long pause refills the bucket to burst, not beyond. */
    for (int i = 0; i < 5; i++)
        CHECK_EQ(ratelimit_take(&rl, T0 + 60000), 0);
    CHECK_EQ(ratelimit_take(&rl, T0 + 60000), 200);
}

static void
fractional_rate_and_small_burst(void)
{
    struct ratelimit rl;

    ratelimit_init(&rl, 0.5, 0, T0); /* one request per 2 s; burst read as 1 */
    CHECK_EQ(ratelimit_take(&rl, T0), 0);
    CHECK_EQ(ratelimit_take(&rl, T0), 2000);
    CHECK_EQ(ratelimit_wait_ms(&rl, T0 + 1999), 1);
    CHECK_EQ(ratelimit_take(&rl, T0 + 2000), 0);

    ratelimit_init(&rl, 3, 1, T0); /* 333.3 ms per token: waits round up */
    CHECK_EQ(ratelimit_take(&rl, T0), 0);
    CHECK_EQ(ratelimit_take(&rl, T0), 334);
    CHECK_EQ(ratelimit_take(&rl, T0 + 334), 0);
}

static void
zero_rate_is_unlimited(void)
{
    struct ratelimit rl;

    ratelimit_init(&rl, 0, 1, T0);
    for (int i = 0; i < 100000; i++)
        CHECK_EQ(ratelimit_take(&rl, T0), 0);
    /* Blocks still apply to an unlimited budget. */
    ratelimit_block_until(&rl, T0 + 10);
    CHECK_EQ(ratelimit_take(&rl, T0), 10);
    CHECK_EQ(ratelimit_take(&rl, T0 + 10), 0);
}

static void
wait_ms_peeks_without_taking(void)
{
    struct ratelimit rl;

    ratelimit_init(&rl, 10, 2, T0);
    CHECK_EQ(ratelimit_wait_ms(&rl, T0), 0);
    CHECK_EQ(ratelimit_wait_ms(&rl, T0), 0);
    CHECK_EQ(ratelimit_take(&rl, T0), 0);
    CHECK_EQ(ratelimit_take(&rl, T0), 0);
    CHECK_EQ(ratelimit_wait_ms(&rl, T0), 100);
    CHECK_EQ(ratelimit_wait_ms(&rl, T0 + 40), 60);
    CHECK_EQ(ratelimit_take(&rl, T0 + 40), 60); /* a refused take takes nothing ... */
    CHECK_EQ(ratelimit_take(&rl, T0 + 100), 0); /* ... so the promise holds */
}

static void
block_only_lengthens(void)
{
    struct ratelimit rl;

    ratelimit_init(&rl, 100, 100, T0);
    ratelimit_block_until(&rl, T0 + 600000); /* 429 with Retry-After: 600 */
    CHECK_EQ(ratelimit_take(&rl, T0), 600000);
    ratelimit_block_until(&rl, T0 + 1000); /* an earlier time does not shorten it */
    CHECK_EQ(ratelimit_wait_ms(&rl, T0 + 500), 599500);
    ratelimit_block_until(&rl, T0 + 700000);
    CHECK_EQ(ratelimit_wait_ms(&rl, T0), 700000);
    CHECK_EQ(ratelimit_take(&rl, T0 + 700000), 0);
    /* The bucket was full all along: a block does not cost tokens, nor add any. */
    for (int i = 1; i < 100; i++)
        CHECK_EQ(ratelimit_take(&rl, T0 + 700000), 0);
    CHECK_EQ(ratelimit_take(&rl, T0 + 700000), 10);
}

static void
observe_zero_remaining_blocks_until_reset(void)
{
    struct ratelimit rl;

    ratelimit_init(&rl, 0, 1, T0);
    ratelimit_observe(&rl, 0, T0 + 30000, T0);
    CHECK_EQ(ratelimit_take(&rl, T0), 30000);
    CHECK_EQ(ratelimit_take(&rl, T0 + 29999), 1);
    CHECK_EQ(ratelimit_take(&rl, T0 + 30000), 0); /* the window reset */
    CHECK_EQ(ratelimit_take(&rl, T0 + 30000), 0);
}

static void
observe_spreads_a_small_remaining(void)
{
    struct ratelimit rl;

    ratelimit_init(&rl, 0, 1, T0);
    ratelimit_observe(&rl, 4, T0 + 4000, T0);
    CHECK_EQ(ratelimit_take(&rl, T0), 0);
    CHECK_EQ(ratelimit_take(&rl, T0), 1000); /* 3 left over 4 s: one a second */
    CHECK_EQ(ratelimit_take(&rl, T0 + 1000), 0);
    /* The answer to that request confirms the count: the spacing stays. */
    ratelimit_observe(&rl, 2, T0 + 4000, T0 + 1050);
    CHECK_EQ(ratelimit_wait_ms(&rl, T0 + 1050), 950);
    CHECK_EQ(ratelimit_take(&rl, T0 + 2000), 0);
    CHECK_EQ(ratelimit_take(&rl, T0 + 3000), 0);
    CHECK_EQ(ratelimit_take(&rl, T0 + 3000), 1000); /* none left before the reset */
    CHECK_EQ(ratelimit_take(&rl, T0 + 4000), 0);
}

static void
observe_large_remaining_does_not_slow_the_bucket(void)
{
    struct ratelimit rl;

    ratelimit_init(&rl, 5, 5, T0);
    ratelimit_observe(&rl, 5000, T0 + 60000, T0);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(ratelimit_take(&rl, T0), 0);
    CHECK_EQ(ratelimit_take(&rl, T0), 200); /* the bucket, not the server, decides */
}

static void
observe_ignores_nonsense(void)
{
    struct ratelimit rl;

    ratelimit_init(&rl, 0, 1, T0);
    ratelimit_observe(&rl, -1, T0 + 1000, T0);
    ratelimit_observe(&rl, 0, T0, T0);        /* a reset in the past */
    ratelimit_observe(&rl, 0, T0 - 5000, T0); /* ditto */
    CHECK_EQ(ratelimit_take(&rl, T0), 0);
}

/* check_below() for int64_t ranges. */
static void
give_back_the_last_takes(void)
{
    struct ratelimit rl;
    uint64_t a, b, c;
    int64_t w;

    ratelimit_init(&rl, 1, 3, T0); /* burst 3, then one a second */
    CHECK_EQ(ratelimit_take(&rl, T0), 0);
    a = ratelimit_last_take(&rl);
    CHECK_EQ(ratelimit_take(&rl, T0), 0);
    b = ratelimit_last_take(&rl);
    CHECK_EQ(ratelimit_take(&rl, T0), 0);
    c = ratelimit_last_take(&rl);
    CHECK(a != b && b != c && c != 0);
    CHECK_EQ(ratelimit_take(&rl, T0), 1000);
    CHECK_EQ(ratelimit_give_back(&rl, b, T0), 0); /* not the last one */
    CHECK_EQ(ratelimit_give_back(&rl, c, T0 + 10), 1);
    CHECK_EQ(ratelimit_give_back(&rl, c, T0 + 10), 0); /* once */
    CHECK_EQ(ratelimit_give_back(&rl, b, T0 + 10), 1);
    /* Two undone: two go at once, as if never taken. */
    CHECK_EQ(ratelimit_take(&rl, T0 + 10), 0);
    CHECK_EQ(ratelimit_take(&rl, T0 + 10), 0);
    w = ratelimit_take(&rl, T0 + 10);
    CHECK(w >= 990 && w <= 991); /* the refill since T0, rounded up */

    /* Never past burst: the refill filled the bucket meanwhile. */
    ratelimit_init(&rl, 1, 2, T0);
    CHECK_EQ(ratelimit_take(&rl, T0), 0);
    a = ratelimit_last_take(&rl);
    CHECK_EQ(ratelimit_give_back(&rl, a, T0 + 5000), 1);
    CHECK_EQ(ratelimit_take(&rl, T0 + 5000), 0);
    CHECK_EQ(ratelimit_take(&rl, T0 + 5000), 0);
    CHECK_EQ(ratelimit_take(&rl, T0 + 5000), 1000);

    /* The server's remaining: one more, unless figures came since. */
    ratelimit_init(&rl, 0, 1, T0);
    ratelimit_observe(&rl, 1, T0 + 10000, T0);
    CHECK_EQ(ratelimit_take(&rl, T0), 0);
    a = ratelimit_last_take(&rl);
    CHECK(ratelimit_wait_ms(&rl, T0) > 0);
    CHECK_EQ(ratelimit_give_back(&rl, a, T0 + 1), 1);
    CHECK_EQ(ratelimit_take(&rl, T0 + 1), 0);
    a = ratelimit_last_take(&rl);
    ratelimit_observe(&rl, 1, T0 + 10000, T0 + 2); /* the server's count: did not see it */
    CHECK_EQ(ratelimit_give_back(&rl, a, T0 + 3), 0);
    CHECK_EQ(ratelimit_take(&rl, T0 + 6000), 0);       /* the one it left */
    CHECK_EQ(ratelimit_wait_ms(&rl, T0 + 6000), 4000); /* and no other */
    CHECK_EQ(ratelimit_give_back(&rl, 0, T0 + 3), 0);
}

static int64_t
below(uint64_t *s, int64_t n)
{
    return (int64_t)(check_rand(s) % (uint64_t)n);
}

#define RUN_TAKES 3000

/*
 * The contract: over any window of length T ms, at most burst + rate*T/1000
 * takes succeed, not counting takes given back. Random rates, bursts, call
 * times, blocks, server figures (which may only take requests away) and
 * give-backs of the last takes. Also: after a refused take, taking again
 * after the wait it gave succeeds, and a give-back of the last take with
 * no figures since succeeds.
 */
static void
one_random_run(uint64_t *s)
{
    static int64_t at[RUN_TAKES];
    static uint64_t took[RUN_TAKES];
    struct ratelimit rl;
    size_t observed = 0;                               /* takes kept when figures last came */
    double rate = (double)(1 + below(s, 2000)) / 10.0; /* 0.1 to 200 per second */
    double burst = (double)(1 + below(s, 20)) + (below(s, 2) ? 0.5 : 0.0);
    int64_t now = T0 + below(s, 1000000);
    size_t n = 0;

    ratelimit_init(&rl, rate, burst, now);
    for (int step = 0; step < 20000 && n < RUN_TAKES; step++) {
        int64_t w;

        now += below(s, 4) == 0 ? below(s, 3000) : below(s, 3);
        if (below(s, 500) == 0)
            ratelimit_block_until(&rl, now + below(s, 5000));
        if (below(s, 300) == 0) {
            ratelimit_observe(&rl, (long)below(s, 10), now + below(s, 10000), now);
            observed = n;
        }
        /* Undo a claim or a few, the last ones first, as a turn does. */
        for (int k = below(s, 8) == 0 ? (int)below(s, 4) : 0; k > 0 && n > 0; k--) {
            int back = ratelimit_give_back(&rl, took[n - 1], now);

            if (n > observed)
                CHECK_EQ(back, 1);
            if (!back)
                break;
            n--;
            if (observed > n)
                observed = n;
        }
        w = ratelimit_take(&rl, now);
        CHECK(w >= 0);
        if (w == 0) {
            took[n] = ratelimit_last_take(&rl);
            at[n++] = now;
            continue;
        }
        CHECK_EQ(ratelimit_wait_ms(&rl, now), w);
        if (below(s, 3) == 0) {
            now += w; /* the caller who waits as told gets a token */
            CHECK_EQ(ratelimit_take(&rl, now), 0);
            took[n] = ratelimit_last_take(&rl);
            at[n++] = now;
        }
    }
    /* Every window that starts and ends on a take is the tightest of its length. */
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i; j < n; j++) {
            double bound = burst + rate * (double)(at[j] - at[i]) / 1000.0;

            if ((double)(j - i + 1) > bound + 1e-6)
                check_fail(__FILE__, __LINE__,
                           "rate %.1f burst %.1f: %zu takes in %lld ms, bound %.3f", rate, burst,
                           j - i + 1, (long long)(at[j] - at[i]), bound);
        }
    }
    CHECK(n > 0);
}

static void
bucket_never_exceeds_burst_plus_rate(void)
{
    uint64_t seed = check_seed(), s = seed;

    for (int run = 0; run < 30; run++)
        one_random_run(&s);
}

/* Under one observation (remaining R until reset), at most R takes before the reset. */
static void
server_remaining_is_never_exceeded(void)
{
    uint64_t seed = check_seed(), s = seed;

    for (int run = 0; run < 200; run++) {
        struct ratelimit rl;
        int64_t now = T0, reset = T0 + 1 + below(&s, 20000);
        long remaining = (long)below(&s, 50), taken = 0;

        ratelimit_init(&rl, below(&s, 2) ? 0 : 1000, 1000, now);
        ratelimit_observe(&rl, remaining, reset, now);
        while (now < reset) {
            if (ratelimit_take(&rl, now) == 0) {
                taken++;
                /* An undone claim's request is the server's again. */
                if (below(&s, 4) == 0 &&
                    ratelimit_give_back(&rl, ratelimit_last_take(&rl), now + below(&s, 50)) == 1)
                    taken--;
            }
            now += below(&s, 50);
        }
        if (taken > remaining)
            check_fail(__FILE__, __LINE__, "run %d: %ld taken, %ld allowed", run, taken, remaining);
        /* Spread, not starved: most of what is allowed is used before the reset. */
        if (reset - T0 > 2000 && remaining >= 2 && taken < remaining / 2)
            check_fail(__FILE__, __LINE__, "run %d: only %ld of %ld used", run, taken, remaining);
    }
}

const struct check_case check_cases[] = {
    CHECK_CASE(burst_then_rate),
    CHECK_CASE(fractional_rate_and_small_burst),
    CHECK_CASE(zero_rate_is_unlimited),
    CHECK_CASE(wait_ms_peeks_without_taking),
    CHECK_CASE(block_only_lengthens),
    CHECK_CASE(observe_zero_remaining_blocks_until_reset),
    CHECK_CASE(observe_spreads_a_small_remaining),
    CHECK_CASE(observe_large_remaining_does_not_slow_the_bucket),
    CHECK_CASE(observe_ignores_nonsense),
    CHECK_CASE(give_back_the_last_takes),
    CHECK_CASE(bucket_never_exceeds_burst_plus_rate),
    CHECK_CASE(server_remaining_is_never_exceeded),
    {0},
};
