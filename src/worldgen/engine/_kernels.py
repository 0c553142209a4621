"""numba kernels of the WFC solver (private: call them through :mod:`worldgen.engine.solver`).

The kernels take only validated, C-contiguous arrays of fixed dtypes and assume valid input;
all checking happens at the Python boundary. With ``NUMBA_DISABLE_JIT=1`` the same functions run
as plain Python on numpy scalars and give byte-identical results (integer hashing only; floats
are computed in the same order with the same operations).

Arrays and their invariants (C = cells = W*H, row-major; T = patterns; NW = ceil(T/64)):

* ``wave[c, :]``      (C, NW) uint64: bitset of the patterns still possible at cell c.
* ``count[c]``        (C,) int32: popcount of ``wave[c]``; 0 never survives a successful step.
* ``sumw[c]``         (C,) float64: sum of ``weights[profile[c], t]`` over the possible t.
* ``sumwl[c]``        (C,) float64: sum of ``w * log(w)`` over the same t.
* ``nbr[c, d]``      (C, 4) int64: the neighbour of c in direction d, or -1 past a bounded edge.
* ``profile[c]``      (C,) int32: row of ``weights``/``wlogw`` that applies to cell c (bias).
* ``compat[d, t, :]`` (4, T, NW) uint64: patterns allowed at the neighbour in direction d of t.
* ``lut[d, k, b, :]`` (4, NW*8, 256, NW) uint64: union of ``compat[d, t]`` over the bits of byte
  value b at byte position k (t = 8*k + bit); a whole-cell union is NW*8 look-ups.
* ``stamp[c]``        (C,) int64: bumped on every change of cell c; heap entries carrying an older
  stamp are stale and skipped (lazy deletion).
* heap (``hkey``, ``hcell``, ``hstamp``, size in ``st[ST_HEAP]``): binary min-heap holding, for
  every cell with count > 1, at least one entry with the cell's current stamp.
* ``dirty``: cells changed since the last settled step, each once (``dirty_flag``).

Directions: d indexes DX = (-1, 0, 1, 0), DY = (0, 1, 0, -1).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_FLAGS = {"cache": True, "nogil": True, "error_model": "numpy"}
# Small helpers are inlined at the numba IR level: a call between compiled functions passes
# every array as a struct and pays reference counting on each, which dominated propagation.
_INLINE = {**_FLAGS, "inline": "always"}

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
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

# Attempt outcomes.
R_CONTRADICTION = 0
R_SOLVED = 1
R_BUDGET = 2

# Slots of the integer state vector ``st``.
ST_HEAP = 0  # heap size
ST_OBS = 1  # observations made in this attempt (never rewinds; feeds the RNG)
ST_BACKTRACKS = 2  # local repairs made in this attempt
ST_DIRTY = 3  # cells waiting in the dirty list
ST_CURSOR = 4  # scanline cursor
ST_EMPTY = 5  # the cell a contradiction emptied
ST_SIZE = 6


@njit(**_INLINE)
def _splitmix(x: np.uint64) -> np.uint64:
    """One splitmix64 step (wrapping uint64 arithmetic)."""
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@njit(**_INLINE)
def _unit(stream: np.uint64, a: np.int64, b: np.int64) -> float:
    """A float in [0, 1) that is a pure function of (stream, a, b)."""
    h = _splitmix(stream ^ _splitmix(np.uint64(a) ^ _splitmix(np.uint64(b))))
    return float(h >> np.uint64(11)) * _INV53


@njit(**_INLINE)
def _ctz(x: np.uint64) -> np.int64:
    """Index of the lowest set bit of a non-zero word."""
    return _CTZ[((x & (~x + _ONE)) * _DEBRUIJN) >> np.uint64(58)]


@njit(**_FLAGS)
def init_sums(
    wave: np.ndarray,
    profile: np.ndarray,
    weights: np.ndarray,
    wlogw: np.ndarray,
    count: np.ndarray,
    sumw: np.ndarray,
    sumwl: np.ndarray,
) -> None:
    """Fill count/sumw/sumwl from the wave (exact sums in increasing pattern order)."""
    cells, nw = wave.shape
    for c in range(cells):
        p = profile[c]
        n = 0
        s = 0.0
        sl = 0.0
        for w in range(nw):
            bits = wave[c, w]
            while bits != _ZERO:
                t = w * 64 + _ctz(bits)
                n += 1
                s += weights[p, t]
                sl += wlogw[p, t]
                bits &= bits - _ONE
        count[c] = n
        sumw[c] = s
        sumwl[c] = sl


@njit(**_INLINE)
def _heap_push(
    hkey: np.ndarray,
    hcell: np.ndarray,
    hstamp: np.ndarray,
    st: np.ndarray,
    key: float,
    cell: np.int64,
    stamp: np.int64,
) -> None:
    i = st[ST_HEAP]
    st[ST_HEAP] = i + 1
    while i > 0:
        parent = (i - 1) >> 1
        pk = hkey[parent]
        if pk < key or (pk == key and hcell[parent] <= cell):
            break
        hkey[i] = pk
        hcell[i] = hcell[parent]
        hstamp[i] = hstamp[parent]
        i = parent
    hkey[i] = key
    hcell[i] = cell
    hstamp[i] = stamp


@njit(**_INLINE)
def _heap_pop(hkey: np.ndarray, hcell: np.ndarray, hstamp: np.ndarray, st: np.ndarray) -> None:
    """Remove the root (the caller has read it)."""
    n = st[ST_HEAP] - 1
    st[ST_HEAP] = n
    if n == 0:
        return
    key = hkey[n]
    cell = hcell[n]
    stamp = hstamp[n]
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
        if hkey[child] > key or (hkey[child] == key and hcell[child] >= cell):
            break
        hkey[i] = hkey[child]
        hcell[i] = hcell[child]
        hstamp[i] = hstamp[child]
        i = child
    hkey[i] = key
    hcell[i] = cell
    hstamp[i] = stamp


@njit(**_INLINE)
def _cell_key(
    c: np.int64,
    heuristic: np.int64,
    wave: np.ndarray,
    count: np.ndarray,
    sumw: np.ndarray,
    sumwl: np.ndarray,
    profile: np.ndarray,
    weights: np.ndarray,
    wlogw: np.ndarray,
    stamp: np.ndarray,
    init_count: np.ndarray,
    stream: np.uint64,
) -> float:
    """Heap key of an undecided cell: entropy (or count for MRV) plus a tiny seeded tie-breaker.

    Cells that nothing has narrowed yet rank after every narrowed cell, so the solved region
    grows as one connected front from the first observation. (Shannon entropy can rise when a
    heavy pattern is removed; without this rule far-away untouched cells get picked, separate
    fronts start, and where they meet long-range invariants such as a maze's wall lattice
    clash — contradictions that no local rollback can repair.)
    """
    noise = _unit(stream, c, stamp[c])
    untouched = 1000.0 if count[c] == init_count[c] else 0.0
    if heuristic == H_MRV:
        return untouched + float(count[c]) + 0.5 * noise
    s = sumw[c]
    sl = sumwl[c]
    if not s > 1e-300:
        # Float drift after many subtractions: recompute the sums exactly.
        p = profile[c]
        s = 0.0
        sl = 0.0
        for w in range(wave.shape[1]):
            bits = wave[c, w]
            while bits != _ZERO:
                t = w * 64 + _ctz(bits)
                s += weights[p, t]
                sl += wlogw[p, t]
                bits &= bits - _ONE
        sumw[c] = s
        sumwl[c] = sl
    return untouched + math.log(s) - sl / s + 1e-6 * noise


@njit(**_INLINE)
def _narrow(
    n: np.int64,
    mask: np.ndarray,
    wave: np.ndarray,
    count: np.ndarray,
    sumw: np.ndarray,
    sumwl: np.ndarray,
    profile: np.ndarray,
    weights: np.ndarray,
    wlogw: np.ndarray,
    stamp: np.ndarray,
    dirty: np.ndarray,
    dirty_flag: np.ndarray,
    st: np.ndarray,
) -> np.int64:
    """wave[n] &= mask. Returns 0 if unchanged, 1 if narrowed, -1 if n became empty.

    Queues n in the dirty list (its heap key must be refreshed once propagation settles, and a
    failed step re-propagates from every dirty cell).
    """
    nw = wave.shape[1]
    changed = False
    for w in range(nw):
        if wave[n, w] & mask[w] != wave[n, w]:
            changed = True
            break
    if not changed:
        return 0
    p = profile[n]
    k = count[n]
    s = sumw[n]
    sl = sumwl[n]
    for w in range(nw):
        old = wave[n, w]
        new = old & mask[w]
        removed = old ^ new
        wave[n, w] = new
        while removed != _ZERO:
            t = w * 64 + _ctz(removed)
            k -= 1
            s -= weights[p, t]
            sl -= wlogw[p, t]
            removed &= removed - _ONE
    count[n] = k
    sumw[n] = s
    sumwl[n] = sl
    stamp[n] += 1
    if dirty_flag[n] == 0:
        dirty_flag[n] = 1
        dirty[st[ST_DIRTY]] = n
        st[ST_DIRTY] += 1
    if k == 0:
        st[ST_EMPTY] = n
        return -1
    return 1


@njit(**_FLAGS)
def _propagate(
    stack: np.ndarray,
    sp: np.int64,
    on_stack: np.ndarray,
    nbr: np.ndarray,
    compat: np.ndarray,
    lut: np.ndarray,
    lut_min: np.int64,
    tmp: np.ndarray,
    wave: np.ndarray,
    count: np.ndarray,
    sumw: np.ndarray,
    sumwl: np.ndarray,
    profile: np.ndarray,
    weights: np.ndarray,
    wlogw: np.ndarray,
    stamp: np.ndarray,
    dirty: np.ndarray,
    dirty_flag: np.ndarray,
    st: np.ndarray,
) -> bool:
    """Arc consistency from the cells on the stack until nothing changes (AC-3 on bitsets).

    Returns False on a contradiction (the emptied cell is in ``st[ST_EMPTY]``); the stack is then
    emptied and its flags cleared.
    """
    nw = wave.shape[1]
    while sp > 0:
        sp -= 1
        c = stack[sp]
        on_stack[c] = 0
        for d in range(4):
            n = nbr[c, d]
            if n < 0:
                continue
            cn = count[n]
            if cn == 1 and count[c] > 1:
                # A decided neighbour of an undecided cell needs no check: when it was decided it
                # was pushed and filtered c (c had more than one pattern then too, since counts
                # only shrink), and c only shrinks since, so the neighbour's pattern keeps its
                # support until c is empty, which is reported where it happens. Two decided
                # cells are always compared.
                continue
            for w in range(nw):
                tmp[w] = _ZERO
            if cn < count[c] and cn < lut_min:
                # Few candidates at n: test each one for support in c (revise from n's side).
                od = (d + 2) & 3
                for w in range(nw):
                    bits = wave[n, w]
                    while bits != _ZERO:
                        low = bits & (~bits + _ONE)
                        u = w * 64 + _ctz(bits)
                        for v in range(nw):
                            if wave[c, v] & compat[od, u, v] != _ZERO:
                                tmp[w] |= low
                                break
                        bits ^= low
            elif count[c] < lut_min:
                for w in range(nw):
                    bits = wave[c, w]
                    while bits != _ZERO:
                        t = w * 64 + _ctz(bits)
                        for v in range(nw):
                            tmp[v] |= compat[d, t, v]
                        bits &= bits - _ONE
            else:
                for w in range(nw):
                    word = wave[c, w]
                    row = w * 8
                    while word != _ZERO:
                        byte = word & _BYTE
                        if byte != _ZERO:
                            for v in range(nw):
                                tmp[v] |= lut[d, row, byte, v]
                        word >>= np.uint64(8)
                        row += 1
            r = _narrow(
                n, tmp, wave, count, sumw, sumwl, profile, weights, wlogw, stamp, dirty,
                dirty_flag, st,
            )  # fmt: skip
            if r < 0:
                while sp > 0:
                    sp -= 1
                    on_stack[stack[sp]] = 0
                return False
            if r > 0 and on_stack[n] == 0:
                on_stack[n] = 1
                stack[sp] = n
                sp += 1
    return True


@njit(**_FLAGS)
def initial_propagate(
    push_all: bool,
    nbr: np.ndarray,
    compat: np.ndarray,
    lut: np.ndarray,
    lut_min: np.int64,
    wave: np.ndarray,
    count: np.ndarray,
    sumw: np.ndarray,
    sumwl: np.ndarray,
    profile: np.ndarray,
    weights: np.ndarray,
    wlogw: np.ndarray,
    full_count: np.int64,
) -> bool:
    """Propagate the constraints already written into the wave, before any observation.

    Seeds the stack with every cell (``push_all``: some pattern lacks support in some direction)
    or only with cells that constraints narrowed. Returns False if the constraints contradict.
    """
    cells, nw = wave.shape
    stack = np.empty(cells, dtype=np.int64)
    on_stack = np.zeros(cells, dtype=np.uint8)
    sp = 0
    for c in range(cells):
        if count[c] == 0:
            return False
        if push_all or count[c] < full_count:
            stack[sp] = c
            on_stack[c] = 1
            sp += 1
    stamp = np.zeros(cells, dtype=np.int64)
    dirty = np.empty(cells, dtype=np.int64)
    dirty_flag = np.zeros(cells, dtype=np.uint8)
    st = np.zeros(ST_SIZE, dtype=np.int64)
    tmp = np.zeros(nw, dtype=np.uint64)
    return _propagate(
        stack, sp, on_stack, nbr, compat, lut, lut_min, tmp, wave, count,
        sumw, sumwl, profile, weights, wlogw, stamp, dirty, dirty_flag, st,
    )  # fmt: skip


@njit(**_INLINE)
def _push_undecided(
    heuristic: np.int64,
    wave: np.ndarray,
    count: np.ndarray,
    sumw: np.ndarray,
    sumwl: np.ndarray,
    profile: np.ndarray,
    weights: np.ndarray,
    wlogw: np.ndarray,
    stamp: np.ndarray,
    base_count: np.ndarray,
    stream: np.uint64,
    hkey: np.ndarray,
    hcell: np.ndarray,
    hstamp: np.ndarray,
    st: np.ndarray,
) -> None:
    """Push a fresh heap entry for every undecided cell, in cell order."""
    for c in range(wave.shape[0]):
        if count[c] > 1:
            key = _cell_key(
                c, heuristic, wave, count, sumw, sumwl, profile, weights, wlogw, stamp,
                base_count, stream,
            )  # fmt: skip
            _heap_push(hkey, hcell, hstamp, st, key, c, stamp[c])


@njit(**_INLINE)
def _next_cell(
    use_heap: bool,
    count: np.ndarray,
    stamp: np.ndarray,
    hkey: np.ndarray,
    hcell: np.ndarray,
    hstamp: np.ndarray,
    st: np.ndarray,
) -> np.int64:
    """The cell to observe next, or -1 when every cell is decided.

    Heap: the root after dropping stale entries (older stamp, or a cell decided since).
    Scanline: the first undecided cell at or after the cursor.
    """
    if use_heap:
        while st[ST_HEAP] > 0:
            c = hcell[0]
            if count[c] > 1 and hstamp[0] == stamp[c]:
                return c
            _heap_pop(hkey, hcell, hstamp, st)
        return -1
    cells = count.shape[0]
    cur = st[ST_CURSOR]
    while cur < cells and count[cur] <= 1:
        cur += 1
    st[ST_CURSOR] = cur
    return cur if cur < cells else -1


@njit(**_INLINE)
def _end_attempt(
    outcome: np.int64, count: np.ndarray, st: np.ndarray, stats: np.ndarray
) -> np.int64:
    """Report the attempt's counters into ``stats`` and return its outcome.

    A claimed solution is checked once more: every cell must hold exactly one pattern.
    """
    stats[0] += st[ST_OBS]
    stats[1] += st[ST_BACKTRACKS]
    if outcome == R_SOLVED:
        for c in range(count.shape[0]):
            if count[c] != 1:  # defensive: never report an empty cell as solved
                return R_CONTRADICTION
    return outcome


@njit(**_INLINE)
def _choose(
    cell: np.int64,
    stream: np.uint64,
    wave: np.ndarray,
    profile: np.ndarray,
    weights: np.ndarray,
    st: np.ndarray,
) -> np.int64:
    """Draw one of the cell's patterns by weight, from a number fixed by (stream, obs, cell)."""
    nw = wave.shape[1]
    p = profile[cell]
    total = 0.0
    for w in range(nw):
        bits = wave[cell, w]
        while bits != _ZERO:
            total += weights[p, w * 64 + _ctz(bits)]
            bits &= bits - _ONE
    r = _unit(stream, st[ST_OBS], cell) * total
    last = -1
    for w in range(nw):
        bits = wave[cell, w]
        while bits != _ZERO:
            t = w * 64 + _ctz(bits)
            last = t
            r -= weights[p, t]
            if r < 0.0:
                return t
            bits &= bits - _ONE
    return last  # rounding left r >= 0 after the last pattern


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
    stamp: np.ndarray,
    dirty: np.ndarray,
    dirty_flag: np.ndarray,
    stack: np.ndarray,
    on_stack: np.ndarray,
    st: np.ndarray,
) -> np.int64:
    """Undo the decisions around the emptied cell ``e``; return the stack size to propagate.

    Every cell the failed step changed is re-checked against its neighbours. Cells within
    ``radius`` (Chebyshev) of e return to the baseline; so do undecided cells within
    ``2 * radius``, whose possibilities may have been cut by the decisions just undone.
    Everything in the box, one cell wider, is re-propagated.
    """
    nw = wave.shape[1]
    ex = e % width
    ey = e // width
    sp = 0
    for i in range(st[ST_DIRTY]):
        c = dirty[i]
        if on_stack[c] == 0:
            on_stack[c] = 1
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
                stamp[c] += 1
                if dirty_flag[c] == 0:
                    dirty_flag[c] = 1
                    dirty[st[ST_DIRTY]] = c
                    st[ST_DIRTY] += 1
            if on_stack[c] == 0:
                on_stack[c] = 1
                stack[sp] = c
                sp += 1
    return sp


