#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The quickstart, narrated: a shop and a CRM kept in sync by concord.

Starts two simulated systems on 127.0.0.1 — the shop (port 8481), which
announces customer changes by signed webhook, and the CRM (port 8482), which
concord writes to through its REST API — then concord itself (port 8480) with
concord.yaml from this directory, run from a temporary copy so that its
SQLite file lands there. Then it makes changes in the shop and shows what
reached the CRM.

    /usr/bin/python3 examples/quickstart/demo.py [--keep-running]

CONCORD_BIN names the binary (default build/dev/concord). Exits 0 when every
step was observed, 1 with a message saying what did not happen otherwise.
"""

import os
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# The plumbing every example's demo shares (narration, ports, starting and
# stopping): examples/demo_lib.py.
sys.path.insert(0, os.path.dirname(HERE))
from demo_lib import (WAIT_S, DemoFailed, check_binary, harness, main,  # noqa: E402
                      say, show, start_concord, wait_for)

SHOP_PORT, CRM_PORT, CONCORD_PORT = 8481, 8482, 8480
CRM_TOKEN = "Bearer demo-crm-token"

ADA = {
    "first_name": "Ada", "last_name": "Lovelace", "email": "ADA@Example.com",
    "phone": "+44 20 7946 0018", "state": "open", "balance": "12.50", "tags": ["vip"],
}
GRACE = {
    "first_name": "Grace", "last_name": "Hopper", "email": "grace@example.com",
    "phone": "+1 202 555 0143", "state": "closed", "balance": "0.00", "tags": [],
}
NEW_PHONE = "+44 20 7946 0999"


def without_stamp(rec):
    return {k: v for k, v in rec.items() if k != "updated_at"}


def port_busy(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def crm_record_of(crm, full_name):
    for rec in crm.records().values():
        if rec.get("full_name") == full_name:
            return rec
    return None


def run(args, parts):
    secret = os.environ.get("SHOP_WEBHOOK_SECRET", "demo-shop-secret")
    binary = check_binary()
    for port in (CONCORD_PORT, SHOP_PORT, CRM_PORT):
        if port_busy(port):
            raise DemoFailed(
                "port %d on 127.0.0.1 is already in use (is an earlier demo still "
                "running?). Stop it and try again." % port
            )

    say("1. Starting the two systems concord will keep in sync:")
    shop = harness.Sim(
        port=SHOP_PORT, resource="customers",
        webhook_url="http://127.0.0.1:%d/webhooks/shop" % CONCORD_PORT,
        webhook_secret=secret, signature_header="X-Shop-Signature",
        timestamp_header="X-Shop-Timestamp", delivery_header="X-Shop-Delivery",
        template="{timestamp}.{body}", prefix="sha256=", envelope="customer",
        event_key="event",
    )
    parts.append(shop)
    say("the shop on %s: it sends a signed webhook whenever a customer changes" % shop.url, 3)
    crm = harness.Sim(
        port=CRM_PORT, resource="contacts", token=CRM_TOKEN,
        echo_url="http://127.0.0.1:%d/webhooks/crm" % CONCORD_PORT,
    )
    parts.append(crm)
    say("the CRM on %s: a REST API of contacts that wants '%s'" % (crm.url, CRM_TOKEN), 3)

    with open(os.path.join(HERE, "concord.yaml")) as f:
        config = f.read()
    others = {}
    for name in os.listdir(HERE):
        p = os.path.join(HERE, name)
        if name.endswith((".yaml", ".yml", ".json", ".jq")) and name != "concord.yaml" \
                and os.path.isfile(p):
            with open(p) as f:
                others[name] = f.read()
    concord = harness.Concord(
        config, env={"SHOP_WEBHOOK_SECRET": secret, "CRM_TOKEN": CRM_TOKEN},
        files=others, tmp_prefix="concord-quickstart-",
    )
    parts.append(concord)
    say()
    say("2. Starting concord on %s with a copy of concord.yaml in %s" % (concord.url, concord.dir))
    start_concord(concord)
    say("concord is up: GET /healthz answers 200.", 3)

    say()
    say("3. In the shop, a person creates two customers. The shop tells concord by webhook:")
    for sid, rec in (("1001", ADA), ("1002", GRACE)):
        out = shop.change(sid, rec, event="customer.created")
        name = rec["first_name"] + " " + rec["last_name"]
        if out.get("status") is None:
            raise DemoFailed("the shop could not reach concord: %s" % out.get("error"))
        say("%s (shop id %s): concord answered %s %s"
            % (name, sid, out["status"], show(out["body"])), 3)
        if out["status"] != 202:
            raise DemoFailed("concord refused the shop's webhook for %s" % name)

    say()
    say("4. Waiting for both customers to reach the CRM...")
    wait_for(lambda: crm_record_of(crm, "Ada Lovelace") and crm_record_of(crm, "Grace Hopper"),
             "Ada Lovelace and Grace Hopper arriving in the CRM", concord)
    say("The CRM now holds these contacts (the CRM's own field names, from map_out):", 3)
    for rid, rec in crm.records().items():
        say("%s: %s" % (rid, show(without_stamp(rec))), 5)
    for r in crm.requests(method="POST"):
        if r["applied"] and harness.header(r, "Authorization") != CRM_TOKEN:
            raise DemoFailed("concord wrote to the CRM without its token")
    say("Each create was a POST /contacts carrying the CRM's token.", 3)

    say()
    ada = crm_record_of(crm, "Ada Lovelace")
    say("5. In the shop, Ada's phone number changes to %s." % NEW_PHONE)
    out = shop.change("1001", {"phone": NEW_PHONE}, event="customer.updated")
    say("concord answered %s %s to the shop's webhook (delivery %s)"
        % (out["status"], show(out["body"]), out["delivery_id"]), 3)
    path = "/contacts/%s" % ada["id"]

    def the_put():
        for r in crm.requests(method="PUT", path_prefix=path):
            if r["applied"] and isinstance(r["body"], dict) \
                    and r["body"].get("phone_number") == NEW_PHONE:
                return r
        return None

    put = wait_for(the_put, "the CRM receiving Ada's new phone (PUT %s)" % path, concord)
    say("concord updated the CRM: PUT %s %s" % (put["path"], show(put["body"])), 3)

    say()
    say("6. The shop sends the same delivery again, as a webhook sender that retries would.")
    # Let the echo of step 5 (the CRM's webhook about concord's PUT) settle
    # first, so that the count below only measures the duplicate.
    settle(concord, crm)
    before = len(crm.writes())
    again = shop.resend(out["delivery_id"])
    say("concord answered %s %s" % (again.get("status"), show(again.get("body"))), 3)
    if again.get("status") != 200:
        raise DemoFailed("concord did not recognise delivery %s as a duplicate"
                         % out["delivery_id"])
    settle(concord, crm)
    after = len(crm.writes())
    say("The CRM received %d writes before it and %d after: the change was applied once."
        % (before, after), 3)
    if after != before:
        raise DemoFailed("the repeated delivery reached the CRM again")
    shop_writes = shop.writes()
    if shop_writes:
        say("Note: concord also wrote to the shop: %s" % show(
            [(r["method"], r["path"]) for r in shop_writes]), 3)
    else:
        say("The CRM's own webhooks about concord's writes came back to concord as "
            "echoes; nothing bounced back to the shop.", 3)

    ok = True
    for n, cmd in ((7, ("status",)), (8, ("history", "1"))):
        say()
        say("%d. concord %s" % (n, " ".join(cmd)))
        rc, stdout, stderr = concord.cli(*cmd, check=False)
        say((stdout + stderr).rstrip() or "(no output)", 3)
        if rc != 0:
            say("(exit code %d)" % rc, 3)
            ok = False
    if not ok:
        raise DemoFailed("a concord command above failed")

    if args.keep_running:
        say()
        say("Everything keeps running. Try, in another terminal:")
        say("curl -s %s/_sim/records        # the CRM's contacts" % crm.url, 3)
        say("curl -s -X POST %s/_sim/change -d '{\"id\": \"1002\", \"record\": "
            "{\"state\": \"open\"}}'   # edit Grace in the shop" % shop.url, 3)
        say("%s status -c %s" % (binary, concord.path), 3)
        say("Press Ctrl-C to stop.")
        try:
            while concord.running():
                time.sleep(0.5)
            say("concord exited with code %s" % concord.stop())
        except KeyboardInterrupt:
            say()


def settle(concord, crm):
    """Waits until the CRM has sent concord the echo of every write it
    applied, then until concord reports no backlog and nothing in flight."""
    def echoed():
        s = crm.stats()
        return s["echo_sent"] + s["echo_failed"] >= s["creates"] + s["updates"] + s["deletes"]

    wait_for(echoed, "the CRM sending its echo webhooks", concord)
    try:
        concord.wait_settled(WAIT_S)
    except AssertionError as e:
        raise DemoFailed("concord did not settle: %s" % e)


if __name__ == "__main__":
    sys.exit(main(__doc__, "concord quickstart: a shop and a CRM kept in sync", run))
