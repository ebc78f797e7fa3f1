#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""HubSpot contacts kept in agreement with a shop, both ways, with the
hubspot kind (docs/hubspot.md): concord talks to the HubSpot simulator
(tests/sims/hubspot.py) the way HubSpot wants it. Writes are JSON with
every property a string; a create that meets an email HubSpot holds links
that contact; a person's change in HubSpot comes as a signed (v3) webhook
that names the contact only, so it makes concord search for what changed;
a deletion event deletes; the search moves its anchor instead of paging
past HubSpot's 10,000-result window; a 429 is waited out; a wrong token
is a failure with HubSpot's words in the inbox and in `concord status`.
Every request concord made must validate against HubSpot's spec."""

import json
import os
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Concord, Sim, wait_until  # noqa: E402
from hubspot_harness import BASE, SECRET, TOKEN, HubSpotSim  # noqa: E402

SHOP_SECRET = "shop-secret"
PUBLIC = "https://sync.example.com"

HUBSPOT = """
  hubspot:
    kind: hubspot
    base_url: http://127.0.0.1:{hs_port}
    token: env:HUBSPOT_TOKEN
    client_secret: env:HUBSPOT_SECRET
    public_url: https://sync.example.com
    timeout_ms: 1000
    retry: {max_attempts: 6, base_ms: 50, cap_ms: 300, jitter: 0.1}
    delete_guard: off
    collections:
      contacts:
        model: customer
        map_in: {email: properties.email, name: properties.firstname, visits: properties.visits}
        map_out: {properties.email: email, properties.firstname: name, properties.visits: visits}
        poll: {every: 1h}
"""

SHOP = """
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
        map_in: {email: email, name: name, visits: visits}
        map_out: {email: email, name: name, visits: visits}
        create: POST /customers
        update: PUT /customers/{id}
        delete: DELETE /customers/{id}
        idempotency_header: Idempotency-Key
"""

# The same, described in plain config (docs/hubspot.md).
PLAIN = """
  hubspot:
    kind: http
    base_url: http://127.0.0.1:{hs_port}
    auth: {bearer: env:HUBSPOT_TOKEN}
    rate_limit: {rate: 9, per: 1s, burst: 10}
    rate_limited_block: 10s
    errors: {message: message}
    timeout_ms: 1000
    retry: {max_attempts: 6, base_ms: 50, cap_ms: 300, jitter: 0.1}
    delete_guard: off
    webhook:
      path: /webhooks/hubspot
      signature:
        scheme: hubspot-v3
        secret: env:HUBSPOT_SECRET
        url: https://sync.example.com/webhooks/hubspot
    collections:
      contacts:
        model: customer
        map_in: {email: properties.email, name: properties.firstname, visits: properties.visits}
        map_out: {properties.email: email, properties.firstname: name, properties.visits: visits}
        string_values: properties
        create: POST /crm/v3/objects/contacts
        update: PATCH /crm/v3/objects/contacts/{id}
        delete: DELETE /crm/v3/objects/contacts/{id}
        on_conflict: {status: 409, id_after: "Existing ID: "}
        lookup: GET /crm/v3/objects/contacts/{properties.email}?idProperty=email&properties=email,firstname,visits,lastmodifieddate
        lookup_missing: 404
        updated_at: properties.lastmodifieddate
        match: 'type == "array" and any(.[]; (.subscriptionType // "") | startswith("contact."))'
        hint: poll
        deleted_when: '.subscriptionType == "contact.deletion" or .subscriptionType == "contact.privacyDeletion"'
        deleted_id: objectId
        poll:
          every: 1h
          list: GET /crm/v3/objects/contacts?limit=100&properties=email,firstname,visits,lastmodifieddate
          items: results
          page: {kind: cursor, param: after, next: paging.next.after}
          cursor:
            kind: search
            list: POST /crm/v3/objects/contacts/search
            body:
              filterGroups: [{filters: [{propertyName: lastmodifieddate, operator: GTE, value: "{since}"}]}]
              sorts: [{propertyName: lastmodifieddate, direction: ASCENDING}]
              properties: [email, firstname, visits, lastmodifieddate]
              limit: 200
              after: "{after}"
            field: properties.lastmodifieddate
            overlap: 10s
"""

