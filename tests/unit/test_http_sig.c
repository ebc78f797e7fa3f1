/* SPDX-License-Identifier: MIT */

/* tests/unit/test_http_sig.c — webhook signature checks (src/http/http_sig.c). */
/* link: http config */

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/*
 * Stripe. Secret and payload are DUMMY_WEBHOOK_SECRET and
 * DUMMY_WEBHOOK_PAYLOAD of stripe-python tests/test_webhook.py (its
 * generate_header() signs at test time, so there is no fixed digest there);
 * the digest for t=1700000000 was computed independently:
 *   python3 -c 'import hmac,hashlib; print(hmac.new(b"whsec_test_secret",
 *     b"1700000000." + PAYLOAD, hashlib.sha256).hexdigest())'
 */
#define STRIPE_SECRET "whsec_test_secret"
#define STRIPE_PAYLOAD                                                                           \
    "{\n  \"id\": \"evt_test_webhook\",\n  \"object\": \"event\",\n  \"data\": { \"object\": { " \
    "\"id\": \"rdr_123\", \"object\": \"terminal.reader\" } }\n}"
#define STRIPE_V1 "3bfab77baf5f7b6991a46c9b53b6547d7afc56148b10468fcad9f35c1992ffbd"

/*
 * Standard Webhooks: test_sign_function in standard-webhooks/standard-webhooks
 * libraries/python/tests/test_webhooks.py (the spec repository's worked example).
 */
#define SW_SECRET    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SW_MSG_ID    "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SW_TIMESTAMP "1614265330"
#define SW_PAYLOAD   "{\"test\": 2432232314}"
#define SW_EXPECTED  "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
/* test_invalid_signature_raises_error and test_multi_sig_payload_is_valid, same file. */
#define SW_INVALID "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="
#define SW_OTHER   "Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="

/*
 * GitHub: the test values of docs.github.com, "Validating webhook
 * deliveries" (webhooks/using-webhooks/validating-webhook-deliveries).
 */
#define GITHUB_SECRET   "It's a Secret to Everybody"
#define GITHUB_PAYLOAD  "Hello, World!"
#define GITHUB_EXPECTED "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

/*
 * Shopify: its docs (shopify.dev/docs/apps/build/webhooks/verify-deliveries)
 * describe the scheme but give no fixed vector, and none was found in an
 * official SDK; computed independently:
 *   python3 -c 'import hmac,hashlib,base64; print(base64.b64encode(hmac.new(
 *     b"shopify-test-secret", PAYLOAD, hashlib.sha256).digest()).decode())'
 */
#define SHOPIFY_SECRET "shopify-test-secret"
#define SHOPIFY_PAYLOAD \
    "{\"id\":820982911946154508,\"email\":\"jon@doe.ca\",\"topic\":\"orders/create\"}"
#define SHOPIFY_EXPECTED "3KKkk8f95CBTrfY7rsXui6HiWE5Cw9uwpO3gShvFbNs="

/*
 * HubSpot v3: test_get_signature__v3 in HubSpot/hubspot-api-python
 * tests/spec/utils/test_signature.py (timestamp 15000000 ms = 15000 s).
 */
#define HUBSPOT_SECRET    "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
#define HUBSPOT_URL       "https://www.example.com/webhook_uri"
#define HUBSPOT_PAYLOAD   "{'example_field':'example_value'}"
#define HUBSPOT_TIMESTAMP "15000000"
#define HUBSPOT_EXPECTED  "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw="
/*
 * A URL with escapes: %3A and %2f are decoded before signing, %20 and %7E
 * are not (the decode list of http_sig.c). Computed independently with
 * python3 hmac over "POST" + "https://hooks.example.com/crm?x=a:b/c%20d%7E"
 * + '[{"eventId":1}]' + "1700000000123".
 */
#define HUBSPOT_ESCAPED_URL "https://hooks.example.com/crm?x=a%3Ab%2fc%20d%7E"
#define HUBSPOT_ESCAPED_SIG "KcHez390CmqWLTbHsRSSnfqbesLKd9wwbzTj41Is/Kg="

static const char body[] = "{\"a\":1}";

/* ---- Fixtures ---- */

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

/* A named scheme with one secret (or two: old may be NULL). */
static struct config_signature
make_named(enum config_sig_scheme kind, const char *name, const char *key, const char *old)
{
    struct config_signature s;

    memset(&s, 0, sizeof(s));
    s.scheme = (char *)(uintptr_t)name;
    s.scheme_kind = kind;
    s.secret.value = (char *)(uintptr_t)key;
    s.secret.len = strlen(key);
    s.secret_count = 1;
    if (old != NULL) {
        s.secret_rotated.value = (char *)(uintptr_t)old;
        s.secret_rotated.len = strlen(old);
        s.secret_count = 2;
    }
    s.tolerance_s = 300;
    if (kind == CONFIG_SIG_SCHEME_HUBSPOT_V3)
        s.url = (char *)(uintptr_t)HUBSPOT_URL;
    return s;
}

/* Request headers for the fake lookup. */
struct headers {
    const char *name[4];
    const char *value[4];
};

static const char *
lookup(const void *user, const char *name)
{
    const struct headers *h = user;

    for (size_t i = 0; i < 4 && h->name[i] != NULL; i++) {
        if (strcasecmp(h->name[i], name) == 0)
            return h->value[i];
    }
    return NULL;
}

static int
verify_with(const struct config_signature *s, const struct headers *h, const char *method,
            const char *b, int64_t now, struct error *err)
{
    struct http_sig_input in = {.header = lookup,
                                .user = h,
                                .method = method,
                                .body = b,
                                .body_len = strlen(b),
                                .now_s = now};

    error_clear(err);
    return http_sig_verify(s, &in, err);
}

