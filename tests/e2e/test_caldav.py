#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The caldav kind end to end, against a real CalDAV server: Radicale (the
Debian package's own /usr/bin/radicale, started here on a free port with a
temporary storage folder and a plain htpasswd file). The other side is a
booking app (tests/sims/target.py) that sends webhooks when a person edits
a booking there.

Create in the app and the event appears; move the event by a PUT straight
to Radicale and the booking moves; cancel on either side; concurrent edits
on both sides settled by the sync's policy; a write that meets a newer
event (412) reads it again and merges; a sync token that Radicale no
longer knows leads to a full read without duplicates. A truncated
sync-collection answer (507), which Radicale never sends, is read on from
its token against a small scripted server that answers as RFC 6578 §3.6
describes.

Tests that need edits to be concurrent keep the calendar's poll slow and
read it with `concord poll`, and hold concord's writes with `concord pause`.
"""

import atexit
import base64
import datetime
import http.client
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import xml.etree.ElementTree as ET
import zoneinfo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Concord, Sim, wait_until  # noqa: E402

RADICALE = "/usr/bin/radicale"
# One Radicale serves the file; each test has an account of its own.
USERS = ["ana%d" % i for i in range(1, 9)]
PASSWORD = "s3cret-pass"
DAV = "{DAV:}"

CONFIG = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=300
log: {level: debug, format: json}
systems:
  app:
    kind: http
    base_url: http://127.0.0.1:{app_port}
    retry: {max_attempts: 5, base_ms: 50, cap_ms: 200, jitter: 0.1}
    webhook: {path: /webhooks/app}
    collections:
      bookings:
        model: booking
        record: booking
        deleted_when: '.event == "booking.deleted"'
        map_in: {title: title, start: start, end: end, status: status, location: location}
        map_out: {title: title, start: start, end: end, status: status, location: location}
        create: POST /bookings
        update: PUT /bookings/{id}
        delete: DELETE /bookings/{id}
        on_delete: archive
        archive: {status: cancelled}
  cal:
    kind: caldav
    base_url: http://127.0.0.1:{dav_port}
    username: {user}
    password: env:CAL_PASSWORD
    retry: {max_attempts: 8, base_ms: 50, cap_ms: 200, jitter: 0.1}
    collections:
      work:
        model: booking
{calendar}
        map_in: {title: title, start: start.at, end: end.at, status: status, location: location}
        map_out: {title: title, start.at: start, end.at: end, status: status, location: location}
        on_delete: {cal_delete}
        poll: {every: {every}, jitter: 0}
models:
  booking:
    fields: {title: string, start: timestamp, end: timestamp, status: string, location: string}
syncs:
  bookings:
    model: booking
    origin: [app, cal]
    collections: [app.bookings, cal.work]
{sync}
"""

ZONES = {
    "Europe/Bucharest": ("+0200", "+0300", "030000", "040000"),
    "Europe/London": ("+0000", "+0100", "010000", "020000"),
}


# --- Radicale ---------------------------------------------------------------


