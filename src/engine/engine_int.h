/* SPDX-License-Identifier: MIT */

/*
 * Inside the engine: the shared state of the writer and delivery threads,
 * and the functions the engine's files call on each other. Only
 * src/engine/ includes this.
 *
 * Threads: fields under "writer only" are touched by the writer thread
 * alone; fields under "mu" are shared and guarded by e->mu.
 */
#ifndef CONCORD_ENGINE_ENGINE_INT_H
#define CONCORD_ENGINE_ENGINE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "config/config.h"
#include "core/breaker.h"
#include "core/compiler.h"
#include "core/ratelimit.h"
#include "engine/engine.h"
#include "http/http_client.h"
#include "model/model.h"
#include "sql/sql.h"

struct cJSON;
struct engine_automation;
struct map;
struct map_jq;
struct store;

/* A collection's compiled parts. */
struct engine_coll {
    const struct config_collection *cfg;
    int sys_index;
    struct map *map_in;             /* NULL when the collection is not a source */
    struct map *map_out;            /* NULL when it is not a target */
    struct map_jq *match;           /* NULL, or the webhook routing condition */
    struct map_jq *deleted;         /* NULL, or the delete condition */
    struct map_jq *filter;          /* NULL, or the sync's filter: which records belong here */
    const struct config_sync *sync; /* the first sync that holds it, or NULL */
    int creates_in_flight;          /* writer only */
    int creates_born;               /* writer only: of those, born this turn (not sent yet) */
    /* Its system only receives the model (no sync lets it write, none
     * matches copies by natural keys) and its copies are no issued
     * documents: the only collections whose creates may be born claimed
     * (deliver.c). Elsewhere a copy merged in the same turn could be linked
     * to a born create's record before the create went out (a duplicate),
     * and an issued document would keep a state the turn changed again. */
    int only_receives;
    /* The record's top-level members a source-only collection's links keep
     * as base and recent states (engine_copy_text()); NULL: the whole
     * record. */
    char **base_keep;
    size_t base_keep_count;
    int numbered_busy;      /* writer only: numbered creates and their checks in flight */
    int64_t poll_waits_for; /* poll thread only: the journal's end after its last read */
    struct sql_table sql;   /* SQL systems: the table, strings borrowed from cfg */
};

/* How many times its max_in_flight a plain HTTP system has claimed at
 * most. Relay at 32 in flight (bench/README.md, "Session 14"): 2 times
 * still let a backlog grow (p50 20-145 ms), 3, 4 and 8 kept up alike
 * (p50 5-7 ms); 4 leaves a margin for slower turns. */
#define ENGINE_CLAIMS_AHEAD 4

struct engine_sys {
    const struct config_system *cfg;
    int in_flight; /* writer only: claimed and not yet applied */
    /* The claims it may have out (in_flight's bound): max_in_flight, or
     * ENGINE_CLAIMS_AHEAD times that where the delivery thread holds what
     * is past max_in_flight until a request ends (deliver.c, "Claims
     * ahead"). */
    int claim_cap;
    /* Delivery thread only: requests on the wire, and the claims held
     * back until one ends, oldest first. */
    int on_wire;
    struct engine_delivery *held, *held_tail;
    unsigned figures_seen;  /* delivery thread: figures_seq when its held claims were checked */
    int is_paused;          /* writer only: by an operator, read from the store each turn */
    atomic_int wire_paused; /* is_paused, for the delivery thread: it holds nothing back */
    /* writer only: no job of it was due and left unclaimed when its queue
     * was last looked at (engine_claim()): a create may be born claimed */
    int queue_clear;
    /* budget_mu: shared by the writer's deliveries and the automation
     * thread's http actions; only through budget.c's functions. */
    pthread_mutex_t budget_mu;
    struct ratelimit rl;         /* budget_mu: the system's one request budget */
    struct breaker br;           /* budget_mu */
    enum breaker_state br_saved; /* budget_mu: the state concord status shows */
    /* The rate figures last learnt from an answer (X-RateLimit-Remaining
     * and the like), by whichever thread, as they came: what was left,
     * until when (clock_mono_ms()); figures_seq counts them, and is
     * written under budget_mu but read without it. */
    long figures_remaining;   /* budget_mu */
    int64_t figures_reset_ms; /* budget_mu */
    atomic_uint figures_seq;
    int64_t ok_noted_ms;   /* writer only: when the last success was written */
    int64_t *delete_times; /* writer only: deletes let through lately (mass-delete guard) */
    size_t delete_count, delete_cap;
    int deletes_read; /* writer only: delete_times holds those of the store's journal too */
    struct http_header *headers; /* auth headers, values borrowed from cfg's secrets */
    size_t header_count;
    struct sql_conn *sql;     /* delivery thread only: a SQL system's connection, or NULL */
    int64_t webhook_noted_ms; /* writer only: when a webhook's arrival was last written */
};

/* The metric families concord keeps (engine/health.c makes them). */
struct engine_metrics {
    struct metrics *reg;
    struct metric_family *ingested, *webhooks, *sig_failures, *applied, *echoes;
    struct metric_family *deliveries, *retries, *delivery_seconds, *e2e_seconds, *rate_waits;
    struct metric_family *poll_seconds, *poll_records;
    struct metric_family *queue, *lag, *circuit, *inbox, *conflicts, *health;
};

