/* SPDX-License-Identifier: MIT */

/*
 * Structured logs. One line per event: a JSON object when standard error is
 * not a terminal (or when asked), aligned text when it is. Each line carries
 * the ids of what it concerns (system, collection, record, job, request), so
 * an operator can grep one record's story out of a busy log.
 *
 * The level test happens in the macro, before the arguments are evaluated.
 * Messages must never carry a secret: secrets have their own type
 * (core/secret.h) that has no way to be formatted.
 *
 * Thread: any; each line is written with one write(2).
 */
#ifndef CONCORD_CORE_LOG_H
#define CONCORD_CORE_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "core/compiler.h"

enum log_level {
    LOG_ERROR = 0,
    LOG_WARN,
    LOG_INFO,
    LOG_DEBUG,
    LOG_TRACE, /* a subsystem's trace (log_trace()): written whatever the level */
};

/* Subsystems whose trace can be switched on (log.trace, --trace). */
enum log_trace_sub {
    LOG_TRACE_HTTP = 1 << 0,    /* every outbound request and its answer */
    LOG_TRACE_WEBHOOK = 1 << 1, /* every inbound webhook and its answer */
    LOG_TRACE_MERGE = 1 << 2,   /* each change: what merge made of it */
    LOG_TRACE_POLL = 1 << 3,    /* each page a poll reads */
    LOG_TRACE_WRITER = 1 << 4,  /* each writer turn: journaled, processed, claimed */
};

/* The subsystems traced now (a mask of enum log_trace_sub). */
extern unsigned log_trace_mask;

/* Parse "http,poll" (or "all") into *out, adding to it. Returns 0, or -1
 * naming the unknown one in bad (len bytes). */
MUST_CHECK int log_trace_parse(const char *list, unsigned *out, char *bad, size_t len);

enum log_format {
    LOG_FORMAT_AUTO = 0, /* text on a terminal, JSON elsewhere */
    LOG_FORMAT_JSON,
    LOG_FORMAT_TEXT,
};

/* What a line concerns. Unset fields (NULL, 0) are left out of the line. */
struct log_ctx {
    const char *system;
    const char *collection;
    int64_t record_id;
    int64_t job_id;
    const char *request_id;
};

/* Set up the sink: level, format and the file descriptor lines go to. */
void log_setup(enum log_level level, enum log_format format, int fd);

/* The current level; lines above it are not formatted. */
extern enum log_level log_level_current;

/* Parse "error", "warn", "info" or "debug". Returns 0, or -1 if unknown. */
MUST_CHECK int log_level_parse(const char *name, enum log_level *out);

/* Write one line. Use the macros below, which test the level first. */
void log_write(enum log_level level, const struct log_ctx *ctx, const char *fmt, ...)
    PRINTF_LIKE(3, 4);

#define log_error(ctx, ...) log_write(LOG_ERROR, ctx, __VA_ARGS__)
#define log_warn(ctx, ...)                         \
    do {                                           \
        if (log_level_current >= LOG_WARN)         \
            log_write(LOG_WARN, ctx, __VA_ARGS__); \
    } while (0)
#define log_info(ctx, ...)                         \
    do {                                           \
        if (log_level_current >= LOG_INFO)         \
            log_write(LOG_INFO, ctx, __VA_ARGS__); \
    } while (0)
#define log_trace(sub, ctx, ...)                    \
    do {                                            \
        if (log_trace_mask & (unsigned)(sub))       \
            log_write(LOG_TRACE, ctx, __VA_ARGS__); \
    } while (0)
#define log_debug(ctx, ...)                         \
    do {                                            \
        if (log_level_current >= LOG_DEBUG)         \
            log_write(LOG_DEBUG, ctx, __VA_ARGS__); \
    } while (0)

#endif
