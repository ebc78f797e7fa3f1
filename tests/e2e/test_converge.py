#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The convergence property of two-way sync (issue 4), tested at random.

Three systems A, B and C (tests/sims/target.py each: a REST target concord
writes to and a webhook sender) may all change customers. Each seed runs a
few hundred random operations on them: creates, field edits in any system,
deletes. Meanwhile everything misbehaves: webhooks are dropped, held back
and delivered late in another order, and sent twice (with the same delivery
id, or as fresh news of the same record); concord's writes meet random
503/429/500 answers, connection resets, lost answers and slow answers; the
echo webhooks after concord's writes come late, out of order and twice.
Then the faults stop, and concord reconciles every system: it reads each
whole (`concord reconcile`), repairs what drifted and deletes what a
system no longer holds (with CONCORD_CONVERGE_FINAL=announce, every system
instead announces every record it holds, and every delete a person made
there, once more, as the Two-way issue had it before reconcile existed),
and the test asserts:

- convergence: the three systems hold the same live records (joined by
  email, the natural key) with the same values, equal to concord's records;
- no duplicates: one copy per record per system;
- delete wins: a record deleted in any system is absent from all;
- no invented values: every value is one a person wrote;
- no conflict silently lost: each conflict concord saw is settled by the
  policy (and the winner is the one the policy names) or open in `concord
  conflicts`; open ones are resolved with `concord resolve ID --take SYSTEM`
  and the systems converge again;
- nothing is left behind: no failed job, no parked change;
- no echo loop: writes per system stay under K times the operations, and
  once settled, a quiet period sees no request at all.

The conflict policy cycles with the seed: newest, prefer (a), manual.

Environment: CONCORD_TEST_SEED=S replays seed S alone (its policy is the
one its number gives); CONCORD_CONVERGE_SEEDS (default 24) seeds of
CONCORD_CONVERGE_OPS (default 120) operations each, CONCORD_CONVERGE_JOBS
(default 2) of them at a time, none started after CONCORD_CONVERGE_BUDGET_S
(default 210, so that CTest's 300 s hold under ASan on a busy machine; 0:
no bound; at least 12 seeds must run); CONCORD_CONVERGE_POLICY
forces one policy; CONCORD_CONVERGE_QUIET_MS (default 1500) the quiet
period; CONCORD_CONVERGE_LOG (default info) concord's log level;
CONCORD_CONVERGE_STOP=1 stops at the first failing seed. One summary line
per seed starts with "converge: " (scripts/converge.sh reads them); its
net_catches counts the copies the final reconcile found unchanged but not
what their record maps to (updates lost upstream), and such a seed keeps its
concord dir as /tmp/concord-converge-net-SEED-PID.
"""

import json
import os
import random
import shutil
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Concord, Sim, wait_until  # noqa: E402

POLICIES = ["newest", "prefer", "manual"]
FIELDS = ["name", "phone", "note"]

# Each system names the model's fields its own way, so map_in and map_out
# do real work; b updates with PATCH, a and c with PUT.
SYSTEMS = {
    "a": {"resource": "customers", "prefix": "A",
          "fields": {"email": "email", "name": "name", "phone": "phone", "note": "note"}},
    "b": {"resource": "contacts", "prefix": "B",
          "fields": {"email": "contact_email", "name": "full_name", "phone": "phone_number",
                     "note": "notes"}},
    "c": {"resource": "people", "prefix": "C",
          "fields": {"email": "mail", "name": "display_name", "phone": "tel", "note": "memo"}},
}

SYSTEM = """  {name}:
    kind: http
    base_url: http://127.0.0.1:{port}
    timeout_ms: 400
    max_in_flight: 4
    retry: {{max_attempts: 40, base_ms: 50, cap_ms: 300, jitter: 0.2}}
    rate_limited_block: 100ms
    breaker: off
    delete_guard: off
    webhook: {{path: /webhooks/{name}, delivery_id_header: X-Sim-Delivery}}
    collections:
      {resource}:
        model: customer
        deleted_when: '.deleted == true'
        updated_at: updated_at
        map_in: {{{map_in}}}
        map_out: {{{map_out}}}
        create: POST /{resource}
        update: {update} /{resource}/{{id}}
        delete: DELETE /{resource}/{{id}}
        poll: {{every: 1h, list: GET /{resource}, items: data}}
{extra}"""

EXTRA = {
    # A create whose answer was lost is settled by an idempotency key (a),
    # a look-up by the natural key (b), or both (c).
    "a": "        idempotency_header: Idempotency-Key\n",
    "b": "        lookup: GET /contacts?contact_email={contact_email}\n"
         "        lookup_result: data\n",
    "c": "        idempotency_header: Idempotency-Key\n"
         "        lookup: GET /people?mail={mail}\n"
         "        lookup_result: data\n",
}

CONFIG = """listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=300
log: {level: {log_level}, format: json}
echo_window: 10m
systems:
{systems}
models:
  customer:
    fields: {email: string, name: string, phone: string, note: string}
