/* SPDX-License-Identifier: MIT */

/*
 * Scheduled reads (collections.X.poll; docs/scheduled.md): read a
 * collection page by page from where its cursor stands, journal every
 * record that differs from what concord knows of its copy, and commit the
 * cursor with the changes of the page it covers, so a crash in the middle
 * of a long backfill resumes at the last committed page.
 *
 * A reconcile reads the collection whole and, once the read is complete,
 * journals the deletion of every linked copy it did not see; the delete
 * rules and the mass-delete guard apply. A read that failed or stopped part
 * way deletes nothing.
 *
 * Polled records are journaled as {"@poll": "sys.coll", "record": {...}}
 * (a deletion: {"@poll": ..., "@missing": "ext id"}) from the collection's
 * system, and merge.c takes them like webhooks of that collection.
 */

#include "engine/poll.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "connectors/oauth.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/retry.h"
#include "core/xmalloc.h"
#include "engine/engine_int.h"
#include "engine/shape.h"
#include "http/http_link.h"
#include "model/value.h"
#include "store/store.h"

/* The most an answer may hold. */
#define POLL_MAX_BODY (64u << 20)
/* How long a lease lasts; it is renewed with every page. */
#define POLL_LEASE_MS 120000

/* One answer, as the fetch callback left it. */
struct fetch {
    int done;
    enum http_outcome outcome;
    long status;
    char *body;
    char *link; /* the Link header, or NULL */
    char *retry_after;
    char *error;
    int second_spent;    /* X-HubSpot-RateLimit-Secondly-Remaining: 0 */
    long rl_remaining;   /* the answer's rate figures (engine_budget_figures()) */
    int64_t rl_reset_ms; /* clock_now_ms(); 0: none */
};

static void
fetch_done(void *user, const struct http_response *r)
{
    struct fetch *f = user;
    const char *link = http_response_header(r, "Link");
    const char *second = http_response_header(r, "X-HubSpot-RateLimit-Secondly-Remaining");

    f->outcome = r->outcome;
    f->status = r->status;
    f->body = xstrdup(r->body ? r->body : "");
    f->link = link ? xstrdup(link) : NULL;
    f->retry_after = r->retry_after ? xstrdup(r->retry_after) : NULL;
    f->second_spent = second != NULL && strcmp(second, "0") == 0;
    engine_budget_figures(r, clock_now_ms(), &f->rl_remaining, &f->rl_reset_ms);
    f->error = r->error ? xstrdup(r->error) : NULL;
    f->done = 1;
}

static void
fetch_fini(struct fetch *f)
{
    free(f->body);
    free(f->link);
    free(f->retry_after);
    free(f->error);
    memset(f, 0, sizeof(*f));
}

/* Wait ms (in steps, so a stop is not held up); 0, or -1 when told to stop. */
static int
poll_pause(const struct engine_poll_job *job, int64_t ms)
{
    for (int64_t left = ms; left > 0; left -= 100) {
        struct timespec ts = {0, (long)(left < 100 ? left : 100) * 1000 * 1000};

        if (job->stop != NULL && atomic_load(job->stop))
            return -1;
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* Whether the system's config says this status means "rate limited". */
static int
rate_limited(const struct config_system *sys, long status)
{
    if (status == 429)
        return 1;
    for (size_t i = 0; i < sys->rate_limit.limited_status_count; i++) {
        if (sys->rate_limit.limited_status[i] == status)
            return 1;
    }
    return 0;
}

/* How many times one request is asked again after "rate limited", and how
 * long it may wait in all, before the read stops (the next poll goes on). */
#define POLL_RATE_TRIES   20
#define POLL_RATE_WAIT_MS 120000

/* The longest a read waits for its system's request budget; a longer hold
 * (a rate-limited answer's block) ends the read, and the next poll asks. */
#define POLL_BUDGET_WAIT_MS 5000

static int fetch_once(const struct engine_poll_job *job, const char *method, const char *url,
                      const char *body, struct fetch *f, struct error *err);

/*
 * Wait for a token of the system's request budget (the daemon's reads:
 * job->sys), so that reads, deliveries and automations together keep to
 * the system's rate. Returns 0, or -1 with f answered "not sent" when the
 * hold is too long or the reader is stopping.
 */
static int
budget_wait(const struct engine_poll_job *job, struct fetch *f)
{
    int64_t hold;

    while (job->sys != NULL && (hold = engine_budget_take_rate(job->sys, clock_mono_ms())) > 0) {
        if (hold > POLL_BUDGET_WAIT_MS || poll_pause(job, hold) == -1) {
            f->done = 1;
            f->outcome = HTTP_OUTCOME_NOT_SENT;
            f->status = 0;
            f->body = xstrdup("");
            f->error = xasprintf("not sent: %s's request budget holds requests back for %lld ms",
                                 job->cc->system->name, (long long)hold);
            return -1;
        }
    }
    return 0;
}

/* What the server said is left of its budget (X-RateLimit-Remaining and
 * -Reset, or HubSpot's) holds reads, deliveries and automations alike: the
 * system's other clients spend it too. */
static void
note_figures(const struct engine_poll_job *job, const struct fetch *f)
{
    int64_t now = clock_now_ms(), mono = clock_mono_ms();

    if (job->sys == NULL || f->outcome != HTTP_OUTCOME_RESPONSE || f->rl_reset_ms <= 0)
        return;
    engine_budget_note(job->sys,
                       &(struct engine_budget_answer){.remaining = f->rl_remaining,
                                                      .reset_at_ms = mono + (f->rl_reset_ms - now),
                                                      .breaker_ok = -1},
                       mono);
}

/*
 * One request of a read. A "rate limited" answer is waited out (its
 * Retry-After, or a second, at most a minute) and asked again, up to
 * POLL_RATE_TRIES times and POLL_RATE_WAIT_MS in all; an answer that spent
 * the second's budget
 * (HubSpot's search: 5 a second) makes the next request wait a second. A
 * 401 to an OAuth2 system's request is asked again once, with a new token.
 */
static int
fetch_req(const struct engine_poll_job *job, const char *method, const char *url, const char *body,
          struct fetch *f, struct error *err)
{
    const struct config_system *sys = job->cc->system;
    int64_t waited = 0;
    int reauthed = 0;

    for (int tries = 0;; tries++) {
        int64_t wait = 1000;

        if (budget_wait(job, f) == -1)
            return 0; /* held back: f says why */
        if (fetch_once(job, method, url, body, f, err) == -1)
            return -1;
        note_figures(job, f);
        /* A provider may drop an access token before its expires_in (a
         * password change, a revoked session): fetch_once() dropped it, so
         * one more try goes with a new one. Left to the next poll, a pushed
         * change would wait for the poll's interval (an hour for a
         * calendar). */
        if (f->outcome == HTTP_OUTCOME_RESPONSE && f->status == 401 && sys->oauth2.enabled &&
            !reauthed) {
            reauthed = 1;
            fetch_fini(f);
            continue;
        }
        if (f->outcome == HTTP_OUTCOME_RESPONSE && f->status >= 200 && f->status < 300 &&
            f->second_spent)
            (void)poll_pause(job, 1000);
        if (f->outcome != HTTP_OUTCOME_RESPONSE || !rate_limited(sys, f->status) ||
            tries + 1 >= POLL_RATE_TRIES)
            return 0;
        if (f->retry_after != NULL &&
            retry_after_parse(f->retry_after, clock_now_ms(), &wait) == -1)
            wait = 1000;
        wait = wait < 100 ? 100 : wait > 60000 ? 60000 : wait;
        if (job->sys != NULL) {
            /* Deliveries and automations hold back too. */
            struct engine_budget_answer a = {
                .block_until_ms = clock_mono_ms() + wait, .remaining = -1, .breaker_ok = -1};

            engine_budget_note(job->sys, &a, clock_mono_ms());
        }
        if (waited + wait > POLL_RATE_WAIT_MS)
            return 0;
        waited += wait;
        log_info(&(struct log_ctx){.system = sys->name, .collection = job->cc->name},
                 "%s %s: rate limited (HTTP %ld); asking again in %lld ms", method, job->cc->name,
                 f->status, (long long)wait);
        if (poll_pause(job, wait) == -1)
            return 0; /* stopping: the 429 stands as the answer */
        fetch_fini(f);
    }
}

static int
fetch(const struct engine_poll_job *job, const char *url, struct fetch *f, struct error *err)
{
    return fetch_req(job, "GET", url, NULL, f, err);
}

int
engine_poll_call(const struct engine_poll_job *job, const char *method, const char *url,
                 const char *body, long *status, char **answer, char **error, struct error *err)
{
    struct fetch f;

    *status = 0;
    *answer = *error = NULL;
    if (fetch_req(job, method, url, body, &f, err) == -1)
        return -1;
    *status = f.outcome == HTTP_OUTCOME_RESPONSE ? f.status : 0;
    *answer = f.body;
    *error = f.error;
    f.body = f.error = NULL;
    fetch_fini(&f);
    return 0;
}

/* A shaped collection's extra GET (shape.h), through fetch(). */
static int
shape_get(void *user, const char *url, struct shape_answer *out, struct error *err)
{
    struct fetch f;

    if (fetch(user, url, &f, err) == -1)
        return -1;
    out->status = f.outcome == HTTP_OUTCOME_RESPONSE ? f.status : 0;
    out->body = f.body;
    out->error = f.error;
    f.body = f.error = NULL;
    fetch_fini(&f);
    return 0;
}

static int
fetch_once(const struct engine_poll_job *job, const char *method, const char *url, const char *body,
           struct fetch *f, struct error *err)
{
    const struct config_system *sys = job->cc->system;
    struct http_header headers[16];
    char *bearer = NULL;
    size_t n = 0;
    int rc;

    for (size_t i = 0; i < sys->auth_header_count && n < 15; i++, n++) {
        headers[n].name = sys->auth_headers[i].name;
        headers[n].value = secret_bytes(&sys->auth_headers[i].value);
    }
    if (sys->oauth2.enabled) {
        if (job->oauth == NULL)
            return error_set(err, ERROR_INTERNAL, "%s: no OAuth2 token cache", sys->name);
        if (oauth_header(job->oauth, sys, &bearer, err) == -1)
            return -1;
        headers[n].name = "Authorization";
        headers[n++].value = bearer;
    }
    struct http_request req = {
        .method = method,
        .url = url,
        .headers = headers,
        .header_count = n,
        .body = body,
        .body_len = body != NULL ? strlen(body) : 0,
        .timeout_ms = sys->timeout_ms,
        .max_body = POLL_MAX_BODY,
        .done = fetch_done,
        .user = f,
    };
    memset(f, 0, sizeof(*f));
    log_trace(LOG_TRACE_POLL, &(struct log_ctx){.system = sys->name, .collection = job->cc->name},
              "-> %s %s", method,
              strncmp(url, sys->base_url, strlen(sys->base_url)) == 0 ? url + strlen(sys->base_url)
                                                                      : "(another host)");
    rc = http_client_submit(job->http, &req, err);
    while (rc == 0 && !f->done)
        (void)http_client_run(job->http, 100);
    /* A refused token: the next read fetches another. */
    if (rc == 0 && f->outcome == HTTP_OUTCOME_RESPONSE && f->status == 401 && bearer != NULL)
        oauth_reject(job->oauth, sys, bearer);
    oauth_value_free(bearer);
    if (rc == 0)
        log_trace(
            LOG_TRACE_POLL, &(struct log_ctx){.system = sys->name, .collection = job->cc->name},
            "<- %s%ld, %zu bytes", f->outcome == HTTP_OUTCOME_RESPONSE ? "HTTP " : "no answer ",
            f->outcome == HTTP_OUTCOME_RESPONSE ? f->status : (long)f->outcome,
            f->body != NULL ? strlen(f->body) : 0);
    return rc;
}

/* Append "name=value" (value URL-encoded) to a query being built. */
static void
query_add(char **q, const char *name, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(value);
    char *enc = xmalloc(len * 3 + 1), *p = enc, *next;

    for (const unsigned char *s = (const unsigned char *)value; *s; s++) {
        if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
            *s == '-' || *s == '_' || *s == '.' || *s == '~') {
            *p++ = (char)*s;
        } else {
            *p++ = '%';
            *p++ = hex[*s >> 4];
            *p++ = hex[*s & 15];
        }
    }
    *p = '\0';
    next = xasprintf("%s%s%s=%s", *q ? *q : "", *q ? "&" : "", name, enc);
    free(*q);
    free(enc);
    *q = next;
}

/* The watermark of updated_since as the query writes it. */
static char *
format_since(const struct config_poll *pc, int64_t ms)
{
    if (pc->cursor_format != NULL && strcmp(pc->cursor_format, "s") == 0)
        return xasprintf("%lld", (long long)(ms / 1000));
    if (pc->cursor_format != NULL && strcmp(pc->cursor_format, "iso") == 0) {
        char buf[40];

        return xstrdup(clock_format_ms(ms, buf, sizeof(buf)));
    }
    return xasprintf("%lld", (long long)ms);
}

/* Where one read stands: what the next request asks for. */
struct read_state {
    int64_t wm_ts; /* UPDATED_SINCE: the watermark, or -1 */
    char *wm_id;
    char *token;     /* SYNC_TOKEN: the token the read started from, or NULL (full) */
    char *next_tok;  /* SYNC_TOKEN: the token the last page gave */
    char *page_cur;  /* CURSOR/LINK: the next page's cursor or URL; NULL: the first page */
    int64_t page_no; /* NUMBER: the next page; OFFSET: the next offset */
    int64_t since;   /* UPDATED_SINCE: the watermark this read asks from (fixed for all
                        its pages, or its page numbers would shift), or -1 */
    int started;     /* a page of this read was committed (a resume continues it) */
};

static void
read_state_fini(struct read_state *r)
{
    free(r->wm_id);
    free(r->token);
    free(r->next_tok);
    free(r->page_cur);
    memset(r, 0, sizeof(*r));
}

static void
read_state_load(const struct config_poll *pc, const char *text, struct read_state *r)
{
    cJSON *c = text ? cJSON_Parse(text) : NULL;
    const cJSON *v;

    memset(r, 0, sizeof(*r));
    r->wm_ts = -1;
    r->since = -1;
    r->page_no = pc->page == CONFIG_PAGE_OFFSET ? 0 : 1;
    if ((v = cJSON_GetObjectItemCaseSensitive(c, "ts")) && cJSON_IsNumber(v))
        r->wm_ts = (int64_t)v->valuedouble;
    if ((v = cJSON_GetObjectItemCaseSensitive(c, "id")) && cJSON_IsString(v))
        r->wm_id = xstrdup(v->valuestring);
    if ((v = cJSON_GetObjectItemCaseSensitive(c, "token")) && cJSON_IsString(v))
        r->token = xstrdup(v->valuestring);
    if ((v = cJSON_GetObjectItemCaseSensitive(c, "next_token")) && cJSON_IsString(v))
        r->next_tok = xstrdup(v->valuestring);
    if ((v = cJSON_GetObjectItemCaseSensitive(c, "page")) && cJSON_IsString(v)) {
        r->page_cur = xstrdup(v->valuestring);
        r->started = 1;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(c, "page_no")) && cJSON_IsNumber(v)) {
        r->page_no = (int64_t)v->valuedouble;
        r->started = 1;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(c, "since")) && cJSON_IsNumber(v))
        r->since = (int64_t)v->valuedouble;
    else
        r->since = r->wm_ts; /* a new read asks from the watermark */
    cJSON_Delete(c);
}