CONFIG = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=2000
log: {level: debug, format: json}
systems:
""" + HUBSPOT.lstrip("\n") + SHOP.lstrip("\n") + """
models:
  customer:
    fields: {email: string, name: string, visits: integer}
syncs:
  customers:
    model: customer
    origin: [shop, hubspot]
    collections: [shop.customers, hubspot.contacts]
    match: [email]
"""

# HubSpot alone: what its search reads, with no other system to write.
ALONE = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=5000
log: {level: info, format: json}
systems:
""" + HUBSPOT.lstrip("\n") + """
models:
  customer:
    fields: {email: string, name: string, visits: integer}
syncs:
  customers:
    model: customer
    origin: [hubspot]
    collections: [hubspot.contacts]
"""


def setup(config=CONFIG, token=TOKEN, **sim_flags):
    port = harness.free_port()
    flags = dict(seed=11, properties="visits", webhook_url="http://127.0.0.1:%d/webhooks/hubspot" % port,
                 webhook_public_url=PUBLIC + "/webhooks/hubspot", webhook_backoff_ms=100,
                 webhook_batch_ms=50)
    flags.update(sim_flags)
    hs = HubSpotSim(**flags)
    shop = Sim(resource="customers", id_prefix="S", idempotency_header="Idempotency-Key",
               webhook_url="http://127.0.0.1:%d/webhooks/shop" % port,
               webhook_secret=SHOP_SECRET, signature_header="X-Shop-Signature")
    c = Concord(config, values={"port": port, "hs_port": hs.port, "shop_port": shop.port},
                env={"HUBSPOT_TOKEN": token, "HUBSPOT_SECRET": SECRET,
                     "SHOP_SECRET": SHOP_SECRET})
    c.start()
    # The first poll reads from the start (a search from time 0). Until it
    # has ended, a contact a test seeds may be read by it, and the shop's
    # create would then not meet HubSpot's copy with a 409 (the shop's
    # customer becomes a conflict with the one that read made).
    c.wait_first_poll("hubspot.contacts")
    return hs, shop, c


def by_email(hs):
    return {x["properties"].get("email"): x for x in hs.contacts().values()}


def api(hs, method, prefix=BASE):
    return [r for r in hs.requests(method) if r["path"].split("?")[0].startswith(prefix)]


def shop_by_email(shop):
    return {r.get("email"): (k, r) for k, r in shop.records().items()}


def test_a_shop_customer_becomes_a_contact_and_follows_its_changes():
    hs, shop, c = setup()
    shop.change("s1", {"email": "ada@example.com", "name": "Ada", "visits": 3})
    got = wait_until(lambda: by_email(hs).get("ada@example.com"), 10, "the HubSpot contact")
    assert got["properties"]["firstname"] == "Ada", got
    (post,) = [r for r in api(hs, "POST") if r["path"] == BASE]
    assert post["status"] == 201, post
    # HubSpot's properties are strings: the integer 3 goes as "3".
    assert post["body"] == {"properties": {"email": "ada@example.com", "firstname": "Ada",
                                           "visits": "3"}}, post
    assert post["headers"]["authorization"] == "Bearer " + TOKEN
    cid = got["id"]
    # An edit is a PATCH of the contact.
    shop.change("s1", {"email": "ada@example.com", "name": "Ada Lovelace", "visits": 4})
    wait_until(lambda: hs.contacts()[cid]["properties"].get("firstname") == "Ada Lovelace", 10,
               "the new name in HubSpot")
    patches = api(hs, "PATCH")
    assert [p["path"] for p in patches] == [BASE + "/" + cid], patches
    assert patches[0]["body"]["properties"]["visits"] == "4", patches
    # A deletion in the shop archives the contact.
    shop.delete("s1")
    wait_until(lambda: cid not in hs.contacts(), 10, "the contact archived")
    assert [r["path"] for r in api(hs, "DELETE")] == [BASE + "/" + cid]
    c.wait_settled()
    assert [r for r in api(hs, "POST") if r["path"] == BASE] == [post]
    assert hs.invalid() == []
    assert c.cli_json("failed") == []


