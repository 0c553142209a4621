"""The engine issue 12 was measured with, timed next to ours in the same run (``--baseline``).

Issue 12 compares worldgen with the C++ reference (fast-wfc) on another, idle machine, where the
engine of commit f494792 took islands 48² 84 ms, dungeon 48² 102 ms and town 48² 455 ms; its
targets are half the C++ times. On this shared two-core VM the same solve takes up to a third
longer for minutes at a time, so an absolute figure can miss or meet a target by the minute it
ran in. This module takes the old engine from the repository's history (``git archive``), runs
it in a subprocess with its own numba cache, and alternates rounds of it with rounds of ours:
both see the same minutes. The ratio old ÷ ours against the issue's ratio old ÷ target
(islands 84 ÷ 18 = 4.67) says whether the target is met whatever this machine's speed; the
fastest run of each seed over the rounds is kept on both sides.

The old engine's first run compiles its kernels with numba (about a minute); the cache is kept
in ``bench/results/.baseline-<commit>/`` for later runs.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BASELINE_COMMIT = "f494792"
# The old engine's times on the machine where issue 12 measured the C++ reference (ms).
BASELINE_THERE_MS: dict[tuple[str, int], float] = {
    ("islands", 48): 84.0,
    ("dungeon", 48): 102.0,
    ("town", 48): 455.0,
}
ROUNDS = 3
ROUND_TIMEOUT_S = 900.0

# Run by the subprocess with the old ``src`` first on sys.path: argv = sample paths and sides as
# "path:side", then the seeds. Prints one JSON object: {"path:side": [seconds per seed]}.
_WORKER = """\
import json, sys, time
from worldgen.engine import solver
from worldgen.engine.patterns import extract_patterns, load_sample
solver.warm_up()
cases, seeds = sys.argv[1].split(","), [int(s) for s in sys.argv[2].split(",")]
out = {}
for case in cases:
    path, side = case.rsplit(":", 1)
    sample, palette = load_sample(path)
    model = extract_patterns(sample, palette, 3, 8, periodic_input=True)
    rules = solver.compile_rules(model.rules())
    times = []
    for seed in seeds:
        started = time.perf_counter()
        result = solver.solve(rules, int(side), int(side), periodic=True, seed=seed)
        times.append(time.perf_counter() - started if result.solved else None)
    out[case] = times
print(json.dumps(out))
"""


def baseline_src(commit: str = BASELINE_COMMIT) -> Path:
    """The old commit's ``src`` folder, extracted once under ``bench/results/`` (raises
    RuntimeError when git or the commit is missing, e.g. in a shallow clone)."""
    home = ROOT / "bench" / "results" / f".baseline-{commit}"
    src = home / "src"
    if (src / "worldgen" / "engine" / "solver.py").is_file():
        return src
    home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=home) as tmp:
        archive = Path(tmp) / "src.tar"
        done = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "-o", str(archive), commit, "src"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"git archive {commit}: {done.stderr.strip() or 'failed'}")
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        os.replace(Path(tmp) / "src", src)
    return src


def _old_env(src: Path, *more_paths: Path) -> dict[str, str]:
    """The environment of a subprocess that imports the old ``worldgen`` (``src`` first on its
    path, ahead of this checkout's installed package) with its own numba cache."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(p) for p in (src, *more_paths)),
        "NUMBA_CACHE_DIR": str(src.parent / "numba-cache"),
        "OPENBLAS_NUM_THREADS": "1",
    }
    env.pop("WORLDGEN_NATIVE", None)
    return env


