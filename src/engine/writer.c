/* SPDX-License-Identifier: MIT */

/*
 * The writer thread: the one place that writes to the store while the
 * daemon runs (DESIGN.md, "Storage"). Each turn of its loop
 *
 *   1. takes every change that HTTP threads handed in and journals them
 *      all (group commit: one fsync for many webhooks);
 *   2. applies finished deliveries (deliver.c);
 *   3. processes journaled changes (merge.c, fanout.c), unless a burst of
 *      webhooks puts that off, applying answers that come back meanwhile;
 *      a new copy's create may be claimed there as it is queued (deliver.c,
 *      "jobs born claimed");
 *   4. claims due jobs, the ones step 3 queued among them (deliver.c);
 *   5. commits steps 1 to 4 in one transaction, then answers the webhooks
 *      and hands the claims to the delivery thread: one fsync per turn;
 *   6. sleeps until there is work or a job falls due.
 *
 * A store failure in step 1 answers the batch "unavailable" (HTTP 503) and
 * journals nothing; one in step 3 alone is retried without it; otherwise
 * the transaction is rolled back, the batch journaled alone, and the rest
 * tried again on the next turn, with the finished deliveries kept in
 * memory.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/xmalloc.h"
#include "engine/engine_int.h"
#include "store/store.h"

/* Changes processed at a time. A turn goes on to the next batch while no
 * webhook waits for its commit (a turn's length is what a webhook waits;
 * answers that wait are applied between two batches), up to
 * WRITER_PROCESS_MAX changes or WRITER_PROCESS_MS: a backfill or a
 * backlog then costs one fsync per up to WRITER_PROCESS_MAX changes. The
 * claims a turn makes go out only after its commit, so its length is also
 * a delivery's round trip: with 25 ms a backfill into a table stalled at
 * max_in_flight rows per ~30 ms (bench/README.md, "Ninth pass"). */
#define WRITER_PROCESS_BATCH 64
#define WRITER_PROCESS_MAX   1024
#define WRITER_PROCESS_MS    8
/* The longest a burst of webhooks may put processing off. */
#define WRITER_MAX_DEFER_MS 50
/* The longest sleep: the CLI may have requeued work (concord retry). */
#define WRITER_IDLE_MS 250
/* WAL pages past which the writer checkpoints what the checkpointer left. */
#define WRITER_WAL_RESTART_FRAMES 2048
/* WAL pages after which the writer wakes the checkpointer again. */
#define WRITER_WAL_KICK_FRAMES (WRITER_WAL_RESTART_FRAMES / 4)

/*
 * The HTTP threads parse every webhook (a bad one is answered 400), and
 * the writer needed the same tree again to process it: parsing was about a
 * sixth of the writer's work on a change. The tree comes along with the
 * change and waits here, keyed by its journal seq, until processing takes
 * it. Only a turn's own inserts are kept, and a rolled-back turn drops
 * them all. A seq is taken anew only when its row was deleted unprocessed
 * (concord forget) while it was the last: so an entry keeps the bytes its
 * tree was parsed from, and the row must hold exactly those (a sum, even
 * a keyed one, was found forgeable). A tree costs about 4 to 40 times its
 * body, so bodies over ENGINE_PARSED_BODY_MAX bring none, and the ring
 * drops its oldest past ENGINE_PARSED_BYTES of bodies: a journal held up
 * behind a change that waits keeps little.
 */

/* Drop the oldest tree kept. */
static void
parsed_drop_oldest(struct engine *e)
{
    struct engine_parsed *p = &e->parsed[e->parsed_head];

    cJSON_Delete(p->doc);
    free(p->bytes);
    e->parsed_bytes -= p->len;
    e->parsed_head = (e->parsed_head + 1) % ENGINE_PARSED_MAX;
    e->parsed_count--;
}

void
engine_parsed_keep(struct engine *e, int64_t seq, char *bytes, size_t len, cJSON *doc)
{
    size_t slot;

    if (len > ENGINE_PARSED_BODY_MAX) {
        cJSON_Delete(doc);
        free(bytes);
        return;
    }
    if (e->parsed == NULL)
        e->parsed = xcalloc(ENGINE_PARSED_MAX, sizeof(*e->parsed));
    while (e->parsed_count > 0 &&
           (e->parsed_count == ENGINE_PARSED_MAX || e->parsed_bytes + len > ENGINE_PARSED_BYTES))
        parsed_drop_oldest(e);
    slot = (e->parsed_head + e->parsed_count) % ENGINE_PARSED_MAX;
    e->parsed[slot] = (struct engine_parsed){.seq = seq, .len = len, .bytes = bytes, .doc = doc};
    e->parsed_count++;
    e->parsed_bytes += len;
}

