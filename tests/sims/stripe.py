#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A Stripe account on 127.0.0.1: the v1 REST API as concord's Stripe
connector sees it, with fault injection.

One process simulates one Stripe account (test mode): customers (create,
read, update, delete, list, search), read-only payment intents, charges,
invoices and checkout sessions whose state a test drives through the control
API, the event feed GET /v1/events with its retention window, signed webhook
deliveries with retries and seeded mischief, idempotency keys, a token-bucket
rate limiter, Stripe's error bodies and headers, and the fault actions of
simbase.py. The control API lives under /_sim/; it is never logged, never
faulted and needs no key. tests/sims/README.md ("stripe.py") lists every
option and endpoint; /work/shared/apis/EXTERNAL-APIS.md section 5 and the
Stripe fixtures are the reference for the behaviour and the object shapes.

Standard library only. Prints "ready PORT" on stdout once it listens.
"""

import argparse
import base64
import copy
import fnmatch
import hashlib
import heapq
import hmac
import http.client
import http.server
import json
import os
import random
import re
import string
import sys
import threading
import time
import urllib.parse

sys.dont_write_bytecode = True  # leave no __pycache__ beside the sims
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import simbase  # noqa: E402  (Fault, post, Server and the handler plumbing)

BASE62 = string.digits + string.ascii_letters
DEFAULT_API_VERSION = "2025-03-31.basil"
DOCS = "https://stripe.com/docs/error-codes/"
NO_REQUEST = {"id": None, "idempotency_key": None}
MAX_LIMIT = 100
ADDRESS_KEYS = ("city", "country", "line1", "line2", "postal_code", "state")

# GET /v1/... collections: path segments -> object type.
COLLECTIONS = {
    ("customers",): "customer",
    ("payment_intents",): "payment_intent",
    ("charges",): "charge",
    ("invoices",): "invoice",
    ("checkout", "sessions"): "checkout.session",
    ("events",): "event",
}
URLS = {t: "/v1/" + "/".join(p) for p, t in COLLECTIONS.items()}
NAMES = {"customer": "customer", "payment_intent": "payment_intent", "charge": "charge",
         "invoice": "invoice", "checkout.session": "checkout.session", "event": "event"}

# Fields of each type that hold an object id and may be expanded.
EXPANDABLE = {
    "customer": {"default_source", "test_clock"},
    "payment_intent": {"customer", "latest_charge", "payment_method", "review",
                       "application", "on_behalf_of"},
    "charge": {"customer", "payment_intent", "balance_transaction", "application",
               "application_fee", "review", "source_transfer", "on_behalf_of",
               "failure_balance_transaction"},
    "invoice": {"customer", "default_payment_method", "default_source", "subscription",
                "test_clock", "latest_revision", "on_behalf_of", "application"},
    "checkout.session": {"customer", "payment_intent", "invoice", "payment_link",
                         "setup_intent", "subscription"},
    "event": set(),
}

# Customer parameters. Those in CUSTOMER_IGNORED are accepted, as Stripe
# accepts them, but not modelled (payment sources, discounts, tax ids).
CUSTOMER_PARAMS = {"address", "balance", "description", "email", "invoice_prefix",
                   "invoice_settings", "metadata", "name", "next_invoice_sequence", "phone",
                   "preferred_locales", "shipping", "tax_exempt", "expand"}
CUSTOMER_IGNORED = {"payment_method", "source", "default_source", "coupon", "promotion_code",
                    "tax", "tax_id_data", "cash_balance", "test_clock", "validate"}
LIST_PARAMS = {"limit", "starting_after", "ending_before", "created", "expand"}
LIST_FILTERS = {
    "customer": {"email", "test_clock"},
    "payment_intent": {"customer"},
    "charge": {"customer", "payment_intent", "transfer_group"},
    "invoice": {"customer", "status", "collection_method", "subscription"},
    "checkout.session": {"customer", "payment_intent", "status", "payment_link"},
    "event": {"type", "types", "delivery_success"},
}
PI_STATUSES = ("requires_payment_method", "requires_confirmation", "requires_action",
               "processing", "requires_capture", "canceled", "succeeded", "payment_failed")
INVOICE_STATUSES = ("draft", "open", "paid", "uncollectible", "void")
RANDOM_KINDS = {"500", "502", "503", "504", "408", "429", "lock_timeout", "500_stored",
                "reset_before", "lost", "slow", "slow_answer"}


def now_s():
    return int(time.time())


class StripeError(Exception):
    """An error answer in Stripe's shape. store: whether an idempotency key
    keeps it (Stripe keeps what an endpoint answered once it began, not
    validation errors)."""

    def __init__(self, status, etype, message, code=None, param=None, store=False,
                 headers=None, extra=None):
        super().__init__(message)
        self.status = status
        self.etype = etype
        self.message = message
        self.code = code
        self.param = param
        self.store = store
        self.headers = dict(headers or {})
        self.extra = extra

    def body(self, req_id):
        return error_body(self.etype, self.message, self.code, self.param, req_id, self.extra)


def error_body(etype, message, code=None, param=None, req_id=None, extra=None):
    """{"error": {...}} as Stripe answers: code with its doc_url, message,
    param, request_log_url (for requests with a known account) and type;
    keys that do not apply are left out, as Stripe leaves them out."""
    e = {}
    if code:
        e["code"] = code
        e["doc_url"] = DOCS + code.replace("_", "-")
    e["message"] = message
    if param:
        e["param"] = param
    if req_id:
        e["request_log_url"] = "https://dashboard.stripe.com/test/logs/%s?t=%d" % (req_id, now_s())
    e["type"] = etype
    if extra:
        e.update(extra)
    return {"error": e}


def bad_param(message, param, code=None):
    return StripeError(400, "invalid_request_error", message, code=code, param=param)


def unknown_param(name):
    return bad_param("Received unknown parameter: %s" % name, name, "parameter_unknown")


def missing(obj_type, oid, param="id"):
    return StripeError(404, "invalid_request_error", "No such %s: '%s'" % (obj_type, oid),
                       code="resource_missing", param=param, store=True)


def fault_error(status):
    """The Stripe-shaped body of an injected status without a body."""
    if status == 429:
        return error_body("invalid_request_error", "Request rate limit exceeded. Learn more "
                          "about rate limits here https://stripe.com/docs/rate-limits.",
                          "rate_limit")
    if status == 402:
        return error_body("card_error", "Your card was declined.", "card_declined",
                          extra={"decline_code": "generic_decline"})
    if status == 404:
        return error_body("invalid_request_error", "No such object.", "resource_missing")
    if status == 401:
        return error_body("invalid_request_error", "Invalid API Key provided.")
    if status >= 500 or status == 408:
        return error_body("api_error", "An unknown error occurred. Please try again "
                          "(injected %d)." % status)
    return error_body("invalid_request_error", "Injected %d." % status)


# --- form bodies -------------------------------------------------------------

KEY_RE = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def parse_form(text):
    """Parses application/x-www-form-urlencoded text with Stripe's bracket
    notation into a nested dict: metadata[k]=v -> {"metadata": {"k": "v"}},
    expand[]=a&expand[]=b -> {"expand": ["a", "b"]}; an indexed array
    (items[0][price]=x, as stripe-python sends) stays a dict keyed "0", "1",
    ... until the parameter's schema asks for a list (as_list). Values stay
    strings. A repeated scalar keeps its last value. Raises StripeError (400)
    for a malformed name or a name used both as a scalar and a hash."""
    root = {}
    for k, v in urllib.parse.parse_qsl(text, keep_blank_values=True):
        m = KEY_RE.match(k)
        if not m:
            raise bad_param("Invalid request: malformed parameter name %r" % k, k)
        parts = [m.group(1)] + re.findall(r"\[([^\[\]]*)\]", m.group(2))
        _put(root, parts[0], parts[1:], v, k)
    return root


def _put(container, key, rest, value, name):
    if not rest:
        if isinstance(container, list):
            container.append(value)
            return
        if isinstance(container.get(key), (dict, list)):
            raise bad_param("Invalid hash: %s is also given as a hash" % key, name)
        container[key] = value
        return
    want_list = rest[0] == ""
    if isinstance(container, list):
        last = container[-1] if container else None
        if not want_list and isinstance(last, dict) and len(rest) == 1 and rest[0] not in last:
            child = last  # a[][x]=1&a[][y]=2 builds one element, as Rails does
        else:
            child = [] if want_list else {}
            container.append(child)
    else:
        child = container.get(key)
        if child is None:
            child = [] if want_list else {}
            container[key] = child
        elif not isinstance(child, (dict, list)) or isinstance(child, list) != want_list:
            raise bad_param("Invalid %s: %s" % ("array" if want_list else "hash", key), name)
    _put(child, rest[0], rest[1:], value, name)


def as_list(v, param):
    """A parameter that must be an array: a list, a dict keyed 0, 1, ...
    (indexed notation), or "" (an empty array)."""
    if v == "":
        return []
    if isinstance(v, list):
        return v
    if isinstance(v, dict) and all(k.isdigit() for k in v):
        return [v[k] for k in sorted(v, key=int)]
    raise bad_param("Invalid array", param)


def to_form_values(v):
    """JSON values of a control request as form values: what the dashboard
    would send for them (null -> "" unsets)."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, dict):
        return {str(k): to_form_values(x) for k, x in v.items()}
    if isinstance(v, list):
        return [to_form_values(x) for x in v]
    return str(v)


def to_int(v, param, low=None):
    if not isinstance(v, str) or not re.match(r"^-?\d+$", v):
        raise bad_param("Invalid integer: %s" % (v if isinstance(v, str) else "<hash>"),
                        param, "parameter_invalid_integer")
    n = int(v)
    if low is not None and n < low:
        raise bad_param("This value must be greater than or equal to %d." % low, param,
                        "parameter_invalid_integer")
    return n


def to_str(v, param, max_len=None):
    """A string parameter; "" unsets (None)."""
    if not isinstance(v, str):
        raise bad_param("Invalid string: %s" % param, param, "parameter_invalid_string")
    if max_len is not None and len(v) > max_len:
        raise bad_param("Invalid string: must be at most %d characters" % max_len, param,
                        "parameter_invalid_string_too_long")
    return v if v != "" else None


def to_bool(v, param):
    if v in ("true", "false"):
        return v == "true"
    raise bad_param("Invalid boolean: %s" % v, param)


