#!/usr/bin/env bash
# The unit and e2e suites under ThreadSanitizer. Any race report fails the
# run; reports are kept in build/tsan/reports/.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset tsan >/dev/null
cmake --build build/tsan -j "$(nproc)"
reports="$PWD/build/tsan/reports"
rm -rf "$reports" && mkdir -p "$reports"
export CONCORD_CHECK_TIMEOUT_S="${CONCORD_CHECK_TIMEOUT_S:-180}" # a unit case's alarm: TSan is slow
export TSAN_OPTIONS="log_path=$reports/race second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
ctest --test-dir build/tsan -j "$(nproc)" -L 'unit|e2e' --output-on-failure "$@"
if ls "$reports"/race* >/dev/null 2>&1; then
  echo "tsan: race reports:"; head -50 "$reports"/race*; exit 1
fi
echo "tsan: no race reported"
