#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The admin API (issue 9, "Operate it") end to end: every route of
docs/openapi.json against the running daemon, with a shop and a CRM that
both change customers (test_twoway's setup). 401 without a valid token,
400 with a JSON error for bad bodies, ids and parameters, 404 and 405; a
retry through the API of a delivery that failed is delivered by the
running daemon; every action lands in the audit log with the token's
name; and no token ever shows in the log or an answer."""

import atexit
import json
import os
import secrets
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Concord, wait_until  # noqa: E402
from test_twoway import ADA, CONFIG, contact_of, created, names, setup as twoway_setup  # noqa: E402

# Fresh tokens every run; ci's comes from a file, alice's from the environment.
ALICE = "alice-" + secrets.token_hex(16)
CI = "ci-" + secrets.token_hex(16)
_TOKEN_DIR = tempfile.mkdtemp(prefix="concord-admin-tokens-", dir="/tmp")
atexit.register(shutil.rmtree, _TOKEN_DIR, True)
CI_FILE = os.path.join(_TOKEN_DIR, "ci.token")
with open(CI_FILE, "w") as _f:
    _f.write(CI + "\n")
os.environ["ADMIN_TOKEN_ALICE"] = ALICE

ADMIN = "admin:\n  tokens: {alice: env:ADMIN_TOKEN_ALICE, ci: file:%s}\n" % CI_FILE
POLLED = """      people:
        model: customer
        map_in: {email: contact_email}
        poll: {every: 1h, list: GET /contacts}
"""

with open(os.path.join(harness.REPO, "docs", "openapi.json")) as _f:
    OPENAPI = json.load(_f)
ROUTES = sorted((m.upper(), p) for p, ops in OPENAPI["paths"].items() for m in ops)

ANSWERS = []  # every answer's raw text: no token may be in one
COVERED = set()  # (method, pattern) answered 200 with a good token


def pattern_of(method, path):
    bare = path.split("?")[0].split("/")
    for m, p in ROUTES:
        parts = p.split("/")
        if m == method and len(parts) == len(bare) and all(
                a == b or a.startswith("{") for a, b in zip(parts, bare)):
            return (m, p)
    return None


def api(c, method, path, body=None, token=ALICE, port=None, raw=None):
    """One request to the admin API: (status, parsed body, headers)."""
    headers = {"Authorization": "Bearer " + token} if token else {}
    if raw is not None:
        body = raw
        headers["Content-Type"] = "application/json"
    status, got, hdrs = harness.http_request(port or c.port, method, path, body, headers)
    ANSWERS.append(json.dumps(got))
    if status == 200 and token in (ALICE, CI):
        COVERED.add(pattern_of(method, path))
    return status, got, hdrs


def ok(c, method, path, body=None, token=ALICE):
    status, got, _ = api(c, method, path, body, token)
    assert status == 200, (method, path, status, got)
    return got


def audit(c):
    return ok(c, "GET", "/api/audit")


def no_secret_anywhere(c):
    log = c.log_text()
    for t in (ALICE, CI):
        assert t not in log, "a token is in the log"
        assert not any(t in a for a in ANSWERS), "a token is in an answer"


def setup(admin_listen=None, **kw):
    kw["top"] = ADMIN + ("  listen: %s\n" % admin_listen if admin_listen else "")
    return twoway_setup(**kw)


def test_every_route_needs_a_valid_token():
    shop, crm, c = setup()
    for method, path in ROUTES:
        concrete = path.replace("{id}", "1").replace("{name}", "crm")
        status, got, hdrs = api(c, method, concrete, token=None)
        assert status == 401, (method, path, status)
        assert hdrs["www-authenticate"].startswith("Bearer"), hdrs
        assert "error" in got, got
        status, got, hdrs = api(c, method, concrete, token="not-" + ALICE)
        assert status == 401 and 'error="invalid_token"' in hdrs["www-authenticate"], hdrs
    status, _, _ = harness.http_request(c.port, "GET", "/api/status",
                                        headers={"Authorization": "Basic " + ALICE})
    assert status == 401
    # With a good token: unknown routes are 404, wrong methods 405.
    status, got, _ = api(c, "GET", "/api/nope")
    assert status == 404 and "error" in got, got
    status, got, hdrs = api(c, "DELETE", "/api/status")
    assert status == 405 and hdrs["allow"] == "GET" and "error" in got, (got, hdrs)
    status, _, hdrs = api(c, "GET", "/api/inbox/1/retry")
    assert status == 405 and hdrs["allow"] == "POST", hdrs
    # The CI token works too, and the webhooks and health checks need none.
    assert ok(c, "GET", "/api/status", token=CI)["systems"][0]["name"] == "shop"
    assert c.http("GET", "/healthz")[0] == 200
    no_secret_anywhere(c)


def test_a_retry_through_the_api_is_delivered_by_the_running_daemon():
    shop, crm, c = setup()
    crm.faults([{"status": 422, "body": {"error": "phone_number is invalid"}}])
    shop.change("S1", ADA)
    entry = wait_until(lambda: ok(c, "GET", "/api/inbox"), 10, "the failure in the inbox")[0]
    assert entry["kind"] == "failed" and entry["system"] == "crm", entry
    one = ok(c, "GET", "/api/inbox/%d" % entry["id"])
    assert one["attempts_made"][0]["http_status"] == 422, one
    assert one["diff"]["contact_email"] == [None, "ada@example.com"], one
    assert contact_of(crm, ADA["email"]) is None
    got = ok(c, "POST", "/api/inbox/%d/retry" % entry["id"])
    assert got["by"] == "alice" and "queued again" in got["message"], got
    wait_until(lambda: contact_of(crm, ADA["email"]), 10, "the retried delivery in the CRM")
    assert ok(c, "GET", "/api/inbox") == []
    assert ok(c, "GET", "/api/inbox?all=1")[0]["state"] == "retried"
    status, got, _ = api(c, "POST", "/api/inbox/%d/retry" % entry["id"])
    assert status == 404 and "no open inbox entry" in got["error"], got
    a = audit(c)[0]
    assert (a["who"], a["via"], a["action"], a["target"]) == (
        "alice", "api", "retry", "inbox %d" % entry["id"]), a
    # The CLI reads the same log.
    cli = c.cli_json("audit")
    assert cli[0]["who"] == "alice" and cli[0]["action"] == "retry", cli
    no_secret_anywhere(c)


def test_reads_of_status_records_and_plan():
    shop, crm, c = setup(crm_collection=POLLED)
    created(shop, crm, c)
    st = ok(c, "GET", "/api/status")
    assert [s["name"] for s in st["systems"]] == ["shop", "crm"], st
    assert st["systems"] == c.cli_json("status")["systems"], "the API and the CLI differ"
    series = ok(c, "GET", "/api/series")  # the dashboard's last hour (10 s samples)
    assert series["step_s"] == 10 and isinstance(series["points"], list), series
    rec = ok(c, "GET", "/api/records/1")
    assert rec["model"] == "customer" and rec["state"]["email"] == ADA["email"], rec
    hist = ok(c, "GET", "/api/records/1/history")
    assert hist == c.cli_json("history", "1")
    assert hist[0]["source"] == "shop.customers", hist
    changes = ok(c, "GET", "/api/records/1/changes")
    assert changes and changes[0]["system"] == "shop", changes
    ex = ok(c, "GET", "/api/records/1/explain")
    assert {f["field"] for f in ex["fields"]} >= {"email", "name"}, ex
    plan = ok(c, "GET", "/api/plan")
    assert set(plan) == {"reads", "changes", "issues", "automations"}, plan
    assert plan["reads"][0]["collection"] == "crm.people", plan
    assert ok(c, "GET", "/api/plan?scope=crm.people")["changes"] == []
    assert ok(c, "GET", "/api/runs?limit=10") == []  # no automations here: test_automations
    status, got, _ = api(c, "GET", "/api/plan?scope=nope")
    assert status == 400 and "error" in got, got
    # Poll and reconcile are asked of the daemon, which reads at once.
    wait_until(lambda: crm.requests("GET", "/contacts"), 10, "the first poll")
    reads = len(crm.requests("GET", "/contacts"))
    got = ok(c, "POST", "/api/collections/crm.people/poll", token=CI)
    assert got["by"] == "ci", got
    ok(c, "POST", "/api/collections/crm.people/reconcile")
    wait_until(lambda: len(crm.requests("GET", "/contacts")) > reads, 10, "the requested read")
    assert [a["action"] for a in audit(c)[:2]] == ["reconcile", "poll"]
    no_secret_anywhere(c)


def test_skip_edit_bulk_retry_and_replay_are_audited_by_name():
    shop, crm, c = setup()
    crm.faults([{"status": 422, "body": {"error": "alpha"}},
                {"status": 422, "body": {"error": "beta"}},
                {"status": 422, "body": {"error": "gamma"}}])
    for i, sid in enumerate(("S1", "S2", "S3")):
        shop.change(sid, dict(ADA, email="p%d@x" % i))
        wait_until(lambda: len(ok(c, "GET", "/api/inbox")) == i + 1, 10, "failure %d" % i)
    by_reason = {e["reason"].split(": ")[-1]: e for e in ok(c, "GET", "/api/inbox")}
    alpha = [e for r, e in by_reason.items() if "alpha" in r][0]
    beta = [e for r, e in by_reason.items() if "beta" in r][0]
    got = ok(c, "POST", "/api/inbox/%d/skip" % alpha["id"], {"reason": "test data"}, token=CI)
    assert "skipped by ci" in got["message"], got
    got = ok(c, "POST", "/api/inbox/%d/edit" % beta["id"], {"fields": {"phone": "+44 7"}})
    assert got["count"] == 1 and got["record"] == beta["record"], got
    wait_until(lambda: contact_of(crm, "p1@x") and contact_of(crm, "p1@x")["phone_number"]
               == "+44 7", 10, "the corrected record in the CRM")
    got = ok(c, "POST", "/api/retry", {"system": "crm", "since": "1h"})
    assert got["count"] == 1, got
    wait_until(lambda: contact_of(crm, "p2@x"), 10, "the bulk retry")
    got = ok(c, "POST", "/api/records/3/edit", {"fields": {"name": "Gamma"}}, token=CI)
    wait_until(lambda: contact_of(crm, "p2@x")["full_name"] == "Gamma", 10, "the record edit")
    got = ok(c, "POST", "/api/replay", {"since": "1h", "system": "shop"})
    assert got["count"] >= 1, got
    states = {e["id"]: e["state"] for e in ok(c, "GET", "/api/inbox?all=true")}
    assert states[alpha["id"]] == "skipped" and states[beta["id"]] == "edited", states
    log = [(a["who"], a["action"], a["target"]) for a in audit(c)]
    assert log == [("alice", "replay", "system shop"), ("ci", "edit", "record 3"),
                   ("alice", "retry", "inbox"), ("alice", "edit", "record %d" % beta["record"]),
                   ("ci", "skip", "inbox %d" % alpha["id"])], log
    skip = [a for a in audit(c) if a["action"] == "skip"][0]
    assert skip["detail"] == {"reason": "test data"}, skip
    no_secret_anywhere(c)


def test_conflicts_resolve_pause_and_resume():
    shop, crm, c = setup()
    contact = created(shop, crm, c)
    ok(c, "POST", "/api/systems/crm/pause")
    ok(c, "POST", "/api/systems/shop/pause", token=CI)
    st = ok(c, "GET", "/api/status")["systems"]
    assert [s["paused_by"] for s in st] == ["ci", "alice"], st
    shop.change("S1", {"name": "Ada from shop"})
    wait_until(lambda: ok(c, "GET", "/api/status")["systems"][1]["backlog"] == 1, 10, "the edit")
    crm.change(contact["id"], {"full_name": "Ada from crm"})
    x = wait_until(lambda: ok(c, "GET", "/api/conflicts"), 10, "the conflict")[0]
    assert x["field"] == "name" and x["detail"]["theirs"]["value"] == "Ada from crm", x
    status, got, _ = api(c, "POST", "/api/inbox/%d/resolve" % x["id"], {"take": "nobody"})
    assert status == 400 and "not a side" in got["error"], got
    got = ok(c, "POST", "/api/inbox/%d/resolve" % x["id"], {"take": "crm"})
    assert "resolved by alice" in got["message"], got
    ok(c, "POST", "/api/systems/crm/resume")
    ok(c, "POST", "/api/systems/shop/resume")
    wait_until(lambda: names(shop, crm, contact) == ("Ada from crm", "Ada from crm"), 10,
               "the resolved name everywhere")
    assert ok(c, "GET", "/api/conflicts") == []
    assert ok(c, "GET", "/api/conflicts?all=1")[0]["state"] == "resolved"
    actions = [(a["who"], a["action"]) for a in audit(c)]
    assert actions == [("alice", "resume"), ("alice", "resume"), ("alice", "resolve"),
                       ("ci", "pause"), ("alice", "pause")], actions
    no_secret_anywhere(c)


def test_held_deletes_approve_and_restore():
    shop, crm, c = setup(shop_system="    delete_guard: {max_count: 0, min_count: 100, "
                                     "window: 1m}\n")
    for i in range(1, 4):
        created(shop, crm, c, dict(ADA, email="p%d@x" % i), "S%d" % i)
    for i in range(1, 4):
        shop.delete("S%d" % i)
    held = wait_until(lambda: len(ok(c, "GET", "/api/held")) == 3 and ok(c, "GET", "/api/held"),
                      10, "three held deletes")
    got = ok(c, "POST", "/api/inbox/%d/approve" % held[0]["id"], token=CI)
    assert got["count"] == 1 and "approved by ci" in got["message"], got
    wait_until(lambda: len(crm.records()) == 2, 10, "the approved delete")
    got = ok(c, "POST", "/api/approve", {"system": "shop"})
    assert got["count"] == 2, got
    wait_until(lambda: crm.records() == {}, 10, "the other deletes")
    assert ok(c, "GET", "/api/held") == []
    rec = held[0]["record"]
    assert ok(c, "GET", "/api/records/%d" % rec)["deleted"] is True
    got = ok(c, "POST", "/api/records/%d/restore" % rec)
    wait_until(lambda: len(crm.records()) == 1, 10, "the restored record")
    wait_until(lambda: ok(c, "GET", "/api/records/%d" % rec)["deleted"] is False, 10,
               "the record live again")
    status, got, _ = api(c, "POST", "/api/records/%d/restore" % rec)
    assert status == 400 and "not deleted" in got["error"], got
    actions = [(a["who"], a["action"]) for a in audit(c)]
    assert actions == [("alice", "restore"), ("alice", "approve"), ("alice", "approve"),
                       ("ci", "approve")], actions
    no_secret_anywhere(c)


def test_bad_requests_are_400_with_a_json_error():
    shop, crm, c = setup()
    created(shop, crm, c)
    bad = [
        ("POST", "/api/inbox/abc/retry", None, None, "not an id"),
        ("GET", "/api/records/0/history", None, None, "not an id"),
        ("GET", "/api/records/-3", None, None, "not an id"),
        ("POST", "/api/retry", None, "{not json", "not a JSON object"),
        ("POST", "/api/retry", None, "[1, 2]", "not a JSON object"),
        ("POST", "/api/retry", {"sytem": "crm"}, None, "unknown key"),
        ("POST", "/api/retry", {}, None, "name a filter"),
        ("POST", "/api/retry", {"since": "yesterday"}, None, "no time"),
        ("POST", "/api/retry", {"all": "yes"}, None, "true or false"),
        ("POST", "/api/replay", {}, None, "since"),
        ("POST", "/api/replay", {"since": "1h", "system": "nope"}, None, "no system nope"),
        ("POST", "/api/approve", {}, None, "system or all"),
        ("POST", "/api/inbox/1/skip", {"reason": 5}, None, "non-empty string"),
        ("POST", "/api/records/1/edit", {}, None, "fields must be an object"),
        ("POST", "/api/records/1/edit", {"fields": {"colour": "red"}}, None, "no field"),
        ("POST", "/api/inbox/1/resolve", {"take": "crm", "new": True}, None, "exactly one"),
        ("POST", "/api/inbox/1/resolve", {"record": 1.5}, None, "positive integer"),
        ("GET", "/api/inbox?kind=nope", None, None, "kind"),
        ("GET", "/api/conflicts?all=maybe", None, None, "all"),
        ("GET", "/api/audit?limit=0", None, None, "limit"),
        ("POST", "/api/records/1/restore", None, None, "not deleted"),
    ]
    for method, path, body, raw, text in bad:
        status, got, hdrs = api(c, method, path, body, raw=raw)
        assert status == 400, (method, path, status, got)
        assert hdrs["content-type"] == "application/json" and text in got["error"], (path, got)
    missing = [("GET", "/api/inbox/999"), ("POST", "/api/inbox/999/skip"),
               ("GET", "/api/records/999"), ("GET", "/api/records/999/explain"),
               ("GET", "/api/records/999/changes"), ("POST", "/api/systems/nope/pause"),
               ("POST", "/api/collections/shop.customers/poll"),
               ("POST", "/api/inbox/999/approve"), ("POST", "/api/inbox/1/resolve")]
    for method, path in missing:
        body = {"take": "crm"} if path.endswith("resolve") else None
        status, got, _ = api(c, method, path, body)
        assert status == 404 and "error" in got, (path, status, got)
    assert audit(c) == []  # nothing that failed was recorded
    no_secret_anywhere(c)


def test_its_own_listener_and_off_without_tokens():
    admin_port = harness.free_port()
    shop, crm, c = setup(admin_listen="127.0.0.1:%d" % admin_port)
    status, _, _ = api(c, "GET", "/api/status")
    assert status == 404  # not on the webhooks' listener any more
    status, got, _ = api(c, "GET", "/api/status", port=admin_port)
    assert status == 200 and len(got["systems"]) == 2, got
    # A person at the CLI is recorded by login (or $CONCORD_OPERATOR).
    c.env["CONCORD_OPERATOR"] = "carol"
    c.cli("pause", "crm")
    a = api(c, "GET", "/api/audit", port=admin_port)[1][0]
    assert (a["who"], a["via"], a["action"]) == ("carol", "cli", "pause"), a
    _, text, _ = c.cli("audit")
    assert "carol" in text and "pause" in text, text
    c.stop()
    plain = Concord(CONFIG, values={"shop_port": shop.port, "crm_port": crm.port, "sync": "",
                                    "crm_collection": "", "shop_system": "", "top": ""})
    plain.start()
    status, got, _ = api(plain, "GET", "/api/status")
    assert status == 404, (status, got)
    no_secret_anywhere(c)


def test_every_route_was_exercised():
    missing = sorted(set(ROUTES) - COVERED)
    assert not missing, "routes never answered 200: %s" % missing


if __name__ == "__main__":
    harness.run_tests(globals())
