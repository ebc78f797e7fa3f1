#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/run.sh: measure concord's speed beside the ceilings of this machine,
# all in one run, all on 127.0.0.1. bench/README.md explains each figure.
#
#   bash bench/run.sh
#
# Settings (environment):
#   CONCORD_BIN          the binary (default: build/release/concord, built here)
#   BENCH_DURATION       seconds of each fixed-length wrk run (10)
#   BENCH_CONNECTIONS    wrk connections (64)      BENCH_WRK_THREADS  wrk threads (2)
#   BENCH_CONNECTIONS_HIGH  connections of the second durable ingest runs, of
#                        concord and of the bare durable ceiling (256; 0: skip)
#   BENCH_RELAY_N        new customers in the relay (50000)
#   BENCH_MAX_IN_FLIGHT  the CRM system's max_in_flight (32)
#   BENCH_SIGN           1: sign webhooks with HMAC-SHA256 (default); 0: unsigned
#   BENCH_KEEP           1: keep the work directory (stores, configs, logs)
#   BENCH_JQ             1: compute name and vip with jq, as the quickstart does
#   BENCH_IDEMPOTENCY    1: the CRM takes an Idempotency-Key
#   BENCH_STORE_OPTS     appended to the store URL, e.g. "?synchronous=normal"
#                        (not power-safe: to see what fsync costs, never to report)
#   BENCH_PERF           1: record `perf record -g` of concord during the ingest
#                        and relay runs into the work directory (implies BENCH_KEEP)
#   BENCH_ONLY           relay: only section 2 (the relay) and concord's memory
#   BENCH_FSYNC_DELAY_US a slower disk: every fsync of a SQLite WAL takes this
#                        much longer (LD_PRELOAD tests/shim/syncgate.c)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$REPO/bench"
DURATION=${BENCH_DURATION:-10}
CONNS=${BENCH_CONNECTIONS:-64}
CONNS_HIGH=${BENCH_CONNECTIONS_HIGH:-256}
WRK_THREADS=${BENCH_WRK_THREADS:-2}
RELAY_N=${BENCH_RELAY_N:-50000}
MAX_IN_FLIGHT=${BENCH_MAX_IN_FLIGHT:-32}
SIGN=${BENCH_SIGN:-1}
PERF=${BENCH_PERF:-0}
KEEP=${BENCH_KEEP:-$PERF}
RELAY_DEADLINE_S=90
ONLY=${BENCH_ONLY:-}
case "$ONLY" in
"" | relay) ;;
*) printf 'bench: BENCH_ONLY is "relay" or unset, not "%s"\n' "$ONLY" >&2; exit 2 ;;
esac
SECRET="bench-shop-secret-$$"

say() { printf '%s\n' "$*" >&2; }
die() { say "bench: $*"; exit 1; }

# ---------------------------------------------------------------- tools
need_pkgs=()
command -v wrk >/dev/null || need_pkgs+=(wrk)
command -v curl >/dev/null || need_pkgs+=(curl)
command -v cc >/dev/null || need_pkgs+=(gcc)
command -v cmake >/dev/null || need_pkgs+=(cmake)
command -v ninja >/dev/null || need_pkgs+=(ninja-build)
[ -e /usr/include/microhttpd.h ] || need_pkgs+=(libmicrohttpd-dev)
[ -e /usr/include/openssl/hmac.h ] || need_pkgs+=(libssl-dev)
[ -e /usr/include/sqlite3.h ] || need_pkgs+=(libsqlite3-dev)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    say "bench: installing ${need_pkgs[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    if ! { $SUDO apt-get update -qq >&2 && $SUDO apt-get install -y -qq "${need_pkgs[@]}" >&2; }; then
        die "could not install ${need_pkgs[*]}"
    fi
fi

# ---------------------------------------------------------------- builds
TOOLS="$REPO/build/bench-tools"
mkdir -p "$TOOLS"
for prog in bare sink; do
    if [ ! -x "$TOOLS/$prog" ] || [ "$BENCH/$prog.c" -nt "$TOOLS/$prog" ]; then
        cc -O2 -g -std=c11 -Wall -Wextra -o "$TOOLS/$prog" "$BENCH/$prog.c" -lmicrohttpd -lsqlite3 \
            -lpthread || die "could not build bench/$prog.c"
    fi
done

BUILD_NOTE="release preset"
if [ -n "${CONCORD_BIN:-}" ]; then
    BUILD_NOTE="CONCORD_BIN"
