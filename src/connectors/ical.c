/* SPDX-License-Identifier: MIT */

/*
 * iCalendar text to the canonical appointment and back (ical.h), with
 * libical doing the lexing, unescaping, folding and VTIMEZONE expansion.
 * This file reads the VEVENTs into a loosely written appointment and lets
 * appt_normalize() (appt.c) make it canonical; the writer does the reverse
 * from a normalised copy. It knows nothing of CalDAV (caldav_xml.c).
 */

#include "connectors/ical.h"

#include <libical/ical.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "connectors/appt.h"
#include "connectors/graph_event.h"
#include "core/error.h"
#include "core/xmalloc.h"

#define ICAL_MAX_EVENTS 1000 /* VEVENTs in one resource */
#define ICAL_MAX_ZONES  8    /* zones one appointment may use */
/* A VTIMEZONE that libical would expand into more changes than this is
 * refused: its rules would cost time without describing a real zone. */
#define ICAL_MAX_ZONE_CHANGES 20000
#define ICAL_ZONE_END_YEAR    2040 /* libical expands zones to about here */

static cJSON *
need(cJSON *v)
{
    ASSERT(v != NULL);
    return v;
}

static struct icaltimetype
tt_of(int64_t civil_s, int is_date, int is_utc)
{
    struct icaltimetype tt = icaltime_null_time();
    struct appt_fields f;

    appt_civil_split(civil_s, &f);
    tt.year = f.year;
    tt.month = f.month;
    tt.day = f.day;
    tt.is_date = is_date;
    if (!is_date) {
        tt.hour = f.hour;
        tt.minute = f.minute;
        tt.second = f.second;
    }
    if (is_utc)
        tt.zone = icaltimezone_get_utc_timezone();
    return tt;
}

/* --- reading -------------------------------------------------------------- */

struct reader {
    icalcomponent *vcal; /* the VCALENDAR; NULL for a bare VEVENT */
};

/* A property's date or date-time (an RDATE period: its start), checked. */
static int
prop_tt(icalproperty *p, struct icaltimetype *tt)
{
    icalvalue *v = icalproperty_get_value(p);

    if (v == NULL)
        return -1;
    switch (icalvalue_isa(v)) {
    case ICAL_DATETIME_VALUE:
        *tt = icalvalue_get_datetime(v);
        break;
    case ICAL_DATE_VALUE:
        *tt = icalvalue_get_date(v);
        break;
    case ICAL_DATETIMEPERIOD_VALUE: {
        struct icaldatetimeperiodtype d = icalvalue_get_datetimeperiod(v);

        *tt = icaltime_is_null_time(d.time) ? d.period.start : d.time;
        break;
    }
    default:
        return -1;
    }
    if (icaltime_is_null_time(*tt) || tt->year < 1 || tt->year > 3000 || tt->month < 1 ||
        tt->month > 12 || tt->day < 1 || tt->day > icaltime_days_in_month(tt->month, tt->year))
        return -1;
    if (!tt->is_date && (tt->hour < 0 || tt->hour > 23 || tt->minute < 0 || tt->minute > 59 ||
                         tt->second < 0 || tt->second > 60))
        return -1;
    return 0;
}

static int
zone_offset(void *zone, int64_t utc_s)
{
    struct icaltimetype tt =
        icaltime_from_timet_with_zone((time_t)utc_s, 0, icaltimezone_get_utc_timezone());
    int is_daylight = 0;
    int off = icaltimezone_get_utc_offset_of_utc_time((icaltimezone *)zone, &tt, &is_daylight);

    return off >= -26 * 3600 && off <= 26 * 3600 ? off : 0;
}

/* Whether libical may expand this VTIMEZONE: few observances, yearly rules,
 * a bounded number of changes in all. */
static int
vtimezone_sane(icalcomponent *vtz)
{
    long changes = 0;
    int observances = 0;

    for (icalcomponent *o = icalcomponent_get_first_component(vtz, ICAL_ANY_COMPONENT); o != NULL;
         o = icalcomponent_get_next_component(vtz, ICAL_ANY_COMPONENT)) {
        struct icaltimetype start = icalcomponent_get_dtstart(o);

        if (++observances > 64 || icaltime_is_null_time(start))
            return 0;
        for (icalproperty *p = icalcomponent_get_first_property(o, ICAL_ANY_PROPERTY); p != NULL;
             p = icalcomponent_get_next_property(o, ICAL_ANY_PROPERTY)) {
            icalproperty_kind k = icalproperty_isa(p);

            if (k == ICAL_RRULE_PROPERTY) {
                struct icalrecurrencetype r = icalproperty_get_rrule(p);

                if (r.freq != ICAL_YEARLY_RECURRENCE)
                    return 0;
                changes += ICAL_ZONE_END_YEAR - (start.year < 1 ? 1 : start.year) + 1;
            } else if (k == ICAL_RDATE_PROPERTY) {
                changes++;
            }
        }
        if (changes > ICAL_MAX_ZONE_CHANGES)
            return 0;
    }
    return observances > 0;
}

