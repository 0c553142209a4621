"""Calibration of refinement solves: weight multipliers that give a world the label mix of a plain
solve of its model.

A refinement block re-solves its interior with its border ring pinned. WFC grown inwards from a
pinned ring does not draw the same mix as a free solve: measured on 32-cell blocks re-solved inside
a plain solve of the shared ``dungeon`` sample, the background colour rose from 51 % to 60 %, and a
world of it (whose every cell comes from such solves) showed 64 %; ``city`` drew twice the parks.
The refinement's weights therefore get one multiplier per *label* (the colour a sample cell shows,
the tile name of a tileset cell), learnt once per library and layer count:

1. the target: the label frequencies of a plain :data:`TARGET_SIDE`² solve of the model (periodic
   for a sample, bounded for a tileset, as ``bench/quality.py`` compares);
2. :data:`ROUNDS` times: the final cells of a :data:`WINDOW_SIDE`² window of a private world (its
   own seed per round) under the current multipliers give the frequencies ``f``; every label more
   than :data:`DEAD_BAND` from its target moves its multiplier towards it by a step (in log units)
   that starts at :data:`FIRST_STEP`, grows by :data:`GROW` (up to :data:`MAX_LOG_STEP`) while the
   direction holds and halves when it turns. A label's share responds weakly and by an amount
   nobody knows in advance (the shared dungeon's background: ~0.1x its weight's change), which a
   fixed step (``(target / f) ** 0.5`` before, version 1) did not reach in 6 rounds;
3. the multipliers are the mean (in log) of the last :data:`KEEP` rounds', the largest 1.

Only models whose refinement weights are not already shaped by the macro layer are calibrated:
one class, no climate tags, no ground (a classed tileset's mix *should* follow its continents, and
a side view's rows are not a free solve's). Everything is a pure function of the model, the
library and the layer count (seeds from :func:`~worldgen.engine.rng.mix`), cached on disk next to
the summaries, so every process and every order of requests sees the same multipliers.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from worldgen.engine.rng import mix
from worldgen.engine.solver import SolverBudget, solve
from worldgen.world.model import WorldModel
from worldgen.world.patches import CACHE_READ_ERRORS, cache_dir, read_npz, write_atomic

__all__ = [
    "CALIBRATION_VERSION",
    "ROUNDS",
    "TARGET_SIDE",
    "WINDOW_SIDE",
    "Window",
    "calibration_file",
    "calibration_for",
    "label_ids",
    "learn_multipliers",
    "wants_calibration",
]

F64Array = npt.NDArray[np.float64]
I32Array = npt.NDArray[np.int32]
I64Array = npt.NDArray[np.int64]

CALIBRATION_VERSION = 2
CALIBRATION_SEED = 0x43414C49
ROUNDS = 8
TARGET_SIDE = 128
WINDOW_SIDE = 128
FIRST_STEP = 0.3
"""A label's first move, in natural log units of its multiplier."""
GROW = 1.6
MAX_LOG_STEP = 1.0
DEAD_BAND = 0.005
"""A label within this share of cells of its target does not move."""
KEEP = 3
"""The multipliers are the mean (in log) of the last KEEP rounds'."""

Window = Callable[[F64Array, int], I32Array]
"""``(per-variant multipliers (T,), world seed) -> final variant ids of a WINDOW_SIDE² window``."""

_MEMO: dict[str, F64Array | None] = {}
_GUARD = threading.Lock()


def wants_calibration(model: WorldModel) -> bool:
    """Whether refinement solves of ``model`` are calibrated (one class, no tags, no ground)."""
    return len(model.class_names) == 1 and not any(model.variant_tags) and model.ground < 0


def label_ids(model: WorldModel) -> I64Array:
    """Per variant, the id of its label: the shown colour of a sample cell, the tile name (the
    orientation dropped) of a tileset cell; ids in sorted-label order."""
    if model.colours is not None:
        rgb = model.colours.astype(np.int64)
        keys = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
        ids: I64Array = np.unique(keys, return_inverse=True)[1].astype(np.int64)
        return ids
    names = [label.rsplit(" ", 1)[0] for label in model.labels]
    order = {name: i for i, name in enumerate(sorted(set(names)))}
    return np.array([order[n] for n in names], dtype=np.int64)


