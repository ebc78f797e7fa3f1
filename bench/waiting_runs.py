#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Not a test: prints the CPU seconds the daemon spends on N versions of
one record under an automation with "on: updated", a 2 h wait and (or
without) an `if`, each version adding a waiting run that every later
version checks. Linear work shows as 2,000 versions costing about four
times 500.

  CONCORD_BIN=$PWD/build/release/concord /usr/bin/python3 bench/waiting_runs.py"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from test_automations import waiting_runs_cpu  # noqa: E402

if __name__ == "__main__":
    for condition in (None, ".new.title != null", '.source != "automation:x"'):
        for n in (500, 2000):
            spent, states = waiting_runs_cpu([n], condition)
            print("if %-28s N=%5d: %6.2f s CPU, %d runs, states %s"
                  % (condition or "(none)", n, spent[0], len(states), sorted(set(states))),
                  flush=True)
