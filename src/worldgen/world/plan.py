"""Pure planning of parallel work: which pieces of a window, which blocks, in which groups.

Nothing here computes a cell; it is block index arithmetic over the layer geometry of
:mod:`.blocks` (layer ``L`` blocks span ``[k*S + o, (k+1)*S + o)``, ``o`` = :func:`offset`:
S/2 for layer 1, 0 for layer 2, S/4 for layer 3; a layer-``L`` block reads the 2 x 2
layer-``L-1`` blocks at indices ``b + d`` and ``b + d + 1``, ``d`` = ``_step``: 0 where the
offset grows, -1 where it shrinks). :mod:`.pool` uses it to cut a region into pieces whose
shared lower-layer blocks are computed once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = [
    "MAX_PIECE_BLOCKS",
    "PIECES_PER_WORKER",
    "BlockKey",
    "ChunkKey",
    "Window",
    "chunk_pieces",
    "offset",
    "plan_pieces",
    "shared_blocks",
    "top_block_count",
]

BlockKey = tuple[int, int, int]
"""``(layer, bi, bj)``; layer-0 keys are base lattice cells ``(0, i, j)``."""
Window = tuple[int, int, int, int]
"""``(x, y, width, height)`` in cells."""
ChunkKey = tuple[int, int]
"""``(cx, cy)``: the chunk of cells ``[cx*C, (cx+1)*C) x [cy*C, (cy+1)*C)`` for chunk side C."""

PIECES_PER_WORKER = 8
"""A region is cut into about this many pieces per worker, so that uneven pieces balance out."""
MAX_PIECE_BLOCKS = 4096
"""At most this many top-layer blocks per piece: a piece's blocks, and the shared ones it is
given, then fit in a worker's block cache (16384) with every layer below, up to 3 layers."""


def offset(S: int, layer: int) -> int:
    """Block offset of ``layer`` (``World.offset``): S/2 for layer 1, 0 for layer 2 (and the
    base lattice), S/4 for layer 3, so that no two layers' block borders cross at the same
    cells (a third layer at S/2 would only repeat layer 1's borders)."""
    if layer == 3:
        return S // 4
    return S // 2 if layer % 2 else 0


def _step(S: int, layer: int) -> int:
    """``d``: block ``b`` of ``layer`` (>= 1) reads blocks ``b + d`` and ``b + d + 1`` of the
    layer below (its span starts inside lower block ``b + d`` and ends inside the next)."""
    return (offset(S, layer) - offset(S, layer - 1)) // S


def _block_span(start: int, length: int, S: int, off: int) -> tuple[int, int]:
    """First and last block index whose span ``[k*S + off, (k+1)*S + off)`` meets the run."""
    return (start - off) // S, (start + length - 1 - off) // S


