#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A SmartBill Cloud company account on 127.0.0.1: the public REST API under
/SBORO/api as concord's SmartBill connector sees it, with fault injection.

One process simulates one company (one CIF) reached with one email:token
pair: invoices, proformas (estimates) and receipts numbered from their
series, cancel / restore / delete (only the last of a series) / storno,
payments and the payment status of an invoice, GET /series with nextNumber,
GET /tax, the 30-calls-in-10-seconds limit with its 403 block, and the fault
actions of simbase.py. SmartBill has no webhooks and no way to read an
invoice back except /invoice/paymentstatus and /invoice/pdf; neither has the
sim. Every JSON body is validated against the SmartBill Swagger
(/work/shared/apis/specs/smartbill-swagger.json) with python3-jsonschema;
a malformed request gets 400 with errorText and is marked "invalid" in the
request log.

The control API lives under /_sim/ (never logged, never faulted, never
counted by the rate limit, no auth). tests/sims/README.md ("smartbill.py")
lists every option and endpoint; /work/shared/apis/EXTERNAL-APIS.md section
1 is the reference. Where the reference is silent the comments say what the
sim assumes.

Prints "ready PORT" on stdout once it listens.
"""

import argparse
import base64
import collections
import copy
import hmac
import json
import math
import os
import sys
import time
import urllib.parse

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import simbase  # noqa: E402

import jsonschema  # noqa: E402  (python3-jsonschema, for /usr/bin/python3)

BASE = "/SBORO/api"
HERE = os.path.dirname(os.path.abspath(__file__))
SWAGGER_PLACES = (
    os.path.join(HERE, "specs", "smartbill-swagger.json"),
    os.path.join(HERE, "..", "..", "..", "shared", "apis", "specs", "smartbill-swagger.json"),
    "/work/shared/apis/specs/smartbill-swagger.json",
)
# The payment types of POST /payment (swagger description; smartbill-mcp).
PAYMENT_TYPES = ("Chitanta", "Bon", "Ordin plata", "Card", "Card online", "CEC", "Bilet ordin",
                 "Mandat postal", "Alta incasare", "Extras de cont", "Ramburs")
# Currencies the account knows. Assumed: the real list is long; these are
# enough to tell a typo ("LEI") from a currency.
CURRENCIES = ("RON", "EUR", "USD", "GBP", "CHF", "HUF", "BGN", "PLN", "MDL", "CZK", "SEK",
              "DKK", "NOK", "JPY", "CAD", "AUD")
KINDS = {"f": "invoice", "p": "estimate", "c": "receipt"}
WORD = {"invoice": "Factura", "estimate": "Proforma", "receipt": "Chitanta"}
BLOCK_TEXT = ("Utilizatorul a fost blocat pentru ca s-a depasit limita maxima de apeluri "
              "permise.")  # the swagger's words for 403; the real body's text is not known
SERIES_NOT_FOUND = "Seria nu a fost gasita! Folositi o serie creata in contul de cloud."


class SbError(Exception):
    """An error answer: kind "invalid" (a malformed request: 400), "business"
    (a refused action: 200 or 400, see --business-error-status) or "auth"
    (401)."""

    def __init__(self, text, kind="business"):
        super().__init__(text)
        self.text = text
        self.kind = kind


def invalid(text):
    return SbError(text, "invalid")


# --- the Swagger schemas --------------------------------------------------


def load_schemas(path, require_code):
    """The request schemas, taken from the Swagger's definitions. Changes
    made to them, each because the Swagger contradicts its own text or the
    reference:

    - "items": [a, b, ...] (Swagger 2 copied from examples, read by JSON
      Schema as a tuple: line 1 must be a, line 2 b) becomes "each line is a
      product, or a discount when isDiscount is true";
    - product "code" is required only with --require-product-code (the
      Swagger's own description: "obligatoriu doar daca ... Foloseste cod
      produs");
    - the proforma's paymentUrl is a string, as the invoice's (the Swagger
      says number; the reference and Postman send "Generate URL");
    - booleans may be true/false or 1/0 (Swagger info.description);
    - the invoice's "payment" needs paymentSeries only for a receipt;
    - the bodies are flat JSON objects: the Swagger wraps them in "invoice",
      "estimate", "payment" as its XML root; the JSON API takes the inner
      object (reference section 1.3, Postman)."""
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    defs = copy.deepcopy(doc["definitions"])
    product = copy.deepcopy(defs["dateProdusGeneral1"])
    if not require_code:
        product["required"] = [r for r in product["required"] if r != "code"]
    discount = copy.deepcopy(defs["dateDiscountGeneralValoric"])
    # taxPercentage of a discount is "integer" in the Swagger, a number on
    # products; 5.5 % is a real Romanian rate, so a number here too.
    discount["properties"]["taxPercentage"] = {"type": "number"}
    lines = {"type": "array",
             "items": {"if": {"properties": {"isDiscount": {"enum": [True, 1]}},
                              "required": ["isDiscount"]},
                       "then": discount, "else": product}}
    inv = copy.deepcopy(defs["factura1"]["properties"]["invoice"])
    inv["properties"]["products"] = lines
    # The payment at issue: the Swagger requires paymentSeries, which its
    # own description asks for only "when the collection is a receipt".
    inv["properties"]["payment"] = dict(defs["dateIncasare"], required=["value", "type"])
    # Fields the Swagger tables and the reference name that its invoice
    # model lacks: paymentUrl, sendEmail, emailDetails, usePaymentTax's
    # siblings; accepted without a check of their own.
    inv["properties"].setdefault("paymentUrl", {"type": "string"})
    inv["properties"].setdefault("sendEmail", {"type": "boolean"})
    inv["properties"].setdefault("emailDetails", {"type": "object"})
    est = copy.deepcopy(defs["proforma"]["properties"]["estimate"])
    est["properties"]["products"] = lines
    est["properties"]["paymentUrl"] = {"type": "string"}
    est["properties"].setdefault("sendEmail", {"type": "boolean"})
    est["properties"].setdefault("emailDetails", {"type": "object"})
    pay = copy.deepcopy(defs["exempluEmitereIncasareFaraDateleDinFactura"]["properties"]["payment"])
    pay["properties"]["invoicesList"] = {"type": "array",
                                         "items": defs["exempluInvoicesList"]}
    # seriesName (the receipt's series), text, translatedText, isDraft are
    # in the description's table but not in the model.
    for k, t in (("seriesName", "string"), ("text", "string"), ("translatedText", "string"),
                 ("isDraft", "boolean"), ("paymentSeries", "string")):
        pay["properties"].setdefault(k, {"type": t})
    reverse = copy.deepcopy(defs["exempluFacturaStorno"])
    reverse["required"] = ["companyVatCode"]
    send = copy.deepcopy(defs["exempluTrimitereEmail"]["properties"]["sendDocumentRequest"])
    send["required"] = ["companyVatCode"]
    out = {}
    for name, sch in (("invoice", inv), ("estimate", est), ("payment", pay),
                      ("reverse", reverse), ("send", send)):
        s = dict(sch)
        s["definitions"] = defs
        out[name] = s
    return out


def _boolean(checker, inst):
    return isinstance(inst, bool) or (type(inst) is int and inst in (0, 1))


Validator = jsonschema.validators.extend(
    jsonschema.Draft7Validator,
    type_checker=jsonschema.Draft7Validator.TYPE_CHECKER.redefine("boolean", _boolean))
FORMATS = jsonschema.FormatChecker(formats=())
FORMATS.checks("date")(simbase.is_date)


def resolved(schema, defs):
    """schema with its top-level $ref followed (for unknown_fields)."""
    while isinstance(schema, dict) and "$ref" in schema:
        schema = defs[schema["$ref"].split("/")[-1]]
    if isinstance(schema, dict):
        out = dict(schema)
        if "properties" in out:
            out["properties"] = {k: resolved(v, defs) for k, v in out["properties"].items()}
        if isinstance(out.get("items"), dict):
            it = out["items"]
            if "then" in it:
                out["items"] = {"anyOf": [resolved(it["then"], defs), resolved(it["else"], defs)]}
            else:
                out["items"] = resolved(it, defs)
        return out
    return schema


def error_text(err):
    """An errorText for a schema violation: the Swagger's message where it
    has one for the case, else "<field>: <what>" (assumed wording)."""
    path = ".".join(str(p) for p in err.absolute_path)
    if err.validator == "format" and err.validator_value == "date":
        return "Data documentului trebuie sa fie de forma yyyy-MM-dd."
    if err.validator == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        if missing == "companyVatCode":
            return "CIF-ul firmei ('companyVatCode') trebuie specificat"
        if "products" in err.absolute_path:
            return "%s trebuie specificat pentru fiecare produs" % missing
        return "%s trebuie specificat" % ((path + "." if path else "") + missing)
    return "Date invalide: %s: %s" % (path or "(body)", err.message)


# --- the rate limit --------------------------------------------------------


class CallLimit:
    """30 calls in 10 s; the call past the limit is refused and blocks
    access for block_s (reference section 1.5). mode "sliding": no 10 s span
    may hold more than the limit (the strict reading, the default: a client
    that keeps to it keeps to any window the real server may use); "fixed":
    windows of window_s start at the first call after the last one ended,
    as the headers describe. Refused calls do not count. limit 0: off."""

    def __init__(self, limit, window_s, block_s, mode):
        self.configure(limit, window_s, block_s, mode)
        self.blocked_ever = False
        self.blocks = 0
        self.refused = 0
        self.max_in_window = 0

    def configure(self, limit, window_s, block_s, mode):
        if mode not in ("sliding", "fixed"):
            raise ValueError("mode must be sliding or fixed")
        if limit < 0 or window_s <= 0 or block_s < 0:
            raise ValueError("limit >= 0, window_s > 0, block_s >= 0")
        self.limit = int(limit)
        self.window_s = float(window_s)
        self.block_s = float(block_s)
        self.mode = mode
        self.calls = collections.deque()
        self.window_start = None
        self.count = 0
        self.blocked_until = 0.0

    def unblock(self):
        self.blocked_until = 0.0
        self.calls.clear()
        self.window_start = None
        self.count = 0

    def take(self, now):
        """(ok, headers): counts one call at monotonic time now."""
        if self.limit <= 0:
            return True, {}
        if now < self.blocked_until:
            self.refused += 1
            return False, self.headers(now, 0)
        if self.mode == "sliding":
            while self.calls and self.calls[0] <= now - self.window_s:
                self.calls.popleft()
            n = len(self.calls) + 1
        else:
            if self.window_start is None or now >= self.window_start + self.window_s:
                self.window_start = now
                self.count = 0
            n = self.count + 1
        if n > self.limit:
            self.blocked_until = now + self.block_s
            self.blocked_ever = True
            self.blocks += 1
            self.refused += 1
            self.calls.clear()
            self.window_start = None
            self.count = 0
            return False, self.headers(now, 0)
        if self.mode == "sliding":
            self.calls.append(now)
        else:
            self.count = n
        self.max_in_window = max(self.max_in_window, n)
        return True, self.headers(now, self.limit - n)

    def headers(self, now, remaining):
        if self.mode == "sliding":
            start = self.calls[0] if self.calls else now
        else:
            start = self.window_start if self.window_start is not None else now
        reset_at = time.time() + (start + self.window_s - now)
        if now < self.blocked_until:
            reset_at = time.time() + (self.blocked_until - now)
        return {"X-RateLimit-Limit": str(self.limit),
                "X-RateLimit-Remaining": str(max(0, remaining)),
                "X-RateLimit-Reset": str(int(math.ceil(reset_at)))}

    def view(self, now):
        return {"limit": self.limit, "window_s": self.window_s, "block_s": self.block_s,
                "mode": self.mode, "blocked_ever": self.blocked_ever, "blocks": self.blocks,
                "refused": self.refused, "blocked_now": now < self.blocked_until,
                "blocked_for_s": max(0.0, self.blocked_until - now),
                "max_in_window": self.max_in_window}


# --- the account -----------------------------------------------------------


def parse_series(text):
    """"f:FCT:1,p:PF:1,c:CH:1" -> {name: {"name", "type", "next"}}."""
    out = {}
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        bits = part.split(":")
        if len(bits) not in (2, 3) or bits[0] not in KINDS:
            raise ValueError("a series is TYPE:NAME[:NEXT] with TYPE f, p or c: %r" % part)
        nxt = int(bits[2]) if len(bits) == 3 else 1
        if nxt < 1:
            raise ValueError("next number must be >= 1")
        out[bits[1]] = {"name": bits[1], "type": bits[0], "next": nxt}
    return out


def parse_taxes(text):
    out = []
    for part in (text or "").split(","):
        if part.strip():
            name, _, pct = part.strip().rpartition(":")
            out.append({"name": name, "percentage": float(pct) if "." in pct else int(pct)})
    return out


def truthy(v):
    return v is True or v == 1


def money(x, precision=2):
    return round(float(x) + 0.0, int(precision))


class State(simbase.State):
    def reset(self):
        super().reset()
        opts = self.opts
        self.series = parse_series(opts.series)
        self.taxes = parse_taxes(opts.taxes)
        self.docs = {}  # (kind, series, number) -> doc, live ones
        self.deleted = []  # docs deleted, oldest first
        self.payments = {}  # id -> payment
        self.next_payment = 1
        self.next_doc_id = 1000
        self.emails = []
        self.limiter = CallLimit(opts.rate_limit, opts.rate_window_s, opts.block_s,
                                 opts.rate_mode)
        self.business_status = opts.business_error_status
        self.stats.update({"business_errors": 0, "issued": 0, "person_issued": 0,
                           "emails": 0})

    def fmt(self, n):
        return str(n).zfill(self.opts.number_width)

    def allocate(self, series):
        """The next number of a series (a string), which it then consumes."""
        s = self.series[series]
        kind = KINDS[s["type"]]
        num = self.fmt(s["next"])
        if (kind, series, num) in self.docs:
            # The reference: a call fails when the number "is already given
            # to another document" (someone set nextNumber back). Wording
            # assumed.
            raise SbError("Numarul %s %s este deja alocat unui alt document." % (series, num))
        s["next"] += 1
        return num

    def new_doc(self, kind, series, number, body, source, entry_seq):
        self.next_doc_id += 1
        doc = {"kind": kind, "series": series, "number": number, "documentId": self.next_doc_id,
               "issueDate": body.get("issueDate") or simbase.today(),
               "canceled": False, "draft": truthy(body.get("isDraft")),
               "currency": body.get("currency") or "RON",
               "precision": int(body.get("precision", 2) or 2),
               "total": 0.0, "paid": 0.0, "payments": [], "source": source,
               "request_seq": entry_seq, "created": time.time(), "body": copy.deepcopy(body)}
        self.docs[(kind, series, number)] = doc
        return doc

    def last_in_series(self, doc):
        """True when no live document of the series has a higher number."""
        n = int(doc["number"])
        return not any(k[1] == doc["series"] and k[0] == doc["kind"] and int(k[2]) > n
                       for k in self.docs)

    def remove(self, doc):
        del self.docs[(doc["kind"], doc["series"], doc["number"])]
        s = self.series.get(doc["series"])
        if s is not None and s["next"] == int(doc["number"]) + 1:
            s["next"] = int(doc["number"])  # the number is free again
        gone = copy.deepcopy(doc)
        gone["deleted"] = True
        gone["deleted_at"] = time.time()
        self.deleted.append(gone)

    def view(self, doc):
        out = copy.deepcopy(doc)
        out["deleted"] = out.get("deleted", False)
        out["unpaid"] = money(max(0.0, doc["total"] - doc["paid"]), doc["precision"])
        if doc["kind"] == "invoice":
            paid = doc["total"] > 0 and doc["paid"] >= doc["total"] - 1e-9
            out["paymentStatus"] = "paid" if paid else "partial" if doc["paid"] > 0 else "unpaid"
        return out


def line_total(lines, vat_payer):
    """The document's total: quantity x price (+ VAT when the price excludes
    it), discounts of value (discountValue, negative) or percent of the
    numberOfItems lines before them (the default: every line before)."""
    total = 0.0
    values = []
    for p in lines or []:
        if truthy(p.get("isDiscount")):
            before = values[-int(p.get("numberOfItems") or len(values)):] if values else []
            if int(p.get("discountType") or 1) == 2:
                v = -sum(before) * float(p.get("discountPercentage") or 0) / 100.0
            else:
                v = float(p.get("discountValue") or 0)
                if v > 0:
                    v = -v
        else:
            v = float(p.get("quantity") or 0) * float(p.get("price") or 0)
            if vat_payer and not truthy(p.get("isTaxIncluded", True)):
                v *= 1 + float(p.get("taxPercentage") or 0) / 100.0
        values.append(v)
        total += v
    return total


class Handler(simbase.Handler):
    sim_name = "smartbill-sim"

    # --- hooks ----------------------------------------------------------

    def admit(self, entry, split):
        st = self.server.state
        ok, self.rl_headers = st.limiter.take(time.monotonic())
        if ok:
            return None
        entry["rate_limited"] = True
        return 403, {"errorText": BLOCK_TEXT, "message": "", "number": ""}, {}

    def extra_headers(self):
        return dict(getattr(self, "rl_headers", {}) or {})

    def fault_answer(self, status):
        if status == 403:
            return {"errorText": BLOCK_TEXT, "message": "", "number": ""}, None
        if status in (502, 503, 504):
            # What the proxy in front answers (assumed: nginx's page).
            reason = {502: "Bad Gateway", 503: "Service Temporarily Unavailable",
                      504: "Gateway Time-out"}[status]
            html = ("<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n<center><h1>%d %s"
                    "</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
                    % (status, reason, status, reason))
            return html, "text/html"
        return {"errorText": "Eroare la procesarea cererii (injected %d)." % status,
                "message": "", "number": ""}, None

    def more_stats(self, out):
        st = self.server.state
        out["rate_limit"] = st.limiter.view(time.monotonic())
        counts = {"invoice": 0, "estimate": 0, "receipt": 0}
        for k in st.docs:
            counts[k[0]] += 1
        out["documents"] = counts
        out["payments"] = len(st.payments)
        out["business_error_status"] = st.business_status

    # --- one request ----------------------------------------------------

    def handle_api(self, method, split, raw, entry):
        st = self.server.state
        self.v2 = False
        try:
            status, obj, applied = self.route(method, split, raw, entry)
            return status, obj, {}, applied
        except SbError as e:
            if e.kind == "auth":
                with st.lock:
                    st.count("unauthorized")
                    entry["error"] = e.text
                if e.text == "":
                    # A wrong user or token: the servlet container's page,
                    # as the Swagger's PDF example shows it (assumed for all).
                    html = ("<html><head><title>Error</title></head><body><h1>HTTP Status 401 - "
                            "Unauthorized</h1><hr/><p></p></body></html>")
                    self.answer_ctype = "text/html;charset=utf-8"
                    return 401, html, {"WWW-Authenticate": 'Basic realm="SmartBill API"'}, False
                return 401, self.error_body(e.text), {}, False
            if e.kind == "invalid":
                self.mark_invalid(entry, e.text)
                with st.lock:
                    entry["error"] = e.text
                return self.server.opts.invalid_status, self.error_body(e.text), {}, False
            with st.lock:
                st.count("business_errors")
                entry["error"] = e.text
                status = st.business_status
            return status, self.error_body(e.text), {}, False

    def error_body(self, text):
        out = {"errorText": text, "message": "", "number": ""}
        if self.v2:
            out.update({"series": "", "url": "", "documentUrl": "", "documentId": -1,
                        "documentViewUrl": ""})
        return out

    def authorize(self):
        """The Basic email:token check (preemptive: no challenge first)."""
        opts = self.server.opts
        h = self.headers.get("Authorization") or ""
        scheme, _, val = h.partition(" ")
        if scheme.lower() != "basic":
            raise SbError("", "auth")
        try:
            user, _, token = base64.b64decode(val.strip(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise SbError("", "auth")
        if not (hmac.compare_digest(user.encode(), opts.email.encode())
                and hmac.compare_digest(token.encode(), opts.token.encode())):
            raise SbError("", "auth")

    def check_cif(self, cif):
        """A CIF other than the account's is a 401 (reference section 1.4:
        "wrong user, token or CIF"). "RO" and spaces do not matter
        (assumed)."""
        def norm(c):
            c = str(c).strip().upper().replace(" ", "")
            return c[2:] if c.startswith("RO") else c

        if norm(cif) != norm(self.server.opts.cif):
            raise SbError("Firma la care incercati sa va conectati nu mai este disponibila in "
                          "Cloud. Verificati ciful companiei.", "auth")

    def query(self, split):
        return {k: v[-1] for k, v in urllib.parse.parse_qs(split.query,
                                                           keep_blank_values=True).items()}

    def doc_ref(self, q):
        """cif, series and number of a query-string call; the reference
        writes "seriesname", the Swagger's parameter "seriesName": both are
        taken."""
        if not q.get("cif"):
            raise invalid("Cif trebuie specificat.")
        self.check_cif(q["cif"])
        series = q.get("seriesname", q.get("seriesName"))
        if not series:
            raise invalid("Seriesname trebuie specificat.")
        number = q.get("number")
        if not number:
            raise invalid("Number trebuie specificat.")
        return series, number

    def json_body(self, raw, entry, schema_name):
        """The request's JSON object, validated; SbError when malformed."""
        ctype = (self.headers.get("Content-Type") or "").lower()
        if ctype and "json" not in ctype:
            raise invalid("Formatul continutului nu este acceptat (%s): the simulator speaks "
                          "JSON only." % ctype)
        body, err = simbase.parse_json(raw)
        if err is not None or not isinstance(body, dict):
            raise invalid("Continutul cererii nu este un JSON valid: %s" % (err or "not an object"))
        schema = self.server.schemas[schema_name]
        errors = sorted(Validator(schema, format_checker=FORMATS).iter_errors(body),
                        key=lambda e: (list(e.absolute_path), e.validator))
        if errors:
            self.mark_invalid(entry, ["%s: %s" % (".".join(str(p) for p in e.absolute_path)
                                                  or "(body)", e.message) for e in errors])
            raise SbError(error_text(jsonschema.exceptions.best_match(errors)), "invalid-marked")
        self.mark_unknown(entry, simbase.unknown_fields(
            body, resolved(schema, schema["definitions"])))
        return body

    def route(self, method, split, raw, entry):
        path = split.path
        if not path.startswith(BASE + "/"):
            return 404, {"errorText": "Not Found", "message": "", "number": ""}, False
        rest = path[len(BASE) + 1:].rstrip("/")
        routes = {
            "invoice": {"POST": self.create_doc, "DELETE": self.delete_doc},
            "invoice/v2": {"POST": self.create_doc},
            "invoice/cancel": {"PUT": self.cancel_doc},
            "invoice/restore": {"PUT": self.restore_doc},
            "invoice/paymentstatus": {"GET": self.payment_status},
            "invoice/pdf": {"GET": self.pdf},
            "invoice/reverse": {"POST": self.reverse},
            "estimate": {"POST": self.create_doc, "DELETE": self.delete_doc},
            "estimate/v2": {"POST": self.create_doc},
            "estimate/cancel": {"PUT": self.cancel_doc},
            "estimate/restore": {"PUT": self.restore_doc},
            "estimate/pdf": {"GET": self.pdf},
            "estimate/invoices": {"GET": self.estimate_invoices},
            "payment": {"POST": self.create_payment},
            "payment/chitanta": {"DELETE": self.delete_receipt},
            "payment/v2": {"DELETE": self.delete_payment},
            "series": {"GET": self.get_series},
            "tax": {"GET": self.get_taxes},
            "document/send": {"POST": self.send_document},
        }
        if rest not in routes:
            return 404, {"errorText": "Not Found", "message": "", "number": ""}, False
        fn = routes[rest].get(method)
        if fn is None:
            # 405 as the Swagger lists it; invoices cannot be read back.
            self.answer_ctype = None
            return 405, {"errorText": "Method Not Allowed", "message": "", "number": ""}, False
        self.authorize()
        kind = "estimate" if rest.startswith("estimate") else "invoice"
        self.v2 = rest.endswith("/v2") or rest == "invoice/reverse"
        try:
            return fn(kind, split, raw, entry)
        except SbError as e:
            if e.kind == "invalid-marked":
                with self.server.state.lock:
                    entry["error"] = e.text
                return self.server.opts.invalid_status, self.error_body(e.text), False
            raise

    # --- documents ------------------------------------------------------

    def create_doc(self, kind, split, raw, entry):
        st = self.server.state
        opts = self.server.opts
        body = self.json_body(raw, entry, kind)
        self.check_cif(body["companyVatCode"])
        word = WORD[kind]
        from_estimate = kind == "invoice" and truthy(body.get("useEstimateDetails"))
        # The rules of the Swagger's error tables that make a request
        # incomplete (invalid), before anything in the account is looked at.
        if not body.get("issueDate"):
            raise invalid("issueDate trebuie specificat")
        if not body.get("seriesName"):
            raise invalid("Serie inexistenta")
        if not from_estimate:
            client = body.get("client")
            if not client:
                raise invalid("client trebuie specificat")
            if not str(client.get("name", "")).strip():
                raise invalid("Client invalid!")
            lines = body.get("products") or []
            if not lines:
                raise invalid("%s nu contine produse!" % word)
            if all(truthy(p.get("isDiscount")) for p in lines):
                raise invalid("Nu poti sa emiti un document care contine doar un discount. "
                              "Trebuie sa ai si produse / servicii adaugate.")
            for p in lines:
                if truthy(p.get("isDiscount")):
                    dtype = int(p.get("discountType") or 1)
                    if dtype == 2 and p.get("discountPercentage") is None:
                        raise invalid("discountPercentage trebuie specificat pentru fiecare "
                                      "produs de tip discount")
                    if dtype != 2 and p.get("discountValue") is None:
                        raise invalid("discountValue trebuie specificat pentru fiecare produs "
                                      "de tip discount")
                    continue
                for k in ("quantity", "price"):
                    if p.get(k) is None:
                        raise invalid("%s trebuie specificat pentru fiecare produs" % k)
        pay = body.get("payment")
        if pay is not None:
            if not pay.get("type"):
                raise invalid("type trebuie specificat pentru incasare")
            if pay.get("value") is None:
                raise invalid("value trebuie specificat pentru incasare")

        with st.lock:
            series = body["seriesName"]
            s = st.series.get(series)
            if s is None or KINDS[s["type"]] != kind:
                raise SbError(SERIES_NOT_FOUND)
            if not opts.vat_payer and truthy(body.get("usePaymentTax")):
                raise SbError("O firma neplatitoare de tva nu poate folosi tva la incasare!")
            cur = body.get("currency") or "RON"
            if cur not in CURRENCIES:
                raise SbError("Moneda nu a fost gasita pe server!")
            est = None
            if from_estimate:
                ref = body.get("estimate") or {}
                est = st.docs.get(("estimate", ref.get("seriesName"), ref.get("number")))
                if est is None:
                    raise SbError("Factura proforma %s%s nu a fost gasita!"
                                  % (ref.get("seriesName", ""), ref.get("number", "")))
                lines = est["body"].get("products") or []
                if not lines:
                    raise SbError("Proforma nu contine produse!")
            else:
                lines = body.get("products")
            for p in lines:
                if truthy(p.get("isDiscount")):
                    continue
                if p.get("currency") and p["currency"] not in CURRENCIES:
                    raise SbError("Moneda nu a fost gasita pe server!")
                if opts.vat_payer:
                    if p.get("taxName") is None and p.get("taxPercentage") is None:
                        raise SbError("Produsul %s nu are cota tva setata in cloud. Setati o "
                                      "cota din nomenclatorul de produse." % p.get("name"))
                    if not any(t["name"] == p.get("taxName")
                               and float(t["percentage"]) == float(p.get("taxPercentage", -1))
                               for t in st.taxes):
                        raise SbError("Cota tva a produsului %s nu a fost gasita pe server!"
                                      % p.get("name"))
            if pay is not None:
                if pay["type"] not in PAYMENT_TYPES:
                    raise SbError("Tipul incasarii nu a fost gasit!")
                if pay["type"] == "Chitanta":
                    rs = st.series.get(pay.get("paymentSeries") or "")
                    if rs is None or rs["type"] != "c":
                        raise SbError("Seria incasarii nu a fost gasita pe server.")
            # A draft (isDraft) takes its number too (assumed: the reference
            # does not say; SmartBill shows drafts with series and number).
            number = st.allocate(series)
            doc = st.new_doc(kind, series, number, body, "api", entry["seq"])
            doc["total"] = money(line_total(lines, opts.vat_payer), doc["precision"])
            if est is not None:
                doc["estimate"] = {"series": est["series"], "number": est["number"]}
                est.setdefault("invoices", []).append({"series": series, "number": number})
            if pay is not None:
                receipt = None
                if pay["type"] == "Chitanta":
                    receipt = self.new_receipt(pay["paymentSeries"], pay, entry)
                self.record_payment(pay, [(doc, float(pay["value"]))], receipt, entry)
            st.stats["issued"] += 1
            url = ""
            pu = body.get("paymentUrl")
            if pu == "Generate URL":
                url = "https://secure.mobilpay.ro/qp/sim-%d" % doc["documentId"]
            elif pu:
                url = pu
            doc["url"] = url
            out = {"errorText": "", "message": "", "number": number, "series": series, "url": url}
            if self.v2:
                out.update(self.doc_links(doc))
        return 200, out, True

    def doc_links(self, doc):
        what = "factura" if doc["kind"] == "invoice" else "proforma"
        return {"documentUrl": "https://cloud.smartbill.ro/documente/editare/%s/%d/"
                % (what, doc["documentId"]),
                "documentId": doc["documentId"],
                "documentViewUrl": "https://cloud.smartbill.ro/documente/vizualizare/%s/%d/"
                % (what, doc["documentId"])}

    def find(self, kind, series, number, missing_text=None):
        doc = self.server.state.docs.get((kind, series, number))
        if doc is None:
            raise SbError(missing_text or "%s cu seria si numarul %s%s nu a fost gasita!"
                          % (WORD[kind], series, number))
        return doc

    def delete_doc(self, kind, split, raw, entry):
        st = self.server.state
        series, number = self.doc_ref(self.query(split))
        with st.lock:
            doc = self.find(kind, series, number)
            # Only the last invoice of a series may be deleted (Swagger);
            # the proforma's error table has no such rule, so any proforma
            # may be (assumed).
            if kind == "invoice" and not st.last_in_series(doc):
                raise SbError("Documentul cu seria si numarul %s %s nu este ultimul din serie!"
                              % (series, number))
            st.remove(doc)
            if kind == "estimate":
                for inv in st.docs.values():
                    if inv.get("estimate") == {"series": series, "number": number}:
                        inv["estimate"] = None
            for pid in doc["payments"]:
                p = st.payments.get(pid)
                if p:
                    p["allocations"] = [a for a in p["allocations"]
                                        if (a["series"], a["number"]) != (series, number)]
        return 200, {"errorText": "", "message": "%s cu seria si numarul %s%s a fost stearsa cu "
                     "succes." % (WORD[kind], series, number), "number": "", "series": "",
                     "url": ""}, True

    def cancel_doc(self, kind, split, raw, entry):
        st = self.server.state
        series, number = self.doc_ref(self.query(split))
        with st.lock:
            doc = self.find(kind, series, number)
            if doc["canceled"]:
                # Assumed: cancelling twice is refused, as restoring what is
                # not cancelled is ("... nu necesita restaurare").
                raise SbError("%s cu seria si numarul %s%s este deja anulata."
                              % (WORD[kind], series, number))
            if doc.get("reversedBy") and kind == "invoice":
                raise SbError("Pentru factura %s%s exista deja stornari care incarca stocul. "
                              "Trebuie sa anulati intai facturile storno (%s)."
                              % (series, number, doc["reversedBy"]))
            doc["canceled"] = True
            doc["canceled_at"] = time.time()
        return 200, {"errorText": "", "message": "%s cu seria si numarul %s%s a fost anulata cu "
                     "succes." % (WORD[kind], series, number), "number": "", "series": "",
                     "url": ""}, True

    def restore_doc(self, kind, split, raw, entry):
        st = self.server.state
        series, number = self.doc_ref(self.query(split))
        with st.lock:
            doc = self.find(kind, series, number)
            if not doc["canceled"]:
                raise SbError("%s %s%s nu necesita restaurare." % (WORD[kind], series, number))
            doc["canceled"] = False
        return 200, {"errorText": "", "message": "%s cu seria si numarul %s%s a fost restaurata "
                     "cu succes." % (WORD[kind], series, number), "number": "", "series": "",
                     "url": ""}, True

    def payment_status(self, kind, split, raw, entry):
        st = self.server.state
        series, number = self.doc_ref(self.query(split))
        with st.lock:
            doc = self.find(kind, series, number, "Factura nu a fost gasita!")
            total, paid = doc["total"], min(doc["paid"], doc["total"])
            p = doc["precision"]
            return 200, {"errorText": "", "message": "", "number": number, "series": series,
                         "invoiceTotalAmount": money(total, p), "paidAmount": money(paid, p),
                         "unpaidAmount": money(total - paid, p),
                         "paid": total > 0 and paid >= total - 1e-9}, False

    def pdf(self, kind, split, raw, entry):
        st = self.server.state
        series, number = self.doc_ref(self.query(split))
        with st.lock:
            self.find(kind, series, number)
        data = ("%%PDF-1.4\n%% smartbill-sim %s %s%s\n%%%%EOF\n" % (kind, series, number)).encode()
        self.answer_ctype = "application/octet-stream"
        return 200, data, False

    def estimate_invoices(self, kind, split, raw, entry):
        st = self.server.state
        series, number = self.doc_ref(self.query(split))
        with st.lock:
            est = self.find("estimate", series, number)
            invs = [dict(i) for i in est.get("invoices", [])
                    if ("invoice", i["series"], i["number"]) in st.docs]
        return 200, {"errorText": "", "message": "", "number": "", "series": "",
                     "areInvoicesCreated": bool(invs), "invoices": invs}, False

    def reverse(self, kind, split, raw, entry):
        """Storno: a new invoice in the same series, of the opposite total."""
        st = self.server.state
        body = self.json_body(raw, entry, "reverse")
        self.check_cif(body["companyVatCode"])
        if not body.get("seriesName"):
            raise invalid("Seria facturii trebuie specificata in parametrul 'seriesName'!")
        if not body.get("number"):
            raise invalid("Numarul facturii trebuie specificat in parametrul 'number'!")
        series, number = body["seriesName"], body["number"]
        with st.lock:
            doc = self.find("invoice", series, number,
                            "Factura cu seria si numarul %s%s nu a fost gasita!" % (series, number))
            if doc.get("reverses"):
                raise SbError("Factura %s%s este de tip storno. Nu se poate storna."
                              % (series, number))
            if doc.get("reversedBy"):
                raise SbError("Factura este deja stornata.")
            issue = body.get("issueDate") or simbase.today()
            if not simbase.is_date(issue):
                raise invalid("Data documentului trebuie sa fie de forma yyyy-MM-dd.")
            if issue < doc["issueDate"]:
                raise SbError("Data emiterii facturii storno nu poate fi anterioara datei "
                              "emiterii facturii stornate.")
            num = st.allocate(series)
            new_body = dict(doc["body"], issueDate=issue)
            new = st.new_doc("invoice", series, num, new_body, "api", entry["seq"])
            new["total"] = -doc["total"]
            new["reverses"] = series + number
            doc["reversedBy"] = series + num
            st.stats["issued"] += 1
            out = {"errorText": "", "message": "", "number": num, "series": series, "url": ""}
            out.update(self.doc_links(new))
        return 200, out, True

    # --- payments -------------------------------------------------------

    def new_receipt(self, series, pay, entry):
        st = self.server.state
        num = st.allocate(series)
        return st.new_doc("receipt", series, num, pay, "api", entry["seq"] if entry else None)

    def record_payment(self, pay, targets, receipt, entry):
        """Stores a payment and spreads its value over the invoices given
        ((doc, amount) pairs). Called under the lock."""
        st = self.server.state
        pid = st.next_payment
        st.next_payment += 1
        p = {"id": pid, "type": pay.get("type"), "value": float(pay.get("value") or 0),
             "isCash": truthy(pay.get("isCash")), "issueDate": pay.get("issueDate")
             or simbase.today(), "receipt": None, "allocations": [],
             "request_seq": entry["seq"] if entry else None, "body": copy.deepcopy(pay)}
        if receipt is not None:
            p["receipt"] = {"series": receipt["series"], "number": receipt["number"]}
            receipt["payment"] = pid
            receipt["total"] = p["value"]
        for doc, amount in targets:
            doc["paid"] = money(doc["paid"] + amount, 4)
            doc["payments"].append(pid)
            p["allocations"].append({"series": doc["series"], "number": doc["number"],
                                     "value": amount})
        st.payments[pid] = p
        return p

    def create_payment(self, kind, split, raw, entry):
        st = self.server.state
        body = self.json_body(raw, entry, "payment")
        self.check_cif(body["companyVatCode"])
        if not body.get("type"):
            raise invalid("Tipul incasarii trebuie specificat.")
        if body.get("value") is None:
            raise invalid("Valoarea incasarii trebuie specificata.")
        if not body.get("issueDate"):
            raise invalid("issueDate trebuie specificat")
        if not simbase.is_date(body["issueDate"]):
            raise invalid("Data documentului trebuie sa fie de forma yyyy-MM-dd.")
        refs = body.get("invoicesList") or []
        if truthy(body.get("useInvoiceDetails")) and not refs:
            raise invalid("Pentru emiterea unei incasari cu datele de pe factura trebuie "
                          "specificate seria si numarul facturii.")
        with st.lock:
            if body["type"] == "Bon":
                raise SbError("Nu puteti adauga bonuri prin API.")
            if body["type"] not in PAYMENT_TYPES:
                raise SbError("Tipul incasarii nu a fost gasit!")
            if truthy(body.get("useInvoiceDetails")) and len(refs) != 1:
                raise SbError("Trebuie specificata doar o factura!")
            docs = []
            for r in refs:
                doc = st.docs.get(("invoice", r.get("seriesName"), r.get("number")))
                if doc is None:
                    raise SbError("Factura nu a fost gasita!")
                if doc["canceled"]:
                    raise SbError("Factura %s%s este anulata, nu o puteti incasa. Restaurati "
                                  "intai factura sau emiteti incasarea independent de factura."
                                  % (doc["series"], doc["number"]))
                docs.append(doc)
            receipt = None
            if body["type"] == "Chitanta":
                rname = body.get("seriesName") or body.get("paymentSeries") or ""
                rs = st.series.get(rname)
                if rs is None:
                    raise SbError(SERIES_NOT_FOUND)
                if rs["type"] != "c":
                    raise SbError("Seria nu poate fi folosita la chitante.")
                receipt = self.new_receipt(rname, body, entry)
            # The value covers the invoices in the order given, each up to
            # what it still owes; what is left goes to the last (assumed).
            left = float(body["value"])
            targets = []
            for i, doc in enumerate(docs):
                owed = max(0.0, doc["total"] - doc["paid"])
                amount = left if i == len(docs) - 1 else min(left, owed)
                targets.append((doc, amount))
                left -= amount
            self.record_payment(body, targets, receipt, entry)
            out = {"errorText": "", "message": "", "number": "", "series": ""}
            if receipt is not None:
                out.update(number=receipt["number"], series=receipt["series"])
        return 200, out, True

    def drop_payment(self, p):
        st = self.server.state
        for a in p["allocations"]:
            doc = st.docs.get(("invoice", a["series"], a["number"]))
            if doc is not None:
                doc["paid"] = money(doc["paid"] - a["value"], 4)
                doc["payments"] = [x for x in doc["payments"] if x != p["id"]]
        del st.payments[p["id"]]

    def delete_receipt(self, kind, split, raw, entry):
        st = self.server.state
        series, number = self.doc_ref(self.query(split))
        with st.lock:
            doc = self.find("receipt", series, number)
            if not st.last_in_series(doc):
                raise SbError("Documentul cu seria si numarul %s %s nu este ultimul din serie!"
                              % (series, number))
            p = st.payments.get(doc.get("payment"))
            if p is not None:
                self.drop_payment(p)
            st.remove(doc)
        return 200, {"errorText": "", "message": "Chitanta cu seria si numarul %s%s a fost "
                     "stearsa cu succes." % (series, number), "number": "", "series": ""}, True

    def delete_payment(self, kind, split, raw, entry):
        """A payment other than a receipt: by its invoice (paymentType,
        invoiceSeries, invoiceNumber), or by paymentDate, paymentValue,
        clientName, clientCif."""
        st = self.server.state
        q = self.query(split)
        if not q.get("cif"):
            raise invalid("Cif trebuie specificat.")
        self.check_cif(q["cif"])
        ptype = q.get("paymentType")
        if not ptype:
            raise invalid("Tipul incasarii (paymentType) trebuie specificat.")
        by_invoice = "invoiceSeries" in q or "invoiceNumber" in q
        if by_invoice and not q.get("invoiceSeries"):
            raise invalid("Seria facturii (invoiceSeries) trebuie specificata pentru "
                          "identificarea incasarii.")
        if by_invoice and not q.get("invoiceNumber"):
            raise invalid("Numarul facturii (invoiceNumber) trebuie specificat pentru "
                          "identificarea incasarii.")
        if not by_invoice and not (q.get("paymentDate") and q.get("paymentValue")):
            raise invalid("Trebuie specificate seria si numarul facturii sau data si valoarea "
                          "incasarii.")
        with st.lock:
            found = []
            for p in st.payments.values():
                if p["type"] != ptype or p["receipt"] is not None:
                    continue
                if by_invoice:
                    if any((a["series"], a["number"]) == (q["invoiceSeries"], q["invoiceNumber"])
                           for a in p["allocations"]):
                        found.append(p)
                elif p["issueDate"] == q["paymentDate"] and \
                        abs(p["value"] - float(q["paymentValue"])) < 0.005:
                    found.append(p)
            if not found:
                raise SbError("Incasarea nu a fost gasita!")  # wording assumed
            for p in found:
                self.drop_payment(p)
        return 200, {"errorText": "", "message": "", "number": "", "series": ""}, True

    # --- configuration reads ------------------------------------------------

    def get_series(self, kind, split, raw, entry):
        st = self.server.state
        q = self.query(split)
        if not q.get("cif"):
            raise invalid("Ciful firmei trebuie specificat!")
        self.check_cif(q["cif"])
        t = q.get("type")
        if t and t not in KINDS:
            raise invalid("Tipul documentului nu poate fi %s! Parametrul type poate lua valorile: "
                          "'f' pentru factura, 'p' pentru proforma si 'c' pentru chitanta." % t)
        with st.lock:
            lst = [{"name": s["name"], "nextNumber": st.fmt(s["next"]), "type": s["type"]}
                   for s in st.series.values() if not t or s["type"] == t]
        return 200, {"errorText": "", "message": "", "list": lst}, False

    def get_taxes(self, kind, split, raw, entry):
        st = self.server.state
        q = self.query(split)
        if not q.get("cif"):
            raise invalid("Ciful firmei trebuie specificat!")
        self.check_cif(q["cif"])
        with st.lock:
            return 200, {"errorText": "", "message": "", "taxes": copy.deepcopy(st.taxes)}, False

    def send_document(self, kind, split, raw, entry):
        """Reports through status.code (0 ok, 1 data error), as the
        reference says; subject and bodyText must be base64."""
        st = self.server.state
        body = self.json_body(raw, entry, "send")
        self.check_cif(body["companyVatCode"])
        for k in ("subject", "bodyText"):
            if body.get(k):
                try:
                    base64.b64decode(body[k], validate=True)
                except ValueError:
                    self.mark_invalid(entry, "%s is not base64" % k)
                    return 200, {"status": {"code": "1", "message": "Campul %s trebuie codat "
                                            "base64." % k}}, False
        kind = {"factura": "invoice", "proforma": "estimate"}.get(
            str(body.get("type", "factura")).lower(), "invoice")
        with st.lock:
            if (kind, body.get("seriesName"), body.get("number")) not in st.docs:
                return 200, {"status": {"code": "1", "message": "Documentul nu a fost gasit."}}, \
                    False
            st.emails.append(copy.deepcopy(body))
            st.count("emails")
        return 200, {"status": {"code": "0", "message": "Documentul a fost trimis cu succes."}}, \
            True

    # --- the control API ----------------------------------------------------

    def docs_of(self, kind, q):
        st = self.server.state
        with st.lock:
            out = [st.view(d) for d in sorted(st.docs.values(),
                                              key=lambda d: d["documentId"]) if d["kind"] == kind]
            if q.get("deleted") == "1":
                out += [st.view(d) for d in st.deleted if d["kind"] == kind]
        if q.get("series"):
            out = [d for d in out if d["series"] == q["series"]]
        return out

    def ctl_get_invoices(self, arg, q):
        """?series=NAME, ?deleted=1 (also deleted ones, "deleted": true)."""
        return 200, self.docs_of("invoice", q)

    def ctl_get_estimates(self, arg, q):
        return 200, self.docs_of("estimate", q)

    def ctl_get_receipts(self, arg, q):
        return 200, self.docs_of("receipt", q)

    def ctl_get_payments(self, arg, q):
        st = self.server.state
        with st.lock:
            return 200, [copy.deepcopy(p) for p in st.payments.values()]

    def ctl_get_emails(self, arg, q):
        st = self.server.state
        with st.lock:
            return 200, copy.deepcopy(st.emails)

    def ctl_get_series(self, arg, q):
        st = self.server.state
        with st.lock:
            return 200, [{"name": s["name"], "type": s["type"], "nextNumber": st.fmt(s["next"]),
                          "next": s["next"]} for s in st.series.values()]

    def ctl_post_series(self, arg, q):
        """{"name", "type"?: f|p|c (needed for a new series), "nextNumber"?:
        int or "0042"}: creates a series or sets where it goes on, as a
        person does under Configurare > Serii documente."""
        st = self.server.state
        name = str(arg["name"])
        with st.lock:
            s = st.series.get(name)
            if s is None:
                t = arg.get("type")
                if t not in KINDS:
                    raise ValueError("a new series needs type f, p or c")
                s = st.series[name] = {"name": name, "type": t, "next": 1}
            elif arg.get("type") not in (None, s["type"]):
                raise ValueError("series %s is of type %s" % (name, s["type"]))
            if "nextNumber" in arg:
                n = int(arg["nextNumber"])
                if n < 1:
                    raise ValueError("nextNumber must be >= 1")
                s["next"] = n
            return 200, {"name": name, "type": s["type"], "nextNumber": st.fmt(s["next"])}

    def ctl_post_issue(self, arg, q):
        """Someone issues documents in the SmartBill UI: {"series", "count"?:
        1, "total"?: 100, "body"?: {...}}. Each takes the series' next
        number; concord's next call gets the number after. Answers
        {"issued": [{"series", "number"}]}."""
        st = self.server.state
        series = str(arg["series"])
        count = int(arg.get("count", 1))
        if not 1 <= count <= 1000:
            raise ValueError("count must be within 1..1000")
        out = []
        with st.lock:
            s = st.series.get(series)
            if s is None:
                return 404, {"error": "no series %s" % series}
            kind = KINDS[s["type"]]
            for _ in range(count):
                try:
                    num = st.allocate(series)
                except SbError as e:
                    return 409, {"error": e.text, "issued": out}
                body = dict(arg.get("body") or {"companyVatCode": self.server.opts.cif,
                                                "seriesName": series,
                                                "client": {"name": "Client UI"}})
                body.setdefault("issueDate", simbase.today())
                doc = st.new_doc(kind, series, num, body, "person", None)
                doc["total"] = money(float(arg.get("total", 100)), doc["precision"])
                st.stats["person_issued"] += 1
                out.append({"series": series, "number": num, "kind": kind})
        return 200, {"issued": out}

    def person_doc(self, arg):
        st = self.server.state
        kind = arg.get("kind", "invoice")
        doc = st.docs.get((kind, str(arg["series"]), str(arg["number"])))
        if doc is None:
            raise KeyError("no %s %s %s" % (kind, arg["series"], arg["number"]))
        return doc

    def ctl_post_pay(self, arg, q):
        """A person records a collection in the UI: {"series", "number",
        "value"?: what is owed, "type"?: "Ordin plata"}."""
        st = self.server.state
        with st.lock:
            doc = self.person_doc(dict(arg, kind="invoice"))
            value = float(arg.get("value", max(0.0, doc["total"] - doc["paid"])))
            p = self.record_payment({"type": arg.get("type", "Ordin plata"), "value": value,
                                     "issueDate": simbase.today()}, [(doc, value)], None, None)
            p["source"] = "person"
            return 200, {"payment": copy.deepcopy(p), "invoice": st.view(doc)}

    def ctl_post_cancel(self, arg, q):
        """A person cancels (or with "restore": true restores) a document:
        {"series", "number", "kind"?: invoice|estimate}."""
        st = self.server.state
        with st.lock:
            doc = self.person_doc(arg)
            doc["canceled"] = not arg.get("restore", False)
            return 200, st.view(doc)

    def ctl_post_delete(self, arg, q):
        """A person deletes a document, last of its series or not."""
        st = self.server.state
        with st.lock:
            doc = self.person_doc(arg)
            st.remove(doc)
            return 200, {"deleted": True}

    def ctl_post_rate_limit(self, arg, q):
        """{"limit"?, "window_s"?, "block_s"?, "mode"?}: changes the limiter
        (and starts its count afresh); the block history stays."""
        st = self.server.state
        with st.lock:
            lim = st.limiter
            lim.configure(int(arg.get("limit", lim.limit)),
                          float(arg.get("window_s", lim.window_s)),
                          float(arg.get("block_s", lim.block_s)), arg.get("mode", lim.mode))
            return 200, lim.view(time.monotonic())

    def ctl_post_unblock(self, arg, q):
        st = self.server.state
        with st.lock:
            st.limiter.unblock()
            return 200, st.limiter.view(time.monotonic())

    def ctl_post_settings(self, arg, q):
        """{"business_error_status": 200 | 400}: how refused actions come."""
        st = self.server.state
        with st.lock:
            if "business_error_status" in arg:
                v = int(arg["business_error_status"])
                if v not in (200, 400):
                    raise ValueError("business_error_status must be 200 or 400")
                st.business_status = v
            return 200, {"business_error_status": st.business_status}


