/* SPDX-License-Identifier: MIT */

/*
 * The engine's life: build the per-collection and per-system parts from the
 * config, start and stop the two threads, and take changes in from the HTTP
 * threads (engine_ingest). The writer's loop is in writer.c; what it does
 * with a change is in merge.c and fanout.c; jobs go out through deliver.c.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "connectors/oauth.h"
#include "core/clock.h"
#include "core/compiler.h"
#include "core/error.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/xmalloc.h"
#include "engine/engine_int.h"
#include "map/map.h"
#include "model/value.h"
#include "store/store.h"

/* Add the top-level member that dotted path starts in to keep. Returns
 * -1 when the path is the whole record. */
static int
keep_member(char ***keep, size_t *n, const char *path)
{
    const char *p = path != NULL && path[0] == '.' ? path + 1 : path;
    size_t len = p != NULL ? strcspn(p, ".") : 0;

    if (len == 0)
        return -1;
    for (size_t i = 0; i < *n; i++) {
        if (strncmp((*keep)[i], p, len) == 0 && (*keep)[i][len] == '\0')
            return 0;
    }
    *keep = xreallocarray(*keep, *n + 1, sizeof(**keep));
    (*keep)[(*n)++] = xstrndup(p, len);
    return 0;
}

void
engine_copy_keep_free(char **keep, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(keep[i]);
    free(keep);
}

/*
 * What a link of cc keeps of its copy (engine_copy_text()). A collection
 * that is only read from (no map_out: nothing is ever written to it from
 * its base), a plain HTTP one (no shape, SQL table or calendar, which keep
 * more in a base), whose map_in reads paths alone (a jq entry may read any
 * member) and which, if polled, has no deleted_when (a poll skips a row
 * equal to its base, and deleted_when may read any member) keeps the
 * members those paths, its id and its timestamp start in: a shop's
 * customer of 936 bytes kept 157, and the links table was a
 * third of the WAL a relayed change wrote (bench/README.md, "Session 17").
 * A member a later map starts to read is missing from the bases kept
 * before: the next change of each copy brings its value in as a change.
 */
int
engine_copy_keep(const struct config_collection *cc, char ***keep, size_t *n)
{
    int ok = cc->map_in.entry_count > 0 && cc->map_out.entry_count == 0 &&
             cc->system->kind == CONFIG_SYSTEM_HTTP && cc->shape == CONFIG_SHAPE_NONE &&
             !engine_caldav_is(cc) &&
             !(cc->deleted_jq != NULL && (cc->poll.enabled || cc->webhook_hint));

    *keep = NULL;
    *n = 0;
    for (size_t i = 0; ok && i < cc->map_in.entry_count; i++) {
        const struct config_map_entry *me = &cc->map_in.entries[i];

        if (me->source == CONFIG_MAP_JQ ||
            (me->source == CONFIG_MAP_PATH && keep_member(keep, n, me->path) == -1))
            ok = 0;
    }
    if (ok &&
        (keep_member(keep, n, cc->id_path ? cc->id_path : "id") == -1 ||
         (cc->updated_at_path != NULL && keep_member(keep, n, cc->updated_at_path) == -1) ||
         (cc->event_time_path != NULL && keep_member(keep, n, CONFIG_EVENT_TIME_FIELD) == -1)))
        ok = 0;
    if (!ok) {
        engine_copy_keep_free(*keep, *n);
        *keep = NULL;
        *n = 0;
    }
    return ok;
}

char *
engine_copy_text(char *const *keep, size_t keep_count, const cJSON *record)
{
    const cJSON *few[16], **kept;
    size_t n = 0;
    char *text;

    if (keep == NULL || !cJSON_IsObject(record))
        return value_canonical_text(record);
    kept = keep_count <= ARRAY_COUNT(few) ? few : xcalloc(keep_count, sizeof(*kept));
    for (const cJSON *m = record->child; m != NULL && n < keep_count; m = m->next) {
        for (size_t i = 0; m->string != NULL && i < keep_count; i++) {
            if (strcmp(m->string, keep[i]) == 0) {
                kept[n++] = m;
                break;
            }
        }
    }
    text = value_canonical_members(kept, n);
    if (kept != few)
        free(kept);
    return text;
}

static int
compile_coll(struct engine *e, struct engine_coll *c, const struct config_collection *cc,
             struct error *err)
{
    const struct config_model *model = config_model_find(e->cfg, cc->model);

