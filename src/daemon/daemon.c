/* SPDX-License-Identifier: MIT */

/*
 * `concord run`: startup, signals and the orderly stop. The order matters
 * for the guarantees: the HTTP server stops first (no change is accepted
 * that cannot be journaled), then the engine drains deliveries in flight up
 * to the deadline and processes what was journaled, then the store closes.
 */

#include "daemon/daemon.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "engine/engine.h"
#include "http/http_server.h"

static volatile sig_atomic_t stop_signal;

static void
on_signal(int sig)
{
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

static void
setup_logging(const struct config *cfg)
{
    enum log_level level = LOG_INFO;
    enum log_format format = LOG_FORMAT_AUTO;

    if (cfg->log_level != NULL && log_level_parse(cfg->log_level, &level) == -1)
        level = LOG_INFO;
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
    if (pthread_sigmask(SIG_BLOCK, &block, wait_mask) != 0)
        return -1;
    sigdelset(wait_mask, SIGTERM);
    sigdelset(wait_mask, SIGINT);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) == -1 || sigaction(SIGINT, &sa, NULL) == -1)
        return -1;
    sa.sa_handler = SIG_IGN;
    return sigaction(SIGPIPE, &sa, NULL);
}

/*
 * The admin API (daemon_admin.c), when admin.tokens has any: on its own
 * listener (admin.listen), or on the webhooks' one for this machine only.
 */
static int
admin_open(const struct config *cfg, struct http_server *srv, struct http_server **own,
           void **state, struct error *err)
{
    if (cfg->admin.token_count == 0)
        return 0;
    if (cfg->admin.listen == NULL)
        return daemon_admin_routes(srv, cfg, 1, state, err);
    if (http_server_open(own, cfg->admin.listen, err) == -1 ||
        daemon_admin_routes(*own, cfg, 0, state, err) == -1 ||
        http_server_route(*own, "GET", "/healthz", 0, on_health, NULL, err) == -1)
        return error_wrap(err, "admin.listen");
    return 0;
}

static int
serve(const struct daemon_options *opts, const struct config *cfg, const sigset_t *wait_mask,
      struct error *err)
{
    struct engine *engine = NULL;
    struct http_server *srv = NULL, *admin_srv = NULL;
    void *routes = NULL, *admin = NULL;
    int rc = -1;

    if (engine_new(cfg, &engine, err) == -1 || http_server_open(&srv, cfg->listen, err) == -1 ||
        daemon_webhook_routes(srv, cfg, engine, &routes, err) == -1 ||
        http_server_route(srv, "GET", "/healthz", 0, on_health, NULL, err) == -1 ||
        http_server_route(srv, "GET", "/readyz", 0, on_ready, engine, err) == -1 ||
        admin_open(cfg, srv, &admin_srv, &admin, err) == -1 || engine_start(engine, err) == -1)
        goto out;
    if (http_server_start(srv, err) == -1 ||
        (admin_srv != NULL && http_server_start(admin_srv, err) == -1))
        goto out;
    if (cfg->admin.token_count > 0)
        log_info(NULL, "the admin API answers on %s%s, %zu token%s",
                 cfg->admin.listen ? cfg->admin.listen : cfg->listen,
                 cfg->admin.listen ? "" : " (this machine only)", cfg->admin.token_count,
                 cfg->admin.token_count == 1 ? "" : "s");
    log_info(NULL, "concord is running: listening on %s, store %s, %zu systems", cfg->listen,
             cfg->store_url, cfg->system_count);
    while (stop_signal == 0)
        sigsuspend(wait_mask);
    log_info(NULL, "stopping on signal %d: no new changes, finishing deliveries in flight",
             (int)stop_signal);
    rc = 0;
out:
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

int
daemon_run(const struct daemon_options *opts)
{
    struct config *cfg = NULL;
    struct error err = {0};
    sigset_t wait_mask;
    int rc;

    if (install_signals(&wait_mask) == -1) {
        log_error(NULL, "install signal handlers: %s", strerror_r(errno, err.msg, sizeof(err.msg)));
        return 1;
    }
    if (config_load(opts->config_path, &cfg, &err) == -1) {
        log_setup(LOG_INFO, LOG_FORMAT_AUTO, 2);
        log_error(NULL, "%s", err.msg);
        return 1;
    }
    setup_logging(cfg);
    rc = serve(opts, cfg, &wait_mask, &err);
    if (rc == -1)
        log_error(NULL, "%s", err.msg);
    config_free(cfg);
    return rc == 0 ? 0 : 1;
}
