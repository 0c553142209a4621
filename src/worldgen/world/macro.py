"""The macro layer: integer value noise, lattice classes and per-cell class bias.

Every field is a pure function of ``(seed, x, y)`` computed with integer arithmetic only
(16-bit lattice values, fixed-point smoothstep), so it is bit-identical everywhere and has no
float ties at thresholds. Coordinates may be any int64 (negative and beyond ±2**31 included).

* ``level(x, y)`` in ``[0, 65535]``: continentalness plus mountain noise; it orders classes
  (ocean < lowland < highland for the bundled terrain tileset; generally the tileset's class order).
* ``lattice_classes``: the class of each lattice vertex ``(i*S, j*S)``, thresholded from the level
  and then *clamped* so 4-neighbour vertices differ by at most one class level.
* ``cell_bands``: the level quantised into ``BANDS`` bands; each band has a weight-multiplier row
  per class (:func:`band_multipliers`), passed to the solver as bias profiles by the refinements.
* ``climate(x, y)``: level, moisture and temperature together (temperature falls with height), the
  inputs of the climate tags in :mod:`worldgen.world.bias`.
* ``relief(x, y, step)``: a hill-shading factor from the level's slope (``relief_grid`` on a
  grid): the map shades land cells by it at every zoom (:mod:`worldgen.world.render`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from worldgen.world import _noise
from worldgen.world.hashing import mix_array

I64Array = npt.NDArray[np.int64]
PURPOSE_NOISE = 0x4E4F495345  # "NOISE"

FIELD_CONTINENT = 1
FIELD_ELEVATION = 2
FIELD_MOISTURE = 3
FIELD_TEMPERATURE = 4

BAND_SHIFT = 10
BAND_LEVELS = 1 << BAND_SHIFT
BANDS = 65536 >> BAND_SHIFT
"""Number of quantised level bands; band ``b`` covers levels ``[b*1024, (b+1)*1024)`` (about 15
cells across a coast). Class cuts lie on band edges, so a band is all one class."""
CLASS_RAMP = 256
"""Outside its level range a class's bias halves every ``CLASS_RAMP`` levels: the class flips
within one band of the cut, so coastlines follow the smooth level contour, not the lattice."""

# (period in cells of the first octave, octaves) per field.
_FIELDS: dict[int, tuple[int, int]] = {
    FIELD_CONTINENT: (1024, 6),
    FIELD_ELEVATION: (256, 4),
    FIELD_MOISTURE: (512, 4),
    FIELD_TEMPERATURE: (2048, 3),
}
_CLIMATE_FIELDS = (FIELD_CONTINENT, FIELD_ELEVATION, FIELD_MOISTURE, FIELD_TEMPERATURE)

LAPSE_NUM, LAPSE_DEN = 1, 2
"""Temperature falls by ``LAPSE_NUM / LAPSE_DEN`` per level above the first class cut (sea level),
so mountain tops are cold wherever they are."""
RELIEF_ONE = 256
""":func:`relief` returns shade factors in units of ``1 / RELIEF_ONE``."""
RELIEF_GAIN = 48
RELIEF_MAX = 96
"""The shade factor stays within ``RELIEF_ONE ± RELIEF_MAX``."""

# Share of the level's range (fixed points in [0, 65535]) below which each class starts, on band
# edges. Tuned so the bundled terrain world is ~40 % ocean and ~20 % highland (bench/world.py).
_LEVEL_CUTS: dict[int, tuple[int, ...]] = {
    1: (),
    2: (28672,),
    3: (28672, 51200),
}


def _as_i64(v: int | npt.NDArray[np.integer]) -> I64Array:
    return np.asarray(v, dtype=np.int64)


def value_noise(
    seed: int,
    field: int,
    x: int | npt.NDArray[np.integer],
    y: int | npt.NDArray[np.integer],
    min_period: int = 0,
) -> I64Array:
    """Multi-octave value noise in ``[0, 65535]`` at integer cells ``(x, y)`` (broadcast).

    An octave whose period is below ``min_period`` contributes its mean (``_noise.MEAN_VALUE``)
    everywhere: what a far pixel ``min_period`` cells wide averages it to, without the speckle of
    sampling it at a few points per pixel (the far zooms pass their pixel width)."""
    period, octaves = _FIELDS[field]
    xs, ys = np.broadcast_arrays(_as_i64(x), _as_i64(y))
    total = np.zeros(xs.shape, dtype=np.int64)
    amp_sum = 0
    for o in range(octaves):
        p = max(2, period >> o)
        amp = 1 << (octaves - 1 - o)
        amp_sum += amp
        if p < min_period:
            total += _noise.MEAN_VALUE * amp
            continue
        # a per-octave shift keeps octave lattices from lining up at the origin
        shift = mix_array(seed, PURPOSE_NOISE, field, o) % np.uint64(p)
        sx = xs + np.int64(shift)
        sy = ys + np.int64(shift)
        ix = sx // p
        iy = sy // p
        tx = ((sx - ix * p) << 16) // p  # [0, 65536)
        ty = ((sy - iy * p) << 16) // p
        # smoothstep 3t^2 - 2t^3 in 16-bit fixed point
        wx = (tx * tx * (3 * 65536 - 2 * tx)) >> 32
        wy = (ty * ty * (3 * 65536 - 2 * ty)) >> 32

        def corner(dx: int, dy: int, ix: I64Array = ix, iy: I64Array = iy, o: int = o) -> I64Array:
            h = mix_array(seed, PURPOSE_NOISE, field, o, ix + dx, iy + dy)
            return (h >> np.uint64(48)).astype(np.int64)

        v00, v10, v01, v11 = corner(0, 0), corner(1, 0), corner(0, 1), corner(1, 1)
        top = v00 + (((v10 - v00) * wx) >> 16)
        bottom = v01 + (((v11 - v01) * wx) >> 16)
        total += (top + (((bottom - top) * wy) >> 16)) * amp
    return total // amp_sum


def _stretch(v: I64Array) -> I64Array:
    """Widen the noise's bell-shaped distribution around its centre (clamped to [0, 65535])."""
    return np.clip(32768 + (v - 32768) * 2, 0, 65535)


