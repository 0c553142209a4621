"""The far-zoom summary: what the final cells around a point look like on average, predicted from
the macro state there, so that a far tile shows what zooming in will reveal.

A refinement solve sees the macro state of a cell only through its *bias profile*: the row of
:attr:`World.profiles <worldgen.world.blocks.World.profiles>` that weights its variants
(:meth:`World.profile_at <worldgen.world.blocks.World.profile_at>`). So the summary is a table
"expected frequency of each variant among final cells, given the profile", learnt by generating
the world:

* **Learning** (once per library, layer count and profile table; cached on disk beside the patch
  libraries as ``summaries/<key>.npz``, ``np.savez``, read with ``allow_pickle=False``): a world
  with the fixed seed :data:`LEARN_SEED` computes ``min(16 x groups, 96)`` windows
  (:func:`learn_windows`) of :data:`LEARN_SIDE`² final cells at hashed places spread over ±2**20
  cells, and counts ``(profile group, variant)`` over their cells. Profiles with identical rows
  form one group (a sample's neutral bias is one group: its summary is one colour, not noise).
* **Prediction**: a group's variant frequencies are its counts shrunk towards the solver's prior
  (weights × profile row, normalised) with the strength of :data:`PRIOR_CELLS` cells, so a rarely
  seen group still gets a sensible colour; its colour is the frequency-weighted mean of the
  variants' pictures. Integer arithmetic only (fixed point, exact sums), so every platform draws
  the same bytes.
* **Relief**: a world with continents (classes from the macro level: the terrain tilesets) is
  lit by :func:`macro.relief <worldgen.world.macro.relief>` at every zoom (:func:`relief_for`;
  :func:`macro.lit <worldgen.world.macro.lit>`): the cell zooms light each cell, a far
  pixel lights its predicted colour by the relief at its centre over its width, which is the
  cells' mean slope there, so hills and mountains read at far zooms and a far pixel still predicts
  the mean of the lit cells it covers.
* **Ground worlds** (side views, :mod:`.ground`) are the same in every column on average, so
  their summary is the mean colour of each row within :data:`GROUND_ROWS` of the ground (learnt
  the same way) and a far pixel is the exact mean of its rows' colours: the ground line stays
  at every zoom.
* **A far pixel** averages the predicted colour over ``s x s`` sub-sample points spread evenly
  over the cells it covers (:data:`SUBSAMPLES`; all of them when it covers 2 x 2 cells); from
  z = -7 on, with a tent that also weighs the neighbours' nearest sub-samples (anti-aliasing).
"""

from __future__ import annotations

import hashlib
import math
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from worldgen.world import macro
from worldgen.world.blocks import World
from worldgen.world.hashing import mix_array
from worldgen.world.model import CELL_PX
from worldgen.world.patches import CACHE_READ_ERRORS, cache_dir, read_npz, write_atomic

__all__ = [
    "DISTRICT_WINDOWS",
    "GROUND_ROWS",
    "LEARN_SEED",
    "LEARN_SIDE",
    "LEARN_WINDOWS",
    "PRIOR_CELLS",
    "SMOOTH_FROM",
    "SUBSAMPLES",
    "SUMMARY_VERSION",
    "WINDOWS_PER_GROUP",
    "Summary",
    "build_summary",
    "far_rgb",
    "learn_counts",
    "learn_windows",
    "relief_for",
    "sample_offsets",
    "summaries_dir",
    "summary_for",
    "summary_key",
]

