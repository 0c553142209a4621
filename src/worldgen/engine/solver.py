"""The public solver API: one core for the simple tiled and the overlapping model.

:func:`solve` validates everything at the boundary, applies the constraints (pins, bans, weight
multipliers), and hands the rest to one kernel call, which propagates the constraints **before**
the first observation and then runs bounded attempts. Each attempt has its own seed, derived from
the caller's seed; inside an attempt a contradiction undoes the decisions around it and
re-propagates (bounded local backtracking). The result is typed: solved, or failed with the
partial state and the reason. Same inputs give byte-identical output in any process, with the
JIT on or off, whichever propagation method runs (when no contradiction occurs).

Rule tables are compiled once (:func:`compile_rules`, :mod:`worldgen.engine.compiled`).
Repeated solves of one grid shape reuse their work arrays: :class:`Solver` keeps its own, and
:func:`solve` keeps a few per thread for small grids (a world solves thousands of S x S blocks).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from worldgen.engine import _kernels as kern
from worldgen.engine.compiled import CompiledRules, Method, compile_rules
from worldgen.engine.rng import MASK64
from worldgen.engine.rules import DX, DY, RuleTable, from_bitsets, to_bitsets
from worldgen.errors import ConstraintError, InputError

__all__ = [
    "HEURISTICS",
    "MAX_CELLS",
    "OUTPUT_VERSION",
    "CompiledRules",
    "Constraints",
    "Heuristic",
    "SolveResult",
    "Solver",
    "SolverBudget",
    "compile_rules",
    "neighbour_table",
    "solve",
    "warm_up",
]

Heuristic = Literal["entropy", "mrv", "scanline"]
HEURISTICS: dict[str, int] = {
    "entropy": kern.H_ENTROPY,
    "mrv": kern.H_MRV,
    "scanline": kern.H_SCANLINE,
}

MAX_CELLS = 4096 * 4096
"""Largest grid one solve accepts (cells); bigger outputs belong to the world generator."""

OUTPUT_VERSION = 2
"""Bumped whenever the same inputs give different output bytes; anything that caches solver
output (patch libraries, tiles) should fold it into its version."""

# Weights become integers in fixed point: each weight row is scaled so its largest weight is
# 2**40 (at least 1 each), which keeps every cell's sums exact and below 2**62 for T <= 4096.
_FIXED_POINT = float(1 << 40)

IntGrid = npt.NDArray[np.int32]
I64Array = npt.NDArray[np.int64]
U64Array = npt.NDArray[np.uint64]


@dataclass(frozen=True)
class SolverBudget:
    """Bounds that make every solve finish: attempts, rollbacks and observations.

    Each attempt may make ``attempt_observations`` observations (default ``4 * cells + 1000``);
    an attempt that runs out gives way to the next one, so repairs never starve the restarts.
    ``max_observations``, when set, bounds the observations of all attempts together.
    """

    max_attempts: int = 10
    max_backtracks: int = 1000  # local repairs per attempt
    max_observations: int | None = None
    attempt_observations: int | None = None

    def attempt_limit(self, cells: int) -> int:
        """The observations one attempt may make on a grid of ``cells`` cells."""
        if self.attempt_observations is not None:
            return self.attempt_observations
        return 4 * cells + 1000

    def observation_limit(self, cells: int) -> int:
        """The observations all attempts together may make on a grid of ``cells`` cells."""
        if self.max_observations is not None:
            return self.max_observations
        return self.max_attempts * self.attempt_limit(cells)


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
    other or the rules), ``"contradiction"`` (every attempt failed) or ``"budget"`` (the last
    attempt ran out of observations).
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
    order: npt.NDArray[np.int64] | None = None
    """(H, W): the observation (1, 2, ...) whose step decided each cell in the last attempt; 0
    for cells decided before the first (pins, and what the constraints force), -1 for cells
    left undecided. Cells revealed in this order replay the solve."""

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
    edge of a bounded grid (the definition the kernels' :func:`_edge_codes` follow)."""
    index = np.arange(width * height, dtype=np.int64).reshape(height, width)
    table = np.empty((height, width, 4), dtype=np.int64)
    for d, (dx, dy) in enumerate(zip(DX, DY, strict=True)):
        # rolled by (-dy, -dx), cell (y, x) holds the index of (y + dy, x + dx) on the torus
        table[:, :, d] = np.roll(index, (-dy, -dx), axis=(0, 1))
    if not periodic:  # past an edge of a bounded grid there is no neighbour
        table[:, 0, 0] = table[:, -1, 2] = -1
        table[-1, :, 1] = table[0, :, 3] = -1
    return table.reshape(width * height, 4)


