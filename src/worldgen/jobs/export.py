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
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
from PIL import Image

from worldgen.jobs.png import PngWriter
from worldgen.store.edits import EditStore
from worldgen.world import edits as ed
from worldgen.world.pool import WorldCache
from worldgen.world.render import cell_relief, cells_per_tile, palette_for
from worldgen.world.spec import MAX_EXPORT_PX, MAX_REGION_SIDE, WorldSpec

__all__ = [
    "BAND_PX",
    "MAX_JOB_EXPORT_PX",
    "MAX_PRERENDER_TILES",
    "Band",
    "EditedPiece",
    "EditedPieces",
    "GenerationPool",
    "Piece",
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
"""Draws a piece with the world's edits, or None when it has none (:class:`EditedPieces`)."""


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


class EditedPieces:
    """Pieces of an export drawn with the world's edits (the overlay of
    :mod:`worldgen.world.edits`, read from :mod:`worldgen.store.edits`): a piece under edited
    blocks is drawn here, in a thread, on this process's copy of the world; the others are left
    to the pool. Draws one piece at a time (a world's block cache is plain Python state)."""

    def __init__(
        self, edits: EditStore, world_id: str, spec: WorldSpec, scale: int, worlds: WorldCache
    ) -> None:
        self.edits = edits
        self.world_id = world_id
        self.spec = spec
        self.scale = scale
        self.worlds = worlds
        self._lock = threading.Lock()

    async def __call__(self, piece: Piece) -> npt.NDArray[np.uint8] | None:
        b = ed.BLOCK
        keys = [
            (bi, bj)
            for bj in range(piece.y // b, (piece.y + piece.h - 1) // b + 1)
            for bi in range(piece.x // b, (piece.x + piece.w - 1) // b + 1)
        ]
        found = await self.edits.blocks(self.world_id, keys)
        overlay = ed.Overlay()
        for key, (data, version) in found.items():
            overlay.put_block(key, data, version)
        if not overlay.cells:
            return None
        rect = ed.Rect(piece.x, piece.y, piece.w, piece.h)

        def draw() -> npt.NDArray[np.uint8]:
            with self._lock:
                world = self.worlds.get(self.spec)
                shade = cell_relief(world, piece.x, piece.y, piece.w, piece.h)
                return palette_for(world).draw(ed.content(world, overlay, rect), self.scale, shade)

        return await asyncio.to_thread(draw)


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
) -> None:
    """Compute ``tiles`` and ``put(version, z, x, y, png)`` each into the tile cache."""
    version = await asyncio.wrap_future(pool.submit_version(spec))
    for start in range(0, len(tiles), batch):
        await progress(99 * start // len(tiles), f"tile {start + 1} of {len(tiles)}")
        part = tiles[start : start + batch]
        pngs = await asyncio.gather(
            *(asyncio.wrap_future(pool.submit_tile(spec, z, tx, ty)) for z, tx, ty in part)
        )
        for (z, tx, ty), png in zip(part, pngs, strict=True):
            await put(version, z, tx, ty, png)
