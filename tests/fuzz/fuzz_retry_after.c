/* SPDX-License-Identifier: MIT */

/*
 * tests/fuzz/fuzz_retry_after.c — Retry-After values (src/core/retry.c,
 * retry_after_parse): any byte string either fails with -1 and leaves the
 * output alone, or gives a delay within [0, one day]. "Now" is fixed, and
 * also tried at the edges of int64_t, where the date arithmetic must not
 * overflow.
 */
/* link: core */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/retry.h"

#define FUZZ_MAX_INPUT 256
#define DAY_MS         (86400LL * 1000)

/* libFuzzer fixes this name. NOLINTNEXTLINE(readability-identifier-naming) */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t nows[] = {1700000000000LL, 0, INT64_MIN, INT64_MAX, -1};
    char value[FUZZ_MAX_INPUT + 1];

    if (size > FUZZ_MAX_INPUT)
        return 0;
    memcpy(value, data, size);
    value[size] = '\0';
    for (size_t i = 0; i < sizeof(nows) / sizeof(nows[0]); i++) {
        int64_t delay = -42;
        int rc = retry_after_parse(value, nows[i], &delay);

        if (rc == 0 && (delay < 0 || delay > DAY_MS))
            abort();
        if (rc == -1 && delay != -42)
            abort(); /* out-parameters are written only on success */
        if (rc != 0 && rc != -1)
            abort();
    }
    return 0;
}
