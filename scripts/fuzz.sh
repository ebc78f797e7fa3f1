#!/usr/bin/env bash
# Run every fuzz target with libFuzzer for SECONDS each (default 60), from
# a copy of its committed corpus. A crash leaves its input in build/fuzz/;
# make it a unit-test regression case.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
bash scripts/install-deps.sh --fuzz
cmake --preset fuzz >/dev/null
cmake --build build/fuzz -j "$(nproc)"
failed=()
for src in tests/fuzz/fuzz_*.c; do
  name=$(basename "$src" .c)
  work="build/fuzz/corpus-$name"
  mkdir -p "$work"
  cp -n tests/fuzz/corpus/"$name"/* "$work"/ 2>/dev/null || true
  echo "== $name for ${secs}s"
  dict=()
  [ -f "tests/fuzz/$name.dict" ] && dict=("-dict=tests/fuzz/$name.dict")
  # A crash, leak or timeout makes the target exit non-zero: the run goes
  # on to the other targets and fails at the end.
  set +e
  "build/fuzz/tests/$name" -max_total_time="$secs" -print_final_stats=1 \
      -artifact_prefix=build/fuzz/ "${dict[@]}" "$work" 2>&1 |
    grep -E "stat::number_of_executed_units|ERROR:|^SUMMARY: |^Done [0-9]+ runs"
  rc=${PIPESTATUS[0]}
  set -e
  [ "$rc" -eq 0 ] || failed+=("$name (exit $rc)")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]}; inputs in build/fuzz/" >&2
  exit 1
fi
echo "fuzz: every target ran ${secs}s without a finding"
