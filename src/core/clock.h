/* SPDX-License-Identifier: MIT */

/*
 * Time, in int64_t milliseconds. Pure logic takes "now" as a parameter; only
 * the edges (worker loops, HTTP handlers) call these.
 */
#ifndef CONCORD_CORE_CLOCK_H
#define CONCORD_CORE_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Wall-clock time, milliseconds since the Unix epoch. */
int64_t clock_now_ms(void);

/* A monotonic clock for measuring intervals, in milliseconds. */
int64_t clock_mono_ms(void);

/* A monotonic clock in nanoseconds, for latency measurements. */
int64_t clock_mono_ns(void);

/* The CLOCK_REALTIME time wait_ms (>= 0) from now, for
 * pthread_cond_timedwait(). */
struct timespec clock_deadline(int64_t wait_ms);

/*
 * Write at_ms as RFC 3339 UTC ("2026-11-26T05:41:52.123Z") into out, which
 * holds at least 32 bytes. Returns out.
 */
char *clock_format_ms(int64_t at_ms, char *out, size_t out_len);

/* A uniformly distributed double in [0, 1), from a thread-local generator. */
double clock_random_unit(void);

#endif
