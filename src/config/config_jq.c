/* SPDX-License-Identifier: MIT */

/*
 * Whether a jq program in the config compiles: config_jq_problem() runs
 * libjq's compiler (never the program) and turns its complaint into one
 * line; config_check_jq() and config_opt_jq() report it at the node.
 */

#include "config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jq.h>

#include "config/config_int.h"

struct jq_msg {
    char text[200];
    int have;
};

/* libjq reports compile errors through this instead of writing to stderr. */
static void
jq_message(void *data, jv msg)
{
    struct jq_msg *m = data;

    if (!m->have && jv_get_kind(msg) == JV_KIND_STRING) {
        const char *s = jv_string_value(msg), *q;
        size_t n;

        if (strncmp(s, "jq: error: ", 11) == 0)
            s += 11;
        n = strcspn(s, "\n");
        if (n > 0 && s[n - 1] == ':')
            n--; /* libjq's next line would show the program: we have it */
        q = strstr(s, " (Unix shell quoting issues?)");
        if (q != NULL && (size_t)(q - s) < n) {
            /* Not a shell here: keep what comes before and after the aside. */
            size_t head = (size_t)(q - s), skip = strlen(" (Unix shell quoting issues?)");

            if (head + skip > n)
                skip = n - head;
            (void)snprintf(m->text, sizeof(m->text), "%.*s%.*s", (int)head, s,
                           (int)(n - head - skip), q + skip);
            m->have = 1;
            jv_free(msg);
            return;
        }
        if (n >= sizeof(m->text))
            n = sizeof(m->text) - 1;
        memcpy(m->text, s, n);
        m->text[n] = '\0';
        m->have = 1;
    }
    jv_free(msg);
}

/*
 * Whether a jq program ends inside a string literal. libjq 1.6 leaks the
 * lexer's buffer on that error, so it is caught here and libjq never sees
 * it. Strings nest through interpolation: "a \("b") c". Deeper nesting
 * than the stack is left to libjq.
 */
struct jq_scan {
    int in_string[32]; /* per level: 1 inside "...", 0 inside \(...) or the top */
    int parens[32];
    int depth;
};

/* One character inside a string literal; returns how many more to skip, -1 to give up. */
static int
scan_in_string(struct jq_scan *sc, const char *s)
{
    if (*s == '"') {
        sc->depth--;
        return 0;
    }
    if (*s != '\\' || s[1] == '\0')
        return 0;
    if (s[1] != '(')
        return 1; /* an escape: the next character is taken as is */
    if (sc->depth + 1 >= (int)ARRAY_COUNT(sc->in_string))
        return -1;
    sc->depth++;
    sc->in_string[sc->depth] = 0;
    sc->parens[sc->depth] = 0;
    return 1;
}

/* One character of code (the top, or inside \(...)); same returns. */
static int
scan_in_code(struct jq_scan *sc, const char *s)
{
    if (*s == '"') {
        if (sc->depth + 1 >= (int)ARRAY_COUNT(sc->in_string))
            return -1;
        sc->depth++;
        sc->in_string[sc->depth] = 1;
    } else if (*s == '(') {
        sc->parens[sc->depth]++;
    } else if (*s == ')' && sc->depth > 0 && sc->parens[sc->depth] == 0) {
        sc->depth--; /* the end of an interpolation */
    } else if (*s == ')') {
        sc->parens[sc->depth]--;
    }
    return 0;
}

/*
 * Whether a jq program ends inside a string literal. libjq 1.6 leaks the
 * lexer's buffer on that error, so it is caught here and libjq never sees
 * it. Strings nest through interpolation: "a \("b") c". Deeper nesting
 * than the scanner's stack is left to libjq.
 */
static int
jq_unterminated_string(const char *s)
{
    struct jq_scan sc = {.depth = 0};

    for (; *s != '\0'; s++) {
        int skip;

        if (*s == '#' && sc.depth == 0) {
            s += strcspn(s, "\n"); /* a comment runs to the end of the line */
            if (*s == '\0')
                break;
            continue;
        }
        skip = sc.in_string[sc.depth] ? scan_in_string(&sc, s) : scan_in_code(&sc, s);
        if (skip < 0)
            return 0;
        s += skip;
    }
    return sc.depth > 0 && sc.in_string[sc.depth];
}

int
config_jq_problem(const char *program, char *why, size_t why_len)
{
    struct jq_msg m = {.have = 0};
    jq_state *jq;
    int rc = 0;

    if (jq_unterminated_string(program)) {
        (void)snprintf(why, why_len, "jq does not compile: a string is not closed");
        return -1;
    }
    jq = jq_init();
    if (jq == NULL) {
        (void)snprintf(why, why_len, "cannot start libjq");
        return -1;
    }
    jq_set_error_cb(jq, jq_message, &m);
    if (!jq_compile(jq, program)) {
        (void)snprintf(why, why_len, "jq does not compile: %s", m.have ? m.text : "syntax error");
        rc = -1;
    }
    jq_teardown(&jq);
    return rc;
}

void
config_check_jq(struct config_ctx *c, const struct config_node *n, const char *path)
{
    char why[260];

    if (config_jq_problem(n->value, why, sizeof(why)) == -1)
        CONFIG_PROBLEM(c, n, "%s: %s", path, why);
}

/* A jq expression at key of map, checked to compile, into *out. */
void
config_opt_jq(struct config_ctx *c, const struct config_node *map, const char *path,
              const char *key, char **out)
{
    const struct config_node *v = config_node_get(map, key);
    char *p;

    if (v == NULL)
        return;
    p = config_join(path, key);
    if (config_get_str(c, v, p, out) == 0)
        config_check_jq(c, v, p);
    free(p);
}