/* A change handed in (engine_ingest_start), waiting for its commit. */
struct engine_ingest {
    struct engine_ingest *next;
    const char *system;
    const char *delivery_id;
    const char *body;
    size_t body_len;
    struct cJSON *parsed; /* body parsed, or NULL: the writer keeps it for processing */
    char *parsed_bytes;   /* a copy of body, when parsed is set: the ring keeps it */
    int64_t received_at_ms;
    engine_ingest_done_fn *done_fn; /* called once after the commit; then the writer frees it */
    void *done_arg;
    enum engine_ingest_result staged; /* writer only: the answer, until its commit returned */
};

/* One claimed job on its way to a system and back. */
/*
 * The external id at paths in obj: one path, or several joined by ","
 * whose values make "A/B" (created_id and id as lists). Returns 0 with out
 * filled, or -1 (out "") when one is missing or it does not fit.
 */
int engine_ext_id(const char *paths, const struct cJSON *obj, char *out, size_t len);
/*
 * Copies the time event holds at cc's event_time path into record (the
 * object inside it) as CONFIG_EVENT_TIME_FIELD, replacing one there, so the
 * record's state carries the time it had (Stripe objects carry none, and
 * their events come in any order). Nothing when cc names no event_time,
 * record is not an object, or the event holds no time.
 */
void engine_stamp_event_time(const struct config_collection *cc, const struct cJSON *event,
                             struct cJSON *record);
/* The value at the system's errors.in_ok path of a 2xx answer when it
 * says "refused" (not null, false or ""), else NULL. */
const struct cJSON *engine_refusal(const struct config_system *sys, const struct cJSON *answer);
/* Fill the {placeholders} of an endpoint's path: {id} is the external id,
 * {id.N} part N of a composite one, {name} a field of desired (may be
 * NULL); values percent-encoded. malloc()ed, or NULL with err set. */
char *engine_expand_path(const char *tmpl, const char *ext_id, const struct cJSON *desired,
                         struct error *err);

#define ENGINE_SERIES_STEP_MS 10000
/* Sample throughput and lag for the last hour's series (the checkpointer,
 * every ENGINE_SERIES_STEP_MS). */
void engine_series_sample(struct engine *e, struct store *st);

/* Make the metric families (engine_setup). */
void engine_metrics_setup(struct engine *e);
/* A webhook of system came at at_ms: counted, and noted in the store at
 * most once a second (the writer, in its transaction). Returns 0 or -1. */
int engine_webhook_seen(struct engine *e, const char *system, int64_t at_ms, struct error *err);

/* What a request took from its system's budget and breaker
 * (engine_budget_take()), kept with it until it is sent. */
struct engine_take {
    uint64_t take;  /* the budget's take (ratelimit_last_take()); 0: none */
    uint64_t probe; /* the half-open breaker's probe it is (breaker_probe()), or 0 */
};

struct engine_delivery {
    struct engine_delivery *next;
    struct engine *engine;
    int64_t job_id, link_id, record_id, version;
    int coll_index;
    enum job_op op;
    int is_create;
    int is_lookup;               /* a natural-key look-up after a create's outcome was lost */
    int was_pinned;              /* a create sent again after its outcome was lost */
    int is_restore;              /* brings back a deleted copy by its old id (ext_id) */
    int check;                   /* a numbered create's check (enum number_check), or 0 */
    char *series;                /* a check: the series it reads */
    char *sent_state;            /* CHECK_CONFIRM: the state the lost create carried */
    char *shape_sent;            /* a shaped collection: the appointment sent (shape.h) */
    int shape_step;              /* a shaped collection: enum shape_step */
    char *shape_occurrence;      /* a shaped collection's occurrence step: its recurrence id */
    int attempts;                /* attempts made before this one */
    char *ext_id;                /* the copy's id, NULL for a create */
    char *base_before;           /* SQL systems, shaped collections: the link's base when claimed */
    char *idem_key;              /* NULL, or the idempotency key: (link, version) */
    struct http_header *headers; /* the system's auth headers, plus the key's */
    char *bearer;                /* delivery thread: an OAuth2 system's "Bearer TOKEN", or NULL */
    size_t header_count;
    char *method;
    char *url;
    char *path; /* for messages: "/contacts/c1" */
    char *body; /* NULL for a delete: the row as JSON (the base is made from it) */
    /* NULL, or what body reads back as (value_reads_back()), kept so the
     * new base need not parse it; read only */
    struct cJSON *sent;
    char *wire; /* NULL, or the body as sent when it is no JSON (body: form) */
    int64_t started_ms;
    int on_wire;             /* delivery thread: sent, its answer not in yet */
    int resent;              /* libcurl sent it more than once (http_response.resent) */
    int held_back;           /* never sent: given back when its system failed (deliver.c) */
    struct engine_take took; /* what its claim took from the budget and the breaker */
    /* Filled by the delivery thread. */
    enum http_outcome outcome;
    long status;
    char *resp_body;
    struct cJSON *answer; /* a table's success: cJSON_Parse(resp_body), made here; read only */
    char *ok_base;        /* a plain write's 2xx: the link's new base (new_base()), made here */
    int resp_truncated;
    char *retry_after;
    char *error;
    int64_t elapsed_ms;
    long rl_remaining;   /* X-RateLimit-Remaining, or -1 */
    int64_t rl_reset_ms; /* X-RateLimit-Reset as an absolute time, or 0 */
    int stop_retry;      /* the answer carried the system's "do not retry" header */
    char *etag;          /* the answer's ETag header, or NULL */
    int caldav;          /* a caldav collection's request (enum engine_caldav_step), or 0 */
    char *cond;          /* caldav: the If-Match value its headers point to, or NULL */
    /* Writer: what the answer teaches, kept by engine_apply_result() for
     * engine_apply_feedback() (once the store work stood). */
    int fb_pending;
    int fb_given; /* fed in already: a redo of the store work feeds nothing */
    int fb_verdict;
    int fb_retried;    /* the job was scheduled again: counts a retry */
    int64_t fb_age_ms; /* since the job was made (e2e latency) */
    char *fb_what;
};

