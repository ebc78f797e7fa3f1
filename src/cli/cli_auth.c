/* SPDX-License-Identifier: MIT */

/*
 * concord auth SYSTEM: the OAuth2 consent step. It prints the provider's
 * consent URL, waits on a loopback port for the browser's redirect, checks
 * the state it sent, trades the code for tokens at the token endpoint and
 * keeps them in the store, where the daemon finds them.
 *
 * The listener takes one request at a time on 127.0.0.1 only and answers
 * anything but the redirect with 404, for up to --timeout seconds.
 */

#include "cli/cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "config/config.h"
#include "connectors/oauth.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/xmalloc.h"

#define REQUEST_MAX 8192

static int
hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The URL-decoded value of name in a query string (malloc()ed), or NULL. */
static char *
query_value(const char *query, const char *name)
{
    size_t nlen = strlen(name);
    const char *p = query;

    while (p != NULL && *p != '\0') {
        const char *end = strpbrk(p, "& ");

        if (strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            const char *v = p + nlen + 1;
            size_t len = end != NULL ? (size_t)(end - v) : strlen(v), o = 0;
            char *out = xmalloc(len + 1);

            for (size_t i = 0; i < len; i++) {
                if (v[i] == '%' && i + 2 < len && hexval(v[i + 1]) >= 0 && hexval(v[i + 2]) >= 0) {
                    out[o++] = (char)(hexval(v[i + 1]) * 16 + hexval(v[i + 2]));
                    i += 2;
                } else {
                    out[o++] = v[i] == '+' ? ' ' : v[i];
                }
            }
            out[o] = '\0';
            return out;
        }
        p = end != NULL && *end == '&' ? end + 1 : NULL;
    }
    return NULL;
}

static void
answer(int fd, const char *status, const char *text)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, strlen(text));

    if (n > 0 && write(fd, head, (size_t)n) >= 0)
        (void)!write(fd, text, strlen(text));
}

/*
 * Wait for "GET /callback?..." on lfd until deadline. Returns the query's
 * code (malloc()ed) when its state matches, NULL after printing why.
 */
static char *
await_code(int lfd, const char *state, int64_t deadline_ms)
{
    char req[REQUEST_MAX + 1];

    for (;;) {
        int64_t left = deadline_ms - clock_mono_ms();
        struct pollfd pfd = {.fd = lfd, .events = POLLIN};
        char *code, *got_state, *error, *q;
        ssize_t n;
        size_t used = 0;
        int fd;

        if (left <= 0) {
            fprintf(stderr, "concord: no redirect came in time\n");
            return NULL;
        }
        if (poll(&pfd, 1, (int)(left > 1000 ? 1000 : left)) <= 0)
            continue;
        if ((fd = accept(lfd, NULL, NULL)) == -1)
            continue;
        /* Read the request line and headers (the body does not matter). */
        while (used < REQUEST_MAX && (n = read(fd, req + used, REQUEST_MAX - used)) > 0) {
            used += (size_t)n;
            req[used] = '\0';
            if (strstr(req, "\r\n\r\n") != NULL)
                break;
        }
        req[used] = '\0';
        if (strncmp(req, "GET /callback?", 14) != 0) {
            answer(fd, "404 Not Found", "concord auth waits for /callback only\n");
            close(fd);
            continue;
        }
        q = req + 14;
        code = query_value(q, "code");
        got_state = query_value(q, "state");
        error = query_value(q, "error");
        if (got_state == NULL || strcmp(got_state, state) != 0) {
            answer(fd, "400 Bad Request", "concord: the state does not match this request\n");
            fprintf(stderr, "concord: a redirect came with a wrong state; still waiting\n");
            free(code);
            free(got_state);
            free(error);
            close(fd);
            continue;
        }
        if (error != NULL || code == NULL) {
            answer(fd, "400 Bad Request", "concord: access was not granted\n");
            fprintf(stderr, "concord: the provider answered %s\n",
                    error != NULL ? error : "without a code");
            free(code);
            free(got_state);
            free(error);
            close(fd);
            return NULL;
        }
        answer(fd, "200 OK", "concord: access granted. You may close this page.\n");
        close(fd);
        free(got_state);
        free(error);
        return code;
    }
}

static int
run_auth(const struct cli_args *args)
{
    const char *port_opt = cli_opt(args, "port"), *timeout_opt = cli_opt(args, "timeout");
    long port = port_opt != NULL ? strtol(port_opt, NULL, 10) : 0;
    long timeout_s = timeout_opt != NULL ? strtol(timeout_opt, NULL, 10) : 300;
    const struct config_system *sys;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t slen = sizeof(sa);
    unsigned char rnd[16];
    char state[33], redirect[64];
    char *url = NULL, *code = NULL;
    struct config *cfg = NULL;
    struct error err = {0};
    int lfd = -1, rc = 1, one = 1;

    if (args->argc != 1 || port < 0 || port > 65535 || timeout_s <= 0) {
        fprintf(stderr, "usage: %s\n", cli_cmd_auth.usage);
        return 2;
    }
    if (config_load(args->config_path, &cfg, &err) == -1) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    sys = config_system_find(cfg, args->argv[0]);
    if (sys == NULL) {
        fprintf(stderr, "concord: no system %s in %s\n", args->argv[0], args->config_path);
        rc = 2;
        goto out;
    }
    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        fprintf(stderr, "concord: no random bytes for the state\n");
        goto out;
    }
    for (size_t i = 0; i < sizeof(rnd); i++)
        (void)snprintf(state + 2 * i, 3, "%02x", rnd[i]);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    if (lfd == -1 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
        bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == -1 || listen(lfd, 4) == -1 ||
        getsockname(lfd, (struct sockaddr *)&sa, &slen) == -1) {
        (void)error_set_errno(&err, ERROR_IO, "cannot listen on 127.0.0.1:%ld", port);
        fprintf(stderr, "concord: %s\n", err.msg);
        goto out;
    }
    (void)snprintf(redirect, sizeof(redirect), "http://127.0.0.1:%u/callback",
                   (unsigned)ntohs(sa.sin_port));
    if (oauth_consent_url(sys, redirect, state, &url, &err) == -1) {
        fprintf(stderr, "concord: %s\n", err.msg);
        rc = 2;
        goto out;
    }
    printf("Open this address in a browser and allow access:\n\n  %s\n\n"
           "Waiting for the redirect to %s ...\n",
           url, redirect);
    fflush(stdout);
    code = await_code(lfd, state, clock_mono_ms() + (int64_t)timeout_s * 1000);
    if (code == NULL)
        goto out;
    if (oauth_exchange_code(cfg, sys, code, redirect, &err) == -1) {
        fprintf(stderr, "concord: %s\n", err.msg);
        goto out;
    }
    printf("%s: access granted; the tokens are kept in the store\n", sys->name);
    rc = 0;

out:
    if (lfd != -1)
        close(lfd);
    free(url);
    free(code);
    config_free(cfg);
    return rc;
}

static const char *const auth_options[] = {"port", "timeout", NULL};

const struct cli_command cli_cmd_auth = {
    .name = "auth",
    .usage = "concord auth [-c FILE] [--port N] [--timeout SECONDS] SYSTEM",
    .summary = "give concord access to an OAuth2 system (the consent step)",
    .run = run_auth,
    .options = auth_options,
};
