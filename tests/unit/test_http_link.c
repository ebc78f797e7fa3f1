/* SPDX-License-Identifier: MIT */

/*
 * tests/unit/test_http_link.c — the Link header's rel="next"
 * (src/http/http_link.c), as paginated APIs send it.
 */
/* link: http core */

#include <stdlib.h>

#include "check.h"
#include "http/http_link.h"

static void
expect_next(const char *header, const char *want)
{
    char *got = http_link_next(header);

    if (want == NULL && got != NULL)
        check_fail(__FILE__, __LINE__, "\"%s\": wanted no next link, got \"%s\"", header, got);
    else if (want != NULL)
        CHECK_STR_EQ(got ? got : "(none)", want);
    free(got);
}

static void
next_among_several_links(void)
{
    expect_next("<https://api.github.com/x?page=2>; rel=\"next\", "
                "<https://api.github.com/x?page=5>; rel=\"last\"",
                "https://api.github.com/x?page=2");
    expect_next("<https://a/x?page=1>; rel=\"prev\", <https://a/x?page=3>; rel=\"next\"",
                "https://a/x?page=3");
    expect_next("</c?cursor=abc&limit=10>; rel=next", "/c?cursor=abc&limit=10");
    expect_next("<https://a/x>;rel=\"prev next\"", "https://a/x");
    expect_next("<https://a/x>; REL=\"Next\"", "https://a/x");
}

static void
no_next_link(void)
{
    expect_next("", NULL);
    expect_next("<https://a/x?page=1>; rel=\"prev\"", NULL);
    expect_next("<https://a/x>; rel=\"nextish\"", NULL);
    expect_next("<https://a/x; rel=\"next\"", NULL); /* no closing bracket */
    expect_next("rel=\"next\"", NULL);
}

const struct check_case check_cases[] = {
    CHECK_CASE(next_among_several_links),
    CHECK_CASE(no_next_link),
    {0},
};
