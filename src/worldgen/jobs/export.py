"""What a job computes: a large PNG export assembled band by band, and tiles pre-rendered.

Both are pure planning (:func:`plan_export`, :func:`plan_tiles`) plus coroutines that drive the
generation pool (:class:`~worldgen.world.pool.WorkerPool`: ``submit_export``, ``submit_tile``,
``submit_version``) and write through the store. An export of up to :data:`MAX_JOB_EXPORT_PX` px
a side is cut into bands of rows; each band into pieces the pool can export in one call
(:func:`~worldgen.world.api.export_png`: at most 4096 cells and 4096 px a side). The pieces of a
band are computed in parallel, decoded, joined, and their rows streamed into one PNG
(:class:`~worldgen.jobs.png.PngWriter`) whose bytes are appended to the job's partial result, so
memory holds about one band (``band_px`` rows of the picture) whatever the picture's size. A
cell's colour and relief depend only on the world and the cell, so the joined picture has the
pixels of one big export.

Edits: :class:`EditedContent` is the one way the world's edits are applied to what is drawn (the
web app's tiles, regions and exports, these jobs and ``worldgen region --world``). An export's
pieces under edited blocks and pre-rendered or archived tiles over edited cells are drawn by it,
in this process; the others by the pool. A pre-rendered edited tile goes under the cache key the
tile route reads (:func:`content_version`).
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np
import numpy.typing as npt
from PIL import Image

from worldgen.jobs.png import PngWriter
from worldgen.store.edits import EditStore
from worldgen.world import edits as ed
from worldgen.world.blocks import World
from worldgen.world.pool import WorldCache
from worldgen.world.render import Z_FAR, cells_per_tile
from worldgen.world.spec import MAX_EXPORT_PX, MAX_REGION_SIDE, WorldSpec

__all__ = [
    "BAND_PX",
    "MAX_JOB_EXPORT_PX",
    "MAX_PRERENDER_TILES",
    "Band",
    "EditedContent",
    "EditedPiece",
    "EditedTile",
    "GenerationPool",
    "Piece",
    "content_version",
    "plan_export",
    "plan_tiles",
    "prerender_tiles",
    "write_export",
]

MAX_JOB_EXPORT_PX = 16384
"""Largest side (px) of an export job's picture."""
MAX_PRERENDER_TILES = 4096
"""Most tiles one pre-render job may compute."""
BAND_PX = 1024
"""Rows of the picture computed and written at a time (16384 px wide: 48 MiB of RGB)."""

Progress = Callable[[int, str], Awaitable[None]]
"""``progress(percent, stage)``: report how far a job is."""
Write = Callable[[bytes], Awaitable[None]]
"""Append bytes to the job's result."""
EditedPiece = Callable[["Piece"], Awaitable["npt.NDArray[np.uint8] | None"]]
"""Draws a piece with the world's edits, or None when it has none
(:meth:`EditedContent.picture`)."""
EditedTile = Callable[[int, int, int], Awaitable["tuple[int, bytes] | None"]]
"""``(z, x, y)`` → the tile's edit version and PNG, or None when its cells have no edit
(:meth:`EditedContent.edited_tile`)."""
T = TypeVar("T")


class GenerationPool(Protocol):
    """What a job needs of :class:`~worldgen.world.pool.WorkerPool`."""

    workers: int
    """Processes: each band is cut into at least this many pieces, computed in parallel."""

    def submit_export(
        self, spec: WorldSpec, x: int, y: int, w: int, h: int, scale: int
    ) -> Future[bytes]: ...

    def submit_tile(self, world: WorldSpec, z: int, x: int, y: int) -> Future[bytes]: ...

    def submit_version(self, spec: WorldSpec) -> Future[str]: ...


@dataclass(frozen=True, slots=True)
class Piece:
    """A window of cells exported in one pool call."""

    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True, slots=True)
class Band:
    """Rows of cells ``y .. y + h - 1`` of the window, as pieces from left to right."""

    y: int
    h: int
    pieces: tuple[Piece, ...]


