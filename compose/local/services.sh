#!/usr/bin/env bash
# Project-local PostGIS and Redis for `make run` and `make test`, without Docker.
#
#   services.sh up      start both (idempotent), creating the cluster on first use
#   services.sh down    stop what `up` started
#   services.sh status  say what is running
#
# Everything lives under var/ (git-ignored) and listens on loopback only, on
# non-default ports so a system PostgreSQL or Redis is never touched.
# PostgreSQL refuses to run as root, so when we are root the cluster is owned
# and run by the unprivileged `postgres` user.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VAR="$ROOT/var"
PG_PORT="${MERIDIAN_PG_PORT:-55432}"
REDIS_PORT="${MERIDIAN_REDIS_PORT:-56379}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
DB_NAME=meridian
DB_USER=meridian
DB_PASSWORD=meridian

log() { printf '[services] %s\n' "$*"; }

as_pg_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# The cluster must be reachable by its owner: when the checkout sits somewhere
# the postgres user cannot enter (e.g. under /root), keep the cluster in /var/tmp.
pg_root() {
  if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$ROOT"; then
    echo "/var/tmp/meridian-$(echo -n "$ROOT" | sha1sum | cut -c1-12)"
  else
    echo "$VAR/postgres"
  fi
}

PG_ROOT="$(pg_root)"
PGDATA="$PG_ROOT/data"
PG_SOCKETS="$PG_ROOT/sockets"
PG_LOG="$PG_ROOT/postgres.log"

pg_running() { as_pg_owner "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; }

pg_init() {
  log "creating PostGIS cluster in $PGDATA"
  mkdir -p "$PG_ROOT"
  [ "$(id -u)" = 0 ] && chown postgres: "$PG_ROOT"
  local pwfile="$PG_ROOT/.pw"
  echo "$DB_PASSWORD" >"$pwfile"
  [ "$(id -u)" = 0 ] && chown postgres: "$pwfile"
  as_pg_owner "$PG_BIN/initdb" -D "$PGDATA" -U "$DB_USER" --pwfile="$pwfile" \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
}

pg_up() {
  [ -f "$PGDATA/PG_VERSION" ] || pg_init
  if ! pg_running; then
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    as_pg_owner mkdir -p "$PG_SOCKETS"
    # Memory for a dev machine with a few GiB to spare (the defaults assume 128 MB):
    # tile and import statements read hundreds of MB of a large layer.
    PG_TUNING="-c shared_buffers=512MB -c effective_cache_size=4GB -c maintenance_work_mem=256MB -c random_page_cost=1.1"
    # synchronous_commit=off: a crash may lose the last few dev transactions,
    # never corrupt the cluster; it makes migrations and tests much faster.
    if ! as_pg_owner "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PG_LOG" -w -t 60 start -o \
      "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $PG_SOCKETS -c synchronous_commit=off -c max_connections=200 $PG_TUNING" >/dev/null; then
      log "PostgreSQL did not start (last lines of $PG_LOG below); another port: make ... PG_PORT=NNNNN"
      tail -n 5 "$PG_LOG" >&2
      exit 1
    fi
  fi
  export PGPASSWORD="$DB_PASSWORD"
  local psql=(psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U "$DB_USER")
  if ! "${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$DB_NAME'" | grep -q 1; then
    "${psql[@]}" -d postgres -c "CREATE DATABASE $DB_NAME"
  fi
  "${psql[@]}" -d "$DB_NAME" -c "CREATE EXTENSION IF NOT EXISTS postgis" >/dev/null
}

pg_down() {
  if pg_running; then
    log "stopping PostgreSQL"
    as_pg_owner "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
  fi
}

redis_pidfile="$VAR/redis/redis.pid"
redis_running() { [ -f "$redis_pidfile" ] && kill -0 "$(cat "$redis_pidfile")" 2>/dev/null; }

redis_up() {
  mkdir -p "$VAR/redis"
  if ! redis_running; then
    log "starting Redis on 127.0.0.1:$REDIS_PORT"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes \
      --pidfile "$redis_pidfile" --dir "$VAR/redis" --logfile "$VAR/redis/redis.log" \
      --save "" --appendonly no --databases 64
    for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return; sleep 0.1; done
    log "Redis did not answer; see $VAR/redis/redis.log" && exit 1
  fi
}

redis_down() {
  if redis_running; then
    log "stopping Redis"
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || kill "$(cat "$redis_pidfile")"
  fi
}

case "${1:-}" in
  up)
    [ -n "${DATABASE_URL:-}" ] && log "DATABASE_URL is set: using it, no local PostGIS" || pg_up
    [ -n "${REDIS_URL:-}" ] && log "REDIS_URL is set: using it, no local Redis" || redis_up
    ;;
  down) pg_down; redis_down ;;
  status)
    pg_running && log "PostgreSQL up on $PG_PORT ($PGDATA)" || log "PostgreSQL down"
    redis_running && log "Redis up on $REDIS_PORT" || log "Redis down"
    ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
