#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The Two-way issue end to end: a shop and a CRM that may both change
customers (tests/sims/target.py, each a REST system that also sends
webhooks when a person edits a record there). Origin rules and field
owners, the three-way merge and each conflict policy, conflicts and
`concord resolve`, matching on first contact, each delete mode, the
mass-delete guard, restore, and filters.

To make two edits concurrent, a test pauses deliveries to one system
(`concord pause`), so the first edit's write waits while the second edit
arrives; `concord resume` lets it go."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Concord, Sim, wait_until  # noqa: E402

CONFIG = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=300
log: {level: debug, format: json}
{top}
systems:
  shop:
    kind: http
    base_url: http://127.0.0.1:{shop_port}
    retry: {max_attempts: 5, base_ms: 50, cap_ms: 200, jitter: 0.1}
    webhook: {path: /webhooks/shop}
{shop_system}
    collections:
      customers:
        model: customer
        record: customer
        deleted_when: '.event == "customer.deleted"'
        updated_at: updated_at
        map_in: {email: email, name: name, phone: phone, status: status}
        map_out: {email: email, name: name, phone: phone, status: status}
        create: POST /customers
        update: PUT /customers/{id}
        delete: DELETE /customers/{id}
  crm:
    kind: http
    base_url: http://127.0.0.1:{crm_port}
    retry: {max_attempts: 5, base_ms: 50, cap_ms: 200, jitter: 0.1}
    webhook: {path: /webhooks/crm}
    collections:
      contacts:
        model: customer
        record: contact
        deleted_when: '.event == "contact.deleted"'
        updated_at: updated_at
        map_in: {email: contact_email, name: full_name, phone: phone_number, status: lifecycle}
        map_out: {contact_email: email, full_name: name, phone_number: phone, lifecycle: status}
        create: POST /contacts
        update: PUT /contacts/{id}
        delete: DELETE /contacts/{id}
{crm_collection}
models:
  customer:
    fields: {email: string, name: string, phone: string, status: string}
