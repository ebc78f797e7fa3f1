/* SPDX-License-Identifier: MIT */

/* tests/unit/test_http_sig.c — webhook signature checks (src/http/http_sig.c). */
/* link: http config */

#include <string.h>

#include "check.h"
#include "core/error.h"
#include "http/http_sig.h"

#define NOW 1700000000

/*
 * Computed independently:
 *   printf '%s' '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
 *   printf '%s' '{"a":1}' | openssl dgst -sha256 -hmac secret -binary | base64
 *   python3 -c 'import hmac,hashlib; print(hmac.new(b"",b"",hashlib.sha256).hexdigest())'
 */
#define VECTOR_TS_HEX   "49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
#define VECTOR_BODY_B64 "qp4uNXX11wmLbKzNeQiIw21f22M0KnO62i1qUXR6hJQ="
#define VECTOR_EMPTY    "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad"

static const char body[] = "{\"a\":1}";

/* A signature config filled by hand, as the config loader would. */
static struct config_signature
make_sig(const char *key, enum config_sig_encoding enc, const char *prefix, int with_ts)
{
    struct config_signature s;

    memset(&s, 0, sizeof(s));
    s.scheme = (char *)(uintptr_t) "hmac";
    s.header = (char *)(uintptr_t) "X-Signature";
    s.secret.value = (char *)(uintptr_t)key;
    s.secret.len = strlen(key);
    s.encoding = enc;
    s.prefix = (char *)(uintptr_t)prefix;
    s.tolerance_s = 300;
    if (with_ts) {
        s.timestamp_header = (char *)(uintptr_t) "X-Timestamp";
        s.signed_template = (char *)(uintptr_t) "{timestamp}.{body}";
    }
    return s;
}

static int
verify(const struct config_signature *s, const char *sig, const char *ts, const char *b,
       int64_t now, struct error *err)
{
    struct http_sig_input in = {
        .signature = sig, .timestamp = ts, .body = b, .body_len = strlen(b), .now_s = now};

    error_clear(err);
    return http_sig_verify(s, &in, err);
}

static void
fixed_vectors_match_openssl(void)
{
    struct config_signature ts = make_sig("secret", CONFIG_SIG_HEX, NULL, 1);
    struct config_signature b64 = make_sig("secret", CONFIG_SIG_BASE64, NULL, 0);
    struct config_signature empty = make_sig("", CONFIG_SIG_HEX, NULL, 0);
    char out[128];
    struct error err = {0};

    CHECK_EQ(http_sig_sign(&ts, "1700000000", body, strlen(body), out, sizeof(out)), 0);
    CHECK_STR_EQ(out, VECTOR_TS_HEX);
    CHECK_EQ(http_sig_sign(&b64, NULL, body, strlen(body), out, sizeof(out)), 0);
    CHECK_STR_EQ(out, VECTOR_BODY_B64);
    CHECK_EQ(http_sig_sign(&empty, NULL, "", 0, out, sizeof(out)), 0);
    CHECK_STR_EQ(out, VECTOR_EMPTY);

    CHECK_EQ(verify(&ts, VECTOR_TS_HEX, "1700000000", body, NOW, &err), 0);
    CHECK_EQ(verify(&b64, VECTOR_BODY_B64, NULL, body, NOW, &err), 0);
}

static void
good_signatures_are_accepted(void)
{
    static const struct {
        enum config_sig_encoding enc;
        const char *prefix;
        int with_ts;
    } cases[] = {
        {CONFIG_SIG_HEX, NULL, 0},    {CONFIG_SIG_HEX, "sha256=", 0},
        {CONFIG_SIG_BASE64, NULL, 0}, {CONFIG_SIG_BASE64, "v1=", 0},
        {CONFIG_SIG_HEX, NULL, 1},    {CONFIG_SIG_BASE64, "sha256=", 1},
    };
    struct error err = {0};
    char out[128];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct config_signature s =
            make_sig("whsec_abc", cases[i].enc, cases[i].prefix, cases[i].with_ts);
        const char *ts = cases[i].with_ts ? "1700000100" : NULL;

        CHECK_EQ(http_sig_sign(&s, ts, body, strlen(body), out, sizeof(out)), 0);
        if (cases[i].prefix != NULL)
            CHECK(strncmp(out, cases[i].prefix, strlen(cases[i].prefix)) == 0);
        if (verify(&s, out, ts, body, NOW, &err) != 0)
            check_fail(__FILE__, __LINE__, "case %zu refused: %s", i, err.msg);
    }
}

