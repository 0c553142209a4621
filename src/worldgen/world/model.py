"""The world's view of a model: adjacency, weights, classes, labels and a 16-px picture per variant.

The world (blocks, patch library, renderer) never looks at a :class:`Tileset` or an
:class:`OverlappingModel` directly; both become a :class:`WorldModel`:

* **tileset** (simple tiled model): a variant is an oriented tile, labelled ``"<tile> <k>"``, with
  the tileset's class (a tileset without classes is one class, ``"all"``) and the tile picture
  resampled to 16 px (nearest). A class may carry climate tags after a colon
  (``class="lowland:dry"``, several joined by ``+``; :mod:`worldgen.world.bias`): the class is the
  part before the colon, the tags go to ``variant_tags``;
* **sample** (overlapping model): a variant is an N x N pattern of the sample. A cell holding
  pattern ``p`` *shows* ``p``'s top-left pixel, exactly as a bounded overlapping output does, so
  its label is that colour as ``"#rrggbb"`` and its picture a flat 16-px square of it. A sample is
  one class (``"all"``); neighbouring cells agree where their patterns overlap (the rule table of
  :mod:`worldgen.engine.patterns`), so any valid grid is a picture in the style of the sample.

Invariants (``T`` variants, ``K`` classes): ``allowed`` is ``(4, T, T)`` and symmetric under
direction reversal; ``weights`` ``(T,)`` finite and > 0; ``variant_class`` ``(T,)`` in
``[-1, K)`` (-1: no class); ``images`` ``(T, 16, 16, 3)`` RGB or None (loaded without images);
``colours`` ``(T, 3)`` RGB for samples, None for tilesets; ``variant_tags`` is empty (no tags) or
one tuple of climate terms per variant (:mod:`worldgen.world.bias`). Arrays are read-only.
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
import numpy.typing as npt

from worldgen.engine.patterns import OverlappingModel
from worldgen.engine.rules import RuleTable
from worldgen.engine.solver import CompiledRules, compile_rules
from worldgen.engine.tileset import Tileset
from worldgen.errors import InputError
from worldgen.world.bias import parse_term

__all__ = ["CELL_PX", "ModelKind", "WorldModel", "as_world_model", "sample_model", "tileset_model"]

CELL_PX = 16
"""Side of every variant picture; the detail zoom draws one cell as one picture."""

ModelKind = Literal["tiled", "overlapping"]
I32Array = npt.NDArray[np.int32]
U8Array = npt.NDArray[np.uint8]


@dataclass(frozen=True, eq=False)
class WorldModel:
    """Everything the world needs from a tileset or a sample (see the module docstring)."""

    name: str
    kind: ModelKind
    allowed: npt.NDArray[np.bool_]  # (4, T, T)
    weights: npt.NDArray[np.float64]  # (T,) > 0
    labels: tuple[str, ...]  # (T,) "<tile> <k>" or "#rrggbb"
    class_names: tuple[str, ...]  # (K,), K >= 1
    variant_class: I32Array  # (T,) in [-1, K)
    images: U8Array | None  # (T, 16, 16, 3) RGB
    colours: U8Array | None = None  # (T, 3) RGB, samples only
    prefer_plain: bool = True  # patch library: plain corners and seams (tilesets), see patches.py
    variant_tags: tuple[tuple[str, ...], ...] = ()  # climate terms per variant, or () for none
    ground: int = -1  # samples with a ground: the ground pattern (see ground.py), else -1

    @property
    def size(self) -> int:
        """The number of variants T (oriented tiles or patterns)."""
        return int(self.weights.shape[0])

    @property
    def noun(self) -> str:
        """``"tileset"`` or ``"sample"``, for messages."""
        return "tileset" if self.kind == "tiled" else "sample"

    def rules(self) -> RuleTable:
        """The solver's rule table (validated copies)."""
        return RuleTable(self.allowed.copy(), self.weights.copy()).validated()

    @cached_property
    def compiled(self) -> CompiledRules:
        """The compiled rule table, built on first use and kept with the model."""
        return compile_rules(self.rules())

    @cached_property
    def look(self) -> str:
        """8 hex digits identifying what the variants look like (labels and pictures).

        The patch library's version covers the rules only; two models with the same rules but
        other pictures draw other tiles, so the world's content version includes this too.
        """
        h = hashlib.sha256(self.kind.encode())
        h.update("\x00".join(self.labels).encode())
        if self.images is not None:
            h.update(np.ascontiguousarray(self.images).tobytes())
        return h.hexdigest()[:8]

    def mean_colour(self) -> npt.NDArray[np.int64]:
        """RGB ``(3,)``: the weight-averaged colour of the variants' pictures (integer floor)."""
        if self.images is None:
            raise ValueError("model has no pictures")
        w = np.maximum(np.rint(self.weights), 1).astype(np.int64)
        per_variant = self.images.reshape(self.size, -1, 3).astype(np.int64).sum(axis=1)
        total = (per_variant * w[:, None]).sum(axis=0)
        out: npt.NDArray[np.int64] = total // (int(w.sum()) * CELL_PX * CELL_PX)
        return out