syncs:
  customers:
    model: customer
    origin: [a, b, c]
    collections: [a.customers, b.contacts, c.people]
    match: [email]
{policy}
"""

POLICY_TEXT = {
    "newest": "    conflict: newest\n    skew: 100ms\n",
    "prefer": "    conflict: prefer\n    prefer: a\n",
    "manual": "    conflict: manual\n",
}
SKEW_MS = 100

# Shares of the mischief, per person change unless said otherwise.
# The final step: a reconcile of every system (the Scheduled-sync issue), or
# with CONCORD_CONVERGE_FINAL=announce every system announcing every record
# and delete once more (what the Two-way issue asked before reconcile).
FINAL = os.environ.get("CONCORD_CONVERGE_FINAL", "reconcile")
P_DROP = 0.06  # the webhook is never sent (learnt only from the final step)
P_HOLD = 0.20  # the webhook is held back and sent later, in another order
P_DUP = 0.08  # the webhook is sent again later with its delivery id
P_REANNOUNCE = 0.05  # the record is announced again later, with a fresh delivery id
FAULT_RATE = 0.15  # share of concord's requests that meet a fault
FAULT_KINDS = ["503", "429", "500", "reset_before", "lost", "slow", "slow_answer"]
ECHO_DELAY_MS = 400
ECHO_DUP = 0.15

# The write bound. A person's operation in one system makes concord write
# at most once to each other system; a conflict settled for the record's
# side writes the source back once; a change to a deleted record deletes
# its copy once; a lost or slow answer makes one applied write count twice
# (FAULT_RATE of the writes, times the few kinds that apply); the final
# announcement and the resolved conflicts add at most one write per record
# per system. That is about 1.3 writes per operation per system at worst;
# K = 2 leaves room for bad luck, while an echo loop (each echo taken for a
# change) multiplies the writes without bound and fails it at once.
K = 2.0


def env_int(name, default):
    v = os.environ.get(name)
    return int(v) if v else default


def config_text(ports, policy, log_level):
    parts = []
    for name, s in SYSTEMS.items():
        f = s["fields"]
        parts.append(SYSTEM.format(
            name=name, port=ports[name], resource=s["resource"],
            map_in=", ".join("%s: %s" % (m, x) for m, x in f.items()),
            map_out=", ".join("%s: %s" % (x, m) for m, x in f.items()),
            update="PATCH" if name == "b" else "PUT", extra=EXTRA[name]))
    return (CONFIG.replace("{systems}", "".join(parts))
            .replace("{policy}", POLICY_TEXT[policy])
            .replace("{log_level}", log_level))


def model_of(name, rec):
    """A system's record in model terms (email, name, phone, note)."""
    return {m: rec.get(x) for m, x in SYSTEMS[name]["fields"].items()}


def by_email(name, records):
    """{email: [model record, ...]} of a system's records."""
    out = {}
    for rec in records.values():
        m = model_of(name, rec)
        out.setdefault(m["email"], []).append(m)
    return out