SUMMARY_VERSION = 2
LEARN_SEED = 0x5355_4D4D_4152_59  # "SUMMARY"
PURPOSE_LEARN = 0x4C45_4152_4E  # "LEARN"
LEARN_WINDOWS = 96
"""At most this many learning windows; :func:`learn_windows` says how many a world uses. (Terrain,
72 groups, far-zoom error at S=32: 48 windows of 32² 9.5, 384 of 32² 7.3, 96 of 64² 7.7 with
two thirds of the block solves of 384 x 32².)"""
WINDOWS_PER_GROUP = 16
DISTRICT_WINDOWS = 48
"""At most this many learning windows for a world with districts (:mod:`.districts`): its up to
9 groups are three zones (low, neutral, high) and the fades between them. 48 windows learn the
zones' colours within 1-2 RGB of 96 windows and the thin fades within ~10, for half the cost
(the first far tile of a new sample world on a machine: lakes 13 -> 6 s CPU, city 3.9 -> 2 s)."""
LEARN_SIDE = 64
"""Side of a learning window: 64 = 2 x 2 top blocks at S = 32 (fewer solves per learnt cell
than 32, whose one top block needs four lower blocks)."""
LEARN_SPREAD = 2**20
"""Learning windows lie in ``[-LEARN_SPREAD, LEARN_SPREAD)²`` (many continents' worth)."""
PRIOR_CELLS = 256
"""Weight of the solver's prior, in cells, when a group's counts become frequencies."""
SUBSAMPLES = 2
"""Sub-sample points per pixel side of a far tile."""
SMOOTH_FROM = 32
"""Cells per pixel from which far pixels weigh their neighbours' sub-samples too (z <= -7)."""
GROUND_ROWS = 64
"""A world with a ground: rows learnt above and below the ground row (``y = 0``); a ground world
is the same in every column on average, so its far view is its mean colour per row."""
_FREQ_ONE = 1 << 16
"""Fixed-point unit of a frequency."""
_RGB_ONE = 1 << 8
"""Fixed-point unit of a colour channel in :attr:`Summary.table`."""

I64Array = npt.NDArray[np.int64]
U8Array = npt.NDArray[np.uint8]


@dataclass(frozen=True, eq=False)
class Summary:
    """A world's far-zoom predictor.

    ``group[p]`` is profile ``p``'s group; ``counts[g, t]`` the final cells of variant ``t`` seen
    in group ``g`` while learning; ``table[g]`` the group's predicted mean RGB in units of 1/256;
    ``channels[c][p]`` profile ``p``'s channel ``c`` (the gather a far tile does).
    """

    group: npt.NDArray[np.intp]  # (P,) in [0, G)
    counts: I64Array  # (G, T) >= 0
    table: I64Array  # (G, 3) in [0, 255 * 256]
    channels: tuple[npt.NDArray[np.int32], ...]  # 3 x (P,): table[group] per channel, int32
    rows: I64Array | None = None
    """A world with a ground: the mean RGB (1/256) of row ``y = r - GROUND_ROWS`` for ``r`` in
    ``[0, 2 * GROUND_ROWS)`` (rows beyond take the nearest end's colour), else None."""

    def colours(self) -> U8Array:
        """The predicted RGB of each group, ``(G, 3)`` (floored)."""
        return (self.table // _RGB_ONE).astype(np.uint8)


def _groups(profiles: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.intp], int]:
    """Profile → group, identical rows sharing a group numbered by first appearance."""
    seen: dict[bytes, int] = {}
    group = np.empty(profiles.shape[0], dtype=np.intp)
    for p, row in enumerate(np.ascontiguousarray(profiles)):
        group[p] = seen.setdefault(row.tobytes(), len(seen))
    return group, len(seen)


def summary_key(world: World) -> str:
    """Names a learnt count table: library, layers, profile table and :data:`SUMMARY_VERSION`."""
    h = hashlib.sha256(f"{world.lib.version}-L{world.layers}-s{SUMMARY_VERSION}".encode())
    h.update(np.ascontiguousarray(world.profiles, dtype=np.float64).tobytes())
    h.update(f"{LEARN_SEED}-{LEARN_WINDOWS}-{WINDOWS_PER_GROUP}-{LEARN_SIDE}".encode())
    if world.districts:  # (keys of worlds without districts stay as they were)
        h.update(f"-d{DISTRICT_WINDOWS}".encode())
    h.update(f"{LEARN_SPREAD}-{PRIOR_CELLS}".encode())
    return h.hexdigest()[:24]


def learn_windows(groups: int, districts: bool = False) -> int:
    """Learning windows for a world with ``groups`` profile groups (one group needs the fewest);
    a world with districts (:attr:`World.districts`) learns at most :data:`DISTRICT_WINDOWS`."""
    return min(DISTRICT_WINDOWS if districts else LEARN_WINDOWS, WINDOWS_PER_GROUP * groups)


