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
    timeout_ms: 2000
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
          rule: recurrence.rrule
          skipped: {jq: '(.recurrence.exdates // []) | join(",")'}
        map_out:
          title: title
          start.at: start
          end.at: end
          start.tz: zone
          end.tz: zone
          location: where
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
        map_in: {title: title, start: start, end: end, zone: zone, where: where}
        map_out: {title: title, start: start, end: end, zone: zone, where: where, rule: rule,
                  skipped: skipped}
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
             rule: string, skipped: string}
syncs:
  bookings:
    model: booking
    origin: [app, gcal]
    collections: [app.bookings, gcal.events]
"""


def setup(push=True, ttl="1h", renew="10m", refresh=True, poll_extra="", start=True,
          **sim_flags):
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
        "poll_extra": poll_extra,
    }
    c = Concord(CONFIG, values=values,
                env={"GCAL_SECRET": CLIENT_SECRET, "GCAL_REFRESH": tok["refresh_token"],
                     "APP_SECRET": APP_SECRET})
    if start:
        c.start()
        # The first poll: a full read, which ends with the sync token.
        wait_until(lambda: sim.stats()["full_reads"] >= 1, 10, "the first read of the calendar")
    return sim, app, c


def api(sim, method=None, contains=""):
    return [r for r in sim.requests()
            if r["path"].startswith("/calendar/v3/") and (method is None or r["method"] == method)
            and contains in r["path"]]


def by_title(recs):
    return {r.get("title"): (k, r) for k, r in recs.items()}


def live(sim):
    return {e["id"]: e for e in sim.events().values() if e.get("status") != "cancelled"}


def test_an_app_booking_becomes_an_event_and_follows_it():
    sim, app, c = setup(push=False)
    app.change("b1", {"title": "Haircut", "start": "2026-05-04T07:30:00Z",
                      "end": "2026-05-04T08:15:00Z", "zone": "Europe/Bucharest",
                      "where": "Salon 2"})
    ev = wait_until(lambda: next(iter(live(sim).values()), None), 10, "the event in the calendar")
    (post,) = api(sim, "POST", "/events")
    assert post["status"] == 200, post
    body = post["body"]
    # Local time with offset and the IANA zone; the id comes from the
    # idempotency key, so a create sent again after a lost answer finds it.
    assert body["start"] == {"dateTime": "2026-05-04T10:30:00+03:00",
                             "timeZone": "Europe/Bucharest"}, body
    assert body["summary"] == "Haircut" and body["location"] == "Salon 2", body
    assert body["id"].startswith("concordv") and ev["id"] == body["id"], body
    assert post["headers"]["authorization"].startswith("Bearer "), post
    # An edit is a PATCH of what changed only.
    app.change("b1", {"title": "Haircut", "start": "2026-05-04T08:00:00Z",
                      "end": "2026-05-04T08:45:00Z", "zone": "Europe/Bucharest",
                      "where": "Salon 2"})
    wait_until(lambda: live(sim)[ev["id"]]["start"]["dateTime"] == "2026-05-04T11:00:00+03:00",
               10, "the moved event")
    (patch,) = api(sim, "PATCH")
    assert set(patch["body"]) == {"start", "end"}, patch
    # The same meeting in another zone is no change: nothing is written.
    app.change("b1", {"title": "Haircut", "start": "2026-05-04T09:00:00+01:00",
                      "end": "2026-05-04T09:45:00+01:00", "zone": "Europe/Bucharest",
                      "where": "Salon 2"})
    c.wait_settled()
    assert len(api(sim, "PATCH")) == 1
    # Deleted in the app: deleted in the calendar.
    app.delete("b1")
    wait_until(lambda: ev["id"] not in live(sim), 10, "the event deleted")
    c.wait_settled()
    assert len(api(sim, "POST", "/events")) == 1
    assert c.cli_json("failed") == []


if __name__ == "__main__":
    harness.run_tests(globals())
