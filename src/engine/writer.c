/* SPDX-License-Identifier: MIT */

/*
 * The writer thread: the one place that writes to the store while the
 * daemon runs (DESIGN.md, "Storage"). Each turn of its loop
 *
 *   1. takes every change that HTTP threads handed in, journals them all in
 *      one transaction, and answers them once that commit returned (group
 *      commit: one fsync for many webhooks);
 *   2. in a second transaction, applies finished deliveries, processes
 *      journaled changes (merge.c, fanout.c) and claims due jobs
 *      (deliver.c);
 *   3. hands the claimed jobs to the delivery thread and sleeps until there
 *      is work or a job falls due.
 *
 * A store failure in step 1 answers the batch "unavailable" (HTTP 503) and
 * journals nothing; in step 2 the transaction is rolled back and tried
 * again on the next turn, with the finished deliveries kept in memory.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "engine/engine_int.h"
#include "store/store.h"

/* Changes processed per transaction; more wait for the next turn. Small,
 * so that waiting webhooks and finished deliveries are taken up often: a
 * turn's length is what a webhook waits for its commit. */
#define WRITER_PROCESS_BATCH 64
/* The longest a burst of webhooks may put processing off. */
#define WRITER_MAX_DEFER_MS 50
/* The longest sleep: the CLI may have requeued work (concord retry). */
#define WRITER_IDLE_MS 250

static void
answer_batch(struct engine_ingest *batch, enum engine_ingest_result failed_as)
{
    /* The batch left the shared queue: it is the writer's alone. */
    for (struct engine_ingest *r = batch; r != NULL;) {
        struct engine_ingest *next = r->next;

        r->done_fn(r->done_arg, r->staged != 0 ? r->staged : failed_as);
        free(r);
        r = next;
    }
}

/* Step 1: journal a batch in one transaction. */
static void
journal_batch(struct engine *e, struct engine_ingest *batch)
{
    struct error err = {0};
    int64_t seq;

    if (store_begin(e->st, &err) == -1)
        goto fail;
    for (struct engine_ingest *r = batch; r != NULL; r = r->next) {
        int rc = store_journal_add(e->st, r->system, r->delivery_id, r->received_at_ms, r->body,
                                   r->body_len, &seq, &err);

        if (rc == -1) {
            store_rollback(e->st);
            goto fail;
        }
        /* Stage the answer now; answer_batch() reveals it after the commit.
         * Guarantee: nothing acknowledged is lost. */
        r->staged = rc == 1 ? ENGINE_INGEST_ACCEPTED : ENGINE_INGEST_DUPLICATE;
    }
    if (store_commit(e->st, &err) == -1)
        goto fail;
    atomic_store(&e->ready, 1);
    answer_batch(batch, ENGINE_INGEST_UNAVAILABLE);
    return;

fail:
    log_error(NULL, "journal %s", err.msg);
    atomic_store(&e->ready, 0);
    for (struct engine_ingest *r = batch; r != NULL; r = r->next)
        r->staged = 0;
    answer_batch(batch, ENGINE_INGEST_UNAVAILABLE);
}

/*
 * Apply one finished delivery in a savepoint. If it fails on something of
 * its own (a constraint, an answer concord cannot store), only it is undone
 * and its job is parked with the reason, so one bad answer never blocks the
 * writer's turn for everyone. When even parking fails, the store itself is
 * failing, and the turn fails as a whole.
 */
static int
apply_isolated(struct engine *e, struct engine_delivery *d, int64_t now, struct error *err)
{
    struct error item = {0};
    struct job j = {0};
    char reason[600];
    int found;

    if (store_savepoint(e->st, err) == -1)
        return -1;
    if (engine_apply_result(e, d, now, &item) == 0)
        return store_release(e->st, err);
    if (store_rollback_savepoint(e->st, err) == -1)
        return -1;
    log_error(&(struct log_ctx){.job_id = d->job_id, .record_id = d->record_id},
              "applying an answer failed; the job is parked: %s", item.msg);
    found = store_job_get(e->st, d->job_id, &j, err);
    if (found <= 0)
        return found;
    (void)snprintf(reason, sizeof(reason), "concord could not record the answer to %s %s: %s",
                   d->method, d->path, item.msg);
    struct inbox_entry entry = {
        .kind = d->is_create ? INBOX_UNKNOWN : INBOX_FAILED,
        .system = j.system,
        .collection = j.collection,
        .record_id = j.record_id,
        .job_id = j.id,
        .reason = reason,
        .http_status = (int)d->status,
        .attempts = j.attempts + 1,
        .created_at_ms = now,
    };
    found = engine_park(e, &entry, err);
    job_fini(&j);
    return found;
}

