# SPDX-License-Identifier: MIT
"""tests/sims/graph.py for e2e tests: GraphSim starts and stops it like
harness.Sim and speaks its Graph API (Bearer tokens it grants itself), its
OAuth endpoints and its control API (/_sim/...); Receiver plays a
notification endpoint that answers Graph's validationToken handshake.
Standard library only.

    sim = GraphSim(seed=7)
    rx = Receiver()
    ev = sim.create_event({"subject": "Visit", "start": {...}, "end": {...},
                           "transactionId": "job-42"})
    items, link = sim.delta_all(start="2026-01-01T00:00:00Z", end="2026-12-31T00:00:00Z")
    sub = sim.subscribe(rx.url + "/hooks/graph", client_state="s3cret")
    sim.person_update(ev["id"], {"subject": "Moved"})   # a notification to rx
"""

import http.server
import json
import os
import re
import subprocess
import threading
import time
import urllib.parse

import harness

GRAPH = os.path.join(harness.REPO, "tests", "sims", "graph.py")


class GraphSim(harness.Sim):
    """tests/sims/graph.py in a subprocess. Keyword arguments become its
    flags (seed=7, mailbox_concurrency=0, subscription_min_minutes=0...)."""

    def __init__(self, port=0, start=True, **flags):
        self.access_token = None
        super().__init__(port, start=start, **flags)

    def start(self):
        args = [harness.PYTHON, GRAPH, "--port", str(self.port)]
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
            raise AssertionError("graph sim %s did not start (said %r)"
                                 % (" ".join(args[1:]), line[0]))
        self.port = int(m.group(1))
        return self

    # --- where concord points ---

    def token_url(self, tenant="common"):
        return "%s/%s/oauth2/v2.0/token" % (self.url, tenant)

    def auth_url(self, tenant="common"):
        return "%s/%s/oauth2/v2.0/authorize" % (self.url, tenant)

    @property
    def api_base(self):
        return self.url + "/v1.0"

    # --- OAuth ---

    def grant(self, app=False, scope=None):
        arg = {"app": app}
        if scope:
            arg["scope"] = scope
        out = self._ctl("POST", "grant", arg)
        self.access_token = out["access_token"]
        return out

    def token_request(self, form, tenant="common"):
        return harness.http_request(self.port, "POST", "/%s/oauth2/v2.0/token" % tenant,
                                    urllib.parse.urlencode(form),
                                    {"Content-Type": "application/x-www-form-urlencoded"})

    def authorize(self, url, follow=True):
        """As gcal_harness.GcalSim.authorize."""
        u = urllib.parse.urlsplit(url)
        st, body, h = harness.http_request(self.port, "GET", u.path + "?" + u.query)
        if st != 302:
            raise AssertionError("authorize answered %d: %r" % (st, body))
        loc = h["location"]
        if not follow:
            return loc
        lu = urllib.parse.urlsplit(loc)
        return harness.http_request(lu.port or 80, "GET", lu.path + "?" + lu.query,
                                    host=lu.hostname)

    # --- the Graph API ---

    def api(self, method, path, body=None, token=True, headers=None, prefer=None, timeout=10):
        """One request; path under /v1.0 ("me/events") or absolute, or a
        full http://127.0.0.1:PORT/... link. prefer: a list of Prefer
        values. Returns (status, body, headers)."""
        h = dict(headers or {})
        if token is True:
            if self.access_token is None:
                self.grant()
            token = self.access_token
        if token:
            h["Authorization"] = "Bearer " + token
        if prefer:
            h["Prefer"] = ", ".join(prefer)
        if path.startswith("http"):
            u = urllib.parse.urlsplit(path)
            path = u.path + ("?" + u.query if u.query else "")
        elif not path.startswith("/"):
            path = "/v1.0/" + path
        return harness.http_request(self.port, method, path, body, h, timeout)

    def _ok(self, method, path, body=None, want=200, **kw):
        st, out, _ = self.api(method, path, body, **kw)
        if st != want:
            raise AssertionError("%s %s answered %d: %r" % (method, path, st, out))
        return out

    def create_event(self, event, path="me/events", **kw):
        return self._ok("POST", path, event, want=201, **kw)

    def get_event(self, eid, **kw):
        return self._ok("GET", "me/events/" + urllib.parse.quote(eid, safe=""), **kw)

    def patch_event(self, eid, fields, **kw):
        return self._ok("PATCH", "me/events/" + urllib.parse.quote(eid, safe=""), fields, **kw)

    def delete_event(self, eid):
        return self._ok("DELETE", "me/events/" + urllib.parse.quote(eid, safe=""), want=204)

    def view(self, start, end, path="me/calendarView", **kw):
        """Every event of a calendarView window (all pages)."""
        url = "%s?startDateTime=%s&endDateTime=%s" % (path, start, end)
        out = []
        for _ in range(1000):
            page = self._ok("GET", url, **kw)
            out += page["value"]
            if "@odata.nextLink" not in page:
                return out
            url = page["@odata.nextLink"]
        raise AssertionError("calendarView did not end")

    def delta_all(self, link=None, start=None, end=None, path="me/calendarView/delta",
                  maxpagesize=None, **kw):
        """One delta round: from link (a deltaLink), or the first request for
        the window; follows every nextLink. Returns (entries,
        deltaLink)."""
        url = link or "%s?startDateTime=%s&endDateTime=%s" % (path, start, end)
        prefer = list(kw.pop("prefer", None) or [])
        if maxpagesize:
            prefer.append("odata.maxpagesize=%d" % maxpagesize)
        out = []
        for _ in range(10000):
            page = self._ok("GET", url, prefer=prefer, **kw)
            out += page["value"]
            if "@odata.deltaLink" in page:
                return out, page["@odata.deltaLink"]
            url = page["@odata.nextLink"]
        raise AssertionError("delta round did not end")

    def subscribe(self, url, client_state=None, resource="me/events",
                  change_type="created,updated,deleted", minutes=60, lifecycle_url=None):
        body = {"changeType": change_type, "notificationUrl": url, "resource": resource,
                "expirationDateTime": iso_in(minutes * 60)}
        if client_state is not None:
            body["clientState"] = client_state
        if lifecycle_url:
            body["lifecycleNotificationUrl"] = lifecycle_url
        return self._ok("POST", "subscriptions", body, want=201)

    def renew(self, sub_id, minutes=60):
        return self._ok("PATCH", "subscriptions/" + sub_id,
                        {"expirationDateTime": iso_in(minutes * 60)})

    def unsubscribe(self, sub_id):
        return self._ok("DELETE", "subscriptions/" + sub_id, want=204)

    # --- the control API ---

    def events(self, calendar=None, start=None, end=None):
        q = []
        if calendar:
            q.append("calendar=" + urllib.parse.quote(calendar, safe=""))
        if start:
            q += ["start=" + urllib.parse.quote(start), "end=" + urllib.parse.quote(end)]
        return self._ctl("GET", "events" + ("?" + "&".join(q) if q else ""))

    def calendars(self):
        return self._ctl("GET", "calendars")

    def person_create(self, event, calendar=None, notify=True):
        return self._ctl("POST", "create", {"event": event, "calendar": calendar,
                                            "notify": notify})["event"]

    def person_update(self, eid, fields, notify=True):
        return self._ctl("POST", "update", {"id": eid, "fields": fields,
                                            "notify": notify})["event"]

    def person_move(self, eid, minutes=None, start=None, end=None):
        arg = {"id": eid}
        for k, v in (("minutes", minutes), ("start", start), ("end", end)):
            if v is not None:
                arg[k] = v
        return self._ctl("POST", "move", arg)["event"]

    def person_cancel(self, eid, keep=False, notify=True):
        return self._ctl("POST", "cancel", {"id": eid, "keep": keep, "notify": notify})["event"]

    def person_respond(self, eid, email, response):
        return self._ctl("POST", "respond", {"id": eid, "email": email,
                                             "response": response})["event"]

    def invalidate_delta(self, status=410):
        return self._ctl("POST", "invalidate_delta", {"status": status})

    def expire_access(self):
        return self._ctl("POST", "expire_access", {})

    def revoke(self, token=None):
        return self._ctl("POST", "revoke", {"token": token} if token else {})

    def oauth(self, **settings):
        return self._ctl("POST", "oauth", settings)

    def throttle(self, **settings):
        return self._ctl("POST", "throttle", settings)

    def notifications(self, **settings):
        return self._ctl("POST", "notifications", settings)

    def deliveries(self, since=0):
        return self._ctl("GET", "deliveries?since=%d" % since)

    def subscriptions(self):
        return self._ctl("GET", "subscriptions")

    def live_subscriptions(self):
        return [s for s in self.subscriptions() if s["live"]]

    def expire_subscriptions(self, sub_id=None):
        return self._ctl("POST", "expire_subscriptions", {"id": sub_id} if sub_id else {})

    def lifecycle(self, sub_id, event):
        return self._ctl("POST", "lifecycle", {"id": sub_id, "event": event})

    def validations(self):
        return self._ctl("GET", "validations")

    def wait_notifications(self, timeout=10):
        if not self._ctl("POST", "wait_notifications", {"timeout_s": timeout})["idle"]:
            raise AssertionError("graph sim notifications still pending after %gs" % timeout)

    def tokens(self):
        return self._ctl("GET", "tokens")


