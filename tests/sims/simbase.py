#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Shared plumbing of the simulators (target.py, smartbill.py, oblio.py):
fault actions matched by method, path glob and connection reuse, the
request log, the /_sim/ control dispatch and the answer/fault/reset flow of
one API request, and the socket-level helpers (body reading, RST, peer
checks, post, Server) that stripe.py, hubspot.py, gcal.py and graph.py take
too.

A simulator subclasses State (its data; reset() clears it) and Handler
(handle_api() carries out one request; admit() may refuse a request before
anything else, as a rate limiter does; fault_answer() shapes the body of an
injected status; answered() runs once the answer is out). Control
endpoints are methods named ctl_<verb>_<name>, where <name> is the path
after /_sim/ with "/" turned into "_".

Standard library only.
"""

import copy
import datetime
import fnmatch
import http.client
import http.server
import io
import json
import random
import re
import select
import socket
import struct
import sys
import threading
import time
import traceback
import urllib.parse

sys.dont_write_bytecode = True  # leave no __pycache__ beside the sims

MAX_BODY = 16 * 1024 * 1024

RANDOM_KINDS = ("500", "502", "503", "504", "408", "429", "403", "reset_before", "lost",
                "slow", "slow_answer")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def is_date(s):
    """True for a real calendar date written YYYY-MM-DD (nothing else)."""
    if not isinstance(s, str) or not DATE_RE.match(s):
        return False
    try:
        datetime.date.fromisoformat(s)
    except ValueError:
        return False
    return True


def today():
    return datetime.date.today().isoformat()


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
    """Answer bytes as parsed JSON, else text; None when empty."""
    if not data:
        return None
    text = data.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


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


class Fault:
    """One scripted fault action:

    {"match": {"method": "POST", "path": "/api/docs/*", "path_prefix": "/api",
               "reused": true},
     "times": 1, "after": 0,
     "status": 503, "body": {...}, "headers": {...}, "retry_after": "2",
     "delay_ms": 3000, "apply": "first", "reset": "before" | "after",
     "close": "after"}

    match.path is a shell glob (fnmatch, case-sensitive) on the path without
    the query; path_prefix is a plain prefix; reused: true fits only a
    request that is not the first on its connection, false only the first;
    all optional."""

    def __init__(self, spec):
        if not isinstance(spec, dict):
            raise ValueError("a fault action is a JSON object")
        self.spec = copy.deepcopy(spec)
        self.match = spec.get("match") or {}
        if not isinstance(self.match, dict):
            raise ValueError("match must be an object")
        # A key not known here would match every request, silently.
        unknown = set(self.match) - {"method", "path", "path_prefix", "reused"}
        if unknown:
            raise ValueError("unknown match keys %s" % sorted(unknown))
        times = spec.get("times", 1)
        after = spec.get("after", 0)
        for name, v in (("times", times), ("after", after)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError("%s must be an integer >= 0" % name)
        if times < 1:
            raise ValueError("times must be >= 1")
        self.times = times
        self.after = after
        if spec.get("reset") not in (None, "before", "after"):
            raise ValueError('reset must be "before" or "after"')
        if spec.get("close") not in (None, "after"):
            raise ValueError('close must be "after"')
        if not any(k in spec for k in ("status", "reset", "delay_ms", "close")):
            raise ValueError("a fault needs status, reset, close or delay_ms")
        if not isinstance(self.match.get("reused", False), bool):
            raise ValueError("match.reused must be true or false")
        if spec.get("apply") not in (None, "first"):
            raise ValueError('apply must be "first"')
        if "status" in spec:
            int(spec["status"])
        if "delay_ms" in spec and float(spec["delay_ms"]) < 0:
            raise ValueError("delay_ms must be >= 0")

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

    def view(self):
        out = copy.deepcopy(self.spec)
        out["times_left"] = self.times
        out["after_left"] = self.after
        return out


class Faults:
    """The queue of scripted actions and the seeded random source. Every
    call is made under the simulator's lock."""

    default_kinds = ("503", "reset_before", "lost", "slow")  # POST /_sim/random without kinds

    def __init__(self):
        self.queue = []
        self.rng = None
        self.rate = 0.0
        self.kinds = []
        self.slow_ms = 1500
        self.retry_after = None

    def add(self, specs):
        if isinstance(specs, dict):
            specs = [specs]
        if not isinstance(specs, list):
            raise ValueError("expected a JSON list of fault actions")
        faults = [Fault(s) for s in specs]
        self.queue.extend(faults)
        return len(self.queue)

    def set_random(self, arg):
        kinds = list(arg.get("kinds") or self.default_kinds)
        bad = [k for k in kinds if k not in RANDOM_KINDS]
        if bad:
            raise ValueError("unknown fault kinds %s (known: %s)" % (bad, ", ".join(RANDOM_KINDS)))
        self.rate = float(arg.get("rate", 0))
        if not 0 <= self.rate <= 1:
            raise ValueError("rate must be within 0..1")
        self.kinds = kinds
        self.slow_ms = float(arg.get("slow_ms", 1500))
        self.retry_after = arg.get("retry_after")
        self.rng = random.Random(arg.get("seed", 0)) if self.rate > 0 else None
        return {"rate": self.rate, "kinds": self.kinds}

    def pick(self, method, path, reused=False):
        """The fault for this request, or None. Every queued action that
        matches and still has "after" left counts the request (and lets it
        pass); the first armed one that matches serves it. reused: the
        request is not the first on its connection."""
        chosen = None
        for f in self.queue:
            if not f.matches(method, path, reused):
                continue
            if f.after > 0:
                f.after -= 1
            elif chosen is None:
                chosen = f
        if chosen is not None:
            chosen.times -= 1
            if chosen.times <= 0:
                self.queue.remove(chosen)
            return copy.deepcopy(chosen.spec)
        if self.rng is not None and self.rate > 0 and self.kinds:
            if self.rng.random() < self.rate:
                return self.random_fault(self.rng.choice(self.kinds))
        return None

    def random_fault(self, kind):
        if kind.isdigit():
            f = {"status": int(kind), "random": True}
            ra = self.retry_after
            if ra is not None and kind in ("503", "429"):
                if isinstance(ra, list):
                    ra = self.rng.choice(ra) if ra else None
                if ra is not None:
                    f["retry_after"] = str(ra)
            return f
        return {"reset_before": {"reset": "before"}, "lost": {"reset": "after"},
                "slow": {"delay_ms": self.slow_ms},
                "slow_answer": {"delay_ms": self.slow_ms, "apply": "first"}}[kind]


