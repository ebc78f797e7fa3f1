/* SPDX-License-Identifier: MIT */

/*
 * The generic "hmac" webhook signature of http_sig.h.
 *
 * The signed bytes are never assembled in memory: the template is fed to the
 * MAC piece by piece ("{timestamp}" and "{body}" replaced on the way), so a
 * large body costs no allocation and no size arithmetic that could overflow.
 * The received signature is decoded to bytes and compared with
 * CRYPTO_memcmp() over the full digest length whatever its own length was, so
 * the time taken says nothing about how much of it was right.
 */

#include "http/http_sig.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "core/error.h"
#include "core/secret.h"

#define SIG_DIGEST_LEN  32              /* SHA-256 */
#define SIG_MAX_ENCODED 256             /* longer header values are malformed, not decoded */
#define SIG_MAX_DECODED SIG_MAX_ENCODED /* hex or base64 decode to fewer bytes */
#define SIG_TS_DIGITS   18              /* fits int64_t with room to spare */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int
mac_update(EVP_MAC_CTX *ctx, const char *p, size_t len)
{
    return len == 0 || EVP_MAC_update(ctx, (const unsigned char *)p, len) == 1 ? 0 : -1;
}

/*
 * HMAC-SHA256 of the template with its placeholders replaced. A NULL
 * timestamp stands for "". Returns 0, or -1 if OpenSSL fails.
 */
static int
compute_mac(const struct config_signature *sig, const char *timestamp, const char *body,
            size_t body_len, unsigned char out[SIG_DIGEST_LEN])
{
    static const char ts_tag[] = "{timestamp}", body_tag[] = "{body}";
    const char *tpl = sig->signed_template != NULL ? sig->signed_template : body_tag;
    const char *ts = timestamp != NULL ? timestamp : "";
    char digest_name[] = "SHA256";
    OSSL_PARAM params[2];
    EVP_MAC *mac = NULL;
    EVP_MAC_CTX *ctx = NULL;
    size_t out_len = 0;
    int rc = -1;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0);
    params[1] = OSSL_PARAM_construct_end();
    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL || (ctx = EVP_MAC_CTX_new(mac)) == NULL)
        goto done;
    /* A non-NULL key, even of length 0: NULL would mean "keep the old key". */
    if (EVP_MAC_init(ctx, (const unsigned char *)secret_bytes(&sig->secret), sig->secret.len,
                     params) != 1)
        goto done;
    while (*tpl != '\0') {
        const char *ts_at = strstr(tpl, ts_tag);
        const char *body_at = strstr(tpl, body_tag);
        const char *next = ts_at;

        if (next == NULL || (body_at != NULL && body_at < next))
            next = body_at;
        if (next == NULL) {
            if (mac_update(ctx, tpl, strlen(tpl)) == -1)
                goto done;
            break;
        }
        if (mac_update(ctx, tpl, (size_t)(next - tpl)) == -1)
            goto done;
        if (next == ts_at) {
            if (mac_update(ctx, ts, strlen(ts)) == -1)
                goto done;
            tpl = next + sizeof(ts_tag) - 1;
        } else {
            if (mac_update(ctx, body, body_len) == -1)
                goto done;
            tpl = next + sizeof(body_tag) - 1;
        }
    }
    if (EVP_MAC_final(ctx, out, &out_len, SIG_DIGEST_LEN) == 1 && out_len == SIG_DIGEST_LEN)
        rc = 0;
done:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return rc;
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

/* Standard base64; the "=" padding may be left off but not misplaced. */
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

/*
 * The header value without surrounding blanks and without the prefix,
 * decoded to bytes. Returns 0, or -1 if it is malformed.
 */
static int
decode_received(const struct config_signature *sig, const char *value,
                unsigned char out[SIG_MAX_DECODED], size_t *out_len)
{
    const char *end = value + strlen(value);
    size_t prefix_len = sig->prefix != NULL ? strlen(sig->prefix) : 0;

    while (is_space(*value))
        value++;
    while (end > value && is_space(end[-1]))
        end--;
    if ((size_t)(end - value) < prefix_len ||
        (prefix_len > 0 && memcmp(value, sig->prefix, prefix_len) != 0))
        return -1;
    value += prefix_len;
    if (end == value || end - value > SIG_MAX_ENCODED)
        return -1;
    if (sig->encoding == CONFIG_SIG_BASE64)
        return b64_decode(value, (size_t)(end - value), out, out_len);
    return hex_decode(value, (size_t)(end - value), out, out_len);
}