/* The generic scheme's two headers; NULL leaves one out. */
static int
verify(const struct config_signature *s, const char *sig, const char *ts, const char *b,
       int64_t now, struct error *err)
{
    struct headers h = {{"X-Signature", "X-Timestamp"}, {sig, ts}};

    if (sig == NULL) {
        h.name[0] = "X-Timestamp";
        h.value[0] = ts;
        h.name[1] = NULL;
    }
    return verify_with(s, &h, "POST", b, now, err);
}

/* Whatever scheme s is: its signature header sig, timestamp ts, id id. */
static int
verify_named(const struct config_signature *s, const char *sig, const char *ts, const char *id,
             const char *b, int64_t now, struct error *err)
{
    struct http_sig_headers names;
    struct headers h = {{NULL}, {NULL}};
    size_t n = 0;

    http_sig_headers(s, &names);
    if (sig != NULL) {
        h.name[n] = names.signature;
        h.value[n++] = sig;
    }
    if (ts != NULL && names.timestamp != NULL) {
        h.name[n] = names.timestamp;
        h.value[n++] = ts;
    }
    if (id != NULL && names.id != NULL) {
        h.name[n] = names.id;
        h.value[n++] = id;
    }
    return verify_with(s, &h, "POST", b, now, err);
}

static int
sign(const struct config_signature *s, const char *ts, const char *id, const char *b, char *out,
     size_t out_len)
{
    struct http_sig_message m = {.id = id, .timestamp = ts, .body = b, .body_len = strlen(b)};

    return http_sig_sign(s, &m, out, out_len);
}

/* The refusal, its kind and its message, in one line per case. */
static void
expect_refused(int rc, const struct error *err, enum error_kind kind, const char *msg, int line)
{
    if (rc != -1)
        check_fail(__FILE__, line, "accepted, expected \"%s\"", msg);
    else if (err->kind != kind || strcmp(err->msg, msg) != 0)
        check_fail(__FILE__, line, "refused with \"%s\" (kind %d), expected \"%s\" (kind %d)",
                   err->msg, (int)err->kind, msg, (int)kind);
}

#define REFUSED(rc, msg)  expect_refused((rc), &err, ERROR_AUTH, (msg), __LINE__)
#define NO_MATCH(rc)      REFUSED((rc), "signature does not match")
#define MALFORMED(rc)     REFUSED((rc), "malformed signature")
#define OUT_OF_WINDOW(rc) REFUSED((rc), "timestamp outside the 300 s window")

/* ---- The generic hmac scheme ---- */

static void
fixed_vectors_match_openssl(void)
{
    struct config_signature ts = make_sig("secret", CONFIG_SIG_HEX, NULL, 1);
    struct config_signature b64 = make_sig("secret", CONFIG_SIG_BASE64, NULL, 0);
    struct config_signature empty = make_sig("", CONFIG_SIG_HEX, NULL, 0);
    char out[128];
    struct error err = {0};

    CHECK_EQ(sign(&ts, "1700000000", NULL, body, out, sizeof(out)), 0);
    CHECK_STR_EQ(out, VECTOR_TS_HEX);
    CHECK_EQ(sign(&b64, NULL, NULL, body, out, sizeof(out)), 0);
    CHECK_STR_EQ(out, VECTOR_BODY_B64);
    CHECK_EQ(sign(&empty, NULL, NULL, "", out, sizeof(out)), 0);
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

        CHECK_EQ(sign(&s, ts, NULL, body, out, sizeof(out)), 0);
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

    NO_MATCH(verify(&s, VECTOR_TS_HEX, "1700000000", "{\"a\":2}", NOW, &err));
    NO_MATCH(verify(&s, VECTOR_TS_HEX, "1700000000", "{\"a\":1} ", NOW, &err));
    NO_MATCH(verify(&s, VECTOR_TS_HEX, "1700000000", "", NOW, &err));
    /* The timestamp is signed too: another value in the window does not pass. */
    NO_MATCH(verify(&s, VECTOR_TS_HEX, "1700000001", body, NOW, &err));
}

static void
wrong_secret_is_rejected(void)
{
    struct config_signature s = make_sig("secreT", CONFIG_SIG_HEX, NULL, 1);
    struct error err = {0};

    NO_MATCH(verify(&s, VECTOR_TS_HEX, "1700000000", body, NOW, &err));
    CHECK(strstr(err.msg, "secreT") == NULL);
}

static void
stale_and_future_timestamps_are_rejected(void)
{
    struct config_signature s = make_sig("k", CONFIG_SIG_HEX, NULL, 1);
    struct error err = {0};
    char out[128];

    CHECK_EQ(sign(&s, "1699999700", NULL, body, out, sizeof(out)), 0);
    CHECK_EQ(verify(&s, out, "1699999700", body, NOW, &err), 0); /* exactly 300 s old */
    CHECK_EQ(sign(&s, "1699999699", NULL, body, out, sizeof(out)), 0);
    OUT_OF_WINDOW(verify(&s, out, "1699999699", body, NOW, &err));
    CHECK_EQ(sign(&s, "1700000301", NULL, body, out, sizeof(out)), 0);
    OUT_OF_WINDOW(verify(&s, out, "1700000301", body, NOW, &err));
    REFUSED(verify(&s, out, "99999999999999999999", body, NOW, &err),
            "malformed timestamp in header X-Timestamp");
    REFUSED(verify(&s, out, "-5", body, NOW, &err), "malformed timestamp in header X-Timestamp");
    REFUSED(verify(&s, out, "", body, NOW, &err), "malformed timestamp in header X-Timestamp");
    REFUSED(verify(&s, out, "1700000000 ", body, NOW, &err),
            "malformed timestamp in header X-Timestamp");
}

