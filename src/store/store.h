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
 * Begin a transaction that takes the write lock only at its first write,
 * and whose journal entries without a delivery id wait in memory until
 * store_commit() writes them, in order, just before it commits. Until the
 * first write, reads see the store as it is at each read, and other
 * handles may write: a poll reads and compares a page of rows so, and
 * holds the lock only to write what it found. Ends as any transaction.
 */
MUST_CHECK int store_begin_late(struct store *st, struct error *err);

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
 * Journal news of one copy (a poll's), with the copy's collection and id
 * written at once; otherwise as store_journal_add() without a delivery id.
 */
MUST_CHECK int store_journal_add_copy(struct store *st, const char *system, const char *collection,
                                      const char *ext_id, int64_t received_at_ms, const char *body,
                                      size_t body_len, struct error *err);

/* The journal's newest position (0 when it is empty) into *seq. Returns 0 or -1. */
MUST_CHECK int store_journal_last(struct store *st, int64_t *seq, struct error *err);

/*
 * Whether the newest journal entry of copy ext_id of collection waits to be
 * processed: 1 with *body (malloc()ed text) when it does, 0 when the copy
 * has no such entry, -1.
 */
MUST_CHECK int store_journal_copy_waiting(struct store *st, const char *collection,
                                          const char *ext_id, char **body, struct error *err);

/*
 * Up to limit changes not processed yet, oldest first. Returns the count
 * (0..limit) with *out a malloc()ed array the caller releases with
 * store_changes_free(), or -1.
 */
MUST_CHECK int store_journal_pending(struct store *st, int limit, struct change **out,
                                     struct error *err);
void store_changes_free(struct change *changes, int count);

/* What became of change seq so far (CHANGE_NEW: not processed yet).
 * Returns 1 with *out set, 0 when there is no such change, -1. */
MUST_CHECK int store_journal_state(struct store *st, int64_t seq, enum change_state *out,
                                   struct error *err);

/* Record what became of a change; note (may be NULL) says why. */
MUST_CHECK int store_journal_set_state(struct store *st, int64_t seq, enum change_state state,
                                       const char *note, struct error *err);

/* ---- records ---- */

/* The record with id. Returns 1 (and fills *out), 0 if none, -1 on error. */
MUST_CHECK int store_record_get(struct store *st, int64_t id, struct record *out,
                                struct error *err);

/* A record's version and whether it is deleted: 1 with them set, 0 when
 * there is no such record, -1. */
MUST_CHECK int store_record_version(struct store *st, int64_t id, int64_t *version, int *is_deleted,
                                    struct error *err);

/*
 * Add a record at version 1 with its first history entry. source names who
 * made it ("shop.customers"); journal_seq is 0 when not from the journal.
 * Returns 0 with *id set, or -1.
 */
MUST_CHECK int store_record_add(struct store *st, const char *model, const char *state,
                                const char *source, int64_t journal_seq, int64_t now_ms,
                                int64_t *id, struct error *err);
/* The same, with its field times (records.field_meta, JSON or NULL). */
MUST_CHECK int store_record_add_meta(struct store *st, const char *model, const char *state,
                                     const char *meta, const char *source, int64_t journal_seq,
                                     int64_t now_ms, int64_t *id, struct error *err);

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

/* store_link_get() and store_record_get() in one read: 1 with both filled,
 * 0 when either is missing (neither is filled), -1. */
MUST_CHECK int store_link_and_record(struct store *st, int64_t link_id, int64_t record_id,
                                     struct link *link, struct record *record, struct error *err);

/* store_link_by_ext(), and when it finds nothing whether
 * store_link_by_gone() would find a link: 1 with *out filled, 0 with *gone
 * set to 1 or 0, -1. */
MUST_CHECK int store_link_by_ext_or_gone(struct store *st, const char *collection,
                                         const char *ext_id, struct link *out, int *gone,
                                         struct error *err);

/* Add a link; ext_id and base may be NULL. Returns 0 with *id set, or -1. */
MUST_CHECK int store_link_add(struct store *st, const char *collection, int64_t record_id,
                              const char *ext_id, const char *base, int64_t now_ms, int64_t *id,
                              struct error *err);

/* Add a link without a copy for record_id, unless the collection has a
 * link for it already. Returns 1 with *id set, 0 when there was one, -1. */
MUST_CHECK int store_link_add_unless(struct store *st, const char *collection, int64_t record_id,
                                     int64_t now_ms, int64_t *id, struct error *err);

/* store_link_add_unless(), with written (JSON text) noted in the new link's
 * recent states as concord's write (kind 'w', see store_link_note()) at
 * now_ms. Same returns. */
MUST_CHECK int store_link_add_noted(struct store *st, const char *collection, int64_t record_id,
                                    int64_t now_ms, const char *written, int64_t *id,
                                    struct error *err);

/*
 * The one link of collection whose base (a JSON object) holds value (a
 * string) at its top-level field, and whose copy exists. Returns 1 with
 * *out filled, 0 when none or more than one does, -1.
 */
MUST_CHECK int store_link_by_base(struct store *st, const char *collection, const char *field,
                                  const char *value, struct link *out, struct error *err);

/* Set a link's external id (NULL keeps it) and base. */
MUST_CHECK int store_link_set(struct store *st, int64_t link_id, const char *ext_id,
                              const char *base, int64_t now_ms, struct error *err);
/* The same, and base noted in the link's recent states as kind ('w' or 'r',
 * see store_link_note(); 0 notes nothing), in one statement. */
MUST_CHECK int store_link_set_noted(struct store *st, int64_t link_id, const char *ext_id,
                                    const char *base, int64_t now_ms, char kind, struct error *err);
/* The same, where the newest recent state, when it is over (the write
 * noted at its claim) of that kind, is replaced by base rather than
 * followed: the answer says what the copy holds, and one entry a write
 * keeps twice as many writes in the six. */
MUST_CHECK int store_link_set_written(struct store *st, int64_t link_id, const char *ext_id,
                                      const char *base, int64_t now_ms, char kind, const char *over,
                                      struct error *err);

/* ---- jobs ---- */

/*
 * Queue work for a link, coalescing: a pending job of the same link is
 * brought to this version and op instead of adding a second one (its place
 * and backoff stay). A running job is left alone and a new pending one
 * queued behind it. Returns 1 when a job was added, 0 when one was
 * coalesced, -1 on error.
 */
MUST_CHECK int store_job_put(struct store *st, const struct job *j, struct error *err);

/* Queue j as a new pending job, for a link that has none (just made).
 * Returns 1 or -1. */
MUST_CHECK int store_job_add(struct store *st, const struct job *j, struct error *err);

/* Add j as a job already claimed (JOB_RUNNING), with j->sent_version noted
 * (0: none), for a link that has no job (just made): what store_job_add()
 * and store_job_claim() write, in one statement. Returns 0 with *id set,
 * or -1. */
MUST_CHECK int store_job_add_claimed(struct store *st, const struct job *j, int64_t *id,
                                     struct error *err);

/*
 * Up to limit pending jobs for system due at now_ms, by priority, due time,
 * then age. Returns the count with *out malloc()ed (release with
 * store_jobs_free()), or -1.
 */
MUST_CHECK int store_job_due(struct store *st, const char *system, int64_t now_ms, int limit,
                             struct job **out, struct error *err);

/* Up to limit pending jobs for systems not named in systems_json (a JSON
 * array of names): left by a system taken out of the config. Same returns
 * as store_job_due(). */
MUST_CHECK int store_job_orphans(struct store *st, const char *systems_json, int limit,
                                 struct job **out, struct error *err);

/* Every job in state. Same returns as store_job_due(). */
MUST_CHECK int store_job_list(struct store *st, enum job_state state, struct job **out,
                              struct error *err);
void store_jobs_free(struct job *jobs, int count);

/* The job with id. Returns 1, 0 if none, -1. */
MUST_CHECK int store_job_get(struct store *st, int64_t id, struct job *out, struct error *err);

/* The earliest next_at of a pending job of the n systems named: 1 with
 * *at_ms set, 0 if none, -1. */
MUST_CHECK int store_job_next_due(struct store *st, const char *const *systems, size_t n,
                                  int64_t *at_ms, struct error *err);

/*
 * Move a job between states. JOB_PENDING takes next_at_ms and attempts
 * (both as given); the other states keep them. Returns 0 or -1.
 */
MUST_CHECK int store_job_set(struct store *st, int64_t job_id, enum job_state state, int attempts,
                             int64_t next_at_ms, struct error *err);

/* Whether a person retried the job's newest "unknown" inbox entry (a create
 * whose outcome was unknown, retried once its target was checked): 1, 0, -1. */
MUST_CHECK int store_job_unknown_retried(struct store *st, int64_t job_id, struct error *err);

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
 * superseded change from the latest one. The note is written with the
 * change's state (store_journal_set_state() of the same seq, in the same
 * transaction); a change undone before then (a rolled-back savepoint or
 * transaction) notes nothing. */
