"""Tests of the model-level API: ground constraints, bounded output, tiled JSON, caching."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.reference.naive_wfc import is_valid_tiling, windows_are_patterns
from worldgen import tilesets
from worldgen.engine.generate import (
    OverlappingJob,
    build_overlapping,
    compiled_rules,
    generate_overlapping,
    generate_tiled,
    grid_is_valid,
    ground_constraints,
    overlapping_json,
    tiled_json,
)
from worldgen.engine.patterns import (
    OverlappingModel,
    colour_indices,
    extract_patterns,
    load_sample,
)
from worldgen.engine.tileset import Tileset, load_tileset
from worldgen.errors import InputError


@pytest.fixture(scope="module")
def flowers() -> OverlappingModel:
    """The bundled flowers sample as its catalog entry says: N=3, symmetry 2, ground."""
    path = tilesets.resolve("flowers", "overlapping")
    return build_overlapping(OverlappingJob(path, N=3, symmetry=2, ground=True))


@pytest.fixture(scope="module")
def roads() -> Tileset:
    return load_tileset(tilesets.resolve("roads", "tiled"))


def test_build_overlapping_matches_extract_patterns() -> None:
    path = tilesets.resolve("flowers", "overlapping")
    model = build_overlapping(OverlappingJob(path, N=2, symmetry=4, periodic_input=False))
    sample, palette = load_sample(path)
    direct = extract_patterns(sample, palette, 2, 4, periodic_input=False)
    assert np.array_equal(model.patterns, direct.patterns)
    assert np.array_equal(model.weights, direct.weights)


def test_ground_constraints_pin_bottom_row_and_ban_elsewhere(flowers: OverlappingModel) -> None:
    c = ground_constraints(flowers, 5, 4)
    g = flowers.ground_pattern
    assert c.pins is not None
    assert c.bans is not None
    assert c.pins.shape == (4, 5)
    assert c.bans.shape == (4, 5, flowers.size)
    assert np.all(c.pins[-1] == g)
    assert np.all(c.pins[:-1] == -1)
    assert np.all(c.bans[:-1, :, g])
    assert not c.bans[-1].any()
    assert c.bans.sum() == 3 * 5


def test_ground_constraints_reject_empty_wave(flowers: OverlappingModel) -> None:
    with pytest.raises(InputError, match="at least 1x1"):
        ground_constraints(flowers, 0, 3)


@pytest.mark.parametrize("periodic", [False, True])
def test_ground_pattern_only_on_the_bottom_row(flowers: OverlappingModel, periodic: bool) -> None:
    gen = generate_overlapping(flowers, 32, 20, periodic=periodic, seed=5, ground=True)
    assert gen.solved
    grid = gen.result.grid
    g = flowers.ground_pattern
    assert np.all(grid[-1] == g)
    assert not np.any(grid[:-1] == g)


@pytest.mark.parametrize(("width", "height"), [(20, 12), (3, 3), (9, 30)])
def test_bounded_overlapping_output(flowers: OverlappingModel, width: int, height: int) -> None:
    gen = generate_overlapping(flowers, width, height, periodic=False, seed=11)
    assert gen.solved
    N = flowers.N
    assert gen.result.grid.shape == (height - N + 1, width - N + 1)
    assert gen.image.shape == (height, width, 4)
    assert gen.image.dtype == np.uint8
    indices = colour_indices(flowers, gen.result.grid, width, height, periodic=False)
    assert indices.min() >= 0
    assert windows_are_patterns(indices, flowers.patterns, periodic=False)
    assert np.array_equal(gen.image, flowers.palette[indices])


def test_periodic_overlapping_output_wraps(flowers: OverlappingModel) -> None:
    gen = generate_overlapping(flowers, 16, 12, periodic=True, seed=2)
    assert gen.solved
    assert gen.result.grid.shape == (12, 16)
    indices = colour_indices(flowers, gen.result.grid, 16, 12, periodic=True)
    assert windows_are_patterns(indices, flowers.patterns, periodic=True)


def test_overlapping_too_small_for_bounded_output(flowers: OverlappingModel) -> None:
    with pytest.raises(InputError, match="cannot hold"):
        generate_overlapping(flowers, 2, 8, periodic=False, seed=0)


def test_same_seed_same_output(flowers: OverlappingModel) -> None:
    a = generate_overlapping(flowers, 20, 20, periodic=False, seed=9, heuristic="mrv")
    b = generate_overlapping(flowers, 20, 20, periodic=False, seed=9, heuristic="mrv")
    assert np.array_equal(a.result.grid, b.result.grid)


def test_generate_tiled_is_valid_and_drawn(roads: Tileset) -> None:
    gen = generate_tiled(roads, 10, 7, periodic=True, seed=3, heuristic="scanline")
    assert gen.solved
    assert gen.kind == "tiled"
    assert gen.patterns == roads.size
    assert is_valid_tiling(gen.result.grid, roads.allowed, periodic=True)
    s = roads.tile_size
    assert gen.image.shape == (7 * s, 10 * s, 4)
    stats = gen.stats()
    assert stats["status"] == "solved"
    assert stats["reason"] is None
    assert (stats["width"], stats["height"]) == (10, 7)
    json.dumps(stats)


def test_tiled_json_round_trip(roads: Tileset) -> None:
    gen = generate_tiled(roads, 9, 5, periodic=False, seed=1)
    doc = json.loads(json.dumps(tiled_json(roads, gen.result.grid)))
    assert set(doc) == {"width", "height", "tiles", "cells"}
    assert (doc["width"], doc["height"]) == (9, 5)
    assert doc["tiles"] == list(roads.variant_names)
    assert all(len(t.split(" ")) == 2 and t.split(" ")[1].isdigit() for t in doc["tiles"])
    back = np.array(doc["cells"], dtype=np.int32).reshape(5, 9)
    assert np.array_equal(back, gen.result.grid)
    reloaded = load_tileset(tilesets.resolve("roads", "tiled"), load_images=False)
    ids = [reloaded.variant_id(doc["tiles"][c]) for c in doc["cells"]]
    assert ids == doc["cells"]


def test_tiled_json_keeps_undetermined_cells(roads: Tileset) -> None:
    grid = np.array([[0, -1], [-1, roads.size - 1]], dtype=np.int32)
    doc = tiled_json(roads, grid)
    assert doc["cells"] == [0, -1, -1, roads.size - 1]
    assert len(doc["tiles"]) == roads.size


@pytest.mark.parametrize(
    "grid", [np.array([[0, 99]], dtype=np.int32), np.array([0, 1]), np.array([[0.5]])]
)
def test_tiled_json_rejects_bad_grids(roads: Tileset, grid: npt.NDArray[Any]) -> None:
    with pytest.raises(InputError):
        tiled_json(roads, grid)


def test_overlapping_json(flowers: OverlappingModel) -> None:
    gen = generate_overlapping(flowers, 12, 10, periodic=False, seed=4)
    doc = overlapping_json(flowers, gen.result.grid, 12, 10, periodic=False)
    assert (doc["width"], doc["height"]) == (12, 10)
    assert len(doc["cells"]) == 120
    assert len(doc["colors"]) == flowers.palette.shape[0]
    assert all(c.startswith("#") and len(c) in (7, 9) for c in doc["colors"])
    r, g, b, _ = (int(v) for v in flowers.palette[doc["cells"][0]])
    assert doc["colors"][doc["cells"][0]][:7] == f"#{r:02x}{g:02x}{b:02x}"


def test_compiled_rules_are_reused(roads: Tileset) -> None:
    assert compiled_rules(roads) is compiled_rules(roads)
    gen = generate_tiled(roads, 4, 4, periodic=False, seed=0)
    assert gen.setup_s < 1.0


@settings(max_examples=200, deadline=None)
@given(
    patterns=st.integers(1, 4),
    width=st.integers(1, 4),
    height=st.integers(1, 4),
    periodic=st.booleans(),
    data=st.data(),
)
def test_grid_is_valid_matches_reference(
    patterns: int, width: int, height: int, periodic: bool, data: st.DataObject
) -> None:
    half = data.draw(
        st.lists(st.booleans(), min_size=2 * patterns * patterns, max_size=2 * patterns**2)
    )
    allowed = np.zeros((4, patterns, patterns), dtype=np.bool_)
    allowed[1] = np.array(half[: patterns**2]).reshape(patterns, patterns)
    allowed[2] = np.array(half[patterns**2 :]).reshape(patterns, patterns)
    allowed[3] = allowed[1].T
    allowed[0] = allowed[2].T
    cells = data.draw(
        st.lists(st.integers(-1, patterns - 1), min_size=width * height, max_size=width * height)
    )
    grid = np.array(cells, dtype=np.int32).reshape(height, width)
    expected = is_valid_tiling(grid, allowed, periodic)
    assert grid_is_valid(grid, allowed, periodic) == expected


def test_solved_but_invalid_grid_is_reported_failed(tmp_path: Path) -> None:
    # No 3x3 torus can alternate two tiles like a checkerboard.
    (tmp_path / "t.xml").write_text(
        '<set><tiles><tile name="A" symmetry="X"/><tile name="B" symmetry="X"/></tiles>'
        '<neighbors><neighbor left="A" right="B"/></neighbors></set>'
    )
    checker = load_tileset(tmp_path / "t.xml", load_images=False)
    for seed in range(3):
        gen = generate_tiled(checker, 3, 3, periodic=True, seed=seed)
        assert not gen.solved
        assert gen.result.reason is not None