    c->cfg = cc;
    if (cc->system->kind != CONFIG_SYSTEM_HTTP) {
        c->sql = engine_sql_table(cc);
        if (sql_table_check(&c->sql, err) == -1)
            return error_wrap(err, "%s", cc->name);
    }
    for (size_t i = 0; i < e->sys_count; i++) {
        if (e->systems[i].cfg == cc->system)
            c->sys_index = (int)i;
    }
    if (model == NULL)
        return error_set(err, ERROR_INVALID, "%s: unknown model %s", cc->name, cc->model);
    if (cc->map_in.entry_count > 0 && map_new(&cc->map_in, model, MAP_IN, &c->map_in, err) == -1)
        return error_wrap(err, "%s: map_in", cc->name);
    if (cc->map_out.entry_count > 0 &&
        map_new(&cc->map_out, model, MAP_OUT, &c->map_out, err) == -1)
        return error_wrap(err, "%s: map_out", cc->name);
    if (cc->match_jq != NULL && map_jq_new(cc->match_jq, &c->match, err) == -1)
        return error_wrap(err, "%s: match", cc->name);
    if (cc->deleted_jq != NULL && map_jq_new(cc->deleted_jq, &c->deleted, err) == -1)
        return error_wrap(err, "%s: deleted_when", cc->name);
    for (size_t s = 0; s < e->cfg->sync_count && c->sync == NULL; s++) {
        const struct config_sync *sync = &e->cfg->syncs[s];

        for (size_t i = 0; i < sync->collection_count; i++) {
            if (sync->collections[i] == cc)
                c->sync = sync;
        }
    }
    (void)engine_copy_keep(cc, &c->base_keep, &c->base_keep_count);
    c->only_receives = cc->issued == 0;
    for (size_t s = 0; s < e->cfg->sync_count; s++) {
        const struct config_sync *sync = &e->cfg->syncs[s];
        int holds = strcmp(sync->model, cc->model) == 0;

        for (size_t i = 0; i < sync->collection_count; i++)
            holds |= sync->collections[i] == cc;
        if (holds && (sync->match_count > 0 || engine_may_write(sync, cc->system->name)))
            c->only_receives = 0;
    }
    for (size_t f = 0; c->sync != NULL && f < c->sync->filter_count; f++) {
        if (c->sync->filters[f].collection == cc &&
            map_jq_new(c->sync->filters[f].jq, &c->filter, err) == -1)
            return error_wrap(err, "%s: filter", cc->name);
    }
    return 0;
}

static void
setup_systems(struct engine *e)
{
    e->sys_count = e->cfg->system_count;
    e->systems = xcalloc(e->sys_count, sizeof(*e->systems));
    e->sys_names = xcalloc(e->sys_count + 1, sizeof(*e->sys_names));
    for (size_t i = 0; i < e->sys_count; i++) {
        const struct config_system *sc = &e->cfg->systems[i];
        struct engine_sys *s = &e->systems[i];

        s->cfg = sc;
        s->claim_cap = sc->max_in_flight;
        e->sys_names[i] = sc->name;
        pthread_mutex_init(&s->budget_mu, NULL);
        ratelimit_init(&s->rl, sc->rate_limit.rate_per_s, sc->rate_limit.burst, clock_mono_ms());
        breaker_init(&s->br, &sc->breaker);
        s->br_saved = BREAKER_CLOSED;
        s->header_count = sc->auth_header_count;
        s->headers = xcalloc(s->header_count, sizeof(*s->headers));
        for (size_t h = 0; h < sc->auth_header_count; h++) {
            s->headers[h].name = sc->auth_headers[h].name;
            s->headers[h].value = secret_bytes(&sc->auth_headers[h].value);
        }
    }
}

/*
 * Which systems claim ahead (deliver.c, "Claims ahead"), up to
 * ENGINE_CLAIMS_AHEAD times max_in_flight: a plain HTTP
 * system with no request budget of its own, whose collections are all
 * plain (no numbered, shaped or calendar writes, which keep state between
 * a claim and its answer). A budget's tokens are taken at the claim, so a
 * held claim would send later than its token allowed.
 */
