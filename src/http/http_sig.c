/* SPDX-License-Identifier: MIT */

/*
 * The webhook signature schemes of http_sig.h.
 *
 * Every scheme comes down to the same steps: find the headers, check the
 * timestamp window, decode the offered signature(s) to bytes, compute
 * HMAC-SHA256 with each configured secret over the scheme's signed bytes,
 * and compare. The signed bytes are never assembled in memory: they are fed
 * to the MAC piece by piece (the hmac template with its placeholders
 * replaced, HubSpot's URL with its escapes decoded), so a large body costs
 * no allocation and no size arithmetic that could overflow. Offered
 * signatures are decoded to bytes and compared with CRYPTO_memcmp() over
 * the full digest length whatever their own length was, so the time taken
 * says nothing about how much of one was right.
 *
 * Sources for each scheme's rules (../shared/apis/EXTERNAL-APIS.md):
 *   stripe: §5.4 [V] stripe-python stripe/_webhook.py
 *   standard-webhooks: the spec, standard-webhooks/standard-webhooks
 *     spec/standard-webhooks.md and libraries/python/standardwebhooks/webhooks.py
 *   github: docs.github.com "Validating webhook deliveries"
 *   shopify: shopify.dev/docs/apps/build/webhooks/verify-deliveries
 *   hubspot-v3: §6.5 [V] hubspot-api-python hubspot/utils/signature.py; the
 *     URL decoding is §6.5 [K] (see mac_add_hubspot_uri)
 */

#include "http/http_sig.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "core/error.h"
#include "core/secret.h"
#include "core/xmalloc.h"

#define SIG_DIGEST_LEN     32              /* SHA-256 */
#define SIG_MAX_ENCODED    256             /* longer signature values are malformed, not decoded */
#define SIG_MAX_DECODED    SIG_MAX_ENCODED /* hex or base64 decode to fewer bytes */
#define SIG_TS_DIGITS      18              /* fits int64_t with room to spare */
#define SIG_MAX_HEADER     4096 /* longer list headers (stripe, standard) are malformed */
#define SIG_MAX_CANDIDATES 16   /* more v1 entries than this: malformed */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char hex_digits[] = "0123456789abcdef";

/* The fixed header names of the named schemes, by enum config_sig_scheme. */
static const struct http_sig_headers scheme_headers[] = {
    [CONFIG_SIG_SCHEME_STRIPE] = {"Stripe-Signature", NULL, NULL},
    [CONFIG_SIG_SCHEME_STANDARD_WEBHOOKS] = {"webhook-signature", "webhook-timestamp",
                                             "webhook-id"},
    [CONFIG_SIG_SCHEME_GITHUB] = {"X-Hub-Signature-256", NULL, NULL},
    [CONFIG_SIG_SCHEME_SHOPIFY] = {"X-Shopify-Hmac-Sha256", NULL, NULL},
    [CONFIG_SIG_SCHEME_HUBSPOT_V3] = {"X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp",
                                      NULL},
};

/*
 * The scheme sig asks for, or 0 if unknown. A struct filled by hand may
 * leave scheme_kind 0: then the name decides, and no name means hmac.
 */
static enum config_sig_scheme
scheme_of(const struct config_signature *sig)
{
    if (sig->scheme_kind >= CONFIG_SIG_SCHEME_HMAC &&
        sig->scheme_kind <= CONFIG_SIG_SCHEME_HUBSPOT_V3)
        return sig->scheme_kind;
    if (sig->scheme_kind == 0 && (sig->scheme == NULL || strcmp(sig->scheme, "hmac") == 0))
        return CONFIG_SIG_SCHEME_HMAC;
    return 0;
}

void
http_sig_headers(const struct config_signature *sig, struct http_sig_headers *out)
{
    enum config_sig_scheme kind = scheme_of(sig);

    memset(out, 0, sizeof(*out));
    if (kind == CONFIG_SIG_SCHEME_HMAC) {
        out->signature = sig->header;
        out->timestamp = sig->timestamp_header;
    } else if (kind != 0) {
        *out = scheme_headers[kind];
    }
}

