/* SPDX-License-Identifier: MIT */

/*
 * `concord run`: startup, signals and the orderly stop. The order matters
 * for the guarantees: the HTTP server stops first (no change is accepted
 * that cannot be journaled), then the engine drains deliveries in flight up
 * to the deadline and processes what was journaled, then the store closes.
 */

#include "daemon/daemon.h"

#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "daemon/dashboard.h"
#include "engine/engine.h"
#include "http/http_server.h"
#include "store/store.h"

static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t reload_signal;

static void
on_signal(int sig)
{
    if (sig == SIGHUP)
        reload_signal = 1;
    else
        stop_signal = sig;
}

static char *
on_health(void *user, const struct http_server_request *req, int *status, const char **content_type)
{
    (void)user;
    (void)req;
    (void)content_type;
    *status = 200;
    return xstrdup("{\"status\":\"ok\"}");
}

static char *
on_ready(void *user, const struct http_server_request *req, int *status, const char **content_type)
{
    struct engine *e = user;

    (void)req;
    (void)content_type;
    if (engine_is_ready(e)) {
        *status = 200;
        return xstrdup("{\"status\":\"ready\"}");
    }
    *status = 503;
    return xstrdup("{\"status\":\"unavailable\",\"reason\":\"the store is not answering\"}");
}

static char *
on_metrics(void *user, const struct http_server_request *req, int *status,
           const char **content_type)
{
    (void)req;
    *status = 200;
    *content_type = "text/plain; version=0.0.4; charset=utf-8";
    return engine_metrics_text(user);
}

static void
setup_logging(const struct daemon_options *opts, const struct config *cfg)
{
    enum log_level level = LOG_INFO;
    enum log_format format = LOG_FORMAT_AUTO;

    if (cfg->log_level != NULL && log_level_parse(cfg->log_level, &level) == -1)
        level = LOG_INFO;
    if (opts->log_level != NULL && log_level_parse(opts->log_level, &level) == -1)
        level = LOG_INFO;
    log_trace_mask = cfg->log_trace | opts->trace;
    if (cfg->log_format != NULL && strcmp(cfg->log_format, "json") == 0)
        format = LOG_FORMAT_JSON;
    else if (cfg->log_format != NULL && strcmp(cfg->log_format, "text") == 0)
        format = LOG_FORMAT_TEXT;
    log_setup(level, format, 2);
}

/*
 * SIGTERM and SIGINT are blocked here, before any thread starts, so every
 * thread inherits the block and only the main thread's sigsuspend() takes
 * them: no check-then-pause race.
 */
static int
install_signals(sigset_t *wait_mask)
{
    struct sigaction sa;
    sigset_t block;

    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &block, wait_mask) != 0)
        return -1;
    sigdelset(wait_mask, SIGTERM);
    sigdelset(wait_mask, SIGINT);
    sigdelset(wait_mask, SIGHUP);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) == -1 || sigaction(SIGINT, &sa, NULL) == -1 ||
        sigaction(SIGHUP, &sa, NULL) == -1)
        return -1;
    sa.sa_handler = SIG_IGN;
    return sigaction(SIGPIPE, &sa, NULL);
}

/* Write a note in the store: the daemon's pid, what became of a reload
 * (for concord reload). */
static void
note(const struct config *cfg, const char *key, const char *text)
{
    struct store *st = NULL;
    struct error err = {0};

    if (store_open(&st, cfg->store_url, &err) == -1 || store_meta_set(st, key, text, &err) == -1)
        log_warn(NULL, "note %s: %s", key, err.msg);
    store_close(st);
}

static void
note_reload(const struct config *cfg, const char *outcome)
{
    char *text = xasprintf("%lld %s", (long long)clock_now_ms(), outcome);

    note(cfg, "daemon.reload", text);
    free(text);
}

/*
 * A SIGHUP came: load the config again. Valid, it is returned (the caller
 * swaps it in); invalid, every problem is logged and NULL returned: the
 * running config stays.
 */
static struct config *
reload_config(const struct daemon_options *opts, const struct config *cfg)
{
    struct config *next = NULL;
    struct error err = {0};

    log_info(NULL, "reload: loading %s", opts->config_path);
    if (config_load(opts->config_path, &next, &err) == -1) {
        for (char *line = err.msg, *end; *line != '\0'; line = end) {
            end = line + strcspn(line, "\n");
            if (*end != '\0')
                *end++ = '\0';
            log_error(NULL, "reload refused: %s", line);
        }
        log_warn(NULL, "reload refused: the running config stays");
        note_reload(cfg, "refused: the config has errors (see the daemon's log)");
        return NULL;
    }
    return next;
}

/*
 * The admin API (daemon_admin.c), when admin.tokens has any: on its own
 * listener (admin.listen), or on the webhooks' one for this machine only.
 */
static char *
on_dashboard(void *user, const struct http_server_request *req, int *status,
             const char **content_type)
{
    (void)user;
    (void)req;
    *status = 200;
    *content_type = "text/html; charset=utf-8";
    return xstrndup((const char *)dashboard_html, dashboard_html_len);
}