def _edge_codes(width: int, height: int) -> npt.NDArray[np.uint8]:
    """(cells,) the edges of the grid each cell lies on, as the kernels read them: bit d is set
    when one step in direction d (left, down, right, up) leaves the grid before wrapping, i.e.
    where :func:`neighbour_table` has -1 on a bounded grid or wraps on a torus."""
    x = np.arange(width)[None, :]
    y = np.arange(height)[:, None]
    codes = ((x == 0) * 1 + (y == height - 1) * 2 + (x == width - 1) * 4 + (y == 0) * 8).astype(
        np.uint8
    )
    return np.ascontiguousarray(codes.reshape(width * height))


# Solves of one shape repeat (a world solves thousands of S x S blocks): keep their edge codes.
# Bounded; the kernels only read them, and they never leave this module.
_EDGES: dict[tuple[int, int], npt.NDArray[np.uint8]] = {}
_EDGES_MAX_CELLS = 1 << 16
_EDGES_MAX_SHAPES = 64


def _shared_edges(width: int, height: int) -> npt.NDArray[np.uint8]:
    """:func:`_edge_codes`, memoised for small grids (never modified by the kernels)."""
    if width * height > _EDGES_MAX_CELLS:
        return _edge_codes(width, height)
    key = (width, height)
    codes = _EDGES.get(key)
    if codes is None:
        if len(_EDGES) >= _EDGES_MAX_SHAPES:
            _EDGES.clear()
        codes = _EDGES[key] = _edge_codes(width, height)
    return codes


