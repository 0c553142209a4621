"""The pure edit layer (:mod:`worldgen.world.edits`): replay reproduces the overlay, rules hold
across every edited rectangle's border, refusals change nothing, undo keeps others' later work."""

from __future__ import annotations

import numpy as np
import pytest

from worldgen.engine.rules import forbidden_pairs
from worldgen.errors import EditRefusedError, InputError
from worldgen.world import edits as ed
from worldgen.world.blocks import World


class Log:
    """Operations applied one by one, as the server does."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.overlay = ed.Overlay()
        self.diffs: dict[int, ed.Diff] = {}
        self.ops: list[ed.Op] = []

    def run(self, kind: str, **kw: object) -> ed.Diff:
        op = ed.Op.build(len(self.ops) + 1, kind, variants=self.world.model.size, **kw)  # type: ignore[arg-type]
        diff = ed.compute(
            self.world,
            self.overlay,
            op,
            diff_of=self.diffs.get,
            overlay_at=lambda v: ed.replay(self.world, [o for o in self.ops if o.id <= v])[0],
        )
        self.overlay.apply(diff, op.id)
        self.diffs[op.id] = diff
        self.ops.append(op)
        return diff

    def valid(self, rect: ed.Rect) -> bool:
        return (
            forbidden_pairs(ed.content(self.world, self.overlay, rect), self.world.model.allowed)
            == 0
        )


VIEW = ed.Rect(-40, -40, 160, 160)


def test_replay_reproduces_the_overlay_and_rules_hold(world: World) -> None:
    log = Log(world)
    log.run("regenerate", rect=ed.Rect(0, 0, 40, 24))
    assert log.valid(VIEW)
    log.run("lock", rect=ed.Rect(5, 5, 6, 6))
    log.run("regenerate", rect=ed.Rect(-10, -10, 30, 30))
    cells = ed.content(world, log.overlay, ed.Rect(5, 5, 6, 6))
    log.run("paint", cells=[[30, 30, int(cells[0, 0])]])
    log.run("restore", rect=ed.Rect(20, 0, 30, 30))
    log.run("revert", target=1)
    log.run("rewind", target=3)
    assert log.valid(VIEW)
    replayed, diffs = ed.replay(world, log.ops)
    assert replayed.same_content(log.overlay)
    assert replayed.versions == log.overlay.versions
    for key in log.overlay.cells:  # storage's bytes round-trip
        data = log.overlay.block_bytes(key)
        assert data is not None
        again = ed.Overlay()
        again.put_block(key, data, 1)
        assert np.array_equal(again.cells[key], log.overlay.cells[key])
        assert np.array_equal(again.locks[key], log.overlay.locks[key])
    for op_id, diff in diffs.items():
        back = ed.Diff.from_bytes(diff.to_bytes())
        assert np.array_equal(back.xs, log.diffs[op_id].xs)
        assert np.array_equal(back.after, log.diffs[op_id].after)


def test_locked_cells_survive_a_regenerate(world: World) -> None:
    log = Log(world)
    rect = ed.Rect(0, 0, 32, 32)
    log.run("regenerate", rect=rect)
    locked = ed.Rect(8, 8, 8, 8)
    kept = ed.content(world, log.overlay, locked)
    log.run("lock", rect=locked)
    for _ in range(3):
        log.run("regenerate", rect=rect)
        assert np.array_equal(ed.content(world, log.overlay, locked), kept)
    log.run("unlock", rect=locked)
    assert not any(lk.any() for lk in log.overlay.locks.values())


def test_contradicting_paint_is_refused_naming_cells_and_changes_nothing(world: World) -> None:
    log = Log(world)
    log.run("regenerate", rect=ed.Rect(0, 0, 16, 16))
    before = log.overlay.copy()
    allowed = world.model.allowed
    t = world.model.size
    a, b = next((a, b) for a in range(t) for b in range(t) if not allowed[2, a, b])
    with pytest.raises(EditRefusedError) as caught:
        log.run("paint", cells=[[3, 3, a], [4, 3, b]])
    assert (3, 3) in caught.value.cells
    assert (4, 3) in caught.value.cells
    assert caught.value.status == 422
    assert log.overlay.same_content(before)
    assert log.overlay.versions == before.versions


def test_painting_a_locked_cell_is_refused(world: World) -> None:
    log = Log(world)
    log.run("lock", cells=[[2, 2]])
    now = int(ed.content(world, log.overlay, ed.Rect(2, 2, 1, 1))[0, 0])
    other = next(v for v in range(world.model.size) if v != now)
    with pytest.raises(EditRefusedError, match=r"locked: \(2, 2\)"):
        log.run("paint", cells=[[2, 2, other]])


def test_undo_keeps_another_users_later_operation(world: World) -> None:
    log = Log(world)
    a = ed.Rect(0, 0, 24, 24)
    log.run("regenerate", rect=a)  # user A
    after_a = ed.content(world, log.overlay, VIEW)
    b = ed.Rect(12, 12, 24, 24)
    log.run("regenerate", rect=b)  # user B, overlapping A's area
    after_b = ed.content(world, log.overlay, VIEW)
    undo = log.run("revert", target=1)  # A undoes
    now = ed.content(world, log.overlay, VIEW)
    assert log.valid(VIEW)
    # B's cells that differ from A's result keep B's content, away from the re-solved seam
    inner_b = np.zeros(now.shape, dtype=bool)
    inner_b[b.y + 8 - VIEW.y : b.y + b.h - VIEW.y, b.x + 8 - VIEW.x : b.x + b.w - VIEW.x] = True
    b_changed = inner_b & (after_b != after_a)
    assert b_changed.any()
    assert np.array_equal(now[b_changed], after_b[b_changed])
    # A's cells that B never touched are back to the generated world (seam aside)
    generated = world.region(VIEW.x, VIEW.y, VIEW.w, VIEW.h)
    only_a = np.zeros(now.shape, dtype=bool)
    only_a[0 - VIEW.y : 8 - VIEW.y, 0 - VIEW.x : 8 - VIEW.x] = True
    assert np.array_equal(now[only_a], generated[only_a])
    assert len(undo) > 0
    redo = log.run("revert", target=undo_id(log))
    assert len(redo) > 0
    assert log.valid(VIEW)


def undo_id(log: Log) -> int:
    return log.ops[-1].id


@pytest.mark.parametrize(("side", "ok"), [(256, True), (257, False)])
def test_rectangle_limit(side: int, ok: bool) -> None:
    if ok:
        assert ed.Op.build(1, "regenerate", rect=ed.Rect(0, 0, side, 1)).rect is not None
    else:
        with pytest.raises(InputError, match="at most 256x256"):
            ed.Op.build(1, "regenerate", rect=ed.Rect(0, 0, 1, side))


@pytest.mark.parametrize(("count", "ok"), [(4096, True), (4097, False)])
def test_paint_limit(count: int, ok: bool) -> None:
    cells = [[i % 64, i // 64, 0] for i in range(count)]
    if ok:
        assert len(ed.Op.build(1, "paint", cells=cells).cells) == count
    else:
        with pytest.raises(InputError, match="at most 4096"):
            ed.Op.build(1, "paint", cells=cells)


def test_op_seed_is_an_integer_hash_of_world_seed_and_op() -> None:
    assert ed.op_seed(7, 1) == ed.op_seed(7, 1)
    assert len({ed.op_seed(7, 1), ed.op_seed(7, 2), ed.op_seed(8, 1)}) == 3


def test_rolling_back_diffs_gives_every_earlier_overlay(world: World) -> None:
    log = Log(world)
    log.run("regenerate", rect=ed.Rect(0, 0, 30, 30))
    log.run("lock", rect=ed.Rect(4, 4, 5, 5))
    log.run("regenerate", rect=ed.Rect(10, 10, 30, 30))
    log.run("restore", rect=ed.Rect(0, 0, 12, 12))
    log.run("rewind", target=1)
    for version in range(len(log.ops)):
        newer = [log.diffs[op.id] for op in reversed(log.ops) if op.id > version]
        earlier = ed.replay(world, log.ops[:version])[0]
        assert ed.rolled_back(log.overlay, newer).same_content(earlier)