syncs:
  customers:
    model: customer
    origin: [shop, crm]
    collections: [shop.customers, crm.contacts]
{sync}
"""

ADA = {"email": "ada@example.com", "name": "Ada", "phone": "+44 1", "status": "active"}


def setup(sync="", crm_collection="", shop_system="", top=""):
    port = harness.free_port()
    url = "http://127.0.0.1:%d" % port
    shop = Sim(resource="customers", id_prefix="S", webhook_url=url + "/webhooks/shop",
               envelope="customer", event_key="event")
    crm = Sim(resource="contacts", id_prefix="C", webhook_url=url + "/webhooks/crm",
              envelope="contact", event_key="event")
    c = Concord(CONFIG, values={"port": port, "shop_port": shop.port, "crm_port": crm.port,
                                "sync": sync, "crm_collection": crm_collection,
                                "shop_system": shop_system, "top": top})
    c.start()
    return shop, crm, c


def only(sim):
    recs = list(sim.records().values())
    assert len(recs) == 1, recs
    return recs[0]


def contact_of(crm, email):
    found = [r for r in crm.records().values() if r.get("contact_email") == email]
    assert len(found) <= 1, found
    return found[0] if found else None


def created(shop, crm, c, record=ADA, sid="S1"):
    """A customer made in the shop, once it reached the CRM."""
    shop.change(sid, record)
    wait_until(lambda: contact_of(crm, record["email"]), 10, "the contact in the CRM")
    c.wait_settled()
    return contact_of(crm, record["email"])


def conflicts(c, all_=False):
    return c.cli_json("conflicts", *(["--all"] if all_ else []))


def test_edits_to_different_fields_on_both_sides_merge():
    shop, crm, c = setup()
    contact = created(shop, crm, c)
    c.cli("pause", "crm")
    shop.change("S1", {"name": "Ada L."})
    wait_until(lambda: c.cli_json("status")["systems"][1]["backlog"] == 1, 10, "the crm job")
    crm.change(contact["id"], {"phone_number": "+44 2"})
    c.cli("resume", "crm")
    wait_until(lambda: shop.records()["S1"]["phone"] == "+44 2", 10, "the crm phone in the shop")
    wait_until(lambda: crm.records()[contact["id"]]["full_name"] == "Ada L.", 10,
               "the shop name in the crm")
    c.wait_settled()
    assert conflicts(c, all_=True) == []
    # explain names the source, change, rule and mapping of each field.
    fields = {f["field"]: f for f in c.cli_json("explain", "1")["fields"]}
    assert fields["phone"]["value"] == "+44 2" and fields["phone"]["source"] == "crm.contacts"
    assert fields["phone"]["mapping"] == "crm.contacts.map_in: phone <- phone_number"
    assert fields["phone"]["rule"] == "crm is an origin of sync customers"
    assert fields["name"]["source"] == "shop.customers" and fields["name"]["version"] == 2
    assert fields["email"]["version"] == 1 and "change" in fields["email"]
    _, text, _ = c.cli("explain", "1")
    assert "phone = \"+44 2\"" in text and "set by crm.contacts" in text


def test_the_same_change_on_both_sides_is_not_a_conflict():
    shop, crm, c = setup()
    contact = created(shop, crm, c)
    c.cli("pause", "crm")
    shop.change("S1", {"name": "Ada B."})
    crm.change(contact["id"], {"full_name": "Ada B."})
    c.cli("resume", "crm")
    c.wait_settled()
    assert conflicts(c, all_=True) == []
    assert crm.records()[contact["id"]]["full_name"] == "Ada B."


def test_a_field_owner_refuses_others_and_writes_back():
    shop, crm, c = setup(sync="    owners: {phone: crm}\n    write_back: true\n")
    contact = created(shop, crm, c)
    before = len(crm.writes())
    shop.change("S1", {"phone": "+1 999", "name": "Ada S."})
    # The name goes through; the phone is refused and the owner's written back.
    wait_until(lambda: crm.records()[contact["id"]]["full_name"] == "Ada S.", 10, "the name")
    wait_until(lambda: shop.records()["S1"]["phone"] == "+44 1", 10, "the phone written back")
    c.wait_settled()
    assert crm.records()[contact["id"]]["phone_number"] == "+44 1"
    assert "may not change" in c.log_text() and "phone" in c.log_text()
    changes = c.cli_json("changes", "1")
    assert any(ch["state"] == "applied" and "refused" in (ch["note"] or "")
               for ch in changes), changes
    # The crm, the owner, may change it.
    crm.change(contact["id"], {"phone_number": "+44 7"})
    wait_until(lambda: shop.records()["S1"]["phone"] == "+44 7", 10, "the owner's phone")
    assert len(crm.writes()) == before + 1


def test_a_refused_field_without_write_back_is_left_alone():
    shop, crm, c = setup(sync="    owners: {phone: crm}\n")
    created(shop, crm, c)
    n_shop = len(shop.writes())
    shop.change("S1", {"phone": "+1 999"})
    wait_until(lambda: "may not change" in c.log_text(), 10, "the refusal in the log")
    c.wait_settled()
    assert shop.records()["S1"]["phone"] == "+1 999"
    assert len(shop.writes()) == n_shop
    changes = c.cli_json("changes", "1")
    assert any(ch["state"] == "refused" and "may not change" in ch["note"]
               for ch in changes), changes


def concurrent_names(shop, crm, c, contact, first):
    """The shop and the CRM rename Ada while neither write has gone out;
    first says whose webhook concord reads first."""
    c.cli("pause", "crm")
    c.cli("pause", "shop")
    edits = {
        "shop": lambda: shop.change("S1", {"name": "Ada from shop"}),
        "crm": lambda: crm.change(contact["id"], {"full_name": "Ada from crm"}),
    }
    edits[first]()
    wait_until(lambda: c.cli_json("status")["systems"][1 if first == "shop" else 0]["backlog"]
               == 1, 10, "the first edit applied")
    edits["crm" if first == "shop" else "shop"]()
    wait_until(lambda: conflicts(c, all_=True), 10, "the conflict")
    c.cli("resume", "crm")
    c.cli("resume", "shop")


def names(shop, crm, contact):
    return shop.records()["S1"]["name"], crm.records()[contact["id"]]["full_name"]


def test_newest_wins_whatever_the_order():
    for first in ("shop", "crm"):
        shop, crm, c = setup(sync="    conflict: newest\n    skew: 0s\n")
        contact = created(shop, crm, c)
        concurrent_names(shop, crm, c, contact, first)
        # Whichever edit was made last at its source wins, in both systems.
        want = "Ada from crm" if first == "shop" else "Ada from shop"
        wait_until(lambda: names(shop, crm, contact) == (want, want), 10, "newest everywhere")
        c.wait_settled()
        got = conflicts(c, all_=True)
        assert len(got) == 1 and got[0]["state"] == "settled", got
        assert got[0]["detail"]["policy"] == "newest", got
        assert conflicts(c) == []
        shop.stop(), crm.stop(), c.stop()


def test_newest_within_the_skew_goes_to_a_person():
    shop, crm, c = setup(sync="    conflict: newest\n    skew: 1h\n")
    contact = created(shop, crm, c)
    concurrent_names(shop, crm, c, contact, "shop")
    c.wait_settled()
    got = conflicts(c)
    assert len(got) == 1 and got[0]["state"] == "open", got
    assert "skew" in got[0]["detail"]["policy"]


def test_prefer_a_system():
    for first in ("shop", "crm"):
        shop, crm, c = setup(sync="    conflict: prefer\n    prefer: crm\n")
        contact = created(shop, crm, c)
        concurrent_names(shop, crm, c, contact, first)
        wait_until(lambda: names(shop, crm, contact) == ("Ada from crm", "Ada from crm"), 10,
                   "the crm's name everywhere")
        c.wait_settled()
        assert [x["state"] for x in conflicts(c, all_=True)] == ["settled"]
        shop.stop(), crm.stop(), c.stop()


def test_owner_policy():
    shop, crm, c = setup(sync="    owners: {name: [shop, crm]}\n    conflict: owner\n")
    contact = created(shop, crm, c)
    concurrent_names(shop, crm, c, contact, "shop")
    wait_until(lambda: names(shop, crm, contact) == ("Ada from shop", "Ada from shop"), 10,
               "the owner's name everywhere")
    c.wait_settled()
    got = conflicts(c, all_=True)
    assert got[0]["state"] == "settled" and got[0]["detail"]["winner"] == "ours", got


def test_manual_conflict_waits_for_resolve_and_other_fields_proceed():
    shop, crm, c = setup()  # conflict: manual is the default
    contact = created(shop, crm, c)
    c.cli("pause", "crm")
    c.cli("pause", "shop")
    shop.change("S1", {"name": "Ada from shop"})
    wait_until(lambda: c.cli_json("status")["systems"][1]["backlog"] == 1, 10, "the first edit")
    crm.change(contact["id"], {"full_name": "Ada from crm", "phone_number": "+44 9"})
    got = wait_until(lambda: conflicts(c), 10, "the open conflict")
    assert len(got) == 1, got
    x = got[0]
    assert x["field"] == "name" and x["state"] == "open"
    assert x["detail"]["base"] == "Ada"
    assert x["detail"]["ours"]["value"] == "Ada from shop"
    assert x["detail"]["theirs"]["value"] == "Ada from crm"
    assert x["detail"]["theirs"]["source"] == "crm.contacts"
    _, text, _ = c.cli("conflicts")
    assert "Ada from crm" in text and "Ada from shop" in text and "base" in text
    c.cli("resume", "crm")
    c.cli("resume", "shop")
    # The phone, changed on one side only, proceeds.
    wait_until(lambda: shop.records()["S1"]["phone"] == "+44 9", 10, "the phone")
    c.wait_settled()
    assert shop.records()["S1"]["name"] == "Ada from shop"
    # A person settles it; the result fans out like any change.
    rc, out, err = c.cli("resolve", str(x["id"]), "--take", "crm")
    assert rc == 0, err
    wait_until(lambda: names(shop, crm, contact) == ("Ada from crm", "Ada from crm"), 10,
               "the resolved name everywhere")
    assert conflicts(c) == []
    assert [y["state"] for y in conflicts(c, all_=True)] == ["resolved"]
    # --value gives any value.
    c.cli("pause", "crm")
    shop.change("S1", {"name": "A1"})
    wait_until(lambda: c.cli_json("status")["systems"][1]["backlog"] == 1, 10, "the job")
    crm.change(contact["id"], {"full_name": "A2"})
    x = wait_until(lambda: conflicts(c), 10, "the second conflict")[0]
    c.cli("resume", "crm")
    c.cli("resolve", str(x["id"]), "--value", '"Ada Lovelace"')
    wait_until(lambda: names(shop, crm, contact) == ("Ada Lovelace", "Ada Lovelace"), 10,
               "the given name everywhere")
    rc, _, err = c.cli("resolve", str(x["id"]), "--take", "crm", check=False)
    assert rc != 0 and "no open conflict" in err


def test_resolve_take_gives_the_side_s_value_as_it_is_now():
    """The shop renames Ada again while the conflict is open: the conflict
    shows, and --take shop gives, the shop's newer name, not the one it had
    when the conflict opened."""
    shop, crm, c = setup()
    contact = created(shop, crm, c)
    concurrent_names(shop, crm, c, contact, "shop")
    c.wait_settled()
    shop.change("S1", {"name": "Ada again from shop"})
    wait_until(lambda: {f["field"]: f for f in c.cli_json("explain", "1")["fields"]}["name"]
               ["value"] == "Ada again from shop", 10, "the shop's newer name in the record")
    x = conflicts(c)[0]
    assert x["detail"]["ours"]["value"] == "Ada again from shop", x
    c.cli("resolve", str(x["id"]), "--take", "shop")
    wait_until(lambda: crm.records()[contact["id"]]["full_name"] == "Ada again from shop", 10,
               "the shop's name in the crm")
    c.wait_settled()
    assert names(shop, crm, contact) == ("Ada again from shop", "Ada again from shop")


def test_resolve_refuses_a_value_the_field_cannot_hold():
    """A value that is not of the field's type is refused, and the conflict
    stays open: it is not closed while its value is parked elsewhere."""
    shop, crm, c = setup()
    contact = created(shop, crm, c)
    concurrent_names(shop, crm, c, contact, "shop")
    c.wait_settled()
    x = conflicts(c)[0]
    rc, _, err = c.cli("resolve", str(x["id"]), "--value", '{"first": "Ada"}', check=False)
    assert rc != 0 and "name" in err, (rc, err)
    assert [y["id"] for y in conflicts(c)] == [x["id"]]
    assert [e for e in c.cli_json("inbox") if e["kind"] != "conflict"] == []
    c.cli("resolve", str(x["id"]), "--take", "crm")
    wait_until(lambda: names(shop, crm, contact) == ("Ada from crm", "Ada from crm"), 10,
               "the crm's name everywhere")


def test_a_unique_natural_key_match_links_instead_of_creating():
    shop, crm, c = setup(sync="    match: [email]\n")
    c.cli("pause", "crm")
    shop.change("S1", ADA)
    wait_until(lambda: c.cli_json("status")["systems"][1]["backlog"] == 1, 10, "the create")
    # The CRM already holds Ada, spelled differently.
    crm.change("C77", {"contact_email": "  ADA@Example.com ", "full_name": "Ada",
                       "phone_number": "+44 1", "lifecycle": "active"})
    wait_until(lambda: "matched record 1" in c.log_text(), 10, "the match")
    c.cli("resume", "crm")
    c.wait_settled()
    assert crm.requests("POST") == []
    assert list(crm.records()) == ["C77"]
    assert len(shop.records()) == 1


def test_a_matched_copy_is_not_refused_values_it_agrees_with():
    # The CRM may not change the status; its copy, matched on first contact,
    # carries the record's own status: no change, so nothing is refused.
    shop, crm, c = setup(sync="    match: [email]\n    owners: {status: shop}\n")
    c.cli("pause", "crm")
    shop.change("S1", ADA)
    wait_until(lambda: c.cli_json("status")["systems"][1]["backlog"] == 1, 10, "the create")
    crm.change("C77", {"contact_email": "ada@example.com", "full_name": "Ada",
                       "phone_number": "+44 1", "lifecycle": "active"})
    wait_until(lambda: "matched record 1" in c.log_text(), 10, "the match")
    c.cli("resume", "crm")
    c.wait_settled()
    assert crm.requests("POST") == [] and list(crm.records()) == ["C77"]
    assert "may not change" not in c.log_text()
    changes = c.cli_json("changes", "1")
    assert not any("refused" in (ch["note"] or "") for ch in changes), changes
    # A status that differs is still refused.
    crm.change("C77", {"lifecycle": "archived"})
    wait_until(lambda: "may not change" in c.log_text(), 10, "the refusal")


def test_an_ambiguous_match_is_a_conflict_never_a_duplicate():
    sync = ('    match: [email, {field: phone, normalize: phone, country: "40"}]\n')
    shop, crm, c = setup(sync=sync)
    c.cli("pause", "crm")  # the two records wait to be created in the CRM
    shop.change("S1", dict(ADA, email="a@x.ro", phone="0722 000 001"))
    shop.change("S2", dict(ADA, email="b@x.ro", phone="0722 000 002"))
    wait_until(lambda: c.cli_json("status")["systems"][1]["backlog"] == 2, 10, "two creates")
    # The CRM holds a copy whose email is the first's and whose phone the second's.
    crm.change("C99", {"contact_email": "a@x.ro", "full_name": "?",
                       "phone_number": "+40 722 000 002", "lifecycle": "active"})
    got = wait_until(lambda: conflicts(c), 10, "the ambiguous match")
    assert got[0]["field"] == "@match" and got[0]["detail"]["candidates"] == [1, 2], got
    assert "C99" in got[0]["reason"]
    changes = c.cli_json("changes", "1")
    assert len(shop.records()) == 2 and shop.requests("POST") == []
    # A person links it to the second record: it merges through that link,
    # and the create queued for that record becomes an update of the copy.
    # The two copies never agreed before, so every field where they differ
    # is a conflict (manual here); the rest merges.
    c.cli("resolve", str(got[0]["id"]), "--record", "2")
    open_ = wait_until(lambda: [x for x in conflicts(c) if x["field"] != "@match"], 10,
                       "the fields the copies disagree on")
    assert sorted(x["field"] for x in open_) == ["email", "name", "phone"], open_
    c.cli("resume", "crm")
    c.wait_settled()
    assert len(crm.requests("POST")) == 1  # record 1 only: no duplicate of record 2
    assert sorted(r["contact_email"] for r in crm.records().values()) == ["a@x.ro", "a@x.ro"]
    # While its conflicts are open, the CRM's copy keeps its own values.
    assert crm.records()["C99"]["full_name"] == "?"
    assert len(shop.records()) == 2 and shop.requests("POST") == []
    assert changes is not None
    for x in open_:
        c.cli("resolve", str(x["id"]), "--take", "shop")
    wait_until(lambda: (crm.records()["C99"]["contact_email"], crm.records()["C99"]["full_name"])
               == ("b@x.ro", "Ada"), 10, "the resolutions")


def test_resolve_record_waits_for_a_create_of_that_record_under_way():
    """The record a person picks for an ambiguous copy is being created in
    that collection right now: linking the copy to it would leave the
    create's copy, or the picked one, without a record."""
    sync = ('    match: [email, {field: phone, normalize: phone, country: "40"}]\n')
    shop, crm, c = setup(sync=sync)
    c.cli("pause", "crm")
    shop.change("S1", dict(ADA, email="a@x.ro", phone="0722 000 001"))
    shop.change("S2", dict(ADA, email="b@x.ro", phone="0722 000 002"))
    wait_until(lambda: c.cli_json("status")["systems"][1]["backlog"] == 2, 10, "two creates")
    crm.change("C99", {"contact_email": "a@x.ro", "full_name": "?",
                       "phone_number": "+40 722 000 002", "lifecycle": "active"})
    got = wait_until(lambda: conflicts(c), 10, "the ambiguous match")
    crm.faults([{"match": {"method": "POST"}, "delay_ms": 2000, "apply": "first", "times": 2}])
    c.cli("resume", "crm")
    wait_until(lambda: len(crm.records()) == 3, 10, "the creates under way")
    rc, _, err = c.cli("resolve", str(got[0]["id"]), "--record", "2", check=False)
    assert rc != 0 and "under way" in err, (rc, err)
    c.wait_settled()
    assert len(crm.requests("POST")) == 2
    assert [x["id"] for x in conflicts(c)] == [got[0]["id"]]