/* ---- HMAC-SHA256, fed piece by piece ---- */

/*
 * Each thread keeps one HMAC-SHA256 context, keyed with the key it used
 * last. A context made per request (EVP_MAC_fetch(), a digest fetched by
 * EVP_MAC_init(), the key's pads) cost about as much as the MAC of a
 * 1 KiB body; with one secret per system, a request now only restarts the
 * context. The copy of the key is wiped when it is replaced or the thread
 * ends, and the context (which holds the key's pads) freed. Webhooks are
 * checked on the HTTP server's threads, which a reload ends (the daemon
 * starts its servers again with the new config): a secret rotated out
 * leaves with them.
 */
struct mac_cache {
    EVP_MAC_CTX *ctx;
    unsigned char *key;
    size_t key_len;
};

static pthread_once_t mac_once = PTHREAD_ONCE_INIT;
static pthread_key_t mac_tls;
static int mac_tls_ok;
static EVP_MAC *mac_alg; /* fetched once, for the life of the process */

static void
mac_cache_forget_key(struct mac_cache *c)
{
    if (c->key != NULL)
        OPENSSL_cleanse(c->key, c->key_len);
    free(c->key);
    c->key = NULL;
    c->key_len = 0;
}

static void
mac_cache_free(void *p)
{
    struct mac_cache *c = p;

    EVP_MAC_CTX_free(c->ctx);
    mac_cache_forget_key(c);
    free(c);
}

static void
mac_init_once(void)
{
    mac_tls_ok = pthread_key_create(&mac_tls, mac_cache_free) == 0;
    mac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

/* This thread's cache, or NULL if there can be none. */
static struct mac_cache *
mac_cache_get(void)
{
    struct mac_cache *c;

    (void)pthread_once(&mac_once, mac_init_once);
    if (!mac_tls_ok || mac_alg == NULL)
        return NULL;
    c = pthread_getspecific(mac_tls);
    if (c == NULL) {
        c = xcalloc(1, sizeof(*c));
        if (pthread_setspecific(mac_tls, c) != 0) {
            free(c);
            return NULL;
        }
    }
    return c;
}

struct mac {
    EVP_MAC_CTX *ctx; /* the thread's (struct mac_cache) */
};

/* Start a MAC keyed by key. Returns 0, or -1 if OpenSSL fails. */
static int
mac_begin(struct mac *m, const unsigned char *key, size_t key_len)
{
    char digest_name[] = "SHA256";
    OSSL_PARAM params[2];
    /* A non-NULL key, even of length 0: NULL would mean "keep the old key". */
    static const unsigned char no_key[1] = {0};
    struct mac_cache *c = mac_cache_get();
    int same;

    m->ctx = NULL;
    if (c == NULL)
        return -1;
    if (c->ctx == NULL) {
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0);
        params[1] = OSSL_PARAM_construct_end();
        c->ctx = EVP_MAC_CTX_new(mac_alg);
        if (c->ctx == NULL || EVP_MAC_CTX_set_params(c->ctx, params) != 1)
            goto fail;
        mac_cache_forget_key(c);
    }
    same = c->key != NULL && c->key_len == key_len &&
           (key_len == 0 || memcmp(c->key, key, key_len) == 0);
    /* The same key: NULL restarts the context with it. */
    if (EVP_MAC_init(c->ctx,
                     same          ? NULL
                     : key != NULL ? key
                                   : no_key,
                     same ? 0 : key_len, NULL) != 1)
        goto fail;
    if (!same) {
        mac_cache_forget_key(c);
        c->key = xmalloc(key_len > 0 ? key_len : 1);
        if (key_len > 0)
            memcpy(c->key, key, key_len);
        c->key_len = key_len;
    }
    m->ctx = c->ctx;
    return 0;
fail:
    /* Start afresh next time. */
    EVP_MAC_CTX_free(c->ctx);
    c->ctx = NULL;
    mac_cache_forget_key(c);
    return -1;
}

