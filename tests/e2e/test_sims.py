#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Self-test of tests/sims/target.py and tests/e2e/harness.py. Needs no
concord: where the harness drives a daemon, a stand-in written here plays it."""

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Sim, Listener, wait_until  # noqa: E402


def expect(cond, msg, *values):
    if not cond:
        raise AssertionError(msg + "".join(" | %r" % (v,) for v in values))


def expect_eq(got, want, what):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


def connection_error(fn):
    """Runs fn; returns the exception if the connection failed, else None."""
    try:
        fn()
    except (OSError, http.client.HTTPException) as e:
        return e
    return None


# --- REST ------------------------------------------------------------------


def test_create_update_get_delete():
    sim = Sim()
    st, c1, _ = sim.rest("POST", "/contacts", {"full_name": "Ada", "id": "ignored"})
    expect_eq(st, 201, "create status")
    expect_eq(c1["id"], "c1", "assigned id")
    expect_eq(c1["full_name"], "Ada", "stored field")
    expect(isinstance(c1["updated_at"], int), "updated_at is int ms", c1)
    st, c2, _ = sim.rest("POST", "/contacts", {"full_name": "Grace"})
    expect_eq((st, c2["id"]), (201, "c2"), "second create")

    st, got, _ = sim.rest("GET", "/contacts/c1")
    expect_eq((st, got), (200, c1), "get c1")
    st, up, _ = sim.rest("PUT", "/contacts/c1", {"phone_number": "1"})
    expect_eq(st, 200, "put status")
    expect_eq({k: v for k, v in up.items() if k != "updated_at"},
              {"id": "c1", "phone_number": "1"}, "PUT replaces the record")
    expect(up["updated_at"] > c1["updated_at"], "updated_at grows", c1, up)
    st, pa, _ = sim.rest("PATCH", "/contacts/c1", {"full_name": "Ada L"})
    expect_eq((st, pa["phone_number"], pa["full_name"]), (200, "1", "Ada L"), "PATCH merges")

    st, lst, _ = sim.rest("GET", "/contacts")
    expect_eq((st, [r["id"] for r in lst["data"]]), (200, ["c1", "c2"]), "list")
    st, lst, _ = sim.rest("GET", "/contacts?full_name=Grace")
    expect_eq([r["id"] for r in lst["data"]], ["c2"], "list filtered by a field")

    expect_eq(sim.rest("DELETE", "/contacts/c2")[0], 204, "delete")
    expect_eq(sim.rest("DELETE", "/contacts/c2")[0], 404, "delete unknown")
    expect_eq(sim.rest("GET", "/contacts/c2")[0], 404, "get deleted")
    expect_eq(sim.rest("PUT", "/contacts/zz", {"a": 1})[0], 404, "put unknown")
    expect_eq(sim.rest("GET", "/other")[0], 404, "unknown resource")

    st, body, _ = sim.rest("POST", "/contacts", "{not json",
                           {"Content-Type": "application/json"})
    expect_eq(st, 400, "malformed JSON")
    expect("error" in body, "400 carries a JSON error", body)

    expect_eq(list(sim.records()), ["c1"], "records")
    s = sim.stats()
    expect_eq((s["creates"], s["updates"], s["deletes"]), (2, 2, 1), "stats counts")
    expect_eq(s["status"]["201"], 2, "per-status count")
    log = sim.requests()
    expect_eq([r["seq"] for r in log], list(range(1, len(log) + 1)), "seq numbers")
    expect_eq(log[0]["body"], {"full_name": "Ada", "id": "ignored"}, "logged body")
    expect_eq((log[0]["status"], log[0]["applied"]), (201, True), "logged outcome")
    expect_eq(log[-1]["body"], "{not json", "malformed body logged as text")
    expect_eq(log[-1]["applied"], False, "malformed body not applied")
    expect(not any(r["path"].startswith("/_sim") for r in log), "control calls not logged")

    sim.reset()
    expect_eq((sim.records(), sim.requests()), ({}, []), "reset clears")
    expect_eq(sim.rest("POST", "/contacts", {})[1]["id"], "c1", "ids restart after reset")


def test_keep_alive_connection_serves_many_requests():
    sim = Sim()
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)
    for i in range(5):
        conn.request("POST", "/contacts", body=json.dumps({"n": i}),
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        expect_eq(r.status, 201, "create over a kept-alive connection")
    conn.close()
    expect_eq(len(sim.records()), 5, "records")


def test_token_is_required_exactly():
    sim = Sim(token="Bearer t0k")
    st, body, _ = sim.rest("POST", "/contacts", {"a": 1})
    expect_eq(st, 401, "no token")
    expect("error" in body, "401 carries a JSON error", body)
    expect_eq(sim.rest("GET", "/contacts", headers={"Authorization": "Bearer t0"})[0],
              401, "wrong token")
    st, _, _ = sim.rest("POST", "/contacts", {"a": 1}, {"Authorization": "Bearer t0k"})
    expect_eq(st, 201, "right token")
    expect_eq(len(sim.records()), 1, "only the authorized create applied")
    log = sim.requests()
    expect_eq(harness.header(log[-1], "Authorization"), "Bearer t0k", "header logged")


# --- faults ----------------------------------------------------------------


def test_fault_503_with_retry_after():
    sim = Sim()
    sim.faults([{"status": 503, "retry_after": "2", "body": {"error": "busy"}}])
    st, body, hdrs = sim.rest("POST", "/contacts", {"a": 1})
    expect_eq((st, body, hdrs.get("retry-after")), (503, {"error": "busy"}, "2"), "503 answer")
    expect_eq(sim.records(), {}, "a faulted request is not applied")
    expect_eq(sim.rest("POST", "/contacts", {"a": 1})[0], 201, "the fault is used up")
    log = sim.requests()
    expect_eq([(r["status"], r["applied"]) for r in log], [(503, False), (201, True)], "log")


def test_fault_422_and_match_and_times():
    sim = Sim()
    sim.faults([
        {"match": {"method": "PUT", "path_prefix": "/contacts/"}, "status": 422,
         "body": {"error": "email invalid"}, "times": 2},
    ])
    expect_eq(sim.rest("POST", "/contacts", {"a": 1})[0], 201, "POST does not match")
    st, body, _ = sim.rest("PUT", "/contacts/c1", {"a": 2})
    expect_eq((st, body), (422, {"error": "email invalid"}), "first PUT")
    expect_eq(sim.rest("PUT", "/contacts/c1", {"a": 3})[0], 422, "second PUT")
    expect_eq(sim.rest("PUT", "/contacts/c1", {"a": 4})[0], 200, "third PUT passes")
    expect_eq(sim.records()["c1"]["a"], 4, "only the passing PUT applied")
    expect_eq(sim.stats()["faults_queued"], 0, "queue drained")


def test_fault_match_path_is_a_glob_and_unknown_keys_are_refused():
    sim = Sim()
    sim.faults([{"match": {"method": "POST", "path": "/contacts/*"}, "status": 503}])
    expect_eq(sim.rest("POST", "/contacts", {"a": 1})[0], 201, "the glob does not fit /contacts")
    expect_eq(sim.rest("POST", "/contacts/c9?x=1", {"a": 2})[0], 503, "it fits, query aside")
    # A misspelt key would otherwise match every request.
    st, body, _ = sim.rest("POST", "/_sim/faults", [{"match": {"paht": "/x"}, "status": 500}])
    expect_eq(st, 400, "unknown match key refused")
    expect("paht" in body["error"], "named in the answer", body)
    expect_eq(sim.stats()["faults_queued"], 0, "nothing queued")


def test_fault_reset_before_is_not_applied():
    sim = Sim()
    sim.faults([{"reset": "before"}])
    err = connection_error(lambda: sim.rest("POST", "/contacts", {"a": 1}))
    expect(err is not None, "the client sees a connection error")
    expect_eq(sim.records(), {}, "not applied")
    log = sim.requests()
    expect_eq((log[0]["status"], log[0]["applied"]), ("reset", False), "logged as reset")
    expect_eq(sim.rest("POST", "/contacts", {"a": 1})[0], 201, "next request works")


def test_fault_reset_after_is_applied_but_answer_lost():
    sim = Sim()
    sim.faults([{"reset": "after"}])
    err = connection_error(lambda: sim.rest("POST", "/contacts", {"a": 1}))
    expect(err is not None, "the client sees a connection error")
    expect_eq(list(sim.records()), ["c1"], "applied")
    log = sim.requests()
    expect_eq((log[0]["status"], log[0]["applied"]), ("lost", True), "logged as lost")
    expect_eq(sim.stats()["creates"], 1, "counted as a create")


def test_connections_are_numbered_and_faults_may_match_reused_ones():
    sim = Sim()
    sim.faults([{"close": "after", "match": {"reused": True}},
                {"status": 503, "match": {"method": "GET", "reused": False}}])
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)

    def post(body):
        conn.request("POST", "/contacts", json.dumps(body),
                     {"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader("Connection")

    expect_eq(post({"a": 1}), (201, None), "first on its connection: no reused fault")
    expect_eq(post({"a": 2}), (201, None), "second: answered, the close unannounced")
    err = connection_error(lambda: post({"a": 3}))
    expect(err is not None, "the sim closed the connection after its answer")
    conn.close()
    expect_eq(sim.rest("GET", "/contacts")[0], 503, "a first request matches reused: false")
    log = sim.requests()
    expect_eq([e["method"] for e in log], ["POST", "POST", "GET"], "the log")
    expect_eq(log[0]["conn"], log[1]["conn"], "the POSTs shared a connection")
    expect(log[2]["conn"] > log[1]["conn"], "the GET came on a later one", log)
    expect_eq(sorted(sim.records()), ["c1", "c2"], "both POSTs applied")
    st, _, _ = sim.rest("POST", "/_sim/faults", [{"close": "before"}])
    expect_eq(st, 400, "close is only after")


def test_fault_delay_exceeds_client_timeout():
    sim = Sim()
    sim.faults([{"delay_ms": 800}, {"delay_ms": 50}])
    t0 = time.monotonic()
    err = connection_error(lambda: sim.rest("POST", "/contacts", {"a": 1}, timeout=0.2))
    expect(isinstance(err, socket.timeout), "the client times out", err)
    expect(time.monotonic() - t0 < 0.7, "the client gave up at its timeout")
    wait_until(lambda: sim.requests()[0]["status"] == "timeout", 5,
               "the slow request to be logged as a timeout")
    expect_eq(list(sim.records()), ["c1"], "a slow request is still applied")
    t0 = time.monotonic()
    st, _, _ = sim.rest("POST", "/contacts", {"a": 2}, timeout=5)
    expect_eq(st, 201, "a short delay answers normally")
    expect(time.monotonic() - t0 >= 0.05, "the delay happened")


def test_control_api_is_never_faulted():
    sim = Sim()
    sim.faults([{"status": 500, "times": 3}])
    expect_eq(sim.records(), {}, "control call works while faults are queued")
    expect_eq(sim.stats()["faults_queued"], 1, "control calls do not consume faults")
    st, _, _ = sim.rest("POST", "/_sim/faults", {"bogus": 1})
    expect_eq(st, 400, "an invalid fault is refused")


def run_random(sim, seed):
    sim.reset()
    sim.random(seed, 0.5, ["503", "429", "reset_before", "lost", "slow"], slow_ms=20)
    for i in range(30):
        connection_error(lambda: sim.rest("POST", "/contacts", {"n": i}, timeout=5))
    return [r["status"] for r in sim.requests()]


def test_random_faults_are_reproducible_from_the_seed():
    seed = harness.seed()
    sim = Sim()
    a = run_random(sim, seed)
    b = run_random(sim, seed)
    expect_eq(a, b, "same seed, same answers")
    kinds = set(a)
    expect(len(kinds) >= 3, "a mix of answers at rate 0.5", a)
    c = run_random(sim, seed + 1)
    expect(a != c, "another seed gives another sequence", a, c)
    sim.random(seed, 0)
    expect_eq(sim.rest("POST", "/contacts", {})[0], 201, "rate 0 turns faults off")
    s = sim.stats()
    expect(s["status"].get("201", 0) >= 1, "stats count statuses", s)


# --- webhooks --------------------------------------------------------------


def test_echo_webhooks_follow_every_write():
    lis = Listener(status=202)
    sim = Sim(echo_url=lis.url + "/webhooks/crm")
    sim.rest("POST", "/contacts", {"a": 1})
    sim.rest("PUT", "/contacts/c1", {"a": 2})
    sim.faults([{"status": 503}])
    sim.rest("PUT", "/contacts/c1", {"a": 3})  # not applied: no echo
    sim.rest("DELETE", "/contacts/c1")
    got = wait_until(lambda: len(lis.got()) >= 3 and lis.got(), 5, "three echoes")
    expect_eq([g["path"] for g in got], ["/webhooks/crm"] * 3, "echo path")
    expect_eq([g["headers"]["x-sim-event"] for g in got],
              ["created", "updated", "deleted"], "echo events in order")
    bodies = [json.loads(g["body"]) for g in got]
    expect_eq([b.get("a") for b in bodies], [1, 2, 2], "echo bodies are the stored records")
    expect_eq(bodies[2].get("deleted"), True, "a delete echo is marked")
    expect(all(g["headers"].get("x-sim-delivery") for g in got), "delivery ids")
    wait_until(lambda: sim.stats()["echo_sent"] == 3, 5, "echo_sent = 3")


SECRET = "s3cret"
TEMPLATE = "{timestamp}.{body}"


def shop_sim(url):
    return Sim(resource="customers", webhook_url=url, webhook_secret=SECRET,
               signature_header="X-Shop-Signature", timestamp_header="X-Shop-Timestamp",
               delivery_header="X-Shop-Delivery", template=TEMPLATE, prefix="sha256=",
               envelope="customer", event_key="event")


def test_change_sends_a_signed_webhook():
    lis = Listener(status=202, answer={"status": "accepted"})
    sim = shop_sim(lis.url + "/webhooks/shop")
    out = sim.change("1001", {"email": "ADA@Example.com", "first_name": "Ada"},
                     event="customer.created")
    expect_eq((out["status"], out["body"]), (202, {"status": "accepted"}), "concord's answer")
    got = lis.got()
    expect_eq(len(got), 1, "one webhook")
    g = got[0]
    h = g["headers"]
    expect_eq(g["path"], "/webhooks/shop", "webhook path")
    expect_eq(h["content-type"], "application/json", "content type")
    expect_eq(h["x-shop-delivery"], out["delivery_id"], "delivery id header")
    ts = h["x-shop-timestamp"]
    expect(abs(int(ts) - time.time()) < 60, "timestamp is now", ts)
    want = harness.sign_hmac(SECRET, g["body"], ts, TEMPLATE, "sha256=")
    expect_eq(h["x-shop-signature"], want, "signature")
    body = json.loads(g["body"])
    expect_eq(body["event"], "customer.created", "event")
    expect_eq(body["customer"]["email"], "ADA@Example.com", "enveloped record")
    expect_eq(sim.records()["1001"]["first_name"], "Ada", "stored locally")

    out2 = sim.change("1001", {"phone": "5"}, delivery_id="d-2")
    expect_eq(out2["delivery_id"], "d-2", "given delivery id")
    body2 = json.loads(lis.got()[1]["body"])
    expect_eq(body2["event"], "customer.updated", "default event of an existing record")
    expect_eq((body2["customer"]["phone"], body2["customer"]["first_name"]), ("5", "Ada"),
              "a change merges")

    out3 = sim.resend("d-2")
    expect_eq(out3["status"], 202, "resend answered")
    expect_eq(lis.got()[2]["body"], lis.got()[1]["body"], "resend is byte for byte")
    expect_eq(lis.got()[2]["headers"]["x-shop-signature"],
              lis.got()[1]["headers"]["x-shop-signature"], "resend keeps the signature")

    sim.delete("1001")
    body4 = json.loads(lis.got()[3]["body"])
    expect_eq(body4["event"], "customer.deleted", "delete event")
    expect_eq(body4["customer"]["id"], "1001", "deleted record")
    expect_eq(sim.records(), {}, "deleted locally")

    out5 = sim.send_raw('{"forged": true}', {"X-Shop-Signature": "sha256=00"})
    expect_eq(out5["status"], 202, "send_raw answer")
    expect_eq((lis.got()[4]["body"], lis.got()[4]["headers"]["x-shop-signature"]),
              (b'{"forged": true}', "sha256=00"), "send_raw sends as is")
    expect_eq(sim.stats()["webhooks_sent"], 5, "webhooks counted")


def test_change_reports_an_unreachable_concord():
    sim = shop_sim("http://127.0.0.1:%d/webhooks/shop" % harness.free_port())
    out = sim.change("1", {"a": 1})
    expect_eq(out["status"], None, "no status")
    expect("error" in out, "an error is reported", out)
    expect_eq(sim.records()["1"]["a"], 1, "stored anyway")


def test_held_webhook_is_sent_later_by_resend():
    lis = Listener(status=202)
    sim = Sim(resource="customers", webhook_url=lis.url + "/webhooks/a",
              delivery_header="X-Sim-Delivery")
    out = sim.change("p1", {"name": "Ada"}, send=False)
    expect_eq((out["status"], lis.got()), (None, []), "nothing sent yet")
    expect_eq(sim.records()["p1"]["name"], "Ada", "stored at once")
    d = sim._ctl("POST", "delete", {"id": "p1", "send": False})
    expect_eq(sim.records(), {}, "deleted at once")
    status, _, _ = harness.http_request(sim.port, "POST", "/_sim/change",
                                        {"id": "p1", "record": {"x": 1}, "must_exist": True})
    expect_eq((status, sim.records()), (404, {}), "must_exist: no edit of a deleted record")
    # Sent late, and in the other order.
    expect_eq(sim.resend(d["delivery_id"])["status"], 202, "the delete, late")
    expect_eq(sim.resend(out["delivery_id"])["status"], 202, "the change, later")
    got = lis.got()
    expect_eq([g["headers"]["x-sim-delivery"] for g in got],
              [d["delivery_id"], out["delivery_id"]], "delivery ids")
    first, second = json.loads(got[0]["body"]), json.loads(got[1]["body"])
    expect_eq((first["id"], first.get("deleted")), ("p1", True),
              "an unenveloped delete is marked deleted")
    expect_eq((second["name"], second.get("deleted")), ("Ada", None), "the change")


def test_announce_sends_every_record_and_person_delete_again():
    lis = Listener(status=202)
    sim = Sim(resource="customers", webhook_url=lis.url + "/webhooks/a",
              delivery_header="X-Sim-Delivery")
    sim.change("p1", {"name": "Ada"})
    sim.change("p2", {"name": "Grace"})
    sim.change("p3", {"name": "Edsger"})
    sim.delete("p3")
    sim.rest("POST", "/customers", {"name": "Alan"})  # a REST create: held too
    n = len(lis.got())
    out = sim._ctl("POST", "announce", {})
    expect_eq(out["sent"], 3, "one webhook per record held")
    got = lis.got()[n:]
    bodies = [json.loads(g["body"]) for g in got]
    expect_eq([b["name"] for b in bodies], ["Ada", "Grace", "Alan"], "current states")
    expect(all("deleted" not in b for b in bodies), "no deletes without deletes: true")
    ids = [g["headers"]["x-sim-delivery"] for g in got]
    expect(len(set(ids)) == 3 and all(ids), "fresh delivery ids", ids)
    out = sim._ctl("POST", "announce", {"deletes": True, "ids": ["p3", "p1"]})
    expect_eq(out["sent"], 2, "p1 and the delete of p3")
    bodies = [json.loads(g["body"]) for g in lis.got()[n + 3:]]
    expect_eq([(b["id"], b.get("deleted")) for b in bodies], [("p1", None), ("p3", True)],
              "the record, then the delete again")
    expect_eq(sim.stats()["announced"], 5, "announced counted")


def test_echo_delays_reorder_and_duplicate_echoes():
    lis = Listener(status=202)
    sim = Sim(echo_url=lis.url + "/webhooks/crm")
    sim._ctl("POST", "echo", {"seed": 7, "delay_ms": 300, "dup": 0.5})
    for i in range(20):
        sim.rest("POST", "/contacts", {"n": i})
    st = wait_until(lambda: sim.stats()["echo_pending"] == 0 and sim.stats(), 10,
                    "every echo sent")
    got = lis.got()
    expect_eq(len(got), 20 + st["echo_dups"], "each echo once, duplicates twice")
    expect(st["echo_dups"] > 0, "some duplicates", st)
    ns = [json.loads(g["body"])["n"] for g in got]
    expect_eq(sorted(set(ns)), list(range(20)), "every echo arrived")
    expect(ns != sorted(ns), "out of order", ns)
    ids = [g["headers"]["x-sim-delivery"] for g in got]
    expect(len(set(ids)) < len(ids), "some duplicates keep their delivery id", ids)
    # Off again: each echo at once, never twice. (Each is awaited before the
    # next write: the echo of a write is queued after its answer is sent,
    # so two writes in a row may queue theirs in either order.)
    sim._ctl("POST", "echo", {})
    n = len(got)
    for i in range(20, 25):
        sim.rest("POST", "/contacts", {"n": i})
        wait_until(lambda: len(lis.got()) == n + i - 19, 2, "the echo of write %d" % i)
    expect_eq([json.loads(g["body"])["n"] for g in lis.got()[n:]], list(range(20, 25)),
              "in order")
    expect_eq(sim.stats()["echo_dups"], st["echo_dups"], "no duplicate when off")


def test_sign_hmac_matches_a_known_vector():
    # RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    sig = harness.sign_hmac("Jefe", b"what do ya want for nothing?")
    expect_eq(sig, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
              "HMAC-SHA256")
    expect_eq(harness.sign_hmac("Jefe", b"nothing?", 0, "what do ya want for {body}", "p="),
              "p=" + sig, "template and prefix")
    # A body holding the text "{timestamp}" is signed as is.
    a = harness.sign_hmac("k", b"{timestamp}", 7, "{timestamp}.{body}")
    expect_eq(a, harness.sign_hmac("k", b"7.{timestamp}", 0, "{body}"), "one-pass template")


# --- list reads: updated_since, pages, sync tokens ---------------------------


def ids_of(body):
    return [r["id"] for r in body["data"]]


def get_ok(sim, path):
    st, body, hdrs = sim.rest("GET", path)
    expect_eq(st, 200, "GET %s" % path)
    return body, hdrs


def seed_records(sim, n):
    """Creates n records over REST; returns their ids in creation order."""
    return [sim.rest("POST", "/contacts", {"n": i})[1]["id"] for i in range(n)]


def test_list_updated_since_is_inclusive_and_ordered_by_time_then_id():
    sim = Sim()
    recs = [sim.rest("POST", "/contacts", {"n": i, "kind": "a" if i % 2 else "b"})[1]
            for i in range(5)]
    ts = [r["updated_at"] for r in recs]
    body, _ = get_ok(sim, "/contacts?updated_since=%d" % ts[2])
    expect_eq(ids_of(body), ["c3", "c4", "c5"], "inclusive: from the record at the time on")
    body, _ = get_ok(sim, "/contacts?updated_since=%d" % (ts[4] + 1))
    expect_eq(body["data"], [], "nothing after the last stamp")
    # c1 updated: it moves to the end of a time-ordered read, not of the
    # creation-ordered one.
    sim.rest("PATCH", "/contacts/c1", {"n": 10})
    body, _ = get_ok(sim, "/contacts?updated_since=%d" % ts[0])
    expect_eq(ids_of(body), ["c2", "c3", "c4", "c5", "c1"], "ordered by updated_at")
    body, _ = get_ok(sim, "/contacts")
    expect_eq(ids_of(body), ["c1", "c2", "c3", "c4", "c5"], "plain read: creation order")
    expect(isinstance(body.get("nextSyncToken"), str), "a full read carries a sync token", body)
    # Rows sharing a timestamp are ordered by id.
    t = ts[4] + 1000
    for rid in ("z9", "a1", "m5"):
        sim.put(rid, {"kind": "a"}, updated_at=t)
    body, _ = get_ok(sim, "/contacts?updated_since=%d" % t)
    expect_eq(ids_of(body), ["a1", "m5", "z9"], "equal timestamps: by id")
    expect_eq([r["updated_at"] for r in body["data"]], [t] * 3, "the forced timestamps")
    # Equality filters still apply; reserved parameters are not filters.
    body, _ = get_ok(sim, "/contacts?kind=a&updated_since=%d&limit=1&page=3" % ts[0])
    expect_eq(ids_of(body), ["c2", "c4", "a1", "m5", "z9"], "filter + updated_since (style none)")
    expect_eq(sim.rest("GET", "/contacts?updated_since=soon")[0], 400, "a bad updated_since")
    tok = body.get("nextSyncToken")
    st, err, _ = sim.rest("GET", "/contacts?updated_since=1&syncToken=%s" % tok)
    expect_eq(st, 400, "updated_since with syncToken")
    expect("error" in err, "400 carries an error", err)
    expect_eq(sim.stats()["list_reads"], 8, "list reads counted (the 400s too)")


def walk(sim, first, style, cursor_param="cursor"):
    """Follows the pages of a read from path `first`; returns the bodies."""
    pages, path = [], first
    for _ in range(100):
        body, hdrs = get_ok(sim, path)
        pages.append(body)
        if style == "link":
            link = hdrs.get("link")
            if not link:
                return pages
            url = link[1:link.index(">")]
            expect(url.startswith("http://127.0.0.1:%d/contacts?" % sim.port), "link URL", url)
            path = url[len("http://127.0.0.1:%d" % sim.port):]
        else:
            nxt = body.get("next_cursor" if style == "cursor" else "nextPageToken")
            if not nxt:
                return pages
            sep = "&" if "?" in first else "?"
            path = first + sep + cursor_param + "=" + nxt
    raise AssertionError("no last page after 100")


def test_page_style_number_and_offset():
    for style in ("number", "offset"):
        sim = Sim(page_style=style)
        ids = seed_records(sim, 25)
        pages = []
        for i in range(4):
            arg = "page=%d" % (i + 1) if style == "number" else "offset=%d" % (10 * i)
            pages.append(get_ok(sim, "/contacts?limit=10&" + arg)[0])
        expect_eq([len(p["data"]) for p in pages], [10, 10, 5, 0], style + " page lengths")
        expect_eq([p["has_more"] for p in pages], [True, True, False, False],
                  style + " has_more")
        expect_eq(sum((ids_of(p) for p in pages), []), ids, style + ": all, in creation order")
        expect("nextSyncToken" not in pages[0] and "nextSyncToken" in pages[2],
               style + ": a sync token on the last page only", pages[0], pages[2])
        first = get_ok(sim, "/contacts")[0]
        expect_eq((len(first["data"]), first["has_more"]), (25, False),
                  style + ": the default page size (100)")
        bad = "page=0" if style == "number" else "offset=-1"
        expect_eq(sim.rest("GET", "/contacts?" + bad)[0], 400, style + ": " + bad)
        expect_eq(sim.rest("GET", "/contacts?limit=0")[0], 400, style + ": limit 0")
        # The hazard of these styles: a record deleted from an earlier
        # page shifts the rest, and one record is never read.
        p1 = get_ok(sim, "/contacts?limit=10&" + ("page=1" if style == "number" else "offset=0"))
        sim.rest("DELETE", "/contacts/" + ids[0])
        p2 = get_ok(sim, "/contacts?limit=10&" + ("page=2" if style == "number" else "offset=10"))
        expect_eq(ids_of(p2[0])[0], ids[11], style + ": a delete shifts the pages")
        expect(ids[10] not in ids_of(p1[0]) + ids_of(p2[0]), style + ": one skipped")
    sim = Sim(page_style="offset", page_size=4, page_size_max=7)
    seed_records(sim, 20)
    expect_eq(len(get_ok(sim, "/contacts")[0]["data"]), 4, "--page-size")
    expect_eq(len(get_ok(sim, "/contacts?limit=50")[0]["data"]), 7, "--page-size-max caps")


def test_page_style_cursor_is_stable_under_inserts():
    sim = Sim(page_style="cursor")
    ids = seed_records(sim, 25)
    p1 = get_ok(sim, "/contacts?limit=10")[0]
    expect_eq((ids_of(p1), p1["has_more"]), (ids[:10], True), "first page")
    expect(isinstance(p1["next_cursor"], str), "a cursor", p1)
    new = sim.rest("POST", "/contacts", {"n": 99})[1]["id"]  # between pages
    sim.rest("DELETE", "/contacts/" + ids[0])  # from a page already read
    p2 = get_ok(sim, "/contacts?limit=10&cursor=" + p1["next_cursor"])[0]
    expect_eq(ids_of(p2), ids[10:20], "second page: no shift after a delete")
    p3 = get_ok(sim, "/contacts?limit=10&cursor=" + p2["next_cursor"])[0]
    expect_eq((ids_of(p3), p3["has_more"], p3["next_cursor"]), (ids[20:] + [new], False, None),
              "last page: the insert comes last")
    expect(isinstance(p3.get("nextSyncToken"), str), "a sync token on the last page", p3)
    expect_eq(sim.rest("GET", "/contacts?cursor=bogus!")[0], 400, "a malformed cursor")

    # updated_since by cursor: a record changed between pages comes again
    # (its new version), later; one written with an old timestamp is missed
    # by this read (what concord's overlap is for).
    sim = Sim(page_style="cursor")
    recs = [sim.rest("POST", "/contacts", {"n": i})[1] for i in range(25)]
    t0 = recs[0]["updated_at"]
    q = "/contacts?limit=10&updated_since=%d" % t0
    p1 = get_ok(sim, q)[0]
    sim.rest("PATCH", "/contacts/c2", {"n": 200})
    sim.put("late", {"n": -1}, updated_at=recs[15]["updated_at"])
    sim.put("tie", {"n": -2}, updated_at=recs[5]["updated_at"])
    rest = walk(sim, q + "&cursor=" + p1["next_cursor"], "cursor")
    got = ids_of(p1) + sum((ids_of(p) for p in rest), [])
    # "late" shares c16's stamp and sorts after it by id.
    expect_eq(got, ["c%d" % i for i in range(1, 17)] + ["late"]
              + ["c%d" % i for i in range(17, 26)] + ["c2"], "time order, across pages")
    expect("tie" not in got, "a row behind the cursor is not read", got)
    expect_eq(rest[-1]["data"][-1]["n"], 200, "the new version of c2")
    alone = get_ok(sim, "/contacts?limit=10&cursor=" + p1["next_cursor"])[0]
    expect_eq(ids_of(alone), ids_of(rest[0]), "the cursor alone goes on with the read")
    c1 = get_ok(sim, "/contacts?limit=10")[0]["next_cursor"]
    st, _, _ = sim.rest("GET", "/contacts?limit=10&updated_since=%d&cursor=%s" % (t0, c1))
    expect_eq(st, 400, "a creation-order cursor in an updated_since read")


def test_page_style_link():
    sim = Sim(page_style="link")
    ids = seed_records(sim, 25)
    sim.rest("PATCH", "/contacts/" + ids[3], {"tag": "x"})
    pages = walk(sim, "/contacts?limit=10", "link")
    expect_eq([len(p["data"]) for p in pages], [10, 10, 5], "page lengths")
    expect_eq(sum((ids_of(p) for p in pages), []), ids, "everything once")
    expect_eq([sorted(p) for p in pages[:2]], [["data"], ["data"]], "body: data only")
    expect_eq(sorted(pages[2]), ["data", "nextSyncToken"], "the last page: a sync token too")
    st, _, hdrs = sim.rest("GET", "/contacts?limit=10&tag=x")
    expect(st == 200 and "link" not in hdrs, "no Link on a last page", hdrs)
    # The next URL keeps the other parameters.
    t0 = sim.records()[ids[0]]["updated_at"]
    pages = walk(sim, "/contacts?limit=10&updated_since=%d" % t0, "link")
    expect_eq(sum((ids_of(p) for p in pages), []), [i for i in ids if i != ids[3]] + [ids[3]],
              "updated_since kept across links")
    _, hdrs = get_ok(sim, "/contacts?limit=10")
    expect(hdrs["link"].endswith('>; rel="next"') and "limit=10" in hdrs["link"],
           "Link header format", hdrs["link"])


def test_sync_tokens_incremental_deletes_and_expiry():
    lis = Listener(status=202)
    sim = Sim(page_style="token", webhook_url=lis.url + "/w")
    ids = seed_records(sim, 25)
    pages = walk(sim, "/contacts?limit=10", "token", "pageToken")
    expect_eq([len(p["data"]) for p in pages], [10, 10, 5], "full read in pages")
    expect(all("nextPageToken" in p and "nextSyncToken" not in p for p in pages[:2]),
           "nextPageToken until the last page", pages[:2])
    expect("nextPageToken" not in pages[2], "no nextPageToken on the last page")
    expect_eq(sum((ids_of(p) for p in pages), []), ids, "everything once")
    tok = pages[2]["nextSyncToken"]

    body, _ = get_ok(sim, "/contacts?syncToken=" + tok)
    expect_eq((body["data"], "nextPageToken" in body), ([], False), "nothing changed yet")
    expect_eq(body["nextSyncToken"], tok, "the same point: the same token")

    sim.rest("PATCH", "/contacts/c3", {"n": 300})
    sim.rest("DELETE", "/contacts/c4")  # by REST
    sim.delete("c5")  # by a person
    new = sim.rest("POST", "/contacts", {"n": 26})[1]["id"]
    sim.change("c6", {"n": 600})
    sim.put("c7", {"n": 700})
    sim.rest("PATCH", "/contacts/c3", {"n": 301})  # twice: its last version, once
    body, _ = get_ok(sim, "/contacts?syncToken=" + tok)
    expect_eq(body["data"], [
        {"id": "c4", "deleted": True},
        {"id": "c5", "deleted": True},
        sim.records()[new],
        sim.records()["c6"],
        sim.records()["c7"],
        sim.records()["c3"],
    ], "changes since the token, in change order, deletes marked")
    tok2 = body["nextSyncToken"]
    expect(tok2 != tok, "a new token", tok, tok2)
    expect_eq(get_ok(sim, "/contacts?syncToken=" + tok2)[0]["data"], [], "nothing since")
    # The old token still answers (until expired).
    expect_eq(len(get_ok(sim, "/contacts?syncToken=" + tok)[0]["data"]), 6, "old token")

    # An incremental read in pages; a change during it is read once, at its
    # last version, and the next token misses nothing.
    for i in range(10, 22):
        sim.rest("PATCH", "/contacts/c%d" % i, {"n": -i})
    p1 = get_ok(sim, "/contacts?limit=5&syncToken=" + tok2)[0]
    expect_eq(ids_of(p1), ["c%d" % i for i in range(10, 15)], "first page of changes")
    sim.rest("PATCH", "/contacts/c12", {"n": 1200})  # read already
    sim.rest("PATCH", "/contacts/c20", {"n": 2000})  # not read yet
    rest = walk(sim, "/contacts?limit=5&syncToken=%s&pageToken=%s"
                % (tok2, p1["nextPageToken"]), "token", "pageToken")
    # walk() appends pageToken to its first path; later pages send only it.
    got = ids_of(p1) + sum((ids_of(p) for p in rest), [])
    expect_eq(got, ["c%d" % i for i in list(range(10, 20)) + [21, 12, 20]],
              "changed rows move to the end")
    tok3 = rest[-1]["nextSyncToken"]
    expect_eq(get_ok(sim, "/contacts?syncToken=" + tok3)[0]["data"], [], "nothing missed")

    # Expiry: every token so far, and a page of a sync read, answer 410.
    p1 = get_ok(sim, "/contacts?limit=2&syncToken=" + tok)[0]
    sim.expire_tokens()
    for path in ("/contacts?syncToken=" + tok3,
                 "/contacts?syncToken=" + tok,
                 "/contacts?limit=2&pageToken=" + p1["nextPageToken"]):
        st, body, _ = sim.rest("GET", path)
        expect_eq((st, body), (410, {"error": {
            "code": 410,
            "message": "Sync token is no longer valid, a full sync is required.",
            "reason": "fullSyncRequired"}}), "expired: " + path[:40])
    full = walk(sim, "/contacts?limit=10", "token", "pageToken")
    expect_eq(len(sum((ids_of(p) for p in full), [])), len(sim.records()), "a full read again")
    body, _ = get_ok(sim, "/contacts?syncToken=" + full[-1]["nextSyncToken"])
    expect_eq(body["data"], [], "a new token works")
    expect_eq(sim.rest("GET", "/contacts?syncToken=xyz")[0], 400, "a malformed token")
    sim.reset()
    expect_eq(sim.rest("GET", "/contacts?syncToken=" + full[-1]["nextSyncToken"])[0], 410,
              "a reset expires the tokens too")


def test_sync_tokens_with_other_page_styles():
    # No pages: everything in one answer. Cursor: the sync read pages by
    # cursor, as a full read does.
    sim = Sim()
    seed_records(sim, 3)
    body, _ = get_ok(sim, "/contacts?limit=1")
    expect_eq(len(body["data"]), 3, "style none ignores limit")
    sim.rest("PATCH", "/contacts/c2", {"n": 5})
    body2, _ = get_ok(sim, "/contacts?syncToken=" + body["nextSyncToken"])
    expect_eq(ids_of(body2), ["c2"], "style none: the change")

    sim = Sim(page_style="cursor")
    seed_records(sim, 12)
    tok = walk(sim, "/contacts?limit=5", "cursor")[-1]["nextSyncToken"]
    for i in range(1, 13):
        sim.rest("PATCH", "/contacts/c%d" % i, {"n": -i})
    q = "/contacts?limit=5&syncToken=" + tok
    pages = walk(sim, q, "cursor")
    expect_eq([len(p["data"]) for p in pages], [5, 5, 2], "sync read by cursor")
    expect_eq(sum((ids_of(p) for p in pages), []), ["c%d" % i for i in range(1, 13)],
              "every change once")


def test_put_forces_updated_at_and_sends_nothing():
    lis = Listener(status=202)
    sim = Sim(webhook_url=lis.url + "/w", echo_url=lis.url + "/echo")
    a = sim.rest("POST", "/contacts", {"n": 1})[1]
    old = sim.put("p1", {"n": 2}, updated_at=a["updated_at"] - 5000)
    expect_eq(old, {"id": "p1", "n": 2, "updated_at": a["updated_at"] - 5000}, "forced, older")
    b = sim.rest("POST", "/contacts", {"n": 3})[1]
    expect(b["updated_at"] > a["updated_at"], "stamps still grow", a, b)
    future = b["updated_at"] + 10 ** 7
    sim.put("p2", {"n": 4}, updated_at=future)
    c = sim.rest("POST", "/contacts", {"n": 5})[1]
    expect(c["updated_at"] > future, "later stamps stay above a forced one", c, future)
    same = sim.put("p3", {"n": 6}, updated_at=future)
    expect_eq(same["updated_at"], future, "a forced stamp may repeat")
    plain = sim.put("p1", {"m": 7})
    expect_eq(sorted(plain), ["id", "m", "updated_at"], "put replaces the record")
    expect(plain["updated_at"] > future, "an unforced put stamps", plain)
    ch = sim._ctl("POST", "change", {"id": "p4", "record": {"n": 8}, "updated_at": 12345})
    expect_eq(ch["record"]["updated_at"], 12345, "change with a forced updated_at")
    expect_eq(sim.records()["p4"]["updated_at"], 12345, "stored")
    st, _, _ = harness.http_request(sim.port, "POST", "/_sim/put",
                                    {"id": "x", "record": {}, "updated_at": "soon"})
    expect_eq(st, 400, "a non-integer updated_at")
    wait_until(lambda: sim.stats()["echo_pending"] == 0, 5, "echoes sent")
    # The echoes come from their own thread: their order against the
    # webhook is not fixed, only what was sent.
    paths = sorted(g["path"] for g in lis.got())
    expect_eq(paths, ["/echo", "/echo", "/echo", "/w"], "echoes of the REST creates, "
              "one webhook for the change, nothing for the puts")
    s = sim.stats()
    expect_eq((s["creates"], s["updates"], s["webhooks_sent"]), (3, 0, 1), "stats")


def test_fault_after_lets_requests_pass_first():
    sim = Sim(page_style="cursor")
    seed_records(sim, 25)
    sim.faults([{"status": 500, "match": {"method": "GET", "path_prefix": "/contacts"},
                 "after": 2}])
    expect_eq(sim.rest("POST", "/contacts", {"n": 0})[0], 201, "a POST does not count")
    p1 = get_ok(sim, "/contacts?limit=10")[0]
    p2 = get_ok(sim, "/contacts?limit=10&cursor=" + p1["next_cursor"])[0]
    path3 = "/contacts?limit=10&cursor=" + p2["next_cursor"]
    expect_eq(sim.rest("GET", path3)[0], 500, "the third page fails")
    p3 = get_ok(sim, path3)[0]
    expect_eq(len(p3["data"]), 6, "and works again")
    expect_eq(sim.stats()["list_reads"], 4, "list reads")

    # Two actions: each counts the requests that match it, independently;
    # the first armed one serves.
    sim.reset()
    sim.faults([{"status": 503, "after": 2}, {"status": 502, "after": 4},
                {"status": 429, "match": {"method": "PUT"}, "after": 1, "times": 2}])
    got = []
    for i in range(7):
        got.append(sim.rest("POST", "/contacts", {"n": i})[0])
    expect_eq(got, [201, 201, 503, 201, 502, 201, 201], "third and fifth fail")
    got = [sim.rest("PUT", "/contacts/c1", {"n": i})[0] for i in range(4)]
    expect_eq(got, [200, 429, 429, 200], "after 1, times 2")
    expect_eq(sim.stats()["faults_queued"], 0, "all used")
    # A dormant action does not hold back the one behind it.
    sim.faults([{"status": 500, "after": 5}, {"status": 418}])
    expect_eq(sim.rest("POST", "/contacts", {})[0], 418, "the armed one serves")
    expect_eq(sim.stats()["faults_queued"], 1, "the dormant one waits")
    for bad in (-1, "2", True):
        st, _, _ = sim.rest("POST", "/_sim/faults", {"status": 500, "after": bad})
        expect_eq(st, 400, "after %r refused" % (bad,))


# --- the harness itself, with a stand-in for concord -----------------------

FAKE_CONCORD = r'''#!/usr/bin/python3
import http.server, json, os, re, signal, sys
args = sys.argv[1:]
cfg = args[args.index("-c") + 1]
if args[0] == "run":
    text = open(cfg).read()
    host, port = re.search(r"^listen: (\S+)", text, re.M).group(1).rsplit(":", 1)
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def log_message(self, *a): pass
        def answer(self, st, obj):
            d = json.dumps(obj).encode()
            self.send_response(st)
            self.send_header("Content-Length", str(len(d)))
            self.end_headers()
            self.wfile.write(d)
        def do_GET(self):
            self.answer(200, {"status": "ok"} if self.path == "/healthz" else {})
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            print("webhook", self.path, os.environ.get("FAKE_SECRET"), flush=True)
            self.answer(202, {"status": "accepted"})
    srv = http.server.HTTPServer((host, int(port)), H)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(3))
    print("listening", flush=True)
    srv.serve_forever()
elif args[0] == "status":
    if "--json" in args:
        print(json.dumps({"systems": [{"name": "crm", "backlog": 0, "in_flight": 0}]}))
    else:
        print("crm ok")
else:
    print("unknown command", args[0], file=sys.stderr)
    sys.exit(2)
'''

CONFIG = """listen: 127.0.0.1:{port}
store: sqlite:{dir}/x.db
note: {jq: '.a'} "{timestamp}.{body}" {name}
"""


def with_fake_concord():
    d = tempfile.mkdtemp(prefix="concord-fake-", dir="/tmp")
    path = os.path.join(d, "concord")
    with open(path, "w") as f:
        f.write(FAKE_CONCORD)
    os.chmod(path, 0o755)
    return path


def test_concord_process_handling_with_a_stand_in():
    old = os.environ.get("CONCORD_BIN")
    fake = with_fake_concord()
    os.environ["CONCORD_BIN"] = fake
    try:
        c = harness.Concord(CONFIG, {"name": "demo"}, env={"FAKE_SECRET": "xyz"})
        text = open(c.path).read()
        expect("{jq: '.a'}" in text and '"{timestamp}.{body}"' in text,
               "foreign braces kept", text)
        expect("demo" in text and c.dir in text, "placeholders filled", text)
        expect_eq(c.listen, "127.0.0.1:%d" % c.values["port"], "listen parsed")
        c.start()
        expect(c.running(), "running")
        st, body = c.post_webhook("/webhooks/shop", b"{}", {"X-A": "1"})
        expect_eq((st, body), (202, {"status": "accepted"}), "post_webhook")
        wait_until(lambda: "webhook /webhooks/shop xyz" in c.log_text(), 5, "the log line")
        expect_eq(c.cli("status")[1], "crm ok\n", "cli")
        expect_eq(c.cli_json("status")["systems"][0]["name"], "crm", "cli_json")
        c.wait_settled(5)
        rc, _, err = c.cli("bogus", check=False)
        expect_eq(rc, 2, "cli without check returns the code")
        try:
            c.cli("bogus")
            raise AssertionError("cli with check did not raise")
        except AssertionError as e:
            expect("exited 2" in str(e), "check raises with the exit code", str(e))
        expect_eq(c.stop(), 3, "stop returns the exit code")
        expect(not c.running(), "stopped")
        c.start()
        expect_eq(c.kill9(), -9, "kill9")
        c.start()  # restart after a crash in the same directory
        expect(c.running(), "running again")
        c.kill9()  # the stand-in exits 3 on SIGTERM, which cleanup would report
    finally:
        shutil.rmtree(os.path.dirname(fake), ignore_errors=True)
        if old is None:
            os.environ.pop("CONCORD_BIN", None)
        else:
            os.environ["CONCORD_BIN"] = old


def test_concord_start_reports_an_early_exit():
    old = os.environ.get("CONCORD_BIN")
    os.environ["CONCORD_BIN"] = "/bin/false"
    try:
        c = harness.Concord("listen: 127.0.0.1:{port}\n")
        try:
            c.start()
            raise AssertionError("start did not fail")
        except AssertionError as e:
            expect("exited with 1" in str(e), "the exit is reported", str(e))
    finally:
        if old is None:
            os.environ.pop("CONCORD_BIN", None)
        else:
            os.environ["CONCORD_BIN"] = old


RUNNER_SCRIPT = """
import sys
sys.path.insert(0, %r)
import harness
def test_good():
    harness.cleanup(harness.Sim())
