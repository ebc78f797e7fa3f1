/* SPDX-License-Identifier: MIT */

/*
 * The admin API: JSON over HTTP under /api/, served by the daemon
 * (docs/admin-api.md; docs/openapi.json describes every route of the table
 * below, and tests/unit/test_admin.c checks that the two agree).
 *
 * Every request shows a bearer token of admin.tokens; the token is hashed
 * and compared with every configured one in constant time, and its name is
 * who the audit log says acted. On the webhooks' listener the API answers
 * only clients on this machine; admin.listen gives it a listener of its
 * own. Answers: 401 without a valid token (with WWW-Authenticate), 403 for
 * a remote client on the shared listener, 404 for unknown routes and ids,
 * 405 for a wrong method (with Allow), 400 with {"error": ...} for a bad
 * body, id or parameter.
 *
 * What a route reads or does is engine/admin.h's, the same code as the
 * CLI's. Each request opens its own store handle, as the CLI does; the
 * daemon's writer and delivery threads pick up what it wrote (a retried
 * job, a journaled correction, a pause) from the store. A plan talks to
 * the systems, so it runs on a thread of its own and the server's threads
 * stay free. Tokens never reach a log line or an answer.
 */

#include "daemon/daemon.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "engine/admin.h"
#include "engine/engine.h"
#include "engine/plan.h"
#include "http/http_server.h"
#include "store/store.h"

/* Bodies larger than this are refused (413) before they are read. */
#define ADMIN_MAX_BODY (1024 * 1024)

/* At most this many entries per GET /api/audit. */
#define ADMIN_AUDIT_MAX 1000

#define ADMIN_REALM "Bearer realm=\"concord admin\""

/* What the routes share; read-only once the server serves. */
struct daemon_admin {
    const struct config *cfg;
    struct engine *engine; /* the running daemon's (for its series); NULL in tests */
    int loopback_only;
    size_t token_count;
    unsigned char (*digests)[SHA256_DIGEST_LENGTH]; /* SHA-256 of each token, in config order */
};

/* One request, for its handler. */
struct api_call {
    const struct daemon_admin *admin;
    const struct http_server_request *req;
    struct store *st;
    struct admin_actor who;
    const char *param; /* the {id} or {name} of the path, NUL-terminated in param_buf */
    char param_buf[256];
    int64_t id;        /* the {id} of the path, parsed */
    cJSON *body;       /* NULL, or the body: an object */
    char missing[200]; /* what a handler that returns 0 did not find */
};

/*
 * A handler: 1 with *out the answer (200), 0 when what the path names is
 * not there (404, with c->missing), -1 with err (ERROR_INVALID: 400; else
 * 500).
 */
typedef int api_fn(struct api_call *c, cJSON **out, struct error *err);

struct api_route {
    const char *method;
    const char *path;        /* "/api/inbox/{id}/retry": {id} a positive integer, {name} a name */
    api_fn *fn;              /* NULL: the plan (start_plan()) */
    const char *const *keys; /* the body's allowed keys; NULL: no body is read */
};

/* ---- bodies and parameters ---- */

static char *
error_body(const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    char *text;

    cJSON_AddStringToObject(o, "error", msg);
    text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

/* A member of the body, or NULL. */
static const cJSON *
member(const struct api_call *c, const char *key)
{
    return c->body ? cJSON_GetObjectItemCaseSensitive(c->body, key) : NULL;
}

/* A string member into *out (NULL when absent). */
static int
opt_string(const struct api_call *c, const char *key, const char **out, struct error *err)
{
    const cJSON *v = member(c, key);

    *out = NULL;
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
        return error_set(err, ERROR_INVALID, "%s must be a non-empty string", key);
    *out = v->valuestring;
    return 0;
}

/* A boolean member into *out (0 when absent). */
static int
opt_bool(const struct api_call *c, const char *key, int *out, struct error *err)
{
    const cJSON *v = member(c, key);

    *out = 0;
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsBool(v))
        return error_set(err, ERROR_INVALID, "%s must be true or false", key);
    *out = cJSON_IsTrue(v);
    return 0;
}

/* A positive integer member into *out (0 when absent). */
static int
opt_id(const struct api_call *c, const char *key, int64_t *out, struct error *err)
{
    const cJSON *v = member(c, key);

    *out = 0;
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 9007199254740991.0 ||
        v->valuedouble != (double)(int64_t)v->valuedouble)
        return error_set(err, ERROR_INVALID, "%s must be a positive integer", key);
    *out = (int64_t)v->valuedouble;
    return 0;
}

