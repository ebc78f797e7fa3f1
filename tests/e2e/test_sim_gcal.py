#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Self-test of tests/sims/gcal.py and tests/e2e/gcal_harness.py over real
sockets. Needs no concord: harness.Listener plays the OAuth redirect
target and the push receiver."""

import base64
import hashlib
import http.client
import os
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Listener, wait_until  # noqa: E402
from gcal_harness import EVENTS, GcalSim  # noqa: E402

CLIENT_ID = "concord-sim.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-concord-sim-secret"
TZ = "Europe/Bucharest"


def expect(cond, msg, *values):
    if not cond:
        raise AssertionError(msg + "".join(" | %r" % (v,) for v in values))


def expect_eq(got, want, what):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


def reason(body):
    try:
        return body["error"]["errors"][0]["reason"]
    except (KeyError, IndexError, TypeError):
        return None


def timed(day, hour, minutes=60, tz=TZ):
    """start/end of a timed event on 2026-03-DAY at HOUR local time."""
    s = "2026-03-%02dT%02d:00:00" % (day, hour)
    e_h, e_m = hour + minutes // 60, minutes % 60
    return {"start": {"dateTime": s, "timeZone": tz},
            "end": {"dateTime": "2026-03-%02dT%02d:%02d:00" % (day, e_h, e_m), "timeZone": tz}}


def raw_get(sim, path):
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": "Bearer " + sim.access_token})
        return conn.getresponse().read()
    finally:
        conn.close()


def code_flow(sim, listener, **extra):
    """Runs the consent redirect to listener; returns the query it got."""
    params = {"client_id": CLIENT_ID, "redirect_uri": listener.url + "/cb",
              "response_type": "code", "scope": "https://www.googleapis.com/auth/calendar",
              "access_type": "offline", "state": "st-1"}
    params.update(extra)
    n = len(listener.got())
    sim.authorize(sim.auth_url + "?" + urllib.parse.urlencode(params))
    got = listener.got()[n]
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(got["path"]).query))


# --- OAuth -----------------------------------------------------------------


def test_oauth_code_and_refresh():
    sim = GcalSim(seed=1)
    lis = Listener()
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()) \
        .rstrip(b"=").decode()
    q = code_flow(sim, lis, code_challenge=challenge, code_challenge_method="S256")
    expect_eq((q.get("state"), q["code"][:4]), ("st-1", "4/0A"), "redirect carries code+state")
    form = {"grant_type": "authorization_code", "code": q["code"],
            "redirect_uri": lis.url + "/cb", "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET}
    st, body, _ = sim.token_request(dict(form, code_verifier="w" * 50))
    expect_eq((st, body.get("error")), (400, "invalid_grant"), "wrong PKCE verifier")
    q = code_flow(sim, lis, code_challenge=challenge, code_challenge_method="S256",
                  prompt="consent")
    form["code"] = q["code"]
    st, tok, hdrs = sim.token_request(dict(form, code_verifier=verifier))
    expect_eq(st, 200, "code exchange")
    expect(tok["access_token"].startswith("ya29.") and tok["refresh_token"].startswith("1//")
           and tok["token_type"] == "Bearer" and tok["expires_in"] == 3600, "token answer", tok)
    expect_eq(hdrs.get("cache-control", "")[:8], "no-cache", "token answers are not cached")
    st, body, _ = sim.token_request(dict(form, code_verifier=verifier))
    expect_eq((st, body.get("error")), (400, "invalid_grant"), "a code is single-use")
    st, _, _ = sim.api("GET", "users/me/calendarList", token=tok["access_token"])
    expect_eq(st, 200, "the access token works")

    # The account consented already: no refresh token without prompt=consent.
    q = code_flow(sim, lis)
    st, again, _ = sim.token_request(dict(form, code=q["code"]))
    expect(st == 200 and "refresh_token" not in again, "no second refresh token", again)

    ref = {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]}
    st, r1, _ = sim.token_request(ref, basic=(CLIENT_ID, CLIENT_SECRET))
    expect(st == 200 and "refresh_token" not in r1 and r1["access_token"] !=
           tok["access_token"], "refresh (Basic client auth), no rotation by default", r1)
    st, body, _ = sim.token_request(dict(ref, client_id=CLIENT_ID, client_secret="nope"))
    expect_eq((st, body), (401, {"error": "invalid_client", "error_description":
                                 "Unauthorized"}), "wrong client secret")
    sim.oauth(rotate=True)
    st, r2, _ = sim.token_request(dict(ref, client_id=CLIENT_ID, client_secret=CLIENT_SECRET))
    expect(st == 200 and r2.get("refresh_token") not in (None, tok["refresh_token"]),
           "rotation answers a new refresh token", r2)
    st, body, _ = sim.token_request(dict(ref, client_id=CLIENT_ID, client_secret=CLIENT_SECRET))
    expect_eq((st, body), (400, {"error": "invalid_grant", "error_description":
                                 "Token has been expired or revoked."}), "old token after rotation")
    sim.revoke(r2["refresh_token"])
    st, body, _ = sim.token_request(dict(ref, refresh_token=r2["refresh_token"],
                                         client_id=CLIENT_ID, client_secret=CLIENT_SECRET))
    expect_eq((st, body.get("error")), (400, "invalid_grant"), "revoked refresh token")
    st, _, _ = sim.api("GET", "users/me/calendarList", token=r2["access_token"])
    expect_eq(st, 401, "revoking kills its access tokens")

    sim.oauth(deny=True)
    q = code_flow(sim, lis)
    expect_eq((q.get("error"), q.get("state")), ("access_denied", "st-1"), "the user says no")
    st, _, _ = harness.http_request(sim.port, "GET", "/o/oauth2/v2/auth?" + urllib.parse
                                    .urlencode({"client_id": CLIENT_ID, "scope": "x",
                                                "redirect_uri": "https://evil.example/cb",
                                                "response_type": "code"}))
    expect_eq(st, 400, "redirect_uri_mismatch (not loopback)")
    stats = sim.stats()["oauth"]
    expect_eq((stats["refreshes"], stats["refresh_failures"]), (5, 3), "refresh counts")


def test_access_expiry_and_scopes():
    sim = GcalSim(seed=2, token_ttl_s=1)
    tok = sim.grant()
    expect_eq(tok["expires_in"], 1, "expires_in follows --token-ttl-s")
    expect_eq(sim.api("GET", "users/me/calendarList")[0], 200, "fresh token")
    st, body, h = wait_until(lambda: (lambda r: r if r[0] == 401 else None)(
        sim.api("GET", "users/me/calendarList")), 5, "the token to expire")
    expect_eq((reason(body), body["error"]["status"], body["error"]["errors"][0]["location"]),
              ("authError", "UNAUTHENTICATED", "Authorization"), "Google's 401 body")
    expect('error="invalid_token"' in h["www-authenticate"], "WWW-Authenticate", h)
    st, body, _ = sim.api("GET", "users/me/calendarList", token=None)
    expect_eq((st, reason(body)), (401, "required"), "no token at all")
    sim.oauth(token_ttl_s=3600)
    sim.grant("https://www.googleapis.com/auth/calendar.readonly")
    expect_eq(sim.api("GET", EVENTS % "primary")[0], 200, "read-only scope reads")
    st, body, _ = sim.api("POST", EVENTS % "primary", dict(timed(2, 10)))
    expect_eq((st, reason(body)), (403, "insufficientPermissions"), "read-only scope writes")
    sim.grant()
    sim.expire_access()
    expect_eq(sim.api("GET", EVENTS % "primary")[0], 401, "/_sim/expire_access")


def test_refresh_concurrency_counted():
    sim = GcalSim(seed=3, token_delay_ms=400)
    r = sim.grant()["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": r, "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET}
    results = []
    threads = [threading.Thread(target=lambda: results.append(sim.token_request(form)[0]))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    expect_eq(sorted(results), [200, 200, 200], "three refreshes")
    o = sim.stats()["oauth"]
    expect_eq((o["refreshes"], o["max_concurrent_refreshes"], o["refresh_in_flight"]),
              (3, 3, 0), "overlapping refreshes are counted")
    sim.token_request(form)
    expect_eq(sim.stats()["oauth"]["max_concurrent_refreshes"], 3, "one at a time adds none")


# --- events ----------------------------------------------------------------


def test_event_crud_and_shapes():
    sim = GcalSim(seed=4)
    ev = sim.insert(dict(timed(2, 10), summary="Visit", description="d", location="Cluj",
                         attendees=[{"email": "ana@example.com"},
                                    {"email": "sim.user@example.com"}],
                         extendedProperties={"private": {"concord": "r1"}}))
    expect(len(ev["id"]) == 26 and set(ev["id"]) <= set("0123456789abcdefghijklmnopqrstuv"),
           "a base32hex id", ev["id"])
    expect_eq((ev["kind"], ev["status"], ev["sequence"], ev["iCalUID"]),
              ("calendar#event", "confirmed", 0, ev["id"] + "@google.com"), "defaults")
    expect_eq(ev["start"], {"dateTime": "2026-03-02T10:00:00+02:00", "timeZone": TZ},
              "dateTime with the zone's offset")
    expect_eq([a["responseStatus"] for a in ev["attendees"]], ["needsAction", "needsAction"],
              "attendees start as needsAction")
    expect(ev["attendees"][1].get("self") and ev["organizer"] == {
        "email": "sim.user@example.com", "self": True}, "self and organizer", ev)
    expect(ev["etag"].startswith('"') and ev["updated"].endswith("Z"), "etag, updated", ev)
    expect_eq(sim.get_event(ev["id"]), ev, "GET answers what insert answered")

    p = sim.patch(ev["id"], {"summary": "Visit 2"})
    expect_eq((p["summary"], p["location"], p["sequence"]), ("Visit 2", "Cluj", 0),
              "PATCH keeps the rest; a title change does not bump sequence")
    expect(p["etag"] != ev["etag"] and p["updated"] > ev["updated"], "new etag", p)
    m = sim.patch(ev["id"], {"start": {"dateTime": "2026-03-02T11:00:00+02:00"},
                             "end": {"dateTime": "2026-03-02T12:00:00+02:00"}})
    expect_eq((m["sequence"], m["start"]), (1, {"dateTime": "2026-03-02T09:00:00Z"}),
              "a time change bumps sequence; no zone -> calendar zone (UTC)")
    st, body, _ = sim.api("PATCH", EVENTS % "primary" + "/" + ev["id"], {"sequence": 0})
    expect_eq((st, reason(body)), (400, "invalid"), "a sequence below the event's")
    u = sim.update(ev["id"], dict(timed(3, 9), summary="Replaced"))
    expect("location" not in u and "attendees" not in u and u["summary"] == "Replaced",
           "PUT replaces the whole event", u)
    st, body, _ = sim.api("PUT", EVENTS % "primary" + "/" + ev["id"], dict(timed(3, 9)),
                          headers={"If-Match": ev["etag"]})
    expect_eq((st, reason(body)), (412, "conditionNotMet"), "If-Match with an old etag")
    st, _, _ = sim.api("GET", EVENTS % "primary" + "/" + ev["id"],
                       headers={"If-None-Match": u["etag"]})
    expect_eq(st, 304, "If-None-Match with the current etag")

    for body, why in (({"start": timed(2, 10)["start"]}, "required"),
                      (dict(timed(2, 10), end={"dateTime": "2026-03-02T09:00:00",
                                               "timeZone": TZ}), "timeRangeEmpty"),
                      ({"start": {"dateTime": "2026-03-02T10:00:00"},
                        "end": {"dateTime": "2026-03-02T11:00:00"}}, "required"),
                      (dict(timed(2, 10), start={"dateTime": "2026-03-02T10:00:00",
                                                 "timeZone": "Mars/Olympus"}), "invalid"),
                      (dict(timed(2, 10), id="UPPER-case"), "invalid")):
        st, out, _ = sim.api("POST", EVENTS % "primary", body)
        expect_eq((st, reason(out)), (400, why), "refused insert %r" % (body,))
    st, out, _ = sim.api("POST", EVENTS % "primary", "{not json",
                         headers={"Content-Type": "application/json"})
    expect_eq((st, reason(out)), (400, "parseError"), "malformed JSON")
    mine = sim.insert(dict(timed(4, 8), id="concord0001"))
    expect_eq(mine["id"], "concord0001", "a client-chosen id")
    st, out, _ = sim.api("POST", EVENTS % "primary", dict(timed(4, 8), id="concord0001"))
    expect_eq((st, reason(out)), (409, "duplicate"), "the id again")
    allday = sim.insert({"summary": "Holiday", "start": {"date": "2026-03-06"},
                         "end": {"date": "2026-03-07"}})
    expect_eq(allday["end"], {"date": "2026-03-07"}, "all-day event")

    sim.delete_event(mine["id"])
    got = sim.get_event(mine["id"])
    expect_eq(got["status"], "cancelled", "a deleted event still answers GET, cancelled")
    st, out, _ = sim.api("DELETE", EVENTS % "primary" + "/concord0001")
    expect_eq((st, reason(out)), (410, "deleted"), "deleting twice")
    st, out, _ = sim.api("POST", EVENTS % "primary", dict(timed(4, 8), id="concord0001"))
    expect_eq(st, 409, "a deleted event keeps its id")
    st, out, _ = sim.api("GET", EVENTS % "primary" + "/nosuchevent")
    expect_eq((st, reason(out)), (404, "notFound"), "unknown id")
    st, out, _ = sim.api("GET", EVENTS % "nobody%40example.com")
    expect_eq(st, 404, "unknown calendar")
    expect(b"\n " in raw_get(sim, EVENTS % "primary") and
           b"\n" not in raw_get(sim, EVENTS % "primary" + "?prettyPrint=false"),
           "Google pretty-prints unless prettyPrint=false")


def test_recurring_series():
    sim = GcalSim(seed=5)
    series = sim.insert(dict(timed(23, 10), summary="Weekly", recurrence=[
        "RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=6",
        "EXDATE;TZID=Europe/Bucharest:20260325T100000"]))
    st, out, _ = sim.api("POST", EVENTS % "primary", dict(
        summary="x", start={"dateTime": "2026-03-02T10:00:00+02:00"},
        end={"dateTime": "2026-03-02T11:00:00+02:00"}, recurrence=["RRULE:FREQ=DAILY"]))
    expect_eq((st, reason(out)), (400, "required"), "a series needs a time zone")
    items, _ = sim.list_all(singleEvents=True, orderBy="startTime")
    starts = [i["start"]["dateTime"] for i in items]
    # Mar 23, (25 excluded), 30, Apr 1, 6, 8: COUNT counts the excluded one; the
    # DST change on Mar 29 keeps 10:00 local.
    expect_eq(starts, ["2026-03-23T10:00:00+02:00", "2026-03-30T10:00:00+03:00",
                       "2026-04-01T10:00:00+03:00", "2026-04-06T10:00:00+03:00",
                       "2026-04-08T10:00:00+03:00"], "instances")
    first = items[0]
    expect_eq((first["id"], first["recurringEventId"], first["originalStartTime"]),
              (series["id"] + "_20260323T080000Z", series["id"],
               {"dateTime": "2026-03-23T10:00:00+02:00", "timeZone": TZ}), "instance shape")
    expect("recurrence" not in first and first["iCalUID"] == series["iCalUID"],
           "instances share iCalUID", first)
    inst = sim._ok("GET", EVENTS % "primary" + "/" + series["id"] + "/instances")["items"]
    expect_eq([i["id"] for i in inst], [i["id"] for i in items], "events.instances")

    moved = sim.patch(items[1]["id"], {"start": {"dateTime": "2026-03-30T15:00:00",
                                                 "timeZone": TZ},
                                       "end": {"dateTime": "2026-03-30T16:00:00",
                                               "timeZone": TZ}})
    expect_eq((moved["recurringEventId"], moved["originalStartTime"]["dateTime"],
               moved["start"]["dateTime"]),
              (series["id"], "2026-03-30T10:00:00+03:00", "2026-03-30T15:00:00+03:00"),
              "an exception keeps its originalStartTime")
    sim.delete_event(items[2]["id"])
    items2, _ = sim.list_all(singleEvents=True, orderBy="startTime")
    expect_eq([i["start"]["dateTime"][:16] for i in items2],
              ["2026-03-23T10:00", "2026-03-30T15:00", "2026-04-06T10:00",
               "2026-04-08T10:00"], "moved and cancelled instances")
    masters, _ = sim.list_all()
    expect_eq(sorted((m["id"], bool(m.get("recurrence"))) for m in masters),
              sorted([(series["id"], True), (items[1]["id"], False)]),
              "without singleEvents: the series and its (live) exception")
    withdel, _ = sim.list_all(showDeleted=True)
    gone = [i for i in withdel if i["status"] == "cancelled"]
    expect_eq([(g["id"], sorted(g)) for g in gone],
              [(items[2]["id"], ["etag", "id", "kind", "originalStartTime",
                                 "recurringEventId", "status"])],
              "a cancelled instance, with the fields Google guarantees")
    allday = sim.insert({"summary": "Monthly", "start": {"date": "2026-01-31"},
                         "end": {"date": "2026-02-01"},
                         "recurrence": ["RRULE:FREQ=MONTHLY;COUNT=4"]})
    days = [i["start"]["date"] for i in sim._ok(
        "GET", EVENTS % "primary" + "/" + allday["id"] + "/instances")["items"]]
    expect_eq(days, ["2026-01-31", "2026-03-31", "2026-05-31", "2026-07-31"],
              "a 31st skips short months (RFC 5545)")


# --- incremental sync --------------------------------------------------------


def test_sync_tokens():
    sim = GcalSim(seed=6)
    ids = [sim.insert(dict(timed(2 + i, 9), summary="e%d" % i))["id"] for i in range(5)]
    pages, params = [], {"maxResults": 2}
    while True:
        page = sim.list_page(**params)
        pages.append(page)
        if "nextPageToken" not in page:
            break
        expect("nextSyncToken" not in page, "no sync token before the last page", page)
        params["pageToken"] = page["nextPageToken"]
    expect_eq([len(p["items"]) for p in pages], [2, 2, 1], "pages of maxResults")
    expect_eq([i["id"] for p in pages for i in p["items"]], ids, "every event once")
    sync = pages[-1]["nextSyncToken"]
    expect_eq((pages[0]["kind"], pages[0]["accessRole"]), ("calendar#events", "owner"), "page")

    changes, sync2 = sim.list_all(syncToken=sync)
    expect_eq((changes, bool(sync2)), ([], True), "nothing changed")
    sim.patch(ids[1], {"summary": "changed"})
    sim.delete_event(ids[3])
    sim.person_update(ids[0], {"location": "Iasi"})
    changes, sync3 = sim.list_all(syncToken=sync2)
    expect_eq([(c["id"], c["status"]) for c in changes],
              [(ids[1], "confirmed"), (ids[3], "cancelled"), (ids[0], "confirmed")],
              "changed and deleted events, in change order")
    expect_eq(sorted(changes[1]), ["etag", "id", "kind", "status"], "a deletion is minimal")
    expect_eq(sim.list_all(syncToken=sync3)[0], [], "the new token is exact")

    for name, value in (("timeMin", "2026-03-01T00:00:00Z"), ("timeMax", "2026-03-01T00:00:00Z"),
                        ("updatedMin", "2026-03-01T00:00:00Z"), ("q", "x"), ("orderBy", "updated"),
                        ("iCalUID", "x"), ("privateExtendedProperty", "a=b"),
                        ("sharedExtendedProperty", "a=b")):
        st, out, _ = sim.api("GET", EVENTS % "primary", syncToken=sync3, **{name: value})
        expect_eq((st, out["error"]["errors"][0].get("location")), (400, name),
                  "%s with syncToken" % name)
    st, out, _ = sim.api("GET", EVENTS % "primary", syncToken=sync3, showDeleted="false")
    expect_eq(st, 400, "showDeleted=false with syncToken")
    st, out, _ = sim.api("GET", EVENTS % "primary", syncToken=sync3, singleEvents="true")
    expect_eq(st, 400, "singleEvents changed since the full sync")
    st, out, _ = sim.api("GET", EVENTS % "primary", syncToken="garbage!")
    expect_eq(st, 400, "a malformed token")

    sim.patch(ids[2], {"summary": "x"})
    sim.patch(ids[4], {"summary": "y"})
    first = sim.list_page(syncToken=sync3, maxResults=1)
    sim.invalidate_sync()
    st, out, _ = sim.api("GET", EVENTS % "primary", pageToken=first["nextPageToken"])
    expect_eq((st, out), (410, {"error": {"errors": [{
        "domain": "global", "reason": "fullSyncRequired",
        "message": "Sync token is no longer valid, a full sync is required.",
        "locationType": "parameter", "location": "syncToken"}], "code": 410,
        "message": "Sync token is no longer valid, a full sync is required."}}),
        "a sync read's next page after invalidation: Google's 410 body")
    st, _, _ = sim.api("GET", EVENTS % "primary", syncToken=sync3)
    expect_eq(st, 410, "an old token after invalidation")
    items, fresh = sim.list_all()
    expect(len(items) == 4 and sim.list_all(syncToken=fresh)[0] == [],
           "a full sync gives a working token again", items)

    upd = sim.list_page(updatedMin="2020-01-01T00:00:00Z")["items"]
    expect(ids[3] in [i["id"] for i in upd], "updatedMin returns deletions without showDeleted")
    expect("nextSyncToken" not in sim.list_page(orderBy="updated"),
           "an ordered read ends without a sync token")
    sim.paging(cap=2, empty_first=True)
    first = sim.list_page(maxResults=100)
    expect_eq((first["items"], "nextPageToken" in first), ([], True),
              "an empty first page that says: keep going")
    items, tok = sim.list_all(maxResults=100)
    expect(len(items) == 4 and tok, "short pages still end in a sync token", len(items))


def test_sync_single_events_and_person_changes():
    sim = GcalSim(seed=7, calendars="primary,team")
    series = sim.insert(dict(timed(2, 10), summary="Daily",
                             recurrence=["RRULE:FREQ=DAILY;COUNT=3"]))
    items, sync = sim.list_all(singleEvents=True)
    expect_eq(len(items), 3, "expanded")
    sim.person_move(series["id"] + "_20260303T080000Z", minutes=60)
    changes, sync = sim.list_all(syncToken=sync, singleEvents=True)
    expect_eq([(c["id"], c["start"]["dateTime"]) for c in changes],
              [(series["id"] + "_20260303T080000Z", "2026-03-03T11:00:00+02:00")],
              "a person moved one instance")
    sim.person_update(series["id"], {"summary": "Daily!"})
    changes, sync = sim.list_all(syncToken=sync, singleEvents=True)
    expect_eq(sorted(c["summary"] for c in changes), ["Daily", "Daily!", "Daily!"],
              "a series edit returns its instances (the exception keeps its own)")
    sim.person_cancel(series["id"])
    changes, sync = sim.list_all(syncToken=sync, singleEvents=True)
    expect_eq(sorted(c["status"] for c in changes), ["cancelled"] * 3,
              "a deleted series cancels every instance")

    team = "c_team@group.calendar.google.com"
    ev = sim.insert(dict(timed(5, 9), summary="To move"))
    _, psync = sim.list_all()
    _, tsync = sim.list_all(cal=team)
    moved = sim.person_move(ev["id"], to_calendar=team)
    expect_eq((moved["id"], moved["organizer"]["email"]), (ev["id"], team), "moved")
    expect_eq([(c["id"], c["status"]) for c in sim.list_all(syncToken=psync)[0]],
              [(ev["id"], "cancelled")], "it leaves the primary calendar")
    expect_eq([(c["id"], c["status"]) for c in sim.list_all(cal=team, syncToken=tsync)[0]],
              [(ev["id"], "confirmed")], "it arrives in the team calendar")
    resp = sim.person_respond(sim.insert(dict(timed(6, 9), attendees=[
        {"email": "bob@example.com"}]))["id"], "bob@example.com", "declined")
    expect_eq(resp["attendees"][0]["responseStatus"], "declined", "an attendee declines")


# --- push --------------------------------------------------------------------


def test_push_channels():
    sim = GcalSim(seed=8, push_backoff_ms=50)
    rx = Listener()
    ch = sim.watch(rx.url + "/hooks/gcal", "chan-1", token="tok-1")
    expect_eq((ch["kind"], ch["id"], ch["token"]), ("api#channel", "chan-1", "tok-1"), "watch")
    expect(ch["expiration"].isdigit() and int(ch["expiration"]) > time.time() * 1000,
           "expiration in ms", ch)
    wait_until(lambda: len(rx.got()) == 1, 5, "the sync message")
    h = rx.got()[0]["headers"]
    expect_eq((h["x-goog-channel-id"], h["x-goog-channel-token"], h["x-goog-resource-state"],
               h["x-goog-message-number"], h["x-goog-resource-id"], rx.got()[0]["body"]),
              ("chan-1", "tok-1", "sync", "1", ch["resourceId"], b""), "the sync message")
    expect(h["x-goog-channel-expiration"].endswith("GMT"), "an HTTP-date expiration", h)
    ev = sim.insert(dict(timed(2, 10)))
    sim.person_update(ev["id"], {"summary": "by a person"})
    wait_until(lambda: len(rx.got()) == 3, 5, "two change notifications")
    expect_eq([(g["headers"]["x-goog-resource-state"], g["headers"]["x-goog-message-number"])
               for g in rx.got()[1:]], [("exists", "2"), ("exists", "3")],
              "API and person changes both notify, numbered")

    st, out, _ = sim.api("POST", EVENTS % "primary" + "/watch",
                         {"id": "chan-1", "type": "web_hook", "address": rx.url})
    expect_eq((st, reason(out)), (400, "channelIdNotUnique"), "a live id cannot be reused")
    ch2 = sim.watch(rx.url + "/hooks/gcal2", "chan-2")
    expect_eq(ch2["resourceId"], ch["resourceId"], "the same resource, the same resourceId")
    sim.wait_notifications()
    expect_eq(sorted(c["id"] for c in sim.live_channels()), ["chan-1", "chan-2"], "overlap")
    st, _, _ = sim.stop_channel("chan-1", ch["resourceId"])
    expect_eq(st, 204, "channels/stop")
    st, out, _ = sim.stop_channel("chan-1", ch["resourceId"])
    expect_eq((st, reason(out)), (404, "notFound"), "stopping twice")
    n = len(rx.got())
    sim.patch(ev["id"], {"summary": "after stop"})
    sim.wait_notifications()
    # Count the change's messages, not requests: a push whose answer was lost
    # is sent again with its message number (as Google does), and chan-2's
    # own sync message may land late on a loaded machine.
    msgs = {(g["path"], g["headers"]["x-goog-message-number"]) for g in rx.got()[n:]
            if g["headers"]["x-goog-resource-state"] == "exists"}
    expect_eq([p for p, _ in msgs], ["/hooks/gcal2"], "only the live channel hears")

    short = sim.watch(rx.url + "/short", "chan-3", ttl=1)
    expect(int(short["expiration"]) - time.time() * 1000 < 1500, "params.ttl", short)
    wait_until(lambda: not [c for c in sim.live_channels() if c["id"] == "chan-3"], 5,
               "the channel to expire")
    sim.wait_notifications()
    n = len(rx.got())
    sim.patch(ev["id"], {"summary": "after expiry"})
    sim.wait_notifications()
    expect_eq([g["path"] for g in rx.got()[n:]], ["/hooks/gcal2"], "an expired channel is quiet")
    st, _, _ = sim.stop_channel("chan-3", ch["resourceId"])
    expect_eq(st, 404, "an expired channel cannot be stopped (or renewed)")
    st, out, _ = sim.api("POST", EVENTS % "primary" + "/watch",
                         {"id": "x1", "type": "web_hook", "address": "http://example.com/h"})
    expect_eq((st, reason(out)), (400, "push.webhookUrlNotHttps"), "HTTP beyond 127.0.0.1")

    sim.notifications(paused=True)
    n = len(rx.got())
    sim.patch(ev["id"], {"summary": "held"})
    expect(not sim._ctl("POST", "wait_notifications", {"timeout_s": 0.3})["idle"],
           "a paused notification waits")
    expect_eq(len(rx.got()), n, "nothing sent while paused")
    sim.notifications(paused=False)
    sim.wait_notifications()
    expect_eq(len(rx.got()), n + 1, "sent on resume")
    sim.notifications(enabled=False)
    sim.patch(ev["id"], {"summary": "lost"})
    sim.notifications(enabled=True)
    sim.wait_notifications()
    expect_eq(len(rx.got()), n + 1, "an outage loses the notification")
    expect_eq(sim.stats()["notifications"]["suppressed"], 1, "counted as suppressed")

    rx.status = 500
    sim.patch(ev["id"], {"summary": "retried"})
    sim.wait_notifications()
    tries = [d for d in sim.deliveries() if d["target"] == "chan-2"][-3:]
    expect_eq([(d["attempt"], d["status"]) for d in tries], [(1, 500), (2, 500), (3, 500)],
              "a failing receiver is retried --push-attempts times with one message number")
    expect_eq(len({d["headers"]["X-Goog-Message-Number"] for d in tries}), 1, "same number")


# --- limits and faults -------------------------------------------------------


def test_quota_and_faults():
    sim = GcalSim(seed=9, user_quota_per_min=4)
    sim.grant()
    codes = [sim.api("GET", EVENTS % "primary")[0] for _ in range(5)]
    expect_eq(codes, [200, 200, 200, 200, 403], "the fifth request in a minute")
    st, out, _ = sim.api("GET", EVENTS % "primary")
    expect_eq((out["error"]["errors"][0]["domain"], reason(out)),
              ("usageLimits", "userRateLimitExceeded"), "Google's quota body")
    sim.quota(user_per_min=0, status=429)
    expect_eq(sim.api("GET", EVENTS % "primary")[0], 200, "quota off")

    sim.faults([{"status": 503, "match": {"method": "POST"}},
                {"status": 429, "match": {"method": "POST"}}])
    st1, out1, _ = sim.api("POST", EVENTS % "primary", dict(timed(2, 9)))
    st2, out2, _ = sim.api("POST", EVENTS % "primary", dict(timed(2, 9)))
    expect_eq((st1, reason(out1), st2, reason(out2)),
              (503, "backendError", 429, "rateLimitExceeded"), "injected statuses")
    expect_eq(len(sim.events()), 0, "nothing applied")
    sim.faults([{"reset": "after", "match": {"method": "POST"}}])
    err = None
    try:
        sim.api("POST", EVENTS % "primary", dict(timed(2, 9), id="l0stansver1"))
    except (OSError, http.client.HTTPException) as e:
        err = e
    expect(err is not None, "the answer was lost")
    expect_eq(list(sim.events()), ["l0stansver1"], "... but the insert was applied")
    st, out, _ = sim.api("POST", EVENTS % "primary", dict(timed(2, 9), id="l0stansver1"))
    expect_eq((st, reason(out)), (409, "duplicate"), "a blind retry meets 409")
    log = sim.requests(method="POST")
    expect_eq([r["status"] for r in log], [503, 429, "lost", 409], "the log says what happened")
    sim.faults([{"status": 500, "match": {"path_prefix": "/token"}}])
    st, out, _ = sim.token_request({"grant_type": "refresh_token", "refresh_token": "x"})
    expect_eq((st, out.get("error")), (500, "internal_failure"), "a fault on the token endpoint")
    sim.reset()
    expect_eq((sim.events(deleted=True), sim.stats()["requests"], sim.requests()), ({}, 0, []),
              "/_sim/reset forgets events, stats and the log")
    expect_eq(sim.api("GET", EVENTS % "primary")[0], 401, "... and the tokens")

    def run(seed):
        s = GcalSim(seed=1)
        s.grant()
        s._ctl("POST", "random", {"seed": seed, "rate": 0.5, "kinds": ["503", "403_rate"]})
        return [s.api("GET", EVENTS % "primary")[0] for _ in range(12)]
    a = run(42)
    expect(a == run(42) and set(a) == {200, 503, 403}, "seeded random faults replay", a)


if __name__ == "__main__":
    harness.run_tests(globals())
