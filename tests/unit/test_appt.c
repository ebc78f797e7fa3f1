/* SPDX-License-Identifier: MIT */

/*
 * tests/unit/test_appt.c — the canonical appointment (src/connectors/appt.c)
 * and iCalendar text (src/connectors/ical.c), with the real libical and the
 * system's zone data: daylight-saving gaps and overlaps, floating times,
 * all-day dates, one meeting in two zones, round trips, normalisation and
 * comparison.
 */
/* link: connectors */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "connectors/appt.h"
#include "connectors/ical.h"
#include "core/error.h"
#include "model/value.h"

#define DTSTAMP 1774000000 /* 2026-03-20T09:46:40Z */

/* A VCALENDAR around one VEVENT made of lines (each ending in \r\n). */
static char *
ics(const char *lines)
{
    char *s = malloc(strlen(lines) + 256);

    snprintf(s, strlen(lines) + 256,
             "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
             "UID:t1@example.com\r\nDTSTAMP:20260301T000000Z\r\n%sEND:VEVENT\r\nEND:VCALENDAR\r\n",
             lines);
    return s;
}

static cJSON *
from_ics_text(const char *text)
{
    struct error err = {0};
    cJSON *a = NULL;

    if (appt_from_ical(text, strlen(text), &a, &err) != 0)
        check_fail(__FILE__, __LINE__, "appt_from_ical: %s", err.msg);
    return a;
}

static cJSON *
from_lines(const char *lines)
{
    char *text = ics(lines);
    cJSON *a = from_ics_text(text);

    free(text);
    return a;
}

/* Fail unless got equals the JSON text want (keys in any order). */
static void
expect_json(const cJSON *got, const char *want_text, int line)
{
    cJSON *want = cJSON_Parse(want_text);
    char *g, *w;

    if (want == NULL)
        check_fail(__FILE__, line, "bad expected JSON");
    if (value_equal(got, want)) {
        cJSON_Delete(want);
        return;
    }
    g = value_canonical_text(got);
    w = value_canonical_text(want);
    check_fail(__FILE__, line, "got\n#   %s\n# want\n#   %s", g, w);
}

static const char *
str_at(const cJSON *o, const char *path)
{
    const cJSON *v = value_path_get(o, path);

    return cJSON_IsString(v) ? v->valuestring : "(none)";
}

/* --- time arithmetic ------------------------------------------------------ */

/* A zone that moves from +2 h to +3 h at utc 1000000 (spring) and back at
 * utc 2000000 (autumn). */
static int
fake_offset(void *zone, int64_t utc_s)
{
    (void)zone;
    return utc_s >= 1000000 && utc_s < 2000000 ? 3 * 3600 : 2 * 3600;
}

static void
local_times_follow_rfc5545_at_changes(void)
{
    /* Spring: local 1000000+7200 .. +10800 does not exist. */
    int64_t gap = 1000000 + 7200 + 1800;   /* half an hour into the gap */
    int64_t twice = 2000000 + 7200 + 1800; /* local time that occurs twice in autumn */

    /* A skipped time is read with the offset before the gap (+2). */
    CHECK_EQ(appt_local_to_utc(fake_offset, NULL, gap), gap - 2 * 3600);
    /* A repeated time means the first of the two (+3, still summer). */
    CHECK_EQ(appt_local_to_utc(fake_offset, NULL, twice), twice - 3 * 3600);
    /* Ordinary times on either side. */
    CHECK_EQ(appt_local_to_utc(fake_offset, NULL, 500000), 500000 - 2 * 3600);
    CHECK_EQ(appt_local_to_utc(fake_offset, NULL, 1500000), 1500000 - 3 * 3600);
}

static void
civil_arithmetic(void)
{
    struct appt_fields f;
    struct appt_text t;
    char text[APPT_TEXT_MAX];

    CHECK_EQ(appt_civil(1970, 1, 1, 0, 0, 0), 0);
    CHECK_EQ(appt_civil(2026, 3, 29, 7, 30, 0), 1774769400);
    appt_civil_split(1774769400, &f);
    CHECK(f.year == 2026 && f.month == 3 && f.day == 29 && f.hour == 7 && f.minute == 30);
    CHECK_EQ(f.weekday, 0); /* a Sunday */
    appt_civil_split(APPT_CIVIL_MIN, &f);
    CHECK(f.year == 1 && f.month == 1 && f.day == 1);
    CHECK_EQ(appt_civil(2026, 13, 1, 0, 0, 0), appt_civil(2027, 1, 1, 0, 0, 0));
    CHECK(appt_text_parse("2026-03-29T10:30:00+03:00", &t) == 0);
    CHECK(t.has_offset && t.offset_s == 10800 && !t.is_date);
    CHECK(appt_text_parse("2026-03-29T07:30:00.0000000", &t) == 0 && !t.has_offset);
    CHECK(appt_text_parse("2026-02-29", &t) != 0);
    CHECK(appt_text_parse("2026-03-29T24:00:00Z", &t) != 0);
    CHECK(appt_text_parse("2026-03-29T10:30:00+0300x", &t) != 0);
    CHECK(appt_format_instant(1774769400, text) == 0);
    CHECK_STR_EQ(text, "2026-03-29T07:30:00Z");
    CHECK(appt_format_instant(APPT_CIVIL_MAX + 1, text) != 0);
}

