"""256-pixel map tiles of a :class:`World`; PNG bytes are a pure function of (world, z, x, y).

Zoom convention (Leaflet-style: larger z = more detail; ``z = 0`` is the opening zoom). One world
at every zoom: every zoom where a pixel covers at most one cell draws the *final* cells (the top
refinement layer), box-filtered; farther zooms draw a summary that predicts them.

==========  ==============  =============  ==================================================
z           cells per tile  pixels / cell  drawn from
==========  ==============  =============  ==================================================
2 (detail)  16              16             final cells, variant pictures
1 .. -2     32 .. 256       8 .. 1         final cells, pictures box-filtered (area mean)
-3 .. -10   512 .. 2**16    < 1            the summary (:mod:`.summary`): the predicted mean
                                           colour of the cells each pixel covers
==========  ==============  =============  ==================================================

Tile ``(z, x, y)`` covers cells ``[x*n, (x+1)*n) x [y*n, (y+1)*n)`` with ``n`` the cells per tile,
so a detail tile is exactly one aligned S=16 block area. Every variant has a 16-px picture
(:class:`~worldgen.world.model.WorldModel`: a tile image resampled, or a sample pattern's flat
colour). At the cell zooms a pixel is the floored area mean of the picture pixels it covers, so
a z = k tile equals the 2x box downsample of its four z = k+1 tiles within 1 per channel (the
floors), and an export at ``px`` pixels per cell draws the same pixels as the tile. The base
layer and the lower refinement layers are scaffolding no zoom shows. PNGs use fixed compression
settings and carry no metadata.
"""

from __future__ import annotations

import io
import weakref
import zlib

import numpy as np
import numpy.typing as npt
from PIL import Image

from worldgen.errors import InputError
from worldgen.world.blocks import MAX_COORD, World
from worldgen.world.model import CELL_PX
from worldgen.world.summary import far_rgb

TILE_PX = 256
Z_DETAIL = 2
Z_FAR = -3
"""Zooms at or below this draw the summary (a pixel covers more than one cell)."""
Z_MIN = -10

U8Array = npt.NDArray[np.uint8]


def cells_per_tile(z: int) -> int:
    """Cells along one side of a map tile at zoom ``z``."""
    return CELL_PX << (Z_DETAIL - z)


def _coverage(px: int) -> npt.NDArray[np.int64]:
    """``(px, 16)`` overlap of output pixel p with picture pixel i, in units of 1/px pixel.

    Output pixel p spans picture pixels ``[p*16/px, (p+1)*16/px)``; scaled by ``px`` both ends are
    integers, and every row sums to 16.
    """
    p = np.arange(px, dtype=np.int64)[:, None]
    i = np.arange(CELL_PX, dtype=np.int64)[None, :]
    lo = np.maximum(p * CELL_PX, i * px)
    hi = np.minimum((p + 1) * CELL_PX, (i + 1) * px)
    out: npt.NDArray[np.int64] = np.maximum(hi - lo, 0)
    return out


def box_filter(images: npt.NDArray[np.integer], px: int) -> U8Array:
    """``(T, 16, 16, 3)`` pictures reduced to ``(T, px, px, 3)``: area-weighted mean, floored.

    Integer arithmetic only. For ``px`` dividing 16 this is the plain mean of each
    ``16/px``-square of pixels.
    """
    if not 1 <= px <= CELL_PX:
        raise InputError(f"pixels per cell must be in 1..{CELL_PX}, got {px}")
    c = _coverage(px)
    img = np.asarray(images, dtype=np.int64)
    rows = np.tensordot(c, img, axes=([1], [1]))  # (px, T, 16, 3)
    both = np.tensordot(c, rows, axes=([1], [2]))  # (px, px, T, 3): [q, p, t, c]
    boxed = both.transpose(2, 1, 0, 3) // (CELL_PX * CELL_PX)
    return np.ascontiguousarray(boxed, dtype=np.uint8)


