#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Shop orders to SmartBill invoices, once Stripe says they are paid: narrated.

Starts three simulated systems on 127.0.0.1 — the shop (tests/sims/target.py),
which announces orders by signed webhook; Stripe (tests/sims/stripe.py), which
announces payment intents by signed webhook; SmartBill (tests/sims/smartbill.py),
which issues invoices — then concord with concord.yaml from this directory,
run from a temporary copy so that its SQLite file lands there. Then it places,
pays and cancels orders and shows what each system saw.

    /usr/bin/python3 examples/shop-to-invoices/demo.py [--keep-running] [--fixed-ports]

Ports are free ones unless --fixed-ports (those in concord.yaml: 8490-8493).
CONCORD_BIN names the binary (default build/dev/concord). Exits 0 when every
step was observed, 1 with a message saying what did not happen otherwise.
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# The plumbing every example's demo shares (narration, ports, starting and
# stopping): examples/demo_lib.py.
sys.path.insert(0, os.path.dirname(HERE))
from demo_lib import (WAIT_S, DemoFailed, check_binary, config_text,  # noqa: E402
                      harness, last_seq, main, pick_ports, say, show, start_concord,
                      wait_for)
from smartbill_harness import SmartBillSim  # noqa: E402
from stripe_harness import StripeSim  # noqa: E402

# The ports written in concord.yaml, which README.md's "by hand" section uses.
FIXED = {"concord": 8490, "shop": 8491, "stripe": 8492, "smartbill": 8493}

# As concord.yaml names them (the account's e-mail and the company's tax id).
SB_EMAIL = "billing@example.ro"
SB_CIF = "RO12345678"

ADA = {"number": "1001", "status": "placed", "client": "Ada Lovelace",
       "email": "ada@example.com", "total": "121.00"}
GRACE = {"number": "1002", "status": "placed", "client": "Grace Hopper",
         "email": "grace@example.com", "total": "60.50"}


def settle(concord, stripe):
    """Waits until Stripe has no webhook pending and concord has no backlog
    and nothing in flight."""
    try:
        stripe.wait_delivered(WAIT_S)
        concord.wait_settled(WAIT_S)
    except AssertionError as e:
        raise DemoFailed("the systems did not settle: %s" % e)


def shop_patches(shop, order):
    """The payment statuses concord wrote onto a shop order, in order."""
    return [r["body"].get("payment_status") for r in shop.requests("PATCH", "/orders/" + order)
            if r["applied"] and isinstance(r["body"], dict)]


def invoices_of(sb, order):
    return [i for i in sb.invoices() if i["source"] == "api"
            and any(p.get("code") == order for p in i["body"].get("products", []))]


def sb_calls(sb, since=0):
    return ["%s %s -> %s" % (r["method"], r["path"], r["status"])
            for r in sb.requests() if r["seq"] > since]


