"""Infinite-world benchmark: prints figures and writes them as JSON; never asserts on time.

Run from the repository root (``bench/README.md`` explains every figure and lists the targets)::

    .venv/bin/python -m bench.world [--quick] [--only NAME] [--tiles N] [--pool-side CELLS]
                                    [--memory-side CELLS] [--memory-workers N] [--no-memory]

Per tileset (bundled ``terrain``, ``pipes``, ``roads``; shared ``terrain``, ``pipes``,
``dungeon``): patch-library build time (cold, private cache), cold detail-tile time p50/p95 (a
fresh :class:`World` per tile, JIT warm, library cached), far-zoom tile times, fallback rate,
macro/tile class agreement against chance, top-layer blocks/s of a warm :class:`WorkerPool` with 1
and 2 workers (and the serial in-process rate), and the peak RSS of ``worldgen region`` writing a
large region as PNG, measured in a subprocess with ``getrusage(RUSAGE_CHILDREN)``.

``--zooms`` runs :mod:`bench.zooms` instead: cold map tile latency per zoom through a 2-worker
pool and the far-zoom colour error of every bundled model. ``--quality`` runs
:mod:`bench.quality` instead: each world against a plain solve of its model (periodicity,
structure size, local statistics) and the classed tilesets' terrain figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from bench import quality, zooms
from bench.engine import machine
from worldgen.engine import solver
from worldgen.engine.tileset import load_tileset
from worldgen.errors import InputError
from worldgen.world.api import build_world
from worldgen.world.blocks import World
from worldgen.world.patches import cache_dir, load_or_build
from worldgen.world.pool import WorkerPool
from worldgen.world.render import Palette, render_tile
from worldgen.world.spec import WorldSpec
from worldgen.world.summary import summary_for

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "samples" / "tilesets"
RESULTS = ROOT / "bench" / "results"
BUNDLED = ROOT / "src" / "worldgen" / "tilesets"

SEED = 42
S, V, LAYERS = 32, 4, 2  # the WorldSpec defaults
FAR_ZOOMS = (-3, -6, -10)
AGREEMENT_SIDE = 256
POOL_ROUNDS = 3
SUBPROCESS_TIMEOUT_S = 3600.0

# Runs ``worldgen region`` (argv[1:]) as its only child and prints the child's peak RSS.
_MEMORY_PROBE = """\
import json, resource, subprocess, sys, time
started = time.perf_counter()
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({
    "returncode": proc.returncode,
    "seconds": time.perf_counter() - started,
    "maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    "stderr": proc.stderr[-400:],
}))
"""


@dataclass(frozen=True)
class Case:
    """A tileset to benchmark: ``name`` is bundled (looked up by name) or a file path."""

    label: str
    name: str
    path: Path


CASES: tuple[Case, ...] = (
    *(Case(n, n, BUNDLED / n / f"{n}.xml") for n in ("terrain", "pipes", "roads")),
    *(Case(f"shared/{n}", str(SHARED / n / f"{n}.xml"), SHARED / n / f"{n}.xml")
      for n in ("terrain", "pipes", "dungeon")),
)  # fmt: skip


@dataclass
class Result:
    """Every figure of one tileset (times in ms unless named otherwise); None: not measured."""

    case: str
    variants: int = 0
    classes: int = 0
    combos: int = 0
    library_build_s: float | None = None
    summary_s: float | None = None
    detail_ms: list[float] = field(default_factory=list)
    detail_p50_ms: float | None = None
    detail_p95_ms: float | None = None
    far_ms: dict[str, list[float]] = field(default_factory=dict)
    far_p50_ms: float | None = None
    far_max_ms: float | None = None
    blocks: int = 0
    fallbacks: int = 0
    agreement: float | None = None
    chance: float | None = None
    serial_blocks_per_s: float | None = None
    pool_blocks_per_s: dict[str, float] = field(default_factory=dict)
    pool_ratio: float | None = None
    pool_cold_s: float | None = None
    pool_runs: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    pool_busy: float | None = None
    others_load: float | None = None
    machine_ceiling: float | None = None
    memory: dict[str, Any] | None = None
    error: str | None = None

    @property
    def fallback_rate(self) -> float | None:
        """Fallback blocks over refinement blocks computed by the tile and agreement runs."""
        return self.fallbacks / self.blocks if self.blocks else None


def _pct(values: Sequence[float], q: int) -> float:
    """The q-th percentile (nearest rank on the sorted values)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, -(-q * len(ordered) // 100) - 1))]


def fresh(base: World) -> World:
    """A new world sharing ``base``'s model, library and compiled rules, with an empty LRU."""
    return World(
        base.model, base.seed, S=base.S, V=base.V, layers=base.layers, library=base.lib,
        config=base.config,
    )  # fmt: skip


def bench_tiles(case: Case, spec: WorldSpec, res: Result, tiles: int, log: Console) -> World:
    """Library build, detail and far tiles, fallbacks, class agreement."""
    ts = load_tileset(case.path)
    started = time.perf_counter()
    lib = load_or_build(ts, S, V, cache_dir())  # the private cache is empty: a cold build
    res.library_build_s = time.perf_counter() - started
    base = build_world(spec, allow_files=True)
    res.variants, res.classes, res.combos = base.model.size, base.K, len(lib.combos)
    palette = Palette(base)
    log.print(f"  {case.label}: library {res.library_build_s:.2f} s; {tiles} cold detail tiles")
    for k in range(tiles):
        world = fresh(base)  # nothing memoised: every block under the tile is computed
        t0 = time.perf_counter()
        render_tile(world, 2, 1000 + 7 * k, -300 + 3 * k, palette)
        res.detail_ms.append((time.perf_counter() - t0) * 1e3)
        res.blocks += world.fallbacks + world.solved_blocks
        res.fallbacks += world.fallbacks
    res.detail_p50_ms = statistics.median(res.detail_ms)
    res.detail_p95_ms = _pct(res.detail_ms, 95)
    far_all: list[float] = []
    started = time.perf_counter()
    summary_for(base)  # learnt once per library (cached on disk); every fresh world reads it
    res.summary_s = time.perf_counter() - started
    for z in FAR_ZOOMS:
        times = []
        for k in range(max(3, tiles // 4)):
            world = fresh(base)
            t0 = time.perf_counter()
            render_tile(world, z, k - 2, 1 - k, palette)
            times.append((time.perf_counter() - t0) * 1e3)
        res.far_ms[str(z)] = times
        far_all.extend(times)
    res.far_p50_ms = statistics.median(far_all)
    res.far_max_ms = max(far_all)

    world = fresh(base)
    side = AGREEMENT_SIDE
    grid = world.region(-side, -side, side, side)
    res.blocks += world.fallbacks + world.solved_blocks
    res.fallbacks += world.fallbacks
    tile_cls = world.variant_class[grid]
    macro_cls = world.lattice_classes_for(-side, -side, side, side)
    res.agreement = float((tile_cls == macro_cls).mean())
    pt = np.bincount(np.maximum(tile_cls, 0).ravel(), minlength=world.K) / tile_cls.size
    pm = np.bincount(macro_cls.ravel(), minlength=world.K) / macro_cls.size
    res.chance = float((pt * pm).sum())
    return base


def _cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds of processes ``pids`` so far (Linux ``/proc``; 0 elsewhere)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def _machine_busy_seconds() -> float:
    """CPU seconds every process on the machine has used since boot (``/proc/stat``)."""
    try:
        parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in parts[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def bench_pool(base: World, spec: WorldSpec, res: Result, side: int, log: Console) -> None:
    """Top-layer blocks/s: serial in-process, and warm pools of 1 and 2 workers.

    ``POOL_ROUNDS`` rounds; each times the three on the same fresh window (a window elsewhere
    per round, so no block is cached), alternating which pool goes first. Each rate is taken from
    the round where that run was least disturbed. Every pool run also records the CPU seconds of
    its workers and of every *other* process on the machine (``/proc``), and each round measures
    the machine's ceiling (two independent copies of one window at once against one copy), so a
    ratio below 2 can be told apart: workers idle (the pool starved them), CPUs taken by other
    work, or two busy CPUs each slower than one (shared caches, a virtual machine's vCPUs).
    """
    warm = (-side, 90_000, side, side)
    runs: dict[str, list[dict[str, float]]] = {"serial": [], "1": [], "2": [], "copies": []}
    started = time.perf_counter()
    with (
        WorkerPool(1, allow_files=True) as one,
        WorkerPool(2, allow_files=True) as two,
    ):
        pools = {"1": one, "2": two}
        pids: dict[str, list[int]] = {}
        for name, pool in pools.items():
            pids[name] = pool.start()
            pool.region(spec, *warm)  # every worker has built the world
        res.pool_cold_s = time.perf_counter() - started
        n_blocks = 0
        for k in range(POOL_ROUNDS):
            window = (0, 100_000 + 20_000 * k, side, side)
            n_blocks = len(base.top_blocks(*window))
            world = fresh(base)
            t0 = time.perf_counter()
            world.region(*window)
            runs["serial"].append({"wall_s": time.perf_counter() - t0})
            for name in ("1", "2") if k % 2 == 0 else ("2", "1"):
                cpu0, busy0, own0 = _cpu_seconds(pids[name]), _machine_busy_seconds(), _own_cpu()
                t0 = time.perf_counter()
                pools[name].region(spec, *window)
                wall = time.perf_counter() - t0
                workers_cpu = _cpu_seconds(pids[name]) - cpu0
                others = _machine_busy_seconds() - busy0 - workers_cpu - (_own_cpu() - own0)
                runs[name].append(
                    {"wall_s": wall, "workers_cpu_s": workers_cpu, "others_cpu_s": max(0.0, others)}
                )
            # the machine's own ceiling: a new window by one process (the 1-pool), then the same
            # window by both workers of the 2-pool at once, each computing all of it (no
            # splitting, no sharing: separate processes with separate caches)
            copy = (0, 300_000 + 20_000 * k, side, side)
            t0 = time.perf_counter()
            one.submit_window(spec, *copy).result()
            single = time.perf_counter() - t0
            cpu0, busy0, own0 = _cpu_seconds(pids["2"]), _machine_busy_seconds(), _own_cpu()
            t0 = time.perf_counter()
            pair = [two.submit_window(spec, *copy) for _ in range(2)]
            for future in pair:
                future.result()
            wall = time.perf_counter() - t0
            workers_cpu = _cpu_seconds(pids["2"]) - cpu0
            others = _machine_busy_seconds() - busy0 - workers_cpu - (_own_cpu() - own0)
            runs["copies"].append(
                {"single_s": single, "pair_s": wall, "others_cpu_s": max(0.0, others)}
            )
    res.pool_runs = runs
    best = {name: min(r["wall_s"] for r in runs[name]) for name in ("serial", "1", "2")}
    res.serial_blocks_per_s = n_blocks / best["serial"]
    for name in ("1", "2"):
        res.pool_blocks_per_s[name] = n_blocks / best[name]
    res.pool_ratio = res.pool_blocks_per_s["2"] / res.pool_blocks_per_s["1"]
    two_best = min(runs["2"], key=lambda r: r["wall_s"])
    res.pool_busy = two_best["workers_cpu_s"] / (2 * two_best["wall_s"])
    res.others_load = two_best["others_cpu_s"] / two_best["wall_s"]
    calm = min(runs["copies"], key=lambda r: r["others_cpu_s"] / r["pair_s"])
    res.machine_ceiling = 2 * calm["single_s"] / calm["pair_s"]
    log.print(
        f"  {res.case}: top blocks/s serial {res.serial_blocks_per_s:.0f}, "
        f"1 worker {res.pool_blocks_per_s['1']:.0f}, 2 workers {res.pool_blocks_per_s['2']:.0f}"
        f" (workers busy {res.pool_busy:.0%}, other processes {res.others_load:.2f} CPUs;"
        f" two independent copies run {res.machine_ceiling:.2f}x one)"
    )


def _own_cpu() -> float:
    """CPU seconds of this process (all threads)."""
    t = os.times()
    return t.user + t.system


def _worldgen_command() -> list[str]:
    script = Path(sys.executable).parent / "worldgen"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from worldgen.cli import main; sys.exit(main())"]


def bench_memory(case: Case, res: Result, side: int, workers: int, out_dir: Path) -> None:
    """Peak RSS of ``worldgen region ... --width side --height side --out x.png``."""
    png = out_dir / "region.png"
    cmd = [
        *_worldgen_command(), "region", "--tileset", case.name, "--seed", str(SEED),
        "--x", "0", "--y", "0", "--width", str(side), "--height", str(side),
        "--workers", str(workers), "--out", str(png),
    ]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, *cmd], capture_output=True, text=True,
        timeout=SUBPROCESS_TIMEOUT_S, check=False,
    )  # fmt: skip
    try:
        probe = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        probe = {"returncode": -1, "stderr": proc.stderr[-400:]}
    res.memory = {
        "side": side,
        "workers": workers,
        "returncode": probe.get("returncode"),
        "seconds": probe.get("seconds"),
        "peak_rss_mib": probe["maxrss_kib"] / 1024 if "maxrss_kib" in probe else None,
        "png_bytes": png.stat().st_size if png.is_file() else None,
        "stderr": probe.get("stderr") if probe.get("returncode") else None,
    }
    png.unlink(missing_ok=True)


def _f(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def summary(results: Sequence[Result]) -> Table:
    """One row per tileset."""
    table = Table(title="infinite world (ms unless stated; blocks = top-layer blocks)")
    for name in (
        "tileset", "T", "K", "combos", "library s", "detail p50", "detail p95", "far p50",
        "far max", "fallbacks", "agreement (chance)", "serial blk/s", "1 worker blk/s",
        "2 workers blk/s", "2÷1", "2 copies÷1", "2w busy (others)", "region PNG peak MiB (s)",
    ):  # fmt: skip
        table.add_column(name, justify="left" if name == "tileset" else "right")
    for r in results:
        if r.error is not None:
            table.add_row(r.case, *([""] * 16), f"error: {r.error}")
            continue
        mem = r.memory
        mem_text = "—"
        if mem is not None:
            if mem["returncode"] == 0 and mem["peak_rss_mib"] is not None:
                mem_text = f"{mem['peak_rss_mib']:.0f} ({mem['seconds']:.0f} s)"
            else:
                mem_text = f"failed ({mem['returncode']})"
        table.add_row(
            r.case, str(r.variants), str(r.classes), str(r.combos),
            _f(r.library_build_s, ".2f"), _f(r.detail_p50_ms, ".1f"), _f(r.detail_p95_ms, ".1f"),
            _f(r.far_p50_ms, ".1f"), _f(r.far_max_ms, ".1f"),
            f"{r.fallbacks}/{r.blocks}",
            f"{_f(r.agreement, '.3f')} ({_f(r.chance, '.3f')})",
            _f(r.serial_blocks_per_s, ".0f"), _f(r.pool_blocks_per_s.get("1"), ".0f"),
            _f(r.pool_blocks_per_s.get("2"), ".0f"), _f(r.pool_ratio, ".2f"),
            _f(r.machine_ceiling, ".2f"),
            f"{_f(r.pool_busy, '.0%')} ({_f(r.others_load, '.1f')})", mem_text,
        )  # fmt: skip
    return table


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.world", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="10 detail tiles, 256² pool windows, 1024² memory region")  # fmt: skip
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="only this tileset (terrain, shared/pipes, ...)")  # fmt: skip
    parser.add_argument("--tiles", type=int, default=None, help="cold detail tiles (default 40)")
    parser.add_argument("--pool-side", type=int, default=None,
                        help="side in cells of the pool windows (default 512)")  # fmt: skip
    parser.add_argument("--memory-side", type=int, default=None,
                        help="side in cells of the region PNG (default 4096)")  # fmt: skip
    parser.add_argument("--memory-workers", type=int, default=1,
                        help="--workers of the memory run (default 1: one process)")  # fmt: skip
    parser.add_argument("--no-memory", action="store_true", help="skip the region PNG run")
    parser.add_argument("--zooms", action="store_true",
                        help="run bench.zooms instead (tile latency per zoom, far-zoom error); "
                        "--quick and --only are passed on")  # fmt: skip
    parser.add_argument("--quality", action="store_true",
                        help="run bench.quality instead (world vs plain solve; terrain figures); "
                        "--only is passed on")  # fmt: skip
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.zooms:
        passed = (["--quick"] if args.quick else []) + [f"--only={n}" for n in args.only]
        return zooms.main(passed)
    if args.quality:
        return quality.main([f"--only={n}" for n in args.only])
    out = Console() if sys.stdout.isatty() else Console(width=240)
    log = Console(stderr=True)
    started = time.perf_counter()
    tiles = args.tiles or (10 if args.quick else 40)
    pool_side = args.pool_side or (256 if args.quick else 512)
    memory_side = args.memory_side or (1024 if args.quick else 4096)
    info = machine()
    out.print(
        f"[bold]worldgen world benchmark[/bold]  {info['date']}\n"
        f"machine: {info['nproc']} CPUs, {info['cpu']}, load {info['load_average']}  "
        f"python {info['python']}, numpy {info['numpy']}, numba {info['numba']}, "
        f"commit {info['commit']}\n"
        "timings are wall-clock on a shared machine: other work makes them noisy"
    )
    out.print(f"solver.warm_up(): {solver.warm_up() * 1e3:,.0f} ms")
    cases = [c for c in CASES if not args.only or c.label in args.only or c.name in args.only]
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="worldgen-bench-") as tmp:
        # a private library cache, shared with the pool workers and the region subprocess
        os.environ["WORLDGEN_CACHE_DIR"] = str(Path(tmp) / "cache")
        for case in cases:
            res = Result(case.label)
            results.append(res)
            if not case.path.is_file():
                res.error = f"{case.path} is absent"
                continue
            spec = WorldSpec("tileset", case.name, SEED, S=S, V=V, layers=LAYERS)
            try:
                base = bench_tiles(case, spec, res, tiles, log)
                bench_pool(base, spec, res, pool_side, log)
                if not args.no_memory:
                    log.print(f"  {case.label}: region PNG {memory_side}² (subprocess)")
                    bench_memory(case, res, memory_side, args.memory_workers, Path(tmp))
            except InputError as exc:
                res.error = str(exc)
    out.print(summary(results))
    total_s = time.perf_counter() - started
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"world-{datetime.now():%Y%m%d-%H%M%S}.json"
    document = {
        "machine": info,
        "arguments": vars(args),
        "settings": {
            "seed": SEED,
            "S": S,
            "V": V,
            "layers": LAYERS,
            "tiles": tiles,
            "pool_side": pool_side,
            "memory_side": memory_side,
            "far_zooms": FAR_ZOOMS,
        },
        "results": [{**asdict(r), "fallback_rate": r.fallback_rate} for r in results],
        "total_s": total_s,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    out.print(f"total {total_s:.0f} s; results written to {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
