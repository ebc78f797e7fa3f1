/* SPDX-License-Identifier: MIT */
/*
 * Counters, gauges and histograms with labels, rendered in Prometheus'
 * text exposition format (version 0.0.4).
 *
 * A registry holds families, made once at startup (metrics_counter() and
 * the others), each with up to METRICS_MAX_LABELS label names. A series,
 * one set of label values, is made on its first use. Every call is safe
 * from any thread: one mutex guards the registry, and an update is a few
 * comparisons and an add, so the writer's hot path stays cheap.
 *
 * Names follow Prometheus' conventions: concord_ prefix, base units
 * (seconds, bytes), _total for counters.
 */
#ifndef CONCORD_CORE_METRICS_H
#define CONCORD_CORE_METRICS_H

#include <stddef.h>

#define METRICS_MAX_LABELS 3

struct metrics;
struct metric_family;

/* A new, empty registry. Never NULL. */
struct metrics *metrics_new(void);
/* Release a registry, its families and series. Accepts NULL. */
void metrics_free(struct metrics *m);

/*
 * A family: name, help text, and its label names, comma-separated ("" for
 * none: "system,collection"). The strings are copied. A histogram takes
 * its bucket upper bounds, ascending (+Inf is added). Families are made
 * before the registry is shared between threads.
 */
struct metric_family *metrics_counter(struct metrics *m, const char *name, const char *help,
                                      const char *labels);
struct metric_family *metrics_gauge(struct metrics *m, const char *name, const char *help,
                                    const char *labels);
struct metric_family *metrics_histogram(struct metrics *m, const char *name, const char *help,
                                        const char *labels, const double *buckets, size_t count);

/*
 * Update the series of f with the given label values (as many as f has
 * label names; NULL reads as ""): add v to a counter (v >= 0) or a gauge,
 * set a gauge, or observe v in a histogram. A NULL f does nothing.
 */
void metric_add(struct metric_family *f, double v, const char *const *labels);
void metric_set(struct metric_family *f, double v, const char *const *labels);
void metric_observe(struct metric_family *f, double v, const char *const *labels);

/* Forget every series of a gauge family (before setting it afresh). */
void metric_clear(struct metric_family *f);

/* The value of a counter's or gauge's series (0 when it has none): for tests. */
double metric_value(struct metric_family *f, const char *const *labels);

/* The sum of a counter's or gauge's series whose label number label is
 * value (NULL: every series). */
double metric_sum(struct metric_family *f, size_t label, const char *value);

/* Everything, in the text exposition format: a malloc()ed string. */
char *metrics_render(struct metrics *m);

#endif
