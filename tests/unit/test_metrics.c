/* SPDX-License-Identifier: MIT */

/* tests/unit/test_metrics.c — the metrics registry and its Prometheus text (src/core/metrics.c). */
/* link: core */

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/metrics.h"

static void
counters_and_gauges_render_with_escaped_labels(void)
{
    struct metrics *m = metrics_new();
    struct metric_family *c = metrics_counter(m, "concord_x_total", "Things.", "system,collection");
    struct metric_family *g = metrics_gauge(m, "concord_depth", "Depth.", "system");
    struct metric_family *n = metrics_gauge(m, "concord_up", "Up.", "");
    char *text;

    metric_add(c, 1, (const char *[]){"crm", "crm.contacts"});
    metric_add(c, 2, (const char *[]){"crm", "crm.contacts"});
    metric_add(c, -5, (const char *[]){"crm", "crm.contacts"}); /* a counter never goes down */
    metric_add(c, 1, (const char *[]){"a\"b\\c\nd", NULL});
    metric_set(g, 7, (const char *[]){"shop"});
    metric_set(g, 4, (const char *[]){"shop"});
    metric_set(n, 1, NULL);
    CHECK(metric_value(c, (const char *[]){"crm", "crm.contacts"}) == 3);
    text = metrics_render(m);
    CHECK(strstr(text, "# HELP concord_x_total Things.\n# TYPE concord_x_total counter\n") != NULL);
    CHECK(strstr(text, "concord_x_total{system=\"crm\",collection=\"crm.contacts\"} 3\n") != NULL);
    CHECK(strstr(text, "concord_x_total{system=\"a\\\"b\\\\c\\nd\",collection=\"\"} 1\n") != NULL);
    CHECK(strstr(text, "concord_depth{system=\"shop\"} 4\n") != NULL);
    CHECK(strstr(text, "concord_up 1\n") != NULL);
    free(text);
    metric_clear(g);
    text = metrics_render(m);
    CHECK(strstr(text, "concord_depth{") == NULL);
    free(text);
    metrics_free(m);
}

static void
histograms_are_cumulative_with_sum_and_count(void)
{
    static const double bounds[] = {0.1, 1, 10};
    struct metrics *m = metrics_new();
    struct metric_family *h =
        metrics_histogram(m, "concord_latency_seconds", "Latency.", "system", bounds, 3);
    const char *crm[] = {"crm"};
    char *text;

    metric_observe(h, 0.05, crm);
    metric_observe(h, 0.1, crm); /* le is inclusive */
    metric_observe(h, 0.5, crm);
    metric_observe(h, 50, crm);
    text = metrics_render(m);
    CHECK(strstr(text, "concord_latency_seconds_bucket{system=\"crm\",le=\"0.1\"} 2\n") != NULL);
    CHECK(strstr(text, "concord_latency_seconds_bucket{system=\"crm\",le=\"1\"} 3\n") != NULL);
    CHECK(strstr(text, "concord_latency_seconds_bucket{system=\"crm\",le=\"10\"} 3\n") != NULL);
    CHECK(strstr(text, "concord_latency_seconds_bucket{system=\"crm\",le=\"+Inf\"} 4\n") != NULL);
    CHECK(strstr(text, "concord_latency_seconds_sum{system=\"crm\"} 50.65\n") != NULL);
    CHECK(strstr(text, "concord_latency_seconds_count{system=\"crm\"} 4\n") != NULL);
    free(text);
    metrics_free(m);
}

struct hammer {
    struct metric_family *c;
    int n;
};

static void *
hammer(void *arg)
{
    struct hammer *h = arg;

    for (int i = 0; i < h->n; i++)
        metric_add(h->c, 1, (const char *[]){i % 2 ? "a" : "b"});
    return NULL;
}

static void
updates_from_threads_all_count(void)
{
    struct metrics *m = metrics_new();
    struct hammer h = {metrics_counter(m, "concord_n_total", "N.", "k"), 20000};
    pthread_t t[4];

    for (int i = 0; i < 4; i++)
        CHECK_EQ(pthread_create(&t[i], NULL, hammer, &h), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK(metric_value(h.c, (const char *[]){"a"}) == 40000);
    CHECK(metric_value(h.c, (const char *[]){"b"}) == 40000);
    metrics_free(m);
}

const struct check_case check_cases[] = {
    CHECK_CASE(counters_and_gauges_render_with_escaped_labels),
    CHECK_CASE(histograms_are_cumulative_with_sum_and_count),
    CHECK_CASE(updates_from_threads_all_count),
    {0},
};
