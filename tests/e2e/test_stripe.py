#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Stripe customers kept in agreement with a shop (the Connectors issue,
first step): concord talks to the Stripe simulator (tests/sims/stripe.py)
the way Stripe wants it, described in plain config: form-encoded bodies
with brackets, Idempotency-Key on writes, Stripe-Signature on webhooks,
Stripe-Should-Retry honoured, the event feed polled after the last event
(ending_before), the list paged with starting_after."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Concord, Sim, wait_until  # noqa: E402
from stripe_harness import StripeSim  # noqa: E402

WHSEC = "whsec_concord_test_secret"
SHOP_SECRET = "shop-secret"

CONFIG = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=2000
log: {level: debug, format: json}
systems:
  stripe:
    kind: http
    base_url: http://127.0.0.1:{stripe_port}
    timeout_ms: 1000
    auth: {bearer: env:STRIPE_KEY}
    retry: {max_attempts: 8, base_ms: 50, cap_ms: 300, jitter: 0.1,
            stop_header: "Stripe-Should-Retry: false"}
    delete_guard: off
    webhook:
      path: /webhooks/stripe
      signature: {scheme: stripe, secret: env:STRIPE_WHSEC}
    collections:
      customers:
        model: customer
        record: data.object
        event_time: created                         # webhooks come in any order
        match: '.type | startswith("customer.")'
        deleted_when: '.type == "customer.deleted"'
        map_in: {email: email, name: name, phone: phone}
        map_out: {email: email, name: name, phone: phone}
        body: form
        create: POST /v1/customers
        update: POST /v1/customers/{id}
        delete: DELETE /v1/customers/{id}
        idempotency_header: Idempotency-Key
        poll:
          every: 1h
          list: GET /v1/customers?limit=100
          items: data
          page: {kind: cursor, param: starting_after, next: data.-1.id, has_more: has_more}
          cursor: {kind: events, list: "GET /v1/events?type=customer.*"}
  shop:
    kind: http
    base_url: http://127.0.0.1:{shop_port}
    timeout_ms: 1000
    retry: {max_attempts: 8, base_ms: 50, cap_ms: 300, jitter: 0.1}
    delete_guard: off
    webhook:
      path: /webhooks/shop
      signature: {secret: env:SHOP_SECRET, header: X-Shop-Signature}
    collections:
      customers:
        model: customer
        deleted_when: '.deleted == true'
        map_in: {email: email, name: name, phone: phone}
        map_out: {email: email, name: name, phone: phone}
        create: POST /customers
        update: PUT /customers/{id}
        delete: DELETE /customers/{id}
        idempotency_header: Idempotency-Key
models:
  customer:
    fields: {email: string, name: string, phone: string}
syncs:
  customers:
    model: customer
    origin: [shop, stripe]
    collections: [shop.customers, stripe.customers]
    match: [email]
"""


# The same, with the stripe kind: only credentials and field maps.
PROFILE = """
  stripe:
    kind: stripe
    base_url: http://127.0.0.1:{stripe_port}
    api_key: env:STRIPE_KEY
    webhook_secret: env:STRIPE_WHSEC
    timeout_ms: 1000
    rate_limit: {rate: 1000, per: 1s}
    retry: {max_attempts: 8, base_ms: 50, cap_ms: 300, jitter: 0.1}
    delete_guard: off
    collections:
      customers:
        model: customer
        map_in: {email: email, name: name, phone: phone}
        map_out: {email: email, name: name, phone: phone}
        poll: {every: 1h}
