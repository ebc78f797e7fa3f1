/* SPDX-License-Identifier: MIT */

/*
 * YAML bytes to a node tree. libyaml's event parser does the lexing; this
 * file builds plain scalar/mapping/sequence nodes that remember where they
 * stood (line:col, 1-based) and whether a scalar was quoted, so the schema
 * walk (config_schema.c and the files it calls) can point at the exact
 * spot of every problem.
 *
 * It deliberately knows nothing of concord's keys. It refuses what the
 * schema could not report well: aliases (a shared node would have two
 * positions), duplicate keys, and nesting deeper than CONFIG_MAX_DEPTH (the
 * tree is walked recursively). Scalars are converted to JSON here too
 * (config_node_json), because that is a matter of YAML's rules alone.
 */

#include "config/config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <yaml.h>

#include "config/config_int.h"
#include "core/xmalloc.h"

struct parser {
    yaml_parser_t yp;
    const char *text;
    size_t len;
    struct config_diags *diags;
};

static int
mark_int(size_t v)
{
    return v >= 2147483646U ? 2147483646 : (int)v + 1;
}

/* libyaml's reader errors carry a byte offset, not a line. */
static void
offset_pos(const struct parser *ps, size_t offset, int *line, int *col)
{
    size_t l = 0, c = 0;

    for (size_t i = 0; i < offset && i < ps->len; i++) {
        if (ps->text[i] == '\n') {
            l++;
            c = 0;
        } else {
            c++;
        }
    }
    *line = mark_int(l);
    *col = mark_int(c);
}

static void
syntax_error(struct parser *ps)
{
    const yaml_parser_t *p = &ps->yp;
    const char *problem = p->problem != NULL ? p->problem : "cannot be parsed";
    int line, col;

    if (p->error == YAML_MEMORY_ERROR) {
        config_diag_add(ps->diags, 1, 1, "YAML: out of memory");
        return;
    }
    if (p->error == YAML_READER_ERROR) {
        offset_pos(ps, p->problem_offset, &line, &col);
        config_diag_add(ps->diags, line, col, "YAML syntax error: %s; hint: save the file as UTF-8",
                        problem);
        return;
    }
    line = mark_int(p->problem_mark.line);
    col = mark_int(p->problem_mark.column);
    if (p->context != NULL)
        config_diag_add(ps->diags, line, col, "YAML syntax error: %s %s (line %d)", problem,
                        p->context, mark_int(p->context_mark.line));
    else
        config_diag_add(ps->diags, line, col, "YAML syntax error: %s", problem);
}

static int
next_event(struct parser *ps, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&ps->yp, ev)) {
        syntax_error(ps);
        return -1;
    }
    return 0;
}

static struct config_node *
node_new(enum config_node_kind kind, const yaml_event_t *ev)
{
    struct config_node *n = xcalloc(1, sizeof(*n));

    n->kind = kind;
    n->line = mark_int(ev->start_mark.line);
    n->col = mark_int(ev->start_mark.column);
    return n;
}

static void
node_push(struct config_node *parent, struct config_node *kid, size_t *cap)
{
    if (parent->kid_count == *cap) {
        *cap = *cap == 0 ? 8 : *cap * 2;
        /* An array of pointers. NOLINTNEXTLINE(bugprone-sizeof-expression) */
        parent->kids = xreallocarray(parent->kids, *cap, sizeof(*parent->kids));
    }
    parent->kids[parent->kid_count++] = kid;
}

void
config_node_free(struct config_node *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->kid_count; i++)
        config_node_free(n->kids[i]);
    free(n->kids);
    free(n->value);
    free(n);
}

static int
cmp_key(const void *a, const void *b, void *arg)
{
    const struct config_node *const *keys = arg;
    size_t ia = *(const size_t *)a, ib = *(const size_t *)b;
    int c = strcmp(keys[ia]->value, keys[ib]->value);

    if (c != 0)
        return c;
    return ia < ib ? -1 : ia > ib;
}