class Run:
    """One seed: three sims, one concord, the operations and the checks."""

    def __init__(self, seed, ops, policy, quiet_ms, log_level):
        self.seed = seed
        self.ops = ops
        self.policy = policy
        self.quiet_ms = quiet_ms
        self.rng = random.Random(seed)
        self.port = harness.free_port()
        url = "http://127.0.0.1:%d" % self.port
        self.sims = {}
        for name, s in SYSTEMS.items():
            self.sims[name] = Sim(
                resource=s["resource"], id_prefix=s["prefix"],
                webhook_url="%s/webhooks/%s" % (url, name),
                echo_url="%s/webhooks/%s" % (url, name),
                delivery_header="X-Sim-Delivery", idempotency_header="Idempotency-Key",
                order_field="")
        self.concord = Concord(
            config_text({n: s.port for n, s in self.sims.items()}, policy, log_level),
            values={"port": self.port}, name="concord(seed %d)" % seed,
            tmp_prefix="concord-converge-")
        self.values = {}  # email -> field -> every value a person gave it
        self.deleted = {}  # email -> the system a person deleted it in
        self.deleted_ids = {}  # email -> [(system, record id)] of those deletes
        self.pending = []  # webhooks held back: ("resend", sim, id) / ("announce", sim, rid)
        self.counts = {"create": 0, "edit": 0, "delete": 0, "dropped": 0, "held": 0,
                       "dups": 0, "reannounced": 0, "skipped": 0}
        self.hot = []  # recently created emails, edited more often (conflicts)
        self.times = {}  # phase -> seconds since the start

    # --- the operations ----------------------------------------------------

    def deliver(self, name, out):
        """What becomes of a person's webhook, made with send=False."""
        r = self.rng.random()
        did = out["delivery_id"]
        if r < P_DROP:
            self.counts["dropped"] += 1
        elif r < P_DROP + P_HOLD:
            self.counts["held"] += 1
            self.pending.append(("resend", name, did))
        else:
            self.send(("resend", name, did))
        if self.rng.random() < P_DUP:
            self.counts["dups"] += 1
            self.pending.append(("resend", name, did))
        if self.rng.random() < P_REANNOUNCE:
            self.counts["reannounced"] += 1
            self.pending.append(("announce", name, out["record"]["id"]))

    def send(self, item):
        how, name, arg = item
        sim = self.sims[name]
        if how == "resend":
            out = sim.resend(arg)
            ok = out.get("status") in (200, 202)
        else:
            out = sim._ctl("POST", "announce", {"ids": [arg], "deletes": True})
            ok = all(r.get("status") in (200, 202) for r in out["results"])
        if not ok:
            raise AssertionError("concord refused a webhook from %s: %r" % (name, out))

    def release(self, n):
        for _ in range(min(n, len(self.pending))):
            item = self.pending.pop(self.rng.randrange(len(self.pending)))
            self.send(item)

    def pick(self, recs):
        """A record id of a system's records, recent ones more often."""
        if not recs:
            return None
        ids = list(recs)
        if self.hot and self.rng.random() < 0.6:
            hot = [i for i in ids if model_of_any(recs[i]) in self.hot]
            if hot:
                return self.rng.choice(hot)
        return self.rng.choice(ids)

    def person(self, sim, what, arg):
        """A person's edit or delete of a record the sim holds; None when
        concord deleted it since the test looked (the edit lost the race)."""
        status, out, _ = harness.http_request(sim.port, "POST", "/_sim/" + what, arg)
        if status == 404:
            self.counts["skipped"] += 1
            return None
        assert status == 200, (what, status, out)
        return out

    def op(self, i):
        name = self.rng.choice(list(self.sims))
        sim = self.sims[name]
        fields = SYSTEMS[name]["fields"]
        r = self.rng.random()
        if r < 0.15 or i < 3:
            email = "u%d.s%d@example.com" % (i, self.seed)
            rid = "%sp%d" % (SYSTEMS[name]["prefix"], i)
            rec = {fields["email"]: email}
            self.values[email] = {}
            for f in FIELDS:
                v = "%s-%d-%s" % (f, i, name)
                rec[fields[f]] = v
                self.values[email][f] = {v}
            self.hot = (self.hot + [email])[-4:]
            out = sim.change(rid, rec, send=False)
            self.counts["create"] += 1
            self.deliver(name, out)
            return
        recs = sim.records()
        rid = self.pick(recs)
        if rid is None:
            self.counts["skipped"] += 1
            return
        email = recs[rid].get(fields["email"])
        if r < 0.22:
            out = self.person(sim, "delete", {"id": rid, "send": False, "must_exist": True})
            if out is None:
                return
            self.deleted.setdefault(email, name)
            self.deleted_ids.setdefault(email, []).append((name, rid))
            self.counts["delete"] += 1
            self.deliver(name, out)
            return
        patch = {}
        for f in self.rng.sample(FIELDS, self.rng.choice([1, 1, 2])):
            v = "%s-%d-%s" % (f, i, name)
            patch[fields[f]] = v
            self.values.setdefault(email, {}).setdefault(f, set()).add(v)
        out = self.person(sim, "change", {"id": rid, "record": patch, "send": False,
                                          "must_exist": True})
        if out is None:
            return
        self.counts["edit"] += 1
        self.deliver(name, out)

    # --- settling ----------------------------------------------------------

    def snapshot(self):
        return {n: (s["requests"], s["echo_sent"], s["echo_failed"], s["webhooks_sent"])
                for n, s in ((n, sim.stats()) for n, sim in self.sims.items())}

    def store(self, sql, args=()):
        """A read-only query of concord's sqlite store. The CLI costs a
        process start (a third of a second under ASan), so the polling and
        the full comparison read the store; `concord status` and `concord
        history` confirm what it says."""
        db = sqlite3.connect("file:%s/state.db?mode=ro" % self.concord.dir, uri=True,
                             timeout=5)
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def idle(self):
        """No job queued or running, no change unprocessed, no echo unsent."""
        if any(s.stats()["echo_pending"] for s in self.sims.values()):
            return False
        jobs = self.store("SELECT count(*) FROM jobs WHERE state IN (1, 2)")[0][0]
        new = self.store("SELECT count(*) FROM journal WHERE state = 0")[0][0]
        return jobs == 0 and new == 0

    def quiesce(self, timeout=60):
        """Waits until concord has no backlog, nothing in flight, no change
        unprocessed, every echo is sent, and nothing at all happened over
        300 ms; `concord status` agrees."""
        deadline = time.monotonic() + timeout
        while True:
            left = max(1.0, deadline - time.monotonic())
            wait_until(self.idle, left, "concord idle and every echo sent")
            before = self.snapshot()
            time.sleep(0.3)
            if self.snapshot() == before and self.idle() and self.concord.settled():
                return
            if time.monotonic() > deadline:
                raise AssertionError("concord did not settle within %ds" % timeout)

    # --- the run -----------------------------------------------------------

    def run(self):
        t0 = time.monotonic()
        self.phase = "the operations"
        self.times = {}
        self.concord.start()
        for k, (name, sim) in enumerate(self.sims.items()):
            sim.random(self.seed * 7 + k, FAULT_RATE, FAULT_KINDS, slow_ms=500)
            sim._ctl("POST", "echo", {"seed": self.seed * 11 + k, "delay_ms": ECHO_DELAY_MS,
                                      "dup": ECHO_DUP})
        for i in range(self.ops):
            self.op(i)
            if self.pending and self.rng.random() < 0.3:
                self.release(self.rng.randint(1, 3))
        t_ops = time.monotonic() - t0
        self.times["ops"] = round(t_ops, 2)
        self.phase = "settling after the operations"
        # The faults stop; what was held back arrives, late and shuffled.
        for sim in self.sims.values():
            sim.random(0, 0)
            sim._ctl("POST", "echo", {})
        self.release(len(self.pending))
        self.quiesce()
        t_settle = time.monotonic() - t0
        self.times["settled"] = round(t_settle, 2)
        if FINAL == "announce":
            self.phase = "the final announcement"
            # Every system tells concord once more what it holds and deleted.
            for name, sim in self.sims.items():
                out = sim._ctl("POST", "announce", {"deletes": True})
                bad = [r for r in out["results"] if r.get("status") not in (200, 202)]
                assert not bad, "concord refused announcements of %s: %r" % (name, bad[:3])
        else:
            self.phase = "the final reconcile"
            # Concord reads every system whole: drift is repaired, and what a
            # system no longer holds is deleted (the Scheduled-sync issue).
            for name, info in sorted(SYSTEMS.items()):
                coll = "%s.%s" % (name, info["resource"])
                rc, out, err = self.concord.cli("reconcile", coll, "--json", check=False)
                rep = json.loads(out) if out.strip() else {}
                assert rc == 0 and rep.get("complete"), \
                    "the reconcile of %s failed: %s %s" % (coll, out, err)
                self.counts["reconciled_" + name] = {
                    k: rep[k] for k in ("in_sync", "drifted", "new", "missing")}
        self.quiesce()
        t_announce = time.monotonic() - t0
        self.times["announced"] = round(t_announce, 2)
        self.phase = "resolving open conflicts"
        resolved = self.resolve_open()
        t_resolve = time.monotonic() - t0
        self.times["resolved"] = round(t_resolve, 2)
        self.phase = "the checks"
        summary = self.check(resolved)
        summary.update(self.counts)
        summary.update({"seed": self.seed, "policy": self.policy, "ops": self.ops,
                        "t_ops": round(t_ops, 2), "t_settled": round(t_settle, 2),
                        "t_announced": round(t_announce, 2), "t_resolved": round(t_resolve, 2),
                        "wall_s": round(time.monotonic() - t0, 2)})
        return summary

    def conflicts(self, all_=False):
        return self.concord.cli_json("conflicts", *(["--all"] if all_ else []))

    def resolve_open(self):
        """Resolves every open conflict of a live record with --take SYSTEM
        (a side chosen by the seed), until none is left. Returns how many."""
        n = 0
        for _round in range(10):
            live = [c for c in self.conflicts() if not self.record_deleted(c.get("record"))]
            if not live:
                return n
            for c in live:
                d = c.get("detail") or {}
                if c.get("field") == "@match":
                    # A second copy of a record (a create whose outcome was
                    # lost and that landed after concord settled it) is
                    # shown to a person as an ambiguous match, never linked
                    # silently. The person deletes the stray copy; concord
                    # then closes the conflict. Counted, so it stays visible.
                    sim = self.sims[c["system"]]
                    sim._ctl("POST", "delete", {"id": d["ext_id"]})  # gone already: told again
                    self.counts["stray_copies_deleted"] = \
                        self.counts.get("stray_copies_deleted", 0) + 1
                    n += 1
                    continue
                sides = [d.get(k, {}).get("system") for k in ("ours", "theirs")]
                sides = [s for s in sides if s in self.sims]
                assert sides, "open conflict %d names no system side: %r" % (c["id"], c)
                take = self.rng.choice(sides)
                rc, _out, err = self.concord.cli("resolve", str(c["id"]), "--take", take,
                                                 check=False)
                if rc != 0:
                    # Settled since the list was read: deleting a stray
                    # copy above can delete the record it became (its
                    # candidate was gone, so it made one), and concord then
                    # skips that record's conflicts. Anything else fails.
                    still = [o for o in self.conflicts() if o["id"] == c["id"]]
                    assert not still and "no open conflict" in err, \
                        "resolve %d failed: %s" % (c["id"], err)
                    self.counts["settled_meanwhile"] = \
                        self.counts.get("settled_meanwhile", 0) + 1
                    continue
                n += 1
            self.quiesce()
        raise AssertionError("conflicts still open after 10 rounds of resolving: %r"
                             % self.conflicts())

    def history(self, record_id):
        rc, out, err = self.concord.cli("history", str(record_id), "--json", check=False)
        if rc != 0:
            return None
        return json.loads(out)

    def record_deleted(self, record_id):
        rows = self.store("SELECT deleted FROM records WHERE id = ?", (record_id or 0,))
        return bool(rows and rows[0][0])

    # --- the checks --------------------------------------------------------

    def check(self, resolved):
        sims = self.sims
        held = {n: by_email(n, s.records()) for n, s in sims.items()}
        problems = []

        # One copy per record per system.
        for n, recs in held.items():
            dups = {e: v for e, v in recs.items() if len(v) > 1}
            if dups:
                problems.append("%s holds duplicates: %s" % (n, short(dups)))
        # The same live records, with the same values, everywhere.
        emails = {n: set(r) for n, r in held.items()}
        every = set().union(*emails.values())
        for e in sorted(every):
            where = [n for n in sims if e in emails[n]]
            if len(where) != len(sims):
                problems.append("%s is only in %s" % (e, where))
                continue
            states = {n: held[n][e][0] for n in sims}
            if len({json.dumps(s, sort_keys=True) for s in states.values()}) != 1:
                problems.append("%s differs: %s" % (e, short(states)))
        # Delete wins. A delete of a copy concord never linked (a stray
        # second copy, shown as an ambiguous match) deletes no customer: the
        # person removed a duplicate entry. Counted, so it stays visible.
        for e, n in sorted(self.deleted.items()):
            ids = self.deleted_ids.get(e, [])
            linked = [(m, rid) for m, rid in ids if self.store(
                "SELECT 1 FROM links WHERE collection = ? AND ? IN (ext_id, gone_ext_id)",
                ("%s.%s" % (m, SYSTEMS[m]["resource"]), rid))]
            if ids and not linked:
                self.counts["stray_deleted_by_person"] = \
                    self.counts.get("stray_deleted_by_person", 0) + len(ids)
                continue
            if e in every:
                problems.append("%s was deleted in %s but lives in %s"
                                % (e, n, [m for m in sims if e in emails[m]]))
        # Every value is one a person wrote (of the copies there are).
        for e in sorted(every):
            for n in [m for m in sims if e in held[m]]:
                for f in FIELDS:
                    v = held[n][e][0][f]
                    if v not in self.values.get(e, {}).get(f, ()):
                        problems.append("%s.%s in %s is %r, which no person wrote"
                                        % (e, f, n, v))
        # Concord's records are what the systems hold.
        records = self.concord_records()
        live = {}
        for rid, (state, deleted) in records.items():
            if deleted:
                if state.get("email") in every:
                    problems.append("record %d (%s) is deleted in concord but not in the "
                                    "systems" % (rid, state.get("email")))
                continue
            if state.get("email") in live:
                problems.append("concord holds two live records of %s: %d and %d"
                                % (state.get("email"), live[state["email"]], rid))
            live[state.get("email")] = rid
            want = held["a"].get(state.get("email"))
            if want is None:
                problems.append("record %d (%s) lives in concord but in no system"
                                % (rid, state.get("email")))
            elif {f: state.get(f) for f in ["email"] + FIELDS} != want[0]:
                problems.append("record %d differs from the systems: %s vs %s"
                                % (rid, short(state), short(want[0])))
        for e in sorted(every - set(live)):
            problems.append("%s is in the systems but no live record of concord" % e)

        # No conflict silently lost: each is settled by the policy (and the
        # policy's winner won), or resolved by us; none is open but those of
        # deleted records.
        conflicts = self.conflicts(all_=True)
        open_deleted = 0
        tally = {"open": 0, "settled": 0, "resolved": 0}
        for c in conflicts:
            tally[c["state"]] = tally.get(c["state"], 0) + 1
            why = self.policy_problem(c)
            if why:
                problems.append("conflict %d: %s: %s" % (c["id"], why, short(c)))
            if c["state"] == "open":
                if records.get(c.get("record"), (None, False))[1]:
                    open_deleted += 1
                else:
                    problems.append("conflict %d is still open: %s" % (c["id"], short(c)))
        # Nothing else waits for a person: no failed job, no parked change.
        inbox = [x for x in self.concord.cli_json("inbox") if x.get("kind") != "conflict"]
        if inbox:
            problems.append("the inbox holds %d entries: %s" % (len(inbox), short(inbox[:5])))
        failed = [x for x in self.concord.cli_json("failed") if x.get("kind") != "conflict"]
        if failed:
            problems.append("%d failed jobs: %s" % (len(failed), short(failed[:5])))

        # No echo loop: writes are bounded, and a quiet period stays quiet.
        stats = {n: s.stats() for n, s in sims.items()}
        writes = {n: st["creates"] + st["updates"] + st["deletes"] for n, st in stats.items()}
        for n, w in writes.items():
            if w > K * self.ops:
                problems.append("%d writes to %s for %d operations (bound %g per operation)"
                                % (w, n, self.ops, K))
        before = self.snapshot()
        time.sleep(self.quiet_ms / 1000.0)
        after = self.snapshot()
        if after != before:
            problems.append("requests during the quiet period: before %s, after %s"
                            % (before, after))
        if problems:
            raise AssertionError("seed %d (policy %s): %d problems:\n  %s"
                                 % (self.seed, self.policy, len(problems),
                                    "\n  ".join(problems[:40])))
        return {"records": len(every), "concord_records": len(records),
                "writes": writes, "max_writes_per_op": round(max(writes.values()) / self.ops, 2),
                "faults": sum(st["faults"] for st in stats.values()),
                "echo_dups": sum(st["echo_dups"] for st in stats.values()),
                "conflicts": tally, "open_on_deleted": open_deleted, "resolved": resolved}

    def concord_records(self):
        """{record id: (state, deleted)} of every record concord holds, read
        from its store; `concord history` of a few of them must agree."""
        out = {rid: (json.loads(state), bool(deleted))
               for rid, state, deleted in self.store("SELECT id, state, deleted FROM records")}
        for rid in self.rng.sample(sorted(out), min(2, len(out))):
            h = self.history(rid)
            assert h and (h[-1]["state"], is_deleted(h)) == out[rid], (
                "concord history %d disagrees with the store: %r vs %r" % (rid, h, out[rid]))
        return out

    def policy_problem(self, c):
        """Why a conflict's settlement breaks the sync's policy, or None."""
        if c["state"] != "settled":
            return None
        d = c.get("detail") or {}
        ours, theirs, winner = d.get("ours", {}), d.get("theirs", {}), d.get("winner")
        if winner == "none":
            # An open conflict closed when a later one of the same field was
            # settled by the policy: it is not lost, the later entry counts.
            return None if self.policy != "manual" else "settled under manual"
        if self.policy == "manual":
            return "settled under conflict: manual"
        win, lose = (theirs, ours) if winner == "theirs" else (ours, theirs)
        if self.policy == "prefer" and win.get("system") != "a":
            return "prefer: a, but %s won" % win.get("system")
        if self.policy == "newest" and not win.get("at", 0) > lose.get("at", 0) + SKEW_MS:
            return "newest, but the winner is not newer by more than the skew"
        return None

    def stop(self):
        ok = True
        if self.concord.running():
            ok = self.concord.stop() == 0
        for s in self.sims.values():
            s.stop()
        return ok