/* The text's own definition of tzid, if it has a usable one. */
static icaltimezone *
custom_zone(struct reader *r, const char *tzid)
{
    if (r->vcal == NULL)
        return NULL;
    for (icalcomponent *c = icalcomponent_get_first_component(r->vcal, ICAL_VTIMEZONE_COMPONENT);
         c != NULL; c = icalcomponent_get_next_component(r->vcal, ICAL_VTIMEZONE_COMPONENT)) {
        icalproperty *p = icalcomponent_get_first_property(c, ICAL_TZID_PROPERTY);
        const char *id = p ? icalproperty_get_tzid(p) : NULL;

        if (id != NULL && strcmp(id, tzid) == 0)
            return vtimezone_sane(c) ? icalcomponent_get_timezone(r->vcal, tzid) : NULL;
    }
    return NULL;
}

/* The instant of a local time written with TZID=tzid. */
static int
resolve_tzid(struct reader *r, const char *tzid, int64_t civil, struct appt_when *out,
             struct error *err)
{
    char canon[APPT_TZ_MAX];
    const char *iana = NULL;
    icaltimezone *zone;

    out->kind = APPT_WHEN_AT;
    if (appt_tz_canonical(tzid, canon))
        iana = canon;
    else
        iana = appt_graph_tz_to_iana(tzid);
    if (iana != NULL) {
        (void)snprintf(out->tz, sizeof(out->tz), "%s", iana);
        return appt_tz_local_to_utc(iana, civil, &out->s, err);
    }
    zone = custom_zone(r, tzid);
    if (zone == NULL)
        return error_set(err, ERROR_MAPPING,
                         "TZID \"%.64s\" is neither a known zone nor defined by a usable VTIMEZONE",
                         tzid);
    out->s = appt_local_to_utc(zone_offset, zone, civil);
    if (out->s < APPT_CIVIL_MIN || out->s > APPT_CIVIL_MAX)
        return error_set(err, ERROR_MAPPING, "a time outside years 0001-3000");
    return 0;
}

/* A DTSTART, DTEND, RECURRENCE-ID, EXDATE or RDATE as a point in time. */
static int
prop_when(struct reader *r, icalproperty *p, const char *what, struct appt_when *out,
          struct error *err)
{
    struct icaltimetype tt;
    icalparameter *tzp;
    const char *tzid;
    int64_t civil;

    memset(out, 0, sizeof(*out));
    if (prop_tt(p, &tt) != 0)
        return error_set(err, ERROR_MAPPING, "%s is not a valid date or time", what);
    civil =
        appt_civil(tt.year, tt.month, tt.day, tt.is_date ? 0 : tt.hour, tt.is_date ? 0 : tt.minute,
                   tt.is_date ? 0 : (tt.second > 59 ? 59 : tt.second));
    out->s = civil;
    if (tt.is_date) {
        out->kind = APPT_WHEN_DATE;
        return 0;
    }
    if (icaltime_is_utc(tt)) {
        out->kind = APPT_WHEN_AT;
        return 0;
    }
    tzp = icalproperty_get_first_parameter(p, ICAL_TZID_PARAMETER);
    tzid = tzp != NULL ? icalparameter_get_tzid(tzp) : NULL;
    if (tzid == NULL || tzid[0] == '\0') {
        out->kind = APPT_WHEN_LOCAL;
        return 0;
    }
    if (resolve_tzid(r, tzid, civil, out, err) != 0)
        return error_wrap(err, "%s", what);
    return 0;
}

static int
add_when(cJSON *o, const char *key, const struct appt_when *w, struct error *err)
{
    cJSON *j = appt_when_json(w);

    if (j == NULL)
        return error_set(err, ERROR_MAPPING, "%s outside years 0001-3000", key);
    cJSON_AddItemToObject(o, key, j);
    return 0;
}

static int
add_when_text(cJSON *arr, const struct appt_when *w, struct error *err)
{
    char text[APPT_TEXT_MAX];

    if (appt_when_text(w, text) != 0)
        return error_set(err, ERROR_MAPPING, "a time outside years 0001-3000");
    cJSON_AddItemToArray(arr, need(cJSON_CreateString(text)));
    return 0;
}

/* A text property into key: its first value; null in an override that lacks
 * it (an override states the whole occurrence). */
static void
read_text(icalcomponent *ev, icalproperty_kind kind, const char *key, int is_override, cJSON *o)
{
    icalproperty *p = icalcomponent_get_first_property(ev, kind);
    const char *s = NULL;

    if (p != NULL) {
        icalvalue *v = icalproperty_get_value(p);

        if (v != NULL && icalvalue_isa(v) == ICAL_TEXT_VALUE)
            s = icalvalue_get_text(v);
    }
    if (s != NULL && s[0] != '\0')
        cJSON_AddItemToObject(o, key, need(cJSON_CreateString(s)));
    else if (is_override)
        cJSON_AddItemToObject(o, key, need(cJSON_CreateNull()));
}

static const char *
partstat_name(icalproperty *p)
{
    icalparameter *ps = icalproperty_get_first_parameter(p, ICAL_PARTSTAT_PARAMETER);

    switch (ps ? icalparameter_get_partstat(ps) : ICAL_PARTSTAT_NEEDSACTION) {
    case ICAL_PARTSTAT_ACCEPTED:
        return "accepted";
    case ICAL_PARTSTAT_DECLINED:
        return "declined";
    case ICAL_PARTSTAT_TENTATIVE:
        return "tentative";
    default:
        return "needs-action"; /* also DELEGATED and the to-do states */
    }
}

