#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Paid shop orders become SmartBill invoices (the Connectors issue):
concord talks to the SmartBill simulator (tests/sims/smartbill.py) through
the smartbill kind, with only credentials and field maps. SmartBill takes
no idempotency key and cannot list invoices, so concord reads the series'
next number around each create; a lost answer yields exactly one invoice,
and an inconclusive one waits for a person. Its 30 calls in 10 s are
never exceeded, and errorText in a 200 is a refusal."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Concord, Sim, wait_until  # noqa: E402
from smartbill_harness import SmartBillSim  # noqa: E402

SHOP_SECRET = "shop-secret"

CONFIG = """
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
        deleted_when: '.deleted == true'
        map_in: {number: number, status: status, client: client, email: email, total: total}
  smartbill:
    kind: smartbill
    base_url: http://127.0.0.1:{sb_port}
    username: {email}
    token: env:SB_TOKEN
    cif: {cif}
    timeout_ms: 1000
    retry: {max_attempts: 8, base_ms: 50, cap_ms: 300, jitter: 0.1}
    collections:
      invoices:
        model: order
        map_out:
          seriesName: {const: FCT}
          issueDate: {const: "2026-01-24"}
          currency: {const: RON}
          client:
            jq: '{name: .client, email: .email, address: "Str. Lunga 1", city: "Cluj-Napoca",
                  county: "Cluj", country: "Romania", vatCode: "0000000000000",
                  isTaxPayer: false, saveToDb: false}'
          products:
            jq: '[{name: ("Order " + .number), code: .number, measuringUnitName: "buc",
                   currency: "RON", quantity: 1, price: (.total | tonumber), isTaxIncluded: true,
                   taxName: "Normala", taxPercentage: 21, isService: true, saveToDb: false}]'
models:
  order:
    fields: {number: string, status: string, client: string, email: string, total: decimal}
syncs:
  orders:
    model: order
    origin: [shop]
    collections: [shop.orders, smartbill.invoices]
    filters:
      smartbill.invoices: '.status == "paid"'
"""


def setup(**sb_flags):
    port = harness.free_port()
    sb = SmartBillSim(**sb_flags)
    shop = Sim(resource="orders", id_prefix="O",
               webhook_url="http://127.0.0.1:%d/webhooks/shop" % port,
               webhook_secret=SHOP_SECRET, signature_header="X-Shop-Signature")
    c = Concord(CONFIG, values={"port": port, "shop_port": shop.port, "sb_port": sb.port,
                                "email": sb.email, "cif": sb.cif},
                env={"SB_TOKEN": sb.token, "SHOP_SECRET": SHOP_SECRET})
    c.start()
    return sb, shop, c


def order(n, status="paid", total="121.00"):
    return {"number": "N%d" % n, "status": status, "client": "Client %d" % n,
            "email": "c%d@example.ro" % n, "total": total}


def api_invoices(sb):
    return [i for i in sb.invoices() if i.get("source") == "api"]


def posts(sb):
    return [r for r in sb.requests("POST") if r["path"].split("?")[0] == "/SBORO/api/invoice"]


def test_a_paid_order_becomes_one_invoice_and_its_cancel_cancels_it():
    sb, shop, c = setup()
    shop.change("o1", order(1, status="pending"))
    c.wait_settled()
    assert sb.invoices() == []  # not paid: not invoiced
    shop.change("o1", {"status": "paid"})
    inv = wait_until(lambda: api_invoices(sb), 10, "the invoice")
    assert len(inv) == 1 and inv[0]["series"] == "FCT", inv
    body = inv[0]["body"]
    assert body["companyVatCode"] == sb.cif and body["products"][0]["price"] == 121, body
    # The series was read just before the create.
    paths = [r["path"].split("?")[0] for r in sb.requests()]
    assert paths.index("/SBORO/api/series") < paths.index("/SBORO/api/invoice"), paths
    # A change to an issued invoice's order changes nothing in SmartBill.
    shop.change("o1", {"client": "Client One"})
    c.wait_settled()
    assert len(posts(sb)) == 1 and c.cli_json("failed") == []
    # The order is cancelled: its invoice is cancelled (it keeps its number).
    shop.change("o1", {"status": "cancelled"})
    wait_until(lambda: api_invoices(sb)[0].get("canceled"), 10, "the cancelled invoice")
    # Paid again after all: the same invoice is restored, not a new one issued.
    shop.change("o1", {"status": "paid"})
    wait_until(lambda: not api_invoices(sb)[0].get("canceled"), 10, "the restored invoice")
    c.wait_settled()
    restores = [r for r in sb.requests("PUT") if r["path"].startswith("/SBORO/api/invoice/restore")]
    assert len(restores) == 1 and "number=" + inv[0]["number"] in restores[0]["path"], restores
    assert len(posts(sb)) == 1 and len(api_invoices(sb)) == 1
    assert c.cli_json("failed") == []
    sb.assert_clean()


