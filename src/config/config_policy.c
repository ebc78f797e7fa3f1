/* SPDX-License-Identifier: MIT */

/*
 * How concord calls a system (docs/config.md, "Systems"): retry (a list of
 * delays or a doubling schedule, max_attempts, jitter, max_age and a
 * do-not-retry header), rate_limit and rate_limited_status, breaker, and
 * the mass-delete guard. Each fills the struct config_system that
 * system_defaults() in config_system.c started.
 */

#include "config/config.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"
#include "core/xmalloc.h"

static const char *const retry_keys[] = {"max_attempts", "base_ms", "cap_ms",     "jitter",
                                         "delays",       "max_age", "stop_header"};
static const char *const rate_limit_keys[] = {"rate", "per", "burst"};
static const char *const breaker_keys[] = {"failures", "failure_rate", "min_requests", "window",
                                           "cooldown"};
static const char *const delete_guard_keys[] = {"max_count", "max_share", "min_count", "window"};

static void
parse_delays(struct config_ctx *c, const struct config_node *v, const char *path,
             struct retry_policy *r)
{
    char buf[64];
    size_t ok = 0;

    if (v->kind != CONFIG_NODE_SEQUENCE || v->kid_count == 0 || v->kid_count > RETRY_MAX_DELAYS) {
        CONFIG_PROBLEM(
            c, v, "%s: expected a list of 1 to %d durations, got %s; hint: [0, 5s, 5m, 30m, 2h]",
            path, RETRY_MAX_DELAYS,
            v->kind == CONFIG_NODE_SEQUENCE && v->kid_count > 0
                ? "a longer list"
                : config_node_show(v, buf, sizeof(buf)));
        return;
    }
    for (size_t i = 0; i < v->kid_count; i++) {
        char *p = xasprintf("%s[%zu]", path, i);

        if (config_get_duration(c, v->kids[i], p, 0, &r->delays_ms[i]) == 0)
            ok++;
        free(p);
    }
    if (ok == v->kid_count)
        r->delay_count = v->kid_count;
}

/* "Header-Name: value": an answer that carries it is not retried. */
static void
parse_stop_header(struct config_ctx *c, const struct config_node *v, const char *path,
                  struct config_system *s)
{
    char buf[64], *name = NULL, *colon, *value = NULL, *end;

    if (config_get_str(c, v, path, &name) == -1)
        return;
    colon = strchr(name, ':');
    if (colon != NULL) {
        *colon = '\0';
        value = colon + 1 + strspn(colon + 1, " \t");
        end = value + strlen(value);
        while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
    }
    if (value == NULL || !config_header_name_ok(name) || value[0] == '\0' ||
        strpbrk(value, "\r\n") != NULL) {
        CONFIG_PROBLEM(
            c, v, "%s: expected \"Header-Name: value\", got %s; hint: Stripe-Should-Retry: false",
            path, config_node_show(v, buf, sizeof(buf)));
        free(name);
        return;
    }
    s->retry_stop_header_name = name;
    s->retry_stop_header_value = xstrdup(value);
}

static void
parse_jitter(struct config_ctx *c, const struct config_node *v, const char *path,
             struct retry_policy *r)
{
    const struct config_node *j = config_node_get(v, "jitter");
    double d;
    char *p;

    if (j == NULL)
        return;
    p = config_join(path, "jitter");
    if (config_get_number(c, j, p, 0, 1, "a number from 0 to 1", &d) == 0)
        r->jitter = d;
    free(p);
}

/*
 * retry: either delays (a list) or base_ms/cap_ms (exponential); without
 * either the default list stays. max_attempts defaults to what the list
 * allows, or to 8 for the exponential form, and is cut to what a list
 * allows (retry.h).
 */
void
config_parse_retry(struct config_ctx *c, const struct config_node *v, const char *path,
                   struct config_system *s)
{
    struct retry_policy *r = &s->retry;
    const struct config_node *cap, *base, *delays, *attempts_n;
    int64_t attempts = -1;
    char *p;

