/* SPDX-License-Identifier: MIT */

/*
 * tests/unit/test_shape.c — calendar collections' records as appointments
 * (src/engine/shape.c): comparing as instants, laying a record's mapped
 * fields over the copy, the requests a write makes (only what changed;
 * Google's id from the idempotency key; Graph's cancel action), the base
 * after a write, and a page of Google's change list read with a fake GET,
 * a series read whole whatever instance the page named.
 */
/* link: engine */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "config/config.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include "engine/engine_int.h"
#include "engine/shape.h"
#include "model/value.h"

static struct config_system gsys = {.name = "gcal", .base_url = "http://g"};
static struct config_system msys = {.name = "ms", .base_url = "http://m"};
static struct config_collection gcc = {.name = "gcal.events",
                                       .system = &gsys,
                                       .idempotency_field = "id",
                                       .shape = CONFIG_SHAPE_GCAL_EVENT,
                                       .shape_events = "/calendars/primary/events"};
static struct config_collection mcc = {.name = "ms.events",
                                       .system = &msys,
                                       .idempotency_field = "transactionId",
                                       .shape = CONFIG_SHAPE_GRAPH_EVENT,
                                       .shape_events = "/me/events"};
static struct engine_coll gcoll = {.cfg = &gcc};
static struct engine_coll mcoll = {.cfg = &mcc};

/* A base: a record as a read gives it. */
static const char base_text[] =
    "{\"id\":\"ev1\",\"uid\":\"u1@example.com\",\"title\":\"Visit\",\"status\":\"confirmed\","
    "\"start\":{\"at\":\"2026-05-04T07:30:00Z\",\"tz\":\"Europe/Bucharest\"},"
    "\"end\":{\"at\":\"2026-05-04T08:15:00Z\",\"tz\":\"Europe/Bucharest\"},"
    "\"attendees\":[{\"email\":\"ana@example.com\",\"status\":\"accepted\"}],"
    "\"updated\":\"2026-05-01T10:00:00Z\"}";

static cJSON *
json(const char *text)
{
    cJSON *j = cJSON_Parse(text);

    CHECK(j != NULL);
    return j;
}

static void
one_meeting_in_two_zones_is_the_same(void)
{
    cJSON *rec = json(base_text), *moved;

    /* The same instants written from London, another "updated": the same. */
    cJSON_ReplaceItemInObjectCaseSensitive(
        rec, "start", json("{\"at\":\"2026-05-04T07:30:00Z\",\"tz\":\"Europe/London\"}"));
    cJSON_ReplaceItemInObjectCaseSensitive(rec, "updated", cJSON_CreateString("2026-05-02"));
    CHECK_EQ(shape_same(rec, base_text), 1);
    moved = cJSON_Duplicate(rec, 1);
    cJSON_ReplaceItemInObjectCaseSensitive(moved, "start",
                                           json("{\"at\":\"2026-05-04T07:00:00Z\"}"));
    CHECK_EQ(shape_same(moved, base_text), 0);
    CHECK_EQ(shape_same(rec, NULL), 0);
    cJSON_Delete(moved);
    cJSON_Delete(rec);
}

static void
a_write_differs_only_in_what_it_means(void)
{
    cJSON *base = json(base_text);
    /* map_out's output: the same instant with an offset, another zone name. */
    cJSON *same = json("{\"title\":\"Visit\",\"start\":{\"at\":\"2026-05-04T10:30:00+03:00\","
                       "\"tz\":\"Europe/Istanbul\"},\"end\":{\"at\":\"2026-05-04T08:15:00Z\"}}");
    cJSON *other = json("{\"title\":\"Visit (moved)\"}");
    cJSON *cleared = json("{\"attendees\":null}");

    CHECK_EQ(shape_differs(&gcoll, same, base), 0);
    CHECK_EQ(shape_differs(&gcoll, other, base), 1);
    CHECK_EQ(shape_differs(&gcoll, cleared, base), 1);
    CHECK_EQ(shape_differs(&gcoll, other, NULL), 1);
    cJSON_Delete(base);
    cJSON_Delete(same);
    cJSON_Delete(other);
    cJSON_Delete(cleared);
}

