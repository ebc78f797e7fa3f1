#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Retention and erasure (the Operate issue): old journal rows, versions
and attempts are pruned in the background and the store stops growing
under steady load; `concord forget` erases a person's record so that their
e-mail is nowhere in the store's files, and with --propagate deletes their
copies first."""

import os
import sqlite3
import sys
import time
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Concord, Sim, wait_until  # noqa: E402

SHOP_SECRET = "shop-secret"

CONFIG = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=5000
log: {level: info, format: json}
retention: {retention}
systems:
  shop:
    kind: http
    base_url: http://127.0.0.1:{shop_port}
    webhook:
      path: /webhooks/shop
      signature: {secret: env:SHOP_SECRET, header: X-Shop-Signature}
    collections:
      customers:
        model: customer
        deleted_when: '.deleted == true'
        map_in: {email: email, name: name}
  crm:
    kind: http
    base_url: http://127.0.0.1:{crm_port}
    timeout_ms: 2000
    delete_guard: off
    collections:
      contacts:
        model: customer
        map_out: {contact_email: email, full_name: name}
        create: POST /contacts
        update: PUT /contacts/{id}
        delete: DELETE /contacts/{id}
models:
  customer:
    fields: {email: string, name: string}
syncs:
  customers:
    model: customer
    origin: shop
    collections: [shop.customers, crm.contacts]
    match: [email]
"""


def setup(retention="{journal: 30d}", config=CONFIG):
    port = harness.free_port()
    shop = Sim(resource="customers", id_prefix="S",
               webhook_url="http://127.0.0.1:%d/webhooks/shop" % port,
               webhook_secret=SHOP_SECRET, signature_header="X-Shop-Signature")
    crm = Sim(resource="contacts", id_prefix="C")
    c = Concord(config, values={"port": port, "shop_port": shop.port, "crm_port": crm.port,
                                "retention": retention},
                env={"SHOP_SECRET": SHOP_SECRET})
    c.start()
    return shop, crm, c


def store_bytes(c):
    out = b""
    for name in ("state.db", "state.db-wal"):
        path = os.path.join(c.dir, name)
        if os.path.exists(path):
            with open(path, "rb") as f:
                out += f.read()
    return out


def record_of(c, email):
    db = sqlite3.connect(os.path.join(c.dir, "state.db"))
    try:
        row = db.execute("SELECT record_id FROM record_keys WHERE value = ?", (email,)).fetchone()
        return row[0] if row else None
    finally:
        db.close()


def test_forget_leaves_no_trace_of_the_email():
    shop, crm, c = setup()
    shop.change("s1", {"email": "zelda.forget@example.com", "name": "Zelda"})
    shop.change("s1", {"name": "Zelda Z"})
    shop.change("s2", {"email": "kept@example.com", "name": "Kept"})
    # Another person whose e-mail holds the first one's: nothing of theirs goes.
    shop.change("s3", {"email": "ozelda.forget@example.com", "name": "Oz"})
    wait_until(lambda: len(crm.records()) == 3, 10, "the contacts")
    c.wait_settled()
    rid = record_of(c, "zelda.forget@example.com")
    assert rid is not None
    assert b"zelda.forget" in store_bytes(c).lower()
    rc, out, err = c.cli("forget", str(rid))
    assert rc == 0 and "erased" in out, (out, err)
    c.stop()
    data = store_bytes(c).lower()
    assert b'"zelda.forget@example.com"' not in data and b"zelda z" not in data
    assert b"kept@example.com" in data  # the grep sees what is there
    db = sqlite3.connect(os.path.join(c.dir, "state.db"))
    try:
        oz = db.execute("SELECT count(*) FROM journal WHERE CAST(body AS TEXT) LIKE "
                        "'%ozelda.forget@example.com%'").fetchone()[0]
    finally:
        db.close()
    assert oz == 1, oz
    # The copies in the CRM stay: no --propagate.
    assert len(crm.records()) == 3


def test_forget_propagate_deletes_the_copies_first():
    shop, crm, c = setup()
    shop.change("s1", {"email": "yann.gone@example.com", "name": "Yann"})
    wait_until(lambda: len(crm.records()) == 1, 10, "the contact")
    c.wait_settled()
    rid = record_of(c, "yann.gone@example.com")
    rc, out, err = c.cli("forget", "--propagate", str(rid))
    assert rc == 0 and "copies were deleted" in out, (out, err)
    assert crm.records() == {}
    c.stop()
    assert b"yann.gone" not in store_bytes(c).lower()


def test_a_new_record_after_a_forget_gets_its_own_key_and_copy():
    # The CRM keeps answering a key it has seen with the copy it made then
    # (as Stripe does for a day). A's links have the highest ids; once A is
    # forgotten, B's links must not take them again, or B's create would
    # carry A's key and be linked to A's contact.
    port = harness.free_port()
    config = CONFIG.replace("        delete: DELETE /contacts/{id}\n",
                            "        delete: DELETE /contacts/{id}\n"
                            "        idempotency_header: Idempotency-Key\n")
    shop = Sim(resource="customers", id_prefix="S",
               webhook_url="http://127.0.0.1:%d/webhooks/shop" % port,
               webhook_secret=SHOP_SECRET, signature_header="X-Shop-Signature")
    crm = Sim(resource="contacts", id_prefix="C", idempotency_header="Idempotency-Key")
    c = Concord(config, values={"port": port, "shop_port": shop.port, "crm_port": crm.port,
                                "retention": "{journal: 30d}"},
                env={"SHOP_SECRET": SHOP_SECRET})
    c.start()
    shop.change("s1", {"email": "ann.first@example.com", "name": "Ann"})
    wait_until(lambda: len(crm.records()) == 1, 10, "Ann's contact")
    c.wait_settled()
    rc, out, err = c.cli("forget", str(record_of(c, "ann.first@example.com")))
    assert rc == 0 and "erased" in out, (out, err)
    shop.change("s2", {"email": "ben.second@example.com", "name": "Ben"})
    wait_until(lambda: len(crm.requests("POST")) == 2, 10, "Ben's create")
    c.wait_settled()
    keys = [harness.header(r, "Idempotency-Key") for r in crm.requests("POST")]
    assert keys[0] != keys[1], keys
    emails = sorted(r.get("contact_email") for r in crm.records().values())
    assert emails == ["ann.first@example.com", "ben.second@example.com"], crm.records()


