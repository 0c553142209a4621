"""The edit API on a real Valkey: who may edit, limits, rebase/409, undo/redo, markers, and tiles,
regions and the overlay showing every edit."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from tests.edits.conftest import Crew
from worldgen.store.edits import EditStore
from worldgen.store.ratelimit import Limit, RateLimits
from worldgen.web.edits import EditService, _op_of
from worldgen.web.generation import spec_for
from worldgen.world import edits as ed
from worldgen.world.api import build_world

pytestmark = pytest.mark.anyio


async def _region(c: Crew, x: int, y: int, w: int, h: int) -> np.ndarray[Any, Any]:
    doc = (await c.viewer.get(c.url(f"region?x={x}&y={y}&w={w}&h={h}"))).json()
    return np.asarray(doc["cells"]).reshape(h, w)


async def test_edit_roles_limits_and_log(make_crew: Any) -> None:
    c: Crew = await make_crew()
    rect = {"x": 0, "y": 0, "w": 16, "h": 16}
    got = await c.viewer.post(c.url("edits"), json={"kind": "regenerate", "rect": rect})
    assert got.status_code == 403
    assert "editor" in got.json()["detail"]
    for side, code in ((256, 201), (257, 422)):
        big = {"x": 0, "y": 0, "w": side, "h": 1}
        got = await c.editor.post(c.url("edits"), json={"kind": "regenerate", "rect": big})
        assert got.status_code == code, got.text
    cells = [[i % 64, i // 64, 0] for i in range(4097)]
    got = await c.editor.post(c.url("edits"), json={"kind": "paint", "cells": cells})
    assert got.status_code == 422
    got = await c.owner.post(c.url("edits"), json={"kind": "regenerate", "rect": rect})
    assert got.status_code == 201, got.text
    body = got.json()
    assert body["version"] == 2
    assert body["op"]["id"] == 2
    assert body["op"]["kind"] == "regenerate"
    log = (await c.viewer.get(c.url("edits?after=1"))).json()
    assert [o["id"] for o in log["ops"]] == [2]
    assert log["version"] == 2


async def test_paint_at_the_cell_limit(make_crew: Any) -> None:
    c: Crew = await make_crew()
    before = await _region(c, 0, 0, 64, 64)
    cells = [[x, y, int(before[y, x])] for y in range(64) for x in range(64)]
    assert len(cells) == 4096
    got = await c.editor.post(c.url("edits"), json={"kind": "paint", "cells": cells})
    assert got.status_code == 201, got.text
    assert np.array_equal(await _region(c, 0, 0, 64, 64), before)


async def test_a_4096_cell_paint_far_out_fits_in_one_request(make_crew: Any) -> None:
    c: Crew = await make_crew()
    x0, y0 = 123_456_789, -987_654_321
    before = await _region(c, x0, y0, 64, 64)
    cells = [[x, y, int(before[y, x])] for y in range(64) for x in range(64)]
    body = {"kind": "paint", "at": [x0, y0], "cells": cells}
    got = await c.editor.post(c.url("edits"), json=body)
    assert got.status_code == 201, got.text
    assert got.json()["op"]["rect"] == [x0, y0, 64, 64]
    lock = {"kind": "lock", "at": [x0, y0], "cells": [[1, 2]]}
    assert (await c.editor.post(c.url("edits"), json=lock)).status_code == 201
    locks = (await c.viewer.get(c.url(f"locks?x={x0}&y={y0}&w=4&h=4"))).json()
    assert locks["cells"] == [[x0 + 1, y0 + 2]]


async def test_rate_limit(make_crew: Any) -> None:
    c: Crew = await make_crew(rate_limits=RateLimits(edit=Limit(count=2, window_s=60)))
    lock = {"kind": "lock", "rect": {"x": 0, "y": 0, "w": 2, "h": 2}}
    for _ in range(2):
        assert (await c.editor.post(c.url("edits"), json=lock)).status_code == 201
    got = await c.editor.post(c.url("edits"), json=lock)
    assert got.status_code == 429
    assert int(got.headers["retry-after"]) >= 1


async def test_paint_conflict_is_refused_and_changes_nothing(make_crew: Any) -> None:
    c: Crew = await make_crew()
    store: EditStore = c.owner.app.state.store.edits
    region = await c.viewer.get(c.url("region?x=0&y=0&w=1&h=1"))
    tiles = region.json()["tiles"]
    world = build_world(spec_for(await c.owner.app.state.store.worlds.get(c.world_id)))
    allowed = world.model.allowed
    a, b = next(
        (a, b) for a in range(len(tiles)) for b in range(len(tiles)) if not allowed[2, a, b]
    )
    got = await c.editor.post(
        c.url("edits"), json={"kind": "paint", "cells": [[5, 5, a], [6, 5, b]]}
    )
    assert got.status_code == 422, got.text
    assert "(5, 5)" in got.json()["detail"]
    assert "(6, 5)" in got.json()["detail"]
    assert await store.version(c.world_id) == 0
    assert await store.blocks(c.world_id) == {}


async def test_stale_version_rebases_or_409(make_crew: Any) -> None:
    c: Crew = await make_crew()
    first = {"kind": "regenerate", "rect": {"x": 0, "y": 0, "w": 8, "h": 8}, "version": 0}
    assert (await c.editor.post(c.url("edits"), json=first)).status_code == 201
    far = {"kind": "regenerate", "rect": {"x": 100, "y": 100, "w": 8, "h": 8}, "version": 0}
    got = await c.owner.post(c.url("edits"), json=far)
    assert got.status_code == 201
    assert got.json()["op"]["base_version"] == 0
    near = {"kind": "regenerate", "rect": {"x": 2, "y": 2, "w": 8, "h": 8}, "version": 0}
    assert (await c.owner.post(c.url("edits"), json=near)).status_code == 409
    future = {**near, "version": 9}
    assert (await c.owner.post(c.url("edits"), json=future)).status_code == 409


async def test_undo_keeps_others_later_work_and_redo(make_crew: Any) -> None:
    c: Crew = await make_crew()
    store: EditStore = c.owner.app.state.store.edits
    base = await _region(c, 0, 0, 48, 48)
    rect = {"x": 4, "y": 4, "w": 32, "h": 32}
    assert (
        await c.editor.post(c.url("edits"), json={"kind": "regenerate", "rect": rect})
    ).status_code == 201
    mid = await _region(c, 0, 0, 48, 48)
    lock = {"kind": "lock", "rect": {"x": 10, "y": 10, "w": 4, "h": 4}}
    assert (await c.owner.post(c.url("edits"), json=lock)).status_code == 201
    assert (await c.viewer.post(c.url("undo"))).status_code == 403
    assert (await c.owner.post(c.url("redo"))).status_code == 409
    undo = await c.editor.post(c.url("undo"))
    assert undo.status_code == 200, undo.text
    assert undo.json()["op"]["kind"] == "revert"
    assert undo.json()["op"]["target"] == 1
    after = await _region(c, 0, 0, 48, 48)
    # the owner's lock is later work: those cells keep the regenerated content
    assert np.array_equal(after[10:14, 10:14], mid[10:14, 10:14])
    outside = np.ones(after.shape, dtype=bool)
    outside[6:20, 6:20] = False
    changed = (after != base) & outside
    assert changed.sum() < (mid != base).sum()
    redo = await c.editor.post(c.url("redo"))
    assert redo.status_code == 200, redo.text
    assert np.array_equal(await _region(c, 0, 0, 48, 48), mid)
    # the stored overlay equals the replayed log
    record = await c.owner.app.state.store.worlds.get(c.world_id)
    world = build_world(spec_for(record))
    ops = [_op_of(r) for r in await store.ops(c.world_id)]
    replayed, _ = ed.replay(world, ops)
    stored = await EditService.overlay(store, c.world_id)
    assert stored.same_content(replayed)
    assert stored.versions == replayed.versions


async def test_tiles_follow_edits_and_restore_version(make_crew: Any) -> None:
    c: Crew = await make_crew()
    url = f"/tiles/{c.world_id}/2/0/0.png"
    first = await c.viewer.get(url)
    rect = {"x": 0, "y": 0, "w": 16, "h": 16}
    assert (
        await c.editor.post(c.url("edits"), json={"kind": "regenerate", "rect": rect})
    ).status_code == 201
    second = await c.viewer.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert second.status_code == 200
    assert second.headers["etag"] != first.headers["etag"]
    untouched = await c.viewer.get(f"/tiles/{c.world_id}/2/10/10.png")
    assert untouched.status_code == 200
    assert (await c.editor.post(c.url("restore"), json={"version": 0})).status_code == 403
    got = await c.owner.post(c.url("restore"), json={"version": 0})
    assert got.status_code == 200, got.text
    third = await c.viewer.get(url)
    assert third.content == first.content
    assert third.headers["etag"] != first.headers["etag"]
    undone = await c.owner.post(c.url("undo"))
    assert undone.status_code == 200
    assert (await c.viewer.get(url)).content == second.content


async def test_markers(make_crew: Any) -> None:
    c: Crew = await make_crew()
    text = "<script>alert(1)</script>"
    got = await c.viewer.post(c.url("markers"), json={"x": 1, "y": 2, "label": "Hi"})
    assert got.status_code == 403
    made = await c.editor.post(c.url("markers"), json={"x": 1, "y": 2, "label": "Hi", "text": text})
    assert made.status_code == 201, made.text
    mid = made.json()["id"]
    changed = await c.owner.patch(c.url(f"markers/{mid}"), json={"label": "Town"})
    assert changed.status_code == 200
    assert changed.json()["text"] == text
    listed = (await c.viewer.get(c.url("markers"))).json()
    assert [(m["label"], m["x"], m["y"]) for m in listed] == [("Town", 1, 2)]
    assert (await c.editor.delete(c.url(f"markers/{mid}"))).status_code == 204
    assert (await c.editor.delete(c.url(f"markers/{mid}"))).status_code == 404
    long = await c.editor.post(c.url("markers"), json={"x": 0, "y": 0, "label": "x" * 61})
    assert long.status_code == 422


async def test_a_lock_changes_no_pixel_of_tiles_regions_or_exports(make_crew: Any) -> None:
    # A lock puts a block in the overlay without changing content: the tile, the region and the
    # export are then drawn by the edit path and must equal the generated ones byte for byte.
    c: Crew = await make_crew()
    tile = f"/tiles/{c.world_id}/1/0/0.png"
    export = c.url("export.png?x=-8&y=-8&w=40&h=40&scale=2")
    before = [await c.viewer.get(u) for u in (tile, export)]
    cells = await _region(c, -8, -8, 40, 40)
    lock = {"kind": "lock", "rect": {"x": 0, "y": 0, "w": 8, "h": 8}}
    assert (await c.editor.post(c.url("edits"), json=lock)).status_code == 201
    after = [await c.viewer.get(u) for u in (tile, export)]
    for old, new in zip(before, after, strict=True):
        assert new.status_code == 200
        assert new.content == old.content
        assert new.headers["etag"] != old.headers["etag"]
    assert np.array_equal(await _region(c, -8, -8, 40, 40), cells)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"kind": "paint", "cells": [[0, 0, 2**70]]}, 422),
        ({"kind": "paint", "cells": [[2**52 + 1, 0, 0]]}, 422),
        ({"kind": "paint", "cells": [[0, 0, 10**6]]}, 400),
        ({"kind": "paint", "cells": []}, 422),
        ({"kind": "lock", "cells": [[0, 0, 1]]}, 422),
        ({"kind": "lock"}, 422),
        ({"kind": "regenerate"}, 422),
        ({"kind": "regenerate", "rect": {"x": True, "y": 0, "w": 1, "h": 1}}, 422),
        ({"kind": "regenerate", "rect": {"x": 0.0, "y": 0, "w": 1, "h": 1}}, 201),
        ({"kind": "regenerate", "rect": {"x": 2**53, "y": 0, "w": 1, "h": 1}}, 422),
        ({"kind": "rewind", "rect": {"x": 0, "y": 0, "w": 1, "h": 1}}, 422),
        ({"kind": "regenerate", "rect": {"x": 0, "y": 0, "w": 1, "h": 1}, "version": -1}, 422),
    ],
)
async def test_bad_edits_are_clear_4xx(make_crew: Any, body: dict[str, Any], code: int) -> None:
    c: Crew = await make_crew()
    got = await c.editor.post(c.url("edits"), json=body)
    assert got.status_code == code, got.text
    assert (await c.owner.post(c.url("restore"), json={"version": 5})).status_code == 409


async def test_far_tiles_show_edits(make_crew: Any) -> None:
    # A far tile (z <= -3) over edited cells changes with the edit, gets a new ETag, and draws
    # exactly the generated summary again once the edit is undone (its key moves on again).
    c: Crew = await make_crew()
    far = [f"/tiles/{c.world_id}/{z}/0/0.png" for z in (-3, -6, -10)]
    before = [await c.viewer.get(u) for u in far]
    regen = {"kind": "regenerate", "rect": {"x": 0, "y": 0, "w": 256, "h": 256}}
    assert (await c.editor.post(c.url("edits"), json=regen)).status_code == 201
    after = [await c.viewer.get(u) for u in far]
    for old, new in zip(before, after, strict=True):
        assert new.status_code == 200
        assert new.headers["etag"] != old.headers["etag"]
    assert after[0].content != before[0].content
    assert (await c.editor.post(c.url("undo"))).status_code == 200
    undone = [await c.viewer.get(u) for u in far]
    for old, new in zip(before, undone, strict=True):
        assert new.content == old.content
        assert new.headers["etag"] != old.headers["etag"]


def _noise(rng: random.Random) -> Any:
    """A random JSON value: numbers at and past every bound, strings, lists, objects."""
    ints = [0, 1, -1, 255, 256, 257, 4096, 4097, 2**52, 2**52 + 1, 2**53, -(2**63), 2**64]
    pick = rng.random()
    if pick < 0.5:
        return rng.choice(ints)
    if pick < 0.6:
        return rng.choice(["", "x", "regenerate", "paint", "\u0000", 1.5, None, True])
    if pick < 0.8:
        return [_noise(rng) for _ in range(rng.randrange(0, 4))]
    return {k: _noise(rng) for k in rng.sample(["x", "y", "w", "h", "kind"], 3)}


async def test_random_edit_bodies_never_cause_a_server_error(make_crew: Any) -> None:
    c: Crew = await make_crew()
    rng = random.Random(14)
    kinds = ["regenerate", "paint", "lock", "unlock", "restore", "revert", "bogus"]
    for _ in range(60):
        body: dict[str, Any] = {"kind": rng.choice(kinds)}
        if rng.random() < 0.8:
            body["rect"] = {k: _noise(rng) for k in ("x", "y", "w", "h")}
        if rng.random() < 0.5:
            body["cells"] = [[_noise(rng) for _ in range(rng.randrange(1, 4))] for _ in range(3)]
        if rng.random() < 0.3:
            body["version"] = _noise(rng)
        got = await c.editor.post(c.url("edits"), json=body)
        assert got.status_code < 500, (body, got.text)
    for path, body in (("restore", {"version": 2**70}), ("markers", {"x": 2**80, "label": "a"})):
        assert (await c.owner.post(c.url(path), json=body)).status_code == 422


async def test_locks_of_a_window(make_crew: Any) -> None:
    c: Crew = await make_crew()
    lock = {"kind": "lock", "cells": [[3, 4], [5, 6]]}
    assert (await c.editor.post(c.url("edits"), json=lock)).status_code == 201
    got = await c.viewer.get(c.url("locks?x=0&y=0&w=10&h=10"))
    assert got.json() == {"cells": [[3, 4], [5, 6]], "truncated": False}
    for side, code in ((1024, 200), (1025, 422)):
        assert (await c.viewer.get(c.url(f"locks?x=0&y=0&w={side}&h=1"))).status_code == code
