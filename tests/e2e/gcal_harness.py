# SPDX-License-Identifier: MIT
"""tests/sims/gcal.py for e2e tests: GcalSim starts and stops it like
harness.Sim and speaks its Calendar API (Bearer tokens it grants itself),
its OAuth endpoints and its control API (/_sim/...). Standard library only.

    sim = GcalSim(seed=7, calendars="primary,team")
    tok = sim.grant()                      # {"access_token", "refresh_token", ...}
    ev = sim.insert({"summary": "Visit", "start": {...}, "end": {...}})
    items, sync = sim.list_all()           # a full sync: every page, then the sync token
    sim.person_move(ev["id"], minutes=30)  # as a person in the UI: push to the channels
    changed, sync = sim.list_all(syncToken=sync)
"""

import base64
import os
import re
import subprocess
import threading
import urllib.parse

import harness

GCAL = os.path.join(harness.REPO, "tests", "sims", "gcal.py")
EVENTS = "/calendar/v3/calendars/%s/events"


def quote(s):
    return urllib.parse.quote(s, safe="")


class GcalSim(harness.Sim):
    """tests/sims/gcal.py in a subprocess. Keyword arguments become its
    flags (seed=7 -> --seed 7, rotate_refresh_tokens=True, token_ttl_s=2,
    channel_ttl_s=...). The helpers send an access token of their own
    (grant() on first use) unless told otherwise."""

    def __init__(self, port=0, start=True, **flags):
        self.access_token = None
        super().__init__(port, start=start, **flags)

    def start(self):
        args = [harness.PYTHON, GCAL, "--port", str(self.port)]
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
            raise AssertionError("gcal sim %s did not start (said %r)"
                                 % (" ".join(args[1:]), line[0]))
        self.port = int(m.group(1))
        return self

    # --- where concord points ---

    @property
    def auth_url(self):
        return self.url + "/o/oauth2/v2/auth"

    @property
    def token_url(self):
        return self.url + "/token"

    @property
    def api_base(self):
        return self.url + "/calendar/v3"

    # --- OAuth ---

    def grant(self, scope=None):
        """Tokens as if the account consented now; the helpers use the
        access token from then on."""
        out = self._ctl("POST", "grant", {"scope": scope} if scope else {})
        self.access_token = out["access_token"]
        return out

    def token_request(self, form, basic=None):
        """POST /token with a form body: (status, body, headers)."""
        h = {"Content-Type": "application/x-www-form-urlencoded"}
        if basic:
            h["Authorization"] = "Basic " + base64.b64encode(
                ("%s:%s" % basic).encode()).decode()
        return harness.http_request(self.port, "POST", "/token",
                                    urllib.parse.urlencode(form), h)

    def authorize(self, url, follow=True):
        """Opens an authorization URL (as a browser would): the sim answers
        302 to the redirect URI with a code; with follow, GETs that URI
        too (concord's loopback listener) and returns its (status, body,
        headers); else returns the Location."""
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

    # --- the Calendar API ---

    def api(self, method, path, body=None, token=True, headers=None, timeout=10, **query):
        """One Calendar API request (path under /calendar/v3 or absolute);
        query keyword arguments join the query string (lists repeat).
        Returns (status, body, headers)."""
        h = dict(headers or {})
        if token is True:
            if self.access_token is None:
                self.grant()
            token = self.access_token
        if token:
            h["Authorization"] = "Bearer " + token
        if not path.startswith("/"):
            path = "/calendar/v3/" + path
        if query:
            path += ("&" if "?" in path else "?") + urllib.parse.urlencode(
                [(k, v) for k, vs in query.items() for v in (vs if isinstance(vs, list)
                                                              else [vs])])
        return harness.http_request(self.port, method, path, body, h, timeout)

    def _ok(self, method, path, body=None, want=200, **query):
        st, out, _ = self.api(method, path, body, **query)
        if st != want:
            raise AssertionError("%s %s answered %d: %r" % (method, path, st, out))
        return out

    def insert(self, event, cal="primary", **query):
        return self._ok("POST", EVENTS % quote(cal), event, **query)

    def get_event(self, eid, cal="primary"):
        return self._ok("GET", (EVENTS % quote(cal)) + "/" + quote(eid))

    def patch(self, eid, fields, cal="primary"):
        return self._ok("PATCH", (EVENTS % quote(cal)) + "/" + quote(eid), fields)

    def update(self, eid, event, cal="primary"):
        return self._ok("PUT", (EVENTS % quote(cal)) + "/" + quote(eid), event)

    def delete_event(self, eid, cal="primary"):
        return self._ok("DELETE", (EVENTS % quote(cal)) + "/" + quote(eid), want=204)

    def list_page(self, cal="primary", **params):
        return self._ok("GET", EVENTS % quote(cal), **{k: self._v(v) for k, v in params.items()})

    @staticmethod
    def _v(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        return v

    def list_all(self, cal="primary", **params):
        """Every page of an events.list; returns (items, nextSyncToken)."""
        items = []
        for _ in range(10000):
            page = self.list_page(cal, **params)
            items += page["items"]
            if "nextPageToken" not in page:
                return items, page.get("nextSyncToken")
            params["pageToken"] = page["nextPageToken"]
        raise AssertionError("events.list did not end")

    def watch(self, address, channel_id, token=None, cal="primary", expiration=None,
              ttl=None):
        body = {"id": channel_id, "type": "web_hook", "address": address}
        if token is not None:
            body["token"] = token
        if expiration is not None:
            body["expiration"] = expiration
        if ttl is not None:
            body["params"] = {"ttl": str(ttl)}
        return self._ok("POST", (EVENTS % quote(cal)) + "/watch", body)

    def stop_channel(self, channel_id, resource_id):
        return self.api("POST", "channels/stop", {"id": channel_id, "resourceId": resource_id})

    # --- the control API ---

    def events(self, cal="primary", deleted=False):
        """{id: event} the account holds (cancelled ones with deleted)."""
        return self._ctl("GET", "events?calendar=%s%s" % (quote(cal),
                                                          "&deleted=1" if deleted else ""))

    def person_create(self, event, cal=None, notify=True):
        return self._ctl("POST", "create", {"event": event, "calendar": cal,
                                            "notify": notify})["event"]

    def person_update(self, eid, fields, cal=None, notify=True):
        return self._ctl("POST", "update", {"id": eid, "fields": fields, "calendar": cal,
                                            "notify": notify})["event"]

    def person_move(self, eid, minutes=None, start=None, end=None, to_calendar=None, cal=None):
        arg = {"id": eid, "calendar": cal}
        for k, v in (("minutes", minutes), ("start", start), ("end", end),
                     ("to_calendar", to_calendar)):
            if v is not None:
                arg[k] = v
        return self._ctl("POST", "move", arg)["event"]

    def person_cancel(self, eid, cal=None, notify=True):
        return self._ctl("POST", "cancel", {"id": eid, "calendar": cal,
                                            "notify": notify})["event"]

    def person_respond(self, eid, email, response, cal=None):
        return self._ctl("POST", "respond", {"id": eid, "email": email, "response": response,
                                             "calendar": cal})["event"]

    def invalidate_sync(self, cal=None):
        return self._ctl("POST", "invalidate_sync", {"calendar": cal} if cal else {})

    def expire_access(self):
        return self._ctl("POST", "expire_access", {})

    def revoke(self, token=None):
        return self._ctl("POST", "revoke", {"token": token} if token else {})

    def oauth(self, **settings):
        return self._ctl("POST", "oauth", settings)

    def quota(self, **settings):
        return self._ctl("POST", "quota", settings)

    def paging(self, **settings):
        return self._ctl("POST", "paging", settings)

    def notifications(self, **settings):
        return self._ctl("POST", "notifications", settings)

    def deliveries(self, since=0):
        return self._ctl("GET", "deliveries?since=%d" % since)

    def channels(self):
        return self._ctl("GET", "channels")

    def live_channels(self):
        return [c for c in self.channels() if c["live"]]

    def expire_channels(self, channel_id=None):
        return self._ctl("POST", "expire_channels", {"id": channel_id} if channel_id else {})

    def wait_notifications(self, timeout=10):
        """Waits until no notification is queued or being sent."""
        if not self._ctl("POST", "wait_notifications", {"timeout_s": timeout})["idle"]:
            raise AssertionError("gcal sim notifications still pending after %gs" % timeout)

    def tokens(self):
        return self._ctl("GET", "tokens")

