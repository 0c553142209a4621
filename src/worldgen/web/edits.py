"""The app's side of edits: applies operations (:mod:`worldgen.world.edits`) to a world under its
lock in Redis (:mod:`worldgen.store.edits`), and draws what the overlay changes.

* :meth:`EditService.apply` serialises edits per world (the store's lock, then a ``WATCH``ed
  ``MULTI``). An edit carries the version it was made on; it is *rebased* onto the current version
  when no operation since touched its area (grown by one cell, its ring), else refused with 409
  (:class:`~worldgen.errors.StaleVersionError`). A version from the future is a 409 too.
* Solves run in a worker thread of this process over its own small cache of worlds (the
  generation pool keeps generated content; edits need the model and the region around them).
  Each world object is used by one thread at a time.
* Tiles: a cell-zoom tile whose blocks were edited is drawn here, from the generated cells with
  the overlay on top; its cache key carries the last operation id that changed those blocks
  (:meth:`tile_version`), so no cache can serve it from before an edit. A far-zoom tile (z <= -3:
  the predicted summary) over edited blocks is the summary plus, per pixel, the mean colour
  change the edits made to the cells it covers (:meth:`tile_png`); its key carries the last
  operation that changed any of its cells (``bverz``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Literal

import numpy as np

from worldgen.errors import StaleVersionError
from worldgen.store.edits import EditStore, OpRecord
from worldgen.store.worlds import WorldRecord
from worldgen.web.auth.sessions import User
from worldgen.web.generation import spec_for
from worldgen.world import edits as ed
from worldgen.world.blocks import World
from worldgen.world.pool import WorldCache
from worldgen.world.render import (
    TILE_PX,
    Z_FAR,
    Z_MIN,
    cell_relief,
    cells_per_tile,
    palette_for,
    png_bytes,
    render_cells,
    tile_rgb,
)
from worldgen.world.spec import WorldSpec

__all__ = ["EditRequest", "EditService"]

WORLDS_KEPT = 8
REACH = max(ed.REPAIR_RADII) + 8
"""Cells around an operation's area it may change (ring, seam repair): the overlay blocks read."""


class EditRequest:
    """What a client asks for (already shaped by the route's model)."""

    def __init__(
        self,
        kind: str,
        *,
        rect: ed.Rect | None = None,
        cells: list[list[int]] | None = None,
        target: int | None = None,
        version: int | None = None,
    ) -> None:
        self.kind = kind
        self.rect = rect
        self.cells = cells or []
        self.target = target
        self.version = version


def _op_of(record: OpRecord) -> ed.Op:
    rect = ed.Rect(*record.rect) if record.rect is not None else None
    cells = tuple((c[0], c[1], c[2] if len(c) > 2 else 0) for c in record.cells)
    return ed.Op(record.id, record.kind, rect, cells, record.target)  # type: ignore[arg-type]


def _far_tiles(blocks: set[tuple[int, int]]) -> list[str]:
    """``z:x:y`` of every far-zoom tile over the blocks (each block lies in one tile a zoom)."""
    out: set[str] = set()
    for bi, bj in blocks:
        for z in range(Z_MIN, Z_FAR + 1):
            n = cells_per_tile(z)
            out.add(f"{z}:{bi * ed.BLOCK // n}:{bj * ed.BLOCK // n}")
    return sorted(out)


