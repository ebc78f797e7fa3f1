#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Shop orders to Oblio invoices, once Stripe says they are paid: narrated.

Starts three simulated systems on 127.0.0.1 — the shop (tests/sims/target.py),
which announces orders by signed webhook; Stripe (tests/sims/stripe.py), which
announces payment intents by signed webhook; Oblio (tests/sims/oblio.py), which
issues invoices to a holder of an OAuth2 token — then concord with concord.yaml
from this directory, run from a temporary copy so that its SQLite file lands
there. Then it places, pays and cancels orders and shows what each system saw,
and that concord fetched one Oblio token for all its calls.

    /usr/bin/python3 examples/oblio-invoices/demo.py [--keep-running] [--fixed-ports]

Ports are free ones unless --fixed-ports (those in concord.yaml: 8500-8503).
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
from oblio_harness import OblioSim  # noqa: E402
from stripe_harness import StripeSim  # noqa: E402

# The ports written in concord.yaml, which README.md's "by hand" section uses.
FIXED = {"concord": 8500, "shop": 8501, "stripe": 8502, "oblio": 8503}

# As concord.yaml names them (the login e-mail and the company's tax id).
OB_EMAIL = "billing@example.ro"
OB_CIF = "RO37311090"
TOKEN_PATH = "/api/authorize/token"

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


def invoices_of(ob, order):
    return [d for d in ob.documents("invoice") if d["source"] == "api"
            and any(p.get("code") == order for p in d["body"].get("products", []))]


def ob_calls(ob, since=0):
    return ["%s %s -> %s" % (r["method"], r["path"], r["status"])
            for r in ob.requests() if r["seq"] > since]