static void
desired_is_laid_over_the_copy(void)
{
    struct error err = {0};
    cJSON *d = json("{\"title\":\"Visit 2\",\"start\":{\"at\":\"2026-05-04T08:00:00Z\"},"
                    "\"end\":{\"at\":\"2026-05-04T08:45:00Z\"}}");
    const cJSON *start;

    CHECK_EQ(shape_desired(&gcoll, "", 12, base_text, &d, &err), 0);
    /* The copy's zone and attendees stay; the record's fields win. */
    start = cJSON_GetObjectItemCaseSensitive(d, "start");
    CHECK_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(start, "tz")),
                 "Europe/Bucharest");
    CHECK_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "title")), "Visit 2");
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(d, "attendees")) == 1);
    CHECK(cJSON_GetObjectItemCaseSensitive(d, "id") == NULL);
    cJSON_Delete(d);
    /* A create: no copy; a uid is made; a date replaces an instant. */
    d = json("{\"title\":\"Day off\",\"start\":{\"date\":\"2026-05-04\"}}");
    CHECK_EQ(shape_desired(&gcoll, "", 12, NULL, &d, &err), 0);
    CHECK_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "uid")),
                 "concord-12@gcal.events");
    cJSON_Delete(d);
    /* A new store's uid carries its part, as its keys do. */
    d = json("{\"title\":\"Day off\",\"start\":{\"date\":\"2026-05-04\"}}");
    CHECK_EQ(shape_desired(&gcoll, "a1b2c3d4e5", 12, NULL, &d, &err), 0);
    CHECK_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "uid")),
                 "concord-a1b2c3d4e5-12@gcal.events");
    cJSON_Delete(d);
    /* What no calendar can hold is refused with a reason. */
    d = json("{\"title\":\"x\",\"start\":{\"at\":\"nonsense\"}}");
    CHECK_EQ(shape_desired(&gcoll, "", 12, NULL, &d, &err), -1);
    CHECK_EQ(err.kind, ERROR_MAPPING);
    cJSON_Delete(d);
}

static cJSON *
desired_of(const struct engine_coll *c, const char *base, const char *fields, const char *key)
{
    struct error err = {0};
    cJSON *d = json(fields);

    CHECK_EQ(shape_desired(c, "", 12, base, &d, &err), 0);
    if (key != NULL)
        cJSON_AddStringToObject(d, c->cfg->idempotency_field, key);
    return d;
}

static void
requests_send_what_the_system_wants(void)
{
    struct shape_request req;
    struct error err = {0};
    cJSON *d = desired_of(&gcoll, NULL,
                          "{\"title\":\"Visit\",\"start\":{\"at\":\"2026-05-04T07:30:00Z\","
                          "\"tz\":\"Europe/Bucharest\"},\"end\":{\"at\":\"2026-05-04T08:15:00Z\","
                          "\"tz\":\"Europe/Bucharest\"}}",
                          "concord-12-3");
    cJSON *body;

    /* Google create: the id from the key, base32hex. */
    CHECK_EQ(shape_request(&gcoll, d, NULL, NULL, NULL, &req, &err), 0);
    body = json(req.body);
    CHECK_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "id")),
                 "concordv12v3");
    CHECK_STR_EQ(cJSON_GetStringValue(value_path_get(body, "start.dateTime")),
                 "2026-05-04T10:30:00+03:00");
    CHECK(req.method == NULL && req.path == NULL);
    cJSON_Delete(body);
    free(req.body);
    cJSON_Delete(d);
    /* Google update: only what changed, never the iCalUID. */
    d = desired_of(&gcoll, base_text, "{\"title\":\"Visit (moved)\"}", NULL);
    CHECK_EQ(shape_request(&gcoll, d, base_text, "ev1", NULL, &req, &err), 0);
    CHECK_STR_EQ(req.body, "{\"summary\":\"Visit (moved)\"}");
    free(req.body);
    cJSON_Delete(d);
    /* Graph create: transactionId; Graph cancel: the action. */
    d = desired_of(&mcoll, NULL,
                   "{\"title\":\"Visit\",\"start\":{\"at\":\"2026-05-04T07:30:00Z\"}}",
                   "concord-12-3");
    CHECK_EQ(shape_request(&mcoll, d, NULL, NULL, NULL, &req, &err), 0);
    body = json(req.body);
    CHECK_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(body, "transactionId")),
                 "concord-12-3");
    cJSON_Delete(body);
    free(req.body);
    cJSON_Delete(d);
    d = desired_of(&mcoll, base_text, "{\"status\":\"cancelled\"}", NULL);
    CHECK_EQ(shape_request(&mcoll, d, base_text, "ev1", NULL, &req, &err), 0);
    CHECK_STR_EQ(req.method, "POST");
    CHECK_STR_EQ(req.path, "/me/events/ev1/cancel");
    free(req.body);
    free(req.method);
    free(req.path);
    cJSON_Delete(d);
}