cJSON *
engine_parsed_take(struct engine *e, int64_t seq, const char *body, size_t len)
{
    /* Changes are processed in journal order: older ones left here were
     * processed without their tree (a redo, a replay). */
    while (e->parsed_count > 0) {
        struct engine_parsed *p = &e->parsed[e->parsed_head];
        int64_t at = p->seq;
        cJSON *doc = p->doc;

        if (at > seq)
            return NULL;
        if (at == seq && p->len == len && memcmp(p->bytes, body, len) == 0) {
            p->doc = NULL; /* given to the caller */
            parsed_drop_oldest(e);
            return doc;
        }
        parsed_drop_oldest(e);
        if (at == seq)
            return NULL; /* other bytes at this seq now: parse them */
    }
    return NULL;
}

void
engine_parsed_clear(struct engine *e)
{
    while (e->parsed_count > 0)
        parsed_drop_oldest(e);
    free(e->parsed);
    e->parsed = NULL;
    e->parsed_head = 0;
}

static void
answer_batch(struct engine_ingest *batch, enum engine_ingest_result failed_as)
{
    /* The batch left the shared queue: it is the writer's alone. */
    for (struct engine_ingest *r = batch; r != NULL;) {
        struct engine_ingest *next = r->next;

        r->done_fn(r->done_arg, r->staged != 0 ? r->staged : failed_as);
        cJSON_Delete(r->parsed);
        free(r->parsed_bytes);
        free(r);
        r = next;
    }
}

/* Journal a batch inside the open transaction, staging each answer; keep
 * their parsed bodies when keep is set (the caller clears them if the
 * transaction rolls back). */
static int
journal_rows(struct engine *e, struct engine_ingest *batch, int keep, struct error *err)
{
    int64_t seq;

    for (struct engine_ingest *r = batch; r != NULL; r = r->next) {
        int rc = store_journal_add(e->st, r->system, r->delivery_id, r->received_at_ms, r->body,
                                   r->body_len, &seq, err);

        if (rc == -1)
            return -1;
        /* Stage the answer now; answer_batch() reveals it after the commit.
         * Guarantee: nothing acknowledged is lost. */
        r->staged = rc == 1 ? ENGINE_INGEST_ACCEPTED : ENGINE_INGEST_DUPLICATE;
        if (rc == 1)
            metric_add(e->metrics.ingested, 1, (const char *[]){r->system});
        if (rc == 1 && keep && r->parsed != NULL) {
            engine_parsed_keep(e, seq, r->parsed_bytes, r->body_len, r->parsed);
            r->parsed = NULL;
            r->parsed_bytes = NULL;
        }
        if (engine_webhook_seen(e, r->system, r->received_at_ms, err) == -1)
            return -1;
    }
    return 0;
}

/* A batch whose transaction failed: nothing of it was journaled. */
static void
journal_failed(struct engine *e, struct engine_ingest *batch, const struct error *err)
{
    log_error(NULL, "journal %s", err->msg);
    atomic_store(&e->ready, 0);
    for (struct engine_ingest *r = batch; r != NULL; r = r->next)
        r->staged = 0;
    answer_batch(batch, ENGINE_INGEST_UNAVAILABLE);
}

/* Step 1 alone: journal a batch in one transaction. */
static void
journal_batch(struct engine *e, struct engine_ingest *batch)
{
    struct error err = {0};

    if (store_begin(e->st, &err) == -1)
        goto fail;
    if (journal_rows(e, batch, 0, &err) == -1) {
        store_rollback(e->st);
        goto fail;
    }
    if (store_commit(e->st, &err) == -1)
        goto fail;
    atomic_store(&e->ready, 1);
    answer_batch(batch, ENGINE_INGEST_UNAVAILABLE);
    return;

fail:
    journal_failed(e, batch, &err);
}

/* Answers applied at a time, in one savepoint: a savepoint copies every
 * page its writes touch, so one per answer cost about a fifth of the
 * writer's time in a backfill. */
#define WRITER_APPLY_BATCH 64

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
        return store_release(e->st, err) == -1 ? -1 : engine_apply_feedback(e, d, now, err);
    /* The system answered even so: its budget and breaker learn of it. */
    if (store_rollback_savepoint(e->st, err) == -1 || engine_apply_feedback(e, d, now, err) == -1)
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

