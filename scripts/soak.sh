#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The crash-and-fault soak of issue 3 at its full size: 10,000 changes over
# 1,000 records, the CRM failing about 20% of its requests, concord killed
# with kill -9 every few seconds (tests/e2e/test_soak.py), once per seed.
#
#   bash scripts/soak.sh [SEEDS]      # SEEDS runs, default 3
#
# Uses build/release/concord (built if missing) unless CONCORD_BIN is set.
# CONCORD_SOAK_SEED=S runs seeds S, S+1, ...; otherwise each seed is fresh.
# CONCORD_SOAK_RECORDS, CONCORD_SOAK_CHANGES, CONCORD_SOAK_SECONDS (the
# posting phase's bound, default 900), CONCORD_SOAK_RATE (changes per second,
# default 100: about 100 s and 35 kills per seed), CONCORD_SOAK_STRICT and
# CONCORD_SOAK_KINDS pass through. Each run's output is kept in
# build/soak/seed-SEED.log; one summary line per seed is printed, and the
# exit status is 1 if any seed failed.
set -euo pipefail
cd "$(dirname "$0")/.."

seeds="${1:-3}"
case "$seeds" in
'' | *[!0-9]*)
    echo "usage: bash scripts/soak.sh [SEEDS]" >&2
    exit 2
    ;;
esac

bin="${CONCORD_BIN:-build/release/concord}"
if [ ! -x "$bin" ]; then
    if [ -n "${CONCORD_BIN:-}" ]; then
        echo "soak: no executable at CONCORD_BIN=$bin" >&2
        exit 2
    fi
    echo "soak: building $bin"
    cmake --preset release >/dev/null
    cmake --build build/release -j "$(nproc)"
fi
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"

mkdir -p build/soak
failed=0
for i in $(seq 0 $((seeds - 1))); do
    if [ -n "${CONCORD_SOAK_SEED:-}" ]; then
        seed=$((CONCORD_SOAK_SEED + i))
    else
        seed=$(/usr/bin/python3 -c 'import random; print(random.randrange(1, 2**31))')
    fi
    log="build/soak/seed-$seed.log"
    rc=0
    CONCORD_BIN="$bin" \
        CONCORD_SOAK_SEED="$seed" \
        CONCORD_SOAK_RECORDS="${CONCORD_SOAK_RECORDS:-1000}" \
        CONCORD_SOAK_CHANGES="${CONCORD_SOAK_CHANGES:-10000}" \
        CONCORD_SOAK_SECONDS="${CONCORD_SOAK_SECONDS:-900}" \
        CONCORD_SOAK_RATE="${CONCORD_SOAK_RATE:-100}" \
        /usr/bin/python3 tests/e2e/test_soak.py >"$log" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || failed=1
    /usr/bin/python3 - "$log" "$seed" "$rc" <<'EOF'
import json, sys
path, seed, rc = sys.argv[1], sys.argv[2], int(sys.argv[3])
summary = None
reason = ""
with open(path, errors="replace") as f:
    for line in f:
        if line.startswith("soak: "):
            summary = json.loads(line[6:])
        elif line.startswith("FAIL "):
            reason = line.split(": ", 1)[-1].strip()
verdict = "ok" if rc == 0 else "FAIL"
if summary is None:
    print("seed %s: %s (no summary; see %s) %s" % (seed, verdict, path, reason[:300]))
    sys.exit(0)
s = summary
print("seed %s: %s  changes %d  records %d  kills %d  crashes %d  CRM requests %d  "
      "creates %d  duplicates %d  out-of-order %d  missing %d  stale %d  inbox %s  %.0fs%s"
      % (seed, verdict, s["changes"], s["records"], s["kills"], s.get("crashes", 0),
         s["crm_requests"], s["creates"], s["duplicates"], s["violations"], s["missing"],
         s["stale"], json.dumps(s["inbox"], sort_keys=True), s["wall_s"],
         "  (time bound hit)" if s.get("truncated") else ""))
if rc != 0:
    print("    %s  (log: %s)" % (reason[:400], path))
EOF
done
exit "$failed"
