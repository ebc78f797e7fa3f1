/* SPDX-License-Identifier: MIT */

/* Release functions and names for the plain types of model.h. */

#include "model/model.h"

#include <stdlib.h>

void
change_fini(struct change *c)
{
    free(c->system);
    free(c->delivery_id);
    free(c->body);
    free(c->collection);
    free(c->ext_id);
    c->system = c->delivery_id = c->body = c->collection = c->ext_id = NULL;
}

void
record_fini(struct record *r)
{
    free(r->model);
    free(r->state);
    r->model = r->state = NULL;
}

void
version_fini(struct version *v)
{
    free(v->state);
    free(v->diff);
    free(v->source);
    v->state = v->diff = v->source = NULL;
}

void
link_fini(struct link *l)
{
    free(l->collection);
    free(l->ext_id);
    free(l->base);
    l->collection = l->ext_id = l->base = NULL;
}

void
job_fini(struct job *j)
{
    free(j->system);
    free(j->collection);
    free(j->expect);
    j->system = j->collection = NULL;
    j->expect = NULL;
}

const char *
job_op_name(enum job_op op)
{
    return op == JOB_OP_DELETE ? "delete" : op == JOB_OP_ARCHIVE ? "archive" : "upsert";
}

const char *
job_state_name(enum job_state state)
{
    switch (state) {
    case JOB_PENDING:
        return "pending";
    case JOB_RUNNING:
        return "running";
    case JOB_PARKED:
        return "parked";
    }
    return "unknown";
}

const char *
change_state_name(enum change_state state)
{
    static const char *const names[] = {"new",    "applied", "unchanged", "refused",
                                        "failed", "ignored", "held"};

    if ((size_t)state < sizeof(names) / sizeof(names[0]))
        return names[state];
    return "unknown";
}

const char *
inbox_kind_name(enum inbox_kind kind)
{
    switch (kind) {
    case INBOX_FAILED:
        return "failed";
    case INBOX_UNKNOWN:
        return "unknown";
    case INBOX_MAPPING:
        return "mapping";
    case INBOX_CONFLICT:
        return "conflict";
    case INBOX_HELD:
        return "held";
    }
    return "unknown";
}

void
inbox_entry_fini(struct inbox_entry *e)
{
    free(e->state);
    free(e->system);
    free(e->collection);
    free(e->reason);
    free(e->response);
    free(e->field);
    free(e->detail);
    e->state = e->system = e->collection = e->reason = e->response = NULL;
    e->field = e->detail = NULL;
}
