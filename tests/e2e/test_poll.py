#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The Scheduled-sync issue end to end: a CRM that sends no webhooks is read
on a schedule (or by `concord poll` / `concord reconcile`), and what the
reads find reaches a shop. Each cursor kind and page style against the
simulator's list reads (tests/sims/README.md, "List reads"); losses and
repeats are checked at the shop, which counts every write."""

import datetime
import hashlib
import json
import os
import pty
import re
import sqlite3
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Concord, Sim, wait_until  # noqa: E402

CONFIG = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=2000
log: {level: debug, format: json}
systems:
  crm:
    kind: http
    base_url: http://127.0.0.1:{crm_port}
    timeout_ms: 2000
    delete_guard: off
    collections:
      contacts:
        model: customer
        deleted_when: '.deleted == true'
        map_in: {email: contact_email, name: full_name}
        poll:
{poll}
  shop:
    kind: http
    base_url: http://127.0.0.1:{shop_port}
    retry: {max_attempts: 5, base_ms: 50, cap_ms: 200, jitter: 0.1}
    collections:
      customers:
        model: customer
        map_out: {email: email, name: name}
        create: POST /customers
        update: PUT /customers/{id}
        delete: DELETE /customers/{id}
        idempotency_header: Idempotency-Key
models:
  customer:
    fields: {email: string, name: string}
syncs:
  customers:
    model: customer
    origin: crm
    collections: [crm.contacts, shop.customers]
"""

SINCE = """          every: {every}
          list: GET /contacts
          items: data
          cursor: {kind: updated_since, param: updated_since, field: updated_at, overlap: 2s}
          page: {kind: cursor, param: cursor, next: next_cursor, size_param: limit, size: 10}
"""
TOKEN = """          every: {every}
          list: GET /contacts
          items: data
          cursor: {kind: sync_token, param: syncToken, token: nextSyncToken}
          page: {kind: cursor, param: pageToken, next: nextPageToken, size_param: limit, size: 10}
"""
NUMBER = """          every: {every}
          list: GET /contacts
          items: data
          page: {kind: number, param: page, size_param: limit, size: 10}
"""
OFFSET = """          every: {every}
          list: GET /contacts
          items: data
          page: {kind: offset, param: offset, size_param: limit, size: 10}
"""
LINK = """          every: {every}
          list: GET /contacts
          items: data
          page: {kind: link, size_param: limit, size: 10}
"""
DELTA = """          every: {every}
          list: GET /contacts/delta
          cursor: delta_link
"""
EVENTS = """          every: {every}
          list: GET /contacts
          items: data
          cursor: {kind: events, list: GET /events}
          page: {kind: cursor, param: cursor, next: next_cursor, size_param: limit, size: 10}
"""


def setup(poll, page_style, every="1h", start=False, page_size=10, deleted_when=True):
    crm = Sim(resource="contacts", id_prefix="C", page_style=page_style, page_size=page_size)
    shop = Sim(resource="customers", id_prefix="S", idempotency_header="Idempotency-Key")
    config = CONFIG if deleted_when else CONFIG.replace("        deleted_when: '.deleted == true'\n",
                                                        "")
    c = Concord(config, values={"crm_port": crm.port, "shop_port": shop.port,
                                "poll": poll.replace("{every}", every)})
    if start:
        c.start()
    return crm, shop, c


def person(i, name=None):
    return {"contact_email": "p%d@example.com" % i, "full_name": name or "P%d" % i}


def emails(shop):
    got = [r["email"] for r in shop.records().values()]
    assert len(got) == len(set(got)), "a duplicate in the shop: %s" % sorted(got)
    return set(got)


def poll(c, kind="poll"):
    rc, out, err = c.cli(kind, "crm.contacts", "--json", check=False)
    assert out.strip(), "concord %s printed nothing: %s" % (kind, err)
    return json.loads(out)


def test_updated_since_loses_nothing_when_rows_share_a_time_or_commit_late():
    crm, shop, c = setup(SINCE, "cursor")
    t = 1795000000000
    for i in range(1, 26):
        # Rows 10 to 14 share one timestamp, across a page boundary.
        crm.put("C%d" % i, person(i), updated_at=t + (10 if 10 <= i <= 14 else i) * 10)
    r = poll(c)  # before the daemon starts: its own first poll is then not due for an hour
    assert (r["read"], r["new"], r["complete"], r["pages"]) == (25, 25, True, 3), r
    c.start()
    wait_until(lambda: len(emails(shop)) == 25, 10, "25 customers in the shop")
    # A row committed during that poll, with a time behind the watermark
    # (inside the look-back), and one that shares the watermark's time.
    crm.put("C50", person(50), updated_at=t + 250 - 500)
    crm.put("C51", person(51), updated_at=t + 250)
    r = poll(c)
    assert r["new"] == 2 and r["drifted"] == 0, r
    assert r["in_sync"] >= 1, r  # re-read in the look-back and dropped as unchanged
    wait_until(lambda: len(emails(shop)) == 27, 10, "both late rows in the shop")
    c.wait_settled()
    posts = len(shop.requests("POST"))
    r = poll(c)
    assert r["new"] == 0 and r["drifted"] == 0, r
    c.wait_settled()
    assert len(shop.requests("POST")) == posts == 27
    assert shop.requests("PUT") == []  # unchanged rows never count as changes


