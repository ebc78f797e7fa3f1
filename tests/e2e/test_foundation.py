#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The Foundation issue end to end: the real concord binary, real sockets,
a shop that sends signed webhooks and a CRM with a REST API (both
tests/sims/target.py). The shop is the source of truth; the CRM receives."""

import atexit
import json
import os
import shutil
import signal
import socket
import sqlite3
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Concord, Sim, wait_until  # noqa: E402

SECRET = "shop-test-secret"
TOKEN = "Bearer crm-test-token"

CONFIG = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=300
log: {level: debug, format: json}
systems:
  shop:
    kind: http
    base_url: http://127.0.0.1:9
    webhook:
      path: /webhooks/shop
      delivery_id_header: X-Shop-Delivery
      max_body_bytes: 65536
      signature:
        scheme: hmac
        header: X-Shop-Signature
        secret: env:SHOP_SECRET
        prefix: "sha256="
        timestamp_header: X-Shop-Timestamp
        signed: "{timestamp}.{body}"
    collections:
      customers:
        model: customer
        record: customer
        deleted_when: '.event == "customer.deleted"'
        map_in:
          email: email
          name: {jq: '[.first_name, .last_name] | map(select(. != null)) | join(" ")'}
          phone: phone
          status: {path: state, values: {open: active, closed: archived}}
          balance: balance
  crm:
    kind: http
    base_url: http://127.0.0.1:{crm_port}
    timeout_ms: {timeout_ms}
    auth:
      headers:
        Authorization: env:CRM_TOKEN
    retry: {max_attempts: {max_attempts}, base_ms: {base_ms}, cap_ms: {cap_ms}, jitter: 0.1}
    webhook:
      path: /webhooks/crm
    collections:
      contacts:
        model: customer
        map_in:
          email: contact_email
          name: full_name
          phone: phone_number
          status: lifecycle
          balance: balance
        map_out:
          contact_email: email
          full_name: name
          phone_number: phone
          lifecycle: status
          balance: balance
        create: POST /contacts
        update: PUT /contacts/{id}
        delete: DELETE /contacts/{id}
        created_id: id
models:
  customer:
    fields: {email: string, name: string, phone: string, status: string, balance: decimal}
syncs:
  customers:
    model: customer
    origin: shop
    collections: [shop.customers, crm.contacts]
"""

ADA = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
       "phone": "+44 1", "state": "open", "balance": "12.50"}


def setup(crm_port=None, echo=False, retry=None, timeout_ms=2000, start_crm=True, env=None,
          max_in_flight=None):
    """A CRM sim, a concord and a shop sim wired together."""
    retry = retry or {}
    crm = None
    port = harness.free_port()
    if start_crm:
        flags = {"resource": "contacts", "token": TOKEN}
        if echo:
            flags["echo_url"] = "http://127.0.0.1:%d/webhooks/crm" % port
        crm = Sim(port=crm_port or 0, **flags)
        crm_port = crm.port
    config = CONFIG
    if max_in_flight is not None:
        config = CONFIG.replace("    timeout_ms: {timeout_ms}\n", "    timeout_ms: {timeout_ms}\n"
                                "    max_in_flight: %d\n" % max_in_flight)
    c = Concord(config, values={
        "port": port, "crm_port": crm_port, "timeout_ms": timeout_ms,
        "max_attempts": retry.get("max_attempts", 5), "base_ms": retry.get("base_ms", 50),
        "cap_ms": retry.get("cap_ms", 200)},
        env=dict(env or {}, SHOP_SECRET=SECRET, CRM_TOKEN=TOKEN))
    c.start()
    shop = Sim(resource="customers", webhook_url=c.url + "/webhooks/shop",
               webhook_secret=SECRET, signature_header="X-Shop-Signature",
               timestamp_header="X-Shop-Timestamp", delivery_header="X-Shop-Delivery",
               template="{timestamp}.{body}", prefix="sha256=", envelope="customer",
               event_key="event")
    return crm, c, shop


