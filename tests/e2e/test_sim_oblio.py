#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Self-test of tests/sims/oblio.py and tests/e2e/oblio_harness.py over real
sockets. Needs no concord: an OblioEndpoint plays the webhook receiver."""

import base64
import http.client
import os
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import wait_until  # noqa: E402
from oblio_harness import OblioEndpoint, OblioSim  # noqa: E402


def expect(cond, msg, *values):
    if not cond:
        raise AssertionError(msg + "".join(" | %r" % (v,) for v in values))


def expect_eq(got, want, msg):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (msg, got, want))


def connection_error(fn):
    try:
        fn()
    except (OSError, http.client.HTTPException) as e:
        return e
    return None


def doc_id(link):
    return urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["id"][0]


def test_token():
    sim = OblioSim(token_ttl_s=2)
    st, body = sim.token_request()
    expect_eq(st, 200, "form-encoded token request")
    expect_eq(sorted(body), ["access_token", "expires_in", "request_time", "scope",
                             "token_type"], "token fields")
    expect_eq((body["expires_in"], body["token_type"]), ("2", "Bearer"), "expires_in is a string")
    expect(isinstance(body["request_time"], str) and
           abs(int(body["request_time"]) - time.time()) < 5, "request_time", body)
    st, body2 = sim.token_request(json_body=True)
    expect_eq(st, 200, "JSON token request (the PHP client's)")
    expect(body2["access_token"] != body["access_token"], "a new token each time")
    st, err = sim.token_request(client_secret="wrong")
    expect_eq((st, err["status"]), (401, 401), "wrong secret")
    st, err = sim.token_request(extra={"grant_type": "password"})
    expect_eq(st, 400, "another grant type")
    st, err, h = sim.api("GET", "nomenclature/companies", token=None)
    expect_eq((st, err["status"], "www-authenticate" in h), (401, 401, True), "no token")
    st, err, _ = sim.api("GET", "nomenclature/companies", token="f00")
    expect_eq(st, 401, "unknown token")
    st, out, _ = sim.api("GET", "nomenclature/companies", token=body["access_token"])
    expect_eq((st, out["status"], out["statusMessage"], out["data"][0]["cif"]),
              (200, 200, "Success", sim.cif), "a good token")
    wait_until(lambda: sim.api("GET", "nomenclature/companies",
                               token=body["access_token"])[0] == 401, 5,
               "the token to expire after 2 s")
    t = sim.access_token(fresh=True)
    expect_eq(sim.api("GET", "nomenclature/companies", token=t)[0], 200, "a fresh token")
    sim.expire_tokens()
    st, err, _ = sim.api("GET", "nomenclature/companies", token=t)
    expect_eq((st, err["statusMessage"]), (401, "Access token expired"), "expired by control")
    stats = sim.stats()
    expect_eq((stats["token_requests"], stats["tokens_issued"], stats["token_refused"]),
              (5, 3, 1), "token counters")
    expect(stats["expired_token_uses"] >= 2 and stats["unknown_token_uses"] == 1, "uses", stats)
    expect_eq(stats["invalid"], 1, "the bad grant type is malformed")
    sim2 = OblioSim(single_token=True, request_time_type="int")
    a = sim2.access_token()
    st, b = sim2.token_request()
    expect(isinstance(b["request_time"], int), "request_time as int", b)
    expect_eq(sim2.api("GET", "nomenclature/companies", token=a)[0], 401,
              "--single-token: the old token is revoked")


def test_token_concurrency():
    sim = OblioSim(token_delay_ms=400)
    for _ in range(2):
        expect_eq(sim.token_request()[0], 200, "one at a time")
    expect_eq(sim.stats()["token_max_concurrent"], 1, "sequential: one in flight")
    answers = []

    def one():
        answers.append(sim.token_request()[0])

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    expect_eq(answers, [200] * 4, "all answered")
    stats = sim.stats()
    expect_eq((stats["token_max_concurrent"], stats["token_requests"], stats["token_inflight"]),
              (4, 6, 0), "four at once is seen")


def test_documents():
    sim = OblioSim()
    data = sim.create_doc()
    expect_eq(sorted(data), ["einvoice", "link", "number", "seriesName"], "create: no id")
    expect_eq((data["seriesName"], data["number"]), ("FCT", "0001"), "numbered")
    first = doc_id(data["link"])
    expect_eq(first, "10000", "the id hides in the link")
    d2 = sim.create_doc(seriesName="FCT")
    expect_eq(d2["number"], "0002", "next number")
    st, out, _ = sim.api("GET", "docs/invoice", query={"cif": sim.cif, "seriesName": "FCT",
                                                       "number": "0001"})
    doc = out["data"]
    expect_eq((st, doc["id"], doc["type"], doc["canceled"], doc["total"], doc["precision"]),
              (200, first, "Factura", "0", "200.0000", "2"), "read one: all strings")
    expect_eq(doc["client"]["name"], "Ada Lovelace SRL", "client")
    expect_eq(doc["products"][0]["price"], "100", "products as strings")
    st, out, _ = sim.api("GET", "docs/invoice", query={"cif": sim.cif, "seriesName": "FCT",
                                                       "number": 2})
    expect_eq(out["data"]["number"], "0002", "the number as an int finds 0002")
    ref = {"cif": sim.cif, "seriesName": "FCT", "number": "0001"}
    st, out, _ = sim.api("PUT", "docs/invoice/cancel", ref)
    expect_eq((st, out["status"]), (200, 200), "cancel")
    expect_eq(sim.api("PUT", "docs/invoice/cancel", ref)[0], 200, "cancel again: still 200")
    expect(sim.documents("invoice")[0]["canceled"], "canceled")
    sim.api("PUT", "docs/invoice/restore", ref)
    expect(not sim.documents("invoice")[0]["canceled"], "restored")
    st, out, _ = sim.api("DELETE", "docs/invoice", ref)
    expect_eq((st, "nu este ultimul" in out["statusMessage"]), (400, True), "not the last")
    st, out, _ = sim.api("DELETE", "docs/invoice", None)
    expect_eq(st, 400, "DELETE without its JSON body")
    st, out, _ = sim.api("DELETE", "docs/invoice", dict(ref, number="0002"))
    expect_eq(st, 200, "delete the last")
    expect_eq(sim.create_doc()["number"], "0002", "its number is given again")
    st, out, _ = sim.api("PUT", "docs/invoice/collect", {
        "cif": sim.cif, "seriesName": "FCT", "number": "0002",
        "collect": {"type": "Ordin de plata", "documentNumber": "OP 17", "value": 200}})
    expect_eq(st, 200, "collect")
    st, out, _ = sim.api("GET", "docs/invoice", query=dict(ref, number="0002"))
    expect_eq((out["data"]["collected"], out["data"]["collects"][0]["value"]),
              ("1", "200.0000"), "collected")
    st, out, _ = sim.api("DELETE", "docs/invoice", dict(ref, number="0002"))
    expect_eq(st, 400, "collected: deleteCollect needed")
    st, out, _ = sim.api("DELETE", "docs/invoice", dict(ref, number="0002", deleteCollect=1))
    expect_eq(st, 200, "with deleteCollect")
    p = sim.create_doc("proforma", seriesName="PR")
    expect_eq((p["number"], "einvoice" in p), ("0001", False), "a proforma")
    st, out, _ = sim.api("GET", "docs/invoice", query=dict(ref, number="0009"))
    expect_eq((st, out["status"]), (400, 400), "unknown document")
    st, out, _ = sim.api("POST", "docs/invoice", sim.invoice_body(seriesName="NOPE"))
    expect_eq(st, 400, "unknown series")
    st, out, _ = sim.api("POST", "docs/invoice", sim.invoice_body(cif="RO1"))
    expect_eq(st, 400, "another company")
    expect_eq(len(sim.documents(deleted=True)), 4, "deleted ones too with deleted=1")
    expect_eq([r["invalid"] for r in sim.invalid_requests()],
              [["Invalid or missing JSON body: empty body"]], "only the bodiless DELETE")


def test_idempotency():
    sim = OblioSim()
    a = sim.create_doc(idempotencyKey="woocommerce-000000000000017")
    b = sim.create_doc(idempotencyKey="woocommerce-000000000000017",
                       mentions="a different body")
    expect_eq(b, a, "the same key answers the first document")
    expect_eq(len(sim.documents("invoice")), 1, "one invoice")
    expect_eq(sim.requests()[-1].get("idempotency"), "replayed", "logged as replayed")
    p = sim.create_doc("proforma", seriesName="PR", idempotencyKey="woocommerce-000000000000017")
    expect_eq(p["seriesName"], "PR", "keys are per document type")
    # A create whose answer is lost, then the retry with its key.
    sim.faults([{"reset": "after", "match": {"method": "POST", "path": "/api/docs/invoice"}}])
    e = connection_error(lambda: sim.api("POST", "docs/invoice",
                                         sim.invoice_body(idempotencyKey="k-2")))
    expect(e is not None, "the answer is lost")
    again = sim.create_doc(idempotencyKey="k-2")
    expect_eq(again["number"], "0002", "the retry gets the document made")
    expect_eq(len(sim.documents("invoice")), 2, "not twice")
    st, _, _ = sim.api("DELETE", "docs/invoice", {"cif": sim.cif, "seriesName": "FCT",
                                                  "number": "0002", "idempotencyKey": "k-2"})
    expect_eq(st, 200, "delete with the key")
    c = sim.create_doc(idempotencyKey="k-2", mentions="after delete")
    expect_eq(len(sim.documents("invoice")), 2, "the key was free again: a new invoice")
    expect_eq(sim.documents("invoice")[-1]["body"]["mentions"], "after delete", "the new one")
    expect_eq(c["number"], "0002", "which took the freed number")
    expect_eq(sim.stats()["idem_replayed"], 2, "replays counted")


def test_list_limits_and_filters():
    sim = OblioSim()
    for i, day in enumerate(["2026-01-05", "2026-01-20", "2026-02-03", "2026-02-28"]):
        sim.create_doc(issueDate=day, client={"name": "Client %d" % i, "cif": "RO%d" % (100 + i)})
    sim.api("PUT", "docs/invoice/cancel", {"cif": sim.cif, "seriesName": "FCT",
                                           "number": "0002"})

    def ls(**q):
        q.setdefault("cif", sim.cif)
        return sim.api("GET", "docs/invoice/list", query=q)

    st, out, _ = ls()
    expect_eq([d["number"] for d in out["data"]], ["0004", "0003", "0002", "0001"],
              "default: newest first")
    expect("products" not in out["data"][0], "no products unless withProducts=1")
    st, out, _ = ls(orderBy="id", orderDir="ASC", limitPerPage=3)
    expect_eq([d["number"] for d in out["data"]], ["0001", "0002", "0003"], "a page of 3")
    st, out, _ = ls(orderBy="id", orderDir="ASC", limitPerPage=3, offset=3)
    expect_eq([d["number"] for d in out["data"]], ["0004"], "offset")
    st, out, _ = ls(issuedAfter="2026-01-20", issuedBefore="2026-02-03", orderDir="ASC")
    expect_eq([d["issueDate"] for d in out["data"]], ["2026-01-20", "2026-02-03"],
              "issue-date range, inclusive")
    st, out, _ = ls(canceled=1)
    expect_eq([d["number"] for d in out["data"]], ["0002"], "canceled=1")
    st, out, _ = ls(**{"client[cif]": "RO102", "withProducts": 1})
    expect_eq(([d["number"] for d in out["data"]], len(out["data"][0]["products"])),
              (["0003"], 1), "client[cif] and withProducts")
    bad = [({"limitPerPage": 101}, "limitPerPage"), ({"limitPerPage": 0}, "limitPerPage"),
           ({"issuedAfter": "2026-01-05 10:00:00"}, "issuedAfter"),
           ({"issuedBefore": "05.01.2026"}, "issuedBefore"), ({"orderBy": "total"}, "orderBy"),
           ({"orderDir": "UP"}, "orderDir"), ({"canceled": 2}, "canceled"),
           ({"offset": -1}, "offset")]
    for q, word in bad:
        st, out, _ = ls(**q)
        expect_eq(st, 400, "out of range: %r" % q)
        expect(word in out["statusMessage"], "the message names it", out)
    st, out, _ = sim.api("GET", "docs/invoice/list", query={"limitPerPage": 5})
    expect_eq(st, 400, "cif is required")
    expect_eq(len(sim.invalid_requests()), len(bad) + 1, "each is malformed")
    expect_eq(sim.stats()["list_reads"], 6, "answered list reads counted")
    strict = OblioSim(list_max_days=31)
    st, out, _ = strict.api("GET", "docs/invoice/list", query={"cif": strict.cif})
    expect_eq(st, 400, "--list-max-days: the dates are required")
    st, out, _ = strict.api("GET", "docs/invoice/list", query={
        "cif": strict.cif, "issuedAfter": "2026-01-01", "issuedBefore": "2026-03-01"})
    expect_eq(st, 400, "a span over the limit")
    st, out, _ = strict.api("GET", "docs/invoice/list", query={
        "cif": strict.cif, "issuedAfter": "2026-01-01", "issuedBefore": "2026-01-31"})
    expect_eq((st, out["data"]), (200, []), "within the limit")


def test_validation():
    sim = OblioSim()
    cases = [
        ("no client", {k: v for k, v in sim.invoice_body().items() if k != "client"}),
        ("no products", sim.invoice_body(products=[])),
        ("price not a number", sim.invoice_body(products=[dict(
            sim.invoice_body()["products"][0], price="abc")])),
        ("bad date", sim.invoice_body(issueDate="24/01/2026")),
        ("bad collect type", sim.invoice_body(collect={"type": "Bitcoin"})),
        ("no cif", {k: v for k, v in sim.invoice_body().items() if k != "cif"}),
    ]
    for name, body in cases:
        st, out, _ = sim.api("POST", "docs/invoice", body)
        expect_eq((st, out["status"]), (400, 400), name)
    st, out, _ = sim.api("POST", "docs/invoice", "[]", headers={"Content-Type":
                                                              "application/json"})
    expect_eq(st, 400, "not an object")
    expect_eq(len(sim.invalid_requests()), len(cases) + 1, "all logged invalid")
    expect_eq(sim.documents(), [], "nothing issued")
    body = sim.invoice_body(salesAgent="x", selesAgent="Marian", collect={"type": "Card"})
    body["products"].append({"name": "Reducere", "discount": 10, "discountType": "procentual"})
    st, out, _ = sim.api("POST", "docs/invoice", body)
    expect_eq(st, 200, "a discount row, Oblio's spelling selesAgent")
    expect_eq(sim.requests()[-1]["unknown_fields"], ["salesAgent"], "the misspelling's fix "
              "is an unknown field")
    d = sim.documents()[0]
    expect_eq((d["total"], d["collected"]), (180.0, True), "10 % off, collected by card")
    p = dict(sim.invoice_body()["products"][0], vatPercentage=19)
    st, out, _ = sim.api("POST", "docs/invoice", sim.invoice_body(products=[p]))
    expect_eq(st, 400, "19 % is no longer Normala")
    expect_eq(sim.stats()["business_errors"], 1, "a business error, not a malformed request")


def test_clients():
    sim = OblioSim()
    sim.create_doc(client={"cif": "RO16", "name": "Ada SRL", "email": "a@x.ro"})
    sim.create_doc(client={"cif": "RO16", "name": "Ada SRL", "email": "new@x.ro"})
    sim.create_doc(client={"cif": "RO17", "name": "Babbage SRL", "save": 0})
    st, out, _ = sim.api("GET", "nomenclature/clients", query={"cif": sim.cif})
    expect_eq([(c["cif"], c["email"]) for c in out["data"]], [("RO16", "new@x.ro")],
              "saved once, updated; save=0 not saved")
    for i in range(300):
        sim._ctl("POST", "client", {"name": "Client %03d" % i, "cif": "RO9%03d" % i})
    st, out, _ = sim.api("GET", "nomenclature/clients", query={"cif": sim.cif})
    expect_eq(len(out["data"]), 250, "250 a page")
    st, out, _ = sim.api("GET", "nomenclature/clients", query={"cif": sim.cif, "offset": 250})
    expect_eq(len(out["data"]), 51, "the rest")
    st, out, _ = sim.api("GET", "nomenclature/clients", query={"cif": sim.cif,
                                                               "clientCif": "RO9007"})
    expect_eq([c["name"] for c in out["data"]], ["Client 007"], "clientCif")
    st, out, _ = sim.api("GET", "nomenclature/series", query={"cif": sim.cif})
    expect_eq([(s["type"], s["name"], s["next"]) for s in out["data"]],
              [("Factura", "FCT", "0004"), ("Proforma", "PR", "0001"), ("Aviz", "AVZ", "0001")],
              "series")
    st, out, _ = sim.api("GET", "nomenclature/vat_rates", query={"cif": sim.cif})
    expect_eq(out["data"][0], {"name": "Normala", "percent": 21, "default": True}, "VAT")
    st, out, _ = sim.api("POST", "nomenclature/clients", {"cif": sim.cif, "name": "x"})
    expect_eq(st, 404, "no client create endpoint")


def test_webhooks():
    hook = OblioEndpoint()
    sim = OblioSim(webhook_attempts=3, webhook_backoff_ms=50)
    reg = sim.register_webhook(hook.url + "/hooks/oblio?hash=abc", topic="Invoice/*")
    expect(reg["verified"] and reg["webhook"]["id"] == 1, "the handshake passed", reg)
    first = hook.got()[0]
    rid = first["headers"]["x-oblio-request-id"]
    expect_eq(reg["attempt"]["answer"], base64.b64encode(rid.encode()).decode(),
              "answered base64 of X-Oblio-Request-Id")
    expect_eq(first["path"], "/hooks/oblio?hash=abc", "the secret in the URL is kept")
    data = sim.create_doc()
    sim.wait_delivered()
    got = hook.got()
    expect_eq(len(got), 2, "the create was announced")
    note = got[1]["json"]
    expect_eq((note["topic"], note["data"]["number"], note["data"]["id"], note["cif"]),
              ("Invoice/Created", data["number"], doc_id(data["link"]), sim.cif), "payload")
    out = sim.person_change("FCT", "0001", "cancel", wait=True)
    expect_eq([(d["topic"], d["confirmed"]) for d in out["deliveries"]],
              [("Invoice/Canceled", True)], "a person's cancel, confirmed")
    sim.create_doc("proforma", seriesName="PR")
    sim.wait_delivered()
    expect_eq(len(hook.got()), 3, "no Proforma/* for an Invoice/* webhook")
    # A receiver that answers wrong: tried three times, then failed.
    hook.mode = "wrong"
    out = sim.person_change("FCT", "0001", "restore", wait=True)
    d = out["deliveries"][0]
    expect_eq((d["confirmed"], len(d["attempts"]), d["done"]), (False, 3, True), "retried")
    expect_eq(len({a["expected"] for a in d["attempts"]}), 1, "the same request id each time")
    expect_eq(sim.stats()["webhooks"]["failed"], 1, "counted as failed")
    bad = OblioEndpoint(mode=500)
    reg = sim.register_webhook(bad.url, topic="*")
    expect_eq((reg["verified"], reg["webhook"]), (False, None), "a failed handshake keeps none")
    reg = sim.register_webhook(bad.url, topic="stock", force=True)
    expect_eq((reg["verified"], reg["webhook"]["verified"]), (False, False), "forced")
    hook.mode = "echo"
    # The API way: POST /api/webhooks (handshake first), list, delete.
    h2 = OblioEndpoint()
    st, out, _ = sim.api("POST", "webhooks", {"cif": sim.cif, "topic": "Card/Confirmed",
                                              "endpoint": h2.url + "/card"})
    expect_eq((st, out["data"]["topic"]), (200, "Card/Confirmed"), "created by the API")
    wid = out["data"]["id"]
    st, out, _ = sim.api("POST", "webhooks", {"cif": sim.cif, "topic": "stock",
                                              "endpoint": bad.url})
    expect_eq(st, 400, "the API refuses an endpoint that fails the handshake")
    st, out, _ = sim.api("GET", "webhooks", query={"cif": sim.cif, "topic": "Card/Confirmed"})
    expect_eq([w["id"] for w in out["data"]], [wid], "listed by topic")
    sim.create_doc("proforma", seriesName="PR")
    out = sim.card_confirmed("PR", "0002", wait=True)
    expect_eq(out["data"]["invoicedBy"]["number"], "0002", "invoiced by FCT 0002")
    card = [g["json"] for g in h2.got() if g["json"]["data"]]  # not the handshake
    expect_eq(len(card), 1, "Card/Confirmed delivered")
    expect_eq((card[0]["data"]["seriesName"], card[0]["data"]["number"],
               card[0]["data"]["invoicedBy"]["seriesName"]), ("PR", "0002", "FCT"),
              "the WooCommerce plugin's fields")
    st, _, _ = sim.api("DELETE", "webhooks/%d" % wid)
    expect_eq(st, 200, "deleted")
    expect_eq([w["topic"] for w in sim.webhooks()], ["Invoice/*", "stock"], "what is left")
    out = sim.emit("stock", {"productCode": "AB1", "quantity": "3"}, wait=True)
    expect_eq(len(out["deliveries"]), 1, "a stock notification")
    raw = sim.send_raw(hook.url + "/raw", {"x": 1}, request_id="rid-1")
    expect_eq((raw["status"], raw["confirmed"]), (200, True), "send_raw")
    expect(sim.deliveries(), "deliveries are listed")


def test_faults_and_rate():
    sim = OblioSim()
    sim.access_token()
    sim.faults([{"status": 503, "match": {"method": "POST", "path": "/api/docs/*"}, "times": 2}])
    st, out, h = sim.api("POST", "docs/invoice", sim.invoice_body())
    expect_eq((st, out["status"]), (503, 503), "Oblio-shaped injected error")
    sim.faults([{"delay_ms": 600}])
    expect(connection_error(lambda: sim.api("GET", "nomenclature/companies", timeout=0.2))
           is not None, "slow")
    wait_until(lambda: sim.requests()[-1]["status"] == "timeout", 5, "the slow one")
    st, _, _ = sim.api("POST", "docs/invoice", sim.invoice_body())
    expect_eq(st, 503, "the second of times=2")
    expect_eq(sim.documents(), [], "nothing created")
    sim.faults([{"status": 500, "match": {"path": "/api/authorize/token"}}])
    expect_eq(sim.token_request()[0], 500, "the token endpoint can fail too")
    sim.reset()
    expect_eq((sim.stats()["requests"], sim.documents()), (0, []), "reset")
    expect_eq(sim.api("GET", "nomenclature/companies", token=sim.access_token())[0], 401,
              "reset forgets tokens")
    limited = OblioSim(rate=5, burst=3)
    t = limited.access_token()
    codes = [limited.api("GET", "nomenclature/companies", token=t)[0] for _ in range(6)]
    expect(codes[:2] == [200, 200] and 429 in codes, "--rate: 429 past the bucket", codes)
    expect_eq(limited.stats()["rate_limited"], codes.count(429), "counted")
    wait_until(lambda: limited.api("GET", "nomenclature/companies", token=t)[0] == 200, 3,
               "the bucket refills")


if __name__ == "__main__":
    harness.run_tests(globals())
