/* SPDX-License-Identifier: MIT */

/*
 * Fuzz target for records run through field maps (src/map/) and value
 * coercion (src/model/). The maps' jq programs are fixed and compiled once:
 * libjq 1.6 spends ~15 ms on every compile, which held this target at ~75
 * inputs/s when it compiled the input's program. Fuzzed programs are
 * fuzz_map_jq.c's.
 *
 * The input is a dotted path and a JSON record, split at the first NUL or
 * newline (the corpus format of fuzz_map_jq, so seeds serve both). The
 * record runs in through a map that copies the path and through each fixed
 * jq program, every result runs out through a nested MAP_OUT map and
 * map_out_differs(), and each of the record's values is coerced to every
 * type. Nothing may crash or leak, and every failure must carry
 * ERROR_INVALID or ERROR_MAPPING.
 *
 * The conditions `.a.b == "x"` are also asked twice: map_jq_test() answers
 * the plain form natively (map_jq.c, fast_test()), and the parenthesised
 * form through jq; where jq answers, the native test must agree. (Where jq
 * fails, on a record nested too deep for it, the native test may still
 * answer.)
 * Inputs over 4 KiB are skipped.
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
#include "model/value.h"

/* libFuzzer fixes this name. NOLINTNEXTLINE(readability-identifier-naming) */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_INPUT 4096
/* What the jq entries compute: the whole record, single values of any kind
 * picked by position or name, numbers jq computed in doubles, strings and
 * objects jq built. All bounded by the record's size. */
static const char *const programs[] = {
    ".",
    "[.[]][0]",
    "[.[]][-1]",
    "[.. | scalars][1]",
    ".f_string",
    ".f_decimal",
    ".f_integer / 3",
    "tostring",
    "[.[] | tostring] | join(\",\")",
    "{a: .f_string, b: [.[]?]}",
    "keys_unsorted",
};

#define PROGRAM_COUNT (sizeof(programs) / sizeof(programs[0]))

/* A condition in the form map_jq.c tests natively, and the same condition
 * that its parentheses hand to jq. */
static const char *const conditions[][2] = {
    {".a.b == \"x\"", "(.a.b == \"x\")"},
    {".f_string == \"yes\"", "(.f_string == \"yes\")"},
    {" .a.b.c==\"\" ", "(.a.b.c == \"\")"},
};

#define CONDITION_COUNT (sizeof(conditions) / sizeof(conditions[0]))

/* Built on the first input and kept for the process: jq_maps[p][f] runs
 * programs[p] into fields[f]. */
static struct map *jq_maps[PROGRAM_COUNT][FIELD_COUNT];
static struct map_jq *whole;
static struct map_jq *tests[CONDITION_COUNT][2];

static void
must(int rc, const struct error *err)
{
    if (rc != 0) {
        fprintf(stderr, "fixed map does not compile: %s\n", err->msg);
        abort();
    }
}

/* Free what compile_once() built, before LeakSanitizer's check at exit:
 * libjq holds the stack of a state's last run by its end pointer only, so
 * a live state's stack looks leaked. */
static void
free_all(void)
{
    for (size_t p = 0; p < PROGRAM_COUNT; p++) {
        for (size_t f = 0; f < FIELD_COUNT; f++)
            map_free(jq_maps[p][f]);
    }
    for (size_t c = 0; c < CONDITION_COUNT; c++) {
        map_jq_free(tests[c][0]);
        map_jq_free(tests[c][1]);
    }
    map_jq_free(whole);
}

static void
compile_once(void)
{
    struct error err = {0};

    if (whole != NULL)
        return;
    if (atexit(free_all) != 0)
        abort();
    for (size_t p = 0; p < PROGRAM_COUNT; p++) {
        for (size_t f = 0; f < FIELD_COUNT; f++) {
            struct config_map_entry e = {
                .target = (char *)(uintptr_t)fields[f].name,
                .source = CONFIG_MAP_JQ,
                .jq = (char *)(uintptr_t)programs[p],
            };
            struct config_map spec = {&e, 1};

            must(map_new(&spec, &model, MAP_IN, &jq_maps[p][f], &err), &err);
        }
    }
    for (size_t c = 0; c < CONDITION_COUNT; c++) {
        must(map_jq_new(conditions[c][0], &tests[c][0], &err), &err);
        must(map_jq_new(conditions[c][1], &tests[c][1], &err), &err);
    }
    must(map_jq_new(".", &whole, &err), &err);
}

