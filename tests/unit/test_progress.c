/* SPDX-License-Identifier: MIT */

/*
 * tests/unit/test_progress.c — the progress line of a long read
 * (engine_poll_progress_line() in src/engine/poll.c): rows grouped by
 * thousands, the share and the time left once the total is known, a bar of
 * 24 cells on a terminal, and no promise it cannot keep (no time left
 * without a rate, 99% while a grown table is still being read).
 */
/* link: engine */

#include <string.h>

#include "check.h"
#include "engine/poll.h"

static const char *
line(int64_t read, int64_t expected, int64_t elapsed_ms, int bar)
{
    static char out[200];
    struct engine_poll_report r = {.read = read, .expected = expected, .elapsed_ms = elapsed_ms};

    engine_poll_progress_line(&r, bar, out, sizeof(out));
    return out;
}

static void
without_a_total_it_shows_rows_and_rate(void)
{
    CHECK_STR_EQ(line(1234567, 0, 2000, 0), "1,234,567 rows read, 617,284 rows/s");
    CHECK_STR_EQ(line(999, 0, 1000, 1), "999 rows read, 999 rows/s");
    CHECK_STR_EQ(line(0, 0, 0, 0), "0 rows read, 0 rows/s");
}

static void
with_a_total_it_shows_the_share_and_the_time_left(void)
{
    /* 412,000 in 20 s: 20,600 rows/s, 588,000 left: 28.5 s. */
    CHECK_STR_EQ(line(412000, 1000000, 20000, 0),
                 "412,000 of 1,000,000 rows (41%), 20,600 rows/s, 29 s left");
    CHECK_STR_EQ(line(412000, 1000000, 20000, 1),
                 "[#########...............] 412,000 of 1,000,000 rows (41%), 20,600 rows/s, 29 s "
                 "left");
    /* Nothing read yet: no rate, so no time left. */
    CHECK_STR_EQ(line(0, 100, 0, 1), "[........................] 0 of 100 rows (0%), 0 rows/s");
}

static void
a_table_that_grew_stays_short_of_done(void)
{
    CHECK_STR_EQ(line(120, 100, 1000, 0), "120 of 100 rows (99%), 120 rows/s");
    CHECK_STR_EQ(line(100, 100, 1000, 1),
                 "[#######################.] 100 of 100 rows (99%), 100 rows/s");
}

const struct check_case check_cases[] = {
    CHECK_CASE(without_a_total_it_shows_rows_and_rate),
    CHECK_CASE(with_a_total_it_shows_the_share_and_the_time_left),
    CHECK_CASE(a_table_that_grew_stays_short_of_done),
    {0},
};
