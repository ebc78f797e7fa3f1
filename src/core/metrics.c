/* SPDX-License-Identifier: MIT */

/*
 * The metrics registry: families in a list, series in a list per family
 * (a few per system and collection), all under one mutex. Rendering
 * follows https://prometheus.io/docs/instrumenting/exposition_formats/.
 */

#include "core/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/compiler.h"
#include "core/xmalloc.h"

enum metric_type {
    METRIC_COUNTER = 1,
    METRIC_GAUGE,
    METRIC_HISTOGRAM,
};

struct series {
    struct series *next;
    char *values[METRICS_MAX_LABELS];
    double value;    /* counter, gauge; a histogram's sum */
    double count;    /* a histogram's observations */
    double *buckets; /* a histogram's counts per bucket (not cumulative) */
};

struct metric_family {
    struct metric_family *next;
    struct metrics *m;
    enum metric_type type;
    char *name;
    char *help;
    char *labels[METRICS_MAX_LABELS];
    size_t label_count;
    double *bounds;
    size_t bound_count;
    struct series *series, **tail;
};

struct metrics {
    pthread_mutex_t mu;
    struct metric_family *families, **tail;
};

struct metrics *
metrics_new(void)
{
    struct metrics *m = xcalloc(1, sizeof(*m));

    pthread_mutex_init(&m->mu, NULL);
    m->tail = &m->families;
    return m;
}

static void
series_free(struct series *s, size_t labels)
{
    for (size_t i = 0; i < labels; i++)
        free(s->values[i]);
    free(s->buckets);
    free(s);
}

