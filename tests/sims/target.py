#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A scriptable REST system on 127.0.0.1 with fault injection.

One process simulates one external system: a JSON resource with create,
update, read and delete, a log of every request it received, faults that a
test queues or draws from a seeded random source, webhooks that it sends to
concord as if a person changed a record, and echo webhooks that it sends after
concord wrote to it. The control API lives under /_sim/; it is never logged
and never faulted. tests/sims/README.md lists every option and endpoint.
The request flow, fault actions, request log and control dispatch are
simbase.py's.

Standard library only. Prints "ready PORT" on stdout once it listens.
"""

import argparse
import base64
import hashlib
import hmac
import http.client
import http.server
import json
import os
import queue
import random
import re
import sys
import threading
import time
import urllib.parse
import uuid

sys.dont_write_bytecode = True  # leave no __pycache__ beside the sims
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import simbase  # noqa: E402

post = simbase.post

# Query parameters of a list read that are not equality filters.
RESERVED = ("updated_since", "limit", "page", "offset", "cursor", "syncToken", "pageToken")
PAGE_STYLES = ("none", "number", "offset", "cursor", "link", "token", "delta")
# Microsoft Graph's delta query names its parameters so (--page-style delta).
DELTA_PARAMS = {"$deltatoken": "syncToken", "$skiptoken": "cursor", "$top": "limit"}
EXPIRED = {"error": {"code": 410,
                     "message": "Sync token is no longer valid, a full sync is required.",
                     "reason": "fullSyncRequired"}}


class BadRequest(Exception):
    """A list read the sim refuses: answered 400 with the message."""


class Gone(Exception):
    """A sync token (or a page of a read with one) that expired: 410."""


def encode_token(obj):
    """An opaque, URL-safe token holding obj (a cursor or sync token)."""
    raw = json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_token(text, what):
    """The object encode_token wrapped in text; BadRequest if it is not one."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        obj = json.loads(raw.decode())
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("malformed %s" % what)
    if not isinstance(obj, dict):
        raise BadRequest("malformed %s" % what)
    return obj


def now_ms():
    return int(time.time() * 1000)


def render_template(template, timestamp, body):
    """Replaces {timestamp} and {body} in one pass, so a body that happens to
    contain the text "{timestamp}" is not rewritten."""

    def sub(m):
        return timestamp if m.group(1) == "timestamp" else body

    return re.sub(r"\{(timestamp|body)\}", sub, template)


def sign(secret, template, timestamp, body, prefix):
    msg = render_template(template, timestamp, body)
    mac = hmac.new(secret.encode(), msg.encode(), hashlib.sha256).hexdigest()
    return prefix + mac


class Faults(simbase.Faults):
    """simbase.py's faults; random kinds by default include 429, and a
    random status answers {"error": "random N"}."""

    default_kinds = ("503", "429", "reset_before", "lost", "slow")

    def random_fault(self, kind):
        f = super().random_fault(kind)
        if "status" in f:
            f["body"] = {"error": "random %s" % kind}
        return f


