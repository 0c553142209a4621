"""Districts: large regions of a one-class world whose label mix leans one way or another, so a
sample world (or a tileset without classes) has a large-scale structure that far zooms show.

A one-class model has no continents: without districts every refinement solve weighs its
variants alike everywhere, the world is the same texture at every place, and its far zooms are one
flat colour. Districts reuse the macro *level* (:func:`~worldgen.world.macro.level`, regions of
~1,000 cells with detail down to ~30) as a region map and tilt the refinement's weights by it:

* two *district labels* are chosen from the model (:func:`learn_labels`): a label's *leverage* is
  how far the mean colour of a plain :data:`PROBE_SIDE`² solve moves when that label's variants
  weigh :data:`STRENGTH` times more (measured, because the weights alone mislead: ``city``'s
  outlines are a quarter of its weight but cannot grow, its parks are 2 % of a solve and grow
  fifteenfold). ``low`` is the label with the largest leverage, ``high`` the other label whose
  move lies farthest both from no move and from ``low``'s (the largest minimum of the two
  distances). A model whose largest leverage is under :data:`MIN_SHIFT`
  (RGB, summed over channels) gets no districts;
* where the level is below :data:`LOW_FULL` the variants showing ``low`` weigh
  :data:`STRENGTH` times more, fading to neutral at :data:`LOW_EDGE`; above :data:`HIGH_FULL`
  ``high`` weighs :data:`STRENGTH` times more, fading to neutral at :data:`HIGH_EDGE`; the
  rest of the world (about a third of it) is neutral;
* the fade is quantised to :data:`STEPS` steps, so there are at most ``2 * STEPS + 1`` distinct
  profile rows: the far-zoom summary (:mod:`.summary`) learns one colour per row.

The choice is a pure function of the model (seeds from :func:`~worldgen.engine.rng.mix`), learnt
once per library and cached on disk beside the calibrations (``districts/<key>.npz``), so every
process picks the same labels; the rows are keyed by the level band like a classed model's bias,
so the refinement solves and the far zooms see the same district at the same cell. Only models
that :func:`~worldgen.world.calibrate.wants_calibration` (one class, no climate tags, no ground)
get districts; the calibration itself is learnt without them (``World(districts=False)``), so it
matches the neutral regions to a plain solve and the districts lean from there.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt

from worldgen.engine.rng import mix
from worldgen.engine.solver import Constraints, SolverBudget, solve
from worldgen.world import macro
from worldgen.world.calibrate import label_ids, wants_calibration
from worldgen.world.model import WorldModel
from worldgen.world.patches import CACHE_READ_ERRORS, cache_dir, read_npz, write_atomic

__all__ = [
    "DISTRICTS_VERSION",
    "HIGH_EDGE",
    "HIGH_FULL",
    "LOW_EDGE",
    "LOW_FULL",
    "MAX_COST",
    "MAX_LABELS",
    "MIN_COST",
    "MIN_SHIFT",
    "PROBE_SEEDS",
    "PROBE_SIDE",
    "STEPS",
    "STRENGTH",
    "district_labels",
    "district_rows",
    "districts_dir",
    "districts_file",
    "label_colours",
    "learn_labels",
    "rows_for",
]

F64Array = npt.NDArray[np.float64]
I64Array = npt.NDArray[np.int64]

DISTRICTS_VERSION = 3
DISTRICTS_SEED = 0x4449_5354  # "DIST"
STRENGTH = 8.0
"""Weight multiplier of a district label's variants inside its district (faded at the edges)."""
LOW_FULL, LOW_EDGE = 16384, 24576
"""Level below which the ``low`` label has its full boost, and above which it has none (about
the lowest 17 % and 30 % of the world's levels)."""
HIGH_FULL, HIGH_EDGE = 49152, 40960
"""Level above which the ``high`` label has its full boost, and below which it has none (about
the highest 24 % and 35 %)."""
STEPS = 4
"""The fade between neutral and full is quantised to this many steps (few distinct rows)."""
PROBE_SIDE = 48
PROBE_SEEDS = 3
"""Leverage is measured on this many plain ``PROBE_SIDE``² solves per label (and unboosted)."""
MIN_SHIFT = 6.0
"""Smallest leverage (RGB moved, summed over channels) worth a district."""
MIN_COST = 0.02
"""A boost's cost is the total-variation distance between the probe solves' 2 x 2 label-window
histograms with and without it (what ``bench/quality.py`` calls local statistics), at least this
(two plain solves differ about that much)."""
MAX_COST = 0.55
"""A boost that moves the probes' 2 x 2 statistics further than this reshapes the model's
structures rather than leaning its mix (the shared ``rivers`` sample's water, 0.60: its rivers
become lakes), and is never a district label."""
MAX_LABELS = 16
"""Models with more labels get no districts (the probes would cost too much)."""