class Radicale:
    """/usr/bin/radicale on a free 127.0.0.1 port, with its own storage
    folder and a plain htpasswd file of USERS; shared by the file's tests
    (radicale()), stopped and its folder removed at the end."""

    def __init__(self):
        if not os.access(RADICALE, os.X_OK):
            raise AssertionError("no %s: bash scripts/install-deps.sh --test installs it"
                                 % RADICALE)
        self.dir = tempfile.mkdtemp(prefix="concord-radicale-", dir="/tmp")
        self.storage = os.path.join(self.dir, "collections")
        users = os.path.join(self.dir, "users")
        with open(users, "w") as f:
            f.write("".join("%s:%s\n" % (u, PASSWORD) for u in USERS))
        self.proc = None
        self.log = open(os.path.join(self.dir, "radicale.log"), "ab")
        # A port taken between free_port() and Radicale's bind: another one.
        for attempt in range(3):
            self.port = harness.free_port()
            conf = os.path.join(self.dir, "config")
            with open(conf, "w") as f:
                f.write(
                    "[server]\nhosts = 127.0.0.1:%d\n"
                    "[auth]\ntype = htpasswd\nhtpasswd_filename = %s\n"
                    "htpasswd_encryption = plain\ndelay = 0\n"
                    "[rights]\ntype = owner_only\n"
                    "[storage]\nfilesystem_folder = %s\n"
                    "[logging]\nlevel = warning\n" % (self.port, users, self.storage))
            since = os.path.getsize(self.log.name)
            self.proc = subprocess.Popen(
                [RADICALE, "--config", conf], stdout=self.log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, preexec_fn=harness._die_with_parent)
            wait_until(self._up_or_exited, 15, "Radicale to answer on port %d" % self.port)
            if self.proc.poll() is None:
                return
            if attempt == 2 or "Address already in use" not in self.log_text(since):
                raise AssertionError("radicale exited: %s" % self.log_text(since))

    def _up_or_exited(self):
        if self.proc.poll() is not None:
            return True
        status, _, _ = self.request("OPTIONS", "/")
        return status == 200

    def log_text(self, since=0):
        with open(os.path.join(self.dir, "radicale.log"), errors="replace") as f:
            f.seek(since)
            return f.read()[-2000:]

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self.log.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def request(self, method, path, body=None, headers=None):
        """(status, body text, headers with lower-case names), as the owner
        of the path (its first segment; USERS[0] for others)."""
        owner = path.split("/")[1] if path.count("/") > 1 else ""
        user = owner if owner in USERS else USERS[0]
        h = {"Authorization": "Basic " + base64.b64encode(
            ("%s:%s" % (user, PASSWORD)).encode()).decode()}
        h.update(headers or {})
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body.encode() if isinstance(body, str) else body,
                         headers=h)
            r = conn.getresponse()
            return r.status, r.read().decode("utf-8", "replace"), {
                k.lower(): v for k, v in r.getheaders()}
        finally:
            conn.close()

    def mkcalendar(self, path):
        status, text, _ = self.request("MKCALENDAR", path)
        assert status == 201, (status, text)

    def etags(self, cal):
        """{href: etag} of the calendar's events."""
        status, text, _ = self.request(
            "PROPFIND", cal, '<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop>'
            '<d:getetag/></d:prop></d:propfind>', {"Depth": "1"})
        assert status == 207, (status, text)
        out = {}
        for resp in ET.fromstring(text).iter(DAV + "response"):
            href = resp.find(DAV + "href").text
            etag = resp.find(".//" + DAV + "getetag")
            if not href.endswith("/") and etag is not None:
                out[href] = etag.text
        return out

    def events(self, cal):
        """{href: event dict} of the calendar (see parse_event)."""
        out = {}
        for href, etag in self.etags(cal).items():
            status, text, _ = self.request("GET", href)
            if status == 200:
                ev = parse_event(text)
                ev["etag"] = etag
                out[href] = ev
        return out

    def put(self, href, text, etag=None, create=False):
        """PUT an event straight to Radicale (as a person's calendar app
        does); returns the new ETag."""
        h = {"Content-Type": "text/calendar; charset=utf-8"}
        if etag:
            h["If-Match"] = etag
        if create:
            h["If-None-Match"] = "*"
        status, body, hdrs = self.request("PUT", href, text, h)
        assert status in (201, 204), (status, body)
        return hdrs.get("etag")

    def delete(self, href):
        status, body, _ = self.request("DELETE", href)
        assert status in (200, 204), (status, body)


def unfold(text):
    return re.sub(r"\r?\n[ \t]", "", text)


