/* SPDX-License-Identifier: MIT */

/*
 * systems.X.auth: headers (each value a secret), bearer, basic and oauth2,
 * and the Basic and Bearer headers the named kinds build from their own
 * credentials (config_basic_auth, config_secret_prefix). Values built from
 * secrets stay secrets: they are named by the reference they came from.
 */

#include "config/config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config_int.h"
#include "core/secret.h"
#include "core/xmalloc.h"

static const char *const auth_keys[] = {"headers", "bearer", "basic", "oauth2"};
static const char *const oauth2_keys[] = {"grant",     "token_url",     "authorize_url",
                                          "client_id", "client_secret", "refresh_token",
                                          "scope",     "credentials",   "renew_before"};
static const char *const oauth2_grants[] = {"client_credentials", "refresh_token"};
static const char *const oauth2_credentials[] = {"body", "basic"};
static const char *const basic_keys[] = {"username", "password"};

/* The 64 digits, then the pad character. */
static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";

/* RFC 4648 §4 base64 of len bytes, NUL-terminated, into a new buffer. */
char *
config_base64(const unsigned char *in, size_t len, size_t *out_len)
{
    char *out = xmalloc(len / 3 * 4 + 5);
    size_t o = 0, i = 0;

    for (; i + 2 < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];

        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = b64[v >> 6 & 63];
        out[o++] = b64[v & 63];
    }
    if (i < len) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0);

        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = b64[i + 1 < len ? (v >> 6 & 63) : 64];
        out[o++] = b64[64];
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

/* Replace s's value by prefix + value (the ref stays: it is what a person may see). */
void
config_secret_prefix(struct secret *s, const char *prefix)
{
    size_t plen = strlen(prefix);
    char *v;

    if (s->value == NULL) /* not read (CONFIG_LOAD_NO_SECRETS): nothing to prefix */
        return;
    v = xmalloc(plen + s->len + 1);
    memcpy(v, prefix, plen);
    memcpy(v + plen, s->value, s->len);
    v[plen + s->len] = '\0';
    explicit_bzero(s->value, s->len);
    free(s->value);
    s->value = v;
    s->len += plen;
}

/* A header value goes on the wire as is: a line break would forge headers. */
static void
check_header_value(struct config_ctx *c, const struct config_node *n, const char *path,
                   const struct secret *s)
{
    if (s->value != NULL && strpbrk(s->value, "\r\n") != NULL)
        CONFIG_PROBLEM(c, n, "%s: the value of %s holds a line break, which a header cannot carry",
                       path, s->ref);
}

static struct config_header *
add_header(struct config_system *s, const char *name)
{
    struct config_header *h = &s->auth_headers[s->auth_header_count++];

    h->name = xstrdup(name);
    return h;
}

void
config_bearer_key(struct config_ctx *c, const struct config_node *n, const char *path,
                  const char *key, struct config_system *s)
{
    char *p = config_join(path, key);

    s->auth_headers = xcalloc(1, sizeof(*s->auth_headers));
    s->auth_header_count = 0;
    if (config_get_secret(c, n, p, &add_header(s, "Authorization")->value) == 0)
        config_secret_prefix(&s->auth_headers[0].value, "Bearer ");
    free(p);
}

static int
header_taken(struct config_ctx *c, const struct config_system *s, const struct config_node *at,
             const char *path, const char *name)
{
    for (size_t i = 0; i + 1 < s->auth_header_count; i++) {
        if (strcasecmp(s->auth_headers[i].name, name) == 0) {
            CONFIG_PROBLEM(c, at, "%s: header %s is set twice", path, name);
            return 1;
        }
    }
    return 0;
}

static void
parse_basic(struct config_ctx *c, const struct config_node *v, const char *path,
            struct config_system *s)
{
    const struct config_node *user = config_node_get(v, "username"),
                             *pw = config_node_get(v, "password");
    struct config_header *h;
    struct secret sec = {0};
    char *joined, *enc, *p;
    size_t ulen, enc_len;

