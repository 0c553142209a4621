"""``SolveResult.order``: the observation whose step decided each cell. The cells decided after
``k`` observations of a solve are exactly those the same solve, stopped by its budget after
``k`` observations, has decided; pins are decided before the first (0)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from worldgen.engine.solver import Constraints, SolverBudget, solve
from worldgen.world.api import build_world
from worldgen.world.blocks import World
from worldgen.world.spec import WorldSpec


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORLDGEN_CACHE_DIR", str(tmp_path_factory.mktemp("order-cache")))
        return build_world(WorldSpec("tileset", "terrain", 7, S=8, V=2))


def _ring_pins(world: World, w: int, h: int) -> np.ndarray:
    pins = world.region(0, 0, w, h).astype(np.int32)
    pins[1:-1, 1:-1] = -1
    return pins


@pytest.mark.parametrize("heuristic", ["entropy", "mrv", "scanline"])
def test_order_replays_the_solve(world: World, heuristic: str, tmp_path: Path) -> None:
    w, h = 24, 18
    pins = _ring_pins(world, w, h)
    full = solve(world.cr, w, h, seed=11, heuristic=heuristic,  # type: ignore[arg-type]
                 constraints=Constraints(pins=pins))  # fmt: skip
    assert full.solved
    assert full.backtracks == 0  # (a repair would undo decisions: the replay below needs none)
    order = full.order
    assert order is not None
    assert order.shape == (h, w)
    assert (order[pins >= 0] == 0).all()
    assert order.min() >= 0
    assert order.max() == full.observations
    for k in (1, 5, full.observations // 2, full.observations - 1):
        stopped = solve(
            world.cr, w, h, seed=11, heuristic=heuristic,  # type: ignore[arg-type]
            constraints=Constraints(pins=pins),
            budget=SolverBudget(max_attempts=1, attempt_observations=k),
        )  # fmt: skip
        assert stopped.reason == "budget"
        assert stopped.order is not None
        decided = stopped.wave.sum(axis=2) == 1
        assert np.array_equal(decided, (order >= 0) & (order <= k)), k
        assert np.array_equal(stopped.order[decided], order[decided])
        assert (stopped.order[~decided] == -1).all()
