/* SPDX-License-Identifier: MIT */

/*
 * tests/fuzz/fuzz_normalize.c — natural keys (src/model/normalize.c,
 * normalize_key).
 *
 * The first byte picks the input's form (bit 0: the rest is a JSON text to
 * parse, else a string value of the raw bytes, cut at the first NUL) and the
 * phone country (bits 1-3: none, "40", "1", "+44", "", "RO", "4000", "040").
 * The rest is normalised with every kind. Nothing may crash or leak, and
 * every key must have its kind's shape:
 *
 *   all     non-empty; normalising the key again gives the key itself
 *   EXACT   a string's key is the string itself
 *   TEXT    no ASCII upper case or blanks but single inner spaces
 *   EMAIL   no ASCII upper case, blanks at the ends, exactly one inner '@'
 *   PHONE   "+" or nothing, then 6 to 15 digits; "+" when the input starts
 *           with '+' or a valid country was given
 *   VAT     no ASCII lower case, blanks, '.', '-' or '/'
 *
 * Inputs over 64 KiB are skipped (the unit test covers megabytes).
 */
/* link: model config */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "model/normalize.h"

#define FUZZ_MAX_INPUT 65536

/* libFuzzer fixes this name. NOLINTNEXTLINE(readability-identifier-naming) */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const countries[] = {NULL, "40", "1", "+44", "", "RO", "4000", "040"};

static int
is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Abort unless key has the shape of kind's keys (see above). */
static void
check_shape(enum normalize_kind kind, const char *key, const cJSON *in, const char *country)
{
    size_t len = strlen(key), at_count = 0, digits = 0;

    if (len == 0)
        abort();
    switch (kind) {
    case NORMALIZE_EXACT:
        if (cJSON_IsString(in) && strcmp(key, in->valuestring) != 0)
            abort();
        break;
    case NORMALIZE_TEXT:
        if (key[0] == ' ' || key[len - 1] == ' ')
            abort();
        for (size_t i = 0; i < len; i++) {
            if ((key[i] >= 'A' && key[i] <= 'Z') || (is_blank(key[i]) && key[i] != ' '))
                abort();
            if (key[i] == ' ' && key[i + 1] == ' ')
                abort();
        }
        break;
    case NORMALIZE_EMAIL:
        if (is_blank(key[0]) || is_blank(key[len - 1]) || key[0] == '@' || key[len - 1] == '@')
            abort();
        for (size_t i = 0; i < len; i++) {
            if (key[i] >= 'A' && key[i] <= 'Z')
                abort();
            at_count += key[i] == '@';
        }
        if (at_count != 1)
            abort();
        break;
    case NORMALIZE_PHONE:
        for (size_t i = key[0] == '+'; i < len; i++) {
            if (key[i] < '0' || key[i] > '9')
                abort();
            digits++;
        }
        if (digits < 6 || digits > 15)
            abort();
        if (cJSON_IsString(in) && in->valuestring[strspn(in->valuestring, " \t\n\r\v\f")] == '+' &&
            key[0] != '+')
            abort();
        if (country != NULL &&
            (strcmp(country, "40") == 0 || strcmp(country, "1") == 0 ||
             strcmp(country, "+44") == 0) &&
            key[0] != '+')
            abort();
        break;
    case NORMALIZE_VAT:
        for (size_t i = 0; i < len; i++) {
            if ((key[i] >= 'a' && key[i] <= 'z') || is_blank(key[i]) || key[i] == '.' ||
                key[i] == '-' || key[i] == '/')
                abort();
        }
        break;
    }
}

/* Abort unless normalising key again (as a string) gives key. */
static void
check_fixed_point(enum normalize_kind kind, const char *key, const char *country)
{
    cJSON *again = cJSON_CreateString(key);
    char *key2;

    if (again == NULL)
        abort();
    key2 = normalize_key(kind, again, country);
    if (key2 == NULL || strcmp(key2, key) != 0)
        abort();
    free(key2);
    cJSON_Delete(again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *country;
    char *text;
    cJSON *in;

    if (size < 1 || size > FUZZ_MAX_INPUT)
        return 0;
    country = countries[(data[0] >> 1) & 7];
    text = malloc(size);
    if (text == NULL)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    in = (data[0] & 1) ? cJSON_ParseWithLength(text, size - 1) : cJSON_CreateString(text);
    free(text);
    if (in == NULL)
        return 0;
    for (int kind = NORMALIZE_EXACT; kind <= NORMALIZE_VAT; kind++) {
        char *key = normalize_key((enum normalize_kind)kind, in, country);

        if (key == NULL)
            continue;
        check_shape((enum normalize_kind)kind, key, in, country);
        check_fixed_point((enum normalize_kind)kind, key, country);
        free(key);
    }
    cJSON_Delete(in);
    return 0;
}
