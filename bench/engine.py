"""Engine benchmark: setup and solve times of the WFC solver on the shared samples and tilesets.

Run from the repository root (``bench/README.md`` explains every column and lists the targets)::

    .venv/bin/python -m bench.engine [--quick] [--only NAME] [--sizes 48 128] [--seeds N]
                                     [--success] [--hard] [--refine] [--scaling]
                                     [--max-solve-s S]

It prints figures and writes them as JSON to ``bench/results/engine-<timestamp>.json``; it never
asserts on time. A model that cannot be built, a solve that fails or raises, and an output that
breaks the rules are all rows in the table, never a crash of the run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numba
import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.table import Table

from worldgen.engine import solver
from worldgen.engine.patterns import extract_patterns, load_sample
from worldgen.engine.tileset import load_tileset

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SAMPLES = SHARED / "samples" / "overlapping"
TILESETS = SHARED / "samples" / "tilesets"
HIGHLANDS = ROOT / "tests" / "data" / "tilesets" / "highlands" / "highlands.xml"
RESULTS = ROOT / "bench" / "results"

N = 3
OVERLAPPING_SIZES = (48, 128, 256, 512)
TILED_SIZES = (64, 256, 512)
QUICK_OVERLAPPING_SIZES = (48, 128)
QUICK_TILED_SIZES = (64, 128)
SUCCESS_SIZE = 256
SUCCESS_SEEDS = 10
# (case, side): the pure-Python reference takes ~1.5 s for maze 48² and ~3 s for pipes 64² here;
# it scans every cell per observation (quadratic), so maze 128² would already take over a minute.
REFERENCE_RUNS: tuple[tuple[str, int], ...] = (("maze", 48), ("pipes.xml", 24), ("pipes.xml", 64))
WARM_START_RUNS = 3
SUBPROCESS_TIMEOUT_S = 600.0

# The warm-start fallback used while ``worldgen generate`` is missing or failing: the same work
# (import, maze model, rule compilation, one 48² solve) without writing a picture.
_WARM_FALLBACK = """\
import sys
from worldgen.engine import solver
from worldgen.engine.patterns import extract_patterns, load_sample
sample, palette = load_sample(sys.argv[1])
model = extract_patterns(sample, palette, 3, 8, periodic_input=True)
result = solver.solve(model.rules(), 48, 48, periodic=True, seed=1)
sys.exit(0 if result.solved else 1)
"""

Grid = npt.NDArray[np.int32]
Size = tuple[int, int]


@dataclass(frozen=True)
class CaseSpec:
    """One benchmark input: an overlapping sample (N=3, periodic in and out) or a tileset."""

    name: str
    kind: Literal["overlapping", "tiled"]
    path: Path
    symmetry: int = 8
    ground: bool = False

    @property
    def periodic(self) -> bool:
        """Overlapping outputs wrap around; tiled outputs are bounded."""
        return self.kind == "overlapping"


CASES: tuple[CaseSpec, ...] = (
    *(
        CaseSpec(name, "overlapping", SAMPLES / f"{name}.png")
        for name in ("islands", "rivers", "maze", "dungeon", "town")
    ),
    CaseSpec("garden", "overlapping", SAMPLES / "garden.png", symmetry=2, ground=True),
    *(
        CaseSpec(f"{name}.xml", "tiled", TILESETS / name / f"{name}.xml")
        for name in ("pipes", "dungeon", "terrain")
    ),
    CaseSpec("highlands.xml", "tiled", HIGHLANDS),
)

# The C++ reference (fast-wfc, its Release build, same inputs, one core), run-only ms, as issue 12
# reports it; the targets are half of it (islands 128² and town 256² as the issue states them).
CPP_MS: dict[tuple[str, int], float] = {
    ("islands", 48): 37.0,
    ("dungeon", 48): 51.0,
    ("town", 48): 170.0,
    ("town", 256): 8500.0,
}
TARGET_MS: dict[tuple[str, int], float] = {
    ("islands", 48): 18.0,
    ("islands", 128): 200.0,
    ("dungeon", 48): 25.5,
    ("town", 48): 85.0,
    ("town", 256): 4000.0,
}
# The target rows time every seed this many more times and keep its fastest run: on a shared
# machine a single run of a 15 ms solve moves by a third from one second to the next (another
# guest's burst), and the fastest of a few is the solver's own speed.
TARGET_REPEATS = 3
# --hard: every seed 1..10 must solve; maze 512² within 3 s each.
HARD_RUNS: tuple[tuple[str, int, float | None], ...] = (
    ("highlands.xml", 48, None),
    ("highlands.xml", 256, None),
    ("maze", 512, 3.0),
)
# --scaling: time per cell at 512² ÷ 64² (issue 12: <= 1.3 for tilesets), measured in pairs.
SCALING_CASES = ("pipes.xml", "dungeon.xml", "terrain.xml")
SCALING_SIDES = (64, 512)
SCALING_PAIRS = 9
SCALING_TARGET = 1.3
REFINE_SIDES = (16, 32)
REFINE_TILESET = TILESETS / "terrain" / "terrain.xml"
REFINE_SOLVES = 400
REFINE_BLOCKS = 10  # n x n top-layer blocks per round
REFINE_TARGET_S = 16  # issue 12: top-layer blocks/s at S = 16 at least twice those of f494792
REFINE_TARGET_X = 2.0


@dataclass(frozen=True, eq=False)
class Model:
    """A built and compiled case; ``ground`` is the pattern pinned to the bottom row, if any."""

    spec: CaseSpec
    compiled: solver.CompiledRules
    allowed: npt.NDArray[np.bool_]
    weights: npt.NDArray[np.float64]
    ground: int | None
    build_ms: float
    compile_ms: float

    @property
    def setup_ms(self) -> float:
        """Model build plus compile_rules."""
        return self.build_ms + self.compile_ms

    def constraints(self, width: int, height: int) -> solver.Constraints | None:
        """Ground: the bottom row pinned to the ground pattern, which is banned everywhere else."""
        if self.ground is None:
            return None
        pins = np.full((height, width), -1, dtype=np.int32)
        pins[height - 1, :] = self.ground
        bans = np.zeros((height, width, self.compiled.patterns), dtype=np.bool_)
        bans[: height - 1, :, self.ground] = True
        return solver.Constraints(pins=pins, bans=bans)

    def is_valid(self, grid: Grid) -> bool:
        """Every cell decided, every adjacent pair allowed, the ground where it belongs."""
        g = np.asarray(grid)
        if g.size == 0 or int(g.min()) < 0:
            return False
        a = self.allowed  # d = 1 is down (dy = +1), d = 2 is right (dx = +1)
        ok = bool(a[2][g[:, :-1], g[:, 1:]].all() and a[1][g[:-1, :], g[1:, :]].all())
        if self.spec.periodic:
            ok = ok and bool(a[2][g[:, -1], g[:, 0]].all() and a[1][g[-1, :], g[0, :]].all())
        if self.ground is not None:
            ok = ok and bool((g[-1] == self.ground).all() and not (g[:-1] == self.ground).any())
        return ok


def build_model(spec: CaseSpec) -> Model:
    """Load the sample or tileset and compile its rules, timing both halves."""
    started = time.perf_counter()
    ground: int | None = None
    if spec.kind == "overlapping":
        sample, palette = load_sample(spec.path)
        om = extract_patterns(sample, palette, N, spec.symmetry, periodic_input=True)
        table = om.rules()
        ground = om.ground_pattern if spec.ground else None
    else:
        table = load_tileset(spec.path, load_images=False).rules()
    built = time.perf_counter()
    compiled = solver.compile_rules(table)
    _ = compiled.kernel  # the kernel's arrays (byte look-up table) are built on first use
    done = time.perf_counter()
    return Model(
        spec=spec,
        compiled=compiled,
        allowed=np.asarray(table.allowed, dtype=np.bool_),
        weights=np.asarray(table.weights, dtype=np.float64),
        ground=ground,
        build_ms=(built - started) * 1e3,
        compile_ms=(done - built) * 1e3,
    )


@dataclass(frozen=True)
class Run:
    """One seed: our wall time around solve(), the solver's own solve_s, and its counters."""

    seed: int
    wall_s: float
    solve_s: float
    status: Literal["solved", "failed", "invalid", "error"]
    reason: str | None
    attempts: int
    backtracks: int
    observations: int

    @property
    def ok(self) -> bool:
        """Solved and checked valid."""
        return self.status == "solved"