/* An ORGANIZER or ATTENDEE; NULL when its address is no email. */
static cJSON *
read_person(icalproperty *p, int is_attendee)
{
    icalvalue *v = icalproperty_get_value(p);
    const char *addr = v != NULL ? icalvalue_get_caladdress(v) : NULL;
    icalparameter *cn = icalproperty_get_first_parameter(p, ICAL_CN_PARAMETER);
    icalparameter *role = icalproperty_get_first_parameter(p, ICAL_ROLE_PARAMETER);
    char *key = addr != NULL ? appt_email_key(addr) : NULL;
    cJSON *o;

    if (key == NULL)
        return NULL;
    o = need(cJSON_CreateObject());
    cJSON_AddItemToObject(o, "email", need(cJSON_CreateString(key)));
    free(key);
    if (cn != NULL && icalparameter_get_cn(cn) != NULL && icalparameter_get_cn(cn)[0] != '\0')
        cJSON_AddItemToObject(o, "name", need(cJSON_CreateString(icalparameter_get_cn(cn))));
    if (is_attendee) {
        cJSON_AddItemToObject(o, "status", need(cJSON_CreateString(partstat_name(p))));
        if (role != NULL && (icalparameter_get_role(role) == ICAL_ROLE_OPTPARTICIPANT ||
                             icalparameter_get_role(role) == ICAL_ROLE_NONPARTICIPANT))
            cJSON_AddItemToObject(o, "optional", need(cJSON_CreateTrue()));
    }
    return o;
}

static void
read_people(icalcomponent *ev, int is_override, cJSON *o)
{
    icalproperty *org = icalcomponent_get_first_property(ev, ICAL_ORGANIZER_PROPERTY);
    cJSON *person = org != NULL ? read_person(org, 0) : NULL;
    cJSON *list = need(cJSON_CreateArray());

    if (person != NULL)
        cJSON_AddItemToObject(o, "organizer", person);
    else if (is_override)
        cJSON_AddItemToObject(o, "organizer", need(cJSON_CreateNull()));
    for (icalproperty *p = icalcomponent_get_first_property(ev, ICAL_ATTENDEE_PROPERTY); p != NULL;
         p = icalcomponent_get_next_property(ev, ICAL_ATTENDEE_PROPERTY)) {
        person = read_person(p, 1);
        if (person != NULL)
            cJSON_AddItemToArray(list, person);
    }
    cJSON_AddItemToObject(o, "attendees", list);
}

/*
 * start moved by days calendar days: in its zone's wall-clock time when it
 * is an instant shown in a zone (RFC 5545 §3.3.6: a day of a DURATION is
 * nominal, so P1D over a clock change is 23 or 25 hours), else exactly.
 */
static int
add_days(const struct appt_when *start, int64_t days, int64_t *out, struct error *err)
{
    int64_t local;

    if (start->kind != APPT_WHEN_AT || start->tz[0] == '\0' || days == 0) {
        *out = start->s + days * APPT_DAY_S;
        return 0;
    }
    if (appt_tz_utc_to_local(start->tz, start->s, &local, err) != 0 ||
        appt_tz_local_to_utc(start->tz, local + days * APPT_DAY_S, out, err) != 0)
        return error_wrap(err, "DURATION");
    return 0;
}

/* Where a duration or a missing DTEND puts the end. */
static int
end_from_duration(icalcomponent *ev, const struct appt_when *start, struct appt_when *end,
                  struct error *err)
{
    icalproperty *p = icalcomponent_get_first_property(ev, ICAL_DURATION_PROPERTY);
    int64_t days = 0, secs = 0;

    *end = *start;
    if (p != NULL) {
        struct icaldurationtype d = icalproperty_get_duration(p);

        if (d.is_neg || icaldurationtype_is_bad_duration(d))
            return error_set(err, ERROR_MAPPING, "DURATION is not a valid length of time");
        days = (int64_t)d.weeks * 7 + d.days;
        secs = (int64_t)d.hours * 3600 + (int64_t)d.minutes * 60 + d.seconds;
    } else if (start->kind == APPT_WHEN_DATE) {
        days = 1; /* RFC 5545 §3.6.1: a date with no end lasts that day */
    }
    if (start->kind == APPT_WHEN_DATE) {
        days += (secs + APPT_DAY_S - 1) / APPT_DAY_S;
        secs = 0;
    }
    /* The nominal days first, then the exact time (RFC 5545 §3.3.6). */
    if (add_days(start, days, &end->s, err) != 0)
        return -1;
    end->s += secs;
    return 0;
}

static int
read_times(struct reader *r, icalcomponent *ev, cJSON *o, struct appt_when *start,
           struct error *err)
{
    icalproperty *ps = icalcomponent_get_first_property(ev, ICAL_DTSTART_PROPERTY);
    icalproperty *pe = icalcomponent_get_first_property(ev, ICAL_DTEND_PROPERTY);
    struct appt_when end;

    if (ps == NULL)
        return error_set(err, ERROR_MAPPING, "DTSTART is missing");
    if (prop_when(r, ps, "DTSTART", start, err) != 0)
        return -1;
    if (pe != NULL ? prop_when(r, pe, "DTEND", &end, err) != 0
                   : end_from_duration(ev, start, &end, err) != 0)
        return -1;
    return add_when(o, "start", start, err) == 0 && add_when(o, "end", &end, err) == 0 ? 0 : -1;
}

