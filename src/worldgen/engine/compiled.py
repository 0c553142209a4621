"""Rule tables packed for the solver's kernels: bitsets, byte look-up tables and key classes.

:func:`compile_rules` runs once per model; the result is immutable and reusable across solves
(and across threads). Two packings serve the two propagation methods of
:mod:`worldgen.engine._kernels`:

* **bitsets** (any rule table): ``compat[d, t]`` is the bitset of patterns allowed next to t in
  direction d, ``lut`` its byte-wise unions (built on first use; it is large for big T).
* **keys** (most real rule tables): a direction is a *key join* when any two patterns either
  allow exactly the same neighbours in that direction or share none — true of every overlapping
  model (two patterns overlap iff the shared columns agree) and of socket-style tilesets. Then
  ``allowed[d, a, b]`` iff ``kout[d, a] == kin[d, b] >= 0`` for small integer keys, and
  propagation only has to notice when the last pattern of a key leaves a cell (AC-4 on keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from worldgen.engine import _kernels as kern
from worldgen.engine.rules import RuleTable, group_rows, to_bitsets, words_for
from worldgen.errors import InputError

__all__ = [
    "METHODS",
    "CompiledRules",
    "KernelRules",
    "KeyClasses",
    "Method",
    "compile_rules",
    "key_classes",
]

Method = Literal["auto", "bits", "keys"]
METHODS: tuple[Method, ...] = ("auto", "bits", "keys")

# Below this many possible patterns a cell's neighbour mask is built bit by bit, above it
# through the byte look-up table (fewer, but wider, memory reads).
_LUT_MIN_COUNT = 6
# The byte look-up table grows as 4*NW*8*256*NW words; past 16 words (1024 patterns) it would
# exceed 64 MiB, so larger tables propagate bit by bit only.
_LUT_MAX_WORDS = 16
# Keys are packed into 16 bits on the kernels' stack.
_MAX_KEYS = (1 << 16) - 1
# "auto" propagates by keys only where the byte look-up table is not built (T > 1024): with
# first-in-first-out AC-3 and an indexed heap, bitsets were faster on every shipped model
# (measured: town T=737 48²/128²/256²: 87/518/2,158 ms by bits, 99/661/2,526 ms by keys).
_KEYS_FROM_WORDS = _LUT_MAX_WORDS + 1
# Tables of 3 or 4 words (e.g. lakes, islands: 0.6-1 MB, more than the L2 cache) keep a byte's
# four directions side by side, and the kernel builds a cell's four unions in one pass (lakes
# 32² blocks ~10 % faster, islands and dungeon 48² ~8 %); 1 and 2 words keep them by direction
# (pipes 512² was 5-20 % slower interleaved).
_INTERLEAVED_WORDS = (3, 4)
# Bits on a key join from this many words on also get the key arrays: the kernel then revises a
# cell's neighbours by the keys that died there when it lost few patterns (town, 12 words, 48²:
# 80-115 -> 61-67 ms; islands and dungeon, 4 words, were 5-10 % slower with it).
_KEYED_BITS_WORDS = 5

I64Array = npt.NDArray[np.int64]
U64Array = npt.NDArray[np.uint64]


@dataclass(frozen=True)
class KeyClasses:
    """The key-join form of a rule table (see the module docstring). Arrays are (4, ...).

    ``kout[d, a]``: the key pattern a needs from its d-neighbour (-1: a has none allowed);
    ``kin[d, b]``: the key b offers as a d-neighbour (-1: b is no pattern's d-neighbour).
    The patterns with ``kin[d] == k`` are a sparse bitset: the pairs
    ``(in_word[d, i], in_mask[d, i])`` for i in ``in_start[d, k] .. in_start[d, k + 1]``, one per
    word that holds some of them; ``out_start``/``out_word``/``out_mask`` likewise for ``kout``.
    ``nokey[d]`` is the bitset of patterns with ``kout[d] == -1``; ``sizes[d, k]`` the number of
    patterns with ``kin[d] == k``; ``kin4[b]`` packs the four ``kin[d, b]`` in 16 bits each
    (0xFFFF: none), so one load gives them all.
    """

    kin: I64Array
    kout: I64Array
    in_start: I64Array
    in_word: I64Array
    in_mask: U64Array
    out_start: I64Array
    out_word: I64Array
    out_mask: U64Array
    nokey: U64Array
    sizes: I64Array
    kin4: I64Array

    @property
    def keys(self) -> int:
        """The largest number of keys of one direction."""
        return int(self.in_start.shape[1] - 1)


class KernelRules(NamedTuple):
    """The rule arrays in the order :func:`worldgen.engine._kernels.solve` takes them; the
    method that does not run gets small stand-ins it never reads. Bits on a key join of more
    than four words get the key arrays too (the kernel revises by dead keys where that is
    cheaper; same output)."""

    mode: int
    lut: U64Array
    lut_min: int
    kin: I64Array
    kin4: I64Array
    kout: I64Array
    in_start: I64Array
    in_word: I64Array
    in_mask: U64Array
    out_start: I64Array
    out_word: I64Array
    out_mask: U64Array
    nokey: U64Array
    key_sizes: npt.NDArray[np.uint8]
    counted: bool  # key sizes fit the kernel's byte counters


_NO_KEYS = np.zeros((4, 1), dtype=np.int64)
_NO_KEY_BITS = np.zeros((4, 1), dtype=np.uint64)
_NO_SIZES = np.zeros((4, 1), dtype=np.uint8)
_NO_LUT = np.zeros((1, 1, 4), dtype=np.uint64)


@dataclass(frozen=True, eq=False)
class CompiledRules:
    """A rule table packed for the kernels. Build once per model with :func:`compile_rules`.

    ``compat[d, t]`` is the bitset of patterns allowed next to t in direction d; ``lut`` its
    byte-wise unions; ``weights`` the base weight row; ``push_all`` is true when some pattern
    lacks a neighbour in some direction, so the unconstrained grid is not yet consistent;
    ``keys`` the key classes when every direction is a key join (None otherwise); ``method``
    the propagation the solver uses. Both methods give identical output when no contradiction
    occurs (a contradiction's repair depends on where it was found).
    """

    patterns: int
    words: int
    compat: U64Array
    weights: npt.NDArray[np.float64]
    push_all: bool
    keys: KeyClasses | None
    method: Literal["bits", "keys"]

    @cached_property
    def lut(self) -> U64Array:
        """The byte look-up table of ``compat`` (a stub when T > 1024; see ``lut_min``), in the
        layout :mod:`._kernels` describes: interleaved for 3 and 4 words, else by direction."""
        nw = self.words
        if nw > _LUT_MAX_WORDS:
            return np.zeros((1, 256, nw), dtype=np.uint64)
        rows = nw * 8
        # compat rows per (byte position k, bit): pattern 8k+bit, or nothing past the last one.
        padded = np.zeros((4, rows * 8, nw), dtype=np.uint64)
        padded[:, : self.patterns] = self.compat
        per_bit = padded.reshape(4, rows, 8, nw)
        lut = np.zeros((4, rows, 256, nw), dtype=np.uint64)
        for bit in range(8):  # bytes [n, 2n) are bytes [0, n) with bit `bit` added: 8 steps
            n = 1 << bit
            np.bitwise_or(lut[:, :, :n], per_bit[:, :, bit, None], out=lut[:, :, n : 2 * n])
        if nw in _INTERLEAVED_WORDS:
            # (rows, 256, 4 * nw): a byte's unions of the four directions side by side, so the
            # kernel builds a cell's four unions in one pass, two cache lines a byte (4 words)
            return np.ascontiguousarray(lut.transpose(1, 2, 0, 3).reshape(rows, 256, 4 * nw))
        return np.ascontiguousarray(lut.reshape(4 * rows, 256, nw))  # by direction

    @property
    def lut_min(self) -> int:
        """Fewest possible patterns at which the byte look-up table is used. Past four words the
        table outgrows the caches (12 words: 9 MB), so cells keep unioning rows bit by bit up to
        4 patterns per word (town 48²: 9 % faster; islands, 4 words, is faster at 6)."""
        if self.words > _LUT_MAX_WORDS:
            return self.patterns + 1
        return _LUT_MIN_COUNT if self.words <= 4 else 4 * self.words

    @cached_property
    def kernel(self) -> KernelRules:
        """The arrays of :attr:`method` for the kernel (built on first use)."""
        keys = self.keys
        if keys is not None and self.method == "keys":
            counted = int(keys.sizes.max(initial=0)) <= 255
            return KernelRules(
                kern.MODE_KEYS, _NO_LUT, self.patterns + 1, keys.kin, keys.kin4, keys.kout,
                keys.in_start, keys.in_word, keys.in_mask, keys.out_start, keys.out_word,
                keys.out_mask, keys.nokey, keys.sizes.astype(np.uint8) if counted else _NO_SIZES,
                counted,
            )  # fmt: skip
        if keys is not None and self.words >= _KEYED_BITS_WORDS:
            return KernelRules(
                kern.MODE_BITS, self.lut, self.lut_min, _NO_KEYS, _NO_KEYS[0], keys.kout,
                keys.in_start, keys.in_word, keys.in_mask, keys.out_start, keys.out_word,
                keys.out_mask, _NO_KEY_BITS, _NO_SIZES, False,
            )  # fmt: skip
        return KernelRules(
            kern.MODE_BITS, self.lut, self.lut_min, _NO_KEYS, _NO_KEYS[0], _NO_KEYS, _NO_KEYS,
            _NO_KEYS, _NO_KEY_BITS, _NO_KEYS, _NO_KEYS, _NO_KEY_BITS, _NO_KEY_BITS, _NO_SIZES,
            False,
        )  # fmt: skip

    @cached_property
    def full_row(self) -> U64Array:
        """The bitset of every pattern."""
        return to_bitsets(np.ones(self.patterns, dtype=np.bool_))


def compile_rules(rules: RuleTable, method: Method = "auto") -> CompiledRules:
    """Validate ``rules`` and pack them for the kernels.

    ``method`` chooses the propagation: ``"auto"`` (keys when the table is a key join of more
    than 1024 patterns, else bits), ``"bits"``, or ``"keys"`` (an InputError if the table is not
    a key join).
    """
    if method not in METHODS:
        raise InputError(f"unknown propagation method {method!r}; use one of {', '.join(METHODS)}")
    table = rules.validated()
    t = table.size
    compat = np.ascontiguousarray(to_bitsets(table.allowed))  # (4, T, NW)
    keys = key_classes(table.allowed)
    if method == "keys" and keys is None:
        raise InputError("the rule table is not a key join, so it cannot propagate by keys")
    use_keys = keys is not None and (
        method == "keys" or (method == "auto" and words_for(t) >= _KEYS_FROM_WORDS)
    )
    push_all = not all(bool(table.allowed[d].any(axis=1).all()) for d in range(4))
    return CompiledRules(
        patterns=t,
        words=words_for(t),
        compat=compat,
        weights=table.weights,
        push_all=push_all,
        keys=keys,
        method="keys" if use_keys else "bits",
    )


def key_classes(allowed: npt.NDArray[np.bool_]) -> KeyClasses | None:
    """The key-join form of ``allowed`` (4, T, T), or None when some direction is not one.

    Keys are numbered in order of the first pattern that needs them, so the result is a pure
    function of the table.
    """
    t = allowed.shape[1]
    kout = np.full((4, t), -1, dtype=np.int64)
    kin = np.full((4, t), -1, dtype=np.int64)
    for d in range(4):
        rows = allowed[d]
        needy = np.flatnonzero(rows.any(axis=1))  # the patterns with some d-neighbour
        if needy.size == 0:
            continue
        # one key per distinct row, numbered by the first pattern that has it
        ids = group_rows(np.packbits(rows[needy], axis=1))
        _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.shape[0])
        kout[d, needy] = rank[inverse.reshape(-1)]
        if order.shape[0] >= _MAX_KEYS:
            return None
        key_rows = rows[needy[first[order]]]  # (keys, T): row k is key k's members
        covered = key_rows.any(axis=0)
        if np.count_nonzero(key_rows) != np.count_nonzero(covered):
            return None  # two different rows share a neighbour: not a key join
        kin[d] = np.where(covered, np.argmax(key_rows, axis=0), -1)
    n_keys = int(max(kout.max(), kin.max())) + 1
    in_start, in_word, in_mask = _class_masks(kin, n_keys)
    out_start, out_word, out_mask = _class_masks(kout, n_keys)
    return KeyClasses(
        kin=kin,
        kout=kout,
        in_start=in_start,
        in_word=in_word,
        in_mask=in_mask,
        out_start=out_start,
        out_word=out_word,
        out_mask=out_mask,
        nokey=np.ascontiguousarray(to_bitsets(kout < 0)),
        kin4=np.ascontiguousarray(
            sum(np.where(kin[d] >= 0, kin[d], 0xFFFF) << (16 * d) for d in range(4)),
            dtype=np.int64,
        ),
        sizes=np.ascontiguousarray(
            np.stack([np.bincount(kin[d][kin[d] >= 0], minlength=n_keys) for d in range(4)])
        ),
    )


def _class_masks(key: I64Array, n_keys: int) -> tuple[I64Array, I64Array, U64Array]:
    """Per direction and key, the patterns with that key as (word, mask) pairs in word order."""
    t = key.shape[1]
    n_words = max(1, (t + 63) // 64)
    start = np.zeros((4, n_keys + 1), dtype=np.int64)
    words = np.zeros((4, max(t, 1)), dtype=np.int64)
    masks = np.zeros((4, max(t, 1)), dtype=np.uint64)
    for d in range(4):
        members = np.flatnonzero((key[d] >= 0) & (key[d] < n_keys))
        # one entry per (key, word) pair, in key order then word order
        pair = key[d, members] * n_words + members // 64
        pairs, inverse = np.unique(pair, return_inverse=True)
        merged = np.zeros(len(pairs), dtype=np.uint64)
        np.bitwise_or.at(
            merged, inverse, np.left_shift(np.uint64(1), (members % 64).astype(np.uint64))
        )
        words[d, : len(pairs)] = pairs % n_words
        masks[d, : len(pairs)] = merged
        start[d, 1:] = np.cumsum(np.bincount(pairs // n_words, minlength=n_keys))
    return np.ascontiguousarray(start), np.ascontiguousarray(words), np.ascontiguousarray(masks)