@njit(**_INLINE)
def _refresh_dirty(
    use_heap: bool,
    heap_cap: np.int64,
    heuristic: np.int64,
    wave: np.ndarray,
    count: np.ndarray,
    sumw: np.ndarray,
    sumwl: np.ndarray,
    profile: np.ndarray,
    weights: np.ndarray,
    wlogw: np.ndarray,
    stamp: np.ndarray,
    base_count: np.ndarray,
    stream: np.uint64,
    hkey: np.ndarray,
    hcell: np.ndarray,
    hstamp: np.ndarray,
    dirty: np.ndarray,
    dirty_flag: np.ndarray,
    st: np.ndarray,
) -> None:
    """Give every cell that changed in this step a fresh heap key (each at most once) and
    empty the dirty list. A heap that would overflow is rebuilt from the undecided cells."""
    nd = st[ST_DIRTY]
    if use_heap and st[ST_HEAP] + nd > heap_cap:
        st[ST_HEAP] = 0
        _push_undecided(
            heuristic, wave, count, sumw, sumwl, profile, weights, wlogw, stamp, base_count,
            stream, hkey, hcell, hstamp, st,
        )  # fmt: skip
        for i in range(nd):
            dirty_flag[dirty[i]] = 0
    else:
        for i in range(nd):
            c = dirty[i]
            dirty_flag[c] = 0
            if use_heap and count[c] > 1:
                key = _cell_key(
                    c, heuristic, wave, count, sumw, sumwl, profile, weights, wlogw, stamp,
                    base_count, stream,
                )  # fmt: skip
                _heap_push(hkey, hcell, hstamp, st, key, c, stamp[c])
    st[ST_DIRTY] = 0