/*
 * Apply up to WRITER_APPLY_BATCH answers from *list in one savepoint, and
 * move *list past them. When one of them fails, the savepoint is rolled
 * back and each is applied again in its own (apply_isolated()), so that
 * one alone is parked. What the answers teach their systems is fed in only
 * once their store work stood, so nothing counts twice.
 */
static int
apply_batch(struct engine *e, struct engine_delivery **list, int64_t now, struct error *err)
{
    struct engine_delivery *first = *list, *end = first, *d;
    struct error item = {0};
    int n = 0, failed = 0;

    while (end != NULL && n < WRITER_APPLY_BATCH) {
        end = end->next;
        n++;
    }
    *list = end;
    if (n == 1)
        return apply_isolated(e, first, now, err);
    if (store_savepoint(e->st, err) == -1)
        return -1;
    for (d = first; d != end && !failed; d = d->next)
        failed = engine_apply_result(e, d, now, &item) == -1;
    if (!failed) {
        if (store_release(e->st, err) == -1)
            return -1;
        for (d = first; d != end; d = d->next) {
            if (engine_apply_feedback(e, d, now, err) == -1)
                return -1;
        }
        return 0;
    }
    if (store_rollback_savepoint(e->st, err) == -1)
        return -1;
    for (d = first; d != end; d = d->next) {
        d->fb_pending = 0;
        if (apply_isolated(e, d, now, err) == -1)
            return -1;
    }
    return 0;
}

/*
 * Take the in-flight marks of deliveries off (sign -1) or put them back
 * (+1): the link's "one job at a time" mark, the system's and the
 * collection's counts. Answers lose theirs as soon as they are applied in
 * the open transaction, so the same transaction may claim the link's next
 * job and reuse the slot; if it does not commit, they are put back.
 */
static void
mark_deliveries(struct engine *e, struct engine_delivery *list, int sign)
{
    for (struct engine_delivery *d = list; d != NULL; d = d->next) {
        if (sign < 0)
            engine_link_flight_remove(e, d->link_id);
        else
            engine_link_flight_add(e, d->link_id);
        e->systems[e->colls[d->coll_index].sys_index].in_flight += sign;
        if (d->is_create)
            e->colls[d->coll_index].creates_in_flight += sign;
        if (d->check != 0 || (d->is_create && e->colls[d->coll_index].cfg->numbering.enabled))
            e->colls[d->coll_index].numbered_busy += sign;
    }
}

/* Free a list of deliveries. Returns how many there were. */
static int
free_deliveries(struct engine_delivery *list)
{
    int n = 0;

    while (list != NULL) {
        struct engine_delivery *d = list;

        list = d->next;
        engine_delivery_free(d);
        n++;
    }
    return n;
}

void
engine_unclaim(struct engine *e, struct engine_delivery *list)
{
    int64_t now = clock_mono_ms();

    mark_deliveries(e, list, -1);
    /* Never sent: what each claim took comes back, or a failed turn
     * would leave its systems under-used. The list is newest first, the
     * order the budget gives back in. */
    for (struct engine_delivery *d = list; d != NULL; d = d->next)
        engine_budget_give_back(&e->systems[e->colls[d->coll_index].sys_index], &d->took, now);
    (void)free_deliveries(list);
}

/* A transaction with answers applied in it did not commit: undo its marks
 * and its claims. */
static void
deliver_undo(struct engine *e, struct engine_delivery *results, struct engine_delivery **claimed)
{
    e->orphans_parked = 0; /* if it parked them, that is undone too */
    mark_deliveries(e, results, +1);
    engine_unclaim(e, *claimed);
    *claimed = NULL;
}

/* Whether webhooks wait for a turn to journal them (1), or answers to be
 * applied (2: their slots are idle until then), or neither (0). */
static int
others_wait(struct engine *e)
{
    int wait;

    pthread_mutex_lock(&e->mu);
    wait = e->ingest_head != NULL ? 1 : e->results != NULL ? 2 : 0;
    pthread_mutex_unlock(&e->mu);
    return wait;
}

/*
 * Answers that came back while the turn processed: applied in the same
 * transaction, before its claims, and added to *results (the caller
 * releases them after the commit, or puts their marks back if it fails).
 * Ending the turn for them instead cost a commit, and so an fsync, for the
 * few changes processed before they came.
 */