static int
mac_add(struct mac *m, const char *p, size_t len)
{
    return len == 0 || EVP_MAC_update(m->ctx, (const unsigned char *)p, len) == 1 ? 0 : -1;
}

static int
mac_add_str(struct mac *m, const char *s)
{
    return mac_add(m, s, strlen(s));
}

/* Finish into out. Returns 0, or -1 if OpenSSL fails. */
static int
mac_end(struct mac *m, unsigned char out[SIG_DIGEST_LEN])
{
    size_t out_len = 0;

    return EVP_MAC_final(m->ctx, out, &out_len, SIG_DIGEST_LEN) == 1 && out_len == SIG_DIGEST_LEN
               ? 0
               : -1;
}

/* The hmac template with "{timestamp}" and "{body}" replaced. A NULL timestamp stands for "". */
static int
mac_add_template(struct mac *m, const char *tpl, const struct http_sig_message *msg)
{
    static const char ts_tag[] = "{timestamp}", body_tag[] = "{body}";
    const char *ts = msg->timestamp != NULL ? msg->timestamp : "";

    while (*tpl != '\0') {
        const char *ts_at = strstr(tpl, ts_tag);
        const char *body_at = strstr(tpl, body_tag);
        const char *next = ts_at;

        if (next == NULL || (body_at != NULL && body_at < next))
            next = body_at;
        if (next == NULL)
            return mac_add_str(m, tpl);
        if (mac_add(m, tpl, (size_t)(next - tpl)) == -1)
            return -1;
        if (next == ts_at) {
            if (mac_add_str(m, ts) == -1)
                return -1;
            tpl = next + sizeof(ts_tag) - 1;
        } else {
            if (mac_add(m, msg->body, msg->body_len) == -1)
                return -1;
            tpl = next + sizeof(body_tag) - 1;
        }
    }
    return 0;
}

static int
hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * HubSpot's URI: the URL as called, with these escapes decoded first
 * (either case of hex digit): %3A : %2F / %3F ? %40 @ %21 ! %24 $ %27 '
 * %28 ( %29 ) %2A * %2C , %3B ;. EXTERNAL-APIS.md §6.5 says only that
 * "certain percent-encoded characters" are decoded, tagged [K] (not
 * re-verified); the list is the one HubSpot's "Validating requests" page
 * gives (developers.hubspot.com/docs/api/webhooks/validating-requests), as
 * independent implementations reproduce it. HubSpot's own Python SDK
 * (signature.py) decodes nothing, which is the same for a URL without
 * escapes. Other escapes stay as they are.
 */
static int
mac_add_hubspot_uri(struct mac *m, const char *url)
{
    static const char decoded[] = ":/?@!$'()*,;";
    const char *run = url, *p = url;

    for (; *p != '\0'; p++) {
        int hi, lo;
        char ch;

        if (*p != '%' || (hi = hex_value(p[1])) < 0 || (lo = hex_value(p[2])) < 0)
            continue;
        ch = (char)(hi << 4 | lo);
        if (ch == '\0' || strchr(decoded, ch) == NULL)
            continue;
        if (mac_add(m, run, (size_t)(p - run)) == -1 || mac_add(m, &ch, 1) == -1)
            return -1;
        p += 2;
        run = p + 1;
    }
    return mac_add(m, run, (size_t)(p - run));
}

/*
 * The MAC of msg under key as kind signs it. The caller has checked that
 * the values kind needs are there. Returns 0, or -1 if OpenSSL fails.
 */
