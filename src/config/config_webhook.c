/* SPDX-License-Identifier: MIT */

/*
 * systems.X.webhook: where a system's webhooks arrive, the header that
 * names a delivery, and the signature that proves where one came from:
 * a scheme (generic hmac, or a named one that fixes its headers and
 * encoding), its secret or two during a rotation, and the hmac scheme's
 * header, encoding, prefix, timestamp and signed template. The check
 * itself is http/http_sig.c.
 */

#include "config/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"
#include "core/secret.h"
#include "core/xmalloc.h"

static const char *const webhook_keys[] = {"path", "delivery_id_header", "max_body_bytes",
                                           "signature", "reply_with"};
static const char *const sig_keys[] = {"scheme",      "header", "secret",
                                       "encoding",    "prefix", "timestamp_header",
                                       "tolerance_s", "signed", "url"};
/* In the order of enum config_sig_scheme; sig_scheme_reads says what each reads. */
static const char *const sig_schemes[] = {"hmac",   "stripe",  "standard-webhooks",
                                          "github", "shopify", "hubspot-v3"};
static const char *const sig_scheme_reads[] = {
    NULL,
    "Stripe-Signature (t=...,v1=hex)",
    "webhook-id, webhook-timestamp and webhook-signature (v1,base64)",
    "X-Hub-Signature-256 (sha256=hex)",
    "X-Shopify-Hmac-Sha256 (base64)",
    "X-HubSpot-Signature-v3 (base64) and X-HubSpot-Request-Timestamp",
};
_Static_assert(ARRAY_COUNT(sig_schemes) == ARRAY_COUNT(sig_scheme_reads),
               "one description per signature scheme");
_Static_assert(ARRAY_COUNT(sig_schemes) == CONFIG_SIG_SCHEME_HUBSPOT_V3,
               "one name per enum config_sig_scheme value");
static const char *const sig_encodings[] = {"hex", "base64"};

/*
 * Whether a standard-webhooks secret is usable: after an optional "whsec_",
 * standard base64 (padding optional, as the spec's libraries accept it)
 * that decodes to at least one byte. Mirrors http_sig.c's decoder.
 */
static int
sig_secret_is_base64(const struct secret *s)
{
    const char *v = secret_bytes(s);
    size_t len = s->len, pad = 0;

    if (len >= 6 && strncmp(v, "whsec_", 6) == 0) {
        v += 6;
        len -= 6;
    }
    while (pad < 2 && len > 0 && v[len - 1] == '=') {
        len--;
        pad++;
    }
    if (len < 2 || len % 4 == 1 || (pad > 0 && (len + pad) % 4 != 0))
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = v[i];

        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '+' || ch == '/'))
            return 0;
    }
    return 1;
}

/*
 * secret: one reference, or a list of up to CONFIG_SIG_MAX_SECRETS during a
 * rotation ([env:NEW, env:OLD]); a signature made with any of them passes.
 */
void
config_parse_sig_secrets(struct config_ctx *c, const struct config_node *v, const char *path,
                         struct config_signature *sig)
{
    struct secret *slots[CONFIG_SIG_MAX_SECRETS] = {&sig->secret, &sig->secret_rotated};
    const struct config_node *items[CONFIG_SIG_MAX_SECRETS];
    size_t n = 0;

    if (v->kind == CONFIG_NODE_SEQUENCE) {
        if (v->kid_count == 0 || v->kid_count > CONFIG_SIG_MAX_SECRETS) {
            CONFIG_PROBLEM(
                c, v,
                "%s: expected one secret reference, or two during a rotation, got a list "
                "of %zu; hint: list the new secret first and the old one second: "
                "[env:NEW, env:OLD]",
                path, v->kid_count);
            return;
        }
        for (size_t i = 0; i < v->kid_count; i++)
            items[n++] = v->kids[i];
    } else {
        items[n++] = v;
    }
    for (size_t i = 0; i < n; i++) {
        char *p = v->kind == CONFIG_NODE_SEQUENCE ? xasprintf("%s[%zu]", path, i) : xstrdup(path);

        if (config_get_secret(c, items[i], p, slots[i]) == 0 &&
            sig->scheme_kind == CONFIG_SIG_SCHEME_STANDARD_WEBHOOKS && slots[i]->value != NULL &&
            !sig_secret_is_base64(slots[i]))
            CONFIG_PROBLEM(
                c, items[i],
                "%s: a standard-webhooks secret is base64 after its whsec_ prefix, and this "
                "one is not; hint: copy the secret exactly as the sender shows it",
                p);
        free(p);
    }
    sig->secret_count = n;
}

/*
 * The keys that only the generic hmac scheme reads, refused with a named
 * scheme: it fixes its headers and encoding, so a value here would be
 * ignored or, worse, believed.
 */
static void
refuse_hmac_keys(struct config_ctx *c, const struct config_node *v, const char *path,
                 const struct config_signature *sig)
{
    static const char *const hmac_only[] = {"header", "encoding", "prefix", "timestamp_header",
                                            "signed"};
    const char *reads = sig_scheme_reads[sig->scheme_kind - 1];
    int has_ts = sig->scheme_kind != CONFIG_SIG_SCHEME_GITHUB &&
                 sig->scheme_kind != CONFIG_SIG_SCHEME_SHOPIFY;

    for (size_t i = 0; i < ARRAY_COUNT(hmac_only); i++) {
        const struct config_node *k = config_node_key(v, hmac_only[i]);

        if (k != NULL)
            CONFIG_PROBLEM(c, k,
                           "%s.%s: scheme %s fixes its headers and encoding: it reads %s; hint: "
                           "remove the key, or use scheme hmac to set it",
                           path, hmac_only[i], sig->scheme, reads);
    }
    if (!has_ts && config_node_key(v, "tolerance_s") != NULL)
        CONFIG_PROBLEM(c, config_node_key(v, "tolerance_s"),
                       "%s.tolerance_s: scheme %s signs no timestamp; hint: remove the key", path,
                       sig->scheme);
}