def model_of_any(rec):
    for s in SYSTEMS.values():
        e = rec.get(s["fields"]["email"])
        if e is not None:
            return e
    return None


def is_deleted(history):
    """Whether a record's last version is a delete."""
    for v in reversed(history):
        d = v.get("diff") or {}
        if "deleted" in d:
            return bool(d["deleted"][1])
    return False


def short(obj, n=600):
    text = json.dumps(obj, sort_keys=True, default=str)
    return text if len(text) <= n else text[:n] + "..."


# --- the smallest reproductions of what the random runs found --------------
#
# Each is what a failing seed came down to, made deterministic with queued
# faults and a held webhook instead of random ones.


def small_run(policy="manual"):
    """Three systems and concord, no random faults, echoes in order."""
    run = Run(1, 0, policy, 0, os.environ.get("CONCORD_CONVERGE_LOG", "debug"))
    harness.cleanup(run.concord)
    run.concord.start()
    return run


def email_rec(run, name, email):
    """The model record of email in system name, or None."""
    got = by_email(name, run.sims[name].records()).get(email, [])
    assert len(got) <= 1, got
    return got[0] if got else None


def converged(run, email):
    """{system: model record or None} of email, for a message."""
    return {n: email_rec(run, n, email) for n in run.sims}


def announce_all(run):
    for sim in run.sims.values():
        sim._ctl("POST", "announce", {"deletes": True})
    run.quiesce()


