/* SPDX-License-Identifier: MIT */

/*
 * What an operator reads and does, once, for both doors: the CLI
 * (src/cli/) and the admin API (daemon/daemon_admin.c). Reads build the
 * JSON that `concord X --json` prints and GET /api/... answers
 * (admin_view.c); actions change the store the way the CLI always has
 * (admin.c) and record who did what in the audit log, in the same
 * transaction.
 *
 * Actions never touch the daemon's memory. They write through the
 * caller's own store handle, as the CLI does: a retried job becomes
 * pending, a correction is journaled from ENGINE_OPERATOR_SYSTEM, a pause
 * is a row; the running daemon's writer and delivery threads pick each up
 * from the store within a moment.
 *
 * Returns, unless a function says otherwise: 1 when done, 0 when there is
 * no such entry, record or system (nothing is written), -1 with err set.
 * An operator's mistake (a bad value, a field the model lacks, a side that
 * is not in the conflict) is ERROR_INVALID with a sentence to show. Every
 * function is for one thread at a time with its own store handle.
 */
#ifndef CONCORD_ENGINE_ADMIN_H
#define CONCORD_ENGINE_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "core/compiler.h"
#include "model/model.h"

struct cJSON;
struct config;
struct engine_plan;
struct error;
struct store;

/* Who acts, for the audit log and the inbox's "by". Both borrowed. */
struct admin_actor {
    const char *name; /* the admin token's name, or the CLI's local user */
    const char *via;  /* "api" or "cli" */
};

/* What an action did, for people: the CLI prints message, the API sends it. */
struct admin_result {
    int64_t count;     /* entries, changes or fields it touched */
    int64_t record_id; /* the record it concerns, or 0 */
    char message[320]; /* one sentence: "entry 12 queued again" */
};

/* Which entries a bulk retry takes, or which changes a replay runs again.
 * Unset fields (NULL, 0) match everything. */
struct admin_filter {
    const char *system;
    const char *error; /* retry: a part of the reason */
    const char *kind;  /* retry: an inbox kind name, "failed", "unknown", ... */
    int64_t since_ms;  /* from this time on (replay: required) */
    int64_t until_ms;  /* up to this time; 0: no end */
    int is_all;        /* retry: 1 to take every open entry; a filter needs a field or this */
};

/* A correction: exactly one of inbox_id (the entry's record, and the entry
 * is closed as "edited") and record_id. */
struct admin_edit {
    int64_t inbox_id;
    int64_t record_id;
    const struct cJSON *fields; /* {field: value}: model fields, coerced to their types */
};

/* How a conflict is settled: exactly one of take, value, record_id, is_new. */
struct admin_resolution {
    int64_t inbox_id;
    const char *take;          /* the system whose side wins */
    const struct cJSON *value; /* a value given for the field */
    int64_t record_id;         /* an ambiguous match: the copy joins this record */
    int is_new;                /* an ambiguous match: the copy makes a new record */
};

/*
 * Parse a time as --since/--until and the API's since/until take it: RFC
 * 3339 ("2026-11-26T05:00:00Z", or a date) or an age ("90s", "30m", "2h",
 * "7d": that long before now_ms). Returns 0 with *out_ms set, or -1.
 */
MUST_CHECK int admin_parse_time(const char *text, int64_t now_ms, int64_t *out_ms);

/* ---- actions (admin.c) ---- */

/* Put an open inbox entry's work back in line (it goes behind live work). */
MUST_CHECK int admin_retry(struct store *st, const struct admin_actor *who, int64_t inbox_id,
                           struct admin_result *res, struct error *err);

/* Retry every open entry f matches; res->count says how many. Returns 0,
 * or -1 (ERROR_INVALID for a filter with no field and no is_all). */
MUST_CHECK int admin_retry_matching(struct store *st, const struct admin_actor *who,
                                    const struct admin_filter *f, struct admin_result *res,
                                    struct error *err);

/* Give up on an open entry, with a reason (NULL: none); its job is dropped. */
MUST_CHECK int admin_skip(struct store *st, const struct admin_actor *who, int64_t inbox_id,
                          const char *reason, struct admin_result *res, struct error *err);

/* Correct a record's fields. res->count is how many differ from the
 * record's state; with none, nothing is written and 1 is returned. */
MUST_CHECK int admin_edit(struct store *st, const struct config *cfg, const struct admin_actor *who,
                          const struct admin_edit *ed, struct admin_result *res, struct error *err);

/* Settle an open conflict. */
MUST_CHECK int admin_resolve(struct store *st, const struct config *cfg,
                             const struct admin_actor *who, const struct admin_resolution *how,
                             struct admin_result *res, struct error *err);

/* Let held deletes through: the entry inbox_id, or (inbox_id 0) every one
 * of system, or (system NULL too) every one. 1 when at least one was,
 * res->count how many; 0 when none matched. */
MUST_CHECK int admin_approve(struct store *st, const struct admin_actor *who, int64_t inbox_id,
                             const char *system, struct admin_result *res, struct error *err);

/* Hold deliveries to a system of cfg; changes are still taken in and queued. */
MUST_CHECK int admin_pause(struct store *st, const struct config *cfg,
                           const struct admin_actor *who, const char *system,
                           struct admin_result *res, struct error *err);