MUST_CHECK int store_journal_note_copy(struct store *st, int64_t seq, const char *collection,
                                       const char *ext_id, struct error *err);

/*
 * Mark changes received since since_ms (from system, NULL for all) to be
 * processed again through the current maps, skipping every change that a
 * later change of the same copy superseded, and closing their open inbox
 * entries. Runs in its own transaction when none is open. Returns how
 * many, or -1.
 */
MUST_CHECK int store_journal_replay(struct store *st, int64_t since_ms, const char *system,
                                    int64_t now_ms, struct error *err);

/*
 * Another pending job of the same link than job_id: 1 with *out filled (the
 * caller's to job_fini()), 0 when there is none, -1.
 */
MUST_CHECK int store_job_sibling(struct store *st, int64_t link_id, int64_t job_id, struct job *out,
                                 struct error *err);

/* Fold job drop_id into keep_id (the newest version with its op, the
 * highest priority) and delete drop_id. */
MUST_CHECK int store_job_absorb(struct store *st, int64_t keep_id, int64_t drop_id,
                                struct error *err);

/* Note what a numbered create expects (JSON; NULL to forget it): see
 * engine/deliver.c, "Numbered creates". */
MUST_CHECK int store_job_set_expect(struct store *st, int64_t job_id, const char *expect,
                                    struct error *err);