    config_check_keys(c, v, path, basic_keys, ARRAY_COUNT(basic_keys));
    if (user == NULL)
        config_missing(c, v, path, "username");
    if (pw == NULL)
        config_missing(c, v, path, "password");
    if (user == NULL || pw == NULL)
        return;
    p = config_join(path, "password");
    if (config_get_secret(c, pw, p, &sec) == 0 && user->kind == CONFIG_NODE_SCALAR &&
        !config_node_is_null(user)) {
        h = add_header(s, "Authorization");
        if (!header_taken(c, s, v, path, "Authorization")) {
            /* RFC 7617: base64(user ":" password). */
            ulen = user->len;
            joined = xmalloc(ulen + 1 + sec.len + 1);
            memcpy(joined, user->value, ulen);
            joined[ulen] = ':';
            memcpy(joined + ulen + 1, secret_bytes(&sec), sec.len + 1);
            enc = config_base64((const unsigned char *)joined, ulen + 1 + sec.len, &enc_len);
            explicit_bzero(joined, ulen + 1 + sec.len);
            free(joined);
            h->value.ref = xstrdup(sec.ref);
            h->value.value = enc;
            h->value.len = enc_len;
            config_secret_prefix(&h->value, "Basic ");
        }
    } else if (user->kind != CONFIG_NODE_SCALAR || config_node_is_null(user)) {
        char *up = config_join(path, "username");
        char *ignored = NULL;

        (void)config_get_str(c, user, up, &ignored);
        free(ignored);
        free(up);
    }
    secret_fini(&sec);
    free(p);
}

/* A URL that is absolute (http/https) or a path under the system's base_url. */
void
config_get_url_or_path(struct config_ctx *c, const struct config_node *v, const char *path,
                       char **out)
{
    if (config_get_str(c, v, path, out) == -1)
        return;
    if ((*out)[0] != '/' && strncmp(*out, "http://", 7) != 0 && strncmp(*out, "https://", 8) != 0)
        CONFIG_PROBLEM(
            c, v,
            "%s: expected a URL (http:// or https://) or a path under base_url (/...), got "
            "\"%.60s\"",
            path, *out);
}

/* An OAuth2 client's client_id, client_secret (both required) and
 * refresh_token, from v at path: oauth2 under auth, and the calendar kinds. */
void
config_oauth_client(struct config_ctx *c, const struct config_node *v, const char *path,
                    struct config_oauth2 *o)
{
    const struct config_node *n;
    char *p;

    if (config_node_get(v, "client_id") == NULL)
        config_missing(c, v, path, "client_id");
    config_opt_str(c, v, path, "client_id", &o->client_id);
    if ((n = config_node_get(v, "client_secret")) == NULL) {
        config_missing(c, v, path, "client_secret");
    } else {
        p = config_join(path, "client_secret");
        (void)config_get_secret(c, n, p, &o->client_secret);
        free(p);
    }
    if ((n = config_node_get(v, "refresh_token")) != NULL) {
        p = config_join(path, "refresh_token");
        (void)config_get_secret(c, n, p, &o->refresh_token);
        free(p);
    }
}

static void
parse_oauth2(struct config_ctx *c, const struct config_node *v, const char *path,
             struct config_system *s)
{
    struct config_oauth2 *o = &s->oauth2;
    const struct config_node *n;
    char *p;
    int pick;

    if (!config_want_map(c, v, path))
        return;
    config_check_keys(c, v, path, oauth2_keys, ARRAY_COUNT(oauth2_keys));
    o->enabled = 1;
    o->margin_ms = 60000;
    n = config_node_get(v, "token_url");
    if (n == NULL) {
        config_missing(c, v, path, "token_url");
    } else {
        p = config_join(path, "token_url");
        config_get_url_or_path(c, n, p, &o->token_url);
        free(p);
    }
    if ((n = config_node_get(v, "authorize_url")) != NULL) {
        p = config_join(path, "authorize_url");
        config_get_url_or_path(c, n, p, &o->authorize_url);
        free(p);
    }
    config_oauth_client(c, v, path, o);
    config_opt_str(c, v, path, "scope", &o->scope);
    config_opt_duration(c, v, path, "renew_before", 0, &o->margin_ms);
    o->grant = config_node_get(v, "refresh_token") != NULL || o->authorize_url != NULL
                   ? CONFIG_GRANT_REFRESH_TOKEN
                   : CONFIG_GRANT_CLIENT_CREDENTIALS;
    pick = config_opt_choice(c, v, path, "grant", oauth2_grants, ARRAY_COUNT(oauth2_grants));
    if (pick >= 0)
        o->grant = pick == 0 ? CONFIG_GRANT_CLIENT_CREDENTIALS : CONFIG_GRANT_REFRESH_TOKEN;
    if (o->grant == CONFIG_GRANT_CLIENT_CREDENTIALS && config_node_get(v, "refresh_token") != NULL)
        CONFIG_PROBLEM(
            c, config_node_get(v, "refresh_token"),
            "%s.refresh_token: the client_credentials grant takes no refresh token; hint: "
            "write grant: refresh_token, or remove it",
            path);
    o->credentials_basic = config_opt_choice(c, v, path, "credentials", oauth2_credentials,
                                             ARRAY_COUNT(oauth2_credentials)) == 1;
}