"""


def profile_config():
    start = CONFIG.index("  stripe:\n")
    end = CONFIG.index("  shop:\n")
    return CONFIG[:start] + PROFILE.lstrip("\n") + CONFIG[end:]


def setup(stripe_flags=None, config=CONFIG):
    port = harness.free_port()
    stripe = StripeSim(seed=7, rate=0, webhook_url="http://127.0.0.1:%d/webhooks/stripe" % port,
                       webhook_secret=WHSEC, webhook_backoff_ms=100, **(stripe_flags or {}))
    shop = Sim(resource="customers", id_prefix="S", idempotency_header="Idempotency-Key",
               webhook_url="http://127.0.0.1:%d/webhooks/shop" % port,
               webhook_secret=SHOP_SECRET, signature_header="X-Shop-Signature")
    c = Concord(config, values={"port": port, "stripe_port": stripe.port, "shop_port": shop.port},
                env={"STRIPE_KEY": stripe.api_key, "STRIPE_WHSEC": WHSEC,
                     "SHOP_SECRET": SHOP_SECRET})
    c.start()
    # Before any change: a list read of the start-up poll after a lost
    # create was applied would link the copy it finds, and never resend.
    c.wait_first_poll("stripe.customers")
    return stripe, shop, c


def customers(stripe):
    return {x["email"]: x for x in stripe.list_all("/v1/customers")}


def posts(stripe, path="/v1/customers"):
    return [r for r in stripe.requests("POST") if r["path"].split("?")[0] == path]


def test_a_shop_customer_reaches_stripe_as_a_form_with_a_key():
    stripe, shop, c = setup()
    shop.change("s1", {"email": "ada@example.com", "name": "Ada", "phone": "+44 1"})
    got = wait_until(lambda: customers(stripe).get("ada@example.com"), 10, "the Stripe customer")
    assert (got["name"], got["phone"]) == ("Ada", "+44 1"), got
    req = posts(stripe)[0]
    assert harness.header(req, "Content-Type") == "application/x-www-form-urlencoded", req
    assert harness.header(req, "Idempotency-Key"), req
    assert harness.header(req, "Authorization") == "Bearer " + stripe.api_key
    # Stripe's customer.created webhook (signed) is the echo of concord's own
    # write: nothing goes back to the shop, nothing more to Stripe.
    stripe.wait_delivered()
    c.wait_settled()
    assert len(posts(stripe)) == 1
    assert shop.requests("PUT") == [] and c.cli_json("failed") == []
    # A person edits the customer in Stripe's dashboard: the signed webhook
    # brings the change to the shop.
    stripe.person_update(got["id"], {"name": "Ada Lovelace"})
    wait_until(lambda: [r for r in shop.records().values() if r.get("name") == "Ada Lovelace"],
               10, "the dashboard edit in the shop")


def test_a_lost_answer_is_settled_by_the_key_not_by_a_second_customer():
    stripe, shop, c = setup()
    stripe.faults([{"reset": "after", "match": {"method": "POST", "path": "/v1/customers"}}])
    shop.change("s1", {"email": "bob@example.com", "name": "Bob", "phone": "+44 2"})
    wait_until(lambda: customers(stripe).get("bob@example.com"), 10, "the customer")
    stripe.wait_delivered()
    c.wait_settled()
    # Settled by Stripe's customer.created webhook (the copy equals what the
    # lost create carried), or else by the resend under the same key:
    # either way one customer, and never a second key.
    sent = posts(stripe)
    keys = {harness.header(r, "Idempotency-Key") for r in sent}
    assert len(keys) == 1, sent
    assert len(stripe.list_all("/v1/customers")) == 1
    assert c.cli_json("failed") == []
    # The copy is linked: the next change is an update of it.
    shop.change("s1", {"name": "Bobby"})
    wait_until(lambda: customers(stripe)["bob@example.com"]["name"] == "Bobby", 10, "the update")
    assert len(stripe.list_all("/v1/customers")) == 1


def test_a_resend_under_the_same_key_gets_stripes_first_answer():
    # No webhook to settle it: the create is sent again, with its key.
    stripe, shop, c = setup({"webhook_events": "invoice.paid"})
    stripe.faults([{"reset": "after", "match": {"method": "POST", "path": "/v1/customers"}}])
    shop.change("s1", {"email": "eve@example.com", "name": "Eve", "phone": "+44 5"})
    wait_until(lambda: len(posts(stripe)) >= 2, 15, "the resend")
    c.wait_settled()
    sent = posts(stripe)
    assert len({harness.header(r, "Idempotency-Key") for r in sent}) == 1, sent
    assert sent[1]["idempotency"] == "replayed", sent  # Stripe's first answer, again
    assert len(stripe.list_all("/v1/customers")) == 1
    assert c.cli_json("failed") == []


def test_a_refusal_stripe_says_not_to_retry_goes_to_the_inbox():
    stripe, shop, c = setup()
    # Stripe refuses an email it cannot take: 400 email_invalid.
    shop.change("s1", {"email": "not an email", "name": "Zed", "phone": "+44 9"})
    failed = wait_until(lambda: c.cli_json("failed"), 10, "the refusal in the inbox")
    assert failed[0]["http_status"] == 400 and "email" in failed[0]["reason"], failed
    # The reason is Stripe's own message (error.message), not its JSON.
    assert "HTTP 400: Invalid email address: not an email" in failed[0]["reason"], failed
    assert len(posts(stripe)) == 1  # a 4xx is never sent again by itself


def test_the_event_feed_catches_what_a_lost_webhook_did_not_bring():
    stripe, shop, c = setup()
    shop.change("s1", {"email": "cyd@example.com", "name": "Cyd", "phone": "+44 3"})
    got = wait_until(lambda: customers(stripe).get("cyd@example.com"), 10, "the customer")
    stripe.wait_delivered()
    c.wait_settled()
    rc, out, err = c.cli("poll", "stripe.customers", "--json")  # the backfill: the list
    # Webhooks stop arriving; two dashboard edits and a delete happen.
    stripe.webhooks(drop=1.0)
    stripe.person_update(got["id"], {"phone": "+44 33"}, wait=True)
    stripe.person_create({"email": "dee@example.com", "name": "Dee"}, wait=True)
    rc, out, err = c.cli("poll", "stripe.customers", "--json")
    assert rc == 0, err
    gets = [r["path"] for r in stripe.requests("GET") if r["path"].startswith("/v1/events")]
    assert any("ending_before=evt_" in p for p in gets), gets
    wait_until(lambda: {r.get("phone") for r in shop.records().values()} >= {"+44 33"}
               and "dee@example.com" in {r.get("email") for r in shop.records().values()},
               10, "the feed's changes in the shop")
    stripe.person_delete(got["id"], wait=True)
    c.cli("poll", "stripe.customers", "--json")
    wait_until(lambda: "cyd@example.com" not in {r.get("email") for r in shop.records().values()},
               10, "the deletion from the feed in the shop")


def test_the_stripe_kind_needs_only_credentials_and_maps():
    stripe, shop, c = setup(config=profile_config())
    shop.change("s1", {"email": "fay@example.com", "name": "Fay", "phone": "+44 6"})
    got = wait_until(lambda: customers(stripe).get("fay@example.com"), 10, "the Stripe customer")
    req = posts(stripe)[0]
    assert harness.header(req, "Content-Type") == "application/x-www-form-urlencoded", req
    assert harness.header(req, "Idempotency-Key") and \
        harness.header(req, "Authorization") == "Bearer " + stripe.api_key, req
    stripe.wait_delivered()
    c.wait_settled()
    assert len(posts(stripe)) == 1 and shop.requests("PUT") == []
    stripe.person_update(got["id"], {"name": "Fay B"})
    wait_until(lambda: [r for r in shop.records().values() if r.get("name") == "Fay B"], 10,
               "the signed webhook's change in the shop")
    # The event feed, after lost webhooks.
    c.cli("poll", "stripe.customers", "--json")
    stripe.webhooks(drop=1.0)
    stripe.person_update(got["id"], {"phone": "+44 66"}, wait=True)
    rc, out, err = c.cli("poll", "stripe.customers", "--json")
    assert rc == 0, err
    wait_until(lambda: "+44 66" in {r.get("phone") for r in shop.records().values()}, 10,
               "the feed's change in the shop")
    # A delete in the shop deletes the Stripe customer.
    shop.delete("s1")
    wait_until(lambda: "fay@example.com" not in customers(stripe), 10, "the Stripe delete")
    assert c.cli_json("failed") == []


# Payments: read-only Stripe collections of the kind, into the shop.
PAYMENTS = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=2000
log: {level: debug, format: json}
systems:
  stripe:
    kind: stripe
    base_url: http://127.0.0.1:{stripe_port}
    api_key: env:STRIPE_KEY
    webhook_secret: env:STRIPE_WHSEC
    timeout_ms: 1000
    rate_limit: {rate: 1000, per: 1s}
    retry: {max_attempts: 8, base_ms: 50, cap_ms: 300, jitter: 0.1}
    collections:
      payment_intents:
        model: payment
        map_in: {status: status, amount: amount, order: metadata.order}
        poll: {every: 1h}
      invoices:
        model: payment
        map_in: {status: status, amount: amount_paid, order: metadata.order}
        poll: {every: 1h}
  shop:
    kind: http
    base_url: http://127.0.0.1:{shop_port}
    timeout_ms: 1000
    retry: {max_attempts: 8, base_ms: 50, cap_ms: 300, jitter: 0.1}
    collections:
      payments:
        model: payment
        map_out: {status: status, amount: amount, order: order}
        create: POST /payments
        update: PUT /payments/{id}
models:
  payment:
    fields: {status: string, amount: integer, order: string}
syncs:
  payments:
    model: payment
    origin: [stripe]
    collections: [stripe.payment_intents, stripe.invoices, shop.payments]
"""


