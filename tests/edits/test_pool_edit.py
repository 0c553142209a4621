"""Edits solved in a process of the one pool (:meth:`WorkerPool.submit_edit`, what the app does
with ``worldgen serve``): the same bytes and reveal as in this process, refusals (with the cells
they name) reach the caller, and the caller's process never runs the solve."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from worldgen.errors import EditRefusedError
from worldgen.world import api
from worldgen.world import edits as ed
from worldgen.world.blocks import World
from worldgen.world.pool import WorkerPool
from worldgen.world.spec import WorldSpec

SPEC = WorldSpec("tileset", "terrain", 7, S=8, V=2)


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerPool]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORLDGEN_CACHE_DIR", str(tmp_path_factory.mktemp("pool-edit-cache")))
        with WorkerPool(1) as one:
            yield one


def test_a_pool_solves_edits_like_this_process(
    pool: WorkerPool, world: World, edit_cache: Path
) -> None:
    overlay = ed.Overlay()
    first = ed.Op.build(1, "regenerate", rect=ed.Rect(-10, 4, 40, 30))
    here = api.compute_edit(world, first, {})
    there = pool.submit_edit(SPEC, first, {}).result(timeout=300)
    assert there == here
    overlay.apply(ed.Diff.from_bytes(there[0]), 1)
    # a second edit over the first one reads its blocks; an undo reads its diff
    blocks = {k: (data, 1) for k in overlay.cells if (data := overlay.block_bytes(k))}
    second = ed.Op.build(2, "regenerate", rect=ed.Rect(0, 10, 20, 20))
    assert pool.submit_edit(SPEC, second, blocks).result(300) == api.compute_edit(
        world, second, blocks
    )
    undo = ed.Op.build(2, "revert", target=1)
    done = pool.submit_edit(SPEC, undo, blocks, there[0]).result(300)
    assert done == api.compute_edit(world, undo, blocks, there[0])
    assert len(ed.Diff.from_bytes(done[0])) == len(ed.Diff.from_bytes(there[0]))


def test_a_refusal_in_the_pool_names_its_cells(pool: WorkerPool, world: World) -> None:
    locked = ed.Op.build(1, "lock", rect=ed.Rect(0, 0, 2, 1))
    overlay = ed.Overlay()
    overlay.apply(ed.Diff.from_bytes(api.compute_edit(world, locked, {})[0]), 1)
    blocks = {k: (data, 1) for k in overlay.cells if (data := overlay.block_bytes(k))}
    current = int(world.region(0, 0, 1, 1)[0, 0])
    other = (current + 1) % world.model.size
    paint = ed.Op.build(2, "paint", cells=[(0, 0, other)], variants=world.model.size)
    with pytest.raises(EditRefusedError, match="locked") as refused:
        pool.submit_edit(SPEC, paint, blocks).result(300)
    assert refused.value.cells == [(0, 0)]