/* Mark a job running; with note_sent, also note the record version a
 * create carries (sent_version; 0 forgets it), in the same statement. */
MUST_CHECK int store_job_claim(struct store *st, int64_t job_id, int note_sent,
                               int64_t sent_version, struct error *err);

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

/* ---- the Two-way issue (store_twoway.c) ---- */

/* A record's field times: JSON {field: [at_ms, "source"]}, malloc()ed in
 * *out, or NULL when none was kept. Returns 0 or -1. */
MUST_CHECK int store_record_meta(struct store *st, int64_t record_id, char **out,
                                 struct error *err);
/* Replace a record's field times. */
MUST_CHECK int store_record_set_meta(struct store *st, int64_t record_id, const char *meta,
                                     struct error *err);

/* The states concord wrote to a copy lately: JSON [[at_ms, state], ...],
 * newest last, malloc()ed in *out, or NULL. Returns 0 or -1. */
MUST_CHECK int store_link_recent(struct store *st, int64_t link_id, char **out, struct error *err);
/*
 * Note a state of a link's copy in its recent states (recent.c): kind 'w'
 * for what concord wrote, 'r' for what was read, at at_ms; six are kept,
 * and a state that is already the newest of its kind is not noted again.
 */
MUST_CHECK int store_link_note(struct store *st, int64_t link_id, const char *state, char kind,
                               int64_t at_ms, struct error *err);

/*
 * The copy of a link was deleted in its system (or by concord): its
 * external id is kept aside, so late news of it is recognised, and the link
 * is left without a copy (a later upsert creates a new one). Its pending and
 * parked jobs are dropped and their inbox entries closed with why.
 */
MUST_CHECK int store_link_gone(struct store *st, int64_t link_id, int64_t record_id, int64_t now_ms,
                               const char *why, struct error *err);
/* The link whose deleted copy had ext_id. Returns 1 (out->ext_id holds it), 0, -1. */
MUST_CHECK int store_link_by_gone(struct store *st, const char *collection, const char *ext_id,
                                  struct link *out, struct error *err);

/* Replace a record's natural keys: count (name, value) pairs, NULL values skipped. */
MUST_CHECK int store_keys_set(struct store *st, int64_t record_id, const char *model,
                              const char *const *names, const char *const *values, size_t count,
                              struct error *err);
/* Live records of model with key name = value: the count (at most 16) with
 * *out a malloc()ed array of ids, or -1. */
MUST_CHECK int store_keys_find(struct store *st, const char *model, const char *name,
                               const char *value, int64_t **out, struct error *err);

/* Set an inbox entry's field and detail; state and by, when not NULL,
 * change its state and who did it. */
MUST_CHECK int store_inbox_set_detail(struct store *st, int64_t id, const char *field,
                                      const char *detail, const char *state, const char *by,
                                      int64_t now_ms, struct error *err);
/* The open conflict of a record's field. Returns 1 (*out filled, with field
 * and detail), 0, -1. */
MUST_CHECK int store_conflict_open(struct store *st, int64_t record_id, const char *field,
                                   struct inbox_entry *out, struct error *err);
/* The open ambiguous-match conflict of a copy concord has not linked.
 * Returns 1 (*out filled), 0, -1. */
MUST_CHECK int store_match_conflict_find(struct store *st, const char *collection,
                                         const char *ext_id, struct inbox_entry *out,
                                         struct error *err);
/* The open conflicts of a record. Returns the count with *out
 * (store_inbox_free()), or -1. */