static void
upper_case_hex_and_blanks_are_accepted(void)
{
    struct config_signature s = make_sig("secret", CONFIG_SIG_HEX, "sha256=", 1);
    struct error err = {0};
    char upper[128] = "sha256=";

    for (size_t i = 0; i < strlen(VECTOR_TS_HEX); i++) {
        char c = VECTOR_TS_HEX[i];

        upper[7 + i] = c >= 'a' && c <= 'f' ? (char)(c - 'a' + 'A') : c;
    }
    CHECK_EQ(verify(&s, upper, "1700000000", body, NOW, &err), 0);
    CHECK_EQ(verify(&s, " sha256=" VECTOR_TS_HEX " ", "1700000000", body, NOW, &err), 0);
}

static void
tampered_body_is_rejected(void)
{
    struct config_signature s = make_sig("secret", CONFIG_SIG_HEX, NULL, 1);
    struct error err = {0};

    CHECK_EQ(verify(&s, VECTOR_TS_HEX, "1700000000", "{\"a\":2}", NOW, &err), -1);
    CHECK_EQ(err.kind, ERROR_AUTH);
    CHECK_STR_EQ(err.msg, "signature does not match");
    CHECK_EQ(verify(&s, VECTOR_TS_HEX, "1700000000", "{\"a\":1} ", NOW, &err), -1);
    CHECK_EQ(verify(&s, VECTOR_TS_HEX, "1700000000", "", NOW, &err), -1);
    /* The timestamp is signed too: another value in the window does not pass. */
    CHECK_EQ(verify(&s, VECTOR_TS_HEX, "1700000001", body, NOW, &err), -1);
    CHECK_STR_EQ(err.msg, "signature does not match");
}

static void
wrong_secret_is_rejected(void)
{
    struct config_signature s = make_sig("secreT", CONFIG_SIG_HEX, NULL, 1);
    struct error err = {0};

    CHECK_EQ(verify(&s, VECTOR_TS_HEX, "1700000000", body, NOW, &err), -1);
    CHECK_EQ(err.kind, ERROR_AUTH);
    CHECK_STR_EQ(err.msg, "signature does not match");
    CHECK(strstr(err.msg, "secreT") == NULL);
}

static void
stale_and_future_timestamps_are_rejected(void)
{
    struct config_signature s = make_sig("k", CONFIG_SIG_HEX, NULL, 1);
    struct error err = {0};
    char out[128];

    CHECK_EQ(http_sig_sign(&s, "1699999700", body, strlen(body), out, sizeof(out)), 0);
    CHECK_EQ(verify(&s, out, "1699999700", body, NOW, &err), 0); /* exactly 300 s old */
    CHECK_EQ(http_sig_sign(&s, "1699999699", body, strlen(body), out, sizeof(out)), 0);
    CHECK_EQ(verify(&s, out, "1699999699", body, NOW, &err), -1);
    CHECK_EQ(err.kind, ERROR_AUTH);
    CHECK_STR_EQ(err.msg, "timestamp outside the 300 s window");
    CHECK_EQ(http_sig_sign(&s, "1700000301", body, strlen(body), out, sizeof(out)), 0);
    CHECK_EQ(verify(&s, out, "1700000301", body, NOW, &err), -1);
    CHECK_STR_EQ(err.msg, "timestamp outside the 300 s window");
    CHECK_EQ(verify(&s, out, "99999999999999999999", body, NOW, &err), -1);
    CHECK_EQ(err.kind, ERROR_AUTH);
    CHECK_EQ(verify(&s, out, "-5", body, NOW, &err), -1);
    CHECK_EQ(verify(&s, out, "", body, NOW, &err), -1);
    CHECK_EQ(verify(&s, out, "1700000000 ", body, NOW, &err), -1);
}

