#!/usr/bin/env bash
# Creates .venv/ in the project root (if missing) and installs worldgen with the locked
# dependencies. Sourced by scripts/run.sh and scripts/test.sh; safe to run again.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null; then
    echo "worldgen needs Python 3.11 (found: $("$PYTHON" --version 2>&1))." >&2
    echo "Install it (Debian 12: apt-get install python3 python3-venv) or set PYTHON=/path/to/python3.11." >&2
    exit 1
fi
if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    else
        echo "Python's venv module is missing: sudo apt-get install python3-venv" >&2
        exit 1
    fi
fi

stamp=".venv/.worldgen-installed"
lock_hash="$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_hash" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -r requirements.lock
    .venv/bin/python -m pip install --quiet --no-deps -e .
    echo "$lock_hash" > "$stamp"
fi

# Bytecode of the project's modules, as a regular pip install writes it (an editable one does
# not): a Python that writes none (PYTHONDONTWRITEBYTECODE=1, a read-only checkout) otherwise
# compiles every module in every `worldgen` process, ~0.1 s of CPU of a `worldgen tile`. Only
# changed files are compiled again (~0.07 s when none changed; 0.5 s the first time).
.venv/bin/python -m compileall -q src >/dev/null || true

# The native kernels (numba's ahead-of-time build, worldgen/engine/_jit.py): rebuilt only when
# their sources changed. It needs a C/C++ compiler; without one the JIT compiles them as before.
if ! command -v g++ >/dev/null && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    { apt-get update -qq && apt-get install -y -qq g++ >/dev/null; } || true
fi
NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$ROOT/.cache/numba}" \
    .venv/bin/python -m worldgen.engine._native_build --if-stale \
    || echo "worldgen: continuing with numba's JIT (see the message above)" >&2
