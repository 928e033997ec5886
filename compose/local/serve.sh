#!/usr/bin/env bash
# Serves Meridian for `make run`: a Celery worker in the background and the
# ASGI server (HTTP + websockets) in the foreground; Ctrl-C stops both.
#   serve.sh HOST PORT   |   serve.sh stop
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RUN="$ROOT/var/run"
mkdir -p "$RUN" "$ROOT/var/log"
cd "$ROOT"

stop_pidfile() {
  local f="$1"
  if [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; then
    kill "$(cat "$f")" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$(cat "$f" 2>/dev/null)" 2>/dev/null || break; sleep 0.2; done
  fi
  rm -f "$f"
}

if [ "${1:-}" = stop ]; then
  stop_pidfile "$RUN/web.pid"
  stop_pidfile "$RUN/celery.pid"
  exit 0
fi

HOST="${1:-127.0.0.1}"
PORT="${2:-8000}"
stop_pidfile "$RUN/celery.pid"
# -B: this one worker also runs beat (periodic tasks such as deleting expired exports).
.venv/bin/celery -A celery_app worker -Q celery,imports,tiling,analysis,posters \
  --concurrency 2 --loglevel INFO --pidfile "$RUN/celery.pid" -B --schedule "$RUN/celerybeat-schedule" \
  --logfile "$ROOT/var/log/celery.log" --detach
trap 'kill "$(cat "$RUN/celery.pid" 2>/dev/null)" 2>/dev/null || true; rm -f "$RUN/web.pid"' EXIT

cat <<MSG

  Meridian is serving on http://$HOST:$PORT   (API: /api/v1/, docs: /api/docs/, admin: /admin/)
  Demo logins (password: meridian-demo):
    owner@demo.meridian.test   editor@demo.meridian.test   viewer@demo.meridian.test
    admin@demo.meridian.test   (staff, for /admin/)
  Celery log: var/log/celery.log.  Stop everything with: make stop

MSG
# Websocket frames over 64 KiB are refused by the server before they are read (the
# consumer refuses larger messages too; see apps/collaboration/docs/PROTOCOL.md).
# No per-message deflate: it cost most of the cursor fan-out's CPU (see compose/Dockerfile).
.venv/bin/uvicorn config.asgi:application --host "$HOST" --port "$PORT" --lifespan off --ws-max-size 65536 \
  --ws-per-message-deflate false &
echo $! >"$RUN/web.pid"
wait
