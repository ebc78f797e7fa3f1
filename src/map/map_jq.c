/* SPDX-License-Identifier: MIT */

/*
 * The libjq 1.6 wrapper of map.h: compile a program once, run it on many
 * records.
 *
 * Values cross between cJSON and jv by walking the trees, not by printing
 * and parsing text: a map runs jq on every record, and the text round trip
 * would cost more than the program. Numbers pass through a double, which is
 * what jq computes with anyway.
 *
 * jq's reference counting: most jv functions consume (free) their jv
 * arguments; jv_get_kind(), jv_number_value(), jv_string_value() and the
 * object iterators do not. Every function here that takes a jv by value
 * consumes it, so the rule "each jv is passed on or freed exactly once"
 * can be checked line by line.
 */

#include "map/map.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <jq.h>

#include "core/error.h"
#include "core/xmalloc.h"
#include "map/map_int.h"

/* Bounds on what one jq output may become, so a program cannot make
 * concord build an unbounded tree (STYLE.md B.5: jq outputs are bounded). */
#define MAP_JQ_MAX_DEPTH 512
#define MAP_JQ_MAX_NODES 1000000
#define MAP_JQ_MAX_BYTES (16u * 1024 * 1024)

/* Error texts from jq are cut to this many bytes. */
#define MAP_JQ_MSG_MAX 200

/* Segments of a condition's path that the native test follows. */
#define MAP_JQ_FAST_MAX_SEGMENTS 8

struct map_jq {
    jq_state *jq;
    char msg[MAP_JQ_MSG_MAX + 1]; /* the first message libjq reported */
    int has_msg;
    /* A program of the form `.a.b == "text"`, the usual routing and delete
     * condition, is tested natively (see fast_test()): jq would first copy
     * the whole record into its own values. */
    char *fast_text;                               /* NULL: no native test */
    char *fast_segments[MAP_JQ_FAST_MAX_SEGMENTS]; /* "a", "b" */
    size_t fast_segment_count;
};

/* Copy text into out: the first line, without jq's "jq: error: " prefix and
 * shell hint, cut to MAP_JQ_MSG_MAX bytes. */
static void
tidy_message(const char *text, char out[MAP_JQ_MSG_MAX + 1])
{
    static const char prefix[] = "jq: error: ";
    static const char hint[] = " (Unix shell quoting issues?)";
    size_t len;
    char *cut;

    if (strncmp(text, prefix, sizeof(prefix) - 1) == 0)
        text += sizeof(prefix) - 1;
    len = strcspn(text, "\n");
    if (len > MAP_JQ_MSG_MAX)
        len = MAP_JQ_MSG_MAX;
    memcpy(out, text, len);
    out[len] = '\0';
    if ((cut = strstr(out, hint)) != NULL)
        memmove(cut, cut + sizeof(hint) - 1, strlen(cut + sizeof(hint) - 1) + 1);
    len = strlen(out);
    while (len > 0 && (out[len - 1] == ':' || out[len - 1] == ' '))
        out[--len] = '\0';
}

/* Turn a message jv (a string, an error with a message, anything) into text.
 * Consumes msg. */
static void
message_text(jv msg, char out[MAP_JQ_MSG_MAX + 1])
{
    if (jv_get_kind(msg) == JV_KIND_INVALID) {
        if (!jv_invalid_has_msg(jv_copy(msg))) {
            jv_free(msg);
            (void)snprintf(out, MAP_JQ_MSG_MAX + 1, "unknown error");
            return;
        }
        msg = jv_invalid_get_msg(msg);
    }
    if (jv_get_kind(msg) == JV_KIND_STRING) {
        tidy_message(jv_string_value(msg), out);
        jv_free(msg);
        return;
    }
    msg = jv_dump_string(msg, 0);
    tidy_message(jv_string_value(msg), out);
    jv_free(msg);
}

/* libjq's error callback: keep the first message, print nothing. */
static void
on_jq_error(void *data, jv msg)
{
    struct map_jq *q = data;

    if (q->has_msg) {
        jv_free(msg);
        return;
    }
    message_text(msg, q->msg);
    q->has_msg = 1;
}