static int
absorb_results(struct engine *e, struct engine_delivery **results, int64_t now, struct error *err)
{
    struct engine_delivery *more, **tail;

    pthread_mutex_lock(&e->mu);
    more = e->results;
    e->results = NULL;
    pthread_mutex_unlock(&e->mu);
    for (struct engine_delivery *d = more; d != NULL;) {
        if (apply_batch(e, &d, now, err) == -1) {
            /* The caller rolls back: they wait for the next turn. */
            for (tail = &more; *tail != NULL; tail = &(*tail)->next)
                ;
            pthread_mutex_lock(&e->mu);
            *tail = e->results;
            e->results = more;
            pthread_mutex_unlock(&e->mu);
            return -1;
        }
    }
    mark_deliveries(e, more, -1);
    for (tail = results; *tail != NULL; tail = &(*tail)->next)
        ;
    *tail = more;
    return 0;
}

/*
 * The work of one turn, inside the open transaction: journal the batch,
 * apply finished deliveries, process journaled changes (when process is
 * set: WRITER_PROCESS_BATCH at a time, more while nothing else waits), claim due jobs (unless
 * draining, or the turn only journals). *more is set when more journaled changes wait. On -1 the
 * in-memory marks are as they were and nothing is claimed; the caller rolls back. *stage tells
 * where it failed: 0 journaling the batch, 1 after.
 */
static int
turn_work(struct engine *e, struct engine_ingest *batch, struct engine_delivery **resultsp,
          struct engine_delivery **claimed, int draining, int process, int *more, int *stage,
          struct error *err)
{
    struct engine_delivery *results = *resultsp;
    int64_t now = clock_now_ms();
    int processed = 0, born = 0, waiting;

    *stage = 0;
    e->paused_read = 0;
    if (journal_rows(e, batch, 1, err) == -1)
        return -1;
    *stage = 1;
    for (struct engine_delivery *d = results; d != NULL;) {
        if (apply_batch(e, &d, now, err) == -1)
            return -1;
    }
    mark_deliveries(e, results, -1);
    /* After the answers: a change waiting for a create's answer (merge.c)
     * finds it applied. Before the claims: the jobs it queues go out in
     * this same commit. */
    if (process) {
        int64_t started = clock_mono_ms();

        /* Creates may be born claimed (deliver.c) unless draining. */
        if (!draining && engine_born_begin(e, err) == -1) {
            mark_deliveries(e, results, +1);
            return -1;
        }
        for (;;) {
            int n;

            e->born_on = !draining;
            n = engine_process_journal(e, WRITER_PROCESS_BATCH, err);
            e->born_on = 0;
            if (n == -1) {
                engine_born_drop(e, NULL);
                mark_deliveries(e, results, +1);
                return -1;
            }
            processed += n;
            *more = n == WRITER_PROCESS_BATCH;
            if (!*more || processed >= WRITER_PROCESS_MAX ||
                clock_mono_ms() - started >= WRITER_PROCESS_MS || (waiting = others_wait(e)) == 1 ||
                (waiting == 2 && draining))
                break;
            /* Answers that came meanwhile are applied now, in this
             * transaction: their slots are claimed again at its end. */
            if (waiting == 2 && !draining) {
                if (absorb_results(e, resultsp, clock_now_ms(), err) == -1) {
                    engine_born_drop(e, NULL);
                    mark_deliveries(e, results, +1);
                    return -1;
                }
                results = *resultsp;
            }
        }
        born = engine_born_end(e, claimed);
    }
    /* A turn that only journals claims nothing: the jobs its changes will
     * queue (live ones first) must not lose the turn to older ones. */
    if (!draining && (results != NULL || process) &&
        engine_claim(e, clock_now_ms(), claimed, err) == -1) {
        deliver_undo(e, results, claimed);
        return -1;
    }
    if (log_trace_mask & LOG_TRACE_WRITER) {
        int applied = 0, sent = 0;

        for (struct engine_delivery *d = results; d != NULL; d = d->next)
            applied++;
        for (struct engine_delivery *d = *claimed; d != NULL; d = d->next)
            sent++;
        log_trace(LOG_TRACE_WRITER, NULL,
                  "turn: %d changes journaled, %d answers applied, %d changes processed, %d "
                  "deliveries claimed (%d born claimed)",
                  batch != NULL ? 1 : 0, applied, processed, sent, born);
    }
    return 0;
}

