#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL 15 cluster:
#
#   bash scripts/with-pg.sh CMD [ARGS...]
#
# initdb into a fresh temporary directory, start the server on a free
# loopback port (and a unix socket inside that directory), create the
# database "concord", export CONCORD_TEST_PG as a libpq conninfo for it, run
# CMD, then stop the server and remove the directory whatever happens. The
# exit status is CMD's. Trust authentication and fsync=off: this cluster
# holds test data only and lives for one command. Two runs in parallel get
# different directories and ports.
set -euo pipefail

bin="${CONCORD_PG_BIN:-/usr/lib/postgresql/15/bin}"
if [ $# -eq 0 ]; then
  echo "usage: with-pg.sh CMD [ARGS...]" >&2
  exit 2
fi
if [ ! -x "$bin/initdb" ]; then
  echo "with-pg: no PostgreSQL binaries in $bin (bash scripts/install-deps.sh --test)" >&2
  exit 2
fi

# PostgreSQL refuses to run as root, so as root the server runs as postgres.
as=()
if [ "$(id -u)" -eq 0 ]; then
  as=(runuser -u postgres --)
fi

dir=$(mktemp -d /tmp/concord-pg.XXXXXX)
data="$dir/data"
started=0
cleanup() {
  local status=$?
  if [ "$started" -eq 1 ]; then
    "${as[@]}" "$bin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  exit "$status"
}
trap cleanup EXIT
child=""
# A signal (ctest's timeout, ^C) stops the command too, then cleanup runs.
trap '[ -n "$child" ] && kill -INT "$child" 2>/dev/null; exit 130' INT
trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null; exit 143' TERM

if [ "$(id -u)" -eq 0 ]; then
  chown postgres: "$dir"
fi
"${as[@]}" "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
  >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }

free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A port found free may be taken before the server binds it (another run in
# parallel); then pick another, a bounded number of times.
port=""
for _ in 1 2 3 4 5; do
  port=$(free_port)
  if "${as[@]}" "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 30 -s \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start >/dev/null 2>&1; then
    started=1
    break
  fi
  port=""
done
if [ -z "$port" ]; then
  echo "with-pg: the server did not start; its log:" >&2
  cat "$dir/server.log" >&2 || true
  exit 1
fi

"$bin/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
  -c "CREATE DATABASE concord" >/dev/null 2>"$dir/psql.log" \
  || { cat "$dir/psql.log" >&2; exit 1; }

export CONCORD_TEST_PG="host=127.0.0.1 port=$port dbname=concord user=postgres"
# In the background, so that a signal is handled at once, not when CMD ends.
set +e
"$@" <&0 &
child=$!
wait "$child"
status=$?
set -e
exit "$status"