static int
compute_mac(const struct config_signature *sig, enum config_sig_scheme kind,
            const unsigned char *key, size_t key_len, const struct http_sig_message *msg,
            unsigned char out[SIG_DIGEST_LEN])
{
    struct mac m;
    int failed = 1;

    if (mac_begin(&m, key, key_len) == -1)
        return -1;
    /* || keeps the pieces in order: the operands of | are unsequenced. */
    switch (kind) {
    case CONFIG_SIG_SCHEME_HMAC:
        failed = mac_add_template(
                     &m, sig->signed_template != NULL ? sig->signed_template : "{body}", msg) == -1;
        break;
    case CONFIG_SIG_SCHEME_STRIPE: /* "t.body" */
        failed = mac_add_str(&m, msg->timestamp) == -1 || mac_add(&m, ".", 1) == -1 ||
                 mac_add(&m, msg->body, msg->body_len) == -1;
        break;
    case CONFIG_SIG_SCHEME_STANDARD_WEBHOOKS: /* "id.timestamp.body" */
        failed = mac_add_str(&m, msg->id) == -1 || mac_add(&m, ".", 1) == -1 ||
                 mac_add_str(&m, msg->timestamp) == -1 || mac_add(&m, ".", 1) == -1 ||
                 mac_add(&m, msg->body, msg->body_len) == -1;
        break;
    case CONFIG_SIG_SCHEME_GITHUB:
    case CONFIG_SIG_SCHEME_SHOPIFY:
        failed = mac_add(&m, msg->body, msg->body_len) == -1;
        break;
    case CONFIG_SIG_SCHEME_HUBSPOT_V3: /* method + uri + body + timestamp */
        failed = mac_add_str(&m, msg->method != NULL ? msg->method : "POST") == -1 ||
                 mac_add_hubspot_uri(&m, sig->url) == -1 ||
                 mac_add(&m, msg->body, msg->body_len) == -1 ||
                 mac_add_str(&m, msg->timestamp) == -1;
        break;
    }
    if (mac_end(&m, out) == -1)
        failed = 1;
    return failed ? -1 : 0;
}

/* ---- Decoding ---- */

static int
hex_decode(const char *s, size_t len, unsigned char *out, size_t *out_len)
{
    if (len % 2 != 0)
        return -1;
    for (size_t i = 0; i < len; i += 2) {
        int hi = hex_value(s[i]), lo = hex_value(s[i + 1]);

        if (hi < 0 || lo < 0)
            return -1;
        out[i / 2] = (unsigned char)(hi << 4 | lo);
    }
    *out_len = len / 2;
    return 0;
}

static int
b64_value(char c)
{
    const char *p = c != '\0' ? strchr(b64_alphabet, c) : NULL;

    return p != NULL ? (int)(p - b64_alphabet) : -1;
}

/*
 * Standard base64; the "=" padding may be left off but not misplaced. out
 * holds at least len * 3 / 4 bytes.
 */
static int
b64_decode(const char *s, size_t len, unsigned char *out, size_t *out_len)
{
    size_t pad = 0, n = 0;
    unsigned long acc = 0;
    int bits = 0;

    while (pad < 2 && len > 0 && s[len - 1] == '=') {
        len--;
        pad++;
    }
    if (pad > 0 && (len + pad) % 4 != 0)
        return -1;
    if (len % 4 == 1)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(s[i]);

        if (v < 0)
            return -1;
        acc = (acc << 6 | (unsigned long)v) & 0xffffffUL;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    *out_len = n;
    return 0;
}

static int
is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* [*s, *end) without blanks at either end. */
static void
trim(const char **s, const char **end)
{
    while (*s < *end && is_space(**s))
        (*s)++;
    while (*end > *s && is_space((*end)[-1]))
        (*end)--;
}

/* The offered signatures, decoded; a wrong length never matches. */
struct candidates {
    unsigned char digest[SIG_MAX_CANDIDATES][SIG_DIGEST_LEN]; /* zero-filled past the length */
    unsigned char is_digest_len[SIG_MAX_CANDIDATES];
    size_t count;
};

/* Decode [s, s+len) as one more candidate. Returns 0, or -1 if it does not decode or fit. */
static int
add_candidate(struct candidates *c, const char *s, size_t len, enum config_sig_encoding enc)
{
    unsigned char buf[SIG_MAX_DECODED];
    size_t n = 0;

    if (c->count == SIG_MAX_CANDIDATES || len == 0 || len > SIG_MAX_ENCODED)
        return -1;
    if ((enc == CONFIG_SIG_BASE64 ? b64_decode(s, len, buf, &n) : hex_decode(s, len, buf, &n)) ==
        -1)
        return -1;
    memset(c->digest[c->count], 0, SIG_DIGEST_LEN);
    memcpy(c->digest[c->count], buf, n < SIG_DIGEST_LEN ? n : SIG_DIGEST_LEN);
    c->is_digest_len[c->count] = n == SIG_DIGEST_LEN;
    c->count++;
    return 0;
}