void
config_parse_auth(struct config_ctx *c, const struct config_node *v, const char *path,
                  struct config_system *s)
{
    const struct config_node *headers, *bearer, *basic;
    char *p;

    if (!config_want_map(c, v, path))
        return;
    config_check_keys(c, v, path, auth_keys, ARRAY_COUNT(auth_keys));
    headers = config_node_get(v, "headers");
    bearer = config_node_get(v, "bearer");
    basic = config_node_get(v, "basic");
    p = config_join(path, "headers");
    s->auth_headers =
        xcalloc((headers != NULL ? headers->kid_count / 2 : 0) + 2, sizeof(*s->auth_headers));
    if (config_want_map(c, headers, p)) {
        for (size_t i = 0; i + 1 < headers->kid_count; i += 2) {
            const struct config_node *k = headers->kids[i];
            char *hp = config_join(p, k->value);
            struct config_header *h = add_header(s, k->value);

            if (!config_header_name_ok(k->value))
                CONFIG_PROBLEM(c, k, "%s: \"%.64s\" is not a valid header name", p, k->value);
            else if (!header_taken(c, s, k, p, k->value) &&
                     config_get_secret(c, headers->kids[i + 1], hp, &h->value) == 0)
                check_header_value(c, headers->kids[i + 1], hp, &h->value);
            free(hp);
        }
    }
    free(p);
    if (bearer != NULL) {
        p = config_join(path, "bearer");
        struct config_header *h = add_header(s, "Authorization");

        if (!header_taken(c, s, bearer, p, "Authorization") &&
            config_get_secret(c, bearer, p, &h->value) == 0) {
            check_header_value(c, bearer, p, &h->value);
            config_secret_prefix(&h->value, "Bearer ");
        }
        free(p);
    }
    p = config_join(path, "basic");
    if (config_want_map(c, basic, p))
        parse_basic(c, basic, p, s);
    free(p);
    if (config_node_get(v, "oauth2") != NULL) {
        p = config_join(path, "oauth2");
        parse_oauth2(c, config_node_get(v, "oauth2"), p, s);
        for (size_t i = 0; i < s->auth_header_count; i++) {
            if (strcasecmp(s->auth_headers[i].name, "Authorization") == 0)
                CONFIG_PROBLEM(
                    c, config_node_get(v, "oauth2"),
                    "%s: oauth2 sends its own Authorization header; hint: remove bearer, "
                    "basic or the Authorization header",
                    p);
        }
        free(p);
    }
}

/*
 * Basic auth from the system's username and the secret at key (its node
 * sec): the Authorization header of every request. The encoded pair is a
 * secret too, named by the secret's reference.
 */
void
config_basic_auth(struct config_ctx *c, const char *path, const struct config_node *user,
                  const char *key, const struct config_node *sec_n, struct config_system *s)
{
    struct secret sec = {0};
    char *p = config_join(path, key);

    if (config_get_secret(c, sec_n, p, &sec) == 0) {
        char *up = config_join(path, "username"), *name = NULL;

        if (config_get_str(c, user, up, &name) == 0) {
            size_t ulen = strlen(name), enc_len;
            char *joined = xmalloc(ulen + 1 + sec.len + 1), *enc;

            memcpy(joined, name, ulen);
            joined[ulen] = ':';
            memcpy(joined + ulen + 1, secret_bytes(&sec), sec.len + 1);
            enc = config_base64((const unsigned char *)joined, ulen + 1 + sec.len, &enc_len);
            explicit_bzero(joined, ulen + 1 + sec.len);
            free(joined);
            s->auth_headers = xcalloc(1, sizeof(*s->auth_headers));
            s->auth_headers[0].name = xstrdup("Authorization");
            s->auth_headers[0].value.ref = xstrdup(sec.ref);
            s->auth_headers[0].value.value = enc;
            s->auth_headers[0].value.len = enc_len;
            config_secret_prefix(&s->auth_headers[0].value, "Basic ");
            s->auth_header_count = 1;
        }
        free(name);
        free(up);
    }
    secret_fini(&sec);
    free(p);
}
