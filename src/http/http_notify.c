/* SPDX-License-Identifier: MIT */

/* Messages for people over a webhook or SMTP (http_notify.h). */

#include "http/http_notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/rand.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/xmalloc.h"

static size_t
discard(char *data, size_t size, size_t n, void *user)
{
    (void)data;
    (void)user;
    return size * n;
}

int
http_notify_webhook(const char *url, const char *text, int64_t timeout_ms,
                    struct http_notify_answer *ans, struct error *err)
{
    cJSON *o = cJSON_CreateObject();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    CURL *c = curl_easy_init();
    char *body;
    long status = 0;
    CURLcode rc;

    cJSON_AddStringToObject(o, "text", text);
    body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (c == NULL) {
        free(body);
        curl_slist_free_all(h);
        return error_set(err, ERROR_INTERNAL, "webhook: libcurl could not start");
    }
    (void)curl_easy_setopt(c, CURLOPT_URL, url);
    (void)curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    (void)curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    (void)curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    (void)curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    (void)curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    (void)curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        (void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (ans != NULL) {
        curl_off_t after = -1;

        /* Both forms, seconds and an HTTP-date; 0 when the answer has none. */
        if (rc != CURLE_OK || curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &after) != CURLE_OK ||
            after <= 0)
            after = -1;
        ans->status = status;
        ans->retry_after_sec = (int64_t)after;
    }
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    free(body);
    if (rc != CURLE_OK)
        return error_set(err, ERROR_TRANSIENT, "webhook: %s", curl_easy_strerror(rc));
    if (status < 200 || status > 299)
        return error_set(err,
                         status >= 500 || status == 429 || status == 408 ? ERROR_TRANSIENT
                                                                         : ERROR_PERMANENT,
                         "webhook: HTTP %ld", status);
    return 0;
}

struct reader {
    const char *data;
    size_t left;
};

static size_t
read_message(char *out, size_t size, size_t n, void *user)
{
    struct reader *r = user;
    size_t len = size * n < r->left ? size * n : r->left;

    memcpy(out, r->data, len);
    r->data += len;
    r->left -= len;
    return len;
}

/* The message: headers, a blank line, and the body with CRLF line ends. */
static char *
message(const struct http_mail *m)
{
    unsigned char rnd[8];
    char date[64], id[17];
    time_t now = time(NULL);
    struct tm tm;
    struct buf b;

    (void)gmtime_r(&now, &tm);
    (void)strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        memset(rnd, 0, sizeof(rnd));
    for (size_t i = 0; i < sizeof(rnd); i++)
        (void)snprintf(id + 2 * i, 3, "%02x", rnd[i]);
    buf_init(&b, 1024 * 1024);
    int bad = 0;

    bad |= buf_printf(&b, "Date: %s\r\nFrom: %s\r\nTo: ", date, m->from);
    for (size_t i = 0; i < m->to_count; i++)
        bad |= buf_printf(&b, "%s%s", i > 0 ? ", " : "", m->to[i]);
    bad |= buf_printf(&b,
                      "\r\nSubject: %s\r\nMessage-ID: <%s@concord>\r\nMIME-Version: 1.0\r\n"
                      "Content-Type: text/plain; charset=utf-8\r\n\r\n",
                      m->subject, id);
    for (const char *p = m->body; *p != '\0'; p++) {
        /* A line that starts with "." is doubled by libcurl itself. */
        if (*p == '\n')
            bad |= buf_printf(&b, "\r\n");
        else if (*p != '\r')
            bad |= buf_append(&b, p, 1);
    }
    bad |= buf_printf(&b, "\r\n");
    if (bad) { /* longer than 1 MiB: sent cut, which says so */
        buf_fini(&b);
        return xstrdup("Subject: concord\r\n\r\n(the message was too long)\r\n");
    }
    return buf_take(&b);
}

int
http_notify_mail(const struct http_mail *m, int64_t timeout_ms, struct error *err)
{
    struct curl_slist *rcpt = NULL;
    char *text = message(m);
    struct reader r = {text, strlen(text)};
    CURL *c = curl_easy_init();
    CURLcode rc;

    if (c == NULL) {
        free(text);
        return error_set(err, ERROR_INTERNAL, "e-mail: libcurl could not start");
    }
    for (size_t i = 0; i < m->to_count; i++)
        rcpt = curl_slist_append(rcpt, m->to[i]);
    (void)curl_easy_setopt(c, CURLOPT_URL, m->url);
    (void)curl_easy_setopt(c, CURLOPT_MAIL_FROM, m->from);
    (void)curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
    (void)curl_easy_setopt(c, CURLOPT_READFUNCTION, read_message);
    (void)curl_easy_setopt(c, CURLOPT_READDATA, &r);
    (void)curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    (void)curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    (void)curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    (void)curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    if (m->user != NULL) {
        (void)curl_easy_setopt(c, CURLOPT_USERNAME, m->user);
        (void)curl_easy_setopt(c, CURLOPT_PASSWORD, m->password != NULL ? m->password : "");
        /* Never a password in clear over plain smtp://: STARTTLS or nothing. */
        (void)curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    }
    rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    curl_slist_free_all(rcpt);
    explicit_bzero(text, strlen(text));
    free(text);
    if (rc != CURLE_OK)
        return error_set(err, ERROR_TRANSIENT, "e-mail: %s", curl_easy_strerror(rc));
    return 0;
}
