#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A shop's customers and HubSpot's contacts, kept in agreement both ways: narrated.

Starts two simulated systems on 127.0.0.1 — the shop (tests/sims/target.py),
which announces customers by signed webhook and takes writes through its REST
API; HubSpot (tests/sims/hubspot.py), whose CRM v3 contacts API concord calls
and which announces a person's edits by v3-signed webhooks — then concord with
concord.yaml from this directory, run from a temporary copy so that its SQLite
file lands there. Then it makes, edits and deletes customers on both sides and
shows what each system saw.

    /usr/bin/python3 examples/crm-contacts/demo.py [--keep-running] [--fixed-ports]

Ports are free ones unless --fixed-ports (those in concord.yaml: 8510-8512).
CONCORD_BIN names the binary (default build/dev/concord). Exits 0 when every
step was observed, 1 with a message saying what did not happen otherwise.
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# The plumbing every example's demo shares (narration, ports, starting and
# stopping): examples/demo_lib.py.
sys.path.insert(0, os.path.dirname(HERE))
from demo_lib import (WAIT_S, DemoFailed, check_binary, config_text,  # noqa: E402
                      harness, last_seq, main, pick_ports, say, show, start_concord,
                      wait_for)
from hubspot_harness import BASE, HubSpotSim  # noqa: E402

# The ports written in concord.yaml, which README.md's "by hand" section uses.
FIXED = {"concord": 8510, "shop": 8511, "hubspot": 8512}

# As concord.yaml names it: the URL the HubSpot app registered for its
# webhooks, which the v3 signature covers (HubSpot calls it; a proxy would
# hand the request on to concord's listener).
PUBLIC_HOOK = "https://sync.example.com/webhooks/hubspot"