def run_seed(model: Model, size: Size, seed: int) -> Run:
    """Solve once; failures and exceptions become a Run, never propagate."""
    width, height = size
    try:
        constraints = model.constraints(width, height)
        started = time.perf_counter()
        result = solver.solve(
            model.compiled, width, height,
            periodic=model.spec.periodic, seed=seed, constraints=constraints,
        )  # fmt: skip
        wall = time.perf_counter() - started
    except Exception as exc:
        return Run(seed, 0.0, 0.0, "error", f"{type(exc).__name__}: {exc}", 0, 0, 0)
    status: Literal["solved", "failed", "invalid"] = "failed"
    reason: str | None = result.reason
    if result.solved:
        status = "solved" if model.is_valid(result.grid) else "invalid"
        reason = None if status == "solved" else "output breaks the rules"
    return Run(
        seed, wall, result.solve_s, status, reason,
        result.attempts, result.backtracks, result.observations,
    )  # fmt: skip


@dataclass
class Row:
    """One (case, size) of the table; ``note`` explains an empty row (error, skipped)."""

    case: str
    size: Size
    patterns: int | None
    setup_ms: float | None
    runs: list[Run] = field(default_factory=list)
    note: str | None = None
    relative_per_cell: float | None = None

    @property
    def cells(self) -> int:
        return self.size[0] * self.size[1]

    @property
    def median_s(self) -> float | None:
        timed = [r.wall_s for r in self.runs if r.status != "error"]
        return statistics.median(timed) if timed else None

    @property
    def solver_median_s(self) -> float | None:
        timed = [r.solve_s for r in self.runs if r.status != "error"]
        return statistics.median(timed) if timed else None

    @property
    def successes(self) -> int:
        return sum(r.ok for r in self.runs)

    def median_of(self, counter: str) -> float | None:
        values = [getattr(r, counter) for r in self.runs if r.status != "error"]
        return float(statistics.median(values)) if values else None

    def status(self) -> str:
        """ "ok", the failure reasons with counts, or the note."""
        if self.note is not None:
            return self.note
        failed: dict[str, int] = {}
        for r in self.runs:
            if not r.ok:
                key = f"{r.status}: {r.reason}" if r.reason else r.status
                failed[key] = failed.get(key, 0) + 1
        return "ok" if not failed else "; ".join(f"{k} ×{n}" for k, n in failed.items())

    def as_dict(self) -> dict[str, Any]:
        med = self.median_s
        return {
            "case": self.case,
            "width": self.size[0],
            "height": self.size[1],
            "patterns": self.patterns,
            "setup_ms": self.setup_ms,
            "median_ms": None if med is None else med * 1e3,
            "solver_solve_s_median_ms": _ms(self.solver_median_s),
            "cells_per_s": self.cells / med if med else None,
            "successes": self.successes,
            "seeds": len(self.runs),
            "median_attempts": self.median_of("attempts"),
            "median_backtracks": self.median_of("backtracks"),
            "median_observations": self.median_of("observations"),
            "relative_time_per_cell": self.relative_per_cell,
            "status": self.status(),
            "runs": [vars(r) for r in self.runs],
        }


