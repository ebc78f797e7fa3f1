/* SPDX-License-Identifier: MIT */

/*
 * tests/unit/test_caldav_xml.c — CalDAV request bodies and multistatus
 * answers (src/connectors/caldav_xml.c).
 *
 * The answers marked "Radicale" were captured from Radicale 3.1.8 (Debian
 * 12's package) run on 127.0.0.1 with a throwaway collection root, by
 * sending it the bodies caldav_xml.c writes; only the VTIMEZONE blocks of
 * their calendar-data were cut. Radicale writes DAV: as the default
 * namespace; the other answers use prefixes ("D:", "d:", odd ones) as other
 * servers do. Radicale does not truncate, so the 507 answer is written after
 * RFC 6578 §3.6 and the shape Google's CalDAV is reported to send.
 */
/* link: connectors */

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "connectors/caldav_xml.h"
#include "connectors/ical.h"
#include "core/error.h"

static const char radicale_sync_initial[] =
    "<?xml version='1.0' encoding='utf-8'?>\n"
    "<multistatus xmlns=\"DAV:\" xmlns:C=\"urn:ietf:params:xml:ns:caldav\"><sync-token>http://r"
    "adicale.org/ns/sync/c348d985bee82732e63bec45006f43fb7a1021b20923ac1006284acbd470316f</sync"
    "-token><response><href>/ana/work/a.ics</href><propstat><prop><getetag>\"66633e4f7d1252d48b"
    "131f745992801bbea12d443352dab024f7b9f468ba8848\"</getetag><C:calendar-data>BEGIN:VCALENDAR"
    "\n"
    "VERSION:2.0\n"
    "PRODID:-//test//EN\n"
    "BEGIN:VEVENT\n"
    "UID:uid-a\n"
    "DTSTART;TZID=Europe/Bucharest:20260329T103000\n"
    "DTEND;TZID=Europe/Bucharest:20260329T113000\n"
    "DTSTAMP:20260301T000000Z\n"
    "SUMMARY:Meeting a\n"
    "END:VEVENT\n"
    "END:VCALENDAR\n"
    "</C:calendar-data></prop><status>HTTP/1.1 200 OK</status></propstat></response><response><"
    "href>/ana/work/b.ics</href><propstat><prop><getetag>\"691c13aeeecbcb3cb39c6f8d43dba2ac817c"
    "008a93be9a5647ee827ba41f69d8\"</getetag><C:calendar-data>BEGIN:VCALENDAR\n"
    "VERSION:2.0\n"
    "PRODID:-//test//EN\n"
    "BEGIN:VEVENT\n"
    "UID:uid-b\n"
    "DTSTART;TZID=Europe/Bucharest:20260329T103000\n"
    "DTEND;TZID=Europe/Bucharest:20260329T113000\n"
    "DTSTAMP:20260301T000000Z\n"
    "SUMMARY:Meeting b\n"
    "END:VEVENT\n"
    "END:VCALENDAR\n"
    "</C:calendar-data></prop><status>HTTP/1.1 200 OK</status></propstat></response><response><"
    "href>/ana/work/c.ics</href><propstat><prop><getetag>\"8428b619cc0f23b024f3e9797a5203b58e55"
    "2be7feb0c25f41f3b6a3c8a4b62f\"</getetag><C:calendar-data>BEGIN:VCALENDAR\n"
    "VERSION:2.0\n"
    "PRODID:-//test//EN\n"
    "BEGIN:VEVENT\n"
    "UID:uid-c\n"
    "DTSTART;TZID=Europe/Bucharest:20260329T103000\n"
    "DTEND;TZID=Europe/Bucharest:20260329T113000\n"
    "DTSTAMP:20260301T000000Z\n"
    "SUMMARY:Meeting c\n"
    "END:VEVENT\n"
    "END:VCALENDAR\n"
    "</C:calendar-data></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistat"
    "us>";

static const char radicale_sync_next[] =
    "<?xml version='1.0' encoding='utf-8'?>\n"
    "<multistatus xmlns=\"DAV:\"><sync-token>http://radicale.org/ns/sync/4678871000e0ee9f219095"
    "69d87038b8520680d39b773b65bfc66cde5cf33444</sync-token><response><href>/ana/work/b.ics</hr"
    "ef><status>HTTP/1.1 404 Not Found</status></response><response><href>/ana/work/a.ics</href"
    "><propstat><prop><getetag>\"5077e997d56c4fbe5b6998a2312b825c9b6b536bcbed2e7965ae7c17998667"
    "4a\"</getetag></prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>";