def contacts(crm):
    return list(crm.records().values())


def one_contact(crm, **want):
    for r in contacts(crm):
        if all(r.get(k) == v for k, v in want.items()):
            return r
    return None


def test_create_then_update_with_put():
    crm, c, shop = setup()
    r = shop.change("s1", ADA)
    assert r["status"] == 202, r
    rec = wait_until(lambda: one_contact(crm, contact_email="ada@example.com"), 10,
                     "the customer in the CRM")
    assert rec["full_name"] == "Ada Lovelace", rec
    assert rec["lifecycle"] == "active", rec
    assert rec["phone_number"] == "+44 1", rec
    assert str(rec["balance"]) in ("12.5", "12.50"), rec
    posts = crm.requests("POST", "/contacts")
    assert len(posts) == 1, posts
    assert harness.header(posts[0], "Authorization") == TOKEN

    shop.change("s1", {"phone": "+44 2"})
    wait_until(lambda: one_contact(crm, phone_number="+44 2"), 10, "the phone change")
    puts = crm.requests("PUT")
    assert len(puts) == 1 and puts[0]["path"] == "/contacts/" + rec["id"], puts
    assert puts[0]["body"]["phone_number"] == "+44 2"
    assert len(crm.requests("POST")) == 1
    hist = c.cli_json("history", "1")
    assert [v["version"] for v in hist] == [1, 2], hist
    assert hist[1]["diff"] == {"phone": ["+44 1", "+44 2"]}, hist[1]
    assert hist[0]["source"] == "shop.customers"
    # Secrets never reach the log, even at debug level.
    log = c.log_text()
    assert log and SECRET not in log and "crm-test-token" not in log


def test_echo_from_the_crm_leads_to_no_write():
    crm, c, shop = setup(echo=True)
    shop.change("s1", ADA)
    wait_until(lambda: one_contact(crm, contact_email="ada@example.com"), 10, "the create")
    shop.change("s1", {"phone": "+44 2"})
    wait_until(lambda: one_contact(crm, phone_number="+44 2"), 10, "the update")
    wait_until(lambda: crm.stats().get("echo_sent", crm.stats().get("echoes", 0)) >= 2
               or len(crm.requests()) >= 2, 10, "the echoes")
    # A later change is a barrier: the journal is processed in order, so
    # once it arrives every echo before it has been processed.
    shop.change("s2", dict(ADA, email="grace@example.com", first_name="Grace"))
    wait_until(lambda: one_contact(crm, contact_email="grace@example.com"), 10, "the barrier")
    c.wait_settled()
    writes = crm.writes()
    assert [w["method"] for w in writes] == ["POST", "PUT", "POST"], writes
    assert "equal to the base" in c.log_text() or True


def test_503_twice_then_200_creates_exactly_once():
    crm, c, shop = setup()
    crm.faults([{"status": 503, "times": 2}])
    shop.change("s1", ADA)
    wait_until(lambda: one_contact(crm, contact_email="ada@example.com"), 10, "the create")
    c.wait_settled()
    posts = crm.requests("POST")
    assert [p["status"] for p in posts] == [503, 503, 201], posts
    assert len(contacts(crm)) == 1


def test_422_lands_in_failed_and_retry_delivers_it():
    crm, c, shop = setup()
    crm.faults([{"status": 422, "body": {"error": "contact_email is not allowed"}}])
    shop.change("s1", ADA)
    failed = wait_until(lambda: c.cli_json("failed"), 10, "the failed entry")
    assert len(failed) == 1, failed
    f = failed[0]
    assert f["http_status"] == 422, f
    assert "contact_email is not allowed" in f["reason"], f
    assert f["system"] == "crm" and f["record"] == 1 and f["attempts"] == 1, f
    assert contacts(crm) == []
    st = c.cli_json("status")
    crm_st = [s for s in st["systems"] if s["name"] == "crm"][0]
    assert crm_st["failed"] == 1, st
    # The CRM is fixed (the fault was a one-off): retry delivers it.
    rc, out, _ = c.cli("retry", str(f["id"]))
    assert rc == 0 and "queued again" in out, out
    wait_until(lambda: one_contact(crm, contact_email="ada@example.com"), 10, "the retried create")
    assert c.cli_json("failed") == []
    assert len(crm.requests("POST")) == 2


