#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Operating concord (the Operate issue, first part): /metrics moves as a
scripted scenario runs, and each system's health, with its reason, turns
degraded or down for each cause: refused credentials, an open circuit,
lag, a growing failed inbox, and webhooks that stopped arriving while
polls still find changes."""

import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Concord, Sim, wait_until  # noqa: E402

SHOP_SECRET = "shop-secret"

CONFIG = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=2000
log: {level: debug, format: json}
health: {lag: 1s, inbox_growth: 2, window: 1m, webhook_grace: 0s}
systems:
  shop:
    kind: http
    base_url: http://127.0.0.1:{shop_port}
    timeout_ms: 1000
    webhook:
      path: /webhooks/shop
      signature: {secret: env:SHOP_SECRET, header: X-Shop-Signature}
    collections:
      customers:
        model: customer
        map_in: {email: email, name: name}
        poll:
          every: 1h
          list: GET /customers
          items: data
  crm:
    kind: http
    base_url: http://127.0.0.1:{crm_port}
    timeout_ms: 1000
    auth: {bearer: env:CRM_TOKEN}
    retry: {max_attempts: 2, base_ms: 50, cap_ms: 100, jitter: 0.1}
    breaker: {failures: 3, cooldown: 1h}
    webhook: {path: /webhooks/crm}
    collections:
      contacts:
        model: customer
        map_in: {email: contact_email, name: full_name}
        map_out: {contact_email: email, full_name: name}
        create: POST /contacts
        update: PUT /contacts/{id}
models:
  customer:
    fields: {email: string, name: string}
syncs:
  customers:
    model: customer
    origin: [shop, crm]
    collections: [shop.customers, crm.contacts]
"""


def setup(crm_token="Bearer crm-token", concord_token="crm-token", args=(), config=None):
    port = harness.free_port()
    shop = Sim(resource="customers", id_prefix="S",
               webhook_url="http://127.0.0.1:%d/webhooks/shop" % port,
               webhook_secret=SHOP_SECRET, signature_header="X-Shop-Signature")
    crm = Sim(resource="contacts", id_prefix="C", token=crm_token,
              echo_url="http://127.0.0.1:%d/webhooks/crm" % port)
    c = Concord(config or CONFIG,
                values={"port": port, "shop_port": shop.port, "crm_port": crm.port},
                env={"SHOP_SECRET": SHOP_SECRET, "CRM_TOKEN": concord_token})
    c.start(args=args)
    return shop, crm, c


def scrape(c):
    status, body, headers = harness.http_request(c.port, "GET", "/metrics")
    assert status == 200, (status, body)
    assert headers["content-type"].startswith("text/plain; version=0.0.4"), headers
    return body


