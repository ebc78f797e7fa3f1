#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Self-test of tests/sims/hubspot.py and tests/e2e/hubspot_harness.py over
real sockets. Needs no concord: a harness.Listener plays the webhook
endpoint."""

import http.client
import http.server
import json
import os
import re
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Listener, wait_until  # noqa: E402
from hubspot_harness import (BASE, SECRET, HubSpotSim, events_of, v3_signature,  # noqa: E402
                             verify_v3)

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
PUBLIC = "https://concord.example.com/hooks/hubspot?portal=62515"


def expect(cond, msg, *values):
    if not cond:
        raise AssertionError(msg + "".join(" | %r" % (v,) for v in values))


def expect_eq(got, want, what):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


def quiet_sim(**flags):
    """A sim without rate limits (they have their own test)."""
    flags.setdefault("rate_max", 0)
    flags.setdefault("search_rate", 0)
    return HubSpotSim(**flags)


def connection_error(fn):
    try:
        fn()
    except (OSError, http.client.HTTPException) as e:
        return e
    return None


def lf(op, value, prop="lastmodifieddate", **extra):
    return dict({"propertyName": prop, "operator": op, "value": str(value)}, **extra)


# --- auth, routes ------------------------------------------------------------


def test_auth_and_routes():
    sim = quiet_sim()
    for token, what in ((None, "no token"), ("pat-na1-wrong", "a wrong token")):
        st, body, hdrs = sim.api("POST", BASE, {"properties": {"email": "a@b.co"}}, token=token)
        expect_eq((st, body["status"], body["category"]),
                  (401, "error", "INVALID_AUTHENTICATION"), what)
        expect_eq(body["correlationId"], hdrs["x-hubspot-correlation-id"], "correlation id")
        expect(re.match(r"^[0-9a-f-]{36}$", body["correlationId"]), "a uuid", body)
    st, body, _ = sim.api("GET", BASE, token=None, headers={"Authorization": "Basic eDp5"})
    expect_eq(st, 401, "Basic is not a private-app token")
    expect_eq(sim.contacts(), {}, "a refused create created nothing")
    stats = sim.stats()
    expect_eq((stats["unauthorized"], stats["creates"]), (3, 0), "stats")
    expect_eq([r["refused"] for r in sim.requests()], ["unauthorized"] * 3, "log")

    st, body, _ = sim.api("GET", "/crm/v3/objects/companies")
    expect_eq((st, body["category"]), (404, "OBJECT_NOT_FOUND"), "unknown route")
    st, _, _ = sim.api("PUT", BASE + "/1001", {"properties": {}})
    expect_eq(st, 405, "PUT is no operation of contacts")
    st, body, _ = sim.api("POST", BASE, '{"properties": {')
    expect_eq((st, body["category"]), (400, "VALIDATION_ERROR"), "malformed JSON")
    expect(body["message"].startswith("Invalid input JSON"), "message", body)
    bad = sim.invalid()
    expect_eq([(r["method"], r["status"]) for r in bad], [("GET", 404), ("PUT", 405),
                                                          ("POST", 400)], "invalid log")


# --- contacts ------------------------------------------------------------------


def test_contact_crud():
    sim = quiet_sim()
    c = sim.create_contact(email="Ada@Example.COM", firstname="Ada", phone="+40 700")
    expect(re.match(r"^\d+$", c["id"]), "numeric id", c)
    p = c["properties"]
    expect_eq(p["email"], "ada@example.com", "emails are kept in lower case")
    expect_eq((p["hs_object_id"], p["firstname"], p["phone"]), (c["id"], "Ada", "+40 700"),
              "properties")
    expect(all(isinstance(v, str) for v in p.values()), "string values", p)
    expect(ISO.match(p["createdate"]) and p["createdate"] == p["lastmodifieddate"]
           == c["createdAt"] == c["updatedAt"], "timestamps", c)
    expect_eq(c["archived"], False, "archived")

    got = sim.get_contact(c["id"])
    expect_eq(set(got["properties"]), {"createdate", "email", "firstname", "hs_object_id",
                                       "lastmodifieddate", "lastname"}, "default properties")
    expect_eq(got["properties"]["lastname"], None, "an unset default is null")
    got = sim.get_contact(c["id"], properties=["phone", "company", "nosuchprop"])
    expect_eq(got["properties"], {"phone": "+40 700", "company": None,
                                  "createdate": p["createdate"], "hs_object_id": c["id"],
                                  "lastmodifieddate": p["lastmodifieddate"]}, "asked-for")
    expect_eq(sim.get_contact("ADA@example.com", id_property="email")["id"], c["id"],
              "GET by email")

    u = sim.update_contact(c["id"], lastname="Lovelace", phone="")
    expect_eq((u["properties"]["lastname"], u["properties"]["phone"]), ("Lovelace", ""),
              "PATCH; an empty string clears")
    expect(u["properties"]["lastmodifieddate"] > p["lastmodifieddate"], "modified later", u)
    same = sim.update_contact(c["id"], lastname="Lovelace")
    expect_eq(same["updatedAt"], u["updatedAt"], "setting a value it has changes nothing")
    u2 = sim.update_contact("ada@example.com", id_property="email", company="Analytical")
    expect_eq(u2["properties"]["company"], "Analytical", "PATCH by email")
    h = sim.api("GET", BASE + "/%s?propertiesWithHistory=phone" % c["id"])[1]
    hist = h["propertiesWithHistory"]["phone"]
    expect_eq([x["value"] for x in hist], ["", "+40 700"], "history, newest first")
    expect_eq(hist[0]["sourceType"], "INTEGRATION", "history source")

    st, body, _ = sim.api("DELETE", BASE + "/" + c["id"])
    expect_eq((st, body), (204, None), "archive")
    st, body, _ = sim.api("GET", BASE + "/" + c["id"])
    expect_eq((st, body), (404, None), "an archived contact: 404, empty body")
    arch = sim.get_contact(c["id"], archived=True)
    expect(arch["archived"] is True and ISO.match(arch["archivedAt"]), "archived=true", arch)
    expect_eq(sim.api("DELETE", BASE + "/" + c["id"])[0], 204, "archive again: 204")
    st, body, _ = sim.api("GET", BASE + "/nobody@example.com")
    expect_eq((st, body["category"]), (404, "OBJECT_NOT_FOUND"), "non-numeric id")
    st, _, _ = sim.api("PATCH", BASE + "/99999", {"properties": {"firstname": "x"}})
    expect_eq(st, 404, "PATCH of an unknown id")
    again = sim.create_contact(email="ada@example.com")
    expect(int(again["id"]) > int(c["id"]), "an archived contact frees its email", again)
    expect_eq(sim.invalid(), [], "nothing invalid")


def test_list_paging():
    sim = quiet_sim()
    ids = [sim.create_contact(email="p%02d@example.com" % i)["id"] for i in range(25)]
    seen, after, pages = [], None, 0
    for _ in range(10):
        page = sim.list_page(limit=10, after=after)
        seen += [r["id"] for r in page["results"]]
        pages += 1
        if pages == 1:
            late = sim.create_contact(email="late@example.com")["id"]
        nxt = page.get("paging", {}).get("next")
        if not nxt:
            break
        expect(nxt["link"].endswith(nxt["after"]), "link", nxt)
        after = nxt["after"]
    expect_eq(seen, ids + [late], "every contact once, by id, a new one at the end")
    expect_eq(pages, 3, "10 + 10 + 6")
    first = sim.list_page(limit=2)
    cur = first["paging"]["next"]["after"]
    expect("%" in cur, "the cursor is URL-encoded, as the spec's example", cur)
    twice = sim.api("GET", BASE + "?limit=2&after=" + urllib.parse.quote(cur, safe=""))[1]
    expect_eq([r["id"] for r in twice["results"]], ids[2:4], "a cursor encoded again works")
    st, body, _ = sim.api("GET", BASE + "?limit=101")
    expect_eq((st, body["category"]), (400, "VALIDATION_ERROR"), "limit over 100")
    sim.archive_contact(ids[0])
    expect_eq([r["id"] for r in sim.list_page(archived=True)["results"]], [ids[0]],
              "archived=true lists archived ones only")
    expect_eq([r["id"] for r in sim.list_page(limit=1)["results"]], [ids[1]],
              "and the default list leaves them out")


def test_validation_against_spec():
    sim = quiet_sim(properties="concord_id")
    good = [
        ("POST", BASE, {"properties": {"email": "v@example.com", "concord_id": "x1"}}),
        ("POST", BASE, {"properties": {"email": "w@example.com"}, "associations": []}),
        ("POST", BASE + "/search", {}),
        ("POST", BASE + "/search", {"filterGroups": [], "sorts": [
            {"propertyName": "lastmodifieddate", "direction": "DESCENDING"}], "limit": 5,
            "after": "0", "properties": ["email"]}),
    ]
    for method, path, body in good:
        st, answer, _ = sim.api(method, path, body)
        expect(st in (200, 201), "valid %s %s" % (method, json.dumps(body)), st, answer)
    expect_eq(sim.invalid(), [], "valid requests are not marked")

    bad = [
        ({"properties": {"email": "x@example.com", "age": 42}}, "`java.lang.String`"),
        ({"email": "x@example.com"}, "required attributes are not set [properties]"),
        ({"properties": "email=x"}, "from String value"),
        ([{"properties": {}}], "from Array value"),
        ({"properties": {}, "associations": [{"to": {"id": "1"}}]}, "[types]"),
    ]
    for body, want in bad:
        st, answer, _ = sim.api("POST", BASE, body)
        expect_eq((st, answer["category"]), (400, "VALIDATION_ERROR"), json.dumps(body))
        expect(want in answer["message"], "message for %s" % json.dumps(body), answer)
    searches = [
        {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQUALS",
                                        "value": "a"}]}]},
        {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ",
                                        "value": 5}]}]},
        {"filterGroups": [{"filters": [{"operator": "EQ", "value": "a"}]}]},
        {"limit": "10"},
        {"after": 10},
        {"sorts": [{"direction": "ASCENDING"}]},
    ]
    for body in searches:
        st, answer, _ = sim.api("POST", BASE + "/search", body)
        expect_eq((st, answer["category"]), (400, "VALIDATION_ERROR"), json.dumps(body))
    expect_eq(len(sim.invalid()), len(bad) + len(searches), "each refused request is marked")
    expect(all(r["status"] == 400 and r["errors"] for r in sim.invalid()), "with reasons",
           sim.invalid())

    n = len(sim.invalid())
    st, _, _ = sim.api("GET", BASE + "?limit=2&count=5")
    expect_eq(st, 200, "HubSpot ignores a parameter it does not know")
    expect_eq(sim.invalid()[-1]["errors"], ["unknown query parameter count (HubSpot ignores "
                                            "it)"], "but the log marks it")
    st, _, _ = sim.api("GET", BASE + "?limit=ten")
    expect_eq(st, 400, "a non-integer limit")
    st, _, _ = sim.api("POST", BASE, "email=x", headers={"Content-Type": "text/plain"})
    expect_eq(st, 415, "not JSON")
    expect_eq(len(sim.invalid()), n + 3, "marked")

    for props, code in (({"favourite_colour": "red"}, "PROPERTY_DOESNT_EXIST"),
                        ({"hs_object_id": "7"}, "READ_ONLY_VALUE"),
                        ({"lastmodifieddate": "0"}, "READ_ONLY_VALUE"),
                        ({"email": "not-an-email"}, "INVALID_EMAIL")):
        st, answer, _ = sim.api("POST", BASE, {"properties": props})
        expect_eq((st, answer["category"]), (400, "VALIDATION_ERROR"), code)
        expect(answer["message"].startswith("Property values were not valid: ")
               and code in answer["message"], "property error", answer)
    expect_eq(len(sim.contacts()), 2, "only the valid creates created")

    strict = quiet_sim(strict_spec=True, any_property=True)
    st, answer, _ = strict.api("POST", BASE, {"properties": {"email": "s@example.com"}})
    expect((st, answer["category"]) == (400, "VALIDATION_ERROR")
           and "[associations]" in answer["message"], "strict: associations required", answer)
    st, _, _ = strict.api("POST", BASE + "/search", {})
    expect_eq(st, 400, "strict: search fields required")
    st, _, _ = strict.api("POST", BASE + "/search", {
        "filterGroups": [], "properties": [], "limit": 1, "after": "0",
        "sorts": [{"propertyName": "email"}]})
    expect_eq(st, 400, "strict: sorts are strings")
    st, _, _ = strict.api("POST", BASE + "/search", {
        "filterGroups": [], "properties": [], "limit": 1, "after": "0", "sorts": ["email"]})
    expect_eq(st, 200, "strict: a string sort")
    expect_eq(len(strict.invalid()), 3, "strict marks")


def test_duplicate_email_409():
    sim = quiet_sim()
    a = sim.create_contact(email="dup@example.com")
    b = sim.create_contact(email="other@example.com")
    st, body, _ = sim.api("POST", BASE, {"properties": {"email": "DUP@example.com"}})
    expect_eq((st, body["category"], body["message"]),
              (409, "CONFLICT", "Contact already exists. Existing ID: %s" % a["id"]), "409")
    st, body, _ = sim.api("PATCH", BASE + "/" + b["id"],
                          {"properties": {"email": "dup@example.com"}})
    expect_eq((st, body["message"]), (409, "Contact already exists. Existing ID: %s"
                                      % a["id"]), "an update onto a held email")
    st, body, _ = sim.api("POST", BASE + "/batch/create", {"inputs": [
        {"properties": {"email": "new@example.com"}},
        {"properties": {"email": "dup@example.com"}}]})
    expect_eq(st, 409, "a batch with a held email")
    expect_eq(len(sim.contacts()), 2, "created nothing, not even the first input")
    st, _, _ = harness.http_request(sim.port, "POST", "/_sim/ui_create",
                                    {"properties": {"email": "dup@example.com"}})
    expect_eq(st, 400, "a person cannot create one either")
    expect_eq(sim.stats()["conflicts"], 4, "conflicts counted")
    expect_eq(sim.invalid(), [], "a conflict is not a malformed request")


def test_batch():
    sim = quiet_sim()
    st, body, _ = sim.api("POST", BASE + "/batch/create", {"inputs": [
        {"properties": {"email": "b%d@example.com" % i}, "associations": []}
        for i in range(3)]})
    expect_eq((st, body["status"], len(body["results"])), (201, "COMPLETE", 3), "create")
    ids = [r["id"] for r in body["results"]]
    st, body, _ = sim.api("POST", BASE + "/batch/read", {
        "inputs": [{"id": ids[0]}, {"id": "424242"}], "properties": ["email"]})
    expect_eq((st, body["numErrors"], body["errors"][0]["context"]["ids"]),
              (207, 1, ["424242"]), "read with a missing id")
    expect_eq([r["properties"]["email"] for r in body["results"]], ["b0@example.com"], "read")
    st, body, _ = sim.api("POST", BASE + "/batch/read", {
        "inputs": [{"id": "B1@example.com"}], "properties": ["firstname"],
        "idProperty": "email"})
    expect_eq((st, body["results"][0]["id"]), (200, ids[1]), "read by email")
    st, body, _ = sim.api("POST", BASE + "/batch/update", {"inputs": [
        {"id": ids[0], "properties": {"firstname": "Zero"}},
        {"id": "b2@example.com", "idProperty": "email", "properties": {"firstname": "Two"}},
        {"id": "99999", "properties": {"firstname": "Nobody"}}]})
    expect_eq((st, body["numErrors"], len(body["results"])), (207, 1, 2), "update")
    expect_eq(sim.get_contact(ids[2])["properties"]["firstname"], "Two", "updated by email")
    st, body, _ = sim.api("POST", BASE + "/batch/upsert", {"inputs": [
        {"id": "b1@example.com", "idProperty": "email", "properties": {"lastname": "One"}},
        {"id": "fresh@example.com", "idProperty": "email", "properties": {"lastname": "F"}}]})
    expect_eq((st, [(r["properties"]["email"], r["new"]) for r in body["results"]]),
              (200, [("b1@example.com", False), ("fresh@example.com", True)]), "upsert")
    st, body, _ = sim.api("POST", BASE + "/batch/archive", {"inputs": [{"id": ids[0]},
                                                                      {"id": "31337"}]})
    expect_eq((st, body), (204, None), "archive")
    expect_eq(len(sim.contacts()), 3, "one archived")
    st, body, _ = sim.api("POST", BASE + "/batch/archive",
                          {"inputs": [{"id": str(i)} for i in range(101)]})
    expect_eq((st, body["category"]), (400, "VALIDATION_ERROR"), "at most 100 inputs")


# --- search ----------------------------------------------------------------------


def test_search_filters_sorts_paging():
    sim = quiet_sim()
    t0 = 1700000000000
    contacts = [{"properties": {"email": "s%d@%s" % (i, "example.org" if i % 2 else
                                                     "example.com"),
                                "firstname": "Name%d" % i},
                 "createdate": t0 - 1000, "lastmodifieddate": t0 + i * 1000}
                for i in range(6)]
    contacts.append({"properties": {"firstname": "Noemail"}, "createdate": t0 - 1000,
                     "lastmodifieddate": t0 + 6000})
    ids = sim.seed(contacts=contacts)

    def hits(filters, **body):
        body = dict({"filterGroups": [{"filters": filters}] if filters else [],
                     "properties": ["email"], "limit": 200}, **body)
        return [r["id"] for r in sim.search(body)["results"]]

    expect_eq(hits([lf("GT", t0 + 3000)]), ids[4:], "GT ms")
    expect_eq(hits([lf("GTE", t0 + 3000)]), ids[3:], "GTE ms")
    expect_eq(hits([lf("LT", t0 + 2000)]), ids[:2], "LT ms")
    expect_eq(hits([lf("LTE", "2023-11-14T22:13:22.000Z")]), ids[:3], "LTE ISO")
    expect_eq(hits([lf("EQ", t0 + 5000)]), [ids[5]], "EQ")
    expect_eq(hits([lf("GTE", t0 + 1000), lf("LT", t0 + 3000)]), ids[1:3], "AND")
    expect_eq(hits(None, filterGroups=[{"filters": [lf("EQ", t0)]},
                                       {"filters": [lf("EQ", t0 + 6000)]}]),
              [ids[0], ids[6]], "OR of groups")
    expect_eq(hits([lf("EQ", "S3@EXAMPLE.ORG", "email")]), [ids[3]], "EQ email, any case")
    expect_eq(hits([lf("NEQ", "s3@example.org", "email")]), ids[:3] + ids[4:], "NEQ")
    expect_eq(hits([lf("CONTAINS_TOKEN", "*@example.org", "email")]), [ids[1], ids[3], ids[5]],
              "CONTAINS_TOKEN wildcard")
    expect_eq(hits([{"propertyName": "email", "operator": "NOT_HAS_PROPERTY"}]), [ids[6]],
              "NOT_HAS_PROPERTY")
    expect_eq(hits([{"propertyName": "email", "operator": "IN",
                     "values": ["s0@example.com", "s2@example.com"]}]), [ids[0], ids[2]], "IN")
    expect_eq(hits([lf("BETWEEN", t0 + 1000, highValue=str(t0 + 2000))]), ids[1:3], "BETWEEN")
    expect_eq(hits(None, query="name4"), [ids[4]], "query")
    expect_eq(hits(None, sorts=[{"propertyName": "lastmodifieddate",
                                 "direction": "DESCENDING"}]), ids[::-1], "sort descending")
    expect_eq(hits(None, sorts=[{"propertyName": "email", "direction": "ASCENDING"}]),
              [ids[i] for i in (0, 1, 2, 3, 4, 5, 6)], "sort by email, unset last")

    first = sim.search({"limit": 3, "after": "0", "properties": [], "filterGroups": [],
                        "sorts": [{"propertyName": "lastmodifieddate",
                                   "direction": "ASCENDING"}]})
    expect_eq((first["total"], [r["id"] for r in first["results"]], first["paging"]["next"]),
              (7, ids[:3], {"after": "3", "link": "?after=3"}), "first page")
    expect_eq(set(first["results"][0]["properties"]), {"createdate", "email", "firstname",
                                                       "hs_object_id", "lastmodifieddate",
                                                       "lastname"}, "default properties")
    expect_eq(first["results"][0]["properties"]["lastmodifieddate"], "2023-11-14T22:13:20.000Z",
              "lastmodifieddate as ISO")
    last = sim.search({"limit": 3, "after": "6"})
    expect("paging" not in last and len(last["results"]) == 1, "last page has no paging", last)
    expect_eq(sorted(r["id"] for r in sim.search_all()), sorted(ids), "search_all")

    sim.archive_contact(ids[0])
    expect(ids[0] not in hits(None), "archived contacts leave search")
    for body, what in (({"limit": 201}, "limit over 200"),
                       ({"after": "x"}, "after not an offset"),
                       ({"filterGroups": [{"filters": [lf("GT", 1)]}] * 7}, "7 groups"),
                       ({"sorts": [{"propertyName": "email"}, {"propertyName": "firstname"}]},
                        "two sorts"),
                       ({"filterGroups": [{"filters": [lf("GT", "yesterday")]}]}, "a bad date"),
                       ({"filterGroups": [{"filters": [lf("EQ", "x", "nosuch")]}]},
                        "an unknown property")):
        st, body_, _ = sim.api("POST", BASE + "/search", body)
        expect_eq((st, body_["category"]), (400, "VALIDATION_ERROR"), what)


def test_search_window_10000():
    sim = quiet_sim()
    t0 = 1700000000000
    sim.seed(count=10050, properties={"email": "w{i}@example.com"}, lastmodifieddate=t0)
    tail = sim.seed(contacts=[{"properties": {"email": "late@example.com"},
                               "lastmodifieddate": t0 + 1}])
    body = {"filterGroups": [{"filters": [lf("GTE", t0)]}], "properties": ["email"],
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            "limit": 200, "after": "9800"}
    page = sim.search(body)
    expect_eq((page["total"], len(page["results"]), page["paging"]["next"]["after"]),
              (10051, 200, "10000"), "the page that ends at the 10,000th result")
    body["after"], body["limit"] = "9990", 20
    page = sim.search(body)
    expect_eq((len(page["results"]), page["paging"]["next"]["after"]), (10, "10000"),
              "a page is cut at the window")
    body["after"] = "10000"
    st, err, _ = sim.api("POST", BASE + "/search", body)
    expect_eq((st, err["category"]), (400, "VALIDATION_ERROR"), "after 10,000: 400")
    expect(sim.invalid()[-1]["status"] == 400, "marked invalid")
    # Re-anchoring on lastmodifieddate is how a client gets past it.
    body = {"filterGroups": [{"filters": [lf("GT", t0)]}], "limit": 200, "after": "0"}
    expect_eq([r["id"] for r in sim.search(body)["results"]], tail, "re-anchored")


def test_search_lag():
    sim = quiet_sim(search_lag_ms=1000)
    find = {"filterGroups": [{"filters": [lf("EQ", "lag@example.com", "email")]}],
            "properties": ["firstname"]}
    t = time.monotonic()
    c = sim.create_contact(email="lag@example.com", firstname="Before")
    expect_eq(sim.search(find)["total"], 0, "a new contact is not searchable at once")
    expect_eq(sim.get_contact(c["id"])["id"], c["id"], "but it can be read")
    wait_until(lambda: sim.search(find)["total"] == 1, 5, "the index to catch up")
    expect(time.monotonic() - t >= 0.95, "after the lag")
    sim.update_contact(c["id"], firstname="After")
    expect_eq(sim.search(find)["results"][0]["properties"]["firstname"], "Before",
              "search shows the old value during the lag")
    wait_until(lambda: sim.search(find)["results"][0]["properties"]["firstname"] == "After", 5,
               "the new value")
    sim.archive_contact(c["id"])
    expect_eq(sim.search(find)["total"], 1, "an archived contact lingers during the lag")
    sim.search_lag(0)
    expect_eq(sim.search(find)["total"], 0, "lag 0: at once")


# --- webhooks ------------------------------------------------------------------


def test_webhooks_signed_and_batched():
    hook = Listener()
    sim = quiet_sim(webhook_url=hook.url + "/hooks/hubspot", webhook_public_url=PUBLIC,
                    webhook_batch_ms=300, seed=7)
    c = sim.create_contact(email="hook@example.com", firstname="Hook")
    wait_until(lambda: hook.got(), 5, "the creation webhook")
    sim.wait_delivered()
    reqs = hook.got()
    expect_eq(len(reqs), 1, "one batched POST")
    req = reqs[0]
    expect_eq((req["method"], req["path"]), ("POST", "/hooks/hubspot"), "loopback URL")
    expect(verify_v3(req, SECRET, PUBLIC), "v3 signed over the public URL", req["headers"])
    expect(not verify_v3(req, SECRET, hook.url + "/hooks/hubspot"),
           "not over the URL it was sent to")
    expect(not verify_v3(req, "another-secret", PUBLIC), "the secret matters")
    ts = int(req["headers"]["x-hubspot-request-timestamp"])
    expect(abs(ts - time.time() * 1000) < 5000, "timestamp in ms", ts)
    expect_eq(req["headers"]["x-hubspot-signature-version"], "v1", "legacy version header")
    evs = events_of(req)
    expect_eq(sorted((e["subscriptionType"], e.get("propertyName")) for e in evs),
              [("contact.creation", None), ("contact.propertyChange", "email"),
               ("contact.propertyChange", "firstname")], "creation + its properties")
    for e in evs:
        expect_eq((e["objectId"], e["portalId"], e["attemptNumber"], e["changeSource"]),
                  (int(c["id"]), 62515, 0, "INTEGRATION"), "event fields")
        expect(isinstance(e["eventId"], int) and isinstance(e["occurredAt"], int), "ints", e)
    expect_eq(len({e["eventId"] for e in evs}), 3, "unique event ids")
    expect_eq(len({e["subscriptionId"] for e in evs}), 3, "a subscription per type/property")

    out = sim.ui_update(c["id"], {"lastname": "Person"}, wait=True)
    expect_eq([d["status"] for d in out["deliveries"]], [200], "wait=true reports it")
    e = events_of(hook.got()[-1])[0]
    expect_eq((e["subscriptionType"], e["propertyName"], e["propertyValue"], e["changeSource"],
               e["sourceId"]), ("contact.propertyChange", "lastname", "Person", "CRM_UI",
                                "userId:9876543"), "a person's edit")
    out = sim.ui_delete(c["id"], wait=True)
    e = events_of(hook.got()[-1])[0]
    expect_eq((e["subscriptionType"], e["objectId"]), ("contact.deletion", int(c["id"])),
              "a person's delete")
    expect_eq(sim.contacts(), {}, "archived")
    fates = {e["fate"] for e in sim.sim_events()}
    expect_eq(fates, {"delivered"}, "every event delivered")

    new = sim.ui_create({"email": "ui@example.com"}, wait=True)
    expect_eq(len(new["events"]), 2, "ui_create: creation + email")
    st = sim.send_raw([{"eventId": 1}], sign=True, timestamp=1000)
    expect_eq(st["status"], 200, "send_raw")
    expect(not verify_v3(hook.got()[-1], SECRET, PUBLIC), "a signature from 1970 is stale")
    expect_eq(hook.got()[-1]["headers"]["x-hubspot-signature-v3"],
              v3_signature(SECRET, "POST", PUBLIC, b'[{"eventId":1}]', 1000), "but it is right")


def test_webhook_retries():
    hook = Listener(status=500)
    sim = quiet_sim(webhook_url=hook.url, webhook_attempts=4, webhook_backoff_ms=30,
                    webhook_batch_ms=0, no_creation_property_events=True)
    sim.create_contact(email="r@example.com")
    wait_until(lambda: len(hook.got()) >= 2, 5, "a retry")
    hook.status = 200
    sim.wait_delivered()
    bodies = [events_of(r) for r in hook.got()]
    expect_eq([b[0]["attemptNumber"] for b in bodies], list(range(len(bodies))),
              "attemptNumber counts the attempts")
    expect_eq(len({b[0]["eventId"] for b in bodies}), 1, "the same event every time")
    expect(all(verify_v3(r, SECRET, hook.url) for r in hook.got()), "each attempt signed anew")
    d = sim.deliveries()
    expect_eq(([x["status"] for x in d][-1], d[-1]["ok"]), (200, True), "delivered at last")

    for status, fate in ((400, "rejected"), (503, "failed")):
        hook.status = status
        n = len(hook.got())
        out = sim.ui_create({"email": "r%d@example.com" % status}, wait=True)
        sim.wait_delivered()
        attempts = len(hook.got()) - n
        expect_eq(attempts, 1 if status == 400 else 4, "attempts after %d" % status)
        ev = [e for e in sim.sim_events() if e["eventId"] in out["events"]]
        expect_eq({e["fate"] for e in ev}, {fate}, "fate after %d" % status)
    wh = sim.stats()["webhooks"]
    expect_eq((wh["rejected"], wh["gave_up"]), (1, 1), "stats")

    hook.status = 200
    sim.resend(out["events"])
    sim.wait_delivered()
    expect_eq(events_of(hook.got()[-1])[0]["eventId"], out["events"][0], "resend")
    sim.webhooks(url=None)
    out = sim.ui_create({"email": "nowhere@example.com"})
    expect_eq(sim.sim_events()[-1]["fate"], "discarded", "no url: not sent")


class ScriptedHook:
    """A webhook receiver that answers each POST by a script: ("429", s)
    answers 429 with Retry-After s, ("sleep", s) answers 200 after s
    seconds, and past the script 200. Records (monotonic time, body)."""

    def __init__(self, script):
        outer = self
        self.script = list(script)
        self.got = []
        self.lock = threading.Lock()

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer.lock:
                    outer.got.append((time.monotonic(), body))
                    step = outer.script.pop(0) if outer.script else ("ok", 0)
                status, extra = 200, {}
                if step[0] == "429":
                    status, extra = 429, {"Retry-After": str(step[1])}
                elif step[0] == "sleep":
                    time.sleep(step[1])
                try:
                    self.send_response(status)
                    for k, v in extra.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass

        class S(http.server.ThreadingHTTPServer):
            daemon_threads = True

        self.server = S(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        harness.cleanup(self)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def test_webhook_retry_after_and_timeout():
    hook = ScriptedHook([("429", 1), ("sleep", 0.8)])
    sim = quiet_sim(webhook_url=hook.url, webhook_backoff_ms=20, webhook_timeout_s=0.3,
                    webhook_batch_ms=0, no_creation_property_events=True)
    sim.ui_create({"email": "ra@example.com"})
    wait_until(lambda: len(hook.got) >= 3, 10, "three attempts")
    sim.wait_delivered()
    times = [t for t, _ in hook.got]
    expect(times[1] - times[0] >= 0.95, "a 429's Retry-After is honoured", times)
    expect(times[2] - times[1] < 0.8, "a timed-out attempt is retried on its backoff", times)
    d = sim.deliveries()
    expect_eq([x["status"] for x in d], [429, None, 200], "429, timeout, delivered")
    expect("timed out" in (d[1]["error"] or ""), "the timeout is logged", d[1])
    expect_eq([json.loads(b)[0]["attemptNumber"] for _, b in hook.got], [0, 1, 2],
              "attempt numbers")


def test_webhook_pause_disable_and_mischief():
    hook = Listener()
    sim = quiet_sim(webhook_url=hook.url, webhook_batch_ms=0, webhook_batch_max=3,
                    no_creation_property_events=True)
    sim.webhooks(paused=True)
    ids = [sim.ui_create({"email": "p%d@example.com" % i})["contact"]["id"] for i in range(7)]
    expect_eq(len(sim.contacts()), 7, "changes go on while paused")
    expect_eq((hook.got(), sim.stats()["webhooks"]["pending"]), ([], 7), "nothing sent")
    sim.webhooks(paused=False)
    sim.wait_delivered()
    sizes = [len(events_of(r)) for r in hook.got()]
    expect_eq(sizes, [3, 3, 1], "sent on resume, in batches of --webhook-batch-max")
    expect_eq([e["objectId"] for r in hook.got() for e in events_of(r)],
              [int(i) for i in ids], "in order")

    sim.webhooks(enabled=False)
    sim.ui_update(ids[0], {"firstname": "Lost"})
    sim.webhooks(enabled=True)
    expect_eq(sim.sim_events()[-1]["fate"], "discarded", "a disabled subscription loses it")
    expect_eq(len(hook.got()), 3, "and sends nothing")

    def run(seed):
        h = Listener()
        s = quiet_sim(webhook_url=h.url, webhook_public_url=PUBLIC, webhook_batch_ms=0,
                      no_creation_property_events=True, seed=seed)
        s.webhooks(seed=seed, dup=0.3, stale=0.3, bad_signature=0.3, drop=0.1, delay_ms=20)
        for i in range(12):
            s.ui_create({"email": "m%d@example.com" % i}, wait=True)
        s.wait_delivered()
        # Sorted: a duplicate's extra delay may race the next batch.
        plan = sorted((d["event_ids"], d["copy"], d["attempt"], d.get("stale") or False,
                       d.get("bad_signature") or False, str(d["status"]))
                      for d in s.deliveries())
        return h, s, plan

    h1, s1, plan1 = run(11)
    _, _, plan2 = run(11)
    expect_eq(plan1, plan2, "the same seed, the same mischief")
    st = s1.stats()["webhooks"]
    expect(st["dups"] and st["stale"] and st["bad_signatures"] and st["dropped"],
           "every kind of mischief happened", st)
    spoiled = [d for d in s1.deliveries() if d.get("stale") or d.get("bad_signature")]
    good = [r for r in h1.got() if verify_v3(r, SECRET, PUBLIC)]
    expect(spoiled, "some POSTs were spoiled")
    expect_eq(len(h1.got()) - len(good), len(spoiled),
              "exactly the stale and badly signed POSTs fail verification")
    got_ids = [e["eventId"] for r in h1.got() for e in events_of(r)]
    expect(len(got_ids) > len(set(got_ids)), "duplicates share event ids")


# --- rate limits and faults --------------------------------------------------------


def test_rate_limits():
    sim = HubSpotSim(rate_max=5, rate_interval_ms=1500, search_rate=0, rate_daily=1000)
    remaining = []
    for i in range(5):
        st, _, h = sim.api("GET", BASE)
        expect_eq(st, 200, "request %d" % i)
        expect_eq((h["x-hubspot-ratelimit-max"], h["x-hubspot-ratelimit-interval-milliseconds"],
                   h["x-hubspot-ratelimit-daily"]), ("5", "1500", "1000"), "headers")
        remaining.append(int(h["x-hubspot-ratelimit-remaining"]))
    expect_eq(remaining, [4, 3, 2, 1, 0], "Remaining counts down")
    st, body, h = sim.api("GET", BASE)
    expect_eq((st, body["errorType"], body["policyName"], body["status"]),
              (429, "RATE_LIMIT", "TEN_SECONDLY_ROLLING", "error"), "429 body")
    expect_eq(body["message"], "You have reached your ten_secondly_rolling limit.", "message")
    expect_eq(h["x-hubspot-ratelimit-remaining"], "0", "headers on the 429")
    expect_eq(sim.requests()[-1]["refused"], "rate_limited:TEN_SECONDLY_ROLLING", "logged")
    wait_until(lambda: sim.api("GET", BASE)[0] == 200, 5, "the window to roll")

    sim.rate_limit(max=0, search_per_s=2)
    body = {"filterGroups": [], "limit": 1}
    codes = [sim.api("POST", BASE + "/search", body) for _ in range(3)]
    expect_eq([c[0] for c in codes], [200, 200, 429], "the search limit is its own")
    expect_eq((codes[0][2]["x-hubspot-ratelimit-secondly"], codes[2][1]["policyName"]),
              ("2", "SECONDLY"), "secondly")
    expect_eq(sim.api("GET", BASE)[0], 200, "other endpoints go on")

    sim.rate_limit(daily=10, used_today=9)
    st1, _, h1 = sim.api("GET", BASE)
    st2, body, _ = sim.api("GET", BASE)
    expect_eq((st1, h1["x-hubspot-ratelimit-daily-remaining"], st2, body["policyName"]),
              (200, "0", 429, "DAILY"), "daily")
    rolled = sum(1 for r in sim.requests() if r["refused"] == "rate_limited:TEN_SECONDLY_ROLLING")
    expect_eq(sim.stats()["rate_limited"], {"TEN_SECONDLY_ROLLING": rolled, "SECONDLY": 1,
                                            "DAILY": 1}, "stats")


def test_faults():
    sim = quiet_sim()
    sim.faults([{"status": 503, "match": {"method": "POST"}},
                {"status": 429, "retry_after": "2", "match": {"path_prefix": BASE + "/"}}])
    st, body, _ = sim.api("POST", BASE, {"properties": {"email": "f@example.com"}})
    expect_eq((st, body["category"]), (503, "INTERNAL_ERROR"), "a HubSpot-shaped 5xx")
    st, body, h = sim.api("GET", BASE + "/1")
    expect_eq((st, body["policyName"], h["retry-after"]), (429, "TEN_SECONDLY_ROLLING", "2"),
              "an injected 429")
    expect_eq(sim.contacts(), {}, "a faulted create applies nothing")

    sim.faults([{"reset": "before"}])
    e = connection_error(lambda: sim.api("POST", BASE, {"properties": {"email": "x@y.co"}}))
    expect(e is not None, "reset before")
    expect_eq(sim.contacts(), {}, "nothing applied")
    sim.faults([{"reset": "after"}])
    e = connection_error(lambda: sim.api("POST", BASE, {"properties": {"email": "l@y.co"}}))
    expect(e is not None, "the answer was lost")
    held = list(sim.contacts().values())
    expect_eq([c["properties"]["email"] for c in held], ["l@y.co"], "but it was applied")
    expect_eq(sim.requests()[-1]["status"], "lost", "logged lost")
    st, body, _ = sim.api("POST", BASE, {"properties": {"email": "l@y.co"}})
    expect_eq((st, body["message"]), (409, "Contact already exists. Existing ID: %s"
                                      % held[0]["id"]), "a retry meets its own write")
    sim.faults([{"delay_ms": 1200, "apply": "first"}])
    e = connection_error(lambda: sim.api("PATCH", BASE + "/" + held[0]["id"],
                                         {"properties": {"firstname": "Slow"}}, timeout=0.4))
    expect(e is not None, "a client timeout")
    wait_until(lambda: sim.requests()[-1]["status"] == "timeout", 5, "the slow answer")
    expect_eq(sim.contacts()[held[0]["id"]]["properties"]["firstname"], "Slow",
              "applied all the same")

    def statuses(seed):
        s = quiet_sim()
        s.random(seed, 0.5, kinds=["503", "429", "500"])
        return [s.api("GET", BASE)[0] for _ in range(20)]

    a = statuses(5)
    expect_eq(a, statuses(5), "seeded random faults repeat")
    expect(set(a) - {200} and 200 in a, "a mix", a)


def test_control_reset_and_stats():
    sim = quiet_sim(seed=3)
    c = sim.create_contact(email="s@example.com")
    sim.get_contact(c["id"])
    sim.search({})
    sim.api("GET", BASE)
    st = sim.stats()
    expect_eq((st["creates"], st["reads"], st["searches"], st["list_reads"], st["contacts"],
               st["requests"], st["status"]), (1, 1, 1, 1, 1, 4, {"201": 1, "200": 3}), "stats")
    expect(st["spec"]["errata"] and st["spec"]["path"].endswith("hubspot-contacts-v3.json"),
           "stats name the spec", st["spec"])
    corr = sim.requests()[0]["correlation_id"]
    sim.reset()
    expect_eq((sim.contacts(), sim.requests(), sim.stats()["requests"]), ({}, [], 0), "reset")
    again = sim.create_contact(email="s@example.com")
    expect_eq((again["id"], sim.requests()[0]["correlation_id"]), (c["id"], corr),
              "ids and seeded correlation ids restart")


if __name__ == "__main__":
    harness.run_tests(globals())