def parse_args(argv):
    p = argparse.ArgumentParser(description="a SmartBill Cloud account for concord tests")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--email", default="api@concord.test", help="the Basic auth user")
    p.add_argument("--token", default="sb-token-0123456789abcdef", help="the Basic auth token")
    p.add_argument("--cif", default="RO12345678", help="the company's VAT code (companyVatCode)")
    p.add_argument("--series", default="f:FCT:1,p:PF:1,c:CH:1",
                   help="TYPE:NAME[:NEXT],... with TYPE f (invoice), p (proforma), c (receipt)")
    p.add_argument("--number-width", type=int, default=4, help='numbers are zero-padded: "0001"')
    p.add_argument("--taxes", default="Normala:21,Redusa:11,Taxare inversa:0,SDD:0,SFDD:0",
                   help="NAME:PERCENT,... the VAT rates of the account")
    p.add_argument("--no-vat-payer", dest="vat_payer", action="store_false",
                   help="the company does not pay VAT (no tax check on products)")
    p.add_argument("--require-product-code", action="store_true",
                   help='products must carry "code" (the account uses product codes)')
    p.add_argument("--rate-limit", type=int, default=30, help="calls per window; 0 turns it off")
    p.add_argument("--rate-window-s", type=float, default=10.0)
    p.add_argument("--block-s", type=float, default=600.0,
                   help="how long the 403 block lasts (SmartBill: 10 minutes)")
    p.add_argument("--rate-mode", choices=("sliding", "fixed"), default="sliding")
    p.add_argument("--business-error-status", type=int, choices=(200, 400), default=200,
                   help="the status of a refused action (errorText set)")
    p.add_argument("--invalid-status", type=int, default=400,
                   help="the status of a malformed request (errorText set)")
    p.add_argument("--swagger", default=None, help="smartbill-swagger.json (default: found "
                   "beside the repository, or $CONCORD_SMARTBILL_SWAGGER)")
    p.add_argument("--verbose", action="store_true")
    opts = p.parse_args(argv)
    try:
        parse_series(opts.series)
        parse_taxes(opts.taxes)
    except ValueError as e:
        p.error(str(e))
    if not opts.swagger:
        places = [os.environ.get("CONCORD_SMARTBILL_SWAGGER")] + list(SWAGGER_PLACES)
        opts.swagger = next((x for x in places if x and os.path.exists(x)), None)
    if not opts.swagger or not os.path.exists(opts.swagger):
        p.error("the SmartBill Swagger is needed to validate requests: give --swagger PATH")
    return opts


def main(argv):
    opts = parse_args(argv)
    schemas = load_schemas(opts.swagger, opts.require_product_code)

    def hook(server):
        server.schemas = schemas

    return simbase.serve(opts, Handler, State(opts), hook)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
