"""numba kernels of the WFC solver (private: call them through :mod:`worldgen.engine.solver`).

The kernels take only validated, C-contiguous arrays of fixed dtypes and assume valid input;
all checking happens at the Python boundary. With ``NUMBA_DISABLE_JIT=1`` the same functions run
as plain Python on numpy scalars and give byte-identical results (integer arithmetic only, apart
from the heap keys, which are computed with the same float operations in the same order).

Two rules shape this file:

* Everything lives in it on purpose: numba's on-disk cache checks only the source file of the
  compiled entry point, so a helper inlined from another module could go stale in the cache.
* Loops that run per cell or per pattern call **no helper that takes an array**: numba passes
  each array argument of a call (inlined or not) with an atomic reference-count increment and
  decrement, which took more than half of the run time when the narrowing step was a helper.
  Such code is written out where it runs; helpers either take scalars only (hashing, keys) or
  run once per step (cell choice, pattern draw, repair, heap refresh).

**Output is independent of the propagation method.** Entropy sums are exact integers (weights in
fixed point), a cell's heap key depends only on its state, the step that first narrowed it and
(attempt stream, cell, count), and a propagation step always ends in the unique largest
arc-consistent wave. So the sequence of states of an attempt without contradictions is the same
whichever method propagates, in whatever order (only a contradiction's repair depends on where
the method found it).

Arrays and their invariants (C = cells = W*H, row-major; T = patterns; NW = ceil(T/64)):

* ``wave[c, :]``      (C, NW) uint64: bitset of the patterns still possible at cell c.
* ``count[c]``        (C,) int32: popcount of ``wave[c]``; 0 never survives a successful step.
* ``sumw[c]``         (C,) int64: sum of ``wi[profile[c], t]`` over the possible t (exact).
* ``sumwl[c]``        (C,) int64: sum of ``wli[profile[c], t]`` over the same t (exact).
* ``wi[p, t]``        (P, T) int64 >= 1: fixed-point weight of t under profile p (bias row);
  ``wli[p, t]`` = round(wi * ln(wi)). Row sums stay below 2**62.
* ``edge[c]``         (C,) uint8: which edges of the grid c lies on (bit d: no cell one step in
  direction d before wrapping); :func:`_step` turns it into the neighbour of c in direction d
  (-1 past a bounded edge). One byte a cell instead of a (C, 4) int64 table: at 512² the table
  took 8 MB and its row was a cache miss for most cells taken off the propagation queue.
* ``profile[c]``      (C,) int32: row of ``wi``/``wli`` that applies to cell c (bias).
* ``base_*``          the attempt baseline: the wave after the constraints were propagated.
* ``age[c]``          (C,) int32: the observation index of the step that first narrowed c in this
  attempt (-1: not yet); a tie-breaker of the heap key.
* ``order[c]``        (C,) int32: the observation index (1, 2, ...) of the step of this attempt
  that decided c; 0 when the baseline decides it (pins and what the constraints force), -1 while
  undecided. Written where the changed cells are settled; never read by the solve.
* heap (``hkey``, ``hcell``, size in ``st[ST_HEAP]``): binary min-heap ordered by (key, cell),
  each cell at most once (``hpos[c]``, (C,) int32: its position, or -1), holding every cell touched
  (dirtied) in this attempt with count > 1, with its current key once the dirty cells are
  refreshed; decided cells leave it lazily.
* pool (``pool_key``, ``pool_cell``, size in ``st[ST_POOL]``): the same kind of heap, built once
  per attempt from every undecided cell and never updated; ``left_pool[c]`` is 1 once c was dirty
  in this attempt (its entry is then stale and dropped when it reaches the root), and
  ``st[ST_LIVE]`` counts the entries not yet touched. A cell still in the pool has its attempt
  start's state, so its key is still right: the cell to observe is the smaller of the two roots,
  the same cell one heap of every undecided cell would give, while the heap stays as small as
  the front (measured at 512²: see ``bench/README.md``).
* ``dirty``: cells changed since the last settled step, each once (``dirty_flag``).
* ``on_stack[c]``: 1 while c waits on the propagation queue, 2 when it waits to revise its
  neighbours by its whole union (the constraints' cells and a rollback's), else 0.

Two propagation methods (``mode``):

* ``MODE_BITS`` (any rule table): AC-3 on bitsets, first in first out. ``compat[d, t, :]``
  (4, T, NW) are the patterns allowed next to t in direction d; the byte look-up table holds
  the union of ``compat[d, t]`` over the bits of byte value b at byte position k
  (t = 8*k + bit), in one of two layouts: *interleaved* (3 or 4 words), ``lut[k, b, d*NW + v]``
  ((NW*8, 256, 4*NW): a byte's four directions side by side), else by direction,
  ``lut[d*NW*8 + k, b, v]`` ((4*NW*8, 256, NW)); ``lut.shape[2]`` tells which.
* ``tmp`` (5*NW,) uint64: scratch; ``tmp[:NW]`` one direction's mask, ``tmp[NW:]`` the four
  directions' unions of the cell being revised (:func:`_run`).
* ``MODE_KEYS`` (rule tables whose every direction is a *key join*: ``allowed[d, a, b]`` iff
  ``kout[d, a] == kin[d, b] >= 0``, true of every overlapping model and of socket-style tilesets):
  AC-4 on keys. A key K of direction d *dies* at cell n when no pattern left at n has
  ``kin[d, .] == K``; then the cell c whose d-neighbour is n loses every pattern with
  ``kout[d, .] == K``. Cost per removed pattern: 4 key checks, however dense the rules.
  The patterns with ``kin[d] == K`` are the sparse bitset ``(in_word[d, i], in_mask[d, i])`` for
  i in ``in_start[d, K] .. in_start[d, K+1]`` (one pair per word holding some of them);
  ``out_start``/``out_word``/``out_mask`` likewise for ``kout``; ``nokey[d, :]`` (4, NW) the
  patterns with no key (no allowed neighbour) in direction d. Pending deaths are packed as
  ``(c << 19) | (K << 2) | d`` on the stack ``deaths``, which holds at least 4 * keys entries
  (a fuller stack drops deaths and recovers them; see :func:`_run`). An *only* entry
  ``(c << 19) | (1 << 18) | (K << 2) | d`` removes every pattern of c but those with
  ``kout[d] == K``: after an observation, the neighbours of the observed cell get one each.
* ``cnt[(c * 4 + d) * K + k]`` (uint8, optional): the patterns left at c with ``kin[d] == k``, so
  a key's death is one decrement away; without it the key's patterns are looked up in the wave.

``MODE_BITS`` *with keys* (a key join of more than four words, where the byte look-up table no
longer fits in registers): the key arrays above, with ``kout`` (4, T), are passed too (else they
are (4, 1) stand-ins and ``in_start.shape[1] == 1``). ``prev[c]`` (C, NW) is c's wave when it last
revised its neighbours (``prev_count[c]`` its count), so every neighbour n of a cell off the
queue satisfies n ⊆ union of ``compat[d, a]`` over a in ``prev[c]``. A cell that lost few
patterns since then finds the keys that died with them (``mark`` (4 * K,) int64 stamps each
(d, k) once per visit; the dead ones are listed at the bottom of the unused ``deaths``), and
each neighbour loses exactly the patterns of those keys: the same wave as the whole union,
found in fewer reads (town 48²: 80-115 ms -> 61-67 ms).

Directions: d indexes DX = (-1, 0, 1, 0), DY = (0, 1, 0, -1); the opposite of d is (d + 2) & 3.
"""

