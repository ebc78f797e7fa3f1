/* SPDX-License-Identifier: MIT */

/*
 * OAuth2 access tokens: a cache per system, refreshed single-flight, kept
 * in the store. See oauth.h for the contract and docs/config.md
 * ("OAuth2") for what an operator writes.
 *
 * A refresh is a blocking request on the calling thread, with the system's
 * own client. It happens about once an hour per system, and other systems'
 * requests wait no longer than the system's timeout.
 */

#include "connectors/oauth.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/secret.h"
#include "core/xmalloc.h"
#include "http/http_client.h"
#include "http/http_form.h"
#include "model/value.h"
#include "store/store.h"

#define TOKEN_MAX_BODY  (64 * 1024)
#define REFUSAL_HOLD_MS 1000      /* a refusal answers every caller for this long */
#define SEED_CONSENT    "consent" /* a refresh token from concord auth, not from the config */

struct oauth_sys {
    const struct config_system *cfg;
    char *access;             /* mu: the current access token, or NULL */
    int64_t expires_at_ms;    /* mu: wall clock; 0: unknown (good until a 401) */
    int refreshing;           /* mu: a thread is fetching a token now */
    int64_t refused_until;    /* mu: monotonic; the last fetch failed until then */
    char *refused_msg;        /* mu: why */
    int64_t refreshes;        /* mu */
    struct http_client *http; /* used by the refreshing thread only */
};

struct oauth {
    const struct config *cfg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_mutex_t st_mu; /* the store connection, shared by refreshing threads */
    struct store *st;
    struct oauth_sys *sys;
    size_t count;
};

static void
wipe_free(char *s)
{
    if (s != NULL)
        explicit_bzero(s, strlen(s));
    free(s);
}

void
oauth_value_free(char *value)
{
    wipe_free(value);
}

static struct oauth_sys *
find(struct oauth *o, const struct config_system *cfg)
{
    for (size_t i = 0; i < o->count; i++) {
        if (o->sys[i].cfg == cfg || strcmp(o->sys[i].cfg->name, cfg->name) == 0)
            return &o->sys[i];
    }
    return NULL;
}

/* Hex SHA-256 of a secret: whether the store's tokens descend from it. */
static char *
seed_of(const struct secret *s)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    char *hex;

    if (secret_bytes(s) == NULL || s->len == 0)
        return NULL;
    if (EVP_Digest(secret_bytes(s), s->len, md, &len, EVP_sha256(), NULL) != 1)
        return NULL;
    hex = xmalloc(2 * len + 1);
    for (unsigned int i = 0; i < len; i++)
        (void)snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return hex;
}

static char *
token_url(const struct config_system *sys)
{
    const char *u = sys->oauth2.token_url;

    return u[0] == '/' ? xasprintf("%s%s", sys->base_url, u) : xstrdup(u);
}

int
oauth_new(const struct config *cfg, struct oauth **out, struct error *err)
{
    struct oauth *o;
    size_t n = 0;

    *out = NULL;
    for (size_t i = 0; i < cfg->system_count; i++)
        n += cfg->systems[i].oauth2.enabled != 0;
    if (n == 0)
        return 0;
    o = xcalloc(1, sizeof(*o));
    o->cfg = cfg;
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
    pthread_mutex_init(&o->st_mu, NULL);
    o->sys = xcalloc(n, sizeof(*o->sys));
    for (size_t i = 0; i < cfg->system_count; i++) {
        if (cfg->systems[i].oauth2.enabled)
            o->sys[o->count++].cfg = &cfg->systems[i];
    }
    if (store_open(&o->st, cfg->store_url, err) == -1)
        goto fail;
    /* A token fetched before a restart is still good until it expires. */
    for (size_t i = 0; i < o->count; i++) {
        struct store_oauth t;
        int found = store_oauth_get(o->st, o->sys[i].cfg->name, &t, err);

        if (found == -1)
            goto fail;
        if (found == 1 && t.access_token != NULL) {
            o->sys[i].access = t.access_token;
            o->sys[i].expires_at_ms = t.expires_at_ms;
            t.access_token = NULL;
        }
        store_oauth_fini(&t);
    }
    *out = o;
    return 0;

fail:
    oauth_free(o);
    return error_wrap(err, "oauth2 tokens");
}

