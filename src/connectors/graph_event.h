/* SPDX-License-Identifier: MIT */

/*
 * Microsoft Graph calendar events (EXTERNAL-APIS.md §4.3) to the canonical
 * appointment (appt.h) and back: subject, body, start/end as {dateTime,
 * timeZone} with Windows zone names, isAllDay, attendees, and the series'
 * recurrence as {pattern, range}, converted to and from an RRULE where
 * Graph can express it. The HTTP calls (POST /me/events, PATCH, the
 * instances of a series) are the caller's; this file only shapes JSON.
 *
 * Thread: any thread.
 */
#ifndef CONCORD_CONNECTORS_GRAPH_EVENT_H
#define CONCORD_CONNECTORS_GRAPH_EVENT_H

#include "core/compiler.h"

struct cJSON;
struct error;

/*
 * Read a Graph event into a canonical appointment.
 *
 * event: a single event or a series master, as GET /me/events/{id} returns
 * it. An occurrence or exception given here alone is read as a single
 * event. Its "tz" is originalStartTimeZone when that names a zone
 * (Windows or IANA), else start.timeZone unless that is UTC. A body of
 * contentType html is turned into plain text (tags dropped, entities
 * decoded); ask Graph for text with Prefer: outlook.body-content-type="text"
 * to avoid that. isCancelled is status "cancelled"; Graph has no tentative
 * events, so every other event is "confirmed".
 *
 * instances: NULL, or an array of the series' occurrences as
 * GET /me/events/{id}/instances or a delta page gives them: those of type
 * "exception" become exceptions (their originalStart, else the date in
 * their occurrenceId, names the occurrence), isCancelled ones become
 * exdates, plain occurrences are skipped. Without instances, the master's
 * exceptionOccurrences (beta, $expand) are read instead. The master's
 * cancelledOccurrences ("OID.<id>.2026-04-06") always become exdates.
 *
 * On success *out is a new object the caller frees with cJSON_Delete().
 * On failure returns -1 with ERROR_MAPPING ("graph event: recurrence:
 * pattern type hourly is unknown").
 */
MUST_CHECK int appt_from_graph(const struct cJSON *event, const struct cJSON *instances,
                               struct cJSON **out, struct error *err);

/*
 * Write appt (normalised first) as a Graph event body for POST /me/events
 * or PATCH /me/events/{id}: subject, body (contentType text), start/end as
 * local times in the appointment's zone named the Windows way ("GTB
 * Standard Time"; an IANA name when CLDR has no Windows name for it; "UTC"
 * without a zone; all-day: midnight, "UTC", isAllDay true), location,
 * organizer, attendees (type optional/required, status) and recurrence.
 * iCalUId, isCancelled and the status are not written: Graph sets the first
 * and cancels a meeting with its cancel action, not a field.
 *
 * *instances (an array, possibly empty) says what each occurrence needs
 * once the series exists, in recurrence id order:
 * {"originalStart": "2026-04-06T07:30:00Z", "isCancelled": true} is an
 * occurrence to delete; {"originalStart", "subject", "start", ...} one to
 * PATCH with the occurrence in full. The caller finds each occurrence's id
 * among GET /me/events/{id}/instances by originalStart. Both outputs are
 * new objects the caller frees with cJSON_Delete().
 *
 * Fails with ERROR_MAPPING, naming the part, for what Graph cannot hold: a
 * floating time, rdates, an RRULE with parts no Graph pattern has (BYHOUR,
 * BYWEEKNO, BYYEARDAY, FREQ=HOURLY, several BYMONTHDAY, mixed positions in
 * BYDAY...). Nothing is written then.
 */
MUST_CHECK int appt_to_graph(const struct cJSON *appt, struct cJSON **event,
                             struct cJSON **instances, struct error *err);

/*
 * The IANA zone of a Windows time zone name ("GTB Standard Time" ->
 * "Europe/Bucharest"), from CLDR's windowsZones table (the zone it names
 * for territory 001); NULL for a name not in the table. A static string.
 */
const char *appt_graph_tz_to_iana(const char *windows);

/*
 * The Windows time zone name of an IANA zone ("Europe/Athens" -> "GTB
 * Standard Time"), also for zones that are not a Windows zone's main one
 * and for old IANA spellings ("Asia/Calcutta"); NULL if not in the table.
 * A static string.
 */
const char *appt_graph_tz_from_iana(const char *iana);

#endif
