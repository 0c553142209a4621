#!/usr/bin/env bash
# The README's second command: set up .venv/ and run the whole test suite
# (ruff, mypy, pytest; Debian's Chromium is installed for the browser tests if missing).
# .ci/run calls exactly this.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
bash "$ROOT/scripts/install-browser.sh"
cd "$ROOT"
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$ROOT/.cache/numba}"
echo "== ruff"; .venv/bin/ruff check src tests bench tools
echo "== ruff format"; .venv/bin/ruff format --check src tests bench tools
echo "== mypy"; .venv/bin/mypy
echo "== pytest"; .venv/bin/pytest "$@"