struct engine {
    const struct config *cfg;
    struct store *st; /* the writer's handle */
    struct engine_coll *colls;
    size_t coll_count;
    struct engine_sys *systems;
    size_t sys_count;
    const char **sys_names; /* the systems' names, in order */

    pthread_t writer, deliverer, checkpointer, poller;
    struct store *ckpt_st;         /* the checkpointer's own handle */
    struct store *poll_st;         /* the poll thread's own handle; NULL without polls */
    struct http_client *poll_http; /* the poll thread's own client */
    struct oauth *oauth;           /* OAuth2 systems' tokens (every thread); NULL when none */
    struct engine_push *push;      /* calendar kinds' push registrations (push.c) */
    struct engine_metrics metrics; /* every thread */
    pthread_mutex_t scrape_mu;     /* scrape_st, and series */
    struct engine_series *series;  /* the last hour, sampled by the checkpointer */
    struct store *scrape_st;       /* /metrics' own store handle, opened on the first scrape */
    atomic_int stop_poller;        /* set to stop the poll thread (and its read) */
    int poll_st_started;           /* the poll thread runs */
    pthread_cond_t poll_cv;        /* wakes the poll thread to stop */
    int started;
    atomic_int ready;
    char idem_prefix[24]; /* the store's part of idempotency keys ("" in old stores) */
    /* The writer processes as it journals, so a tree handed in with a change
     * is used within a turn or two (engine_ingest_start()). */
    atomic_int parsed_wanted;
    int match_open;        /* writer only: ambiguous matches open? -1 unknown, 0 none, 1 maybe */
    int journal_grew;      /* writer only: processing journaled changes (a hint's deletions) */
    int wal_kicked_at;     /* writer only: WAL pages when it last woke the checkpointer */
    int64_t fanout_queued; /* writer only: upserts fanout_one() queued, ever (check_copies()) */

    pthread_mutex_t mu;
    pthread_cond_t writer_cv;                        /* work for the writer */
    pthread_cond_t ckpt_cv;                          /* wakes the checkpointer */
    struct engine_ingest *ingest_head, *ingest_tail; /* mu */
    struct engine_delivery *results;                 /* mu: finished deliveries */
    struct engine_delivery *handoff;                 /* mu: claimed, not yet submitted */
    int draining;                                    /* mu: claim nothing more */
    int drain_seen;                                  /* mu: a turn saw draining: claims handed */
    int stop_writer;                                 /* mu */
    int stop_deliverer;                              /* mu */
    int stop_checkpointer;                           /* mu */
    int deliveries_out;                              /* mu: claimed and not yet applied */

    struct http_client *http;      /* the delivery thread's */
    struct engine_delivery **sent; /* delivery thread: submitted, not answered */
    size_t sent_count, sent_cap;

    struct engine_automation *automation; /* automation.c; NULL without automations */

    /* Writer only. */
    int64_t claim_wait_ms; /* due work held back by a budget or a breaker: look again then */
    int orphans_parked;    /* the jobs of systems gone from the config were parked */
    int paused_read;       /* the turn read the pauses already (engine_born_begin()) */
    int born_on;           /* processing may claim the creates it queues (engine_born_plan()) */
    struct engine_delivery *born; /* claimed by processing, newest first: not handed off yet */
    /* writer only: what changes processed in an open batch (merge.c) count
     * for the metrics, per collection, added once the batch stands */
    int holding_counts;
    int64_t *held_applied, *held_echoes;
    int64_t *links_in_flight;
    size_t links_in_flight_count, links_in_flight_cap;
    /* writer only: bodies the HTTP threads parsed, of journaled changes not
     * yet processed, oldest first, in a ring of ENGINE_PARSED_MAX */
    struct engine_parsed {
        int64_t seq;
        size_t len;  /* of the body parsed */
        char *bytes; /* the body parsed: the row at seq must hold them */
        struct cJSON *doc;
    } * parsed;
    size_t parsed_head, parsed_count, parsed_bytes;
};

/* ---- engine.c ---- */
/* An engine with its collections compiled and the writer's store handle
 * open, and nothing else: no threads, no recovery (concord plan). Release
 * with engine_free(). */
MUST_CHECK int engine_setup(const struct config *cfg, struct engine **out, struct error *err);

