#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""An Oblio.eu company on 127.0.0.1: the REST API under /api as concord's
Oblio connector sees it, with fault injection.

One process simulates one Oblio account (one login email and API secret)
with one company (one CIF): OAuth2 client-credentials tokens that expire,
documents (invoice, proforma, notice) numbered from their series with
create / get / list / cancel / restore / delete (only the last of a series)
/ collect, the idempotencyKey of a create, the client nomenclature (clients
are saved from the documents that name them), webhooks with Oblio's
request-id handshake (the receiver answers base64 of X-Oblio-Request-Id),
and the fault actions of simbase.py. Every body is checked against the
shapes of /work/shared/apis/EXTERNAL-APIS.md section 2 (there is no OpenAPI
for Oblio); a malformed request gets 400 and is marked "invalid" in the
request log.

The control API lives under /_sim/ (never logged, never faulted, no token).
tests/sims/README.md ("oblio.py") lists every option and endpoint. Where the
reference is silent the comments say what the sim assumes.

Prints "ready PORT" on stdout once it listens.
"""

import argparse
import base64
import copy
import datetime
import fnmatch
import heapq
import hmac
import http.client
import json
import os
import secrets
import sys
import threading
import time
import urllib.parse
import uuid

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import simbase  # noqa: E402

import jsonschema  # noqa: E402  (python3-jsonschema, for /usr/bin/python3)

DOC_TYPES = {"invoice": "Factura", "proforma": "Proforma", "notice": "Aviz"}
TYPE_CODE = {"invoice": 1, "proforma": 2, "notice": 3}
TOPIC_WORD = {"invoice": "Invoice", "proforma": "Proforma", "notice": "Notice"}
COLLECT_TYPES = ("Chitanta", "Bon fiscal", "Alta incasare numerar", "Ordin de plata",
                 "Mandat postal", "Card", "CEC", "Bilet ordin", "Alta incasare banca")
PRODUCT_TYPES = ("Marfa", "Materii prime", "Materiale consumabile", "Semifabricate",
                 "Produs finit", "Produs rezidual", "Produse agricole", "Animale si pasari",
                 "Ambalaje", "Obiecte de inventar", "Serviciu")
NOMENCLATURES = ("companies", "vat_rates", "products", "clients", "series", "languages",
                 "management")
CLIENT_KEYS = ("cif", "name", "rc", "code", "address", "state", "city", "country", "iban",
               "bank", "email", "phone", "contact", "vatPayer")
CLIENTS_PAGE = 250  # the nomenclature's page (reference section 2.2)
LIST_MAX = 100  # limitPerPage at most (reference section 2.2)
ORDER_BY = ("id", "issueDate", "number")

# --- request shapes (reference section 2.3, oblio-mcp's schema, the PHP
# README). The PHP client sends numbers as numbers or strings, nulls for
# options left out and [] for an empty "collect", so all of these pass. ---

TEXT = {"type": ["string", "number", "null"]}
NUMERIC = {"anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"},
                     {"type": "null"}]}
FLAG = {"enum": [0, 1, "0", "1", True, False, "", None]}
DATE = {"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "maxLength": 0},
                  {"type": "null"}]}
CLIENT = {"type": "object", "required": ["name"],
          "properties": dict({k: TEXT for k in CLIENT_KEYS},
                             name={"type": "string", "minLength": 1}, vatPayer=FLAG,
                             save=FLAG, autocomplete=FLAG)}
PRODUCT = {"type": "object", "required": ["name", "price", "measuringUnit"],
           "properties": {"name": {"type": "string", "minLength": 1}, "code": TEXT,
                          "description": TEXT, "price": NUMERIC, "measuringUnit": TEXT,
                          "measuringUnitTranslation": TEXT, "nameTranslation": TEXT,
                          "currency": TEXT, "exchangeRate": NUMERIC, "vatName": TEXT,
                          "vatPercentage": NUMERIC, "vatIncluded": FLAG, "quantity": NUMERIC,
                          "productType": {"enum": list(PRODUCT_TYPES) + ["", None]},
                          "management": TEXT, "save": FLAG}}
DISCOUNT = {"type": "object", "required": ["name", "discount"],
            "properties": {"name": {"type": "string"}, "discount": NUMERIC, "refItem": TEXT,
                           "discountType": {"enum": ["procentual", "valoric"]},
                           "discountAllAbove": FLAG}}
COLLECT = {"anyOf": [{"type": "array", "maxItems": 0},
                     {"type": "object", "required": ["type"],
                      "properties": {"type": {"enum": list(COLLECT_TYPES)},
                                     "seriesName": TEXT, "documentNumber": TEXT,
                                     "value": NUMERIC, "issueDate": DATE, "mentions": TEXT}},
                     {"type": "null"}]}
REFDOC = {"anyOf": [{"type": "array", "maxItems": 0},
                    {"type": "object", "required": ["type", "seriesName", "number"],
                     "properties": {"type": {"enum": ["Factura", "Proforma", "Aviz"]},
                                    "seriesName": {"type": "string"}, "number": NUMERIC,
                                    "refund": FLAG}},
                    {"type": "null"}]}
DOC = {"type": "object", "required": ["cif", "client", "seriesName", "products"],
       "properties": {
           "cif": {"type": "string", "minLength": 1}, "client": CLIENT,
           "issueDate": DATE, "dueDate": DATE, "deliveryDate": DATE, "collectDate": DATE,
           "seriesName": {"type": "string", "minLength": 1}, "number": NUMERIC,
           "disableAutoSeries": FLAG, "language": TEXT,
           "precision": {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 4},
                                   {"type": "string", "pattern": "^[0-4]$"}]},
           "currency": TEXT, "exchangeRate": NUMERIC,
           "products": {"type": "array", "minItems": 1,
                        "items": {"if": {"type": "object", "required": ["discount"]},
                                  "then": DISCOUNT, "else": PRODUCT}},
           "collect": COLLECT, "referenceDocument": REFDOC,
           "issuerName": TEXT, "issuerId": TEXT, "noticeNumber": TEXT, "internalNote": TEXT,
           "deputyName": TEXT, "deputyIdentityCard": TEXT, "deputyAuto": TEXT,
           "selesAgent": TEXT,  # sic: Oblio's spelling
           "mentions": TEXT, "workStation": TEXT, "useStock": FLAG, "sendEmail": FLAG,
           "spvExtern": FLAG, "contractNumber": TEXT, "receptionNotice": TEXT,
           "projectNumber": TEXT, "buyerIdentifier": TEXT, "clientAccountReference": TEXT,
           "value": NUMERIC, "idempotencyKey": {"type": ["string", "null"], "maxLength": 255}}}
DOC_REF = {"type": "object", "required": ["cif", "seriesName", "number"],
           "properties": {"cif": {"type": "string", "minLength": 1},
                          "seriesName": {"type": "string", "minLength": 1}, "number": NUMERIC}}
DELETE = copy.deepcopy(DOC_REF)
DELETE["properties"].update(deleteCollect=FLAG, idempotencyKey={"type": ["string", "null"]})
COLLECT_REQ = copy.deepcopy(DOC_REF)
COLLECT_REQ["required"] = ["cif", "seriesName", "number", "collect"]
COLLECT_REQ["properties"]["collect"] = COLLECT["anyOf"][1]
WEBHOOK = {"type": "object", "required": ["cif", "topic", "endpoint"],
           "properties": {"cif": {"type": "string", "minLength": 1},
                          "topic": {"type": "string", "minLength": 1},
                          "endpoint": {"type": "string", "pattern": "^https?://"}}}

FORMATS = jsonschema.FormatChecker(formats=())
FORMATS.checks("date")(simbase.is_date)


class OblioError(Exception):
    """An error answer {"status": N, "statusMessage": text}; invalid marks a
    malformed request."""

    def __init__(self, status, text, invalid=False):
        super().__init__(text)
        self.status = status
        self.text = text
        self.invalid = invalid


def bad(text):
    return OblioError(400, text, invalid=True)


def flag(v):
    return v in (1, "1", True)


def num(v, default=0.0):
    if v in (None, ""):
        return default
    return float(v)


def s4(x):
    return "%.4f" % float(x)


def sval(v):
    """A value as Oblio writes it: every scalar a string."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return ("%.4f" % v).rstrip("0").rstrip(".") if v != int(v) else str(int(v))
    return str(v)