def _run_old(env: dict[str, str], script: str, *args: str) -> dict[str, Any]:
    """Run a worker script under the old engine; the JSON object on its last line of output
    (RuntimeError with the end of its stderr when it fails)."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True, text=True, env=env, timeout=ROUND_TIMEOUT_S, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the old engine failed: {done.stderr.strip()[-400:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _median_ms(best: Sequence[float]) -> float | None:
    """The median of the seeds' fastest runs, over the seeds that solved at least once (None
    when none did: a seed that never solved has no time to compare)."""
    solved = [t for t in best if math.isfinite(t)]
    return statistics.median(solved) * 1e3 if solved else None


def compare(
    cases: Sequence[tuple[str, Path, int]],
    seeds: Sequence[int],
    ours: Callable[[str, int, int], float | None],
    log: Callable[[str], None],
    rounds: int = ROUNDS,
) -> list[dict[str, Any]]:
    """Alternate ``rounds`` rounds of the old engine (a subprocess) and ours (``ours(name, side,
    seed)`` -> seconds, None when unsolved) on ``cases`` (name, sample path, side); per case the
    median over seeds of each seed's fastest run, the speed-up, and the issue's target as a
    speed-up over the old engine."""
    env = _old_env(baseline_src())
    cases_arg = ",".join(f"{path}:{side}" for _, path, side in cases)
    seeds_arg = ",".join(str(s) for s in seeds)
    old: dict[str, list[float]] = {}
    new: dict[str, list[float]] = {}
    key = {name: f"{path}:{side}" for name, path, side in cases}
    for r in range(rounds):
        log(f"baseline round {r + 1}/{rounds} (engine of {BASELINE_COMMIT}, then ours) …")
        started = time.perf_counter()
        times = _run_old(env, _WORKER, cases_arg, seeds_arg)
        log(f"  old engine: {time.perf_counter() - started:.0f} s")
        for name, _, side in cases:
            old_times = times[key[name]]
            new_times = [ours(name, side, seed) for seed in seeds]
            for store, got in ((old, old_times), (new, new_times)):
                best = store.setdefault(key[name], [float("inf")] * len(seeds))
                for i, t in enumerate(got):
                    if t is not None:
                        best[i] = min(best[i], t)
    entries: list[dict[str, Any]] = []
    for name, _, side in cases:
        old_ms = _median_ms(old[key[name]])
        new_ms = _median_ms(new[key[name]])
        there = BASELINE_THERE_MS.get((name, side))
        entries.append(
            {
                "case": name,
                "size": side,
                "baseline_ms": old_ms,
                "ours_ms": new_ms,
                "speed_up": None if old_ms is None or new_ms is None else old_ms / new_ms,
                "baseline_there_ms": there,
                "rounds": rounds,
            }
        )
    return entries


# The refinement figures of ``bench/engine_refine.py`` with the old engine (and its world code)
# first on sys.path: argv = tileset, sides, solves, blocks. Prints one JSON object per side.
_REFINE_WORKER = """\
import json, sys
from pathlib import Path
from bench.engine_refine import refinement_solves, world_blocks
tileset, sides, solves, blocks = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
out = {}
for side in (int(s) for s in sides.split(",")):
    out[side] = {
        "solves_per_s": refinement_solves(tileset, side, solves)["solves_per_s"],
        "blocks_per_s": world_blocks(tileset, side, blocks)["blocks_per_s"],
    }
print(json.dumps(out))
"""


def refine_compare(
    tileset: Path,
    sides: Sequence[int],
    ours: Callable[[int], dict[str, float]],
    solves: int,
    blocks: int,
    log: Callable[[str], None],
    rounds: int = 2,
) -> list[dict[str, Any]]:
    """World refinement throughput of the old engine (with its own world code, the world of
    issue 12's "today") and ours (``ours(side)`` -> {"solves_per_s", "blocks_per_s"}),
    alternately, ``rounds`` rounds; each side keeps its best rates."""
    # ROOT too: the old engine runs this checkout's bench/engine_refine.py
    env = _old_env(baseline_src(), ROOT)
    best: dict[tuple[str, int], dict[str, float]] = {}

    def keep(who: str, side: int, figures: dict[str, float]) -> None:
        slot = best.setdefault((who, side), {"solves_per_s": 0.0, "blocks_per_s": 0.0})
        for name in slot:
            slot[name] = max(slot[name], float(figures[name]))

    for r in range(rounds):
        log(f"refinement round {r + 1}/{rounds} (engine of {BASELINE_COMMIT}, then ours) …")
        old = _run_old(
            env, _REFINE_WORKER, str(tileset), ",".join(map(str, sides)), str(solves), str(blocks)
        )
        for side in sides:
            keep("old", side, old[str(side)])
            keep("ours", side, ours(side))
    return [
        {
            "S": side,
            "baseline": best[("old", side)],
            "ours": best[("ours", side)],
            "solves_x": best[("ours", side)]["solves_per_s"] / best[("old", side)]["solves_per_s"],
            "blocks_x": best[("ours", side)]["blocks_per_s"] / best[("old", side)]["blocks_per_s"],
            "rounds": rounds,
        }
        for side in sides
    ]
