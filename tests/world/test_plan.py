"""Region planning: pieces that tile the window on block boundaries, shared blocks exactly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worldgen.world.blocks import World
from worldgen.world.plan import (
    MAX_PIECE_BLOCKS,
    PIECES_PER_WORKER,
    BlockKey,
    chunk_pieces,
    plan_pieces,
    shared_blocks,
    top_block_count,
)

from .conftest import WorldFactory


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


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    st.integers(-(2**40), 2**40),
    st.integers(-(2**40), 2**40),
    st.integers(1, 300),
    st.integers(1, 300),
    st.sampled_from([4, 8, 16]),
    st.integers(0, 3),
)
def test_top_block_count_is_the_number_of_top_blocks(
    x: int, y: int, w: int, h: int, S: int, layers: int
) -> None:
    offset = (0, S // 2, 0, S // 4)[layers]  # layers 1, 2, 3 at S/2, 0, S/4
    expected = top_blocks((x, y, w, h), S, offset) if layers else 0
    assert top_block_count((x, y, w, h), S, layers) == expected


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    st.sets(st.tuples(st.integers(-6, 6), st.integers(-6, 6)), min_size=1, max_size=20),
    st.sampled_from([8, 16, 32]),
    st.booleans(),
    st.integers(1, 8),
)
def test_chunk_pieces_cover_the_chunks_once_on_block_boundaries(
    chunks: set[tuple[int, int]], S: int, odd: bool, parts: int
) -> None:
    side = 64
    offset = S // 2 if odd else 0
    pieces = chunk_pieces(sorted(chunks), side, S, offset, parts)
    low = -6 * side  # every chunk index is in -6..6: count cover on that square of cells
    covered = np.zeros((13 * side, 13 * side), dtype=np.int32)
    for px, py, pw, ph in pieces:
        assert pw >= 1
        assert ph >= 1
        assert low <= px
        assert px + pw <= low + 13 * side
        assert low <= py
        assert py + ph <= low + 13 * side
        covered[py - low : py - low + ph, px - low : px - low + pw] += 1
        # pieces are whole chunks side by side, or bands of one chunk cut between block rows
        assert px % side == 0
        assert pw % side == 0
        if ph != side:
            assert pw == side
            for edge in (py, py + ph):
                assert edge % side == 0 or (edge - offset) % S == 0
    expected = np.zeros_like(covered)
    for cx, cy in chunks:
        y0, x0 = cy * side - low, cx * side - low
        expected[y0 : y0 + side, x0 : x0 + side] = 1
    assert np.array_equal(covered, expected)  # each chunk's cells exactly once, nothing else
    # enough pieces for the workers: whole chunks first, then a lone chunk cut into bands
    assert len(pieces) >= min(parts, max(len(chunks), 2))


@pytest.mark.parametrize(("parts", "expected"), [(1, 1), (2, 2), (3, 3), (4, 4), (6, 6)])
def test_a_block_of_chunks_is_cut_into_as_many_bands_as_parts(parts: int, expected: int) -> None:
    pieces = chunk_pieces(
        [(cx, cy) for cx in range(-2, 2) for cy in range(-2, 2)], 64, 16, 0, parts
    )
    assert len(pieces) == expected
    if parts <= 4:  # whole rows of chunks stacked into bands, as equal as can be
        assert all((p[0], p[2]) == (-128, 256) for p in pieces)
        assert max(p[3] for p in pieces) - min(p[3] for p in pieces) <= 64
