#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Delivery you can trust (issue 3): idempotency keys, look-ups before a
lost create is sent again, and crashes in the middle of a create."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import test_foundation as tf  # noqa: E402
from harness import Concord, Sim, wait_until  # noqa: E402

LOOKUP = """        created_id: id
        lookup: GET /contacts?contact_email={contact_email}
        lookup_result: data
"""
IDEMPOTENT = """        created_id: id
        idempotency_header: Idempotency-Key
"""


def setup(extra, crm_flags=None, timeout_ms=2000):
    """A CRM, a concord whose crm.contacts has `extra`, and the shop."""
    port = harness.free_port()
    crm = Sim(resource="contacts", token=tf.TOKEN, **(crm_flags or {}))
    c = Concord(tf.CONFIG.replace("        created_id: id\n", extra), values={
        "port": port, "crm_port": crm.port, "timeout_ms": timeout_ms,
        "max_attempts": 6, "base_ms": 50, "cap_ms": 200},
        env={"SHOP_SECRET": tf.SECRET, "CRM_TOKEN": tf.TOKEN})
    c.start()
    shop = Sim(resource="customers", webhook_url=c.url + "/webhooks/shop",
               webhook_secret=tf.SECRET, signature_header="X-Shop-Signature",
               timestamp_header="X-Shop-Timestamp", delivery_header="X-Shop-Delivery",
               template="{timestamp}.{body}", prefix="sha256=", envelope="customer",
               event_key="event")
    return crm, c, shop


def test_a_lost_create_is_looked_up_and_linked_not_repeated():
    crm, c, shop = setup(LOOKUP)
    crm.faults([{"reset": "after", "match": {"method": "POST"}}])
    shop.change("s1", tf.ADA)
    wait_until(lambda: crm.requests("GET"), 10, "the look-up")
    c.wait_settled()
    assert len(crm.requests("POST")) == 1
    assert crm.requests("GET")[0]["path"] == "/contacts?contact_email=ada%40example.com"
    assert c.cli_json("failed") == []
    # The copy is linked: the next change is an update of it.
    shop.change("s1", {"phone": "+44 9"})
    wait_until(lambda: tf.one_contact(crm, phone_number="+44 9"), 10, "the update")
    assert len(crm.requests("POST")) == 1 and len(tf.contacts(crm)) == 1
    assert crm.requests("PUT")[0]["path"] == "/contacts/" + tf.contacts(crm)[0]["id"]


def test_a_lost_create_that_did_not_happen_is_sent_again():
    crm, c, shop = setup(LOOKUP)
    crm.faults([{"reset": "before", "match": {"method": "POST"}}])
    shop.change("s1", tf.ADA)
    wait_until(lambda: tf.one_contact(crm, contact_email="ada@example.com"), 10, "the create")
    c.wait_settled()
    assert [r["status"] for r in crm.requests("POST")] == ["reset", 201], crm.requests("POST")
    assert len(crm.requests("GET")) == 1
    assert len(tf.contacts(crm)) == 1 and c.cli_json("failed") == []


def test_the_idempotency_key_is_reused_by_the_retry_of_a_lost_create():
    crm, c, shop = setup(IDEMPOTENT, crm_flags={"idempotency_header": "Idempotency-Key"})
    crm.faults([{"reset": "after", "match": {"method": "POST"}}])
    shop.change("s1", tf.ADA)
    wait_until(lambda: len(crm.requests("POST")) == 2, 10, "the second POST")
    c.wait_settled()
    posts = crm.requests("POST")
    keys = [harness.header(p, "Idempotency-Key") for p in posts]
    assert keys[0] and keys[0] == keys[1], keys
    assert posts[0]["body"] == posts[1]["body"]
    assert len(tf.contacts(crm)) == 1 and c.cli_json("failed") == []
    # A new version gets a new key.
    shop.change("s1", {"phone": "+44 9"})
    wait_until(lambda: crm.requests("PUT"), 10, "the update")
    assert harness.header(crm.requests("PUT")[0], "Idempotency-Key") not in (None, keys[0])


def test_kill9_during_a_create_is_settled_by_a_look_up():
    crm, c, shop = setup(LOOKUP, timeout_ms=5000)
    crm.faults([{"delay_ms": 1500, "match": {"method": "POST"}}])
    shop.change("s1", tf.ADA)
    wait_until(lambda: [s for s in c.cli_json("status")["systems"] if s["name"] == "crm"][0]
               ["in_flight"] == 1, 10, "the create in flight")
    c.kill9()
    wait_until(lambda: tf.contacts(crm), 10, "the create applied by the CRM")
    c.start()
    c.wait_settled()
    assert len(crm.requests("POST")) == 1 and len(crm.requests("GET")) == 1
    assert len(tf.contacts(crm)) == 1 and c.cli_json("failed") == []


def test_without_key_or_look_up_a_crash_mid_create_waits_for_a_person():
    crm, c, shop = tf.setup(timeout_ms=5000)
    crm.faults([{"delay_ms": 1500, "match": {"method": "POST"}}])
    shop.change("s1", tf.ADA)
    wait_until(lambda: [s for s in c.cli_json("status")["systems"] if s["name"] == "crm"][0]
               ["in_flight"] == 1, 10, "the create in flight")
    c.kill9()
    c.start()
    failed = wait_until(lambda: c.cli_json("failed"), 10, "the unknown outcome")
    assert failed[0]["kind"] == "unknown", failed
    assert len(crm.requests("POST")) <= 1


if __name__ == "__main__":
    harness.run_tests(globals())
