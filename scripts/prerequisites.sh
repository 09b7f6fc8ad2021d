#!/usr/bin/env bash
# Prerequisites, checked before anything is installed. A missing or old tool is
# one line on stderr naming what was found and what is needed, and exit 1.
#
#   scripts/prerequisites.sh python <interpreter> <venv>
#       Python 3.11 or newer; a <venv> built by another interpreter (or a
#       broken one) is removed, so the next step builds it again.
#   scripts/prerequisites.sh node
#       node 20 or newer (the frontend, the contract tools, newman).
set -euo pipefail

PYTHON_MINIMUM=(3 11)
NODE_MINIMUM=20

fail() { echo "prerequisites: $*" >&2; exit 1; }

# "<base prefix> <version>" of an interpreter: two interpreters agree when these do.
identity='import sys; print(sys.base_prefix, sys.version.split()[0])'

check_python() {
  local python=$1 venv=$2 found version path want have
  found=$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3], sys.executable)' 2>/dev/null) ||
    fail "no Python found as '$python': install Python ${PYTHON_MINIMUM[0]}.${PYTHON_MINIMUM[1]} or newer, or name one: make <target> PYTHON=python3.12"
  version=${found%% *} path=${found#* }
  IFS=. read -r major minor _ <<<"$version"
  if ((major < PYTHON_MINIMUM[0] || (major == PYTHON_MINIMUM[0] && minor < PYTHON_MINIMUM[1]))); then
    fail "found Python $version ($path); Conduit needs ${PYTHON_MINIMUM[0]}.${PYTHON_MINIMUM[1]} or newer: install it, or name one: make <target> PYTHON=python3.12"
  fi
  if [[ -e $venv ]]; then
    want=$("$python" -c "$identity")
    have=$("$venv/bin/python" -c "$identity" 2>/dev/null || echo "a missing interpreter")
    if [[ $want != "$have" ]]; then
      echo "prerequisites: $venv was built with ${have##* } (${have% *}), not Python $version ($path): rebuilding it"
      rm -rf "$venv"
    fi
  fi
}

check_node() {
  local version
  version=$(node --version 2>/dev/null) ||
    fail "node not found: install node $NODE_MINIMUM or newer (https://nodejs.org, or your package manager)"
  version=${version#v}
  if ((${version%%.*} < NODE_MINIMUM)); then
    fail "found node $version ($(command -v node)); this needs node $NODE_MINIMUM or newer"
  fi
}

case "${1:-}" in
  python) [[ $# -eq 3 ]] || fail "usage: $0 python <interpreter> <venv>"; check_python "$2" "$3" ;;
  node) check_node ;;
  *) fail "usage: $0 python <interpreter> <venv> | node" ;;
esac
