#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A HubSpot portal on 127.0.0.1: the CRM v3 contacts API as concord's
HubSpot connector sees it, with fault injection.

One process simulates one portal: contacts (create, read by id or email,
update, archive, list, batch, search with its filters, sorts, 10,000-result
window and index lag), private-app bearer auth, every request checked
against HubSpot's published OpenAPI spec (python3-jsonschema, $refs
inlined) and logged as invalid when it breaks it, HubSpot's error bodies,
the rolling, daily and search rate limits with their X-HubSpot-RateLimit-*
headers, batched webhook deliveries signed with v3 signatures (retries and
seeded mischief), and the fault actions of simbase.py. The control API lives
under /_sim/; it is never logged, never faulted and needs no token.

tests/sims/README.md ("hubspot.py") lists every option and endpoint;
/work/shared/apis/EXTERNAL-APIS.md section 6 is the reference. Where the
reference is silent the code says "guess:" and what it assumes.

Standard library plus python3-jsonschema. Prints "ready PORT" on stdout once
it listens.
"""

import argparse
import base64
import collections
import copy
import datetime
import hashlib
import heapq
import hmac
import http.client
import http.server
import json
import os
import random
import re
import sys
import threading
import time
import urllib.parse
import uuid

sys.dont_write_bytecode = True  # leave no __pycache__ beside the sims
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import simbase  # noqa: E402  (Fault, Server and the handler plumbing)

try:
    import jsonschema
except ImportError:  # reported in main(): validation is part of the contract
    jsonschema = None

BASE = "/crm/v3/objects/contacts"
SPEC_NAME = "hubspot-contacts-v3.json"
SPEC_PLACES = (
    os.path.join(HERE, "specs", SPEC_NAME),
    os.path.join(HERE, "..", "..", "..", "shared", "apis", "specs", SPEC_NAME),
    os.path.join("/work", "shared", "apis", "specs", SPEC_NAME),
)
SEARCH_WINDOW = 10000  # a search query answers at most this many results (§6.4)
SEARCH_MAX_LIMIT = 200
LIST_MAX_LIMIT = 100
BATCH_MAX = 100
MAX_GROUPS = 6  # the spec: "Up to 6 groups of filters"
MAX_FILTERS_PER_GROUP = 6  # guess: HubSpot's search guide (6 per group, 18 in all)
MAX_FILTERS = 18
MAX_QUERY = 3000

SYSTEM_PROPS = ("createdate", "hs_object_id", "lastmodifieddate")
READ_ONLY = frozenset(SYSTEM_PROPS)  # guess: createdate too (imports can set it)
DATE_PROPS = frozenset(("createdate", "lastmodifieddate"))
NUMBER_PROPS = frozenset(("hs_object_id",))
# Returned by GET and list when no `properties` are asked for; search adds
# the system ones (HubSpot's search guide).
DEFAULT_PROPS = ("email", "firstname", "lastname")
SEARCH_DEFAULT_PROPS = ("createdate", "email", "firstname", "hs_object_id",
                        "lastmodifieddate", "lastname")
# Searched by `query` (guess: HubSpot's default searchable contact properties).
QUERY_PROPS = ("email", "firstname", "lastname", "phone", "company", "website")
# Standard contact properties the portal knows; --properties adds custom ones.
STANDARD_PROPS = frozenset((
    "email", "firstname", "lastname", "phone", "mobilephone", "fax", "company",
    "website", "jobtitle", "industry", "salutation", "address", "city", "state", "zip",
    "country", "lifecyclestage", "hs_lead_status", "hubspot_owner_id", "date_of_birth",
    "message", "annualrevenue", "numemployees", "hs_language", "hs_timezone",
) + SYSTEM_PROPS)
EVENT_TYPES = ("contact.creation", "contact.propertyChange", "contact.deletion",
               "contact.privacyDeletion")
NO_RETRY = (400, 401, 403, 404, 405)  # §6.5: webhook answers HubSpot does not retry
RANDOM_KINDS = {"500", "502", "503", "504", "408", "429", "reset_before", "lost", "slow",
                "slow_answer"}
JSON_TYPE = "application/json;charset=utf-8"
USER_AGENT = "HubSpot Connect 2.0 (http://dev.hubspot.com/) - WebhooksExecutorDaemon"


def now_ms():
    return int(time.time() * 1000)


def mono():
    return time.monotonic()


def iso(ms):
    """Epoch ms -> "2024-05-01T12:00:00.123Z", HubSpot's date-time form."""
    d = datetime.datetime.fromtimestamp(ms / 1000.0, tz=datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)


def parse_time_ms(text):
    """A filter or control value as epoch ms: digits are ms, else ISO 8601
    (a date alone is midnight UTC). None when it is neither."""
    if not isinstance(text, str):
        return None
    t = text.strip()
    if re.match(r"^-?\d+$", t):
        return int(t)
    try:
        if re.match(r"^\d{4}-\d{2}-\d{2}$", t):
            d = datetime.datetime.strptime(t, "%Y-%m-%d").replace(
                tzinfo=datetime.timezone.utc)
        else:
            d = datetime.datetime.fromisoformat(t.replace("Z", "+00:00"))
            if d.tzinfo is None:
                d = d.replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    return int(round(d.timestamp() * 1000))


def v3_signature(secret, method, uri, body, timestamp):
    """base64(HMAC-SHA256(client secret, method + uri + body + timestamp)),
    as hubspot-api-python's Signature.get_signature computes it (§6.5)."""
    msg = method.encode() + uri.encode() + body + str(timestamp).encode()
    return base64.b64encode(hmac.new(secret.encode(), msg, hashlib.sha256).digest()).decode()


def v1_signature(secret, body):
    """hex(SHA256(client secret + body)): the legacy X-HubSpot-Signature."""
    return hashlib.sha256(secret.encode() + body).hexdigest()


def dumps(obj):
    """HubSpot's answers are compact JSON."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def error_body(category, message, corr, sub=None, context=None, errors=None, links=None):
    """{"status": "error", "message", "correlationId", "category", ...}: the
    spec's Error schema (category, correlationId and message required)."""
    b = {"status": "error", "message": message, "correlationId": corr, "category": category}
    if sub:
        b["subCategory"] = sub
    if context:
        b["context"] = context
    if errors:
        b["errors"] = errors
    if links:
        b["links"] = links
    return b


def rate_body(policy, corr):
    """The 429 body of §6.6 (no category: HubSpot's rate-limit answers carry
    errorType and policyName instead)."""
    msg = {"DAILY": "You have reached your daily limit.",
           "SECONDLY": "You have reached your secondly limit.",
           # guess: the name HubSpot gives the 10-second rolling window.
           "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit."}[policy]
    return {"status": "error", "message": msg, "errorType": "RATE_LIMIT",
            "correlationId": corr, "policyName": policy}


class HubSpotError(Exception):
    """An error answer. body None: HubSpot's error shape is built with the
    request's correlation id; EMPTY: no body at all."""

    EMPTY = object()

    def __init__(self, status, category, message, sub=None, context=None, errors=None,
                 body=None, headers=None):
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.sub = sub
        self.context = context
        self.errors = errors
        self.body = body
        self.headers = dict(headers or {})

    def render(self, corr):
        if self.body is HubSpotError.EMPTY:
            return None
        if self.body is not None:
            return self.body
        return error_body(self.category, self.message, corr, self.sub, self.context,
                          self.errors)


def validation(message, errors=None, context=None):
    return HubSpotError(400, "VALIDATION_ERROR", message, errors=errors, context=context)


def property_errors(problems):
    """400 "Property values were not valid: [...]": problems are (name,
    error code, message) triples, as HubSpot lists them."""
    items = [{"isValid": False, "message": m, "error": code, "name": name,
              "localizedErrorMessage": m} for name, code, m in problems]
    return validation("Property values were not valid: " + json.dumps(items),
                      errors=[{"message": m, "code": code, "in": name,
                               "context": {"propertyName": [name]}}
                              for name, code, m in problems])


def not_found(cid):
    """404 for a contact that is not there. guess: HubSpot answers a numeric
    id it does not hold with an empty body, and a non-numeric one (an email
    sent without idProperty) with this body."""
    if re.match(r"^\d+$", cid):
        return HubSpotError(404, "OBJECT_NOT_FOUND", "", body=HubSpotError.EMPTY)
    return HubSpotError(404, "OBJECT_NOT_FOUND",
                        "Object not found.  objectId are usually numeric.",
                        context={"id": [cid]})


# --- the published spec ------------------------------------------------------

JAVA_TYPES = {"string": "java.lang.String", "integer": "int", "boolean": "boolean",
              "array": "java.util.List", "number": "double"}


def json_kind(v):
    if v is None:
        return "Null"
    if isinstance(v, bool):
        return "Boolean"
    if isinstance(v, (int, float)):
        return "Number"
    if isinstance(v, str):
        return "String"
    if isinstance(v, list):
        return "Array"
    return "Object"


def json_path(parts):
    out = ""
    for p in parts:
        out += "[%d]" % p if isinstance(p, int) else ("." if out else "") + str(p)
    return out or "(body)"