static void
missing_headers_are_rejected(void)
{
    struct config_signature s = make_sig("secret", CONFIG_SIG_HEX, NULL, 1);
    struct error err = {0};

    REFUSED(verify(&s, NULL, "1700000000", body, NOW, &err),
            "missing signature header X-Signature");
    REFUSED(verify(&s, VECTOR_TS_HEX, NULL, body, NOW, &err),
            "missing timestamp header X-Timestamp");
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

    for (size_t i = 0; i < sizeof(bad_hex) / sizeof(bad_hex[0]); i++)
        MALFORMED(verify(&hex, bad_hex[i], NULL, body, NOW, &err));
    for (size_t i = 0; i < sizeof(bad_b64) / sizeof(bad_b64[0]); i++)
        MALFORMED(verify(&b64, bad_b64[i], NULL, body, NOW, &err));
    /* Well-formed but of the wrong length: decoded, then refused as wrong. */
    NO_MATCH(verify(&hex, "sha256=00", NULL, body, NOW, &err));
    /* A correct digest with a byte more does not pass either. */
    NO_MATCH(verify(&b64, "qp4uNXX11wmLbKzNeQiIw21f22M0KnO62i1qUXR6hJQA", NULL, body, NOW, &err));
}

static void
sign_refuses_a_short_buffer(void)
{
    struct config_signature s = make_sig("secret", CONFIG_SIG_HEX, "sha256=", 0);
    struct config_signature st = make_named(CONFIG_SIG_SCHEME_STRIPE, "stripe", "k", NULL);
    char out[71], fits[72]; /* "sha256=" + 64 hex digits + NUL */
    char stripe_fits[80];   /* "t=1700000000,v1=" + 64 + NUL = 81 */

    CHECK_EQ(sign(&s, NULL, NULL, body, out, sizeof(out)), -1);
    CHECK_EQ(sign(&s, NULL, NULL, body, out, 0), -1);
    CHECK_EQ(sign(&s, NULL, NULL, body, fits, sizeof(fits)), 0);
    CHECK_EQ(strlen(fits), 71);
    CHECK_EQ(sign(&st, "1700000000", NULL, body, stripe_fits, sizeof(stripe_fits)), -1);
}

/* ---- Named schemes: the published vectors ---- */

static void
stripe_vector(void)
{
    struct config_signature s = make_named(CONFIG_SIG_SCHEME_STRIPE, "stripe", STRIPE_SECRET, NULL);
    struct config_signature bare =
        make_named(CONFIG_SIG_SCHEME_STRIPE, "stripe", "test_secret", NULL);
    struct error err = {0};
    char out[128];

    CHECK_EQ(sign(&s, "1700000000", NULL, STRIPE_PAYLOAD, out, sizeof(out)), 0);
    CHECK_STR_EQ(out, "t=1700000000,v1=" STRIPE_V1);
    CHECK_EQ(verify_named(&s, out, NULL, NULL, STRIPE_PAYLOAD, NOW, &err), 0);
    /* The key is the whole "whsec_..." string, not what follows the prefix. */
    NO_MATCH(verify_named(&bare, out, NULL, NULL, STRIPE_PAYLOAD, NOW, &err));
    NO_MATCH(verify_named(&s, out, NULL, NULL, STRIPE_PAYLOAD " ", NOW, &err));
    /* The timestamp is signed: another t in the window does not pass. */
    NO_MATCH(verify_named(&s, "t=1700000001,v1=" STRIPE_V1, NULL, NULL, STRIPE_PAYLOAD, NOW, &err));
}

static void
stripe_multiple_v1_and_v0(void)
{
    struct config_signature s = make_named(CONFIG_SIG_SCHEME_STRIPE, "stripe", STRIPE_SECRET, NULL);
    struct error err = {0};

    /* stripe-python test_header_contains_valid_signature: a bad v1 beside a good one. */
    CHECK_EQ(verify_named(&s, "t=1700000000,v1=" STRIPE_V1 ",v1=bad_signature", NULL, NULL,
                          STRIPE_PAYLOAD, NOW, &err),
             0);
    CHECK_EQ(verify_named(&s, "t=1700000000,v1=00,v0=abc,v1=" STRIPE_V1, NULL, NULL, STRIPE_PAYLOAD,
                          NOW, &err),
             0);
    CHECK_EQ(verify_named(&s, " t=1700000000 , v1=" STRIPE_V1 " ", NULL, NULL, STRIPE_PAYLOAD, NOW,
                          &err),
             0);
    /* Only v1 counts (test_raise_on_no_signatures_with_expected_scheme). */
    MALFORMED(
        verify_named(&s, "t=1700000000,v0=" STRIPE_V1, NULL, NULL, STRIPE_PAYLOAD, NOW, &err));
    NO_MATCH(
        verify_named(&s, "t=1700000000,v1=bad_signature", NULL, NULL, STRIPE_PAYLOAD, NOW, &err));
}

static void
standard_webhooks_vector(void)
{
    struct config_signature s =
        make_named(CONFIG_SIG_SCHEME_STANDARD_WEBHOOKS, "standard-webhooks", SW_SECRET, NULL);
    struct config_signature bare =
        make_named(CONFIG_SIG_SCHEME_STANDARD_WEBHOOKS, "standard-webhooks", &SW_SECRET[6], NULL);
    const int64_t now = 1614265330;
    struct error err = {0};
    char out[128];

    CHECK_EQ(sign(&s, SW_TIMESTAMP, SW_MSG_ID, SW_PAYLOAD, out, sizeof(out)), 0);
    CHECK_STR_EQ(out, SW_EXPECTED);
    CHECK_EQ(verify_named(&s, SW_EXPECTED, SW_TIMESTAMP, SW_MSG_ID, SW_PAYLOAD, now, &err), 0);
    /* test_signature_verification_with_and_without_prefix */
    CHECK_EQ(verify_named(&bare, SW_EXPECTED, SW_TIMESTAMP, SW_MSG_ID, SW_PAYLOAD, now, &err), 0);
    /* test_invalid_signature_raises_error */
    NO_MATCH(verify_named(&s, SW_INVALID, SW_TIMESTAMP, SW_MSG_ID, SW_PAYLOAD, now, &err));
    /* The id and the timestamp are signed. */
    NO_MATCH(verify_named(&s, SW_EXPECTED, SW_TIMESTAMP, "msg_other", SW_PAYLOAD, now, &err));
    NO_MATCH(verify_named(&s, SW_EXPECTED, "1614265331", SW_MSG_ID, SW_PAYLOAD, now, &err));
    NO_MATCH(verify_named(&s, SW_EXPECTED, SW_TIMESTAMP, SW_MSG_ID, "{\"test\": 2432232315}", now,
                          &err));
}

