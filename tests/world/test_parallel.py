"""The worker pool: same bytes as serial, pieces that tile the window, reuse across worlds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worldgen.errors import InputError
from worldgen.world.blocks import BlockKey, World
from worldgen.world.parallel import (
    MAX_PIECE_BLOCKS,
    PIECES_PER_WORKER,
    WorkerPool,
    plan_pieces,
    region_parallel,
    shared_blocks,
)
from worldgen.world.render import render_tile
from worldgen.world.spec import WorldSpec, build_world

from .conftest import SHARED_TILESETS, WorldFactory


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    with WorkerPool(2) as p:
        yield p


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    st.integers(-(2**40), 2**40),
    st.integers(-(2**40), 2**40),
    st.integers(1, 700),
    st.integers(1, 700),
    st.sampled_from([4, 8, 16, 32]),
    st.booleans(),
    st.integers(1, 9),
)
def test_pieces_tile_the_window_on_block_boundaries(
    x: int, y: int, w: int, h: int, S: int, odd: bool, workers: int
) -> None:
    offset = S // 2 if odd else 0
    pieces = plan_pieces((x, y, w, h), S, offset, workers)
    covered = np.zeros((h, w), dtype=np.int32)
    for px, py, pw, ph in pieces:
        assert pw >= 1
        assert ph >= 1
        covered[py - y : py - y + ph, px - x : px - x + pw] += 1
        # every inner edge of a piece is a block boundary: no block is split between pieces
        edges = ((px, x, x + w), (px + pw, x, x + w), (py, y, y + h), (py + ph, y, y + h))
        for edge, lo, hi in edges:
            assert edge in (lo, hi) or (edge - offset) % S == 0
    assert bool((covered == 1).all())
    rows = (y + h - 1 - offset) // S - (y - offset) // S + 1
    cols = (x + w - 1 - offset) // S - (x - offset) // S + 1
    most = max(PIECES_PER_WORKER * workers, -(-rows * cols // MAX_PIECE_BLOCKS))
    assert len(pieces) <= most + workers
    if rows >= workers:  # enough rows: bands only, at least one per worker
        assert len(pieces) >= workers
        assert all(p[2] == w for p in pieces)
        assert all(top_blocks(p, S, offset) <= max(MAX_PIECE_BLOCKS, cols) for p in pieces)


def top_blocks(window: tuple[int, int, int, int], S: int, offset: int) -> int:
    x, y, w, h = window
    rows = (y + h - 1 - offset) // S - (y - offset) // S + 1
    cols = (x + w - 1 - offset) // S - (x - offset) // S + 1
    return rows * cols


def reads(world: World, window: tuple[int, int, int, int]) -> set[BlockKey]:
    """Every refinement block computing ``window`` reads, from ``World.dependencies``."""
    todo = list(world.top_blocks(*window))
    seen: set[BlockKey] = set()
    while todo:
        key = todo.pop()
        if key in seen:
            continue
        seen.add(key)
        if key[0] > 1:
            todo.extend(world.dependencies(*key))
    return seen


@settings(
    max_examples=60, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)  # fmt: skip
@given(
    st.integers(-300, 300),
    st.integers(-300, 300),
    st.integers(1, 200),
    st.integers(1, 200),
    st.integers(1, 3),
    st.integers(1, 4),
)
def test_shared_blocks_are_exactly_those_two_pieces_read(
    make_world: WorldFactory, x: int, y: int, w: int, h: int, layers: int, workers: int
) -> None:
    S = 8
    world = make_world(S=S, layers=layers)  # only its block index arithmetic is used
    pieces = plan_pieces((x, y, w, h), S, world.offset(layers), workers)
    groups, needs = shared_blocks(pieces, S, layers)
    per_piece = [{k for k in reads(world, p) if k[0] < layers} for p in pieces]
    readers: dict[BlockKey, set[int]] = {}
    for index, keys in enumerate(per_piece):
        for key in keys:
            readers.setdefault(key, set()).add(index)
    expected = {key: who for key, who in readers.items() if len(who) > 1}
    got: dict[BlockKey, set[int]] = {}
    for g, members in enumerate(groups):
        who = {p for p, n in enumerate(needs) if g in n}
        assert members == sorted(members, key=lambda k: (k[0], k[2], k[1]))
        for key in members:
            assert key not in got
            got[key] = who
    assert got == expected


def test_pool_matches_serial_and_is_reused(pool: WorkerPool, make_world: WorldFactory) -> None:
    # unaligned (several bands sharing lower-layer rows), few rows (columns too), one cell
    windows = [(-37, -21, 90, 70), (5, 3, 200, 9), (-8, -8, 1, 1)]
    for seed, layers in ((5, 2), (6, 1), (5, 3)):
        for window in windows:
            serial = make_world(seed=seed, layers=layers).region(*window)
            got = pool.region(make_world(seed=seed, layers=layers), *window)
            assert got.dtype == np.int32
            assert np.array_equal(serial, got), (seed, layers, window)
    assert len(pool.start()) == 2  # two distinct processes answer


def test_progress_counts_every_top_block(pool: WorkerPool, make_world: WorldFactory) -> None:
    world = make_world(seed=9)
    seen: list[int] = []
    pool.region(world, 3, -50, 130, 140, seen.append)
    assert sum(seen) == len(world.top_blocks(3, -50, 130, 140))
    assert len(seen) > 1


def test_submit_blocks_tiles_and_windows(pool: WorkerPool, make_world: WorldFactory) -> None:
    world = make_world(seed=11, S=16)
    keys = [(2, 0, 0), (1, -3, 4), (2, 5, -1)]
    got = pool.submit_blocks(world, keys).result()
    assert got.shape == (3, 16, 16)
    assert got.dtype == np.int32
    fresh = make_world(seed=11, S=16)
    for k, key in enumerate(keys):
        assert np.array_equal(got[k], fresh.block(*key))
    assert pool.submit_tile(world, 2, -1, 3).result() == render_tile(fresh, 2, -1, 3)
    assert pool.submit_tile(world, -4, 0, 0).result() == render_tile(fresh, -4, 0, 0)
    window = pool.submit_window(world, -3, -3, 20, 21).result()
    assert np.array_equal(window, fresh.region(-3, -3, 20, 21))
    with pytest.raises(InputError, match="layers"):
        pool.submit_blocks(world, [(3, 0, 0)])


def test_worker_errors_reach_the_caller(pool: WorkerPool, make_world: WorldFactory) -> None:
    with pytest.raises(InputError, match="outside the world"):
        pool.submit_window(make_world(), 2**60, 0, 4, 4).result()
    with pytest.raises(InputError, match="zoom"):
        pool.submit_tile(make_world(), 9, 0, 0).result()


def test_one_shot_parallel_region_matches_serial(make_world: WorldFactory) -> None:
    serial = make_world(seed=5).region(-20, -20, 48, 40)
    assert np.array_equal(region_parallel(make_world(seed=5), -20, -20, 48, 40, workers=1), serial)


def test_spec_worlds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WORLDGEN_CACHE_DIR", str(tmp_path))
    spec = WorldSpec("tileset", "pipes", seed=3, S=8, V=2)
    serial = build_world(spec).region(-10, 4, 40, 30)
    with WorkerPool(1) as pool:
        assert np.array_equal(pool.region(spec, -10, 4, 40, 30), serial)


def test_bad_use_is_refused(make_world: WorldFactory) -> None:
    with pytest.raises(InputError, match="workers"):
        WorkerPool(0)
    world = make_world()
    bare = World(world.model, 1, S=8, V=3, library=world.lib)
    p = WorkerPool(1)
    with pytest.raises(InputError, match="WorldConfig or WorldSpec"):
        p.region(bare, 0, 0, 4, 4)
    p.close()
    with pytest.raises(RuntimeError, match="closed"):
        p.submit_window(world, 0, 0, 4, 4)


@pytest.mark.skipif(not SHARED_TILESETS[1].is_file(), reason="shared tilesets are absent")
def test_shared_tileset_in_pool(pool: WorkerPool, make_world: WorldFactory) -> None:
    world = make_world(SHARED_TILESETS[1], seed=21)
    serial = make_world(SHARED_TILESETS[1], seed=21).region(0, 0, 64, 64)
    assert np.array_equal(pool.region(world, 0, 0, 64, 64), serial)
