#!/usr/bin/env bash
# Contract fuzzing campaign: schemathesis runs every check against gunicorn
# serving the app on a throwaway SQLite database (migrated to head; PORT picks
# its port), with the token of a freshly registered user on every request (a new user's once
# fuzzing ends it: scripts/fuzz_hooks.py). Exits non-zero on any
# failure, and prints a curl command that reproduces each one.
#
#   scripts/fuzz.sh [schemathesis run options]    (make fuzz)
#   e.g. scripts/fuzz.sh --include-operation-id CreateArticle --phases fuzzing
#
# scripts/fuzz.toml says what is relaxed and why; scripts/fuzz-baseline.json
# lists known failures, each with the fix it waits for (new ones still fail).
#
# FUZZ_SECONDS  time budget for the whole run (default 300)
# FUZZ_EXAMPLES test cases per operation and phase (default 200)
# FUZZ_SEED     replay a run: schemathesis prints the seed it used
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-300}
FUZZ_EXAMPLES=${FUZZ_EXAMPLES:-200}

# The campaign runs inside the throwaway environment (scripts/throwaway/),
# which serves the app, runs this script again with THROWAWAY_URL set, and
# removes it all afterwards.
if [[ -z ${THROWAWAY_URL:-} ]]; then
  # gunicorn answers a request line past its limit itself, never reaching the
  # app; negative fuzzing of query parameters sends such lines. The campaign
  # checks the app's contract, so the limit is lifted here only.
  export GUNICORN_CMD_ARGS="--limit-request-line 0"
  exec .venv/bin/python -m scripts.throwaway --port "${PORT:-0}" -- scripts/fuzz.sh "$@"
fi
base=$THROWAWAY_URL

# The fuzzing user, and a few rows for it to find.
post() {
  curl -fsS -X POST "$base$1" -H 'Content-Type: application/json' ${token:+-H "Authorization: Token $token"} -d "$2"
}
token=
token=$(post /api/users '{"user": {"username": "fuzzer", "email": "fuzzer@example.com", "password": "fuzzing-password"}}' |
  .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["user"]["token"])')
slug=$(post /api/articles '{"article": {"title": "Fuzzing", "description": "d", "body": "b", "tagList": ["fuzz"]}}' |
  .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["article"]["slug"])')
post "/api/articles/$slug/comments" '{"comment": {"body": "first"}}' >/dev/null

echo "fuzz: schemathesis, all checks, ${FUZZ_SECONDS}s at most, against $base"
# The token goes through scripts/fuzz_hooks.py, which gets a new one when fuzzing
# ends it (a password change, DELETE /api/user/sessions).
FUZZ_TOKEN=$token SCHEMATHESIS_HOOKS=scripts.fuzz_hooks \
.venv/bin/schemathesis --config-file scripts/fuzz.toml run "$base/openapi.json" \
  --checks all \
  --max-time "$FUZZ_SECONDS" \
  --max-examples "$FUZZ_EXAMPLES" \
  --workers 1 \
  --generation-database none \
  --baseline scripts/fuzz-baseline.json \
  ${FUZZ_SEED:+--seed "$FUZZ_SEED"} \
  --no-color \
  "$@"
