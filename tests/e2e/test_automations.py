#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Workflow automations (the Workflow issue): when a record changes like
this, do that, durably and once. The four examples of the issue against
the simulators (a Stripe payment activates an account and marks the order
paid; a completed booking becomes exactly one SmartBill invoice through
repeated webhooks and kill -9; a signed document updates its project; a
cancelled appointment notifies staff and releases its slot), then a wait
that survives a restart and one its cancelled trigger stops, a loop cut
and reported, and a failed action retried from the inbox. Every config
here is a recipe of docs/automations.md."""

import json
import os
import re
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Concord, Listener, Sim, wait_until  # noqa: E402
from smartbill_harness import SmartBillSim  # noqa: E402
from stripe_harness import StripeSim  # noqa: E402
from test_alerts import SmtpSink  # noqa: E402
import test_foundation as tf  # noqa: E402

WHSEC = "whsec_concord_automations"
SECRET = "app-webhook-secret"
TMP = "concord-auto-e2e-"  # its own temp dirs


def runs(c, automation=None):
    return c.cli_json("runs", *([automation] if automation else []))


def run_states(c, automation=None):
    return sorted(r["state"] for r in runs(c, automation))


def failed(c):
    return c.cli_json("failed")


# --- 1. A Stripe payment activates the account and marks the order paid ----

STRIPE = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=2000
log: {level: debug, format: json}
systems:
  stripe:
    kind: stripe
    base_url: http://127.0.0.1:{stripe_port}
    api_key: env:STRIPE_KEY
    webhook_secret: env:STRIPE_WHSEC
    collections:
      payment_intents:
        model: order
        map_in: {number: metadata.order, account: metadata.account, payment: status}
  app:
    kind: http
    base_url: http://127.0.0.1:{app_port}
    timeout_ms: 1000
    retry: {delays: [50, 100, 200]}
    collections:
      orders:
        model: order
        map_out: {number: number, account: account, status: status}
        create: POST /orders
        update: PUT /orders/{id}
  accounts:
    kind: http
    base_url: http://127.0.0.1:{accounts_port}
    timeout_ms: 1000
    retry: {delays: [50, 100, 200]}
models:
  order:
    fields: {number: string, account: string, payment: string, status: string}
syncs:
  orders:
    model: order
    origin: [stripe]
    collections: [stripe.payment_intents, app.orders]
automations:
  activate_account:
    model: order
    on: "payment: * -> succeeded"
    actions:
      - http:
          system: accounts
          request: PATCH /accounts/{new.account}
          body: {active: true, activated_by: {path: new.number}}
          idempotency_header: Idempotency-Key
      - set: {status: paid}
"""


def stripe_setup():
    port = harness.free_port()
    stripe = StripeSim(seed=7, rate=0, webhook_url="http://127.0.0.1:%d/webhooks/stripe" % port,
                       webhook_secret=WHSEC, webhook_backoff_ms=100)
    app = Sim(resource="orders", id_prefix="O")
    accounts = Sim(resource="accounts")
    c = Concord(STRIPE, values={"port": port, "stripe_port": stripe.port, "app_port": app.port,
                                "accounts_port": accounts.port},
                env={"STRIPE_KEY": stripe.api_key, "STRIPE_WHSEC": WHSEC}, tmp_prefix=TMP)
    c.start()
    return stripe, app, accounts, c


def test_a_stripe_payment_activates_the_account_and_marks_the_order_paid():
    stripe, app, accounts, c = stripe_setup()
    accounts.put("acct_1", {"name": "Ada", "active": False})
    # payment_intent.created, then payment_intent.succeeded: signed webhooks.
    stripe.payment_intent(amount=4200, currency="ron", status="succeeded",
                          metadata={"order": "o-1", "account": "acct_1"})
    wait_until(lambda: accounts.records()["acct_1"].get("active") is True, 10,
               "the account activated")
    wait_until(lambda: [o for o in app.records().values()
                        if o.get("number") == "o-1" and o.get("status") == "paid"], 10,
               "the order marked paid in the app")
    c.wait_settled()
    patches = accounts.requests("PATCH")
    assert len(patches) == 1, patches
    assert patches[0]["body"] == {"active": True, "activated_by": "o-1"}, patches[0]
    # The key carries the store's own part: a new store counts runs from 1
    # again and must not send an old store's concord-run-1-0.
    key = harness.header(patches[0], "Idempotency-Key")
    assert re.fullmatch(r"concord-run-[0-9a-f]{10}-\d+-\d+", key), key
    [run] = runs(c, "activate_account")
    assert run["state"] == "done" and run["event"] == "updated", run
    assert run["source"] == "stripe.payment_intents", run
    assert [(a["action"], a["state"]) for a in run["actions"]] == [("http", "ok"), ("set", "ok")]
    assert "HTTP 200" in run["actions"][0]["outcome"], run
    # explain: which automation set which field.
    fields = {f["field"]: f for f in c.cli_json("explain", str(run["record"]))["fields"]}
    assert fields["status"]["source"] == "automation:activate_account", fields["status"]
    assert fields["status"]["rule"].startswith("automation activate_account, run %d, action 2"
                                               % run["id"]), fields["status"]
    assert fields["payment"]["source"] == "stripe.payment_intents", fields["payment"]
    # The admin API serves the same runs.
    assert c.cli_json("runs", "--record", run["record"])[0]["id"] == run["id"]
    assert failed(c) == []


def test_a_failed_action_is_retried_from_the_inbox():
    stripe, app, accounts, c = stripe_setup()
    # No such account yet: the PATCH is answered 404, a permanent failure.
    stripe.payment_intent(amount=990, currency="ron", status="succeeded",
                          metadata={"order": "o-9", "account": "acct_9"})
    entry = wait_until(lambda: [e for e in failed(c) if "activate_account" in e["reason"]], 10,
                       "the failed action in the inbox")[0]
    assert entry["http_status"] == 404 and entry["system"] == "accounts", entry
    [run] = runs(c, "activate_account")
    assert run["state"] == "failed" and run["actions"][0]["state"] == "failed", run
    assert run["actions"][0]["inbox"] == entry["id"], run
    assert run["actions"][1]["state"] == "not run", run
    # The order is not marked paid: the run stopped at its failed action.
    assert not [o for o in app.records().values() if o.get("status") == "paid"]
    # Someone makes the account; a retry from the inbox runs the rest.
    accounts.put("acct_9", {"name": "Grace", "active": False})
    c.cli("retry", str(entry["id"]))
    wait_until(lambda: run_states(c, "activate_account") == ["done"], 10, "the run done")
    wait_until(lambda: accounts.records()["acct_9"].get("active") is True, 10, "the activation")
    wait_until(lambda: [o for o in app.records().values() if o.get("status") == "paid"], 10,
               "the order paid")
    [run] = runs(c, "activate_account")
    assert run["actions"][0]["state"] == "ok" and run["actions"][0]["attempts"] == 2, run
    assert failed(c) == []


# --- 2. A completed booking becomes exactly one SmartBill invoice ----------

BOOKINGS = """
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
      delivery_id_header: X-Delivery
      signature: {secret: env:SHOP_SECRET, header: X-Shop-Signature}
    collections:
      bookings:
        model: booking
        map_in: {code: code, status: status, client: client, email: email, total: total}
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
        model: invoice
        map_out:
          seriesName: {const: FCT}
          issueDate: {const: "2026-01-24"}
          currency: {const: RON}
          client:
            jq: '{name: .client, email: .email, address: "Str. Lunga 1", city: "Cluj-Napoca",
                  county: "Cluj", country: "Romania", vatCode: "0000000000000",
                  isTaxPayer: false, saveToDb: false}'
          products:
            jq: '[{name: ("Booking " + .booking), code: .booking, measuringUnitName: "buc",
                   currency: "RON", quantity: 1, price: (.total | tonumber), isTaxIncluded: true,
                   taxName: "Normala", taxPercentage: 21, isService: true, saveToDb: false}]'
models:
  booking:
    fields: {code: string, status: string, client: string, email: string, total: decimal}
  invoice:
    fields: {booking: string, client: string, email: string, total: decimal}
syncs:
  bookings:
    model: booking
    origin: [shop]
    collections: [shop.bookings]
  invoices:
    model: invoice
    origin: [smartbill]
    collections: [smartbill.invoices]
automations:
  invoice_completed_booking:
    model: booking
    on: "status: * -> completed"
    if: '.new.total != null'
    actions:
      - create:
          model: invoice
          fields:
            booking: {path: new.code}
            client: {path: new.client}
            email: {path: new.email}
            total: {path: new.total}
"""


def api_invoices(sb):
    return [i for i in sb.invoices() if i.get("source") == "api"]


