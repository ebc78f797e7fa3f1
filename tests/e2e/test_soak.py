#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The crash-and-fault soak of issue 3, bounded in time and seeded.

A shop (this test, posting signed webhooks straight to concord the way a
real sender does: a delivery without a 2xx answer is sent again with the
same delivery id until it gets one) announces CHANGES changes over RECORDS
customers: each record is created, then edited at random. Every change
carries the shop's `rev`, a per-record counter that only goes up, which
concord maps to the CRM's `rev`, so the CRM (tests/sims/target.py) can tell
an older state written over a newer one. The CRM fails about 20% of the
requests at random (503, 429 with Retry-After 0 or 1, connections reset
before the request is read, answers lost after the write was applied, and
answers slower than concord's timeout to writes applied on arrival), and
concord is killed with kill -9 every 1.5 to 4 s and started again at once
while the posting goes on.

When every change has its 2xx, the faults and the kills stop, concord gets
a bounded time to settle, and the CRM must hold exactly the last state of
every record: no duplicate create, no lost change, no out-of-order write,
an empty inbox, and no daemon that died by itself (a sanitizer report).

The config carries the natural-key look-up (`lookup`, `lookup_result`)
when `concord check` accepts it (the summary says whether it did). Without
it, a create whose answer was lost (or that was in flight at a kill) is
parked as "outcome unknown" and its record stops there: such entries are
reported, and fail the test only with CONCORD_SOAK_STRICT=1.

The seed fixes the changes, the kill intervals and the CRM's fault draws;
the draws follow the arrival order of requests, which timing may change, so
a replay gives the same run up to that order.

Environment: CONCORD_SOAK_RECORDS (default 200), CONCORD_SOAK_CHANGES
(default 2000), CONCORD_SOAK_SEED (default a fresh one, printed),
CONCORD_SOAK_SECONDS (default 75: the posting phase stops starting new
changes after this long, and the checks cover what was posted),
CONCORD_SOAK_SETTLE (default 120: seconds concord gets to settle),
CONCORD_SOAK_RATE (default 80: changes per second at most, so that the run
lasts long enough for a dozen kills; 0 posts as fast as concord takes them),
CONCORD_SOAK_STRICT=1 (unknown outcomes fail the test), CONCORD_SOAK_KINDS
(comma-separated fault kinds of tests/sims/README.md, default
503,429,reset_before,lost,slow_answer). The last line
printed starts with "soak:" and holds every count (scripts/soak.sh reads
it).
"""

import decimal
import http.client
import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Concord, Sim, wait_until  # noqa: E402

SECRET = "shop-soak-secret"
TOKEN = "Bearer crm-soak-token"
FAULT_RATE = 0.2
# "slow_answer": applied on arrival, answered after concord gave up. The
# sim's "slow" (wait, then apply) is left out by default: a request that
# concord gave up on, applied after concord's retry of a newer state, is an
# older state written over a newer one that no client can prevent without
# conditional writes. CONCORD_SOAK_KINDS=503,429,reset_before,lost,slow
# shows it.
FAULT_KINDS = ["503", "429", "reset_before", "lost", "slow_answer"]
TIMEOUT_MS = 1000
SLOW_MS = 1500  # beyond concord's timeout
KILL_EVERY = (1.5, 4.0)  # seconds between two kills, drawn uniformly
POSTERS = 8  # sender threads; a record always belongs to the same one
QUIET_S = 3.0  # no CRM request for this long, with only blocked jobs left: settled

LOOKUP = """        lookup: GET /contacts?contact_email={contact_email}
        lookup_result: data
"""

CONFIG = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=300
log: {level: info, format: json}
systems:
  shop:
    kind: http
    base_url: http://127.0.0.1:9
    webhook:
      path: /webhooks/shop
      delivery_id_header: X-Shop-Delivery
      max_body_bytes: 65536
      signature:
        scheme: hmac
        header: X-Shop-Signature
        secret: env:SHOP_SECRET
        prefix: "sha256="
        timestamp_header: X-Shop-Timestamp
        signed: "{timestamp}.{body}"
    collections:
      customers:
        model: customer
        record: customer
        deleted_when: '.event == "customer.deleted"'
        map_in:
          email: email
          name: {jq: '[.first_name, .last_name] | map(select(. != null)) | join(" ")'}
          phone: phone
          status: {path: state, values: {open: active, closed: archived}}
          balance: balance
          rev: rev
  crm:
    kind: http
    base_url: http://127.0.0.1:{crm_port}
    timeout_ms: {timeout_ms}
    auth:
      headers:
        Authorization: env:CRM_TOKEN
    retry: {max_attempts: 40, base_ms: 20, cap_ms: 400, jitter: 0.2}
    collections:
      contacts:
        model: customer
        map_in:
          email: contact_email
          name: full_name
          phone: phone_number
          status: lifecycle
          balance: balance
          rev: rev
        map_out:
          contact_email: email
          full_name: name
          phone_number: phone
          lifecycle: status
          balance: balance
          rev: rev
        create: POST /contacts
        update: PUT /contacts/{id}
        delete: DELETE /contacts/{id}
        created_id: id
{lookup}models:
  customer:
    fields: {email: string, name: string, phone: string, status: string, balance: decimal,
             rev: integer}
syncs:
  customers:
    model: customer
    origin: shop
    collections: [shop.customers, crm.contacts]
"""

FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson"]
STATUS = {"open": "active", "closed": "archived"}


def env_int(name, default):
    v = os.environ.get(name)
    return int(v) if v else default


def money(rng):
    return "%d.%02d" % (rng.randrange(0, 10000), rng.randrange(0, 100))


def make_changes(seed, records, changes):
    """The whole sequence, from the seed alone: a list of (n, index, event,
    full shop record). The first `records` changes create the records (in a
    shuffled order), the rest edit one to three fields of a random one."""
    rng = random.Random(seed)
    state = {}
    out = []
    order = list(range(records))
    rng.shuffle(order)
    for i in order[:changes]:
        state[i] = {"id": "s%d" % i, "email": "soak%d@example.com" % i,
                    "first_name": rng.choice(FIRST), "last_name": rng.choice(LAST),
                    "phone": "+1 555 %04d" % rng.randrange(10000),
                    "state": rng.choice(list(STATUS)), "balance": money(rng), "rev": 1}
        out.append((len(out), i, "customer.created", dict(state[i])))
    while len(out) < changes:
        i = rng.randrange(records)
        rec = dict(state[i])
        for field in rng.sample(["first_name", "last_name", "phone", "state", "balance"],
                                rng.randint(1, 3)):
            if field == "first_name":
                rec[field] = rng.choice(FIRST)
            elif field == "last_name":
                rec[field] = rng.choice(LAST)
            elif field == "phone":
                rec[field] = "+1 555 %04d" % rng.randrange(10000)
            elif field == "state":
                rec[field] = "closed" if rec[field] == "open" else "open"
            else:
                rec[field] = money(rng)
        rec["rev"] += 1
        state[i] = rec
        out.append((len(out), i, "customer.updated", dict(rec)))
    return out


def crm_view(shop_record):
    """What the CRM must hold for a shop record, through the two maps."""
    r = shop_record
    return {"contact_email": r["email"],
            "full_name": " ".join(x for x in (r["first_name"], r["last_name"]) if x),
            "phone_number": r["phone"], "lifecycle": STATUS[r["state"]],
            "balance": decimal.Decimal(r["balance"]), "rev": r["rev"]}


def same(crm_record, want):
    """True when the CRM record holds every mapped field of `want`."""
    for k, v in want.items():
        got = crm_record.get(k)
        if k == "balance":
            try:
                if decimal.Decimal(str(got)) != v:
                    return False
            except decimal.InvalidOperation:
                return False
        elif got != v:
            return False
    return True


class Sender:
    """The shop's webhook sender: POSTERS threads, each owning the records
    whose index is its number modulo POSTERS, so the changes of one record
    go out one after the other, each only after the previous one got its
    2xx."""

    def __init__(self, concord, seed, changes, deadline, rate=0):
        self.c = concord
        self.rate = rate  # changes started per second at most; 0: no limit
        self.tickets = 0
        self.start = time.monotonic()
        self.seed = seed
        self.deadline = deadline
        self.lock = threading.Lock()
        self.answers = {}  # "202", "200", "503", "down", ... -> count
        self.posted = 0
        self.last = {}  # index -> shop record of the last change that got a 2xx
        self.truncated = False
        self.error = None
        self.queues = [[] for _ in range(POSTERS)]
        for ch in changes:
            self.queues[ch[1] % POSTERS].append(ch)

    def count(self, what):
        with self.lock:
            self.answers[what] = self.answers.get(what, 0) + 1

    def send(self, n, event, rec):
        body = json.dumps({"event": event, "customer": rec}, sort_keys=True).encode()
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Shop-Delivery": "soak-%d-%d" % (self.seed, n),
            "X-Shop-Timestamp": ts,
            "X-Shop-Signature": harness.sign_hmac(SECRET, body, ts, "{timestamp}.{body}",
                                                  "sha256="),
        }
        give_up = time.monotonic() + 60
        while True:
            try:
                status, _, _ = harness.http_request(self.c.port, "POST", "/webhooks/shop",
                                                    body, headers, timeout=10)
                self.count(str(status))
                if 200 <= status < 300:
                    return
                if status not in (429, 503):
                    raise AssertionError("change %d answered %d" % (n, status))
            except (OSError, http.client.HTTPException):
                self.count("down")
            if time.monotonic() > give_up:
                raise AssertionError("change %d got no 2xx for 60 s" % n)
            time.sleep(0.05)  # the sender's back-off, not a wait for a condition

    def run_one(self, q):
        try:
            for n, i, event, rec in q:
                if self.error is not None:
                    return
                if time.monotonic() > self.deadline:
                    self.truncated = True
                    return
                if self.rate > 0:
                    with self.lock:
                        ticket = self.tickets
                        self.tickets += 1
                    # The shop's pace, so that the kills spread over the run.
                    pause = self.start + ticket / self.rate - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                self.send(n, event, rec)
                with self.lock:
                    self.posted += 1
                    self.last[i] = rec
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e

    def run(self):
        threads = [threading.Thread(target=self.run_one, args=(q,), daemon=True)
                   for q in self.queues]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if self.error is not None:
            raise self.error


