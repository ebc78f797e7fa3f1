#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Alerts (the Operate issue): when a system's health changes, concord
tells a Slack-compatible webhook and an SMTP server, once per change,
grouped, and again with "resolved" when the system is healthy again. The
sinks are real servers on 127.0.0.1: an HTTP one and a small SMTP one."""

import http.server
import os
import socketserver
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Concord, Sim, wait_until  # noqa: E402

SHOP_SECRET = "shop-secret"

CONFIG = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=2000
log: {level: debug, format: json}
alerts:
  every: 100ms
  group: 300ms
  min_interval: 0s
  webhook: env:ALERT_WEBHOOK
  email: {url: "smtp://127.0.0.1:{smtp_port}", from: concord@example.com,
          to: [ops@example.com, oncall@example.com]}
systems:
  shop:
    kind: http
    base_url: http://127.0.0.1:{shop_port}
    webhook:
      path: /webhooks/shop
      signature: {secret: env:SHOP_SECRET, header: X-Shop-Signature}
    collections:
      customers:
        model: customer
        map_in: {email: email, name: name}
  crm:
    kind: http
    base_url: http://127.0.0.1:{crm_port}
    timeout_ms: 1000
    retry: {max_attempts: 20, base_ms: 100, cap_ms: 200, jitter: 0.1}
    breaker: {failures: 2, cooldown: 1500ms}
    collections:
      contacts:
        model: customer
        map_out: {contact_email: email, full_name: name}
        create: POST /contacts
        update: PUT /contacts/{id}
models:
  customer:
    fields: {email: string, name: string}
syncs:
  customers:
    model: customer
    origin: shop
    collections: [shop.customers, crm.contacts]
"""


class WebhookSink:
    def __init__(self):
        self.got = []
        sink = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                sink.got.append((self.path, self.headers.get("Content-Type"),
                                 self.rfile.read(n).decode()))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class SmtpSink:
    """Just enough SMTP (RFC 5321) for one client at a time: the mails it
    took, as (from, [to], data)."""

    def __init__(self):
        self.mails = []
        sink = self

        class H(socketserver.StreamRequestHandler):
            def say(self, line):
                self.wfile.write((line + "\r\n").encode())

            def handle(self):
                self.say("220 sink ESMTP")
                frm, to = None, []
                while True:
                    line = self.rfile.readline().decode(errors="replace").rstrip("\r\n")
                    if not line:
                        return
                    cmd = line[:4].upper()
                    if cmd in ("EHLO", "HELO"):
                        self.say("250 sink")
                    elif cmd == "MAIL":
                        frm, to = line.split(":", 1)[1].strip(), []
                        self.say("250 ok")
                    elif cmd == "RCPT":
                        to.append(line.split(":", 1)[1].strip())
                        self.say("250 ok")
                    elif cmd == "DATA":
                        self.say("354 go on")
                        data = []
                        while True:
                            d = self.rfile.readline().decode(errors="replace")
                            if d in (".\r\n", ".\n", ""):
                                break
                            data.append(d)
                        sink.mails.append((frm, to, "".join(data)))
                        self.say("250 queued")
                    elif cmd == "QUIT":
                        self.say("221 bye")
                        return
                    else:
                        self.say("250 ok")

        class S(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = S(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_one_down_message_and_one_resolved_message_per_sink():
    port = harness.free_port()
    hook, smtp = WebhookSink(), SmtpSink()
    shop = Sim(resource="customers", id_prefix="S",
               webhook_url="http://127.0.0.1:%d/webhooks/shop" % port,
               webhook_secret=SHOP_SECRET, signature_header="X-Shop-Signature")
    crm = Sim(resource="contacts", id_prefix="C")
    url = "http://127.0.0.1:%d/hooks/T000/B000/secret-part" % hook.port
    c = Concord(CONFIG, values={"port": port, "shop_port": shop.port, "crm_port": crm.port,
                                "smtp_port": smtp.port},
                env={"SHOP_SECRET": SHOP_SECRET, "ALERT_WEBHOOK": url})
    c.start()
    # Two 503s open the circuit: crm is down until the probe after the
    # cool-down succeeds.
    crm.faults([{"status": 503, "times": 2, "match": {"method": "POST"}}])
    shop.change("s1", {"email": "a@example.com", "name": "Ada"})
    wait_until(lambda: len(hook.got) >= 1, 10, "the down message")
    wait_until(lambda: len(crm.records()) == 1, 10, "the delivery after the cool-down")
    wait_until(lambda: len(hook.got) >= 2 and len(smtp.mails) >= 2, 10, "the resolved message")
    c.wait_settled()
    assert len(hook.got) == 2, hook.got
    path, ctype, down = hook.got[0]
    assert path == "/hooks/T000/B000/secret-part" and ctype == "application/json", hook.got[0]
    assert '"text"' in down and "crm down" in down and "circuit open" in down, down
    assert "RESOLVED crm is ok again (it was down: circuit open" in hook.got[1][2], hook.got[1]
    assert len(smtp.mails) == 2, smtp.mails
    frm, to, data = smtp.mails[0]
    assert frm == "<concord@example.com>" and to == ["<ops@example.com>",
                                                     "<oncall@example.com>"], smtp.mails[0]
    assert "Subject: concord: crm down" in data and "DOWN crm is down" in data, data
    assert "Subject: concord: crm resolved" in smtp.mails[1][2], smtp.mails[1]
    # The webhook URL is a credential: it is in no log line.
    assert "secret-part" not in c.log_text()


if __name__ == "__main__":
    harness.run_tests(globals())
