#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Each example's README runs its demo.py with one command: they must keep
working. A demo checks every step itself (what each simulator saw) and exits
non-zero otherwise; here each runs once, on free ports, with the CONCORD_BIN
under test, and the lines that name each step's outcome are looked for."""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

TIMEOUT_S = 50  # each; a demo takes a few seconds


def run_demo(name):
    demo = os.path.join(harness.REPO, "examples", name, "demo.py")
    t0 = time.monotonic()
    try:
        p = subprocess.run([harness.PYTHON, demo], capture_output=True, timeout=TIMEOUT_S,
                           stdin=subprocess.DEVNULL,
                           env=dict(os.environ, CONCORD_BIN=harness.concord_bin()))
    except subprocess.TimeoutExpired as e:
        raise AssertionError("%s/demo.py did not finish within %d s:\n%s"
                             % (name, TIMEOUT_S, (e.stdout or b"").decode(errors="replace")))
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, "%s/demo.py exited %d:\n%s\n%s" % (
        name, p.returncode, out, p.stderr.decode(errors="replace"))
    print("  %s/demo.py: exit 0 in %.1fs" % (name, time.monotonic() - t0))
    return out


def assert_common_steps(out, invoicer):
    # Not paid: not invoiced.
    assert "neither passes the filter: %s received no call" % invoicer in out, out
    # The payment intent matched order 1001, and its status reached the shop.
    assert 'PATCH /orders/1001 {"payment_status": "succeeded"}' in out, out
    assert "issued invoice FCT 0001" in out, out
    # Cancelled before it was invoiced: never invoiced, but the status still came.
    assert 'PATCH /orders/1002 {"payment_status": "succeeded"}' in out, out
    assert "%s: invoice FCT 0001 (order 1001), cancelled" % invoicer in out, out
    assert "Stopped concord with SIGTERM: exit code 0." in out, out
    assert "Done: every step above was observed." in out, out


def test_shop_to_invoices_demo_runs_from_start_to_end():
    out = run_demo("shop-to-invoices")
    assert_common_steps(out, "SmartBill")
    assert "PUT /SBORO/api/invoice/cancel?cif=RO12345678&seriesname=FCT&number=0001 -> 200" \
        in out, out


def test_oblio_invoices_demo_runs_from_start_to_end():
    out = run_demo("oblio-invoices")
    assert_common_steps(out, "Oblio")
    assert 'PUT /api/docs/invoice/cancel {"cif": "RO37311090", "number": "0001", ' \
        '"seriesName": "FCT"} -> 200' in out, out
    assert "POST /api/authorize/token answered 200: one token" in out, out


def test_crm_contacts_demo_runs_from_start_to_end():
    out = run_demo("crm-contacts")
    # A shop customer becomes a contact; a rep's edit in HubSpot reaches the shop.
    assert 'POST /crm/v3/objects/contacts {"properties": {"email": "ada@example.com", ' \
        '"firstname": "Ada", "lastname": "Lovelace"}} -> 201 (contact 1001)' in out, out
    assert "HubSpot signed and sent contact.propertyChange (firstname); concord answered 202" \
        in out, out
    assert 'PATCH /customers/101 {"email": "ada@example.com", "first_name": "Augusta Ada", ' \
        '"last_name": "Lovelace"}' in out, out
    # A contact made in HubSpot is matched by e-mail; a create HubSpot refuses with 409 links.
    assert "it linked contact 1002 to her instead of making a second customer" in out, out
    assert "nothing was sent. One contact, one customer." in out, out
    assert "POST /crm/v3/objects/contacts -> 409" in out, out
    assert "PATCH /crm/v3/objects/contacts/1003 -> 200" in out, out
    # Deletes both ways.
    assert "DELETE /customers/101 -> 204" in out, out
    assert "DELETE /crm/v3/objects/contacts/1002 -> 204" in out, out
    assert "no 429, no conflict, and concord's inbox is empty" in out, out
    assert "Stopped concord with SIGTERM: exit code 0." in out, out
    assert "Done: every step above was observed." in out, out


def test_bookings_calendar_demo_runs_from_start_to_end():
    out = run_demo("bookings-calendar")
    # A booking made in the app: an event in Radicale (found by discovery) and in Google.
    assert 'concord found the calendar by discovery (principal, calendar home, "bookings")' \
        in out, out
    assert "Haircut, Ana, 2026-05-04T09:00:00Z to 2026-05-04T10:00:00Z, Chair 1, confirmed" \
        in out, out
    assert "Haircut, Ana, 2026-05-04T12:00:00+03:00 to 2026-05-04T13:00:00+03:00 " \
        "(Europe/Bucharest), confirmed" in out, out
    # The event moved in Radicale (in Bucharest time) moves the booking, and Google follows.
    assert 'PUT /bookings/B1 {"end": "2026-05-04T12:30:00Z", "location": "Chair 1", ' \
        '"start": "2026-05-04T11:30:00Z", "status": "confirmed", "title": "Haircut, Ana"} ' \
        '-> 200' in out, out
    assert "Haircut, Ana, 2026-05-04T14:30:00+03:00 to 2026-05-04T15:30:00+03:00 " \
        "(Europe/Bucharest)" in out, out
    assert "Nothing went back to Radicale" in out, out
    # Cancelled in the app: cancelled in both calendars.
    assert "Europe/Bucharest, STATUS:CANCELLED" in out, out
    assert '{"status": "cancelled"} -> 200' in out, out
    assert "Google: 1 event; concord's writes: POST -> 200; PATCH -> 200; PATCH -> 200" in out, out
    assert "No conflict, and concord's inbox is empty." in out, out
    assert "Stopped concord with SIGTERM: exit code 0." in out, out
    assert "Done: every step above was observed." in out, out


if __name__ == "__main__":
    harness.run_tests(globals())
