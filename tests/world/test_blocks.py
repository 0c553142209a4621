from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worldgen.engine.rules import forbidden_pairs
from worldgen.engine.solver import SolverBudget
from worldgen.errors import InputError
from worldgen.world.blocks import ORDERS, Order, World, region_in_order

from .conftest import (
    ALL_SAMPLES,
    ALL_TILESETS,
    BUNDLED_SAMPLES,
    BUNDLED_TERRAIN,
    WorldFactory,
    sample_id,
)

IDS = [f"{p.parent.parent.name}/{p.stem}" for p in ALL_TILESETS]


def test_orders_give_identical_bytes(make_world: WorldFactory) -> None:
    grids = {
        order: region_in_order(make_world(seed=11), -37, -21, 45, 33, order) for order in ORDERS
    }
    ref = grids["rowmajor"].tobytes()
    assert all(g.tobytes() == ref for g in grids.values())


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    x=st.one_of(st.integers(-200, 200), st.sampled_from([2**30 - 17, -(2**30) - 5, -(2**31)])),
    y=st.one_of(st.integers(-200, 200), st.sampled_from([2**30 - 3, -(2**30) - 11])),
    dx=st.integers(0, 12),
    dy=st.integers(0, 12),
    w=st.integers(1, 12),
    h=st.integers(1, 12),
    order=st.sampled_from(ORDERS),
)
def test_window_cut_equals_window_alone(
    make_world: WorldFactory, x: int, y: int, dx: int, dy: int, w: int, h: int, order: Order
) -> None:
    big = make_world(seed=3).region(x, y, 24, 24)
    alone = region_in_order(make_world(seed=3), x + dx, y + dy, w, h, order)
    assert np.array_equal(alone, big[dy : dy + h, dx : dx + w])


@pytest.mark.parametrize("path", ALL_TILESETS, ids=IDS)
@pytest.mark.parametrize("layers", [0, 1, 2])
def test_every_adjacent_pair_is_allowed(make_world: WorldFactory, path: Path, layers: int) -> None:
    world = make_world(path, seed=5, layers=layers)
    grid = world.region(-61, 13, 67, 59)  # unaligned, spans many blocks and patches
    assert grid.min() >= 0
    assert forbidden_pairs(grid, world.model.allowed) == 0


def test_fallback_keeps_the_layer_below_valid(make_world: WorldFactory) -> None:
    world = make_world(seed=9)
    starved = World(
        world.model, 9, S=8, V=3, layers=2, library=world.lib,
        budget=SolverBudget(max_attempts=1, max_backtracks=0, max_observations=1),
    )  # fmt: skip
    grid = starved.region(0, 0, 40, 40)
    assert starved.fallbacks > 0
    assert forbidden_pairs(grid, world.model.allowed) == 0
    assert np.array_equal(grid, world.base_region(0, 0, 40, 40))


@pytest.mark.parametrize("layers", [2, 3])
def test_block_reads_only_its_declared_dependencies(make_world: WorldFactory, layers: int) -> None:
    world = make_world(seed=21, layers=layers)
    world.trace = []
    world.region(-20, 7, 30, 25)
    readers = {r for r, _ in world.trace}
    assert {layer for layer, _, _ in readers} == set(range(1, layers + 1))
    for reader, read in world.trace:
        assert read in world.dependencies(*reader), (reader, read)
    # and each evaluated block read all of them (a constant-size set)
    for reader in readers:
        assert {r for p, r in world.trace if p == reader} == world.dependencies(*reader)


def test_layer_offsets_never_repeat_the_layer_below(make_world: WorldFactory) -> None:
    """Layers 1, 2, 3 sit at S/2, 0, S/4: every layer's block borders lie inside the blocks of
    the layer below (a third layer at S/2 would repeat layer 1's borders)."""
    world = make_world(seed=1, S=8, layers=3)
    assert [world.offset(layer) for layer in (1, 2, 3)] == [4, 0, 2]
    assert world.dependencies(3, 0, 0) == {(2, a, b) for a in (0, 1) for b in (0, 1)}
    assert world.dependencies(2, 0, 0) == {(1, a, b) for a in (-1, 0) for b in (-1, 0)}


