/* SPDX-License-Identifier: MIT */

/*
 * Field maps between one system's shape and a model (DESIGN.md, step 2).
 * Maps always run system <-> model, never system -> system. A map is
 * compiled once from its config (jq expressions included) and then applied
 * to many records.
 *
 *   MAP_IN   system record -> model fields. Each entry's target is a model
 *            field; its value is coerced to the field's type (model/value.h).
 *            A source path that is missing from the input leaves the field
 *            out of the result (a thin payload changes nothing it does not
 *            name); an explicit null gives null.
 *   MAP_OUT  model record (canonical) -> system record. Each entry's target
 *            is a dotted path in the output ("address.city" nests). Decimals
 *            are written as exact JSON numbers.
 *
 * Evaluation order of one entry: source (path, jq or const) -> default when
 * null or missing -> value map (values:) -> coercion (MAP_IN only).
 *
 * Thread: a struct map is used by one thread at a time (libjq's state is not
 * shared safely); build one per thread that needs it.
 */
#ifndef CONCORD_MAP_MAP_H
#define CONCORD_MAP_MAP_H

#include "config/config.h"
#include "core/compiler.h"

struct cJSON;
struct error;
struct map;
struct map_jq;

enum map_direction {
    MAP_IN = 1,
    MAP_OUT,
};

/*
 * Compile spec for model in direction dir. Entries naming a field the model
 * lacks (MAP_IN) or a jq expression that does not compile fail with
 * ERROR_INVALID. On success *out is the caller's, freed with map_free().
 */
MUST_CHECK int map_new(const struct config_map *spec, const struct config_model *model,
                       enum map_direction dir, struct map **out, struct error *err);

/* Release a map. Accepts NULL. */
void map_free(struct map *m);

/*
 * Apply m to input (borrowed). On success *out is a new JSON object the
 * caller frees with cJSON_Delete(). On failure returns -1 with kind
 * ERROR_MAPPING and a message that names the target field and the reason:
 * `field "balance": "abc" is not a decimal`.
 */
MUST_CHECK int map_apply(const struct map *m, const struct cJSON *input, struct cJSON **out,
                         struct error *err);

/*
 * For a MAP_OUT map: whether desired (a result of map_apply()) differs from
 * base (the copy's last known state, in the system's shape; NULL when there
 * is none) on any field the map writes, comparing canonically. Returns 1 if
 * it differs, 0 if not. Fields of base that the map does not write never
 * count, so a system's own extra fields cause no writes.
 */
int map_out_differs(const struct map *m, const struct cJSON *desired, const struct cJSON *base);

/*
 * A compiled jq program, for conditions and computed values outside maps
 * (webhook routing, delete detection). On success *out is the caller's,
 * freed with map_jq_free(). A program that does not compile fails with
 * ERROR_INVALID and libjq's message.
 */
MUST_CHECK int map_jq_new(const char *program, struct map_jq **out, struct error *err);
void map_jq_free(struct map_jq *jq);

/*
 * Run jq on input and return its first output in *out (a new cJSON the
 * caller frees; JSON null when the program gives no output). A runtime error
 * fails with ERROR_MAPPING.
 */
MUST_CHECK int map_jq_eval(struct map_jq *jq, const struct cJSON *input, struct cJSON **out,
                           struct error *err);

/* Run jq as a condition: 1 when its first output is truthy (not false or
 * null), 0 when not, -1 on a runtime error (ERROR_MAPPING). */
MUST_CHECK int map_jq_test(struct map_jq *jq, const struct cJSON *input, struct error *err);

/*
 * Whether the jq program (one map_jq_new() compiled) reads its input only
 * through the top-level keys listed in keys (NULL-terminated), as in
 * `.new.total > 100`: 1 when it surely does, so that two inputs equal on
 * those keys give the same outputs and errors; 0 when it may read more
 * (`.version`, `keys`, `. as $all`, or any jq too rich for the check to
 * follow: a 0 may be too careful, a 1 is never wrong). No jq is run.
 */
int map_jq_reads_only(const char *program, const char *const *keys);

#endif
