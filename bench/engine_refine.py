"""Refinement throughput for ``bench.engine --refine``: the infinite world's many small solves.

Two figures per block side S (16 and 32), both in one process with the JIT warm:

* **solves/s** (engine only): S x S solves shaped like a world refinement — the one-cell ring
  pinned to a valid grid (windows of one big solve), bias profiles per cell (32 rows), the
  world's budget (4 attempts, 200 repairs) — made through ``solver.solve`` exactly as
  ``world/blocks.py`` calls it. Independent of the world code.
* **top blocks/s** (world): a :class:`~worldgen.world.blocks.World` (2 layers, V=4, seed 42)
  over the shared terrain tileset computes N x N fresh top-layer blocks far from the origin
  (each needs its layer-1 blocks too); best of 3 rounds, each on a fresh world sharing the
  patch library. Includes the world's own work (macro noise, base layer, checks).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from worldgen.engine import solver
from worldgen.engine.rng import mix
from worldgen.engine.tileset import load_tileset

BANDS = 32
ROUNDS = 3


def refinement_solves(tileset: Path, S: int, n: int) -> dict[str, Any]:
    """``n`` refinement-shaped S x S solves: rate (best round), solved share, repairs."""
    cr = solver.compile_rules(load_tileset(tileset, load_images=False).rules())
    t = cr.patterns
    profiles = np.array(
        [[0.25 + (mix(9, b, p) % 1000) / 250.0 for p in range(t)] for b in range(BANDS)]
    )
    profiles.setflags(write=False)  # read-only: the solver memoises it by identity
    big = solver.solve(cr, S * 8, S * 8, seed=3, budget=solver.SolverBudget(max_attempts=50))
    jobs = []
    ys, xs = np.mgrid[0:S, 0:S]
    for j in range(n):
        ox, oy = (j * 7) % (S * 7), (j * 13) % (S * 7)
        pins = big.grid[oy : oy + S, ox : ox + S].copy()
        pins[1:-1, 1:-1] = -1
        bands = ((xs + ox) * 3 + (ys + oy) * 5 + j) % BANDS
        jobs.append((pins, bands.astype(np.int32), mix(42, j)))
    budget = solver.SolverBudget(max_attempts=4, max_backtracks=200)
    rates, solved, repairs = [], 0, 0
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for pins, bands, seed in jobs:
            res = solver.solve(
                cr, S, S, seed=seed, budget=budget,
                constraints=solver.Constraints(pins=pins, bias=(profiles, bands)),
            )  # fmt: skip
            solved += res.solved
            repairs += res.backtracks
        rates.append(n / (time.perf_counter() - started))
    return {
        "S": S,
        "solves": n,
        "solves_per_s": max(rates),
        "rates": rates,
        "solved_share": solved / (ROUNDS * n),
        "repairs_per_solve": repairs / (ROUNDS * n),
        "big_grid_solved": big.solved,
    }


def world_blocks(tileset: Path, S: int, n: int) -> dict[str, Any]:
    """Top-layer blocks per second of a fresh world (best of ``ROUNDS`` windows of n x n)."""
    from worldgen.world.blocks import World  # the world is only needed for this figure

    ts = load_tileset(tileset, load_images=False)
    first = World(ts, 42, S=S)
    first.region(0, 0, 2 * S, 2 * S)
    rates, fallbacks = [], 0
    for r in range(ROUNDS):
        world = World(ts, 42, S=S, library=first.lib)
        keys = [(world.layers, 1000 + bi + 100 * r, bj) for bj in range(n) for bi in range(n)]
        started = time.perf_counter()
        for key in keys:
            world.block(*key)
        rates.append(len(keys) / (time.perf_counter() - started))
        fallbacks += world.fallbacks
    return {"S": S, "blocks": n * n, "blocks_per_s": max(rates), "rates": rates,
            "fallbacks": fallbacks}  # fmt: skip