/* A header holding one signature: blanks around it, then prefix, then the encoding. */
static int
parse_single(const char *value, const char *prefix, enum config_sig_encoding enc,
             struct candidates *c)
{
    const char *end = value + strlen(value);
    size_t prefix_len = prefix != NULL ? strlen(prefix) : 0;

    trim(&value, &end);
    if ((size_t)(end - value) < prefix_len ||
        (prefix_len > 0 && memcmp(value, prefix, prefix_len) != 0))
        return -1;
    value += prefix_len;
    return add_candidate(c, value, (size_t)(end - value), enc);
}

/*
 * Stripe-Signature: "t=TS,v1=HEX,v1=HEX,v0=..." split on "," then on the
 * first "=" (stripe-python). Only v1 counts; a v1 value that does not
 * decode simply matches nothing, as stripe-python compares strings. Other
 * keys and items without "=" are ignored. Returns 0 with the timestamp in
 * ts, or -1 if there is no t (or two), no v1, or too many.
 */
static int
parse_stripe(const char *value, char ts[SIG_TS_DIGITS + 2], struct candidates *c)
{
    size_t v1_count = 0;
    int has_ts = 0;

    if (strlen(value) > SIG_MAX_HEADER)
        return -1;
    for (const char *p = value;; p++) {
        const char *end = strchr(p, ',');
        const char *item_end = end != NULL ? end : p + strlen(p);
        const char *eq;

        trim(&p, &item_end);
        eq = memchr(p, '=', (size_t)(item_end - p));
        if (eq != NULL) {
            size_t key_len = (size_t)(eq - p), val_len = (size_t)(item_end - eq - 1);

            if (key_len == 1 && p[0] == 't') {
                if (has_ts || val_len == 0 || val_len > SIG_TS_DIGITS)
                    return -1;
                memcpy(ts, eq + 1, val_len);
                ts[val_len] = '\0';
                has_ts = 1;
            } else if (key_len == 2 && memcmp(p, "v1", 2) == 0) {
                if (++v1_count > SIG_MAX_CANDIDATES)
                    return -1;
                (void)add_candidate(c, eq + 1, val_len, CONFIG_SIG_HEX);
            }
        }
        if (end == NULL)
            break;
        p = end;
    }
    return has_ts && v1_count > 0 ? 0 : -1;
}

/*
 * webhook-signature: space-separated "VERSION,SIGNATURE" entries. Only v1
 * (base64 HMAC-SHA256) counts; v1a and others are ignored, as are entries
 * without ",". Returns 0, or -1 if there is no v1 entry or too many.
 */
static int
parse_standard(const char *value, struct candidates *c)
{
    size_t v1_count = 0;
    const char *p = value;

    if (strlen(value) > SIG_MAX_HEADER)
        return -1;
    while (*p != '\0') {
        const char *end = p, *comma;

        while (*end != '\0' && !is_space(*end))
            end++;
        comma = memchr(p, ',', (size_t)(end - p));
        if (comma != NULL && comma - p == 2 && memcmp(p, "v1", 2) == 0) {
            if (++v1_count > SIG_MAX_CANDIDATES)
                return -1;
            (void)add_candidate(c, comma + 1, (size_t)(end - comma - 1), CONFIG_SIG_BASE64);
        }
        p = end;
        while (is_space(*p))
            p++;
    }
    return v1_count > 0 ? 0 : -1;
}

/*
 * The timestamp ts (all digits, in units per second: 1 or 1000) within
 * tolerance_s of now_s either way; at exactly tolerance_s it passes unless
 * is_exclusive. name is the header it came in, for messages.
 */