def merge_metadata(cur, v, param="metadata"):
    """Stripe's metadata update: key by key; "" for a key removes it; "" for
    the whole hash removes every key. Limits: 50 keys, keys of 40 characters,
    values of 500."""
    if v == "":
        return {}
    if not isinstance(v, dict):
        raise bad_param("Invalid hash", param)
    out = dict(cur or {})
    for k, val in v.items():
        name = "%s[%s]" % (param, k)
        if not isinstance(val, str):
            raise bad_param("Invalid value for %s: metadata values must be strings" % name,
                            name)
        if len(k) > 40:
            raise bad_param("Metadata keys can have up to 40 characters (%s)" % name, name)
        if len(val) > 500:
            raise bad_param("Metadata values can have up to 500 characters (%s)" % name, name)
        if val == "":
            out.pop(k, None)
        else:
            out[k] = val
    if len(out) > 50:
        raise bad_param("You can have at most 50 metadata keys", param)
    return out


def address_value(v, param):
    """An address hash: the keys given, the others null; "" unsets it."""
    if v == "":
        return None
    if not isinstance(v, dict):
        raise bad_param("Invalid hash", param)
    for k in v:
        if k not in ADDRESS_KEYS:
            raise unknown_param("%s[%s]" % (param, k))
    return {k: to_str(v.get(k, ""), "%s[%s]" % (param, k)) for k in ADDRESS_KEYS}


def check_params(params, allowed, prefix=""):
    for k in params:
        if k not in allowed:
            raise unknown_param(prefix + k)


def render(obj):
    """A copy with "id" and "object" first and the other keys in order, as
    Stripe writes its JSON."""
    if isinstance(obj, dict):
        keys = [k for k in ("id", "object") if k in obj]
        keys += sorted(k for k in obj if k not in ("id", "object"))
        return {k: render(obj[k]) for k in keys}
    if isinstance(obj, list):
        return [render(x) for x in obj]
    return obj


def dumps(obj):
    """Stripe's answers and webhook bodies are pretty-printed JSON."""
    return json.dumps(render(obj), indent=2, ensure_ascii=False).encode()


def diff(old, new):
    """data.previous_attributes: the old value of every top-level key that
    changed; for a hash changed into a hash, only its changed keys (null for
    one that was absent)."""
    prev = {}
    for k in list(old) + [k for k in new if k not in old]:
        o, n = old.get(k), new.get(k)
        if o == n:
            continue
        if isinstance(o, dict) and isinstance(n, dict):
            prev[k] = {sk: copy.deepcopy(o.get(sk))
                       for sk in list(o) + [s for s in n if s not in o]
                       if o.get(sk) != n.get(sk)}
        else:
            prev[k] = copy.deepcopy(o)
    return prev


def stripe_signature(secret, t, body):
    """hex(HMAC-SHA256(key = the whole secret string, msg = "t." + body))."""
    return hmac.new(secret.encode(), b"%d." % t + body, hashlib.sha256).hexdigest()


class TokenBucket:
    """rate tokens a second, at most burst held; rate 0 turns it off."""

    def __init__(self, rate, burst):
        self.set(rate, burst)

    def set(self, rate, burst):
        self.rate = float(rate)
        self.burst = float(burst) if burst else max(self.rate, 1.0)
        self.tokens = self.burst
        self.at = time.monotonic()

    def take(self):
        if self.rate <= 0:
            return True
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


# --- webhook deliveries ------------------------------------------------------