def test_old_rows_are_pruned_and_the_store_stops_growing():
    # Steady load: a round of 20 changes after another, for at least 5 s
    # (four times the 1 s retention), however fast the machine takes them.
    shop, crm, c = setup("{journal: 1s, versions: 1s, attempts: 1s, inbox: 1s}")
    db_path = os.path.join(c.dir, "state.db")
    samples = []
    began = time.monotonic()
    rnd = 0
    while rnd < 12 or (time.monotonic() - began < 5.0 and rnd < 200):
        for i in range(20):
            shop.change("s%d" % i, {"email": "p%d@example.com" % i, "name": "n%d-%d" % (i, rnd)},
                        send=True)
        c.wait_settled()
        db = sqlite3.connect(db_path)
        try:
            journal = db.execute("SELECT count(*) FROM journal").fetchone()[0]
            versions = db.execute("SELECT count(*) FROM versions").fetchone()[0]
            pages = db.execute("PRAGMA page_count").fetchone()[0]
        finally:
            db.close()
        samples.append((round(time.monotonic() - began, 2), journal, versions, pages))
        rnd += 1
    total = 20 * rnd
    late = [x for x in samples if x[0] >= 2.5]  # past the retention and two prune turns
    # Old changes were pruned as they aged past 1 s: far fewer rows than went in.
    assert late and max(x[1] for x in late) < total * 0.8, (total, samples)
    # The file stopped growing: freed pages are reused.
    assert samples[-1][3] <= late[0][3] * 1.25, samples
    # The current versions stay: every record still has one.
    assert samples[-1][2] >= 20, samples

# Three automations on a new customer, by its name: one that finishes
# (done), one whose request is refused (failed, in the inbox) and one that
# waits an hour (waiting).
AUTOMATIONS = """automations:
  touch:
    model: customer
    on: created
    if: '.new.name | startswith("ok")'
    actions:
      - http: {system: crm, request: GET /contacts}
  refused:
    model: customer
    on: created
    if: '.new.name | startswith("fail")'
    actions:
      - http: {system: crm, request: GET /nowhere}
  later:
    model: customer
    on: created
    if: '.new.name | startswith("wait")'
    actions:
      - wait: 1h
"""


def epoch(iso):
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=timezone.utc).timestamp()


def steps_of(c, run_ids):
    db = sqlite3.connect(os.path.join(c.dir, "state.db"))
    try:
        return db.execute("SELECT count(*) FROM automation_steps WHERE run_id IN (%s)"
                          % ",".join(str(int(r)) for r in run_ids)).fetchone()[0]
    finally:
        db.close()


def test_finished_automation_runs_are_pruned_and_the_others_stay():
    shop, crm, c = setup("{runs: 3s}", config=CONFIG + AUTOMATIONS)
    for i in range(3):
        shop.change("ok%d" % i, {"email": "ok%d@example.com" % i, "name": "ok %d" % i})
    shop.change("f1", {"email": "f1@example.com", "name": "fail 1"})
    shop.change("w1", {"email": "w1@example.com", "name": "wait 1"})
    runs = wait_until(lambda: (lambda rs: rs if sorted(r["state"] for r in rs) == [
        "done", "done", "done", "failed", "waiting"] else None)(c.cli_json("runs")), 15,
        "three runs done, one failed, one waiting")
    done = {r["id"]: epoch(r["updated_at"]) for r in runs if r["state"] == "done"}
    kept = {r["state"]: r["id"] for r in runs if r["state"] != "done"}
    assert steps_of(c, done) == 3
    gone = {}

    def look():
        ids = {r["id"] for r in c.cli_json("runs")}
        now = time.time()
        for rid in done:
            if rid not in ids:
                gone.setdefault(rid, now)
        return len(gone) == len(done)

    wait_until(look, 15, "the finished runs pruned")
    # Pruned once older than 3 s (from when each finished), not before.
    for rid, at in gone.items():
        assert at - done[rid] >= 2.95, (rid, at - done[rid])
    # With their actions' rows.
    assert steps_of(c, done) == 0
    # A failed run (its inbox entry open) and a waiting one stay, however old.
    left = {r["id"]: r["state"] for r in c.cli_json("runs")}
    assert left == {kept["failed"]: "failed", kept["waiting"]: "waiting"}, left
    assert steps_of(c, kept.values()) == 2
    # Once its entry is skipped, the failed run is finished too, and goes.
    [entry] = [e for e in c.cli_json("failed") if "refused" in e["reason"]]
    c.cli("skip", str(entry["id"]), "--reason", "no such page")
    wait_until(lambda: [r["id"] for r in c.cli_json("runs")] == [kept["waiting"]], 15,
               "the skipped run pruned")
    assert steps_of(c, [kept["failed"]]) == 0


if __name__ == "__main__":
    harness.run_tests(globals())