def learn_counts(world: World, group: npt.NDArray[np.intp], groups: int) -> I64Array:
    """Count ``(group, variant)`` over the final cells of the learning windows (see the module
    docstring). Uses a private world with :data:`LEARN_SEED` over ``world``'s library."""
    learner = World(
        world.model, LEARN_SEED, S=world.S, V=world.V, layers=world.layers, library=world.lib,
        budget=world.budget,
    )  # fmt: skip
    counts = np.zeros((groups, world.model.size), dtype=np.int64)
    offset = learner.offset(world.layers) if world.layers else 0
    for k in range(learn_windows(groups, world.districts)):
        hx, hy = (int(v) for v in mix_array(LEARN_SEED, PURPOSE_LEARN, k, np.arange(2)))
        x = (hx % (2 * LEARN_SPREAD) - LEARN_SPREAD) // world.S * world.S + offset
        y = (hy % (2 * LEARN_SPREAD) - LEARN_SPREAD) // world.S * world.S + offset
        cells = learner.region(x, y, LEARN_SIDE, LEARN_SIDE)
        prof = learner.profile_region(x, y, LEARN_SIDE, LEARN_SIDE)
        np.add.at(counts, (group[prof.ravel()], cells.ravel()), 1)
    return counts


def learn_rows(world: World) -> I64Array:
    """Count ``(row, variant)`` over :data:`WINDOWS_PER_GROUP` windows of :data:`LEARN_SIDE`
    columns and the rows ``[-GROUND_ROWS, GROUND_ROWS)`` of a ground world (the
    :data:`LEARN_SEED` world over ``world``'s library)."""
    learner = World(
        world.model, LEARN_SEED, S=world.S, V=world.V, layers=world.layers, library=world.lib,
        budget=world.budget,
    )  # fmt: skip
    counts = np.zeros((2 * GROUND_ROWS, world.model.size), dtype=np.int64)
    offset = learner.offset(world.layers) if world.layers else 0
    for k in range(WINDOWS_PER_GROUP):
        hx = int(mix_array(LEARN_SEED, PURPOSE_LEARN, k, np.arange(1))[0])
        x = (hx % (2 * LEARN_SPREAD) - LEARN_SPREAD) // world.S * world.S + offset
        cells = learner.region(x, -GROUND_ROWS, LEARN_SIDE, 2 * GROUND_ROWS)
        rows = np.repeat(np.arange(2 * GROUND_ROWS), LEARN_SIDE)
        np.add.at(counts, (rows, cells.ravel()), 1)
    return counts


def _prior(world: World, group: npt.NDArray[np.intp], groups: int) -> I64Array:
    """The solver's prior per group, ``(G, T)`` in units of 1/65536 (each row sums to <= 1)."""
    out = np.zeros((groups, world.model.size), dtype=np.int64)
    for p in range(world.profiles.shape[0]):
        g = int(group[p])
        if out[g].any():
            continue
        row = np.asarray(world.model.weights, dtype=np.float64) * world.profiles[p]
        total = math.fsum(row.tolist())  # exactly rounded: the same on every platform
        out[g] = np.floor(row / total * _FREQ_ONE).astype(np.int64)
    return out


def _table(world: World, counts: I64Array, prior: I64Array) -> I64Array:
    """Predicted mean RGB per group in units of 1/256 (integers only, so exact)."""
    images = world.model.images
    if images is None:
        raise ValueError("model has no pictures")
    # each variant's mean colour in units of 1/256 (floored): < 2**16
    per_variant = images.reshape(images.shape[0], -1, 3).astype(np.int64).sum(axis=1)
    mean = per_variant * _RGB_ONE // (CELL_PX * CELL_PX)
    numerator = counts * _FREQ_ONE + PRIOR_CELLS * prior  # (G, T)
    # bounds: a row of the numerator sums to < (cells + 256) * 2**16 and a mean is < 2**16, so
    # a row's sum of products is < (cells + 256) * 2**32 < 2**63 for rows of < 2**30 cells:
    # exact in int64 (integer sums do not depend on their order)
    if int(counts.sum(axis=1).max(initial=0)) >= 1 << 30:
        raise ValueError("too many learnt cells for exact int64 sums")
    denominator = numerator.sum(axis=1)
    rgb: I64Array = (numerator[:, :, None] * mean[None, :, :]).sum(axis=1) // denominator[:, None]
    return rgb