_MEMO: dict[str, tuple[int, int] | None] = {}
_GUARD = threading.Lock()


def label_colours(model: WorldModel, labels: I64Array) -> F64Array:
    """Per label, the weighted mean RGB ``(L, 3)`` of its variants' pictures (a sample cell's
    colour; black for a model without pictures)."""
    count = int(labels.max()) + 1
    w = np.asarray(model.weights, dtype=np.float64)
    if model.colours is not None:
        per_variant = model.colours.astype(np.float64)
    elif model.images is not None:
        per_variant = model.images.reshape(model.size, -1, 3).astype(np.float64).mean(axis=1)
    else:
        per_variant = np.zeros((model.size, 3), dtype=np.float64)
    total = np.maximum(np.bincount(labels, weights=w, minlength=count), 1e-300)
    colour: F64Array = (
        np.stack(
            [np.bincount(labels, weights=w * per_variant[:, c], minlength=count) for c in range(3)],
            axis=1,
        )
        / total[:, None]
    )
    return colour


def _windows(grid: I64Array, count: int) -> F64Array:
    """Histogram of the 2 x 2 label windows of a periodic grid (frequencies, ``count**4``)."""
    code = grid + count * np.roll(grid, -1, axis=1)
    code = code + count * count * np.roll(code, -1, axis=0)
    out: F64Array = np.bincount(code.ravel(), minlength=count**4) / grid.size
    return out


def _probe(model: WorldModel, labels: I64Array, boost: int) -> tuple[F64Array, F64Array] | None:
    """Mean label frequencies and 2 x 2 window histogram of the probe solves with label
    ``boost`` (-1: none) weighing :data:`STRENGTH` times more; None if no probe solves."""
    count = int(labels.max()) + 1
    row = np.where(labels == boost, STRENGTH, 1.0)[None, :]
    cells = np.zeros((PROBE_SIDE, PROBE_SIDE), dtype=np.int32)
    freq = np.zeros(count, dtype=np.float64)
    windows = np.zeros(count**4, dtype=np.float64)
    solved = 0
    for s in range(PROBE_SEEDS):
        res = solve(
            model.compiled, PROBE_SIDE, PROBE_SIDE, periodic=True,
            seed=mix(DISTRICTS_SEED, boost + 1, s),
            constraints=Constraints(bias=(row, cells)),
            budget=SolverBudget(max_attempts=8, max_backtracks=500),
        )  # fmt: skip
        if res.solved:
            grid = labels[res.grid]
            freq += np.bincount(grid.ravel(), minlength=count) / grid.size
            windows += _windows(grid, count)
            solved += 1
    return (freq / solved, windows / solved) if solved else None


def learn_labels(model: WorldModel) -> tuple[int, int] | None:
    """``(low, high)`` district label ids (:func:`~worldgen.world.calibrate.label_ids`) measured
    on probe solves (see the module docstring), or None: fewer than two labels, no probe solves,
    or too little leverage. Ties go to the lower id."""
    labels = label_ids(model)
    count = int(labels.max()) + 1
    if count < 2 or count > MAX_LABELS:
        return None
    base = _probe(model, labels, -1)
    if base is None:
        return None
    colour = label_colours(model, labels)
    shifts = np.zeros((count, 3), dtype=np.float64)
    cost = np.full(count, np.inf)
    for k in range(count):
        got = _probe(model, labels, k)
        if got is not None:
            shifts[k] = (got[0] - base[0]) @ colour
            cost[k] = max(0.5 * float(np.abs(got[1] - base[1]).sum()), MIN_COST)
    size = np.where(cost <= MAX_COST, np.abs(shifts).sum(axis=1), 0.0)
    low = int(np.argmax(np.where(size >= MIN_SHIFT, size / cost, -1.0)))  # first of equal maxima
    if float(size[low]) < MIN_SHIFT:
        return None
    apart = np.minimum(np.abs(shifts - shifts[low]).sum(axis=1), size)
    score = np.where(apart >= MIN_SHIFT, apart / cost, -1.0)
    score[low] = -2.0
    high = int(np.argmax(score))
    return (low, high) if score[high] >= 0 else None