/* A time member (RFC 3339 or an age such as "2h") into *out (0 when absent). */
static int
opt_time(const struct api_call *c, const char *key, int64_t *out, struct error *err)
{
    const char *text;

    *out = 0;
    if (opt_string(c, key, &text, err) == -1)
        return -1;
    if (text != NULL && admin_parse_time(text, clock_now_ms(), out) == -1)
        return error_set(err, ERROR_INVALID,
                         "%s: \"%.40s\" is no time; use 2026-11-26T05:00:00Z or an age (30m, 2h)",
                         key, text);
    return 0;
}

/* A yes-or-no query parameter: absent 0; "", "1", "true" 1; "0", "false" 0. */
static int
query_flag(const struct api_call *c, const char *name, int *out, struct error *err)
{
    const char *v = http_server_query(c->req, name);

    *out = v != NULL && (v[0] == '\0' || strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
    if (v != NULL && !*out && strcmp(v, "0") != 0 && strcmp(v, "false") != 0)
        return error_set(err, ERROR_INVALID, "?%s= takes 1, true, 0 or false", name);
    return 0;
}

/* A positive integer query parameter of at most max (def when absent). */
static int
query_int(const struct api_call *c, const char *name, int64_t def, int64_t max, int64_t *out,
          struct error *err)
{
    const char *v = http_server_query(c->req, name);
    char *end;
    long long n;

    *out = def;
    if (v == NULL)
        return 0;
    n = strtoll(v, &end, 10);
    if (*end != '\0' || end == v || n < 1 || n > max)
        return error_set(err, ERROR_INVALID, "?%s= takes a whole number from 1 to %" PRId64, name,
                         max);
    *out = n;
    return 0;
}

/* The answer of an action: its message, how many it touched, its record. */
static int
action_done(struct api_call *c, int rc, const struct admin_result *res, const char *action,
            cJSON **out)
{
    cJSON *o;

    if (rc != 1)
        return rc;
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "message", res->message);
    cJSON_AddNumberToObject(o, "count", (double)res->count);
    if (res->record_id)
        cJSON_AddNumberToObject(o, "record", (double)res->record_id);
    cJSON_AddStringToObject(o, "by", c->who.name);
    log_info(&(struct log_ctx){.request_id = c->req->request_id}, "admin API: %s by %s: %s", action,
             c->who.name, res->message);
    *out = o;
    return 1;
}

/* ---- reads ---- */

static int
get_status(struct api_call *c, cJSON **out, struct error *err)
{
    return admin_status_json(c->st, c->admin->cfg, out, err) == -1 ? -1 : 1;
}

static int
inbox_kind_of(const char *name, enum inbox_kind *out)
{
    for (int k = INBOX_FAILED; k <= INBOX_HELD; k++) {
        if (strcmp(name, inbox_kind_name((enum inbox_kind)k)) == 0) {
            *out = (enum inbox_kind)k;
            return 0;
        }
    }
    return -1;
}

static int
get_inbox(struct api_call *c, cJSON **out, struct error *err)
{
    const char *kind_name = http_server_query(c->req, "kind");
    enum inbox_kind kind = 0;
    int all;

    if (query_flag(c, "all", &all, err) == -1)
        return -1;
    if (kind_name != NULL && inbox_kind_of(kind_name, &kind) == -1)
        return error_set(err, ERROR_INVALID,
                         "?kind= takes failed, unknown, mapping, conflict or held, not \"%.40s\"",
                         kind_name);
    return admin_inbox_json(c->st, kind, !all, out, err) == -1 ? -1 : 1;
}

static int
list_kind(struct api_call *c, enum inbox_kind kind, cJSON **out, struct error *err)
{
    int all;

    if (query_flag(c, "all", &all, err) == -1)
        return -1;
    return admin_inbox_json(c->st, kind, !all, out, err) == -1 ? -1 : 1;
}

static int
get_conflicts(struct api_call *c, cJSON **out, struct error *err)
{
    return list_kind(c, INBOX_CONFLICT, out, err);
}

static int
get_held(struct api_call *c, cJSON **out, struct error *err)
{
    return list_kind(c, INBOX_HELD, out, err);
}