void
oauth_free(struct oauth *o)
{
    if (o == NULL)
        return;
    for (size_t i = 0; i < o->count; i++) {
        wipe_free(o->sys[i].access);
        free(o->sys[i].refused_msg);
        http_client_free(o->sys[i].http);
    }
    free(o->sys);
    store_close(o->st);
    pthread_mutex_destroy(&o->mu);
    pthread_cond_destroy(&o->cv);
    pthread_mutex_destroy(&o->st_mu);
    free(o);
}

/* ---- one request to a token endpoint ---- */

struct answer {
    int done;
    enum http_outcome outcome;
    long status;
    char *body;
    char *error;
};

static void
answer_done(void *user, const struct http_response *resp)
{
    struct answer *a = user;

    a->done = 1;
    a->outcome = resp->outcome;
    a->status = resp->status;
    a->body = xstrndup(resp->body, resp->body_len);
    a->error = xstrdup(resp->error);
}

static void
answer_fini(struct answer *a)
{
    wipe_free(a->body);
    free(a->error);
}

/* "user:password" in Basic form, per RFC 6749 2.3.1 (form-encoded parts). */
static char *
basic_credentials(const char *id, const struct secret *secret)
{
    char *joined = xasprintf("%s:%s", id, secret_bytes(secret));
    size_t len = strlen(joined);
    char *out = xmalloc(6 + 4 * ((len + 2) / 3) + 1);

    memcpy(out, "Basic ", 6);
    (void)EVP_EncodeBlock((unsigned char *)out + 6, (const unsigned char *)joined, (int)len);
    wipe_free(joined);
    return out;
}

/*
 * POST form to sys's token endpoint with its client credentials. Returns 0
 * with *answer the parsed JSON of a 200 (cJSON_Delete()), or -1 with err.
 */
static int
post_token(struct oauth_sys *s, cJSON *form, cJSON **answer, struct error *err)
{
    const struct config_system *sys = s->cfg;
    struct http_header headers[3] = {
        {"Content-Type", "application/x-www-form-urlencoded"},
        {"Accept", "application/json"},
        {NULL, NULL},
    };
    size_t nh = 2;
    char *body = NULL, *url = NULL, *basic = NULL;
    struct answer a = {0};
    cJSON *json = NULL;
    int rc = -1;

    *answer = NULL;
    if (sys->oauth2.credentials_basic) {
        basic = basic_credentials(sys->oauth2.client_id, &sys->oauth2.client_secret);
        headers[nh].name = "Authorization";
        headers[nh++].value = basic;
    } else {
        cJSON_AddStringToObject(form, "client_id", sys->oauth2.client_id);
        cJSON_AddStringToObject(form, "client_secret", secret_bytes(&sys->oauth2.client_secret));
    }
    if (http_form_encode(form, TOKEN_MAX_BODY, &body, err) == -1)
        goto out;
    if (s->http == NULL && http_client_new(&s->http, err) == -1)
        goto out;
    url = token_url(sys);
    struct http_request req = {
        .method = "POST",
        .url = url,
        .headers = headers,
        .header_count = nh,
        .body = body,
        .body_len = strlen(body),
        .timeout_ms = sys->timeout_ms,
        .max_body = TOKEN_MAX_BODY,
        .done = answer_done,
        .user = &a,
    };
    if (http_client_submit(s->http, &req, err) == -1)
        goto out;
    while (!a.done)
        (void)http_client_run(s->http, 100);
    if (a.outcome != HTTP_OUTCOME_RESPONSE) {
        (void)error_set(err, ERROR_TRANSIENT, "the token endpoint did not answer: %s",
                        a.error != NULL ? a.error : "no answer");
        goto out;
    }
    json = cJSON_Parse(a.body);
    if (a.status != 200) {
        /* RFC 6749 5.2: {"error": "...", "error_description": "..."}, or
         * the system's own error message (Oblio's statusMessage); only
         * those are shown, never the body (it could echo a secret). */
        const char *code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(json, "error"));
        const char *desc =
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(json, "error_description"));

        if (desc == NULL && sys->errors.message_path != NULL)
            desc = cJSON_GetStringValue(value_path_get(json, sys->errors.message_path));
        if (desc == NULL)
            desc = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(json, "message"));

        (void)error_set(err, ERROR_TRANSIENT, "the token endpoint answered %ld%s%.80s%s%.160s%s",
                        a.status, code != NULL ? ": " : "", code != NULL ? code : "",
                        desc != NULL ? " (" : "", desc != NULL ? desc : "",
                        desc != NULL ? ")" : "");
        goto out;
    }
    if (!cJSON_IsObject(json) ||
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(json, "access_token")) == NULL) {
        (void)error_set(err, ERROR_TRANSIENT,
                        "the token endpoint answered 200 without an access_token");
        goto out;
    }
    *answer = json;
    json = NULL;
    rc = 0;

