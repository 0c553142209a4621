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
from worldgen.world import macro
from worldgen.world.blocks import MAX_COORD, World
from worldgen.world.model import CELL_PX
from worldgen.world.summary import far_rgb, relief_for

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


def _box_sums(images: npt.NDArray[np.integer], px: int) -> npt.NDArray[np.int64]:
    """``(T, px, px, 3)`` area-weighted sums of the pictures' pixels, in units of 1/256 of a
    colour value (each output pixel's weights add up to 16 x 16)."""
    if not 1 <= px <= CELL_PX:
        raise InputError(f"pixels per cell must be in 1..{CELL_PX}, got {px}")
    c = _coverage(px)
    img = np.asarray(images, dtype=np.int64)
    rows = np.tensordot(c, img, axes=([1], [1]))  # (px, T, 16, 3)
    both = np.tensordot(c, rows, axes=([1], [2]))  # (px, px, T, 3): [q, p, t, c]
    return np.ascontiguousarray(both.transpose(2, 1, 0, 3))


def box_filter(images: npt.NDArray[np.integer], px: int) -> U8Array:
    """``(T, 16, 16, 3)`` pictures reduced to ``(T, px, px, 3)``: area-weighted mean, floored.

    Integer arithmetic only. For ``px`` dividing 16 this is the plain mean of each
    ``16/px``-square of pixels.
    """
    return (_box_sums(images, px) // (CELL_PX * CELL_PX)).astype(np.uint8)


class Palette:
    """The model's 16-px pictures, box-filtered: ``level(p)`` is ``(T, p, p, 3)`` for p in 1..16.

    ``levels`` holds the sizes computed so far, each on first use: a tile needs one size (a
    shaded world's cell zooms none: they light the box sums), and all five took 12-23 ms of a
    ``worldgen tile`` process.
    """

    def __init__(self, world: World) -> None:
        model = world.model
        if model.images is None:
            raise InputError(
                f"{model.noun} {model.name} was loaded without images; cannot render it"
            )
        self._img = model.images
        self._sums: dict[int, npt.NDArray[np.int64]] = {}
        self.levels: dict[int, U8Array] = {}

    def level(self, px: int) -> U8Array:
        """The pictures at ``px`` (1..16) pixels per cell, ``(T, px, px, 3)`` uint8."""
        got = self.levels.get(px)
        if got is None:
            got = self.levels[px] = box_filter(self._img, px)
        return got

    def draw(
        self,
        grid: npt.NDArray[np.integer],
        px: int,
        shade: npt.NDArray[np.integer] | None = None,
    ) -> U8Array:
        """RGB image ``(H*px, W*px, 3)`` of a variant-id grid at ``px`` pixels per cell, each
        cell lit by its ``shade`` factor (``(H, W)``, :func:`~worldgen.world.macro.lit`) if
        given: the unfloored box sums are lit, then floored once, so a lit tile is still the
        2x downsample of the four lit tiles under it within 1 per channel."""
        h, w = grid.shape
        if shade is None:
            cells = self.level(px)[np.asarray(grid)]  # (H, W, px, px, 3)
        else:
            sums = self._sums.get(px)
            if sums is None:
                sums = self._sums[px] = _box_sums(self._img, px)
            factor = np.asarray(shade, dtype=np.int64)[:, :, None, None, None]
            white = 255 * CELL_PX * CELL_PX
            lit = macro.lit(sums[np.asarray(grid)], factor, white) // (CELL_PX * CELL_PX)
            cells = lit.astype(np.uint8)
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


def cell_relief(world: World, x0: int, y0: int, w: int, h: int) -> npt.NDArray[np.int64] | None:
    """Each cell's shade factor ``(h, w)`` in the window at ``(x0, y0)`` (slope over one cell),
    or None for a world that is never shaded (:func:`~worldgen.world.summary.relief_for`)."""
    xs = np.arange(x0, x0 + w, dtype=np.int64)
    ys = np.arange(y0, y0 + h, dtype=np.int64)
    return relief_for(world, xs, ys)


def cells_rgb(
    world: World,
    z: int,
    cells: npt.NDArray[np.integer],
    palette: Palette | None = None,
    origin: tuple[int, int] | None = None,
) -> U8Array:
    """The RGB pixels of a cell-zoom tile (``z > Z_FAR``) from its ``(n, n)`` final cells, whose
    top-left cell is ``origin`` (it places the relief; without it cells are drawn unlit, which
    for a shaded world is not the map's picture)."""
    n = cells_per_tile(z)
    if z <= Z_FAR or np.shape(cells) != (n, n):
        raise InputError(f"a zoom-{z} tile is drawn from {n}x{n} cells, got {np.shape(cells)}")
    shade = None if origin is None else cell_relief(world, origin[0], origin[1], n, n)
    return (palette or palette_for(world)).draw(cells, TILE_PX // n, shade)


def tile_rgb(world: World, z: int, x: int, y: int, palette: Palette | None = None) -> U8Array:
    """The RGB pixels ``(256, 256, 3)`` of map tile ``(z, x, y)``."""
    x0, y0, n = tile_window(z, x, y)
    if z > Z_FAR:
        return cells_rgb(world, z, world.region(x0, y0, n, n), palette, (x0, y0))
    return far_rgb(world, x0, y0, TILE_PX, n // TILE_PX)


def png_bytes(rgb: U8Array, *, fast: bool = False) -> bytes:
    """Deterministic PNG encoding (fixed settings, no metadata).

    Default: zlib level 6. ``fast`` (far-zoom tiles): level 1 with run-length matching only, which
    is several times faster on their run-rich pixels (zlib level 6 alone took 14-20 ms per tile
    at z <= -5) at a similar size.
    """
    buf = io.BytesIO()
    # The format comes from the buffer's name: given as format="PNG", Pillow first imports its
    # BMP, GIF, JPEG and PPM plugins (JPEG's imports subprocess), ~8 ms of a process's first tile.
    buf.name = "tile.png"
    options = {"compress_level": 1, "compress_type": zlib.Z_RLE} if fast else {"compress_level": 6}
    Image.fromarray(rgb, "RGB").save(buf, format=None, optimize=False, **options)
    return buf.getvalue()


def render_tile(world: World, z: int, x: int, y: int, palette: Palette | None = None) -> bytes:
    """PNG bytes of map tile ``(z, x, y)`` (far zooms, ``z <= Z_FAR``, use the fast encoding)."""
    return png_bytes(tile_rgb(world, z, x, y, palette), fast=z <= Z_FAR)


def render_cells(
    world: World, z: int, cells: npt.NDArray[np.integer], origin: tuple[int, int] | None = None
) -> bytes:
    """PNG bytes of a cell-zoom tile drawn from its final cells whose top-left cell is
    ``origin`` (the same bytes as :func:`render_tile` when ``cells`` are the tile's and
    ``origin`` its first cell): how the pool draws tiles whose cells it computed in pieces."""
    return png_bytes(cells_rgb(world, z, cells, origin=origin))


def region_rgb(
    world: World,
    grid: npt.NDArray[np.integer],
    max_px: int = 4096,
    origin: tuple[int, int] | None = None,
) -> U8Array:
    """RGB picture of a region grid whose top-left cell is ``origin`` (it places the relief):
    16 px per cell, halved until it fits ``max_px``."""
    h, w = grid.shape
    px = CELL_PX
    while px > 1 and max(h, w) * px > max_px:
        px //= 2
    shade = None if origin is None else cell_relief(world, origin[0], origin[1], w, h)
    return palette_for(world).draw(grid, px, shade)
