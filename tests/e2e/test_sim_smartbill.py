#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Self-test of tests/sims/smartbill.py and tests/e2e/smartbill_harness.py
over real sockets. Needs no concord."""

import base64
import http.client
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import wait_until  # noqa: E402
from smartbill_harness import SmartBillSim  # noqa: E402


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


def test_numbering_and_series():
    sim = SmartBillSim(series="f:FCT:41,p:PF:7,c:CH:1")
    st, body, h = sim.api("GET", "series", query={"cif": sim.cif})
    expect_eq(st, 200, "GET /series")
    expect_eq(body["errorText"], "", "no error")
    expect_eq(sorted((s["name"], s["nextNumber"], s["type"]) for s in body["list"]),
              [("CH", "0001", "c"), ("FCT", "0041", "f"), ("PF", "0007", "p")], "series")
    st, body, _ = sim.api("GET", "series", query={"cif": sim.cif, "type": "p"})
    expect_eq([s["name"] for s in body["list"]], ["PF"], "type filter")
    got = [sim.create_invoice() for _ in range(3)]
    expect_eq([(g["series"], g["number"]) for g in got],
              [("FCT", "0041"), ("FCT", "0042"), ("FCT", "0043")], "sequential numbers")
    expect_eq(got[0], {"errorText": "", "message": "", "number": "0041", "series": "FCT",
                       "url": ""}, "the flat answer")
    v2 = sim.create_invoice(path="invoice/v2", paymentUrl="Generate URL")
    expect_eq(v2["number"], "0044", "v2 numbers too")
    expect(isinstance(v2["documentId"], int) and v2["documentUrl"].startswith("https://")
           and v2["documentViewUrl"] and v2["url"].startswith("https://"), "v2 fields", v2)
    expect_eq(sim.next_number("FCT"), "0045", "nextNumber moved")
    invs = sim.invoices()
    expect_eq([i["number"] for i in invs], ["0041", "0042", "0043", "0044"], "control list")
    expect_eq(invs[0]["body"], sim.invoice_body(), "the full body is kept")
    expect_eq((invs[0]["canceled"], invs[0]["total"], invs[0]["paymentStatus"], invs[0]["source"]),
              (False, 121.0, "unpaid", "api"), "invoice state")
    expect("X-RateLimit-Limit".lower() in h and h["x-ratelimit-limit"] == "30", "headers", h)
    sim.assert_clean()


def test_auth_and_cif():
    sim = SmartBillSim()
    st, body, h = sim.api("POST", "invoice", sim.invoice_body(), auth=None)
    expect_eq(st, 401, "no credentials")
    expect("www-authenticate" in h and "401" in body, "a 401 page", h, body)
    st, _, _ = sim.api("GET", "series", query={"cif": sim.cif}, auth=sim.auth(token="nope"))
    expect_eq(st, 401, "wrong token")
    st, _, _ = sim.api("GET", "series", query={"cif": sim.cif}, auth=sim.auth(email="x@y.ro"))
    expect_eq(st, 401, "wrong user")
    st, body, _ = sim.api("POST", "invoice", sim.invoice_body(companyVatCode="RO99999999"))
    expect_eq(st, 401, "another company's CIF")
    expect("Verificati ciful" in body["errorText"], "CIF errorText", body)
    st, body, _ = sim.api("GET", "series", query={"cif": "RO1"})
    expect_eq(st, 401, "wrong CIF in the query")
    st, body, _ = sim.api("GET", "series", query={"cif": "12345678"})
    expect_eq(st, 200, "the CIF without RO is the same company")
    st, body, _ = sim.api("GET", "invoice/paymentstatus", query={"seriesname": "FCT",
                                                                 "number": "0001"})
    expect_eq((st, body["errorText"]), (400, "Cif trebuie specificat."), "CIF missing")
    expect_eq(sim.invoices(), [], "nothing issued")
    stats = sim.stats()
    expect_eq(stats["unauthorized"], 5, "401s counted")
    expect_eq(stats["invalid"], 1, "the missing CIF is a malformed request")


def test_schema_validation():
    sim = SmartBillSim()
    cases = [
        ("price as text", dict(sim.invoice_body(), products=[dict(
            sim.invoice_body()["products"][0], price="121")]), "Date invalide"),
        ("no companyVatCode", {k: v for k, v in sim.invoice_body().items()
                               if k != "companyVatCode"}, "CIF-ul firmei"),
        ("bad date", sim.invoice_body(issueDate="24.01.2026"), "yyyy-MM-dd"),
        ("no unit", dict(sim.invoice_body(), products=[{
            k: v for k, v in sim.invoice_body()["products"][0].items()
            if k != "measuringUnitName"}]), "measuringUnitName trebuie specificat"),
        ("wrapped as in the XML", {"invoice": sim.invoice_body()}, "CIF-ul firmei"),
        ("no products", sim.invoice_body(products=[]), "Factura nu contine produse!"),
        ("no issueDate", {k: v for k, v in sim.invoice_body().items() if k != "issueDate"},
         "issueDate trebuie specificat"),
        ("only a discount", sim.invoice_body(products=[{
            "name": "Reducere", "isDiscount": True, "measuringUnitName": "buc",
            "currency": "RON", "discountType": 1, "discountValue": -5}]), "doar un discount"),
    ]
    for name, body, text in cases:
        st, out, _ = sim.api("POST", "invoice", body)
        expect_eq(st, 400, name)
        expect(text in out["errorText"], name + ": errorText", out)
    st, out, _ = sim.api("POST", "invoice", "{not json", headers={"Content-Type":
                                                                  "application/json"})
    expect_eq(st, 400, "malformed JSON")
    bad = sim.invalid_requests()
    expect_eq(len(bad), len(cases) + 1, "every malformed request is logged invalid")
    expect(any("price" in w for w in bad[0]["invalid"]), "the violation is named", bad[0])
    expect_eq(sim.invoices(), [], "nothing issued")
    expect_eq(sim.next_number("FCT"), "0001", "no number consumed")
    # Booleans as 1/0, unknown fields noted but accepted, a discount line.
    body = sim.invoice_body(isDraft=0, someNewField="x")
    body["client"]["isTaxPayer"] = 1
    body["products"].append({"name": "Reducere", "isDiscount": True, "numberOfItems": 1,
                             "measuringUnitName": "buc", "currency": "RON", "discountType": 2,
                             "discountPercentage": 10})
    st, out, _ = sim.api("POST", "invoice", body)
    expect_eq((st, out["errorText"], out["number"]), (200, "", "0001"), "valid with 1/0")
    log = sim.requests()[-1]
    expect_eq((log["invalid"], log["unknown_fields"]), (None, ["someNewField"]), "logged")
    expect_eq(sim.invoices()[0]["total"], 108.9, "10 % off the line before")
    stats = sim.stats()
    expect_eq((stats["invalid"], stats["unknown_fields"]), (len(cases) + 1, 1), "counted")
    expect(_raises(sim.assert_clean), "assert_clean fails on malformed requests")


def _raises(fn):
    try:
        fn()
    except AssertionError:
        return True
    return False


def test_business_errors():
    sim = SmartBillSim()
    st, out, _ = sim.api("POST", "invoice", sim.invoice_body(seriesName="NOPE"))
    expect_eq((st, out["errorText"]), (200, "Seria nu a fost gasita! Folositi o serie creata "
                                            "in contul de cloud."), "unknown series: 200")
    st, out, _ = sim.api("POST", "invoice", sim.invoice_body(seriesName="PF"))
    expect_eq(out["errorText"][:24], "Seria nu a fost gasita! ", "a proforma series")
    p = dict(sim.invoice_body()["products"][0], taxPercentage=19)
    st, out, _ = sim.api("POST", "invoice", sim.invoice_body(products=[p]))
    expect_eq(out["errorText"], "Cota tva a produsului Abonament nu a fost gasita pe server!",
              "19 % is no longer a rate")
    st, out, _ = sim.api("POST", "invoice", sim.invoice_body(currency="LEI"))
    expect_eq(out["errorText"], "Moneda nu a fost gasita pe server!", "currency")
    for _ in range(3):
        sim.create_invoice()
    q = sim.doc_query("FCT", "0002")
    st, out, _ = sim.api("DELETE", "invoice", query=q)
    expect_eq((st, out["errorText"]), (200, "Documentul cu seria si numarul FCT 0002 nu este "
                                            "ultimul din serie!"), "only the last")
    st, out, _ = sim.api("DELETE", "invoice", query=sim.doc_query("FCT", "0009"))
    expect_eq(out["errorText"], "Factura cu seria si numarul FCT0009 nu a fost gasita!",
              "not found")
    st, out, _ = sim.api("PUT", "invoice/cancel", query=q)
    expect_eq((st, out["errorText"], out["message"]),
              (200, "", "Factura cu seria si numarul FCT0002 a fost anulata cu succes."),
              "cancel")
    st, out, _ = sim.api("PUT", "invoice/cancel", query=q)
    expect(out["errorText"].endswith("este deja anulata."), "cancel twice", out)
    expect([i["canceled"] for i in sim.invoices()] == [False, True, False], "canceled state")
    st, out, _ = sim.api("PUT", "invoice/restore", query=q)
    expect_eq(out["errorText"], "", "restore")
    st, out, _ = sim.api("PUT", "invoice/restore", query=q)
    expect_eq(out["errorText"], "Factura FCT0002 nu necesita restaurare.", "restore twice")
    # The Swagger's key is seriesName, the docs' seriesname: both work.
    st, out, _ = sim.api("DELETE", "invoice", query={"cif": sim.cif, "seriesName": "FCT",
                                                     "number": "0003"})
    expect_eq((st, out["errorText"]), (200, ""), "delete the last")
    expect_eq(sim.next_number("FCT"), "0003", "its number is free again")
    expect_eq(sim.create_invoice()["number"], "0003", "and given again")
    expect_eq(len(sim.invoices(deleted=True)), 4, "the deleted one is listed with deleted=1")
    expect_eq(sim.stats()["business_errors"], 8, "counted")
    sim.settings(business_error_status=400)
    st, out, _ = sim.api("DELETE", "invoice", query=q)
    expect_eq((st, out["errorText"][:12]), (400, "Documentul c"), "as 400 when asked")
    st, out, _ = sim.api("POST", "invoice/reverse", {"companyVatCode": sim.cif,
                                                     "seriesName": "FCT", "number": "0001",
                                                     "issueDate": "2026-02-01"})
    expect_eq((st, out["number"], out["errorText"]), (200, "0004", ""), "storno")
    st, out, _ = sim.api("POST", "invoice/reverse", {"companyVatCode": sim.cif,
                                                     "seriesName": "FCT", "number": "0001"})
    expect_eq((st, out["errorText"], out["documentId"]), (400, "Factura este deja stornata.",
                                                          -1), "storno twice")
    expect_eq(sim.invoices()[-1]["total"], -121.0, "the storno's total")
    sim.assert_clean()


def test_payments():
    sim = SmartBillSim()
    a = sim.create_invoice()["number"]
    b = sim.create_invoice(payment={"value": 121, "type": "Card", "isCash": False})["number"]
    q = sim.doc_query("FCT", a)
    st, out, _ = sim.api("GET", "invoice/paymentstatus", query=q)
    expect_eq(out, {"errorText": "", "message": "", "number": a, "series": "FCT",
                    "invoiceTotalAmount": 121.0, "paidAmount": 0.0, "unpaidAmount": 121.0,
                    "paid": False}, "unpaid")
    st, out, _ = sim.api("GET", "invoice/paymentstatus", query=sim.doc_query("FCT", b))
    expect_eq((out["paid"], out["unpaidAmount"]), (True, 0.0), "paid at issue")
    pay = {"companyVatCode": sim.cif, "issueDate": "2026-01-25", "value": 21,
           "type": "Ordin plata", "isCash": False, "useInvoiceDetails": False,
           "invoicesList": [{"seriesName": "FCT", "number": a}]}
    st, out, _ = sim.api("POST", "payment", pay)
    expect_eq((st, out["errorText"], out["number"]), (200, "", ""), "a bank transfer")
    st, out, _ = sim.api("GET", "invoice/paymentstatus", query=q)
    expect_eq((out["paidAmount"], out["unpaidAmount"], out["paid"]), (21.0, 100.0, False),
              "partly paid")
    st, out, _ = sim.api("POST", "payment", dict(pay, type="Chitanta", value=100,
                                                 seriesName="CH"))
    expect_eq((out["series"], out["number"]), ("CH", "0001"), "a receipt")
    expect_eq(sim.invoices()[0]["paymentStatus"], "paid", "paid in full")
    st, out, _ = sim.api("POST", "payment", dict(pay, type="Bitcoin"))
    expect_eq(out["errorText"], "Tipul incasarii nu a fost gasit!", "unknown type")
    st, out, _ = sim.api("DELETE", "payment/chitanta", query=sim.doc_query("CH", "0001"))
    expect_eq(out["errorText"], "", "delete the receipt")
    st, out, _ = sim.api("DELETE", "payment/v2", query={
        "cif": sim.cif, "paymentType": "Ordin plata", "invoiceSeries": "FCT",
        "invoiceNumber": a})
    expect_eq(out["errorText"], "", "delete the transfer")
    st, out, _ = sim.api("GET", "invoice/paymentstatus", query=q)
    expect_eq(out["paidAmount"], 0.0, "unpaid again")
    sim.api("PUT", "invoice/cancel", query=q)
    st, out, _ = sim.api("POST", "payment", pay)
    expect(out["errorText"].startswith("Factura FCT%s este anulata" % a), "canceled", out)
    sim.person_pay("FCT", a, 50)
    st, out, _ = sim.api("GET", "invoice/paymentstatus", query=q)
    expect_eq(out["paidAmount"], 50.0, "a person's payment shows")
    st, out, _ = sim.api("POST", "payment", {"companyVatCode": sim.cif, "value": 3})
    expect_eq((st, out["errorText"]), (400, "Tipul incasarii trebuie specificat."), "no type")
    st, out, _ = sim.api("GET", "invoice/paymentstatus", query=sim.doc_query("FCT", "0099"))
    expect_eq(out["errorText"], "Factura nu a fost gasita!", "unknown invoice")
    expect_eq(len(sim.invalid_requests()), 1, "one malformed request")


def test_estimates():
    sim = SmartBillSim()
    pf = sim.create_invoice(path="estimate", seriesName="PF")["number"]
    expect_eq(pf, "0001", "a proforma")
    q = sim.doc_query("PF", pf)
    st, out, _ = sim.api("GET", "estimate/invoices", query=q)
    expect_eq((out["areInvoicesCreated"], out["invoices"]), (False, []), "not invoiced")
    st, out, _ = sim.api("POST", "invoice", {"companyVatCode": sim.cif, "issueDate": "2026-01-30",
                                             "seriesName": "FCT", "useEstimateDetails": True,
                                             "estimate": {"seriesName": "PF", "number": pf}})
    expect_eq((st, out["errorText"], out["number"]), (200, "", "0001"), "invoice from it")
    st, out, _ = sim.api("GET", "estimate/invoices", query=q)
    expect_eq((out["areInvoicesCreated"], out["invoices"]),
              (True, [{"series": "FCT", "number": "0001"}]), "invoiced")
    expect_eq(sim.invoices()[0]["total"], 121.0, "the proforma's lines")
    for action, want in (("cancel", True), ("restore", False)):
        st, out, _ = sim.api("PUT", "estimate/" + action, query=q)
        expect_eq(out["errorText"], "", action)
        expect_eq(sim.estimates()[0]["canceled"], want, action + " state")
    st, out, _ = sim.api("PUT", "estimate/restore", query=q)
    expect_eq(out["errorText"], "Proforma PF0001 nu necesita restaurare.", "as the Swagger says")
    sim.create_invoice(path="estimate", seriesName="PF")
    st, out, _ = sim.api("DELETE", "estimate", query=q)
    expect_eq(out["errorText"], "", "any proforma may be deleted")
    st, pdf, h = sim.api("GET", "invoice/pdf", query=sim.doc_query("FCT", "0001"))
    expect_eq((st, h["content-type"]), (200, "application/octet-stream"), "pdf")
    expect(pdf.startswith("%PDF"), "a PDF", pdf)
    sim.assert_clean()


def test_person_issues_and_series_control():
    sim = SmartBillSim()
    sim.create_invoice()
    issued = sim.person_issue("FCT", count=2)
    expect_eq([i["number"] for i in issued], ["0002", "0003"], "someone used the UI")
    expect_eq(sim.create_invoice()["number"], "0004", "concord's next number skips theirs")
    st, out, _ = sim.api("DELETE", "invoice", query=sim.doc_query("FCT", "0003"))
    expect(out["errorText"].endswith("nu este ultimul din serie!"), "theirs is not last", out)
    expect_eq([i["source"] for i in sim.invoices()], ["api", "person", "person", "api"],
              "who issued what")
    sim.set_series("FCT", next_number=3)
    st, out, _ = sim.api("POST", "invoice", sim.invoice_body())
    expect(out["errorText"].startswith("Numarul FCT 0003 este deja alocat"), "collision", out)
    expect_eq(sim.next_number("FCT"), "0003", "a refused call consumes nothing")
    sim.set_series("FCT", next_number=10)
    expect_eq(sim.create_invoice()["number"], "0010", "set forward")
    sim.set_series("AVZ", next_number=5, type="f")
    expect_eq(sim.create_invoice(seriesName="AVZ")["number"], "0005", "a new series")
    sim.person_cancel("FCT", "0010")
    expect(sim.invoices(series="FCT")[-1]["canceled"], "a person cancels")
    sim.person_delete("FCT", "0002")
    expect_eq([i["number"] for i in sim.invoices(series="FCT")], ["0001", "0003", "0004", "0010"],
              "a person deletes any")
    sim.reset()
    expect_eq((sim.invoices(), sim.next_number("FCT"), sim.stats()["requests"]),
              ([], "0001", 0), "reset")


def test_rate_limit_sliding():
    sim = SmartBillSim(rate_limit=5, rate_window_s=1, block_s=1.2)
    expect_eq(sim.stats()["rate_limit"]["mode"], "sliding", "the default mode")
    t0 = time.monotonic()
    answers = [sim.api("GET", "series", query={"cif": sim.cif}) for _ in range(5)]
    expect(time.monotonic() - t0 < 0.9, "five calls inside the window")
    expect_eq([a[2]["x-ratelimit-remaining"] for a in answers], ["4", "3", "2", "1", "0"],
              "X-RateLimit-Remaining")
    reset_at = int(answers[0][2]["x-ratelimit-reset"])
    expect(time.time() - 1 <= reset_at <= time.time() + 2, "X-RateLimit-Reset", reset_at)
    st, out, _ = sim.api("GET", "series", query={"cif": sim.cif})
    expect_eq((st, out["errorText"][:33]), (403, "Utilizatorul a fost blocat pentru"),
              "the sixth blocks")
    rl = sim.stats()["rate_limit"]
    expect((rl["blocked_ever"], rl["blocks"], rl["blocked_now"], rl["max_in_window"])
           == (True, 1, True, 5), "stats", rl)
    st, _, _ = sim.api("POST", "invoice", sim.invoice_body())
    expect_eq(st, 403, "blocked for every call")
    expect_eq(sim.invoices(), [], "nothing applied while blocked")
    wait_until(lambda: sim.api("GET", "series", query={"cif": sim.cif})[0] == 200, 5,
               "the block to end")
    expect(not sim.stats()["rate_limit"]["blocked_now"], "unblocked")
    expect(_raises(sim.assert_clean), "assert_clean reports the block")
    # A client that keeps to 5 calls in any 1 s span is never blocked.
    sim.rate_limit(limit=5, window_s=1, block_s=1)
    sim.reset()
    t0 = time.monotonic()
    for i in range(12):
        due = t0 + i * 0.25
        time.sleep(max(0.0, due - time.monotonic()))
        st, _, _ = sim.api("GET", "series", query={"cif": sim.cif})
        expect_eq(st, 200, "paced call %d" % i)
    rl = sim.stats()["rate_limit"]
    expect(not rl["blocked_ever"] and rl["max_in_window"] in (4, 5), "paced", rl)
    # Five calls, a pause, then five more inside one second of the first
    # batch's last: the sliding window sees up to ten.
    sim.reset()
    for _ in range(5):
        sim.api("GET", "series", query={"cif": sim.cif})
    time.sleep(0.5)
    st, _, _ = sim.api("GET", "series", query={"cif": sim.cif})
    expect_eq(st, 403, "the sixth within 1 s of the first")
    sim.unblock()
    expect_eq(sim.api("GET", "series", query={"cif": sim.cif})[0], 200, "unblock")


def test_rate_limit_fixed_and_defaults():
    sim = SmartBillSim()
    rl = sim.stats()["rate_limit"]
    expect_eq((rl["limit"], rl["window_s"], rl["block_s"]), (30, 10.0, 600.0),
              "the reference's numbers")
    sim.rate_limit(limit=3, window_s=0.6, block_s=30, mode="fixed")
    for _ in range(3):
        expect_eq(sim.api("GET", "tax", query={"cif": sim.cif})[0], 200, "within the window")
    time.sleep(0.65)
    for _ in range(3):
        expect_eq(sim.api("GET", "tax", query={"cif": sim.cif})[0], 200, "a new fixed window")
    st, _, _ = sim.api("GET", "tax", query={"cif": sim.cif})
    expect_eq(st, 403, "the fourth in a window")
    time.sleep(0.7)
    expect_eq(sim.api("GET", "tax", query={"cif": sim.cif})[0], 403,
              "the block outlasts the window (block_s)")
    sim.rate_limit(limit=0)
    expect(all(sim.api("GET", "tax", query={"cif": sim.cif})[0] == 200 for _ in range(40)),
           "limit 0: off")
    st, out, h = sim.api("GET", "tax", query={"cif": sim.cif})
    expect("x-ratelimit-limit" not in h, "no headers when off", h)
    expect_eq([t["name"] for t in out["taxes"]][:2], ["Normala", "Redusa"], "taxes")


def test_faults():
    sim = SmartBillSim()
    sim.faults([{"status": 503, "match": {"method": "POST", "path": "/SBORO/api/invoice*"}}])
    expect_eq(sim.api("GET", "series", query={"cif": sim.cif})[0], 200, "a GET passes")
    st, body, h = sim.api("POST", "invoice/v2", sim.invoice_body())
    expect_eq((st, h.get("content-type")), (503, "text/html"), "the proxy's 503 page")
    expect("x-ratelimit-limit" in h, "limit headers on faults too", h)
    expect_eq(sim.next_number("FCT"), "0001", "nothing issued")
    sim.faults([{"reset": "before", "match": {"path": "/SBORO/api/invoice"}}])
    expect(connection_error(lambda: sim.api("POST", "invoice", sim.invoice_body()))
           is not None, "reset before")
    expect_eq(sim.next_number("FCT"), "0001", "nothing applied")
    sim.faults([{"reset": "after", "match": {"method": "POST"}}])
    expect(connection_error(lambda: sim.api("POST", "invoice", sim.invoice_body()))
           is not None, "the answer is lost")
    expect_eq(sim.next_number("FCT"), "0002", "applied: the number moved (the reconcile hint)")
    expect_eq(sim.invoices()[0]["number"], "0001", "the invoice exists")
    sim.faults([{"delay_ms": 700, "apply": "first"}])
    expect(connection_error(lambda: sim.api("POST", "invoice", sim.invoice_body(),
                                            timeout=0.3)) is not None, "timed out")
    wait_until(lambda: sim.requests()[-1]["status"] == "timeout", 5, "the slow request")
    expect_eq([(r["status"], r["applied"]) for r in sim.requests()[-3:]],
              [("reset", False), ("lost", True), ("timeout", True)], "logged outcomes")
    expect_eq(len(sim.invoices()), 2, "the slow one was applied")
    sim.faults([{"status": 500, "apply": "first", "match": {"method": "POST"}}])
    st, _, _ = sim.api("POST", "invoice", sim.invoice_body())
    expect_eq((st, len(sim.invoices()), sim.requests()[-1]["applied"]), (500, 3, True),
              "a 500 after the invoice was issued")
    sim.faults([{"status": 403, "after": 1, "times": 2}, {"status": 429}])
    got = [sim.api("GET", "series", query={"cif": sim.cif})[0] for _ in range(4)]
    expect_eq(got, [429, 403, 403, 200], "after / times / order")
    expect_eq(sim.stats()["rate_limit"]["blocked_ever"], False,
              "an injected 403 is not the limiter's block")
    sim.random(seed=3, rate=1.0, kinds=["500"])
    st, body, _ = sim.api("GET", "series", query={"cif": sim.cif})
    expect_eq((st, "injected" in body["errorText"]), (500, True), "random 500")
    sim.random(seed=3, rate=0)
    expect_eq(sim.stats()["faults"], 9, "faults counted")
    expect_eq(sim._ctl("GET", "faults"), [], "queue empty")


def test_no_read_back_no_webhooks():
    sim = SmartBillSim()
    sim.create_invoice()
    for method, path in (("GET", "invoice"), ("PUT", "invoice"), ("GET", "estimate")):
        st, _, _ = sim.api(method, path, query={"cif": sim.cif})
        expect_eq(st, 405, "%s /%s cannot read an invoice back" % (method, path))
    for path in ("invoices", "clients", "webhooks", "invoice/list"):
        st, _, _ = sim.api("GET", path, query={"cif": sim.cif})
        expect_eq(st, 404, "no /" + path)
    st, out, _ = sim.api("POST", "document/send", {
        "companyVatCode": sim.cif, "seriesName": "FCT", "number": "0001", "type": "factura",
        "subject": base64.b64encode(b"Factura").decode(), "to": "ada@example.ro",
        "bodyText": base64.b64encode(b"Buna ziua").decode()})
    expect_eq(out, {"status": {"code": "0", "message": "Documentul a fost trimis cu succes."}},
              "email")
    st, out, _ = sim.api("POST", "document/send", {
        "companyVatCode": sim.cif, "seriesName": "FCT", "number": "0001", "subject": "plain!"})
    expect_eq(out["status"]["code"], "1", "subject must be base64")
    expect_eq(sim.stats()["emails"], 1, "one email")


if __name__ == "__main__":
    harness.run_tests(globals())