/* The timestamp, all digits, within tolerance_s of now_s either way. */
static int
check_timestamp(const struct config_signature *sig, const struct http_sig_input *in,
                struct error *err)
{
    int64_t ts = 0, skew, tolerance = sig->tolerance_s > 0 ? sig->tolerance_s : 0;
    size_t n = 0;

    if (in->timestamp == NULL)
        return error_set(err, ERROR_AUTH, "missing timestamp header %s", sig->timestamp_header);
    for (const char *p = in->timestamp; *p != '\0'; p++, n++) {
        if (*p < '0' || *p > '9' || n == SIG_TS_DIGITS)
            return error_set(err, ERROR_AUTH, "malformed timestamp in header %s",
                             sig->timestamp_header);
        ts = ts * 10 + (*p - '0');
    }
    if (n == 0)
        return error_set(err, ERROR_AUTH, "malformed timestamp in header %s",
                         sig->timestamp_header);
    /* Both sides are far below INT64_MAX / 2 in magnitude unless now_s is absurd. */
    if (in->now_s > INT64_MAX / 2 || in->now_s < INT64_MIN / 2)
        skew = INT64_MAX;
    else
        skew = ts > in->now_s ? ts - in->now_s : in->now_s - ts;
    if (skew > tolerance)
        return error_set(err, ERROR_AUTH, "timestamp outside the %lld s window",
                         (long long)tolerance);
    return 0;
}

static int
scheme_is_hmac(const struct config_signature *sig)
{
    return sig->scheme == NULL || strcmp(sig->scheme, "hmac") == 0;
}

int
http_sig_verify(const struct config_signature *sig, const struct http_sig_input *in,
                struct error *err)
{
    unsigned char got[SIG_MAX_DECODED] = {0}, want[SIG_DIGEST_LEN];
    size_t got_len = 0;
    int differ;

    if (!scheme_is_hmac(sig))
        return error_set(err, ERROR_INTERNAL, "unsupported signature scheme %s", sig->scheme);
    if (in->signature == NULL)
        return error_set(err, ERROR_AUTH, "missing signature header %s",
                         sig->header != NULL ? sig->header : "(unnamed)");
    if (sig->timestamp_header != NULL && check_timestamp(sig, in, err) == -1)
        return -1;
    if (decode_received(sig, in->signature, got, &got_len) == -1)
        return error_set(err, ERROR_AUTH, "malformed signature");
    if (compute_mac(sig, sig->timestamp_header != NULL ? in->timestamp : NULL, in->body,
                    in->body_len, want) == -1)
        return error_set(err, ERROR_INTERNAL, "HMAC-SHA256 failed in OpenSSL");
    /* got is zero-filled past got_len, so the full-length compare is defined. */
    differ = CRYPTO_memcmp(got, want, SIG_DIGEST_LEN) != 0;
    differ |= got_len != SIG_DIGEST_LEN;
    OPENSSL_cleanse(want, sizeof(want));
    if (differ)
        return error_set(err, ERROR_AUTH, "signature does not match");
    return 0;
}

int
http_sig_sign(const struct config_signature *sig, const char *timestamp, const char *body,
              size_t body_len, char *out, size_t out_len)
{
    static const char hex_digits[] = "0123456789abcdef";
    unsigned char mac[SIG_DIGEST_LEN];
    size_t prefix_len = sig->prefix != NULL ? strlen(sig->prefix) : 0;
    size_t enc_len =
        sig->encoding == CONFIG_SIG_BASE64 ? 4 * ((SIG_DIGEST_LEN + 2) / 3) : 2 * SIG_DIGEST_LEN;
    char *p;

    if (!scheme_is_hmac(sig) || out_len <= prefix_len || out_len - prefix_len <= enc_len)
        return -1;
    if (compute_mac(sig, timestamp, body, body_len, mac) == -1)
        return -1;
    memcpy(out, sig->prefix != NULL ? sig->prefix : "", prefix_len);
    p = out + prefix_len;
    if (sig->encoding == CONFIG_SIG_BASE64) {
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