/* Run record in through m; what comes out goes back out along path. */
static void
run_in(const struct map *m, const cJSON *record, const char *path)
{
    struct error err = {0};
    cJSON *out = NULL;

    if (map_apply(m, record, &out, &err) != 0) {
        check_error(&err);
        return;
    }
    run_out(out, path);
    cJSON_Delete(out);
}

/* The path as a map entry of its own, with a value map on it, next to a
 * path entry with a default. */
static void
run_path(const cJSON *record, const char *path, size_t split)
{
    cJSON *values = cJSON_Parse("{\"1\":\"one\",\"true\":\"yes\",\"null\":\"2026-01-02\"}");
    cJSON *fallback = cJSON_CreateString("12.50");
    struct config_map_entry e[2] = {
        {.target = (char *)(uintptr_t)fields[(split + 1) % FIELD_COUNT].name,
         .source = CONFIG_MAP_PATH,
         .path = (char *)(uintptr_t)path,
         .values = split % 2 ? values : NULL},
        {.target = (char *)(uintptr_t) "f_decimal",
         .source = CONFIG_MAP_PATH,
         .path = (char *)(uintptr_t) "f_decimal",
         .default_value = fallback},
    };
    struct config_map spec = {e, 2};
    struct map *m = NULL;
    struct error err = {0};

    if (map_new(&spec, &model, MAP_IN, &m, &err) != 0) {
        check_error(&err);
    } else {
        run_in(m, record, path);
        map_free(m);
    }
    cJSON_Delete(values);
    cJSON_Delete(fallback);
}

static void
run_conditions(const cJSON *record)
{
    struct error err = {0};
    cJSON *copy = NULL;

    for (size_t c = 0; c < CONDITION_COUNT; c++) {
        int fast = map_jq_test(tests[c][0], record, &err);
        int slow;

        if (fast < 0)
            check_error(&err);
        error_clear(&err);
        slow = map_jq_test(tests[c][1], record, &err);
        if (slow < 0)
            check_error(&err);
        error_clear(&err);
        if (slow >= 0 && fast != slow) {
            fprintf(stderr, "%s answers %d, %s answers %d\n", conditions[c][0], fast,
                    conditions[c][1], slow);
            abort();
        }
    }
    /* The record through jq and back: the bounds of map_jq.c's conversions. */
    if (map_jq_eval(whole, record, &copy, &err) != 0)
        check_error(&err);
    cJSON_Delete(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text, *path, *json;
    size_t split;
    cJSON *record;
    struct error err = {0};

    if (size > FUZZ_MAX_INPUT)
        return 0;
    compile_once();
    text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    for (split = 0; split < size && text[split] != '\0' && text[split] != '\n'; split++)
        ;
    path = text;
    json = split < size ? text + split + 1 : text + size;
    text[split] = '\0';
    record = cJSON_ParseWithLength(json, size - (size_t)(json - text));
    if (record == NULL)
        record = cJSON_CreateObject();

    {
        char *canon = value_canonical_text(record);

        if (!value_equal(record, record))
            abort();
        free(canon);
    }

    run_path(record, path, split);
    for (size_t p = 0; p < PROGRAM_COUNT; p++)
        run_in(jq_maps[p][split % FIELD_COUNT], record, path);
    run_conditions(record);

    /* Every type's coercion of every value in the record. */
    for (const cJSON *v = record->child; v != NULL; v = v->next) {
        for (size_t i = 0; i < FIELD_COUNT; i++) {
            cJSON *out = NULL;

            error_clear(&err);
            if (value_coerce(fields[i].type, v, &out, &err) != 0)
                check_error(&err);
            cJSON_Delete(out);
        }
    }
    cJSON_Delete(record);
    free(text);
    return 0;
}
