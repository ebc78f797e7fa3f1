# SPDX-License-Identifier: MIT
"""The library every e2e test uses: simulators, the concord daemon, polling,
signing, and a tiny runner.

A test file is a list of functions named test_*; it ends with

    if __name__ == "__main__":
        harness.run_tests(globals())

Every Sim, Listener and Concord made while a test runs is stopped when the
test ends (harness.cleanup(obj) registers anything else with a .stop()).
Nothing waits with a fixed sleep: wait_until() polls a condition with a
deadline.

Ports: sims and Listeners bind port 0 and report theirs. A port a test must
know before its daemon starts (concord's, written into the sims' webhook
URLs) comes from free_port(): outside the kernel's ephemeral range, so no
outgoing connection can take it, and locked per process, so no parallel test
process is given it too. Concord.start() retries with a fresh port if a port
it picked itself was taken anyway; Concord(..., values={"port": p}) raises
PortTaken instead.

Environment: CONCORD_BIN (default build/dev/concord in the repo),
CONCORD_TEST_SEED (the seed of random tests), CONCORD_KEEP_TMP=1 (keep the
temp directories of passing tests too). Standard library only.
"""

import ctypes
import fcntl
import hashlib
import hmac
import http.client
import http.server
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

REPO = os.environ.get("CONCORD_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)
TARGET = os.path.join(REPO, "tests", "sims", "target.py")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def concord_bin():
    """The concord binary: $CONCORD_BIN, else build/dev/concord in the repo."""
    b = os.environ.get("CONCORD_BIN") or os.path.join(REPO, "build", "dev", "concord")
    return os.path.abspath(b)


# --- small helpers ---------------------------------------------------------


# Ports for daemons the tests start come from a band outside the kernel's
# ephemeral range: a port from there (what binding port 0 gives) may be taken
# at any moment by any outgoing connection of a test running beside this one,
# between the pick and the daemon's bind. Each process walks the band from a
# random start, and holds a lock on each port it hands out (a one-byte
# record lock at that offset of PORT_LOCKS, released by the kernel when the
# process exits), so that parallel test processes never hand out the same one.
PORT_BAND = (20000, 32000)
PORT_LOCKS = os.path.join(tempfile.gettempdir(), "concord-test-ports.lock")
_ports = {"lock": threading.Lock(), "band": None, "next": 0, "fd": None}


def _port_band():
    """[lo, hi) of PORT_BAND below the ephemeral range, else a band above it;
    None when neither leaves 1000 ports (then free_port() binds port 0)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            eph_lo, eph_hi = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        eph_lo, eph_hi = 32768, 60999
    for lo, hi in ((PORT_BAND[0], min(PORT_BAND[1], eph_lo)), (max(eph_hi + 1, 1024), 65536)):
        if hi - lo >= 1000:
            return lo, hi
    return None


def _lock_port(fd, port):
    """True if this process now holds port's lock (or no lock file could be
    opened: then the bind check alone guards it)."""
    if fd is None:
        return True
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, port)
        return True
    except OSError:
        return False


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now, outside
    the ephemeral range, and that no other test process has been given (see
    PORT_BAND). Calls in one process return different ports."""
    with _ports["lock"]:
        if _ports["band"] is None:
            _ports["band"] = _port_band() or (0, 0)
            lo, hi = _ports["band"]
            # Not the random module's: a test may seed that, in two processes alike.
            _ports["next"] = random.SystemRandom().randrange(hi - lo) if hi > lo else 0
            try:
                _ports["fd"] = os.open(PORT_LOCKS, os.O_RDWR | os.O_CREAT, 0o666)
                os.chmod(PORT_LOCKS, 0o666)  # for other users too; fails unless ours
            except OSError:
                pass
        lo, hi = _ports["band"]
        for _ in range(hi - lo):
            port = lo + _ports["next"] % (hi - lo)
            _ports["next"] += 1
            if not _lock_port(_ports["fd"], port):
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue  # listened on, or in TIME_WAIT; the lock stays: skip it
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(cond, timeout=10, what="the condition"):
    """Polls cond() every 20 ms; returns its first truthy value, or raises
    AssertionError naming `what` after `timeout` seconds. An exception raised
    by cond() counts as "not yet" (the last one is reported)."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = cond()
            if v:
                return v
            last_exc = None
        except Exception as e:  # noqa: BLE001 - a probe may fail while starting
            last_exc = e
        if time.monotonic() >= deadline:
            msg = "timed out after %gs waiting for %s" % (timeout, what)
            if last_exc is not None:
                msg += " (last error: %s: %s)" % (type(last_exc).__name__, last_exc)
            raise AssertionError(msg)
        time.sleep(0.02)


def sign_hmac(secret, body_bytes, timestamp=None, template="{body}", prefix=""):
    """prefix + hex(HMAC-SHA256(secret, template)), with {timestamp} and
    {body} in template replaced in one pass. timestamp None means now (Unix
    seconds); pass the same value you put in the timestamp header."""
    if timestamp is None:
        timestamp = int(time.time())
    if isinstance(body_bytes, str):
        body_bytes = body_bytes.encode()
    ts = str(timestamp).encode()

    def sub(m):
        return ts if m.group(1) == b"timestamp" else body_bytes

    msg = re.sub(rb"\{(timestamp|body)\}", sub, template.encode())
    if isinstance(secret, str):
        secret = secret.encode()
    return prefix + hmac.new(secret, msg, hashlib.sha256).hexdigest()


def header(request, name):
    """The value of header `name` in a sim request log entry (the sim stores
    header names in lower case), or None."""
    return request["headers"].get(name.lower())


def http_request(port, method, path, body=None, headers=None, timeout=10, host="127.0.0.1"):
    """One HTTP request. body may be bytes, str, or a JSON-able object (sent
    as JSON). Returns (status, parsed JSON or text or None, headers with
    lower-case names). Connection failures raise OSError or
    http.client.HTTPException."""
    headers = dict(headers or {})
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        headers.setdefault("Content-Type", "application/json")
    if isinstance(body, str):
        body = body.encode()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        return resp.status, _decode(data), hdrs
    finally:
        conn.close()


def _decode(data):
    if not data:
        return None
    text = data.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _die_with_parent():
    # Runs in the child between fork and exec: if the test process dies, its
    # simulators and daemons get SIGTERM instead of lingering on their ports.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _tail(path, n=60):
    try:
        with open(path, "r", errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


# --- per-test cleanup ------------------------------------------------------

_current = None  # the running test's cleanup list, or None between tests


def cleanup(obj):
    """Registers obj (anything with .stop()) to be stopped when the current
    test ends, in reverse order of registration. Returns obj. Outside a test
    (e.g. in the demo) it does nothing."""
    if _current is not None and not any(o is obj for o in _current):
        _current.append(obj)
    return obj


def seed(name="seed"):
    """The seed of a random test: $CONCORD_TEST_SEED if set, else a fresh
    one. Printed so that a failing run can be replayed."""
    env = os.environ.get("CONCORD_TEST_SEED")
    s = int(env) if env else random.randrange(1, 2**31)
    print("  %s = %d (replay with CONCORD_TEST_SEED=%d)" % (name, s, s), flush=True)
    return s


# --- the simulator ---------------------------------------------------------


class Sim:
    """tests/sims/target.py in a subprocess. Keyword arguments become its
    flags: Sim(resource="customers", webhook_url=..., token="Bearer t")
    runs `target.py --resource customers --webhook-url ... --token ...`
    (True gives a bare flag, None/False leaves it out). port=0, the default,
    lets the sim pick a free port; .port tells which."""

    def __init__(self, port=0, start=True, **flags):
        self.port = port
        self.flags = flags
        self.proc = None
        cleanup(self)
        if start:
            self.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        args = [PYTHON, TARGET, "--port", str(self.port)]
        for k, v in self.flags.items():
            if v is None or v is False:
                continue
            args.append("--" + k.replace("_", "-"))
            if v is not True:
                args.append(str(v))
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        line = [None]

        def read():
            line[0] = self.proc.stdout.readline().decode()

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(10)
        m = re.match(r"ready (\d+)", line[0] or "")
        if not m:
            self.stop()
            raise AssertionError(
                "sim %s did not start (said %r)" % (" ".join(args[1:]), line[0])
            )
        self.port = int(m.group(1))
        return self

    def stop(self):
        """Terminates the sim; returns its exit code (None if not running)."""
        if self.proc is None:
            return None
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        p.stdout.close()
        return p.returncode

    def _ctl(self, method, name, arg=None):
        status, body, _ = http_request(self.port, method, "/_sim/" + name, arg)
        if status != 200:
            raise AssertionError("sim %s %s answered %d: %r" % (method, name, status, body))
        return body

    def rest(self, method, path, body=None, headers=None, timeout=10):
        """A REST request to the sim itself: (status, body, headers)."""
        return http_request(self.port, method, path, body, headers, timeout)

    def requests(self, method=None, path_prefix=None, since=0):
        """The request log, a list of dicts (seq, time, method, path,
        headers, body, status, applied, and fault when one was injected),
        optionally filtered."""
        out = self._ctl("GET", "requests?since=%d" % since)
        return [
            r for r in out
            if (method is None or r["method"] == method)
            and (path_prefix is None or r["path"].startswith(path_prefix))
        ]

    def writes(self):
        """Logged POST/PUT/PATCH/DELETE requests that the sim applied."""
        return [r for r in self.requests()
                if r["method"] in ("POST", "PUT", "PATCH", "DELETE") and r["applied"]]

    def records(self):
        """{id: record} of everything the sim holds."""
        return self._ctl("GET", "records")

    def reset(self):
        return self._ctl("POST", "reset")

    def faults(self, actions):
        """Appends fault actions to the sim's queue (see tests/sims/README.md)."""
        return self._ctl("POST", "faults", list(actions))

    def random(self, seed, rate, kinds=None, slow_ms=None, retry_after=None):
        """Seeded random faults on REST requests; rate 0 turns them off."""
        arg = {"seed": seed, "rate": rate}
        if kinds is not None:
            arg["kinds"] = list(kinds)
        if slow_ms is not None:
            arg["slow_ms"] = slow_ms
        if retry_after is not None:
            arg["retry_after"] = retry_after
        return self._ctl("POST", "random", arg)

    def stats(self):
        return self._ctl("GET", "stats")

    def order_violations(self):
        """Applied writes whose order field (--order-field, default "rev")
        is lower than one applied to the same record before: a list of
        {id, method, seq, FIELD, after, after_seq}."""
        return self._ctl("GET", "order_violations")

    def change(self, id, record, event=None, delivery_id=None, send=True):
        """A person edits record `id` here (merged into what the sim holds);
        the sim sends concord its webhook. Returns {"status", "body",
        "delivery_id", "event", "record"}: status is None without
        --webhook-url or with send=False, and "error" says why when concord
        could not be reached."""
        arg = {"id": id, "record": record, "send": send}
        if event is not None:
            arg["event"] = event
        if delivery_id is not None:
            arg["delivery_id"] = delivery_id
        return self._ctl("POST", "change", arg)

    def delete(self, id, event=None, delivery_id=None):
        """A person deletes record `id` here; the sim sends the webhook."""
        arg = {"id": id}
        if event is not None:
            arg["event"] = event
        if delivery_id is not None:
            arg["delivery_id"] = delivery_id
        return self._ctl("POST", "delete", arg)

    def resend(self, delivery_id):
        """Sends the webhook of delivery_id again, byte for byte."""
        return self._ctl("POST", "resend", {"delivery_id": delivery_id})

    def send_raw(self, body, headers=None, url=None):
        """Sends an arbitrary webhook; returns {"status", "body"}."""
        arg = {"body": body, "headers": headers or {}}
        if url is not None:
            arg["url"] = url
        return self._ctl("POST", "send_raw", arg)

    def put(self, id, record, updated_at=None):
        """Stores (or replaces) record `id` quietly: no webhook, no echo.
        updated_at (int ms) forces its timestamp, which may repeat one or
        be older than one already read; later stamps stay above it.
        Returns the stored record."""
        arg = {"id": id, "record": record}
        if updated_at is not None:
            arg["updated_at"] = updated_at
        return self._ctl("POST", "put", arg)["record"]

    def expire_tokens(self):
        """Every sync token issued so far answers 410 from now on."""
        return self._ctl("POST", "expire_tokens", {})