def test_delete_while_a_create_is_unanswered_leaves_no_copy():
    # Seed 1000 (prefer), 100 ops: concord's create in b was applied but its
    # answer came too late; the record was deleted before the create was
    # tried again. The copy in b stayed, unknown to concord, and its echo
    # later made a new record that was created again in a and c.
    run = small_run()
    a, b = run.sims["a"], run.sims["b"]
    b.faults([{"delay_ms": 700, "apply": "first", "match": {"method": "POST"}}])
    email = "ada@example.com"
    a.change("Ap1", {"email": email, "name": "Ada", "phone": "1", "note": "n"})
    wait_until(lambda: email_rec(run, "b", email), 10, "the create applied in b")
    a.delete("Ap1")
    run.quiesce()
    announce_all(run)
    where = converged(run, email)
    assert all(v is None for v in where.values()), (
        "the deleted record lives on: %s" % short(where))


def test_late_echo_of_a_write_whose_answer_was_lost_is_an_echo():
    # Seed 1002 (newest), 100 ops: a write to a whose answer was lost (the
    # system applied it) was not remembered among the link's recent writes,
    # since a newer version was what concord sent next. Its echo, arriving
    # after that newer write, was taken for a person's change: the newer
    # values were reverted in b and c, while a kept them; a's announcement
    # of what it holds then passed for an echo, so it never converged.
    run = small_run()
    a, b = run.sims["a"], run.sims["b"]
    email = "ada@example.com"
    a.change("Ap1", {"email": email, "name": "n0", "phone": "1", "note": "x"})
    wait_until(lambda: email_rec(run, "b", email), 10, "the copy in b")
    run.quiesce()
    # b's next update is applied at once but answered too late (timeout),
    # and the two tries after it fail: time for a second edit meanwhile.
    b.faults([{"delay_ms": 700, "apply": "first", "match": {"method": "PATCH"}},
              {"status": 503, "times": 2, "match": {"method": "PATCH"}}])
    b_id = next(iter(b.records()))
    a.change("Ap1", {"name": "n1"})
    late = wait_until(lambda: (b.records()[b_id]["full_name"] == "n1"
                               and dict(b.records()[b_id])), 10, "n1 applied in b")
    a.change("Ap1", {"name": "n2"})
    wait_until(lambda: b.records()[b_id]["full_name"] == "n2", 10, "n2 in b")
    run.quiesce()
    # The echo of the n1 write, late (as a delayed echo arrives).
    out = b.send_raw(json.dumps(late), {"X-Sim-Delivery": "late-echo-1",
                                        "Content-Type": "application/json"})
    assert out["status"] in (200, 202), out
    run.quiesce()
    announce_all(run)
    where = converged(run, email)
    names = {n: (v or {}).get("name") for n, v in where.items()}
    assert names == {"a": "n2", "b": "n2", "c": "n2"}, (
        "a late echo of n1 reverted the record: %s" % short(where))


