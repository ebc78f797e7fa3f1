#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The dashboard in a real browser (the Operate issue): headless Chromium,
driven by Selenium (Debian's chromium, chromium-driver, python3-selenium),
signs in with an admin token, sees a failed delivery in the inbox, clicks
Retry, and sees it delivered; and sees a slow reconcile's progress bar in
the Reads panel. Screenshots are kept in tests/e2e/out/."""

import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Concord, Sim, wait_until  # noqa: E402

TOKEN = "dash-token-3c9e1f7a5b24d608"
SHOP_SECRET = "shop-secret"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")

CONFIG = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=2000
log: {level: debug, format: json}
admin:
  tokens: {alice: env:ADMIN_TOKEN}
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


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
              "--disable-background-networking", "--disable-component-update",
              "--disable-sync", "--window-size=1280,1000"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def test_sign_in_see_a_failed_entry_retry_it_and_see_it_delivered():
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    os.makedirs(OUT, exist_ok=True)
    port = harness.free_port()
    shop = Sim(resource="customers", id_prefix="S",
               webhook_url="http://127.0.0.1:%d/webhooks/shop" % port,
               webhook_secret=SHOP_SECRET, signature_header="X-Shop-Signature")
    crm = Sim(resource="contacts", id_prefix="C")
    c = Concord(CONFIG, values={"port": port, "shop_port": shop.port, "crm_port": crm.port},
                env={"SHOP_SECRET": SHOP_SECRET, "ADMIN_TOKEN": TOKEN})
    c.start()
    # The CRM refuses the first create: it waits in the failed inbox.
    crm.faults([{"status": 422, "body": {"error": "phone required"},
                 "match": {"method": "POST"}}])
    shop.change("s1", {"email": "ada@example.com", "name": "Ada"})
    wait_until(lambda: c.cli_json("failed"), 10, "the failed entry")
    b = browser()

    # The page redraws every 3 s: each look finds its elements afresh, and
    # one that went stale meanwhile is looked for again.
    def fresh(fn):
        def attempt():
            try:
                return fn()
            except StaleElementReferenceException:
                return None
        return attempt

    try:
        b.get(c.url + "/")
        # A wrong token is refused on the page.
        b.find_element(By.ID, "token").send_keys("not-the-token")
        b.find_element(By.ID, "signin").click()
        wait_until(fresh(lambda: "refused" in b.find_element(By.ID, "login-error").text), 10,
                   "the refusal")
        box = b.find_element(By.ID, "token")
        box.clear()
        box.send_keys(TOKEN)
        b.find_element(By.ID, "signin").click()
        wait_until(lambda: b.find_elements(By.CSS_SELECTOR, "#systems .sys"), 10, "the systems")
        text = wait_until(fresh(lambda: [r.text for r in b.find_elements(
            By.CSS_SELECTOR, "#inbox tbody tr")]), 10, "the failed entry on the page")[0]
        assert "phone required" in text and "crm" in text, text
        names = wait_until(fresh(lambda: [e.text for e in b.find_elements(
            By.CSS_SELECTOR, "#systems .sys .name")]), 10, "the system names")
        assert names == ["shop", "crm"], names
        b.save_screenshot(os.path.join(OUT, "dashboard-failed.png"))

        def click_retry():
            b.find_element(By.CSS_SELECTOR, "#inbox tbody tr button[data-act=retry]").click()
            return True

        wait_until(fresh(click_retry), 10, "a click on Retry")
        wait_until(lambda: len(crm.records()) == 1, 10, "the retried delivery")
        wait_until(fresh(lambda: b.find_element(By.ID, "inbox-empty").is_displayed()), 10,
                   "the empty inbox on the page")
        b.save_screenshot(os.path.join(OUT, "dashboard-delivered.png"))
        # The page asked nothing of any other address.
        logs = b.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)")
        assert all(u.startswith(c.url) for u in logs), logs
        assert TOKEN not in b.page_source
    finally:
        b.quit()
    assert c.cli_json("audit")[0]["who"] == "alice", c.cli_json("audit")


READS_CONFIG = """
listen: 127.0.0.1:{port}
store: sqlite:state.db?busy_timeout_ms=2000
log: {level: debug, format: json}
admin:
  tokens: {alice: env:ADMIN_TOKEN}
systems:
  crm:
    kind: http
    base_url: http://127.0.0.1:{crm_port}
    timeout_ms: 5000
    collections:
      contacts:
        model: customer
        map_in: {email: contact_email, name: full_name}
        poll:
          every: 1h
          list: GET /contacts
          items: data
          page: {kind: number, param: page, size_param: limit, size: 5}
  shop:
    kind: http
    base_url: http://127.0.0.1:{shop_port}
    collections:
      customers:
        model: customer
        map_out: {email: email, name: name}
        create: POST /customers
        update: PUT /customers/{id}
models:
  customer:
    fields: {email: string, name: string}
syncs:
  customers:
    model: customer
    origin: crm
    collections: [crm.contacts, shop.customers]
"""


def test_a_read_under_way_shows_its_progress_bar():
    import subprocess
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    os.makedirs(OUT, exist_ok=True)
    crm = Sim(resource="contacts", id_prefix="C", page_style="number", page_size=5)
    shop = Sim(resource="customers", id_prefix="S")
    for i in range(1, 31):
        crm.put("C%d" % i, {"contact_email": "p%d@example.com" % i, "full_name": "P%d" % i})
    c = Concord(READS_CONFIG, values={"crm_port": crm.port, "shop_port": shop.port},
                env={"ADMIN_TOKEN": TOKEN})
    c.start()
    wait_until(lambda: len(shop.records()) == 30, 15, "the first read's 30 customers")
    wait_until(lambda: not c.cli_json("status")["polls"][0]["reading"], 15, "the read's end")
    b = browser()

    def row_state():
        try:
            return b.find_element(By.CSS_SELECTOR,
                                  '#reads tr[data-collection="crm.contacts"] td.state').text
        except Exception:  # not drawn yet, or redrawn meanwhile
            return None

    try:
        b.get(c.url + "/")
        b.find_element(By.ID, "token").send_keys(TOKEN)
        b.find_element(By.ID, "signin").click()
        wait_until(lambda: row_state() == "ok", 10, "the collection's row, its last read ok")
        # A slow reconcile: the row shows a bar, the total (30 linked) and the rate.
        crm.faults([{"delay_ms": 1000, "match": {"method": "GET", "path_prefix": "/contacts"},
                     "times": 7}])
        p = subprocess.Popen([harness.concord_bin(), "reconcile", "crm.contacts", "-c", c.path],
                             cwd=c.dir, env=c.env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        text = wait_until(lambda: (row_state() or "").startswith("reconcile: ") and row_state(),
                          15, "the reconcile under way on the page")
        assert " of 30 rows (" in text and "rows/s" in text, text

        def bar():
            try:
                return b.find_element(By.CSS_SELECTOR, '#reads tr[data-collection="crm.contacts"]'
                                      " .bar i").get_attribute("style")
            except StaleElementReferenceException:
                return None
        width = wait_until(bar, 10, "the bar")
        assert re.fullmatch(r"width: \d+%;", width), width
        b.save_screenshot(os.path.join(OUT, "dashboard-reconcile.png"))
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
        wait_until(lambda: row_state() == "ok", 10, "the row back to ok after the reconcile")
    finally:
        b.quit()


if __name__ == "__main__":
    harness.run_tests(globals())