def test_a_completed_booking_creates_exactly_one_invoice_through_repeats_and_kill_9():
    port = harness.free_port()
    sb = SmartBillSim()
    shop = Sim(resource="bookings", id_prefix="B",
               webhook_url="http://127.0.0.1:%d/webhooks/shop" % port, webhook_secret=SECRET,
               signature_header="X-Shop-Signature", delivery_header="X-Delivery")
    c = Concord(BOOKINGS, values={"port": port, "shop_port": shop.port, "sb_port": sb.port,
                                  "email": sb.email, "cif": sb.cif},
                env={"SB_TOKEN": sb.token, "SHOP_SECRET": SECRET}, tmp_prefix=TMP)
    c.start()
    booking = {"code": "BK-7", "status": "confirmed", "client": "Ada SRL",
               "email": "ada@example.ro", "total": "121.00"}
    shop.change("b1", booking)
    c.wait_settled()
    assert runs(c) == []
    # SmartBill is held, so the invoice waits in the queue across the kills.
    c.cli("pause", "smartbill")
    first = shop.change("b1", {"status": "completed"})
    assert first["status"] == 202, first
    c.kill9()  # at once: the change was acknowledged, maybe not processed yet
    c.start()
    again = shop.resend(first["delivery_id"])  # the same delivery: a duplicate
    third = shop.change("b1", {"status": "completed"})  # a new delivery, the same state
    assert again["status"] in (200, 202) and third["status"] == 202, (again, third)
    wait_until(lambda: run_states(c) == ["done"], 10, "the run done")
    wait_until(lambda: [s for s in c.cli_json("status")["systems"]
                        if s["name"] == "smartbill" and s["backlog"] == 1], 10,
               "the invoice queued for SmartBill")
    c.kill9()  # again, with the invoice queued
    c.start()
    c.cli("resume", "smartbill")
    inv = wait_until(lambda: api_invoices(sb), 15, "the invoice in SmartBill")
    c.wait_settled()
    inv = api_invoices(sb)
    assert len(inv) == 1, inv
    assert inv[0]["body"]["products"][0]["code"] == "BK-7", inv[0]
    posts = [r for r in sb.requests("POST") if r["path"].split("?")[0] == "/SBORO/api/invoice"]
    assert len(posts) == 1, posts
    [run] = runs(c, "invoice_completed_booking")
    assert run["state"] == "done" and run["actions"][0]["state"] == "ok", run
    assert run["actions"][0]["outcome"].startswith("created invoice record"), run
    assert failed(c) == []
    sb.assert_clean()


# --- 3. A signed document updates its project -------------------------------

DOCUMENTS = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=2000
log: {level: debug, format: json}
systems:
  esign:
    kind: http
    base_url: http://127.0.0.1:{esign_port}
    webhook:
      path: /webhooks/esign
      signature: {secret: env:APP_SECRET, header: X-Signature}
    collections:
      documents:
        model: document
        map_in: {title: title, status: status, project: project_code}
  pm:
    kind: http
    base_url: http://127.0.0.1:{pm_port}
    timeout_ms: 1000
    retry: {delays: [50, 100, 200]}
    webhook:
      path: /webhooks/pm
      signature: {secret: env:APP_SECRET, header: X-Signature}
    collections:
      projects:
        model: project
        map_in: {code: code, name: name, stage: stage}
        map_out: {code: code, name: name, stage: stage, contract: contract}
        update: PUT /projects/{id}
models:
  document:
    fields: {title: string, status: string, project: string}
  project:
    fields: {code: string, name: string, stage: string, contract: string}
syncs:
  documents:
    model: document
    origin: [esign]
    collections: [esign.documents]
  projects:
    model: project
    origin: [pm]
    collections: [pm.projects]
    automations: [stage, contract]   # automations may set these fields, and only these
automations:
  contract_signed:
    model: document
    on: "status: sent | viewed -> signed"
    actions:
      - update:
          model: project
          match: {code: {path: new.project}}
          fields:
            stage: {const: contracted}
            contract: {jq: '"\\(.new.title) signed"'}
"""


def test_a_signed_document_updates_its_project():
    port = harness.free_port()
    pm = Sim(resource="projects", id_prefix="P",
             webhook_url="http://127.0.0.1:%d/webhooks/pm" % port, webhook_secret=SECRET,
             signature_header="X-Signature")
    esign = Sim(resource="documents", id_prefix="D",
                webhook_url="http://127.0.0.1:%d/webhooks/esign" % port, webhook_secret=SECRET,
                signature_header="X-Signature")
    c = Concord(DOCUMENTS, values={"port": port, "esign_port": esign.port, "pm_port": pm.port},
                env={"APP_SECRET": SECRET}, tmp_prefix=TMP)
    c.start()
    pm.change("p1", {"code": "PRJ-1", "name": "Bridge", "stage": "proposal"})
    pm.change("p2", {"code": "PRJ-2", "name": "Tunnel", "stage": "proposal"})
    esign.change("d1", {"title": "Bridge contract", "status": "sent", "project_code": "PRJ-1"})
    c.wait_settled()
    assert runs(c) == []
    # The plan shows which automation a pending change would start: the
    # daemon is down, a person's correction waits in the journal.
    c.stop()
    doc = 3  # after the two projects
    assert c.cli_json("explain", str(doc))["model"] == "document"
    c.cli("edit", "--record", str(doc), stdin=json.dumps({"status": "signed"}))
    plan = c.cli_json("plan")
    assert [(r["automation"], r["record"], r["actions"]) for r in plan["automations"]] == \
        [("contract_signed", doc, "update")], plan
    _, text, _ = c.cli("plan")
    assert "automations that would run:" in text and "contract_signed" in text, text
    assert runs(c) == []  # the plan changed nothing
    c.start()
    wait_until(lambda: pm.records()["p1"].get("stage") == "contracted", 10, "the project updated")
    c.wait_settled()
    assert pm.records()["p1"]["contract"] == "Bridge contract signed", pm.records()["p1"]
    assert pm.records()["p2"]["stage"] == "proposal", pm.records()["p2"]  # not its document
    [run] = runs(c, "contract_signed")
    assert run["state"] == "done" and run["source"].startswith("operator:"), run
    assert run["actions"][0]["outcome"] == "record 1: changed", run
    fields = {f["field"]: f for f in c.cli_json("explain", "1")["fields"]}
    assert fields["stage"]["source"] == "automation:contract_signed", fields
    assert "contract_signed: stage <- a constant" in fields["stage"]["mapping"], fields
    # A document signed straight from "draft" is not the transition.
    esign.change("d2", {"title": "Tunnel contract", "status": "draft", "project_code": "PRJ-2"})
    esign.change("d2", {"status": "signed"})
    c.wait_settled()
    assert len(runs(c, "contract_signed")) == 1 and pm.records()["p2"]["stage"] == "proposal"
    assert failed(c) == []


def test_an_update_by_record_id_leaves_a_record_of_another_model_alone():
    # update's record: names a record by id; an id that is a record of
    # another model (an external number that looks like one, here the
    # document's own id) had the project's fields written onto a document.
    port = harness.free_port()
    pm = Sim(resource="projects", id_prefix="P",
             webhook_url="http://127.0.0.1:%d/webhooks/pm" % port, webhook_secret=SECRET,
             signature_header="X-Signature")
    esign = Sim(resource="documents", id_prefix="D",
                webhook_url="http://127.0.0.1:%d/webhooks/esign" % port, webhook_secret=SECRET,
                signature_header="X-Signature")
    text = DOCUMENTS.replace("match: {code: {path: new.project}}", "record: {path: new.project}")
    c = Concord(text, values={"port": port, "esign_port": esign.port, "pm_port": pm.port},
                env={"APP_SECRET": SECRET}, tmp_prefix=TMP)
    c.start()
    pm.change("p1", {"code": "PRJ-1", "name": "Bridge", "stage": "proposal"})
    esign.change("d1", {"title": "Bridge contract", "status": "sent", "project_code": "2"})
    c.wait_settled()
    assert c.cli_json("explain", "2")["model"] == "document"
    esign.change("d1", {"status": "signed"})
    wait_until(lambda: [r for r in runs(c, "contract_signed")
                        if r["actions"][0]["state"] == "ok"], 10, "the update taken up")
    c.wait_settled()
    [run] = runs(c, "contract_signed")
    assert "not a project" in run["actions"][0]["outcome"], run
    fields = {f["field"] for f in c.cli_json("explain", "2")["fields"]}
    assert "stage" not in fields and "contract" not in fields, fields
    assert pm.records()["p1"]["stage"] == "proposal"


def test_an_update_by_match_finds_a_record_past_the_first_100_holding_its_first_field():
    # update's match on two fields read the first 100 records holding the
    # first field's value and filtered those on the second: the project
    # that held both, the 102nd with that code, was missed, with no
    # update and nothing in the inbox.
    port = harness.free_port()
    pm = Sim(resource="projects", id_prefix="P",
             webhook_url="http://127.0.0.1:%d/webhooks/pm" % port, webhook_secret=SECRET,
             signature_header="X-Signature")
    esign = Sim(resource="documents", id_prefix="D",
                webhook_url="http://127.0.0.1:%d/webhooks/esign" % port, webhook_secret=SECRET,
                signature_header="X-Signature")
    text = DOCUMENTS.replace("match: {code: {path: new.project}}",
                             "match: {code: {path: new.project}, name: {path: new.title}}")
    c = Concord(text, values={"port": port, "esign_port": esign.port, "pm_port": pm.port},
                env={"APP_SECRET": SECRET}, tmp_prefix=TMP)
    c.start()
    for i in range(102):
        pm.change("p%d" % i, {"code": "PRJ-BIG", "name": "Part %d" % i, "stage": "proposal"})
    c.wait_settled()
    esign.change("d1", {"title": "Part 101", "status": "sent", "project_code": "PRJ-BIG"})
    esign.change("d1", {"status": "signed"})
    wait_until(lambda: pm.records()["p101"].get("stage") == "contracted", 10,
               "the 102nd project updated")
    c.wait_settled()
    [run] = runs(c, "contract_signed")
    assert run["state"] == "done" and run["actions"][0]["outcome"] == "record 102: changed", run
    assert [k for k, v in pm.records().items() if v.get("stage") == "contracted"] == ["p101"]
    assert failed(c) == []


# --- 4. A cancelled appointment notifies staff and releases the slot --------

APPOINTMENTS = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=2000
log: {level: debug, format: json}
systems:
  calendar:
    kind: http
    base_url: http://127.0.0.1:{calendar_port}
    timeout_ms: 1000
    retry: {delays: [50, 100, 200]}
    webhook:
      path: /webhooks/calendar
      signature: {secret: env:APP_SECRET, header: X-Signature}
    collections:
      appointments:
        model: appointment
        map_in: {title: title, status: status, start: start, slot: slot, staff: staff}
models:
  appointment:
    fields: {title: string, status: string, start: timestamp, slot: string, staff: string}
syncs:
  appointments:
    model: appointment
    origin: [calendar]
    collections: [calendar.appointments]
automations:
  cancelled_appointment:
    model: appointment
    on: {status: "* -> cancelled"}
    actions:
      - notify:
          webhook: env:STAFF_WEBHOOK
          text: "{new.title} with {new.staff} was cancelled: slot {new.slot} is free again"
      - http:
          system: calendar
          request: PATCH /slots/{new.slot}
          body: {booked: false, appointment: {const: null}}
  reminder:
    model: appointment
    on: "status: * -> confirmed"
    actions:
      - wait: {until: start, before: 24h}
      - notify:
          webhook: env:STAFF_WEBHOOK
          email:
            to: [desk@example.com]
            subject: "Tomorrow: {current.title}"
            url: smtp://127.0.0.1:{smtp_port}
            from: concord@example.com
          text: "Reminder: {current.title} at {current.start}"
"""


