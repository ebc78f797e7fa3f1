/* SPDX-License-Identifier: MIT */

/*
 * The canonical appointment: one calendar event (a series with its
 * overridden occurrences, or a single event) as a cJSON object, the form in
 * which concord compares and merges calendar records whatever system they
 * came from. docs/calendars.md describes every field; in short:
 *
 *   { "uid", "title", "description", "location",
 *     "status": "confirmed" | "tentative" | "cancelled",
 *     "start": {"at": "2026-03-29T07:30:00Z", "tz": "Europe/Bucharest"}
 *            | {"date": "2026-03-29"} | {"local": "2026-03-29T10:30:00"},
 *     "end": the same kind as start, never before it,
 *     "organizer": {"email", "name"},
 *     "attendees": [{"email", "name", "status", "optional": true}] by email,
 *     "recurrence": {"rrule", "exdates": [...], "rdates": [...]},
 *     "exceptions": [{"recurrence_id", ...only the fields that differ}],
 *     "sequence": n }
 *
 * The format converters (ical.h, gcal_event.h, graph_event.h) produce this
 * form and write it back; appt_normalize() turns a loosely written one (the
 * output of an operator's map) into it. This header also holds the time
 * arithmetic they share: wall-clock ("civil") times, IANA zones through
 * libical's zone data, and RFC 5545's rule for local times that a
 * daylight-saving change skips or repeats.
 *
 * Thread: every function is safe on any thread (libical guards its zone
 * cache with its own lock).
 */
#ifndef CONCORD_CONNECTORS_APPT_H
#define CONCORD_CONNECTORS_APPT_H

#include <stdint.h>

#include "core/compiler.h"

struct cJSON;
struct error;

/* --- wall-clock time ------------------------------------------------------ */

/*
 * A "civil" time is a date and time of day as written on a wall clock,
 * counted in seconds since 1970-01-01T00:00:00 as if it were UTC. Instants
 * (UTC) use the same count. Valid values lie in years 0001 to 3000, the
 * years libical writes (it writes later ones as 00000000T000000).
 */
#define APPT_CIVIL_MIN (-62135596800LL) /* 0001-01-01T00:00:00 */
#define APPT_CIVIL_MAX 32535215999LL    /* 3000-12-31T23:59:59 */
#define APPT_DAY_S     86400

/* Longest text of a time ("2026-03-29T07:30:00Z") or zone name, with NUL. */
#define APPT_TEXT_MAX 32
#define APPT_TZ_MAX   64

/* A civil time taken apart. weekday: 0 = Sunday ... 6 = Saturday. */
struct appt_fields {
    int year, month, day, hour, minute, second, weekday;
};

/* The civil time of these fields; fields out of their ranges roll over
 * (month 13 is January of the next year). Not range-checked. */
int64_t appt_civil(int year, int month, int day, int hour, int minute, int second);

/* Take a civil time apart into *out. Any value in APPT_CIVIL_MIN..MAX. */
void appt_civil_split(int64_t civil_s, struct appt_fields *out);

/* A time as written in text: see appt_text_parse(). */
struct appt_text {
    int64_t civil_s; /* the date and time written, as a civil time */
    int is_date;     /* only a date was written: "2026-03-29" */
    int has_offset;  /* a 'Z' or an offset followed the time */
    int offset_s;    /* with has_offset: seconds east of UTC (+03:00 is 10800) */
};

/*
 * Read "YYYY-MM-DD", or "YYYY-MM-DDTHH:MM[:SS[.fraction]]" optionally
 * followed by "Z" or an offset ("+03:00", "+0300", "+03"). The fraction is
 * dropped (calendars count whole seconds). Returns 0 and fills *out, or -1
 * when s is not such a text, names an impossible date, or a year past 3000.
 */
MUST_CHECK int appt_text_parse(const char *s, struct appt_text *out);

/*
 * Canonical texts: an instant "2026-03-29T07:30:00Z", a floating local time
 * "2026-03-29T10:30:00", a date "2026-03-29" (the time of day is dropped).
 * Return 0, or -1 when the value is outside years 0001-3000.
 */
MUST_CHECK int appt_format_instant(int64_t utc_s, char out[APPT_TEXT_MAX]);
MUST_CHECK int appt_format_local(int64_t civil_s, char out[APPT_TEXT_MAX]);
MUST_CHECK int appt_format_date(int64_t civil_s, char out[APPT_TEXT_MAX]);

/* --- time zones ----------------------------------------------------------- */