class TokenBucket:
    """rate requests a second, burst held; rate 0: off."""

    def __init__(self, rate, burst):
        self.rate = float(rate)
        self.burst = float(burst or max(rate, 1))
        self.tokens = self.burst
        self.at = time.monotonic()

    def take(self):
        if self.rate <= 0:
            return True
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class Deliverer:
    """Sends webhook notifications from one thread: POST endpoint with
    X-Oblio-Request-Id; a delivery is confirmed when the answer is 200 and
    its body is base64 of that id (reference section 2.5). An unconfirmed
    one is tried again (same request id, --webhook-attempts times in all,
    the wait doubling from --webhook-backoff-ms); the retry policy is
    assumed, Oblio documents none."""

    def __init__(self, opts):
        self.opts = opts
        self.cv = threading.Condition()
        self.attempts = opts.webhook_attempts
        self.backoff_ms = opts.webhook_backoff_ms
        self.delay_ms = opts.webhook_delay_ms
        self.reset()
        threading.Thread(target=self.run, daemon=True).start()

    def reset(self):
        with self.cv:
            self.heap = []
            self.records = []
            self.seq = 0
            self.generation = getattr(self, "generation", 0) + 1
            self.busy = 0
            self.cv.notify_all()

    def enqueue(self, hook, topic, payload):
        with self.cv:
            self.seq += 1
            rec = {"seq": self.seq, "request_id": uuid.uuid4().hex, "webhook_id": hook["id"],
                   "url": hook["endpoint"], "topic": topic, "body": payload, "attempts": [],
                   "confirmed": False, "done": False}
            self.records.append(rec)
            due = time.monotonic() + self.delay_ms / 1000.0
            heapq.heappush(self.heap, (due, rec["seq"], self.generation, rec))
            self.cv.notify_all()
            return rec["seq"]

    def run(self):
        while True:
            with self.cv:
                while not self.heap or self.heap[0][0] > time.monotonic():
                    wait = self.heap[0][0] - time.monotonic() if self.heap else None
                    self.cv.wait(wait)
                _, _, gen, rec = heapq.heappop(self.heap)
                if gen != self.generation:
                    continue
                self.busy += 1
            try:
                body = json.dumps(rec["body"], ensure_ascii=False).encode()
                result = send(rec["url"], rec["request_id"], body, self.opts.webhook_timeout_s)
            finally:
                with self.cv:
                    self.busy -= 1
            with self.cv:
                if gen != self.generation:
                    continue
                rec["attempts"].append(result)
                rec["confirmed"] = result["confirmed"]
                n = len(rec["attempts"])
                if not result["confirmed"] and n < self.attempts:
                    due = time.monotonic() + self.backoff_ms * (2 ** (n - 1)) / 1000.0
                    heapq.heappush(self.heap, (due, rec["seq"], gen, rec))
                else:
                    rec["done"] = True
                self.cv.notify_all()

    def wait(self, seqs, timeout):
        """Waits until the deliveries seqs are done (confirmed, or out of
        attempts); returns their records."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                recs = [r for r in self.records if r["seq"] in seqs]
                if all(r["done"] for r in recs) or time.monotonic() >= deadline:
                    return copy.deepcopy(recs)
                self.cv.wait(max(0.0, min(0.1, deadline - time.monotonic())))

    def snapshot(self, since=0):
        with self.cv:
            recs = [copy.deepcopy(r) for r in self.records if r["seq"] > since]
            pending = sum(1 for r in self.records if not r["done"])
            return recs, {"sent": sum(len(r["attempts"]) for r in self.records),
                          "deliveries": len(self.records), "pending": pending,
                          "confirmed": sum(1 for r in self.records if r["confirmed"]),
                          "failed": sum(1 for r in self.records
                                        if r["done"] and not r["confirmed"])}


def send(url, request_id, body, timeout):
    """One POST of a notification; {"at", "status", "answer", "error",
    "confirmed", "expected"}."""
    expected = base64.b64encode(request_id.encode()).decode()
    out = {"at": time.time(), "status": None, "answer": None, "error": None,
           "confirmed": False, "expected": expected}
    u = urllib.parse.urlsplit(url)
    try:
        conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
        try:
            path = (u.path or "/") + ("?" + u.query if u.query else "")
            conn.request("POST", path, body=body, headers={
                "Content-Type": "application/json", "X-Oblio-Request-Id": request_id,
                "User-Agent": "Oblio-Webhook/1 (concord-sim)"})
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
    except (OSError, http.client.HTTPException) as e:
        out["error"] = "%s: %s" % (type(e).__name__, e)
        return out
    out["status"] = resp.status
    out["answer"] = data.decode("utf-8", "replace")[:2000]
    out["confirmed"] = resp.status == 200 and data.strip() == expected.encode()
    return out


def parse_series(text):
    """"invoice:FCT:1,proforma:PR:1,notice:AVZ:1" -> {(type, name): next}."""
    out = {}
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        bits = part.split(":")
        if len(bits) not in (2, 3) or bits[0] not in DOC_TYPES:
            raise ValueError("a series is TYPE:NAME[:NEXT], TYPE invoice, proforma or notice: %r"
                             % part)
        out[(bits[0], bits[1])] = int(bits[2]) if len(bits) == 3 else 1
    return out


def norm_cif(c):
    c = str(c or "").strip().upper().replace(" ", "")
    return c[2:] if c.startswith("RO") else c


class State(simbase.State):
    def reset(self):
        super().reset()
        opts = self.opts
        self.series = {k: {"type": k[0], "name": k[1], "start": 1, "next": v}
                       for k, v in parse_series(opts.series).items()}
        self.docs = {}  # id -> doc (live)
        self.deleted = []
        self.next_id = opts.first_id
        self.idem = {}  # (type, key) -> doc id
        self.clients = []
        self.next_client = 1000
        self.tokens = {}  # token -> {"issued_at", "expires_at", "revoked"}
        self.webhooks = {}  # id -> {"id", "cif", "topic", "endpoint", "verified"}
        self.next_webhook = 1
        self.token_inflight = 0
        self.bucket = TokenBucket(opts.rate, opts.burst)
        self.stats.update({"token_requests": 0, "tokens_issued": 0, "token_refused": 0,
                           "token_max_concurrent": 0, "expired_token_uses": 0,
                           "unknown_token_uses": 0, "idem_replayed": 0, "creates": 0,
                           "business_errors": 0, "rate_limited": 0, "list_reads": 0,
                           "handshakes": 0, "handshakes_failed": 0})

    def fmt(self, n):
        return str(n).zfill(self.opts.number_width)

    def find(self, dtype, series, number):
        """The live document, by its number as a string or an int (the PHP
        client declares it int; assumed to match "0005")."""
        try:
            n = int(str(number))
        except ValueError:
            return None
        for d in self.docs.values():
            if d["type"] == dtype and d["seriesName"] == series and d["n"] == n:
                return d
        return None

    def link(self, doc):
        return ("https://www.oblio.eu/utils/show_file/?ic=%d&id=%d&it=%d&preload=1"
                % (self.opts.company_id, doc["id"], TYPE_CODE[doc["type"]]))

    def client_view(self, c):
        return {k: sval(c.get(k)) for k in CLIENT_KEYS}

    def save_client(self, c):
        """Adds or updates the client in the nomenclature (matched by CIF,
        else by name). Returns its clientId."""
        cif = norm_cif(c.get("cif"))
        for cur in self.clients:
            if (cif and norm_cif(cur.get("cif")) == cif) or \
                    (not cif and cur.get("name") == c.get("name")):
                cur.update({k: c[k] for k in CLIENT_KEYS if k in c and c[k] is not None})
                return cur["clientId"]
        self.next_client += 1
        new = {k: c.get(k) for k in CLIENT_KEYS}
        new["clientId"] = self.next_client
        self.clients.append(new)
        return new["clientId"]

    def view(self, doc, products=True, collects=True):
        """A document as GET /api/docs and the list answer it: every scalar
        a string (reference section 2.3)."""
        b = doc["body"]
        client = {"clientId": sval(doc.get("clientId"))}
        client.update({k: sval((b.get("client") or {}).get(k)) for k in CLIENT_KEYS})
        out = {"id": str(doc["id"]), "draft": "0", "canceled": "1" if doc["canceled"] else "0",
               "collected": "1" if doc["collected"] else "0", "seriesName": doc["seriesName"],
               "number": doc["number"], "issueDate": doc["issueDate"],
               "dueDate": sval(b.get("dueDate")), "precision": str(doc["precision"]),
               "currency": doc["currency"], "exchangeRate": "%.6f" % num(b.get("exchangeRate")),
               "total": s4(doc["total"]), "issuerName": sval(b.get("issuerName")),
               "issuerId": sval(b.get("issuerId")), "noticeNumber": sval(b.get("noticeNumber")),
               "deputyName": sval(b.get("deputyName")),
               "deputyIdentityCard": sval(b.get("deputyIdentityCard")),
               "deputyAuto": sval(b.get("deputyAuto")), "mentions": sval(b.get("mentions")),
               "useStock": "1" if flag(b.get("useStock")) else "0",
               "type": DOC_TYPES[doc["type"]], "link": self.link(doc), "client": client}
        if doc["type"] == "invoice":
            out["einvoice"] = self.link(doc).replace("&preload=1", "&einvoice=1&api=1")
        if products:
            out["products"] = [{k: sval(v) for k, v in p.items()} for p in b.get("products", [])]
        if collects:
            out["collects"] = [{k: sval(v) for k, v in c.items()} for c in doc["collects"]]
        return out


def doc_total(lines, precision):
    """quantity x price (+ VAT when vatIncluded is 0); a discount row takes
    its value ("valoric") or percent ("procentual") of the line before it,
    or of every line above with discountAllAbove."""
    total = 0.0
    values = []
    for p in lines:
        if "discount" in p:
            base = sum(values) if flag(p.get("discountAllAbove")) else (values[-1] if values else 0)
            d = num(p.get("discount"))
            v = -abs(d) if p.get("discountType") == "valoric" else -base * d / 100.0
        else:
            v = num(p.get("price")) * num(p.get("quantity"), 1.0)
            if p.get("vatIncluded") is not None and not flag(p.get("vatIncluded")):
                v *= 1 + num(p.get("vatPercentage")) / 100.0
        values.append(v)
        total += v
    return round(total, int(precision))


class Handler(simbase.Handler):
    sim_name = "oblio-sim"

    def fault_answer(self, status):
        return {"status": status, "statusMessage": "Injected error %d" % status}, None

    def more_stats(self, out):
        st = self.server.state
        now = time.time()
        out["token_inflight"] = st.token_inflight
        out["tokens_valid"] = sum(1 for t in st.tokens.values()
                                  if not t["revoked"] and t["expires_at"] > now)
        counts = {t: 0 for t in DOC_TYPES}
        for d in st.docs.values():
            counts[d["type"]] += 1
        out["documents"] = counts
        out["clients"] = len(st.clients)
        out["webhooks_registered"] = len(st.webhooks)
        out["webhooks"] = self.server.deliverer.snapshot(10 ** 12)[1]

    def admit(self, entry, split):
        st = self.server.state
        if st.bucket.take():
            return None
        st.count("rate_limited")
        # Oblio publishes no limit; this refusal's shape is assumed.
        return 429, {"status": 429, "statusMessage": "Too Many Requests"}, {"Retry-After": "1"}

    # --- one request ----------------------------------------------------

    def handle_api(self, method, split, raw, entry):
        st = self.server.state
        self.emitted = []
        try:
            status, data, applied = self.route(method, split, raw, entry)
        except OblioError as e:
            if e.invalid:
                self.mark_invalid(entry, getattr(e, "details", None) or e.text)
            elif e.status != 401:
                with st.lock:
                    st.count("business_errors")
            with st.lock:
                entry["error"] = e.text
            headers = {"WWW-Authenticate": 'Bearer realm="oblio"'} if e.status == 401 else {}
            return e.status, {"status": e.status, "statusMessage": e.text}, headers, False
        if status == "raw":
            return 200, data, {}, applied
        self.deliver_emitted()
        return 200, {"status": 200, "statusMessage": "Success", "data": data}, {}, applied

    def route(self, method, split, raw, entry):
        parts = [p for p in split.path.split("/") if p]
        if not parts or parts[0] != "api":
            raise OblioError(404, "Not found")
        rest = parts[1:]
        if rest == ["authorize", "token"]:
            if method != "POST":
                raise OblioError(405, "Method not allowed")
            return "raw", self.token_request(raw, entry), False
        self.authorize(entry)
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(split.query,
                                                       keep_blank_values=True).items()}
        if len(rest) == 2 and rest[0] == "nomenclature" and method == "GET":
            return 200, self.nomenclature(rest[1], q, entry), False
        if rest and rest[0] == "docs" and len(rest) >= 2:
            dtype = rest[1]
            if dtype == "einvoice":
                raise OblioError(400, "e-Factura (SPV) is not simulated")
            if dtype not in DOC_TYPES:
                raise OblioError(400, "Tipul de document %s nu este suportat" % dtype)
            tail = rest[2:]
            if tail == [] and method == "POST":
                return 200, self.create(dtype, self.body(raw, entry, DOC), entry), True
            if tail == [] and method == "GET":
                return 200, self.get_doc(dtype, q), False
            if tail == [] and method == "DELETE":
                return 200, self.delete(dtype, raw, entry), True
            if tail == ["list"] and method == "GET":
                return 200, self.list_docs(dtype, q, entry), False
            if tail in (["cancel"], ["restore"]) and method == "PUT":
                return 200, self.cancel(dtype, raw, entry, tail[0] == "cancel"), True
            if tail == ["collect"] and method == "PUT" and dtype == "invoice":
                return 200, self.collect(raw, entry), True
        if rest and rest[0] == "webhooks":
            if len(rest) == 1 and method == "POST":
                return 200, self.webhook_create(raw, entry), True
            if len(rest) == 1 and method == "GET":
                return 200, self.webhook_list(q), False
            if len(rest) == 2 and method in ("GET", "DELETE"):
                return 200, self.webhook_one(rest[1], method == "DELETE"), method == "DELETE"
        raise OblioError(404, "Not found")

    # --- tokens ---------------------------------------------------------

    def token_request(self, raw, entry):
        st = self.server.state
        opts = self.server.opts
        with st.lock:
            st.count("token_requests")
            st.token_inflight += 1
            st.stats["token_max_concurrent"] = max(st.stats["token_max_concurrent"],
                                                   st.token_inflight)
        try:
            if opts.token_delay_ms:
                time.sleep(opts.token_delay_ms / 1000.0)
            ctype = (self.headers.get("Content-Type") or "").lower()
            text = raw.decode("utf-8", "replace") if raw else ""
            if "json" in ctype:
                try:
                    form = json.loads(text or "null")
                except ValueError:
                    form = None
                if not isinstance(form, dict):
                    raise bad("Invalid JSON body")
            else:
                form = {k: v[-1] for k, v in urllib.parse.parse_qs(text).items()}
            cid, secret = form.get("client_id"), form.get("client_secret")
            if not cid or not secret:
                raise bad("client_id and client_secret are required")
            if form.get("grant_type") not in (None, "", "client_credentials"):
                raise bad("Unsupported grant_type")
            if not (hmac.compare_digest(str(cid).encode(), opts.email.encode())
                    and hmac.compare_digest(str(secret).encode(), opts.secret.encode())):
                with st.lock:
                    st.count("token_refused")
                raise OblioError(401, "Invalid client credentials")
            now = int(time.time())
            token = secrets.token_hex(20)
            with st.lock:
                if opts.single_token:
                    for t in st.tokens.values():
                        t["revoked"] = True
                st.tokens[token] = {"issued_at": now, "expires_at": now + opts.token_ttl_s,
                                    "revoked": False}
                st.count("tokens_issued")
            rt = str(now) if opts.request_time_type == "string" else now
            return {"access_token": token, "expires_in": str(opts.token_ttl_s),
                    "token_type": "Bearer", "scope": None, "request_time": rt}
        finally:
            with st.lock:
                st.token_inflight -= 1

    def authorize(self, entry):
        st = self.server.state
        h = self.headers.get("Authorization") or ""
        scheme, _, token = h.partition(" ")
        token = token.strip()
        with st.lock:
            t = st.tokens.get(token) if scheme.lower() == "bearer" else None
            if t is None:
                st.count("unauthorized")
                if token:
                    st.count("unknown_token_uses")
                raise OblioError(401, "Invalid access token")
            if t["revoked"] or t["expires_at"] <= time.time():
                st.count("unauthorized")
                st.count("expired_token_uses")
                raise OblioError(401, "Access token expired")

    # --- bodies ---------------------------------------------------------

    def body(self, raw, entry, schema):
        obj, err = simbase.parse_json(raw)
        if err is not None or not isinstance(obj, dict):
            # Also a DELETE whose JSON body a client or proxy dropped
            # (reference section 2.7).
            raise bad("Invalid or missing JSON body: %s" % (err or "not an object"))
        errors = sorted(jsonschema.Draft7Validator(schema, format_checker=FORMATS)
                        .iter_errors(obj), key=lambda e: list(e.absolute_path))
        if errors:
            e = bad("%s: %s" % (".".join(str(p) for p in errors[0].absolute_path) or "(body)",
                                errors[0].message))
            e.details = ["%s: %s" % (".".join(str(p) for p in x.absolute_path) or "(body)",
                                     x.message) for x in errors]
            raise e
        self.mark_unknown(entry, simbase.unknown_fields(obj, self.plain(schema)))
        self.check_cif(obj.get("cif"))
        return obj

    @staticmethod
    def plain(schema):
        """schema with "if/then/else" items as "anyOf" (for unknown_fields)."""
        out = dict(schema)
        if "properties" in out:
            out["properties"] = {k: Handler.plain(v) for k, v in out["properties"].items()}
        it = out.get("items")
        if isinstance(it, dict) and "then" in it:
            out["items"] = {"anyOf": [it["then"], it["else"]]}
        if "anyOf" in out and "properties" not in out:
            objs = [x for x in out["anyOf"] if x.get("type") == "object"]
            if len(objs) == 1:
                return Handler.plain(objs[0])
        return out

    def check_cif(self, cif):
        if norm_cif(cif) != norm_cif(self.server.opts.cif):
            # Wording assumed; Oblio answers 400 with a message.
            raise OblioError(400, "Nu aveti acces la firma cu CIF-ul %s" % cif)

    # --- documents ------------------------------------------------------

    def create(self, dtype, b, entry, source="api"):
        """Issues a document from a validated body b; entry: the request's
        log entry (None for a person's document)."""
        st = self.server.state
        opts = self.server.opts
        key = b.get("idempotencyKey") or None
        with st.lock:
            if key and (dtype, key) in st.idem and st.idem[(dtype, key)] in st.docs:
                # A repeated key answers the first document again and
                # creates nothing (reference section 2.6: assumed; the
                # body is not compared). Keys are per document type.
                st.count("idem_replayed")
                if entry is not None:
                    entry["idempotency"] = "replayed"
                return self.create_answer(st.docs[st.idem[(dtype, key)]])
            series = st.series.get((dtype, b["seriesName"]))
            if series is None:
                raise OblioError(400, "Seria %s nu exista pentru %s" % (b["seriesName"],
                                                                         DOC_TYPES[dtype]))
            rates = {r["name"]: r["percent"] for r in opts.vat_rates}
            for p in b["products"]:
                if "discount" in p or p.get("vatName") in (None, ""):
                    continue
                if p["vatName"] not in rates or (
                        p.get("vatPercentage") not in (None, "")
                        and num(p["vatPercentage"]) != rates[p["vatName"]]):
                    raise OblioError(400, "Cota de TVA %s (%s%%) nu exista" % (
                        p["vatName"], sval(p.get("vatPercentage"))))
            if b.get("number") not in (None, ""):
                n = int(num(b["number"]))
                if st.find(dtype, b["seriesName"], n) is not None:
                    raise OblioError(400, "Numarul %s exista deja in seria %s"
                                     % (st.fmt(n), b["seriesName"]))
                series["next"] = max(series["next"], n + 1)
            else:
                n = series["next"]
                while st.find(dtype, b["seriesName"], n) is not None:
                    n += 1  # a number a person took by hand
                series["next"] = n + 1
            doc_id = st.next_id
            st.next_id += 1
            issue = b.get("issueDate") or simbase.today()
            precision = int(b.get("precision") if b.get("precision") not in (None, "") else 2)
            doc = {"id": doc_id, "type": dtype, "seriesName": b["seriesName"], "n": n,
                   "number": st.fmt(n), "issueDate": issue, "canceled": False,
                   "collected": False, "precision": precision,
                   "currency": b.get("currency") or "RON",
                   "total": doc_total(b["products"], precision), "collects": [],
                   "idempotencyKey": key, "source": source, "created": time.time(),
                   "body": copy.deepcopy(b),
                   "request_seq": entry["seq"] if entry is not None else None}
            client = b["client"]
            if client.get("save") in (None, "") or flag(client.get("save")):
                # Clients are saved to the nomenclature unless "save": 0
                # (assumed; the reference has no client create endpoint).
                doc["clientId"] = st.save_client(client)
            c = b.get("collect")
            if isinstance(c, dict) and c.get("type") and dtype == "invoice":
                self.add_collect(doc, c)
            ref = b.get("referenceDocument")
            if isinstance(ref, dict) and ref.get("type") == "Proforma":
                pro = st.find("proforma", ref.get("seriesName"), ref.get("number"))
                if pro is not None:
                    pro["invoicedBy"] = {"seriesName": doc["seriesName"], "number": doc["number"],
                                         "link": st.link(doc)}
            st.docs[doc_id] = doc
            if key:
                st.idem[(dtype, key)] = doc_id
            st.count("creates")
            self.emit(doc, "Created")
            return self.create_answer(doc)

    def create_answer(self, doc):
        """data of a create: no id, no full document (reference 2.3)."""
        st = self.server.state
        out = {"seriesName": doc["seriesName"], "number": doc["number"], "link": st.link(doc)}
        if doc["type"] == "invoice":
            out["einvoice"] = st.view(doc)["einvoice"]
        return out

    def add_collect(self, doc, c):
        value = num(c.get("value"), max(0.0, doc["total"] - self.collected(doc)))
        doc["collects"].append({"type": c["type"], "seriesName": c.get("seriesName") or "",
                                "documentNumber": sval(c.get("documentNumber")),
                                "value": s4(value), "issueDate": c.get("issueDate")
                                or simbase.today(), "mentions": sval(c.get("mentions"))})
        doc["collected"] = self.collected(doc) >= doc["total"] - 1e-9

    @staticmethod
    def collected(doc):
        return sum(float(c["value"]) for c in doc["collects"])

    def doc_of(self, dtype, b):
        doc = self.server.state.find(dtype, b["seriesName"], b["number"])
        if doc is None:
            # Oblio answers failures 400 with a message (wording assumed).
            raise OblioError(400, "Documentul %s %s nu exista" % (b["seriesName"],
                                                                  sval(b["number"])))
        return doc

    def get_doc(self, dtype, q):
        st = self.server.state
        for k in ("cif", "seriesName", "number"):
            if not q.get(k):
                raise bad("Parametrul %s lipseste" % k)
        self.check_cif(q["cif"])
        with st.lock:
            return st.view(self.doc_of(dtype, q))

    def cancel(self, dtype, raw, entry, cancel):
        """Cancelling what is cancelled (restoring what is not) succeeds
        again (assumed)."""
        st = self.server.state
        b = self.body(raw, entry, DOC_REF)
        with st.lock:
            doc = self.doc_of(dtype, b)
            if doc["canceled"] != cancel:
                doc["canceled"] = cancel
                self.emit(doc, "Canceled" if cancel else "Restored")
        return {}

    def delete(self, dtype, raw, entry):
        """Only the last document of a series may go (as SmartBill; assumed
        for Oblio); an invoice with collects needs deleteCollect=1. The
        document's idempotencyKey is free again."""
        st = self.server.state
        b = self.body(raw, entry, DELETE)
        with st.lock:
            doc = self.doc_of(dtype, b)
            if any(d["type"] == dtype and d["seriesName"] == doc["seriesName"] and d["n"] > doc["n"]
                   for d in st.docs.values()):
                raise OblioError(400, "Documentul %s %s nu este ultimul din serie si nu poate fi "
                                 "sters" % (doc["seriesName"], doc["number"]))
            if doc["collects"] and not flag(b.get("deleteCollect")):
                raise OblioError(400, "Documentul are incasari; trimiteti deleteCollect=1 pentru "
                                 "a le sterge")
            self.remove(doc)
        return {}

    def remove(self, doc):
        st = self.server.state
        del st.docs[doc["id"]]
        s = st.series.get((doc["type"], doc["seriesName"]))
        if s is not None and s["next"] == doc["n"] + 1:
            s["next"] = doc["n"]
        if doc["idempotencyKey"]:
            st.idem.pop((doc["type"], doc["idempotencyKey"]), None)
        gone = copy.deepcopy(doc)
        gone["deleted"] = True
        st.deleted.append(gone)
        self.emit(doc, "Deleted")

    def collect(self, raw, entry):
        st = self.server.state
        b = self.body(raw, entry, COLLECT_REQ)
        with st.lock:
            doc = self.doc_of("invoice", b)
            if doc["canceled"]:
                raise OblioError(400, "Factura %s %s este anulata" % (doc["seriesName"],
                                                                     doc["number"]))
            self.add_collect(doc, b["collect"])
            self.emit(doc, "Collected")
        return {}

    def list_docs(self, dtype, q, entry):
        """GET /api/docs/TYPE/list: filters of reference 2.2; limitPerPage
        at most 100; dates YYYY-MM-DD only (the API filters by issue date,
        with date granularity: 2.4). Out-of-range values answer 400."""
        st = self.server.state
        opts = self.server.opts
        known = {"cif", "id", "seriesName", "number", "issuedAfter", "issuedBefore", "draft",
                 "canceled", "collected", "withProducts", "withCollects", "withEinvoiceStatus",
                 "orderBy", "orderDir", "limitPerPage", "offset", "client[cif]", "client[name]",
                 "client[code]", "client[email]", "client[phone]"}
        self.mark_unknown(entry, [k for k in q if k not in known])
        if not q.get("cif"):
            raise bad("Parametrul cif lipseste")
        self.check_cif(q["cif"])

        def intp(name, default, low, high):
            v = q.get(name, "")
            if v == "":
                return default
            try:
                n = int(v)
            except ValueError:
                raise bad("%s trebuie sa fie un numar" % name)
            if not low <= n <= high:
                raise bad("%s trebuie sa fie intre %d si %d" % (name, low, high))
            return n

        limit = intp("limitPerPage", LIST_MAX, 1, LIST_MAX)
        offset = intp("offset", 0, 0, 10 ** 9)
        tri = {k: intp(k, -1, -1, 1) for k in ("draft", "canceled", "collected")}
        for k in ("issuedAfter", "issuedBefore"):
            if q.get(k) and not simbase.is_date(q[k]):
                raise bad("%s trebuie sa fie o data de forma YYYY-MM-DD" % k)
        after, before = q.get("issuedAfter") or None, q.get("issuedBefore") or None
        if opts.list_max_days:
            # No such limit is documented; off unless --list-max-days.
            if not (after and before):
                raise bad("issuedAfter si issuedBefore sunt obligatorii")
            span = (datetime.date.fromisoformat(before) - datetime.date.fromisoformat(after)).days
            if span > opts.list_max_days:
                raise bad("Intervalul issuedAfter - issuedBefore poate fi de cel mult %d zile"
                          % opts.list_max_days)
        order = q.get("orderBy") or "id"
        if order not in ORDER_BY:
            raise bad("orderBy poate fi id, issueDate sau number")
        direction = (q.get("orderDir") or "DESC").upper()  # newest first (assumed default)
        if direction not in ("ASC", "DESC"):
            raise bad("orderDir poate fi ASC sau DESC")
        with st.lock:
            st.count("list_reads")
            docs = [d for d in st.docs.values() if d["type"] == dtype]

            def keep(d):
                client = d["body"].get("client") or {}
                if q.get("id") and str(d["id"]) != q["id"]:
                    return False
                if q.get("seriesName") and d["seriesName"] != q["seriesName"]:
                    return False
                if q.get("number"):
                    try:
                        if d["n"] != int(q["number"]):
                            return False
                    except ValueError:
                        return False
                if after and d["issueDate"] < after:
                    return False
                if before and d["issueDate"] > before:
                    return False
                if tri["canceled"] != -1 and int(d["canceled"]) != tri["canceled"]:
                    return False
                if tri["collected"] != -1 and int(d["collected"]) != tri["collected"]:
                    return False
                if tri["draft"] == 1:
                    return False  # the sim keeps no drafts
                if q.get("client[cif]") and norm_cif(client.get("cif")) != \
                        norm_cif(q["client[cif]"]):
                    return False
                if q.get("client[name]") and q["client[name]"].lower() not in \
                        str(client.get("name", "")).lower():
                    return False
                for k in ("code", "email", "phone"):
                    v = q.get("client[%s]" % k)
                    if v and str(client.get(k) or "") != v:
                        return False
                return True

            docs = [d for d in docs if keep(d)]
            keyf = {"id": lambda d: d["id"], "issueDate": lambda d: (d["issueDate"], d["id"]),
                    "number": lambda d: (d["seriesName"], d["n"])}[order]
            docs.sort(key=keyf, reverse=direction == "DESC")
            page = docs[offset:offset + limit]
            return [st.view(d, products=flag(q.get("withProducts")),
                            collects=flag(q.get("withCollects"))) for d in page]

    # --- nomenclature ---------------------------------------------------

    def nomenclature(self, name, q, entry):
        st = self.server.state
        opts = self.server.opts
        if name not in NOMENCLATURES:
            raise OblioError(400, "Nomenclatorul %s nu exista" % name)
        if name == "companies":
            return [{"cif": opts.cif, "company": opts.company, "userTypeAccess": "Administrator",
                     "useStock": 0}]
        if not q.get("cif"):
            raise bad("Parametrul cif lipseste")
        self.check_cif(q["cif"])
        with st.lock:
            if name == "clients":
                out = [c for c in st.clients
                       if (not q.get("name") or q["name"].lower() in str(c.get("name")).lower())
                       and (not q.get("clientCif") or norm_cif(c.get("cif"))
                            == norm_cif(q["clientCif"]))]
                try:
                    offset = int(q.get("offset") or 0)
                except ValueError:
                    raise bad("offset trebuie sa fie un numar")
                return [st.client_view(c) for c in out[offset:offset + CLIENTS_PAGE]]
            if name == "series":
                want = q.get("type")
                return [{"type": DOC_TYPES[s["type"]], "name": s["name"],
                         "start": st.fmt(s["start"]), "next": st.fmt(s["next"]), "default": True}
                        for s in st.series.values() if not want or DOC_TYPES[s["type"]] == want]
            if name == "vat_rates":
                return [dict(r, default=i == 0) for i, r in enumerate(opts.vat_rates)]
            if name == "languages":
                return [{"code": "RO", "name": "Romana"}, {"code": "EN", "name": "Engleza"}]
            return []

    # --- webhooks -------------------------------------------------------

    def webhook_create(self, raw, entry):
        """The endpoint must pass the handshake before it is kept (assumed:
        Oblio checks the base64 echo; 2.5)."""
        b = self.body(raw, entry, WEBHOOK)
        result = self.register(b["endpoint"], b["topic"])
        if not result["verified"]:
            raise OblioError(400, "Endpoint-ul %s nu a raspuns corect la verificare"
                             % b["endpoint"])
        return result["webhook"]

    def register(self, url, topic, force=False):
        """The handshake, then (when it passed, or with force) the webhook
        is stored. {"verified", "webhook" | None, "attempt"}."""
        st = self.server.state
        rid = uuid.uuid4().hex
        payload = {"cif": self.server.opts.cif, "topic": topic, "data": {}}
        attempt = send(url, rid, json.dumps(payload).encode(), self.server.opts.webhook_timeout_s)
        with st.lock:
            st.count("handshakes")
            if not attempt["confirmed"]:
                st.count("handshakes_failed")
            hook = None
            if attempt["confirmed"] or force:
                hook = {"id": st.next_webhook, "cif": self.server.opts.cif, "topic": topic,
                        "endpoint": url, "verified": attempt["confirmed"]}
                st.webhooks[hook["id"]] = hook
                st.next_webhook += 1
        return {"verified": attempt["confirmed"], "webhook": copy.deepcopy(hook),
                "attempt": attempt, "request_id": rid}

    def webhook_list(self, q):
        st = self.server.state
        with st.lock:
            return [dict(h) for h in st.webhooks.values()
                    if not q.get("topic") or h["topic"] == q["topic"]]

    def webhook_one(self, wid, delete):
        st = self.server.state
        with st.lock:
            try:
                hook = st.webhooks[int(wid)]
            except (ValueError, KeyError):
                raise OblioError(400, "Webhook-ul %s nu exista" % wid)
            if delete:
                del st.webhooks[hook["id"]]
                return {}
            return dict(hook)

    def emit(self, doc, event, data=None):
        """Queues notifications of a change for every webhook whose topic
        (a glob) matches "<Type>/<Event>": Invoice/Created, Proforma/Canceled,
        ... (topic names assumed: the reference knows "stock" and
        "Card/Confirmed" only). Sent after the lock is let go."""
        topic = "%s/%s" % (TOPIC_WORD[doc["type"]], event) if doc is not None else event
        if data is None:
            data = self.server.state.view(doc)
        self.emitted.append((topic, data))

    def deliver_emitted(self):
        st = self.server.state
        seqs = []
        items, self.emitted = self.emitted, []
        for topic, data in items:
            with st.lock:
                hooks = [dict(h) for h in st.webhooks.values()
                         if fnmatch.fnmatchcase(topic, h["topic"])]
            for h in hooks:
                payload = {"cif": self.server.opts.cif, "topic": topic, "data": data}
                seqs.append(self.server.deliverer.enqueue(h, topic, payload))
        return seqs

    # --- the control API ------------------------------------------------

    def settle(self, arg, out):
        seqs = self.deliver_emitted()
        out["deliveries"] = seqs
        if arg.get("wait"):
            out["deliveries"] = self.server.deliverer.wait(set(seqs),
                                                           float(arg.get("timeout_s", 10)))
        return 200, out

    def ctl_get_documents(self, arg, q):
        """?type=invoice|proforma|notice, ?deleted=1: every document the
        account holds, with its request body, "idempotencyKey", "source"
        (api | person), "canceled", "collected", "collects"."""
        st = self.server.state
        with st.lock:
            docs = sorted(st.docs.values(), key=lambda d: d["id"])
            if q.get("deleted") == "1":
                docs = docs + st.deleted
            out = []
            for d in docs:
                if q.get("type") and d["type"] != q["type"]:
                    continue
                v = copy.deepcopy(d)
                v["link"] = st.link(d)
                v.setdefault("deleted", False)
                out.append(v)
            return 200, out

    def ctl_get_clients(self, arg, q):
        st = self.server.state
        with st.lock:
            return 200, copy.deepcopy(st.clients)

    def ctl_post_client(self, arg, q):
        """A person adds (or edits) a client in the nomenclature."""
        if not arg.get("name"):
            raise ValueError("a client needs a name")
        st = self.server.state
        with st.lock:
            return 200, {"clientId": st.save_client(arg)}

    def ctl_get_tokens(self, arg, q):
        st = self.server.state
        now = time.time()
        with st.lock:
            return 200, [dict(v, token=k, valid=not v["revoked"] and v["expires_at"] > now)
                         for k, v in st.tokens.items()]

    def ctl_post_expire_tokens(self, arg, q):
        """Every token issued so far is expired from now on."""
        st = self.server.state
        with st.lock:
            for t in st.tokens.values():
                t["expires_at"] = min(t["expires_at"], time.time())
            return 200, {"expired": len(st.tokens)}

    def ctl_get_series(self, arg, q):
        st = self.server.state
        with st.lock:
            return 200, [{"type": s["type"], "name": s["name"], "next": s["next"],
                          "nextNumber": st.fmt(s["next"])} for s in st.series.values()]

    def ctl_post_series(self, arg, q):
        """{"type", "name", "next"?}: creates a series or moves it on."""
        st = self.server.state
        dtype = arg.get("type", "invoice")
        if dtype not in DOC_TYPES:
            raise ValueError("type must be invoice, proforma or notice")
        with st.lock:
            s = st.series.setdefault((dtype, str(arg["name"])),
                                     {"type": dtype, "name": str(arg["name"]), "start": 1,
                                      "next": 1})
            if "next" in arg:
                s["next"] = int(arg["next"])
            return 200, {"type": dtype, "name": s["name"], "nextNumber": st.fmt(s["next"])}

    def ctl_post_create(self, arg, q):
        """A person issues a document in the Oblio UI: {"type"?: invoice,
        "body"?: {...} (defaults filled: cif, client, seriesName, one
        product), "wait"?}. Webhooks fire."""
        st = self.server.state
        dtype = arg.get("type", "invoice")
        if dtype not in DOC_TYPES:
            raise ValueError("type must be invoice, proforma or notice")
        b = dict(arg.get("body") or {})
        b.setdefault("cif", self.server.opts.cif)
        b.setdefault("client", {"name": "Client UI", "cif": ""})
        if "seriesName" not in b:
            with st.lock:
                b["seriesName"] = next(s["name"] for s in st.series.values()
                                       if s["type"] == dtype)
        b.setdefault("issueDate", simbase.today())
        b.setdefault("products", [{"name": "Produs UI", "price": 100, "measuringUnit": "buc",
                                   "quantity": 1, "vatName": "Normala"}])
        self.emitted = []
        try:
            data = self.create(dtype, b, None, source="person")
        except OblioError as e:
            return 400, {"error": e.text}
        with st.lock:
            doc = st.find(dtype, data["seriesName"], data["number"])
            out = {"document": copy.deepcopy(doc)}
        return self.settle(arg, out)

    def ctl_post_change(self, arg, q):
        """A person changes a document: {"type"?: invoice, "seriesName",
        "number", "action": cancel | restore | collect | delete | update,
        "collect"?: {...}, "fields"?: {...} (update: merged into the
        document's body), "wait"?}. Webhooks fire."""
        st = self.server.state
        dtype = arg.get("type", "invoice")
        action = arg.get("action")
        self.emitted = []
        with st.lock:
            doc = st.find(dtype, arg["seriesName"], arg["number"])
            if doc is None:
                return 404, {"error": "no %s %s %s" % (dtype, arg["seriesName"], arg["number"])}
            if action in ("cancel", "restore"):
                if doc["canceled"] != (action == "cancel"):
                    doc["canceled"] = action == "cancel"
                    self.emit(doc, "Canceled" if doc["canceled"] else "Restored")
            elif action == "collect":
                self.add_collect(doc, arg.get("collect") or {"type": "Ordin de plata"})
                self.emit(doc, "Collected")
            elif action == "delete":
                self.remove(doc)
            elif action == "update":
                fields = arg.get("fields") or {}
                if not isinstance(fields, dict):
                    raise ValueError("fields must be an object")
                doc["body"].update(copy.deepcopy(fields))
                if "issueDate" in fields:
                    doc["issueDate"] = fields["issueDate"]
                if "products" in fields:
                    doc["total"] = doc_total(doc["body"]["products"], doc["precision"])
                self.emit(doc, "Updated")
            else:
                raise ValueError("action must be cancel, restore, collect, delete or update")
            out = {"document": copy.deepcopy(doc)}
        return self.settle(arg, out)

    def ctl_post_card_confirmed(self, arg, q):
        """A proforma is paid by card and Oblio invoices it: {"seriesName",
        "number" (the proforma's), "invoiceSeries"?, "wait"?}. Creates the
        invoice (referenceDocument: the proforma, collected by Card) and
        sends topic "Card/Confirmed" with data {seriesName, number,
        invoicedBy: {seriesName, number, link}} (as the WooCommerce plugin
        reads it)."""
        st = self.server.state
        self.emitted = []
        with st.lock:
            pro = st.find("proforma", arg["seriesName"], arg["number"])
            if pro is None:
                return 404, {"error": "no proforma %s %s" % (arg["seriesName"], arg["number"])}
            series = arg.get("invoiceSeries") or next(s["name"] for s in st.series.values()
                                                      if s["type"] == "invoice")
            b = copy.deepcopy(pro["body"])
            b.update(seriesName=series, issueDate=simbase.today(), idempotencyKey=None,
                     referenceDocument={"type": "Proforma", "seriesName": pro["seriesName"],
                                        "number": pro["number"]},
                     collect={"type": "Card"})
        try:
            self.create("invoice", b, None, source="person")
        except OblioError as e:
            return 400, {"error": e.text}
        with st.lock:
            data = {"seriesName": pro["seriesName"], "number": pro["number"],
                    "invoicedBy": copy.deepcopy(pro["invoicedBy"])}
        self.emit(None, "Card/Confirmed", data)
        return self.settle(arg, {"data": data})

    def ctl_post_emit(self, arg, q):
        """Sends {"topic", "data"} to every webhook whose topic matches
        (e.g. "stock")."""
        self.emitted = [(str(arg["topic"]), arg.get("data") or {})]
        return self.settle(arg, {})

    def ctl_get_webhooks(self, arg, q):
        return 200, self.webhook_list(q)

    def ctl_post_webhooks_register(self, arg, q):
        """{"url", "topic"?: "*", "force"?}: Oblio verifies url (handshake)
        and, when it answered right (or with force), keeps it."""
        out = self.register(str(arg["url"]), str(arg.get("topic", "*")), bool(arg.get("force")))
        return 200, out

    def ctl_post_webhooks_delete(self, arg, q):
        try:
            return 200, self.webhook_one(arg["id"], True)
        except OblioError as e:
            return 404, {"error": e.text}

    def ctl_get_deliveries(self, arg, q):
        return 200, self.server.deliverer.snapshot(int(q.get("since", "0")))[0]

    def ctl_post_webhook_settings(self, arg, q):
        """{"attempts"?, "backoff_ms"?, "delay_ms"?}."""
        d = self.server.deliverer
        with d.cv:
            d.attempts = int(arg.get("attempts", d.attempts))
            d.backoff_ms = float(arg.get("backoff_ms", d.backoff_ms))
            d.delay_ms = float(arg.get("delay_ms", d.delay_ms))
            return 200, {"attempts": d.attempts, "backoff_ms": d.backoff_ms,
                         "delay_ms": d.delay_ms}

    def ctl_post_send_raw(self, arg, q):
        """{"url", "body" (text or JSON), "request_id"?}: one POST with
        X-Oblio-Request-Id; answers the attempt."""
        body = arg.get("body", "")
        if not isinstance(body, str):
            body = json.dumps(body)
        return 200, send(str(arg["url"]), str(arg.get("request_id") or uuid.uuid4().hex),
                         body.encode(), self.server.opts.webhook_timeout_s)

    def ctl_post_reset(self, arg, q):
        out = simbase.Handler.ctl_post_reset(self, arg, q)
        self.server.deliverer.reset()
        return out


def parse_args(argv):
    p = argparse.ArgumentParser(description="an Oblio.eu account for concord tests")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--email", default="api@concord.test", help="client_id")
    p.add_argument("--secret", default="oblio-secret-0123456789", help="client_secret")
    p.add_argument("--cif", default="RO37311090")
    p.add_argument("--company", default="CONCORD SIM SRL")
    p.add_argument("--company-id", type=int, default=7001, help="the ic= of document links")
    p.add_argument("--series", default="invoice:FCT:1,proforma:PR:1,notice:AVZ:1",
                   help="TYPE:NAME[:NEXT],... (TYPE invoice, proforma or notice)")
    p.add_argument("--number-width", type=int, default=4)
    p.add_argument("--first-id", type=int, default=10000, help="the first document id")
    p.add_argument("--vat-rates", default="Normala:21,Redusa:11,SDD:0,SFDD:0,Scutit:0")
    p.add_argument("--token-ttl-s", type=int, default=3600, help="token lifetime (Oblio: 1 h)")
    p.add_argument("--token-delay-ms", type=float, default=0.0,
                   help="how long the token endpoint takes (widens races)")
    p.add_argument("--single-token", action="store_true",
                   help="a new token revokes the ones issued before")
    p.add_argument("--request-time-type", choices=("string", "int"), default="string")
    p.add_argument("--rate", type=float, default=0.0,
                   help="requests a second before 429 (token bucket); 0: no limit (Oblio "
                        "documents none)")
    p.add_argument("--burst", type=float, default=None)
    p.add_argument("--list-max-days", type=int, default=0,
                   help="demand issuedAfter and issuedBefore at most this many days apart "
                        "(not documented by Oblio; 0: off)")
    p.add_argument("--webhook-attempts", type=int, default=3)
    p.add_argument("--webhook-backoff-ms", type=float, default=500.0)
    p.add_argument("--webhook-delay-ms", type=float, default=0.0,
                   help="how long after a change its notification leaves")
    p.add_argument("--webhook-timeout-s", type=float, default=5.0)
    p.add_argument("--verbose", action="store_true")
    opts = p.parse_args(argv)
    try:
        parse_series(opts.series)
        opts.vat_rates = [{"name": n, "percent": float(v) if "." in v else int(v)}
                          for n, _, v in (x.strip().rpartition(":")
                                          for x in opts.vat_rates.split(",") if x.strip())]
    except ValueError as e:
        p.error(str(e))
    if opts.webhook_attempts < 1 or opts.token_ttl_s < 1:
        p.error("--webhook-attempts and --token-ttl-s must be >= 1")
    return opts


def main(argv):
    opts = parse_args(argv)

    def hook(server):
        server.deliverer = Deliverer(opts)

    return simbase.serve(opts, Handler, State(opts), hook)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
