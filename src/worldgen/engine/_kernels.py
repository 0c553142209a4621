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
* ``profile[c]``      (C,) int32: row of ``weights``/``wlogw`` that applies to cell c (bias).
* ``compat[d, t, :]`` (4, T, NW) uint64: patterns allowed at the neighbour in direction d of t.
* ``lut[d, k, b, :]`` (4, NW*8, 256, NW) uint64: union of ``compat[d, t]`` over the bits of byte
  value b at byte position k (t = 8*k + bit); a whole-cell union is NW*8 look-ups.
* ``stamp[c]``        (C,) int64: bumped on every change of cell c; heap entries carrying an older
  stamp are stale and skipped (lazy deletion).
* heap (``hkey``, ``hcell``, ``hstamp``, size in ``st[ST_HEAP]``): binary min-heap holding, for
  every cell with count > 1, at least one entry with the cell's current stamp.
* trail (``tcell``, ``twords``, ``tcount``, ``tsumw``, ``tsumwl``): ring of saved cell states; an
  entry is written the first time a cell changes within an epoch (``saved[c] == epoch id``), so
  rolling back an epoch restores exactly the state at its start.
* epochs (``ep_start``, ``ep_depth``): a ring of the last ``R`` epochs; an epoch is ``EPOCH_LEN``
  observations; rolling back pops whole epochs (checkpoint backtracking).

Directions: d indexes DX = (-1, 0, 1, 0), DY = (0, 1, 0, -1).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_FLAGS = {"cache": True, "nogil": True, "error_model": "numpy"}

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
ST_HEAD = 1  # trail write position (monotonic)
ST_TAIL = 2  # oldest trail entry still kept (monotonic)
ST_NEP = 3  # epochs kept
ST_EPFIRST = 4  # ring slot of the oldest kept epoch
ST_EPID = 5  # id of the current epoch (fresh after every rollback)
ST_OBS = 6  # observations made in this attempt (never rewinds; feeds the RNG)
ST_DEPTH = 7  # observations on the current path (rewinds on rollback)
ST_BACKTRACKS = 8
ST_DIRTY = 9  # cells waiting in the dirty list
ST_CURSOR = 10  # scanline cursor
ST_SIZE = 11

EPOCH_LEN = 16


@njit(**_FLAGS)
def _splitmix(x: np.uint64) -> np.uint64:
    """One splitmix64 step (wrapping uint64 arithmetic)."""
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@njit(**_FLAGS)
def _unit(stream: np.uint64, a: np.int64, b: np.int64) -> float:
    """A float in [0, 1) that is a pure function of (stream, a, b)."""
    h = _splitmix(stream ^ _splitmix(np.uint64(a) ^ _splitmix(np.uint64(b))))
    return float(h >> np.uint64(11)) * _INV53


@njit(**_FLAGS)
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


@njit(**_FLAGS)
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


@njit(**_FLAGS)
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
            hkey[right] < hkey[child] or (hkey[right] == hkey[child] and hcell[right] < hcell[child])
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


@njit(**_FLAGS)
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
    stream: np.uint64,
) -> float:
    """Heap key of an undecided cell: entropy (or count for MRV) plus a tiny seeded tie-breaker."""
    noise = _unit(stream, c, stamp[c])
    if heuristic == H_MRV:
        return float(count[c]) + 0.5 * noise
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
    return math.log(s) - sl / s + 1e-6 * noise