/*
 * One turn in one ordinary transaction, so that one fsync serves it all:
 * the batch is answered, and the claims are sent, once it committed.
 * Guarantee: nothing acknowledged is lost, and a request goes out only
 * once its claim is durable. The batch is always answered: when the rest
 * fails, the turn is tried again without processing, and then the batch
 * is journaled alone. Returns 0, or -1 when the answers were not applied
 * (nothing of them changed, in the store or in memory). *more is 1 when
 * more journaled changes wait, -1 when processing failed.
 */
static int
turn(struct engine *e, struct engine_ingest *batch, struct engine_delivery **results,
     struct engine_delivery **claimed, int draining, int process, int *more, struct error *err)
{
    struct error jerr = {0};
    int stage = 0, rc;

    *more = 0;
    if (store_begin(e->st, &jerr) == -1)
        goto journal_failed;
    if (turn_work(e, batch, results, claimed, draining, process, more, &stage, err) == -1) {
        store_rollback(e->st);
        engine_parsed_clear(e);
        engine_automation_undo(e, 0);
        if (stage == 0) {
            jerr = *err;
            goto journal_failed;
        }
        if (process) {
            /* Processing failed as a whole: answers and claims go on, and
             * *more = -1 tells the loop not to spin on it. */
            log_error(NULL, "process %s", err->msg);
            error_clear(err);
            rc = turn(e, batch, results, claimed, draining, 0, more, err);
            *more = -1;
            return rc;
        }
        if (batch != NULL)
            journal_batch(e, batch);
        return -1;
    }
    if (store_commit(e->st, &jerr) == -1) {
        deliver_undo(e, *results, claimed);
        engine_parsed_clear(e);
        engine_automation_undo(e, 0);
        goto journal_failed;
    }
    atomic_store(&e->ready, 1);
    if (batch != NULL)
        answer_batch(batch, ENGINE_INGEST_UNAVAILABLE);
    return 0;

journal_failed:
    if (batch != NULL)
        journal_failed(e, batch, &jerr);
    return error_set(err, jerr.kind, "%s", jerr.msg);
}

/* Whether some system may take another request now (claims would go out). */
static int
has_capacity(const struct engine *e)
{
    /* A paused system counts as having room: the operator's pause is read
     * back from the store by the claim itself, so a claim must still run,
     * or a resume would never be seen. */
    for (size_t s = 0; s < e->sys_count; s++) {
        if (e->systems[s].in_flight < e->systems[s].claim_cap)
            return 1;
    }
    return 0;
}

/* Whether deliveries wait for processing: some collection is a target, and
 * a system has room that the last claims could not fill. */
static int
needs_jobs(const struct engine *e)
{
    if (e->claim_wait_ms > 0 || !has_capacity(e))
        return 0;
    for (size_t i = 0; i < e->coll_count; i++) {
        if (e->colls[i].map_out != NULL)
            return 1;
    }
    return 0;
}

/* Drop answers whose transaction committed (their marks are gone). */
static void
release_results(struct engine *e, struct engine_delivery *list)
{
    int n = free_deliveries(list);

    pthread_mutex_lock(&e->mu);
    e->deliveries_out -= n;
    pthread_mutex_unlock(&e->mu);
}

/* Hand claimed jobs to the delivery thread. */
static void
hand_off(struct engine *e, struct engine_delivery *claimed)
{
    struct engine_delivery *tail;
    int n = 1;

    if (claimed == NULL)
        return;
    for (tail = claimed; tail->next != NULL; tail = tail->next)
        n++;
    pthread_mutex_lock(&e->mu);
    e->deliveries_out += n;
    tail->next = e->handoff;
    e->handoff = claimed;
    pthread_mutex_unlock(&e->mu);
    http_client_wakeup(e->http);
}

/*
 * Keep the WAL from growing without end. Under steady load the
 * checkpointer never finds it wholly copied at the one moment that counts
 * (a commit of the writer's), so SQLite keeps appending to it, and every
 * commit that makes the file longer costs its fsync a second write (the
 * inode's size). Past WRITER_WAL_RESTART_FRAMES the writer copies the rest
 * itself, little since the checkpointer copied the bulk, and its next
 * commit starts the WAL over at its beginning. The checkpointer wakes
 * every 100 ms, longer than a busy writer takes to fill the WAL, so the
 * writer also wakes it each WRITER_WAL_KICK_FRAMES pages: otherwise the
 * writer was found copying most of the WAL itself (bench/README.md,
 * "Session 17").
 */
