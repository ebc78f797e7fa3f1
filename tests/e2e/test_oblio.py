#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Shop orders and Oblio invoices (the Connectors issue), through the oblio
kind against the Oblio simulator (tests/sims/oblio.py): OAuth2 client
credentials with tokens refreshed one at a time, even when they expire in
the middle of a run; creates with idempotencyKey, so a lost answer makes
one invoice; Oblio's unsigned webhooks answered with its handshake and
turned into polls of the document list; and a refused secret shown with
Oblio's own words."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Concord, Sim, wait_until  # noqa: E402
from oblio_harness import OblioSim  # noqa: E402

SHOP_SECRET = "shop-secret"

ORDERS = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=2000
log: {level: debug, format: json}
systems:
  shop:
    kind: http
    base_url: http://127.0.0.1:{shop_port}
    timeout_ms: 1000
    webhook:
      path: /webhooks/shop
      signature: {secret: env:SHOP_SECRET, header: X-Shop-Signature}
    collections:
      orders:
        model: order
        map_in: {number: number, status: status, client: client, total: total}
  oblio:
    kind: oblio
    base_url: http://127.0.0.1:{oblio_port}
    email: {email}
    api_secret: env:OBLIO_SECRET
    cif: {cif}
    timeout_ms: 1000
    retry: {max_attempts: {attempts}, base_ms: 50, cap_ms: 300, jitter: 0.1}
    collections:
      invoices:
        model: order
        map_out:
          seriesName: {const: FCT}
          issueDate: {const: "2026-01-24"}
          currency: {const: RON}
          client: {jq: '{name: .client, address: "Str. Lunga 1", state: "Cluj",
                         city: "Cluj-Napoca", country: "Romania", vatPayer: 0}'}
          products: {jq: '[{name: ("Order " + .number), price: .total, measuringUnit: "buc",
                            currency: "RON", vatName: "Normala", vatPercentage: 21,
                            vatIncluded: 1, quantity: 1, productType: "Serviciu"}]'}
      proformas:                      # read often, so the poll thread needs tokens too
        model: proforma
        map_in: {series: seriesName, number: number}
        poll: {every: 100ms}
models:
  order:
    fields: {number: string, status: string, client: string, total: decimal}
  proforma:
    fields: {series: string, number: string}
syncs:
  orders:
    model: order
    origin: [shop]
    collections: [shop.orders, oblio.invoices]
    filters:
      oblio.invoices: '.status == "paid"'
"""

# Oblio's invoices, read into the shop's books: the list, on webhooks.
BOOKS = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=2000
log: {level: debug, format: json}
systems:
  oblio:
    kind: oblio
    base_url: http://127.0.0.1:{oblio_port}
    email: {email}
    api_secret: env:OBLIO_SECRET
    cif: {cif}
    timeout_ms: 1000
    retry: {max_attempts: 8, base_ms: 50, cap_ms: 300, jitter: 0.1}
    collections:
      invoices:
        model: invoice
        map_in: {series: seriesName, number: number, total: total, canceled: canceled}
        poll: {every: 1h}
  shop:
    kind: http
    base_url: http://127.0.0.1:{shop_port}
    timeout_ms: 1000
    collections:
      invoices:
        model: invoice
        map_out: {series: series, number: number, total: total, canceled: canceled}
        create: POST /invoices
        update: PUT /invoices/{id}
models:
  invoice:
    fields: {series: string, number: string, total: decimal, canceled: string}
syncs:
  books:
    model: invoice
    origin: [oblio]
    collections: [oblio.invoices, shop.invoices]
"""


def setup(config=ORDERS, secret=None, attempts=8, sim=None, **oblio_flags):
    port = harness.free_port()
    ob = sim or OblioSim(**oblio_flags)
    shop = Sim(resource="orders" if config is ORDERS else "invoices", id_prefix="S",
               webhook_url="http://127.0.0.1:%d/webhooks/shop" % port,
               webhook_secret=SHOP_SECRET, signature_header="X-Shop-Signature")
    c = Concord(config, values={"port": port, "shop_port": shop.port, "oblio_port": ob.port,
                                "email": ob.email, "cif": ob.cif, "attempts": attempts},
                env={"OBLIO_SECRET": secret or ob.secret, "SHOP_SECRET": SHOP_SECRET})
    c.start()
    return ob, shop, c, port