from __future__ import annotations

import math

import numpy as np

from worldgen.engine._jit import njit

_FLAGS = {"cache": True, "nogil": True, "error_model": "numpy"}
# Scalar helpers are inlined at the numba IR level (see the module docstring for array ones).
_INLINE = {**_FLAGS, "inline": "always"}

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_MIX_START = np.uint64(0x6A09E667F3BCC909)
_DEBRUIJN = np.uint64(0x03F79D71B4CB0A89)
_ONE = np.uint64(1)
_ZERO = np.uint64(0)
_BYTE = np.uint64(255)
_INV53 = 1.0 / 9007199254740992.0


def _debruijn_table() -> np.ndarray:
    table = np.zeros(64, dtype=np.int64)
    for i in range(64):
        table[(((1 << i) * 0x03F79D71B4CB0A89) & 0xFFFFFFFFFFFFFFFF) >> 58] = i
    return table


_CTZ = _debruijn_table()

# Heuristics.
H_ENTROPY = 0
H_MRV = 1
H_SCANLINE = 2

# Propagation methods.
MODE_BITS = 0
MODE_KEYS = 1

# Attempt outcomes (int64 scalars, not Python ints: numba's ahead-of-time compiler types a global
# int as a literal and will not unify two different literals assigned to one variable).
R_CONTRADICTION = np.int64(0)
R_SOLVED = np.int64(1)
R_BUDGET = np.int64(2)
# Whole-solve outcomes: the constraints contradict each other (no attempt is made); a pin names
# a pattern that is banned at its cell.
R_CONSTRAINTS = np.int64(3)
R_PIN_BANNED = np.int64(4)

# The purpose tag of attempt seeds (worldgen.engine.rng.PURPOSE_ATTEMPT).
PURPOSE_ATTEMPT = 1

# Keys are packed into 16 bits on the stack.
MAX_KEYS = 0xFFFF

# Bits with keys: a cell that lost at most 1/16 of its patterns since its last visit revises its
# neighbours by the keys that died (town 48²: 16 was the fastest of 1, 2, 4, 8, 16, 32, 64, all).
_DEAD_KEY_RATIO = 16

# Slots of the integer state vector ``st``.
ST_HEAP = 0  # heap size
ST_OBS = 1  # observations made in this attempt (never rewinds; feeds the RNG)
ST_BACKTRACKS = 2  # local repairs made in this attempt
ST_DIRTY = 3  # cells waiting in the dirty list
ST_CURSOR = 4  # scanline cursor
ST_EMPTY = 5  # the cell a contradiction emptied
ST_DEATHS = 6  # pending key deaths (MODE_KEYS)
ST_OVERFLOW = 7  # the death stack was full and dropped some (MODE_KEYS)
ST_TODO = 8  # cells to propagate from, at the start of the stack / todo list
ST_INITIAL = 9  # 1: only propagate the constraints (no attempt)
ST_POOL = 10  # pool heap size
ST_LIVE = 11  # pool cells not yet touched in this attempt
ST_SIZE = 12

# Every key of a cell nothing has narrowed is at least this (see _cell_key); a narrowed cell's
# entropy key is below it, and so is its MRV key when the cell has fewer than 1000 patterns.
_POOL_FLOOR = 1000.0

# Slots of the ``stats`` output vector.
S_STATUS = 0
S_ATTEMPTS = 1
S_OBSERVATIONS = 2
S_BACKTRACKS = 3
S_SIZE = 4


# --- scalar helpers ----------------------------------------------------------------------------


@njit(**_INLINE)
def _splitmix(x: np.uint64) -> np.uint64:
    """One splitmix64 step (wrapping uint64 arithmetic)."""
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@njit(**_INLINE)
def _attempt_stream(seed: np.uint64, attempt: np.int64) -> np.uint64:
    """``rng.mix(seed, PURPOSE_ATTEMPT, attempt)`` for a seed already reduced mod 2**64."""
    h = _splitmix(_MIX_START ^ seed)
    h = _splitmix(h ^ np.uint64(PURPOSE_ATTEMPT))
    return _splitmix(h ^ np.uint64(attempt))


@njit(**_INLINE)
def _unit(stream: np.uint64, a: np.int64, b: np.int64) -> float:
    """A float in [0, 1) that is a pure function of (stream, a, b)."""
    h = _splitmix(stream ^ _splitmix(np.uint64(a) ^ _splitmix(np.uint64(b))))
    return float(h >> np.uint64(11)) * _INV53


@njit(**_INLINE)
def _ctz(x: np.uint64) -> np.int64:
    """Index of the lowest set bit of a non-zero word."""
    return _CTZ[((x & (~x + _ONE)) * _DEBRUIJN) >> np.uint64(58)]


@njit(**_INLINE)
def _step(
    c: np.int64, d: np.int64, code: np.int64, width: np.int64, height: np.int64, periodic: bool
) -> np.int64:
    """The neighbour of cell ``c`` in direction ``d`` (-1 past the edge of a bounded grid), from
    ``code = edge[c]``: the same cell as ``solver.neighbour_table(width, height, periodic)``."""
    if (code >> d) & 1 == 0:
        if d == 0:
            return c - 1
        if d == 1:
            return c + width
        if d == 2:
            return c + 1
        return c - width
    if not periodic:
        return -1
    if d == 0:
        return c + width - 1
    if d == 1:
        return c - (height - 1) * width
    if d == 2:
        return c - width + 1
    return c + (height - 1) * width


@njit(**_INLINE)
def _cell_key(
    c: np.int64,
    heuristic: np.int64,
    count: np.int64,
    base_count: np.int64,
    sumw: np.int64,
    sumwl: np.int64,
    age: np.int64,
    stream: np.uint64,
) -> float:
    """Heap key of an undecided cell: entropy (or count for MRV), then age, then a seeded
    tie-breaker; a function of the cell's state and of the step that first narrowed it.

    Cells that nothing has narrowed yet rank after every narrowed cell, so the solved region
    grows as one connected front from the first observation. (Shannon entropy can rise when a
    heavy pattern is removed; without this rule far-away untouched cells get picked, separate
    fronts start, and where they meet long-range invariants such as a maze's wall lattice clash
    — contradictions that no local rollback can repair.) Among narrowed cells, entropy counts
    in steps of 0.2 nats and ties go to the cell narrowed first (``age``: the observation index),
    so the front grows compactly, like a wave, instead of in random fingers whose gaps close
    into contradictions (measured, maze 256² seeds 1-4: 17 repairs instead of 441; steps of
    0.01, 0.1, 0.3, 0.5 and 1 nats were worse on at least one sample). The noise (the hash of
    stream, cell and count) breaks the remaining ties; the age term stays below one step.
    """
    noise = _unit(stream, c, count)
    if count == base_count:
        if heuristic == H_MRV:
            return 1000.0 + float(count) + 0.5 * noise
        s = float(sumw)
        return 1000.0 + math.log(s) - float(sumwl) / s + 1e-6 * noise
    if heuristic == H_MRV:
        level = float(count)
    else:
        s = float(sumw)
        level = math.floor((math.log(s) - float(sumwl) / s) * 5.0) * 0.2
    return level + float(age) * 5e-10 + noise * 1e-11


