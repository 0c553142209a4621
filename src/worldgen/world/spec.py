"""A world's content as plain data: :class:`WorldSpec`, the only world configuration.

A spec holds only JSON-serialisable fields and is everything that defines a world's content: the
same spec gives the same bytes in any process. It is also how a worker process names (and
rebuilds) a world (:mod:`.pool`), so it is frozen, hashable and picklable. This module imports
nothing else from :mod:`worldgen.world` (it is the leaf every other world module may import);
:mod:`.api` turns a spec into a :class:`~worldgen.world.blocks.World`.

It is also the one place that translates between the two vocabularies of a model's kind: a spec
says ``source="tileset" | "sample"``, the catalog and the web API say ``kind="tiled" |
"overlapping"`` (:data:`KIND`, :data:`SOURCE`, :meth:`WorldSpec.of_kind`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeGuard

from worldgen import tilesets
from worldgen.engine.patterns import MAX_N, MIN_N, SYMMETRIES
from worldgen.errors import InputError
from worldgen.tilesets import Kind

__all__ = [
    "KIND",
    "MAX_EXPORT_PX",
    "MAX_LAYERS",
    "MAX_REGION_SIDE",
    "MAX_S",
    "MAX_SEED",
    "MAX_V",
    "SOURCE",
    "TILE_VERSION",
    "UPLOAD_PREFIX",
    "Source",
    "WorldSpec",
    "is_int",
    "upload_digest",
]

Source = Literal["tileset", "sample"]
KIND: dict[Source, Kind] = {"tileset": "tiled", "sample": "overlapping"}
"""A spec's ``source`` → the catalog's ``kind``."""
SOURCE: dict[Kind, Source] = {kind: source for source, kind in KIND.items()}
"""The catalog's ``kind`` → a spec's ``source``."""

MAX_REGION_SIDE = 4096
"""Largest region side (cells) for a region document and the ``region`` command."""
MAX_EXPORT_PX = 4096
"""Largest side (pixels) of an exported picture."""
MAX_S = 64
MAX_V = 16
MAX_LAYERS = 3
MAX_SEED = 2**64
TILE_VERSION = 6
"""Version of how map tiles are drawn from a world's cells; part of every world's content
version (``World.version``), so caches never serve tiles drawn by older rules. 1: every cell zoom
draws the final cells, far zooms the learnt summary (before it, z = 0..-2 drew the base layer).
2: worlds with continents are lit by the relief at every zoom (hill shading). 3: far zooms of a
world with a ground show its mean colour per row (the ground line). 4: refinement solves of
one-class models are calibrated to a plain solve's label mix (:mod:`worldgen.world.calibrate`).
5: far pixels read the macro fields with octaves finer than the pixel at their mean (z <= -8).
6: one-class samples lean by district (:mod:`worldgen.world.districts`)."""


UPLOAD_PREFIX = "upload:"
"""A spec whose name is ``upload:<sha256 hex>`` is a world over a model a user uploaded (see
:func:`worldgen.world.api.model_for`): its options (N, symmetry, periodic input, ground) are the
upload's own, which its digest covers; the spec's ``subset``, ``N``, ``symmetry`` and ``ground``
are not used for it."""
_HEX = frozenset("0123456789abcdef")


def upload_digest(name: str) -> str | None:
    """The SHA-256 hex of an ``upload:<sha>`` model name, else None (a bundled name)."""
    if not name.startswith(UPLOAD_PREFIX):
        return None
    digest = name[len(UPLOAD_PREFIX) :]
    return digest if len(digest) == 64 and set(digest) <= _HEX else None


def is_int(value: object) -> TypeGuard[int]:
    """A real integer (``bool`` is not one here)."""
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class WorldSpec:
    """Everything that defines a world's content; JSON-serialisable fields only.

    ``name`` is a bundled tileset or sample name (a file path only where files are allowed, see
    :func:`worldgen.world.api.build_world`). ``subset`` applies to tilesets, ``N`` and
    ``symmetry`` to samples (a sample's patterns are always cut from the periodic input), as does
    ``ground`` (a side view: the sample's ground row at y = 0, :mod:`.ground`). ``S`` is
    the block size (32 by default: at 16 the block lattice shows as a period in samples made of
    lines, ``docs/world.md``; a catalog entry may choose another, :meth:`of_kind`), ``V`` the
    patch variants, ``layers`` the refinement layers.
    """

    source: Source
    name: str
    seed: int
    subset: str | None = None
    N: int = 3
    symmetry: int = 8
    S: int = 32
    V: int = 4
    layers: int = 2
    ground: bool = False

    @classmethod
    def of_kind(cls, kind: Kind, name: str, seed: int) -> WorldSpec:
        """The default spec of a world over a catalog entry of ``kind`` (``tiled`` or
        ``overlapping``) named ``name``: a bundled entry's own settings (its catalog
        ``defaults``: a tileset's subset; a sample's N, symmetry and ground, e.g. ``flowers``
        is a side view with symmetry 2 and a ground; either's block size S, e.g. ``lakes``
        has 16), else the field defaults.

        A stored world does not follow a later change of these defaults: its record pins its
        block size (:attr:`~worldgen.store.worlds.WorldRecord.block_size`)."""
        entry = tilesets.lookup(name, kind) if name else None
        if entry is None:
            return cls(source=SOURCE[kind], name=name, seed=seed)
        d = entry.defaults
        S = int(d.get("S", cls.S))
        if kind == "tiled":
            return cls(source="tileset", name=name, seed=seed, subset=d.get("subset"), S=S)
        return cls(
            source="sample", name=name, seed=seed, N=int(d.get("N", 3)),
            symmetry=int(d.get("symmetry", 8)), ground=bool(d.get("ground", False)), S=S,
        )  # fmt: skip

    @property
    def model_key(self) -> WorldSpec:
        """The spec with only the fields that choose the model (source, name, subset, N,
        symmetry, ground): one model serves every world over it, whatever its seed and blocks."""
        return WorldSpec(
            self.source, self.name, 0, self.subset, self.N, self.symmetry, ground=self.ground
        )

    @property
    def kind(self) -> Kind:
        """The catalog kind of the spec's model (``tiled`` or ``overlapping``)."""
        return KIND[self.source]

    def check(self) -> None:
        """Raise :class:`~worldgen.errors.InputError` (a message fit for a client) unless every
        field is in range. Says nothing about whether ``name`` exists (:mod:`.api` does)."""
        if self.source not in KIND:
            raise InputError(f"source must be 'tileset' or 'sample', got {self.source!r}")
        if not isinstance(self.name, str) or not self.name:
            raise InputError("name must be a non-empty string (a bundled tileset or sample)")
        if self.name.startswith(UPLOAD_PREFIX) and upload_digest(self.name) is None:
            raise InputError("an uploaded model's name is 'upload:' and 64 lowercase hex digits")
        if not is_int(self.seed) or not -(2**63) <= self.seed < MAX_SEED:
            raise InputError("seed must be an integer in -2**63..2**64-1")
        checks: tuple[tuple[str, object, int, int], ...] = (
            ("N (pattern size)", self.N, MIN_N, MAX_N),
            ("S (block size)", self.S, 4, MAX_S),
            ("V (patch variants)", self.V, 1, MAX_V),
            ("layers", self.layers, 0, MAX_LAYERS),
        )
        for field, value, low, high in checks:
            if not is_int(value) or not low <= value <= high:
                raise InputError(f"{field} must be an integer in {low}..{high}, got {value!r}")
        if self.S % 2:
            raise InputError(f"S (block size) must be even, got {self.S}")
        if not is_int(self.symmetry) or self.symmetry not in SYMMETRIES:
            raise InputError(f"symmetry must be 1, 2, 4 or 8, got {self.symmetry!r}")
        if not isinstance(self.ground, bool):
            raise InputError(f"ground must be true or false, got {self.ground!r}")
        if self.ground and self.source != "sample":
            raise InputError("ground applies to samples only; drop it for a tileset")
        if self.subset is not None:
            if self.source == "sample":
                raise InputError("subset applies to tilesets only; drop it for a sample")
            if not isinstance(self.subset, str) or not self.subset:
                raise InputError("subset must be a non-empty string or None")
