/* SPDX-License-Identifier: MIT */

/*
 * Which parts of its input a jq program can read (map.h,
 * map_jq_reads_only()), found from its text without running it.
 *
 * The answer must never be wrong the one way: "reads only these keys" for
 * a program that can see more. So it is yes only for a small, plain part
 * of jq and no for anything else; a no costs the caller speed, never
 * correctness.
 *
 * What can see the program's input: the terms of its first pipe stage
 * (and of each part of a group that gets the same input: the inside of
 * ( ) and [ ] and the parts of if ... end). Those must be `.KEY` paths
 * with a key of the list, literals, variables and a few builtins that
 * ignore their input, joined by operators that do not rewrite the input.
 * Whatever comes after the first `|` of such a group reads only what the
 * stage before it made, so it may be any jq, up to the end of the group.
 */

#include "map/map.h"

#include <string.h>

enum tok_kind {
    TOK_END,
    TOK_BAD,    /* not understood: a comment, a stray byte, an open string */
    TOK_FIELD,  /* .name */
    TOK_DOT,    /* . alone (then [, a string, or nothing) */
    TOK_DOTDOT, /* .. */
    TOK_NUMBER,
    TOK_STRING,        /* "..." without \( ) */
    TOK_STRING_INTERP, /* "...\(code)..." */
    TOK_VAR,           /* $name */
    TOK_IDENT,         /* a name, a keyword, a module::name */
    TOK_FORMAT,        /* @name */
    TOK_PUNCT,         /* an operator or a bracket, in text */
};

struct tok {
    enum tok_kind kind;
    const char *at;
    size_t len;
};

static int
ident_char(char c, int first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (!first && c >= '0' && c <= '9');
}

static int
digit(char c)
{
    return c >= '0' && c <= '9';
}

static int
tok_is(const struct tok *t, const char *text)
{
    return (t->kind == TOK_PUNCT || t->kind == TOK_IDENT) && strlen(text) == t->len &&
           memcmp(t->at, text, t->len) == 0;
}

static const char *
skip_ident(const char *p)
{
    for (;;) {
        while (ident_char(*p, 0))
            p++;
        if (p[0] != ':' || p[1] != ':' || !ident_char(p[2], 1))
            return p;
        p += 2;
    }
}

static int lex(const char **pp, struct tok *t);

/* Past the ")" that closes the code of a string's \( at p; NULL if none. */
static const char *
skip_interpolation(const char *p)
{
    int depth = 0;
    struct tok t;

    for (;;) {
        if (lex(&p, &t) == -1 || t.kind == TOK_END)
            return NULL; /* the program ends inside it */
        if (tok_is(&t, "("))
            depth++;
        else if (tok_is(&t, ")") && depth-- == 0)
            return p;
    }
}

/* A string literal at p (on its opening quote): past its closing quote, or
 * NULL if it does not close; *interp set when it holds code. */
static const char *
skip_string(const char *p, int *interp)
{
    for (p++; *p != '"'; p++) {
        if (*p == '\0')
            return NULL;
        if (*p != '\\')
            continue;
        if (p[1] == '(') {
            *interp = 1;
            if ((p = skip_interpolation(p + 2)) == NULL)
                return NULL;
            p--; /* the loop steps over the ")" */
        } else if (p[1] == '\0') {
            return NULL;
        } else {
            p++;
        }
    }
    return p + 1;
}

static const char *
skip_number(const char *p)
{
    while (digit(*p) || *p == '.')
        p++;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        while (digit(*p))
            p++;
    }
    return p;
}

/* The operator at p: its length, longest first; 0 for none. */
static size_t
punct_len(const char *p)
{
    static const char *const ops[] = {"?//", "//=", "==", "!=", "<=", ">=", "|=", "+=",
                                      "-=",  "*=",  "/=", "%=", "//", "|",  ",",  "(",
                                      ")",   "[",   "]",  "{",  "}",  ":",  ";",  "=",
                                      "<",   ">",   "+",  "-",  "*",  "/",  "%",  "?"};

    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        size_t n = strlen(ops[i]);

        if (strncmp(p, ops[i], n) == 0)
            return n;
    }
    return 0;
}