static int
get_entry(struct api_call *c, cJSON **out, struct error *err)
{
    (void)snprintf(c->missing, sizeof(c->missing), "no inbox entry %" PRId64, c->id);
    return admin_entry_detail_json(c->st, c->admin->cfg, c->id, out, err);
}

static int
get_record(struct api_call *c, cJSON **out, struct error *err)
{
    (void)snprintf(c->missing, sizeof(c->missing), "no record %" PRId64, c->id);
    return admin_record_json(c->st, c->id, out, err);
}

static int
get_history(struct api_call *c, cJSON **out, struct error *err)
{
    (void)snprintf(c->missing, sizeof(c->missing), "no record %" PRId64, c->id);
    return admin_history_json(c->st, c->id, out, err);
}

static int
get_changes(struct api_call *c, cJSON **out, struct error *err)
{
    (void)snprintf(c->missing, sizeof(c->missing), "no record %" PRId64, c->id);
    return admin_changes_json(c->st, c->id, out, err);
}

static int
get_explain(struct api_call *c, cJSON **out, struct error *err)
{
    (void)snprintf(c->missing, sizeof(c->missing), "no record %" PRId64, c->id);
    return admin_explain_json(c->st, c->admin->cfg, c->id, out, err);
}

static int
get_audit(struct api_call *c, cJSON **out, struct error *err)
{
    int64_t limit, before;

    if (query_int(c, "limit", 100, ADMIN_AUDIT_MAX, &limit, err) == -1 ||
        query_int(c, "before", 0, INT64_MAX, &before, err) == -1)
        return -1;
    return admin_audit_json(c->st, (int)limit, before, out, err) == -1 ? -1 : 1;
}

static int
get_runs(struct api_call *c, cJSON **out, struct error *err)
{
    struct admin_runs_filter f = {
        .automation = http_server_query(c->req, "automation"),
        .state = http_server_query(c->req, "state"),
    };
    int64_t limit;

    if (query_int(c, "limit", 50, ADMIN_AUDIT_MAX, &limit, err) == -1 ||
        query_int(c, "record", 0, INT64_MAX, &f.record_id, err) == -1)
        return -1;
    f.limit = (int)limit;
    return admin_runs_json(c->st, c->admin->cfg, &f, out, err) == -1 ? -1 : 1;
}

/* ---- actions ---- */

static const char *const no_keys[] = {NULL};
static const char *const skip_keys[] = {"reason", NULL};
static const char *const edit_keys[] = {"fields", NULL};
static const char *const resolve_keys[] = {"take", "value", "record", "new", NULL};
static const char *const retry_keys[] = {"all", "system", "error", "kind", "since", "until", NULL};
static const char *const approve_keys[] = {"all", "system", NULL};
static const char *const replay_keys[] = {"since", "system", NULL};

static int
post_retry(struct api_call *c, cJSON **out, struct error *err)
{
    struct admin_result res;

    (void)snprintf(c->missing, sizeof(c->missing), "no open inbox entry %" PRId64, c->id);
    return action_done(c, admin_retry(c->st, &c->who, c->id, &res, err), &res, "retry", out);
}

static int
post_retry_bulk(struct api_call *c, cJSON **out, struct error *err)
{
    struct admin_filter f = {0};
    struct admin_result res;

    if (opt_bool(c, "all", &f.is_all, err) == -1 || opt_string(c, "system", &f.system, err) == -1 ||
        opt_string(c, "error", &f.error, err) == -1 || opt_string(c, "kind", &f.kind, err) == -1 ||
        opt_time(c, "since", &f.since_ms, err) == -1 ||
        opt_time(c, "until", &f.until_ms, err) == -1)
        return -1;
    if (admin_retry_matching(c->st, &c->who, &f, &res, err) == -1)
        return -1;
    return action_done(c, 1, &res, "retry", out);
}

static int
post_skip(struct api_call *c, cJSON **out, struct error *err)
{
    struct admin_result res;
    const char *reason;

    if (opt_string(c, "reason", &reason, err) == -1)
        return -1;
    (void)snprintf(c->missing, sizeof(c->missing), "no open inbox entry %" PRId64, c->id);
    return action_done(c, admin_skip(c->st, &c->who, c->id, reason, &res, err), &res, "skip", out);
}

