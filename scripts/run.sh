#!/usr/bin/env bash
# The README's first command: set up .venv/ and run worldgen.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
mkdir -p out
if [ "$#" -gt 0 ]; then
    exec .venv/bin/worldgen "$@"
fi
exec .venv/bin/worldgen demo --out out/demo.png
