#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Self-test of tests/sims/graph.py and tests/e2e/graph_harness.py over real
sockets. Needs no concord: graph_harness.Receiver plays the notification
endpoint, harness.Listener the OAuth redirect target."""

import http.client
import os
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Listener, wait_until  # noqa: E402
from graph_harness import GraphSim, Receiver, iso_in  # noqa: E402

CLIENT_ID = "3e0c5a7b-9d1f-4a2b-8c6e-0f1a2b3c4d5e"
CLIENT_SECRET = "sim~secret.concord-graph"
USER_ID = "5d1a9c3e-2b4f-4e6a-8c0d-1f2e3a4b5c6d"
WIN = ("2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z")
EVENT_KEYS = {
    "@odata.etag", "id", "createdDateTime", "lastModifiedDateTime", "changeKey", "categories",
    "transactionId", "originalStartTimeZone", "originalEndTimeZone", "iCalUId",
    "reminderMinutesBeforeStart", "isReminderOn", "hasAttachments", "subject", "bodyPreview",
    "importance", "sensitivity", "isAllDay", "isCancelled", "isOrganizer",
    "responseRequested", "seriesMasterId", "showAs", "type", "webLink", "onlineMeetingUrl",
    "isOnlineMeeting", "onlineMeetingProvider", "allowNewTimeProposals", "isDraft",
    "hideAttendees", "responseStatus", "body", "start", "end", "location", "locations",
    "recurrence", "attendees", "organizer", "onlineMeeting"}


def expect(cond, msg, *values):
    if not cond:
        raise AssertionError(msg + "".join(" | %r" % (v,) for v in values))


def expect_eq(got, want, what):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


def code(body):
    try:
        return body["error"]["code"]
    except (KeyError, TypeError):
        return None


def at(day, hour, minutes=60, tz="UTC"):
    e = hour * 60 + minutes
    return {"start": {"dateTime": "2026-03-%02dT%02d:00:00" % (day, hour), "timeZone": tz},
            "end": {"dateTime": "2026-03-%02dT%02d:%02d:00" % (day, e // 60, e % 60),
                    "timeZone": tz}}


def weekly(**extra):
    ev = dict(at(2, 10), subject="Weekly", recurrence={
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "wednesday"]},
        "range": {"type": "numbered", "startDate": "2026-03-02", "numberOfOccurrences": 4}})
    ev.update(extra)
    return ev


# --- OAuth -------------------------------------------------------------------


def test_oauth_grants():
    sim = GraphSim(seed=1)
    st, app, _ = sim.token_request({"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                    "client_secret": CLIENT_SECRET,
                                    "scope": "https://graph.microsoft.com/.default"})
    expect(st == 200 and app["token_type"] == "Bearer" and app["access_token"].count(".") == 2
           and 3600 <= app["expires_in"] <= 5400 and "refresh_token" not in app,
           "client credentials", app)
    st, body, _ = sim.api("GET", "me/events", token=app["access_token"])
    expect_eq((st, code(body)), (400, "BadRequest"), "/me with an app-only token")
    st, body, _ = sim.api("GET", "users/%s/events" % USER_ID, token=app["access_token"])
    expect_eq(st, 200, "/users/{id}/events with an app-only token")
    st, body, _ = sim.token_request({"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                     "client_secret": "wrong",
                                     "scope": "https://graph.microsoft.com/.default"})
    expect_eq((st, body["error"], body["error_codes"]), (401, "invalid_client", [7000215]),
              "a wrong secret")
    st, body, _ = sim.token_request({"grant_type": "client_credentials", "client_id": CLIENT_ID,
                                     "client_secret": CLIENT_SECRET, "scope": "Calendars.Read"})
    expect_eq((st, body["error"]), (400, "invalid_scope"), "client credentials need /.default")
    st, body, _ = sim.token_request({"grant_type": "client_credentials"}, tenant="nope")
    expect_eq((st, body["error_codes"]), (400, [90002]), "an unknown tenant")

    lis = Listener()
    url = sim.auth_url() + "?" + urllib.parse.urlencode({
        "client_id": CLIENT_ID, "redirect_uri": lis.url + "/cb", "response_type": "code",
        "scope": "https://graph.microsoft.com/Calendars.ReadWrite offline_access",
        "state": "s1"})
    sim.authorize(url)
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(lis.got()[-1]["path"]).query))
    expect_eq(q.get("state"), "s1", "state comes back")
    st, tok, _ = sim.token_request({"grant_type": "authorization_code", "code": q["code"],
                                    "redirect_uri": lis.url + "/cb", "client_id": CLIENT_ID,
                                    "client_secret": CLIENT_SECRET})
    expect(st == 200 and tok.get("refresh_token") and tok["scope"] ==
           "Calendars.ReadWrite offline_access", "code grant with offline_access", tok)
    ref = {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"],
           "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    st, r1, _ = sim.token_request(ref)
    expect(st == 200 and r1["refresh_token"] != tok["refresh_token"], "refresh rotates", r1)
    st, r2, _ = sim.token_request(ref)
    expect_eq(st, 200, "the old refresh token still works (Entra does not revoke it)")
    sim.oauth(revoke_old=True)
    st, r3, _ = sim.token_request(dict(ref, refresh_token=r2["refresh_token"]))
    st, body, _ = sim.token_request(dict(ref, refresh_token=r2["refresh_token"]))
    expect_eq((st, body["error"], body["error_codes"]), (400, "invalid_grant", [50173]),
              "with --revoke-old-refresh a used token dies")
    expect(body["error_description"].startswith("AADSTS50173:") and "Trace ID" in
           body["error_description"], "Entra's error text", body)
    expect_eq(sim.api("GET", "me/events", token=r3["access_token"])[0], 200, "a delegated token")
    sim.expire_access()
    st, body, h = sim.api("GET", "me/events", token=r3["access_token"])
    expect_eq((st, code(body), body["error"]["message"]),
              (401, "InvalidAuthenticationToken",
               "Lifetime validation failed, the token is expired."), "an expired token")
    expect("authorization_uri" in h["www-authenticate"] and h.get("request-id"),
           "WWW-Authenticate and request-id", h)
    st, body, _ = sim.api("GET", "me/events", token=None)
    expect_eq(body["error"]["message"], "Access token is empty.", "no token")
    o = sim.stats()["oauth"]
    expect_eq((o["refreshes"], o["refresh_failures"], o["client_credentials"]), (4, 1, 1),
              "token counts")


# --- events ------------------------------------------------------------------


def test_event_crud_and_shapes():
    sim = GraphSim(seed=2)
    body = dict(at(2, 10, tz="Europe/Bucharest"), subject="Visit",
                body={"contentType": "HTML", "content": "<p>Hello <b>you</b></p>"},
                location={"displayName": "Cluj"}, showAs="tentative",
                attendees=[{"emailAddress": {"address": "ana@example.com", "name": "Ana"},
                            "type": "required"}])
    st, ev, h = sim.api("POST", "me/events", body)
    expect_eq(st, 201, "create")
    expect(h["location"].endswith("events('%s')" % ev["id"]) and h.get("request-id"),
           "Location and request-id", h)
    expect_eq(set(ev) - {"@odata.context"}, EVENT_KEYS, "Graph's event properties")
    expect_eq((ev["type"], ev["originalStartTimeZone"], ev["bodyPreview"], ev["showAs"],
               ev["body"]["contentType"]),
              ("singleInstance", "GTB Standard Time", "Hello you", "tentative", "html"),
              "Windows zone names, preview, enums")
    expect_eq(ev["start"], {"dateTime": "2026-03-02T08:00:00.0000000", "timeZone": "UTC"},
              "times in UTC without Prefer")
    expect_eq(ev["attendees"][0]["status"], {"response": "none", "time":
                                             "0001-01-01T00:00:00Z"}, "attendee status")
    expect_eq(ev["@odata.etag"], 'W/"%s"' % ev["changeKey"], "etag is the changeKey")
    st, got, h = sim.api("GET", "me/events/" + ev["id"],
                         prefer=['outlook.timezone="Pacific Standard Time"'])
    expect_eq((got["start"], h.get("preference-applied")),
              ({"dateTime": "2026-03-02T00:00:00.0000000", "timeZone": "Pacific Standard Time"},
               'outlook.timezone="Pacific Standard Time"'), "Prefer: outlook.timezone")
    st, got, _ = sim.api("GET", "me/events/" + ev["id"],
                         prefer=['outlook.timezone="Europe/Bucharest"'])
    expect_eq(got["start"]["dateTime"], "2026-03-02T10:00:00.0000000", "an IANA Prefer zone")

    p = sim.patch_event(ev["id"], {"subject": "Visit 2"})
    expect(p["changeKey"] != ev["changeKey"] and p["location"]["displayName"] == "Cluj"
           and p["lastModifiedDateTime"] > ev["lastModifiedDateTime"], "PATCH", p)
    st, body2, _ = sim.api("PATCH", "me/events/" + ev["id"], {"subject": "x"},
                           headers={"If-Match": ev["@odata.etag"]})
    expect_eq((st, code(body2)), (412, "ErrorIrresolvableConflict"), "If-Match, old etag")
    for bad, want in (({"subject": "x", "colour": "red"}, "RequestBodyRead"),
                      (dict(at(3, 9, tz="Mars/Olympus")), "TimeZoneNotSupportedException"),
                      (dict(at(3, 9), isAllDay=True), "ErrorInvalidRequest"),
                      ({"subject": "no times"}, "ErrorInvalidRequest"),
                      (dict(at(3, 9), showAs="maybe"), "BadRequest")):
        st, out, _ = sim.api("POST", "me/events", bad)
        expect_eq((st, code(out)), (400, want), "refused %r" % (bad,))
    allday = sim.create_event({"subject": "Off", "isAllDay": True,
                               "start": {"dateTime": "2026-03-06T00:00:00", "timeZone": "UTC"},
                               "end": {"dateTime": "2026-03-07T00:00:00", "timeZone": "UTC"}})
    expect_eq((allday["isAllDay"], allday["end"]["dateTime"]),
              (True, "2026-03-07T00:00:00.0000000"), "all-day")

    tx = dict(at(4, 9), subject="Once", transactionId="job-42")
    a = sim.create_event(tx)
    b = sim.create_event(tx)
    expect_eq((a["id"], b["id"], a["transactionId"]), (a["id"], a["id"], "job-42"),
              "a repeated transactionId returns the first event")
    expect_eq(sim.stats()["transaction_replays"], 1, "counted")
    cal2 = sim.calendars()[0]["id"]
    path = "users/%s/calendars/%s/events" % (USER_ID, urllib.parse.quote(cal2, safe=""))
    listed = sim._ok("GET", path + "?$top=2")
    expect_eq(len(listed["value"]), 2, "$top")
    expect("$skip=2" in listed["@odata.nextLink"], "a nextLink", listed)
    found = sim._ok("GET", "me/events?$filter=" + urllib.parse.quote("transactionId eq 'job-42'"))
    expect_eq([e["id"] for e in found["value"]], [a["id"]], "$filter by transactionId")
    sel = sim._ok("GET", "me/events/%s?$select=subject" % a["id"])
    expect_eq(sorted(k for k in sel if not k.startswith("@")), ["id", "subject"], "$select")

    sim.delete_event(a["id"])
    st, out, _ = sim.api("GET", "me/events/" + a["id"])
    expect_eq((st, code(out)), (404, "ErrorItemNotFound"), "deleted")
    st, out, _ = sim.api("DELETE", "me/events/" + a["id"])
    expect_eq(st, 404, "deleting twice")
    c = sim.create_event(tx)
    expect(c["id"] != a["id"], "after a delete the transactionId creates anew", c)
    st, out, _ = sim.api("GET", "users/someone.else@example.com/events")
    expect_eq((st, code(out)), (403, "ErrorAccessDenied"), "another mailbox")


def test_recurring_series():
    sim = GraphSim(seed=3)
    m = sim.create_event(weekly(**at(2, 10, tz="Pacific Standard Time")))
    expect_eq((m["type"], m["recurrence"]["range"]["recurrenceTimeZone"]),
              ("seriesMaster", "Pacific Standard Time"), "a series master")
    view = sim.view(*WIN)
    occ = [e for e in view if e["type"] == "occurrence"]
    # 10:00 Pacific: 18:00Z before the US DST change on Mar 8, 17:00Z after.
    expect_eq([e["start"]["dateTime"][:16] for e in occ],
              ["2026-03-02T18:00", "2026-03-04T18:00", "2026-03-09T17:00", "2026-03-11T17:00"],
              "four occurrences, the local time kept across DST")
    expect(all(e["seriesMasterId"] == m["id"] and e["recurrence"] is None for e in occ),
           "occurrence shape", occ[0])
    expect_eq(len({e["iCalUId"] for e in occ}), 4, "each occurrence has its own iCalUId")
    expect_eq([e["id"] for e in sim.view(*WIN)], [e["id"] for e in view], "stable ids")
    inst = sim._ok("GET", "me/events/%s/instances?startDateTime=%s&endDateTime=%s"
                   % (m["id"], WIN[0], WIN[1]))
    expect_eq([e["id"] for e in inst["value"]], [e["id"] for e in occ], "instances")
    listed = sim._ok("GET", "me/events")["value"]
    expect_eq([e["type"] for e in listed], ["seriesMaster"], "/me/events: masters, not occurrences")

    exc = sim.patch_event(occ[1]["id"], {"subject": "Moved", **at(4, 20)})
    expect_eq((exc["type"], exc["id"], exc["seriesMasterId"]), ("exception", occ[1]["id"],
                                                                 m["id"]), "an exception")
    sim.delete_event(occ[2]["id"])
    view2 = sim.view(*WIN)
    expect_eq([(e["type"], e["start"]["dateTime"][:16]) for e in view2],
              [("occurrence", "2026-03-02T18:00"), ("exception", "2026-03-04T20:00"),
               ("occurrence", "2026-03-11T17:00")], "exception moved, occurrence cancelled")
    master = sim.get_event(m["id"])
    expect_eq(len(master["cancelledOccurrences"]), 1, "the master lists the cancelled one")
    st, out, _ = sim.api("POST", "me/events", dict(at(2, 9), recurrence={
        "pattern": {"type": "weekly"}, "range": {"type": "noEnd", "startDate": "2026-03-02"}}))
    expect_eq(st, 400, "weekly without daysOfWeek")
    sim.delete_event(m["id"])
    expect_eq(sim.view(*WIN), [], "deleting the master removes the series")


# --- delta ---------------------------------------------------------------------


def test_calendar_view_delta():
    sim = GraphSim(seed=4)
    st, out, _ = sim.api("GET", "me/calendarView/delta")
    expect_eq((st, code(out)), (400, "ErrorInvalidParameter"), "a window is required")
    singles = [sim.create_event(dict(at(3 + i, 9), subject="s%d" % i)) for i in range(3)]
    m = sim.create_event(weekly())
    outside = sim.create_event(dict(at(2, 9), subject="April",
                                    start={"dateTime": "2026-04-10T09:00:00", "timeZone": "UTC"},
                                    end={"dateTime": "2026-04-10T10:00:00", "timeZone": "UTC"}))
    pages = []
    url = "me/calendarView/delta?startDateTime=%s&endDateTime=%s" % WIN
    while True:
        page = sim._ok("GET", url, prefer=["odata.maxpagesize=2"])
        pages.append(page)
        expect(("@odata.nextLink" in page) != ("@odata.deltaLink" in page),
               "a page has one link", page)
        if "@odata.deltaLink" in page:
            break
        url = page["@odata.nextLink"]
        expect("$skiptoken=" in url and "startDateTime" not in url, "skiptoken link", url)
    expect_eq([len(p["value"]) for p in pages], [2, 2, 2, 1], "pages of maxpagesize")
    got = [e for p in pages for e in p["value"]]
    expect_eq(sorted(e["type"] for e in got), ["occurrence"] * 4 + ["singleInstance"] * 3,
              "occurrences and singles, never the master")
    expect(m["id"] not in [e["id"] for e in got] and outside["id"] not in
           [e["id"] for e in got], "no master, nothing outside the window")
    link = pages[-1]["@odata.deltaLink"]
    expect("$deltatoken=" in link, "a deltaLink", link)

    again, link2 = sim.delta_all(link)
    expect_eq(again, [], "nothing changed")
    sim.patch_event(singles[0]["id"], {"subject": "s0!"})
    sim.delete_event(singles[1]["id"])
    sim.person_update(outside["id"], {"subject": "April!"})
    sim.person_move(singles[2]["id"], start={"dateTime": "2026-05-01T09:00:00",
                                             "timeZone": "UTC"},
                    end={"dateTime": "2026-05-01T10:00:00", "timeZone": "UTC"})
    occ = [e for e in got if e["type"] == "occurrence"]
    sim.delete_event(occ[0]["id"])
    changes, link3 = sim.delta_all(link2)
    by_id = {e["id"]: e for e in changes}
    expect_eq(by_id[singles[0]["id"]].get("subject"), "s0!", "an update")
    for gone in (singles[1]["id"], singles[2]["id"], occ[0]["id"], outside["id"]):
        expect_eq(by_id.get(gone, {}).get("@removed"), {"reason": "deleted"},
                  "@removed: deleted, moved out, cancelled occurrence, changed outside")
    expect_eq(len(changes), 5, "and nothing else (the other occurrences did not change)")
    sim.person_update(m["id"], {"subject": "Weekly!"})
    changes, link4 = sim.delta_all(link3)
    expect_eq(sorted((e["type"], e["subject"]) for e in changes),
              [("occurrence", "Weekly!")] * 3, "a series edit: its occurrences")

    sim.invalidate_delta()
    st, out, h = sim.api("GET", link4)
    expect_eq((st, code(out)), (410, "syncStateNotFound"), "an invalidated delta token")
    loc = h["location"]
    expect("$deltatoken=&startDateTime=2026-03-01T00:00:00Z" in loc, "Location: start over", loc)
    full, _ = sim.delta_all(loc)
    expect_eq(sorted(e["type"] for e in full), ["occurrence"] * 3 + ["singleInstance"],
              "the Location URL runs a full round: s0 and the series' 3 occurrences left")


# --- change notifications -----------------------------------------------------


def test_subscriptions():
    sim = GraphSim(seed=5, subscription_min_minutes=0, validation_timeout_s=1,
                   notify_backoff_ms=50)
    rx = Receiver()
    sub = sim.subscribe(rx.url + "/hooks/graph?tenant=t1", client_state="s3cret",
                        lifecycle_url=rx.url + "/life")
    expect_eq((sub["clientState"], sub["resource"], sub["applicationId"]),
              ("s3cret", "me/events", CLIENT_ID), "the subscription")
    hs = [g for g in rx.got() if "validationToken" in g["query"]]
    expect_eq([g["path"].split("?")[0] for g in hs], ["/hooks/graph", "/life"],
              "both URLs are validated")
    expect(hs[0]["headers"]["content-type"].startswith("text/plain") and hs[0]["query"][
        "tenant"] == "t1", "the handshake keeps the URL's query", hs[0])

    ev = sim.create_event(dict(at(2, 9), subject="n"))
    sim.person_update(ev["id"], {"subject": "n2"})
    sim.delete_event(ev["id"])
    sim.wait_notifications()
    ns = rx.notifications()
    expect_eq([(n["changeType"], n["resourceData"]["id"], n["clientState"]) for n in ns],
              [("created", ev["id"], "s3cret"), ("updated", ev["id"], "s3cret"),
               ("deleted", ev["id"], "s3cret")], "notifications echo clientState")
    expect_eq((ns[0]["subscriptionId"], ns[0]["resource"], ns[0]["resourceData"]["@odata.type"]),
              (sub["id"], "Users/%s/Events/%s" % (USER_ID, ev["id"]),
               "#Microsoft.Graph.Event"), "notification shape")
    expect(all(g["query"].get("tenant") == "t1" for g in rx.got()
               if g["path"].startswith("/hooks/graph")), "the query is kept")

    renewed = sim.renew(sub["id"], minutes=120)
    expect(renewed["expirationDateTime"] > sub["expirationDateTime"], "PATCH renews", renewed)
    st, out, _ = sim.api("PATCH", "subscriptions/" + sub["id"],
                         {"expirationDateTime": iso_in(20000 * 60)})
    expect_eq((st, code(out)), (400, "ExtensionError"), "beyond the events' maximum")
    only_created = sim.subscribe(rx.url + "/c", change_type="created")
    n = len(rx.notifications())
    e2 = sim.create_event(dict(at(3, 9)))
    sim.patch_event(e2["id"], {"subject": "x"})
    sim.wait_notifications()
    expect_eq(sorted((x["subscriptionId"] == only_created["id"], x["changeType"])
                     for x in rx.notifications()[n:]),
              [(False, "created"), (False, "updated"), (True, "created")],
              "each subscription gets its change types")

    sim.unsubscribe(only_created["id"])
    sim.expire_subscriptions(sub["id"])
    n = len(rx.notifications())
    sim.patch_event(e2["id"], {"subject": "y"})
    sim.wait_notifications()
    expect_eq(rx.notifications()[n:], [], "expired and deleted subscriptions are quiet")
    st, _, _ = sim.api("PATCH", "subscriptions/" + sub["id"], {"expirationDateTime": iso_in(600)})
    expect_eq(st, 404, "an expired subscription cannot be renewed")
    expect_eq(sim.stats()["subscriptions_live"], 0, "stats")

    short = sim.subscribe(rx.url + "/s", minutes=1.0 / 60)
    wait_until(lambda: not sim.live_subscriptions(), 5, "a 1-second subscription to expire")
    expect_eq(sim.subscriptions()[-1]["id"], short["id"], "listed, not live")

    for mode, why in (("wrong", "body"), ("500", "status"), ("json", "content type"),
                      ("slow:1.5", "timed out")):
        bad = Receiver(validation=mode)
        st, out, _ = sim.api("POST", "subscriptions", {
            "changeType": "created", "notificationUrl": bad.url + "/h", "resource": "me/events",
            "expirationDateTime": iso_in(3600)})
        expect_eq((st, code(out)), (400, "InvalidRequest"), "validation %s fails" % mode)
        expect("Subscription validation request failed" in out["error"]["message"],
               "the message", out)
    expect_eq(len(sim.live_subscriptions()), 0, "no subscription was created")

    life = sim.subscribe(rx.url + "/h2", client_state="c2", lifecycle_url=rx.url + "/life")
    sim.lifecycle(life["id"], "reauthorizationRequired")
    sim.wait_notifications()
    lc = [g["body"]["value"][0] for g in rx.got() if g["path"] == "/life" and g["body"]]
    expect_eq([(x["lifecycleEvent"], x["subscriptionId"], x["clientState"]) for x in lc],
              [("reauthorizationRequired", life["id"], "c2")], "a lifecycle notification")


# --- limits and faults -------------------------------------------------------


def test_throttling_and_faults():
    sim = GraphSim(seed=6, mailbox_rate=3, mailbox_window_s=60)
    sim.grant()
    codes = [sim.api("GET", "me/events")[0] for _ in range(4)]
    expect_eq(codes, [200, 200, 200, 429], "the rate limit")
    st, out, h = sim.api("GET", "me/events")
    expect(code(out) == "TooManyRequests" and int(h["retry-after"]) >= 1, "Retry-After", h)
    sim.throttle(rate=0, concurrency=2, latency_ms=400)
    results = []
    ts = [threading.Thread(target=lambda: results.append(sim.api("GET", "me/events")))
          for _ in range(3)]
    for t in ts:
        t.start()
        time.sleep(0.05)
    for t in ts:
        t.join(10)
    statuses = sorted(r[0] for r in results)
    expect_eq(statuses, [200, 200, 429], "a third request in flight")
    thr = [r for r in results if r[0] == 429][0]
    expect_eq((code(thr[1]), thr[1]["error"]["message"], thr[2]["retry-after"]),
              ("ApplicationThrottled", "Application is over its MailboxConcurrency limit.",
               "1"), "the concurrency answer")
    sim.throttle(concurrency=0, latency_ms=0)

    sim.faults([{"reset": "after", "match": {"method": "POST", "path_prefix": "/v1.0/me/events"}}])
    tx = dict(at(5, 9), subject="Lost answer", transactionId="job-lost")
    err = None
    try:
        sim.api("POST", "me/events", tx)
    except (OSError, http.client.HTTPException) as e:
        err = e
    expect(err is not None, "the answer was lost")
    again = sim.create_event(tx)
    expect_eq([e["id"] for e in sim.events().values()], [again["id"]],
              "the retry with its transactionId made no duplicate")
    sim.faults([{"status": 503, "retry_after": "2"}, {"status": 504}])
    st1, o1, h1 = sim.api("GET", "me/events")
    st2, o2, _ = sim.api("GET", "me/events")
    expect_eq((st1, code(o1), h1.get("retry-after"), st2, code(o2)),
              (503, "serviceNotAvailable", "2", 504, "UnknownError"), "injected statuses")
    log = sim.requests(method="POST")
    expect_eq([r["status"] for r in log], ["lost", 201], "the log")
    sim.reset()
    expect_eq((sim.events(), sim.stats()["requests"], sim.requests()), ({}, 0, []),
              "/_sim/reset forgets events, stats and the log")
    expect_eq(sim.api("GET", "me/events")[0], 401, "... and the tokens")


if __name__ == "__main__":
    harness.run_tests(globals())