def _key(library_version: str) -> str:
    text = f"{library_version}-d{DISTRICTS_VERSION}-{DISTRICTS_SEED}-{STRENGTH}"
    text += f"-{PROBE_SIDE}-{PROBE_SEEDS}-{MIN_SHIFT}-{MIN_COST}-{MAX_COST}-{MAX_LABELS}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def districts_file(library_version: str) -> Path:
    """The cache file of the district labels of a library's model (it exists once
    :func:`district_labels` learnt them; copied between machines with an uploaded model)."""
    return districts_dir() / f"{_key(library_version)}.npz"


def districts_dir() -> Path:
    """Where learnt district labels are cached: beside the patch libraries."""
    return cache_dir().parent / "districts"


def _load(path: Path, count: int) -> tuple[int, int] | bool | None:
    """The cached choice, None for a cached "no districts", False when missing or unreadable
    (never True)."""
    try:
        with read_npz(path) as data:
            pair = np.asarray(data["labels"], dtype=np.int64)
    except CACHE_READ_ERRORS:
        return False
    if pair.shape != (2,):
        return False
    low, high = int(pair[0]), int(pair[1])
    if low == high == -1:
        return None
    if not (0 <= low < count and 0 <= high < count and low != high):
        return False
    return low, high


def district_labels(model: WorldModel, library_version: str) -> tuple[int, int] | None:
    """The model's ``(low, high)`` district labels: memoised, then from the disk cache, else
    learnt (:func:`learn_labels`) and cached. None: the model has no districts."""
    if not wants_calibration(model) or model.colours is None:
        return None
    key = _key(library_version)
    with _GUARD:
        if key in _MEMO:
            return _MEMO[key]
    path = districts_file(library_version)
    count = int(label_ids(model).max()) + 1
    cached = _load(path, count)
    if isinstance(cached, bool):
        chosen = learn_labels(model)
        pair = np.array(chosen if chosen is not None else (-1, -1), dtype=np.int64)
        write_atomic(path, lambda fh: np.savez(fh, labels=pair))
    else:
        chosen = cached
    with _GUARD:
        return _MEMO.setdefault(key, chosen)


def _fade(centre: I64Array, full: int, edge: int) -> F64Array:
    """Boost exponent in ``[0, 1]`` per band centre, quantised to :data:`STEPS`: 1 beyond
    ``full``, 0 beyond ``edge``, linear between (either order of the two)."""
    t = np.clip((centre - edge) / (full - edge), 0.0, 1.0)
    out: F64Array = np.floor(t * STEPS + 0.5) / STEPS
    return out


def rows_for(labels: I64Array, low: int, high: int) -> F64Array:
    """Profile rows ``(BANDS, T)`` (row = level band) boosting ``low`` and ``high`` by band."""
    centre = np.arange(macro.BANDS, dtype=np.int64) * macro.BAND_LEVELS + macro.BAND_LEVELS // 2
    exponent = np.zeros((macro.BANDS, labels.shape[0]), dtype=np.float64)
    exponent[:, labels == low] = _fade(centre, LOW_FULL, LOW_EDGE)[:, None]
    exponent[:, labels == high] += _fade(centre, HIGH_FULL, HIGH_EDGE)[:, None]
    rows: F64Array = np.power(STRENGTH, exponent)
    return rows


def district_rows(model: WorldModel, library_version: str) -> F64Array | None:
    """Profile rows ``(BANDS, T)`` of a one-class model's districts, or None when it has none."""
    chosen = district_labels(model, library_version)
    if chosen is None:
        return None
    return rows_for(label_ids(model), *chosen)