@njit(**_FLAGS)
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
    saved: np.ndarray,
    dirty: np.ndarray,
    dirty_flag: np.ndarray,
    tcell: np.ndarray,
    twords: np.ndarray,
    tcount: np.ndarray,
    tsumw: np.ndarray,
    tsumwl: np.ndarray,
    ep_start: np.ndarray,
    st: np.ndarray,
) -> np.int64:
    """wave[n] &= mask. Returns 0 if unchanged, 1 if narrowed, -1 if n became empty.

    Saves n's previous state on the trail the first time it changes in the current epoch, and
    queues n in the dirty list (its heap key must be refreshed once propagation settles).
    """
    nw = wave.shape[1]
    changed = False
    for w in range(nw):
        if wave[n, w] & mask[w] != wave[n, w]:
            changed = True
            break
    if not changed:
        return 0
    if st[ST_NEP] > 0 and saved[n] != st[ST_EPID]:
        cap = tcell.shape[0]
        if st[ST_HEAD] - st[ST_TAIL] == cap:
            # Trail full: forget the oldest epoch, or every epoch if the current one is alone.
            if st[ST_NEP] > 1:
                nep_ring = ep_start.shape[0]
                second = (st[ST_EPFIRST] + 1) % nep_ring
                st[ST_TAIL] = ep_start[second]
                st[ST_EPFIRST] = second
                st[ST_NEP] -= 1
            else:
                st[ST_TAIL] = st[ST_HEAD]
                st[ST_NEP] = 0
        if st[ST_NEP] > 0:
            slot = st[ST_HEAD] % cap
            tcell[slot] = n
            for w in range(nw):
                twords[slot, w] = wave[n, w]
            tcount[slot] = count[n]
            tsumw[slot] = sumw[n]
            tsumwl[slot] = sumwl[n]
            st[ST_HEAD] += 1
            saved[n] = st[ST_EPID]
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
    if k == 0:
        return -1
    if dirty_flag[n] == 0:
        dirty_flag[n] = 1
        dirty[st[ST_DIRTY]] = n
        st[ST_DIRTY] += 1
    return 1


