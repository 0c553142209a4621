"""The Wang-patch library: the base layer, complete by construction.

Built once per (rules, S, V, algorithm version) and cached on disk as ``.npz`` (never pickle):

1. a canonical *corner tile* per class: a tile of that class that may neighbour itself on all four
   sides, highest weight first (ties: lowest id);
2. a canonical *seam* per ordered class pair and orientation: between two classes a strip of
   ``S+1`` cells from one corner tile to the other, solved in the middle row of a
   ``(2*PAD+1)``-row grid (the padding rows make the strip extendable in 2-D), biased to plain
   self-adjacent tiles and keeping each corner tile for ``S/4`` cells at its end (the class changes
   mid-seam, so every patch has room for its transitions); within one class the corner tile all
   along (no structure that repeats on the lattice);
3. ``V`` variants of every allowed 4-corner combination, ``(S+1)x(S+1)`` with the ring pinned to the
   corners and seams. Combinations whose adjacent corners differ by more than one class level never
   occur (the macro clamp), so they are not built.

A combination that cannot be solved redraws its four seams (bounded rounds); if the library is still
incomplete the build raises :class:`InputError` naming the combination. Since every variant of every
combination shares the same ring vocabulary, any arrangement whose corner classes agree is valid.

**Samples** (``WorldModel.prefer_plain`` false; one class) build a *hashed* library instead:

* one corner pattern (the sample's most frequent) and up to ``MAX_CORNER_COLOURS`` "corner
  colours" that share it: each lattice vertex takes a colour from ``mix(seed, CORNER, i, j)``, so
  every 4-corner combination occurs and all are built, and the seams of the colour pairs act as
  randomly chosen edge colours;
* seams and patch interiors follow the sample's own weights (no plain bias). A plain-biased single
  corner gives a city of nothing but park (streets are unbounded lines that cannot start inside a
  plain block); one natural seam per orientation gives a perfectly periodic street grid. Hashed
  corner colours make the base layer non-periodic;
* every seam solved as a strip shares its first and last :func:`seam_stub` cells after the corner
  with the reference seam of its orientation, so near every lattice vertex a patch meets the
  corners of the reference patch, which closes; seams differ in their middles. (Without this, two
  seams of a ``town`` met at a corner in a way no patch could close, and its library fell to one
  corner colour: a base layer periodic on the lattice that two refinement layers did not hide);
* when both reference seams come out as the corner pattern all along although plain solves show
  that pattern rarely (a city's park interior: 1 % of a plain city), the corner becomes the area
  pattern plain solves show most (:func:`hashed_corner`) and seams are cut from those solves
  (:func:`cut_seams`), so the base layer is not one area no refinement can leave;
* if a combination still cannot be completed, the corner colour with the highest index in it is
  dropped and the library rebuilt; with one corner left the build fails as above.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from worldgen.engine.rng import mix
from worldgen.engine.rules import RuleTable, forbidden_pairs, from_bitsets
from worldgen.engine.solver import (
    OUTPUT_VERSION,
    CompiledRules,
    Constraints,
    SolverBudget,
    compile_rules,
    solve,
)
from worldgen.engine.tileset import Tileset
from worldgen.errors import InputError
from worldgen.world.ground import ground_column
from worldgen.world.model import WorldModel, as_world_model

ALGORITHM_VERSION = 6
"""Bumped whenever tile bytes change. 2: far-zoom tiles (z <= -3) use the fast PNG encoding.
3: tileset seams keep their corner tiles for S/4 cells at each end (class changes mid-seam),
climate tags in the library version, terrain biomes. 4: a hashed (sample) library cuts its
seams from plain periodic solves (no all-park city). 5: a third refinement layer is offset by
S/4 (it repeated layer 1's S/2); the default block size is 32. 6: a hashed library's seams share
the reference seams' ends (:func:`seam_stub`); one-class models' calibration converges
(``calibrate.CALIBRATION_VERSION`` 2)."""
MAX_CORNER_COLOURS = 3
"""Corner patterns of a hashed (sample) library: 3**4 = 81 combinations."""
PAD = 2
ROUNDS = 8
HASHED_ROUNDS = 5
"""A hashed library's failures are structural (seams that cannot meet): fewer rounds, then one
corner colour fewer."""
LIBRARY_SEED = 0x5EED_11B
SEAM_PLANE = 64
"""Side of the plain periodic solves a hashed library cuts its seams from (at least 4 S)."""
SEAM_PLANES = 2
"""Plain periodic solves a hashed library measures its corner by (and may cut seams from)."""
RARE_CORNER = 0.05
"""A hashed library whose most frequent pattern covers less than this share of plain solves
takes its corner and seams from those solves (:func:`cut_seams`)."""
PLAIN_BIAS = 6.0
CLASS_BIAS = 4.0
_PURPOSE_SEAM = 0x5EA3
_PURPOSE_PATCH = 0x9A7C
_PURPOSE_PROBE = 0x9B0B
_PURPOSE_PLANE = 0x91A7

I32Array = npt.NDArray[np.int32]
ModelSource = WorldModel | Tileset
_BUDGET = SolverBudget(max_attempts=12, max_backtracks=400)
# hashed (sample) libraries: a patch that does not close at once rarely closes later (its seams
# disagree structurally), so fail fast and redraw instead
_HASHED_BUDGET = SolverBudget(max_attempts=3, max_backtracks=100)


def allowed_combinations(classes: int) -> list[tuple[int, int, int, int]]:
    """Corner classes ``(top-left, top-right, bottom-right, bottom-left)`` whose ring-adjacent
    corners differ by at most one level; lexicographic order."""
    out: list[tuple[int, int, int, int]] = []
    for a, b, c, d in itertools.product(range(classes), repeat=4):
        if abs(a - b) <= 1 and abs(b - c) <= 1 and abs(c - d) <= 1 and abs(d - a) <= 1:
            out.append((a, b, c, d))
    return out


def all_combinations(colours: int) -> list[tuple[int, int, int, int]]:
    """Every ``(top-left, top-right, bottom-right, bottom-left)`` corner combination, lexicographic
    (a hashed library, where vertices take corner colours independently)."""
    return [(a, b, c, d) for a, b, c, d in itertools.product(range(colours), repeat=4)]


def library_version(source: ModelSource, S: int, V: int) -> str:
    """Hex digest identifying the library: rules, weights, classes, S, V, the algorithm version
    and the solver's output version (``engine.solver.OUTPUT_VERSION``)."""
    model = as_world_model(source)
    h = hashlib.sha256()
    # the solver's output version too: the same inputs give other patches (and blocks) after an
    # engine change that alters solves, so neither libraries nor tiles may be served from before
    prefix = f"patches/{ALGORITHM_VERSION}/{OUTPUT_VERSION}/{S}/{V}/{PAD}/{ROUNDS}/{LIBRARY_SEED}"
    h.update(prefix.encode())
    h.update(np.ascontiguousarray(model.allowed, dtype=np.bool_).tobytes())
    h.update(np.ascontiguousarray(model.weights, dtype="<f8").tobytes())
    h.update("\x00".join(model.class_names).encode())
    h.update(model.variant_class.astype("<i4").tobytes())
    if model.variant_tags:  # climate tags change the world's bias, hence its content
        h.update("\x00".join("+".join(t) for t in model.variant_tags).encode())
    if not model.prefer_plain:
        h.update(f"/hashed-corners/{MAX_CORNER_COLOURS}/{HASHED_ROUNDS}".encode())
    if model.ground >= 0:
        h.update(f"/ground/{model.ground}".encode())
    return h.hexdigest()[:24]


@dataclass(frozen=True, eq=False)
class PatchLibrary:
    """A complete patch set. Invariants (checked by :func:`check_library`):

    * ``corners[k]`` is class k's corner tile; ``seams_h[a, b]`` (row, left a to right b) and
      ``seams_v[a, b]`` (column, top a to bottom b) start and end with those corner tiles;
    * ``patches[c, v]`` has top row ``seams_h[tl, tr]``, bottom row ``seams_h[bl, br]``, left column
      ``seams_v[tl, bl]``, right column ``seams_v[tr, br]`` for ``combos[c] = (tl, tr, br, bl)``;
    * ``combo_index[tl, tr, br, bl]`` is c, or -1 for combinations the clamp never produces;
    * ``hashed``: corner classes are corner colours chosen by a hash per lattice vertex (samples),
      ``combos`` is :func:`all_combinations`; otherwise macro classes, :func:`allowed_combinations`;
    * ``ground`` (samples with a ground, :mod:`.ground`): the ground column that *is* the base
      layer; the patch arrays then hold one all-sky patch and are not used.
    """

    version: str
    S: int
    V: int
    classes: int
    corners: I32Array  # (K,)
    seams_h: I32Array  # (K, K, S+1), -1 where the pair never meets
    seams_v: I32Array  # (K, K, S+1)
    combos: I32Array  # (C, 4)
    patches: I32Array  # (C, V, S+1, S+1)
    combo_index: I32Array  # (K, K, K, K)
    hashed: bool = False
    ground: I32Array | None = None  # a sample with a ground: its column (ground.py), else None

    @staticmethod
    def index_of(combos: I32Array, classes: int) -> I32Array:
        """The ``combo_index`` table for ``combos``."""
        table = np.full((classes,) * 4, -1, dtype=np.int32)
        for c, (a, b, d, e) in enumerate(combos.tolist()):
            table[a, b, d, e] = c
        return table


def _plain(allowed: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    diag = np.arange(allowed.shape[1])
    plain: npt.NDArray[np.bool_] = np.all(allowed[:, diag, diag], axis=0)
    return plain


def corner_tiles(source: ModelSource) -> I32Array:
    """One corner tile per class (see module docs); raise InputError when a class has none."""
    model = as_world_model(source)
    names, vclass = model.class_names, model.variant_class
    plain = _plain(model.allowed)
    out = np.zeros(len(names), dtype=np.int32)
    for k, name in enumerate(names):
        members = [t for t in range(model.size) if vclass[t] == k]
        cands = [t for t in members if plain[t]]
        if not cands:
            raise InputError(
                f"{model.noun} {model.name}: class {name!r} has no tile that may neighbour itself "
                "on all four sides; the world generator needs one per class as its corner tile"
            )
        out[k] = max(cands, key=lambda t: (float(model.weights[t]), -t))
    return out


def _seam(
    cr: CompiledRules,
    plain_row: npt.NDArray[np.float64],
    S: int,
    a: int,
    b: int,
    gen: int,
    o: int,
    salt: tuple[int, ...] = (),
    margin: int = 0,
    ends: I32Array | None = None,
) -> I32Array | None:
    """A seam row from corner tile ``a`` to ``b``. With ``margin`` > 0 its first and last
    ``margin + 1`` cells are the corner tiles themselves, so a class change happens mid-seam and
    leaves every patch room near its corners for the transitions of the other sides. ``ends``
    (S+1 cells, -1 = free) pins more of the row: a hashed library's shared seam ends."""
    h = 2 * PAD + 1
    pins = np.full((h, S + 1), -1, dtype=np.int32)
    pins[PAD, 0], pins[PAD, S] = a, b
    if margin > 0 and a != b:
        pins[PAD, : margin + 1] = a
        pins[PAD, S - margin :] = b
    if ends is not None:
        pins[PAD] = np.where(ends >= 0, ends, pins[PAD])
    profile = np.zeros((h, S + 1), dtype=np.int32)
    rows = plain_row[None, :]
    res = solve(
        cr, S + 1, h,
        seed=mix(LIBRARY_SEED, _PURPOSE_SEAM, o, a, b, gen, *salt),
        constraints=Constraints(pins=pins, bias=(rows, profile)),
        budget=_BUDGET,
    )  # fmt: skip
    # re-checked here: a solve that reports success is only trusted once its grid is verified
    if not res.solved or forbidden_pairs(res.grid, cr_allowed(cr)):
        return None
    row: I32Array = res.grid[PAD].copy()
    return row


class IncompleteLibraryError(InputError):
    """The library cannot be completed; ``combo`` is the failing corner combination
    ``(top-left, top-right, bottom-right, bottom-left)``."""

    def __init__(self, message: str, combo: tuple[int, int, int, int]) -> None:
        super().__init__(message)
        self.combo = combo

    def __reduce__(self) -> tuple[type[IncompleteLibraryError], tuple[str, tuple[int, ...]]]:
        # a pool process raises it: pickling must rebuild it with both arguments (the default
        # passes only the message, and the parent would see a crashed worker instead)
        return (type(self), (str(self), self.combo))


def build_library(source: ModelSource, S: int, V: int) -> PatchLibrary:
    """Build the complete library (see module docs); raise InputError if it cannot be completed."""
    if S < 4 or S % 2:
        raise InputError(f"block size S must be an even number >= 4, got {S}")
    if not 1 <= V <= 16:
        raise InputError(f"patch variants V must be in 1..16, got {V}")
    model = as_world_model(source)
    if model.ground >= 0:
        return _ground_library(model, S, V)
    if not model.prefer_plain:
        return _build_hashed(model, S, V)
    names, vclass = model.class_names, model.variant_class
    K = len(names)
    class_rows = np.ones((K, model.size), dtype=np.float64)
    for k in range(K):
        class_rows[k, vclass == k] = CLASS_BIAS
    plain_row = np.where(_plain(model.allowed), PLAIN_BIAS, 1.0)
    return _build(
        model, S, V, corner_tiles(model), allowed_combinations(K), names, class_rows, plain_row
    )


def _ground_library(model: WorldModel, S: int, V: int) -> PatchLibrary:
    """The library of a sample with a ground: its ground column (the base layer) and one all-sky
    patch that keeps the other fields meaningful."""
    column = ground_column(model)
    sky = int(column[0])
    combos = np.zeros((1, 4), dtype=np.int32)
    return PatchLibrary(
        version=library_version(model, S, V), S=S, V=V, classes=1,
        corners=np.array([sky], dtype=np.int32),
        seams_h=np.full((1, 1, S + 1), sky, dtype=np.int32),
        seams_v=np.full((1, 1, S + 1), sky, dtype=np.int32),
        combos=combos, patches=np.full((1, V, S + 1, S + 1), sky, dtype=np.int32),
        combo_index=PatchLibrary.index_of(combos, 1), hashed=True, ground=column,
    )  # fmt: skip


def _transposed(model: WorldModel) -> CompiledRules:
    # vertical seams are horizontal seams of the transposed rule table: left<->up, down<->right
    rules = model.rules()
    return compile_rules(RuleTable(allowed=rules.allowed[[3, 2, 1, 0]], weights=rules.weights))


def _planes(model: WorldModel, side: int) -> list[I32Array]:
    """Up to SEAM_PLANES plain periodic solves of the model (``side``², seeded by index)."""
    out: list[I32Array] = []
    for k in range(SEAM_PLANES):
        res = solve(
            model.compiled, side, side, periodic=True,
            seed=mix(LIBRARY_SEED, _PURPOSE_PLANE, k), budget=_BUDGET,
        )  # fmt: skip
        if res.solved and not forbidden_pairs(res.grid, model.allowed, True):
            out.append(res.grid)
    return out


def hashed_corner(model: WorldModel, planes: list[I32Array]) -> int:
    """The corner pattern of a hashed library: the pattern that plain solves show most often
    among those that may neighbour themselves on all four sides (an area, not a line), else the
    one they show most often, else the most frequent pattern of the sample. (A sample's most
    frequent pattern can be rare in its solves: a city's park interior covers 1 % of a plain
    city, and lattice vertices that are all park make a base layer of park.)"""
    if not planes:
        return int(np.argmax(model.weights))
    counts = np.zeros(model.size, dtype=np.int64)
    for g in planes:
        counts += np.bincount(g.reshape(-1), minlength=model.size)
    plain = _plain(model.allowed)
    if np.any(counts[plain] > 0):
        return int(np.argmax(np.where(plain, counts, -1)))
    return int(np.argmax(counts))


def cut_seams(planes: list[I32Array], S: int, corner: int) -> tuple[list[I32Array], list[I32Array]]:
    """Seam candidates of a hashed library, cut from plain periodic solves of the model: every row
    (horizontal) and column (vertical) segment of ``S+1`` cells that starts and ends with the
    corner pattern and is not the corner pattern all along, in a deterministic order (a row inside
    one large area would make a base layer of that area). A segment of a solved plane is
    extendable in 2-D and shows the sample's own mix and structure (streets cross it as often as
    they cross any line), which a strip solved on its own does not promise."""
    rows: list[I32Array] = []
    cols: list[I32Array] = []
    for g in planes:
        wrapped = np.concatenate([g, g[:, :S]], axis=1)  # rows that run across the wrap
        for y, x in zip(*np.nonzero(g == corner), strict=True):
            row = wrapped[y, x : x + S + 1]
            if row[-1] == corner and not np.all(row == corner):
                rows.append(row.copy())
        wrapped = np.concatenate([g, g[:S]], axis=0)
        for y, x in zip(*np.nonzero(g == corner), strict=True):
            col = wrapped[y : y + S + 1, x]
            if col[-1] == corner and not np.all(col == corner):
                cols.append(col.copy())
    return rows, cols


def _reference_seams(
    model: WorldModel,
    S: int,
    corner: int,
    flat: npt.NDArray[np.float64],
    draw: Callable[[int, tuple[int, int], int], I32Array | None],
) -> tuple[I32Array, I32Array]:
    """A horizontal and a vertical corner-to-corner seam whose patch (each side a copy of one of
    them) can be completed; every other seam of a hashed library must be able to stand in for
    them (see :func:`_build_hashed`). ``draw(o, pair, gen)`` gives candidates."""
    cr = model.compiled
    for gen in range(HASHED_ROUNDS * 4):
        h = draw(0, (0, 0), gen)
        v = draw(1, (0, 0), gen)
        if h is None or v is None:
            continue
        pins = np.full((S + 1, S + 1), -1, dtype=np.int32)
        pins[0, :] = pins[S, :] = h
        pins[:, 0] = pins[:, S] = v
        res = solve(
            cr, S + 1, S + 1, seed=mix(LIBRARY_SEED, _PURPOSE_PROBE, gen),
            constraints=Constraints(pins=pins), budget=_HASHED_BUDGET,
        )  # fmt: skip
        if res.solved and forbidden_pairs(res.grid, model.allowed) == 0:
            return h, v
    raise IncompleteLibraryError(
        f"{model.noun} {model.name}: the patch library is incomplete; corner classes "
        "(top-left/top-right/bottom-right/bottom-left) all/all/all/all cannot be completed "
        f"(no {S + 1}x{S + 1} patch closes around its most frequent pattern); try another S",
        (0, 0, 0, 0),
    )


def seam_stub(S: int) -> int:
    """Cells after the corner at each end of a hashed library's seam that every seam shares:
    3/16 of S, 6 at S = 32 (measured on ``town``: 6 keeps 2 corner colours and a period like a
    plain solve's; 8 and 12 kept 3 colours, but its period rose to 0.092-0.094 against the plain
    solve's 0.066, with the calibration of version 1)."""
    return S * 3 // 16


def _build_hashed(model: WorldModel, S: int, V: int) -> PatchLibrary:
    """The hashed library of a one-class model (see module docs)."""
    corner = int(np.argmax(model.weights))  # the most frequent pattern; ties: lowest id
    flat = np.ones(model.size, dtype=np.float64)
    cr, cr_t = model.compiled, _transposed(model)
    cut: tuple[list[I32Array], list[I32Array]] = ([], [])
    ends: list[I32Array | None] = [None, None]

    def draw(o: int, pair: tuple[int, int], gen: int) -> I32Array | None:
        # a cut candidate (salted by the colour pair) once there are any, else a strip solved on
        # its own with the reference seam's ends (late binding: corner, cut and ends may change
        # below)
        pool = cut[o]
        if pool:
            return pool[mix(LIBRARY_SEED, _PURPOSE_SEAM, o, *pair, gen) % len(pool)]
        return _seam(cr if o == 0 else cr_t, flat, S, corner, corner, gen, o, pair, ends=ends[o])

    reference = _reference_seams(model, S, corner, flat, draw)
    if all(np.all(r == corner) for r in reference):
        # both reference seams are the corner pattern all along: if plain solves show that
        # pattern rarely (a city's park interior), the base layer would be one area no refinement
        # can leave; take the corner plain solves show and seams cut from them instead
        planes = _planes(model, max(SEAM_PLANE, 4 * S))
        shown = sum(float(np.mean(g == corner)) for g in planes) / max(1, len(planes))
        if planes and shown < RARE_CORNER:
            corner = hashed_corner(model, planes)
            cut = cut_seams(planes, S, corner)
            reference = _reference_seams(model, S, corner, flat, draw)
    # every other seam starts and ends as the reference seam does: near a lattice vertex every
    # patch then meets the reference patch's corners (which close), and seams only differ in
    # their middles, where two sides are far apart (at S = 32 town keeps 2 corner colours
    # instead of 1, islands 3 instead of 1, corridors, city, dungeon, maze and rivers 3, not 2)
    stub = seam_stub(S)
    for o in (0, 1):
        shared = reference[o].copy()
        shared[stub + 1 : S - stub] = -1
        ends[o] = shared

    def interchangeable(o: int, row: I32Array) -> bool:
        # the reference patch (every side a reference seam) with this seam on its top (left) side
        pins = np.full((S + 1, S + 1), -1, dtype=np.int32)
        pins[0, :] = pins[S, :] = reference[0]
        pins[:, 0] = pins[:, S] = reference[1]
        if o == 0:
            pins[0, :] = row
        else:
            pins[:, 0] = row
        res = solve(
            cr, S + 1, S + 1, seed=mix(LIBRARY_SEED, _PURPOSE_PROBE, o),
            constraints=Constraints(pins=pins), budget=_HASHED_BUDGET,
        )  # fmt: skip
        return res.solved and forbidden_pairs(res.grid, model.allowed) == 0

    colours = MAX_CORNER_COLOURS
    while True:
        names = ("all",) if colours == 1 else tuple(f"all#{k}" for k in range(colours))
        rows = np.ones((colours, model.size), dtype=np.float64)
        try:
            return _build(
                model, S, V, np.full(colours, corner, dtype=np.int32), all_combinations(colours),
                names, rows, flat, hashed=True, accept=interchangeable, first=reference,
                source=draw,
            )  # fmt: skip
        except IncompleteLibraryError:
            if colours == 1:
                raise
            colours -= 1


def _build(
    model: WorldModel,
    S: int,
    V: int,
    corners: I32Array,
    combos: list[tuple[int, int, int, int]],
    names: tuple[str, ...],
    class_rows: npt.NDArray[np.float64],
    plain_row: npt.NDArray[np.float64],
    *,
    hashed: bool = False,
    accept: Callable[[int, I32Array], bool] | None = None,
    first: tuple[I32Array, I32Array] | None = None,
    source: Callable[[int, tuple[int, int], int], I32Array | None] | None = None,
) -> PatchLibrary:
    """Seams for every pair, then V patches per combination, redrawing seams of failures.

    ``accept(o, row)`` vets every drawn seam (orientation 0 = horizontal); ``first`` gives the
    horizontal and vertical seams of pair (0, 0) instead of drawing them; ``source(o, pair, gen)``
    draws a seam instead of :func:`_seam` (a hashed library's cut candidates).
    """
    K = len(names)
    rounds = HASHED_ROUNDS if hashed else ROUNDS
    cr, cr_t = model.compiled, _transposed(model)
    pairs = sorted({(c[0], c[1]) for c in combos} | {(c[1], c[0]) for c in combos})
    gen_h = dict.fromkeys(pairs, 0)
    gen_v = dict.fromkeys(pairs, 0)
    seams_h = np.full((K, K, S + 1), -1, dtype=np.int32)
    seams_v = np.full((K, K, S + 1), -1, dtype=np.int32)

    def draw(o: int, pair: tuple[int, int]) -> None:
        gens = gen_h if o == 0 else gen_v
        target = seams_h if o == 0 else seams_v
        if not hashed and pair[0] == pair[1]:
            # a seam inside one class is its (self-adjacent) corner tile all along: the base then
            # carries no structure that repeats on the lattice, and any patch can close around it
            target[pair] = corners[pair[0]]
            return
        for extra in range(rounds * 4):
            # a hashed library's corner colours share one corner tile: salt by colour pair
            if source is not None:
                row = source(o, pair, gens[pair] + extra)
            else:
                row = _seam(cr if o == 0 else cr_t, plain_row, S, int(corners[pair[0]]),
                            int(corners[pair[1]]), gens[pair] + extra, o,
                            pair if hashed else (), 0 if hashed else S // 4)  # fmt: skip
            if row is not None and (accept is None or accept(o, row)):
                gens[pair] += extra
                target[pair] = row
                return
        raise IncompleteLibraryError(
            f"{model.noun} {model.name}: no seam joins class {names[pair[0]]!r} to "
            f"{names[pair[1]]!r} in {S + 1} cells; try a larger S",
            (pair[0], pair[1], pair[1], pair[0]),
        )

    for p in pairs:
        if first is not None and p == (0, 0):
            seams_h[p], seams_v[p] = first
            continue
        draw(0, p)
        draw(1, p)

    # quadrant of each cell: the class of the nearest corner biases the interior
    yy, xx = np.mgrid[0 : S + 1, 0 : S + 1]
    quadrant = (yy > S // 2).astype(np.int32) * 2 + (xx > S // 2).astype(np.int32)
    q_to_corner = np.array([0, 1, 3, 2])  # tl, tr, bl, br -> index in (tl, tr, br, bl)
    patches = np.full((len(combos), V, S + 1, S + 1), -1, dtype=np.int32)
    # solved[c]: leading variants of combination c solved under its current seams. A hashed
    # library first closes one variant of every combination (cheap to find seams that disagree),
    # then the rest; a tileset library solves all V at once (its established build order).
    solved = np.zeros(len(combos), dtype=np.int64)
    targets = (1, V) if hashed and V > 1 else (V,)
    failing: tuple[int, int, int, int] | None = None
    complete = False
    for rnd in range(rounds):
        failed: list[int] = []
        for target in targets:
            for c, (tl, tr, br, bl) in enumerate(combos):
                if solved[c] >= target:
                    continue
                pins = np.full((S + 1, S + 1), -1, dtype=np.int32)
                pins[0, :] = seams_h[tl, tr]
                pins[S, :] = seams_h[bl, br]
                pins[:, 0] = seams_v[tl, bl]
                pins[:, S] = seams_v[tr, br]
                corner_cls = np.array([tl, tr, br, bl])[q_to_corner[quadrant]].astype(np.int32)
                for v in range(int(solved[c]), target):
                    res = solve(
                        cr, S + 1, S + 1,
                        seed=mix(LIBRARY_SEED, _PURPOSE_PATCH, tl, tr, br, bl, v, rnd),
                        constraints=Constraints(pins=pins, bias=(class_rows, corner_cls)),
                        budget=_HASHED_BUDGET if hashed else _BUDGET,
                    )  # fmt: skip
                    if not res.solved or forbidden_pairs(res.grid, model.allowed):
                        failed.append(c)
                        break
                    patches[c, v] = res.grid
                    solved[c] = v + 1
            if failed:
                break
        if not failed:
            complete = True
            break
        failing = combos[failed[0]]
        redraw_h: set[tuple[int, int]] = set()
        redraw_v: set[tuple[int, int]] = set()
        for c in failed:
            tl, tr, br, bl = combos[c]
            redraw_h |= {(tl, tr), (bl, br)}
            redraw_v |= {(tl, bl), (tr, br)}
        for p in sorted(redraw_h):
            gen_h[p] += 1
            draw(0, p)
        for p in sorted(redraw_v):
            gen_v[p] += 1
            draw(1, p)
        # combinations sharing a redrawn seam must be solved again
        for c, (tl, tr, br, bl) in enumerate(combos):
            if {(tl, tr), (bl, br)} & redraw_h or {(tl, bl), (tr, br)} & redraw_v:
                solved[c] = 0
    if not complete:
        assert failing is not None  # noqa: S101  set whenever a combination failed
        label = "/".join(names[k] for k in failing)
        raise IncompleteLibraryError(
            f"{model.noun} {model.name}: the patch library is incomplete after {rounds} rounds; "
            f"corner classes (top-left/top-right/bottom-right/bottom-left) {label} cannot be "
            "completed; try a larger S or add transition tiles",
            failing,
        )
    combos_arr = np.array(combos, dtype=np.int32).reshape(-1, 4)
    return PatchLibrary(
        version=library_version(model, S, V), S=S, V=V, classes=K, corners=corners,
        seams_h=seams_h, seams_v=seams_v, combos=combos_arr, patches=patches,
        combo_index=PatchLibrary.index_of(combos_arr, K), hashed=hashed,
    )  # fmt: skip


def check_library(lib: PatchLibrary, allowed: npt.NDArray[np.bool_]) -> list[str]:
    """Every broken invariant of ``lib`` under the adjacency table ``allowed``; empty when sound."""
    problems: list[str] = []
    S = lib.S
    expected = (all_combinations if lib.hashed else allowed_combinations)(lib.classes)
    if [tuple(c) for c in lib.combos.tolist()] != expected:
        problems.append("combination list differs from the expected combinations")
    for c, (tl, tr, br, bl) in enumerate(lib.combos.tolist()):
        for v in range(lib.V):
            p = lib.patches[c, v]
            if p.min() < 0:
                problems.append(f"combo {c} variant {v} has undecided cells")
                continue
            ring_ok = (
                np.array_equal(p[0], lib.seams_h[tl, tr])
                and np.array_equal(p[S], lib.seams_h[bl, br])
                and np.array_equal(p[:, 0], lib.seams_v[tl, bl])
                and np.array_equal(p[:, S], lib.seams_v[tr, br])
                and p[0, 0] == lib.corners[tl]
                and p[S, S] == lib.corners[br]
            )
            if not ring_ok:
                problems.append(f"combo {c} variant {v}: ring differs from corners/seams")
            if forbidden_pairs(p, allowed):
                problems.append(f"combo {c} variant {v}: adjacency violated inside the patch")
    return problems


def cr_allowed(cr: CompiledRules) -> npt.NDArray[np.bool_]:
    """The boolean adjacency table ``(4, T, T)`` packed in ``cr``."""
    return from_bitsets(cr.compat, cr.patterns)


def cache_dir() -> Path:
    """``$WORLDGEN_CACHE_DIR`` or ``~/.cache/worldgen``, plus ``patches/``."""
    root = os.environ.get("WORLDGEN_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "worldgen"
    return base / "patches"


CACHE_READ_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)
"""What reading a missing or damaged ``.npz`` cache file raises (``np.load`` of an empty file:
EOFError; of a truncated one or with a flipped byte: BadZipFile); every cache reader treats them
as "not cached" and builds again."""


@contextlib.contextmanager
def read_npz(path: Path) -> Iterator[Any]:
    """``np.load`` of a cache file (no pickles), closed whatever happens: given a path, numpy
    leaves its own handle open when the zip is damaged (a ResourceWarning per failed read)."""
    with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as data:
        yield data


def write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write a cache file whole or not at all: ``write`` fills a temporary file in ``path``'s
    folder (made if missing), which then replaces ``path`` (a rename: readers in other processes
    see the old file or the new one, never half of one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


_FIELDS = ("corners", "seams_h", "seams_v", "combos", "patches")


def load_or_build(
    source: ModelSource, S: int, V: int, directory: Path | None = None
) -> PatchLibrary:
    """The cached library for ``(model, S, V)``, building and caching it on a miss.

    A cached file that is unreadable or inconsistent is rebuilt; writes are atomic (rename).
    """
    model = as_world_model(source)
    version = library_version(model, S, V)
    folder = directory if directory is not None else cache_dir()
    path = folder / f"{version}.npz"
    hashed = not model.prefer_plain
    if path.is_file():
        try:
            with read_npz(path) as data:
                arrays = {k: np.asarray(data[k], dtype=np.int32) for k in _FIELDS}
                stored = str(data["version"])
                ground = np.asarray(data["ground"], np.int32) if "ground" in data.files else None
            combos = arrays["combos"]
            classes = int(arrays["corners"].shape[0])
            expected = (all_combinations if hashed else allowed_combinations)(classes)
            lib = PatchLibrary(
                version=stored, S=S, V=V, classes=classes,
                combo_index=PatchLibrary.index_of(combos, classes), hashed=hashed, ground=ground,
                **arrays,
            )  # fmt: skip
            if (
                stored == version
                and (ground is not None) == (model.ground >= 0)
                and lib.patches.shape[1:] == (V, S + 1, S + 1)
                and [tuple(c) for c in combos.tolist()] == expected
            ):
                return lib
        except (*CACHE_READ_ERRORS, IndexError):
            pass
    lib = build_library(model, S, V)
    fields: dict[str, Any] = {k: getattr(lib, k) for k in _FIELDS}
    if lib.ground is not None:
        fields["ground"] = lib.ground
    write_atomic(path, lambda fh: np.savez(fh, version=np.array(version), **fields))
    return lib
