/* SPDX-License-Identifier: MIT */

/*
 * How long to wait before trying a failed delivery again, and what a remote
 * system's Retry-After header asks for. Pure functions: the caller passes
 * "now" and the random number, so the schedule is testable to the
 * millisecond. See docs/internals/retry-policy.md.
 */
#ifndef CONCORD_CORE_RETRY_H
#define CONCORD_CORE_RETRY_H

#include <stddef.h>
#include <stdint.h>

#include "core/compiler.h"

/* Delays an explicit schedule may list (retry_policy.delays_ms). */
#define RETRY_MAX_DELAYS 32

/*
 * A retry schedule, in one of two forms:
 *
 *   exponential (delay_count == 0): base_ms doubled after each failure,
 *     capped at cap_ms; at most max_attempts attempts in all.
 *   list (delay_count > 0): the delay after failed attempt n is
 *     delays_ms[n - 1]. The list does not repeat its last entry: it allows
 *     delay_count + 1 attempts in all, or max_attempts when that is fewer.
 *     base_ms and cap_ms are not used.
 *
 * Either way jitter shortens each delay at random, and a job older than
 * max_age_ms (when > 0) is not tried again. A policy is a plain value: copy
 * it freely; it owns nothing. A policy written with designated initialisers
 * and no list ({.base_ms = 1000, .cap_ms = 60000}) is exponential, as before.
 */
struct retry_policy {
    int64_t base_ms;  /* exponential: delay after the first failure; >= 0 */
    int64_t cap_ms;   /* exponential: no delay is longer than this; >= base_ms */
    double jitter;    /* 0 to 1: the share of a delay that may be cut away at random */
    int max_attempts; /* attempts in all, the first included; >= 1 (a list: <= 0 lets it decide) */
    int64_t delays_ms[RETRY_MAX_DELAYS]; /* list form: each >= 0 */
    size_t delay_count;                  /* 0: exponential; else 1..RETRY_MAX_DELAYS */
    int64_t max_age_ms;                  /* a job older than this is not retried; 0: no limit */
};

/*
 * The default schedule of a system that configures none: the list 0 (at
 * once), 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, so 9 attempts in all over
 * about 28 hours, jitter 0.2, no max age. base_ms 1000 and cap_ms 600000
 * are filled in too: they are the defaults of the exponential form, which a
 * config that gives base_ms or cap_ms switches to.
 */
struct retry_policy retry_policy_default(void);

/*
 * The delay before attempt number attempt + 1, after attempt (1-based; 0 is
 * read as 1) has failed. Exponential form: base_ms doubled for each earlier
 * failure, capped at cap_ms. List form: delays_ms[attempt - 1], or the last
 * entry for an attempt past the list (retry_exhausted() says no more
 * attempts are due there; this answer is only defensive). Then, either way,
 * shortened by delay * jitter * r, so jobs that failed together (one outage)
 * do not all come back in the same second. r is in [0, 1).
 */
int64_t retry_delay_ms(const struct retry_policy *p, uint32_t attempt, double r);

/*
 * The number of attempts the policy allows in all: max_attempts, and for
 * the list form no more than delay_count + 1 (a list with max_attempts <= 0
 * allows exactly delay_count + 1). Never less than 1.
 */
int retry_attempt_limit(const struct retry_policy *p);

/*
 * Whether a job that has made attempts attempts (failed so far) may not be
 * tried again: 1 when attempts >= retry_attempt_limit(p), or when max_age_ms
 * > 0 and the job, created at created_at_ms, is older than max_age_ms at
 * now_ms (now_ms - created_at_ms > max_age_ms); else 0. The caller then
 * moves the job to the failed list. Pure; any times may be given.
 */
int retry_exhausted(const struct retry_policy *p, int attempts, int64_t created_at_ms,
                    int64_t now_ms);

/*
 * Parse a Retry-After value (RFC 9110 §10.2.3): delay-seconds, or an
 * HTTP-date. A date in the past gives 0. The delay is capped at one day.
 * Returns 0 with *out_delay_ms set, or -1 if the value is neither form.
 */
MUST_CHECK int retry_after_parse(const char *value, int64_t now_ms, int64_t *out_delay_ms);

#endif