else
    CONCORD_BIN="$REPO/build/release/concord"
    if ! (cd "$REPO" && cmake --preset release >/dev/null &&
        cmake --build build/release --target concord >/dev/null) 2>"$TOOLS/release-build.log"; then
        # The preset builds with warnings as errors; a warning in the tree
        # must not stop the measurement: same flags, warnings allowed.
        say "bench: the release preset did not build (see $TOOLS/release-build.log);"
        say "       building the same flags without -Werror in build/bench-release"
        cmake -S "$REPO" -B "$REPO/build/bench-release" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
            -DCONCORD_WERROR=OFF -DCMAKE_C_FLAGS="-O2 -D_FORTIFY_SOURCE=3 -fstack-protector-strong" \
            >/dev/null || die "cmake configure failed"
        cmake --build "$REPO/build/bench-release" --target concord >/dev/null || die "build failed"
        CONCORD_BIN="$REPO/build/bench-release/concord"
        BUILD_NOTE="release flags without -Werror (the preset failed)"
    fi
fi
[ -x "$CONCORD_BIN" ] || die "no concord binary at $CONCORD_BIN"

# A slower disk: every fsync of a SQLite WAL (concord's and bare durable's,
# not the probe's) takes BENCH_FSYNC_DELAY_US longer (tests/shim/syncgate.c).
FSYNC_DELAY_US=${BENCH_FSYNC_DELAY_US:-0}
SLOW_DISK=() # put in front of the commands of concord and bare durable
if [ "$FSYNC_DELAY_US" != 0 ]; then
    (cd "$REPO" && cmake --preset release >/dev/null &&
        cmake --build build/release --target syncgate >/dev/null) || die "the syncgate shim did not build"
    SLOW_DISK=(env "LD_PRELOAD=$REPO/build/release/tests/libsyncgate.so${LD_PRELOAD:+:$LD_PRELOAD}"
        "SYNCGATE_DELAY_US=$FSYNC_DELAY_US")
fi

# ---------------------------------------------------------------- work dir
# The store must sit on a real disk so that fsync costs what it costs.
store_base=${TMPDIR:-/tmp}
if [ "$(stat -f -c %T "$store_base")" = tmpfs ] ||
    [ "$(df --output=source "$store_base" | tail -1)" != "$(df --output=source "$REPO" | tail -1)" ]; then
    store_base="$REPO/build/bench-store"
    mkdir -p "$store_base"
fi
WORK=$(mktemp -d "$store_base/concord-bench.XXXXXX")
STORE_FS="$(stat -f -c %T "$WORK") on $(df --output=source "$WORK" | tail -1)"

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [ "$KEEP" = 1 ]; then
        say "bench: work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- helpers
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Listening ports come from below the ephemeral range, so that no client
# socket of wrk or concord can hold them.
EPHEMERAL_LOW=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
pick_port() {
    local p
    for _ in $(seq 1 200); do
        p=$((10000 + RANDOM % (EPHEMERAL_LOW - 10000)))
        if port_free "$p" && [[ " ${USED_PORTS:-} " != *" $p "* ]]; then
            USED_PORTS="${USED_PORTS:-} $p"
            echo "$p"
            return
        fi
    done
    die "no free port found"
}

# wait_http URL: until it answers at all (any status), for up to 10 s.
wait_http() {
    local deadline=$((SECONDS + 10))
    until curl -s -o /dev/null --max-time 1 "$1"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.05
    done
}

# start NAME CMD...: run in the background, log in $WORK/NAME.log; sets $LAST_PID.
start() {
    local name=$1
    shift
    "$@" >"$WORK/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

# stop_pid PID [WHAT]: SIGTERM, then SIGKILL after 15 s (noted in NOTES).
NOTES=()
stop_pid() {
    local deadline=$((SECONDS + 15))
    kill -TERM "$1" 2>/dev/null || true
    while kill -0 "$1" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
        sleep 0.05
    done
    if kill -0 "$1" 2>/dev/null; then
        NOTES+=("${2:-process $1} did not stop within 15 s of SIGTERM; killed")
        kill -KILL "$1" 2>/dev/null || true
    fi
    wait "$1" 2>/dev/null || true
}

# alive_or_note PID WHAT: note when a process died under load.
alive_or_note() {
    if ! kill -0 "$1" 2>/dev/null; then
        NOTES+=("$2 died during the run (see its log in the work directory)")
        return 1
    fi
}

# field LINE KEY: the number after " KEY=" in LINE.
field() { sed -n "s/.* $2=\([0-9]*\).*/\1/p" <<<" $1" | head -1; }

calc() { awk "BEGIN { printf \"$1\", $2 }"; }

kb_of() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }

cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
CLK_TCK=$(getconf CLK_TCK)