def _split(start: int, length: int, S: int, off: int, parts: int) -> list[tuple[int, int]]:
    """``[start, start + length)`` cut into at most ``parts`` runs of whole block spans.

    Inner cut points lie on block boundaries ``k * S + off``; runs are as equal as possible
    (in blocks) and listed in order; they tile the input exactly.
    """
    first, last = _block_span(start, length, S, off)
    blocks = last - first + 1
    parts = max(1, min(parts, blocks))
    out: list[tuple[int, int]] = []
    lo = start
    for k in range(1, parts + 1):
        hi = start + length if k == parts else (first + (blocks * k) // parts) * S + off
        out.append((lo, hi - lo))
        lo = hi
    return out


def plan_pieces(window: Window, S: int, off: int, workers: int) -> list[Window]:
    """The pieces a pooled region is computed in, row-major; they tile ``window`` exactly.

    Bands of whole top-layer block rows (boundaries at ``k * S + off``): about
    ``PIECES_PER_WORKER * workers`` of them, more when a band would exceed ``MAX_PIECE_BLOCKS``
    blocks. A window with fewer block rows than workers is also cut into columns.
    """
    x, y, w, h = window
    r0, r1 = _block_span(y, h, S, off)
    c0, c1 = _block_span(x, w, S, off)
    rows, cols = r1 - r0 + 1, c1 - c0 + 1
    bands = max(PIECES_PER_WORKER * workers, math.ceil(rows * cols / MAX_PIECE_BLOCKS))
    bands = max(1, min(bands, rows))
    columns = 1 if bands >= workers else min(cols, math.ceil(workers / bands))
    return [
        (px, py, pw, ph)
        for py, ph in _split(y, h, S, off, bands)
        for px, pw in _split(x, w, S, off, columns)
    ]


def _cone(window: Window, S: int, layers: int) -> dict[int, tuple[int, int, int, int]]:
    """Block ranges ``(c0, c1, r0, r1)`` (inclusive) of every refinement layer that computing
    ``window``'s top layer reads (``World.dependencies``)."""
    x, y, w, h = window
    c0, c1 = _block_span(x, w, S, offset(S, layers))
    r0, r1 = _block_span(y, h, S, offset(S, layers))
    out = {layers: (c0, c1, r0, r1)}
    for layer in range(layers, 1, -1):
        d = _step(S, layer)
        c0, c1, r0, r1 = c0 + d, c1 + d + 1, r0 + d, r1 + d + 1
        out[layer - 1] = (c0, c1, r0, r1)
    return out


def top_block_count(window: Window, S: int, layers: int) -> int:
    """How many top-layer blocks ``World.top_blocks`` lists for ``window`` (0 without layers)."""
    if layers == 0:
        return 0
    c0, c1, r0, r1 = _cone(window, S, layers)[layers]
    return (c1 - c0 + 1) * (r1 - r0 + 1)


def shared_blocks(
    pieces: Sequence[Window], S: int, layers: int
) -> tuple[list[list[BlockKey]], list[list[int]]]:
    """The blocks that two or more pieces would both compute, and who needs them.

    Returns ``(groups, needs)``: ``groups[g]`` lists the shared block keys (lower layers first,
    then row-major) that exactly the same set of pieces reads; ``needs[p]`` the groups piece p
    reads. A pooled region computes each group once, before the pieces that need it, so no block
    is computed twice. Only layers below the top are shared (top-layer blocks of different pieces
    are distinct, and layer 0 is a look-up). One exception: with 3 layers and bands one block row
    thin, a group's layer-2 blocks can read layer-1 blocks of another group, which its task then
    computes again (same bytes; only small windows get such thin bands).
    """
    cones = [_cone(p, S, layers) for p in pieces]
    readers: dict[BlockKey, list[int]] = {}
    for layer in range(1, layers):
        # rows and columns that two or more pieces reach; shared keys lie on them
        row_hits: dict[int, int] = {}
        col_hits: dict[int, int] = {}
        for cone in cones:
            c0, c1, r0, r1 = cone[layer]
            for r in range(r0, r1 + 1):
                row_hits[r] = row_hits.get(r, 0) + 1
            for c in range(c0, c1 + 1):
                col_hits[c] = col_hits.get(c, 0) + 1
        for index, cone in enumerate(cones):
            c0, c1, r0, r1 = cone[layer]
            rows = range(r0, r1 + 1)
            cols = range(c0, c1 + 1)
            shared_rows = [r for r in rows if row_hits[r] > 1]
            shared_cols = [c for c in cols if col_hits[c] > 1]
            keys = {(layer, c, r) for r in shared_rows for c in cols}
            keys.update((layer, c, r) for c in shared_cols for r in rows)
            for key in keys:
                readers.setdefault(key, []).append(index)
    by_readers: dict[tuple[int, ...], list[BlockKey]] = {}
    for key, who in readers.items():
        if len(who) > 1:
            by_readers.setdefault(tuple(who), []).append(key)
    groups: list[list[BlockKey]] = []
    needs: list[list[int]] = [[] for _ in pieces]
    for pieces_reading, members in sorted(by_readers.items()):
        for index in pieces_reading:
            needs[index].append(len(groups))
        groups.append(sorted(members, key=lambda k: (k[0], k[2], k[1])))
    return groups, needs


def chunk_pieces(
    chunks: Sequence[ChunkKey], side: int, S: int, off: int, parts: int
) -> list[Window]:
    """Windows that compute the square ``chunks`` of ``side`` cells in at least ``parts`` pieces
    when possible; together they cover exactly the chunks, each cell once.

    Chunks of one row that follow each other make one piece, and while there are more pieces
    than ``parts``, equal pieces of neighbouring rows are stacked (the lowest pair first): fewer
    lower-layer blocks are then read by two pieces along their common edge. While there are fewer
    than ``parts`` pieces, the widest piece is halved between chunks, or a one-chunk piece cut
    into bands of whole top-layer block rows (boundaries ``k * S + off``), so that idle workers
    share a lone chunk. Deterministic.
    """
    if side % S:
        raise ValueError(f"chunk side {side} must be a multiple of the block size {S}")
    runs: list[list[ChunkKey]] = []
    for key in sorted(set(chunks), key=lambda k: (k[1], k[0])):
        last = runs[-1][-1] if runs else None
        if last is not None and last[1] == key[1] and last[0] + 1 == key[0]:
            runs[-1].append(key)
        else:
            runs.append([key])
    pieces: list[Window] = [
        (run[0][0] * side, run[0][1] * side, len(run) * side, side) for run in runs
    ]
    while len(pieces) > max(1, parts):
        # more pieces than workers: stack equal runs of neighbouring rows (the lower-layer
        # blocks along their common edge are then computed once, not by two pieces)
        pairs = [
            (a[3] + b[3], i, j)
            for i, a in enumerate(pieces)
            for j, b in enumerate(pieces)
            if a[0] == b[0] and a[2] == b[2] and a[1] + a[3] == b[1]
        ]
        if not pairs:
            break
        _, i, j = min(pairs)
        x, y, w, h = pieces[i]
        pieces[i] = (x, y, w, h + pieces[j][3])
        del pieces[j]
    while 0 < len(pieces) < parts:
        widest = max(range(len(pieces)), key=lambda i: (pieces[i][2], pieces[i][3], -i))
        x, y, w, h = pieces[widest]
        if w > side:
            left = (w // side) // 2 * side
            halves = [(x, y, left, h), (x + left, y, w - left, h)]
        else:
            bands = _split(y, h, S, off, min(2, parts - len(pieces) + 1))
            if len(bands) < 2:
                break
            halves = [(x, by, w, bh) for by, bh in bands]
        pieces[widest : widest + 1] = halves
    return pieces