def test_resolve_new_makes_a_record_for_an_ambiguous_copy():
    shop, crm, c = setup(sync="    match: [email]\n")
    created(shop, crm, c, dict(ADA, email="a@x.ro"), "S1")
    crm.change("C98", {"contact_email": "a@x.ro", "full_name": "Other",
                       "phone_number": "1", "lifecycle": "lead"})
    got = wait_until(lambda: conflicts(c), 10, "the match that would be a second copy")
    assert "already has another copy" in got[0]["reason"], got
    c.cli("resolve", str(got[0]["id"]), "--new")
    wait_until(lambda: len(shop.records()) == 2, 10, "the new record in the shop")
    c.wait_settled()
    assert sorted(r["name"] for r in shop.records().values()) == ["Ada", "Other"]
    assert len(crm.records()) == 2


def test_news_of_an_ambiguous_copy_updates_its_one_match_conflict():
    """The unmatched copy changes again before a person has looked: still
    one conflict, and resolving it takes the copy as it is now."""
    shop, crm, c = setup(sync="    match: [email]\n")
    created(shop, crm, c, dict(ADA, email="a@x.ro"), "S1")
    crm.change("C98", {"contact_email": "a@x.ro", "full_name": "Other",
                       "phone_number": "1", "lifecycle": "lead"})
    wait_until(lambda: conflicts(c), 10, "the match conflict")
    crm.change("C98", {"full_name": "Other, renamed"})
    created(shop, crm, c, dict(ADA, email="b@x.ro"), "S2")  # read after the news
    got = conflicts(c)
    assert len(got) == 1 and got[0]["field"] == "@match", got
    c.cli("resolve", str(got[0]["id"]), "--new")
    wait_until(lambda: len(shop.records()) == 3, 10, "the new record in the shop")
    c.wait_settled()
    assert sorted(r["name"] for r in shop.records().values()) == ["Ada", "Ada",
                                                                  "Other, renamed"]
    assert conflicts(c) == []