def level(
    seed: int,
    x: int | npt.NDArray[np.integer],
    y: int | npt.NDArray[np.integer],
    min_period: int = 0,
) -> I64Array:
    """The class-ordering level in ``[0, 65535]``: continents, raised by mountain noise inland.

    Computed by the numba twin in :mod:`worldgen.world._noise` (bit-identical to
    :func:`level_numpy`, the readable specification, which runs when the JIT is disabled).
    ``min_period``: octaves finer than that at their mean (:func:`value_noise`).
    """
    if not _noise.jit_enabled():
        return level_numpy(seed, x, y, min_period)
    fields = tuple((f, *_FIELDS[f]) for f in (FIELD_CONTINENT, FIELD_ELEVATION))
    return _noise.level(seed, x, y, fields, PURPOSE_NOISE, min_period)


def level_numpy(
    seed: int,
    x: int | npt.NDArray[np.integer],
    y: int | npt.NDArray[np.integer],
    min_period: int = 0,
) -> I64Array:
    """:func:`level` in plain numpy (the specification the numba twin is tested against)."""
    return _combine(
        value_noise(seed, FIELD_CONTINENT, x, y, min_period),
        value_noise(seed, FIELD_ELEVATION, x, y, min_period),
    )


def moisture(
    seed: int,
    x: int | npt.NDArray[np.integer],
    y: int | npt.NDArray[np.integer],
    min_period: int = 0,
) -> I64Array:
    """Moisture in ``[0, 65535]`` (the second value of :func:`climate`)."""
    return _stretch(value_noise(seed, FIELD_MOISTURE, x, y, min_period))


def _combine(cont_raw: I64Array, elev_raw: I64Array) -> I64Array:
    """The level from the raw continent and elevation noise."""
    cont = _stretch(cont_raw)
    elev = _stretch(elev_raw)
    # mountains only lift land: (elev - mid) counts where the continent is already above sea level
    inland = np.clip(cont - 30000, 0, 8000)
    lift = ((elev - 32768) * inland) >> 13
    out: I64Array = np.clip(cont + np.maximum(lift, -4000), 0, 65535)
    return out


def _temperature(temp_raw: I64Array, level_values: I64Array) -> I64Array:
    sea = _LEVEL_CUTS[3][0]
    lapse = np.maximum(level_values - sea, 0) * LAPSE_NUM // LAPSE_DEN
    out: I64Array = np.clip(_stretch(temp_raw) - lapse, 0, 65535)
    return out