static void
standard_webhooks_multiple_signatures(void)
{
    struct config_signature s =
        make_named(CONFIG_SIG_SCHEME_STANDARD_WEBHOOKS, "standard-webhooks", SW_SECRET, NULL);
    const int64_t now = 1614265330;
    struct error err = {0};

    /* test_multi_sig_payload_is_valid: v2 ignored, the valid one third. */
    CHECK_EQ(verify_named(&s, "v1," SW_OTHER " v2," SW_OTHER " " SW_EXPECTED " v1," SW_OTHER,
                          SW_TIMESTAMP, SW_MSG_ID, SW_PAYLOAD, now, &err),
             0);
    /* An asymmetric v1a entry is not ours to check; a v1 beside it is. */
    CHECK_EQ(
        verify_named(&s, "v1a,AAAA " SW_EXPECTED, SW_TIMESTAMP, SW_MSG_ID, SW_PAYLOAD, now, &err),
        0);
    MALFORMED(
        verify_named(&s, "v1a,AAAA v2," SW_OTHER, SW_TIMESTAMP, SW_MSG_ID, SW_PAYLOAD, now, &err));
}

static void
standard_webhooks_headers_and_secret(void)
{
    struct config_signature s =
        make_named(CONFIG_SIG_SCHEME_STANDARD_WEBHOOKS, "standard-webhooks", SW_SECRET, NULL);
    struct config_signature not_b64 = make_named(CONFIG_SIG_SCHEME_STANDARD_WEBHOOKS,
                                                 "standard-webhooks", "whsec_not*base64", NULL);
    const int64_t now = 1614265330;
    struct error err = {0};
    char out[128];

    /* test_missing_id_raises_error, test_timestamp_raises_error, test_invalid_timestamp... */
    REFUSED(verify_named(&s, SW_EXPECTED, SW_TIMESTAMP, NULL, SW_PAYLOAD, now, &err),
            "missing header webhook-id");
    REFUSED(verify_named(&s, SW_EXPECTED, NULL, SW_MSG_ID, SW_PAYLOAD, now, &err),
            "missing timestamp header webhook-timestamp");
    REFUSED(verify_named(&s, SW_EXPECTED, "hello", SW_MSG_ID, SW_PAYLOAD, now, &err),
            "malformed timestamp in header webhook-timestamp");
    REFUSED(verify_named(&s, NULL, SW_TIMESTAMP, SW_MSG_ID, SW_PAYLOAD, now, &err),
            "missing signature header webhook-signature");
    expect_refused(
        verify_named(&not_b64, SW_EXPECTED, SW_TIMESTAMP, SW_MSG_ID, SW_PAYLOAD, now, &err), &err,
        ERROR_INVALID, "the signature secret is not base64 after its whsec_ prefix", __LINE__);
    CHECK(strstr(err.msg, "not*base64") == NULL);
    CHECK_EQ(sign(&not_b64, SW_TIMESTAMP, SW_MSG_ID, SW_PAYLOAD, out, sizeof(out)), -1);
    CHECK_EQ(sign(&s, SW_TIMESTAMP, NULL, SW_PAYLOAD, out, sizeof(out)), -1);
    CHECK_EQ(sign(&s, NULL, SW_MSG_ID, SW_PAYLOAD, out, sizeof(out)), -1);
}

static void
github_vector(void)
{
    struct config_signature s = make_named(CONFIG_SIG_SCHEME_GITHUB, "github", GITHUB_SECRET, NULL);
    struct config_signature wrong = make_named(CONFIG_SIG_SCHEME_GITHUB, "github", "secret", NULL);
    struct error err = {0};
    char out[128];

    CHECK_EQ(sign(&s, NULL, NULL, GITHUB_PAYLOAD, out, sizeof(out)), 0);
    CHECK_STR_EQ(out, GITHUB_EXPECTED);
    CHECK_EQ(verify_named(&s, GITHUB_EXPECTED, NULL, NULL, GITHUB_PAYLOAD, NOW, &err), 0);
    /* No timestamp: any clock passes. */
    CHECK_EQ(verify_named(&s, GITHUB_EXPECTED, NULL, NULL, GITHUB_PAYLOAD, 0, &err), 0);
    NO_MATCH(verify_named(&wrong, GITHUB_EXPECTED, NULL, NULL, GITHUB_PAYLOAD, NOW, &err));
    NO_MATCH(verify_named(&s, GITHUB_EXPECTED, NULL, NULL, "Hello, World?", NOW, &err));
    MALFORMED(verify_named(&s, &GITHUB_EXPECTED[7], NULL, NULL, GITHUB_PAYLOAD, NOW, &err));
    MALFORMED(verify_named(&s, "sha1=757107ea", NULL, NULL, GITHUB_PAYLOAD, NOW, &err));
}