/* What a turn's second transaction does besides applying answers. */
#define TURN_JOURNAL  1 /* process journaled changes */
#define TURN_DRAINING 2 /* stopping: claim nothing */

/* Step 2. Returns 1 when more journaled changes wait, 0 when not, -1. */
static int
process_turn(struct engine *e, struct engine_delivery **results, struct engine_delivery **claimed,
             int flags, struct error *err)
{
    int64_t now = clock_now_ms();
    int processed = 0;

    if (store_begin(e->st, err) == -1)
        return -1;
    for (struct engine_delivery *d = *results; d != NULL; d = d->next) {
        if (apply_isolated(e, d, now, err) == -1)
            goto fail;
    }
    if (flags & TURN_JOURNAL)
        processed = engine_process_journal(e, WRITER_PROCESS_BATCH, err);
    if (processed == -1)
        goto fail;
    if (!(flags & TURN_DRAINING) && engine_claim(e, now, claimed, err) == -1)
        goto fail;
    if (store_commit(e->st, err) == -1)
        goto fail;
    return processed == WRITER_PROCESS_BATCH;

fail:
    store_rollback(e->st);
    return -1;
}

/*
 * Free a list of deliveries and drop their in-flight marks: claims whose
 * transaction did not commit, or answers whose transaction did. Returns
 * how many there were.
 */
static int
drop_deliveries(struct engine *e, struct engine_delivery *list)
{
    int n = 0;

    while (list != NULL) {
        struct engine_delivery *d = list;

        list = d->next;
        engine_link_flight_remove(e, d->link_id);
        e->systems[e->colls[d->coll_index].sys_index].in_flight--;
        if (d->is_create)
            e->colls[d->coll_index].creates_in_flight--;
        engine_delivery_free(d);
        n++;
    }
    return n;
}

/* Undo the in-memory marks of claims whose transaction did not commit. */
static void
unclaim(struct engine *e, struct engine_delivery *list)
{
    (void)drop_deliveries(e, list);
}

/* Drop the in-flight marks of results whose transaction committed. */
static void
release_results(struct engine *e, struct engine_delivery *list)
{
    int n = drop_deliveries(e, list);

    pthread_mutex_lock(&e->mu);
    e->deliveries_out -= n;
    pthread_mutex_unlock(&e->mu);
}

static int64_t
next_wake_ms(struct engine *e, int more)
{
    struct error err = {0};
    int64_t now = clock_now_ms(), due = 0;
    int rc;

    if (more)
        return 0;
    rc = store_job_next_due(e->st, &due, &err);
    if (rc == 1 && due <= now && e->claim_wait_ms > 0)
        return e->claim_wait_ms; /* held back by a budget or a breaker */
    if (rc == 1 && due <= now)
        return 5; /* due but not claimable now (capacity): look again soon */
    if (rc == 1 && due - now < WRITER_IDLE_MS)
        return due - now;
    return WRITER_IDLE_MS;
}