def extrapolate(rows: Sequence[Row], cells: int) -> float | None:
    """Seconds per solve at ``cells``, linear in cells from the last timed row (None: no data)."""
    for row in reversed(rows):
        med = row.median_s
        if med is not None:
            return med / row.cells * cells
    return None


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e3


class Bench:
    """Holds the built models and every seed's result, so later sections reuse earlier runs."""

    def __init__(self, specs: Sequence[CaseSpec], max_solve_s: float, log: Console) -> None:
        self.specs = list(specs)
        self.max_solve_s = max_solve_s
        self.log = log
        self.models: dict[str, Model | str] = {}
        self.runs: dict[tuple[str, Size, int], Run] = {}

    def model(self, spec: CaseSpec) -> Model | str:
        """The built model, or the error message that stopped it (built once per case)."""
        if spec.name not in self.models:
            self.log.print(f"[dim]building {spec.name} …[/dim]")
            try:
                self.models[spec.name] = build_model(spec)
            except Exception as exc:
                self.models[spec.name] = f"{type(exc).__name__}: {exc}"
        return self.models[spec.name]

    def measure(
        self, spec: CaseSpec, size: Size, seeds: Sequence[int], estimate_s: float | None = None
    ) -> Row:
        """Run ``seeds`` at ``size`` (reusing runs already made); skip sizes over the limit."""
        model = self.model(spec)
        if isinstance(model, str):
            return Row(spec.name, size, None, None, note=f"error: {model}")
        row = Row(spec.name, size, model.compiled.patterns, model.setup_ms)
        limited = self.max_solve_s > 0
        if limited and estimate_s is not None and estimate_s > self.max_solve_s:
            row.note = f"skipped: est. {estimate_s:.0f} s/solve > --max-solve-s"
            return row
        for seed in seeds:
            key = (spec.name, size, seed)
            if key not in self.runs:
                self.runs[key] = run_seed(model, size, seed)
            run = self.runs[key]
            row.runs.append(run)
            if limited and run.wall_s > self.max_solve_s and seed != seeds[-1]:
                row.note = f"{row.status()} (stopped after {len(row.runs)} seeds: slow)"
                break
        med = row.median_s
        self.log.print(
            f"[dim]  {spec.name} {size[0]}x{size[1]}: "
            f"{'-' if med is None else f'{med * 1e3:.1f} ms'} {row.successes}/{len(row.runs)}"
            f" {row.status()}[/dim]"
        )
        return row

    def case_rows(self, spec: CaseSpec, sides: Sequence[int], seeds: Sequence[int]) -> list[Row]:
        """Every size of one case, with time per cell relative to the smallest size."""
        rows: list[Row] = []
        for side in sides:
            size = (side, side)
            rows.append(self.measure(spec, size, seeds, extrapolate(rows, side * side)))
        base = rows[0].median_s / rows[0].cells if rows and rows[0].median_s else None
        for row in rows:
            if base is not None and row.median_s is not None:
                row.relative_per_cell = row.median_s / row.cells / base
        return rows


def reference_rows(bench: Bench, rows: Sequence[Row], seeds: Sequence[int]) -> list[dict[str, Any]]:
    """The pure-Python reference at small sizes (seed 1) and our speed-up over it."""
    try:
        from tests.reference.naive_wfc import solve_reference
    except ImportError as exc:
        bench.log.print(f"[yellow]reference solver unavailable ({exc}); run from the repo root")
        return []
    out: list[dict[str, Any]] = []
    by_name = {s.name: s for s in bench.specs}
    for name, side in REFERENCE_RUNS:
        spec = by_name.get(name)
        if spec is None:
            continue
        model = bench.model(spec)
        entry: dict[str, Any] = {"case": name, "width": side, "height": side, "seed": 1}
        out.append(entry)
        if isinstance(model, str):
            entry["status"] = f"error: {model}"
            continue
        bench.log.print(f"[dim]reference {name} {side}x{side} …[/dim]")
        started = time.perf_counter()
        try:
            grid = solve_reference(model.allowed, model.weights, side, side, spec.periodic, seed=1)
            entry["status"] = "solved" if grid is not None else "failed"
            if grid is not None and not model.is_valid(grid):
                entry["status"] = "invalid"
        except Exception as exc:
            entry["status"] = f"error: {type(exc).__name__}: {exc}"
        entry["reference_ms"] = (time.perf_counter() - started) * 1e3
        ours = next((r for r in rows if r.case == name and r.size == (side, side)), None)
        if ours is None or ours.median_s is None:
            ours = bench.measure(spec, (side, side), seeds)
        entry["ours_median_ms"] = _ms(ours.median_s)
        entry["ours_seeds"] = len(ours.runs)
        entry["speedup"] = (
            entry["reference_ms"] / entry["ours_median_ms"] if ours.median_s else None
        )
    return out


