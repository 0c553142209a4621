"""256-pixel map tiles of a :class:`World`; PNG bytes are a pure function of (world, z, x, y).

Zoom convention (Leaflet-style: larger z = more detail; ``z = 0`` is the opening zoom):

==========  ==============  =============  ========================================
z           cells per tile  pixels / cell  drawn from
==========  ==============  =============  ========================================
2 (detail)  16              16             top refinement layer, tile images
1           32              8              top refinement layer, images box-filtered
0           64              4              base layer (Wang patches), box-filtered
-1, -2      128, 256        2, 1           base layer, box-filtered
-3 .. -10   512 .. 2**16    < 1            macro classes sampled at pixel centres
==========  ==============  =============  ========================================

Tile ``(z, x, y)`` covers cells ``[x*n, (x+1)*n) x [y*n, (y+1)*n)`` with ``n`` the cells per tile,
so a detail tile is exactly one aligned S=16 block area. Images of any tile size are resampled to
16 px (nearest) first. PNGs use fixed compression settings and carry no metadata.
"""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
from PIL import Image

from worldgen.errors import InputError
from worldgen.world import macro
from worldgen.world.blocks import MAX_COORD, World

TILE_PX = 256
CELL_PX = 16
Z_DETAIL = 2
Z_BASE = 0
"""Zooms at or below this draw the base layer (no WFC)."""
Z_MACRO = -3
"""Zooms at or below this draw macro classes only."""
Z_MIN = -10

U8Array = npt.NDArray[np.uint8]


def cells_per_tile(z: int) -> int:
    """Cells along one side of a map tile at zoom ``z``."""
    return CELL_PX << (Z_DETAIL - z)


class Palette:
    """The tileset's images as a box-filtered pyramid: ``levels[p]`` is ``(T, p, p, 3)`` uint8."""

    def __init__(self, world: World) -> None:
        ts = world.tileset
        if ts.images is None:
            raise InputError(f"tileset {ts.name} was loaded without images; cannot render it")
        idx = np.arange(CELL_PX) * ts.tile_size // CELL_PX
        img = ts.images[:, idx][:, :, idx, :3].astype(np.int64)  # (T, 16, 16, 3)
        self.levels: dict[int, U8Array] = {}
        p = CELL_PX
        while p >= 1:
            f = CELL_PX // p
            t = img.shape[0]
            boxed = img.reshape(t, p, f, p, f, 3).sum(axis=(2, 4)) // (f * f)
            self.levels[p] = boxed.astype(np.uint8)
            p //= 2
        mean = self.levels[1][:, 0, 0, :]
        corners = world.lib.corners
        self.class_rgb = mean[corners].astype(np.int64)  # (K, 3)

    def draw(self, grid: npt.NDArray[np.integer], px: int) -> U8Array:
        """RGB image ``(H*px, W*px, 3)`` of a variant-id grid at ``px`` pixels per cell."""
        h, w = grid.shape
        cells = self.levels[px][np.asarray(grid)]  # (H, W, px, px, 3)
        return np.ascontiguousarray(cells.transpose(0, 2, 1, 3, 4).reshape(h * px, w * px, 3))


def tile_rgb(world: World, z: int, x: int, y: int, palette: Palette | None = None) -> U8Array:
    """The RGB pixels ``(256, 256, 3)`` of map tile ``(z, x, y)``."""
    if not Z_MIN <= z <= Z_DETAIL:
        raise InputError(f"zoom z must be in {Z_MIN}..{Z_DETAIL} (z=0 opens the map), got {z}")
    n = cells_per_tile(z)
    x0, y0 = x * n, y * n
    if max(abs(x0), abs(y0), abs(x0 + n), abs(y0 + n)) > MAX_COORD:
        raise InputError(f"tile ({z}, {x}, {y}) lies outside the world (|cell| <= 2**53)")
    pal = palette or Palette(world)
    if z > Z_BASE:
        return pal.draw(world.region(x0, y0, n, n), TILE_PX // n)
    if z > Z_MACRO:
        return pal.draw(world.base_region(x0, y0, n, n), TILE_PX // n)
    step = n // TILE_PX
    centres = np.arange(TILE_PX, dtype=np.int64) * step + step // 2
    lv = macro.level(world.seed, (x0 + centres)[None, :], (y0 + centres)[:, None])
    cls = macro.raw_classes(lv, world.K)
    shade = 870 + lv * 260 // 65536  # brighter with level, in thousandths
    rgb = pal.class_rgb[cls] * shade[..., None] // 1000
    pixels: U8Array = np.clip(rgb, 0, 255).astype(np.uint8)
    return pixels


def png_bytes(rgb: U8Array) -> bytes:
    """Deterministic PNG encoding (fixed compression, no metadata)."""
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, format="PNG", compress_level=6, optimize=False)
    return buf.getvalue()


def render_tile(world: World, z: int, x: int, y: int, palette: Palette | None = None) -> bytes:
    """PNG bytes of map tile ``(z, x, y)``."""
    return png_bytes(tile_rgb(world, z, x, y, palette))


def region_rgb(world: World, grid: npt.NDArray[np.integer], max_px: int = 4096) -> U8Array:
    """RGB picture of a region grid: 16 px per cell, halved until it fits ``max_px``."""
    h, w = grid.shape
    px = CELL_PX
    while px > 1 and max(h, w) * px > max_px:
        px //= 2
    return Palette(world).draw(grid, px)