static int
edit(struct api_call *c, struct admin_edit *ed, cJSON **out, struct error *err)
{
    struct admin_result res;

    ed->fields = member(c, "fields");
    if (!cJSON_IsObject(ed->fields))
        return error_set(err, ERROR_INVALID, "fields must be an object of the record's fields");
    return action_done(c, admin_edit(c->st, c->admin->cfg, &c->who, ed, &res, err), &res, "edit",
                       out);
}

static int
post_edit_entry(struct api_call *c, cJSON **out, struct error *err)
{
    struct admin_edit ed = {.inbox_id = c->id};

    (void)snprintf(c->missing, sizeof(c->missing), "no inbox entry %" PRId64 " with a record",
                   c->id);
    return edit(c, &ed, out, err);
}

static int
post_edit_record(struct api_call *c, cJSON **out, struct error *err)
{
    struct admin_edit ed = {.record_id = c->id};

    (void)snprintf(c->missing, sizeof(c->missing), "no record %" PRId64, c->id);
    return edit(c, &ed, out, err);
}

static int
post_resolve(struct api_call *c, cJSON **out, struct error *err)
{
    struct admin_resolution how = {.inbox_id = c->id, .value = member(c, "value")};
    struct admin_result res;

    if (opt_string(c, "take", &how.take, err) == -1 ||
        opt_id(c, "record", &how.record_id, err) == -1 ||
        opt_bool(c, "new", &how.is_new, err) == -1)
        return -1;
    (void)snprintf(c->missing, sizeof(c->missing), "no open conflict %" PRId64, c->id);
    return action_done(c, admin_resolve(c->st, c->admin->cfg, &c->who, &how, &res, err), &res,
                       "resolve", out);
}

static int
post_approve(struct api_call *c, cJSON **out, struct error *err)
{
    struct admin_result res;

    (void)snprintf(c->missing, sizeof(c->missing), "no held delete %" PRId64, c->id);
    return action_done(c, admin_approve(c->st, &c->who, c->id, NULL, &res, err), &res, "approve",
                       out);
}

static int
post_approve_bulk(struct api_call *c, cJSON **out, struct error *err)
{
    struct admin_result res;
    const char *system;
    int all, rc;

    if (opt_bool(c, "all", &all, err) == -1 || opt_string(c, "system", &system, err) == -1)
        return -1;
    if (all == (system != NULL))
        return error_set(err, ERROR_INVALID, "give either system or all: true");
    rc = admin_approve(c->st, &c->who, 0, system, &res, err);
    if (rc == -1)
        return -1;
    return action_done(c, 1, &res, "approve", out); /* none held is no error here */
}

static int
post_replay(struct api_call *c, cJSON **out, struct error *err)
{
    struct admin_filter f = {0};
    struct admin_result res;

    if (opt_time(c, "since", &f.since_ms, err) == -1 ||
        opt_string(c, "system", &f.system, err) == -1)
        return -1;
    if (admin_replay(c->st, c->admin->cfg, &c->who, &f, &res, err) == -1)
        return -1;
    return action_done(c, 1, &res, "replay", out);
}

static int
post_restore(struct api_call *c, cJSON **out, struct error *err)
{
    struct admin_result res;

    (void)snprintf(c->missing, sizeof(c->missing), "no record %" PRId64, c->id);
    return action_done(c, admin_restore(c->st, &c->who, c->id, &res, err), &res, "restore", out);
}

static int
post_pause(struct api_call *c, cJSON **out, struct error *err)
{
    struct admin_result res;

    (void)snprintf(c->missing, sizeof(c->missing), "no system %s", c->param);
    return action_done(c, admin_pause(c->st, c->admin->cfg, &c->who, c->param, &res, err), &res,
                       "pause", out);
}

static int
post_resume(struct api_call *c, cJSON **out, struct error *err)
{
    struct admin_result res;

    (void)snprintf(c->missing, sizeof(c->missing), "no system %s", c->param);
    return action_done(c, admin_resume(c->st, c->admin->cfg, &c->who, c->param, &res, err), &res,
                       "resume", out);
}

static int
read_request(struct api_call *c, int reconcile, cJSON **out, struct error *err)
{
    struct admin_result res;

    (void)snprintf(c->missing, sizeof(c->missing), "no polled collection %s", c->param);
    return action_done(
        c, admin_read_request(c->st, c->admin->cfg, &c->who, c->param, reconcile, &res, err), &res,
        reconcile ? "reconcile" : "poll", out);
}

