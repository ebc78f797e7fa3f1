#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A booking app's appointments, a CalDAV calendar and a Google calendar: narrated.

Starts three systems on 127.0.0.1 — the booking app (tests/sims/target.py),
which announces bookings by signed webhook and takes writes through its REST
API; a real CalDAV server, Radicale (the Debian package's /usr/bin/radicale,
with a temporary storage folder); the Google Calendar simulator
(tests/sims/gcal.py) — then concord with concord.yaml from this directory,
run from a temporary copy so that its SQLite file lands there. Then it makes
a booking in the app, moves its event in the calendar and cancels the
booking in the app, and shows what each system saw.

    /usr/bin/python3 examples/bookings-calendar/demo.py [--keep-running] [--fixed-ports]

Ports are free ones unless --fixed-ports (those in concord.yaml: 8520-8523).
CONCORD_BIN names the binary (default build/dev/concord). Exits 0 when every
step was observed, 1 with a message saying what did not happen otherwise.
"""

import base64
import datetime
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
import zoneinfo

HERE = os.path.dirname(os.path.abspath(__file__))
# The plumbing every example's demo shares (narration, ports, starting and
# stopping): examples/demo_lib.py.
sys.path.insert(0, os.path.dirname(HERE))
from demo_lib import (WAIT_S, DemoFailed, check_binary, config_text,  # noqa: E402
                      harness, last_seq, main, pick_ports, say, show, start_concord,
                      wait_for)
from gcal_harness import GcalSim  # noqa: E402

# The ports written in concord.yaml, which README.md's "by hand" section uses.
FIXED = {"concord": 8520, "app": 8521, "radicale": 8522, "google": 8523}

RADICALE = "/usr/bin/radicale"
DAV_USER = "salon"                 # as concord.yaml names it
CALENDAR = "/salon/bookings/"      # concord finds it by its name, "bookings"
ZONE = "Europe/Bucharest"
# The simulator's OAuth client, as concord.yaml names it.
GOOGLE_CLIENT_SECRET = "GOCSPX-concord-sim-secret"

ANA = {"title": "Haircut, Ana", "start": "2026-05-04T09:00:00Z",
       "end": "2026-05-04T10:00:00Z", "status": "confirmed", "location": "Chair 1"}
MOVED = ("2026-05-04T11:30:00Z", "2026-05-04T12:30:00Z")


def settle(concord):
    try:
        concord.wait_settled(WAIT_S)
    except AssertionError as e:
        raise DemoFailed("concord did not settle: %s" % e)


# --- Radicale ---------------------------------------------------------------


class Radicale:
    """/usr/bin/radicale on 127.0.0.1, with a storage folder and a plain
    htpasswd file of its own, and a client speaking to it as DAV_USER."""

    def __init__(self, port, password):
        """On `port`, or on a free one if it is 0 (another one, should that
        be taken before Radicale binds it)."""
        if not os.access(RADICALE, os.X_OK):
            raise DemoFailed("no %s: bash scripts/install-deps.sh --test installs it "
                             "(the Debian package radicale)" % RADICALE)
        self.password = password
        self.proc = None
        self.dir = tempfile.mkdtemp(prefix="concord-bookings-radicale-", dir="/tmp")
        users = os.path.join(self.dir, "users")
        with open(users, "w") as f:
            f.write("%s:%s\n" % (DAV_USER, password))
        self.log_path = os.path.join(self.dir, "radicale.log")
        self.log = open(self.log_path, "ab")
        for attempt in range(1 if port else 3):
            self.port = port or harness.free_port()
            conf = os.path.join(self.dir, "config")
            with open(conf, "w") as f:
                f.write("[server]\nhosts = 127.0.0.1:%d\n"
                        "[auth]\ntype = htpasswd\nhtpasswd_filename = %s\n"
                        "htpasswd_encryption = plain\ndelay = 0\n"
                        "[rights]\ntype = owner_only\n"
                        "[storage]\nfilesystem_folder = %s\n"
                        "[logging]\nlevel = warning\n"
                        % (self.port, users, os.path.join(self.dir, "collections")))
            since = os.path.getsize(self.log_path)
            self.proc = subprocess.Popen([RADICALE, "--config", conf], stdout=self.log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         preexec_fn=harness._die_with_parent)
            try:
                harness.wait_until(self._up_or_exited, WAIT_S,
                                   "Radicale to answer on port %d" % self.port)
            except AssertionError as e:
                self.stop()
                raise DemoFailed("Radicale did not start: %s" % e)
            if self.proc.poll() is None:
                return
            with open(self.log_path, errors="replace") as f:
                f.seek(since)
                said = f.read()[-2000:]
            if "Address already in use" not in said:
                break
        self.stop()
        raise DemoFailed("Radicale did not start on port %d: %s" % (self.port, said))

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def _up_or_exited(self):
        if self.proc.poll() is not None:
            return True
        try:
            return self.request("OPTIONS", "/")[0] == 200
        except OSError:
            return False

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
        """(status, body text, headers with lower-case names)."""
        h = {"Authorization": "Basic " + base64.b64encode(
            ("%s:%s" % (DAV_USER, self.password)).encode()).decode()}
        h.update(headers or {})
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body.encode() if body else None, headers=h)
            r = conn.getresponse()
            return r.status, r.read().decode("utf-8", "replace"), {
                k.lower(): v for k, v in r.getheaders()}
        finally:
            conn.close()

    def events(self):
        """{href: event} of the calendar: parse_event() of each, with its etag."""
        status, text, _ = self.request(
            "PROPFIND", CALENDAR, '<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop>'
            '<d:getetag/></d:prop></d:propfind>', {"Depth": "1"})
        if status != 207:
            raise DemoFailed("PROPFIND %s answered %d: %s" % (CALENDAR, status, text[:200]))
        out = {}
        for resp in ET.fromstring(text).iter("{DAV:}response"):
            href = resp.find("{DAV:}href").text
            etag = resp.find(".//{DAV:}getetag")
            if href.endswith("/") or etag is None:
                continue
            st, ics_text, _ = self.request("GET", href)
            if st == 200:
                out[href] = dict(parse_event(ics_text), etag=etag.text)
        return out


def parse_event(text):
    """The VEVENT's uid, title, location, status (lower-case, "confirmed"
    when absent), and start and end as aware datetimes (tz: DTSTART's TZID)."""
    ev = {"status": "confirmed", "tz": None}
    body = re.sub(r"\r?\n[ \t]", "", text)
    body = body.split("BEGIN:VEVENT", 1)[-1].split("END:VEVENT", 1)[0]
    for line in body.splitlines():
        head, _, value = line.partition(":")
        name, *params = head.split(";")
        params = dict(p.split("=", 1) for p in params if "=" in p)
        if name in ("UID", "SUMMARY", "LOCATION"):
            ev[{"UID": "uid", "SUMMARY": "title", "LOCATION": "location"}[name]] = \
                re.sub(r"\\([\\;,])", r"\1", value)
        elif name == "STATUS":
            ev["status"] = value.lower()
        elif name in ("DTSTART", "DTEND"):
            if value.endswith("Z"):
                t = datetime.datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(
                    tzinfo=datetime.timezone.utc)
            else:
                t = datetime.datetime.strptime(value, "%Y%m%dT%H%M%S").replace(
                    tzinfo=zoneinfo.ZoneInfo(params["TZID"]))
                if name == "DTSTART":
                    ev["tz"] = params["TZID"]
            ev["start" if name == "DTSTART" else "end"] = t
    return ev


def moved_ics(uid, title, location, start, end):
    """The event as a person's calendar app writes it after a move: local
    times in ZONE, with the zone's VTIMEZONE."""
    def local(name, iso):
        t = instant(iso).astimezone(zoneinfo.ZoneInfo(ZONE))
        return "%s;TZID=%s:%s" % (name, ZONE, t.strftime("%Y%m%dT%H%M%S"))

    def text(v):
        return re.sub(r"([\\;,])", r"\\\1", v)

    return "\r\n".join([
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//A calendar app//EN",
        "BEGIN:VTIMEZONE", "TZID:" + ZONE,
        "BEGIN:DAYLIGHT", "TZOFFSETFROM:+0200", "TZOFFSETTO:+0300",
        "DTSTART:19700329T030000", "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU", "END:DAYLIGHT",
        "BEGIN:STANDARD", "TZOFFSETFROM:+0300", "TZOFFSETTO:+0200",
        "DTSTART:19701025T040000", "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU", "END:STANDARD",
        "END:VTIMEZONE",
        "BEGIN:VEVENT", "UID:" + uid, "DTSTAMP:20260401T000000Z",
        local("DTSTART", start), local("DTEND", end),
        "SUMMARY:" + text(title), "LOCATION:" + text(location),
        "END:VEVENT", "END:VCALENDAR", ""])


def instant(iso):
    return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00"))


def utc(t):
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_text(t):
    return t.astimezone(zoneinfo.ZoneInfo(ZONE)).strftime("%H:%M") + " " + ZONE


# --- what the systems hold ---------------------------------------------------


def the_event(dav, title):
    """(href, event) of the one event titled so, else None."""
    evs = [(h, e) for h, e in dav.events().items() if e.get("title") == title]
    return evs[0] if len(evs) == 1 else None


def google_events(google):
    """The Google calendar's events, cancelled ones too."""
    return list(google.events(deleted=True).values())


def the_google_event(google, title):
    evs = [e for e in google_events(google) if e.get("summary") == title]
    return evs[0] if len(evs) == 1 else None


def google_when(ev):
    return "%s to %s (%s)" % (ev["start"].get("dateTime"), ev["end"].get("dateTime"),
                              ev["start"].get("timeZone"))


def google_writes(google, since=0):
    return [r for r in google.requests(since=since)
            if r["method"] != "GET" and r["path"].startswith("/calendar/")]


def app_change(app, bid, record, event, what):
    out = app.change(bid, record, event=event)
    if out.get("status") is None:
        raise DemoFailed("the app could not reach concord: %s" % out.get("error"))
    if out["status"] != 202:
        raise DemoFailed("concord refused the app's webhook for %s: %s %s"
                         % (what, out["status"], show(out["body"])))
    return out


def run(args, parts):
    env = {
        "APP_WEBHOOK_SECRET": os.environ.get("APP_WEBHOOK_SECRET", "demo-app-secret"),
        "CALDAV_PASSWORD": os.environ.get("CALDAV_PASSWORD", "demo-caldav-pass"),
        "GOOGLE_CLIENT_SECRET": GOOGLE_CLIENT_SECRET,
    }
    binary = check_binary()
    ports = pick_ports(args, FIXED)

    say("1. Starting the three systems concord will keep in agreement:")
    try:
        app = harness.Sim(
            port=ports["app"], resource="bookings", id_prefix="B",
            webhook_url="http://127.0.0.1:%d/webhooks/app" % ports["concord"],
            webhook_secret=env["APP_WEBHOOK_SECRET"], signature_header="X-App-Signature",
            envelope="booking", event_key="event", idempotency_header="Idempotency-Key",
        )
        parts.append(app)
        google = GcalSim(port=ports["google"], seed=7)
        parts.append(google)
    except AssertionError as e:
        raise DemoFailed("a simulator did not start (is a port taken? try without "
                         "--fixed-ports): %s" % e)
    dav = Radicale(ports["radicale"], env["CALDAV_PASSWORD"])
    parts.append(dav)
    st, text, _ = dav.request("MKCALENDAR", CALENDAR)
    if st != 201:
        raise DemoFailed("MKCALENDAR %s answered %d: %s" % (CALENDAR, st, text[:200]))
    # The refresh token Google would give after the salon's consent
    # (`concord auth google` gets one from the real Google).
    env["GOOGLE_REFRESH_TOKEN"] = google.grant()["refresh_token"]
    ports.update(app=app.port, radicale=dav.port, google=google.port)
    say("the booking app on %s: a signed webhook whenever a booking changes" % app.url, 3)
    say("Radicale %s on %s: user %s, calendar %s (empty)"
        % (subprocess.run([RADICALE, "--version"], capture_output=True, text=True)
           .stdout.strip(), dav.url, DAV_USER, CALENDAR), 3)
    say("the Google Calendar simulator on %s: calendar primary, OAuth2 refresh token granted"
        % google.url, 3)

    concord = harness.Concord(config_text(HERE, FIXED, ports, repeated=("google",)), env=env,
                              tmp_prefix="concord-bookings-calendar-")
    parts.append(concord)
    say()
    say("2. Starting concord on %s with a copy of concord.yaml in %s" % (concord.url, concord.dir))
    start_concord(concord)
    say("concord is up: GET /healthz answers 200. It reads the CalDAV calendar every second",
        3)
    say("(sync-collection); Google is only written.", 3)

    say()
    say("3. Ana books a haircut in the app (booking B1); the app tells concord by webhook:")
    out = app_change(app, "B1", dict(ANA), "booking.created", "booking B1")
    say("%s: concord answered %s %s" % (show(ANA), out["status"], show(out["body"])), 3)
    href, ev = wait_for(lambda: the_event(dav, ANA["title"]), "the event of booking B1 in Radicale",
                        concord)
    wait_for(lambda: "discovery: the calendar of calendar.salon is %s" % CALENDAR
             in concord.log_text(), "concord's discovery of the calendar", concord)
    say("concord found the calendar by discovery (principal, calendar home, \"bookings\")", 3)
    say("and PUT the event to it (If-None-Match: *): %s" % href, 3)
    say("%s, %s to %s, %s, %s" % (ev["title"], utc(ev["start"]), utc(ev["end"]), ev["location"],
                                  ev["status"]), 5)
    gev = wait_for(lambda: the_google_event(google, ANA["title"]),
                   "the event of booking B1 in the Google calendar", concord)
    say("In Google, concord created event %s, in the salon's zone:" % gev["id"], 3)
    say("%s, %s, %s" % (gev["summary"], google_when(gev), gev["status"]), 5)
    if instant(gev["start"]["dateTime"]) != instant(ANA["start"]):
        raise DemoFailed("Google's event starts at %s, not %s"
                         % (gev["start"]["dateTime"], ANA["start"]))
    settle(concord)

    say()
    say("4. The receptionist moves the appointment in her calendar app, which writes it")
    say("   straight to Radicale in Bucharest time (PUT with If-Match on its ETag):")
    app_seq = last_seq(app)
    g_seq = last_seq(google)
    text = moved_ics(ev["uid"], ANA["title"], ANA["location"], *MOVED)
    st, body, _ = dav.request("PUT", href, text, {"Content-Type": "text/calendar; charset=utf-8",
                                                  "If-Match": ev["etag"]})
    if st not in (201, 204):
        raise DemoFailed("Radicale refused the move: %d %s" % (st, body[:200]))
    moved = dav.events()[href]
    say("DTSTART;TZID=%s:%s -> Radicale answered %d" % (
        ZONE, moved["start"].strftime("%Y%m%dT%H%M%S"), st), 3)
    wait_for(lambda: instant(app.records()["B1"]["start"]) == instant(MOVED[0]),
             "the move reaching booking B1 in the app", concord)
    say("concord read it with its next sync-collection and moved the booking (the same", 3)
    say("instant, in UTC):", 3)
    for r in app.requests(since=app_seq):
        if r["method"] in ("PUT", "POST", "PATCH") and r["applied"]:
            say("%s %s %s -> %s" % (r["method"], r["path"], show(r["body"]), r["status"]), 5)
    gev = wait_for(lambda: (lambda e: e if e and instant(e["start"]["dateTime"])
                            == instant(MOVED[0]) else None)(
                                the_google_event(google, ANA["title"])),
                   "the move reaching the Google event", concord)
    say("and Google followed: %s" % "; ".join(
        "%s %s -> %s" % (r["method"], r["path"], r["status"])
        for r in google_writes(google, g_seq)), 3)
    say("%s, %s" % (gev["summary"], google_when(gev)), 5)
    settle(concord)
    if dav.events()[href]["etag"] != moved["etag"]:
        raise DemoFailed("concord wrote the moved event back to Radicale")
    say("Nothing went back to Radicale: the event's ETag is still the one the move gave.", 3)

    say()
    say("5. Ana cancels her booking in the app: B1's status becomes cancelled:")
    g_seq = last_seq(google)
    out = app_change(app, "B1", {"status": "cancelled"}, "booking.cancelled", "the cancel")
    say("the app's webhook: concord answered %s" % out["status"], 3)
    wait_for(lambda: dav.events()[href]["status"] == "cancelled",
             "the event's STATUS:CANCELLED in Radicale", concord)
    ev = dav.events()[href]
    say("Radicale's event is cancelled, and kept: %s, %s to %s, STATUS:%s"
        % (ev["title"], local_text(ev["start"]), local_text(ev["end"]), ev["status"].upper()),
        3)
    wait_for(lambda: the_google_event(google, ANA["title"])["status"] == "cancelled",
             "the Google event's status cancelled", concord)
    say("and Google's event too: %s" % "; ".join(
        "%s %s %s -> %s" % (r["method"], r["path"], show(r["body"]), r["status"])
        for r in google_writes(google, g_seq)), 3)

    say()
    say("6. What each system saw:")
    settle(concord)
    writes = app.writes()
    say("the app: concord's writes, the move only:", 3)
    for r in writes:
        say("%s %s %s" % (r["method"], r["path"], show(r["body"])), 5)
    if len(writes) != 1 or writes[0]["method"] != "PUT":
        raise DemoFailed("the app should have seen one PUT (the move), not %d writes"
                         % len(writes))
    evs = dav.events()
    say("Radicale: %d event, %s" % (len(evs), "; ".join(
        "%s %s (%s)" % (h, e["title"], e["status"]) for h, e in evs.items())), 3)
    if len(evs) != 1:
        raise DemoFailed("Radicale holds %d events, not 1" % len(evs))
    gw = google_writes(google)
    say("Google: %d event; concord's writes: %s" % (len(google_events(google)), "; ".join(
        "%s -> %s" % (r["method"], r["status"]) for r in gw)), 3)
    if len(google_events(google)) != 1 or [r["method"] for r in gw] != ["POST", "PATCH",
                                                                        "PATCH"]:
        raise DemoFailed("Google should hold one event, made once and written twice")
    failed = concord.cli_json("failed")
    conflicts = concord.cli_json("conflicts", "--all")
    if failed or conflicts:
        raise DemoFailed("concord's inbox is not empty: %s %s" % (show(failed), show(conflicts)))
    say("No conflict, and concord's inbox is empty.", 3)

    ok = True
    for n, cmd in ((7, ("status",)), (8, ("history", "1"))):
        say()
        say("%d. concord %s" % (n, " ".join(cmd)))
        rc, stdout, stderr = concord.cli(*cmd, check=False)
        say((stdout + stderr).rstrip() or "(no output)", 3)
        if rc != 0:
            say("(exit code %d)" % rc, 3)
            ok = False
    if not ok:
        raise DemoFailed("a concord command above failed")

    if args.keep_running:
        say()
        say("Everything keeps running. Try, in another terminal:")
        say("curl -s -X POST %s/_sim/change -d '{\"id\": \"B2\", \"event\": \"booking.created\", "
            "\"record\": {\"title\": \"Colour, Bea\", \"start\": \"2026-05-05T08:00:00Z\", "
            "\"end\": \"2026-05-05T09:00:00Z\", \"status\": \"confirmed\", "
            "\"location\": \"Chair 2\"}}'" % app.url, 3)
        say("curl -s -u %s:%s %s%s     # the calendar (PROPFIND/GET its events)"
            % (DAV_USER, env["CALDAV_PASSWORD"], dav.url, CALENDAR), 3)
        say("curl -s '%s/_sim/events?deleted=1'   # Google's events" % google.url, 3)
        say("%s status -c %s" % (binary, concord.path), 3)
        say("Press Ctrl-C to stop.")
        try:
            while concord.running():
                time.sleep(0.5)
            say("concord exited with code %s" % concord.stop())
        except KeyboardInterrupt:
            say()


if __name__ == "__main__":
    sys.exit(main(__doc__, "concord example: a booking app's appointments, its CalDAV calendar "
                  "(both ways) and a Google calendar (one way)", run, FIXED))
