/* SPDX-License-Identifier: MIT */

/*
 * tests/unit/test_parsed.c — the bodies the HTTP threads parsed, kept for
 * the writer's processing (engine_parsed_keep() and engine_parsed_take()
 * in src/engine/writer.c): each comes back once, for its own seq and only
 * for the very bytes it was parsed from; older ones are dropped as processing
 * passes them; the ring drops its oldest when full, by count or by the
 * bytes of its bodies, and keeps no tree of a long body. ASan finds a tree
 * that was neither given out nor freed.
 */
/* link: engine */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "core/xmalloc.h"
#include "engine/engine_int.h"

static char bodies[ENGINE_PARSED_MAX + 100][40];

static const char *
body(int64_t seq)
{
    char *b = bodies[seq];

    (void)snprintf(b, sizeof(bodies[0]), "{\"seq\":%lld}", (long long)seq);
    return b;
}

static void
keep(struct engine *e, int64_t seq)
{
    const char *b = body(seq);

    engine_parsed_keep(e, seq, xstrdup(b), strlen(b), cJSON_Parse(b));
}

/* The tree taken for seq, whose row holds b (len bytes): its "seq"
 * member, or -1 when none was kept for those bytes. */
static int64_t
take_bytes(struct engine *e, int64_t seq, const char *b, size_t len)
{
    cJSON *doc = engine_parsed_take(e, seq, b, len);
    int64_t got = -1;

    if (doc != NULL)
        got = (int64_t)cJSON_GetObjectItemCaseSensitive(doc, "seq")->valuedouble;
    cJSON_Delete(doc);
    return got;
}

static int64_t
take(struct engine *e, int64_t seq)
{
    return take_bytes(e, seq, body(seq), strlen(body(seq)));
}

static void
each_body_comes_back_once_for_its_seq(void)
{
    struct engine e = {0};

    keep(&e, 1);
    keep(&e, 2);
    keep(&e, 5);
    CHECK_EQ(take(&e, 1), 1);
    CHECK_EQ(take(&e, 1), -1);
    CHECK_EQ(take(&e, 2), 2);
    CHECK_EQ(take(&e, 4), -1); /* never kept (a polled row): 5 stays */
    CHECK_EQ(take(&e, 5), 5);
    CHECK_EQ((long long)e.parsed_count, 0);
    engine_parsed_clear(&e);
}

static void
older_bodies_are_dropped_as_processing_passes_them(void)
{
    struct engine e = {0};

    keep(&e, 1);
    keep(&e, 2);
    keep(&e, 3);
    CHECK_EQ(take(&e, 2), 2); /* 1 was processed without its tree: freed */
    CHECK_EQ(take(&e, 1), -1);
    CHECK_EQ((long long)e.parsed_count, 1);
    engine_parsed_clear(&e);
    CHECK_EQ((long long)e.parsed_count, 0);
    CHECK_EQ(take(&e, 3), -1);
}

static void
a_seq_that_now_holds_other_bytes_gets_no_tree(void)
{
    struct engine e = {0};
    const char *other = "{\"seq\":\"someone else's\"}";

    keep(&e, 7);
    keep(&e, 8);
    /* Row 7 was deleted unprocessed and its seq journaled again. */
    CHECK(engine_parsed_take(&e, 7, other, strlen(other)) == NULL);
    CHECK_EQ((long long)e.parsed_count, 1);
    CHECK_EQ(take(&e, 8), 8);
    /* One byte off is other bytes too. */
    keep(&e, 9);
    CHECK(engine_parsed_take(&e, 9, body(9), strlen(body(9)) - 1) == NULL);
    engine_parsed_clear(&e);
}

static void
a_full_ring_drops_its_oldest(void)
{
    struct engine e = {0};
    int64_t n = ENGINE_PARSED_MAX + 88;

    for (int64_t seq = 1; seq <= n; seq++)
        keep(&e, seq);
    CHECK_EQ((long long)e.parsed_count, ENGINE_PARSED_MAX);
    CHECK_EQ(take(&e, 88), -1);
    CHECK_EQ(take(&e, 89), 89);
    CHECK_EQ(take(&e, n), n);
    CHECK_EQ((long long)e.parsed_count, 0);
    engine_parsed_clear(&e);
}

