#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A booking app's appointments kept in agreement with a Microsoft 365
calendar, both ways, with the microsoft_graph kind (docs/calendars.md),
against the Graph simulator (tests/sims/graph.py): OAuth2 with rotated
refresh tokens, creates with transactionId, updates of what changed,
calendarView/delta with next and delta links and @removed, a 410 answered
by a full round that duplicates nothing, a series read from its master
whatever occurrences the delta names, change-notification subscriptions
with the validationToken handshake and clientState, renewed before they
end, a 429's Retry-After waited out, and `concord auth`."""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from graph_harness import GraphSim  # noqa: E402
from harness import Concord, Sim, wait_until  # noqa: E402

CLIENT_ID = "3e0c5a7b-9d1f-4a2b-8c6e-0f1a2b3c4d5e"
CLIENT_SECRET = "sim~secret.concord-graph"
APP_SECRET = "app-secret"

MS = """
  ms:
    kind: microsoft_graph
    base_url: {api}
    token_url: {token_url}
    authorize_url: {auth_url}
    client_id: 3e0c5a7b-9d1f-4a2b-8c6e-0f1a2b3c4d5e
    client_secret: env:MS_SECRET
    {refresh}
    {push}
    timeout_ms: 3000
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
        poll: {every: 1h}{ms_delete}
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
        idempotency_header: Idempotency-Key{app_delete}
"""

CONFIG = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=2000
log: {level: debug, format: json}
systems:
""" + MS.lstrip("\n") + APP.lstrip("\n") + """
models:
  booking:
    fields: {title: string, start: timestamp, end: timestamp, zone: string, where: string,
             rule: string, skipped: string, status: string, moves: string}
syncs:
  bookings:
    model: booking
    origin: [app, ms]
    collections: [app.bookings, ms.events]
"""


ARCHIVE = "\n        on_delete: archive\n        archive: {status: cancelled}"


# A series booked in the app, with its occurrences moved (moves: the
# exceptions as JSON) and cancelled (skipped: exdates, comma-separated).
SERIES_OUT = """
          recurrence: {jq: 'if .rule then {rrule: .rule, exdates: ((.skipped // "") | split(",")
                             | map(select(. != "")))} else null end'}
          exceptions: {jq: 'if .moves then (.moves | fromjson) else null end'}"""
SERIES_IN = ", rule: rule, skipped: skipped, moves: moves"


def setup(push=True, ttl="1h", renew="10m", refresh=True, start=True, archive=False,
          out_extra="", in_extra="", **sim_flags):
    port = harness.free_port()
    flags = dict(seed=7, subscription_min_minutes=0, revoke_old_refresh=True)
    flags.update(sim_flags)
    sim = GraphSim(**flags)
    tok = sim.grant()
    app = Sim(resource="bookings", id_prefix="B", idempotency_header="Idempotency-Key",
              webhook_url="http://127.0.0.1:%d/webhooks/app" % port,
              webhook_secret=APP_SECRET, signature_header="X-App-Signature")
    values = {
        "port": port, "app_port": app.port, "api": sim.api_base,
        "token_url": sim.token_url(), "auth_url": sim.auth_url(),
        "refresh": "refresh_token: env:MS_REFRESH" if refresh else "",
        "push": ("public_url: http://127.0.0.1:%d\n    push: {ttl: %s, renew_before: %s}"
                 % (port, ttl, renew)) if push else "",
        "ms_delete": ARCHIVE if archive else "",
        "app_delete": ARCHIVE if archive else "",
        "out_extra": out_extra, "in_extra": in_extra,
    }
    c = Concord(CONFIG, values=values,
                env={"MS_SECRET": CLIENT_SECRET, "MS_REFRESH": tok["refresh_token"],
                     "APP_SECRET": APP_SECRET})
    if start:
        c.start()
        wait_until(lambda: sim.stats()["delta_rounds"] >= 1, 10, "the first delta round")
        if push:
            wait_until(lambda: sim.live_subscriptions(), 10, "the subscription")
    return sim, app, c


def api(sim, method=None, contains=""):
    return [r for r in sim.requests()
            if r["path"].startswith("/v1.0/") and (method is None or r["method"] == method)
            and contains in r["path"]]


def creates(sim):
    return [r for r in api(sim, "POST") if r["path"].split("?")[0].endswith("/events")]


def by_title(recs):
    return {r.get("title"): (k, r) for k, r in recs.items()}


def masters(sim):
    """The mailbox's events and series masters (not occurrences)."""
    return {k: e for k, e in sim.events().items() if e.get("type") != "occurrence"}


