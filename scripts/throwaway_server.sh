# Sourced by scripts that need the app served for a while: gunicorn on
# 127.0.0.1:$port, on a fresh SQLite database migrated to head, stopped and
# removed on exit. The port is THROWAWAY_PORT (the end-to-end tests), else PORT
# (make fuzz PORT=…, make conformance PORT=…), else a free one. Sets $workdir,
# $port and $base; extra gunicorn options can come through GUNICORN_CMD_ARGS.
# Waits until $1 (a path, default /healthz) answers; a server that does not
# come up within 20 s (a taken port, a broken app) stops the caller with its log.
#
# The server is sealed from the developer's settings: .env is not read, and
# everything it needs is set here.

workdir=$(mktemp -d)
chosen_port=${THROWAWAY_PORT:-${PORT:-}}
port=${chosen_port:-$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
base="http://127.0.0.1:$port"
if [[ -n $chosen_port ]] && ! .venv/bin/python -c 'import socket, sys; socket.socket().bind(("127.0.0.1", int(sys.argv[1])))' "$port" 2>/dev/null; then
  echo "throwaway server: port $port is taken: pick another, or leave PORT unset for a free one" >&2
  exit 1
fi
export ENV_FILE= FLASK_SKIP_DOTENV=1
export APP_ENV=development DATABASE_URL="sqlite:///$workdir/conduit.db" HOST=127.0.0.1 PORT=$port
export WEB_CONCURRENCY=2 LOG_LEVEL=WARNING LOG_FORMAT=text
unset GUNICORN_CONTROL_SOCKET

.venv/bin/flask db upgrade >"$workdir/migrate.log" 2>&1 || {
  echo "throwaway server: migrating $DATABASE_URL failed:" >&2
  cat "$workdir/migrate.log" >&2
  exit 1
}
.venv/bin/gunicorn -c gunicorn.conf.py --no-control-socket wsgi:app >"$workdir/gunicorn.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$workdir"' EXIT

up=
for _ in $(seq 100); do
  if ! kill -0 "$server" 2>/dev/null; then break; fi
  if curl -fs "$base${1:-/healthz}" >/dev/null; then up=1; break; fi
  sleep 0.2
done
if [[ -z $up ]]; then
  echo "throwaway server: gunicorn did not come up on $base${1:-/healthz} (port taken? see its log):" >&2
  tail -n 30 "$workdir/gunicorn.log" >&2
  exit 1
fi
echo "throwaway server: gunicorn on $base (pid $server)"
