/* SPDX-License-Identifier: MIT */

/*
 * tests/fuzz/fuzz_webhook_sig.c — webhook signature checks
 * (src/http/http_sig.c). The input is "<signature header value>\n<body>".
 * Verifying it must not crash under any of the configurations below, and it
 * must never pass unless the signature is right for that very body. To make
 * the second property bite, the body is also checked against the correct
 * signature of a fixed body: that may pass only when the bodies are equal.
 */
/* link: http config */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "http/http_sig.h"

#define FUZZ_MAX_INPUT (64 * 1024)
#define FUZZ_NOW       1700000000

/* libFuzzer fixes this name. NOLINTNEXTLINE(readability-identifier-naming) */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fixed_body[] = "{\"id\":\"evt_1\",\"type\":\"customer.updated\"}";

static struct config_signature
make_sig(int variant)
{
    static char key[] = "whsec_fuzz";
    static char scheme[] = "hmac", header[] = "X-Sig", ts_header[] = "X-Ts";
    static char prefix[] = "sha256=", tpl[] = "{timestamp}.{body}";
    struct config_signature s;

    memset(&s, 0, sizeof(s));
    s.scheme = scheme;
    s.header = header;
    s.secret.value = key;
    s.secret.len = sizeof(key) - 1;
    s.tolerance_s = 300;
    s.encoding = variant & 1 ? CONFIG_SIG_BASE64 : CONFIG_SIG_HEX;
    s.prefix = variant & 2 ? prefix : NULL;
    if (variant & 4) {
        s.timestamp_header = ts_header;
        s.signed_template = tpl;
    }
    return s;
}

static void
check_one(int variant, const char *header, const char *body, size_t body_len)
{
    struct config_signature s = make_sig(variant);
    struct http_sig_input in = {.signature = header,
                                .timestamp = "1700000000",
                                .body = body,
                                .body_len = body_len,
                                .now_s = FUZZ_NOW};
    struct error err = {0};
    char good[128];
    int equal = body_len == sizeof(fixed_body) - 1 && memcmp(body, fixed_body, body_len) == 0;

    if (http_sig_verify(&s, &in, &err) == 0) {
        /* Accepted: then the same header must not pass with one byte more. */
        char *longer = malloc(body_len + 1);

        if (header == NULL || longer == NULL)
            abort();
        memcpy(longer, body, body_len);
        longer[body_len] = 'x';
        in.body = longer;
        in.body_len = body_len + 1;
        if (http_sig_verify(&s, &in, &err) == 0)
            abort();
        free(longer);
        in.body = body;
        in.body_len = body_len;
    } else if (err.kind != ERROR_AUTH || err.msg[0] == '\0') {
        abort();
    }

    /* The signature made for the fixed body, offered with this body. */
    if (http_sig_sign(&s, in.timestamp, fixed_body, sizeof(fixed_body) - 1, good, sizeof(good)) !=
        0)
        abort();
    in.signature = good;
    error_clear(&err);
    if ((http_sig_verify(&s, &in, &err) == 0) != equal)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *nl;
    char *header;
    const char *body;
    size_t body_len;

    if (size > FUZZ_MAX_INPUT)
        return 0;
    nl = memchr(data, '\n', size);
    if (nl == NULL) {
        header = strndup((const char *)data, size);
        body = "";
        body_len = 0;
    } else {
        header = strndup((const char *)data, (size_t)(nl - (const char *)data));
        body = nl + 1;
        body_len = size - (size_t)(nl - (const char *)data) - 1;
    }
    if (header == NULL)
        abort();
    for (int variant = 0; variant < 8; variant++) {
        check_one(variant, header, body, body_len);
        check_one(variant, NULL, body, body_len);
    }
    free(header);
    return 0;
}
