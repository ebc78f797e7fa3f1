#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The convergence property test of issue 4 at full size: hundreds of seeds
# of tests/e2e/test_converge.py (three systems that all write, random
# creates, edits and deletes, dropped/late/duplicated webhooks and echoes,
# random delivery faults; then concord reconciles every system and the
# three must agree with each other and with concord).
#
#   bash scripts/converge.sh [SEEDS]     # SEEDS seeds, default 200
#
# Uses build/release/concord (built if missing) unless CONCORD_BIN is set.
# CONCORD_CONVERGE_SEED=S runs seeds S, S+1, ...; otherwise the first is
# fresh. CONCORD_CONVERGE_OPS (default 300), CONCORD_CONVERGE_JOBS (seeds
# at a time, default 3), CONCORD_CONVERGE_POLICY, CONCORD_CONVERGE_QUIET_MS
# and CONCORD_CONVERGE_LOG pass through. The whole output is kept in
# build/converge/run-FIRSTSEED.log (failing seeds keep their concord dir in
# /tmp, named in the log); a summary is printed, and the exit status is 1
# if any seed failed. A seed that passes only because reconcile wrote a copy
# that had not changed but was not what its record maps to (concord logs
# "though it did not change": an update lost upstream) is counted in the
# summary, and its concord dir is kept as /tmp/concord-converge-net-SEED-PID.
set -euo pipefail
cd "$(dirname "$0")/.."

seeds="${1:-200}"
case "$seeds" in
'' | *[!0-9]*)
    echo "usage: bash scripts/converge.sh [SEEDS]" >&2
    exit 2
    ;;
esac

bin="${CONCORD_BIN:-build/release/concord}"
if [ ! -x "$bin" ]; then
    if [ -n "${CONCORD_BIN:-}" ]; then
        echo "converge: no executable at CONCORD_BIN=$bin" >&2
        exit 2
    fi
    echo "converge: building $bin"
    cmake --preset release >/dev/null
    cmake --build build/release -j2
fi
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"

if [ -n "${CONCORD_CONVERGE_SEED:-}" ]; then
    first="$CONCORD_CONVERGE_SEED"
else
    first=$(/usr/bin/python3 -c 'import random; print(random.randrange(1, 2**31 - 100000))')
fi
mkdir -p build/converge
log="build/converge/run-$first.log"
echo "converge: $seeds seeds from $first, ${CONCORD_CONVERGE_OPS:-300} ops each (log: $log)"
rc=0
CONCORD_BIN="$bin" CONCORD_CONVERGE_BUDGET_S="${CONCORD_CONVERGE_BUDGET_S:-0}" \
    CONCORD_TEST_SEED="$first" \
    CONCORD_CONVERGE_SEEDS="$seeds" \
    CONCORD_CONVERGE_OPS="${CONCORD_CONVERGE_OPS:-300}" \
    /usr/bin/python3 tests/e2e/test_converge.py test_three_systems_converge >"$log" 2>&1 || rc=$?

/usr/bin/python3 - "$log" "$rc" <<'EOF'
import json, sys
path, rc = sys.argv[1], int(sys.argv[2])
runs = []
with open(path, errors="replace") as f:
    for line in f:
        if line.startswith("converge: "):
            runs.append(json.loads(line[len("converge: "):]))
ok = [r for r in runs if r.get("ok")]
bad = [r for r in runs if not r.get("ok")]
by_policy = {}
for r in runs:
    p = by_policy.setdefault(r["policy"], [0, 0])
    p[0 if r.get("ok") else 1] += 1
print("converge: %d seeds, %d ok, %d failed  (%s)" % (
    len(runs), len(ok), len(bad),
    ", ".join("%s %d ok / %d failed" % (k, v[0], v[1]) for k, v in sorted(by_policy.items()))))
if ok:
    def total(key):
        return sum(r.get(key, 0) for r in ok)
    conflicts = {}
    for r in ok:
        for k, v in r.get("conflicts", {}).items():
            conflicts[k] = conflicts.get(k, 0) + v
    print("  passing seeds: %d ops, %d creates, %d deletes, %d faults, %d webhooks dropped, "
          "%d held, %d duplicated, %d echo duplicates; conflicts %s; %d resolved by hand; "
          "writes per op per system at most %.2f; %.1fs a seed on average" % (
              total("ops"), total("create"), total("delete"), total("faults"), total("dropped"),
              total("held"), total("dups"), total("echo_dups"), json.dumps(conflicts),
              total("resolved"), max(r.get("max_writes_per_op", 0) for r in ok),
              total("wall_s") / len(ok)))
caught = [r for r in ok if r.get("net_catches")]
if caught:
    print("  the reconcile net caught %d lost update(s) in %d passing seed(s): %s" % (
        sum(r["net_catches"] for r in caught), len(caught),
        ", ".join("%s (%s)" % (r["seed"], r["policy"]) for r in caught[:20])))
for r in bad:
    e = r.get("error", "")
    print("  FAIL seed %s (%s): %s  (dir %s)" % (r["seed"], r["policy"], e[:200], r.get("dir")))
if not runs:
    print("  no seed reported (see %s)" % path)
if rc != 0 and not bad:
    print("  the run failed without a failing seed (see %s)" % path)
EOF
exit "$rc"
