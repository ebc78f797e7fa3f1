#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""SQL tables as systems (the Scheduled-sync issue): a PostgreSQL table of
customers and a SQLite table of people, synced both ways by concord, with
edits, creates and deletes on both sides. PostgreSQL is a real server:
CTest runs this file under scripts/with-pg.sh, which starts a throwaway
cluster and sets CONCORD_TEST_PG (a libpq conninfo). Without it, the file
starts one itself through that script."""

import json
import os
import re
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Concord, wait_until  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CONFIG = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=2000
log: {level: debug, format: json}
systems:
  pg:
    kind: postgres
    dsn: env:PG_DSN
    retry: {max_attempts: 8, base_ms: 50, cap_ms: 400, jitter: 0.1}
    delete_guard: off
    collections:
      customers:
        model: customer
        table: {schema}.customers
        key: id
        updated_at: updated_at
        soft_delete: {column: deleted, value: true}
        map_in: {email: email, name: name, phone: phone}
        map_out: {email: email, name: name, phone: phone}
        poll: {every: 200ms, jitter: 0}
  lite:
    kind: sqlite
    path: lite.db
    retry: {max_attempts: 8, base_ms: 50, cap_ms: 400, jitter: 0.1}
    delete_guard: off
    collections:
      people:
        model: customer
        table: people
        key: id
        updated_at: changed_at
        map_in: {email: mail, name: full_name, phone: tel}
        map_out: {mail: email, full_name: name, tel: phone}
        poll: {every: 200ms, jitter: 0}
models:
  customer:
    fields: {email: string, name: string, phone: string}
syncs:
  customers:
    model: customer
    origin: [pg, lite]
    collections: [pg.customers, lite.people]
    match: [email]
"""

PG_TABLE = """
CREATE SCHEMA {schema};
CREATE TABLE {schema}.customers (
  id serial PRIMARY KEY,
  email text UNIQUE NOT NULL,
  name text,
  phone text,
  deleted boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE INDEX ON {schema}.customers (updated_at, id);
"""

LITE_TABLE = """
CREATE TABLE people (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  mail TEXT UNIQUE NOT NULL,
  full_name TEXT,
  tel TEXT,
  changed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')));
"""
NOW_LITE = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"