def test_the_next_read_asks_from_the_newest_row_read():
    # A read of one page: the watermark that page reached is stored with
    # it, so the next read asks only from there, less the look-back.
    crm, shop, c = setup(SINCE, "cursor")
    t = 1795000000000
    for i in range(1, 6):
        crm.put("C%d" % i, person(i), updated_at=t + i * 10000)
    r = poll(c)
    assert (r["read"], r["new"], r["pages"]) == (5, 5, 1), r
    r = poll(c)
    get = crm.requests("GET")[-1]["path"]
    assert "updated_since=%d" % (t + 50000 - 2000) in get, get
    assert r["read"] == 1, r  # only C5 again, in the look-back


def test_a_row_whose_only_change_is_a_member_no_map_reads_is_in_sync():
    # What concord keeps of a copy it only reads is what its map reads (and
    # its id and time): a change elsewhere in the row is no change, and is
    # neither journaled nor written anywhere. (Without deleted_when, which
    # may read any member.)
    crm, shop, c = setup(NUMBER, "number", deleted_when=False)
    crm.put("C1", dict(person(1), notes="first call"))
    r = poll(c)
    assert (r["read"], r["new"]) == (1, 1), r
    c.start()
    wait_until(lambda: len(shop.records()) == 1, 10, "the customer in the shop")
    crm.put("C1", dict(person(1), notes="second call, longer than the first"))
    r = poll(c)
    assert (r["read"], r["drifted"], r["in_sync"]) == (1, 0, 1), r
    crm.put("C1", dict(person(1, "Ada"), notes="second call, longer than the first"))
    r = poll(c)
    assert (r["read"], r["drifted"], r["in_sync"]) == (1, 1, 0), r
    wait_until(lambda: [x["name"] for x in shop.records().values()] == ["Ada"], 10,
               "the new name in the shop")
    assert len(shop.requests("PUT")) == 1, shop.requests("PUT")


def test_a_row_marked_deleted_by_a_member_only_deleted_when_reads_is_a_delete():
    # deleted_when reads `.deleted`, which no map_in path reads: a polled
    # collection keeps its copies whole, and the poll sees the row change.
    crm, shop, c = setup(NUMBER, "number")
    crm.put("C1", person(1))
    r = poll(c)
    assert (r["read"], r["new"]) == (1, 1), r
    c.start()
    wait_until(lambda: len(shop.records()) == 1, 10, "the customer in the shop")
    crm.put("C1", dict(person(1), deleted=True))
    r = poll(c)
    assert r["drifted"] == 1, r
    wait_until(lambda: len(shop.records()) == 0, 10, "the customer deleted in the shop")


def test_a_sync_token_refused_with_410_leads_to_a_full_read():
    crm, shop, c = setup(TOKEN, "token")
    for i in range(1, 13):
        crm.put("C%d" % i, person(i))
    r = poll(c)
    assert (r["new"], r["complete"], r["resynced"], r["pages"]) == (12, True, False, 2), r
    c.start()
    wait_until(lambda: len(emails(shop)) == 12, 10, "12 customers")
    crm.put("C3", person(3, "P3 renamed"))
    r = poll(c)
    assert (r["read"], r["drifted"]) == (1, 1), r  # only what changed since the token
    wait_until(lambda: "P3 renamed" in {x["name"] for x in shop.records().values()}, 10,
               "the rename in the shop")
    c.wait_settled()
    crm.expire_tokens()
    crm.put("C4", person(4, "P4 renamed"))
    r = poll(c)
    assert r["resynced"] and r["complete"] and r["read"] == 12 and r["drifted"] == 1, r
    wait_until(lambda: {x["name"] for x in shop.records().values()} >= {"P3 renamed", "P4 renamed"},
               10, "both renames in the shop")


def names(shop):
    return {x["email"]: x["name"] for x in shop.records().values()}


def test_a_delta_link_reads_changes_and_deletions_and_resyncs_on_410():
    crm, shop, c = setup(DELTA, "delta")
    for i in range(1, 13):
        crm.put("C%d" % i, person(i))
    r = poll(c)  # the first round reads everything, following the next links
    assert (r["new"], r["complete"], r["pages"], r["resynced"]) == (12, True, 2, False), r
    c.start()
    wait_until(lambda: len(emails(shop)) == 12, 10, "12 customers")
    # The next round goes on from the delta link: a rename and a deletion.
    crm.put("C3", person(3, "P3 renamed"))
    crm.delete("C5")
    r = poll(c)
    assert (r["read"], r["drifted"], r["deleted"], r["new"]) == (2, 1, 1, 0), r
    wait_until(lambda: names(shop).get("p3@example.com") == "P3 renamed"
               and "p5@example.com" not in names(shop), 10, "the rename and the delete")
    get = [q["path"] for q in crm.requests("GET")][-1]
    assert "$deltatoken=" in urllib.parse.unquote(get), get
    # The delta token expires (410): a full round, which reports no
    # deletions; what it does not see is deleted, as after a reconcile.
    crm.expire_tokens()
    crm.delete("C6")
    crm.put("C7", person(7, "P7 renamed"))
    r = poll(c)
    assert r["resynced"] and r["complete"] and r["read"] == 10, r
    assert (r["drifted"], r["missing"]) == (1, 1), r
    wait_until(lambda: names(shop).get("p7@example.com") == "P7 renamed"
               and "p6@example.com" not in names(shop), 10, "the resync's changes")
    assert len(emails(shop)) == 10


