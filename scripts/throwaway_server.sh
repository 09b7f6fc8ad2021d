# Sourced by scripts that need the app served for a while: gunicorn on a free
# loopback port, on a fresh SQLite database migrated to head, stopped and
# removed on exit. Sets $workdir, $port and $base; extra gunicorn options can
# come through GUNICORN_CMD_ARGS; THROWAWAY_PORT picks the port. Waits until $1
# (a path, default /healthz) answers.

workdir=$(mktemp -d)
port=${THROWAWAY_PORT:-$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
base="http://127.0.0.1:$port"
export APP_ENV=development DATABASE_URL="sqlite:///$workdir/conduit.db" HOST=127.0.0.1 PORT=$port
export WEB_CONCURRENCY=2 LOG_LEVEL=warning

.venv/bin/flask db upgrade >/dev/null
.venv/bin/gunicorn -c gunicorn.conf.py --no-control-socket wsgi:app >"$workdir/gunicorn.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$workdir"' EXIT

for _ in $(seq 50); do
  curl -fs "$base${1:-/healthz}" >/dev/null && break
  sleep 0.2
done