MUST_CHECK int store_conflicts_of_record(struct store *st, int64_t record_id,
                                         struct inbox_entry **out, struct error *err);
/* Inbox entries of one kind (open ones only, or all), oldest first, with
 * field and detail. Returns the count with *out (store_inbox_free()), or -1. */
MUST_CHECK int store_inbox_by_kind(struct store *st, enum inbox_kind kind, int open_only,
                                   struct inbox_entry **out, struct error *err);
/* One entry with field and detail. Returns 1, 0, -1. */
MUST_CHECK int store_inbox_get_full(struct store *st, int64_t id, struct inbox_entry *out,
                                    struct error *err);

/* Open held deletes of a system. Returns 0 with *out set, or -1. */
MUST_CHECK int store_held_count(struct store *st, const char *system, int64_t *out,
                                struct error *err);
/* When each delete of system's copies that was let through without a
 * person's approval arrived, since since_ms, oldest first: the count with
 * *out (free()), or -1. */
MUST_CHECK int store_deletes_since(struct store *st, const char *system, int64_t since_ms,
                                   int64_t **out, struct error *err);
/* 1 when a person approved the held delete of journal change seq, 0 if not, -1. */
MUST_CHECK int store_held_approved(struct store *st, int64_t journal_seq, struct error *err);
/* Copies that exist in a collection. Returns 0 with *out set, or -1. */
MUST_CHECK int store_linked_count(struct store *st, const char *collection, int64_t *out,
                                  struct error *err);
/* Jobs of a link that are queued or running. Returns 0 with *out set, or -1. */
MUST_CHECK int store_link_jobs(struct store *st, int64_t link_id, int64_t *out, struct error *err);
/* Whether the link, without a copy yet, has a create under way or one whose
 * outcome is unknown: 1, 0, or -1. */
MUST_CHECK int store_link_create_open(struct store *st, int64_t link_id, struct error *err);
/* Whether a queued or running job of the link deletes or archives its copy:
 * 1, 0, or -1. */
MUST_CHECK int store_link_removing(struct store *st, int64_t link_id, struct error *err);
/* The record is back in the link's collection (restored, or in its filter
 * again): a delete or archive of its copy parked in the inbox would undo
 * that if retried, so it is dropped and its entry closed with why. */
MUST_CHECK int store_link_removal_moot(struct store *st, int64_t link_id, int64_t now_ms,
                                       const char *why, struct error *err);

/* One journaled change that concerned a record's copies (concord changes). */
struct store_copy_change {
    int64_t seq;
    char *system;
    char *collection; /* NULL for an operator's change */
    char *ext_id;     /* NULL for an operator's change */
    int64_t received_at_ms;
    enum change_state state;
    char *note; /* NULL, or what became of it: "refused phone: ..." */
};

/* Every change that concerned record_id's copies, or named it (an
 * operator's), oldest first. Returns the count with *out (release with
 * store_copy_changes_free()), or -1. */
MUST_CHECK int store_copy_changes(struct store *st, int64_t record_id,
                                  struct store_copy_change **out, struct error *err);
void store_copy_changes_free(struct store_copy_change *list, int count);

/* A create whose outcome is unknown, waiting to be settled. */
struct store_pinned {
    int64_t link_id;
    int64_t record_id;
    int64_t sent_version; /* the record version it carried */
};

/* The links of collection whose create's outcome is unknown (at most 64).
 * Returns the count with *out (free()), or -1. */
MUST_CHECK int store_pinned_creates(struct store *st, const char *collection,
                                    struct store_pinned **out, struct error *err);

/* A record was deleted: its open conflicts and its parked updates are moot;
 * they are closed (and the updates dropped) with why. Parked creates whose
 * outcome is unknown stay: their copy may exist. */
MUST_CHECK int store_record_deleted_cleanup(struct store *st, int64_t record_id, int64_t now_ms,
                                            const char *why, struct error *err);

/* How many ambiguous-match conflicts are open, into *n. Returns 0 or -1. */
MUST_CHECK int store_match_conflicts_open(struct store *st, int64_t *n, struct error *err);
/* The copy an open ambiguous-match conflict is about was deleted in its
 * system: the conflict is moot and closed with why. Returns how many, -1. */
MUST_CHECK int store_match_conflict_close(struct store *st, const char *collection,
                                          const char *ext_id, int64_t now_ms, const char *why,
                                          struct error *err);

/* Remove records deleted before before_ms, with their links, versions and
 * keys (not those with work still queued). Returns how many, or -1. */
MUST_CHECK int store_tombstones_purge(struct store *st, int64_t before_ms, struct error *err);

/* ---- scheduled reads (store_poll.c) ---- */

