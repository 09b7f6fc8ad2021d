#!/usr/bin/env bash
# Runs the public Conduit Postman collection with newman against gunicorn
# serving the app on a throwaway SQLite database (scripts/throwaway/; PORT
# picks its port). Fails on any failed assertion.
#
# The collection is the RealWorld project's api/Conduit.postman_collection.json
# (https://github.com/gothinkster/realworld/tree/main/api), found in
# REALWORLD_API_DIR (default ../shared/conduit). Without it the run is skipped,
# except with CI=true, where that is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

REALWORLD_API_DIR="${REALWORLD_API_DIR:-../shared/conduit}"
COLLECTION="${COLLECTION:-$REALWORLD_API_DIR/Conduit.postman_collection.json}"
NEWMAN_VERSION=6.2.2
TOOLS=.tools/newman

if [[ ! -f "$COLLECTION" ]]; then
  where="the RealWorld project's api/ folder (https://github.com/gothinkster/realworld/tree/main/api)"
  case "${CI:-}" in
    1 | true | yes)
      echo "conformance: $COLLECTION not found (CI=true): it comes from $where; set REALWORLD_API_DIR" >&2
      exit 1 ;;
  esac
  echo "conformance: skipped: $COLLECTION not found. It comes from $where:" \
    "put that folder at ../shared/conduit, or point REALWORLD_API_DIR at it"
  exit 0
fi
scripts/prerequisites.sh node

if [[ ! -x "$TOOLS/node_modules/.bin/newman" ]]; then
  echo "conformance: installing newman $NEWMAN_VERSION into $TOOLS"
  mkdir -p "$TOOLS"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS" "newman@$NEWMAN_VERSION" >/dev/null
fi

# The run goes inside the throwaway environment, which serves the app, runs
# this script again with THROWAWAY_URL set, and removes it all afterwards.
if [[ -z ${THROWAWAY_URL:-} ]]; then
  exec .venv/bin/python -m scripts.throwaway --port "${PORT:-0}" -- scripts/conformance.sh "$@"
fi
base=$THROWAWAY_URL

suffix=$(date +%s%N | tail -c 9)
"$TOOLS/node_modules/.bin/newman" run "$COLLECTION" \
  --delay-request 10 \
  --global-var "APIURL=$base/api" \
  --global-var "USERNAME=conformance$suffix" \
  --global-var "EMAIL=conformance$suffix@example.com" \
  --global-var "PASSWORD=conformance-password"