def warm_start(log: Console) -> dict[str, Any]:
    """Wall time of a fresh process to its first 48² maze, after one run warms numba's cache."""
    sample = str(SAMPLES / "maze.png")
    python = sys.executable
    cli = Path(python).with_name("worldgen")
    with tempfile.TemporaryDirectory(prefix="worldgen-bench-") as tmp:
        out = str(Path(tmp) / "x.png")
        commands: list[tuple[str, list[str]]] = []
        if cli.is_file() and importlib.util.find_spec("worldgen.cli") is not None:
            commands.append((
                "worldgen generate",
                [str(cli), "generate", "--sample", sample, "--N", "3", "--symmetry", "8",
                 "--size", "48x48", "--seed", "1", "--out", out],
            ))  # fmt: skip
        commands.append(("python -c fallback", [python, "-c", _WARM_FALLBACK, sample]))
        notes: list[str] = []
        for label, cmd in commands:
            log.print(f"[dim]warm start: {label} (first run warms the cache) …[/dim]")
            first = _timed(cmd)
            if first[1] != 0:
                notes.append(f"{label} failed (exit {first[1]}): {first[2]}")
                continue
            times = [_timed(cmd) for _ in range(WARM_START_RUNS)]
            failed = [t for t in times if t[1] != 0]
            return {
                "command": label,
                "first_s": first[0],
                "times_s": [t[0] for t in times],
                "median_s": statistics.median(t[0] for t in times),
                "failed_runs": len(failed),
                "notes": notes,
            }
    return {"command": None, "median_s": None, "notes": notes}


def _timed(cmd: list[str]) -> tuple[float, int, str]:
    """(wall seconds, exit code, last line of stderr) of one subprocess."""
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return time.perf_counter() - started, -1, f"{type(exc).__name__}: {exc}"
    lines = proc.stderr.strip().splitlines()
    return time.perf_counter() - started, proc.returncode, lines[-1] if lines else ""


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True,
        check=False,
    ).stdout.strip()  # fmt: skip
    return {
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": str(numba.__version__),
        "commit": commit or None,
    }


def _fmt_ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1e3
    return f"{ms:.1f}" if ms < 100 else f"{ms:,.0f}"


def _fmt_rate(rate: float | None) -> str:
    if rate is None:
        return "-"
    return f"{rate / 1e6:.2f}M" if rate >= 1e6 else f"{rate / 1e3:.0f}k"


def _fmt_num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def main_table(rows: Sequence[Row]) -> Table:
    """The per-case, per-size table."""
    table = Table(title="solve times (JIT warm; ms; median over seeds)", title_justify="left")
    for name in ("case", "size", "T", "setup ms", "median ms", "min–max ms", "cells/s",
                 "ok", "attempts", "backtracks", "observations", "per cell ×", "solver solve_s",
                 "status"):  # fmt: skip
        numeric = name not in ("case", "size", "status")
        table.add_column(name, justify="right" if numeric else "left", overflow="fold")
    for row in rows:
        timed = [r.wall_s for r in row.runs if r.status != "error"]
        med, own = row.median_s, row.solver_median_s
        # Our timer also covers validation and constraint set-up that solve_s leaves out.
        differs = med is not None and own is not None and abs(med - own) > max(5e-4, 0.05 * med)
        table.add_row(
            row.case,
            f"{row.size[0]}x{row.size[1]}",
            _fmt_num(row.patterns),
            _fmt_ms(None if row.setup_ms is None else row.setup_ms / 1e3),
            _fmt_ms(med),
            f"{_fmt_ms(min(timed))}–{_fmt_ms(max(timed))}" if timed else "-",
            _fmt_rate(row.cells / med if med else None),
            f"{row.successes}/{len(row.runs)}" if row.runs else "-",
            _fmt_num(row.median_of("attempts")),
            _fmt_num(row.median_of("backtracks")),
            _fmt_num(row.median_of("observations")),
            _fmt_num(row.relative_per_cell, 2),
            _fmt_ms(own) if differs else ("≈" if own is not None else "-"),
            row.status(),
        )
    return table


def reference_table(entries: Sequence[dict[str, Any]]) -> Table:
    table = Table(title="pure-Python reference (seed 1) vs ours", title_justify="left")
    for name in ("case", "size", "reference ms", "status", "ours median ms", "speed-up"):
        table.add_column(name, justify="left" if name in ("case", "size", "status") else "right")
    for e in entries:
        speedup = e.get("speedup")
        table.add_row(
            e["case"],
            f"{e['width']}x{e['height']}",
            _fmt_num(e.get("reference_ms"), 1),
            str(e.get("status", "-")),
            _fmt_num(e.get("ours_median_ms"), 2),
            "-" if speedup is None else f"{speedup:,.0f}×",
        )
    return table


