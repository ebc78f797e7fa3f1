#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A booking app's appointments kept in agreement with a Google calendar,
both ways, with the google_calendar kind (docs/calendars.md), against the
Google Calendar simulator (tests/sims/gcal.py): OAuth2 with a refresh
token, events written from canonical appointments, incremental reads by
sync token (the parameters Google refuses beside one left out), a 410
answered by a full read that duplicates nothing, a series read as one
record, push channels checked by their token and replaced before they
end, and `concord auth` through the simulator's consent page."""

import datetime
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from gcal_harness import GcalSim  # noqa: E402
from harness import Concord, Sim, wait_until  # noqa: E402

CLIENT_ID = "concord-sim.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-concord-sim-secret"
APP_SECRET = "app-secret"

GCAL = """
  gcal:
    kind: google_calendar
    base_url: {api}
    token_url: {token_url}
    authorize_url: {auth_url}
    client_id: concord-sim.apps.googleusercontent.com
    client_secret: env:GCAL_SECRET
    {refresh}
    {push}
    timeout_ms: 1000
    retry: {max_attempts: 6, base_ms: 50, cap_ms: 300, jitter: 0.1}
    delete_guard: off
    collections:
      events:
        model: booking
        map_in:
          title: title
          start: start.at
          end: end.at
          zone: start.tz
          where: location
          status: status
          rule: recurrence.rrule
          skipped: {jq: '(.recurrence.exdates // []) | join(",")'}
        map_out:
          title: title
          start.at: start
          end.at: end
          start.tz: zone
          end.tz: zone
          location: where{out_extra}
        poll: {every: 1h{poll_extra}}
"""

APP = """
  app:
    kind: http
    base_url: http://127.0.0.1:{app_port}
    timeout_ms: 2000
    retry: {max_attempts: 8, base_ms: 50, cap_ms: 300, jitter: 0.1}
    delete_guard: off
    webhook:
      path: /webhooks/app
      signature: {secret: env:APP_SECRET, header: X-App-Signature}
    collections:
      bookings:
        model: booking
        deleted_when: '.deleted == true'
        map_in: {title: title, start: start, end: end, zone: zone, where: where{in_extra}}
        map_out: {title: title, start: start, end: end, zone: zone, where: where, rule: rule,
                  skipped: skipped, status: status}
        create: POST /bookings
        update: PUT /bookings/{id}
        delete: DELETE /bookings/{id}
        idempotency_header: Idempotency-Key
"""

CONFIG = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=2000
log: {level: debug, format: json}
systems:
""" + GCAL.lstrip("\n") + APP.lstrip("\n") + """
models:
  booking:
    fields: {title: string, start: timestamp, end: timestamp, zone: string, where: string,
             rule: string, skipped: string, status: string, moves: string}
syncs:
  bookings:
    model: booking
    origin: [app, gcal]
    collections: [app.bookings, gcal.events]