def test_delete_mode_delete_and_restore():
    shop, crm, c = setup()
    contact = created(shop, crm, c)
    shop.delete("S1")
    wait_until(lambda: crm.records() == {}, 10, "the delete in the crm")
    c.wait_settled()
    assert len(crm.requests("DELETE")) == 1
    c.wait_settled()
    assert c.cli_json("changes", "1")[-1]["state"] == "applied"
    # An edit of the CRM's copy made before the delete, whose webhook comes
    # late, changes nothing: the delete stands.
    late = dict(contact, full_name="late")
    crm.send_raw(json.dumps({"event": "contact.updated", "contact": late}),
                 {"Content-Type": "application/json"})
    wait_until(lambda: c.cli_json("changes", "1")[-1]["state"] == "ignored", 10, "the late news")
    c.wait_settled()
    assert crm.records() == {} and shop.records() == {}
    # Restore brings the record back everywhere.
    c.cli("restore", "1")
    wait_until(lambda: len(shop.records()) == 1 and len(crm.records()) == 1, 10, "the restore")
    assert only(shop)["email"] == "ada@example.com"
    assert only(crm)["contact_email"] == "ada@example.com"
    rc, _, err = c.cli("restore", "1", check=False)
    assert rc != 0 and "not deleted" in err


def test_a_restore_before_the_delete_went_out_keeps_the_copy():
    """The delete's job still waits when the record is restored: the copy,
    which holds the record's state, is not deleted after all."""
    shop, crm, c = setup()
    contact = created(shop, crm, c)
    c.cli("pause", "crm")
    shop.delete("S1")
    wait_until(lambda: c.cli_json("status")["systems"][1]["backlog"] == 1, 10, "the delete job")
    c.cli("restore", "1")
    wait_until(lambda: len(shop.records()) == 1, 10, "the record back in the shop")
    c.cli("resume", "crm")
    c.wait_settled()
    assert list(crm.records()) == [contact["id"]], crm.records()
    assert crm.requests("DELETE") == []


