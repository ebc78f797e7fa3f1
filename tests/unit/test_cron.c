/* SPDX-License-Identifier: MIT */

/*
 * tests/unit/test_cron.c — cron expressions and their next time
 * (src/core/cron.c): parsing (good and bad, with the reason and its
 * offset), next times across month, year and leap-day ends, the dom/dow
 * rule, and a random comparison against a brute-force search. The random
 * case prints its seed; rerun it with
 * CONCORD_TEST_SEED=N ./test_cron next_matches_brute_force.
 */
/* link: core */

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "check.h"
#include "core/cron.h"

#define MINUTE_MS 60000LL
#define DAY_MS    (86400LL * 1000)

#define ALL_MINUTES ((1ULL << 60) - 1)
#define ALL_HOURS   0xffffffU
#define ALL_DOMS    0xfffffffeU
#define ALL_MONTHS  0x1ffeU
#define ALL_DOWS    0x7fU

/* "YYYY-MM-DD HH:MM[:SS[.mmm]]" in UTC to Unix ms, by the C library (not cron.c's arithmetic). */
static int64_t
at(const char *s)
{
    struct tm tm;
    int y, mo, d, h, mi, sec = 0, ms = 0;

    memset(&tm, 0, sizeof(tm));
    if (sscanf(s, "%d-%d-%d %d:%d:%d.%d", &y, &mo, &d, &h, &mi, &sec, &ms) < 5)
        check_fail(__FILE__, __LINE__, "bad time literal %s", s);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

/* Unix ms to "YYYY-MM-DD HH:MM:SS.mmm" for failure messages. */
static const char *
show(int64_t ms, char buf[40])
{
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;

    if (ms == -1 || gmtime_r(&t, &tm) == NULL) {
        (void)snprintf(buf, 40, "%lld", (long long)ms);
        return buf;
    }
    (void)snprintf(buf, 40, "%04d-%02d-%02d %02d:%02d:%02d.%03d", tm.tm_year + 1900, tm.tm_mon + 1,
                   tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms - (int64_t)t * 1000));
    return buf;
}

static struct cron
parse_ok(const char *text)
{
    struct cron c;
    char why[128];
    size_t bad_at = 0;

    if (cron_parse(text, &c, why, sizeof(why), &bad_at) != 0)
        check_fail(__FILE__, __LINE__, "\"%s\" refused at %zu: %s", text, bad_at, why);
    return c;
}

