#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Relations end to end (the Two-way issue): an invoice refers to its
customer. Each system knows the customer by its own id, so the maps
translate the reference through links; a customer that has no copy in the
target yet is delivered before the invoice that refers to it; and a
reference that cannot be resolved parks the change with that reason.

The billing system here is a small in-test REST server with two resources
(customers and invoices) that assigns its own ids (cus_N, in_N) and logs
every request in order."""

import http.server
import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Concord, Sim, wait_until  # noqa: E402

CONFIG = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=300
log: {level: debug, format: json}
systems:
  shop:
    kind: http
    base_url: http://127.0.0.1:9
    webhook: {path: /webhooks/shop}
    collections:
      customers:
        model: customer
        match: '.event | startswith("customer.")'
        record: customer
        map_in: {email: email, name: name}
      orders:
        model: invoice
        match: '.event | startswith("order.")'
        record: order
        map_in: {number: number, customer: customer_id, total: total, paid: paid}
  billing:
    kind: http
    base_url: {billing_url}
    retry: {max_attempts: 5, base_ms: 50, cap_ms: 200, jitter: 0.1}
    collections:
      customers:
        model: customer
        map_out: {email: email, name: name}
        create: POST /customers
        update: PUT /customers/{id}
      invoices:
        model: invoice
        map_out: {number: number, customer: customer, total: total}
        create: POST /invoices
        update: PUT /invoices/{id}
models:
  customer:
    fields: {email: string, name: string}
  invoice:
    fields: {number: string, customer: "ref:customer", total: decimal, paid: boolean}
syncs:
  customers:
    model: customer
    origin: shop
    collections: [shop.customers, billing.customers]
  invoices:
    model: invoice
    origin: shop
    collections: [shop.orders, billing.invoices]
    filters:
      billing.invoices: '.paid == true'
"""


class Billing:
    """POST /R creates (id R[:3]_N), PUT /R/ID replaces, GET /R/ID reads."""

    def __init__(self):
        outer = self
        self.lock = threading.Lock()
        self.log = []
        self.data = {}
        self.slow_customers = threading.Event()
        self.slow_customers.set()

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *a):
                pass

            def answer(self, status, obj):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n)) if n else None
                parts = self.path.strip("/").split("/")
                res = parts[0]
                if res == "customers":
                    outer.slow_customers.wait(10)
                with outer.lock:
                    outer.log.append((self.command, self.path, body))
                    recs = outer.data.setdefault(res, {})
                    if self.command == "POST" and len(parts) == 1:
                        rid = "%s_%d" % (res[:3], len(recs) + 1)
                        recs[rid] = dict(body, id=rid)
                        return self.answer(201, recs[rid])
                    if len(parts) == 2 and parts[1] in recs:
                        if self.command == "PUT":
                            recs[parts[1]] = dict(body, id=parts[1])
                        return self.answer(200, recs[parts[1]])
                    return self.answer(404, {"error": "not found"})

            do_GET = do_POST = do_PUT = handle_any

        class S(http.server.ThreadingHTTPServer):
            daemon_threads = True

        self.server = S(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        harness.cleanup(self)

    def stop(self):
        self.slow_customers.set()
        self.server.shutdown()
        self.server.server_close()

    def records(self, res):
        with self.lock:
            return dict(self.data.get(res, {}))

    def requests(self):
        with self.lock:
            return list(self.log)


def setup():
    billing = Billing()
    port = harness.free_port()
    c = Concord(CONFIG, values={"port": port, "billing_url": billing.url})
    c.start()
    shop = Sim(resource="customers", id_prefix="S", webhook_url=c.url + "/webhooks/shop",
               envelope="customer", event_key="event")
    orders = Sim(resource="orders", id_prefix="O", webhook_url=c.url + "/webhooks/shop",
                 envelope="order", event_key="event")
    return billing, c, shop, orders


def test_the_customer_is_created_before_the_invoice_that_refers_to_it():
    billing, c, shop, orders = setup()
    billing.slow_customers.clear()  # the customer's create hangs until released
    shop.change("S1", {"email": "ada@example.com", "name": "Ada"})
    orders.change("O1", {"number": "2026-001", "customer_id": "S1", "total": "12.50",
                         "paid": True})
    wait_until(lambda: "record created from O1" in c.log_text(), 10, "the invoice record")
    billing.slow_customers.set()
    wait_until(lambda: billing.records("invoices"), 10, "the invoice in billing")
    c.wait_settled()
    log = [(m, p) for m, p, _ in billing.requests()]
    assert log.index(("POST", "/customers")) < log.index(("POST", "/invoices")), log
    inv = list(billing.records("invoices").values())
    assert len(inv) == 1 and inv[0]["customer"] == "cus_1", inv
    assert inv[0]["total"] == "12.5" or float(inv[0]["total"]) == 12.5
    assert len(billing.records("customers")) == 1


def test_a_reference_concord_cannot_resolve_parks_the_change():
    billing, c, shop, orders = setup()
    orders.change("O2", {"number": "2026-002", "customer_id": "S9", "total": "5",
                         "paid": True})
    failed = wait_until(lambda: c.cli_json("inbox"), 10, "the parked change")
    assert "refers to S9" in failed[0]["reason"], failed
    assert billing.records("invoices") == {}
    # Once the customer has arrived, a retry resolves it.
    shop.change("S9", {"email": "bo@example.com", "name": "Bo"})
    wait_until(lambda: billing.records("customers"), 10, "the customer")
    c.cli("retry", str(failed[0]["id"]))
    wait_until(lambda: billing.records("invoices"), 10, "the invoice")
    inv = list(billing.records("invoices").values())[0]
    assert inv["customer"] == "cus_1", inv


def test_an_unpaid_order_never_becomes_an_invoice_until_paid():
    billing, c, shop, orders = setup()
    shop.change("S1", {"email": "ada@example.com", "name": "Ada"})
    orders.change("O3", {"number": "2026-003", "customer_id": "S1", "total": "7",
                         "paid": False})
    wait_until(lambda: "record created from O3" in c.log_text(), 10, "the invoice record")
    c.wait_settled()
    assert billing.records("invoices") == {}
    orders.change("O3", {"paid": True})
    wait_until(lambda: billing.records("invoices"), 10, "the invoice once paid")
    assert list(billing.records("invoices").values())[0]["customer"] == "cus_1"


if __name__ == "__main__":
    harness.run_tests(globals())