def test_bad():
    s = harness.Sim()
    harness.wait_until(lambda: False, 0.1, "the impossible")
def test_third():
    pass
harness.run_tests(globals())
"""


def ephemeral_range():
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        lo, hi = (int(x) for x in f.read().split())
    return lo, hi


def test_free_port_is_outside_the_ephemeral_range_and_never_handed_out_twice():
    lo, hi = ephemeral_range()
    ours = [harness.free_port() for _ in range(200)]
    expect_eq(len(set(ours)), len(ours), "200 calls, 200 ports")
    expect(not [p for p in ours if lo <= p <= hi], "none in the ephemeral range", lo, hi, ours)
    with socket.socket() as s:
        s.bind(("127.0.0.1", ours[-1]))  # nothing took it
    # Another test process, even one whose walk of the band starts at our
    # first port, gets none of ours while this process lives.
    child = """
import sys
sys.path.insert(0, %r)
import harness
harness.free_port()
harness._ports["next"] = %d - harness._ports["band"][0]
print(" ".join(str(harness.free_port()) for _ in range(50)))
""" % (os.path.dirname(os.path.abspath(__file__)), ours[0])
    out = subprocess.run([harness.PYTHON, "-c", child], capture_output=True, check=True,
                         timeout=30).stdout.decode()
    theirs = [int(p) for p in out.split()]
    expect_eq(len(theirs), 50, "the other process got its ports")
    expect(not set(theirs) & set(ours), "no port of ours", sorted(set(theirs) & set(ours)))


def test_runner_reports_and_cleans_up():
    here = os.path.dirname(os.path.abspath(__file__))
    p = subprocess.run([harness.PYTHON, "-c", RUNNER_SCRIPT % here],
                       capture_output=True, timeout=60)
    out = p.stdout.decode()
    expect_eq(p.returncode, 1, "exit code with a failure")
    lines = out.splitlines()
    expect(any(line.startswith("ok test_good") for line in lines), "ok line", out)
    expect(any(line.startswith("FAIL test_bad: timed out after 0.1s waiting for the impossible")
               for line in lines), "FAIL line names what", out)
    expect(any(line.startswith("ok test_third") for line in lines), "runs on after a failure", out)
    expect_eq(lines[-1], "2 passed, 1 failed", "summary line")
    p = subprocess.run([harness.PYTHON, "-c", RUNNER_SCRIPT % here, "test_third"],
                       capture_output=True, timeout=60)
    expect_eq((p.returncode, p.stdout.decode().splitlines()[-1]), (0, "1 passed, 0 failed"),
              "one test by name")


if __name__ == "__main__":
    harness.run_tests(globals())