def untext(value):
    """An iCalendar TEXT value unescaped (RFC 5545 §3.3.11)."""
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def parse_event(text):
    """The first VEVENT's uid, title, location, status (lower-case,
    "confirmed" when absent), the zone of DTSTART and its start and end as
    aware datetimes."""
    ev = {"status": "confirmed", "tz": None}
    in_event = False
    for line in unfold(text).splitlines():
        if line == "BEGIN:VEVENT":
            in_event = True
            continue
        if line == "END:VEVENT":
            break
        if not in_event or ":" not in line:
            continue
        head, value = line.split(":", 1)
        name, *params = head.split(";")
        params = dict(p.split("=", 1) for p in params if "=" in p)
        if name == "UID":
            ev["uid"] = value
        elif name == "SUMMARY":
            ev["title"] = untext(value)
        elif name == "LOCATION":
            ev["location"] = untext(value)
        elif name == "STATUS":
            ev["status"] = value.lower()
        elif name in ("DTSTART", "DTEND"):
            key = "start" if name == "DTSTART" else "end"
            if value.endswith("Z"):
                t = datetime.datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(
                    tzinfo=datetime.timezone.utc)
            else:
                zone = params.get("TZID")
                t = datetime.datetime.strptime(value, "%Y%m%dT%H%M%S").replace(
                    tzinfo=zoneinfo.ZoneInfo(zone))
                if key == "start":
                    ev["tz"] = zone
            ev[key] = t
    return ev


def vtimezone(zone):
    std, dst, dst_at, std_at = ZONES[zone]
    return ["BEGIN:VTIMEZONE", "TZID:" + zone,
            "BEGIN:DAYLIGHT", "TZOFFSETFROM:" + std, "TZOFFSETTO:" + dst,
            "DTSTART:19700329T" + dst_at, "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
            "END:DAYLIGHT",
            "BEGIN:STANDARD", "TZOFFSETFROM:" + dst, "TZOFFSETTO:" + std,
            "DTSTART:19701025T" + std_at, "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
            "END:STANDARD", "END:VTIMEZONE"]


def ics(uid, title, start, end, tz=None, location=None, status=None):
    """An event as a calendar app writes it: start and end (UTC ISO texts)
    written as local times in zone tz, or in UTC."""
    def when(name, iso):
        t = datetime.datetime.fromisoformat(iso.replace("Z", "+00:00"))
        if tz is None:
            return "%s:%s" % (name, t.strftime("%Y%m%dT%H%M%SZ"))
        local = t.astimezone(zoneinfo.ZoneInfo(tz))
        return "%s;TZID=%s:%s" % (name, tz, local.strftime("%Y%m%dT%H%M%S"))

    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//concord tests//EN"]
    if tz is not None:
        lines += vtimezone(tz)
    def text(v):
        return re.sub(r"([\\;,])", r"\\\1", v)

    lines += ["BEGIN:VEVENT", "UID:" + uid, "DTSTAMP:20260401T000000Z",
              when("DTSTART", start), when("DTEND", end), "SUMMARY:" + text(title)]
    if location:
        lines.append("LOCATION:" + text(location))
    if status:
        lines.append("STATUS:" + status)
    lines += ["END:VEVENT", "END:VCALENDAR", ""]
    return "\r\n".join(lines)


def instant(iso):
    return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00"))


# --- the set-up ---------------------------------------------------------------

MEETING = {"title": "Haircut, Ana", "start": "2026-05-04T09:00:00Z",
           "end": "2026-05-04T10:00:00Z", "status": "confirmed", "location": "Chair 1"}
_server = []
_accounts = []


class Account:
    """One user's view of the shared Radicale (its methods, authenticated
    as the owner of each path): the user and its calendar work, cal."""

    def __init__(self, server, user):
        self.server, self.user = server, user
        self.cal = "/%s/work/" % user

    def __getattr__(self, name):
        return getattr(self.server, name)


def radicale():
    """The file's Radicale, started on first use."""
    if not _server:
        _server.append(Radicale())
        atexit.register(_server[0].stop)
    return _server[0]