static void
shopify_vector(void)
{
    struct config_signature s =
        make_named(CONFIG_SIG_SCHEME_SHOPIFY, "shopify", SHOPIFY_SECRET, NULL);
    struct config_signature wrong = make_named(CONFIG_SIG_SCHEME_SHOPIFY, "shopify", "x", NULL);
    struct error err = {0};
    char out[128];

    CHECK_EQ(sign(&s, NULL, NULL, SHOPIFY_PAYLOAD, out, sizeof(out)), 0);
    CHECK_STR_EQ(out, SHOPIFY_EXPECTED);
    CHECK_EQ(verify_named(&s, SHOPIFY_EXPECTED, NULL, NULL, SHOPIFY_PAYLOAD, NOW, &err), 0);
    NO_MATCH(verify_named(&wrong, SHOPIFY_EXPECTED, NULL, NULL, SHOPIFY_PAYLOAD, NOW, &err));
    NO_MATCH(verify_named(&s, SHOPIFY_EXPECTED, NULL, NULL, "{}", NOW, &err));
    MALFORMED(verify_named(&s, "sha256=" SHOPIFY_EXPECTED, NULL, NULL, SHOPIFY_PAYLOAD, NOW, &err));
}

static void
hubspot_v3_vector(void)
{
    struct config_signature s =
        make_named(CONFIG_SIG_SCHEME_HUBSPOT_V3, "hubspot-v3", HUBSPOT_SECRET, NULL);
    struct headers h = {{"X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp"},
                        {HUBSPOT_EXPECTED, HUBSPOT_TIMESTAMP}};
    struct error err = {0};
    char out[128];

    CHECK_EQ(sign(&s, HUBSPOT_TIMESTAMP, NULL, HUBSPOT_PAYLOAD, out, sizeof(out)), 0);
    CHECK_STR_EQ(out, HUBSPOT_EXPECTED);
    CHECK_EQ(verify_with(&s, &h, "POST", HUBSPOT_PAYLOAD, 15000, &err), 0);
    CHECK_EQ(verify_with(&s, &h, NULL, HUBSPOT_PAYLOAD, 15000, &err), 0);
    /* The method and the URL are signed. */
    NO_MATCH(verify_with(&s, &h, "PUT", HUBSPOT_PAYLOAD, 15000, &err));
    s.url = (char *)(uintptr_t) "https://www.example.com/webhook_uri2";
    NO_MATCH(verify_with(&s, &h, "POST", HUBSPOT_PAYLOAD, 15000, &err));
}

static void
hubspot_v3_url_escapes(void)
{
    struct config_signature s =
        make_named(CONFIG_SIG_SCHEME_HUBSPOT_V3, "hubspot-v3", HUBSPOT_SECRET, NULL);
    struct headers h = {{"X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp"},
                        {HUBSPOT_ESCAPED_SIG, "1700000000123"}};
    struct error err = {0};
    char out[128];

    s.url = (char *)(uintptr_t)HUBSPOT_ESCAPED_URL;
    CHECK_EQ(sign(&s, "1700000000123", NULL, "[{\"eventId\":1}]", out, sizeof(out)), 0);
    CHECK_STR_EQ(out, HUBSPOT_ESCAPED_SIG);
    CHECK_EQ(verify_with(&s, &h, "POST", "[{\"eventId\":1}]", NOW, &err), 0);
    /* The decoded form is the same URI. */
    s.url = (char *)(uintptr_t) "https://hooks.example.com/crm?x=a:b/c%20d%7E";
    CHECK_EQ(verify_with(&s, &h, "POST", "[{\"eventId\":1}]", NOW, &err), 0);
    /* %20 and %7E stay encoded: decoding them changes the URI. */
    s.url = (char *)(uintptr_t) "https://hooks.example.com/crm?x=a:b/c d~";
    NO_MATCH(verify_with(&s, &h, "POST", "[{\"eventId\":1}]", NOW, &err));
    /* A "%" at the very end, or before non-hex, is copied as it is. */
    s.url = (char *)(uintptr_t) "https://h/%";
    CHECK_EQ(sign(&s, "1", NULL, "", out, sizeof(out)), 0);
    s.url = (char *)(uintptr_t) "https://h/%3";
    CHECK_EQ(sign(&s, "1", NULL, "", out, sizeof(out)), 0);
    s.url = NULL;
    CHECK_EQ(sign(&s, "1", NULL, "", out, sizeof(out)), -1);
    expect_refused(verify_with(&s, &h, "POST", "", NOW, &err), &err, ERROR_INTERNAL,
                   "hubspot-v3 signature without a url", __LINE__);
}

static void
hubspot_v3_window_is_in_milliseconds(void)
{
    struct config_signature s =
        make_named(CONFIG_SIG_SCHEME_HUBSPOT_V3, "hubspot-v3", HUBSPOT_SECRET, NULL);
    struct error err = {0};
    char out[128];

    CHECK_EQ(sign(&s, "1700000000000", NULL, body, out, sizeof(out)), 0);
    CHECK_EQ(verify_named(&s, out, "1700000000000", NULL, body, NOW + 299, &err), 0);
    /* "now - timestamp >= 300 s" is refused (signature.py), so exactly 300 s is out. */
    OUT_OF_WINDOW(verify_named(&s, out, "1700000000000", NULL, body, NOW + 300, &err));
    OUT_OF_WINDOW(verify_named(&s, out, "1700000000000", NULL, body, NOW - 300, &err));
    /* Seconds where milliseconds belong are 1970: far out of the window. */
    OUT_OF_WINDOW(verify_named(&s, out, "1700000000", NULL, body, NOW, &err));
    REFUSED(verify_named(&s, out, NULL, NULL, body, NOW, &err),
            "missing timestamp header X-HubSpot-Request-Timestamp");
}

/* ---- Every named scheme: the same properties ---- */

