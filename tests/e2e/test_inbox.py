#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The inbox and the operator's commands (issue 3): retry by filter, skip,
edit, replay after a map was fixed, pause and resume."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import wait_until  # noqa: E402
from test_foundation import ADA, contacts, one_contact, setup  # noqa: E402,F401

tf_ADA = ADA


def crm_status(c):
    return [s for s in c.cli_json("status")["systems"] if s["name"] == "crm"][0]


def test_an_inbox_entry_shows_its_attempts_answers_and_diff():
    crm, c, shop = setup(retry={"max_attempts": 2})
    crm.faults([{"status": 503, "body": {"error": "busy"}},
                {"status": 503, "body": {"error": "still busy"}}])
    shop.change("s1", tf_ADA)
    entry = wait_until(lambda: c.cli_json("inbox"), 10, "the failure")[0]
    one = c.cli_json("inbox", entry["id"])
    assert [a["http_status"] for a in one["attempts_made"]] == [503, 503], one
    assert one["attempts_made"][0]["request"] == "POST /contacts", one
    assert "still busy" in one["attempts_made"][1]["response"], one
    assert one["diff"]["contact_email"] == [None, "ada@example.com"], one
    rc, out, _ = c.cli("inbox", entry["id"])
    assert "attempt 2" in out and "contact_email" in out, out


def test_skip_records_who_and_why_and_drops_the_job():
    crm, c, shop = setup()
    crm.faults([{"status": 422, "body": {"error": "no"}}])
    shop.change("s1", ADA)
    entry = wait_until(lambda: c.cli_json("failed"), 10, "the failure")[0]
    rc, out, _ = c.cli("skip", entry["id"], "--reason", "test data")
    assert rc == 0 and "skipped by" in out, out
    assert c.cli_json("failed") == []
    every = c.cli_json("failed", "--all")
    assert every[0]["state"] == "skipped", every
    assert crm_status(c)["backlog"] == 0
    rc, _, err = c.cli("skip", entry["id"], check=False)
    assert rc == 1 and "no open inbox entry" in err, err


def test_edit_makes_an_operator_version_that_fans_out():
    crm, c, shop = setup()
    crm.faults([{"status": 422, "body": {"error": "phone_number is invalid"}}])
    shop.change("s1", ADA)
    entry = wait_until(lambda: c.cli_json("failed"), 10, "the failure")[0]
    rc, out, err = c.cli("edit", entry["id"], stdin=json.dumps({"phone": "+44 20 7946 0000"}))
    assert rc == 0 and "1 field changed" in out, (out, err)
    rec = wait_until(lambda: one_contact(crm, phone_number="+44 20 7946 0000"), 10,
                     "the corrected record in the CRM")
    assert rec["contact_email"] == "ada@example.com"
    hist = c.cli_json("history", "1")
    assert hist[-1]["source"].startswith("operator:"), hist
    assert hist[-1]["diff"] == {"phone": ["+44 1", "+44 20 7946 0000"]}, hist
    assert c.cli_json("failed") == []
    assert c.cli_json("failed", "--all")[0]["state"] == "edited"
    # A bad edit is refused before anything is written.
    rc, _, err = c.cli("edit", "--record", "1", stdin='{"colour": "red"}', check=False)
    assert rc == 1 and "no field" in err, err
    rc, _, err = c.cli("edit", "--record", "1", stdin='{"balance": "lots"}', check=False)
    assert rc == 1 and "balance" in err, err


def test_retry_by_filter_takes_only_matching_entries():
    crm, c, shop = setup()
    crm.faults([{"status": 422, "body": {"error": "alpha"}},
                {"status": 422, "body": {"error": "beta"}}])
    shop.change("s1", ADA)
    wait_until(lambda: len(c.cli_json("failed")) == 1, 10, "the first failure")
    shop.change("s2", dict(ADA, email="b@example.com"))
    wait_until(lambda: len(c.cli_json("failed")) == 2, 10, "the second failure")
    rc, out, _ = c.cli("retry", "--error", "beta")
    assert "1 entry queued again" in out, out
    wait_until(lambda: one_contact(crm, contact_email="b@example.com"), 10, "the beta retry")
    left = c.cli_json("failed")
    assert len(left) == 1 and "alpha" in left[0]["reason"], left
    rc, out, _ = c.cli("retry", "--system", "crm", "--since", "1h")
    assert "1 entry queued again" in out, out
    wait_until(lambda: one_contact(crm, contact_email="ada@example.com"), 10, "the alpha retry")
    rc, _, err = c.cli("retry", "--since", "yesterday", check=False)
    assert rc == 2 and "--since" in err, err