"""


# A series booked in the app, with its occurrences moved (moves: the
# exceptions as JSON) and cancelled (skipped: exdates, comma-separated).
SERIES_OUT = """
          recurrence: {jq: 'if .rule then {rrule: .rule, exdates: ((.skipped // "") | split(",")
                             | map(select(. != "")))} else null end'}
          exceptions: {jq: 'if .moves then (.moves | fromjson) else null end'}"""
SERIES_IN = ", rule: rule, skipped: skipped, moves: moves"


def setup(push=True, ttl="1h", renew="10m", refresh=True, poll_extra="", start=True,
          out_extra="", in_extra="", **sim_flags):
    port = harness.free_port()
    sim = GcalSim(seed=7, **sim_flags)
    tok = sim.grant()
    app = Sim(resource="bookings", id_prefix="B", idempotency_header="Idempotency-Key",
              webhook_url="http://127.0.0.1:%d/webhooks/app" % port,
              webhook_secret=APP_SECRET, signature_header="X-App-Signature")
    values = {
        "port": port, "app_port": app.port, "api": sim.api_base, "token_url": sim.token_url,
        "auth_url": sim.auth_url,
        "refresh": "refresh_token: env:GCAL_REFRESH" if refresh else "",
        "push": ("public_url: http://127.0.0.1:%d\n    push: {ttl: %s, renew_before: %s}"
                 % (port, ttl, renew)) if push else "",
        "poll_extra": poll_extra, "out_extra": out_extra, "in_extra": in_extra,
    }
    c = Concord(CONFIG, values=values,
                env={"GCAL_SECRET": CLIENT_SECRET, "GCAL_REFRESH": tok["refresh_token"],
                     "APP_SECRET": APP_SECRET})
    if start:
        c.start()
        # The first poll: a full read, which ends with the sync token.
        wait_until(lambda: sim.stats()["full_reads"] >= 1, 10, "the first read of the calendar")
        if push:
            wait_until(lambda: sim.live_channels(), 10, "the watch channel")
    return sim, app, c


def api(sim, method=None, contains=""):
    return [r for r in sim.requests()
            if r["path"].startswith("/calendar/v3/") and (method is None or r["method"] == method)
            and contains in r["path"]]


def creates(sim):
    """events.insert requests (not watch channels)."""
    return [r for r in api(sim, "POST") if r["path"].split("?")[0].endswith("/events")]


def by_title(recs):
    return {r.get("title"): (k, r) for k, r in recs.items()}


def live(sim):
    return {e["id"]: e for e in sim.events().values() if e.get("status") != "cancelled"}


def test_an_app_booking_becomes_an_event_and_follows_it():
    sim, app, c = setup(push=False)
    # The create's answer is lost: Google made the event, concord does not know.
    sim.faults([{"match": {"method": "POST", "path_prefix": "/calendar/v3/calendars/primary/events"},
                 "reset": "after", "times": 1}])
    app.change("b1", {"title": "Haircut", "start": "2026-05-04T07:30:00Z",
                      "end": "2026-05-04T08:15:00Z", "zone": "Europe/Bucharest",
                      "where": "Salon 2"})
    ev = wait_until(lambda: next(iter(live(sim).values()), None), 10, "the event in the calendar")
    wait_until(lambda: len(creates(sim)) == 2, 10, "the create sent again")
    (post, again) = creates(sim)
    assert post["status"] == "lost", post
    body = post["body"]
    # Local time with offset and the IANA zone; the id comes from the
    # idempotency key, so the create sent again finds the event (409) and
    # links it: one event, never two.
    assert body["start"] == {"dateTime": "2026-05-04T10:30:00+03:00",
                             "timeZone": "Europe/Bucharest"}, body
    assert body["summary"] == "Haircut" and body["location"] == "Salon 2", body
    assert body["id"].startswith("concordv") and ev["id"] == body["id"], body
    assert post["headers"]["authorization"].startswith("Bearer "), post
    assert again["status"] == 409 and again["body"]["id"] == body["id"], again
    c.wait_settled()
    assert len(live(sim)) == 1
    sent = len(api(sim, "PATCH"))  # the record written to the event it linked
    # An edit is a PATCH of what changed only.
    app.change("b1", {"title": "Haircut", "start": "2026-05-04T08:00:00Z",
                      "end": "2026-05-04T08:45:00Z", "zone": "Europe/Bucharest",
                      "where": "Salon 2"})
    wait_until(lambda: live(sim)[ev["id"]]["start"]["dateTime"] == "2026-05-04T11:00:00+03:00",
               10, "the moved event")
    (patch,) = api(sim, "PATCH")[sent:]
    assert set(patch["body"]) == {"start", "end"}, patch
    # The same meeting in another zone is no change: nothing is written.
    app.change("b1", {"title": "Haircut", "start": "2026-05-04T09:00:00+01:00",
                      "end": "2026-05-04T09:45:00+01:00", "zone": "Europe/Bucharest",
                      "where": "Salon 2"})
    c.wait_settled()
    assert len(api(sim, "PATCH")) == sent + 1
    # Deleted in the app: deleted in the calendar.
    app.delete("b1")
    wait_until(lambda: ev["id"] not in live(sim), 10, "the event deleted")
    c.wait_settled()
    assert len(creates(sim)) == 2
    assert c.cli_json("failed") == []


def test_a_person_s_change_reaches_the_app_through_the_push_channel_and_a_restart():
    sim, app, c = setup()
    chans = wait_until(lambda: sim.live_channels(), 10, "a watch channel")
    assert len(chans) == 1, chans
    ch = chans[0]
    assert ch["address"] == "http://127.0.0.1:%d/webhooks/gcal" % c.port, ch
    assert len(ch["token"]) >= 32, ch
    t0 = time.monotonic()
    ev = sim.person_create({"summary": "Dentist", "location": "Clinic",
                            "start": {"dateTime": "2026-06-01T09:00:00+02:00",
                                      "timeZone": "Europe/Berlin"},
                            "end": {"dateTime": "2026-06-01T09:30:00+02:00",
                                    "timeZone": "Europe/Berlin"}})
    k, rec = wait_until(lambda: by_title(app.records()).get("Dentist"), 10, "the booking")
    # The poll is hourly: the channel's notification made concord read now.
    assert time.monotonic() - t0 < 8
    assert rec["start"] == "2026-06-01T07:00:00Z" and rec["zone"] == "Europe/Berlin", rec
    assert rec["where"] == "Clinic", rec
    # Incremental: the read after the first one sent the sync token.
    reads = api(sim, "GET", "/events?")
    assert any("syncToken=" in r["path"] for r in reads), reads
    sim.person_move(ev["id"], minutes=60)
    wait_until(lambda: app.records()[k]["start"] == "2026-06-01T08:00:00Z", 10, "the move")
    sim.person_cancel(ev["id"])
    wait_until(lambda: k not in app.records(), 10, "the booking deleted")
    c.wait_settled()
    # concord's own writes to the app did not come back to the calendar.
    assert creates(sim) == [] and api(sim, "PATCH") == []
    # A notification without the channel's token is refused, and reads nothing.
    n = len(api(sim, "GET", "/events?"))
    for headers in ({"X-Goog-Channel-ID": ch["id"], "X-Goog-Channel-Token": "wrong",
                     "X-Goog-Resource-State": "exists"},
                    {"X-Goog-Channel-ID": "someone-else", "X-Goog-Channel-Token": ch["token"],
                     "X-Goog-Resource-State": "exists"},
                    {"X-Goog-Resource-State": "exists"}):
        st, _, _ = c.http("POST", "/webhooks/gcal", b"", headers)
        assert st in (400, 401), (headers, st)
    time.sleep(0.3)  # a read the refusals made would have begun by now
    assert len(api(sim, "GET", "/events?")) == n
    # A restart goes on with the channel (its token is in the store): no
    # second one is opened, and notifications are still taken.
    c.stop()
    c.start()
    sim.person_create({"summary": "After restart", "start": {"dateTime": "2026-08-02T10:00:00Z"},
                       "end": {"dateTime": "2026-08-02T10:30:00Z"}})
    wait_until(lambda: "After restart" in by_title(app.records()), 10, "the booking")
    assert [x["id"] for x in sim.channels()] == [ch["id"]] and sim.live_channels()
    # Without public_url, the channel is stopped, not left to run out.
    c.stop()
    with open(c.path) as f:
        text = f.read()
    with open(c.path, "w") as f:
        f.write("\n".join(line for line in text.split("\n")
                          if not line.strip().startswith(("public_url:", "push:"))))
    c.start()
    wait_until(lambda: sim.live_channels() == [], 10, "the channel stopped")
    assert c.cli_json("failed") == []


def test_sync_token_reads_a_series_as_one_booking_and_a_410_duplicates_nothing():
    sim, app, c = setup(push=False, poll_extra=", list: \"GET /calendars/primary/events?"
                        "maxResults=2&timeMin={now-3650d}\"")
    evs = [sim.person_create({"summary": "Visit %d" % i,
                              "start": {"dateTime": "2026-07-0%dT10:00:00Z" % (i + 1)},
                              "end": {"dateTime": "2026-07-0%dT11:00:00Z" % (i + 1)}},
                             notify=False) for i in range(5)]
    first = c.cli_json("poll", "gcal.events")
    assert first["complete"] and first["new"] == 5, first
    wait_until(lambda: len(app.records()) == 5, 10, "five bookings")
    full = [r for r in api(sim, "GET", "/events?") if "syncToken" not in r["path"]]
    assert all("timeMin=" in r["path"] for r in full), full
    # Google refuses timeMin beside a sync token: it is left out then.
    sim.person_update(evs[0]["id"], {"summary": "Visit 0 (moved)"}, notify=False)
    again = c.cli_json("poll", "gcal.events")
    assert again["complete"] and again["read"] == 1 and not again["resynced"], again
    sync = [r for r in api(sim, "GET", "/events?") if "syncToken=" in r["path"]]
    assert sync and all("timeMin" not in r["path"] for r in sync), sync
    wait_until(lambda: "Visit 0 (moved)" in by_title(app.records()), 10, "the edit")
    # The token expires; meanwhile one event is deleted and one changed.
    sim.invalidate_sync()
    sim.person_cancel(evs[1]["id"], notify=False)
    sim.person_update(evs[2]["id"], {"summary": "Visit 2 (moved)"}, notify=False)
    c.wait_settled()
    app_creates = len(app.requests("POST"))
    third = c.cli_json("poll", "gcal.events")
    assert third["complete"] and third["resynced"], third
    assert third["read"] == 4 and third["missing"] == 1, third
    wait_until(lambda: "Visit 2 (moved)" in by_title(app.records()), 10, "the edit after the 410")
    wait_until(lambda: "Visit 1" not in by_title(app.records()), 10, "the deletion found")
    c.wait_settled()
    # Nothing was made twice, on either side.
    assert len(app.requests("POST")) == app_creates
    assert len(app.records()) == 4 and len(live(sim)) == 4
    assert creates(sim) == []
    # A series with an overridden and a cancelled instance is one booking:
    # Google lists the instances as events of their own.
    ev = sim.person_create({"summary": "Standup",
                            "start": {"dateTime": "2026-03-30T10:30:00",
                                      "timeZone": "Europe/Bucharest"},
                            "end": {"dateTime": "2026-03-30T10:45:00",
                                    "timeZone": "Europe/Bucharest"},
                            "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=6"]}, notify=False)
    inst = "%s_20260406T073000Z" % ev["id"]
    sim.person_update(inst, {"summary": "Standup (moved)"}, notify=False)
    sim.person_cancel("%s_20260413T073000Z" % ev["id"], notify=False)
    report = c.cli_json("poll", "gcal.events")
    assert report["complete"], report
    wait_until(lambda: "Standup" in by_title(app.records()), 10, "the booking")
    c.wait_settled()
    k, rec = by_title(app.records())["Standup"]
    assert rec["rule"] == "FREQ=WEEKLY;COUNT=6;BYDAY=MO", rec
    assert rec["skipped"] == "2026-04-13T07:30:00Z", rec
    # The next change of one instance reads the series whole again: still one.
    sim.person_update("%s_20260420T073000Z" % ev["id"], {"summary": "Standup (late)"},
                      notify=False)
    again = c.cli_json("poll", "gcal.events")
    assert again["complete"] and again["read"] == 1, again
    c.wait_settled()
    assert len(app.records()) == 5 and by_title(app.records())["Standup"][0] == k
    assert c.cli_json("failed") == []


def instant(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def writes(sim):
    return [r for r in api(sim) if r["method"] in ("POST", "PUT", "PATCH", "DELETE")
            and "/watch" not in r["path"]]


def test_an_app_series_carries_its_moved_and_cancelled_occurrences():
    sim, app, c = setup(push=False, out_extra=SERIES_OUT, in_extra=SERIES_IN)
    moves = [{"recurrence_id": "2026-05-11T07:30:00Z", "start": {"at": "2026-05-12T09:00:00Z"},
              "end": {"at": "2026-05-12T09:15:00Z"}, "location": "Room 9"}]
    app.change("s1", {"title": "Standup", "start": "2026-05-04T07:30:00Z",
                      "end": "2026-05-04T07:45:00Z", "zone": "Europe/Bucharest",
                      "where": "Room 1", "rule": "FREQ=WEEKLY;COUNT=6",
                      "skipped": "2026-05-18T07:30:00Z", "moves": json.dumps(moves)})
    series = wait_until(lambda: next((e for e in live(sim).values() if e.get("recurrence")),
                                     None), 10, "the series in the calendar")
    inst = "%s_20260511T073000Z" % series["id"]
    moved = wait_until(lambda: live(sim).get(inst), 10, "the moved occurrence")
    assert instant(moved["start"]["dateTime"]) == instant("2026-05-12T09:00:00Z"), moved
    assert instant(moved["end"]["dateTime"]) == instant("2026-05-12T09:15:00Z"), moved
    assert moved["location"] == "Room 9" and moved["summary"] == "Standup", moved
    assert any(line.startswith("EXDATE") and ("20260518T103000" in line or "20260518T073000Z" in line)
               for line in series["recurrence"]), series
    c.wait_settled()
    # Read back, the calendar's series is what concord wrote: no echo, and
    # nothing more is written either way.
    sent, app_sent = len(writes(sim)), len(app.writes())
    report = c.cli_json("poll", "gcal.events")
    assert report["complete"], report
    c.wait_settled()
    again = c.cli_json("poll", "gcal.events")
    assert again["complete"], again
    c.wait_settled()
    assert len(writes(sim)) == sent, writes(sim)[sent:]
    assert len(app.writes()) == app_sent
    assert [e for e in live(sim).values() if e.get("recurrence")] == [live(sim)[series["id"]]]
    assert c.cli_json("failed") == []


def test_a_moved_series_leaves_no_occurrence_at_its_old_time():
    # The app moves a series an hour later, its moved occurrence with it
    # (a new recurrence id). Google keeps the old exception as an event of
    # its own, named by the old occurrence: concord deletes it, or the
    # calendar would show a seventh Standup at the old time.
    sim, app, c = setup(push=False, out_extra=SERIES_OUT, in_extra=SERIES_IN)
    moves = [{"recurrence_id": "2026-05-11T07:30:00Z", "start": {"at": "2026-05-12T09:00:00Z"},
              "end": {"at": "2026-05-12T09:15:00Z"}, "location": "Room 9"}]
    booking = {"title": "Standup", "start": "2026-05-04T07:30:00Z", "end": "2026-05-04T07:45:00Z",
               "zone": "Europe/Bucharest", "where": "Room 1", "rule": "FREQ=WEEKLY;COUNT=6",
               "moves": json.dumps(moves)}
    app.change("s1", booking)
    series = wait_until(lambda: next((e for e in live(sim).values() if e.get("recurrence")),
                                     None), 10, "the series in the calendar")
    old = "%s_20260511T073000Z" % series["id"]
    wait_until(lambda: live(sim).get(old), 10, "the moved occurrence")
    c.wait_settled()
    moves = [{"recurrence_id": "2026-05-11T08:30:00Z", "start": {"at": "2026-05-12T10:00:00Z"},
              "end": {"at": "2026-05-12T10:15:00Z"}, "location": "Room 10"}]
    app.change("s1", dict(booking, start="2026-05-04T08:30:00Z", end="2026-05-04T08:45:00Z",
                          moves=json.dumps(moves)))
    new = "%s_20260511T083000Z" % series["id"]
    wait_until(lambda: (live(sim).get(new) or {}).get("location") == "Room 10", 10,
               "the occurrence moved with the series")
    c.wait_settled()
    assert old not in live(sim), live(sim)[old]
    # The calendar as a person sees it: six Standups, none at the old time.
    shown, _ = sim.list_all(singleEvents=True)
    starts = sorted(instant(e["start"]["dateTime"]) for e in shown
                    if e.get("summary") == "Standup")
    assert len(starts) == 6, starts
    assert instant("2026-05-11T07:30:00Z") not in starts, starts
    assert instant("2026-05-12T10:00:00Z") in starts, starts
    # Read back, the booking is as the app has it.
    assert c.cli_json("poll", "gcal.events")["complete"]
    c.wait_settled()
    rec = app.records()["s1"]
    assert rec["start"] == "2026-05-04T08:30:00Z" and not rec.get("skipped"), rec
    assert json.loads(rec["moves"])[0]["recurrence_id"] == "2026-05-11T08:30:00Z", rec
    assert c.cli_json("failed") == []


def test_a_token_google_refuses_on_the_sync_read_is_replaced_and_the_read_goes_on():
    # The first incremental read after the full one draws a 401: Google
    # dropped the access token before its expires_in (a password change,
    # a revoked session). The pushed change still arrives now, not at the
    # next hourly poll, and nothing of the full read is read again.
    sim, app, c = setup()
    refreshes = sim.stats()["oauth"]["access_tokens_issued"]
    full_reads = sim.stats()["full_reads"]
    sim.expire_access()
    sim.person_create({"summary": "Dentist", "start": {"dateTime": "2026-06-01T09:00:00Z"},
                       "end": {"dateTime": "2026-06-01T09:30:00Z"}})
    wait_until(lambda: "Dentist" in by_title(app.records()), 10, "the booking")
    assert sim.stats()["oauth"]["access_tokens_issued"] == refreshes + 1
    assert sim.stats()["full_reads"] == full_reads
    reads = api(sim, "GET", "/events?")
    assert any("syncToken=" in r["path"] for r in reads), reads
    c.wait_settled()
    assert c.cli_json("failed") == []


def test_channels_are_replaced_before_they_end():
    sim, app, c = setup(ttl="3s", renew="2s")
    first = wait_until(lambda: sim.live_channels(), 10, "a watch channel")[0]
    # Google cannot renew a channel: a new one opens before the first ends,
    # and the first is stopped.
    wait_until(lambda: len(sim.channels()) >= 2, 10, "a second channel")
    wait_until(lambda: {ch["id"]: ch for ch in sim.channels()}[first["id"]]["stopped"], 10,
               "the first channel stopped")
    second = sim.channels()[1]
    # It overlapped: opened while the first still lived, then the first stopped.
    assert second["created"] < first["expiration"], (first, second)
    assert sim.stats()["channel_stops"] >= 1
    # A change reaches the app through the new channel.
    sim.person_create({"summary": "Walk-in", "start": {"dateTime": "2026-08-01T10:00:00Z"},
                       "end": {"dateTime": "2026-08-01T10:30:00Z"}})
    wait_until(lambda: "Walk-in" in by_title(app.records()), 10, "the booking")
    # Every channel but the newest was stopped.
    wait_until(lambda: len(sim.live_channels()) == 1, 10, "one live channel")
    assert all(ch["stopped"] or ch["live"] for ch in sim.channels()), sim.channels()
    assert c.cli_json("failed") == []


def test_a_channel_google_cuts_short_is_replaced_halfway_not_at_once():
    # Google gives a channel less than asked (its own cap), here less than
    # renew_before: the channel is replaced halfway through its life, not
    # on every look at it (once a second, a channel each time).
    sim, app, c = setup(ttl="1h", renew="10m", channel_max_ttl_s=6)
    first = wait_until(lambda: sim.live_channels(), 10, "a watch channel")[0]
    second = wait_until(lambda: [ch for ch in sim.channels() if ch["id"] != first["id"]], 10,
                        "a second channel")[0]
    # Opened about halfway (3 s in), while the first still lived.
    assert second["created"] >= first["created"] + 2000, (first, second)
    assert second["created"] < first["expiration"], (first, second)
    sim.person_create({"summary": "Walk-in", "start": {"dateTime": "2026-08-01T10:00:00Z"},
                       "end": {"dateTime": "2026-08-01T10:30:00Z"}})
    wait_until(lambda: "Walk-in" in by_title(app.records()), 10, "the booking")
    assert len(sim.channels()) <= 3, sim.channels()
    assert c.cli_json("failed") == []


def test_concord_auth_gets_the_tokens_from_the_consent_page():
    sim, app, c = setup(push=False, refresh=False, start=False)
    p = subprocess.Popen([harness.concord_bin(), "auth", "gcal", "--timeout", "20", "-c", c.path],
                         cwd=c.dir, env=c.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = None
    for _ in range(50):
        line = p.stdout.readline().decode().strip()
        if line.startswith("http"):
            url = line
            break
    assert url and url.startswith(sim.auth_url), url
    assert "access_type=offline" in url and "prompt=consent" in url, url
    st, body, _ = sim.authorize(url)
    assert st == 200, (st, body)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0, (out, err)
    c.start()
    sim.person_create({"summary": "Consented", "start": {"dateTime": "2026-09-01T10:00:00Z"},
                       "end": {"dateTime": "2026-09-01T10:30:00Z"}}, notify=False)
    c.cli_json("poll", "gcal.events")
    wait_until(lambda: "Consented" in by_title(app.records()), 10, "the booking")
    assert sim.stats()["oauth"]["code_grants"] == 1
    assert c.cli_json("failed") == []


if __name__ == "__main__":
    harness.run_tests(globals())
