"""Start-up benchmark: whole-process wall time of `worldgen` commands; prints, never asserts.

Run from the repository root (``bench/README.md`` explains the figures)::

    .venv/bin/python -m bench.startup [--runs N] [--only NAME] [--no-floors] [--src DIR]
                                      [--baseline DIR] [--bytecode cached|uncached|both]

Every case is a fresh process (the installed ``worldgen`` console script, or ``python -c`` for the
floors), started ``--runs`` times after one warm-up run (which fills numba's disk cache and the
world's patch-library cache, so the figures are for a warm JIT cache). Runs are interleaved across
cases so that a burst of load from other processes spreads over all of them. For each case the
table shows the fastest and the median wall time, the median CPU time of the child (user + system,
from ``getrusage``; less sensitive than wall time to other processes on a shared machine) and,
for ``generate``, the median ``solve_s`` and ``jit_warmup_s`` of its ``--stats`` line, so the
start-up can be read next to the solve. The floors are what any process that solves pays before
the project's own code runs: the interpreter, ``import numpy``, ``import numba``, and loading the
solver's kernels from numba's cache. ``--src DIR`` times another checkout's ``src`` folder with
this interpreter (``PYTHONPATH=DIR``; give it its own ``NUMBA_CACHE_DIR``), for before/after
figures. ``--baseline DIR`` times every command case a second time with another checkout's ``src``
folder (rows marked ``[baseline]``), interleaved with the first, so that both see the same load:
on a shared machine, before/after figures from two separate runs differ by more than most
start-up changes.

Bytecode: an installed package has its ``.pyc`` files, and a normal Python writes them on the
first import; with ``PYTHONDONTWRITEBYTECODE=1`` (set in some sandboxes and containers) a
checkout without ``__pycache__`` compiles every project module in every process (~0.1 s here).
``--bytecode cached`` (the default) runs the cases without that variable and with
``PYTHONPYCACHEPREFIX`` in the benchmark's temporary folder, so the warm-up run fills a bytecode
cache as it fills numba's; ``uncached`` sets ``PYTHONDONTWRITEBYTECODE=1`` (whatever ``.pyc``
exist are read, none written); ``both`` runs every case both ways (rows marked ``[no .pyc]``).
The table's first line says which.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Case:
    """One command line to time; ``target_s`` is the issue's whole-process goal, if any."""

    name: str
    argv: tuple[str, ...]
    target_s: float | None = None
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment of this case (e.g. ``WORLDGEN_NATIVE=0`` for the JIT floor)."""


@dataclass
class Timing:
    """Every run of one case: wall and child CPU seconds, and the ``--stats`` figures if any."""

    case: Case
    wall_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    solve_s: list[float] = field(default_factory=list)
    jit_warmup_s: list[float] = field(default_factory=list)


def worldgen_command(src: Path | None) -> list[str]:
    """The installed console script next to this interpreter (else, or for another ``src``
    folder, the same ``main`` via ``python -c``)."""
    script = Path(sys.executable).parent / "worldgen"
    if src is None and script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from worldgen.cli import main; sys.exit(main())"]


def python_c(code: str) -> tuple[str, ...]:
    """``python -c code``, exiting as ``worldgen`` does: without a final collection of the heap
    (:mod:`worldgen.cli._gc`), so that the floors compare with the commands."""
    return (sys.executable, "-c", f"import atexit, gc\natexit.register(gc.freeze)\n{code}")


def cases(out_dir: Path, floors: bool, src: Path | None) -> list[Case]:
    """The commands of the issue's start-up targets, and (optionally) the floors under them."""
    wg = tuple(worldgen_command(src))
    png = str(out_dir / "out.png")
    tile = ("--seed", "1", "--z", "0", "--x", "0", "--y", "0", "--out", png)
    out = [
        Case("worldgen --version", (*wg, "--version"), target_s=0.15),
        Case(
            "generate terrain 48²",
            (*wg, "generate", "--tileset", "terrain", "--size", "48x48", "--out", png, "--stats"),
            target_s=0.4,
        ),
        Case(
            "generate lakes 48²",
            (*wg, "generate", "--sample", "lakes", "--size", "48x48", "--out", png, "--stats"),
            target_s=0.4,
        ),
        Case("tile terrain z0", (*wg, "tile", "--tileset", "terrain", *tile), target_s=0.3),
        Case("tile lakes z0", (*wg, "tile", "--sample", "lakes", *tile), target_s=0.3),
    ]
    if floors:
        out += [
            Case("floor: python", python_c("pass")),
            Case("floor: import numpy", python_c("import numpy")),
            Case("floor: import numba", python_c("import numba")),
            Case(
                "floor: solver kernels (native)",
                python_c("from worldgen.engine import solver; solver.warm_up()"),
            ),
            Case(
                "floor: solver kernels (JIT)",
                python_c("from worldgen.engine import solver; solver.warm_up()"),
                env={"WORLDGEN_NATIVE": "0"},
            ),
        ]
    return out