# wrk_fixed URL [env...]: a DURATION-second run of $CONNS connections (or
# $WRK_CONNS when set); prints the BENCH line.
wrk_fixed() {
    local url=$1
    shift
    env BENCH_RUN="r$RANDOM" "$@" wrk -t"$WRK_THREADS" -c"${WRK_CONNS:-$CONNS}" -d"${DURATION}s" --timeout 10s \
        -s "$BENCH/webhook.lua" "$url" >"$WORK/wrk.out" 2>&1 || die "wrk failed: $(cat "$WORK/wrk.out")"
    grep '^BENCH ' "$WORK/wrk.out" || die "no result from wrk: $(cat "$WORK/wrk.out")"
}

# rate_of BENCH_LINE: 2xx answers per second.
rate_of() {
    local r n d
    r=$(field "$1" requests)
    n=$(field "$1" non2xx)
    d=$(field "$1" duration_us)
    calc "%.0f" "($r - $n) / ($d / 1e6)"
}

sign_env=()
sig_yaml=""
if [ "$SIGN" = 1 ]; then
    sign_env=(BENCH_SECRET="$SECRET")
    sig_yaml='
      signature:
        scheme: hmac
        header: X-Shop-Signature
        secret: env:SHOP_WEBHOOK_SECRET
        encoding: hex
        prefix: "sha256="
        timestamp_header: X-Shop-Timestamp
        tolerance_s: 300
        signed: "{timestamp}.{body}"'
fi

# The maps: native field copies by default (the lean path of LIMITS.md);
# BENCH_JQ=1 computes name and vip with jq as the quickstart does.
if [ "${BENCH_JQ:-0}" = 1 ]; then
    name_map="
          name: {jq: '[.first_name, .last_name] | map(select(. != null)) | join(\" \")'}"
    vip_map="
          vip: {jq: '(.tags // []) | any(. == \"vip\")'}"
else
    name_map="
          name: last_name"
    vip_map=""
fi

# BENCH_IDEMPOTENCY=1: the CRM takes an Idempotency-Key, so a create may be
# sent again safely. (Creates reuse keep-alive connections either way.)
idem_yaml=""
if [ "${BENCH_IDEMPOTENCY:-0}" = 1 ]; then
    idem_yaml="
        idempotency_header: Idempotency-Key"
fi

# write_config FILE PORT STORE CRM_URL|-: the quickstart's shop (same maps,
# jq only with BENCH_JQ=1); with a CRM URL also the quickstart's CRM contacts.
write_config() {
    local file=$1 port=$2 store=$3 crm=$4 sync_cols="[shop.customers]" crm_yaml=""
    if [ "$crm" != - ]; then
        sync_cols="[shop.customers, crm.contacts]"
        crm_yaml="
  crm:
    kind: http
    base_url: $crm
    timeout_ms: 10000
    max_in_flight: $MAX_IN_FLIGHT
    retry: {max_attempts: 6, base_ms: 500, cap_ms: 30000, jitter: 0.2}
    collections:
      contacts:
        model: customer
        id: id
        map_out:
          contact_email: email
          full_name: name
          phone_number: phone
          lifecycle: status
          balance: balance
          is_vip: vip
          source: {const: concord}
        create: POST /contacts
        update: PUT /contacts/{id}
        delete: DELETE /contacts/{id}
        created_id: id$idem_yaml"
    fi
    cat >"$file" <<EOF
# generated by bench/run.sh
listen: 127.0.0.1:$port
store: sqlite:$store${BENCH_STORE_OPTS:-}

systems:
  shop:
    kind: http
    base_url: http://127.0.0.1:9
    webhook:
      path: /webhooks/shop
      delivery_id_header: X-Shop-Delivery$sig_yaml
    collections:
      customers:
        model: customer
        id: id
        record: customer
        deleted_when: '.event == "customer.deleted"'
        map_in:
          email: email$name_map
          phone: phone
          status: {path: state, values: {open: active, closed: archived}, default: open}
          balance: balance$vip_map
$crm_yaml

models:
  customer:
    fields:
      email: string
      name: string
      phone: string
      status: string
      balance: decimal
      vip: boolean

syncs:
  customers:
    model: customer
    origin: shop
    collections: $sync_cols
EOF
}

# start_concord NAME CONFIG PORT: start it, wait for /healthz; sets $CPID.
start_concord() {
    SHOP_WEBHOOK_SECRET="$SECRET" "$CONCORD_BIN" check -c "$2" >"$WORK/$1.check" 2>&1 ||
        die "concord check refused the bench config: $(cat "$WORK/$1.check")"
    start "$1" "${SLOW_DISK[@]}" env SHOP_WEBHOOK_SECRET="$SECRET" "$CONCORD_BIN" run -c "$2"
    CPID=$LAST_PID
    wait_http "http://127.0.0.1:$3/healthz" || die "concord did not start: $(tail -5 "$WORK/$1.log")"
}

