"""The Wang-patch library: the base layer, complete by construction.

Built once per (rules, S, V, algorithm version) and cached on disk as ``.npz`` (never pickle):

1. a canonical *corner tile* per class: a tile of that class that may neighbour itself on all four
   sides, highest weight first (ties: lowest id);
2. a canonical *seam* per ordered class pair and orientation: a strip of ``S+1`` cells from one
   corner tile to the other, solved in the middle row of a ``(2*PAD+1)``-row grid (the padding rows
   make the strip extendable in 2-D) and biased to plain self-adjacent tiles;
3. ``V`` variants of every allowed 4-corner combination, ``(S+1)x(S+1)`` with the ring pinned to the
   corners and seams. Combinations whose adjacent corners differ by more than one class level never
   occur (the macro clamp), so they are not built.

A combination that cannot be solved redraws its four seams (bounded rounds); if the library is still
incomplete the build raises :class:`InputError` naming the combination. Since every variant of every
combination shares the same ring vocabulary, any arrangement whose corner classes agree is valid.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from worldgen.engine.rng import mix
from worldgen.engine.rules import RuleTable, forbidden_pairs, from_bitsets
from worldgen.engine.solver import CompiledRules, Constraints, SolverBudget, compile_rules, solve
from worldgen.engine.tileset import Tileset
from worldgen.errors import InputError

ALGORITHM_VERSION = 1
PAD = 2
ROUNDS = 8
LIBRARY_SEED = 0x5EED_11B
PLAIN_BIAS = 6.0
CLASS_BIAS = 4.0
_PURPOSE_SEAM = 0x5EA3
_PURPOSE_PATCH = 0x9A7C

I32Array = npt.NDArray[np.int32]
_BUDGET = SolverBudget(max_attempts=12, max_backtracks=400)


def variant_classes(tileset: Tileset) -> tuple[tuple[str, ...], I32Array]:
    """Class names in tileset order and each variant's class index (-1: no class).

    A tileset without classes is one class, named ``"all"``.
    """
    names = tileset.class_names()
    if not names:
        return ("all",), np.zeros(tileset.size, dtype=np.int32)
    index = {n: k for k, n in enumerate(names)}
    return names, np.array([index[c] if c is not None else -1 for c in tileset.classes], np.int32)


def allowed_combinations(classes: int) -> list[tuple[int, int, int, int]]:
    """Corner classes ``(top-left, top-right, bottom-right, bottom-left)`` whose ring-adjacent
    corners differ by at most one level; lexicographic order."""
    out: list[tuple[int, int, int, int]] = []
    for a, b, c, d in itertools.product(range(classes), repeat=4):
        if abs(a - b) <= 1 and abs(b - c) <= 1 and abs(c - d) <= 1 and abs(d - a) <= 1:
            out.append((a, b, c, d))
    return out


def library_version(tileset: Tileset, S: int, V: int) -> str:
    """Hex digest identifying the library: rules, weights, classes, S, V, algorithm version."""
    names, vclass = variant_classes(tileset)
    h = hashlib.sha256()
    h.update(f"patches/{ALGORITHM_VERSION}/{S}/{V}/{PAD}/{ROUNDS}/{LIBRARY_SEED}".encode())
    h.update(np.ascontiguousarray(tileset.allowed, dtype=np.bool_).tobytes())
    h.update(np.ascontiguousarray(tileset.weights, dtype="<f8").tobytes())
    h.update("\x00".join(names).encode())
    h.update(vclass.astype("<i4").tobytes())
    return h.hexdigest()[:24]


@dataclass(frozen=True, eq=False)
class PatchLibrary:
    """A complete patch set. Invariants (checked by :func:`check_library`):

    * ``corners[k]`` is class k's corner tile; ``seams_h[a, b]`` (row, left a to right b) and
      ``seams_v[a, b]`` (column, top a to bottom b) start and end with those corner tiles;
    * ``patches[c, v]`` has top row ``seams_h[tl, tr]``, bottom row ``seams_h[bl, br]``, left column
      ``seams_v[tl, bl]``, right column ``seams_v[tr, br]`` for ``combos[c] = (tl, tr, br, bl)``;
    * ``combo_index[tl, tr, br, bl]`` is c, or -1 for combinations the clamp never produces.
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


