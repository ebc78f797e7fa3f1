# SPDX-License-Identifier: MIT
"""tests/sims/hubspot.py for e2e tests: HubSpotSim starts and stops it like
harness.Sim and speaks its REST API (JSON, with the private-app token) and
its control API (/_sim/...). Standard library only.

    hook = harness.Listener()
    sim = HubSpotSim(webhook_url=hook.url + "/hooks/hubspot",
                     webhook_public_url="https://concord.example/hooks/hubspot",
                     rate_max=0, search_rate=0)
    c = sim.create_contact(email="ada@example.com", firstname="Ada")
    sim.ui_update(c["id"], {"firstname": "Ada B."}, wait=True)  # a person edits: webhook
    assert not sim.invalid()  # no request broke the spec
    assert verify_v3(hook.got()[0], SECRET, "https://concord.example/hooks/hubspot")
"""

import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import threading
import time
import urllib.parse

import harness

HUBSPOT = os.path.join(harness.REPO, "tests", "sims", "hubspot.py")
TOKEN = "pat-na1-concord-e2e-7f3a"
SECRET = "concord-e2e-client-secret-9c1d"
BASE = "/crm/v3/objects/contacts"


def v3_signature(secret, method, uri, body, timestamp):
    """base64(HMAC-SHA256(secret, method + uri + body + timestamp))."""
    if isinstance(body, str):
        body = body.encode()
    msg = method.encode() + uri.encode() + body + str(timestamp).encode()
    return base64.b64encode(hmac.new(secret.encode(), msg, hashlib.sha256).digest()).decode()


def verify_v3(request, secret, uri, tolerance_s=300, now=None):
    """True when a webhook request (a harness.Listener entry: lower-case
    headers, body bytes) carries a valid X-HubSpot-Signature-v3 for uri
    and its X-HubSpot-Request-Timestamp (ms) is less than tolerance_s old,
    as hubspot-api-python's Signature.is_valid checks."""
    h = request["headers"]
    ts = h.get("x-hubspot-request-timestamp")
    sig = h.get("x-hubspot-signature-v3")
    if not ts or not sig or not re.match(r"^\d+$", ts):
        return False
    want = v3_signature(secret, request.get("method", "POST"), uri, request["body"], ts)
    if not hmac.compare_digest(want, sig):
        return False
    t = time.time() if now is None else now
    return t - int(ts) / 1000.0 < tolerance_s


def events_of(request):
    """The event array a webhook request carried."""
    return json.loads(request["body"])


