/* SPDX-License-Identifier: MIT */

/* tests/unit/test_breaker.c — the circuit breaker per system (src/core/breaker.c). */
/* link: core */

#include <stdio.h>
#include <string.h>

#include "check.h"
#include "core/breaker.h"

#define T0 1700000000000LL /* an arbitrary "now" in epoch ms */

static const struct breaker_policy consecutive_only = {.failures_to_open = 3,
                                                       .failure_rate = 0,
                                                       .min_requests = 1,
                                                       .window_ms = 10000,
                                                       .cooldown_ms = 5000};

static void
defaults(void)
{
    struct breaker_policy p = breaker_policy_default();
    struct breaker b;

    CHECK_EQ(p.failures_to_open, 5);
    CHECK(p.failure_rate > 0.49 && p.failure_rate < 0.51);
    CHECK_EQ(p.min_requests, 20);
    CHECK_EQ(p.window_ms, 30000);
    CHECK_EQ(p.cooldown_ms, 30000);
    breaker_init(&b, &p);
    CHECK_EQ(b.state, BREAKER_CLOSED);
    CHECK_STR_EQ(b.reason, "");
    CHECK_STR_EQ(breaker_state_name(BREAKER_CLOSED), "closed");
    CHECK_STR_EQ(breaker_state_name(BREAKER_OPEN), "open");
    CHECK_STR_EQ(breaker_state_name(BREAKER_HALF_OPEN), "half-open");
    CHECK_STR_EQ(breaker_state_name((enum breaker_state)42), "unknown");
}

static void
consecutive_failures_open_it(void)
{
    struct breaker b;

    breaker_init(&b, &consecutive_only);
    CHECK_EQ(breaker_allow(&b, T0), 1);
    breaker_record(&b, 0, T0, "HTTP 503 from POST /contacts");
    breaker_record(&b, 0, T0 + 1, "HTTP 503 from POST /contacts");
    breaker_record(&b, 1, T0 + 2, NULL); /* a success breaks the run */
    breaker_record(&b, 0, T0 + 3, "timeout from POST /contacts");
    breaker_record(&b, 0, T0 + 4, "timeout from POST /contacts");
    CHECK_EQ(b.state, BREAKER_CLOSED);
    CHECK_EQ(breaker_allow(&b, T0 + 5), 1);
    breaker_record(&b, 0, T0 + 5, "HTTP 503 from POST /contacts");
    CHECK_EQ(b.state, BREAKER_OPEN);
    CHECK_STR_EQ(b.reason, "3 consecutive failures: HTTP 503 from POST /contacts");
    CHECK_EQ(b.opened_at_ms, T0 + 5);
    CHECK_EQ(breaker_allow(&b, T0 + 6), 0);
    CHECK_EQ(breaker_wait_ms(&b, T0 + 6), 4999);
}

static void
cooldown_then_one_probe(void)
{
    struct breaker b;

    breaker_init(&b, &consecutive_only);
    for (int i = 0; i < 3; i++)
        breaker_record(&b, 0, T0, NULL);
    CHECK_STR_EQ(b.reason, "3 consecutive failures");
    CHECK_EQ(breaker_allow(&b, T0 + 4999), 0);
    CHECK_EQ(b.state, BREAKER_OPEN);
    CHECK_EQ(breaker_allow(&b, T0 + 5000), 1); /* the probe */
    CHECK_EQ(b.state, BREAKER_HALF_OPEN);
    CHECK_EQ(breaker_allow(&b, T0 + 5000), 0); /* only one at a time */
    CHECK_EQ(breaker_allow(&b, T0 + 6000), 0);
    CHECK(breaker_wait_ms(&b, T0 + 6000) > 0);
    breaker_record(&b, 1, T0 + 6000, NULL);
    CHECK_EQ(b.state, BREAKER_CLOSED);
    CHECK_STR_EQ(b.reason, "");
    CHECK_EQ(breaker_allow(&b, T0 + 6000), 1);
    CHECK_EQ(breaker_allow(&b, T0 + 6000), 1);
    CHECK_EQ(breaker_wait_ms(&b, T0 + 6000), 0);
    /* Closing starts the counts afresh: it takes 3 new failures to open. */
    breaker_record(&b, 0, T0 + 6001, NULL);
    breaker_record(&b, 0, T0 + 6002, NULL);
    CHECK_EQ(b.state, BREAKER_CLOSED);
}

