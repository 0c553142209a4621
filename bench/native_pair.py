"""Two builds of the native kernels in one process, called alternately on the same solves.

Run from the repository root, after saving the module of the build to compare against::

    cp src/worldgen/_native_kernels.*.so /tmp/old.so      # before the change
    # ... edit the kernels, then: .venv/bin/python -m worldgen.engine._native_build --if-stale
    .venv/bin/python -m bench.native_pair /tmp/old.so islands:48 town:48 pipes.xml:64

On this shared VM two separate runs differ by more than most kernel changes (the host's load
moves a solve by up to a third for minutes). Here the old module is loaded under another name
next to the current one; for every case and seed 1..5 each is timed many times (thread time,
the order alternating) and each keeps its fastest run, so both see the same minutes. Printed
per case: both medians over the seeds and the median, least and largest new ÷ old ratio.

Compare a change's ratio with the case's ratio of the current module against a copy of itself:
a copy sits at other addresses, and code placement alone moved small solves here by up to 8 %
(4 December: islands 48² 1.00, town 48² 0.99, pipes 64² 1.08, terrain 64² 0.97, highlands 64²
1.02, the same in two runs). Both modules must take the same arguments (the solver's Python
side is this checkout's).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.engine import CASES, build_model
from worldgen.engine import _jit, _kernels, solver

SEEDS = range(1, 6)
CELLS_PER_CASE = 200_000  # repeats per seed: enough runs of small grids to find a quiet one


def load_module(path: Path) -> ModuleType:
    """The native module at ``path``, under a name of its own (its init symbol is unchanged)."""
    spec = importlib.util.spec_from_file_location("native_pair_old._native_kernels", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{path}: not a Python extension module")
    try:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except ImportError as exc:
        raise SystemExit(f"{path}: cannot be loaded ({exc})") from None
    if not hasattr(module, "solve"):
        raise SystemExit(f"{path}: no solve kernel in it (not a worldgen native module?)")
    return module


def compare(old_solve: Callable[..., Any], case: str, side: int) -> dict[str, float]:
    """Fastest thread time per seed of each kernel on one case; medians and ratios."""
    model = build_model(next(s for s in CASES if s.name == case))
    constraints = model.constraints(side, side)
    new_solve = _kernels.solve
    repeats = max(3, CELLS_PER_CASE // (side * side))
    old_best: list[float] = []
    new_best: list[float] = []
    try:
        for seed in SEEDS:
            best = {"old": float("inf"), "new": float("inf")}
            for r in range(repeats):
                for which in ("old", "new") if r % 2 == 0 else ("new", "old"):
                    _kernels.solve = old_solve if which == "old" else new_solve
                    started = time.thread_time()
                    solver.solve(
                        model.compiled, side, side, periodic=model.spec.periodic, seed=seed,
                        constraints=constraints,
                    )  # fmt: skip
                    best[which] = min(best[which], time.thread_time() - started)
            old_best.append(best["old"])
            new_best.append(best["new"])
    finally:
        _kernels.solve = new_solve
    ratios = [n / o for n, o in zip(new_best, old_best, strict=True)]
    return {
        "old_ms": statistics.median(old_best) * 1e3,
        "new_ms": statistics.median(new_best) * 1e3,
        "ratio": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.native_pair", description=__doc__.split("\n")[0]
    )
    p.add_argument("old", type=Path, help="the native module (.so) to compare against")
    p.add_argument("cases", nargs="+", metavar="CASE:SIDE", help="e.g. islands:48 pipes.xml:64")
    args = p.parse_args(argv)
    names = [s.name for s in CASES]
    cases: list[tuple[str, int]] = []
    for item in args.cases:
        case, _, side = item.rpartition(":")
        if case not in names or not side.isdigit() or int(side) < 1:
            p.error(f"{item!r}: give CASE:SIDE with a side of at least 1, CASE one of "
                    f"{', '.join(names)}")  # fmt: skip
        cases.append((case, int(side)))
    if not args.old.is_file():
        p.error(f"{args.old}: no such file")
    if _jit.NATIVE is None:
        raise SystemExit("this checkout's native module is not in use (build it first)")
    old = load_module(args.old)
    for case, side in cases:
        e = compare(old.solve, case, side)
        print(
            f"{case} {side}²: old {e['old_ms']:.2f} ms, new {e['new_ms']:.2f} ms; new ÷ old "
            f"{e['ratio']:.3f} ({e['ratio_min']:.3f}–{e['ratio_max']:.3f})",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