static void
keep_wal_short(struct engine *e)
{
    struct error err = {0};
    int frames = store_wal_frames(e->st);

    if (frames < e->wal_kicked_at)
        e->wal_kicked_at = 0; /* the WAL started over */
    if (frames - e->wal_kicked_at >= WRITER_WAL_KICK_FRAMES) {
        e->wal_kicked_at = frames;
        pthread_mutex_lock(&e->mu);
        pthread_cond_signal(&e->ckpt_cv);
        pthread_mutex_unlock(&e->mu);
    }
    if (frames < WRITER_WAL_RESTART_FRAMES)
        return;
    if (store_checkpoint(e->st, &err) == -1)
        log_warn(NULL, "%s", err.msg);
}

static int64_t
next_wake_ms(struct engine *e, int more)
{
    struct error err = {0};
    int64_t now = clock_now_ms(), due = 0;
    int rc;

    if (more)
        return 0;
    rc = store_job_next_due(e->st, e->sys_names, e->sys_count, &due, &err);
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
    ts = clock_deadline(wait_ms);
    /* A stop that began draining waits for the writer's next turn to see it. */
    while (e->ingest_head == NULL && e->results == NULL && !e->stop_writer &&
           e->draining == e->drain_seen) {
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
    int more = 0, failed = 0;

    (void)pthread_setname_np(pthread_self(), "concord-writer"); /* for top -H and perf */
    for (;;) {
        struct engine_ingest *batch;
        struct engine_delivery *tail, *claimed = NULL;
        struct error err = {0};
        int draining, stop, process;

        keep_wal_short(e);
        pthread_mutex_lock(&e->mu);
        if (failed || (!more && pending_results == NULL))
            wait_for_work(e, wait_ms);
        failed = 0;
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
        e->drain_seen |= draining;
        stop = e->stop_writer;
        pthread_mutex_unlock(&e->mu);

        /* While webhooks keep coming, journal them and put processing
         * off, so a burst is acknowledged at the speed of group commits.
         * Processing waits at most WRITER_MAX_DEFER_MS, and a quiet moment
         * starts it at once; so do deliveries short of work. */
        process = batch == NULL || stop || clock_mono_ms() - processed_at >= WRITER_MAX_DEFER_MS ||
                  needs_jobs(e);
        if (process)
            processed_at = clock_mono_ms();
        atomic_store(&e->parsed_wanted, process);
        if (turn(e, batch, &pending_results, &claimed, draining, process, &more, &err) == -1) {
            atomic_store(&e->ready, 0);
            log_error(NULL, "turn %s", err.msg);
            more = 0;
            failed = 1;
            wait_ms = WRITER_IDLE_MS; /* the store failed: do not spin */
            if (stop)
                break;
            continue;
        }
        release_results(e, pending_results);
        pending_results = NULL;
        hand_off(e, claimed);
        engine_automation_kick(e); /* runs the turn committed are due now */
        if (more == -1) {
            atomic_store(&e->ready, 0);
            more = 0;
            failed = 1;
            wait_ms = WRITER_IDLE_MS;
        }
        /* Stop after this turn even with a backlog: what is journaled is
         * durable, and the next start processes the rest. Processing a
         * long backlog first made a stop take minutes. */
        if (stop)
            break;
        if (failed)
            continue;
        wait_ms = process ? next_wake_ms(e, more)
                          : WRITER_MAX_DEFER_MS - (clock_mono_ms() - processed_at);
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
         * (deliver.c, plan_job), as does a calendar's (caldav.c: its href
         * is kept); elsewhere a person decides. */
        int ci = engine_coll_index(e, j->collection);
        const struct config_collection *cc = ci >= 0 ? e->colls[ci].cfg : NULL;
        int self_settles = cc != NULL && engine_create_self_settles(cc);

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
    /* Whose queue holds nothing due: creates may be born claimed from the
     * first turn on (deliver.c), before its claims have looked. */
    for (size_t s = 0; s < e->sys_count; s++) {
        int64_t due = 0;
        int rc = store_job_next_due(e->st, &e->sys_names[s], 1, &due, err);

        if (rc == -1)
            goto fail_read;
        e->systems[s].queue_clear = rc == 0 || due > now;
    }
    return store_commit(e->st, err);

fail:
    if (n > 0)
        store_jobs_free(jobs, n);
fail_read:
    store_rollback(e->st);
    return error_wrap(err, "recover jobs in flight");
}