def test_a_lost_answer_yields_exactly_one_invoice():
    sb, shop, c = setup()
    sb.faults([{"reset": "after", "match": {"method": "POST", "path": "/SBORO/api/invoice"}}])
    shop.change("o2", order(2))
    wait_until(lambda: len([r for r in sb.requests("GET")
                            if "paymentstatus" in r["path"]]) >= 1, 15, "the confirm call")
    c.wait_settled()
    inv = api_invoices(sb)
    assert len(inv) == 1, inv
    assert len(posts(sb)) == 1  # never sent again
    assert c.cli_json("failed") == []
    # Linked: the cancel reaches that invoice.
    shop.change("o2", {"status": "cancelled"})
    wait_until(lambda: api_invoices(sb)[0].get("canceled"), 10, "the cancelled invoice")
    sb.assert_clean()


def test_a_500_after_the_invoice_was_issued_yields_exactly_one_invoice():
    # A 5xx says nothing of whether SmartBill issued the invoice before it
    # failed: it is settled by the series, as a lost answer is.
    sb, shop, c = setup()
    sb.faults([{"status": 500, "apply": "first",
                "match": {"method": "POST", "path": "/SBORO/api/invoice"}}])
    shop.change("o5", order(5))
    wait_until(lambda: api_invoices(sb), 15, "the invoice")
    c.wait_settled()
    inv = api_invoices(sb)
    assert len(inv) == 1 and len(posts(sb)) == 1, (inv, posts(sb))
    assert c.cli_json("failed") == []


def test_a_create_that_never_arrived_is_sent_again_once():
    sb, shop, c = setup()
    sb.faults([{"reset": "before", "match": {"method": "POST", "path": "/SBORO/api/invoice"}}])
    shop.change("o3", order(3))
    wait_until(lambda: len(api_invoices(sb)) == 1, 15, "the invoice")
    c.wait_settled()
    assert len(api_invoices(sb)) == 1 and len(posts(sb)) == 2
    assert c.cli_json("failed") == []
    sb.assert_clean()


def test_an_invoice_issued_by_a_person_meanwhile_leaves_the_outcome_to_a_person():
    sb, shop, c = setup()
    # The answer is lost, and before concord reads the series again (it
    # waits two timeouts) a person issues an invoice in the same series.
    sb.faults([{"reset": "after", "match": {"method": "POST", "path": "/SBORO/api/invoice"}}])
    shop.change("o4", order(4))
    wait_until(lambda: len(posts(sb)) == 1 and len(api_invoices(sb)) == 1, 10, "the create")
    sb.person_issue("FCT")
    entry = wait_until(lambda: c.cli_json("failed"), 15, "the inbox entry")
    assert entry[0]["kind"] == "unknown" and "FCT" in entry[0]["reason"], entry
    assert "meanwhile" in entry[0]["reason"], entry
    assert len(posts(sb)) == 1 and len(api_invoices(sb)) == 1  # no second invoice


def test_errortext_in_a_200_is_a_refusal_in_the_inbox():
    sb, shop, c = setup(series="f:OTHER:1")  # no series FCT in this account
    shop.change("o6", order(6))
    entry = wait_until(lambda: c.cli_json("failed"), 10, "the refusal")
    assert "Seria" in entry[0]["reason"] or "series FCT" in entry[0]["reason"], entry
    assert posts(sb) == [] and sb.invoices() == []


def test_many_orders_never_trip_the_30_in_10s_block():
    sb, shop, c = setup()
    n = 18  # 36 calls: more than one window holds
    for i in range(n):
        shop.change("b%d" % i, order(100 + i))
    wait_until(lambda: len(api_invoices(sb)) == n, 60, "every invoice")
    c.wait_settled()
    inv = api_invoices(sb)
    assert len({i["number"] for i in inv}) == n and len(posts(sb)) == n
    # No window of 10 s held more than 30 calls, and no 403 block happened.
    times = sorted(r["time"] for r in sb.requests())
    assert len(times) > 30, len(times)
    worst = max(len([t for t in times if s <= t < s + 10.0]) for s in times)
    assert worst <= 30, worst
    assert sb.stats()["rate_limit"]["max_in_window"] <= 30, sb.stats()
    sb.assert_clean()


