"""Model-level generation: from a loaded sample or tileset to a solved grid and its picture.

The solver knows only rule tables and grids of cells; what a cell *means* is decided here. An
overlapping model's bounded output of ``width × height`` pixels needs only a wave of
:func:`~worldgen.engine.patterns.wave_shape` cells (the last pattern of each row and column
covers the remaining N-1 pixels), and the classic *ground* option becomes solver constraints
(:func:`ground_constraints`). A tiled output has one cell per tile.

A grid the solver reports as solved is checked against the rules once more
(:func:`grid_is_valid`, linear in the cells) and reported as failed if it breaks one, so no
caller is ever handed an invalid "solved" output.

Compiling a rule table into bitsets takes a noticeable time for large pattern sets (about 2 s for
200 patterns), so the compiled table is kept per model object for as long as the model lives.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from worldgen.engine.patterns import (
    OverlappingModel,
    colour_indices,
    extract_patterns,
    load_sample,
    render_overlapping,
    wave_shape,
)
from worldgen.engine.rules import forbidden_pairs
from worldgen.engine.solver import (
    CompiledRules,
    Constraints,
    Heuristic,
    SolverBudget,
    SolveResult,
    compile_rules,
    solve,
)
from worldgen.engine.tileset import Tileset, render_tiled
from worldgen.errors import InputError

__all__ = [
    "GenerateResult",
    "OverlappingJob",
    "build_overlapping",
    "compiled_rules",
    "generate_overlapping",
    "generate_tiled",
    "grid_is_valid",
    "ground_constraints",
    "overlapping_json",
    "tiled_json",
]

U8Array = npt.NDArray[np.uint8]
Model = OverlappingModel | Tileset


@dataclass(frozen=True)
class OverlappingJob:
    """What it takes to build an overlapping model: the sample and how to cut it.

    ``ground`` is carried for the caller (pass it on to :func:`generate_overlapping`); it does not
    change the patterns.
    """

    sample: Path
    N: int = 3
    symmetry: int = 8
    periodic_input: bool = True
    ground: bool = False


def build_overlapping(job: OverlappingJob) -> OverlappingModel:
    """Load the job's sample and cut its patterns; raises :class:`~worldgen.errors.InputError`."""
    sample, palette = load_sample(job.sample)
    return extract_patterns(sample, palette, job.N, job.symmetry, job.periodic_input)


# Compiled tables keyed by the model object (models compare by identity); entries go away with
# their model. The lock only guards the dictionary: two threads may compile the same table once
# each, which is harmless.
_COMPILED: weakref.WeakKeyDictionary[Model, CompiledRules] = weakref.WeakKeyDictionary()
_COMPILED_LOCK = threading.Lock()


def compiled_rules(model: Model) -> CompiledRules:
    """The solver's compiled rule table of ``model``, compiled on first use and then reused."""
    with _COMPILED_LOCK:
        found = _COMPILED.get(model)
    if found is not None:
        return found
    compiled = compile_rules(model.rules())
    with _COMPILED_LOCK:
        _COMPILED[model] = compiled
    return compiled


def ground_constraints(model: OverlappingModel, wave_w: int, wave_h: int) -> Constraints:
    """The classic *ground* option as constraints on a ``wave_w × wave_h`` wave.

    Every cell of the bottom wave row is pinned to :attr:`OverlappingModel.ground_pattern`, and
    that pattern is banned in every other row, so the sample's ground appears only at the bottom.
    """
    if wave_w < 1 or wave_h < 1:
        raise InputError(f"wave size must be at least 1x1, got {wave_w}x{wave_h}")
    ground = model.ground_pattern
    pins = np.full((wave_h, wave_w), -1, dtype=np.int32)
    pins[-1, :] = ground
    bans = np.zeros((wave_h, wave_w, model.size), dtype=np.bool_)
    bans[:-1, :, ground] = True
    return Constraints(pins=pins, bans=bans)


def grid_is_valid(
    grid: npt.NDArray[np.int32], allowed: npt.NDArray[np.bool_], periodic: bool
) -> bool:
    """True when every cell holds a pattern and every pair of neighbours is allowed."""
    g = np.asarray(grid)
    if g.size == 0 or int(g.min()) < 0:
        return False
    return forbidden_pairs(g, allowed, periodic) == 0


def _checked(result: SolveResult, allowed: npt.NDArray[np.bool_], periodic: bool) -> SolveResult:
    # Nothing is written as "solved" unless it is: a solved grid that breaks a rule (which only
    # a solver bug could produce) is reported as a failed solve instead.
    if not result.solved or grid_is_valid(result.grid, allowed, periodic):
        return result
    return dataclasses.replace(result, status="failed", reason="contradiction")


