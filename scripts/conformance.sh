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

source scripts/throwaway_server.sh

suffix=$(date +%s%N | tail -c 9)
"$TOOLS/node_modules/.bin/newman" run "$COLLECTION" \
  --delay-request 10 \
  --global-var "APIURL=$base/api" \
  --global-var "USERNAME=conformance$suffix" \
  --global-var "EMAIL=conformance$suffix@example.com" \
  --global-var "PASSWORD=conformance-password"