/* Release deliveries to a paused system of cfg. */
MUST_CHECK int admin_resume(struct store *st, const struct config *cfg,
                            const struct admin_actor *who, const char *system,
                            struct admin_result *res, struct error *err);

/* Run changes since f->since_ms (of f->system, a system of cfg, when set)
 * again through the current maps; res->count says how many. Returns 0, or
 * -1 (ERROR_INVALID for an unknown system). */
MUST_CHECK int admin_replay(struct store *st, const struct config *cfg,
                            const struct admin_actor *who, const struct admin_filter *f,
                            struct admin_result *res, struct error *err);

/* Bring a deleted record back (ERROR_INVALID when it is not deleted). */
MUST_CHECK int admin_restore(struct store *st, const struct admin_actor *who, int64_t record_id,
                             struct admin_result *res, struct error *err);

/* Delete a live record through the daemon, as an operator (every
 * collection's delete mode applies): concord forget --propagate. */
MUST_CHECK int admin_delete_record(struct store *st, const struct admin_actor *who,
                                   int64_t record_id, struct admin_result *res, struct error *err);

/* Erase a record from the store (store_forget()) and note it in the audit
 * log (the target only: the audit keeps no data of the person). */
MUST_CHECK int admin_forget(struct store *st, const struct admin_actor *who, int64_t record_id,
                            struct admin_result *res, struct error *err);

/* Ask the daemon to poll (reconcile 0) or reconcile (1) a polled
 * collection of cfg at its next turn. 0: no polled collection of that name. */
MUST_CHECK int admin_read_request(struct store *st, const struct config *cfg,
                                  const struct admin_actor *who, const char *collection,
                                  int reconcile, struct admin_result *res, struct error *err);

/* ---- reads (admin_view.c): JSON the caller frees with cJSON_Delete() ---- */

/* One inbox entry as a row of a list: id, kind, state, record, system,
 * reason, attempts...; with field and detail when it has them. */
struct cJSON *admin_entry_json(const struct inbox_entry *e);

/*
 * Inbox entries: of every kind (kind 0; newest first) or of one kind
 * (oldest first), open ones only or all. Returns 0 with *out an array, or -1.
 */
MUST_CHECK int admin_inbox_json(struct store *st, enum inbox_kind kind, int open_only,
                                struct cJSON **out, struct error *err);

/* One entry whole: the row, every attempt with its request and answer
 * (attempts_made), and the diff its job tries to apply (diff, or null). */
MUST_CHECK int admin_entry_detail_json(struct store *st, const struct config *cfg, int64_t id,
                                       struct cJSON **out, struct error *err);

/* Per system of cfg: backlog, in flight, failed, last success and error,
 * pause and breaker; and each polled collection's state.
 * {"systems": [...], "polls": [...]}. Returns 0 or -1. */
MUST_CHECK int admin_status_json(struct store *st, const struct config *cfg, struct cJSON **out,
                                 struct error *err);

/* A record's current state: {record, model, version, deleted, updated_at, state}. */
MUST_CHECK int admin_record_json(struct store *st, int64_t id, struct cJSON **out,
                                 struct error *err);

/* Every version of a record, oldest first. */
MUST_CHECK int admin_history_json(struct store *st, int64_t id, struct cJSON **out,
                                  struct error *err);

/* Every change that concerned a record's copies, and what became of it.
 * 0 when the record is unknown and no change names it. */
MUST_CHECK int admin_changes_json(struct store *st, int64_t id, struct cJSON **out,
                                  struct error *err);

/* Each field of a record: value, and the source, change, version, rule
 * and mapping that set it. */
MUST_CHECK int admin_explain_json(struct store *st, const struct config *cfg, int64_t id,
                                  struct cJSON **out, struct error *err);

/* A plan (engine/plan.h) as {"reads": [...], "changes": [...], "issues": [...]}. */
struct cJSON *admin_plan_json(const struct engine_plan *p);

/* Which runs admin_runs_json() lists; unset fields match every run. */
struct admin_runs_filter {
    const char *automation; /* NULL: every automation */
    int64_t record_id;      /* 0: every record */
    const char *state;      /* NULL, or "running", "waiting", "done", "failed", ... */
    int limit;              /* the newest this many runs are looked at; 0: 50 */
};

/* Automation runs, newest first: id, automation, record, version, event,
 * source, state, depth, chain, next_at, note, and each action's n, state,
 * attempts and outcome. Returns 0 with *out an array, or -1. */
MUST_CHECK int admin_runs_json(struct store *st, const struct config *cfg,
                               const struct admin_runs_filter *f, struct cJSON **out,
                               struct error *err);

/* For explain: when an automation's action journaled change journal_seq,
 * the rule ("automation X, run 4, action 1 (set)") and the mapping of
 * field into rule and mapping. Returns 1, 0 when no automation did, -1. */
MUST_CHECK int admin_automation_setter(struct store *st, const struct config *cfg,
                                       int64_t journal_seq, const char *field, char *rule,
                                       size_t rule_len, char *mapping, size_t mapping_len,
                                       struct error *err);

/* Up to limit audit entries, newest first, with ids below before_id (0:
 * from the newest). Returns 0 with *out an array, or -1. */
MUST_CHECK int admin_audit_json(struct store *st, int limit, int64_t before_id, struct cJSON **out,
                                struct error *err);

#endif
