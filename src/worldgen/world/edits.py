"""Edits: a layer of user operations on top of the generated world (DESIGN.md §3.5).

A world's content is the generated world with an :class:`Overlay` on top: per 64 x 64 block of
cells, the cells an edit set (-1 where the generated cell shows) and the locked cells. The overlay
is a pure function of the operation log: :func:`replay` applies the operations in order, and
:func:`compute` finds what one operation changes (a :class:`Diff`) without touching the overlay, so
a refused operation changes nothing.

Kinds of operation (:class:`Op`):

* ``regenerate`` a rectangle: a fresh solve of it whose outer one-cell ring is pinned to the
  current content (locked cells inside stay pinned too);
* ``paint`` cells with chosen variants: the painted cells are pinned, then their bounding box plus
  :data:`PAINT_MARGIN` cells is re-solved with its ring pinned (when the ring cannot be joined to
  the paint, the margin grows through :data:`PAINT_MARGINS` before the paint is refused);
* ``lock`` / ``unlock`` cells (a rectangle or a list): locked cells keep their content through
  every later operation of anyone until unlocked;
* ``restore`` a rectangle to the generated world (locked cells excepted), then the seam repaired;
* ``revert`` an earlier operation (undo; a redo reverts the undo): each cell it changed that no
  later operation changed since takes its earlier value back, then the seam is repaired;
* ``rewind`` to an earlier version: the overlay becomes the one the log had at that version.

Solves are seeded with :func:`op_seed` (an integer hash of the world seed and the operation id), so
replaying the log reproduces every cell. Every changed area is checked with the one adjacency
checker (:func:`~worldgen.engine.rules.forbidden_pairs`) over the area plus its ring, so rules hold
across the rectangle's border. When pins contradict each other, the locks or the rules, the
operation is refused (:class:`~worldgen.errors.EditRefusedError`, naming the cells).

Seam repair (``restore``, ``revert``): the cells of forbidden pairs, grown by r = 1, 2, 4, 8 cells
(locked cells excepted), are re-solved with everything around them pinned, the first r that works.

Every solve keeps generation's constraints: the world's bias and, for a sample with a ground, the
ground's (:func:`~worldgen.world.ground.ground_constraints`: cells at ``y >= 0`` keep their content,
no ground pattern above them; a paint against them is refused naming its cells). A diff carries
the solver's decision order of its cells (:attr:`Diff.order`), which :func:`reveal` packs for the
clients' animation. :func:`tile_png`, :func:`picture` and :func:`content` draw the world with the
overlay on top (the one way, through :class:`~worldgen.jobs.export.EditedContent`), and
:func:`compute_packed` is :func:`compute` on stored bytes, for a worker process.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from worldgen.engine.rng import mix
from worldgen.engine.rules import forbidden_pairs
from worldgen.engine.solver import Constraints, SolverBudget, solve
from worldgen.errors import EditRefusedError, InputError
from worldgen.world.blocks import MAX_COORD, World
from worldgen.world.ground import ground_constraints
from worldgen.world.render import (
    TILE_PX,
    Z_FAR,
    cell_relief,
    cells_per_tile,
    palette_for,
    png_bytes,
    render_cells,
    tile_rgb,
)

__all__ = [
    "BLOCK",
    "KINDS",
    "MAX_PAINT_CELLS",
    "MAX_RECT_SIDE",
    "PAINT_MARGIN",
    "PAINT_MARGINS",
    "REPAIR_RADII",
    "REVEAL_FRAMES",
    "REVEAL_SIDE",
    "Diff",
    "Kind",
    "Op",
    "Overlay",
    "Rect",
    "apply_overlay",
    "compute",
    "compute_packed",
    "content",
    "op_seed",
    "picture",
    "replay",
    "reveal",
    "rolled_back",
    "tile_png",
]

BLOCK = 64
"""Side in cells of an overlay block (what storage keeps per key field; a tile reads few)."""
MAX_RECT_SIDE = 256
"""Longest side of an edited rectangle (also of a paint's box with its margin)."""
MAX_PAINT_CELLS = 4096
"""Most cells one paint (or lock list) may name."""
PAINT_MARGIN = 2
"""Cells around a paint's bounding box that are re-solved with it (at least)."""
PAINT_MARGINS = (PAINT_MARGIN, 4, 8)
"""Margins tried in turn while the border cannot be joined to the paint (a shore, a road)."""
REPAIR_RADII = (1, 2, 4, 8)
REVEAL_FRAMES = 32
"""Steps of an edit's reveal (:func:`reveal`; the client plays them over about a second)."""
REVEAL_SIDE = 64
"""Most squares a side of a reveal (a larger change shares one byte between several cells)."""
PURPOSE_EDIT = 0x45444954
_MAX_NAMED = 12
"""Conflicting cells named in a refusal message at most."""

Kind = Literal["regenerate", "paint", "lock", "unlock", "restore", "revert", "rewind"]
KINDS: tuple[Kind, ...] = get_args(Kind)

I32Array = npt.NDArray[np.int32]
I64Array = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
BlockKey = tuple[int, int]


def op_seed(world_seed: int, op_id: int) -> int:
    """The solver seed of operation ``op_id``: an integer hash of (world seed, op id)."""
    return mix(world_seed, PURPOSE_EDIT, op_id)


@dataclass(frozen=True)
class Rect:
    """A rectangle of cells: ``[x, x + w) x [y, y + h)``."""

    x: int
    y: int
    w: int
    h: int

    def grow(self, n: int) -> Rect:
        """The rectangle with ``n`` more cells on every side."""
        return Rect(self.x - n, self.y - n, self.w + 2 * n, self.h + 2 * n)

    def overlaps(self, other: Rect) -> bool:
        """True when the two rectangles share a cell."""
        return (
            self.x < other.x + other.w
            and other.x < self.x + self.w
            and self.y < other.y + other.h
            and other.y < self.y + self.h
        )

    def as_list(self) -> list[int]:
        """``[x, y, w, h]`` (JSON)."""
        return [self.x, self.y, self.w, self.h]

    def blocks(self) -> list[BlockKey]:
        """The overlay blocks (:data:`BLOCK` cells a side) that hold a cell of the rectangle."""
        b = BLOCK
        return [
            (bi, bj)
            for bj in range(self.y // b, (self.y + self.h - 1) // b + 1)
            for bi in range(self.x // b, (self.x + self.w - 1) // b + 1)
        ]

    @classmethod
    def of_tile(cls, z: int, x: int, y: int) -> Rect:
        """The cells under map tile ``(z, x, y)``."""
        n = cells_per_tile(z)
        return cls(x * n, y * n, n, n)


def _check_rect(rect: Rect, what: str = "rectangle") -> None:
    if not (1 <= rect.w <= MAX_RECT_SIDE and 1 <= rect.h <= MAX_RECT_SIDE):
        raise InputError(
            f"the {what} is {rect.w}x{rect.h} cells; at most {MAX_RECT_SIDE}x{MAX_RECT_SIDE}"
        )
    if max(abs(rect.x), abs(rect.y), abs(rect.x + rect.w), abs(rect.y + rect.h)) > MAX_COORD - 64:
        raise InputError("the rectangle lies outside the world")


def _bbox(xs: I64Array, ys: I64Array) -> Rect:
    x0, y0 = int(xs.min()), int(ys.min())
    return Rect(x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1)


@dataclass(frozen=True)
class Op:
    """One operation of the log, as the domain sees it (authors and times are storage's).

    ``rect`` is the edited rectangle (for ``paint`` and a ``lock`` list: the cells' box);
    ``cells`` the painted ``(x, y, variant)`` or locked ``(x, y, 0)`` cells; ``target`` the
    operation a ``revert`` undoes or the version a ``rewind`` returns to.
    """

    id: int
    kind: Kind
    rect: Rect | None = None
    cells: tuple[tuple[int, int, int], ...] = ()
    target: int | None = None

    @classmethod
    def build(
        cls,
        op_id: int,
        kind: str,
        *,
        rect: Rect | None = None,
        cells: Iterable[Iterable[int]] = (),
        target: int | None = None,
        variants: int | None = None,
    ) -> Op:
        """A checked operation; :class:`InputError` names what is wrong (limits included).

        ``variants`` (the model's T) bounds painted variant ids when given.
        """
        if kind not in KINDS:
            raise InputError(f"unknown edit kind {kind!r}; use one of {', '.join(KINDS)}")
        triples = tuple(tuple(int(v) for v in c) for c in cells)
        if len(triples) > MAX_PAINT_CELLS:
            raise InputError(f"{len(triples)} cells named; at most {MAX_PAINT_CELLS} per edit")
        if kind in ("revert", "rewind"):
            if target is None or target < 0:
                raise InputError(f"a {kind} needs a target version or operation (>= 0)")
            return cls(op_id, kind, None, (), int(target))
        if kind == "paint" or (kind in ("lock", "unlock") and triples):
            if not triples:
                raise InputError("a paint needs at least one cell")
            width = 3 if kind == "paint" else 2
            if any(len(c) != width for c in triples):
                shape = "[x, y, variant]" if kind == "paint" else "[x, y]"
                raise InputError(f"each cell of a {kind} must be {shape}")
            if kind != "paint":
                triples = tuple((c[0], c[1], 0) for c in triples)
            elif variants is not None:
                bad = [c for c in triples if not 0 <= c[2] < variants]
                if bad:
                    raise InputError(
                        f"variant {bad[0][2]} at ({bad[0][0]}, {bad[0][1]}) "
                        f"is not in 0..{variants - 1}"
                    )
            arr = np.array(triples, dtype=np.int64)
            box = _bbox(arr[:, 0], arr[:, 1])
            grown = box.grow(PAINT_MARGIN) if kind == "paint" else box
            _check_rect(grown, "paint with its margin" if kind == "paint" else "lock")
            full = tuple((c[0], c[1], c[2]) for c in triples)
            return cls(op_id, kind, box, full)
        if rect is None:
            raise InputError(f"a {kind} needs a rectangle")
        _check_rect(rect)
        return cls(op_id, kind, rect)

    def area(self) -> Rect | None:
        """The cells the operation may change directly (its rectangle, a paint's widest margin
        too)."""
        if self.rect is None:
            return None
        return self.rect.grow(PAINT_MARGINS[-1]) if self.kind == "paint" else self.rect


@dataclass(frozen=True, eq=False)
class Diff:
    """What one operation changed: per changed cell its overlay value and lock, before/after.

    Overlay values are -1 where the generated cell shows. Arrays are aligned, one entry a cell.
    """

    xs: I64Array
    ys: I64Array
    before: I32Array
    after: I32Array
    lock_before: BoolArray
    lock_after: BoolArray
    order: I64Array | None = None
    """Per changed cell, the solver observation that decided it (0: set without a solve, or
    pinned); for the reveal of the change (:func:`reveal`), not stored (None once read back)."""

    @classmethod
    def empty(cls) -> Diff:
        """A diff that changes nothing."""
        z64 = np.zeros(0, dtype=np.int64)
        z32 = np.zeros(0, dtype=np.int32)
        zb = np.zeros(0, dtype=np.bool_)
        return cls(z64, z64, z32, z32, zb, zb)

    def __len__(self) -> int:
        return int(self.xs.shape[0])

    def inverse(self) -> Diff:
        """The diff that undoes this one exactly (before and after swapped)."""
        return Diff(self.xs, self.ys, self.after, self.before, self.lock_after, self.lock_before)

    def bbox(self) -> Rect | None:
        """The box of the changed cells (None: nothing changed)."""
        return _bbox(self.xs, self.ys) if len(self) else None

    def to_bytes(self) -> bytes:
        """Compact bytes (zlib of the six arrays; :meth:`from_bytes` reads them back)."""
        n = np.array([len(self)], dtype=np.int64)
        parts = (n, self.xs, self.ys, self.before, self.after, self.lock_before, self.lock_after)
        return zlib.compress(b"".join(np.ascontiguousarray(p).tobytes() for p in parts), 1)

    @classmethod
    def from_bytes(cls, data: bytes) -> Diff:
        """Inverse of :meth:`to_bytes`."""
        raw = zlib.decompress(data)
        n = int(np.frombuffer(raw[:8], dtype=np.int64)[0])
        out: list[npt.NDArray[np.generic]] = []
        offset = 8
        for dtype, size in ((np.int64, 8), (np.int64, 8), (np.int32, 4), (np.int32, 4)):
            out.append(np.frombuffer(raw[offset : offset + n * size], dtype=dtype).copy())
            offset += n * size
        for _ in range(2):
            out.append(np.frombuffer(raw[offset : offset + n], dtype=np.bool_).copy())
            offset += n
        return cls(*out)  # type: ignore[arg-type]


@dataclass
class Overlay:
    """Edited cells and locks by :data:`BLOCK`-cell block, with the last operation that changed
    each block (``versions``: part of the block's tiles' cache keys)."""

    cells: dict[BlockKey, I32Array] = field(default_factory=dict)
    locks: dict[BlockKey, BoolArray] = field(default_factory=dict)
    versions: dict[BlockKey, int] = field(default_factory=dict)

    @classmethod
    def from_blocks(cls, found: Mapping[BlockKey, tuple[bytes, int]]) -> Overlay:
        """The overlay of stored blocks: ``key -> (bytes, version)``, the bytes of
        :meth:`block_bytes`."""
        out = cls()
        for key, (data, version) in found.items():
            out.put_block(key, data, version)
        return out

    def copy(self) -> Overlay:
        """An independent copy."""
        return Overlay(
            {k: v.copy() for k, v in self.cells.items()},
            {k: v.copy() for k, v in self.locks.items()},
            dict(self.versions),
        )

    def window(self, rect: Rect) -> tuple[I32Array, BoolArray]:
        """Overlay values (-1: generated) and locks ``(h, w)`` over ``rect``."""
        cells = np.full((rect.h, rect.w), -1, dtype=np.int32)
        locks = np.zeros((rect.h, rect.w), dtype=np.bool_)
        for bj in range(rect.y // BLOCK, (rect.y + rect.h - 1) // BLOCK + 1):
            for bi in range(rect.x // BLOCK, (rect.x + rect.w - 1) // BLOCK + 1):
                c, lk = self.cells.get((bi, bj)), self.locks.get((bi, bj))
                if c is None and lk is None:
                    continue
                bx, by = bi * BLOCK, bj * BLOCK
                sx0, sy0 = max(rect.x, bx), max(rect.y, by)
                sx1, sy1 = min(rect.x + rect.w, bx + BLOCK), min(rect.y + rect.h, by + BLOCK)
                dst = (slice(sy0 - rect.y, sy1 - rect.y), slice(sx0 - rect.x, sx1 - rect.x))
                src = (slice(sy0 - by, sy1 - by), slice(sx0 - bx, sx1 - bx))
                if c is not None:
                    cells[dst] = c[src]
                if lk is not None:
                    locks[dst] = lk[src]
        return cells, locks

    def apply(self, diff: Diff, op_id: int) -> set[BlockKey]:
        """Write ``diff``'s after-values; returns the blocks it touched (their version is now
        ``op_id``; a block left with no edit and no lock is dropped)."""
        if not len(diff):
            return set()
        bi, bj = diff.xs // BLOCK, diff.ys // BLOCK
        touched: set[BlockKey] = set()
        for key in sorted(set(zip(bi.tolist(), bj.tolist(), strict=True))):
            sel = (bi == key[0]) & (bj == key[1])
            lx, ly = diff.xs[sel] - key[0] * BLOCK, diff.ys[sel] - key[1] * BLOCK
            c = self.cells.get(key)
            if c is None:
                c = np.full((BLOCK, BLOCK), -1, dtype=np.int32)
            lk = self.locks.get(key)
            if lk is None:
                lk = np.zeros((BLOCK, BLOCK), dtype=np.bool_)
            c[ly, lx] = diff.after[sel]
            lk[ly, lx] = diff.lock_after[sel]
            if (c >= 0).any() or lk.any():
                self.cells[key], self.locks[key] = c, lk
            else:
                self.cells.pop(key, None)
                self.locks.pop(key, None)
            self.versions[key] = op_id
            touched.add(key)
        return touched

    def block_bytes(self, key: BlockKey) -> bytes | None:
        """One block's cells and locks as compact bytes (None: the block has no edit)."""
        c = self.cells.get(key)
        if c is None:
            return None
        lk = self.locks[key]
        return zlib.compress(c.tobytes() + np.packbits(lk).tobytes(), 1)

    def put_block(self, key: BlockKey, data: bytes, version: int) -> None:
        """Insert a block read back from :meth:`block_bytes`."""
        raw = zlib.decompress(data)
        n = BLOCK * BLOCK
        self.cells[key] = np.frombuffer(raw[: 4 * n], dtype=np.int32).reshape(BLOCK, BLOCK).copy()
        bits = np.unpackbits(np.frombuffer(raw[4 * n :], dtype=np.uint8))[:n]
        self.locks[key] = bits.astype(np.bool_).reshape(BLOCK, BLOCK)
        self.versions[key] = version

    def same_content(self, other: Overlay) -> bool:
        """True when both overlays hold the same cells and locks (versions aside)."""
        if self.cells.keys() != other.cells.keys():
            return False
        return all(
            np.array_equal(v, other.cells[k]) and np.array_equal(self.locks[k], other.locks[k])
            for k, v in self.cells.items()
        )


# ------------------------------------------------------------------------------------ content
def apply_overlay(generated: npt.NDArray[np.integer], values: I32Array) -> I32Array:
    """Generated cells with the overlay's values on top (-1 keeps the generated cell)."""
    out: I32Array = np.where(values >= 0, values, generated).astype(np.int32)
    return out


def content(world: World, overlay: Overlay, rect: Rect) -> I32Array:
    """The world's current cells ``(h, w)`` over ``rect``: generated, then the overlay."""
    values, _ = overlay.window(rect)
    return apply_overlay(world.region(rect.x, rect.y, rect.w, rect.h), values)


def tile_png(world: World, overlay: Overlay, z: int, x: int, y: int) -> bytes:
    """PNG of map tile ``(z, x, y)`` with the overlay on top: at cell zooms the tile of the edited
    cells (:func:`~worldgen.world.render.render_cells`); at far zooms (``z <= Z_FAR``: the
    predicted summary) each pixel moved by the mean colour change (unlit cell colours,
    area-weighted) the edits made to the cells it covers. ``overlay`` needs the blocks under the
    tile only; calls on one world must not overlap (its block cache is plain Python state)."""
    rect = Rect.of_tile(z, x, y)
    if z > Z_FAR:
        return render_cells(world, z, content(world, overlay, rect), origin=(rect.x, rect.y))
    per = rect.w // TILE_PX  # cells along one pixel
    b = BLOCK
    rgb = tile_rgb(world, z, x, y).astype(np.int64)
    colours = palette_for(world).level(1)[:, 0, 0, :].astype(np.int64)  # (T, 3)
    delta = np.zeros((TILE_PX, TILE_PX, 3), dtype=np.int64)
    for (bi, bj), values in overlay.cells.items():
        inside = rect.x <= bi * b < rect.x + rect.w and rect.y <= bj * b < rect.y + rect.h
        if not inside or not (values >= 0).any():
            continue
        generated = world.region(bi * b, bj * b, b, b)
        change = colours[apply_overlay(generated, values)] - colours[generated]
        py = ((bj * b - rect.y) + np.arange(b)) // per
        px = ((bi * b - rect.x) + np.arange(b)) // per
        np.add.at(delta, (py[:, None], px[None, :]), change)
    out = np.clip(rgb + delta // (per * per), 0, 255).astype(np.uint8)
    return png_bytes(out, fast=True)


def reveal(
    diff: Diff, frames: int = REVEAL_FRAMES, side: int = REVEAL_SIDE
) -> dict[str, int | str] | None:
    """How a client animates ``diff``: its cells in the order the solver decided them, in
    ``frames`` steps of about as many decisions each (cells decided by one observation share a
    step; cells set without a solve come first). Compact: over the changed cells' box, one byte
    per square of ``step`` x ``step`` cells (the first step of its changed cells; 255: none
    changed), at most ``side`` squares a side. Returns ``{"x", "y", "step", "w", "h",
    "frames", "data"}`` (``data``: base64 of ``h`` rows of ``w`` bytes), None for no change."""
    box = diff.bbox()
    if box is None:
        return None
    order = diff.order if diff.order is not None else np.zeros(len(diff), dtype=np.int64)
    ranks, inverse = np.unique(order, return_inverse=True)
    frame = (inverse.reshape(-1) * frames // len(ranks)).astype(np.uint8)
    step = max(1, -(-max(box.w, box.h) // side))
    w, h = -(-box.w // step), -(-box.h // step)
    squares = np.full(h * w, 255, dtype=np.uint8)
    index = ((diff.ys - box.y) // step) * w + (diff.xs - box.x) // step
    np.minimum.at(squares, index, frame)
    data = base64.b64encode(squares.tobytes()).decode("ascii")
    return {"x": box.x, "y": box.y, "step": step, "w": w, "h": h, "frames": frames, "data": data}


def picture(world: World, overlay: Overlay, rect: Rect, scale: int) -> npt.NDArray[np.uint8]:
    """RGB picture ``(h * scale, w * scale, 3)`` of ``rect`` with the overlay on top, at ``scale``
    px a cell and with the world's relief: the pixels of an export."""
    shade = cell_relief(world, rect.x, rect.y, rect.w, rect.h)
    return palette_for(world).draw(content(world, overlay, rect), scale, shade)


def _conflict_cells(grid: I32Array, allowed: BoolArray) -> BoolArray:
    """Cells of ``grid`` that take part in a horizontally or vertically forbidden pair (where
    :func:`forbidden_pairs` counts them)."""
    bad = np.zeros(grid.shape, dtype=np.bool_)
    right = ~allowed[2, grid[:, :-1], grid[:, 1:]]
    down = ~allowed[1, grid[:-1, :], grid[1:, :]]
    bad[:, :-1] |= right
    bad[:, 1:] |= right
    bad[:-1, :] |= down
    bad[1:, :] |= down
    return bad


def _fixed_neighbour_clash(pins: I32Array, fixed: BoolArray, allowed: BoolArray) -> BoolArray:
    """Fixed cells with a fixed right or lower (or left, upper) neighbour the rules forbid."""
    p = np.maximum(pins, 0)
    out = np.zeros(pins.shape, dtype=np.bool_)
    right = ~allowed[2, p[:, :-1], p[:, 1:]] & fixed[:, :-1] & fixed[:, 1:]
    down = ~allowed[1, p[:-1, :], p[1:, :]] & fixed[:-1, :] & fixed[1:, :]
    out[:, :-1] |= right
    out[:, 1:] |= right
    out[:-1, :] |= down
    out[1:, :] |= down
    return out


def _name(rect: Rect, mask: BoolArray) -> list[tuple[int, int]]:
    ys, xs = np.nonzero(mask)
    return [(int(x) + rect.x, int(y) + rect.y) for y, x in zip(ys, xs, strict=True)]


def _refuse(reason: str, cells: list[tuple[int, int]]) -> EditRefusedError:
    named = ", ".join(f"({x}, {y})" for x, y in cells[:_MAX_NAMED])
    more = f" and {len(cells) - _MAX_NAMED} more" if len(cells) > _MAX_NAMED else ""
    return EditRefusedError(f"{reason}: {named}{more}", cells=cells)


_BUDGET = SolverBudget(max_attempts=4, max_backtracks=400)


def _solve_window(
    world: World, window: Rect, pins: I32Array, seed: int, current: I32Array
) -> tuple[I32Array | None, I64Array, str | None]:
    """Solve ``window`` with ``pins`` (-1 free) and the world's bias, under the same ground
    constraints as generation (a sample with a ground: every cell at ``y >= 0`` keeps its
    ``current`` content, the ground pattern is banned above it, :mod:`~worldgen.world.ground`):
    the grid (None when unsolved), the decision order (``SolveResult.order``) and the reason."""
    bans = None
    if world.lib.ground is not None:
        pins, bans = ground_constraints(
            world.model.ground, world.model.size, window.y, current, pins
        )
    bands = world.profile_region(window.x, window.y, window.w, window.h)
    res = solve(
        world.cr,
        window.w,
        window.h,
        seed=seed,
        constraints=Constraints(pins=pins, bans=bans, bias=(world.profiles, bands)),
        budget=_BUDGET,
    )
    order = res.order if res.order is not None else np.zeros(pins.shape, dtype=np.int64)
    if res.solved and forbidden_pairs(res.grid, world.model.allowed) == 0:
        return res.grid, order, None
    return None, order, res.reason or "contradiction"


def _ground_misfits(world: World, window: Rect, op: Op, current: I32Array) -> BoolArray:
    """Painted cells the ground forbids (a sample with a ground): a change at ``y >= 0`` (the
    ground row and under it keep their content, as in generation) or the ground pattern above
    ``y = 0``."""
    bad = np.zeros(current.shape, dtype=np.bool_)
    if world.lib.ground is None:
        return bad
    for x, y, v in op.cells:
        lx, ly = x - window.x, y - window.y
        if (y >= 0 and current[ly, lx] != v) or (y < 0 and v == world.model.ground):
            bad[ly, lx] = True
    return bad


def _diff_from(
    rect: Rect,
    generated: npt.NDArray[np.integer],
    old_values: I32Array,
    old_locks: BoolArray,
    new_cells: I32Array,
    new_locks: BoolArray,
    order: I64Array | None = None,
) -> Diff:
    """The diff that takes the overlay over ``rect`` to ``new_cells`` / ``new_locks`` (a cell equal
    to the generated one is stored as -1); ``order`` the solve's decision order over ``rect``."""
    new_values = np.where(new_cells == generated, -1, new_cells).astype(np.int32)
    changed = (new_values != old_values) | (new_locks != old_locks)
    ys, xs = np.nonzero(changed)
    return Diff(
        (xs + rect.x).astype(np.int64),
        (ys + rect.y).astype(np.int64),
        old_values[ys, xs].astype(np.int32),
        new_values[ys, xs],
        old_locks[ys, xs].copy(),
        new_locks[ys, xs].copy(),
        None if order is None else order[ys, xs].astype(np.int64),
    )


def _resolve(world: World, overlay: Overlay, op: Op, seed: int) -> Diff:
    """``regenerate`` and ``paint``: solve the area with its ring (and locks, paints) pinned; a
    paint whose border cannot be joined to it tries the wider margins of :data:`PAINT_MARGINS`."""
    assert op.rect is not None  # noqa: S101  checked by Op.build
    margins = PAINT_MARGINS if op.kind == "paint" else (0,)
    for k, margin in enumerate(margins):
        last = k == len(margins) - 1
        diff = _resolve_window(world, overlay, op, op.rect.grow(margin + 1), seed, last)
        if diff is not None:
            return diff
    raise AssertionError("the last margin refuses or answers")  # pragma: no cover


def _resolve_window(
    world: World, overlay: Overlay, op: Op, window: Rect, seed: int, last: bool
) -> Diff | None:
    """One try of :func:`_resolve` over ``window``: the diff, None to try a wider window (only
    when the pins cannot be joined and this is not the ``last`` try), else refused."""
    generated = world.region(window.x, window.y, window.w, window.h)
    values, locks = overlay.window(window)
    current = apply_overlay(generated, values)
    inner = np.zeros(current.shape, dtype=np.bool_)
    inner[1:-1, 1:-1] = True
    pins = np.where(inner & ~locks, -1, current).astype(np.int32)
    painted = np.zeros(current.shape, dtype=np.bool_)
    for x, y, v in op.cells:
        lx, ly = x - window.x, y - window.y
        if locks[ly, lx] and current[ly, lx] != v:
            painted[ly, lx] = True
        pins[ly, lx] = v
    if painted.any():
        raise _refuse("these cells are locked", _name(window, painted))
    grounded = _ground_misfits(world, window, op, current)
    if grounded.any():
        raise _refuse(
            "the ground row stays at y = 0 (cells at y >= 0 keep their content, "
            "and the ground pattern grows nowhere above it)",
            _name(window, grounded),
        )
    if op.cells:
        # pairs of two fixed cells can be judged before solving
        pair = _fixed_neighbour_clash(pins, pins >= 0, world.model.allowed)
        if pair.any():
            raise _refuse("these cells break the adjacency rules", _name(window, pair))
    grid, order, reason = _solve_window(world, window, pins, seed, current)
    if grid is None:
        if reason == "constraints":
            if not last:
                return None
            culprits = np.zeros(current.shape, dtype=np.bool_)
            for x, y, _ in op.cells:
                culprits[y - window.y, x - window.x] = True
            if not culprits.any():
                culprits = locks & inner
            raise _refuse(
                "the pinned cells (paint, locks, border) cannot be joined by any arrangement",
                _name(window, culprits),
            )
        raise _refuse("no arrangement found for the area; try a larger one", _name(window, inner))
    return _diff_from(window, generated, values, locks, grid, locks, order)


def _lock(world: World, overlay: Overlay, op: Op) -> Diff:
    rect = op.rect
    assert rect is not None  # noqa: S101  checked by Op.build
    values, locks = overlay.window(rect)
    new_locks = locks.copy()
    want = op.kind == "lock"
    if op.cells:
        for x, y, _ in op.cells:
            new_locks[y - rect.y, x - rect.x] = want
    else:
        new_locks[:] = want
    # content is unchanged; generated is not needed since values are kept as they are
    return _diff_from(rect, np.full(values.shape, -2), values, locks, values, new_locks)


def _repair(world: World, overlay: Overlay, pending: Diff, seed: int) -> Diff:
    """``pending`` applied, then the seam around it re-solved where rules break; the combined
    diff (refused when no radius of :data:`REPAIR_RADII` repairs it)."""
    box = pending.bbox()
    if box is None:
        return pending
    trial = overlay.copy()
    trial.apply(pending, 0)
    reach = max(REPAIR_RADII) + 2
    window = box.grow(reach)
    generated = world.region(window.x, window.y, window.w, window.h)
    values, locks = trial.window(window)
    current = apply_overlay(generated, values)
    # the one adjacency checker decides; _conflict_cells only locates what it counted
    broken = forbidden_pairs(current, world.model.allowed) > 0
    bad = _conflict_cells(current, world.model.allowed) if broken else np.zeros_like(locks)
    order = np.zeros(current.shape, dtype=np.int64)  # the pending cells show at once
    if broken:
        inner = np.zeros(current.shape, dtype=np.bool_)
        inner[1:-1, 1:-1] = True
        for k, r in enumerate(REPAIR_RADII):
            free = _dilate(bad, r) & ~locks & inner
            pins = np.where(free, -1, current).astype(np.int32)
            grid, solved, _ = _solve_window(world, window, pins, mix(seed, k), current)
            if grid is not None:
                current, order = grid, solved
                break
        else:
            raise _refuse("the seam around the change cannot be repaired", _name(window, bad))
    # the combined diff: from the overlay before ``pending`` to the repaired content
    old_values, old_locks = overlay.window(window)
    return _diff_from(window, generated, old_values, old_locks, current, locks, order)


def _dilate(mask: BoolArray, r: int) -> BoolArray:
    """``mask`` grown by ``r`` cells (Chebyshev)."""
    out = mask.copy()
    for _ in range(r):
        grown = out.copy()
        grown[1:, :] |= out[:-1, :]
        grown[:-1, :] |= out[1:, :]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
        grown = out.copy()
        grown[1:, 1:] |= out[:-1, :-1]
        grown[:-1, :-1] |= out[1:, 1:]
        grown[1:, :-1] |= out[:-1, 1:]
        grown[:-1, 1:] |= out[1:, :-1]
        out = grown
    return out


def _restore(world: World, overlay: Overlay, op: Op) -> Diff:
    rect = op.rect
    assert rect is not None  # noqa: S101  checked by Op.build
    values, locks = overlay.window(rect)
    keep = locks
    new_values = np.where(keep, values, -1).astype(np.int32)
    changed = new_values != values
    ys, xs = np.nonzero(changed)
    return Diff(
        (xs + rect.x).astype(np.int64),
        (ys + rect.y).astype(np.int64),
        values[ys, xs],
        new_values[ys, xs],
        locks[ys, xs].copy(),
        locks[ys, xs].copy(),
    )


def _revert(overlay: Overlay, target: Diff) -> Diff:
    """Each cell ``target`` changed and nothing changed since takes its earlier value back."""
    if not len(target):
        return Diff.empty()
    box = target.bbox()
    assert box is not None  # noqa: S101  non-empty
    values, locks = overlay.window(box)
    lx, ly = target.xs - box.x, target.ys - box.y
    untouched = (values[ly, lx] == target.after) & (locks[ly, lx] == target.lock_after)
    return Diff(
        target.xs[untouched],
        target.ys[untouched],
        target.after[untouched],
        target.before[untouched],
        target.lock_after[untouched],
        target.lock_before[untouched],
    )


def _rewind(overlay: Overlay, then: Overlay) -> Diff:
    """The diff that makes ``overlay`` equal ``then`` (cells and locks)."""
    keys = sorted(set(overlay.cells) | set(then.cells))
    parts: list[Diff] = []
    for bi, bj in keys:
        rect = Rect(bi * BLOCK, bj * BLOCK, BLOCK, BLOCK)
        v0, l0 = overlay.window(rect)
        v1, l1 = then.window(rect)
        ys, xs = np.nonzero((v0 != v1) | (l0 != l1))
        parts.append(
            Diff((xs + rect.x).astype(np.int64), (ys + rect.y).astype(np.int64),
                 v0[ys, xs], v1[ys, xs], l0[ys, xs], l1[ys, xs])
        )  # fmt: skip
    return _concat(parts)


def _concat(parts: list[Diff]) -> Diff:
    if not parts:
        return Diff.empty()
    return Diff(
        np.concatenate([p.xs for p in parts]),
        np.concatenate([p.ys for p in parts]),
        np.concatenate([p.before for p in parts]),
        np.concatenate([p.after for p in parts]),
        np.concatenate([p.lock_before for p in parts]),
        np.concatenate([p.lock_after for p in parts]),
    )


def compute(
    world: World,
    overlay: Overlay,
    op: Op,
    *,
    diff_of: Callable[[int], Diff | None],
    overlay_at: Callable[[int], Overlay],
) -> Diff:
    """What ``op`` changes on ``overlay`` (which is left as it is); raises
    :class:`~worldgen.errors.EditRefusedError` when it cannot be applied.

    ``diff_of(op_id)`` gives an earlier operation's diff (``revert``), ``overlay_at(version)``
    the overlay at an earlier version (``rewind``).
    """
    seed = op_seed(world.seed, op.id)
    if op.kind in ("regenerate", "paint"):
        return _resolve(world, overlay, op, seed)
    if op.kind in ("lock", "unlock"):
        return _lock(world, overlay, op)
    if op.kind == "restore":
        return _repair(world, overlay, _restore(world, overlay, op), seed)
    assert op.target is not None  # noqa: S101  checked by Op.build
    if op.kind == "revert":
        target = diff_of(op.target)
        if target is None:
            raise InputError(f"there is no operation {op.target} to revert")
        return _repair(world, overlay, _revert(overlay, target), seed)
    return _rewind(overlay, overlay_at(op.target))


def compute_packed(
    world: World,
    op: Op,
    blocks: Mapping[BlockKey, tuple[bytes, int]],
    target: bytes | None = None,
    undone: Iterable[bytes] = (),
) -> tuple[bytes, dict[str, int | str] | None]:
    """:func:`compute` on stored bytes, for a worker process: ``blocks`` the overlay's blocks
    around the operation (:meth:`Overlay.from_blocks`), ``target`` the diff a ``revert`` undoes,
    ``undone`` the diffs after a ``rewind``'s target, newest first (:meth:`Diff.to_bytes` each).
    Returns the diff's bytes and its :func:`reveal`; raises as :func:`compute` does."""
    overlay = Overlay.from_blocks(blocks)
    target_diff = None if target is None else Diff.from_bytes(target)
    undone_diffs = [Diff.from_bytes(raw) for raw in undone]
    diff = compute(
        world,
        overlay,
        op,
        diff_of=lambda i: target_diff if i == op.target else None,
        overlay_at=lambda v: rolled_back(overlay, undone_diffs),
    )
    return diff.to_bytes(), reveal(diff)


def rolled_back(overlay: Overlay, newest_first: Iterable[Diff]) -> Overlay:
    """The overlay before the operations whose diffs are given, newest first (each diff records
    every cell it changed with its earlier value, so no solve is needed). Versions are not
    rolled back (a rewind only compares cells and locks)."""
    out = overlay.copy()
    for diff in newest_first:
        out.apply(diff.inverse(), 0)
    return out


def replay(world: World, ops: Iterable[Op]) -> tuple[Overlay, dict[int, Diff]]:
    """The overlay the log ``ops`` (in order) produces, and each operation's diff."""
    overlay = Overlay()
    diffs: dict[int, Diff] = {}
    done: list[int] = []

    def overlay_at(version: int) -> Overlay:
        return rolled_back(overlay, [diffs[i] for i in reversed(done) if i > version])

    for op in ops:
        diff = compute(world, overlay, op, diff_of=diffs.get, overlay_at=overlay_at)
        overlay.apply(diff, op.id)
        diffs[op.id] = diff
        done.append(op.id)
    return overlay, diffs