def soon(days, hour):
    """A time `days` from today at hour:00 UTC, inside concord's delta window."""
    t = time.gmtime(time.time() + days * 86400)
    return "%04d-%02d-%02dT%02d:00:00Z" % (t.tm_year, t.tm_mon, t.tm_mday, hour)


def test_an_app_booking_becomes_an_event_through_a_429_and_follows_it():
    sim, app, c = setup(push=False)
    # The first create meets Graph's throttling: 429 with Retry-After.
    sim.faults([{"match": {"method": "POST", "path_prefix": "/v1.0/me/events"}, "status": 429,
                 "retry_after": "1", "times": 1}])
    start, end = soon(3, 7), soon(3, 8)
    app.change("b1", {"title": "Haircut", "start": start, "end": end,
                      "zone": "Europe/Bucharest", "where": "Salon 2"})
    ev = wait_until(lambda: next(iter(masters(sim).values()), None), 10, "the Graph event")
    (throttled, post) = creates(sim)
    assert (throttled["status"], post["status"]) == (429, 201), (throttled, post)
    # The retry schedule says 50 ms; Retry-After said a second. The same
    # transactionId both times.
    assert post["time"] - throttled["time"] >= 0.95, (throttled, post)
    assert throttled["body"]["transactionId"] == post["body"]["transactionId"]
    body = post["body"]
    # Local time in the zone's Windows name; transactionId makes a create
    # sent again after a lost answer find the first one.
    assert body["start"]["timeZone"] == "GTB Standard Time", body
    assert body["subject"] == "Haircut" and body["location"]["displayName"] == "Salon 2", body
    assert body["body"] == {"contentType": "text", "content": ""}, body
    assert body["transactionId"].startswith("concord-"), body
    assert post["headers"]["authorization"].startswith("Bearer "), post
    # An edit is a PATCH of what changed only.
    app.change("b1", {"title": "Haircut (long)", "start": start, "end": end,
                      "zone": "Europe/Bucharest", "where": "Salon 2"})
    wait_until(lambda: masters(sim)[ev["id"]]["subject"] == "Haircut (long)", 10, "the edit")
    (patch,) = api(sim, "PATCH")
    assert patch["body"] == {"subject": "Haircut (long)"}, patch
    # Deleted in the app: deleted in the mailbox.
    app.delete("b1")
    wait_until(lambda: ev["id"] not in masters(sim), 10, "the event deleted")
    c.wait_settled()
    assert len(creates(sim)) == 2 and len(api(sim, "DELETE")) == 1
    assert sim.stats()["transaction_replays"] == 0
    assert c.cli_json("failed") == []


def test_cancellation_follows_the_delete_mode_cancel_and_archive():
    # on_delete: archive with status cancelled on both sides: a meeting
    # cancelled in Outlook cancels the booking (kept, marked); a booking
    # deleted in the app cancels the meeting with Graph's cancel action.
    sim, app, c = setup(archive=True)
    ev = sim.person_create({"subject": "Checkup",
                            "start": {"dateTime": soon(3, 9), "timeZone": "UTC"},
                            "end": {"dateTime": soon(3, 10), "timeZone": "UTC"}})
    k, _ = wait_until(lambda: by_title(app.records()).get("Checkup"), 10, "the booking")
    sim.person_cancel(ev["id"])
    wait_until(lambda: app.records()[k].get("status") == "cancelled", 10, "the booking cancelled")
    assert app.records()[k]["title"] == "Checkup"
    app.change("b9", {"title": "Massage", "start": soon(5, 9), "end": soon(5, 10)})
    made = wait_until(lambda: {e["subject"]: e for e in masters(sim).values()}.get("Massage"),
                      10, "the meeting")
    app.delete("b9")
    wait_until(lambda: made["id"] not in masters(sim), 10, "the meeting cancelled")
    (cancel,) = api(sim, "POST", "/cancel")
    assert cancel["path"] == "/v1.0/me/events/%s/cancel" % made["id"], cancel
    c.wait_settled()
    assert api(sim, "DELETE") == []
    assert c.cli_json("failed") == []


