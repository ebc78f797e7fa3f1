/* SPDX-License-Identifier: MIT */

/*
 * All durable state behind one interface (DESIGN.md, "Storage"): the
 * journal, records and versions, links, jobs and attempts, the inbox and
 * per-system state. docs/internals/store-schema.md has the tables.
 *
 * SQLite in WAL mode with synchronous=FULL is the backend: a commit that
 * returned is on disk. The daemon's writer thread owns one handle and makes
 * every write of the flow, grouping many changes into one transaction (the
 * group committer, engine/engine.c); the CLI opens its own handle. A handle
 * is never shared between threads.
 *
 * Look-ups that find nothing return 0, not -1 (STYLE.md B.4). Out-structs
 * are filled only on success and are the caller's to _fini().
 */
#ifndef CONCORD_STORE_STORE_H
#define CONCORD_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/compiler.h"
#include "model/model.h"

struct error;
struct store;

/*
 * Open the store named by url ("sqlite:PATH" or "sqlite://PATH") and migrate
 * its schema forward. On success *out is the caller's; release it with
 * store_close(). On failure *out is not touched.
 */
MUST_CHECK int store_open(struct store **out, const char *url, struct error *err);

/*
 * Leave the WAL's checkpoints to store_checkpoint() on another handle, so
 * the writer's commits never stop for one (SQLite otherwise checkpoints in
 * the committing thread when the WAL passes 1000 pages).
 */
MUST_CHECK int store_no_autocheckpoint(struct store *st, struct error *err);

/*
 * After store_no_autocheckpoint(): how many pages the WAL held after this
 * handle's last commit (0 before the first, and after a checkpoint on this
 * handle). SQLite starts the WAL over from its beginning only at a commit
 * that finds it wholly checkpointed; the writer uses this to see that it
 * does not grow without end (writer.c).
 */
int store_wal_frames(const struct store *st);

/*
 * Copy what the WAL holds into the database without blocking writers
 * (a passive checkpoint). Call it on its own handle, from its own thread,
 * every so often. Returns 0 or -1.
 */
MUST_CHECK int store_checkpoint(struct store *st, struct error *err);

/* Close the handle. Accepts NULL. */
void store_close(struct store *st);

/* Transactions. store_commit() returns once the transaction is durable
 * (but see store_begin_lazy()). */
MUST_CHECK int store_begin(struct store *st, struct error *err);
MUST_CHECK int store_commit(struct store *st, struct error *err);
/* Undo the open transaction, if any; never fails. */
void store_rollback(struct store *st);
/*
 * Begin a transaction whose commit does not wait for the disk
 * (synchronous=NORMAL for this one transaction; WAL mode keeps the file
 * consistent). Its commit survives kill -9 at once, and a crash of the
 * machine once a later store_commit() of an ordinary transaction on this
 * handle returned (that fsync of the WAL covers it). Until then a power
 * loss may undo it, whole. Use it only for work that the store can redo
 * from what is durable, and that nothing outside has seen.
 */
MUST_CHECK int store_begin_lazy(struct store *st, struct error *err);

/*
 * A savepoint inside the open transaction, so one item of a batch can fail
 * without undoing the others: store_savepoint(), then store_release() to
 * keep its work or store_rollback_savepoint() to undo only it.
 */
MUST_CHECK int store_savepoint(struct store *st, struct error *err);
MUST_CHECK int store_release(struct store *st, struct error *err);
MUST_CHECK int store_rollback_savepoint(struct store *st, struct error *err);

/* ---- journal ---- */

/*
 * Journal one change. Returns 1 with *seq set when it was added, 0 when a
 * change with the same (system, delivery_id) is already journaled (a
 * repeated delivery), -1 on error. delivery_id may be NULL.
 */
MUST_CHECK int store_journal_add(struct store *st, const char *system, const char *delivery_id,
                                 int64_t received_at_ms, const char *body, size_t body_len,
                                 int64_t *seq, struct error *err);

/*
 * Up to limit changes not processed yet, oldest first. Returns the count
 * (0..limit) with *out a malloc()ed array the caller releases with
 * store_changes_free(), or -1.
 */
MUST_CHECK int store_journal_pending(struct store *st, int limit, struct change **out,
                                     struct error *err);
void store_changes_free(struct change *changes, int count);

/* Record what became of a change; note (may be NULL) says why. */
MUST_CHECK int store_journal_set_state(struct store *st, int64_t seq, enum change_state state,
                                       const char *note, struct error *err);

/* ---- records ---- */

/* The record with id. Returns 1 (and fills *out), 0 if none, -1 on error. */
MUST_CHECK int store_record_get(struct store *st, int64_t id, struct record *out,
                                struct error *err);

/*
 * Add a record at version 1 with its first history entry. source names who
 * made it ("shop.customers"); journal_seq is 0 when not from the journal.
 * Returns 0 with *id set, or -1.
 */
