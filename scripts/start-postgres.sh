#!/usr/bin/env bash
# Starts (or reuses) a throwaway PostgreSQL 15 cluster for the store tests and prints its URL.
#
# Idempotent and safe to run from several test processes at once (flock). Everything it
# creates lives under $SLIPWAY_PG_DIR (default /tmp/slipway-pg); delete that directory to
# start over. Trust auth on loopback only: this cluster is for tests, never for data.
#
# Stdout carries exactly one line, the URL; progress goes to stderr.
set -euo pipefail

PG_VERSION=15
PGBIN="${SLIPWAY_PG_BIN:-/usr/lib/postgresql/$PG_VERSION/bin}"
BASE="${SLIPWAY_PG_DIR:-/tmp/slipway-pg}"
PORT="${SLIPWAY_PG_PORT:-54329}"
DB="slipway_test"
DATA="$BASE/data"
URL="postgres://postgres@127.0.0.1:$PORT/$DB"

log() { echo "start-postgres: $*" >&2; }

mkdir -p "$BASE"
# Several vitest workers may call this at the same moment; only one may initdb/start.
exec 9>"$BASE.lock"
flock 9

if [ ! -x "$PGBIN/postgres" ]; then
  log "PostgreSQL $PG_VERSION not found in $PGBIN; installing it with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2
  apt-get install -y --no-install-recommends "postgresql-$PG_VERSION" >&2
fi

# The server refuses to run as root, so as root everything runs as the `postgres` user.
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir "$BASE" --shell /bin/sh postgres
  chown postgres: "$BASE"
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi

if [ ! -s "$DATA/PG_VERSION" ]; then
  log "initdb $DATA"
  rm -rf "$DATA"
  as_pg "$PGBIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --no-locale >&2
fi

if ! as_pg "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  log "starting on 127.0.0.1:$PORT"
  # fsync off: a crashed test cluster is simply thrown away. Many connections: every test
  # file opens its own pools, and vitest runs files in parallel.
  # 9>&-: the server must not inherit the lock, or the next caller would wait forever.
  as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$BASE/server.log" -w -t 60 start \
    -o "-p $PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$BASE -c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >&2 9>&-
fi

psql_admin() { "$PGBIN/psql" -X -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }
if [ "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
  log "creating database $DB"
  psql_admin -c "CREATE DATABASE $DB" >&2
fi

echo "$URL"