def success_table(rows: Sequence[Row]) -> Table:
    table = Table(title=f"success at {SUCCESS_SIZE}² (seeds 1..{SUCCESS_SEEDS})")
    for name in ("case", "ok", "median ms", "failed seeds"):
        table.add_column(name, justify="left" if name in ("case", "failed seeds") else "right")
    for row in rows:
        bad = ", ".join(f"{r.seed} ({r.reason or r.status})" for r in row.runs if not r.ok)
        table.add_row(
            row.case,
            f"{row.successes}/{len(row.runs)}" if row.runs else "-",
            _fmt_ms(row.median_s),
            row.note or bad or "-",
        )
    return table


def target_entries(bench: Bench, rows: Sequence[Row], repeats: int) -> list[dict[str, Any]]:
    """The rows issue 12 names, each seed timed ``repeats`` more times (its fastest run kept),
    next to the C++ reference figure and the target; met = every run solved and the median of
    the seeds' fastest runs within the target."""
    entries: list[dict[str, Any]] = []
    for row in rows:
        key = (row.case, row.size[0])
        if key not in TARGET_MS or row.size[0] != row.size[1] or not row.runs:
            continue
        model = bench.models.get(row.case)
        best: list[float] = []
        solved = row.successes == len(row.runs)
        for run in row.runs:
            fastest = run.wall_s
            if isinstance(model, Model):
                for _ in range(repeats):
                    again = run_seed(model, row.size, run.seed)
                    solved = solved and again.ok
                    fastest = min(fastest, again.wall_s)
            best.append(fastest)
        single = row.median_s
        best_ms = statistics.median(best) * 1e3
        entries.append(
            {
                "case": row.case,
                "size": row.size[0],
                "single_ms": None if single is None else single * 1e3,
                "best_ms": best_ms,
                "runs_per_seed": 1 + repeats,
                "cpp_ms": CPP_MS.get(key),
                "target_ms": TARGET_MS[key],
                "met": solved and best_ms <= TARGET_MS[key],
            }
        )
    return entries


def target_table(entries: Sequence[dict[str, Any]]) -> Table:
    """Our figures next to the C++ reference figures and the targets of issue 12."""
    table = Table(title="vs the C++ reference (fast-wfc) and the targets", title_justify="left")
    runs = entries[0]["runs_per_seed"] if entries else 1
    columns = ("case", "size", "one run ms", f"best of {runs} ms", "C++ ms", "C++ ÷ ours",
               "target ms", "met")  # fmt: skip
    for name in columns:
        table.add_column(name, justify="left" if name in ("case", "size") else "right")
    for e in entries:
        ours = e["best_ms"]
        cpp = e["cpp_ms"]
        table.add_row(
            e["case"],
            f"{e['size']}x{e['size']}",
            _fmt_num(e["single_ms"], 1),
            _fmt_num(ours, 1),
            _fmt_num(cpp, 0),
            "-" if cpp is None or not ours else f"{cpp / ours:.2f}",
            _fmt_num(e["target_ms"], 1),
            "yes" if e["met"] else "no",
        )
    return table