# Payments: the shop's payments are recorded against their order's invoice
# (POST /payment), and each invoice's payment status is read back by a poll
# and carried to the order, whoever recorded the payment.
CONFIG_PAY = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=2000
log: {level: debug, format: json}
systems:
  shop:
    kind: http
    base_url: {shop_url}
    timeout_ms: 1000
    webhook: {path: /webhooks/shop}
    collections:
      orders:
        model: order
        match: '.event | startswith("order.")'
        record: order
        map_in: {number: number, status: status, client: client, email: email, total: total}
        map_out: {invoice_paid: invoice_paid}
        update: PATCH /orders/{id}
      payments:
        model: payment
        match: '.event | startswith("payment.")'
        record: payment
        deleted_when: '.event == "payment.deleted"'
        map_in: {order: order_id, amount: amount, method: method, date: date}
  smartbill:
    kind: smartbill
    base_url: http://127.0.0.1:{sb_port}
    username: {email}
    token: env:SB_TOKEN
    cif: {cif}
    timeout_ms: 1000
    retry: {max_attempts: 8, base_ms: 50, cap_ms: 300, jitter: 0.1}
    collections:
      invoices:
        model: order
        poll: {every: 300ms}
        map_in: {invoice_paid: paid}
        map_out:
          seriesName: {const: FCT}
          issueDate: {const: "2026-01-24"}
          currency: {const: RON}
          client: {jq: '{name: .client, email: .email, vatCode: "0000000000000",
                         isTaxPayer: false, saveToDb: false}'}
          products:
            jq: '[{name: ("Order " + .number), measuringUnitName: "buc", currency: "RON",
                   quantity: 1, price: (.total | tonumber), isTaxIncluded: true,
                   taxName: "Normala", taxPercentage: 21, isService: true, saveToDb: false}]'
      payments:
        model: payment
        map_out:
          type: method
          value: {jq: '.amount | tonumber'}
          issueDate: date
          currency: {const: RON}
          isCash: {const: false}
          useInvoiceDetails: {const: true}
          invoicesList: {jq: '.order | split("/") | [{seriesName: .[0], number: .[1]}]'}
models:
  order:
    fields: {number: string, status: string, client: string, email: string, total: decimal,
             invoice_paid: boolean}
  payment:
    fields: {order: "ref:order", amount: decimal, method: string, date: date}
syncs:
  orders:
    model: order
    origin: [shop]
    owners: {invoice_paid: smartbill}
    collections: [shop.orders, smartbill.invoices]
    filters:
      smartbill.invoices: '.status == "paid"'
  payments:
    model: payment
    origin: [shop]
    collections: [shop.payments, smartbill.payments]
