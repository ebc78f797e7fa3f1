/* SPDX-License-Identifier: MIT */

/*
 * Typed field values in their one canonical form (DESIGN.md, step 2).
 *
 * A record's state is a JSON object of model fields. Each value is coerced to
 * its field's type and stored canonically, so two states compare equal when
 * they mean the same thing:
 *
 *   string     a JSON string (numbers and booleans become their text)
 *   integer    a JSON number with no fraction ("42" and 42.0 become 42)
 *   decimal    a JSON *string* holding an exact decimal, without exponent,
 *              trailing zeros or a leading "+": 12.50, "12.5" and 1.25e1 all
 *              become "12.5". Money is never a binary double: a JSON number
 *              is read back from its shortest round-trip text, so any value
 *              with up to 15 significant digits is exact.
 *   boolean    true/false; also "true"/"false", "yes"/"no", "1"/"0", 1/0
 *   timestamp  an RFC 3339 UTC string, "2026-11-26T05:41:52Z", with
 *              milliseconds (".123Z") only when they are not zero; inputs may
 *              carry any offset, or be epoch seconds (a number)
 *   date       "YYYY-MM-DD"
 *   ref        the referenced record's id as a string
 *
 * JSON null stays null for every type (the field is known to be empty).
 * Thread: all functions are pure; any thread.
 */
#ifndef CONCORD_MODEL_VALUE_H
#define CONCORD_MODEL_VALUE_H

#include <stddef.h>

#include "config/config.h"
#include "core/compiler.h"

struct cJSON;
struct error;

/*
 * Coerce in (borrowed) to the canonical form of type. On success *out is a
 * new cJSON value the caller frees with cJSON_Delete(). On failure (a value
 * that cannot be that type: "abc" as an integer) returns -1 with err kind
 * ERROR_MAPPING and a message that quotes the value (cut to 64 bytes).
 */
MUST_CHECK int value_coerce(enum config_type type, const struct cJSON *in, struct cJSON **out,
                            struct error *err);

/*
 * Whether two JSON values are equal in canonical form: objects regardless of
 * key order, numbers by value (1 == 1.0), strings byte for byte. NULL (a
 * missing value) equals only NULL. Returns 1 or 0.
 */
int value_equal(const struct cJSON *a, const struct cJSON *b);

/* Whether v is a number with an integer value below 10^15 in magnitude,
 * which prints as its digits ("%lld"); *out gets it. Returns 1 or 0. */
int value_small_integer(const struct cJSON *v, long long *out);

/*
 * The canonical text of a value: compact JSON with object keys sorted.
 * Returns a malloc()ed string the caller frees. Two values are value_equal()
 * exactly when their canonical texts are equal.
 */
char *value_canonical_text(const struct cJSON *v);

/*
 * The canonical text of an object whose members, in this order, are
 * members[0..n) (each keyed by its string, which must not be NULL), as
 * value_canonical_text() prints it, without making the object. Returns a
 * malloc()ed string the caller frees.
 */
char *value_canonical_members(const struct cJSON *const *members, size_t n);

/*
 * 1 when v is what cJSON_Parse() makes of its canonical text, to the value
 * (keys may come in another order): it holds no raw number (exact decimals
 * read back as doubles) and no number without a JSON form. Else 0. (Where
 * cJSON fails to read back a text at all, a number of 64 digits or more
 * or nesting past its limit, v is the better of the two: the claim's tree
 * is what was sent.)
 */
int value_reads_back(const struct cJSON *v);

/*
 * The canonical text of {name: [at, source], ...} with a member for each
 * member of fields (a record's field times: merge.c), as
 * value_canonical_text() prints it, without making the object. Returns a
 * malloc()ed string the caller frees.
 */
char *value_canonical_times(const struct cJSON *fields, double at, const char *source);

/*
 * A decimal string made canonical ("012.500" -> "12.5", "-0.0" -> "0").
 * Returns 0 and writes at most out_len bytes (NUL included), or -1 if s is
 * not a decimal number or does not fit.
 */
MUST_CHECK int value_decimal_canonical(const char *s, char *out, size_t out_len);

/*
 * A timestamp as epoch milliseconds: an ISO-8601 string, or a number of
 * epoch seconds (milliseconds when it is 1e11 or more). Returns 0 with
 * *out_ms set, or -1 when v is neither.
 */
MUST_CHECK int value_timestamp_ms(const struct cJSON *v, int64_t *out_ms);

/* The value at a dotted path ("customer.email", ".a.b", "items.0.id",
 * "data.-1.id": -1 is an array's last element) in obj, borrowed; NULL when
 * any step is missing. "" and "." give obj. */
const struct cJSON *value_path_get(const struct cJSON *obj, const char *path);

/* The object at a dotted path of object keys ("" gives obj) in obj, which
 * the caller may change in place; NULL when a step is missing or the value
 * there is not an object. */
struct cJSON *value_object_at(struct cJSON *obj, const char *path);

#endif