@njit(**_FLAGS)
def _count_keys(
    c0: np.int64,
    c1: np.int64,
    cnt: np.ndarray,
    kin: np.ndarray,
    key_sizes: np.ndarray,
    wave: np.ndarray,
    count: np.ndarray,
    full_count: np.int64,
) -> None:
    """Set the key counters of cells c0..c1-1 from the wave (a full cell copies the sizes)."""
    n_keys = key_sizes.shape[1]
    for c in range(c0, c1):
        for d in range(4):
            row = (c * 4 + d) * n_keys
            for k in range(n_keys):
                cnt[row + k] = key_sizes[d, k] if count[c] == full_count else 0
        if count[c] == full_count:
            continue
        for w in range(wave.shape[1]):
            bits = wave[c, w]
            while bits != _ZERO:
                a = w * 64 + _ctz(bits)
                bits &= bits - _ONE
                for d in range(4):
                    k = kin[d, a]
                    if k >= 0:
                        cnt[(c * 4 + d) * n_keys + k] += 1


@njit(**_INLINE)
def _rollback_around(
    e: np.int64,
    radius: np.int64,
    width: np.int64,
    height: np.int64,
    periodic: bool,
    wave: np.ndarray,
    count: np.ndarray,
    sumw: np.ndarray,
    sumwl: np.ndarray,
    base_wave: np.ndarray,
    base_count: np.ndarray,
    base_sumw: np.ndarray,
    base_sumwl: np.ndarray,
    cnt: np.ndarray,
    base_cnt: np.ndarray,
    age: np.ndarray,
    dirty: np.ndarray,
    dirty_flag: np.ndarray,
    stack: np.ndarray,
    on_stack: np.ndarray,
    st: np.ndarray,
) -> np.int64:
    """Undo the decisions around the emptied cell ``e``; return how many cells to re-propagate
    from (they are on ``stack``, flagged 2 in ``on_stack``: revised by the whole union).

    Every cell the failed step changed is re-checked against its neighbours. Cells within
    ``radius`` (Chebyshev) of e return to the baseline; so do undecided cells within
    ``2 * radius``, whose possibilities may have been cut by the decisions just undone.
    Everything in the box, one cell wider, is re-propagated.
    """
    nw = wave.shape[1]
    row = cnt.shape[0] // wave.shape[0]  # key counters per cell (0: none)
    ex = e % width
    ey = e // width
    sp = 0
    for i in range(st[ST_DIRTY]):
        c = dirty[i]
        if on_stack[c] == 0:
            on_stack[c] = 2
            stack[sp] = c
            sp += 1
    outer = 2 * radius
    span = 2 * outer + 3
    # On a torus smaller than the box, visit every row/column once.
    wrap_y = periodic and span >= height
    wrap_x = periodic and span >= width
    for oy in range(height if wrap_y else span):
        ry = oy if wrap_y else ey - outer - 1 + oy
        if periodic:
            ry %= height
        elif ry < 0 or ry >= height:
            continue
        ddy = abs(ry - ey)
        if periodic:
            ddy = min(ddy, height - ddy)
        for ox in range(width if wrap_x else span):
            rx = ox if wrap_x else ex - outer - 1 + ox
            if periodic:
                rx %= width
            elif rx < 0 or rx >= width:
                continue
            ddx = abs(rx - ex)
            if periodic:
                ddx = min(ddx, width - ddx)
            c = ry * width + rx
            dist = max(ddx, ddy)
            if dist <= radius or (dist <= outer and count[c] > 1):
                for w in range(nw):
                    wave[c, w] = base_wave[c, w]
                count[c] = base_count[c]
                sumw[c] = base_sumw[c]
                sumwl[c] = base_sumwl[c]
                for i in range(c * row, (c + 1) * row):
                    cnt[i] = base_cnt[i]
                if dirty_flag[c] == 0:
                    dirty_flag[c] = 1
                    dirty[st[ST_DIRTY]] = c
                    st[ST_DIRTY] += 1
            if on_stack[c] == 0:
                on_stack[c] = 2
                stack[sp] = c
                sp += 1
    return sp


