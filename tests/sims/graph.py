#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A Microsoft 365 mailbox on 127.0.0.1: the Microsoft Graph v1.0 calendar
API and the Microsoft identity platform's OAuth 2.0 endpoints as concord's
Microsoft 365 connector sees them, with fault injection.

One process simulates one tenant with one mailbox user and one or more
calendars: events (create with transactionId, get, update, delete, list,
instances, cancel) in Graph's shapes, recurring series (seriesMaster,
occurrence, exception), calendarView and calendarView/delta with
@odata.nextLink / @odata.deltaLink paging and @removed entries (410 when a
delta token is invalidated), change-notification subscriptions with the
validationToken handshake, clientState and lifecycle notifications, the
client-credentials, authorization-code and refresh-token grants, mailbox
throttling (429 with Retry-After), and the fault actions of simbase.py. The
control API lives under /_sim/; it is never logged, never faulted and needs
no token. tests/sims/README.md ("graph.py") lists every option and
endpoint; /work/shared/apis/EXTERNAL-APIS.md section 4 and the Graph docs
it cites are the reference. Where they are silent the sim does what Graph
most plausibly does, and a comment says so.

It imports gcal.py (beside it) for the shared parts: time zones, the
recurrence engine, the request pipeline, notifications and OAuth tokens.