def value(text, name, **labels):
    """The value of one series, 0 when it is not there."""
    for line in text.splitlines():
        m = re.match(r"^([a-z_]+)(\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(m.group(4))
    return 0.0


def health(c, system):
    return [s for s in c.cli_json("status")["systems"] if s["name"] == system][0]["health"]


def person(n):
    return {"email": "p%d@example.com" % n, "name": "Person %d" % n}


def test_metrics_move_with_a_scripted_scenario():
    shop, crm, c = setup()
    text = scrape(c)
    assert "# TYPE concord_deliveries_total counter" in text
    assert "# TYPE concord_delivery_duration_seconds histogram" in text
    crm.faults([{"status": 503, "match": {"method": "POST", "path_prefix": "/contacts"}}])
    for n in (1, 2, 3):
        shop.change("s%d" % n, person(n))
    wait_until(lambda: len(crm.records()) == 3, 10, "three contacts")
    c.wait_settled()
    out = shop.send_raw({"id": "s9"}, headers={"X-Shop-Signature": "sha256=bad"})
    assert out["status"] == 401, out
    text = wait_until(lambda: (lambda t: t if value(
        t, "concord_changes_echo_total", collection="crm.contacts") >= 3 else None)(scrape(c)),
        10, "the CRM's echoes counted")
    assert value(text, "concord_changes_ingested_total", system="shop") == 3, text
    assert value(text, "concord_changes_applied_total", collection="shop.customers") == 3
    assert value(text, "concord_deliveries_total", system="crm", collection="crm.contacts",
                 outcome="ok") == 3, text
    assert value(text, "concord_deliveries_total", system="crm", collection="crm.contacts",
                 outcome="transient") == 1, text
    assert value(text, "concord_delivery_retries_total", system="crm",
                 collection="crm.contacts") == 1, text
    assert value(text, "concord_webhook_signature_failures_total", system="shop") == 1, text
    assert value(text, "concord_delivery_duration_seconds_count", system="crm") == 4, text
    assert value(text, "concord_end_to_end_seconds_count", system="crm") == 3, text
    assert value(text, "concord_delivery_duration_seconds_bucket", system="crm", le="+Inf") == 4
    assert value(text, "concord_queue_depth", system="crm") == 0, text
    assert value(text, "concord_system_health", system="crm") == 0, text
    # The daemon's first poll of the shop (its backfill) read the shop.
    assert value(text, "concord_poll_duration_seconds_count", collection="shop.customers") >= 1
    assert health(c, "crm") == {"state": "ok", "reason": None}


def test_refused_credentials_are_down_with_the_reason():
    shop, crm, c = setup(crm_token="Bearer right", concord_token="wrong-token")
    shop.change("s1", person(1))
    h = wait_until(lambda: (lambda x: x if x["state"] == "down" else None)(health(c, "crm")),
                   10, "crm down")
    assert h["reason"].startswith("authentication failed: ") and "HTTP 401" in h["reason"], h
    assert value(scrape(c), "concord_system_health", system="crm") == 2
    assert "wrong-token" not in c.log_text() and "wrong-token" not in scrape(c)


def test_an_open_circuit_is_down_with_the_reason():
    shop, crm, c = setup()
    crm.faults([{"status": 503, "times": 100, "match": {"method": "POST"}}])
    for n in range(1, 5):
        shop.change("s%d" % n, person(n))
    h = wait_until(lambda: (lambda x: x if x["state"] == "down" else None)(health(c, "crm")),
                   10, "crm down")
    assert "circuit open" in h["reason"], h
    assert value(scrape(c), "concord_circuit_state", system="crm") == 2


def test_lag_and_a_pause_are_degraded():
    shop, crm, c = setup()
    c.cli("pause", "crm")
    shop.change("s1", person(1))
    h = wait_until(lambda: (lambda x: x if "lag" in (x["reason"] or "") else None)(
        health(c, "crm")), 10, "the lag")
    assert h["state"] == "degraded" and "paused by" in h["reason"], h
    assert value(scrape(c), "concord_lag_seconds", system="crm") >= 1
    c.cli("resume", "crm")
    wait_until(lambda: health(c, "crm")["state"] == "ok", 10, "crm ok again")


def test_a_growing_failed_inbox_is_degraded():
    shop, crm, c = setup()
    crm.faults([{"status": 422, "times": 2, "match": {"method": "POST"}}])
    shop.change("s1", person(1))
    shop.change("s2", person(2))
    h = wait_until(lambda: (lambda x: x if x["state"] != "ok" else None)(health(c, "crm")),
                   10, "crm degraded")
    assert h["state"] == "degraded" and "the failed inbox grows: 2 new entries" in h["reason"], h
    assert value(scrape(c), "concord_failed_inbox_size", system="crm") == 2


def test_webhooks_that_stop_while_polls_find_changes_are_reported_as_missed():
    shop, crm, c = setup()
    shop.change("s1", person(1))                # by webhook
    wait_until(lambda: len(crm.records()) == 1, 10, "the contact")
    c.cli("poll", "shop.customers")             # in agreement: no finding
    assert health(c, "shop")["state"] == "ok"
    # The shop keeps changing, but its webhooks stop.
    shop.put("s2", person(2))
    shop.put("s1", {"email": "p1@example.com", "name": "Renamed"})


    rc, out, err = c.cli("poll", "shop.customers", "--json")
    h = health(c, "shop")
    assert h["state"] == "degraded", (h, out)
    assert h["reason"].startswith("webhooks missed: a poll of shop.customers"), h
    assert "found 2 changes" in h["reason"], h


def test_trace_switches_log_one_subsystem_at_info_level():
    # At level info, --trace http,webhook adds those subsystems' lines, and
    # only theirs; every line of an operation names its record or request.
    shop, crm, c = setup(args=["--log-level", "info", "--trace", "http,webhook"],
                         config=CONFIG.replace("level: debug", "level: warn"))
    shop.change("s1", person(1))
    wait_until(lambda: len(crm.records()) == 1, 10, "the contact")
    c.wait_settled()
    lines = [json.loads(x) for x in c.log_text().splitlines() if x.startswith("{")]
    traces = [x for x in lines if x["level"] == "trace"]
    sent = [x for x in traces if x["msg"].startswith("-> POST /contacts")]
    assert sent and sent[0]["record"] == 1 and sent[0]["system"] == "crm", traces
    assert any(x["msg"].startswith("<- POST /contacts: HTTP 201") for x in traces), traces
    assert any(x["msg"].startswith("webhook: ") and x.get("request") for x in traces), traces
    assert not [x for x in lines if x["level"] == "debug"], "no debug line at info"
    assert not [x for x in traces if x["msg"].startswith("change ")], "merge is not traced"
    rc, out, err = c.cli("run", "--trace", "htp", check=False)
    assert rc == 2 and "unknown subsystem htp" in err, err


def test_a_secret_in_a_failing_request_is_in_no_log_metric_or_output():
    # The CRM refuses concord's token and echoes back what it was sent: the
    # token reaches neither the log, nor /metrics, nor any command's output.
    secret = "tok-9f3a7c21e5d84b6a"
    admin = "admin-tok-5d1e9b7c3a2f4e60"
    os.environ["ADMIN_TOKEN"] = admin
    shop, crm, c = setup(crm_token="Bearer right", concord_token=secret,
                         args=["--log-level", "debug", "--trace", "all"],
                         config=CONFIG + "admin:\n  tokens: {ops: env:ADMIN_TOKEN}\n")
    crm.faults([{"status": 401, "times": 20, "match": {"method": "POST"},
                 "body": {"error": "bad token", "echo": "Bearer " + secret[:4] + "..."}}])
    shop.change("s1", person(1))
    wait_until(lambda: health(c, "crm")["state"] == "down", 10, "crm down")
    outputs = [c.log_text(), scrape(c)]
    for args in (("status", "--json"), ("failed", "--json"), ("history", "1", "--json"),
                 ("explain", "1", "--json"), ("inbox", "--json")):
        rc, out, err = c.cli(*args, check=False)
        outputs += [out, err]
    # The admin API and the dashboard show the same things: every read route.
    auth = {"Authorization": "Bearer " + admin}
    for path in ("/api/status", "/api/inbox", "/api/inbox/1", "/api/records/1",
                 "/api/records/1/history", "/api/records/1/changes", "/api/records/1/explain",
                 "/api/conflicts", "/api/held", "/api/audit", "/api/series", "/"):
        status, body, _ = harness.http_request(c.port, "GET", path, None, auth)
        assert status == 200, (path, status, body)
        outputs.append(body if isinstance(body, str) else json.dumps(body))
    for text in outputs:
        assert secret not in text, text[:2000]
    # The request did carry it: the test would see it if it leaked.
    assert any(secret in (harness.header(r, "Authorization") or "") for r in crm.requests())


if __name__ == "__main__":
    harness.run_tests(globals())