/*
 * A key given twice would silently lose one value; YAML 1.2 forbids it.
 * Sorting finds the pairs in n log n, so a fuzzer's 10000 keys stay cheap.
 */
static int
check_duplicates(struct parser *ps, const struct config_node *map)
{
    size_t n = map->kid_count / 2;
    size_t *idx;
    const struct config_node **keys;
    int found = 0;

    if (n < 2)
        return 0;
    idx = xcalloc(n, sizeof(*idx));
    /* An array of pointers. NOLINTNEXTLINE(bugprone-sizeof-expression) */
    keys = xcalloc(n, sizeof(*keys));
    for (size_t i = 0; i < n; i++) {
        idx[i] = i;
        keys[i] = map->kids[2 * i];
    }
    qsort_r(idx, n, sizeof(*idx), cmp_key, keys);
    for (size_t i = 1; i < n; i++) {
        const struct config_node *first = keys[idx[i - 1]], *again = keys[idx[i]];

        if (strcmp(first->value, again->value) != 0)
            continue;
        config_diag_add(ps->diags, again->line, again->col,
                        "duplicate key \"%s\"; hint: it was first given at line %d", again->value,
                        first->line);
        found = 1;
    }
    free(keys);
    free(idx);
    return found ? -1 : 0;
}

static struct config_node *parse_node(struct parser *ps, yaml_event_t *ev, int depth);

/* The events after a MAPPING_START or SEQUENCE_START, up to its end. */
static int
parse_kids(struct parser *ps, struct config_node *n, int depth)
{
    yaml_event_type_t end =
        n->kind == CONFIG_NODE_MAPPING ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
    size_t cap = 0;

    for (;;) {
        yaml_event_t ev;
        struct config_node *kid;

        if (next_event(ps, &ev) == -1)
            return -1;
        if (ev.type == end) {
            yaml_event_delete(&ev);
            break;
        }
        kid = parse_node(ps, &ev, depth + 1);
        yaml_event_delete(&ev);
        if (kid == NULL)
            return -1;
        if (n->kind == CONFIG_NODE_MAPPING && n->kid_count % 2 == 0 &&
            kid->kind != CONFIG_NODE_SCALAR) {
            config_diag_add(ps->diags, kid->line, kid->col,
                            "a mapping key must be a plain string, not a %s",
                            kid->kind == CONFIG_NODE_MAPPING ? "mapping" : "list");
            config_node_free(kid);
            return -1;
        }
        node_push(n, kid, &cap);
    }
    if (n->kind == CONFIG_NODE_MAPPING)
        return check_duplicates(ps, n);
    return 0;
}

/* Build the node that starts with ev (borrowed; the caller deletes it). */
static struct config_node *
parse_node(struct parser *ps, yaml_event_t *ev, int depth)
{
    struct config_node *n;
    int line = mark_int(ev->start_mark.line), col = mark_int(ev->start_mark.column);

    if (depth > CONFIG_MAX_DEPTH) {
        config_diag_add(ps->diags, line, col, "nested deeper than %d levels", CONFIG_MAX_DEPTH);
        return NULL;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        n = node_new(CONFIG_NODE_SCALAR, ev);
        n->len = ev->data.scalar.length;
        n->value = xstrndup((const char *)ev->data.scalar.value, n->len);
        n->is_quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        if (strlen(n->value) != n->len) {
            config_diag_add(ps->diags, line, col, "a NUL character is not allowed in a value");
            config_node_free(n);
            return NULL;
        }
        return n;
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT:
        n = node_new(
            ev->type == YAML_MAPPING_START_EVENT ? CONFIG_NODE_MAPPING : CONFIG_NODE_SEQUENCE, ev);
        if (parse_kids(ps, n, depth) == -1) {
            config_node_free(n);
            return NULL;
        }
        return n;
    case YAML_ALIAS_EVENT:
        config_diag_add(ps->diags, line, col,
                        "YAML aliases (*name) are not supported; hint: write the value out");
        return NULL;
    default:
        config_diag_add(ps->diags, line, col, "YAML: unexpected event");
        return NULL;
    }
}