static int
check_timestamp(const struct config_signature *sig, const struct http_sig_input *in, const char *ts,
                const char *name, int64_t units_per_s, int is_exclusive, struct error *err)
{
    int64_t v = 0, skew, tolerance = sig->tolerance_s > 0 ? sig->tolerance_s : 0;
    size_t n = 0;

    if (ts == NULL)
        return error_set(err, ERROR_AUTH, "missing timestamp header %s", name);
    for (const char *p = ts; *p != '\0'; p++, n++) {
        if (*p < '0' || *p > '9' || n == SIG_TS_DIGITS)
            return error_set(err, ERROR_AUTH, "malformed timestamp in header %s", name);
        v = v * 10 + (*p - '0');
    }
    if (n == 0)
        return error_set(err, ERROR_AUTH, "malformed timestamp in header %s", name);
    v /= units_per_s;
    /* Both sides are far below INT64_MAX / 2 in magnitude unless now_s is absurd. */
    if (in->now_s > INT64_MAX / 2 || in->now_s < INT64_MIN / 2)
        skew = INT64_MAX;
    else
        skew = v > in->now_s ? v - in->now_s : in->now_s - v;
    if (skew > tolerance || (is_exclusive && skew == tolerance))
        return error_set(err, ERROR_AUTH, "timestamp outside the %lld s window",
                         (long long)tolerance);
    return 0;
}

/* ---- Keys ---- */

/* The MAC key of one secret; owned is set when it was decoded onto the heap. */
struct sig_key {
    const unsigned char *bytes;
    size_t len;
    unsigned char *owned;
};

/*
 * The key of secret s under kind: its bytes, except for standard-webhooks,
 * where it is the base64 decoding of what follows "whsec_". Returns 0, or -1
 * if that does not decode (or decodes to nothing).
 */
static int
key_of(enum config_sig_scheme kind, const struct secret *s, struct sig_key *k)
{
    const char *v = secret_bytes(s);
    size_t len = s->len;

    k->owned = NULL;
    k->bytes = (const unsigned char *)v;
    k->len = len;
    if (kind != CONFIG_SIG_SCHEME_STANDARD_WEBHOOKS)
        return 0;
    if (len >= 6 && memcmp(v, "whsec_", 6) == 0) {
        v += 6;
        len -= 6;
    }
    k->owned = xmalloc(len / 4 * 3 + 3);
    if (b64_decode(v, len, k->owned, &k->len) == -1 || k->len == 0) {
        OPENSSL_cleanse(k->owned, len / 4 * 3 + 3);
        free(k->owned);
        k->owned = NULL;
        return -1;
    }
    k->bytes = k->owned;
    return 0;
}

static void
key_release(struct sig_key *k)
{
    if (k->owned != NULL) {
        OPENSSL_cleanse(k->owned, k->len);
        free(k->owned);
    }
    k->owned = NULL;
}

/* ---- Verify ---- */

static const char *
lookup(const struct http_sig_input *in, const char *name)
{
    return in->header != NULL && name != NULL ? in->header(in->user, name) : NULL;
}

/*
 * Find, check the timestamp of and decode what kind offers in the request
 * into msg and c. ts_buf holds Stripe's timestamp. Returns 0 or -1.
 */
