/* SPDX-License-Identifier: MIT */

/*
 * Collections with a shape (config_collection.shape; docs/calendars.md):
 * their records are not the system's JSON as it comes but the canonical
 * appointment (connectors/appt.h) with two more keys, "id" (the event's
 * id) and "updated" (its last-change time), which every comparison here
 * ignores. Reads turn the system's events into such records, reading a
 * series whole (its master or series event and its exceptions) whatever
 * occurrence the change list named, so one series is one record; writes
 * lay the record's mapped fields over what the copy holds, make it
 * canonical and send it as the system's event. Times compare as instants,
 * so one meeting written in two zones is no change.
 *
 * Only src/engine/ includes this. Thread: the read functions run on the
 * poll thread (or a CLI's), the write functions on the writer.
 */
#ifndef CONCORD_ENGINE_SHAPE_H
#define CONCORD_ENGINE_SHAPE_H

#include <stddef.h>
#include <stdint.h>

#include "core/compiler.h"

struct cJSON;
struct config_collection;
struct engine_coll;
struct error;
struct store;

/* A record that says its copy is gone ({"id", "@removed": {...}}). */
#define SHAPE_REMOVED "@removed"
/* A record that could not be read ({"id", "@skipped": "why"}): counted,
 * seen by a reconcile (so it deletes nothing), never journaled. */
#define SHAPE_SKIPPED "@skipped"

/* One GET a read makes besides its pages: status 0 when no answer came
 * (error then says why); body malloc()ed. */
struct shape_answer {
    long status;
    char *body;
    char *error;
};

/* Make the GET of url (the system's auth added) into *out. Returns 0 with
 * *out filled (whatever the status), or -1 with err (nothing was sent). */
typedef int shape_get_fn(void *user, const char *url, struct shape_answer *out, struct error *err);

/* What one read of a shaped collection needs and remembers across its pages. */
struct shape_reader {
    const struct config_collection *cc;
    shape_get_fn *get;
    void *user;
    struct store *st; /* the reader's handle, for the links (Graph's nameless removals) */
    int64_t now_ms;
    /* Filled as the read goes: */
    char **done; /* series read whole in this read: later pages skip them */
    size_t done_count, done_cap;
    int swept;       /* Graph: the linked series were read again for a nameless removal */
    int64_t skipped; /* events that could not be read */
};

/* Release what r gathered (not cc, st or user). */
void shape_reader_fini(struct shape_reader *r);

/*
 * The records of one page of the system's change list (items: the page's
 * events), as a new array in *out: appointments with "id" and "updated",
 * SHAPE_REMOVED records for deletions, SHAPE_SKIPPED ones for events that
 * cannot be read (the reason is logged). Series are read whole with extra
 * GETs; when one fails the page cannot be taken: returns 0 with *out NULL
 * and why filled (the read stops there and goes on from this page next
 * time). Returns -1 on a store failure.
 */
MUST_CHECK int shape_page(struct shape_reader *r, const struct cJSON *items, struct cJSON **out,
                          char *why, size_t why_len, struct error *err);

/*
 * Whether the copy id, which a complete full read did not list, is gone:
 * reads, such as Graph's calendarView/delta or a list with timeMin, hold
 * a window of time, and an event outside it is not deleted. Returns 1
 * (404, 410, or a Google event that says cancelled), 0 (it is there, or
 * the GET failed: why says why), or -1.
 */
MUST_CHECK int shape_gone(struct shape_reader *r, const char *id, char *why, size_t why_len,
                          struct error *err);

/* Whether record (a read's) is what base (a link's base, text) holds: the
 * same meeting, by appt_equal(). 1 or 0. */
int shape_same(const struct cJSON *record, const char *base);

/*
 * Whether writing desired (map_out's output) would change a copy whose
 * base is base (a record: an appointment with "id"): desired laid over
 * base, made canonical, and compared as appointments. 1 (also when it
 * cannot be made canonical: the write then says why) or 0.
 */
int shape_differs(const struct engine_coll *c, const struct cJSON *desired,
                  const struct cJSON *base);