static void
zone_names(void)
{
    char tz[APPT_TZ_MAX];

    CHECK_EQ(appt_tz_canonical("Europe/Bucharest", tz), 1);
    CHECK_STR_EQ(tz, "Europe/Bucharest");
    CHECK_EQ(appt_tz_canonical("/mozilla.org/20050126_1/Europe/Bucharest", tz), 1);
    CHECK_STR_EQ(tz, "Europe/Bucharest");
    CHECK_EQ(appt_tz_canonical("/freeassociation.sourceforge.net/Tzfile/Europe/Berlin", tz), 1);
    CHECK_STR_EQ(tz, "Europe/Berlin");
    CHECK_EQ(appt_tz_canonical("Etc/UTC", tz), 1);
    CHECK_STR_EQ(tz, "");
    CHECK_EQ(appt_tz_canonical("Mars/Olympus_Mons", tz), 0);
    CHECK_EQ(appt_tz_canonical("../../../etc/passwd", tz), 0);
    CHECK_EQ(appt_tz_canonical("GTB Standard Time", tz), 0); /* Windows: graph_event.h */
}

/* --- daylight saving ------------------------------------------------------ */

/* Europe/Bucharest moves its clocks from 03:00 to 04:00 on 2026-03-29 and
 * from 04:00 back to 03:00 on 2026-10-25 (the change is at 01:00 UTC, as in
 * all of the EU; in Berlin the skipped hour is 02:00-03:00). */
static void
bucharest_ordinary_times_around_the_changes(void)
{
    cJSON *a = from_lines("DTSTART;TZID=Europe/Bucharest:20260328T103000\r\n"
                          "DTEND;TZID=Europe/Bucharest:20260329T103000\r\n");

    /* +02:00 before the change, +03:00 after: the meeting lasts 23 hours. */
    CHECK_STR_EQ(str_at(a, "start.at"), "2026-03-28T08:30:00Z");
    CHECK_STR_EQ(str_at(a, "end.at"), "2026-03-29T07:30:00Z");
    CHECK_STR_EQ(str_at(a, "start.tz"), "Europe/Bucharest");
    cJSON_Delete(a);
}

