#!/usr/bin/env bash
# Run every fuzz target with libFuzzer for SECONDS each (default 60), from
# a copy of its committed corpus. A crash leaves its input in build/fuzz/;
# make it a unit-test regression case.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
bash scripts/install-deps.sh --fuzz
cmake --preset fuzz >/dev/null
cmake --build build/fuzz
for src in tests/fuzz/fuzz_*.c; do
  name=$(basename "$src" .c)
  work="build/fuzz/corpus-$name"
  mkdir -p "$work"
  cp -n tests/fuzz/corpus/"$name"/* "$work"/ 2>/dev/null || true
  echo "== $name for ${secs}s"
  dict=()
  [ -f "tests/fuzz/$name.dict" ] && dict=("-dict=tests/fuzz/$name.dict")
  "build/fuzz/tests/$name" -max_total_time="$secs" -print_final_stats=1 \
      -artifact_prefix=build/fuzz/ "${dict[@]}" "$work" 2>&1 |
    grep -E "stat::number_of_executed_units|ERROR|SUMMARY|Done" || true
done