/* ---- writer.c ---- */
void *engine_writer_main(void *arg);
/* Undo the in-flight marks of claims whose transaction did not commit,
 * give back what they took from their systems' budgets and breakers
 * (list newest first, as claims are made), and free them. */
void engine_unclaim(struct engine *e, struct engine_delivery *list);
/* Startup: jobs left running by a previous process. */
MUST_CHECK int engine_recover(struct engine *e, struct error *err);
/* Parsed bodies kept for processing: more than a turn journals while
 * processing keeps up; a burst that puts processing off, or a journal
 * held up, drops the oldest, which are parsed again. At most
 * ENGINE_PARSED_MAX trees, of bodies of ENGINE_PARSED_BYTES in all, none
 * of a body over ENGINE_PARSED_BODY_MAX (a tree is 4 to 40 times its
 * body). */
#define ENGINE_PARSED_MAX      512
#define ENGINE_PARSED_BYTES    (1024 * 1024)
#define ENGINE_PARSED_BODY_MAX (16 * 1024)
/* Keep doc, parsed from bytes (len of them, malloc()ed), for journaled
 * change seq; both are the ring's now (a body too long is freed). Writer
 * only. */
void engine_parsed_keep(struct engine *e, int64_t seq, char *bytes, size_t len, struct cJSON *doc);
/* The body of journaled change seq (whose text is body) as an HTTP thread
 * parsed it, given to the caller (cJSON_Delete() it), or NULL: parse body.
 * Writer only. */
struct cJSON *engine_parsed_take(struct engine *e, int64_t seq, const char *body, size_t len);
/* Drop every parsed body kept (a rolled-back turn may reuse their seqs). */
void engine_parsed_clear(struct engine *e);

/* ---- poll.c ---- */
/* The poll thread: runs each polled collection's reads when due. */
void *engine_poller_main(void *arg);

/* ---- push.c: the calendar kinds' push registrations ---- */
/* Load the registrations kept in the store (engine_new, before the threads). */
MUST_CHECK int engine_push_load(struct engine *e, struct error *err);
/* Release them (engine_free). */
void engine_push_free(struct engine *e);
/* Open, renew, replace and stop registrations as due (the poll thread, each turn). */
void engine_push_tick(struct engine *e);

/* ---- merge.c: process journaled changes (inside the writer's transaction) ---- */
/* Process up to limit new changes. Returns how many were handled, or -1. */
MUST_CHECK int engine_process_journal(struct engine *e, int limit, struct error *err);

/* ---- fanout.c ---- */
/* A record that changed, for fan-out. */
struct engine_change {
    int64_t record_id;
    int64_t version;
    const char *model;
    const struct cJSON *state; /* the record's new state */
    const char *state_text;    /* NULL, or state as stored (a new record's): jobs may be born */
    int is_deleted;
    int source_coll; /* where the change came from; -1 for none (an operator) */
    int priority;    /* of the jobs it makes: 0 live, 1 replayed */
    int to_source;   /* 1: the source collection too (a write-back of fields it lost) */
    int contested;   /* 1: compare as a job writes, with engine_keep_contested() */
    int is_new;      /* 1: the record was made by this change (a link of it is a stray) */
    int is_rewrite;  /* 1: version is not new (the record written out again as it is): the
                        automations saw it when it was made */
};

/*
 * Queue work for every other collection bound to the record's model by a
 * sync that holds the source collection (every sync of the model when there
 * is none).
 */
MUST_CHECK int engine_fanout(struct engine *e, const struct engine_change *c, struct error *err);

/* Queue what collection ci needs after c, whatever the source. */
MUST_CHECK int engine_fanout_to(struct engine *e, int ci, const struct engine_change *c,
                                struct error *err);

/* Queue what collection ci needs after rec, the record as the store holds
 * it now, whatever the source. */
MUST_CHECK int engine_fanout_record(struct engine *e, int ci, const struct record *rec,
                                    struct error *err);

/* ---- recent.c ---- */
/* Remember a state of a link's copy: kind 'w' for what concord wrote (or is
 * about to write), 'r' for what the copy was seen to hold. state is JSON
 * text in the system's shape. */
MUST_CHECK int engine_recent_note(struct engine *e, int64_t link_id, const char *state, char kind,
                                  struct error *err);

/* ---- policy.c: ownership, conflicts, natural keys, the delete guard ---- */
/* The sync that governs changes from collection ci (NULL when none). */
const struct config_sync *engine_sync_of(const struct engine *e, int ci);
/* The first sync of a model, or NULL. */
const struct config_sync *engine_sync_of_model(const struct engine *e, const char *model);
/* 1 when system may change field under sync s (its owners, else its origins). */
int engine_may_change(const struct config_sync *s, const char *system, const char *field);
/* 1 when system may create or delete records under s: an origin, or an owner of some field. */
int engine_may_write(const struct config_sync *s, const char *system);

/* One side of a conflict. */
struct engine_side {
    const struct cJSON *value;
    const char *source; /* "shop.customers", "operator:alice" */
    const char *system; /* the source's system, or NULL (an operator, an automation) */
    int64_t at_ms;      /* when the value was set at its source */
};