static int
gather(const struct config_signature *sig, enum config_sig_scheme kind,
       const struct http_sig_input *in, struct http_sig_message *msg,
       char ts_buf[SIG_TS_DIGITS + 2], struct candidates *c, struct error *err)
{
    struct http_sig_headers names;
    const char *value;

    http_sig_headers(sig, &names);
    value = lookup(in, names.signature);
    if (value == NULL)
        return error_set(err, ERROR_AUTH, "missing signature header %s",
                         names.signature != NULL ? names.signature : "(unnamed)");
    switch (kind) {
    case CONFIG_SIG_SCHEME_HMAC:
        if (names.timestamp != NULL) {
            msg->timestamp = lookup(in, names.timestamp);
            if (check_timestamp(sig, in, msg->timestamp, names.timestamp, 1, 0, err) == -1)
                return -1;
        }
        if (parse_single(value, sig->prefix, sig->encoding, c) == -1)
            return error_set(err, ERROR_AUTH, "malformed signature");
        return 0;
    case CONFIG_SIG_SCHEME_STRIPE:
        if (parse_stripe(value, ts_buf, c) == -1)
            return error_set(err, ERROR_AUTH, "malformed signature");
        msg->timestamp = ts_buf;
        /* stripe-python refuses only old timestamps; a future one beyond the window
         * means the clocks disagree, and is refused like the generic scheme's. */
        return check_timestamp(sig, in, ts_buf, names.signature, 1, 0, err);
    case CONFIG_SIG_SCHEME_STANDARD_WEBHOOKS:
        msg->id = lookup(in, names.id);
        if (msg->id == NULL || msg->id[0] == '\0')
            return error_set(err, ERROR_AUTH, "missing header %s", names.id);
        msg->timestamp = lookup(in, names.timestamp);
        if (check_timestamp(sig, in, msg->timestamp, names.timestamp, 1, 0, err) == -1)
            return -1;
        if (parse_standard(value, c) == -1)
            return error_set(err, ERROR_AUTH, "malformed signature");
        return 0;
    case CONFIG_SIG_SCHEME_GITHUB:
        if (parse_single(value, "sha256=", CONFIG_SIG_HEX, c) == -1)
            return error_set(err, ERROR_AUTH, "malformed signature");
        return 0;
    case CONFIG_SIG_SCHEME_SHOPIFY:
        if (parse_single(value, NULL, CONFIG_SIG_BASE64, c) == -1)
            return error_set(err, ERROR_AUTH, "malformed signature");
        return 0;
    case CONFIG_SIG_SCHEME_HUBSPOT_V3:
        if (sig->url == NULL)
            return error_set(err, ERROR_INTERNAL, "hubspot-v3 signature without a url");
        msg->timestamp = lookup(in, names.timestamp);
        /* Milliseconds; "now - timestamp >= 300 s" is refused (signature.py, §6.5 [V]). */
        if (check_timestamp(sig, in, msg->timestamp, names.timestamp, 1000, 1, err) == -1)
            return -1;
        if (parse_single(value, NULL, CONFIG_SIG_BASE64, c) == -1)
            return error_set(err, ERROR_AUTH, "malformed signature");
        return 0;
    }
    return error_set(err, ERROR_INTERNAL, "unsupported signature scheme");
}

int
http_sig_verify(const struct config_signature *sig, const struct http_sig_input *in,
                struct error *err)
{
    enum config_sig_scheme kind = scheme_of(sig);
    const struct secret *secrets[CONFIG_SIG_MAX_SECRETS] = {&sig->secret, &sig->secret_rotated};
    size_t secret_count = sig->secret_count >= 2 ? 2 : 1;
    struct http_sig_message msg = {
        .method = in->method, .body = in->body, .body_len = in->body_len};
    struct candidates c;
    char ts_buf[SIG_TS_DIGITS + 2] = "";
    int matched = 0, tried = 0;

    if (kind == 0)
        return error_set(err, ERROR_INTERNAL, "unsupported signature scheme %s",
                         sig->scheme != NULL ? sig->scheme : "(unnamed)");
    c.count = 0;
    if (gather(sig, kind, in, &msg, ts_buf, &c, err) == -1)
        return -1;
    for (size_t i = 0; i < secret_count; i++) {
        unsigned char want[SIG_DIGEST_LEN];
        struct sig_key key;
        int rc;

        /* A secret that was never loaded (value NULL) must not stand for the empty key. */
        if (secrets[i]->value == NULL)
            continue;
        if (key_of(kind, secrets[i], &key) == -1)
            return error_set(err, ERROR_INVALID,
                             "the signature secret is not base64 after its whsec_ prefix");
        rc = compute_mac(sig, kind, key.bytes, key.len, &msg, want);
        key_release(&key);
        if (rc == -1) {
            OPENSSL_cleanse(want, sizeof(want));
            return error_set(err, ERROR_INTERNAL, "HMAC-SHA256 failed in OpenSSL");
        }
        /* Every candidate is compared in full: no early exit on a mismatch. */
        for (size_t j = 0; j < c.count; j++)
            matched |=
                (CRYPTO_memcmp(c.digest[j], want, SIG_DIGEST_LEN) == 0) & (c.is_digest_len[j] != 0);
        OPENSSL_cleanse(want, sizeof(want));
        tried++;
    }
    if (tried == 0)
        return error_set(err, ERROR_INTERNAL, "no signature secret loaded");
    if (!matched)
        return error_set(err, ERROR_AUTH, "signature does not match");
    return 0;
}

