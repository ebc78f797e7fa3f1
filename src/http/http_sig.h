/* SPDX-License-Identifier: MIT */

/*
 * Webhook signature checks, over the raw body as it arrived. The scheme
 * (struct config_signature, webhook.signature in docs/config.md) decides
 * which headers are read and what is signed:
 *
 *   hmac               the generic scheme: HMAC-SHA256 over a template of
 *                      the signed bytes ("{body}", "{timestamp}.{body}"),
 *                      hex or base64, an optional prefix, an optional
 *                      timestamp header checked against a tolerance window
 *   stripe             Stripe-Signature: t=TS,v1=HEX[,v1=HEX...] over "TS.body"
 *   standard-webhooks  webhook-id, webhook-timestamp, webhook-signature
 *                      ("v1,BASE64" entries, space-separated) over "id.TS.body",
 *                      keyed by the base64 decoding of the secret after "whsec_"
 *   github             X-Hub-Signature-256: sha256=HEX over the body
 *   shopify            X-Shopify-Hmac-Sha256: BASE64 over the body
 *   hubspot-v3         X-HubSpot-Signature-v3: BASE64 over method + url + body
 *                      + TS, with X-HubSpot-Request-Timestamp in milliseconds
 *
 * During a secret rotation the config holds two secrets; a signature made
 * with either passes. Every comparison is in constant time over the full
 * digest, and no message names a secret.
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

/* What one request offers for checking. */
struct http_sig_input {
    /*
     * The value of the request header name (case-insensitive), or NULL when
     * it is absent. Called only during http_sig_verify(); the value must
     * stay valid until it returns.
     */
    const char *(*header)(const void *user, const char *name);
    const void *user;   /* passed to header */
    const char *method; /* the request method ("POST"); NULL stands for "POST" */
    const char *body;   /* the raw body, not NUL-terminated */
    size_t body_len;
    int64_t now_s; /* the current time, Unix seconds */
};

/*
 * Check one request. Returns 0 when the signature is good for one of the
 * secrets. Returns -1 with err kind ERROR_AUTH and a reason that names no
 * secret (it is sent back to the caller) when a header is missing or
 * malformed, the signature is wrong, or the timestamp is outside the
 * tolerance window either way; ERROR_INVALID when a standard-webhooks
 * secret is not base64 (the config loader refuses those first);
 * ERROR_INTERNAL when OpenSSL fails, the scheme is unknown, hubspot-v3 has
 * no url, or no secret was loaded (a config read with CONFIG_LOAD_NO_SECRETS).
 */
MUST_CHECK int http_sig_verify(const struct config_signature *sig, const struct http_sig_input *in,
                               struct error *err);

/* The header names a scheme reads; NULL where it reads none. Static strings or sig's own. */
struct http_sig_headers {
    const char *signature;
    const char *timestamp; /* hmac: sig->timestamp_header */
    const char *id;        /* standard-webhooks: "webhook-id" */
};

/* Fill *out with the headers sig's scheme reads. */
void http_sig_headers(const struct config_signature *sig, struct http_sig_headers *out);

/* What a sender signs, for http_sig_sign(). */
struct http_sig_message {
    const char *id;        /* standard-webhooks: the webhook-id value; else unused */
    const char *timestamp; /* the timestamp header's value as sent (hubspot-v3: milliseconds);
                              NULL when the scheme has none */
    const char *method;    /* hubspot-v3: NULL stands for "POST"; else unused */
    const char *body;      /* not NUL-terminated */
    size_t body_len;
};

/*
 * Compute the value a sender would put in the signature header
 * (http_sig_headers().signature) for msg, with the first secret, into out
 * (NUL-terminated): the hmac prefix, Stripe's "t=...,v1=...", the
 * "v1,"/"sha256=" markers included. For the demo, tests and benchmarks.
 * Returns 0, or -1 if out_len is too small, a value the scheme needs is
 * NULL (stripe, standard-webhooks and hubspot-v3 need the timestamp,
 * standard-webhooks the id), the secret does not suit the scheme, or
 * OpenSSL fails.
 */
MUST_CHECK int http_sig_sign(const struct config_signature *sig, const struct http_sig_message *msg,
                             char *out, size_t out_len);

#endif