def test_an_event_list_is_read_after_the_last_event_and_loses_nothing():
    crm, shop, c = setup(EVENTS, "cursor")
    for i in range(1, 13):
        crm.put("C%d" % i, person(i))
    r = poll(c)  # the first read is the list, whole; the events go on from the newest
    assert (r["new"], r["complete"], r["pages"]) == (12, True, 2), r
    c.start()
    wait_until(lambda: len(emails(shop)) == 12, 10, "12 customers")
    # 150 events since: more than one page of 100, read oldest first.
    for n in range(150):
        crm.put("C1", person(1, "P1 v%d" % n))
    crm.put("C13", person(13))
    crm.delete("C2")
    r = poll(c)
    assert r["complete"] and r["pages"] == 2 and r["deleted"] == 1, r
    assert r["read"] == 152, r
    wait_until(lambda: names(shop).get("p1@example.com") == "P1 v149"
               and "p13@example.com" in names(shop)
               and "p2@example.com" not in names(shop), 10, "the last version of each")
    gets = [urllib.parse.unquote(q["path"]) for q in crm.requests("GET")
            if q["path"].startswith("/events")]
    assert any("ending_before=evt_" in g for g in gets), gets
    # Nothing new: one request, nothing read.
    r = poll(c)
    assert (r["read"], r["complete"]) == (0, True), r
    c.wait_settled()
    assert len(emails(shop)) == 12


