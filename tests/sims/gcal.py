#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A Google Calendar account on 127.0.0.1: Calendar API v3 and Google's
OAuth 2.0 endpoints as concord's Google Calendar connector sees them, with
fault injection.

One process simulates one Google account with one or more calendars:
events (insert, get, update, patch, delete, list, instances, move) in
Google's shapes, recurring series with exceptions, incremental sync with
sync tokens (410 fullSyncRequired), push channels (events.watch,
channels.stop) that POST header-only notifications, the OAuth
authorization-code and refresh-token grants (rotation, revocation, expiry),
per-minute quotas (403/429 usageLimits), and the fault actions of simbase.py.
The control API lives under /_sim/; it is never logged, never faulted and
needs no token. tests/sims/README.md ("gcal.py") lists every option and
endpoint; /work/shared/apis/EXTERNAL-APIS.md section 3 and the Calendar v3
discovery document are the reference. Where they are silent the sim does
what the real API most plausibly does, and a comment says so.

graph.py (Microsoft Graph) imports this module for the parts both
calendars share: time zones, the recurrence engine, the request pipeline
with its faults, the notification sender and the OAuth token book.

Standard library only. Prints "ready PORT" on stdout once it listens.
"""

import argparse
import base64
import collections
import copy
import datetime
import hashlib
import heapq
import http.client
import http.server
import json
import os
import random
import re
import ssl
import string
import sys
import threading
import time
import urllib.parse

sys.dont_write_bytecode = True  # leave no __pycache__ beside the sims
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import simbase  # noqa: E402  (Fault, Server and the handler plumbing)
import target  # noqa: E402  (tokens)

try:
    import zoneinfo
except ImportError:  # pragma: no cover - Python < 3.9
    zoneinfo = None

UTC = datetime.timezone.utc
BASE32HEX = "0123456789abcdefghijklmnopqrstuv"
ALNUM = string.ascii_letters + string.digits
RANDOM_KINDS = {"500", "502", "503", "504", "408", "429", "reset_before", "lost", "slow",
                "slow_answer"}

# --- time -----------------------------------------------------------------


def zone(name):
    """The tzinfo of an IANA zone name ("UTC" too). Raises ValueError for a
    name it does not know."""
    if not isinstance(name, str) or not name:
        raise ValueError("no time zone")
    if name in ("UTC", "Etc/UTC", "GMT", "Etc/GMT", "Z"):
        return UTC
    if zoneinfo is None:
        raise ValueError("unknown time zone %s (no zoneinfo)" % name)
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError("unknown time zone %s" % name)


def parse_instant(text):
    """An RFC 3339 date-time with an offset (or Z) as an aware datetime;
    None when text is not one."""
    if not isinstance(text, str) or not re.match(
            r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|z|[+-]\d\d:?\d\d)$", text):
        return None
    t = text[:-1] + "+00:00" if text[-1] in "Zz" else text
    m = re.match(r"^(.*\.\d{6})\d+(.*)$", t)  # fromisoformat takes at most 6 digits
    if m:
        t = m.group(1) + m.group(2)
    try:
        return datetime.datetime.fromisoformat(t)
    except ValueError:
        return None


def parse_local(text):
    """A date-time without an offset ("2026-01-02T10:00:00.0000000") as a
    naive datetime; None when text is not one."""
    if not isinstance(text, str) or not re.match(
            r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?$", text):
        return None
    m = re.match(r"^(.*\.\d{6})\d+$", text)
    try:
        return datetime.datetime.fromisoformat(m.group(1) if m else text)
    except ValueError:
        return None


def parse_date(text):
    if not isinstance(text, str) or not re.match(r"^\d{4}-\d\d-\d\d$", text):
        return None
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        return None


def fmt_offset(dt):
    """RFC 3339 with the offset of dt's zone, as Google writes dateTime:
    "2026-01-02T10:00:00+02:00", and "Z" for UTC."""
    off = dt.utcoffset()
    base = dt.replace(tzinfo=None, microsecond=0).isoformat()
    if off is None or off == datetime.timedelta(0) and dt.tzinfo is UTC:
        return base + "Z"
    total = int(off.total_seconds())
    sign = "+" if total >= 0 else "-"
    total = abs(total)
    return "%s%s%02d:%02d" % (base, sign, total // 3600, total % 3600 // 60)


def fmt_stamp_ms(ms):
    """Google's created/updated: UTC with milliseconds, "...T08:00:00.123Z"."""
    dt = datetime.datetime.fromtimestamp(ms / 1000.0, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)


def http_date(seconds):
    """An HTTP-date (RFC 7231) such as "Tue, 19 Nov 2013 01:13:52 GMT"."""
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(seconds))


def now_ms():
    return int(time.time() * 1000)


# --- recurrence ------------------------------------------------------------
#
# One engine for both calendars: Google's RRULE lines and Graph's
# recurrence patterns become a Rule; occurrences() walks it over local
# (naive) wall times, which the caller turns into instants in the series'
# time zone (so a weekly 10:00 stays 10:00 across a DST change).

WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
FREQS = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
MAX_PERIODS = 200000  # a bound on the periods one walk may visit


class Rule:
    """freq, interval, count, until (a naive local datetime, inclusive, or
    None), byday [(ordinal or 0, weekday 0..6)], bymonthday [int],
    bymonth [int]."""

    def __init__(self, freq, interval=1, count=None, until=None, byday=None,
                 bymonthday=None, bymonth=None):
        if freq not in FREQS:
            raise ValueError("unsupported FREQ %s" % freq)
        if interval < 1 or (count is not None and count < 1):
            raise ValueError("INTERVAL and COUNT must be >= 1")
        self.freq = freq
        self.interval = interval
        self.count = count
        self.until = until
        self.byday = list(byday or [])
        self.bymonthday = list(bymonthday or [])
        self.bymonth = list(bymonth or [])


def _days_in_month(y, m):
    nxt = datetime.date(y + (m == 12), m % 12 + 1, 1)
    return (nxt - datetime.date(y, m, 1)).days


def _month_days(y, m, rule, default_day):
    """The days of month y-m the rule picks (sorted, valid ones only)."""
    n = _days_in_month(y, m)
    days = set()
    if rule.byday:
        for ordinal, wd in rule.byday:
            hits = [d for d in range(1, n + 1) if datetime.date(y, m, d).weekday() == wd]
            if ordinal == 0:
                days.update(hits)
            elif 0 < ordinal <= len(hits):
                days.add(hits[ordinal - 1])
            elif ordinal < 0 and -ordinal <= len(hits):
                days.add(hits[ordinal])
        if rule.bymonthday:
            days &= {d if d > 0 else n + 1 + d for d in rule.bymonthday}
    elif rule.bymonthday:
        days = {d if d > 0 else n + 1 + d for d in rule.bymonthday}
    else:
        days = {default_day}  # a day past the month's end (the 31st) is skipped
    return sorted(d for d in days if 1 <= d <= n)


def _candidates(rule, start, k):
    """The rule's date-times in period k (0 = the period holding start)."""
    step = k * rule.interval
    t = start.time()
    if rule.freq == "DAILY":
        d = start + datetime.timedelta(days=step)
        ok = (not rule.byday or d.weekday() in [w for _, w in rule.byday]) \
            and (not rule.bymonth or d.month in rule.bymonth) \
            and (not rule.bymonthday or d.day in rule.bymonthday)
        return [d] if ok else []
    if rule.freq == "WEEKLY":
        week = start.date() - datetime.timedelta(days=start.weekday()) \
            + datetime.timedelta(days=7 * step)
        wds = sorted({w for _, w in rule.byday}) or [start.weekday()]
        out = [datetime.datetime.combine(week + datetime.timedelta(days=w), t) for w in wds]
        return [d for d in out if not rule.bymonth or d.month in rule.bymonth]
    if rule.freq == "MONTHLY":
        mi = start.year * 12 + start.month - 1 + step
        y, m = divmod(mi, 12)
        m += 1
        if rule.bymonth and m not in rule.bymonth:
            return []
        return [datetime.datetime.combine(datetime.date(y, m, d), t)
                for d in _month_days(y, m, rule, start.day)]
    y = start.year + step
    if y > 9999:
        return []
    out = []
    for m in sorted(rule.bymonth or [start.month]):
        out += [datetime.datetime.combine(datetime.date(y, m, d), t)
                for d in _month_days(y, m, rule, start.day)]
    return out


def occurrences(rule, start, include_start=True, stop_after=None, max_n=1000):
    """Yields the series' local start times in order: start itself first
    when include_start (RFC 5545 and Google: DTSTART is always an instance;
    Graph starts at the first date that fits the pattern), then what the
    rule gives after it, up to its COUNT (start included) or UNTIL, never
    past stop_after (naive local), at most max_n."""
    n = 0
    if include_start:
        yield start
        n = 1
    if rule.count is not None and n >= rule.count:
        return
    for k in range(MAX_PERIODS):
        cands = _candidates(rule, start, k)
        if rule.freq != "DAILY" and not cands and k > 400 * 12:
            return  # a rule that no longer matches anything (Feb 30)
        for d in cands:
            if d < start or (include_start and d == start):
                continue
            if rule.until is not None and d > rule.until:
                return
            if stop_after is not None and d > stop_after:
                return
            yield d
            n += 1
            if (rule.count is not None and n >= rule.count) or n >= max_n:
                return
        if cands and stop_after is not None and cands[-1] > stop_after:
            return


def to_instant(local, tz):
    return local.replace(tzinfo=tz).astimezone(UTC)


# --- the request pipeline (shared with graph.py) ---------------------------


class ApiError(Exception):
    """An answer other than success: status, body (a JSON-able object or
    text), headers."""

    def __init__(self, status, body, headers=None):
        super().__init__("%s %s" % (status, body))
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


class BaseState:
    """What both calendar sims hold for faults, the log and the stats;
    every access goes through self.lock."""

    def __init__(self, opts):
        self.opts = opts
        self.lock = threading.RLock()
        self.reset()

    def reset(self):
        seed = self.opts.seed
        self.id_rng = random.Random("ids:%s" % seed) if seed is not None else random.Random()
        self.log = []
        self.faults = []
        self.rng = None
        self.rate = 0.0
        self.kinds = []
        self.slow_ms = 1500
        self.random_retry_after = None
        self.stats = {"requests": 0, "status": {}, "faults": 0, "unauthorized": 0,
                      "throttled": 0}

    def rand(self, n, alphabet=ALNUM):
        return "".join(self.id_rng.choice(alphabet) for _ in range(n))

    def pick_fault(self, method, path):
        """As simbase.Faults.pick: the first armed queued action that
        matches (actions with "after" left count the request), else a
        seeded random one. Called under lock."""
        chosen = None
        for f in self.faults:
            if not f.matches(method, path):
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
                return self.random_fault(self.rng.choice(self.kinds))
        return None

    def random_fault(self, kind):
        if kind in ("reset_before", "lost", "slow", "slow_answer"):
            return {"reset_before": {"reset": "before"}, "lost": {"reset": "after"},
                    "slow": {"delay_ms": self.slow_ms},
                    "slow_answer": {"delay_ms": self.slow_ms, "apply": "first"}}[kind]
        m = re.match(r"^(\d{3})(?:_(\w+))?$", kind)
        f = {"status": int(m.group(1))}
        if m.group(2):
            f["kind"] = m.group(2)
        ra = self.random_retry_after
        if ra is not None and f["status"] in (429, 503):
            if isinstance(ra, list):
                ra = self.rng.choice(ra) if ra else None
            if ra is not None:
                f["retry_after"] = str(ra)
        return f