/* libjq's input callback (the `input` builtin): there is one input only.
 * Without a callback libjq 1.6 crashes on `input`. */
static jv
on_jq_input(jq_state *jq, void *data)
{
    (void)jq;
    (void)data;
    return jv_invalid();
}

/* libjq's debug callback (the `debug` builtin): stay silent. */
static void
on_jq_debug(void *data, jv msg)
{
    (void)data;
    jv_free(msg);
}

static int
is_ident_char(char c, int first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (!first && c >= '0' && c <= '9');
}

static const char *
skip_space(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/*
 * Recognise `.a.b == "text"` (identifiers only, printable ASCII without escapes)
 * and keep its parts in q for fast_test(). Anything else stays with jq.
 */
static void
fast_compile(struct map_jq *q, const char *program)
{
    const char *p = skip_space(program), *start;
    size_t n = 0;

    while (*p == '.') {
        p++;
        start = p;
        if (!is_ident_char(*p, 1) || n == MAP_JQ_FAST_MAX_SEGMENTS)
            goto no;
        while (is_ident_char(*p, 0))
            p++;
        q->fast_segments[n++] = xstrndup(start, (size_t)(p - start));
    }
    p = skip_space(p);
    if (n == 0 || p[0] != '=' || p[1] != '=')
        goto no;
    p = skip_space(p + 2);
    if (*p++ != '"')
        goto no;
    start = p;
    /* ASCII only: jq would mend invalid UTF-8, and then bytes no longer compare. */
    while (*p != '\0' && *p != '"' && *p != '\\' && *p >= 0x20 && *p < 0x7f)
        p++;
    if (*p != '"' || *skip_space(p + 1) != '\0')
        goto no;
    q->fast_text = xstrndup(start, (size_t)(p - start));
    q->fast_segment_count = n;
    return;
no:
    for (size_t i = 0; i < n; i++)
        free(q->fast_segments[i]);
    q->fast_segment_count = 0;
}

/* The member of obj named key as jq sees it: the last of duplicates. */
static const cJSON *
last_member(const cJSON *obj, const char *key)
{
    const cJSON *hit = NULL;

    for (const cJSON *x = obj->child; x != NULL; x = x->next) {
        if (x->string != NULL && strcmp(x->string, key) == 0)
            hit = x;
    }
    return hit;
}

/*
 * The native test of `.a.b == "text"`: 1 or 0 as jq would answer, or -1
 * where jq could answer differently (it would fail on indexing a string,
 * say), so the caller asks jq.
 */
static int
fast_test(const struct map_jq *q, const cJSON *input)
{
    const cJSON *v = input;

    for (size_t i = 0; i < q->fast_segment_count; i++) {
        if (v == NULL || cJSON_IsNull(v))
            return 0; /* .a of null is null, and null is not a string */
        if (!cJSON_IsObject(v))
            return -1;
        v = last_member(v, q->fast_segments[i]);
    }
    if (v != NULL && cJSON_IsRaw(v))
        return -1;
    return cJSON_IsString(v) && v->valuestring != NULL && strcmp(v->valuestring, q->fast_text) == 0;
}

int
map_jq_new(const char *program, struct map_jq **out, struct error *err)
{
    struct map_jq *q;

    if (program == NULL)
        return error_set(err, ERROR_INVALID, "jq: no program");
    q = xcalloc(1, sizeof(*q));
    q->jq = jq_init();
    if (q->jq == NULL) {
        free(q);
        return error_set(err, ERROR_INTERNAL, "jq: cannot initialise libjq");
    }
    jq_set_error_cb(q->jq, on_jq_error, q);
    jq_set_debug_cb(q->jq, on_jq_debug, q);
    jq_set_input_cb(q->jq, on_jq_input, q);
    /* No module search path: `import` and `include` fail to compile instead
     * of tripping an assertion in libjq 1.6, and nothing is read from disk. */
    jq_set_attr(q->jq, jv_string("JQ_LIBRARY_PATH"), jv_array());
    jq_set_attr(q->jq, jv_string("JQ_ORIGIN"), jv_string("/nonexistent"));
    jq_set_attr(q->jq, jv_string("PROGRAM_ORIGIN"), jv_string("/nonexistent"));
    if (!jq_compile(q->jq, program)) {
        (void)error_set(err, ERROR_INVALID, "jq: %s",
                        q->has_msg ? q->msg : "the program does not compile");
        map_jq_free(q);
        return -1;
    }
    q->has_msg = 0;
    fast_compile(q, program);
    *out = q;
    return 0;
}

void
map_jq_free(struct map_jq *q)
{
    if (q == NULL)
        return;
    jq_teardown(&q->jq);
    for (size_t i = 0; i < q->fast_segment_count; i++)
        free(q->fast_segments[i]);
    free(q->fast_text);
    free(q);
}

/* cJSON -> jv. Returns jv_invalid() when v nests too deep. */
static jv
to_jv(const cJSON *v, int depth)
{
    if (depth > MAP_JQ_MAX_DEPTH)
        return jv_invalid();
    if (cJSON_IsNull(v) || v == NULL)
        return jv_null();
    if (cJSON_IsBool(v))
        return jv_bool(cJSON_IsTrue(v));
    if (cJSON_IsNumber(v))
        return jv_number(v->valuedouble);
    if (cJSON_IsString(v))
        return jv_string(v->valuestring);
    if (cJSON_IsRaw(v)) {
        /* An exact number written by a MAP_OUT map; jq computes in doubles. */
        jv parsed = jv_parse(v->valuestring ? v->valuestring : "null");

        if (!jv_is_valid(parsed)) {
            jv_free(parsed);
            return jv_null();
        }
        return parsed;
    }
    if (cJSON_IsArray(v)) {
        jv a = jv_array();

        for (const cJSON *x = v->child; x != NULL; x = x->next) {
            jv item = to_jv(x, depth + 1);

            if (!jv_is_valid(item)) {
                jv_free(a);
                return item;
            }
            a = jv_array_append(a, item);
        }
        return a;
    }
    if (cJSON_IsObject(v)) {
        jv o = jv_object();

        for (const cJSON *x = v->child; x != NULL; x = x->next) {
            jv item = to_jv(x, depth + 1);

            if (!jv_is_valid(item)) {
                jv_free(o);
                return item;
            }
            o = jv_object_set(o, jv_string(x->string ? x->string : ""), item);
        }
        return o;
    }
    return jv_null();
}

struct budget {
    size_t nodes;
    size_t bytes;
};

/* jv -> cJSON; consumes v. Returns NULL when the value passes the bounds. */
static cJSON *
to_cjson(jv v, int depth, struct budget *b)
{
    cJSON *out = NULL;

    if (depth > MAP_JQ_MAX_DEPTH || ++b->nodes > MAP_JQ_MAX_NODES) {
        jv_free(v);
        return NULL;
    }
    switch (jv_get_kind(v)) {
    case JV_KIND_NULL:
    case JV_KIND_INVALID:
        out = cJSON_CreateNull();
        break;
    case JV_KIND_FALSE:
        out = cJSON_CreateFalse();
        break;
    case JV_KIND_TRUE:
        out = cJSON_CreateTrue();
        break;
    case JV_KIND_NUMBER: {
        double d = jv_number_value(v);

        /* As jq prints them: NaN is null, infinities the largest double. */
        if (isnan(d))
            out = cJSON_CreateNull();
        else if (isinf(d))
            out = cJSON_CreateNumber(d > 0 ? DBL_MAX : -DBL_MAX);
        else
            out = cJSON_CreateNumber(d);
        break;
    }
    case JV_KIND_STRING:
        b->bytes += (size_t)jv_string_length_bytes(jv_copy(v));
        if (b->bytes <= MAP_JQ_MAX_BYTES)
            out = cJSON_CreateString(jv_string_value(v));
        break;
    case JV_KIND_ARRAY: {
        int n = jv_array_length(jv_copy(v));

        out = cJSON_CreateArray();
        for (int i = 0; i < n; i++) {
            cJSON *item = to_cjson(jv_array_get(jv_copy(v), i), depth + 1, b);

            if (item == NULL) {
                cJSON_Delete(out);
                out = NULL;
                break;
            }
            cJSON_AddItemToArray(out, item);
        }
        break;
    }
    case JV_KIND_OBJECT:
        out = cJSON_CreateObject();
        for (int it = jv_object_iter(v); jv_object_iter_valid(v, it);
             it = jv_object_iter_next(v, it)) {
            jv key = jv_object_iter_key(v, it);
            cJSON *item = to_cjson(jv_object_iter_value(v, it), depth + 1, b);

            b->bytes += (size_t)jv_string_length_bytes(jv_copy(key));
            if (item == NULL || b->bytes > MAP_JQ_MAX_BYTES) {
                jv_free(key);
                cJSON_Delete(item);
                cJSON_Delete(out);
                out = NULL;
                break;
            }
            cJSON_AddItemToObject(out, jv_string_value(key), item);
            jv_free(key);
        }
        break;
    }
    jv_free(v);
    return out;
}

int
map_jq_input(const cJSON *input, jv *out, struct error *err)
{
    jv in = to_jv(input, 0);

    if (!jv_is_valid(in)) {
        jv_free(in);
        return error_set(err, ERROR_MAPPING, "jq: the input nests deeper than %d levels",
                         MAP_JQ_MAX_DEPTH);
    }
    *out = in;
    return 0;
}

int
map_jq_eval(struct map_jq *q, const cJSON *input, cJSON **out, struct error *err)
{
    jv in;

    if (map_jq_input(input, &in, err) != 0)
        return -1;
    return map_jq_eval_jv(q, in, out, err);
}

int
map_jq_eval_jv(struct map_jq *q, jv in, cJSON **out, struct error *err)
{
    struct budget b = {0, 0};
    jv result;
    cJSON *value;

    q->has_msg = 0;
    jq_start(q->jq, in, 0);
    result = jq_next(q->jq);
    if (!jv_is_valid(result)) {
        if (jv_invalid_has_msg(jv_copy(result))) {
            char msg[MAP_JQ_MSG_MAX + 1];

            message_text(result, msg);
            return error_set(err, ERROR_MAPPING, "jq: %s", msg);
        }
        jv_free(result);
        if (jq_halted(q->jq)) {
            /* halt_error: a non-zero exit code is a failure. */
            jv code = jq_get_exit_code(q->jq);
            int failed = jv_get_kind(code) == JV_KIND_NUMBER && jv_number_value(code) != 0;

            jv_free(code);
            if (failed) {
                char msg[MAP_JQ_MSG_MAX + 1];

                message_text(jq_get_error_message(q->jq), msg);
                return error_set(err, ERROR_MAPPING, "jq: halted: %s", msg);
            }
        }
        if (q->has_msg)
            return error_set(err, ERROR_MAPPING, "jq: %s", q->msg);
        *out = cJSON_CreateNull(); /* no output */
        return 0;
    }
    value = to_cjson(result, 0, &b);
    if (value == NULL)
        return error_set(err, ERROR_MAPPING,
                         "jq: the output is too large (over %d levels, %d values or %u bytes)",
                         MAP_JQ_MAX_DEPTH, MAP_JQ_MAX_NODES, MAP_JQ_MAX_BYTES);
    *out = value;
    return 0;
}

int
map_jq_test(struct map_jq *q, const cJSON *input, struct error *err)
{
    cJSON *v = NULL;
    int truthy = q->fast_text != NULL ? fast_test(q, input) : -1;

    if (truthy != -1)
        return truthy;
    if (map_jq_eval(q, input, &v, err) != 0)
        return -1;
    truthy = !(cJSON_IsNull(v) || cJSON_IsFalse(v));
    cJSON_Delete(v);
    return truthy;
}