/* hubspot-v3's url: the absolute URL HubSpot calls, as registered with it. */
static void
parse_sig_url(struct config_ctx *c, const struct config_node *url, const char *path,
              struct config_signature *sig)
{
    char *p = config_join(path, "url");

    if (config_get_str(c, url, p, &sig->url) == 0 && strncmp(sig->url, "https://", 8) != 0 &&
        strncmp(sig->url, "http://", 7) != 0)
        CONFIG_PROBLEM(c, url,
                       "%s: expected an absolute http:// or https:// URL; hint: give the URL as "
                       "registered with HubSpot, https://concord.example.com/webhooks/crm",
                       p);
    free(p);
}

static void
parse_signature(struct config_ctx *c, const struct config_node *v, const char *path,
                struct config_signature *sig)
{
    const struct config_node *secret = config_node_get(v, "secret");
    const struct config_node *url = config_node_get(v, "url");
    int i;

    if (!config_want_map(c, v, path))
        return;
    config_check_keys(c, v, path, sig_keys, ARRAY_COUNT(sig_keys));
    sig->scheme_kind = CONFIG_SIG_SCHEME_HMAC;
    i = config_opt_choice(c, v, path, "scheme", sig_schemes, ARRAY_COUNT(sig_schemes));
    if (i >= 0) {
        free(sig->scheme);
        sig->scheme = xstrdup(sig_schemes[i]);
        sig->scheme_kind = (enum config_sig_scheme)(CONFIG_SIG_SCHEME_HMAC + i);
    }
    if (sig->scheme_kind == CONFIG_SIG_SCHEME_HMAC && config_node_get(v, "header") == NULL)
        config_missing(c, v, path, "header");
    if (secret == NULL) {
        config_missing(c, v, path, "secret");
    } else {
        char *p = config_join(path, "secret");

        config_parse_sig_secrets(c, secret, p, sig);
        free(p);
    }
    config_opt_int(c, v, path, "tolerance_s", (struct config_range){1, INT64_MAX / 4},
                   &sig->tolerance_s);
    if (sig->scheme_kind == CONFIG_SIG_SCHEME_HUBSPOT_V3) {
        if (url == NULL)
            CONFIG_PROBLEM(
                c, v,
                "%s: missing required key \"url\"; hint: hubspot-v3 signs the URL it calls: "
                "give the public URL of this webhook, "
                "https://concord.example.com/webhooks/crm",
                path);
        else
            parse_sig_url(c, url, path, sig);
    } else if (url != NULL) {
        CONFIG_PROBLEM(c, config_node_key(v, "url"),
                       "%s.url: only scheme hubspot-v3 signs the URL; hint: remove the key", path);
    }
    if (sig->scheme_kind != CONFIG_SIG_SCHEME_HMAC) {
        refuse_hmac_keys(c, v, path, sig);
        return;
    }
    config_opt_str(c, v, path, "header", &sig->header);
    i = config_opt_choice(c, v, path, "encoding", sig_encodings, ARRAY_COUNT(sig_encodings));
    if (i >= 0)
        sig->encoding = (enum config_sig_encoding)(CONFIG_SIG_HEX + i);
    config_opt_str(c, v, path, "prefix", &sig->prefix);
    config_opt_str(c, v, path, "timestamp_header", &sig->timestamp_header);
    config_opt_str(c, v, path, "signed", &sig->signed_template);
    if (strstr(sig->signed_template, "{body}") == NULL)
        CONFIG_PROBLEM(c, config_node_get(v, "signed"),
                       "%s.signed: the template must contain {body}", path);
    if (strstr(sig->signed_template, "{timestamp}") != NULL && sig->timestamp_header == NULL)
        CONFIG_PROBLEM(
            c, v,
            "%s: signed uses {timestamp} but timestamp_header is not set; hint: name the "
            "header that carries the timestamp",
            path);
}

void
config_parse_webhook(struct config_ctx *c, const struct config_node *v, const char *path,
                     struct config_webhook *w)
{
    const struct config_node *sig;
    int64_t max_body = (int64_t)w->max_body_bytes;

    if (!config_want_map(c, v, path))
        return;
    w->enabled = 1;
    config_check_keys(c, v, path, webhook_keys, ARRAY_COUNT(webhook_keys));
    config_opt_str(c, v, path, "path", &w->path);
    if (w->path[0] != '/')
        CONFIG_PROBLEM(c, config_node_get(v, "path"), "%s.path: must start with \"/\"", path);
    config_opt_str(c, v, path, "delivery_id_header", &w->delivery_id_header);
    config_opt_str(c, v, path, "reply_with", &w->reply_header);
    config_opt_int(c, v, path, "max_body_bytes", (struct config_range){1, INT32_MAX}, &max_body);
    w->max_body_bytes = (size_t)max_body;
    sig = config_node_get(v, "signature");
    if (sig != NULL) {
        char *p = config_join(path, "signature");

        w->has_signature = 1;
        parse_signature(c, sig, p, &w->signature);
        free(p);
    }
}