def corner_tiles(tileset: Tileset) -> I32Array:
    """One corner tile per class (see module docs); raise InputError when a class has none."""
    names, vclass = variant_classes(tileset)
    plain = _plain(tileset.allowed)
    out = np.zeros(len(names), dtype=np.int32)
    for k, name in enumerate(names):
        cands = [t for t in range(tileset.size) if vclass[t] == k and plain[t]]
        if not cands:
            raise InputError(
                f"tileset {tileset.name}: class {name!r} has no tile that may neighbour itself on "
                "all four sides; the world generator needs one per class as its corner tile"
            )
        out[k] = max(cands, key=lambda t: (float(tileset.weights[t]), -t))
    return out


def _seam(
    cr: CompiledRules, plain_row: npt.NDArray[np.float64], S: int, a: int, b: int, gen: int, o: int
) -> I32Array | None:
    h = 2 * PAD + 1
    pins = np.full((h, S + 1), -1, dtype=np.int32)
    pins[PAD, 0], pins[PAD, S] = a, b
    zero_profile = np.zeros((h, S + 1), dtype=np.int32)
    res = solve(
        cr, S + 1, h,
        seed=mix(LIBRARY_SEED, _PURPOSE_SEAM, o, a, b, gen),
        constraints=Constraints(pins=pins, bias=(plain_row[None, :], zero_profile)),
        budget=_BUDGET,
    )  # fmt: skip
    # re-checked here: a solve that reports success is only trusted once its grid is verified
    if not res.solved or forbidden_pairs(res.grid, cr_allowed(cr)):
        return None
    row: I32Array = res.grid[PAD].copy()
    return row


