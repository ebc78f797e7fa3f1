/* SPDX-License-Identifier: MIT */

/*
 * tests/unit/test_retry.c — backoff schedules (exponential and list), the
 * give-up rule and Retry-After (src/core/retry.c).
 */
/* link: core */

#include "check.h"
#include "core/retry.h"

/* Sun, 06 Nov 1994 08:49:37 GMT, the RFC's example date. */
#define RFC_DATE_MS (784111777LL * 1000)

static void
delay_doubles_until_the_cap(void)
{
    const struct retry_policy p = {.base_ms = 1000, .cap_ms = 60000, .jitter = 0};

    CHECK_EQ(retry_delay_ms(&p, 1, 0.9), 1000);
    CHECK_EQ(retry_delay_ms(&p, 2, 0.9), 2000);
    CHECK_EQ(retry_delay_ms(&p, 6, 0.9), 32000);
    CHECK_EQ(retry_delay_ms(&p, 7, 0.9), 60000); /* 64 s would pass the cap */
    CHECK_EQ(retry_delay_ms(&p, 4000, 0.9), 60000);
}

static void
jitter_only_shortens_the_delay(void)
{
    const struct retry_policy p = {.base_ms = 1000, .cap_ms = 60000, .jitter = 0.5};

    CHECK_EQ(retry_delay_ms(&p, 1, 0.0), 1000);
    CHECK_EQ(retry_delay_ms(&p, 1, 0.5), 750);
    CHECK(retry_delay_ms(&p, 1, 0.999) > 500);
    CHECK(retry_delay_ms(&p, 1, 0.999) <= 1000);
    CHECK_EQ(retry_delay_ms(&p, 10, 0.5), 45000); /* jitter applies after the cap */
}

static void
huge_attempts_and_odd_policies_do_not_overflow(void)
{
    const struct retry_policy big = {.base_ms = INT64_MAX / 2, .cap_ms = INT64_MAX, .jitter = 1};
    const struct retry_policy zero = {.base_ms = 0, .cap_ms = 0, .jitter = 0.2};
    const struct retry_policy full = {.base_ms = 1, .cap_ms = INT64_MAX, .jitter = 0};

    CHECK_EQ(retry_delay_ms(&big, UINT32_MAX, 0.0), INT64_MAX);
    CHECK(retry_delay_ms(&big, UINT32_MAX, 0.999) >= 0);
    CHECK_EQ(retry_delay_ms(&zero, UINT32_MAX, 0.5), 0);
    CHECK_EQ(retry_delay_ms(&full, 63, 0), 1LL << 62);
    CHECK_EQ(retry_delay_ms(&full, 64, 0), INT64_MAX);
    CHECK_EQ(retry_delay_ms(&full, 0, 0), 1); /* attempt 0 is read as the first */
}

static void
list_gives_each_delay_in_turn(void)
{
    struct retry_policy p = {.jitter = 0, .max_attempts = 0, .delay_count = 3};

    p.delays_ms[0] = 0;
    p.delays_ms[1] = 50;
    p.delays_ms[2] = 200;
    CHECK_EQ(retry_delay_ms(&p, 1, 0.9), 0); /* the first retry at once */
    CHECK_EQ(retry_delay_ms(&p, 2, 0.9), 50);
    CHECK_EQ(retry_delay_ms(&p, 3, 0.9), 200);
    CHECK_EQ(retry_delay_ms(&p, 0, 0.9), 0);   /* attempt 0 is read as the first */
    CHECK_EQ(retry_delay_ms(&p, 4, 0.9), 200); /* past the list: defensive, the last */
    CHECK_EQ(retry_attempt_limit(&p), 4);      /* 3 delays: 4 attempts in all */
    p.max_attempts = 2;
    CHECK_EQ(retry_attempt_limit(&p), 2); /* max_attempts may say fewer ... */
    p.max_attempts = 10;
    CHECK_EQ(retry_attempt_limit(&p), 4); /* ... never more */
    /* base_ms and cap_ms are not used by a list. */
    p.base_ms = 7;
    p.cap_ms = 10;
    CHECK_EQ(retry_delay_ms(&p, 3, 0.9), 200);
}

