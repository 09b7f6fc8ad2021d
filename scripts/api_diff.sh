#!/usr/bin/env bash
# Breaking-change check for the generated OpenAPI spec.
#
#   scripts/api_diff.sh <git-ref>
#
# Compares openapi.json as committed at <git-ref> with the working-tree
# openapi.json, using Optic (@useoptic/optic, a devDependency of frontend/;
# install it with `npm ci --prefix frontend`). Optic runs fully offline here:
# it needs no account, and its telemetry and update check are switched off.
#
# Exit codes: 0 = no breaking change (identical, or additions only)
#             1 = breaking change(s), listed at the end of the output
#             2 = usage error, missing tool, or a spec that can't be read
set -euo pipefail

usage() { echo "usage: $0 <git-ref>   (compares <git-ref>:openapi.json with ./openapi.json)" >&2; exit 2; }
[[ $# -eq 1 && -n $1 && $1 != -* ]] || usage
ref=$1

root=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)
head_spec=$root/openapi.json
optic=$root/frontend/node_modules/.bin/optic

if [[ ! -x $optic ]]; then
  echo "api_diff: $optic not found; run: npm ci --prefix frontend" >&2
  exit 2
fi
if [[ ! -f $head_spec ]]; then
  echo "api_diff: $head_spec not found; generate the spec first" >&2
  exit 2
fi
if ! git -C "$root" rev-parse --verify --quiet "$ref^{commit}" >/dev/null; then
  echo "api_diff: unknown git ref: $ref" >&2
  exit 2
fi
if ! git -C "$root" cat-file -e "$ref:openapi.json" 2>/dev/null; then
  echo "api_diff: $ref has no openapi.json; nothing to compare against"
  exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/api_diff.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
base_spec=$tmp/openapi.base.json
git -C "$root" show "$ref:openapi.json" >"$base_spec"

for spec in "$base_spec" "$head_spec"; do
  if ! node -e 'try { JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")) }
                catch (e) { console.error(`api_diff: not valid JSON: ${process.argv[1]}: ${e.message}`); process.exit(1) }' "$spec"; then
    exit 2
  fi
done

# No telemetry, no update check (the only network calls Optic would make).
export OPTIC_TELEMETRY_LEVEL=off NO_UPDATE_NOTIFIER=1

echo "api_diff: $ref:openapi.json -> working-tree openapi.json"
set +e
(cd "$tmp" && "$optic" diff "$base_spec" "$head_spec" --check --severity error </dev/null) >"$tmp/report" 2>&1
status=$?
set -e
cat "$tmp/report"

if [[ $status -eq 0 ]]; then
  echo "api_diff: OK, no breaking changes"
  exit 0
fi
if ! grep -qE '^ *x \[' "$tmp/report"; then
  # Optic failed without reporting a rule violation: unreadable or invalid spec.
  echo "api_diff: optic failed (exit $status) without a breaking-change verdict; see above" >&2
  exit 2
fi

echo
echo "api_diff: BREAKING CHANGES ($ref -> working tree):"
# One line per violation: operation, where (request/response and property), rule and message.
awk '
  /^x [A-Z]+ \// { op = $2 " " $3; sub(/:$/, "", op); where = ""; field = ""; next }
  /^ *- request:/ { where = "request"; field = ""; next }
  /^ *- response [^ ]+:/ { where = "response " $3; sub(/:$/, "", where); field = ""; next }
  /^ *- [a-z]+ parameter / { field = $2 " parameter " $4; sub(/:$/, "", field); next }
  /^ *- property / {
    field = $3; sub(/:$/, "", field); sub(/^\/schema/, "", field)
    gsub(/\/properties\//, ".", field); gsub(/\/items/, "[]", field); sub(/^\./, "", field); next
  }
  /^ *x \[/ {
    msg = $0; sub(/^ *x /, "", msg)
    loc = where; if (field != "") loc = loc (loc == "" ? "" : ": ") field
    print "  " op (loc == "" ? "" : " (" loc ")") ": " msg
  }
' "$tmp/report" | sort -u
exit 1