enum engine_verdict {
    ENGINE_TAKE_THEIRS = 1, /* the incoming value wins */
    ENGINE_KEEP_OURS,       /* the record's value wins; the source is written back */
    ENGINE_MANUAL,          /* a person decides */
};

/* Settle a conflict on field under s's policy; *why says how (static). */
enum engine_verdict engine_settle(const struct config_sync *s, const char *field,
                                  const struct engine_side *ours, const struct engine_side *theirs,
                                  const char **why);

/* Recompute a record's natural keys under s from its state (model shape). */
MUST_CHECK int engine_keys_update(struct engine *e, const struct config_sync *s, int64_t record_id,
                                  const char *model, const struct cJSON *state, struct error *err);
/* Live records whose keys match state's: the count (capped at 16), ids in *out (malloc()ed). */
MUST_CHECK int engine_keys_match(struct engine *e, const struct config_sync *s, const char *model,
                                 const struct cJSON *state, int64_t **out, struct error *err);

/*
 * Relations. A model field of type ref:MODEL holds the referenced record's
 * id (as a string); each system knows that record by its own id.
 *
 * engine_refs_in() turns the ids of collection ci's system in state (model
 * shape, after map_in) into record ids. Returns 1, 0 when one cannot be
 * resolved (why says which and why), -1.
 */
MUST_CHECK int engine_refs_in(struct engine *e, int ci, struct cJSON *state, char *why,
                              size_t why_len, struct error *err);

/* What a reference lacks in a target (engine_refs_out()). */
struct engine_ref_gap {
    const char *field; /* the model field */
    int64_t record_id; /* the referenced record; 0 when the value is not a record id */
    int coll;          /* the target system's collection of the referenced model; -1: none */
    int64_t link_id;   /* that record's link there, when one is queued; 0 when none */
};

/* Turn the record ids in state into the ids collection ci's system knows.
 * Returns 1, 0 when one has no copy there yet (*gap says which), -1. */
MUST_CHECK int engine_refs_out(struct engine *e, int ci, struct cJSON *state,
                               struct engine_ref_gap *gap, struct error *err);

/* 1 when two states (model shape) share a natural key of s. */
int engine_keys_equal(const struct config_sync *s, const struct cJSON *a, const struct cJSON *b);

/* The mass-delete guard: 1 when a delete from system must be held, 0 when
 * it may pass (and is counted), -1. */
MUST_CHECK int engine_guard_delete(struct engine *e, int sys_index, int64_t now_ms,
                                   struct error *err);

/* ---- budget.c: a system's request budget and breaker, any thread ---- */

/* What holds a request back (engine_budget_take()). */
enum engine_hold {
    ENGINE_GO = 0,       /* it may go: its token is taken (half-open: it is the probe) */
    ENGINE_HOLD_RATE,    /* the budget has no token yet (the rate, a 429's block, ...) */
    ENGINE_HOLD_BREAKER, /* the circuit breaker is open (or its probe is out) */
};

/*
 * Whether one request may go to sys at now_ms (clock_mono_ms()): the
 * budget first, then the breaker (when enabled). ENGINE_GO takes the
 * token, and *took (NULL allowed) says what was taken; a hold takes
 * nothing and sets *wait_ms (>= 0) to the time until asking again may
 * succeed. Any thread; never blocks but for budget_mu.
 */
enum engine_hold engine_budget_take(struct engine_sys *sys, int64_t now_ms, int64_t *wait_ms,
                                    struct engine_take *took);

/*
 * A request that took took (engine_budget_take()) will not be sent: its
 * claim was undone (a turn rolled back). Its token goes back to sys's
 * budget when nothing was taken or learnt since (ratelimit_give_back():
 * undo the claims newest first), and the half-open breaker's probe it
 * was, if still out, lets another go at once. Any thread.
 */
void engine_budget_give_back(struct engine_sys *sys, const struct engine_take *took,
                             int64_t now_ms);

/*
 * The budget alone (a read: polls do not feed the breaker): 0 when a token
 * was taken for a request now, else the ms to wait before asking again.
 * Any thread.
 */
int64_t engine_budget_take_rate(struct engine_sys *sys, int64_t now_ms);

/* What one answer of sys teaches (engine_budget_note()). Times are
 * clock_mono_ms(). */
struct engine_budget_answer {
    int64_t block_until_ms; /* a 429 or a rate-limited status: no request before; 0: none */
    long remaining;         /* X-RateLimit-Remaining, or -1 */
    int64_t reset_at_ms;    /* X-RateLimit-Reset, when remaining >= 0 */
    int breaker_ok;         /* for the breaker: 1 healthy, 0 a transient failure, -1 not counted */
    const char *what;       /* NULL, or what failed ("HTTP 503 from POST /contacts") */
};

/* Feed an answer to sys's budget and breaker (any thread). */
void engine_budget_note(struct engine_sys *sys, const struct engine_budget_answer *a,
                        int64_t now_ms);

/*
 * The server's own figures in an answer (resp borrowed), as deliveries and
 * http actions read them: X-RateLimit-Remaining and -Reset (seconds from
 * now, or a Unix time in seconds when it is that large); else HubSpot's
 * X-HubSpot-RateLimit-Remaining of a rolling -Interval-Milliseconds, read
 * as a budget that is back in full one interval from now (its lower
 * bound). Sets *remaining (-1: none) and *reset_at_ms (absolute, on
 * now_ms's clock, clock_now_ms(); 0: none); the caller turns it into
 * clock_mono_ms() for engine_budget_note(). Any thread.
 */
