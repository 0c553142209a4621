"""Edits of a side-view world (``flowers``: the ground row at ``y = 0``, sky above) keep the
ground constraints of generation (:mod:`worldgen.world.ground`): every cell at ``y >= 0`` keeps
its content, the ground pattern grows nowhere above it, and a paint that breaks either is refused
naming its cells."""

from __future__ import annotations

import numpy as np
import pytest

from worldgen.engine.rules import forbidden_pairs
from worldgen.errors import EditRefusedError
from worldgen.world import edits as ed
from worldgen.world.api import build_world
from worldgen.world.blocks import World
from worldgen.world.spec import WorldSpec


@pytest.fixture(scope="module")
def flowers(tmp_path_factory: pytest.TempPathFactory) -> World:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORLDGEN_CACHE_DIR", str(tmp_path_factory.mktemp("ground-cache")))
        world = build_world(WorldSpec.of_kind("overlapping", "flowers", 3))
    assert world.lib.ground is not None
    return world


def _apply(world: World, overlay: ed.Overlay, op: ed.Op) -> ed.Diff:
    diff = ed.compute(world, overlay, op, diff_of=lambda i: None, overlay_at=lambda v: overlay)
    overlay.apply(diff, op.id)
    return diff


@pytest.mark.parametrize("rect", [ed.Rect(0, -30, 48, 40), ed.Rect(5, -12, 30, 20)])
def test_a_regenerate_over_the_ground_keeps_it(flowers: World, rect: ed.Rect) -> None:
    overlay = ed.Overlay()
    changed = 0
    before = ed.content(flowers, overlay, rect.grow(1))
    for op_id in (1, 2, 3):
        changed += len(_apply(flowers, overlay, ed.Op.build(op_id, "regenerate", rect=rect)))
        after = ed.content(flowers, overlay, rect.grow(1))
        ys = rect.y - 1 + np.arange(rect.h + 2)
        assert np.array_equal(after[ys >= 0], before[ys >= 0])
        assert not (after[ys < 0] == flowers.model.ground).any()
        assert forbidden_pairs(after, flowers.model.allowed) == 0
    assert changed or rect.h < 40  # the tall one's sky and flowers were solved anew


def test_a_paint_on_or_under_the_ground_or_of_ground_in_the_sky_is_refused(
    flowers: World,
) -> None:
    overlay = ed.Overlay()
    ground = flowers.model.ground
    under = int(flowers.region(10, 2, 1, 1)[0, 0])
    other = next(v for v in range(flowers.model.size) if v not in (under, ground))
    for cells in ([(10, 2, other)], [(10, 0, other), (11, 0, other)], [(12, -9, ground)]):
        op = ed.Op.build(1, "paint", cells=cells, variants=flowers.model.size)
        with pytest.raises(EditRefusedError, match="ground row stays at y = 0") as refused:
            _apply(flowers, overlay, op)
        assert refused.value.cells == [(x, y) for x, y, _ in cells]
    assert not overlay.cells  # nothing changed
