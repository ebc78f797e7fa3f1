/* SPDX-License-Identifier: MIT */

/*
 * tests/fuzz/fuzz_cron.c — cron expressions (src/core/cron.c, cron_parse
 * and cron_next): any bytes either fail with -1, a one-line reason and an
 * offset within the text, leaving the output alone; or give bit sets
 * within their ranges, whose next time from a few fixed "after"s is a
 * minute boundary strictly later that matches, checked by a plain matcher
 * (the C library's gmtime_r, not cron.c's arithmetic), with no matching
 * minute in the first day between. -1 is accepted only for a schedule that
 * names no real date, or at the end of int64_t.
 */
/* link: core */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cron.h"

#define FUZZ_MAX_INPUT 512
#define MINUTE_MS      60000LL
#define DAY_MS         (86400LL * 1000)

/* libFuzzer fixes this name. NOLINTNEXTLINE(readability-identifier-naming) */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether c allows the date in tm (the day rule of cron.h). */
static int
day_matches(const struct cron *c, const struct tm *tm)
{
    int dom = (int)(c->dom >> tm->tm_mday & 1);
    int dow = (int)(c->dow >> tm->tm_wday & 1);

    if (!(c->month >> (tm->tm_mon + 1) & 1))
        return 0;
    return c->dom_star || c->dow_star ? dom && dow : dom || dow;
}

static struct tm
utc(int64_t t)
{
    time_t secs = (time_t)(t / 1000);
    struct tm tm;

    if (gmtime_r(&secs, &tm) == NULL)
        abort();
    return tm;
}

/* Whether c matches the minute starting at t (a multiple of MINUTE_MS, >= 0). */
static int
matches(const struct cron *c, int64_t t)
{
    struct tm tm = utc(t);

    return (c->minute >> tm.tm_min & 1) && (c->hour >> tm.tm_hour & 1) && day_matches(c, &tm);
}

/* Whether any date has a month and a day of the month that c allows. */
static int
names_a_real_date(const struct cron *c)
{
    static const int month_days[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    for (int m = 1; m <= 12; m++) {
        for (int d = 1; d <= month_days[m]; d++) {
            if ((c->month >> m & 1) && (c->dom >> d & 1))
                return 1;
        }
    }
    return 0;
}

static void
check_next(const struct cron *c, int64_t after)
{
    int64_t next = cron_next(c, after), t, stop; /* after >= 0 */

    if (next == -1) {
        /* Never: only a schedule that needs its day of the month to name no real date. */
        if ((c->dom_star || c->dow_star) && !names_a_real_date(c))
            return;
        abort();
    }
    if (next <= after || next % MINUTE_MS != 0 || !matches(c, next))
        abort();
    /* No earlier match within the first day after "after" (bounded, for speed). */
    t = (after / MINUTE_MS + 1) * MINUTE_MS;
    stop = next < t + DAY_MS ? next : t + DAY_MS;
    for (int day_ok = 0, first = 1; t < stop; t += MINUTE_MS, first = 0) {
        int minute_of_day = (int)(t % DAY_MS / MINUTE_MS);

        if (first || minute_of_day == 0) {
            struct tm tm = utc(t);

            day_ok = day_matches(c, &tm);
        }
        if (day_ok && (c->hour >> (minute_of_day / 60) & 1) &&
            (c->minute >> (minute_of_day % 60) & 1))
            abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* 2024-02-28 23:59:30.5 (a leap day ahead), 1999-12-31 23:59, 2096-03-01, 1970. */
    static const int64_t afters[] = {1709164770500LL, 946684740000LL, 3981744000000LL, 0};
    char text[FUZZ_MAX_INPUT + 1];
    struct cron c, before;
    char why[128];
    size_t bad_at = (size_t)-1;
    int rc;

    if (size > FUZZ_MAX_INPUT)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    memset(&c, 0xa5, sizeof(c));
    before = c;
    rc = cron_parse(text, &c, why, sizeof(why), &bad_at);
    if (rc == -1) {
        if (memcmp(&c, &before, sizeof(c)) != 0 || bad_at > strlen(text) || why[0] == '\0' ||
            strchr(why, '\n') != NULL)
            abort();
        return 0;
    }
    if (rc != 0)
        abort();
    if (c.minute == 0 || c.minute >> 60 != 0 || c.hour == 0 || c.hour >> 24 != 0 ||
        (c.dom & ~0xfffffffeU) != 0 || c.dom == 0 || (c.month & ~0x1ffeU) != 0 || c.month == 0 ||
        c.dow == 0 || c.dow >> 7 != 0 || (c.dom_star != 0 && c.dom_star != 1) ||
        (c.dow_star != 0 && c.dow_star != 1))
        abort();
    for (size_t i = 0; i < sizeof(afters) / sizeof(afters[0]); i++)
        check_next(&c, afters[i]);
    /* The far ends of time must not overflow. */
    if (cron_next(&c, INT64_MAX) != -1)
        abort();
    (void)cron_next(&c, INT64_MIN);
    return 0;
}
