#!/usr/bin/env bash
# The README's second command: every check and every test, under ASan and
# UBSan. Set CONCORD_PRESET=dev for a faster run without sanitizers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test
preset="${CONCORD_PRESET:-asan}"

echo "== static checks"
bash scripts/check-format.sh
bash scripts/check-banned.sh
bash scripts/check-headers.sh
bash scripts/check-layers.sh

echo "== build ($preset)"
cmake --preset "$preset" >/dev/null
cmake --build "build/$preset"

echo "== tests ($preset)"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
ctest --preset "$preset" -j "$(nproc)" "$@"
