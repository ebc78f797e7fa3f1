/* SPDX-License-Identifier: MIT */

/*
 * The daemon: `concord run`. Loads the config, opens the store through the
 * engine, serves webhooks and health endpoints, and shuts down cleanly on
 * SIGTERM or SIGINT: it stops accepting, lets deliveries in flight finish up
 * to a deadline, and leaves unfinished jobs queued for the next start.
 */
#ifndef CONCORD_DAEMON_DAEMON_H
#define CONCORD_DAEMON_DAEMON_H

#include <stddef.h>
#include <stdint.h>

#include "core/compiler.h"

struct config;
struct engine;
struct error;
struct http_server;

struct daemon_options {
    const char *config_path;
    int64_t shutdown_deadline_ms; /* how long deliveries in flight may take at a stop */
    const char *log_level;        /* NULL, or --log-level: wins over the config's */
    unsigned trace;               /* --trace: subsystems traced besides the config's */
};

/*
 * Run until a signal asks to stop. Returns the process's exit status: 0 after
 * a clean stop, 1 when it could not start (the reason is logged).
 */
int daemon_run(const struct daemon_options *opts);

/*
 * Register one webhook route per system that has a webhook section. The
 * engine and config are borrowed and must outlive the server. *state is set
 * (even on failure) to memory the routes use; free() it after the server is
 * closed.
 */
MUST_CHECK int daemon_webhook_routes(struct http_server *srv, const struct config *cfg,
                                     struct engine *engine, void **state, struct error *err);

/*
 * The alert thread (daemon_alerts.c; docs/operate.md "Alerts"): started
 * when cfg has an alerts section (else *out is NULL and 0 returned), and
 * stopped, then freed, by daemon_alerts_stop() (NULL is fine).
 */
struct alerts;
/* Start the alert thread for cfg (borrowed). Returns 0 (*out NULL without
 * alerts), or -1 with err. */
MUST_CHECK int daemon_alerts_start(const struct config *cfg, struct alerts **out,
                                   struct error *err);
/* Stop the alert thread, waiting for it, and free it. Accepts NULL. */
void daemon_alerts_stop(struct alerts *a);

/*
 * Serve the admin API under /api/ on srv (daemon_admin.c), with cfg's
 * admin tokens (engine: the running daemon's, for /api/series; may be
 * NULL); loopback_only: answer only clients on this machine (the
 * webhooks' listener). cfg is borrowed and must outlive the server.
 * *state is set (even on failure) to memory the routes use; release it
 * with daemon_admin_free() after the server is closed.
 */
MUST_CHECK int daemon_admin_routes(struct http_server *srv, const struct config *cfg,
                                   struct engine *engine, int loopback_only, void **state,
                                   struct error *err);

/* Release what daemon_admin_routes() set up. Accepts NULL. */
void daemon_admin_free(void *state);

/*
 * The admin API's route table, for its description's test: route i's
 * method and path pattern ("/api/inbox/{id}/retry"). Returns 1, or 0 past
 * the last one.
 */
int daemon_admin_route(size_t i, const char **method, const char **path);

#endif