static void
parse_sets_the_bits(void)
{
    static const struct {
        const char *text;
        uint64_t minute;
        uint32_t hour, dom;
        uint16_t month;
        uint8_t dow;
        int dom_star, dow_star;
    } cases[] = {
        {"* * * * *", ALL_MINUTES, ALL_HOURS, ALL_DOMS, ALL_MONTHS, ALL_DOWS, 1, 1},
        {"0 0 1 1 0", 1, 1, 1U << 1, 1U << 1, 1, 0, 0},
        {"00 05 01 01 00", 1, 1U << 5, 1U << 1, 1U << 1, 1, 0, 0},
        {"\t 5  4 \t * * *  \n", 1ULL << 5, 1U << 4, ALL_DOMS, ALL_MONTHS, ALL_DOWS, 1, 1},
        {"*/15 */6 * * *", 1 | 1ULL << 15 | 1ULL << 30 | 1ULL << 45,
         1 | 1U << 6 | 1U << 12 | 1U << 18, ALL_DOMS, ALL_MONTHS, ALL_DOWS, 1, 1},
        {"1-30/7 9-17 1-31 * *", 1ULL << 1 | 1ULL << 8 | 1ULL << 15 | 1ULL << 22 | 1ULL << 29,
         0x3fe00, ALL_DOMS, ALL_MONTHS, ALL_DOWS, 0, 1},
        {"59 23 31 12 6", 1ULL << 59, 1U << 23, 1U << 31, 1U << 12, 1U << 6, 0, 0},
        {"0 0 * JAN-Mar,dec Mon-FRI", 1, 1, ALL_DOMS, 0x100e, 0x3e, 1, 0},
        {"0 0 * * 7", 1, 1, ALL_DOMS, ALL_MONTHS, 1, 1, 0},
        {"0 0 * * 0,7", 1, 1, ALL_DOMS, ALL_MONTHS, 1, 1, 0},
        {"0 0 * * 5-7", 1, 1, ALL_DOMS, ALL_MONTHS, 0x61, 1, 0},
        {"0 0 * * sun-sat", 1, 1, ALL_DOMS, ALL_MONTHS, ALL_DOWS, 1, 0},
        {"0 0 */2 * */2", 1, 1, 0xaaaaaaaaU, ALL_MONTHS, 0x55, 1, 1},
        {"0 0 */31 * */7", 1, 1, 1U << 1, ALL_MONTHS, 1, 1, 1},
        {"*/59 0 *,5 * 1", 1 | 1ULL << 59, 1, ALL_DOMS, ALL_MONTHS, 1U << 1, 1, 0},
        {"0,30 0 15 jun-aug/2 *", 1 | 1ULL << 30, 1, 1U << 15, 1U << 6 | 1U << 8, ALL_DOWS, 0, 1},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cron c = parse_ok(cases[i].text);

        if (c.minute != cases[i].minute || c.hour != cases[i].hour || c.dom != cases[i].dom ||
            c.month != cases[i].month || c.dow != cases[i].dow || c.dom_star != cases[i].dom_star ||
            c.dow_star != cases[i].dow_star)
            check_fail(__FILE__, __LINE__,
                       "\"%s\": minute %llx hour %x dom %x month %x dow %x stars %d %d",
                       cases[i].text, (unsigned long long)c.minute, c.hour, c.dom, c.month, c.dow,
                       c.dom_star, c.dow_star);
    }
}