/* The token at *pp, which it moves past. 0, or -1 for TOK_BAD. */
static int
lex(const char **pp, struct tok *t)
{
    const char *p = *pp;
    int interp = 0;

    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    t->at = p;
    if (*p == '\0') {
        t->kind = TOK_END;
    } else if (p[0] == '.' && p[1] == '.') {
        t->kind = TOK_DOTDOT;
        p += 2;
    } else if (p[0] == '.' && ident_char(p[1], 1)) {
        t->kind = TOK_FIELD;
        t->at = ++p;
        while (ident_char(*p, 0))
            p++;
    } else if (digit(p[0]) || (p[0] == '.' && digit(p[1]))) {
        t->kind = TOK_NUMBER;
        p = skip_number(p);
    } else if (p[0] == '.') {
        t->kind = TOK_DOT;
        p++;
    } else if (p[0] == '"') {
        if ((p = skip_string(p, &interp)) == NULL)
            goto bad;
        t->kind = interp ? TOK_STRING_INTERP : TOK_STRING;
    } else if (p[0] == '$') {
        /* jq 1.6 reads `$ name` as well as `$name`. */
        for (p++; *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'; p++)
            ;
        if (!ident_char(*p, 1))
            goto bad;
        t->kind = TOK_VAR;
        p = skip_ident(p);
    } else if (p[0] == '@' && ident_char(p[1], 1)) {
        t->kind = TOK_FORMAT;
        p = skip_ident(p + 1);
    } else if (ident_char(p[0], 1)) {
        t->kind = TOK_IDENT;
        p = skip_ident(p);
    } else if (punct_len(p) > 0) {
        t->kind = TOK_PUNCT;
        p += punct_len(p);
    } else {
        goto bad; /* a comment among them: jq's rules for its end changed */
    }
    t->len = (size_t)(p - t->at);
    *pp = p;
    return 0;
bad:
    t->kind = TOK_BAD;
    t->len = 0;
    return -1;
}

struct scan {
    const char *p;
    const char *const *keys;
};

static int
key_listed(const struct scan *s, const struct tok *t)
{
    for (const char *const *k = s->keys; *k != NULL; k++) {
        if (strlen(*k) == t->len && memcmp(*k, t->at, t->len) == 0)
            return 1;
    }
    return 0;
}

/* Tokens that end a group: the caller checks that it was the one it
 * opened. */
static int
closes(const struct tok *t)
{
    return t->kind == TOK_END || t->kind == TOK_BAD || tok_is(t, ")") || tok_is(t, "]") ||
           tok_is(t, "}") || tok_is(t, ";") || tok_is(t, ":") || tok_is(t, "then") ||
           tok_is(t, "elif") || tok_is(t, "else") || tok_is(t, "end");
}

/*
 * The rest of a group after its first "|": anything, skipped over up to
 * the token that ends the group, which it returns in *t. A ":" or ";" ends
 * it too (they end a slice or a function's argument, and a def's name
 * where they do not: stopping early only makes the caller refuse).
 */
static void
skip_rest(struct scan *s, struct tok *t)
{
    int depth = 0;

    for (;;) {
        if (lex(&s->p, t) == -1 || t->kind == TOK_END)
            return;
        if (tok_is(t, "(") || tok_is(t, "[") || tok_is(t, "{") || tok_is(t, "if")) {
            depth++;
        } else if (depth > 0 &&
                   (tok_is(t, ")") || tok_is(t, "]") || tok_is(t, "}") || tok_is(t, "end"))) {
            depth--;
        } else if (depth == 0 && closes(t)) {
            return;
        }
    }
}

/* A name that ignores the input it is given, or joins terms. */
static int
harmless_word(const struct tok *t)
{
    static const char *const words[] = {"true", "false", "null", "empty", "now",
                                        "and",  "or",    "try",  "catch"};

    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (tok_is(t, words[i]))
            return 1;
    }
    return 0;
}

/* The operators that neither rewrite nor bind the input. */
static int
plain_operator(const struct tok *t)
{
    static const char *const ops[] = {"==", "!=", "<", "<=", ">",  ">=", "+",
                                      "-",  "*",  "/", "%",  "//", ",",  ":"};

    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (tok_is(t, ops[i]))
            return 1;
    }
    return 0;
}

static int group(struct scan *s, struct tok *end);

/* if A then B elif C then D else E end, each part a group on the input:
 * 1 if it stays within the keys, 0 if not. */
static int
if_term(struct scan *s)
{
    struct tok t;

    for (;;) {
        if (!group(s, &t))
            return 0;
        if (tok_is(&t, "end"))
            return 1;
        if (!tok_is(&t, "then") && !tok_is(&t, "elif") && !tok_is(&t, "else"))
            return 0;
    }
}

/*
 * A group whose input is the program's own: its tokens up to the one that
 * ends it (returned in *end). 1 if it reads the input only through the
 * keys, 0 if it may read more. A .name right after a term (.new.total,
 * $x.y, (...).z) indexes that term's value, not the input.
 */
static int
group(struct scan *s, struct tok *end)
{
    int after_term = 0;

    for (;;) {
        struct tok t;

        if (lex(&s->p, &t) == -1)
            return 0;
        if (closes(&t) && !tok_is(&t, ":")) {
            *end = t;
            return 1;
        }
        if (tok_is(&t, "|")) {
            skip_rest(s, end);
            return 1;
        }
        if (tok_is(&t, "(") || tok_is(&t, "[")) {
            struct tok inner;

            if (!group(s, &inner) || !tok_is(&inner, tok_is(&t, "(") ? ")" : "]"))
                return 0;
            after_term = 1;
        } else if (tok_is(&t, "if")) {
            if (!if_term(s))
                return 0;
            after_term = 1;
        } else if (t.kind == TOK_FIELD) {
            if (!after_term && !key_listed(s, &t))
                return 0;
            after_term = 1;
        } else if (t.kind == TOK_NUMBER || t.kind == TOK_STRING || t.kind == TOK_VAR ||
                   tok_is(&t, "?")) {
            after_term = 1;
        } else if (t.kind == TOK_IDENT && harmless_word(&t)) {
            after_term = !tok_is(&t, "and") && !tok_is(&t, "or") && !tok_is(&t, "try") &&
                         !tok_is(&t, "catch");
        } else if (t.kind == TOK_PUNCT && plain_operator(&t)) {
            after_term = 0;
        } else {
            return 0;
        }
    }
}

int
map_jq_reads_only(const char *program, const char *const *keys)
{
    struct scan s = {.p = program, .keys = keys};
    struct tok end;

    return group(&s, &end) && end.kind == TOK_END;
}