/* A polled collection's state. */
struct store_poll {
    char *cursor;          /* NULL, or the cursor (JSON) the next read starts from */
    int64_t next_at_ms;    /* when the next poll is due; 0: now */
    int64_t last_ok_at_ms; /* 0 when never */
    char *last_error;      /* NULL, or why the last poll failed */
    int64_t last_error_at_ms;
    int64_t rows_read;       /* in all */
    char *progress;          /* NULL, or JSON of a read in progress */
    char *report;            /* NULL, or JSON: the last read's counts */
    int64_t reconcile_at_ms; /* when the last complete reconcile ended; 0 never; -1 asked for */
};

/* Release what p owns. */
void store_poll_fini(struct store_poll *p);

/* A collection's poll state, made (due at first_at_ms) when there is none
 * and first_at_ms >= 0 (with -1, nothing is written: *out stays empty).
 * Returns 0 with *out filled (store_poll_fini()), or -1. */
MUST_CHECK int store_poll_get(struct store *st, const char *collection, int64_t first_at_ms,
                              struct store_poll *out, struct error *err);
/* Set the cursor: in the transaction of the page it covers. */
MUST_CHECK int store_poll_set_cursor(struct store *st, const char *collection, const char *cursor,
                                     struct error *err);
/* Set (NULL: clear) the progress of a read. */
MUST_CHECK int store_poll_progress(struct store *st, const char *collection, const char *progress,
                                   struct error *err);
/* A read begins: the requests made so far are taken up by it (a request
 * made while it runs still asks for another read after it). */
MUST_CHECK int store_poll_started(struct store *st, const char *collection, struct error *err);
/* Ask for a poll (reconcile 0) or a reconcile (1) now. */
MUST_CHECK int store_poll_request(struct store *st, const char *collection, int reconcile,
                                  struct error *err);
/* Note a poll's end: rows read, the next due time, the report (JSON), and
 * reconcile_at_ms (0: keep) when it was a complete reconcile. */
MUST_CHECK int store_poll_finish(struct store *st, const char *collection, int64_t now_ms,
                                 int64_t rows, int64_t next_at_ms, const char *report,
                                 int64_t reconcile_at_ms, struct error *err);
/* Note a poll's failure and when to try again. */
MUST_CHECK int store_poll_fail(struct store *st, const char *collection, const char *error,
                               int64_t now_ms, int64_t next_at_ms, const char *report,
                               struct error *err);

/*
 * Take (or renew) the lease of a collection's reads until until_ms, so two
 * readers never read it at once. holder names the reader ("pid@host");
 * the lease is taken when free, expired at now_ms, already the holder's,
 * or held by dead_holder (NULL: none), a reader known to be gone. Returns
 * 1 when taken, 0 when another holds it, -1.
 */
MUST_CHECK int store_poll_lease(struct store *st, const char *collection, int64_t now_ms,
                                int64_t until_ms, const char *holder, const char *dead_holder,
                                struct error *err);
/* Who holds a live lease: *out malloc()ed, or NULL when none. Returns 0 or -1. */
MUST_CHECK int store_poll_holder(struct store *st, const char *collection, int64_t now_ms,
                                 char **out, struct error *err);
/* Give the holder's lease back. */
MUST_CHECK int store_poll_release(struct store *st, const char *collection, const char *holder,
                                  struct error *err);

/* The copies a reconcile saw: empty the set, add to it, and list the
 * linked copies of collection it lacks (count, *out malloc()ed strings in
 * a malloc()ed array; -1), of links last set before before_ms only: a copy
 * linked while the read went on may have been made after the read passed
 * its place. The set belongs to the connection. */
MUST_CHECK int store_seen_reset(struct store *st, struct error *err);
MUST_CHECK int store_seen_add(struct store *st, const char *ext_id, struct error *err);
MUST_CHECK int store_seen_missing(struct store *st, const char *collection, int64_t before_ms,
                                  char ***out, struct error *err);
/* The external ids of collection's linked copies after `after` ("" or NULL:
 * from the first), in order, at most limit: count, *out as for
 * store_seen_missing(), or -1. For reads that ask for each copy in turn. */
MUST_CHECK int store_linked_page(struct store *st, const char *collection, const char *after,
                                 int limit, char ***out, struct error *err);

/* ---- health (store_health.c) ---- */

/* What a system's health is judged from (engine/health.c). */
struct store_health_facts {
    int64_t oldest_pending_ms; /* when the oldest pending or running job was made; 0: none */
    int64_t inbox_recent;      /* open failed, unknown and mapping entries made since since_ms */
    int64_t inbox_open;        /* all of them, open */
    int64_t conflicts_open;    /* open conflicts */
    int64_t last_webhook_ms;   /* when the last webhook came; 0: never */
};