static void
plan_claims_ahead(struct engine *e)
{
    for (size_t s = 0; s < e->sys_count; s++) {
        struct engine_sys *sys = &e->systems[s];
        int plain = sys->cfg->kind == CONFIG_SYSTEM_HTTP && sys->cfg->rate_limit.rate_per_s == 0;

        for (size_t i = 0; i < e->coll_count && plain; i++) {
            const struct config_collection *cc = e->colls[i].cfg;

            if (e->colls[i].sys_index == (int)s &&
                (cc->numbering.enabled || cc->shape != CONFIG_SHAPE_NONE || engine_caldav_is(cc)))
                plain = 0;
        }
        sys->claim_cap = sys->cfg->max_in_flight * (plain ? ENGINE_CLAIMS_AHEAD : 1);
    }
}

int
engine_setup(const struct config *cfg, struct engine **out, struct error *err)
{
    struct engine *e = xcalloc(1, sizeof(*e));

    e->cfg = cfg;
    e->match_open = -1;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->writer_cv, NULL);
    pthread_cond_init(&e->ckpt_cv, NULL);
    pthread_cond_init(&e->poll_cv, NULL);
    pthread_mutex_init(&e->scrape_mu, NULL);
    engine_metrics_setup(e);
    setup_systems(e);
    e->coll_count = cfg->collection_count;
    e->colls = xcalloc(e->coll_count, sizeof(*e->colls));
    for (size_t i = 0; i < e->coll_count; i++) {
        if (compile_coll(e, &e->colls[i], &cfg->collections[i], err) == -1)
            goto fail;
    }
    plan_claims_ahead(e);
    if (engine_automation_setup(e, err) == -1 || store_open(&e->st, cfg->store_url, err) == -1)
        goto fail;
    *out = e;
    return 0;

fail:
    engine_free(e);
    return -1;
}

/* The store's part of idempotency keys (store_schema.c, migration 16). */
static int
load_idem_prefix(struct engine *e, struct error *err)
{
    char *text = NULL;

    if (store_meta_get(e->st, "idempotency_prefix", &text, err) == -1)
        return -1;
    (void)snprintf(e->idem_prefix, sizeof(e->idem_prefix), "%s", text != NULL ? text : "");
    free(text);
    return 0;
}

int
engine_new(const struct config *cfg, struct engine **out, struct error *err)
{
    struct engine *e;

    if (engine_setup(cfg, &e, err) == -1)
        return -1;
    if (store_open(&e->ckpt_st, cfg->store_url, err) == -1 ||
        store_no_autocheckpoint(e->st, err) == -1)
        goto fail;
    for (size_t i = 0; i < cfg->collection_count && e->poll_st == NULL; i++) {
        if (cfg->collections[i].poll.enabled &&
            (store_open(&e->poll_st, cfg->store_url, err) == -1 ||
             http_client_new(&e->poll_http, err) == -1))
            goto fail;
    }
    if (http_client_new(&e->http, err) == -1 || oauth_new(cfg, &e->oauth, err) == -1 ||
        engine_automation_open(e, err) == -1)
        goto fail;
    if (load_idem_prefix(e, err) == -1 || engine_recover(e, err) == -1 ||
        engine_push_load(e, err) == -1)
        goto fail;
    atomic_store(&e->ready, 1);
    *out = e;
    return 0;

fail:
    engine_free(e);
    return -1;
}

/*
 * The checkpointer: copies the WAL into the database ten times a second
 * with a passive checkpoint, on its own handle, so no commit of the writer
 * ever waits for one, and what is left for the writer when the WAL grows
 * long (writer.c, keep_wal_short) stays small. (A checkpoint never loses
 * anything: what it copies is already durable in the WAL.)
 */
/* How often deleted records past the tombstone time are removed: every
 * minute, or a quarter of the tombstone time when that is shorter. */
#define PURGE_EVERY_MS 60000
#define PURGE_MIN_MS   500

/* Remove tombstones older than the config's tombstone_ttl, in a
 * transaction of the checkpointer's own handle. */
static void
purge_tombstones(struct engine *e)
{
    struct error err = {0};
    int n;

    if (store_begin(e->ckpt_st, &err) == -1) {
        log_warn(NULL, "purge tombstones: %s", err.msg);
        return;
    }
    n = store_tombstones_purge(e->ckpt_st, clock_now_ms() - e->cfg->tombstone_ttl_ms, &err);
    if (n == -1 || store_commit(e->ckpt_st, &err) == -1) {
        store_rollback(e->ckpt_st);
        log_warn(NULL, "purge tombstones: %s", err.msg);
        return;
    }
    if (n > 0)
        log_info(NULL, "purged %d deleted record%s past their tombstone time", n,
                 n == 1 ? "" : "s");
}