static void
jitter_shortens_listed_delays_too(void)
{
    struct retry_policy p = {.jitter = 0.5, .delay_count = 2};

    p.delays_ms[0] = 0;
    p.delays_ms[1] = 1000;
    CHECK_EQ(retry_delay_ms(&p, 1, 0.7), 0);
    CHECK_EQ(retry_delay_ms(&p, 2, 0.0), 1000);
    CHECK_EQ(retry_delay_ms(&p, 2, 0.5), 750);
    CHECK(retry_delay_ms(&p, 2, 0.999) > 500);
}

static void
default_policy_is_the_documented_list(void)
{
    const struct retry_policy p = retry_policy_default();
    static const int64_t want[] = {0, 5000, 300000, 1800000, 7200000, 18000000, 36000000, 36000000};
    int64_t total = 0;

    CHECK_EQ(p.delay_count, 8);
    for (size_t i = 0; i < 8; i++) {
        CHECK_EQ(p.delays_ms[i], want[i]);
        CHECK_EQ(retry_delay_ms(&p, (uint32_t)i + 1, 0), want[i]);
        total += retry_delay_ms(&p, (uint32_t)i + 1, 0);
    }
    CHECK_EQ(total, 99305000); /* about 27.6 hours from first failure to last attempt */
    CHECK_EQ(retry_attempt_limit(&p), 9);
    CHECK_EQ(p.max_attempts, 9);
    CHECK(p.jitter > 0.19 && p.jitter < 0.21);
    CHECK_EQ(p.max_age_ms, 0);
    /* The exponential form's defaults, for a config that switches to it. */
    CHECK_EQ(p.base_ms, 1000);
    CHECK_EQ(p.cap_ms, 600000);
    /* Jitter 0.2 keeps each delay within (80%, 100%]. */
    CHECK_EQ(retry_delay_ms(&p, 2, 0.5), 4500);
    CHECK(retry_delay_ms(&p, 8, 0.999) > 28800000);
}

static void
exhausted_by_attempts_or_age(void)
{
    struct retry_policy p = {.base_ms = 10, .cap_ms = 100, .max_attempts = 3};
    const int64_t created = 1700000000000LL;

    CHECK_EQ(retry_exhausted(&p, 1, created, created + 999999999), 0); /* no max age */
    CHECK_EQ(retry_exhausted(&p, 2, created, created), 0);
    CHECK_EQ(retry_exhausted(&p, 3, created, created), 1);
    CHECK_EQ(retry_exhausted(&p, 40, created, created), 1);
    p.max_age_ms = 86400000;
    CHECK_EQ(retry_exhausted(&p, 1, created, created + 86400000), 0); /* exactly the age */
    CHECK_EQ(retry_exhausted(&p, 1, created, created + 86400001), 1);
    CHECK_EQ(retry_exhausted(&p, 1, created, created - 5000), 0); /* clock stepped back */
    CHECK_EQ(retry_exhausted(&p, 1, INT64_MIN, INT64_MAX), 1);    /* no overflow */
    p.max_attempts = 0;
    CHECK_EQ(retry_attempt_limit(&p), 1); /* never less than one attempt */
    CHECK_EQ(retry_exhausted(&p, 1, created, created), 1);
    CHECK_EQ(retry_exhausted(&p, 0, created, created), 0);
}

static void
list_with_max_attempts_and_max_age(void)
{
    struct retry_policy p = retry_policy_default();

    CHECK_EQ(retry_exhausted(&p, 8, 0, 0), 0);
    CHECK_EQ(retry_exhausted(&p, 9, 0, 0), 1);
    p.max_attempts = 4;
    CHECK_EQ(retry_exhausted(&p, 3, 0, 0), 0);
    CHECK_EQ(retry_exhausted(&p, 4, 0, 0), 1);
    p.max_age_ms = 3600000;
    CHECK_EQ(retry_exhausted(&p, 2, 0, 3600001), 1);
}