def test_subscription_handshake_notifications_and_a_restart():
    sim, app, c = setup()
    sub = wait_until(lambda: sim.live_subscriptions(), 10, "a subscription")[0]
    assert sub["notificationUrl"] == "http://127.0.0.1:%d/webhooks/ms" % c.port, sub
    (val,) = [v for v in sim.validations() if v["url"].startswith(sub["notificationUrl"])][:1]
    assert val["status"] == 200 and val["content_type"].startswith("text/plain"), val
    assert val["body"] == val["token"] and val["seconds"] < 10, val
    t0 = time.monotonic()
    ev = sim.person_create({"subject": "Dentist", "location": {"displayName": "Clinic"},
                            "start": {"dateTime": soon(5, 9)[:-1], "timeZone": "W. Europe Standard Time"},
                            "end": {"dateTime": soon(5, 10)[:-1], "timeZone": "W. Europe Standard Time"}})
    k, rec = wait_until(lambda: by_title(app.records()).get("Dentist"), 10, "the booking")
    assert time.monotonic() - t0 < 8  # the poll is hourly: the notification made it read
    assert rec["zone"] == "Europe/Berlin" and rec["where"] == "Clinic", rec
    sim.person_update(ev["id"], {"subject": "Dentist (moved)"})
    wait_until(lambda: app.records()[k]["title"] == "Dentist (moved)", 10, "the edit")
    sim.person_cancel(ev["id"])
    wait_until(lambda: k not in app.records(), 10, "the booking deleted")
    c.wait_settled()
    assert creates(sim) == [] and api(sim, "PATCH", "/events") == []
    # Notifications without the subscription's clientState are refused.
    n = sim.stats()["delta_reads"]
    forged = {"value": [{"subscriptionId": sub["id"], "clientState": "wrong",
                         "changeType": "updated", "resource": "Users/x/Events/y"}]}
    st, _, _ = c.http("POST", "/webhooks/ms", json.dumps(forged).encode(),
                      {"Content-Type": "application/json"})
    assert st == 401, st
    forged["value"][0].update(subscriptionId="someone-else", clientState=sub["clientState"])
    st, _, _ = c.http("POST", "/webhooks/ms", json.dumps(forged).encode(),
                      {"Content-Type": "application/json"})
    assert st == 401, st
    time.sleep(0.3)
    assert sim.stats()["delta_reads"] == n
    # A restart goes on with the same subscription (its clientState is in
    # the store): nothing leaks, and notifications are still taken.
    made = sim.stats()["subscriptions_created"]
    c.stop()
    c.start()
    sim.person_create({"subject": "After restart",
                       "start": {"dateTime": soon(7, 9), "timeZone": "UTC"},
                       "end": {"dateTime": soon(7, 10), "timeZone": "UTC"}})
    wait_until(lambda: "After restart" in by_title(app.records()), 10, "the booking")
    assert sim.stats()["subscriptions_created"] == made
    assert [s["id"] for s in sim.live_subscriptions()] == [sub["id"]]
    # Lifecycle notifications: a renewal asked for is made at once; a
    # removed subscription is made again.
    sim.lifecycle(sub["id"], "reauthorizationRequired")
    wait_until(lambda: sim.stats()["renewals"] == 1, 10, "the renewal Graph asked for")
    sim.lifecycle(sub["id"], "subscriptionRemoved")
    wait_until(lambda: [s["id"] for s in sim.live_subscriptions()] not in ([], [sub["id"]]), 10,
               "a new subscription")
    assert len(sim.live_subscriptions()) == 1
    # Without public_url, the subscription is deleted, not left to run out.
    c.stop()
    with open(c.path) as f:
        text = f.read()
    with open(c.path, "w") as f:
        f.write("\n".join(line for line in text.split("\n")
                          if not line.strip().startswith(("public_url:", "push:"))))
    c.start()
    wait_until(lambda: sim.live_subscriptions() == [], 10, "the subscription deleted")
    assert c.cli_json("failed") == []


