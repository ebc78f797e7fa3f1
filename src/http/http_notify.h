/* SPDX-License-Identifier: MIT */
/*
 * Messages for people: a Slack-compatible webhook ({"text": ...}) and
 * e-mail over SMTP, both through libcurl, blocking, on the caller's thread
 * (the alert thread; later an automation's notify action). Neither puts a
 * URL or a password in an error: a webhook URL is a credential.
 */
#ifndef CONCORD_HTTP_HTTP_NOTIFY_H
#define CONCORD_HTTP_HTTP_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "core/compiler.h"

struct error;

/* What a webhook answered, for a caller that retries on its own schedule. */
struct http_notify_answer {
    long status;             /* 0: no answer */
    int64_t retry_after_sec; /* the answer's Retry-After in seconds from now, -1: none */
};

/* POST {"text": text} as JSON to url. A 2xx is success; anything else is
 * ERROR_TRANSIENT (5xx, 408, 429, no answer) or ERROR_PERMANENT (other
 * 4xx). ans (NULL: not wanted) says what came back, success or not. */
MUST_CHECK int http_notify_webhook(const char *url, const char *text, int64_t timeout_ms,
                                   struct http_notify_answer *ans, struct error *err);

/* One e-mail. */
struct http_mail {
    const char *url; /* "smtp://host:port" or "smtps://host:port" */
    const char *user;
    const char *password; /* NULL: no login */
    const char *from;
    const char *const *to;
    size_t to_count;
    const char *subject; /* one line */
    const char *body;    /* plain text; lines end in \n */
};

/* Send m (RFC 5322: From, To, Subject, Date, Message-ID, then the body). */
MUST_CHECK int http_notify_mail(const struct http_mail *m, int64_t timeout_ms, struct error *err);

#endif