/* The times listed by every EXDATE or RDATE, into key of rec. */
static int
read_dates(struct reader *r, icalcomponent *ev, icalproperty_kind kind, const char *key, cJSON *rec,
           struct error *err)
{
    cJSON *arr = need(cJSON_CreateArray());

    cJSON_AddItemToObject(rec, key, arr);
    for (icalproperty *p = icalcomponent_get_first_property(ev, kind); p != NULL;
         p = icalcomponent_get_next_property(ev, kind)) {
        struct appt_when w;

        if (cJSON_GetArraySize(arr) >= 5000)
            return error_set(err, ERROR_MAPPING, "more than 5000 %s", key);
        if (prop_when(r, p, kind == ICAL_EXDATE_PROPERTY ? "EXDATE" : "RDATE", &w, err) != 0 ||
            add_when_text(arr, &w, err) != 0)
            return -1;
    }
    return 0;
}

static int
read_recurrence(struct reader *r, icalcomponent *ev, cJSON *o, struct error *err)
{
    cJSON *rec;
    icalproperty *p;

    if (icalcomponent_get_first_property(ev, ICAL_EXRULE_PROPERTY) != NULL)
        return error_set(err, ERROR_MAPPING, "EXRULE is not supported");
    if (icalcomponent_count_properties(ev, ICAL_RRULE_PROPERTY) > 1)
        return error_set(err, ERROR_MAPPING, "more than one RRULE");
    rec = need(cJSON_CreateObject());
    cJSON_AddItemToObject(o, "recurrence", rec);
    p = icalcomponent_get_first_property(ev, ICAL_RRULE_PROPERTY);
    if (p != NULL) {
        struct icalrecurrencetype rule = icalproperty_get_rrule(p);
        char *s = rule.freq != ICAL_NO_RECURRENCE ? icalrecurrencetype_as_string_r(&rule) : NULL;

        if (s == NULL)
            return error_set(err, ERROR_MAPPING, "RRULE is not valid");
        cJSON_AddItemToObject(rec, "rrule", need(cJSON_CreateString(s)));
        icalmemory_free_buffer(s);
    }
    return read_dates(r, ev, ICAL_EXDATE_PROPERTY, "exdates", rec, err) == 0 &&
                   read_dates(r, ev, ICAL_RDATE_PROPERTY, "rdates", rec, err) == 0
               ? 0
               : -1;
}

/* A property libical could not parse, among those this reader relies on;
 * others (a bad ATTENDEE parameter) are dropped as libical drops them. */
static const char *
broken_property(icalcomponent *ev)
{
    static const char *const relied[] = {"DTSTART",       "DTEND",  "DURATION", "RRULE",
                                         "RECURRENCE-ID", "EXDATE", "RDATE",    "UID"};

    for (icalproperty *p = icalcomponent_get_first_property(ev, ICAL_XLICERROR_PROPERTY); p != NULL;
         p = icalcomponent_get_next_property(ev, ICAL_XLICERROR_PROPERTY)) {
        const char *text = icalproperty_get_xlicerror(p);

        for (size_t i = 0; text != NULL && i < ARRAY_COUNT(relied); i++) {
            if (strstr(text, relied[i]) != NULL)
                return relied[i];
        }
    }
    return NULL;
}

static int
read_status(icalcomponent *ev, cJSON *o)
{
    icalproperty *p = icalcomponent_get_first_property(ev, ICAL_STATUS_PROPERTY);
    const char *s = "confirmed";

    if (p != NULL && icalproperty_get_status(p) == ICAL_STATUS_TENTATIVE)
        s = "tentative";
    else if (p != NULL && icalproperty_get_status(p) == ICAL_STATUS_CANCELLED)
        s = "cancelled";
    cJSON_AddItemToObject(o, "status", need(cJSON_CreateString(s)));
    return 0;
}

/* One VEVENT as a loosely written appointment (is_override: as one of its
 * exceptions, with recurrence_id). */
static int
read_event(struct reader *r, icalcomponent *ev, int is_override, cJSON **out, struct error *err)
{
    cJSON *o = need(cJSON_CreateObject());
    const char *broken = broken_property(ev);
    struct appt_when start, rid;
    icalproperty *p;

    if (broken != NULL) {
        error_set(err, ERROR_MAPPING, "%s cannot be parsed", broken);
        goto fail;
    }
    if (!is_override)
        cJSON_AddItemToObject(o, "uid", need(cJSON_CreateString(icalcomponent_get_uid(ev))));
    read_text(ev, ICAL_SUMMARY_PROPERTY, "title", is_override, o);
    read_text(ev, ICAL_DESCRIPTION_PROPERTY, "description", is_override, o);
    read_text(ev, ICAL_LOCATION_PROPERTY, "location", is_override, o);
    read_status(ev, o);
    if (read_times(r, ev, o, &start, err) != 0)
        goto fail;
    read_people(ev, is_override, o);
    if (is_override) {
        char text[APPT_TEXT_MAX];
        icalparameter *range;

        p = icalcomponent_get_first_property(ev, ICAL_RECURRENCEID_PROPERTY);
        range = icalproperty_get_first_parameter(p, ICAL_RANGE_PARAMETER);
        if (range != NULL && icalparameter_get_range(range) == ICAL_RANGE_THISANDFUTURE) {
            error_set(err, ERROR_MAPPING, "RECURRENCE-ID;RANGE=THISANDFUTURE is not supported");
            goto fail;
        }
        if (prop_when(r, p, "RECURRENCE-ID", &rid, err) != 0 || appt_when_text(&rid, text) != 0)
            goto fail;
        cJSON_AddItemToObject(o, "recurrence_id", need(cJSON_CreateString(text)));
    } else {
        p = icalcomponent_get_first_property(ev, ICAL_SEQUENCE_PROPERTY);
        if (p != NULL && icalproperty_get_sequence(p) >= 0)
            cJSON_AddItemToObject(o, "sequence",
                                  need(cJSON_CreateNumber(icalproperty_get_sequence(p))));
        if (read_recurrence(r, ev, o, err) != 0)
            goto fail;
    }
    *out = o;
    return 0;

fail:
    cJSON_Delete(o);
    return -1;
}

