"""The infinite world: Wang-patch base layer plus offset WFC refinement layers.

Layer 0 (base) is a look-up: cell ``(x, y)`` lies in lattice cell ``(i, j) = (x // S, y // S)`` and
takes ``patches[combo of the 4 corner classes][mix(seed, PATCH, i, j) % V][y - j*S, x - i*S]``.
Layer L >= 1 is made of S x S blocks; block ``(bi, bj)`` covers ``[bi*S + o, bi*S + o + S)`` on
both axes, ``o`` = :func:`~worldgen.world.plan.offset` (S/2, 0, S/4 for layers 1, 2, 3). A
block pins its own one-cell border ring to layer L-1, re-solves the interior with the macro bias
as weights and RNG ``mix(seed, BLOCK, L, bi, bj)``, and keeps layer L-1's content on failure
(counted in :attr:`World.fallbacks`). Rings of adjacent blocks are adjacent cells of the valid
layer L-1, so every layer is valid everywhere.

A block reads exactly :meth:`World.dependencies` (constant size), so :meth:`World.region` is a pure
function of ``(model rules, S, V, layers, seed, window)``; the LRU only memoises. The model is a
:class:`~worldgen.world.model.WorldModel`: a tileset's oriented tiles or a sample's patterns.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Literal

import numpy as np
import numpy.typing as npt

from worldgen.engine.rng import mix
from worldgen.engine.rules import forbidden_pairs
from worldgen.engine.solver import Constraints, SolverBudget, solve
from worldgen.engine.tileset import Tileset
from worldgen.errors import InputError
from worldgen.world import macro, plan
from worldgen.world.bias import Bias, bias_for
from worldgen.world.calibrate import WINDOW_SIDE, calibration_for
from worldgen.world.districts import district_rows
from worldgen.world.ground import ground_constraints, ground_region
from worldgen.world.hashing import mix_array
from worldgen.world.model import WorldModel, as_world_model
from worldgen.world.patches import PatchLibrary, load_or_build
from worldgen.world.plan import BlockKey
from worldgen.world.spec import MAX_LAYERS, TILE_VERSION, WorldSpec

PURPOSE_PATCH_CHOICE = 0x50415443
PURPOSE_BLOCK = 0x424C4F43
PURPOSE_ORDER = 0x4F524452
PURPOSE_CORNER = 0x434F524E
MAX_COORD = 2**53
"""Largest |coordinate| accepted; keeps every intermediate inside int64."""

I32Array = npt.NDArray[np.int32]
Order = Literal["rowmajor", "reverse", "shuffle"]
ORDERS: tuple[Order, ...] = ("rowmajor", "reverse", "shuffle")


def _check_window(x: int, y: int, w: int, h: int) -> None:
    if w < 1 or h < 1:
        raise InputError(f"window size must be at least 1x1, got {w}x{h}")
    for name, v in (("x", x), ("y", y), ("x + width", x + w), ("y + height", y + h)):
        if abs(v) > MAX_COORD:
            raise InputError(f"{name} = {v} is outside the world (|coordinate| <= 2**53)")


class World:
    """An infinite, deterministic world over a :class:`WorldModel` (a Tileset is converted).

    ``budget`` bounds each refinement solve; ``cache_blocks`` bounds the block LRU. Set ``trace`` to
    a list to record ``(reader, read)`` block-key pairs (dependency-locality tests). ``config`` is
    the spec the world was built from (:func:`worldgen.world.api.build_world` sets it; a worker
    process names the world by it, :mod:`worldgen.world.pool`). ``multipliers`` (T,) weigh the
    variants of every refinement solve; None takes the model's calibration
    (:mod:`~worldgen.world.calibrate`, learnt once per library and layer count). ``districts``
    False leaves a one-class model's weights neutral everywhere (:mod:`~worldgen.world.districts`;
    the calibration learns that way). Not thread-safe: the LRU and counters are plain Python state.
    """

    def __init__(
        self,
        model: WorldModel | Tileset,
        seed: int,
        *,
        S: int = 32,
        V: int = 4,
        layers: int = 2,
        library: PatchLibrary | None = None,
        budget: SolverBudget | None = None,
        cache_blocks: int = 16384,
        config: WorldSpec | None = None,
        multipliers: npt.NDArray[np.float64] | None = None,
        districts: bool = True,
    ) -> None:
        if not 0 <= layers <= MAX_LAYERS:
            raise InputError(f"layers must be in 0..{MAX_LAYERS}, got {layers}")
        self.model = as_world_model(model)
        self.seed = int(seed)
        self.S = S
        self.layers = layers
        self.config = config
        self.lib = library if library is not None else load_or_build(self.model, S, V)
        if self.lib.S != S:
            raise InputError(f"library was built for S={self.lib.S}, not {S}")
        self.V = self.lib.V
        vclass = self.model.variant_class
        self.class_names = self.model.class_names
        self.variant_class = vclass
        self.K = len(self.class_names)
        self.cr = self.model.compiled
        self.bias = bias_for(vclass, self.K, self.model.variant_tags)
        # like the calibration, districts only weigh refinement solves: none without layers
        lean = districts and layers >= 1
        rows = district_rows(self.model, self.lib.version) if lean else None
        self.districts = rows is not None  # its weights lean by district (then: the summary)
        if rows is not None:  # a one-class model: its districts lean by the level band
            self.bias = Bias(profiles=self.bias.profiles * rows, climates=self.bias.climates)
        # read-only: the solver then memoises its fixed-point rows by identity instead of
        # hashing (or, past 1 MiB, recomputing) the table on every block solve (0.17 ms of
        # a terrain solve, 0.11 ms of a lakes one)
        self.bias.profiles.setflags(write=False)
        self.budget = budget or SolverBudget(max_attempts=4, max_backtracks=200)
        if multipliers is None:
            multipliers = calibration_for(self.model, self.lib.version, layers, self._window)
        self.profiles = self.bias.profiles
        if multipliers is not None:
            self.profiles = self.bias.profiles * np.asarray(multipliers, np.float64)[None, :]
            self.profiles.setflags(write=False)
        self._cache: OrderedDict[BlockKey, I32Array] = OrderedDict()
        self._capacity = cache_blocks
        self._stack: list[BlockKey] = []
        self.trace: list[tuple[BlockKey, BlockKey]] | None = None
        self.fallbacks = 0
        self.solved_blocks = 0

    def _window(self, multipliers: npt.NDArray[np.float64], seed: int) -> I32Array:
        """Final cells of a calibration window of a private twin (``seed``, ``multipliers``)."""
        twin = World(
            self.model, seed, S=self.S, V=self.V, layers=self.layers, library=self.lib,
            budget=self.budget, multipliers=multipliers, districts=False,
        )  # fmt: skip
        return twin.region(0, 0, WINDOW_SIDE, WINDOW_SIDE)

    # ------------------------------------------------------------------ identity
    @property
    def version(self) -> str:
        """Identifies the content and its tiles: library version (rules, S, V, algorithm), the
        model's look (labels and pictures), the layer count and the tile drawing rules
        (:data:`~worldgen.world.spec.TILE_VERSION`); at most 40 characters of ``[0-9a-f-Lt]``."""
        return f"{self.lib.version}-{self.model.look}-L{self.layers}-t{TILE_VERSION}"

    # ------------------------------------------------------------------ base layer
    def base_region(self, x0: int, y0: int, w: int, h: int) -> I32Array:
        """Layer-0 variant ids ``(h, w)`` of the window at ``(x0, y0)``."""
        if self.lib.ground is not None:  # a sample with a ground: the ground column everywhere
            return ground_region(self.lib.ground, y0, w, h)
        S = self.S
        xs = np.arange(x0, x0 + w, dtype=np.int64)
        ys = np.arange(y0, y0 + h, dtype=np.int64)
        ci, cj = xs // S, ys // S
        i0, j0 = int(ci[0]), int(cj[0])
        wi, hj = int(ci[-1]) - i0 + 1, int(cj[-1]) - j0 + 1
        if self.trace is not None and self._stack:
            for j in range(j0, j0 + hj):
                for i in range(i0, i0 + wi):
                    self.trace.append((self._stack[-1], (0, i, j)))
        cls = self.vertex_classes(i0, j0, wi + 1, hj + 1)
        li, lj = (ci - i0)[None, :], (cj - j0)[:, None]
        combo = self.lib.combo_index[
            cls[lj, li], cls[lj, li + 1], cls[lj + 1, li + 1], cls[lj + 1, li]
        ]
        if int(combo.min()) < 0:  # the clamp makes this impossible; guard the invariant anyway
            raise AssertionError("lattice produced a class combination outside the library")
        lattice_i = np.arange(i0, i0 + wi, dtype=np.int64)[None, :]
        lattice_j = np.arange(j0, j0 + hj, dtype=np.int64)[:, None]
        choice = mix_array(self.seed, PURPOSE_PATCH_CHOICE, lattice_i, lattice_j) % np.uint64(
            self.V
        )
        variant = choice.astype(np.int64)[lj, li]
        cells: I32Array = self.lib.patches[
            combo, variant, (ys - cj * S)[:, None], (xs - ci * S)[None, :]
        ]
        return cells

    def vertex_classes(self, i0: int, j0: int, w: int, h: int) -> npt.NDArray[np.int64]:
        """Library corner class ``(h, w)`` of lattice vertices ``(i0 + i, j0 + j)``.

        Macro classes (clamped) for a tileset library; for a hashed (sample) library a corner
        colour ``mix(seed, CORNER, i, j) % classes`` per vertex, independent of its neighbours.
        """
        if not self.lib.hashed:
            return macro.lattice_classes(self.seed, i0, j0, w, h, self.S, self.K)
        ii = np.arange(i0, i0 + w, dtype=np.int64)[None, :]
        jj = np.arange(j0, j0 + h, dtype=np.int64)[:, None]
        colour = mix_array(self.seed, PURPOSE_CORNER, ii, jj) % np.uint64(self.lib.classes)
        return colour.astype(np.int64)

    def base_cell(self, x: int, y: int) -> int:
        """Layer-0 variant id at ``(x, y)``."""
        return int(self.base_region(x, y, 1, 1)[0, 0])

    # ------------------------------------------------------------------ bias state
    def profile_region(self, x0: int, y0: int, w: int, h: int) -> npt.NDArray[np.int32]:
        """Bias profile ``(h, w)`` of each cell of the window: its row in :attr:`profiles`.

        This is the whole macro state a refinement solve sees at a cell (its weight row), so the
        far-zoom summary (:mod:`.summary`) is keyed by it too.
        """
        return self.bias.region(self.seed, x0, y0, w, h)

    def profile_at(
        self, x: npt.NDArray[np.integer], y: npt.NDArray[np.integer], min_period: int = 0
    ) -> npt.NDArray[np.int32]:
        """Bias profile at the cells ``(x, y)`` (broadcast; a row and a column vector make a
        separable grid, the fast case): the same values as :meth:`profile_region` (with
        ``min_period`` > 0, the far zooms' smoothed fields: :meth:`Bias.at`)."""
        return self.bias.at(self.seed, x, y, min_period)

    # ------------------------------------------------------------------ refinement layers
    def offset(self, layer: int) -> int:
        """Block offset of ``layer``: S/2, 0, S/4 for layers 1, 2, 3 (:func:`.plan.offset`)."""
        return plan.offset(self.S, layer)

    def block_origin(self, layer: int, bi: int, bj: int) -> tuple[int, int]:
        """Top-left cell of block ``(bi, bj)`` of ``layer``."""
        o = self.offset(layer)
        return bi * self.S + o, bj * self.S + o

    def dependencies(self, layer: int, bi: int, bj: int) -> set[BlockKey]:
        """Exactly what block ``(layer, bi, bj)`` reads from the layer below (2x2 keys)."""
        if layer < 1:
            raise InputError("only refinement layers (>= 1) have block dependencies")
        # a layer offset further than the one below reads indices bi and bi+1; one offset less
        # (layer 2 over layer 1) reads bi-1 and bi
        d = (self.offset(layer) - self.offset(layer - 1)) // self.S
        return {(layer - 1, bi + d + a, bj + d + b) for a in (0, 1) for b in (0, 1)}

    def block(self, layer: int, bi: int, bj: int) -> I32Array:
        """The S x S variant ids of one refinement block (memoised)."""
        key = (layer, bi, bj)
        if self.trace is not None and self._stack:
            self.trace.append((self._stack[-1], key))
        got = self._cache.get(key)
        if got is not None:
            self._cache.move_to_end(key)
            return got
        self._stack.append(key)
        try:
            grid = self._compute_block(layer, bi, bj)
        finally:
            self._stack.pop()
        self.put_block(key, grid)
        return grid

    def put_block(self, key: BlockKey, grid: I32Array) -> None:
        """Insert a computed block (e.g. from a worker process) into the LRU."""
        grid.setflags(write=False)
        self._cache[key] = grid
        self._cache.move_to_end(key)
        while len(self._cache) > self._capacity:
            self._cache.popitem(last=False)

    def _compute_block(self, layer: int, bi: int, bj: int) -> I32Array:
        S = self.S
        ox, oy = self.block_origin(layer, bi, bj)
        below = self.layer_region(layer - 1, ox, oy, S, S)
        pins = below.copy()
        pins[1:-1, 1:-1] = -1
        bans = None
        if self.lib.ground is not None:  # keep the ground row and below; no ground in the sky
            pins, bans = ground_constraints(self.model.ground, self.model.size, oy, below, pins)
        bands = self.profile_region(ox, oy, S, S)
        res = solve(
            self.cr, S, S,
            seed=mix(self.seed, PURPOSE_BLOCK, layer, bi, bj),
            constraints=Constraints(pins=pins, bans=bans, bias=(self.profiles, bands)),
            budget=self.budget,
        )  # fmt: skip
        # verified, not trusted: an engine result that breaks a rule counts as a failure
        if res.solved and forbidden_pairs(res.grid, self.model.allowed) == 0:
            self.solved_blocks += 1
            return res.grid
        self.fallbacks += 1
        return below

    def block_range(self, layer: int, x0: int, y0: int, w: int, h: int) -> tuple[range, range]:
        """Block indices ``(bi range, bj range)`` of ``layer`` covering the window."""
        o, S = self.offset(layer), self.S
        return (
            range((x0 - o) // S, (x0 + w - 1 - o) // S + 1),
            range((y0 - o) // S, (y0 + h - 1 - o) // S + 1),
        )

    def layer_region(self, layer: int, x0: int, y0: int, w: int, h: int) -> I32Array:
        """Variant ids ``(h, w)`` of ``layer`` over the window."""
        if layer == 0:
            return self.base_region(x0, y0, w, h)
        out = np.empty((h, w), dtype=np.int32)
        ri, rj = self.block_range(layer, x0, y0, w, h)
        for bj in rj:
            for bi in ri:
                bx, by = self.block_origin(layer, bi, bj)
                blk = self.block(layer, bi, bj)
                sx0, sy0 = max(x0, bx), max(y0, by)
                sx1, sy1 = min(x0 + w, bx + self.S), min(y0 + h, by + self.S)
                out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = blk[
                    sy0 - by : sy1 - by, sx0 - bx : sx1 - bx
                ]
        return out

    def top_blocks(self, x0: int, y0: int, w: int, h: int) -> list[BlockKey]:
        """Top-layer block keys under the window, row-major."""
        if self.layers == 0:
            return []
        ri, rj = self.block_range(self.layers, x0, y0, w, h)
        return [(self.layers, bi, bj) for bj in rj for bi in ri]

    def region(self, x: int, y: int, w: int, h: int) -> I32Array:
        """Final variant ids ``(h, w)`` of the window: a pure function of the world and window."""
        _check_window(x, y, w, h)
        return self.layer_region(self.layers, x, y, w, h)

    def lattice_classes_for(self, x0: int, y0: int, w: int, h: int) -> npt.NDArray[np.int64]:
        """Macro class per cell ``(h, w)``: the class of the nearest lattice vertex."""
        S = self.S
        xs = np.arange(x0, x0 + w, dtype=np.int64)
        ys = np.arange(y0, y0 + h, dtype=np.int64)
        vi = (xs + S // 2) // S
        vj = (ys + S // 2) // S
        i0, j0 = int(vi[0]), int(vj[0])
        cls = macro.lattice_classes(
            self.seed, i0, j0, int(vi[-1]) - i0 + 1, int(vj[-1]) - j0 + 1, S, self.K
        )
        return cls[(vj - j0)[:, None], (vi - i0)[None, :]]


def ordered(keys: Iterable[BlockKey], order: Order) -> list[BlockKey]:
    """``keys`` in the requested evaluation order (shuffle by integer hash, never by RNG state)."""
    items = list(keys)
    if order == "rowmajor":
        return items
    if order == "reverse":
        return items[::-1]
    if order == "shuffle":
        return sorted(items, key=lambda k: mix(PURPOSE_ORDER, *k))
    raise InputError(f"unknown order {order!r}; use one of {', '.join(ORDERS)}")


def region_in_order(
    world: World,
    x: int,
    y: int,
    w: int,
    h: int,
    order: Order,
    progress: Callable[[int], None] | None = None,
) -> I32Array:
    """Compute the window's top-layer blocks in ``order``, copying each into the window as it
    is computed (a window with more blocks than the LRU holds is never computed twice).

    ``progress(1)`` is called after each top-layer block (for a progress bar).
    """
    _check_window(x, y, w, h)
    if world.layers == 0:
        return world.region(x, y, w, h)
    S = world.S
    out = np.empty((h, w), dtype=np.int32)
    for layer, bi, bj in ordered(world.top_blocks(x, y, w, h), order):
        blk = world.block(layer, bi, bj)
        bx, by = world.block_origin(layer, bi, bj)
        sx0, sy0 = max(x, bx), max(y, by)
        sx1, sy1 = min(x + w, bx + S), min(y + h, by + S)
        out[sy0 - y : sy1 - y, sx0 - x : sx1 - x] = blk[sy0 - by : sy1 - by, sx0 - bx : sx1 - bx]
        if progress is not None:
            progress(1)
    return out
