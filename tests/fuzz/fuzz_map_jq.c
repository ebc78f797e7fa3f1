/* SPDX-License-Identifier: MIT */

/*
 * Fuzz target for map definitions: jq programs compiled into field maps
 * (src/map/). Records against fixed maps, and value coercion, are
 * fuzz_map.c's: libjq 1.6 spends ~15 ms compiling any program (it binds its
 * own jq-defined builtins anew each time), so this target runs at ~70
 * inputs/s and leaves the records to the fast one.
 *
 * The input is a jq program and a JSON record, split at the first NUL or
 * newline. The program becomes a jq entry of a one-field map and, read as a
 * dotted path, a path entry; the map runs in, then its result runs out
 * through a nested MAP_OUT map and map_out_differs(). Nothing may crash or
 * leak, and every failure must carry ERROR_INVALID (the program does not
 * compile) or ERROR_MAPPING (the record does not fit).
 *
 * Programs that can loop or allocate without bound (recursion, range,
 * repeat...) are skipped: jq 1.6 has no step or memory limit, and a hang
 * inside libjq says nothing about concord. So are programs with an odd
 * number of '"' (libjq 1.6's parser leaks on an unclosed string literal)
 * and ltrimstr/rtrimstr (which leak on a non-string argument).
 * Inputs over 4 KiB are skipped.
 *
 * The program also goes through map_jq_reads_only() with the keys new and
 * current: where it says yes, the program (all its outputs) must give the
 * same on two inputs that differ only in their other keys.
 */
/* link: map model config */

#include "fuzz_map.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "map/map.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_INPUT 4096

static int
unbounded(const char *program)
{
    static const char *const words[] = {"def",   "recurse", "repeat", "while",  "until",   "range",
                                        "limit", "env",     "input",  "import", "include", "splits",
                                        "pow",   "*",       "$__",    "trimstr"};

    size_t quotes = 0;

    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strstr(program, words[i]) != NULL)
            return 1;
    }
    /* libjq 1.6 leaks a string when a string literal is not closed. */
    for (const char *p = program; *p != '\0'; p++)
        quotes += *p == '"';
    return quotes % 2 != 0;
}

/* What program gives on input: all its outputs as text, or "error". */
static char *
outcome(struct map_jq *q, const cJSON *input)
{
    struct error err = {0};
    cJSON *v = NULL;
    char *text;

    if (map_jq_eval(q, input, &v, &err) != 0)
        return strdup("error");
    text = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    return text;
}

/* A yes of map_jq_reads_only() is never wrong. */
static void
check_reads_only(const char *program, const cJSON *record)
{
    static const char *const keys[] = {"new", "current", NULL};
    cJSON *a, *b;
    struct map_jq *q = NULL;
    struct error err = {0};
    size_t len = strlen(program) + 3;
    char *all;

    /* now differs between two runs whatever it reads. */
    if (!map_jq_reads_only(program, keys) || strstr(program, "now") != NULL)
        return;
    all = malloc(len);
    if (all == NULL)
        return;
    (void)snprintf(all, len, "[%s]", program);
    if (map_jq_new(all, &q, &err) == 0) {
        a = cJSON_CreateObject();
        cJSON_AddItemToObject(a, "new", cJSON_Duplicate(record, 1));
        cJSON_AddItemToObject(a, "current", cJSON_Duplicate(record, 1));
        b = cJSON_Duplicate(a, 1);
        cJSON_AddItemToObject(a, "version", cJSON_CreateNumber(1));
        cJSON_AddItemToObject(b, "old", cJSON_Duplicate(record, 1));
        cJSON_AddItemToObject(b, "version", cJSON_CreateString("two"));
        char *on_a = outcome(q, a), *on_b = outcome(q, b);

        if (on_a == NULL || on_b == NULL || strcmp(on_a, on_b) != 0) {
            fprintf(stderr, "map_jq_reads_only() said yes to %s: %s vs %s\n", program,
                    on_a ? on_a : "?", on_b ? on_b : "?");
            abort();
        }
        free(on_a);
        free(on_b);
        cJSON_Delete(a);
        cJSON_Delete(b);
        map_jq_free(q);
    }
    free(all);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text, *program, *json;
    size_t split;
    cJSON *record;
    struct error err = {0};

    if (size > FUZZ_MAX_INPUT)
        return 0;
    text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    for (split = 0; split < size && text[split] != '\0' && text[split] != '\n'; split++)
        ;
    program = text;
    json = split < size ? text + split + 1 : text + size;
    text[split] = '\0';
    record = cJSON_ParseWithLength(json, size - (size_t)(json - text));
    if (record == NULL)
        record = cJSON_CreateObject();
    if (!unbounded(program))
        check_reads_only(program, record);
    if (!unbounded(program)) {
        const char *target = fields[split % model.field_count].name;
        const char *other = fields[(split + 1) % model.field_count].name;
        struct config_map_entry e[2] = {
            {.target = (char *)(uintptr_t)target, .source = CONFIG_MAP_JQ, .jq = program},
            {.target = (char *)(uintptr_t)other, .source = CONFIG_MAP_PATH, .path = program},
        };
        struct config_map spec = {e, 2};
        struct map *m = NULL;
        cJSON *out = NULL;

        if (map_new(&spec, &model, MAP_IN, &m, &err) != 0) {
            check_error(&err);
        } else {
            if (map_apply(m, record, &out, &err) != 0) {
                check_error(&err);
            } else {
                run_out(out, program);
                cJSON_Delete(out);
            }
            map_free(m);
        }
    }
    cJSON_Delete(record);
    free(text);
    return 0;
}