/* Sort the VEVENTs of root into the series and its overrides, checking
 * that they share one UID. */
static int
collect_events(icalcomponent *root, icalcomponent **master, icalcomponent **overrides,
               int *override_count, struct error *err)
{
    const char *uid = NULL;
    int n = 0;

    *master = NULL;
    *override_count = 0;
    for (icalcomponent *ev = icalcomponent_isa(root) == ICAL_VEVENT_COMPONENT
                                 ? root
                                 : icalcomponent_get_first_component(root, ICAL_VEVENT_COMPONENT);
         ev != NULL;
         ev = ev == root ? NULL : icalcomponent_get_next_component(root, ICAL_VEVENT_COMPONENT)) {
        const char *id = icalcomponent_get_uid(ev);

        if (++n > ICAL_MAX_EVENTS)
            return error_set(err, ERROR_MAPPING, "more than %d VEVENTs", ICAL_MAX_EVENTS);
        if (id == NULL || id[0] == '\0')
            return error_set(err, ERROR_MAPPING, "VEVENT %d has no UID", n);
        if (uid != NULL && strcmp(uid, id) != 0)
            return error_set(err, ERROR_MAPPING, "VEVENTs with two UIDs: %.64s and %.64s", uid, id);
        uid = id;
        if (icalcomponent_get_first_property(ev, ICAL_RECURRENCEID_PROPERTY) != NULL) {
            overrides[(*override_count)++] = ev;
        } else if (*master != NULL) {
            return error_set(err, ERROR_MAPPING, "two VEVENTs of UID %.64s without RECURRENCE-ID",
                             uid);
        } else {
            *master = ev;
        }
    }
    if (n == 0)
        return error_set(err, ERROR_MAPPING, "no VEVENT");
    if (*master == NULL)
        return error_set(err, ERROR_MAPPING,
                         "only overridden occurrences of UID %.64s, without their series", uid);
    return 0;
}

/* The one VCALENDAR (or bare VEVENT) libical made of the text. */
static icalcomponent *
calendar_of(icalcomponent *root, struct error *err)
{
    icalcomponent_kind kind = icalcomponent_isa(root);

    if (kind == ICAL_VCALENDAR_COMPONENT || kind == ICAL_VEVENT_COMPONENT)
        return root;
    if (kind == ICAL_XROOT_COMPONENT) {
        error_set(err, ERROR_MAPPING, "more than one VCALENDAR");
        return NULL;
    }
    error_set(err, ERROR_MAPPING, "not a VCALENDAR");
    return NULL;
}

static int
build(struct reader *r, icalcomponent *cal, cJSON **raw, struct error *err)
{
    icalcomponent *master, **overrides;
    int count = 0, rc = -1;
    cJSON *exceptions, *ev;

    overrides = xcalloc(ICAL_MAX_EVENTS, sizeof(icalcomponent *));
    if (collect_events(cal, &master, overrides, &count, err) != 0)
        goto out;
    if (read_event(r, master, 0, raw, err) != 0)
        goto out;
    exceptions = need(cJSON_CreateArray());
    cJSON_AddItemToObject(*raw, "exceptions", exceptions);
    for (int i = 0; i < count; i++) {
        if (read_event(r, overrides[i], 1, &ev, err) != 0) {
            error_wrap(err, "overridden occurrence %d", i + 1);
            cJSON_Delete(*raw);
            goto out;
        }
        cJSON_AddItemToArray(exceptions, ev);
    }
    rc = 0;
out:
    free(overrides);
    return rc;
}

int
appt_from_ical(const char *text, size_t len, cJSON **out, struct error *err)
{
    struct reader r = {0};
    icalcomponent *root, *cal;
    cJSON *raw = NULL;
    char *buf;
    int rc = -1;

    if (len > APPT_ICAL_MAX_BYTES)
        return error_set(err, ERROR_MAPPING, "iCalendar text of %zu bytes; at most %zu", len,
                         APPT_ICAL_MAX_BYTES);
    if (memchr(text, '\0', len) != NULL)
        return error_set(err, ERROR_MAPPING, "iCalendar text holds a NUL byte");
    buf = xstrndup(text, len);
    root = icalparser_parse_string(buf);
    free(buf);
    icalerror_clear_errno();
    if (root == NULL)
        return error_set(err, ERROR_MAPPING, "not iCalendar text");
    cal = calendar_of(root, err);
    if (cal != NULL) {
        r.vcal = icalcomponent_isa(cal) == ICAL_VCALENDAR_COMPONENT ? cal : NULL;
        if (build(&r, cal, &raw, err) == 0) {
            rc = appt_normalize(raw, out, err);
            cJSON_Delete(raw);
        }
    }
    icalcomponent_free(root);
    icalerror_clear_errno();
    return rc == 0 ? 0 : error_wrap(err, "iCalendar");
}

