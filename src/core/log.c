/* SPDX-License-Identifier: MIT */

/*
 * The log sink of log.h. A line is built in a stack buffer and written with
 * one write(2), so lines from different threads never interleave.
 */

#include "core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"

enum log_level log_level_current = LOG_INFO;
static enum log_format log_format_current = LOG_FORMAT_TEXT;
static int log_fd = 2;

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};
static const char *const trace_names[] = {"http", "webhook", "merge", "poll", "writer"};
unsigned log_trace_mask;

int
log_trace_parse(const char *list, unsigned *out, char *bad, size_t len)
{
    for (const char *p = list; *p != '\0';) {
        size_t n = strcspn(p, ", ");
        int found = n == 3 && strncmp(p, "all", 3) == 0;

        if (found)
            *out |= (1U << ARRAY_COUNT(trace_names)) - 1;
        for (size_t i = 0; i < ARRAY_COUNT(trace_names) && !found && n > 0; i++) {
            if (strlen(trace_names[i]) == n && strncmp(p, trace_names[i], n) == 0) {
                *out |= 1U << i;
                found = 1;
            }
        }
        if (!found && n > 0) {
            (void)snprintf(bad, len, "%.*s", (int)n, p);
            return -1;
        }
        p += n;
        p += strspn(p, ", ");
    }
    return 0;
}

void
log_setup(enum log_level level, enum log_format format, int fd)
{
    log_level_current = level;
    log_fd = fd;
    if (format == LOG_FORMAT_AUTO)
        format = isatty(fd) ? LOG_FORMAT_TEXT : LOG_FORMAT_JSON;
    log_format_current = format;
}

int
log_level_parse(const char *name, enum log_level *out)
{
    for (size_t i = 0; i < LOG_TRACE; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

/* Append s as the inside of a JSON string, escaping what JSON requires. */
static size_t
json_escape(char *out, size_t cap, size_t at, const char *s)
{
    for (; *s != '\0' && at + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\') {
            out[at++] = '\\';
            out[at++] = (char)c;
        } else if (c < 0x20) {
            at += (size_t)snprintf(out + at, cap - at, "\\u%04x", c);
        } else {
            out[at++] = (char)c;
        }
    }
    return at;
}

static size_t add(char *out, size_t cap, size_t at, const char *fmt, ...) PRINTF_LIKE(4, 5);

static size_t
add(char *out, size_t cap, size_t at, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (at >= cap)
        return at;
    va_start(ap, fmt);
    n = vsnprintf(out + at, cap - at, fmt, ap);
    va_end(ap);
    if (n < 0)
        return at;
    return (size_t)n >= cap - at ? cap - 1 : at + (size_t)n;
}

static size_t
json_field(char *line, size_t cap, size_t at, const char *key, const char *value)
{
    at = add(line, cap, at, ",\"%s\":\"", key);
    at = json_escape(line, cap, at, value);
    return add(line, cap, at, "\"");
}

static size_t
format_json(char *line, size_t cap, enum log_level level, const struct log_ctx *ctx,
            const char *msg, const char *ts)
{
    size_t at = add(line, cap, 0, "{\"ts\":\"%s\",\"level\":\"%s\"", ts, level_names[level]);

    at = json_field(line, cap, at, "msg", msg);
    if (ctx != NULL) {
        if (ctx->system)
            at = json_field(line, cap, at, "system", ctx->system);
        if (ctx->collection)
            at = json_field(line, cap, at, "collection", ctx->collection);
        if (ctx->record_id)
            at = add(line, cap, at, ",\"record\":%lld", (long long)ctx->record_id);
        if (ctx->job_id)
            at = add(line, cap, at, ",\"job\":%lld", (long long)ctx->job_id);
        if (ctx->request_id)
            at = json_field(line, cap, at, "request", ctx->request_id);
    }
    return add(line, cap, at, "}\n");
}

static size_t
format_text(char *line, size_t cap, enum log_level level, const struct log_ctx *ctx,
            const char *msg, const char *ts)
{
    size_t at = add(line, cap, 0, "%s %-5s %s", ts, level_names[level], msg);

    if (ctx != NULL) {
        if (ctx->system)
            at = add(line, cap, at, " system=%s", ctx->system);
        if (ctx->collection)
            at = add(line, cap, at, " collection=%s", ctx->collection);
        if (ctx->record_id)
            at = add(line, cap, at, " record=%lld", (long long)ctx->record_id);
        if (ctx->job_id)
            at = add(line, cap, at, " job=%lld", (long long)ctx->job_id);
        if (ctx->request_id)
            at = add(line, cap, at, " request=%s", ctx->request_id);
    }
    return add(line, cap, at, "\n");
}

void
log_write(enum log_level level, const struct log_ctx *ctx, const char *fmt, ...)
{
    char msg[1024], line[2048], ts[32];
    va_list ap;
    size_t len;
    int saved = errno;

    if (level > log_level_current && level != LOG_TRACE)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    clock_format_ms(clock_now_ms(), ts, sizeof(ts));
    if (log_format_current == LOG_FORMAT_JSON)
        len = format_json(line, sizeof(line), level, ctx, msg, ts);
    else
        len = format_text(line, sizeof(line), level, ctx, msg, ts);
    if (len > 0 && line[len - 1] != '\n')
        line[len - 1] = '\n'; /* truncated: still one line */
    if (write(log_fd, line, len) < 0) {
        /* Nowhere left to report a failing log sink. */
    }
    errno = saved;
}