def run(args, parts):
    env = {
        "SHOP_WEBHOOK_SECRET": os.environ.get("SHOP_WEBHOOK_SECRET", "demo-shop-secret"),
        "STRIPE_KEY": os.environ.get("STRIPE_KEY", "sk_test_demo_concord"),
        "STRIPE_WHSEC": os.environ.get("STRIPE_WHSEC", "whsec_demo_concord"),
        "OBLIO_SECRET": os.environ.get("OBLIO_SECRET", "demo-oblio-secret"),
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
        ob = OblioSim(port=ports["oblio"], email=OB_EMAIL, secret=env["OBLIO_SECRET"],
                      cif=OB_CIF)
        parts.append(ob)
    except AssertionError as e:
        raise DemoFailed("a simulator did not start (is a port taken? try without "
                         "--fixed-ports): %s" % e)
    ports.update(shop=shop.port, stripe=stripe.port, oblio=ob.port)
    say("the shop on %s: a signed webhook whenever an order changes" % shop.url, 3)
    say("Stripe on %s: a signed webhook (Stripe-Signature) for each payment_intent event"
        % stripe.url, 3)
    say("Oblio on %s: issues invoices for company %s to a holder of a token from %s"
        % (ob.url, OB_CIF, TOKEN_PATH), 3)

    concord = harness.Concord(config_text(HERE, FIXED, ports), env=env,
                              tmp_prefix="concord-oblio-invoices-")
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
    if ob.requests():
        raise DemoFailed("Oblio was called before any order was paid: %s" % ob_calls(ob))
    say("Neither is paid yet, so neither passes the filter: Oblio received no call, not even",
        3)
    say("for a token.", 3)

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
    inv = wait_for(lambda: invoices_of(ob, "1001"), "the Oblio invoice of order 1001",
                   concord)[0]
    say("Paid and placed: the order passes the filter, and Oblio issued invoice %s %s:"
        % (inv["seriesName"], inv["number"]), 3)
    say("client %s <%s>, total %.2f %s, issued %s"
        % (inv["body"]["client"]["name"], inv["body"]["client"]["email"], float(inv["total"]),
           inv["currency"], inv["issueDate"]), 5)
    say("Oblio's log: %s" % "; ".join(ob_calls(ob)), 3)
    say("concord first fetched an access token (client credentials: the login e-mail and", 3)
    say("the API secret), then created the invoice with it, carrying idempotencyKey %s"
        % inv["idempotencyKey"], 3)
    say("(a create whose answer is lost is sent again under the same key: one invoice).", 3)

    say()
    say("5. Grace cancels order 1002 in the shop; her payment, already under way, then succeeds:")
    out = shop.change("1002", {"status": "cancelled"}, event="order.cancelled")
    say("the shop's webhook: concord answered %s" % out["status"], 3)
    seq = last_seq(ob)
    stripe.payment_intent(amount=6050, currency="ron", metadata={"order": "1002"},
                          status="succeeded")
    wait_for(lambda: "succeeded" in shop_patches(shop, "1002"),
             "Stripe's status reaching the shop's order 1002", concord)
    say("Stripe's status reached the order (PATCH /orders/1002 %s), so the shop can refund it."
        % show({"payment_status": "succeeded"}), 3)
    settle(concord, stripe)
    if invoices_of(ob, "1002") or ob_calls(ob, seq):
        raise DemoFailed("order 1002 was cancelled before it was invoiced, yet Oblio saw: %s"
                         % ob_calls(ob, seq))
    say("Cancelled before it was invoiced: it never passes the filter, and Oblio received",
        3)
    say("no call for it.", 3)

    say()
    say("6. Ada cancels order 1001, which was invoiced:")
    seq = last_seq(ob)
    out = shop.change("1001", {"status": "cancelled"}, event="order.cancelled")
    say("the shop's webhook: concord answered %s" % out["status"], 3)
    wait_for(lambda: invoices_of(ob, "1001")[0]["canceled"],
             "the cancel of invoice %s %s" % (inv["seriesName"], inv["number"]), concord)
    say("The order stopped passing the filter, so concord cancelled its invoice (Oblio's",
        3)
    say("cancel; the invoice keeps its number):", 3)
    for r in ob.requests(since=seq):
        say("%s %s %s -> %s" % (r["method"], r["path"], show(r["body"]), r["status"]), 5)

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
    invs = [d for d in ob.documents("invoice") if d["source"] == "api"]
    say("Oblio: %s" % "; ".join(
        "invoice %s %s (order %s)%s" % (d["seriesName"], d["number"],
                                        d["body"]["products"][0]["code"],
                                        ", cancelled" if d["canceled"] else "") for d in invs), 3)
    if len(invs) != 1:
        raise DemoFailed("Oblio holds %d invoices, not 1" % len(invs))
    if ob.invalid_requests():
        raise DemoFailed("concord sent Oblio malformed requests: %s"
                         % show([r["invalid"] for r in ob.invalid_requests()]))
    failed = concord.cli_json("failed")
    if failed:
        raise DemoFailed("concord's inbox is not empty: %s" % show(failed))
    say("No request was malformed, and concord's inbox is empty.", 3)

    say()
    say("8. Oblio's token, fetched once:")
    tokens = ob.tokens()
    calls = [r for r in ob.requests() if r["path"].split("?")[0] != TOKEN_PATH]
    fetched = [r for r in ob.requests() if r["path"].split("?")[0] == TOKEN_PATH]
    if len(tokens) != 1 or len(fetched) != 1 or ob.stats()["token_requests"] != 1:
        raise DemoFailed("concord fetched %d Oblio tokens, not 1: %s"
                         % (len(fetched), show(tokens)))
    bearer = "Bearer " + tokens[0]["token"]
    if any(harness.header(r, "Authorization") != bearer for r in calls):
        raise DemoFailed("an Oblio call did not carry the token concord fetched")
    say("POST %s answered %s: one token, valid %d s" % (
        TOKEN_PATH, fetched[0]["status"], int(tokens[0]["expires_at"] - tokens[0]["issued_at"])),
        3)
    say("the %d other calls (%s) each carried it: Authorization: Bearer %s..."
        % (len(calls), ", ".join(r["method"] + " " + r["path"].split("?")[0] for r in calls),
           tokens[0]["token"][:8]), 3)
    say("concord keeps it in its store (table oauth_tokens) and fetches the next one only",
        3)
    say("shortly before it expires, or after Oblio refuses it.", 3)

    ok = True
    for n, cmd in ((9, ("status",)), (10, ("history", "1"))):
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
        say("curl -s %s/_sim/documents       # Oblio's documents" % ob.url, 3)
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
    sys.exit(main(__doc__, "concord example: shop orders become Oblio invoices once Stripe says "
                  "they are paid", run, FIXED))