class HubSpotSim(harness.Sim):
    """tests/sims/hubspot.py in a subprocess. Keyword arguments become its
    flags (rate_max=0 -> --rate-max 0, webhook_url=..., strict_spec=True);
    token is the private-app token it requires and the helpers send,
    client_secret the key of its webhook signatures."""

    def __init__(self, port=0, start=True, token=TOKEN, client_secret=SECRET, **flags):
        self.token = token
        self.client_secret = client_secret
        flags["token"] = token
        flags["client_secret"] = client_secret
        super().__init__(port, start=start, **flags)

    def start(self):
        args = [harness.PYTHON, HUBSPOT, "--port", str(self.port)]
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
            raise AssertionError("hubspot sim %s did not start (said %r)"
                                 % (" ".join(args[1:]), line[0]))
        self.port = int(m.group(1))
        return self

    # --- the REST API ---

    def api(self, method, path, body=None, token=True, headers=None, timeout=10):
        """One request: body (a JSON-able object, str or bytes) as JSON;
        token True sends the sim's token as Bearer, a string sends that,
        None sends no Authorization. Returns (status, body, headers with
        lower-case names)."""
        h = dict(headers or {})
        if token is True:
            token = self.token
        if token:
            h["Authorization"] = "Bearer " + token
        if body is not None:
            h.setdefault("Content-Type", "application/json")
        return harness.http_request(self.port, method, path, body, h, timeout)

    def _ok(self, method, path, body=None, want=(200,)):
        status, answer, _ = self.api(method, path, body)
        if status not in want:
            raise AssertionError("%s %s answered %d: %r" % (method, path, status, answer))
        return answer

    def create_contact(self, **props):
        return self._ok("POST", BASE, {"properties": props}, (201,))

    def get_contact(self, cid, properties=None, id_property=None, archived=False):
        q = {}
        if properties is not None:
            q["properties"] = ",".join(properties)
        if id_property:
            q["idProperty"] = id_property
        if archived:
            q["archived"] = "true"
        path = BASE + "/" + urllib.parse.quote(cid, safe="")
        return self._ok("GET", path + ("?" + urllib.parse.urlencode(q) if q else ""))

    def update_contact(self, cid, id_property=None, **props):
        path = BASE + "/" + urllib.parse.quote(cid, safe="")
        if id_property:
            path += "?idProperty=" + id_property
        return self._ok("PATCH", path, {"properties": props})

    def archive_contact(self, cid):
        return self._ok("DELETE", BASE + "/" + cid, want=(204,))

    def list_page(self, limit=10, after=None, properties=None, archived=False):
        q = [("limit", str(limit))]
        if after is not None:
            q.append(("after", after))
        if properties is not None:
            q.append(("properties", ",".join(properties)))
        if archived:
            q.append(("archived", "true"))
        return self._ok("GET", BASE + "?" + urllib.parse.urlencode(q))

    def search(self, body):
        """POST .../search (asserts 200)."""
        return self._ok("POST", BASE + "/search", body)

    def search_all(self, filter_groups=None, sorts=None, properties=None, limit=200):
        """Every result of a search, walking `after` (raises at the
        10,000-result window as HubSpot does)."""
        body = {"filterGroups": filter_groups or [], "sorts": sorts or [],
                "properties": properties or ["email", "lastmodifieddate"], "limit": limit,
                "after": "0"}
        out = []
        for _ in range(1000):
            page = self.search(body)
            out += page["results"]
            nxt = page.get("paging", {}).get("next")
            if not nxt:
                return out
            body["after"] = nxt["after"]
        raise AssertionError("search did not end")

    # --- the control API ---

    def contacts(self, archived=False):
        """{id: contact with every property set} (archived ones too with
        archived=True)."""
        return self._ctl("GET", "contacts" + ("?archived=1" if archived else ""))

    def invalid(self):
        """Logged requests that broke the spec or were answered 400
        VALIDATION_ERROR; [] when concord behaved."""
        return self._ctl("GET", "invalid")

    def sim_events(self):
        """Every webhook event made, oldest first, each with its "fate"."""
        return self._ctl("GET", "events")

    def deliveries(self, since=0):
        return self._ctl("GET", "deliveries?since=%d" % since)

    def ui_create(self, properties, wait=False):
        """A person creates a contact in HubSpot: {"contact", "events",
        "deliveries" (with wait)}."""
        return self._ctl("POST", "ui_create", {"properties": properties, "wait": wait})

    def ui_update(self, cid, properties, wait=False, lastmodifieddate=None):
        arg = {"id": cid, "properties": properties, "wait": wait}
        if lastmodifieddate is not None:
            arg["lastmodifieddate"] = lastmodifieddate
        return self._ctl("POST", "ui_update", arg)

    def ui_delete(self, cid, wait=False):
        return self._ctl("POST", "ui_delete", {"id": cid, "wait": wait})

    def seed(self, count=0, properties=None, contacts=None, createdate=None,
             lastmodifieddate=None):
        """Creates contacts quietly; returns their ids."""
        arg = {"count": count, "properties": properties or {}, "contacts": contacts or []}
        if createdate is not None:
            arg["createdate"] = createdate
        if lastmodifieddate is not None:
            arg["lastmodifieddate"] = lastmodifieddate
        return self._ctl("POST", "seed", arg)["ids"]

    def webhooks(self, **knobs):
        """Webhook target and mischief: url, public_url, secret, paused,
        enabled, batch_max, batch_ms, seed, drop, dup, reorder, delay_ms,
        hold_ms, stale, stale_s, bad_signature, mischief=False."""
        return self._ctl("POST", "webhooks", knobs)

    def rate_limit(self, **kw):
        """max, interval_ms, daily, search_per_s, used_today."""
        return self._ctl("POST", "rate_limit", kw)

    def search_lag(self, ms):
        return self._ctl("POST", "search_lag", {"ms": ms})

    def resend(self, event_ids):
        return self._ctl("POST", "resend", {"event_ids": list(event_ids)})

    def send_raw(self, body, headers=None, url=None, sign=False, timestamp=None, secret=None,
                 public_url=None):
        arg = {"body": body, "headers": headers or {}, "sign": sign}
        for k, v in (("url", url), ("timestamp", timestamp), ("secret", secret),
                     ("public_url", public_url)):
            if v is not None:
                arg[k] = v
        return self._ctl("POST", "send_raw", arg)

    def wait_delivered(self, timeout=10):
        """Waits until no webhook event is queued, held or retrying."""
        harness.wait_until(lambda: self.stats()["webhooks"]["pending"] == 0, timeout,
                           "the hubspot sim to have no webhook pending")
