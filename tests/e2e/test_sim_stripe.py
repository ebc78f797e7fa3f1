#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Self-test of tests/sims/stripe.py and tests/e2e/stripe_harness.py. Needs
no concord: a harness.Listener plays the webhook endpoint."""

import base64
import hashlib
import hmac
import http.client
import importlib.util
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Listener, wait_until  # noqa: E402
from stripe_harness import STRIPE, StripeSim, encode_form, verify_signature  # noqa: E402

SECRET = "whsec_test_5f2b9c0d1e"
FIXTURES = os.path.join(harness.REPO, "..", "shared", "apis", "specs", "stripe-fixtures3.json")
# Top-level keys of the objects in stripe/openapi fixtures3.json, used when
# the fixture file is not beside the repo.
FIXTURE_KEYS = {
    "customer": "address balance created currency default_source delinquent description "
    "discount email id invoice_prefix invoice_settings livemode metadata name "
    "next_invoice_sequence object phone preferred_locales shipping tax_exempt test_clock",
    "payment_intent": "amount amount_capturable amount_details amount_received application "
    "application_fee_amount automatic_payment_methods canceled_at cancellation_reason "
    "capture_method client_secret confirmation_method created currency customer "
    "customer_account description excluded_payment_method_types id last_payment_error "
    "latest_charge livemode managed_payments metadata next_action object on_behalf_of "
    "payment_method payment_method_configuration_details payment_method_options "
    "payment_method_types processing receipt_email review setup_future_usage shipping source "
    "statement_descriptor statement_descriptor_suffix status transfer_data transfer_group",
    "charge": "amount amount_captured amount_refunded application application_fee "
    "application_fee_amount balance_transaction billing_details "
    "calculated_statement_descriptor captured created currency customer description disputed "
    "failure_balance_transaction failure_code failure_message fraud_details id livemode "
    "metadata object on_behalf_of outcome paid payment_intent payment_method "
    "payment_method_details receipt_email receipt_number receipt_url refunded refunds review "
    "shipping source source_transfer statement_descriptor statement_descriptor_suffix status "
    "transfer_data transfer_group",
    "invoice": "account_country account_name account_tax_ids amount_due amount_overpaid "
    "amount_paid amount_remaining amount_shipping application attempt_count attempted "
    "auto_advance automatic_tax automatically_finalizes_at billing_reason collection_method "
    "created currency custom_fields customer customer_account customer_address "
    "customer_email customer_name customer_phone customer_shipping customer_tax_exempt "
    "customer_tax_ids default_payment_method default_source default_tax_rates description "
    "discounts due_date effective_at ending_balance footer from_invoice hosted_invoice_url id "
    "invoice_pdf issuer last_finalization_error latest_revision lines livemode metadata "
    "next_payment_attempt number object on_behalf_of parent payment_settings period_end "
    "period_start post_payment_credit_notes_amount pre_payment_credit_notes_amount "
    "receipt_number rendering shipping_cost shipping_details starting_balance "
    "statement_descriptor status status_transitions subscription subtotal "
    "subtotal_excluding_tax test_clock total total_discount_amounts total_excluding_tax "
    "total_pretax_credit_amounts total_taxes webhooks_delivered_at",
    "checkout.session": "adaptive_pricing after_expiration allow_promotion_codes "
    "amount_subtotal amount_total automatic_tax billing_address_collection cancel_url "
    "client_reference_id client_secret collected_information consent consent_collection "
    "created currency currency_conversion custom_fields custom_text customer "
    "customer_account customer_creation customer_details customer_email discounts expires_at "
    "id integration_identifier invoice invoice_creation livemode locale managed_payments "
    "metadata mode object origin_context payment_intent payment_link "
    "payment_method_collection payment_method_configuration_details payment_method_options "
    "payment_method_types payment_status permissions phone_number_collection recovered_from "
    "saved_payment_method_options setup_intent shipping_address_collection shipping_cost "
    "shipping_options status submit_type subscription success_url total_details ui_mode url "
    "wallet_options",
    "event": "api_version created data id livemode object pending_webhooks request type",
}


def expect(cond, msg, *values):
    if not cond:
        raise AssertionError(msg + "".join(" | %r" % (v,) for v in values))


def expect_eq(got, want, what):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


def fixture_keys(otype):
    try:
        with open(FIXTURES) as f:
            return set(json.load(f)["resources"][otype])
    except (OSError, ValueError, KeyError):
        return set(FIXTURE_KEYS[otype].split())


def sim_module():
    """tests/sims/stripe.py as a module (named so that it cannot shadow a
    real `stripe` package)."""
    spec = importlib.util.spec_from_file_location("stripe_sim", STRIPE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def err(body):
    return body["error"] if isinstance(body, dict) and isinstance(body.get("error"), dict) \
        else {}


def raw_post(sim, path, text, key=True, headers=None):
    h = {"Content-Type": "application/x-www-form-urlencoded"}
    if key:
        h["Authorization"] = "Bearer " + sim.api_key
    h.update(headers or {})
    return sim.rest("POST", path, text, h)


def connection_error(fn):
    try:
        fn()
    except (OSError, http.client.HTTPException) as e:
        return e
    return None


# --- request format --------------------------------------------------------


def test_form_brackets():
    m = sim_module()
    got = m.parse_form("email=a%40b.co&metadata[order_id]=42&metadata[note]=x+y&"
                       "address[city]=Cluj&expand[]=a&expand[]=b&items[0][price]=p1&"
                       "items[1][price]=p2&items[0][quantity]=3&name=A&name=B&"
                       "list[][k]=1&list[][j]=2&list[][k]=3")
    expect_eq(got, {"email": "a@b.co", "metadata": {"order_id": "42", "note": "x y"},
                    "address": {"city": "Cluj"}, "expand": ["a", "b"],
                    "items": {"0": {"price": "p1", "quantity": "3"}, "1": {"price": "p2"}},
                    "name": "B", "list": [{"k": "1", "j": "2"}, {"k": "3"}]}, "parse_form")
    expect_eq(m.as_list(got["items"], "items"),
              [{"price": "p1", "quantity": "3"}, {"price": "p2"}], "indexed array")
    for bad in ("metadata=x&metadata[a]=b", "metadata[a]=b&metadata=x", "a[b]]=1",
                "expand[]=a&expand[x]=b"):
        try:
            m.parse_form(bad)
        except m.StripeError as e:
            expect_eq(e.status, 400, "status for %s" % bad)
        else:
            raise AssertionError("parse_form accepted %r" % bad)
    expect_eq(encode_form({"a": {"b": [1, None]}, "c": True}), "a%5Bb%5D%5B0%5D=1&"
              "a%5Bb%5D%5B1%5D=&c=true", "encode_form")

    sim = StripeSim(rate=0)
    st, c, hdrs = raw_post(sim, "/v1/customers",
                           "email=ada%40example.com&metadata[order_id]=42&"
                           "metadata[note]=a+b&address[city]=Cluj&address[line1]=Str.+1&"
                           "preferred_locales[]=ro&preferred_locales[]=en&"
                           "invoice_settings[footer]=thanks&expand[0]=test_clock")
    expect_eq(st, 200, "create status")
    expect_eq(c["metadata"], {"order_id": "42", "note": "a b"}, "metadata")
    expect_eq(c["address"], {"city": "Cluj", "line1": "Str. 1", "line2": None,
                             "country": None, "postal_code": None, "state": None}, "address")
    expect_eq(c["preferred_locales"], ["ro", "en"], "array with []")
    expect_eq(c["invoice_settings"]["footer"], "thanks", "nested hash")
    expect(hdrs["request-id"].startswith("req_"), "Request-Id", hdrs)
    log = sim.requests()[-1]
    expect_eq(log["body"]["metadata"], {"order_id": "42", "note": "a b"}, "logged parsed body")
    expect_eq(log["headers"]["content-type"], "application/x-www-form-urlencoded",
              "logged headers are lower-case")
    expect_eq(log["request_id"], hdrs["request-id"], "logged request id")

    for text, param in (("foo=1", "foo"), ("address[planet]=x", "address[planet]"),
                        ('{"email": "a@b.co"}', '{"email": "a@b.co"}')):
        st, body, _ = raw_post(sim, "/v1/customers", text)
        expect_eq((st, err(body).get("code"), err(body).get("param")),
                  (400, "parameter_unknown", param), "unknown parameter %s" % text)
        expect("doc_url" in err(body) and "request_log_url" in err(body), "error keys", body)
    st, body, _ = raw_post(sim, "/v1/customers", "name=x&expand[]=email")
    expect_eq((st, err(body).get("param")), (400, "expand"), "an expand refused up front")
    st, body, _ = raw_post(sim, "/v1/customers", "metadata=x&metadata[a]=b")
    expect_eq((st, err(body).get("type")), (400, "invalid_request_error"), "scalar and hash")
    st, body, _ = raw_post(sim, "/v1/customers", "balance=abc")
    expect_eq((st, err(body).get("code")), (400, "parameter_invalid_integer"), "integer")
    st, body, _ = raw_post(sim, "/v1/customers", "email=nope")
    expect_eq((st, err(body).get("code")), (400, "email_invalid"), "email")
    expect_eq(len(sim.objects("customer")), 1, "refused creates created nothing")


# --- customers -------------------------------------------------------------


def test_customer_crud():
    sim = StripeSim(rate=0)
    c = sim.create_customer(email="ada@example.com", name="Ada",
                            metadata={"k1": "a", "k2": "b"},
                            address={"city": "Cluj", "line1": "Str 1"})
    expect(c["id"].startswith("cus_") and len(c["id"]) == 18, "customer id", c["id"])
    expect_eq(set(c), fixture_keys("customer"), "customer keys match the fixture")
    expect_eq((c["object"], c["livemode"], c["balance"]), ("customer", False, 0), "defaults")
    expect(isinstance(c["created"], int) and abs(c["created"] - time.time()) < 5, "created",
           c["created"])
    expect_eq(sim.get("/v1/customers/" + c["id"]), c, "GET by id")

    u = sim.update_customer(c["id"], name="Ada L", metadata={"k1": "", "k3": "c"}, email=None,
                            address={"city": "Iasi"})
    expect_eq((u["name"], u["email"]), ("Ada L", None), "fields replaced, email unset")
    expect_eq(u["metadata"], {"k2": "b", "k3": "c"}, "metadata merged key by key")
    expect_eq((u["address"]["city"], u["address"]["line1"]), ("Iasi", None),
              "a hash is replaced as a whole")
    expect_eq(sim.update_customer(c["id"], metadata="")["metadata"], {}, "metadata='' clears")
    n_events = len(sim.sim_events())
    sim.update_customer(c["id"], name="Ada L")
    expect_eq(len(sim.sim_events()), n_events, "an update that changes nothing: no event")

    st, body, _ = sim.api("POST", "/v1/customers/cus_nope", {"name": "x"})
    expect_eq((st, err(body).get("code"), err(body).get("param")),
              (404, "resource_missing", "id"), "update unknown")
    expect_eq(err(body).get("message"), "No such customer: 'cus_nope'", "message")

    gone = sim.delete_customer(c["id"])
    expect_eq(gone, {"id": c["id"], "object": "customer", "deleted": True}, "delete answer")
    expect_eq(sim.get("/v1/customers/" + c["id"]), gone, "GET of a deleted customer")
    st, body, _ = sim.api("POST", "/v1/customers/" + c["id"], {"name": "x"})
    expect_eq((st, err(body).get("code")), (404, "resource_missing"), "update deleted")
    st, _, _ = sim.api("DELETE", "/v1/customers/" + c["id"])
    expect_eq(st, 404, "delete twice")
    expect_eq(sim.get("/v1/customers")["data"], [], "deleted customers are not listed")
    st, body, _ = sim.api("GET", "/v1/nothing")
    expect_eq(st, 404, "unknown URL")
    expect(err(body)["message"].startswith("Unrecognized request URL"), "unknown URL", body)


def test_list_pagination():
    sim = StripeSim(rate=0)
    made = [sim.create_customer(email="u%d@example.com" % (i % 20), name="n%d" % i)["id"]
            for i in range(25)]
    newest_first = list(reversed(made))
    first = sim.get("/v1/customers")
    expect_eq((first["object"], first["url"], len(first["data"]), first["has_more"]),
              ("list", "/v1/customers", 10, True), "default page")

    seen, params = [], {"limit": 10}
    for want_more in (True, True, False):
        page = sim.get("/v1/customers", **params)
        expect_eq(page["has_more"], want_more, "has_more walking forward")
        seen += [c["id"] for c in page["data"]]
        params["starting_after"] = page["data"][-1]["id"]
    expect_eq(seen, newest_first, "forward walk: every customer once, newest first")

    back, cursor, more = [], made[0], True
    while more:
        page = sim.get("/v1/customers", limit=10, ending_before=cursor)
        ids = [c["id"] for c in page["data"]]
        expect_eq(ids, sorted(ids, key=made.index, reverse=True), "pages stay newest first")
        back = ids + back
        cursor, more = ids[0], page["has_more"]
    expect_eq(back, newest_first[:-1], "backward walk from the oldest")
    page = sim.get("/v1/customers", limit=3, ending_before=made[10])
    expect_eq([c["id"] for c in page["data"]], [made[13], made[12], made[11]],
              "ending_before gives the ones just newer")

    mid = sim.get("/v1/customers", limit=5)
    sim.create_customer(name="late")
    rest = sim.list_all("/v1/customers", starting_after=mid["data"][-1]["id"])
    expect_eq([c["id"] for c in rest], newest_first[5:], "a create between pages shifts nothing")

    emails = sim.get("/v1/customers", email="u3@example.com")["data"]
    expect_eq([c["id"] for c in emails], [made[23], made[3]], "email filter")
    for q, code in (({"limit": 0}, 400), ({"limit": 101}, 400), ({"limit": "x"}, 400),
                    ({"starting_after": "cus_nope"}, 404),
                    ({"starting_after": made[1], "ending_before": made[2]}, 400),
                    ({"colour": "red"}, 400)):
        st, body, _ = sim.api("GET", "/v1/customers", q)
        expect_eq(st, code, "list with %r" % q)
        expect_eq(err(body).get("type"), "invalid_request_error", "error type for %r" % q)
    st, body, _ = sim.api("GET", "/v1/customers", {"starting_after": "cus_nope"})
    expect_eq((err(body).get("code"), err(body).get("param")),
              ("resource_missing", "starting_after"), "unknown cursor")


def test_customer_search():
    sim = StripeSim(rate=0)
    a = sim.create_customer(email="a@example.com", name="Ana Pop", metadata={"ext": "42"})
    b = sim.create_customer(email="b@example.com", name="Bogdan Pop")
    res = sim.get("/v1/customers/search", query="metadata['ext']:'42'")
    expect_eq((res["object"], [c["id"] for c in res["data"]]), ("search_result", [a["id"]]),
              "search by metadata")
    res = sim.get("/v1/customers/search", query="name~'pop'", limit=1)
    expect_eq(([c["id"] for c in res["data"]], res["has_more"]), ([b["id"]], True), "page 1")
    res = sim.get("/v1/customers/search", query="name~'pop'", limit=1, page=res["next_page"])
    expect_eq(([c["id"] for c in res["data"]], res["next_page"]), ([a["id"]], None), "page 2")
    res = sim.get("/v1/customers/search", query="email:'a@example.com' OR email:'b@example.com'")
    expect_eq(len(res["data"]), 2, "OR")
    st, _, _ = sim.api("GET", "/v1/customers/search", {"query": "nonsense"})
    expect_eq(st, 400, "bad query")


# --- events ----------------------------------------------------------------


def test_events_order_and_filters():
    sim = StripeSim(rate=0, seed=3)
    st, c1, h1 = sim.api("POST", "/v1/customers", {"email": "a@example.com"},
                         idempotency_key="key-1")
    expect_eq(st, 200, "create")
    _, _, h2 = sim.api("POST", "/v1/customers/" + c1["id"],
                       {"name": "Ana", "metadata": {"k": "v"}})
    c2 = sim.create_customer(name="Two")
    sim.delete_customer(c2["id"])
    p = sim.person_update(c1["id"], {"phone": "+40700000000"})
    evs = sim.events()
    types = [e["type"] for e in evs["data"]]
    expect_eq(types, ["customer.updated", "customer.deleted", "customer.created",
                      "customer.updated", "customer.created"], "newest first")
    expect_eq((evs["object"], evs["url"], evs["has_more"]), ("list", "/v1/events", False), "list")
    created, updated = evs["data"][4], evs["data"][3]
    expect_eq(set(created), fixture_keys("event"), "event keys match the fixture")
    expect(created["id"].startswith("evt_"), "event id", created["id"])
    expect_eq((created["livemode"], created["pending_webhooks"], created["api_version"]),
              (False, 0, "2025-03-31.basil"), "event fields")
    expect_eq(created["request"], {"id": h1["request-id"], "idempotency_key": "key-1"},
              "request of an API create")
    expect_eq(updated["request"], {"id": h2["request-id"], "idempotency_key": None},
              "request of an API update")
    expect_eq(updated["data"]["previous_attributes"], {"name": None, "metadata": {"k": None}},
              "previous_attributes")
    expect_eq(updated["data"]["object"]["name"], "Ana", "data.object after the change")
    expect_eq(evs["data"][1]["data"]["object"]["id"], c2["id"], "deleted event's object")
    expect_eq(p["events"], [evs["data"][0]["id"]], "a person's edit emits its event")
    expect(evs["data"][0]["request"]["idempotency_key"] is None, "dashboard request",
           evs["data"][0])

    expect_eq([e["type"] for e in sim.events(type="customer.created")["data"]],
              ["customer.created"] * 2, "type filter")
    expect_eq([e["type"] for e in sim.events(types=["customer.deleted", "customer.updated"],
                                             limit=2)["data"]],
              ["customer.updated", "customer.deleted"], "types[] filter with a limit")
    expect_eq(len(sim.events(type="customer.*")["data"]), 5, "wildcard")
    expect_eq(sim.events(type="invoice.paid")["data"], [], "no match")
    expect_eq(len(sim.events(created={"gte": created["created"]})["data"]), 5, "created[gte]")
    expect_eq(sim.events(created={"gt": created["created"] + 3600})["data"], [], "created[gt]")
    st, _, _ = sim.api("GET", "/v1/events", {"type": "a", "types": ["b"]})
    expect_eq(st, 400, "type and types together")

    page = sim.events(limit=2)
    expect_eq(page["has_more"], True, "has_more")
    nxt = sim.events(limit=2, starting_after=page["data"][-1]["id"])
    expect_eq([e["id"] for e in nxt["data"]], [e["id"] for e in evs["data"][2:4]],
              "starting_after")
    back = sim.events(ending_before=evs["data"][2]["id"])
    expect_eq([e["id"] for e in back["data"]], [e["id"] for e in evs["data"][:2]],
              "ending_before")
    expect_eq(sim.get("/v1/events/" + created["id"]), created, "GET event by id")


def test_event_retention():
    sim = StripeSim(rate=0)
    for i in range(4):
        sim.create_customer(name="c%d" % i)
    evs = sim.events()["data"]
    oldest, second = evs[-1]["id"], evs[-2]["id"]
    out = sim.age_events(31 * 86400, ids=[oldest])
    expect_eq((out["aged"], out["kept"]), (1, 3), "aged one event past 30 days")
    expect_eq([e["id"] for e in sim.events()["data"]], [e["id"] for e in evs[:-1]],
              "the old event is gone from the list")
    for q in ({"ending_before": oldest}, {"starting_after": oldest}):
        st, body, _ = sim.api("GET", "/v1/events", q)
        expect_eq((st, err(body).get("code"), err(body).get("param")),
                  (404, "resource_missing", list(q)[0]), "cursor of a vanished event %r" % q)
        expect_eq(err(body).get("message"), "No such event: '%s'" % oldest, "message")
    st, _, _ = sim.api("GET", "/v1/events/" + oldest)
    expect_eq(st, 404, "GET of a vanished event")
    expect_eq([e["id"] for e in sim.events(ending_before=second)["data"]],
              [e["id"] for e in evs[:-2]], "a kept cursor still works")

    short = StripeSim(rate=0, retention_s=100)
    short.create_customer(name="x")
    short.age_events(50)
    expect_eq(len(short.events()["data"]), 1, "inside --retention-s")
    short.age_events(51)
    expect_eq(short.events()["data"], [], "past --retention-s")
    expect_eq(short.sim_events(), [], "control view agrees")


# --- webhooks --------------------------------------------------------------


def test_webhook_signature_and_retries():
    hook = Listener()
    sim = StripeSim(rate=0, webhook_url=hook.url + "/hooks/stripe", webhook_secret=SECRET,
                    webhook_backoff_ms=50, webhook_attempts=3)
    c = sim.create_customer(email="w@example.com")
    got = wait_until(lambda: hook.got(), 5, "the webhook")[0]
    body = got["body"]
    evt = json.loads(body)
    expect_eq((got["method"], got["path"]), ("POST", "/hooks/stripe"), "where it went")
    expect_eq((evt["type"], evt["data"]["object"]["id"], evt["pending_webhooks"]),
              ("customer.created", c["id"], 1), "the event")
    expect_eq(evt, sim.events()["data"][0] | {"pending_webhooks": 1}, "same as the feed")
    expect(b'\n  "id": "evt_' in body, "pretty-printed like Stripe's", body[:60])
    expect(got["headers"]["content-type"].startswith("application/json"), "content type", got)
    sig = got["headers"]["stripe-signature"]
    parts = dict(p.split("=", 1) for p in sig.split(","))
    t = int(parts["t"])
    mine = hmac.new(SECRET.encode(), ("%d." % t).encode() + body, hashlib.sha256).hexdigest()
    expect_eq(parts["v1"], mine, "v1 = hex(HMAC-SHA256(whole secret, 't.' + raw body))")
    expect(abs(time.time() - t) < 60, "t is now", t)
    wrong = hmac.new(b"whsec_other", ("%d." % t).encode() + body, hashlib.sha256).hexdigest()
    expect(parts["v1"] != wrong, "another secret signs differently")
    expect(verify_signature(sig, body, SECRET), "stripe_harness.verify_signature agrees")
    expect(not verify_signature(sig, body + b" ", SECRET), "a changed body fails")
    expect(not verify_signature(sig, body, SECRET, now=t + 301), "an old timestamp fails")
    wait_until(lambda: sim.events()["data"][0]["pending_webhooks"] == 0, 5, "delivered")

    hook.status = 500
    sim.person_update(c["id"], {"name": "Retry"})
    wait_until(lambda: len(hook.got()) >= 3, 5, "two attempts")
    ev2 = sim.events()["data"][0]
    expect_eq(ev2["pending_webhooks"], 1, "pending while failing")
    expect_eq([e["id"] for e in sim.events(delivery_success=False)["data"]], [ev2["id"]],
              "delivery_success=false")
    hook.status = 200
    wait_until(lambda: sim.events()["data"][0]["pending_webhooks"] == 0, 5, "the retry")
    tries = [d for d in sim.deliveries() if d["event_id"] == ev2["id"]]
    expect_eq([(d["attempt"], d["status"]) for d in tries], [(1, 500), (2, 500), (3, 200)],
              "attempts")
    expect(tries[2]["time"] - tries[1]["time"] >= 0.09, "backoff doubles (50, 100 ms)", tries)
    bodies = [g["body"] for g in hook.got()[1:]]
    expect(len(set(bodies)) == 1, "every attempt sends the same bytes")
    for g in hook.got():
        expect(verify_signature(g["headers"]["stripe-signature"], g["body"], SECRET),
               "each attempt is signed", g["headers"])

    hook.status = 503
    sim.person_update(c["id"], {"name": "Lost"})
    wait_until(lambda: sim.stats()["webhooks"]["gave_up"] == 1, 5, "giving up")
    lost = sim.events()["data"][0]["id"]
    expect_eq(len([d for d in sim.deliveries() if d["event_id"] == lost]), 3, "3 attempts")
    hook.status = 200
    sim.resend(lost)
    wait_until(lambda: sim.events()["data"][0]["pending_webhooks"] == 0, 5, "a resend")

    out = sim.send_raw({"id": "evt_fake"}, sign=True, timestamp=1000)
    expect_eq(out["status"], 200, "send_raw reaches the endpoint")
    raw = hook.got()[-1]
    expect(verify_signature(raw["headers"]["stripe-signature"], raw["body"], SECRET,
                            now=1000), "send_raw signs with the given timestamp")


def mischief_run(seed, knobs, n=16):
    hook = Listener()
    sim = StripeSim(rate=0, seed=seed, webhook_url=hook.url, webhook_secret=SECRET,
                    webhook_backoff_ms=50)
    sim.webhooks(**knobs)
    for i in range(n):
        sim.person_create({"name": "p%d" % i})
    sim.wait_delivered(10)
    order = [e["id"] for e in sim.sim_events()]
    arrived = [json.loads(g["body"])["id"] for g in hook.got()]
    plan = sorted((d["event_id"], d["copy"], d["status"]) for d in sim.deliveries())
    return order, arrived, plan, sim.stats()["webhooks"]


def test_webhook_mischief_seeded():
    knobs = {"seed": 11, "drop": 0.25, "dup": 0.3, "delay_ms": 150}
    order, arrived, plan, st = mischief_run(5, knobs)
    expect(st["dropped"] > 0 and st["dups"] > 0, "some dropped, some duplicated", st)
    dropped = {p[0] for p in plan if p[2] == "dropped"}
    expect_eq(set(arrived), set(order) - dropped, "everything not dropped arrived")
    expect_eq(len(arrived), len(order) - len(dropped) + st["dups"], "duplicates arrive twice")
    expect(any(arrived.count(e) == 2 for e in arrived), "a duplicate has the same event id")
    kept = [e for e in order if e not in dropped]
    first_seen = sorted(set(arrived), key=arrived.index)
    expect(first_seen != kept, "random delays reorder deliveries", first_seen, kept)
    order2, arrived2, plan2, _ = mischief_run(5, knobs)
    expect_eq((order2, plan2), (order, plan), "the same seeds make the same plan")
    _, _, plan3, _ = mischief_run(5, dict(knobs, seed=12))
    expect(plan3 != plan, "another mischief seed makes another plan")

    order, arrived, _, st = mischief_run(6, {"seed": 3, "reorder": 0.5, "hold_ms": 3000}, 10)
    expect(st["reordered"] > 0, "some held back", st)
    expect_eq(sorted(arrived), sorted(order), "reorder drops nothing")
    expect(arrived != order, "held events come after the next one", arrived, order)


# --- idempotency -----------------------------------------------------------


def test_idempotency():
    sim = StripeSim(rate=0)
    st, first, h1 = sim.api("POST", "/v1/customers", {"email": "i@example.com"},
                            idempotency_key="k-1")
    expect_eq((st, h1.get("idempotent-replayed")), (200, None), "first answer")
    st, again, h2 = sim.api("POST", "/v1/customers", {"email": "i@example.com"},
                            idempotency_key="k-1")
    expect_eq((st, again), (200, first), "replayed answer")
    expect_eq((h2.get("idempotent-replayed"), h2.get("original-request")),
              ("true", h1["request-id"]), "replay headers")
    expect(h2["request-id"] != h1["request-id"], "a replay has its own Request-Id")
    expect_eq(len(sim.objects("customer")), 1, "created once")
    expect_eq(len(sim.sim_events()), 1, "one event")

    for path, params in (("/v1/customers", {"email": "other@example.com"}),
                         ("/v1/customers/" + first["id"], {"email": "i@example.com"})):
        st, body, h = sim.api("POST", path, params, idempotency_key="k-1")
        expect_eq((st, err(body).get("type"), h.get("stripe-should-retry")),
                  (400, "idempotency_error", "false"), "same key, other request %s" % path)

    st, _, _ = sim.api("POST", "/v1/customers", {"email": "bad"}, idempotency_key="k-2")
    expect_eq(st, 400, "a validation error")
    st, c2, h = sim.api("POST", "/v1/customers", {"email": "good@example.com"},
                        idempotency_key="k-2")
    expect_eq((st, h.get("idempotent-replayed")), (200, None), "validation errors are not kept")

    sim.faults([{"delay_ms": 1200, "match": {"method": "POST", "path_prefix": "/v1/customers"}}])
    slow = {}

    def first_request():
        slow["answer"] = sim.api("POST", "/v1/customers", {"name": "slow"},
                                 idempotency_key="k-3")

    t = threading.Thread(target=first_request)
    t.start()
    wait_until(lambda: any(r.get("fault") for r in sim.requests()), 5, "the slow request")
    st, body, h = sim.api("POST", "/v1/customers", {"name": "slow"}, idempotency_key="k-3")
    expect_eq((st, err(body).get("type"), err(body).get("code"), h.get("stripe-should-retry")),
              (409, "idempotency_error", "idempotency_key_in_use", "true"), "key in use")
    t.join(10)
    expect_eq(slow["answer"][0], 200, "the slow request went through")
    st, body, h = sim.api("POST", "/v1/customers", {"name": "slow"}, idempotency_key="k-3")
    expect_eq((st, body["id"], h.get("idempotent-replayed")),
              (200, slow["answer"][1]["id"], "true"), "then replayed")

    sim.faults([{"status": 500, "stored": True}])
    st, body, _ = sim.api("POST", "/v1/customers", {"name": "x"}, idempotency_key="k-4")
    expect_eq((st, err(body).get("type")), (500, "api_error"), "a 500 inside the endpoint")
    st, body2, h = sim.api("POST", "/v1/customers", {"name": "x"}, idempotency_key="k-4")
    expect_eq((st, h.get("idempotent-replayed")), (500, "true"), "the 500 is replayed")
    expect_eq(body2, body, "byte for byte")
    sim.faults([{"status": 503}])
    st, _, _ = sim.api("POST", "/v1/customers", {"name": "y"}, idempotency_key="k-5")
    expect_eq(st, 503, "an edge 503")
    st, _, h = sim.api("POST", "/v1/customers", {"name": "y"}, idempotency_key="k-5")
    expect_eq((st, h.get("idempotent-replayed")), (200, None), "an edge error is not kept")

    sim.faults([{"reset": "after"}])
    e = connection_error(lambda: sim.api("POST", "/v1/customers", {"name": "lost"},
                                         idempotency_key="k-6"))
    expect(e is not None, "the answer was lost")
    st, body, h = sim.api("POST", "/v1/customers", {"name": "lost"}, idempotency_key="k-6")
    expect_eq((st, h.get("idempotent-replayed")), (200, "true"), "retry after a lost answer")
    expect_eq(len([c for c in sim.objects("customer").values() if c["name"] == "lost"]), 1,
              "applied once")
    sim.expire_idempotency(["k-6"])
    st, body2, h = sim.api("POST", "/v1/customers", {"name": "lost"}, idempotency_key="k-6")
    expect((st, h.get("idempotent-replayed")) == (200, None) and body2["id"] != body["id"],
           "a pruned key runs again", body2)
    st, _, _ = sim.api("POST", "/v1/customers", {"name": "z"}, idempotency_key="k" * 256)
    expect_eq(st, 400, "a key longer than 255 characters")


# --- auth, rate limit, faults ----------------------------------------------


def test_auth():
    sim = StripeSim(rate=0)
    st, body, h = sim.api("GET", "/v1/customers", key=None)
    expect_eq((st, err(body).get("type")), (401, "invalid_request_error"), "no key")
    expect(err(body)["message"].startswith("You did not provide an API key"), "message", body)
    expect("request-id" in h and "www-authenticate" in h, "401 headers", h)
    st, body, _ = sim.api("POST", "/v1/customers", {"name": "x"}, key="sk_test_wrongwrong1234")
    expect_eq(st, 401, "wrong key")
    msg = err(body)["message"]
    expect(msg.startswith("Invalid API Key provided: sk_test_") and msg.endswith("1234")
           and "wrongwrong" not in msg, "the key is masked", msg)
    st, _, _ = sim.api("GET", "/v1/customers", key=None,
                       headers={"Authorization": "Bearer " + sim.api_key + "x"})
    expect_eq(st, 401, "a longer key")
    basic = base64.b64encode((sim.api_key + ":").encode()).decode()
    st, _, _ = sim.api("GET", "/v1/customers", key=None,
                       headers={"Authorization": "Basic " + basic})
    expect_eq(st, 200, "Basic key: works")
    expect_eq(sim.objects("customer"), {}, "nothing created without a key")
    expect_eq(sim.stats()["unauthorized"], 3, "counted")
    expect_eq([r["status"] for r in sim.requests()], [401, 401, 401, 200], "logged")


def test_rate_limit():
    sim = StripeSim(rate=10, burst=5)
    t0 = time.monotonic()
    answers = [sim.api("GET", "/v1/customers") for _ in range(30)]
    dt = time.monotonic() - t0
    ok = sum(1 for a in answers if a[0] == 200)
    limited = [a for a in answers if a[0] == 429]
    expect(limited, "some requests are limited")
    expect(ok >= 5, "the burst passes", ok)
    expect(ok <= 5 + 10 * dt + 1, "no more than the bucket allows", ok, dt)
    st, body, h = limited[0]
    expect_eq((err(body).get("type"), err(body).get("code")), ("invalid_request_error",
                                                               "rate_limit"), "429 body")
    expect("request-id" in h, "429 has a Request-Id", h)
    expect_eq(sim.stats()["rate_limited"], len(limited), "counted")
    wait_until(lambda: sim.api("GET", "/v1/customers")[0] == 200, 3, "the bucket refills")
    sim.rate_limit(0)
    expect(all(sim.api("GET", "/v1/customers")[0] == 200 for _ in range(40)), "limiter off")
    sim.rate_limit(1, burst=1)
    expect_eq([sim.api("GET", "/v1/customers")[0] for _ in range(2)], [200, 429],
              "a tighter bucket")


def test_a_fault_matched_by_path_fits_only_that_path():
    sim = StripeSim(rate=0)
    sim.faults([{"status": 500, "match": {"method": "GET", "path": "/v1/customers"}}])
    expect_eq(sim.api("GET", "/v1/events")[0], 200, "another path passes")
    expect_eq(sim.api("GET", "/v1/customers", {"limit": 1})[0], 500, "its path, query aside")


def test_fault_kinds():
    sim = StripeSim(rate=0)
    sim.faults([{"status": 503, "retry_after": "2", "match": {"method": "POST"}}])
    expect_eq(sim.api("GET", "/v1/customers")[0], 200, "a GET does not match a POST fault")
    st, body, h = sim.api("POST", "/v1/customers", {"name": "a"})
    expect_eq((st, h.get("retry-after"), err(body).get("type")), (503, "2", "api_error"),
              "status fault")
    expect("request-id" in h and "request_log_url" in err(body), "Stripe-shaped", h, body)
    sim.faults([{"status": 402, "after": 1}])
    expect_eq(sim.api("GET", "/v1/customers")[0], 200, "dormant for one request")
    st, body, _ = sim.api("GET", "/v1/customers")
    expect_eq((st, err(body).get("type"), err(body).get("decline_code")),
              (402, "card_error", "generic_decline"), "then fires")

    sim.faults([{"reset": "before"}])
    expect(connection_error(lambda: sim.api("POST", "/v1/customers", {"name": "rb"}))
           is not None, "reset before")
    sim.faults([{"reset": "after"}])
    expect(connection_error(lambda: sim.api("POST", "/v1/customers", {"name": "ra"}))
           is not None, "reset after")
    names = sorted(c["name"] for c in sim.objects("customer").values())
    expect_eq(names, ["ra"], "reset before applies nothing, reset after applies")
    sim.faults([{"delay_ms": 800}])
    e = connection_error(lambda: sim.api("POST", "/v1/customers", {"name": "late"},
                                         timeout=0.3))
    expect(e is not None, "the client gave up")
    wait_until(lambda: sim.requests()[-1]["status"] == "timeout", 5, "the slow request")
    log = sim.requests()
    expect_eq([(r["status"], r["applied"]) for r in log[-3:]],
              [("reset", False), ("lost", True), ("timeout", True)], "logged outcomes")
    expect("late" in [c["name"] for c in sim.objects("customer").values()],
           "applied although the client gave up")

    sim.random(seed=1, rate=1.0, kinds=["lock_timeout"])
    st, body, h = sim.api("GET", "/v1/customers")
    expect_eq((st, err(body).get("code"), h.get("stripe-should-retry")),
              (429, "lock_timeout", "true"), "lock_timeout")
    sim.random(seed=1, rate=0)
    expect_eq(sim.stats()["faults"], 6, "faults counted")


def test_seeded_replay():
    def run(seed):
        sim = StripeSim(rate=0, seed=seed)
        ids = [sim.create_customer(name="c%d" % i)["id"] for i in range(5)]
        sim.payment_intent(customer=ids[0], amount=100, currency="ron")
        evs = [e["id"] for e in sim.sim_events()]
        sim.random(seed=9, rate=0.5, kinds=["503", "500", "429", "lost"])
        outcomes = []
        for i in range(20):
            try:
                outcomes.append(sim.api("GET", "/v1/customers")[0])
            except (OSError, http.client.HTTPException):
                outcomes.append("conn")
        return ids, evs, outcomes, [r["request_id"] for r in sim.requests()]

    a, b, c = run(42), run(42), run(43)
    expect_eq(a, b, "the same seed replays ids, events, request ids and faults")
    expect(a[0] != c[0] and a[1] != c[1], "another seed, other ids")
    expect(len(set(a[2])) > 1, "the random faults fire", a[2])


# --- payment flows ---------------------------------------------------------


def test_payment_flows():
    hook = Listener()
    sim = StripeSim(rate=0, webhook_url=hook.url, webhook_secret=SECRET,
                    webhook_events="payment_intent.*,charge.*,invoice.paid,checkout.*")
    cus = sim.create_customer(email="pay@example.com", name="Payer")
    since = len(sim.sim_events())
    out = sim.payment_intent(customer=cus["id"], amount=1999, currency="RON", wait=True)
    pi = out["object"]
    expect_eq((pi["status"], pi["amount_received"], pi["currency"]), ("succeeded", 1999, "ron"),
              "payment intent")
    expect_eq(set(pi), fixture_keys("payment_intent"), "payment intent keys")
    expect_eq(set(out["charge"]), fixture_keys("charge"), "charge keys")
    evs = sim.sim_events()[since:]
    expect_eq([e["type"] for e in evs],
              ["payment_intent.created", "charge.succeeded", "payment_intent.succeeded"],
              "payment events, oldest first")
    expect_eq(sorted(d["event_id"] for d in out["deliveries"]), sorted(out["events"]),
              "wait=true reports the deliveries")
    got = sim.get("/v1/payment_intents/" + pi["id"], expand=["latest_charge", "customer"])
    expect_eq((got["latest_charge"]["object"], got["latest_charge"]["amount"],
               got["customer"]["email"]), ("charge", 1999, "pay@example.com"), "expand")
    st, body, _ = sim.api("GET", "/v1/payment_intents/" + pi["id"], {"expand": ["amount"]})
    expect_eq(st, 400, "not expandable")
    expect_eq([p["id"] for p in sim.get("/v1/payment_intents", customer=cus["id"])["data"]],
              [pi["id"]], "list by customer")
    lst = sim.get("/v1/charges", payment_intent=pi["id"], expand=["data.customer"])
    expect_eq(lst["data"][0]["customer"]["id"], cus["id"], "expand in a list")

    fail = sim.payment_intent(customer=cus["id"], amount=500, status="payment_failed")
    expect_eq((fail["object"]["status"], fail["object"]["last_payment_error"]["code"]),
              ("requires_payment_method", "card_declined"), "a decline")
    expect_eq([e["type"] for e in sim.sim_events()[-2:]],
              ["charge.failed", "payment_intent.payment_failed"], "decline events")
    ref = sim.refund(payment_intent=pi["id"])
    expect_eq((ref["object"]["refunded"], sim.sim_events()[-1]["type"]),
              (True, "charge.refunded"), "refund")

    inv = sim.invoice(customer=cus["id"], amount=5000, currency="ron", status="paid")["object"]
    expect_eq(set(inv), fixture_keys("invoice"), "invoice keys")
    expect_eq((inv["status"], inv["amount_paid"], inv["amount_remaining"], inv["number"]),
              ("paid", 5000, 0, cus["invoice_prefix"] + "-0001"), "paid invoice")
    tail = [e["type"] for e in sim.sim_events()[-7:]]
    expect_eq(tail, ["invoice.created", "invoice.finalized", "payment_intent.created",
                     "charge.succeeded", "payment_intent.succeeded", "invoice.paid",
                     "invoice.payment_succeeded"], "invoice events")
    inv2 = sim.invoice(customer=cus["id"], amount=100, status="open")["object"]
    expect_eq((inv2["status"], inv2["number"]), ("open", cus["invoice_prefix"] + "-0002"),
              "numbering")
    sim.invoice(id=inv2["id"], status="void")
    expect_eq(sim.get("/v1/invoices", status="void")["data"][0]["id"], inv2["id"], "void")
    upd = sim._ok("POST", "/v1/invoices/" + inv["id"], {"metadata": {"erp": "F-1"}})
    expect_eq((upd["metadata"], sim.sim_events()[-1]["type"]), ({"erp": "F-1"},
                                                               "invoice.updated"), "metadata")

    cs = sim.checkout_session(customer_email="new@example.com", customer_name="New",
                              customer_creation="always", amount_total=1000, currency="eur",
                              status="complete")["object"]
    expect_eq(set(cs), fixture_keys("checkout.session"), "checkout session keys")
    expect_eq((cs["status"], cs["payment_status"]), ("complete", "paid"), "completed")
    newc = sim.get("/v1/customers/" + cs["customer"])
    expect_eq((newc["email"], newc["name"]), ("new@example.com", "New"), "customer created")
    tail = [e["type"] for e in sim.sim_events()[-5:]]
    expect_eq(tail, ["customer.created", "payment_intent.created", "charge.succeeded",
                     "payment_intent.succeeded", "checkout.session.completed"], "checkout")
    expect_eq(sim.get("/v1/checkout/sessions/" + cs["id"])["payment_intent"],
              cs["payment_intent"], "GET checkout session")
    expect(cs["id"].startswith("cs_test_"), "session id", cs["id"])

    sim.wait_delivered()
    # "Not pending" can come while the last delivery is on its way.
    harness.wait_until(lambda: {"invoice.paid", "checkout.session.completed", "charge.refunded"}
                       <= {json.loads(g["body"])["type"] for g in hook.got()}, 10,
                       "the endpoint to get its events")
    sent = {json.loads(g["body"])["type"] for g in hook.got()}
    expect("customer.created" not in sent and "invoice.created" not in sent
           and {"invoice.paid", "checkout.session.completed", "charge.refunded"} <= sent,
           "--webhook-events filters what the endpoint gets", sent)
    cust_evt = next(e for e in sim.sim_events() if e["type"] == "customer.created")
    expect_eq(cust_evt["pending_webhooks"], 0, "an event the endpoint does not take")


if __name__ == "__main__":
    harness.run_tests(globals())
