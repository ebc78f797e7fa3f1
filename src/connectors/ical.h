/* SPDX-License-Identifier: MIT */

/*
 * iCalendar text (RFC 5545), as CalDAV stores it, to the canonical
 * appointment (appt.h) and back, through libical. One text is one calendar
 * object resource: a VCALENDAR with the VEVENTs of one UID, the series (or
 * single event) and its overridden occurrences (RECURRENCE-ID).
 *
 * Zones: a TZID that names an IANA zone (also behind a vendor prefix such
 * as "/mozilla.org/20050126_1/Europe/Bucharest") or a Windows zone ("GTB
 * Standard Time") is read with the system's zone data, whatever VTIMEZONE
 * the text carries, and kept as the appointment's "tz". Any other TZID is
 * read with the text's own VTIMEZONE: the instants are right, and no "tz" is
 * kept (the appointment is written back in UTC). Local times that a
 * daylight-saving change skips or repeats follow RFC 5545 (appt.h,
 * appt_local_to_utc).
 *
 * Thread: any thread.
 */
#ifndef CONCORD_CONNECTORS_ICAL_H
#define CONCORD_CONNECTORS_ICAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/compiler.h"

struct cJSON;
struct error;

/* A text longer than this is refused before it is parsed. */
#define APPT_ICAL_MAX_BYTES ((size_t)4 * 1024 * 1024)

/*
 * Read len bytes of iCalendar text (no NUL needed) into a canonical
 * appointment. The text is a VCALENDAR (a bare VEVENT is also read) whose
 * VEVENTs share one UID: at most one without RECURRENCE-ID (the series, or
 * the single event) and any number with one. VTODO, VJOURNAL and other
 * components are ignored. Cancelled overrides become exdates.
 *
 * On success *out is a new cJSON object the caller frees with
 * cJSON_Delete(). On failure returns -1 with ERROR_MAPPING and a sentence
 * saying what is wrong ("VEVENT 2: DTSTART is missing"); *out is untouched.
 * Not supported, so refused: EXRULE, RECURRENCE-ID;RANGE=THISANDFUTURE, a
 * resource with overrides but no series.
 */
MUST_CHECK int appt_from_ical(const char *text, size_t len, struct cJSON **out, struct error *err);

/*
 * Write appt (normalised first, so a loosely written one is accepted: see
 * appt_normalize) as a VCALENDAR: VERSION 2.0, PRODID "-//concord//concord//EN",
 * one VTIMEZONE for each zone used (the system's zone data, without the
 * observances that ended before the appointment's earliest year), the
 * series' VEVENT and one VEVENT per exception, in full, with RECURRENCE-ID.
 * Times in a zone are written as local times with TZID, exdates and
 * recurrence ids in the form of DTSTART. dtstamp_s (epoch seconds, normally
 * now) is written as DTSTAMP.
 *
 * On success *out is a malloc()ed NUL-terminated text with CRLF line ends,
 * the caller's to free(). On failure returns -1 with ERROR_MAPPING.
 */
MUST_CHECK int appt_to_ical(const struct cJSON *appt, int64_t dtstamp_s, char **out,
                            struct error *err);

#endif