/* Radicale: PROPFIND current-user-principal on /. */
static const char radicale_principal[] =
    "<?xml version='1.0' encoding='utf-8'?>\n"
    "<multistatus xmlns=\"DAV:\"><response><href>/</href><propstat><prop><current-user-principal>"
    "<href>/ana/</href></current-user-principal></prop><status>HTTP/1.1 200 OK</status></propstat>"
    "</response></multistatus>";

/* Radicale: PROPFIND calendar-home-set on the principal. */
static const char radicale_home[] =
    "<?xml version='1.0' encoding='utf-8'?>\n"
    "<multistatus xmlns=\"DAV:\" xmlns:C=\"urn:ietf:params:xml:ns:caldav\"><response><href>/ana/"
    "</href><propstat><prop><C:calendar-home-set><href>/ana/</href></C:calendar-home-set></prop>"
    "<status>HTTP/1.1 200 OK</status></propstat></response></multistatus>";

/* Radicale: PROPFIND Depth 1 on the home, for its calendars. */
static const char radicale_calendars[] =
    "<?xml version='1.0' encoding='utf-8'?>\n"
    "<multistatus xmlns=\"DAV:\" xmlns:C=\"urn:ietf:params:xml:ns:caldav\" "
    "xmlns:CS=\"http://calendarserver.org/ns/\"><response><href>/ana/</href><propstat><prop>"
    "<displayname /><C:supported-calendar-component-set /><CS:getctag /><sync-token /></prop>"
    "<status>HTTP/1.1 404 Not Found</status></propstat><propstat><prop><resourcetype><principal />"
    "<collection /></resourcetype></prop><status>HTTP/1.1 200 OK</status></propstat></response>"
    "<response><href>/ana/work/</href><propstat><prop><displayname>ana/work</displayname>"
    "<resourcetype><C:calendar /><collection /></resourcetype><C:supported-calendar-component-set>"
    "<C:comp name=\"VTODO\" /><C:comp name=\"VEVENT\" /><C:comp name=\"VJOURNAL\" />"
    "</C:supported-calendar-component-set><CS:getctag>\"ca5d66c59a8e12e6801df61f5601aaa0d0380afbd1"
    "f8c3623e713eb9b5d486ed\"</CS:getctag><sync-token>http://radicale.org/ns/sync/e3b0c44298fc1c14"
    "9afbf4c8996fb92427ae41e4649b934ca495991b7852b855</sync-token></prop><status>HTTP/1.1 200 OK"
    "</status></propstat></response></multistatus>";

/* Radicale: sync-collection with a token it does not know (HTTP 403). */
static const char radicale_bad_token[] = "<?xml version='1.0' encoding='utf-8'?>\n"
                                         "<error xmlns=\"DAV:\"><valid-sync-token /></error>";

/* A truncated sync after RFC 6578 §3.6: two changes, then a 507 for the
 * collection itself (written here as an absolute URL with escapes, as some
 * servers do), and the token to continue from. */