class BaseHandler(http.server.BaseHTTPRequestHandler):
    """The HTTP side both sims share: simbase.py's plumbing (bodies, RST,
    peer checks), the fault pipeline around every API request, and the
    control API dispatch (ctl_<method>_<name>). A subclass provides
    handle_api(method, split, raw, entry) -> (status, body, headers,
    applied), fault_body(status, fault, split) and encode(obj)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = -1
    sim_name = "sim"
    read_body = simbase.Handler.read_body
    reset_connection = simbase.Handler.reset_connection
    peer_gone = simbase.Handler.peer_gone
    answer_end = simbase.Handler.answer_end

    def handle_expect_100(self):
        ok = http.server.BaseHTTPRequestHandler.handle_expect_100(self)
        self.wfile.flush()
        return ok

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
            self.api(split)

    def encode(self, obj):
        return json.dumps(obj).encode()

    def send_answer(self, status, obj, headers=None):
        """obj: a JSON-able object (encoded by self.encode), bytes, str or
        None. headers may set Content-Type."""
        headers = dict(headers or {})
        if obj is None:
            data = b""
        elif isinstance(obj, bytes):
            data = obj
        elif isinstance(obj, str):
            data = obj.encode()
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        else:
            data = self.encode(obj)
            headers.setdefault("Content-Type", "application/json; charset=UTF-8")
        self.send_response(status)
        for k, v in headers.items():
            if data or k.lower() != "content-type":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    def api(self, split):
        """One API request through the fault pipeline, as simbase.py and
        stripe.py carry them out: log, pick a fault, reset before / delay /
        status, apply, then lose, delay or send the answer."""
        st = self.server.state
        method = self.command
        with st.lock:
            st.stats["requests"] += 1
            entry = {"seq": len(st.log) + 1, "time": time.time(), "method": method,
                     "path": self.path,
                     "headers": {k.lower(): v for k, v in self.headers.items()},
                     "body": None, "status": None, "applied": False}
            st.log.append(entry)
            fault = st.pick_fault(method, split.path)
            if fault:
                st.stats["faults"] += 1
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
            self.send_answer(400, self.fault_body(400, {}, split))
            return
        with st.lock:
            entry["body"] = parse_logged_body(raw, self.headers.get("Content-Type"))
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
            obj = fault["body"] if "body" in fault else self.fault_body(status, fault, split)
            if gone:
                finish("timeout", False)
                self.close_connection = True
                return
            finish(status, False)
            self.send_answer(status, obj, extra)
            return
        self.pending_after = None
        try:
            status, obj, headers, applied = self.handle_api(method, split, raw, entry)
        except ApiError as e:
            status, obj, headers, applied = e.status, e.body, e.headers, False
        except Exception:  # noqa: BLE001 - a sim bug answers 500, and says so
            import traceback
            sys.stderr.write("%s: internal error on %s %s\n%s" % (
                self.sim_name, method, self.path, traceback.format_exc()))
            status, obj, headers, applied = 500, self.fault_body(500, {}, split), None, False
            with st.lock:
                entry["internal_error"] = True
        self.answer_end(fault, late, gone, finish, status, obj, headers, applied)
        self.after_answer()

    def after_answer(self):
        """Runs after the answer left (or was dropped): e.g. a watch
        channel's first "sync" message."""
        fn = getattr(self, "pending_after", None)
        self.pending_after = None
        if fn:
            fn()

    # --- the control API ---

    def control(self, split):
        name = split.path[len("/_sim/"):]
        try:
            raw = self.read_body()
            arg = json.loads(raw) if raw else None
        except ValueError as e:
            self.send_answer(400, {"error": "bad control request: %s" % e})
            return
        q = urllib.parse.parse_qs(split.query)
        fn = getattr(self, "ctl_%s_%s" % (self.command.lower(), name), None)
        if fn is None:
            self.send_answer(404, {"error": "no control endpoint %s %s" % (self.command, name)})
            return
        try:
            status, obj = fn(arg if arg is not None else {}, q)
        except ApiError as e:
            status, obj = e.status, {"error": "refused", "status": e.status, "body": e.body}
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            status, obj = 400, {"error": "bad control request: %s: %s" % (type(e).__name__, e)}
        self.send_answer(status, obj, {"Content-Type": "application/json"})

    def ctl_get_requests(self, arg, q):
        since = int(q.get("since", ["0"])[-1])
        st = self.server.state
        with st.lock:
            return 200, [copy.deepcopy(e) for e in st.log if e["seq"] > since]

    ctl_get_log = ctl_get_requests

    def ctl_post_faults(self, arg, q):
        if isinstance(arg, dict):
            arg = [arg]
        if not isinstance(arg, list):
            raise ValueError("expected a JSON list of fault actions")
        faults = [simbase.Fault(a) for a in arg]
        st = self.server.state
        with st.lock:
            st.faults.extend(faults)
            return 200, {"queued": len(st.faults)}

    def ctl_post_random(self, arg, q):
        kinds = list(arg.get("kinds") or ["503", "429", "reset_before", "lost", "slow"])
        bad = [k for k in kinds if k not in self.random_kinds()]
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

    def random_kinds(self):
        return RANDOM_KINDS


def parse_logged_body(raw, ctype):
    """A request body as the log keeps it: parsed JSON, a parsed form (a
    dict of the last values), raw text, or None."""
    if not raw:
        return None
    text = raw.decode("utf-8", "replace")
    if (ctype or "").startswith("application/x-www-form-urlencoded"):
        return dict(urllib.parse.parse_qsl(text, keep_blank_values=True))
    try:
        return json.loads(text)
    except ValueError:
        return text


