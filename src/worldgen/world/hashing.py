"""Vectorised twin of :func:`worldgen.engine.rng.mix` over numpy integer arrays.

``mix_array(a, b, ...)`` equals ``rng.mix(a, b, ...)`` element by element, so scalar and array code
paths hash identically. Only unsigned 64-bit wrap-around arithmetic is used (no floats), which is
bit-identical on every platform numpy supports.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from worldgen.engine.rng import GOLDEN, MASK64

U64Array = npt.NDArray[np.uint64]
I64Array = npt.NDArray[np.int64]

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(GOLDEN)
_START = 0x6A09E667F3BCC909


def _as_u64(value: int | npt.NDArray[np.integer]) -> U64Array:
    if isinstance(value, int):
        return np.array(value & MASK64, dtype=np.uint64)
    arr = np.asarray(value)
    if arr.dtype == np.uint64:
        return arr
    return arr.astype(np.int64, order="C", copy=True).view(np.uint64)


def splitmix64_array(x: U64Array) -> U64Array:
    """:func:`worldgen.engine.rng.splitmix64` applied to every element."""
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
    return np.asarray(z ^ (z >> np.uint64(31)), dtype=np.uint64)


def mix_array(*values: int | npt.NDArray[np.integer]) -> U64Array:
    """Hash integers and integer arrays (broadcast together) like :func:`rng.mix`."""
    parts = [_as_u64(v) for v in values]
    shape = np.broadcast_shapes(*(p.shape for p in parts))
    h = np.full(shape, _START, dtype=np.uint64)
    for p in parts:
        h = splitmix64_array(h ^ p)
    return h