static void
failed_probe_reopens_and_restarts_the_cooldown(void)
{
    struct breaker b;

    breaker_init(&b, &consecutive_only);
    for (int i = 0; i < 3; i++)
        breaker_record(&b, 0, T0, "x");
    CHECK_EQ(breaker_allow(&b, T0 + 7000), 1);
    breaker_record(&b, 0, T0 + 7100, "HTTP 502 from PUT /contacts/7");
    CHECK_EQ(b.state, BREAKER_OPEN);
    CHECK_STR_EQ(b.reason, "probe failed: HTTP 502 from PUT /contacts/7");
    CHECK_EQ(b.opened_at_ms, T0 + 7100);
    CHECK_EQ(breaker_allow(&b, T0 + 12099), 0);
    CHECK_EQ(breaker_wait_ms(&b, T0 + 12099), 1);
    CHECK_EQ(breaker_allow(&b, T0 + 12100), 1);
    CHECK_EQ(b.state, BREAKER_HALF_OPEN);
}

static void
results_while_open_are_ignored(void)
{
    struct breaker b;

    breaker_init(&b, &consecutive_only);
    for (int i = 0; i < 3; i++)
        breaker_record(&b, 0, T0, "x");
    breaker_record(&b, 1, T0 + 10, NULL); /* sent before it opened */
    CHECK_EQ(b.state, BREAKER_OPEN);
    breaker_record(&b, 0, T0 + 4000, "late");
    CHECK_EQ(b.opened_at_ms, T0); /* the cooldown does not restart */
    CHECK_EQ(breaker_allow(&b, T0 + 5000), 1);
}

static void
lost_probe_is_replaced_after_a_cooldown(void)
{
    struct breaker b;

    breaker_init(&b, &consecutive_only);
    for (int i = 0; i < 3; i++)
        breaker_record(&b, 0, T0, "x");
    CHECK_EQ(breaker_allow(&b, T0 + 5000), 1);
    CHECK_EQ(breaker_allow(&b, T0 + 9999), 0);
    CHECK_EQ(breaker_wait_ms(&b, T0 + 9999), 1);
    CHECK_EQ(breaker_allow(&b, T0 + 10000), 1); /* no word from the first probe */
    CHECK_EQ(breaker_allow(&b, T0 + 10000), 0);
}

static void
each_probe_has_its_number(void)
{
    struct breaker b;

    breaker_init(&b, &consecutive_only);
    CHECK_EQ(breaker_allow(&b, T0), 1);
    CHECK_EQ(breaker_probe(&b), 0); /* closed: no probe */
    for (int i = 0; i < 3; i++)
        breaker_record(&b, 0, T0, "x");
    CHECK_EQ(breaker_probe(&b), 0); /* open */
    CHECK_EQ(breaker_allow(&b, T0 + 5000), 1);
    CHECK_EQ(breaker_probe(&b), 1);
    CHECK_EQ(breaker_allow(&b, T0 + 10000), 1); /* the first one is lost */
    CHECK_EQ(breaker_probe(&b), 2);
    breaker_record(&b, 0, T0 + 10001, "x");
    CHECK_EQ(breaker_probe(&b), 0); /* open again */
    CHECK_EQ(breaker_allow(&b, T0 + 15001), 1);
    CHECK_EQ(breaker_probe(&b), 3);
    breaker_record(&b, 1, T0 + 15002, NULL);
    CHECK_EQ(breaker_probe(&b), 0); /* closed */
}

static void
a_probe_never_sent_lets_another_go(void)
{
    struct breaker b;

    breaker_init(&b, &consecutive_only);
    for (int i = 0; i < 3; i++)
        breaker_record(&b, 0, T0, "x");
    CHECK_EQ(breaker_allow(&b, T0 + 5000), 1);
    CHECK_EQ(breaker_probe(&b), 1);
    CHECK_EQ(breaker_allow(&b, T0 + 5001), 0);
    breaker_unprobe(&b, 2); /* not the one out */
    CHECK_EQ(breaker_allow(&b, T0 + 5001), 0);
    breaker_unprobe(&b, 1);
    CHECK_EQ(b.state, BREAKER_HALF_OPEN);
    CHECK_EQ(breaker_probe(&b), 0);
    CHECK_EQ(breaker_wait_ms(&b, T0 + 5001), 0);
    CHECK_EQ(breaker_allow(&b, T0 + 5001), 1); /* not a cooldown later */
    CHECK_EQ(breaker_probe(&b), 2);
    breaker_unprobe(&b, 1); /* an old one: the new probe stays out */
    CHECK_EQ(breaker_allow(&b, T0 + 5002), 0);
    breaker_record(&b, 0, T0 + 5003, "x");
    breaker_unprobe(&b, 2); /* open again: nothing to give back */
    CHECK_EQ(b.state, BREAKER_OPEN);
    CHECK_EQ(breaker_allow(&b, T0 + 5004), 0);
}