/* The facts about system, with inbox_recent counted from since_ms. Returns 0 or -1. */
MUST_CHECK int store_health_facts(struct store *st, const char *system, int64_t since_ms,
                                  struct store_health_facts *out, struct error *err);
/* Note that webhooks of system came, at at_ms. */
MUST_CHECK int store_webhook_seen(struct store *st, const char *system, int64_t at_ms,
                                  struct error *err);

/* ---- the store's own notes (meta table; store_health.c) ---- */

/* Set (value NULL: remove) a note: "daemon.pid", "daemon.reload". Returns 0 or -1. */
MUST_CHECK int store_meta_set(struct store *st, const char *key, const char *value,
                              struct error *err);
/* A note into *out (malloc()ed; NULL when none). Returns 0 or -1. */
MUST_CHECK int store_meta_get(struct store *st, const char *key, char **out, struct error *err);

/* ---- retention and erasure (store_retention.c) ---- */

/*
 * Delete, at most batch rows each, what is older than before_ms[i] (0:
 * keep): [0] processed journal rows, [1] record versions but the current
 * one, [2] attempts of finished jobs, [3] settled inbox entries. What an
 * open inbox entry or a waiting job needs stays. Returns the rows deleted.
 */
MUST_CHECK int store_retention_prune(struct store *st, const int64_t before_ms[4], int64_t batch,
                                     struct error *err);

/*
 * Delete up to batch finished automation runs (done, cancelled, skipped)
 * whose state last changed before before_ms (0: keep), with their actions'
 * rows. A run still running, waiting, or failed or cut (its inbox entry is
 * open) stays. Returns the runs deleted, or -1.
 */
MUST_CHECK int store_retention_prune_runs(struct store *st, int64_t before_ms, int64_t batch,
                                          struct error *err);

/*
 * Erase record_id: the record, its versions, links, keys, jobs, attempts
 * and inbox entries, and the journal rows about it (or holding its natural
 * keys' values), overwritten (secure_delete) and the WAL emptied.
 * *journal_rows: how many journal rows went. Returns 0 or -1.
 */
MUST_CHECK int store_forget(struct store *st, int64_t record_id, int64_t *journal_rows,
                            struct error *err);

/* The id of the copy a link's copy had before it was deleted (cancelled),
 * while the link has none: *out malloc()ed, or NULL. Returns 0 or -1. */
MUST_CHECK int store_link_gone_id(struct store *st, int64_t link_id, char **out, struct error *err);

/* Jobs still queued or running for record_id, into *n. Returns 0 or -1. */
MUST_CHECK int store_record_jobs(struct store *st, int64_t record_id, int64_t *n,
                                 struct error *err);

/* ---- OAuth2 tokens (store_oauth.c) ---- */

/*
 * A system's OAuth2 tokens. The store file holds them as it holds the
 * records: whoever can read it can read them (docs/config.md, "OAuth2").
 */
struct store_oauth {
    char *access_token;    /* NULL when none */
    int64_t expires_at_ms; /* when access_token expires; 0 when unknown */
    char *refresh_token;   /* NULL when none: the latest, after rotations */
    char *seed;            /* NULL, or a digest of the config's refresh token it came from */
};

/* Release what t owns, wiping the tokens first. */
void store_oauth_fini(struct store_oauth *t);
/* A system's tokens: 1 with *out filled (store_oauth_fini()), 0 when none, -1. */
MUST_CHECK int store_oauth_get(struct store *st, const char *system, struct store_oauth *out,
                               struct error *err);
/* Replace a system's tokens. */
MUST_CHECK int store_oauth_put(struct store *st, const char *system, const struct store_oauth *t,
                               int64_t now_ms, struct error *err);

/* ---- the audit log of operators' actions (store_audit.c) ---- */

/*
 * One operator's action: who did what, through which door, to what. The
 * daemon never writes here; the CLI and the admin API do, in the
 * transaction of the action itself where there is one.
 */
struct store_audit {
    int64_t id;    /* set by the store */
    int64_t at_ms; /* when */
    char *who;     /* the admin token's name, or the local user of the CLI */
    char *via;     /* "api" or "cli" */
    char *action;  /* "retry", "skip", "edit", "resolve", "approve", "pause", ... */
    char *target;  /* NULL, or what it was done to: "inbox 12", "system crm", "record 3" */
    char *detail;  /* NULL, or JSON: the reason, the fields, the filter, how many */
};

/* Release what a owns. */
void store_audit_fini(struct store_audit *a);