def _check_size(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise InputError(f"grid size must be at least 1x1, got {width}x{height}")
    if width * height > MAX_CELLS:
        raise InputError(
            f"grid {width}x{height} has {width * height} cells; the limit is {MAX_CELLS}"
        )


def fixed_point(rows: npt.NDArray[np.float64]) -> tuple[I64Array, I64Array]:
    """Integer weights ``wi`` (each row's largest weight is 2**40, every weight at least 1) and
    ``wli = round(wi * ln(wi))``, the kernels' exact stand-ins for w and w*log(w).

    Scaling a row changes no entropy and no weighted choice, so only the rounding (a relative
    2**-40) separates these from the float weights.
    """
    top = rows.max(axis=1, keepdims=True)
    wi = np.maximum(np.rint(rows / top * _FIXED_POINT), 1.0)
    wli = np.rint(wi * np.log(wi))
    return np.ascontiguousarray(wi, dtype=np.int64), np.ascontiguousarray(wli, dtype=np.int64)


# Callers pass the same bias profiles again and again (a world: one table for every block);
# their checked fixed-point form is memoised per rule table: by identity for a read-only array
# (kept alive by the entry, so its id stays unique), else by content. Bounded; never modified.
_FIXED: OrderedDict[tuple[object, ...], tuple[object, WeightRows]] = OrderedDict()
_FIXED_MAX_ENTRIES = 32
_FIXED_MAX_BYTES = 1 << 20
_FIXED_LOCK = threading.Lock()

WeightRows = tuple[I64Array, I64Array, I64Array, I64Array]
"""``(wi, wli, full_w, full_wl)``: fixed-point rows and each row's exact totals."""


def _weight_rows(cr: CompiledRules, rows: npt.NDArray[np.float64] | None) -> WeightRows:
    """``fixed_point`` of the base weights times each bias row (``rows`` None: no bias) and the
    row totals, after checking the rows; memoised."""
    if rows is None:
        key: tuple[object, ...] = (cr,)
    elif not rows.flags.writeable:
        key = (cr, "id", id(rows))
    elif rows.nbytes <= _FIXED_MAX_BYTES:
        key = (cr, rows.shape, rows.tobytes())
    else:
        key = ()
    if key:
        with _FIXED_LOCK:
            found = _FIXED.get(key)
            if found is not None and (rows is None or key[1] != "id" or found[0] is rows):
                _FIXED.move_to_end(key)
                return found[1]
    if rows is None:
        wi, wli = fixed_point(cr.weights[None, :])
    else:
        if rows.ndim != 2 or rows.shape[1] != cr.patterns:
            raise ConstraintError(
                f"bias profiles must have shape (P, {cr.patterns}), got {rows.shape}"
            )
        if not np.all(np.isfinite(rows)) or np.any(rows <= 0):
            raise ConstraintError("weight multipliers must be finite and above 0")
        wi, wli = fixed_point(rows * cr.weights[None, :])
    got = (wi, wli, wi.sum(axis=1), wli.sum(axis=1))
    if key:
        with _FIXED_LOCK:
            _FIXED[key] = (rows, got)
            while len(_FIXED) > _FIXED_MAX_ENTRIES:
                _FIXED.popitem(last=False)
    return got


def _profiles(
    constraints: Constraints, cr: CompiledRules, width: int, height: int
) -> tuple[WeightRows, npt.NDArray[np.int32]]:
    """Fixed-point weight rows (with their totals) and the row index of each cell, from the
    base weights and the bias."""
    bias = constraints.bias
    cells = width * height
    if bias is None:
        return _weight_rows(cr, None), _zero_profiles(cells)
    if isinstance(bias, tuple):
        rows = np.asarray(bias[0], dtype=np.float64)
        cell_profile = np.asarray(bias[1])
        weights = _weight_rows(cr, rows)
        if cell_profile.shape != (height, width):
            raise ConstraintError(
                f"bias cell profiles must have shape ({height}, {width}), got {cell_profile.shape}"
            )
        if cell_profile.dtype.kind not in "iu" or (
            cell_profile.size
            and (int(cell_profile.min()) < 0 or int(cell_profile.max()) >= rows.shape[0])
        ):
            raise ConstraintError(f"bias cell profiles must be integers in [0, {rows.shape[0]})")
        return weights, np.ascontiguousarray(cell_profile.reshape(-1), dtype=np.int32)
    t = cr.patterns
    dense = np.asarray(bias, dtype=np.float64)
    if dense.shape != (height, width, t):
        raise ConstraintError(f"bias must have shape ({height}, {width}, {t}), got {dense.shape}")
    unique, inverse = np.unique(dense.reshape(cells, t), axis=0, return_inverse=True)
    weights = _weight_rows(cr, np.ascontiguousarray(unique))
    return weights, np.ascontiguousarray(inverse.reshape(-1), dtype=np.int32)


_ZEROS: dict[int, npt.NDArray[np.int32]] = {}


def _zero_profiles(cells: int) -> npt.NDArray[np.int32]:
    """Profile 0 for every cell (shared read-only arrays for small grids)."""
    if cells > _WORKSPACES_MAX_CELLS:
        return np.zeros(cells, dtype=np.int32)
    got = _ZEROS.get(cells)
    if got is None:
        got = np.zeros(cells, dtype=np.int32)
        got.setflags(write=False)
        _ZEROS[cells] = got
    return got


def _initial_wave(
    constraints: Constraints, cr: CompiledRules, width: int, height: int
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.int32]]:
    """Every pattern everywhere minus bans, and the pins flattened (the kernel applies them)."""
    t = cr.patterns
    cells = width * height
    if constraints.bans is None:
        wave = np.empty((cells, cr.words), dtype=np.uint64)
        wave[:] = cr.full_row
    else:
        bans = np.asarray(constraints.bans)
        if bans.shape != (height, width, t) or bans.dtype != np.bool_:
            raise ConstraintError(f"bans must be a bool array of shape ({height}, {width}, {t})")
        wave = to_bitsets(~bans.reshape(cells, t))
    if constraints.pins is None:
        return wave, _NO_PINS
    pins = np.asarray(constraints.pins)
    if pins.shape != (height, width) or pins.dtype.kind not in "iu":
        raise ConstraintError(f"pins must be an int array of shape ({height}, {width})")
    if pins.size and (int(pins.min()) < -1 or int(pins.max()) >= t):
        raise ConstraintError(f"pins must be -1 (free) or a pattern index in [0, {t})")
    return wave, np.ascontiguousarray(pins.reshape(-1), dtype=np.int32)