static int
post_poll(struct api_call *c, cJSON **out, struct error *err)
{
    return read_request(c, 0, out, err);
}

static int
post_reconcile(struct api_call *c, cJSON **out, struct error *err)
{
    return read_request(c, 1, out, err);
}

/* The last hour of deliveries and lag, sampled by the running daemon. */
static int
get_series(struct api_call *c, cJSON **out, struct error *err)
{
    char *text;

    if (c->admin->engine == NULL)
        return error_set(err, ERROR_INVALID, "no running daemon here");
    text = engine_series_json(c->admin->engine);
    *out = cJSON_Parse(text);
    free(text);
    return *out != NULL ? 1 : error_set(err, ERROR_INTERNAL, "the series did not encode");
}

static const struct api_route routes[] = {
    {"GET", "/api/series", get_series, NULL},
    {"GET", "/api/status", get_status, NULL},
    {"GET", "/api/inbox", get_inbox, NULL},
    {"GET", "/api/inbox/{id}", get_entry, NULL},
    {"POST", "/api/inbox/{id}/retry", post_retry, no_keys},
    {"POST", "/api/inbox/{id}/skip", post_skip, skip_keys},
    {"POST", "/api/inbox/{id}/edit", post_edit_entry, edit_keys},
    {"POST", "/api/inbox/{id}/resolve", post_resolve, resolve_keys},
    {"POST", "/api/inbox/{id}/approve", post_approve, no_keys},
    {"POST", "/api/retry", post_retry_bulk, retry_keys},
    {"POST", "/api/approve", post_approve_bulk, approve_keys},
    {"POST", "/api/replay", post_replay, replay_keys},
    {"GET", "/api/conflicts", get_conflicts, NULL},
    {"GET", "/api/held", get_held, NULL},
    {"GET", "/api/records/{id}", get_record, NULL},
    {"GET", "/api/records/{id}/history", get_history, NULL},
    {"GET", "/api/records/{id}/changes", get_changes, NULL},
    {"GET", "/api/records/{id}/explain", get_explain, NULL},
    {"POST", "/api/records/{id}/edit", post_edit_record, edit_keys},
    {"POST", "/api/records/{id}/restore", post_restore, no_keys},
    {"POST", "/api/systems/{name}/pause", post_pause, no_keys},
    {"POST", "/api/systems/{name}/resume", post_resume, no_keys},
    {"POST", "/api/collections/{name}/poll", post_poll, no_keys},
    {"POST", "/api/collections/{name}/reconcile", post_reconcile, no_keys},
    {"GET", "/api/plan", NULL, NULL}, /* on a thread of its own: start_plan() */
    {"GET", "/api/audit", get_audit, NULL},
    {"GET", "/api/runs", get_runs, NULL},
};

int
daemon_admin_route(size_t i, const char **method, const char **path)
{
    if (i >= ARRAY_COUNT(routes))
        return 0;
    *method = routes[i].method;
    *path = routes[i].path;
    return 1;
}

/* ---- routing ---- */

/* Whether path matches pattern; the {id} or {name} segment goes to c. */
static int
path_matches(const char *pattern, const char *path, struct api_call *c)
{
    while (*pattern != '\0') {
        if (*pattern == '{') {
            size_t n = strcspn(path, "/");
            const char *close = strchr(pattern, '}');

            if (n == 0 || n >= sizeof(c->param_buf) || close == NULL)
                return 0;
            memcpy(c->param_buf, path, n);
            c->param_buf[n] = '\0';
            c->param = c->param_buf;
            pattern = close + 1;
            path += n;
            continue;
        }
        if (*pattern++ != *path++)
            return 0;
    }
    return *path == '\0';
}

/* The route for the request: NULL with *status 404 or 405 (and allow
 * filled with the methods the path takes). */
static const struct api_route *
find(struct api_call *c, const char *method, const char *path, int *status, char *allow,
     size_t allow_len)
{
    allow[0] = '\0';
    *status = 404;
    for (size_t i = 0; i < ARRAY_COUNT(routes); i++) {
        if (!path_matches(routes[i].path, path, c))
            continue;
        if (strcmp(routes[i].method, method) == 0)
            return &routes[i];
        *status = 405;
        (void)snprintf(allow + strlen(allow), allow_len - strlen(allow), "%s%s",
                       allow[0] ? ", " : "", routes[i].method);
    }
    return NULL;
}