/* --- writing -------------------------------------------------------------- */

struct writer {
    const cJSON *appt;      /* canonical */
    struct appt_when start; /* the series': recurrence ids and exdates take its form */
    int64_t dtstamp_s;
    char zones[ICAL_MAX_ZONES][APPT_TZ_MAX];
    int zone_count;
    int min_year; /* the earliest year a written time falls in */
};

static int
note_zone(struct writer *w, const char *tz, struct error *err)
{
    for (int i = 0; i < w->zone_count; i++) {
        if (strcmp(w->zones[i], tz) == 0)
            return 0;
    }
    if (w->zone_count == ICAL_MAX_ZONES)
        return error_set(err, ERROR_MAPPING, "more than %d time zones", ICAL_MAX_ZONES);
    (void)snprintf(w->zones[w->zone_count++], APPT_TZ_MAX, "%s", tz);
    return 0;
}

/* A new date or date-time property of kind for when. */
static icalproperty *
time_prop(struct writer *w, icalproperty_kind kind, const struct appt_when *when, struct error *err)
{
    struct icaltimetype tt;
    int64_t civil = when->s;
    icalproperty *p = NULL;

    if (when->kind == APPT_WHEN_AT && when->tz[0] != '\0' &&
        (appt_tz_utc_to_local(when->tz, when->s, &civil, err) != 0 ||
         note_zone(w, when->tz, err) != 0))
        return NULL;
    tt = tt_of(civil, when->kind == APPT_WHEN_DATE, when->kind == APPT_WHEN_AT && !when->tz[0]);
    if (tt.year < w->min_year)
        w->min_year = tt.year;
    switch (kind) {
    case ICAL_DTSTART_PROPERTY:
        p = icalproperty_new_dtstart(tt);
        break;
    case ICAL_DTEND_PROPERTY:
        p = icalproperty_new_dtend(tt);
        break;
    case ICAL_RECURRENCEID_PROPERTY:
        p = icalproperty_new_recurrenceid(tt);
        break;
    case ICAL_EXDATE_PROPERTY:
        p = icalproperty_new_exdate(tt);
        break;
    default: {
        struct icaldatetimeperiodtype dp;

        dp.time = tt;
        dp.period = icalperiodtype_null_period();
        p = icalproperty_new_rdate(dp);
        break;
    }
    }
    if (when->kind == APPT_WHEN_AT && when->tz[0] != '\0')
        icalproperty_add_parameter(p, icalparameter_new_tzid(when->tz));
    return p;
}

static int
add_time(struct writer *w, icalcomponent *ev, icalproperty_kind kind, const struct appt_when *when,
         struct error *err)
{
    icalproperty *p = time_prop(w, kind, when, err);

    if (p == NULL)
        return -1;
    icalcomponent_add_property(ev, p);
    return 0;
}

/* Each text of list (exdates or rdates) as a property of kind. */
static int
add_time_list(struct writer *w, icalcomponent *ev, icalproperty_kind kind, const cJSON *list,
              struct error *err)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, list)
    {
        struct appt_when when;

        if (!cJSON_IsString(it) ||
            appt_when_from_text(it->valuestring, &w->start, &when, err) != 0 ||
            add_time(w, ev, kind, &when, err) != 0)
            return -1;
    }
    return 0;
}

/*
 * A name as an RFC 6868 parameter value, malloc()ed: libical decodes ^^,
 * ^n and ^' when it reads, and encodes only the quote when it writes, so
 * a caret (and a line break) is encoded here, or "x^ny" would come back
 * as a line break.
 */
static char *
param_text(const char *s)
{
    char *out = xmalloc(2 * strlen(s) + 1), *o = out;

    for (; *s != '\0'; s++) {
        if (*s == '^' || *s == '\n') {
            *o++ = '^';
            *o++ = *s == '^' ? '^' : 'n';
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
    return out;
}

static icalproperty *
person_prop(const cJSON *person, int is_attendee)
{
    const cJSON *email = cJSON_GetObjectItemCaseSensitive(person, "email");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(person, "name");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(person, "status");
    char addr[1100];
    icalproperty *p;

    (void)snprintf(addr, sizeof(addr), "mailto:%s", email->valuestring);
    p = is_attendee ? icalproperty_new_attendee(addr) : icalproperty_new_organizer(addr);
    if (cJSON_IsString(name)) {
        char *cn = param_text(name->valuestring);

        icalproperty_add_parameter(p, icalparameter_new_cn(cn));
        free(cn);
    }
    if (is_attendee) {
        icalparameter_partstat ps = ICAL_PARTSTAT_NEEDSACTION;

        if (cJSON_IsString(status) && strcmp(status->valuestring, "accepted") == 0)
            ps = ICAL_PARTSTAT_ACCEPTED;
        else if (cJSON_IsString(status) && strcmp(status->valuestring, "declined") == 0)
            ps = ICAL_PARTSTAT_DECLINED;
        else if (cJSON_IsString(status) && strcmp(status->valuestring, "tentative") == 0)
            ps = ICAL_PARTSTAT_TENTATIVE;
        icalproperty_add_parameter(p, icalparameter_new_partstat(ps));
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(person, "optional")))
            icalproperty_add_parameter(p, icalparameter_new_role(ICAL_ROLE_OPTPARTICIPANT));
    }
    return p;
}