/* Prune what the retention times let go, a batch per transaction, at most
 * PRUNE_BATCHES batches a turn: the writer waits for one batch at most. */
#define PRUNE_BATCH   2000
#define PRUNE_BATCHES 20

static void
prune_old(struct engine *e)
{
    const struct config *cfg = e->cfg;
    int64_t now = clock_now_ms(), total = 0;
    const int64_t before[4] = {
        cfg->keep_journal_ms > 0 ? now - cfg->keep_journal_ms : 0,
        cfg->keep_versions_ms > 0 ? now - cfg->keep_versions_ms : 0,
        cfg->keep_attempts_ms > 0 ? now - cfg->keep_attempts_ms : 0,
        cfg->keep_inbox_ms > 0 ? now - cfg->keep_inbox_ms : 0,
    };
    const int64_t runs_before = cfg->keep_runs_ms > 0 ? now - cfg->keep_runs_ms : 0;
    struct error err = {0};

    for (int i = 0; i < PRUNE_BATCHES; i++) {
        int n, runs;

        if (store_begin(e->ckpt_st, &err) == -1)
            break;
        n = store_retention_prune(e->ckpt_st, before, PRUNE_BATCH, &err);
        if (n != -1) {
            /* Runs weigh more (a context, and a row per action): a smaller batch. */
            runs = store_retention_prune_runs(e->ckpt_st, runs_before, PRUNE_BATCH / 4, &err);
            n = runs == -1 ? -1 : n + runs;
        }
        if (n == -1 || store_commit(e->ckpt_st, &err) == -1) {
            store_rollback(e->ckpt_st);
            break;
        }
        total += n;
        if (n == 0)
            break;
    }
    if (err.msg[0] != '\0')
        log_warn(NULL, "retention: %s", err.msg);
    if (total > 0)
        log_debug(NULL, "retention: pruned %lld old rows", (long long)total);
}