/* The cursor to store: done says the read ended (no page to resume). */
static char *
read_state_text(const struct config_poll *pc, const struct read_state *r, int done)
{
    cJSON *c = cJSON_CreateObject();
    char *text;

    if ((pc->cursor == CONFIG_CURSOR_UPDATED_SINCE || pc->cursor == CONFIG_CURSOR_SEARCH) &&
        r->wm_ts >= 0) {
        cJSON_AddNumberToObject(c, "ts", (double)r->wm_ts);
        if (r->wm_id)
            cJSON_AddStringToObject(c, "id", r->wm_id);
    }
    if (pc->cursor == CONFIG_CURSOR_SYNC_TOKEN || pc->cursor == CONFIG_CURSOR_DELTA_LINK ||
        pc->cursor == CONFIG_CURSOR_EVENTS) {
        const char *tok = done && r->next_tok ? r->next_tok : r->token;

        if (tok)
            cJSON_AddStringToObject(c, "token", tok);
        if (!done && r->next_tok)
            cJSON_AddStringToObject(c, "next_token", r->next_tok);
    }
    if (!done && r->page_cur)
        cJSON_AddStringToObject(c, "page", r->page_cur);
    if (!done && r->since >= 0)
        cJSON_AddNumberToObject(c, "since", (double)r->since);
    if (!done && (pc->page == CONFIG_PAGE_NUMBER || pc->page == CONFIG_PAGE_OFFSET ||
                  pc->cursor == CONFIG_CURSOR_SEARCH))
        cJSON_AddNumberToObject(c, "page_no", (double)r->page_no);
    text = cJSON_GetArraySize(c) > 0 ? value_canonical_text(c) : NULL;
    cJSON_Delete(c);
    return text;
}

/*
 * The list's path as this request sends it: each "{now-30d}" a time
 * (RFC 3339, UTC, seconds), and with a sync token the parameters the
 * system refuses beside one (poll.token_drop) left out.
 */
static char *
list_path(const struct config_poll *pc, int with_token)
{
    struct buf b;
    const char *p = pc->list.path, *q = strchr(p, '?');

    buf_init(&b, 64 * 1024);
    while (*p != '\0') {
        const char *end = *p == '{' ? strchr(p, '}') : NULL;
        int64_t off;
        char when[40];

        if (q != NULL && p > q && (*(p - 1) == '?' || *(p - 1) == '&') && with_token) {
            size_t n = strcspn(p, "=&");
            int drop = 0;

            for (size_t i = 0; i < pc->token_drop_count; i++)
                drop |= strlen(pc->token_drop[i]) == n && strncmp(pc->token_drop[i], p, n) == 0;
            if (drop) {
                p += strcspn(p, "&");
                p += *p == '&';
                continue;
            }
        }
        if (end != NULL && config_now_offset(p + 1, (size_t)(end - p - 1), &off) == 0) {
            (void)clock_format_ms((clock_now_ms() + off) / 1000 * 1000, when, sizeof(when));
            if (buf_puts(&b, when) == -1)
                break;
            p = end + 1;
            continue;
        }
        if (buf_append(&b, p, 1) == -1)
            break;
        p++;
    }
    while (b.len > 0 && (b.data[b.len - 1] == '&' || b.data[b.len - 1] == '?'))
        b.data[--b.len] = '\0';
    return buf_take(&b);
}

/* The URL of the next request. */
static char *
next_url(const struct engine_poll_job *job, const struct read_state *r, int full)
{
    const struct config_poll *pc = &job->cc->poll;
    const char *base = job->cc->system->base_url;
    char *q = NULL, *url, num[32];

    if (pc->cursor == CONFIG_CURSOR_DELTA_LINK) {
        /* The next page's link, else the last round's delta link, else the
         * list: a new round that reads everything. */
        const char *u = r->page_cur ? r->page_cur : !full && r->token ? r->token : NULL;

        if (u == NULL) {
            char *list = list_path(pc, 0);

            url = xasprintf("%s%s", base, list);
            free(list);
            return url;
        }
        if (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0)
            return xstrdup(u);
        return xasprintf("%s%s", base, u);
    }
    if (pc->page == CONFIG_PAGE_LINK && r->page_cur != NULL) {
        if (strncmp(r->page_cur, "http://", 7) == 0 || strncmp(r->page_cur, "https://", 8) == 0)
            return xstrdup(r->page_cur);
        return xasprintf("%s%s", base, r->page_cur);
    }
    if (!full && pc->cursor == CONFIG_CURSOR_UPDATED_SINCE && r->since >= 0) {
        char *since = format_since(pc, r->since > pc->overlap_ms ? r->since - pc->overlap_ms : 0);

        query_add(&q, pc->cursor_param, since);
        free(since);
    }
    if (!full && pc->cursor == CONFIG_CURSOR_SYNC_TOKEN && r->token != NULL)
        query_add(&q, pc->cursor_param, r->token);
    if (pc->size_param != NULL && pc->page != CONFIG_PAGE_NONE) {
        (void)snprintf(num, sizeof(num), "%lld", (long long)pc->page_size);
        query_add(&q, pc->size_param, num);
    }
    if (pc->page == CONFIG_PAGE_NUMBER || pc->page == CONFIG_PAGE_OFFSET) {
        (void)snprintf(num, sizeof(num), "%lld", (long long)r->page_no);
        query_add(&q, pc->page_param, num);
    }
    if (pc->page == CONFIG_PAGE_CURSOR && r->page_cur != NULL)
        query_add(&q, pc->page_param, r->page_cur);
    char *list = list_path(pc, !full && pc->cursor == CONFIG_CURSOR_SYNC_TOKEN && r->token != NULL);

    url = xasprintf("%s%s%s%s", base, list, q ? (strchr(list, '?') ? "&" : "?") : "", q ? q : "");
    free(list);
    free(q);
    return url;
}

/* The external id of a listed record, as text, or NULL. */
static char *
item_ext_id(const struct config_collection *cc, const cJSON *item)
{
    char id[512];

    return engine_ext_id(cc->id_path, item, id, sizeof(id)) == 0 ? xstrdup(id) : NULL;
}

static int
journal_body(const struct engine_poll_job *job, cJSON *body, struct error *err)
{
    char *text = value_canonical_text(body);
    int64_t seq;
    int rc = 0;

    if (job->dry_run) {
        if (job->collect != NULL)
            job->collect(job->user, text);
    } else {
        rc = store_journal_add(job->st, job->cc->system->name, NULL, clock_now_ms(), text,
                               strlen(text), &seq, err);
    }
    free(text);
    return rc == -1 ? -1 : 0;
}

/*
 * Journal the news of copy ext, body (canonical text), with the copy noted.
 * Where dedup is set and the copy's newest entry says the same and waits
 * to be processed, nothing: a read that comes round again before the
 * writer caught up (a look-back over rows that share a time) journals
 * nothing twice. Only a SQL table's: there every entry about a copy is a
 * poll's and notes its copy, so that entry is the copy's newest news. A
 * webhook's entry notes its copy only once processed, and an A journaled,
 * then B by webhook, then A again, would lose the last A. Returns 0, 1
 * when it was journaled already, or -1.
 */
static int
journal_copy(const struct engine_poll_job *job, const char *ext, const char *body, int dedup,
             struct error *err)
{
    char *waiting = NULL;
    int rc = 0;