def test_a_restore_while_the_delete_is_under_way_makes_the_copy_again():
    shop, crm, c = setup()
    created(shop, crm, c)
    crm.faults([{"match": {"method": "DELETE"}, "delay_ms": 1500, "apply": "first"}])
    shop.delete("S1")
    wait_until(lambda: crm.records() == {}, 10, "the delete made, its answer on the way")
    c.cli("restore", "1")
    wait_until(lambda: len(crm.records()) == 1, 10, "the contact made again")
    c.wait_settled()
    assert len(shop.records()) == 1 and len(crm.records()) == 1
    assert only(crm)["contact_email"] == "ada@example.com"


def test_a_restore_closes_a_parked_delete_so_a_retry_keeps_the_copy():
    """A delete the CRM refused waits in the inbox; the record is restored
    meanwhile. The parked delete is moot: it is closed, and a retry of it
    deletes nothing (the copy belongs to a live record again)."""
    shop, crm, c = setup()
    contact = created(shop, crm, c)
    crm.faults([{"match": {"method": "DELETE"}, "status": 422, "body": {"error": "locked"}}])
    shop.delete("S1")
    entry = wait_until(lambda: c.cli_json("failed"), 10, "the refused delete")[0]
    c.cli("restore", "1")
    wait_until(lambda: len(shop.records()) == 1, 10, "the record back in the shop")
    c.wait_settled()
    assert c.cli_json("failed") == []
    closed = [e for e in c.cli_json("failed", "--all") if e["id"] == entry["id"]]
    assert closed[0]["state"] == "skipped", closed
    rc, _, err = c.cli("retry", str(entry["id"]), check=False)
    assert rc != 0 and "no open inbox entry" in err, err
    c.wait_settled()
    assert list(crm.records()) == [contact["id"]], crm.records()
    assert len(crm.requests("DELETE")) == 1  # the refused one only