def _frozen(array: npt.NDArray[np.generic]) -> None:
    array.setflags(write=False)


def _hex(rgb: npt.NDArray[np.uint8]) -> str:
    r, g, b = (int(v) for v in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def split_class(tileset: Tileset, text: str) -> tuple[str, tuple[str, ...]]:
    """``"lowland:dry+cold"`` -> ``("lowland", ("dry", "cold"))``; InputError for a bad term."""
    name, _, tail = text.partition(":")
    tags = tuple(t for t in tail.split("+") if t) if tail else ()
    for tag in tags:
        try:
            parse_term(tag)
        except ValueError as exc:
            raise InputError(f"tileset {tileset.name}: class {text!r}: {exc}") from None
    if not name.strip():
        raise InputError(f"tileset {tileset.name}: class {text!r} has no class name before ':'")
    return name, tags


def tileset_model(tileset: Tileset) -> WorldModel:
    """The world model of a tileset (pictures only if the tileset was loaded with images)."""
    parsed = [None if c is None else split_class(tileset, c) for c in tileset.classes]
    names = tuple(dict.fromkeys(p[0] for p in parsed if p is not None))
    tags = tuple(() if p is None else p[1] for p in parsed)
    if names:
        index = {n: k for k, n in enumerate(names)}
        vclass = np.array([-1 if p is None else index[p[0]] for p in parsed], np.int32)
    else:
        names = ("all",)
        vclass = np.zeros(tileset.size, dtype=np.int32)
    images: U8Array | None = None
    if tileset.images is not None:
        idx = np.arange(CELL_PX) * tileset.tile_size // CELL_PX
        images = np.ascontiguousarray(tileset.images[:, idx][:, :, idx, :3], dtype=np.uint8)
        _frozen(images)
    _frozen(vclass)
    return WorldModel(
        name=tileset.name,
        kind="tiled",
        allowed=tileset.allowed,
        weights=tileset.weights,
        labels=tuple(tileset.variant_names),
        class_names=names,
        variant_class=vclass,
        images=images,
        variant_tags=tags if any(tags) else (),
    )


def sample_model(model: OverlappingModel, name: str, ground: bool = False) -> WorldModel:
    """The world model of a sample's patterns: a cell shows its pattern's top-left pixel.

    ``ground`` (the classic option, for side views): the world has the sample's ground row at
    ``y = 0`` (:mod:`worldgen.world.ground`); the ground pattern is the model's last pattern."""
    colours = np.ascontiguousarray(model.palette[model.patterns[:, 0, 0].astype(np.intp), :3])
    images = np.ascontiguousarray(
        np.broadcast_to(colours[:, None, None, :], (model.size, CELL_PX, CELL_PX, 3))
    )
    vclass = np.zeros(model.size, dtype=np.int32)
    for array in (colours, images, vclass):
        _frozen(array)
    return WorldModel(
        name=name,
        kind="overlapping",
        allowed=model.allowed,
        weights=model.weights,
        labels=tuple(_hex(c) for c in colours),
        class_names=("all",),
        variant_class=vclass,
        images=images,
        colours=colours,
        prefer_plain=False,
        ground=model.ground_pattern if ground else -1,
    )


# One model per Tileset object, so worlds over the same tileset share compiled rules.
_FROM_TILESET: weakref.WeakKeyDictionary[Tileset, WorldModel] = weakref.WeakKeyDictionary()


def as_world_model(source: WorldModel | Tileset) -> WorldModel:
    """``source`` itself, or the (memoised) world model of a tileset."""
    if isinstance(source, WorldModel):
        return source
    found = _FROM_TILESET.get(source)
    if found is None:
        found = _FROM_TILESET[source] = tileset_model(source)
    return found