def setup(every="300ms", cal_delete="delete", sync="", calendar="", dav=None):
    """The next account of Radicale, with its calendar work (dav.cal) and
    another one, tasks (so that discovery has to choose), the booking app,
    and concord between them. calendar: the collection's calendar key
    (default dav.cal; None: none)."""
    if dav is None:
        dav = Account(radicale(), USERS[len(_accounts)])
        _accounts.append(dav.user)
        dav.mkcalendar(dav.cal)
        dav.mkcalendar("/%s/tasks/" % dav.user)
    if calendar == "":
        calendar = dav.cal
    port = harness.free_port()
    app = Sim(resource="bookings", id_prefix="B", envelope="booking", event_key="event",
              webhook_url="http://127.0.0.1:%d/webhooks/app" % port)
    c = Concord(CONFIG, values={
        "port": port, "app_port": app.port, "dav_port": dav.port, "every": every,
        "user": getattr(dav, "user", USERS[0]),
        "cal_delete": cal_delete, "sync": sync,
        "calendar": "        calendar: %s" % calendar if calendar else ""},
        env={"CAL_PASSWORD": PASSWORD})
    c.start()
    return dav, app, c


def booking_made(dav, app, c, bid="B1", booking=MEETING):
    """A booking made in the app, once its event is in the calendar:
    (href, event)."""
    app.change(bid, dict(booking))

    def there():
        evs = [(h, e) for h, e in dav.events(dav.cal).items()
               if e.get("title") == booking["title"]]
        return evs[0] if len(evs) == 1 else None

    href, ev = wait_until(there, 10, "the event of %s in Radicale" % bid)
    c.wait_settled()
    return href, ev


def booking(app, bid):
    return app.records().get(bid)


def cal_poll(c, settle=True):
    """Read the calendar now (concord poll; again while the daemon's own
    poll holds it), and let the daemon merge what it found."""
    def read():
        _, out, _ = c.cli("poll", "--json", "cal.work", check=False)
        report = json.loads(out)
        return None if report.get("busy") or "another process" in report.get("error", "") \
            else report

    report = wait_until(read, 10, "a read of the calendar")
    assert report.get("complete"), report
    if settle:
        c.wait_settled()
    return report


def app_writes(app):
    return [r for r in app.writes() if r["method"] in ("POST", "PUT")]


# --- the tests ----------------------------------------------------------------


def test_a_booking_becomes_an_event_and_moves_with_it():
    # No calendar in the config: discovery finds it by its name.
    dav, app, c = setup(calendar="work")
    href, ev = booking_made(dav, app, c)
    assert href.startswith(dav.cal) and href.endswith(".ics"), href
    assert ev["start"] == instant(MEETING["start"]) and ev["end"] == instant(MEETING["end"])
    assert ev["location"] == "Chair 1" and ev["status"] == "confirmed" and ev["uid"]
    assert "discovery: the calendar of cal.work is %s" % dav.cal in c.log_text()

    # Someone moves the event in their calendar app, written in Bucharest's
    # zone: the booking moves to the same instant.
    etag = dav.put(href, ics(ev["uid"], MEETING["title"], "2026-05-04T11:30:00Z",
                             "2026-05-04T12:30:00Z", tz="Europe/Bucharest",
                             location="Chair 1"), etag=ev["etag"])
    wait_until(lambda: instant(booking(app, "B1")["start"]) == instant("2026-05-04T11:30:00Z"),
               10, "the booking to move")
    assert instant(booking(app, "B1")["end"]) == instant("2026-05-04T12:30:00Z")
    c.wait_settled()
    writes = len(app_writes(app))

    # The same meeting written again in London's zone is no change: nothing
    # is written either way. (A later edit shows the poll has read past it.)
    etag = dav.put(href, ics(ev["uid"], MEETING["title"], "2026-05-04T11:30:00Z",
                             "2026-05-04T12:30:00Z", tz="Europe/London", location="Chair 1"),
                   etag=etag)
    etag = dav.put(href, ics(ev["uid"], MEETING["title"], "2026-05-04T11:30:00Z",
                             "2026-05-04T12:30:00Z", tz="Europe/London", location="Chair 2"),
                   etag=etag)
    wait_until(lambda: booking(app, "B1")["location"] == "Chair 2", 10, "the new chair")
    c.wait_settled()
    assert len(app_writes(app)) == writes + 1, app_writes(app)[writes:]
    assert dav.etags(dav.cal)[href] == etag  # concord wrote nothing back

    # The app moves it again: the event keeps the zone it was written in.
    app.change("B1", {"start": "2026-05-05T08:00:00Z", "end": "2026-05-05T09:00:00Z"})
    wait_until(lambda: dav.events(dav.cal)[href]["start"] == instant("2026-05-05T08:00:00Z"), 10,
               "the event to move")
    ev = dav.events(dav.cal)[href]
    assert ev["tz"] == "Europe/London" and ev["location"] == "Chair 2", ev
    assert len(dav.etags(dav.cal)) == 1