def _learnt(path: Path, shape: tuple[int, int], learn: Callable[[], I64Array]) -> I64Array:
    """Counts from the disk cache, or learnt (and cached) on a miss."""
    counts = _load(path, shape)
    if counts is None:
        counts = learn()
        _save(path, counts)
    return counts


def _load(path: Path, shape: tuple[int, int]) -> I64Array | None:
    try:
        with read_npz(path) as data:
            counts = np.asarray(data["counts"], dtype=np.int64)
    except CACHE_READ_ERRORS:
        return None
    return counts if counts.shape == shape and int(counts.min(initial=0)) >= 0 else None


def _save(path: Path, counts: I64Array) -> None:
    write_atomic(path, lambda fh: np.savez(fh, counts=counts))


def summaries_dir() -> Path:
    """Where learnt count tables are cached: beside the patch libraries."""
    return cache_dir().parent / "summaries"


def build_summary(world: World, directory: Path | None = None) -> Summary:
    """The summary of ``world``: counts from the disk cache, learnt (and cached) on a miss."""
    group, groups = _groups(world.profiles)
    folder, key, size = directory or summaries_dir(), summary_key(world), world.model.size
    counts = _learnt(
        folder / f"{key}.npz", (groups, size), lambda: learn_counts(world, group, groups)
    )
    table = _table(world, counts, _prior(world, group, groups))
    channels = tuple(np.ascontiguousarray(table[group, c], dtype=np.int32) for c in range(3))
    frozen: list[npt.NDArray[Any]] = [group, counts, table, *channels]
    rows = None
    if world.lib.ground is not None:
        row_counts = _learnt(
            folder / f"{key}-rows{GROUND_ROWS}.npz", (2 * GROUND_ROWS, size),
            lambda: learn_rows(world),
        )  # fmt: skip
        rows = _table(world, row_counts, np.zeros_like(row_counts))
        frozen.append(rows)
    for array in frozen:
        array.setflags(write=False)
    return Summary(group=group, counts=counts, table=table, channels=channels, rows=rows)


_SUMMARIES: weakref.WeakKeyDictionary[World, Summary] = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


def summary_for(world: World) -> Summary:
    """The (memoised) summary of ``world``."""
    with _GUARD:
        found = _SUMMARIES.get(world)
    if found is None:
        found = build_summary(world)
        with _GUARD:
            found = _SUMMARIES.setdefault(world, found)
    return found


def sample_offsets(cells_per_px: int, samples: int) -> I64Array:
    """Offsets (cells) of the ``samples`` sub-sample points inside a pixel, evenly spread."""
    k = np.arange(samples, dtype=np.int64)
    out: I64Array = (2 * k + 1) * cells_per_px // (2 * samples)
    return out