MUST_CHECK int store_record_add(struct store *st, const char *model, const char *state,
                                const char *source, int64_t journal_seq, int64_t now_ms,
                                int64_t *id, struct error *err);

/*
 * Write version v->version of record v->record_id: its state, diff, source
 * and time, and make it the record's current state.
 */
MUST_CHECK int store_record_update(struct store *st, const struct version *v, int is_deleted,
                                   struct error *err);

/* One version of a record. Returns 1, 0 if none, -1. */
MUST_CHECK int store_version_get(struct store *st, int64_t record_id, int64_t version,
                                 struct version *out, struct error *err);

/*
 * Every version of a record, oldest first. Returns the count with *out a
 * malloc()ed array released with store_versions_free(), or -1.
 */
MUST_CHECK int store_history(struct store *st, int64_t record_id, struct version **out,
                             struct error *err);
void store_versions_free(struct version *versions, int count);

/* ---- links ---- */

/* The link of collection with this external id. Returns 1, 0 if none, -1. */
MUST_CHECK int store_link_by_ext(struct store *st, const char *collection, const char *ext_id,
                                 struct link *out, struct error *err);

/* The link of collection to this record. Returns 1, 0 if none, -1. */
MUST_CHECK int store_link_by_record(struct store *st, const char *collection, int64_t record_id,
                                    struct link *out, struct error *err);

/* The link with this id. Returns 1, 0 if none, -1. */
MUST_CHECK int store_link_get(struct store *st, int64_t id, struct link *out, struct error *err);

/* Add a link; ext_id and base may be NULL. Returns 0 with *id set, or -1. */
MUST_CHECK int store_link_add(struct store *st, const char *collection, int64_t record_id,
                              const char *ext_id, const char *base, int64_t now_ms, int64_t *id,
                              struct error *err);

/* Set a link's external id (NULL keeps it) and base. */
MUST_CHECK int store_link_set(struct store *st, int64_t link_id, const char *ext_id,
                              const char *base, int64_t now_ms, struct error *err);

/* ---- jobs ---- */

/*
 * Queue work for a link, coalescing: a pending job of the same link is
 * brought to this version and op instead of adding a second one (its place
 * and backoff stay). A running job is left alone and a new pending one
 * queued behind it. Returns 1 when a job was added, 0 when one was
 * coalesced, -1 on error.
 */
MUST_CHECK int store_job_put(struct store *st, const struct job *j, struct error *err);

/*
 * Up to limit pending jobs due at now_ms, by due time then age. Returns the
 * count with *out malloc()ed (release with store_jobs_free()), or -1.
 */
MUST_CHECK int store_job_due(struct store *st, int64_t now_ms, int limit, struct job **out,
                             struct error *err);

/* Every job in state. Same returns as store_job_due(). */
MUST_CHECK int store_job_list(struct store *st, enum job_state state, struct job **out,
                              struct error *err);
void store_jobs_free(struct job *jobs, int count);

/* The job with id. Returns 1, 0 if none, -1. */
MUST_CHECK int store_job_get(struct store *st, int64_t id, struct job *out, struct error *err);

/* The earliest next_at of a pending job: 1 with *at_ms set, 0 if none, -1. */
MUST_CHECK int store_job_next_due(struct store *st, int64_t *at_ms, struct error *err);

/*
 * Move a job between states. JOB_PENDING takes next_at_ms and attempts
 * (both as given); the other states keep them. Returns 0 or -1.
 */
MUST_CHECK int store_job_set(struct store *st, int64_t job_id, enum job_state state, int attempts,
                             int64_t next_at_ms, struct error *err);

/* Whether the link has a parked job whose create may have happened: 1, 0, -1. */
MUST_CHECK int store_job_link_blocked(struct store *st, int64_t link_id, struct error *err);

/* The job is finished: remove it. */
MUST_CHECK int store_job_done(struct store *st, int64_t job_id, struct error *err);

/* One attempt of a job, as store_attempt_add() records it. */
struct attempt {
    int64_t job_id;
    int n;
    int64_t at_ms;
    const char *outcome; /* "ok", "transient", "permanent", "unknown" */
    int http_status;
    const char *request;  /* "POST /contacts" */
    const char *response; /* the first 1 KiB of the answer, or the transport error */
    int64_t elapsed_ms;
};

/* One recorded attempt, as store_attempts_list() returns it. */
struct attempt_row {
    int n;
    int64_t at_ms;
    char *outcome;
    int http_status;
    char *request;
    char *response;
    int64_t elapsed_ms;
};

/*
 * Every attempt of a job, oldest first. Returns the count with *out a
 * malloc()ed array released with store_attempts_free(), or -1.
 */