ADA = {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"}
GRACE = {"email": "grace@example.com", "first_name": "Grace", "last_name": "Hopper"}
LINUS = {"email": "linus@example.com", "first_name": "Linus", "last_name": "Torvalds",
         "phone": "+358 40 1991"}


def hs_delivered(hs, step):
    """Waits until HubSpot has no webhook queued, held or retrying."""
    try:
        hs.wait_delivered(WAIT_S)
    except AssertionError as e:
        raise DemoFailed("%s: HubSpot's webhooks were not delivered: %s" % (step, e))


def settle(concord, hs, step):
    """Waits until HubSpot has no webhook pending and concord has no backlog
    and nothing in flight."""
    hs_delivered(hs, step)
    try:
        concord.wait_settled(WAIT_S)
    except AssertionError as e:
        raise DemoFailed("%s: the systems did not settle: %s" % (step, e))


def hs_calls(hs, since=0):
    """concord's calls to HubSpot's API since a log position."""
    return [r for r in hs.requests(since=since) if r["path"].startswith(BASE)]


def hs_writes(hs, since=0):
    return [r for r in hs_calls(hs, since) if r["path"].split("?")[0] != BASE + "/search"]


def call_line(r):
    body = " " + show(r["body"]) if r["body"] is not None else ""
    return "%s %s%s -> %s" % (r["method"], r["path"], body, r["status"])


def hs_by_email(hs, email):
    return [c for c in hs.contacts().values() if c["properties"].get("email") == email]


def polled(concord):
    """The poll of hubspot.contacts as `concord status` shows it."""
    return concord.cli_json("status")["polls"][0]


def wait_poll(concord, hs, seq, rows_before, what):
    """Waits until concord has searched HubSpot after log position seq, read
    more than rows_before contacts in all, and has no poll asked for or
    running; returns the poll's status (its last_report is that read's).
    The first read shows no "now" while it runs: it has ended once a
    report is there."""

    def done():
        if not [r for r in hs_calls(hs, seq) if r["path"] == BASE + "/search"]:
            return None
        p = polled(concord)
        return p if p["next_at"] != "now" and p["rows_read"] > rows_before \
            and "last_report" in p else None

    return wait_for(done, what, concord)


def shop_patches(shop, cid):
    return [r["body"] for r in shop.requests("PATCH", "/customers/" + cid)
            if r["applied"] and isinstance(r["body"], dict)]


def shop_customer(shop, email):
    return [(k, r) for k, r in shop.records().items() if r.get("email") == email]


def events_named(hs, ids):
    """'contact.creation, contact.propertyChange (email, phone)' for the
    sim's event ids: each type once, with the properties its events name."""
    evs = {e["eventId"]: e for e in hs.sim_events()}
    kinds = {}
    for i in ids:
        e = evs.get(i, {})
        props = kinds.setdefault(e.get("subscriptionType", "?"), [])
        if e.get("propertyName"):
            props.append(e["propertyName"])
    return ", ".join(k + (" (%s)" % ", ".join(p) if p else "") for k, p in kinds.items())


def delivered(hs, out, step):
    """The webhook deliveries a ui_* call waited for: each must be answered 2xx."""
    ds = out.get("deliveries") or []
    if not ds or any(not d["ok"] for d in ds):
        raise DemoFailed("%s: concord did not take HubSpot's webhook: %s" % (step, show(ds)))
    return ", ".join(str(d["status"]) for d in ds)


def shop_change(shop, cid, record, event, step):
    out = shop.change(cid, record, event=event)
    if out.get("status") is None:
        raise DemoFailed("%s: the shop could not reach concord: %s" % (step, out.get("error")))
    if out["status"] != 202:
        raise DemoFailed("%s: concord refused the shop's webhook: %s %s"
                         % (step, out["status"], show(out["body"])))
    return out


def run(args, parts):
    env = {
        "SHOP_WEBHOOK_SECRET": os.environ.get("SHOP_WEBHOOK_SECRET", "demo-shop-secret"),
        "HUBSPOT_TOKEN": os.environ.get("HUBSPOT_TOKEN", "pat-na1-demo-concord"),
        "HUBSPOT_SECRET": os.environ.get("HUBSPOT_SECRET", "demo-hubspot-client-secret"),
    }
    binary = check_binary()
    ports = pick_ports(args, FIXED)
    hook = "http://127.0.0.1:%d/webhooks/" % ports["concord"]

    say("1. Starting the two systems concord will keep in agreement:")
    try:
        shop = harness.Sim(
            port=ports["shop"], resource="customers", webhook_url=hook + "shop",
            webhook_secret=env["SHOP_WEBHOOK_SECRET"], signature_header="X-Shop-Signature",
            timestamp_header="X-Shop-Timestamp", delivery_header="X-Shop-Delivery",
            template="{timestamp}.{body}", prefix="sha256=", envelope="customer",
            event_key="event", idempotency_header="Idempotency-Key",
        )
        parts.append(shop)
        hs = HubSpotSim(port=ports["hubspot"], token=env["HUBSPOT_TOKEN"],
                        client_secret=env["HUBSPOT_SECRET"], webhook_url=hook + "hubspot",
                        webhook_public_url=PUBLIC_HOOK)
        parts.append(hs)
    except AssertionError as e:
        raise DemoFailed("a simulator did not start (is a port taken? try without "
                         "--fixed-ports): %s" % e)
    ports.update(shop=shop.port, hubspot=hs.port)
    say("the shop on %s: a signed webhook whenever a customer changes" % shop.url, 3)
    say("HubSpot on %s: the CRM v3 contacts API, for a private app's token; it sends" % hs.url,
        3)
    say("webhooks signed (X-HubSpot-Signature-v3) over the URL the app registered,", 3)
    say("%s, as if a proxy passed them on to concord" % PUBLIC_HOOK, 3)

    concord = harness.Concord(config_text(HERE, FIXED, ports), env=env,
                              tmp_prefix="concord-crm-contacts-")
    parts.append(concord)
    say()
    say("2. Starting concord on %s with a copy of concord.yaml in %s" % (concord.url, concord.dir))
    start_concord(concord)
    p = wait_poll(concord, hs, 0, -1, "step 2: concord's first search of HubSpot's contacts")
    say("concord is up: GET /healthz answers 200, and its first poll searched HubSpot's", 3)
    say("contacts from the start (POST %s/search): %d found." % (BASE, p["last_report"]["read"]),
        3)

    step = "step 3 (a shop customer becomes a HubSpot contact)"
    say()
    say("3. Ada signs up in the shop. The shop tells concord by webhook:")
    seq, rows = last_seq(hs), polled(concord)["rows_read"]
    out = shop_change(shop, "101", ADA, "customer.created", step)
    say("customer 101, %s: concord answered %s %s" % (ADA["email"], out["status"],
                                                     show(out["body"])), 3)
    ada = wait_for(lambda: hs_by_email(hs, ADA["email"]), "%s: Ada's contact in HubSpot" % step,
                   concord)[0]
    (post,) = [r for r in hs_writes(hs) if r["method"] == "POST"]
    say("concord created her contact in HubSpot (every property as a string, the token as", 3)
    say("Authorization: Bearer):", 3)
    say(call_line(post) + " (contact %s)" % ada["id"], 5)
    if harness.header(post, "Authorization") != "Bearer " + env["HUBSPOT_TOKEN"]:
        raise DemoFailed("%s: the create did not carry the private app's token" % step)
    hs_delivered(hs, step)
    p = wait_poll(concord, hs, seq, rows, "%s: the search after HubSpot's webhook for the new "
                  "contact" % step)
    settle(concord, hs, step)
    if shop.writes():
        raise DemoFailed("%s: concord's own create came back to the shop: %s"
                         % (step, [r["method"] + " " + r["path"] for r in shop.writes()]))
    say("HubSpot announced the new contact by webhook as well; concord searched, read %d" %
        p["last_report"]["read"], 3)
    say("contact back as it had written it, and wrote nothing to the shop (an echo).", 3)

    step = "step 4 (an edit in HubSpot reaches the shop)"
    say()
    say("4. A sales rep corrects Ada's first name in HubSpot's UI:")
    seq = last_seq(hs)
    out = hs.ui_update(ada["id"], {"firstname": "Augusta Ada"}, wait=True)
    say("HubSpot signed and sent %s; concord answered %s"
        % (events_named(hs, out["events"]), delivered(hs, out, step)), 3)
    wait_for(lambda: any(p.get("first_name") == "Augusta Ada" for p in shop_patches(shop, "101")),
             "%s: the new first name in the shop (PATCH /customers/101)" % step, concord)
    searches = [r for r in hs_calls(hs, seq) if r["path"] == BASE + "/search"]
    if not searches:
        raise DemoFailed("%s: concord did not search HubSpot after the webhook" % step)
    f = searches[-1]["body"]["filterGroups"][0]["filters"][0]
    say("The event names the contact only, so concord searched for what changed:", 3)
    say("%s %s %s (the newest time it had read, less 10 s for HubSpot's index)"
        % (f["propertyName"], f["operator"], f["value"]), 5)
    say("and wrote the edit to the shop:", 3)
    for p in shop_patches(shop, "101"):
        say("PATCH /customers/101 %s" % show(p), 5)
    settle(concord, hs, step)
    back = hs_writes(hs, seq)
    if back:
        raise DemoFailed("%s: the edit went back to HubSpot: %s" % (step, [call_line(r)
                                                                          for r in back]))
    say("Nothing went back to HubSpot: the contact holds what concord has.", 3)

    step = "step 5 (a contact made in HubSpot is matched by e-mail)"
    say()
    say("5. An operator pauses deliveries to HubSpot (say, during an import there):")
    rc, stdout, stderr = concord.cli("pause", "hubspot", check=False)
    say("$ concord pause hubspot: %s" % (stdout + stderr).strip(), 3)
    if rc != 0:
        raise DemoFailed("%s: concord pause hubspot exited %d" % (step, rc))
    seq = last_seq(hs)
    out = shop_change(shop, "102", GRACE, "customer.created", step)
    say("Grace signs up in the shop (customer 102): concord answered %s; her contact waits"
        % out["status"], 3)
    say("for HubSpot to be resumed.", 3)
    out = hs.ui_create({"email": GRACE["email"], "firstname": "Grace", "lastname": "Hopper",
                        "phone": "+1 555 0100"}, wait=True)
    grace = out["contact"]
    say("Meanwhile a rep types her into HubSpot, with her phone (contact %s). HubSpot sent"
        % grace["id"], 3)
    say("%s; concord answered %s." % (events_named(hs, out["events"]),
                                      delivered(hs, out, step)), 3)
    wait_for(lambda: any(p.get("phone") == "+1 555 0100" for p in shop_patches(shop, "102")),
             "%s: HubSpot's phone for Grace in the shop (PATCH /customers/102)" % step, concord)
    say("concord found the contact by search, and its e-mail is customer 102's (sync match):", 3)
    say("it linked contact %s to her instead of making a second customer, and the phone,"
        % grace["id"], 3)
    say("which only HubSpot had, went to the shop:", 3)
    for p in shop_patches(shop, "102"):
        say("PATCH /customers/102 %s" % show(p), 5)
    rc, stdout, stderr = concord.cli("resume", "hubspot", check=False)
    say("$ concord resume hubspot: %s" % (stdout + stderr).strip(), 3)
    if rc != 0:
        raise DemoFailed("%s: concord resume hubspot exited %d" % (step, rc))
    settle(concord, hs, step)
    sent = hs_writes(hs, seq)
    if any(r["method"] == "POST" for r in sent):
        raise DemoFailed("%s: concord created Grace in HubSpot again: %s"
                         % (step, [call_line(r) for r in sent]))
    if len(hs_by_email(hs, GRACE["email"])) != 1 or len(shop_customer(shop, GRACE["email"])) != 1:
        raise DemoFailed("%s: Grace is not one contact and one customer: %s, %s"
                         % (step, show(hs_by_email(hs, GRACE["email"])),
                            show(shop_customer(shop, GRACE["email"]))))
    say("The create that waited became an update of the linked contact, which %s" % (
        "holds her state already:" if not sent else "was sent:"), 3)
    say("nothing was sent. One contact, one customer." if not sent else
        "\n".join(call_line(r) for r in sent), 3 if not sent else 5)

    step = "step 6 (HubSpot's 409 for an e-mail it holds)"
    say()
    say("6. A rep types Linus into HubSpot while HubSpot's webhooks run late (the simulator")
    say("   holds them), so concord has not heard of the contact:")
    hs.webhooks(paused=True)
    seq = last_seq(hs)
    linus = hs.ui_create({"email": LINUS["email"], "firstname": "Linus"})["contact"]
    say("contact %s, %s, first name only" % (linus["id"], LINUS["email"]), 3)
    out = shop_change(shop, "103", LINUS, "customer.created", step)
    say("Then Linus signs up in the shop (customer 103): concord answered %s" % out["status"],
        3)
    wait_for(lambda: [r for r in hs_writes(hs, seq)
                      if r["method"] == "PATCH" and r["path"] == BASE + "/" + linus["id"]],
             "%s: the customer written to contact %s" % (step, linus["id"]), concord)
    writes = hs_writes(hs, seq)
    if [r["status"] for r in writes if r["method"] == "POST"] != [409]:
        raise DemoFailed("%s: the create was not answered 409: %s"
                         % (step, [call_line(r) for r in writes]))
    say("HubSpot keeps one contact per e-mail: the create was refused, naming the contact,", 3)
    say("and concord linked that one and wrote the customer to it (on_conflict):", 3)
    for r in writes:
        say(call_line(r), 5)
    seq, rows = last_seq(hs), polled(concord)["rows_read"]
    hs.webhooks(paused=False)
    hs_delivered(hs, step)
    p = wait_poll(concord, hs, seq, rows, "%s: the search after HubSpot's late webhooks" % step)
    settle(concord, hs, step)
    if p["last_report"]["new"] != 0:
        raise DemoFailed("%s: the search after the late webhooks found a contact concord did "
                         "not know: %s" % (step, show(p["last_report"])))
    if len(shop_customer(shop, LINUS["email"])) != 1 or len(hs_by_email(hs, LINUS["email"])) != 1:
        raise DemoFailed("%s: Linus is not one contact and one customer: %s, %s"
                         % (step, show(hs_by_email(hs, LINUS["email"])),
                            show(shop_customer(shop, LINUS["email"]))))
    say("HubSpot's late webhooks then came; concord searched and read %d contacts, none new:"
        % p["last_report"]["read"], 3)
    say("contact %s is linked already, and the shop got no second Linus." % linus["id"], 3)

    step = "step 7 (deletes both ways)"
    say()
    say("7. A rep deletes Ada in HubSpot; Grace closes her account in the shop:")
    out = hs.ui_delete(ada["id"], wait=True)
    say("HubSpot sent %s; concord answered %s" % (events_named(hs, out["events"]),
                                                  delivered(hs, out, step)), 3)
    wait_for(lambda: "101" not in shop.records(), "%s: customer 101 deleted in the shop" % step,
             concord)
    say("A search never shows a deleted contact, so the event is the news: concord deleted", 3)
    say("customer 101 in the shop (DELETE /customers/101 -> %s)."
        % shop.requests("DELETE", "/customers/101")[-1]["status"], 3)
    seq = last_seq(hs)
    out = shop.delete("102", event="customer.deleted")
    say("Grace closes her account (customer 102): the shop's webhook, answered %s"
        % out["status"], 3)
    wait_for(lambda: grace["id"] not in hs.contacts(),
             "%s: contact %s archived in HubSpot" % (step, grace["id"]), concord)
    say("concord archived her contact: %s" % "; ".join(
        call_line(r) for r in hs_writes(hs, seq) if r["method"] == "DELETE"), 3)
    settle(concord, hs, step)

    step = "step 8 (what each system saw)"
    say()
    say("8. What each system saw:")
    say("the shop: concord's writes (it never created a customer there: each contact was one", 3)
    say("the shop had):", 3)
    for r in shop.writes():
        say("%s %s%s" % (r["method"], r["path"], " " + show(r["body"]) if r["body"] else ""), 5)
    if any(r["method"] == "POST" for r in shop.writes()):
        raise DemoFailed("%s: concord created a customer in the shop" % step)
    writes = hs_writes(hs)
    say("HubSpot: concord's writes, and %d searches:"
        % (len(hs_calls(hs)) - len(writes)), 3)
    for r in writes:
        say("%s %s -> %s" % (r["method"], r["path"], r["status"]), 5)
    creates = [r["status"] for r in writes if r["method"] == "POST"]
    if creates != [201, 409]:
        raise DemoFailed("%s: HubSpot saw creates answered %s, not one 201 and one 409"
                         % (step, creates))
    bad = [d for d in hs.deliveries() if not d["ok"]]
    if bad:
        raise DemoFailed("%s: concord did not take HubSpot's webhooks: %s" % (step, show(bad)))
    say("HubSpot's webhooks: %d deliveries (%d events), each answered 2xx"
        % (len(hs.deliveries()), hs.stats()["webhooks"]["events_delivered"]), 3)
    if hs.invalid():
        raise DemoFailed("%s: concord sent HubSpot requests that break its spec: %s"
                         % (step, show(hs.invalid())))
    if hs.stats()["rate_limited"]:
        raise DemoFailed("%s: HubSpot's rate limit answered 429: %s"
                         % (step, show(hs.stats()["rate_limited"])))
    shop_now = {r["email"]: [r.get(k) for k in ("first_name", "last_name", "phone")]
                for r in shop.records().values()}
    hs_now = {c["properties"]["email"]: [c["properties"].get(k)
                                         for k in ("firstname", "lastname", "phone")]
              for c in hs.contacts().values()}
    say("Both now hold the same customers: %s" % show(shop_now), 3)
    if shop_now != hs_now:
        raise DemoFailed("%s: the shop holds %s, HubSpot %s" % (step, show(shop_now),
                                                                show(hs_now)))
    failed = concord.cli_json("failed")
    if failed:
        raise DemoFailed("%s: concord's inbox is not empty: %s" % (step, show(failed)))
    conflicts = concord.cli_json("conflicts")
    if conflicts:
        raise DemoFailed("%s: concord has open conflicts: %s" % (step, show(conflicts)))
    say("Every request met HubSpot's spec, no 429, no conflict, and concord's inbox is empty.",
        3)

    ok = True
    for n, cmd in ((9, ("status",)), (10, ("history", "1"))):
        say()
        say("%d. concord %s" % (n, " ".join(cmd)))
        rc, stdout, stderr = concord.cli(*cmd, check=False)
        say((stdout + stderr).rstrip() or "(no output)", 3)
        if rc != 0:
            say("(exit code %d)" % rc, 3)
            ok = False
    if not ok:
        raise DemoFailed("a concord command above failed")

    if args.keep_running:
        say()
        say("Everything keeps running. Try, in another terminal:")
        say("curl -s %s/_sim/contacts         # HubSpot's contacts" % hs.url, 3)
        say("curl -s -X POST %s/_sim/ui_update -d '{\"id\": \"%s\", \"properties\": "
            "{\"phone\": \"+358 40 2024\"}}'" % (hs.url, linus["id"]), 3)
        say("curl -s %s/_sim/records          # the shop's customers" % shop.url, 3)
        say("%s status -c %s" % (binary, concord.path), 3)
        say("Press Ctrl-C to stop.")
        try:
            while concord.running():
                time.sleep(0.5)
            say("concord exited with code %s" % concord.stop())
        except KeyboardInterrupt:
            say()


if __name__ == "__main__":
    sys.exit(main(__doc__, "concord example: a shop's customers and HubSpot's contacts, kept in "
                  "agreement both ways", run, FIXED))