static void
failure_rate_over_the_window(void)
{
    const struct breaker_policy p = {.failures_to_open = 0,
                                     .failure_rate = 0.6,
                                     .min_requests = 10,
                                     .window_ms = 30000,
                                     .cooldown_ms = 1000};
    struct breaker b;

    breaker_init(&b, &p);
    /* Alternating results: 50% fails, under the 60% rate, never opens. */
    for (int i = 0; i < 40; i++)
        breaker_record(&b, i % 2, T0 + i * 100, "x");
    CHECK_EQ(b.state, BREAKER_CLOSED);
    /* Much later (the old results left the window): 4 ok then failures. */
    for (int i = 0; i < 4; i++)
        breaker_record(&b, 1, T0 + 100000, NULL);
    for (int i = 0; i < 5; i++)
        breaker_record(&b, 0, T0 + 100000, "x");
    CHECK_EQ(b.state, BREAKER_CLOSED); /* 5 of 9: too few results to judge */
    breaker_record(&b, 0, T0 + 100500, "HTTP 500 from POST /x");
    CHECK_EQ(b.state, BREAKER_OPEN); /* 6 of 10 = 60%: a share >= the rate opens it */
    CHECK_EQ(b.opened_at_ms, T0 + 100500);
    CHECK_STR_EQ(b.reason, "failure rate 60% over 30 s");
}

static void
old_results_leave_the_window(void)
{
    const struct breaker_policy p = {.failures_to_open = 0,
                                     .failure_rate = 0.5,
                                     .min_requests = 4,
                                     .window_ms = 10000,
                                     .cooldown_ms = 1000};
    struct breaker b;

    breaker_init(&b, &p);
    breaker_record(&b, 0, T0, "x");
    breaker_record(&b, 0, T0, "x");
    breaker_record(&b, 0, T0, "x");
    /* 10 s later the three failures are out of the window: 1 of 4 is not enough. */
    breaker_record(&b, 1, T0 + 10000, NULL);
    breaker_record(&b, 1, T0 + 10000, NULL);
    breaker_record(&b, 1, T0 + 10000, NULL);
    breaker_record(&b, 0, T0 + 10000, "x");
    CHECK_EQ(b.state, BREAKER_CLOSED);
    /* Within the window they count: 3 failures + 1 more of 5 results. */
    breaker_init(&b, &p);
    breaker_record(&b, 0, T0, "x");
    breaker_record(&b, 0, T0, "x");
    breaker_record(&b, 1, T0 + 8999, NULL);
    breaker_record(&b, 0, T0 + 8999, "x");
    CHECK_EQ(b.state, BREAKER_OPEN);
    CHECK_STR_EQ(b.reason, "failure rate 75% over 10 s");
}

static void
reason_is_cut_to_fit(void)
{
    struct breaker b;
    char what[400];

    memset(what, 'a', sizeof(what) - 1);
    what[sizeof(what) - 1] = '\0';
    breaker_init(&b, &consecutive_only);
    for (int i = 0; i < 3; i++)
        breaker_record(&b, 0, T0, what);
    CHECK_EQ(strlen(b.reason), BREAKER_REASON_LEN - 1);
    CHECK(strncmp(b.reason, "3 consecutive failures: aaa", 27) == 0);
}

static void
odd_policies_are_safe(void)
{
    const struct breaker_policy p = {.failures_to_open = 1,
                                     .failure_rate = 7,
                                     .min_requests = -3,
                                     .window_ms = 0,
                                     .cooldown_ms = -5};
    struct breaker b;

    breaker_init(&b, &p);
    CHECK_EQ(b.policy.window_ms, BREAKER_BUCKETS);
    CHECK_EQ(b.policy.cooldown_ms, 0);
    breaker_record(&b, 0, -12345, "x"); /* negative times work too */
    CHECK_EQ(b.state, BREAKER_OPEN);
    CHECK_EQ(breaker_allow(&b, -12345), 1); /* cooldown 0: the probe goes at once */
    breaker_record(&b, 1, -12340, NULL);
    CHECK_EQ(b.state, BREAKER_CLOSED);
}

const struct check_case check_cases[] = {
    CHECK_CASE(defaults),
    CHECK_CASE(consecutive_failures_open_it),
    CHECK_CASE(cooldown_then_one_probe),
    CHECK_CASE(failed_probe_reopens_and_restarts_the_cooldown),
    CHECK_CASE(results_while_open_are_ignored),
    CHECK_CASE(lost_probe_is_replaced_after_a_cooldown),
    CHECK_CASE(each_probe_has_its_number),
    CHECK_CASE(a_probe_never_sent_lets_another_go),
    CHECK_CASE(failure_rate_over_the_window),
    CHECK_CASE(old_results_leave_the_window),
    CHECK_CASE(reason_is_cut_to_fit),
    CHECK_CASE(odd_policies_are_safe),
    {0},
};