def test_pause_holds_deliveries_and_resume_releases_them():
    crm, c, shop = setup()
    rc, out, _ = c.cli("pause", "crm")
    assert "paused" in out
    st = crm_status(c)
    assert st["paused"] is True, st
    shop.change("s1", ADA)
    wait_until(lambda: crm_status(c)["backlog"] == 1, 10, "the change queued")
    # A barrier through the journal: once the second change is queued too,
    # the daemon had every chance to send the first.
    shop.change("s2", dict(ADA, email="b@example.com"))
    wait_until(lambda: crm_status(c)["backlog"] == 2, 10, "both changes queued")
    assert crm.requests() == []
    lines = c.cli("status")[1].splitlines()
    crm_line = [i for i, x in enumerate(lines) if x.startswith("crm ")][0]
    assert lines[crm_line].split()[1] == "degraded", lines
    assert "why: paused by" in lines[crm_line + 1], lines
    c.cli("resume", "crm")
    wait_until(lambda: len(contacts(crm)) == 2, 10, "the deliveries after resume")
    assert crm_status(c)["paused"] is False
    rc, _, err = c.cli("pause", "nope", check=False)
    assert rc == 2 and "no system nope" in err, err


REPLAY_FIX = ("status: {path: state, values: {open: active, closed: archived}}",
              "status: {path: state, values: {open: active, closed: archived, vip: active}}")


def test_replay_runs_failed_changes_through_the_fixed_map():
    crm, c, shop = setup()
    # A map that cannot read "balance" written as words parks the change.
    shop.change("s1", dict(ADA, balance="12,50"))
    wait_until(lambda: c.cli_json("failed"), 10, "the mapping failure")
    shop.change("s2", dict(ADA, email="b@example.com"))
    wait_until(lambda: one_contact(crm, contact_email="b@example.com"), 10, "the other one")
    # The operator fixes the map: balance is now taken from the whole text
    # with the comma as a decimal point, and restarts the daemon.
    c.stop()
    text = open(c.path).read().replace(
        "          balance: balance\n        map_out",
        "          balance: balance\n        map_out", 1)
    text = text.replace("          balance: balance\n  crm:",
                        "          balance: {jq: '.balance | tostring | sub(\",\"; \".\")'}\n  crm:", 1)
    open(c.path, "w").write(text)
    c.cli("check")
    c.start()
    rc, out, _ = c.cli("replay", "--since", "10m", "--system", "shop")
    assert "2 changes queued for replay" in out, out
    rec = wait_until(lambda: one_contact(crm, contact_email="ada@example.com"), 10,
                     "the replayed change in the CRM")
    assert str(rec["balance"]) == "12.5", rec
    assert c.cli_json("failed") == []
    c.wait_settled()
    # The other record was replayed too, and changed nothing.
    assert len(crm.requests("POST")) == 2 and crm.requests("PUT") == []


def test_replay_never_reverts_a_record():
    crm, c, shop = setup()
    shop.change("s1", ADA)
    shop.change("s1", {"phone": "+44 2"})
    wait_until(lambda: one_contact(crm, phone_number="+44 2"), 10, "the second state")
    c.wait_settled()
    before = len(crm.writes())
    rc, out, _ = c.cli("replay", "--since", "1h")
    assert "1 change queued" in out, out  # the first change of s1 is superseded
    shop.change("s3", dict(ADA, email="c@example.com"))  # a barrier
    wait_until(lambda: one_contact(crm, contact_email="c@example.com"), 10, "the barrier")
    c.wait_settled()
    assert one_contact(crm, contact_email="ada@example.com")["phone_number"] == "+44 2"
    assert len(crm.writes()) == before + 1  # only the barrier's create


if __name__ == "__main__":
    harness.run_tests(globals())