def test_a_webhook_older_than_concords_last_write_reverts_nothing():
    # Seed 1004 (manual), 100 ops: b's webhook for a person's edit of note
    # was delivered late, after concord had written a newer phone to b
    # (over that edit). Concord merged the old webhook against the newer
    # base, so the old phone it carried counted as b's change: the phone was
    # reverted in a and c, b kept the new one, and b's announcement of its
    # state passed for an echo, so it never converged.
    run = small_run()
    a, b = run.sims["a"], run.sims["b"]
    email = "ada@example.com"
    a.change("Ap1", {"email": email, "name": "n0", "phone": "p0", "note": "t0"})
    wait_until(lambda: email_rec(run, "b", email), 10, "the copy in b")
    run.quiesce()
    b_id = next(iter(b.records()))
    held = b.change(b_id, {"notes": "t-b"}, send=False)  # delivered late
    a.change("Ap1", {"phone": "p-a"})
    wait_until(lambda: b.records()[b_id]["phone_number"] == "p-a", 10, "p-a in b")
    run.quiesce()
    out = b.resend(held["delivery_id"])
    assert out["status"] in (200, 202), out
    run.quiesce()
    announce_all(run)
    where = converged(run, email)
    states = {json.dumps(v, sort_keys=True) for v in where.values()}
    assert len(states) == 1, "the systems differ: %s" % short(where)
    assert where["a"]["phone"] == "p-a", (
        "the late webhook reverted a phone b never changed: %s" % short(where))