void
metrics_free(struct metrics *m)
{
    if (m == NULL)
        return;
    while (m->families != NULL) {
        struct metric_family *f = m->families;

        m->families = f->next;
        while (f->series != NULL) {
            struct series *s = f->series;

            f->series = s->next;
            series_free(s, f->label_count);
        }
        for (size_t i = 0; i < f->label_count; i++)
            free(f->labels[i]);
        free(f->name);
        free(f->help);
        free(f->bounds);
        free(f);
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static struct metric_family *
family(struct metrics *m, enum metric_type type, const char *name, const char *help,
       const char *labels)
{
    struct metric_family *f = xcalloc(1, sizeof(*f));

    f->m = m;
    f->type = type;
    f->name = xstrdup(name);
    f->help = xstrdup(help);
    f->tail = &f->series;
    for (const char *p = labels; p != NULL && *p != '\0' && f->label_count < METRICS_MAX_LABELS;) {
        size_t len = strcspn(p, ",");

        f->labels[f->label_count++] = xstrndup(p, len);
        p += len + (p[len] == ',');
    }
    pthread_mutex_lock(&m->mu);
    *m->tail = f;
    m->tail = &f->next;
    pthread_mutex_unlock(&m->mu);
    return f;
}

struct metric_family *
metrics_counter(struct metrics *m, const char *name, const char *help, const char *labels)
{
    return family(m, METRIC_COUNTER, name, help, labels);
}

struct metric_family *
metrics_gauge(struct metrics *m, const char *name, const char *help, const char *labels)
{
    return family(m, METRIC_GAUGE, name, help, labels);
}

struct metric_family *
metrics_histogram(struct metrics *m, const char *name, const char *help, const char *labels,
                  const double *buckets, size_t count)
{
    struct metric_family *f = family(m, METRIC_HISTOGRAM, name, help, labels);

    f->bounds = xcalloc(count + 1, sizeof(*f->bounds));
    memcpy(f->bounds, buckets, count * sizeof(*buckets));
    f->bound_count = count;
    return f;
}

/* The series of f with these label values, made when new. Under m->mu. */
static struct series *
find(struct metric_family *f, const char *const *labels)
{
    struct series *s;

    for (s = f->series; s != NULL; s = s->next) {
        size_t i = 0;

        while (i < f->label_count &&
               strcmp(s->values[i], labels != NULL && labels[i] != NULL ? labels[i] : "") == 0)
            i++;
        if (i == f->label_count)
            return s;
    }
    s = xcalloc(1, sizeof(*s));
    for (size_t i = 0; i < f->label_count; i++)
        s->values[i] = xstrdup(labels != NULL && labels[i] != NULL ? labels[i] : "");
    if (f->type == METRIC_HISTOGRAM)
        s->buckets = xcalloc(f->bound_count + 1, sizeof(*s->buckets));
    *f->tail = s;
    f->tail = &s->next;
    return s;
}

void
metric_add(struct metric_family *f, double v, const char *const *labels)
{
    if (f == NULL || (f->type == METRIC_COUNTER && !(v >= 0)))
        return;
    pthread_mutex_lock(&f->m->mu);
    find(f, labels)->value += v;
    pthread_mutex_unlock(&f->m->mu);
}

void
metric_set(struct metric_family *f, double v, const char *const *labels)
{
    if (f == NULL)
        return;
    pthread_mutex_lock(&f->m->mu);
    find(f, labels)->value = v;
    pthread_mutex_unlock(&f->m->mu);
}

void
metric_observe(struct metric_family *f, double v, const char *const *labels)
{
    struct series *s;
    size_t i = 0;

    if (f == NULL || f->type != METRIC_HISTOGRAM || isnan(v))
        return;
    pthread_mutex_lock(&f->m->mu);
    s = find(f, labels);
    while (i < f->bound_count && v > f->bounds[i])
        i++;
    s->buckets[i] += 1;
    s->count += 1;
    s->value += v;
    pthread_mutex_unlock(&f->m->mu);
}

void
metric_clear(struct metric_family *f)
{
    if (f == NULL)
        return;
    pthread_mutex_lock(&f->m->mu);
    while (f->series != NULL) {
        struct series *s = f->series;

        f->series = s->next;
        series_free(s, f->label_count);
    }
    f->tail = &f->series;
    pthread_mutex_unlock(&f->m->mu);
}

double
metric_value(struct metric_family *f, const char *const *labels)
{
    double v;

    if (f == NULL)
        return 0;
    pthread_mutex_lock(&f->m->mu);
    v = find(f, labels)->value;
    pthread_mutex_unlock(&f->m->mu);
    return v;
}

double
metric_sum(struct metric_family *f, size_t label, const char *value)
{
    double sum = 0;

    if (f == NULL)
        return 0;
    pthread_mutex_lock(&f->m->mu);
    for (const struct series *s = f->series; s != NULL; s = s->next) {
        if (value == NULL || (label < f->label_count && strcmp(s->values[label], value) == 0))
            sum += s->value;
    }
    pthread_mutex_unlock(&f->m->mu);
    return sum;
}

/* A label value, escaped: backslash, double quote and line feed. */
static int
put_escaped(struct buf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        int rc = *s == '\\'   ? buf_printf(b, "\\\\")
                 : *s == '"'  ? buf_printf(b, "\\\"")
                 : *s == '\n' ? buf_printf(b, "\\n")
                              : buf_append(b, s, 1);

        if (rc == -1)
            return -1;
    }
    return 0;
}

/* {a="x",b="y"[,le="0.5"]}, or nothing without labels. */
static int
put_labels(struct buf *b, const struct metric_family *f, const struct series *s, const char *le)
{
    if (f->label_count == 0 && le == NULL)
        return 0;
    if (buf_printf(b, "{") == -1)
        return -1;
    for (size_t i = 0; i < f->label_count; i++) {
        if (buf_printf(b, "%s%s=\"", i > 0 ? "," : "", f->labels[i]) == -1 ||
            put_escaped(b, s->values[i]) == -1 || buf_printf(b, "\"") == -1)
            return -1;
    }
    if (le != NULL && buf_printf(b, "%sle=\"%s\"", f->label_count > 0 ? "," : "", le) == -1)
        return -1;
    return buf_printf(b, "}");
}

static int
put_number(struct buf *b, double v)
{
    if (isinf(v))
        return buf_printf(b, v > 0 ? "+Inf" : "-Inf");
    if (v == (double)(long long)v && fabs(v) < 1e15)
        return buf_printf(b, "%lld", (long long)v);
    return buf_printf(b, "%.9g", v);
}

static int
render_family(struct buf *b, const struct metric_family *f)
{
    static const char *const types[] = {"", "counter", "gauge", "histogram"};

    if (buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, types[f->type]) ==
        -1)
        return -1;
    for (const struct series *s = f->series; s != NULL; s = s->next) {
        if (f->type != METRIC_HISTOGRAM) {
            if (buf_printf(b, "%s", f->name) == -1 || put_labels(b, f, s, NULL) == -1 ||
                buf_printf(b, " ") == -1 || put_number(b, s->value) == -1 ||
                buf_printf(b, "\n") == -1)
                return -1;
            continue;
        }
        double cum = 0;

        for (size_t i = 0; i <= f->bound_count; i++) {
            char le[40];

            cum += s->buckets[i];
            if (i < f->bound_count)
                (void)snprintf(le, sizeof(le), "%.9g", f->bounds[i]);
            else
                (void)snprintf(le, sizeof(le), "+Inf");
            if (buf_printf(b, "%s_bucket", f->name) == -1 || put_labels(b, f, s, le) == -1 ||
                buf_printf(b, " ") == -1 || put_number(b, cum) == -1 || buf_printf(b, "\n") == -1)
                return -1;
        }
        if (buf_printf(b, "%s_sum", f->name) == -1 || put_labels(b, f, s, NULL) == -1 ||
            buf_printf(b, " ") == -1 || put_number(b, s->value) == -1 ||
            buf_printf(b, "\n%s_count", f->name) == -1 || put_labels(b, f, s, NULL) == -1 ||
            buf_printf(b, " ") == -1 || put_number(b, s->count) == -1 || buf_printf(b, "\n") == -1)
            return -1;
    }
    return 0;
}

char *
metrics_render(struct metrics *m)
{
    struct buf b;

    buf_init(&b, 64 * 1024 * 1024);
    pthread_mutex_lock(&m->mu);
    for (const struct metric_family *f = m->families; f != NULL; f = f->next) {
        if (render_family(&b, f) == -1)
            break;
    }
    pthread_mutex_unlock(&m->mu);
    return buf_take(&b);
}