def test_subscriptions_are_renewed_and_made_again():
    sim, app, c = setup(ttl="3s", renew="2s")
    sub = wait_until(lambda: sim.live_subscriptions(), 10, "a subscription")[0]
    # Renewed with a PATCH before it ends: the same subscription lives on.
    wait_until(lambda: sim.stats()["renewals"] >= 1, 10, "a renewal")
    assert [s["id"] for s in sim.live_subscriptions()] == [sub["id"]]
    # Graph drops it (or it ran out): the PATCH finds it gone, another is made.
    sim.expire_subscriptions()
    wait_until(lambda: sim.live_subscriptions() and
               sim.live_subscriptions()[0]["id"] != sub["id"], 10, "a new subscription")
    sim.person_create({"subject": "Walk-in", "start": {"dateTime": soon(6, 9), "timeZone": "UTC"},
                       "end": {"dateTime": soon(6, 10), "timeZone": "UTC"}})
    wait_until(lambda: "Walk-in" in by_title(app.records()), 10, "the booking")
    assert len(sim.live_subscriptions()) == 1
    assert c.cli_json("failed") == []


def test_delta_reads_a_series_from_its_master_and_a_410_duplicates_nothing():
    sim, app, c = setup(push=False, delta_page_size=2)
    evs = [sim.person_create({"subject": "Visit %d" % i,
                              "start": {"dateTime": soon(i + 1, 10), "timeZone": "UTC"},
                              "end": {"dateTime": soon(i + 1, 11), "timeZone": "UTC"}},
                             notify=False) for i in range(5)]
    first = c.cli_json("poll", "ms.events")
    assert first["complete"] and first["new"] == 5 and first["pages"] >= 3, first
    wait_until(lambda: len(app.records()) == 5, 10, "five bookings")
    sim.person_update(evs[0]["id"], {"subject": "Visit 0 (moved)"}, notify=False)
    sim.person_cancel(evs[3]["id"], notify=False)
    # Moved out of the delta's window: Graph says @removed, but it is there.
    far = soon(505, 10)
    sim.person_move(evs[4]["id"], minutes=500 * 24 * 60)
    again = c.cli_json("poll", "ms.events")
    assert again["complete"] and not again["resynced"] and again["deleted"] == 1, again
    wait_until(lambda: "Visit 0 (moved)" in by_title(app.records()), 10, "the edit")
    wait_until(lambda: "Visit 3" not in by_title(app.records()), 10, "the deletion")
    wait_until(lambda: by_title(app.records())["Visit 4"][1]["start"] == far, 10,
               "the booking moved, not deleted")
    sim.invalidate_delta()
    sim.person_cancel(evs[1]["id"], notify=False)
    sim.person_update(evs[2]["id"], {"subject": "Visit 2 (moved)"}, notify=False)
    c.wait_settled()
    app_creates = len(app.requests("POST"))
    third = c.cli_json("poll", "ms.events")
    assert third["complete"] and third["resynced"], third
    # Visit 1 is gone; Visit 4, outside the window, is not listed but kept.
    assert third["read"] == 2 and third["missing"] == 1, third
    wait_until(lambda: "Visit 2 (moved)" in by_title(app.records()), 10, "the edit after the 410")
    wait_until(lambda: "Visit 1" not in by_title(app.records()), 10, "the deletion found")
    c.wait_settled()
    assert len(app.requests("POST")) == app_creates
    assert len(app.records()) == 3 and len(masters(sim)) == 3
    assert creates(sim) == []
    # A series: the delta names its occurrences, never its master.
    first = soon(2, 8)
    ev = sim.person_create({"subject": "Standup",
                            "start": {"dateTime": first, "timeZone": "UTC"},
                            "end": {"dateTime": first[:11] + "08:15:00Z", "timeZone": "UTC"},
                            "recurrence": {"pattern": {"type": "daily", "interval": 1},
                                           "range": {"type": "numbered",
                                                     "startDate": first[:10],
                                                     "numberOfOccurrences": 5}}},
                           notify=False)
    report = c.cli_json("poll", "ms.events")
    # The delta lists five occurrences, over three pages; they are one series.
    assert report["complete"] and report["new"] == 1 and report["pages"] >= 3, report
    wait_until(lambda: "Standup" in by_title(app.records()), 10, "the booking")
    k, rec = by_title(app.records())["Standup"]
    assert rec["rule"] == "FREQ=DAILY;COUNT=5", rec
    assert rec["skipped"] == "", rec
    # One occurrence deleted: the delta names it only by its own id; the
    # series is read again and has an exdate.
    occ = sorted((e for e in sim.events(start=soon(-1, 0), end=soon(30, 0)).values()
                  if e.get("seriesMasterId") == ev["id"]), key=lambda e: e["start"]["dateTime"])
    sim.person_cancel(occ[2]["id"], notify=False)
    again = c.cli_json("poll", "ms.events")
    assert again["complete"], again
    wait_until(lambda: app.records()[k]["skipped"] != "", 10, "the exdate")
    assert app.records()[k]["skipped"].startswith(occ[2]["start"]["dateTime"][:10]), \
        app.records()[k]
    c.wait_settled()
    assert len(app.records()) == 4 and by_title(app.records())["Standup"][0] == k
    assert creates(sim) == []
    assert c.cli_json("failed") == []