PERF_PID=""
perf_start() {
    [ "$PERF" = 1 ] || return 0
    perf record -g -F 999 -p "$1" -o "$WORK/$2.perf.data" >"$WORK/$2.perf.log" 2>&1 &
    PERF_PID=$!
    sleep 0.3
}
perf_stop() {
    [ -n "$PERF_PID" ] || return 0
    kill -INT "$PERF_PID" 2>/dev/null || true
    wait "$PERF_PID" 2>/dev/null || true
    PERF_PID=""
}

T0=$SECONDS
say "bench: work directory $WORK ($STORE_FS); concord $CONCORD_BIN"

# ---------------------------------------------------------------- 1. ingest
declare -A RATE P50 P99 NON2XX SOCKERR DURABLE
# record KEY LINE: the figures of one wrk run under KEY.
record() {
    RATE[$1]=$(rate_of "$2")
    P50[$1]=$(field "$2" p50_us)
    P99[$1]=$(field "$2" p99_us)
    NON2XX[$1]=$(field "$2" non2xx)
    SOCKERR[$1]=$(field "$2" sockerr)
}

# fsync_probe COUNT KIB: the disk's own latency, COUNT writes of KIB KiB, each
# followed by fdatasync, in the work directory; prints the BARE_FSYNC line.
fsync_probe() {
    "$TOOLS/bare" fsync "$WORK/fsync-probe" "$1" "$2" >"$WORK/fsync.out" 2>&1 ||
        die "the fsync probe failed: $(cat "$WORK/fsync.out")"
    grep '^BARE_FSYNC ' "$WORK/fsync.out" || die "no result from the fsync probe"
}

# bare_durable KEY CONNECTIONS: the durable ceiling with a fresh store in the
# work directory; records KEY, and its writer's BARE_DURABLE line in DURABLE.
bare_durable() {
    local port line bpid
    port=$(pick_port)
    say "bench: bare durable (SQLite WAL, synchronous=FULL, group commit), $2 connections, ${DURATION}s"
    start "$1" "${SLOW_DISK[@]}" "$TOOLS/bare" "$port" durable "$WORK/$1.db"
    bpid=$LAST_PID
    wait_http "http://127.0.0.1:$port/" || die "bare durable did not start: $(tail -5 "$WORK/$1.log")"
    line=$(WRK_CONNS=$2 wrk_fixed "http://127.0.0.1:$port/webhooks/shop" "${sign_env[@]}")
    alive_or_note "$bpid" "bare durable ($2 connections)" || true
    stop_pid "$bpid" "bare durable ($2 connections)"
    record "$1" "$line"
    DURABLE[$1]=$(grep '^BARE_DURABLE ' "$WORK/$1.log" || true)
}

if [ "$ONLY" != relay ]; then
say "bench: fsync latency of the store's disk"
FSYNC_BEFORE=$(fsync_probe 300 4)
FSYNC_BIG_BEFORE=$(fsync_probe 100 128)

for mode in pool tpc; do
    port=$(pick_port)
    say "bench: bare libmicrohttpd ($mode), ${DURATION}s"
    start "bare-$mode" "$TOOLS/bare" "$port" "$mode"
    bpid=$LAST_PID
    wait_http "http://127.0.0.1:$port/" || die "bare did not start"
    line=$(wrk_fixed "http://127.0.0.1:$port/webhooks/shop" "${sign_env[@]}")
    stop_pid "$bpid" "bare ($mode)"
    record "bare-$mode" "$line"
done

bare_durable bare-durable "$CONNS"

port=$(pick_port)
write_config "$WORK/ingest.yaml" "$port" "$WORK/ingest.db" -
say "bench: concord ingest, ${DURATION}s"
start_concord concord-ingest "$WORK/ingest.yaml" "$port"
sleep 1
IDLE_RSS_KB=$(kb_of "$CPID" VmRSS)
perf_start "$CPID" ingest
t_before=$(cpu_ticks "$CPID")
line=$(wrk_fixed "http://127.0.0.1:$port/webhooks/shop" "${sign_env[@]}")
INGEST_HWM_KB=0
t_after=$t_before
if alive_or_note "$CPID" "concord (ingest)"; then
    t_after=$(cpu_ticks "$CPID")
    INGEST_HWM_KB=$(kb_of "$CPID" VmHWM)