static void
the_new_base_is_the_answer_read_back(void)
{
    cJSON *answer = json("{\"id\":\"concordv12v3\",\"status\":\"confirmed\",\"summary\":\"Visit\","
                         "\"iCalUID\":\"u1@example.com\",\"updated\":\"2026-05-04T00:00:01Z\","
                         "\"start\":{\"dateTime\":\"2026-05-04T10:30:00+03:00\","
                         "\"timeZone\":\"Europe/Bucharest\"},"
                         "\"end\":{\"dateTime\":\"2026-05-04T11:15:00+03:00\","
                         "\"timeZone\":\"Europe/Bucharest\"}}");
    char *base =
        shape_new_base(&gcoll, base_text, "concordv12v3", answer, 1, NULL, SHAPE_STEP_SERIES, NULL);
    cJSON *b = json(base);

    CHECK_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "id")), "concordv12v3");
    CHECK_STR_EQ(cJSON_GetStringValue(value_path_get(b, "start.at")), "2026-05-04T07:30:00Z");
    CHECK_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "updated")),
                 "2026-05-04T00:00:01Z");
    free(base);
    cJSON_Delete(b);
    /* No event in the answer (Graph's cancel: 202): what was sent. */
    base = shape_new_base(&mcoll, base_text, "ev1", NULL, 0, NULL, SHAPE_STEP_SERIES, NULL);
    b = json(base);
    CHECK_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "title")), "Visit");
    CHECK_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "id")), "ev1");
    free(base);
    cJSON_Delete(b);
    cJSON_Delete(answer);
}

/* ---- a page of Google's change list, with a fake GET ---- */

struct fake {
    int gets;
    char urls[8][256];
};

static int
fake_get(void *user, const char *url, struct shape_answer *out, struct error *err)
{
    struct fake *f = user;
    static const char series[] =
        "{\"id\":\"s1\",\"status\":\"confirmed\",\"summary\":\"Standup\",\"iCalUID\":\"s1@g\","
        "\"start\":{\"dateTime\":\"2026-03-30T10:30:00+03:00\",\"timeZone\":\"Europe/Bucharest\"},"
        "\"end\":{\"dateTime\":\"2026-03-30T10:45:00+03:00\",\"timeZone\":\"Europe/Bucharest\"},"
        "\"recurrence\":[\"RRULE:FREQ=WEEKLY;COUNT=6\"]}";
    static const char instances[] =
        "{\"items\":[" /* the series itself, a moved instance, a cancelled one */
        "{\"id\":\"s1\",\"iCalUID\":\"s1@g\",\"status\":\"confirmed\"},"
        "{\"id\":\"s1_20260406T073000Z\",\"recurringEventId\":\"s1\",\"status\":\"confirmed\","
        "\"summary\":\"Standup (moved)\",\"iCalUID\":\"s1@g\","
        "\"originalStartTime\":{\"dateTime\":\"2026-04-06T10:30:00+03:00\"},"
        "\"start\":{\"dateTime\":\"2026-04-06T10:30:00+03:00\",\"timeZone\":\"Europe/Bucharest\"},"
        "\"end\":{\"dateTime\":\"2026-04-06T10:45:00+03:00\",\"timeZone\":\"Europe/Bucharest\"}},"
        "{\"id\":\"s1_20260413T073000Z\",\"recurringEventId\":\"s1\",\"status\":\"cancelled\","
        "\"originalStartTime\":{\"dateTime\":\"2026-04-13T10:30:00+03:00\"}}]}";

    (void)err;
    if (f->gets < 8)
        (void)snprintf(f->urls[f->gets], sizeof(f->urls[0]), "%s", url);
    f->gets++;
    memset(out, 0, sizeof(*out));
    out->status = 200;
    if (strcmp(url, "http://g/calendars/primary/events/s1") == 0)
        out->body = xstrdup(series);
    else if (strncmp(url, "http://g/calendars/primary/events?", 34) == 0 &&
             strstr(url, "iCalUID=s1%40g&showDeleted=true") != NULL)
        out->body = xstrdup(instances);
    else
        out->status = 404, out->body = xstrdup("{}");
    return 0;
}

