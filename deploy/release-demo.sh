#!/usr/bin/env bash
# A rolling release, end to end, on loopback (docs/deployment.md, "Rolling release"):
#   1. the previous release (migrations/RELEASED) from a git worktree: a scratch
#      PostgreSQL database migrated and seeded by its own code, two gunicorn replicas
#      of it behind nginx;
#   2. the new release: this checkout's HEAD plus the change in deploy/release-demo/
#      (users.bio renamed to users.biography, expand/contract), in a second worktree;
#   3. under a load of reads and writes through nginx (deploy/release_load.py):
#      expand phase → replica 1 replaced by the new release → replica 2 replaced →
#      contract phase → the load stops;
#   4. the verdict: failed requests, acknowledged writes missing, stale reads; exit 1
#      unless all three are 0. Last line: `release: N requests, F failed, W writes lost, S stale`.
# Bounded (RELEASE_DEMO_MAX_SECONDS, default 300); removes everything it started,
# on failure and Ctrl-C too.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=$PWD/.venv/bin/python
FLASK=$PWD/.venv/bin/flask
LOG_PREFIX=release
MAX_SECONDS="${RELEASE_DEMO_MAX_SECONDS:-300}"
DWELL="${RELEASE_DEMO_DWELL_SECONDS:-4}"  # load on each mixed state before the next step
CLIENTS="${RELEASE_DEMO_CLIENTS:-6}"
CHANGE="${RELEASE_DEMO_CHANGE:-deploy/release-demo}"  # the new release: HEAD plus this change
# shellcheck source=deploy/lib.sh
source deploy/lib.sh

require_tool nginx nginx-light

