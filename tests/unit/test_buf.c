/* SPDX-License-Identifier: MIT */

/* tests/unit/test_buf.c — the bounded buffer (src/core/buf.c) and errors. */
/* link: core */

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/buf.h"
#include "core/error.h"

static void
append_stops_at_the_limit(void)
{
    struct buf b;

    buf_init(&b, 8);
    CHECK_EQ(buf_puts(&b, "12345"), 0);
    CHECK_EQ(buf_puts(&b, "6789"), -1); /* 9 bytes would pass 8 */
    CHECK_STR_EQ(buf_str(&b), "12345");
    CHECK_EQ(buf_printf(&b, "%d", 678), 0);
    CHECK_STR_EQ(buf_str(&b), "12345678");
    CHECK_EQ(buf_append(&b, "x", 1), -1);
    char *s = buf_take(&b);
    CHECK_STR_EQ(s, "12345678");
    CHECK_STR_EQ(buf_str(&b), "");
    free(s);
    buf_fini(&b);
}

static void
first_error_wins_and_context_goes_in_front(void)
{
    struct error err = {0};

    CHECK_EQ(error_set(&err, ERROR_TRANSIENT, "HTTP %d", 503), -1);
    CHECK_EQ(error_set(&err, ERROR_PERMANENT, "later"), -1);
    CHECK_EQ(error_wrap(&err, "deliver job %d", 812), -1);
    CHECK_STR_EQ(err.msg, "deliver job 812: HTTP 503");
    CHECK_EQ(err.kind, ERROR_TRANSIENT);
    CHECK_STR_EQ(error_kind_name(err.kind), "transient");
}

static void
integers_print_as_printf_prints_them(void)
{
    const long long cases[] = {0, 1, -1, 9, 10, -10, 1234567890123LL, LLONG_MAX, LLONG_MIN};

    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        char got[BUF_INT_SIZE], want[32];

        (void)snprintf(want, sizeof(want), "%lld", cases[i]);
        CHECK_EQ(buf_int_text(cases[i], got), strlen(want));
        CHECK_STR_EQ(got, want);
    }
}

const struct check_case check_cases[] = {
    CHECK_CASE(append_stops_at_the_limit),
    CHECK_CASE(integers_print_as_printf_prints_them),
    CHECK_CASE(first_error_wins_and_context_goes_in_front),
    {0},
};