fi
perf_stop
stop_pid "$CPID" "concord (ingest)"
record concord "$line"
INGEST_OK=$(($(field "$line" requests) - NON2XX[concord]))
INGEST_CPU_US=$(calc "%.1f" "($t_after - $t_before) * 1e6 / $CLK_TCK / ($INGEST_OK > 0 ? $INGEST_OK : 1)")
INGEST_CPU_CORES=$(calc "%.2f" "($t_after - $t_before) / $CLK_TCK / $(field "$line" duration_us) * 1e6")

# The same two at more connections: does the bound move with them?
if [ "$CONNS_HIGH" -gt 0 ]; then
    bare_durable bare-durable-high "$CONNS_HIGH"
    port=$(pick_port)
    write_config "$WORK/ingest-high.yaml" "$port" "$WORK/ingest-high.db" -
    say "bench: concord ingest, $CONNS_HIGH connections, ${DURATION}s"
    start_concord concord-ingest-high "$WORK/ingest-high.yaml" "$port"
    line=$(WRK_CONNS=$CONNS_HIGH wrk_fixed "http://127.0.0.1:$port/webhooks/shop" "${sign_env[@]}")
    alive_or_note "$CPID" "concord (ingest, $CONNS_HIGH connections)" || true
    stop_pid "$CPID" "concord (ingest, $CONNS_HIGH connections)"
    record concord-high "$line"
fi

say "bench: fsync latency of the store's disk, again"
FSYNC_AFTER=$(fsync_probe 300 4)
FSYNC_BIG_AFTER=$(fsync_probe 100 128)
fi # BENCH_ONLY

# ---------------------------------------------------------------- 2. relay
sport=$(pick_port)
say "bench: sink ceiling, ${DURATION}s"
start sink "$TOOLS/sink" "$sport"
SINK_PID=$LAST_PID
wait_http "http://127.0.0.1:$sport/stats" || die "the sink did not start"
line=$(wrk_fixed "http://127.0.0.1:$sport/contacts" BENCH_MODE=contact)
RATE[sink]=$(rate_of "$line")
P50[sink]=$(field "$line" p50_us)
P99[sink]=$(field "$line" p99_us)
NON2XX[sink]=$(field "$line" non2xx)
curl -s -X POST "http://127.0.0.1:$sport/reset" >/dev/null

port=$(pick_port)
write_config "$WORK/relay.yaml" "$port" "$WORK/relay.db" "http://127.0.0.1:$sport"
say "bench: concord relay of $RELAY_N new customers"
start_concord concord-relay "$WORK/relay.yaml" "$port"
sleep 1
RELAY_IDLE_RSS_KB=$(kb_of "$CPID" VmRSS)
perf_start "$CPID" relay
t_before=$(cpu_ticks "$CPID")
env BENCH_RUN="r$RANDOM" BENCH_QUOTA="$RELAY_N" BENCH_THREADS="$WRK_THREADS" "${sign_env[@]}" \
    wrk -t"$WRK_THREADS" -c"$CONNS" -d"$((RELAY_DEADLINE_S + 30))s" --timeout 10s \
    -s "$BENCH/webhook.lua" "http://127.0.0.1:$port/webhooks/shop" >"$WORK/wrk-relay.out" 2>&1 &
WRK_PID=$!
PIDS+=("$WRK_PID")
# Until every change reached the sink and every webhook was answered; or
# until nothing moved for 15 s (a stall), or the deadline.
deadline=$((SECONDS + RELAY_DEADLINE_S))
stats=""
count=0
threads_done=0
progress=""
last_progress_at=$SECONDS
# The poll is light (the sink's /count sorts nothing) and seldom: it runs
# on the same two cores as what it measures. The rate and latency come from
# the sink's own clock readings, not from when the poll saw the end.
while [ $SECONDS -lt $deadline ]; do
    count=$(curl -s --max-time 2 "http://127.0.0.1:$sport/count" || true)
    count=${count#*\"count\":}
    count=${count%%\}*}
    [[ $count =~ ^[0-9]+$ ]] || count=0
    threads_done=0
    [ "$count" -lt "$RELAY_N" ] || threads_done=$(grep -c '^BENCH_THREAD ' "$WORK/wrk-relay.out" || true)
    if [ "${count:-0}" -ge "$RELAY_N" ] && [ "$threads_done" -ge "$WRK_THREADS" ]; then
        break
    fi
    if [ "$progress" != "$count/$threads_done" ]; then
        progress="$count/$threads_done"
        last_progress_at=$SECONDS
    elif [ $((SECONDS - last_progress_at)) -ge 15 ]; then
        threads_done=$(grep -c '^BENCH_THREAD ' "$WORK/wrk-relay.out" || true)
        NOTES+=("relay stalled: ${count:-0} of $RELAY_N delivered and $threads_done of $WRK_THREADS wrk threads answered in full, no progress for 15 s")
        break
    fi
    kill -0 "$CPID" 2>/dev/null || break
    sleep 0.5