# --- cleanup, whatever happens ----------------------------------------------------
workdir=$(mktemp -d /tmp/conduit-release.XXXXXX)
database_url=
trees=()
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  {
    [[ -f "$workdir/nginx.pid" ]] && kill "$(cat "$workdir/nginx.pid")" 2>/dev/null
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
    [[ -n $database_url ]] && drop_scratch_database "$database_url"
    for tree in "${trees[@]}"; do git worktree remove --force "$tree"; done
    git worktree prune
    if ((status)); then
      kept=$(mktemp -d /tmp/conduit-release-logs.XXXXXX)
      cp "$workdir"/*.log "$kept"/
    fi
    rm -rf "$workdir"
  } >/dev/null 2>&1 || true
  [[ -n ${kept:-} ]] && echo "[release] the logs are kept in $kept" >&2
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
start_watchdog "$MAX_SECONDS" RELEASE_DEMO_MAX_SECONDS
started_at=$(date +%s.%N)
step() { echo "$(date +%s.%N) $*" >>"$workdir/steps"; }  # for the per-step counts
elapsed() { $PY -c "import sys, time; print(f'{time.time() - float(sys.argv[1]):.1f} s')" "$started_at"; }

# Runs a command with a release's code: its directory, its imports, its migrations.
in_release() {  # tree command...
  local tree=$1
  shift
  (cd "$tree" && PYTHONPATH="$tree" RESPONSE_CACHE=off "$@")
}

# The release's migration phase, with the new release's code: expand stops before
# the first contract revision, contract runs to the head (docs/migrations.md, Releasing).
run_migration_phase() {  # expand|contract
  step "$1 phase"
  say "$1 phase: flask db run --phase $1 (new release's code)"
  in_release "$new_tree" timeout 120 "$FLASK" db run --phase "$1" >"$workdir/migrate-$1.log" 2>&1 ||
    die "the $1 phase failed (its log: migrate-$1.log)"
}

# --- 1. the previous release ---------------------------------------------------------
released=$(grep -v '^#' migrations/RELEASED | grep -m1 .) || die "migrations/RELEASED names no release"
read -r released_revision released_commit <<<"$released"
previous_tree="$workdir/previous"
new_tree="$workdir/new"
git worktree add -q --detach "$previous_tree" "$released_commit"
trees+=("$previous_tree")
say "previous release: $released_revision at ${released_commit:0:12} (worktree)"

database_url=$(create_scratch_database release)
export APP_ENV=production DATABASE_URL="$database_url" FLASK_APP=wsgi FLASK_SKIP_DOTENV=1 ENV_FILE=
SECRET_KEY=$($PY -c 'import secrets; print(secrets.token_urlsafe(48))')
export SECRET_KEY BACKUP_DIRECTORY="$workdir/backups" LOG_LEVEL=warning
export WEB_CONCURRENCY=1 GUNICORN_THREADS=4
# Behind one proxy (nginx), counts shared in Redis as deployed; the load's clients
# all sign up from one address, so registrations get room for them.
export TRUSTED_PROXY_COUNT=1 RATELIMIT_STORAGE_URI="${DEMO_REDIS_URL:-redis://127.0.0.1:6379/0}"
export RATELIMIT_KEY_PREFIX="conduit-release-demo-$(date +%s%N)"
export REGISTRATION_RATE_LIMIT="100000 per hour"
in_release "$previous_tree" timeout 120 "$FLASK" db run >"$workdir/migrate-previous.log" 2>&1 ||
  die "the previous release's flask db run failed (migrate-previous.log)"
in_release "$previous_tree" timeout 120 "$FLASK" seed --users 20 --articles 60 --follows 3 \
  --favorites 3 --random-seed 17 >"$workdir/seed.log" 2>&1 || die "seeding failed (seed.log)"
say "database migrated to $released_revision by the previous release's flask db run, and seeded"

ports=()
replicas=()
start_checked() {  # name tree -> appends to ports/replicas
  local port
  port=$(free_port)
  start_replica "$port" "$workdir/$1.log" "$2"
  wait_for "http://127.0.0.1:$port/healthz"
  wait_for "http://127.0.0.1:$port/api/tags"
  ports+=("$port")
  replicas+=("$started")
  say "$1 serves on 127.0.0.1:$port (pid $started)"
}
start_checked previous-1 "$previous_tree"
start_checked previous-2 "$previous_tree"
port_lb=$(free_port)
write_nginx_conf "$workdir/nginx.conf" "$port_lb" "${ports[@]}"
start_nginx "$workdir/nginx.conf"
balancer="http://127.0.0.1:$port_lb"
wait_for "$balancer/api/tags"
say "nginx balancing on $balancer"

# --- 2. the new release ------------------------------------------------------------------
git worktree add -q --detach "$new_tree" HEAD
trees+=("$new_tree")
git -C "$new_tree" apply "$(realpath "$CHANGE")/models.patch"
previous_head=$(tr -d '[:space:]' <"$new_tree/migrations/HEAD")
for revision in "$CHANGE"/versions/*.py; do
  sed "s/\"PREVIOUS_HEAD\"/\"$previous_head\"/" "$revision" >"$new_tree/migrations/versions/$(basename "$revision")"
done
new_head=$(in_release "$new_tree" "$PY" -c '
from app import create_app
from app.db.alembic_setup import script_directory
with create_app().app_context():
    print(script_directory().get_current_head())')
echo "$new_head" >"$new_tree/migrations/HEAD"
say "new release: HEAD $(git rev-parse --short HEAD) + $CHANGE (users.bio -> users.biography), head $new_head"

# --- 3. the release, under load -------------------------------------------------------------
$PY deploy/release_load.py run "$balancer" "$workdir/load.json" --clients "$CLIENTS" \
  --max-seconds $((MAX_SECONDS - 30)) >"$workdir/load.log" 2>&1 &
load=$!
pids+=("$load")
step "previous release"
say "load: $CLIENTS clients reading and writing through nginx"
sleep "$DWELL"

run_migration_phase expand
sleep "$DWELL"

replace_replica() {  # index (0-based)
  local old_port=${ports[$1]} old_pid=${replicas[$1]}
  start_checked "new-$(($1 + 1))" "$new_tree"
  local new_port=${ports[-1]} new_pid=${replicas[-1]}
  unset 'ports[-1]' 'replicas[-1]'
  ports[$1]=$new_port
  replicas[$1]=$new_pid
  step "replica $(($1 + 1)) replaced"
  # The new replica in, the old one out; nginx's old workers finish their requests.
  write_nginx_conf "$workdir/nginx.conf" "$port_lb" "${ports[@]}"
  reload_nginx "$workdir/nginx.conf"
  # gunicorn stops accepting and finishes what it has in flight (GUNICORN_GRACEFUL_TIMEOUT).
  kill -TERM "$old_pid"
  wait "$old_pid" || die "previous-$(($1 + 1)) did not stop cleanly"
  say "previous-$(($1 + 1)) (127.0.0.1:$old_port) out of nginx and stopped with SIGTERM ($(elapsed))"
}
replace_replica 0
sleep "$DWELL"
replace_replica 1
sleep "$DWELL"

run_migration_phase contract
sleep "$DWELL"

kill -TERM "$load"
wait "$load" || die "the load client failed (load.log)"
say "load stopped ($(elapsed) since the start)"

# --- 4. the verdict --------------------------------------------------------------------------
# An uncached reader: the new release with RESPONSE_CACHE=off, outside nginx.
uncached_port=$(free_port)
start_replica "$uncached_port" "$workdir/uncached.log" "$new_tree" RESPONSE_CACHE=off
wait_for "http://127.0.0.1:$uncached_port/api/tags"
say "release done in $(elapsed); checking through an uncached replica on 127.0.0.1:$uncached_port"
$PY deploy/release_load.py check "$workdir/load.json" "$balancer" "http://127.0.0.1:$uncached_port" \
  --steps "$workdir/steps" --out-of-band "$database_url"