def test_a_person_s_change_in_hubspot_reaches_the_shop_by_webhook_and_search():
    hs, shop, c = setup()
    t0 = time.monotonic()
    made = hs.ui_create({"email": "grace@example.com", "firstname": "Grace"})["contact"]
    k, rec = wait_until(lambda: shop_by_email(shop).get("grace@example.com"), 10,
                        "the contact in the shop")
    assert rec["name"] == "Grace", rec
    # The poll is hourly: the webhook made concord search now.
    assert time.monotonic() - t0 < 8
    searches = api(hs, "POST", BASE + "/search")
    assert searches, "a search"
    s = searches[0]["body"]
    assert s["sorts"] == [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}], s
    assert s["filterGroups"][0]["filters"][0]["propertyName"] == "lastmodifieddate", s
    assert s["filterGroups"][0]["filters"][0]["operator"] == "GTE", s
    assert {"email", "firstname", "lastmodifieddate"} <= set(s["properties"]), s
    # Every webhook was signed (v3 over the public URL) and taken.
    hs.wait_delivered()
    assert all(d["status"] in (200, 202) for d in hs.deliveries()), hs.deliveries()
    hs.ui_update(made["id"], {"firstname": "Grace H."})
    wait_until(lambda: shop.records()[k].get("name") == "Grace H.", 10, "the edit in the shop")
    # The shop's own write did not come back to HubSpot as a change.
    c.wait_settled()
    assert api(hs, "PATCH") == [] and [r for r in api(hs, "POST") if r["path"] == BASE] == []
    # A person deletes the contact: contact.deletion deletes the customer.
    hs.ui_delete(made["id"])
    wait_until(lambda: k not in shop.records(), 10, "the customer deleted in the shop")
    c.wait_settled()
    assert hs.invalid() == []
    assert c.cli_json("failed") == []


def test_a_create_that_meets_an_email_hubspot_holds_links_that_contact():
    hs, shop, c = setup()
    # HubSpot holds Ada already, and concord has not read her yet.
    (held,) = hs.seed(contacts=[{"properties": {"email": "ada@example.com",
                                                "firstname": "A."}}])
    shop.change("s1", {"email": "ada@example.com", "name": "Ada Lovelace"})
    wait_until(lambda: hs.contacts()[held]["properties"].get("firstname") == "Ada Lovelace", 10,
               "the shop's name written to the contact HubSpot held")
    creates = [r for r in api(hs, "POST") if r["path"] == BASE]
    assert [r["status"] for r in creates] == [409], creates
    assert [r["path"] for r in api(hs, "PATCH")] == [BASE + "/" + held]
    assert list(by_email(hs)) == ["ada@example.com"], hs.contacts()
    # Linked: a person's edit there reaches the shop's customer.
    hs.ui_update(held, {"firstname": "Augusta Ada"})
    wait_until(lambda: shop_by_email(shop)["ada@example.com"][1].get("name") == "Augusta Ada", 10,
               "the edit in the shop")
    c.wait_settled()
    assert len(shop.records()) == 1
    assert hs.invalid() == []
    assert c.cli_json("failed") == []


def lookups(hs):
    return [r for r in api(hs, "GET", BASE + "/")
            if (r.get("query") or {}).get("idProperty") == ["email"]]