static int
admin_open(const struct config *cfg, struct engine *engine, struct http_server *srv,
           struct http_server **own, void **state, struct error *err)
{
    if (cfg->admin.token_count == 0)
        return 0;
    if (cfg->admin.listen == NULL)
        return daemon_admin_routes(srv, cfg, engine, 1, state, err) == -1 ||
                       http_server_route(srv, "GET", "/", 0, on_dashboard, NULL, err) == -1
                   ? -1
                   : 0;
    if (http_server_open(own, cfg->admin.listen, err) == -1 ||
        daemon_admin_routes(*own, cfg, engine, 0, state, err) == -1 ||
        http_server_route(*own, "GET", "/healthz", 0, on_health, NULL, err) == -1 ||
        http_server_route(*own, "GET", "/", 0, on_dashboard, NULL, err) == -1)
        return error_wrap(err, "admin.listen");
    return 0;
}

static int
serve(const struct daemon_options *opts, const struct config *cfg, const sigset_t *wait_mask,
      struct config **next, struct error *err)
{
    struct engine *engine = NULL;
    struct http_server *srv = NULL, *admin_srv = NULL;
    struct alerts *alerts = NULL;
    void *routes = NULL, *admin = NULL;
    int rc = -1;

    if (engine_new(cfg, &engine, err) == -1 || http_server_open(&srv, cfg->listen, err) == -1 ||
        daemon_webhook_routes(srv, cfg, engine, &routes, err) == -1 ||
        http_server_route(srv, "GET", "/healthz", 0, on_health, NULL, err) == -1 ||
        http_server_route(srv, "GET", "/readyz", 0, on_ready, engine, err) == -1 ||
        http_server_route(srv, "GET", "/metrics", 0, on_metrics, engine, err) == -1 ||
        admin_open(cfg, engine, srv, &admin_srv, &admin, err) == -1 ||
        engine_start(engine, err) == -1)
        goto out;
    /* The admin listener first: once /healthz answers on the main one,
     * everything is up. */
    if ((admin_srv != NULL && http_server_start(admin_srv, err) == -1) ||
        http_server_start(srv, err) == -1 || daemon_alerts_start(cfg, &alerts, err) == -1)
        goto out;
    if (cfg->admin.token_count > 0)
        log_info(NULL, "the admin API answers on %s%s, %zu token%s",
                 cfg->admin.listen ? cfg->admin.listen : cfg->listen,
                 cfg->admin.listen ? "" : " (this machine only)", cfg->admin.token_count,
                 cfg->admin.token_count == 1 ? "" : "s");
    log_info(NULL, "concord is running: listening on %s, store %s, %zu systems", cfg->listen,
             cfg->store_url, cfg->system_count);
    while (stop_signal == 0 && *next == NULL) {
        sigsuspend(wait_mask);
        if (reload_signal && stop_signal == 0) {
            reload_signal = 0;
            *next = reload_config(opts, cfg);
        }
    }
    if (*next != NULL) {
        log_info(NULL, "reload: swapping the config in; deliveries in flight finish first, "
                       "queued work stays queued");
        rc = 2;
    } else {
        log_info(NULL, "stopping on signal %d: no new changes, finishing deliveries in flight",
                 (int)stop_signal);
        rc = 0;
    }
out:
    daemon_alerts_stop(alerts);
    http_server_close(admin_srv);
    http_server_close(srv);
    if (engine != NULL)
        engine_stop(engine, opts->shutdown_deadline_ms);
    engine_free(engine);
    free(routes);
    daemon_admin_free(admin);
    if (rc == 0)
        log_info(NULL, "stopped cleanly");
    return rc;
}

/*
 * glibc gives the top of a thread's heap back to the kernel as soon as
 * 128 KiB or so of it are free, and takes it again at the next request:
 * under load the delivery and writer threads did that for every change
 * (madvise, page faults, sysmalloc: about 6% of concord's CPU in the
 * relay bench). A fixed threshold of 32 MiB keeps what a busy thread
 * frees for its next change; idle, concord has touched far less than that.
 * bench/README.md, "Memory given back too soon", has the figures.
 */
static void
keep_freed_memory(void)
{
#ifdef __GLIBC__
    (void)mallopt(M_TRIM_THRESHOLD, 32 * 1024 * 1024);
#endif
}

int
daemon_run(const struct daemon_options *opts)
{
    struct config *cfg = NULL;
    struct error err = {0};
    sigset_t wait_mask;
    int rc;

    keep_freed_memory();
    if (install_signals(&wait_mask) == -1) {
        log_error(NULL, "install signal handlers: %s", strerror_r(errno, err.msg, sizeof(err.msg)));
        return 1;
    }
    if (config_load(opts->config_path, &cfg, &err) == -1) {
        log_setup(LOG_INFO, LOG_FORMAT_AUTO, 2);
        log_error(NULL, "%s", err.msg);
        return 1;
    }
    setup_logging(opts, cfg);
    char pid[24];

    (void)snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    note(cfg, "daemon.pid", pid);
    for (;;) {
        struct config *next = NULL;

        rc = serve(opts, cfg, &wait_mask, &next, &err);
        if (rc != 2)
            break;
        /* The old generation stopped cleanly: the new one takes over the
         * store (and its queue) and the listener. */
        config_free(cfg);
        cfg = next;
        setup_logging(opts, cfg);
        log_info(NULL, "reload: the new config is in");
        note_reload(cfg, "ok");
    }
    if (rc == -1)
        log_error(NULL, "%s", err.msg);
    config_free(cfg);
    return rc == 0 ? 0 : 1;
}