def _block_keys(rect: ed.Rect) -> list[tuple[int, int]]:
    b = ed.BLOCK
    return [
        (bi, bj)
        for bj in range(rect.y // b, (rect.y + rect.h - 1) // b + 1)
        for bi in range(rect.x // b, (rect.x + rect.w - 1) // b + 1)
    ]


class EditService:
    """One per app: a cache of worlds for edits and rendering edited tiles."""

    def __init__(self, worlds: int = WORLDS_KEPT) -> None:
        self._worlds = WorldCache(worlds)
        self._locks: dict[WorldSpec, threading.Lock] = {}
        self._guard = threading.Lock()

    def _world_lock(self, spec: WorldSpec) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(spec, threading.Lock())

    async def _run(self, spec: WorldSpec, fn: Any, *args: Any) -> Any:
        """``fn(world, *args)`` in a worker thread, alone on the world."""

        def call() -> Any:
            world = self._worlds.get(spec)
            with self._world_lock(spec):
                return fn(world, *args)

        return await asyncio.to_thread(call)

    # ------------------------------------------------------------------------------ overlay
    @staticmethod
    async def overlay(store: EditStore, world_id: str, rect: ed.Rect | None = None) -> ed.Overlay:
        """The stored overlay: every block, or those under ``rect``."""
        found = await store.blocks(world_id, None if rect is None else _block_keys(rect))
        out = ed.Overlay()
        for key, (data, version) in found.items():
            out.put_block(key, data, version)
        return out

    # ------------------------------------------------------------------------------- editing
    async def apply(
        self,
        store: EditStore,
        world: WorldRecord,
        user: User,
        request: EditRequest,
        stacks: Literal["new", "undo", "redo"] = "new",
    ) -> OpRecord:
        """Apply one operation; the stored record (its id is the new content version)."""
        spec = spec_for(world)
        async with store.locked(world.id) as token:
            version = await store.version(world.id)
            base = version if request.version is None else request.version
            if base > version:
                raise StaleVersionError(f"version {base} does not exist yet (now {version})")
            if stacks == "undo":
                request.target = await store.stack_top(world.id, user.id, "undo")
                if not request.target:
                    raise StaleVersionError("nothing to undo")
            elif stacks == "redo":
                request.target = await store.stack_top(world.id, user.id, "redo")
                if not request.target:
                    raise StaleVersionError("nothing to redo")
            variants = await self._run(spec, lambda w: w.model.size)
            op = ed.Op.build(
                version + 1,
                request.kind,
                rect=request.rect,
                cells=request.cells,
                target=request.target,
                variants=variants,
            )
            if op.kind == "rewind" and (op.target or 0) > version:
                raise StaleVersionError(f"version {op.target} does not exist (now {version})")
            area = op.area()
            after = base
            while area is not None and after < version:
                page = await store.ops(world.id, after=after)
                for later in page:
                    touched = later.changed or later.rect
                    if touched is not None and ed.Rect(*touched).overlaps(area.grow(1)):
                        raise StaleVersionError(
                            f"operation {later.id} changed this area after version {base}; "
                            "reload and try again"
                        )
                after = page[-1].id if page else version
            target_diff: ed.Diff | None = None
            if op.kind == "revert" and op.target is not None:
                raw = await store.diff(world.id, op.target)
                target_diff = ed.Diff.from_bytes(raw) if raw is not None else None
            # every cell the operation may write lies within REACH of its area (or of the
            # reverted operation's cells): only those blocks are read (a rewind reads all)
            reach = area if area is not None else target_diff.bbox() if target_diff else None
            overlay = await self.overlay(
                store, world.id, None if reach is None else reach.grow(REACH)
            )
            undone: list[ed.Diff] = []  # a rewind undoes the diffs after its target, newest first
            if op.kind == "rewind" and op.target is not None:
                for op_id in range(version, op.target, -1):
                    raw = await store.diff(world.id, op_id)
                    undone.append(ed.Diff.from_bytes(raw) if raw is not None else ed.Diff.empty())

            def compute(w: World) -> ed.Diff:
                return ed.compute(
                    w,
                    overlay,
                    op,
                    diff_of=lambda i: target_diff if i == op.target else None,
                    overlay_at=lambda v: ed.rolled_back(overlay, undone),
                )

            diff: ed.Diff = await self._run(spec, compute)
            touched_blocks = overlay.apply(diff, op.id)
            changed = diff.bbox()
            record = OpRecord(
                id=op.id,
                kind=op.kind,
                author=user.id,
                author_name=user.username,
                ts=time.time(),
                rect=None if op.rect is None else op.rect.as_list(),
                changed=None if changed is None else changed.as_list(),
                cells=[list(c) for c in op.cells] if op.kind == "paint" else
                [[c[0], c[1]] for c in op.cells],
                target=op.target,
                base_version=base,
                seed=str(ed.op_seed(world.seed, op.id)),
            )  # fmt: skip
            await store.commit(
                world.id,
                token,
                record,
                diff.to_bytes(),
                {k: overlay.block_bytes(k) for k in touched_blocks},
                stacks,
                _far_tiles(touched_blocks),
            )
        return record

    # ------------------------------------------------------------------------------- reading
    @staticmethod
    async def tile_version(store: EditStore, world_id: str, z: int, x: int, y: int) -> int:
        """The last operation that changed the cells of tile ``(z, x, y)`` (0: none)."""
        if z <= Z_FAR:
            return await store.far_version(world_id, z, x, y)
        n = cells_per_tile(z)
        versions = await store.block_versions(world_id, _block_keys(ed.Rect(x * n, y * n, n, n)))
        return max(versions, default=0)

    async def tile_png(self, store: EditStore, world: WorldRecord, z: int, x: int, y: int) -> bytes:
        """PNG of a tile with the overlay applied (far zooms: :meth:`_far_png`)."""
        n = cells_per_tile(z)
        rect = ed.Rect(x * n, y * n, n, n)
        if z <= Z_FAR:
            return await self._far_png(store, world, z, x, y)
        overlay = await self.overlay(store, world.id, rect)

        def draw(w: World) -> bytes:
            return render_cells(w, z, ed.content(w, overlay, rect), origin=(rect.x, rect.y))

        data: bytes = await self._run(spec_for(world), draw)
        return data

    async def _far_png(self, store: EditStore, world: WorldRecord, z: int, x: int, y: int) -> bytes:
        """A far tile: the summary, each pixel moved by the mean colour change (unlit cell
        colours, area-weighted) the edits made to the cells it covers."""
        n = cells_per_tile(z)
        per = n // TILE_PX  # cells along one pixel
        x0, y0, b = x * n, y * n, ed.BLOCK
        keys = [
            k for k in await store.block_keys(world.id)
            if x0 <= k[0] * b < x0 + n and y0 <= k[1] * b < y0 + n
        ]  # fmt: skip
        found = await store.blocks(world.id, keys)
        overlay = ed.Overlay()
        for key, (raw, version) in found.items():
            overlay.put_block(key, raw, version)

        def draw(w: World) -> bytes:
            rgb = tile_rgb(w, z, x, y).astype(np.int64)
            colours = palette_for(w).level(1)[:, 0, 0, :].astype(np.int64)  # (T, 3)
            delta = np.zeros((TILE_PX, TILE_PX, 3), dtype=np.int64)
            for (bi, bj), values in overlay.cells.items():
                if not (values >= 0).any():
                    continue
                generated = w.region(bi * b, bj * b, b, b)
                change = colours[ed.apply_overlay(generated, values)] - colours[generated]
                py = ((bj * b - y0) + np.arange(b)) // per
                px = ((bi * b - x0) + np.arange(b)) // per
                np.add.at(delta, (py[:, None], px[None, :]), change)
            out = np.clip(rgb + delta // (per * per), 0, 255).astype(np.uint8)
            return png_bytes(out, fast=True)

        data: bytes = await self._run(spec_for(world), draw)
        return data

    async def region_cells(
        self, store: EditStore, world: WorldRecord, doc: dict[str, Any]
    ) -> dict[str, Any]:
        """A region document (``cells`` row-major) with the overlay applied."""
        if not await store.version(world.id):
            return doc
        rect = ed.Rect(int(doc["x"]), int(doc["y"]), int(doc["width"]), int(doc["height"]))
        overlay = await self.overlay(store, world.id, rect)
        if not overlay.cells:
            return doc
        values, _ = overlay.window(rect)
        cells = np.asarray(doc["cells"], dtype=np.int32).reshape(rect.h, rect.w)
        doc["cells"] = ed.apply_overlay(cells, values).reshape(-1).astype(np.int64).tolist()
        return doc

    async def export_png(
        self, store: EditStore, world: WorldRecord, x: int, y: int, w: int, h: int, scale: int
    ) -> bytes | None:
        """The export picture with edits, or None when the window has none (use the pool's)."""
        rect = ed.Rect(x, y, w, h)
        if not await store.version(world.id):
            return None
        overlay = await self.overlay(store, world.id, rect)
        if not overlay.cells:
            return None

        def draw(wd: World) -> bytes:
            shade = cell_relief(wd, x, y, w, h)
            return png_bytes(palette_for(wd).draw(ed.content(wd, overlay, rect), scale, shade))

        data: bytes = await self._run(spec_for(world), draw)
        return data

    async def legend_size(self, world: WorldRecord) -> int:
        """The number of variants a paint may use."""
        size: int = await self._run(spec_for(world), lambda w: w.model.size)
        return size