"""


def setup_pay(**sb_flags):
    port = harness.free_port()
    sb = SmartBillSim(**sb_flags)
    hook = "http://127.0.0.1:%d/webhooks/shop" % port
    orders = Sim(resource="orders", id_prefix="O", webhook_url=hook, envelope="order",
                 event_key="event")
    pays = Sim(resource="payments", id_prefix="P", webhook_url=hook, envelope="payment",
               event_key="event")
    c = Concord(CONFIG_PAY, values={"port": port, "shop_url": orders.url, "sb_port": sb.port,
                                    "email": sb.email, "cif": sb.cif},
                env={"SB_TOKEN": sb.token})
    c.start()
    return sb, orders, pays, c


def payment_posts(sb):
    return [r for r in sb.requests("POST") if r["path"].split("?")[0] == "/SBORO/api/payment"]


def status_reads(sb):
    return [r for r in sb.requests("GET") if "paymentstatus" in r["path"]]


def invoice_paid(orders, oid):
    return orders.records().get(oid, {}).get("invoice_paid")


def test_a_payment_is_recorded_on_its_invoice_and_the_status_comes_back():
    sb, orders, pays, c = setup_pay()
    orders.change("o1", order(1))
    inv = wait_until(lambda: api_invoices(sb), 10, "the invoice")[0]
    # The poll reads the new invoice's status: not paid yet.
    wait_until(lambda: invoice_paid(orders, "o1") is False, 10, "invoice_paid false in the shop")
    pays.change("p1", {"order_id": "o1", "amount": "121.00", "method": "Card",
                       "date": "2026-01-25"})
    wait_until(lambda: len(sb.payments()) == 1, 10, "the payment in SmartBill")
    body = payment_posts(sb)[0]["body"]
    assert body["invoicesList"] == [{"seriesName": "FCT", "number": inv["number"]}], body
    assert body["companyVatCode"] == sb.cif and body["value"] == 121, body
    wait_until(lambda: api_invoices(sb)[0]["paymentStatus"] == "paid", 10, "a paid invoice")
    wait_until(lambda: invoice_paid(orders, "o1") is True, 10, "invoice_paid true in the shop")
    # A second card payment of the same invoice would be known by the same
    # id (SmartBill deletes a payment by type and invoice): it is stopped
    # before it is sent, and a person settles it.
    pays.change("p9", {"order_id": "o1", "amount": "1.00", "method": "Card",
                       "date": "2026-01-26"})
    held = wait_until(lambda: [f for f in c.cli_json("failed") if "already holds" in f["reason"]],
                      10, "the refusal")
    assert len(payment_posts(sb)) == 1 and len(sb.payments()) == 1
    c.cli("skip", str(held[0]["id"]), "--reason", "a duplicate")
    # Someone records a bank transfer in SmartBill for another order's
    # invoice: the order learns of it too.
    orders.change("o2", order(2, total="50.00"))
    inv2 = wait_until(lambda: [i for i in api_invoices(sb) if i["number"] != inv["number"]], 10,
                      "the second invoice")[0]
    wait_until(lambda: invoice_paid(orders, "o2") is False, 10, "o2 unpaid")
    sb.person_pay("FCT", inv2["number"], type="Ordin plata")
    wait_until(lambda: invoice_paid(orders, "o2") is True, 10, "o2 paid in the shop")
    # The shop's payment is deleted: the payment goes, and the invoice is
    # unpaid again.
    pays.delete("p1")
    wait_until(lambda: any(r["path"].startswith("/SBORO/api/payment/v2")
                           for r in sb.requests("DELETE")), 10, "the payment's delete")
    dels = [r["path"] for r in sb.requests("DELETE")]
    assert "paymentType=Card" in dels[0] and "invoiceNumber=" + inv["number"] in dels[0], dels
    wait_until(lambda: invoice_paid(orders, "o1") is False, 10, "o1 unpaid again")
    c.wait_settled()
    assert len(payment_posts(sb)) == 1 and c.cli_json("failed") == []
    sb.assert_clean()


def test_status_polls_and_deliveries_share_the_30_in_10s_budget():
    # Four invoices, and a poll every 300 ms that reads each one's payment
    # status: 13 reads a second wanted, beside the creates. SmartBill blocks
    # an account for 10 minutes past 30 calls in 10 s, so the reads wait
    # for the system's budget as deliveries do.
    sb, orders, pays, c = setup_pay()
    for i in range(4):
        orders.change("o%d" % i, order(200 + i))
    wait_until(lambda: all(invoice_paid(orders, "o%d" % i) is False for i in range(4)), 30,
               "every invoice's status back in the shop")
    pays.change("p1", {"order_id": "o0", "amount": "121.00", "method": "Card",
                       "date": "2026-01-25"})
    wait_until(lambda: invoice_paid(orders, "o0") is True, 30, "the payment's status back")
    # 30 more status reads: over 10 s at the budget's pace.
    before = len(status_reads(sb))
    wait_until(lambda: len(status_reads(sb)) >= before + 30, 40, "30 more status reads")
    times = sorted(r["time"] for r in sb.requests())
    worst = max(len([t for t in times if s <= t < s + 10.0]) for s in times)
    assert worst <= 30, worst
    sb.assert_clean()


def test_status_polls_keep_to_what_the_account_says_is_left():
    # Another client of the account spends most of it: SmartBill now takes
    # 3 calls in 2 s, where concord's own budget allows 30 in 10. The reads
    # keep to X-RateLimit-Remaining and -Reset of each answer, so the
    # account is never blocked.
    sb, orders, pays, c = setup_pay()
    for i in range(4):
        orders.change("o%d" % i, order(300 + i))
    wait_until(lambda: all(invoice_paid(orders, "o%d" % i) is False for i in range(4)), 30,
               "every invoice's status back in the shop")
    c.wait_settled()
    sb.rate_limit(limit=3, window_s=2, block_s=600)
    before = len(status_reads(sb))
    wait_until(lambda: len(status_reads(sb)) >= before + 9, 30, "9 more status reads")
    rl = sb.stats()["rate_limit"]
    assert rl["refused"] == 0 and not rl["blocked_ever"], rl
    sb.assert_clean()


def test_a_payment_whose_answer_is_lost_is_never_recorded_twice():
    sb, orders, pays, c = setup_pay()
    orders.change("o3", order(3))
    wait_until(lambda: invoice_paid(orders, "o3") is False, 10, "the invoice and its status")
    sb.faults([{"reset": "after", "match": {"method": "POST", "path": "/SBORO/api/payment"}}])
    pays.change("p3", {"order_id": "o3", "amount": "121.00", "method": "Card",
                       "date": "2026-01-25"})
    entry = wait_until(lambda: c.cli_json("failed"), 15, "the inbox entry")
    assert entry[0]["kind"] == "unknown", entry
    assert len(payment_posts(sb)) == 1 and len(sb.payments()) == 1
    # It was recorded: the status read back says so.
    wait_until(lambda: invoice_paid(orders, "o3") is True, 10, "o3 paid")
    assert len(payment_posts(sb)) == 1


if __name__ == "__main__":
    harness.run_tests(globals())