def test_a_create_whose_answer_was_lost_is_settled_by_email_without_a_duplicate():
    hs, shop, c = setup()
    # No webhook brings the contact's news: only the look-up can settle it.
    hs.webhooks(enabled=False)
    # HubSpot makes the contact, and the connection drops before its answer.
    hs.faults([{"match": {"method": "POST", "path": BASE}, "reset": "after", "times": 1}])
    shop.change("s1", {"email": "mae@example.com", "name": "Mae", "visits": 2})
    (made,) = wait_until(lambda: list(hs.contacts()), 10, "the contact HubSpot made")
    # HubSpot's email is unique: read by it, the contact is linked; no
    # second contact, and nothing waits for a person.
    wait_until(lambda: c.settled() and not c.cli_json("inbox") and lookups(hs), 15,
               "the lost create settled: %r" % (c.cli_json("inbox"),))
    assert [r["status"] for r in lookups(hs)] == [200], lookups(hs)
    assert list(hs.contacts()) == [made], hs.contacts()
    creates = [r for r in api(hs, "POST") if r["path"] == BASE]
    assert [r["status"] for r in creates] == ["lost"], creates
    # Linked: the shop's next change is a PATCH of that contact.
    shop.change("s1", {"email": "mae@example.com", "name": "Mae J.", "visits": 2})
    wait_until(lambda: hs.contacts()[made]["properties"].get("firstname") == "Mae J.", 10,
               "the edit written to the contact")
    c.wait_settled()
    assert list(hs.contacts()) == [made], hs.contacts()
    assert [r["path"] for r in api(hs, "PATCH")] == [BASE + "/" + made]
    assert c.cli_json("inbox") == []
    assert hs.invalid() == []


def test_a_create_that_timed_out_unapplied_is_sent_again_after_the_look_up():
    hs, shop, c = setup()
    hs.webhooks(enabled=False)
    # HubSpot answers too late, and does not make the contact.
    hs.faults([{"match": {"method": "POST", "path": BASE}, "delay_ms": 1500, "status": 500,
                "times": 1}])
    shop.change("s1", {"email": "ned@example.com", "name": "Ned"})
    got = wait_until(lambda: by_email(hs).get("ned@example.com"), 15, "the contact")
    c.wait_settled()
    # The look-up found none (404), so the create went again, once.
    assert [r["status"] for r in lookups(hs)] == [404], lookups(hs)
    creates = [r for r in api(hs, "POST") if r["path"] == BASE]
    assert [r["status"] for r in creates] == ["timeout", 201], creates
    assert list(hs.contacts()) == [got["id"]], hs.contacts()
    assert c.cli_json("inbox") == []
    assert hs.invalid() == []


def test_a_lost_create_without_an_email_waits_for_a_person_as_unknown():
    hs, shop, c = setup()
    hs.webhooks(enabled=False)
    # HubSpot answers too late, and does not make the contact.
    hs.faults([{"match": {"method": "POST", "path": BASE}, "delay_ms": 1500, "status": 500,
                "times": 1}])
    shop.change("s1", {"name": "No Mail"})
    # Nothing to look it up by: a person checks HubSpot, sends nothing again.
    (entry,) = wait_until(lambda: c.cli_json("inbox"), 15, "the create in the inbox")
    assert entry["kind"] == "unknown", entry
    assert "look-up" in entry["reason"] and "properties.email" in entry["reason"], entry
    c.wait_settled()
    assert hs.contacts() == {} and lookups(hs) == [], hs.contacts()
    assert [r["status"] for r in api(hs, "POST") if r["path"] == BASE] == ["timeout"]
    # The person found no contact there and retries: the create goes out.
    c.cli("retry", str(entry["id"]))
    wait_until(lambda: len(hs.contacts()) == 1, 15, "the contact after the retry: %r"
               % (c.cli_json("inbox"),))
    c.wait_settled()
    assert len(hs.contacts()) == 1 and c.cli_json("inbox") == [], c.cli_json("inbox")


def test_a_429_with_retry_after_is_waited_out():
    hs, shop, c = setup()
    hs.faults([{"match": {"method": "POST", "path": BASE}, "status": 429, "retry_after": "1",
                "times": 1}])
    shop.change("s1", {"email": "lin@example.com", "name": "Lin"})
    wait_until(lambda: by_email(hs).get("lin@example.com"), 10, "the contact after the 429")
    creates = [r for r in api(hs, "POST") if r["path"] == BASE]
    assert [r["status"] for r in creates] == [429, 201], creates
    # The retry schedule says 50 ms; Retry-After said a second.
    assert creates[1]["time"] - creates[0]["time"] >= 0.95, creates
    c.wait_settled()
    assert c.cli_json("failed") == []
    assert hs.invalid() == []