def calendar_setup():
    port = harness.free_port()
    staff, smtp = Listener(), SmtpSink()
    calendar = Sim(resource="slots", webhook_url="http://127.0.0.1:%d/webhooks/calendar" % port,
                   webhook_secret=SECRET, signature_header="X-Signature")
    c = Concord(APPOINTMENTS, values={"port": port, "calendar_port": calendar.port,
                                      "smtp_port": smtp.port},
                env={"APP_SECRET": SECRET, "STAFF_WEBHOOK": staff.url + "/hooks/staff"},
                tmp_prefix=TMP)
    c.start()
    return staff, smtp, calendar, c


def messages(staff):
    return [json.loads(r["body"])["text"] for r in staff.got()]


def iso(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_a_cancelled_appointment_notifies_staff_once_and_releases_the_slot():
    staff, smtp, calendar, c = calendar_setup()
    calendar.put("s1", {"room": "Room 2", "booked": True, "appointment": "a1"})
    start = time.time() + 3 * 86400  # its reminder waits two days
    calendar.change("a1", {"title": "Check-up", "status": "confirmed", "start": iso(start),
                           "slot": "s1", "staff": "Dr. Pop"})
    wait_until(lambda: run_states(c, "reminder") == ["waiting"], 10, "the reminder waiting")
    calendar.change("a1", {"status": "cancelled"})
    wait_until(lambda: run_states(c, "cancelled_appointment") == ["done"], 10, "the run done")
    got = messages(staff)
    assert got == ["Check-up with Dr. Pop was cancelled: slot s1 is free again"], got
    assert calendar.records()["s1"]["booked"] is False, calendar.records()["s1"]
    assert calendar.records()["s1"]["appointment"] is None
    assert smtp.mails == []  # the reminder never went
    # The reminder of the cancelled appointment will not be sent.
    [reminder] = runs(c, "reminder")
    assert reminder["state"] == "cancelled", reminder
    assert "no longer holds" in reminder["note"], reminder
    # A repeated webhook of the cancellation changes nothing and runs nothing.
    calendar.change("a1", {"status": "cancelled"})
    c.wait_settled()
    assert len(messages(staff)) == 1 and len(runs(c, "cancelled_appointment")) == 1
    assert failed(c) == []


def test_a_wait_survives_a_restart_fires_once_and_a_cancelled_trigger_stops_it():
    staff, smtp, calendar, c = calendar_setup()
    due = time.time() + 4  # 24 h before a start 24 h and 4 s away
    for slot in ("s-a2", "s-a3"):
        calendar.put(slot, {"booked": True})
    for a in ("a2", "a3"):
        calendar.change(a, {"title": "Visit " + a, "status": "confirmed",
                            "start": iso(due + 86400), "slot": "s-" + a, "staff": "Dr. Ene"})
    wait_until(lambda: run_states(c, "reminder") == ["waiting", "waiting"], 10, "two waits")
    calendar.change("a3", {"status": "cancelled"})  # a3's reminder is not sent
    wait_until(lambda: run_states(c, "reminder") == ["cancelled", "waiting"], 10,
               "a3's reminder cancelled")
    c.kill9()
    c.start()  # the wait is in the store, not in memory
    wait_until(lambda: [m for m in messages(staff) if m.startswith("Reminder")], 15,
               "the reminder")
    assert time.time() >= due
    wait_until(lambda: run_states(c, "reminder") == ["cancelled", "done"], 10, "the run done")
    reminders = [m for m in messages(staff) if m.startswith("Reminder")]
    assert len(reminders) == 1 and reminders[0].startswith("Reminder: Visit a2 at "), reminders
    assert len(smtp.mails) == 1, smtp.mails  # and one e-mail, over SMTP
    frm, to, data = smtp.mails[0]
    assert to == ["<desk@example.com>"] and "Subject: Tomorrow: Visit a2" in data, smtp.mails
    # A restart after it fired fires nothing more.
    c.stop()
    c.start()
    c.wait_settled()
    assert len([m for m in messages(staff) if m.startswith("Reminder")]) == 1
    assert failed(c) == []


# --- 5. A loop is cut and reported ----------------------------------------

LOOP = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=2000
log: {level: debug, format: json}
automation_depth: 3
systems:
  desk:
    kind: http
    base_url: http://127.0.0.1:{desk_port}
    webhook:
      path: /webhooks/desk
      signature: {secret: env:APP_SECRET, header: X-Signature}
    collections:
      tickets:
        model: ticket
        map_in: {title: title, state: state}
models:
  ticket:
    fields: {title: string, state: string}
syncs:
  tickets:
    model: ticket
    origin: [desk]
    collections: [desk.tickets]
automations:
  ping:
    model: ticket
    on: "state: * -> open"
    actions: [{set: {state: waiting}}]
  pong:
    model: ticket
    on: "state: * -> waiting"
    actions: [{set: {state: open}}]
"""


def test_an_automation_loop_is_cut_and_reported():
    port = harness.free_port()
    desk = Sim(resource="tickets", webhook_url="http://127.0.0.1:%d/webhooks/desk" % port,
               webhook_secret=SECRET, signature_header="X-Signature")
    c = Concord(LOOP, values={"port": port, "desk_port": desk.port}, env={"APP_SECRET": SECRET},
                tmp_prefix=TMP)
    c.start()
    desk.change("t1", {"title": "Printer", "state": "open"})
    cut = wait_until(lambda: [r for r in runs(c) if r["state"] == "cut"], 15, "the cut run")[0]
    assert cut["depth"] == 4 and cut["chain"] == ["ping", "pong", "ping", "pong", "ping"], cut
    entry = wait_until(lambda: [e for e in failed(c) if "loop cut" in e["reason"]], 10,
                       "the cut in the inbox")[0]
    assert "ping -> pong -> ping -> pong" in entry["reason"], entry
    assert entry["record"] == 1, entry
    done = [r for r in runs(c) if r["state"] == "done"]
    assert len(done) == 4 and [r["depth"] for r in reversed(done)] == [0, 1, 2, 3], done
    assert "automation loop cut" in c.log_text()
    status, metrics, _ = c.http("GET", "/metrics")
    assert status == 200 and 'concord_automation_loops_cut_total{automation="ping"} 1' in metrics
    c.wait_settled()
    # Nothing runs on by itself: the loop is stopped.
    assert len(runs(c)) == 5
    # Skipping the entry ends the cut run for good.
    c.cli("skip", str(entry["id"]), "--reason", "a loop")
    assert run_states(c, "ping").count("skipped") == 1


# --- An http action shares its system's budget and breaker ----------------

BUDGET = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=2000
log: {level: debug, format: json}
systems:
  desk:
    kind: http
    base_url: http://127.0.0.1:{desk_port}
    webhook:
      path: /webhooks/desk
      signature: {secret: env:APP_SECRET, header: X-Signature}
    collections:
      tickets:
        model: ticket
        map_in: {title: title, state: state}
  crm:
    kind: http
    base_url: http://127.0.0.1:{crm_port}
    timeout_ms: 2000
    retry: {delays: [50, 100, 200, 400, 800, 1600]}
{crm_extra}
{crm_notes}
models:
  ticket:
    fields: {title: string, state: string}
syncs:
  tickets:
    model: ticket
    origin: [desk]
    collections: [desk.tickets{crm_synced}]
automations:
  note_ticket:
    model: ticket
    on: created
    actions:
      - http:
          system: crm
          request: POST /notes
          body: {title: {path: new.title}, by: automation}
"""


CRM_NOTES = """    collections:
      notes:
        model: ticket
        map_out: {title: title}
        create: POST /notes
        update: PUT /notes/{id}
        created_id: id"""


def budget_setup(crm_extra, deliveries):
    """A desk whose tickets start runs of note_ticket (an http action to
    the crm); with deliveries, the crm's notes also get each ticket."""
    port = harness.free_port()
    desk = Sim(resource="tickets", webhook_url="http://127.0.0.1:%d/webhooks/desk" % port,
               webhook_secret=SECRET, signature_header="X-Signature")
    crm = Sim(resource="notes")
    c = Concord(BUDGET, values={"port": port, "desk_port": desk.port, "crm_port": crm.port,
                                "crm_extra": crm_extra,
                                "crm_notes": CRM_NOTES if deliveries else "",
                                "crm_synced": ", crm.notes" if deliveries else ""},
                env={"APP_SECRET": SECRET}, tmp_prefix=TMP)
    c.start()
    return desk, crm, c


def by_automation(crm):
    return [r for r in crm.requests("POST") if (r.get("body") or {}).get("by") == "automation"]


def test_http_actions_and_deliveries_share_the_rate_of_5_per_second():
    desk, crm, c = budget_setup("    rate_limit: {rate: 5, per: 1s, burst: 1}", True)
    n = 15
    for i in range(n):  # 15 tickets: 15 runs and 15 deliveries to the one crm, all at once
        desk.change("t%d" % i, {"title": "Ticket %d" % i, "state": "open"})
    wait_until(lambda: run_states(c, "note_ticket") == ["done"] * n, 30, "every run done")
    wait_until(lambda: len(crm.requests("POST")) == 2 * n, 30, "every delivery")
    c.wait_settled()
    assert len(by_automation(crm)) == n, by_automation(crm)
    times = sorted(r["time"] for r in crm.requests())
    # The bucket (5/s, burst 1) lets at most 1 + 5 T requests through in
    # any window of T seconds, the actions' and the deliveries' together;
    # measured at the target with test_delivery.py's 200 ms margin for a
    # loaded machine. So no second holds more than 7 (1 + 5 * 1.2), and
    # the 30 requests take at least 29 / 5 s.
    for i, t0 in enumerate(times):
        for j in range(i, len(times)):
            span = times[j] - t0
            assert j - i + 1 <= 1 + 5 * (span + 0.2), "%d requests in %.3f s" % (j - i + 1, span)
    assert times[-1] - times[0] >= (2 * n - 1) / 5.0 - 0.3, times
    # A wait for a token is no failed attempt.
    assert all(r["actions"][0]["attempts"] == 1 for r in runs(c, "note_ticket")), runs(c)
    assert failed(c) == []


def crm_breaker(c):
    return [s for s in c.cli_json("status")["systems"] if s["name"] == "crm"][0]["breaker"]


def test_an_http_action_waits_while_its_systems_breaker_is_open():
    # Documented in docs/automations.md (http): a run whose system's breaker
    # is open is held, with a note and no attempt counted, and goes when
    # the breaker lets a request through again.
    desk, crm, c = budget_setup(
        "    breaker: {failures: 3, cooldown: 2s, window: 10s, min_requests: 100}", False)
    # The first run's first three tries fail: the breaker opens.
    crm.faults([{"status": 503, "times": 3, "match": {"method": "POST"}}])
    desk.change("t1", {"title": "First", "state": "open"})
    st = wait_until(lambda: (lambda b: b if b["state"] == "open" else None)(crm_breaker(c)), 15,
                    "the breaker to open")
    assert "3 consecutive failures" in st["reason"] and "503" in st["reason"], st
    opened = max(r["time"] for r in crm.requests("POST"))
    # More tickets while it is open: their runs wait too.
    for i in range(2, 5):
        desk.change("t%d" % i, {"title": "Ticket %d" % i, "state": "open"})
    held = wait_until(lambda: [r for r in runs(c, "note_ticket")
                               if (r["note"] or "").startswith("held: the circuit breaker of crm")],
                      10, "a run held by the breaker")
    assert "no attempt counted" in held[0]["note"], held
    # After the cooldown one probe goes, succeeds, and everything flows.
    wait_until(lambda: run_states(c, "note_ticket") == ["done"] * 4, 20, "every run done")
    wait_until(lambda: crm_breaker(c)["state"] == "closed", 10, "the breaker closed")
    posts = crm.requests("POST")
    assert [p["status"] for p in posts[:3]] == [503, 503, 503], posts
    later = [p for p in posts if p["time"] > opened]
    # Nothing reached the crm during the cooldown (2 s, less a margin).
    assert later and min(p["time"] for p in later) - opened >= 1.9, (opened, later)
    assert len(by_automation(crm)) == 4 + 3, by_automation(crm)  # 3 failed tries + 4 sent
    # The held runs spent no attempt: the first took 4 (3 failures, the
    # probe or a later one), the others 1.
    attempts = sorted(r["actions"][0]["attempts"] for r in runs(c, "note_ticket"))
    assert attempts == [1, 1, 1, 4], runs(c)
    assert failed(c) == []


LIMITED = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=2000
log: {level: debug, format: json}
systems:
  desk:
    kind: http
    base_url: http://127.0.0.1:{desk_port}
    webhook:
      path: /webhooks/desk
      signature: {secret: env:APP_SECRET, header: X-Signature}
    collections:
      tickets:
        model: ticket
        map_in: {title: title, state: state}
  crm:
    kind: http
    base_url: http://127.0.0.1:{crm_port}
    timeout_ms: 2000
    retry: {delays: [50, 100, 200, 400, 800, 1600]}
""" + CRM_NOTES + """
models:
  ticket:
    fields: {title: string, state: string}
syncs:
  tickets:
    model: ticket
    origin: [desk]
    collections: [desk.tickets, crm.notes]
    filters: {crm.notes: '.state != "urgent"'}
automations:
  note_urgent:
    model: ticket
    on: created
    if: '.new.state == "urgent"'
    actions:
      - http:
          system: crm
          request: POST /notes
          body: {title: {path: new.title}, by: automation}
"""


def test_an_http_actions_x_ratelimit_answer_holds_its_systems_deliveries_and_actions():
    # Documented in docs/automations.md (http, Rate): an action's answer
    # with X-RateLimit-Remaining: 0 holds the system's next requests, the
    # deliveries' and the actions', until its X-RateLimit-Reset. Urgent
    # tickets go to the crm by the automation only, the others by delivery
    # only, so the first request is surely the action's.
    port = harness.free_port()
    desk = Sim(resource="tickets", webhook_url="http://127.0.0.1:%d/webhooks/desk" % port,
               webhook_secret=SECRET, signature_header="X-Signature")
    crm = Sim(resource="notes")
    c = Concord(LIMITED, values={"port": port, "desk_port": desk.port, "crm_port": crm.port},
                env={"APP_SECRET": SECRET}, tmp_prefix=TMP)
    c.start()
    reset_s = 3
    crm.faults([{"status": 201, "body": {"id": "n-limited"},
                 "headers": {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset_s)}}])
    desk.change("t1", {"title": "First", "state": "urgent"})
    wait_until(lambda: run_states(c, "note_urgent") == ["done"], 15, "the first action done")
    first = crm.requests()
    assert len(first) == 1 and first[0]["body"]["by"] == "automation", first
    t0 = first[0]["time"]  # the answer left after this: its reset is at least t0 + reset_s
    # Now a delivery and another action to the crm, both at once.
    desk.change("t2", {"title": "Second", "state": "open"})
    desk.change("t3", {"title": "Third", "state": "urgent"})
    wait_until(lambda: run_states(c, "note_urgent") == ["done", "done"], 20, "the second action")
    wait_until(lambda: len(crm.requests("POST")) == 3, 20, "the delivery")
    c.wait_settled()
    later = crm.requests()[1:]
    assert sorted((r["body"] or {}).get("by", "delivery") for r in later) == \
        ["automation", "delivery"], later
    # Neither went before the reset (less 100 ms for the clocks' rounding).
    for r in later:
        assert r["time"] - t0 >= reset_s - 0.1, \
            "%s asked again after %.3f s; the reset was %d s away" % (
                r["body"], r["time"] - t0, reset_s)
    # A wait for the reset is no failed attempt.
    assert all(r["actions"][0]["attempts"] == 1 for r in runs(c, "note_urgent")), runs(c)
    assert failed(c) == []


def test_an_http_actions_429_holds_deliveries_already_claimed_too():
    # The crm takes one request at a time (max_in_flight 1) and concord
    # claims ahead of it: while the first delivery is on the wire, the next
    # ones wait in concord, claimed. An action's 429 with Retry-After 3
    # then comes in: they must wait it out too (deliver.c, send_held()).
    port = harness.free_port()
    desk = Sim(resource="tickets", webhook_url="http://127.0.0.1:%d/webhooks/desk" % port,
               webhook_secret=SECRET, signature_header="X-Signature")
    crm = Sim(resource="notes")
    text = LIMITED.replace("    timeout_ms: 2000\n", "    timeout_ms: 5000\n    max_in_flight: 1\n")
    c = Concord(text, values={"port": port, "desk_port": desk.port, "crm_port": crm.port},
                env={"APP_SECRET": SECRET}, tmp_prefix=TMP)
    c.start()
    crm.faults([{"delay_ms": 1500, "match": {"method": "POST"}}])
    for i in (2, 3, 4):
        desk.change("t%d" % i, {"title": "Open %d" % i, "state": "open"})
    wait_until(lambda: len(crm.requests()) == 1, 15, "the first delivery on the wire")
    crm.faults([{"status": 429, "retry_after": "3", "match": {"method": "POST"}}])
    desk.change("t1", {"title": "Urgent", "state": "urgent"})
    wait_until(lambda: len(crm.requests()) >= 2, 15, "the action's request")
    limited = crm.requests()[1]
    assert limited["status"] == 429 and limited["body"]["by"] == "automation", limited
    wait_until(lambda: len([r for r in crm.requests("POST") if r["status"] == 201]) == 4, 30,
               "three deliveries and the action's retry")
    c.wait_settled()
    later = [r for r in crm.requests()[2:] if (r["body"] or {}).get("by") != "automation"]
    assert len(later) == 2, crm.requests()
    for r in later:
        assert r["time"] - limited["time"] >= 3 - 0.1, \
            "a delivery %.3f s after the 429" % (r["time"] - limited["time"])
    assert failed(c) == []


def held_setup(crm_extra, env=None):
    """LIMITED with a crm that takes one request at a time (max_in_flight 1,
    crm_extra added to it): concord claims ahead of it, so while a delivery
    is on the wire the next ones wait in concord, claimed and held back
    (deliver.c, "Claims ahead"). The action posts to /alerts, so faults
    can tell its requests from the deliveries' (/notes)."""
    port = harness.free_port()
    desk = Sim(resource="tickets", webhook_url="http://127.0.0.1:%d/webhooks/desk" % port,
               webhook_secret=SECRET, signature_header="X-Signature")
    crm = Sim(resource="notes")
    text = LIMITED.replace("    timeout_ms: 2000\n",
                           "    timeout_ms: 10000\n    max_in_flight: 1\n" + crm_extra)
    text = text.replace("request: POST /notes", "request: POST /alerts")
    c = Concord(text, values={"port": port, "desk_port": desk.port, "crm_port": crm.port},
                env=dict(env or {}, APP_SECRET=SECRET), tmp_prefix=TMP)
    c.start()
    return desk, crm, c


def crm_in_flight(c):
    return [s for s in c.cli_json("status")["systems"] if s["name"] == "crm"][0]["in_flight"]


def test_an_http_actions_x_ratelimit_answer_holds_deliveries_already_claimed_too():
    # While the first delivery is on the wire (3 s), the next two wait in
    # concord, claimed and held back. An action's answer then says no
    # request is left until its X-RateLimit-Reset 4 s away: what is held
    # must wait for the reset too, not go out when the slot frees.
    desk, crm, c = held_setup("")
    crm.faults([{"delay_ms": 3000, "match": {"path": "/notes"}}])
    for i in (2, 3, 4):
        desk.change("t%d" % i, {"title": "Open %d" % i, "state": "open"})
    wait_until(lambda: crm_in_flight(c) == 3 and len(crm.requests("POST")) == 1, 15,
               "one delivery on the wire, two held back")
    first = crm.requests("POST")[0]
    crm.faults([{"status": 201, "body": {"id": "a1"}, "match": {"path": "/alerts"},
                 "headers": {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "4"}}])
    desk.change("t1", {"title": "Urgent", "state": "urgent"})
    wait_until(lambda: run_states(c, "note_urgent") == ["done"], 15, "the action done")
    limited = crm.requests("POST", path_prefix="/alerts")[0]
    assert limited["time"] < first["time"] + 2.5, "the action came too late to test anything"
    wait_until(lambda: len([r for r in crm.requests("POST", path_prefix="/notes")
                            if r["status"] == 201]) == 3, 30, "every delivery")
    c.wait_settled()
    later = crm.requests("POST", path_prefix="/notes")[1:]
    assert len(later) == 2, crm.requests()
    for r in later:
        assert r["time"] - limited["time"] >= 4 - 0.1, \
            "a delivery %.3f s after the answer; its reset was 4 s away" % (
                r["time"] - limited["time"])
    assert failed(c) == []


def test_claims_held_back_stay_back_beside_the_half_open_breakers_probe():
    # The first delivery hangs 8 s on the wire, the next two are held back.
    # Meanwhile the action's requests open the crm's breaker, and after its
    # cooldown (1 s) the action's next try is its one probe, which hangs
    # 9 s (the crm's timeout is 10 s). The delivery's answer then frees the
    # slot while the probe is out: the held claims must not go out beside
    # it. The writer is kept in a commit meanwhile (tests/shim/syncgate.c
    # holds its fsync; an edit of the urgent ticket makes one), so the
    # delivery's answer,
    # which counts for the half-open breaker too, cannot close it before
    # the held claims are looked at: the breaker stays half-open, and
    # nothing reaches /notes until the commit is let go.
    env, hold, _ = tf.syncgate()
    desk, crm, c = held_setup(
        "    breaker: {failures: 3, cooldown: 1s, window: 10s, min_requests: 100}\n", env)
    crm.faults([{"delay_ms": 8000, "match": {"path": "/notes"}}])
    for i in (2, 3, 4):
        desk.change("t%d" % i, {"title": "Open %d" % i, "state": "open"})
    wait_until(lambda: crm_in_flight(c) == 3 and len(crm.requests("POST")) == 1, 15,
               "one delivery on the wire, two held back")
    first = crm.requests("POST")[0]
    crm.faults([{"status": 503, "times": 3, "match": {"path": "/alerts"}},
                {"status": 201, "body": {"id": "a1"}, "delay_ms": 9000,
                 "match": {"path": "/alerts"}}])
    desk.change("t1", {"title": "Urgent", "state": "urgent"})
    probe = wait_until(lambda: (lambda a: a[3] if len(a) == 4 else None)(
        crm.requests("POST", path_prefix="/alerts")), 15, "the breaker's probe")
    assert [r["status"] for r in crm.requests("POST", path_prefix="/alerts")[:3]] == [503] * 3
    # The probe must be out before the delivery's answer (8 s), with time
    # left to hold the writer: ~2 s after it in a quiet run.
    assert probe["time"] < first["time"] + 6.5, "the probe came too late to test anything"
    open(hold, "w").close()
    edit = threading.Thread(target=lambda: desk.change(
        "t1", {"title": "Urgent, edited", "state": "urgent"}))
    edit.start()
    try:
        wait_until(lambda: crm.requests("POST", path_prefix="/notes")[0]["status"] == 201, 15,
                   "the first delivery answered")
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            notes = crm.requests("POST", path_prefix="/notes")
            assert len(notes) == 1, "a delivery went out beside the probe: %s" % notes
            time.sleep(0.05)
        alerts = crm.requests("POST", path_prefix="/alerts")
        assert len(alerts) == 4 and alerts[3]["status"] is None, "the probe was answered"
    finally:
        os.unlink(hold)
        edit.join(20)
    wait_until(lambda: len([r for r in crm.requests("POST", path_prefix="/notes")
                            if r["status"] == 201]) == 3, 20, "every delivery")
    wait_until(lambda: run_states(c, "note_urgent") == ["done"], 20, "the action done")
    c.wait_settled()
    assert len(crm.requests("POST", path_prefix="/notes")) == 3, crm.requests()
    assert failed(c) == []


# --- A notify webhook that asks for time ----------------------------------

NOTIFY = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=2000
log: {level: debug, format: json}
systems:
  desk:
    kind: http
    base_url: http://127.0.0.1:{desk_port}
    webhook:
      path: /webhooks/desk
      signature: {secret: env:APP_SECRET, header: X-Signature}
    collections:
      tickets:
        model: ticket
        map_in: {title: title, state: state}
models:
  ticket:
    fields: {title: string, state: string}
syncs:
  tickets:
    model: ticket
    origin: [desk]
    collections: [desk.tickets]
automations:
  tell_staff:
    model: ticket
    on: created
    actions:
      - notify:
          webhook: env:STAFF_HOOK
          text: "New ticket: {new.title}"
"""


def test_a_notify_webhooks_408_and_retry_after_are_honoured():
    # Documented in DESIGN.md (Deliver): 408 is transient, and a retry
    # honours Retry-After. A notify webhook's 408 parked its run in the
    # inbox at once, and its 429's Retry-After was ignored: the default
    # schedule sent the message again at once.
    port = harness.free_port()
    desk = Sim(resource="tickets", webhook_url="http://127.0.0.1:%d/webhooks/desk" % port,
               webhook_secret=SECRET, signature_header="X-Signature")
    staff = Sim(resource="hooks")
    c = Concord(NOTIFY, values={"port": port, "desk_port": desk.port},
                env={"APP_SECRET": SECRET, "STAFF_HOOK": staff.url + "/hooks"}, tmp_prefix=TMP)
    c.start()
    staff.faults([{"status": 408, "match": {"method": "POST"}}])
    desk.change("t1", {"title": "Timed out", "state": "open"})
    wait_until(lambda: run_states(c, "tell_staff") in (["done"], ["failed"]), 15, "the first run")
    assert run_states(c, "tell_staff") == ["done"] and failed(c) == [], (runs(c), failed(c))
    staff.faults([{"status": 429, "retry_after": "3", "match": {"method": "POST"}}])
    desk.change("t2", {"title": "Limited", "state": "open"})
    wait_until(lambda: run_states(c, "tell_staff") == ["done", "done"], 15, "the second run")
    posts = [r for r in staff.requests("POST") if "Limited" in json.dumps(r["body"])]
    assert [p["status"] for p in posts] == [429, 201], posts
    assert posts[1]["time"] - posts[0]["time"] >= 3 - 0.1, \
        "sent again %.3f s after a Retry-After of 3 s" % (posts[1]["time"] - posts[0]["time"])
    assert failed(c) == []


# --- What a stop, a reload or an erasure does to an action in flight -------

def test_a_reload_lets_an_http_action_in_flight_finish_instead_of_sending_it_twice():
    # A reload (or a clean stop) lets the deliveries in flight finish; an
    # http action on the wire is no different: cut off, it was counted as
    # a failed attempt and sent again after the swap, though the crm took
    # the first one. The note has no idempotency header, so that made two.
    desk, crm, c = budget_setup("", False)
    crm.faults([{"delay_ms": 1500, "match": {"method": "POST"}}])
    desk.change("t1", {"title": "Slow", "state": "open"})
    wait_until(lambda: [r for r in runs(c, "note_ticket")
                        if r["actions"] and r["actions"][0]["state"] == "sending"], 10,
               "the action on the wire")
    rc, out, err = c.cli("reload")
    assert rc == 0 and "the new config is in" in out, (out, err)
    wait_until(lambda: run_states(c, "note_ticket") == ["done"], 15, "the run done")
    c.wait_settled()
    # Every request the crm got is applied, the one cut off too.
    posts = wait_until(lambda: (lambda p: p if all(r["applied"] for r in p) else None)(
        by_automation(crm)), 10, "the crm done with every request")
    assert len(posts) == 1, posts
    [run] = runs(c, "note_ticket")
    assert run["actions"][0]["attempts"] == 1, run
    assert failed(c) == []


def test_a_kill_9_during_an_actions_last_attempt_resends_it_as_that_attempt():
    # An http action is counted before it leaves; a crash while it was
    # out left it counted, and the resend at the next start counted once
    # more: attempt 4 of a schedule of 3, one retry fewer than a delivery
    # gets (whose attempt counts when its answer is in). The resend is the
    # attempt the crash cut off, as a delivery's is.
    port = harness.free_port()
    desk = Sim(resource="tickets", webhook_url="http://127.0.0.1:%d/webhooks/desk" % port,
               webhook_secret=SECRET, signature_header="X-Signature")
    crm = Sim(resource="notes")
    text = BUDGET.replace("retry: {delays: [50, 100, 200, 400, 800, 1600]}",
                          "retry: {delays: [50, 100]}")  # 3 attempts
    c = Concord(text, values={"port": port, "desk_port": desk.port, "crm_port": crm.port,
                              "crm_extra": "", "crm_notes": "", "crm_synced": ""},
                env={"APP_SECRET": SECRET}, tmp_prefix=TMP)
    c.start()
    crm.faults([{"status": 503, "times": 2, "match": {"method": "POST"}},
                {"delay_ms": 3000, "status": 503, "match": {"method": "POST"}},
                {"status": 503, "match": {"method": "POST"}}])
    desk.change("t1", {"title": "Last try", "state": "open"})
    wait_until(lambda: [r for r in runs(c, "note_ticket")
                        if r["actions"] and r["actions"][0]["state"] == "sending"
                        and r["actions"][0]["attempts"] == 3], 10, "the last attempt on the wire")
    c.kill9()
    c.start()
    wait_until(lambda: run_states(c, "note_ticket") == ["failed"], 15, "the run in the inbox")
    posts = wait_until(lambda: (lambda p: p if len(p) == 4 else None)(crm.requests("POST")), 10,
                       "the resend")  # at least once: the one cut off, again
    [run] = runs(c, "note_ticket")
    assert run["actions"][0]["attempts"] == 3, run
    [entry] = failed(c)
    assert entry["attempts"] == 3 and "HTTP 503" in entry["reason"], entry
    c.wait_settled()
    assert len(crm.requests("POST")) == 4, posts


def cpu_seconds(c):
    """The CPU time the daemon has used so far."""
    with open("/proc/%d/stat" % c.proc.pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def waiting_runs_cpu(batches, condition=None):
    """A ticket changed len(batches) times over, batches[i] versions each,
    under note_ticket with "on: updated", a 2 h wait and condition as its
    `if`: each version adds a waiting run and checks them all. The CPU
    seconds each batch cost the daemon, once it settled; and its runs'
    states."""
    port = harness.free_port()
    desk = Sim(resource="tickets", webhook_url="http://127.0.0.1:%d/webhooks/desk" % port,
               webhook_secret=SECRET, signature_header="X-Signature")
    crm = Sim(resource="notes")
    text = BUDGET.replace("log: {level: debug, format: json}", "log: {level: warn, format: json}")
    text = text.replace("    on: created\n    actions:\n",
                        "    on: updated\n%s    actions:\n      - wait: 2h\n"
                        % ("    if: '%s'\n" % condition if condition else ""))
    c = Concord(text, values={"port": port, "desk_port": desk.port, "crm_port": crm.port,
                              "crm_extra": "", "crm_notes": "", "crm_synced": ""},
                env={"APP_SECRET": SECRET}, tmp_prefix=TMP)
    c.start()
    desk.change("t1", {"title": "v0", "state": "open"})
    c.wait_settled()
    spent, n = [], 0
    for count in batches:
        before = cpu_seconds(c)
        for i in range(count):
            n += 1
            desk.change("t1", {"title": "v%d" % n})
        c.wait_settled(timeout=600)
        spent.append(cpu_seconds(c) - before)
    states = [r["state"] for r in c.cli_json("runs", "note_ticket", "--limit", "5000")]
    assert crm.requests() == []
    c.stop()
    return spent, states


def test_a_record_with_many_waiting_runs_costs_each_new_version_no_more():
    # Each version of a record checks the record's waiting runs; with
    # "on: updated" and a long wait, each version adds one, and reading
    # and parsing them all made 1000 versions cost the square: 16 s of CPU
    # under ASan against 0.7 s for the same versions with no run waiting.
    # The second 500 versions must not cost much more than the first.
    spent, states = waiting_runs_cpu([500, 500])
    assert spent[1] < 2 * spent[0] + 0.5, "CPU of the first and second 500 versions: %s" % spent
    assert len(states) > 900 and set(states) == {"waiting"}, len(states)


def test_waiting_runs_with_a_condition_cost_each_new_version_no_more():
    # The same with an `if` on the record alone: each version read every
    # waiting run and ran the condition for each, the square of the
    # versions again (under ASan the first 500 versions took 8.0 s of
    # CPU, the next 500 took 22.7 s). Now it runs once per version.
    spent, states = waiting_runs_cpu([500, 500], ".new.title != null")
    assert spent[1] < 2 * spent[0] + 0.5, "CPU of the first and second 500 versions: %s" % spent
    assert len(states) > 900 and set(states) == {"waiting"}, len(states)


def test_waiting_runs_are_cancelled_by_their_conditions_on_the_record_as_it_is_now():
    # Each new version checks the conditions of the record's waiting runs
    # with "new" the record as it is now and the rest of each run's own
    # context: keep_open's condition reads only the record (one answer for
    # all its runs), same_title's reads the run's own "old" too.
    port = harness.free_port()
    desk = Sim(resource="tickets", webhook_url="http://127.0.0.1:%d/webhooks/desk" % port,
               webhook_secret=SECRET, signature_header="X-Signature")
    crm = Sim(resource="notes")
    text = BUDGET.replace("""automations:
  note_ticket:
    model: ticket
    on: created
""", """automations:
  keep_open:
    model: ticket
    on: updated
    if: '.new.state != "closed"'
    actions: [{wait: 2h}]
  same_title:
    model: ticket
    on: updated
    if: '.new.title == .old.title'
    actions: [{wait: 2h}]
  note_ticket:
    model: ticket
    on: created
""")
    c = Concord(text, values={"port": port, "desk_port": desk.port, "crm_port": crm.port,
                              "crm_extra": "", "crm_notes": "", "crm_synced": ""},
                env={"APP_SECRET": SECRET}, tmp_prefix=TMP)
    c.start()

    def states(name):
        return [(r["version"], r["state"]) for r in reversed(runs(c, name))]

    steps = [({"title": "a", "state": "open"}, [], []),
             ({"state": "busy"}, [(2, "waiting")], [(2, "waiting")]),
             # same_title's run of v2: its old title a, the record's now b
             ({"title": "b"}, [(2, "waiting"), (3, "waiting")], [(2, "cancelled")]),
             ({"state": "busy again"}, [(2, "waiting"), (3, "waiting"), (4, "waiting")],
              [(2, "cancelled"), (4, "waiting")]),
             ({"state": "closed"}, [(2, "cancelled"), (3, "cancelled"), (4, "cancelled")],
              [(2, "cancelled"), (4, "waiting"), (5, "waiting")])]
    for change, keep_open, same_title in steps:
        desk.change("t1", change)
        wait_until(lambda: states("keep_open") == keep_open and
                   states("same_title") == same_title, 10,
                   "runs %s and %s after %s" % (keep_open, same_title, change))
    c.wait_settled()
    assert states("keep_open") == keep_open and states("same_title") == same_title
    for r in runs(c, "keep_open"):
        assert r["note"] == ("cancelled: the trigger no longer holds (its conditions no longer "
                             "hold)"), r
    assert failed(c) == []


def test_a_conflict_settled_for_the_records_value_starts_no_run_for_its_old_version():
    # A conflict settled with the value the record holds already makes no
    # version, but the record was fanned out as it is, and the automations
    # saw its last version again as if it were new: a run for it that did
    # not exist (an automation a reload added since, or a done run that
    # retention pruned) started then, for a version that had had its turn.
    import test_twoway as tw
    shop, crm, c = tw.setup(top="automations:\n  greet:\n    model: customer\n"
                                "    on: deleted\n    actions: [{wait: 2h}]\n")
    contact = tw.created(shop, crm, c)
    c.cli("pause", "crm")
    c.cli("pause", "shop")
    shop.change("S1", {"name": "Ada from shop"})
    wait_until(lambda: c.cli_json("status")["systems"][1]["backlog"] == 1, 10, "the first edit")
    crm.change(contact["id"], {"full_name": "Ada from crm"})
    x = wait_until(lambda: tw.conflicts(c), 10, "the open conflict")[0]
    c.cli("resume", "crm")
    c.cli("resume", "shop")
    c.wait_settled()
    path = os.path.join(c.dir, "concord.yaml")
    with open(path) as f:
        conf = f.read()
    with open(path, "w") as f:
        f.write(conf.replace("    on: deleted\n", "    on: updated\n"))
    rc, out, err = c.cli("reload")
    assert rc == 0 and "the new config is in" in out, (out, err)
    rc, _, err = c.cli("resolve", str(x["id"]), "--value", '"Ada from shop"')
    assert rc == 0, err
    # Then a real change: version 3, whose run comes after any run the
    # settled conflict started.
    shop.change("S1", {"phone": "+44 3"})
    wait_until(lambda: 3 in [r["version"] for r in runs(c, "greet")], 10, "the run of version 3")
    c.wait_settled()
    assert [(r["version"], r["state"]) for r in runs(c, "greet")] == [(3, "waiting")], runs(c)


def test_a_run_whose_commit_failed_is_neither_counted_nor_logged():
    # The writer adds a run in the transaction of its version, and counted
    # and logged it there: each turn whose commit the disk refused (so that
    # nothing of it stood, and the change was processed again) counted and
    # logged the run once more.
    env, _, fail = tf.syncgate()
    port = harness.free_port()
    desk = Sim(resource="tickets", webhook_url="http://127.0.0.1:%d/webhooks/desk" % port,
               webhook_secret=SECRET, signature_header="X-Signature")
    crm = Sim(resource="notes")
    c = Concord(BUDGET.replace("    on: created\n", "    on: updated\n"),
                values={"port": port, "desk_port": desk.port, "crm_port": crm.port,
                        "crm_extra": "", "crm_notes": "", "crm_synced": ""},
                env=dict(env, APP_SECRET=SECRET), tmp_prefix=TMP)
    c.start()
    desk.change("t1", {"title": "Refused", "state": "new"})
    # The webhook's answer comes at its journal's commit; its record may
    # be made a turn later (nothing is delivered, so status is settled).
    wait_until(lambda: c.cli("history", "1", check=False)[0] == 0, 10, "the ticket's record")
    c.wait_settled()
    open(fail, "w").close()
    try:
        # A person's edit, journaled by the CLI (not under the shim); the
        # daemon's turns that process it fail to commit.
        shim = c.env.pop("LD_PRELOAD")
        try:
            c.cli("edit", "--record", "1", stdin=json.dumps({"state": "open"}))
        finally:
            c.env["LD_PRELOAD"] = shim
        wait_until(lambda: len([line for line in c.log_text().splitlines()
                                if "I/O error" in line and "checkpoint" not in line]) >= 2, 10,
                   "failed commits")
    finally:
        os.unlink(fail)
    wait_until(lambda: run_states(c, "note_ticket") == ["done"], 10, "the run done")
    started = tf.metric_total(c, "concord_automation_runs_total", 'event="started"')
    assert started == 1.0, started
    assert c.log_text().count("automation note_ticket: run 1 for version") == 1
    assert len(crm.requests("POST")) == 1


def test_a_condition_that_fails_to_run_lands_in_the_inbox_and_a_retry_checks_it_again():
    # DESIGN.md: every failure is visible. A condition whose jq failed on a
    # version (tonumber of "open") was only logged: the run was never made,
    # and nothing in the inbox said that an account was not activated.
    port = harness.free_port()
    desk = Sim(resource="tickets", webhook_url="http://127.0.0.1:%d/webhooks/desk" % port,
               webhook_secret=SECRET, signature_header="X-Signature")
    crm = Sim(resource="notes")
    text = BUDGET.replace("    on: created\n",
                          "    on: created\n    if: '.new.state | tonumber > 1'\n")
    c = Concord(text, values={"port": port, "desk_port": desk.port, "crm_port": crm.port,
                              "crm_extra": "", "crm_notes": "", "crm_synced": ""},
                env={"APP_SECRET": SECRET}, tmp_prefix=TMP)
    c.start()
    desk.change("t1", {"title": "Seven", "state": "7"})
    desk.change("t2", {"title": "Zero", "state": "0"})
    desk.change("t3", {"title": "Words", "state": "open"})
    c.wait_settled()
    entry = wait_until(lambda: [e for e in failed(c) if "note_ticket" in e["reason"]], 10,
                       "the condition's failure in the inbox")[0]
    assert "tonumber" in entry["reason"] and entry["record"] == 3, entry
    assert sorted((r["record"], r["state"]) for r in runs(c, "note_ticket")) == \
        [(1, "done"), (3, "failed")], runs(c)
    assert [r["body"]["title"] for r in by_automation(crm)] == ["Seven"]
    # A retry checks the condition again: still failing, back to the inbox.
    c.cli("retry", str(entry["id"]))
    again = wait_until(lambda: [e for e in failed(c) if e["id"] != entry["id"]], 10,
                       "the inbox again")[0]
    assert "tonumber" in again["reason"], again
    # Fixed by a reload, the retry runs it.
    path = os.path.join(c.dir, "concord.yaml")
    with open(path) as f:
        conf = f.read()
    with open(path, "w") as f:
        f.write(conf.replace("tonumber > 1", "(tonumber? // 2) > 1"))
    rc, out, err = c.cli("reload")
    assert rc == 0 and "the new config is in" in out, (out, err)
    c.cli("retry", str(again["id"]))
    wait_until(lambda: sorted(r["state"] for r in runs(c, "note_ticket")) == ["done", "done"],
               10, "the run done")
    assert [r["body"]["title"] for r in by_automation(crm)] == ["Seven", "Words"]
    assert failed(c) == []


def test_a_condition_that_fails_to_run_at_the_end_of_a_wait_lands_in_the_inbox():
    # At the end of a wait the trigger is checked again; a condition that
    # failed to run there cancelled the run quietly, with the jq error as
    # its note and nothing in the inbox.
    port = harness.free_port()
    desk = Sim(resource="tickets", webhook_url="http://127.0.0.1:%d/webhooks/desk" % port,
               webhook_secret=SECRET, signature_header="X-Signature")
    crm = Sim(resource="notes")
    text = BUDGET.replace("    on: created\n    actions:\n",
                          "    on: created\n    if: '.new.state | tonumber > 1'\n"
                          "    actions:\n      - wait: 2s\n")
    c = Concord(text, values={"port": port, "desk_port": desk.port, "crm_port": crm.port,
                              "crm_extra": "", "crm_notes": "", "crm_synced": ""},
                env={"APP_SECRET": SECRET}, tmp_prefix=TMP)
    c.start()
    desk.change("t1", {"title": "Later", "state": "5"})
    wait_until(lambda: run_states(c, "note_ticket") == ["waiting"], 10, "the run waiting")
    desk.change("t1", {"state": "open"})  # the condition cannot run on this
    wait_until(lambda: run_states(c, "note_ticket") != ["waiting"], 10, "the end of the wait")
    entry = wait_until(lambda: failed(c), 5, "the failure in the inbox")[0]
    assert "tonumber" in entry["reason"], entry
    assert run_states(c, "note_ticket") == ["failed"], runs(c)
    assert crm.requests() == []
    # Retrying it goes on after the wait: a person looked.
    c.cli("retry", str(entry["id"]))
    wait_until(lambda: run_states(c, "note_ticket") == ["done"], 10, "the run done")
    assert [r["body"]["title"] for r in by_automation(crm)] == ["Later"]
    assert failed(c) == []


def test_an_http_actions_path_placeholder_without_a_value_or_a_dot_segment_is_refused():
    # A delivery refuses a path whose placeholder has no value (deliver.c,
    # engine_expand_path()). An http action filled it with nothing and
    # sent PATCH /notes/ (the collection itself), and a value ".." took
    # the request, with the system's credentials, one level up: curl
    # resolves /notes/.. to /.
    port = harness.free_port()
    desk = Sim(resource="tickets", webhook_url="http://127.0.0.1:%d/webhooks/desk" % port,
               webhook_secret=SECRET, signature_header="X-Signature")
    crm = Sim(resource="notes")
    text = BUDGET.replace("request: POST /notes", "request: PATCH /notes/{new.state}")
    c = Concord(text, values={"port": port, "desk_port": desk.port, "crm_port": crm.port,
                              "crm_extra": "", "crm_notes": "", "crm_synced": ""},
                env={"APP_SECRET": SECRET}, tmp_prefix=TMP)
    c.start()
    desk.change("t1", {"title": "No state"})
    desk.change("t2", {"title": "Dots", "state": ".."})
    wait_until(lambda: run_states(c, "note_ticket") == ["failed", "failed"], 10,
               "both runs failed")
    assert crm.requests() == [], crm.requests()
    reasons = sorted(e["reason"] for e in failed(c))
    assert "no value for {new.state}" in reasons[0] + reasons[1], reasons
    assert 'a dot segment' in reasons[0] + reasons[1], reasons


def test_a_reload_that_reorders_a_runs_actions_parks_it_instead_of_repeating_one():
    # A run goes on by its action's number. A reload that put a new action
    # first made a run retrying its second action (POST /tasks) carry out
    # the new second one, POST /notes, which it had done already: a note
    # twice, and /audit never. Such a run now waits in the inbox.
    desk, crm, c = budget_setup("", False)
    path = os.path.join(c.dir, "concord.yaml")
    with open(path) as f:
        conf = f.read()
    tasks = ("      - http:\n          system: crm\n          request: POST /tasks\n"
             "          body: {title: {path: new.title}, by: automation}\n")
    audit = tasks.replace("/tasks", "/audit")
    first = conf + tasks  # note_ticket's actions are the file's last lines
    with open(path, "w") as f:
        f.write(first)
    rc, out, err = c.cli("reload")
    assert rc == 0, (out, err)
    crm.faults([{"status": 503, "times": 6, "match": {"method": "POST", "path": "/tasks"}}])
    desk.change("t1", {"title": "Twice?", "state": "open"})
    wait_until(lambda: len([r for r in crm.requests("POST") if r["path"] == "/tasks"]) >= 2, 10,
               "the second action retrying")
    with open(path, "w") as f:
        f.write(first.replace("    actions:\n", "    actions:\n" + audit, 1))
    rc, out, err = c.cli("reload")
    assert rc == 0 and "the new config is in" in out, (out, err)
    entry = wait_until(lambda: [e for e in failed(c) if "note_ticket" in e["reason"]], 10,
                       "the run in the inbox")[0]
    assert "changed" in entry["reason"], entry
    assert len([r for r in crm.requests("POST") if r["path"] == "/notes"]) == 1, crm.requests()
    assert run_states(c, "note_ticket") == ["failed"], runs(c)
    # A person decides: a retry goes on with the new list at its number
    # (the note again, as asked), and is not parked for the change again.
    c.cli("retry", str(entry["id"]))
    wait_until(lambda: len([r for r in crm.requests("POST") if r["path"] == "/notes"]) == 2, 10,
               "the new list's second action")
    wait_until(lambda: run_states(c, "note_ticket") in (["done"], ["failed"]), 10, "the run")
    assert [e for e in failed(c) if "changed" in e["reason"]] == [], failed(c)


def test_a_record_forgotten_while_its_action_is_on_the_wire_leaves_no_trace():
    # concord forget erases a record with its runs; an action already on
    # the wire answered afterwards, and its failure wrote an inbox entry
    # (the answer, which named the person) and an action row for the run
    # that was gone.
    desk, crm, c = budget_setup("", False)
    crm.faults([{"delay_ms": 1200, "status": 422, "body": {"error": "Zelda Forgotten: no"},
                 "match": {"method": "POST"}}])
    desk.change("t1", {"title": "Zelda Forgotten", "state": "open"})
    wait_until(lambda: [r for r in runs(c, "note_ticket")
                        if r["actions"] and r["actions"][0]["state"] == "sending"], 10,
               "the action on the wire")
    rc, out, err = c.cli("forget", "1")
    assert rc == 0 and "erased" in out, (out, err)
    wait_until(lambda: [r for r in crm.requests("POST") if r["status"] == 422], 10,
               "the crm's answer")
    # The automation thread has taken up the answer: dropped, or parked.
    wait_until(lambda: failed(c) or "its answer is dropped" in c.log_text(), 10, "the answer")
    assert failed(c) == [] and runs(c) == [], (failed(c), runs(c))
    c.stop()
    with open(os.path.join(c.dir, "state.db"), "rb") as f:
        data = f.read()
    assert b"Zelda Forgotten" not in data


# --- The cookbook ----------------------------------------------------------

RECIPE_ENV = {k: "test-secret-value-0123456789" for k in (
    "STRIPE_KEY", "STRIPE_WHSEC", "APP_TOKEN", "SHOP_SECRET", "SMARTBILL_TOKEN", "ESIGN_SECRET",
    "PM_TOKEN", "PM_SECRET", "CALENDAR_TOKEN", "CALENDAR_SECRET")}
RECIPE_ENV["STAFF_WEBHOOK_URL"] = "https://hooks.example.com/services/T/B/x"


def recipes():
    """{name: config text} of every ```yaml block of docs/automations.md
    that starts with "# recipe: NAME"."""
    with open(os.path.join(harness.REPO, "docs", "automations.md")) as f:
        text = f.read()
    out = {}
    for block in text.split("```yaml\n")[1:]:
        body = block.split("```", 1)[0]
        if body.startswith("# recipe: "):
            out[body.split("\n", 1)[0][len("# recipe: "):].strip()] = body
    return out


def test_the_cookbook_recipes_pass_concord_check():
    found = recipes()
    assert sorted(found) == ["appointment-cancelled", "booking-creates-invoice",
                             "document-updates-project", "payment-activates-account"], found
    c = Concord("systems: {}\n", env=RECIPE_ENV, tmp_prefix=TMP)  # only for its temp dir and env
    for name, body in sorted(found.items()):
        path = os.path.join(c.dir, name + ".yaml")
        with open(path, "w") as f:
            f.write(body)
        p = subprocess.run([harness.concord_bin(), "check", "-c", path], cwd=c.dir, env=c.env,
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, "%s:\n%s%s" % (name, p.stdout, p.stderr)


if __name__ == "__main__":
    harness.run_tests(globals())
