# SPDX-License-Identifier: MIT
"""tests/sims/smartbill.py for e2e tests: SmartBillSim starts and stops it
like harness.Sim and speaks its REST API (Basic email:token, JSON under
/SBORO/api) and its control API (/_sim/...). Standard library only.

    sim = SmartBillSim(rate_limit=30)            # one company account
    out = sim.create_invoice(client={"name": "Ada SRL", ...})
    sim.invoices()                               # what concord issued
    sim.person_issue("FCT")                      # someone used the UI
    sim.assert_clean()                           # no malformed request, no 403 block

A concord config points its SmartBill base URL at sim.base_url and uses
sim.email / sim.token / sim.cif.
"""

import base64
import json
import os
import re
import subprocess
import threading
import urllib.parse

import harness

SMARTBILL = os.path.join(harness.REPO, "tests", "sims", "smartbill.py")
EMAIL = "api@concord.test"
TOKEN = "sb-token-e2e-4f7a9c"
CIF = "RO12345678"
BASE = "/SBORO/api"


def start_script(sim, script, label):
    """Starts `script --port P --flag value...` (sim.flags as harness.Sim
    turns them into flags) and waits for "ready PORT"."""
    args = [harness.PYTHON, script, "--port", str(sim.port)]
    for k, v in sim.flags.items():
        if v is None or v is False:
            continue
        args.append("--" + k.replace("_", "-"))
        if v is not True:
            args.append(str(v))
    sim.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                preexec_fn=harness._die_with_parent)
    line = [None]

    def read():
        line[0] = sim.proc.stdout.readline().decode()

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(10)
    m = re.match(r"ready (\d+)", line[0] or "")
    if not m:
        sim.stop()
        raise AssertionError("%s sim %s did not start (said %r)"
                             % (label, " ".join(args[1:]), line[0]))
    sim.port = int(m.group(1))
    return sim


