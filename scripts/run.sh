#!/usr/bin/env bash
# The README's first command: set up .venv/ and run the worldgen web app on
# http://127.0.0.1:8000 with the embedded Valkey server (data in ./data). Any arguments are
# passed to `worldgen` instead (e.g. `bash scripts/run.sh tilesets`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
if [ "$#" -gt 0 ]; then
    exec .venv/bin/worldgen "$@"
fi
exec .venv/bin/worldgen serve --host 127.0.0.1 --port 8000 --data-dir data