def _target(model: WorldModel, labels: I64Array, count: int) -> F64Array | None:
    """Label frequencies of a plain solve, or None if no plain solve succeeds."""
    res = solve(
        model.compiled, TARGET_SIDE, TARGET_SIDE,
        periodic=model.colours is not None,
        seed=mix(CALIBRATION_SEED, 1),
        budget=SolverBudget(max_attempts=20, max_backtracks=2000),
    )  # fmt: skip
    if not res.solved:
        return None
    freq: F64Array = np.bincount(labels[res.grid].ravel(), minlength=count) / res.grid.size
    return freq


def learn_multipliers(model: WorldModel, window: Window) -> F64Array | None:
    """Per-variant multipliers (T,) in ``(0, 1]`` for ``model``'s refinement solves, learnt with
    ``window`` (see the module docstring); None when no plain solve exists to aim at."""
    labels = label_ids(model)
    count = int(labels.max()) + 1
    target = _target(model, labels, count)
    if target is None:
        return None
    log_mult = np.zeros(count, dtype=np.float64)
    step = np.full(count, FIRST_STEP, dtype=np.float64)
    last = np.zeros(count, dtype=np.float64)
    kept: list[F64Array] = []
    for r in range(ROUNDS):
        mult = np.exp(log_mult - log_mult.max())
        grid = window(mult[labels], mix(CALIBRATION_SEED, 2, r) & 0xFFFF_FFFF)
        freq = np.bincount(labels[grid].ravel(), minlength=count) / grid.size
        # the direction each label must move; none within DEAD_BAND of its target (a rare
        # label that one window misses must not climb round after round)
        sign = np.where(np.abs(target - freq) < DEAD_BAND, 0.0, np.sign(target - freq))
        # a label's response to its weight is unknown and often weak (the shared dungeon's
        # background: its share moves ~0.1x as much as its weight): the step grows while the
        # direction holds and halves when it turns
        step = np.where(sign * last > 0, np.minimum(step * GROW, MAX_LOG_STEP), step)
        step = np.where(sign * last < 0, step / 2.0, step)
        log_mult += sign * step
        last = np.where(sign != 0, sign, last)
        kept.append(log_mult - log_mult.max())
    mean = np.mean(kept[-KEEP:], axis=0)  # the windows are noisy: the last rounds' mean
    out: F64Array = np.exp(mean - mean.max())[labels]
    return out


def _key(library_version: str, layers: int) -> str:
    text = f"{library_version}-L{layers}-c{CALIBRATION_VERSION}-{ROUNDS}-{TARGET_SIDE}"
    text += f"-{WINDOW_SIDE}-{FIRST_STEP}-{GROW}-{MAX_LOG_STEP}-{DEAD_BAND}-{KEEP}"
    text += f"-{CALIBRATION_SEED}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def calibrations_dir() -> Path:
    """Where learnt multipliers are cached: beside the patch libraries."""
    return cache_dir().parent / "calibrations"


def calibration_file(library_version: str, layers: int) -> Path:
    """The cache file of the multipliers of a library at ``layers`` layers (it exists once
    :func:`calibration_for` learnt them; copied between machines with an uploaded model)."""
    return calibrations_dir() / f"{_key(library_version, layers)}.npz"


def _load(path: Path, size: int) -> F64Array | None:
    try:
        with read_npz(path) as data:
            mult = np.asarray(data["multipliers"], dtype=np.float64)
    except CACHE_READ_ERRORS:
        return None
    ok = mult.shape == (size,) and bool(np.all(np.isfinite(mult))) and float(mult.min()) > 0
    return mult if ok else None


def _save(path: Path, mult: F64Array) -> None:
    write_atomic(path, lambda fh: np.savez(fh, multipliers=mult))


def calibration_for(
    model: WorldModel, library_version: str, layers: int, window: Window
) -> F64Array | None:
    """The multipliers of ``model``'s refinement solves at ``layers`` layers: memoised, then from
    the disk cache, else learnt with ``window`` and cached. None: not calibrated (the model does
    not want it, there are no refinement layers, or no plain solve exists)."""
    if layers < 1 or not wants_calibration(model):
        return None
    key = _key(library_version, layers)
    with _GUARD:
        if key in _MEMO:
            return _MEMO[key]
    path = calibration_file(library_version, layers)
    mult = _load(path, model.size)
    if mult is None:
        mult = learn_multipliers(model, window)
        # an uncalibratable model is stored as all ones, so it is not retried in every process
        _save(path, mult if mult is not None else np.ones(model.size))
    elif bool(np.all(mult == 1.0)):
        mult = None
    if mult is not None:
        mult.setflags(write=False)
    with _GUARD:
        return _MEMO.setdefault(key, mult)