class Palette:
    """The model's 16-px pictures, box-filtered: ``level(p)`` is ``(T, p, p, 3)`` for p in 1..16.

    ``levels`` holds the sizes computed so far (16, 8, 4, 2 and 1 from the start).
    """

    def __init__(self, world: World) -> None:
        model = world.model
        if model.images is None:
            raise InputError(
                f"{model.noun} {model.name} was loaded without images; cannot render it"
            )
        self._img = model.images
        self.levels: dict[int, U8Array] = {}
        for p in (16, 8, 4, 2, 1):
            self.levels[p] = box_filter(self._img, p)

    def level(self, px: int) -> U8Array:
        """The pictures at ``px`` (1..16) pixels per cell, ``(T, px, px, 3)`` uint8."""
        got = self.levels.get(px)
        if got is None:
            got = self.levels[px] = box_filter(self._img, px)
        return got

    def draw(self, grid: npt.NDArray[np.integer], px: int) -> U8Array:
        """RGB image ``(H*px, W*px, 3)`` of a variant-id grid at ``px`` pixels per cell."""
        h, w = grid.shape
        cells = self.level(px)[np.asarray(grid)]  # (H, W, px, px, 3)
        return np.ascontiguousarray(cells.transpose(0, 2, 1, 3, 4).reshape(h * px, w * px, 3))


# One palette per world object (a world's pictures never change).
_PALETTES: weakref.WeakKeyDictionary[World, Palette] = weakref.WeakKeyDictionary()


def palette_for(world: World) -> Palette:
    """The (memoised) palette of ``world``."""
    found = _PALETTES.get(world)
    if found is None:
        found = _PALETTES[world] = Palette(world)
    return found


def tile_window(z: int, x: int, y: int) -> tuple[int, int, int]:
    """``(x0, y0, n)``: the top-left cell and side in cells of tile ``(z, x, y)``; InputError for a
    zoom out of range or a tile outside the world."""
    if not Z_MIN <= z <= Z_DETAIL:
        raise InputError(f"zoom z must be in {Z_MIN}..{Z_DETAIL} (z=0 opens the map), got {z}")
    n = cells_per_tile(z)
    x0, y0 = x * n, y * n
    if max(abs(x0), abs(y0), abs(x0 + n), abs(y0 + n)) > MAX_COORD:
        raise InputError(f"tile ({z}, {x}, {y}) lies outside the world (|cell| <= 2**53)")
    return x0, y0, n


def cells_rgb(
    world: World, z: int, cells: npt.NDArray[np.integer], palette: Palette | None = None
) -> U8Array:
    """The RGB pixels of a cell-zoom tile (``z > Z_FAR``) from its ``(n, n)`` final cells."""
    n = cells_per_tile(z)
    if z <= Z_FAR or np.shape(cells) != (n, n):
        raise InputError(f"a zoom-{z} tile is drawn from {n}x{n} cells, got {np.shape(cells)}")
    return (palette or palette_for(world)).draw(cells, TILE_PX // n)


def tile_rgb(world: World, z: int, x: int, y: int, palette: Palette | None = None) -> U8Array:
    """The RGB pixels ``(256, 256, 3)`` of map tile ``(z, x, y)``."""
    x0, y0, n = tile_window(z, x, y)
    if z > Z_FAR:
        return cells_rgb(world, z, world.region(x0, y0, n, n), palette)
    return far_rgb(world, x0, y0, TILE_PX, n // TILE_PX)


def png_bytes(rgb: U8Array, *, fast: bool = False) -> bytes:
    """Deterministic PNG encoding (fixed settings, no metadata).

    Default: zlib level 6. ``fast`` (far-zoom tiles): level 1 with run-length matching only, which
    is several times faster on their run-rich pixels (zlib level 6 alone took 14-20 ms per tile
    at z <= -5) at a similar size.
    """
    buf = io.BytesIO()
    options = {"compress_level": 1, "compress_type": zlib.Z_RLE} if fast else {"compress_level": 6}
    Image.fromarray(rgb, "RGB").save(buf, format="PNG", optimize=False, **options)
    return buf.getvalue()


def render_tile(world: World, z: int, x: int, y: int, palette: Palette | None = None) -> bytes:
    """PNG bytes of map tile ``(z, x, y)`` (far zooms, ``z <= Z_FAR``, use the fast encoding)."""
    return png_bytes(tile_rgb(world, z, x, y, palette), fast=z <= Z_FAR)


def render_cells(world: World, z: int, cells: npt.NDArray[np.integer]) -> bytes:
    """PNG bytes of a cell-zoom tile drawn from its final cells (the same bytes as
    :func:`render_tile` when ``cells`` are the tile's): how the pool draws tiles whose cells it
    computed in pieces."""
    return png_bytes(cells_rgb(world, z, cells))


def region_rgb(world: World, grid: npt.NDArray[np.integer], max_px: int = 4096) -> U8Array:
    """RGB picture of a region grid: 16 px per cell, halved until it fits ``max_px``."""
    h, w = grid.shape
    px = CELL_PX
    while px > 1 and max(h, w) * px > max_px:
        px //= 2
    return palette_for(world).draw(grid, px)