MUST_CHECK int store_attempts_list(struct store *st, int64_t job_id, struct attempt_row **out,
                                   struct error *err);
void store_attempts_free(struct attempt_row *rows, int count);

/* Record one attempt of a job. request and response may be NULL. */
MUST_CHECK int store_attempt_add(struct store *st, const struct attempt *a, struct error *err);

/* ---- inbox ---- */

/* Add an entry (e->id is ignored). Returns 0 with *id set, or -1. */
MUST_CHECK int store_inbox_add(struct store *st, const struct inbox_entry *e, int64_t *id,
                               struct error *err);

/*
 * Entries in state ("open"; NULL for all), newest first. Returns the count
 * with *out malloc()ed (release with store_inbox_free()), or -1.
 */
MUST_CHECK int store_inbox_list(struct store *st, const char *state, struct inbox_entry **out,
                                struct error *err);
void store_inbox_free(struct inbox_entry *entries, int count);

/* The entry with id. Returns 1, 0 if none, -1. */
MUST_CHECK int store_inbox_get(struct store *st, int64_t id, struct inbox_entry *out,
                               struct error *err);

/*
 * Put an open entry's work back in line now: its job becomes pending with
 * its attempts reset, or its change is processed again. The entry becomes
 * "retried". Returns 1 when done, 0 when there is no such open entry, -1.
 * Runs in its own transaction when none is open.
 */
MUST_CHECK int store_inbox_retry(struct store *st, int64_t id, int64_t now_ms, struct error *err);

/* ---- per-system state ---- */

/* Note a delivery's end for a system: success (error NULL) or failure. */
MUST_CHECK int store_system_note(struct store *st, const char *system, int64_t at_ms,
                                 const char *error_text, struct error *err);

struct store_system_stats {
    int64_t backlog;            /* pending jobs */
    int64_t in_flight;          /* running jobs */
    int64_t failed;             /* open inbox entries */
    int64_t last_success_at_ms; /* 0 when never */
    int64_t last_error_at_ms;   /* 0 when never */
    char last_error[256];
    int is_paused; /* by an operator: concord pause */
    char paused_by[64];
    char breaker[16]; /* "closed", "open", "half-open"; "" before any transition */
    char breaker_reason[160];
    int64_t breaker_at_ms;
};

/* Counts and last outcomes for one system. Returns 0 or -1. */
MUST_CHECK int store_system_stats(struct store *st, const char *system,
                                  struct store_system_stats *out, struct error *err);

/* ---- the Delivery issue ---- */

/* Note which copy a change concerns, once known, so replays can tell a
 * superseded change from the latest one. */
MUST_CHECK int store_journal_note_copy(struct store *st, int64_t seq, const char *collection,
                                       const char *ext_id, struct error *err);

/*
 * Mark changes received since since_ms (from system, NULL for all) to be
 * processed again through the current maps, skipping every change that a
 * later change of the same copy superseded, and closing their open inbox
 * entries. Runs in its own transaction. Returns how many, or -1.
 */
MUST_CHECK int store_journal_replay(struct store *st, int64_t since_ms, const char *system,
                                    int64_t now_ms, struct error *err);

/*
 * Another pending job of the same link than job_id: 1 with *out filled (the
 * caller's to job_fini()), 0 when there is none, -1.
 */
MUST_CHECK int store_job_sibling(struct store *st, int64_t link_id, int64_t job_id, struct job *out,
                                 struct error *err);

/* Fold job drop_id into keep_id (newest version, highest priority) and
 * delete drop_id. */
MUST_CHECK int store_job_absorb(struct store *st, int64_t keep_id, int64_t drop_id,
                                struct error *err);

/* Note the record version a create carried (0 to forget it). */
MUST_CHECK int store_job_set_sent(struct store *st, int64_t job_id, int64_t version,
                                  struct error *err);

/*
 * Close an open inbox entry as state ("skipped", "edited") by a person, with
 * a note; a parked job it holds is dropped. Returns 1, 0 when there is no
 * such open entry, -1. Runs in its own transaction when none is open.
 */
MUST_CHECK int store_inbox_resolve(struct store *st, int64_t id, const char *state, const char *by,
                                   const char *note, int64_t now_ms, struct error *err);

/* Pause (1) or resume (0) deliveries to a system; by names the person. */
MUST_CHECK int store_system_pause(struct store *st, const char *system, int paused, const char *by,
                                  struct error *err);

/*
 * The names of paused systems: returns the count with *out a malloc()ed
 * array of malloc()ed strings (free each, then the array), or -1.
 */
MUST_CHECK int store_systems_paused(struct store *st, char ***out, struct error *err);

/* Record a circuit breaker's transition, for concord status. */
MUST_CHECK int store_system_breaker(struct store *st, const char *system, const char *state,
                                    const char *reason, int64_t at_ms, struct error *err);

#endif
