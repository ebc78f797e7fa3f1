/* SPDX-License-Identifier: MIT */

/*
 * How long to wait before trying a failed delivery again, and what a remote
 * system's Retry-After header asks for. Pure functions: the caller passes
 * "now" and the random number, so the schedule is testable to the
 * millisecond. See docs/internals/retry-policy.md.
 */
#ifndef CONCORD_CORE_RETRY_H
#define CONCORD_CORE_RETRY_H

#include <stdint.h>

#include "core/compiler.h"

struct retry_policy {
    int64_t base_ms;  /* delay after the first failure; >= 0 */
    int64_t cap_ms;   /* no delay is longer than this; >= base_ms */
    double jitter;    /* 0 to 1: the share of a delay that may be cut away at random */
    int max_attempts; /* attempts in all, the first included; >= 1 */
};

/*
 * The delay before attempt number attempt + 1, after attempt (1-based) has
 * failed: base_ms doubled for each earlier failure, capped at cap_ms, then
 * shortened by delay * jitter * r, so jobs that failed together (one outage)
 * do not all come back in the same second. r is in [0, 1).
 */
int64_t retry_delay_ms(const struct retry_policy *p, uint32_t attempt, double r);

/*
 * Parse a Retry-After value (RFC 9110 §10.2.3): delay-seconds, or an
 * HTTP-date. A date in the past gives 0. The delay is capped at one day.
 * Returns 0 with *out_delay_ms set, or -1 if the value is neither form.
 */
MUST_CHECK int retry_after_parse(const char *value, int64_t now_ms, int64_t *out_delay_ms);

#endif