    if (job->dry_run) {
        if (job->collect != NULL)
            job->collect(job->user, body);
        return 0;
    }
    if (dedup && job->cc->system->kind != CONFIG_SYSTEM_HTTP)
        rc = store_journal_copy_waiting(job->st, job->cc->name, ext, &waiting, err);
    if (rc == 1 && strcmp(waiting, body) == 0) {
        free(waiting);
        return 1;
    }
    free(waiting);
    if (rc == -1)
        return -1;
    return store_journal_add_copy(job->st, job->cc->system->name, job->cc->name, ext,
                                  clock_now_ms(), body, strlen(body), err) == -1
               ? -1
               : 0;
}

/* Journal the deletion of copy ext (a read said it is gone). */
static int
journal_missing(const struct engine_poll_job *job, const char *ext, struct error *err)
{
    cJSON *body = cJSON_CreateObject();
    char *text;
    int rc;

    cJSON_AddStringToObject(body, "@poll", job->cc->name);
    cJSON_AddStringToObject(body, "@missing", ext);
    text = value_canonical_text(body);
    cJSON_Delete(body);
    /* With its copy noted: journal_copy()'s look at a copy's newest news. */
    rc = journal_copy(job, ext, text, 0, err);
    free(text);
    return rc;
}

/*
 * Take one page's records: those that differ from what concord knows of
 * their copy are journaled (none in a dry run), the rest counted as
 * unchanged. Moves the watermark. Runs inside the page's transaction.
 */
static int
take_page(const struct engine_poll_job *job, const cJSON *items, struct read_state *r, int seen,
          struct engine_poll_report *rep, struct error *err)
{
    const struct config_collection *cc = job->cc;
    const struct config_poll *pc = &cc->poll;
    const cJSON *item;
    cJSON *same = seen ? cJSON_CreateArray() : NULL; /* unchanged copies, checked */
    char **keep;
    size_t keep_count;
    int rc = -1;

    (void)engine_copy_keep(cc, &keep, &keep_count); /* compared as the link keeps it */
    cJSON_ArrayForEach(item, items)
    {
        char *ext = item_ext_id(cc, item), *text = NULL;
        struct link l = {0};
        int found, rc_seen;

        rep->read++;
        if (ext == NULL || !cJSON_IsObject(item)) {
            rep->skipped++;
            free(ext);
            continue;
        }
        if (cc->shape != CONFIG_SHAPE_NONE &&
            cJSON_GetObjectItemCaseSensitive(item, SHAPE_SKIPPED) != NULL) {
            /* An event that cannot be read: counted, and seen by a
             * reconcile, so its copy is not taken for deleted. */
            rep->skipped++;
            rc_seen = seen ? store_seen_add(job->st, ext, err) : 0;
            free(ext);
            if (rc_seen == -1)
                goto out;
            continue;
        }
        if ((pc->removed_path != NULL &&
             cJSON_GetObjectItemCaseSensitive(item, pc->removed_path) != NULL) ||
            (cc->shape != CONFIG_SHAPE_NONE &&
             cJSON_GetObjectItemCaseSensitive(item, SHAPE_REMOVED) != NULL)) {
            /* Seen by a full read: its deletion is this one, not also
             * take_missing()'s. */
            int gone = seen && store_seen_add(job->st, ext, err) == -1
                           ? -1
                           : journal_missing(job, ext, err);

            rep->deleted++;
            free(ext);
            if (gone == -1)
                goto out;
            continue;
        }
        if (pc->cursor == CONFIG_CURSOR_UPDATED_SINCE || pc->cursor == CONFIG_CURSOR_SEARCH) {
            int64_t ts;

            if (value_timestamp_ms(value_path_get(item, pc->cursor_field), &ts) == 0 &&
                (ts > r->wm_ts ||
                 (ts == r->wm_ts && (r->wm_id == NULL || strcmp(ext, r->wm_id) > 0)))) {
                r->wm_ts = ts;
                free(r->wm_id);
                r->wm_id = xstrdup(ext);
            }
        }
        if (seen && store_seen_add(job->st, ext, err) == -1) {
            free(ext);
            goto out;
        }
        found = store_link_by_ext(job->st, cc->name, ext, &l, err);
        if (found == -1) {
            free(ext);
            goto out;
        }
        text = engine_copy_text(keep, keep_count, item);
        if (found && l.base != NULL &&
            (cc->shape != CONFIG_SHAPE_NONE ? shape_same(item, l.base)
                                            : strcmp(l.base, text) == 0)) {
            rep->unchanged++; /* guarantee: an unchanged row is never a change */
            if (same != NULL)
                cJSON_AddItemToArray(same, cJSON_CreateString(ext));
        } else {
            cJSON *body = cJSON_CreateObject();
            char *btext;
            int waits;

            cJSON_AddStringToObject(body, "@poll", cc->name);
            cJSON_AddItemToObject(body, "record", cJSON_Duplicate(item, 1));
            btext = value_canonical_text(body);
            cJSON_Delete(body);
            waits = journal_copy(job, ext, btext, 1, err);
            free(btext);
            if (waits == -1) {
                free(text);
                link_fini(&l);
                free(ext);
                goto out;
            }
            if (waits == 1)
                rep->unchanged++; /* journaled already, and not processed yet */
            else if (found)
                rep->changed++;
            else
                rep->fresh++;
        }
        free(text);
        link_fini(&l);
        free(ext);
    }
    /* A full read also checks that the unchanged copies hold what their
     * records map to (merge.c, check_copies()): one entry per page. */
    if (same != NULL && cJSON_GetArraySize(same) > 0 && !job->dry_run) {
        cJSON *body = cJSON_CreateObject();

        cJSON_AddStringToObject(body, "@poll", cc->name);
        cJSON_AddItemToObject(body, "@check", same);
        same = NULL;
        rc = journal_body(job, body, err);
        cJSON_Delete(body);
        if (rc == -1)
            goto out;
    }
    rc = 0;
out:
    cJSON_Delete(same);
    engine_copy_keep_free(keep, keep_count);
    return rc;
}

/* After a complete reconcile: the deletion of every linked copy it did not see.
 * A shaped collection's list may hold a window of time (shape_gone()):
 * only a copy that is gone is deleted. */
static int
take_missing(const struct engine_poll_job *job, struct shape_reader *shaper,
             int64_t read_started_ms, struct engine_poll_report *rep, struct error *err)
{
    char **missing = NULL, why[400];
    int n = store_seen_missing(job->st, job->cc->name, read_started_ms, &missing, err);
    int rc = 0, gone;

    /* The system is asked before the transaction: it holds no lock meanwhile. */
    for (int i = 0; i < n && rc == 0 && job->cc->shape != CONFIG_SHAPE_NONE; i++) {
        gone = shape_gone(shaper, missing[i], why, sizeof(why), err);
        if (gone == 0 && why[0] != '\0')
            log_warn(&(struct log_ctx){.collection = job->cc->name},
                     "%s was not listed and is kept: %s", missing[i], why);
        if (gone != 1) {
            free(missing[i]);
            missing[i] = NULL;
        }
        rc = gone == -1 ? -1 : 0;
    }
    if (n >= 0 && rc == 0)
        rc = store_begin_late(job->st, err);
    for (int i = 0; i < n && rc == 0; i++) {
        if (missing[i] == NULL)
            continue;
        rep->missing++;
        rc = journal_missing(job, missing[i], err);
    }
    for (int i = 0; i < n; i++)
        free(missing[i]);
    free(missing);
    return n == -1 ? -1 : rc;
}