static void
macros_are_their_expansions(void)
{
    static const char *const cases[][2] = {
        {"@hourly", "0 * * * *"},   {"@daily", "0 0 * * *"},      {"@midnight", "0 0 * * *"},
        {"@weekly", "0 0 * * 0"},   {"@monthly", "0 0 1 * *"},    {"@yearly", "0 0 1 1 *"},
        {"@annually", "0 0 1 1 *"}, {"  @DAILY \t", "0 0 * * *"}, {"@Weekly", "0 0 * * 0"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cron a = parse_ok(cases[i][0]), b = parse_ok(cases[i][1]);

        if (memcmp(&a, &b, sizeof(a)) != 0)
            check_fail(__FILE__, __LINE__, "%s differs from %s", cases[i][0], cases[i][1]);
    }
}

static void
parse_refuses_with_reason_and_offset(void)
{
    static const struct {
        const char *text;
        const char *why; /* a fragment of the reason */
        size_t bad_at;
    } cases[] = {
        {"", "empty cron expression", 0},
        {"   ", "empty cron expression", 3},
        {"60 * * * *", "minute 60 is out of range 0-59", 0},
        {"0 24 * * *", "hour 24 is out of range 0-23", 2},
        {"0 1,24 * * *", "hour 24 is out of range 0-23", 4},
        {"0 0 0 * *", "day-of-month 0 is out of range 1-31", 4},
        {"0 0 32 * *", "day-of-month 32 is out of range 1-31", 4},
        {"0 0 * 13 *", "month 13 is out of range 1-12", 6},
        {"0 0 * 0 *", "month 0 is out of range 1-12", 6},
        {"0 0 * * 8", "day-of-week 8 is out of range 0-7", 8},
        {"99999999999 * * * *", "minute 99999999999 is out of range 0-59", 0},
        {"0 0 * foo *", "month \"foo\" is not a name (jan-dec)", 6},
        {"0 0 * * sunday", "day-of-week \"sunday\" is not a name (sun-sat)", 8},
        {"abc * * * *", "minute \"abc\" is not a number", 0},
        {"0 0 L * *", "day-of-month \"L\" is not a number", 4},
        {"5-3 * * * *", "minute range 5-3 runs backwards", 0},
        {"0 0 * * fri-mon", "day-of-week range fri-mon runs backwards", 8},
        {"0 22-2 * * *", "hour range 22-2 runs backwards", 2},
        {"*/0 * * * *", "minute step 0 is out of range 1-59", 2},
        {"*/60 * * * *", "minute step 60 is out of range 1-59", 2},
        {"0 0 * * */8", "day-of-week step 8 is out of range 1-7", 10},
        {"5/15 * * * *", "a step needs '*' or a range before it (write 5-59/15)", 0},
        {"0 0 * 1,mar/2 *", "(write 3-12/2)", 8},
        {"*/ * * * *", "minute: '/' needs a step number", 2},
        {"1-5/x * * * *", "minute: '/' needs a step number", 4},
        {"1-  * * * *", "minute: a range needs an end", 2},
        {"0 0 * * 1-", "day-of-week: a range needs an end", 10},
        {"1,,2 * * * *", "minute: empty list item", 2},
        {"1, * * * *", "minute: empty list item", 2},
        {",1 * * * *", "minute: empty list item", 0},
        {"? * * * *", "minute: unexpected '?'", 0},
        {"1a * * * *", "minute: unexpected 'a'", 1},
        {"** * * * *", "minute: unexpected '*'", 1},
        {"*-5 * * * *", "minute: unexpected '-'", 1},
        {"0 0 1 1 1\x01", "day-of-week: unexpected byte 0x01", 9},
        {"* * * *", "missing the day-of-week field", 7},
        {"0", "missing the hour field", 1},
        {"* * * * * *", "too many fields", 10},
        {"* * * * * /bin/true", "too many fields", 10},
        {"@reboot", "@reboot is not supported", 0},
        {"@often", "unknown macro \"@often\"", 0},
        {"@", "unknown macro \"@\"", 0},
        {"@daily 0", "unexpected text after @daily", 7},
        {"  @weekly x", "unexpected text after @weekly", 10},
        {"0 @daily * * *", "hour: unexpected '@'", 2},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cron c = {.minute = 42};
        char why[160] = "unset";
        size_t bad_at = 999;

        if (cron_parse(cases[i].text, &c, why, sizeof(why), &bad_at) != -1)
            check_fail(__FILE__, __LINE__, "\"%s\" was accepted", cases[i].text);
        if (strstr(why, cases[i].why) == NULL || bad_at != cases[i].bad_at)
            check_fail(__FILE__, __LINE__, "\"%s\": got \"%s\" at %zu, want \"%s\" at %zu",
                       cases[i].text, why, bad_at, cases[i].why, cases[i].bad_at);
        if (strchr(why, '\n') != NULL)
            check_fail(__FILE__, __LINE__, "\"%s\": reason has a newline", cases[i].text);
        CHECK_EQ(c.minute, 42); /* untouched on failure */
    }
}

static void
parse_edge_arguments(void)
{
    struct cron c;
    char why[16];
    size_t bad_at = 7;

    CHECK_EQ(cron_parse(NULL, &c, why, sizeof(why), &bad_at), -1);
    CHECK_STR_EQ(why, "no cron express"); /* cut to why_len, NUL-terminated */
    CHECK_EQ(bad_at, 0);
    CHECK_EQ(cron_parse("0 24 * * *", &c, NULL, 0, NULL), -1); /* why and bad_at optional */
    CHECK_EQ(cron_parse("0 23 * * *", &c, NULL, 0, NULL), 0);
    CHECK_EQ(cron_parse("0 24 * * *", &c, why, 1, &bad_at), -1);
    CHECK_STR_EQ(why, "");
    CHECK_EQ(bad_at, 2);
    /* A long bad token is quoted short: the reason stays one line. */
    {
        char long_why[200];
        const char *text = "0 0 * aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa *";

        CHECK_EQ(cron_parse(text, &c, long_why, sizeof(long_why), &bad_at), -1);
        CHECK(strstr(long_why, "\"aaaaaaaaaaaaaaaa...\"") != NULL);
        CHECK_EQ(bad_at, 6);
    }
}

/* One next-time case: expression, after, expected ("never" for -1). */
struct next_case {
    const char *expr;
    const char *after;
    const char *want;
};

static void
check_next_cases(const struct next_case *cases, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        struct cron c = parse_ok(cases[i].expr);
        int64_t after = at(cases[i].after);
        int64_t want = strcmp(cases[i].want, "never") == 0 ? -1 : at(cases[i].want);
        int64_t got = cron_next(&c, after);
        char b1[40], b2[40];

        if (got != want)
            check_fail(__FILE__, __LINE__, "\"%s\" after %s: got %s, want %s", cases[i].expr,
                       cases[i].after, show(got, b1), show(want, b2));
    }
}

