"""Compute a window's top-layer blocks in worker processes (spawn), byte-identical to serial.

Each worker rebuilds the world from its :class:`WorldConfig` (the patch library comes from the
on-disk cache the parent filled) and computes whole rows of blocks; the parent inserts the results
into its LRU and assembles the window. Blocks are pure functions, so duplicated dependency work in
two workers yields the same bytes.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import numpy.typing as npt

from worldgen.engine.tileset import load_tileset
from worldgen.errors import InputError
from worldgen.world.blocks import BlockKey, World, WorldConfig
from worldgen.world.patches import load_or_build

_WORKER: World | None = None


def world_from_config(config: WorldConfig) -> World:
    """Rebuild the world ``config`` describes."""
    from pathlib import Path

    tileset = load_tileset(config.tileset_path, config.subset)
    directory = Path(config.cache_dir) if config.cache_dir else None
    lib = load_or_build(tileset, config.S, config.V, directory)
    return World(
        tileset, config.seed, S=config.S, V=config.V, layers=config.layers, library=lib,
        config=config,
    )  # fmt: skip


def _init(config: WorldConfig) -> None:
    global _WORKER
    _WORKER = world_from_config(config)


def _compute(keys: list[BlockKey]) -> list[npt.NDArray[np.int32]]:
    assert _WORKER is not None
    return [_WORKER.block(*k).copy() for k in keys]


def region_parallel(
    world: World, x: int, y: int, w: int, h: int, workers: int
) -> npt.NDArray[np.int32]:
    """``world.region(x, y, w, h)`` with the top-layer blocks computed by ``workers`` processes."""
    if world.config is None:
        raise InputError("parallel generation needs a world opened from a tileset file")
    keys = world.top_blocks(x, y, w, h)
    rows: dict[int, list[BlockKey]] = {}
    for k in keys:
        rows.setdefault(k[2], []).append(k)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init,
                             initargs=(world.config,)) as pool:  # fmt: skip
        chunks = list(rows.values())
        for chunk, grids in zip(chunks, pool.map(_compute, chunks), strict=True):
            for k, g in zip(chunk, grids, strict=True):
                world.put_block(k, g)
    return world.region(x, y, w, h)
