#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/sql.sh: SQL tables at scale (the Scheduled-sync issue), beside what
# SQLite itself does with the same rows on this machine, in the same run.
#
#   bash bench/sql.sh
#
# 1. Backfill: a SQLite table of N customers (src.db) is synced one way into
#    an empty table of another SQLite file (dst.db) by a fresh concord: the
#    first poll reads every row, and every row becomes a record, a link and
#    an insert. Reported: wall time until dst holds N rows, rows/s, peak RSS.
#    Ceiling: `INSERT INTO dst SELECT * FROM src` by the sqlite3 shell.
# 2. Reconcile: 1% of src's rows are changed behind concord's back (no
#    updated_at bump, so no poll sees them), then `concord reconcile` reads
#    src whole against its N linked records. Reported: wall time, rows/s,
#    peak RSS of the reconcile, and how many it found drifted. Ceiling: a
#    full scan `SELECT * FROM src` by the sqlite3 shell.
#
# Settings (environment):
#   CONCORD_BIN        the binary (default: build/release/concord, built here)
#   BENCH_SQL_ROWS     N (default 1000000)
#   BENCH_SQL_DEADLINE seconds the backfill may take (default 1800)
#   BENCH_KEEP         1: keep the work directory
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${BENCH_SQL_ROWS:-1000000}
DEADLINE=${BENCH_SQL_DEADLINE:-1800}
KEEP=${BENCH_KEEP:-0}

say() { printf '%s\n' "$*" >&2; }
die() { say "bench: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { /usr/bin/python3 -c "print('%.2f' % ($2 - $1))"; }

if [ -z "${CONCORD_BIN:-}" ]; then
  cmake --preset release >/dev/null && cmake --build build/release -j2 >/dev/null \
    || die "the release build failed"
  CONCORD_BIN="$REPO/build/release/concord"
fi
command -v sqlite3 >/dev/null || die "the sqlite3 shell is missing (apt-get install sqlite3)"

work=$(mktemp -d /tmp/concord-bench-sql.XXXXXX)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  if [ "$KEEP" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
cd "$work"

say "== $N rows"
TABLE="CREATE TABLE people (id INTEGER PRIMARY KEY, mail TEXT NOT NULL, full_name TEXT,
  tel TEXT, changed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')));
  CREATE INDEX people_changed ON people (changed_at, id);"
sqlite3 src.db "PRAGMA journal_mode=WAL; $TABLE
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $N)
  INSERT INTO people (id, mail, full_name, tel, changed_at)
  SELECT i, 'p' || i || '@example.com', 'Person ' || i, '+44 ' || i,
         strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM n;" >/dev/null
sqlite3 dst.db "PRAGMA journal_mode=WAL; $TABLE" >/dev/null
cp dst.db ceiling.db

# The ceilings: SQLite copying and scanning the same rows.
t0=$(now)
sqlite3 ceiling.db "ATTACH 'src.db' AS s; INSERT INTO people SELECT * FROM s.people;" >/dev/null
ceil_copy=$(elapsed "$t0" "$(now)")
t0=$(now)
sqlite3 src.db "SELECT * FROM people;" >/dev/null
ceil_scan=$(elapsed "$t0" "$(now)")
rm -f ceiling.db

cat >concord.yaml <<EOF
listen: 127.0.0.1:0
store: sqlite:state.db
log: {level: warn, format: json}
systems:
  src:
    kind: sqlite
    path: src.db
    delete_guard: off
    collections:
      people:
        model: customer
        table: people
        key: id
        updated_at: changed_at
        map_in: {email: mail, name: full_name, phone: tel}
        poll: {every: 1s, jitter: 0}
  dst:
    kind: sqlite
    path: dst.db
    collections:
      people:
        model: customer
        table: people
        key: id
        updated_at: changed_at
        map_out: {mail: email, full_name: name, tel: phone}
models:
  customer:
    fields: {email: string, name: string, phone: string}
syncs:
  people:
    model: customer
    origin: src
    collections: [src.people, dst.people]
EOF

peak_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

say "== backfill"
t0=$(now)
"$CONCORD_BIN" run -c concord.yaml >run.log 2>&1 &
pid=$!
peak=0
count=0
while :; do
  sleep 1
  kill -0 "$pid" 2>/dev/null || die "concord exited: $(tail -5 run.log)"
  p=$(peak_kb "$pid"); [ "$p" -gt "$peak" ] && peak=$p
  count=$(sqlite3 dst.db "SELECT count(*) FROM people;" 2>/dev/null || echo "$count")
  [ "$count" -ge "$N" ] && break
  if [ "$(elapsed "$t0" "$(now)" | cut -d. -f1)" -ge "$DEADLINE" ]; then
    say "backfill: only $count of $N rows after ${DEADLINE}s"
    break
  fi
done
backfill_s=$(elapsed "$t0" "$(now)")
kill "$pid"; wait "$pid" 2>/dev/null || true
pid=""
backfill_rate=$(/usr/bin/python3 -c "print(round($count / $backfill_s))")
copy_rate=$(/usr/bin/python3 -c "print(round($N / max($ceil_copy, 0.001)))")

say "== reconcile after 1% drift"
drift=$((N / 100))
sqlite3 src.db "UPDATE people SET full_name = full_name || ' (drifted)' WHERE id % 100 = 0;" \
  >/dev/null
t0=$(now)
/usr/bin/time -f '%M' -o reconcile.rss "$CONCORD_BIN" reconcile src.people --json -c concord.yaml \
  >reconcile.json 2>reconcile.err || die "the reconcile failed: $(tail -3 reconcile.err)"
reconcile_s=$(elapsed "$t0" "$(now)")
reconcile_kb=$(cat reconcile.rss)
scan_rate=$(/usr/bin/python3 -c "print(round($N / max($ceil_scan, 0.001)))")
/usr/bin/python3 - "$N" "$count" "$backfill_s" "$backfill_rate" "$peak" "$ceil_copy" \
  "$copy_rate" "$reconcile_s" "$reconcile_kb" "$ceil_scan" "$scan_rate" "$drift" <<'PY'
import json, sys
(n, count, bs, brate, peak, ccopy, crate, rs, rkb, cscan, srate, drift) = sys.argv[1:]
rep = json.load(open("reconcile.json"))
rrate = round(int(n) / float(rs))
print("backfill  : %s of %s rows in %s s = %s rows/s, peak RSS %.1f MB "
      "(sqlite3 INSERT ... SELECT: %s s = %s rows/s; ratio %.3f)"
      % (count, n, bs, brate, int(peak) / 1024, ccopy, crate, int(brate) / max(int(crate), 1)))
print("reconcile : %s rows in %s s = %s rows/s, peak RSS %.1f MB; in sync %s, drifted %s "
      "(of %s changed), new %s, missing %s (sqlite3 full scan: %s s = %s rows/s; ratio %.3f)"
      % (n, rs, rrate, int(rkb) / 1024, rep.get("in_sync"), rep.get("drifted"), drift,
         rep.get("new"), rep.get("missing"), cscan, srate, rrate / max(int(srate), 1)))
PY
