/* SPDX-License-Identifier: MIT */

/*
 * Inside the map module only: the jq wrapper's entry points that take a jv,
 * so map_apply() converts a record to jq's form once for all of a map's jq
 * entries instead of once per entry.
 */
#ifndef CONCORD_MAP_MAP_INT_H
#define CONCORD_MAP_MAP_INT_H

#include <jq.h>

#include "core/compiler.h"

struct cJSON;
struct error;
struct map_jq;

/*
 * input as a jv in *out (the caller frees it with jv_free() or passes it
 * on). Fails with ERROR_MAPPING when input nests too deep for jq.
 */
MUST_CHECK int map_jq_input(const struct cJSON *input, jv *out, struct error *err);

/*
 * map_jq_eval() on an input already converted; consumes input (pass
 * jv_copy() to keep a reference).
 */
MUST_CHECK int map_jq_eval_jv(struct map_jq *jq, jv input, struct cJSON **out, struct error *err);

#endif
