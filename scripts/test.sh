#!/usr/bin/env bash
# The README's second command: set up .venv/ and run the whole test suite
# (ruff, mypy, pytest with coverage, then the numba kernels once more with the JIT off for their
# coverage; Debian's Chromium is installed for the browser tests if missing).
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
mkdir -p .cache/coverage
echo "== pytest (with coverage of worldgen in the test process)"
.venv/bin/pytest --cov=worldgen --cov-report=term:skip-covered --durations=20 "$@"
echo "coverage: worldgen $(.venv/bin/coverage report --format=total)% of statements and branches" \
    "run in the test process (not worker processes; the numba kernels run compiled)"
# The kernels once more in pure Python, so coverage can see them: a subset of the solver tests
# that exercises every kernel on small grids in about two minutes (golden digests included, so this
# also checks that the JIT-off output is byte-identical).
echo "== pytest, kernels with NUMBA_DISABLE_JIT=1 (coverage of worldgen.engine._kernels)"
COVERAGE_FILE=.cache/coverage/kernels NUMBA_DISABLE_JIT=1 .venv/bin/pytest -q \
    tests/engine/test_golden.py tests/engine/test_solver.py tests/engine/test_compiled.py \
    -k "(golden and not (budget or maze or town or islands or city or lakes or corridors \
        or flowers or terrain-40 or terrain-33 or block-32 or random-9-backtracks)) or unsatisfiable \
        or observation_budget or scanline_decides or its_own_neighbour or contradict \
        or may_not_touch or wide_tables or interleaved_table_solves" \
    --cov=worldgen.engine._kernels --cov-report=term-missing
