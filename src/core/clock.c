/* SPDX-License-Identifier: MIT */

/* The clocks of clock.h, and the process's one source of jitter. */

#include "core/clock.h"

#include <stdio.h>
#include <sys/random.h>
#include <time.h>

int64_t
clock_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
clock_mono_ms(void)
{
    return clock_mono_ns() / 1000000;
}

int64_t
clock_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct timespec
clock_deadline(int64_t wait_ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(wait_ms / 1000);
    ts.tv_nsec += (long)(wait_ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    return ts;
}

char *
clock_format_ms(int64_t at_ms, char *out, size_t out_len)
{
    time_t secs = (time_t)(at_ms / 1000);
    struct tm tm;

    gmtime_r(&secs, &tm);
    (void)snprintf(out, out_len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   (int)(at_ms % 1000));
    return out;
}

double
clock_random_unit(void)
{
    /* xorshift64*, seeded once per thread from the kernel. Jitter needs no
     * more than that, and it keeps getrandom() off the hot path. */
    static _Thread_local uint64_t state;
    uint64_t x;

    if (state == 0) {
        if (getrandom(&state, sizeof(state), 0) != (ssize_t)sizeof(state) || state == 0)
            state = (uint64_t)clock_mono_ns() | 1;
    }
    x = state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    state = x;
    return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}