class State:
    """What a simulator holds; every access goes through self.lock (an
    RLock, so helpers may take it again)."""

    def __init__(self, opts):
        self.opts = opts
        self.lock = threading.RLock()
        self.reset()

    def reset(self):
        self.log = []
        self.faults = Faults()
        self.stats = {"requests": 0, "status": {}, "faults": 0, "invalid": 0,
                      "unknown_fields": 0, "unauthorized": 0}

    def count(self, name, n=1):
        self.stats[name] = self.stats.get(name, 0) + n


def parse_json(raw):
    """(object, None) or (None, "why") for a request body (bytes)."""
    if not raw:
        return None, "empty body"
    try:
        return json.loads(raw.decode("utf-8")), None
    except (ValueError, UnicodeDecodeError) as e:
        return None, str(e)


def unknown_fields(obj, schema, path=""):
    """Keys of obj (recursively, through objects and arrays) that schema
    does not name. schema: a resolved JSON schema with "properties" and,
    for arrays, "items" (a schema, or an "anyOf" of object schemas)."""
    out = []
    if isinstance(obj, dict) and isinstance(schema, dict):
        props = schema.get("properties")
        if props is None and "anyOf" in schema:
            props = {}
            for s in schema["anyOf"]:
                props.update(s.get("properties") or {})
        if props is None:
            return out
        for k, v in obj.items():
            if k not in props:
                out.append(path + k)
            else:
                out += unknown_fields(v, props[k], path + k + ".")
    elif isinstance(obj, list) and isinstance(schema, dict) and "items" in schema:
        for i, v in enumerate(obj):
            out += unknown_fields(v, schema["items"], "%s%d." % (path, i))
    return out


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = -1
    sim_name = "sim"

    # How send_answer() writes JSON: as the simulated API does.
    json_ascii = False
    json_ctype = "application/json;charset=UTF-8"

    def version_string(self):
        return "nginx"

    def handle_expect_100(self):
        # With a buffered wfile the "100 Continue" must be pushed out, or a
        # client such as libcurl waits a second before sending its body.
        ok = http.server.BaseHTTPRequestHandler.handle_expect_100(self)
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

    # --- socket-level helpers ------------------------------------------------

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

    def log_message(self, fmt, *args):
        if self.server.opts.verbose:
            sys.stderr.write("%s %d: %s\n" % (self.sim_name, self.server.opts.port, fmt % args))

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def dispatch(self):
        split = urllib.parse.urlsplit(self.path)
        if split.path.startswith("/_sim/"):
            self.control(split)
        else:
            self.conn_requests += 1
            self.api_request(split)

    def send_answer(self, status, obj, headers=None, ctype=None):
        """obj: JSON-able (sent as compact JSON), bytes, str, or None."""
        if obj is None:
            data = b""
        elif isinstance(obj, bytes):
            data = obj
        elif isinstance(obj, str):
            data = obj.encode()
        else:
            data = json.dumps(obj, ensure_ascii=self.json_ascii).encode()
        self.send_response(status)
        if data:
            if ctype is None:
                ctype = "text/plain; charset=utf-8" if isinstance(obj, (str, bytes)) \
                    else self.json_ctype
            self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    # --- hooks -----------------------------------------------------------

    def admit(self, entry, split):
        """Called under the lock when a request arrives, before faults.
        None lets it in; (status, body, headers) refuses it."""
        return None

    def fault_answer(self, status):
        """(body, content type or None) of an injected status without a body."""
        return {"error": "injected %d" % status}, None

    def extra_headers(self):
        """Headers added to every API answer (refusals and faults too)."""
        return {}

    def handle_api(self, method, split, raw, entry):
        """Carries out one API request. Returns (status, body, headers,
        applied); body as send_answer takes it. Called without the lock."""
        raise NotImplementedError

    def answered(self):
        """Called once the answer to an API request that handle_api()
        carried out is sent or dropped."""

    def mark_invalid(self, entry, why):
        """Records that a request is malformed (against the spec)."""
        st = self.server.state
        with st.lock:
            entry["invalid"] = why if isinstance(why, list) else [str(why)]
            st.count("invalid")

    def mark_unknown(self, entry, names):
        if not names:
            return
        st = self.server.state
        with st.lock:
            entry["unknown_fields"] = list(names)
            st.count("unknown_fields")

    # --- one API request ------------------------------------------------

    def api_request(self, split):
        st = self.server.state
        method = self.command
        with st.lock:
            st.count("requests")
            entry = {"seq": len(st.log) + 1, "time": time.time(), "conn": self.conn_no,
                     "method": method, "path": self.path,
                     "headers": {k.lower(): v for k, v in self.headers.items()},
                     "body": None, "status": None, "applied": False, "invalid": None}
            st.log.append(entry)
            refused = self.admit(entry, split)
            fault = None if refused else st.faults.pick(method, split.path,
                                                        self.conn_requests > 1)
            if fault:
                st.count("faults")
                entry["fault"] = fault

        def finish(status, applied=None):
            with st.lock:
                entry["status"] = status
                if applied is not None:
                    entry["applied"] = applied
                k = str(status)
                st.stats["status"][k] = st.stats["status"].get(k, 0) + 1

        if fault and fault.get("reset") == "before" and not fault.get("delay_ms"):
            finish("reset", False)
            self.reset_connection()
            return
        try:
            raw = self.read_body()
        except (ValueError, OSError):
            finish(400, False)
            self.close_connection = True
            self.send_answer(400, {"error": "unreadable request body"})
            return
        with st.lock:
            if raw:
                body, err = parse_json(raw)
                entry["body"] = body if err is None else raw.decode("utf-8", "replace")
        hdrs = self.extra_headers()
        if refused:
            status, obj, extra = refused
            hdrs.update(extra or {})
            finish(status, False)
            self.send_answer(status, obj, hdrs)
            return

        gone = False
        late = bool(fault and fault.get("apply") == "first")
        if fault and fault.get("delay_ms") and not late:
            time.sleep(float(fault["delay_ms"]) / 1000.0)
            gone = self.peer_gone()
        if fault and fault.get("reset") == "before":
            finish("reset", False)
            self.reset_connection()
            return
        if fault and "status" in fault and not late:
            status = int(fault["status"])
            if fault.get("retry_after") is not None:
                hdrs["Retry-After"] = str(fault["retry_after"])
            for k, v in (fault.get("headers") or {}).items():
                hdrs[k] = str(v)
            if "body" in fault:
                obj, ctype = fault["body"], None
            else:
                obj, ctype = self.fault_answer(status)
            if gone:
                finish("timeout", False)
                self.close_connection = True
                return
            finish(status, False)
            self.send_answer(status, obj, hdrs, ctype)
            return

        self.answer_ctype = None
        try:
            status, obj, more, applied = self.handle_api(method, split, raw, entry)
        except Exception as e:  # noqa: BLE001 - a sim bug must show, not hang the client
            traceback.print_exc()
            status, obj, more, applied = 500, {"error": "simulator bug: %s" % e}, {}, False
        hdrs.update(more or {})
        if late and "status" in fault:
            # Applied, then failed: a server error after the write was made.
            status, obj, ctype = int(fault["status"]), None, None
            if "body" in fault:
                obj = fault["body"]
            else:
                obj, ctype = self.fault_answer(status)
            self.answer_ctype = ctype
            for k, v in (fault.get("headers") or {}).items():
                hdrs[k] = str(v)
        try:
            if (self.answer_end(fault, late, gone, finish, status, obj, hdrs, applied,
                                self.answer_ctype)
                    and fault and fault.get("close") == "after"):
                # Closed as an idle timeout would close it: the answer
                # said nothing of it (no "Connection: close").
                self.close_connection = True
        finally:
            self.answered()

    def answer_end(self, fault, late, gone, finish, status, obj, hdrs, applied, *ctype):
        """How every sim ends an applied request under its fault: a late
        delay (applied on arrival, only the answer slow), a reset after it
        ("lost"), a client that gave up meanwhile ("timeout"), or the
        answer. Returns True when the answer went out. gcal.py, hubspot.py
        and stripe.py borrow it."""
        if late and fault.get("delay_ms"):
            time.sleep(float(fault["delay_ms"]) / 1000.0)
            gone = self.peer_gone()
        if fault and fault.get("reset") == "after":
            finish("lost", applied)
            self.reset_connection()
            return False
        if gone:
            finish("timeout", applied)
            self.close_connection = True
            return False
        finish(status, applied)
        try:
            self.send_answer(status, obj, hdrs, *ctype)
        except OSError:
            pass
        return True

    # --- the control API ------------------------------------------------

    def control(self, split):
        name = split.path[len("/_sim/"):].strip("/").replace("/", "_")
        try:
            raw = self.read_body()
            arg = json.loads(raw) if raw else None
        except ValueError as e:
            self.send_answer(400, {"error": "bad control request: %s" % e})
            return
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(split.query).items()}
        fn = getattr(self, "ctl_%s_%s" % (self.command.lower(), name), None)
        if fn is None:
            self.send_answer(404, {"error": "no control endpoint %s %s" % (self.command, name)})
            return
        try:
            status, obj = fn(arg if arg is not None else {}, q)
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            status, obj = 400, {"error": "bad control request: %s: %s" % (type(e).__name__, e)}
        self.send_answer(status, obj)

    def ctl_get_requests(self, arg, q):
        """?since=SEQ, ?invalid=1 (only malformed ones), ?method=, ?path=GLOB."""
        since = int(q.get("since", "0"))
        st = self.server.state
        with st.lock:
            out = [copy.deepcopy(e) for e in st.log if e["seq"] > since]
        if q.get("invalid") == "1":
            out = [e for e in out if e.get("invalid")]
        if q.get("method"):
            out = [e for e in out if e["method"] == q["method"].upper()]
        if q.get("path"):
            out = [e for e in out if fnmatch.fnmatchcase(e["path"].split("?")[0], q["path"])]
        return 200, out

    def ctl_get_stats(self, arg, q):
        st = self.server.state
        with st.lock:
            out = copy.deepcopy(st.stats)
            out["faults_queued"] = len(st.faults.queue)
            self.more_stats(out)
        return 200, out

    def more_stats(self, out):
        """Adds the simulator's own counters (called under the lock)."""

    def ctl_get_faults(self, arg, q):
        st = self.server.state
        with st.lock:
            return 200, [f.view() for f in st.faults.queue]

    def ctl_post_faults(self, arg, q):
        st = self.server.state
        with st.lock:
            return 200, {"queued": st.faults.add(arg)}

    def ctl_post_random(self, arg, q):
        st = self.server.state
        with st.lock:
            return 200, st.faults.set_random(arg)

    def ctl_post_reset(self, arg, q):
        st = self.server.state
        with st.lock:
            st.reset()
        return 200, {"status": "reset"}


def serve(opts, handler, state, ready_hook=None):
    """Listens on 127.0.0.1:opts.port, prints "ready PORT", serves forever."""
    server = Server(("127.0.0.1", opts.port), handler)
    opts.port = server.server_address[1]
    server.opts = opts
    server.state = state
    if ready_hook is not None:
        ready_hook(server)
    sys.stdout.write("ready %d\n" % opts.port)
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    return 0