/* STREAM_START, DOCUMENT_START, the root node, DOCUMENT_END, STREAM_END. */
static struct config_node *
parse_stream(struct parser *ps)
{
    yaml_event_t ev;
    struct config_node *root = NULL;

    if (next_event(ps, &ev) == -1)
        return NULL;
    yaml_event_delete(&ev); /* STREAM_START */
    if (next_event(ps, &ev) == -1)
        return NULL;
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        config_diag_add(ps->diags, 1, 1,
                        "the config is empty; hint: it needs at least systems: and models:");
        return NULL;
    }
    yaml_event_delete(&ev); /* DOCUMENT_START */
    if (next_event(ps, &ev) == -1)
        return NULL;
    root = parse_node(ps, &ev, 0);
    yaml_event_delete(&ev);
    if (root == NULL)
        return NULL;
    if (next_event(ps, &ev) == -1)
        goto fail;
    yaml_event_delete(&ev); /* DOCUMENT_END */
    if (next_event(ps, &ev) == -1)
        goto fail;
    if (ev.type != YAML_STREAM_END_EVENT) {
        config_diag_add(ps->diags, mark_int(ev.start_mark.line), mark_int(ev.start_mark.column),
                        "a second YAML document; hint: a config is one document, remove the ---");
        yaml_event_delete(&ev);
        goto fail;
    }
    yaml_event_delete(&ev);
    return root;

fail:
    config_node_free(root);
    return NULL;
}

struct config_node *
config_yaml_parse(const char *text, size_t len, struct config_diags *d)
{
    struct parser ps = {.text = text, .len = len, .diags = d};
    struct config_node *root;

    if (!yaml_parser_initialize(&ps.yp)) {
        config_diag_add(d, 1, 1, "YAML: out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&ps.yp, (const unsigned char *)text, len);
    root = parse_stream(&ps);
    yaml_parser_delete(&ps.yp);
    return root;
}

/* YAML 1.2 core schema numbers, without .inf and .nan (JSON has neither). */
static int
plain_number(const char *s, double *out)
{
    const char *p = s;
    char *end;
    int digits = 0;

    if (*p == '-' || *p == '+')
        p++;
    while (*p >= '0' && *p <= '9') {
        p++;
        digits++;
    }
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            p++;
            digits++;
        }
    }
    if (digits == 0)
        return 0;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return 0;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p != '\0')
        return 0;
    errno = 0;
    *out = strtod(s, &end);
    return *end == '\0' && isfinite(*out);
}

static cJSON *
scalar_json(const struct config_node *n)
{
    double num;

    if (!n->is_quoted) {
        if (strcmp(n->value, "true") == 0)
            return cJSON_CreateTrue();
        if (strcmp(n->value, "false") == 0)
            return cJSON_CreateFalse();
        if (n->value[0] == '\0' || strcmp(n->value, "null") == 0 || strcmp(n->value, "~") == 0)
            return cJSON_CreateNull();
        if (plain_number(n->value, &num))
            return cJSON_CreateNumber(num);
    }
    return cJSON_CreateString(n->value);
}

cJSON *
config_node_json(const struct config_node *n)
{
    cJSON *j;

    if (n->kind == CONFIG_NODE_SCALAR)
        j = scalar_json(n);
    else if (n->kind == CONFIG_NODE_MAPPING)
        j = cJSON_CreateObject();
    else
        j = cJSON_CreateArray();
    if (j == NULL)
        abort(); /* out of memory: the xmalloc policy (STYLE.md B.4 rule 6) */
    for (size_t i = 0; n->kind == CONFIG_NODE_MAPPING && i + 1 < n->kid_count; i += 2)
        cJSON_AddItemToObject(j, n->kids[i]->value, config_node_json(n->kids[i + 1]));
    for (size_t i = 0; n->kind == CONFIG_NODE_SEQUENCE && i < n->kid_count; i++)
        cJSON_AddItemToArray(j, config_node_json(n->kids[i]));
    return j;
}
