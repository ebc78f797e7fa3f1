# SPDX-License-Identifier: MIT
"""tests/sims/oblio.py for e2e tests: OblioSim starts and stops it like
harness.Sim and speaks its REST API (OAuth2 client credentials, then Bearer,
JSON under /api) and its control API (/_sim/...); OblioEndpoint is a
webhook receiver that answers Oblio's handshake. Standard library only.

    sim = OblioSim(token_ttl_s=60)
    data = sim.create_doc(idempotencyKey="order-17")   # {"seriesName", "number", "link"}
    hook = OblioEndpoint()                             # or concord's webhook URL
    sim.register_webhook(hook.url + "/hooks/oblio", topic="Invoice/*")
    sim.person_change(seriesName="FCT", number="0001", action="cancel", wait=True)
    sim.assert_clean()                                 # no malformed request

A concord config points its Oblio base URL at sim.url (the API lives under
/api, the token at /api/authorize/token) and uses sim.email / sim.secret /
sim.cif.
"""

import base64
import http.server
import json
import os
import threading
import urllib.parse

import harness
from smartbill_harness import start_script

OBLIO = os.path.join(harness.REPO, "tests", "sims", "oblio.py")
EMAIL = "api@concord.test"
SECRET = "oblio-secret-e2e-5b8d"
CIF = "RO37311090"


