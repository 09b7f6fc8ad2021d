#!/usr/bin/env bash
# End-to-end tests (make e2e): build the web app, then Playwright drives Debian's
# chromium against it and the real API on a throwaway database. Without node or
# chromium it says what is missing and skips, unless CI=true, where that fails.
# Extra arguments go to `playwright test` (e.g. e2e/xss.spec.ts, --headed).
set -euo pipefail
cd "$(dirname "$0")/.."

missing() {
  if [ "${CI:-}" = true ]; then
    echo "e2e: FAILED: $1" >&2
    exit 1
  fi
  echo "e2e: skipped: $1"
  exit 0
}

command -v node >/dev/null || missing "node is not on PATH (node 20+ is needed)"
export CHROMIUM="${CHROMIUM:-$(command -v chromium || true)}"
[ -n "$CHROMIUM" ] && [ -x "$CHROMIUM" ] || missing "chromium is not installed: run 'make browser'"

make --no-print-directory frontend-deps
npm --prefix frontend run --silent build
cd frontend
exec npm run --silent e2e -- "$@"