/* A body of n bytes: {"seq":N,"pad":"xxx..."}. */
static char *
long_body(int64_t seq, size_t n)
{
    char *b = malloc(n + 1);
    int head = snprintf(b, n + 1, "{\"seq\":%lld,\"pad\":\"", (long long)seq);

    memset(b + head, 'x', n - (size_t)head - 2);
    memcpy(b + n - 2, "\"}", 3);
    return b;
}

static void
keep_long(struct engine *e, int64_t seq, size_t n)
{
    char *b = long_body(seq, n);

    engine_parsed_keep(e, seq, b, n, cJSON_Parse(b));
}

static int64_t
take_long(struct engine *e, int64_t seq, size_t n)
{
    char *b = long_body(seq, n);
    int64_t got = take_bytes(e, seq, b, n);

    free(b);
    return got;
}

static void
the_ring_holds_a_bounded_number_of_bytes(void)
{
    struct engine e = {0};
    size_t n = 12 * 1024; /* 86 of them pass ENGINE_PARSED_BYTES */
    int64_t last = (int64_t)(ENGINE_PARSED_BYTES / n) + 10;

    for (int64_t seq = 1; seq <= last; seq++)
        keep_long(&e, seq, n);
    CHECK(e.parsed_bytes <= ENGINE_PARSED_BYTES);
    CHECK_EQ((long long)e.parsed_count, (long long)(ENGINE_PARSED_BYTES / n));
    CHECK_EQ(take_long(&e, 10, n), -1); /* dropped for room */
    CHECK_EQ(take_long(&e, last, n), last);
    CHECK_EQ((long long)e.parsed_bytes, 0);
    /* A body past ENGINE_PARSED_BODY_MAX brings no tree at all. */
    keep_long(&e, last + 1, ENGINE_PARSED_BODY_MAX + 1);
    CHECK_EQ((long long)e.parsed_count, 0);
    CHECK_EQ(take_long(&e, last + 1, ENGINE_PARSED_BODY_MAX + 1), -1);
    engine_parsed_clear(&e);
}

/* Same length, other bytes: the row at the seq is not the body kept. The
 * three bit flips are ones a multiply-and-shift sum of eight bytes a step
 * could not tell apart, whatever its key (a review found them). */
static void
only_the_very_bytes_get_the_tree(void)
{
    struct engine e = {0};
    char flipped[64];
    const char *b;

    keep(&e, 7);
    CHECK(engine_parsed_take(&e, 7, "{\"seq\":8}", 9) == NULL);
    CHECK_EQ((long long)e.parsed_count, 0);
    keep(&e, 8);
    b = body(8);
    (void)snprintf(flipped, sizeof(flipped), "{\"seq\":8,\"a\":\"aaaaaaaaaaaaaaaa\"}");
    engine_parsed_keep(&e, 9, xstrdup(flipped), strlen(flipped), cJSON_Parse(flipped));
    flipped[7] ^= (char)0x80;
    flipped[12] ^= 0x04;
    flipped[15] ^= (char)0x80;
    CHECK_EQ(take_bytes(&e, 8, b, strlen(b)), 8);
    CHECK_EQ(take_bytes(&e, 9, flipped, strlen(flipped)), -1);
    CHECK_EQ((long long)e.parsed_bytes, 0);
    engine_parsed_clear(&e);
}

const struct check_case check_cases[] = {
    CHECK_CASE(each_body_comes_back_once_for_its_seq),
    CHECK_CASE(older_bodies_are_dropped_as_processing_passes_them),
    CHECK_CASE(a_seq_that_now_holds_other_bytes_gets_no_tree),
    CHECK_CASE(a_full_ring_drops_its_oldest),
    CHECK_CASE(the_ring_holds_a_bounded_number_of_bytes),
    CHECK_CASE(only_the_very_bytes_get_the_tree),
    {0},
};
