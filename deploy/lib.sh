# Shared by deploy/demo.sh and deploy/release-demo.sh (sourced, from the repository
# root): tools, ports, gunicorn replicas and nginx on loopback, scratch databases.
# The caller sets PY (the virtualenv's python), workdir (a temporary folder it
# removes) and LOG_PREFIX, and kills what it started in its exit trap: the pids
# in "${pids[@]}" and nginx ($workdir/nginx.pid).

pids=()
DEPLOY_ROOT=$PWD

say() { printf '[%s] %s\n' "$LOG_PREFIX" "$*"; }
die() { say "FAILED: $*" >&2; exit 1; }

# A Debian package, installed only when the command is missing (root only),
# after a notice saying so; DEMO_NO_INSTALL=1 refuses instead.
require_tool() {  # command package
  command -v "$1" >/dev/null && return 0
  [[ $(id -u) == 0 && -z ${DEMO_NO_INSTALL:-} ]] || die "$1 is missing (apt-get install $2)"
  say "$1 is not installed: installing Debian's $2 package with apt-get (system-wide;" \
    "DEMO_NO_INSTALL=1 to refuse, apt-get remove $2 to undo)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

# Stops the caller (SIGTERM to it, so its exit trap runs) after SECONDS. The
# sleep is waited for with `wait`, which a signal interrupts, so the caller's
# cleanup can end the watchdog at once.
start_watchdog() {  # seconds setting-name
  local caller=$$
  (
    trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
    sleep "$1" &
    sleeper=$!
    wait "$sleeper"
    say "stopping: over $2=$1" >&2
    kill -TERM "$caller"
  ) 2>/dev/null &
  pids+=("$!")
}

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_for() {  # url: until it answers 2xx, at most 10 s
  for _ in $(seq 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
  die "$1 did not answer"
}

# A new database on the scratch PostgreSQL server (app/db/scratch.py: SERVER, else
# GATE_POSTGRES_URL, TEST_POSTGRES_URL, the local server); prints its URL.
create_scratch_database() {  # label [server url]
  $PY -c 'import sys; from app.db import scratch
url = scratch.create_postgres_database(scratch.postgres_server_url(sys.argv[2] or None), sys.argv[1])
print(url.set(drivername="postgresql").render_as_string(hide_password=False))' "$1" "${2:-}"
}

drop_scratch_database() {  # url [server url]
  $PY -c 'import sys; from sqlalchemy import make_url; from app.db import scratch
scratch.drop_postgres_database(make_url(sys.argv[1]), scratch.postgres_server_url(sys.argv[2] or None))' \
    "$1" "${2:-}"
}

# A gunicorn replica (gunicorn.conf.py of CODE, default this checkout) in its own
# process group, with the exported settings; sets $started to its master's pid.
start_replica() {  # port log [code directory] [VAR=value ...]
  local port=$1 log=$2 code=${3:-$DEPLOY_ROOT}
  shift 3 2>/dev/null || shift $#
  # exec all the way down: $! is gunicorn's master, leader of its own process group.
  (cd "$code" && exec env PYTHONPATH="$code" HOST=127.0.0.1 PORT="$port" "$@" \
    setsid "$DEPLOY_ROOT/.venv/bin/gunicorn" -c gunicorn.conf.py wsgi:app >"$log" 2>&1) &
  started=$!
  pids+=("$started")
}

# deploy/nginx.conf on loopback: listening on PORT, one upstream server per
# replica port (with the options deploy/nginx.conf gives its first server).
write_nginx_conf() {  # file listen-port replica-port...
  local file=$1 listen=$2
  shift 2
  awk -v ports="$*" -v listen="$listen" '
    /server 127\.0\.0\.1:8001 / {
      n = split(ports, each, " ")
      for (i = 1; i <= n; i++) { line = $0; sub(/127\.0\.0\.1:8001/, "127.0.0.1:" each[i], line); print line }
      next
    }
    /server 127\.0\.0\.1:800[0-9] / { next }
    /listen 127\.0\.0\.1:8080;/ { sub(/8080/, listen) }
    /^worker_processes auto;/ { $0 = "worker_processes 1;" }
    { print }' deploy/nginx.conf >"$file.new"
  mv "$file.new" "$file"
}

nginx_flags() { printf 'pid %s; error_log %s;' "$workdir/nginx.pid" "$workdir/nginx-error.log"; }

start_nginx() {  # conf
  NGINX=$(command -v nginx)
  "$NGINX" -t -q -c "$1" -g "$(nginx_flags)"
  "$NGINX" -c "$1" -g "$(nginx_flags)"
}

# Reload nginx's configuration (SIGHUP) and wait until the workers of the old one
# have finished their requests and exited: from then on nothing reaches a
# replica the new configuration left out.
reload_nginx() {  # conf
  local master old
  master=$(cat "$workdir/nginx.pid")
  old=$(ps -o pid= --ppid "$master" | tr -d ' ')
  "$NGINX" -t -q -c "$1" -g "$(nginx_flags)"
  kill -HUP "$master"
  for _ in $(seq 200); do
    local alive=0
    for pid in $old; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || return 0
    sleep 0.05
  done
  die "nginx's old workers did not exit within 10 s of the reload"
}