def baseline(
    bench: Bench, specs: Sequence[CaseSpec], seeds: Sequence[int], log: Console
) -> list[dict[str, Any]] | str:
    """``--baseline``: the engine of issue 12's measurements and ours, alternately (see
    ``bench/engine_baseline.py``); an error message when the old engine cannot run."""
    from bench import engine_baseline

    selected = {s.name: s for s in specs}
    cases = [
        (name, selected[name].path, side)
        for name, side in engine_baseline.BASELINE_THERE_MS
        if name in selected
    ]
    if not cases:
        return []

    def ours(name: str, side: int, seed: int) -> float | None:
        model = bench.model(selected[name])
        if isinstance(model, str):
            return None
        run = run_seed(model, (side, side), seed)
        return run.wall_s if run.ok else None

    try:
        entries = engine_baseline.compare(
            cases, seeds, ours, lambda message: log.print(f"[dim]{message}[/dim]")
        )
    except (RuntimeError, OSError, subprocess.SubprocessError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    for e in entries:
        there = e["baseline_there_ms"]
        target = TARGET_MS[(e["case"], e["size"])]
        e["target_speed_up"] = there / target
        old_ms = e["baseline_ms"]
        e["target_here_ms"] = None if old_ms is None else old_ms * target / there
        e["met"] = e["speed_up"] is not None and e["speed_up"] >= e["target_speed_up"]
    return entries


def baseline_table(entries: Sequence[dict[str, Any]]) -> Table:
    """Ours against the engine of issue 12's measurements, in the same minutes."""
    from bench.engine_baseline import BASELINE_COMMIT

    table = Table(
        title=f"vs the engine of {BASELINE_COMMIT} in this run (fastest of each seed's runs)",
        title_justify="left",
    )
    columns = (
        "case", "size", f"{BASELINE_COMMIT} ms", "ours ms", "speed-up", "target speed-up",
        "target here ms", "met",
    )  # fmt: skip
    for name in columns:
        table.add_column(name, justify="left" if name in ("case", "size") else "right")
    for e in entries:
        table.add_row(
            e["case"],
            f"{e['size']}x{e['size']}",
            _fmt_num(e["baseline_ms"], 1),
            _fmt_num(e["ours_ms"], 1),
            _fmt_num(e["speed_up"], 2),
            f"{e['target_speed_up']:.2f}",
            _fmt_num(e["target_here_ms"], 1),
            "yes" if e["met"] else "no",
        )
    return table


def hard_table(rows: Sequence[tuple[Row, float | None]]) -> Table:
    """Seeds 1..10 of the hard cases: every seed, its attempts, repairs and time."""
    table = Table(title="hard cases (seeds 1..10)", title_justify="left")
    for name in ("case", "size", "ok", "attempts", "repairs", "max s", "limit s", "per seed"):
        table.add_column(name, justify="left" if name in ("case", "size", "per seed") else "right")
    for row, limit in rows:
        runs = row.runs
        worst = max((r.wall_s for r in runs), default=0.0)
        table.add_row(
            row.case,
            f"{row.size[0]}x{row.size[1]}",
            f"{row.successes}/{len(runs)}",
            ", ".join(str(r.attempts) for r in runs),
            ", ".join(str(r.backtracks) for r in runs),
            f"{worst:.2f}",
            "-" if limit is None else f"{limit:.1f}",
            " ".join(f"{r.wall_s:.2f}" for r in runs),
        )
    return table


def scaling(bench: Bench, specs: Sequence[CaseSpec], pairs: int) -> list[dict[str, Any]]:
    """Time per cell at 512² ÷ 64² for the SCALING_CASES among ``specs``, measured in pairs in
    this process: one 512² solve (seeds 1..3 in turn), then the same number of cells at 64² (64
    solves, seeds 1..3 in turn), thread time. Both halves of a pair see the same load, which on
    a shared machine moves either size's time by ±20 % from one minute to the next; the median
    of the pair ratios (and its quartiles) is the figure, next to the ratio of each size's
    fastest."""
    small, big = SCALING_SIDES
    count = (big // small) ** 2
    out: list[dict[str, Any]] = []
    for spec in specs:
        if spec.name not in SCALING_CASES:
            continue
        model = bench.model(spec)
        if isinstance(model, str):
            out.append({"case": spec.name, "error": model})
            continue
        bench.log.print(f"[dim]scaling {spec.name}: {pairs} pairs …[/dim]")

        def seconds(side: int, seed: int, model: Model = model, spec: CaseSpec = spec) -> float:
            started = time.thread_time()
            solver.solve(model.compiled, side, side, periodic=spec.periodic, seed=seed)
            return time.thread_time() - started

        seconds(big, 1)  # the kept large solver and the small ones exist before timing
        seconds(small, 1)
        ratios: list[float] = []
        big_us: list[float] = []
        small_us: list[float] = []
        for k in range(pairs):
            t_big = seconds(big, 1 + k % 3)
            t_small = sum(seconds(small, 1 + i % 3) for i in range(count))
            ratios.append(t_big / t_small)
            big_us.append(t_big / big**2 * 1e6)
            small_us.append(t_small / (count * small**2) * 1e6)
        quartiles = statistics.quantiles(ratios, n=4) if pairs > 1 else [ratios[0]] * 3
        out.append(
            {
                "case": spec.name,
                "pairs": pairs,
                "ratio_median": statistics.median(ratios),
                "ratio_quartiles": [quartiles[0], quartiles[2]],
                "best_us_per_cell": {str(small): min(small_us), str(big): min(big_us)},
                "ratio_of_best": min(big_us) / min(small_us),
            }
        )
    return out


def scaling_table(entries: Sequence[dict[str, Any]]) -> Table:
    small, big = SCALING_SIDES
    table = Table(
        title=f"time per cell {big}² ÷ {small}², pairs in one process (thread time)",
        title_justify="left",
    )
    for name in (
        "case", "pairs", "median ratio", "quartiles", f"best {small}² µs/cell",
        f"best {big}² µs/cell", "ratio of best", f"≤ {SCALING_TARGET}",
    ):  # fmt: skip
        table.add_column(name, justify="left" if name == "case" else "right")
    for e in entries:
        if "error" in e:
            table.add_row(e["case"], "-", "-", "-", "-", "-", "-", f"error: {e['error']}")
            continue
        best = e["best_us_per_cell"]
        table.add_row(
            e["case"],
            str(e["pairs"]),
            f"{e['ratio_median']:.3f}",
            f"{e['ratio_quartiles'][0]:.3f}-{e['ratio_quartiles'][1]:.3f}",
            f"{best[str(small)]:.3f}",
            f"{best[str(big)]:.3f}",
            f"{e['ratio_of_best']:.3f}",
            "yes" if e["ratio_median"] <= SCALING_TARGET else "no",
        )
    return table


def refine_table(entries: Sequence[dict[str, Any]]) -> Table:
    table = Table(title="world refinement throughput (one process)", title_justify="left")
    for name in ("S", "solves/s (engine)", "solved", "repairs/solve", "top blocks/s (world)"):
        table.add_column(name, justify="right")
    for e in entries:
        table.add_row(
            str(e["S"]),
            _fmt_num(e["solves"].get("solves_per_s"), 0),
            _fmt_num(e["solves"].get("solved_share"), 3),
            _fmt_num(e["solves"].get("repairs_per_solve"), 2),
            _fmt_num(e["world"].get("blocks_per_s"), 0)
            if "blocks_per_s" in e["world"]
            else str(e["world"].get("error", "-")),
        )
    return table


def refine_side(side: int) -> dict[str, Any]:
    """Refinement-shaped solves and world blocks at block side ``side``; a figure that cannot be
    measured is an ``error`` entry, not a crash of the run."""
    from bench import engine_refine

    entry: dict[str, Any] = {"S": side}
    try:
        entry["solves"] = engine_refine.refinement_solves(REFINE_TILESET, side, REFINE_SOLVES)
    except Exception as exc:
        entry["solves"] = {"error": f"{type(exc).__name__}: {exc}"}
    try:
        entry["world"] = engine_refine.world_blocks(REFINE_TILESET, side, REFINE_BLOCKS)
    except Exception as exc:
        entry["world"] = {"error": f"{type(exc).__name__}: {exc}"}
    return entry


def refine(log: Console) -> list[dict[str, Any]]:
    """Refinement-shaped solves and world blocks at each side of REFINE_SIDES."""
    out: list[dict[str, Any]] = []
    for side in REFINE_SIDES:
        log.print(f"[dim]refinement S={side} …[/dim]")
        out.append(refine_side(side))
    return out


def refine_baseline(log: Console) -> list[dict[str, Any]] | str:
    """``--refine --baseline``: refinement throughput of the old engine and ours, alternately (a
    figure of ours that could not be measured ends the comparison with its error)."""
    from bench import engine_baseline

    def ours(side: int) -> dict[str, float]:
        entry = refine_side(side)
        for part in ("solves", "world"):
            if "error" in entry[part]:
                raise RuntimeError(f"ours, S = {side}: {entry[part]['error']}")
        return {
            "solves_per_s": entry["solves"]["solves_per_s"],
            "blocks_per_s": entry["world"]["blocks_per_s"],
        }

    try:
        return engine_baseline.refine_compare(
            REFINE_TILESET, REFINE_SIDES, ours, REFINE_SOLVES, REFINE_BLOCKS,
            lambda message: log.print(f"[dim]{message}[/dim]"),
        )  # fmt: skip
    except (RuntimeError, OSError, subprocess.SubprocessError, ValueError, KeyError) as exc:
        return f"{type(exc).__name__}: {exc}"


def refine_baseline_table(entries: Sequence[dict[str, Any]]) -> Table:
    """Refinement throughput against the engine (and world) of f494792, same run."""
    from bench.engine_baseline import BASELINE_COMMIT

    table = Table(
        title=f"world refinement throughput vs {BASELINE_COMMIT} in this run (best rates)",
        title_justify="left",
    )
    columns = (
        "S", f"solves/s {BASELINE_COMMIT}", "solves/s ours", "×", f"top blocks/s {BASELINE_COMMIT}",
        "top blocks/s ours", "×", f"target (S = {REFINE_TARGET_S})", "met",
    )  # fmt: skip
    for name in columns:
        table.add_column(name, justify="right")
    for e in entries:
        targeted = e["S"] == REFINE_TARGET_S
        table.add_row(
            str(e["S"]),
            f"{e['baseline']['solves_per_s']:,.0f}",
            f"{e['ours']['solves_per_s']:,.0f}",
            f"{e['solves_x']:.2f}",
            f"{e['baseline']['blocks_per_s']:,.0f}",
            f"{e['ours']['blocks_per_s']:,.0f}",
            f"{e['blocks_x']:.2f}",
            f"≥ {REFINE_TARGET_X:.0f}× blocks/s" if targeted else "-",
            ("yes" if e["blocks_x"] >= REFINE_TARGET_X else "no") if targeted else "-",
        )
    return table


def _sizes(text: str) -> int:
    side = int(text)
    if side < 1:
        raise argparse.ArgumentTypeError("sizes are square sides of at least 1")
    return side


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.engine", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="48²/64² and 128² only, 1 seed")
    p.add_argument(
        "--baseline", action="store_true",
        help="also time the engine of issue 12's measurements (from git history) and ours "
        "alternately, against the issue's targets as speed-ups (see bench/engine_baseline.py)",
    )  # fmt: skip
    p.add_argument(
        "--only", action="append", metavar="NAME",
        help="run only this case (repeatable): a sample name, a tileset like pipes.xml, or a "
        "bare name matching both (dungeon)",
    )  # fmt: skip
    p.add_argument("--sizes", nargs="+", type=_sizes, metavar="SIDE", help="square sides to run")
    p.add_argument("--seeds", type=int, default=None, help="seeds 1..N per size (3; quick: 1)")
    p.add_argument("--success", action="store_true", help=f"also seeds 1..10 at {SUCCESS_SIZE}²")
    p.add_argument(
        "--hard", action="store_true",
        help="also seeds 1..10 of highlands 48² and 256² and maze 512²",
    )  # fmt: skip
    p.add_argument(
        "--refine", action="store_true",
        help="also the world refinement throughput at S=16 and S=32",
    )  # fmt: skip
    p.add_argument(
        "--scaling", nargs="?", type=int, const=SCALING_PAIRS, default=0, metavar="PAIRS",
        help="also time per cell 512² ÷ 64² of the tilesets, in pairs (%(const)s pairs)",
    )  # fmt: skip
    p.add_argument(
        "--max-solve-s", type=float, default=120.0, metavar="S",
        help="skip a size whose estimated solve exceeds S seconds (0: never skip; %(default)s)",
    )  # fmt: skip
    args = p.parse_args(argv)
    if args.seeds is not None and args.seeds < 1:
        p.error("--seeds must be at least 1")
    if args.scaling < 0:
        p.error("--scaling needs a positive number of pairs")
    if args.only:
        known = {s.name for s in CASES} | {s.name.removesuffix(".xml") for s in CASES}
        unknown = [n for n in args.only if n not in known]
        if unknown:
            p.error(f"unknown case {', '.join(unknown)}; choose from {', '.join(sorted(known))}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = Console() if sys.stdout.isatty() else Console(width=200)
    log = Console(stderr=True)
    run_started = time.perf_counter()

    info = machine()
    out.print(
        f"[bold]worldgen engine benchmark[/bold]  {info['date']}\n"
        f"machine: {info['nproc']} CPUs, {info['cpu']}, load {info['load_average']}  "
        f"python {info['python']}, numpy {info['numpy']}, numba {info['numba']}, "
        f"commit {info['commit']}\n"
        "timings are wall-clock on a shared machine: other work makes them noisy"
    )
    warm_up_s = solver.warm_up()
    out.print(f"solver.warm_up(): {warm_up_s * 1e3:,.0f} ms (JIT compile or numba cache load)")

    n_seeds = args.seeds if args.seeds is not None else (1 if args.quick else 3)
    seeds = list(range(1, n_seeds + 1))
    specs = [
        s
        for s in CASES
        if not args.only or s.name in args.only or s.name.removesuffix(".xml") in args.only
    ]
    bench = Bench(specs, args.max_solve_s, log)

    rows: list[Row] = []
    for spec in specs:
        if args.sizes:
            sides: Sequence[int] = args.sizes
        elif spec.kind == "overlapping":
            sides = QUICK_OVERLAPPING_SIZES if args.quick else OVERLAPPING_SIZES
        else:
            sides = QUICK_TILED_SIZES if args.quick else TILED_SIZES
        rows.extend(bench.case_rows(spec, sides, seeds))
    out.print(main_table(rows))
    targets = target_entries(bench, rows, TARGET_REPEATS)
    if targets:
        out.print(target_table(targets))

    old_engine: list[dict[str, Any]] | str = []
    if args.baseline:
        old_engine = baseline(bench, specs, seeds, log)
        if isinstance(old_engine, str):
            out.print(f"baseline: could not run the old engine ({old_engine})")
        elif old_engine:
            out.print(baseline_table(old_engine))

    reference = reference_rows(bench, rows, seeds)
    if reference:
        out.print(reference_table(reference))

    warm: dict[str, Any] | None = None
    if any(s.name == "maze" for s in specs):
        warm = warm_start(log)
        if warm["median_s"] is None:
            notes = "; ".join(warm["notes"])
            out.print(f"warm process start to first 48² output: failed ({notes})")
        else:
            times = ", ".join(f"{t:.2f}" for t in warm["times_s"])
            out.print(
                f"warm process start to first 48² output ({warm['command']}): "
                f"median {warm['median_s']:.2f} s of {times} s (cache-warming run "
                f"{warm['first_s']:.2f} s)"
                + (f"; {'; '.join(warm['notes'])}" if warm["notes"] else "")
            )

    success: list[Row] = []
    if args.success:
        all_seeds = list(range(1, SUCCESS_SEEDS + 1))
        for spec in specs:
            estimate = extrapolate([r for r in rows if r.case == spec.name], SUCCESS_SIZE**2)
            success.append(bench.measure(spec, (SUCCESS_SIZE, SUCCESS_SIZE), all_seeds, estimate))
        out.print(success_table(success))

    hard: list[tuple[Row, float | None]] = []
    if args.hard:
        by_name = {s.name: s for s in CASES}
        for name, side, limit in HARD_RUNS:
            hard_bench = Bench([by_name[name]], 0.0, log)
            hard.append(
                (hard_bench.measure(by_name[name], (side, side), list(range(1, 11))), limit)
            )
        out.print(hard_table(hard))

    scaled: list[dict[str, Any]] = []
    if args.scaling:
        scaled = scaling(bench, specs, args.scaling)
        out.print(scaling_table(scaled))

    refinement: list[dict[str, Any]] = []
    refine_old: list[dict[str, Any]] | str = []
    if args.refine:
        refinement = refine(log)
        out.print(refine_table(refinement))
        if args.baseline:
            refine_old = refine_baseline(log)
            if isinstance(refine_old, str):
                out.print(f"refinement baseline: could not run the old engine ({refine_old})")
            else:
                out.print(refine_baseline_table(refine_old))

    total_s = time.perf_counter() - run_started
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"engine-{datetime.now():%Y%m%d-%H%M%S}.json"
    document = {
        "machine": info,
        "arguments": vars(args),
        "warm_up_ms": warm_up_s * 1e3,
        "models": {
            name: m if isinstance(m, str) else {"build_ms": m.build_ms, "compile_ms": m.compile_ms}
            for name, m in bench.models.items()
        },
        "rows": [r.as_dict() for r in rows],
        "targets": targets,
        "baseline": old_engine,
        "reference": reference,
        "warm_start": warm,
        "success": [r.as_dict() for r in success],
        "hard": [{**r.as_dict(), "limit_s": limit} for r, limit in hard],
        "refine": refinement,
        "refine_baseline": refine_old,
        "scaling": scaled,
        "total_s": total_s,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    out.print(f"total {total_s:.0f} s; results written to {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