done
# Whatever ended the loop: the whole figures, and the wrk threads done.
threads_done=$(grep -c '^BENCH_THREAD ' "$WORK/wrk-relay.out" || true)
stats=""
for _ in 1 2 3 4 5; do
    stats=$(curl -s --max-time 5 "http://127.0.0.1:$sport/stats" || true)
    [[ $stats == *'"count":'* ]] && break
    sleep 0.2
done
[ $SECONDS -lt $deadline ] || NOTES+=("relay: deadline of $RELAY_DEADLINE_S s reached with ${count:-0} of $RELAY_N delivered")
RELAY_HWM_KB=0
t_after=$t_before
if alive_or_note "$CPID" "concord (relay)"; then
    t_after=$(cpu_ticks "$CPID")
    RELAY_HWM_KB=$(kb_of "$CPID" VmHWM)
fi
perf_stop
kill -INT "$WRK_PID" 2>/dev/null || true
wait "$WRK_PID" 2>/dev/null || true
if [ "$threads_done" -lt "$WRK_THREADS" ]; then
    NOTES+=("$((WRK_THREADS - threads_done)) of $WRK_THREADS wrk threads never got an answer to every webhook they sent (wrk-relay.out in the work directory)")
fi
stop_pid "$CPID" "concord (relay)"
stop_pid "$SINK_PID" "the sink"

jnum() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" <<<"$1"; }
R_COUNT=$(jnum "$stats" count)
R_FIRST=$(jnum "$stats" first_send_ns)
R_LAST=$(jnum "$stats" last_recv_ns)
R_END_WEBHOOKS=$(sed -n 's/.* end_ns=\([0-9]*\).*/\1/p' "$WORK/wrk-relay.out" | sort -n | tail -1)
R_FAILED=$(sed -n 's/.* failed=\([0-9]*\).*/\1/p' "$WORK/wrk-relay.out" | awk '{ s += $1 } END { print s + 0 }')
R_STATUSES=$(sed -n 's/.* statuses=\([0-9:,]*\).*/\1/p' "$WORK/wrk-relay.out" | tr ',' '\n' |
    awk -F: 'NF == 2 { n[$1] += $2 } END { for (k in n) { printf "%s%s:%d", sep, k, n[k]; sep = " " } }')
R_COUNT=${R_COUNT:-0}
R_SPAN_S=0
R_RATE=0
R_WEBHOOK_RATE="n/a"
if [ "$R_COUNT" -gt 0 ] && [ "${R_LAST:-0}" -gt "${R_FIRST:-0}" ]; then
    R_SPAN_S=$(calc "%.3f" "($R_LAST - $R_FIRST) / 1e9")
    R_RATE=$(calc "%.0f" "$R_COUNT / (($R_LAST - $R_FIRST) / 1e9)")
    if [ -n "$R_END_WEBHOOKS" ] && [ "$threads_done" -ge "$WRK_THREADS" ]; then
        R_WEBHOOK_RATE=$(calc "%.0f" "$RELAY_N / (($R_END_WEBHOOKS - $R_FIRST) / 1e9)")/s
    fi
fi
R_CPU_US=$(calc "%.1f" "($t_after - $t_before) * 1e6 / $CLK_TCK / ($R_COUNT > 0 ? $R_COUNT : 1)")
R_CONNS=$(jnum "$stats" connections)

# ---------------------------------------------------------------- report
mb() { calc "%.1f" "$1 / 1024"; }
ms() { calc "%.2f" "$1 / 1000"; }
aim() { if awk "BEGIN { exit !($1) }"; then echo "met"; else echo "not met"; fi; }
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
sig_note="unsigned"
[ "$SIGN" = 1 ] && sig_note="signed (HMAC-SHA256 over {timestamp}.{body}, checked by concord)"