void engine_budget_figures(const struct http_response *resp, int64_t now_ms, long *remaining,
                           int64_t *reset_at_ms);

/*
 * Whether an answer of sys taught rate figures (X-RateLimit-Remaining and
 * the like) since *seen, the caller's count (0 at first), from any
 * thread's answer: 1 with *remaining what the latest one left when it
 * came, if it is still in force at now_ms (clock_mono_ms()); else 0.
 * *seen moves on either way. Any thread; takes budget_mu only when there
 * is something new.
 */
int engine_budget_learnt(struct engine_sys *sys, unsigned *seen, int64_t now_ms, long *remaining);

/* sys's breaker state now, and its reason copied into reason (NULL allowed). */
enum breaker_state engine_budget_breaker(struct engine_sys *sys, char *reason, size_t reason_len);

/*
 * What may still go to sys at now_ms (clock_mono_ms()) of the requests
 * that took their token before (the delivery thread's held claims):
 *   ENGINE_GO           all of them;
 *   ENGINE_HOLD_RATE    none: it is blocked (a 429's Retry-After, from
 *                       any thread's answer);
 *   ENGINE_HOLD_BREAKER its breaker is not closed: only the half-open
 *                       breaker's probe out, *probe (engine_take.probe),
 *                       or none when *probe is 0.
 * Not the bucket's or the server's figures, which the claims' takes
 * counted. Any thread.
 */
enum engine_hold engine_budget_held(struct engine_sys *sys, int64_t now_ms, uint64_t *probe);

/* Write sys's breaker state to st for concord status when it changed since
 * last written (once per transition), and log it; st is the calling
 * thread's handle. Logs a failure of the store; never fails. */
void engine_budget_persist(struct engine_sys *sys, struct store *st);

/* ---- deliver.c ---- */
/* Whether a create into cc whose answer was lost settles by itself: sent
 * again under its idempotency key, looked up first, or (a calendar's) put
 * again at the href it chose. Otherwise a person must check the target. */
int engine_create_self_settles(const struct config_collection *cc);
/* Claim due jobs (writer). Returns a list for the delivery thread via *out. */
MUST_CHECK int engine_claim(struct engine *e, int64_t now_ms, struct engine_delivery **out,
                            struct error *err);
/* Apply one finished delivery's store work (writer, in a transaction).
 * What it teaches about its system (rate limits, the breaker, metrics) is
 * kept in d for engine_apply_feedback(), so that store work rolled back
 * and done again does not count twice. */
MUST_CHECK int engine_apply_result(struct engine *e, struct engine_delivery *d, int64_t now_ms,
                                   struct error *err);
/* Feed what an applied answer taught to its system's budget, breaker,
 * last success or error (the store, in the open transaction) and the
 * metrics; once per answer (it clears d's note). Returns 0 or -1. */
MUST_CHECK int engine_apply_feedback(struct engine *e, struct engine_delivery *d, int64_t now_ms,
                                     struct error *err);
void engine_delivery_free(struct engine_delivery *d);
void *engine_deliverer_main(void *arg);

/* A create born claimed (deliver.c, "jobs born claimed"): fan-out's
 * create for a link it has just made, claimed as it is queued. */
struct engine_born;
/* Whether collection ci's create of ch's new record may be born now: 1
 * with *out (its state mapped out, its path, the write to note), 0 for the
 * ordinary queue, -1. Release *out with engine_born_free(). */
MUST_CHECK int engine_born_plan(struct engine *e, int ci, const struct engine_change *ch,
                                struct engine_born **out, struct error *err);
/* The write b sends, to note in its new link's recent states
 * (store_link_add_noted()). */
const char *engine_born_noted(const struct engine_born *b);
/* b's link was made (j->link_id): add j running and keep its delivery in
 * e->born, or park it as a claim does. Returns 0 or -1. */
MUST_CHECK int engine_born_claim(struct engine *e, int ci, struct engine_born *b, struct job *j,
                                 struct error *err);
/* Release a plan (NULL allowed). */
void engine_born_free(struct engine_born *b);
/* A turn that processes: read the pauses before processing may claim. */
MUST_CHECK int engine_born_begin(struct engine *e, struct error *err);
/* Drop the deliveries born since e->born was mark (a rolled-back savepoint;
 * NULL: all), with their in-flight marks. */
void engine_born_drop(struct engine *e, struct engine_delivery *mark);
/* Processing ended: the born deliveries join *claimed, handed off with it.
 * Returns how many there were. */
int engine_born_end(struct engine *e, struct engine_delivery **claimed);

/* What a job of op does in collection c when its record is deleted or not:
 * op itself, or the collection's delete mode for an upsert of a deleted
 * record (JOB_OP_DELETE, JOB_OP_ARCHIVE), or 0: nothing (mode ignore). */
enum job_op engine_job_op(const struct engine_coll *c, enum job_op op, int rec_deleted);
/* Copy ext_id of collection is now linked to record_id: close the ambiguous
 * match its news opened before (writer, in a transaction). */
