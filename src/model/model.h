/* SPDX-License-Identifier: MIT */

/*
 * The plain data that flows through concord (DESIGN.md, "Vocabulary"):
 * changes as journaled, records and their versions, links to the copies in
 * each collection, jobs, and inbox entries. These are rows as the store
 * hands them out: JSON states are kept as text and parsed by whoever needs
 * them. Each struct owns its strings; release with its _fini function.
 */
#ifndef CONCORD_MODEL_MODEL_H
#define CONCORD_MODEL_MODEL_H

#include <stddef.h>
#include <stdint.h>

/* What became of a journaled change once it was processed. */
enum change_state {
    CHANGE_NEW = 0,   /* journaled, not processed yet */
    CHANGE_APPLIED,   /* made a new record version */
    CHANGE_UNCHANGED, /* equal to what concord knew: an echo, or a repeat */
    CHANGE_REFUSED,   /* changed fields its system may not change */
    CHANGE_FAILED,    /* could not be mapped; see the inbox */
    CHANGE_IGNORED,   /* no collection takes it */
    CHANGE_HELD,      /* a delete held by the mass-delete guard; see the inbox */
};

/* One change as it arrived: a webhook body, a page row, an admin call. */
struct change {
    int64_t seq;       /* journal position; increasing */
    char *system;      /* the system it came from */
    char *delivery_id; /* NULL, or the sender's id for this delivery */
    int64_t received_at_ms;
    char *body; /* raw bytes as received (JSON text) */
    size_t body_len;
    enum change_state state;
    int is_replay; /* re-run by `concord replay`: every mapped field counts as changed */
    /* The copy it is news of, when it was journaled with it (a poll's), else NULL. */
    char *collection, *ext_id;
};

/* Release what c owns; c may be reused. */
void change_fini(struct change *c);

/* A canonical record: its latest state, a JSON object of model fields. */
struct record {
    int64_t id;
    char *model;
    int64_t version; /* 1 for a new record; +1 for each change */
    char *state;     /* JSON object text */
    int is_deleted;
    int64_t updated_at_ms;
};

/* Release what r owns. */
void record_fini(struct record *r);

/* One version in a record's history. */
struct version {
    int64_t record_id;
    int64_t version;
    char *state;         /* the whole state after this version */
    char *diff;          /* JSON object: field -> [old, new] */
    char *source;        /* "shop.customers", "operator", ... */
    int64_t journal_seq; /* 0 when not from the journal */
    int64_t at_ms;
};

/* Release what v owns. */
void version_fini(struct version *v);

/* The tie between a record and its copy in one collection. */
struct link {
    int64_t id;
    char *collection; /* "crm.contacts" */
    int64_t record_id;
    char *ext_id; /* NULL until the copy exists (its create succeeded) */
    char *base;   /* NULL, or the last state concord knows the copy has (JSON, system shape) */
};

/* Release what l owns. */
void link_fini(struct link *l);

enum job_op {
    JOB_OP_UPSERT = 1, /* create when the link has no external id yet, else update */
    JOB_OP_DELETE,
    JOB_OP_ARCHIVE, /* the record left the collection: write it with the archive fields */
};

enum job_state {
    JOB_PENDING = 1,
    JOB_RUNNING, /* handed to a worker; a create found RUNNING at start is "outcome unknown" */
    JOB_PARKED,  /* in the inbox, waiting for a person */
};

/* A durable piece of outbound work: bring a link to a record version. */
struct job {
    int64_t id;
    int64_t link_id;
    int64_t record_id;
    int64_t version;
    char *system;
    char *collection;
    enum job_op op;
    enum job_state state;
    int attempts;
    int64_t next_at_ms;
    int64_t created_at_ms;
    int priority;         /* 0 live; 1 retried, replayed or backfilled: claimed after live work */
    int64_t sent_version; /* 0, or the version a create with an unknown outcome sent */
    char *expect;         /* NULL, or a numbered create's expected number (JSON) */
};

/* Release what j owns. */
void job_fini(struct job *j);

/* Names for people and JSON; static strings, never NULL. */
const char *job_op_name(enum job_op op);
const char *job_state_name(enum job_state state);
const char *change_state_name(enum change_state state);

/* What kind of thing waits in the inbox for a person. */
enum inbox_kind {
    INBOX_FAILED = 1, /* a delivery failed for good, or ran out of attempts */
    INBOX_UNKNOWN,    /* a create may or may not have happened */
    INBOX_MAPPING,    /* a change or a record could not be mapped */
    INBOX_CONFLICT,   /* two systems changed one field; field and detail say how */
    INBOX_HELD,       /* a delete held back by the mass-delete guard */
};

/* "failed", "unknown", "mapping", "conflict" or "held"; a static string. */
const char *inbox_kind_name(enum inbox_kind kind);

/* One entry of the inbox: everything that needs a person, in one id space. */
struct inbox_entry {
    int64_t id;
    enum inbox_kind kind;
    char *state;         /* "open", "retried", "skipped", "resolved", "settled", "approved" */
    char *system;        /* NULL when unknown */
    char *collection;    /* NULL when unknown */
    int64_t record_id;   /* 0 when there is no record yet */
    int64_t job_id;      /* 0 unless a job is parked */
    int64_t journal_seq; /* 0 unless a change is parked */
    char *reason;
    int http_status; /* 0 when there was no answer */
    char *response;  /* NULL, or the first 1 KiB of the answer */
    int attempts;
    int64_t created_at_ms;
    int64_t updated_at_ms;
    char *field;  /* INBOX_CONFLICT: the model field; else NULL */
    char *detail; /* NULL, or JSON: a conflict's sides, a held delete's copy */
};

/* Release what e owns. */
void inbox_entry_fini(struct inbox_entry *e);

#endif
