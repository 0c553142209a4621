"""Worlds of samples with a ground: the ground row at y = 0, flowers that grow from it."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from worldgen import tilesets
from worldgen.engine.patterns import extract_patterns, load_sample
from worldgen.engine.rules import forbidden_pairs
from worldgen.errors import InputError
from worldgen.world.blocks import World
from worldgen.world.ground import ground_column, ground_constraints, ground_region
from worldgen.world.model import WorldModel, sample_model
from worldgen.world.patches import build_library, library_version, load_or_build


def flowers(ground: bool = True) -> WorldModel:
    sample, palette = load_sample(tilesets.resolve("flowers", "overlapping"))
    return sample_model(extract_patterns(sample, palette, 3, 2, True), "flowers", ground)


def test_ground_column_is_valid_and_ends_in_the_ground() -> None:
    model = flowers()
    column = ground_column(model)
    sky, below, g, rows = int(column[0]), int(column[1]), int(column[2]), column[3:]
    assert int(rows[g]) == model.ground
    assert model.ground not in (sky, below)
    stack = [sky, sky, *rows.tolist(), below, below]  # top to bottom
    for a, b in itertools.pairwise(stack):
        assert model.allowed[1, a, b], (a, b)  # b may sit under a
    for p in set(stack):
        assert model.allowed[2, p, p]  # every row is horizontally uniform
    # the base layer is that column in every column
    base = ground_region(column, -len(rows) - 3, 5, len(rows) + 6)
    assert np.all(base == base[:, :1])
    assert forbidden_pairs(base, model.allowed) == 0


def test_ground_world_grows_from_the_ground(lib_dir: Path) -> None:
    model = flowers()
    lib = load_or_build(model, 8, 2, lib_dir)
    assert lib.ground is not None
    world = World(model, 5, S=8, V=2, layers=2, library=lib)
    x0, y0, w, h = -37, -40, 90, 50
    grid = world.region(x0, y0, w, h)
    assert forbidden_pairs(grid, model.allowed) == 0
    assert world.fallbacks == 0
    ys = np.arange(y0, y0 + h)
    assert np.all(grid[ys == 0] == model.ground)  # the ground row, all along
    assert not np.any(grid[ys != 0] == model.ground)  # and nowhere else
    sky = int(lib.ground[0])
    assert np.all(grid[ys > 0] == int(lib.ground[1]))  # under the ground: the column's below
    # nothing floats: every non-sky cell above the ground is 4-connected to the ground row
    solid = (grid != sky) & (ys < 0)[:, None]
    reached = solid & (ys == -1)[:, None]
    while True:
        grow = reached.copy()
        grow[:-1] |= reached[1:]
        grow[1:] |= reached[:-1]
        grow[:, :-1] |= reached[:, 1:]
        grow[:, 1:] |= reached[:, :-1]
        grow &= solid
        if np.array_equal(grow, reached):
            break
        reached = grow
    assert np.array_equal(reached, solid)
    assert np.any(solid & (ys < -3)[:, None])  # and something does grow above the grass
    # pieces agree with the whole window (order independence)
    other = World(model, 5, S=8, V=2, layers=2, library=lib)
    assert np.array_equal(other.region(x0 + 40, y0 + 30, 20, 20), grid[30:50, 40:60])


def test_ground_constraints_keep_the_ground_and_ban_it_above() -> None:
    below = np.arange(16, dtype=np.int32).reshape(4, 4)
    pins = np.full((4, 4), -1, dtype=np.int32)
    out, bans = ground_constraints(7, 9, -2, below, pins)
    assert np.array_equal(out[2:], below[2:])  # rows y = 0 and y = 1
    assert np.all(out[:2] == -1)
    assert bans is not None
    assert bans[:2, :, 7].all()
    assert not bans[2:].any()
    assert not bans[:, :, :7].any()
    _, none = ground_constraints(7, 9, 0, below, pins)
    assert none is None


def test_ground_is_part_of_the_library_version() -> None:
    with_ground, without = flowers(True), flowers(False)
    assert library_version(with_ground, 8, 2) != library_version(without, 8, 2)
    assert build_library(without, 8, 2).ground is None


def test_a_sample_without_a_uniform_strip_is_refused() -> None:
    checker = np.array([[0, 1], [1, 0]], dtype=np.uint8)
    palette = np.array([[0, 0, 0, 255], [255, 255, 255, 255]], dtype=np.uint8)
    model = sample_model(extract_patterns(checker, palette, 2, 1, True), "checker", True)
    with pytest.raises(InputError, match="no horizontally uniform strip"):
        build_library(model, 8, 2)