def test_a_tombstone_is_purged_after_its_time():
    shop, crm, c = setup(top="tombstone_ttl: 2s")
    created(shop, crm, c)
    shop.delete("S1")
    wait_until(lambda: crm.records() == {}, 10, "the delete")
    assert c.cli("history", "1", check=False)[0] == 0  # a tombstone, restorable
    wait_until(lambda: c.cli("history", "1", check=False)[0] != 0, 10, "the tombstone purged")
    assert "purged 1 deleted record" in c.log_text()
    rc, _, err = c.cli("restore", "1", check=False)
    assert rc != 0 and "no such record" in err


def test_delete_mode_archive():
    shop, crm, c = setup(crm_collection="        on_delete: archive\n"
                                        "        archive: {lifecycle: cancelled}\n")
    contact = created(shop, crm, c)
    shop.delete("S1")
    wait_until(lambda: crm.records()[contact["id"]]["lifecycle"] == "cancelled", 10,
               "the archived contact")
    c.wait_settled()
    assert crm.requests("DELETE") == []
    assert crm.records()[contact["id"]]["full_name"] == "Ada"


def test_delete_mode_ignore():
    shop, crm, c = setup(crm_collection="        on_delete: ignore\n")
    contact = created(shop, crm, c)
    n = len(crm.writes())
    shop.delete("S1")
    wait_until(lambda: any(v["diff"] and "deleted" in v["diff"]
                           for v in c.cli_json("history", "1")), 10, "the delete")
    c.wait_settled()
    assert len(crm.writes()) == n
    assert contact["id"] in crm.records()


