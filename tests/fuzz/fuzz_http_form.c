/* SPDX-License-Identifier: MIT */

/*
 * tests/fuzz/fuzz_http_form.c — form bodies (src/http/http_form.c): any
 * bytes either fail to decode, or decode to an object that encodes (always)
 * to a body that decodes to the same object, and encodes again to the
 * same body: decode(encode(decode(x))) == decode(x).
 */
/* link: http core */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "http/http_form.h"

#define FUZZ_MAX_INPUT 4096

/* libFuzzer fixes this name. NOLINTNEXTLINE(readability-identifier-naming) */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct error err = {0};
    cJSON *first = NULL, *second = NULL;
    char *body = NULL, *body2 = NULL, *text1, *text2;

    if (size > FUZZ_MAX_INPUT)
        return 0;
    if (http_form_decode((const char *)data, size, &first, &err) == -1) {
        if (first != NULL || err.kind != ERROR_INVALID)
            abort();
        return 0;
    }
    /* "[]" grows to "[N]" and a raw byte to %XX: 8 bytes out per byte in
     * is more than enough. */
    if (http_form_encode(first, 8 * size + 64, &body, &err) == -1)
        abort();
    if (http_form_decode(body, strlen(body), &second, &err) == -1)
        abort();
    text1 = cJSON_PrintUnformatted(first);
    text2 = cJSON_PrintUnformatted(second);
    if (text1 == NULL || text2 == NULL || strcmp(text1, text2) != 0)
        abort();
    if (http_form_encode(second, 8 * size + 64, &body2, &err) == -1 || strcmp(body, body2) != 0)
        abort();
    free(text1);
    free(text2);
    free(body);
    free(body2);
    cJSON_Delete(first);
    cJSON_Delete(second);
    return 0;
}