/*
 * The canonical spelling of a zone name: an IANA name that the zone data
 * knows ("Europe/Bucharest") is kept; a TZID with a vendor prefix
 * ("/freeassociation.sourceforge.net/Europe/Bucharest",
 * "/mozilla.org/20050126_1/Europe/Bucharest") loses the prefix; every
 * spelling of UTC ("UTC", "Etc/UTC", "GMT", "Z", "") becomes "" (an instant
 * needs no zone). Returns 1 with out filled, or 0 for a name the zone data
 * does not know (out is then "").
 */
int appt_tz_canonical(const char *name, char out[APPT_TZ_MAX]);

/* The offset east of UTC, in seconds, of a zone at a UTC instant. zone is the
 * caller's handle; the function must be total. */
typedef int appt_utc_offset_fn(void *zone, int64_t utc_s);

/*
 * The instant of a civil time in a zone, by RFC 5545 §3.3.5: a local time
 * that occurs twice (the hour a clock is turned back) means the first of the
 * two; a local time that does not exist (the hour a clock skips) is read with
 * the offset in force before the gap, so 03:30 on the day Bucharest jumps from
 * 03:00 to 04:00 is 04:30 local time, 01:30Z. offset_at tells the zone's
 * offset at any instant. Pure; returns the instant.
 */
int64_t appt_local_to_utc(appt_utc_offset_fn *offset_at, void *zone, int64_t civil_s);

/*
 * appt_local_to_utc() and its inverse for a zone by name (any name
 * appt_tz_canonical() knows; "" is UTC). Return 0, or -1 with ERROR_MAPPING
 * for an unknown zone or a result outside years 0001-3000.
 */
MUST_CHECK int appt_tz_local_to_utc(const char *tz, int64_t civil_s, int64_t *utc_s,
                                    struct error *err);
MUST_CHECK int appt_tz_utc_to_local(const char *tz, int64_t utc_s, int64_t *civil_s,
                                    struct error *err);

/* --- one point in time: "start", "end", an exdate, a recurrence id ------- */

enum appt_when_kind {
    APPT_WHEN_AT = 1, /* an instant; s is UTC; tz is the zone it is shown in, or "" */
    APPT_WHEN_DATE,   /* an all-day date; s is its midnight as a civil time */
    APPT_WHEN_LOCAL,  /* a floating wall-clock time, the same in every zone; s is civil */
};

struct appt_when {
    enum appt_when_kind kind;
    int64_t s;
    char tz[APPT_TZ_MAX];
};

/*
 * Read a canonical start/end object ({"at", "tz"}, {"date"} or {"local"}).
 * Returns 0, or -1 with ERROR_MAPPING naming what is wrong ("what" names the
 * field in the message: "start").
 */
MUST_CHECK int appt_when_get(const struct cJSON *obj, const char *what, struct appt_when *out,
                             struct error *err);

/* The canonical object of w (tz only when not ""), a new cJSON object the
 * caller frees; NULL when w lies outside years 0001-3000. */
struct cJSON *appt_when_json(const struct appt_when *w);

/* The text form of w that exdates, rdates and recurrence ids use: an instant,
 * a date or a local time (appt_format_*). Returns 0 or -1 (out of range). */
MUST_CHECK int appt_when_text(const struct appt_when *w, char out[APPT_TEXT_MAX]);

/*
 * Read an exdate, rdate or recurrence id written as text, for a series whose
 * start is like: a date for an all-day series, an instant for a timed one
 * (a text without an offset is then a local time in like->tz), a local time
 * for a floating one. *out gets like's kind and tz. Returns 0, or -1 with
 * ERROR_MAPPING when the text does not fit.
 */
MUST_CHECK int appt_when_from_text(const char *text, const struct appt_when *like,
                                   struct appt_when *out, struct error *err);

/* --- appointments --------------------------------------------------------- */

/*
 * The key an attendee or organizer is known by: the address with any
 * "mailto:" dropped, trimmed and lower-cased (normalize.h, NORMALIZE_EMAIL).
 * A malloc()ed string the caller frees, or NULL when s is no email address
 * (a "urn:uuid:" attendee, a room without a mailbox) or one no calendar can
 * write back (blanks, quotes, control characters, bytes that are not
 * UTF-8): converters skip those.
 */
char *appt_email_key(const char *s);