class Listener:
    """A tiny HTTP server on a free port that records every request and
    answers `status` with `answer` as JSON (both may be changed at any time).
    .got() returns what arrived: dicts of method, path, headers (lower-case
    names) and body (bytes)."""

    def __init__(self, status=200, answer=None):
        outer = self
        self.status = status
        self.answer = {"ok": True} if answer is None else answer
        self.lock = threading.Lock()
        self.received = []

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *a):
                pass

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                with outer.lock:
                    outer.received.append({
                        "method": self.command,
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                    })
                    status, answer = outer.status, outer.answer
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

        class S(http.server.ThreadingHTTPServer):
            daemon_threads = True

        self.server = S(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        cleanup(self)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def got(self):
        with self.lock:
            return list(self.received)

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


# --- the daemon ------------------------------------------------------------


class PortTaken(AssertionError):
    """A daemon exited at start because the port it was to listen on was
    taken (by something that bound it after free_port() picked it)."""


class Concord:
    """concord with a config written from a template into a fresh temp dir.

    template: the config text; each {key} for a key of `values` is replaced
    (other braces, as in jq maps or signature templates, are left alone).
    Two values are always there: {dir} (the temp dir) and {port} (a free
    port, unless given). env: extra environment variables. files: {name:
    text} written beside concord.yaml. tmp_prefix names the temp dir. The
    daemon and the CLI run with the temp dir as their working directory;
    the daemon logs to concord.log there.

    When {port} was picked here (not given in values) and start() finds it
    taken, start() writes the config again with a fresh port and retries;
    a given port that is taken raises PortTaken (an AssertionError)."""

    START_ATTEMPTS = 3

    def __init__(self, template, values=None, env=None, files=None, name="concord",
                 tmp_prefix="concord-e2e-"):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=tmp_prefix, dir="/tmp")
        self.template = template
        self.values = dict(values or {})
        self.values.setdefault("dir", self.dir)
        self.port_picked = "port" not in self.values and "{port}" in template
        self.values.setdefault("port", free_port())
        self.path = os.path.join(self.dir, "concord.yaml")
        self._write_config()
        for fname, content in (files or {}).items():
            with open(os.path.join(self.dir, fname), "w") as f:
                f.write(content)
        self.log_path = os.path.join(self.dir, "concord.log")
        self.env = dict(os.environ)
        self.env.update({k: str(v) for k, v in (env or {}).items()})
        self.proc = None
        self.returncode = None
        cleanup(self)

    def _write_config(self):
        text = self.template
        for k, v in self.values.items():
            text = text.replace("{" + k + "}", str(v))
        self.config_text = text
        with open(self.path, "w") as f:
            f.write(text)
        m = re.search(r"^listen:\s*['\"]?([^\s'\"#]+)", text, re.M)
        self.listen = m.group(1) if m else "127.0.0.1:%s" % self.values["port"]
        host, _, port = self.listen.rpartition(":")
        self.host = host or "127.0.0.1"
        self.port = int(port)

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=10, args=()):
        """Starts `concord run -c concord.yaml [args]` and waits until /healthz
        answers 200. Raises AssertionError, with the log's tail, if the
        daemon exits or does not become healthy in time (PortTaken if it
        exited because a port it was given is taken; a port picked here is
        replaced and the start retried first, see the class)."""
        for attempt in range(self.START_ATTEMPTS):
            try:
                return self._start_once(timeout, args)
            except PortTaken as e:
                if not (self.port_picked and e.port == self.port) \
                        or attempt + 1 == self.START_ATTEMPTS:
                    raise
                old = self.port
                self.values["port"] = free_port()
                self._write_config()
                print("  %s: port %d was taken; starting again on %d"
                      % (self.name, old, self.port), flush=True)

    def _start_once(self, timeout, args):
        if self.running():
            raise AssertionError("%s is already running" % self.name)
        binary = concord_bin()
        if not os.access(binary, os.X_OK):
            raise AssertionError("no concord binary at %s (set CONCORD_BIN or build)" % binary)
        log = open(self.log_path, "ab")
        log_start = os.path.getsize(self.log_path)
        try:
            self.proc = subprocess.Popen(
                [binary, "run", "-c", self.path] + list(args), cwd=self.dir, env=self.env,
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
        finally:
            log.close()
        self.returncode = None

        def healthy_or_exited():
            if self.proc.poll() is not None:
                return True
            try:
                status, _, _ = self.http("GET", "/healthz", timeout=2)
            except (OSError, http.client.HTTPException):
                return False
            return status == 200

        try:
            wait_until(healthy_or_exited, timeout, "%s /healthz on %s" % (self.name, self.listen))
        except AssertionError as e:
            raise AssertionError("%s; log:\n%s" % (e, self.log_tail()))
        if self.proc.poll() is not None:
            self.returncode = self.proc.returncode
            self.proc = None
            msg = "%s exited with %s while starting; log:\n%s" % (
                self.name, self.returncode, self.log_tail())
            taken = self._port_taken(log_start)
            if taken is not None:
                e = PortTaken(msg)
                e.port = taken
                raise e
            raise AssertionError(msg)
        return self

    def _port_taken(self, since):
        """The port concord said it could not listen on in the log written
        after offset `since`, or None."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                text = f.read().decode(errors="replace")
        except OSError:
            return None
        m = re.search(r"listen on port (\d+): the address is taken", text)
        return int(m.group(1)) if m else None

    def stop(self, timeout=15):
        """SIGTERM, then waits; returns the exit code (the last one if the
        daemon is not running). A daemon that does not exit in time is
        killed and the call raises AssertionError."""
        if self.proc is None:
            return self.returncode
        p = self.proc
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                self.proc = None
                self.returncode = p.returncode
                raise AssertionError(
                    "%s did not exit within %gs of SIGTERM" % (self.name, timeout)
                )
        self.proc = None
        self.returncode = p.returncode
        return self.returncode

    def kill9(self):
        """SIGKILL, as a crash; returns once the process is gone."""
        if self.proc is None:
            return self.returncode
        p = self.proc
        if p.poll() is None:
            p.kill()
        p.wait()
        self.proc = None
        self.returncode = p.returncode
        return self.returncode

    def cli(self, *args, check=True, timeout=30, stdin=None):
        """Runs `concord ARGS -c concord.yaml` in the temp dir; returns (rc,
        stdout, stderr). With check, a non-zero exit raises AssertionError."""
        cmd = [concord_bin()] + [str(a) for a in args] + ["-c", self.path]
        p = subprocess.run(
            cmd, cwd=self.dir, env=self.env, capture_output=True, timeout=timeout,
            input=stdin.encode() if isinstance(stdin, str) else stdin,
        )
        out = p.stdout.decode(errors="replace")
        err = p.stderr.decode(errors="replace")
        if check and p.returncode != 0:
            raise AssertionError(
                "%s exited %d\nstdout:\n%s\nstderr:\n%s"
                % (" ".join(cmd), p.returncode, out, err)
            )
        return p.returncode, out, err

    def cli_json(self, *args, timeout=30):
        """Runs `concord ARGS --json -c concord.yaml` and parses its stdout."""
        _, out, err = self.cli(*args, "--json", timeout=timeout)
        try:
            return json.loads(out)
        except ValueError:
            raise AssertionError(
                "concord %s --json printed no JSON:\n%s\nstderr:\n%s"
                % (" ".join(map(str, args)), out, err)
            )

    def log_text(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_tail(self, n=60):
        return _tail(self.log_path, n)

    def http(self, method, path, body=None, headers=None, timeout=10):
        """A request to the daemon's listener: (status, body, headers)."""
        return http_request(self.port, method, path, body, headers, timeout, host=self.host)

    def post_webhook(self, path, body_bytes, headers=None):
        """POSTs raw bytes to a webhook path: (status, parsed body)."""
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        status, body, _ = self.http("POST", path, body_bytes, h)
        return status, body

    def settled(self):
        """True when `concord status` shows no backlog and nothing in flight."""
        st = self.cli_json("status")
        return all(s.get("backlog", 0) == 0 and s.get("in_flight", 0) == 0
                   for s in st.get("systems", []))

    def wait_settled(self, timeout=15):
        wait_until(self.settled, timeout,
                   "%s to have no backlog and nothing in flight" % self.name)

    def wait_first_poll(self, collection, timeout=15):
        """Waits until the daemon's start-up read of `collection` (its
        first poll, due as soon as `concord run` starts) has ended, well or
        not, as `concord status` shows it. A test that changes a system, or
        arms a fault on its sim, before then races that read: the read may
        find the change first, or take the fault meant for a delivery."""
        def ended():
            p = [x for x in self.cli_json("status").get("polls", [])
                 if x["collection"] == collection]
            return p and (p[0]["last_ok_at"] != "never" or p[0].get("last_error"))

        wait_until(ended, timeout, "%s's first poll of %s" % (self.name, collection))

    def remove(self):
        """Deletes the temp dir, unless the daemon runs (the runner does so
        for passing tests)."""
        if not self.running():
            shutil.rmtree(self.dir, ignore_errors=True)


# --- the runner ------------------------------------------------------------


def run_tests(namespace, argv=None):
    """Runs every function named test_* in `namespace` in definition order
    (or only those named on the command line), prints "ok NAME" or
    "FAIL NAME: reason" with a traceback, stops what each test registered,
    prints "N passed, M failed" and exits 1 if any failed."""
    global _current
    argv = sys.argv[1:] if argv is None else argv
    tests = [(n, f) for n, f in namespace.items() if n.startswith("test_") and callable(f)]
    if argv:
        unknown = [a for a in argv if a not in dict(tests)]
        if unknown:
            print("no such test: %s" % ", ".join(unknown))
            sys.exit(2)
        tests = [(n, f) for n, f in tests if n in argv]
    passed = failed = 0
    keep = os.environ.get("CONCORD_KEEP_TMP") == "1"
    for name, fn in tests:
        _current = []
        registered = _current
        t0 = time.monotonic()
        err = None
        tb = ""
        try:
            fn()
        except KeyboardInterrupt:
            _current = None
            _stop_all(registered)
            raise
        except BaseException as e:  # noqa: BLE001 - report everything, go on
            err = e
            tb = traceback.format_exc()
        _current = None
        if err is not None:
            # Before stopping, so the tail shows what the failure saw.
            for obj in registered:
                if isinstance(obj, Concord):
                    print("--- last lines of %s's log (%s) ---" % (obj.name, obj.log_path))
                    sys.stdout.write(obj.log_tail(60))
                    print("--- end of log ---")
        stop_errors = _stop_all(registered)
        if err is None and stop_errors:
            err = AssertionError("cleanup: " + "; ".join(stop_errors))
        dt = time.monotonic() - t0
        if err is None:
            passed += 1
            print("ok %s (%.2fs)" % (name, dt), flush=True)
            if not keep:
                for obj in registered:
                    if isinstance(obj, Concord):
                        obj.remove()
        else:
            failed += 1
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            print("FAIL %s: %s" % (name, reason))
            sys.stdout.write(tb)
            for obj in registered:
                if isinstance(obj, Concord):
                    print("  (kept %s)" % obj.dir)
            sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed), flush=True)
    sys.exit(1 if failed else 0)


def _stop_all(objs):
    """Stops everything a test made. A concord that was still running must
    exit 0 on SIGTERM: under ASan a leak or a sanitizer report makes it
    exit non-zero, and that fails the test."""
    errors = []
    for obj in reversed(objs):
        try:
            was_running = isinstance(obj, Concord) and obj.running()
            rc = obj.stop()
            if was_running and rc != 0:
                errors.append("%s exited %s on SIGTERM; log:\n%s" % (obj.name, rc, obj.log_tail(30)))
        except Exception as e:  # noqa: BLE001
            errors.append("%s: %s" % (type(obj).__name__, e))
    return errors
