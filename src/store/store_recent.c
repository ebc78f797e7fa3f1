/* SPDX-License-Identifier: MIT */

/*
 * links.recent noted in C: the SQL function concord_recent_note(recent,
 * state, at, kind[, over]) that STORE_RECENT_NOTE (store_int.h) tries before its
 * JSON functions. It handles the list concord itself writes, entries
 * [at, "state", "kind"] as json_array() prints them, and answers the very
 * text those functions would; anything else (no state, a list someone
 * edited, text that is not one) it leaves to them by answering NULL. The
 * JSON functions parse the list five times a note; this reads it once.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "core/buf.h"
#include "core/xmalloc.h"
#include "store/store_int.h"

/* Entries kept: the oldest goes once there are this many (STORE_RECENT_NOTE). */
#define RECENT_KEEP 6
/* Longer lists are left to the SQL (and SQLite's own limit on a text). */
#define RECENT_MAX_LEN 100000000

/* The escape json_array() writes for control character c, or 0 when it
 * writes \u00XX. */
static char
short_escape(unsigned char c)
{
    switch (c) {
    case '\b':
        return 'b';
    case '\t':
        return 't';
    case '\n':
        return 'n';
    case '\f':
        return 'f';
    case '\r':
        return 'r';
    default:
        return 0;
    }
}

/* Whether byte c goes into a JSON string as it is. */
static int
is_plain(unsigned char c)
{
    return c >= 0x20 && c != '"' && c != '\\';
}

/* text as SQLite's json_array() writes a string (jsonAppendString), with
 * its quotes, to out (room for 6 * len + 2 bytes). Returns the length.
 * (value.c's canonical text escapes the same way today, but that is
 * concord's format and this one SQLite's, which fuzz_recent holds us to.) */
static size_t
escape(const unsigned char *text, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0, i = 0;

    out[n++] = '"';
    while (i < len) {
        unsigned char c = text[i++];

        if (is_plain(c)) {
            out[n++] = (char)c;
            continue;
        }
        out[n++] = '\\';
        if (c == '"' || c == '\\') {
            out[n++] = (char)c;
        } else if (short_escape(c) != 0) {
            out[n++] = short_escape(c);
        } else {
            memcpy(out + n, "u00", 3);
            out[n + 3] = hex[c >> 4];
            out[n + 4] = hex[c & 0xf];
            n += 5;
        }
    }
    out[n++] = '"';
    return n;
}

/*
 * A JSON string at p in the form escape() writes, and only that form (so
 * two such strings are the same text exactly when their bytes are equal):
 * the end, just past its closing quote, or NULL. (\u0000 is left out: it
 * ends the string json_extract() returns.)
 */
static const char *
escaped_string(const char *p, const char *end)
{
    if (p >= end || *p != '"')
        return NULL;
    for (p++; p < end; p++) {
        int v;

        if (is_plain((unsigned char)*p))
            continue;
        if ((unsigned char)*p < 0x20)
            return NULL;
        if (*p == '"')
            return p + 1;
        if (++p >= end) /* after a backslash */
            return NULL;
        if (*p == '"' || *p == '\\' || *p == 'b' || *p == 't' || *p == 'n' || *p == 'f' ||
            *p == 'r')
            continue;
        if (*p != 'u' || end - p < 5 || p[1] != '0' || p[2] != '0' || (p[3] != '0' && p[3] != '1'))
            return NULL;
        if (p[4] >= '0' && p[4] <= '9')
            v = p[4] - '0';
        else if (p[4] >= 'a' && p[4] <= 'f')
            v = p[4] - 'a' + 10;
        else
            return NULL;
        v += (p[3] - '0') * 16;
        if (v == 0 || short_escape((unsigned char)v) != 0)
            return NULL;
        p += 4;
    }
    return NULL;
}

/* An integer without a leading zero at p: its end, or NULL. */
static const char *
integer(const char *p, const char *end)
{
    const char *digits;

    if (p < end && *p == '-')
        p++;
    digits = p;
    while (p < end && *p >= '0' && *p <= '9')
        p++;
    if (p == digits || (*digits == '0' && p - digits > 1))
        return NULL;
    return p;
}

/* A token of an entry: where it begins, and its length. */
struct token {
    const char *at;
    size_t len;
};

/* One entry [at,"state","kind"] at p: its end, with the state's and the
 * kind's text (quoted) in *state and *kind; NULL when it is not one. */
static const char *
entry(const char *p, const char *end, struct token *state, struct token *kind)
{
    if (p >= end || *p++ != '[' || (p = integer(p, end)) == NULL || p >= end || *p++ != ',')
        return NULL;
    state->at = p;
    if ((p = escaped_string(p, end)) == NULL || p >= end)
        return NULL;
    state->len = (size_t)(p - state->at);
    if (*p++ != ',')
        return NULL;
    kind->at = p;
    if ((p = escaped_string(p, end)) == NULL || p >= end || *p != ']')
        return NULL;
    kind->len = (size_t)(p - kind->at);
    return p + 1;
}

/* A list's shape: its entries, where the second and the last begin, and
 * the last one's state and kind. */
struct list {
    int count;
    const char *second, *last;
    struct token last_state, last_kind;
};

/* Read the list at p..end. Returns 0, or -1 when it is not a list of
 * entries as concord writes them. */