/* Add a->... as a new entry (a->id is ignored). Returns 0 with *id set, or -1. */
MUST_CHECK int store_audit_add(struct store *st, const struct store_audit *a, int64_t *id,
                               struct error *err);

/*
 * Up to limit entries, newest first, with ids below before_id (0: from the
 * newest). Returns the count with *out a malloc()ed array released with
 * store_audit_free(), or -1.
 */
MUST_CHECK int store_audit_list(struct store *st, int limit, int64_t before_id,
                                struct store_audit **out, struct error *err);
void store_audit_free(struct store_audit *list, int count);

/* ---- automation runs (store_automation.c) ---- */

/*
 * One run of an automation: what started it (automation, record, version:
 * unique, so one change never starts one automation twice), where it
 * stands and the context its actions read (JSON: old, new, source, ...).
 */
struct store_run {
    int64_t id;
    char *automation;
    int64_t record_id;
    int64_t version;
    char *model;
    int depth;    /* 0 for a run a system's or a person's change started; +1 per automation */
    char *state;  /* "running", "waiting", "done", "failed", "cancelled", "cut", "skipped" */
    int step;     /* the action due next, 0-based (waiting: the wait itself) */
    int attempts; /* attempts of that action so far */
    int64_t next_at_ms;
    char *context; /* JSON text */
    char *note;    /* NULL, or why it stopped or waits */
    int64_t created_at_ms;
    int64_t updated_at_ms;
};

/* Release what r owns; r may be reused. */
void store_run_fini(struct store_run *r);
/* Release a list store_runs_list() or store_runs_waiting() returned. */
void store_runs_free(struct store_run *list, int count);

/*
 * Add a run (r->id, step and attempts are ignored; created_at_ms is now),
 * unless one of (automation, record_id, version) exists. Returns 1 with
 * *id set when added, 0 when it existed (a replay, a repeat), -1.
 */
MUST_CHECK int store_run_add(struct store *st, const struct store_run *r, int64_t *id,
                             struct error *err);

/* The run due first at now_ms (running or waiting, next_at <= now):
 * 1 with *out filled (store_run_fini()), 0 when none, -1. */
MUST_CHECK int store_run_due(struct store *st, int64_t now_ms, struct store_run *out,
                             struct error *err);

/* The earliest next_at of a running or waiting run: 1 with *at_ms, 0 if none, -1. */
MUST_CHECK int store_run_next_due(struct store *st, int64_t *at_ms, struct error *err);

/* The run with id: 1 (*out filled), 0 if none, -1. */
MUST_CHECK int store_run_get(struct store *st, int64_t id, struct store_run *out,
                             struct error *err);

/* How a run moves on (store_run_set()). */
struct store_run_move {
    int64_t id;
    const char *from; /* NULL, or the state it must still be in (else nothing changes) */
    const char *state;
    int step;
    int attempts;
    int64_t next_at_ms;
    const char *note; /* NULL clears it */
    int64_t now_ms;
};

/* Move a run on. Returns 1 when it moved, 0 when it was not in m->from, -1. */
MUST_CHECK int store_run_set(struct store *st, const struct store_run_move *m, struct error *err);

/* Replace a run's context (JSON text, copied). 0, -1. */
MUST_CHECK int store_run_set_context(struct store *st, int64_t id, const char *context,
                                     struct error *err);

/* The waiting runs of a record, oldest first, but those of the automations
 * that skip_json names (a JSON array of names; NULL: none): the count with
 * *out (store_runs_free()), or -1. */
MUST_CHECK int store_runs_waiting(struct store *st, int64_t record_id, const char *skip_json,
                                  struct store_run **out, struct error *err);

/* Which runs store_runs_list() returns; unset fields match all. */
struct store_runs_query {
    const char *automation; /* NULL: every automation */
    int64_t record_id;      /* 0: every record */
    int64_t after_id;       /* only runs with a larger id */
    int limit;              /* at most this many; 0: 50 */
};

/* Runs, newest first: the count with *out (store_runs_free()), or -1. */
MUST_CHECK int store_runs_list(struct store *st, const struct store_runs_query *q,
                               struct store_run **out, struct error *err);

/* The largest run id so far (0 when none) into *out. Returns 0 or -1. */
MUST_CHECK int store_runs_max_id(struct store *st, int64_t *out, struct error *err);

/* One action of a run and what became of it. */
struct store_step {
    int64_t run_id;
    int n;         /* the action's index, 0-based */
    char *kind;    /* "set", "create", "update", "http", "notify", "wait" */
    char *state;   /* "ok", "queued", "sending", "retrying", "waiting", "failed", "skipped", ... */
    int attempts;  /* made so far */
    char *outcome; /* NULL, or for people: "POST /accounts/a1/activate: HTTP 200" */
    int http_status;     /* 0 when there was no answer */
    int64_t journal_seq; /* set, create, update: the change it journaled; else 0 */
    int64_t inbox_id;    /* the inbox entry of its failure; else 0 */
    int64_t at_ms;
};