out:
    cJSON_Delete(json);
    wipe_free(body);
    wipe_free(basic);
    free(url);
    answer_fini(&a);
    return rc;
}

/* expires_in as a number or, as Oblio sends it, a string of digits. */
static int64_t
expires_in_s(const cJSON *answer)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(answer, "expires_in");
    char *end;
    long long n;

    if (cJSON_IsNumber(v) && v->valuedouble > 0 && v->valuedouble < 1e9)
        return (int64_t)v->valuedouble;
    if (cJSON_IsString(v)) {
        n = strtoll(v->valuestring, &end, 10);
        if (end != v->valuestring && *end == '\0' && n > 0 && n < 1000000000LL)
            return (int64_t)n;
    }
    return 0;
}

/*
 * Keep a token answer: the access token in s (caller holds no lock; the
 * caller publishes under mu) and everything in the store, with a rotated
 * refresh token replacing the old one.
 */
static int
keep_answer(struct oauth *o, struct oauth_sys *s, const cJSON *answer, const char *old_refresh,
            const char *seed, char **access, int64_t *expires_at, struct error *err)
{
    const char *rt =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(answer, "refresh_token"));
    int64_t in_s = expires_in_s(answer), now = clock_now_ms();
    struct store_oauth t = {0};
    int rc;

    *access =
        xstrdup(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(answer, "access_token")));
    *expires_at = in_s > 0 ? now + in_s * 1000 : 0;
    t.access_token = *access;
    t.expires_at_ms = *expires_at;
    t.refresh_token = (char *)(uintptr_t)(rt != NULL ? rt : old_refresh);
    t.seed = (char *)(uintptr_t)seed;
    pthread_mutex_lock(&o->st_mu);
    rc = store_oauth_put(o->st, s->cfg->name, &t, now, err);
    pthread_mutex_unlock(&o->st_mu);
    if (rc == -1) {
        wipe_free(*access);
        *access = NULL;
        return error_wrap(err, "keep the new token");
    }
    log_info(&(struct log_ctx){.system = s->cfg->name},
             "oauth2: new access token%s%s, good for %lld s",
             rt != NULL ? " and refresh token" : "",
             rt != NULL && old_refresh != NULL ? " (rotated)" : "", (long long)in_s);
    return 0;
}

/* The refresh token to use and the seed it descends from (both malloc()ed). */
static int
current_refresh(struct oauth *o, struct oauth_sys *s, char **refresh, char **seed,
                struct error *err)
{
    const struct config_oauth2 *cfg = &s->cfg->oauth2;
    char *config_seed = seed_of(&cfg->refresh_token);
    struct store_oauth t;
    int found;

    *refresh = NULL;
    *seed = NULL;
    pthread_mutex_lock(&o->st_mu);
    found = store_oauth_get(o->st, s->cfg->name, &t, err);
    pthread_mutex_unlock(&o->st_mu);
    if (found == -1) {
        free(config_seed);
        return -1;
    }
    /* The store's token wins when it came from a consent (concord auth) or
     * descends from the config's own: a rotation made it the only good one. */
    if (found == 1 && t.refresh_token != NULL && t.seed != NULL &&
        (strcmp(t.seed, SEED_CONSENT) == 0 ||
         (config_seed != NULL && strcmp(t.seed, config_seed) == 0))) {
        *refresh = t.refresh_token;
        *seed = t.seed;
        t.refresh_token = NULL;
        t.seed = NULL;
        free(config_seed);
    } else if (config_seed != NULL) {
        *refresh = xstrdup(secret_bytes(&cfg->refresh_token));
        *seed = config_seed;
    } else {
        free(config_seed);
        store_oauth_fini(&t);
        return error_set(err, ERROR_TRANSIENT,
                         "no refresh token; hint: run concord auth %s, or set "
                         "auth.oauth2.refresh_token",
                         s->cfg->name);
    }
    store_oauth_fini(&t);
    return 0;
}