def iso_in(seconds):
    return time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime(time.time() + seconds))


class Receiver:
    """A notification endpoint on a free port: answers Graph's handshake
    (POST ?validationToken=T) as `validation` says — "echo" (200,
    text/plain, T), "wrong" (another body), "json" (T as JSON), "500", or
    "slow:SECONDS" (echo after a sleep) — and every other request with
    `status` (202). .got() lists what arrived: method, path, query,
    headers (lower-case), body (parsed JSON or text)."""

    def __init__(self, validation="echo", status=202):
        outer = self
        self.validation = validation
        self.status = status
        self.lock = threading.Lock()
        self.received = []

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                u = urllib.parse.urlsplit(self.path)
                q = dict(urllib.parse.parse_qsl(u.query))
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                with outer.lock:
                    outer.received.append({"method": self.command, "path": self.path,
                                           "query": q, "headers": {k.lower(): v for k, v in
                                                                   self.headers.items()},
                                           "body": body})
                    mode, status = outer.validation, outer.status
                if "validationToken" in q:
                    tok = q["validationToken"]
                    if mode.startswith("slow:"):
                        time.sleep(float(mode[5:]))
                        mode = "echo"
                    if mode == "500":
                        self.answer(500, b"no", "text/plain")
                    elif mode == "json":
                        self.answer(200, json.dumps(tok).encode(), "application/json")
                    elif mode == "wrong":
                        self.answer(200, b"not the token", "text/plain")
                    else:
                        self.answer(200, tok.encode(), "text/plain; charset=utf-8")
                    return
                self.answer(status, b"", None)

            do_GET = do_PUT = do_PATCH = do_DELETE = do_POST

            def answer(self, status, data, ctype):
                try:
                    self.send_response(status)
                    if ctype:
                        self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionError):
                    self.close_connection = True  # the sender gave up (a slow answer)

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

    def notifications(self):
        """The change notifications received (not the handshakes), in order:
        the items of every body's "value"."""
        return [n for r in self.got() if "validationToken" not in r["query"]
                and isinstance(r["body"], dict) for n in r["body"].get("value", [])]

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
