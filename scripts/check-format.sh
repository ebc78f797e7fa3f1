#!/usr/bin/env bash
# Every C file is formatted as .clang-format says.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "check-format: clang-format missing"; exit 1; }
bad=$(git ls-files '*.c' '*.h' | while read -r f; do
  [ -f "$f" ] && ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1 && echo "$f"
done || true)
if [ -n "$bad" ]; then
  echo "check-format: run clang-format -i on:"; echo "$bad"; exit 1
fi