char *
engine_poll_report_json(const struct engine_poll_report *r)
{
    cJSON *o = cJSON_CreateObject();
    char *text;

    cJSON_AddStringToObject(o, "kind", r->reconcile ? "reconcile" : "poll");
    cJSON_AddBoolToObject(o, "complete", r->complete);
    cJSON_AddNumberToObject(o, "pages", (double)r->pages);
    cJSON_AddNumberToObject(o, "read", (double)r->read);
    cJSON_AddNumberToObject(o, "in_sync", (double)r->unchanged);
    cJSON_AddNumberToObject(o, "drifted", (double)r->changed);
    cJSON_AddNumberToObject(o, "new", (double)r->fresh);
    cJSON_AddNumberToObject(o, "missing", (double)r->missing);
    cJSON_AddNumberToObject(o, "deleted", (double)r->deleted);
    cJSON_AddNumberToObject(o, "skipped", (double)r->skipped);
    cJSON_AddBoolToObject(o, "resynced", r->resynced);
    if (r->expected > 0)
        cJSON_AddNumberToObject(o, "expected", (double)r->expected);
    cJSON_AddNumberToObject(o, "elapsed_ms", (double)r->elapsed_ms);
    if (r->error[0])
        cJSON_AddStringToObject(o, "error", r->error);
    text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

/* n with a comma between each three digits: 1,000,000. */
static const char *
grouped(int64_t n, char *out, size_t len)
{
    char digits[24];
    int count = snprintf(digits, sizeof(digits), "%lld", (long long)(n < 0 ? 0 : n));
    size_t at = 0;

    for (int i = 0; i < count && at + 2 < len; i++) {
        if (i > 0 && (count - i) % 3 == 0)
            out[at++] = ',';
        out[at++] = digits[i];
    }
    out[at] = '\0';
    return out;
}

int
engine_poll_progress_pct(const struct engine_poll_report *r)
{
    if (r->expected <= 0)
        return -1;
    /* More rows than expected (the table grew): 99% until it ends. */
    return r->read >= r->expected ? 99 : (int)(r->read * 100 / r->expected);
}

void
engine_poll_progress_line(const struct engine_poll_report *r, int bar, char *out, size_t len)
{
    enum {
        CELLS = 24
    };
    double secs = (double)r->elapsed_ms / 1000.0, rate = secs > 0 ? (double)r->read / secs : 0;
    char read[32], total[32], speed[32], cells[CELLS + 3] = "";
    int pct = engine_poll_progress_pct(r);

    (void)grouped(r->read, read, sizeof(read));
    (void)grouped((int64_t)(rate + 0.5), speed, sizeof(speed));
    if (pct < 0) {
        (void)snprintf(out, len, "%s rows read, %s rows/s", read, speed);
        return;
    }
    if (bar) {
        int full = pct * CELLS / 100;

        cells[0] = '[';
        for (int i = 0; i < CELLS; i++)
            cells[1 + i] = i < full ? '#' : '.';
        cells[CELLS + 1] = ']';
        cells[CELLS + 2] = '\0';
    }
    (void)grouped(r->expected, total, sizeof(total));
    if (rate > 0 && r->read < r->expected)
        (void)snprintf(out, len, "%s%s%s of %s rows (%d%%), %s rows/s, %.0f s left", cells,
                       bar ? " " : "", read, total, pct, speed,
                       (double)(r->expected - r->read) / rate);
    else
        (void)snprintf(out, len, "%s%s%s of %s rows (%d%%), %s rows/s", cells, bar ? " " : "", read,
                       total, pct, speed);
}

int
engine_poll_progress_due(const struct engine_poll_report *r, int64_t *last_ms)
{
    int64_t now = clock_mono_ms();

    if (now - (*last_ms != 0 ? *last_ms : r->began_ms) < ENGINE_POLL_PROGRESS_MS)
        return 0;
    *last_ms = now;
    return 1;
}

/* Note progress for concord status, and tell the caller. */
static void
progress(const struct engine_poll_job *job, struct engine_poll_report *rep)
{
    char *text;
    struct error ignored = {0};

    rep->elapsed_ms = clock_mono_ms() - rep->began_ms;
    text = engine_poll_report_json(rep);

    if (!job->dry_run && store_poll_progress(job->st, job->cc->name, text, &ignored) == -1)
        log_debug(NULL, "progress of %s: %s", job->cc->name, ignored.msg);
    free(text);
    if (job->progress != NULL)
        job->progress(job->user, rep);
}

/* Decide the next page from an answer; returns 1 when there is one. */
static int
advance(const struct config_poll *pc, const cJSON *answer, const cJSON *items, const char *link,
        struct read_state *r)
{
    const cJSON *more = pc->has_more_path ? value_path_get(answer, pc->has_more_path) : NULL;
    int count = cJSON_GetArraySize(items);

    if (pc->cursor == CONFIG_CURSOR_DELTA_LINK) {
        /* Graph's keys hold dots ("@odata.nextLink"): top-level names, not paths. */
        const cJSON *next = cJSON_GetObjectItemCaseSensitive(answer, pc->delta_next_path);
        const cJSON *delta = cJSON_GetObjectItemCaseSensitive(answer, pc->delta_path);

        free(r->page_cur);
        r->page_cur = NULL;
        if (cJSON_IsString(next) && next->valuestring[0] != '\0') {
            r->page_cur = xstrdup(next->valuestring);
            return 1; /* an empty page with a next link still means "go on" */
        }
        if (cJSON_IsString(delta) && delta->valuestring[0] != '\0') {
            free(r->next_tok);
            r->next_tok = xstrdup(delta->valuestring);
        }
        return 0;
    }
    if (pc->cursor == CONFIG_CURSOR_SYNC_TOKEN && pc->token_path != NULL) {
        const cJSON *tok = value_path_get(answer, pc->token_path);

        if (cJSON_IsString(tok)) {
            free(r->next_tok);
            r->next_tok = xstrdup(tok->valuestring);
        }
    }
    if (cJSON_IsBool(more) && cJSON_IsFalse(more))
        return 0;
    switch (pc->page) {
    case CONFIG_PAGE_NONE:
        return 0;
    case CONFIG_PAGE_NUMBER:
        r->page_no++;
        return count > 0 && (cJSON_IsTrue(more) || count >= pc->page_size);
    case CONFIG_PAGE_OFFSET:
        r->page_no += count;
        return count > 0 && (cJSON_IsTrue(more) || count >= pc->page_size);
    case CONFIG_PAGE_CURSOR: {
        const cJSON *next = value_path_get(answer, pc->next_path);
        char num[32];

        free(r->page_cur);
        r->page_cur = NULL;
        if (cJSON_IsString(next) && next->valuestring[0] != '\0')
            r->page_cur = xstrdup(next->valuestring);
        else if (cJSON_IsNumber(next) && snprintf(num, sizeof(num), "%.17g", next->valuedouble) > 0)
            r->page_cur = xstrdup(num);
        return r->page_cur != NULL;
    }
    case CONFIG_PAGE_LINK:
        free(r->page_cur);
        r->page_cur = link ? http_link_next(link) : NULL;
        return r->page_cur != NULL;
    }
    return 0;
}

/*
 * Take the collection's lease as "pid@host". A lease whose holder is a
 * process of this host that no longer runs (a reader killed with -9) is
 * taken over at once instead of waiting for it to run out.
 */
static int
take_lease(const struct engine_poll_job *job, char *holder, size_t holder_len, struct error *err)
{
    char host[256] = "", *other = NULL, dead[300] = "";
    const char *at;
    int rc;

    if (gethostname(host, sizeof(host) - 1) != 0)
        (void)snprintf(host, sizeof(host), "localhost");
    (void)snprintf(holder, holder_len, "%ld@%s", (long)getpid(), host);
    if (store_poll_holder(job->st, job->cc->name, clock_now_ms(), &other, err) == -1)
        return -1;
    if (other != NULL && (at = strchr(other, '@')) != NULL && strcmp(at + 1, host) == 0) {
        long pid = strtol(other, NULL, 10);

        if (pid > 0 && pid != (long)getpid() && kill((pid_t)pid, 0) == -1 && errno == ESRCH)
            (void)snprintf(dead, sizeof(dead), "%s", other);
    }
    free(other);
    rc = store_poll_lease(job->st, job->cc->name, clock_now_ms(), clock_now_ms() + POLL_LEASE_MS,
                          holder, dead[0] ? dead : NULL, err);
    if (rc == 1 && dead[0])
        log_info(&(struct log_ctx){.collection = job->cc->name},
                 "took over the reads of %s from %s, which no longer runs", job->cc->name, dead);
    return rc;
}

/*
 * Renew the lease inside a page's transaction, before the page commits.
 * Returns 1, 0 when it was lost (the lease ran out, and another reader
 * may hold the collection now), or -1. A dry run holds no lease.
 */
static int
renew_lease(const struct engine_poll_job *job, const char *holder, struct error *err)
{
    if (job->dry_run)
        return 1;
    return store_poll_lease(job->st, job->cc->name, clock_now_ms(), clock_now_ms() + POLL_LEASE_MS,
                            holder, NULL, err);
}

/* A lost lease: the read stops with the counts of what committed (before)
 * and says why; it never reads beside the reader that has it now. */
static void
lease_lost(struct engine_poll_report *rep, const struct engine_poll_report *before)
{
    *rep = *before;
    (void)snprintf(rep->error, sizeof(rep->error),
                   "this read's lease ran out: another reader may have the collection");
}

/* ---- event lists (cursor kind events) ---- */

/* The URL of an event-list request: limit 100, then name=id when id is given. */
static char *
events_url(const struct engine_poll_job *job, const char *name, const char *id)
{
    const struct config_poll *pc = &job->cc->poll;
    char *q = NULL, *url;

    query_add(&q, "limit", "100");
    if (id != NULL && id[0] != '\0')
        query_add(&q, name, id);
    url = xasprintf("%s%s%s%s", job->cc->system->base_url, pc->events.path,
                    strchr(pc->events.path, '?') ? "&" : "?", q);
    free(q);
    return url;
}

/* GET url as a JSON list answer ({"data": [...], "has_more": bool}); NULL
 * with rep->error (or err) set when it failed. *status: the HTTP status. */
static cJSON *
events_get(const struct engine_poll_job *job, const char *url, long *status,
           struct engine_poll_report *rep, struct error *err)
{
    struct fetch f;
    cJSON *answer = NULL;

    *status = 0;
    if (fetch(job, url, &f, err) == -1)
        return NULL;
    *status = f.outcome == HTTP_OUTCOME_RESPONSE ? f.status : 0;
    if (f.outcome != HTTP_OUTCOME_RESPONSE)
        (void)snprintf(rep->error, sizeof(rep->error), "GET %s: %.200s", job->cc->poll.events.path,
                       f.error ? f.error : "no answer");
    else if (f.status < 200 || f.status >= 300)
        (void)snprintf(rep->error, sizeof(rep->error), "GET %s: HTTP %ld: %.200s",
                       job->cc->poll.events.path, f.status, f.body);
    else if ((answer = cJSON_Parse(f.body)) == NULL ||
             !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(answer, "data")))
        (void)snprintf(rep->error, sizeof(rep->error), "GET %s: no list at `data` in the answer",
                       job->cc->poll.events.path);
    if (rep->error[0] != '\0') {
        cJSON_Delete(answer);
        answer = NULL;
    }
    fetch_fini(&f);
    return answer;
}

/* The id of the newest event, "" when there is none: where a full read
 * leaves the event cursor, so nothing after its start is missed. 1, or 0
 * with rep->error set, or -1. */
static int
events_newest(const struct engine_poll_job *job, char **id, struct engine_poll_report *rep,
              struct error *err)
{
    char *url = events_url(job, "", NULL);
    long status;
    cJSON *answer = events_get(job, url, &status, rep, err);
    const cJSON *first, *v;

    free(url);
    if (answer == NULL)
        return rep->error[0] ? 0 : -1;
    first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(answer, "data"), 0);
    v = cJSON_GetObjectItemCaseSensitive(first, "id");
    *id = xstrdup(cJSON_IsString(v) ? v->valuestring : "");
    cJSON_Delete(answer);
    return 1;
}

/* Journal events (oldest first): a record, or the deletion of one. */
static int
take_events(const struct engine_poll_job *job, const cJSON *events, struct read_state *r,
            struct engine_poll_report *rep, struct error *err)
{
    const struct config_poll *pc = &job->cc->poll;
    size_t suffix_len = strlen(pc->event_deleted_suffix);
    const cJSON *ev;

    cJSON_ArrayForEach(ev, events)
    {
        const cJSON *obj = value_path_get(ev, pc->event_object_path);
        const cJSON *type = value_path_get(ev, pc->event_type_path);
        size_t len = cJSON_IsString(type) ? strlen(type->valuestring) : 0;
        char *ext = cJSON_IsObject(obj) ? item_ext_id(job->cc, obj) : NULL;
        int rc;

        if (ext != NULL && len >= suffix_len &&
            strcmp(type->valuestring + len - suffix_len, pc->event_deleted_suffix) == 0) {
            rep->read++;
            rep->deleted++;
            rc = journal_missing(job, ext, err);
        } else {
            cJSON *one = cJSON_CreateArray(), *copy = cJSON_Duplicate(obj, 1);

            engine_stamp_event_time(job->cc, ev, copy);
            cJSON_AddItemToArray(one, copy);
            rc = take_page(job, one, r, 0, rep, err);
            cJSON_Delete(one);
        }
        free(ext);
        if (rc == -1)
            return -1;
    }
    return 0;
}

/*
 * An incremental read of an event list: the events after r->token, oldest
 * first, each page committed with the newest id it holds. Stripe lists
 * newest first; ending_before=ID gives the page just newer than ID. With
 * an empty token (no event existed at the full read) every event there is
 * is read, walking back with starting_after, then taken at once.
 * Returns 0 (rep->error says why it stopped), or -1.
 */
static int
events_read(const struct engine_poll_job *job, struct read_state *r, const char *holder,
            struct engine_poll_report *rep, long *status, struct error *err)
{
    const struct config_poll *pc = &job->cc->poll;
    int from_start = r->token[0] == '\0', more = 1;
    cJSON *all = from_start ? cJSON_CreateArray() : NULL;
    char *after = from_start ? NULL : xstrdup(r->token);
    int rc = -1;

