/* SPDX-License-Identifier: MIT */

/*
 * concord plan: a dry run (plan.c). The polled collections in scope are
 * read whole without journaling anything or moving a cursor; what the reads
 * found, and the changes already waiting in the journal, are merged in a
 * transaction that is rolled back; and the work that would follow (every
 * pending job: creates, updates with their field diff, deletes, archives)
 * is reported with the conflicts and held deletes it would raise, and the
 * automations the changes would start. The store is left exactly as it was.
 */
#ifndef CONCORD_ENGINE_PLAN_H
#define CONCORD_ENGINE_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "core/compiler.h"
#include "engine/poll.h"

struct config;
struct error;

/* One write the plan foresees. */
struct engine_plan_change {
    char *system;
    char *collection;
    const char *op; /* "create", "update", "delete", "archive"; static */
    int64_t record_id;
    char *copy;   /* the copy's id, or NULL before a create */
    char *fields; /* JSON: a create's or archive's fields; an update's {field: [old, new]} */
    char *note;   /* NULL, or why it waits */
};

/* Something that would need a person. */
struct engine_plan_issue {
    const char *kind; /* "conflict", "held", "mapping", "failed", "unknown"; static */
    char *collection;
    int64_t record_id;
    char *reason;
};

/* An automation run a pending change would start (only the first link
 * of a chain: the plan carries out no action). */
struct engine_plan_run {
    char *automation;
    int64_t record_id;
    int64_t version;
    char *event;   /* "created", "updated", "deleted" */
    char *actions; /* "http, set" */
    int is_cut;    /* it would be cut: past automation_depth */
    int is_failed; /* a condition of it fails to run: it would stop in the inbox */
};

struct engine_plan {
    struct engine_poll_report *reads; /* one per polled collection in scope */
    char **read_names;
    size_t read_count;
    struct engine_plan_change *changes;
    size_t change_count;
    struct engine_plan_issue *issues;
    size_t issue_count;
    struct engine_plan_run *runs;
    size_t run_count;
};

/*
 * Plan for scope: a sync or a collection name (its reads, and the writes to
 * its collections), or NULL for everything. Returns 0 with *out filled
 * (engine_plan_fini()), or -1 (err says why; an unknown scope is
 * ERROR_INVALID).
 */
MUST_CHECK int engine_plan(const struct config *cfg, const char *scope, struct engine_plan *out,
                           struct error *err);

/* Release what a plan owns. */
void engine_plan_fini(struct engine_plan *p);

#endif