static int
read_list(const char *p, const char *end, struct list *l)
{
    *l = (struct list){0};
    if (p >= end || *p++ != '[')
        return -1;
    if (p < end && *p == ']')
        return p + 1 == end ? 0 : -1;
    for (;;) {
        l->last = p;
        p = entry(p, end, &l->last_state, &l->last_kind);
        if (p == NULL || p >= end)
            return -1;
        l->count++;
        if (*p == ']')
            return p + 1 == end ? 0 : -1;
        if (*p++ != ',')
            return -1;
        if (l->count == 1)
            l->second = p;
    }
}

static int
token_is(const struct token *t, const char *text, size_t len)
{
    return t->len == len && memcmp(t->at, text, len) == 0;
}

/* The SQL function; see the top of the file. */
static void
recent_note(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    const char *recent, *end;
    const unsigned char *state, *kind, *over = NULL;
    size_t recent_len, state_len, kind_len, over_len = 0;
    struct list l = {0};
    char *add, *out;
    size_t add_len, state_at, kind_at, n = 0;

    /* Anything but texts, and a list concord wrote: the SQL decides. (The
     * types first: reading a value as text may convert it.) */
    if ((sqlite3_value_type(argv[0]) != SQLITE_NULL &&
         sqlite3_value_type(argv[0]) != SQLITE_TEXT) ||
        sqlite3_value_type(argv[1]) != SQLITE_TEXT ||
        sqlite3_value_type(argv[2]) != SQLITE_INTEGER ||
        sqlite3_value_type(argv[3]) != SQLITE_TEXT ||
        (argc > 4 && sqlite3_value_type(argv[4]) != SQLITE_NULL &&
         sqlite3_value_type(argv[4]) != SQLITE_TEXT))
        return; /* NULL */
    if (argc > 4 && sqlite3_value_type(argv[4]) == SQLITE_TEXT) {
        over = sqlite3_value_text(argv[4]);
        over_len = (size_t)sqlite3_value_bytes(argv[4]);
        if (over == NULL || memchr(over, '\0', over_len) != NULL || over_len > RECENT_MAX_LEN)
            return; /* NULL */
    }
    recent = (const char *)sqlite3_value_text(argv[0]);
    recent_len = (size_t)sqlite3_value_bytes(argv[0]);
    end = recent != NULL ? recent + recent_len : NULL;
    state = sqlite3_value_text(argv[1]);
    state_len = (size_t)sqlite3_value_bytes(argv[1]);
    kind = sqlite3_value_text(argv[3]);
    kind_len = (size_t)sqlite3_value_bytes(argv[3]);
    if (state == NULL || kind == NULL || memchr(state, '\0', state_len) != NULL ||
        memchr(kind, '\0', kind_len) != NULL ||
        recent_len + 6 * (state_len + kind_len) > RECENT_MAX_LEN)
        return; /* NULL */
    if (recent != NULL && read_list(recent, end, &l) == -1)
        return;
    /* The new entry, as json_array(at, state, kind) prints it. */
    add = xmalloc(6 * (state_len + kind_len) + 32);
    add[0] = '[';
    add_len = 1 + buf_int_text(sqlite3_value_int64(argv[2]), add + 1);
    add[add_len++] = ',';
    state_at = add_len;
    add_len += escape(state, state_len, add + add_len);
    add[add_len++] = ',';
    kind_at = add_len;
    add_len += escape(kind, kind_len, add + add_len);
    add[add_len++] = ']';
    /* A retry's same state of the same kind is noted once. */
    if (l.count > 0 && token_is(&l.last_state, add + state_at, kind_at - 1 - state_at) &&
        token_is(&l.last_kind, add + kind_at, add_len - 1 - kind_at)) {
        free(add);
        sqlite3_result_value(ctx, argv[0]);
        return;
    }
    /* The write noted at its claim, now answered: the answer's state
     * takes its place. */
    if (over != NULL && l.count > 0 &&
        token_is(&l.last_kind, add + kind_at, add_len - 1 - kind_at)) {
        char *esc = xmalloc(6 * over_len + 2);
        size_t esc_len = escape(over, over_len, esc);
        int same = token_is(&l.last_state, esc, esc_len);

        free(esc);
        if (same) {
            n = (size_t)(l.last - recent);
            out = xmalloc(n + add_len + 2);
            memcpy(out, recent, n);
            memcpy(out + n, add, add_len);
            n += add_len;
            out[n++] = ']';
            free(add);
            sqlite3_result_text(ctx, out, (int)n, free);
            return;
        }
    }
    out = xmalloc(recent_len + add_len + 3);
    if (l.count >= RECENT_KEEP) { /* the oldest goes */
        out[n++] = '[';
        memcpy(out + n, l.second, (size_t)(end - 1 - l.second));
        n += (size_t)(end - 1 - l.second);
        out[n++] = ',';
    } else if (l.count > 0) {
        memcpy(out, recent, (size_t)(end - 1 - recent));
        n = (size_t)(end - 1 - recent);
        out[n++] = ',';
    } else {
        out[n++] = '[';
    }
    memcpy(out + n, add, add_len);
    n += add_len;
    out[n++] = ']';
    free(add);
    sqlite3_result_text(ctx, out, (int)n, free);
}

int
store_recent_register(sqlite3 *db)
{
    const int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
    int rc =
        sqlite3_create_function(db, "concord_recent_note", 4, flags, NULL, recent_note, NULL, NULL);

    /* The fifth argument: the state the newest entry is replaced over. */
    return rc != SQLITE_OK ? rc
                           : sqlite3_create_function(db, "concord_recent_note", 5, flags, NULL,
                                                     recent_note, NULL, NULL);
}