# row LABEL KEY: one line of section 1.
row() {
    printf '   %-37s  %9s %9s %9s %9s %9s\n' "$1" "${RATE[$2]}" "$(ms "${P50[$2]}")" "$(ms "${P99[$2]}")" \
        "${NON2XX[$2]}" "${SOCKERR[$2]}"
}
# ratio A B: A / B, or n/a when B is 0.
ratio() { if [ "${2:-0}" -gt 0 ]; then calc "%.2f" "$1 / $2"; else echo "n/a"; fi; }
# fsync_bound CONNECTIONS PROBE_LINE: connections / mean fsync time, per
# second (Little's law: each connection waits for at least one fsync).
fsync_bound() {
    local mean
    mean=$(field "$2" mean_us)
    if [ "${mean:-0}" -gt 0 ]; then calc "%.0f" "$1 / ($mean / 1e6)"; else echo "n/a"; fi
}
# fsync_text PROBE_LINE: "p50 X, p99 Y, mean Z ms".
fsync_text() {
    echo "p50 $(ms "$(field "$1" p50_us)"), p99 $(ms "$(field "$1" p99_us)"), mean $(ms "$(field "$1" mean_us)") ms"
}
# writer_text KEY CONNECTIONS: what the bare durable writer did, from its
# BARE_DURABLE line (two lines), and CONNECTIONS / its mean COMMIT time.
writer_text() {
    local l=${DURABLE[$1]:-} mean span
    [ -n "$l" ] || { echo "no report from the writer"; return; }
    mean=$(field "$l" commit_mean_us)
    span=$(field "$l" span_us)
    [ "${span:-0}" -gt 0 ] || span=1
    printf '%4s conn.: %s commits/s of %s webhooks; COMMIT p50 %s, p99 %s, mean %s ms; %s / mean = %s/s\n' \
        "$2" "$(calc "%.0f" "$(field "$l" commits) / ($span / 1e6)")" \
        "$(sed -n 's/.* batch_mean=\([0-9.]*\).*/\1/p' <<<"$l")" "$(ms "$(field "$l" commit_p50_us)")" \
        "$(ms "$(field "$l" commit_p99_us)")" "$(ms "$mean")" "$2" \
        "$(calc "%.0f" "$2 / (${mean:-0} > 0 ? $mean : 1) * 1e6")"
    printf '            %s WAL pages per webhook; writer in its turns %s%% of the time, in COMMIT %s%%, on the CPU %s%%' \
        "$(calc "%.2f" "$(field "$l" wal_frames) / ($(field "$l" rows) > 0 ? $(field "$l" rows) : 1)")" \
        "$(calc "%.0f" "100 * $(field "$l" busy_us) / $span")" \
        "$(calc "%.0f" "100 * $(field "$l" commit_total_us) / $span")" \
        "$(calc "%.0f" "100 * $(field "$l" cpu_us) / $span")"
}
if [ "$ONLY" != relay ]; then
INGEST_ROWS=$(
    row "bare libmicrohttpd, pool of 2 + epoll" bare-pool
    row "bare libmicrohttpd, thread/connection" bare-tpc
    row "bare durable, $CONNS connections" bare-durable
    row "concord, $CONNS connections" concord
    if [ "$CONNS_HIGH" -gt 0 ]; then
        row "bare durable, $CONNS_HIGH connections" bare-durable-high
        row "concord, $CONNS_HIGH connections" concord-high
    fi
)
DURABLE_RATIOS="concord / bare durable: $(ratio "${RATE[concord]}" "${RATE[bare-durable]}") at $CONNS connections"
BOUNDS="$CONNS connections: $(fsync_bound "$CONNS" "$FSYNC_BEFORE")/s, $(fsync_bound "$CONNS" "$FSYNC_AFTER")/s"
WRITER="$(writer_text bare-durable "$CONNS" | sed '2,$s/^/                 /')"
if [ "$CONNS_HIGH" -gt 0 ]; then
    DURABLE_RATIOS+=", $(ratio "${RATE[concord-high]}" "${RATE[bare-durable-high]}") at $CONNS_HIGH"
    BOUNDS+=";  $CONNS_HIGH: $(fsync_bound "$CONNS_HIGH" "$FSYNC_BEFORE")/s, $(fsync_bound "$CONNS_HIGH" "$FSYNC_AFTER")/s"
    WRITER+="
$(writer_text bare-durable-high "$CONNS_HIGH" | sed 's/^/                 /')"
fi
fi # BENCH_ONLY

cat <<EOF

concord bench  $(date -u +%Y-%m-%dT%H:%M:%SZ)  $(nproc) cores, ${cpu_model:-unknown CPU}
concord:  $CONCORD_BIN ($BUILD_NOTE)
store:    $WORK ($STORE_FS; SQLite WAL, synchronous=FULL${BENCH_STORE_OPTS:+; store options: $BENCH_STORE_OPTS})${SLOW_DISK[*]:+
          every fsync of a WAL delayed by $FSYNC_DELAY_US us (BENCH_FSYNC_DELAY_US)}
load:     wrk -t$WRK_THREADS -c$CONNS, every request a new ~1 KiB customer webhook with its own
          delivery id, $sig_note