/*
 * The appointment to write to the copy of link link_id: base (the link's
 * base text, or NULL for a create) with desired (map_out's output, and the
 * archive fields) laid over it, canonical. *desired is replaced. A copy
 * without a uid gets "concord-<prefix>-<link>@<collection>", prefix the
 * store's part of its keys ("concord-<link>@<collection>" when it is "",
 * an old store's). Returns 0, or -1 with ERROR_MAPPING saying what is wrong.
 */
MUST_CHECK int shape_desired(const struct engine_coll *c, const char *prefix, int64_t link_id,
                             const char *base, struct cJSON **desired, struct error *err);

/* What one write of a series does: the series event itself, or one step
 * of writing an occurrence that differs from the series (an exception, or
 * a Graph occurrence to delete) once the series is as it should be. */
enum shape_step {
    SHAPE_STEP_SERIES = 0, /* the event (a series or a single event) */
    SHAPE_STEP_FIND,       /* Graph: GET the series' instances, for an occurrence's id */
    SHAPE_STEP_OCCURRENCE, /* PATCH (or Graph: DELETE) one occurrence */
};

/* A write of a shaped collection, as the system takes it. */
struct shape_request {
    char *body;   /* the JSON text to send (malloc()ed); NULL for a GET or DELETE */
    char *method; /* NULL, or another method than the collection's (malloc()ed) */
    char *path;   /* NULL, or another path than the collection's (malloc()ed) */
    enum shape_step step;
    char *occurrence; /* a step's recurrence id (malloc()ed), else NULL */
};

/*
 * The request that writes desired (shape_desired()'s appointment, with the
 * collection's idempotency field when add_idempotency() set it) to copy
 * ext_id (NULL for a create) whose base is base: a create sends the whole
 * event (Google: with the id the idempotency key makes; Graph: with
 * transactionId), an update only the event's properties that differ from
 * what base holds. A Graph meeting that becomes cancelled is cancelled
 * with its cancel action. A series whose event already agrees but one of
 * whose occurrences does not is written one occurrence a request: Google's
 * instance (its id made by appt_gcal_instance_id()) is patched; Graph's is
 * found first among the series' instances (SHAPE_STEP_FIND, whose answer
 * shape_found() reads into hint, the job's note), then patched or deleted.
 * Returns 0 with *out filled (free it with shape_request_fini()), or -1
 * with ERROR_MAPPING.
 */
MUST_CHECK int shape_request(const struct engine_coll *c, const struct cJSON *desired,
                             const char *base, const char *ext_id, const char *hint,
                             struct shape_request *out, struct error *err);

/* Free r's strings and zero it. */
void shape_request_fini(struct shape_request *r);

/*
 * A SHAPE_STEP_FIND's answer (a page of a Graph series' instances): the
 * note (malloc()ed JSON) that tells the next shape_request() the id of
 * occurrence, or NULL when the page does not hold it.
 */
char *shape_found(const struct cJSON *answer, const char *occurrence);

/*
 * Whether, after a write left the copy at base (text), the next write of
 * sent (the appointment written, text) is an occurrence of the series
 * (SHAPE_STEP_FIND or SHAPE_STEP_OCCURRENCE): the job then goes on. Each
 * such step brings one occurrence into agreement, so this ends. 1 or 0.
 */
int shape_more(const struct engine_coll *c, const char *sent, const char *base);

/*
 * The base after a successful write of step: for the series, the system's
 * answer (an event) read as a record, with the exceptions the copy held
 * before (before, the base when the job was claimed; none after a create:
 * the answer to a series' write does not hold them, and the occurrence
 * steps that follow write them); for an occurrence, before with that
 * occurrence as sent (the appointment sent, text) has it; sent with ext_id
 * when the answer holds no event. A malloc()ed text.
 */
char *shape_new_base(const struct engine_coll *c, const char *sent, const char *ext_id,
                     const struct cJSON *answer, int was_create, const char *before,
                     enum shape_step step, const char *occurrence);

/*
 * The copy a create's "it exists" answer is about, for a shape that names
 * its copies itself (Google: the id the create sent in body, taken since
 * by an earlier send of the same create). Writes it into out and returns
 * 1, or 0 when the shape does not know.
 */
int shape_conflict_id(const struct config_collection *cc, const char *body, char *out, size_t len);

#endif
