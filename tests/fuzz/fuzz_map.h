/* SPDX-License-Identifier: MIT */

/*
 * What the two map fuzz targets share (fuzz_map.c: records against fixed
 * maps; fuzz_map_jq.c: jq programs compiled into maps): a model with a
 * field of every type, the check that a failure is the input's fault, and
 * a map's result run out through a nested MAP_OUT map and
 * map_out_differs(). Included by each, once: it defines what it declares.
 */

#ifndef CONCORD_FUZZ_MAP_H
#define CONCORD_FUZZ_MAP_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "map/map.h"

#define FIELD_COUNT 7

static struct config_field fields[FIELD_COUNT] = {
    {.name = "f_string", .type = CONFIG_TYPE_STRING},
    {.name = "f_integer", .type = CONFIG_TYPE_INTEGER},
    {.name = "f_decimal", .type = CONFIG_TYPE_DECIMAL},
    {.name = "f_boolean", .type = CONFIG_TYPE_BOOLEAN},
    {.name = "f_timestamp", .type = CONFIG_TYPE_TIMESTAMP},
    {.name = "f_date", .type = CONFIG_TYPE_DATE},
    {.name = "f_ref", .type = CONFIG_TYPE_REF},
};

static const struct config_model model = {
    .name = "fuzz",
    .fields = fields,
    .field_count = FIELD_COUNT,
};

/* Every failure must be the input's: it does not compile, or it does not
 * fit the model. */
static void
check_error(const struct error *err)
{
    if (err->kind != ERROR_INVALID && err->kind != ERROR_MAPPING) {
        fprintf(stderr, "unexpected error kind %d: %s\n", (int)err->kind, err->msg);
        abort();
    }
}

/* A map's result out through a nested MAP_OUT map (one entry copies path),
 * and compared with the record it came from. */
static void
run_out(const cJSON *record, const char *path)
{
    struct config_map_entry e[3] = {
        {.target = (char *)(uintptr_t) "nested.f_decimal",
         .source = CONFIG_MAP_PATH,
         .path = (char *)(uintptr_t) "f_decimal"},
        {.target = (char *)(uintptr_t) "nested.deeper.s",
         .source = CONFIG_MAP_PATH,
         .path = (char *)(uintptr_t) "f_string"},
        {.target = (char *)(uintptr_t) "p",
         .source = CONFIG_MAP_PATH,
         .path = (char *)(uintptr_t)path},
    };
    struct config_map spec = {e, 3};
    struct map *m = NULL;
    struct error err = {0};
    cJSON *out = NULL;

    if (map_new(&spec, &model, MAP_OUT, &m, &err) != 0) {
        check_error(&err);
        return;
    }
    if (map_apply(m, record, &out, &err) != 0) {
        check_error(&err);
    } else {
        char *text = cJSON_PrintUnformatted(out);

        (void)map_out_differs(m, out, record);
        (void)map_out_differs(m, out, NULL);
        free(text);
        cJSON_Delete(out);
    }
    map_free(m);
}

#endif
