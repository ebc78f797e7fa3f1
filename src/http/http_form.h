/* SPDX-License-Identifier: MIT */

/*
 * application/x-www-form-urlencoded bodies with bracket notation, as
 * Stripe's v1 API takes them (metadata[order_id]=6735, items[0][price]=p_1).
 * concord builds each outgoing record as a cJSON object; http_form_encode()
 * turns it into such a body, http_form_decode() reads one back.
 *
 * The wire form, shared by both directions:
 *
 *   body  = pair *("&" pair)
 *   pair  = name *("[" seg "]") "=" value
 *
 * Brackets that give the structure are literal, as stripe-python sends them
 * (its _api_requestor.py turns urlencode()'s %5B/%5D back into [ and ]);
 * every byte of a key name or a value other than A-Z a-z 0-9 - . _ ~ is
 * %XX (uppercase), a space is '+'. So a '[' inside a key name travels as
 * %5B and cannot be mistaken for structure, and decode(encode(x)) == x.
 * Arrays are indexed (items[0], items[1]), as stripe-python encodes lists
 * ("Always use indexed format for arrays"; stripe-node and stripe-ruby
 * say the same and also put the brackets back).
 *
 * Pure functions of their arguments; any thread.
 */
#ifndef CONCORD_HTTP_HTTP_FORM_H
#define CONCORD_HTTP_HTTP_FORM_H

#include <stddef.h>

#include "core/compiler.h"
#include "core/error.h"

struct cJSON;

/* How deep a body may nest: a key has at most this many parts, a name and
 * HTTP_FORM_MAX_DEPTH - 1 bracketed segments (a[b][c] has 3), so values
 * sit at most this many objects or arrays deep, the top level counting 1. */
#define HTTP_FORM_MAX_DEPTH 32

/*
 * Encode obj (a cJSON object) as a form body into *out: malloc()ed,
 * NUL-terminated, the caller frees it; "" for an empty object. The rules
 * (Stripe's: EXTERNAL-APIS.md section 5; stripe-python's _encode.py
 * _api_encode and _api_requestor.py):
 *
 * - key=value pairs joined by '&', keys in the object's order;
 * - a string as is; true/false as "true"/"false";
 * - null as the empty value (key=): Stripe unsets a field given an empty
 *   value. (stripe-python leaves a None out instead; concord sends the
 *   unset because a null in a record means "no value now".)
 * - a number: the fewest significant digits (at most 17) that read back
 *   as the same double, laid out as ECMAScript's Number::toString does:
 *   plain digits, no point, no exponent for integral values ("2000",
 *   "100000000000000000000"; -0 as "0"), "1.5", "0.30000000000000004",
 *   "0.000001", and an exponent only below 1e-6 ("1e-7"). An integral
 *   value of magnitude 1e21 or more is refused: it would need an exponent,
 *   and Stripe's amounts are integers. NaN and infinities are refused.
 *   Text in the "C" locale (concord never calls setlocale());
 * - an object under key as key[child]=v, recursively (key[a][b]=v);
 * - an array as key[0]=v&key[1]=v, an array of objects as key[0][k]=v;
 * - an empty array or an empty nested object as key= (Stripe: "unset").
 *
 * Refused, returning -1 with err ERROR_PERMANENT (the record will never
 * encode, so retrying is useless): obj not an object; an empty key (it
 * would read as key[] = "append to the array"); a number as above; a raw
 * or invalid cJSON node; nesting deeper than HTTP_FORM_MAX_DEPTH; a body
 * longer than max_len bytes ("the form body is larger than N bytes").
 * Returns 0 on success; on failure *out is left NULL.
 */
MUST_CHECK int http_form_encode(const struct cJSON *obj, size_t max_len, char **out,
                                struct error *err);

/*
 * Decode the len bytes at body (no NUL needed; application/x-www-form-
 * urlencoded with literal structural brackets, as http_form_encode()
 * writes it) into *out, a new cJSON object the caller frees with
 * cJSON_Delete(). The inverse of http_form_encode(), for the simulators'
 * checks and for fuzzing round trips:
 *
 * - pairs split on '&' (empty pairs are skipped), each on its first '='
 *   (a pair without one has the empty value); '+' is a space, %XX a byte;
 * - brackets rebuild nested objects, keys in first-seen order; "[]" means
 *   the next index of its parent (expand[]=a&expand[]=b, the form Stripe's
 *   docs write);
 * - a nested object whose keys are exactly "0".."n-1" in that order
 *   becomes an array (the top level stays an object). So an object with
 *   such keys does not survive a round trip: forms cannot tell them apart;
 * - every leaf is a string: forms carry no types (true, 1.5 and null come
 *   back as "true", "1.5" and "").
 *
 * %5B and %5D are a name's own bytes, never structure (unlike PHP's or
 * Rack's parsers, which decode first); that is what makes the round trip
 * exact. Cost: quadratic in the number of keys of one object; meant for
 * bodies of test size.
 *
 * Returns 0, or -1 with err ERROR_INVALID and the byte offset for a
 * malformed body: a bad %XX, a NUL byte, unbalanced brackets or text after
 * the last ']', an empty name, a key repeated, a key both a value and a
 * parent of others (a=1&a[b]=2), nesting deeper than HTTP_FORM_MAX_DEPTH.
 * On failure *out is left NULL.
 */
MUST_CHECK int http_form_decode(const char *body, size_t len, struct cJSON **out,
                                struct error *err);

#endif
