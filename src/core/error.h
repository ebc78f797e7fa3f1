/* SPDX-License-Identifier: MIT */

/*
 * The one way a fallible function reports failure.
 *
 * A failed call returns -1 and fills a struct error that its caller owns:
 * a kind that code can branch on (retry the job? park it? fix the config?)
 * and one sentence a person can act on. The first error recorded wins;
 * callers on the way up only put context in front, so a log line reads
 * from the outermost action down to the root cause:
 *
 *   deliver job 812: crm.contacts: POST /contacts: HTTP 503
 */
#ifndef CONCORD_CORE_ERROR_H
#define CONCORD_CORE_ERROR_H

#include "core/compiler.h"

enum error_kind {
    ERROR_NONE = 0,
    ERROR_INVALID,   /* bad input from a person: config, CLI, admin API body */
    ERROR_IO,        /* local file or socket failure */
    ERROR_STORE,     /* the database failed or refused */
    ERROR_TRANSIENT, /* the remote system may accept later: timeout, 429, 5xx */
    ERROR_PERMANENT, /* the remote system will keep refusing: other 4xx */
    ERROR_MAPPING,   /* a field map or jq expression failed on this record */
    ERROR_AUTH,      /* a webhook signature or credential was refused */
    ERROR_INTERNAL,  /* a bug in concord: an invariant did not hold */
};

/* Declare one per operation, zeroed: struct error err = {0}; */
struct error {
    enum error_kind kind;
    char msg[512];
};

/* Record the root cause, unless err already holds one. Returns -1. */
int error_set(struct error *err, enum error_kind kind, const char *fmt, ...) PRINTF_LIKE(3, 4);

/* Like error_set(), and appends ": " and the text of the current errno. */
int error_set_errno(struct error *err, enum error_kind kind, const char *fmt, ...)
    PRINTF_LIKE(3, 4);

/* Put "context: " in front of the recorded message; the kind stays. Returns -1. */
int error_wrap(struct error *err, const char *fmt, ...) PRINTF_LIKE(2, 3);

/* Forget the recorded error, so err can be used for the next operation. */
void error_clear(struct error *err);

/* The kind as a short lower-case word ("transient"); never NULL. */
const char *error_kind_name(enum error_kind kind);

#endif
