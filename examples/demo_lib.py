# SPDX-License-Identifier: MIT
"""The plumbing every example's demo.py shares, so that each demo.py holds
only its story: narrating (say, show), failing with a message (DemoFailed,
wait_for), the ports (free ones, or those written in concord.yaml with
--fixed-ports), starting concord, and main(), which runs a demo's
run(args, parts) and stops every part it started at the end.

concord's port has to be known before the simulators start, since they send
their webhooks to it, so it is picked with harness.free_port() (a port no
outgoing connection can take, see tests/e2e/harness.py). Should something
bind it all the same before concord does, main() stops everything and runs
the demo once more on fresh ports, at most twice.
"""

import argparse
import json
import os
import signal
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
import harness  # noqa: E402

WAIT_S = 15
ATTEMPTS = 3


class DemoFailed(Exception):
    pass


def say(text="", indent=0):
    pad = " " * indent
    for line in text.splitlines() or [""]:
        print(pad + line)
    sys.stdout.flush()


def show(obj):
    return json.dumps(obj, sort_keys=True)


def wait_for(cond, what, concord):
    try:
        return harness.wait_until(cond, WAIT_S, what)
    except AssertionError:
        raise DemoFailed(
            "%s did not happen within %d s.\nLast lines of concord's log (%s):\n%s"
            % (what, WAIT_S, concord.log_path, concord.log_tail(30))
        )


def last_seq(sim):
    reqs = sim.requests()
    return reqs[-1]["seq"] if reqs else 0


def check_binary():
    binary = harness.concord_bin()
    if not os.access(binary, os.X_OK):
        raise DemoFailed(
            "no concord binary at %s.\nBuild it first (cmake --preset dev && "
            "cmake --build --preset dev) or set CONCORD_BIN." % binary
        )
    return binary


def pick_ports(args, fixed):
    """{name: port}: those of `fixed` (as written in concord.yaml) with
    --fixed-ports; else a free port for concord and 0 for the others (each
    simulator picks its own and tells which)."""
    if args.fixed_ports:
        return dict(fixed)
    return {name: harness.free_port() if name == "concord" else 0 for name in fixed}


def config_text(here, fixed, ports, repeated=()):
    """here/concord.yaml with each system's address at the port it runs on:
    127.0.0.1:PORT of `fixed` becomes that of `ports`. Each must be named
    exactly once, but those in `repeated` at least once."""
    with open(os.path.join(here, "concord.yaml")) as f:
        text = f.read()
    for name, port in fixed.items():
        old = "127.0.0.1:%d" % port
        n = text.count(old)
        if n == 0 or (n > 1 and name not in repeated):
            raise DemoFailed("concord.yaml should name %s once (the %s); it names it %d times"
                             % (old, name, n))
        text = text.replace(old, "127.0.0.1:%d" % ports[name])
    return text


def start_concord(concord):
    """concord.start(); a port taken meanwhile raises harness.PortTaken, for
    main() to start again on fresh ports."""
    try:
        concord.start()
    except harness.PortTaken:
        raise
    except AssertionError as e:
        raise DemoFailed("concord did not start: %s" % e)


def shut_down(parts):
    rc = 0
    for part in reversed(parts):
        if isinstance(part, harness.Concord):
            was_running = part.running()
            try:
                code = part.stop()
            except AssertionError as e:
                say("concord: %s" % e)
                rc = 1
                continue
            if was_running:
                say("Stopped concord with SIGTERM: exit code %s." % code)
                if code != 0:
                    rc = 1
            say("Its files (the config copy, the SQLite store, concord.log) stay in %s"
                % part.dir)
        else:
            part.stop()
    return rc


def on_sigterm(signum, frame):
    # SIGTERM to the demo shuts everything down the way Ctrl-C does.
    raise KeyboardInterrupt()


def main(doc, title, run, fixed=None):
    """Parses the arguments (--keep-running; --fixed-ports when the demo has
    `fixed` ports), says `title`, runs run(args, parts) and stops every part
    in `parts`. Returns the exit code: 0 when every step was observed."""
    p = argparse.ArgumentParser(description=doc.split("\n")[0])
    p.add_argument("--keep-running", action="store_true",
                   help="leave the systems and concord running until Ctrl-C")
    if fixed:
        p.add_argument("--fixed-ports", action="store_true",
                       help="use the ports written in concord.yaml (%d-%d), not free ones"
                       % (min(fixed.values()), max(fixed.values())))
    args = p.parse_args()
    signal.signal(signal.SIGTERM, on_sigterm)
    say(title)
    say()
    for attempt in range(1, ATTEMPTS + 1):
        parts = []
        rc = 0
        again = False
        try:
            run(args, parts)
        except harness.PortTaken as e:
            again = fixed is not None and not args.fixed_ports and attempt < ATTEMPTS
            say()
            if again:
                say("concord's port %d was taken before concord could listen on it; "
                    "starting everything again on fresh ports." % e.port)
            else:
                say("FAILED: concord did not start: %s" % e)
                rc = 1
        except DemoFailed as e:
            say()
            say("FAILED: %s" % e)
            rc = 1
        except KeyboardInterrupt:
            say("interrupted")
            rc = 130
        finally:
            say()
            if shut_down(parts) != 0 and rc == 0:
                rc = 1
        if not again:
            break
        say()
    if rc == 0:
        say("Done: every step above was observed.")
    return rc
