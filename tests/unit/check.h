/* SPDX-License-Identifier: MIT */

/*
 * The unit-test harness (after libuv's runner): a binary holds a table of
 * cases, runs each in its own child process with a timeout, prints TAP, and
 * can run one case by name (./test_retry delay_doubles_until_the_cap).
 * CHECK() and CHECK_EQ() print the expression and both values, then end the
 * case.
 */
#ifndef CONCORD_TESTS_CHECK_H
#define CONCORD_TESTS_CHECK_H

#include <stdint.h>
#include <string.h>

struct check_case {
    const char *name;
    void (*fn)(void);
};

#define CHECK_CASE(f) \
    {                 \
#f, f         \
    }

/* Each test binary defines this table, ended by {0}. */
extern const struct check_case check_cases[];

void check_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

#define CHECK(e)                                             \
    do {                                                     \
        if (!(e))                                            \
            check_fail(__FILE__, __LINE__, "CHECK(%s)", #e); \
    } while (0)

#define CHECK_EQ(a, b)                                                                         \
    do {                                                                                       \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                        \
        if (check_a_ != check_b_)                                                              \
            check_fail(__FILE__, __LINE__, "CHECK_EQ(%s, %s): %lld != %lld", #a, #b, check_a_, \
                       check_b_);                                                              \
    } while (0)

#define CHECK_STR_EQ(a, b)                                                                   \
    do {                                                                                     \
        const char *check_a_ = (a), *check_b_ = (b);                                         \
        if (check_a_ == NULL || check_b_ == NULL || strcmp(check_a_, check_b_) != 0)         \
            check_fail(__FILE__, __LINE__, "CHECK_STR_EQ(%s, %s): \"%s\" != \"%s\"", #a, #b, \
                       check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)");      \
    } while (0)

/* The directory of the source tree (for golden files), from the environment. */
const char *check_source_dir(void);

/* A randomised case's seed: $CONCORD_TEST_SEED, else the time; printed
 * ("# seed N"), so that a failure can be replayed with it. */
uint64_t check_seed(void);

/* The next number of the splitmix64 sequence in *s. */
uint64_t check_rand(uint64_t *s);

/* A number from 0 to n - 1 (n > 0) of the sequence in *s. */
int check_below(uint64_t *s, int n);

#endif