class State(simbase.State):
    """Everything the simulator holds; every access goes through self.lock."""

    def reset(self):
        super().reset()  # the log, faults and the common stats
        self.faults = Faults()
        self.records = {}  # id -> record, in creation order
        self.next_id = 1
        self.last_ms = 0
        self.idem = {}  # idempotency key -> the record as the first answer gave it
        self.idem_busy = set()  # keys of requests still being carried out
        self.events = []  # Stripe-style events of every change, oldest first
        self.sent = {}  # delivery id -> (body bytes, headers) of webhooks sent
        self.deleted_here = {}  # id -> record, of records a person deleted here
        self.echo_rng = None  # seeded source of echo delays and duplicates
        self.echo_delay_ms = 0  # each echo waits up to this long (0: in order, at once)
        self.echo_dup = 0.0  # share of echoes sent twice
        # Echoes queued or waiting for their delay (they outlive a reset).
        self.echo_pending = getattr(self, "echo_pending", 0)
        self.order_max = {}  # record id -> (highest order value applied, its seq)
        self.violations = []  # applied writes that went back in order
        self.created = {}  # record id -> creation number (creation order)
        self.next_created = 1
        self.changed = {}  # record id -> change number of its last write
        self.change_seq = 0  # the last change number given (writes and deletes)
        self.tombs = {}  # id -> {"seq": change number, "at": stamp} of its last delete
        self.generation = uuid.uuid4().hex[:12]  # sync tokens of another one expired
        self.stats.update({
            "creates": 0,
            "updates": 0,
            "deletes": 0,
            "echo_sent": 0,
            "echo_failed": 0,
            "echo_dups": 0,
            "announced": 0,
            "webhooks_sent": 0,
            "list_reads": 0,
            "in_progress": 0,  # REST requests being carried out now
            "max_concurrent": 0,  # the most carried out at once
        })

    def note_order(self, rid, method, body, seq):
        """Checks the --order-field of an applied write of record rid against
        the highest value applied to rid before; a lower one is an
        out-of-order write and is remembered. Called under lock."""
        field = self.opts.order_field
        if not field or not isinstance(body, dict):
            return
        v = body.get(field)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return
        prev = self.order_max.get(rid)
        if prev is not None and v < prev[0]:
            self.violations.append({"id": rid, "method": method, "seq": seq, field: v,
                                    "after": prev[0], "after_seq": prev[1]})
            return
        if prev is None or v > prev[0]:
            self.order_max[rid] = (v, seq)

    def stamp(self, forced=None):
        """A new updated_at. Strictly increasing, so two writes in one
        millisecond still order; a forced value (which may repeat or go back)
        is returned as is, and later stamps stay above it."""
        if forced is not None:
            if isinstance(forced, bool) or not isinstance(forced, int):
                raise ValueError("updated_at must be an integer (ms)")
            self.last_ms = max(self.last_ms, forced)
            return forced
        t = max(now_ms(), self.last_ms + 1)
        self.last_ms = t
        return t

    def store(self, rid, rec):
        """Stores rec as record rid (a new id goes last in creation order)
        and numbers the change for sync tokens. Called under lock."""
        if rid not in self.records:
            self.created[rid] = self.next_created
            self.next_created += 1
        kind = "updated" if rid in self.records else "created"
        self.records[rid] = rec
        self.change_seq += 1
        self.changed[rid] = self.change_seq
        self.note_event(kind, rec)

    def note_event(self, kind, rec):
        """Logs a Stripe-style event of the change just numbered (GET
        /events). Called under lock."""
        self.events.append({"id": "evt_%d" % self.change_seq, "object": "event",
                            "type": "%s.%s" % (self.opts.event_prefix, kind),
                            "created": int(time.time()), "data": {"object": dict(rec)}})

    def remove(self, rid):
        """Deletes record rid (held or not) and logs the delete for sync
        tokens. Called under lock."""
        last = self.records.pop(rid, None)
        self.created.pop(rid, None)
        self.changed.pop(rid, None)
        self.change_seq += 1
        self.tombs[rid] = {"seq": self.change_seq, "at": self.stamp()}
        self.note_event("deleted", dict(last or {"id": rid}, deleted=True))

    def new_id(self):
        while True:
            rid = "%s%d" % (self.opts.id_prefix, self.next_id)
            self.next_id += 1
            if rid not in self.records:
                return rid

class Echoer:
    """Sends echo webhooks from one background thread: in order, at once,
    unless POST /_sim/echo asked for random delays (which reorder them) and
    duplicates."""

    def __init__(self, url, state):
        self.url = url
        self.state = state
        self.q = queue.Queue()
        t = threading.Thread(target=self.run, daemon=True)
        t.start()

    def send(self, event, record, ready=None):
        """Queues the echo of a write, in the order of the writes; when
        ready (a threading.Event) is given, it is sent once that is set (the
        write's answer is out), or after 5 s."""
        with self.state.lock:
            self.state.echo_pending += 1
        self.q.put((event, record, ready))

    def run(self):
        while True:
            event, record, ready = self.q.get()
            if ready is not None:
                ready.wait(5)
            body = json.dumps(record, sort_keys=True).encode()
            delivery = str(uuid.uuid4())
            st = self.state
            with st.lock:
                rng, max_delay, dup = st.echo_rng, st.echo_delay_ms, st.echo_dup
                plan = []  # (delay in seconds, delivery id) of each send
                if rng is None:
                    plan.append((0.0, delivery))
                else:
                    plan.append((rng.uniform(0, max_delay) / 1000.0, delivery))
                    if rng.random() < dup:
                        # A sender's retry (the same delivery id) or the
                        # same news sent again as a new delivery.
                        again = delivery if rng.random() < 0.5 else str(uuid.uuid4())
                        plan.append((rng.uniform(0, max_delay) / 1000.0, again))
                        st.stats["echo_dups"] += 1
                        st.echo_pending += 1
            for delay, did in plan:
                if delay <= 0:
                    self.post(event, body, did)
                else:
                    t = threading.Timer(delay, self.post, (event, body, did))
                    t.daemon = True
                    t.start()

    def post(self, event, body, delivery):
        headers = {
            "Content-Type": "application/json",
            "X-Sim-Delivery": delivery,
            "X-Sim-Event": event,
        }
        try:
            post(self.url, body, headers)
            ok = True
        except (OSError, http.client.HTTPException):
            ok = False
        with self.state.lock:
            self.state.stats["echo_sent" if ok else "echo_failed"] += 1
            self.state.echo_pending -= 1