EOF
if [ "$ONLY" = relay ]; then
    echo
    echo "1. Durable webhook ingest: not run (BENCH_ONLY=relay)"
else
    cat <<EOF

1. Durable webhook ingest, ${DURATION} s each (concord: sync of shop.customers only; no target
   system, so nothing is delivered; every 2xx is journaled and fsynced, then mapped and merged)
   (bare durable: bench/bare.c durable, body and delivery id committed to SQLite next to
   concord's store, WAL, synchronous=FULL, one writer thread, group commit; no signature check)
                                              2xx/s    p50 ms    p99 ms  non-2xx  sock-err
$INGEST_ROWS
   concord / bare pool+epoll: $(ratio "${RATE[concord]}" "${RATE[bare-pool]}")    concord / bare thread-per-connection: $(ratio "${RATE[concord]}" "${RATE[bare-tpc]}")
   $DURABLE_RATIOS
   disk, 300 x (write 4 KiB + fdatasync): $(fsync_text "$FSYNC_BEFORE") before; $(fsync_text "$FSYNC_AFTER") after
         100 x (write 128 KiB + fdatasync): $(fsync_text "$FSYNC_BIG_BEFORE") before; $(fsync_text "$FSYNC_BIG_AFTER") after
   fsync bound = connections / mean fsync (before, after): $BOUNDS
   bare durable: $WRITER
   concord CPU: ${INGEST_CPU_US} us per accepted webhook, ${INGEST_CPU_CORES} cores busy on average
   aim >= 30000 durable webhooks/s: $(aim "${RATE[concord]} >= 30000")
EOF
fi
cat <<EOF

2. End-to-end relay: $RELAY_N new customers, webhook -> journal -> map -> POST /contacts on the sink
   (CRM max_in_flight $MAX_IN_FLIGHT; latency = sink receipt - send time carried in phone -> phone_number)
                                              per s    p50 ms    p99 ms
   sink ceiling (wrk -> sink POST /contacts)  $(printf '%7s %9s %9s' "${RATE[sink]}" "$(ms "${P50[sink]}")" "$(ms "${P99[sink]}")")   (wrk's latency)
   concord relay, changes delivered         $(printf '%9s %9s %9s' "$R_RATE" "$(ms "$(jnum "$stats" p50_us)")" "$(ms "$(jnum "$stats" p99_us)")")   (end to end; p90 $(ms "$(jnum "$stats" p90_us)"), max $(ms "$(jnum "$stats" max_us)"))
   delivered $R_COUNT of $RELAY_N in $R_SPAN_S s (first webhook sent -> last write received)
   webhook answers of the threads that finished (status:count): ${R_STATUSES:-none}; refused: $R_FAILED
   webhooks answered during the relay: $R_WEBHOOK_RATE
   concord / sink ceiling: $(calc "%.2f" "$R_RATE / ${RATE[sink]}")    concord CPU: ${R_CPU_US} us per delivered change
   TCP connections that carried the sink's writes: ${R_CONNS:-?} (keep-alive reuse)
   aim >= 10000 changes/s: $(aim "$R_RATE >= 10000 && $R_COUNT >= $RELAY_N")

3. Memory of concord (VmRSS / VmHWM from /proc/PID/status)
EOF
if [ "$ONLY" = relay ]; then
    cat <<EOF
   idle after start:   $(mb "$RELAY_IDLE_RSS_KB") MB (relay config)
   peak under load:    $(mb "$RELAY_HWM_KB") MB during the relay
   aim idle < 20 MB:   $(aim "$RELAY_IDLE_RSS_KB < 20480")
EOF
else
    cat <<EOF
   idle after start:   $(mb "$IDLE_RSS_KB") MB (ingest config), $(mb "$RELAY_IDLE_RSS_KB") MB (relay config)
   peak under load:    $(mb "$INGEST_HWM_KB") MB during ingest ($CONNS connections), $(mb "$RELAY_HWM_KB") MB during the relay
   aim idle < 20 MB:   $(aim "$IDLE_RSS_KB < 20480 && $RELAY_IDLE_RSS_KB < 20480")
EOF
fi
cat <<EOF

whole run: $((SECONDS - T0)) s
EOF
if [ ${#NOTES[@]} -gt 0 ]; then
    echo
    echo "problems seen during the run:"
    for n in "${NOTES[@]}"; do
        echo "   - $n"
    done
fi
if [ "$PERF" = 1 ]; then
    echo "perf data: $WORK/ingest.perf.data and $WORK/relay.perf.data (perf report -i FILE --no-children)"
fi
