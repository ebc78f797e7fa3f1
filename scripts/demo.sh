#!/usr/bin/env bash
# The README's first command: install what is missing, build, and run the
# quickstart demo (a shop and a CRM kept in agreement by concord).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset dev >/dev/null
cmake --build build/dev --target concord
CONCORD_BIN="$PWD/build/dev/concord" exec /usr/bin/python3 examples/quickstart/demo.py "$@"
