"""Infinite-world benchmark: prints numbers, never asserts.

Per tileset: library build time (cold, private cache dir), cold detail-tile time p50/p95, fallback
rate, macro/tile class agreement against chance; then blocks/s with 1 and 2 spawn workers and the
peak traced memory of a large region PNG. Run: ``.venv/bin/python bench/world.py [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from worldgen.engine.solver import warm_up
from worldgen.engine.tileset import load_tileset
from worldgen.world.blocks import World, WorldConfig
from worldgen.world.parallel import region_parallel
from worldgen.world.patches import load_or_build
from worldgen.world.render import Palette, png_bytes, region_rgb, render_tile

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "samples" / "tilesets"
TILESETS = [
    ROOT / "src" / "worldgen" / "tilesets" / "terrain" / "terrain.xml",
    *(SHARED / n / f"{n}.xml" for n in ("terrain", "pipes", "dungeon")),
]


def bench_tileset(path: Path, cache: Path, tiles: int) -> None:
    ts = load_tileset(path)
    t0 = time.perf_counter()
    lib = load_or_build(ts, 16, 4, cache)
    build = time.perf_counter() - t0
    config = WorldConfig(str(path), None, 42, 16, 4, 2, str(cache))
    world = World(ts, 42, S=16, V=4, layers=2, library=lib, config=config)
    pal = Palette(world)
    times = []
    for k in range(tiles):
        t0 = time.perf_counter()
        render_tile(world, 2, 1000 + 7 * k, -300 + 3 * k, pal)  # far apart: cold every time
        times.append(time.perf_counter() - t0)
    blocks = world.fallbacks + world.solved_blocks
    grid = world.region(-256, -256, 256, 256)
    tiles_cls = world.variant_class[grid]
    macro_cls = world.lattice_classes_for(-256, -256, 256, 256)
    agree = float((tiles_cls == macro_cls).mean())
    k = world.K
    pt = np.bincount(np.maximum(tiles_cls, 0).ravel(), minlength=k) / tiles_cls.size
    pm = np.bincount(macro_cls.ravel(), minlength=k) / macro_cls.size
    chance = float((pt * pm).sum())
    q = statistics.quantiles(times, n=20)
    total = world.fallbacks + world.solved_blocks
    print(
        f"{path.parent.parent.name}/{path.stem:8s} T={ts.size:3d} K={k} combos={len(lib.combos):3d}"
        f" build={build:6.2f}s tile p50={statistics.median(times) * 1e3:6.1f}ms"
        f" p95={q[18] * 1e3:6.1f}ms fallbacks={world.fallbacks}/{total}"
        f" (tiles: {blocks} blocks) agreement={agree:.3f} chance={chance:.3f}"
    )


def bench_workers(path: Path, cache: Path, side: int) -> None:
    ts = load_tileset(path)
    lib = load_or_build(ts, 16, 4, cache)
    config = WorldConfig(str(path), None, 7, 16, 4, 2, str(cache))
    for workers in (1, 2):
        world = World(ts, 7, S=16, V=4, layers=2, library=lib, config=config)
        t0 = time.perf_counter()
        if workers == 1:
            world.region(0, 0, side, side)
        else:
            region_parallel(world, 0, 0, side, side, workers)
        dt = time.perf_counter() - t0
        n = len(world.top_blocks(0, 0, side, side))
        print(f"workers={workers}: {n} top blocks in {dt:.2f}s = {n / dt:.1f} blocks/s "
              "(incl. process start-up and JIT load)")  # fmt: skip
    world = World(ts, 7, S=16, V=4, layers=2, library=lib, config=config)
    tracemalloc.start()
    t0 = time.perf_counter()
    png = png_bytes(region_rgb(world, world.region(-side, -side, 2 * side, 2 * side), 2048))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    dt = time.perf_counter() - t0
    print(f"region PNG {2 * side}x{2 * side} cells: {len(png)} bytes, {dt:.1f}s, "
          f"peak traced memory {peak / 2**20:.1f} MiB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer tiles, smaller regions")
    args = parser.parse_args()
    print(f"JIT warm-up {warm_up():.2f}s")
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        for path in TILESETS:
            if path.is_file():
                bench_tileset(path, cache, 10 if args.quick else 40)
        bench_workers(TILESETS[0], cache, 128 if args.quick else 256)


if __name__ == "__main__":
    main()