static void
next_is_strictly_after_on_a_minute(void)
{
    static const struct next_case cases[] = {
        {"* * * * *", "2024-01-01 00:00:00.000", "2024-01-01 00:01"},
        {"* * * * *", "2024-01-01 00:00:59.999", "2024-01-01 00:01"},
        {"* * * * *", "2024-01-01 00:00:00.001", "2024-01-01 00:01"},
        {"*/15 * * * *", "2024-01-01 00:00", "2024-01-01 00:15"},
        {"*/15 * * * *", "2024-01-01 00:14:59.999", "2024-01-01 00:15"},
        {"*/15 * * * *", "2024-01-01 00:15", "2024-01-01 00:30"},
        {"*/15 * * * *", "2024-01-01 23:45", "2024-01-02 00:00"},
        {"1-30/7 * * * *", "2024-01-01 00:00", "2024-01-01 00:01"},
        {"1-30/7 * * * *", "2024-01-01 00:22", "2024-01-01 00:29"},
        {"1-30/7 * * * *", "2024-01-01 00:29", "2024-01-01 01:01"},
        {"30 9-17/4 * * *", "2024-01-01 09:30", "2024-01-01 13:30"},
        {"30 9-17/4 * * *", "2024-01-01 17:30", "2024-01-02 09:30"},
        {"5 4 * * *", "2024-01-01 04:04", "2024-01-01 04:05"},
        {"5 4 * * *", "2024-01-01 04:06", "2024-01-02 04:05"},
        {"5 4,6 * * *", "2024-01-01 04:06", "2024-01-01 06:05"},
    };

    check_next_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void
next_across_month_year_and_leap_ends(void)
{
    static const struct next_case cases[] = {
        {"0 0 * * *", "2024-01-31 12:00", "2024-02-01 00:00"},
        {"0 0 31 * *", "2024-04-01 00:00", "2024-05-31 00:00"},  /* April has 30 */
        {"0 0 31 * *", "2024-07-31 00:00", "2024-08-31 00:00"},  /* July and August 31 */
        {"0 0 30 * *", "2024-01-30 00:00", "2024-03-30 00:00"},  /* February has none */
        {"0 12 29 2 *", "2023-03-01 00:00", "2024-02-29 12:00"}, /* the next leap year */
        {"0 12 29 2 *", "2024-02-29 12:00", "2028-02-29 12:00"}, /* four years on */
        {"0 12 29 2 *", "2096-03-01 00:00", "2104-02-29 12:00"}, /* 2100 is no leap year */
        {"0 12 29 2 *", "1999-01-01 00:00", "2000-02-29 12:00"}, /* 2000 is one */
        {"0 0 * 2 *", "2023-02-28 00:00", "2024-02-01 00:00"},   /* 2023: no 29th */
        {"0 0 * 2 *", "2024-02-28 00:00", "2024-02-29 00:00"},   /* 2024: a 29th */
        {"59 23 31 12 *", "2023-12-31 23:59", "2024-12-31 23:59"},
        {"0 0 1 1 *", "2023-12-31 23:59:30", "2024-01-01 00:00"},
        {"* * * * *", "2023-12-31 23:59:59.999", "2024-01-01 00:00"},
        {"0 0 1 1 *", "1969-06-01 00:00", "1970-01-01 00:00"}, /* before 1970 */
        {"30 6 15 3 *", "1900-01-01 00:00", "1900-03-15 06:30"},
        {"0 0 1 * *", "2199-12-15 00:00", "2200-01-01 00:00"},
    };

    check_next_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void
next_dom_dow_rule(void)
{
    static const struct next_case cases[] = {
        /* Both restricted: either matches. 2024-01-01 was a Monday. */
        {"0 0 13 * fri", "2024-01-01 00:00", "2024-01-05 00:00"},
        {"0 0 13 * fri", "2024-01-12 00:00", "2024-01-13 00:00"}, /* a Saturday: the 13th */
        {"0 0 1 * mon", "2024-01-01 00:00", "2024-01-08 00:00"},
        {"0 0 31 2 mon", "2024-01-01 00:00", "2024-02-05 00:00"}, /* Mondays of February */
        /* Day of the month '*': the day of the week alone decides. */
        {"0 0 * * mon", "2024-01-01 00:00", "2024-01-08 00:00"},
        {"0 0 * * sat,sun", "2024-01-01 00:00", "2024-01-06 00:00"},
        /* Day of the week '*': the day of the month alone decides. */
        {"0 0 15 * *", "2024-01-01 00:00", "2024-01-15 00:00"},
        /* Vixie: a field that begins with '*' counts as '*', so both must match:
         * odd days that are Mondays (1 Jan is taken: "after" is that minute). */
        {"0 0 */2 * mon", "2024-01-01 00:00", "2024-01-15 00:00"},
        {"0 0 13 * */7", "2024-01-01 00:00", "2024-10-13 00:00"}, /* a 13th that is a Sunday */
        /* Feb 29 on a Sunday: 2088, then 2128 (40 years, across 2100). */
        {"0 0 29 2 */7", "2024-01-01 00:00", "2032-02-29 00:00"},
        {"0 0 29 2 */7", "2088-03-01 00:00", "2128-02-29 00:00"},
    };

    check_next_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void
next_names_sunday_and_macros(void)
{
    static const struct next_case cases[] = {
        {"0 9 * jan,jul MON-fri", "2024-01-05 09:00", "2024-01-08 09:00"},
        {"0 9 * jan,jul MON-fri", "2024-01-31 09:00", "2024-07-01 09:00"},
        {"0 0 * * 7", "2024-01-01 00:00", "2024-01-07 00:00"},
        {"0 0 * * 0", "2024-01-01 00:00", "2024-01-07 00:00"},
        {"0 0 * * 5-7", "2024-01-06 00:00", "2024-01-07 00:00"},
        {"0 0 * * 5-7", "2024-01-07 00:00", "2024-01-12 00:00"},
        {"@hourly", "2024-01-01 10:00", "2024-01-01 11:00"},
        {"@daily", "2024-01-01 10:00", "2024-01-02 00:00"},
        {"@midnight", "2024-01-01 00:00", "2024-01-02 00:00"},
        {"@weekly", "2024-01-01 10:00", "2024-01-07 00:00"},
        {"@monthly", "2024-01-01 10:00", "2024-02-01 00:00"},
        {"@yearly", "2024-01-01 00:00", "2025-01-01 00:00"},
        {"@annually", "2023-06-01 00:00", "2024-01-01 00:00"},
    };

    check_next_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static int64_t
monotonic_ms(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
impossible_dates_are_never_and_quick(void)
{
    static const char *const never[] = {
        "0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 30,31 feb *", "0 0 31 2 */2",
    };
    int64_t t0 = monotonic_ms();

    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
        struct cron c = parse_ok(never[i]);

        for (int k = 0; k < 2000; k++)
            CHECK_EQ(cron_next(&c, at("2024-01-01 00:00") + k * DAY_MS), -1);
    }
    /* 10000 answers: the schedule is judged, not searched for 400 years each. */
    if (monotonic_ms() - t0 > 1000)
        check_fail(__FILE__, __LINE__, "10000 impossible schedules took %lld ms",
                   (long long)(monotonic_ms() - t0));
    /* The slowest schedules that can fire are fast too: rare dates far apart. */
    t0 = monotonic_ms();
    {
        struct cron c = parse_ok("59 23 29 2 */7");

        for (int k = 0; k < 2000; k++)
            CHECK(cron_next(&c, at("2088-03-01 00:00") + k * DAY_MS) >= at("2128-02-29 23:59"));
    }
    if (monotonic_ms() - t0 > 1000)
        check_fail(__FILE__, __LINE__, "2000 40-year searches took %lld ms",
                   (long long)(monotonic_ms() - t0));
}

static void
next_handles_int64_edges_and_odd_structs(void)
{
    struct cron every = parse_ok("* * * * *");
    struct cron c;
    int64_t got;

    CHECK_EQ(cron_next(&every, -1), 0);
    CHECK_EQ(cron_next(&every, 0), MINUTE_MS);
    CHECK_EQ(cron_next(&every, -MINUTE_MS), 0);
    CHECK_EQ(cron_next(&every, -MINUTE_MS - 1), -MINUTE_MS);
    CHECK_EQ(cron_next(&every, INT64_MAX), -1); /* the next minute does not fit */
    CHECK_EQ(cron_next(&every, INT64_MAX / MINUTE_MS * MINUTE_MS), -1);
    CHECK_EQ(cron_next(&every, INT64_MAX / MINUTE_MS * MINUTE_MS - 1),
             INT64_MAX / MINUTE_MS * MINUTE_MS);
    got = cron_next(&every, INT64_MIN);
    CHECK(got > INT64_MIN && got % MINUTE_MS == 0 && got <= INT64_MIN + MINUTE_MS);
    got = cron_next(&every, INT64_MIN + 1);
    CHECK(got > INT64_MIN + 1 && got % MINUTE_MS == 0);
    /* A hand-made struct: stray bits are ignored, an empty field never matches. */
    c = every;
    c.minute = 1ULL << 60 | 1ULL << 63 | 1ULL << 7;
    c.hour = 0xff000000U | 1U << 3;
    c.dom = 1U | 1U << 2;
    c.month = 0xe001U | 1U << 3;
    c.dow = 0x80U;
    c.dom_star = c.dow_star = 0;
    CHECK_EQ(cron_next(&c, at("2024-01-01 00:00")), at("2024-03-02 03:07")); /* or Sunday 3rd */
    c.minute = 1ULL << 60;
    CHECK_EQ(cron_next(&c, 0), -1);
    c = every;
    c.hour = 0;
    CHECK_EQ(cron_next(&c, 0), -1);
    c = every;
    c.dow = 0;
    CHECK_EQ(cron_next(&c, 0), -1);
}

/* --- The random comparison against a brute-force search. --- */

/* What a generated expression means, worked out as it is written. */
struct expect {
    uint64_t bits[5];
    int star[5];
};

static const int field_low[5] = {0, 0, 1, 1, 0};
static const int field_high[5] = {59, 23, 31, 12, 7};
static const char *const month_name[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                         "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const dow_name[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

/* A value of field f, as a number or (month, day of the week) a name in some case. */
static void
put_value(uint64_t *s, int f, int v, char *out, size_t len)
{
    const char *name = NULL;

    if (f == 3 && check_below(s, 3) == 0)
        name = month_name[v - 1];
    else if (f == 4 && v < 7 && check_below(s, 3) == 0)
        name = dow_name[v];
    if (name == NULL) {
        (void)snprintf(out + strlen(out), len - strlen(out), "%d", v);
        return;
    }
    (void)snprintf(out + strlen(out), len - strlen(out), "%c%s",
                   check_below(s, 2) ? name[0] - 'a' + 'A' : name[0], name + 1);
}

/* A random field f appended to out, its meaning in e. Small sets are likely. */
static void
gen_field(uint64_t *s, int f, char *out, size_t len, struct expect *e)
{
    int lo = field_low[f], hi = field_high[f];
    int items = check_below(s, 4) == 0 ? 2 + check_below(s, 3) : 1;

    e->bits[f] = 0;
    e->star[f] = 0;
    if (check_below(s, f >= 2 ? 2 : 4) == 0) { /* '*' alone: common for the day fields */
        (void)snprintf(out + strlen(out), len - strlen(out), "*");
        e->star[f] = 1;
        for (int v = lo; v <= hi; v++)
            e->bits[f] |= 1ULL << v;
        goto done;
    }
    for (int i = 0; i < items; i++) {
        int kind = check_below(s, 5), a = lo + check_below(s, hi - lo + 1), b, step = 1;

        if (i > 0)
            (void)snprintf(out + strlen(out), len - strlen(out), ",");
        b = a + check_below(s, hi - a + 1);
        switch (kind) {
        case 0: /* '*' with a step */
            step = 1 + check_below(s, hi);
            (void)snprintf(out + strlen(out), len - strlen(out), "*/%d", step);
            if (i == 0)
                e->star[f] = 1;
            a = lo;
            b = hi;
            break;
        case 1: /* a value */
        case 2:
            put_value(s, f, a, out, len);
            b = a;
            break;
        case 3: /* a range */
            put_value(s, f, a, out, len);
            (void)snprintf(out + strlen(out), len - strlen(out), "-");
            put_value(s, f, b, out, len);
            break;
        default: /* a range with a step */
            step = 1 + check_below(s, hi);
            put_value(s, f, a, out, len);
            (void)snprintf(out + strlen(out), len - strlen(out), "-");
            put_value(s, f, b, out, len);
            (void)snprintf(out + strlen(out), len - strlen(out), "/%d", step);
            break;
        }
        for (int v = a; v <= b; v += step)
            e->bits[f] |= 1ULL << v;
    }
done:
    if (f == 4 && (e->bits[4] >> 7 & 1)) /* 7 is Sunday */
        e->bits[4] = (e->bits[4] | 1) & 0x7f;
}

/* Whether e matches the minute at Unix ms t (a minute boundary), the plain way. */
static int
brute_day_matches(const struct expect *e, const struct tm *tm)
{
    int dom = (int)(e->bits[2] >> tm->tm_mday & 1);
    int dow = (int)(e->bits[4] >> tm->tm_wday & 1);

    if (!(e->bits[3] >> (tm->tm_mon + 1) & 1))
        return 0;
    if (e->star[2] || e->star[4])
        return dom && dow;
    return dom || dow;
}

/*
 * The first matching minute strictly after after_ms and within limit_days,
 * by looking at every minute (a day whose date does not match is skipped
 * whole: none of its minutes can). -1 if none.
 */
static int64_t
brute_next(const struct expect *e, int64_t after_ms, int limit_days)
{
    int64_t t = (after_ms >= 0 ? after_ms / MINUTE_MS : (after_ms - MINUTE_MS + 1) / MINUTE_MS);
    int64_t end;

    t = (t + 1) * MINUTE_MS;
    end = t + (int64_t)limit_days * DAY_MS;
    while (t < end) {
        time_t secs = (time_t)(t / 1000);
        struct tm tm;

        if (t % 1000 != 0 || gmtime_r(&secs, &tm) == NULL)
            check_fail(__FILE__, __LINE__, "gmtime_r(%lld)", (long long)t);
        if (!brute_day_matches(e, &tm)) {
            t += DAY_MS - (int64_t)(tm.tm_hour * 60 + tm.tm_min) * MINUTE_MS;
            continue;
        }
        for (int m = tm.tm_hour * 60 + tm.tm_min; m < 1440; m++, t += MINUTE_MS) {
            if ((e->bits[1] >> (m / 60) & 1) && (e->bits[0] >> (m % 60) & 1))
                return t;
        }
    }
    return -1;
}

#define BRUTE_DAYS 400

static void
next_matches_brute_force(void)
{
    uint64_t seed = check_seed();
    int64_t lo = at("1900-01-01 00:00"), hi = at("2300-01-01 00:00");
    int exprs = 0, compared = 0, beyond = 0;
    int64_t t0 = monotonic_ms();

    /* Bounded by count and by time, so a slow sanitizer build stays under ~1 s. */
    while (exprs < 10000 && monotonic_ms() - t0 < 1000) {
        /* Each expression from its own stream: "expression k" replays alone. */
        uint64_t s = seed ^ ((uint64_t)exprs * UINT64_C(0x2545F4914F6CDD1D));
        char text[256] = "";
        struct expect e;
        struct cron c;
        char why[128];
        size_t bad_at;
        int64_t after;

        for (int f = 0; f < 5; f++) {
            if (f > 0)
                (void)snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s",
                               check_below(&s, 4) == 0 ? " \t " : " ");
            gen_field(&s, f, text, sizeof(text), &e);
        }
        exprs++;
        if (cron_parse(text, &c, why, sizeof(why), &bad_at) != 0)
            check_fail(__FILE__, __LINE__, "expression %d: \"%s\" refused at %zu: %s", exprs - 1,
                       text, bad_at, why);
        if (c.minute != e.bits[0] || c.hour != e.bits[1] || c.dom != e.bits[2] ||
            c.month != e.bits[3] || c.dow != e.bits[4] || c.dom_star != e.star[2] ||
            c.dow_star != e.star[4])
            check_fail(__FILE__, __LINE__, "expression %d: \"%s\" parsed to other bits", exprs - 1,
                       text);
        after = lo + (int64_t)(check_rand(&s) % (uint64_t)(hi - lo));
        if (check_below(&s, 3) == 0)
            after -= after % MINUTE_MS; /* exactly on a minute: the next one is wanted */
        /* A chain of a few, each from the last answer, as a scheduler would call it. */
        for (int k = 0; k < 3; k++) {
            int64_t want = brute_next(&e, after, BRUTE_DAYS);
            int64_t got = cron_next(&c, after);
            char b1[40], b2[40], b3[40];

            if (want == -1) {
                /* Nothing in 400 days: cron_next must look further or say never. */
                if (got != -1 && got < after + BRUTE_DAYS * DAY_MS)
                    check_fail(__FILE__, __LINE__,
                               "expression %d: \"%s\" after %s: got %s, want none", exprs - 1, text,
                               show(after, b1), show(got, b2));
                if (got != -1 && brute_next(&e, got - MINUTE_MS, 1) != got)
                    check_fail(__FILE__, __LINE__, "expression %d: \"%s\": %s does not match",
                               exprs - 1, text, show(got, b2));
                beyond++;
                break;
            }
            if (got != want)
                check_fail(__FILE__, __LINE__, "expression %d: \"%s\" after %s: got %s, want %s",
                           exprs - 1, text, show(after, b1), show(got, b2), show(want, b3));
            compared++;
            after = got + (check_below(&s, 2) ? 0 : check_below(&s, (int)MINUTE_MS));
        }
    }
    printf("# %d expressions, %d next times compared, %d beyond %d days\n", exprs, compared, beyond,
           BRUTE_DAYS);
    CHECK(exprs >= 100);
}

const struct check_case check_cases[] = {
    CHECK_CASE(parse_sets_the_bits),
    CHECK_CASE(macros_are_their_expansions),
    CHECK_CASE(parse_refuses_with_reason_and_offset),
    CHECK_CASE(parse_edge_arguments),
    CHECK_CASE(next_is_strictly_after_on_a_minute),
    CHECK_CASE(next_across_month_year_and_leap_ends),
    CHECK_CASE(next_dom_dow_rule),
    CHECK_CASE(next_names_sunday_and_macros),
    CHECK_CASE(impossible_dates_are_never_and_quick),
    CHECK_CASE(next_handles_int64_edges_and_odd_structs),
    CHECK_CASE(next_matches_brute_force),
    {0},
};