/* Fetch a token for s: the refreshing thread, no lock held. */
static int
fetch(struct oauth *o, struct oauth_sys *s, char **access, int64_t *expires_at, struct error *err)
{
    const struct config_oauth2 *cfg = &s->cfg->oauth2;
    cJSON *form = cJSON_CreateObject(), *answer = NULL;
    char *refresh = NULL, *seed = NULL;
    int rc = -1;

    if (cfg->grant == CONFIG_GRANT_REFRESH_TOKEN) {
        if (current_refresh(o, s, &refresh, &seed, err) == -1)
            goto out;
        cJSON_AddStringToObject(form, "grant_type", "refresh_token");
        cJSON_AddStringToObject(form, "refresh_token", refresh);
    } else {
        cJSON_AddStringToObject(form, "grant_type", "client_credentials");
    }
    if (cfg->scope != NULL)
        cJSON_AddStringToObject(form, "scope", cfg->scope);
    if (post_token(s, form, &answer, err) == -1)
        goto out;
    rc = keep_answer(o, s, answer, refresh, seed, access, expires_at, err);

out:
    /* The form holds the client secret and the refresh token. */
    for (cJSON *it = form != NULL ? form->child : NULL; it != NULL; it = it->next) {
        if (cJSON_IsString(it))
            explicit_bzero(it->valuestring, strlen(it->valuestring));
    }
    cJSON_Delete(form);
    cJSON_Delete(answer);
    wipe_free(refresh);
    free(seed);
    return rc;
}

static int
fresh(const struct oauth_sys *s, int64_t now_ms)
{
    return s->access != NULL &&
           (s->expires_at_ms == 0 || now_ms + s->cfg->oauth2.margin_ms < s->expires_at_ms);
}

int
oauth_header(struct oauth *o, const struct config_system *sys, char **value, struct error *err)
{
    struct oauth_sys *s = o != NULL ? find(o, sys) : NULL;
    char *access = NULL;
    int64_t expires_at = 0;
    int rc;

    *value = NULL;
    if (s == NULL)
        return error_set(err, ERROR_INTERNAL, "%s has no oauth2 section", sys->name);
    pthread_mutex_lock(&o->mu);
    for (;;) {
        if (fresh(s, clock_now_ms())) {
            *value = xasprintf("Bearer %s", s->access);
            pthread_mutex_unlock(&o->mu);
            return 0;
        }
        if (!s->refreshing)
            break;
        pthread_cond_wait(&o->cv, &o->mu);
    }
    if (s->refused_until > clock_mono_ms()) {
        (void)error_set(err, ERROR_TRANSIENT, "oauth2: %s", s->refused_msg);
        pthread_mutex_unlock(&o->mu);
        return -1;
    }
    s->refreshing = 1;
    pthread_mutex_unlock(&o->mu);

    rc = fetch(o, s, &access, &expires_at, err);

    pthread_mutex_lock(&o->mu);
    s->refreshing = 0;
    if (rc == 0) {
        wipe_free(s->access);
        s->access = access;
        s->expires_at_ms = expires_at;
        s->refreshes++;
        *value = xasprintf("Bearer %s", access);
    } else {
        free(s->refused_msg);
        s->refused_msg = xstrdup(err->msg);
        s->refused_until = clock_mono_ms() + REFUSAL_HOLD_MS;
        (void)error_wrap(err, "oauth2");
        log_warn(&(struct log_ctx){.system = sys->name}, "%s", err->msg);
    }
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
    return rc;
}