/*
 * The canonical form of an appointment written loosely, as an operator's map
 * may write it: instants with any offset become UTC "Z"; an "at" without an
 * offset is a local time in its "tz"; zone names become canonical; "UTC"
 * zones are dropped; empty strings and empty lists are dropped; in texts
 * CRLF and CR become LF, other control characters but TAB are dropped,
 * bytes that are not UTF-8 become U+FFFD and trailing blanks go (a name is
 * one line; a uid with a control character is refused); status is lower-cased ("canceled" is
 * "cancelled") and defaults to "confirmed"; a missing end is the start (one
 * day later for a date); attendees are keyed by their lower-cased email
 * (one without an address is refused: the format readers skip those), one
 * per address, sorted, a name that only repeats the address is dropped, and
 * their status defaults to "needs-action"; the RRULE is rewritten by libical
 * in its canonical order, with the day the start implies made explicit
 * ("FREQ=WEEKLY" starting on a Monday is "FREQ=WEEKLY;BYDAY=MO"); exdates and rdates are sorted and
 * unique; an exception keeps only the fields that differ from the series (a
 * field it clears is null), a cancelled one becomes an exdate, one that
 * differs in nothing is dropped. See docs/calendars.md.
 *
 * On success *out is a new object the caller frees with cJSON_Delete(). On
 * failure returns -1 with ERROR_MAPPING and a message naming the field
 * (unknown fields are refused: a misspelt key is a mistake, not data).
 * Normalising a canonical appointment gives an equal copy.
 */
MUST_CHECK int appt_normalize(const struct cJSON *in, struct cJSON **out, struct error *err);

/*
 * One occurrence of a series in full, for writers of formats that store an
 * overridden occurrence as a whole event: the series' fields, overlaid with
 * the exception's (a null field removed), its own start and end (or those the
 * recurrence gives it: the recurrence id, and the series' duration), and
 * "recurrence_id"; no "recurrence" or "exceptions". appt is canonical and
 * exception one of its "exceptions". On success *out is a new object the
 * caller frees. Returns -1 with ERROR_MAPPING on a malformed input.
 */
MUST_CHECK int appt_occurrence(const struct cJSON *appt, const struct cJSON *exception,
                               struct cJSON **out, struct error *err);

/* The most occurrences appt_occurs() steps through. */
#define APPT_OCCURS_MAX 100000

/*
 * Whether rid (a recurrence id as text) names an occurrence of series appt
 * (canonical): its start, an rdate, or a time its RRULE gives from the start
 * (COUNT and UNTIL aside, and at most APPT_OCCURS_MAX of them). An exception
 * whose id is none of these belongs to an earlier form of the series: its
 * start or rule has changed since. Returns 1, 0, or -1 when it cannot be
 * told (a malformed start, rid or rule, or more than APPT_OCCURS_MAX
 * occurrences before rid).
 */
int appt_occurs(const struct cJSON *appt, const char *rid);

/* The fields appt_diff() reports, one bit each. */
enum appt_field {
    APPT_FIELD_UID = 1u << 0,
    APPT_FIELD_TITLE = 1u << 1,
    APPT_FIELD_DESCRIPTION = 1u << 2,
    APPT_FIELD_LOCATION = 1u << 3,
    APPT_FIELD_STATUS = 1u << 4,
    APPT_FIELD_START = 1u << 5,
    APPT_FIELD_END = 1u << 6,
    APPT_FIELD_ORGANIZER = 1u << 7,
    APPT_FIELD_ATTENDEES = 1u << 8,
    APPT_FIELD_RECURRENCE = 1u << 9,
    APPT_FIELD_EXCEPTIONS = 1u << 10,
    APPT_FIELD_SEQUENCE = 1u << 11,
};

/*
 * Which fields of two canonical appointments differ, as a mask of
 * enum appt_field (0: none). Times compare as what they mean: "start" and
 * "end" by instant, so one meeting written in two zones is the same meeting;
 * their "tz" counts only for a recurring appointment, whose occurrences keep
 * their wall-clock time in that zone across daylight-saving changes. Inputs
 * that are not canonical (see appt_normalize) compare field by field as
 * JSON. NULL is an appointment with no fields.
 */
unsigned appt_diff(const struct cJSON *a, const struct cJSON *b);

/* Whether a and b are the same meeting: appt_diff() finds no field but
 * "sequence" (a revision counter each system keeps for itself) and "uid"
 * (each system may name one meeting its own way: Graph assigns its own
 * iCalUId). 1 or 0. */
int appt_equal(const struct cJSON *a, const struct cJSON *b);

/* The JSON name of one enum appt_field bit ("title"); "?" for anything else. */
const char *appt_field_name(unsigned field);

/*
 * The names of the fields in mask, comma-separated ("start, end"), into out
 * (at most out_len bytes, NUL included, cut if longer). Returns out.
 */
char *appt_diff_text(unsigned mask, char *out, unsigned out_len);

#endif