def _sample_axis(start: int, pixels: int, cells_per_px: int, s: int, ring: int) -> I64Array:
    """Cell coordinates of the sub-samples along one axis, ``ring`` extra on each side."""
    j = np.arange(-ring, pixels * s + ring, dtype=np.int64)
    out: I64Array = start + (j // s) * cells_per_px + sample_offsets(cells_per_px, s)[j % s]
    return out


def _tent(values: npt.NDArray[np.int32], pixels: int, axis: int) -> npt.NDArray[np.int32]:
    """Weights 1, 3, 3, 1 over the two sub-samples of each pixel and one of each neighbour
    (``values`` has one extra sub-sample on each side along ``axis``; 2 per pixel)."""
    v = np.moveaxis(values, axis, 0)
    end = 2 * pixels
    out = v[0:end:2] + 3 * v[1 : end + 1 : 2] + 3 * v[2 : end + 2 : 2] + v[3 : end + 3 : 2]
    return np.moveaxis(out, 0, axis)


def relief_for(
    world: World, xs: npt.NDArray[np.integer], ys: npt.NDArray[np.integer], min_period: int = 0
) -> I64Array | None:
    """The shade factor ``(len(ys), len(xs))`` of ``world`` on a grid of equally spaced cells
    (:func:`macro.relief_grid <worldgen.world.macro.relief_grid>`, slope over the spacing), or
    None for a world without continents (a sample, or a tileset without classes: its level means
    nothing it shows), which is never shaded."""
    if world.K < 2 or world.lib.hashed or world.lib.ground is not None:
        return None
    return macro.relief_grid(world.seed, xs, ys, min_period)


def _ground_rgb(rows: I64Array, y0: int, pixels: int, n: int) -> U8Array:
    """Far pixels of a ground world: pixel row ``p`` is the mean of the row colours of
    ``[y0 + p*n, y0 + (p+1)*n)``, the rows past the learnt ones taking the nearest end's."""
    g = GROUND_ROWS
    a = y0 + np.arange(pixels, dtype=np.int64) * n  # first row of each pixel row
    b = a + n
    prefix = np.zeros((2 * g + 1, 3), dtype=np.int64)
    np.cumsum(rows, axis=0, out=prefix[1:])
    below = np.clip(np.minimum(b, -g) - a, 0, n)[:, None]  # rows above the learnt ones (y < -g)
    above = np.clip(b - np.maximum(a, g), 0, n)[:, None]  # rows under them (y >= g)
    mid = prefix[np.clip(b + g, 0, 2 * g)] - prefix[np.clip(a + g, 0, 2 * g)]
    total = below * rows[0] + mid + above * rows[-1]
    colour = (total // (n * _RGB_ONE)).astype(np.uint8)  # (pixels, 3)
    return np.ascontiguousarray(np.broadcast_to(colour[:, None, :], (pixels, pixels, 3)))


def far_rgb(world: World, x0: int, y0: int, pixels: int, cells_per_px: int) -> U8Array:
    """RGB ``(pixels, pixels, 3)`` of the square whose top-left cell is ``(x0, y0)``, each pixel
    the predicted mean colour of the ``cells_per_px``² cells it covers (with one profile group,
    the group's colour everywhere: the same integers, without evaluating any profile).

    ``s = min(SUBSAMPLES, cells_per_px)`` sub-samples per pixel side, averaged. From
    :data:`SMOOTH_FROM` cells per pixel on, where the macro noise's finest octaves (32 cells)
    vary inside a pixel and two samples would alias them into speckle, each pixel weighs its
    sub-samples 3 and its neighbours' nearest ones 1 per axis (a tent twice the pixel wide),
    reading one sub-sample beyond the square, so neighbouring tiles still join seamlessly. The
    pixel is lit by the relief at its centre over ``cells_per_px`` cells (:func:`relief_for`).
    """
    summary = summary_for(world)
    if summary.rows is not None:  # a ground world: the exact mean of its rows' colours
        return _ground_rgb(summary.rows, y0, pixels, cells_per_px)
    if summary.table.shape[0] == 1:  # one group (a neutral bias): every pixel is its colour
        return np.broadcast_to(summary.colours()[0], (pixels, pixels, 3)).copy()
    s = min(SUBSAMPLES, cells_per_px)
    smooth = cells_per_px >= SMOOTH_FROM and s == 2
    ring = 1 if smooth else 0
    xs = _sample_axis(x0, pixels, cells_per_px, s, ring)
    ys = _sample_axis(y0, pixels, cells_per_px, s, ring)
    # the macro fields with octaves finer than a pixel at their mean: the pixel's average of them,
    # where a few sub-samples would alias them into speckle (from z = -8 on; cheaper too)
    prof = world.profile_at(xs[None, :], ys[:, None], cells_per_px)
    # one relief per pixel, at its centre over the pixel's width (the mean slope of its cells):
    # a quarter of the level evaluations of one per sub-sample, and lit() is affine, so
    # lighting the pixel's mean is lighting each sub-sample
    centres = np.arange(pixels, dtype=np.int64) * cells_per_px + cells_per_px // 2
    shade = relief_for(world, x0 + centres, y0 + centres, cells_per_px)
    out = np.empty((pixels, pixels, 3), dtype=np.uint8)
    for c in range(3):
        v = summary.channels[c][prof]  # (rows, cols) int32 in 1/256
        if smooth:
            total = _tent(_tent(v, pixels, 1), pixels, 0)
            weight = 64
        else:
            total = v[0::s, 0::s].copy()  # strided adds: much faster than a reshaped sum
            for i, j in ((i, j) for i in range(s) for j in range(s) if i or j):
                total += v[i::s, j::s]
            weight = s * s
        if shade is not None:
            lit = macro.lit(total.astype(np.int64), shade, 255 * _RGB_ONE * weight)
            out[:, :, c] = lit // (weight * _RGB_ONE)
        else:
            out[:, :, c] = total // (weight * _RGB_ONE)
    return out