@njit(**_FLAGS)
def _propagate(
    stack: np.ndarray,
    sp: np.int64,
    on_stack: np.ndarray,
    width: np.int64,
    height: np.int64,
    periodic: bool,
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
    saved: np.ndarray,
    dirty: np.ndarray,
    dirty_flag: np.ndarray,
    tcell: np.ndarray,
    twords: np.ndarray,
    tcount: np.ndarray,
    tsumw: np.ndarray,
    tsumwl: np.ndarray,
    ep_start: np.ndarray,
    st: np.ndarray,
) -> bool:
    """Arc consistency from the cells on the stack until nothing changes (AC-3 on bitsets).

    Returns False on a contradiction; the stack is then emptied (flags cleared).
    """
    nw = wave.shape[1]
    while sp > 0:
        sp -= 1
        c = stack[sp]
        on_stack[c] = 0
        x = c % width
        y = c // width
        for d in range(4):
            if d == 0:
                nx = x - 1
                ny = y
            elif d == 1:
                nx = x
                ny = y + 1
            elif d == 2:
                nx = x + 1
                ny = y
            else:
                nx = x
                ny = y - 1
            if periodic:
                if nx < 0:
                    nx += width
                elif nx >= width:
                    nx -= width
                if ny < 0:
                    ny += height
                elif ny >= height:
                    ny -= height
            elif nx < 0 or nx >= width or ny < 0 or ny >= height:
                continue
            n = ny * width + nx
            for w in range(nw):
                tmp[w] = _ZERO
            if count[c] < lut_min:
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
                    for b in range(8):
                        byte = (word >> np.uint64(8 * b)) & _BYTE
                        if byte != _ZERO:
                            row = w * 8 + b
                            for v in range(nw):
                                tmp[v] |= lut[d, row, byte, v]
            r = _narrow(
                n, tmp, wave, count, sumw, sumwl, profile, weights, wlogw, stamp, saved,
                dirty, dirty_flag, tcell, twords, tcount, tsumw, tsumwl, ep_start, st,
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
    width: np.int64,
    height: np.int64,
    periodic: bool,
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
    saved = np.zeros(cells, dtype=np.int64)
    dirty = np.empty(cells, dtype=np.int64)
    dirty_flag = np.zeros(cells, dtype=np.uint8)
    st = np.zeros(ST_SIZE, dtype=np.int64)  # ST_NEP = 0: nothing is recorded on the trail
    tcell = np.zeros(1, dtype=np.int64)
    twords = np.zeros((1, nw), dtype=np.uint64)
    tcount = np.zeros(1, dtype=np.int32)
    tf = np.zeros(1, dtype=np.float64)
    ep_start = np.zeros(1, dtype=np.int64)
    tmp = np.zeros(nw, dtype=np.uint64)
    ok = _propagate(
        stack, sp, on_stack, width, height, periodic, compat, lut, lut_min, tmp, wave, count,
        sumw, sumwl, profile, weights, wlogw, stamp, saved, dirty, dirty_flag, tcell, twords,
        tcount, tf, tf, ep_start, st,
    )  # fmt: skip
    return ok


@njit(**_FLAGS)
def _begin_epoch(ep_start: np.ndarray, ep_depth: np.ndarray, st: np.ndarray) -> None:
    """Open a new epoch at the current trail head (dropping the oldest if the ring is full)."""
    ring = ep_start.shape[0]
    if st[ST_NEP] == ring:
        st[ST_EPFIRST] = (st[ST_EPFIRST] + 1) % ring
        st[ST_TAIL] = ep_start[st[ST_EPFIRST]]
        st[ST_NEP] -= 1
    slot = (st[ST_EPFIRST] + st[ST_NEP]) % ring
    ep_start[slot] = st[ST_HEAD]
    ep_depth[slot] = st[ST_DEPTH]
    st[ST_NEP] += 1
    st[ST_EPID] += 1


@njit(**_FLAGS)
def run_attempt(
    stream: np.uint64,
    heuristic: np.int64,
    width: np.int64,
    height: np.int64,
    periodic: bool,
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
    trail_capacity: np.int64,
    epoch_ring: np.int64,
    stats: np.ndarray,
) -> np.int64:
    """One attempt: observe and propagate until solved, stuck, or out of budget.

    The wave must be a propagated fixpoint (see :func:`initial_propagate`). On a contradiction the
    last epoch is rolled back and the search continues with fresh random draws; repeated failures
    at the same depth roll back twice as many epochs each time. ``stats`` receives
    [observations, backtracks]. Returns R_SOLVED, R_CONTRADICTION or R_BUDGET.
    """
    cells, nw = wave.shape
    stack = np.empty(cells, dtype=np.int64)
    on_stack = np.zeros(cells, dtype=np.uint8)
    stamp = np.zeros(cells, dtype=np.int64)
    saved = np.full(cells, -1, dtype=np.int64)
    dirty = np.empty(cells, dtype=np.int64)
    dirty_flag = np.zeros(cells, dtype=np.uint8)
    heap_cap = 4 * cells + 64
    hkey = np.empty(heap_cap, dtype=np.float64)
    hcell = np.empty(heap_cap, dtype=np.int64)
    hstamp = np.empty(heap_cap, dtype=np.int64)
    tcell = np.empty(trail_capacity, dtype=np.int64)
    twords = np.empty((trail_capacity, nw), dtype=np.uint64)
    tcount = np.empty(trail_capacity, dtype=np.int32)
    tsumw = np.empty(trail_capacity, dtype=np.float64)
    tsumwl = np.empty(trail_capacity, dtype=np.float64)
    ep_start = np.zeros(epoch_ring, dtype=np.int64)
    ep_depth = np.zeros(epoch_ring, dtype=np.int64)
    tmp = np.zeros(nw, dtype=np.uint64)
    mask = np.zeros(nw, dtype=np.uint64)
    st = np.zeros(ST_SIZE, dtype=np.int64)

    use_heap = heuristic != H_SCANLINE
    if use_heap:
        for c in range(cells):
            if count[c] > 1:
                key = _cell_key(
                    c, heuristic, wave, count, sumw, sumwl, profile, weights, wlogw, stamp, stream
                )
                _heap_push(hkey, hcell, hstamp, st, key, c, stamp[c])
    _begin_epoch(ep_start, ep_depth, st)
    obs_in_epoch = 0
    last_fail_depth = -1
    jump = 1

    while True:
        # 1. Pick the cell to observe.
        cell = -1
        if use_heap:
            while st[ST_HEAP] > 0:
                c = hcell[0]
                if count[c] > 1 and hstamp[0] == stamp[c]:
                    cell = c
                    break
                _heap_pop(hkey, hcell, hstamp, st)
        else:
            cur = st[ST_CURSOR]
            while cur < cells and count[cur] <= 1:
                cur += 1
            st[ST_CURSOR] = cur
            if cur < cells:
                cell = cur
        if cell < 0:
            stats[0] += st[ST_OBS]
            stats[1] += st[ST_BACKTRACKS]
            return R_SOLVED
        if st[ST_OBS] >= max_observations:
            stats[0] += st[ST_OBS]
            stats[1] += st[ST_BACKTRACKS]
            return R_BUDGET

        # 2. Checkpoint: every EPOCH_LEN observations a new epoch starts.
        if obs_in_epoch == EPOCH_LEN:
            _begin_epoch(ep_start, ep_depth, st)
            obs_in_epoch = 0

        # 3. Observe: choose one pattern, weighted, from a draw that depends on (stream, obs).
        p = profile[cell]
        total = 0.0
        for w in range(nw):
            bits = wave[cell, w]
            while bits != _ZERO:
                total += weights[p, w * 64 + _ctz(bits)]
                bits &= bits - _ONE
        r = _unit(stream, st[ST_OBS], cell) * total
        chosen = -1
        last = -1
        for w in range(nw):
            bits = wave[cell, w]
            while bits != _ZERO:
                t = w * 64 + _ctz(bits)
                last = t
                r -= weights[p, t]
                if r < 0.0:
                    chosen = t
                    break
                bits &= bits - _ONE
            if chosen >= 0:
                break
        if chosen < 0:
            chosen = last
        for w in range(nw):
            mask[w] = _ZERO
        mask[chosen >> 6] = _ONE << np.uint64(chosen & 63)
        st[ST_OBS] += 1
        st[ST_DEPTH] += 1
        obs_in_epoch += 1
        _narrow(
            cell, mask, wave, count, sumw, sumwl, profile, weights, wlogw, stamp, saved,
            dirty, dirty_flag, tcell, twords, tcount, tsumw, tsumwl, ep_start, st,
        )  # fmt: skip
        stack[0] = cell
        on_stack[cell] = 1
        ok = _propagate(
            stack, 1, on_stack, width, height, periodic, compat, lut, lut_min, tmp, wave, count,
            sumw, sumwl, profile, weights, wlogw, stamp, saved, dirty, dirty_flag, tcell, twords,
            tcount, tsumw, tsumwl, ep_start, st,
        )  # fmt: skip

        if not ok:
            # 4. Contradiction: roll back whole epochs (checkpoint backtracking).
            if st[ST_NEP] == 0 or st[ST_BACKTRACKS] >= max_backtracks:
                stats[0] += st[ST_OBS]
                stats[1] += st[ST_BACKTRACKS]
                return R_CONTRADICTION
            # Failing again before getting clearly past the previous failure means the cause
            # lies further back: roll back twice as far. Clear progress resets the distance.
            if st[ST_DEPTH] <= last_fail_depth + jump * EPOCH_LEN:
                jump = min(jump * 2, epoch_ring)
            else:
                jump = 1
            last_fail_depth = max(last_fail_depth, st[ST_DEPTH])
            pop = min(jump, st[ST_NEP])
            ring = ep_start.shape[0]
            target = (st[ST_EPFIRST] + st[ST_NEP] - pop) % ring
            start = ep_start[target]
            cap = tcell.shape[0]
            i = st[ST_HEAD] - 1
            min_cell = cells
            while i >= start:
                slot = i % cap
                c = tcell[slot]
                for w in range(nw):
                    wave[c, w] = twords[slot, w]
                count[c] = tcount[slot]
                sumw[c] = tsumw[slot]
                sumwl[c] = tsumwl[slot]
                stamp[c] += 1
                if dirty_flag[c] == 0:
                    dirty_flag[c] = 1
                    dirty[st[ST_DIRTY]] = c
                    st[ST_DIRTY] += 1
                min_cell = min(min_cell, c)
                i -= 1
            st[ST_HEAD] = start
            st[ST_DEPTH] = ep_depth[target]
            st[ST_NEP] -= pop
            st[ST_BACKTRACKS] += 1
            _begin_epoch(ep_start, ep_depth, st)
            obs_in_epoch = 0
            if not use_heap and min_cell < st[ST_CURSOR]:
                st[ST_CURSOR] = min_cell

        # 5. Refresh the heap keys of every cell that changed (each at most once).
        nd = st[ST_DIRTY]
        if use_heap and st[ST_HEAP] + nd > heap_cap:
            st[ST_HEAP] = 0
            for c in range(cells):
                if count[c] > 1:
                    key = _cell_key(
                        c, heuristic, wave, count, sumw, sumwl, profile, weights, wlogw, stamp,
                        stream,
                    )  # fmt: skip
                    _heap_push(hkey, hcell, hstamp, st, key, c, stamp[c])
            for i in range(nd):
                dirty_flag[dirty[i]] = 0
        else:
            for i in range(nd):
                c = dirty[i]
                dirty_flag[c] = 0
                if use_heap and count[c] > 1:
                    key = _cell_key(
                        c, heuristic, wave, count, sumw, sumwl, profile, weights, wlogw, stamp,
                        stream,
                    )  # fmt: skip
                    _heap_push(hkey, hcell, hstamp, st, key, c, stamp[c])
        st[ST_DIRTY] = 0
