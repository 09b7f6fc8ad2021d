#!/usr/bin/env bash
# The backend for the end-to-end tests (Playwright's webServer): the built web
# app and the API from gunicorn on a fresh, migrated SQLite database
# (scripts/throwaway_server.sh) on $THROWAWAY_PORT, until Playwright stops it;
# the database goes with it.
set -euo pipefail
cd "$(dirname "$0")/.."
trap 'exit 0' TERM INT  # so the EXIT trap stops gunicorn and removes the database
# shellcheck source=scripts/throwaway_server.sh
source scripts/throwaway_server.sh /healthz
echo "e2e backend on $base (database in $workdir)"
wait "$server"