def baseline_cases(out_dir: Path, src: Path) -> list[Case]:
    """The command cases (no floors) run with the ``src`` folder ``src`` (``python -c``)."""
    env = {"PYTHONPATH": str(src.resolve())}
    return [
        Case(f"{c.name} [baseline]", c.argv, c.target_s, {**c.env, **env})
        for c in cases(out_dir, floors=False, src=src)
    ]


def run_once(case: Case, timing: Timing | None, env: dict[str, str]) -> None:
    """Run ``case`` once; record wall and CPU time (and its stats line) in ``timing``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(
        case.argv,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
        env={**env, **case.env},
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{case.name} exited with {proc.returncode}: {proc.stderr.strip()}")
    if timing is None:
        return
    timing.wall_s.append(wall)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    timing.cpu_s.append(cpu)
    lines = proc.stdout.strip().splitlines()
    if "--stats" in case.argv and lines:
        stats = json.loads(lines[-1])
        timing.solve_s.append(float(stats["solve_s"]))
        timing.jit_warmup_s.append(float(stats["jit_warmup_s"]))


def _ms(values: list[float], pick: str = "median") -> str:
    if not values:
        return "-"
    v = min(values) if pick == "min" else statistics.median(values)
    return f"{v * 1e3:,.0f}" if v >= 0.1 else f"{v * 1e3:.1f}"


def report(timings: list[Timing], runs: int, bytecode: str) -> None:
    """Print the table (milliseconds)."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"{datetime.now().astimezone():%Y-%m-%d %H:%M %z}; {len(os.sched_getaffinity(0))} CPUs; "
        f"load average {load}; {runs} runs per case after one warm-up; "
        f"NUMBA_CACHE_DIR={os.environ.get('NUMBA_CACHE_DIR', '(numba default)')}; "
        f"bytecode {bytecode}"
    )
    header = ("case", "wall min", "wall median", "CPU median", "target", "solve_s", "jit_warmup")
    rows = [
        (
            t.case.name,
            _ms(t.wall_s, "min"),
            _ms(t.wall_s),
            _ms(t.cpu_s),
            "-" if t.case.target_s is None else f"{t.case.target_s * 1e3:.0f}",
            _ms(t.solve_s),
            _ms(t.jit_warmup_s),
        )
        for t in timings
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    print(
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    )
    for r in rows:
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    print("(milliseconds; wall = whole process as a user sees it, CPU = its user + system time)")


def with_bytecode(selected: list[Case], mode: str, tmp: Path) -> list[Case]:
    """The cases with the environment of ``mode`` (see the module docstring)."""
    cached = {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(tmp / "pyc")}
    uncached = {"PYTHONDONTWRITEBYTECODE": "1"}
    out: list[Case] = []
    for c in selected:
        if mode in ("cached", "both"):
            out.append(Case(c.name, c.argv, c.target_s, {**c.env, **cached}))
        if mode in ("uncached", "both"):
            name = f"{c.name} [no .pyc]" if mode == "both" else c.name
            out.append(Case(name, c.argv, c.target_s, {**c.env, **uncached}))
    return out


def main(argv: list[str] | None = None) -> int:
    """Time every case ``--runs`` times, print the table and write it as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs per case (10)")
    parser.add_argument("--only", action="append", help="cases whose name contains this")
    parser.add_argument("--no-floors", action="store_true", help="skip the floor cases")
    parser.add_argument("--src", type=Path, help="time this src folder instead (PYTHONPATH)")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="also time the commands with this src folder, interleaved (rows [baseline])",
    )
    parser.add_argument(
        "--bytecode",
        choices=("cached", "uncached", "both"),
        default="cached",
        help="the children's bytecode cache (cached: filled by the warm-up run; default)",
    )
    args = parser.parse_args(argv)
    env = dict(os.environ)
    if args.src is not None:
        env["PYTHONPATH"] = str(args.src.resolve())
    with tempfile.TemporaryDirectory(prefix="wg-startup-") as tmp:
        chosen = cases(Path(tmp), floors=not args.no_floors, src=args.src)
        if args.baseline is not None:  # each command next to its baseline run
            base = {c.name: c for c in baseline_cases(Path(tmp), args.baseline)}
            chosen = [d for c in chosen for d in (c, base.get(f"{c.name} [baseline]")) if d]
        selected = with_bytecode(
            [c for c in chosen if not args.only or any(o in c.name for o in args.only)],
            args.bytecode,
            Path(tmp),
        )
        timings = [Timing(c) for c in selected]
        for t in timings:
            run_once(t.case, None, env)  # warm-up: JIT and patch-library caches
        for _ in range(args.runs):
            for t in timings:
                run_once(t.case, t, env)
    report(timings, args.runs, args.bytecode)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"startup-{datetime.now():%Y%m%d-%H%M%S}.json"
    doc = {
        "src": str(args.src or ROOT / "src"),
        "baseline": None if args.baseline is None else str(args.baseline),
        "bytecode": args.bytecode,
        "load_average": os.getloadavg(),
        "cases": [
            asdict(t) | {"case": {"name": t.case.name, "target_s": t.case.target_s}}
            for t in timings
        ],
    }
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