class Handler(simbase.Handler):
    """The REST resource and target.py's own control calls on simbase.py's
    request flow. Answers keep target.py's form: ASCII JSON as
    application/json, from "Server: concord-sim/1"."""

    sim_name = "sim"
    server_version = "concord-sim/1"
    json_ascii = True
    json_ctype = "application/json"

    def version_string(self):
        return http.server.BaseHTTPRequestHandler.version_string(self)

    # --- the REST resource: simbase.Handler.api_request() and its hooks -----

    def api_request(self, split):
        """One REST request. A create carrying an idempotency key holds the
        key while it is carried out (slow faults included): as Stripe does,
        a second request with the key meanwhile gets 409."""
        st = self.server.state
        key = None
        if self.command == "POST" and self.server.opts.idempotency_header:
            key = self.headers.get(self.server.opts.idempotency_header)
        if key:
            with st.lock:
                busy = key in st.idem_busy and key not in st.idem
                if not busy:
                    st.idem_busy.add(key)
            if busy:
                try:
                    self.read_body()
                except (ValueError, OSError):
                    self.close_connection = True
                with st.lock:
                    st.stats["requests"] += 1
                    st.stats["idem_in_use"] = st.stats.get("idem_in_use", 0) + 1
                    st.log.append({"seq": len(st.log) + 1, "time": time.time(),
                                   "conn": self.conn_no, "method": "POST", "path": self.path,
                                   "headers": {k.lower(): v for k, v in self.headers.items()},
                                   "body": None, "status": 409, "applied": False})
                self.send_answer(409, {"error": {
                    "type": "idempotency_error", "code": "idempotency_key_in_use",
                    "message": "There is currently another in-progress request using "
                               "this Idempotency Key."}})
                return
        with st.lock:
            st.stats["in_progress"] += 1
            st.stats["max_concurrent"] = max(st.stats["max_concurrent"], st.stats["in_progress"])
        try:
            super().api_request(split)
        finally:
            with st.lock:
                st.stats["in_progress"] -= 1
                if key:
                    st.idem_busy.discard(key)

    def admit(self, entry, split):
        """Counts list reads (faulted ones too); refuses nothing."""
        st = self.server.state
        if self.command == "GET" and [p for p in split.path.split("/") if p] == \
                [self.server.opts.resource]:
            st.stats["list_reads"] += 1
        return None

    def fault_answer(self, status):
        return {"error": "injected %d" % status}, None

    def more_stats(self, out):
        st = self.server.state
        out["records"] = len(st.records)
        out["order_violations"] = len(st.violations)
        out["echo_pending"] = st.echo_pending

    def handle_api(self, method, split, raw, entry):
        """The token and body checks, then apply(); queues the echo of an
        applied write."""
        opts = self.server.opts
        self.echo_ready = None
        if opts.token is not None and self.headers.get("Authorization") != opts.token:
            with self.server.state.lock:
                self.server.state.count("unauthorized")
            return 401, {"error": "missing or wrong Authorization"}, None, False
        body = None
        parse_error = None
        if raw:
            text = raw.decode("utf-8", "replace")
            try:
                body = json.loads(text)
            except ValueError as e:
                body = text
                parse_error = str(e)
        if method in ("POST", "PUT", "PATCH"):
            if parse_error is not None or not isinstance(body, dict):
                why = parse_error or "the body must be a JSON object"
                return 400, {"error": "malformed JSON body: " + why}, None, False

        self.answer_headers = None
        status, obj, event, record = self.apply(method, split, body, entry["seq"])
        applied = event is not None
        # The echo takes its place in the queue now, in the order of the
        # writes (two requests' threads may answer in either order), and
        # leaves once the answer is out (answered()).
        if applied and self.server.echoer is not None:
            self.echo_ready = threading.Event()
            self.server.echoer.send(event, record, self.echo_ready)
        return status, obj, self.answer_headers, applied

    def answered(self):
        if self.echo_ready is not None:
            self.echo_ready.set()

    def apply(self, method, split, body, seq=None):
        """Carries out one REST request. Returns (status, answer, event,
        record) where event is None when nothing was written."""
        st = self.server.state
        opts = self.server.opts
        parts = [p for p in split.path.split("/") if p]
        if parts == ["events"] and method == "GET":
            with st.lock:
                return self.events_read(split)
        if parts == [opts.resource, "delta"] and method == "GET" and opts.page_style == "delta":
            parts = [opts.resource]
        if not parts or parts[0] != opts.resource or len(parts) > 2:
            return 404, {"error": "no such path"}, None, None
        rid = urllib.parse.unquote(parts[1]) if len(parts) == 2 else None
        with st.lock:
            if rid is None and method == "GET":
                try:
                    obj, self.answer_headers = self.list_read(split)
                except BadRequest as e:
                    return 400, {"error": str(e)}, None, None
                except Gone:
                    return 410, json.loads(json.dumps(EXPIRED)), None, None
                return 200, obj, None, None
            if rid is None and method == "POST":
                key = None
                if opts.idempotency_header:
                    key = self.headers.get(opts.idempotency_header)
                if key and key in st.idem:
                    # As Stripe does: the first answer again, even when the
                    # record was deleted since.
                    return 201, st.idem[key], None, None
                rec = dict(body)
                rec["id"] = st.new_id()
                rec["updated_at"] = st.stamp()
                st.store(rec["id"], rec)
                st.note_order(rec["id"], method, body, seq)
                if key:
                    st.idem[key] = dict(rec)
                st.stats["creates"] += 1
                return 201, rec, "created", dict(rec)
            if rid is None:
                return 405, {"error": "method not allowed"}, None, None
            cur = st.records.get(rid)
            if method == "GET":
                if cur is None:
                    return 404, {"error": "not found"}, None, None
                return 200, cur, None, None
            if method in ("PUT", "PATCH"):
                if cur is None:
                    return 404, {"error": "not found"}, None, None
                rec = dict(body) if method == "PUT" else dict(cur, **body)
                rec["id"] = rid
                rec["updated_at"] = st.stamp()
                st.store(rid, rec)
                st.note_order(rid, method, body, seq)
                st.stats["updates"] += 1
                return 200, rec, "updated", dict(rec)
            if method == "DELETE":
                if cur is None:
                    return 404, {"error": "not found"}, None, None
                st.remove(rid)
                st.stats["deletes"] += 1
                gone = dict(cur, deleted=True)
                return 204, None, "deleted", gone
            return 405, {"error": "method not allowed"}, None, None

    def list_read(self, split):
        """GET /RESOURCE: returns (answer, extra headers or None). Raises
        BadRequest (400) or Gone (410). Called under lock. See README.md,
        "List reads"."""
        st = self.server.state
        opts = self.server.opts
        pairs = urllib.parse.parse_qsl(split.query, keep_blank_values=True)
        if opts.page_style == "delta":
            pairs = [(DELTA_PARAMS.get(k, k), v) for k, v in pairs]
        q = {}
        for k, v in pairs:
            q[k] = v  # the last value of a repeated parameter wins
        filters = {k: v for k, v in q.items() if k not in RESERVED}
        style = opts.page_style

        def integer(name, low):
            try:
                n = int(q[name])
            except ValueError:
                raise BadRequest("%s must be an integer" % name)
            if n < low:
                raise BadRequest("%s must be >= %d" % (name, low))
            return n

        since = integer("updated_since", 0) if "updated_since" in q else None
        sync = q.get("syncToken")
        if since is not None and sync is not None:
            raise BadRequest("updated_since and syncToken do not go together")
        limit = opts.page_size
        if "limit" in q:
            limit = integer("limit", 1)
        limit = min(limit, opts.page_size_max)

        cur = None  # where the last page ended, for the keyset styles
        param = {"cursor": "cursor", "link": "cursor", "token": "pageToken",
                 "delta": "cursor"}.get(style)
        if param and q.get(param):
            cur = decode_token(q[param], param)
            shape = {"sync": [int], "since": [int, str], "created": [int]}.get(cur.get("m"))
            k = cur.get("k")
            if shape is None or not isinstance(k, list) or len(k) != len(shape) \
                    or not all(type(v) is t for v, t in zip(k, shape)) \
                    or not isinstance(cur.get("h"), int) \
                    or (cur["m"] == "sync" and not isinstance(cur.get("s"), int)):
                raise BadRequest("malformed %s" % param)
            if cur["m"] == "since" and since is None:
                since = 0  # the cursor alone says where the read goes on

        base = None  # the change number a sync token read starts after
        if sync is not None:
            tok = decode_token(sync, "syncToken")
            if not isinstance(tok.get("s"), int) or "g" not in tok:
                raise BadRequest("malformed syncToken")
            if tok["g"] != st.generation:
                raise Gone()
            base = tok["s"]
        if cur and cur["m"] == "sync":
            # The next page of a sync token read: the syncToken itself may be
            # sent again or left out.
            if cur.get("g") != st.generation:
                raise Gone()
            base = cur["s"]
        mode = "sync" if base is not None else "since" if since is not None else "created"
        if cur and cur["m"] != mode:
            raise BadRequest("%s does not belong to this read" % param)
        # The change number when the read began: its sync token is valid
        # from there.
        begun = cur["h"] if cur else st.change_seq

        def fits(r):
            return all(str(r.get(k)) == v for k, v in filters.items())

        # (key, item) in read order; every key is unique and only grows
        # when its record changes.
        if mode == "sync":
            items = [((st.changed[rid],), r) for rid, r in st.records.items()
                     if st.changed[rid] > base and fits(r)]
            items += [((t["seq"],), {"id": rid, "deleted": True})
                      for rid, t in st.tombs.items()
                      if t["seq"] > base and rid not in st.records]
            items.sort(key=lambda x: x[0])
        elif mode == "since":
            items = [((r["updated_at"], rid), r) for rid, r in st.records.items()
                     if r.get("updated_at", 0) >= since and fits(r)]
            items.sort(key=lambda x: x[0])
        else:
            items = [((st.created[rid],), r) for rid, r in st.records.items() if fits(r)]

        if style == "none":
            page, more = items, False
        elif style in ("number", "offset"):
            if style == "number":
                start = (integer("page", 1) - 1) * limit if "page" in q else 0
            else:
                start = integer("offset", 0) if "offset" in q else 0
            page = items[start:start + limit]
            more = len(items) > start + limit
        else:
            if cur:
                last = tuple(cur["k"])
                items = [x for x in items if x[0] > last]
            page, more = items[:limit], len(items) > limit

        if style == "delta":
            return self.delta_answer(page, more, param, mode, begun, base), None
        out = {"data": [dict(r) for _, r in page]}
        headers = None
        nxt = None
        if more and param:
            nxt = encode_token({"m": mode, "k": list(page[-1][0]), "h": begun,
                                "s": base, "g": st.generation})
        if style in ("number", "offset"):
            out["has_more"] = more
        elif style == "cursor":
            out["next_cursor"] = nxt
            out["has_more"] = more
        elif style == "link" and nxt:
            rest = [(k, v) for k, v in pairs if k != "cursor"] + [("cursor", nxt)]
            url = "http://127.0.0.1:%d/%s?%s" % (opts.port, opts.resource,
                                                 urllib.parse.urlencode(rest))
            headers = {"Link": '<%s>; rel="next"' % url}
        elif style == "token" and nxt:
            out["nextPageToken"] = nxt
        if not more:
            # A keyset walk over change numbers has seen the last version of
            # everything changed until now; other reads may have missed
            # changes made since they began.
            exact = mode == "sync" and style in ("cursor", "link", "token")
            upto = st.change_seq if exact or style in ("none", "number", "offset") else begun
            out["nextSyncToken"] = encode_token({"g": st.generation, "s": upto})
        return out, headers

    def delta_answer(self, page, more, param, mode, begun, base):
        """A page of a Graph-style delta read: {"value": [...]} with
        "@odata.nextLink" while pages follow, else "@odata.deltaLink" (the
        URL of the next round). Deleted records come as {"id": ...,
        "@removed": {"reason": "deleted"}}. Called under lock."""
        st = self.server.state
        opts = self.server.opts
        url = "http://127.0.0.1:%d/%s/delta?" % (opts.port, opts.resource)
        value = [{"id": r["id"], "@removed": {"reason": "deleted"}} if r.get("deleted")
                 else dict(r) for _, r in page]
        out = {"value": value}
        if more:
            nxt = encode_token({"m": mode, "k": list(page[-1][0]), "h": begun,
                                "s": base, "g": st.generation})
            out["@odata.nextLink"] = url + urllib.parse.urlencode({"$skiptoken": nxt})
        else:
            upto = st.change_seq if mode == "sync" else begun
            tok = encode_token({"g": st.generation, "s": upto})
            out["@odata.deltaLink"] = url + urllib.parse.urlencode({"$deltatoken": tok})
        return out

    def events_read(self, split):
        """GET /events as Stripe lists them: newest first, `limit` (1-100,
        default 10), `starting_after=ID` (older ones), `ending_before=ID`
        (the ones just newer than ID); {"object": "list", "data": [...],
        "has_more": bool}. An unknown event id answers 404. Called under
        lock."""
        st = self.server.state
        q = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        try:
            limit = int(q.get("limit", "10"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            return 400, {"error": {"type": "invalid_request_error",
                                   "message": "limit must be between 1 and 100"}}, None, None
        ids = [e["id"] for e in st.events]

        def where(name):
            try:
                return ids.index(q[name])
            except ValueError:
                return None
        if q.get("ending_before"):
            i = where("ending_before")
            if i is None:
                return 404, {"error": {"type": "invalid_request_error", "message":
                                       "No such event: '%s'" % q["ending_before"]}}, None, None
            newer = st.events[i + 1:]
            page = newer[:limit]
            more = len(newer) > limit
        else:
            older = st.events
            if q.get("starting_after"):
                i = where("starting_after")
                if i is None:
                    return 404, {"error": {"type": "invalid_request_error", "message":
                                           "No such event: '%s'" % q["starting_after"]}}, \
                        None, None
                older = st.events[:i]
            page = older[-limit:]
            more = len(older) > limit
        return 200, {"object": "list", "url": "/v1/events", "has_more": more,
                     "data": [json.loads(json.dumps(e)) for e in reversed(page)]}, None, None

    # --- the control API (simbase.py has requests, stats, reset, faults, random)

    def ctl_get_records(self, arg, q):
        with self.server.state.lock:
            return 200, dict(self.server.state.records)

    def ctl_get_order_violations(self, arg, q):
        with self.server.state.lock:
            return 200, [dict(v) for v in self.server.state.violations]

    def ctl_post_change(self, arg, q):
        return self.change(arg, delete=False)

    def ctl_post_put(self, arg, q):
        """Stores (or replaces) a record quietly: no webhook, no echo, no
        REST stats; "updated_at" forces its timestamp."""
        if not isinstance(arg, dict) or "id" not in arg:
            raise ValueError('expected {"id": ..., "record": {...}, "updated_at"?: ms}')
        rec = arg.get("record") or {}
        if not isinstance(rec, dict):
            raise ValueError("record must be an object")
        rid = str(arg["id"])
        st = self.server.state
        with st.lock:
            rec = dict(rec)
            rec["id"] = rid
            rec["updated_at"] = st.stamp(arg.get("updated_at"))
            st.store(rid, rec)
            st.deleted_here.pop(rid, None)
        return 200, {"record": rec}

    def ctl_post_expire_tokens(self, arg, q):
        """Every sync token issued so far answers 410 from now on."""
        st = self.server.state
        with st.lock:
            st.generation = uuid.uuid4().hex[:12]
        return 200, {"status": "expired"}

    def ctl_post_delete(self, arg, q):
        return self.change(arg, delete=True)

    def change(self, arg, delete):
        """A person changed (or deleted) a record in this system: store it,
        then tell concord by webhook."""
        st = self.server.state
        opts = self.server.opts
        if not isinstance(arg, dict) or "id" not in arg:
            raise ValueError('expected {"id": ..., "record": {...}}')
        rid = str(arg["id"])
        with st.lock:
            cur = st.records.get(rid)
            if cur is None and arg.get("must_exist"):
                return 404, {"error": "no record %s here" % rid}
            if delete:
                rec = dict(cur) if cur else {"id": rid}
                st.remove(rid)
                st.deleted_here[rid] = dict(rec)
                event = arg.get("event") or opts.event_prefix + ".deleted"
            else:
                patch = arg.get("record") or {}
                if not isinstance(patch, dict):
                    raise ValueError("record must be an object")
                rec = dict(cur or {}, **patch)
                rec["id"] = rid
                rec["updated_at"] = st.stamp(arg.get("updated_at"))
                st.store(rid, rec)
                st.deleted_here.pop(rid, None)
                default = ".updated" if cur else ".created"
                event = arg.get("event") or opts.event_prefix + default
        delivery = str(arg.get("delivery_id") or uuid.uuid4())
        out = {"status": None, "body": None, "delivery_id": delivery,
               "event": event, "record": rec}
        if not opts.webhook_url:
            return 200, out
        body, headers = self.webhook(rec, event, delivery, delete)
        if arg.get("send") is False:
            return 200, out
        return 200, self.send_webhook(body, headers, out)

    def webhook(self, rec, event, delivery, delete):
        """The body and headers of the webhook announcing rec; kept for
        /_sim/resend. Without --envelope, a delete's record carries
        "deleted": true, as a delete echo does."""
        opts = self.server.opts
        if opts.envelope:
            payload = {opts.event_key: event, opts.envelope: rec}
        else:
            payload = dict(rec, deleted=True) if delete else rec
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if opts.delivery_header:
            headers[opts.delivery_header] = delivery
        ts = str(int(time.time()))
        if opts.timestamp_header:
            headers[opts.timestamp_header] = ts
        if opts.webhook_secret is not None and opts.signature_header:
            headers[opts.signature_header] = sign(
                opts.webhook_secret, opts.template, ts, body.decode(), opts.prefix
            )
        with self.server.state.lock:
            self.server.state.sent[delivery] = (body, headers)
        return body, headers

    def ctl_post_announce(self, arg, q):
        """Announces records as they are now, each in a webhook with a fresh
        delivery id: every record held (or those in "ids"), and with
        "deletes": true every delete a person made here again."""
        arg = arg or {}
        st = self.server.state
        opts = self.server.opts
        if not opts.webhook_url:
            raise ValueError("no --webhook-url")
        ids = arg.get("ids")
        with st.lock:
            held = [dict(r) for r in st.records.values()
                    if ids is None or r["id"] in ids]
            gone = [dict(r) for rid, r in st.deleted_here.items()
                    if arg.get("deletes") and (ids is None or rid in ids)]
        results = []
        for rec, delete in [(r, False) for r in held] + [(r, True) for r in gone]:
            event = opts.event_prefix + (".deleted" if delete else ".updated")
            delivery = str(uuid.uuid4())
            body, headers = self.webhook(rec, event, delivery, delete)
            out = self.send_webhook(body, headers, {"delivery_id": delivery, "id": rec["id"],
                                                    "event": event})
            results.append(out)
        with st.lock:
            st.stats["announced"] += len(results)
        return 200, {"sent": len(results), "results": results}

    def ctl_post_echo(self, arg, q):
        """Echo mischief: {"seed", "delay_ms", "dup"}; delay_ms 0 and dup 0
        (or {}) send echoes in order and at once again."""
        arg = arg or {}
        delay = float(arg.get("delay_ms", 0))
        dup = float(arg.get("dup", 0))
        if delay < 0 or not 0 <= dup <= 1:
            raise ValueError("delay_ms must be >= 0 and dup within 0..1")
        st = self.server.state
        with st.lock:
            st.echo_delay_ms = delay
            st.echo_dup = dup
            on = delay > 0 or dup > 0
            st.echo_rng = random.Random(arg.get("seed", 0)) if on else None
        return 200, {"delay_ms": delay, "dup": dup}

    def send_webhook(self, body, headers, out):
        try:
            status, answer = post(self.server.opts.webhook_url, body, headers)
            out["status"], out["body"] = status, answer
        except (OSError, http.client.HTTPException) as e:
            out["error"] = "%s: %s" % (type(e).__name__, e)
        with self.server.state.lock:
            self.server.state.stats["webhooks_sent"] += 1
        return out

    def ctl_post_resend(self, arg, q):
        """Sends a webhook sent before again, byte for byte: a sender's retry."""
        delivery = str(arg["delivery_id"])
        with self.server.state.lock:
            sent = self.server.state.sent.get(delivery)
        if sent is None:
            return 404, {"error": "no webhook sent with delivery id %s" % delivery}
        if not self.server.opts.webhook_url:
            raise ValueError("no --webhook-url")
        body, headers = sent
        return 200, self.send_webhook(body, headers, {"delivery_id": delivery})

    def ctl_post_send_raw(self, arg, q):
        if not isinstance(arg, dict):
            raise ValueError('expected {"body": "...", "headers": {...}}')
        url = arg.get("url") or self.server.opts.webhook_url
        if not url:
            raise ValueError("no --webhook-url and no url given")
        body = arg.get("body", "")
        if not isinstance(body, str):
            body = json.dumps(body)
        headers = {str(k): str(v) for k, v in (arg.get("headers") or {}).items()}
        out = {"status": None, "body": None}
        try:
            out["status"], out["body"] = post(url, body.encode(), headers)
        except (OSError, http.client.HTTPException) as e:
            out["error"] = "%s: %s" % (type(e).__name__, e)
        with self.server.state.lock:
            self.server.state.stats["webhooks_sent"] += 1
        return 200, out


def parse_args(argv):
    p = argparse.ArgumentParser(description="scriptable REST target for concord tests")
    p.add_argument("--port", type=int, required=True, help="0 picks a free port")
    p.add_argument("--resource", default="contacts")
    p.add_argument("--id-prefix", default=None,
                   help="prefix of assigned ids (default: the resource's first letter)")
    p.add_argument("--token", default=None,
                   help="require exactly this Authorization header")
    p.add_argument("--idempotency-header", default=None,
                   help="a repeated POST with the same value of this header creates once")
    p.add_argument("--echo-url", default=None)
    p.add_argument("--webhook-url", default=None)
    p.add_argument("--webhook-secret", default=None)
    p.add_argument("--signature-header", default=None)
    p.add_argument("--timestamp-header", default=None)
    p.add_argument("--delivery-header", default=None)
    p.add_argument("--template", default="{body}")
    p.add_argument("--prefix", default="")
    p.add_argument("--envelope", default=None)
    p.add_argument("--event-key", default="event")
    p.add_argument("--event-prefix", default=None,
                   help="event names are PREFIX.created/updated/deleted "
                        "(default: the resource without a trailing s)")
    p.add_argument("--order-field", default="rev",
                   help="a numeric field that must never go down in the applied "
                        "writes of one record (GET /_sim/order_violations); "
                        "empty turns the check off")
    p.add_argument("--page-style", default="none", choices=PAGE_STYLES,
                   help="how GET /RESOURCE pages its answer (README.md, List reads)")
    p.add_argument("--page-size", type=int, default=100,
                   help="the page size when a read gives no limit")
    p.add_argument("--page-size-max", type=int, default=1000,
                   help="a larger limit is cut to this")
    p.add_argument("--verbose", action="store_true")
    opts = p.parse_args(argv)
    if opts.page_size < 1 or opts.page_size_max < 1:
        p.error("--page-size and --page-size-max must be >= 1")
    if opts.id_prefix is None:
        opts.id_prefix = opts.resource[:1] or "r"
    if opts.event_prefix is None:
        r = opts.resource
        opts.event_prefix = r[:-1] if r.endswith("s") and len(r) > 1 else r
    return opts


def main(argv):
    opts = parse_args(argv)
    state = State(opts)

    def hook(server):
        server.echoer = Echoer(opts.echo_url, state) if opts.echo_url else None

    return simbase.serve(opts, Handler, state, hook)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