def writes(sim):
    return [r for r in api(sim) if r["method"] in ("POST", "PUT", "PATCH", "DELETE")
            and "/subscriptions" not in r["path"]]


def test_an_app_series_carries_its_moved_and_cancelled_occurrences():
    sim, app, c = setup(push=False, out_extra=SERIES_OUT, in_extra=SERIES_IN)
    first, moved_from, cancelled = soon(2, 8), soon(3, 8), soon(5, 8)
    moves = [{"recurrence_id": moved_from, "start": {"at": soon(3, 13)},
              "end": {"at": soon(3, 14)}, "location": "Room 9"}]
    app.change("s1", {"title": "Standup", "start": first, "end": soon(2, 9), "zone": "UTC",
                      "where": "Room 1", "rule": "FREQ=DAILY;COUNT=5", "skipped": cancelled,
                      "moves": json.dumps(moves)})
    master = wait_until(lambda: next((e for e in masters(sim).values()
                                      if e.get("type") == "seriesMaster"), None),
                        10, "the series in the calendar")

    def occurrences():
        return sorted((e for e in sim.events(start=soon(-1, 0), end=soon(30, 0)).values()
                       if e.get("seriesMasterId") == master["id"]),
                      key=lambda e: e["start"]["dateTime"])

    def settled_there():
        occ = occurrences()
        return occ if len(occ) == 4 and any(e.get("type") == "exception" for e in occ) else None

    occ = wait_until(settled_there, 10, "the moved occurrence and the cancelled one")
    (moved,) = [e for e in occ if e.get("type") == "exception"]
    assert moved["start"]["dateTime"][:16] == soon(3, 13)[:16], moved
    assert moved["location"]["displayName"] == "Room 9" and moved["subject"] == "Standup", moved
    assert not any(e["start"]["dateTime"][:16] == cancelled[:16] for e in occ), occ
    c.wait_settled()
    # Read back, the calendar's series is what concord wrote: no echo, and
    # nothing more is written either way.
    sent, app_sent = len(writes(sim)), len(app.writes())
    report = c.cli_json("poll", "ms.events")
    assert report["complete"], report
    c.wait_settled()
    again = c.cli_json("poll", "ms.events")
    assert again["complete"], again
    c.wait_settled()
    assert len(writes(sim)) == sent, writes(sim)[sent:]
    assert len(app.writes()) == app_sent
    assert len(occurrences()) == 4
    assert c.cli_json("failed") == []