def test_a_late_echo_older_than_a_newer_write_is_still_an_echo():
    # Seeds 2141329416 (newest), 5027 and 5033 (manual), 300 ops: concord's
    # write to b was applied but its answer was lost; before its echo came
    # (late), a person's newer edit in c reached the record and b was
    # written that. The echo, older than b's base by updated_at, was merged
    # against b's state before the write, so the value concord itself had
    # written passed for b's change: a conflict, which `newest` gave to the
    # echo (b's stamp of the lost write is later than c's edit), reverting
    # the newer edit everywhere. (Under manual it opened a conflict no
    # person made.)
    run = small_run("newest")
    a, b, c = run.sims["a"], run.sims["b"], run.sims["c"]
    email = "ada@example.com"
    a.change("Ap1", {"email": email, "name": "n0", "phone": "1", "note": "x"})
    wait_until(lambda: email_rec(run, "b", email) and email_rec(run, "c", email), 10,
               "the copies in b and c")
    run.quiesce()
    b_id, c_id = next(iter(b.records())), next(iter(c.records()))
    # b's next writes fail a while; then one is applied at once, answered
    # too late (a timeout), with its echo sent only after that.
    b.faults([{"status": 503, "times": 4, "match": {"method": "PATCH"}},
              {"delay_ms": 1500, "apply": "first", "match": {"method": "PATCH"}}])
    a.change("Ap1", {"name": "n1"})
    wait_until(lambda: c.records()[c_id]["display_name"] == "n1", 10, "n1 in c")
    # A person in c edits the name before b gets n1; c's webhook is late.
    held = c.change(c_id, {"display_name": "n2"}, send=False)
    wait_until(lambda: b.records()[b_id]["full_name"] == "n1", 10, "n1 applied in b")
    out = c.resend(held["delivery_id"])
    assert out["status"] in (200, 202), out
    wait_until(lambda: b.records()[b_id]["full_name"] == "n2", 10, "n2 written to b")
    run.quiesce()  # b's late echo of n1 has come by now
    announce_all(run)
    where = converged(run, email)
    names = {n: (v or {}).get("name") for n, v in where.items()}
    assert names == {"a": "n2", "b": "n2", "c": "n2"}, (
        "the late echo of concord's write of n1 reverted c's newer n2: %s" % short(where))
    assert run.conflicts(all_=True) == [], (
        "concord saw a conflict with its own echo: %s" % short(run.conflicts(all_=True)))


def test_a_copy_whose_value_an_open_conflict_no_longer_holds_gets_the_record():
    # Seeds 5027, 5033 and 5066 (manual): a's value of a field was in an
    # open conflict, so a kept it; then b proposed another value for the
    # same field, which took a's place in the conflict. a was not written
    # the record's value, and held a value nobody proposed any more until
    # the conflict was resolved (reconcile then found it "not what the
    # record maps to").
    run = small_run("manual")
    a, b, c = run.sims["a"], run.sims["b"], run.sims["c"]
    email = "ada@example.com"
    a.change("Ap1", {"email": email, "name": "n0", "phone": "1", "note": "x"})
    wait_until(lambda: email_rec(run, "b", email) and email_rec(run, "c", email), 10,
               "the copies in b and c")
    run.quiesce()
    b_id, c_id = next(iter(b.records())), next(iter(c.records()))
    a.random(1, 1.0, ["503"])  # concord's writes to a and b fail for now
    b.random(2, 1.0, ["503"])
    c.change(c_id, {"display_name": "nc"})
    wait_until(lambda: run.store("SELECT count(*) FROM versions WHERE state LIKE '%\"nc\"%'")
               [0][0] > 0, 10, "nc in the record")
    a.change("Ap1", {"name": "na"})
    wait_until(lambda: len(run.conflicts()) == 1, 10, "a's conflict open")
    a.random(0, 0)

    def a_settled():
        return run.store("SELECT count(*) FROM jobs WHERE collection = 'a.customers'")[0][0] == 0
    wait_until(a_settled, 10, "a's job done")
    assert a.records()["Ap1"]["name"] == "na", "a did not keep its contested value"
    b.change(b_id, {"full_name": "nb"})
    wait_until(lambda: (run.conflicts() or [{}])[0].get("detail", {}).get("theirs", {})
               .get("system") == "b", 10, "b's value in the open conflict")
    b.random(0, 0)
    run.quiesce()
    names = {n: (v or {}).get("name") for n, v in converged(run, email).items()}
    assert names == {"a": "nc", "b": "nb", "c": "nc"}, (
        "a kept a value no open conflict holds: %s" % names)