static void
a_google_page_reads_a_series_whole_once(void)
{
    struct fake f = {0};
    struct shape_reader r = {.cc = &gcc, .get = fake_get, .user = &f, .now_ms = 0};
    struct error err = {0};
    char why[200];
    /* The page names two instances of one series, a deleted event and a
     * single one. */
    cJSON *items = json(
        "[{\"id\":\"s1_20260406T073000Z\",\"recurringEventId\":\"s1\",\"status\":\"confirmed\"},"
        "{\"id\":\"gone1\",\"status\":\"cancelled\"},"
        "{\"id\":\"s1_20260413T073000Z\",\"recurringEventId\":\"s1\",\"status\":\"cancelled\"},"
        "{\"id\":\"one\",\"status\":\"confirmed\",\"summary\":\"Lunch\","
        "\"start\":{\"dateTime\":\"2026-05-04T12:00:00Z\"},"
        "\"end\":{\"dateTime\":\"2026-05-04T13:00:00Z\"}}]");
    cJSON *out = NULL, *again = NULL;
    const cJSON *rec, *s1 = NULL;
    int removed = 0, records = 0;

    CHECK_EQ(shape_page(&r, items, &out, why, sizeof(why), &err), 0);
    if (out == NULL)
        check_fail(__FILE__, __LINE__, "the page was not read: %s", why);
    cJSON_ArrayForEach(rec, out)
    {
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "id"));

        if (cJSON_GetObjectItemCaseSensitive(rec, SHAPE_REMOVED) != NULL) {
            removed++;
            CHECK_STR_EQ(id, "gone1");
            continue;
        }
        records++;
        if (strcmp(id, "s1") == 0)
            s1 = rec;
    }
    CHECK_EQ(removed, 1);
    CHECK_EQ(records, 2); /* the series once, and the single event */
    CHECK(s1 != NULL);
    CHECK_STR_EQ(cJSON_GetStringValue(value_path_get(s1, "recurrence.exdates.0")),
                 "2026-04-13T07:30:00Z");
    CHECK_STR_EQ(cJSON_GetStringValue(value_path_get(s1, "exceptions.0.title")), "Standup (moved)");
    CHECK_EQ(f.gets, 2);
    /* A later page of the same read names the series again: not read again. */
    CHECK_EQ(shape_page(&r, items, &again, why, sizeof(why), &err), 0);
    CHECK_EQ(f.gets, 2);
    cJSON_Delete(again);
    cJSON_Delete(out);
    cJSON_Delete(items);
    shape_reader_fini(&r);
}

const struct check_case check_cases[] = {
    CHECK_CASE(one_meeting_in_two_zones_is_the_same),
    CHECK_CASE(a_write_differs_only_in_what_it_means),
    CHECK_CASE(desired_is_laid_over_the_copy),
    CHECK_CASE(requests_send_what_the_system_wants),
    CHECK_CASE(the_new_base_is_the_answer_read_back),
    CHECK_CASE(a_google_page_reads_a_series_whole_once),
    {0},
};
