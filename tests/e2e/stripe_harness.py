# SPDX-License-Identifier: MIT
"""tests/sims/stripe.py for e2e tests: StripeSim starts and stops it like
harness.Sim and speaks its REST API (form-encoded, with a key) and its
control API (/_sim/...). Standard library only.

    sim = StripeSim(webhook_url=listener.url + "/hooks/stripe",
                    webhook_secret="whsec_test", seed=7, rate=0)
    c = sim.create_customer(email="ada@example.com", metadata={"k": "v"})
    sim.person_update(c["id"], {"name": "Ada"})   # a dashboard edit: event + webhook
    sim.events(type="customer.*")
"""

import hashlib
import hmac
import os
import re
import subprocess
import threading
import time
import urllib.parse

import harness

STRIPE = os.path.join(harness.REPO, "tests", "sims", "stripe.py")
API_KEY = "sk_test_concord_e2e_4242"


def encode_form(params, array_style="index"):
    """params (a dict) as Stripe's form encoding: nested dicts as
    key[sub]=v, lists as key[0]=v, key[1]=... (stripe-python's style) or,
    with array_style="brackets", key[]=v (curl's); None as "" (which
    unsets a field); booleans as true/false. Returns the body text."""
    pairs = []

    def walk(prefix, v):
        if isinstance(v, dict):
            for k, x in v.items():
                walk("%s[%s]" % (prefix, k), x)
        elif isinstance(v, (list, tuple)):
            for i, x in enumerate(v):
                walk("%s[%s]" % (prefix, i if array_style == "index" else ""), x)
        elif v is None:
            pairs.append((prefix, ""))
        elif isinstance(v, bool):
            pairs.append((prefix, "true" if v else "false"))
        else:
            pairs.append((prefix, str(v)))

    for k, v in params.items():
        walk(str(k), v)
    return urllib.parse.urlencode(pairs)


def parse_signature(header):
    """Stripe-Signature "t=...,v1=...,v1=...,v0=..." -> (t or None, [v1...])."""
    t, v1 = None, []
    for part in (header or "").split(","):
        k, _, v = part.strip().partition("=")
        if k == "t":
            t = int(v) if v.isdigit() else None
        elif k == "v1":
            v1.append(v)
    return t, v1


def verify_signature(header, body, secret, tolerance_s=300, now=None):
    """True when one v1 of the Stripe-Signature header is
    hex(HMAC-SHA256(secret, "t." + body)) and t is at most tolerance_s old,
    as stripe-python's Webhook.construct_event checks."""
    t, v1 = parse_signature(header)
    if t is None or not v1:
        return False
    if isinstance(body, str):
        body = body.encode()
    want = hmac.new(secret.encode(), b"%d." % t + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(want, s) for s in v1):
        return False
    return t >= (time.time() if now is None else now) - tolerance_s