/* ---- Sign ---- */

int
http_sig_sign(const struct config_signature *sig, const struct http_sig_message *msg, char *out,
              size_t out_len)
{
    enum config_sig_scheme kind = scheme_of(sig);
    enum config_sig_encoding enc = CONFIG_SIG_HEX;
    const char *lead = "", *ts = msg->timestamp != NULL ? msg->timestamp : "";
    unsigned char mac[SIG_DIGEST_LEN];
    struct sig_key key;
    size_t lead_len, enc_len, need;
    char *p;
    int rc;

    switch (kind) {
    case CONFIG_SIG_SCHEME_HMAC:
        enc = sig->encoding;
        lead = sig->prefix != NULL ? sig->prefix : "";
        break;
    case CONFIG_SIG_SCHEME_STRIPE:
        if (msg->timestamp == NULL)
            return -1;
        break;
    case CONFIG_SIG_SCHEME_STANDARD_WEBHOOKS:
        if (msg->timestamp == NULL || msg->id == NULL)
            return -1;
        enc = CONFIG_SIG_BASE64;
        lead = "v1,";
        break;
    case CONFIG_SIG_SCHEME_GITHUB:
        lead = "sha256=";
        break;
    case CONFIG_SIG_SCHEME_SHOPIFY:
        enc = CONFIG_SIG_BASE64;
        break;
    case CONFIG_SIG_SCHEME_HUBSPOT_V3:
        if (msg->timestamp == NULL || sig->url == NULL)
            return -1;
        enc = CONFIG_SIG_BASE64;
        break;
    default:
        return -1;
    }
    lead_len = strlen(lead);
    enc_len = enc == CONFIG_SIG_BASE64 ? 4 * ((SIG_DIGEST_LEN + 2) / 3) : 2 * SIG_DIGEST_LEN;
    /* Stripe: "t=" TS ",v1=" HEX; the others: lead + encoding. Plus the NUL. */
    need = kind == CONFIG_SIG_SCHEME_STRIPE ? 2 + strlen(ts) + 4 + enc_len + 1
                                            : lead_len + enc_len + 1;
    if (out_len < need || sig->secret.value == NULL || key_of(kind, &sig->secret, &key) == -1)
        return -1;
    rc = compute_mac(sig, kind, key.bytes, key.len, msg, mac);
    key_release(&key);
    if (rc == -1) {
        OPENSSL_cleanse(mac, sizeof(mac));
        return -1;
    }
    if (kind == CONFIG_SIG_SCHEME_STRIPE) {
        p = out + 2 + strlen(ts) + 4;
        memcpy(out, "t=", 2);
        memcpy(out + 2, ts, strlen(ts));
        memcpy(p - 4, ",v1=", 4);
    } else {
        memcpy(out, lead, lead_len);
        p = out + lead_len;
    }
    if (enc == CONFIG_SIG_BASE64) {
        (void)EVP_EncodeBlock((unsigned char *)p, mac, SIG_DIGEST_LEN);
    } else {
        for (size_t i = 0; i < SIG_DIGEST_LEN; i++) {
            p[2 * i] = hex_digits[mac[i] >> 4];
            p[2 * i + 1] = hex_digits[mac[i] & 0xf];
        }
    }
    p[enc_len] = '\0';
    OPENSSL_cleanse(mac, sizeof(mac));
    return 0;
}