def build_library(tileset: Tileset, S: int, V: int) -> PatchLibrary:
    """Build the complete library (see module docs); raise InputError if it cannot be completed."""
    if S < 4 or S % 2:
        raise InputError(f"block size S must be an even number >= 4, got {S}")
    if not 1 <= V <= 16:
        raise InputError(f"patch variants V must be in 1..16, got {V}")
    names, vclass = variant_classes(tileset)
    K = len(names)
    corners = corner_tiles(tileset)
    rules = tileset.rules()
    cr = compile_rules(rules)
    # vertical seams are horizontal seams of the transposed rule table: left<->up, down<->right
    allowed_t = rules.allowed[[3, 2, 1, 0]]
    cr_t = compile_rules(RuleTable(allowed=allowed_t, weights=rules.weights))
    plain_row = np.where(_plain(tileset.allowed), PLAIN_BIAS, 1.0)
    class_rows = np.ones((K, tileset.size), dtype=np.float64)
    for k in range(K):
        class_rows[k, vclass == k] = CLASS_BIAS

    combos = allowed_combinations(K)
    pairs = sorted({(c[0], c[1]) for c in combos} | {(c[1], c[0]) for c in combos})
    gen_h = dict.fromkeys(pairs, 0)
    gen_v = dict.fromkeys(pairs, 0)
    seams_h = np.full((K, K, S + 1), -1, dtype=np.int32)
    seams_v = np.full((K, K, S + 1), -1, dtype=np.int32)

    def draw(o: int, pair: tuple[int, int]) -> None:
        gens = gen_h if o == 0 else gen_v
        target = seams_h if o == 0 else seams_v
        for extra in range(ROUNDS * 4):
            row = _seam(cr if o == 0 else cr_t, plain_row, S, int(corners[pair[0]]),
                        int(corners[pair[1]]), gens[pair] + extra, o)  # fmt: skip
            if row is not None:
                gens[pair] += extra
                target[pair] = row
                return
        raise InputError(
            f"tileset {tileset.name}: no seam joins class {names[pair[0]]!r} to "
            f"{names[pair[1]]!r} in {S + 1} cells; try a larger S"
        )

    for p in pairs:
        draw(0, p)
        draw(1, p)

    # quadrant of each cell: the class of the nearest corner biases the interior
    yy, xx = np.mgrid[0 : S + 1, 0 : S + 1]
    quadrant = (yy > S // 2).astype(np.int32) * 2 + (xx > S // 2).astype(np.int32)
    q_to_corner = np.array([0, 1, 3, 2])  # tl, tr, bl, br -> index in (tl, tr, br, bl)
    patches = np.full((len(combos), V, S + 1, S + 1), -1, dtype=np.int32)
    done = np.zeros(len(combos), dtype=np.bool_)
    failing: tuple[int, int, int, int] | None = None
    for rnd in range(ROUNDS):
        failed: list[int] = []
        for c, (tl, tr, br, bl) in enumerate(combos):
            if done[c]:
                continue
            pins = np.full((S + 1, S + 1), -1, dtype=np.int32)
            pins[0, :] = seams_h[tl, tr]
            pins[S, :] = seams_h[bl, br]
            pins[:, 0] = seams_v[tl, bl]
            pins[:, S] = seams_v[tr, br]
            corner_cls = np.array([tl, tr, br, bl])[q_to_corner[quadrant]].astype(np.int32)
            ok = True
            for v in range(V):
                res = solve(
                    cr, S + 1, S + 1,
                    seed=mix(LIBRARY_SEED, _PURPOSE_PATCH, tl, tr, br, bl, v, rnd),
                    constraints=Constraints(pins=pins, bias=(class_rows, corner_cls)),
                    budget=_BUDGET,
                )  # fmt: skip
                if not res.solved or forbidden_pairs(res.grid, tileset.allowed):
                    ok = False
                    break
                patches[c, v] = res.grid
            if ok:
                done[c] = True
            else:
                failed.append(c)
        if not failed:
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
                done[c] = False
    if not done.all():
        assert failing is not None
        label = "/".join(names[k] for k in failing)
        raise InputError(
            f"tileset {tileset.name}: the patch library is incomplete after {ROUNDS} rounds; "
            f"corner classes (top-left/top-right/bottom-right/bottom-left) {label} cannot be "
            "completed; try a larger S or add transition tiles"
        )
    combos_arr = np.array(combos, dtype=np.int32).reshape(-1, 4)
    return PatchLibrary(
        version=library_version(tileset, S, V), S=S, V=V, classes=K, corners=corners,
        seams_h=seams_h, seams_v=seams_v, combos=combos_arr, patches=patches,
        combo_index=PatchLibrary.index_of(combos_arr, K),
    )  # fmt: skip


def check_library(lib: PatchLibrary, allowed: npt.NDArray[np.bool_]) -> list[str]:
    """Every broken invariant of ``lib`` under the adjacency table ``allowed``; empty when sound."""
    problems: list[str] = []
    S = lib.S
    expected = allowed_combinations(lib.classes)
    if [tuple(c) for c in lib.combos.tolist()] != expected:
        problems.append("combination list differs from allowed_combinations")
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


_FIELDS = ("corners", "seams_h", "seams_v", "combos", "patches")


def load_or_build(tileset: Tileset, S: int, V: int, directory: Path | None = None) -> PatchLibrary:
    """The cached library for ``(tileset, S, V)``, building and caching it on a miss.

    A cached file that is unreadable or inconsistent is rebuilt; writes are atomic (rename).
    """
    version = library_version(tileset, S, V)
    folder = directory if directory is not None else cache_dir()
    path = folder / f"{version}.npz"
    names, _ = variant_classes(tileset)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: np.asarray(data[k], dtype=np.int32) for k in _FIELDS}
                stored = str(data["version"])
            combos = arrays["combos"]
            lib = PatchLibrary(
                version=stored, S=S, V=V, classes=len(names),
                combo_index=PatchLibrary.index_of(combos, len(names)), **arrays,
            )  # fmt: skip
            if stored == version and lib.patches.shape[1:] == (V, S + 1, S + 1):
                return lib
        except (OSError, ValueError, KeyError, IndexError):
            pass
    lib = build_library(tileset, S, V)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, version=np.array(version), **{k: getattr(lib, k) for k in _FIELDS})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return lib
