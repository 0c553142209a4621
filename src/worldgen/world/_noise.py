"""numba twins of :func:`worldgen.world.macro.level` and :func:`~worldgen.world.macro.climate`
(private: call them through ``macro``).

``macro.level_numpy`` and ``macro.climate_numpy`` are the specification: readable numpy, one
vectorised pass per octave and corner. It pays numpy's per-call overhead (a detail map tile
evaluates the level about nine times on small windows, ~4 ms each) and hashes every corner of
every point, so this module computes the same integers in compiled loops:

* the hash prefix ``mix(seed, PURPOSE_NOISE, field, octave)`` and the octave shift are computed
  once per octave in Python (:func:`octave_table`); a lattice value is then two splitmix64 steps,
  ``splitmix(splitmix(prefix ^ ix) ^ iy) >> 48``, exactly as ``mix_array`` does it;
* on a separable window (a row of x by a column of y, which every caller uses) the per-column and
  per-row terms are computed once, and an octave whose lattice span is small is hashed once per
  lattice vertex, not four times per point;
* the climate's four fields are combined into level, moisture and temperature in the same pass
  (:func:`climate_grid`), not by numpy over whole arrays afterwards (a far tile of a climate world
  evaluates 512² points: the numpy combination took a third of the tile, ~15 ms).

Only int64/uint64 arithmetic with the same operations as the numpy version (floor division,
arithmetic right shift, wrapping uint64 multiplication), so results are bit-identical; the tests
compare both on random and extreme coordinates. With ``NUMBA_DISABLE_JIT=1`` ``macro.level``
uses the numpy version (these loops would run as plain Python).

The kernels are compiled eagerly (explicit signatures) when this module is imported, from
numba's disk cache when it is warm, so no caller pays a first-call compile in the middle of work;
with the native module (:mod:`worldgen.engine._jit`) they are its machine code and numba is not
imported at all.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

from worldgen.engine._jit import compiled, njit
from worldgen.engine.rng import mix

I64Array = npt.NDArray[np.int64]

_FLAGS = {"cache": True, "nogil": True, "error_model": "numpy"}
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)

# Columns of an octave table row (int64): period, amplitude, shift, prefix (a uint64 bit pattern
# stored as int64), field slot (0: continent, 1: elevation). A period of 0 marks an octave that
# contributes its mean, MEAN_VALUE, everywhere (:func:`smoothed`).
_P, _AMP, _SHIFT, _PREFIX, _SLOT = range(5)
MEAN_VALUE = 32768
"""What an octave finer than a far pixel contributes: the middle of its 16-bit lattice values
(their mean is 32767.5), exactly as ``macro.value_noise`` with ``min_period`` does."""
# Table lattices up to this many vertices; above it (octaves finer than the pixel spacing of a
# far-zoom tile) hash the four corners per point instead.
_MAX_TABLE = 1 << 16


def jit_enabled() -> bool:
    """False when numba runs kernels as plain Python (``NUMBA_DISABLE_JIT=1``)."""
    return compiled()


@functools.lru_cache(maxsize=256)
def octave_table(seed: int, fields: tuple[tuple[int, int, int], ...], purpose: int) -> I64Array:
    """Rows ``(period, amplitude, shift, prefix, slot)`` for every octave of every field.

    ``fields`` holds ``(field id, first period, octaves)`` per slot, in slot order. ``prefix`` is
    the ``mix`` state after ``(seed, purpose, field, octave)``; ``shift`` is
    ``mix(seed, purpose, field, octave) % period``. Memoised: callers must not modify it.
    """
    rows: list[tuple[int, int, int, int, int]] = []
    for slot, (field, period, octaves) in enumerate(fields):
        for o in range(octaves):
            p = max(2, period >> o)
            amp = 1 << (octaves - 1 - o)
            prefix = mix(seed, purpose, field, o)
            shift = prefix % p
            signed = prefix - (1 << 64) if prefix >= 1 << 63 else prefix
            rows.append((p, amp, shift, signed, slot))
    return np.array(rows, dtype=np.int64).reshape(-1, 5)


def smoothed(table: I64Array, min_period: int) -> I64Array:
    """``table`` with every octave of a period below ``min_period`` marked to contribute its mean
    (period 0): what a pixel ``min_period`` cells wide averages such an octave to. A copy (the
    memoised table is shared); ``table`` itself when nothing is below."""
    fine = table[:, _P] < min_period
    if not bool(np.any(fine)):
        return table
    out = table.copy()
    out[fine, _P] = 0
    return out


@njit(inline="always", **_FLAGS)
def _splitmix(x: np.uint64) -> np.uint64:
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@njit(inline="always", **_FLAGS)
def _value(prefix: np.uint64, ix: np.int64, iy: np.int64) -> np.int64:
    """The 16-bit lattice value at ``(ix, iy)``: ``mix(..., ix, iy) >> 48``."""
    h = _splitmix(_splitmix(prefix ^ np.uint64(ix)) ^ np.uint64(iy))
    return np.int64(h >> np.uint64(48))


@njit(inline="always", **_FLAGS)
def _axis(v: np.int64, p: np.int64, shift: np.int64) -> tuple[np.int64, np.int64]:
    """Lattice index and 16-bit smoothstep weight of coordinate ``v`` for period ``p``."""
    s = v + shift
    i = s // p
    t = ((s - i * p) << 16) // p
    return i, (t * t * (3 * 65536 - 2 * t)) >> 32


@njit(inline="always", **_FLAGS)
def _lerp(
    v00: np.int64, v10: np.int64, v01: np.int64, v11: np.int64, wx: np.int64, wy: np.int64
) -> np.int64:
    """Bilinear blend of the four corner values, x first, with 16-bit weights (floor shifts)."""
    top = v00 + (((v10 - v00) * wx) >> 16)
    bottom = v01 + (((v11 - v01) * wx) >> 16)
    return top + (((bottom - top) * wy) >> 16)


@njit(inline="always", **_FLAGS)
def _stretch(v: np.int64) -> np.int64:
    return min(max(32768 + (v - 32768) * 2, 0), 65535)


@njit(inline="always", **_FLAGS)
def _combine(cont_raw: np.int64, elev_raw: np.int64) -> np.int64:
    """``macro.level`` from the two raw noise sums (already divided by their amplitude sums)."""
    cont = _stretch(cont_raw)
    elev = _stretch(elev_raw)
    inland = min(max(cont - 30000, 0), 8000)
    lift = ((elev - 32768) * inland) >> 13
    return min(max(cont + max(lift, -4000), 0), 65535)


@njit(**_FLAGS)
def _accumulate(
    xs: np.ndarray, ys: np.ndarray, table: np.ndarray, sums: np.ndarray, amp_sum: np.ndarray
) -> None:
    """Add every octave of ``table`` to ``sums[slot, j, i]`` (weighted by its amplitude) at
    ``(xs[i], ys[j])`` and its amplitude to ``amp_sum[slot]``; both must start at zero."""
    w = xs.shape[0]
    h = ys.shape[0]
    ix = np.empty(w, dtype=np.int64)
    wx = np.empty(w, dtype=np.int64)
    iy = np.empty(h, dtype=np.int64)
    wy = np.empty(h, dtype=np.int64)
    for r in range(table.shape[0]):
        p = table[r, _P]
        amp = table[r, _AMP]
        shift = table[r, _SHIFT]
        prefix = np.uint64(table[r, _PREFIX])
        slot = table[r, _SLOT]
        amp_sum[slot] += amp
        acc = sums[slot]
        if p <= 0:  # an octave finer than the caller's pixels: its mean everywhere
            for j in range(h):
                for i in range(w):
                    acc[j, i] += MEAN_VALUE * amp
            continue
        for i in range(w):
            ix[i], wx[i] = _axis(xs[i], p, shift)
        for j in range(h):
            iy[j], wy[j] = _axis(ys[j], p, shift)
        x_lo = ix.min()
        y_lo = iy.min()
        span_x = ix.max() - x_lo + 2
        span_y = iy.max() - y_lo + 2
        if (
            span_x <= _MAX_TABLE
            and span_y <= _MAX_TABLE
            and span_x * span_y <= min(_MAX_TABLE, 4 * w * h)
        ):
            vals = np.empty((span_y, span_x), dtype=np.int64)
            for b in range(span_x):
                hx = _splitmix(prefix ^ np.uint64(x_lo + b))
                for a in range(span_y):
                    hv = _splitmix(hx ^ np.uint64(y_lo + a))
                    vals[a, b] = np.int64(hv >> np.uint64(48))
            # the x blend of every lattice row at every column, once: a point then only blends
            # two of them in y (the same integers as _lerp, which blends x first)
            rowx = np.empty((span_y, w), dtype=np.int64)
            for a in range(span_y):
                for i in range(w):
                    b = ix[i] - x_lo
                    v0 = vals[a, b]
                    rowx[a, i] = v0 + (((vals[a, b + 1] - v0) * wx[i]) >> 16)
            for j in range(h):
                a = iy[j] - y_lo
                wyj = wy[j]
                top = rowx[a]
                bottom = rowx[a + 1]
                row = acc[j]
                for i in range(w):
                    row[i] += (top[i] + (((bottom[i] - top[i]) * wyj) >> 16)) * amp
        else:
            hx0 = np.empty(w, dtype=np.uint64)
            hx1 = np.empty(w, dtype=np.uint64)
            for i in range(w):
                hx0[i] = _splitmix(prefix ^ np.uint64(ix[i]))
                hx1[i] = _splitmix(prefix ^ np.uint64(ix[i] + 1))
            for j in range(h):
                y0 = np.uint64(iy[j])
                y1 = np.uint64(iy[j] + 1)
                for i in range(w):
                    v00 = np.int64(_splitmix(hx0[i] ^ y0) >> np.uint64(48))
                    v10 = np.int64(_splitmix(hx1[i] ^ y0) >> np.uint64(48))
                    v01 = np.int64(_splitmix(hx0[i] ^ y1) >> np.uint64(48))
                    v11 = np.int64(_splitmix(hx1[i] ^ y1) >> np.uint64(48))
                    acc[j, i] += _lerp(v00, v10, v01, v11, wx[i], wy[j]) * amp


@njit("void(int64[::1], int64[::1], int64[:, ::1], int64[:, ::1])", **_FLAGS)
def level_grid(xs: np.ndarray, ys: np.ndarray, table: np.ndarray, out: np.ndarray) -> None:
    """``out[j, i] = level(xs[i], ys[j])`` for the octaves in ``table`` (see :func:`octave_table`;
    slot 0 continent, slot 1 elevation). ``out`` is an (H, W) int64 array."""
    w = xs.shape[0]
    h = ys.shape[0]
    sums = np.zeros((2, h, w), dtype=np.int64)
    amp_sum = np.zeros(2, dtype=np.int64)
    _accumulate(xs, ys, table, sums, amp_sum)
    for j in range(h):
        for i in range(w):
            out[j, i] = _combine(sums[0, j, i] // amp_sum[0], sums[1, j, i] // amp_sum[1])


@njit(inline="always", **_FLAGS)
def _climate_at(
    raw: np.ndarray, j: np.int64, i: np.int64, params: np.ndarray, out: np.ndarray
) -> None:
    """``out[:, j, i] = (level, moisture, temperature)`` from the four raw noise values at
    ``raw[:, j, i]`` (continent, elevation, moisture, temperature), as ``macro.climate`` combines
    them; ``params`` = ``(sea level, lapse numerator, lapse denominator)``."""
    lv = _combine(raw[0, j, i], raw[1, j, i])
    out[0, j, i] = lv
    out[1, j, i] = _stretch(raw[2, j, i])
    lapse = max(lv - params[0], 0) * params[1] // params[2]
    out[2, j, i] = min(max(_stretch(raw[3, j, i]) - lapse, 0), 65535)


@njit("void(int64[::1], int64[::1], int64[:, ::1], int64[::1], int64[:, :, ::1])", **_FLAGS)
def climate_grid(
    xs: np.ndarray, ys: np.ndarray, table: np.ndarray, params: np.ndarray, out: np.ndarray
) -> None:
    """``out[:, j, i]``: level, moisture and temperature at ``(xs[i], ys[j])`` for the octaves
    of ``table`` (slots: continent, elevation, moisture, temperature), combined in the same pass
    (see :func:`_climate_at`). ``out`` is a (3, H, W) int64 array."""
    w = xs.shape[0]
    h = ys.shape[0]
    sums = np.zeros((4, h, w), dtype=np.int64)
    amp_sum = np.zeros(4, dtype=np.int64)
    _accumulate(xs, ys, table, sums, amp_sum)
    for slot in range(4):
        sums[slot] //= amp_sum[slot]
    for j in range(h):
        for i in range(w):
            _climate_at(sums, j, i, params, out)


@njit("void(int64[:, :, ::1], int64[::1], int64[:, :, ::1])", **_FLAGS)
def combine_climate(raw: np.ndarray, params: np.ndarray, out: np.ndarray) -> None:
    """``out[:, j, i]``: level, moisture and temperature from the raw noise ``raw`` (4, H, W)
    (the point-by-point path of :func:`climate`)."""
    for j in range(raw.shape[1]):
        for i in range(raw.shape[2]):
            _climate_at(raw, j, i, params, out)


@njit("void(int64[::1], int64[::1], int64[:, ::1], int64[:, ::1])", **_FLAGS)
def raw_points(xs: np.ndarray, ys: np.ndarray, table: np.ndarray, out: np.ndarray) -> None:
    """``out[slot, k]``: the raw noise of every slot at ``(xs[k], ys[k])``."""
    slots = out.shape[0]
    amp_sum = np.zeros(slots, dtype=np.int64)
    for r in range(table.shape[0]):
        amp_sum[table[r, _SLOT]] += table[r, _AMP]
    for k in range(xs.shape[0]):
        for r in range(table.shape[0]):
            p = table[r, _P]
            if p <= 0:
                out[table[r, _SLOT], k] += MEAN_VALUE * table[r, _AMP]
                continue
            shift = table[r, _SHIFT]
            prefix = np.uint64(table[r, _PREFIX])
            ix, wx = _axis(xs[k], p, shift)
            iy, wy = _axis(ys[k], p, shift)
            v = _lerp(
                _value(prefix, ix, iy), _value(prefix, ix + 1, iy),
                _value(prefix, ix, iy + 1), _value(prefix, ix + 1, iy + 1), wx, wy,
            )  # fmt: skip
            out[table[r, _SLOT], k] += v * table[r, _AMP]
        for slot in range(slots):
            out[slot, k] //= amp_sum[slot]


@njit("void(int64[::1], int64[::1], int64[:, ::1], int64[::1])", **_FLAGS)
def level_points(xs: np.ndarray, ys: np.ndarray, table: np.ndarray, out: np.ndarray) -> None:
    """``out[k] = level(xs[k], ys[k])`` for flat int64 arrays of equal length."""
    n = xs.shape[0]
    amp_sum = np.zeros(2, dtype=np.int64)
    for r in range(table.shape[0]):
        amp_sum[table[r, _SLOT]] += table[r, _AMP]
    for k in range(n):
        sums = np.zeros(2, dtype=np.int64)
        for r in range(table.shape[0]):
            p = table[r, _P]
            if p <= 0:
                sums[table[r, _SLOT]] += MEAN_VALUE * table[r, _AMP]
                continue
            shift = table[r, _SHIFT]
            prefix = np.uint64(table[r, _PREFIX])
            ix, wx = _axis(xs[k], p, shift)
            iy, wy = _axis(ys[k], p, shift)
            v = _lerp(
                _value(prefix, ix, iy), _value(prefix, ix + 1, iy),
                _value(prefix, ix, iy + 1), _value(prefix, ix + 1, iy + 1), wx, wy,
            )  # fmt: skip
            sums[table[r, _SLOT]] += v * table[r, _AMP]
        out[k] = _combine(sums[0] // amp_sum[0], sums[1] // amp_sum[1])


def _points(
    seed: int,
    x: int | npt.NDArray[np.integer],
    y: int | npt.NDArray[np.integer],
    fields: tuple[tuple[int, int, int], ...],
    purpose: int,
    min_period: int,
) -> tuple[I64Array, I64Array, I64Array, bool]:
    """What :func:`level` and :func:`climate` start from: ``(x, y)`` broadcast to int64, the
    octave table with the octaves finer than ``min_period`` at their mean, and whether the window
    is separable (x only varies along the last axis and y only along the first, as in
    ``x[None, :]`` with ``y[:, None]`` or an ``mgrid``: the grid kernels' case)."""
    xs, ys = np.broadcast_arrays(np.asarray(x, dtype=np.int64), np.asarray(y, dtype=np.int64))
    table = smoothed(octave_table(seed, fields, purpose), min_period)
    separable = (
        xs.ndim == 2
        and xs.size > 0
        and bool(np.all(xs == xs[:1, :]))
        and bool(np.all(ys == ys[:, :1]))
    )
    return xs, ys, table, separable


def level(
    seed: int,
    x: int | npt.NDArray[np.integer],
    y: int | npt.NDArray[np.integer],
    fields: tuple[tuple[int, int, int], ...],
    purpose: int,
    min_period: int = 0,
) -> I64Array:
    """The level at ``(x, y)`` (broadcast), computed by the kernels above (octaves of a period
    below ``min_period`` at their mean, :func:`smoothed`).

    A window whose x only varies along the last axis and y only along the first (``x[None, :]``
    with ``y[:, None]``, or an ``mgrid``) takes the separable :func:`level_grid`; anything else is
    evaluated point by point.
    """
    xs, ys, table, separable = _points(seed, x, y, fields, purpose, min_period)
    if separable:
        grid = np.zeros(xs.shape, dtype=np.int64)
        level_grid(np.array(xs[0]), np.array(ys[:, 0]), table, grid)
        return grid
    flat = np.zeros(xs.size, dtype=np.int64)
    level_points(np.array(xs.reshape(-1)), np.array(ys.reshape(-1)), table, flat)
    return flat.reshape(xs.shape)


def climate(
    seed: int,
    x: int | npt.NDArray[np.integer],
    y: int | npt.NDArray[np.integer],
    fields: tuple[tuple[int, int, int], ...],
    purpose: int,
    params: tuple[int, int, int],
    min_period: int = 0,
) -> I64Array:
    """``(level, moisture, temperature)`` stacked ``(3, *shape)`` at ``(x, y)`` (broadcast):
    the four fields' noise and their combination in compiled loops (``params`` as in
    :func:`_climate_at`; separable windows and ``min_period`` as in :func:`level`)."""
    xs, ys, table, separable = _points(seed, x, y, fields, purpose, min_period)
    p = np.array(params, dtype=np.int64)
    if separable:
        grid = np.zeros((3, *xs.shape), dtype=np.int64)
        climate_grid(np.array(xs[0]), np.array(ys[:, 0]), table, p, grid)
        return grid
    flat = np.zeros((4, xs.size), dtype=np.int64)
    raw_points(np.array(xs.reshape(-1)), np.array(ys.reshape(-1)), table, flat)
    out = np.zeros((3, 1, xs.size), dtype=np.int64)
    combine_climate(np.ascontiguousarray(flat.reshape(4, 1, -1)), p, out)
    return out.reshape((3, *xs.shape))