/* The token's name, or NULL. Every configured token is compared, always,
 * in constant time: the answer's timing tells nothing of a token. */
static const char *
authenticate(const struct daemon_admin *a, const struct http_server_request *req, int *has_token)
{
    const char *auth = http_server_header(req, "Authorization");
    unsigned char digest[SHA256_DIGEST_LENGTH];
    const char *token, *name = NULL;

    *has_token = auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0;
    if (!*has_token)
        return NULL;
    token = auth + 7;
    while (*token == ' ')
        token++;
    SHA256((const unsigned char *)token, strlen(token), digest);
    for (size_t i = 0; i < a->token_count; i++) {
        if (CRYPTO_memcmp(digest, a->digests[i], sizeof(digest)) == 0)
            name = a->cfg->admin.tokens[i].name;
    }
    OPENSSL_cleanse(digest, sizeof(digest));
    return name;
}

/* Check and parse the body of a route that reads one. */
static int
parse_body(struct api_call *c, const struct api_route *r, struct error *err)
{
    const cJSON *k;

    if (c->req->body_len == 0)
        return 0;
    c->body = cJSON_ParseWithLength(c->req->body, c->req->body_len);
    if (!cJSON_IsObject(c->body))
        return error_set(err, ERROR_INVALID, "the body is not a JSON object");
    cJSON_ArrayForEach(k, c->body)
    {
        int known = 0;

        for (const char *const *p = r->keys; *p != NULL; p++)
            known |= strcmp(*p, k->string) == 0;
        if (!known)
            return error_set(err, ERROR_INVALID, "unknown key \"%.40s\" in the body", k->string);
    }
    return 0;
}

/* Check the {id} of the path, when the route has one. */
static int
parse_id(struct api_call *c, const struct api_route *r, struct error *err)
{
    char *end;
    long long v;

    if (strstr(r->path, "{id}") == NULL)
        return 0;
    v = strtoll(c->param, &end, 10);
    if (*end != '\0' || v <= 0 || c->param[0] == '+' || c->param[0] == ' ')
        return error_set(err, ERROR_INVALID, "\"%.40s\" is not an id: ids are positive integers",
                         c->param);
    c->id = v;
    return 0;
}

/* Answer a handler's outcome. */
static void
answer(struct http_server_reply *reply, const struct api_call *c, int rc, cJSON *out,
       const struct error *err)
{
    char *text;

    if (rc == 1) {
        text = cJSON_PrintUnformatted(out);
        cJSON_Delete(out);
        http_server_reply_finish(reply, 200, text);
    } else if (rc == 0) {
        http_server_reply_finish(reply, 404,
                                 error_body(c->missing[0] ? c->missing : "no such thing"));
    } else if (err->kind == ERROR_INVALID) {
        http_server_reply_finish(reply, 400, error_body(err->msg));
    } else {
        log_error(&(struct log_ctx){.request_id = c->req->request_id}, "admin API %s %s: %s",
                  c->req->method, c->req->path, err->msg);
        http_server_reply_finish(reply, 500, error_body(err->msg));
    }
}

/* ---- the plan, on its own thread ---- */

struct plan_job {
    const struct config *cfg;
    char *scope;
    struct http_server_reply *reply;
    char request_id[24];
};

static void *
plan_thread(void *arg)
{
    struct plan_job *job = arg;
    struct http_server_reply *reply = job->reply;
    struct error err = {0};
    struct engine_plan p;
    char *text;
    int status = 200;

    if (engine_plan(job->cfg, job->scope, &p, &err) == -1) {
        status = err.kind == ERROR_INVALID ? 400 : 500;
        text = error_body(err.msg);
        if (status == 500)
            log_error(&(struct log_ctx){.request_id = job->request_id}, "admin API plan: %s",
                      err.msg);
    } else {
        cJSON *o = admin_plan_json(&p);

        text = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        engine_plan_fini(&p);
    }
    free(job->scope);
    free(job);
    /* Last: the server may be closed once every reply is finished. */
    http_server_reply_finish(reply, status, text);
    return NULL;
}