    if (!config_want_map(c, v, path))
        return;
    config_check_keys(c, v, path, retry_keys, ARRAY_COUNT(retry_keys));
    cap = config_node_get(v, "cap_ms");
    base = config_node_get(v, "base_ms");
    delays = config_node_get(v, "delays");
    attempts_n = config_node_get(v, "max_attempts");
    config_opt_int(c, v, path, "max_attempts", (struct config_range){1, INT_MAX}, &attempts);
    if (delays != NULL && (base != NULL || cap != NULL)) {
        CONFIG_PROBLEM(
            c, base != NULL ? base : cap,
            "%s: give either delays or base_ms/cap_ms, not both; hint: delays lists each "
            "wait, base_ms and cap_ms make a doubling schedule",
            path);
    } else if (delays != NULL) {
        p = config_join(path, "delays");
        parse_delays(c, delays, p, r);
        free(p);
    } else if (base != NULL || cap != NULL) {
        r->delay_count = 0; /* exponential */
        r->max_attempts = 8;
        config_opt_int(c, v, path, "base_ms", (struct config_range){0, INT64_MAX / 4}, &r->base_ms);
        config_opt_int(c, v, path, "cap_ms", (struct config_range){0, INT64_MAX / 4}, &r->cap_ms);
        if (r->cap_ms < r->base_ms)
            CONFIG_PROBLEM(
                c, cap != NULL ? cap : base,
                "%s.cap_ms: %lld is less than base_ms %lld; hint: the cap must be at least "
                "the first delay",
                path, (long long)r->cap_ms, (long long)r->base_ms);
    }
    if (r->delay_count > 0)
        r->max_attempts = (int)r->delay_count + 1;
    if (attempts_n != NULL && attempts >= 1 && (r->delay_count == 0 || attempts < r->max_attempts))
        r->max_attempts = (int)attempts;
    parse_jitter(c, v, path, r);
    config_opt_duration(c, v, path, "max_age", 0, &r->max_age_ms);
    if (config_node_get(v, "stop_header") != NULL) {
        p = config_join(path, "stop_header");
        parse_stop_header(c, config_node_get(v, "stop_header"), p, s);
        free(p);
    }
}

/* rate_limit: {rate, per, burst}. */
void
config_parse_rate_limit(struct config_ctx *c, const struct config_node *v, const char *path,
                        struct config_rate_limit *rl)
{
    const struct config_node *rate_n = config_node_get(v, "rate"),
                             *burst_n = config_node_get(v, "burst");
    double rate = 0, burst = 0;
    int64_t per_ms = 1000;
    char *p;

    if (!config_want_map(c, v, path))
        return;
    config_check_keys(c, v, path, rate_limit_keys, ARRAY_COUNT(rate_limit_keys));
    config_opt_duration(c, v, path, "per", 1, &per_ms);
    p = config_join(path, "rate");
    if (rate_n == NULL) {
        config_missing(c, v, path, "rate");
    } else if (config_get_number(c, rate_n, p, 0, 1e9, "a number of requests above 0", &rate) ==
                   0 &&
               !(rate > 0)) {
        char buf[64];

        CONFIG_PROBLEM(
            c, rate_n,
            "%s: expected a number of requests above 0, got %s; hint: leave rate_limit out "
            "for no limit",
            p, config_node_show(rate_n, buf, sizeof(buf)));
        rate = 0;
    }
    free(p);
    burst = rate >= 1 ? rate : 1;
    if (burst_n != NULL) {
        p = config_join(path, "burst");
        (void)config_get_number(c, burst_n, p, 1, 1e9, "a number of at least 1", &burst);
        free(p);
    }
    if (rate > 0) {
        rl->rate_per_s = rate * 1000.0 / (double)per_ms;
        rl->burst = burst;
    }
}

/*
 * A non-empty list of HTTP statuses 400..599 at v into *out and *count
 * (what they held is freed); example is the hint's list ("[403]").
 */