def test_the_mass_delete_guard_holds_and_approve_lets_through():
    shop, crm, c = setup(shop_system="    delete_guard: {max_count: 2, min_count: 100, "
                                     "window: 1m}\n")
    for i in range(1, 6):
        created(shop, crm, c, dict(ADA, email="p%d@x" % i), "S%d" % i)
    for i in range(1, 5):
        shop.delete("S%d" % i)
    held = wait_until(lambda: len(c.cli_json("held")) == 2 and c.cli_json("held"), 10,
                      "two held deletes")
    c.wait_settled()
    assert len(crm.records()) == 3  # two went through, two are held
    assert all(h["kind"] == "held" for h in held)
    _, text, _ = c.cli("held")
    assert "mass-delete guard" in text
    inbox = c.cli_json("inbox")
    assert len([e for e in inbox if e["kind"] == "held"]) == 2
    c.cli("approve", "--system", "shop")
    wait_until(lambda: len(crm.records()) == 1, 10, "the approved deletes")
    assert c.cli_json("held") == []


def test_the_mass_delete_guard_counts_deletes_from_before_a_restart():
    shop, crm, c = setup(shop_system="    delete_guard: {max_count: 2, min_count: 100, "
                                     "window: 1m}\n")
    for i in range(1, 6):
        created(shop, crm, c, dict(ADA, email="p%d@x" % i), "S%d" % i)
    for i in (1, 2):
        shop.delete("S%d" % i)
    wait_until(lambda: len(crm.records()) == 3, 10, "two deletes let through")
    c.stop()
    c.start()
    for i in (3, 4):
        shop.delete("S%d" % i)
    wait_until(lambda: len(c.cli_json("held")) == 2, 10, "the next two held")
    c.wait_settled()
    assert len(crm.records()) == 3