static const struct {
    enum config_sig_scheme kind;
    const char *name;
    const char *ts; /* what the sender puts in its timestamp (NULL: none) */
} schemes[] = {
    {CONFIG_SIG_SCHEME_HMAC, "hmac", NULL},
    {CONFIG_SIG_SCHEME_STRIPE, "stripe", "1700000000"},
    {CONFIG_SIG_SCHEME_STANDARD_WEBHOOKS, "standard-webhooks", "1700000000"},
    {CONFIG_SIG_SCHEME_GITHUB, "github", NULL},
    {CONFIG_SIG_SCHEME_SHOPIFY, "shopify", NULL},
    {CONFIG_SIG_SCHEME_HUBSPOT_V3, "hubspot-v3", "1700000000000"},
};

/* Secrets that suit every scheme (standard-webhooks needs base64). */
#define KEY_NEW   "whsec_bmV3LXNlY3JldC1mb3ItY29uY29yZA=="
#define KEY_OLD   "whsec_b2xkLXNlY3JldC1mb3ItY29uY29yZA=="
#define KEY_THIRD "whsec_dGhpcmQtc2VjcmV0LWZvci1jb25jb3Jk"

/* A config for scheme i; the hmac one reads X-Signature. */
static struct config_signature
scheme_sig(size_t i, const char *key, const char *old)
{
    struct config_signature s = make_named(schemes[i].kind, schemes[i].name, key, old);

    if (schemes[i].kind == CONFIG_SIG_SCHEME_HMAC) {
        s.header = (char *)(uintptr_t) "X-Signature";
        s.encoding = CONFIG_SIG_HEX;
    }
    return s;
}

/* Sign with key alone, check with the scheme's config s. */
static int
cross(size_t i, const char *key, const struct config_signature *s, const char *b, int64_t now,
      struct error *err)
{
    struct config_signature signer = scheme_sig(i, key, NULL);
    char out[160];

    if (sign(&signer, schemes[i].ts, "msg_1", b, out, sizeof(out)) != 0)
        check_fail(__FILE__, __LINE__, "%s: sign failed", schemes[i].name);
    return verify_named(s, out, schemes[i].ts, "msg_1", b, now, err);
}

static void
rotation_accepts_old_and_new(void)
{
    struct error err = {0};

    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        struct config_signature both = scheme_sig(i, KEY_NEW, KEY_OLD);
        struct config_signature one = scheme_sig(i, KEY_NEW, NULL);

        if (cross(i, KEY_NEW, &both, body, NOW, &err) != 0)
            check_fail(__FILE__, __LINE__, "%s: new secret refused: %s", schemes[i].name, err.msg);
        if (cross(i, KEY_OLD, &both, body, NOW, &err) != 0)
            check_fail(__FILE__, __LINE__, "%s: old secret refused: %s", schemes[i].name, err.msg);
        NO_MATCH(cross(i, KEY_THIRD, &both, body, NOW, &err));
        NO_MATCH(cross(i, KEY_OLD, &one, body, NOW, &err));
        /* Signing uses the first secret. */
        if (cross(i, KEY_NEW, &one, body, NOW, &err) != 0)
            check_fail(__FILE__, __LINE__, "%s: refused: %s", schemes[i].name, err.msg);
    }
}

static void
every_scheme_refuses_wrong_secret_and_tampered_body(void)
{
    struct error err = {0};

    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        struct config_signature s = scheme_sig(i, KEY_NEW, NULL);

        NO_MATCH(cross(i, KEY_OLD, &s, body, NOW, &err));
        CHECK(strstr(err.msg, "whsec") == NULL);
        {
            struct config_signature signer = scheme_sig(i, KEY_NEW, NULL);
            char out[160];

            CHECK_EQ(sign(&signer, schemes[i].ts, "msg_1", body, out, sizeof(out)), 0);
            NO_MATCH(verify_named(&s, out, schemes[i].ts, "msg_1", "{\"a\":2}", NOW, &err));
            NO_MATCH(verify_named(&s, out, schemes[i].ts, "msg_1", "", NOW, &err));
        }
    }
}

static void
every_timed_scheme_refuses_stale_and_future(void)
{
    struct error err = {0};

    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        struct config_signature s = scheme_sig(i, KEY_NEW, NULL);

        if (schemes[i].ts == NULL)
            continue;
        CHECK_EQ(cross(i, KEY_NEW, &s, body, NOW + 299, &err), 0);
        CHECK_EQ(cross(i, KEY_NEW, &s, body, NOW - 299, &err), 0);
        OUT_OF_WINDOW(cross(i, KEY_NEW, &s, body, NOW + 301, &err)); /* stale */
        OUT_OF_WINDOW(cross(i, KEY_NEW, &s, body, NOW - 301, &err)); /* from the future */
        s.tolerance_s = 600;
        CHECK_EQ(cross(i, KEY_NEW, &s, body, NOW + 599, &err), 0);
    }
}