def _self_neighbours(cr: CompiledRules, width: int, height: int) -> npt.NDArray[np.uint64]:
    """On a torus one cell wide a cell is its own neighbour: the patterns that may sit next to
    themselves along that axis (the kernel keeps only those, before any observation)."""
    diagonal = np.arange(cr.patterns)
    self_ok = np.ones(cr.patterns, dtype=np.bool_)
    for d, thin in ((2, width == 1), (1, height == 1)):
        if thin:
            bits = (cr.compat[d, diagonal, diagonal // 64] >> (diagonal % 64).astype(np.uint64)) & 1
            self_ok &= bits.astype(np.bool_)
    return to_bitsets(self_ok)


class _Workspace:
    """The kernels' scratch arrays for one (cells, words) size; see :mod:`._kernels`.

    ``dirty_flag`` and ``on_stack`` are all zero between solves (the kernel leaves them so).
    """

    def __init__(self, cells: int, words: int) -> None:
        self.cells = cells
        self.words = words
        self.count = np.empty(cells, dtype=np.int32)
        self.sumw = np.empty(cells, dtype=np.int64)
        self.sumwl = np.empty(cells, dtype=np.int64)
        self.base_wave = np.empty((cells, words), dtype=np.uint64)
        self.base_count = np.empty(cells, dtype=np.int32)
        self.base_sumw = np.empty(cells, dtype=np.int64)
        self.base_sumwl = np.empty(cells, dtype=np.int64)
        self._prev = np.empty((0, words), dtype=np.uint64)
        self._prev_count = np.empty(0, dtype=np.int32)
        # int32: fewer bytes a cell keeps more of the front in the caches at 512²
        self.age = np.empty(cells, dtype=np.int32)
        self.order = np.empty(cells, dtype=np.int32)
        self.dirty = np.empty(cells, dtype=np.int64)
        self.dirty_flag = np.zeros(cells, dtype=np.uint8)
        self.stack = np.empty(cells, dtype=np.int64)
        self.on_stack = np.zeros(cells, dtype=np.uint8)
        self.hkey = np.empty(cells, dtype=np.float64)
        self.hcell = np.empty(cells, dtype=np.int64)
        self.hpos = np.empty(cells, dtype=np.int32)
        self.pool_key = np.empty(cells, dtype=np.float64)
        self.pool_cell = np.empty(cells, dtype=np.int64)
        self.left_pool = np.empty(cells, dtype=np.uint8)
        # Room for every announcement of one cell (4 * keys <= 4 * 64 * words) and then some.
        self.deaths = np.empty(4 * cells + 256 * words + 1024, dtype=np.int64)
        # one direction's mask, then the four directions' unions of the cell being revised
        self.tmp = np.empty(5 * words, dtype=np.uint64)
        self.stats = np.zeros(kern.S_SIZE, dtype=np.int64)
        self._counters = np.empty(0, dtype=np.uint8)

    def previous(self, keyed: bool) -> tuple[U64Array, npt.NDArray[np.int32]]:
        """Each cell's wave and count at its last visit (bits with keys; else empty stand-ins)."""
        if keyed and self._prev.shape[0] != self.cells:
            self._prev = np.empty((self.cells, self.words), dtype=np.uint64)
            self._prev_count = np.empty(self.cells, dtype=np.int32)
        if keyed:
            return self._prev, self._prev_count
        return _NO_PREV, _NO_PREV_COUNT

    def counters(self, n: int) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
        """Two uint8 buffers of ``n`` key counters (live and baseline), grown on demand."""
        if self._counters.shape[0] < 2 * n:
            self._counters = np.empty(2 * n, dtype=np.uint8)
        return self._counters[:n], self._counters[n : 2 * n]


# Per thread, the workspaces of the last few small sizes :func:`solve` met.
_WORKSPACES = threading.local()
_WORKSPACES_MAX = 4
_WORKSPACES_MAX_CELLS = 1 << 16


def _shared_workspace(cells: int, words: int) -> _Workspace:
    if cells > _WORKSPACES_MAX_CELLS:
        return _Workspace(cells, words)
    cache: OrderedDict[tuple[int, int], _Workspace] | None = getattr(_WORKSPACES, "lru", None)
    if cache is None:
        cache = _WORKSPACES.lru = OrderedDict()
    key = (cells, words)
    ws = cache.get(key)
    if ws is None:
        ws = cache[key] = _Workspace(cells, words)
        while len(cache) > _WORKSPACES_MAX:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return ws


# Key counters (one byte per cell, direction and key, twice: live and baseline) speed up
# propagation by keys; past this many bytes the kernel looks keys up in the wave instead.
_MAX_COUNTER_BYTES = 256 << 20

_NO_COUNTERS = np.zeros(0, dtype=np.uint8)
_NO_PREV = np.zeros((0, 1), dtype=np.uint64)
_NO_PREV_COUNT = np.zeros(0, dtype=np.int32)
_NO_MARK = np.zeros(0, dtype=np.int64)
_NO_PINS = np.zeros(0, dtype=np.int32)
_NO_ALLOW = np.zeros(0, dtype=np.uint64)

_REASONS: dict[int, Literal["constraints", "contradiction", "budget"]] = {
    int(kern.R_CONSTRAINTS): "constraints",
    int(kern.R_CONTRADICTION): "contradiction",
    int(kern.R_BUDGET): "budget",
}


class Solver:
    """Solves one rule table on one grid shape, again and again, reusing its work arrays.

    The rules and the shape are checked once, here; :meth:`solve` checks only what changes per
    call. Not thread-safe: give each thread its own (:func:`solve` does).
    """

    def __init__(
        self,
        rules: RuleTable | CompiledRules,
        width: int,
        height: int,
        *,
        periodic: bool = False,
        _workspace: _Workspace | None = None,
    ) -> None:
        _check_size(width, height)
        self.rules = rules if isinstance(rules, CompiledRules) else compile_rules(rules)
        self.width = width
        self.height = height
        self.periodic = periodic
        cells = width * height
        self._edge = _shared_edges(width, height)
        self._ws = _workspace or _Workspace(cells, self.rules.words)
        self._kr = self.rules.kernel
        n_counters = cells * 4 * self._kr.key_sizes.shape[1]
        if self._kr.counted and 2 * n_counters <= _MAX_COUNTER_BYTES:
            self._cnt, self._base_cnt = self._ws.counters(n_counters)
        else:
            self._cnt = self._base_cnt = _NO_COUNTERS
        # Bits with keys: each visit stamps the (direction, key) pairs it checked.
        keyed = self._kr.mode == kern.MODE_BITS and self._kr.in_start.shape[1] > 1
        self._prev, self._prev_count = self._ws.previous(keyed)
        self._mark = np.empty(self._kr.in_start.size - 4, dtype=np.int64) if keyed else _NO_MARK
        thin = periodic and (width == 1 or height == 1)
        self._allow = _self_neighbours(self.rules, width, height) if thin else _NO_ALLOW

    def solve(
        self,
        *,
        seed: int = 0,
        heuristic: Heuristic = "entropy",
        constraints: Constraints | None = None,
        budget: SolverBudget | None = None,
    ) -> SolveResult:
        """Solve the grid; see :func:`solve`."""
        if heuristic not in HEURISTICS:
            raise InputError(f"unknown heuristic {heuristic!r}; use one of {', '.join(HEURISTICS)}")
        constraints = constraints or _NO_CONSTRAINTS
        budget = budget or _DEFAULT_BUDGET
        if budget.max_attempts < 1 or budget.max_backtracks < 0:
            raise InputError(
                "the budget needs at least one attempt and a non-negative backtrack limit"
            )
        cr, width, height = self.rules, self.width, self.height
        cells = width * height
        (wi, wli, full_w, full_wl), profile = _profiles(constraints, cr, width, height)
        wave, pins = _initial_wave(constraints, cr, width, height)

        started = time.perf_counter()
        ws, kr = self._ws, self._kr
        with np.errstate(over="ignore"):  # uint64 wrap-around is intended (JIT-off mode)
            kern.solve(
                kr.mode, HEURISTICS[heuristic], width, height, self.periodic, cr.push_all,
                self._edge, cr.compat, kr.lut, kr.lut_min, kr.kin, kr.kin4, kr.kout, kr.in_start,
                kr.in_word, kr.in_mask, kr.out_start, kr.out_word, kr.out_mask, kr.nokey,
                cr.full_row, cr.patterns, profile, wi, wli, full_w, full_wl, pins, self._allow,
                wave, ws.count, ws.sumw, ws.sumwl, ws.base_wave, ws.base_count, ws.base_sumw,
                ws.base_sumwl, self._prev, self._prev_count, self._mark, ws.age, ws.order,
                ws.dirty, ws.dirty_flag, ws.stack, ws.on_stack, ws.hkey, ws.hcell, ws.hpos,
                ws.pool_key, ws.pool_cell, ws.left_pool, ws.deaths, self._cnt, self._base_cnt,
                kr.key_sizes, ws.tmp,
                np.uint64(seed & MASK64), budget.max_attempts, budget.max_backtracks,
                budget.attempt_limit(cells), budget.observation_limit(cells), ws.stats,
            )  # fmt: skip
            status, attempts, observations, backtracks = (int(v) for v in ws.stats)
            if status == kern.R_PIN_BANNED:
                raise ConstraintError("a pinned cell's pattern is also banned at that cell")
            grid = np.empty(cells, dtype=np.int32)
            kern.decode_grid(wave, grid)
        return SolveResult(
            status="solved" if status == kern.R_SOLVED else "failed",
            reason=None if status == kern.R_SOLVED else _REASONS[status],
            grid=grid.reshape(height, width),
            words=wave.reshape(height, width, cr.words),
            patterns=cr.patterns,
            attempts=attempts,
            backtracks=backtracks,
            observations=observations,
            solve_s=time.perf_counter() - started,
            order=ws.order.reshape(height, width).astype(np.int64),
        )


_NO_CONSTRAINTS = Constraints()
_DEFAULT_BUDGET = SolverBudget()

# Per thread, the solvers of the last few small shapes :func:`solve` met (their work arrays
# are reused; a world solves thousands of S x S blocks with one rule table).
_SOLVERS = threading.local()
_SOLVERS_MAX = 8
# Per thread, also the last solver of a larger shape, up to this many cells (512², whose work
# arrays and neighbour table take ~40 MB): a repeated large solve skips the table (5 ms at 512²)
# and the page faults of fresh work arrays (tileset 512² solves, thread time, best of 8: pipes
# 233 -> 207 ms, dungeon.xml 225 -> 215 ms). Larger grids get a fresh solver every time.
_KEEP_LARGE_CELLS = 1 << 18


def _solver_for(cr: CompiledRules, width: int, height: int, periodic: bool) -> Solver:
    if width * height > _WORKSPACES_MAX_CELLS:
        if width * height > _KEEP_LARGE_CELLS:
            return Solver(cr, width, height, periodic=periodic)
        large_key = (cr, width, height, periodic)
        last: tuple[tuple[object, ...], Solver] | None = getattr(_SOLVERS, "large", None)
        if last is not None and last[0] == large_key:
            return last[1]
        _SOLVERS.large = None  # let the previous one go before allocating the next
        made = Solver(cr, width, height, periodic=periodic)
        _SOLVERS.large = (large_key, made)
        return made
    cache: OrderedDict[tuple[object, ...], Solver] | None = getattr(_SOLVERS, "lru", None)
    if cache is None:
        cache = _SOLVERS.lru = OrderedDict()
    key = (cr, width, height, periodic)
    found = cache.get(key)
    if found is None:
        ws = _shared_workspace(width * height, cr.words)
        found = cache[key] = Solver(cr, width, height, periodic=periodic, _workspace=ws)
        while len(cache) > _SOLVERS_MAX:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return found


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
    Pass :class:`CompiledRules` (from :func:`compile_rules`) when solving one model repeatedly:
    then repeated solves of one small shape reuse their work arrays.
    """
    _check_size(width, height)
    cr = rules if isinstance(rules, CompiledRules) else compile_rules(rules)
    return _solver_for(cr, width, height, periodic).solve(
        seed=seed, heuristic=heuristic, constraints=constraints, budget=budget
    )


def warm_up() -> float:
    """Compile (or load from the cache) every kernel on tiny problems; returns seconds spent.

    Both propagation methods run, with every heuristic.
    """
    started = time.perf_counter()
    allowed = np.ones((4, 2, 2), dtype=np.bool_)
    allowed[:, 0, 1] = False
    allowed[:, 1, 0] = False
    table = RuleTable(allowed=allowed, weights=np.array([1.0, 2.0]))
    methods: tuple[Method, ...] = ("bits", "keys")
    for method in methods:
        rules = compile_rules(table, method)
        for heuristic in HEURISTICS:
            solve(rules, 3, 3, seed=1, heuristic=heuristic)  # type: ignore[arg-type]
    return time.perf_counter() - started