def psql(sql):
    """Runs sql on the test cluster; returns the rows as lists of text."""
    out = subprocess.run(["psql", os.environ["CONCORD_TEST_PG"], "-X", "-q", "-A", "-t",
                          "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return [line.split("\t") for line in out.stdout.splitlines() if line]


class Pair:
    """A PostgreSQL schema and a SQLite file, with concord between them."""

    def __init__(self):
        self.schema = "t%d_%d" % (os.getpid(), harness.free_port())
        psql(PG_TABLE.format(schema=self.schema))
        harness.cleanup(self)  # registered first: stopped after concord
        self.c = Concord(CONFIG, values={"schema": self.schema},
                         env={"PG_DSN": os.environ["CONCORD_TEST_PG"]})
        self.lite_path = os.path.join(self.c.dir, "lite.db")
        db = sqlite3.connect(self.lite_path)
        db.executescript(LITE_TABLE)
        db.close()

    def stop(self):
        psql("DROP SCHEMA %s CASCADE" % self.schema)

    def lite(self, sql, args=()):
        db = sqlite3.connect(self.lite_path, timeout=10)
        try:
            with db:
                return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def pg_people(self):
        rows = psql("SELECT email, coalesce(name, ''), coalesce(phone, '') FROM %s.customers "
                    "WHERE NOT deleted ORDER BY email" % self.schema)
        return [tuple(r) for r in rows]

    def lite_people(self):
        return [tuple(r) for r in self.lite(
            "SELECT mail, coalesce(full_name, ''), coalesce(tel, '') FROM people ORDER BY mail")]


def test_postgres_and_sqlite_stay_in_agreement_both_ways():
    p = Pair()
    # Rows on both sides before concord first reads them: the backfill.
    psql("INSERT INTO %s.customers (email, name, phone) VALUES "
         "('ada@example.com', 'Ada', '+44 1'), ('bob@example.com', 'Bob', '+44 2')" % p.schema)
    p.lite("INSERT INTO people (mail, full_name, tel) VALUES ('cyd@example.com', 'Cyd', '+44 3')")
    p.c.start()
    want = [("ada@example.com", "Ada", "+44 1"), ("bob@example.com", "Bob", "+44 2"),
            ("cyd@example.com", "Cyd", "+44 3")]
    wait_until(lambda: p.pg_people() == want and p.lite_people() == want, 15,
               "the backfill of both tables into each other")
    # Edits on both sides, to different records and to different fields.
    psql("UPDATE %s.customers SET name = 'Ada L', updated_at = clock_timestamp() "
         "WHERE email = 'ada@example.com'" % p.schema)
    p.lite("UPDATE people SET tel = '+44 33', changed_at = %s WHERE mail = 'cyd@example.com'"
           % NOW_LITE)
    p.lite("UPDATE people SET tel = '+44 22', changed_at = %s WHERE mail = 'bob@example.com'"
           % NOW_LITE)
    psql("UPDATE %s.customers SET name = 'Bobby', updated_at = clock_timestamp() "
         "WHERE email = 'bob@example.com'" % p.schema)
    want = [("ada@example.com", "Ada L", "+44 1"), ("bob@example.com", "Bobby", "+44 22"),
            ("cyd@example.com", "Cyd", "+44 33")]
    wait_until(lambda: p.pg_people() == want and p.lite_people() == want, 15,
               "both sides' edits on both sides (a field-level merge for bob)")
    # A create on each side, and a delete on each side: PostgreSQL's is a
    # soft delete (deleted = true), SQLite's a real one.
    psql("INSERT INTO %s.customers (email, name, phone) VALUES ('dee@example.com', 'Dee', '+44 4')"
         % p.schema)
    p.lite("INSERT INTO people (mail, full_name, tel) VALUES ('eve@example.com', 'Eve', '+44 5')")
    psql("UPDATE %s.customers SET deleted = true, updated_at = clock_timestamp() "
         "WHERE email = 'ada@example.com'" % p.schema)
    wait_until(lambda: ("ada@example.com",) not in [r[:1] for r in p.lite_people()], 15,
               "the soft delete in PostgreSQL deletes the SQLite row")
    p.c.cli("reconcile", "lite.people")  # a real delete is seen by reading the table whole
    p.lite("DELETE FROM people WHERE mail = 'cyd@example.com'")
    p.c.cli("reconcile", "lite.people")
    want = [("bob@example.com", "Bobby", "+44 22"), ("dee@example.com", "Dee", "+44 4"),
            ("eve@example.com", "Eve", "+44 5")]
    wait_until(lambda: p.pg_people() == want and p.lite_people() == want, 15,
               "the creates on both sides and the deletes")
    # PostgreSQL keeps the soft-deleted rows; concord marked cyd's too.
    deleted = psql("SELECT email FROM %s.customers WHERE deleted ORDER BY email" % p.schema)
    assert [r[0] for r in deleted] == ["ada@example.com", "cyd@example.com"], deleted
    p.c.wait_settled()
    assert p.c.cli_json("failed") == []
    # Quiet: once both sides agree, the polls (every 200 ms) find every row
    # in sync; concord's own writes are not read back as changes.
    db = sqlite3.connect(os.path.join(p.c.dir, "state.db"))
    before = db.execute("SELECT max(seq) FROM journal").fetchone()[0]
    lite_before = p.lite("SELECT * FROM people ORDER BY id")
    time.sleep(1.5)  # a quiet period: nothing may happen in it
    after = db.execute("SELECT max(seq) FROM journal").fetchone()[0]
    db.close()
    assert after == before, "the polls journaled %d changes while nothing changed" % (
        after - before)
    assert p.lite("SELECT * FROM people ORDER BY id") == lite_before


def test_a_row_the_database_refuses_goes_to_the_inbox_and_blocks_nothing():
    p = Pair()
    p.c.start()
    # SQLite's people.mail is UNIQUE: a PostgreSQL row whose email differs
    # only by case would be fine, but one with a NULL-able name is too; so
    # make the SQLite side refuse a row outright with a CHECK.
    p.lite("CREATE TRIGGER no_zed BEFORE INSERT ON people WHEN NEW.full_name = 'Zed' "
           "BEGIN SELECT RAISE(ABORT, 'zed is not welcome'); END")
    psql("INSERT INTO %s.customers (email, name) VALUES ('zed@example.com', 'Zed'), "
         "('amy@example.com', 'Amy')" % p.schema)
    wait_until(lambda: [r[0] for r in p.lite_people()] == ["amy@example.com"], 15,
               "the row SQLite accepts")
    failed = wait_until(lambda: p.c.cli_json("failed"), 15, "the refused row in the inbox")
    assert len(failed) == 1 and "zed is not welcome" in failed[0]["reason"], failed
    assert failed[0]["http_status"] == 422, failed


LITE_ONLY = """
store: sqlite:state.db
systems:
  lite:
    kind: sqlite
    path: lite.db
    collections:
      people:
        model: customer
        table: people
        updated_at: changed_at
        map_in: {email: mail, name: full_name, phone: tel}
        poll: {every: 1h}
models:
  customer:
    fields: {email: string, name: string, phone: string}
"""


def test_the_look_back_rereads_late_rows_but_not_old_ones():
    c = Concord(LITE_ONLY)
    db = sqlite3.connect(os.path.join(c.dir, "lite.db"))
    db.executescript(LITE_TABLE)

    def poll():
        rc, out, err = c.cli("poll", "lite.people", "--json", check=False)
        assert rc == 0, err
        return json.loads(out)
    # 30 rows stamped with one time long ago (a bulk import): the watermark
    # is that time, and every row shares it. The next poll began long after
    # it, so it reads on strictly after the watermark, instead of reading
    # all 30 again (and again at every poll) as a look-back from the
    # watermark's time alone would.
    with db:
        for i in range(30):
            db.execute("INSERT INTO people (mail, changed_at) VALUES (?, ?)",
                       ("old%d@example.com" % i, "2026-01-01T00:00:00.000Z"))
    assert poll()["read"] == 30
    assert poll()["read"] == 0
    # Rows stamped now, then one that commits late, stamped a second before
    # the newest of them: the look-back finds it (and reads the recent ones
    # again; no daemon runs, so nothing is linked yet and they count as new).
    with db:
        for i in range(5):
            db.execute("INSERT INTO people (mail) VALUES (?)", ("new%d@example.com" % i,))
    assert poll()["read"] == 5
    with db:
        db.execute("INSERT INTO people (mail, changed_at) SELECT 'late@example.com', "
                   "strftime('%Y-%m-%dT%H:%M:%fZ', max(julianday(changed_at)) - 1.0 / 86400) "
                   "FROM people")
    r = poll()
    assert r["read"] == 6, r
    db.close()


def test_a_look_back_keeps_the_zone_of_a_time_with_an_offset():
    # A text column that stamps local time with its offset (-05:00): the
    # look-back must compare in that shape. A look-back written in UTC
    # without the offset sorts after every later local time, and the rows
    # changed after the first poll were never read.
    c = Concord(LITE_ONLY)
    db = sqlite3.connect(os.path.join(c.dir, "lite.db"))
    db.executescript(LITE_TABLE)

    def local(delta_s):
        t = time.gmtime(time.time() - 5 * 3600 + delta_s)
        return time.strftime("%Y-%m-%dT%H:%M:%S", t) + "-05:00"

    def poll():
        rc, out, err = c.cli("poll", "lite.people", "--json", check=False)
        assert rc == 0, err
        return json.loads(out)
    with db:
        db.execute("INSERT INTO people (mail, changed_at) VALUES (?, ?)",
                   ("first@example.com", local(0)))
    assert poll()["read"] == 1
    with db:
        db.execute("INSERT INTO people (mail, changed_at) VALUES (?, ?)",
                   ("later@example.com", local(1)))
    r = poll()
    assert r["read"] >= 1 and r["new"] >= 1, r
    db.close()


SOFT_PAIR = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=2000
systems:
  lite:
    kind: sqlite
    path: lite.db
    delete_guard: off
    collections:
      people:
        model: customer
        table: people
        updated_at: changed_at
        soft_delete: {column: gone, value: 1}
        map_in: {email: mail, name: full_name}
        poll: {every: 1h}
  copy:
    kind: sqlite
    path: copy.db
    delete_guard: off
    collections:
      people:
        model: customer
        table: people
        map_out: {mail: email, full_name: name}
models:
  customer:
    fields: {email: string, name: string}
syncs:
  s:
    model: customer
    origin: lite
    collections: [lite.people, copy.people]
"""


def test_a_reconcile_journals_a_soft_deleted_row_once():
    # A reconcile that reads a soft-deleted row journals its deletion; the
    # row was read, so it is not also "missing" (a second deletion of the
    # same copy, and a report that counts one row twice).
    c = Concord(SOFT_PAIR)
    for name in ("lite.db", "copy.db"):
        db = sqlite3.connect(os.path.join(c.dir, name))
        db.executescript("CREATE TABLE people (id INTEGER PRIMARY KEY, mail TEXT, full_name "
                         "TEXT, gone INTEGER NOT NULL DEFAULT 0, changed_at TEXT NOT NULL "
                         "DEFAULT (%s));" % NOW_LITE)
        db.close()
    lite = sqlite3.connect(os.path.join(c.dir, "lite.db"))
    with lite:
        lite.execute("INSERT INTO people (mail, full_name) VALUES ('a@x.org', 'A'), "
                     "('b@x.org', 'B')")
    c.start()
    copy = sqlite3.connect(os.path.join(c.dir, "copy.db"))
    wait_until(lambda: copy.execute("SELECT count(*) FROM people").fetchone()[0] == 2, 15,
               "both rows copied")
    c.wait_settled()
    c.stop()
    with lite:
        lite.execute("UPDATE people SET gone = 1, changed_at = %s WHERE mail = 'a@x.org'"
                     % NOW_LITE)
    rc, out, err = c.cli("reconcile", "lite.people", "--json", check=False)
    assert rc == 0, err
    r = json.loads(out)
    assert r["complete"] and r["deleted"] == 1 and r["missing"] == 0, r
    state = sqlite3.connect(os.path.join(c.dir, "state.db"))
    gone = sum(b'"@missing"' in bytes(body)
               for (body,) in state.execute("SELECT body FROM journal"))
    state.close()
    assert gone == 1, "the deletion was journaled %d times" % gone
    lite.close()
    copy.close()


EPOCH_PAIR = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=2000
systems:
  lite:
    kind: sqlite
    path: lite.db
    delete_guard: off
    collections:
      people:
        model: customer
        table: people
        updated_at: changed_at
        soft_delete: {column: gone, value: 1}
        map_in: {email: mail, name: full_name}
        map_out: {mail: email, full_name: name}
        poll: {every: 200ms, jitter: 0}
  copy:
    kind: sqlite
    path: copy.db
    delete_guard: off
    collections:
      people:
        model: customer
        table: people
        map_in: {email: mail, name: full_name}
        map_out: {mail: email, full_name: name}
        poll: {every: 1h}
models:
  customer:
    fields: {email: string, name: string}
syncs:
  s:
    model: customer
    origin: [lite, copy]
    match: [email]
    collections: [lite.people, copy.people]
"""
NOW_MS_LITE = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"


def test_a_soft_delete_stamps_updated_at_in_the_columns_own_form():
    # A table whose updated_at holds epoch milliseconds. Concord's soft
    # delete stamped it with ISO text, which SQLite sorts after every
    # number: that row became the watermark, and no row the application
    # changed afterwards was ever read again.
    c = Concord(EPOCH_PAIR)
    for name in ("lite.db", "copy.db"):
        db = sqlite3.connect(os.path.join(c.dir, name))
        db.executescript("CREATE TABLE people (id INTEGER PRIMARY KEY, mail TEXT UNIQUE, "
                         "full_name TEXT, gone INTEGER NOT NULL DEFAULT 0, changed_at INTEGER "
                         "NOT NULL DEFAULT (%s));" % NOW_MS_LITE)
        db.close()
    lite = sqlite3.connect(os.path.join(c.dir, "lite.db"))
    copy = sqlite3.connect(os.path.join(c.dir, "copy.db"))
    with lite:
        lite.execute("INSERT INTO people (mail, full_name) VALUES ('a@x.org', 'A'), "
                     "('b@x.org', 'B')")
    c.start()

    def copied():
        return sorted(r[0] for r in copy.execute("SELECT mail FROM people"))
    wait_until(lambda: copied() == ["a@x.org", "b@x.org"], 15, "both rows copied")
    c.wait_settled()
    with copy:
        copy.execute("DELETE FROM people WHERE mail = 'a@x.org'")
    c.cli("reconcile", "copy.people")
    wait_until(lambda: lite.execute("SELECT gone FROM people WHERE mail = 'a@x.org'")
               .fetchone()[0] == 1, 15, "the soft delete of the row the copy lost")
    kind = lite.execute("SELECT typeof(changed_at) FROM people WHERE mail = 'a@x.org'").fetchone()
    state = sqlite3.connect(os.path.join(c.dir, "state.db"))

    def watermark_key():
        row = state.execute("SELECT cursor FROM polls WHERE collection = 'lite.people'").fetchone()
        return json.loads(row[0] or "{}").get("key") if row else None
    # The next poll reads the soft-deleted row back: it is the newest.
    wait_until(lambda: watermark_key() == "1", 15, "the poll past the soft-deleted row")
    state.close()
    assert kind[0] == "integer", kind
    with lite:
        lite.execute("INSERT INTO people (mail, full_name) VALUES ('c@x.org', 'C')")
    wait_until(lambda: copied() == ["b@x.org", "c@x.org"], 15,
               "a row written after the soft delete")
    lite.close()
    copy.close()


PG_TEXT_PAIR = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=2000
systems:
  pg:
    kind: postgres
    dsn: env:PG_DSN
    delete_guard: off
    collections:
      people:
        model: customer
        table: {schema}.people
        key: id
        updated_at: changed_at
        soft_delete: {column: gone, value: true}
        map_in: {email: mail, name: full_name}
        map_out: {mail: email, full_name: name}
        poll: {every: 200ms, jitter: 0}
  copy:
    kind: sqlite
    path: copy.db
    delete_guard: off
    collections:
      people:
        model: customer
        table: people
        map_in: {email: mail, name: full_name}
        map_out: {mail: email, full_name: name}
        poll: {every: 1h}
models:
  customer:
    fields: {email: string, name: string}
syncs:
  s:
    model: customer
    origin: [pg, copy]
    match: [email]
    collections: [pg.people, copy.people]
"""
NOW_PG_TEXT = """to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""


def test_a_soft_delete_stamps_a_postgres_text_time_in_its_own_form():
    # As for SQLite above: a PostgreSQL table whose updated_at is TEXT, ISO
    # 8601 in UTC as its application writes it. Concord's soft delete
    # assigned clock_timestamp() to it, which PostgreSQL stores as
    # "YYYY-MM-DD HH:MM:SS.ffffff+00": a space where the others have a T,
    # so as text it sorts before every time of that day the others wrote,
    # and the application reads a time in another form.
    schema = "t%d_%d" % (os.getpid(), harness.free_port())
    psql("CREATE SCHEMA %s; CREATE TABLE %s.people (id serial PRIMARY KEY, mail text UNIQUE, "
         "full_name text, gone boolean NOT NULL DEFAULT false, changed_at text NOT NULL "
         "DEFAULT %s)" % (schema, schema, NOW_PG_TEXT))
    c = Concord(PG_TEXT_PAIR, values={"schema": schema},
                env={"PG_DSN": os.environ["CONCORD_TEST_PG"]})
    copy = sqlite3.connect(os.path.join(c.dir, "copy.db"))
    copy.executescript("CREATE TABLE people (id INTEGER PRIMARY KEY, mail TEXT UNIQUE, "
                       "full_name TEXT);")
    psql("INSERT INTO %s.people (mail, full_name) VALUES ('a@x.org', 'A'), ('b@x.org', 'B')"
         % schema)
    c.start()

    def copied():
        return sorted(r[0] for r in copy.execute("SELECT mail FROM people"))
    wait_until(lambda: copied() == ["a@x.org", "b@x.org"], 15, "both rows copied")
    c.wait_settled()
    with copy:
        copy.execute("DELETE FROM people WHERE mail = 'a@x.org'")
    c.cli("reconcile", "copy.people")
    wait_until(lambda: psql("SELECT gone FROM %s.people WHERE mail = 'a@x.org'"
                            % schema) == [["t"]], 15, "the soft delete of the row the copy lost")
    stamped = psql("SELECT changed_at FROM %s.people WHERE mail = 'a@x.org'" % schema)[0][0]
    c.stop()
    copy.close()
    psql("DROP SCHEMA %s CASCADE" % schema)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamped), stamped


def test_a_table_read_whose_lease_was_taken_stops_and_commits_nothing():
    # As an HTTP read does (test_poll.py): a table read whose lease ran out
    # and was taken by another reader must not go on beside it. The page
    # here is held up by a write lock on the table's file, while another
    # reader's lease is written into the store by hand.
    c = Concord(LITE_ONLY)
    path = os.path.join(c.dir, "lite.db")
    db = sqlite3.connect(path, timeout=10, isolation_level=None)
    db.executescript(LITE_TABLE)
    db.execute("BEGIN")
    db.executemany("INSERT INTO people (mail) VALUES (?)",
                   [("p%d@example.com" % i,) for i in range(1500)])
    db.execute("COMMIT")
    db.execute("BEGIN EXCLUSIVE")  # the read waits for it (a rollback journal)
    p = subprocess.Popen([harness.concord_bin(), "poll", "lite.people", "--json", "-c", c.path],
                         cwd=c.dir, env=c.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    state = sqlite3.connect(os.path.join(c.dir, "state.db"), timeout=10)

    def leased():
        try:
            row = state.execute("SELECT lease_holder FROM polls "
                                "WHERE collection = 'lite.people'").fetchone()
        except sqlite3.OperationalError:
            return False  # the store is not made yet
        return row is not None and row[0] is not None
    wait_until(leased, 10, "the poll to take its lease")
    with state:
        state.execute("UPDATE polls SET lease_holder = 'another reader', lease_until = ? "
                      "WHERE collection = 'lite.people'", (int(time.time() * 1000) + 60000,))
    db.execute("COMMIT")
    db.close()
    out, err = p.communicate(timeout=30)
    r = json.loads(out)
    assert not r["complete"] and "lease ran out" in r.get("error", ""), r
    cursor = state.execute("SELECT cursor, lease_holder FROM polls").fetchone()
    state.close()
    assert cursor == (None, "another reader"), cursor


def main():
    if not os.environ.get("CONCORD_TEST_PG"):
        # Start a cluster for this run.
        script = os.path.join(REPO, "scripts", "with-pg.sh")
        os.execvp("bash", ["bash", script, sys.executable] + sys.argv)
    harness.run_tests(globals())


if __name__ == "__main__":
    main()
