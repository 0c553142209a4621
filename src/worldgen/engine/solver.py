"""The public solver API: one core for the simple tiled and the overlapping model.

:func:`solve` validates everything at the boundary, compiles the rule table into bitsets
(:class:`CompiledRules`, reusable across solves), applies the constraints (pins, bans, weight
multipliers), propagates them **before** the first observation, then runs bounded attempts of the
numba kernel. Each attempt has its own seed, derived from the caller's seed; inside an attempt a
contradiction undoes the decisions around it and re-propagates (bounded local backtracking). The
result is typed: solved, or failed with the partial state and the reason. Same inputs give
byte-identical output in any process, with the JIT on or off.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from worldgen.engine import _kernels as kern
from worldgen.engine.rng import PURPOSE_ATTEMPT, mix
from worldgen.engine.rules import DX, DY, RuleTable, from_bitsets, to_bitsets, words_for
from worldgen.errors import ConstraintError, InputError

Heuristic = Literal["entropy", "mrv", "scanline"]
HEURISTICS: dict[str, int] = {
    "entropy": kern.H_ENTROPY,
    "mrv": kern.H_MRV,
    "scanline": kern.H_SCANLINE,
}

MAX_CELLS = 4096 * 4096
"""Largest grid one solve accepts (cells); bigger outputs belong to the world generator."""

# Below this many possible patterns a cell's neighbour mask is built bit by bit, above it
# through the byte look-up table (fewer, but wider, memory reads).
_LUT_MIN_COUNT = 6
# The byte look-up table grows as 4*NW*8*256*NW words; past 16 words (1024 patterns) it would
# exceed 64 MiB, so larger tables propagate bit by bit only.
_LUT_MAX_WORDS = 16

IntGrid = npt.NDArray[np.int32]


@dataclass(frozen=True, eq=False)
class CompiledRules:
    """A rule table packed for the kernels. Build once per model with :func:`compile_rules`.

    ``compat[d, t]`` is the bitset of patterns allowed next to t in direction d; ``lut`` its
    byte-wise unions; ``weights``/``wlogw`` the base weight row; ``push_all`` is true when some
    pattern lacks a neighbour in some direction, so the unconstrained grid is not yet consistent.
    """

    patterns: int
    words: int
    compat: npt.NDArray[np.uint64]
    lut: npt.NDArray[np.uint64]
    lut_min: int
    weights: npt.NDArray[np.float64]
    push_all: bool


def compile_rules(rules: RuleTable) -> CompiledRules:
    """Validate ``rules`` and pack them into bitsets and byte look-up tables."""
    table = rules.validated()
    t = table.size
    nw = words_for(t)
    compat = to_bitsets(table.allowed)  # (4, T, NW)
    if nw <= _LUT_MAX_WORDS:
        rows = nw * 8
        # compat rows per (byte position k, bit): pattern 8k+bit, or nothing past the last one.
        padded = np.zeros((4, rows * 8, nw), dtype=np.uint64)
        padded[:, :t] = compat
        per_bit = padded.reshape(4, rows, 8, nw)
        lut = np.zeros((4, rows, 256, nw), dtype=np.uint64)
        for value in range(1, 256):
            low = value & -value
            lut[:, :, value] = lut[:, :, value ^ low] | per_bit[:, :, low.bit_length() - 1]
        lut_min = _LUT_MIN_COUNT
    else:
        lut = np.zeros((4, 1, 256, nw), dtype=np.uint64)
        lut_min = t + 1
    push_all = not all(bool(table.allowed[d].any(axis=1).all()) for d in range(4))
    return CompiledRules(
        patterns=t,
        words=nw,
        compat=np.ascontiguousarray(compat),
        lut=np.ascontiguousarray(lut),
        lut_min=lut_min,
        weights=table.weights,
        push_all=push_all,
    )


@dataclass(frozen=True)
class SolverBudget:
    """Bounds that make every solve finish: attempts, rollbacks per attempt, observations."""

    max_attempts: int = 10
    max_backtracks: int = 1000
    max_observations: int | None = None  # default: 4 * cells + 1000, over all attempts

    def observation_limit(self, cells: int) -> int:
        """The total observation budget for a grid of ``cells`` cells."""
        return self.max_observations if self.max_observations is not None else 4 * cells + 1000


@dataclass(frozen=True)
class Constraints:
    """What the caller fixes before solving; all optional. Grids are indexed ``[y, x]``.

    * ``pins``: (H, W) int, -1 for free cells, else the pattern the cell must take.
    * ``bans``: (H, W, T) bool, true where the pattern is forbidden at that cell.
    * ``bias``: per-cell weight multipliers, either (H, W, T) floats > 0, or a pair
      ``(profiles (P, T) floats > 0, cell_profile (H, W) int in [0, P))`` which is cheaper.
    """

    pins: npt.NDArray[np.integer] | None = None
    bans: npt.NDArray[np.bool_] | None = None
    bias: (
        npt.NDArray[np.floating] | tuple[npt.NDArray[np.floating], npt.NDArray[np.integer]] | None
    ) = None


@dataclass(frozen=True, eq=False)
class SolveResult:
    """The outcome of :func:`solve`.

    ``grid`` holds the chosen pattern per cell (``[y, x]``), -1 where a failed solve left the cell
    undecided; ``words`` the final per-cell possibilities as bitsets (H, W, NW) and ``wave`` the
    same unpacked to (H, W, T) bool, for partial rendering.
    ``reason`` is None when solved, else ``"constraints"`` (the constraints contradict each
    other or the rules), ``"contradiction"`` (every attempt failed) or ``"budget"`` (the
    observation budget ran out).
    """

    status: Literal["solved", "failed"]
    reason: Literal["constraints", "contradiction", "budget"] | None
    grid: IntGrid
    words: npt.NDArray[np.uint64]
    patterns: int
    attempts: int
    backtracks: int
    observations: int
    solve_s: float

    @property
    def wave(self) -> npt.NDArray[np.bool_]:
        """The final possibilities per cell, (H, W, T) bool (unpacked from ``words`` on demand)."""
        return from_bitsets(self.words, self.patterns)

    @property
    def solved(self) -> bool:
        """True when every cell holds exactly one pattern and every rule holds."""
        return self.status == "solved"


def neighbour_table(width: int, height: int, periodic: bool) -> npt.NDArray[np.int64]:
    """(cells, 4) neighbour index of every cell in directions left, down, right, up; -1 past an
    edge of a bounded grid. A fresh array the caller may modify (see :func:`_shared_neighbours`)."""
    ys, xs = np.divmod(np.arange(width * height, dtype=np.int64), width)
    table = np.empty((width * height, 4), dtype=np.int64)
    for d, (dx, dy) in enumerate(zip(DX, DY, strict=True)):
        nx = xs + dx
        ny = ys + dy
        if periodic:
            table[:, d] = (ny % height) * width + nx % width
        else:
            inside = (nx >= 0) & (nx < width) & (ny >= 0) & (ny < height)
            table[:, d] = np.where(inside, ny * width + nx, -1)
    return table


# Solves of one shape repeat (a world solves thousands of S x S blocks): keep their neighbour
# tables. Bounded; the kernels only read the table, and it never leaves this module.
_NEIGHBOURS: dict[tuple[int, int, bool], npt.NDArray[np.int64]] = {}
_NEIGHBOURS_MAX_CELLS = 1 << 16
_NEIGHBOURS_MAX_SHAPES = 64


def _shared_neighbours(width: int, height: int, periodic: bool) -> npt.NDArray[np.int64]:
    """:func:`neighbour_table`, memoised for small grids (never modified by the kernels)."""
    if width * height > _NEIGHBOURS_MAX_CELLS:
        return neighbour_table(width, height, periodic)
    key = (width, height, periodic)
    table = _NEIGHBOURS.get(key)
    if table is None:
        if len(_NEIGHBOURS) >= _NEIGHBOURS_MAX_SHAPES:
            _NEIGHBOURS.clear()
        table = _NEIGHBOURS[key] = neighbour_table(width, height, periodic)
    return table


def _check_size(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise InputError(f"grid size must be at least 1x1, got {width}x{height}")
    if width * height > MAX_CELLS:
        raise InputError(
            f"grid {width}x{height} has {width * height} cells; the limit is {MAX_CELLS}"
        )


def _profiles(
    constraints: Constraints, cr: CompiledRules, width: int, height: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int32]]:
    """Weight rows and the row index of each cell, from the base weights and the bias."""
    t = cr.patterns
    base = cr.weights
    bias = constraints.bias
    cells = width * height
    if bias is None:
        return base[None, :].copy(), np.zeros(cells, dtype=np.int32)
    if isinstance(bias, tuple):
        rows = np.asarray(bias[0], dtype=np.float64)
        cell_profile = np.asarray(bias[1])
        if rows.ndim != 2 or rows.shape[1] != t:
            raise ConstraintError(f"bias profiles must have shape (P, {t}), got {rows.shape}")
        if cell_profile.shape != (height, width):
            raise ConstraintError(
                f"bias cell profiles must have shape ({height}, {width}), got {cell_profile.shape}"
            )
        if not np.issubdtype(cell_profile.dtype, np.integer) or (
            cell_profile.size
            and (int(cell_profile.min()) < 0 or int(cell_profile.max()) >= rows.shape[0])
        ):
            raise ConstraintError(f"bias cell profiles must be integers in [0, {rows.shape[0]})")
        index = cell_profile.reshape(-1).astype(np.int32)
    else:
        dense = np.asarray(bias, dtype=np.float64)
        if dense.shape != (height, width, t):
            raise ConstraintError(
                f"bias must have shape ({height}, {width}, {t}), got {dense.shape}"
            )
        rows, inverse = np.unique(dense.reshape(cells, t), axis=0, return_inverse=True)
        index = inverse.reshape(-1).astype(np.int32)
    if not np.all(np.isfinite(rows)) or np.any(rows <= 0):
        raise ConstraintError("weight multipliers must be finite and above 0")
    return np.ascontiguousarray(rows * base[None, :]), np.ascontiguousarray(index)


def _initial_wave(
    constraints: Constraints, cr: CompiledRules, width: int, height: int
) -> npt.NDArray[np.uint64]:
    """Every pattern everywhere, minus bans, with pins reduced to their single pattern."""
    t = cr.patterns
    cells = width * height
    full = to_bitsets(np.ones(t, dtype=np.bool_))
    if constraints.bans is None:
        wave = np.empty((cells, cr.words), dtype=np.uint64)
        wave[:] = full
    else:
        bans = np.asarray(constraints.bans)
        if bans.shape != (height, width, t) or bans.dtype != np.bool_:
            raise ConstraintError(f"bans must be a bool array of shape ({height}, {width}, {t})")
        wave = to_bitsets(~bans.reshape(cells, t))
    if constraints.pins is not None:
        pins = np.asarray(constraints.pins)
        if pins.shape != (height, width) or not np.issubdtype(pins.dtype, np.integer):
            raise ConstraintError(f"pins must be an int array of shape ({height}, {width})")
        if pins.size and (int(pins.min()) < -1 or int(pins.max()) >= t):
            raise ConstraintError(f"pins must be -1 (free) or a pattern index in [0, {t})")
        cell_ids = np.flatnonzero(pins.reshape(-1) >= 0)
        chosen = pins.reshape(-1)[cell_ids].astype(np.int64)
        word = chosen // 64
        bit = np.left_shift(np.uint64(1), (chosen % 64).astype(np.uint64))
        if not np.all(wave[cell_ids, word] & bit):
            raise ConstraintError("a pinned cell's pattern is also banned at that cell")
        wave[cell_ids] = 0
        wave[cell_ids, word] = bit
    return np.ascontiguousarray(wave)


def solve(
    rules: RuleTable | CompiledRules,
    width: int,
    height: int,
    *,
    periodic: bool = False,
    seed: int = 0,
    heuristic: Heuristic = "entropy",
    constraints: Constraints | None = None,
    budget: SolverBudget | None = None,
) -> SolveResult:
    """Solve a ``width`` x ``height`` grid under ``rules``; never loops without bound.

    ``periodic`` makes the grid a torus. Constraints are applied and propagated before the first
    observation; if they contradict, the result is failed with reason ``"constraints"``.
    """
    _check_size(width, height)
    if heuristic not in HEURISTICS:
        raise InputError(f"unknown heuristic {heuristic!r}; use one of {', '.join(HEURISTICS)}")
    cr = rules if isinstance(rules, CompiledRules) else compile_rules(rules)
    constraints = constraints or Constraints()
    budget = budget or SolverBudget()
    if budget.max_attempts < 1 or budget.max_backtracks < 0:
        raise InputError("the budget needs at least one attempt and a non-negative backtrack limit")
    cells = width * height
    weight_rows, profile = _profiles(constraints, cr, width, height)
    wlogw = np.ascontiguousarray(weight_rows * np.log(weight_rows))
    wave0 = _initial_wave(constraints, cr, width, height)
    if periodic and (width == 1 or height == 1):
        # On a torus one cell wide a cell is its own neighbour: keep only the patterns that may
        # sit next to themselves along that axis (before any observation, like other constraints).
        diagonal = np.arange(cr.patterns)
        self_ok = np.ones(cr.patterns, dtype=np.bool_)
        for d, thin in ((2, width == 1), (1, height == 1)):
            if thin:
                bits = (
                    cr.compat[d, diagonal, diagonal // 64] >> (diagonal % 64).astype(np.uint64)
                ) & 1
                self_ok &= bits.astype(np.bool_)
        wave0 &= to_bitsets(self_ok)[None, :]

    started = time.perf_counter()
    nbr = _shared_neighbours(width, height, periodic)
    count0 = np.zeros(cells, dtype=np.int32)
    sumw0 = np.zeros(cells, dtype=np.float64)
    sumwl0 = np.zeros(cells, dtype=np.float64)
    with np.errstate(over="ignore"):
        kern.init_sums(wave0, profile, weight_rows, wlogw, count0, sumw0, sumwl0)
        consistent = bool(
            kern.initial_propagate(
                cr.push_all, nbr, cr.compat, cr.lut, cr.lut_min, wave0,
                count0, sumw0, sumwl0, profile, weight_rows, wlogw, cr.patterns,
            )
        )  # fmt: skip
    if not consistent:
        return _result("failed", "constraints", wave0, cr, width, height, 0, 0, 0, started)

    stats = np.zeros(2, dtype=np.int64)
    limit = budget.observation_limit(cells)
    status = kern.R_CONTRADICTION
    attempts = 0
    wave = wave0
    for attempt in range(budget.max_attempts):
        attempts = attempt + 1
        wave = wave0.copy()
        count = count0.copy()
        sumw = sumw0.copy()
        sumwl = sumwl0.copy()
        stream = np.uint64(mix(seed, PURPOSE_ATTEMPT, attempt))
        remaining = limit - int(stats[0])
        if remaining <= 0:
            status = kern.R_BUDGET
            break
        with np.errstate(over="ignore"):
            status = int(
                kern.run_attempt(
                    stream, HEURISTICS[heuristic], width, height, periodic, nbr, cr.compat, cr.lut,
                    cr.lut_min, wave, count, sumw, sumwl, profile, weight_rows, wlogw,
                    budget.max_backtracks, remaining, stats,
                )
            )  # fmt: skip
        if status != kern.R_CONTRADICTION:
            break
    observations, backtracks = int(stats[0]), int(stats[1])
    if status == kern.R_SOLVED:
        return _result(
            "solved", None, wave, cr, width, height, attempts, observations, backtracks, started
        )
    reason: Literal["contradiction", "budget"] = (
        "budget" if status == kern.R_BUDGET else "contradiction"
    )
    return _result(
        "failed", reason, wave, cr, width, height, attempts, observations, backtracks, started
    )


def _result(
    status: Literal["solved", "failed"],
    reason: Literal["constraints", "contradiction", "budget"] | None,
    wave: npt.NDArray[np.uint64],
    cr: CompiledRules,
    width: int,
    height: int,
    attempts: int,
    observations: int,
    backtracks: int,
    started: float,
) -> SolveResult:
    elapsed = time.perf_counter() - started
    grid = np.empty(width * height, dtype=np.int32)
    with np.errstate(over="ignore"):  # uint64 wrap-around is intended (JIT-off mode)
        kern.decode_grid(wave, grid)
    return SolveResult(
        status=status,
        reason=reason,
        grid=grid.reshape(height, width),
        words=wave.reshape(height, width, cr.words),
        patterns=cr.patterns,
        attempts=attempts,
        backtracks=backtracks,
        observations=observations,
        solve_s=elapsed,
    )


def warm_up() -> float:
    """Compile (or load from the cache) every kernel on a tiny problem; returns seconds spent."""
    started = time.perf_counter()
    allowed = np.ones((4, 2, 2), dtype=np.bool_)
    allowed[:, 0, 1] = False
    allowed[:, 1, 0] = False
    rules = RuleTable(allowed=allowed, weights=np.array([1.0, 2.0]))
    for heuristic in HEURISTICS:
        solve(rules, 3, 3, seed=1, heuristic=heuristic)  # type: ignore[arg-type]
    return time.perf_counter() - started
