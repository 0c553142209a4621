"""The reveal of an edit (:func:`worldgen.world.edits.reveal`): the changed cells in the order the
solver decided them, compact at any size, and the same order the solver reports."""

from __future__ import annotations

import base64

import numpy as np

from worldgen.engine.solver import Constraints, SolverBudget, solve
from worldgen.world import edits as ed
from worldgen.world.blocks import World


def _frames(reveal: dict[str, int | str]) -> np.ndarray:
    data = base64.b64decode(str(reveal["data"]))
    return np.frombuffer(data, dtype=np.uint8).reshape(int(reveal["h"]), int(reveal["w"]))


def _regenerate(world: World, rect: ed.Rect, op_id: int = 1) -> ed.Diff:
    op = ed.Op.build(op_id, "regenerate", rect=rect)
    overlay = ed.Overlay()
    return ed.compute(world, overlay, op, diff_of=lambda i: None, overlay_at=lambda v: overlay)


def test_the_reveal_follows_the_solvers_decisions(world: World) -> None:
    rect = ed.Rect(3, -5, 60, 40)
    diff = _regenerate(world, rect)
    assert diff.order is not None
    assert len(diff) > 100, len(diff)
    # the order is the solve's: the same window, pins and seed solved directly
    window = rect.grow(1)
    current = world.region(window.x, window.y, window.w, window.h)
    pins = current.astype(np.int32)
    pins[1:-1, 1:-1] = -1
    bands = world.profile_region(window.x, window.y, window.w, window.h)
    direct = solve(
        world.cr, window.w, window.h, seed=ed.op_seed(world.seed, 1),
        constraints=Constraints(pins=pins, bias=(world.profiles, bands)),
        budget=SolverBudget(max_attempts=4, max_backtracks=400),
    )  # fmt: skip
    assert direct.order is not None
    assert np.array_equal(diff.order, direct.order[diff.ys - window.y, diff.xs - window.x])

    reveal = ed.reveal(diff)
    assert reveal is not None
    box = diff.bbox()
    assert box is not None
    assert (reveal["x"], reveal["y"], reveal["step"]) == (box.x, box.y, 1)
    frames = _frames(reveal)
    assert frames.shape == (box.h, box.w)
    got = frames[diff.ys - box.y, diff.xs - box.x]
    assert got.max() < ed.REVEAL_FRAMES
    assert len(np.unique(got)) > ed.REVEAL_FRAMES // 2  # a reveal, not a flash
    # a cell decided earlier never shows later
    by_order = np.argsort(diff.order, kind="stable")
    assert (np.diff(got[by_order].astype(np.int64)) >= 0).all()
    unchanged = np.ones(frames.shape, dtype=np.bool_)
    unchanged[diff.ys - box.y, diff.xs - box.x] = False
    assert (frames[unchanged] == 255).all()


def test_a_large_reveal_stays_small(world: World) -> None:
    diff = _regenerate(world, ed.Rect(0, 0, 200, 150))
    reveal = ed.reveal(diff)
    assert reveal is not None
    assert int(reveal["step"]) == 4
    assert max(int(reveal["w"]), int(reveal["h"])) <= ed.REVEAL_SIDE
    assert len(str(reveal["data"])) <= 4 * ed.REVEAL_SIDE**2 // 3 + 4
    # each square shows at the first step of its cells
    frames = _frames(reveal)
    box = diff.bbox()
    assert box is not None
    squares = ((diff.ys - box.y) // 4, (diff.xs - box.x) // 4)
    assert (frames[squares] < 255).all()
    assert len(np.unique(frames[squares])) > ed.REVEAL_FRAMES // 2


def test_a_change_without_a_solve_shows_at_once(world: World) -> None:
    diff = ed.Diff(
        np.array([4, 5], dtype=np.int64), np.array([1, 1], dtype=np.int64),
        np.array([-1, -1], dtype=np.int32), np.array([0, 0], dtype=np.int32),
        np.zeros(2, dtype=np.bool_), np.zeros(2, dtype=np.bool_),
    )  # fmt: skip
    reveal = ed.reveal(diff)
    assert reveal is not None
    assert _frames(reveal).tolist() == [[0, 0]]
    assert ed.reveal(ed.Diff.empty()) is None