static void *
checkpointer_main(void *arg)
{
    struct engine *e = arg;
    int64_t purged_at = 0, sampled_at = 0;

    (void)pthread_setname_np(pthread_self(), "concord-ckpt"); /* for top -H and perf */
    pthread_mutex_lock(&e->mu);
    while (!e->stop_checkpointer) {
        struct timespec ts = clock_deadline(100);
        struct error err = {0};

        (void)pthread_cond_timedwait(&e->ckpt_cv, &e->mu, &ts);
        if (e->stop_checkpointer)
            break;
        pthread_mutex_unlock(&e->mu);
        if (store_checkpoint(e->ckpt_st, &err) == -1)
            log_warn(NULL, "%s", err.msg);
        int64_t every = e->cfg->tombstone_ttl_ms / 4;

        for (size_t k = 0; k < 5; k++) {
            const int64_t keep[5] = {e->cfg->keep_journal_ms, e->cfg->keep_versions_ms,
                                     e->cfg->keep_attempts_ms, e->cfg->keep_inbox_ms,
                                     e->cfg->keep_runs_ms};

            if (keep[k] > 0 && keep[k] / 4 < every)
                every = keep[k] / 4;
        }

        if (every > PURGE_EVERY_MS)
            every = PURGE_EVERY_MS;
        if (every < PURGE_MIN_MS)
            every = PURGE_MIN_MS;
        if (clock_mono_ms() - sampled_at >= ENGINE_SERIES_STEP_MS) {
            engine_series_sample(e, e->ckpt_st);
            sampled_at = clock_mono_ms();
        }
        if (clock_mono_ms() - purged_at >= every) {
            purge_tombstones(e);
            prune_old(e);
            purged_at = clock_mono_ms();
        }
        pthread_mutex_lock(&e->mu);
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

/* The writer's last turn applies what the deliverer handed back. */
static void
stop_writer(struct engine *e)
{
    pthread_mutex_lock(&e->mu);
    e->stop_writer = 1;
    pthread_cond_signal(&e->writer_cv);
    pthread_mutex_unlock(&e->mu);
    pthread_join(e->writer, NULL);
}

static void
stop_checkpointer(struct engine *e)
{
    pthread_mutex_lock(&e->mu);
    e->stop_checkpointer = 1;
    pthread_cond_signal(&e->ckpt_cv);
    pthread_mutex_unlock(&e->mu);
    pthread_join(e->checkpointer, NULL);
}

int
engine_start(struct engine *e, struct error *err)
{
    if (pthread_create(&e->checkpointer, NULL, checkpointer_main, e) != 0)
        return error_set(err, ERROR_INTERNAL, "start the checkpoint thread");
    if (pthread_create(&e->writer, NULL, engine_writer_main, e) != 0) {
        stop_checkpointer(e);
        return error_set(err, ERROR_INTERNAL, "start the writer thread");
    }
    if (pthread_create(&e->deliverer, NULL, engine_deliverer_main, e) != 0) {
        stop_writer(e);
        stop_checkpointer(e);
        return error_set(err, ERROR_INTERNAL, "start the delivery thread");
    }
    if (e->poll_st != NULL && pthread_create(&e->poller, NULL, engine_poller_main, e) != 0) {
        e->poll_st_started = 0;
        log_warn(NULL, "the poll thread did not start: collections are not polled");
    } else if (e->poll_st != NULL) {
        e->poll_st_started = 1;
    }
    if (engine_automation_start(e, err) == -1)
        log_warn(NULL, "%s: automations do not run", err->msg);
    e->started = 1;
    return 0;
}

void
engine_stop(struct engine *e, int64_t deadline_ms)
{
    int64_t until = clock_mono_ms() + deadline_ms;

    if (!e->started)
        return;
    /* An http action in flight gets the deadline for its answer, as the
     * deliveries do: one cut off is sent again at the next start, though
     * the system may have taken it. */
    engine_automation_stop(e, until);
    if (e->poll_st_started) {
        /* The poll thread stops at its next page; what it committed stays. */
        atomic_store(&e->stop_poller, 1);
        pthread_mutex_lock(&e->mu);
        pthread_cond_signal(&e->poll_cv);
        pthread_mutex_unlock(&e->mu);
        pthread_join(e->poller, NULL);
        e->poll_st_started = 0;
    }
    pthread_mutex_lock(&e->mu);
    e->draining = 1;
    pthread_cond_signal(&e->writer_cv);
    /* A turn that began before draining may still claim: its claims are
     * handed off before the writer's next turn sees draining, and they go
     * out too. Stopping the deliverer first dropped them unsent, and the
     * next start took their creates for ones whose outcome was unknown. */
    while ((!e->drain_seen || e->deliveries_out > 0) && clock_mono_ms() < until) {
        pthread_mutex_unlock(&e->mu);
        http_client_wakeup(e->http);
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&e->mu);
    }
    if (e->deliveries_out > 0)
        log_warn(NULL,
                 "%d deliveries still in flight at the deadline; they resume at the next start",
                 e->deliveries_out);
    e->stop_deliverer = 1;
    pthread_mutex_unlock(&e->mu);
    http_client_wakeup(e->http);
    pthread_join(e->deliverer, NULL);

    stop_writer(e);
    stop_checkpointer(e);
    e->started = 0;
}

void
engine_free(struct engine *e)
{
    if (e == NULL)
        return;
    if (e->started)
        engine_stop(e, 0);
    engine_automation_free(e);
    for (size_t i = 0; i < e->coll_count; i++) {
        map_free(e->colls[i].map_in);
        map_free(e->colls[i].map_out);
        map_jq_free(e->colls[i].match);
        map_jq_free(e->colls[i].deleted);
        map_jq_free(e->colls[i].filter);
        engine_copy_keep_free(e->colls[i].base_keep, e->colls[i].base_keep_count);
    }
    free(e->colls);
    free(e->held_applied);
    free(e->held_echoes);
    engine_parsed_clear(e);
    for (size_t i = 0; i < e->sys_count; i++) {
        free(e->systems[i].headers);
        free(e->systems[i].delete_times);
        sql_close(e->systems[i].sql);
        pthread_mutex_destroy(&e->systems[i].budget_mu);
    }
    free(e->systems);
    free(e->sys_names);
    while (e->handoff != NULL) {
        struct engine_delivery *d = e->handoff;

        e->handoff = d->next;
        engine_delivery_free(d);
    }
    while (e->results != NULL) {
        struct engine_delivery *d = e->results;

        e->results = d->next;
        engine_delivery_free(d);
    }
    http_client_free(e->http);
    /* Transfers cut off at the stop: their jobs stay running in the store. */
    for (size_t i = 0; i < e->sent_count; i++)
        engine_delivery_free(e->sent[i]);
    free(e->sent);
    store_close(e->st);
    store_close(e->ckpt_st);
    store_close(e->poll_st);
    http_client_free(e->poll_http);
    oauth_free(e->oauth);
    engine_push_free(e);
    store_close(e->scrape_st);
    free(e->series);
    metrics_free(e->metrics.reg);
    pthread_cond_destroy(&e->poll_cv);
    free(e->links_in_flight);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->writer_cv);
    pthread_cond_destroy(&e->ckpt_cv);
    free(e);
}

