#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The README's first command runs examples/quickstart/demo.py: it must keep
working. The demo checks every step itself and exits non-zero otherwise."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def test_the_quickstart_demo_runs_from_start_to_end():
    demo = os.path.join(harness.REPO, "examples", "quickstart", "demo.py")
    p = subprocess.run([harness.PYTHON, demo], capture_output=True, timeout=120,
                       env=dict(os.environ, CONCORD_BIN=harness.concord_bin()))
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, "demo exited %d:\n%s\n%s" % (p.returncode, out,
                                                          p.stderr.decode(errors="replace"))
    assert "concord updated the CRM: PUT /contacts/c" in out, out  # c1 or c2: creates run at once
    assert '"duplicate"' in out, out
    assert "exit code 0" in out, out


if __name__ == "__main__":
    harness.run_tests(globals())