def climate(
    seed: int,
    x: int | npt.NDArray[np.integer],
    y: int | npt.NDArray[np.integer],
    min_period: int = 0,
) -> tuple[I64Array, I64Array, I64Array]:
    """``(level, moisture, temperature)`` at ``(x, y)`` (broadcast), each in ``[0, 65535]``.

    ``level`` equals :func:`level`; moisture is :func:`moisture`; temperature is its own noise
    (2048-cell period, 3 octaves) minus a lapse rate above sea level. One pass of the numba
    kernels computes all four noise fields (:func:`climate_numpy` is the specification).
    ``min_period``: octaves finer than that at their mean (:func:`value_noise`).
    """
    if not _noise.jit_enabled():
        return climate_numpy(seed, x, y, min_period)
    fields = tuple((f, *_FIELDS[f]) for f in _CLIMATE_FIELDS)
    params = (_LEVEL_CUTS[3][0], LAPSE_NUM, LAPSE_DEN)
    lv, moist, temp = _noise.climate(seed, x, y, fields, PURPOSE_NOISE, params, min_period)
    return lv, moist, temp


def climate_numpy(
    seed: int,
    x: int | npt.NDArray[np.integer],
    y: int | npt.NDArray[np.integer],
    min_period: int = 0,
) -> tuple[I64Array, I64Array, I64Array]:
    """:func:`climate` in plain numpy (the specification the numba path is tested against)."""
    lv = level_numpy(seed, x, y, min_period)
    temp = _temperature(value_noise(seed, FIELD_TEMPERATURE, x, y, min_period), lv)
    return lv, moisture(seed, x, y, min_period), temp


def relief(
    seed: int,
    x: int | npt.NDArray[np.integer],
    y: int | npt.NDArray[np.integer],
    step: int = 1,
) -> I64Array:
    """Hill-shading factor at ``(x, y)`` in units of ``1 / RELIEF_ONE`` (broadcast).

    The level's slope, by central differences ``step`` cells apart (use about the cells a pixel
    covers), lit from the north-west: slopes facing the light are brighter, the others darker,
    within ``RELIEF_ONE ± RELIEF_MAX``. Below the first class cut (sea level) the factor is
    exactly ``RELIEF_ONE``: water is flat. Multiply a colour by it and divide by ``RELIEF_ONE``.
    Integer arithmetic only, so every platform shades identically.
    """
    if step < 1:
        raise ValueError(f"relief step must be >= 1, got {step}")
    xs, ys = np.broadcast_arrays(_as_i64(x), _as_i64(y))
    here = level(seed, xs, ys)
    east = level(seed, xs + step, ys)
    west = level(seed, xs - step, ys)
    south = level(seed, xs, ys + step)
    north = level(seed, xs, ys - step)
    return _shade(here, east - west, south - north, step)


def relief_grid(
    seed: int, xs: npt.NDArray[np.integer], ys: npt.NDArray[np.integer], min_period: int = 0
) -> I64Array:
    """:func:`relief` ``(len(ys), len(xs))`` on the grid ``xs`` x ``ys`` of equally spaced
    coordinates (both axes the same spacing, the ``step``; 1 for a single point): the same values,
    from one evaluation of the level over the grid and a one-point ring around it (with
    ``min_period``, of the level whose finer octaves are at their mean, :func:`level`)."""
    xs, ys = _as_i64(xs).ravel(), _as_i64(ys).ravel()
    step = int(xs[1] - xs[0]) if xs.size > 1 else int(ys[1] - ys[0]) if ys.size > 1 else 1
    for axis in (xs, ys):
        if axis.size > 1 and not np.all(np.diff(axis) == step):
            raise ValueError("relief_grid needs equally spaced coordinates, the same on both axes")
    if step < 1:
        raise ValueError(f"relief step must be >= 1, got {step}")
    ex = np.concatenate(([xs[0] - step], xs, [xs[-1] + step]))
    ey = np.concatenate(([ys[0] - step], ys, [ys[-1] + step]))
    lv = level(seed, ex[None, :], ey[:, None], min_period)
    here = lv[1:-1, 1:-1]
    return _shade(here, lv[1:-1, 2:] - lv[1:-1, :-2], lv[2:, 1:-1] - lv[:-2, 1:-1], step)