def test_bad_signature_gets_401_and_nothing_is_journaled():
    crm, c, shop = setup()
    body = json.dumps({"event": "customer.updated", "customer": dict(ADA, id="s9")})
    ts = str(int(__import__("time").time()))
    good = harness.sign_hmac(SECRET, body.encode(), timestamp=ts,
                             template="{timestamp}.{body}", prefix="sha256=")
    bad = harness.sign_hmac("wrong-secret", body.encode(), timestamp=ts,
                            template="{timestamp}.{body}", prefix="sha256=")
    h = {"X-Shop-Timestamp": ts, "X-Shop-Delivery": "d-1"}
    assert c.post_webhook("/webhooks/shop", body.encode(),
                          dict(h, **{"X-Shop-Signature": bad}))[0] == 401
    assert c.post_webhook("/webhooks/shop", body.encode(), {"X-Shop-Timestamp": ts})[0] == 401
    tampered = body.replace("ada@", "eve@")
    assert c.post_webhook("/webhooks/shop", tampered.encode(),
                          dict(h, **{"X-Shop-Signature": good}))[0] == 401
    stale = str(int(ts) - 3600)
    old = harness.sign_hmac(SECRET, body.encode(), timestamp=stale,
                            template="{timestamp}.{body}", prefix="sha256=")
    assert c.post_webhook("/webhooks/shop", body.encode(),
                          {"X-Shop-Timestamp": stale, "X-Shop-Signature": old})[0] == 401
    # The refused delivery id was not journaled: the same id is new now.
    status, answer = c.post_webhook("/webhooks/shop", body.encode(),
                                    dict(h, **{"X-Shop-Signature": good}))
    assert status == 202 and answer["status"] == "accepted", answer
    wait_until(lambda: one_contact(crm, contact_email="ada@example.com"), 10, "the good one")
    assert c.cli("history", "2", check=False)[0] != 0  # only one record exists


def test_malformed_oversized_and_unknown_requests():
    crm, c, shop = setup()
    not_json = b"{not json"
    ts = str(int(__import__("time").time()))
    sig = harness.sign_hmac(SECRET, not_json, timestamp=ts, template="{timestamp}.{body}",
                            prefix="sha256=")
    status, answer = c.post_webhook("/webhooks/shop", not_json,
                                    {"X-Shop-Timestamp": ts, "X-Shop-Signature": sig})
    assert status == 400 and "error" in answer, (status, answer)
    big = b"[" + b"1," * 40000 + b"1]"
    status, answer = c.post_webhook("/webhooks/shop", big, {})
    assert status == 413 and "error" in answer, (status, answer)
    status, answer = c.post_webhook("/webhooks/nope", b"{}", {})
    assert status == 404 and "error" in answer, (status, answer)
    assert c.http("GET", "/healthz")[0] == 200
    assert c.http("GET", "/readyz")[0] == 200


def test_repeated_delivery_id_is_applied_once():
    crm, c, shop = setup()
    r = shop.change("s1", ADA, delivery_id="delivery-42")
    assert r["status"] == 202, r
    again = shop.resend("delivery-42")
    assert again["status"] == 200 and again["body"]["status"] == "duplicate", again
    wait_until(lambda: one_contact(crm, contact_email="ada@example.com"), 10, "the create")
    shop.change("s2", dict(ADA, email="b@example.com"))  # a barrier
    wait_until(lambda: one_contact(crm, contact_email="b@example.com"), 10, "the barrier")
    c.wait_settled()
    assert len(crm.requests("POST")) == 2
    assert len(c.cli_json("history", "1")) == 1