def net_catches(path):
    """How often reconcile found a copy that had not changed but was not
    what its record maps to: each is an update lost upstream that the
    reconcile repaired (the seed passes, but the log is kept)."""
    try:
        with open(path, errors="replace") as f:
            return sum("though it did not change" in line for line in f)
    except OSError:
        return 0


def one_seed(seed, ops, policy, quiet_ms, log_level):
    """Runs one seed; returns (summary, failure message or None, report
    lines)."""
    lines = ["  seed %d, policy %s, %d ops (replay with CONCORD_TEST_SEED=%d)"
             % (seed, policy, ops, seed)]
    run = None
    try:
        run = Run(seed, ops, policy, quiet_ms, log_level)
        summary = run.run()
    except Exception as e:  # noqa: BLE001 - report the seed, go on
        phase = getattr(run, "phase", "setup")
        msg = "%s (during %s)" % (str(e) or type(e).__name__, phase)
        where = run.concord.dir if run else None
        lines.append("converge: %s" % json.dumps({
            "seed": seed, "policy": policy, "ok": False, "error": " ".join(msg.splitlines()[:2])[:400],
            "times": run.times if run else {}, "dir": where}))
        lines.append("    FAILED: %s\n    (kept %s; log %s/concord.log)" % (msg, where, where))
        if run:
            run.stop()
        return None, msg, lines
    if not run.stop():
        msg = "concord exited %s on SIGTERM" % run.concord.returncode
        lines.append("    FAILED: %s; log:\n%s" % (msg, run.concord.log_tail(30)))
        summary["ok"] = False
        lines.append("converge: %s" % json.dumps(summary, sort_keys=True))
        return summary, msg, lines
    summary["ok"] = True
    summary["net_catches"] = net_catches(run.concord.log_path)
    if summary["net_catches"]:
        # The seed passes (the runner removes its dir): its log is kept.
        kept = "/tmp/concord-converge-net-%d-%d" % (seed, os.getpid())
        shutil.copytree(run.concord.dir, kept)
        lines.append("    the reconcile net caught %d lost update(s) (dir kept: %s)"
                     % (summary["net_catches"], kept))
    run.concord.remove()
    lines.append("converge: %s" % json.dumps(summary, sort_keys=True))
    return summary, None, lines


def test_three_systems_converge():
    env_seed = os.environ.get("CONCORD_TEST_SEED")
    seeds_n = env_int("CONCORD_CONVERGE_SEEDS", 1 if env_seed else 24)
    ops = env_int("CONCORD_CONVERGE_OPS", 120)
    budget = env_int("CONCORD_CONVERGE_BUDGET_S", 0 if env_seed else 210)
    jobs = max(1, env_int("CONCORD_CONVERGE_JOBS", 2))
    quiet_ms = env_int("CONCORD_CONVERGE_QUIET_MS", 1500)
    log_level = os.environ.get("CONCORD_CONVERGE_LOG", "info")
    forced = os.environ.get("CONCORD_CONVERGE_POLICY")
    stop_first = os.environ.get("CONCORD_CONVERGE_STOP") == "1"
    base = int(env_seed) if env_seed else random.randrange(1, 2**31 - 1000)
    print("  %d seeds from %d, %d ops each, %d at a time" % (seeds_n, base, ops, jobs),
          flush=True)
    failures = []
    lock = threading.Lock()
    todo = list(range(seeds_n))
    skipped = []
    t0 = time.monotonic()

    # Seeds run side by side (each with its own sims and concord): most of
    # a seed's time is waiting for retries, echoes and the quiet period.
    def worker():
        while True:
            with lock:
                if not todo or (stop_first and failures):
                    return
                if budget and time.monotonic() - t0 > budget:
                    skipped.extend(todo)
                    del todo[:]
                    return
                seed = base + todo.pop(0)
            policy = forced or POLICIES[seed % len(POLICIES)]
            _, msg, lines = one_seed(seed, ops, policy, quiet_ms, log_level)
            with lock:
                if msg:
                    failures.append((seed, policy, msg))
                print("\n".join(lines), flush=True)

    threads = [threading.Thread(target=worker) for _ in range(min(jobs, seeds_n))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ran = seeds_n - len(skipped)
    print("  %d seeds in %.1fs, %d failed%s" % (
        ran, time.monotonic() - t0, len(failures),
        "; %d not started: the %ds budget was spent" % (len(skipped), budget) if skipped else ""),
        flush=True)
    assert ran >= min(seeds_n, 12), "only %d seeds ran within %ds" % (ran, budget)
    if failures:
        raise AssertionError("%d of %d seeds failed: %s" % (
            len(failures), seeds_n,
            "; ".join("seed %d (%s): %s" % (s, p, m.splitlines()[0][:200])
                      for s, p, m in sorted(failures))))


if __name__ == "__main__":
    harness.run_tests(globals())