void
engine_ingest_start(struct engine *e, const char *system, const char *delivery_id, const char *body,
                    size_t body_len, struct cJSON *parsed, engine_ingest_done_fn *done, void *arg)
{
    struct engine_ingest *req = xcalloc(1, sizeof(*req));

    req->system = system;
    req->delivery_id = delivery_id;
    req->body = body;
    req->body_len = body_len;
    /* A long body's tree would cost more memory than its parse saves; and
     * while a burst puts processing off, most trees would be dropped from
     * the writer's ring unused, after a free on another thread's heap and
     * a parse again: here the tree is freed where it was made. */
    if (parsed != NULL && (body_len > ENGINE_PARSED_BODY_MAX || !atomic_load(&e->parsed_wanted))) {
        cJSON_Delete(parsed);
        parsed = NULL;
    }
    req->parsed = parsed;
    if (parsed != NULL) {
        req->parsed_bytes = xmalloc(body_len > 0 ? body_len : 1);
        memcpy(req->parsed_bytes, body, body_len);
    }
    req->received_at_ms = clock_now_ms();
    req->done_fn = done;
    req->done_arg = arg;
    pthread_mutex_lock(&e->mu);
    if (e->stop_writer || !e->started) {
        pthread_mutex_unlock(&e->mu);
        cJSON_Delete(parsed);
        free(req->parsed_bytes);
        free(req);
        done(arg, ENGINE_INGEST_STOPPING);
        return;
    }
    if (e->ingest_tail != NULL)
        e->ingest_tail->next = req;
    else
        e->ingest_head = req;
    e->ingest_tail = req;
    pthread_cond_signal(&e->writer_cv);
    pthread_mutex_unlock(&e->mu);
}

int
engine_is_ready(const struct engine *e)
{
    return atomic_load(&e->ready);
}

int
engine_coll_index(const struct engine *e, const char *name)
{
    for (size_t i = 0; i < e->coll_count; i++) {
        if (strcmp(e->colls[i].cfg->name, name) == 0)
            return (int)i;
    }
    return -1;
}

int
engine_is_origin(const struct engine *e, const char *model, const char *system)
{
    for (size_t i = 0; i < e->cfg->sync_count; i++) {
        const struct config_sync *s = &e->cfg->syncs[i];

        if (strcmp(s->model, model) != 0)
            continue;
        for (size_t o = 0; o < s->origin_count; o++) {
            if (strcmp(s->origins[o], system) == 0)
                return 1;
        }
    }
    return 0;
}

int
engine_link_in_flight(const struct engine *e, int64_t link_id)
{
    for (size_t i = 0; i < e->links_in_flight_count; i++) {
        if (e->links_in_flight[i] == link_id)
            return 1;
    }
    return 0;
}

void
engine_link_flight_add(struct engine *e, int64_t link_id)
{
    if (e->links_in_flight_count == e->links_in_flight_cap) {
        e->links_in_flight_cap = e->links_in_flight_cap ? e->links_in_flight_cap * 2 : 64;
        e->links_in_flight =
            xreallocarray(e->links_in_flight, e->links_in_flight_cap, sizeof(int64_t));
    }
    e->links_in_flight[e->links_in_flight_count++] = link_id;
}

void
engine_link_flight_remove(struct engine *e, int64_t link_id)
{
    for (size_t i = 0; i < e->links_in_flight_count; i++) {
        if (e->links_in_flight[i] == link_id) {
            e->links_in_flight[i] = e->links_in_flight[--e->links_in_flight_count];
            return;
        }
    }
}
