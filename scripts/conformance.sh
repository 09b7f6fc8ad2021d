#!/usr/bin/env bash
# Runs the public Conduit Postman collection with newman against gunicorn
# serving the app on a throwaway SQLite database. Fails on any failed assertion.
set -euo pipefail
cd "$(dirname "$0")/.."

COLLECTION="${COLLECTION:-../shared/conduit/Conduit.postman_collection.json}"
NEWMAN_VERSION=6.2.2
TOOLS=.tools/newman

if [[ ! -f "$COLLECTION" ]]; then
  echo "conformance: skipped: $COLLECTION not found (it lives in ../shared/conduit)"
  exit 0
fi

if [[ ! -x "$TOOLS/node_modules/.bin/newman" ]]; then
  echo "conformance: installing newman $NEWMAN_VERSION into $TOOLS"
  mkdir -p "$TOOLS"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS" "newman@$NEWMAN_VERSION" >/dev/null
fi

workdir=$(mktemp -d)
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export APP_ENV=development DATABASE_URL="sqlite:///$workdir/conduit.db" HOST=127.0.0.1 PORT=$port
export WEB_CONCURRENCY=2 LOG_LEVEL=warning

.venv/bin/flask db upgrade >/dev/null
.venv/bin/gunicorn -c gunicorn.conf.py wsgi:app >"$workdir/gunicorn.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$workdir"' EXIT

for _ in $(seq 50); do
  curl -fs "http://127.0.0.1:$port/api/tags" >/dev/null && break
  sleep 0.2
done

suffix=$(date +%s%N | tail -c 9)
"$TOOLS/node_modules/.bin/newman" run "$COLLECTION" \
  --delay-request 10 \
  --global-var "APIURL=http://127.0.0.1:$port/api" \
  --global-var "USERNAME=conformance$suffix" \
  --global-var "EMAIL=conformance$suffix@example.com" \
  --global-var "PASSWORD=conformance-password"