def test_a_skipped_held_delete_is_dropped():
    shop, crm, c = setup(shop_system="    delete_guard: {max_count: 0, min_count: 100, "
                                     "window: 1m}\n")
    created(shop, crm, c)
    shop.delete("S1")
    held = wait_until(lambda: c.cli_json("held"), 10, "the held delete")
    c.cli("skip", str(held[0]["id"]), "--reason", "a bad import")
    c.wait_settled()
    assert len(crm.records()) == 1
    assert c.cli_json("held") == []


def test_after_a_skipped_held_delete_the_next_version_makes_the_shop_copy_anew():
    """Skipping a held delete keeps the record and the CRM's copy; the shop's
    copy is gone all the same. A later edit in the CRM is never written to
    the shop's deleted id: the shop gets the customer as a new copy."""
    shop, crm, c = setup(shop_system="    delete_guard: {max_count: 0, min_count: 100, "
                                     "window: 1m}\n")
    contact = created(shop, crm, c)
    shop.delete("S1")
    held = wait_until(lambda: c.cli_json("held"), 10, "the held delete")
    c.cli("skip", str(held[0]["id"]), "--reason", "a bad import")
    c.wait_settled()
    crm.change(contact["id"], dict(contact, full_name="Ada Lovelace"))
    copy = wait_until(lambda: shop.records() and only(shop), 10, "the shop's copy made anew")
    c.wait_settled()
    assert copy["name"] == "Ada Lovelace", copy
    # (The shop hands out S1 again.) Made by a POST, never a PUT to the old S1.
    assert [r["method"] for r in shop.requests() if r["method"] != "GET"] == ["POST"]
    assert list(crm.records()) == [contact["id"]]
    assert c.cli_json("inbox") == []


def test_a_record_that_leaves_the_filter_while_its_create_is_in_flight_is_deleted():
    """The create's job comes back to write the newer version and meets
    the delete queued behind it: the delete is what is left to do."""
    shop, crm, c = setup(sync="    filters:\n      crm.contacts: '.status == \"active\"'\n")
    crm.faults([{"delay_ms": 1500, "apply": "first"}])  # the create lands, its answer waits
    shop.change("S1", ADA)
    wait_until(lambda: len(crm.records()) == 1, 10, "the contact created")
    shop.change("S1", {"status": "lead"})  # while the create's answer is on its way
    wait_until(lambda: crm.records() == {}, 10, "the contact deleted once it left")
    c.wait_settled()
    assert crm.records() == {}
    assert [r["method"] for r in crm.writes()] == ["POST", "DELETE"]


def test_filters_decide_which_records_a_collection_holds():
    shop, crm, c = setup(sync="    filters:\n      crm.contacts: '.status == \"active\"'\n")
    shop.change("S1", dict(ADA, status="lead"))
    wait_until(lambda: c.cli("history", "1", check=False)[0] == 0, 10, "the record")
    c.wait_settled()
    assert crm.records() == {} and crm.requests() == []  # never matched: never written
    shop.change("S1", {"status": "active"})
    wait_until(lambda: len(crm.records()) == 1, 10, "the contact once active")
    shop.change("S1", {"status": "lead"})
    wait_until(lambda: crm.records() == {}, 10, "the contact deleted once it left")
    c.wait_settled()
    assert len(crm.requests("POST")) == 1 and len(crm.requests("DELETE")) == 1


if __name__ == "__main__":
    harness.run_tests(globals())