class Spec:
    """The contacts v3 OpenAPI spec: its operations (method, path template,
    query parameters, body schema) and a jsonschema validator per body
    schema with every $ref inlined.

    Errata (unless strict): the published spec marks fields required that
    HubSpot's own guides leave out, and types `sorts` as strings where the
    guides send objects. Each erratum below names the guide that shows it."""

    ERRATA = (
        ("SimplePublicObjectInputForCreate", "required", ["properties"],
         "associations is optional: the contacts guide creates with properties only"),
        ("SimplePublicObjectBatchInputForCreate", "required", ["properties"],
         "associations is optional in batch/create too"),
        ("BatchReadInputSimplePublicObjectId", "required", ["inputs", "properties"],
         "propertiesWithHistory is optional: the batch read example leaves it out"),
        ("PublicObjectSearchRequest", "required", [],
         "the search guide: an empty object {} is a valid search"),
    )
    SORT_OBJECT = {"type": "object", "required": ["propertyName"],
                   "properties": {"propertyName": {"type": "string"},
                                  "direction": {"type": "string",
                                                "enum": ["ASCENDING", "DESCENDING"]}}}

    def __init__(self, path, strict):
        with open(path) as f:
            self.doc = json.load(f)
        self.path = path
        self.schemas = copy.deepcopy(self.doc["components"]["schemas"])
        self.errata = []
        if not strict:
            for name, key, value, why in self.ERRATA:
                self.schemas[name][key] = value
                self.errata.append("%s.%s: %s" % (name, key, why))
            sorts = self.schemas["PublicObjectSearchRequest"]["properties"]["sorts"]
            sorts["items"] = {"anyOf": [{"type": "string"}, self.SORT_OBJECT]}
            self.errata.append("PublicObjectSearchRequest.sorts: items may be "
                               "{propertyName, direction} objects, as the search guide sends")
        self.ops = []
        self.validators = {}
        for tpath, item in self.doc["paths"].items():
            segs = []
            for seg in tpath.strip("/").split("/"):
                m = re.match(r"^\{(\w+)\}$", seg)
                segs.append("(?P<%s>[^/]+)" % m.group(1) if m else re.escape(seg))
            rx = re.compile("^/" + "/".join(segs) + "$")
            for method, op in item.items():
                if method not in ("get", "post", "patch", "put", "delete"):
                    continue
                body = None
                rb = op.get("requestBody")
                if rb:
                    ref = rb["content"]["application/json"]["schema"]["$ref"]
                    body = ref.rsplit("/", 1)[-1]
                    if body not in self.validators:
                        schema = self.inline({"$ref": ref}, ())
                        self.validators[body] = jsonschema.Draft4Validator(schema)
                self.ops.append({"method": method.upper(), "path": tpath, "rx": rx,
                                 "id": op.get("operationId"), "body": body,
                                 "body_required": bool(rb and rb.get("required", True)),
                                 "params": {p["name"]: p for p in op.get("parameters", [])
                                            if p.get("in") == "query"}})

    def inline(self, node, seen):
        """node with every {"$ref": "#/components/schemas/X"} replaced by
        X (its name kept as "x-name" for messages); a cycle accepts anything."""
        if isinstance(node, dict):
            if "$ref" in node:
                name = node["$ref"].rsplit("/", 1)[-1]
                if name in seen:
                    return {}
                out = self.inline(self.schemas[name], seen + (name,))
                out["x-name"] = name
                return out
            return {k: self.inline(v, seen) for k, v in node.items() if k != "example"}
        if isinstance(node, list):
            return [self.inline(v, seen) for v in node]
        return node

    def find(self, method, path):
        """(op, path parameters) of the request; (None, "405") when the path
        exists with other methods; (None, None) when it does not exist."""
        other = False
        for op in self.ops:
            m = op["rx"].match(path)
            if m:
                if op["method"] == method:
                    return op, {k: urllib.parse.unquote(v) for k, v in m.groupdict().items()}
                other = True
        return None, "405" if other else None

    def check_query(self, op, query):
        """(type errors, unknown parameter names) of the query (a dict of
        lists). HubSpot ignores parameters it does not know; the log still
        marks them."""
        errors, unknown = [], []
        for name, vals in query.items():
            p = op["params"].get(name)
            if p is None:
                unknown.append(name)
                continue
            t = p.get("schema", {}).get("type")
            for v in vals:
                if t == "integer" and not re.match(r"^-?\d+$", v):
                    errors.append("query parameter %s: %r is not an integer" % (name, v))
                elif t == "boolean" and v not in ("true", "false"):
                    errors.append("query parameter %s: %r is not true or false" % (name, v))
        return errors, unknown

    def check_body(self, op, body):
        """The messages (HubSpot's wording where known) of every way body
        breaks the operation's schema, each with its JSON path."""
        v = self.validators.get(op["body"])
        if v is None:
            return []
        out = []
        for e in sorted(v.iter_errors(body), key=lambda e: list(map(str, e.absolute_path))):
            where = json_path(list(e.absolute_path))
            name = e.schema.get("x-name") if isinstance(e.schema, dict) else None
            if e.validator == "required":
                missing = [r for r in e.validator_value
                           if isinstance(e.instance, dict) and r not in e.instance]
                msg = "Cannot build %s, some of required attributes are not set %s" % (
                    name or "object", "[" + ", ".join(missing) + "]")
            elif e.validator == "type":
                want = e.validator_value if isinstance(e.validator_value, str) else "object"
                jt = name if want == "object" and name else JAVA_TYPES.get(want, want)
                msg = "Cannot deserialize value of type `%s` from %s value" % (
                    jt, json_kind(e.instance))
            elif e.validator == "enum":
                msg = ("Cannot deserialize value of type `%s` from %s %s: not one of the "
                       "values accepted for Enum class: [%s]" % (
                           where.rsplit(".", 1)[-1], json_kind(e.instance),
                           json.dumps(e.instance), ", ".join(e.validator_value)))
            else:
                msg = e.message
            out.append({"message": msg, "in": where})
        return out


# --- rate limits ---------------------------------------------------------------