def test_payment_intents_and_invoices_reach_the_shop_by_webhook_and_by_the_feed():
    port = harness.free_port()
    stripe = StripeSim(seed=7, rate=0, webhook_url="http://127.0.0.1:%d/webhooks/stripe" % port,
                       webhook_secret=WHSEC, webhook_backoff_ms=100)
    shop = Sim(resource="payments", id_prefix="P")
    c = Concord(PAYMENTS, values={"port": port, "stripe_port": stripe.port,
                                  "shop_port": shop.port},
                env={"STRIPE_KEY": stripe.api_key, "STRIPE_WHSEC": WHSEC})
    c.start()
    cus = stripe.create_customer(email="pay@example.com")
    # payment_intent.created, then .succeeded: signed webhooks.
    stripe.payment_intent(customer=cus["id"], amount=4200, currency="ron",
                          metadata={"order": "o-1"}, status="succeeded")
    wait_until(lambda: [r for r in shop.records().values()
                        if r.get("order") == "o-1" and r.get("status") == "succeeded"],
               10, "the succeeded payment in the shop")
    # Webhooks stop; an invoice is paid; the event feed brings it.
    c.cli("poll", "stripe.invoices", "--json")
    stripe.wait_delivered()
    stripe.webhooks(drop=1.0)
    stripe.invoice(customer=cus["id"], amount=1500, currency="ron", metadata={"order": "o-2"},
                   with_payment=False)
    rc, out, err = c.cli("poll", "stripe.invoices", "--json")
    assert rc == 0, err
    gets = [r["path"] for r in stripe.requests("GET") if r["path"].startswith("/v1/events")]
    assert any("type=invoice." in p for p in gets), gets
    wait_until(lambda: [r for r in shop.records().values()
                        if r.get("order") == "o-2" and r.get("status") == "paid"
                        and r.get("amount") == 1500],
               10, "the paid invoice in the shop")
    # Nothing was ever written to Stripe: those collections are read-only.
    assert [r for r in stripe.requests("POST") if r["path"].startswith("/v1/payment_intents")
            or r["path"].startswith("/v1/invoices")] == []
    assert c.cli_json("failed") == []


