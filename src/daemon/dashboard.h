/* SPDX-License-Identifier: MIT */
/*
 * The dashboard: src/daemon/dashboard.html, embedded at build time
 * (cmake/embed.cmake), served at / by the daemon. It is plain HTML, CSS
 * and JavaScript that talks to /api/ with the operator's token; it loads
 * nothing from anywhere else.
 */
#ifndef CONCORD_DAEMON_DASHBOARD_H
#define CONCORD_DAEMON_DASHBOARD_H

#include <stddef.h>

/* The page's bytes (NUL-terminated) and their count without the NUL. */
extern const unsigned char dashboard_html[];
extern const size_t dashboard_html_len;

#endif