    for (int pages = 0; more && pages < 10000; pages++) {
        char *url = from_start ? events_url(job, "starting_after", after)
                               : events_url(job, pc->cursor_param, after);
        cJSON *answer = events_get(job, url, status, rep, err), *data, *ev, *newest;
        const cJSON *has_more, *id;

        free(url);
        if (answer == NULL) {
            rc = rep->error[0] ? 0 : -1;
            goto out;
        }
        data = cJSON_DetachItemFromObjectCaseSensitive(answer, "data");
        has_more = cJSON_GetObjectItemCaseSensitive(answer, "has_more");
        more = cJSON_IsTrue(has_more) && cJSON_GetArraySize(data) > 0;
        newest = cJSON_GetArrayItem(data, 0);
        if (from_start) {
            const cJSON *last = cJSON_GetArrayItem(data, cJSON_GetArraySize(data) - 1);

            if (r->next_tok == NULL && (id = cJSON_GetObjectItemCaseSensitive(newest, "id")) &&
                cJSON_IsString(id))
                r->next_tok = xstrdup(id->valuestring);
            id = cJSON_GetObjectItemCaseSensitive(last, "id");
            free(after);
            after = cJSON_IsString(id) ? xstrdup(id->valuestring) : NULL;
            more = more && after != NULL;
            while ((ev = cJSON_DetachItemFromArray(data, 0)) != NULL)
                cJSON_AddItemToArray(all, ev); /* newest first, as listed */
            cJSON_Delete(data);
            cJSON_Delete(answer);
            continue;
        }
        /* Oldest first; the page's newest id is where the next read goes on. */
        cJSON *ordered = cJSON_CreateArray();
        while ((ev = cJSON_DetachItemFromArray(data, cJSON_GetArraySize(data) - 1)) != NULL)
            cJSON_AddItemToArray(ordered, ev);
        id = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetArrayItem(ordered, cJSON_GetArraySize(ordered) - 1), "id");
        if (cJSON_IsString(id)) {
            free(after);
            after = xstrdup(id->valuestring);
            free(r->next_tok);
            r->next_tok = xstrdup(after);
        }
        char *cur = read_state_text(pc, r, 1);
        struct engine_poll_report before = *rep; /* the counts of what committed */
        int lease = 1;
        int bad =
            store_begin_late(job->st, err) == -1 || take_events(job, ordered, r, rep, err) == -1 ||
            (!job->dry_run && store_poll_set_cursor(job->st, job->cc->name, cur, err) == -1) ||
            (lease = renew_lease(job, holder, err)) != 1 || store_commit(job->st, err) == -1;
        free(cur);
        cJSON_Delete(ordered);
        cJSON_Delete(data);
        cJSON_Delete(answer);
        if (bad) {
            store_rollback(job->st);
            if (lease == 0) {
                lease_lost(rep, &before);
                rc = 0;
            }
            goto out;
        }
        rep->pages++;
        progress(job, rep);
        if (job->wake != NULL)
            job->wake(job->user);
    }
    if (from_start) {
        cJSON *ordered = cJSON_CreateArray(), *ev;
        char *cur;

        while ((ev = cJSON_DetachItemFromArray(all, cJSON_GetArraySize(all) - 1)) != NULL)
            cJSON_AddItemToArray(ordered, ev);
        cur = read_state_text(pc, r, 1);
        if (cur == NULL)
            cur = xstrdup("{\"token\":\"\"}");
        struct engine_poll_report before = *rep;
        int lease = 1;
        int bad =
            store_begin_late(job->st, err) == -1 || take_events(job, ordered, r, rep, err) == -1 ||
            (!job->dry_run && store_poll_set_cursor(job->st, job->cc->name, cur, err) == -1) ||
            (lease = renew_lease(job, holder, err)) != 1 || store_commit(job->st, err) == -1;
        free(cur);
        cJSON_Delete(ordered);
        if (bad) {
            store_rollback(job->st);
            if (lease == 0) {
                lease_lost(rep, &before);
                rc = 0;
            }
            goto out;
        }
        rep->pages++;
    }
    rep->complete = !more && rep->error[0] == '\0';
    rc = 0;
out:
    cJSON_Delete(all);
    free(after);
    return rc;
}

/* ---- searches (cursor kind search) ---- */

/* Fill "{since}" and "{after}" in a copy of the search's body. */
static void
search_fill(cJSON *node, const char *since, const char *after)
{
    cJSON *it;

    cJSON_ArrayForEach(it, node)
    {
        if (cJSON_IsString(it) && strcmp(it->valuestring, "{since}") == 0)
            (void)cJSON_SetValuestring(it, since);
        else if (cJSON_IsString(it) && strcmp(it->valuestring, "{after}") == 0)
            (void)cJSON_SetValuestring(it, after);
        else if (cJSON_IsObject(it) || cJSON_IsArray(it))
            search_fill(it, since, after);
    }
}

/*
 * Where the next page starts after items (ascending by the cursor's
 * field), read from the anchor r->since past r->page_no results: at the
 * newest time the page holds, past the results that share it. A page whose
 * every result shares the anchor's time moves on within it.
 */
static void
search_advance(const struct config_poll *pc, const cJSON *items, struct read_state *r)
{
    const cJSON *item;
    int64_t newest = r->since, n = 0, at_newest = 0;

    cJSON_ArrayForEach(item, items)
    {
        int64_t ts;

        n++;
        if (value_timestamp_ms(value_path_get(item, pc->cursor_field), &ts) == -1)
            continue;
        if (ts > newest) {
            newest = ts;
            at_newest = 0;
        }
        if (ts == newest)
            at_newest++;
    }
    if (newest == r->since) {
        r->page_no += n; /* no later time on this page: further along the same one */
    } else {
        r->since = newest;
        r->page_no = at_newest;
    }
}

/*
 * An incremental read by search (HubSpot's contacts): each page asks for
 * the records whose field is at or after an anchor, oldest first, and
 * skips ("{after}") those it already took at the anchor's time. The anchor
 * moves to the newest time of every page, so no query pages past a few
 * results: a record written meanwhile moves to the end of the order and is
 * read there, and nothing shifts under an offset (offsets into one query
 * skip a record when one before it changes), nor does a query reach the
 * results' window (HubSpot's 10,000). A read starts at the watermark less
 * the overlap (the index is late by seconds); what it reads again there
 * unchanged is dropped. Each page commits with the cursor after it.
 * Returns 0 (rep->error says why it stopped), or -1.
 */
static int
search_read(const struct engine_poll_job *job, struct read_state *r, const char *holder,
            struct engine_poll_report *rep, struct error *err)
{
    const struct config_collection *cc = job->cc;
    const struct config_poll *pc = &cc->poll;
    char *url = xasprintf("%s%s", cc->system->base_url, pc->search.path);
    int more = 1, rc = -1;

    if (!r->started) {
        r->since = r->wm_ts < 0 ? 0 : r->wm_ts > pc->overlap_ms ? r->wm_ts - pc->overlap_ms : 0;
        r->page_no = 0;
    }
    for (int64_t pages = 0; more && pages < 1000000; pages++) {
        char after[32], *since, *body, *cur;
        int bad, lease;
        struct engine_poll_report before;
        cJSON *tmpl, *answer;
        const cJSON *items, *next;
        struct fetch f;

        if (job->stop != NULL && atomic_load(job->stop)) {
            (void)snprintf(rep->error, sizeof(rep->error), "stopped part way");
            break;
        }
        if (r->page_no >= pc->search_window) {
            (void)snprintf(rep->error, sizeof(rep->error),
                           "%s %s: more than %lld records share %s %lld: one search cannot page "
                           "past them; a reconcile reads them",
                           pc->search.method, pc->search.path, (long long)pc->search_window,
                           pc->cursor_field, (long long)r->since);
            break;
        }
        (void)snprintf(after, sizeof(after), "%lld", (long long)r->page_no);
        since = format_since(pc, r->since);
        tmpl = cJSON_Duplicate(pc->search_body, 1);
        search_fill(tmpl, since, after);
        body = cJSON_PrintUnformatted(tmpl);
        cJSON_Delete(tmpl);
        free(since);
        rc = fetch_req(job, pc->search.method, url, body, &f, err);
        free(body);
        if (rc == -1)
            goto out;
        rc = -1;
        answer = NULL;
        if (f.outcome != HTTP_OUTCOME_RESPONSE || f.status < 200 || f.status >= 300 ||
            (answer = cJSON_Parse(f.body)) == NULL) {
            if (f.outcome == HTTP_OUTCOME_RESPONSE)
                (void)snprintf(rep->error, sizeof(rep->error), "%s %s: HTTP %ld: %.200s",
                               pc->search.method, pc->search.path, f.status, f.body);
            else
                (void)snprintf(rep->error, sizeof(rep->error), "%s %s: %.200s", pc->search.method,
                               pc->search.path, f.error ? f.error : "no answer");
            fetch_fini(&f);
            break;
        }
        fetch_fini(&f);
        items = pc->items_path ? value_path_get(answer, pc->items_path) : answer;
        if (!cJSON_IsArray(items)) {
            (void)snprintf(rep->error, sizeof(rep->error), "%s %s: no list at `%s` in the answer",
                           pc->search.method, pc->search.path,
                           pc->items_path ? pc->items_path : ".");
            cJSON_Delete(answer);
            break;
        }
        next = value_path_get(answer, pc->search_next_path);
        more = next != NULL && !cJSON_IsNull(next) && cJSON_GetArraySize(items) > 0;
        search_advance(pc, items, r);
        before = *rep;
        bad = store_begin_late(job->st, err) == -1 || take_page(job, items, r, 0, rep, err) == -1;
        /* Guarantee: a page's changes and the cursor after it commit
         * together. The cursor is made once take_page has moved the
         * watermark over the page, or a read's last page would not move it. */
        cur = bad ? NULL : read_state_text(pc, r, !more);
        lease = 1;
        if (bad || (!job->dry_run && store_poll_set_cursor(job->st, cc->name, cur, err) == -1) ||
            (lease = renew_lease(job, holder, err)) != 1 || store_commit(job->st, err) == -1) {
            store_rollback(job->st);
            free(cur);
            cJSON_Delete(answer);
            if (lease == 0) {
                lease_lost(rep, &before);
                rc = 0;
            }
            goto out;
        }
        free(cur);
        cJSON_Delete(answer);
        r->started = 1;
        rep->pages++;
        progress(job, rep);
        if (job->wake != NULL)
            job->wake(job->user);
    }
    rep->complete = !more && rep->error[0] == '\0';
    rc = 0;
out:
    free(url);
    return rc;
}

/* ---- SQL tables ---- */

/* How far the database's clock may be behind concord's: a look-back bound
 * by concord's clock leaves this much more room. */
#define SQL_SKEW_MS 5000

/*
 * The offset from UTC, in ms, of an ISO 8601 time's zone (zone: what
 * follows the seconds and their fraction): none or "Z" is UTC, else
 * +HH, +HHMM or +HH:MM. Returns -1 for anything else.
 */
static int
zone_offset_ms(const char *zone, int64_t *out)
{
    size_t len = strlen(zone);
    int hh, mm = 0;

    *out = 0;
    if (len == 0 || strcmp(zone, "Z") == 0)
        return 0;
    if ((zone[0] != '+' && zone[0] != '-') || strspn(zone + 1, "0123456789:") != len - 1 ||
        (len != 3 && len != 5 && len != 6) || (len == 6 && zone[3] != ':') ||
        (len == 5 && zone[3] == ':'))
        return -1;
    hh = (zone[1] - '0') * 10 + (zone[2] - '0');
    if (len > 3)
        mm = (zone[len - 2] - '0') * 10 + (zone[len - 1] - '0');
    *out = (int64_t)(hh * 60 + mm) * 60000 * (zone[0] == '-' ? -1 : 1);
    return 0;
}

/*
 * Where an incremental read of a table starts again: the watermark's time
 * less the overlap, but not before floor_ms (the previous read's start,
 * less the overlap and SQL_SKEW_MS: a row committed before that read began
 * was seen by it), written in the shape of the stored value (a number of
 * ms or s; ISO 8601 with its separator, fraction and zone as the sample
 * has them, in the sample's own offset), so that a text column compares
 * it right: a time written in UTC beside local times with an offset of
 * -05:00 sorts after all of them, and the read would skip every later
 * row. NULL when the read can go on strictly after the watermark: the
 * sample is no time concord can read, or the floor is past it (rows
 * stamped long ago, in bulk, are not read again at every poll).
 */