MUST_CHECK int engine_copy_found(struct engine *e, const char *collection, const char *ext_id,
                                 int64_t record_id, struct error *err);
/* In desired (what c's map_out gives, the system's shape), a field of an
 * open conflict that l's copy proposed keeps the copy's own value (its
 * base's), as a job writes it. Returns 0 or -1. */
MUST_CHECK int engine_keep_contested(struct engine *e, const struct engine_coll *c,
                                     const struct link *l, int64_t record_id, struct cJSON *desired,
                                     struct error *err);
/* Set c's archive fields (on_delete: archive) in desired, the system's shape. */
void engine_archive_fields(const struct engine_coll *c, struct cJSON *desired);

/* The table of a SQL system's collection (strings borrowed from cc). */
struct sql_table engine_sql_table(const struct config_collection *cc);
/* Whether c's system is a SQL database (its writes are SQL statements). */
int engine_coll_is_sql(const struct engine_coll *c);
/* Connect to a SQL system: target is its file or conninfo. */
MUST_CHECK int engine_sql_open(const struct config_system *sys, struct sql_conn **out,
                               struct error *err);
/*
 * Carry out a SQL system's deliveries (delivery thread): in one transaction
 * when they all go through, else one by one so each failure is its own.
 * Each gets an answer as an HTTP one would look (201/200/204 with
 * {"KEY": key}, 422 with the database's refusal, or "not sent") and goes to
 * done(d, response).
 */
void engine_sql_deliver(struct engine *e, struct engine_sys *sys, struct engine_delivery **list,
                        size_t count, void (*done)(void *, const struct http_response *));

/* ---- caldav.c: calendars of caldav systems (docs/calendars.md) ---- */
struct engine_poll_job;
struct engine_poll_report;

/* What a caldav delivery is. */
enum engine_caldav_step {
    ENGINE_CALDAV_WRITE = 1, /* PUT or DELETE of an event, conditional on its ETag */
    ENGINE_CALDAV_REREAD,    /* GET of an event that changed since concord read it (a 412) */
};

/* What a caldav job sends, decided at its claim (engine_caldav_claim). */
struct engine_caldav_req {
    enum engine_caldav_step step;
    const char *method; /* "PUT", "DELETE", "GET" (static) */
    char *href;         /* the event's path: the copy's id, or a create's new one */
    char *wire;         /* PUT: the iCalendar text; else NULL */
    char *if_match;     /* NULL, or the ETag the event must still have */
    int if_none_match;  /* PUT only where no event is (a create, or one to make again) */
};

/* Whether cc is a calendar: a collection of a caldav system. */
int engine_caldav_is(const struct config_collection *cc);

/* What a link of cc keeps of its copy's record as base and recent states:
 * 1 and the record's top-level members to keep in *keep (the caller frees
 * them with engine_copy_keep_free()), or 0 and NULL: the whole record. */
int engine_copy_keep(const struct config_collection *cc, char ***keep, size_t *n);
void engine_copy_keep_free(char **keep, size_t n);

/* The canonical text of a copy's record as its link keeps it: the members
 * keep names, or the whole record when keep is NULL. The caller frees it. */
char *engine_copy_text(char *const *keep, size_t keep_count, const struct cJSON *record);

/*
 * Read a calendar (engine_poll_run): a sync-collection REPORT from the
 * token in cursor (NULL: everything; a reconcile), the changed events
 * fetched by calendar-multiget and journaled as polled records, removed
 * ones as deletions, each REPORT's token committed with what it brought.
 * Discovers the calendar first when the config names none. Returns 0
 * (rep->error says why a read stopped part way), or -1 (the store).
 */
MUST_CHECK int engine_caldav_read(const struct engine_poll_job *job, const char *cursor,
                                  const char *holder, struct engine_poll_report *rep,
                                  struct error *err);

/*
 * Decide what a caldav job sends, once plan_job() has mapped it (writer,
 * in the claim's transaction). op is the job's operation; *desired the
 * map_out state (NULL for a delete), replaced by the record that is
 * written (the appointment with its href), or NULL for a GET. Returns 1
 * with *out (free with engine_caldav_req_free()), 0 when the job was
 * done or put off without a request, -1.
 */
MUST_CHECK int engine_caldav_claim(struct engine *e, const struct job *j,
                                   const struct engine_coll *c, const struct link *l,
                                   enum job_op op, struct cJSON **desired,
                                   struct engine_caldav_req **out, struct error *err);
/* The appointment a write of desired (map_out's state) makes of the event
 * concord knows (base, its record; NULL for a new one): base with the map's
 * fields over it, without href and etag. A new object the caller frees. */
struct cJSON *engine_caldav_compose(const struct cJSON *desired, const struct cJSON *base);

/* Release a request engine_caldav_claim() made. Accepts NULL. */
void engine_caldav_req_free(struct engine_caldav_req *req);

/* Make d the request req says (URL, method, headers, body); d takes what
 * req owns. */
void engine_caldav_fill(struct engine *e, struct engine_delivery *d, struct engine_caldav_req *req);