@njit(**_FLAGS)
def run_attempt(
    stream: np.uint64,
    heuristic: np.int64,
    width: np.int64,
    height: np.int64,
    periodic: bool,
    nbr: np.ndarray,
    compat: np.ndarray,
    lut: np.ndarray,
    lut_min: np.int64,
    wave: np.ndarray,
    count: np.ndarray,
    sumw: np.ndarray,
    sumwl: np.ndarray,
    profile: np.ndarray,
    weights: np.ndarray,
    wlogw: np.ndarray,
    max_backtracks: np.int64,
    max_observations: np.int64,
    stats: np.ndarray,
) -> np.int64:
    """One attempt: observe and propagate until solved, stuck, or out of budget.

    The wave must be a propagated fixpoint (see :func:`initial_propagate`); that state is the
    attempt's baseline. Each step picks a cell (:func:`_next_cell`), draws its pattern
    (:func:`_choose`) and propagates; a contradiction is repaired locally
    (:func:`_rollback_around`): every cell within Chebyshev radius r of the emptied cell returns
    to its baseline and the region is re-propagated. A new contradiction close to the last one
    doubles r (2, 4, ... 32); one elsewhere starts again at 2. After ``max_backtracks`` repairs
    the attempt fails. Settled steps refresh the heap keys of the changed cells
    (:func:`_refresh_dirty`). ``stats`` receives [observations, backtracks]. Returns R_SOLVED,
    R_CONTRADICTION or R_BUDGET.
    """
    cells, nw = wave.shape
    stack = np.empty(cells, dtype=np.int64)
    on_stack = np.zeros(cells, dtype=np.uint8)
    stamp = np.zeros(cells, dtype=np.int64)
    dirty = np.empty(cells, dtype=np.int64)
    dirty_flag = np.zeros(cells, dtype=np.uint8)
    heap_cap = 4 * cells + 64
    hkey = np.empty(heap_cap, dtype=np.float64)
    hcell = np.empty(heap_cap, dtype=np.int64)
    hstamp = np.empty(heap_cap, dtype=np.int64)
    tmp = np.zeros(nw, dtype=np.uint64)
    mask = np.zeros(nw, dtype=np.uint64)
    st = np.zeros(ST_SIZE, dtype=np.int64)
    base_wave = wave.copy()
    base_count = count.copy()
    base_sumw = sumw.copy()
    base_sumwl = sumwl.copy()

    use_heap = heuristic != H_SCANLINE
    if use_heap:
        _push_undecided(
            heuristic, wave, count, sumw, sumwl, profile, weights, wlogw, stamp, base_count,
            stream, hkey, hcell, hstamp, st,
        )  # fmt: skip
    radius = 2
    last_x = -(1 << 40)
    last_y = -(1 << 40)

    while True:
        cell = _next_cell(use_heap, count, stamp, hkey, hcell, hstamp, st)
        if cell < 0:
            return _end_attempt(R_SOLVED, count, st, stats)
        if st[ST_OBS] >= max_observations:
            return _end_attempt(R_BUDGET, count, st, stats)

        chosen = _choose(cell, stream, wave, profile, weights, st)
        for w in range(nw):
            mask[w] = _ZERO
        mask[chosen >> 6] = _ONE << np.uint64(chosen & 63)
        st[ST_OBS] += 1
        _narrow(
            cell, mask, wave, count, sumw, sumwl, profile, weights, wlogw, stamp, dirty,
            dirty_flag, st,
        )  # fmt: skip
        stack[0] = cell
        on_stack[cell] = 1
        ok = _propagate(
            stack, 1, on_stack, nbr, compat, lut, lut_min, tmp, wave, count,
            sumw, sumwl, profile, weights, wlogw, stamp, dirty, dirty_flag, st,
        )  # fmt: skip

        while not ok:
            if st[ST_BACKTRACKS] >= max_backtracks:
                return _end_attempt(R_CONTRADICTION, count, st, stats)
            st[ST_BACKTRACKS] += 1
            e = st[ST_EMPTY]
            ex = e % width
            ey = e // width
            dxl = abs(ex - last_x)
            dyl = abs(ey - last_y)
            if periodic:
                dxl = min(dxl, width - dxl)
                dyl = min(dyl, height - dyl)
            radius = min(radius * 2, 32) if max(dxl, dyl) <= 2 * radius else 2
            last_x = ex
            last_y = ey
            sp = _rollback_around(
                e, radius, width, height, periodic, wave, count, sumw, sumwl, base_wave,
                base_count, base_sumw, base_sumwl, stamp, dirty, dirty_flag, stack, on_stack, st,
            )  # fmt: skip
            if not use_heap:
                st[ST_CURSOR] = 0
            ok = _propagate(
                stack, sp, on_stack, nbr, compat, lut, lut_min, tmp, wave,
                count, sumw, sumwl, profile, weights, wlogw, stamp, dirty, dirty_flag, st,
            )  # fmt: skip

        _refresh_dirty(
            use_heap, heap_cap, heuristic, wave, count, sumw, sumwl, profile, weights, wlogw,
            stamp, base_count, stream, hkey, hcell, hstamp, dirty, dirty_flag, st,
        )  # fmt: skip


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