static char *
sql_lookback(const char *sample, int64_t overlap_ms, int64_t floor_ms)
{
    cJSON *v = cJSON_CreateString(sample);
    int64_t ms, lb, offset = 0;
    char iso[40];
    size_t len = strlen(sample), n, zone = 19;
    int digits = len > 0 && strspn(sample, "0123456789") == len, in_s = 0;

    if (digits) {
        long long x = strtoll(sample, NULL, 10);

        in_s = x < 100000000000LL;
        ms = in_s ? (int64_t)x * 1000 : (int64_t)x;
    } else if (value_timestamp_ms(v, &ms) == -1 || len < 19) {
        cJSON_Delete(v);
        return NULL;
    }
    cJSON_Delete(v);
    if (!digits) {
        if (sample[zone] == '.')
            zone += 1 + strspn(sample + zone + 1, "0123456789");
        if (zone_offset_ms(sample + zone, &offset) == -1)
            return NULL;
    }
    lb = ms - overlap_ms;
    if (floor_ms > lb)
        lb = floor_ms;
    if (lb > ms)
        return NULL;
    if (digits)
        return xasprintf("%lld", (long long)(in_s ? lb / 1000 : lb));
    /* YYYY-MM-DDTHH:MM:SS.sssZ, as the local time of the sample's zone */
    (void)clock_format_ms(lb + offset, iso, sizeof(iso));
    iso[10] = sample[10];
    n = sample[19] == '.' ? 23 : 19;
    return xasprintf("%.*s%s", (int)n, iso, sample + zone);
}

/* The cursor of a SQL read: {"at": ..., "key": ...} (incremental), or
 * {"page": key} while a full read is under way. */
static char *
sql_cursor_text(const struct sql_watermark *w, int incremental, int64_t read_at_ms)
{
    cJSON *c = cJSON_CreateObject();
    char *text;

    if (incremental && w->updated_at != NULL) {
        cJSON_AddStringToObject(c, "at", w->updated_at);
        cJSON_AddNumberToObject(c, "read_at", (double)read_at_ms);
    }
    if (w->key != NULL)
        cJSON_AddStringToObject(c, incremental ? "key" : "page", w->key);
    text = cJSON_GetArraySize(c) > 0 ? value_canonical_text(c) : NULL;
    cJSON_Delete(c);
    return text;
}

/*
 * Read a SQL table: by (updated_at, key) from the stored watermark less the
 * overlap when the collection names updated_at (and this is no full read),
 * else whole by key. Each page's rows and the cursor after it commit
 * together; soft-deleted rows are deletions. Returns 0 (rep->error says why
 * a read stopped), or -1 for the store.
 */
static int
sql_read(const struct engine_poll_job *job, int full, int seen, const char *cursor,
         const char *holder, struct engine_poll_report *rep, struct error *err)
{
    const struct config_collection *cc = job->cc;
    struct sql_table t = engine_sql_table(cc);
    int incremental = !full && t.updated_at != NULL, rc = -1, done = 0;
    struct sql_watermark after = {0}, next = {0};
    struct sql_conn *conn = NULL;
    struct read_state r = {0};
    struct error serr = {0};
    cJSON *c = cursor ? cJSON_Parse(cursor) : NULL;
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(c, "at");
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(c, incremental ? "key" : "page");
    const cJSON *read_at = cJSON_GetObjectItemCaseSensitive(c, "read_at");
    int64_t started = clock_now_ms();

    if (incremental && cJSON_IsString(at)) {
        after.updated_at =
            sql_lookback(at->valuestring, cc->poll.overlap_ms,
                         cJSON_IsNumber(read_at)
                             ? (int64_t)read_at->valuedouble - cc->poll.overlap_ms - SQL_SKEW_MS
                             : INT64_MIN);
        if (after.updated_at == NULL) { /* not a time: strictly after the watermark */
            after.updated_at = xstrdup(at->valuestring);
            after.key = cJSON_IsString(key) ? xstrdup(key->valuestring) : NULL;
        }
    } else if (!incremental && cJSON_IsString(key) && !job->reconcile) {
        after.key = xstrdup(key->valuestring); /* a full read that stopped part way */
    }
    cJSON_Delete(c);
    r.wm_ts = -1;
    if (engine_sql_open(cc->system, &conn, &serr) == -1) {
        (void)snprintf(rep->error, sizeof(rep->error), "%.399s", serr.msg);
        rc = 0;
        goto out;
    }
    /* A read of the whole table (a backfill, a reconcile) counts it first,
     * for its progress; one that goes on from a cursor cannot know. */
    if (after.key == NULL && after.updated_at == NULL &&
        sql_count(conn, &t, &rep->expected, &serr) == -1)
        rep->expected = 0;
    while (!done) {
        cJSON *rows = NULL, *live, *row;
        struct engine_poll_report before = *rep; /* the counts of what committed */
        char *text;
        int n, lease = 1;

        if (job->stop != NULL && atomic_load(job->stop)) {
            (void)snprintf(rep->error, sizeof(rep->error), "stopped part way");
            break;
        }
        n = sql_read_page(conn, &t, &after, incremental, (size_t)cc->poll.page_size, &rows, &next,
                          &serr);
        if (n == -1) {
            (void)snprintf(rep->error, sizeof(rep->error), "%.399s", serr.msg);
            break;
        }
        done = n == 0;
        live = cJSON_CreateArray();
        text = sql_cursor_text(&next, incremental, started);
        if (store_begin_late(job->st, err) == -1)
            goto page_failed;
        while ((row = cJSON_DetachItemFromArray(rows, 0)) != NULL) {
            char *ext = item_ext_id(cc, row);

            if (ext != NULL && sql_row_is_deleted(&t, row)) {
                /* A deletion, once: a row read again in the look-back whose
                 * copy concord no longer links is nothing new. */
                struct link l = {0};
                int found = store_link_by_ext(job->st, cc->name, ext, &l, err);

                link_fini(&l);
                rep->read++;
                if (found == 1)
                    rep->deleted++;
                else
                    rep->unchanged++;
                /* Seen by a reconcile: its deletion is this one, and
                 * take_missing() must not journal a second. */
                if (found == -1 || (seen && store_seen_add(job->st, ext, err) == -1) ||
                    (found == 1 && journal_missing(job, ext, err) == -1)) {
                    free(ext);
                    cJSON_Delete(row);
                    goto page_failed;
                }
                cJSON_Delete(row);
            } else {
                cJSON_AddItemToArray(live, row);
            }
            free(ext);
        }
        if (take_page(job, live, &r, seen, rep, err) == -1 ||
            (!job->dry_run && !job->reconcile &&
             store_poll_set_cursor(job->st, cc->name, done && !incremental ? NULL : text, err) ==
                 -1) ||
            (lease = renew_lease(job, holder, err)) != 1 || store_commit(job->st, err) == -1)
            goto page_failed;
        free(text);
        cJSON_Delete(live);
        cJSON_Delete(rows);
        sql_watermark_fini(&after);
        after = next;
        memset(&next, 0, sizeof(next));
        if (n > 0) {
            rep->pages++;
            progress(job, rep);
            if (job->wake != NULL)
                job->wake(job->user);
        }
        continue;
page_failed:
        store_rollback(job->st);
        free(text);
        cJSON_Delete(live);
        cJSON_Delete(rows);
        if (lease == 0) {
            lease_lost(rep, &before);
            rc = 0;
        }
        goto out;
    }
    rep->complete = done && rep->error[0] == '\0';
    rc = 0;
out:
    sql_close(conn);
    sql_watermark_fini(&after);
    sql_watermark_fini(&next);
    read_state_fini(&r);
    return rc;
}

/* Put the parts of ext ("A/B") at the collection's id paths ("series,number")
 * where item lacks them, so a copy read by its id is known by it. Paths
 * with a dot are left alone. */
static void
each_fill_id(const struct config_collection *cc, cJSON *item, const char *ext)
{
    const char *part = ext;

    for (const char *p = cc->id_path; p != NULL && *p != '\0' && part != NULL;) {
        size_t plen = strcspn(p, ","), len = strcspn(part, "/");
        char path[128];

        (void)snprintf(path, sizeof(path), "%.*s", (int)plen, p);
        if (strchr(path, '.') == NULL && cJSON_GetObjectItemCaseSensitive(item, path) == NULL) {
            char *one = xasprintf("%.*s", (int)len, part);

            cJSON_AddStringToObject(item, path, one);
            free(one);
        }
        p += plen + (p[plen] == ',');
        part = part[len] == '/' ? part + len + 1 : NULL;
    }
}

/* One copy read by `each`: its answer as a record, or NULL (logged and
 * counted) when the system answered with no record for it. */
static cJSON *
each_one(const struct engine_poll_job *job, const char *ext, struct engine_poll_report *rep,
         struct error *err, int *failed)
{
    const struct config_collection *cc = job->cc;
    const struct config_system *sys = cc->system;
    struct log_ctx lc = {.system = sys->name, .collection = cc->name};
    struct error perr = {0};
    char *path = engine_expand_path(cc->poll.each.path, ext, NULL, &perr), *url;
    const cJSON *refused;
    cJSON *answer = NULL;
    struct fetch f;

    *failed = 0;
    if (path == NULL) {
        log_warn(&lc, "%s: %s", ext, perr.msg);
        rep->skipped++;
        return NULL;
    }
    url = xasprintf("%s%s", sys->base_url, path);
    free(path);
    if (fetch(job, url, &f, err) == -1) {
        free(url);
        *failed = -1;
        return NULL;
    }
    free(url);
    if (f.outcome != HTTP_OUTCOME_RESPONSE || f.status < 200 || f.status >= 300 ||
        !cJSON_IsObject(answer = cJSON_Parse(f.body))) {
        /* The system is unwell: stop here, the next poll starts over. */
        if (f.outcome == HTTP_OUTCOME_RESPONSE)
            (void)snprintf(rep->error, sizeof(rep->error), "GET %s (%s): HTTP %ld: %.200s",
                           cc->poll.each.path, ext, f.status, f.body ? f.body : "");
        else
            (void)snprintf(rep->error, sizeof(rep->error), "GET %s (%s): %.200s",
                           cc->poll.each.path, ext, f.error ? f.error : "no answer");
        cJSON_Delete(answer);
        fetch_fini(&f);
        *failed = 1;
        return NULL;
    }
    fetch_fini(&f);
    if ((refused = engine_refusal(sys, answer)) != NULL) {
        /* This copy is not there to read (deleted by a person): a read
         * says nothing of it, and is no delete. */
        log_warn(&lc, "%s: %.300s", ext,
                 cJSON_IsString(refused) ? refused->valuestring : "refused (errors.in_ok)");
        rep->skipped++;
        rep->read++;
        cJSON_Delete(answer);
        return NULL;
    }
    each_fill_id(cc, answer, ext);
    return answer;
}

/*
 * A poll with `each`: the system lists nothing, so every linked copy is
 * read by its id, in pages of links (SmartBill's invoices: each one's
 * payment status). A page's records are taken like a listed page's. A
 * failed request stops the read; the next poll starts from the first copy.
 */
static int
each_read(const struct engine_poll_job *job, const char *holder, struct engine_poll_report *rep,
          struct error *err)
{
    const struct config_collection *cc = job->cc;
    struct read_state r = {0};
    char *after = xstrdup("");
    int rc = -1;