/*
 * The answers a caldav delivery handles itself (writer, in a transaction):
 * a 412 (the event changed: read it again and merge, then write), a
 * re-read's event or its absence, a create that met its UID elsewhere.
 * Returns 1 when handled, 0 when the ordinary handling goes on, -1.
 */
MUST_CHECK int engine_caldav_apply(struct engine *e, struct engine_delivery *d, struct job *j,
                                   int64_t now_ms, struct error *err);

/* The base a successful caldav write leaves: what was written, with the
 * answer's ETag. malloc()ed JSON text. */
char *engine_caldav_base(const struct engine_delivery *d);

/* ---- poll.c, for readers in other files (caldav.c) ---- */
/* Take items (records in the system's shape) as a page of a poll does:
 * journal what differs from the link's base; seen: note them for a full
 * read's missing copies. Inside the caller's transaction. */
MUST_CHECK int engine_poll_take(const struct engine_poll_job *job, const struct cJSON *items,
                                int seen, struct engine_poll_report *rep, struct error *err);
/* Journal the deletion of copy ext_id. Inside the caller's transaction. */
MUST_CHECK int engine_poll_gone(const struct engine_poll_job *job, const char *ext_id,
                                struct error *err);
/* After a complete full read: journal the deletion of every linked copy
 * it did not see (of links set before read_started_ms). In its own
 * transaction. */
MUST_CHECK int engine_poll_missing(const struct engine_poll_job *job, int64_t read_started_ms,
                                   struct engine_poll_report *rep, struct error *err);
/* Inside a page's transaction: store cursor (NULL: leave it) and renew
 * the reader's lease; nothing in a dry run. */
MUST_CHECK int engine_poll_keep(const struct engine_poll_job *job, const char *cursor,
                                const char *holder, struct error *err);
/* After a page's commit: note progress, tell the caller, wake the writer. */
void engine_poll_page_done(const struct engine_poll_job *job, struct engine_poll_report *rep);

/* Park a job in the inbox (writer, in a transaction). */
MUST_CHECK int engine_park(struct engine *e, const struct inbox_entry *entry, struct error *err);

/* ---- automation.c: automations (docs/automations.md) ---- */

/*
 * The pseudo-system of automations' own changes: the automation thread
 * journals {"op": "set" | "update" | "create", "automation", "run", "step",
 * "model", "records": [...], "fields": {...}} under this name, with the
 * delivery id "run:R:N", so an action's change is journaled once; the
 * writer applies it with the source "automation:NAME".
 */
#define ENGINE_AUTOMATION_SYSTEM "@automation"

/* Compile the automations' triggers and conditions for the writer, and
 * their metrics (engine_setup). Sets e->automation, NULL without any. */
MUST_CHECK int engine_automation_setup(struct engine *e, struct error *err);
/* The automation thread's store handle, client and compiled actions (engine_new). */
MUST_CHECK int engine_automation_open(struct engine *e, struct error *err);
/* Start and stop the automation thread (a no-op without automations).
 * Stopping takes no new action; an http action already on the wire gets
 * until until_mono_ms (clock_mono_ms()) for its answer, as a delivery in
 * flight does: cut off, it would be sent again at the next start. */
MUST_CHECK int engine_automation_start(struct engine *e, struct error *err);
void engine_automation_stop(struct engine *e, int64_t until_mono_ms);
/* Release what engine_automation_setup() and _open() made (engine_free). */
void engine_automation_free(struct engine *e);

/*
 * Writer, inside the transaction of a record change (engine_fanout() calls
 * it): the automations of the record's model that the new version
 * c->version triggers get a run each, keyed by (automation, record,
 * version), so a replay or a repeat adds none; a run deeper than
 * automation_depth is cut and reported; runs of the record that wait and
 * whose trigger no longer holds are cancelled. Returns 0 or -1.
 */
MUST_CHECK int engine_automation_seen(struct engine *e, const struct engine_change *c,
                                      struct error *err);
/* After the writer's commit: write the counts and log lines of the runs
 * it added or cancelled, and wake the automation thread. */
void engine_automation_kick(struct engine *e);
/*
 * Those counts and lines wait for the commit: a rolled-back turn, or a
 * change's savepoint, takes them back with its runs. _mark() is how many
 * wait now; _undo() drops those held since mark (0: all of them).
 */
size_t engine_automation_mark(const struct engine *e);
void engine_automation_undo(struct engine *e, size_t mark);

/*
 * merge.c, around applying a change an action journaled (seq): the runs
 * its versions start are one link deeper than the run that made it, and
 * the action's outcome is noted when it is done (ok 1, or 0: refused).
 * _abandon() forgets the run without a note: the change failed, and its
 * savepoint is undone.
 */
MUST_CHECK int engine_automation_begin(struct engine *e, int64_t seq, struct error *err);
MUST_CHECK int engine_automation_end(struct engine *e, int ok, const char *outcome,
                                     struct error *err);
void engine_automation_abandon(struct engine *e);

/* ---- helpers ---- */
int engine_coll_index(const struct engine *e, const char *name);
int engine_is_origin(const struct engine *e, const char *model, const char *system);
int engine_link_in_flight(const struct engine *e, int64_t link_id);
void engine_link_flight_add(struct engine *e, int64_t link_id);
void engine_link_flight_remove(struct engine *e, int64_t link_id);

#endif
