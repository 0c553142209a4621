"""Worlds of samples with a ground (side views such as ``flowers``): a ground row at ``y = 0``.

The classic *ground* option pins the bottom row of an output to the sample's ground pattern and
bans that pattern everywhere else. An infinite world has no bottom row, so the world puts the
ground row at ``y = 0``, infinite in x:

* the **base layer** is a *ground column*, the same in every column: a chain of horizontally
  self-adjacent patterns ``rows`` ending with the ground pattern at ``y = 0`` (the sample's strip
  above its ground, such as grass over dirt), a vertically self-adjacent ``sky`` pattern above it
  and a ``below`` pattern under it (the periodic sample's continuation under its ground: sky
  again for ``flowers``). Every neighbouring pair is allowed, so the base is valid by
  construction (:func:`ground_column` finds the shortest such chain, or refuses the sample);
* **refinement blocks** keep every cell at ``y >= 0`` (the ground row and what lies under it) and
  ban the ground pattern above it (:func:`ground_constraints`), so what grows grows from the
  ground (a flower's stem ends in grass), and nothing repeats the ground in the sky.

The patch library of such a model holds only this column (:func:`ground_library`; no Wang patches
are needed, so building it is instant).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt

from worldgen.errors import InputError
from worldgen.world.model import WorldModel

__all__ = ["MAX_GROUND_ROWS", "ground_column", "ground_constraints", "ground_region"]

I32Array = npt.NDArray[np.int32]
MAX_GROUND_ROWS = 64
"""Longest chain searched between the sky and the ground pattern (and below it)."""
_DOWN, _RIGHT = 1, 2  # rules directions: allowed[1, a, b] = b may sit under a


def _chain(
    model: WorldModel, start: int, step: npt.NDArray[np.bool_], usable: npt.NDArray[np.bool_]
) -> list[int] | None:
    """Shortest chain ``start, p1, ..., pk`` with ``step[p_i, p_i+1]``, every ``p_i`` usable, whose
    last pattern may follow itself (``step[pk, pk]``); None when there is none. Among equally short
    chains the one through heavier patterns is found first (neighbours in falling weight)."""
    order = np.argsort(-model.weights, kind="stable")
    parent: dict[int, int] = {}
    queue: deque[tuple[int, int]] = deque([(start, 0)])
    seen = {start}
    while queue:
        p, depth = queue.popleft()
        if p != start and step[p, p]:
            path = [p]
            while path[-1] != start:
                path.append(parent[path[-1]])
            return path[::-1]
        if depth >= MAX_GROUND_ROWS:
            continue
        for q in order.tolist():
            if usable[q] and step[p, q] and q not in seen:
                seen.add(q)
                parent[q] = p
                queue.append((q, depth + 1))
    return None


def ground_column(model: WorldModel) -> I32Array:
    """``[sky, below, g, rows...]``: ``rows[g]`` is the ground pattern at ``y = 0`` and ``rows[k]``
    sits at ``y = k - g``; ``sky`` fills every row above them and ``below`` every row under them.
    Raises InputError when the sample has no such column."""
    g = model.ground
    if g < 0:
        raise ValueError("the model has no ground pattern")
    allowed = model.allowed
    flat = allowed[_RIGHT, np.arange(model.size), np.arange(model.size)].copy()
    flat[g] = False
    above = _chain(model, g, allowed[_DOWN].T, flat)  # allowed[1].T[a, b]: b may sit on a
    under = _chain(model, g, allowed[_DOWN], flat)
    if above is None or under is None or not allowed[_RIGHT, g, g]:
        raise InputError(
            f"{model.noun} {model.name}: no horizontally uniform strip joins its ground pattern "
            "to a plain sky (and to what lies under it); a world with a ground needs one"
        )
    # above = [ground, ..., sky] bottom-up, under = [ground, ..., below] top-down
    rows = above[:0:-1][1:] + under[:-1]  # top to bottom, without the repeating sky and below
    return np.array([above[-1], under[-1], len(above) - 2, *rows], dtype=np.int32)


def ground_region(column: I32Array, y0: int, w: int, h: int) -> I32Array:
    """Base-layer variant ids ``(h, w)`` of the window whose top row is ``y0`` (every column is
    the ground column)."""
    sky, below, g, rows = int(column[0]), int(column[1]), int(column[2]), column[3:]
    ys = np.arange(y0, y0 + h, dtype=np.int64)
    col = np.where(ys < -g, sky, below).astype(np.int32)
    inside = (ys >= -g) & (ys < len(rows) - g)
    col[inside] = rows[(ys[inside] + g).astype(np.intp)]
    return np.ascontiguousarray(np.broadcast_to(col[:, None], (h, w)))


def ground_constraints(
    ground: int, patterns: int, oy: int, below: I32Array, pins: I32Array
) -> tuple[I32Array, npt.NDArray[np.bool_] | None]:
    """Pins and bans of a refinement block whose top row is ``oy``: ``pins`` (the ring) plus every
    cell at ``y >= 0`` pinned to the layer below (``below``); the ground pattern banned at every
    cell above ``y = 0`` (None when the block lies wholly at ``y >= 0``)."""
    h = pins.shape[0]
    ys = oy + np.arange(h)
    out = pins.copy()
    out[ys >= 0] = below[ys >= 0]
    if not np.any(ys < 0):
        return out, None
    bans = np.zeros((h, pins.shape[1], patterns), dtype=np.bool_)
    bans[ys < 0, :, ground] = True
    return out, bans
