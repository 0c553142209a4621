"""Compiled adjacency rules shared by both models.

Directions follow the classic WFC convention: ``d`` indexes ``DX = (-1, 0, 1, 0)`` and
``DY = (0, 1, 0, -1)`` (left, down, right, up; y grows downwards). ``allowed[d, a, b]`` is true
when pattern ``b`` may sit at ``(x + DX[d], y + DY[d])`` while pattern ``a`` sits at ``(x, y)``.
The table is always symmetric under direction reversal:
``allowed[d, a, b] == allowed[opp(d), b, a]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from worldgen.errors import InputError

DX = (-1, 0, 1, 0)
DY = (0, 1, 0, -1)
OPPOSITE = (2, 3, 0, 1)

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
U64Array = npt.NDArray[np.uint64]


@dataclass(frozen=True, eq=False)
class RuleTable:
    """A model's patterns reduced to what the solver needs: adjacency and weights.

    Invariants (checked by :meth:`validated`): ``allowed`` has shape ``(4, T, T)``, is symmetric
    under direction reversal, and ``weights`` has shape ``(T,)`` with every weight finite and > 0.
    """

    allowed: BoolArray
    weights: FloatArray

    @property
    def size(self) -> int:
        """The number of patterns T."""
        return int(self.weights.shape[0])

    def validated(self) -> RuleTable:
        """Return a contiguous copy after checking every invariant; raise InputError if broken."""
        allowed = np.ascontiguousarray(self.allowed, dtype=np.bool_)
        weights = np.ascontiguousarray(self.weights, dtype=np.float64)
        if weights.ndim != 1 or weights.shape[0] < 1:
            raise InputError("a rule table needs at least one pattern")
        t = weights.shape[0]
        if allowed.shape != (4, t, t):
            raise InputError(f"adjacency table has shape {allowed.shape}, expected (4, {t}, {t})")
        if not np.all(np.isfinite(weights)) or np.any(weights <= 0):
            raise InputError("every pattern weight must be a finite number above 0")
        for d in range(4):
            if not np.array_equal(allowed[d], allowed[OPPOSITE[d]].T):
                raise InputError(f"adjacency table is not symmetric in direction {d}")
        return RuleTable(allowed=allowed, weights=weights)


def words_for(patterns: int) -> int:
    """How many uint64 words a bitset of ``patterns`` bits needs."""
    return (patterns + 63) // 64


def to_bitsets(mask: BoolArray) -> U64Array:
    """Pack booleans ``(..., T)`` into uint64 words ``(..., ceil(T/64))``; bit t in word t//64."""
    t = mask.shape[-1]
    nw = words_for(t)
    # bytes with bit t % 8 of byte t // 8, read as little-endian words: bit t % 64 of word t // 64
    packed = np.packbits(mask.astype(np.bool_, copy=False), axis=-1, bitorder="little")
    padded = np.zeros((*mask.shape[:-1], nw * 8), dtype=np.uint8)
    padded[..., : packed.shape[-1]] = packed
    return np.ascontiguousarray(padded.view("<u8").astype(np.uint64))


def group_rows(rows: npt.NDArray[np.uint8]) -> npt.NDArray[np.int64]:
    """Ids ``(n,)`` of the rows of ``rows`` ``(n, width)``: equal rows get equal ids, different
    rows different ones (the ids themselves carry no order).

    A few bytes at a time are folded into an integer code with the ids so far and renumbered by
    a 1-D ``np.unique``; ``np.unique(rows, axis=0)`` sorts rows as structured records, 10-20×
    slower on pattern-sized inputs.
    """
    n, width = rows.shape
    ids = np.zeros(n, dtype=np.int64)
    step = max(1, (62 - max(n, 1).bit_length()) // 8)  # ids < n, then 8 bits per byte folded
    for start in range(0, width, step):
        code = ids.copy()
        for column in rows[:, start : start + step].T:
            code = (code << 8) | column.astype(np.int64)
        ids = np.unique(code, return_inverse=True)[1].reshape(-1).astype(np.int64)
    return ids


def from_bitsets(words: U64Array, patterns: int) -> BoolArray:
    """Inverse of :func:`to_bitsets`."""
    shifts = np.arange(64, dtype=np.uint64)
    bits = ((words[..., :, None] >> shifts) & np.uint64(1)).astype(np.bool_)
    return bits.reshape(*words.shape[:-1], -1)[..., :patterns]


def forbidden_pairs(
    grid: npt.NDArray[np.integer], allowed: BoolArray, periodic: bool = False
) -> int:
    """How many horizontally or vertically adjacent pairs of ``grid`` (pattern ids, ``[y, x]``)
    the rules forbid; with ``periodic`` the grid wraps. Every id must be in ``[0, T)``.

    ``allowed`` is symmetric under direction reversal, so each cell's right and lower neighbour
    cover every pair.
    """
    from worldgen.engine._kernels import count_forbidden  # numba loads only when checking

    g = np.ascontiguousarray(grid, dtype=np.int32)
    table = np.ascontiguousarray(allowed, dtype=np.bool_).view()
    table.setflags(write=False)  # one kernel signature (read-only) whatever the caller passes
    if g.ndim != 2 or table.ndim != 3 or table.shape[0] != 4:
        raise InputError("forbidden_pairs needs a 2-d grid and a (4, T, T) table")
    return int(count_forbidden(g, table, bool(periodic)))