def test_a_moved_series_writes_its_moved_occurrence_and_fails_nothing():
    # The app moves a series an hour later, its moved occurrence with it
    # (a new recurrence id). Outlook drops a series' exceptions when its
    # time changes: the old one is not looked for (it would fail the job,
    # "the series has no occurrence"), the new one is written.
    sim, app, c = setup(push=False, out_extra=SERIES_OUT, in_extra=SERIES_IN)
    moves = [{"recurrence_id": soon(3, 8), "start": {"at": soon(3, 13)},
              "end": {"at": soon(3, 14)}, "location": "Room 9"}]
    booking = {"title": "Standup", "start": soon(2, 8), "end": soon(2, 9), "zone": "UTC",
               "where": "Room 1", "rule": "FREQ=DAILY;COUNT=5", "moves": json.dumps(moves)}
    app.change("s1", booking)
    master = wait_until(lambda: next((e for e in masters(sim).values()
                                      if e.get("type") == "seriesMaster"), None),
                        10, "the series in the calendar")

    def exception_in(room):
        return next((e for e in sim.events(start=soon(-1, 0), end=soon(30, 0)).values()
                     if e.get("seriesMasterId") == master["id"] and e.get("type") == "exception"
                     and (e.get("location") or {}).get("displayName") == room), None)

    wait_until(lambda: exception_in("Room 9"), 10, "the moved occurrence")
    c.wait_settled()
    moves = [{"recurrence_id": soon(3, 9), "start": {"at": soon(3, 15)},
              "end": {"at": soon(3, 16)}, "location": "Room 10"}]
    app.change("s1", dict(booking, start=soon(2, 9), end=soon(2, 10), moves=json.dumps(moves)))
    moved = wait_until(lambda: exception_in("Room 10"), 10, "the occurrence moved with the series")
    assert moved["start"]["dateTime"][:16] == soon(3, 15)[:16], moved
    c.wait_settled()
    assert c.cli_json("failed") == []
    # Read back, the booking is as the app has it.
    assert c.cli_json("poll", "ms.events")["complete"]
    c.wait_settled()
    rec = app.records()["s1"]
    assert rec["start"] == soon(2, 9) and json.loads(rec["moves"])[0]["location"] == "Room 10", rec
    assert c.cli_json("failed") == []


def test_concord_auth_gets_the_tokens_from_the_consent_page():
    # Access tokens live 2 s: every read below refreshes with the store's
    # refresh token.
    sim, app, c = setup(push=False, refresh=False, start=False, token_ttl_s=2)
    p = subprocess.Popen([harness.concord_bin(), "auth", "ms", "--timeout", "20", "-c", c.path],
                         cwd=c.dir, env=c.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = None
    for _ in range(50):
        line = p.stdout.readline().decode().strip()
        if line.startswith("http"):
            url = line
            break
    assert url and url.startswith(sim.auth_url()), url
    assert "offline_access" in url, url
    st, body, _ = sim.authorize(url)
    assert st == 200, (st, body)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0, (out, err)
    c.start()
    sim.person_create({"subject": "Consented",
                       "start": {"dateTime": soon(3, 9), "timeZone": "UTC"},
                       "end": {"dateTime": soon(3, 10), "timeZone": "UTC"}}, notify=False)
    c.cli_json("poll", "ms.events")
    wait_until(lambda: "Consented" in by_title(app.records()), 10, "the booking")
    # Entra rotates the refresh token on every use (and this sim kills the
    # old one): the store keeps the new one, so each refresh works.
    sim.person_create({"subject": "Rotated",
                       "start": {"dateTime": soon(4, 9), "timeZone": "UTC"},
                       "end": {"dateTime": soon(4, 10), "timeZone": "UTC"}}, notify=False)
    c.cli_json("poll", "ms.events")
    wait_until(lambda: "Rotated" in by_title(app.records()), 10, "the booking")
    oauth = sim.stats()["oauth"]
    assert oauth["refreshes"] >= 2 and oauth["refresh_failures"] == 0, oauth
    assert sim.stats()["oauth"]["code_grants"] == 1
    assert c.cli_json("failed") == []


if __name__ == "__main__":
    harness.run_tests(globals())