    for (;;) {
        char **ids = NULL;
        int n = store_linked_page(job->st, cc->name, after, 50, &ids, err), failed = 0, bad, lease;
        struct engine_poll_report before; /* the counts of what committed */
        cJSON *items;

        if (n <= 0) {
            rep->complete = n == 0;
            rc = n == 0 ? 0 : -1;
            break;
        }
        items = cJSON_CreateArray();
        for (int i = 0; i < n && failed == 0; i++) {
            cJSON *one;

            if (job->stop != NULL && atomic_load(job->stop)) {
                (void)snprintf(rep->error, sizeof(rep->error), "stopped part way");
                failed = 1;
                break;
            }
            if ((one = each_one(job, ids[i], rep, err, &failed)) != NULL)
                cJSON_AddItemToArray(items, one);
        }
        free(after);
        after = xstrdup(ids[n - 1]);
        for (int i = 0; i < n; i++)
            free(ids[i]);
        free(ids);
        before = *rep;
        lease = 1;
        bad = failed == -1 || store_begin_late(job->st, err) == -1 ||
              take_page(job, items, &r, 0, rep, err) == -1;
        if (bad || (lease = renew_lease(job, holder, err)) != 1 ||
            store_commit(job->st, err) == -1) {
            if (failed != -1)
                store_rollback(job->st);
            cJSON_Delete(items);
            if (lease == 0) {
                lease_lost(rep, &before);
                rc = 0;
            }
            break;
        }
        cJSON_Delete(items);
        rep->pages++;
        progress(job, rep);
        if (job->wake != NULL)
            job->wake(job->user);
        if (failed == 1) {
            rc = 0; /* what was read stands; rep->error says why it stopped */
            break;
        }
    }
    free(after);
    read_state_fini(&r);
    return rc;
}

static int
is_resync(const struct config_poll *pc, long status)
{
    for (size_t i = 0; i < pc->resync_status_count; i++) {
        if (pc->resync_status[i] == status)
            return 1;
    }
    return 0;
}

/* An HTTP read across its pages (engine_poll_run()). */
struct http_read {
    struct read_state *r;
    struct shape_reader *shaper;
    const char *holder;
    int full;    /* a full read: the first page asks for everything */
    int seen;    /* note what was seen: missing copies are deleted at the end */
    int more;    /* pages remain */
    int resumed; /* the next request goes on from a page an earlier read stored */
};

/*
 * Take a page's items and commit them with the cursor after it and the
 * lease renewed. Guarantee: a page's changes and the cursor after it
 * commit together; a crash resumes at the last committed page. The cursor
 * is made once take_page has moved the watermark over the page, or a
 * read's last page would not move it. Returns 0, 1 when the lease was
 * lost (nothing committed; rep->error says so), or -1 rolled back.
 */
static int
commit_page(const struct engine_poll_job *job, const cJSON *items, const struct http_read *h,
            struct engine_poll_report *rep, struct error *err)
{
    const struct config_collection *cc = job->cc;
    struct engine_poll_report before = *rep; /* the counts of what committed */
    int bad = store_begin_late(job->st, err) == -1 ||
              take_page(job, items, h->r, h->seen, rep, err) == -1;
    char *cur = bad ? NULL : read_state_text(&cc->poll, h->r, !h->more);
    int lease = bad ? 1 : renew_lease(job, h->holder, err);

    if (bad || lease != 1 ||
        (!job->dry_run && !job->reconcile &&
         store_poll_set_cursor(job->st, cc->name, cur, err) == -1) ||
        store_commit(job->st, err) == -1) {
        store_rollback(job->st);
        free(cur);
        if (lease == 0) {
            /* A page longer than POLL_LEASE_MS. */
            lease_lost(rep, &before);
            return 1;
        }
        return -1;
    }
    free(cur);
    return 0;
}

/* A refused sync token: start over with a full read. A full read reports
 * no deletions, so what it does not see is deleted, as after a reconcile. */
static int
restart_full(const struct engine_poll_job *job, struct http_read *h, long status,
             struct engine_poll_report *rep, struct error *err)
{
    const struct config_collection *cc = job->cc;

    log_info(&(struct log_ctx){.system = cc->system->name, .collection = cc->name},
             "sync token refused (HTTP %ld): a full read", status);
    rep->resynced = 1;
    read_state_fini(h->r);
    read_state_load(&cc->poll, NULL, h->r);
    h->full = h->seen = 1;
    shape_reader_fini(h->shaper); /* the full read reads every series again */
    h->shaper->swept = 0;
    return store_seen_reset(job->st, err);
}

/*
 * Whether a status refuses the page a read stored (an expired cursor, one
 * the system no longer reads): a 4xx that says nothing of access or rate,
 * which a read from the start would meet just the same.
 */
static int
page_refused(const struct config_system *sys, long status)
{
    return status >= 400 && status < 500 && status != 401 && status != 403 && status != 408 &&
           !rate_limited(sys, status);
}

/* A stored page refused: the read starts over from its first page, with
 * the watermark, token and "since" it had (nothing is skipped; what it
 * reads again unchanged is dropped as in sync). */
static void
restart_page(const struct engine_poll_job *job, struct http_read *h, long status)
{
    const struct config_collection *cc = job->cc;

    log_warn(&(struct log_ctx){.system = cc->system->name, .collection = cc->name},
             "the stored page of %s was refused (HTTP %ld): the read starts over", cc->name,
             status);
    free(h->r->page_cur);
    h->r->page_cur = NULL;
    h->r->page_no = cc->poll.page == CONFIG_PAGE_OFFSET ? 0 : 1;
    h->r->started = 0;
}

/* Why a page could not be read: rep->error. */
static void
page_error(const struct config_poll *pc, const struct fetch *f, struct engine_poll_report *rep)
{
    if (f->outcome == HTTP_OUTCOME_RESPONSE)
        (void)snprintf(rep->error, sizeof(rep->error), "GET %s: HTTP %ld: %.200s", pc->list.path,
                       f->status, f->body);
    else
        (void)snprintf(rep->error, sizeof(rep->error), "GET %s: %.200s", pc->list.path,
                       f->error ? f->error : "no answer");
}

/*
 * One page of an HTTP read: fetch it, take its items and commit them with
 * the cursor after it. Returns 1 to go on (h->more says whether pages
 * remain), 0 when the read stops here (rep->error says why), -1 on an
 * error of the store's.
 */
static int
read_page(const struct engine_poll_job *job, struct http_read *h, struct engine_poll_report *rep,
          struct error *err)
{
    const struct config_poll *pc = &job->cc->poll;
    char *url;
    struct fetch f;
    cJSON *answer = NULL, *shaped = NULL;
    const cJSON *items;
    int rc;

    if (job->stop != NULL && atomic_load(job->stop)) {
        (void)snprintf(rep->error, sizeof(rep->error), "stopped part way");
        return 0;
    }
    url = next_url(job, h->r, h->full && !h->r->started);
    rc = fetch(job, url, &f, err);
    free(url);
    if (rc == -1)
        return -1;
    if (f.outcome == HTTP_OUTCOME_RESPONSE &&
        (pc->cursor == CONFIG_CURSOR_SYNC_TOKEN || pc->cursor == CONFIG_CURSOR_DELTA_LINK) &&
        is_resync(pc, f.status) && !rep->resynced &&
        (h->r->token != NULL || h->r->page_cur != NULL)) {
        rc = restart_full(job, h, f.status, rep, err) == -1 ? -1 : 1;
        fetch_fini(&f);
        return rc;
    }
    if (h->resumed && f.outcome == HTTP_OUTCOME_RESPONSE &&
        page_refused(job->cc->system, f.status)) {
        /* Asked again at every poll, it would be refused for good. */
        h->resumed = 0;
        restart_page(job, h, f.status);
        fetch_fini(&f);
        return 1;
    }
    h->resumed = 0;
    if (f.outcome != HTTP_OUTCOME_RESPONSE || f.status < 200 || f.status >= 300 ||
        (answer = cJSON_Parse(f.body)) == NULL) {
        page_error(pc, &f, rep);
        fetch_fini(&f);
        return 0;
    }
    items = pc->items_path ? value_path_get(answer, pc->items_path) : answer;
    /* A shaped collection's events become records (shape.h), series read
     * whole; a read that fails leaves the page for the next poll. */
    if (!cJSON_IsArray(items)) {
        (void)snprintf(rep->error, sizeof(rep->error), "GET %s: no list at `%s` in the answer",
                       pc->list.path, pc->items_path ? pc->items_path : ".");
        rc = 0;
    } else if (job->cc->shape != CONFIG_SHAPE_NONE &&
               shape_page(h->shaper, items, &shaped, rep->error, sizeof(rep->error), err) == -1) {
        rc = -1;
    } else if (job->cc->shape != CONFIG_SHAPE_NONE && shaped == NULL) {
        rc = 0;
    } else {
        h->more = advance(pc, answer, items, f.link, h->r);
        rc = commit_page(job, shaped != NULL ? shaped : items, h, rep, err);
        rc = rc == -1 ? -1 : rc == 1 ? 0 : 1; /* 1: the lease was lost, the read stops */
    }
    cJSON_Delete(shaped);
    cJSON_Delete(answer);
    fetch_fini(&f);
    if (rc == 1) {
        h->r->started = 1;
        rep->pages++;
        progress(job, rep);
        if (job->wake != NULL)
            job->wake(job->user);
    }
    return rc;
}

int
engine_poll_run(const struct engine_poll_job *job, struct engine_poll_report *rep,
                struct error *err)
{
    const struct config_collection *cc = job->cc;
    const struct config_poll *pc = &cc->poll;
    struct store_poll state = {0};
    struct read_state r = {0};
    int64_t started = clock_mono_ms(), read_started_ms = clock_now_ms();
    int lease = 0;
    char holder[300];
    int full = job->reconcile || pc->cursor == CONFIG_CURSOR_NONE, rc = -1, more = 1, got;
    int seen = job->reconcile; /* note what was seen: missing copies are deleted at the end */
    char *newest = NULL;       /* EVENTS: the newest event before a full read */
    struct error quiet = {0};
    struct shape_reader shaper = {.cc = cc,
                                  .get = shape_get,
                                  .user = (void *)(uintptr_t)job,
                                  .st = job->st,
                                  .now_ms = clock_now_ms()};