static void
malformed_named_headers_are_rejected(void)
{
    static const struct {
        enum config_sig_scheme kind;
        const char *value;
    } bad[] = {
        {CONFIG_SIG_SCHEME_STRIPE, ""},
        {CONFIG_SIG_SCHEME_STRIPE, "bad_header"},
        {CONFIG_SIG_SCHEME_STRIPE, "i'm not even a real signature header"},
        {CONFIG_SIG_SCHEME_STRIPE, "v1=" STRIPE_V1},                           /* no t */
        {CONFIG_SIG_SCHEME_STRIPE, "t=1700000000"},                            /* no v1 */
        {CONFIG_SIG_SCHEME_STRIPE, "t=1700000000,t=1700000000,v1=" STRIPE_V1}, /* two t */
        {CONFIG_SIG_SCHEME_STRIPE, "t=,v1=" STRIPE_V1},
        {CONFIG_SIG_SCHEME_STRIPE, "t=1234567890123456789,v1=" STRIPE_V1},
        {CONFIG_SIG_SCHEME_STRIPE, ",,,,"},
        {CONFIG_SIG_SCHEME_STANDARD_WEBHOOKS, ""},
        {CONFIG_SIG_SCHEME_STANDARD_WEBHOOKS, "   "},
        {CONFIG_SIG_SCHEME_STANDARD_WEBHOOKS, "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="},
        {CONFIG_SIG_SCHEME_STANDARD_WEBHOOKS, "v2,abc v1a,abc"},
        {CONFIG_SIG_SCHEME_GITHUB, ""},
        {CONFIG_SIG_SCHEME_GITHUB, "sha256="},
        {CONFIG_SIG_SCHEME_GITHUB, "sha256=xyz"},
        {CONFIG_SIG_SCHEME_SHOPIFY, ""},
        {CONFIG_SIG_SCHEME_SHOPIFY, "a*cd"},
        {CONFIG_SIG_SCHEME_HUBSPOT_V3, ""},
        {CONFIG_SIG_SCHEME_HUBSPOT_V3, "not base64!"},
    };
    struct error err = {0};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct config_signature s = make_named(bad[i].kind, "named", KEY_NEW, NULL);
        const char *ts =
            bad[i].kind == CONFIG_SIG_SCHEME_HUBSPOT_V3 ? "1700000000000" : "1700000000";
        int rc = verify_named(&s, bad[i].value, ts, "msg_1", STRIPE_PAYLOAD, NOW, &err);

        if (rc != -1 || err.kind != ERROR_AUTH || strcmp(err.msg, "malformed signature") != 0)
            check_fail(__FILE__, __LINE__, "case %zu \"%s\": rc %d, %s", i, bad[i].value, rc,
                       err.msg);
    }
    /* Too many v1 entries is malformed, not a longer loop. */
    {
        struct config_signature s = make_named(CONFIG_SIG_SCHEME_STRIPE, "stripe", KEY_NEW, NULL);
        char many[4200] = "t=1700000000";

        for (int i = 0; i < 17; i++)
            (void)strncat(many, ",v1=00", sizeof(many) - strlen(many) - 1);
        MALFORMED(verify_named(&s, many, NULL, NULL, body, NOW, &err));
        memset(many, ' ', sizeof(many) - 1);
        many[sizeof(many) - 1] = '\0';
        MALFORMED(verify_named(&s, many, NULL, NULL, body, NOW, &err));
    }
}

static void
header_names_per_scheme(void)
{
    struct http_sig_headers h;
    struct config_signature s = make_sig("k", CONFIG_SIG_HEX, NULL, 1);

    http_sig_headers(&s, &h);
    CHECK_STR_EQ(h.signature, "X-Signature");
    CHECK_STR_EQ(h.timestamp, "X-Timestamp");
    CHECK(h.id == NULL);
    s = make_named(CONFIG_SIG_SCHEME_STANDARD_WEBHOOKS, "standard-webhooks", KEY_NEW, NULL);
    http_sig_headers(&s, &h);
    CHECK_STR_EQ(h.signature, "webhook-signature");
    CHECK_STR_EQ(h.timestamp, "webhook-timestamp");
    CHECK_STR_EQ(h.id, "webhook-id");
    s = make_named(CONFIG_SIG_SCHEME_HUBSPOT_V3, "hubspot-v3", KEY_NEW, NULL);
    http_sig_headers(&s, &h);
    CHECK_STR_EQ(h.signature, "X-HubSpot-Signature-v3");
    CHECK_STR_EQ(h.timestamp, "X-HubSpot-Request-Timestamp");
    s = make_named(CONFIG_SIG_SCHEME_STRIPE, "stripe", KEY_NEW, NULL);
    http_sig_headers(&s, &h);
    CHECK_STR_EQ(h.signature, "Stripe-Signature");
    CHECK(h.timestamp == NULL);
    s = make_named(CONFIG_SIG_SCHEME_GITHUB, "github", KEY_NEW, NULL);
    http_sig_headers(&s, &h);
    CHECK_STR_EQ(h.signature, "X-Hub-Signature-256");
    s = make_named(CONFIG_SIG_SCHEME_SHOPIFY, "shopify", KEY_NEW, NULL);
    http_sig_headers(&s, &h);
    CHECK_STR_EQ(h.signature, "X-Shopify-Hmac-Sha256");
}

static void
unknown_scheme_is_internal(void)
{
    struct config_signature s = make_sig("k", CONFIG_SIG_HEX, NULL, 0);
    struct error err = {0};
    char out[128];

    s.scheme = (char *)(uintptr_t) "rot13";
    expect_refused(verify(&s, VECTOR_EMPTY, NULL, body, NOW, &err), &err, ERROR_INTERNAL,
                   "unsupported signature scheme rot13", __LINE__);
    CHECK_EQ(sign(&s, NULL, NULL, body, out, sizeof(out)), -1);
    /* A secret never loaded (CONFIG_LOAD_NO_SECRETS) is not the empty key. */
    s = make_sig("", CONFIG_SIG_HEX, NULL, 0);
    s.secret.value = NULL;
    expect_refused(verify(&s, VECTOR_EMPTY, NULL, "", NOW, &err), &err, ERROR_INTERNAL,
                   "no signature secret loaded", __LINE__);
    CHECK_EQ(sign(&s, NULL, NULL, "", out, sizeof(out)), -1);
}

/* ---- From the config loader ---- */

static const struct config_signature *
loaded_sig(const struct config *cfg, const char *system)
{
    const struct config_system *sys = config_system_find(cfg, system);

    CHECK(sys != NULL);
    CHECK_EQ(sys->webhook.has_signature, 1);
    return &sys->webhook.signature;
}

