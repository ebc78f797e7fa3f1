/* SPDX-License-Identifier: MIT */

/*
 * Turns at writing, for the handles of one process on one store file.
 *
 * SQLite lets one connection write at a time, and one that finds the lock
 * taken sleeps in its busy handler (1, 2, 5, 10 ms and longer) before it
 * looks again. Inside the daemon that is unfair: the writer thread commits
 * and begins its next turn at once, so a poll thread that waits for a gap
 * wakes up to find it closed, again and again, while the writer runs out
 * of journaled changes to work on. A backfill of a million rows spent most
 * of its time so.
 *
 * So the handles of one file queue here first, in the order they asked,
 * and each passes the turn straight to the next when its transaction ends.
 * SQLite's own lock still guards the file (and other processes, which do
 * not queue here); this only decides who asks it first. A handle that
 * waits longer than its busy timeout goes on without its turn, so a
 * thread that holds a transaction on one handle and begins one on another
 * gets SQLite's "busy" error, as it would without the queue, and never
 * waits forever.
 */

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/xmalloc.h"
#include "store/store_int.h"

struct waiter {
    struct waiter *next;
    int granted;
};

struct store_lock {
    struct store_lock *next; /* in the process's list */
    char *path;
    int refs;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int held;
    struct waiter *head, *tail; /* who waits, first come first */
};

static pthread_mutex_t locks_mu = PTHREAD_MUTEX_INITIALIZER;
static struct store_lock *locks;

struct store_lock *
store_lock_get(const char *path)
{
    struct store_lock *l;

    /* An in-memory store is one connection's own: nobody to take turns with. */
    if (path == NULL || path[0] == '\0' || strcmp(path, ":memory:") == 0)
        return NULL;
    pthread_mutex_lock(&locks_mu);
    for (l = locks; l != NULL && strcmp(l->path, path) != 0; l = l->next)
        ;
    if (l == NULL) {
        l = xcalloc(1, sizeof(*l));
        l->path = xstrdup(path);
        pthread_mutex_init(&l->mu, NULL);
        pthread_cond_init(&l->cv, NULL);
        l->next = locks;
        locks = l;
    }
    l->refs++;
    pthread_mutex_unlock(&locks_mu);
    return l;
}

void
store_lock_put(struct store_lock *l)
{
    struct store_lock **p;

    if (l == NULL)
        return;
    pthread_mutex_lock(&locks_mu);
    if (--l->refs > 0) {
        pthread_mutex_unlock(&locks_mu);
        return;
    }
    for (p = &locks; *p != l; p = &(*p)->next)
        ;
    *p = l->next;
    pthread_mutex_unlock(&locks_mu);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l->path);
    free(l);
}

/* Take w out of the queue (it gave up). */
static void
unqueue(struct store_lock *l, struct waiter *w)
{
    struct waiter **p, *prev = NULL;

    for (p = &l->head; *p != NULL && *p != w; p = &(*p)->next)
        prev = *p;
    if (*p == NULL)
        return;
    *p = w->next;
    if (l->tail == w)
        l->tail = prev;
}

int
store_lock_take(struct store_lock *l, int timeout_ms)
{
    struct waiter me = {0};
    struct timespec until;

    if (l == NULL)
        return 0;
    pthread_mutex_lock(&l->mu);
    if (!l->held && l->head == NULL) {
        l->held = 1;
        pthread_mutex_unlock(&l->mu);
        return 1;
    }
    if (l->tail != NULL)
        l->tail->next = &me;
    else
        l->head = &me;
    l->tail = &me;
    until = clock_deadline(timeout_ms > 0 ? timeout_ms : 0);
    while (!me.granted) {
        if (pthread_cond_timedwait(&l->cv, &l->mu, &until) == ETIMEDOUT && !me.granted) {
            unqueue(l, &me);
            break;
        }
    }
    pthread_mutex_unlock(&l->mu);
    return me.granted;
}

void
store_lock_give(struct store_lock *l)
{
    if (l == NULL)
        return;
    pthread_mutex_lock(&l->mu);
    if (l->head != NULL) {
        /* Handed on, never let go: a thread that asks again at once queues
         * behind the ones already waiting. */
        struct waiter *w = l->head;

        l->head = w->next;
        if (l->head == NULL)
            l->tail = NULL;
        w->granted = 1;
        pthread_cond_broadcast(&l->cv);
    } else {
        l->held = 0;
    }
    pthread_mutex_unlock(&l->mu);
}