class Killer:
    """kill -9 and an immediate restart every KILL_EVERY seconds (seeded)."""

    def __init__(self, concord, seed):
        self.c = concord
        self.rng = random.Random(seed)
        self.stopped = threading.Event()
        self.kills = 0
        self.crashes = []  # exit codes of daemons that died by themselves
        self.error = None
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        try:
            while not self.stopped.wait(self.rng.uniform(*KILL_EVERY)):
                if self.c.proc is not None and self.c.proc.poll() is not None:
                    self.crashes.append(self.c.proc.returncode)
                self.c.kill9()
                self.kills += 1
                self.c.start(timeout=60)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e

    def stop(self):
        self.stopped.set()
        self.thread.join()
        if self.error is not None:
            raise AssertionError("the killer failed: %s" % self.error)


def setup(seed):
    """The CRM, and a concord configured with the look-up keys when
    `concord check` accepts them. Returns (crm, concord, lookup note)."""
    crm = Sim(resource="contacts", token=TOKEN)
    values = {"crm_port": crm.port, "timeout_ms": TIMEOUT_MS, "lookup": LOOKUP}
    env = {"SHOP_SECRET": SECRET, "CRM_TOKEN": TOKEN}
    c = Concord(CONFIG, values=values, env=env, tmp_prefix="concord-soak-")
    rc, out, err = c.cli("check", check=False)
    if rc == 0:
        note = "accepted"
    else:
        first = (err or out).strip().splitlines()
        note = "refused (%s)" % (first[0] if first else "exit %d" % rc)
        assert "lookup" in (err + out), "concord check failed:\n%s%s" % (out, err)
        with open(c.path, "w") as f:
            f.write(c.config_text.replace(LOOKUP, ""))
        c.cli("check")
    c.start(timeout=30)
    return crm, c, note