static void
a_skipped_local_time_moves_forward(void)
{
    /* 03:30 does not exist on 2026-03-29 in Bucharest: RFC 5545 reads it with
     * the offset before the gap (+02:00): 01:30Z, shown as 04:30. */
    cJSON *a = from_lines("DTSTART;TZID=Europe/Bucharest:20260329T033000\r\n"
                          "DURATION:PT1H\r\n");
    cJSON *b = from_lines("DTSTART;TZID=Europe/Berlin:20260329T023000\r\n"
                          "DURATION:PT1H\r\n");
    struct error err = {0};
    int64_t local;
    char *text;

    CHECK_STR_EQ(str_at(a, "start.at"), "2026-03-29T01:30:00Z");
    CHECK_STR_EQ(str_at(a, "end.at"), "2026-03-29T02:30:00Z");
    CHECK(appt_tz_utc_to_local("Europe/Bucharest", 1774747800, &local, &err) == 0);
    CHECK_EQ(local, appt_civil(2026, 3, 29, 4, 30, 0));
    /* Berlin skips 02:00-03:00: 02:30 is read with +01:00, 01:30Z. */
    CHECK_STR_EQ(str_at(b, "start.at"), "2026-03-29T01:30:00Z");
    /* Written back, it is the time that exists: 04:30 local. */
    CHECK(appt_to_ical(a, DTSTAMP, &text, &err) == 0);
    CHECK(strstr(text, "DTSTART;TZID=Europe/Bucharest:20260329T043000") != NULL);
    free(text);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static void
a_repeated_local_time_is_the_first(void)
{
    /* 03:30 happens twice on 2026-10-25 in Bucharest (at +03:00, then at
     * +02:00): RFC 5545 means the first, 00:30Z. */
    cJSON *a = from_lines("DTSTART;TZID=Europe/Bucharest:20261025T033000\r\n"
                          "DTEND;TZID=Europe/Bucharest:20261025T043000\r\n");

    CHECK_STR_EQ(str_at(a, "start.at"), "2026-10-25T00:30:00Z");
    /* 04:30 exists once, at +02:00: the meeting lasts two hours. */
    CHECK_STR_EQ(str_at(a, "end.at"), "2026-10-25T02:30:00Z");
    cJSON_Delete(a);
}

static void
a_duration_of_days_is_nominal(void)
{
    /* RFC 5545 §3.3.6: a day of DURATION is a calendar day, not 24 hours.
     * From 10:30 on the 28th in Bucharest, P1D ends at 10:30 on the 29th,
     * after the clocks jumped: 23 hours later. Hours stay exact. */
    cJSON *day = from_lines("DTSTART;TZID=Europe/Bucharest:20260328T103000\r\n"
                            "DURATION:P1DT1H\r\n");
    cJSON *week = from_lines("DTSTART;TZID=Europe/Bucharest:20261020T103000\r\n"
                             "DURATION:P1W\r\n");
    cJSON *hours = from_lines("DTSTART;TZID=Europe/Bucharest:20260328T103000\r\n"
                              "DURATION:PT24H\r\n");

    CHECK_STR_EQ(str_at(day, "end.at"), "2026-03-29T08:30:00Z");
    /* A week over the autumn change: 10:30 local again, at +02:00. */
    CHECK_STR_EQ(str_at(week, "end.at"), "2026-10-27T08:30:00Z");
    CHECK_STR_EQ(str_at(hours, "end.at"), "2026-03-29T08:30:00Z");
    cJSON_Delete(day);
    cJSON_Delete(week);
    cJSON_Delete(hours);
}

static void
a_weekly_series_keeps_its_wall_clock_across_the_change(void)
{
    /* The series starts before the change; its tz makes its occurrences stay
     * at 10:30 local, so a UTC copy of it is a different meeting. */
    cJSON *local = from_lines("DTSTART;TZID=Europe/Bucharest:20260323T103000\r\n"
                              "DTEND;TZID=Europe/Bucharest:20260323T113000\r\n"
                              "RRULE:FREQ=WEEKLY\r\n");
    cJSON *utc = from_lines("DTSTART:20260323T083000Z\r\nDTEND:20260323T093000Z\r\n"
                            "RRULE:FREQ=WEEKLY\r\n");

    CHECK_STR_EQ(str_at(local, "start.at"), str_at(utc, "start.at"));
    CHECK_EQ(appt_diff(local, utc), APPT_FIELD_START | APPT_FIELD_END);
    CHECK_EQ(appt_equal(local, utc), 0);
    cJSON_Delete(local);
    cJSON_Delete(utc);
}

/* --- kinds of time -------------------------------------------------------- */

static void
a_floating_time_stays_floating(void)
{
    struct error err = {0};
    cJSON *a = from_lines("DTSTART:20260329T103000\r\nDTEND:20260329T110000\r\n"
                          "SUMMARY:Gym\r\n"),
          *b;
    char *text;

    expect_json(a,
                "{\"uid\":\"t1@example.com\",\"title\":\"Gym\",\"status\":\"confirmed\","
                "\"start\":{\"local\":\"2026-03-29T10:30:00\"},"
                "\"end\":{\"local\":\"2026-03-29T11:00:00\"}}",
                __LINE__);
    CHECK(appt_to_ical(a, DTSTAMP, &text, &err) == 0);
    CHECK(strstr(text, "DTSTART:20260329T103000\r\n") != NULL);
    CHECK(strstr(text, "VTIMEZONE") == NULL);
    b = from_ics_text(text);
    CHECK(value_equal(a, b));
    free(text);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static void
an_all_day_event_stays_a_date(void)
{
    struct error err = {0};
    cJSON *a = from_lines("DTSTART;VALUE=DATE:20260329\r\nSUMMARY:Holiday\r\n");
    cJSON *b = from_lines("DTSTART;VALUE=DATE:20260329\r\nDTEND;VALUE=DATE:20260330\r\n"
                          "SUMMARY:Holiday\r\n");
    char *text;

    /* No DTEND: one day. The date is the same date in every zone. */
    CHECK_STR_EQ(str_at(a, "start.date"), "2026-03-29");
    CHECK_STR_EQ(str_at(a, "end.date"), "2026-03-30");
    CHECK(value_path_get(a, "start.tz") == NULL);
    CHECK_EQ(appt_equal(a, b), 1);
    CHECK(appt_to_ical(a, DTSTAMP, &text, &err) == 0);
    CHECK(strstr(text, "DTSTART;VALUE=DATE:20260329\r\n") != NULL);
    CHECK(strstr(text, "DTEND;VALUE=DATE:20260330\r\n") != NULL);
    free(text);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static void
one_meeting_in_two_zones_is_equal(void)
{
    /* 10:30 in Bucharest and 08:30 in London (both summer time) are 07:30Z. */
    cJSON *ro = from_lines("DTSTART;TZID=Europe/Bucharest:20260330T103000\r\n"
                           "DTEND;TZID=Europe/Bucharest:20260330T113000\r\nSUMMARY:Review\r\n");
    cJSON *uk = from_lines("DTSTART;TZID=Europe/London:20260330T083000\r\n"
                           "DTEND;TZID=Europe/London:20260330T093000\r\nSUMMARY:Review\r\n");
    cJSON *z = from_lines("DTSTART:20260330T073000Z\r\nDTEND:20260330T083000Z\r\n"
                          "SUMMARY:Review\r\n");
    cJSON *later = from_lines("DTSTART;TZID=Europe/London:20260330T093000\r\n"
                              "DTEND;TZID=Europe/London:20260330T103000\r\nSUMMARY:Review\r\n");

    CHECK_STR_EQ(str_at(ro, "start.at"), "2026-03-30T07:30:00Z");
    CHECK_STR_EQ(str_at(uk, "start.at"), "2026-03-30T07:30:00Z");
    CHECK_STR_EQ(str_at(uk, "start.tz"), "Europe/London");
    CHECK_EQ(appt_diff(ro, uk), 0);
    CHECK_EQ(appt_equal(ro, z), 1);
    CHECK_EQ(appt_diff(ro, later), APPT_FIELD_START | APPT_FIELD_END);
    cJSON_Delete(ro);
    cJSON_Delete(uk);
    cJSON_Delete(z);
    cJSON_Delete(later);
}

static void
zones_by_other_names(void)
{
    /* A Windows name (Outlook writes these), a vendor-prefixed IANA name, and
     * a zone only the text's own VTIMEZONE defines. */
    cJSON *win = from_lines("DTSTART;TZID=GTB Standard Time:20260330T103000\r\n"
                            "DURATION:PT30M\r\n");
    cJSON *moz = from_lines("DTSTART;TZID=/mozilla.org/20050126_1/Europe/Bucharest:"
                            "20260330T103000\r\nDURATION:PT30M\r\n");
    static const char custom[] =
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
        "BEGIN:VTIMEZONE\r\nTZID:Office Time\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\n"
        "TZOFFSETFROM:+0530\r\nTZOFFSETTO:+0530\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
        "BEGIN:VEVENT\r\nUID:c@x\r\nDTSTAMP:20260301T000000Z\r\n"
        "DTSTART;TZID=Office Time:20260330T103000\r\nDURATION:PT30M\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n";
    cJSON *own = from_ics_text(custom);

    CHECK_STR_EQ(str_at(win, "start.tz"), "Europe/Bucharest");
    CHECK_STR_EQ(str_at(win, "start.at"), "2026-03-30T07:30:00Z");
    CHECK_STR_EQ(str_at(win, "end.at"), "2026-03-30T08:00:00Z");
    CHECK_EQ(appt_equal(win, moz), 1);
    CHECK_STR_EQ(str_at(moz, "start.tz"), "Europe/Bucharest");
    CHECK_STR_EQ(str_at(own, "start.at"), "2026-03-30T05:00:00Z");
    CHECK(value_path_get(own, "start.tz") == NULL); /* no IANA name to keep */
    cJSON_Delete(win);
    cJSON_Delete(moz);
    cJSON_Delete(own);
}

/* --- a recurring meeting, whole ------------------------------------------- */

static const char weekly_ics[] =
    "BEGIN:VCALENDAR\r\n"
    "VERSION:2.0\r\n"
    "PRODID:-//Example Corp//Calendar 1.0//EN\r\n"
    "BEGIN:VTIMEZONE\r\n"
    "TZID:Europe/Bucharest\r\n"
    "BEGIN:STANDARD\r\n"
    "DTSTART:19701025T040000\r\n"
    "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\n"
    "TZOFFSETFROM:+0300\r\n"
    "TZOFFSETTO:+0200\r\n"
    "END:STANDARD\r\n"
    "BEGIN:DAYLIGHT\r\n"
    "DTSTART:19700329T030000\r\n"
    "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\n"
    "TZOFFSETFROM:+0200\r\n"
    "TZOFFSETTO:+0300\r\n"
    "END:DAYLIGHT\r\n"
    "END:VTIMEZONE\r\n"
    "BEGIN:VEVENT\r\n"
    "UID:weekly-1@example.com\r\n"
    "DTSTAMP:20260301T090000Z\r\n"
    "DTSTART;TZID=Europe/Bucharest:20260330T103000\r\n"
    "DTEND;TZID=Europe/Bucharest:20260330T113000\r\n"
    "SUMMARY:Standup\\, team A\r\n"
    "DESCRIPTION:Line one\\nLine two\r\n"
    "LOCATION:Room 4\r\n"
    "SEQUENCE:2\r\n"
    "STATUS:CONFIRMED\r\n"
    "RRULE:FREQ=WEEKLY;UNTIL=20260629T075959Z\r\n"
    "EXDATE;TZID=Europe/Bucharest:20260413T103000\r\n"
    "ORGANIZER;CN=Ana Pop:mailto:Ana@Example.com\r\n"
    "ATTENDEE;CN=Bogdan;PARTSTAT=ACCEPTED:mailto:bogdan@example.com\r\n"
    "ATTENDEE;PARTSTAT=TENTATIVE;ROLE=OPT-PARTICIPANT:mailto:carmen@example.com\r\n"
    "ATTENDEE;CUTYPE=ROOM:urn:uuid:8c1f0a4e-room-4\r\n"
    "END:VEVENT\r\n"
    "BEGIN:VEVENT\r\n"
    "UID:weekly-1@example.com\r\n"
    "RECURRENCE-ID;TZID=Europe/Bucharest:20260406T103000\r\n"
    "DTSTAMP:20260301T090000Z\r\n"
    "DTSTART;TZID=Europe/Bucharest:20260406T120000\r\n"
    "DTEND;TZID=Europe/Bucharest:20260406T130000\r\n"
    "SUMMARY:Standup (moved)\r\n"
    "DESCRIPTION:Line one\\nLine two\r\n"
    "LOCATION:Room 4\r\n"
    "SEQUENCE:3\r\n"
    "ORGANIZER;CN=Ana Pop:mailto:ana@example.com\r\n"
    "ATTENDEE;CN=Bogdan;PARTSTAT=ACCEPTED:mailto:bogdan@example.com\r\n"
    "ATTENDEE;PARTSTAT=TENTATIVE;ROLE=OPT-PARTICIPANT:mailto:carmen@example.com\r\n"
    "END:VEVENT\r\n"
    "BEGIN:VEVENT\r\n"
    "UID:weekly-1@example.com\r\n"
    "RECURRENCE-ID;TZID=Europe/Bucharest:20260420T103000\r\n"
    "DTSTAMP:20260301T090000Z\r\n"
    "DTSTART;TZID=Europe/Bucharest:20260420T103000\r\n"
    "DTEND;TZID=Europe/Bucharest:20260420T113000\r\n"
    "SUMMARY:Standup\\, team A\r\n"
    "STATUS:CANCELLED\r\n"
    "END:VEVENT\r\n"
    "END:VCALENDAR\r\n";

static const char weekly_json[] =
    "{\"uid\":\"weekly-1@example.com\",\"title\":\"Standup, team A\","
    "\"description\":\"Line one\\nLine two\",\"location\":\"Room 4\",\"status\":\"confirmed\","
    "\"start\":{\"at\":\"2026-03-30T07:30:00Z\",\"tz\":\"Europe/Bucharest\"},"
    "\"end\":{\"at\":\"2026-03-30T08:30:00Z\",\"tz\":\"Europe/Bucharest\"},"
    "\"organizer\":{\"email\":\"ana@example.com\",\"name\":\"Ana Pop\"},"
    "\"attendees\":[{\"email\":\"bogdan@example.com\",\"name\":\"Bogdan\",\"status\":\"accepted\"},"
    "{\"email\":\"carmen@example.com\",\"status\":\"tentative\",\"optional\":true}],"
    "\"recurrence\":{\"rrule\":\"FREQ=WEEKLY;UNTIL=20260629T075959Z;BYDAY=MO\","
    "\"exdates\":[\"2026-04-13T07:30:00Z\",\"2026-04-20T07:30:00Z\"]},"
    "\"exceptions\":[{\"recurrence_id\":\"2026-04-06T07:30:00Z\",\"title\":\"Standup (moved)\","
    "\"start\":{\"at\":\"2026-04-06T09:00:00Z\",\"tz\":\"Europe/Bucharest\"},"
    "\"end\":{\"at\":\"2026-04-06T10:00:00Z\",\"tz\":\"Europe/Bucharest\"}}],"
    "\"sequence\":2}";

static void
a_series_with_overrides_reads_whole(void)
{
    cJSON *a = from_ics_text(weekly_ics);

    /* The cancelled override is an exdate; the moved one keeps only what
     * differs from the series; the room without a mailbox is not carried. */
    expect_json(a, weekly_json, __LINE__);
    cJSON_Delete(a);
}

static void
ics_round_trips(void)
{
    struct error err = {0};
    cJSON *a = from_ics_text(weekly_ics), *b, *c;
    char *text, *again;

    CHECK(appt_to_ical(a, DTSTAMP, &text, &err) == 0);
    /* What a CalDAV server will store. */
    CHECK(strstr(text, "PRODID:-//concord//concord//EN\r\n") != NULL);
    CHECK(strstr(text, "BEGIN:VTIMEZONE\r\nTZID:Europe/Bucharest\r\n") != NULL);
    CHECK(strstr(text, "DTSTAMP:20260320T094640Z\r\n") != NULL);
    CHECK(strstr(text, "DTSTART;TZID=Europe/Bucharest:20260330T103000\r\n") != NULL);
    CHECK(strstr(text, "EXDATE;TZID=Europe/Bucharest:20260413T103000\r\n") != NULL);
    CHECK(strstr(text, "EXDATE;TZID=Europe/Bucharest:20260420T103000\r\n") != NULL);
    CHECK(strstr(text, "RECURRENCE-ID;TZID=Europe/Bucharest:20260406T103000\r\n") != NULL);
    CHECK(strstr(text, "DTSTART;TZID=Europe/Bucharest:20260406T120000\r\n") != NULL);
    CHECK(strstr(text, "SUMMARY:Standup\\, team A\r\n") != NULL);
    CHECK(strstr(text, "ATTENDEE;CN=Bogdan;PARTSTAT=ACCEPTED:mailto:bogdan@example.com") != NULL);
    /* The zone is cut to the observances in force from 2025 on. */
    CHECK(strstr(text, "DTSTART:18911001T000000") == NULL);
    CHECK(strstr(text, "TZOFFSETTO:+0300") != NULL);
    b = from_ics_text(text);
    expect_json(b, weekly_json, __LINE__);
    /* Writing is stable: the second text is the first. */
    CHECK(appt_to_ical(b, DTSTAMP, &again, &err) == 0);
    CHECK_STR_EQ(again, text);
    c = from_ics_text(again);
    CHECK_EQ(appt_diff(a, c), 0);
    free(text);
    free(again);
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(c);
}

static void
an_override_that_clears_a_field(void)
{
    static const char text[] =
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n"
        "BEGIN:VEVENT\r\nUID:u\r\nDTSTAMP:20260301T000000Z\r\nDTSTART;VALUE=DATE:20260401\r\n"
        "RRULE:FREQ=MONTHLY;COUNT=3\r\nSUMMARY:Rent\r\nLOCATION:Bank\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:u\r\nDTSTAMP:20260301T000000Z\r\nRECURRENCE-ID;VALUE=DATE:20260501\r\n"
        "DTSTART;VALUE=DATE:20260502\r\nSUMMARY:Rent\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    struct error err = {0};
    cJSON *a = from_ics_text(text), *b;
    char *out;

    expect_json(a,
                "{\"uid\":\"u\",\"title\":\"Rent\",\"location\":\"Bank\",\"status\":\"confirmed\","
                "\"start\":{\"date\":\"2026-04-01\"},\"end\":{\"date\":\"2026-04-02\"},"
                "\"recurrence\":{\"rrule\":\"FREQ=MONTHLY;COUNT=3;BYMONTHDAY=1\"},"
                "\"exceptions\":[{\"recurrence_id\":\"2026-05-01\",\"location\":null,"
                "\"start\":{\"date\":\"2026-05-02\"},\"end\":{\"date\":\"2026-05-03\"}}]}",
                __LINE__);
    CHECK(appt_to_ical(a, DTSTAMP, &out, &err) == 0);
    CHECK(strstr(out, "RECURRENCE-ID;VALUE=DATE:20260501\r\n") != NULL);
    b = from_ics_text(out);
    CHECK_EQ(appt_diff(a, b), 0);
    free(out);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static void
ics_that_cannot_be_read(void)
{
    static const struct {
        const char *text, *says;
    } cases[] = {
        {"hello", "not iCalendar"},
        {"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", "no VEVENT"},
        {"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART:20260101T000000Z\r\nEND:VEVENT\r\n"
         "BEGIN:VEVENT\r\nUID:b\r\nDTSTART:20260101T000000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
         "two UIDs"},
        {"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nRECURRENCE-ID:20260101T000000Z\r\n"
         "DTSTART:20260101T000000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
         "without their series"},
        {"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nSUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
         "DTSTART is missing"},
        {"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART;TZID=Nowhere/City:20260101T000000\r\n"
         "END:VEVENT\r\nEND:VCALENDAR\r\n",
         "TZID \"Nowhere/City\""},
        {"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART:20260101T000000Z\r\n"
         "EXRULE:FREQ=DAILY\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
         "EXRULE"},
        {"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART:tomorrow\r\nEND:VEVENT\r\n"
         "END:VCALENDAR\r\n",
         "DTSTART"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct error err = {0};
        cJSON *a = NULL;

        if (appt_from_ical(cases[i].text, strlen(cases[i].text), &a, &err) != -1)
            check_fail(__FILE__, __LINE__, "case %zu was read", i);
        CHECK_EQ(err.kind, ERROR_MAPPING);
        if (strstr(err.msg, cases[i].says) == NULL)
            check_fail(__FILE__, __LINE__, "case %zu: \"%s\" does not say \"%s\"", i, err.msg,
                       cases[i].says);
        CHECK(a == NULL);
    }
    {
        struct error err = {0};
        cJSON *a = NULL;

        CHECK_EQ(appt_from_ical("BEGIN:VCALENDAR\0", 16, &a, &err), -1);
        CHECK(strstr(err.msg, "NUL") != NULL);
    }
}

/* --- normalising and comparing -------------------------------------------- */

static void
normalize_makes_loose_input_canonical(void)
{
    static const char loose[] =
        "{\"uid\":\"x1\",\"title\":\"Call\",\"description\":\"a\\r\\nb\",\"location\":\"\","
        "\"status\":\"Canceled\","
        "\"start\":{\"at\":\"2026-03-30T10:30:00+03:00\",\"tz\":\"Europe/Bucharest\"},"
        "\"end\":{\"at\":\"2026-03-30T11:30:00\",\"tz\":\"Europe/Bucharest\"},"
        "\"attendees\":[{\"email\":\"mailto:Zed@Example.COM\"},"
        "{\"email\":\" amy@example.com \",\"status\":\"needsAction\",\"name\":\"Amy\"},"
        "{\"email\":\"amy@example.com\",\"name\":\"Amy again\"}],"
        "\"recurrence\":{\"rrule\":\"RRULE:FREQ=WEEKLY;INTERVAL=1\","
        "\"exdates\":[\"2026-04-13T10:30:00\",\"2026-04-06T07:30:00Z\",\"2026-04-13T07:30:00Z\"]},"
        "\"exceptions\":[{\"recurrence_id\":\"2026-04-20T10:30:00+03:00\",\"title\":\"Call\"}],"
        "\"sequence\":4}";
    static const char want[] =
        "{\"uid\":\"x1\",\"title\":\"Call\",\"description\":\"a\\nb\",\"status\":\"cancelled\","
        "\"start\":{\"at\":\"2026-03-30T07:30:00Z\",\"tz\":\"Europe/Bucharest\"},"
        "\"end\":{\"at\":\"2026-03-30T08:30:00Z\",\"tz\":\"Europe/Bucharest\"},"
        "\"attendees\":[{\"email\":\"amy@example.com\",\"name\":\"Amy\",\"status\":\"needs-action\"},"
        "{\"email\":\"zed@example.com\",\"status\":\"needs-action\"}],"
        "\"recurrence\":{\"rrule\":\"FREQ=WEEKLY;BYDAY=MO\","
        "\"exdates\":[\"2026-04-06T07:30:00Z\",\"2026-04-13T07:30:00Z\"]},"
        "\"sequence\":4}";
    struct error err = {0};
    cJSON *in = cJSON_Parse(loose), *out = NULL, *again = NULL;

    CHECK(appt_normalize(in, &out, &err) == 0);
    expect_json(out, want, __LINE__);
    /* Canonical input comes back equal. */
    CHECK(appt_normalize(out, &again, &err) == 0);
    expect_json(again, want, __LINE__);
    cJSON_Delete(in);
    cJSON_Delete(out);
    cJSON_Delete(again);
}

static void
normalize_refuses_what_it_cannot_mean(void)
{
    static const struct {
        const char *json, *says;
    } cases[] = {
        {"[]", "JSON object"},
        {"{\"uid\":\"a\",\"titel\":\"x\",\"start\":{\"date\":\"2026-01-01\"}}", "titel"},
        {"{\"title\":\"x\",\"start\":{\"date\":\"2026-01-01\"}}", "uid"},
        {"{\"uid\":\"a\"}", "start is missing"},
        {"{\"uid\":\"a\",\"start\":{\"at\":\"2026-01-01T10:00:00\"}}", "needs an offset or a tz"},
        {"{\"uid\":\"a\",\"start\":{\"date\":\"2026-01-01\"},\"end\":{\"at\":\"2026-01-01T10:00:00Z\"}}",
         "same kind"},
        {"{\"uid\":\"a\",\"start\":{\"at\":\"2026-01-01T10:00:00Z\"},\"end\":{\"at\":\"2026-01-01T09:00:00Z\"}}",
         "end is before start"},
        {"{\"uid\":\"a\",\"start\":{\"at\":\"2026-01-01T10:00:00Z\",\"tz\":\"Mars/Base\"}}",
         "unknown time zone"},
        {"{\"uid\":\"a\",\"status\":\"maybe\",\"start\":{\"date\":\"2026-01-01\"}}", "status"},
        {"{\"uid\":\"a\",\"start\":{\"date\":\"2026-01-01\"},\"attendees\":[{\"email\":\"nobody\"}]}",
         "not an email"},
        {"{\"uid\":\"a\",\"start\":{\"date\":\"2026-01-01\"},\"recurrence\":{\"rrule\":\"FREQ=SOMETIMES\"}}",
         "not an RRULE"},
        {"{\"uid\":\"a\",\"start\":{\"date\":\"2026-01-01\"},\"recurrence\":{\"rrule\":\"FREQ=DAILY\","
         "\"exdates\":[\"2026-01-02T10:00:00Z\"]}}",
         "all-day"},
        {"{\"uid\":\"a\",\"start\":{\"date\":\"2026-01-01\"},\"exceptions\":[{\"recurrence_id\":\"2026-01-02\"}]}",
         "without a recurrence"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct error err = {0};
        cJSON *in = cJSON_Parse(cases[i].json), *out = NULL;

        CHECK(in != NULL);
        CHECK_EQ(appt_normalize(in, &out, &err), -1);
        CHECK_EQ(err.kind, ERROR_MAPPING);
        if (strstr(err.msg, cases[i].says) == NULL)
            check_fail(__FILE__, __LINE__, "case %zu: \"%s\" does not say \"%s\"", i, err.msg,
                       cases[i].says);
        cJSON_Delete(in);
    }
}

static void
diff_names_the_fields(void)
{
    cJSON *a = from_ics_text(weekly_ics), *b = cJSON_Duplicate(a, 1);
    char text[64];

    cJSON_ReplaceItemInObject(b, "title", cJSON_CreateString("Standup, team B"));
    cJSON_DeleteItemFromObject(b, "location");
    cJSON_ReplaceItemInObject(b, "sequence", cJSON_CreateNumber(3));
    CHECK_EQ(appt_diff(a, b), APPT_FIELD_TITLE | APPT_FIELD_LOCATION | APPT_FIELD_SEQUENCE);
    CHECK_STR_EQ(appt_diff_text(appt_diff(a, b), text, sizeof(text)), "title, location, sequence");
    CHECK_EQ(appt_equal(a, b), 0);
    /* A new sequence or another system's uid alone is the same meeting. */
    cJSON_Delete(b);
    b = cJSON_Duplicate(a, 1);
    cJSON_ReplaceItemInObject(b, "sequence", cJSON_CreateNumber(9));
    cJSON_ReplaceItemInObject(b, "uid", cJSON_CreateString("040000008200E00074C5B7101A82E008"));
    CHECK_EQ(appt_diff(a, b), APPT_FIELD_SEQUENCE | APPT_FIELD_UID);
    CHECK_EQ(appt_equal(a, b), 1);
    CHECK_STR_EQ(appt_field_name(APPT_FIELD_EXCEPTIONS), "exceptions");
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static void
an_occurrence_in_full(void)
{
    struct error err = {0};
    cJSON *a = from_ics_text(weekly_ics), *occ = NULL;
    const cJSON *exc = cJSON_GetArrayItem(cJSON_GetObjectItem(a, "exceptions"), 0);

    CHECK(appt_occurrence(a, exc, &occ, &err) == 0);
    CHECK_STR_EQ(str_at(occ, "title"), "Standup (moved)");
    CHECK_STR_EQ(str_at(occ, "location"), "Room 4");
    CHECK_STR_EQ(str_at(occ, "start.at"), "2026-04-06T09:00:00Z");
    CHECK_STR_EQ(str_at(occ, "recurrence_id"), "2026-04-06T07:30:00Z");
    CHECK(cJSON_GetObjectItem(occ, "recurrence") == NULL);
    CHECK_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(occ, "attendees")), 2);
    cJSON_Delete(occ);
    cJSON_Delete(a);
}

/* A recurrence id is an occurrence when the series' start, rdates or
 * rule give it: by wall clock in the series' zone, past UNTIL too. */
static void
occurrences_are_on_the_series_grid(void)
{
    struct error err = {0};
    cJSON *a = from_ics_text(weekly_ics), *loose, *day = NULL;

    CHECK_EQ(appt_occurs(a, "2026-03-30T07:30:00Z"), 1);
    CHECK_EQ(appt_occurs(a, "2026-04-06T07:30:00Z"), 1);
    CHECK_EQ(appt_occurs(a, "2026-04-06T08:30:00Z"), 0); /* an hour off */
    CHECK_EQ(appt_occurs(a, "2026-04-07T07:30:00Z"), 0); /* a Tuesday */
    CHECK_EQ(appt_occurs(a, "2026-11-02T08:30:00Z"), 1); /* 10:30 after the change */
    CHECK_EQ(appt_occurs(a, "2026-11-02T07:30:00Z"), 0);
    CHECK_EQ(appt_occurs(a, "next week"), -1);
    loose = cJSON_Parse("{\"uid\": \"d@x\", \"start\": {\"date\": \"2026-05-04\"},"
                        " \"end\": {\"date\": \"2026-05-05\"},"
                        " \"recurrence\": {\"rrule\": \"FREQ=WEEKLY;COUNT=2\","
                        " \"rdates\": [\"2026-05-06\"]}}");
    CHECK(appt_normalize(loose, &day, &err) == 0);
    CHECK_EQ(appt_occurs(day, "2026-05-11"), 1);
    CHECK_EQ(appt_occurs(day, "2026-05-06"), 1);
    CHECK_EQ(appt_occurs(day, "2026-05-12"), 0);
    cJSON_Delete(day);
    cJSON_Delete(loose);
    /* Too far to step to: not known, so never taken for a stale one. */
    loose = cJSON_Parse("{\"uid\": \"m@x\", \"start\": {\"at\": \"2026-01-01T00:00:00Z\"},"
                        " \"recurrence\": {\"rrule\": \"FREQ=MINUTELY\"}}");
    CHECK(appt_normalize(loose, &day, &err) == 0);
    CHECK_EQ(appt_occurs(day, "2026-01-01T00:10:00Z"), 1);
    CHECK_EQ(appt_occurs(day, "2027-01-01T00:00:00Z"), -1);
    cJSON_Delete(day);
    cJSON_Delete(loose);
    cJSON_Delete(a);
}

/* A parameter value (CN) is RFC 6868 text: ^^, ^n and ^' are a caret, a
 * line break and a quote, so a caret a name holds is written as ^^. */
static void
a_caret_in_a_name_round_trips(void)
{
    struct error err = {0};
    cJSON *a = cJSON_Parse(
              "{\"uid\":\"u1\",\"start\":{\"at\":\"2026-03-23T08:30:00Z\"},"
              "\"organizer\":{\"email\":\"o@x.com\",\"name\":\"Ops ^_^\"},"
              "\"attendees\":[{\"email\":\"a@x.com\",\"name\":\"x^ny ^^ z^'q \\\"w\\\"\"}]}"),
          *n = NULL, *b;
    char *text;

    CHECK(appt_normalize(a, &n, &err) == 0);
    CHECK(appt_to_ical(n, DTSTAMP, &text, &err) == 0);
    b = from_ics_text(text);
    CHECK_STR_EQ(str_at(b, "attendees.0.name"), "x^ny ^^ z^'q \"w\"");
    CHECK_STR_EQ(str_at(b, "organizer.name"), "Ops ^_^");
    CHECK(value_equal(n, b));
    free(text);
    cJSON_Delete(a);
    cJSON_Delete(n);
    cJSON_Delete(b);
}

/* Inputs the fuzzer found (tests/fuzz/corpus/fuzz_ical/crash-*), as the
 * behaviour they pinned down. */
static void
fuzz_finds_stay_fixed(void)
{
    struct error err = {0};
    static const char far[] = "BEGIN:VEVENT\r\nUID:bare\r\nDTSTART:40520802T090000Z\r\n"
                              "END:VEVENT\r\n";
    cJSON *a = NULL, *b;
    char *text;

    /* libical writes no year past 3000, so none is read. */
    CHECK_EQ(appt_from_ical(far, strlen(far), &a, &err), -1);
    CHECK(strstr(err.msg, "DTSTART") != NULL);
    /* Text is cleaned once, so every writer and reader agrees on it: a byte
     * that is not UTF-8, a control character, trailing blanks. */
    a = from_lines("DTSTART:20260401T090000Z\r\nSUMMARY:Team \x01 \r\n"
                   "ATTENDEE;CN=Bogd\xff\xff"
                   "an:mailto:b@example.com\r\n");
    CHECK_STR_EQ(str_at(a, "title"), "Team");
    CHECK_STR_EQ(str_at(a, "attendees.0.name"), "Bogd\xef\xbf\xbd\xef\xbf\xbd"
                                                "an");
    CHECK(appt_to_ical(a, DTSTAMP, &text, &err) == 0);
    b = from_ics_text(text);
    CHECK(value_equal(a, b));
    free(text);
    cJSON_Delete(a);
    cJSON_Delete(b);
    /* A uid with a line break in it cannot be written back: refused. */
    error_clear(&err);
    a = cJSON_Parse("{\"uid\":\"a\\rb\",\"start\":{\"date\":\"2026-01-01\"}}");
    CHECK_EQ(appt_normalize(a, &b, &err), -1);
    CHECK(strstr(err.msg, "control character") != NULL);
    cJSON_Delete(a);
}

const struct check_case check_cases[] = {
    CHECK_CASE(local_times_follow_rfc5545_at_changes),
    CHECK_CASE(civil_arithmetic),
    CHECK_CASE(zone_names),
    CHECK_CASE(bucharest_ordinary_times_around_the_changes),
    CHECK_CASE(a_skipped_local_time_moves_forward),
    CHECK_CASE(a_repeated_local_time_is_the_first),
    CHECK_CASE(a_duration_of_days_is_nominal),
    CHECK_CASE(a_weekly_series_keeps_its_wall_clock_across_the_change),
    CHECK_CASE(a_floating_time_stays_floating),
    CHECK_CASE(an_all_day_event_stays_a_date),
    CHECK_CASE(one_meeting_in_two_zones_is_equal),
    CHECK_CASE(zones_by_other_names),
    CHECK_CASE(a_series_with_overrides_reads_whole),
    CHECK_CASE(ics_round_trips),
    CHECK_CASE(an_override_that_clears_a_field),
    CHECK_CASE(ics_that_cannot_be_read),
    CHECK_CASE(normalize_makes_loose_input_canonical),
    CHECK_CASE(normalize_refuses_what_it_cannot_mean),
    CHECK_CASE(diff_names_the_fields),
    CHECK_CASE(an_occurrence_in_full),
    CHECK_CASE(occurrences_are_on_the_series_grid),
    CHECK_CASE(a_caret_in_a_name_round_trips),
    CHECK_CASE(fuzz_finds_stay_fixed),
    {0},
};