def test_cancel_on_either_side():
    dav, app, c = setup(cal_delete="cancel")
    href1, _ = booking_made(dav, app, c, "B1")
    # The app deletes a booking: its event is cancelled, not deleted.
    app.delete("B1")
    wait_until(lambda: dav.events(dav.cal)[href1]["status"] == "cancelled", 10,
               "the event to be cancelled")

    # An event deleted in the calendar cancels its booking (the app's
    # delete mode: archive with status cancelled).
    href2, _ = booking_made(dav, app, c, "B2", dict(MEETING, title="Colour, Bea"))
    dav.delete(href2)
    wait_until(lambda: booking(app, "B2")["status"] == "cancelled", 10,
               "the booking to be cancelled")

    # An event cancelled in the calendar cancels its booking too.
    href3, ev3 = booking_made(dav, app, c, "B3", dict(MEETING, title="Trim, Cy"))
    dav.put(href3, ics(ev3["uid"], "Trim, Cy", MEETING["start"], MEETING["end"],
                       location="Chair 1", status="CANCELLED"), etag=ev3["etag"])
    wait_until(lambda: booking(app, "B3")["status"] == "cancelled", 10,
               "booking B3 to be cancelled")
    c.wait_settled()
    assert booking(app, "B1") is None  # deleted in the app, and not made again
    assert len(dav.etags(dav.cal)) == 2, dav.events(dav.cal)  # event 2 stays deleted


def test_concurrent_edits_follow_the_policy():
    dav, app, c = setup(every="1h", sync="    conflict: prefer\n    prefer: app")
    href, ev = booking_made(dav, app, c)
    c.cli("pause", "cal")
    app.change("B1", {"title": "Haircut, Ana (long)"})
    wait_until(lambda: c.cli_json("status")["systems"][1]["backlog"] == 1, 10, "the held write")
    dav.put(href, ics(ev["uid"], "Haircut, Ana M.", MEETING["start"], MEETING["end"],
                      location="Chair 3"), etag=ev["etag"])
    cal_poll(c, settle=False)
    wait_until(lambda: booking(app, "B1")["location"] == "Chair 3", 10, "the chair in the app")
    assert dav.events(dav.cal)[href]["title"] == "Haircut, Ana M."  # held, not written yet
    c.cli("resume", "cal")
    c.wait_settled()
    # The title was changed on both sides: the app wins (prefer: app); the
    # chair, changed in the calendar only, is taken on both sides.
    ev = dav.events(dav.cal)[href]
    assert ev["title"] == "Haircut, Ana (long)" and ev["location"] == "Chair 3", ev
    b = booking(app, "B1")
    assert b["title"] == "Haircut, Ana (long)" and b["location"] == "Chair 3", b
    settled = [x for x in c.cli_json("conflicts", "--all") if x.get("field") == "title"]
    assert len(settled) == 1 and settled[0]["state"] == "settled", settled