static void
start_plan(const struct api_call *c, struct http_server_reply *reply)
{
    const char *scope = http_server_query(c->req, "scope");
    struct plan_job *job = xcalloc(1, sizeof(*job));
    pthread_attr_t attr;
    pthread_t t;
    int rc;

    job->cfg = c->admin->cfg;
    job->scope = scope != NULL && scope[0] != '\0' ? xstrdup(scope) : NULL;
    job->reply = reply;
    (void)snprintf(job->request_id, sizeof(job->request_id), "%s", c->req->request_id);
    if (pthread_attr_init(&attr) != 0) {
        plan_thread(job);
        return;
    }
    (void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&t, &attr, plan_thread, job);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        plan_thread(job); /* no thread to be had: run it here */
}

/* ---- the handler of /api/ ---- */

static void
refuse(struct http_server_reply *reply, int status, const char *header, const char *value,
       const char *msg)
{
    if (header != NULL)
        http_server_reply_header(reply, header, value);
    http_server_reply_finish(reply, status, error_body(msg));
}

/* Run a routed request whose token, path and method are good. */
static void
serve(struct api_call *c, const struct api_route *r, struct http_server_reply *reply)
{
    struct error err = {0};
    cJSON *out = NULL;
    int rc = -1;

    if (parse_id(c, r, &err) == -1 || (r->keys != NULL && parse_body(c, r, &err) == -1)) {
        answer(reply, c, -1, NULL, &err);
        return;
    }
    if (r->fn == NULL) {
        start_plan(c, reply);
        return;
    }
    if (store_open(&c->st, c->admin->cfg->store_url, &err) == 0)
        rc = r->fn(c, &out, &err);
    store_close(c->st);
    c->st = NULL;
    answer(reply, c, rc, out, &err);
}

static void
on_api(void *user, const struct http_server_request *req, struct http_server_reply *reply)
{
    const struct daemon_admin *a = user;
    struct api_call c = {.admin = a, .req = req, .param = ""};
    const struct api_route *r;
    char allow[64];
    int status, has_token;

    if (a->loopback_only && !http_server_peer_is_loopback(req)) {
        refuse(reply, 403, NULL, NULL,
               "the admin API answers only this machine on this listener; give it "
               "admin.listen to reach it from elsewhere");
        return;
    }
    c.who.name = authenticate(a, req, &has_token);
    c.who.via = "api";
    if (c.who.name == NULL) {
        log_warn(&(struct log_ctx){.request_id = req->request_id}, "admin API: refused %s %s: %s",
                 req->method, req->path,
                 has_token ? "a token that is not in admin.tokens" : "no bearer token");
        refuse(reply, 401, "WWW-Authenticate",
               has_token ? ADMIN_REALM ", error=\"invalid_token\"" : ADMIN_REALM,
               has_token ? "the token is not one of admin.tokens"
                         : "the admin API needs Authorization: Bearer TOKEN");
        return;
    }
    r = find(&c, req->method, req->path, &status, allow, sizeof(allow));
    if (r == NULL) {
        if (status == 405)
            refuse(reply, 405, "Allow", allow, "method not allowed");
        else
            refuse(reply, 404, NULL, NULL, "no such path in the admin API");
        return;
    }
    serve(&c, r, reply);
    cJSON_Delete(c.body);
}

int
daemon_admin_routes(struct http_server *srv, const struct config *cfg, struct engine *engine,
                    int loopback_only, void **state, struct error *err)
{
    struct daemon_admin *a = xcalloc(1, sizeof(*a));

    *state = a;
    a->cfg = cfg;
    a->engine = engine;
    a->loopback_only = loopback_only;
    a->token_count = cfg->admin.token_count;
    a->digests = xcalloc(a->token_count + 1, sizeof(*a->digests));
    for (size_t i = 0; i < a->token_count; i++) {
        const struct secret *s = &cfg->admin.tokens[i].secret;

        SHA256((const unsigned char *)secret_bytes(s), s->len, a->digests[i]);
    }
    return http_server_route_prefix(srv, "/api/", ADMIN_MAX_BODY, on_api, a, err);
}

void
daemon_admin_free(void *state)
{
    struct daemon_admin *a = state;

    if (a == NULL)
        return;
    OPENSSL_cleanse(a->digests, (a->token_count + 1) * sizeof(*a->digests));
    free(a->digests);
    free(a);
}