static const char truncated_sync[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<d:multistatus xmlns:d=\"DAV:\" xmlns:cal=\"urn:ietf:params:xml:ns:caldav\">\n"
    " <d:response>\n"
    "  <d:href>/caldav/v2/ana%40example.com/events/1a2b.ics</d:href>\n"
    "  <d:propstat><d:status>HTTP/1.1 200 OK</d:status>\n"
    "   <d:prop><d:getetag>\"63890112345\"</d:getetag></d:prop></d:propstat>\n"
    " </d:response>\n"
    " <d:response>\n"
    "  <d:href>/caldav/v2/ana%40example.com/events/3c4d.ics</d:href>\n"
    "  <d:status>HTTP/1.1 404 Not Found</d:status>\n"
    " </d:response>\n"
    " <d:response>\n"
    "  <d:href>https://apidata.example.com:443/caldav/v2/ana%40example.com/events/</d:href>\n"
    "  <d:status>HTTP/1.1 507 Insufficient Storage</d:status>\n"
    "  <d:error><d:number-of-matches-within-limits/></d:error>\n"
    " </d:response>\n"
    " <d:sync-token>https://example.com/sync/CKDVk5LG4tgCEAE=</d:sync-token>\n"
    "</d:multistatus>\n";

static void
parse_ok(const char *body, const char *self, struct caldav_multistatus *ms)
{
    struct error err = {0};

    if (caldav_xml_parse_multistatus(body, strlen(body), self, ms, &err) != 0)
        check_fail(__FILE__, __LINE__, "parse failed: %s", err.msg);
}

static void
radicale_first_sync_lists_every_event(void)
{
    struct caldav_multistatus ms = {0};
    struct error err = {0};
    cJSON *appt = NULL;

    parse_ok(radicale_sync_initial, "/ana/work/", &ms);
    CHECK_EQ(ms.response_count, 3);
    CHECK_EQ(ms.is_truncated, 0);
    CHECK_STR_EQ(ms.sync_token, "http://radicale.org/ns/sync/"
                                "c348d985bee82732e63bec45006f43fb7a1021b20923ac1006284acbd470316f");
    CHECK_STR_EQ(ms.responses[0].href, "/ana/work/a.ics");
    CHECK_EQ(ms.responses[0].status, 200);
    CHECK_EQ(ms.responses[0].is_self, 0);
    CHECK_STR_EQ(ms.responses[0].etag,
                 "\"66633e4f7d1252d48b131f745992801bbea12d443352dab024f7b9f468ba8848\"");
    CHECK(ms.responses[2].calendar_data != NULL);
    /* The calendar data is whole: the iCalendar reader takes it as it is. */
    CHECK(appt_from_ical(ms.responses[2].calendar_data, strlen(ms.responses[2].calendar_data),
                         &appt, &err) == 0);
    CHECK_STR_EQ(cJSON_GetObjectItem(appt, "title")->valuestring, "Meeting c");
    CHECK_STR_EQ(cJSON_GetObjectItem(cJSON_GetObjectItem(appt, "start"), "at")->valuestring,
                 "2026-03-29T07:30:00Z");
    cJSON_Delete(appt);
    caldav_multistatus_fini(&ms);
    CHECK(ms.responses == NULL && ms.response_count == 0);
}

static void
radicale_next_sync_reports_a_removal_as_404(void)
{
    struct caldav_multistatus ms = {0};

    parse_ok(radicale_sync_next, "/ana/work/", &ms);
    CHECK_EQ(ms.response_count, 2);
    CHECK_STR_EQ(ms.responses[0].href, "/ana/work/b.ics");
    CHECK_EQ(ms.responses[0].status, 404);
    CHECK(ms.responses[0].etag == NULL);
    CHECK_STR_EQ(ms.responses[1].href, "/ana/work/a.ics");
    CHECK_EQ(ms.responses[1].status, 200);
    CHECK_STR_EQ(ms.responses[1].etag,
                 "\"5077e997d56c4fbe5b6998a2312b825c9b6b536bcbed2e7965ae7c179986674a\"");
    CHECK(ms.responses[1].calendar_data == NULL); /* asked for getetag only */
    CHECK_STR_EQ(ms.sync_token, "http://radicale.org/ns/sync/"
                                "4678871000e0ee9f21909569d87038b8520680d39b773b65bfc66cde5cf33444");
    caldav_multistatus_fini(&ms);
}

/* Replace every occurrence of from with to in s (the test's own copy). */
static char *
replaced(const char *s, const char *from, const char *to)
{
    size_t n = strlen(s), fl = strlen(from), tl = strlen(to), w = 0;
    char *out = malloc(n * (tl + 1) + 1);

    for (size_t i = 0; i < n;) {
        if (strncmp(s + i, from, fl) == 0) {
            memcpy(out + w, to, tl);
            w += tl;
            i += fl;
        } else {
            out[w++] = s[i++];
        }
    }
    out[w] = '\0';
    return out;
}

static void
prefixes_do_not_matter(void)
{
    /* The same answer with DAV: bound to "D:", to "lp1:", and with the
     * CalDAV namespace as the default one. */
    static const char *const variants[] = {
        "<D:multistatus xmlns:D=\"DAV:\"><D:sync-token>tok</D:sync-token><D:response>"
        "<D:href>/cal/a.ics</D:href><D:propstat><D:prop><D:getetag>\"e1\"</D:getetag>"
        "<C:calendar-data xmlns:C=\"urn:ietf:params:xml:ns:caldav\">BEGIN:VCALENDAR</C:calendar-data>"
        "</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>"
        "<D:response><D:href>/cal/b.ics</D:href><D:status>HTTP/1.1 404 Not Found</D:status>"
        "</D:response></D:multistatus>",
        "<lp1:multistatus xmlns:lp1=\"DAV:\"><lp1:response><lp1:href>/cal/a.ics</lp1:href>"
        "<lp1:propstat><lp1:prop><lp1:getetag>\"e1\"</lp1:getetag><calendar-data "
        "xmlns=\"urn:ietf:params:xml:ns:caldav\">BEGIN:VCALENDAR</calendar-data></lp1:prop>"
        "<lp1:status>HTTP/1.1 200 OK</lp1:status></lp1:propstat></lp1:response><lp1:response>"
        "<lp1:href>/cal/b.ics</lp1:href><lp1:status>HTTP/1.1 404 Not Found</lp1:status>"
        "</lp1:response><lp1:sync-token>tok</lp1:sync-token></lp1:multistatus>",
    };

    for (size_t i = 0; i < 2; i++) {
        struct caldav_multistatus ms = {0};

        parse_ok(variants[i], "/cal/", &ms);
        CHECK_EQ(ms.response_count, 2);
        CHECK_STR_EQ(ms.responses[0].etag, "\"e1\"");
        CHECK_STR_EQ(ms.responses[0].calendar_data, "BEGIN:VCALENDAR");
        CHECK_EQ(ms.responses[1].status, 404);
        CHECK_STR_EQ(ms.sync_token, "tok");
        caldav_multistatus_fini(&ms);
    }
    /* An element of the right name in the wrong namespace is not it. */
    {
        char *wrong = replaced(variants[0], "xmlns:C=\"urn:ietf:params:xml:ns:caldav\"",
                               "xmlns:C=\"urn:example:not-caldav\"");
        struct caldav_multistatus ms = {0};

        parse_ok(wrong, "/cal/", &ms);
        CHECK(ms.responses[0].calendar_data == NULL);
        caldav_multistatus_fini(&ms);
        free(wrong);
    }
}

static void
a_507_on_the_collection_means_truncated(void)
{
    struct caldav_multistatus ms = {0};

    parse_ok(truncated_sync, "/caldav/v2/ana@example.com/events/", &ms);
    CHECK_EQ(ms.is_truncated, 1);
    CHECK_EQ(ms.response_count, 2); /* the 507 itself is not a change */
    CHECK_STR_EQ(ms.responses[0].path, "/caldav/v2/ana@example.com/events/1a2b.ics");
    CHECK_STR_EQ(ms.responses[0].etag, "\"63890112345\"");
    CHECK_EQ(ms.responses[1].status, 404);
    CHECK_STR_EQ(ms.sync_token, "https://example.com/sync/CKDVk5LG4tgCEAE=");
    caldav_multistatus_fini(&ms);

    /* A 507 for some other href is a resource's own trouble, not the end of
     * the page. */
    parse_ok(truncated_sync, "/caldav/v2/someone-else/events/", &ms);
    CHECK_EQ(ms.is_truncated, 0);
    CHECK_EQ(ms.response_count, 3);
    CHECK_EQ(ms.responses[2].status, 507);
    caldav_multistatus_fini(&ms);
}

static void
valid_sync_token_error_is_recognised(void)
{
    struct caldav_error_body e;
    static const char prefixed[] =
        "<?xml version=\"1.0\"?><D:error xmlns:D=\"DAV:\">\n  <D:valid-sync-token/>\n</D:error>";
    static const char uid_conflict[] =
        "<d:error xmlns:d=\"DAV:\" xmlns:c=\"urn:ietf:params:xml:ns:caldav\"><c:no-uid-conflict>"
        "<d:href>/cal/other.ics</d:href></c:no-uid-conflict></d:error>";
    static const char html[] = "<html><body>403 Forbidden</body></html>";

    CHECK_EQ(caldav_xml_parse_error(radicale_bad_token, strlen(radicale_bad_token), &e), 1);
    CHECK_EQ(e.condition, CALDAV_CONDITION_VALID_SYNC_TOKEN);
    CHECK_STR_EQ(e.name, "valid-sync-token");
    caldav_error_body_fini(&e);
    CHECK_EQ(caldav_xml_parse_error(prefixed, strlen(prefixed), &e), 1);
    CHECK_EQ(e.condition, CALDAV_CONDITION_VALID_SYNC_TOKEN);
    caldav_error_body_fini(&e);
    CHECK_EQ(caldav_xml_parse_error(uid_conflict, strlen(uid_conflict), &e), 1);
    CHECK_EQ(e.condition, CALDAV_CONDITION_NO_UID_CONFLICT);
    CHECK_STR_EQ(e.href, "/cal/other.ics");
    caldav_error_body_fini(&e);
    CHECK_EQ(caldav_xml_parse_error(html, strlen(html), &e), 0);
    CHECK_EQ(e.condition, CALDAV_CONDITION_NONE);
    CHECK_EQ(caldav_xml_parse_error("", 0, &e), 0);
    CHECK_EQ(caldav_xml_parse_error("Forbidden", 9, &e), 0);
}

static void
discovery_answers(void)
{
    struct caldav_multistatus ms = {0};

    parse_ok(radicale_principal, "/", &ms);
    CHECK_EQ(ms.response_count, 1);
    CHECK_EQ(ms.responses[0].is_self, 1);
    CHECK_STR_EQ(ms.responses[0].principal_href, "/ana/");
    caldav_multistatus_fini(&ms);

    parse_ok(radicale_home, "/ana/", &ms);
    CHECK_STR_EQ(ms.responses[0].home_href, "/ana/");
    caldav_multistatus_fini(&ms);

    parse_ok(radicale_calendars, "/ana/", &ms);
    CHECK_EQ(ms.response_count, 2);
    /* The home itself: a collection, not a calendar; the properties its 404
     * propstat lists are ones it does not have. */
    CHECK_EQ(ms.responses[0].is_self, 1);
    CHECK_EQ(ms.responses[0].status, 200);
    CHECK_EQ(ms.responses[0].is_collection, 1);
    CHECK_EQ(ms.responses[0].is_calendar, 0);
    CHECK(ms.responses[0].displayname == NULL && ms.responses[0].sync_token == NULL);
    CHECK_STR_EQ(ms.responses[1].href, "/ana/work/");
    CHECK_EQ(ms.responses[1].is_calendar, 1);
    CHECK_EQ(ms.responses[1].has_vevent, 1);
    CHECK_STR_EQ(ms.responses[1].displayname, "ana/work");
    CHECK_STR_EQ(ms.responses[1].ctag,
                 "\"ca5d66c59a8e12e6801df61f5601aaa0d0380afbd1f8c3623e713eb9b5d486ed\"");
    CHECK_STR_EQ(ms.responses[1].sync_token, "http://radicale.org/ns/sync/"
                                             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495"
                                             "991b7852b855");
    caldav_multistatus_fini(&ms);
}

static void
a_tasks_only_calendar_takes_no_events(void)
{
    static const char body[] =
        "<D:multistatus xmlns:D=\"DAV:\" xmlns:C=\"urn:ietf:params:xml:ns:caldav\"><D:response>"
        "<D:href>/h/tasks/</D:href><D:propstat><D:prop><D:resourcetype><D:collection/><C:calendar/>"
        "</D:resourcetype><C:supported-calendar-component-set><C:comp name=\"VTODO\"/>"
        "</C:supported-calendar-component-set></D:prop><D:status>HTTP/1.1 200 OK</D:status>"
        "</D:propstat></D:response></D:multistatus>";
    struct caldav_multistatus ms = {0};

    parse_ok(body, "/h/", &ms);
    CHECK_EQ(ms.responses[0].is_calendar, 1);
    CHECK_EQ(ms.responses[0].has_vevent, 0);
    caldav_multistatus_fini(&ms);
}

static void
bad_answers_fail_with_a_reason(void)
{
    static const char *const bad[] = {
        "",
        "not xml at all",
        "<D:multistatus xmlns:D=\"DAV:\"><D:response>",
        "<D:error xmlns:D=\"DAV:\"><D:valid-sync-token/></D:error>",
        "<multistatus><response><href>/a</href></response></multistatus>", /* no namespace */
        "<?xml version=\"1.0\"?><!DOCTYPE m [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b "
        "\"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]><D:multistatus xmlns:D=\"DAV:\"><D:sync-token>&b;"
        "</D:sync-token></D:multistatus>",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct caldav_multistatus ms = {0};
        struct error err = {0};

        CHECK_EQ(caldav_xml_parse_multistatus(bad[i], strlen(bad[i]), "/", &ms, &err), -1);
        CHECK_EQ(err.kind, ERROR_PERMANENT);
        CHECK(strncmp(err.msg, "caldav: ", 8) == 0);
        CHECK(ms.responses == NULL && ms.sync_token == NULL);
    }
}

static void
request_bodies(void)
{
    const char *hrefs[] = {"/cal/a.ics", "/cal/b&c.ics"};
    char *s;

    s = caldav_xml_sync_collection(NULL, 1, 0);
    CHECK(strstr(s, "<D:sync-token/>") != NULL);
    CHECK(strstr(s, "<C:calendar-data/>") != NULL);
    CHECK(strstr(s, "<D:sync-level>1</D:sync-level>") != NULL);
    CHECK(strstr(s, "limit") == NULL);
    free(s);
    s = caldav_xml_sync_collection("http://x/sync/1?a=1&b=<2>", 0, 100);
    CHECK(strstr(s, "<D:sync-token>http://x/sync/1?a=1&amp;b=&lt;2&gt;</D:sync-token>") != NULL);
    CHECK(strstr(s, "<D:limit><D:nresults>100</D:nresults></D:limit>") != NULL);
    CHECK(strstr(s, "calendar-data") == NULL);
    free(s);
    s = caldav_xml_sync_collection("0", 0, 0); /* "0" is a token, not "none" */
    CHECK(strstr(s, "<D:sync-token>0</D:sync-token>") != NULL);
    free(s);
    s = caldav_xml_multiget(hrefs, 2);
    CHECK(strstr(s, "<C:calendar-multiget") != NULL);
    CHECK(strstr(s, "<D:href>/cal/a.ics</D:href>") != NULL);
    CHECK(strstr(s, "<D:href>/cal/b&amp;c.ics</D:href>") != NULL);
    free(s);
    s = caldav_xml_propfind_calendars();
    CHECK(strstr(s, "<CS:getctag/>") != NULL && strstr(s, "<D:sync-token/>") != NULL &&
          strstr(s, "<C:supported-calendar-component-set/>") != NULL);
    free(s);
    s = caldav_xml_propfind_principal();
    CHECK(strstr(s, "<D:current-user-principal/>") != NULL);
    free(s);
    s = caldav_xml_propfind_home();
    CHECK(strstr(s, "<C:calendar-home-set/>") != NULL);
    free(s);
}

static void
request_bodies_are_what_a_parser_reads(void)
{
    /* The bodies must be well-formed XML in the right namespaces: read one
     * back as a server would, through the same libxml2. */
    const char *hrefs[] = {"/c/x.ics"};
    char *s = caldav_xml_multiget(hrefs, 1);
    char *as_error = replaced(s, "C:calendar-multiget", "D:error");
    struct caldav_error_body e;

    CHECK_EQ(caldav_xml_parse_error(as_error, strlen(as_error), &e), 1);
    CHECK_EQ(e.condition, CALDAV_CONDITION_OTHER);
    CHECK_STR_EQ(e.name, "prop");
    caldav_error_body_fini(&e);
    free(as_error);
    free(s);
}

static void
hrefs_normalise(void)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"/cal/a.ics", "/cal/a.ics"},   {"https://host:8443/cal/a%2db.ics", "/cal/a-b.ics"},
        {"http://host", "/"},           {"/cal/a%2fb%20c.ics", "/cal/a%2Fb%20c.ics"},
        {"/cal/%7Eana/", "/cal/~ana/"}, {"/dav/ana%40example.com/", "/dav/ana@example.com/"},
        {"/cal/100%", "/cal/100%25"},   {"/cal/%%44c", "/cal/%25Dc"},
        {"/a://b", "/a://b"},           {"ab%3a//x/y", "ab%3A//x/y"}, /* never decoded into a URL */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *p = caldav_href_path(cases[i].in);

        CHECK_STR_EQ(p, cases[i].out);
        free(p);
    }
}

const struct check_case check_cases[] = {
    CHECK_CASE(radicale_first_sync_lists_every_event),
    CHECK_CASE(radicale_next_sync_reports_a_removal_as_404),
    CHECK_CASE(prefixes_do_not_matter),
    CHECK_CASE(a_507_on_the_collection_means_truncated),
    CHECK_CASE(valid_sync_token_error_is_recognised),
    CHECK_CASE(discovery_answers),
    CHECK_CASE(a_tasks_only_calendar_takes_no_events),
    CHECK_CASE(bad_answers_fail_with_a_reason),
    CHECK_CASE(request_bodies),
    CHECK_CASE(request_bodies_are_what_a_parser_reads),
    CHECK_CASE(hrefs_normalise),
    {0},
};