Standard library only. Prints "ready PORT" on stdout once it listens.
"""

import argparse
import base64
import copy
import datetime
import json
import math
import os
import random
import re
import sys
import time
import urllib.parse
import uuid

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gcal  # noqa: E402  (time, recurrence, pipeline, notifier, tokens)
import simbase  # noqa: E402  (Server)
import target  # noqa: E402  (tokens)

from gcal import UTC, ApiError, zone, parse_instant, parse_local, parse_date  # noqa: E402

ALNUM = gcal.ALNUM
ID_ALPHABET = ALNUM + "-_"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
JSON_TYPE = ("application/json;odata.metadata=minimal;odata.streaming=true;"
             "IEEE754Compatible=false;charset=utf-8")
MAX_TOP = 1000

# Windows time zone names (as Exchange keeps them) and their IANA zones: the
# common ones. Graph takes either kind in start/end and in Prefer:
# outlook.timezone.
WINDOWS_TZ = {
    "UTC": "UTC", "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "W. Europe Standard Time": "Europe/Berlin", "Romance Standard Time": "Europe/Paris",
    "Central Europe Standard Time": "Europe/Budapest",
    "Central European Standard Time": "Europe/Warsaw",
    "GTB Standard Time": "Europe/Bucharest", "E. Europe Standard Time": "Europe/Chisinau",
    "FLE Standard Time": "Europe/Kiev", "Russian Standard Time": "Europe/Moscow",
    "Turkey Standard Time": "Europe/Istanbul", "Israel Standard Time": "Asia/Jerusalem",
    "South Africa Standard Time": "Africa/Johannesburg",
    "Arabian Standard Time": "Asia/Dubai", "India Standard Time": "Asia/Kolkata",
    "China Standard Time": "Asia/Shanghai", "Singapore Standard Time": "Asia/Singapore",
    "Tokyo Standard Time": "Asia/Tokyo", "Korea Standard Time": "Asia/Seoul",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "New Zealand Standard Time": "Pacific/Auckland",
    "Eastern Standard Time": "America/New_York", "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver", "US Mountain Standard Time": "America/Phoenix",
    "Pacific Standard Time": "America/Los_Angeles", "Alaskan Standard Time":
    "America/Anchorage", "Hawaiian Standard Time": "Pacific/Honolulu",
    "Atlantic Standard Time": "America/Halifax",
    "E. South America Standard Time": "America/Sao_Paulo",
    "Argentina Standard Time": "America/Buenos_Aires",
    "SA Pacific Standard Time": "America/Bogota",
    "Central Standard Time (Mexico)": "America/Mexico_City",
    "Egypt Standard Time": "Africa/Cairo", "W. Central Africa Standard Time": "Africa/Lagos",
}
IANA_TO_WINDOWS = {}
for _w, _i in WINDOWS_TZ.items():
    IANA_TO_WINDOWS.setdefault(_i, _w)
IANA_TO_WINDOWS.update({"Etc/UTC": "UTC", "Europe/Amsterdam": "W. Europe Standard Time",
                        "Europe/Rome": "W. Europe Standard Time",
                        "Europe/Vienna": "W. Europe Standard Time",
                        "Europe/Madrid": "Romance Standard Time",
                        "Europe/Brussels": "Romance Standard Time",
                        "Europe/Prague": "Central Europe Standard Time",
                        "Europe/Athens": "GTB Standard Time",
                        "Europe/Helsinki": "FLE Standard Time",
                        "Europe/Sofia": "FLE Standard Time",
                        "Europe/Kyiv": "FLE Standard Time"})

# Every property of microsoft.graph.event (CSDL, v1.0). A request naming
# another one is refused, as Graph refuses it; read-only ones are ignored.
EVENT_PROPS = {
    "allowNewTimeProposals", "attendees", "body", "bodyPreview", "cancelledOccurrences",
    "categories", "changeKey", "createdDateTime", "end", "hasAttachments", "hideAttendees",
    "iCalUId", "id", "importance", "isAllDay", "isCancelled", "isDraft", "isOnlineMeeting",
    "isOrganizer", "isReminderOn", "lastModifiedDateTime", "location", "locations",
    "onlineMeeting", "onlineMeetingProvider", "onlineMeetingUrl", "organizer",
    "originalEndTimeZone", "originalStart", "originalStartTimeZone", "recurrence",
    "reminderMinutesBeforeStart", "responseRequested", "responseStatus", "sensitivity",
    "seriesMasterId", "showAs", "start", "subject", "transactionId", "type", "webLink",
    "attachments", "calendar", "extensions", "instances", "exceptionOccurrences",
    "multiValueExtendedProperties", "singleValueExtendedProperties"}
WRITABLE = ("subject", "body", "start", "end", "isAllDay", "showAs", "location", "locations",
            "attendees", "recurrence", "categories", "importance", "sensitivity",
            "isReminderOn", "reminderMinutesBeforeStart", "responseRequested",
            "allowNewTimeProposals", "hideAttendees", "isOnlineMeeting",
            "onlineMeetingProvider", "transactionId")
ENUMS = {"showAs": ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown"),
         "importance": ("low", "normal", "high"),
         "sensitivity": ("normal", "personal", "private", "confidential"),
         "onlineMeetingProvider": ("unknown", "skypeForBusiness", "skypeForConsumer",
                                   "teamsForBusiness")}
RESPONSES = ("none", "organizer", "tentativelyAccepted", "accepted", "declined",
             "notResponded")
PATTERNS = ("daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly",
            "relativeYearly")
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
INDEX = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
NEVER = "0001-01-01T00:00:00Z"
FIELD_ORDER = (
    "@odata.etag", "id", "createdDateTime", "lastModifiedDateTime", "changeKey", "categories",
    "transactionId", "originalStartTimeZone", "originalEndTimeZone", "iCalUId",
    "reminderMinutesBeforeStart", "isReminderOn", "hasAttachments", "subject", "bodyPreview",
    "importance", "sensitivity", "isAllDay", "isCancelled", "isOrganizer",
    "responseRequested", "seriesMasterId", "showAs", "type", "webLink", "onlineMeetingUrl",
    "isOnlineMeeting", "onlineMeetingProvider", "allowNewTimeProposals", "isDraft",
    "hideAttendees", "originalStart", "cancelledOccurrences", "responseStatus", "body",
    "start", "end", "location", "locations", "recurrence", "attendees", "organizer",
    "onlineMeeting")


def merr(status, code, message, headers=None, request_id=None):
    """Graph's error body {"error": {"code", "message", "innerError"}}."""
    rid = request_id or str(uuid.uuid4())
    return ApiError(status, {"error": {"code": code, "message": message, "innerError": {
        "date": datetime.datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": rid, "client-request-id": rid}}}, headers)


def bad_request(message, code="ErrorInvalidRequest"):
    return merr(400, code, message)


def not_found():
    return merr(404, "ErrorItemNotFound", "The specified object was not found in the store.")


def tz_of(name):
    """The tzinfo of a Windows or IANA zone name; ValueError if unknown."""
    if name in WINDOWS_TZ:
        return zone(WINDOWS_TZ[name])
    return zone(name)


def windows_name(name):
    """The Windows name Exchange keeps for a zone given by either kind of
    name (an unknown IANA name is kept as given)."""
    if name in WINDOWS_TZ:
        return name
    return IANA_TO_WINDOWS.get(name, name)


def fmt_local(dt):
    """Graph's dateTime: "2026-01-02T10:00:00.0000000", no offset."""
    return dt.replace(tzinfo=None).strftime("%Y-%m-%dT%H:%M:%S.") + "%07d" % (
        dt.microsecond * 10)


def fmt_stamp(ms):
    """Graph's lastModifiedDateTime: "2026-01-02T08:00:00.1234567Z"."""
    dt = datetime.datetime.fromtimestamp(ms / 1000.0, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03d0000Z" % (ms % 1000)


def fmt_utc(dt):
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def occurrence_id(master_id, orig_utc):
    """A stable occurrence id for (series, original start): the sim's
    encoding, opaque and URL-safe as Graph's ids are."""
    raw = ("%s|%s" % (master_id, orig_utc)).encode()
    return "AAMkOC" + base64.urlsafe_b64encode(raw).decode().rstrip("=") + "="


def parse_occurrence_id(oid):
    """(master id, original start "...Z") of an occurrence id, or None."""
    if not oid.startswith("AAMkOC") or not oid.endswith("="):
        return None
    body = oid[6:-1]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    master, sep, orig = raw.rpartition("|")
    return (master, orig) if sep and master and orig else None


def ordered(e):
    keys = [k for k in FIELD_ORDER if k in e] + sorted(k for k in e if k not in FIELD_ORDER)
    return {k: e[k] for k in keys}


def parse_prefer(headers):
    """The Prefer header's preferences: {"outlook.timezone": name,
    "odata.maxpagesize": n, ...} (names lower-cased)."""
    out = {}
    for h in headers.get_all("Prefer") or []:
        for part in h.split(","):
            k, _, v = part.strip().partition("=")
            if k:
                out[k.strip().lower()] = v.strip().strip('"')
    return out


class MailCalendar:
    def __init__(self, cid, name, default):
        self.id = cid
        self.name = name
        self.default = default
        self.events = {}  # id -> {"data", "seq", "cseq", "no", "ms"}
        self.change_key = None


class GraphState(gcal.BaseState):
    def reset(self):
        super().reset()
        opts = self.opts
        self.tokens = gcal.TokenBook()
        self.deny = False
        self.token_ttl_s = opts.token_ttl_s
        self.refresh_ttl_s = opts.refresh_ttl_s
        self.token_delay_ms = opts.token_delay_ms
        self.revoke_old = opts.revoke_old_refresh
        self.ttl_rng = random.Random("ttl:%s" % opts.seed)
        self.change_seq = 0
        self.next_no = 1
        self.last_ms = 0
        self.generation = self.rand(12)
        self.deleted = {}  # id -> {"seq", "cal", "data"} of deleted events
        self.snapshots = {}  # n -> delta state at the end of a round
        self.rounds = {}  # r -> one round's entries and next snapshot
        self.next_snap = 1
        self.gone_status = 410
        self.subs = {}  # id -> subscription (live, deleted and expired ones)
        self.rate = gcal.QuotaWindow(opts.mailbox_rate, opts.mailbox_window_s)
        self.concurrency = opts.mailbox_concurrency
        self.in_flight = 0
        self.max_in_flight = 0
        self.retry_after_s = opts.retry_after_s
        self.latency_ms = opts.latency_ms
        self.stats.update({"creates": 0, "updates": 0, "deletes": 0, "list_reads": 0,
                           "delta_reads": 0, "delta_rounds": 0, "gone_410": 0,
                           "transaction_replays": 0, "subscriptions_created": 0,
                           "validation_failures": 0, "renewals": 0, "person_changes": 0,
                           "throttled_rate": 0, "throttled_concurrency": 0})
        self.calendars = {}
        for i, name in enumerate(opts.calendars):
            cid = "AAMkAG" + self.rand(40, ID_ALPHABET) + "AAA="
            cal = MailCalendar(cid, name, i == 0)
            cal.change_key = self.rand(22) + "=="
            self.calendars[cid] = cal

    # --- ids and time ---

    def stamp(self):
        t = max(gcal.now_ms(), self.last_ms + 1)
        self.last_ms = t
        return t

    def guid(self):
        return str(uuid.UUID(int=self.id_rng.getrandbits(128), version=4))

    def new_event_id(self):
        while True:
            eid = "AAMkAD" + self.rand(64, ID_ALPHABET) + "AAA="
            if eid not in self.deleted and not any(eid in c.events
                                                   for c in self.calendars.values()):
                return eid

    def default_calendar(self):
        return next(iter(self.calendars.values()))

    def calendar(self, cid):
        if cid is None:
            return self.default_calendar()
        cal = self.calendars.get(cid)
        if cal is None:
            raise not_found()
        return cal

    def find(self, eid):
        """(calendar, rec) of a stored event (single, master, exception)."""
        for cal in self.calendars.values():
            rec = cal.events.get(eid)
            if rec is not None:
                return cal, rec
        return None, None

    # --- storing ---

    def put(self, cal, eid, data, content=True, notify=True, change=None):
        """Stores event data: a new change number, changeKey and
        lastModifiedDateTime; content=False keeps the series' content
        number (a cancelled occurrence changes the master, not the other
        occurrences)."""
        rec = cal.events.get(eid)
        self.change_seq += 1
        ms = self.stamp()
        if rec is None:
            rec = {"no": self.next_no, "cseq": self.change_seq}
            self.next_no += 1
            data["createdDateTime"] = fmt_stamp(ms)
            kind = "created"
        else:
            kind = "updated"
        data["lastModifiedDateTime"] = fmt_stamp(ms)
        data["changeKey"] = self.rand(30) + "AA=="
        rec.update(data=data, seq=self.change_seq, ms=ms)
        if content:
            rec["cseq"] = self.change_seq
        cal.events[eid] = rec
        self.deleted.pop(eid, None)
        if notify:
            self.notify(cal, change or kind, eid, data)
        return rec

    def remove(self, cal, eid, notify=True):
        rec = cal.events.pop(eid)
        self.change_seq += 1
        self.deleted[eid] = {"seq": self.change_seq, "cal": cal.id, "data": rec["data"]}
        if notify:
            self.notify(cal, "deleted", eid, rec["data"])

    # --- series ---

    def series_tz(self, master):
        name = (master.get("recurrence") or {}).get("range", {}).get("recurrenceTimeZone") \
            or master["start"].get("tz") or "UTC"
        return tz_of(name)

    def instances(self, cal, master_rec, win_start, win_end, max_n=2500):
        """The occurrences and exceptions of a series overlapping [win_start,
        win_end) (aware): a list of (id, data, start aware) in order."""
        m = master_rec["data"]
        tz = self.series_tz(m)
        allday = m.get("isAllDay")
        s0, e0 = self.bounds(m)
        dur = e0 - s0
        local0 = s0.astimezone(tz).replace(tzinfo=None) if not allday else \
            s0.replace(tzinfo=None)
        rule, first = graph_rule(m["recurrence"], local0)
        stop = (win_end.astimezone(tz) if not allday else win_end.astimezone(UTC)).replace(
            tzinfo=None)
        out = []
        cancelled = set(m.get("_cancelled") or [])
        for d in gcal.occurrences(rule, first, False, stop, max_n):
            inst = gcal.to_instant(d, tz) if not allday else d.replace(tzinfo=UTC)
            orig = fmt_utc(inst)
            if orig in cancelled:
                continue
            oid = occurrence_id(m["id"], orig)
            exc = cal.events.get(oid)
            if exc is not None:
                data = exc["data"]
                s, e = self.bounds(data)
            else:
                data = self.occurrence(m, oid, orig, inst, inst + dur)
                s, e = inst, inst + dur
            if e <= win_start or s >= win_end:
                continue
            out.append((oid, data, s))
        return out

    def occurrence(self, m, oid, orig, start, end):
        d = copy.deepcopy(m)
        for k in ("_cancelled", "transactionId"):
            d.pop(k, None)
        d["recurrence"] = None
        d["id"] = oid
        d["type"] = "occurrence"
        d["seriesMasterId"] = m["id"]
        d["originalStart"] = orig
        if m.get("isAllDay"):
            d["start"] = {"date": start.date().isoformat(), "tz": m["start"].get("tz")}
            d["end"] = {"date": end.date().isoformat(), "tz": m["end"].get("tz")}
        else:
            d["start"] = {"utc": fmt_utc(start), "tz": m["start"].get("tz")}
            d["end"] = {"utc": fmt_utc(end), "tz": m["end"].get("tz")}
        d["iCalUId"] = ical_for(m["iCalUId"], start)
        return d

    def bounds(self, data):
        out = []
        for k in ("start", "end"):
            t = data[k]
            if "date" in t:
                d = parse_date(t["date"])
                out.append(datetime.datetime(d.year, d.month, d.day, tzinfo=UTC))
            else:
                out.append(parse_instant(t["utc"]))
        return out[0], out[1]

    def resolve(self, eid):
        """(calendar, rec or None, data) of an event id: a stored event, or
        an occurrence no exception holds yet (rec None). Raises 404."""
        cal, rec = self.find(eid)
        if rec is not None:
            return cal, rec, rec["data"]
        occ = parse_occurrence_id(eid)
        if occ:
            mcal, mrec = self.find(occ[0])
            if mrec is not None and mrec["data"].get("recurrence") \
                    and occ[1] not in (mrec["data"].get("_cancelled") or []):
                start = parse_instant(occ[1])
                for oid, data, _ in self.instances(mcal, mrec, start - datetime.timedelta(
                        days=1), start + datetime.timedelta(days=1)):
                    if oid == eid:
                        return mcal, None, data
        raise not_found()

    # --- the delta view ---

    def view(self, cal, win):
        """{id: version} of what a calendarView of win shows now: single
        instances, occurrences and exceptions (never series masters)."""
        out = {}
        for rec in cal.events.values():
            d = rec["data"]
            if d["type"] == "seriesMaster":
                for oid, data, _ in self.instances(cal, rec, win[0], win[1]):
                    if oid not in cal.events:
                        out[oid] = rec["cseq"]
            elif d["type"] == "exception" or d["type"] == "singleInstance":
                s, e = self.bounds(d)
                if s < win[1] and e > win[0]:
                    out[d["id"]] = rec["seq"]
        return out

    # --- notifications ---

    def sub_live(self, sub):
        return not sub["deleted"] and gcal.now_ms() < sub["exp_ms"]

    def sub_covers(self, sub, cal):
        return sub["cal"] is None and cal.default or sub["cal"] == cal.id

    def notify(self, cal, change, eid, data):
        for sub in list(self.subs.values()):
            if not self.sub_live(sub) or change not in sub["changeType"].split(","):
                continue
            if not self.sub_covers(sub, cal):
                continue
            n = {"id": None, "subscriptionId": sub["id"],
                 "subscriptionExpirationDateTime": sub["expirationDateTime"],
                 "changeType": change,
                 "resource": "Users/%s/Events/%s" % (self.opts.user_id, eid),
                 "resourceData": {"@odata.type": "#Microsoft.Graph.Event",
                                  "@odata.id": "Users/%s/Events/%s" % (self.opts.user_id, eid),
                                  "@odata.etag": 'W/"%s"' % data.get("changeKey", ""),
                                  "id": eid},
                 "clientState": sub.get("clientState"),
                 "tenantId": self.opts.tenant_id}
            n["id"] = self.rand(22)
            if n["clientState"] is None:
                del n["clientState"]
            self.enqueue_sub(sub, {"value": [n]}, change, sub["notificationUrl"])

    def enqueue_sub(self, sub, payload, what, url):
        def check(sub=sub):
            with self.lock:
                if sub["deleted"]:
                    return "deleted"
                if gcal.now_ms() >= sub["exp_ms"]:
                    return "expired"
            return None
        sub["sent"] += 1
        body = json.dumps(payload).encode()
        self.notifier.enqueue({"url": url, "body": body, "what": what, "target": sub["id"],
                               "headers": {"Content-Type": "application/json; charset=utf-8"},
                               "check": check})


def ical_for(master_uid, start):
    """An occurrence's iCalUId: the series' with the instance's date in the
    Global Object Id's date bytes, as Exchange forms it (so each occurrence
    has its own)."""
    return master_uid[:32] + "%04X%02X%02X" % (start.year, start.month, start.day) \
        + master_uid[40:]


def graph_rule(rec, local_start):
    """(gcal.Rule, first local date-time) of a Graph recurrence {pattern,
    range} whose events start at local_start's time of day. Raises
    ValueError for a pattern the sim does not know."""
    if not isinstance(rec, dict):
        raise ValueError("recurrence must be an object")
    p, r = rec.get("pattern") or {}, rec.get("range") or {}
    ptype = p.get("type")
    if ptype not in PATTERNS:
        raise ValueError("unknown pattern type %r" % ptype)
    interval = p.get("interval", 1)
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
        raise ValueError("interval must be >= 1")
    days = p.get("daysOfWeek") or []
    if any(d not in DAYS for d in days):
        raise ValueError("bad daysOfWeek")
    wds = [DAYS.index(d) for d in days]
    index = INDEX.get(p.get("index") or "first")
    if index is None:
        raise ValueError("bad index")
    freq = {"daily": "DAILY", "weekly": "WEEKLY"}.get(ptype) or (
        "MONTHLY" if "Monthly" in ptype else "YEARLY")
    rule = gcal.Rule(freq, interval)
    if ptype == "weekly":
        if not wds:
            raise ValueError("weekly needs daysOfWeek")
        rule.byday = [(0, w) for w in wds]
    elif ptype in ("absoluteMonthly", "absoluteYearly"):
        dom = p.get("dayOfMonth")
        if not isinstance(dom, int) or not 1 <= dom <= 31:
            raise ValueError("dayOfMonth must be 1..31")
        rule.bymonthday = [dom]
    elif ptype in ("relativeMonthly", "relativeYearly"):
        if not wds:
            raise ValueError("%s needs daysOfWeek" % ptype)
        rule.byday = [(index, w) for w in wds]
    if ptype.endswith("Yearly"):
        month = p.get("month")
        if not isinstance(month, int) or not 1 <= month <= 12:
            raise ValueError("month must be 1..12")
        rule.bymonth = [month]
    rtype = r.get("type")
    if rtype not in ("endDate", "noEnd", "numbered"):
        raise ValueError("unknown range type %r" % rtype)
    sd = parse_date(r.get("startDate"))
    if sd is None:
        raise ValueError("range.startDate is required")
    first = datetime.datetime.combine(sd, local_start.time())
    if rtype == "endDate":
        ed = parse_date(r.get("endDate"))
        if ed is None or ed < sd:
            raise ValueError("range.endDate must be a date on or after startDate")
        rule.until = datetime.datetime.combine(ed, datetime.time(23, 59, 59))
    elif rtype == "numbered":
        n = r.get("numberOfOccurrences")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError("numberOfOccurrences must be >= 1")
        rule.count = n
    return rule, first


class GraphHandler(gcal.BaseHandler):
    sim_name = "graph-sim"

    def version_string(self):
        return "Microsoft-IIS/10.0"

    def encode(self, obj):
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()

    def base_url(self):
        return "http://127.0.0.1:%d" % self.server.opts.port

    def fault_body(self, status, fault, split):
        if "/oauth2/" in split.path:
            return self.aad_error_body(status, "temporarily_unavailable" if status >= 500
                                       else "invalid_request", 90000 + status,
                                       "Injected %d." % status)
        if status == 429:
            return merr(429, "TooManyRequests", "Too many requests").body
        if status == 401:
            return merr(401, "InvalidAuthenticationToken", "Access token validation "
                        "failure.").body
        if status == 404:
            return not_found().body
        if status == 410:
            return self.gone_body()
        if status == 503:
            return merr(503, "serviceNotAvailable", "The service is temporarily unavailable."
                        ).body
        if status == 504:
            return merr(504, "UnknownError", "").body
        if status >= 500:
            return merr(status, "generalException", "General exception while processing."
                        ).body
        return merr(status, "BadRequest", "Injected %d." % status).body

    def gone_body(self):
        return merr(410, "syncStateNotFound", "The sync state could not be found. The delta "
                    "token is no longer valid; restart with a full synchronization.").body

    # --- answers ---

    def headers_for(self, extra=None):
        rid = self.request_id
        h = {"Content-Type": JSON_TYPE, "request-id": rid,
             "client-request-id": self.headers.get("client-request-id") or rid,
             "x-ms-ags-diagnostic": json.dumps({"ServerInfo": {
                 "DataCenter": "West Europe", "Slice": "E", "Ring": "5",
                 "ScaleUnit": "001", "RoleInstance": "AM1PEPF00000000"}}),
             "OData-Version": "4.0", "Cache-Control": "private"}
        h.update(extra or {})
        return h

    def handle_api(self, method, split, raw, entry):
        st = self.server.state
        self.request_id = str(uuid.uuid4())
        with st.lock:
            entry["request_id"] = self.request_id
        path = split.path
        q = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        m = re.match(r"^/([^/]+)/oauth2/v2\.0/(authorize|token)$", path)
        if m:
            if m.group(2) == "authorize" and method == "GET":
                return self.oauth_authorize(m.group(1), q)
            if m.group(2) == "token" and method == "POST":
                return self.oauth_token(m.group(1), raw)
            raise merr(405, "MethodNotAllowed", "Method not allowed.")
        if not path.startswith("/v1.0/"):
            raise merr(400, "BadRequest", "Invalid version: %s" % path.split("/")[1:2])
        try:
            status, obj, headers, applied = self.graph(method, split, raw, q)
        except ApiError as e:
            e.headers = self.headers_for(e.headers)
            if isinstance(e.body, dict) and isinstance(e.body.get("error"), dict):
                inner = e.body["error"].get("innerError")
                if inner:
                    inner["request-id"] = inner["client-request-id"] = self.request_id
            raise
        return status, obj, self.headers_for(headers), applied

    def graph(self, method, split, raw, q):
        """One authenticated /v1.0 request, counted against the mailbox's
        rate and concurrency limits."""
        st = self.server.state
        tok = gcal.bearer(self.headers)
        with st.lock:
            why = st.tokens.check_access(tok)
            info = st.tokens.access.get(tok) or {}
            if why:
                st.stats["unauthorized"] += 1
                st.tokens.stats["rejected_tokens"] += 1
        if why:
            msg = {"missing": "Access token is empty.",
                   "expired": "Lifetime validation failed, the token is expired.",
                   "revoked": "Access token has been revoked.",
                   "unknown": "Access token validation failure. Invalid audience."}[why]
            if why == "unknown" and tok and tok.count(".") != 2:
                msg = "IDX14100: JWT is not well formed, there are no dots (.)."
            raise merr(401, "InvalidAuthenticationToken", msg, {
                "WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.'
                'microsoftonline.com/common/oauth2/authorize", client_id="%s"' % GRAPH_APP_ID})
        with st.lock:
            ok, wait = st.rate.admit()
            busy = st.concurrency and st.in_flight >= st.concurrency
            if not ok:
                st.stats["throttled_rate"] += 1
                st.stats["throttled"] += 1
            elif busy:
                st.stats["throttled_concurrency"] += 1
                st.stats["throttled"] += 1
            else:
                st.in_flight += 1
                st.max_in_flight = max(st.max_in_flight, st.in_flight)
            retry_after = st.retry_after_s
            latency = st.latency_ms
        if not ok:
            ra = retry_after if retry_after is not None else max(1, math.ceil(wait))
            raise merr(429, "TooManyRequests", "Too many requests",
                       {"Retry-After": str(int(ra))})
        if busy:
            raise merr(429, "ApplicationThrottled", "Application is over its "
                       "MailboxConcurrency limit.",
                       {"Retry-After": str(int(retry_after if retry_after is not None
                                               else 1))})
        try:
            if latency:
                time.sleep(latency / 1000.0)
            return self.route(method, split, raw, q, info)
        finally:
            with st.lock:
                st.in_flight -= 1

    def route(self, method, split, raw, q, token):
        st = self.server.state
        opts = self.server.opts
        segs = []
        for p in split.path.split("/")[2:]:
            if not p:
                continue
            p = urllib.parse.unquote(p)
            m = re.match(r"^(\w+)\('([^']*)'\)$", p)  # calendars('id') -> calendars, id
            if m:
                segs += [m.group(1), m.group(2)]
            else:
                segs.append("delta" if p == "microsoft.graph.delta" else p)
        body = None
        if method in ("POST", "PATCH", "PUT") and raw:
            try:
                body = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as e:
                raise merr(400, "BadRequest", "Unable to read JSON request payload. Please "
                           "ensure Content-Type header is set and payload is of valid JSON "
                           "format. (%s)" % e)
        if segs[:1] == ["subscriptions"]:
            return self.subscriptions(method, segs[1:], body, token)
        if segs[:1] == ["me"]:
            if token.get("app"):
                raise merr(400, "BadRequest", "/me request is only valid with delegated "
                           "authentication flow.")
            rest = segs[1:]
        elif segs[:1] == ["users"] and len(segs) >= 2:
            who = segs[1].lower()
            if who not in (opts.user_id.lower(), opts.user_email.lower()):
                if token.get("app"):
                    raise merr(404, "ErrorInvalidUser", "The requested user '%s' is invalid."
                               % segs[1])
                raise merr(403, "ErrorAccessDenied", "Access is denied. Check credentials "
                           "and try again.")
            rest = segs[2:]
        else:
            raise merr(400, "BadRequest", "Resource not found for the segment '%s'."
                       % (segs[0] if segs else ""))
        if not rest and method == "GET":
            return 200, self.user_resource(), None, False
        cal = None
        with st.lock:
            if rest[:1] == ["calendar"]:
                cal, rest = st.default_calendar(), rest[1:]
                if not rest and method == "GET":
                    return 200, self.calendar_resource(cal, True), None, False
            elif rest[:1] == ["calendars"]:
                if len(rest) == 1 and method == "GET":
                    return 200, {"@odata.context": self.base_url() + "/v1.0/$metadata#"
                                 "users('%s')/calendars" % opts.user_id,
                                 "value": [self.calendar_resource(c)
                                           for c in st.calendars.values()]}, None, False
                if len(rest) < 2:
                    raise merr(405, "ErrorInvalidRequest", "Method not allowed.")
                cal, rest = st.calendar(rest[1]), rest[2:]
                if not rest and method == "GET":
                    return 200, self.calendar_resource(cal, True), None, False
        prefer = parse_prefer(self.headers)
        if rest == ["events"]:
            if method == "GET":
                with st.lock:
                    st.stats["list_reads"] += 1
                    return 200, self.list_events(cal, q, prefer, split), \
                        self.tz_applied(prefer), False
            if method == "POST":
                return self.create(cal or st.default_calendar(), body, prefer)
        if rest[:1] == ["events"] and len(rest) >= 2:
            return self.event_item(cal, rest[1], rest[2:], method, body, q, prefer, split)
        if rest == ["calendarView"] and method == "GET":
            with st.lock:
                st.stats["list_reads"] += 1
                return 200, self.calendar_view(cal or st.default_calendar(), q, prefer,
                                               split), self.tz_applied(prefer), False
        if rest == ["calendarView", "delta"] and method == "GET":
            return self.delta(cal, q, prefer, split)
        raise merr(400, "BadRequest", "Resource not found for the segment '%s'."
                   % (rest[0] if rest else ""))

    def tz_applied(self, prefer):
        h = {}
        if "outlook.timezone" in prefer:
            h["Preference-Applied"] = 'outlook.timezone="%s"' % prefer["outlook.timezone"]
        return h

    def out_tz(self, prefer):
        """(zone name to write, tzinfo) from Prefer: outlook.timezone; UTC
        when absent (§4.2). An unknown zone name answers 400."""
        name = prefer.get("outlook.timezone") or "UTC"
        try:
            return name, tz_of(name)
        except ValueError:
            raise merr(400, "TimeZoneNotSupportedException", "A valid TimeZone value must be "
                       "specified. The following TimeZone value is not supported: '%s'."
                       % name)

    # --- users and calendars ---

    def user_resource(self):
        o = self.server.opts
        return {"@odata.context": self.base_url() + "/v1.0/$metadata#users/$entity",
                "businessPhones": [], "displayName": o.user_name, "givenName": None,
                "jobTitle": None, "mail": o.user_email, "mobilePhone": None,
                "officeLocation": None, "preferredLanguage": "en-US", "surname": None,
                "userPrincipalName": o.user_email, "id": o.user_id}

    def calendar_resource(self, cal, context=False):
        o = self.server.opts
        c = {"id": cal.id, "name": cal.name, "color": "auto", "hexColor": "",
             "isDefaultCalendar": cal.default, "changeKey": cal.change_key, "canShare": True,
             "canViewPrivateItems": True, "canEdit": True,
             "allowedOnlineMeetingProviders": ["teamsForBusiness"],
             "defaultOnlineMeetingProvider": "teamsForBusiness", "isTallyingResponses": True,
             "isRemovable": not cal.default,
             "owner": {"name": o.user_name, "address": o.user_email}}
        if context:
            c = dict({"@odata.context": self.base_url() + "/v1.0/$metadata#users('%s')/"
                      "calendars/$entity" % o.user_id}, **c)
        return c

    # --- events: shapes ---

    def render(self, data, tzname="UTC", tz=UTC, select=None):
        """An event as Graph answers it, times in the Prefer zone."""
        e = {k: copy.deepcopy(v) for k, v in data.items() if not k.startswith("_")}
        for k in ("start", "end"):
            t = data[k]
            if "date" in t:
                e[k] = {"dateTime": t["date"] + "T00:00:00.0000000", "timeZone": tzname}
            else:
                e[k] = {"dateTime": fmt_local(parse_instant(t["utc"]).astimezone(tz)),
                        "timeZone": tzname}
        e["@odata.etag"] = 'W/"%s"' % data.get("changeKey", "")
        if data["type"] == "seriesMaster":
            e["cancelledOccurrences"] = ["OID.%s.%s" % (data["id"], o[:10])
                                         for o in data.get("_cancelled") or []]
        e["bodyPreview"] = re.sub(r"\s+", " ", re.sub(r"<[^>]*>", " ", (data.get("body") or {})
                                                      .get("content") or "")).strip()[:255]
        e["webLink"] = "https://outlook.office365.com/owa/?itemid=%s&exvsurl=1&path=" \
            "/calendar/item" % urllib.parse.quote(data["id"], safe="")
        if select:
            e = {k: v for k, v in e.items() if k in select or k in ("id", "@odata.etag")}
        return ordered(e)

    def norm_time(self, t, which, allday):
        """A start/end from a request as stored: {"utc": "...Z", "tz"} or,
        all-day, {"date", "tz"}."""
        if not isinstance(t, dict) or not t.get("dateTime"):
            raise bad_request("Your request can't be completed. The %s time is missing or "
                              "invalid." % which)
        name = t.get("timeZone") or "UTC"
        try:
            tz = tz_of(name)
        except ValueError:
            raise merr(400, "TimeZoneNotSupportedException", "A valid TimeZone value must be "
                       "specified. The following TimeZone value is not supported: '%s'."
                       % name)
        local = parse_local(t["dateTime"])
        if local is None:
            inst = parse_instant(t["dateTime"])
            if inst is None:
                raise bad_request("Cannot convert the literal '%s' to the expected type "
                                  "'Edm.DateTime'." % t["dateTime"], "BadRequest")
            local = inst.astimezone(tz).replace(tzinfo=None)
        if allday:
            if local.time() != datetime.time(0):
                # The sim's wording of Graph's refusal.
                raise bad_request("Your request can't be completed. If isAllDay is true, "
                                  "the start and end times must be at midnight.")
            return {"date": local.date().isoformat(), "tz": name}
        return {"utc": fmt_utc(gcal.to_instant(local, tz)), "tz": name}

    def norm_attendees(self, atts):
        if not isinstance(atts, list):
            raise bad_request("attendees must be a collection.", "BadRequest")
        out = []
        for a in atts:
            ea = (a or {}).get("emailAddress") or {}
            if not isinstance(a, dict) or not ea.get("address"):
                raise bad_request("Your request can't be completed. An attendee is missing "
                                  "an email address.")
            typ = a.get("type") or "required"
            if typ not in ("required", "optional", "resource"):
                raise bad_request("Invalid attendee type '%s'." % typ, "BadRequest")
            status = a.get("status") or {"response": "none", "time": NEVER}
            if status.get("response") not in RESPONSES:
                raise bad_request("Invalid response '%s'." % status.get("response"),
                                  "BadRequest")
            out.append({"type": typ, "status": {"response": status["response"],
                                                "time": status.get("time") or NEVER},
                        "emailAddress": {"name": ea.get("name") or ea["address"],
                                         "address": ea["address"]}})
        return out

    def norm_location(self, loc):
        if loc is None:
            loc = {}
        if not isinstance(loc, dict):
            raise bad_request("location must be an object.", "BadRequest")
        name = loc.get("displayName") or ""
        out = {"displayName": name, "locationType": loc.get("locationType") or "default",
               "uniqueIdType": "private" if name else "unknown"}
        if name:
            out["uniqueId"] = loc.get("uniqueId") or name
        out["address"] = loc.get("address") or {}
        out["coordinates"] = loc.get("coordinates") or {}
        return out

    def build(self, eid, body, cur=None, kind="singleInstance", master=None):
        """The stored event that body (a POST, or a PATCH of cur) makes.
        Raises the 400 Graph answers; changes nothing."""
        st = self.server.state
        opts = self.server.opts
        if not isinstance(body, dict):
            raise merr(400, "BadRequest", "Empty Payload. JSON content expected.")
        for k in body:
            if not k.startswith("@") and k not in EVENT_PROPS:
                raise merr(400, "RequestBodyRead", "The property '%s' does not exist on type "
                           "'microsoft.graph.event'. Make sure to only use property names "
                           "that are defined by the type or mark the type as open type." % k)
        given = {k: copy.deepcopy(body[k]) for k in WRITABLE if k in body}
        if cur is not None:
            given.pop("transactionId", None)  # set on create only
            new = copy.deepcopy(cur)
        else:
            new = {"id": eid, "categories": [], "transactionId": None,
                   "reminderMinutesBeforeStart": 15, "isReminderOn": True,
                   "hasAttachments": False, "subject": "", "importance": "normal",
                   "sensitivity": "normal", "isAllDay": False, "isCancelled": False,
                   "isOrganizer": True, "responseRequested": True, "seriesMasterId": None,
                   "showAs": "busy", "type": kind, "onlineMeetingUrl": None,
                   "isOnlineMeeting": False, "onlineMeetingProvider": "unknown",
                   "allowNewTimeProposals": True, "isDraft": False, "hideAttendees": False,
                   "responseStatus": {"response": "organizer", "time": NEVER},
                   "body": {"contentType": "html", "content": ""},
                   "location": self.norm_location(None), "locations": [], "recurrence": None,
                   "attendees": [], "onlineMeeting": None,
                   "organizer": {"emailAddress": {"name": opts.user_name,
                                                  "address": opts.user_email}},
                   "iCalUId": "040000008200E00074C5B7101A82E008" + "00000000" +
                   st.rand(72, "0123456789ABCDEF")}
        times = {k: given.pop(k) for k in ("start", "end") if k in given}
        for k, v in given.items():
            if k in ENUMS and v not in ENUMS[k]:
                raise merr(400, "BadRequest", "Requested value '%s' was not found." % v)
            if k == "attendees":
                v = self.norm_attendees(v)
            elif k == "location":
                v = self.norm_location(v)
            elif k == "body":
                if not isinstance(v, dict):
                    raise bad_request("body must be an object.", "BadRequest")
                ct = (v.get("contentType") or "text").lower()
                if ct not in ("text", "html"):
                    raise merr(400, "BadRequest", "Requested value '%s' was not found." % ct)
                v = {"contentType": ct, "content": v.get("content") or ""}
            elif k == "subject" and v is None:
                v = ""
            new[k] = v
        if master is not None:
            new["recurrence"] = None  # an occurrence or exception has none of its own
        allday = bool(new.get("isAllDay"))
        for k in ("start", "end"):
            if k in times:
                new[k] = self.norm_time(times[k], k, allday)
            elif cur is None:
                raise bad_request("Your request can't be completed. The %s time is missing."
                                  % k)
            elif allday != ("date" in new[k]):
                new[k] = self.norm_time(self.render(cur)[k], k, allday)
        s, e = st.bounds(new)
        if e < s:
            raise bad_request("Your request can't be completed. The end time must be after "
                              "the start time.")
        if allday and e <= s:
            raise bad_request("Your request can't be completed. An all-day event must last "
                              "at least one day.")
        new["originalStartTimeZone"] = windows_name(new["start"]["tz"])
        new["originalEndTimeZone"] = windows_name(new["end"]["tz"])
        if master is None and new.get("recurrence") is not None:
            try:
                rec = new["recurrence"]
                if not isinstance(rec, dict) or not isinstance(rec.get("range"), dict):
                    raise ValueError("recurrence needs a pattern and a range")
                local = s.astimezone(st.series_tz(new))
                graph_rule(rec, local.replace(tzinfo=None))
            except ValueError as ex:
                raise bad_request("Your request can't be completed. The recurrence is "
                                  "invalid: %s." % ex)
            r = copy.deepcopy(new["recurrence"])
            p = r.setdefault("pattern", {})
            p.setdefault("interval", 1)
            p.setdefault("month", 0)
            p.setdefault("dayOfMonth", 0)
            p.setdefault("daysOfWeek", [])
            p.setdefault("firstDayOfWeek", "sunday")
            p.setdefault("index", "first")
            rg = r.setdefault("range", {})
            rg.setdefault("endDate", "0001-01-01")
            rg.setdefault("recurrenceTimeZone", new["originalStartTimeZone"])
            rg.setdefault("numberOfOccurrences", 0)
            new["recurrence"] = r
            new["type"] = "seriesMaster"
        elif master is None and cur is not None and cur.get("type") == "seriesMaster" \
                and new.get("recurrence") is None:
            new["type"] = "singleInstance"  # the series became a single event
            new.pop("_cancelled", None)
        return new

    # --- events: requests ---

    def create(self, cal, body, prefer):
        st = self.server.state
        tzname, tz = self.out_tz(prefer)
        with st.lock:
            tid = body.get("transactionId") if isinstance(body, dict) else None
            if tid:
                for c in st.calendars.values():
                    for rec in c.events.values():
                        if rec["data"].get("transactionId") == tid:
                            # A retried create: the event the first one made,
                            # not a second one. (Graph documents the intent,
                            # not the answer; 201 with the event is the sim's
                            # reading.)
                            st.stats["transaction_replays"] += 1
                            return 201, self.entity(rec["data"], tzname, tz), \
                                self.location(rec["data"]), False
            eid = st.new_event_id()
            data = self.build(eid, body)
            st.put(cal, eid, data)
            st.stats["creates"] += 1
            return 201, self.entity(data, tzname, tz), self.location(data), True

    def location(self, data):
        h = {"Location": "%s/v1.0/users('%s')/events('%s')" % (
            self.base_url(), self.server.opts.user_id, data["id"])}
        h.update(self.tz_applied(parse_prefer(self.headers)))
        return h

    def entity(self, data, tzname, tz, select=None):
        e = self.render(data, tzname, tz, select)
        return dict({"@odata.context": self.base_url() + "/v1.0/$metadata#users('%s')/"
                     "events/$entity" % self.server.opts.user_id}, **e)

    def check_if_match(self, data):
        want = self.headers.get("If-Match")
        if want and want != "*" and want != 'W/"%s"' % data.get("changeKey"):
            raise merr(412, "ErrorIrresolvableConflict", "The send or update operation could "
                       "not be performed because the change key passed in the request does "
                       "not match the current change key for the item.")

    def event_item(self, cal, eid, tail, method, body, q, prefer, split):
        st = self.server.state
        tzname, tz = self.out_tz(prefer)
        with st.lock:
            ecal, rec, data = st.resolve(eid)
            if cal is not None and ecal is not cal:
                raise not_found()
            if tail == ["instances"] and method == "GET":
                return 200, self.list_instances(ecal, rec, q, prefer, split), \
                    self.tz_applied(prefer), False
            if tail == ["cancel"] and method == "POST":
                # The organizer cancels: the attendees are told, the event
                # leaves the organizer's calendar.
                self.delete(ecal, rec, data)
                st.stats["deletes"] += 1
                return 202, None, None, True
            if tail:
                raise merr(400, "BadRequest", "Resource not found for the segment '%s'."
                           % tail[0])
            if method == "GET":
                sel = q.get("$select", [None])[-1]
                sel = set(sel.split(",")) if sel else None
                return 200, self.entity(data, tzname, tz, sel), self.tz_applied(prefer), False
            self.check_if_match(data)
            if method == "DELETE":
                self.delete(ecal, rec, data)
                st.stats["deletes"] += 1
                return 204, None, None, True
            if method != "PATCH":
                raise merr(405, "ErrorInvalidRequest", "The OData request is not supported.")
            master = None
            if data["type"] in ("occurrence", "exception"):
                _, mrec = st.find(data["seriesMasterId"])
                master = mrec["data"] if mrec else None
            new = self.build(data["id"], body, data, data["type"], master)
            if data["type"] == "occurrence":
                new["type"] = "exception"
            content = new.get("start") != data.get("start") or new.get("end") != data.get(
                "end") or any(new.get(k) != data.get(k) for k in WRITABLE)
            st.put(ecal, data["id"], new, content=content, change="updated")
            st.stats["updates"] += 1
            return 200, self.entity(new, tzname, tz), self.tz_applied(prefer), True

    def delete(self, cal, rec, data, notify=True):
        """Deletes an event: a series with its exceptions; an occurrence or
        an exception leaves its series (cancelledOccurrences)."""
        st = self.server.state
        if data["type"] in ("occurrence", "exception"):
            _, mrec = st.find(data["seriesMasterId"])
            if rec is not None:
                st.remove(cal, data["id"], notify=False)
            if mrec is not None:
                m = copy.deepcopy(mrec["data"])
                m["_cancelled"] = sorted(set(m.get("_cancelled") or []) | {
                    data["originalStart"]})
                st.put(cal, m["id"], m, content=False, notify=False)
            if notify:
                st.notify(cal, "deleted", data["id"], data)
            return
        if data["type"] == "seriesMaster":
            for r in list(cal.events.values()):
                if r["data"].get("seriesMasterId") == data["id"]:
                    st.remove(cal, r["data"]["id"], notify=False)
        st.remove(cal, data["id"], notify)

    def page_size(self, prefer, q, default):
        n = default
        if "odata.maxpagesize" in prefer:
            try:
                n = int(prefer["odata.maxpagesize"])
            except ValueError:
                raise merr(400, "BadRequest", "Invalid Prefer odata.maxpagesize.")
        if "$top" in q:
            try:
                n = int(q["$top"][-1])
            except ValueError:
                raise merr(400, "BadRequest", "Invalid $top value.")
        if n < 1:
            raise merr(400, "BadRequest", "Invalid page size %d." % n)
        return min(n, MAX_TOP)

    def window(self, q):
        """(start, end) aware from startDateTime/endDateTime (naive means
        UTC); 400 when one is missing, as Graph answers."""
        vals = {}
        for name in ("startDateTime", "endDateTime"):
            v = None
            for k, vs in q.items():
                if k.lower() == name.lower():
                    v = vs[-1]
            if not v:
                raise merr(400, "ErrorInvalidParameter", "This request requires a time window "
                           "specified by the query string parameters StartDateTime and "
                           "EndDateTime.")
            dt = parse_instant(v)
            if dt is None:
                local = parse_local(v)
                if local is None:
                    raise merr(400, "ErrorInvalidParameter", "The value '%s' of parameter '%s'"
                               " is invalid." % (v, name))
                dt = local.replace(tzinfo=UTC)
            vals[name] = dt
        return vals["startDateTime"], vals["endDateTime"]

    def next_link(self, split, q, **params):
        keep = [(k, v[-1]) for k, v in q.items() if k not in params]
        keep += [(k, str(v)) for k, v in params.items()]
        return self.base_url() + split.path + "?" + urllib.parse.urlencode(keep, safe="$:'")

    def list_events(self, cal, q, prefer, split):
        """GET .../events: single instances and series masters, by creation
        (or $orderby), $top/$skip with @odata.nextLink, a $filter subset
        (eq/ne/ge/gt/le/lt on top-level properties joined by "and")."""
        st = self.server.state
        tzname, tz = self.out_tz(prefer)
        # /me/events reads the default calendar (the sim's reading).
        cal = cal or st.default_calendar()
        items = [rec for rec in cal.events.values()
                 if rec["data"]["type"] in ("singleInstance", "seriesMaster")]
        items.sort(key=lambda r: r["no"])
        flt = q.get("$filter", [None])[-1]
        if flt:
            pred = parse_filter(flt)
            items = [r for r in items if pred(self.render(r["data"]))]
        order = q.get("$orderby", [None])[-1]
        if order:
            field, _, direction = order.strip().partition(" ")
            if field not in ("createdDateTime", "lastModifiedDateTime", "start/dateTime",
                             "subject"):
                raise merr(400, "BadRequest", "The $orderby field '%s' is not supported."
                           % field)

            def key(r):
                if field == "start/dateTime":
                    return st.bounds(r["data"])[0].isoformat()
                return r["data"].get(field) or ""
            items.sort(key=key, reverse=direction.strip().lower() == "desc")
        top = self.page_size({}, q, 10)
        skip = int(q.get("$skip", ["0"])[-1] or 0)
        sel = q.get("$select", [None])[-1]
        sel = set(sel.split(",")) if sel else None
        page = items[skip:skip + top]
        out = {"@odata.context": self.base_url() + "/v1.0/$metadata#users('%s')/events"
               % self.server.opts.user_id,
               "value": [self.render(r["data"], tzname, tz, sel) for r in page]}
        if skip + top < len(items):
            out["@odata.nextLink"] = self.next_link(split, q, **{"$skip": skip + top})
        return out

    def calendar_view(self, cal, q, prefer, split):
        """GET .../calendarView: what happens in the window, series
        expanded (occurrences, exceptions, single instances), by start."""
        tzname, tz = self.out_tz(prefer)
        win = self.window(q)
        rows = self.view_rows(cal, win)
        top = self.page_size({}, q, 10)
        skip = int(q.get("$skip", ["0"])[-1] or 0)
        page = rows[skip:skip + top]
        out = {"@odata.context": self.base_url() + "/v1.0/$metadata#users('%s')/calendarView"
               % self.server.opts.user_id,
               "value": [self.render(d, tzname, tz) for _, d in page]}
        if skip + top < len(rows):
            out["@odata.nextLink"] = self.next_link(split, q, **{"$skip": skip + top})
        return out

    def view_rows(self, cal, win):
        st = self.server.state
        rows = []
        for rec in cal.events.values():
            d = rec["data"]
            if d["type"] == "seriesMaster":
                for oid, data, s in st.instances(cal, rec, win[0], win[1]):
                    if oid not in cal.events:
                        rows.append((s, data))
            else:
                s, e = st.bounds(d)
                if s < win[1] and e > win[0]:
                    rows.append((s, d))
        rows.sort(key=lambda x: (x[0], x[1]["id"]))
        return rows

    def list_instances(self, cal, rec, q, prefer, split):
        st = self.server.state
        if rec is None or rec["data"]["type"] != "seriesMaster":
            raise merr(400, "ErrorInvalidRequest", "The event is not a series master.")
        tzname, tz = self.out_tz(prefer)
        win = self.window(q)
        rows = st.instances(cal, rec, win[0], win[1])
        top = self.page_size({}, q, 10)
        skip = int(q.get("$skip", ["0"])[-1] or 0)
        out = {"@odata.context": self.base_url() + "/v1.0/$metadata#Collection(event)",
               "value": [self.render(d, tzname, tz) for _, d, _ in rows[skip:skip + top]]}
        if skip + top < len(rows):
            out["@odata.nextLink"] = self.next_link(split, q, **{"$skip": skip + top})
        return out

    # --- delta ---

    def delta(self, cal, q, prefer, split):
        """GET .../calendarView/delta: rounds of pages. The first request of
        a round fixes its entries (everything in the window, or what
        changed since the delta token's round); $skiptoken pages walk
        them; the last page carries @odata.deltaLink."""
        st = self.server.state
        opts = self.server.opts
        tzname, tz = self.out_tz(prefer)
        for k in ("$select", "$expand", "$filter", "$orderby", "$search"):
            if k in q:
                raise merr(400, "BadRequest", "The query parameter '%s' is not supported with "
                           "delta on calendarView." % k)
        skip = q.get("$skiptoken", [None])[-1]
        dtok = q.get("$deltatoken", [None])[-1]
        size = self.page_size(prefer, {}, opts.delta_page_size)
        with st.lock:
            st.stats["delta_reads"] += 1
            if skip:
                tok = self.decode(skip)
                if tok.get("g") != st.generation or tok.get("r") not in st.rounds:
                    return self.gone(tok, split)
                rnd = st.rounds[tok["r"]]
                off = tok.get("o", 0)
            else:
                cal = cal or st.default_calendar()
                if dtok:
                    tok = self.decode(dtok)
                    snap = st.snapshots.get(tok.get("n"))
                    if tok.get("g") != st.generation or snap is None:
                        return self.gone(tok, split)
                    cal = st.calendar(snap["cal"])
                    win = snap["win"]
                else:
                    win = self.window(q)
                    snap = None
                rnd = self.new_round(cal, win, snap)
                off = 0
            cal = st.calendar(rnd["cal"])
            entries = rnd["entries"][off:off + size]
            value = []
            for eid, removed in entries:
                data = None
                if not removed:
                    try:
                        _, _, data = st.resolve(eid)
                    except ApiError:
                        data = None
                if data is None:
                    value.append({"@odata.type": "#microsoft.graph.event", "id": eid,
                                  "@removed": {"reason": "deleted"}})
                else:
                    value.append(dict({"@odata.type": "#microsoft.graph.event"},
                                      **self.render(data, tzname, tz)))
            out = {"@odata.context": self.base_url() + "/v1.0/$metadata#Collection(event)"}
            base = self.base_url() + split.path + "?"
            if off + size < len(rnd["entries"]):
                out["@odata.nextLink"] = base + "$skiptoken=" + target.encode_token(
                    {"r": rnd["id"], "o": off + size, "g": st.generation})
            else:
                out["@odata.deltaLink"] = base + "$deltatoken=" + target.encode_token(
                    {"n": rnd["snap"], "g": st.generation})
            out["value"] = value
            headers = self.tz_applied(prefer)
            if "odata.maxpagesize" in prefer:
                headers["Preference-Applied"] = ", ".join(filter(None, [
                    headers.get("Preference-Applied"), "odata.maxpagesize=%d" % size]))
            return 200, out, headers, False

    def new_round(self, cal, win, snap):
        st = self.server.state
        now = st.view(cal, win)
        if snap is None:
            starts = {}
            for s, d in self.view_rows(cal, win):
                starts[d["id"]] = s
            entries = [(eid, False) for eid in sorted(now, key=lambda i: (starts.get(i), i))]
        else:
            prev = snap["view"]
            entries = [(eid, False) for eid, v in now.items() if prev.get(eid) != v]
            entries += [(eid, True) for eid in prev if eid not in now]
            # Events outside the window that changed since: also @removed
            # (event-delta.md).
            seen = set(now) | set(prev)
            for rec in cal.events.values():
                d = rec["data"]
                if rec["seq"] > snap["seq"] and d["id"] not in seen \
                        and d["type"] != "seriesMaster":
                    entries.append((d["id"], True))
            for eid, t in st.deleted.items():
                if t["cal"] == cal.id and t["seq"] > snap["seq"] and eid not in seen \
                        and t["data"]["type"] != "seriesMaster":
                    entries.append((eid, True))
        n = st.next_snap
        st.next_snap += 1
        st.snapshots[n] = {"view": now, "seq": st.change_seq, "win": win, "cal": cal.id}
        rid = st.rand(16)
        st.rounds[rid] = {"id": rid, "entries": entries, "snap": n, "cal": cal.id}
        st.stats["delta_rounds"] += 1
        return st.rounds[rid]

    def decode(self, text):
        try:
            return target.decode_token(text, "token")
        except target.BadRequest:
            raise merr(400, "BadRequest", "The delta or skip token is malformed.")

    def gone(self, tok, split):
        """410 Gone with a Location: the initial request again (the window
        from the token when known, and an empty $deltatoken)."""
        st = self.server.state
        st.stats["gone_410"] += 1
        loc = self.base_url() + split.path + "?$deltatoken="
        snap = st.snapshots.get(tok.get("n")) or {}
        rnd = st.rounds.get(tok.get("r")) or {}
        win = snap.get("win") or (st.snapshots.get(rnd.get("snap")) or {}).get("win")
        if win:
            loc += "&startDateTime=%s&endDateTime=%s" % (fmt_utc(win[0]), fmt_utc(win[1]))
        if st.gone_status != 410:
            raise merr(st.gone_status, "syncStateNotFound", "The sync state could not be "
                       "found.")
        raise ApiError(410, self.gone_body(), {"Location": loc})

    # --- subscriptions ---

    def sub_resource(self, resource, token):
        """The calendar a subscription's resource names (None: the default
        one); 400 for a resource the sim does not serve."""
        st = self.server.state
        o = self.server.opts
        r = resource.strip("/")
        m = re.match(r"^(me|users/([^/]+))/(events|calendar/events|calendars/([^/]+)/events|"
                     r"calendars\('([^']+)'\)/events)$", r, re.I)
        if not m:
            raise merr(400, "InvalidRequest", "The resource '%s' is not supported." % resource)
        if m.group(1).lower() == "me" and token.get("app"):
            raise merr(400, "BadRequest", "/me request is only valid with delegated "
                       "authentication flow.")
        if m.group(2) and m.group(2).lower() not in (o.user_id.lower(), o.user_email.lower()):
            raise merr(404, "ErrorInvalidUser", "The requested user '%s' is invalid."
                       % m.group(2))
        cid = m.group(4) or m.group(5)
        if cid is None:
            return None
        with st.lock:
            return st.calendar(cid).id

    def sub_view(self, sub):
        keys = ("id", "resource", "applicationId", "changeType", "clientState",
                "notificationUrl", "notificationQueryOptions", "lifecycleNotificationUrl",
                "expirationDateTime", "creatorId", "includeResourceData",
                "latestSupportedTlsVersion", "encryptionCertificate",
                "encryptionCertificateId", "notificationUrlAppId")
        out = {k: sub.get(k) for k in keys}
        return dict({"@odata.context": self.base_url() + "/v1.0/$metadata#subscriptions/"
                     "$entity"}, **out)

    def expiry(self, text, operation="Create"):
        """The expiration a request asks for, checked against the limits:
        past or beyond --subscription-max-minutes answers 400; under
        --subscription-min-minutes is raised to it ([I]: Graph raises
        anything under 45 minutes)."""
        opts = self.server.opts
        dt = parse_instant(text or "")
        if dt is None:
            raise merr(400, "InvalidRequest", "expirationDateTime is required and must be an "
                       "ISO 8601 date-time.")
        now = datetime.datetime.now(UTC)
        if dt <= now:
            raise merr(400, "InvalidRequest", "Subscription expiration date time cannot be in "
                       "the past.")
        mx = now + datetime.timedelta(minutes=opts.subscription_max_minutes)
        if dt > mx + datetime.timedelta(seconds=1):
            raise merr(400, "ExtensionError", "Operation: %s; Exception: [Status Code: "
                       "BadRequest; Reason: Subscription expiration can only be %g minutes in "
                       "the future.]" % (operation, opts.subscription_max_minutes))
        mn = now + datetime.timedelta(minutes=opts.subscription_min_minutes)
        return max(dt, mn)

    def validate_url(self, url):
        """The validationToken handshake: POST url?validationToken=T with
        text/plain; the endpoint must answer 200, text/plain, body T,
        within --validation-timeout-s. Returns None or why it failed."""
        opts = self.server.opts
        st = self.server.state
        with st.lock:
            token = "Validation: Testing client application reachability for subscription " \
                "Request-Id: %s" % st.guid()
        t0 = time.monotonic()
        try:
            status, data, ctype = gcal.deliver(
                gcal.with_query(url, {"validationToken": token}), b"",
                {"Content-Type": "text/plain; charset=utf-8"}, opts.validation_timeout_s)
        except (OSError, gcal.http.client.HTTPException) as e:
            return "%s: %s" % (type(e).__name__, e)
        dt = time.monotonic() - t0
        with st.lock:
            self.server.validations.append({"url": url, "token": token, "status": status,
                                            "content_type": ctype, "seconds": dt,
                                            "body": data.decode("utf-8", "replace")[:300]})
        if status != 200:
            return "status %s" % status
        if not ctype.lower().startswith("text/plain"):
            return "content type %r" % ctype
        if data.decode("utf-8", "replace") != token:
            return "body is not the token"
        if dt > opts.validation_timeout_s:
            return "too slow"
        return None

    def check_url(self, url, name):
        u = urllib.parse.urlsplit(url or "")
        if u.scheme not in ("http", "https") or not u.hostname:
            raise merr(400, "InvalidRequest", "%s must be an absolute URL." % name)
        if u.scheme != "https" and (self.server.opts.require_https or u.hostname not in (
                "127.0.0.1", "localhost", "::1")):
            # Graph wants HTTPS; the sim lets plain HTTP reach 127.0.0.1.
            raise merr(400, "InvalidRequest", "The Url scheme '%s' is not supported for %s."
                       % (u.scheme, name))

    def subscriptions(self, method, rest, body, token):
        st = self.server.state
        if not rest and method == "GET":
            with st.lock:
                return 200, {"@odata.context": self.base_url() + "/v1.0/$metadata#"
                             "subscriptions", "value": [
                                 {k: v for k, v in self.sub_view(s).items()
                                  if k != "@odata.context"}
                                 for s in st.subs.values() if st.sub_live(s)]}, None, False
        if not rest and method == "POST":
            return self.create_subscription(body, token)
        if len(rest) != 1:
            raise merr(400, "BadRequest", "Resource not found for the segment.")
        with st.lock:
            sub = st.subs.get(rest[0])
            if sub is None or not st.sub_live(sub):
                raise merr(404, "ResourceNotFound", "The object was not found.")
            if method == "GET":
                return 200, self.sub_view(sub), None, False
            if method == "DELETE":
                sub["deleted"] = True
                return 204, None, None, True
        if method != "PATCH":
            raise merr(405, "BadRequest", "Method not allowed.")
        if not isinstance(body, dict):
            raise merr(400, "BadRequest", "Empty Payload. JSON content expected.")
        exp = self.expiry(body.get("expirationDateTime"), "Update") \
            if "expirationDateTime" in body else None
        if body.get("notificationUrl"):
            self.check_url(body["notificationUrl"], "notificationUrl")
            why = self.validate_url(body["notificationUrl"])
            if why:
                with st.lock:
                    st.stats["validation_failures"] += 1
                raise merr(400, "InvalidRequest", "Subscription validation request failed. "
                           "Notification endpoint must respond with 200 OK to validation "
                           "request. (%s)" % why)
        with st.lock:
            if not st.sub_live(sub):
                raise merr(404, "ResourceNotFound", "The object was not found.")
            if exp is not None:
                sub["exp_ms"] = int(exp.timestamp() * 1000)
                sub["expirationDateTime"] = fmt_stamp(sub["exp_ms"])
                st.stats["renewals"] += 1
            if body.get("notificationUrl"):
                sub["notificationUrl"] = body["notificationUrl"]
            return 200, self.sub_view(sub), None, True

    def create_subscription(self, body, token):
        st = self.server.state
        opts = self.server.opts
        if not isinstance(body, dict):
            raise merr(400, "BadRequest", "Empty Payload. JSON content expected.")
        for k in ("changeType", "notificationUrl", "resource", "expirationDateTime"):
            if not body.get(k):
                raise merr(400, "InvalidRequest", "The property '%s' is required." % k)
        ct = str(body["changeType"])
        if not ct or any(c not in ("created", "updated", "deleted") for c in ct.split(",")):
            raise merr(400, "InvalidRequest", "Invalid changeType '%s'." % ct)
        cs = body.get("clientState")
        if cs is not None and (not isinstance(cs, str) or len(cs) > 128):
            raise merr(400, "InvalidRequest", "clientState must be at most 128 characters.")
        if body.get("includeResourceData"):
            raise merr(400, "InvalidRequest", "includeResourceData is not supported by the "
                       "sim (it needs an encryption certificate).")
        self.check_url(body["notificationUrl"], "notificationUrl")
        if body.get("lifecycleNotificationUrl"):
            self.check_url(body["lifecycleNotificationUrl"], "lifecycleNotificationUrl")
        cal = self.sub_resource(str(body["resource"]), token)
        exp = self.expiry(body["expirationDateTime"])
        # The handshake runs without the state lock: the endpoint may call
        # back into the sim meanwhile.
        for name in ("notificationUrl", "lifecycleNotificationUrl"):
            if body.get(name):
                why = self.validate_url(body[name])
                if why:
                    with st.lock:
                        st.stats["validation_failures"] += 1
                    raise merr(400, "InvalidRequest", "Subscription validation request "
                               "failed. Notification endpoint must respond with 200 OK to "
                               "validation request. (%s: %s)" % (name, why))
        with st.lock:
            sid = st.guid()
            exp_ms = int(exp.timestamp() * 1000)
            sub = {"id": sid, "resource": body["resource"], "applicationId": opts.client_id,
                   "changeType": ct, "clientState": cs,
                   "notificationUrl": body["notificationUrl"],
                   "notificationQueryOptions": None,
                   "lifecycleNotificationUrl": body.get("lifecycleNotificationUrl"),
                   "expirationDateTime": fmt_stamp(exp_ms), "creatorId": opts.user_id,
                   "includeResourceData": False, "latestSupportedTlsVersion": "v1_2",
                   "encryptionCertificate": None, "encryptionCertificateId": None,
                   "notificationUrlAppId": None, "cal": cal, "exp_ms": exp_ms,
                   "deleted": False, "sent": 0, "created": gcal.now_ms(),
                   "n": len(st.subs) + 1}
            st.subs[sid] = sub
            st.stats["subscriptions_created"] += 1
            return 201, self.sub_view(sub), None, True

    # --- OAuth (the Microsoft identity platform) ---

    def aad_error_body(self, status, error, code, desc):
        st = self.server.state
        with st.lock:
            trace, corr = st.guid(), st.guid()
        ts = datetime.datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return {"error": error, "error_description": "AADSTS%d: %s Trace ID: %s Correlation "
                "ID: %s Timestamp: %s" % (code, desc, trace, corr, ts),
                "error_codes": [code], "timestamp": ts, "trace_id": trace,
                "correlation_id": corr,
                "error_uri": "https://login.microsoftonline.com/error?code=%d" % code}

    def aad_error(self, status, error, code, desc):
        return ApiError(status, self.aad_error_body(status, error, code, desc),
                        {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})

    def tenant_ok(self, tenant):
        o = self.server.opts
        return tenant.lower() in (o.tenant_id.lower(), "common", "organizations",
                                  o.tenant_domain.lower())

    def oauth_authorize(self, tenant, q):
        st = self.server.state
        o = self.server.opts
        p = {k: v[-1] for k, v in q.items()}
        if not self.tenant_ok(tenant):
            return 400, "AADSTS90002: Tenant '%s' not found." % tenant, None, False
        if p.get("client_id") != o.client_id:
            return 400, "AADSTS700016: Application with identifier '%s' was not found in the " \
                "directory." % p.get("client_id"), None, False
        ruri = p.get("redirect_uri")
        if not ruri or (o.redirect_uri and ruri != o.redirect_uri) or \
                (not o.redirect_uri and not gcal.loopback_uri(ruri)):
            return 400, "AADSTS50011: The redirect URI '%s' specified in the request does not " \
                "match the redirect URIs configured for the application." % ruri, None, False
        extra = {"state": p["state"]} if "state" in p else {}
        with st.lock:
            if st.deny:
                return 302, None, {"Location": gcal.with_query(ruri, dict(
                    error="access_denied", error_description="AADSTS65004: User declined to "
                    "consent to access the app.", **extra))}, False
            code = "0.A" + st.rand(300, ID_ALPHABET)
            st.tokens.codes[code] = {"redirect_uri": ruri, "scope": p.get("scope") or "",
                                     "exp": time.time() + 600,
                                     "challenge": p.get("code_challenge"),
                                     "method": p.get("code_challenge_method")}
        return 302, None, {"Location": gcal.with_query(ruri, dict(
            code=code, session_state=str(uuid.uuid4()), **extra))}, False

    def jwt(self, app, scope):
        """An access token shaped like Entra's (a JWT the sim signs with
        nothing: clients must not read it)."""
        st = self.server.state
        o = self.server.opts

        def b64(obj):
            return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
        now = int(time.time())
        claims = {"aud": "https://graph.microsoft.com", "iss": "https://sts.windows.net/%s/"
                  % o.tenant_id, "iat": now, "nbf": now, "tid": o.tenant_id,
                  "appid": o.client_id, "jti": st.rand(22)}
        if app:
            claims["roles"] = ["Calendars.ReadWrite"]
        else:
            claims.update(oid=o.user_id, upn=o.user_email, scp=scope)
        return "%s.%s.%s" % (b64({"typ": "JWT", "alg": "RS256", "kid": "sim"}), b64(claims),
                             st.rand(86, ID_ALPHABET))

    def issue(self, app, scope, refresh):
        st = self.server.state
        ttl = st.token_ttl_s if st.token_ttl_s else st.ttl_rng.randint(3600, 5400)
        tok = self.jwt(app, scope)
        st.tokens.access[tok] = {"exp": time.time() + ttl, "refresh": refresh, "scope": scope,
                                 "app": app}
        st.tokens.stats["access_tokens_issued"] += 1
        out = {"token_type": "Bearer", "expires_in": int(ttl), "ext_expires_in": int(ttl),
               "access_token": tok}
        if not app:
            out = dict({"token_type": "Bearer", "scope": scope}, **out)
        return out

    def new_refresh(self, scope):
        st = self.server.state
        r = "1.A" + st.rand(400, ID_ALPHABET)
        exp = time.time() + st.refresh_ttl_s if st.refresh_ttl_s else None
        st.tokens.refresh[r] = {"state": "live", "scope": scope, "exp": exp, "uses": 0}
        return r

    def delegated_scope(self, scope):
        """The scopes a delegated token holds: what was asked, with the
        Graph prefix dropped, as Entra answers "scope"."""
        out = []
        for s in (scope or "").split():
            s = s.replace("https://graph.microsoft.com/", "")
            if s and s not in out:
                out.append(s)
        return " ".join(out) or "Calendars.ReadWrite"

    def oauth_token(self, tenant, raw):
        st = self.server.state
        o = self.server.opts
        form = gcal.read_form(raw)
        grant = form.get("grant_type")
        with st.lock:
            st.tokens.stats["token_requests"] += 1
        if not self.tenant_ok(tenant):
            raise self.aad_error(400, "invalid_request", 90002, "Tenant '%s' not found." % tenant)
        cid, secret = gcal.client_auth(self.headers, form)
        if grant == "refresh_token":
            return self.refresh_grant(form, cid, secret)
        if cid != o.client_id:
            raise self.aad_error(400, "unauthorized_client", 700016, "Application with "
                                 "identifier '%s' was not found in the directory '%s'."
                                 % (cid, o.tenant_domain))
        if secret != o.client_secret:
            raise self.aad_error(401, "invalid_client", 7000215, "Invalid client secret "
                                 "provided. Ensure the secret being sent in the request is the "
                                 "client secret value, not the client secret ID, for a secret "
                                 "added to app '%s'." % o.client_id)
        if grant == "client_credentials":
            if (form.get("scope") or "").strip() != "https://graph.microsoft.com/.default":
                raise self.aad_error(400, "invalid_scope", 1002012, "The provided value for "
                                     "scope %s is not valid. Client credential flows must have "
                                     "a scope value with /.default suffixed to the resource "
                                     "identifier (application ID URI)." % form.get("scope"))
            with st.lock:
                st.tokens.stats["client_credentials"] += 1
                return 200, self.issue(True, "", None), {"Cache-Control": "no-store, no-cache",
                                                         "Pragma": "no-cache"}, True
        if grant != "authorization_code":
            raise self.aad_error(400, "unsupported_grant_type", 70003, "The app requested an "
                                 "unsupported grant type '%s'." % grant)
        with st.lock:
            c = st.tokens.codes.pop(form.get("code") or "", None)
            if c is None or time.time() >= c["exp"]:
                raise self.aad_error(400, "invalid_grant", 70000, "The provided value for the "
                                     "'code' parameter is not valid.")
            if form.get("redirect_uri") != c["redirect_uri"]:
                raise self.aad_error(400, "invalid_grant", 50148, "The redirect_uri doesn't "
                                     "match the one in the authorization request.")
            if not gcal.pkce_ok(c["challenge"], c["method"], form.get("code_verifier")):
                raise self.aad_error(400, "invalid_grant", 501481, "The Code_Verifier does not "
                                     "match the code_challenge supplied in the authorization "
                                     "request.")
            st.tokens.stats["code_grants"] += 1
            scope = self.delegated_scope(c["scope"])
            offline = "offline_access" in scope.split()
            r = self.new_refresh(scope) if offline else None
            out = self.issue(False, scope, r)
            if r:
                out["refresh_token"] = r
        return 200, out, {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}, True

    def refresh_grant(self, form, cid, secret):
        """Refresh tokens rotate on every use (§4.1): the answer carries a
        new one; the old one stays valid unless --revoke-old-refresh."""
        st = self.server.state
        o = self.server.opts
        with st.lock:
            tb = st.tokens
            tb.stats["refreshes"] += 1
            tb.refresh_in_flight += 1
            tb.stats["max_concurrent_refreshes"] = max(tb.stats["max_concurrent_refreshes"],
                                                       tb.refresh_in_flight)
            delay = st.token_delay_ms
        try:
            if delay:
                time.sleep(delay / 1000.0)
            if cid != o.client_id or (secret is not None and secret != o.client_secret):
                with st.lock:
                    st.tokens.stats["refresh_failures"] += 1
                raise self.aad_error(401, "invalid_client", 7000215, "Invalid client secret "
                                     "provided.")
            with st.lock:
                r = form.get("refresh_token") or ""
                info = st.tokens.refresh.get(r)
                if info is None or info["state"] == "revoked" or info["state"] == "rotated":
                    st.tokens.stats["refresh_failures"] += 1
                    raise self.aad_error(400, "invalid_grant", 50173, "The provided grant has "
                                         "expired due to it being revoked, a fresh auth token "
                                         "is needed. The user might have changed or reset "
                                         "their password.")
                if info["exp"] is not None and time.time() >= info["exp"]:
                    st.tokens.stats["refresh_failures"] += 1
                    raise self.aad_error(400, "invalid_grant", 700082, "The refresh token has "
                                         "expired due to inactivity. The token was issued on "
                                         "%s and was inactive for 90.00:00:00." %
                                         datetime.datetime.now(UTC).strftime(
                                             "%Y-%m-%dT%H:%M:%S.0000000Z"))
                info["uses"] += 1
                scope = self.delegated_scope(form.get("scope") or info["scope"])
                if st.revoke_old:
                    info["state"] = "rotated"
                new = self.new_refresh(info["scope"])
                out = self.issue(False, scope, new)
                out["refresh_token"] = new
            return 200, out, {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}, True
        finally:
            with st.lock:
                st.tokens.refresh_in_flight -= 1

    # --- the control API ---

    def ctl_get_stats(self, arg, q):
        st = self.server.state
        with st.lock:
            out = copy.deepcopy(st.stats)
            out["oauth"] = dict(st.tokens.stats, refresh_in_flight=st.tokens.refresh_in_flight,
                                live_access_tokens=sum(1 for t in st.tokens.access
                                                       if not st.tokens.check_access(t)),
                                live_refresh_tokens=sum(1 for r in st.tokens.refresh.values()
                                                        if r["state"] == "live"))
            out["calendars"] = {c.id: {"name": c.name, "events": len(c.events)}
                                for c in st.calendars.values()}
            out["deleted"] = len(st.deleted)
            out["subscriptions_live"] = sum(1 for s in st.subs.values() if st.sub_live(s))
            out["subscriptions_total"] = len(st.subs)
            out["in_flight"] = st.in_flight
            out["max_in_flight"] = st.max_in_flight
            out["faults_queued"] = len(st.faults)
            out["change_seq"] = st.change_seq
            out["validations"] = len(self.server.validations)
        out["notifications"] = self.server.notifier.snapshot(10 ** 12)[0]
        return 200, out

    def ctl_post_reset(self, arg, q):
        st = self.server.state
        with st.lock:
            st.reset()
            del self.server.validations[:]
        self.server.notifier.reset()
        return 200, {"status": "reset"}

    def ctl_get_calendars(self, arg, q):
        st = self.server.state
        with st.lock:
            return 200, [{"id": c.id, "name": c.name, "isDefaultCalendar": c.default}
                         for c in st.calendars.values()]

    def ctl_get_events(self, arg, q):
        """{id: event as GET answers it (UTC)} of one calendar (?calendar=ID,
        default the default one); with ?start=...&end=... (ISO, UTC) the
        calendarView of that window instead (occurrences, exceptions,
        single instances)."""
        st = self.server.state
        with st.lock:
            cal = st.calendar(q.get("calendar", [None])[-1])
            if q.get("start") and q.get("end"):
                win = (parse_instant(q["start"][-1]), parse_instant(q["end"][-1]))
                if None in win:
                    raise ValueError("start and end must be RFC 3339 with an offset")
                return 200, {d["id"]: self.render(d) for _, d in self.view_rows(cal, win)}
            return 200, {eid: self.render(r["data"]) for eid, r in cal.events.items()}

    def cal_arg(self, arg):
        return self.server.state.calendar(arg.get("calendar"))

    def person(self, arg, fn):
        st = self.server.state
        with st.lock:
            out = fn()
            st.stats["person_changes"] += 1
            return 200, {"event": out}

    def ctl_post_create(self, arg, q):
        """A person creates an event in Outlook: {"event": Graph shape,
        "calendar"?, "notify"?}."""
        st = self.server.state

        def fn():
            cal = self.cal_arg(arg)
            eid = st.new_event_id()
            data = self.build(eid, dict(arg.get("event") or {}))
            st.put(cal, eid, data, notify=arg.get("notify", True))
            return self.render(data)
        return self.person(arg, fn)

    def edit(self, eid, fields, notify):
        """PATCH semantics as a person; an occurrence id makes an exception."""
        st = self.server.state
        cal, rec, data = st.resolve(eid)
        master = None
        if data["type"] in ("occurrence", "exception"):
            _, mrec = st.find(data["seriesMasterId"])
            master = mrec["data"] if mrec else None
        new = self.build(data["id"], fields, data, data["type"], master)
        if data["type"] == "occurrence":
            new["type"] = "exception"
        st.put(cal, data["id"], new, notify=notify, change="updated")
        return self.render(new)

    def ctl_post_update(self, arg, q):
        return self.person(arg, lambda: self.edit(arg["id"], arg.get("fields") or {},
                                                  arg.get("notify", True)))

    def ctl_post_move(self, arg, q):
        """A person drags an event (or one occurrence) by "minutes", or sets
        "start"/"end" (Graph dateTimeTimeZone objects)."""
        st = self.server.state

        def fn():
            _, _, data = st.resolve(arg["id"])
            fields = {}
            if "minutes" in arg:
                delta = datetime.timedelta(minutes=float(arg["minutes"]))
                for k in ("start", "end"):
                    t = data[k]
                    if "date" in t:
                        d = parse_date(t["date"]) + datetime.timedelta(
                            days=round(delta.total_seconds() / 86400))
                        fields[k] = {"dateTime": d.isoformat() + "T00:00:00", "timeZone": "UTC"}
                    else:
                        fields[k] = {"dateTime": fmt_local(parse_instant(t["utc"]) + delta),
                                     "timeZone": "UTC"}
            for k in ("start", "end"):
                if k in arg:
                    fields[k] = arg[k]
            return self.edit(arg["id"], fields, arg.get("notify", True))
        return self.person(arg, fn)

    def ctl_post_cancel(self, arg, q):
        """A person deletes an event, a series or one occurrence; with
        "keep": true the event stays, isCancelled, "Canceled: " before its
        subject (an attendee's copy of a meeting the organizer cancelled)."""
        st = self.server.state

        def fn():
            cal, rec, data = st.resolve(arg["id"])
            if arg.get("keep"):
                new = copy.deepcopy(data)
                new["isCancelled"] = True
                if not new["subject"].startswith("Canceled: "):
                    new["subject"] = "Canceled: " + new["subject"]
                if data["type"] == "occurrence":
                    new["type"] = "exception"
                st.put(cal, data["id"], new, notify=arg.get("notify", True), change="updated")
                return self.render(new)
            self.delete(cal, rec, data, arg.get("notify", True))
            return self.render(data)
        return self.person(arg, fn)

    ctl_post_delete = ctl_post_cancel

    def ctl_post_respond(self, arg, q):
        """An attendee answers: {"id", "email", "response"}."""
        st = self.server.state
        if arg.get("response") not in RESPONSES:
            raise ValueError("response must be one of %s" % (RESPONSES,))

        def fn():
            _, _, data = st.resolve(arg["id"])
            atts = copy.deepcopy(data.get("attendees") or [])
            hit = [a for a in atts
                   if a["emailAddress"]["address"].lower() == str(arg["email"]).lower()]
            if not hit:
                raise ValueError("no attendee %s" % arg["email"])
            hit[0]["status"] = {"response": arg["response"],
                                "time": fmt_utc(datetime.datetime.now(UTC))}
            return self.edit(arg["id"], {"attendees": atts}, arg.get("notify", True))
        return self.person(arg, fn)

    def ctl_post_invalidate_delta(self, arg, q):
        """Every delta and skip token issued so far answers 410 Gone (with a
        Location), or {"status": 400} (a 40X syncStateNotFound)."""
        st = self.server.state
        with st.lock:
            st.generation = st.rand(12)
            st.gone_status = int(arg.get("status", 410))
            return 200, {"status": st.gone_status}

    ctl_post_expire_sync_tokens = ctl_post_invalidate_delta

    def ctl_post_expire_access(self, arg, q):
        st = self.server.state
        with st.lock:
            return 200, {"expired": st.tokens.expire_access()}

    def ctl_post_revoke(self, arg, q):
        st = self.server.state
        with st.lock:
            return 200, {"revoked": st.tokens.revoke_refresh(arg.get("token"))}

    def ctl_post_grant(self, arg, q):
        """Tokens as if the user consented just now ({"app": true}: an app-only
        token, no refresh token)."""
        st = self.server.state
        with st.lock:
            if arg.get("app"):
                return 200, self.issue(True, "", None)
            scope = self.delegated_scope(arg.get("scope") or
                                         "Calendars.ReadWrite offline_access")
            r = self.new_refresh(scope)
            out = self.issue(False, scope, r)
            out["refresh_token"] = r
            return 200, out

    def ctl_post_oauth(self, arg, q):
        """deny, token_ttl_s (0: random 3600..5400), refresh_ttl_s,
        token_delay_ms, revoke_old."""
        st = self.server.state
        with st.lock:
            if "deny" in arg:
                st.deny = bool(arg["deny"])
            if "token_ttl_s" in arg:
                st.token_ttl_s = float(arg["token_ttl_s"] or 0)
            if "refresh_ttl_s" in arg:
                st.refresh_ttl_s = float(arg["refresh_ttl_s"] or 0)
            if "token_delay_ms" in arg:
                st.token_delay_ms = float(arg["token_delay_ms"])
            if "revoke_old" in arg:
                st.revoke_old = bool(arg["revoke_old"])
            return 200, {"deny": st.deny, "token_ttl_s": st.token_ttl_s,
                         "refresh_ttl_s": st.refresh_ttl_s,
                         "token_delay_ms": st.token_delay_ms, "revoke_old": st.revoke_old}

    def ctl_get_tokens(self, arg, q):
        st = self.server.state
        with st.lock:
            return 200, {"access": {t: {"exp": a["exp"], "refresh": a.get("refresh"),
                                        "scope": a["scope"], "app": a.get("app", False),
                                        "live": not st.tokens.check_access(t)}
                                    for t, a in st.tokens.access.items()},
                         "refresh": copy.deepcopy(st.tokens.refresh),
                         "stats": dict(st.tokens.stats)}

    def ctl_post_throttle(self, arg, q):
        """{"rate", "window_s", "concurrency", "retry_after_s", "latency_ms"}:
        the mailbox's limits (0 turns one off; retry_after_s null computes
        Retry-After from the window)."""
        st = self.server.state
        with st.lock:
            if "rate" in arg or "window_s" in arg:
                st.rate = gcal.QuotaWindow(int(arg.get("rate", st.rate.limit)),
                                           float(arg.get("window_s", st.rate.window_s)))
            if "concurrency" in arg:
                st.concurrency = int(arg["concurrency"])
            if "retry_after_s" in arg:
                st.retry_after_s = arg["retry_after_s"]
            if "latency_ms" in arg:
                st.latency_ms = float(arg["latency_ms"])
            return 200, {"rate": st.rate.limit, "window_s": st.rate.window_s,
                         "concurrency": st.concurrency, "retry_after_s": st.retry_after_s,
                         "latency_ms": st.latency_ms}

    def ctl_get_subscriptions(self, arg, q):
        st = self.server.state
        with st.lock:
            out = []
            for s in sorted(st.subs.values(), key=lambda s: s["n"]):
                v = {k: x for k, x in self.sub_view(s).items() if k != "@odata.context"}
                v.update(live=st.sub_live(s), deleted=s["deleted"],
                         expired=gcal.now_ms() >= s["exp_ms"], notifications=s["sent"],
                         calendar=s["cal"])
                out.append(v)
            return 200, out

    def ctl_post_expire_subscriptions(self, arg, q):
        st = self.server.state
        with st.lock:
            n = 0
            for s in st.subs.values():
                if (not arg.get("id") or s["id"] == arg["id"]) and st.sub_live(s):
                    s["exp_ms"] = gcal.now_ms() - 1
                    n += 1
            return 200, {"expired": n}

    def ctl_post_lifecycle(self, arg, q):
        """Sends a lifecycle notification ("event": subscriptionRemoved,
        reauthorizationRequired or missed) for subscription "id" to its
        lifecycleNotificationUrl; subscriptionRemoved also removes it."""
        st = self.server.state
        ev = arg.get("event")
        if ev not in ("subscriptionRemoved", "reauthorizationRequired", "missed"):
            raise ValueError("event must be subscriptionRemoved, reauthorizationRequired or "
                             "missed")
        with st.lock:
            sub = st.subs.get(arg.get("id"))
            if sub is None:
                raise ValueError("no subscription %s" % arg.get("id"))
            url = sub.get("lifecycleNotificationUrl")
            if not url:
                raise ValueError("the subscription has no lifecycleNotificationUrl")
            n = {"subscriptionId": sub["id"],
                 "subscriptionExpirationDateTime": sub["expirationDateTime"],
                 "tenantId": self.server.opts.tenant_id, "clientState": sub.get("clientState"),
                 "lifecycleEvent": ev}
            live = st.sub_live(sub)
            sub_copy = dict(sub, deleted=False, exp_ms=max(sub["exp_ms"], gcal.now_ms() + 60000))
            st.enqueue_sub(sub_copy, {"value": [n]}, ev, url)
            if ev == "subscriptionRemoved":
                sub["deleted"] = True
            return 200, {"queued": True, "was_live": live}

    def ctl_post_notifications(self, arg, q):
        return 200, self.server.notifier.configure(arg)

    def ctl_get_deliveries(self, arg, q):
        since = int(q.get("since", ["0"])[-1])
        return 200, self.server.notifier.snapshot(since)[1]

    def ctl_get_validations(self, arg, q):
        with self.server.state.lock:
            return 200, list(self.server.validations)

    def ctl_post_wait_notifications(self, arg, q):
        return 200, {"idle": self.server.notifier.wait_idle(float(arg.get("timeout_s", 10)))}


FILTER_RE = re.compile(r"\s*([A-Za-z]+(?:/[A-Za-z]+)?)\s+(eq|ne|ge|gt|le|lt)\s+"
                       r"('(?:[^']|'')*'|[^\s)]+)\s*")


def parse_filter(text):
    """A predicate over a rendered event for the $filter subset: clauses
    PROP OP VALUE (eq ne ge gt le lt; PROP may be start/dateTime) joined by
    "and". Anything else answers 400."""
    clauses = []
    for part in re.split(r"\s+and\s+", text.strip()):
        m = FILTER_RE.fullmatch(part)
        if not m:
            raise merr(400, "BadRequest", "Invalid filter clause: the sim takes PROP OP VALUE "
                       "clauses joined by 'and' (%s)." % part)
        prop, op, raw = m.groups()
        if raw.startswith("'"):
            val = raw[1:-1].replace("''", "'")
        elif raw in ("true", "false"):
            val = raw == "true"
        elif raw == "null":
            val = None
        else:
            val = raw
        clauses.append((prop.split("/"), op, val))

    def get(e, path):
        for p in path:
            e = e.get(p) if isinstance(e, dict) else None
        return e

    def cmp(a, b):
        da, db = parse_instant(a) if isinstance(a, str) else None, \
            parse_instant(b) if isinstance(b, str) else None
        if da is not None and db is not None:
            return (da > db) - (da < db)
        if isinstance(a, str) and isinstance(b, str):
            return (a > b) - (a < b)
        return 0 if a == b else None

    def pred(e):
        for path, op, val in clauses:
            v = get(e, path)
            if op == "eq" and not (v == val or cmp(v, val) == 0):
                return False
            if op == "ne" and (v == val or cmp(v, val) == 0):
                return False
            if op in ("ge", "gt", "le", "lt"):
                c = cmp(v, val)
                if c is None or not {"ge": c >= 0, "gt": c > 0, "le": c <= 0,
                                     "lt": c < 0}[op]:
                    return False
        return True
    return pred


def parse_args(argv):
    p = argparse.ArgumentParser(description="a Microsoft 365 mailbox for concord tests")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--seed", type=int, default=None, help="seeds ids and tokens")
    p.add_argument("--tenant-id", default="8f4e2b1c-7a3d-4c5e-9b6f-0a1d2c3e4f50")
    p.add_argument("--tenant-domain", default="contoso.onmicrosoft.com")
    p.add_argument("--user-id", default="5d1a9c3e-2b4f-4e6a-8c0d-1f2e3a4b5c6d")
    p.add_argument("--user-email", default="sim.user@contoso.onmicrosoft.com")
    p.add_argument("--user-name", default="Sim User")
    p.add_argument("--calendars", default="Calendar",
                   help="comma-separated calendar names; the first is the default one")
    p.add_argument("--client-id", default="3e0c5a7b-9d1f-4a2b-8c6e-0f1a2b3c4d5e")
    p.add_argument("--client-secret", default="sim~secret.concord-graph")
    p.add_argument("--redirect-uri", default=None,
                   help="the one registered redirect URI (default: any loopback URI)")
    p.add_argument("--token-ttl-s", type=float, default=0.0,
                   help="access token lifetime; 0 = random 3600..5400 (Entra: 60-90 min)")
    p.add_argument("--refresh-ttl-s", type=float, default=0.0,
                   help="refresh token lifetime (inactivity); 0 = none (Entra: 90 days)")
    p.add_argument("--revoke-old-refresh", action="store_true",
                   help="a used refresh token dies (Entra keeps old ones valid)")
    p.add_argument("--token-delay-ms", type=float, default=0.0,
                   help="each refresh stays in flight this long (single-flight tests)")
    p.add_argument("--mailbox-rate", type=int, default=10000,
                   help="requests per --mailbox-window-s per mailbox; 0 = no limit")
    p.add_argument("--mailbox-window-s", type=float, default=600.0)
    p.add_argument("--mailbox-concurrency", type=int, default=4,
                   help="requests in flight at once per mailbox; 0 = no limit")
    p.add_argument("--retry-after-s", type=int, default=None,
                   help="Retry-After of a 429 (default: when the window has room again)")
    p.add_argument("--latency-ms", type=float, default=0.0,
                   help="each mailbox request takes this long (concurrency tests)")
    p.add_argument("--delta-page-size", type=int, default=10,
                   help="delta page size without Prefer: odata.maxpagesize")
    p.add_argument("--subscription-max-minutes", type=float, default=10080.0,
                   help="the longest subscription for events (§4.5: 10080; older docs 4230)")
    p.add_argument("--subscription-min-minutes", type=float, default=45.0,
                   help="a shorter expiration is raised to this ([I]: 45)")
    p.add_argument("--validation-timeout-s", type=float, default=10.0)
    p.add_argument("--require-https", action="store_true",
                   help="refuse http:// notification URLs, even on 127.0.0.1")
    p.add_argument("--notify-attempts", type=int, default=4)
    p.add_argument("--notify-backoff-ms", type=float, default=500.0)
    p.add_argument("--notify-timeout-s", type=float, default=3.0,
                   help="Graph waits 3 s for a notification's answer")
    p.add_argument("--verbose", action="store_true")
    opts = p.parse_args(argv)
    opts.calendars = [c.strip() for c in opts.calendars.split(",") if c.strip()] or ["Calendar"]
    if opts.notify_attempts < 1:
        p.error("--notify-attempts must be >= 1")
    if opts.delta_page_size < 1:
        p.error("--delta-page-size must be >= 1")
    return opts


def main(argv):
    opts = parse_args(argv)
    server = simbase.Server(("127.0.0.1", opts.port), GraphHandler)
    opts.port = server.server_address[1]
    server.opts = opts
    server.validations = []
    server.notifier = gcal.Notifier(opts.notify_attempts, opts.notify_backoff_ms,
                                    opts.notify_timeout_s)
    server.state = GraphState(opts)
    server.state.notifier = server.notifier
    sys.stdout.write("ready %d\n" % opts.port)
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