def test_a_newer_event_is_read_again_and_merged():
    dav, app, c = setup(every="1h")
    # Concord's start-up read must be over: a late one would read the edit
    # below before the held write goes, and that write would meet no 412.
    c.wait_first_poll("cal.work")
    href, ev = booking_made(dav, app, c)
    c.cli("pause", "cal")
    app.change("B1", {"title": "Haircut and colour, Ana"})
    wait_until(lambda: c.cli_json("status")["systems"][1]["backlog"] == 1, 10, "the held write")
    # Between concord's last read and its write, the event changes in the
    # calendar; concord has not read that yet.
    dav.put(href, ics(ev["uid"], MEETING["title"], MEETING["start"], MEETING["end"],
                      location="Chair 7"), etag=ev["etag"])
    c.cli("resume", "cal")
    wait_until(lambda: dav.events(dav.cal)[href]["title"] == "Haircut and colour, Ana", 10,
               "the merged write")
    c.wait_settled()
    ev = dav.events(dav.cal)[href]
    assert ev["location"] == "Chair 7", ev  # the calendar's edit is kept
    assert booking(app, "B1")["location"] == "Chair 7"  # and reached the app
    assert booking(app, "B1")["title"] == "Haircut and colour, Ana"
    log = c.log_text()
    assert "answered 412: the event changed since concord read it" in log
    assert c.cli_json("conflicts", "--all") == []
    assert c.cli_json("failed") == []


def test_a_refused_sync_token_reads_the_calendar_whole():
    dav, app, c = setup(every="1h")
    href1, _ = booking_made(dav, app, c, "B1")
    booking_made(dav, app, c, "B2", dict(MEETING, title="Colour, Bea"))
    dav.put(dav.cal + "walk-in.ics", ics("walk-in", "Walk-in", "2026-05-06T09:00:00Z",
                                     "2026-05-06T09:30:00Z"), create=True)
    cal_poll(c)
    wait_until(lambda: len(app.records()) == 3, 10, "the walk-in's booking")
    # Radicale forgets every token it gave (its cache is gone), and the
    # calendar changes: an event added, one deleted.
    shutil.rmtree(os.path.join(dav.storage, "collection-root", dav.user, "work",
                               ".Radicale.cache", "sync-token"))
    dav.put(dav.cal + "late.ics", ics("late", "Late one", "2026-05-07T09:00:00Z",
                                  "2026-05-07T09:30:00Z"), create=True)
    dav.delete(href1)
    # The walk-in moves to another href (re-imported): the same UID.
    dav.delete(dav.cal + "walk-in.ics")
    dav.put(dav.cal + "imported-walk-in.ics", ics("walk-in", "Walk-in", "2026-05-06T09:00:00Z",
                                              "2026-05-06T10:00:00Z"), create=True)
    report = cal_poll(c)
    assert report["resynced"] and report["missing"] == 1, report
    wait_until(lambda: len(app.records()) == 4, 10, "the late one's booking")
    c.wait_settled()
    titles = sorted(b["title"] for b in app.records().values())
    assert titles == ["Colour, Bea", "Haircut, Ana", "Late one", "Walk-in"], titles
    assert booking(app, "B1")["status"] == "cancelled"
    walk_in = [b for b in app.records().values() if b["title"] == "Walk-in"][0]
    assert walk_in["status"] == "confirmed", walk_in  # moved, not deleted
    assert instant(walk_in["end"]) == instant("2026-05-06T10:00:00Z"), walk_in
    # Nothing was made twice, on either side.
    assert len(dav.etags(dav.cal)) == 3
    assert len([w for w in app.writes() if w["method"] == "POST"]) == 2
    # A read after it goes on from the new token, with nothing to do.
    report = cal_poll(c)
    assert not report["resynced"] and report["new"] == 0 and report["drifted"] == 0, report
    # The app deletes a booking: with on_delete: delete, its event goes.
    app.delete("B2")
    wait_until(lambda: len(dav.etags(dav.cal)) == 2, 10, "event B2 to be deleted")