static void
add_texts_and_people(icalcomponent *ev, const cJSON *o)
{
    const cJSON *v, *it;

    v = cJSON_GetObjectItemCaseSensitive(o, "title");
    if (cJSON_IsString(v))
        icalcomponent_add_property(ev, icalproperty_new_summary(v->valuestring));
    v = cJSON_GetObjectItemCaseSensitive(o, "description");
    if (cJSON_IsString(v))
        icalcomponent_add_property(ev, icalproperty_new_description(v->valuestring));
    v = cJSON_GetObjectItemCaseSensitive(o, "location");
    if (cJSON_IsString(v))
        icalcomponent_add_property(ev, icalproperty_new_location(v->valuestring));
    v = cJSON_GetObjectItemCaseSensitive(o, "status");
    icalcomponent_add_property(
        ev, icalproperty_new_status(
                !cJSON_IsString(v)                         ? ICAL_STATUS_CONFIRMED
                : strcmp(v->valuestring, "tentative") == 0 ? ICAL_STATUS_TENTATIVE
                : strcmp(v->valuestring, "cancelled") == 0 ? ICAL_STATUS_CANCELLED
                                                           : ICAL_STATUS_CONFIRMED));
    v = cJSON_GetObjectItemCaseSensitive(o, "sequence");
    if (cJSON_IsNumber(v))
        icalcomponent_add_property(ev, icalproperty_new_sequence(v->valueint));
    v = cJSON_GetObjectItemCaseSensitive(o, "organizer");
    if (cJSON_IsObject(v))
        icalcomponent_add_property(ev, person_prop(v, 0));
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(o, "attendees"))
        icalcomponent_add_property(ev, person_prop(it, 1));
}

static int
add_recurrence(struct writer *w, icalcomponent *ev, const cJSON *rec, struct error *err)
{
    const cJSON *rrule = cJSON_GetObjectItemCaseSensitive(rec, "rrule");

    if (cJSON_IsString(rrule)) {
        struct icalrecurrencetype r = icalrecurrencetype_from_string(rrule->valuestring);

        icalerror_clear_errno();
        if (r.freq == ICAL_NO_RECURRENCE)
            return error_set(err, ERROR_MAPPING, "RRULE \"%.64s\" is not valid",
                             rrule->valuestring);
        icalcomponent_add_property(ev, icalproperty_new_rrule(r));
    }
    return add_time_list(w, ev, ICAL_EXDATE_PROPERTY,
                         cJSON_GetObjectItemCaseSensitive(rec, "exdates"), err) == 0 &&
                   add_time_list(w, ev, ICAL_RDATE_PROPERTY,
                                 cJSON_GetObjectItemCaseSensitive(rec, "rdates"), err) == 0
               ? 0
               : -1;
}

/* One VEVENT: the series (o is the appointment) or an occurrence (o comes
 * from appt_occurrence() and has "recurrence_id"). */
static int
write_event(struct writer *w, const cJSON *o, icalcomponent **out, struct error *err)
{
    const cJSON *rid = cJSON_GetObjectItemCaseSensitive(o, "recurrence_id");
    const cJSON *rec = cJSON_GetObjectItemCaseSensitive(o, "recurrence");
    icalcomponent *ev = icalcomponent_new(ICAL_VEVENT_COMPONENT);
    struct appt_when start, end, when;

    icalcomponent_add_property(
        ev, icalproperty_new_uid(cJSON_GetObjectItemCaseSensitive(w->appt, "uid")->valuestring));
    icalcomponent_add_property(ev, icalproperty_new_dtstamp(tt_of(w->dtstamp_s, 0, 1)));
    if (cJSON_IsString(rid) && (appt_when_from_text(rid->valuestring, &w->start, &when, err) != 0 ||
                                add_time(w, ev, ICAL_RECURRENCEID_PROPERTY, &when, err) != 0))
        goto fail;
    if (appt_when_get(cJSON_GetObjectItemCaseSensitive(o, "start"), "start", &start, err) != 0 ||
        appt_when_get(cJSON_GetObjectItemCaseSensitive(o, "end"), "end", &end, err) != 0 ||
        add_time(w, ev, ICAL_DTSTART_PROPERTY, &start, err) != 0 ||
        add_time(w, ev, ICAL_DTEND_PROPERTY, &end, err) != 0)
        goto fail;
    add_texts_and_people(ev, o);
    if (cJSON_IsObject(rec) && add_recurrence(w, ev, rec, err) != 0)
        goto fail;
    *out = ev;
    return 0;

fail:
    icalcomponent_free(ev);
    return -1;
}