static void
config_rotation_and_url_reach_the_check(void)
{
    static const char yaml[] =
        "systems:\n"
        "  pay:\n"
        "    kind: http\n"
        "    base_url: http://127.0.0.1:9001\n"
        "    webhook:\n"
        "      signature: {scheme: stripe, secret: [env:SIG_TEST_NEW, env:SIG_TEST_OLD]}\n"
        "  crm:\n"
        "    kind: http\n"
        "    base_url: http://127.0.0.1:9002\n"
        "    webhook:\n"
        "      signature:\n"
        "        scheme: hubspot-v3\n"
        "        secret: env:SIG_TEST_NEW\n"
        "        url: " HUBSPOT_URL "\n"
        "        tolerance_s: 60\n"
        "models: {}\n";
    const struct config_signature *pay, *crm;
    struct config *cfg = NULL;
    struct error err = {0};
    char out[160];

    CHECK_EQ(setenv("SIG_TEST_NEW", KEY_NEW, 1), 0);
    CHECK_EQ(setenv("SIG_TEST_OLD", KEY_OLD, 1), 0);
    if (config_parse(yaml, sizeof(yaml) - 1, "sig.yaml", &cfg, &err) != 0)
        check_fail(__FILE__, __LINE__, "config refused: %s", err.msg);
    pay = loaded_sig(cfg, "pay");
    CHECK_EQ(pay->scheme_kind, CONFIG_SIG_SCHEME_STRIPE);
    CHECK_STR_EQ(pay->scheme, "stripe");
    CHECK_EQ(pay->secret_count, 2);
    CHECK_EQ(pay->tolerance_s, 300);
    CHECK(pay->header == NULL);
    CHECK(pay->url == NULL);
    /* schemes[1] is stripe. */
    CHECK_EQ(cross(1, KEY_NEW, pay, body, NOW, &err), 0);
    CHECK_EQ(cross(1, KEY_OLD, pay, body, NOW, &err), 0);
    NO_MATCH(cross(1, KEY_THIRD, pay, body, NOW, &err));

    crm = loaded_sig(cfg, "crm");
    CHECK_EQ(crm->scheme_kind, CONFIG_SIG_SCHEME_HUBSPOT_V3);
    CHECK_EQ(crm->secret_count, 1);
    CHECK_EQ(crm->tolerance_s, 60);
    CHECK_STR_EQ(crm->url, HUBSPOT_URL);
    CHECK_EQ(sign(crm, "1700000000000", NULL, body, out, sizeof(out)), 0);
    CHECK_EQ(verify_named(crm, out, "1700000000000", NULL, body, NOW + 59, &err), 0);
    REFUSED(verify_named(crm, out, "1700000000000", NULL, body, NOW + 60, &err),
            "timestamp outside the 60 s window");
    config_free(cfg);
}

/* A second thread's key, verified while the first thread verifies with its own. */
static void *
verify_github_many(void *arg)
{
    struct config_signature s = make_named(CONFIG_SIG_SCHEME_GITHUB, "github", GITHUB_SECRET, NULL);
    struct error err = {0};
    int *passed = arg;

    for (int i = 0; i < 200; i++)
        *passed += verify_named(&s, GITHUB_EXPECTED, NULL, NULL, GITHUB_PAYLOAD, NOW, &err) == 0;
    return NULL;
}

/* Each thread keeps one HMAC context keyed with the key it used last
 * (http_sig.c): a key that changes from one request to the next, back and
 * forth, and another thread with another key, each get their own key's MAC. */
static void
keys_alternate_in_one_thread_and_across_threads(void)
{
    struct config_signature good = make_sig("secret", CONFIG_SIG_HEX, NULL, 1);
    struct config_signature wrong = make_sig("secreT", CONFIG_SIG_HEX, NULL, 1);
    struct config_signature empty = make_sig("", CONFIG_SIG_HEX, NULL, 1);
    struct error err = {0};
    pthread_t t;
    int other = 0, mine = 0;

    for (int i = 0; i < 3; i++) {
        CHECK_EQ(verify(&good, VECTOR_TS_HEX, "1700000000", body, NOW, &err), 0);
        NO_MATCH(verify(&wrong, VECTOR_TS_HEX, "1700000000", body, NOW, &err));
        NO_MATCH(verify(&empty, VECTOR_TS_HEX, "1700000000", body, NOW, &err));
    }
    CHECK_EQ(pthread_create(&t, NULL, verify_github_many, &other), 0);
    for (int i = 0; i < 200; i++)
        mine += verify(&good, VECTOR_TS_HEX, "1700000000", body, NOW, &err) == 0;
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(mine, 200);
    CHECK_EQ(other, 200);
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
    CHECK_CASE(stripe_vector),
    CHECK_CASE(stripe_multiple_v1_and_v0),
    CHECK_CASE(standard_webhooks_vector),
    CHECK_CASE(standard_webhooks_multiple_signatures),
    CHECK_CASE(standard_webhooks_headers_and_secret),
    CHECK_CASE(github_vector),
    CHECK_CASE(shopify_vector),
    CHECK_CASE(hubspot_v3_vector),
    CHECK_CASE(hubspot_v3_url_escapes),
    CHECK_CASE(hubspot_v3_window_is_in_milliseconds),
    CHECK_CASE(rotation_accepts_old_and_new),
    CHECK_CASE(every_scheme_refuses_wrong_secret_and_tampered_body),
    CHECK_CASE(every_timed_scheme_refuses_stale_and_future),
    CHECK_CASE(malformed_named_headers_are_rejected),
    CHECK_CASE(header_names_per_scheme),
    CHECK_CASE(unknown_scheme_is_internal),
    CHECK_CASE(config_rotation_and_url_reach_the_check),
    CHECK_CASE(keys_alternate_in_one_thread_and_across_threads),
    {0},
};
