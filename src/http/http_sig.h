/* SPDX-License-Identifier: MIT */

/*
 * Webhook signature checks, over the raw body as it arrived. The generic
 * scheme ("hmac") is HMAC-SHA256 keyed by the system's secret over a
 * template of the signed bytes ("{body}", or "{timestamp}.{body}"), encoded
 * as hex or base64, with an optional prefix ("sha256=") and an optional
 * timestamp header checked against a tolerance window. The comparison is in
 * constant time. See config/config.h, struct config_signature.
 *
 * Thread: pure; any thread.
 */
#ifndef CONCORD_HTTP_HTTP_SIG_H
#define CONCORD_HTTP_HTTP_SIG_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/compiler.h"

struct error;

/* What one request offers for checking. Header values are NULL when absent. */
struct http_sig_input {
    const char *signature; /* value of sig->header */
    const char *timestamp; /* value of sig->timestamp_header */
    const char *body;      /* the raw body, not NUL-terminated */
    size_t body_len;
    int64_t now_s; /* the current time, Unix seconds */
};

/*
 * Check one request. Returns 0 when the signature is good. Returns -1 with
 * err kind ERROR_AUTH and a reason that names no secret when it is missing,
 * malformed, wrong, or its timestamp is outside the tolerance window.
 */
MUST_CHECK int http_sig_verify(const struct config_signature *sig, const struct http_sig_input *in,
                               struct error *err);

/*
 * Compute the header value a sender would put in sig->header for body and
 * timestamp (NULL when the scheme has none), prefix included, into out
 * (NUL-terminated). For the demo, tests and benchmarks. Returns 0, or -1 if
 * out_len is too small.
 */
MUST_CHECK int http_sig_sign(const struct config_signature *sig, const char *timestamp,
                             const char *body, size_t body_len, char *out, size_t out_len);

#endif
