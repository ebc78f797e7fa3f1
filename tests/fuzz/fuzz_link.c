/* SPDX-License-Identifier: MIT */

/*
 * tests/fuzz/fuzz_link.c — Link header values (src/http/http_link.c,
 * http_link_next): any bytes either give no next link, or a non-empty
 * target that stands in the input between '<' and '>', without a '>'.
 */
/* link: http core */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_link.h"

#define FUZZ_MAX_INPUT 4096

/* libFuzzer fixes this name. NOLINTNEXTLINE(readability-identifier-naming) */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char value[FUZZ_MAX_INPUT + 1];
    char *next;

    if (size > FUZZ_MAX_INPUT)
        return 0;
    memcpy(value, data, size);
    value[size] = '\0';
    next = http_link_next(value);
    if (next != NULL) {
        const char *at = value;
        int found = 0;

        while (!found && (at = strstr(at, next)) != NULL) {
            found = at > value && at[-1] == '<' && at[strlen(next)] == '>';
            at++;
        }
        if (next[0] == '\0' || strchr(next, '>') != NULL || !found)
            abort();
        free(next);
    }
    return 0;
}