def test_an_event_read_whose_lease_was_taken_stops_and_commits_nothing_more():
    # As a list read does (below): an event read whose lease ran out during
    # a slow page, and was taken by another reader, must not commit that
    # page beside it, nor move the cursor under it.
    crm, shop, c = setup(EVENTS, "cursor")
    for i in range(1, 13):
        crm.put("C%d" % i, person(i))
    r = poll(c)
    assert r["complete"], r
    for n in range(150):
        crm.put("C1", person(1, "P1 v%d" % n))
    crm.faults([{"delay_ms": 1500, "match": {"method": "GET", "path_prefix": "/events"},
                 "after": 1}])
    since = crm.requests()[-1]["seq"] if crm.requests() else 0
    p = subprocess.Popen([harness.concord_bin(), "poll", "crm.contacts", "--json", "-c", c.path],
                         cwd=c.dir, env=c.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_until(lambda: len([q for q in crm.requests(since=since)
                            if q["path"].startswith("/events")]) >= 2, 10,
               "the slow second page of events asked for")
    db = sqlite3.connect(os.path.join(c.dir, "state.db"), timeout=10)
    db.execute("UPDATE polls SET lease_holder = 'another reader', lease_until = ? "
               "WHERE collection = 'crm.contacts'", (int(time.time() * 1000) + 60000,))
    db.commit()
    out, err = p.communicate(timeout=30)
    r = json.loads(out)
    assert not r["complete"] and "lease ran out" in r.get("error", ""), r
    assert r["pages"] == 1 and r["read"] == 100, r
    row = db.execute("SELECT cursor, lease_holder FROM polls "
                     "WHERE collection = 'crm.contacts'").fetchone()
    assert row[1] == "another reader", row  # not taken back, nor released
    token = json.loads(row[0])["token"]
    db.execute("UPDATE polls SET lease_holder = NULL, lease_until = NULL")
    db.commit()
    db.close()
    r = poll(c)  # the next read goes on after the last page committed
    assert r["complete"] and r["read"] == 50, (r, token)


def test_a_read_by_each_id_whose_lease_was_taken_stops_and_commits_nothing_more():
    # The same for a poll with `each`, which reads every linked copy by its
    # id, 50 links a page: the page whose lease was lost is not committed.
    crm, shop, c = setup(NUMBER, "number")
    for i in range(1, 61):
        crm.put("C%d" % i, person(i))
    r = poll(c)
    assert r["complete"] and r["new"] == 60, r
    c.start()
    wait_until(lambda: len(emails(shop)) == 60, 15, "60 customers in the shop")
    c.wait_settled()
    c.stop()
    for i in range(1, 61):
        crm.put("C%d" % i, person(i, "P%d renamed" % i))
    c.values["poll"] = "          every: 1h\n          each: GET /contacts/{id}\n"
    c._write_config()
    crm.faults([{"delay_ms": 1500, "match": {"method": "GET", "path_prefix": "/contacts/"},
                 "after": 50}])
    since = crm.requests()[-1]["seq"]
    p = subprocess.Popen([harness.concord_bin(), "poll", "crm.contacts", "--json", "-c", c.path],
                         cwd=c.dir, env=c.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_until(lambda: len(crm.requests("GET", since=since)) >= 51, 10,
               "the slow first copy of the second page asked for")
    db = sqlite3.connect(os.path.join(c.dir, "state.db"), timeout=10)
    with db:
        db.execute("UPDATE polls SET lease_holder = 'another reader', lease_until = ? "
                   "WHERE collection = 'crm.contacts'", (int(time.time() * 1000) + 60000,))
    out, err = p.communicate(timeout=30)
    r = json.loads(out)
    assert not r["complete"] and "lease ran out" in r.get("error", ""), r
    assert r["pages"] == 1 and r["drifted"] == 50, r
    holder = db.execute("SELECT lease_holder FROM polls WHERE collection = 'crm.contacts'")
    assert holder.fetchone()[0] == "another reader"  # not taken back, nor released
    db.close()


def test_a_webhook_that_is_only_a_hint_makes_a_poll():
    # Google's push carries no record, only headers: with `hint: poll` the
    # webhook makes concord poll the collection now, whatever `every` says.
    crm = Sim(resource="contacts", id_prefix="C", page_style="cursor", page_size=10)
    shop = Sim(resource="customers", id_prefix="S", idempotency_header="Idempotency-Key")
    text = CONFIG.replace("    delete_guard: off\n",
                          "    delete_guard: off\n    webhook: {path: /webhooks/crm}\n")
    text = text.replace("        map_in: {email: contact_email, name: full_name}\n",
                        "        map_in: {email: contact_email, name: full_name}\n"
                        "        hint: poll\n")
    c = Concord(text, values={"crm_port": crm.port, "shop_port": shop.port,
                              "poll": SINCE.replace("{every}", "1h")})
    crm.put("C1", person(1))
    c.start()
    wait_until(lambda: emails(shop) == {"p1@example.com"}, 10, "the first poll's record")
    reads = crm.stats()["list_reads"]
    crm.put("C2", person(2))
    out = crm.send_raw("", headers={"X-Goog-Resource-State": "exists"},
                       url=c.url + "/webhooks/crm")
    assert out["status"] == 202, out
    wait_until(lambda: emails(shop) == {"p1@example.com", "p2@example.com"}, 10,
               "the record the hint's poll found")
    assert crm.stats()["list_reads"] > reads
    db = sqlite3.connect(os.path.join(c.dir, "state.db"))
    notes = [n for (n,) in db.execute("SELECT note FROM journal WHERE CAST(body AS TEXT) = '{}'")]
    db.close()
    assert notes == ["a hint: the collection is polled now"], notes


def test_a_hint_that_comes_while_a_poll_runs_is_not_lost():
    # The first read is slow; the hint arrives while it runs and names a
    # record that read has already passed. The read's end must not swallow
    # the hint: another read follows at once, not an hour later.
    crm = Sim(resource="contacts", id_prefix="C", page_style="cursor", page_size=10)
    shop = Sim(resource="customers", id_prefix="S", idempotency_header="Idempotency-Key")
    text = CONFIG.replace("    delete_guard: off\n",
                          "    delete_guard: off\n    webhook: {path: /webhooks/crm}\n")
    text = text.replace("        map_in: {email: contact_email, name: full_name}\n",
                        "        map_in: {email: contact_email, name: full_name}\n"
                        "        hint: poll\n")
    c = Concord(text, values={"crm_port": crm.port, "shop_port": shop.port,
                              "poll": SINCE.replace("{every}", "1h")})
    crm.put("C1", person(1))
    # Answered as it was when asked, 1.5 s late.
    crm.faults([{"delay_ms": 1500, "apply": "first",
                 "match": {"method": "GET", "path_prefix": "/contacts"}}])
    c.start()
    wait_until(lambda: crm.stats()["list_reads"] >= 1 or crm.requests("GET"), 5, "the slow read")
    crm.put("C2", person(2))
    out = crm.send_raw("", headers={"X-Goog-Resource-State": "exists"},
                       url=c.url + "/webhooks/crm")
    assert out["status"] == 202, out
    wait_until(lambda: emails(shop) == {"p1@example.com", "p2@example.com"}, 10,
               "the record the hint's read found")


def test_a_read_that_fails_part_way_resumes_at_its_page():
    crm, shop, c = setup(NUMBER, "number")
    for i in range(1, 101):
        crm.put("C%d" % i, person(i))
    crm.faults([{"status": 500, "match": {"method": "GET", "path_prefix": "/contacts"},
                 "after": 4}])
    r = poll(c)
    assert not r["complete"] and r["pages"] == 4 and "HTTP 500" in r["error"], r
    c.start()
    since = crm.requests()[-1]["seq"]
    r = poll(c)
    assert r["complete"] and r["read"] == 60, r  # pages 5 to 10, not from the start
    first = [q for q in crm.requests(since=since) if q["method"] == "GET"][0]
    assert "page=5" in first["path"], first
    wait_until(lambda: len(emails(shop)) == 100, 15, "100 customers")
    c.wait_settled()
    assert len(shop.requests("POST")) == 100


def test_a_killed_backfill_resumes_where_it_stopped():
    crm, shop, c = setup(NUMBER, "number", every="200ms")
    for i in range(1, 151):
        crm.put("C%d" % i, person(i))
    # Each page takes a while, so the daemon is killed in the middle.
    crm.faults([{"delay_ms": 250, "match": {"method": "GET", "path_prefix": "/contacts"},
                 "times": 15}])
    c.start()
    wait_until(lambda: 3 <= len(crm.requests("GET")) < 12, 15, "a few pages read")
    c.kill9()
    read_before = len(crm.requests("GET"))
    since = crm.requests()[-1]["seq"]
    c.start()
    wait_until(lambda: len(emails(shop)) == 150, 30, "150 customers")
    first = [q for q in crm.requests(since=since) if q["method"] == "GET"][0]
    assert "page=1&" not in first["path"] + "&" and "page=1" != first["path"][-6:], first
    c.wait_settled()
    # Creates in flight at the kill are sent again under their idempotency
    # key: more POSTs than records is fine, a second copy is not.
    assert len(shop.records()) == 150 and len(emails(shop)) == 150
    assert read_before >= 3


def read_pty(fd):
    """Everything written to a pseudo-terminal until its last writer closed it."""
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        out += chunk
    os.close(fd)
    return out.decode(errors="replace")


def test_a_long_read_shows_its_progress():
    crm, shop, c = setup(NUMBER, "number")
    for i in range(1, 101):
        crm.put("C%d" % i, person(i))
    slow = {"delay_ms": 300, "match": {"method": "GET", "path_prefix": "/contacts"}, "times": 11}
    # The daemon's backfill: off a terminal, a line every 2 s once it took that long.
    crm.faults([slow])
    c.start()
    wait_until(lambda: len(emails(shop)) == 100, 30, "100 customers")
    lines = [json.loads(x) for x in c.log_text().splitlines() if "under way" in x]
    assert lines and lines[0]["collection"] == "crm.contacts", c.log_text()[-2000:]
    assert re.fullmatch(r"poll under way: \d+ rows read, \d+ rows/s", lines[0]["msg"]), lines
    wait_until(lambda: not c.cli_json("status")["polls"][0]["reading"], 15, "the poll to end")
    c.wait_settled()

    # A reconcile on a terminal: a bar, the total (the 100 linked copies),
    # the rate and the time left; `concord status` shows the same meanwhile.
    crm.faults([slow])
    master, slave = pty.openpty()
    p = subprocess.Popen([harness.concord_bin(), "reconcile", "crm.contacts", "-c", c.path],
                         cwd=c.dir, env=c.env, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = []

    def under_way():
        # Two reads of status, JSON then text: a page may land between
        # them, so a pair counts only when both show the same progress.
        st = c.cli_json("status")
        poll = [x for x in st["polls"] if x["collection"] == "crm.contacts"][0]
        if poll.get("progress", {}).get("read", 0) > 0:
            text = c.cli("status")[1]
            if poll["progress"]["text"] in text:
                seen.append((poll, text))
        return seen
    wait_until(under_way, 15, "status to show the reconcile under way")
    out = read_pty(master)
    assert p.wait(30) == 0, out
    poll, text = seen[0]
    assert poll["progress"].get("expected") == 100 and poll["reading"], seen
    assert poll["progress"]["text"] in text and 0 <= poll["progress"]["percent"] <= 99, poll
    assert re.search(r"crm\.contacts .* reconcile: \d+ of 100 rows \(\d+%\), \d+ rows/s", text), text
    bars = re.findall(r"crm\.contacts: \[([#.]{24})\] (\d+) of 100 rows \((\d+)%\), \d+ rows/s"
                      r"(, \d+ s left)?", out)
    assert len(bars) >= 5, out
    assert bars[0][0].count("#") < bars[-2][0].count("#"), bars  # it fills
    assert all(b[3] for b in bars if int(b[1]) < 100), bars  # a time left until the end
    assert [int(b[1]) for b in bars] == sorted(int(b[1]) for b in bars), bars
    assert "reconcile: complete, 11 pages, 100 read" in p.stdout.read().decode(), out
    # Done: status no longer shows it.
    poll = [x for x in c.cli_json("status")["polls"] if x["collection"] == "crm.contacts"][0]
    assert "progress" not in poll and poll["last_report"]["expected"] == 100, poll


def test_a_read_whose_lease_was_taken_stops_and_commits_nothing_more():
    # A page so slow that the read's lease ran out, and another reader took
    # the collection meanwhile (here: written into the store by hand). The
    # first read must not go on beside it: its page is not committed, it
    # stops and says why, and the next read goes on from that page.
    crm, shop, c = setup(NUMBER, "number")
    for i in range(1, 31):
        crm.put("C%d" % i, person(i))
    crm.faults([{"delay_ms": 1500, "match": {"method": "GET", "path_prefix": "/contacts"},
                 "after": 1}])
    p = subprocess.Popen([harness.concord_bin(), "poll", "crm.contacts", "--json", "-c", c.path],
                         cwd=c.dir, env=c.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_until(lambda: len(crm.requests("GET")) >= 2, 10, "the slow second page asked for")
    db = sqlite3.connect(os.path.join(c.dir, "state.db"), timeout=10)
    db.execute("UPDATE polls SET lease_holder = 'another reader', lease_until = ? "
               "WHERE collection = 'crm.contacts'", (int(time.time() * 1000) + 60000,))
    db.commit()
    db.close()
    out, err = p.communicate(timeout=30)
    r = json.loads(out)
    assert not r["complete"] and r["pages"] == 1 and r["read"] == 10, r
    assert "lease ran out" in r["error"], r
    db = sqlite3.connect(os.path.join(c.dir, "state.db"), timeout=10)
    holder = db.execute("SELECT lease_holder FROM polls WHERE collection = 'crm.contacts'")
    assert holder.fetchone()[0] == "another reader"  # not taken back, nor released
    db.execute("UPDATE polls SET lease_holder = NULL, lease_until = NULL")
    db.commit()
    db.close()
    since = crm.requests()[-1]["seq"]
    r = poll(c)
    first = [q for q in crm.requests(since=since) if q["method"] == "GET"][0]
    assert "page=2" in first["path"] and r["complete"] and r["read"] == 20, (first, r)


def test_a_refused_page_cursor_starts_the_read_over():
    # A read that stopped part way keeps the cursor of its next page. A
    # system that no longer takes that cursor (expired, or from before an
    # upgrade of its own: here one it cannot read) answers 400 to it; the
    # next poll must start its read over, not ask with the refused cursor
    # at every poll, never to read the collection again.
    crm, shop, c = setup(SINCE, "cursor")
    for i in range(1, 26):
        crm.put("C%d" % i, person(i))
    crm.faults([{"status": 500, "match": {"method": "GET", "path_prefix": "/contacts"},
                 "after": 1}])
    r = poll(c)
    assert not r["complete"] and r["read"] == 10, r
    db = sqlite3.connect(os.path.join(c.dir, "state.db"), timeout=10)
    cursor = json.loads(db.execute("SELECT cursor FROM polls").fetchone()[0])
    assert "page" in cursor, cursor
    cursor["page"] = "expired"
    with db:
        db.execute("UPDATE polls SET cursor = ?", (json.dumps(cursor),))
    db.close()
    since = crm.requests()[-1]["seq"]
    r = poll(c)
    gets = [q for q in crm.requests(since=since) if q["method"] == "GET"]
    assert gets[0]["status"] == 400 and "cursor=expired" in gets[0]["path"], gets[0]
    assert len(gets) > 1 and "cursor=" not in gets[1]["path"], (r, gets)  # it starts over
    assert r["complete"] and r["read"] == 25 and "error" not in r, r
    c.start()
    wait_until(lambda: len(emails(shop)) == 25, 10, "25 customers in the shop")


def test_each_page_style_reads_everything_once():
    for style, poll_cfg in (("offset", OFFSET), ("link", LINK), ("number", NUMBER)):
        crm, shop, c = setup(poll_cfg, style)
        for i in range(1, 26):
            crm.put("C%d" % i, person(i))
        r = poll(c)
        assert (r["read"], r["new"], r["complete"]) == (25, 25, True), (style, r)
        assert r["pages"] == 3, (style, r)
        c.start()
        wait_until(lambda: len(emails(shop)) == 25, 10, "25 customers (%s)" % style)
        c.wait_settled()
        assert len(shop.requests("POST")) == 25
        c.stop(), crm.stop(), shop.stop()


def test_the_daemon_polls_on_schedule():
    crm, shop, c = setup(SINCE, "cursor", every="200ms", start=True)
    crm.put("C1", person(1))
    wait_until(lambda: len(emails(shop)) == 1, 10, "the first customer")
    crm.put("C2", person(2))
    wait_until(lambda: len(emails(shop)) == 2, 10, "the second, by the next poll")
    polls = c.cli_json("status")["polls"]
    assert polls[0]["collection"] == "crm.contacts" and polls[0]["rows_read"] >= 2, polls


def test_a_cron_schedule_sets_the_next_poll_to_its_next_minute():
    cron = SINCE.replace("          every: {every}\n",
                         "          cron: \"*/7 * * * *\"\n          jitter: 0\n")
    crm, shop, c = setup(cron, "cursor")
    crm.put("C1", person(1))
    c.start()
    # The first poll runs at the start (the backfill); the next at the next
    # minute divisible by 7, in UTC.
    wait_until(lambda: c.cli_json("status")["polls"][0]["rows_read"] >= 1, 10, "the first poll")
    p = c.cli_json("status")["polls"][0]
    at = datetime.datetime.strptime(p["next_at"][:19].replace("T", " "), "%Y-%m-%d %H:%M:%S")
    last = datetime.datetime.strptime(p["last_ok_at"][:19].replace("T", " "), "%Y-%m-%d %H:%M:%S")
    assert at.minute % 7 == 0 and at.second == 0, p
    assert datetime.timedelta(0) < at - last <= datetime.timedelta(minutes=7), p
    wait_until(lambda: len(emails(shop)) == 1, 10, "the first customer")


def test_a_copy_linked_while_a_reconcile_reads_is_not_missing():
    # The shop is read whole (a reconcile) while concord creates a copy in
    # it: the shop's answer was made before the copy existed, so the read
    # does not hold it. The copy is not "missing": it was linked after the
    # read began.
    text = CONFIG.replace("        map_out: {email: email, name: name}\n",
                          "        map_out: {email: email, name: name}\n"
                          "        map_in: {email: email, name: name}\n"
                          "        poll: {every: 1h, list: GET /customers, items: data}\n")
    crm = Sim(resource="contacts", id_prefix="C", page_style="number", page_size=10)
    shop = Sim(resource="customers", id_prefix="S", idempotency_header="Idempotency-Key")
    c = Concord(text, values={"crm_port": crm.port, "shop_port": shop.port,
                              "poll": NUMBER.replace("{every}", "1h")})
    for i in range(1, 4):
        crm.put("C%d" % i, person(i))
    c.start()
    wait_until(lambda: len(emails(shop)) == 3, 10, "3 customers in the shop")
    c.wait_settled()
    # The daemon's start-up read of the shop reads it as the reconcile does:
    # over first, or it may take the slow answer meant for the reconcile.
    c.wait_first_poll("shop.customers")
    shop.faults([{"delay_ms": 1500, "apply": "first", "match": {"method": "GET"}}])
    reads = len(shop.requests("GET"))
    rec = subprocess.Popen([harness.concord_bin(), "reconcile", "shop.customers", "--json", "-c",
                            c.path], cwd=c.dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    try:
        wait_until(lambda: len(shop.requests("GET")) > reads, 10, "the reconcile's read")
        # concord status says a read runs: it holds the collection's lease.
        st = [p for p in c.cli_json("status")["polls"] if p["collection"] == "shop.customers"]
        assert st and st[0]["reading"] is True and st[0]["next_at"] == "now", st
        crm.put("C4", person(4))
        poll(c)
        wait_until(lambda: len(emails(shop)) == 4, 10, "the new copy in the shop")
        c.wait_settled()
        out, err = rec.communicate(timeout=30)
    finally:
        if rec.poll() is None:
            rec.kill()
            rec.wait()
    assert rec.returncode == 0, err
    r = json.loads(out)
    assert r["complete"] and (r["read"], r["missing"]) == (3, 0), r
    assert len(emails(shop)) == 4


def test_reconcile_repairs_drift_and_deletes_only_after_a_complete_read():
    crm, shop, c = setup(NUMBER, "number")
    for i in range(1, 8):
        crm.put("C%d" % i, person(i))
    assert poll(c)["new"] == 7
    c.start()
    wait_until(lambda: len(emails(shop)) == 7, 10, "7 customers")
    c.wait_settled()
    # Drift no event announced, and a copy that went away unannounced.
    crm.put("C2", person(2, "P2 drifted"))
    crm.delete("C3")
    # A read that fails part way deletes nothing.
    crm.faults([{"status": 503, "match": {"method": "GET", "path_prefix": "/contacts"},
                 "after": 0}])
    r = poll(c, "reconcile")
    assert not r["complete"] and r["missing"] == 0, r
    c.wait_settled()
    assert len(emails(shop)) == 7
    r = poll(c, "reconcile")
    assert r["complete"] and (r["in_sync"], r["drifted"], r["new"], r["missing"]) == (5, 1, 0, 1), r
    wait_until(lambda: len(emails(shop)) == 6, 10, "the missing copy's record deleted")
    assert "P2 drifted" in {x["name"] for x in shop.records().values()}
    _, text, _ = c.cli("reconcile", "crm.contacts")
    assert "in sync" in text and "missing" in text


TWO_WAY = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=2000
log: {level: debug, format: json}
systems:
  crm:
    kind: http
    base_url: http://127.0.0.1:{crm_port}
    timeout_ms: 2000
    retry: {max_attempts: 2, base_ms: 50, cap_ms: 100, jitter: 0.1}
    collections:
      contacts:
        model: customer
        map_in: {email: contact_email, name: full_name}
        map_out: {contact_email: email, full_name: name}
        update: PUT /contacts/{id}
        poll:
          every: 1h
          list: GET /contacts
          items: data
          page: {kind: number, param: page, size_param: limit, size: 10}
  shop:
    kind: http
    base_url: http://127.0.0.1:9
    webhook: {path: /webhooks/shop}
    collections:
      customers:
        model: customer
        map_in: {email: email, name: name}
models:
  customer:
    fields: {email: string, name: string}
syncs:
  customers:
    model: customer
    origin: [crm, shop]
    match: [email]
    collections: [crm.contacts, shop.customers]
"""


def test_reconcile_writes_a_copy_that_missed_a_write_though_it_did_not_change():
    # The crm refused a write (a 400), and the operator skipped it: the crm's
    # copy is what concord last knew of it, and differs from the record. A
    # reconcile finds the copy unchanged, and still brings it in line.
    crm = Sim(resource="contacts", id_prefix="C", page_style="number", page_size=10)
    port = harness.free_port()
    shop = Sim(resource="customers", id_prefix="S",
               webhook_url="http://127.0.0.1:%d/webhooks/shop" % port)
    c = Concord(TWO_WAY, values={"port": port, "crm_port": crm.port})
    crm.put("C1", person(1, "Ana"))
    assert poll(c)["new"] == 1
    c.start()
    shop.change("s1", {"email": "p1@example.com", "name": "Ana"})
    c.wait_settled()
    crm.faults([{"status": 400, "match": {"method": "PUT"}, "times": 1}])
    shop.change("s1", {"name": "Ana Pop"})
    failed = wait_until(lambda: c.cli_json("failed"), 10, "the refused write")
    assert len(failed) == 1 and "400" in failed[0]["reason"], failed
    c.cli("skip", str(failed[0]["id"]), "--reason", "the crm refused it")
    c.wait_settled()
    assert crm.records()["C1"]["full_name"] == "Ana"
    r = poll(c, "reconcile")
    assert r["complete"] and r["in_sync"] == 1, r
    wait_until(lambda: crm.records()["C1"]["full_name"] == "Ana Pop", 10,
               "the record written to the unchanged copy")
    c.wait_settled()
    # Once in line, another reconcile writes nothing.
    puts = len(crm.requests("PUT"))
    r = poll(c, "reconcile")
    c.wait_settled()
    assert r["in_sync"] == 1 and len(crm.requests("PUT")) == puts


def store_digest(c):
    """A digest of every table's rows: equal before and after a dry run."""
    db = sqlite3.connect(os.path.join(c.dir, "state.db"))
    h = hashlib.sha256()
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                              "ORDER BY name"):
        for row in db.execute('SELECT * FROM "%s" ORDER BY 1' % name):
            h.update(repr(row).encode())
    db.close()
    return h.hexdigest()


def test_plan_shows_what_a_reconcile_would_do_and_changes_nothing():
    crm, shop, c = setup(NUMBER, "number")
    for i in range(1, 6):
        crm.put("C%d" % i, person(i))
    poll(c)
    c.start()
    wait_until(lambda: len(emails(shop)) == 5, 10, "5 customers")
    c.wait_settled()
    c.stop()  # a quiet store, so the digest compares only what plan might do
    crm.put("C2", person(2, "P2 renamed"))
    crm.delete("C4")
    crm.put("C9", person(9))
    before = store_digest(c)
    rc, text, err = c.cli("plan", "crm.contacts")
    assert rc == 0, err
    assert store_digest(c) == before, "plan changed the store"
    golden = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden",
                          "plan_reconcile.txt")
    ids = {x["email"]: x["id"] for x in shop.records().values()}
    names = {ids["p2@example.com"]: "<copy of P2>", ids["p4@example.com"]: "<copy of P4>"}
    got = re.sub(r"\bS\d+\b", lambda m: names.get(m.group(0), m.group(0)), text)
    got = "\n".join(line.rstrip() for line in got.split("\n"))
    with open(golden) as f:
        want = f.read()
    assert got == want, "plan output differs from %s:\n%s" % (golden, got)
    plan = json.loads(c.cli("plan", "crm.contacts", "--json")[1])
    # The JSON form has its golden too (CONCORD_UPDATE_GOLDEN=1 writes it).
    got = re.sub(r'"S\d+"', lambda m: '"%s"' % names.get(m.group(0)[1:-1], m.group(0)[1:-1]),
                 json.dumps(plan, indent=1, sort_keys=True)) + "\n"
    golden = golden[:-len(".txt")] + ".json"
    if os.environ.get("CONCORD_UPDATE_GOLDEN") == "1":
        with open(golden, "w") as f:
            f.write(got)
    with open(golden) as f:
        assert got == f.read(), "plan --json differs from %s:\n%s" % (golden, got)
    ops = sorted((x["op"], x["record"]) for x in plan["changes"])
    assert ops == [("create", 6), ("delete", 4), ("update", 2)], plan
    assert store_digest(c) == before
    rc, _, err = c.cli("plan", "nosuch", check=False)
    assert rc == 2 and "no sync or collection named nosuch" in err


def test_plan_of_a_collection_never_read_changes_nothing():
    # A store that has never read crm.contacts has no row for it: a dry run
    # must not add one (and with it a schedule the daemon would go by).
    crm, shop, c = setup(NUMBER, "number")
    crm.put("C1", person(1))
    c.cli("status")  # the store exists, migrated
    before = store_digest(c)
    rc, text, err = c.cli("plan", "crm.contacts")
    assert rc == 0, err
    assert "create" in text, text
    assert store_digest(c) == before, "plan changed the store"


if __name__ == "__main__":
    harness.run_tests(globals())