class SmartBillSim(harness.Sim):
    """tests/sims/smartbill.py in a subprocess. Keyword arguments become its
    flags (rate_limit=5 -> --rate-limit 5, block_s=1, series="f:FCT:1",
    business_error_status=400, ...)."""

    def __init__(self, port=0, start=True, email=EMAIL, token=TOKEN, cif=CIF, **flags):
        self.email, self.token, self.cif = email, token, cif
        flags.update(email=email, token=token, cif=cif)
        super().__init__(port, start=start, **flags)

    def start(self):
        return start_script(self, SMARTBILL, "smartbill")

    @property
    def base_url(self):
        return self.url + BASE

    def auth(self, email=None, token=None):
        pair = "%s:%s" % (self.email if email is None else email,
                          self.token if token is None else token)
        return "Basic " + base64.b64encode(pair.encode()).decode()

    # --- the REST API ---

    def api(self, method, path, body=None, query=None, auth=True, headers=None, timeout=10):
        """One request to /SBORO/api/PATH (path like "invoice" or
        "invoice/paymentstatus"); query: a dict; auth True sends the sim's
        credentials, a string sends that Authorization, None none. Returns
        (status, body, headers with lower-case names)."""
        h = {"Accept": "application/json"}
        if auth is True:
            h["Authorization"] = self.auth()
        elif auth:
            h["Authorization"] = auth
        h.update(headers or {})
        p = BASE + "/" + path.lstrip("/")
        if query:
            p += "?" + urllib.parse.urlencode(query)
        return harness.http_request(self.port, method, p, body, h, timeout)

    def doc_query(self, series, number, **more):
        q = {"cif": self.cif, "seriesname": series, "number": number}
        q.update(more)
        return q

    def invoice_body(self, **over):
        """A valid invoice (or proforma) body: one product at 21 % VAT."""
        body = {"companyVatCode": self.cif,
                "client": {"name": "Ada Lovelace SRL", "vatCode": "RO16", "isTaxPayer": True,
                           "address": "Str. Memorandumului 28", "city": "Cluj-Napoca",
                           "county": "Cluj", "country": "Romania", "email": "ada@example.ro",
                           "saveToDb": False},
                "issueDate": "2026-01-24", "seriesName": "FCT", "currency": "RON",
                "products": [{"name": "Abonament", "code": "AB1", "measuringUnitName": "buc",
                              "currency": "RON", "quantity": 1, "price": 121,
                              "isTaxIncluded": True, "taxName": "Normala", "taxPercentage": 21,
                              "isService": True, "saveToDb": False}]}
        body.update(over)
        return body

    def create_invoice(self, path="invoice", **over):
        """POST /invoice (or path) with invoice_body(**over); asserts a 200
        with an empty errorText; returns the answer."""
        st, out, _ = self.api("POST", path, self.invoice_body(**over))
        if st != 200 or not isinstance(out, dict) or out.get("errorText"):
            raise AssertionError("POST %s answered %d: %r" % (path, st, out))
        return out

    # --- the control API ---

    def _docs(self, what, series=None, deleted=False):
        q = []
        if series:
            q.append("series=" + urllib.parse.quote(series))
        if deleted:
            q.append("deleted=1")
        return self._ctl("GET", what + ("?" + "&".join(q) if q else ""))

    def invoices(self, series=None, deleted=False):
        """Every invoice held: number, series, canceled, paid, unpaid,
        paymentStatus, total, source (api | person), body, ..."""
        return self._docs("invoices", series, deleted)

    def estimates(self, series=None, deleted=False):
        return self._docs("estimates", series, deleted)

    def receipts(self, series=None, deleted=False):
        return self._docs("receipts", series, deleted)

    def payments(self):
        return self._ctl("GET", "payments")

    def series_list(self):
        return self._ctl("GET", "series")

    def next_number(self, series):
        return next(s["nextNumber"] for s in self.series_list() if s["name"] == series)

    def set_series(self, name, next_number=None, type=None):
        arg = {"name": name}
        if next_number is not None:
            arg["nextNumber"] = next_number
        if type is not None:
            arg["type"] = type
        return self._ctl("POST", "series", arg)

    def person_issue(self, series, count=1, total=None, body=None):
        """Someone issues documents in the SmartBill UI: the series moves on."""
        arg = {"series": series, "count": count}
        if total is not None:
            arg["total"] = total
        if body is not None:
            arg["body"] = body
        return self._ctl("POST", "issue", arg)["issued"]

    def person_pay(self, series, number, value=None, type=None):
        arg = {"series": series, "number": number}
        if value is not None:
            arg["value"] = value
        if type is not None:
            arg["type"] = type
        return self._ctl("POST", "pay", arg)

    def person_cancel(self, series, number, kind="invoice", restore=False):
        return self._ctl("POST", "cancel", {"series": series, "number": number, "kind": kind,
                                            "restore": restore})

    def person_delete(self, series, number, kind="invoice"):
        return self._ctl("POST", "delete", {"series": series, "number": number, "kind": kind})

    def rate_limit(self, **kw):
        """limit=, window_s=, block_s=, mode="sliding" | "fixed"."""
        return self._ctl("POST", "rate_limit", kw)

    def unblock(self):
        return self._ctl("POST", "unblock", {})

    def settings(self, **kw):
        return self._ctl("POST", "settings", kw)

    def invalid_requests(self):
        return self._ctl("GET", "requests?invalid=1")

    def assert_clean(self):
        """No malformed request was sent and the rate limit never blocked."""
        bad = self.invalid_requests()
        if bad:
            raise AssertionError("malformed SmartBill requests: %s"
                                 % json.dumps([{"path": r["path"], "invalid": r["invalid"]}
                                               for r in bad])[:2000])
        rl = self.stats()["rate_limit"]
        if rl["blocked_ever"]:
            raise AssertionError("the SmartBill rate limit blocked: %r" % rl)
