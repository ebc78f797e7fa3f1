/* SPDX-License-Identifier: MIT */

/*
 * The sync thread. The writer commits its turns without waiting for the
 * disk (store_begin_lazy()) and queues what each turn decided here; this
 * thread makes them durable, one fdatasync of the WAL for every turn
 * queued since its last, while the writer goes on with the next turn.
 * Only then does it reveal them: it answers their webhooks and hands their
 * claims to the delivery thread. Guarantee: nothing is acknowledged or
 * sent before it is durable (DESIGN.md, "Storage").
 *
 * When the writer waited for its own fsync, a webhook that came in during
 * one waited for that one to end and then for its own: about two fsyncs.
 * Here it is journaled at once and waits for the next fsync only, and the
 * writer's CPU time and the disk's wait overlap.
 *
 * Other threads that act outside on what they read from the store (an
 * automation's action) call engine_wait_durable() first: the writer's
 * commits are visible to readers before they are durable.
 *
 * A sync that fails leaves nothing certain (a failed fsync may have
 * dropped the pages it could not write, and a later one succeed without
 * them): this batch and every later one is answered 503, no claim is
 * sent, and concord stops as on SIGTERM. The next start recovers from
 * what is on disk; senders retry what was refused.
 */

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "engine/engine_int.h"
#include "store/store.h"

void
engine_answer_batch(struct engine_ingest *batch, enum engine_ingest_result failed_as)
{
    /* The batch left the shared queue: it is its holder's alone. */
    for (struct engine_ingest *r = batch; r != NULL;) {
        struct engine_ingest *next = r->next;

        r->done_fn(r->done_arg, r->staged != 0 ? r->staged : failed_as);
        free(r);
        r = next;
    }
}

/* Hand durable claims to the delivery thread (counted out at the queue). */
static void
hand_off(struct engine *e, struct engine_delivery *claimed)
{
    struct engine_delivery *tail;

    if (claimed == NULL)
        return;
    for (tail = claimed; tail->next != NULL; tail = tail->next)
        ;
    pthread_mutex_lock(&e->mu);
    tail->next = e->handoff;
    e->handoff = claimed;
    pthread_mutex_unlock(&e->mu);
    http_client_wakeup(e->http);
}

/* After a failed sync: refuse the batch, drop the claims. Their jobs stay
 * running in the store; the next start settles them (engine_recover). */
static void
refuse(struct engine *e, struct engine_sync_turn *t)
{
    int n = 0;

    for (struct engine_ingest *r = t->batch; r != NULL; r = r->next)
        r->staged = 0;
    engine_answer_batch(t->batch, ENGINE_INGEST_UNAVAILABLE);
    while (t->claimed != NULL) {
        struct engine_delivery *d = t->claimed;

        t->claimed = d->next;
        engine_delivery_free(d);
        n++;
    }
    pthread_mutex_lock(&e->mu);
    e->deliveries_out -= n;
    pthread_mutex_unlock(&e->mu);
}

/* Sync once for a list of turns, then reveal or refuse each. */
static void
sync_turns(struct engine *e, struct engine_sync_turn *list, int ok)
{
    struct engine_sync *s = &e->sync;
    struct error err = {0};
    int64_t gen = 0, started = clock_mono_ms();
    int turns = 0;

    if (ok && store_sync(e->st, &err) == -1) {
        log_error(NULL,
                  "%s: the store's disk failed a sync; stopping, so that nothing unsynced is "
                  "acknowledged or sent (the next start recovers)",
                  err.msg);
        ok = 0;
    }
    for (struct engine_sync_turn *t = list; t != NULL; t = t->next) {
        gen = t->gen;
        turns++;
    }
    pthread_mutex_lock(&s->mu);
    if (ok) {
        s->durable = gen;
    } else if (!s->failed) {
        s->failed = 1;
        (void)kill(getpid(), SIGTERM); /* the daemon's orderly stop */
    }
    pthread_cond_broadcast(&s->durable_cv);
    pthread_mutex_unlock(&s->mu);
    log_trace(LOG_TRACE_WRITER, NULL, "synced %d turns in %lld ms", turns,
              (long long)(clock_mono_ms() - started));
    while (list != NULL) {
        struct engine_sync_turn *t = list;

        list = t->next;
        if (ok) {
            engine_answer_batch(t->batch, ENGINE_INGEST_UNAVAILABLE);
            hand_off(e, t->claimed);
        } else {
            refuse(e, t);
        }
        free(t);
    }
}

static void *
syncer_main(void *arg)
{
    struct engine *e = arg;
    struct engine_sync *s = &e->sync;

    (void)pthread_setname_np(pthread_self(), "concord-sync"); /* for top -H and perf */
    pthread_mutex_lock(&s->mu);
    for (;;) {
        struct engine_sync_turn *list;
        int ok;

        while (s->head == NULL && !s->stop)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->head == NULL)
            break; /* stopped, and nothing waits */
        list = s->head;
        s->head = s->tail = NULL;
        ok = !s->failed;
        pthread_mutex_unlock(&s->mu);
        sync_turns(e, list, ok);
        pthread_mutex_lock(&s->mu);
    }
    pthread_cond_broadcast(&s->durable_cv); /* waiters see the stop */
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int
engine_sync_start(struct engine *e, struct error *err)
{
    struct engine_sync *s = &e->sync;

    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_cond_init(&s->durable_cv, NULL);
    if (pthread_create(&s->thread, NULL, syncer_main, e) != 0) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        pthread_cond_destroy(&s->durable_cv);
        return error_set(err, ERROR_INTERNAL, "start the sync thread");
    }
    s->running = 1;
    return 0;
}

void
engine_sync_stop(struct engine *e)
{
    struct engine_sync *s = &e->sync;

    if (!s->running)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    s->running = 0;
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->durable_cv);
}

int64_t
engine_sync_begin(struct engine *e)
{
    struct engine_sync *s = &e->sync;
    int64_t gen;

    /* Counted before the COMMIT: a reader whose snapshot holds this commit
     * reads a count that includes it (engine_wait_durable()). */
    pthread_mutex_lock(&s->mu);
    gen = ++s->committed;
    pthread_mutex_unlock(&s->mu);
    return gen;
}

void
engine_sync_queue(struct engine *e, int64_t gen, struct engine_ingest *batch,
                  struct engine_delivery *claimed)
{
    struct engine_sync *s = &e->sync;
    struct engine_sync_turn *t = xcalloc(1, sizeof(*t));
    int n = 0;

    for (struct engine_delivery *d = claimed; d != NULL; d = d->next)
        n++;
    if (n > 0) {
        /* Out from now on, so that a stop waits for them too. */
        pthread_mutex_lock(&e->mu);
        e->deliveries_out += n;
        pthread_mutex_unlock(&e->mu);
    }
    t->gen = gen;
    t->batch = batch;
    t->claimed = claimed;
    pthread_mutex_lock(&s->mu);
    if (s->tail != NULL)
        s->tail->next = t;
    else
        s->head = t;
    s->tail = t;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

int
engine_wait_durable(struct engine *e)
{
    struct engine_sync *s = &e->sync;
    int64_t target;
    int rc;

    if (!s->running)
        return 0; /* no lazy commits without the thread */
    /* The commits begun so far, not the ones to come: under load the
     * writer never stops committing. */
    pthread_mutex_lock(&s->mu);
    target = s->committed;
    while (s->durable < target && !s->failed && !s->stop)
        pthread_cond_wait(&s->durable_cv, &s->mu);
    rc = s->durable >= target ? 0 : -1;
    pthread_mutex_unlock(&s->mu);
    return rc;
}
