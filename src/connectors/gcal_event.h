/* SPDX-License-Identifier: MIT */

/*
 * Google Calendar events (EXTERNAL-APIS.md §3.3) to the canonical
 * appointment (appt.h) and back: summary, description, location, status,
 * start/end as {dateTime, timeZone} or {date}, attendees, and the series'
 * recurrence lines (RRULE, EXDATE, RDATE: iCalendar text, read with the
 * iCalendar reader), with its overridden occurrences, which Google keeps as
 * events of their own (recurringEventId, originalStartTime). The HTTP calls
 * are the caller's; this file only shapes JSON.
 *
 * Thread: any thread.
 */
#ifndef CONCORD_CONNECTORS_GCAL_EVENT_H
#define CONCORD_CONNECTORS_GCAL_EVENT_H

#include <stddef.h>

#include "core/compiler.h"

struct cJSON;
struct error;

/*
 * Whether a Google event is a deletion: status "cancelled" on an event
 * that is not an instance of a series. Incremental sync lists deleted
 * events this way (often with nothing but id and status), and so is a
 * meeting its organizer cancelled; either way the appointment is gone.
 * Check this first: appt_from_gcal() refuses an event without a start.
 * Returns 1 or 0.
 */
int appt_gcal_is_deleted(const struct cJSON *event);

/*
 * Read a Google event into a canonical appointment.
 *
 * event: a single event or a recurring event (with "recurrence"), as
 * events.get or events.list with singleEvents=false gives it. uid is its
 * iCalUID (else "<id>@google.com", Google's own rule). tz is
 * start.timeZone, when given.
 *
 * instances: NULL, or an array of the series' instances that differ from
 * it (events.list returns them as events with recurringEventId; the caller
 * groups them by that id): status "cancelled" ones become exdates, the
 * others exceptions, named by originalStartTime.
 *
 * On success *out is a new object the caller frees with cJSON_Delete().
 * On failure returns -1 with ERROR_MAPPING ("gcal event: start: ...").
 */
MUST_CHECK int appt_from_gcal(const struct cJSON *event, const struct cJSON *instances,
                              struct cJSON **out, struct error *err);

/*
 * Write appt (normalised first) as a Google event body for events.insert or
 * events.update: iCalUID, summary, description and location ("" when
 * empty, so a PATCH clears them too), status, start/end (a zoned time as
 * its local time with offset plus timeZone; a UTC one with "Z", and
 * timeZone "UTC" for a series, which Google requires), attendees and
 * recurrence lines (RRULE, then one EXDATE or RDATE line per time, in the
 * series' zone). organizer and sequence are not written: Google sets the
 * first and refuses a sequence lower than its own.
 *
 * *instances (an array, possibly empty) holds one full event per
 * exception, each with originalStartTime, for events.update of that
 * instance once the series exists (appt_gcal_instance_id() gives its id).
 * Cancelled occurrences are EXDATE lines of the series, not instances.
 * Both outputs are new objects the caller frees with cJSON_Delete().
 *
 * Fails with ERROR_MAPPING for a floating time (Google has none).
 */
MUST_CHECK int appt_to_gcal(const struct cJSON *appt, struct cJSON **event,
                            struct cJSON **instances, struct error *err);

/*
 * The id Google gives one instance of a recurring event: the series' id,
 * '_', and the recurrence id in basic form, UTC for a timed series
 * ("abc_20260406T073000Z") or the date for an all-day one ("abc_20260406").
 * (Google's observed convention, not a documented promise: prefer finding
 * the instance by originalStartTime when events.instances is at hand.)
 * recurrence_id is canonical (appt.h). Writes at most out_len bytes, NUL
 * included; returns 0, or -1 when it does not fit or recurrence_id is no
 * canonical time.
 */
MUST_CHECK int appt_gcal_instance_id(const char *event_id, const char *recurrence_id, char *out,
                                     size_t out_len);

#endif
