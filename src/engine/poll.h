/* SPDX-License-Identifier: MIT */

/*
 * Scheduled reads of a collection (poll.c): a poll from the collection's
 * cursor, or a reconcile of the whole collection. The daemon's poll thread
 * runs them on schedule; `concord poll` and `concord reconcile` run one in
 * their own process. Each uses its own store handle and HTTP client.
 */
#ifndef CONCORD_ENGINE_POLL_H
#define CONCORD_ENGINE_POLL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/compiler.h"

struct config;
struct config_collection;
struct error;
struct http_client;
struct store;

/* What a read did. */
struct engine_poll_report {
    int reconcile;     /* 1 for a reconcile */
    int complete;      /* the read reached the last page without a failure */
    int resynced;      /* the cursor was refused and the read started over */
    int busy;          /* another reader holds the collection: nothing was read */
    int64_t pages;     /* pages committed */
    int64_t read;      /* records read */
    int64_t unchanged; /* equal to what concord knew of their copy ("in sync") */
    int64_t changed;   /* linked copies that differ ("drifted"): journaled */
    int64_t fresh;     /* copies concord does not link ("new"): journaled */
    int64_t missing;   /* reconcile: linked copies the complete read did not see */
    int64_t deleted;   /* deletions the read announced (delta links, event lists) */
    int64_t skipped;   /* records without an id */
    int64_t expected;  /* records the read should come to in all, for progress; 0: unknown */
    int64_t elapsed_ms;
    int64_t began_ms; /* when the read began (clock_mono_ms()): elapsed_ms as it goes */
    char error[400];  /* why the read stopped part way; "" when it did not */
};

struct engine_poll_report;
/* When cc's next poll is due after one that ended at now_ms: `every` plus
 * jitter, or the next minute its `cron` names (UTC). */
int64_t engine_poll_next_due(const struct config_collection *cc, int64_t now_ms);
/* Called after each committed page (user is the job's). */
typedef void engine_poll_progress_fn(void *user, const struct engine_poll_report *r);
/* Called after each committed page that journaled changes. */
typedef void engine_poll_wake_fn(void *user);
/* In a dry run: called with each body the read would journal (JSON text). */
typedef void engine_poll_collect_fn(void *user, const char *body);

struct engine_sys;

struct engine_poll_job {
    const struct config *cfg;
    const struct config_collection *cc; /* has poll.enabled */
    struct store *st;                   /* the reader's own handle */
    struct http_client *http;           /* the reader's own client */
    struct oauth *oauth;                /* tokens of OAuth2 systems (oauth_new()); may be NULL */
    int reconcile;                      /* read whole; after a complete read, missing copies */
    int dry_run;                        /* journal nothing, move no cursor (concord plan) */
    engine_poll_progress_fn *progress;  /* NULL, or told after each page */
    engine_poll_wake_fn *wake;          /* NULL, or told after each page */
    engine_poll_collect_fn *collect;    /* dry run: NULL, or given what would be journaled */
    void *user;
    atomic_int *stop; /* NULL, or set to stop at the next page */
    /* The daemon's: the system's request budget, shared with deliveries and
     * automations (budget.c), so a read never passes the system's rate; a
     * rate-limited answer holds them all back. NULL (a CLI command): the
     * read alone keeps to the rate's answers. */
    struct engine_sys *sys;
};

/*
 * Run one read. Returns 0 with *r filled (r->error says why a read that
 * ended early did; nothing is half-committed), -1 on a store error.
 */
MUST_CHECK int engine_poll_run(const struct engine_poll_job *job, struct engine_poll_report *r,
                               struct error *err);

/*
 * One request to job's system with its auth, rate-limit answers waited
 * out as a read's are (push registrations: engine/push.c). *status is 0
 * when no answer came (*error says why); *answer and *error are
 * malloc()ed or NULL. Returns 0, or -1 with err (nothing was sent).
 */
MUST_CHECK int engine_poll_call(const struct engine_poll_job *job, const char *method,
                                const char *url, const char *body, long *status, char **answer,
                                char **error, struct error *err);

/* The report as compact JSON, malloc()ed. */
char *engine_poll_report_json(const struct engine_poll_report *r);

/*
 * A read's progress as one line into out: "412 of 1,000 rows (41%), 2,210
 * rows/s, 27 s left", with a bar of cells first when bar is set; without
 * an expected total, the rows and the rate alone. From r->read, expected
 * and elapsed_ms.
 */
void engine_poll_progress_line(const struct engine_poll_report *r, int bar, char *out, size_t len);

/* The share of r->expected read, 0..99 (99 until the read ends, however
 * many more there were), or -1 when the total is unknown. */
int engine_poll_progress_pct(const struct engine_poll_report *r);

/* A progress line is logged (or shown, off a terminal) at most this often. */
#define ENGINE_POLL_PROGRESS_MS 2000

/*
 * Whether a progress line is due off a terminal: ENGINE_POLL_PROGRESS_MS
 * after the last (*last_ms, clock_mono_ms(); 0 before the first) or after
 * the read began. When it is, *last_ms is set to now.
 */
int engine_poll_progress_due(const struct engine_poll_report *r, int64_t *last_ms);

#endif