/* Release what s owns; s may be reused. */
void store_step_fini(struct store_step *s);
/* Release a list store_steps_list() returned. */
void store_steps_free(struct store_step *list, int count);

/* Add or replace the row of action (run_id, n); a 0 journal_seq keeps the
 * one it had. Attempts add up over retries from the inbox: state "sending"
 * counts one more than the row had, another state keeps the larger count. */
MUST_CHECK int store_step_put(struct store *st, const struct store_step *s, struct error *err);

/* The actions of a run, in order: the count with *out (store_steps_free()), or -1. */
MUST_CHECK int store_steps_list(struct store *st, int64_t run_id, struct store_step **out,
                                struct error *err);

/* Set the state and outcome of one action. */
MUST_CHECK int store_step_outcome(struct store *st, int64_t run_id, int n, const char *state,
                                  const char *outcome, int64_t now_ms, struct error *err);

/* The run whose action journaled a change. */
struct store_run_cause {
    int64_t run_id;
    int step;
    char *automation;
    int depth;
    char *context; /* the run's context (JSON) */
};

/* Release what c owns. */
void store_run_cause_fini(struct store_run_cause *c);

/* The run and action that journaled change seq: 1 (*out filled;
 * store_run_cause_fini()), 0 when none did, -1. */
MUST_CHECK int store_step_by_seq(struct store *st, int64_t seq, struct store_run_cause *out,
                                 struct error *err);

/*
 * Inbox entry inbox_id is an automation action's failure (or a loop's
 * cut): retrying it makes its run due again at the same action, with its
 * attempts reset; skipping it ends the run as "skipped" with note. Both
 * return 1 when the entry was a run's, 0 when not, -1. Called inside the
 * inbox's own retry and skip (store_inbox_retry(), store_inbox_resolve()).
 */
MUST_CHECK int store_run_inbox_retry(struct store *st, int64_t inbox_id, int64_t now_ms,
                                     struct error *err);
MUST_CHECK int store_run_inbox_skip(struct store *st, int64_t inbox_id, const char *note,
                                    int64_t now_ms, struct error *err);

/* Which records store_records_where() finds: one page of them. */
struct store_where {
    const char *model;
    const char *field;
    const char *value_json; /* a JSON value */
    int64_t after_id;       /* only ids above this one: 0, then the last id of a page */
    int limit;              /* the page's size */
};

/* Live records of w->model whose w->field holds w->value_json, with an id
 * above w->after_id, at most w->limit, by id: the count with *out
 * (free()), or -1. A count of w->limit means there may be more. */
MUST_CHECK int store_records_where(struct store *st, const struct store_where *w, int64_t **out,
                                   struct error *err);

/* ---- push registrations of the calendar kinds (store_push.c) ---- */

/*
 * One live push registration of a system: a Google watch channel (id,
 * resource_id) or a Graph subscription (id), with the secret its
 * notifications must carry (X-Goog-Channel-Token, clientState) and when it
 * expires. The secret is a credential, kept as the OAuth2 tokens are.
 */
struct store_push {
    char *system;
    char *id;
    char *resource_id; /* Google's resourceId; NULL for Graph */
    char *secret;
    int64_t expires_at_ms;
    int64_t created_at_ms;
};

/* Release what p owns, wiping the secret first. */
void store_push_fini(struct store_push *p);
/* Release a list of n from store_push_list(). */
void store_push_free(struct store_push *list, int count);
/* Every registration (of every system), by system, then expiry. Returns
 * the count with *out a malloc()ed array (store_push_free()), or -1. */
MUST_CHECK int store_push_list(struct store *st, struct store_push **out, struct error *err);
/* Add or replace the registration (p->system, p->id). */
MUST_CHECK int store_push_put(struct store *st, const struct store_push *p, struct error *err);
/* Forget the registration (system, id). */
MUST_CHECK int store_push_delete(struct store *st, const char *system, const char *id,
                                 struct error *err);
/*
 * The external ids of collection's linked copies whose base is a recurring
 * appointment (it holds "recurrence"), at most limit of them: the series a
 * Graph delta's nameless removal may be about. Returns the count with *out
 * malloc()ed strings in a malloc()ed array, or -1.
 */
MUST_CHECK int store_push_series(struct store *st, const char *collection, int limit, char ***out,
                                 struct error *err);

#endif