/* The year of an observance's last onset; INT_MAX if its rule never ends. */
static int
observance_last_year(icalcomponent *obs)
{
    struct icaltimetype start = icalcomponent_get_dtstart(obs);
    int last = start.year;

    for (icalproperty *p = icalcomponent_get_first_property(obs, ICAL_RRULE_PROPERTY); p != NULL;
         p = icalcomponent_get_next_property(obs, ICAL_RRULE_PROPERTY)) {
        struct icalrecurrencetype r = icalproperty_get_rrule(p);

        if (!icaltime_is_null_time(r.until))
            last = r.until.year > last ? r.until.year : last;
        else if (r.count > 0)
            last = start.year + r.count > last ? start.year + r.count : last;
        else
            return INT_MAX;
    }
    for (icalproperty *p = icalcomponent_get_first_property(obs, ICAL_RDATE_PROPERTY); p != NULL;
         p = icalcomponent_get_next_property(obs, ICAL_RDATE_PROPERTY)) {
        struct icaldatetimeperiodtype d = icalproperty_get_rdate(p);

        last = d.time.year > last ? d.time.year : last;
    }
    return last;
}

/* Drop the observances of vtz that ended before from_year, but the latest of
 * them: it is the one in force when from_year begins. */
static void
trim_vtimezone(icalcomponent *vtz, int from_year)
{
    icalcomponent *drop[512], *latest = NULL;
    int count = 0, latest_year = INT_MIN;

    for (icalcomponent *o = icalcomponent_get_first_component(vtz, ICAL_ANY_COMPONENT);
         o != NULL && count < (int)ARRAY_COUNT(drop);
         o = icalcomponent_get_next_component(vtz, ICAL_ANY_COMPONENT)) {
        int last = observance_last_year(o);

        if (last >= from_year)
            continue;
        drop[count++] = o;
        if (last >= latest_year) {
            latest_year = last;
            latest = o;
        }
    }
    for (int i = 0; i < count; i++) {
        if (drop[i] == latest)
            continue;
        icalcomponent_remove_component(vtz, drop[i]);
        icalcomponent_free(drop[i]);
    }
}

static int
add_vtimezone(icalcomponent *vcal, const char *tz, int from_year, struct error *err)
{
    icaltimezone *zone = icaltimezone_get_builtin_timezone(tz);
    icalcomponent *src = zone != NULL ? icaltimezone_get_component(zone) : NULL;
    icalcomponent *vtz;
    icalproperty *id;

    if (src == NULL)
        return error_set(err, ERROR_MAPPING, "no zone data for %.64s", tz);
    vtz = icalcomponent_new_clone(src);
    /* libical names its zones "/freeassociation.sourceforge.net/Europe/...";
     * servers and clients expect the IANA name the events use. */
    id = icalcomponent_get_first_property(vtz, ICAL_TZID_PROPERTY);
    if (id != NULL)
        icalproperty_set_tzid(id, tz);
    trim_vtimezone(vtz, from_year);
    icalcomponent_add_component(vcal, vtz);
    return 0;
}

static int
write_events(struct writer *w, icalcomponent **events, int *count, struct error *err)
{
    const cJSON *exc;

    if (write_event(w, w->appt, &events[(*count)], err) != 0)
        return -1;
    (*count)++;
    cJSON_ArrayForEach(exc, cJSON_GetObjectItemCaseSensitive(w->appt, "exceptions"))
    {
        cJSON *occ;
        int rc;

        if (appt_occurrence(w->appt, exc, &occ, err) != 0)
            return -1;
        rc = write_event(w, occ, &events[*count], err);
        cJSON_Delete(occ);
        if (rc != 0)
            return -1;
        (*count)++;
    }
    return 0;
}

int
appt_to_ical(const cJSON *appt, int64_t dtstamp_s, char **out, struct error *err)
{
    struct writer w = {0};
    cJSON *canon = NULL;
    icalcomponent *vcal = NULL, **events = NULL;
    int count = 0, rc = -1;
    char *text;

    if (appt_normalize(appt, &canon, err) != 0)
        return error_wrap(err, "iCalendar");
    w.appt = canon;
    w.dtstamp_s = dtstamp_s;
    w.min_year = INT_MAX;
    if (appt_when_get(cJSON_GetObjectItemCaseSensitive(canon, "start"), "start", &w.start, err) !=
        0)
        goto out;
    events = xcalloc(
        (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(canon, "exceptions")) + 1,
        sizeof(icalcomponent *));
    if (write_events(&w, events, &count, err) != 0)
        goto out;
    vcal = icalcomponent_new(ICAL_VCALENDAR_COMPONENT);
    icalcomponent_add_property(vcal, icalproperty_new_version("2.0"));
    icalcomponent_add_property(vcal, icalproperty_new_prodid("-//concord//concord//EN"));
    for (int i = 0; i < w.zone_count; i++) {
        if (add_vtimezone(vcal, w.zones[i], w.min_year - 1, err) != 0)
            goto out;
    }
    for (int i = 0; i < count; i++) {
        icalcomponent_add_component(vcal, events[i]);
        events[i] = NULL;
    }
    text = icalcomponent_as_ical_string_r(vcal);
    if (text == NULL) {
        error_set(err, ERROR_MAPPING, "libical could not write the calendar");
        goto out;
    }
    *out = xstrdup(text);
    icalmemory_free_buffer(text);
    rc = 0;
out:
    for (int i = 0; i < count; i++) {
        if (events[i] != NULL)
            icalcomponent_free(events[i]);
    }
    free(events);
    if (vcal != NULL)
        icalcomponent_free(vcal);
    cJSON_Delete(canon);
    icalerror_clear_errno();
    return rc == 0 ? 0 : error_wrap(err, "iCalendar");
}