def order(n, total="121.00"):
    return {"number": "N%d" % n, "status": "paid", "client": "Client %d" % n, "total": total}


def posts(ob):
    return [r for r in ob.requests("POST") if r["path"].split("?")[0] == "/api/docs/invoice"]


def test_a_paid_order_becomes_one_invoice_with_a_key_and_one_token():
    ob, shop, c, _ = setup()
    shop.change("o1", order(1))
    doc = wait_until(lambda: ob.documents("invoice"), 10, "the invoice")
    assert len(doc) == 1 and doc[0]["seriesName"] == "FCT", doc
    req = posts(ob)[0]
    assert req["body"]["cif"] == ob.cif and req["body"]["idempotencyKey"], req
    assert harness.header(req, "Authorization").startswith("Bearer "), req
    shop.change("o2", order(2))
    wait_until(lambda: len(ob.documents("invoice")) == 2, 10, "the second invoice")
    assert ob.stats()["token_requests"] == 1, ob.stats()  # the token is reused
    assert c.cli_json("failed") == []
    ob.assert_clean()


def test_an_issued_invoice_stays_as_issued_and_its_orders_cancel_cancels_it():
    ob, shop, c, _ = setup()
    shop.change("o30", order(30))
    doc = wait_until(lambda: ob.documents("invoice"), 10, "the invoice")[0]
    # A change to an issued invoice's order changes nothing in Oblio, and
    # leaves nothing in the inbox (Oblio has no update call).
    c.wait_settled()
    shop.change("o30", {"client": "Client Thirty"})
    wait_until(lambda: "Client Thirty" in c.cli("history", "1")[1], 10, "the change merged")
    c.wait_settled()
    assert len(posts(ob)) == 1 and c.cli_json("failed") == []
    # The order stops passing the filter: its invoice is cancelled (it
    # keeps its number), with the JSON body Oblio's cancel takes.
    shop.change("o30", {"status": "cancelled"})
    wait_until(lambda: ob.documents("invoice")[0]["canceled"] in (True, 1, "1"), 10,
               "the cancelled invoice")
    cancel = [r for r in ob.requests("PUT") if r["path"] == "/api/docs/invoice/cancel"]
    assert len(cancel) == 1 and cancel[0]["body"] == {
        "cif": ob.cif, "seriesName": doc["seriesName"], "number": doc["number"]}, cancel
    assert len(ob.documents("invoice")) == 1 and c.cli_json("failed") == []
    ob.assert_clean()


def test_an_order_paid_again_restores_its_cancelled_invoice_not_a_second_one():
    ob, shop, c, _ = setup()
    shop.change("o31", order(31))
    doc = wait_until(lambda: ob.documents("invoice"), 10, "the invoice")[0]
    shop.change("o31", {"status": "cancelled"})
    wait_until(lambda: ob.documents("invoice")[0]["canceled"] in (True, 1, "1"), 10,
               "the cancelled invoice")
    c.wait_settled()
    # Paid again after all: the same invoice is restored, as Oblio's
    # restore allows, not a second one issued for the same order.
    shop.change("o31", {"status": "paid"})
    wait_until(lambda: ob.documents("invoice")[0]["canceled"] in (False, 0, "0")
               or len(ob.documents("invoice")) > 1, 10, "the order's invoice again")
    c.wait_settled()
    docs = ob.documents("invoice")
    assert len(docs) == 1 and docs[0]["canceled"] in (False, 0, "0"), docs
    restore = [r for r in ob.requests("PUT") if r["path"] == "/api/docs/invoice/restore"]
    assert len(restore) == 1 and restore[0]["body"] == {
        "cif": ob.cif, "seriesName": doc["seriesName"], "number": doc["number"]}, restore
    assert c.cli_json("failed") == []
    ob.assert_clean()