def test_macro_classes_agree_with_tile_classes_above_chance(make_world: WorldFactory) -> None:
    world = make_world(BUNDLED_TERRAIN, seed=42, S=16, V=3)
    x, y, n = -256, -256, 256
    tiles = world.variant_class[world.region(x, y, n, n)]
    macro_cls = world.lattice_classes_for(x, y, n, n)
    agree = float((tiles == macro_cls).mean())
    pt = np.bincount(tiles.ravel(), minlength=3) / tiles.size
    pm = np.bincount(macro_cls.ravel(), minlength=3) / macro_cls.size
    chance = float((pt * pm).sum())
    kappa = (agree - chance) / (1.0 - chance)  # agreement beyond chance, 0 if independent
    assert kappa > 0.4, (agree, chance)


def test_bad_windows_are_refused(make_world: WorldFactory) -> None:
    world = make_world()
    with pytest.raises(InputError, match="1x1"):
        world.region(0, 0, 0, 5)
    with pytest.raises(InputError, match="outside the world"):
        world.region(2**60, 0, 4, 4)
    with pytest.raises(InputError, match="order"):
        region_in_order(world, 0, 0, 4, 4, "sideways")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- sample worlds
def test_sample_world_orders_give_identical_bytes(make_sample_world: WorldFactory) -> None:
    grids = [
        region_in_order(make_sample_world("city", seed=11), -37, -21, 45, 33, order)
        for order in ORDERS
    ]
    assert all(g.tobytes() == grids[0].tobytes() for g in grids)


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    x=st.one_of(st.integers(-200, 200), st.sampled_from([2**40 - 17, -(2**40) - 5, -(2**53)])),
    y=st.one_of(st.integers(-200, 200), st.sampled_from([2**40 - 3, -(2**31) - 11])),
    dx=st.integers(0, 12),
    dy=st.integers(0, 12),
    w=st.integers(1, 12),
    h=st.integers(1, 12),
    order=st.sampled_from(ORDERS),
)
def test_sample_window_cut_equals_window_alone(
    make_sample_world: WorldFactory, x: int, y: int, dx: int, dy: int, w: int, h: int, order: Order
) -> None:
    big = make_sample_world("lakes", seed=3).region(x, y, 24, 24)
    alone = region_in_order(make_sample_world("lakes", seed=3), x + dx, y + dy, w, h, order)
    assert np.array_equal(alone, big[dy : dy + h, dx : dx + w])


@pytest.mark.parametrize("name", ALL_SAMPLES, ids=sample_id)
@pytest.mark.parametrize("layers", [0, 2])
def test_every_adjacent_sample_pair_is_allowed(
    make_sample_world: WorldFactory, name: str, layers: int
) -> None:
    world = make_sample_world(name, seed=5, layers=layers)
    grid = world.region(-61, 13, 67, 59)  # unaligned, spans many blocks and patches
    assert grid.min() >= 0
    assert forbidden_pairs(grid, world.model.allowed) == 0
    assert world.fallbacks == 0


def test_sample_fallback_keeps_the_layer_below_valid(make_sample_world: WorldFactory) -> None:
    world = make_sample_world("corridors", seed=9)
    starved = World(
        world.model, 9, S=8, V=2, layers=2, library=world.lib,
        budget=SolverBudget(max_attempts=1, max_backtracks=0, max_observations=1),
    )  # fmt: skip
    grid = starved.region(0, 0, 40, 40)
    assert starved.fallbacks > 0
    assert forbidden_pairs(grid, world.model.allowed) == 0
    assert np.array_equal(grid, world.base_region(0, 0, 40, 40))


def test_sample_corner_colours_are_hashed_per_vertex(make_sample_world: WorldFactory) -> None:
    world = make_sample_world("lakes", seed=4)
    assert world.lib.hashed
    colours = world.vertex_classes(-50, 7, 40, 30)
    assert np.array_equal(colours[3:9, 5:11], world.vertex_classes(-45, 10, 6, 6))
    # every corner colour occurs, and no lattice line repeats the one above it
    assert set(np.unique(colours).tolist()) == set(range(world.lib.classes))
    assert not any(np.array_equal(colours[j], colours[j + 1]) for j in range(29))


@pytest.mark.parametrize("name", BUNDLED_SAMPLES)
def test_sample_fallback_rate_at_the_default_block_size(
    make_sample_world: WorldFactory, name: str
) -> None:
    world = make_sample_world(name, seed=42, S=16, V=4)
    world.region(-100, -60, 96, 96)
    blocks = world.fallbacks + world.solved_blocks
    assert blocks > 80
    assert world.fallbacks <= 0.01 * blocks