def contacts_by_email(crm):
    out = {}
    for r in crm.records().values():
        out.setdefault(r.get("contact_email"), []).append(r)
    return out


def unknown_emails(c, inbox):
    """The emails of the records behind "outcome unknown" entries."""
    out = set()
    for e in inbox:
        if e["kind"] == "unknown" and e.get("record") is not None:
            hist = c.cli_json("history", e["record"])
            out.add(hist[-1]["state"]["email"])
    return out


def test_the_crm_sim_sees_what_the_soak_checks():
    """The soak's detectors work: an older rev written after a newer one is
    an out-of-order write, a late answer to a write applied on arrival is
    logged as a timeout, and Retry-After may come from a list."""
    crm = Sim(resource="contacts", token=TOKEN)
    auth = {"Authorization": TOKEN}
    status, rec, _ = crm.rest("POST", "/contacts", {"contact_email": "a@x", "rev": 1}, auth)
    assert status == 201
    path = "/contacts/" + rec["id"]
    assert crm.rest("PUT", path, {"contact_email": "a@x", "rev": 3}, auth)[0] == 200
    assert crm.rest("PUT", path, {"contact_email": "a@x", "rev": 3}, auth)[0] == 200  # a retry
    assert crm.order_violations() == []
    assert crm.rest("PUT", path, {"contact_email": "a@x", "rev": 2}, auth)[0] == 200
    v = crm.order_violations()
    assert len(v) == 1 and v[0]["id"] == rec["id"] and v[0]["rev"] == 2 and v[0]["after"] == 3, v
    assert crm.stats()["order_violations"] == 1
    crm.faults([{"delay_ms": 600, "apply": "first"}])
    try:
        crm.rest("PUT", path, {"contact_email": "a@x", "rev": 4}, auth, timeout=0.2)
        raise AssertionError("the answer came in time")
    except OSError:
        pass
    wait_until(lambda: crm.requests()[-1]["status"] == "timeout", 5, "the late answer")
    assert crm.records()[rec["id"]]["rev"] == 4
    crm.random(5, 1.0, kinds=["429"], retry_after=[0, 1])
    seen = {crm.rest("GET", "/contacts", headers=auth)[2].get("retry-after") for _ in range(20)}
    assert seen == {"0", "1"}, seen


