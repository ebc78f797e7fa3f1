#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A scriptable REST system on 127.0.0.1 with fault injection.

One process simulates one external system: a JSON resource with create,
update, read and delete, a log of every request it received, faults that a
test queues or draws from a seeded random source, webhooks that it sends to
concord as if a person changed a record, and echo webhooks that it sends after
concord wrote to it. The control API lives under /_sim/; it is never logged
and never faulted. tests/sims/README.md lists every option and endpoint.

Standard library only. Prints "ready PORT" on stdout once it listens.
"""

import argparse
import base64
import fnmatch
import hashlib
import hmac
import http.client
import http.server
import io
import json
import queue
import random
import re
import select
import socket
import struct
import sys
import threading
import time
import urllib.parse
import uuid

MAX_BODY = 16 * 1024 * 1024

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


def post(url, body_bytes, headers, timeout=10.0):
    """POSTs to url; returns (status, parsed JSON or text). Raises OSError or
    http.client.HTTPException when the connection fails."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        path = u.path or "/"
        if u.query:
            path += "?" + u.query
        conn.request("POST", path, body=body_bytes, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, decode_body(data)
    finally:
        conn.close()


def decode_body(data):
    if not data:
        return None
    text = data.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


class Fault:
    """One fault action; see README.md for the keys."""

    def __init__(self, spec):
        if not isinstance(spec, dict):
            raise ValueError("a fault action is a JSON object")
        self.spec = spec
        self.match = spec.get("match") or {}
        self.times = int(spec.get("times", 1))
        after = spec.get("after", 0)
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise ValueError("after must be an integer >= 0")
        self.after = after  # matching requests still to let pass
        if not isinstance(self.match, dict):
            raise ValueError("match must be an object")
        # A key not known here would match every request, silently.
        unknown = set(self.match) - {"method", "path", "path_prefix", "reused"}
        if unknown:
            raise ValueError("unknown match keys %s" % sorted(unknown))
        reset = spec.get("reset")
        if reset not in (None, "before", "after"):
            raise ValueError('reset must be "before" or "after"')
        if spec.get("close") not in (None, "after"):
            raise ValueError('close must be "after"')
        if ("status" not in spec and reset is None and "delay_ms" not in spec
                and "close" not in spec):
            raise ValueError("a fault needs status, reset, close or delay_ms")
        if spec.get("apply") not in (None, "first"):
            raise ValueError('apply must be "first"')
        if not isinstance(self.match.get("reused", False), bool):
            raise ValueError("match.reused must be true or false")

    def matches(self, method, path, reused=False):
        m = self.match.get("method")
        if m and m.upper() != method:
            return False
        p = self.match.get("path_prefix")
        if p and not path.startswith(p):
            return False
        g = self.match.get("path")
        if g and not fnmatch.fnmatchcase(path, g):
            return False
        if "reused" in self.match and self.match["reused"] != reused:
            return False
        return True


class State:
    """Everything the simulator holds; every access goes through self.lock."""

    def __init__(self, opts):
        self.opts = opts
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.records = {}  # id -> record, in creation order
        self.log = []
        self.faults = []
        self.rng = None
        self.rate = 0.0
        self.kinds = []
        self.slow_ms = 1500
        self.random_retry_after = None
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
        self.stats = {
            "requests": 0,
            "creates": 0,
            "updates": 0,
            "deletes": 0,
            "status": {},
            "faults": 0,
            "echo_sent": 0,
            "echo_failed": 0,
            "echo_dups": 0,
            "announced": 0,
            "webhooks_sent": 0,
            "list_reads": 0,
            "in_progress": 0,  # REST requests being carried out now
            "max_concurrent": 0,  # the most carried out at once
        }

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

    def pick_fault(self, method, path, reused=False):
        """Returns the fault for this request, or None. Called under lock.
        Every queued action with "after" left that matches counts the request
        (and does not serve it); the first armed one that matches serves it.
        reused: the request is not the first on its connection."""
        chosen = None
        for f in self.faults:
            if not f.matches(method, path, reused):
                continue
            if f.after > 0:
                f.after -= 1
            elif chosen is None:
                chosen = f
        if chosen is not None:
            chosen.times -= 1
            if chosen.times <= 0:
                self.faults.remove(chosen)
            return dict(chosen.spec)
        if self.rng is not None and self.rate > 0 and self.kinds:
            if self.rng.random() < self.rate:
                kind = self.rng.choice(self.kinds)
                return self.random_fault(kind)
        return None

    def random_fault(self, kind):
        if kind in ("503", "429", "500", "502", "504", "408"):
            f = {"status": int(kind), "body": {"error": "random %s" % kind}}
            ra = self.random_retry_after
            if ra is not None and kind in ("503", "429"):
                if isinstance(ra, list):
                    ra = self.rng.choice(ra) if ra else None
                if ra is not None:
                    f["retry_after"] = str(ra)
            return f
        if kind == "reset_before":
            return {"reset": "before"}
        if kind == "lost":
            return {"reset": "after"}
        if kind == "slow":
            return {"delay_ms": self.slow_ms}
        if kind == "slow_answer":
            return {"delay_ms": self.slow_ms, "apply": "first"}
        return None


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


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "concord-sim/1"
    # Headers and body leave in one segment: with Nagle on, a client's
    # delayed ACK would add 40 ms to every answer.
    disable_nagle_algorithm = True
    wbufsize = -1

    def handle_expect_100(self):
        # With a buffered wfile the "100 Continue" must be pushed out, or a
        # client such as libcurl waits a second before sending its body.
        ok = super().handle_expect_100()
        self.wfile.flush()
        return ok

    def setup(self):
        # Once per TCP connection: number it, so the log shows which
        # requests shared a kept-alive connection.
        super().setup()
        with self.server.conn_lock:
            self.server.conn_count += 1
            self.conn_no = self.server.conn_count
        self.conn_requests = 0

    def log_message(self, fmt, *args):
        if self.server.opts.verbose:
            sys.stderr.write("sim %d: %s\n" % (self.server.opts.port, fmt % args))

    # --- plumbing -----------------------------------------------------------

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_PATCH(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            out = b""
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                if len(out) + size > MAX_BODY:
                    raise ValueError("body too large")
                out += self.rfile.read(size)
                self.rfile.readline(1024)
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0 or n > MAX_BODY:
            raise ValueError("bad Content-Length")
        return self.rfile.read(n) if n else b""

    def send_json(self, status, obj, extra_headers=None):
        data = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(status)
        if obj is not None:
            self.send_header("Content-Type", "application/json")
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)
        self.wfile.flush()

    def reset_connection(self):
        """Drops the connection with an RST: SO_LINGER 0, then close. The
        handler's files hold references to the socket, so they go first."""
        self.close_connection = True
        try:
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
        except OSError:
            pass
        for f in (self.rfile, self.wfile):
            try:
                f.close()
            except (OSError, ValueError):
                pass
        try:
            self.connection.close()
        except OSError:
            pass
        # BaseHTTPRequestHandler flushes and closes these after we return.
        self.rfile, self.wfile = io.BytesIO(), io.BytesIO()

    def peer_gone(self):
        """True when the client has closed its end (it timed out while we
        slept). Only meaningful when no further request is pipelined."""
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            if not r:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def dispatch(self):
        split = urllib.parse.urlsplit(self.path)
        if split.path.startswith("/_sim/"):
            self.control(split)
        else:
            self.rest(split)

    # --- the REST resource --------------------------------------------------

    def rest(self, split):
        """One REST request. A create carrying an idempotency key holds the
        key while it is carried out (slow faults included): as Stripe does,
        a second request with the key meanwhile gets 409."""
        st = self.server.state
        self.conn_requests += 1
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
                self.send_json(409, {"error": {
                    "type": "idempotency_error", "code": "idempotency_key_in_use",
                    "message": "There is currently another in-progress request using "
                               "this Idempotency Key."}})
                return
        with st.lock:
            st.stats["in_progress"] += 1
            st.stats["max_concurrent"] = max(st.stats["max_concurrent"], st.stats["in_progress"])
        try:
            self.rest_request(split)
        finally:
            with st.lock:
                st.stats["in_progress"] -= 1
                if key:
                    st.idem_busy.discard(key)

    def rest_request(self, split):
        st = self.server.state
        opts = self.server.opts
        method = self.command
        path = split.path
        headers = {k.lower(): v for k, v in self.headers.items()}
        with st.lock:
            st.stats["requests"] += 1
            entry = {
                "seq": len(st.log) + 1,
                "time": time.time(),
                "conn": self.conn_no,
                "method": method,
                "path": self.path,
                "headers": headers,
                "body": None,
                "status": None,
                "applied": False,
            }
            st.log.append(entry)
            if method == "GET" and [p for p in path.split("/") if p] == [opts.resource]:
                st.stats["list_reads"] += 1
            fault = st.pick_fault(method, path, self.conn_requests > 1)
            if fault:
                st.stats["faults"] += 1
                entry["fault"] = fault

        def finish(status, applied=None):
            with st.lock:
                entry["status"] = status
                if applied is not None:
                    entry["applied"] = applied
                key = str(status)
                st.stats["status"][key] = st.stats["status"].get(key, 0) + 1

        if fault and fault.get("reset") == "before" and not fault.get("delay_ms"):
            finish("reset", False)
            self.reset_connection()
            return
        try:
            raw = self.read_body()
        except (ValueError, OSError):
            finish(400, False)
            self.send_json(400, {"error": "unreadable request body"})
            self.close_connection = True
            return
        body = None
        parse_error = None
        if raw:
            text = raw.decode("utf-8", "replace")
            try:
                body = json.loads(text)
            except ValueError as e:
                body = text
                parse_error = str(e)
        with st.lock:
            entry["body"] = body

        gone = False
        late = bool(fault and fault.get("apply") == "first")
        if fault and fault.get("delay_ms") and not late:
            time.sleep(float(fault["delay_ms"]) / 1000.0)
            gone = self.peer_gone()
        if fault and fault.get("reset") == "before":
            finish("reset", False)
            self.reset_connection()
            return
        if fault and "status" in fault:
            status = int(fault["status"])
            extra = {}
            if fault.get("retry_after") is not None:
                extra["Retry-After"] = str(fault["retry_after"])
            for k, v in (fault.get("headers") or {}).items():
                extra[k] = str(v)
            obj = fault.get("body", {"error": "injected %d" % status})
            if gone:
                finish("timeout", False)
                self.close_connection = True
                return
            finish(status, False)
            self.send_json(status, obj, extra)
            return

        if opts.token is not None and self.headers.get("Authorization") != opts.token:
            finish(401, False)
            self.send_json(401, {"error": "missing or wrong Authorization"})
            return
        if method in ("POST", "PUT", "PATCH"):
            if parse_error is not None or not isinstance(body, dict):
                finish(400, False)
                why = parse_error or "the body must be a JSON object"
                self.send_json(400, {"error": "malformed JSON body: " + why})
                return

        self.answer_headers = None
        status, obj, event, record = self.apply(method, split, body, entry["seq"])
        applied = event is not None
        # The echo takes its place in the queue now, in the order of the
        # writes (two requests' threads may answer in either order), and
        # leaves once the answer is out.
        ready = None
        if applied and self.server.echoer is not None:
            ready = threading.Event()
            self.server.echoer.send(event, record, ready)
        try:
            if late and fault.get("delay_ms"):
                # Applied on arrival; only the answer is slow.
                time.sleep(float(fault["delay_ms"]) / 1000.0)
                gone = self.peer_gone()
            if fault and fault.get("reset") == "after":
                finish("lost", applied)
                self.reset_connection()
            elif gone:
                finish("timeout", applied)
                self.close_connection = True
            else:
                finish(status, applied)
                try:
                    self.send_json(status, obj, self.answer_headers)
                except OSError:
                    pass
                if fault and fault.get("close") == "after":
                    # Closed as an idle timeout would close it: the answer
                    # said nothing of it (no "Connection: close").
                    self.close_connection = True
        finally:
            if ready is not None:
                ready.set()

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

    # --- the control API ----------------------------------------------------

    def control(self, split):
        st = self.server.state
        name = split.path[len("/_sim/"):]
        try:
            raw = self.read_body()
            arg = json.loads(raw) if raw else None
        except ValueError as e:
            self.send_json(400, {"error": "bad control request: %s" % e})
            return
        q = urllib.parse.parse_qs(split.query)
        try:
            fn = getattr(self, "ctl_%s_%s" % (self.command.lower(), name), None)
            if fn is None:
                self.send_json(404, {"error": "no control endpoint %s %s" % (self.command, name)})
                return
            status, obj = fn(arg, q)
        except (ValueError, TypeError, KeyError) as e:
            status, obj = 400, {"error": "bad control request: %s" % e}
        self.send_json(status, obj)

    def ctl_get_requests(self, arg, q):
        since = int(q.get("since", ["0"])[-1])
        with self.server.state.lock:
            return 200, [dict(e) for e in self.server.state.log if e["seq"] > since]

    def ctl_get_records(self, arg, q):
        with self.server.state.lock:
            return 200, dict(self.server.state.records)

    def ctl_get_order_violations(self, arg, q):
        with self.server.state.lock:
            return 200, [dict(v) for v in self.server.state.violations]

    def ctl_get_stats(self, arg, q):
        st = self.server.state
        with st.lock:
            out = json.loads(json.dumps(st.stats))
            out["records"] = len(st.records)
            out["faults_queued"] = len(st.faults)
            out["order_violations"] = len(st.violations)
            out["echo_pending"] = st.echo_pending
            return 200, out

    def ctl_post_reset(self, arg, q):
        with self.server.state.lock:
            self.server.state.reset()
        return 200, {"status": "reset"}

    def ctl_post_faults(self, arg, q):
        if isinstance(arg, dict):
            arg = [arg]
        if not isinstance(arg, list):
            raise ValueError("expected a JSON list of fault actions")
        faults = [Fault(a) for a in arg]
        with self.server.state.lock:
            self.server.state.faults.extend(faults)
            n = len(self.server.state.faults)
        return 200, {"queued": n}

    def ctl_post_random(self, arg, q):
        arg = arg or {}
        kinds = list(arg.get("kinds") or ["503", "429", "reset_before", "lost", "slow"])
        known = {"503", "429", "500", "502", "504", "408", "reset_before", "lost", "slow",
                 "slow_answer"}
        bad = [k for k in kinds if k not in known]
        if bad:
            raise ValueError("unknown fault kinds %s" % bad)
        st = self.server.state
        with st.lock:
            st.rate = float(arg.get("rate", 0))
            st.kinds = kinds
            st.slow_ms = int(arg.get("slow_ms", 1500))
            st.random_retry_after = arg.get("retry_after")
            st.rng = random.Random(arg.get("seed", 0)) if st.rate > 0 else None
        return 200, {"rate": st.rate}

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


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.conn_lock = threading.Lock()
        self.conn_count = 0  # TCP connections accepted since the start (a reset keeps it)

    def handle_error(self, request, client_address):
        # A client that vanished mid-answer is an expected event here.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, BrokenPipeError, TimeoutError)):
            return
        super().handle_error(request, client_address)


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
    server = Server(("127.0.0.1", opts.port), Handler)
    opts.port = server.server_address[1]
    server.opts = opts
    server.state = State(opts)
    server.echoer = Echoer(opts.echo_url, server.state) if opts.echo_url else None
    sys.stdout.write("ready %d\n" % opts.port)
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