def _shade(here: I64Array, dx: I64Array, dy: I64Array, step: int) -> I64Array:
    """The shade factor from the level and its central differences ``step`` cells apart."""
    # light from the north-west (top left): a slope facing it falls towards the light, so its
    # east and south sides are higher
    facing = dx + dy
    shade = np.clip(facing * RELIEF_GAIN // (2 * step * 64), -RELIEF_MAX, RELIEF_MAX)
    out: I64Array = np.where(here >= _LEVEL_CUTS[3][0], RELIEF_ONE + shade, RELIEF_ONE)
    return out


def lit(values: I64Array, factor: I64Array, white: int) -> I64Array:
    """Colour ``values`` (any unit; ``white`` is full scale in it) lit by shade ``factor``
    (:func:`relief`, broadcast): darker below :data:`RELIEF_ONE` (scaled towards black), lighter
    above it (blended towards white), so a lit colour stays in ``[0, white]``. Affine in the
    colour for a given factor, so the mean of lit colours is the lit mean colour (before the
    floor): a far pixel that lights its predicted mean predicts the mean of the lit cells."""
    gain = np.minimum(factor, RELIEF_ONE)
    lift = np.maximum(factor - RELIEF_ONE, 0)
    out: I64Array = (values * (gain - lift) + white * lift) // RELIEF_ONE
    return out


def level_cuts(classes: int) -> tuple[int, ...]:
    """Level thresholds between consecutive classes (``classes - 1`` increasing values)."""
    if classes in _LEVEL_CUTS:
        return _LEVEL_CUTS[classes]
    lo, hi = 28000, 42000
    cuts = (lo + (hi - lo) * k // (classes - 2) for k in range(classes - 1))
    return tuple(c // BAND_LEVELS * BAND_LEVELS for c in cuts)


def raw_classes(level_values: I64Array, classes: int) -> I64Array:
    """Class index per level value, by thresholds only (no clamp)."""
    out = np.zeros(level_values.shape, dtype=np.int64)
    for cut in level_cuts(classes):
        out += level_values >= cut
    return out


def lattice_classes(seed: int, i0: int, j0: int, w: int, h: int, S: int, classes: int) -> I64Array:
    """Class ids ``(h, w)`` of lattice vertices ``(i, j)`` (``i0 <= i < i0+w``) at ``(i*S, j*S)``.

    The clamp ``L(v) = min over |d|_1 <= K-1 of raw(v + d) + |d|_1`` is 1-Lipschitz, so 4-neighbour
    vertices differ by at most one level, and it only reads a fixed radius, so it stays local.
    """
    r = classes - 1
    jj, ii = np.mgrid[j0 - r : j0 + h + r, i0 - r : i0 + w + r].astype(np.int64)
    raw = raw_classes(level(seed, ii * S, jj * S), classes)
    out = raw[r : r + h, r : r + w].copy()
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            d = abs(dx) + abs(dy)
            if d == 0 or d > r:
                continue
            shifted = raw[r + dy : r + dy + h, r + dx : r + dx + w]
            np.minimum(out, shifted + d, out=out)
    return out


def cell_bands(seed: int, x0: int, y0: int, w: int, h: int) -> npt.NDArray[np.int32]:
    """Level band ``(h, w)`` of each cell of the window; the row index into bias profiles."""
    yy, xx = np.mgrid[y0 : y0 + h, x0 : x0 + w].astype(np.int64)
    return (level(seed, xx, yy) >> BAND_SHIFT).astype(np.int32)


@dataclass(frozen=True)
class BandBias:
    """Weight multipliers per (band, class): strong inside the class's level range, fading out."""

    table: npt.NDArray[np.float64]  # (BANDS, K) > 0


def band_multipliers(classes: int, strength: float = 4.0, ramp: int = CLASS_RAMP) -> BandBias:
    """Multiplier of class k in band b: ``strength`` inside k's range, halving every ``ramp`` levels
    outside it, never below 1/strength."""
    cuts = (0, *level_cuts(classes), 65536)
    table = np.ones((BANDS, classes), dtype=np.float64)
    for b in range(BANDS):
        centre = b * BAND_LEVELS + BAND_LEVELS // 2
        for k in range(classes):
            lo, hi = cuts[k], cuts[k + 1]
            dist = 0 if lo <= centre < hi else min(abs(centre - lo), abs(centre - hi))
            table[b, k] = max(1.0 / strength, strength * 2.0 ** (-dist / ramp))
    return BandBias(table=table)