class OblioSim(harness.Sim):
    """tests/sims/oblio.py in a subprocess. Keyword arguments become its
    flags (token_ttl_s=2 -> --token-ttl-s 2, token_delay_ms=300,
    webhook_attempts=1, ...)."""

    def __init__(self, port=0, start=True, email=EMAIL, secret=SECRET, cif=CIF, **flags):
        self.email, self.secret, self.cif = email, secret, cif
        self._token = None
        flags.update(email=email, secret=secret, cif=cif)
        super().__init__(port, start=start, **flags)

    def start(self):
        return start_script(self, OBLIO, "oblio")

    # --- the REST API ---

    def token_request(self, json_body=False, client_id=None, client_secret=None, extra=None):
        """POST /api/authorize/token (form-encoded, or JSON); (status, body)."""
        form = {"client_id": self.email if client_id is None else client_id,
                "client_secret": self.secret if client_secret is None else client_secret,
                "grant_type": "client_credentials"}
        form.update(extra or {})
        if json_body:
            st, body, _ = harness.http_request(self.port, "POST", "/api/authorize/token", form)
        else:
            st, body, _ = harness.http_request(
                self.port, "POST", "/api/authorize/token", urllib.parse.urlencode(form),
                {"Content-Type": "application/x-www-form-urlencoded"})
        return st, body

    def access_token(self, fresh=False):
        if fresh or self._token is None:
            st, body = self.token_request()
            if st != 200:
                raise AssertionError("token request answered %d: %r" % (st, body))
            self._token = body["access_token"]
        return self._token

    def api(self, method, path, body=None, query=None, token=True, headers=None, timeout=10):
        """One request to /api/PATH ("docs/invoice", "docs/invoice/list",
        ...); token True: a cached token (fetched when missing), a string:
        that token, None: no Authorization. Returns (status, body, headers)."""
        h = {"Accept": "application/json"}
        if token is True:
            token = self.access_token()
        if token:
            h["Authorization"] = "Bearer " + token
        h.update(headers or {})
        p = "/api/" + path.lstrip("/")
        if query:
            p += "?" + urllib.parse.urlencode(query)
        return harness.http_request(self.port, method, p, body, h, timeout)

    def invoice_body(self, **over):
        body = {"cif": self.cif,
                "client": {"cif": "RO16", "name": "Ada Lovelace SRL", "address": "Str. M 28",
                           "state": "Cluj", "city": "Cluj-Napoca", "country": "Romania",
                           "email": "ada@example.ro", "vatPayer": 1},
                "issueDate": "2026-01-24", "dueDate": "", "seriesName": "FCT", "language": "RO",
                "precision": 2, "currency": "RON", "collect": [],
                "products": [{"name": "Abonament", "code": "", "description": "",
                              "price": "100", "measuringUnit": "buc", "currency": "RON",
                              "vatName": "Normala", "vatPercentage": 21, "vatIncluded": 1,
                              "quantity": 2, "productType": "Serviciu"}]}
        body.update(over)
        return body

    def create_doc(self, type="invoice", **over):
        """POST /api/docs/TYPE with invoice_body(**over); asserts 200;
        returns data ({"seriesName", "number", "link", ...})."""
        st, out, _ = self.api("POST", "docs/" + type, self.invoice_body(**over))
        if st != 200:
            raise AssertionError("create %s answered %d: %r" % (type, st, out))
        return out["data"]

    # --- the control API ---

    def documents(self, type=None, deleted=False):
        q = []
        if type:
            q.append("type=" + type)
        if deleted:
            q.append("deleted=1")
        return self._ctl("GET", "documents" + ("?" + "&".join(q) if q else ""))

    def clients(self):
        return self._ctl("GET", "clients")

    def tokens(self):
        return self._ctl("GET", "tokens")

    def series_list(self):
        return self._ctl("GET", "series")

    def set_series(self, name, type="invoice", next=None):
        arg = {"name": name, "type": type}
        if next is not None:
            arg["next"] = next
        return self._ctl("POST", "series", arg)

    def person_create(self, type="invoice", body=None, wait=False):
        return self._ctl("POST", "create", {"type": type, "body": body or {}, "wait": wait})

    def person_change(self, seriesName, number, action, type="invoice", wait=False, **more):
        arg = {"type": type, "seriesName": seriesName, "number": number, "action": action,
               "wait": wait}
        arg.update(more)
        return self._ctl("POST", "change", arg)

    def card_confirmed(self, seriesName, number, wait=False):
        return self._ctl("POST", "card_confirmed", {"seriesName": seriesName, "number": number,
                                                    "wait": wait})

    def emit(self, topic, data=None, wait=False):
        return self._ctl("POST", "emit", {"topic": topic, "data": data or {}, "wait": wait})

    def webhooks(self):
        return self._ctl("GET", "webhooks")

    def register_webhook(self, url, topic="*", force=False):
        """Oblio sends the handshake to url; {"verified", "webhook", "attempt"}."""
        return self._ctl("POST", "webhooks/register", {"url": url, "topic": topic,
                                                       "force": force})

    def delete_webhook(self, wid):
        return self._ctl("POST", "webhooks/delete", {"id": wid})

    def deliveries(self, since=0):
        return self._ctl("GET", "deliveries?since=%d" % since)

    def webhook_settings(self, **kw):
        return self._ctl("POST", "webhook_settings", kw)

    def send_raw(self, url, body, request_id=None):
        arg = {"url": url, "body": body}
        if request_id:
            arg["request_id"] = request_id
        return self._ctl("POST", "send_raw", arg)

    def wait_delivered(self, timeout=10):
        harness.wait_until(lambda: self.stats()["webhooks"]["pending"] == 0, timeout,
                           "the oblio sim to have no webhook pending")

    def invalid_requests(self):
        return self._ctl("GET", "requests?invalid=1")

    def assert_clean(self):
        bad = self.invalid_requests()
        if bad:
            raise AssertionError("malformed Oblio requests: %s"
                                 % json.dumps([{"path": r["path"], "invalid": r["invalid"]}
                                               for r in bad])[:2000])


class OblioEndpoint:
    """A webhook receiver on a free port that answers as Oblio asks: 200
    with base64(X-Oblio-Request-Id). mode "wrong" answers 200 with another
    body; an int answers that status. .got(): method, path, headers
    (lower-case names), body (bytes), json (parsed or None)."""

    def __init__(self, mode="echo"):
        outer = self
        self.mode = mode
        self.lock = threading.Lock()
        self.received = []

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                try:
                    parsed = json.loads(body)
                except ValueError:
                    parsed = None
                with outer.lock:
                    outer.received.append({"method": "POST", "path": self.path, "body": body,
                                           "headers": {k.lower(): v
                                                       for k, v in self.headers.items()},
                                           "json": parsed})
                    mode = outer.mode
                rid = self.headers.get("X-Oblio-Request-Id") or ""
                status, data = 200, base64.b64encode(rid.encode())
                if mode == "wrong":
                    data = b"ok"
                elif isinstance(mode, int):
                    status, data = mode, b"no"
                self.send_response(status)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class S(http.server.ThreadingHTTPServer):
            daemon_threads = True

        self.server = S(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        harness.cleanup(self)

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