@dataclass(frozen=True, eq=False)
class GenerateResult:
    """One generated output: the solver's result plus what is needed to show it.

    ``width``/``height`` are the requested output size: pixels for the overlapping model, tiles
    for the tiled model. ``result.grid`` is the wave (``wave_height × wave_width`` pattern ids).
    ``image`` is the ``(height * cell_px, width * cell_px, 4)`` RGBA picture, drawn on first
    access (undetermined parts of a failed solve are grey). ``setup_s`` is the time spent here
    before solving (compiling rules, building constraints); loading the model is not included.
    """

    result: SolveResult
    kind: Literal["overlapping", "tiled"]
    width: int
    height: int
    periodic: bool
    patterns: int
    setup_s: float
    cell_px: int
    render: Callable[[], U8Array] = field(repr=False)

    @cached_property
    def image(self) -> U8Array:
        """The RGBA picture of the result (``uint8``, ``(H * cell_px, W * cell_px, 4)``)."""
        return self.render()

    @property
    def solved(self) -> bool:
        """True when the solver found a complete, valid grid."""
        return self.result.solved

    def stats(self) -> dict[str, Any]:
        """Plain JSON-ready numbers about this run."""
        r = self.result
        wave_h, wave_w = r.grid.shape
        return {
            "status": r.status,
            "reason": r.reason,
            "kind": self.kind,
            "width": self.width,
            "height": self.height,
            "wave_width": int(wave_w),
            "wave_height": int(wave_h),
            "periodic": self.periodic,
            "patterns": self.patterns,
            "setup_s": self.setup_s,
            "solve_s": r.solve_s,
            "attempts": r.attempts,
            "backtracks": r.backtracks,
            "observations": r.observations,
        }


def generate_overlapping(
    model: OverlappingModel,
    width: int,
    height: int,
    *,
    periodic: bool,
    seed: int,
    heuristic: Heuristic = "entropy",
    ground: bool = False,
    budget: SolverBudget | None = None,
) -> GenerateResult:
    """Generate a ``width × height`` pixel picture in the style of ``model``'s sample.

    ``periodic`` makes the output wrap (one cell per pixel); a bounded output solves the smaller
    wave of :func:`~worldgen.engine.patterns.wave_shape`. ``ground`` applies
    :func:`ground_constraints`.
    """
    started = time.perf_counter()
    wave_w, wave_h = wave_shape(width, height, model.N, periodic)
    rules = compiled_rules(model)
    constraints = ground_constraints(model, wave_w, wave_h) if ground else None
    setup_s = time.perf_counter() - started
    result = solve(
        rules,
        wave_w,
        wave_h,
        periodic=periodic,
        seed=seed,
        heuristic=heuristic,
        constraints=constraints,
        budget=budget,
    )
    result = _checked(result, model.allowed, periodic)
    return GenerateResult(
        result=result,
        kind="overlapping",
        width=width,
        height=height,
        periodic=periodic,
        patterns=model.size,
        setup_s=setup_s,
        cell_px=1,
        render=lambda: render_overlapping(model, result.grid, width, height, periodic),
    )


def generate_tiled(
    tileset: Tileset,
    width: int,
    height: int,
    *,
    periodic: bool,
    seed: int,
    heuristic: Heuristic = "entropy",
    budget: SolverBudget | None = None,
) -> GenerateResult:
    """Generate a ``width × height`` grid of ``tileset``'s oriented tiles.

    The image needs a tileset loaded with images; a tileset loaded without them still solves.
    """
    started = time.perf_counter()
    rules = compiled_rules(tileset)
    setup_s = time.perf_counter() - started
    result = solve(
        rules, width, height, periodic=periodic, seed=seed, heuristic=heuristic, budget=budget
    )
    result = _checked(result, tileset.allowed, periodic)
    return GenerateResult(
        result=result,
        kind="tiled",
        width=width,
        height=height,
        periodic=periodic,
        patterns=tileset.size,
        setup_s=setup_s,
        cell_px=tileset.tile_size,
        render=lambda: render_tiled(tileset, result.grid),
    )


def tiled_json(tileset: Tileset, grid: npt.NDArray[np.integer]) -> dict[str, Any]:
    """The JSON document of a tiled grid: every oriented variant, then the cells row by row.

    ``tiles`` lists *all* variants in tileset order (``"<tile name> <orientation>"``) so that
    indices mean the same for every grid of the tileset; ``cells`` holds, row-major, the index
    into ``tiles`` of each cell, or -1 where a failed solve left the cell undetermined.
    """
    g = np.asarray(grid)
    if g.ndim != 2 or not np.issubdtype(g.dtype, np.integer):
        raise InputError(f"grid must be a 2-D integer array, got {g.dtype} of shape {g.shape}")
    if g.size and (int(g.min()) < -1 or int(g.max()) >= tileset.size):
        raise InputError(f"grid holds ids outside -1..{tileset.size - 1} for {tileset.name}")
    height, width = g.shape
    return {
        "width": int(width),
        "height": int(height),
        "tiles": list(tileset.variant_names),
        "cells": [int(v) for v in g.reshape(-1)],
    }


def _hex_colour(rgba: U8Array) -> str:
    r, g, b, a = (int(v) for v in rgba)
    return f"#{r:02x}{g:02x}{b:02x}" + ("" if a == 255 else f"{a:02x}")


def overlapping_json(
    model: OverlappingModel,
    grid: npt.NDArray[np.int32],
    width: int,
    height: int,
    periodic: bool,
) -> dict[str, Any]:
    """The JSON document of an overlapping output: its palette, then each pixel's colour index.

    ``colors`` lists the sample's palette as ``"#rrggbb"`` (``"#rrggbbaa"`` for a colour that is
    not opaque); ``cells`` holds, row-major, the index into ``colors`` of each pixel, or -1 where
    no determined pattern covers it.
    """
    indices = colour_indices(model, grid, width, height, periodic)
    return {
        "width": int(width),
        "height": int(height),
        "colors": [_hex_colour(c) for c in model.palette],
        "cells": [int(v) for v in indices.reshape(-1)],
    }