# --- a truncated sync-collection (507), which Radicale never sends ----------


class TruncatingServer:
    """A CalDAV calendar at /cal/ that answers sync-collection in pieces:
    the first answer names one event and, for the calendar itself, 507
    Insufficient Storage with a token for the partial state (RFC 6578
    §3.6, the shape test_caldav_xml.c records); asked again from that
    token, it names the second event and the final token. multiget gives
    the events. Records the sync tokens it was asked with."""

    EVENTS = {
        "/cal/one.ics": ('"e1"', ics("one", "First", "2026-05-04T09:00:00Z",
                                     "2026-05-04T10:00:00Z")),
        "/cal/two.ics": ('"e2"', ics("two", "Second", "2026-05-05T09:00:00Z",
                                     "2026-05-05T10:00:00Z")),
    }

    def __init__(self):
        outer = self
        self.tokens = []

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_REPORT(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                root = ET.fromstring(body)
                if root.tag == DAV + "sync-collection":
                    tok = root.find(DAV + "sync-token")
                    tok = (tok.text or "") if tok is not None else ""
                    outer.tokens.append(tok)
                    self.answer(outer.sync(tok))
                else:
                    hrefs = [h.text for h in root.iter(DAV + "href")]
                    self.answer(outer.multiget(hrefs))

            def answer(self, text):
                data = text.encode()
                self.send_response(207)
                self.send_header("Content-Type", "application/xml; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        harness.cleanup(self)

    @staticmethod
    def response(href, etag):
        return ('<d:response><d:href>%s</d:href><d:propstat><d:prop><d:getetag>%s</d:getetag>'
                '</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>'
                % (href, etag))

    def sync(self, token):
        if token == "":
            items = self.response("/cal/one.ics", '"e1"') + (
                '<d:response><d:href>/cal/</d:href>'
                '<d:status>HTTP/1.1 507 Insufficient Storage</d:status></d:response>')
            new = "http://example.com/sync/1"
        elif token == "http://example.com/sync/1":
            items, new = self.response("/cal/two.ics", '"e2"'), "http://example.com/sync/2"
        else:
            items, new = "", token
        return ('<?xml version="1.0" encoding="utf-8"?><d:multistatus xmlns:d="DAV:">%s'
                '<d:sync-token>%s</d:sync-token></d:multistatus>' % (items, new))

    def multiget(self, hrefs):
        parts = []
        for h in hrefs:
            etag, text = self.EVENTS[h]
            data = text.replace("&", "&amp;").replace("<", "&lt;")
            parts.append('<d:response><d:href>%s</d:href><d:propstat><d:prop><d:getetag>%s'
                         '</d:getetag><c:calendar-data>%s</c:calendar-data></d:prop>'
                         '<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>'
                         % (h, etag, data))
        return ('<?xml version="1.0" encoding="utf-8"?><d:multistatus xmlns:d="DAV:" '
                'xmlns:c="urn:ietf:params:xml:ns:caldav">%s</d:multistatus>' % "".join(parts))

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def test_a_truncated_sync_is_read_on_from_its_token():
    fake = TruncatingServer()

    class Dav:  # what setup() needs of the server
        port = fake.port
        cal = "/cal/"

    dav, app, c = setup(every="1h", calendar="/cal/", dav=Dav())
    # The daemon's first read, at its start.
    wait_until(lambda: len(app.records()) == 2, 10, "both bookings")
    assert fake.tokens == ["", "http://example.com/sync/1"], fake.tokens
    assert sorted(b["title"] for b in app.records().values()) == ["First", "Second"]
    report = cal_poll(c)
    assert fake.tokens[-1] == "http://example.com/sync/2", fake.tokens
    assert report["new"] == 0 and report["pages"] == 1, report


if __name__ == "__main__":
    harness.run_tests(globals())