class StripeSim(harness.Sim):
    """tests/sims/stripe.py in a subprocess. Keyword arguments become its
    flags (seed=7 -> --seed 7, webhook_url=..., rate=0 turns the rate
    limiter off); api_key is the key it requires and the helpers send."""

    def __init__(self, port=0, start=True, api_key=API_KEY, **flags):
        self.api_key = api_key
        flags["api_key"] = api_key
        super().__init__(port, start=start, **flags)

    def start(self):
        args = [harness.PYTHON, STRIPE, "--port", str(self.port)]
        for k, v in self.flags.items():
            if v is None or v is False:
                continue
            args.append("--" + k.replace("_", "-"))
            if v is not True:
                args.append(str(v))
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     preexec_fn=harness._die_with_parent)
        line = [None]

        def read():
            line[0] = self.proc.stdout.readline().decode()

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(10)
        m = re.match(r"ready (\d+)", line[0] or "")
        if not m:
            self.stop()
            raise AssertionError("stripe sim %s did not start (said %r)"
                                 % (" ".join(args[1:]), line[0]))
        self.port = int(m.group(1))
        return self

    # --- the REST API ---

    def api(self, method, path, params=None, key=True, idempotency_key=None, headers=None,
            timeout=10, array_style="index"):
        """One /v1 request: params form-encoded (the body of a POST, the
        query otherwise); key True sends the sim's key as Bearer, a string
        sends that, None sends no Authorization. Returns (status, body,
        headers with lower-case names)."""
        h = dict(headers or {})
        if key is True:
            key = self.api_key
        if key:
            h["Authorization"] = "Bearer " + key
        if idempotency_key is not None:
            h["Idempotency-Key"] = idempotency_key
        body = None
        if params:
            text = encode_form(params, array_style)
            if method == "POST":
                body = text
                h["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                path += ("&" if "?" in path else "?") + text
        return harness.http_request(self.port, method, path, body, h, timeout)

    def _ok(self, method, path, params=None, **kw):
        status, body, _ = self.api(method, path, params, **kw)
        if status != 200:
            raise AssertionError("%s %s answered %d: %r" % (method, path, status, body))
        return body

    def create_customer(self, idempotency_key=None, **fields):
        return self._ok("POST", "/v1/customers", fields, idempotency_key=idempotency_key)

    def update_customer(self, cid, idempotency_key=None, **fields):
        return self._ok("POST", "/v1/customers/" + cid, fields, idempotency_key=idempotency_key)

    def delete_customer(self, cid):
        return self._ok("DELETE", "/v1/customers/" + cid)

    def get(self, path, **params):
        """GET /v1/...: the answer (asserts 200)."""
        return self._ok("GET", path, params or None)

    def list_all(self, path, **params):
        """Every object of a list, newest first, walking starting_after."""
        out = []
        params.setdefault("limit", 100)
        for _ in range(10000):
            page = self.get(path, **params)
            out += page["data"]
            if not page["has_more"]:
                return out
            params["starting_after"] = page["data"][-1]["id"]
        raise AssertionError("list %s did not end" % path)

    def events(self, **params):
        """GET /v1/events with params (type=, types=[...], limit=, ...)."""
        return self.get("/v1/events", **params)

    # --- the control API ---

    def sim_events(self):
        """Every event kept, oldest first (not paged)."""
        return self._ctl("GET", "events")

    def objects(self, type=None):
        return self._ctl("GET", "objects" + ("?type=" + type if type else ""))

    def person_create(self, fields, wait=False):
        """A person creates a customer in the dashboard. Returns {"object",
        "events", "deliveries" (with wait)}."""
        return self._ctl("POST", "create", {"fields": fields, "wait": wait})

    def person_update(self, oid, fields, event=None, wait=False):
        arg = {"id": oid, "fields": fields, "wait": wait}
        if event is not None:
            arg["event"] = event
        return self._ctl("POST", "update", arg)

    def person_delete(self, cid, wait=False):
        return self._ctl("POST", "delete", {"id": cid, "wait": wait})

    def payment_intent(self, **arg):
        """POST /_sim/payment_intent (customer, amount, currency, status...)."""
        return self._ctl("POST", "payment_intent", arg)

    def invoice(self, **arg):
        return self._ctl("POST", "invoice", arg)

    def checkout_session(self, **arg):
        return self._ctl("POST", "checkout_session", arg)

    def refund(self, **arg):
        return self._ctl("POST", "refund", arg)

    def age_events(self, seconds, ids=None):
        arg = {"seconds": seconds}
        if ids is not None:
            arg["ids"] = list(ids)
        return self._ctl("POST", "age", arg)

    def webhooks(self, **knobs):
        """Delivery mischief (seed, drop, dup, reorder, delay_ms, hold_ms,
        paused, extra_secrets, v0); no arguments turns it off."""
        return self._ctl("POST", "webhooks", knobs)

    def deliveries(self, since=0):
        return self._ctl("GET", "deliveries?since=%d" % since)

    def resend(self, event_id):
        return self._ctl("POST", "resend", {"event_id": event_id})

    def send_raw(self, body, headers=None, url=None, sign=False, timestamp=None, secret=None):
        arg = {"body": body, "headers": headers or {}, "sign": sign}
        for k, v in (("url", url), ("timestamp", timestamp), ("secret", secret)):
            if v is not None:
                arg[k] = v
        return self._ctl("POST", "send_raw", arg)

    def rate_limit(self, rate, burst=None):
        arg = {"rate": rate}
        if burst is not None:
            arg["burst"] = burst
        return self._ctl("POST", "rate_limit", arg)

    def expire_idempotency(self, keys=None):
        return self._ctl("POST", "expire_idempotency", {} if keys is None else {"keys": keys})

    def wait_delivered(self, timeout=10):
        """Waits until no webhook delivery is queued, held or retrying."""
        harness.wait_until(lambda: self.stats()["webhooks"]["pending"] == 0, timeout,
                           "the stripe sim to have no webhook pending")