def test_a_new_store_never_reuses_an_idempotency_key_of_an_old_one():
    # Keys are made from a link's row id and a version, which a new store
    # (a fresh start, a move to another database) counts from 1 again:
    # its first order must not be answered with the old store's invoice.
    ob, shop, c, _ = setup()
    shop.change("o40", order(40))
    wait_until(lambda: ob.documents("invoice"), 10, "the first invoice")
    c.wait_settled()
    c.stop()
    _, shop2, c2, _ = setup(sim=ob)
    shop2.change("o41", order(41))
    wait_until(lambda: len(ob.documents("invoice")) >= 2, 10, "the new store's own invoice")
    c2.wait_settled()
    docs = ob.documents("invoice")
    assert len(docs) == 2 and len({d["idempotencyKey"] for d in docs}) == 2, docs
    assert c2.cli_json("failed") == []


def test_a_lost_answer_makes_one_invoice_under_the_same_key():
    ob, shop, c, _ = setup()
    ob.faults([{"reset": "after", "match": {"method": "POST", "path": "/api/docs/invoice"}}])
    shop.change("o3", order(3))
    wait_until(lambda: len(posts(ob)) >= 2, 15, "the resend")
    c.wait_settled()
    keys = {p["body"]["idempotencyKey"] for p in posts(ob)}
    assert len(keys) == 1 and len(ob.documents("invoice")) == 1, (keys, ob.documents("invoice"))
    assert c.cli_json("failed") == []
    ob.assert_clean()


def test_tokens_that_expire_mid_run_are_refreshed_once_for_everyone():
    # A slow token endpoint, so requests that need a token meanwhile pile up.
    ob, shop, c, _ = setup(token_delay_ms=400)
    shop.change("o4", order(4))
    wait_until(lambda: len(ob.documents("invoice")) == 1, 10, "the first invoice")
    ob._ctl("POST", "expire_tokens", {})
    expired_at = len(ob.requests())
    for i in range(5, 13):
        shop.change("o%d" % i, order(i))
    wait_until(lambda: len(ob.documents("invoice")) == 9, 20, "every invoice")
    c.wait_settled()
    st = ob.stats()
    assert st["expired_token_uses"] >= 1, st       # the expiry was met mid-run...
    assert st["token_requests"] == 2, st           # ...and one new token served all
    assert st["token_max_concurrent"] == 1, st     # never two refreshes at once
    # The poll thread read proformas with the new token too.
    assert [r for r in ob.requests("GET")[-50:] if "/api/docs/proforma/list" in r["path"]
            and r["status"] == 200], ob.requests("GET")[-5:]
    assert expired_at < len(ob.requests())
    assert c.cli_json("failed") == []
    ob.assert_clean()


def test_a_webhook_gets_its_handshake_and_brings_the_change_by_a_poll():
    ob, shop, c, port = setup(config=BOOKS)
    got = ob.register_webhook("http://127.0.0.1:%d/webhooks/oblio" % port, topic="Invoice/*")
    assert got["verified"], got  # concord answered base64(X-Oblio-Request-Id)
    ob.person_create(body={"seriesName": "FCT"}, wait=True)
    doc = ob.documents("invoice")[0]
    wait_until(lambda: [r for r in shop.records().values()
                        if r.get("number") == doc["number"]], 10, "the invoice in the shop")
    lists = [r for r in ob.requests("GET") if r["path"].startswith("/api/docs/invoice/list")]
    assert lists, "the webhook asked for a poll"
    ob.person_change(doc["seriesName"], doc["number"], "cancel", wait=True)
    wait_until(lambda: [r for r in shop.records().values()
                        if r.get("number") == doc["number"] and r.get("canceled") == "1"],
               10, "the cancel in the shop")
    assert c.cli_json("failed") == []
    ob.assert_clean()


def test_a_refused_secret_is_shown_with_oblios_words():
    ob, shop, c, _ = setup(secret="not-the-secret", attempts=2)
    shop.change("o20", order(20))
    entry = wait_until(lambda: c.cli_json("failed"), 15, "the inbox entry")
    assert "Invalid client credentials" in entry[0]["reason"], entry
    assert "not-the-secret" not in c.log_text()  # the secret never reaches a log
    st = c.cli_json("status")
    oblio = [s for s in st["systems"] if s["name"] == "oblio"][0]
    assert "Invalid client credentials" in (oblio.get("last_error") or ""), oblio
    assert ob.documents("invoice") == []


if __name__ == "__main__":
    harness.run_tests(globals())