def read_form(raw):
    """A form body as {name: last value}; a name sent twice is refused by
    OAuth servers, so the sim keeps the last and lets it pass."""
    return dict(urllib.parse.parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


# --- notifications (shared with graph.py) ----------------------------------


def deliver(url, body, headers, timeout):
    """POSTs body to url (http, or https without certificate checks: a
    test's receiver has no trusted certificate). Returns (status, answer
    bytes, content type)."""
    u = urllib.parse.urlsplit(url)
    if u.scheme == "https":
        conn = http.client.HTTPSConnection(u.hostname, u.port or 443, timeout=timeout,
                                           context=ssl._create_unverified_context())
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        path = u.path or "/"
        if u.query:
            path += "?" + u.query
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read(), resp.getheader("Content-Type") or ""
    finally:
        conn.close()


class Notifier:
    """Sends notifications from one background thread, in order, retrying
    a failed attempt (non-2xx or no answer) after backoff_ms, doubled each
    time, up to `attempts` attempts. configure() pauses (held, sent later),
    disables (dropped: a push outage), or adds seeded drops and delays.
    Its lock is taken under the state lock, never the other way."""

    def __init__(self, attempts, backoff_ms, timeout_s):
        self.attempts = attempts
        self.backoff_ms = backoff_ms
        self.timeout_s = timeout_s
        self.cv = threading.Condition()
        self.gen = 0
        self.reset()
        threading.Thread(target=self.run, daemon=True).start()

    def reset(self):
        with self.cv:
            self.gen += 1
            self.heap = []
            self.n = 0
            self.paused = False
            self.enabled = True
            self.rng = None
            self.drop = 0.0
            self.delay_ms = 0.0
            self.busy = 0
            self.log = []
            self.stats = {"queued": 0, "sent": 0, "delivered": 0, "failed_attempts": 0,
                          "gave_up": 0, "dropped": 0, "suppressed": 0, "stale": 0}
            self.cv.notify_all()

    def configure(self, arg):
        with self.cv:
            if "paused" in arg:
                self.paused = bool(arg["paused"])
            if "enabled" in arg:
                self.enabled = bool(arg["enabled"])
            if "drop" in arg or "delay_ms" in arg or "seed" in arg:
                self.drop = float(arg.get("drop", 0))
                self.delay_ms = float(arg.get("delay_ms", 0))
                if not 0 <= self.drop <= 1 or self.delay_ms < 0:
                    raise ValueError("drop must be within 0..1 and delay_ms >= 0")
                on = self.drop > 0 or self.delay_ms > 0
                self.rng = random.Random(arg.get("seed", 0)) if on else None
            self.cv.notify_all()
            return {"paused": self.paused, "enabled": self.enabled, "drop": self.drop,
                    "delay_ms": self.delay_ms}

    def enqueue(self, item):
        """item: {"url", "body" (bytes), "headers", "what", "target" (a
        channel or subscription id), "check" (callable -> None or a reason
        to drop at send time), ...}. Returns False when notifications are
        disabled (the item is counted as suppressed)."""
        with self.cv:
            if not self.enabled:
                self.stats["suppressed"] += 1
                self._log(item, "suppressed", None, None)
                return False
            item = dict(item, attempt=0, gen=self.gen)
            self.stats["queued"] += 1
            due = time.monotonic()
            if self.rng is not None:
                u_drop, u_delay = self.rng.random(), self.rng.random()
                if u_drop < self.drop:
                    self.stats["dropped"] += 1
                    self._log(item, "dropped", None, None)
                    self.cv.notify_all()
                    return True
                due += u_delay * self.delay_ms / 1000.0
            self._push(due, item)
            self.cv.notify_all()
            return True

    def _push(self, due, item):
        self.n += 1
        heapq.heappush(self.heap, (due, self.n, item))

    def _log(self, item, status, error, answer, t=None):
        self.log.append({"seq": len(self.log) + 1, "what": item.get("what"),
                         "target": item.get("target"), "url": item.get("url"),
                         "attempt": item.get("attempt", 0), "status": status,
                         "error": error, "answer": answer,
                         "headers": dict(item.get("headers") or {}),
                         "body": (item.get("body") or b"").decode("utf-8", "replace"),
                         "time": time.time() if t is None else t,
                         "ok": isinstance(status, int) and 200 <= status < 300})

    def pending(self):
        with self.cv:
            return len(self.heap) + self.busy

    def snapshot(self, since=0):
        with self.cv:
            out = dict(self.stats)
            out["pending"] = len(self.heap) + self.busy
            out["paused"] = self.paused
            out["enabled"] = self.enabled
            return out, [dict(e) for e in self.log if e["seq"] > since]

    def run(self):
        while True:
            with self.cv:
                while True:
                    now = time.monotonic()
                    if not self.paused and self.heap and self.heap[0][0] <= now:
                        break
                    wait = None
                    if not self.paused and self.heap:
                        wait = max(0.001, self.heap[0][0] - now)
                    self.cv.wait(wait)
                _, _, item = heapq.heappop(self.heap)
                self.busy += 1
            try:
                self.send(item)
            finally:
                with self.cv:
                    self.busy -= 1
                    self.cv.notify_all()

    def send(self, item):
        check = item.get("check")
        why = check() if check else None
        if why:
            with self.cv:
                if item["gen"] == self.gen:
                    self.stats["stale"] += 1
                    self._log(item, why, None, None)
            return
        item["attempt"] += 1
        status, error, answer = None, None, None
        try:
            status, data, _ = deliver(item["url"], item.get("body") or b"",
                                      item.get("headers") or {}, self.timeout_s)
            answer = data.decode("utf-8", "replace")[:200]
        except (OSError, http.client.HTTPException) as e:
            error = "%s: %s" % (type(e).__name__, e)
        ok = status is not None and 200 <= status < 300
        with self.cv:
            if item["gen"] != self.gen:
                return
            self.stats["sent"] += 1
            self._log(item, status, error, answer)
            if ok:
                self.stats["delivered"] += 1
            else:
                self.stats["failed_attempts"] += 1
                if item["attempt"] < self.attempts:
                    backoff = self.backoff_ms * 2 ** (item["attempt"] - 1)
                    self._push(time.monotonic() + backoff / 1000.0, item)
                else:
                    self.stats["gave_up"] += 1
            self.cv.notify_all()

    def wait_idle(self, timeout):
        deadline = time.monotonic() + timeout
        with self.cv:
            while self.heap or self.busy:
                left = deadline - time.monotonic()
                if left <= 0 or (self.paused and not self.busy):
                    return False
                self.cv.wait(min(left, 0.05))
            return True


# --- OAuth token book (shared with graph.py) -------------------------------


class TokenBook:
    """Access tokens, refresh tokens and authorization codes, with expiry,
    rotation and revocation. Called under the state lock. Times are wall
    clock seconds."""

    def __init__(self):
        self.access = {}  # token -> {"exp", "refresh", "scope", "app"}
        self.refresh = {}  # token -> {"state": "live"|"rotated"|"revoked", "scope", ...}
        self.codes = {}  # code -> {"client_id", "redirect_uri", "scope", "exp", ...}
        self.refresh_in_flight = 0
        self.stats = {"token_requests": 0, "code_grants": 0, "refreshes": 0,
                      "refresh_failures": 0, "client_credentials": 0,
                      "max_concurrent_refreshes": 0, "access_tokens_issued": 0,
                      "rejected_tokens": 0}

    def check_access(self, tok):
        """None when tok is a live access token, else why not ("missing",
        "unknown", "expired", "revoked")."""
        if not tok:
            return "missing"
        a = self.access.get(tok)
        if a is None:
            return "unknown"
        if a.get("revoked"):
            return "revoked"
        if time.time() >= a["exp"]:
            return "expired"
        return None

    def expire_access(self):
        n = 0
        for a in self.access.values():
            if a["exp"] > time.time():
                a["exp"] = time.time() - 1
                n += 1
        return n

    def revoke_refresh(self, tok=None):
        """Revokes one refresh token (or all) and the access tokens it gave."""
        n = 0
        for r, info in self.refresh.items():
            if tok is None or r == tok:
                if info["state"] != "revoked":
                    n += 1
                info["state"] = "revoked"
        for a in self.access.values():
            if tok is None or a.get("refresh") == tok:
                a["revoked"] = True
        return n


def bearer(headers):
    h = headers.get("Authorization") or ""
    scheme, _, val = h.partition(" ")
    return val.strip() if scheme.lower() == "bearer" else None


def client_auth(headers, form):
    """(client_id, client_secret) from HTTP Basic or the form body."""
    h = headers.get("Authorization") or ""
    scheme, _, val = h.partition(" ")
    if scheme.lower() == "basic":
        try:
            cid, _, sec = base64.b64decode(val.strip()).decode().partition(":")
            return urllib.parse.unquote(cid), urllib.parse.unquote(sec)
        except (ValueError, UnicodeDecodeError):
            return None, None
    return form.get("client_id"), form.get("client_secret")


def pkce_ok(challenge, method, verifier):
    if challenge is None:
        return True
    if not verifier:
        return False
    if (method or "plain") == "S256":
        d = hashlib.sha256(verifier.encode()).digest()
        return base64.urlsafe_b64encode(d).rstrip(b"=").decode() == challenge
    return verifier == challenge


def loopback_uri(uri):
    u = urllib.parse.urlsplit(uri or "")
    return u.scheme in ("http", "https") and u.hostname in ("127.0.0.1", "localhost", "::1")


def with_query(url, params):
    """url with params appended to its query."""
    u = urllib.parse.urlsplit(url)
    q = urllib.parse.parse_qsl(u.query, keep_blank_values=True) + list(params.items())
    return urllib.parse.urlunsplit((u.scheme, u.netloc, u.path, urllib.parse.urlencode(q),
                                    u.fragment))


class QuotaWindow:
    """A sliding window: at most `limit` admitted requests in any `window_s`
    seconds; limit 0 turns it off."""

    def __init__(self, limit, window_s):
        self.limit = limit
        self.window_s = window_s
        self.times = collections.deque()

    def admit(self):
        """(True, 0) when admitted, else (False, seconds until a slot)."""
        if not self.limit:
            return True, 0
        now = time.monotonic()
        while self.times and self.times[0] <= now - self.window_s:
            self.times.popleft()
        if len(self.times) >= self.limit:
            return False, max(0.0, self.times[0] + self.window_s - now)
        self.times.append(now)
        return True, 0


# --- Google Calendar ---------------------------------------------------------

GOOGLE_SCOPES_RW = ("https://www.googleapis.com/auth/calendar",
                    "https://www.googleapis.com/auth/calendar.events")
GOOGLE_SCOPES_RO = GOOGLE_SCOPES_RW + (
    "https://www.googleapis.com/auth/calendar.readonly",
    "https://www.googleapis.com/auth/calendar.events.readonly")
DEFAULT_SCOPE = "https://www.googleapis.com/auth/calendar"
# Parameters that events.list refuses together with syncToken (§3.4).
SYNC_FORBIDDEN = ("iCalUID", "orderBy", "privateExtendedProperty", "q",
                  "sharedExtendedProperty", "timeMin", "timeMax", "updatedMin")
# Event fields a client may write; the others (kind, etag, htmlLink,
# created, updated, creator, organizer, ...) are the server's and are
# ignored on input, as Calendar v3 ignores read-only fields. Unknown fields
# are ignored too (Calendar v3, an older "Apiary" API, does not refuse them).
WRITABLE = ("summary", "description", "location", "start", "end", "status", "attendees",
            "recurrence", "extendedProperties", "transparency", "visibility", "colorId",
            "reminders", "sequence", "guestsCanModify", "guestsCanInviteOthers",
            "guestsCanSeeOtherGuests", "anyoneCanAddSelf", "source", "attachments",
            "endTimeUnspecified", "eventType", "conferenceData")
SIGNIFICANT = ("start", "end", "recurrence", "location")  # changes that bump sequence
RESPONSES = ("needsAction", "declined", "tentative", "accepted")
FIELD_ORDER = ("kind", "etag", "id", "status", "htmlLink", "created", "updated", "summary",
               "description", "location", "colorId", "creator", "organizer", "start", "end",
               "endTimeUnspecified", "recurrence", "recurringEventId", "originalStartTime",
               "transparency", "visibility", "iCalUID", "sequence", "attendees",
               "attendeesOmitted", "extendedProperties", "guestsCanModify",
               "guestsCanInviteOthers", "guestsCanSeeOtherGuests", "anyoneCanAddSelf",
               "reminders", "source", "attachments", "conferenceData", "eventType")
USER_AGENT = "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)"


def gerror(status, reason, message, domain="global", location=None, location_type=None,
           extra=None):
    """Google's error body {"error": {"errors": [...], "code", "message"}}."""
    e = {"domain": domain, "reason": reason, "message": message}
    if location is not None:
        e["locationType"] = location_type or "parameter"
        e["location"] = location
    body = {"error": {"errors": [e], "code": status, "message": message}}
    if extra:
        body["error"].update(extra)
    return ApiError(status, body)


def bad(reason, message, location=None):
    return gerror(400, reason, message, location=location)


def not_found():
    return gerror(404, "notFound", "Not Found")


def ordered(e):
    keys = [k for k in FIELD_ORDER if k in e] + sorted(k for k in e if k not in FIELD_ORDER)
    return {k: e[k] for k in keys}


def instance_stamp(t):
    """The suffix of an instance id: "20260105T080000Z" (UTC) for a timed
    instance, "20260105" for an all-day one, as Google forms them."""
    if "date" in t:
        return t["date"].replace("-", "")
    return parse_instant(t["dateTime"]).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


class Calendar:
    def __init__(self, cid, summary, tz, resource_id, primary=False):
        self.id = cid
        self.summary = summary
        self.tz = tz
        self.resource_id = resource_id
        self.primary = primary
        self.events = {}  # id -> {"data": stored event, "seq": change no, "no": creation no, "ms"}
        self.generation = None  # sync tokens of another generation answer 410
        self.updated_ms = now_ms()


class GState(BaseState):
    def reset(self):
        super().reset()
        opts = self.opts
        self.tokens = TokenBook()
        self.consented = set()  # client ids the account has consented to (refresh tokens)
        self.deny = False
        self.rotate = opts.rotate_refresh_tokens
        self.token_ttl_s = opts.token_ttl_s
        self.refresh_ttl_s = opts.refresh_ttl_s
        self.token_delay_ms = opts.token_delay_ms
        self.change_seq = 0
        self.next_no = 1
        self.last_ms = 0
        self.channels = {}  # channel id -> channel (live, stopped and expired ones)
        self.channel_seq = 0
        self.user_quota = QuotaWindow(opts.user_quota_per_min, 60.0)
        self.project_quota = QuotaWindow(opts.project_quota_per_min, 60.0)
        self.quota_status = opts.quota_status
        self.page_cap = opts.page_cap
        self.empty_first = False
        self.stats.update({"creates": 0, "updates": 0, "deletes": 0, "list_reads": 0,
                           "sync_reads": 0, "full_reads": 0, "gone_410": 0, "watches": 0,
                           "channel_stops": 0, "quota_refused": 0, "person_changes": 0})
        self.calendars = {}
        for i, name in enumerate(opts.calendars):
            if i == 0:
                cid, summary = opts.email, opts.email
            else:
                cid = "c_%s@group.calendar.google.com" % name
                summary = name
            cal = Calendar(cid, summary, opts.time_zone, self.rand(27, BASE32HEX + "_-"),
                           primary=i == 0)
            cal.generation = self.rand(12)
            self.calendars[cid] = cal

    # --- ids and time ---

    def stamp(self):
        t = max(now_ms(), self.last_ms + 1)
        self.last_ms = t
        return t

    def new_event_id(self):
        while True:
            eid = self.rand(26, BASE32HEX)
            if not any(eid in c.events for c in self.calendars.values()):
                return eid

    def calendar(self, cid):
        if cid == "primary":
            cid = self.opts.email
        cal = self.calendars.get(cid)
        if cal is None:
            raise not_found()
        return cal

    # --- storing events ---

    def put_event(self, cal, eid, data, notify=True):
        """Stores data as event eid of cal: a new change number, updated,
        etag; then the calendar's push channels hear of it."""
        rec = cal.events.get(eid)
        self.change_seq += 1
        ms = self.stamp()
        if rec is None:
            rec = {"no": self.next_no}
            self.next_no += 1
            data["created"] = fmt_stamp_ms(ms)
        data["updated"] = fmt_stamp_ms(ms)
        data["etag"] = '"%d"' % (ms * 1000 + self.change_seq % 1000)
        rec.update(data=data, seq=self.change_seq, ms=ms)
        cal.events[eid] = rec
        cal.updated_ms = ms
        if notify:
            self.notify(cal, "exists")
        return rec

    # --- shapes ---

    def organizer(self, cal):
        if cal.primary:
            return {"email": self.opts.email, "self": True}
        return {"email": cal.id, "displayName": cal.summary, "self": True}

    def html_link(self, cal, eid):
        eid64 = base64.b64encode(("%s %s" % (eid, cal.id)).encode()).decode().rstrip("=")
        return "https://www.google.com/calendar/event?eid=" + eid64

    def norm_time(self, t, which, recurring):
        """A start/end from a request as stored: {"date"} or {"dateTime":
        UTC "...Z", "timeZone"?}. Raises the 400 Google answers."""
        if not isinstance(t, dict) or ("date" in t) == ("dateTime" in t):
            if isinstance(t, dict) and not t.get("date") and not t.get("dateTime"):
                raise bad("required", "Missing %s time." % which)
            raise bad("invalid", "Invalid %s time." % which)
        tzname = t.get("timeZone")
        if tzname is not None:
            try:
                zone(tzname)
            except ValueError:
                raise bad("invalid", "Invalid time zone definition for %s time." % which)
        if "date" in t:
            if parse_date(t["date"]) is None:
                raise bad("invalid", "Invalid %s time." % which)
            out = {"date": t["date"]}
            if tzname:
                out["timeZone"] = tzname
            return out
        dt = parse_instant(t["dateTime"])
        if dt is None:
            local = parse_local(t["dateTime"])
            if local is None:
                raise bad("invalid", "Invalid %s time." % which)
            if not tzname:
                raise bad("required", "Missing time zone definition for %s time." % which)
            dt = to_instant(local, zone(tzname))
        if recurring and not tzname:
            # Google needs the zone of a recurring event to expand it.
            raise bad("required", "Missing time zone definition for %s time." % which)
        out = {"dateTime": fmt_offset(dt.astimezone(UTC))}
        if tzname:
            out["timeZone"] = tzname
        return out

    def norm_attendees(self, atts):
        if not isinstance(atts, list):
            raise bad("invalid", "Invalid attendees.")
        out = []
        for a in atts:
            if not isinstance(a, dict) or not a.get("email"):
                raise bad("required", "Missing attendee email.")
            b = {k: a[k] for k in ("email", "displayName", "optional", "comment",
                                   "additionalGuests", "responseStatus") if k in a}
            b["responseStatus"] = b.get("responseStatus") or "needsAction"
            if b["responseStatus"] not in RESPONSES:
                raise bad("invalid", "Invalid attendee response status.")
            if b["email"].lower() == self.opts.email.lower():
                b["self"] = True
                b["organizer"] = True
            out.append(b)
        return out

    def build_event(self, cal, eid, body, cur=None, patch=False, instance_of=None):
        """The stored event that body (an insert, a PUT or a PATCH of cur)
        makes. Raises the 400 Google answers; changes nothing."""
        if not isinstance(body, dict):
            raise gerror(400, "parseError", "Parse Error")
        given = {k: copy.deepcopy(body[k]) for k in WRITABLE if k in body}
        if patch and cur is not None:
            new = copy.deepcopy(cur)
            for k, v in given.items():
                if v is None:
                    new.pop(k, None)
                elif isinstance(v, dict) and isinstance(new.get(k), dict) \
                        and k not in ("start", "end"):
                    merged = dict(new[k])
                    merged.update(v)  # nested objects merge; start/end are replaced
                    new[k] = merged
                else:
                    new[k] = v
        else:
            new = {k: v for k, v in given.items() if v is not None}
            if cur is not None:
                for k in ("recurringEventId", "originalStartTime", "created", "iCalUID"):
                    if k in cur:
                        new[k] = cur[k]
                if "status" not in given and cur.get("status") == "cancelled":
                    new["status"] = "cancelled"  # a PUT does not revive a deleted event
        if instance_of is not None:
            new.pop("recurrence", None)
        recurring = bool(new.get("recurrence"))
        if "start" not in new:
            raise bad("required", "Missing start time.")
        if "end" not in new:
            raise bad("required", "Missing end time.")
        new["start"] = self.norm_time(new["start"], "start", recurring)
        new["end"] = self.norm_time(new["end"], "end", recurring)
        if ("date" in new["start"]) != ("date" in new["end"]):
            raise bad("invalid", "Invalid start time.")
        if "date" in new["start"]:
            if new["end"]["date"] <= new["start"]["date"]:
                raise bad("timeRangeEmpty", "The specified time range is empty.", "end")
        elif parse_instant(new["end"]["dateTime"]) < parse_instant(new["start"]["dateTime"]):
            raise bad("timeRangeEmpty", "The specified time range is empty.", "end")
        if recurring:
            if not isinstance(new["recurrence"], list) or not all(
                    isinstance(x, str) for x in new["recurrence"]):
                raise bad("invalid", "Invalid recurrence rule.")
            try:
                series_rules(new)
            except ValueError:
                raise bad("invalid", "Invalid recurrence rule.")
        st = new.get("status", "confirmed")
        if st not in ("confirmed", "tentative", "cancelled"):
            raise bad("invalid", "Invalid value for: status")
        new["status"] = st
        if "attendees" in new:
            new["attendees"] = self.norm_attendees(new["attendees"])
        old_seq = cur.get("sequence", 0) if cur else 0
        if "sequence" in given and given["sequence"] is not None:
            s = given["sequence"]
            if isinstance(s, bool) or not isinstance(s, int) or s < 0:
                raise bad("invalid", "Invalid sequence value.")
            if s < old_seq and not self.opts.lenient_sequence:
                # [K] What Calendar answers a write carrying an older
                # sequence than the event's (an import or update replaying
                # an old copy).
                raise bad("invalid", "Invalid sequence value. The specified sequence number "
                          "is below the current sequence number of the resource.", "sequence")
            new["sequence"] = s
        else:
            new["sequence"] = old_seq
        if cur is not None and new["sequence"] == old_seq \
                and any(new.get(k) != cur.get(k) for k in SIGNIFICANT):
            new["sequence"] = old_seq + 1
        new["kind"] = "calendar#event"
        new["id"] = eid
        new["htmlLink"] = self.html_link(cal, eid)
        new["creator"] = cur.get("creator") if cur else {"email": self.opts.email,
                                                         "self": True}
        new["organizer"] = cur.get("organizer") if cur else self.organizer(cal)
        if instance_of is not None:
            new["iCalUID"] = instance_of["iCalUID"]
        elif "iCalUID" not in new:
            new["iCalUID"] = body.get("iCalUID") or eid + "@google.com"
        new.setdefault("reminders", {"useDefault": True})
        new.setdefault("eventType", "default")
        if cur is not None:
            new["created"] = cur.get("created")
        return new

    # --- recurring series ---

    def series(self, cal, master, win_start=None, win_end=None, max_n=2500):
        """The instances of master (stored data) overlapping [win_start,
        win_end) (aware datetimes or None), exceptions applied: a list of
        (instance id, stored data, start ms)."""
        horizon = datetime.datetime.now(UTC) + datetime.timedelta(days=self.opts.horizon_days)
        end = win_end or horizon
        out = []
        exc = {rec["data"]["id"]: rec for rec in cal.events.values()
               if rec["data"].get("recurringEventId") == master["id"]}
        for orig, start, stop in expand_series(master, end, max_n):
            iid = "%s_%s" % (master["id"], instance_stamp(orig))
            rec = exc.get(iid)
            data = rec["data"] if rec else self.instance_data(master, iid, orig, start, stop)
            s, e = bounds(data)
            if win_start is not None and e <= win_start and not (s == e == win_start):
                continue
            if win_end is not None and s >= win_end:
                continue
            out.append((iid, data, int(s.timestamp() * 1000)))
        return out

    def instance_data(self, master, iid, orig, start, stop):
        d = copy.deepcopy(master)
        d.pop("recurrence", None)
        d["id"] = iid
        d["recurringEventId"] = master["id"]
        d["originalStartTime"] = orig
        d["start"] = start
        d["end"] = stop
        return d

    def find_instance(self, cal, iid):
        """(master rec, instance data) of an instance id that no exception
        holds yet, or None."""
        master_id, _, stamp = iid.rpartition("_")
        rec = cal.events.get(master_id)
        if not master_id or rec is None or not rec["data"].get("recurrence"):
            return None
        m = rec["data"]
        try:
            if len(stamp) == 8:
                until = datetime.datetime.strptime(stamp, "%Y%m%d").replace(tzinfo=UTC) \
                    + datetime.timedelta(days=2)
            else:
                until = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(
                    tzinfo=UTC) + datetime.timedelta(seconds=1)
        except ValueError:
            return None
        for orig, start, stop in expand_series(m, until, 100000):
            if instance_stamp(orig) == stamp:
                return rec, self.instance_data(m, iid, orig, start, stop)
        return None

    # --- push ---

    def notify(self, cal, state):
        """Queues a header-only notification to every live channel on cal."""
        for ch in list(self.channels.values()):
            if ch["cal"] == cal.id and self.channel_live(ch):
                self.send_channel(ch, state)

    def channel_live(self, ch):
        return not ch["stopped"] and now_ms() < ch["expiration"]

    def send_channel(self, ch, state):
        ch["msg"] += 1
        headers = {"X-Goog-Channel-ID": ch["id"],
                   "X-Goog-Channel-Expiration": http_date(ch["expiration"] / 1000.0),
                   "X-Goog-Resource-ID": ch["resourceId"],
                   "X-Goog-Resource-URI": ch["resourceUri"],
                   "X-Goog-Resource-State": state,
                   "X-Goog-Message-Number": str(ch["msg"]),
                   "User-Agent": USER_AGENT,
                   "Content-Length": "0"}
        if ch.get("token") is not None:
            headers["X-Goog-Channel-Token"] = ch["token"]
        ch["sent"] += 1

        def check(ch=ch):
            with self.lock:
                if ch["stopped"]:
                    return "stopped"
                if now_ms() >= ch["expiration"]:
                    return "expired"
            return None

        self.notifier.enqueue({"url": ch["address"], "body": b"", "headers": headers,
                               "what": state, "target": ch["id"], "check": check})


def bounds(data):
    """(start, end) of stored event data as aware datetimes; an all-day
    event's dates at UTC midnight."""
    out = []
    for k in ("start", "end"):
        t = data[k]
        if "date" in t:
            d = parse_date(t["date"])
            out.append(datetime.datetime(d.year, d.month, d.day, tzinfo=UTC))
        else:
            out.append(parse_instant(t["dateTime"]))
    return out[0], out[1]


def _ical_time(text, tzname, series_tz):
    """One UNTIL/RDATE/EXDATE value: (local naive datetime in the series'
    zone, True when it was a bare date)."""
    if re.match(r"^\d{8}$", text):
        return datetime.datetime.strptime(text, "%Y%m%d"), True
    if re.match(r"^\d{8}T\d{6}Z$", text):
        dt = datetime.datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        return (dt.astimezone(series_tz) if series_tz else dt).replace(tzinfo=None), False
    if re.match(r"^\d{8}T\d{6}$", text):
        local = datetime.datetime.strptime(text, "%Y%m%dT%H%M%S")
        if tzname and series_tz:
            local = to_instant(local, zone(tzname)).astimezone(series_tz).replace(tzinfo=None)
        return local, False
    raise ValueError("bad date-time %s" % text)


def parse_rrule(text, series_tz, allday):
    """"FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10" -> Rule. FREQ DAILY..YEARLY with
    INTERVAL, COUNT, UNTIL, BYDAY, BYMONTHDAY, BYMONTH, WKST; anything else
    (BYSETPOS, BYHOUR, HOURLY...) is refused: the sim does not expand it."""
    parts = {}
    for p in text.split(";"):
        k, _, v = p.partition("=")
        if not k or not v:
            raise ValueError("bad RRULE part %r" % p)
        parts[k.upper()] = v
    freq = parts.pop("FREQ", None)
    rule = Rule(freq, int(parts.pop("INTERVAL", "1")),
                int(parts["COUNT"]) if "COUNT" in parts else None)
    parts.pop("COUNT", None)
    if "UNTIL" in parts:
        rule.until, bare = _ical_time(parts.pop("UNTIL"), None, series_tz)
        if bare and not allday:
            rule.until = rule.until.replace(hour=23, minute=59, second=59)
    if rule.count is not None and rule.until is not None:
        raise ValueError("COUNT and UNTIL")
    if "BYDAY" in parts:
        for d in parts.pop("BYDAY").split(","):
            m = re.match(r"^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$", d.strip().upper())
            if not m:
                raise ValueError("bad BYDAY %s" % d)
            rule.byday.append((int(m.group(1) or 0), WEEKDAYS.index(m.group(2))))
    if "BYMONTHDAY" in parts:
        rule.bymonthday = [int(x) for x in parts.pop("BYMONTHDAY").split(",")]
    if "BYMONTH" in parts:
        rule.bymonth = [int(x) for x in parts.pop("BYMONTH").split(",")]
        if not all(1 <= m <= 12 for m in rule.bymonth):
            raise ValueError("bad BYMONTH")
    parts.pop("WKST", None)
    if parts:
        raise ValueError("unsupported RRULE parts %s" % sorted(parts))
    return rule


def series_rules(data):
    """Parses a series' recurrence lines: (series tz or None, all-day,
    local start, duration, [rules], [exrules], ({exdates}, {exdays}),
    [rdates]). A bare-date EXDATE removes every instance of that day."""
    allday = "date" in data["start"]
    if allday:
        d = parse_date(data["start"]["date"])
        start = datetime.datetime(d.year, d.month, d.day)
        dur = parse_date(data["end"]["date"]) - d
        tz = None
    else:
        tz = zone(data["start"].get("timeZone") or "UTC")
        s = parse_instant(data["start"]["dateTime"])
        start = s.astimezone(tz).replace(tzinfo=None)
        dur = parse_instant(data["end"]["dateTime"]) - s
    rules, exrules, exdates, exdays, rdates = [], [], set(), set(), []
    for line in data.get("recurrence") or []:
        name, _, value = line.partition(":")
        head = name.split(";")
        key = head[0].upper()
        params = dict(p.split("=", 1) for p in head[1:] if "=" in p)
        if key == "RRULE":
            rules.append(parse_rrule(value, tz, allday))
        elif key == "EXRULE":
            exrules.append(parse_rrule(value, tz, allday))
        elif key in ("EXDATE", "RDATE"):
            for v in value.split(","):
                if not v.strip():
                    continue
                d, bare = _ical_time(v.strip(), params.get("TZID"), tz)
                if key == "RDATE":
                    rdates.append(d.replace(hour=start.hour, minute=start.minute,
                                            second=start.second) if bare else d)
                elif bare:
                    exdays.add(d.date())
                else:
                    exdates.add(d)
        else:
            raise ValueError("unknown recurrence line %s" % line)
    if not rules and not rdates:
        raise ValueError("no RRULE")
    return tz, allday, start, dur, rules, exrules, (exdates, exdays), rdates


def expand_series(data, until, max_n):
    """Yields (originalStartTime, start, end) as stored time dicts for each
    instance of a stored Google series that starts before `until` (aware),
    at most max_n, in order."""
    tz, allday, start, dur, rules, exrules, (exdates, exdays), rdates = series_rules(data)
    if allday:
        stop = until.astimezone(UTC).replace(tzinfo=None)
    else:
        stop = until.astimezone(tz).replace(tzinfo=None)
    local = set()
    for r in rules:
        local.update(occurrences(r, start, True, stop, max_n))
    local.update(d for d in rdates if d <= stop)
    for r in exrules:
        local.difference_update(occurrences(r, start, True, stop, max_n * 4))
    n = 0
    tzname = data["start"].get("timeZone")
    for d in sorted(local):
        if d in exdates or d.date() in exdays:
            continue
        if allday:
            s = {"date": d.date().isoformat()}
            e = {"date": (d.date() + dur).isoformat()}
            o = dict(s)
            if tzname:
                o["timeZone"] = tzname
        else:
            inst = to_instant(d, tz)
            s = {"dateTime": fmt_offset(inst), "timeZone": tzname}
            e = {"dateTime": fmt_offset(inst + dur), "timeZone": tzname}
            o = dict(s)
        yield o, s, e
        n += 1
        if n >= max_n:
            return


def render_time(t, tzname):
    """A stored start/end as Google writes it: dateTime with the offset of
    the event's zone (else tzname's), timeZone only when the event has one."""
    if "date" in t:
        return dict(t)
    out = {"dateTime": fmt_offset(parse_instant(t["dateTime"]).astimezone(
        zone(t.get("timeZone") or tzname)))}
    if t.get("timeZone"):
        out["timeZone"] = t["timeZone"]
    return out


class GHandler(BaseHandler):
    sim_name = "gcal-sim"

    def version_string(self):
        return "ESF"  # what www.googleapis.com answers in Server

    def encode(self, obj):
        # Google pretty-prints its JSON (one space a level) unless
        # prettyPrint=false.
        if getattr(self, "pretty", True):
            return json.dumps(obj, indent=1, ensure_ascii=False).encode()
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()

    def random_kinds(self):
        return RANDOM_KINDS | {"403_rate", "403_user_rate", "403_quota"}

    def fault_body(self, status, fault, split):
        """A Google-shaped body for an injected status (OAuth-shaped on the
        token endpoints)."""
        if split.path in ("/token", "/o/oauth2/token", "/revoke"):
            return {"error": "internal_failure" if status >= 500 else "invalid_request",
                    "error_description": "Injected %d" % status}
        kind = (fault or {}).get("kind")
        if status == 403 and kind == "user_rate":
            return gerror(403, "userRateLimitExceeded", "User Rate Limit Exceeded",
                          "usageLimits").body
        if status == 403 and kind == "quota":
            return gerror(403, "quotaExceeded", "Calendar usage limits exceeded.",
                          "usageLimits").body
        if status in (403, 429):
            return gerror(status, "rateLimitExceeded", "Rate Limit Exceeded",
                          "usageLimits").body
        if status == 401:
            return self.auth_error("unknown").body
        if status == 404:
            return not_found().body
        if status == 410:
            return self.gone().body
        if status >= 500:
            return gerror(status, "backendError", "Backend Error").body
        return gerror(status, "badRequest", "Bad Request").body

    def gone(self):
        return gerror(410, "fullSyncRequired",
                      "Sync token is no longer valid, a full sync is required.",
                      location="syncToken")

    def auth_error(self, why):
        if why == "missing":
            body = {"error": {"code": 401, "message": "Request is missing required "
                              "authentication credential. Expected OAuth 2 access token, "
                              "login cookie or other valid authentication credential. See "
                              "https://developers.google.com/identity/sign-in/web/"
                              "devconsole-project.",
                              "errors": [{"message": "Login Required.", "domain": "global",
                                          "reason": "required", "location": "Authorization",
                                          "locationType": "header"}],
                              "status": "UNAUTHENTICATED"}}
        else:
            body = {"error": {"code": 401, "message": "Request had invalid authentication "
                              "credentials. Expected OAuth 2 access token, login cookie or "
                              "other valid authentication credential. See "
                              "https://developers.google.com/identity/sign-in/web/"
                              "devconsole-project.",
                              "errors": [{"message": "Invalid Credentials", "domain": "global",
                                          "reason": "authError", "location": "Authorization",
                                          "locationType": "header"}],
                              "status": "UNAUTHENTICATED"}}
        return ApiError(401, body, {"WWW-Authenticate": 'Bearer realm="https://accounts.'
                                    'google.com/", error="invalid_token"'})

    # --- routing ---

    def handle_api(self, method, split, raw, entry):
        st = self.server.state
        q = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        self.pretty = q.get("prettyPrint", ["true"])[-1] != "false"
        path = split.path
        if path in ("/o/oauth2/v2/auth", "/o/oauth2/auth") and method == "GET":
            return self.oauth_authorize(q)
        if path in ("/token", "/o/oauth2/token") and method == "POST":
            return self.oauth_token(raw)
        if path in ("/revoke", "/o/oauth2/revoke") and method == "POST":
            return self.oauth_revoke(raw, q)
        parts = [urllib.parse.unquote(p) for p in path.split("/") if p]
        if parts[:3] == ["oauth2", "v3", "userinfo"] and method == "GET":
            self.authorize(False)
            return 200, {"sub": "1%020d" % (abs(hash(self.server.opts.email)) % 10 ** 20),
                         "email": self.server.opts.email, "email_verified": True}, None, False
        if parts[:2] != ["calendar", "v3"]:
            raise not_found()
        # events.watch and channels.stop need only a read scope.
        write = method in ("PUT", "PATCH", "DELETE") or (
            method == "POST" and parts[-1] not in ("stop", "watch"))
        self.authorize(write)
        with st.lock:
            ok_user, _ = st.user_quota.admit()
            ok_proj, _ = st.project_quota.admit() if ok_user else (True, 0)
            if not (ok_user and ok_proj):
                st.stats["quota_refused"] += 1
                st.stats["throttled"] += 1
        if not ok_user:
            raise gerror(st.quota_status, "userRateLimitExceeded" if st.quota_status == 403
                         else "rateLimitExceeded", "User Rate Limit Exceeded"
                         if st.quota_status == 403 else "Rate Limit Exceeded", "usageLimits")
        if not ok_proj:
            raise gerror(st.quota_status, "rateLimitExceeded", "Rate Limit Exceeded",
                         "usageLimits")
        r = parts[2:]
        body = None
        if method in ("POST", "PUT", "PATCH") and raw:
            try:
                body = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                raise gerror(400, "parseError", "Parse Error")
        with st.lock:
            if r == ["users", "me", "calendarList"] and method == "GET":
                return 200, self.calendar_list(), None, False
            if r == ["channels", "stop"] and method == "POST":
                return self.channel_stop(body)
            if len(r) >= 2 and r[0] == "calendars":
                cal = st.calendar(r[1])
                rest = r[2:]
                if rest == [] and method == "GET":
                    return 200, self.calendar_resource(cal), None, False
                if rest == ["events"] and method == "GET":
                    st.stats["list_reads"] += 1
                    return 200, self.list_events(cal, q), None, False
                if rest == ["events"] and method == "POST":
                    return self.insert(cal, body, q)
                if rest == ["events", "import"] and method == "POST":
                    if not isinstance(body, dict) or not body.get("iCalUID"):
                        raise bad("required", "Missing iCalUID.")
                    return self.insert(cal, body, q)
                if rest == ["events", "watch"] and method == "POST":
                    return self.watch(cal, body)
                if len(rest) == 2 and rest[0] == "events":
                    return self.event_item(cal, rest[1], method, body, q)
                if len(rest) == 3 and rest[0] == "events" and rest[2] == "instances" \
                        and method == "GET":
                    return 200, self.list_instances(cal, rest[1], q), None, False
                if len(rest) == 3 and rest[0] == "events" and rest[2] == "move" \
                        and method == "POST":
                    dest = q.get("destination", [None])[-1]
                    if not dest:
                        raise bad("required", "Required parameter: destination",
                                  "destination")
                    out = self.move_event(cal, rest[1], st.calendar(dest))
                    return 200, out, None, True
        raise not_found()

    def authorize(self, write):
        """Checks the Bearer token: 401 when missing, unknown, expired or
        revoked; 403 insufficientPermissions when its scope does not allow
        the request."""
        st = self.server.state
        tok = bearer(self.headers)
        with st.lock:
            why = st.tokens.check_access(tok)
            if why:
                st.stats["unauthorized"] += 1
                st.tokens.stats["rejected_tokens"] += 1
            scope = (st.tokens.access.get(tok) or {}).get("scope", "")
        if why:
            raise self.auth_error(why)
        scopes = set(scope.split())
        allowed = GOOGLE_SCOPES_RW if write else GOOGLE_SCOPES_RO
        if not scopes & set(allowed):
            raise gerror(403, "insufficientPermissions",
                         "Request had insufficient authentication scopes.",
                         extra={"status": "PERMISSION_DENIED"})

    # --- OAuth ---

    def oauth_authorize(self, q):
        """The consent screen, for tests: no page, an immediate redirect to
        redirect_uri with a code (or error=access_denied after
        /_sim/oauth {"deny": true})."""
        st = self.server.state
        opts = self.server.opts
        p = {k: v[-1] for k, v in q.items()}
        if p.get("client_id") != opts.client_id:
            return 401, "Error 401: invalid_client\nThe OAuth client was not found.", \
                None, False
        ruri = p.get("redirect_uri")
        if not ruri or (opts.redirect_uri and ruri != opts.redirect_uri) or \
                (not opts.redirect_uri and not loopback_uri(ruri)):
            return 400, "Error 400: redirect_uri_mismatch", None, False
        if not p.get("scope"):
            return 400, "Error 400: invalid_request\nMissing required parameter: scope", \
                None, False
        extra = {"state": p["state"]} if "state" in p else {}
        if p.get("response_type") != "code":
            return 302, None, {"Location": with_query(ruri, dict(
                error="unsupported_response_type", **extra))}, False
        with st.lock:
            if st.deny:
                return 302, None, {"Location": with_query(ruri, dict(
                    error="access_denied", **extra))}, False
            code = "4/0A" + st.rand(70, ALNUM + "-_")
            offline = p.get("access_type") == "offline"
            # A refresh token comes only from the consent screen: the first
            # time the account consents to this client, or with
            # prompt=consent (§3.1).
            issue_refresh = offline and (opts.client_id not in st.consented
                                         or "consent" in (p.get("prompt") or "").split())
            if offline:
                st.consented.add(opts.client_id)
            st.tokens.codes[code] = {"redirect_uri": ruri, "scope": p["scope"],
                                     "exp": time.time() + 600, "refresh": issue_refresh,
                                     "challenge": p.get("code_challenge"),
                                     "method": p.get("code_challenge_method")}
        return 302, None, {"Location": with_query(ruri, dict(
            code=code, scope=p["scope"], **extra))}, False

    def oauth_error(self, status, error, desc):
        return ApiError(status, {"error": error, "error_description": desc},
                        {"Content-Type": "application/json; charset=utf-8",
                         "Cache-Control": "no-cache, no-store, max-age=0, must-revalidate",
                         "Pragma": "no-cache"})

    def issue(self, scope, refresh):
        """A new access token (and its answer) under the state lock."""
        st = self.server.state
        tok = "ya29.a0" + st.rand(150, ALNUM + "-_")
        st.tokens.access[tok] = {"exp": time.time() + st.token_ttl_s, "refresh": refresh,
                                 "scope": scope}
        st.tokens.stats["access_tokens_issued"] += 1
        return {"access_token": tok, "expires_in": int(st.token_ttl_s), "scope": scope,
                "token_type": "Bearer"}

    def new_refresh(self, scope):
        st = self.server.state
        r = "1//0" + st.rand(100, ALNUM + "-_")
        exp = time.time() + st.refresh_ttl_s if st.refresh_ttl_s else None
        st.tokens.refresh[r] = {"state": "live", "scope": scope, "exp": exp, "uses": 0}
        return r

    def oauth_token(self, raw):
        st = self.server.state
        opts = self.server.opts
        form = read_form(raw)
        grant = form.get("grant_type")
        with st.lock:
            st.tokens.stats["token_requests"] += 1
        cid, secret = client_auth(self.headers, form)
        if grant == "refresh_token":
            return self.refresh_grant(form, cid, secret)
        if not grant:
            raise self.oauth_error(400, "invalid_request", "Missing required parameter: "
                                   "grant_type")
        if grant != "authorization_code":
            raise self.oauth_error(400, "unsupported_grant_type",
                                   "Invalid grant_type: %s" % grant)
        if cid != opts.client_id or secret != opts.client_secret:
            raise self.oauth_error(401, "invalid_client", "Unauthorized")
        with st.lock:
            c = st.tokens.codes.pop(form.get("code") or "", None)
            if c is None or time.time() >= c["exp"]:
                raise self.oauth_error(400, "invalid_grant", "Bad Request")
            if form.get("redirect_uri") != c["redirect_uri"]:
                raise self.oauth_error(400, "redirect_uri_mismatch", "Bad Request")
            if not pkce_ok(c["challenge"], c["method"], form.get("code_verifier")):
                raise self.oauth_error(400, "invalid_grant", "Missing code verifier."
                                       if not form.get("code_verifier")
                                       else "Invalid code verifier.")
            st.tokens.stats["code_grants"] += 1
            r = self.new_refresh(c["scope"]) if c["refresh"] else None
            out = self.issue(c["scope"], r)
            if r:
                out["refresh_token"] = r
                if st.refresh_ttl_s:
                    out["refresh_token_expires_in"] = int(st.refresh_ttl_s)
        return 200, out, {"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate",
                          "Pragma": "no-cache"}, True

    def refresh_grant(self, form, cid, secret):
        """grant_type=refresh_token: counted, with the number of refreshes
        in flight at once (single-flight tests); --token-delay-ms keeps
        each in flight that long."""
        st = self.server.state
        opts = self.server.opts
        with st.lock:
            tb = st.tokens
            tb.stats["refreshes"] += 1
            tb.refresh_in_flight += 1
            tb.stats["max_concurrent_refreshes"] = max(tb.stats["max_concurrent_refreshes"],
                                                       tb.refresh_in_flight)
            delay = st.token_delay_ms
        try:
            if delay:
                time.sleep(delay / 1000.0)
            if cid != opts.client_id or secret != opts.client_secret:
                with st.lock:
                    st.tokens.stats["refresh_failures"] += 1
                raise self.oauth_error(401, "invalid_client", "Unauthorized")
            with st.lock:
                r = form.get("refresh_token") or ""
                info = st.tokens.refresh.get(r)
                if info is None or info["state"] != "live" or (
                        info["exp"] is not None and time.time() >= info["exp"]):
                    st.tokens.stats["refresh_failures"] += 1
                    raise self.oauth_error(400, "invalid_grant",
                                           "Token has been expired or revoked.")
                info["uses"] += 1
                scope = form.get("scope") or info["scope"]
                if st.rotate:
                    info["state"] = "rotated"  # the old one is dead from now on
                    new = self.new_refresh(info["scope"])
                    out = self.issue(scope, new)
                    out["refresh_token"] = new
                else:
                    out = self.issue(scope, r)
                if info.get("exp"):
                    out["refresh_token_expires_in"] = int(max(0, info["exp"] - time.time()))
            return 200, out, {"Cache-Control": "no-cache, no-store, max-age=0, "
                              "must-revalidate", "Pragma": "no-cache"}, True
        finally:
            with st.lock:
                st.tokens.refresh_in_flight -= 1

    def oauth_revoke(self, raw, q):
        st = self.server.state
        tok = read_form(raw).get("token") or q.get("token", [None])[-1]
        with st.lock:
            if tok in st.tokens.refresh:
                st.tokens.revoke_refresh(tok)
                return 200, {}, None, True
            if tok in st.tokens.access:
                st.tokens.access[tok]["revoked"] = True
                return 200, {}, None, True
        raise self.oauth_error(400, "invalid_token", "Token expired or revoked")

    # --- calendars ---

    def calendar_resource(self, cal):
        return {"kind": "calendar#calendar", "etag": '"%d"' % (cal.updated_ms * 1000),
                "id": cal.id, "summary": cal.summary, "timeZone": cal.tz,
                "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]}}

    def calendar_list(self):
        st = self.server.state
        items = []
        for cal in st.calendars.values():
            e = {"kind": "calendar#calendarListEntry", "etag": '"%d"' % (cal.updated_ms * 1000),
                 "id": cal.id, "summary": cal.summary, "timeZone": cal.tz,
                 "colorId": "14", "backgroundColor": "#9fe1e7", "foregroundColor": "#000000",
                 "selected": True, "accessRole": "owner",
                 "defaultReminders": [{"method": "popup", "minutes": 10}]}
            if cal.primary:
                e["primary"] = True
            items.append(e)
        return {"kind": "calendar#calendarList", "etag": '"%d"' % (now_ms() * 1000),
                "nextSyncToken": target.encode_token({"cl": 1}), "items": items}

    # --- events ---

    def render(self, cal, data, tzname=None, minimal=False, max_att=None):
        """An event as the API answers it: a deleted one in a list only
        with the fields Google guarantees for it."""
        tzname = tzname or cal.tz
        if minimal and data.get("status") == "cancelled":
            e = {k: data[k] for k in ("kind", "etag", "id", "status") if k in data}
            if "recurringEventId" in data:
                e["recurringEventId"] = data["recurringEventId"]
                e["originalStartTime"] = render_time(data["originalStartTime"], tzname)
            return e
        e = copy.deepcopy(data)
        for k in ("start", "end", "originalStartTime"):
            if k in e:
                e[k] = render_time(e[k], tzname)
        if max_att is not None and len(e.get("attendees") or []) > max_att:
            e["attendees"] = e["attendees"][:max_att]
            e["attendeesOmitted"] = True
        return ordered(e)

    def insert(self, cal, body, q):
        st = self.server.state
        self.check_send_updates(q)
        if not isinstance(body, dict):
            raise gerror(400, "parseError", "Parse Error")
        eid = body.get("id")
        if eid is not None:
            if not isinstance(eid, str) or not re.match(r"^[a-v0-9]{5,1024}$", eid):
                raise bad("invalid", "Invalid resource id value.")
            if eid in cal.events:
                # Even a deleted event keeps its id.
                raise gerror(409, "duplicate", "The requested identifier already exists.")
        else:
            eid = st.new_event_id()
        data = st.build_event(cal, eid, body)
        st.put_event(cal, eid, data)
        st.stats["creates"] += 1
        return 200, self.render(cal, data), None, True

    def check_send_updates(self, q):
        v = q.get("sendUpdates", [None])[-1]
        if v is not None and v not in ("all", "externalOnly", "none"):
            raise bad("invalid", "Invalid value for: sendUpdates", "sendUpdates")

    def check_if_match(self, data):
        want = self.headers.get("If-Match")
        if want and want != "*" and want != data.get("etag"):
            raise gerror(412, "conditionNotMet", "Precondition Failed", location="If-Match",
                         location_type="header")

    def event_item(self, cal, eid, method, body, q):
        st = self.server.state
        rec = cal.events.get(eid)
        inst = None
        if rec is None:
            inst = st.find_instance(cal, eid)
            if inst is None:
                raise not_found()
        cur = rec["data"] if rec else inst[1]
        tzname = q.get("timeZone", [None])[-1]
        if method == "GET":
            if self.headers.get("If-None-Match") == cur.get("etag"):
                return 304, None, None, False
            return 200, self.render(cal, cur, tzname), None, False
        if method not in ("PUT", "PATCH", "DELETE"):
            raise not_found()
        self.check_send_updates(q)
        self.check_if_match(cur)
        master = None
        if cur.get("recurringEventId"):
            mrec = cal.events.get(cur["recurringEventId"])
            master = mrec["data"] if mrec else None
        if method == "DELETE":
            if cur.get("status") == "cancelled":
                raise gerror(410, "deleted", "Resource has been deleted")
            self.cancel(cal, eid, cur)
            st.stats["deletes"] += 1
            return 204, None, None, True
        if not isinstance(body, dict):
            raise gerror(400, "parseError", "Parse Error")
        data = st.build_event(cal, eid, body, cur, patch=method == "PATCH",
                              instance_of=master)
        st.put_event(cal, eid, data)
        st.stats["updates"] += 1
        return 200, self.render(cal, data, tzname), None, True

    def cancel(self, cal, eid, cur, notify=True):
        """Deletes an event: it stays, cancelled (Google keeps deleted events
        for sync). A series takes its exceptions with it; an instance no
        exception holds yet becomes a cancelled exception."""
        st = self.server.state
        data = copy.deepcopy(cur)
        data["status"] = "cancelled"
        st.put_event(cal, eid, data, notify)
        if data.get("recurrence"):
            for rec in list(cal.events.values()):
                d = rec["data"]
                if d.get("recurringEventId") == eid and d.get("status") != "cancelled":
                    d2 = copy.deepcopy(d)
                    d2["status"] = "cancelled"
                    st.put_event(cal, d["id"], d2, notify=False)
        return data

    def move_event(self, cal, eid, dest):
        """events.move: the event leaves cal (cancelled there, so a sync of
        cal sees it go) and lives on in dest under the same id."""
        st = self.server.state
        rec = cal.events.get(eid)
        if rec is None or rec["data"].get("status") == "cancelled":
            raise not_found()
        if rec["data"].get("recurringEventId"):
            raise bad("cannotChangeOrganizerOfInstance",
                      "Cannot change the organizer of an instance.")
        if dest is cal:
            return self.render(cal, rec["data"])
        if eid in dest.events and dest.events[eid]["data"].get("status") != "cancelled":
            raise gerror(409, "duplicate", "The requested identifier already exists.")
        data = copy.deepcopy(rec["data"])
        self.cancel(cal, eid, rec["data"])
        data["organizer"] = st.organizer(dest)
        data["htmlLink"] = st.html_link(dest, eid)
        data["sequence"] = data.get("sequence", 0) + 1
        st.put_event(dest, eid, data)
        return self.render(dest, data)

    # --- reads ---

    def list_events(self, cal, q):
        """events.list: full reads, incremental (syncToken) reads, pages."""
        st = self.server.state

        def p(name):
            return q.get(name, [None])[-1]

        def flag(name):
            v = p(name)
            if v is None:
                return None
            if v not in ("true", "false"):
                raise bad("invalid", "Invalid value for: %s" % name, name)
            return v == "true"

        def when(name):
            v = p(name)
            if v is None:
                return None
            dt = parse_instant(v)
            if dt is None:
                raise bad("badRequest", "Bad Request")
            return dt

        sync, page = p("syncToken"), p("pageToken")
        single = bool(flag("singleEvents"))
        show_deleted = flag("showDeleted")
        order = p("orderBy")
        try:
            max_results = int(p("maxResults") or 250)
        except ValueError:
            raise bad("invalid", "Invalid value for: maxResults", "maxResults")
        if not 1 <= max_results <= 2500:
            raise bad("invalid", "Invalid value '%d'. Values must be within the range: "
                      "[1, 2500]" % max_results, "maxResults")
        max_att = p("maxAttendees")
        max_att = int(max_att) if max_att and max_att.isdigit() else None
        tz_out = p("timeZone")
        if tz_out is not None:
            try:
                zone(tz_out)
            except ValueError:
                raise bad("invalid", "Invalid time zone definition.", "timeZone")
        if sync is not None:
            for name in SYNC_FORBIDDEN:
                if name in q:
                    # The sim's wording; Google refuses these with 400.
                    raise bad("invalid", "The %s parameter cannot be used together with "
                              "syncToken." % name, name)
            if show_deleted is False:
                raise bad("invalid", "showDeleted=false cannot be used with syncToken: "
                          "deletions are always returned.", "showDeleted")
        if order not in (None, "startTime", "updated"):
            raise bad("invalid", "Invalid value for: orderBy", "orderBy")
        if order == "startTime" and not single:
            raise bad("badRequest", "The requested ordering is not available for the "
                      "particular query.")
        tmin, tmax, umin = when("timeMin"), when("timeMax"), when("updatedMin")
        if tmin and tmax and tmax <= tmin:
            raise bad("timeRangeEmpty", "The specified time range is empty.", "timeMax")

        cur = None
        if page:
            cur = self.decode(page, "pageToken")
        base = None
        if sync is not None:
            tok = self.decode(sync, "syncToken")
            if tok.get("c") != cal.id or not isinstance(tok.get("s"), int):
                raise bad("invalid", "Invalid sync token value.", "syncToken")
            if tok.get("g") != cal.generation:
                st.stats["gone_410"] += 1
                raise self.gone()
            if bool(tok.get("e")) != single:
                # Keep singleEvents as the full sync had it (§3.4): the sim
                # refuses a change rather than guess what Google returns.
                raise bad("invalid", "singleEvents must be the same as in the request that "
                          "issued the sync token.", "singleEvents")
            base = tok["s"]
        if cur is not None:
            if cur.get("m") == "sync":
                if cur.get("g") != cal.generation:
                    st.stats["gone_410"] += 1
                    raise self.gone()
                base = cur["s"]
                single = bool(cur.get("e"))
        mode = "sync" if base is not None else "full"
        if cur is not None and cur.get("m") != mode:
            raise bad("invalid", "Invalid page token value.", "pageToken")
        st.stats["sync_reads" if mode == "sync" else "full_reads"] += 1
        begun = cur["h"] if cur else st.change_seq
        win_end = tmax
        rows = {}  # id -> (key, data)

        def add(key, data):
            old = rows.get(data["id"])
            if old is None or old[0] < key:
                rows[data["id"]] = (key, data)

        if mode == "sync":
            for rec in cal.events.values():
                if rec["seq"] <= base:
                    continue
                d = rec["data"]
                if single and d.get("recurrence"):
                    for iid, idata, sms in st.series(cal, d):
                        if d["status"] == "cancelled" and idata.get("status") != "cancelled":
                            idata = dict(idata, status="cancelled")
                        add((rec["seq"], sms, iid), idata)
                else:
                    add((rec["seq"], int(bounds(d)[0].timestamp() * 1000), d["id"]), d)
        else:
            for rec in cal.events.values():
                d = rec["data"]
                cancelled = d.get("status") == "cancelled"
                recently = umin is not None and rec["ms"] >= umin.timestamp() * 1000
                if umin is not None and not recently:
                    continue
                if cancelled and not show_deleted and not recently:
                    continue  # updatedMin returns deletions since then regardless
                if not self.matches(d, q):
                    continue
                if d.get("recurrence") and (single or tmin or tmax):
                    insts = st.series(cal, d, tmin, win_end) if not cancelled else []
                    if not single:
                        if insts or (cancelled and (show_deleted or recently)):
                            add(self.key(order, rec, bounds(d)[0], d["id"]), d)
                        continue
                    if cancelled:
                        continue
                    for iid, idata, sms in insts:
                        if iid in cal.events:
                            continue  # the exception is listed on its own
                        add(self.key(order, rec, None, iid, sms), idata)
                    continue
                if single and d.get("recurrence"):
                    continue
                s, e = bounds(d)
                if (tmin and e <= tmin) or (tmax and s >= tmax):
                    continue
                if single and d.get("recurringEventId"):
                    mrec = cal.events.get(d["recurringEventId"])
                    if mrec and mrec["data"].get("status") == "cancelled" \
                            and not show_deleted:
                        continue
                add(self.key(order, rec, s, d["id"]), d)
        ordered_rows = sorted(rows.values(), key=lambda kv: kv[0])
        last = tuple(cur["k"]) if cur and cur.get("k") is not None else None
        if last is not None:
            ordered_rows = [r for r in ordered_rows if tuple(r[0]) > last]
        limit = max_results if not st.page_cap else min(max_results, st.page_cap)
        out = {"kind": "calendar#events", "etag": '"p%x"' % (cal.updated_ms * 1000),
               "summary": cal.summary, "description": "", "updated":
               fmt_stamp_ms(cal.updated_ms), "timeZone": tz_out or cal.tz,
               "accessRole": "owner", "defaultReminders": [{"method": "popup", "minutes": 10}]}
        tokdata = {"m": mode, "h": begun, "g": cal.generation, "s": base, "e": single}
        if cur is None and st.empty_first and ordered_rows:
            # An empty first page that still says "more": keep following.
            out["nextPageToken"] = target.encode_token(dict(tokdata, k=None))
            out["items"] = []
            return out
        pg = ordered_rows[:limit]
        out["items"] = [self.render(cal, d, tz_out, minimal=True, max_att=max_att)
                        for _, d in pg]
        if len(ordered_rows) > limit:
            out["nextPageToken"] = target.encode_token(dict(tokdata, k=list(pg[-1][0])))
        elif order is None:
            # A read ordered by startTime or updated ends without a sync token,
            # as Google's does (google-api-ruby-client #312).
            out["nextSyncToken"] = target.encode_token(
                {"g": cal.generation, "s": begun, "c": cal.id, "e": single})
        return out

    def key(self, order, rec, start, eid, sms=None):
        if sms is None:
            sms = int(start.timestamp() * 1000)
        if order == "startTime":
            return (sms, rec["no"], eid)
        if order == "updated":
            return (rec["ms"], rec["no"], eid)
        return (rec["no"], sms, eid)

    def decode(self, text, name):
        try:
            return target.decode_token(text, name)
        except target.BadRequest:
            raise bad("invalid", "Invalid %s value." % ("sync token" if name == "syncToken"
                                                         else "page token"), name)

    def matches(self, d, q):
        """The full-read filters: q (text), iCalUID, extended properties."""
        text = q.get("q", [None])[-1]
        if text:
            hay = " ".join([d.get("summary") or "", d.get("description") or "",
                            d.get("location") or ""] +
                           ["%s %s" % (a.get("email", ""), a.get("displayName", ""))
                            for a in d.get("attendees") or []]).lower()
            if not all(w in hay for w in text.lower().split()):
                return False
        uid = q.get("iCalUID", [None])[-1]
        if uid is not None and d.get("iCalUID") != uid:
            return False
        for kind, name in (("private", "privateExtendedProperty"),
                           ("shared", "sharedExtendedProperty")):
            props = (d.get("extendedProperties") or {}).get(kind) or {}
            for cond in q.get(name, []):
                k, _, v = cond.partition("=")
                if props.get(k) != v:
                    return False
        return True

    def list_instances(self, cal, eid, q):
        st = self.server.state
        rec = cal.events.get(eid)
        if rec is None or not rec["data"].get("recurrence"):
            raise not_found()
        tmin = parse_instant(q.get("timeMin", [""])[-1])
        tmax = parse_instant(q.get("timeMax", [""])[-1])
        show_deleted = q.get("showDeleted", ["false"])[-1] == "true"
        tz_out = q.get("timeZone", [None])[-1]
        try:
            limit = int(q.get("maxResults", ["250"])[-1])
        except ValueError:
            raise bad("invalid", "Invalid value for: maxResults", "maxResults")
        if not 1 <= limit <= 2500:
            raise bad("invalid", "Invalid value for: maxResults", "maxResults")
        if st.page_cap:
            limit = min(limit, st.page_cap)
        insts = [(iid, d) for iid, d, _ in st.series(cal, rec["data"], tmin, tmax)
                 if show_deleted or d.get("status") != "cancelled"]
        off = 0
        if q.get("pageToken"):
            off = self.decode(q["pageToken"][-1], "pageToken").get("o", 0)
        page = insts[off:off + limit]
        out = {"kind": "calendar#events", "etag": '"p%x"' % (cal.updated_ms * 1000),
               "summary": cal.summary, "updated": fmt_stamp_ms(cal.updated_ms),
               "timeZone": tz_out or cal.tz, "accessRole": "owner",
               "defaultReminders": [{"method": "popup", "minutes": 10}],
               "items": [self.render(cal, d, tz_out, minimal=True) for _, d in page]}
        if off + limit < len(insts):
            out["nextPageToken"] = target.encode_token({"o": off + limit})
        return out

    # --- push ---

    def watch(self, cal, body):
        """events.watch: a channel on the calendar's events. The answer
        leaves first, then the channel's "sync" message."""
        st = self.server.state
        opts = self.server.opts
        if not isinstance(body, dict):
            raise gerror(400, "parseError", "Parse Error")
        cid = body.get("id")
        if not cid or not isinstance(cid, str):
            raise bad("required", "Required", "id")
        if len(cid) > 64 or not re.match(r"^[A-Za-z0-9\-_+/=]+$", cid):
            raise bad("invalid", "Invalid channel id.", "id")
        if body.get("type") not in ("web_hook", "webhook"):
            raise bad("invalid", "Invalid value for: type", "type")
        address = body.get("address")
        u = urllib.parse.urlsplit(address or "")
        if u.scheme not in ("http", "https") or not u.hostname:
            raise bad("invalid", "Invalid value for: address", "address")
        if u.scheme != "https" and (opts.require_https or u.hostname not in (
                "127.0.0.1", "localhost", "::1")):
            # Google wants HTTPS; the sim lets plain HTTP reach 127.0.0.1.
            raise bad("push.webhookUrlNotHttps", "WebHook callback must be HTTPS: %s"
                      % address, "address")
        token = body.get("token")
        if token is not None and (not isinstance(token, str) or len(token) > 256):
            raise bad("invalid", "Invalid channel token.", "token")
        old = st.channels.get(cid)
        if old is not None and st.channel_live(old):
            raise bad("channelIdNotUnique", "Channel id %s not unique" % cid)
        now = now_ms()
        ttl_ms = int(opts.channel_ttl_s * 1000)
        exp = body.get("expiration")
        if exp is not None:
            try:
                exp = int(exp)
            except (TypeError, ValueError):
                raise bad("invalid", "Invalid value for: expiration", "expiration")
        ttl = (body.get("params") or {}).get("ttl")
        if ttl is not None:
            try:
                exp = now + int(float(ttl) * 1000)
            except (TypeError, ValueError):
                raise bad("invalid", "Invalid value for: params.ttl", "params.ttl")
        if exp is None or exp <= now:
            exp = now + ttl_ms
        exp = min(exp, now + int(opts.channel_max_ttl_s * 1000))
        ch = {"id": cid, "resourceId": cal.resource_id,
              "resourceUri": "http://127.0.0.1:%d/calendar/v3/calendars/%s/events?alt=json"
              % (opts.port, urllib.parse.quote(cal.id)),
              "token": token, "address": address, "expiration": exp, "cal": cal.id,
              "msg": 0, "sent": 0, "stopped": False, "created": now,
              "n": st.channel_seq + 1}
        st.channel_seq += 1
        st.channels[cid] = ch
        st.stats["watches"] += 1
        out = {"kind": "api#channel", "id": cid, "resourceId": cal.resource_id,
               "resourceUri": ch["resourceUri"], "expiration": str(exp)}
        if token is not None:
            out["token"] = token

        def first():
            with st.lock:
                if st.channel_live(ch) and ch["msg"] == 0:
                    st.send_channel(ch, "sync")

        self.pending_after = first
        return 200, out, None, True

    def channel_stop(self, body):
        st = self.server.state
        if not isinstance(body, dict) or not body.get("id") or not body.get("resourceId"):
            raise bad("required", "Required", "id")
        ch = st.channels.get(body["id"])
        if ch is None or ch["stopped"] or now_ms() >= ch["expiration"] \
                or ch["resourceId"] != body["resourceId"]:
            raise gerror(404, "notFound", "Channel '%s' not found for project '%s'"
                         % (body["id"], self.server.opts.project))
        ch["stopped"] = True
        st.stats["channel_stops"] += 1
        return 204, None, None, True

    # --- the control API ---

    def cal_arg(self, arg):
        return self.server.state.calendar(arg.get("calendar") or "primary")

    def ctl_get_stats(self, arg, q):
        st = self.server.state
        with st.lock:
            out = copy.deepcopy(st.stats)
            out["oauth"] = dict(st.tokens.stats, refresh_in_flight=st.tokens.refresh_in_flight,
                                live_access_tokens=sum(1 for t in st.tokens.access
                                                       if not st.tokens.check_access(t)),
                                live_refresh_tokens=sum(1 for r in st.tokens.refresh.values()
                                                        if r["state"] == "live"))
            out["calendars"] = {c.id: {"events": sum(1 for r in c.events.values()
                                                     if r["data"]["status"] != "cancelled"),
                                       "cancelled": sum(1 for r in c.events.values()
                                                        if r["data"]["status"] == "cancelled")}
                                for c in st.calendars.values()}
            out["channels_live"] = sum(1 for c in st.channels.values() if st.channel_live(c))
            out["channels_total"] = len(st.channels)
            out["faults_queued"] = len(st.faults)
            out["change_seq"] = st.change_seq
        out["notifications"] = self.server.notifier.snapshot(10 ** 12)[0]
        return 200, out

    def ctl_post_reset(self, arg, q):
        st = self.server.state
        with st.lock:
            st.reset()
        self.server.notifier.reset()
        return 200, {"status": "reset"}

    def ctl_get_events(self, arg, q):
        """{id: event as GET answers it} of one calendar (?calendar=ID,
        default primary), cancelled ones too with ?deleted=1;
        ?instances=1 adds the expanded instances of each series."""
        st = self.server.state
        with st.lock:
            cal = st.calendar(q.get("calendar", ["primary"])[-1])
            deleted = q.get("deleted", ["0"])[-1] in ("1", "true")
            out = {}
            for eid, rec in cal.events.items():
                d = rec["data"]
                if d["status"] == "cancelled" and not deleted:
                    continue
                out[eid] = self.render(cal, d)
                if d.get("recurrence") and q.get("instances", ["0"])[-1] in ("1", "true"):
                    out[eid]["_instances"] = [
                        self.render(cal, x, minimal=True) for _, x, _ in st.series(cal, d)
                        if deleted or x.get("status") != "cancelled"]
            return 200, out

    def ctl_get_calendars(self, arg, q):
        st = self.server.state
        with st.lock:
            return 200, [{"id": c.id, "summary": c.summary, "timeZone": c.tz,
                          "primary": c.primary, "resourceId": c.resource_id}
                         for c in st.calendars.values()]

    def person(self, arg, fn):
        """Runs fn(cal) as a person in the calendar UI: the API's rules,
        then push. "notify": false stores quietly."""
        st = self.server.state
        with st.lock:
            cal = self.cal_arg(arg)
            out = fn(cal)
            st.stats["person_changes"] += 1
            return 200, {"event": out}

    def ctl_post_create(self, arg, q):
        st = self.server.state

        def fn(cal):
            body = dict(arg.get("event") or {})
            eid = body.get("id") or st.new_event_id()
            if eid in cal.events:
                raise gerror(409, "duplicate", "The requested identifier already exists.")
            data = st.build_event(cal, eid, body)
            st.put_event(cal, eid, data, notify=arg.get("notify", True))
            return self.render(cal, data)
        return self.person(arg, fn)

    def lookup(self, cal, eid):
        st = self.server.state
        rec = cal.events.get(eid)
        if rec is not None:
            return rec["data"], None
        inst = st.find_instance(cal, eid)
        if inst is None:
            raise not_found()
        return inst[1], inst[0]["data"]

    def ctl_post_update(self, arg, q):
        """A person edits an event (patch semantics); an instance id makes
        an exception."""
        st = self.server.state

        def fn(cal):
            cur, _ = self.lookup(cal, arg["id"])
            master = None
            if cur.get("recurringEventId"):
                m = cal.events.get(cur["recurringEventId"])
                master = m["data"] if m else None
            data = st.build_event(cal, arg["id"], arg.get("fields") or {}, cur, patch=True,
                                  instance_of=master)
            st.put_event(cal, arg["id"], data, notify=arg.get("notify", True))
            return self.render(cal, data)
        return self.person(arg, fn)

    def ctl_post_move(self, arg, q):
        """A person drags an event (or one instance) by "minutes", or sets
        "start"/"end"; with "to_calendar" moves it to another calendar."""
        st = self.server.state

        def fn(cal):
            if arg.get("to_calendar"):
                return self.move_event(cal, arg["id"], st.calendar(arg["to_calendar"]))
            cur, master = self.lookup(cal, arg["id"])
            fields = {}
            if "minutes" in arg:
                delta = datetime.timedelta(minutes=float(arg["minutes"]))
                for k in ("start", "end"):
                    t = dict(cur[k])
                    if "date" in t:
                        t["date"] = (parse_date(t["date"]) + datetime.timedelta(
                            days=round(delta.total_seconds() / 86400))).isoformat()
                    else:
                        t["dateTime"] = fmt_offset(parse_instant(t["dateTime"]) + delta)
                    fields[k] = t
            for k in ("start", "end"):
                if k in arg:
                    fields[k] = arg[k]
            data = st.build_event(cal, arg["id"], fields, cur, patch=True, instance_of=master)
            st.put_event(cal, arg["id"], data, notify=arg.get("notify", True))
            return self.render(cal, data)
        return self.person(arg, fn)

    def ctl_post_cancel(self, arg, q):
        """A person deletes an event, a series, or one instance."""
        def fn(cal):
            cur, _ = self.lookup(cal, arg["id"])
            if cur.get("status") == "cancelled":
                raise gerror(410, "deleted", "Resource has been deleted")
            return self.render(cal, self.cancel(cal, arg["id"], cur, arg.get("notify", True)))
        return self.person(arg, fn)

    ctl_post_delete = ctl_post_cancel

    def ctl_post_respond(self, arg, q):
        """An attendee answers: {"id", "email", "response"}."""
        st = self.server.state
        if arg.get("response") not in RESPONSES:
            raise ValueError("response must be one of %s" % (RESPONSES,))

        def fn(cal):
            cur, master = self.lookup(cal, arg["id"])
            atts = copy.deepcopy(cur.get("attendees") or [])
            hit = [a for a in atts if a["email"].lower() == str(arg["email"]).lower()]
            if not hit:
                raise ValueError("no attendee %s" % arg["email"])
            hit[0]["responseStatus"] = arg["response"]
            data = st.build_event(cal, arg["id"], {"attendees": atts}, cur, patch=True,
                                  instance_of=master)
            st.put_event(cal, arg["id"], data, notify=arg.get("notify", True))
            return self.render(cal, data)
        return self.person(arg, fn)

    def ctl_post_invalidate_sync(self, arg, q):
        """Every sync token (and page token of a sync read) issued so far,
        of one calendar or all, answers 410 fullSyncRequired."""
        st = self.server.state
        with st.lock:
            cals = [self.cal_arg(arg)] if arg.get("calendar") else list(st.calendars.values())
            for c in cals:
                c.generation = st.rand(12)
            return 200, {"invalidated": [c.id for c in cals]}

    ctl_post_expire_sync_tokens = ctl_post_invalidate_sync

    def ctl_post_expire_access(self, arg, q):
        """Every access token issued so far answers 401 from now on."""
        st = self.server.state
        with st.lock:
            return 200, {"expired": st.tokens.expire_access()}

    def ctl_post_revoke(self, arg, q):
        """Revokes one refresh token ("token") or all, with their access
        tokens: the next refresh answers invalid_grant."""
        st = self.server.state
        with st.lock:
            return 200, {"revoked": st.tokens.revoke_refresh(arg.get("token"))}

    def ctl_post_grant(self, arg, q):
        """Tokens as if the account consented just now: {"refresh_token",
        "access_token", "expires_in", "scope"}."""
        st = self.server.state
        scope = arg.get("scope") or DEFAULT_SCOPE
        with st.lock:
            r = self.new_refresh(scope)
            out = self.issue(scope, r)
            out["refresh_token"] = r
            st.consented.add(self.server.opts.client_id)
        return 200, out

    def ctl_post_oauth(self, arg, q):
        """Runtime OAuth settings: deny, rotate, token_ttl_s,
        refresh_ttl_s, token_delay_ms, forget_consent."""
        st = self.server.state
        with st.lock:
            if "deny" in arg:
                st.deny = bool(arg["deny"])
            if "rotate" in arg:
                st.rotate = bool(arg["rotate"])
            if "token_ttl_s" in arg:
                st.token_ttl_s = float(arg["token_ttl_s"])
            if "refresh_ttl_s" in arg:
                st.refresh_ttl_s = float(arg["refresh_ttl_s"] or 0)
            if "token_delay_ms" in arg:
                st.token_delay_ms = float(arg["token_delay_ms"])
            if arg.get("forget_consent"):
                st.consented.clear()
            return 200, {"deny": st.deny, "rotate": st.rotate, "token_ttl_s": st.token_ttl_s,
                         "refresh_ttl_s": st.refresh_ttl_s,
                         "token_delay_ms": st.token_delay_ms}

    def ctl_get_tokens(self, arg, q):
        st = self.server.state
        with st.lock:
            return 200, {"access": {t: {"exp": a["exp"], "refresh": a.get("refresh"),
                                        "scope": a["scope"], "live": not st.tokens.check_access(t)}
                                    for t, a in st.tokens.access.items()},
                         "refresh": copy.deepcopy(st.tokens.refresh),
                         "stats": dict(st.tokens.stats)}

    def ctl_post_quota(self, arg, q):
        """{"user_per_min", "project_per_min", "status": 403|429}; 0 turns a
        limit off."""
        st = self.server.state
        with st.lock:
            if "user_per_min" in arg:
                st.user_quota = QuotaWindow(int(arg["user_per_min"]), 60.0)
            if "project_per_min" in arg:
                st.project_quota = QuotaWindow(int(arg["project_per_min"]), 60.0)
            if "status" in arg:
                if int(arg["status"]) not in (403, 429):
                    raise ValueError("status must be 403 or 429")
                st.quota_status = int(arg["status"])
            return 200, {"user_per_min": st.user_quota.limit,
                         "project_per_min": st.project_quota.limit,
                         "status": st.quota_status}

    def ctl_post_paging(self, arg, q):
        """{"cap": N or null, "empty_first": bool}: short pages, and an empty
        first page that still carries nextPageToken."""
        st = self.server.state
        with st.lock:
            if "cap" in arg:
                st.page_cap = int(arg["cap"]) if arg["cap"] else None
            if "empty_first" in arg:
                st.empty_first = bool(arg["empty_first"])
            return 200, {"cap": st.page_cap, "empty_first": st.empty_first}

    def ctl_get_channels(self, arg, q):
        st = self.server.state
        with st.lock:
            out = []
            for ch in sorted(st.channels.values(), key=lambda c: c["n"]):
                c = {k: ch[k] for k in ("id", "resourceId", "resourceUri", "token", "address",
                                        "expiration", "cal", "stopped", "created")}
                c["messages"] = ch["msg"]
                c["expired"] = now_ms() >= ch["expiration"]
                c["live"] = st.channel_live(ch)
                out.append(c)
            return 200, out

    def ctl_post_expire_channels(self, arg, q):
        """Channels ("id", or all) expire now: no more notifications, and
        channels/stop answers 404."""
        st = self.server.state
        with st.lock:
            n = 0
            for ch in st.channels.values():
                if (not arg.get("id") or ch["id"] == arg["id"]) and st.channel_live(ch):
                    ch["expiration"] = now_ms() - 1
                    n += 1
            return 200, {"expired": n}

    def ctl_post_notify(self, arg, q):
        """An "exists" notification on a calendar's channels with no change
        behind it (Google may send them)."""
        st = self.server.state
        with st.lock:
            cal = self.cal_arg(arg)
            st.notify(cal, arg.get("state") or "exists")
            return 200, {"status": "queued"}

    def ctl_post_notifications(self, arg, q):
        """{"paused", "enabled", "drop", "delay_ms", "seed"}: paused holds
        notifications (sent on resume), enabled false drops them (a push
        outage), drop/delay_ms add seeded losses and delays."""
        return 200, self.server.notifier.configure(arg)

    def ctl_get_deliveries(self, arg, q):
        since = int(q.get("since", ["0"])[-1])
        return 200, self.server.notifier.snapshot(since)[1]

    def ctl_post_wait_notifications(self, arg, q):
        ok = self.server.notifier.wait_idle(float(arg.get("timeout_s", 10)))
        return 200, {"idle": ok}


def parse_args(argv):
    p = argparse.ArgumentParser(description="a Google Calendar account for concord tests")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--seed", type=int, default=None, help="seeds ids and tokens")
    p.add_argument("--email", default="sim.user@example.com",
                   help="the account (and its primary calendar's id)")
    p.add_argument("--calendars", default="primary",
                   help="comma-separated calendar names; the first is the primary one, "
                        "the others get ids c_NAME@group.calendar.google.com")
    p.add_argument("--time-zone", default="UTC", help="the calendars' time zone")
    p.add_argument("--client-id", default="concord-sim.apps.googleusercontent.com")
    p.add_argument("--client-secret", default="GOCSPX-concord-sim-secret")
    p.add_argument("--redirect-uri", default=None,
                   help="the one registered redirect URI (default: any loopback URI)")
    p.add_argument("--project", default="concord-sim", help="named in channel errors")
    p.add_argument("--token-ttl-s", type=float, default=3600.0,
                   help="access token lifetime (Google: 3600)")
    p.add_argument("--refresh-ttl-s", type=float, default=0.0,
                   help="refresh token lifetime; 0 = none (604800: a 'Testing' app)")
    p.add_argument("--rotate-refresh-tokens", action="store_true",
                   help="each refresh answers a new refresh token; the old one dies")
    p.add_argument("--token-delay-ms", type=float, default=0.0,
                   help="each refresh stays in flight this long (single-flight tests)")
    p.add_argument("--lenient-sequence", action="store_true",
                   help="accept writes carrying a sequence below the event's")
    p.add_argument("--user-quota-per-min", type=int, default=600)
    p.add_argument("--project-quota-per-min", type=int, default=10000)
    p.add_argument("--quota-status", type=int, default=403, choices=(403, 429))
    p.add_argument("--page-cap", type=int, default=None,
                   help="pages hold at most this many events whatever maxResults says")
    p.add_argument("--horizon-days", type=int, default=365,
                   help="how far past now an open-ended series is expanded")
    p.add_argument("--channel-ttl-s", type=float, default=604800.0,
                   help="a channel's lifetime when the watch gives no expiration")
    p.add_argument("--channel-max-ttl-s", type=float, default=604800.0,
                   help="a later expiration is cut to this")
    p.add_argument("--require-https", action="store_true",
                   help="refuse http:// watch addresses, even on 127.0.0.1")
    p.add_argument("--push-attempts", type=int, default=3)
    p.add_argument("--push-backoff-ms", type=float, default=500.0)
    p.add_argument("--push-timeout-s", type=float, default=10.0)
    p.add_argument("--verbose", action="store_true")
    opts = p.parse_args(argv)
    opts.calendars = [c.strip() for c in opts.calendars.split(",") if c.strip()] or ["primary"]
    try:
        zone(opts.time_zone)
    except ValueError as e:
        p.error(str(e))
    if opts.push_attempts < 1:
        p.error("--push-attempts must be >= 1")
    return opts


def main(argv):
    opts = parse_args(argv)
    server = simbase.Server(("127.0.0.1", opts.port), GHandler)
    opts.port = server.server_address[1]
    server.opts = opts
    server.notifier = Notifier(opts.push_attempts, opts.push_backoff_ms, opts.push_timeout_s)
    server.state = GState(opts)
    server.state.notifier = server.notifier
    sys.stdout.write("ready %d\n" % opts.port)
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