def test_soak_crashes_and_faults():
    t0 = time.monotonic()
    records = env_int("CONCORD_SOAK_RECORDS", 200)
    n_changes = env_int("CONCORD_SOAK_CHANGES", 2000)
    bound = env_int("CONCORD_SOAK_SECONDS", 75)
    rate = env_int("CONCORD_SOAK_RATE", 80)
    settle = env_int("CONCORD_SOAK_SETTLE", 120)
    strict = os.environ.get("CONCORD_SOAK_STRICT", "") not in ("", "0")
    env_seed = os.environ.get("CONCORD_SOAK_SEED")
    seed = int(env_seed) if env_seed else random.randrange(1, 2**31)
    print("  seed = %d (replay with CONCORD_SOAK_SEED=%d)" % (seed, seed), flush=True)
    assert records >= 1 and n_changes >= 1

    changes = make_changes(seed, records, n_changes)
    crm, c, lookup = setup(seed)
    print("  lookup keys: %s" % lookup, flush=True)
    kinds = [k for k in os.environ.get("CONCORD_SOAK_KINDS", "").split(",") if k] or FAULT_KINDS
    print("  fault kinds: %s at %g%%" % (",".join(kinds), FAULT_RATE * 100), flush=True)
    crm.random(seed, FAULT_RATE, kinds=kinds, slow_ms=SLOW_MS, retry_after=[0, 1])

    sender = Sender(c, seed, changes, t0 + bound, rate)
    killer = Killer(c, seed + 1)
    try:
        sender.run()
    finally:
        killer.stop()
    posted_s = time.monotonic() - t0
    crm.random(seed, 0)
    # The daemon the killer thread started got SIGTERM when that thread
    # ended (harness: PR_SET_PDEATHSIG follows the thread that forked).
    # A clean stop must still exit 0; the last start is this thread's.
    if c.proc is not None and c.proc.poll() is not None and c.proc.returncode != 0:
        killer.crashes.append(c.proc.returncode)
    rc = c.stop(timeout=30)
    if rc not in (0, None) and rc not in killer.crashes[-1:]:
        killer.crashes.append(rc)
    c.start(timeout=60)
    print("  posted %d of %d changes in %.1f s (%s), %d kills, answers %s"
          % (sender.posted, n_changes, posted_s,
             "time bound hit" if sender.truncated else "all", killer.kills,
             json.dumps(sender.answers, sort_keys=True)), flush=True)

    want = {rec["email"]: crm_view(rec) for rec in sender.last.values()}
    state = {}

    def settled():
        st = c.cli_json("status")
        inbox = c.cli_json("failed")
        backlog = sum(s.get("backlog", 0) for s in st["systems"])
        in_flight = sum(s.get("in_flight", 0) for s in st["systems"])
        unknown = [e for e in inbox if e["kind"] == "unknown"]
        state.update(backlog=backlog, in_flight=in_flight, inbox=inbox)
        seen = crm.stats()["requests"]
        if seen != state.get("seen"):
            state.update(seen=seen, since=time.monotonic())
        if in_flight or backlog > len(unknown):
            return False
        if backlog == 0:
            return True
        # A job waiting behind an unknown create waits for a person, and
        # counts as backlog: settled once the CRM has heard nothing for a
        # while (longer than any backoff or Retry-After here).
        return time.monotonic() - state["since"] >= QUIET_S

    settle_error = None
    try:
        wait_until(settled, settle, "concord to settle (no backlog, nothing in flight)")
    except AssertionError as e:
        settle_error = "%s; last: backlog %s, in flight %s" % (
            e, state.get("backlog"), state.get("in_flight"))

    inbox = c.cli_json("failed")
    kinds = {}
    for e in inbox:
        kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
    parked = unknown_emails(c, inbox)
    have = contacts_by_email(crm)
    stats = crm.stats()
    violations = crm.order_violations()
    duplicates = sorted(e for e, rs in have.items() if len(rs) > 1)
    strangers = sorted(str(e) for e in have if e not in want)
    missing, stale, parked_stale = [], [], []
    for email, w in sorted(want.items()):
        rs = have.get(email, [])
        if email in parked:
            if rs and rs[0].get("rev", 0) > w["rev"]:
                parked_stale.append(email)
            continue
        if not rs:
            missing.append(email)
        elif not same(rs[0], w):
            stale.append((email, {k: rs[0].get(k) for k in w}, w))
    wall = time.monotonic() - t0
    summary = {
        "seed": seed, "records": len(want), "changes": sender.posted, "kills": killer.kills,
        "crm_requests": stats["requests"], "crm_status": stats["status"],
        "creates": stats["creates"], "updates": stats["updates"],
        "crm_records": stats["records"], "duplicates": len(duplicates),
        "violations": len(violations), "missing": len(missing), "stale": len(stale),
        "inbox": kinds, "unknown_records": len(parked), "crashes": len(killer.crashes), "lookup": lookup.split(" ")[0],
        "truncated": sender.truncated, "wall_s": round(wall, 1), "rate": rate,
    }
    print("  CRM requests by status: %s" % json.dumps(stats["status"], sort_keys=True))
    if duplicates:
        print("  duplicate creates: %s" % duplicates[:10])
        log = crm.requests("POST")
        for email in duplicates[:3]:
            posts = [r for r in log
                     if isinstance(r["body"], dict) and r["body"].get("contact_email") == email]
            print("    %s: %s" % (email, ", ".join(
                "#%d %s%s at +%.3fs" % (r["seq"], r["status"],
                                        " (fault %s)" % json.dumps(r["fault"]) if r.get("fault")
                                        else "", r["time"] - posts[0]["time"])
                for r in posts)))
    if violations:
        print("  out-of-order writes (first 5): %s" % json.dumps(violations[:5]))
    if missing:
        print("  missing records (first 10): %s" % missing[:10])
    for email, got, w in stale[:5]:
        print("  stale %s: CRM %s, last change %s" % (email, got, {k: str(v) for k, v in w.items()}))
    for e in inbox[:5]:
        print("  inbox: %s" % json.dumps({k: e.get(k) for k in
                                          ("id", "kind", "record", "reason", "http_status",
                                           "attempts")}))
    if parked:
        print("  %d records stopped behind an unknown create%s" % (
            len(parked), "" if strict else " (tolerated: CONCORD_SOAK_STRICT is not set)"))
    print("soak: " + json.dumps(summary, sort_keys=True), flush=True)

    problems = []
    log = c.log_text()
    reports = [ln for ln in log.splitlines()
               if "runtime error:" in ln or "ERROR: AddressSanitizer" in ln
               or "ERROR: LeakSanitizer" in ln]
    if killer.crashes or reports:
        problems.append("concord died by itself %d times (exit codes %s); sanitizer reports: %s"
                        % (len(killer.crashes), killer.crashes, sorted(set(reports))[:3]))
    if settle_error:
        problems.append(settle_error)
    if duplicates:
        problems.append("%d duplicate creates (e.g. %s)" % (len(duplicates), duplicates[0]))
    if violations:
        problems.append("%d out-of-order writes (e.g. %s)" % (len(violations), violations[0]))
    if strangers:
        problems.append("the CRM holds records nobody sent: %s" % strangers[:5])
    if missing:
        problems.append("%d records missing from the CRM (e.g. %s)" % (len(missing), missing[0]))
    if stale:
        problems.append("%d records not at their last change (e.g. %s)" % (len(stale), stale[0][0]))
    if parked_stale:
        problems.append("records ahead of their last change: %s" % parked_stale[:5])
    other = {k: v for k, v in kinds.items() if k != "unknown"}
    if other:
        problems.append("inbox entries %s" % other)
    if kinds.get("unknown") and strict:
        problems.append("%d unknown outcomes (CONCORD_SOAK_STRICT is set)" % kinds["unknown"])
    if not parked and stats["records"] != len(want):
        problems.append("the CRM holds %d records, want %d" % (stats["records"], len(want)))
    if problems:
        dump = os.path.join(c.dir, "crm-requests.json")
        with open(dump, "w") as f:
            json.dump({"requests": crm.requests(), "records": crm.records(),
                       "violations": violations, "want": {e: {k: str(v) for k, v in w.items()}
                                                          for e, w in want.items()}}, f)
        print("  the CRM's request log and records: %s" % dump)
    assert not problems, "; ".join(problems)
    if not sender.truncated:
        assert sender.posted == n_changes


if __name__ == "__main__":
    harness.run_tests(globals())