void
oauth_reject(struct oauth *o, const struct config_system *sys, const char *value)
{
    struct oauth_sys *s = o != NULL ? find(o, sys) : NULL;

    if (s == NULL || value == NULL || strncmp(value, "Bearer ", 7) != 0)
        return;
    pthread_mutex_lock(&o->mu);
    /* Only the token that drew the 401: another thread may have replaced it. */
    if (s->access != NULL && strcmp(s->access, value + 7) == 0) {
        wipe_free(s->access);
        s->access = NULL;
        s->expires_at_ms = 0;
        log_info(&(struct log_ctx){.system = sys->name},
                 "oauth2: the access token was refused (401); fetching another");
    }
    pthread_mutex_unlock(&o->mu);
}

int64_t
oauth_refresh_count(struct oauth *o, const struct config_system *sys)
{
    struct oauth_sys *s = o != NULL ? find(o, sys) : NULL;
    int64_t n;

    if (s == NULL)
        return 0;
    pthread_mutex_lock(&o->mu);
    n = s->refreshes;
    pthread_mutex_unlock(&o->mu);
    return n;
}

/* ---- the consent step ---- */

int
oauth_consent_url(const struct config_system *sys, const char *redirect_uri, const char *state,
                  char **out, struct error *err)
{
    const struct config_oauth2 *cfg = &sys->oauth2;
    cJSON *q;
    char *query = NULL, *base;
    int rc;

    *out = NULL;
    if (!cfg->enabled || cfg->authorize_url == NULL)
        return error_set(err, ERROR_INVALID,
                         "%s has no auth.oauth2.authorize_url; hint: concord auth needs the "
                         "provider's consent page",
                         sys->name);
    q = cJSON_CreateObject();
    cJSON_AddStringToObject(q, "response_type", "code");
    cJSON_AddStringToObject(q, "client_id", cfg->client_id);
    cJSON_AddStringToObject(q, "redirect_uri", redirect_uri);
    if (cfg->scope != NULL)
        cJSON_AddStringToObject(q, "scope", cfg->scope);
    cJSON_AddStringToObject(q, "state", state);
    /* Google gives a refresh token only for offline access, and again
     * only on the consent screen; other providers ignore both. */
    cJSON_AddStringToObject(q, "access_type", "offline");
    cJSON_AddStringToObject(q, "prompt", "consent");
    rc = http_form_encode(q, 8192, &query, err);
    cJSON_Delete(q);
    if (rc == -1)
        return -1;
    base = cfg->authorize_url[0] == '/' ? xasprintf("%s%s", sys->base_url, cfg->authorize_url)
                                        : xstrdup(cfg->authorize_url);
    *out = xasprintf("%s%c%s", base, strchr(base, '?') != NULL ? '&' : '?', query);
    free(base);
    free(query);
    return 0;
}

int
oauth_exchange_code(const struct config *cfg, const struct config_system *sys, const char *code,
                    const char *redirect_uri, struct error *err)
{
    struct oauth *o;
    struct oauth_sys *s;
    cJSON *form, *answer = NULL;
    char *access = NULL;
    int64_t expires_at = 0;
    int rc = -1;

    if (oauth_new(cfg, &o, err) == -1)
        return -1;
    if (o == NULL || (s = find(o, sys)) == NULL) {
        oauth_free(o);
        return error_set(err, ERROR_INVALID, "%s has no auth.oauth2 section", sys->name);
    }
    form = cJSON_CreateObject();
    cJSON_AddStringToObject(form, "grant_type", "authorization_code");
    cJSON_AddStringToObject(form, "code", code);
    cJSON_AddStringToObject(form, "redirect_uri", redirect_uri);
    if (post_token(s, form, &answer, err) == 0) {
        if (cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(answer, "refresh_token")) == NULL)
            (void)error_set(err, ERROR_PERMANENT,
                            "the provider gave no refresh token; hint: ask for offline access "
                            "(Microsoft: the offline_access scope)");
        else
            rc = keep_answer(o, s, answer, NULL, SEED_CONSENT, &access, &expires_at, err);
    }
    wipe_free(access);
    cJSON_Delete(answer);
    cJSON_Delete(form);
    oauth_free(o);
    return rc;
}
