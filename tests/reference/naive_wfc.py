"""A slow, obviously-correct Wave Function Collapse, and checkers for its results.

Everything here is plain Python on sets, lists and tuples, written to be read rather than to be
fast: fast code in ``worldgen`` is tested by comparing it with these functions. Inputs may be
numpy arrays; they are turned into Python objects first.

Directions follow :mod:`worldgen.engine.rules`: ``d`` indexes ``DX = (-1, 0, 1, 0)`` and
``DY = (0, 1, 0, -1)``, and ``allowed[d][a][b]`` means pattern ``b`` may sit at
``(x + DX[d], y + DY[d])`` when pattern ``a`` sits at ``(x, y)``.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

DX = (-1, 0, 1, 0)
DY = (0, 1, 0, -1)
OPPOSITE = (2, 3, 0, 1)

Cell = tuple[int, int]
Pattern = tuple[tuple[int, ...], ...]


def _table(allowed: npt.ArrayLike) -> list[list[set[int]]]:
    """``compat[d][a]``: the set of patterns allowed at direction ``d`` of ``a``."""
    rows: list[list[list[bool]]] = np.asarray(allowed, dtype=bool).tolist()
    return [[{b for b, ok in enumerate(row) if ok} for row in table] for table in rows]


def _neighbour(x: int, y: int, d: int, width: int, height: int, periodic: bool) -> Cell | None:
    """The cell at direction ``d`` of ``(x, y)``, wrapping if periodic, else None off the grid."""
    nx, ny = x + DX[d], y + DY[d]
    if periodic:
        return nx % width, ny % height
    if 0 <= nx < width and 0 <= ny < height:
        return nx, ny
    return None


def _propagate(
    wave: dict[Cell, set[int]],
    queue: deque[Cell],
    compat: list[list[set[int]]],
    width: int,
    height: int,
    periodic: bool,
) -> bool:
    """AC-3: shrink neighbours of queued cells until nothing changes; False on an empty cell."""
    while queue:
        x, y = queue.popleft()
        for d in range(4):
            n = _neighbour(x, y, d, width, height, periodic)
            if n is None:
                continue
            supported: set[int] = set()
            for a in wave[(x, y)]:
                supported |= compat[d][a]
            narrowed = wave[n] & supported
            if narrowed != wave[n]:
                if not narrowed:
                    return False
                wave[n] = narrowed
                queue.append(n)
    return True


def solve_reference(
    allowed: npt.ArrayLike,
    weights: npt.ArrayLike,
    width: int,
    height: int,
    periodic: bool,
    seed: int,
    *,
    pins: dict[Cell, int] | None = None,
    bans: dict[Cell, set[int]] | None = None,
    max_attempts: int = 20,
) -> npt.NDArray[np.int32] | None:
    """Classic WFC: return an ``(height, width)`` grid of pattern ids, or None.

    Every cell starts with every pattern; bans remove patterns and pins fix a cell, then
    constraints are propagated to a fixpoint before anything is observed (if that already
    empties a cell, the instance is unsatisfiable and None is returned at once). Each attempt
    then repeatedly observes the undecided cell with the fewest options (ties: lowest
    ``y * width + x``), picks one of its patterns with probability proportional to its weight
    using ``random.Random(seed * 1000 + attempt)``, and propagates. A contradiction starts the
    next attempt from the pinned state; after ``max_attempts`` failures the result is None.
    """
    compat = _table(allowed)
    w: list[float] = [float(v) for v in np.asarray(weights, dtype=float).tolist()]
    patterns = len(w)
    cells = [(x, y) for y in range(height) for x in range(width)]

    start: dict[Cell, set[int]] = {c: set(range(patterns)) for c in cells}
    for cell, banned in (bans or {}).items():
        if cell not in start:
            raise ValueError(f"ban at {cell} lies outside the {width}x{height} grid")
        start[cell] -= set(banned)
    for cell, pattern in (pins or {}).items():
        if cell not in start:
            raise ValueError(f"pin at {cell} lies outside the {width}x{height} grid")
        start[cell] &= {pattern}
    if any(not options for options in start.values()):
        return None
    if not _propagate(start, deque(cells), compat, width, height, periodic):
        return None

    for attempt in range(max_attempts):
        rng = random.Random(seed * 1000 + attempt)
        wave = {c: set(options) for c, options in start.items()}
        ok = True
        while ok:
            undecided = [c for c in cells if len(wave[c]) > 1]
            if not undecided:
                break
            cell = min(undecided, key=lambda c: len(wave[c]))  # min keeps the first (row-major)
            wave[cell] = {_weighted_choice(sorted(wave[cell]), w, rng)}
            ok = _propagate(wave, deque([cell]), compat, width, height, periodic)
        if ok:
            grid = np.zeros((height, width), dtype=np.int32)
            for (x, y), options in wave.items():
                (grid[y, x],) = options
            return grid
    return None


def _weighted_choice(options: list[int], weights: list[float], rng: random.Random) -> int:
    """One of ``options`` (ascending), each with probability proportional to its weight."""
    total = sum(weights[t] for t in options)
    r = rng.random() * total
    for t in options:
        r -= weights[t]
        if r < 0:
            return t
    return options[-1]  # r landed on total because of rounding


def invalid_pairs(
    grid: npt.ArrayLike, allowed: npt.ArrayLike, periodic: bool
) -> list[tuple[int, int, int]]:
    """Every adjacent pair that breaks the rules, as ``(x, y, d)`` with ``d`` 1 (down) or 2 (right).

    A pair is valid when ``allowed[d][a][b]`` and ``allowed[opposite(d)][b][a]`` both hold (so a
    table that is not symmetric is still judged correctly), and both cells hold a pattern id;
    an undetermined (-1) or unknown id makes every pair it is part of a violation.
    """
    g: list[list[int]] = np.asarray(grid).tolist()
    table: list[list[list[bool]]] = np.asarray(allowed, dtype=bool).tolist()
    patterns = len(table[0])
    height = len(g)
    width = len(g[0]) if height else 0
    bad: list[tuple[int, int, int]] = []
    for y in range(height):
        for x in range(width):
            for d in (1, 2):
                n = _neighbour(x, y, d, width, height, periodic)
                if n is None:
                    continue
                a, b = g[y][x], g[n[1]][n[0]]
                known = 0 <= a < patterns and 0 <= b < patterns
                if not (known and table[d][a][b] and table[OPPOSITE[d]][b][a]):
                    bad.append((x, y, d))
    return bad


def is_valid_tiling(grid: npt.ArrayLike, allowed: npt.ArrayLike, periodic: bool) -> bool:
    """True when every cell holds a pattern and every adjacent pair is allowed."""
    table = np.asarray(allowed, dtype=bool)
    values: list[list[int]] = np.asarray(grid).tolist()
    complete = all(0 <= v < table.shape[1] for row in values for v in row)
    return complete and not invalid_pairs(grid, allowed, periodic)


def windows(image: npt.ArrayLike, N: int, periodic: bool) -> Iterator[Pattern]:
    """Every N×N window of ``image`` (wrapping if periodic), as tuples of rows, y outer."""
    img: list[list[int]] = np.asarray(image).tolist()
    height = len(img)
    width = len(img[0]) if height else 0
    nx, ny = (width, height) if periodic else (width - N + 1, height - N + 1)
    for y in range(ny):
        for x in range(nx):
            yield tuple(
                tuple(img[(y + j) % height][(x + i) % width] for i in range(N)) for j in range(N)
            )


def windows_are_patterns(
    image_indices: npt.ArrayLike, patterns: npt.ArrayLike, periodic: bool
) -> bool:
    """True when every N×N window of the output (wrapping if periodic) is one of ``patterns``."""
    pats = np.asarray(patterns)
    N = int(pats.shape[1])
    known = {tuple(tuple(row) for row in p) for p in pats.tolist()}
    return all(w in known for w in windows(image_indices, N, periodic))


def all_solutions_count(
    allowed: npt.ArrayLike,
    width: int,
    height: int,
    periodic: bool,
    limit: int,
    *,
    pins: dict[Cell, int] | None = None,
    bans: dict[Cell, set[int]] | None = None,
) -> int:
    """How many complete valid tilings exist (honouring pins and bans), up to ``limit``.

    Backtracking over cells in row-major order: a pattern is placed only if the cell may hold
    it and it agrees with every neighbour already placed (in both directions of the pair).
    Meant for tiny grids.
    """
    table: list[list[list[bool]]] = np.asarray(allowed, dtype=bool).tolist()
    patterns = len(table[0])
    cells = [(x, y) for y in range(height) for x in range(width)]
    grid: dict[Cell, int] = {}
    count = 0

    def fits(x: int, y: int, a: int) -> bool:
        for d in range(4):
            n = _neighbour(x, y, d, width, height, periodic)
            if n is None:
                continue
            b = a if n == (x, y) else grid.get(n)
            if b is not None and not (table[d][a][b] and table[OPPOSITE[d]][b][a]):
                return False
        return True

    def place(k: int) -> None:
        nonlocal count
        if count >= limit:
            return
        if k == len(cells):
            count += 1
            return
        x, y = cells[k]
        for a in range(patterns):
            pinned = (pins or {}).get((x, y), a)
            if a == pinned and a not in (bans or {}).get((x, y), set()) and fits(x, y, a):
                grid[(x, y)] = a
                place(k + 1)
                del grid[(x, y)]

    place(0)
    return count


def agrees(p1: Pattern, p2: Pattern, dx: int, dy: int) -> bool:
    """True when ``p2`` shifted by ``(dx, dy)`` matches ``p1`` wherever the two overlap."""
    N = len(p1)
    for y in range(N):
        for x in range(N):
            if 0 <= x - dx < N and 0 <= y - dy < N and p1[y][x] != p2[y - dy][x - dx]:
                return False
    return True


def naive_patterns(
    sample: npt.ArrayLike, N: int, symmetry: int, periodic_input: bool
) -> tuple[list[Pattern], list[int]]:
    """The classic pattern scan: patterns in first-appearance order and their counts."""

    def rotate(p: Pattern) -> Pattern:
        return tuple(tuple(p[x][N - 1 - y] for x in range(N)) for y in range(N))

    def reflect(p: Pattern) -> Pattern:
        return tuple(tuple(p[y][N - 1 - x] for x in range(N)) for y in range(N))

    index: dict[Pattern, int] = {}
    counts: list[int] = []
    for p0 in windows(sample, N, periodic_input):
        variants = [p0]
        for s in range(1, 8):
            variants.append(reflect(variants[s - 1]) if s % 2 else rotate(variants[s - 2]))
        for v in variants[:symmetry]:
            if v not in index:
                index[v] = len(counts)
                counts.append(0)
            counts[index[v]] += 1
    return list(index), counts


def naive_allowed(patterns: list[Pattern]) -> list[list[list[bool]]]:
    """``allowed[d][a][b] = agrees(a, b, DX[d], DY[d])`` by brute force."""
    return [[[agrees(a, b, DX[d], DY[d]) for b in patterns] for a in patterns] for d in range(4)]