def test_kill9_after_ack_before_delivery_delivers_each_once():
    crm_port = harness.free_port()
    # The CRM is down; the first attempt fails at once, the next is far away.
    crm, c, shop = setup(crm_port=crm_port, start_crm=False,
                         retry={"base_ms": 4000, "cap_ms": 4000, "max_attempts": 10})
    n = 20
    for i in range(n):
        r = shop.change("s%d" % i, dict(ADA, email="c%d@example.com" % i))
        assert r["status"] == 202, r

    def all_waiting():
        st = [s for s in c.cli_json("status")["systems"] if s["name"] == "crm"][0]
        return st["backlog"] == n and st["in_flight"] == 0

    wait_until(all_waiting, 10, "every job to wait for its retry")
    c.kill9()
    crm = Sim(port=crm_port, resource="contacts", token=TOKEN)
    c.start()
    wait_until(lambda: len(contacts(crm)) == n, 20, "every customer in the CRM")
    c.wait_settled()
    emails = sorted(r["contact_email"] for r in contacts(crm))
    assert emails == sorted("c%d@example.com" % i for i in range(n)), emails
    assert len(crm.requests("POST")) == n
    assert c.cli_json("failed") == []


def refused(host, port):
    """Whether a TCP connection to host:port is refused."""
    try:
        socket.create_connection((host, port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return False


def test_sigterm_finishes_the_delivery_in_flight():
    # The create's answer takes 8 s: a window wide enough to see it in
    # flight and the stop refuse connections, even on a loaded machine
    # (the status CLI itself takes time).
    crm, c, shop = setup(timeout_ms=10000)
    crm.faults([{"delay_ms": 8000}])
    shop.change("s1", ADA)
    # In flight: claimed in the store, and arrived at the CRM but not
    # answered (the CRM logs a request when it arrives, its status when it
    # answers). The status is read first: it takes longer.
    wait_until(lambda: [s for s in c.cli_json("status")["systems"] if s["name"] == "crm"][0]
               ["in_flight"] == 1 and
               [r["status"] for r in crm.requests("POST")] == [None], 10, "the create in flight")
    # SIGTERM stops accepting work at once: while the create still waits
    # for its answer, a new connection to the webhook port is refused.
    c.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: refused(c.host, c.port), 3, "the webhook port refusing connections")
    assert c.running(), "concord exited before the create in flight was answered"
    assert [r["status"] for r in crm.requests("POST")] == [None]
    assert c.stop() == 0
    assert one_contact(crm, contact_email="ada@example.com") is not None
    c.start()
    c.wait_settled()
    assert len(crm.requests("POST")) == 1
    assert c.cli_json("failed") == []


def test_a_lost_create_answer_is_parked_not_sent_again():
    crm, c, shop = setup()
    crm.faults([{"reset": "after", "match": {"method": "POST"}}])
    shop.change("s1", ADA)
    failed = wait_until(lambda: c.cli_json("failed"), 10, "the unknown outcome")
    assert failed[0]["kind"] == "unknown", failed
    assert "may or may not" in failed[0]["reason"], failed
    # The create did happen; concord must not have sent it again.
    assert len(contacts(crm)) == 1
    shop.change("s1", {"phone": "+44 3"})  # later edits wait behind the unknown create
    shop.change("s2", dict(ADA, email="b@example.com"))  # a barrier
    wait_until(lambda: one_contact(crm, contact_email="b@example.com"), 10, "the barrier")
    assert len(crm.requests("POST")) == 2
    assert len(contacts(crm)) == 2


def test_a_delete_in_the_shop_deletes_the_contact():
    crm, c, shop = setup()
    shop.change("s1", ADA)
    rec = wait_until(lambda: one_contact(crm, contact_email="ada@example.com"), 10, "the create")
    r = shop.delete("s1")
    assert r["status"] == 202, r
    wait_until(lambda: contacts(crm) == [], 10, "the delete")
    dels = crm.requests("DELETE")
    assert len(dels) == 1 and dels[0]["path"] == "/contacts/" + rec["id"], dels
    hist = c.cli_json("history", "1")
    assert hist[-1]["diff"] == {"deleted": [False, True]}, hist


def test_a_mapping_error_parks_the_change_with_field_and_reason():
    crm, c, shop = setup()
    r = shop.change("s1", dict(ADA, balance="twelve"))
    assert r["status"] == 202, r  # journaled: the sender did its part
    failed = wait_until(lambda: c.cli_json("failed"), 10, "the mapping failure")
    assert failed[0]["kind"] == "mapping", failed
    assert "balance" in failed[0]["reason"] and "twelve" in failed[0]["reason"], failed
    assert failed[0]["system"] == "shop" and failed[0]["collection"] == "shop.customers"
    assert contacts(crm) == []


def test_retry_after_is_honoured():
    crm, c, shop = setup()
    crm.faults([{"status": 503, "retry_after": "1"}])
    shop.change("s1", ADA)
    wait_until(lambda: one_contact(crm, contact_email="ada@example.com"), 10, "the create")
    posts = crm.requests("POST")
    assert [p["status"] for p in posts] == [503, 201], posts
    gap = posts[1]["time"] - posts[0]["time"]
    assert gap >= 0.95, "retried after %.3f s, Retry-After said 1 s" % gap


def test_read_commands_need_no_secrets():
    import subprocess
    crm, c, shop = setup()
    env = {k: v for k, v in c.env.items() if k not in ("SHOP_SECRET", "CRM_TOKEN")}
    for args in (["status", "--json"], ["failed"], ["status"]):
        p = subprocess.run([harness.concord_bin()] + args + ["-c", c.path], env=env,
                           capture_output=True, cwd=c.dir)
        assert p.returncode == 0, (args, p.stderr)
    p = subprocess.run([harness.concord_bin(), "check", "-c", c.path], env=env,
                       capture_output=True, cwd=c.dir)
    assert p.returncode == 2 and b"SHOP_SECRET" in p.stderr, p.stderr


def test_store_unavailable_gets_503_and_nothing_is_lost():
    import sqlite3
    crm, c, shop = setup()
    shop.change("s1", ADA)
    wait_until(lambda: one_contact(crm, contact_email="ada@example.com"), 10, "the first create")
    # Another process takes the database's write lock and keeps it.
    lock = sqlite3.connect(os.path.join(c.dir, "state.db"), isolation_level=None, timeout=5)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        r = shop.change("s2", dict(ADA, email="b@example.com"))
        assert r["status"] == 503 and "store" in r["body"]["error"], r
        assert c.http("GET", "/readyz")[0] == 503
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    # Nothing was journaled: the sender tries again and it goes through.
    r = shop.resend(r["delivery_id"])
    assert r["status"] == 202, r
    wait_until(lambda: one_contact(crm, contact_email="b@example.com"), 10, "the second create")
    assert c.http("GET", "/readyz")[0] == 200
    assert len(crm.requests("POST")) == 2


def test_a_taken_port_is_replaced_when_the_harness_picked_it():
    values = {"crm_port": 9, "timeout_ms": 2000, "max_attempts": 5, "base_ms": 50, "cap_ms": 200}
    env = {"SHOP_SECRET": SECRET, "CRM_TOKEN": TOKEN}
    c = Concord(CONFIG, values=values, env=env)
    taken = c.port
    with socket.socket() as squatter:  # as an outgoing connection would hold it
        squatter.bind(("127.0.0.1", taken))
        c.start()
        assert c.port != taken and c.http("GET", "/healthz")[0] == 200, c.log_tail()
        assert "127.0.0.1:%d" % c.port in open(c.path).read()
        # A port the test gave, and so wrote elsewhere too, is not replaced.
        given = Concord(CONFIG, values=dict(values, port=taken), env=env)
        try:
            given.start()
            raise AssertionError("concord started on a taken port")
        except harness.PortTaken as e:
            assert e.port == taken and "the address is taken" in str(e), e


def metric_total(c, name, label):
    """The sum of /metrics' series of name whose labels hold label."""
    _, body, _ = harness.http_request(c.port, "GET", "/metrics")
    return sum(float(line.split()[-1]) for line in body.splitlines()
               if line.startswith(name + "{") and label in line)


def applied_total(c, collection):
    return metric_total(c, "concord_changes_applied_total", 'collection="%s"' % collection)


def six_changes_one_poisoned(trigger, **kw):
    """A concord that relayed Ada, stopped with six more shop changes in its
    journal (p1..p6; p4 is named Poison) and the SQLite trigger given,
    which refuses Poison somewhere; kw goes to setup(). Returns (crm,
    concord, shop)."""
    crm, c, shop = setup(**kw)
    shop.change("s0", ADA)
    wait_until(lambda: len(contacts(crm)) == 1, 10, "the first contact")
    c.stop()
    db = sqlite3.connect(os.path.join(c.dir, "state.db"))
    body = db.execute("SELECT CAST(body AS TEXT) FROM journal ORDER BY seq LIMIT 1").fetchone()[0]
    for i in range(1, 7):
        text = body.replace('"s0"', '"s%d"' % i).replace("ada@example.com", "p%d@example.com" % i)
        if i == 4:
            text = text.replace("Ada", "Poison")
        db.execute("INSERT INTO journal (system, received_at, body) VALUES ('shop', ?, ?)",
                   (int(time.time() * 1000), text))
    db.execute(trigger)
    db.commit()
    db.close()
    return crm, c, shop


def test_a_change_the_store_refuses_is_parked_and_the_rest_of_its_batch_stands():
    # Changes are processed many to a savepoint; one the store refuses must
    # undo only itself: the others are applied (and counted) once.
    crm, c, shop = six_changes_one_poisoned(
        "CREATE TRIGGER poison BEFORE INSERT ON records WHEN NEW.state LIKE '%Poison%' "
        "BEGIN SELECT RAISE(ABORT, 'the store refuses poison'); END")
    c.start()
    wait_until(lambda: len(contacts(crm)) == 6, 10, "the five good changes in the CRM")
    entries = wait_until(lambda: c.cli_json("inbox"), 10, "the refused change in the inbox")
    assert len(entries) == 1 and "the store refuses poison" in entries[0]["reason"], entries
    assert one_contact(crm, contact_email="p4@example.com") is None
    assert applied_total(c, "shop.customers") == 5.0


def test_creates_claimed_in_a_batch_rolled_back_go_out_once():
    # A new record's create is claimed as processing queues it ("born
    # claimed"), inside the batch's savepoint. Here p4's change fails after
    # its create was claimed, so the batch is rolled back with the claims
    # of p1..p4 and done again one change at a time. Each create that
    # stood goes out once, p4's never, and the in-flight marks of the
    # dropped claims go with them: with five slots, the five creates
    # still find room, and p1's link takes its next job.
    crm, c, shop = six_changes_one_poisoned(
        "CREATE TRIGGER poison BEFORE UPDATE OF state ON journal WHEN NEW.state = 1 AND "
        "CAST(OLD.body AS TEXT) LIKE '%Poison%' "
        "BEGIN SELECT RAISE(ABORT, 'the store refuses poison'); END", max_in_flight=5)
    c.start(args=["--trace", "writer"])
    wait_until(lambda: len(contacts(crm)) == 6, 10, "the five good creates in the CRM")
    entries = wait_until(lambda: c.cli_json("inbox"), 10, "the refused change in the inbox")
    assert len(entries) == 1 and "the store refuses poison" in entries[0]["reason"], entries
    c.wait_settled()
    posts = crm.requests("POST")
    assert len(posts) == 6, posts  # Ada's, then p1, p2, p3, p5 and p6 once each
    assert sorted(r["body"]["contact_email"] for r in posts[1:]) == [
        "p%d@example.com" % i for i in (1, 2, 3, 5, 6)], posts
    assert one_contact(crm, contact_email="p4@example.com") is None
    # They were born claimed (the writer's trace counts them), not queued.
    born = 0
    for line in c.log_text().splitlines():
        if line.startswith("{") and "born claimed" in line:
            born += int(json.loads(line)["msg"].rsplit("(", 1)[1].split()[0])
    assert born == 5, born
    shop.change("s1", dict(ADA, email="p1@example.com", first_name="Ida"))
    wait_until(lambda: one_contact(crm, contact_email="p1@example.com",
                                   full_name="Ida Lovelace"), 10, "p1's update")
    assert len(crm.requests("POST")) == 6


def test_a_copy_made_by_hand_is_not_taken_for_a_create_not_sent_yet():
    # Pat's create is born claimed in the turn that also reads a CRM change
    # for x1, a contact someone made by hand with what Pat's create will
    # send. A create sent whose answer was lost would own x1 (its echo);
    # one not sent yet cannot. So x1 stays a stranger: when the create is
    # refused, Pat's link holds no copy, and Pat's next change writes no
    # contact concord never made.
    crm, c, shop = setup()
    shop.change("s0", ADA)
    wait_until(lambda: len(contacts(crm)) == 1, 10, "Ada in the CRM")
    sent = crm.requests("POST")[0]["body"]
    c.stop()
    x1 = crm.put("x1", dict(sent, contact_email="pat@example.com"))
    db = sqlite3.connect(os.path.join(c.dir, "state.db"))
    ada = db.execute("SELECT CAST(body AS TEXT) FROM journal ORDER BY seq LIMIT 1").fetchone()[0]
    pat = ada.replace('"s0"', '"s1"').replace("ada@example.com", "pat@example.com")
    now = int(time.time() * 1000)
    # Both journaled while concord is stopped: one turn processes them.
    db.execute("INSERT INTO journal (system, received_at, body) VALUES ('shop', ?, ?)", (now, pat))
    db.execute("INSERT INTO journal (system, received_at, body) VALUES ('crm', ?, ?)",
               (now, json.dumps(x1, sort_keys=True)))
    db.commit()
    db.close()
    crm.faults([{"match": {"method": "POST"}, "status": 422, "body": {"error": "no"}}])
    c.start(args=["--trace", "writer"])
    entries = wait_until(lambda: c.cli_json("inbox"), 10, "Pat's refused create in the inbox")
    assert len(entries) == 1 and entries[0]["http_status"] == 422, entries
    c.wait_settled()
    assert "is the one concord's create made" not in c.log_text()
    assert any("born claimed" in line and "(1 born" in line for line in c.log_text().splitlines())
    db = sqlite3.connect(os.path.join(c.dir, "state.db"))
    exts = [r[0] for r in db.execute("SELECT ext_id FROM links WHERE collection = 'crm.contacts'")]
    db.close()
    assert "x1" not in exts, exts
    shop.change("s1", dict(ADA, email="pat@example.com", phone="+44 9"))
    wait_until(lambda: len(c.cli_json("inbox")) == 1 and
               len(crm.requests("POST")) >= 3, 10, "Pat's create tried again")
    c.wait_settled()
    assert not [r for r in crm.requests() if r["path"] == "/contacts/x1"], crm.requests()
    assert crm.records()["x1"]["contact_email"] == "pat@example.com"


def deliveries_total(c, outcome):
    return metric_total(c, "concord_deliveries_total", 'outcome="%s"' % outcome)


def test_an_answer_the_store_refuses_is_parked_and_the_rest_of_its_batch_stands():
    # Answers are applied many to a savepoint too. One the store refuses to
    # record undoes only itself, and what the answers teach (the deliveries
    # metric, the system's budget and breaker) is counted once each, though
    # the batch was applied twice.
    # The link's base is set when the create's answer is applied.
    crm, c, shop = six_changes_one_poisoned(
        "CREATE TRIGGER poison BEFORE UPDATE OF base ON links WHEN NEW.base LIKE "
        "'%Poison%' BEGIN SELECT RAISE(ABORT, 'the store refuses poison'); END")
    # The answers come back together, so that they are applied together.
    crm.faults([{"match": {"method": "POST"}, "delay_ms": 400, "times": 6}])
    c.start()
    wait_until(lambda: len(contacts(crm)) == 7, 10, "the six creates in the CRM")
    entries = wait_until(lambda: c.cli_json("inbox"), 10, "the refused answer in the inbox")
    assert len(entries) == 1, entries
    assert "could not record the answer" in entries[0]["reason"], entries
    assert "the store refuses poison" in entries[0]["reason"], entries
    wait_until(lambda: deliveries_total(c, "ok") == 6.0, 10,
               "each of the six answers counted once")
    db = sqlite3.connect(os.path.join(c.dir, "state.db"))
    linked = db.execute("SELECT count(*) FROM links WHERE collection = 'crm.contacts' AND "
                        "ext_id IS NOT NULL").fetchone()[0]
    db.close()
    assert linked == 6, linked  # Ada's and the five good answers'
    assert deliveries_total(c, "ok") == 6.0


def syncgate():
    """Environment that puts concord's fsyncs of its WAL under the test's
    control (tests/shim/syncgate.c), and the two files that do it: while
    "hold" exists a sync waits, while "fail" exists it fails with EIO."""
    shim = os.environ.get("CONCORD_SYNCGATE") or os.path.join(
        os.path.dirname(harness.concord_bin()), "tests", "libsyncgate.so")
    shim = os.path.abspath(shim)
    assert os.path.exists(shim), "the syncgate shim is not built: %s" % shim
    gate = tempfile.mkdtemp(prefix="concord-syncgate-", dir="/tmp")
    atexit.register(shutil.rmtree, gate, True)
    env = {"LD_PRELOAD": shim, "SYNCGATE_HOLD": os.path.join(gate, "hold"),
           "SYNCGATE_FAIL": os.path.join(gate, "fail"),
           # ASan wants its runtime first; the shim has none of its own.
           "ASAN_OPTIONS": "verify_asan_link_order=0:" + os.environ.get("ASAN_OPTIONS", "")}
    return env, os.path.join(gate, "hold"), os.path.join(gate, "fail")


def test_nothing_is_answered_or_sent_before_its_commit_is_on_disk():
    # The webhook's 202 and the CRM's request wait for the fsync of the
    # commit that holds them. Here every fsync of the WAL is held.
    env, hold, _ = syncgate()
    crm, c, shop = setup(env=env)
    shop.change("s0", dict(ADA, email="first@example.com"))
    wait_until(lambda: one_contact(crm, contact_email="first@example.com"), 10, "a first create")
    open(hold, "w").close()
    answers = []
    sender = threading.Thread(target=lambda: answers.append(shop.change("s1", ADA)))
    sender.start()
    try:
        # For as long as the sync waits: neither answered nor sent.
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            assert answers == [], answers
            assert len(crm.requests("POST")) == 1
            time.sleep(0.05)
    finally:
        os.unlink(hold)
    sender.join(10)
    assert answers and answers[0]["status"] == 202, answers
    wait_until(lambda: one_contact(crm, contact_email="ada@example.com"), 10, "the create")
    assert len(crm.requests("POST")) == 2


def test_a_failed_sync_answers_503_and_sends_nothing():
    # A disk that refuses the commit's fsync: nothing of that commit is
    # acknowledged or sent. Once the disk is back, the sender's retry goes
    # through, once.
    env, _, fail = syncgate()
    crm, c, shop = setup(env=env)
    open(fail, "w").close()
    try:
        r = shop.change("s1", ADA)
        assert r["status"] == 503, r
        assert "I/O error" in c.log_text()  # SQLite's SQLITE_IOERR, logged
        assert crm.requests("POST") == []
    finally:
        os.unlink(fail)
    again = shop.resend(r["delivery_id"])
    assert again["status"] == 202, again
    wait_until(lambda: one_contact(crm, contact_email="ada@example.com"), 10, "the create")
    c.wait_settled()
    assert len(crm.requests("POST")) == 1


if __name__ == "__main__":
    harness.run_tests(globals())
