#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/repeat.sh [RUNS]: bench/run.sh RUNS times (default 5) in a row,
# one line of figures per run, then the median, the lowest and the highest
# of each, and how many runs met each aim.
#
# One run's absolute figures move by 10-25% with the host's load (see
# shared/LIMITS.md and bench/README.md); a figure is worth quoting beside
# the ceiling measured in the same run, and an aim is judged on the
# median of several runs, with the spread beside it. Each run builds
# nothing after the first (CONCORD_BIN is kept), and every setting of
# run.sh (BENCH_*) passes through, except BENCH_PERF and BENCH_KEEP.
# Each run's whole report is kept in a temporary directory (printed).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${1:-5}
case "$RUNS" in
'' | *[!0-9]*) RUNS=0 ;;
*) RUNS=$((10#$RUNS)) ;;
esac
if [ "$RUNS" -lt 1 ]; then
    printf 'usage: bench/repeat.sh [RUNS]   (RUNS a whole number >= 1)\n' >&2
    exit 2
fi
OUT=$(mktemp -d /tmp/concord-repeat.XXXXXX)
export BENCH_PERF=0 BENCH_KEEP=0

# col FILE AWK-PATTERN N: field N of the first line matching the pattern.
col() { awk -v n="$3" "/$2/ { print \$n; exit }" "$1"; }
# mb_max FILE AWK-PATTERN: the largest "N MB" on the first line matching it.
mb_max() {
    awk "/$2/"' { m = ""; for (i = 1; i < NF; i++) if ($i ~ /^[0-9.]+$/ && $(i + 1) ~ /^MB/ && (m == "" || $i + 0 > m + 0)) m = $i; print m; exit }' "$1"
}

printf 'bench/repeat.sh: %d runs of bench/run.sh; reports in %s\n' "$RUNS" "$OUT" >&2
printf '%-4s %8s %8s %6s %8s %8s %7s %8s %7s %7s %7s %7s\n' run ingest "bare-d" ratio "ing-cpu" relay "p50ms" "p99ms" "rl-cpu" \
    "sink" "idleMB" "peakMB"
failed=0
for r in $(seq 1 "$RUNS"); do
    f="$OUT/run-$r.txt"
    if ! bash "$REPO/bench/run.sh" >"$f" 2>"$OUT/run-$r.err"; then
        printf 'run %d failed: see %s; the summary is of the runs before it\n' "$r" "$OUT/run-$r.err" >&2
        failed=1
        break
    fi
    if [ -z "${CONCORD_BIN:-}" ]; then
        CONCORD_BIN=$(awk '/^concord: /{print $2; exit}' "$f")
        export CONCORD_BIN
    fi
    ingest=$(col "$f" 'concord, [0-9]+ connections' 4)
    bare=$(col "$f" 'bare durable, [0-9]+ connections' 5)
    ingest=${ingest:--}
    bare=${bare:--}
    ratio=-
    if [ "$ingest" != - ] && [ "$bare" != - ]; then
        ratio=$(awk -v a="$ingest" -v b="$bare" 'BEGIN { printf("%.2f", (b > 0 ? a / b : 0)) }')
    fi
    icpu=$(awk -F'concord CPU: ' '/per accepted webhook/ { split($2, a, " "); print a[1]; exit }' "$f")
    relay=$(col "$f" 'concord relay, changes delivered' 5)
    p50=$(col "$f" 'concord relay, changes delivered' 6)
    p99=$(col "$f" 'concord relay, changes delivered' 7)
    rcpu=$(awk -F'concord CPU: ' '/per delivered change/ { split($2, a, " "); print a[1]; exit }' "$f")
    sink=$(col "$f" 'sink ceiling' 8)
    idle=$(mb_max "$f" 'idle after start:')
    peak=$(mb_max "$f" 'peak under load:')
    printf '%-4s %8s %8s %6s %8s %8s %7s %8s %7s %7s %7s %7s\n' "$r" "$ingest" "$bare" "$ratio" "${icpu:--}" \
        "${relay:--}" "${p50:--}" "${p99:--}" "${rcpu:--}" "${sink:--}" "${idle:--}" "${peak:--}" | tee -a "$OUT/table.txt"
    # run.sh's own verdicts, one line per aim it judged: "ingest met", ...
    awk 'function verdict() { return $0 ~ /:[ \t]+met$/ ? "met" : "not-met" }
         /aim >= 30000 durable webhooks/ { print "ingest", verdict() }
         /aim >= 10000 changes/ { print "relay", verdict() }
         /aim idle < 20 MB/ { print "idle", verdict() }' "$f" >>"$OUT/aims.txt"
    grep -A20 '^problems seen during the run:' "$f" | sed "s/^/   run $r: /" >&2 || true
done

[ -s "$OUT/table.txt" ] || exit 1
# The summary: median, lowest and highest of each column, over the runs
# that have it.
awk '
function sortcol(c,    i, j, t, n) {
    n = 0
    for (i = 1; i <= NR; i++) if (v[i, c] != "-" && v[i, c] != "") s[++n] = v[i, c] + 0
    for (i = 2; i <= n; i++) { t = s[i]; for (j = i - 1; j >= 1 && s[j] > t; j--) s[j + 1] = s[j]; s[j + 1] = t }
    return n
}
function median(n) { return n % 2 ? s[(n + 1) / 2] : (s[n / 2] + s[n / 2 + 1]) / 2 }
{ for (c = 2; c <= NF; c++) v[NR, c] = $c }
END {
    split("- ingest bare-d ratio ing-cpu relay p50ms p99ms rl-cpu sink idleMB peakMB", name, " ")
    printf "\n%-8s %10s %10s %10s\n", "", "median", "lowest", "highest"
    for (c = 2; c <= 12; c++) {
        n = sortcol(c)
        if (n == 0) continue
        printf "%-8s %10.6g %10.6g %10.6g\n", name[c], median(n), s[1], s[n]
    }
}' "$OUT/table.txt"
# How many runs met each aim, as run.sh judged it.
awk '{ n[$1]++; if ($2 == "met") m[$1]++ }
     END { printf "\naims met (run.sh'"'"'s verdicts): ingest >= 30000/s in %d of %d runs; relay >= 10000/s in %d of %d; idle RSS < 20 MB in %d of %d\n",
           m["ingest"], n["ingest"], m["relay"], n["relay"], m["idle"], n["idle"] }' "$OUT/aims.txt"
exit "$failed"