class Limiter:
    """§6.6: a rolling window of `max` requests per `interval_ms` shared by
    every authenticated request, a daily cap (reset at midnight UTC, or by
    the control API), and the search endpoint's own per-second limit. A
    limit of 0 is off. Refused requests do not count (guess)."""

    def __init__(self, opts):
        self.set(opts.rate_max, opts.rate_interval_ms, opts.rate_daily, opts.search_rate)

    def set(self, max_, interval_ms, daily, search):
        for v in (max_, interval_ms, daily, search):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError("rate limits are integers >= 0")
        if interval_ms <= 0:
            raise ValueError("interval_ms must be > 0")
        self.max, self.interval_ms, self.daily, self.search = max_, interval_ms, daily, search
        self.hits = collections.deque()
        self.search_hits = collections.deque()
        self.day_used = 0
        self.day = datetime.datetime.now(datetime.timezone.utc).date()

    def take(self, is_search):
        """(policy name or None, the X-HubSpot-RateLimit-* headers after it)."""
        now = mono()
        while self.hits and self.hits[0] <= now - self.interval_ms / 1000.0:
            self.hits.popleft()
        while self.search_hits and self.search_hits[0] <= now - 1.0:
            self.search_hits.popleft()
        today = datetime.datetime.now(datetime.timezone.utc).date()
        if today != self.day:
            self.day, self.day_used = today, 0
        policy = None
        if self.daily and self.day_used >= self.daily:
            policy = "DAILY"
        elif self.max and len(self.hits) >= self.max:
            policy = "TEN_SECONDLY_ROLLING"
        elif is_search and self.search and len(self.search_hits) >= self.search:
            policy = "SECONDLY"
        if policy is None:
            self.hits.append(now)
            self.day_used += 1
            if is_search:
                self.search_hits.append(now)
        h = {}
        if self.daily:
            h["X-HubSpot-RateLimit-Daily"] = str(self.daily)
            h["X-HubSpot-RateLimit-Daily-Remaining"] = str(max(0, self.daily - self.day_used))
        if self.max:
            h["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(self.interval_ms)
            h["X-HubSpot-RateLimit-Max"] = str(self.max)
            h["X-HubSpot-RateLimit-Remaining"] = str(max(0, self.max - len(self.hits)))
        if is_search and self.search:
            # guess: the per-second pair §6.6 mentions "on some endpoints".
            h["X-HubSpot-RateLimit-Secondly"] = str(self.search)
            h["X-HubSpot-RateLimit-Secondly-Remaining"] = str(
                max(0, self.search - len(self.search_hits)))
        return policy, h

    def view(self):
        return {"max": self.max, "interval_ms": self.interval_ms, "daily": self.daily,
                "search_per_s": self.search, "used_today": self.day_used}


# --- webhook deliveries --------------------------------------------------------


def post_raw(url, body, headers, timeout):
    """POSTs body to url; (status, answer bytes, headers with lower-case
    names). Raises OSError or http.client.HTTPException."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        path = (u.path or "/") + ("?" + u.query if u.query else "")
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, data, {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


class Deliverer:
    """Sends events to the webhook URL from one background thread, as
    HubSpot does (§6.5): events that happen within --webhook-batch-ms of
    the first one waiting go together in one JSON array of at most
    --webhook-batch-max; each POST is signed with a v3 signature over the
    *public* URL (and the legacy v1 one). A failed attempt is retried
    after --webhook-backoff-ms, doubled each time (a 429's Retry-After
    when it is longer), up to --webhook-attempts; 400, 401, 403, 404 and
    405 are not retried. A retry carries the same events with
    attemptNumber one higher, hence a new body, timestamp and signature.

    POST /_sim/webhooks adds seeded mischief per batch (drop, dup, delay,
    reorder, stale timestamp, bad signature), pauses sending (events wait
    and go later) or disables the subscription (events are lost, as when a
    HubSpot app's subscriptions are paused). Its lock is taken under the
    state lock, never the other way."""

    KNOBS = ("drop", "dup", "reorder", "stale", "bad_signature")

    def __init__(self, opts):
        self.opts = opts
        self.cv = threading.Condition()
        self.gen = 0
        self.url = opts.webhook_url
        self.public_url = opts.webhook_public_url or opts.webhook_url
        self.secret = opts.client_secret
        self.batch_max = opts.webhook_batch_max
        self.batch_ms = opts.webhook_batch_ms
        self.reset()
        threading.Thread(target=self.run, daemon=True).start()

    def reset(self):
        with self.cv:
            self.gen += 1  # attempts under way for an older generation are forgotten
            self.queue = []  # (monotonic time queued, event) not batched yet
            self.heap = []  # (due, n, batch)
            self.n = 0
            self.held = []  # [deadline, batch] held back (reorder)
            self.inflight = 0  # events of the batch being sent now
            self.rng = None
            self.drop = self.dup = self.reorder = self.stale = self.bad_signature = 0.0
            self.delay_ms = 0.0
            self.hold_ms = 1000.0
            self.stale_s = 600
            self.paused = False
            self.enabled = True
            self.log = []
            self.outcome = {}  # eventId -> pending|delivered|failed|rejected|dropped|discarded
            self.done_first = set()  # eventIds whose first attempt (or fate) happened
            self.batches = 0
            self.stats = {"attempts": 0, "delivered": 0, "failed_attempts": 0, "rejected": 0,
                          "gave_up": 0, "dropped": 0, "discarded": 0, "dups": 0,
                          "reordered": 0, "stale": 0, "bad_signatures": 0,
                          "events_delivered": 0}
            self.cv.notify_all()

    def configure(self, arg):
        with self.cv:
            for k in ("url", "public_url", "secret"):
                if k in arg:
                    v = arg[k]
                    if v is not None and not isinstance(v, str):
                        raise ValueError("%s must be a string" % k)
                    setattr(self, k, v)
            if "url" in arg and "public_url" not in arg:
                self.public_url = arg["url"]
            for k, lo in (("batch_max", 1), ("batch_ms", 0)):
                if k in arg:
                    v = arg[k]
                    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < lo:
                        raise ValueError("%s must be a number >= %d" % (k, lo))
                    setattr(self, k, int(v) if k == "batch_max" else float(v))
            if "paused" in arg:
                self.paused = bool(arg["paused"])
            if "enabled" in arg:
                self.enabled = bool(arg["enabled"])
            knobs = self.KNOBS + ("delay_ms", "hold_ms", "stale_s", "seed")
            if any(k in arg for k in knobs) or arg.get("mischief") is False:
                for k in self.KNOBS:
                    v = float(arg.get(k, 0))
                    if not 0 <= v <= 1:
                        raise ValueError("%s must be within 0..1" % k)
                    setattr(self, k, v)
                self.delay_ms = float(arg.get("delay_ms", 0))
                self.hold_ms = float(arg.get("hold_ms", 1000))
                self.stale_s = int(arg.get("stale_s", 600))
                if self.delay_ms < 0 or self.hold_ms < 0 or self.stale_s < 0:
                    raise ValueError("delay_ms, hold_ms and stale_s must be >= 0")
                on = any(getattr(self, k) for k in self.KNOBS) or self.delay_ms
                self.rng = random.Random(arg.get("seed", 0)) if on else None
            self.cv.notify_all()
            return self.view()

    def view(self):
        return {"url": self.url, "public_url": self.public_url, "paused": self.paused,
                "enabled": self.enabled, "batch_max": self.batch_max,
                "batch_ms": self.batch_ms, "drop": self.drop, "dup": self.dup,
                "reorder": self.reorder, "stale": self.stale,
                "bad_signature": self.bad_signature, "delay_ms": self.delay_ms,
                "hold_ms": self.hold_ms, "stale_s": self.stale_s}

    def enqueue(self, events, force=False):
        """Queues events (dicts without attemptNumber) for delivery. force:
        a resend, sent at once in one batch whatever the mischief."""
        if not events:
            return
        with self.cv:
            ids = [e["eventId"] for e in events]
            if not self.url or (not self.enabled and not force):
                for i in ids:
                    self.outcome[i] = "discarded"
                    self.done_first.add(i)
                self.stats["discarded"] += len(ids)
                self.cv.notify_all()
                return
            for i in ids:
                if self.outcome.get(i) != "delivered":
                    self.outcome[i] = "pending"
            if force:
                self._push(mono(), self._batch(events))
            else:
                t = mono()
                self.queue.extend((t, e) for e in events)
            self.cv.notify_all()

    def _batch(self, events):
        self.batches += 1
        return {"batch": self.batches, "events": events, "attempt": 0, "copy": 0,
                "gen": self.gen, "stale": False, "bad_signature": False}

    def _push(self, due, item):
        self.n += 1
        heapq.heappush(self.heap, (due, self.n, item))

    def _form(self, now):
        """Cuts due batches off the queue (called under cv): a batch is due
        when batch_max events wait or the oldest waited batch_ms."""
        while self.queue and not self.paused and (
                len(self.queue) >= self.batch_max
                or now - self.queue[0][0] >= self.batch_ms / 1000.0):
            take = [e for _, e in self.queue[:self.batch_max]]
            del self.queue[:self.batch_max]
            item = self._batch(take)
            if self.rng is None:
                self._push(now, item)
                continue
            # Seven draws a batch, whatever they decide: the same seed and
            # the same batches make the same plan.
            u = [self.rng.random() for _ in range(7)]
            if u[0] < self.drop:
                for e in take:
                    self.outcome[e["eventId"]] = "dropped"
                    self.done_first.add(e["eventId"])
                self.stats["dropped"] += 1
                self.log.append({"seq": len(self.log) + 1, "batch": item["batch"],
                                 "event_ids": [e["eventId"] for e in take], "attempt": 0,
                                 "copy": 0, "status": "dropped", "error": None,
                                 "timestamp": None, "time": time.time(), "ok": False})
                self.cv.notify_all()  # wait_first() may be waiting for them
                continue
            item["stale"] = u[5] < self.stale
            item["bad_signature"] = u[6] < self.bad_signature
            due = now + u[1] * self.delay_ms / 1000.0
            if u[4] < self.reorder:
                self.held.append([now + self.hold_ms / 1000.0, item])
                self.stats["reordered"] += 1
            else:
                self._push(due, item)
                for h in self.held:  # what was held back goes after this one
                    self._push(due, h[1])
                self.held = []
            if u[2] < self.dup:
                twin = dict(item, copy=1, stale=False, bad_signature=False)
                self._push(due + u[3] * max(self.delay_ms, 50.0) / 1000.0, twin)
                self.stats["dups"] += 1

    def run(self):
        while True:
            with self.cv:
                while True:
                    now = mono()
                    self._form(now)
                    for h in [h for h in self.held if h[0] <= now]:
                        self.held.remove(h)
                        self._push(now, h[1])
                    if not self.paused and self.heap and self.heap[0][0] <= now:
                        break
                    waits = [h[0] - now for h in self.held]
                    if not self.paused:
                        if self.heap:
                            waits.append(self.heap[0][0] - now)
                        if self.queue:
                            waits.append(self.queue[0][0] + self.batch_ms / 1000.0 - now)
                    self.cv.wait(max(0.001, min(waits)) if waits else None)
                _, _, item = heapq.heappop(self.heap)
                url, public_url, secret = self.url, self.public_url, self.secret or ""
                self.inflight = len(item["events"]) if url else 0
            if url:
                self.send(item, url, public_url, secret)

    def send(self, item, url, public_url, secret):
        item = dict(item, attempt=item["attempt"] + 1)
        first = item["attempt"] == 1
        events = [dict(e, attemptNumber=item["attempt"] - 1) for e in item["events"]]
        body = dumps(events)
        ts = now_ms()
        stale = first and item["stale"]
        bad = first and item["bad_signature"]
        if stale:
            ts -= self.stale_s * 1000
        sig = v3_signature(secret + ("x" if bad else ""), "POST", public_url, body, ts)
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                   "X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": str(ts),
                   "X-HubSpot-Signature": v1_signature(secret + ("x" if bad else ""), body),
                   "X-HubSpot-Signature-Version": "v1"}
        status, error, retry_after = None, None, None
        try:
            status, _, rh = post_raw(url, body, headers, self.opts.webhook_timeout_s)
            ra = rh.get("retry-after")
            if ra and re.match(r"^\d+$", ra.strip()):
                retry_after = int(ra.strip())
        except (OSError, http.client.HTTPException) as e:
            error = "%s: %s" % (type(e).__name__, e)
        ok = status is not None and 200 <= status < 300
        with self.cv:
            self.inflight = 0
            if item["gen"] != self.gen:
                return
            ids = [e["eventId"] for e in item["events"]]
            self.stats["attempts"] += 1
            self.stats["stale"] += int(stale)
            self.stats["bad_signatures"] += int(bad)
            self.log.append({"seq": len(self.log) + 1, "batch": item["batch"],
                             "event_ids": ids, "attempt": item["attempt"],
                             "copy": item["copy"], "status": status, "error": error,
                             "timestamp": ts, "time": time.time(), "ok": ok,
                             "stale": stale, "bad_signature": bad})
            self.done_first.update(ids)
            if ok:
                self.stats["delivered"] += 1
                self.stats["events_delivered"] += len(ids)
                for i in ids:
                    self.outcome[i] = "delivered"
            else:
                self.stats["failed_attempts"] += 1
                if status in NO_RETRY:
                    self.stats["rejected"] += 1
                    fate = "rejected"
                elif item["attempt"] < self.opts.webhook_attempts:
                    backoff = self.opts.webhook_backoff_ms * 2 ** (item["attempt"] - 1) / 1000.0
                    if status == 429 and retry_after is not None:
                        backoff = max(backoff, float(retry_after))
                    self._push(mono() + backoff, item)
                    fate = None
                else:
                    self.stats["gave_up"] += 1
                    fate = "failed"
                if fate:
                    for i in ids:
                        if self.outcome.get(i) != "delivered":
                            self.outcome[i] = fate
            self.cv.notify_all()

    def wait_first(self, ids, timeout):
        """Waits until each event in ids had its first attempt (or was
        dropped or discarded); returns the delivery log entries that carry
        any of them."""
        deadline = mono() + timeout
        with self.cv:
            while not all(i in self.done_first for i in ids):
                left = deadline - mono()
                if left <= 0:
                    break
                self.cv.wait(left)
            want = set(ids)
            return [dict(e) for e in self.log if want & set(e["event_ids"])]

    def snapshot(self, since=0):
        with self.cv:
            out = dict(self.stats)
            out["batches"] = self.batches
            out["pending"] = (len(self.queue) + self.inflight
                              + sum(len(b["events"]) for _, _, b in self.heap)
                              + sum(len(h[1]["events"]) for h in self.held))
            return out, [dict(e) for e in self.log if e["seq"] > since]

    def fate(self, event_id):
        with self.cv:
            return self.outcome.get(event_id)


# --- the portal ------------------------------------------------------------------


class State:
    """Everything the portal holds; every access goes through self.lock."""

    def __init__(self, opts, spec, deliverer):
        self.opts = opts
        self.spec = spec
        self.deliverer = deliverer
        self.lock = threading.Lock()
        self.known = None if opts.any_property else STANDARD_PROPS | set(opts.properties)
        self.reset()

    def reset(self):
        seed = self.opts.seed
        self.corr_rng = random.Random("corr:%s" % seed) if seed is not None else random.Random()
        self.event_rng = random.Random("evt:%s" % seed) if seed is not None else random.Random()
        self.contacts = {}  # id -> contact (archived ones too)
        self.by_email = {}  # lower-case email -> id of the live contact holding it
        self.next_id = self.opts.first_id
        self.versions = {}  # id -> [(monotonic time, snapshot)] the search index sees
        self.search_lag_ms = self.opts.search_lag_ms
        self.last_ms = 0
        self.events = []  # every event made, oldest first
        self.event_ids = set()
        self.subs = {}  # (type, property or None) -> subscriptionId
        self.log = []
        self.faults = []
        self.rng = None
        self.rate = 0.0
        self.kinds = []
        self.slow_ms = 1500
        self.random_retry_after = None
        self.limiter = Limiter(self.opts)
        self.stats = {"requests": 0, "status": {}, "faults": 0, "invalid": 0,
                      "unauthorized": 0, "rate_limited": {}, "creates": 0, "updates": 0,
                      "archives": 0, "reads": 0, "list_reads": 0, "searches": 0,
                      "conflicts": 0, "events": 0}

    # --- ids, time, correlation ---

    def new_correlation_id(self):
        with self.lock:
            return str(uuid.UUID(int=self.corr_rng.getrandbits(128), version=4))

    def stamp(self, forced=None):
        """A new modification time (ms): strictly increasing, so two writes
        in one millisecond still order; a forced value is used as is and
        later stamps stay above it."""
        if forced is not None:
            if isinstance(forced, bool) or not isinstance(forced, int):
                raise ValueError("times are integers (epoch ms)")
            self.last_ms = max(self.last_ms, forced)
            return forced
        t = max(now_ms(), self.last_ms + 1)
        self.last_ms = t
        return t

    # --- faults (as simbase.Faults.pick, HubSpot-shaped bodies) ---

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

    # --- properties ---

    def check_props(self, props, current=None):
        """Refuses (400) unknown, read-only and malformed property values
        before anything changes. current: the contact being updated."""
        problems = []
        for name, value in props.items():
            if self.known is not None and name not in self.known:
                problems.append((name, "PROPERTY_DOESNT_EXIST",
                                 'Property "%s" does not exist' % name))
            elif name in READ_ONLY:
                problems.append((name, "READ_ONLY_VALUE",
                                 "%s is a read only property; its value cannot be set."
                                 % name))
            elif name == "email" and value != "" and not re.match(
                    r"^[^@\s]+@[^@\s]+\.[^@\s.]+$", value):
                problems.append((name, "INVALID_EMAIL", "Email address %s is invalid" % value))
        if problems:
            raise property_errors(problems)
        email = props.get("email")
        if email:
            holder = self.by_email.get(email.lower())
            if holder is not None and (current is None or holder != current["id"]):
                self.stats["conflicts"] += 1
                raise HubSpotError(409, "CONFLICT",
                                   "Contact already exists. Existing ID: %s" % holder)

    @staticmethod
    def value(c, name):
        """A property of a contact (or a search snapshot) as HubSpot shows
        it: a string, or None when unset."""
        if name == "hs_object_id":
            return c["id"]
        if name == "createdate":
            return iso(c["created_ms"])
        if name == "lastmodifieddate":
            return iso(c["updated_ms"])
        return c["props"].get(name)

    def render(self, c, names=None, history=None):
        """The SimplePublicObject of c. names: the properties to show (None:
        every property set plus the system ones); asked-for properties that
        are unset show as null, unknown ones are left out (guess, as HubSpot
        does). The system properties are always there."""
        if names is None:
            shown = set(c["props"]) | set(SYSTEM_PROPS)
        else:
            shown = {n for n in names if self.known is None or n in self.known}
            shown |= set(SYSTEM_PROPS)
        out = {"id": c["id"],
               "properties": {n: self.value(c, n) for n in sorted(shown)},
               "createdAt": iso(c["created_ms"]), "updatedAt": iso(c["updated_ms"]),
               "archived": c["archived"]}
        if c["archived"]:
            out["archivedAt"] = iso(c["archived_ms"])
        if history:
            out["propertiesWithHistory"] = {
                n: [dict(h) for h in c["history"].get(n, [])] for n in history}
        return out

    # --- the index behind search ---

    def index(self, c):
        """Records c's state as the search index will see it once the lag
        has passed; keeps only what a search may still need."""
        now = mono()
        snap = {"id": c["id"], "props": dict(c["props"]), "created_ms": c["created_ms"],
                "updated_ms": c["updated_ms"], "archived": c["archived"]}
        vers = self.versions.setdefault(c["id"], [])
        vers.append((now, snap))
        horizon = now - self.search_lag_ms / 1000.0
        while len(vers) > 1 and vers[1][0] <= horizon:
            vers.pop(0)

    def indexed(self):
        """The live contacts a search sees now: each as it was
        search_lag_ms ago; archived ones are gone (§6.4)."""
        cutoff = mono() - self.search_lag_ms / 1000.0
        out = []
        for vers in self.versions.values():
            snap = None
            for t, s in reversed(vers):
                if t <= cutoff:
                    snap = s
                    break
            if snap is not None and not snap["archived"]:
                out.append(snap)
        return out

    # --- writes and their events ---

    def source(self, ui):
        """(changeSource, sourceId) of a change: a person in HubSpot's UI or
        concord's private app (guess: INTEGRATION with the app id)."""
        if ui:
            return "CRM_UI", "userId:%d" % self.opts.ui_user_id
        return "INTEGRATION", str(self.opts.app_id)

    def set_props(self, c, props, at_ms, src):
        """Applies props to c; returns the names whose value changed."""
        changed = []
        for name, v in props.items():
            if name == "email" and v:
                v = v.lower()  # HubSpot keeps emails in lower case
            if c["props"].get(name) == v:
                continue
            if name == "email":
                old = c["props"].get("email")
                if old and self.by_email.get(old) == c["id"]:
                    del self.by_email[old]
                if v:
                    self.by_email[v] = c["id"]
            c["props"][name] = v
            h = {"value": v, "timestamp": iso(at_ms), "sourceType": src[0],
                 "sourceId": src[1]}
            if src[0] == "CRM_UI":
                h["updatedByUserId"] = self.opts.ui_user_id
            c["history"].setdefault(name, []).insert(0, h)
            changed.append(name)
        return changed

    def create(self, props, ui=False, created_ms=None, updated_ms=None, quiet=False):
        """A new contact (props checked by the caller). quiet: no events, no
        stats (the control API's seeding)."""
        while str(self.next_id) in self.contacts:
            self.next_id += 1
        cid = str(self.next_id)
        self.next_id += 1
        t = self.stamp(created_ms)
        c = {"id": cid, "props": {}, "created_ms": t, "updated_ms": t, "archived": False,
             "archived_ms": None, "history": {}}
        if updated_ms is not None:
            c["updated_ms"] = self.stamp(updated_ms)
        src = self.source(ui)
        changed = self.set_props(c, props, t, src)
        self.contacts[cid] = c
        self.index(c)
        if not quiet:
            self.stats["creates"] += 1
            self.emit(c, "contact.creation", None, src, t)
            if self.opts.creation_property_events:
                for n in changed:
                    self.emit(c, "contact.propertyChange", n, src, t)
        return c

    def update(self, c, props, ui=False, at_ms=None):
        """Applies props to a live contact; a change bumps lastmodifieddate
        and emits one propertyChange event per changed property. Setting a
        value it already has changes nothing (guess)."""
        t = self.stamp(at_ms)
        src = self.source(ui)
        changed = self.set_props(c, props, t, src)
        if changed:
            c["updated_ms"] = t
            self.index(c)
            self.stats["updates"] += 1
            for n in changed:
                self.emit(c, "contact.propertyChange", n, src, t)
        return changed

    def archive(self, c, ui=False):
        if c["archived"]:
            return
        t = self.stamp()
        c["archived"] = True
        c["archived_ms"] = t
        email = c["props"].get("email")
        if email and self.by_email.get(email) == c["id"]:
            del self.by_email[email]
        self.index(c)
        self.stats["archives"] += 1
        self.emit(c, "contact.deletion", None, self.source(ui), t)

    def purge(self, c):
        """GDPR delete: the contact is gone for good."""
        self.archive(c)
        del self.contacts[c["id"]]
        self.versions.pop(c["id"], None)
        self.emit(c, "contact.privacyDeletion", None, self.source(False), self.stamp())

    def subscription_id(self, etype, prop):
        key = (etype, prop)
        if key not in self.subs:
            self.subs[key] = self.opts.first_subscription_id + len(self.subs)
        return self.subs[key]

    def subscribed(self, etype, prop):
        if etype not in self.opts.webhook_events:
            return False
        props = self.opts.webhook_properties
        return etype != "contact.propertyChange" or "*" in props or prop in props

    def emit(self, c, etype, prop, src, at_ms):
        """Makes one webhook event of a change (§6.5 fields) and hands it
        to the deliverer when the app subscribes to it."""
        if not self.subscribed(etype, prop):
            return
        while True:
            eid = self.event_rng.randrange(10 ** 9, 10 ** 10)
            if eid not in self.event_ids:
                break
        self.event_ids.add(eid)
        e = {"eventId": eid, "subscriptionId": self.subscription_id(etype, prop),
             "portalId": self.opts.portal_id, "appId": self.opts.app_id,
             "occurredAt": at_ms, "subscriptionType": etype, "objectId": int(c["id"]),
             "changeSource": src[0], "sourceId": src[1]}
        if prop is not None:
            e["propertyName"] = prop
            e["propertyValue"] = c["props"].get(prop) or ""
        if etype == "contact.creation":
            e["changeFlag"] = "NEW"  # guess (§6.5 lists changeFlag as optional)
        elif etype == "contact.deletion":
            e["changeFlag"] = "DELETED"
        self.events.append(e)
        self.stats["events"] += 1
        self.deliverer.enqueue([e])

    # --- look-ups ---

    def find(self, key, id_property=None, archived=False):
        """The contact named by key (an id, or the value of id_property),
        live or (archived=True) archived only; None when there is none."""
        if id_property in (None, "", "hs_object_id"):
            c = self.contacts.get(key)
        elif id_property == "email":
            cid = self.by_email.get(key.lower())
            if archived:  # an archived contact no longer holds its email
                c = next((x for x in self.contacts.values() if x["archived"]
                          and (x["props"].get("email") or "") == key.lower()), None)
            else:
                c = self.contacts.get(cid) if cid else None
        else:
            raise validation("idProperty %s is not a unique property of contacts"
                             % id_property)
        if c is None or c["archived"] != archived:
            return None
        return c

    # --- the REST operations (called under lock) ---

    def api(self, op, pp, q, body):
        """Carries out one authenticated request that passed validation.
        Returns (status, answer or None, applied). Raises HubSpotError."""
        path, method = op["path"], op["method"]
        if path == BASE:
            if method == "GET":
                return 200, self.list_page(q), False
            props = body.get("properties") or {}
            self.check_props(props)
            return 201, self.render(self.create(props)), True
        if path == BASE + "/{contactId}":
            return self.one(method, pp["contactId"], q, body)
        if path == BASE + "/search":
            return 200, self.search(body), False
        if path.startswith(BASE + "/batch/"):
            return self.batch(path.rsplit("/", 1)[-1], q, body)
        if path == BASE + "/gdpr-delete":
            c = self.find(body["objectId"], body.get("idProperty"))
            if c is not None:
                self.purge(c)
            return 204, None, c is not None
        raise HubSpotError(501, "NOT_IMPLEMENTED", "%s %s is not simulated by hubspot.py"
                           % (method, path))

    def one(self, method, key, q, body):
        idp = q.get("idProperty", [None])[-1]
        if method == "GET":
            archived = q.get("archived", ["false"])[-1] == "true"
            c = self.find(key, idp, archived)
            if c is None:
                raise not_found(key)
            self.stats["reads"] += 1
            return 200, self.render(c, names_param(q, "properties", DEFAULT_PROPS),
                                    names_param(q, "propertiesWithHistory", ())), False
        if method == "PATCH":
            c = self.find(key, idp)
            if c is None:
                raise not_found(key)
            props = body.get("properties") or {}
            self.check_props(props, c)
            changed = self.update(c, props)
            return 200, self.render(c), bool(changed)
        # DELETE: archiving what is not there (or is archived) answers 204
        # too (guess: HubSpot's archive is idempotent).
        c = self.find(key)
        if c is not None:
            self.archive(c)
        return 204, None, c is not None

    def list_page(self, q):
        """GET /crm/v3/objects/contacts: by id, ascending; `after` is an
        opaque cursor (the id to start after, base64 and URL-encoded as in
        the spec's example "NTI1Cg%3D%3D"), so writes between pages shift
        nothing."""
        limit = int(q.get("limit", ["10"])[-1])
        if not 1 <= limit <= LIST_MAX_LIMIT:
            # guess: HubSpot refuses a list limit over 100 rather than capping it.
            raise validation("limit must be between 1 and %d, got %d" % (LIST_MAX_LIMIT, limit))
        archived = q.get("archived", ["false"])[-1] == "true"
        start = 0
        if q.get("after") and q["after"][-1]:
            start = decode_cursor(q["after"][-1])
        rows = sorted((c for c in self.contacts.values()
                       if c["archived"] == archived and int(c["id"]) > start),
                      key=lambda c: int(c["id"]))
        page = rows[:limit]
        names = names_param(q, "properties", DEFAULT_PROPS)
        hist = names_param(q, "propertiesWithHistory", ())
        out = {"results": [self.render(c, names, hist) for c in page]}
        if len(rows) > limit:
            cur = encode_cursor(page[-1]["id"])
            out["paging"] = {"next": {"after": cur, "link": "https://api.hubapi.com%s?after=%s"
                                      % (BASE, cur)}}
        self.stats["list_reads"] += 1
        return out

    def batch(self, verb, q, body):
        inputs = body.get("inputs") or []
        if len(inputs) > BATCH_MAX:
            raise validation("Too many inputs: %d; a batch takes at most %d"
                             % (len(inputs), BATCH_MAX))
        now = iso(now_ms())
        done = {"status": "COMPLETE", "startedAt": now, "completedAt": now}
        if verb == "read":
            archived = q.get("archived", ["false"])[-1] == "true"
            idp = body.get("idProperty")
            names = body.get("properties") or list(DEFAULT_PROPS)
            hist = body.get("propertiesWithHistory") or ()
            results, missing = [], []
            for i in inputs:
                c = self.find(i["id"], idp, archived)
                if c is None:
                    missing.append(i["id"])
                else:
                    results.append(self.render(c, names, hist))
            self.stats["reads"] += len(results)
            out = dict(done, results=results)
            return self.with_errors(out, missing, "get"), out, False
        if verb == "archive":
            n = 0
            for i in inputs:
                c = self.find(i["id"])
                if c is not None:
                    self.archive(c)
                    n += 1
            return 204, None, n > 0
        if verb == "create":
            seen = {}
            for i in inputs:
                props = i.get("properties") or {}
                self.check_props(props)
                e = (props.get("email") or "").lower()
                if e and e in seen:
                    raise validation("Duplicate email %s in one batch" % e)
                seen[e] = True
            results = [self.render(self.create(i.get("properties") or {})) for i in inputs]
            return 201, dict(done, results=results), bool(results)
        if verb == "update":
            targets, missing = [], []
            for i in inputs:
                c = self.find(i["id"], i.get("idProperty"))
                if c is None:
                    missing.append(i["id"])
                    continue
                self.check_props(i.get("properties") or {}, c)
                targets.append((c, i.get("properties") or {}))
            results, applied = [], False
            for c, props in targets:
                applied = bool(self.update(c, props)) or applied
                results.append(self.render(c))
            out = dict(done, results=results)
            return self.with_errors(out, missing, "update"), out, applied
        # upsert: by idProperty=email, a missing contact is created with
        # that email; by id (no idProperty), a missing one is an error.
        plan, missing = [], []
        for i in inputs:
            props = dict(i.get("properties") or {})
            idp = i.get("idProperty")
            c = self.find(i["id"], idp)
            if c is None and idp == "email":
                props.setdefault("email", i["id"])
                self.check_props(props)
            elif c is None:
                missing.append(i["id"])
                continue
            else:
                self.check_props(props, c)
            plan.append((c, props))
        results, applied = [], False
        for c, props in plan:
            if c is None:
                c, new = self.create(props), True
                applied = True
            else:
                new = False
                applied = bool(self.update(c, props)) or applied
            results.append(dict(self.render(c), new=new))
        out = dict(done, results=results)
        return self.with_errors(out, missing, "update"), out, applied

    @staticmethod
    def with_errors(out, missing, verb):
        """200, or 207 with a StandardError naming the ids not found."""
        if not missing:
            return 200
        out["numErrors"] = 1
        out["errors"] = [{"status": "error", "category": "OBJECT_NOT_FOUND",
                          "message": "Could not %s some CONTACT objects, they may be deleted "
                                     "or not exist. Check that ids are valid." % verb,
                          "context": {"ids": list(missing)}, "errors": [], "links": {}}]
        return 207

    # --- search ---

    def search(self, body):
        """POST /crm/v3/objects/contacts/search (§6.4). Offset paging
        (`after` is the offset, as HubSpot's is): a page is cut from the
        results as they are at each request, so a contact modified between
        pages moves. At most 10,000 results per query: a page may end at
        the 10,000th, and `after` >= 10,000 answers 400."""
        self.stats["searches"] += 1
        limit = body.get("limit", 10)
        if not 1 <= limit <= SEARCH_MAX_LIMIT:
            raise validation("limit must be between 1 and %d, got %d"
                             % (SEARCH_MAX_LIMIT, limit))
        after = body.get("after")
        offset = 0
        if after not in (None, ""):
            if not re.match(r"^\d+$", after):
                raise validation("after must be a non-negative integer offset, got %r" % after)
            offset = int(after)
        if offset >= SEARCH_WINDOW:
            # guess at the wording: HubSpot answers 400 past 10,000 results.
            raise validation("Search results are limited to %d; you asked for results "
                             "after %d. Narrow the query (e.g. by lastmodifieddate) and "
                             "start again." % (SEARCH_WINDOW, offset),
                             context={"after": [after]})
        query = body.get("query")
        if query is not None and len(query) > MAX_QUERY:
            raise validation("query may be at most %d characters" % MAX_QUERY)
        groups = body.get("filterGroups") or []
        if len(groups) > MAX_GROUPS:
            raise validation("At most %d filterGroups are allowed, got %d"
                             % (MAX_GROUPS, len(groups)))
        nfilters = 0
        for g in groups:
            nfilters += len(g["filters"])
            if len(g["filters"]) > MAX_FILTERS_PER_GROUP:
                raise validation("At most %d filters are allowed in a filterGroup"
                                 % MAX_FILTERS_PER_GROUP)
        if nfilters > MAX_FILTERS:
            raise validation("At most %d filters are allowed in all" % MAX_FILTERS)
        preds = [[self.filter_pred(f) for f in g["filters"]] for g in groups]
        sorts = body.get("sorts") or []
        if len(sorts) > 1:
            raise validation("Only one sort is supported")
        key, reverse = self.sort_key(sorts[0]) if sorts else (None, False)
        rows = self.indexed()
        if preds:
            rows = [s for s in rows if any(all(p(s) for p in g) for g in preds)]
        if query:
            rows = [s for s in rows if query_match(query, s)]
        rows.sort(key=lambda s: int(s["id"]))  # ties: by id, ascending (guess)
        if key is not None:
            present = [s for s in rows if key(s) is not None]
            absent = [s for s in rows if key(s) is None]
            present.sort(key=key, reverse=reverse)
            rows = present + absent
        total = len(rows)
        page = rows[offset:min(offset + limit, SEARCH_WINDOW)]
        names = body.get("properties") or list(SEARCH_DEFAULT_PROPS)
        out = {"total": total, "results": [self.render(s, names) for s in page]}
        nxt = offset + len(page)
        if nxt < total and page:
            out["paging"] = {"next": {"after": str(nxt), "link": "?after=%d" % nxt}}
        return out

    def kind(self, name):
        if self.known is not None and name not in self.known:
            raise validation("Property %s does not exist on contacts" % name,
                             context={"propertyName": [name]})
        if name in DATE_PROPS:
            return "date"
        if name in NUMBER_PROPS:
            return "number"
        return "string"

    def sort_key(self, s):
        """A sorts item: {"propertyName", "direction"} (the guides) or a
        string as the spec types it: "name" ascending, "-name" descending
        (guess)."""
        if isinstance(s, str):
            name, desc = (s[1:], True) if s.startswith("-") else (s, False)
        else:
            name, desc = s["propertyName"], s.get("direction") == "DESCENDING"
        kind = self.kind(name)
        return (lambda snap: self.typed_value(snap, name, kind)), desc

    @staticmethod
    def typed_value(snap, name, kind):
        """A property of a search snapshot in the form filters and sorts
        compare (epoch ms, a number, or lower-case text); None when unset."""
        if name == "createdate":
            return snap["created_ms"]
        if name == "lastmodifieddate":
            return snap["updated_ms"]
        if name == "hs_object_id":
            return float(snap["id"])
        v = snap["props"].get(name)
        return None if v in (None, "") else typed(kind, v)

    def filter_pred(self, f):
        """A predicate on a search snapshot for one Filter. Strings compare
        case-insensitively; dates take epoch ms or ISO 8601 values; a
        contact without the property matches only NEQ, NOT_IN,
        NOT_HAS_PROPERTY and NOT_CONTAINS_TOKEN (guess)."""
        name, op = f["propertyName"], f["operator"]
        kind = self.kind(name)

        def need(key):
            v = f.get(key)
            if v is None:
                raise validation("Filter %s on %s needs %s" % (op, name, key))
            return v

        def conv(v):
            if kind == "date":
                t = parse_time_ms(v)
                if t is None:
                    raise validation("%r is not a valid date for %s: give epoch ms or "
                                     "ISO 8601" % (v, name))
                return t
            if kind == "number":
                try:
                    return float(v)
                except ValueError:
                    raise validation("%r is not a number for %s" % (v, name))
            return v.lower()

        def get(snap):
            return self.typed_value(snap, name, kind)

        if op in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
            want = op == "HAS_PROPERTY"
            return lambda s: (get(s) is not None) == want
        if op in ("IN", "NOT_IN"):
            vals = need("values")
            if not vals:
                raise validation("Filter %s on %s needs values" % (op, name))
            vals = [conv(v) for v in vals]
            if op == "IN":
                return lambda s: get(s) is not None and get(s) in vals
            return lambda s: get(s) is None or get(s) not in vals
        if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            tok = need("value").lower()
            hit = (lambda s: get(s) is not None and token_match(tok, str(self.value(s, name))))
            if op == "CONTAINS_TOKEN":
                return hit
            return lambda s: not hit(s)
        v = conv(need("value"))
        if op == "BETWEEN":
            hi = conv(need("highValue"))
            return lambda s: get(s) is not None and v <= get(s) <= hi
        cmp = {"EQ": lambda a: a == v, "NEQ": lambda a: a != v, "GT": lambda a: a > v,
               "GTE": lambda a: a >= v, "LT": lambda a: a < v, "LTE": lambda a: a <= v}[op]
        if op == "NEQ":
            return lambda s: get(s) is None or cmp(get(s))
        return lambda s: get(s) is not None and cmp(get(s))


def typed(kind, v):
    """A property value in the form filters and sorts compare."""
    if kind == "date":
        return parse_time_ms(v) if not isinstance(v, int) else v
    if kind == "number":
        try:
            return float(v)
        except ValueError:
            return None
    return v.lower()


def tokens(text):
    return [t for t in re.split(r"[\s@.,;:!?()\[\]{}\"'/\\_-]+", text.lower()) if t]


def token_match(tok, text):
    """CONTAINS_TOKEN: the value matches a token of the text, or the whole
    text; "*" is a wildcard (HubSpot's guide: "*@hubspot.com")."""
    text = text.lower()
    if "*" in tok:
        rx = re.compile("^" + ".*".join(re.escape(p) for p in tok.split("*")) + "$")
        return bool(rx.match(text)) or any(rx.match(t) for t in tokens(text))
    return tok == text or tok in tokens(text)


def query_match(query, snap):
    """`query`: every word of it is the start of a token of a default
    searchable property (guess at HubSpot's full-text matching)."""
    words = tokens(query)
    toks = []
    for n in QUERY_PROPS:
        v = snap["props"].get(n)
        if v:
            toks.append(v.lower())
            toks += tokens(v)
    return all(any(t.startswith(w) for t in toks) for w in words)


def names_param(q, name, default):
    """A list query parameter: repeated and/or comma-separated values."""
    if name not in q:
        return list(default)
    out = []
    for v in q[name]:
        out += [x.strip() for x in v.split(",") if x.strip()]
    return out


def encode_cursor(cid):
    return urllib.parse.quote(base64.b64encode(("%s\n" % cid).encode()).decode(), safe="")


def decode_cursor(text):
    """The id an `after` cursor names; it is accepted URL-encoded once,
    twice or not at all."""
    t = text
    for _ in range(3):
        if "%" not in t:
            break
        t = urllib.parse.unquote(t)
    try:
        return int(base64.b64decode(t + "=" * (-len(t) % 4)).decode().strip())
    except (ValueError, UnicodeDecodeError):
        raise validation("after %r is not a paging cursor of this list" % text)


# --- HTTP ------------------------------------------------------------------------


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = -1
    # simbase.py's plumbing: chunked/Content-Length bodies, RST, peer checks.
    read_body = simbase.Handler.read_body
    reset_connection = simbase.Handler.reset_connection
    peer_gone = simbase.Handler.peer_gone
    answer_end = simbase.Handler.answer_end

    def version_string(self):
        return "cloudflare"  # what api.hubapi.com answers in Server

    def handle_expect_100(self):
        ok = http.server.BaseHTTPRequestHandler.handle_expect_100(self)
        self.wfile.flush()
        return ok

    def log_message(self, fmt, *args):
        if self.server.opts.verbose:
            sys.stderr.write("hubspot-sim %d: %s\n" % (self.server.opts.port, fmt % args))

    def do_GET(self):
        split = urllib.parse.urlsplit(self.path)
        if split.path.startswith("/_sim/"):
            self.control(split)
        else:
            self.rest(split)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def send_answer(self, status, obj, headers=None):
        """obj: a JSON-able object, bytes, or None (no body)."""
        data = b"" if obj is None else obj if isinstance(obj, bytes) else dumps(obj)
        self.send_response(status)
        if data:
            self.send_header("Content-Type", JSON_TYPE)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    # --- the REST API ---

    def authorized(self):
        """None when the request carries the private-app token as Bearer,
        else the 401. guess at the wording; the category is HubSpot's."""
        h = self.headers.get("Authorization") or ""
        scheme, _, val = h.partition(" ")
        if scheme.lower() != "bearer" or not val.strip():
            return HubSpotError(401, "INVALID_AUTHENTICATION",
                                "Authentication credentials not found. This API supports "
                                "OAuth 2.0 authentication and you can find more details at "
                                "https://developers.hubspot.com/docs/methods/auth/"
                                "oauth-overview")
        if not hmac.compare_digest(val.strip().encode(), self.server.opts.token.encode()):
            return HubSpotError(401, "INVALID_AUTHENTICATION",
                                "Authentication credentials are invalid. The access token "
                                "provided is not valid for this portal.")
        return None

    def rest(self, split):
        st = self.server.state
        spec = self.server.spec
        method = self.command
        corr = st.new_correlation_id()
        with st.lock:
            st.stats["requests"] += 1
            entry = {"seq": len(st.log) + 1, "time": time.time(), "method": method,
                     "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                     "query": None, "body": None, "status": None, "applied": False,
                     "correlation_id": corr, "invalid": False, "errors": [],
                     "refused": None}
            st.log.append(entry)
            fault = st.pick_fault(method, split.path)
            if fault:
                st.stats["faults"] += 1
                entry["fault"] = fault
        hdrs = {"X-HubSpot-Correlation-Id": corr}

        def finish(status, applied=None):
            with st.lock:
                entry["status"] = status
                if applied is not None:
                    entry["applied"] = applied
                k = str(status)
                st.stats["status"][k] = st.stats["status"].get(k, 0) + 1

        def mark_invalid(messages):
            with st.lock:
                if not entry["invalid"]:
                    st.stats["invalid"] += 1
                entry["invalid"] = True
                entry["errors"] += messages

        if fault and fault.get("reset") == "before" and not fault.get("delay_ms"):
            finish("reset", False)
            self.reset_connection()
            return
        try:
            raw = self.read_body()
        except (ValueError, OSError):
            finish(400, False)
            self.close_connection = True
            self.send_answer(400, error_body("VALIDATION_ERROR", "Unreadable body.", corr), hdrs)
            return

        # Parse and check against the spec: always, so that the log marks
        # every request that breaks it, whatever it is answered.
        query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        body, body_error = None, None
        if raw:
            try:
                body = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as e:
                body_error = "Invalid input JSON: %s" % e
        with st.lock:
            entry["query"] = query
            entry["body"] = body if body_error is None else raw.decode("utf-8", "replace")
        op, pp = spec.find(method, split.path)
        answer_err = None  # the validation error the request will get
        if op is None:
            mark_invalid(["%s %s is not an operation of the spec" % (method, split.path)])
            if pp == "405":
                answer_err = HubSpotError(405, "METHOD_NOT_ALLOWED", "HTTP %s is not supported "
                                          "by this endpoint" % method)
            else:
                # guess at the wording of HubSpot's unknown-route 404.
                answer_err = HubSpotError(404, "OBJECT_NOT_FOUND", "Unable to route %s request "
                                          "to %s" % (method, split.path))
        else:
            qerrs, unknown = spec.check_query(op, query)
            if unknown:
                mark_invalid(["unknown query parameter %s (HubSpot ignores it)" % n
                              for n in unknown])
            if qerrs:
                mark_invalid(qerrs)
                answer_err = validation(qerrs[0], errors=[{"message": m, "in": "query"}
                                                          for m in qerrs])
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if raw and ctype != "application/json":
                mark_invalid(["Content-Type %r is not application/json" % ctype])
                answer_err = answer_err or HubSpotError(
                    415, "UNSUPPORTED_MEDIA_TYPE",
                    "Content type '%s' not supported" % ctype)
            elif body_error is not None:
                mark_invalid([body_error])
                answer_err = answer_err or validation(body_error)
            elif op["body"] and body is None and op["body_required"]:
                mark_invalid(["a request body is required"])
                answer_err = answer_err or validation("Invalid input JSON: No content to map "
                                                      "due to end-of-input")
            elif op["body"]:
                berrs = spec.check_body(op, body)
                if berrs:
                    mark_invalid(["%s (at %s)" % (e["message"], e["in"]) for e in berrs])
                    answer_err = answer_err or validation("Invalid input JSON: "
                                                          + berrs[0]["message"], errors=berrs)
            elif raw:
                mark_invalid(["this operation takes no body"])

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
            extra = dict(hdrs)
            if fault.get("retry_after") is not None:
                extra["Retry-After"] = str(fault["retry_after"])
            for k, v in (fault.get("headers") or {}).items():
                extra[k] = str(v)
            obj = fault["body"] if "body" in fault else fault_body(status, corr)
            if gone:
                finish("timeout", False)
                self.close_connection = True
                return
            finish(status, False)
            self.send_answer(status, obj, extra)
            return

        def refuse(err, note=None, extra=None):
            with st.lock:
                if note == "unauthorized":
                    st.stats["unauthorized"] += 1
                    entry["refused"] = note
                elif note:  # a rate-limit policy
                    rl = st.stats["rate_limited"]
                    rl[note] = rl.get(note, 0) + 1
                    entry["refused"] = "rate_limited:" + note
            if gone:
                finish("timeout", False)
                self.close_connection = True
                return
            finish(err.status, False)
            h = dict(hdrs)
            h.update(err.headers)
            h.update(extra or {})
            self.send_answer(err.status, err.render(corr), h)

        err = self.authorized()
        if err is not None:
            refuse(err, "unauthorized", {"WWW-Authenticate": 'Bearer realm="api.hubapi.com"'})
            return
        is_search = split.path == BASE + "/search"
        with st.lock:
            policy, rate_hdrs = st.limiter.take(is_search)
        hdrs.update(rate_hdrs)
        if policy is not None:
            refuse(HubSpotError(429, "RATE_LIMITS", "", body=rate_body(policy, corr)), policy)
            return
        if answer_err is not None:
            refuse(answer_err)
            return
        try:
            with st.lock:
                status, obj, applied = st.api(op, pp, query, body if body is not None else {})
        except HubSpotError as e:
            status, obj, applied = e.status, e.render(corr), False
            hdrs.update(e.headers)
            if e.category == "VALIDATION_ERROR":
                mark_invalid([e.message])
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
        except HubSpotError as e:
            status, obj = 400, {"error": "bad control request: %s" % e.message}
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            status, obj = 400, {"error": "bad control request: %s: %s" % (type(e).__name__, e)}
        self.send_answer(status, obj)

    def ctl_get_requests(self, arg, q):
        since = int(q.get("since", ["0"])[-1])
        st = self.server.state
        with st.lock:
            return 200, [copy.deepcopy(e) for e in st.log if e["seq"] > since]

    ctl_get_log = ctl_get_requests

    def ctl_get_invalid(self, arg, q):
        """The logged requests marked invalid."""
        st = self.server.state
        with st.lock:
            return 200, [copy.deepcopy(e) for e in st.log if e["invalid"]]

    def ctl_get_contacts(self, arg, q):
        """{id: contact with every property}; ?archived=1 lists archived ones too."""
        st = self.server.state
        both = q.get("archived", ["0"])[-1] in ("1", "true")
        with st.lock:
            return 200, {cid: st.render(c, None, list(c["history"]))
                         for cid, c in st.contacts.items() if both or not c["archived"]}

    ctl_get_records = ctl_get_contacts

    def ctl_get_events(self, arg, q):
        """Every event made, oldest first, with its delivery fate."""
        st = self.server.state
        with st.lock:
            evs = [dict(e) for e in st.events]
        for e in evs:
            e["fate"] = self.server.deliverer.fate(e["eventId"])
        return 200, evs

    def ctl_get_deliveries(self, arg, q):
        since = int(q.get("since", ["0"])[-1])
        return 200, self.server.deliverer.snapshot(since)[1]

    def ctl_get_stats(self, arg, q):
        st = self.server.state
        with st.lock:
            out = copy.deepcopy(st.stats)
            out["contacts"] = sum(1 for c in st.contacts.values() if not c["archived"])
            out["archived"] = sum(1 for c in st.contacts.values() if c["archived"])
            out["faults_queued"] = len(st.faults)
            out["rate_limit"] = st.limiter.view()
            out["search_lag_ms"] = st.search_lag_ms
        out["webhooks"] = self.server.deliverer.snapshot()[0]
        out["spec"] = {"path": self.server.spec.path, "errata": self.server.spec.errata}
        return 200, out

    def ctl_post_reset(self, arg, q):
        self.server.deliverer.reset()
        with self.server.state.lock:
            self.server.state.reset()
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
        """{"max", "interval_ms", "daily", "search_per_s", "used_today"}:
        the keys given change, the windows start empty."""
        st = self.server.state
        with st.lock:
            cur = st.limiter.view()
            st.limiter.set(arg.get("max", cur["max"]), arg.get("interval_ms", cur["interval_ms"]),
                           arg.get("daily", cur["daily"]),
                           arg.get("search_per_s", cur["search_per_s"]))
            if "used_today" in arg:
                st.limiter.day_used = int(arg["used_today"])
            return 200, st.limiter.view()

    def ctl_post_search_lag(self, arg, q):
        ms = arg.get("ms")
        if isinstance(ms, bool) or not isinstance(ms, (int, float)) or ms < 0:
            raise ValueError("ms must be a number >= 0")
        st = self.server.state
        with st.lock:
            st.search_lag_ms = float(ms)
            return 200, {"search_lag_ms": st.search_lag_ms}

    def ctl_post_webhooks(self, arg, q):
        """Where and how webhooks go: {"url", "public_url", "secret",
        "paused", "enabled", "batch_max", "batch_ms", "seed", "drop",
        "dup", "reorder", "delay_ms", "hold_ms", "stale", "stale_s",
        "bad_signature", "mischief": false}."""
        return 200, self.server.deliverer.configure(arg)

    def settle(self, arg, before, out):
        """Names the events a control change made; with "wait": true waits
        for their first delivery attempts and lists them as "deliveries"."""
        st = self.server.state
        with st.lock:
            ids = [e["eventId"] for e in st.events[before:]]
        out["events"] = ids
        if arg.get("wait"):
            out["deliveries"] = self.server.deliverer.wait_first(
                ids, float(arg.get("timeout_s", 10)))
        return 200, out

    def props_arg(self, arg):
        props = arg.get("properties") or {}
        if not isinstance(props, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in props.items()):
            raise ValueError("properties must be an object of strings")
        return props

    def ctl_post_ui_create(self, arg, q):
        """A person creates a contact in HubSpot's UI: {"properties"}."""
        props = self.props_arg(arg)
        st = self.server.state
        with st.lock:
            before = len(st.events)
            st.check_props(props)
            c = st.create(props, ui=True)
            out = {"contact": st.render(c)}
        return self.settle(arg, before, out)

    def ctl_post_ui_update(self, arg, q):
        """A person edits a contact in HubSpot's UI: {"id", "properties",
        "lastmodifieddate"?: ms to force}. Emits propertyChange events
        (changeSource CRM_UI)."""
        props = self.props_arg(arg)
        st = self.server.state
        with st.lock:
            before = len(st.events)
            c = st.find(str(arg["id"]))
            if c is None:
                return 404, {"error": "no live contact %s" % arg["id"]}
            st.check_props(props, c)
            changed = st.update(c, props, ui=True, at_ms=arg.get("lastmodifieddate"))
            out = {"contact": st.render(c), "changed": changed}
        return self.settle(arg, before, out)

    def ctl_post_ui_delete(self, arg, q):
        """A person deletes (archives) a contact in HubSpot's UI: {"id"}."""
        st = self.server.state
        with st.lock:
            before = len(st.events)
            c = st.find(str(arg["id"]))
            if c is None:
                return 404, {"error": "no live contact %s" % arg["id"]}
            st.archive(c, ui=True)
            out = {"contact": st.render(c)}
        return self.settle(arg, before, out)

    def ctl_post_seed(self, arg, q):
        """Creates contacts quietly (no events, no stats): {"contacts":
        [{"properties", "createdate"?, "lastmodifieddate"?}]} and/or
        {"count": N, "properties": {...}} where "{i}" in a value becomes
        0..N-1, "createdate"/"lastmodifieddate" (ms) apply to all."""
        specs = list(arg.get("contacts") or [])
        n = int(arg.get("count", 0))
        if n > 100000:
            raise ValueError("count must be <= 100000")
        tmpl = arg.get("properties") or {}
        for i in range(n):
            specs.append({"properties": {k: v.replace("{i}", str(i)) for k, v in tmpl.items()},
                          "createdate": arg.get("createdate"),
                          "lastmodifieddate": arg.get("lastmodifieddate")})
        st = self.server.state
        with st.lock:
            for s in specs:
                props = s.get("properties") or {}
                st.check_props(props)
            ids = []
            for s in specs:
                c = st.create(s.get("properties") or {}, created_ms=s.get("createdate"),
                              updated_ms=s.get("lastmodifieddate"), quiet=True)
                ids.append(c["id"])
        return 200, {"ids": ids}

    def ctl_post_resend(self, arg, q):
        """Delivers events again now, in one batch: {"event_ids": [...]}."""
        want = [int(i) for i in arg["event_ids"]]
        st = self.server.state
        with st.lock:
            evs = {e["eventId"]: dict(e) for e in st.events if e["eventId"] in want}
        missing = [i for i in want if i not in evs]
        if missing:
            return 404, {"error": "no events %s" % missing}
        self.server.deliverer.enqueue([evs[i] for i in want], force=True)
        return 200, {"queued": want}

    def ctl_post_send_raw(self, arg, q):
        """Sends anything to the webhook URL: {"body": text or JSON,
        "headers"?, "url"?, "sign"?: true (v3 over "public_url"? with
        "timestamp"? ms and "secret"?)}. Answers {"status", "body"} or
        {"error"}."""
        d = self.server.deliverer
        url = arg.get("url") or d.url
        if not url:
            raise ValueError("no webhook url and no url given")
        body = arg.get("body", "")
        if not isinstance(body, str):
            body = json.dumps(body, separators=(",", ":"))
        data = body.encode()
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if arg.get("sign"):
            ts = int(arg.get("timestamp", now_ms()))
            headers["X-HubSpot-Request-Timestamp"] = str(ts)
            headers["X-HubSpot-Signature-v3"] = v3_signature(
                arg.get("secret", d.secret or ""), "POST",
                arg.get("public_url") or d.public_url or url, data, ts)
        headers.update({str(k): str(v) for k, v in (arg.get("headers") or {}).items()})
        out = {"status": None, "body": None}
        try:
            status, answer, _ = post_raw(url, data, headers, self.server.opts.webhook_timeout_s)
            out["status"], out["body"] = status, simbase.decode_body(answer)
        except (OSError, http.client.HTTPException) as e:
            out["error"] = "%s: %s" % (type(e).__name__, e)
        return 200, out


def fault_body(status, corr):
    """The HubSpot-shaped body of an injected status without a body."""
    if status == 429:
        return rate_body("TEN_SECONDLY_ROLLING", corr)
    if status >= 500 or status == 408:
        return error_body("INTERNAL_ERROR", "internal error (injected %d)" % status, corr)
    return error_body("VALIDATION_ERROR", "Injected %d." % status, corr)


def find_spec(given):
    if given:
        return given
    env = os.environ.get("CONCORD_HUBSPOT_SPEC")
    if env:
        return env
    for p in SPEC_PLACES:
        if os.path.exists(p):
            return os.path.abspath(p)
    return None


def csv(text):
    return [s.strip() for s in (text or "").split(",") if s.strip()]


def parse_args(argv):
    p = argparse.ArgumentParser(description="a HubSpot portal for concord tests")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--token", default="pat-na1-concord-sim",
                   help="the private-app token every request must carry as Bearer")
    p.add_argument("--seed", type=int, default=None,
                   help="seeds correlation ids and event ids (replayable runs)")
    p.add_argument("--portal-id", type=int, default=62515)
    p.add_argument("--app-id", type=int, default=1160452)
    p.add_argument("--ui-user-id", type=int, default=9876543,
                   help="the user behind /_sim/ui_* changes (sourceId userId:N)")
    p.add_argument("--first-id", type=int, default=1001, help="the first contact id")
    p.add_argument("--properties", default="",
                   help="comma-separated custom contact properties the portal has")
    p.add_argument("--any-property", action="store_true",
                   help="accept every property name (no PROPERTY_DOESNT_EXIST)")
    p.add_argument("--spec", default=None, help="the contacts v3 OpenAPI JSON")
    p.add_argument("--strict-spec", action="store_true",
                   help="validate against the spec as published, without the errata")
    p.add_argument("--search-lag-ms", type=float, default=0.0,
                   help="search sees each write this long after it happened")
    p.add_argument("--rate-max", type=int, default=100,
                   help="requests per --rate-interval-ms (rolling); 0 turns it off")
    p.add_argument("--rate-interval-ms", type=int, default=10000)
    p.add_argument("--rate-daily", type=int, default=250000, help="0 turns it off")
    p.add_argument("--search-rate", type=int, default=5,
                   help="search requests per second; 0 turns it off")
    p.add_argument("--webhook-url", default=None, help="where events are POSTed")
    p.add_argument("--webhook-public-url", default=None,
                   help="the URL the app registered (signed in v3); default --webhook-url")
    p.add_argument("--client-secret", default="concord-sim-client-secret",
                   help="the app's client secret: the HMAC key of the signatures")
    p.add_argument("--webhook-events", default="contact.creation,contact.propertyChange,"
                   "contact.deletion", help="comma-separated subscription types")
    p.add_argument("--webhook-properties", default="*",
                   help="properties with a propertyChange subscription (* for all)")
    p.add_argument("--no-creation-property-events", dest="creation_property_events",
                   action="store_false",
                   help="a creation sends contact.creation only, no propertyChange events")
    p.add_argument("--webhook-batch-max", type=int, default=100)
    p.add_argument("--webhook-batch-ms", type=float, default=100.0,
                   help="events within this long of the first waiting share a POST")
    p.add_argument("--webhook-attempts", type=int, default=10)
    p.add_argument("--webhook-backoff-ms", type=float, default=500.0,
                   help="the wait before the second attempt, doubled after each")
    p.add_argument("--webhook-timeout-s", type=float, default=5.0)
    p.add_argument("--verbose", action="store_true")
    opts = p.parse_args(argv)
    opts.properties = csv(opts.properties)
    opts.webhook_events = csv(opts.webhook_events)
    opts.webhook_properties = csv(opts.webhook_properties)
    opts.first_subscription_id = 2001
    bad = [e for e in opts.webhook_events if e not in EVENT_TYPES]
    if bad:
        p.error("unknown --webhook-events %s (known: %s)" % (bad, ", ".join(EVENT_TYPES)))
    if opts.webhook_attempts < 1 or opts.webhook_batch_max < 1:
        p.error("--webhook-attempts and --webhook-batch-max must be >= 1")
    if opts.rate_interval_ms <= 0:
        p.error("--rate-interval-ms must be > 0")
    opts.spec = find_spec(opts.spec)
    if jsonschema is None:
        p.error("python3-jsonschema is needed (apt-get install python3-jsonschema)")
    if not opts.spec or not os.path.exists(opts.spec):
        p.error("no %s: pass --spec or set CONCORD_HUBSPOT_SPEC (looked in %s)"
                % (SPEC_NAME, ", ".join(SPEC_PLACES)))
    return opts


def main(argv):
    opts = parse_args(argv)
    spec = Spec(opts.spec, opts.strict_spec)
    server = simbase.Server(("127.0.0.1", opts.port), Handler)
    opts.port = server.server_address[1]
    server.opts = opts
    server.spec = spec
    server.deliverer = Deliverer(opts)
    server.state = State(opts, spec, server.deliverer)
    sys.stdout.write("ready %d\n" % opts.port)
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