def test_a_wrong_token_is_a_failure_with_hubspots_reason():
    hs, shop, c = setup(token="pat-na1-wrong")
    shop.change("s1", {"email": "bob@example.com", "name": "Bob"})
    failed = wait_until(lambda: c.cli_json("failed"), 10, "the refusal in the inbox")
    assert len(failed) == 1, failed
    reason = failed[0]["reason"]
    assert "401" in reason and "credentials" in reason.lower(), reason
    st = {s["name"]: s for s in c.cli_json("status")["systems"]}
    assert "401" in (st["hubspot"]["last_error"] or ""), st["hubspot"]
    assert st["shop"]["last_error"] is None, st["shop"]
    assert hs.contacts() == {}
    assert hs.invalid() == []


def test_the_search_moves_its_anchor_instead_of_passing_the_window():
    # HubSpot answers a search at most 10,000 results deep. (The sim allows
    # 10 searches a second here, HubSpot 5: the poll keeps to either.)
    hs, shop, c = setup(config=ALONE, search_rate=10)
    c.stop()  # the poll alone, in its own process: what it reads is its report
    # 10,050 contacts changed a second apart a few hours ago, then 450 that
    # share one time: more than one search can page through, and a tie
    # longer than a page.
    base = int(time.time() * 1000) - 4 * 3600 * 1000
    hs.seed(contacts=[{"properties": {"email": "p%d@example.com" % i, "firstname": "P%d" % i},
                       "lastmodifieddate": base + i * 1000} for i in range(10050)])
    hs.seed(count=450, properties={"email": "t{i}@example.com", "firstname": "T{i}"},
            lastmodifieddate=base + 10050 * 1000)
    t0 = time.monotonic()
    report = c.cli_json("poll", "hubspot.contacts", timeout=60)
    # Each contact read once, and journaled once.
    assert report["complete"] and report.get("error") is None, report
    assert report["read"] == 10500 and report["new"] == 10500, report
    searches = api(hs, "POST", BASE + "/search")
    assert max(int(r["body"]["after"]) for r in searches) < 10000, searches[-1]
    assert len(searches) < 60, len(searches)  # 200 a page, no page read twice
    assert time.monotonic() - t0 < 15
    # The next poll starts from the newest time read, less the 10 s look-back:
    # it reads the 450 again and the 10 contacts of the ten seconds before,
    # not the whole window again.
    again = c.cli_json("poll", "hubspot.contacts")
    assert again["complete"] and again["read"] == 460, again
    assert hs.invalid() == []


def test_the_next_search_asks_from_the_newest_contact_read():
    # A read of one page: its newest lastmodifieddate is stored with it, so
    # a webhook's search does not read every contact from the start again.
    hs, shop, c = setup(config=ALONE)
    c.stop()
    base = int(time.time() * 1000) - 3600 * 1000
    hs.seed(contacts=[{"properties": {"email": "p%d@example.com" % i},
                       "lastmodifieddate": base + i * 60000} for i in range(5)])
    first = c.cli_json("poll", "hubspot.contacts")
    assert (first["read"], first["new"], first["pages"]) == (5, 5, 1), first
    again = c.cli_json("poll", "hubspot.contacts")
    search = api(hs, "POST", BASE + "/search")[-1]["body"]
    since = search["filterGroups"][0]["filters"][0]["value"]
    assert since == str(base + 4 * 60000 - 10000), search  # the newest, less 10 s
    assert again["read"] == 1, again  # only the newest again, in the look-back
    assert hs.invalid() == []