void
config_parse_status_list(struct config_ctx *c, const struct config_node *v, const char *path,
                         const char *example, int **out, size_t *count)
{
    if (v->kind != CONFIG_NODE_SEQUENCE || v->kid_count == 0) {
        char buf[64];

        CONFIG_PROBLEM(c, v, "%s: expected a list of HTTP status codes, got %s; hint: %s", path,
                       config_node_show(v, buf, sizeof(buf)), example);
        return;
    }
    free(*out);
    *out = xcalloc(v->kid_count, sizeof(**out));
    *count = 0;
    for (size_t i = 0; i < v->kid_count; i++) {
        char *p = xasprintf("%s[%zu]", path, i);
        int64_t code;

        if (config_get_int(c, v->kids[i], p, (struct config_range){400, 599}, &code) == 0)
            (*out)[(*count)++] = (int)code;
        free(p);
    }
}

/* rate_limited_status: [403, ...] — answers that mean "rate limited". */
void
config_parse_limited_status(struct config_ctx *c, const struct config_node *v, const char *path,
                            struct config_rate_limit *rl)
{
    config_parse_status_list(c, v, path, "[403]", &rl->limited_status, &rl->limited_status_count);
}

/* breaker: off, or {failures, failure_rate, min_requests, window, cooldown}. */
void
config_parse_breaker(struct config_ctx *c, const struct config_node *v, const char *path,
                     struct config_system *s)
{
    struct breaker_policy *b = &s->breaker;
    int64_t failures = b->failures_to_open, min_requests = b->min_requests;
    char buf[64], *p;

    if (v->kind == CONFIG_NODE_SCALAR && !v->is_quoted &&
        (strcmp(v->value, "off") == 0 || strcmp(v->value, "false") == 0)) {
        s->breaker_enabled = 0;
        return;
    }
    if (v->kind != CONFIG_NODE_MAPPING) {
        CONFIG_PROBLEM(c, v, "%s: expected a mapping or off, got %s", path,
                       config_node_show(v, buf, sizeof(buf)));
        return;
    }
    config_check_keys(c, v, path, breaker_keys, ARRAY_COUNT(breaker_keys));
    config_opt_int(c, v, path, "failures", (struct config_range){0, INT_MAX}, &failures);
    b->failures_to_open = (int)failures;
    if (config_node_get(v, "failure_rate") != NULL) {
        p = config_join(path, "failure_rate");
        (void)config_get_number(c, config_node_get(v, "failure_rate"), p, 0, 1,
                                "a number from 0 to 1", &b->failure_rate);
        free(p);
    }
    config_opt_int(c, v, path, "min_requests", (struct config_range){1, INT_MAX}, &min_requests);
    b->min_requests = (int)min_requests;
    config_opt_duration(c, v, path, "window", BREAKER_BUCKETS, &b->window_ms);
    config_opt_duration(c, v, path, "cooldown", 0, &b->cooldown_ms);
}

/* delete_guard: off, or {max_count, max_share, min_count, window}. */
void
config_parse_delete_guard(struct config_ctx *c, const struct config_node *v, const char *path,
                          struct config_system *s)
{
    char buf[64], *p;

    if (v->kind == CONFIG_NODE_SCALAR && !v->is_quoted &&
        (strcmp(v->value, "off") == 0 || strcmp(v->value, "false") == 0)) {
        s->delete_guard_enabled = 0;
        return;
    }
    if (v->kind != CONFIG_NODE_MAPPING) {
        CONFIG_PROBLEM(c, v, "%s: expected a mapping or off, got %s", path,
                       config_node_show(v, buf, sizeof(buf)));
        return;
    }
    config_check_keys(c, v, path, delete_guard_keys, ARRAY_COUNT(delete_guard_keys));
    config_opt_int(c, v, path, "max_count", (struct config_range){0, INT32_MAX},
                   &s->delete_guard_max_count);
    if (config_node_get(v, "max_share") != NULL) {
        p = config_join(path, "max_share");
        (void)config_get_share(c, config_node_get(v, "max_share"), p, &s->delete_guard_max_share);
        free(p);
    }
    config_opt_int(c, v, path, "min_count", (struct config_range){0, INT32_MAX},
                   &s->delete_guard_min_count);
    config_opt_duration(c, v, path, "window", 1, &s->delete_guard_window_ms);
}
