"""The app's side of edits: applies operations (:mod:`worldgen.world.edits`) to a world under its
lock in Redis (:mod:`worldgen.store.edits`), and draws what the overlay changes.

* :meth:`EditService.apply` serialises edits per world (the store's lock, then a ``WATCH``ed
  ``MULTI``). An edit carries the version it was made on; it is *rebased* onto the current version
  when no operation since touched its area (grown by one cell, its ring), else refused with 409
  (:class:`~worldgen.errors.StaleVersionError`). A version from the future is a 409 too.
* Solves run where the generator computes content (:meth:`Generator.edit
  <worldgen.web.generation.Generator.edit>`: a process of the one pool in production), from the
  overlay's stored blocks around the operation, so no solve holds this process's event loop (a
  256² regenerate is one kernel call of ~0.2 s, and the native kernels keep the GIL through it).
* Tiles, regions and exports with edits are drawn by
  :class:`~worldgen.jobs.export.EditedContent` in threads of this process (the one way the
  overlay is applied: jobs and the CLI use it too). A cell-zoom tile whose blocks were edited
  is the generated cells with the overlay on top; its cache key carries the last operation id
  that changed those blocks (:meth:`EditService.tile_version`), so no cache can serve it from
  before an edit. A far-zoom tile (z <= -3: the predicted summary) over edited blocks is the
  summary plus, per pixel, the mean colour change the edits made to the cells it covers; its
  key carries the last operation that changed any of its cells (``bverz``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from worldgen.errors import StaleVersionError
from worldgen.jobs.export import EditedContent
from worldgen.store.edits import EditStore, OpRecord
from worldgen.store.worlds import WorldRecord
from worldgen.web.auth.sessions import User
from worldgen.web.generation import Generator, spec_for
from worldgen.world import edits as ed
from worldgen.world.pool import WorldCache
from worldgen.world.render import Z_FAR, Z_MIN, cells_per_tile, png_bytes
from worldgen.world.spec import WorldSpec

__all__ = ["Applied", "EditRequest", "EditService"]

WORLDS_KEPT = 8
REACH = max(ed.REPAIR_RADII) + 8
"""Cells around an operation's area it may change (ring, seam repair): the overlay blocks read."""


Reveal = dict[str, int | str]
"""An edit's reveal: the changed cells in the order the solver decided them
(:func:`~worldgen.world.edits.reveal`)."""


@dataclass(frozen=True)
class Applied:
    """An applied operation: its record and its reveal (None: nothing changed)."""

    record: OpRecord
    reveal: Reveal | None


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


class EditService:
    """One per app: applies edits, and draws what they change through the one
    :class:`~worldgen.jobs.export.EditedContent` (its own cache of worlds)."""

    def __init__(self, worlds: int = WORLDS_KEPT) -> None:
        self.content = EditedContent(WorldCache(worlds))

    async def _run(self, spec: WorldSpec, fn: Any, *args: Any) -> Any:
        """``fn(world, *args)`` in a worker thread, alone on the world."""
        return await self.content.run(spec, lambda world: fn(world, *args))

    # ------------------------------------------------------------------------------ overlay
    @staticmethod
    async def overlay(store: EditStore, world_id: str, rect: ed.Rect | None = None) -> ed.Overlay:
        """The stored overlay: every block, or those under ``rect``."""
        return await EditedContent.overlay(store, world_id, rect)

    # ------------------------------------------------------------------------------- editing
    async def apply(
        self,
        store: EditStore,
        world: WorldRecord,
        user: User,
        request: EditRequest,
        stacks: Literal["new", "undo", "redo"] = "new",
        *,
        generator: Generator,
    ) -> Applied:
        """Apply one operation: the stored record (its id is the new content version) and how
        clients reveal the change (:func:`~worldgen.world.edits.reveal`)."""
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
            target: bytes | None = None
            if op.kind == "revert" and op.target is not None:
                target = await store.diff(world.id, op.target)
            target_box = None if target is None else ed.Diff.from_bytes(target).bbox()
            # every cell the operation may write lies within REACH of its area (or of the
            # reverted operation's cells): only those blocks are read (a rewind reads all)
            reach = area if area is not None else target_box
            found = await store.blocks(
                world.id, None if reach is None else reach.grow(REACH).blocks()
            )
            undone: list[bytes] = []  # a rewind undoes the diffs after its target, newest first
            if op.kind == "rewind" and op.target is not None:
                for op_id in range(version, op.target, -1):
                    raw = await store.diff(world.id, op_id)
                    undone.append(raw if raw is not None else ed.Diff.empty().to_bytes())
            # solved by the generator: in a pool process, never in this one's event loop
            packed, reveal = await generator.edit(spec, op, found, target, undone)
            diff = await asyncio.to_thread(ed.Diff.from_bytes, packed)
            overlay = ed.Overlay.from_blocks(found)
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
                packed,
                {k: overlay.block_bytes(k) for k in touched_blocks},
                stacks,
                _far_tiles(touched_blocks),
            )
        return Applied(record, reveal)

    # ------------------------------------------------------------------------------- reading
    @staticmethod
    async def tile_version(store: EditStore, world_id: str, z: int, x: int, y: int) -> int:
        """The last operation that changed the cells of tile ``(z, x, y)`` (0: none)."""
        return await EditedContent.tile_version(store, world_id, z, x, y)

    async def tile_png(self, store: EditStore, world: WorldRecord, z: int, x: int, y: int) -> bytes:
        """PNG of a tile with the overlay applied (:func:`~worldgen.world.edits.tile_png`)."""
        return await self.content.tile_png(store, world.id, spec_for(world), z, x, y)

    async def region_cells(
        self, store: EditStore, world: WorldRecord, doc: dict[str, Any]
    ) -> dict[str, Any]:
        """A region document (``cells`` row-major) with the overlay applied."""
        if not await store.version(world.id):
            return doc
        rect = ed.Rect(int(doc["x"]), int(doc["y"]), int(doc["width"]), int(doc["height"]))
        cells = await self.content.cells(store, world.id, rect, np.asarray(doc["cells"]))
        doc["cells"] = cells.reshape(-1).astype(np.int64).tolist()
        return doc

    async def export_png(
        self, store: EditStore, world: WorldRecord, x: int, y: int, w: int, h: int, scale: int
    ) -> bytes | None:
        """The export picture with edits, or None when the window has none (use the pool's)."""
        if not await store.version(world.id):
            return None
        rect = ed.Rect(x, y, w, h)
        rgb = await self.content.picture(store, world.id, spec_for(world), rect, scale)
        return None if rgb is None else png_bytes(rgb)

    async def legend_size(self, world: WorldRecord) -> int:
        """The number of variants a paint may use."""
        size: int = await self._run(spec_for(world), lambda w: w.model.size)
        return size