def run(args, parts):
    env = {
        "SHOP_WEBHOOK_SECRET": os.environ.get("SHOP_WEBHOOK_SECRET", "demo-shop-secret"),
        "STRIPE_KEY": os.environ.get("STRIPE_KEY", "sk_test_demo_concord"),
        "STRIPE_WHSEC": os.environ.get("STRIPE_WHSEC", "whsec_demo_concord"),
        "SMARTBILL_TOKEN": os.environ.get("SMARTBILL_TOKEN", "demo-smartbill-token"),
    }
    binary = check_binary()
    ports = pick_ports(args, FIXED)
    hook = "http://127.0.0.1:%d/webhooks/" % ports["concord"]

    say("1. Starting the three systems concord will keep in agreement:")
    try:
        shop = harness.Sim(
            port=ports["shop"], resource="orders", webhook_url=hook + "shop",
            webhook_secret=env["SHOP_WEBHOOK_SECRET"], signature_header="X-Shop-Signature",
            timestamp_header="X-Shop-Timestamp", delivery_header="X-Shop-Delivery",
            template="{timestamp}.{body}", prefix="sha256=", envelope="order", event_key="event",
        )
        parts.append(shop)
        stripe = StripeSim(port=ports["stripe"], api_key=env["STRIPE_KEY"],
                           webhook_url=hook + "stripe", webhook_secret=env["STRIPE_WHSEC"],
                           webhook_events="payment_intent.*")
        parts.append(stripe)
        sb = SmartBillSim(port=ports["smartbill"], email=SB_EMAIL,
                          token=env["SMARTBILL_TOKEN"], cif=SB_CIF)
        parts.append(sb)
    except AssertionError as e:
        raise DemoFailed("a simulator did not start (is a port taken? try without "
                         "--fixed-ports): %s" % e)
    ports.update(shop=shop.port, stripe=stripe.port, smartbill=sb.port)
    say("the shop on %s: a signed webhook whenever an order changes" % shop.url, 3)
    say("Stripe on %s: a signed webhook (Stripe-Signature) for each payment_intent event"
        % stripe.url, 3)
    say("SmartBill on %s: issues invoices for company %s (Basic auth %s:token)"
        % (sb.url, SB_CIF, SB_EMAIL), 3)

    concord = harness.Concord(config_text(HERE, FIXED, ports), env=env,
                              tmp_prefix="concord-shop-invoices-")
    parts.append(concord)
    say()
    say("2. Starting concord on %s with a copy of concord.yaml in %s" % (concord.url, concord.dir))
    start_concord(concord)
    say("concord is up: GET /healthz answers 200.", 3)

    say()
    say("3. Two customers place orders in the shop. The shop tells concord by webhook:")
    for rec in (ADA, GRACE):
        out = shop.change(rec["number"], rec, event="order.placed")
        if out.get("status") is None:
            raise DemoFailed("the shop could not reach concord: %s" % out.get("error"))
        say("order %s, %s, %s RON: concord answered %s %s"
            % (rec["number"], rec["client"], rec["total"], out["status"], show(out["body"])), 3)
        if out["status"] != 202:
            raise DemoFailed("concord refused the shop's webhook for order %s" % rec["number"])
    settle(concord, stripe)
    if sb.requests():
        raise DemoFailed("SmartBill was called before any order was paid: %s" % sb_calls(sb))
    say("Neither is paid yet, so neither passes the filter: SmartBill received no call.", 3)

    say()
    say("4. Ada pays order 1001. Stripe's payment intent names the order in metadata.order:")
    pi = stripe.payment_intent(amount=12100, currency="ron", metadata={"order": "1001"},
                               status="succeeded")
    say("%s: %.2f %s, status %s, metadata %s; Stripe signed and sent %s"
        % (pi["object"]["id"], pi["object"]["amount"] / 100.0, pi["object"]["currency"].upper(),
           pi["object"]["status"], show(pi["object"]["metadata"]),
           ", ".join(e["type"] for e in stripe.sim_events()
                     if e["data"]["object"]["id"] == pi["object"]["id"])), 3)
    wait_for(lambda: "succeeded" in shop_patches(shop, "1001"),
             "Stripe's status reaching the shop's order 1001 (PATCH /orders/1001)", concord)
    say("concord matched the payment intent to order 1001 by its number (sync match) and, as",
        3)
    say("Stripe owns the payment field (sync owners), carried its status to the shop:", 3)
    for status in shop_patches(shop, "1001"):
        say("PATCH /orders/1001 %s" % show({"payment_status": status}), 5)
    inv = wait_for(lambda: invoices_of(sb, "1001"), "the SmartBill invoice of order 1001",
                   concord)[0]
    say("Paid and placed: the order passes the filter, and SmartBill issued invoice %s %s:"
        % (inv["series"], inv["number"]), 3)
    say("client %s <%s>, total %.2f %s, issued %s"
        % (inv["body"]["client"]["name"], inv["body"]["client"]["email"], inv["total"],
           inv["currency"], inv["issueDate"]), 5)
    say("SmartBill's log: %s" % "; ".join(sb_calls(sb)), 3)
    say("(concord read the series' next number just before the create: a lost answer can",
        3)
    say("never make a second invoice.)", 3)

    say()
    say("5. Grace cancels order 1002 in the shop; her payment, already under way, then succeeds:")
    out = shop.change("1002", {"status": "cancelled"}, event="order.cancelled")
    say("the shop's webhook: concord answered %s" % out["status"], 3)
    seq = last_seq(sb)
    stripe.payment_intent(amount=6050, currency="ron", metadata={"order": "1002"},
                          status="succeeded")
    wait_for(lambda: "succeeded" in shop_patches(shop, "1002"),
             "Stripe's status reaching the shop's order 1002", concord)
    say("Stripe's status reached the order (PATCH /orders/1002 %s), so the shop can refund it."
        % show({"payment_status": "succeeded"}), 3)
    settle(concord, stripe)
    if invoices_of(sb, "1002") or sb_calls(sb, seq):
        raise DemoFailed("order 1002 was cancelled before it was invoiced, yet SmartBill saw: %s"
                         % sb_calls(sb, seq))
    say("Cancelled before it was invoiced: it never passes the filter, and SmartBill received",
        3)
    say("no call for it.", 3)

    say()
    say("6. Ada cancels order 1001, which was invoiced:")
    seq = last_seq(sb)
    out = shop.change("1001", {"status": "cancelled"}, event="order.cancelled")
    say("the shop's webhook: concord answered %s" % out["status"], 3)
    wait_for(lambda: invoices_of(sb, "1001")[0]["canceled"],
             "the cancel of invoice %s %s" % (inv["series"], inv["number"]), concord)
    say("The order stopped passing the filter, so concord cancelled its invoice (SmartBill's",
        3)
    say("cancel; the invoice keeps its number): %s" % "; ".join(sb_calls(sb, seq)), 3)

    say()
    say("7. What each system saw:")
    settle(concord, stripe)
    say("the shop: concord's writes, only the payment status of its orders:", 3)
    for r in shop.writes():
        say("%s %s %s" % (r["method"], r["path"], show(r["body"])), 5)
    if any(r["method"] != "PATCH" or set(r["body"]) != {"payment_status"}
           for r in shop.writes()):
        raise DemoFailed("concord wrote more than the payment status to the shop")
    bad = [d for d in stripe.deliveries() if not d["ok"]]
    if bad:
        raise DemoFailed("concord did not accept Stripe's webhooks: %s" % show(bad))
    stripe_writes = [r for r in stripe.requests() if r["method"] != "GET"]
    if stripe_writes:
        raise DemoFailed("concord wrote to Stripe: %s" % show(
            [(r["method"], r["path"]) for r in stripe_writes]))
    say("Stripe: %d webhooks delivered, each answered 2xx; %d reads of its event feed and list "
        "(the poll), no write" % (len(stripe.deliveries()), len(stripe.requests())), 3)
    invs = [i for i in sb.invoices() if i["source"] == "api"]
    say("SmartBill: %s" % "; ".join(
        "invoice %s %s (order %s)%s" % (i["series"], i["number"], i["body"]["products"][0]["code"],
                                        ", cancelled" if i["canceled"] else "") for i in invs), 3)
    if len(invs) != 1:
        raise DemoFailed("SmartBill holds %d invoices, not 1" % len(invs))
    if sb.invalid_requests():
        raise DemoFailed("concord sent SmartBill malformed requests: %s"
                         % show([r["invalid"] for r in sb.invalid_requests()]))
    if sb.stats()["rate_limit"]["blocked_ever"]:
        raise DemoFailed("SmartBill's rate limit blocked the account")
    failed = concord.cli_json("failed")
    if failed:
        raise DemoFailed("concord's inbox is not empty: %s" % show(failed))
    say("No request was malformed, SmartBill's limit never blocked, and concord's inbox is empty.",
        3)

    ok = True
    for n, cmd in ((8, ("status",)), (9, ("history", "1"))):
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
        say("curl -s %s/_sim/invoices        # SmartBill's invoices" % sb.url, 3)
        say("curl -s -X POST %s/_sim/change -d '{\"id\": \"1003\", \"record\": {\"number\": "
            "\"1003\", \"status\": \"placed\", \"client\": \"Alan Turing\", \"email\": "
            "\"alan@example.com\", \"total\": \"30.00\"}}'" % shop.url, 3)
        say("curl -s -X POST %s/_sim/payment_intent -d '{\"amount\": 3000, \"currency\": "
            "\"ron\", \"metadata\": {\"order\": \"1003\"}}'" % stripe.url, 3)
        say("%s status -c %s" % (binary, concord.path), 3)
        say("Press Ctrl-C to stop.")
        try:
            while concord.running():
                time.sleep(0.5)
            say("concord exited with code %s" % concord.stop())
        except KeyboardInterrupt:
            say()


if __name__ == "__main__":
    sys.exit(main(__doc__, "concord example: shop orders become SmartBill invoices once Stripe "
                  "says they are paid", run, FIXED))