def test_an_older_event_arriving_after_a_newer_one_does_not_revert_it():
    # Stripe keeps no order among webhooks: a dashboard edit's event may
    # come after the event of the edit that followed it. Each event's
    # object is the state at its "created"; the older one must not win.
    for config in (CONFIG, profile_config()):
        stripe, shop, c = setup(config=config)
        made = stripe.person_create({"email": "ola@example.com", "name": "Ola"}, wait=True)
        cid = made["object"]["id"]
        wait_until(lambda: "ola@example.com" in {r.get("email") for r in shop.records().values()},
                   10, "the customer in the shop")
        c.wait_settled()
        stripe.webhooks(drop=1.0)
        older = stripe.person_update(cid, {"name": "Ola A"}, wait=True)["events"][0]
        stripe.age_events(5, ids=[older])
        newer = stripe.person_update(cid, {"name": "Ola B"}, wait=True)["events"][0]
        stripe.webhooks()
        stripe.resend(newer)
        wait_until(lambda: {r.get("name") for r in shop.records().values()} == {"Ola B"},
                   10, "the newer name in the shop")
        c.wait_settled()
        stripe.resend(older)
        stripe.wait_delivered()
        c.wait_settled()
        assert {r.get("name") for r in shop.records().values()} == {"Ola B"}, shop.records()
        c.stop()
        stripe.stop()
        shop.stop()


if __name__ == "__main__":
    harness.run_tests(globals())