static void
retry_after_seconds(void)
{
    int64_t d = -7;

    CHECK_EQ(retry_after_parse("2", 0, &d), 0);
    CHECK_EQ(d, 2000);
    CHECK_EQ(retry_after_parse("  120 ", 0, &d), 0);
    CHECK_EQ(d, 120000);
    CHECK_EQ(retry_after_parse("0", 0, &d), 0);
    CHECK_EQ(d, 0);
    CHECK_EQ(retry_after_parse("86401", 0, &d), 0);
    CHECK_EQ(d, 86400000);
    CHECK_EQ(retry_after_parse("99999999999999999999999999999", 0, &d), 0);
    CHECK_EQ(d, 86400000);
}

static void
retry_after_imf_fixdate(void)
{
    int64_t d = -7;

    CHECK_EQ(retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", RFC_DATE_MS - 30000, &d), 0);
    CHECK_EQ(d, 30000);
    /* Milliseconds of "now" count: the date is a whole second. */
    CHECK_EQ(retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", RFC_DATE_MS - 1500, &d), 0);
    CHECK_EQ(d, 1500);
    CHECK_EQ(retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", RFC_DATE_MS + 5000, &d), 0);
    CHECK_EQ(d, 0); /* in the past */
    CHECK_EQ(retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", 0, &d), 0);
    CHECK_EQ(d, 86400000); /* capped at a day */
    CHECK_EQ(retry_after_parse("Thu, 29 Feb 2024 00:00:00 GMT", 1709164800000LL - 1000, &d), 0);
    CHECK_EQ(d, 1000);
}

static void
retry_after_obsolete_forms(void)
{
    int64_t d = -7;

    CHECK_EQ(retry_after_parse("Sunday, 06-Nov-94 08:49:37 GMT", RFC_DATE_MS - 4000, &d), 0);
    CHECK_EQ(d, 4000);
    CHECK_EQ(retry_after_parse("Sun Nov  6 08:49:37 1994", RFC_DATE_MS - 3000, &d), 0);
    CHECK_EQ(d, 3000);
    CHECK_EQ(retry_after_parse("Sun Nov 16 08:49:37 1994", RFC_DATE_MS, &d), 0);
    CHECK_EQ(d, 86400000);
}

static void
retry_after_rejects_garbage(void)
{
    static const char *const bad[] = {
        "",
        "   ",
        "-1",
        "+5",
        "1.5",
        "5s",
        "1 2",
        "soon",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37",
        "Sun, 31 Nov 1994 08:49:37 GMT",
        "Sun, 29 Feb 2023 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT x",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sun Nov  6 08:49:37",
        "Xyz, 06 Nov 1994 08:49:37 GMT",
    };
    int64_t d = -7;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (retry_after_parse(bad[i], 0, &d) != -1)
            check_fail(__FILE__, __LINE__, "accepted \"%s\"", bad[i]);
    }
    CHECK_EQ(retry_after_parse(NULL, 0, &d), -1);
    CHECK_EQ(d, -7); /* untouched on failure */
}

const struct check_case check_cases[] = {
    CHECK_CASE(delay_doubles_until_the_cap),
    CHECK_CASE(jitter_only_shortens_the_delay),
    CHECK_CASE(huge_attempts_and_odd_policies_do_not_overflow),
    CHECK_CASE(list_gives_each_delay_in_turn),
    CHECK_CASE(jitter_shortens_listed_delays_too),
    CHECK_CASE(default_policy_is_the_documented_list),
    CHECK_CASE(exhausted_by_attempts_or_age),
    CHECK_CASE(list_with_max_attempts_and_max_age),
    CHECK_CASE(retry_after_seconds),
    CHECK_CASE(retry_after_imf_fixdate),
    CHECK_CASE(retry_after_obsolete_forms),
    CHECK_CASE(retry_after_rejects_garbage),
    {0},
};