static void
missing_headers_are_rejected(void)
{
    struct config_signature s = make_sig("secret", CONFIG_SIG_HEX, NULL, 1);
    struct error err = {0};

    CHECK_EQ(verify(&s, NULL, "1700000000", body, NOW, &err), -1);
    CHECK_EQ(err.kind, ERROR_AUTH);
    CHECK_STR_EQ(err.msg, "missing signature header X-Signature");
    CHECK_EQ(verify(&s, VECTOR_TS_HEX, NULL, body, NOW, &err), -1);
    CHECK_EQ(err.kind, ERROR_AUTH);
    CHECK_STR_EQ(err.msg, "missing timestamp header X-Timestamp");
}

static void
malformed_signatures_are_rejected(void)
{
    struct config_signature hex = make_sig("secret", CONFIG_SIG_HEX, "sha256=", 0);
    struct config_signature b64 = make_sig("secret", CONFIG_SIG_BASE64, NULL, 0);
    static const char *const bad_hex[] = {
        "", "sha256=", "sha256=abc", "sha256=zz", "sha1=00", VECTOR_TS_HEX, "sha256=0x00",
    };
    static const char *const bad_b64[] = {"", "a", "ab=c", "abc===", "a*cd", "====="};
    struct error err = {0};

    for (size_t i = 0; i < sizeof(bad_hex) / sizeof(bad_hex[0]); i++) {
        CHECK_EQ(verify(&hex, bad_hex[i], NULL, body, NOW, &err), -1);
        CHECK_EQ(err.kind, ERROR_AUTH);
        if (strcmp(err.msg, "malformed signature") != 0)
            check_fail(__FILE__, __LINE__, "\"%s\": %s", bad_hex[i], err.msg);
    }
    for (size_t i = 0; i < sizeof(bad_b64) / sizeof(bad_b64[0]); i++) {
        CHECK_EQ(verify(&b64, bad_b64[i], NULL, body, NOW, &err), -1);
        if (strcmp(err.msg, "malformed signature") != 0)
            check_fail(__FILE__, __LINE__, "\"%s\": %s", bad_b64[i], err.msg);
    }
    /* Well-formed but of the wrong length: decoded, then refused as wrong. */
    CHECK_EQ(verify(&hex, "sha256=00", NULL, body, NOW, &err), -1);
    CHECK_STR_EQ(err.msg, "signature does not match");
    /* A correct digest with a byte more does not pass either. */
    CHECK_EQ(verify(&b64, "qp4uNXX11wmLbKzNeQiIw21f22M0KnO62i1qUXR6hJQA", NULL, body, NOW, &err),
             -1);
    CHECK_STR_EQ(err.msg, "signature does not match");
}

static void
sign_refuses_a_short_buffer(void)
{
    struct config_signature s = make_sig("secret", CONFIG_SIG_HEX, "sha256=", 0);
    char out[71];

    CHECK_EQ(http_sig_sign(&s, NULL, body, strlen(body), out, sizeof(out)), -1);
    CHECK_EQ(http_sig_sign(&s, NULL, body, strlen(body), out, 0), -1);
    {
        char fits[72]; /* "sha256=" + 64 hex digits + NUL */

        CHECK_EQ(http_sig_sign(&s, NULL, body, strlen(body), fits, sizeof(fits)), 0);
        CHECK_EQ(strlen(fits), 71);
    }
}

const struct check_case check_cases[] = {
    CHECK_CASE(fixed_vectors_match_openssl),
    CHECK_CASE(good_signatures_are_accepted),
    CHECK_CASE(upper_case_hex_and_blanks_are_accepted),
    CHECK_CASE(tampered_body_is_rejected),
    CHECK_CASE(wrong_secret_is_rejected),
    CHECK_CASE(stale_and_future_timestamps_are_rejected),
    CHECK_CASE(missing_headers_are_rejected),
    CHECK_CASE(malformed_signatures_are_rejected),
    CHECK_CASE(sign_refuses_a_short_buffer),
    {0},
};