def test_a_contact_changed_during_a_read_is_neither_lost_nor_skipping_another():
    hs, shop, c = setup(config=ALONE)
    c.stop()
    base = int(time.time() * 1000) - 3600 * 1000
    ids = hs.seed(contacts=[{"properties": {"email": "p%d@example.com" % i},
                             "lastmodifieddate": base + i * 1000} for i in range(450)])
    # Each search answers late, so a person's edit lands between two pages.
    hs.faults([{"match": {"method": "POST", "path": BASE + "/search"}, "delay_ms": 600,
                "times": 10}])
    since = hs.requests()[-1]["seq"]
    poll = subprocess.Popen([harness.concord_bin(), "poll", "hubspot.contacts", "--json", "-c",
                             c.path], cwd=c.dir, env=c.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    # The second search is logged as it arrives, and cut after its delay.
    wait_until(lambda: len(hs.requests("POST", since=since)) >= 2, 10, "the second search")
    hs.ui_update(ids[0], {"firstname": "Moved"})  # read on page 1; now last of all
    out, _ = poll.communicate(timeout=30)
    report = json.loads(out)
    # An offset into one query would now skip the contact that moved into
    # page 1's place; the anchor skips none: 450 read, and the edit once more.
    assert report["complete"] and report["read"] == 451, report
    assert report["new"] == 451, report
    assert hs.invalid() == []


def test_a_search_whose_lease_was_taken_stops_and_commits_nothing_more():
    # As a list read does (test_poll.py): a search whose lease ran out
    # during a slow page, and was taken by another reader, must not commit
    # that page beside it, nor move the cursor under it.
    hs, shop, c = setup(config=ALONE)
    c.stop()
    base = int(time.time() * 1000) - 3600 * 1000
    hs.seed(contacts=[{"properties": {"email": "p%d@example.com" % i},
                       "lastmodifieddate": base + i * 1000} for i in range(450)])
    hs.faults([{"match": {"method": "POST", "path": BASE + "/search"}, "delay_ms": 800,
                "after": 1}])
    since = hs.requests()[-1]["seq"]
    poll = subprocess.Popen([harness.concord_bin(), "poll", "hubspot.contacts", "--json", "-c",
                             c.path], cwd=c.dir, env=c.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    wait_until(lambda: len(hs.requests("POST", since=since)) >= 2, 10, "the slow second search")
    db = sqlite3.connect(os.path.join(c.dir, "state.db"), timeout=10)
    with db:
        db.execute("UPDATE polls SET lease_holder = 'another reader', lease_until = ? "
                   "WHERE collection = 'hubspot.contacts'", (int(time.time() * 1000) + 60000,))
    out, _ = poll.communicate(timeout=30)
    report = json.loads(out)
    assert not report["complete"] and "lease ran out" in report.get("error", ""), report
    assert report["pages"] == 1 and report["read"] == 200, report
    row = db.execute("SELECT cursor, lease_holder FROM polls "
                     "WHERE collection = 'hubspot.contacts'").fetchone()
    db.close()
    assert row[1] == "another reader", row  # not taken back, nor released
    assert json.loads(row[0])["ts"] == base + 199 * 1000, row  # page 1's end, not page 2's


def test_the_same_in_plain_config():
    hs, shop, c = setup(config=CONFIG.replace(HUBSPOT.lstrip("\n"), PLAIN.lstrip("\n")))
    (held,) = hs.seed(contacts=[{"properties": {"email": "ada@example.com"}}])
    shop.change("s1", {"email": "ada@example.com", "name": "Ada", "visits": 1})
    wait_until(lambda: hs.contacts()[held]["properties"].get("firstname") == "Ada", 10,
               "the shop's customer written to the contact HubSpot held")
    assert hs.contacts()[held]["properties"]["visits"] == "1"
    made = hs.ui_create({"email": "grace@example.com", "firstname": "Grace"})["contact"]
    k, _ = wait_until(lambda: shop_by_email(shop).get("grace@example.com"), 10,
                      "the contact in the shop")
    hs.ui_delete(made["id"])
    wait_until(lambda: k not in shop.records(), 10, "the customer deleted in the shop")
    c.wait_settled()
    assert hs.invalid() == []
    assert c.cli_json("failed") == []


if __name__ == "__main__":
    harness.run_tests(globals())
