"""Map tiles at every zoom: cold tile latency through the worker pool, and how well far zooms
predict the near view. Prints figures and writes them as JSON; never asserts on time.

Run from the repository root (also reachable as ``python -m bench.world --zooms``)::

    .venv/bin/python -m bench.zooms [--quick] [--only NAME] [--tiles N] [--pixels N] [--workers 2]

Per bundled model (tilesets and samples, seed 42, the web's default spec; ``--S`` and
``--layers`` override the block size and layer count):

* **cold tile latency** per zoom (2 … -10): ``--tiles`` tiles per zoom, requested one at a time
  through a :class:`~worldgen.world.pool.WorkerPool` of ``--workers`` processes (JIT warm,
  library and far-zoom summary built in every worker beforehand by ``pool.prepare``), each at a
  hashed place far from every other, so none of its blocks or chunks is cached: p50, p95, max;
  and the busiest worker's CPU time per tile (``/proc``), the wall time an idle machine would see;
* **reuse**: after one cold z = -2 tile, the four z = -1 and sixteen z = 0 tiles under it (their
  chunks are kept by the pool: drawn without solving): p50 and max;
* **far-zoom colour error** per zoom (-3 … -6): at ``--pixels`` hashed far pixels per zoom, the
  mean absolute RGB difference between the pixel the far tile shows and the mean colour of the
  final cells it covers (exact picture means); beside it the same error for the world's flat
  mean colour (of the cells the summary learnt from: what a summary without structure scores).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.table import Table

from bench.engine import machine
from worldgen import tilesets
from worldgen.engine import solver
from worldgen.engine.rng import mix
from worldgen.world.api import build_world
from worldgen.world.blocks import World
from worldgen.world.pool import WorkerPool
from worldgen.world.render import cell_relief, cells_per_tile, palette_for
from worldgen.world.spec import WorldSpec
from worldgen.world.summary import far_rgb, summary_for

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SEED = 42
ZOOMS = (2, 1, 0, -1, -2, -3, -4, -6, -8, -10)
ERROR_ZOOMS = (-3, -4, -5, -6)
SPREAD = 2**24
"""Cold tiles and sampled pixels lie within ±SPREAD cells of the origin."""
TARGETS = {"near": 150.0, "middle": 600.0, "far": 50.0}
"""Cold tile p95 targets (ms): z >= 0, z = -1 and -2, z <= -3."""


@dataclass
class ZoomResult:
    """Figures of one model (times in ms)."""

    model: str
    prepare_s: float = 0.0
    latency: dict[int, list[float]] = field(default_factory=dict)
    worker_cpu: dict[int, list[float]] = field(default_factory=dict)
    reuse: dict[int, list[float]] = field(default_factory=dict)
    far_error: dict[int, float] = field(default_factory=dict)
    flat_error: dict[int, float] = field(default_factory=dict)
    error: str | None = None


def _spread(*key: int) -> int:
    return mix(SEED, *key) % (2 * SPREAD) - SPREAD


def _cpu(pids: Sequence[int]) -> dict[int, float]:
    """User + system CPU seconds of each process so far (Linux ``/proc``; empty elsewhere)."""
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def bench_latency(pool: WorkerPool, spec: WorldSpec, res: ZoomResult, tiles: int) -> None:
    """Cold tiles one at a time per zoom, then the tiles under one cold z = -2 tile.

    Beside the wall time, the busiest worker's CPU time per tile: what the tile would take on an
    otherwise idle machine (a shared machine's load stretches the wall time, not this)."""
    for z in ZOOMS:
        n = cells_per_tile(z)
        times, cpu = [], []
        for k in range(tiles):
            x, y = _spread(z, k, 0) // n, _spread(z, k, 1) // n
            pids = pool.processes()
            before = _cpu(pids)
            started = time.perf_counter()
            pool.submit_tile(spec, z, x, y).result()
            times.append((time.perf_counter() - started) * 1e3)
            after = _cpu(pids)
            cpu.append(max((after[p] - before.get(p, after[p]) for p in after), default=0) * 1e3)
        res.latency[z] = times
        res.worker_cpu[z] = cpu
    n = cells_per_tile(-2)
    x, y = _spread(-2, 99, 0) // n, _spread(-2, 99, 1) // n
    started = time.perf_counter()
    pool.submit_tile(spec, -2, x, y).result()
    res.reuse[-2] = [(time.perf_counter() - started) * 1e3]
    for z, side in ((-1, 2), (0, 4)):
        times = []
        for j in range(side):
            for i in range(side):
                started = time.perf_counter()
                pool.submit_tile(spec, z, x * side + i, y * side + j).result()
                times.append((time.perf_counter() - started) * 1e3)
        res.reuse[z] = times


def lit_means(
    world: World, means: npt.NDArray[np.float64], x: int, y: int, side: int
) -> npt.NDArray[np.float64]:
    """``(side, side, 3)`` mean colours of the final cells of a window as the map shows them:
    each picture's mean ``means[variant]``, lit by the cell's relief (``macro.lit`` in floats)."""
    colour = means[world.region(x, y, side, side)]
    shade = cell_relief(world, x, y, side, side)
    if shade is None:
        return colour
    f = shade[:, :, None].astype(np.float64)
    gain, lift = np.minimum(f, 256.0), np.maximum(f - 256.0, 0.0)
    out: npt.NDArray[np.float64] = (colour * (gain - lift) + 255.0 * lift) / 256.0
    return out


def bench_far_error(world: World, res: ZoomResult, pixels: int) -> None:
    """Far pixel vs the exact mean colour of the (lit) final cells it covers, per far zoom."""
    means = palette_for(world).level(16).reshape(world.model.size, -1, 3).mean(axis=1)
    seen = summary_for(world).counts.sum(axis=0)  # final cells per variant while learning
    flat = (seen[:, None] * means).sum(axis=0) / seen.sum()
    for z in ERROR_ZOOMS:
        per_px = cells_per_tile(z) // 256
        far, plain = [], []
        for k in range(pixels):
            x = _spread(z, k, 2) // per_px * per_px
            y = _spread(z, k, 3) // per_px * per_px
            actual = lit_means(world, means, x, y, per_px).reshape(-1, 3).mean(axis=0)
            shown = far_rgb(world, x, y, 1, per_px)[0, 0].astype(np.float64)
            far.append(float(np.abs(shown - actual).mean()))
            plain.append(float(np.abs(flat - actual).mean()))
        res.far_error[z] = statistics.fmean(far)
        res.flat_error[z] = statistics.fmean(plain)


def _pct(values: Sequence[float], q: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, -(-q * len(ordered) // 100) - 1))]


def latency_table(results: Sequence[ZoomResult], workers: int) -> Table:
    table = Table(title=f"cold tile ms through a pool of {workers} workers: p50 / p95 (max)")
    table.add_column("model")
    for z in ZOOMS:
        table.add_column(f"z={z}", justify="right")
    table.add_column("after z=-2: z=-1, z=0 p50 (max)", justify="right")
    for r in results:
        if r.error is not None:
            table.add_row(r.model, *([""] * len(ZOOMS)), f"error: {r.error}")
            continue
        cells = [
            f"{statistics.median(t):.0f} / {_pct(t, 95):.0f} ({max(t):.0f})"
            for t in (r.latency[z] for z in ZOOMS)
        ]
        reuse = ", ".join(
            f"{statistics.median(r.reuse[z]):.0f} ({max(r.reuse[z]):.0f})" for z in (-1, 0)
        )
        table.add_row(r.model, *cells, reuse)
    return table


def cpu_table(results: Sequence[ZoomResult]) -> Table:
    table = Table(title="busiest worker's CPU ms per cold tile (≈ wall time when idle): p50 / p95")
    table.add_column("model")
    for z in ZOOMS:
        table.add_column(f"z={z}", justify="right")
    for r in results:
        if r.error is None and r.worker_cpu:
            cells = [
                f"{statistics.median(t):.0f} / {_pct(t, 95):.0f}"
                for t in (r.worker_cpu[z] for z in ZOOMS)
            ]
            table.add_row(r.model, *cells)
    return table


def error_table(results: Sequence[ZoomResult]) -> Table:
    table = Table(title="far-zoom colour error: mean |RGB| difference, summary (flat mean colour)")
    table.add_column("model")
    for z in ERROR_ZOOMS:
        table.add_column(f"z={z}", justify="right")
    table.add_column("mean -3..-6", justify="right")
    for r in results:
        if r.error is not None or not r.far_error:
            continue
        cells = [f"{r.far_error[z]:.1f} ({r.flat_error[z]:.1f})" for z in ERROR_ZOOMS]
        mean = statistics.fmean(r.far_error.values())
        flat = statistics.fmean(r.flat_error.values())
        table.add_row(r.model, *cells, f"{mean:.1f} ({flat:.1f})")
    return table


def target_lines(results: Sequence[ZoomResult]) -> list[str]:
    """Worst p95 per zoom group against the targets."""
    groups = {"near": (2, 1, 0), "middle": (-1, -2), "far": (-3, -4, -6, -8, -10)}
    lines = []
    for name, zooms in groups.items():
        worst = max(
            (_pct(r.latency[z], 95), r.model, z) for r in results if r.error is None for z in zooms
        )
        met = "met" if worst[0] <= TARGETS[name] else "NOT met"
        lines.append(
            f"target {name} (z in {zooms}) p95 <= {TARGETS[name]:.0f} ms: {met}; worst "
            f"{worst[0]:.0f} ms ({worst[1]}, z={worst[2]})"
        )
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.zooms", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="4 tiles per zoom, 16 pixels")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="only this bundled model (repeatable)")  # fmt: skip
    parser.add_argument("--tiles", type=int, default=None, help="cold tiles per zoom (10)")
    parser.add_argument("--pixels", type=int, default=None, help="far pixels per zoom (48)")
    parser.add_argument("--workers", type=int, default=2, help="pool processes (2)")
    parser.add_argument("--no-error", action="store_true", help="skip the far-zoom error")
    parser.add_argument("--S", type=int, default=None, help="block size (the spec's default)")
    parser.add_argument("--layers", type=int, default=None,
                        help="refinement layers (the spec's default)")  # fmt: skip
    return parser.parse_args(argv)


def run(args: argparse.Namespace, out: Console, log: Console) -> list[ZoomResult]:
    """Every selected model's figures (the caller prints the header)."""
    tiles = args.tiles or (4 if args.quick else 10)
    pixels = args.pixels or (16 if args.quick else 48)
    entries = [e for e in tilesets.catalog() if not args.only or e.name in args.only]
    results: list[ZoomResult] = []
    with WorkerPool(args.workers) as pool:
        pool.start()
        for entry in entries:
            spec = WorldSpec.of_kind(entry.kind, entry.name, SEED)
            if args.S is not None:
                spec = replace(spec, S=args.S)
            if args.layers is not None:
                spec = replace(spec, layers=args.layers)
            res = ZoomResult(entry.name)
            results.append(res)
            log.print(f"  {entry.name}: library, summary, workers")
            started = time.perf_counter()
            world = build_world(spec)
            summary_for(world)  # learnt here once; the workers read it from the disk cache
            pool.prepare(spec)
            res.prepare_s = time.perf_counter() - started
            log.print(f"  {entry.name}: cold tiles")
            bench_latency(pool, spec, res, tiles)
            if not args.no_error:
                log.print(f"  {entry.name}: far-zoom error")
                bench_far_error(world, res, pixels)
    out.print(latency_table(results, args.workers))
    out.print(cpu_table(results))
    for line in target_lines(results):
        out.print(line)
    if not args.no_error:
        out.print(error_table(results))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = Console() if sys.stdout.isatty() else Console(width=240)
    log = Console(stderr=True)
    info = machine()
    out.print(
        f"[bold]worldgen zoom benchmark[/bold]  {info['date']}\n"
        f"machine: {info['nproc']} CPUs, {info['cpu']}, load {info['load_average']}  "
        f"python {info['python']}, numpy {info['numpy']}, numba {info['numba']}, "
        f"commit {info['commit']}\n"
        "timings are wall-clock on a shared machine: other work makes them noisy"
    )
    out.print(f"solver.warm_up(): {solver.warm_up() * 1e3:,.0f} ms")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="worldgen-bench-") as tmp:
        # a private cache (libraries, summaries), shared with the pool's workers
        os.environ["WORLDGEN_CACHE_DIR"] = str(Path(tmp) / "cache")
        results = run(args, out, log)
    total_s = time.perf_counter() - started
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"zooms-{datetime.now():%Y%m%d-%H%M%S}.json"
    document: dict[str, Any] = {
        "machine": info,
        "arguments": vars(args),
        "settings": {"seed": SEED, "zooms": ZOOMS, "error_zooms": ERROR_ZOOMS, "spread": SPREAD},
        "results": [asdict(r) for r in results],
        "total_s": total_s,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    out.print(f"total {total_s:.0f} s; results written to {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