    memset(rep, 0, sizeof(*rep));
    rep->reconcile = job->reconcile;
    rep->began_ms = started;
    /* A dry run reads the state without making the collection's row: plan
     * changes nothing, not even the schedule of a collection never read. */
    if (store_poll_get(job->st, cc->name, job->dry_run ? -1 : clock_now_ms(), &state, err) == -1)
        return -1;
    /* A reconcile reads about as many as are linked (a table's count, in
     * sql_read(), is better); progress only, so a failure costs nothing. */
    if (job->reconcile && store_linked_count(job->st, cc->name, &rep->expected, &quiet) == -1)
        rep->expected = 0;
    if (!job->dry_run) {
        got = take_lease(job, holder, sizeof(holder), err);
        if (got != 1) {
            store_poll_fini(&state);
            if (got == 0) {
                rep->busy = 1;
                (void)snprintf(rep->error, sizeof(rep->error), "another process is reading %s now",
                               cc->name);
            }
            return got == 0 ? 0 : -1;
        }
        lease = 1;
    }
    /* A reconcile reads everything from the start; a poll goes on from its
     * cursor, and a read that stopped part way goes on from its page. */
    read_state_load(pc, job->reconcile ? NULL : state.cursor, &r);
    if (job->reconcile && store_seen_reset(job->st, err) == -1)
        goto out;
    if (engine_caldav_is(cc)) {
        /* A calendar: sync-collection and multiget (caldav.c). */
        rc = engine_caldav_read(job, job->reconcile ? NULL : state.cursor, holder, rep, err);
        goto out;
    }
    if (cc->system->kind != CONFIG_SYSTEM_HTTP) {
        if (sql_read(job, job->reconcile || cc->updated_at_path == NULL, seen,
                     job->reconcile ? NULL : state.cursor, holder, rep, err) == -1)
            goto out;
        more = !rep->complete;
    }
    if (pc->cursor == CONFIG_CURSOR_EVENTS && !job->reconcile && r.token != NULL) {
        long status = 0;

        if (events_read(job, &r, holder, rep, &status, err) == -1)
            goto out;
        if (!is_resync(pc, status) || rep->error[0] == '\0') {
            rc = 0;
            goto out;
        }
        /* The last event is no longer listed: read the collection whole. */
        log_info(&(struct log_ctx){.system = cc->system->name, .collection = cc->name},
                 "event cursor refused (HTTP %ld): a full read", status);
        rep->error[0] = '\0';
        rep->resynced = 1;
        read_state_fini(&r);
        read_state_load(pc, NULL, &r);
        full = seen = 1;
        if (store_seen_reset(job->st, err) == -1)
            goto out;
    }
    if (pc->each.method != NULL) {
        rc = each_read(job, holder, rep, err);
        goto out;
    }
    if (pc->cursor == CONFIG_CURSOR_SEARCH && !job->reconcile) {
        rc = search_read(job, &r, holder, rep, err);
        goto out;
    }
    if (pc->cursor == CONFIG_CURSOR_EVENTS && r.token == NULL && !r.started && more) {
        /* The newest event first: what happens during the full read is
         * read after it. */
        got = events_newest(job, &newest, rep, err);
        if (got != 1) {
            rc = got == -1 ? -1 : 0;
            goto out;
        }
        full = 1;
    }
    if (newest != NULL) {
        free(r.next_tok);
        r.next_tok = xstrdup(newest);
    }
    if (cc->system->kind == CONFIG_SYSTEM_HTTP) {
        struct http_read h = {.r = &r,
                              .shaper = &shaper,
                              .holder = holder,
                              .full = full,
                              .seen = seen,
                              .more = more,
                              .resumed = r.started};
        int page = 1;

        while (h.more && (page = read_page(job, &h, rep, err)) == 1)
            ;
        if (page == -1)
            goto out;
        more = h.more;
        seen = h.seen;
    }
    rep->complete = !more && rep->error[0] == '\0';
    if (seen && rep->complete) {
        /* take_missing() begins the transaction once it has listed them. */
        if (take_missing(job, &shaper, read_started_ms, rep, err) == -1 ||
            store_commit(job->st, err) == -1) {
            store_rollback(job->st);
            goto out;
        }
    }
    rc = 0;
out:
    rep->elapsed_ms = clock_mono_ms() - started;
    if (lease != 0) {
        struct error ignored = {0};
        int tries = 0;

        /* A busy store must not leave the lease held until it runs out. */
        while (store_poll_release(job->st, cc->name, holder, &ignored) == -1 && ++tries < 50) {
            struct timespec ts = {0, 100 * 1000 * 1000};

            nanosleep(&ts, NULL);
        }
        if (tries == 50)
            log_warn(NULL, "%s: %s (the lease runs out by itself)", cc->name, ignored.msg);
    }
    free(newest);
    shape_reader_fini(&shaper);
    read_state_fini(&r);
    store_poll_fini(&state);
    return rc;
}

/* ---- for readers in other files (caldav.c) ---- */

int
engine_poll_take(const struct engine_poll_job *job, const cJSON *items, int seen,
                 struct engine_poll_report *rep, struct error *err)
{
    struct read_state r;
    int rc;

    read_state_load(&job->cc->poll, NULL, &r);
    rc = take_page(job, items, &r, seen, rep, err);
    read_state_fini(&r);
    return rc;
}

int
engine_poll_gone(const struct engine_poll_job *job, const char *ext_id, struct error *err)
{
    return journal_missing(job, ext_id, err);
}

int
engine_poll_missing(const struct engine_poll_job *job, int64_t read_started_ms,
                    struct engine_poll_report *rep, struct error *err)
{
    /* take_missing() begins the transaction once it has listed them. */
    if (take_missing(job, NULL, read_started_ms, rep, err) == -1 ||
        store_commit(job->st, err) == -1) {
        store_rollback(job->st);
        return -1;
    }
    return 0;
}

int
engine_poll_keep(const struct engine_poll_job *job, const char *cursor, const char *holder,
                 struct error *err)
{
    if (job->dry_run)
        return 0;
    if (cursor != NULL && store_poll_set_cursor(job->st, job->cc->name, cursor, err) == -1)
        return -1;
    return store_poll_lease(job->st, job->cc->name, clock_now_ms(), clock_now_ms() + POLL_LEASE_MS,
                            holder, NULL, err) == -1
               ? -1
               : 0;
}

void
engine_poll_page_done(const struct engine_poll_job *job, struct engine_poll_report *rep)
{
    progress(job, rep);
    if (job->wake != NULL)
        job->wake(job->user);
}

/* ---- the daemon's poll thread ---- */

/* How often the poll thread looks at the schedule (and for `concord poll`). */
#define POLL_TICK_MS 200

/* The daemon's read of one collection, for its callbacks. */
struct poll_run {
    struct engine *e;
    const struct config_collection *cc;
    int64_t logged_ms; /* the last progress line (clock_mono_ms()) */
};

static void
wake_writer(void *user)
{
    struct engine *e = ((struct poll_run *)user)->e;

    pthread_mutex_lock(&e->mu);
    pthread_cond_signal(&e->writer_cv);
    pthread_mutex_unlock(&e->mu);
}

/* A read that takes more than a moment logs how far it got, every
 * ENGINE_POLL_PROGRESS_MS. */
static void
log_progress(void *user, const struct engine_poll_report *r)
{
    struct poll_run *run = user;
    char line[160];

    if (!engine_poll_progress_due(r, &run->logged_ms))
        return;
    engine_poll_progress_line(r, 0, line, sizeof(line));
    log_info(&(struct log_ctx){.system = run->cc->system->name, .collection = run->cc->name},
             "%s under way: %s", r->reconcile ? "reconcile" : "poll", line);
}

/* When the next poll of cc is due after one that ended now. */
int64_t
engine_poll_next_due(const struct config_collection *cc, int64_t now_ms)
{
    const struct config_poll *pc = &cc->poll;

    if (pc->has_cron) {
        /* The next matching minute, with jitter as a share of one minute,
         * so that many collections on one schedule do not start at once. */
        int64_t at = cron_next(&pc->cron, now_ms);

        return at < 0 ? INT64_MAX / 2 : at + (int64_t)(clock_random_unit() * pc->jitter * 60000.0);
    }
    return now_ms + pc->every_ms +
           (int64_t)(clock_random_unit() * pc->jitter * (double)pc->every_ms);
}

/* Run what is due for one collection. */
static void
poll_due(struct engine *e, const struct config_collection *cc)
{
    const struct config_poll *pc = &cc->poll;
    struct engine_coll *coll = &e->colls[engine_coll_index(e, cc->name)];
    struct store_poll state = {0};
    struct engine_poll_report rep;
    struct error err = {0};
    int64_t now = clock_now_ms();
    int reconcile, rc;
    char *report;

    if (store_poll_get(e->poll_st, cc->name, now, &state, &err) == -1) {
        log_warn(&(struct log_ctx){.collection = cc->name}, "poll: %s", err.msg);
        return;
    }
    reconcile =
        state.reconcile_at_ms < 0 ||
        (pc->reconcile_every_ms > 0 && now - state.reconcile_at_ms >= pc->reconcile_every_ms);
    if (state.next_at_ms > now && !reconcile) {
        store_poll_fini(&state);
        return;
    }
    store_poll_fini(&state);
    /* A read that follows one whose changes the writer has not reached yet
     * would read them again, for nothing: a backfill's look-back reads a
     * whole table again so. The next read waits for the writer. */
    if (coll->poll_waits_for > 0) {
        enum change_state s = CHANGE_NEW;
        int found = store_journal_state(e->poll_st, coll->poll_waits_for, &s, &err);

        if (found == 1 && s == CHANGE_NEW)
            return; /* looked at again at the next tick */
        coll->poll_waits_for = 0;
    }
    if (store_poll_started(e->poll_st, cc->name, &err) == -1) {
        log_warn(&(struct log_ctx){.collection = cc->name}, "poll: %s", err.msg);
        return;
    }
    struct poll_run run = {.e = e, .cc = cc};
    struct engine_poll_job job = {
        .cfg = e->cfg,
        .cc = cc,
        .st = e->poll_st,
        .http = e->poll_http,
        .oauth = e->oauth,
        .reconcile = reconcile,
        .progress = log_progress,
        .wake = wake_writer,
        .user = &run,
        .stop = &e->stop_poller,
        .sys = &e->systems[coll->sys_index],
    };
    int64_t began = clock_mono_ms();

    rc = engine_poll_run(&job, &rep, &err);
    now = clock_now_ms();
    metric_observe(e->metrics.poll_seconds, (double)(clock_mono_ms() - began) / 1000.0,
                   (const char *[]){cc->name});
    metric_add(e->metrics.poll_records, (double)rep.read, (const char *[]){cc->name});
    if (rep.changed + rep.fresh + rep.deleted + rep.missing > 0 &&
        store_journal_last(e->poll_st, &coll->poll_waits_for, &err) == -1)
        log_warn(&(struct log_ctx){.collection = cc->name}, "poll: %s", err.msg);
    if (rc == 0 && rep.busy) {
        log_debug(&(struct log_ctx){.collection = cc->name}, "%s", rep.error);
        return; /* another reader has it; its report stands */
    }
    report = engine_poll_report_json(&rep);
    if (rc == -1 || rep.error[0] != '\0') {
        const char *why = rc == -1 ? err.msg : rep.error;

        log_warn(&(struct log_ctx){.system = cc->system->name, .collection = cc->name},
                 "%s stopped part way: %s", reconcile ? "reconcile" : "poll", why);
        if (store_poll_fail(e->poll_st, cc->name, why, now, engine_poll_next_due(cc, now), report,
                            &err) == -1)
            log_warn(NULL, "poll: %s", err.msg);
    } else {
        log_info(&(struct log_ctx){.system = cc->system->name, .collection = cc->name}, "%s: %s",
                 reconcile ? "reconcile" : "poll", report);
        if (store_poll_finish(e->poll_st, cc->name, now, rep.read, engine_poll_next_due(cc, now),
                              report, reconcile && rep.complete ? now : 0, &err) == -1)
            log_warn(NULL, "poll: %s", err.msg);
    }
    free(report);
}

void *
engine_poller_main(void *arg)
{
    struct engine *e = arg;

    (void)pthread_setname_np(pthread_self(), "concord-poll"); /* for top -H and perf */
    while (!atomic_load(&e->stop_poller)) {
        /* Calendar kinds: channels and subscriptions kept alive; before the
         * reads, so a change made after a read began is pushed to it. */
        engine_push_tick(e);
        for (size_t i = 0; i < e->coll_count && !atomic_load(&e->stop_poller); i++) {
            if (e->colls[i].cfg->poll.enabled)
                poll_due(e, e->colls[i].cfg);
        }
        pthread_mutex_lock(&e->mu);
        if (!atomic_load(&e->stop_poller)) {
            struct timespec ts = clock_deadline(POLL_TICK_MS);

            (void)pthread_cond_timedwait(&e->poll_cv, &e->mu, &ts);
        }
        pthread_mutex_unlock(&e->mu);
    }
    return NULL;
}
