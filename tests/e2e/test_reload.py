#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Reload (the Operate issue): `concord reload` (or SIGHUP) swaps a valid
config in without losing queued work, which is then delivered with the new
maps; an invalid config is refused, its errors are logged and shown, and
the running config stays."""

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Concord, Sim, wait_until  # noqa: E402

SHOP_SECRET = "shop-secret"

CONFIG = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=2000
log: {level: debug, format: json}
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
        map_in: {email: email, name: name}
  crm:
    kind: http
    base_url: http://127.0.0.1:{crm_port}
    timeout_ms: 1000
    collections:
      contacts:
        model: customer
        map_out: {contact_email: email, full_name: MAP}
        create: POST /contacts
        update: PUT /contacts/{id}
models:
  customer:
    fields: {email: string, name: string}
syncs:
  customers:
    model: customer
    origin: shop
    collections: [shop.customers, crm.contacts]
"""


def setup():
    port = harness.free_port()
    shop = Sim(resource="customers", id_prefix="S",
               webhook_url="http://127.0.0.1:%d/webhooks/shop" % port,
               webhook_secret=SHOP_SECRET, signature_header="X-Shop-Signature")
    crm = Sim(resource="contacts", id_prefix="C")
    c = Concord(CONFIG.replace("MAP", "name"),
                values={"port": port, "shop_port": shop.port, "crm_port": crm.port},
                env={"SHOP_SECRET": SHOP_SECRET})
    c.start()
    return shop, crm, c


def rewrite(c, text):
    path = os.path.join(c.dir, "concord.yaml")
    with open(path) as f:
        old = f.read()
    with open(path, "w") as f:
        f.write(text(old))


def test_a_valid_config_is_swapped_in_and_queued_work_takes_the_new_maps():
    shop, crm, c = setup()
    shop.change("s1", {"email": "a@example.com", "name": "Ada"})
    wait_until(lambda: len(crm.records()) == 1, 10, "the first contact")
    # Queue work the old maps never deliver: the CRM is paused.
    c.cli("pause", "crm")
    shop.change("s2", {"email": "b@example.com", "name": "Bob"})
    wait_until(lambda: [s for s in c.cli_json("status")["systems"]
                        if s["name"] == "crm"][0]["backlog"] == 1, 10, "the queued job")
    rewrite(c, lambda t: t.replace("full_name: name", "full_name: {jq: '.name | ascii_upcase'}"))
    rc, out, err = c.cli("reload")
    assert rc == 0 and "the new config is in" in out, (out, err)
    c.cli("resume", "crm")
    wait_until(lambda: {r.get("full_name") for r in crm.records().values()} >= {"BOB"}, 10,
               "the queued contact with the new map")
    # Webhooks are taken after the swap, with the new maps too.
    shop.change("s3", {"email": "c@example.com", "name": "Cyd"})
    wait_until(lambda: "CYD" in {r.get("full_name") for r in crm.records().values()}, 10,
               "a new change with the new map")
    assert "reload: the new config is in" in c.log_text()


def test_a_field_a_reloaded_map_starts_to_read_comes_with_the_copys_next_change():
    # concord keeps of the shop's copy only what the shop's map reads: a
    # member the new map reads is news the next time the copy changes, even
    # where that member itself did not change.
    shop, crm, c = setup()
    shop.change("s1", {"email": "a@example.com", "name": "Ada", "nick": "Countess"})
    wait_until(lambda: len(crm.records()) == 1, 10, "the first contact")
    rewrite(c, lambda t: t.replace("{email: string, name: string}",
                                   "{email: string, name: string, nick: string}")
            .replace("map_in: {email: email, name: name}",
                     "map_in: {email: email, name: name, nick: nick}")
            .replace("full_name: name}", "full_name: name, nickname: nick}"))
    rc, out, err = c.cli("reload")
    assert rc == 0 and "the new config is in" in out, (out, err)
    shop.change("s1", {"email": "a@example.com", "name": "Ada L.", "nick": "Countess"})
    wait_until(lambda: [(r.get("full_name"), r.get("nickname")) for r in crm.records().values()]
               == [("Ada L.", "Countess")], 10, "the name and the newly mapped nick")


def test_an_invalid_config_is_refused_and_the_old_one_keeps_running():
    shop, crm, c = setup()
    rewrite(c, lambda t: t.replace("timeout_ms: 1000", "timeout_ms: soon"))
    rc, out, err = c.cli("reload", check=False)
    assert rc == 2 and "timeout_ms" in err, (rc, out, err)  # checked before it is sent
    # SIGHUP straight to the daemon: it refuses, logs why, and keeps going.
    os.kill(c.proc.pid, signal.SIGHUP)
    wait_until(lambda: "reload refused" in c.log_text(), 10, "the refusal in the log")
    assert "timeout_ms" in c.log_text()
    shop.change("s1", {"email": "a@example.com", "name": "Ada"})
    wait_until(lambda: len(crm.records()) == 1, 10, "a delivery under the old config")
    assert c.running()



def test_the_jobs_of_a_system_taken_out_of_the_config_are_parked_at_the_next_start():
    shop, crm, c = setup()
    crm.stop()  # the CRM is down: the create waits, retried
    shop.change("s1", {"email": "a@example.com", "name": "Ann"})
    wait_until(lambda: any(s["name"] == "crm" and s["backlog"] + s["in_flight"] >= 1
                           for s in c.cli_json("status")["systems"]),
               10, "the create queued for crm")
    c.stop()
    # The operator renames the system: its queued job belongs to no system.
    rewrite(c, lambda t: t.replace("  crm:\n", "  crm2:\n").replace("crm.contacts",
                                                                    "crm2.contacts"))
    c.start()
    parked = wait_until(lambda: [f for f in c.cli_json("failed") if f["system"] == "crm"], 10,
                        "the orphaned job in the inbox")
    assert "no longer in the config" in parked[0]["reason"], parked


if __name__ == "__main__":
    harness.run_tests(globals())
