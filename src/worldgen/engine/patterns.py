"""The overlapping model: N×N patterns cut from a sample bitmap, and how they overlap.

This matches the classic (mxgmn) ``OverlappingModel`` exactly, so that pattern counts, order and
weights can be compared with it:

* the palette lists the sample's RGBA colours in order of first appearance (row-major);
* every window position ``(x, y)`` is visited with ``y`` outer and ``x`` inner (on a torus when
  the input is periodic), and the first ``symmetry`` of its 8 variants are counted, in the order
  window, reflect, rotate, reflect, rotate, ...; a pattern's index is the order in which it was
  first met and its weight is how many times it was met;
* pattern ``b`` may sit at offset ``(dx, dy)`` from pattern ``a`` when the two agree wherever
  they overlap.

Only the data lives here; solving happens on the :class:`~worldgen.engine.rules.RuleTable` that
:meth:`OverlappingModel.rules` returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from worldgen.engine.rules import DX, DY, RuleTable, group_rows
from worldgen.errors import InputError, SampleError

__all__ = [
    "MAX_COLOURS",
    "MAX_N",
    "MAX_PATTERNS",
    "MAX_SAMPLE_SIDE",
    "MIN_N",
    "SYMMETRIES",
    "UNKNOWN_RGBA",
    "OverlappingModel",
    "check_sample_size",
    "colour_indices",
    "extract_patterns",
    "load_sample",
    "read_sample",
    "render_overlapping",
    "wave_shape",
]

MAX_SAMPLE_SIDE = 128
MAX_COLOURS = 256
MIN_N = 2
MAX_N = 5
MAX_PATTERNS = 4096
SYMMETRIES = (1, 2, 4, 8)
# Pixels that no determined pattern covers are drawn in mid-grey.
UNKNOWN_RGBA = np.array([128, 128, 128, 255], dtype=np.uint8)

U8Array = npt.NDArray[np.uint8]
I16Array = npt.NDArray[np.int16]
I32Array = npt.NDArray[np.int32]
IntpArray = npt.NDArray[np.intp]


@dataclass(frozen=True, eq=False)
class OverlappingModel:
    """The patterns of one sample and their adjacency, ready to become a rule table.

    Invariants (established by :func:`extract_patterns`; the arrays are read-only):

    * ``palette`` is ``(C, 4)`` RGBA, ``1 <= C <= 64``, distinct rows;
    * ``patterns`` is ``(T, N, N)`` palette indices, ``patterns[t, y, x]``, distinct patterns;
    * ``weights`` is ``(T,)`` positive occurrence counts;
    * ``allowed`` is ``(4, T, T)`` in the :mod:`~worldgen.engine.rules` convention and symmetric
      under direction reversal.
    """

    N: int
    palette: U8Array
    patterns: U8Array
    weights: npt.NDArray[np.float64]
    allowed: npt.NDArray[np.bool_]

    @property
    def size(self) -> int:
        """The number of patterns T."""
        return int(self.patterns.shape[0])

    @property
    def ground_pattern(self) -> int:
        """The last new pattern met in the scan: for a sample whose bottom row is ground (and a
        periodic input) this is the window that wraps from the ground row to the top rows."""
        return self.size - 1

    def rules(self) -> RuleTable:
        """The adjacency and weights the solver works on."""
        return RuleTable(allowed=self.allowed, weights=self.weights)


def load_sample(path: Path | str) -> tuple[U8Array, U8Array]:
    """Read a sample bitmap as ``(H, W)`` palette indices and its ``(C, 4)`` RGBA palette.

    Colours are compared as RGBA (alpha is kept) and numbered by first appearance, row-major.
    Raises :class:`SampleError` when the file is missing or unreadable, is not an image, is larger
    than 128×128 px or has more than 256 colours.
    """
    p = Path(path)
    if not p.is_file():
        raise SampleError(f"sample {str(p)!r} does not exist or is not a file; check the path")
    return read_sample(p, str(p))


def read_sample(source: Path | BinaryIO, name: str) -> tuple[U8Array, U8Array]:
    """:func:`load_sample` of an open file or a path; ``name`` is what messages call it.

    The image's header is checked against the size limit before its pixels are decoded, so a
    small file that claims a huge picture (a decompression bomb) costs nothing.
    """
    try:
        with Image.open(source) as im:
            check_sample_size(im.width, im.height, name)
            rgba = np.asarray(im.convert("RGBA"), dtype=np.uint8)
    except UnidentifiedImageError:
        message = f"sample {name!r} is not an image that can be read; save it as PNG"
        raise SampleError(message) from None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise SampleError(f"sample {name!r} could not be read ({exc}); save it as PNG") from None
    return _index_colours(rgba, name)


def extract_patterns(
    sample: U8Array,
    palette: U8Array,
    N: int,
    symmetry: int = 8,
    periodic_input: bool = True,
) -> OverlappingModel:
    """Cut every N×N pattern out of ``sample`` (``(H, W)`` indices into ``palette``).

    See the module docstring for the scan order, the variants and the weights. Raises
    :class:`InputError` for a bad ``N`` or ``symmetry`` and :class:`SampleError` for a sample that
    cannot give patterns (wrong shape, indices outside the palette, too small for a bounded
    input, or more than 4096 distinct patterns).
    """
    if isinstance(N, bool) or not isinstance(N, int | np.integer) or not MIN_N <= N <= MAX_N:
        raise InputError(f"N must be between {MIN_N} and {MAX_N}, got {N!r}")
    if isinstance(symmetry, bool) or symmetry not in SYMMETRIES:
        raise InputError(f"symmetry must be 1, 2, 4 or 8, got {symmetry!r}")
    N = int(N)
    sample, palette = _checked_sample(sample, palette)
    H, W = sample.shape
    if not periodic_input and (W < N or H < N):
        raise SampleError(
            f"sample is {W}x{H} px, smaller than N={N}, and the input is not periodic; "
            f"use a smaller N, a larger sample, or a periodic input"
        )

    # windows[k] is the N×N window at the k-th position of the scan (y outer, x inner).
    nx, ny = (W, H) if periodic_input else (W - N + 1, H - N + 1)
    ys = (np.arange(ny)[:, None, None, None] + np.arange(N)[None, None, :, None]) % H
    xs = (np.arange(nx)[None, :, None, None] + np.arange(N)[None, None, None, :]) % W
    windows = sample[ys, xs].reshape(ny * nx, N, N)

    # variants[s][k] is variant s of window k: odd s reflect variant s-1, even s rotate s-2.
    variants = [windows]
    for s in range(1, symmetry):
        if s % 2 == 1:
            variants.append(np.flip(variants[s - 1], axis=2))  # reflect: p[y][N-1-x]
        else:
            variants.append(np.rot90(variants[s - 2], axes=(1, 2)))  # rotate: p[x][N-1-y]
    occurrences = np.stack(variants, axis=1).reshape(-1, N * N)

    # first occurrence (np.unique's return_index is the first index) and count of each pattern
    _, first, counts = np.unique(group_rows(occurrences), return_index=True, return_counts=True)
    if first.shape[0] > MAX_PATTERNS:
        raise SampleError(
            f"sample gives {first.shape[0]} patterns for N={N} and symmetry {symmetry}, more "
            f"than {MAX_PATTERNS}; use a smaller N, a lower symmetry or a simpler sample"
        )
    order = np.argsort(first, kind="stable")
    patterns = np.ascontiguousarray(occurrences[first[order]].reshape(-1, N, N), dtype=np.uint8)
    weights = counts[order].astype(np.float64)
    allowed = _agreement(patterns)
    for array in (palette, patterns, weights, allowed):
        array.setflags(write=False)
    return OverlappingModel(
        N=N, palette=palette, patterns=patterns, weights=weights, allowed=allowed
    )


def wave_shape(width: int, height: int, N: int, periodic: bool) -> tuple[int, int]:
    """The ``(wave width, wave height)`` for an output of ``width × height`` pixels.

    A periodic output has one cell per pixel; a bounded one has a cell per position where a whole
    N×N pattern fits.
    """
    if width < 1 or height < 1:
        raise InputError(f"output size must be at least 1x1, got {width}x{height}")
    if periodic:
        return width, height
    if width < N or height < N:
        raise InputError(
            f"a bounded output of {width}x{height} px cannot hold a {N}x{N} pattern; "
            f"make it at least {N}x{N} or use periodic output"
        )
    return width - N + 1, height - N + 1


def colour_indices(
    model: OverlappingModel, grid: I32Array, width: int, height: int, periodic: bool
) -> I16Array:
    """The ``(height, width)`` palette index of every pixel, -1 where no pattern is known.

    ``grid`` is ``(wave height, wave width)`` pattern ids, -1 for undetermined cells. A pixel is
    read from its own cell (periodic: the cell at the pixel, offset (0, 0); bounded: the nearest
    cell, clamped to the wave, at the remaining offset). If that cell is undetermined, the first
    determined cell that covers the pixel is used instead (offsets in row-major order), so a
    partial solution still shows everything it knows. For a valid tiling every covering cell
    gives the same colour.
    """
    N = model.N
    ww, wh = wave_shape(width, height, N, periodic)
    g = np.asarray(grid)
    if g.shape != (wh, ww):
        raise InputError(
            f"grid has shape {g.shape}, expected {(wh, ww)} for a {width}x{height} "
            f"{'periodic' if periodic else 'bounded'} output with N={N}"
        )
    if g.size and (g.min() < -1 or g.max() >= model.size):
        raise InputError(f"grid holds pattern ids outside -1..{model.size - 1}")
    g = g.astype(np.intp)

    px = np.broadcast_to(np.arange(width)[None, :], (height, width))
    py = np.broadcast_to(np.arange(height)[:, None], (height, width))
    out = np.full((height, width), -1, dtype=np.int16)

    def fill(cx: IntpArray, cy: IntpArray, ox: IntpArray, oy: IntpArray) -> None:
        # Give each still-unknown pixel the colour at offset (ox, oy) of cell (cx, cy), where
        # that cell lies inside the wave and is determined.
        inside = (cx >= 0) & (cx < ww) & (cy >= 0) & (cy < wh)
        pat = g[np.clip(cy, 0, wh - 1), np.clip(cx, 0, ww - 1)]
        take = inside & (pat >= 0) & (out < 0)
        out[take] = model.patterns[pat[take], oy[take], ox[take]]

    if periodic:
        zero = np.zeros_like(px)
        fill(px, py, zero, zero)
    else:
        cx, cy = np.minimum(px, ww - 1), np.minimum(py, wh - 1)
        fill(cx, cy, px - cx, py - cy)
    if np.any(out < 0):
        for oy in range(N):
            for ox in range(N):
                cx, cy = px - ox, py - oy
                if periodic:
                    cx, cy = cx % ww, cy % wh
                fill(cx, cy, np.full_like(px, ox), np.full_like(py, oy))
    return out


def render_overlapping(
    model: OverlappingModel, grid: I32Array, width: int, height: int, periodic: bool
) -> U8Array:
    """The ``(height, width, 4)`` RGBA picture of ``grid``; unknown pixels are mid-grey.

    Pixels are chosen as in :func:`colour_indices`.
    """
    idx = colour_indices(model, grid, width, height, periodic)
    rgba = model.palette[np.maximum(idx, 0)]
    rgba[idx < 0] = UNKNOWN_RGBA
    return np.ascontiguousarray(rgba, dtype=np.uint8)


def check_sample_size(width: int, height: int, name: str) -> None:
    """A SampleError unless a ``width × height`` px sample is within the size limit."""
    if width < 1 or height < 1:
        raise SampleError(f"sample {name!r} is empty ({width}x{height} px)")
    if width > MAX_SAMPLE_SIDE or height > MAX_SAMPLE_SIDE:
        raise SampleError(
            f"sample {name!r} is {width}x{height} px; samples may be at most "
            f"{MAX_SAMPLE_SIDE}x{MAX_SAMPLE_SIDE} px, crop or scale it down"
        )


def _index_colours(rgba: U8Array, name: str) -> tuple[U8Array, U8Array]:
    """Turn an ``(H, W, 4)`` RGBA image into indices and a palette in first-appearance order."""
    h, w = rgba.shape[:2]
    flat = rgba.reshape(-1, 4)
    packed = flat.astype(np.uint32) @ np.array([1 << 24, 1 << 16, 1 << 8, 1], dtype=np.uint32)
    _, first, inverse = np.unique(packed, return_index=True, return_inverse=True)
    if first.shape[0] > MAX_COLOURS:
        raise SampleError(
            f"sample {name!r} has {first.shape[0]} colours; at most {MAX_COLOURS} are "
            f"supported, reduce its palette"
        )
    order = np.argsort(first, kind="stable")  # sorted-colour rank -> first-appearance rank
    rank = np.empty_like(order)
    rank[order] = np.arange(order.shape[0])
    sample = rank[inverse.reshape(-1)].reshape(h, w).astype(np.uint8)
    palette = np.ascontiguousarray(flat[first[order]], dtype=np.uint8)
    return sample, palette


def _checked_sample(sample: U8Array, palette: U8Array) -> tuple[U8Array, U8Array]:
    s = np.asarray(sample)
    pal = np.asarray(palette)
    if pal.ndim != 2 or pal.shape[1] != 4 or not 1 <= pal.shape[0] <= MAX_COLOURS:
        raise SampleError(
            f"palette has shape {pal.shape}; expected (C, 4) RGBA with 1 <= C <= {MAX_COLOURS}"
        )
    if s.ndim != 2:
        raise SampleError(f"sample has shape {s.shape}; expected (height, width) colour indices")
    check_sample_size(s.shape[1], s.shape[0], "sample")
    if not np.issubdtype(s.dtype, np.integer) or s.min() < 0 or s.max() >= pal.shape[0]:
        raise SampleError(
            f"sample holds values outside the palette's indices 0..{pal.shape[0] - 1}"
        )
    return s.astype(np.uint8), np.array(pal, dtype=np.uint8)


def _agreement(patterns: U8Array) -> npt.NDArray[np.bool_]:
    """``allowed[d, a, b]``: ``a`` and ``b`` agree where ``b`` overlaps ``a`` at ``(DX[d], DY[d])``.

    Each pattern's overlap strip (the part of ``a`` under ``b``, and of ``b`` under ``a``) is
    numbered with :func:`~worldgen.engine.rules.group_rows`; two patterns agree exactly when
    their strip numbers are equal, so the table is one comparison of two id vectors per
    direction.
    """
    T, N = patterns.shape[0], patterns.shape[1]
    allowed = np.empty((4, T, T), dtype=np.bool_)
    for d in range(4):
        dx, dy = DX[d], DY[d]
        xs = slice(max(0, dx), min(N, N + dx))
        ys = slice(max(0, dy), min(N, N + dy))
        xs_b = slice(xs.start - dx, xs.stop - dx)
        ys_b = slice(ys.start - dy, ys.stop - dy)
        strips_a = patterns[:, ys, xs].reshape(T, -1)
        strips_b = patterns[:, ys_b, xs_b].reshape(T, -1)
        ids = group_rows(np.concatenate([strips_a, strips_b]))
        allowed[d] = ids[:T, None] == ids[None, T:]
    return allowed
