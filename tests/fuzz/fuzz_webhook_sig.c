/* SPDX-License-Identifier: MIT */

/*
 * tests/fuzz/fuzz_webhook_sig.c — webhook signature checks
 * (src/http/http_sig.c), every scheme. The input is "<header value>\n<body>".
 * The value is offered as each scheme's signature header (Stripe's
 * "t=,v1=" list, Standard Webhooks' "v1,..." list, the single values of the
 * others), then as its timestamp header and its webhook-id beside a correct
 * signature. Verifying must not crash, must refuse with ERROR_AUTH and a
 * reason, and must never pass unless the signature is right for that very
 * body: an accepted request fails with one byte more, and the correct
 * signature of a fixed body passes with this body only when they are equal.
 */
/* link: http config */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "http/http_sig.h"

#define FUZZ_MAX_INPUT (64 * 1024)
#define FUZZ_NOW       1700000000

/* libFuzzer fixes this name. NOLINTNEXTLINE(readability-identifier-naming) */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fixed_body[] = "{\"id\":\"evt_1\",\"type\":\"customer.updated\"}";

/* Base64 after the prefix, so the standard-webhooks key decodes too. */
static char key_new[] = "whsec_ZnV6ei1uZXctc2VjcmV0LWtleQ==";
static char key_old[] = "whsec_ZnV6ei1vbGQtc2VjcmV0LWtleQ==";

/* The generic scheme in 8 variants, then each named scheme, then the same with two secrets. */
#define HMAC_VARIANTS 8
#define NAMED_COUNT   5
#define VARIANTS      (2 * (HMAC_VARIANTS + NAMED_COUNT))

static struct config_signature
make_sig(int variant)
{
    static char hmac[] = "hmac", header[] = "X-Sig", ts_header[] = "X-Ts";
    static char prefix[] = "sha256=", tpl[] = "{timestamp}.{body}";
    static char url[] = "https://hooks.example.com/crm?x=%3a%2F%zz%";
    static char *const names[NAMED_COUNT] = {"stripe", "standard-webhooks", "github", "shopify",
                                             "hubspot-v3"};
    int rotated = variant >= HMAC_VARIANTS + NAMED_COUNT;
    int v = variant % (HMAC_VARIANTS + NAMED_COUNT);
    struct config_signature s;

    memset(&s, 0, sizeof(s));
    s.secret.value = key_new;
    s.secret.len = sizeof(key_new) - 1;
    s.secret_count = 1;
    if (rotated) {
        s.secret_rotated.value = key_old;
        s.secret_rotated.len = sizeof(key_old) - 1;
        s.secret_count = 2;
    }
    s.tolerance_s = 300;
    if (v >= HMAC_VARIANTS) {
        s.scheme_kind = (enum config_sig_scheme)(CONFIG_SIG_SCHEME_STRIPE + (v - HMAC_VARIANTS));
        s.scheme = names[v - HMAC_VARIANTS];
        s.url = url;
        return s;
    }
    s.scheme = hmac;
    s.scheme_kind = CONFIG_SIG_SCHEME_HMAC;
    s.header = header;
    s.encoding = v & 1 ? CONFIG_SIG_BASE64 : CONFIG_SIG_HEX;
    s.prefix = v & 2 ? prefix : NULL;
    if (v & 4) {
        s.timestamp_header = ts_header;
        s.signed_template = tpl;
    }
    return s;
}

/* The request's headers: the scheme's names with these values (NULL: absent). */
struct request {
    struct http_sig_headers names;
    const char *signature, *timestamp, *id;
};

static const char *
lookup(const void *user, const char *name)
{
    const struct request *r = user;

    if (r->names.signature != NULL && strcasecmp(name, r->names.signature) == 0)
        return r->signature;
    if (r->names.timestamp != NULL && strcasecmp(name, r->names.timestamp) == 0)
        return r->timestamp;
    if (r->names.id != NULL && strcasecmp(name, r->names.id) == 0)
        return r->id;
    return NULL;
}

static int
verify(const struct config_signature *s, const struct request *r, const char *body, size_t body_len,
       struct error *err)
{
    struct http_sig_input in = {.header = lookup,
                                .user = r,
                                .method = "POST",
                                .body = body,
                                .body_len = body_len,
                                .now_s = FUZZ_NOW};

    error_clear(err);
    return http_sig_verify(s, &in, err);
}

/* Accepted: one byte more must fail. Refused: ERROR_AUTH with a reason. */
static void
check_refusal_or_exact(const struct config_signature *s, const struct request *r, const char *body,
                       size_t body_len)
{
    struct error err = {0};
    char *longer;

    if (verify(s, r, body, body_len, &err) != 0) {
        if (err.kind != ERROR_AUTH || err.msg[0] == '\0')
            abort();
        return;
    }
    longer = malloc(body_len + 1);
    if (longer == NULL)
        abort();
    memcpy(longer, body, body_len);
    longer[body_len] = 'x';
    if (verify(s, r, longer, body_len + 1, &err) == 0)
        abort();
    free(longer);
}

static void
check_one(int variant, const char *value, const char *body, size_t body_len)
{
    struct config_signature s = make_sig(variant);
    int is_hubspot = s.scheme_kind == CONFIG_SIG_SCHEME_HUBSPOT_V3;
    struct request r = {.timestamp = is_hubspot ? "1700000000000" : "1700000000", .id = "msg_1"};
    struct http_sig_message msg = {.id = r.id,
                                   .timestamp = r.timestamp,
                                   .body = fixed_body,
                                   .body_len = sizeof(fixed_body) - 1};
    int equal = body_len == sizeof(fixed_body) - 1 && memcmp(body, fixed_body, body_len) == 0;
    struct error err = {0};
    char good[160];

    http_sig_headers(&s, &r.names);

    /* The value as the signature header (absent too). */
    r.signature = value;
    check_refusal_or_exact(&s, &r, body, body_len);

    /* The correct signature of the fixed body, offered with this body. */
    if (http_sig_sign(&s, &msg, good, sizeof(good)) != 0)
        abort();
    r.signature = good;
    if ((verify(&s, &r, body, body_len, &err) == 0) != equal)
        abort();

    /* The value as the timestamp and as the id, beside that signature. */
    if (value != NULL && r.names.timestamp != NULL) {
        r.timestamp = value;
        check_refusal_or_exact(&s, &r, fixed_body, sizeof(fixed_body) - 1);
        r.timestamp = msg.timestamp;
    }
    if (value != NULL && r.names.id != NULL) {
        r.id = value;
        check_refusal_or_exact(&s, &r, fixed_body, sizeof(fixed_body) - 1);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *nl;
    char *value;
    const char *body;
    size_t body_len;

    if (size > FUZZ_MAX_INPUT)
        return 0;
    nl = memchr(data, '\n', size);
    if (nl == NULL) {
        value = strndup((const char *)data, size);
        body = "";
        body_len = 0;
    } else {
        value = strndup((const char *)data, (size_t)(nl - (const char *)data));
        body = nl + 1;
        body_len = size - (size_t)(nl - (const char *)data) - 1;
    }
    if (value == NULL)
        abort();
    for (int variant = 0; variant < VARIANTS; variant++) {
        check_one(variant, value, body, body_len);
        check_one(variant, NULL, body, body_len);
    }
    free(value);
    return 0;
}