def plan_export(
    x: int,
    y: int,
    w: int,
    h: int,
    scale: int,
    *,
    band_px: int = BAND_PX,
    piece_px: int = MAX_EXPORT_PX,
    parallel: int = 1,
) -> list[Band]:
    """The bands and pieces of an export of ``w`` x ``h`` cells at ``scale`` px per cell: bands
    of at most ``band_px`` px (at least one row of cells), pieces at most ``piece_px`` px and
    4096 cells wide, and at least ``parallel`` pieces a band (as the width allows), of equal
    widths but the last."""
    widest = max(1, min(MAX_REGION_SIDE, piece_px // scale))
    count = max(-(-w // widest), min(parallel, w))
    piece_w = -(-w // count)
    band_h = max(1, min(MAX_REGION_SIDE, band_px // scale))
    bands = []
    for by in range(y, y + h, band_h):
        bh = min(band_h, y + h - by)
        pieces = tuple(
            Piece(px, by, min(piece_w, x + w - px), bh) for px in range(x, x + w, piece_w)
        )
        bands.append(Band(by, bh, pieces))
    return bands


def _rgb(png: bytes) -> npt.NDArray[np.uint8]:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


async def write_export(
    pool: GenerationPool,
    spec: WorldSpec,
    window: tuple[int, int, int, int],
    scale: int,
    write: Write,
    progress: Progress,
    *,
    band_px: int = BAND_PX,
    piece_px: int = MAX_EXPORT_PX,
    edited: EditedPiece | None = None,
) -> None:
    """Compute the export of ``window`` (x, y, w, h cells) and ``write`` its PNG in order;
    ``edited(piece)`` draws a piece that has edits (None: it has none, the pool draws it)."""
    x, y, w, h = window
    bands = plan_export(
        x, y, w, h, scale, band_px=band_px, piece_px=piece_px, parallel=pool.workers
    )
    writer = PngWriter(w * scale, h * scale)
    await write(writer.header())
    total = sum(len(b.pieces) for b in bands)
    done = 0

    async def piece_rgb(p: Piece) -> npt.NDArray[np.uint8]:
        drawn = None if edited is None else await edited(p)
        if drawn is not None:
            return drawn
        png = await asyncio.wrap_future(pool.submit_export(spec, p.x, p.y, p.w, p.h, scale))
        return _rgb(png)

    for index, band in enumerate(bands):
        await progress(99 * done // total, f"band {index + 1} of {len(bands)}")
        rgb = np.concatenate(await asyncio.gather(*map(piece_rgb, band.pieces)), axis=1)
        data = writer.band(rgb)
        del rgb
        if data:
            await write(data)
        done += len(band.pieces)
    await progress(99, "finishing")
    await write(writer.end())


def content_version(version: str, edited: int) -> str:
    """The version part of a tile's cache key and ETag: the generated content's ``version``, and
    the last operation that changed the tile's cells when there is one (``edited`` > 0)."""
    return f"{version}-e{edited}" if edited else version


class EditedContent:
    """A world's content with its edits, read from :mod:`worldgen.store.edits` and drawn by the
    pure :mod:`worldgen.world.edits` on this process's copies of the worlds: the one way map tiles,
    regions and exports (of the web app, of jobs and of the CLI) apply the edit overlay.

    Drawing runs in a thread, alone on its world (a world's block cache is plain Python state).
    """

    def __init__(self, worlds: WorldCache) -> None:
        self.worlds = worlds
        self._locks: dict[WorldSpec, threading.Lock] = {}
        self._guard = threading.Lock()

    def _world_lock(self, spec: WorldSpec) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(spec, threading.Lock())

    async def run(self, spec: WorldSpec, fn: Callable[[World], T]) -> T:
        """``fn(world)`` in a worker thread, alone on the world of ``spec``."""

        def call() -> T:
            world = self.worlds.get(spec)
            with self._world_lock(spec):
                return fn(world)

        return await asyncio.to_thread(call)

    @staticmethod
    async def overlay(edits: EditStore, world_id: str, rect: ed.Rect | None = None) -> ed.Overlay:
        """The stored overlay: every block, or the blocks under ``rect``."""
        found = await edits.blocks(world_id, None if rect is None else rect.blocks())
        return ed.Overlay.from_blocks(found)

    @staticmethod
    async def tile_version(edits: EditStore, world_id: str, z: int, x: int, y: int) -> int:
        """The last operation that changed the cells of tile ``(z, x, y)`` (0: none)."""
        if z <= Z_FAR:
            return await edits.far_version(world_id, z, x, y)
        versions = await edits.block_versions(world_id, ed.Rect.of_tile(z, x, y).blocks())
        return max(versions, default=0)

    async def tile_png(
        self, edits: EditStore, world_id: str, spec: WorldSpec, z: int, x: int, y: int
    ) -> bytes:
        """PNG of tile ``(z, x, y)`` with the edits (:func:`~worldgen.world.edits.tile_png`)."""
        rect = ed.Rect.of_tile(z, x, y)
        if z <= Z_FAR:  # a far tile covers many blocks: read the edited ones under it
            b = ed.BLOCK
            keys = [
                k for k in await edits.block_keys(world_id)
                if rect.x <= k[0] * b < rect.x + rect.w and rect.y <= k[1] * b < rect.y + rect.h
            ]  # fmt: skip
            overlay = ed.Overlay.from_blocks(await edits.blocks(world_id, keys))
        else:
            overlay = await self.overlay(edits, world_id, rect)
        return await self.run(spec, lambda w: ed.tile_png(w, overlay, z, x, y))

    async def edited_tile(
        self, edits: EditStore, world_id: str, spec: WorldSpec, z: int, x: int, y: int
    ) -> tuple[int, bytes] | None:
        """``(tile version, PNG)`` of a tile whose cells were edited; None when they were not
        (the generated tile is the world's)."""
        edited = await self.tile_version(edits, world_id, z, x, y)
        if not edited:
            return None
        return edited, await self.tile_png(edits, world_id, spec, z, x, y)

    async def picture(
        self, edits: EditStore, world_id: str, spec: WorldSpec, rect: ed.Rect, scale: int
    ) -> npt.NDArray[np.uint8] | None:
        """The export pixels of ``rect`` with the edits, or None when no edit lies under it (the
        pool draws the generated picture: the same pixels)."""
        overlay = await self.overlay(edits, world_id, rect)
        if not overlay.cells:
            return None
        return await self.run(spec, lambda w: ed.picture(w, overlay, rect, scale))

    async def cells(
        self, edits: EditStore, world_id: str, rect: ed.Rect, generated: npt.NDArray[np.integer]
    ) -> npt.NDArray[np.int32]:
        """The cells ``(h, w)`` of ``rect``: its ``generated`` cells with the edits on top."""
        values, _ = (await self.overlay(edits, world_id, rect)).window(rect)
        return ed.apply_overlay(np.asarray(generated).reshape(rect.h, rect.w), values)


def plan_tiles(
    x: int, y: int, w: int, h: int, z_min: int, z_max: int
) -> list[tuple[int, int, int]]:
    """Every map tile ``(z, tx, ty)`` that covers a cell of the window, zoom ``z_min`` first."""
    tiles: list[tuple[int, int, int]] = []
    for z in range(z_min, z_max + 1):
        n = cells_per_tile(z)
        for ty in range(y // n, (y + h - 1) // n + 1):
            tiles.extend((z, tx, ty) for tx in range(x // n, (x + w - 1) // n + 1))
    return tiles


async def prerender_tiles(
    pool: GenerationPool,
    spec: WorldSpec,
    tiles: list[tuple[int, int, int]],
    put: Callable[[str, int, int, int, bytes], Awaitable[None]],
    progress: Progress,
    *,
    batch: int = 8,
    edited: EditedTile | None = None,
) -> None:
    """Compute ``tiles`` and ``put(version, z, x, y, png)`` each (``version`` is the tile's
    cache-key version, :func:`content_version`); ``edited(z, x, y)`` draws a tile whose cells
    were edited (None: they were not, the pool draws it)."""
    version = await asyncio.wrap_future(pool.submit_version(spec))

    async def one(z: int, tx: int, ty: int) -> tuple[str, bytes]:
        drawn = None if edited is None else await edited(z, tx, ty)
        if drawn is not None:
            return content_version(version, drawn[0]), drawn[1]
        return version, await asyncio.wrap_future(pool.submit_tile(spec, z, tx, ty))

    for start in range(0, len(tiles), batch):
        await progress(99 * start // len(tiles), f"tile {start + 1} of {len(tiles)}")
        part = tiles[start : start + batch]
        done = await asyncio.gather(*(one(*tile) for tile in part))
        for (z, tx, ty), (key, png) in zip(part, done, strict=True):
            await put(key, z, tx, ty, png)
