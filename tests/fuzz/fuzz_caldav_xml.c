/* SPDX-License-Identifier: MIT */

/*
 * tests/fuzz/fuzz_caldav_xml.c — any bytes given as a CalDAV answer must
 * parse or fail with ERROR_PERMANENT and a message; never crash, hang or
 * leak. A parsed multistatus holds what caldav_xml.h promises: every
 * response has an href and its normalised path, a status in 0..999, and no
 * 507 for the collection itself (that is is_truncated); a DAV:error body
 * names a condition. caldav_href_path() is a fixed point on its own output.
 *
 * The first byte picks the request path the answer is for (none, "/",
 * "/cal/", an absolute URL); the rest is the body. Exercises
 * src/connectors/caldav_xml.c with libxml2. Inputs are capped at 256 KiB.
 */
/* link: connectors */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/caldav_xml.h"
#include "core/error.h"

#define FUZZ_MAX_BYTES (256 * 1024)

/* libFuzzer fixes this name. NOLINTNEXTLINE(readability-identifier-naming) */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const selves[] = {NULL, "/", "/cal/", "https://dav.example.com/cal/"};

static void
check_multistatus(const char *body, size_t len, const char *self)
{
    struct caldav_multistatus ms = {0};
    struct error err = {0};

    if (caldav_xml_parse_multistatus(body, len, self, &ms, &err) != 0) {
        if (err.kind != ERROR_PERMANENT || err.msg[0] == '\0' || ms.responses != NULL)
            abort();
        return;
    }
    if (ms.response_count > CALDAV_XML_MAX_RESPONSES)
        abort();
    for (size_t i = 0; i < ms.response_count; i++) {
        const struct caldav_response *r = &ms.responses[i];

        if (r->href == NULL || r->path == NULL || r->status < 0 || r->status > 999)
            abort();
        if (r->status == 507 && (self == NULL || r->is_self))
            abort();
    }
    caldav_multistatus_fini(&ms);
}

static void
check_href(const char *body, size_t len)
{
    char *s = malloc(len + 1), *p, *q;

    if (s == NULL)
        return;
    memcpy(s, body, len);
    s[len] = '\0';
    p = caldav_href_path(s);
    q = caldav_href_path(p);
    if (strcmp(p, q) != 0)
        abort();
    free(q);
    free(p);
    free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct caldav_error_body e;
    const char *body = (const char *)data + 1;

    if (size < 1 || size > FUZZ_MAX_BYTES)
        return 0;
    check_multistatus(body, size - 1, selves[data[0] & 3]);
    if (caldav_xml_parse_error(body, size - 1, &e) == 1) {
        if (e.condition == CALDAV_CONDITION_NONE)
            abort();
        caldav_error_body_fini(&e);
    }
    check_href(body, size - 1);
    return 0;
}
