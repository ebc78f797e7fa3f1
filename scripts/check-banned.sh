#!/usr/bin/env bash
# No call of a banned function under src/ (STYLE.md B.13).
set -euo pipefail
cd "$(dirname "$0")/.."
banned='gets|strcpy|strcat|sprintf|vsprintf|strtok|atoi|atol|atof|strerror|localtime|gmtime|asctime|ctime|rand|system|popen|alloca|signal'
hits=$(grep -rnE "(^|[^a-zA-Z0-9_.>])($banned)[[:space:]]*\(" src --include='*.c' --include='*.h' \
  | grep -vE '^\S+:[0-9]+:\s*(/\*|\*)' || true)
if [ -n "$hits" ]; then
  echo "check-banned: banned calls:"; echo "$hits"; exit 1
fi
