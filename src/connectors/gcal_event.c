/* SPDX-License-Identifier: MIT */

/*
 * Google Calendar event JSON to the canonical appointment and back
 * (gcal_event.h). Recurrence lines are iCalendar properties, so they are
 * read by wrapping them in a one-event VCALENDAR for the iCalendar reader
 * (ical.c) rather than by a second parser; the result is made canonical by
 * appt_normalize() (appt.c).
 */

#include "connectors/gcal_event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "connectors/appt.h"
#include "connectors/ical.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/xmalloc.h"

#define GCAL_MAX_RECURRENCE_LINES 1000
#define GCAL_MAX_LINE_LEN         4096

static cJSON *
need(cJSON *v)
{
    ASSERT(v != NULL);
    return v;
}

static const cJSON *
get(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static const char *
get_str(const cJSON *obj, const char *key)
{
    const cJSON *v = get(obj, key);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int
appt_gcal_is_deleted(const cJSON *event)
{
    const char *status = get_str(event, "status");

    return status != NULL && strcmp(status, "cancelled") == 0 &&
           get(event, "recurringEventId") == NULL;
}

/* iCalendar's basic form of a civil time: "20260329", "20260329T103000". */
static int
basic(int64_t s, int is_date, char out[APPT_TEXT_MAX])
{
    char text[APPT_TEXT_MAX];
    size_t w = 0;

    if ((is_date ? appt_format_date(s, text) : appt_format_local(s, text)) != 0)
        return -1;
    for (size_t i = 0; text[i] != '\0'; i++) {
        if (text[i] != '-' && text[i] != ':')
            out[w++] = text[i];
    }
    out[w] = '\0';
    return 0;
}

/* --- reading -------------------------------------------------------------- */

/* A Google {date} or {dateTime, timeZone}. */
static int
read_time(const cJSON *t, const char *what, struct appt_when *out, struct error *err)
{
    const char *date = get_str(t, "date"), *dt = get_str(t, "dateTime");
    const char *zone = get_str(t, "timeZone");
    struct appt_text x;

    memset(out, 0, sizeof(*out));
    if (date != NULL) {
        if (appt_text_parse(date, &x) != 0 || !x.is_date)
            return error_set(err, ERROR_MAPPING, "%s.date \"%.40s\" is not a date", what, date);
        out->kind = APPT_WHEN_DATE;
        out->s = x.civil_s;
        return 0;
    }
    if (dt == NULL || appt_text_parse(dt, &x) != 0 || x.is_date)
        return error_set(err, ERROR_MAPPING, "%s has neither date nor a valid dateTime", what);
    if (zone != NULL && !appt_tz_canonical(zone, out->tz))
        return error_set(err, ERROR_MAPPING, "%s.timeZone \"%.64s\" is not a known zone", what,
                         zone);
    out->kind = APPT_WHEN_AT;
    if (x.has_offset) {
        out->s = x.civil_s - x.offset_s;
        return 0;
    }
    if (zone == NULL)
        return error_set(err, ERROR_MAPPING, "%s.dateTime has no offset and no timeZone", what);
    return appt_tz_local_to_utc(out->tz, x.civil_s, &out->s, err) == 0
               ? 0
               : error_wrap(err, "%s", what);
}

static int
add_time(cJSON *o, const char *key, const cJSON *t, struct appt_when *w, struct error *err)
{
    cJSON *j;

    if (read_time(t, key, w, err) != 0)
        return -1;
    j = appt_when_json(w);
    if (j == NULL)
        return error_set(err, ERROR_MAPPING, "%s outside years 0001-3000", key);
    cJSON_AddItemToObject(o, key, j);
    return 0;
}

/* summary, description, location, status; in an instance a missing text
 * is an empty one (Google leaves empty fields out of a full event). */
static void
read_texts(const cJSON *ev, int is_instance, cJSON *o)
{
    static const struct {
        const char *gcal, *canon;
    } texts[] = {{"summary", "title"}, {"description", "description"}, {"location", "location"}};
    const char *status = get_str(ev, "status");

    for (size_t i = 0; i < ARRAY_COUNT(texts); i++) {
        const char *s = get_str(ev, texts[i].gcal);

        if (s != NULL && s[0] != '\0')
            cJSON_AddItemToObject(o, texts[i].canon, need(cJSON_CreateString(s)));
        else if (is_instance)
            cJSON_AddItemToObject(o, texts[i].canon, need(cJSON_CreateNull()));
    }
    if (status != NULL && (strcmp(status, "tentative") == 0 || strcmp(status, "cancelled") == 0))
        cJSON_AddItemToObject(o, "status", need(cJSON_CreateString(status)));
    else
        cJSON_AddItemToObject(o, "status", need(cJSON_CreateString("confirmed")));
}

static cJSON *
read_person(const cJSON *p, int is_attendee)
{
    const char *email = get_str(p, "email"), *name = get_str(p, "displayName");
    const char *rs = get_str(p, "responseStatus");
    char *key = email != NULL ? appt_email_key(email) : NULL;
    cJSON *o;

    if (key == NULL)
        return NULL;
    o = need(cJSON_CreateObject());
    cJSON_AddItemToObject(o, "email", need(cJSON_CreateString(key)));
    free(key);
    if (name != NULL && name[0] != '\0')
        cJSON_AddItemToObject(o, "name", need(cJSON_CreateString(name)));
    if (!is_attendee)
        return o;
    cJSON_AddItemToObject(
        o, "status",
        need(cJSON_CreateString(rs == NULL                     ? "needs-action"
                                : strcmp(rs, "accepted") == 0  ? "accepted"
                                : strcmp(rs, "declined") == 0  ? "declined"
                                : strcmp(rs, "tentative") == 0 ? "tentative"
                                                               : "needs-action")));
    if (cJSON_IsTrue(get(p, "optional")))
        cJSON_AddItemToObject(o, "optional", need(cJSON_CreateTrue()));
    return o;
}

static void
read_people(const cJSON *ev, int is_instance, cJSON *o)
{
    cJSON *org = read_person(get(ev, "organizer"), 0), *list = need(cJSON_CreateArray());
    const cJSON *it;

    if (org != NULL)
        cJSON_AddItemToObject(o, "organizer", org);
    else if (is_instance)
        cJSON_AddItemToObject(o, "organizer", need(cJSON_CreateNull()));
    cJSON_ArrayForEach(it, get(ev, "attendees"))
    {
        cJSON *a = read_person(it, 1);

        if (a != NULL)
            cJSON_AddItemToArray(list, a);
    }
    cJSON_AddItemToObject(o, "attendees", list);
}

/* The DTSTART line that gives recurrence lines their meaning. */
static int
dtstart_line(const struct appt_when *start, struct buf *b, struct error *err)
{
    char text[APPT_TEXT_MAX];
    int64_t local;

    switch (start->kind) {
    case APPT_WHEN_DATE:
        return basic(start->s, 1, text) == 0 &&
                       buf_printf(b, "DTSTART;VALUE=DATE:%s\r\n", text) == 0
                   ? 0
                   : error_set(err, ERROR_MAPPING, "start out of range");
    case APPT_WHEN_AT:
        if (start->tz[0] == '\0')
            return basic(start->s, 0, text) == 0 && buf_printf(b, "DTSTART:%sZ\r\n", text) == 0
                       ? 0
                       : error_set(err, ERROR_MAPPING, "start out of range");
        if (appt_tz_utc_to_local(start->tz, start->s, &local, err) != 0)
            return -1;
        return basic(local, 0, text) == 0 &&
                       buf_printf(b, "DTSTART;TZID=%s:%s\r\n", start->tz, text) == 0
                   ? 0
                   : error_set(err, ERROR_MAPPING, "start out of range");
    case APPT_WHEN_LOCAL:
        break;
    }
    return error_set(err, ERROR_MAPPING, "a floating start");
}

/* The recurrence lines, read by the iCalendar reader with the series'
 * start. *out is the canonical "recurrence" object, or NULL if none. */
static int
read_recurrence(const cJSON *lines, const struct appt_when *start, cJSON **out, struct error *err)
{
    struct buf b;
    const cJSON *it;
    cJSON *appt = NULL;
    int n = 0, rc = -1;

    *out = NULL;
    if (!cJSON_IsArray(lines) || cJSON_GetArraySize(lines) == 0)
        return 0;
    buf_init(&b, (size_t)GCAL_MAX_RECURRENCE_LINES * GCAL_MAX_LINE_LEN);
    if (buf_puts(&b, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:r\r\n") != 0 ||
        dtstart_line(start, &b, err) != 0)
        goto out;
    cJSON_ArrayForEach(it, lines)
    {
        const char *s = cJSON_IsString(it) ? it->valuestring : "";

        if (++n > GCAL_MAX_RECURRENCE_LINES || strlen(s) > GCAL_MAX_LINE_LEN ||
            strpbrk(s, "\r\n") != NULL ||
            (strncasecmp(s, "RRULE:", 6) != 0 && strncasecmp(s, "EXDATE", 6) != 0 &&
             strncasecmp(s, "RDATE", 5) != 0 && strncasecmp(s, "EXRULE", 6) != 0)) {
            error_set(err, ERROR_MAPPING, "recurrence line %d is not an RRULE, EXDATE or RDATE", n);
            goto out;
        }
        if (buf_printf(&b, "%s\r\n", s) != 0)
            goto out;
    }
    if (buf_puts(&b, "END:VEVENT\r\nEND:VCALENDAR\r\n") != 0 ||
        appt_from_ical(b.data, b.len, &appt, err) != 0)
        goto out;
    *out = cJSON_DetachItemFromObjectCaseSensitive(appt, "recurrence");
    rc = 0;
out:
    cJSON_Delete(appt);
    buf_fini(&b);
    return rc == 0 ? 0 : error_set(err, ERROR_MAPPING, "recurrence lines too long");
}

/* One instance of series raw (its start and recurrence read) into its
 * exceptions or exdates. */
static int
read_instance(const cJSON *inst, const struct appt_when *start, const cJSON *raw,
              const char *series_id, cJSON *exceptions, cJSON *exdates, struct error *err)
{
    const char *parent = get_str(inst, "recurringEventId"), *status = get_str(inst, "status");
    struct appt_when rid, w;
    char text[APPT_TEXT_MAX];
    cJSON *e;

    if (series_id != NULL && parent != NULL && strcmp(series_id, parent) != 0)
        return error_set(err, ERROR_MAPPING, "instance of %.64s given with series %.64s", parent,
                         series_id);
    if (read_time(get(inst, "originalStartTime"), "originalStartTime", &rid, err) != 0)
        return -1;
    if (rid.kind != start->kind)
        return error_set(err, ERROR_MAPPING, "originalStartTime is not like the series' start");
    if (appt_when_text(&rid, text) != 0)
        return error_set(err, ERROR_MAPPING, "originalStartTime out of range");
    if (status != NULL && strcmp(status, "cancelled") == 0) {
        /* Google keeps the deleted exceptions of a series whose start or
         * rule moved since: they cancel no occurrence of it now. */
        if (appt_occurs(raw, text) != 0)
            cJSON_AddItemToArray(exdates, need(cJSON_CreateString(text)));
        return 0;
    }
    e = need(cJSON_CreateObject());
    cJSON_AddItemToArray(exceptions, e);
    cJSON_AddItemToObject(e, "recurrence_id", need(cJSON_CreateString(text)));
    read_texts(inst, 1, e);
    read_people(inst, 1, e);
    return add_time(e, "start", get(inst, "start"), &w, err) == 0 &&
                   add_time(e, "end", get(inst, "end"), &w, err) == 0
               ? 0
               : error_wrap(err, "instance %s", text);
}

static int
read_series(const cJSON *event, const cJSON *instances, const struct appt_when *start, cJSON *raw,
            struct error *err)
{
    cJSON *rec, *exdates, *exceptions;
    const cJSON *it;

    if (read_recurrence(get(event, "recurrence"), start, &rec, err) != 0)
        return error_wrap(err, "recurrence");
    if (rec == NULL) {
        if (cJSON_GetArraySize(instances) > 0)
            return error_set(err, ERROR_MAPPING, "instances of an event without recurrence");
        return 0;
    }
    cJSON_AddItemToObject(raw, "recurrence", rec);
    exdates = cJSON_GetObjectItemCaseSensitive(rec, "exdates");
    if (exdates == NULL) {
        exdates = need(cJSON_CreateArray());
        cJSON_AddItemToObject(rec, "exdates", exdates);
    }
    exceptions = need(cJSON_CreateArray());
    cJSON_AddItemToObject(raw, "exceptions", exceptions);
    if (instances != NULL && !cJSON_IsArray(instances))
        return error_set(err, ERROR_MAPPING, "instances is not an array");
    cJSON_ArrayForEach(it, instances)
    {
        if (read_instance(it, start, raw, get_str(event, "id"), exceptions, exdates, err) != 0)
            return -1;
    }
    return 0;
}

int
appt_from_gcal(const cJSON *event, const cJSON *instances, cJSON **out, struct error *err)
{
    const char *uid = get_str(event, "iCalUID"), *id = get_str(event, "id");
    struct appt_when start, end;
    cJSON *raw;
    char *made = NULL;
    int rc = -1;

    if (!cJSON_IsObject(event))
        return error_set(err, ERROR_MAPPING, "gcal event: not an object");
    if (uid == NULL && id != NULL)
        uid = made = xasprintf("%s@google.com", id);
    if (uid == NULL || uid[0] == '\0')
        return error_set(err, ERROR_MAPPING, "gcal event: neither iCalUID nor id");
    raw = need(cJSON_CreateObject());
    cJSON_AddItemToObject(raw, "uid", need(cJSON_CreateString(uid)));
    free(made);
    read_texts(event, 0, raw);
    read_people(event, 0, raw);
    if (cJSON_IsNumber(get(event, "sequence")))
        cJSON_AddItemToObject(raw, "sequence",
                              need(cJSON_CreateNumber(get(event, "sequence")->valuedouble)));
    if (add_time(raw, "start", get(event, "start"), &start, err) == 0 &&
        add_time(raw, "end", get(event, "end"), &end, err) == 0 &&
        read_series(event, instances, &start, raw, err) == 0)
        rc = appt_normalize(raw, out, err);
    cJSON_Delete(raw);
    return rc == 0 ? 0 : error_wrap(err, "gcal event");
}

/* --- writing -------------------------------------------------------------- */

/* A Google {date} or {dateTime, timeZone} for w. */
static int
write_time(cJSON *ev, const char *key, const struct appt_when *w, int recurring, struct error *err)
{
    char text[APPT_TEXT_MAX], dt[APPT_TEXT_MAX + 64];
    cJSON *o = need(cJSON_CreateObject());
    int64_t local;
    int off;

    cJSON_AddItemToObject(ev, key, o);
    switch (w->kind) {
    case APPT_WHEN_DATE:
        if (appt_format_date(w->s, text) != 0)
            return error_set(err, ERROR_MAPPING, "%s out of range", key);
        cJSON_AddItemToObject(o, "date", need(cJSON_CreateString(text)));
        return 0;
    case APPT_WHEN_LOCAL:
        return error_set(err, ERROR_MAPPING,
                         "%s is a floating local time, which Google cannot hold; give it a zone",
                         key);
    case APPT_WHEN_AT:
        break;
    }
    if (w->tz[0] == '\0') {
        if (appt_format_instant(w->s, text) != 0)
            return error_set(err, ERROR_MAPPING, "%s out of range", key);
        cJSON_AddItemToObject(o, "dateTime", need(cJSON_CreateString(text)));
        if (recurring)
            cJSON_AddItemToObject(o, "timeZone", need(cJSON_CreateString("UTC")));
        return 0;
    }
    if (appt_tz_utc_to_local(w->tz, w->s, &local, err) != 0 || appt_format_local(local, text) != 0)
        return error_set(err, ERROR_MAPPING, "%s out of range", key);
    off = (int)(local - w->s);
    if (off % 60 != 0) {
        /* A local mean time of old (Bucharest's +01:44:24 before 1891) has
         * no RFC 3339 offset: write the instant in UTC, with the zone. */
        if (appt_format_instant(w->s, text) != 0)
            return error_set(err, ERROR_MAPPING, "%s out of range", key);
        (void)snprintf(dt, sizeof(dt), "%s", text);
    } else {
        (void)snprintf(dt, sizeof(dt), "%s%c%02d:%02d", text, off < 0 ? '-' : '+',
                       (off < 0 ? -off : off) / 3600, (off < 0 ? -off : off) / 60 % 60);
    }
    cJSON_AddItemToObject(o, "dateTime", need(cJSON_CreateString(dt)));
    cJSON_AddItemToObject(o, "timeZone", need(cJSON_CreateString(w->tz)));
    return 0;
}

static void
write_people(cJSON *ev, const cJSON *o)
{
    cJSON *list = need(cJSON_CreateArray());
    const cJSON *it;

    cJSON_ArrayForEach(it, get(o, "attendees"))
    {
        cJSON *a = need(cJSON_CreateObject());
        const char *s = get_str(it, "status");

        cJSON_AddItemToObject(a, "email", need(cJSON_CreateString(get_str(it, "email"))));
        if (get_str(it, "name") != NULL)
            cJSON_AddItemToObject(a, "displayName", need(cJSON_CreateString(get_str(it, "name"))));
        cJSON_AddItemToObject(
            a, "responseStatus",
            need(cJSON_CreateString(strcmp(s, "needs-action") == 0 ? "needsAction" : s)));
        if (cJSON_IsTrue(get(it, "optional")))
            cJSON_AddItemToObject(a, "optional", need(cJSON_CreateTrue()));
        cJSON_AddItemToArray(list, a);
    }
    cJSON_AddItemToObject(ev, "attendees", list);
}

/* The fields of one event: the series or one occurrence in full. */
static int
write_body(const cJSON *o, int recurring, cJSON *ev, struct error *err)
{
    static const struct {
        const char *canon, *gcal;
    } texts[] = {{"title", "summary"}, {"description", "description"}, {"location", "location"}};
    struct appt_when start, end;

    cJSON_AddItemToObject(ev, "iCalUID", need(cJSON_CreateString(get_str(o, "uid"))));
    for (size_t i = 0; i < ARRAY_COUNT(texts); i++) {
        const char *s = get_str(o, texts[i].canon);

        cJSON_AddItemToObject(ev, texts[i].gcal, need(cJSON_CreateString(s ? s : "")));
    }
    cJSON_AddItemToObject(ev, "status", need(cJSON_CreateString(get_str(o, "status"))));
    if (appt_when_get(get(o, "start"), "start", &start, err) != 0 ||
        appt_when_get(get(o, "end"), "end", &end, err) != 0 ||
        write_time(ev, "start", &start, recurring, err) != 0 ||
        write_time(ev, "end", &end, recurring, err) != 0)
        return -1;
    write_people(ev, o);
    return 0;
}

/* One EXDATE or RDATE line for a canonical time of the series. */
static int
time_line(const char *name, const char *value, const struct appt_when *start, cJSON *lines,
          struct error *err)
{
    struct appt_when w;
    char text[APPT_TEXT_MAX], *line;
    int64_t local;

    if (appt_when_from_text(value, start, &w, err) != 0)
        return -1;
    if (w.kind == APPT_WHEN_DATE) {
        if (basic(w.s, 1, text) != 0)
            return error_set(err, ERROR_MAPPING, "%s out of range", name);
        line = xasprintf("%s;VALUE=DATE:%s", name, text);
    } else if (w.tz[0] == '\0') {
        if (basic(w.s, 0, text) != 0)
            return error_set(err, ERROR_MAPPING, "%s out of range", name);
        line = xasprintf("%s:%sZ", name, text);
    } else {
        if (appt_tz_utc_to_local(w.tz, w.s, &local, err) != 0 || basic(local, 0, text) != 0)
            return error_set(err, ERROR_MAPPING, "%s out of range", name);
        line = xasprintf("%s;TZID=%s:%s", name, w.tz, text);
    }
    cJSON_AddItemToArray(lines, need(cJSON_CreateString(line)));
    free(line);
    return 0;
}

static int
write_recurrence(const cJSON *rec, const struct appt_when *start, cJSON *ev, struct error *err)
{
    cJSON *lines = need(cJSON_CreateArray());
    const char *rrule = get_str(rec, "rrule");
    const cJSON *it;

    cJSON_AddItemToObject(ev, "recurrence", lines);
    if (rrule != NULL) {
        char *line = xasprintf("RRULE:%s", rrule);

        cJSON_AddItemToArray(lines, need(cJSON_CreateString(line)));
        free(line);
    }
    cJSON_ArrayForEach(it, get(rec, "exdates"))
    {
        if (time_line("EXDATE", it->valuestring, start, lines, err) != 0)
            return -1;
    }
    cJSON_ArrayForEach(it, get(rec, "rdates"))
    {
        if (time_line("RDATE", it->valuestring, start, lines, err) != 0)
            return -1;
    }
    return 0;
}

static int
write_instances(const cJSON *appt, const struct appt_when *start, cJSON *list, struct error *err)
{
    const cJSON *exc;

    cJSON_ArrayForEach(exc, get(appt, "exceptions"))
    {
        cJSON *occ, *inst = need(cJSON_CreateObject());
        struct appt_when rid;
        int rc;

        cJSON_AddItemToArray(list, inst);
        if (appt_when_from_text(get_str(exc, "recurrence_id"), start, &rid, err) != 0 ||
            write_time(inst, "originalStartTime", &rid, 1, err) != 0 ||
            appt_occurrence(appt, exc, &occ, err) != 0)
            return -1;
        rc = write_body(occ, 1, inst, err);
        cJSON_Delete(occ);
        if (rc != 0)
            return -1;
    }
    return 0;
}

int
appt_to_gcal(const cJSON *appt, cJSON **event, cJSON **instances, struct error *err)
{
    cJSON *canon = NULL, *ev, *list;
    const cJSON *rec;
    struct appt_when start;
    int rc = -1;

    if (appt_normalize(appt, &canon, err) != 0)
        return error_wrap(err, "gcal event");
    rec = get(canon, "recurrence");
    ev = need(cJSON_CreateObject());
    list = need(cJSON_CreateArray());
    if (write_body(canon, rec != NULL, ev, err) == 0 &&
        appt_when_get(get(canon, "start"), "start", &start, err) == 0 &&
        (rec == NULL || (write_recurrence(rec, &start, ev, err) == 0 &&
                         write_instances(canon, &start, list, err) == 0))) {
        *event = ev;
        *instances = list;
        ev = list = NULL;
        rc = 0;
    }
    cJSON_Delete(ev);
    cJSON_Delete(list);
    cJSON_Delete(canon);
    return rc == 0 ? 0 : error_wrap(err, "gcal event");
}

int
appt_gcal_instance_id(const char *event_id, const char *recurrence_id, char *out, size_t out_len)
{
    struct appt_text t;
    char text[APPT_TEXT_MAX];
    int n;

    if (appt_text_parse(recurrence_id, &t) != 0 || (!t.is_date && !t.has_offset) ||
        basic(t.is_date ? t.civil_s : t.civil_s - t.offset_s, t.is_date, text) != 0)
        return -1;
    n = snprintf(out, out_len, "%s_%s%s", event_id, text, t.is_date ? "" : "Z");
    return n >= 0 && (size_t)n < out_len ? 0 : -1;
}