static void
wait_for_work(struct engine *e, int64_t wait_ms)
{
    struct timespec ts;

    if (wait_ms <= 0)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(wait_ms / 1000);
    ts.tv_nsec += (long)(wait_ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    while (e->ingest_head == NULL && e->results == NULL && !e->stop_writer) {
        if (pthread_cond_timedwait(&e->writer_cv, &e->mu, &ts) == ETIMEDOUT)
            break;
    }
}

void *
engine_writer_main(void *arg)
{
    struct engine *e = arg;
    struct engine_delivery *pending_results = NULL;
    int64_t wait_ms = 0, processed_at = clock_mono_ms();
    int more = 0;

    (void)pthread_setname_np(pthread_self(), "concord-writer"); /* for top -H and perf */
    for (;;) {
        struct engine_ingest *batch;
        struct engine_delivery *claimed = NULL, *tail;
        struct error err = {0};
        int draining, stop, defer;

        pthread_mutex_lock(&e->mu);
        if (!more && pending_results == NULL)
            wait_for_work(e, wait_ms);
        batch = e->ingest_head;
        e->ingest_head = e->ingest_tail = NULL;
        for (tail = e->results; tail != NULL && tail->next != NULL; tail = tail->next)
            ;
        if (tail != NULL) {
            tail->next = pending_results;
            pending_results = e->results;
            e->results = NULL;
        }
        draining = e->draining;
        stop = e->stop_writer;
        pthread_mutex_unlock(&e->mu);

        if (batch != NULL)
            journal_batch(e, batch);
        /* Webhooks first: while they keep coming, journal them and put
         * processing off, so a burst is acknowledged at the speed of group
         * commits. Processing waits at most WRITER_MAX_DEFER_MS, and a
         * finished delivery or a quiet moment starts it at once, so
         * deliveries keep flowing. */
        defer = batch != NULL && !stop && clock_mono_ms() - processed_at < WRITER_MAX_DEFER_MS;
        if (defer && pending_results == NULL) {
            more = 0;
            wait_ms = WRITER_MAX_DEFER_MS - (clock_mono_ms() - processed_at);
            continue;
        }
        if (!defer)
            processed_at = clock_mono_ms();
        /* Answers are applied and jobs claimed even while processing is
         * put off, so deliveries keep their pace during a burst. */
        more = process_turn(e, &pending_results, &claimed,
                            (defer ? 0 : TURN_JOURNAL) | (draining ? TURN_DRAINING : 0), &err);
        if (more == -1) {
            atomic_store(&e->ready, 0);
            log_error(NULL, "process %s", err.msg);
            unclaim(e, claimed);
            more = 0;
            wait_ms = WRITER_IDLE_MS; /* the store failed: do not spin */
            if (stop)
                break;
            continue;
        }
        release_results(e, pending_results);
        pending_results = NULL;
        if (claimed != NULL) {
            int n = 1;

            pthread_mutex_lock(&e->mu);
            for (tail = claimed; tail->next != NULL; tail = tail->next)
                n++;
            e->deliveries_out += n;
            tail->next = e->handoff;
            e->handoff = claimed;
            pthread_mutex_unlock(&e->mu);
            http_client_wakeup(e->http);
        }
        if (stop && !more)
            break;
        wait_ms =
            defer ? WRITER_MAX_DEFER_MS - (clock_mono_ms() - processed_at) : next_wake_ms(e, more);
    }
    /* Results that never committed: their jobs stay running in the store
     * and engine_recover() settles them at the next start. */
    while (pending_results != NULL) {
        struct engine_delivery *d = pending_results;

        pending_results = d->next;
        engine_delivery_free(d);
    }
    return NULL;
}

int
engine_recover(struct engine *e, struct error *err)
{
    struct job *jobs = NULL;
    int64_t now = clock_now_ms();
    int n;

    if (store_begin(e->st, err) == -1)
        return -1;
    n = store_job_list(e->st, JOB_RUNNING, &jobs, err);
    if (n == -1)
        goto fail;
    for (int i = 0; i < n; i++) {
        struct job *j = &jobs[i];
        struct link l = {0};
        int found = store_link_get(e->st, j->link_id, &l, err);

        if (found == -1)
            goto fail;
        /* Guarantee: no duplicate create. A create that was in flight when
         * the last process died may have happened. Where the collection has
         * an idempotency key or a look-up, the job settles it by itself
         * (deliver.c, plan_job); elsewhere a person decides. */
        int ci = engine_coll_index(e, j->collection);
        const struct config_collection *cc = ci >= 0 ? e->colls[ci].cfg : NULL;
        int self_settles =
            cc != NULL && (cc->idempotency_header != NULL || cc->idempotency_field != NULL ||
                           cc->lookup.method != NULL);

        if (found && l.ext_id == NULL && j->op == JOB_OP_UPSERT && !self_settles) {
            struct inbox_entry entry = {
                .kind = INBOX_UNKNOWN,
                .system = j->system,
                .collection = j->collection,
                .record_id = j->record_id,
                .job_id = j->id,
                .reason = "concord stopped while this create was in flight: the record may or "
                          "may not exist in the target; check it, then retry or skip",
                .attempts = j->attempts,
                .created_at_ms = now,
            };
            if (engine_park(e, &entry, err) == -1) {
                link_fini(&l);
                goto fail;
            }
            log_warn(
                &(struct log_ctx){.system = j->system, .record_id = j->record_id, .job_id = j->id},
                "a create was in flight at the last stop; parked as outcome unknown");
        } else if (store_job_set(e->st, j->id, JOB_PENDING, j->attempts, now, err) == -1) {
            link_fini(&l);
            goto fail;
        }
        link_fini(&l);
    }
    store_jobs_free(jobs, n);
    return store_commit(e->st, err);

fail:
    if (n > 0)
        store_jobs_free(jobs, n);
    store_rollback(e->st);
    return error_wrap(err, "recover jobs in flight");
}
