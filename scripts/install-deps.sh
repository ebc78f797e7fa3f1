#!/usr/bin/env bash
# Install the Debian 12 packages concord needs to build, test and run its
# demo, when they are missing. Runs apt-get only if something is missing.
set -euo pipefail

pkgs=(
  build-essential cmake ninja-build pkg-config git
  libsqlite3-dev libyaml-dev libcurl4-openssl-dev libmicrohttpd-dev
  libcjson-dev libjq-dev libonig-dev libssl-dev libpq-dev
  libical-dev libxml2-dev
  python3 curl
)
# Only the test suite needs clang-format, PostgreSQL (scripts/with-pg.sh),
# Radicale (the CalDAV tests), python3-jsonschema (the simulators' checks)
# and Chromium with Selenium (the dashboard's browser test);
# only the fuzzers need clang.
case "${1:-}" in
  --test) pkgs+=(clang-format postgresql radicale python3-jsonschema tzdata
                 chromium chromium-driver python3-selenium) ;;
  --fuzz) pkgs+=(clang libclang-rt-14-dev) ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