@njit(**_FLAGS)
def _run(
    mode: np.int64,
    stream: np.uint64,
    heuristic: np.int64,
    width: np.int64,
    height: np.int64,
    periodic: bool,
    edge: np.ndarray,
    compat: np.ndarray,
    lut: np.ndarray,
    lut_min: np.int64,
    kin: np.ndarray,
    kin4: np.ndarray,
    kout: np.ndarray,
    in_start: np.ndarray,
    in_word: np.ndarray,
    in_mask: np.ndarray,
    out_start: np.ndarray,
    out_word: np.ndarray,
    out_mask: np.ndarray,
    profile: np.ndarray,
    wi: np.ndarray,
    wli: np.ndarray,
    wave: np.ndarray,
    count: np.ndarray,
    sumw: np.ndarray,
    sumwl: np.ndarray,
    base_wave: np.ndarray,
    base_count: np.ndarray,
    base_sumw: np.ndarray,
    base_sumwl: np.ndarray,
    prev: np.ndarray,
    prev_count: np.ndarray,
    mark: np.ndarray,
    age: np.ndarray,
    order: np.ndarray,
    dirty: np.ndarray,
    dirty_flag: np.ndarray,
    stack: np.ndarray,
    on_stack: np.ndarray,
    hkey: np.ndarray,
    hcell: np.ndarray,
    hpos: np.ndarray,
    pool_key: np.ndarray,
    pool_cell: np.ndarray,
    left_pool: np.ndarray,
    deaths: np.ndarray,
    cnt: np.ndarray,
    base_cnt: np.ndarray,
    tmp: np.ndarray,
    st: np.ndarray,
    max_backtracks: np.int64,
    max_observations: np.int64,
) -> np.int64:
    """One attempt from the baseline (or, with ``st[ST_INITIAL]``, only the propagation of the
    constraints from the ``st[ST_TODO]`` cells on ``stack``: R_SOLVED if consistent, else
    R_CONSTRAINTS).

    Each step refreshes the heap keys of the cells the last step changed, picks a cell (heap
    root or scanline cursor), draws its pattern by weight, and propagates. A contradiction is
    repaired locally (:func:`_rollback_around`): every cell within Chebyshev radius r of the
    emptied cell returns to its baseline and the region is re-propagated. While repairs fail (a
    new contradiction near the last one, before as many observations as the reset box has cells)
    r doubles (2, 4, ... 32); otherwise it starts again at 2. (Doubling on every nearby
    contradiction kept succeeding repairs at 32, each resetting 4,000 cells.) After
    ``max_backtracks`` repairs the attempt fails. Returns R_SOLVED, R_CONTRADICTION or R_BUDGET;
    the counters are in ``st``, and the dirty list is empty on return.

    The whole step is written out in this one function (see the module docstring: a call per
    step would pay a reference count on each of its arrays).
    """
    cells, nw = wave.shape
    initial = st[ST_INITIAL] != 0
    n_keys = in_start.shape[1] - 1
    counted = cnt.shape[0] > 0
    cap = deaths.shape[0]
    use_heap = heuristic != H_SCANLINE
    fill_pool = True  # the heap is empty (``hpos`` all -1) when an attempt starts
    radius = 2
    # Bits with keys: a visit's stamp in ``mark`` (unique across the calls of one solve).
    keyed = mode == MODE_BITS and n_keys > 0
    pop_id = 0
    if keyed:
        for i in range(mark.shape[0]):
            pop_id = max(pop_id, mark[i])
    # On a torus one cell wide a cell is its own neighbour, so revising it changes its unions.
    thin = periodic and (width == 1 or height == 1)
    # The byte look-up table's layout (see the module docstring): with the four directions of
    # a byte side by side, direction d's union is at column d*nw, else at row d*nw*8.
    interleaved = lut.shape[2] == 4 * nw and nw <= 4
    lut_rows = 0 if interleaved else nw * 8
    lut_cols = nw if interleaved else 0
    last_x = -(1 << 40)
    last_y = -(1 << 40)
    last_obs = -(1 << 40)
    while True:
        if not initial:
            # 1. A new attempt files every undecided cell in the pool, a heap built once. Then
            # the cells the last step changed (each once) leave the pool (lazily) for the heap,
            # with fresh keys; the heap holds each cell at most once (``hpos``), so a changed
            # key moves the cell's entry up or down in place. The heap stays as small as the
            # front of narrowed cells, however large the grid.
            nd = st[ST_DIRTY]
            if use_heap:
                if fill_pool:
                    n = 0
                    for c in range(cells):
                        if count[c] > 1:
                            pool_key[n] = _cell_key(
                                c, heuristic, count[c], base_count[c], sumw[c], sumwl[c], age[c],
                                stream,
                            )  # fmt: skip
                            pool_cell[n] = c
                            n += 1
                    for top in range(n // 2 - 1, -1, -1):
                        key = pool_key[top]
                        moved = pool_cell[top]
                        i = top
                        while True:
                            child = 2 * i + 1
                            if child >= n:
                                break
                            right = child + 1
                            if right < n and (
                                pool_key[right] < pool_key[child]
                                or (
                                    pool_key[right] == pool_key[child]
                                    and pool_cell[right] < pool_cell[child]
                                )
                            ):
                                child = right
                            if pool_key[child] > key or (
                                pool_key[child] == key and pool_cell[child] > moved
                            ):
                                break
                            pool_key[i] = pool_key[child]
                            pool_cell[i] = pool_cell[child]
                            i = child
                        pool_key[i] = key
                        pool_cell[i] = moved
                    st[ST_POOL] = n
                    st[ST_LIVE] = n
                    fill_pool = False
                for j in range(nd):
                    c = dirty[j]
                    if left_pool[c] == 0:
                        left_pool[c] = 1
                        if base_count[c] > 1:
                            st[ST_LIVE] -= 1
                    if count[c] <= 1:
                        continue  # a decided cell's entry goes when it reaches the root
                    if age[c] < 0 and count[c] != base_count[c]:
                        age[c] = st[ST_OBS]
                    key = _cell_key(
                        c, heuristic, count[c], base_count[c], sumw[c], sumwl[c], age[c], stream
                    )
                    i = hpos[c]
                    if i < 0:
                        i = st[ST_HEAP]
                        st[ST_HEAP] = i + 1
                    start = i
                    while i > 0:
                        parent = (i - 1) >> 1
                        pk = hkey[parent]
                        pc = hcell[parent]
                        if pk < key or (pk == key and pc < c):
                            break
                        hkey[i] = pk
                        hcell[i] = pc
                        hpos[pc] = i
                        i = parent
                    if i == start:
                        n = st[ST_HEAP]
                        while True:
                            child = 2 * i + 1
                            if child >= n:
                                break
                            right = child + 1
                            if right < n and (
                                hkey[right] < hkey[child]
                                or (hkey[right] == hkey[child] and hcell[right] < hcell[child])
                            ):
                                child = right
                            if hkey[child] > key or (hkey[child] == key and hcell[child] > c):
                                break
                            hkey[i] = hkey[child]
                            hcell[i] = hcell[child]
                            hpos[hcell[i]] = i
                            i = child
                    hkey[i] = key
                    hcell[i] = c
                    hpos[c] = i
            # The cells the last step changed are settled: those it decided get its index
            # (a repair's reset cells are undecided again).
            for j in range(nd):
                c = dirty[j]
                dirty_flag[c] = 0
                if count[c] > 1:
                    order[c] = -1
                elif order[c] < 0:
                    order[c] = st[ST_OBS]
            st[ST_DIRTY] = 0

            # 2. The cell to observe: the heap root once decided cells are dropped from the top,
            # unless the pool's root (after its touched cells are dropped) comes first; or the
            # first undecided cell from the scanline cursor.
            cell = -1
            if use_heap:
                while st[ST_HEAP] > 0:
                    c = hcell[0]
                    if count[c] > 1:
                        cell = c
                        break
                    hpos[c] = -1
                    n = st[ST_HEAP] - 1
                    st[ST_HEAP] = n
                    if n == 0:
                        break
                    key = hkey[n]
                    moved = hcell[n]
                    i = 0
                    while True:
                        child = 2 * i + 1
                        if child >= n:
                            break
                        right = child + 1
                        if right < n and (
                            hkey[right] < hkey[child]
                            or (hkey[right] == hkey[child] and hcell[right] < hcell[child])
                        ):
                            child = right
                        if hkey[child] > key or (hkey[child] == key and hcell[child] > moved):
                            break
                        hkey[i] = hkey[child]
                        hcell[i] = hcell[child]
                        hpos[hcell[i]] = i
                        i = child
                    hkey[i] = key
                    hcell[i] = moved
                    hpos[moved] = i
                if (cell < 0 or hkey[0] >= _POOL_FLOOR) and st[ST_LIVE] > 0:
                    n = st[ST_POOL]
                    while n > 0 and left_pool[pool_cell[0]] != 0:
                        n -= 1
                        key = pool_key[n]
                        moved = pool_cell[n]
                        i = 0
                        while True:
                            child = 2 * i + 1
                            if child >= n:
                                break
                            right = child + 1
                            if right < n and (
                                pool_key[right] < pool_key[child]
                                or (
                                    pool_key[right] == pool_key[child]
                                    and pool_cell[right] < pool_cell[child]
                                )
                            ):
                                child = right
                            if pool_key[child] > key or (
                                pool_key[child] == key and pool_cell[child] > moved
                            ):
                                break
                            pool_key[i] = pool_key[child]
                            pool_cell[i] = pool_cell[child]
                            i = child
                        pool_key[i] = key
                        pool_cell[i] = moved
                    st[ST_POOL] = n
                    if n > 0:
                        pk = pool_key[0]
                        pc = pool_cell[0]
                        if cell < 0 or pk < hkey[0] or (pk == hkey[0] and pc < cell):
                            cell = pc
            else:
                cur = st[ST_CURSOR]
                while cur < cells and count[cur] <= 1:
                    cur += 1
                st[ST_CURSOR] = cur
                if cur < cells:
                    cell = cur
            if cell < 0:
                for c in range(cells):
                    if count[c] != 1:  # defensive: never report an empty cell as solved
                        return R_CONTRADICTION
                return R_SOLVED
            if st[ST_OBS] >= max_observations:
                return R_BUDGET

            # 3. Draw the pattern by weight, from a number fixed by (stream, observation, cell):
            # one pass, since the cell's exact weight total is kept up to date.
            p = profile[cell]
            r = np.int64(_unit(stream, st[ST_OBS], cell) * float(sumw[cell]))
            chosen = -1
            for w in range(nw):
                bits = wave[cell, w]
                while bits != _ZERO:
                    t = w * 64 + _ctz(bits)
                    chosen = t
                    r -= wi[p, t]
                    if r < 0:
                        break
                    bits &= bits - _ONE
                if r < 0:
                    break
            st[ST_OBS] += 1

            # 4. The cell keeps only that pattern.
            for w in range(nw):
                wave[cell, w] = _ZERO
            wave[cell, chosen >> 6] = _ONE << np.uint64(chosen & 63)
            count[cell] = 1
            sumw[cell] = wi[p, chosen]
            sumwl[cell] = wli[p, chosen]
            dirty_flag[cell] = 1
            dirty[st[ST_DIRTY]] = cell
            st[ST_DIRTY] += 1
            if mode == MODE_KEYS:
                # Each neighbour keeps only the patterns that need the one key left here: four
                # *only* entries rather than every key that died.
                top = 0
                missing = False
                for dd in range(4):
                    k = kin[dd, chosen]
                    if counted:
                        row = (cell * 4 + dd) * n_keys
                        for i in range(n_keys):
                            cnt[row + i] = 0
                        if k >= 0:
                            cnt[row + k] = 1
                    dep = _step(cell, (dd + 2) & 3, edge[cell], width, height, periodic)
                    if dep < 0:
                        continue
                    if k >= 0:
                        deaths[top] = (dep << 19) | (1 << 18) | (k << 2) | dd
                        top += 1
                    else:
                        missing = True
                st[ST_DEATHS] = top
                # A pattern that is no dd-neighbour (k < 0) cannot be here (the initial
                # propagation banned it wherever a cell has such a neighbour); announcing the
                # cell would still empty that neighbour.
                stack[0] = cell
                st[ST_TODO] = 1 if missing else 0
            else:
                stack[0] = cell
                on_stack[cell] = 1
                st[ST_TODO] = 1

        while True:
            # 5. Propagate until nothing changes; ok is False on a contradiction.
            ok = True
            if mode == MODE_KEYS:
                # AC-4 on keys: the pending entries, then the dead keys of each todo cell
                # (*announced* one at a time, so they never overflow the stack). Patterns
                # leave one at a time and a key dies with its last one, so each death is queued
                # once. A full stack drops entries and notes it; each dropped one came from a
                # cell on the dirty list, so announcing the dirty cells again recovers it (until
                # a pass ends without overflow; an overflowing pass removed patterns, so this
                # ends).
                todo = stack
                n_todo = st[ST_TODO]
                i_todo = 0
                top = st[ST_DEATHS]
                overflow = False
                while ok:
                    while top > 0:
                        top -= 1
                        v = deaths[top]
                        c = v >> 19
                        only = (v >> 18) & 1
                        k = (v >> 2) & 0xFFFF
                        d = v & 3
                        q = out_start[d, k]
                        q1 = out_start[d, k + 1]
                        if only:
                            j0, j1 = 0, nw
                        else:
                            j0, j1 = q, q1
                        touched = False
                        p = profile[c]
                        cbase = c * 4 * n_keys
                        for j in range(j0, j1):
                            if only:  # every pattern outside key k's goes
                                w = j
                                keep = _ZERO
                                while q < q1 and out_word[d, q] == w:
                                    keep |= out_mask[d, q]
                                    q += 1
                                doomed = wave[c, w] & ~keep
                            else:
                                w = out_word[d, j]
                                doomed = wave[c, w] & out_mask[d, j]
                            if doomed == _ZERO:
                                continue
                            if not touched:
                                touched = True
                                if dirty_flag[c] == 0:
                                    dirty_flag[c] = 1
                                    dirty[st[ST_DIRTY]] = c
                                    st[ST_DIRTY] += 1
                            while doomed != _ZERO:
                                low = doomed & (~doomed + _ONE)
                                a = w * 64 + _ctz(doomed)
                                doomed ^= low
                                wave[c, w] &= ~low
                                count[c] -= 1
                                sumw[c] -= wi[p, a]
                                sumwl[c] -= wli[p, a]
                                keys4 = kin4[a]
                                for dd in range(4):
                                    kk = (keys4 >> (16 * dd)) & 0xFFFF
                                    if kk == 0xFFFF:
                                        continue
                                    if counted:
                                        i = cbase + dd * n_keys + kk
                                        left = cnt[i] - 1
                                        cnt[i] = left
                                        if left != 0:
                                            continue
                                    else:
                                        alive = False
                                        for qq in range(in_start[dd, kk], in_start[dd, kk + 1]):
                                            if wave[c, in_word[dd, qq]] & in_mask[dd, qq] != _ZERO:
                                                alive = True
                                                break
                                        if alive:
                                            continue
                                    # whose dd-neighbour c is
                                    dep = _step(c, (dd + 2) & 3, edge[c], width, height, periodic)
                                    if dep < 0:
                                        continue
                                    if top < cap:
                                        deaths[top] = (dep << 19) | (kk << 2) | dd
                                        top += 1
                                    else:
                                        overflow = True
                            if count[c] == 0:
                                st[ST_EMPTY] = c
                                ok = False
                                top = 0
                                break
                    if not ok:
                        break
                    if i_todo < n_todo:
                        n = todo[i_todo]
                        i_todo += 1
                        for d in range(4):
                            dep = _step(n, (d + 2) & 3, edge[n], width, height, periodic)
                            if dep < 0:
                                continue
                            row = (n * 4 + d) * n_keys
                            for k in range(n_keys):
                                if in_start[d, k] == in_start[d, k + 1]:
                                    continue
                                if counted:
                                    alive = cnt[row + k] != 0
                                else:
                                    alive = False
                                    for qq in range(in_start[d, k], in_start[d, k + 1]):
                                        if wave[n, in_word[d, qq]] & in_mask[d, qq] != _ZERO:
                                            alive = True
                                            break
                                if not alive:
                                    deaths[top] = (dep << 19) | (k << 2) | d  # fits: on empty
                                    top += 1
                        continue
                    if not overflow:
                        break
                    overflow = False
                    todo = dirty
                    n_todo = st[ST_DIRTY]
                    i_todo = 0
                st[ST_DEATHS] = 0
            else:
                # AC-3 on bitsets from the cells on the stack.
                # First in, first out: the changes spread in waves, so a cell is seldom narrowed
                # again by a later arrival (a stack revisited cells several times as often).
                head = 0
                queued = st[ST_TODO]
                while queued > 0:
                    c = stack[head]
                    head = head + 1 if head + 1 < cells else 0
                    queued -= 1
                    # With keys, a cell that lost few patterns since its last visit (``prev``)
                    # names the keys that died with them (no pattern of the key left), per
                    # direction; its neighbours lose exactly those keys' patterns, since the
                    # wider union of then filtered them. A rollback's cells (flag 2) and cells
                    # that lost many use the whole union. Either way the wave is the same.
                    need = 15
                    n_dead = 0
                    by_keys = (
                        keyed
                        and on_stack[c] == 1
                        and (prev_count[c] - count[c]) * _DEAD_KEY_RATIO <= count[c]
                    )
                    if by_keys:
                        need = 0
                        pop_id += 1
                        for w in range(nw):
                            gone = prev[c, w] & ~wave[c, w]
                            while gone != _ZERO:
                                a = w * 64 + _ctz(gone)
                                gone &= gone - _ONE
                                for d in range(4):
                                    k = kout[d, a]
                                    if k < 0:
                                        continue
                                    m = d * n_keys + k
                                    if mark[m] == pop_id:
                                        continue
                                    mark[m] = pop_id
                                    alive = False
                                    for q in range(out_start[d, k], out_start[d, k + 1]):
                                        if wave[c, out_word[d, q]] & out_mask[d, q] != _ZERO:
                                            alive = True
                                            break
                                    if not alive:
                                        need |= 1 << d
                                        deaths[n_dead] = m
                                        n_dead += 1
                    if keyed:
                        for w in range(nw):
                            prev[c, w] = wave[c, w]
                        prev_count[c] = count[c]
                    on_stack[c] = 0
                    code = edge[c]
                    # With an interleaved table (3 or 4 words) the look-up path builds the unions
                    # of all four directions in one pass over c's bytes, two directions at a time
                    # in eight registers: a byte's four directions are side by side (two cache
                    # lines), where one direction at a time read four places of a table larger
                    # than the L2 cache (lakes: 1 MB). Lakes 32² blocks: 72 % fewer simulated
                    # last-level misses, ~10 % less time. (1 and 2 words keep the table by
                    # direction: small enough, and pipes 512² was slower interleaved.)
                    fused = interleaved and not by_keys and not thin and count[c] >= lut_min
                    if fused:
                        for d0 in range(0, 4, 2):
                            o0 = d0 * nw
                            o1 = o0 + nw
                            a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = _ZERO
                            for w in range(nw):
                                word = wave[c, w]
                                row = w * 8
                                while word != _ZERO:
                                    byte = word & _BYTE
                                    if byte != _ZERO:
                                        a0 |= lut[row, byte, o0]
                                        b0 |= lut[row, byte, o1]
                                        if nw > 1:
                                            a1 |= lut[row, byte, o0 + 1]
                                            b1 |= lut[row, byte, o1 + 1]
                                            if nw > 2:
                                                a2 |= lut[row, byte, o0 + 2]
                                                b2 |= lut[row, byte, o1 + 2]
                                                if nw > 3:
                                                    a3 |= lut[row, byte, o0 + 3]
                                                    b3 |= lut[row, byte, o1 + 3]
                                    word >>= np.uint64(8)
                                    row += 1
                            tmp[nw + o0] = a0
                            tmp[nw + o1] = b0
                            if nw > 1:
                                tmp[nw + o0 + 1] = a1
                                tmp[nw + o1 + 1] = b1
                                if nw > 2:
                                    tmp[nw + o0 + 2] = a2
                                    tmp[nw + o1 + 2] = b2
                                    if nw > 3:
                                        tmp[nw + o0 + 3] = a3
                                        tmp[nw + o1 + 3] = b3
                    for d in range(4):
                        if need & (1 << d) == 0:
                            continue  # no key of this direction died here: nothing to revise
                        n = _step(c, d, code, width, height, periodic)
                        if n < 0:
                            continue
                        cn = count[n]
                        if cn == 1 and count[c] > 1:
                            # A decided neighbour of an undecided cell needs no check: when it
                            # was decided it was pushed and filtered c (c had more than one
                            # pattern then too, since counts only shrink), and c only shrinks
                            # since, so the neighbour's pattern keeps its support until c is
                            # empty, which is reported where it happens. Two decided cells are
                            # always compared.
                            continue
                        # Every branch below writes all of tmp[0:nw] itself: a zeroing loop here
                        # compiled to a call to libc's memset per revision (2-8 % of a solve).
                        # The two unions that copy their first row are written out twice on
                        # purpose: an inlined helper for both was 5-10 % slower on tilesets.
                        if by_keys:
                            # Everything but the patterns of the keys that died here.
                            for w in range(nw):
                                tmp[w] = ~_ZERO
                            for i in range(n_dead):
                                m = deaths[i]
                                if m // n_keys != d:
                                    continue
                                k = m - d * n_keys
                                for q in range(in_start[d, k], in_start[d, k + 1]):
                                    tmp[in_word[d, q]] &= ~in_mask[d, q]
                        elif cn < count[c] and cn < lut_min:
                            # Few candidates at n: test each for support in c (revise from n).
                            od = (d + 2) & 3
                            for w in range(nw):
                                bits = wave[n, w]
                                kept = _ZERO
                                while bits != _ZERO:
                                    low = bits & (~bits + _ONE)
                                    u = w * 64 + _ctz(bits)
                                    for v in range(nw):
                                        if wave[c, v] & compat[od, u, v] != _ZERO:
                                            kept |= low
                                            break
                                    bits ^= low
                                tmp[w] = kept
                        elif count[c] < lut_min:
                            # The first pattern's row is copied, the others are OR-ed in.
                            first = True
                            for w in range(nw):
                                bits = wave[c, w]
                                while bits != _ZERO:
                                    t = w * 64 + _ctz(bits)
                                    if first:
                                        first = False
                                        for v in range(nw):
                                            tmp[v] = compat[d, t, v]
                                    else:
                                        for v in range(nw):
                                            tmp[v] |= compat[d, t, v]
                                    bits &= bits - _ONE
                            if first:  # defensive: an empty c supports nothing
                                for v in range(nw):
                                    tmp[v] = _ZERO
                        elif fused:
                            for w in range(nw):
                                tmp[w] = tmp[nw + d * nw + w]
                        elif nw <= 4:
                            # One direction's union kept in registers (up to four words).
                            o0 = d * lut_cols
                            a0 = a1 = a2 = a3 = _ZERO
                            for w in range(nw):
                                word = wave[c, w]
                                row = d * lut_rows + w * 8
                                while word != _ZERO:
                                    byte = word & _BYTE
                                    if byte != _ZERO:
                                        a0 |= lut[row, byte, o0]
                                        if nw > 1:
                                            a1 |= lut[row, byte, o0 + 1]
                                            if nw > 2:
                                                a2 |= lut[row, byte, o0 + 2]
                                                if nw > 3:
                                                    a3 |= lut[row, byte, o0 + 3]
                                    word >>= np.uint64(8)
                                    row += 1
                            tmp[0] = a0
                            if nw > 1:
                                tmp[1] = a1
                                if nw > 2:
                                    tmp[2] = a2
                                    if nw > 3:
                                        tmp[3] = a3
                        else:
                            # As above: the first non-empty byte's union is copied, the
                            # others are OR-ed in.
                            first = True
                            for w in range(nw):
                                word = wave[c, w]
                                row = d * lut_rows + w * 8
                                while word != _ZERO:
                                    byte = word & _BYTE
                                    if byte != _ZERO:
                                        if first:
                                            first = False
                                            for v in range(nw):
                                                tmp[v] = lut[row, byte, v]
                                        else:
                                            for v in range(nw):
                                                tmp[v] |= lut[row, byte, v]
                                    word >>= np.uint64(8)
                                    row += 1
                            if first:  # defensive: an empty c supports nothing
                                for v in range(nw):
                                    tmp[v] = _ZERO
                        # wave[n] &= tmp
                        changed = False
                        for w in range(nw):
                            if wave[n, w] & tmp[w] != wave[n, w]:
                                changed = True
                                break
                        if not changed:
                            continue
                        p = profile[n]
                        k = count[n]
                        s = sumw[n]
                        sl = sumwl[n]
                        for w in range(nw):
                            old = wave[n, w]
                            new = old & tmp[w]
                            removed = old ^ new
                            wave[n, w] = new
                            while removed != _ZERO:
                                t = w * 64 + _ctz(removed)
                                k -= 1
                                s -= wi[p, t]
                                sl -= wli[p, t]
                                removed &= removed - _ONE
                        count[n] = k
                        sumw[n] = s
                        sumwl[n] = sl
                        if dirty_flag[n] == 0:
                            dirty_flag[n] = 1
                            dirty[st[ST_DIRTY]] = n
                            st[ST_DIRTY] += 1
                        if k == 0:
                            st[ST_EMPTY] = n
                            while queued > 0:
                                on_stack[stack[head]] = 0
                                head = head + 1 if head + 1 < cells else 0
                                queued -= 1
                            ok = False
                            break
                        if on_stack[n] == 0:
                            on_stack[n] = 1
                            tail = head + queued
                            stack[tail if tail < cells else tail - cells] = n
                            queued += 1
            if ok:
                break

            # 6. Contradiction: repair locally, or give up.
            if initial or st[ST_BACKTRACKS] >= max_backtracks:
                for j in range(st[ST_DIRTY]):
                    dirty_flag[dirty[j]] = 0
                st[ST_DIRTY] = 0
                return R_CONSTRAINTS if initial else R_CONTRADICTION
            st[ST_BACKTRACKS] += 1
            e = st[ST_EMPTY]
            ex = e % width
            ey = e // width
            dxl = abs(ex - last_x)
            dyl = abs(ey - last_y)
            if periodic:
                dxl = min(dxl, width - dxl)
                dyl = min(dyl, height - dyl)
            # Grow the repair only while it is failing: the new contradiction is near the last
            # one and came before the cells reset then were all decided again.
            box = 2 * radius + 1
            failing = max(dxl, dyl) <= 2 * radius and st[ST_OBS] - last_obs < box * box
            radius = min(radius * 2, 32) if failing else 2
            last_x = ex
            last_y = ey
            last_obs = st[ST_OBS]
            sp = _rollback_around(
                e, radius, width, height, periodic, wave, count, sumw, sumwl, base_wave, base_count,
                base_sumw, base_sumwl, cnt, base_cnt, age, dirty, dirty_flag, stack, on_stack, st,
            )  # fmt: skip
            if not use_heap:
                st[ST_CURSOR] = 0
            if mode == MODE_KEYS:
                for i in range(sp):
                    on_stack[stack[i]] = 0
            st[ST_TODO] = sp

        if initial:
            for j in range(st[ST_DIRTY]):
                dirty_flag[dirty[j]] = 0
            st[ST_DIRTY] = 0
            return R_SOLVED


# --- the whole solve ---------------------------------------------------------------------------


@njit(**_FLAGS)
def _init_sums(
    wave: np.ndarray,
    full_row: np.ndarray,
    full_count: np.int64,
    profile: np.ndarray,
    wi: np.ndarray,
    wli: np.ndarray,
    full_w: np.ndarray,
    full_wl: np.ndarray,
    count: np.ndarray,
    sumw: np.ndarray,
    sumwl: np.ndarray,
) -> None:
    """Fill count/sumw/sumwl from the wave; a cell with every pattern takes its row's totals
    ``full_w[p]``/``full_wl[p]`` (the exact sums of ``wi[p]``/``wli[p]``)."""
    cells, nw = wave.shape
    for c in range(cells):
        p = profile[c]
        full = True
        for w in range(nw):
            if wave[c, w] != full_row[w]:
                full = False
                break
        if full:
            count[c] = full_count
            sumw[c] = full_w[p]
            sumwl[c] = full_wl[p]
            continue
        n = 0
        s = 0
        sl = 0
        for w in range(nw):
            bits = wave[c, w]
            while bits != _ZERO:
                t = w * 64 + _ctz(bits)
                n += 1
                s += wi[p, t]
                sl += wli[p, t]
                bits &= bits - _ONE
        count[c] = n
        sumw[c] = s
        sumwl[c] = sl


@njit(**_FLAGS)
def count_forbidden(grid: np.ndarray, allowed: np.ndarray, periodic: bool) -> np.int64:
    """How many right/down neighbour pairs of ``grid`` (H, W) int32 ids in [0, T) break
    ``allowed`` (4, T, T) bool; with ``periodic`` the grid wraps."""
    h, w = grid.shape
    bad = 0
    for y in range(h):
        for x in range(w):
            a = grid[y, x]
            if x + 1 < w:
                bad += not allowed[2, a, grid[y, x + 1]]
            elif periodic:
                bad += not allowed[2, a, grid[y, 0]]
            if y + 1 < h:
                bad += not allowed[1, a, grid[y + 1, x]]
            elif periodic:
                bad += not allowed[1, a, grid[0, x]]
    return bad


@njit(**_FLAGS)
def solve(
    mode: np.int64,
    heuristic: np.int64,
    width: np.int64,
    height: np.int64,
    periodic: bool,
    push_all: bool,
    edge: np.ndarray,
    compat: np.ndarray,
    lut: np.ndarray,
    lut_min: np.int64,
    kin: np.ndarray,
    kin4: np.ndarray,
    kout: np.ndarray,
    in_start: np.ndarray,
    in_word: np.ndarray,
    in_mask: np.ndarray,
    out_start: np.ndarray,
    out_word: np.ndarray,
    out_mask: np.ndarray,
    nokey: np.ndarray,
    full_row: np.ndarray,
    full_count: np.int64,
    profile: np.ndarray,
    wi: np.ndarray,
    wli: np.ndarray,
    full_w: np.ndarray,
    full_wl: np.ndarray,
    pins: np.ndarray,
    allow: np.ndarray,
    wave: np.ndarray,
    count: np.ndarray,
    sumw: np.ndarray,
    sumwl: np.ndarray,
    base_wave: np.ndarray,
    base_count: np.ndarray,
    base_sumw: np.ndarray,
    base_sumwl: np.ndarray,
    prev: np.ndarray,
    prev_count: np.ndarray,
    mark: np.ndarray,
    age: np.ndarray,
    order: np.ndarray,
    dirty: np.ndarray,
    dirty_flag: np.ndarray,
    stack: np.ndarray,
    on_stack: np.ndarray,
    hkey: np.ndarray,
    hcell: np.ndarray,
    hpos: np.ndarray,
    pool_key: np.ndarray,
    pool_cell: np.ndarray,
    left_pool: np.ndarray,
    deaths: np.ndarray,
    cnt: np.ndarray,
    base_cnt: np.ndarray,
    key_sizes: np.ndarray,
    tmp: np.ndarray,
    seed: np.uint64,
    max_attempts: np.int64,
    max_backtracks: np.int64,
    attempt_observations: np.int64,
    total_observations: np.int64,
    stats: np.ndarray,
) -> None:
    """A whole solve on a constrained ``wave`` (modified in place into the result).

    0. Pin: a cell with ``pins[c] >= 0`` keeps only that pattern (``pins`` is empty or (C,));
       R_PIN_BANNED if the pattern is not possible there. Then every cell keeps only the
       patterns of ``allow`` (empty, or (NW,): on a torus one cell wide, those that may sit next
       to themselves).
    1. Propagate the constraints already written into the wave (``push_all``: some pattern lacks
       a neighbour in some direction, so even an unconstrained wave is not yet consistent). If
       that empties a cell, stop with R_CONSTRAINTS; the wave shows where.
    2. Save that fixpoint as the baseline and run attempts from it, attempt k with the stream
       ``mix(seed, PURPOSE_ATTEMPT, k)``, until one solves. Each attempt may make
       ``attempt_observations`` observations; ``total_observations`` bounds them all.

    ``stats`` receives [outcome, attempts, observations, backtracks], ``order`` the decision
    order of the last attempt (see the module docstring). The work arrays
    (count ... tmp) are scratch of the right sizes; ``dirty_flag`` and ``on_stack`` must be all
    zero on entry and are left so.
    """
    cells, nw = wave.shape
    st = np.zeros(ST_SIZE, dtype=np.int64)
    for i in range(S_SIZE):
        stats[i] = 0
    order[:] = -1

    # 0. Pins.
    for c in range(pins.shape[0]):
        t = pins[c]
        if t < 0:
            continue
        bit = _ONE << np.uint64(t & 63)
        if wave[c, t >> 6] & bit == _ZERO:
            stats[S_STATUS] = R_PIN_BANNED
            return
        for w in range(nw):
            wave[c, w] = _ZERO
        wave[c, t >> 6] = bit
    if allow.shape[0] > 0:
        for c in range(cells):
            for w in range(nw):
                wave[c, w] &= allow[w]

    # 1. Constraints.
    if mode == MODE_KEYS and push_all:
        for c in range(cells):
            for d in range(4):
                if _step(c, d, edge[c], width, height, periodic) >= 0:
                    for w in range(nw):
                        wave[c, w] &= ~nokey[d, w]
    _init_sums(wave, full_row, full_count, profile, wi, wli, full_w, full_wl, count, sumw, sumwl)
    for c in range(cells):
        if count[c] == 0:
            stats[S_STATUS] = R_CONSTRAINTS
            return
    if cnt.shape[0] > 0:
        _count_keys(0, cells, cnt, kin, key_sizes, wave, count, full_count)
    sp = 0
    for c in range(cells):
        if count[c] < full_count or (push_all and mode == MODE_BITS):
            stack[sp] = c
            if mode == MODE_BITS:
                on_stack[c] = 2
            sp += 1
    st[ST_TODO] = sp
    st[ST_INITIAL] = 1
    keyed = mode == MODE_BITS and in_start.shape[1] > 1
    if keyed:
        prev[:] = wave
        prev_count[:] = count
        mark[:] = -1
    consistent = _run(
        mode, seed, heuristic, width, height, periodic, edge, compat, lut, lut_min, kin, kin4, kout,
        in_start, in_word, in_mask, out_start, out_word, out_mask, profile, wi, wli, wave, count,
        sumw, sumwl, base_wave, base_count, base_sumw, base_sumwl, prev, prev_count, mark, age,
        order, dirty, dirty_flag, stack, on_stack, hkey, hcell, hpos, pool_key, pool_cell,
        left_pool, deaths, cnt, base_cnt, tmp, st, max_backtracks, attempt_observations,
    )  # fmt: skip
    if consistent != R_SOLVED:
        stats[S_STATUS] = R_CONSTRAINTS
        return

    # 2. Attempts.
    base_wave[:] = wave
    base_count[:] = count
    base_sumw[:] = sumw
    base_sumwl[:] = sumwl
    base_cnt[:] = cnt
    outcome = R_CONTRADICTION
    left = total_observations
    for attempt in range(max_attempts):
        if left <= 0:
            outcome = R_BUDGET
            break
        if attempt > 0:
            wave[:] = base_wave
            count[:] = base_count
            sumw[:] = base_sumw
            sumwl[:] = base_sumwl
            cnt[:] = base_cnt
        for i in range(ST_SIZE):
            st[i] = 0
        if keyed:
            prev[:] = base_wave
            prev_count[:] = base_count
        age[:] = -1
        for c in range(cells):
            order[c] = 0 if base_count[c] == 1 else -1
        hpos[:] = -1
        left_pool[:] = 0
        outcome = _run(
            mode, _attempt_stream(seed, attempt), heuristic, width, height, periodic, edge, compat,
            lut, lut_min, kin, kin4, kout, in_start, in_word, in_mask, out_start, out_word,
            out_mask, profile, wi, wli, wave, count, sumw, sumwl, base_wave, base_count, base_sumw,
            base_sumwl, prev, prev_count, mark, age, order, dirty, dirty_flag, stack, on_stack,
            hkey, hcell, hpos, pool_key, pool_cell, left_pool, deaths, cnt, base_cnt, tmp, st,
            max_backtracks, min(attempt_observations, left),
        )  # fmt: skip
        stats[S_ATTEMPTS] = attempt + 1
        stats[S_OBSERVATIONS] += st[ST_OBS]
        stats[S_BACKTRACKS] += st[ST_BACKTRACKS]
        left -= st[ST_OBS]
        if outcome == R_SOLVED:
            break
    stats[S_STATUS] = outcome


@njit(**_FLAGS)
def decode_grid(wave: np.ndarray, out: np.ndarray) -> None:
    """out[c] = the single pattern left at cell c, or -1 if none or several remain."""
    cells, nw = wave.shape
    for c in range(cells):
        found = -1
        for w in range(nw):
            bits = wave[c, w]
            if bits != _ZERO:
                if found >= 0 or bits & (bits - _ONE) != _ZERO:
                    found = -2
                    break
                found = w * 64 + _ctz(bits)
        out[c] = found if found >= 0 else -1