class Deliverer:
    """Sends events to --webhook-url from one background thread, signed as
    Stripe signs them, retrying a failed attempt (non-2xx or no answer)
    after --webhook-backoff-ms, doubled each time, up to --webhook-attempts
    attempts. POST /_sim/webhooks adds seeded mischief: drops, random delays
    (which reorder), duplicates, and events held back until the next one
    went. Its lock is taken under the state lock, never the other way."""

    def __init__(self, opts):
        self.opts = opts
        self.cv = threading.Condition()
        self.gen = 0
        self.reset()
        threading.Thread(target=self.run, daemon=True).start()

    def reset(self):
        with self.cv:
            self.gen += 1  # attempts under way for an older generation are forgotten
            self.heap = []  # (due monotonic s, n, item)
            self.n = 0
            self.sending = 0  # attempts taken off the heap and not logged yet
            self.held = []  # [deadline, item] of events held back (reorder)
            self.rng = None
            self.drop = self.dup = self.reorder = 0.0
            self.delay_ms = 0.0
            self.hold_ms = 1000.0
            self.paused = False
            self.extra_secrets = []
            self.v0 = False
            self.log = []
            self.outcome = {}  # event id -> "pending" | "delivered" | "failed" | "dropped"
            self.done_first = set()  # event ids whose first attempt (or drop) happened
            self.stats = {"sent": 0, "delivered": 0, "failed_attempts": 0, "dropped": 0,
                          "dups": 0, "reordered": 0, "gave_up": 0}
            self.cv.notify_all()

    def subscribed(self, etype):
        if not self.opts.webhook_url:
            return False
        return any(fnmatch.fnmatchcase(etype, p) for p in self.opts.webhook_events)

    def pending(self, event_id, etype):
        """pending_webhooks of an event now: 1 until delivered, when the
        endpoint takes its type."""
        if not self.subscribed(etype):
            return 0
        with self.cv:
            return 0 if self.outcome.get(event_id) == "delivered" else 1

    def configure(self, arg):
        with self.cv:
            if "paused" in arg:
                self.paused = bool(arg["paused"])
            if "extra_secrets" in arg:
                self.extra_secrets = [str(s) for s in arg["extra_secrets"] or []]
            if "v0" in arg:
                self.v0 = bool(arg["v0"])
            keys = ("drop", "dup", "reorder", "delay_ms", "hold_ms", "seed")
            if any(k in arg for k in keys) or not arg:
                self.drop = float(arg.get("drop", 0))
                self.dup = float(arg.get("dup", 0))
                self.reorder = float(arg.get("reorder", 0))
                self.delay_ms = float(arg.get("delay_ms", 0))
                self.hold_ms = float(arg.get("hold_ms", 1000))
                for k in ("drop", "dup", "reorder"):
                    if not 0 <= getattr(self, k) <= 1:
                        raise ValueError("%s must be within 0..1" % k)
                if self.delay_ms < 0 or self.hold_ms < 0:
                    raise ValueError("delay_ms and hold_ms must be >= 0")
                on = self.drop or self.dup or self.reorder or self.delay_ms
                self.rng = random.Random(arg.get("seed", 0)) if on else None
            if not arg:
                self.paused = False
            self.cv.notify_all()
            return {"drop": self.drop, "dup": self.dup, "reorder": self.reorder,
                    "delay_ms": self.delay_ms, "hold_ms": self.hold_ms,
                    "paused": self.paused}

    def _push(self, due, item):
        self.n += 1
        heapq.heappush(self.heap, (due, self.n, item))

    def enqueue(self, event_id, etype, body, force=False):
        """Plans the delivery of one event (body: its bytes). force: send it
        now whatever the mischief (a resend)."""
        with self.cv:
            if self.outcome.get(event_id) != "delivered":
                self.outcome[event_id] = "pending"
            item = {"event_id": event_id, "type": etype, "body": body, "attempt": 0,
                    "copy": 0, "gen": self.gen}
            now = time.monotonic()
            if force or self.rng is None:
                self._push(now, item)
                self.cv.notify_all()
                return
            # Five draws an event, whatever they decide: the same seed and
            # the same events make the same plan.
            r = self.rng
            u_drop, u_delay, u_dup, u_dup_delay, u_reorder = [r.random() for _ in range(5)]
            if u_drop < self.drop:
                self.outcome[event_id] = "dropped"
                self.done_first.add(event_id)
                self.stats["dropped"] += 1
                self.log.append({"seq": len(self.log) + 1, "event_id": event_id, "type": etype,
                                 "attempt": 0, "copy": 0, "status": "dropped", "error": None,
                                 "t": None, "time": time.time(), "ok": False})
                self.cv.notify_all()
                return
            due = now + u_delay * self.delay_ms / 1000.0
            if u_reorder < self.reorder:
                self.held.append([now + self.hold_ms / 1000.0, item])
                self.stats["reordered"] += 1
            else:
                self._push(due, item)
                for h in self.held:  # what was held back goes after this one
                    self._push(due, h[1])
                self.held = []
            if u_dup < self.dup:
                twin = dict(item, copy=1)
                extra = u_dup_delay * max(self.delay_ms, 50.0) / 1000.0
                self._push(due + extra, twin)
                self.stats["dups"] += 1
            self.cv.notify_all()

    def wait_first(self, ids, timeout):
        """Waits until each event in ids had its first attempt (or was
        dropped); returns the delivery log entries of those events."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while not all(i in self.done_first for i in ids):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cv.wait(left)
            return [dict(e) for e in self.log if e["event_id"] in ids]

    def snapshot(self, since=0):
        with self.cv:
            out = dict(self.stats)
            out["pending"] = len(self.heap) + len(self.held) + self.sending
            return out, [dict(e) for e in self.log if e["seq"] > since]

    def run(self):
        while True:
            with self.cv:
                while True:
                    now = time.monotonic()
                    for h in [h for h in self.held if h[0] <= now]:
                        self.held.remove(h)
                        self._push(now, h[1])
                    if not self.paused and self.heap and self.heap[0][0] <= now:
                        break
                    waits = [h[0] - now for h in self.held]
                    if not self.paused and self.heap:
                        waits.append(self.heap[0][0] - now)
                    self.cv.wait(max(0.001, min(waits)) if waits else None)
                _, _, item = heapq.heappop(self.heap)
                secrets = [self.opts.webhook_secret or ""] + self.extra_secrets
                v0 = self.v0
                self.sending += 1
            try:
                self.send(item, secrets, v0)
            finally:
                with self.cv:
                    if item["gen"] == self.gen:
                        self.sending -= 1
                    self.cv.notify_all()

    def send(self, item, secrets, v0):
        item["attempt"] += 1
        body = item["body"]
        t = now_s()
        sig = "t=%d" % t + "".join(",v1=" + stripe_signature(s, t, body) for s in secrets)
        if v0:
            sig += ",v0=" + hashlib.sha256(b"v0" + body).hexdigest()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sig,
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Accept": "*/*; q=0.5, application/xml",
            "Cache-Control": "no-cache",
        }
        status, error = None, None
        try:
            status, _ = simbase.post(self.opts.webhook_url, body, headers,
                                    timeout=self.opts.webhook_timeout_s)
        except (OSError, http.client.HTTPException) as e:
            error = "%s: %s" % (type(e).__name__, e)
        ok = status is not None and 200 <= status < 300
        with self.cv:
            if item["gen"] != self.gen:
                return
            eid = item["event_id"]
            self.stats["sent"] += 1
            self.log.append({"seq": len(self.log) + 1, "event_id": eid, "type": item["type"],
                             "attempt": item["attempt"], "copy": item["copy"],
                             "status": status, "error": error, "t": t, "time": time.time(),
                             "ok": ok})
            self.done_first.add(eid)
            if ok:
                self.stats["delivered"] += 1
                self.outcome[eid] = "delivered"
            else:
                self.stats["failed_attempts"] += 1
                if item["attempt"] < self.opts.webhook_attempts:
                    backoff = self.opts.webhook_backoff_ms * 2 ** (item["attempt"] - 1)
                    self._push(time.monotonic() + backoff / 1000.0, item)
                else:
                    self.stats["gave_up"] += 1
                    if self.outcome.get(eid) != "delivered":
                        self.outcome[eid] = "failed"
            self.cv.notify_all()


# --- the account -------------------------------------------------------------


class State:
    """Everything the account holds; every access goes through self.lock."""

    def __init__(self, opts, deliverer):
        self.opts = opts
        self.deliverer = deliverer
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        seed = self.opts.seed
        self.id_rng = random.Random("ids:%s" % seed) if seed is not None else random.Random()
        self.req_rng = random.Random("req:%s" % seed) if seed is not None else random.Random()
        self.objects = {}  # id -> object
        self.seq = {}  # id -> creation number (list order)
        self.next_seq = 1
        self.tombs = {}  # id -> {"id", "object", "deleted": true} of deleted customers
        self.events = []  # oldest first
        self.event_seq = {}  # event id -> creation number
        self.idem = {}  # key -> the first answer
        self.idem_busy = set()  # keys of requests being carried out
        self.invoice_seq = {}  # customer id -> last invoice number given
        self.log = []
        self.faults = []
        self.rng = None
        self.rate = 0.0
        self.kinds = []
        self.slow_ms = 1500
        self.random_retry_after = None
        self.bucket = TokenBucket(self.opts.rate, self.opts.burst)
        self.stats = {"requests": 0, "status": {}, "faults": 0, "creates": 0, "updates": 0,
                      "deletes": 0, "list_reads": 0, "rate_limited": 0, "unauthorized": 0,
                      "idem_replayed": 0, "idem_mismatch": 0, "idem_in_use": 0, "events": 0}

    # --- ids and time ---

    def rand(self, n, rng=None):
        r = rng or self.id_rng
        return "".join(r.choice(BASE62) for _ in range(n))

    def new_id(self, prefix, n):
        while True:
            oid = prefix + self.rand(n)
            if oid not in self.objects and oid not in self.tombs and oid not in self.event_seq:
                return oid

    def new_request_id(self):
        with self.lock:
            return "req_" + self.rand(14, self.req_rng)

    # --- faults (as simbase.Faults.pick, Stripe-shaped bodies) ---

    def pick_fault(self, method, path):
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
        if kind == "lock_timeout":
            return {"status": 429, "headers": {"Stripe-Should-Retry": "true"},
                    "body": error_body("invalid_request_error", "This object cannot be "
                                       "accessed right now because another API request or "
                                       "Stripe process is currently accessing it.",
                                       "lock_timeout")}
        if kind == "500_stored":
            return {"status": 500, "stored": True}
        if kind in ("500", "502", "503", "504", "408", "429"):
            f = {"status": int(kind)}
            ra = self.random_retry_after
            if ra is not None and kind in ("503", "429"):
                if isinstance(ra, list):
                    ra = self.rng.choice(ra) if ra else None
                if ra is not None:
                    f["retry_after"] = str(ra)
            return f
        return {"reset_before": {"reset": "before"}, "lost": {"reset": "after"},
                "slow": {"delay_ms": self.slow_ms},
                "slow_answer": {"delay_ms": self.slow_ms, "apply": "first"}}[kind]

    # --- objects and events ---

    def store(self, obj):
        if obj["id"] not in self.seq:
            self.seq[obj["id"]] = self.next_seq
            self.next_seq += 1
        self.objects[obj["id"]] = obj

    def of_type(self, oid, otype):
        o = self.objects.get(oid)
        return o if o is not None and o["object"] == otype else None

    def prune_events(self):
        """Events older than --retention-s are gone, as Stripe keeps 30 days."""
        cutoff = now_s() - self.opts.retention_s
        if self.events and self.events[0]["created"] <= cutoff:
            kept = [e for e in self.events if e["created"] > cutoff]
            for e in self.events:
                if e["created"] <= cutoff:
                    self.event_seq.pop(e["id"], None)
            self.events = kept

    def emit(self, etype, obj, prev=None, request=None, out=None):
        """Logs an event of obj as it is now and hands it to the deliverer.
        out: a list that collects the event ids."""
        self.prune_events()
        evt = {"id": self.new_id("evt_", 24), "object": "event",
               "api_version": self.opts.api_version, "created": now_s(),
               "data": {"object": copy.deepcopy(obj)}, "livemode": False,
               "pending_webhooks": 1 if self.deliverer.subscribed(etype) else 0,
               "request": dict(request or NO_REQUEST), "type": etype}
        if prev is not None:
            evt["data"]["previous_attributes"] = copy.deepcopy(prev)
        self.events.append(evt)
        self.stats["events"] += 1
        self.event_seq[evt["id"]] = self.stats["events"]
        if evt["pending_webhooks"]:
            self.deliverer.enqueue(evt["id"], etype, dumps(evt))
        if out is not None:
            out.append(evt["id"])
        return evt

    def event_view(self, evt):
        e = copy.deepcopy(evt)
        e["pending_webhooks"] = self.deliverer.pending(evt["id"], evt["type"])
        return e

    # --- customers ---

    def new_customer(self):
        return {"id": self.new_id("cus_", 14), "object": "customer", "address": None,
                "balance": 0, "created": now_s(), "currency": None, "default_source": None,
                "delinquent": False, "description": None, "discount": None, "email": None,
                "invoice_prefix": "".join(self.id_rng.choice("0123456789ABCDEF")
                                          for _ in range(8)),
                "invoice_settings": {"custom_fields": None, "default_payment_method": None,
                                     "footer": None, "rendering_options": None},
                "livemode": False, "metadata": {}, "name": None, "next_invoice_sequence": 1,
                "phone": None, "preferred_locales": [], "shipping": None, "tax_exempt": "none",
                "test_clock": None}

    def apply_customer(self, cur, params):
        """cur with params applied (a new dict); raises StripeError (400,
        not stored) before changing anything. Top-level fields given replace
        theirs ("" unsets); metadata merges key by key; a hash such as
        address or shipping is replaced as a whole."""
        check_params(params, CUSTOMER_PARAMS | CUSTOMER_IGNORED)
        c = copy.deepcopy(cur)
        for name, v in params.items():
            if name in CUSTOMER_IGNORED or name == "expand":
                continue
            if name == "address":
                c["address"] = address_value(v, "address")
            elif name == "balance":
                c["balance"] = to_int(v, "balance")
            elif name == "email":
                e = to_str(v, "email", 512)
                if e is not None and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", e):
                    raise bad_param("Invalid email address: %s" % e, "email", "email_invalid")
                c["email"] = e
            elif name in ("description", "name", "phone"):
                c[name] = to_str(v, name, {"name": 256, "phone": 20}.get(name))
            elif name == "invoice_prefix":
                p = to_str(v, name)
                if p is None or not re.match(r"^[A-Z0-9]{3,12}$", p):
                    raise bad_param("Invalid invoice_prefix: must be 3 to 12 upper-case "
                                    "letters or digits", name)
                c[name] = p
            elif name == "invoice_settings":
                c[name] = self.invoice_settings(c[name], v)
            elif name == "metadata":
                c["metadata"] = merge_metadata(c["metadata"], v)
            elif name == "next_invoice_sequence":
                c[name] = to_int(v, name, 1)
            elif name == "preferred_locales":
                c[name] = [to_str(x, name) for x in as_list(v, name)]
            elif name == "shipping":
                c[name] = self.shipping(v)
            elif name == "tax_exempt":
                if v not in ("", "none", "exempt", "reverse"):
                    raise bad_param("Invalid tax_exempt: must be one of none, exempt, or "
                                    "reverse", name)
                c[name] = v or "none"
        return c

    def invoice_settings(self, cur, v):
        if not isinstance(v, dict):
            raise bad_param("Invalid hash", "invoice_settings")
        out = dict(cur)
        for k, x in v.items():
            param = "invoice_settings[%s]" % k
            if k in ("default_payment_method", "footer"):
                out[k] = to_str(x, param)
            elif k == "custom_fields":
                fields = as_list(x, param)
                for f in fields:
                    if not isinstance(f, dict) or set(f) - {"name", "value"}:
                        raise bad_param("Invalid custom_fields", param)
                out[k] = [{"name": f.get("name"), "value": f.get("value")} for f in fields] \
                    or None
            elif k == "rendering_options":
                if x == "":
                    out[k] = None
                elif isinstance(x, dict) and not set(x) - {"amount_tax_display", "template"}:
                    out[k] = {"amount_tax_display": x.get("amount_tax_display") or None,
                              "template": x.get("template") or None}
                else:
                    raise bad_param("Invalid hash", param)
            else:
                raise unknown_param(param)
        return out

    def shipping(self, v):
        if v == "":
            return None
        if not isinstance(v, dict):
            raise bad_param("Invalid hash", "shipping")
        check_params(v, {"address", "name", "phone"}, "shipping[")
        for req in ("address", "name"):
            if not v.get(req):
                raise bad_param("Missing required param: shipping[%s]." % req,
                                "shipping[%s]" % req, "parameter_missing")
        return {"address": address_value(v["address"], "shipping[address]"),
                "name": to_str(v["name"], "shipping[name]"),
                "phone": to_str(v.get("phone", ""), "shipping[phone]")}

    def customer_create(self, params, ctx, out=None):
        c = self.apply_customer(self.new_customer(), params)
        self.store(c)
        self.stats["creates"] += 1
        self.emit("customer.created", c, request=ctx, out=out)
        return c

    def customer_update(self, cid, params, ctx, out=None):
        """Returns the customer; an update that changes nothing emits no
        event."""
        check_params(params, CUSTOMER_PARAMS | CUSTOMER_IGNORED)
        cur = self.of_type(cid, "customer")
        if cur is None:
            raise missing("customer", cid)
        new = self.apply_customer(cur, params)
        prev = diff(cur, new)
        if prev:
            self.store(new)
            self.stats["updates"] += 1
            self.emit("customer.updated", new, prev, request=ctx, out=out)
        return new

    def customer_delete(self, cid, ctx, out=None):
        cur = self.of_type(cid, "customer")
        if cur is None:
            raise missing("customer", cid)
        del self.objects[cid]
        tomb = {"id": cid, "object": "customer", "deleted": True}
        self.tombs[cid] = tomb
        self.stats["deletes"] += 1
        self.emit("customer.deleted", cur, request=ctx, out=out)
        return tomb

    # --- payment objects (created by the control API) ---

    def new_charge(self, pi, status="succeeded", captured=True):
        cid = self.new_id("ch_", 24)
        cust = self.of_type(pi.get("customer") or "", "customer")
        failed = status == "failed"
        return {
            "id": cid, "object": "charge", "amount": pi["amount"],
            "amount_captured": pi["amount"] if captured and not failed else 0,
            "amount_refunded": 0, "application": None, "application_fee": None,
            "application_fee_amount": None,
            "balance_transaction": None if failed else "txn_" + self.rand(24),
            "billing_details": {"address": {k: None for k in ADDRESS_KEYS},
                                "email": cust["email"] if cust else pi.get("receipt_email"),
                                "name": cust["name"] if cust else None, "phone": None,
                                "tax_id": None},
            "calculated_statement_descriptor": "CONCORD SIM", "captured": captured and not failed,
            "created": now_s(), "currency": pi["currency"], "customer": pi.get("customer"),
            "description": pi.get("description"), "disputed": False,
            "failure_balance_transaction": None,
            "failure_code": "card_declined" if failed else None,
            "failure_message": "Your card was declined." if failed else None,
            "fraud_details": {}, "livemode": False, "metadata": {}, "on_behalf_of": None,
            "outcome": {"network_status": "declined_by_network" if failed
                        else "approved_by_network",
                        "reason": "generic_decline" if failed else None,
                        "risk_level": "normal", "seller_message":
                        "The bank did not return any further details with this decline."
                        if failed else "Payment complete.",
                        "type": "issuer_declined" if failed else "authorized"},
            "paid": not failed, "payment_intent": pi["id"],
            "payment_method": pi.get("payment_method"),
            "payment_method_details": {"card": {"brand": "visa", "country": "US",
                                                "exp_month": 12, "exp_year": 2034,
                                                "funding": "credit", "last4": "4242",
                                                "network": "visa"}, "type": "card"},
            "receipt_email": pi.get("receipt_email"), "receipt_number": None,
            "receipt_url": "https://pay.stripe.com/receipts/payment/" + self.rand(40),
            "refunded": False,
            "refunds": {"object": "list", "data": [], "has_more": False,
                        "url": "/v1/charges/%s/refunds" % cid},
            "review": None, "shipping": None, "source": None, "source_transfer": None,
            "statement_descriptor": None, "statement_descriptor_suffix": None,
            "status": status, "transfer_data": None, "transfer_group": None,
        }

    def new_payment_intent(self, arg):
        pid = self.new_id("pi_", 24)
        amount = arg.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise ValueError("amount must be an integer >= 0 (minor units)")
        cust = arg.get("customer")
        if cust is not None and self.of_type(cust, "customer") is None:
            raise ValueError("no customer %s" % cust)
        meta = arg.get("metadata") or {}
        return {
            "id": pid, "object": "payment_intent", "amount": amount, "amount_capturable": 0,
            "amount_details": {"tip": {}}, "amount_received": 0, "application": None,
            "application_fee_amount": None,
            "automatic_payment_methods": {"allow_redirects": "always", "enabled": True},
            "canceled_at": None, "cancellation_reason": None, "capture_method": "automatic",
            "client_secret": "%s_secret_%s" % (pid, self.rand(25)),
            "confirmation_method": "automatic", "created": now_s(),
            "currency": str(arg.get("currency") or "usd").lower(), "customer": cust,
            "customer_account": None, "description": arg.get("description"),
            "excluded_payment_method_types": None, "last_payment_error": None,
            "latest_charge": None, "livemode": False, "managed_payments": None,
            "metadata": {str(k): str(v) for k, v in meta.items()}, "next_action": None,
            "on_behalf_of": None, "payment_method": "pm_" + self.rand(24),
            "payment_method_configuration_details": None, "payment_method_options": {},
            "payment_method_types": ["card"], "processing": None,
            "receipt_email": arg.get("receipt_email"), "review": None,
            "setup_future_usage": None, "shipping": None, "source": None,
            "statement_descriptor": None, "statement_descriptor_suffix": None,
            "status": "requires_payment_method", "transfer_data": None,
            "transfer_group": None,
        }

    def pi_transition(self, pi, status, out):
        """Moves a payment intent to status, emitting Stripe's events (and
        creating its charge when money moves). "payment_failed" is a decline:
        the intent goes back to requires_payment_method."""
        old = copy.deepcopy(pi)
        if status == "succeeded":
            if pi["status"] == "requires_capture" and pi.get("latest_charge"):
                ch = self.objects[pi["latest_charge"]]
                chold = copy.deepcopy(ch)
                ch.update(captured=True, amount_captured=ch["amount"])
                self.emit("charge.captured", ch, diff(chold, ch), out=out)
            else:
                ch = self.new_charge(pi)
                self.store(ch)
                pi["latest_charge"] = ch["id"]
                self.emit("charge.succeeded", ch, out=out)
            pi.update(status="succeeded", amount_received=pi["amount"], amount_capturable=0,
                      next_action=None, last_payment_error=None)
            self.emit("payment_intent.succeeded", pi, diff(old, pi), out=out)
        elif status == "requires_capture":
            ch = self.new_charge(pi, captured=False)
            self.store(ch)
            pi.update(status="requires_capture", latest_charge=ch["id"],
                      amount_capturable=pi["amount"], capture_method="manual")
            self.emit("charge.succeeded", ch, out=out)
            self.emit("payment_intent.amount_capturable_updated", pi, diff(old, pi), out=out)
        elif status == "payment_failed":
            ch = self.new_charge(pi, status="failed")
            self.store(ch)
            pi.update(status="requires_payment_method", latest_charge=ch["id"],
                      last_payment_error={"charge": ch["id"], "code": "card_declined",
                                          "decline_code": "generic_decline",
                                          "message": "Your card was declined.",
                                          "type": "card_error"})
            self.emit("charge.failed", ch, out=out)
            self.emit("payment_intent.payment_failed", pi, diff(old, pi), out=out)
        elif status == "canceled":
            pi.update(status="canceled", canceled_at=now_s(),
                      cancellation_reason="requested_by_customer")
            self.emit("payment_intent.canceled", pi, diff(old, pi), out=out)
        elif status == "requires_action":
            pi.update(status="requires_action", next_action={"type": "use_stripe_sdk",
                                                             "use_stripe_sdk": {}})
            self.emit("payment_intent.requires_action", pi, diff(old, pi), out=out)
        elif status == "processing":
            pi.update(status="processing", processing={"type": "card"})
            self.emit("payment_intent.processing", pi, diff(old, pi), out=out)
        else:  # requires_payment_method, requires_confirmation: Stripe has no event
            pi["status"] = status

    def pay(self, customer, amount, currency, description, out, request=None):
        """A payment that succeeds: a payment intent and its charge."""
        pi = self.new_payment_intent({"customer": customer, "amount": amount,
                                      "currency": currency, "description": description})
        self.store(pi)
        self.emit("payment_intent.created", pi, request=request, out=out)
        self.pi_transition(pi, "succeeded", out)
        return pi

    def new_invoice(self, arg):
        cust = self.of_type(str(arg.get("customer") or ""), "customer")
        if cust is None:
            raise ValueError("an invoice needs an existing customer")
        lines = arg.get("lines")
        if lines is None:
            lines = [{"amount": arg.get("amount", 0), "description": arg.get("description")}]
        iid = self.new_id("in_", 24)
        cur = str(arg.get("currency") or "usd").lower()
        data = []
        for ln in lines:
            a = ln.get("amount")
            if isinstance(a, bool) or not isinstance(a, int):
                raise ValueError("line amounts must be integers (minor units)")
            data.append({"id": "il_" + self.rand(24), "object": "line_item", "amount": a,
                         "currency": cur, "description": ln.get("description"),
                         "discount_amounts": [], "discountable": True, "discounts": [],
                         "invoice": iid, "livemode": False, "metadata": {},
                         "parent": None, "period": {"end": now_s(), "start": now_s()},
                         "pretax_credit_amounts": [], "pricing": None,
                         "quantity": ln.get("quantity", 1), "subtotal": a, "taxes": []})
        total = sum(d["amount"] for d in data)
        meta = arg.get("metadata") or {}
        return {
            "id": iid, "object": "invoice", "account_country": "US",
            "account_name": "Concord Sim", "account_tax_ids": None, "amount_due": total,
            "amount_overpaid": 0, "amount_paid": 0, "amount_remaining": total,
            "amount_shipping": 0, "application": None, "attempt_count": 0,
            "attempted": False, "auto_advance": False,
            "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None,
                              "provider": None, "status": None},
            "automatically_finalizes_at": None, "billing_reason": "manual",
            "collection_method": arg.get("collection_method", "charge_automatically"),
            "created": now_s(), "currency": cur, "custom_fields": None, "customer": cust["id"],
            "customer_account": None, "customer_address": copy.deepcopy(cust["address"]),
            "customer_email": cust["email"], "customer_name": cust["name"],
            "customer_phone": cust["phone"], "customer_shipping": copy.deepcopy(cust["shipping"]),
            "customer_tax_exempt": cust["tax_exempt"], "customer_tax_ids": [],
            "default_payment_method": None, "default_source": None, "default_tax_rates": [],
            "description": arg.get("description"), "discounts": [],
            "due_date": arg.get("due_date"), "effective_at": None, "ending_balance": None,
            "footer": None, "from_invoice": None, "hosted_invoice_url": None, "invoice_pdf": None,
            "issuer": {"type": "self"}, "last_finalization_error": None, "latest_revision": None,
            "lines": {"object": "list", "data": data, "has_more": False,
                      "url": "/v1/invoices/%s/lines" % iid},
            "livemode": False, "metadata": {str(k): str(v) for k, v in meta.items()},
            "next_payment_attempt": None, "number": None, "on_behalf_of": None, "parent": None,
            "payment_settings": {"default_mandate": None, "payment_method_options": None,
                                 "payment_method_types": None},
            "period_end": now_s(), "period_start": now_s(),
            "post_payment_credit_notes_amount": 0, "pre_payment_credit_notes_amount": 0,
            "receipt_number": None,
            "rendering": {"amount_tax_display": None, "pdf": {"page_size": "auto"},
                          "template": None, "template_version": None},
            "shipping_cost": None, "shipping_details": None, "starting_balance": 0,
            "statement_descriptor": None, "status": "draft",
            "status_transitions": {"finalized_at": None, "marked_uncollectible_at": None,
                                   "paid_at": None, "voided_at": None},
            "subscription": None, "subtotal": total, "subtotal_excluding_tax": total,
            "test_clock": None, "total": total, "total_discount_amounts": [],
            "total_excluding_tax": total, "total_pretax_credit_amounts": [], "total_taxes": [],
            "webhooks_delivered_at": None,
        }

    def invoice_transition(self, inv, status, out, with_payment=True):
        """Walks an invoice to status: draft -> open (finalized, numbered)
        -> paid | void | uncollectible; uncollectible -> paid | void."""
        allowed = {"draft": ("open", "paid", "void", "uncollectible"),
                   "open": ("paid", "void", "uncollectible"),
                   "uncollectible": ("paid", "void"), "paid": (), "void": ()}
        if status == inv["status"]:
            return
        if status not in allowed[inv["status"]]:
            raise ValueError("an invoice cannot go from %s to %s" % (inv["status"], status))
        if inv["status"] == "draft":
            old = copy.deepcopy(inv)
            cust = self.objects.get(inv["customer"]) or {}
            start = cust.get("next_invoice_sequence", 1)
            n = max(self.invoice_seq.get(inv["customer"], start - 1) + 1, start)
            self.invoice_seq[inv["customer"]] = n
            t = now_s()
            inv.update(status="open", number="%s-%04d" % (cust.get("invoice_prefix", "SIM"), n),
                       effective_at=t,
                       hosted_invoice_url="https://invoice.stripe.com/i/acct_sim/" + inv["id"],
                       invoice_pdf="https://pay.stripe.com/invoice/acct_sim/%s/pdf" % inv["id"])
            inv["status_transitions"]["finalized_at"] = t
            self.emit("invoice.finalized", inv, diff(old, inv), out=out)
        if status == "open":
            return
        old = copy.deepcopy(inv)
        t = now_s()
        if status == "paid":
            if with_payment and inv["amount_remaining"] > 0:
                self.pay(inv["customer"], inv["amount_remaining"], inv["currency"],
                         "Payment for Invoice", out)
            inv.update(status="paid", amount_paid=inv["amount_due"], amount_remaining=0,
                       attempted=True, attempt_count=inv["attempt_count"] + 1)
            inv["status_transitions"]["paid_at"] = t
            self.emit("invoice.paid", inv, diff(old, inv), out=out)
            self.emit("invoice.payment_succeeded", inv, out=out)
        elif status == "void":
            inv["status"] = "void"
            inv["status_transitions"]["voided_at"] = t
            self.emit("invoice.voided", inv, diff(old, inv), out=out)
        elif status == "uncollectible":
            inv["status"] = "uncollectible"
            inv["status_transitions"]["marked_uncollectible_at"] = t
            self.emit("invoice.marked_uncollectible", inv, diff(old, inv), out=out)

    def new_checkout_session(self, arg):
        sid = "cs_test_" + self.rand(58)
        while sid in self.objects:
            sid = "cs_test_" + self.rand(58)
        cust = arg.get("customer")
        if cust is not None and self.of_type(cust, "customer") is None:
            raise ValueError("no customer %s" % cust)
        amount = arg.get("amount_total", 0)
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise ValueError("amount_total must be an integer >= 0 (minor units)")
        meta = arg.get("metadata") or {}
        t = now_s()
        return {
            "id": sid, "object": "checkout.session", "adaptive_pricing": {"enabled": False},
            "after_expiration": None, "allow_promotion_codes": None, "amount_subtotal": amount,
            "amount_total": amount,
            "automatic_tax": {"enabled": False, "liability": None, "provider": None,
                              "status": None},
            "billing_address_collection": None, "cancel_url": "https://example.com/cancel",
            "client_reference_id": arg.get("client_reference_id"), "client_secret": None,
            "collected_information": None, "consent": None, "consent_collection": None,
            "created": t, "currency": str(arg.get("currency") or "usd").lower(),
            "currency_conversion": None, "custom_fields": [],
            "custom_text": {"after_submit": None, "shipping_address": None, "submit": None,
                            "terms_of_service_acceptance": None},
            "customer": cust, "customer_account": None,
            "customer_creation": arg.get("customer_creation",
                                         None if cust else "if_required"),
            "customer_details": None, "customer_email": arg.get("customer_email"),
            "discounts": [], "expires_at": t + 86400, "integration_identifier": None,
            "invoice": None, "invoice_creation": {"enabled": False, "invoice_data": None},
            "livemode": False, "locale": None, "managed_payments": None,
            "metadata": {str(k): str(v) for k, v in meta.items()},
            "mode": arg.get("mode", "payment"), "origin_context": None,
            "payment_intent": None, "payment_link": None,
            "payment_method_collection": "if_required",
            "payment_method_configuration_details": None, "payment_method_options": {},
            "payment_method_types": ["card"], "payment_status": "unpaid",
            "permissions": None, "phone_number_collection": {"enabled": False},
            "recovered_from": None, "saved_payment_method_options": None,
            "setup_intent": None, "shipping_address_collection": None, "shipping_cost": None,
            "shipping_options": [], "status": "open", "submit_type": None,
            "subscription": None, "success_url": "https://example.com/success",
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": "hosted", "url": "https://checkout.stripe.com/c/pay/" + sid,
            "wallet_options": None,
        }

    # --- lists, expansion, search ---

    def expand(self, obj, paths):
        """obj with the expand[] paths applied: an id field of the object
        (or data.FIELD of a list) replaced by the object it names, up to 4
        levels; anything else answers 400."""
        out = copy.deepcopy(obj)
        for p in paths:
            if not isinstance(p, str):
                raise bad_param("Invalid array", "expand")
            parts = p.split(".")
            if len(parts) > 4:
                raise bad_param("You cannot expand more than 4 levels of a property. "
                                "Property: %s" % p, "expand")
            self._expand(out, parts, p)
        return out

    def check_expand(self, otype, paths, listing):
        """Refuses (400) expand[] paths whose first field cannot be expanded,
        before the request changes anything."""
        for p in paths:
            if not isinstance(p, str):
                raise bad_param("Invalid array", "expand")
            parts = p.split(".")
            if listing:
                parts = parts[1:] if parts[0] == "data" else []
            if not parts or parts[0] not in EXPANDABLE.get(otype, ()):
                raise bad_param("This property cannot be expanded (%s)." % p, "expand")

    def _expand(self, obj, parts, full):
        if obj.get("object") in ("list", "search_result"):
            if parts[0] != "data" or len(parts) < 2:
                raise bad_param("This property cannot be expanded (%s)." % full, "expand")
            for item in obj["data"]:
                self._expand(item, parts[1:], full)
            return
        field = parts[0]
        if field not in EXPANDABLE.get(obj.get("object"), ()):
            raise bad_param("This property cannot be expanded (%s)." % full, "expand")
        val = obj.get(field)
        if isinstance(val, str):
            found = self.objects.get(val) or self.tombs.get(val)
            if found is not None:
                val = copy.deepcopy(found)
                obj[field] = val
        if len(parts) > 1 and isinstance(val, dict):
            self._expand(val, parts[1:], full)

    def created_filter(self, v):
        """created=N or created[gt|gte|lt|lte]=N -> a predicate on seconds."""
        if isinstance(v, str):
            n = to_int(v, "created")
            return lambda c: c == n
        if not isinstance(v, dict):
            raise bad_param("Invalid hash", "created")
        ops = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b,
               "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b}
        checks = []
        for k, x in v.items():
            if k not in ops:
                raise unknown_param("created[%s]" % k)
            checks.append((ops[k], to_int(x, "created[%s]" % k)))
        return lambda c: all(op(c, n) for op, n in checks)

    def list_page(self, otype, q):
        """GET /v1/<collection>: newest first; limit 1..100 (default 10);
        starting_after=ID pages toward older objects, ending_before=ID gives
        the `limit` objects just newer than ID (still newest first);
        has_more says whether more lie in that direction. A cursor that names
        no object held (deleted, expired) answers 404 resource_missing."""
        check_params(q, LIST_PARAMS | LIST_FILTERS[otype])
        limit = to_int(q["limit"], "limit") if "limit" in q else 10
        if not 1 <= limit <= MAX_LIMIT:
            raise bad_param("This value must be %s." % ("greater than or equal to 1"
                            if limit < 1 else "less than or equal to 100"), "limit",
                            "parameter_invalid_integer")
        after, before = q.get("starting_after"), q.get("ending_before")
        if after and before:
            raise bad_param("You may only specify one of these parameters: ending_before, "
                            "starting_after.", "ending_before")
        if otype == "event":
            self.prune_events()
            items = list(reversed(self.events))
        else:
            items = sorted((o for o in self.objects.values() if o["object"] == otype),
                           key=lambda o: self.seq[o["id"]], reverse=True)
        preds = []
        if "created" in q:
            f = self.created_filter(q["created"])
            preds.append(lambda o: f(o["created"]))
        for k in LIST_FILTERS[otype]:
            if k not in q or k in ("test_clock", "subscription", "transfer_group",
                                   "payment_link"):
                continue
            if otype == "event" and k in ("type", "types"):
                continue
            if k == "delivery_success":
                want = to_bool(q[k], k)
                preds.append(lambda o, w=want: (self.deliverer.pending(o["id"], o["type"])
                                                == 0) == w)
                continue
            v = q[k]
            if not isinstance(v, str):
                raise bad_param("Invalid string: %s" % k, k)
            preds.append(lambda o, k=k, v=v: o.get(k) == v)
        if otype == "event":
            if "type" in q and "types" in q:
                raise bad_param("You may only specify one of these parameters: type, types.",
                                "types")
            pats = [q["type"]] if "type" in q else \
                as_list(q["types"], "types") if "types" in q else None
            if pats is not None:
                if len(pats) > 20:
                    raise bad_param("types may hold at most 20 event types", "types")
                preds.append(lambda o: any(fnmatch.fnmatchcase(o["type"], p) for p in pats))

        def fits(o):
            return all(p(o) for p in preds)

        ids = [o["id"] for o in items]
        cursor = after or before
        if cursor:
            if cursor not in ids:
                raise missing(NAMES[otype], cursor,
                              "starting_after" if after else "ending_before")
            i = ids.index(cursor)
        if after:
            rest = [o for o in items[i + 1:] if fits(o)]
            page, more = rest[:limit], len(rest) > limit
        elif before:
            newer = [o for o in items[:i] if fits(o)]
            page, more = newer[-limit:], len(newer) > limit
        else:
            rest = [o for o in items if fits(o)]
            page, more = rest[:limit], len(rest) > limit
        if otype == "event":
            page = [self.event_view(e) for e in page]
        else:
            page = [copy.deepcopy(o) for o in page]
        self.stats["list_reads"] += 1
        return {"object": "list", "data": page, "has_more": more, "url": URLS[otype]}

    def search_customers(self, q):
        """GET /v1/customers/search: a subset of Stripe's query language:
        clauses FIELD:'v' (equality), FIELD~'v' (substring) and
        metadata['k']:'v', joined all by AND or all by OR; fields email,
        name, phone, description. page is the opaque next_page. Newest
        first. Search is immediate here (Stripe lags up to a minute)."""
        check_params(q, {"query", "limit", "page", "expand"})
        query = q.get("query")
        if not isinstance(query, str) or not query.strip():
            raise bad_param("Missing required param: query.", "query", "parameter_missing")
        limit = to_int(q["limit"], "limit") if "limit" in q else 10
        if not 1 <= limit <= MAX_LIMIT:
            raise bad_param("limit must be within 1..100", "limit")
        joins = re.findall(r"\s+(AND|OR)\s+", query)
        if len(set(joins)) > 1:
            raise bad_param("Mixing AND and OR is not supported", "query")
        clauses = re.split(r"\s+(?:AND|OR)\s+", query.strip())
        preds = []
        for c in clauses:
            m = re.match(r"^(-?)(metadata\['([^']*)'\]|email|name|phone|description)"
                         r"\s*([:~])\s*'((?:[^'\\]|\\.)*)'$", c)
            if not m:
                raise bad_param("Invalid search query clause: %s" % c, "query")
            neg, field, mkey, op, val = m.groups()
            val = val.replace("\\'", "'")

            def pred(o, field=field, mkey=mkey, op=op, val=val, neg=neg):
                have = (o.get("metadata") or {}).get(mkey) if mkey is not None else o.get(field)
                hit = have is not None and (have == val if op == ":" else
                                            val.lower() in have.lower())
                return hit != bool(neg)
            preds.append(pred)
        combine = any if joins and joins[0] == "OR" else all
        items = sorted((o for o in self.objects.values() if o["object"] == "customer"),
                       key=lambda o: self.seq[o["id"]], reverse=True)
        hits = [o for o in items if combine(p(o) for p in preds)]
        start = 0
        if q.get("page"):
            try:
                start = int(base64.urlsafe_b64decode(q["page"] + "==").decode())
            except (ValueError, UnicodeDecodeError):
                raise bad_param("Invalid page", "page")
        page = hits[start:start + limit]
        more = len(hits) > start + limit
        nxt = base64.urlsafe_b64encode(str(start + limit).encode()).decode().rstrip("=") \
            if more else None
        return {"object": "search_result", "data": copy.deepcopy(page), "has_more": more,
                "next_page": nxt, "url": "/v1/customers/search"}

    # --- one REST request ---

    def apply(self, method, parts, params, ctx):
        """Carries out one authenticated /v1 request (parts: the path after
        /v1). Returns (status, answer, applied). Raises StripeError. Called
        under lock."""
        otype, oid = None, None
        for n in (2, 1):
            key = tuple(parts[:n])
            if key in COLLECTIONS and len(parts) in (n, n + 1):
                otype = COLLECTIONS[key]
                oid = parts[n] if len(parts) == n + 1 else None
                break
        expand = as_list(params.get("expand", []), "expand")
        if otype is not None:
            self.check_expand(otype, expand, method == "GET" and (
                oid is None or (otype == "customer" and oid == "search")))
        if otype == "customer" and oid == "search" and method == "GET":
            return 200, self.expand(self.search_customers(params), expand), False
        if otype is None or (oid is None and method not in ("GET", "POST")) \
                or (oid is None and method == "POST" and otype != "customer") \
                or (oid is not None and method not in ("GET", "POST", "DELETE")) \
                or (method == "DELETE" and otype != "customer") \
                or (method == "POST" and otype in ("event", "checkout.session")):
            raise StripeError(404, "invalid_request_error",
                              "Unrecognized request URL (%s: /v1/%s). Please see "
                              "https://stripe.com/docs or we can help at "
                              "https://support.stripe.com/." % (method, "/".join(parts)))
        if oid is None and method == "GET":
            return 200, self.expand(self.list_page(otype, params), expand), False
        if otype == "customer":
            if oid is None:
                c = self.customer_create(params, ctx)
                return 200, self.expand(c, expand), True
            if method == "DELETE":
                check_params(params, {"expand"})
                return 200, self.customer_delete(oid, ctx), True
            if method == "POST":
                before = self.stats["updates"]
                c = self.customer_update(oid, params, ctx)
                return 200, self.expand(c, expand), self.stats["updates"] > before
        if method == "GET":
            check_params(params, {"expand"})
            if otype == "event":
                self.prune_events()
                evt = next((e for e in self.events if e["id"] == oid), None)
                if evt is None:
                    raise missing("event", oid)
                return 200, self.event_view(evt), False
            obj = self.of_type(oid, otype) or (self.tombs.get(oid) if otype == "customer"
                                               else None)
            if obj is None:
                raise missing(NAMES[otype], oid)
            return 200, self.expand(obj, expand), False
        # POST /v1/{payment_intents,charges,invoices}/ID: metadata and
        # description only (the flows themselves come from the control API).
        check_params(params, {"metadata", "description", "expand"})
        cur = self.of_type(oid, otype)
        if cur is None:
            raise missing(NAMES[otype], oid)
        new = copy.deepcopy(cur)
        if "metadata" in params:
            new["metadata"] = merge_metadata(cur.get("metadata"), params["metadata"])
        if "description" in params:
            new["description"] = to_str(params["description"], "description")
        prev = diff(cur, new)
        if prev:
            self.store(new)
            self.stats["updates"] += 1
            if otype != "payment_intent":  # Stripe has no payment_intent.updated
                self.emit(otype + ".updated", new, prev, request=ctx)
        return 200, self.expand(new, expand), bool(prev)


# --- HTTP --------------------------------------------------------------------


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def version_string(self):
        return "nginx"  # what api.stripe.com answers in Server
    disable_nagle_algorithm = True
    wbufsize = -1
    # simbase.py's plumbing: chunked/Content-Length bodies, RST, peer checks.
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
            sys.stderr.write("stripe-sim %d: %s\n" % (self.server.opts.port, fmt % args))

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def dispatch(self):
        split = urllib.parse.urlsplit(self.path)
        if split.path.startswith("/_sim/"):
            self.control(split)
        else:
            self.rest(split)

    def send_answer(self, status, obj, headers=None):
        """obj: a JSON-able object (pretty-printed, as Stripe writes), bytes,
        a str, or None."""
        if obj is None:
            data = b""
        elif isinstance(obj, bytes):
            data = obj
        elif isinstance(obj, str):
            data = obj.encode()
        else:
            data = dumps(obj)
        self.send_response(status)
        if data:
            ctype = "application/json" if not isinstance(obj, (str, bytes)) else "text/plain"
            self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    # --- the REST API ---

    def authorized(self):
        """None when the request carries --api-key (Bearer, or Basic "key:"),
        else the 401 error."""
        h = self.headers.get("Authorization") or ""
        scheme, _, val = h.partition(" ")
        key = None
        if scheme.lower() == "bearer":
            key = val.strip()
        elif scheme.lower() == "basic":
            try:
                key = base64.b64decode(val.strip()).decode().split(":", 1)[0]
            except (ValueError, UnicodeDecodeError):
                key = None
        if not key:
            return StripeError(401, "invalid_request_error",
                               "You did not provide an API key. You need to provide your API "
                               "key in the Authorization header, using Bearer auth (e.g. "
                               "'Authorization: Bearer YOUR_SECRET_KEY'). See "
                               "https://stripe.com/docs/api#authentication for details, or "
                               "we can help at https://support.stripe.com/.")
        if not hmac.compare_digest(key.encode(), self.server.opts.api_key.encode()):
            masked = key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if len(key) > 12 \
                else "*" * len(key)
            return StripeError(401, "invalid_request_error",
                               "Invalid API Key provided: %s" % masked)
        return None

    def rest(self, split):
        st = self.server.state
        opts = self.server.opts
        method = self.command
        req_id = st.new_request_id()
        key = self.headers.get("Idempotency-Key") if method == "POST" else None
        with st.lock:
            st.stats["requests"] += 1
            entry = {"seq": len(st.log) + 1, "time": time.time(), "method": method,
                     "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                     "query": None, "body": None, "status": None, "applied": False,
                     "request_id": req_id, "idempotency": None}
            st.log.append(entry)
            fault = st.pick_fault(method, split.path)
            if fault:
                st.stats["faults"] += 1
                entry["fault"] = fault
        self.base_headers = {"Request-Id": req_id,
                             "Stripe-Version": self.headers.get("Stripe-Version")
                             or opts.api_version,
                             "Cache-Control": "no-cache, no-store"}
        if key:
            self.base_headers["Idempotency-Key"] = key

        holding = []  # the idempotency key while this request holds it

        def finish(status, applied=None):
            """Logs the outcome and lets go of the key, before the answer
            leaves: a client that retries at once must not meet its own
            earlier request still holding the key."""
            with st.lock:
                if holding:
                    st.idem_busy.discard(holding.pop())
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
            self.send_answer(400, error_body("invalid_request_error", "Unreadable body."),
                             self.base_headers)
            return
        params, parse_error = {}, None
        try:
            query = parse_form(split.query)
            body = parse_form(raw.decode("utf-8", "replace")) if raw else {}
            params = dict(query, **body)
        except StripeError as e:
            parse_error = e
            query, body = split.query, raw.decode("utf-8", "replace")
        with st.lock:
            entry["query"] = query
            entry["body"] = body if raw else None

        # The key is held from arrival: a slow request holds it while it sleeps.
        held, idem = False, None
        if key:
            with st.lock:
                self.prune_idem()
                if key in st.idem:
                    idem = "done"
                elif key in st.idem_busy:
                    idem = "busy"
                else:
                    st.idem_busy.add(key)
                    holding.append(key)
                    held = True
        try:
            self.rest_request(split, fault, finish, entry, req_id, key, held, idem,
                              params, parse_error)
        finally:
            with st.lock:
                if holding:
                    st.idem_busy.discard(holding.pop())

    def prune_idem(self):
        st = self.server.state
        cutoff = time.time() - self.server.opts.idempotency_ttl_s
        for k in [k for k, v in st.idem.items() if v["at"] < cutoff]:
            del st.idem[k]

    def rest_request(self, split, fault, finish, entry, req_id, key, held, idem, params,
                     parse_error):
        st = self.server.state
        method = self.command
        hdrs = dict(self.base_headers)
        fp = json.dumps([method, split.path, params], sort_keys=True)

        def remember(status, obj, extra):
            if held:
                with st.lock:
                    st.idem[key] = {"fp": fp, "status": status, "body": obj,
                                    "headers": dict(extra), "request_id": req_id,
                                    "at": time.time()}

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
            obj = fault["body"] if "body" in fault else fault_error(status)
            if isinstance(obj, dict) and isinstance(obj.get("error"), dict) \
                    and "request_log_url" not in obj["error"]:
                obj = copy.deepcopy(obj)
                obj["error"]["request_log_url"] = \
                    "https://dashboard.stripe.com/test/logs/%s?t=%d" % (req_id, now_s())
            if fault.get("stored"):
                remember(status, obj, extra)
            if gone:
                finish("timeout", False)
                self.close_connection = True
                return
            finish(status, False)
            hdrs.update(extra)
            self.send_answer(status, obj, hdrs)
            return

        def refuse(err, note=None):
            """Answers err: nothing applied, nothing stored. note: the stats
            counter; idem_* ones also mark the log entry's "idempotency"
            ("in_use", "mismatch"), the others its "refused"."""
            with st.lock:
                if note:
                    st.stats[note] += 1
                    if note.startswith("idem_"):
                        entry["idempotency"] = note[len("idem_"):]
                    else:
                        entry["refused"] = note
            if gone:
                finish("timeout", False)
                self.close_connection = True
                return
            finish(err.status, False)
            h = dict(hdrs)
            h.update(err.headers)
            self.send_answer(err.status, err.body(req_id if err.status != 401 else None), h)

        err = self.authorized()
        if err is not None:
            err.headers["WWW-Authenticate"] = 'Bearer realm="Stripe"'
            refuse(err, "unauthorized")
            return
        with st.lock:
            ok = st.bucket.take()
        if not ok:
            refuse(StripeError(429, "invalid_request_error",
                               "Request rate limit exceeded. Learn more about rate limits "
                               "here https://stripe.com/docs/rate-limits.", code="rate_limit",
                               headers={"Stripe-Rate-Limited-Reason": "global-rate"}),
                   "rate_limited")
            return
        if parse_error is not None:
            refuse(parse_error)
            return
        if key is not None and len(key) > 255:
            refuse(bad_param("Idempotency-Key must be at most 255 characters long.",
                             "Idempotency-Key"))
            return
        if idem == "busy":
            refuse(StripeError(409, "idempotency_error",
                               "There is currently another in-progress request using this "
                               "Idempotent Key (that probably means you submitted twice, and "
                               "the other request is still going through): %s. Please try "
                               "again later." % key, code="idempotency_key_in_use",
                               headers={"Stripe-Should-Retry": "true"}), "idem_in_use")
            return
        if idem == "done":
            with st.lock:
                first = st.idem.get(key)
            if first is not None and first["fp"] != fp:
                refuse(StripeError(400, "idempotency_error",
                                   "Keys for idempotent requests can only be used with the "
                                   "same parameters they were first used with. Try using a "
                                   "key other than '%s' if you meant to execute a different "
                                   "request." % key,
                                   headers={"Stripe-Should-Retry": "false"}), "idem_mismatch")
                return
            if first is not None:
                with st.lock:
                    st.stats["idem_replayed"] += 1
                    entry["idempotency"] = "replayed"
                h = dict(hdrs)
                h.update(first["headers"])
                h["Idempotent-Replayed"] = "true"
                h["Original-Request"] = first["request_id"]
                if fault and fault.get("reset") == "after":
                    finish("lost", False)
                    self.reset_connection()
                    return
                if gone:
                    finish("timeout", False)
                    self.close_connection = True
                    return
                finish(first["status"], False)
                self.send_answer(first["status"], first["body"], h)
                return
            # Pruned between the two looks: carried out as a new request.

        parts = [p for p in split.path.split("/") if p]
        ctx = {"id": req_id, "idempotency_key": key}
        extra = {}
        try:
            if not parts or parts[0] != "v1":
                raise StripeError(404, "invalid_request_error",
                                  "Unrecognized request URL (%s: %s). Please see "
                                  "https://stripe.com/docs or we can help at "
                                  "https://support.stripe.com/." % (method, split.path))
            with st.lock:
                status, obj, applied = st.apply(method, parts[1:], params, ctx)
            storable = True
        except StripeError as e:
            status, obj, applied, storable = e.status, e.body(req_id), False, e.store
            extra = e.headers
        if storable:
            remember(status, obj, extra)
        if key:
            hdrs["Original-Request"] = req_id
        hdrs.update(extra)
        self.answer_end(fault, late, gone, finish, status, obj, hdrs, applied)

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
        except StripeError as e:
            status, obj = 400, {"error": "bad control request: %s" % e.message}
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            status, obj = 400, {"error": "bad control request: %s: %s" % (type(e).__name__, e)}
        self.send_answer(status, obj)

    def settle(self, arg, ids, out):
        """With "wait": true, waits until the events' first deliveries were
        tried and adds them to the answer as "deliveries"."""
        out["events"] = ids
        if arg.get("wait"):
            st = self.server.state
            with st.lock:
                types = {e["id"]: e["type"] for e in st.events}
            mine = [i for i in ids if self.server.deliverer.subscribed(types.get(i, ""))]
            out["deliveries"] = self.server.deliverer.wait_first(
                mine, float(arg.get("timeout_s", 10)))
        return 200, out

    def ctl_get_requests(self, arg, q):
        since = int(q.get("since", ["0"])[-1])
        st = self.server.state
        with st.lock:
            return 200, [copy.deepcopy(e) for e in st.log if e["seq"] > since]

    ctl_get_log = ctl_get_requests

    def ctl_get_objects(self, arg, q):
        otype = q.get("type", [None])[-1]
        st = self.server.state
        with st.lock:
            return 200, {k: copy.deepcopy(v) for k, v in st.objects.items()
                         if otype is None or v["object"] == otype}

    ctl_get_records = ctl_get_objects

    def ctl_get_events(self, arg, q):
        """Every event still kept, oldest first."""
        st = self.server.state
        with st.lock:
            st.prune_events()
            return 200, [st.event_view(e) for e in st.events]

    def ctl_get_deliveries(self, arg, q):
        since = int(q.get("since", ["0"])[-1])
        return 200, self.server.deliverer.snapshot(since)[1]

    def ctl_get_stats(self, arg, q):
        st = self.server.state
        with st.lock:
            out = copy.deepcopy(st.stats)
            out["objects"] = {}
            for o in st.objects.values():
                out["objects"][o["object"]] = out["objects"].get(o["object"], 0) + 1
            out["events_kept"] = len(st.events)
            out["faults_queued"] = len(st.faults)
            out["idempotency_keys"] = len(st.idem)
        out["webhooks"] = self.server.deliverer.snapshot(10 ** 12)[0]
        return 200, out

    def ctl_post_reset(self, arg, q):
        st = self.server.state
        with st.lock:
            st.reset()
        self.server.deliverer.reset()
        return 200, {"status": "reset"}

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
        bad = [k for k in kinds if k not in RANDOM_KINDS]
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

    def ctl_post_rate_limit(self, arg, q):
        rate = float(arg.get("rate", self.server.opts.rate))
        burst = arg.get("burst")
        if rate < 0 or (burst is not None and float(burst) < 1):
            raise ValueError("rate must be >= 0 and burst >= 1")
        st = self.server.state
        with st.lock:
            st.bucket.set(rate, burst)
            return 200, {"rate": st.bucket.rate, "burst": st.bucket.burst}

    def ctl_post_age(self, arg, q):
        """Makes events older by "seconds" (all, or those in "ids"): what
        --retention-s then does to them is what 30 days do at Stripe."""
        secs = int(arg["seconds"])
        ids = arg.get("ids")
        st = self.server.state
        with st.lock:
            n = 0
            for e in st.events:
                if ids is None or e["id"] in ids:
                    e["created"] -= secs
                    n += 1
            st.prune_events()
            return 200, {"aged": n, "kept": len(st.events)}

    def ctl_post_expire_idempotency(self, arg, q):
        """Forgets stored idempotency answers (all, or "keys"), as Stripe
        prunes keys after 24 hours."""
        st = self.server.state
        with st.lock:
            keys = arg.get("keys")
            gone = [k for k in st.idem if keys is None or k in keys]
            for k in gone:
                del st.idem[k]
            return 200, {"expired": len(gone)}

    def person_request(self, arg):
        """event.request of an edit made in the dashboard."""
        if "request" in arg:
            return arg["request"]
        return {"id": self.server.state.new_request_id(), "idempotency_key": None}

    def ctl_post_create(self, arg, q):
        """A person creates a customer in the dashboard: {"fields": {...}}."""
        if arg.get("object", "customer") != "customer":
            raise ValueError("only customers are created this way (see /_sim/payment_intent, "
                             "/_sim/invoice, /_sim/checkout_session)")
        ctx = self.person_request(arg)
        st = self.server.state
        ids = []
        with st.lock:
            c = st.customer_create(to_form_values(arg.get("fields") or {}), ctx, ids)
        return self.settle(arg, ids, {"object": c})

    def ctl_post_update(self, arg, q):
        """A person edits an object in the dashboard: {"id", "fields",
        "event"?}. A customer's fields go through the API's rules; another
        object's fields are merged as given (metadata key by key) and the
        event is TYPE.updated unless "event" names one."""
        oid = str(arg["id"])
        fields = arg.get("fields") or {}
        if not isinstance(fields, dict):
            raise ValueError("fields must be an object")
        ctx = self.person_request(arg)
        st = self.server.state
        ids = []
        with st.lock:
            cur = st.objects.get(oid)
            if cur is None:
                return 404, {"error": "no object %s here" % oid}
            if cur["object"] == "customer" and not arg.get("event"):
                obj = st.customer_update(oid, to_form_values(fields), ctx, ids)
            else:
                new = copy.deepcopy(cur)
                for k, v in fields.items():
                    if k in ("id", "object"):
                        continue
                    if k == "metadata":
                        new["metadata"] = merge_metadata(new.get("metadata"),
                                                         to_form_values(v))
                    else:
                        new[k] = v
                prev = diff(cur, new)
                if prev or arg.get("event"):
                    st.store(new)
                    st.stats["updates"] += 1
                    st.emit(arg.get("event") or cur["object"] + ".updated", new, prev,
                            request=ctx, out=ids)
                obj = new
        return self.settle(arg, ids, {"object": obj})

    def ctl_post_delete(self, arg, q):
        """A person deletes a customer in the dashboard: {"id"}."""
        ctx = self.person_request(arg)
        st = self.server.state
        ids = []
        with st.lock:
            if st.of_type(str(arg["id"]), "customer") is None:
                return 404, {"error": "no customer %s here" % arg["id"]}
            tomb = st.customer_delete(str(arg["id"]), ctx, ids)
        return self.settle(arg, ids, {"object": tomb})

    def ctl_post_payment_intent(self, arg, q):
        """A payment: {"id"?, "customer"?, "amount", "currency", "status",
        "metadata"?, "description"?, "receipt_email"?}. Without "id" a new
        intent is created (payment_intent.created) and then moved to status
        (default succeeded); with "id" the intent is moved."""
        status = arg.get("status", "succeeded")
        if status not in PI_STATUSES:
            raise ValueError("status must be one of %s" % ", ".join(PI_STATUSES))
        st = self.server.state
        ids = []
        with st.lock:
            if arg.get("id"):
                pi = st.of_type(str(arg["id"]), "payment_intent")
                if pi is None:
                    return 404, {"error": "no payment intent %s" % arg["id"]}
                if pi["status"] in ("succeeded", "canceled"):
                    raise ValueError("payment intent %s is %s" % (pi["id"], pi["status"]))
            else:
                pi = st.new_payment_intent(arg)
                st.store(pi)
                st.emit("payment_intent.created", pi, request=arg.get("request"), out=ids)
            st.pi_transition(pi, status, ids)
            obj = copy.deepcopy(pi)
            charge = copy.deepcopy(st.objects.get(pi.get("latest_charge") or ""))
        return self.settle(arg, ids, {"object": obj, "charge": charge})

    def ctl_post_invoice(self, arg, q):
        """An invoice: {"id"?, "customer", "amount" | "lines": [{"amount",
        "description"}], "currency", "status", "metadata"?, "description"?,
        "due_date"?, "with_payment"?}. Without "id" a draft is created
        (invoice.created) and walked to status (default paid; paying creates
        a payment intent and a charge unless "with_payment": false)."""
        status = arg.get("status", "paid")
        if status not in INVOICE_STATUSES:
            raise ValueError("status must be one of %s" % ", ".join(INVOICE_STATUSES))
        st = self.server.state
        ids = []
        with st.lock:
            if arg.get("id"):
                inv = st.of_type(str(arg["id"]), "invoice")
                if inv is None:
                    return 404, {"error": "no invoice %s" % arg["id"]}
            else:
                inv = st.new_invoice(arg)
                st.store(inv)
                st.emit("invoice.created", inv, request=arg.get("request"), out=ids)
            st.invoice_transition(inv, status, ids, arg.get("with_payment", True))
            obj = copy.deepcopy(inv)
        return self.settle(arg, ids, {"object": obj})

    def ctl_post_checkout_session(self, arg, q):
        """A Checkout session: {"id"?, "customer"?, "customer_email"?,
        "customer_name"?, "customer_creation"?: "always", "amount_total",
        "currency", "status": "open" | "complete" | "expired", "metadata"?,
        "client_reference_id"?}. Completing it pays (payment intent, charge),
        creates a customer first when customer_creation is "always" and none
        is given, and emits checkout.session.completed."""
        status = arg.get("status", "complete")
        if status not in ("open", "complete", "expired"):
            raise ValueError("status must be open, complete or expired")
        st = self.server.state
        ids = []
        with st.lock:
            if arg.get("id"):
                cs = st.of_type(str(arg["id"]), "checkout.session")
                if cs is None:
                    return 404, {"error": "no checkout session %s" % arg["id"]}
                if cs["status"] != "open" and status != cs["status"]:
                    raise ValueError("checkout session %s is %s" % (cs["id"], cs["status"]))
            else:
                cs = st.new_checkout_session(arg)
                st.store(cs)
            if status == "complete" and cs["status"] == "open":
                email = cs["customer_email"] or arg.get("customer_email")
                if cs["customer"] is None and cs["customer_creation"] == "always":
                    fields = {"email": email or "", "name": arg.get("customer_name") or ""}
                    c = st.customer_create(fields, None, ids)
                    cs["customer"] = c["id"]
                pi = st.pay(cs["customer"], cs["amount_total"], cs["currency"], None, ids)
                cust = st.objects.get(cs["customer"] or "") or {}
                cs.update(status="complete", payment_status="paid", payment_intent=pi["id"],
                          customer_details={"address": copy.deepcopy(cust.get("address")),
                                            "email": cust.get("email") or email,
                                            "name": cust.get("name") or arg.get("customer_name"),
                                            "phone": cust.get("phone"), "tax_exempt": "none",
                                            "tax_ids": []})
                st.emit("checkout.session.completed", cs, out=ids)
            elif status == "expired" and cs["status"] == "open":
                cs["status"] = "expired"
                st.emit("checkout.session.expired", cs, out=ids)
            obj = copy.deepcopy(cs)
        return self.settle(arg, ids, {"object": obj})

    def ctl_post_refund(self, arg, q):
        """Refunds a charge ({"charge"} or {"payment_intent"}, "amount"?:
        all by default): charge.refunded."""
        st = self.server.state
        ids = []
        with st.lock:
            cid = arg.get("charge")
            if not cid and arg.get("payment_intent"):
                pi = st.of_type(str(arg["payment_intent"]), "payment_intent") or {}
                cid = pi.get("latest_charge")
            ch = st.of_type(str(cid or ""), "charge")
            if ch is None or not ch["paid"]:
                return 404, {"error": "no paid charge %s" % cid}
            old = copy.deepcopy(ch)
            amount = int(arg.get("amount", ch["amount"] - ch["amount_refunded"]))
            ch["amount_refunded"] = min(ch["amount"], ch["amount_refunded"] + amount)
            ch["refunded"] = ch["amount_refunded"] == ch["amount"]
            st.emit("charge.refunded", ch, diff(old, ch), out=ids)
            obj = copy.deepcopy(ch)
        return self.settle(arg, ids, {"object": obj})

    def ctl_post_webhooks(self, arg, q):
        """Delivery mischief: {"seed", "drop", "dup", "reorder", "delay_ms",
        "hold_ms", "paused", "extra_secrets", "v0"}; {} turns it all off."""
        return 200, self.server.deliverer.configure(arg)

    def ctl_post_resend(self, arg, q):
        """Sends an event again now (the dashboard's "Resend")."""
        st = self.server.state
        with st.lock:
            evt = next((e for e in st.events if e["id"] == arg.get("event_id")), None)
            if evt is None:
                return 404, {"error": "no event %s" % arg.get("event_id")}
            body = dumps(evt)
        if not self.server.opts.webhook_url:
            raise ValueError("no --webhook-url")
        self.server.deliverer.enqueue(evt["id"], evt["type"], body, force=True)
        return 200, {"queued": evt["id"]}

    def ctl_post_send_raw(self, arg, q):
        """Sends an arbitrary webhook: {"body": text or JSON, "headers"?,
        "url"?, "sign"?: true (a Stripe-Signature with "timestamp"? and
        "secret"?)}. Answers {"status", "body"} or {"error"}."""
        url = arg.get("url") or self.server.opts.webhook_url
        if not url:
            raise ValueError("no --webhook-url and no url given")
        body = arg.get("body", "")
        if not isinstance(body, str):
            body = json.dumps(body)
        data = body.encode()
        headers = {"Content-Type": "application/json; charset=utf-8"}
        headers.update({str(k): str(v) for k, v in (arg.get("headers") or {}).items()})
        if arg.get("sign"):
            t = int(arg.get("timestamp", now_s()))
            secret = arg.get("secret", self.server.opts.webhook_secret or "")
            headers["Stripe-Signature"] = "t=%d,v1=%s" % (t, stripe_signature(secret, t, data))
        out = {"status": None, "body": None}
        try:
            out["status"], out["body"] = simbase.post(url, data, headers)
        except (OSError, http.client.HTTPException) as e:
            out["error"] = "%s: %s" % (type(e).__name__, e)
        return 200, out


def parse_args(argv):
    p = argparse.ArgumentParser(description="a Stripe account for concord tests")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--api-key", default="sk_test_concord_sim",
                   help="the secret key every /v1 request must carry")
    p.add_argument("--seed", type=int, default=None,
                   help="seeds object, event and request ids (replayable runs)")
    p.add_argument("--api-version", default=DEFAULT_API_VERSION)
    p.add_argument("--retention-s", type=int, default=30 * 86400,
                   help="events older than this are gone (Stripe: 30 days)")
    p.add_argument("--webhook-url", default=None)
    p.add_argument("--webhook-secret", default=None, help="whsec_...")
    p.add_argument("--webhook-events", default="*",
                   help="comma-separated event types the endpoint takes (wildcards)")
    p.add_argument("--webhook-attempts", type=int, default=4)
    p.add_argument("--webhook-backoff-ms", type=float, default=500.0,
                   help="the wait before the second attempt, doubled after each")
    p.add_argument("--webhook-timeout-s", type=float, default=10.0)
    p.add_argument("--rate", type=float, default=25.0,
                   help="requests a second (token bucket); 0 turns the limiter off")
    p.add_argument("--burst", type=float, default=None,
                   help="the bucket's size (default: the rate)")
    p.add_argument("--idempotency-ttl-s", type=float, default=86400.0)
    p.add_argument("--verbose", action="store_true")
    opts = p.parse_args(argv)
    if opts.webhook_url and opts.webhook_secret is None:
        p.error("--webhook-url needs --webhook-secret")
    if opts.webhook_attempts < 1:
        p.error("--webhook-attempts must be >= 1")
    opts.webhook_events = [s.strip() for s in opts.webhook_events.split(",") if s.strip()]
    return opts


def main(argv):
    opts = parse_args(argv)
    server = simbase.Server(("127.0.0.1", opts.port), Handler)
    opts.port = server.server_address[1]
    server.opts = opts
    server.deliverer = Deliverer(opts)
    server.state = State(opts, server.deliverer)
    sys.stdout.write("ready %d\n" % opts.port)
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
