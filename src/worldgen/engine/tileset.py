"""Tilesets of the simple tiled model: tiles, symmetry classes, neighbour rules and loaders.

A tileset lists tiles; each tile has a symmetry class that says how many distinct *oriented
variants* it has (its cardinality) and how rotating or mirroring one variant gives another. The
loaders expand every tile into its variants (pattern ids, in file order) and every neighbour
entry into the full adjacency table ``allowed[d, a, b]`` in the :mod:`worldgen.engine.rules`
convention, exactly as the classic SimpleTiledModel does. Two file formats say the same things:
the classic XML format and our own JSON format (parsed in :mod:`._tileset_json`); both are
described in ``docs/tileset-format.md``.

Invariants of a loaded :class:`Tileset` (``T`` = number of variants): every per-variant tuple and
array has length ``T``; ``allowed`` is symmetric under direction reversal; every weight is finite
and > 0; ``images`` is ``None`` exactly when images were not loaded. Arrays built by the loaders
are read-only.

Decoding the tile pictures is most of a load (41 small PNGs of ``terrain``: ~15 ms with Pillow).
A caller that keeps a cache passes ``images_memo``: the loader hands it the SHA-256 of the image
files' bytes (in order) and a function that decodes them, and uses whatever it returns; the
engine itself writes no files (``worldgen.world.api`` keeps them beside its other caches).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from PIL import Image

from worldgen.engine.rules import RuleTable
from worldgen.errors import InputError, TilesetError

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_IMAGE_SIZE",
    "MAX_NEIGHBORS",
    "MAX_TILES",
    "UNDETERMINED_RGBA",
    "Tileset",
    "load_tileset",
    "load_tileset_json",
    "load_tileset_xml",
    "render_tiled",
    "tileset_to_json",
]

MAX_TILES: Final = 1024
MAX_NEIGHBORS: Final = 65536
MAX_FILE_BYTES: Final = 4 * 1024 * 1024
MAX_IMAGE_SIZE: Final = 128
MAX_NAME_LENGTH: Final = 128
UNDETERMINED_RGBA: Final = (24, 24, 24, 255)

_Action = Callable[[int], int]
# Symmetry class -> (cardinality, a = quarter turn counter-clockwise, b = left-right mirror),
# both acting on the tile's local variant indices 0..cardinality-1.
_SYMMETRY: Final[dict[str, tuple[int, _Action, _Action]]] = {
    "L": (4, lambda i: (i + 1) % 4, lambda i: i + 1 if i % 2 == 0 else i - 1),
    "T": (4, lambda i: (i + 1) % 4, lambda i: i if i % 2 == 0 else 4 - i),
    "I": (2, lambda i: 1 - i, lambda i: i),
    "\\": (2, lambda i: 1 - i, lambda i: 1 - i),
    "F": (
        8,
        lambda i: (i + 1) % 4 if i < 4 else 4 + (i - 1) % 4,
        lambda i: i + 4 if i < 4 else i - 4,
    ),
    "X": (1, lambda i: i, lambda i: i),
}
SYMMETRY_LETTERS: Final = tuple(_SYMMETRY)
_DIGITS = re.compile(r"[0-9]+")
U8Array = npt.NDArray[np.uint8]
_ImagesMemo = Callable[[str, Callable[[], U8Array]], U8Array]
"""``memo(key, decode)``: the pictures ``(F, s, s, 4)`` of a tileset's F image files, whose bytes
hash to ``key``; ``decode()`` reads them (raising TilesetError for a bad file)."""
_IMAGES_KEY_VERSION = b"worldgen tile pictures 1\n"
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def cardinality(symmetry: str) -> int:
    """The number of oriented variants of a tile of this (valid) symmetry class."""
    return _SYMMETRY[symmetry][0]


def local_actions(symmetry: str) -> tuple[tuple[int, ...], ...]:
    """Row ``t`` lists, for local variant ``t``, the 8 variants reached by the dihedral group.

    Order: identity, 1/2/3 quarter turns counter-clockwise, then the left-right mirror of each
    of those four (``[t, a(t), a²(t), a³(t), b(t), b(a(t)), b(a²(t)), b(a³(t))]``).
    """
    card, a, b = _SYMMETRY[symmetry]
    rows = []
    for t in range(card):
        turns = [t, a(t), a(a(t)), a(a(a(t)))]
        rows.append((*turns, *(b(u) for u in turns)))
    return tuple(rows)


@dataclass(frozen=True, eq=False)
class Tileset:
    """A loaded tileset: one entry per oriented variant; the variant index is the pattern id."""

    name: str
    variant_names: tuple[str, ...]
    tile_of_variant: tuple[str, ...]
    classes: tuple[str | None, ...]
    weights: npt.NDArray[np.float64]
    allowed: npt.NDArray[np.bool_]
    images: npt.NDArray[np.uint8] | None
    tile_size: int

    @property
    def size(self) -> int:
        """The number of oriented variants T."""
        return len(self.variant_names)

    def variant_id(self, variant_name: str) -> int:
        """The pattern id of a variant named ``"<tile> <k>"``; raise TilesetError if unknown."""
        try:
            return self.variant_names.index(variant_name)
        except ValueError:
            raise TilesetError(f'tileset {self.name}: no variant "{variant_name}"') from None

    def rules(self) -> RuleTable:
        """The solver's rule table (copies, so the solver may own its arrays)."""
        return RuleTable(self.allowed.copy(), self.weights.copy()).validated()

    def class_names(self) -> tuple[str, ...]:
        """The distinct tile classes in order of first appearance (variants without one skipped)."""
        return tuple(dict.fromkeys(c for c in self.classes if c is not None))


@dataclass(frozen=True)
class TileSpec:
    """One ``<tile>`` as written in a file, before validation.

    ``images`` holds explicit image paths relative to the tileset's folder (one for a non-unique
    set, one per variant for a unique set) or ``None`` for the classic file names.
    """

    name: str
    symmetry: str
    weight: float
    tile_class: str | None
    images: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TilesetSpec:
    """A parsed tileset file of either format; :func:`build_tileset` validates and expands it."""

    source: Path
    unique: bool
    tiles: tuple[TileSpec, ...]
    neighbors: tuple[tuple[str, str], ...]
    subsets: Mapping[str, tuple[str, ...]]
    tile_size: int | None = None


def tileset_error(source: Path, message: str) -> TilesetError:
    """A TilesetError whose message starts with the file's name."""
    return TilesetError(f"tileset {source.name}: {message}")


def listing(names: Iterable[str], limit: int = 20) -> str:
    """A short comma-separated list for error messages."""
    items = list(names)
    head = ", ".join(items[:limit])
    return head + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def read_limited(path: Path) -> bytes:
    """Read a tileset file, refusing files over MAX_FILE_BYTES."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise tileset_error(path, f"cannot read the file ({reason}); check the path") from None
    if len(data) > MAX_FILE_BYTES:
        raise tileset_error(path, f"file is larger than {MAX_FILE_BYTES} bytes; split the tileset")
    return data


def _check_tiles(spec: TilesetSpec) -> None:
    src = spec.source
    if not spec.tiles:
        raise tileset_error(src, "no tiles; add at least one tile")
    if len(spec.tiles) > MAX_TILES:
        raise tileset_error(src, f"{len(spec.tiles)} tiles; at most {MAX_TILES} are allowed")
    if len(spec.neighbors) > MAX_NEIGHBORS:
        raise tileset_error(
            src, f"{len(spec.neighbors)} neighbor entries; at most {MAX_NEIGHBORS} are allowed"
        )
    seen: set[str] = set()
    for tile in spec.tiles:
        name = tile.name
        if not name or len(name) > MAX_NAME_LENGTH or any(ch.isspace() for ch in name):
            raise tileset_error(
                src,
                f'invalid tile name "{name}"; use 1 to {MAX_NAME_LENGTH} characters without spaces',
            )
        if "/" in name or "\\" in name:
            raise tileset_error(
                src, f'invalid tile name "{name}"; a name is also an image file name: no / or \\'
            )
        if name in seen:
            raise tileset_error(src, f'duplicate tile name "{name}"; tile names must be unique')
        seen.add(name)
        if tile.symmetry not in _SYMMETRY:
            raise tileset_error(
                src,
                f'tile "{name}" has unknown symmetry "{tile.symmetry}"; '
                f"use one of {' '.join(SYMMETRY_LETTERS)}",
            )
        if not np.isfinite(tile.weight) or tile.weight <= 0:
            raise tileset_error(
                src, f'tile "{name}" has weight {tile.weight}; weights must be finite and > 0'
            )
        if tile.tile_class is not None and not tile.tile_class.strip():
            raise tileset_error(src, f'tile "{name}" has an empty class; remove it or name one')


def _chosen_tiles(spec: TilesetSpec, subset: str | None) -> list[TileSpec]:
    if subset is None:
        return list(spec.tiles)
    src = spec.source
    if subset not in spec.subsets:
        known = listing(spec.subsets) if spec.subsets else "none are defined"
        raise tileset_error(src, f'unknown subset "{subset}" (known subsets: {known})')
    members = spec.subsets[subset]
    names = {t.name for t in spec.tiles}
    for member in members:
        if member not in names:
            raise tileset_error(src, f'subset "{subset}" names unknown tile "{member}"')
    wanted = set(members)
    return [t for t in spec.tiles if t.name in wanted]


def _parse_ref(
    spec: TilesetSpec, ref: str, index: int, tiles: Mapping[str, TileSpec]
) -> tuple[str, int]:
    src = spec.source
    where = f'neighbor {index + 1} ("{ref}")'
    parts = ref.split()
    if len(parts) not in (1, 2) or (len(parts) == 2 and not _DIGITS.fullmatch(parts[1])):
        raise tileset_error(src, f'{where} is not of the form "<tile>" or "<tile> <orientation>"')
    name = parts[0]
    if name not in tiles:
        raise tileset_error(
            src, f'{where} names unknown tile "{name}" (known tiles: {listing(tiles)})'
        )
    k = int(parts[1]) if len(parts) == 2 else 0
    # As in the classic format, k is one of the 8 rotations/reflections of variant 0 (action k),
    # so k >= cardinality is allowed and names the variant that action produces.
    if k >= 8:
        raise tileset_error(
            src,
            f'{where}: orientation {k} is out of range for tile "{name}" (use 0..7; '
            f"symmetry {tiles[name].symmetry} has {cardinality(tiles[name].symmetry)} distinct "
            "orientation(s))",
        )
    return name, k


def build_tileset(
    spec: TilesetSpec,
    subset: str | None,
    *,
    load_images: bool,
    images_memo: _ImagesMemo | None = None,
) -> Tileset:
    """Validate a parsed tileset and expand it into variants and the full adjacency table
    (``images_memo``: see the module docstring)."""
    _check_tiles(spec)
    all_tiles = {t.name: t for t in spec.tiles}
    chosen = _chosen_tiles(spec, subset)
    if not chosen:
        raise tileset_error(spec.source, f'no tiles in subset "{subset}"; add tiles to it')

    first: dict[str, int] = {}
    action: list[tuple[int, ...]] = []
    names: list[str] = []
    tile_of: list[str] = []
    classes: list[str | None] = []
    weights: list[float] = []
    for tile in chosen:
        base = first[tile.name] = len(action)
        for t, row in enumerate(local_actions(tile.symmetry)):
            action.append(tuple(base + v for v in row))
            names.append(f"{tile.name} {t}")
            tile_of.append(tile.name)
            classes.append(tile.tile_class)
            weights.append(tile.weight)

    count = len(action)
    P = np.zeros((4, count, count), dtype=np.bool_)
    for index, (left, right) in enumerate(spec.neighbors):
        lname, lk = _parse_ref(spec, left, index, all_tiles)
        rname, rk = _parse_ref(spec, right, index, all_tiles)
        if lname not in first or rname not in first:
            continue  # excluded by the subset: skipped, as in the classic model
        L = action[first[lname]][lk]
        R = action[first[rname]][rk]
        D = action[L][1]
        U = action[R][1]
        # P[0][x][y]: y may sit left of x; P[1][x][y]: y may sit below x.
        P[0, R, L] = True
        P[0, action[R][6], action[L][6]] = True
        P[0, action[L][4], action[R][4]] = True
        P[0, action[L][2], action[R][2]] = True
        P[1, U, D] = True
        P[1, action[D][6], action[U][6]] = True
        P[1, action[U][4], action[D][4]] = True
        P[1, action[D][2], action[U][2]] = True
    P[2] = P[0].T
    P[3] = P[1].T

    images: npt.NDArray[np.uint8] | None = None
    tile_size = 0
    if load_images:
        images = _load_images(spec, chosen, images_memo)
        tile_size = int(images.shape[1])
        if spec.tile_size is not None and spec.tile_size != tile_size:
            raise tileset_error(
                spec.source,
                f"tile_size is {spec.tile_size} but the images are {tile_size} px; "
                "fix tile_size or the images",
            )
        images.flags.writeable = False
    weight_array = np.array(weights, dtype=np.float64)
    weight_array.flags.writeable = False
    P.flags.writeable = False
    return Tileset(
        name=spec.source.stem,
        variant_names=tuple(names),
        tile_of_variant=tuple(tile_of),
        classes=tuple(classes),
        weights=weight_array,
        allowed=P,
        images=images,
        tile_size=tile_size,
    )


def default_image_paths(spec: TilesetSpec, tile: TileSpec) -> list[tuple[str, Path | None]]:
    """Classic image files of a tile: ``(file name, path found or None)`` per image to read.

    Non-unique sets have one ``<name>.png``; unique sets one ``<name> <k>.png`` per variant. Each
    is looked for in the tileset's folder, then in a subfolder named after the tileset.
    """
    if spec.unique:
        files = [f"{tile.name} {k}.png" for k in range(cardinality(tile.symmetry))]
    else:
        files = [f"{tile.name}.png"]
    folder = spec.source.parent
    found: list[tuple[str, Path | None]] = []
    for fname in files:
        candidates = (folder / fname, folder / spec.source.stem / fname)
        found.append((fname, next((c for c in candidates if c.is_file()), None)))
    return found


def _image_files(spec: TilesetSpec, tile: TileSpec) -> list[Path]:
    src = spec.source
    if tile.images is not None:
        paths = [src.parent / rel for rel in tile.images]
        for rel, path in zip(tile.images, paths, strict=True):
            if not path.is_file():
                raise tileset_error(
                    src, f'missing image file "{rel}" for tile "{tile.name}"; add the file'
                )
        return paths
    found: list[Path] = []
    for fname, maybe in default_image_paths(spec, tile):
        if maybe is None:
            raise tileset_error(
                src,
                f'missing image file "{fname}" for tile "{tile.name}" (looked next to the '
                f'tileset and in its "{src.stem}/" subfolder); add the file or load without images',
            )
        found.append(maybe)
    return found


def _read_image(src: Path, path: Path) -> npt.NDArray[np.uint8]:
    try:
        with Image.open(path) as img:
            w, h = img.size
            if w != h:
                raise tileset_error(src, f'image "{path.name}" is {w}x{h} px; tiles must be square')
            if w > MAX_IMAGE_SIZE:
                raise tileset_error(
                    src, f'image "{path.name}" is {w} px wide; at most {MAX_IMAGE_SIZE} px allowed'
                )
            return np.asarray(img.convert("RGBA"), dtype=np.uint8)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise tileset_error(src, f'cannot read image "{path.name}" ({exc}); use a PNG') from None


def _decode_images(spec: TilesetSpec, files: Sequence[Path]) -> U8Array:
    """``(F, s, s, 4)`` RGBA pictures of the image files, all of one size."""
    pictures: list[U8Array] = []
    for path in files:
        pic = _read_image(spec.source, path)
        if pictures and pic.shape[0] != pictures[0].shape[0]:
            raise tileset_error(
                spec.source,
                f'image "{path.name}" is {pic.shape[0]} px but "{files[0].name}" is '
                f"{pictures[0].shape[0]} px; all tile images must have the same size",
            )
        pictures.append(pic)
    return np.stack(pictures)


def _images_key(files: Sequence[Path]) -> str | None:
    """SHA-256 of the files' bytes, in order (None if one cannot be read: decoding says why)."""
    h = hashlib.sha256(_IMAGES_KEY_VERSION)
    try:
        for path in files:
            data = path.read_bytes()
            h.update(len(data).to_bytes(8, "little"))
            h.update(data)
    except OSError:
        return None
    return h.hexdigest()


def _load_images(
    spec: TilesetSpec, chosen: Sequence[TileSpec], memo: _ImagesMemo | None
) -> U8Array:
    """(T, s, s, 4) RGBA; non-unique variants are rotations/mirrors of the one picture."""
    files_of = [_image_files(spec, tile) for tile in chosen]
    files = [path for tile_files in files_of for path in tile_files]
    key = None if memo is None else _images_key(files)
    decoded = None
    if memo is not None and key is not None:
        decoded = memo(key, lambda: _decode_images(spec, files))
        side = decoded.shape[1] if decoded.ndim == 4 else 0
        fits = decoded.shape == (len(files), side, side, 4) and 0 < side <= MAX_IMAGE_SIZE
        if decoded.dtype != np.uint8 or not fits:
            decoded = None  # a memo that returned something else: decode as without one
    if decoded is None:
        decoded = _decode_images(spec, files)
    out: list[U8Array] = []
    first = 0
    for tile, tile_files in zip(chosen, files_of, strict=True):
        pictures = list(decoded[first : first + len(tile_files)])
        first += len(tile_files)
        if not spec.unique:
            for k in range(1, cardinality(tile.symmetry)):
                pictures.append(np.rot90(pictures[k - 1]) if k < 4 else np.fliplr(pictures[k - 4]))
        out.extend(pictures)
    return np.ascontiguousarray(np.stack(out))


def _parse_xml(path: Path) -> TilesetSpec:
    # imported here: a process that draws a sample world loads this module but parses no XML
    import xml.etree.ElementTree as ET

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring as defused_fromstring

    data = read_limited(path)
    try:
        root = defused_fromstring(data, forbid_dtd=True)  # no DTD, no entities, size bounded
    except DefusedXmlException:
        message = "DOCTYPE and ENTITY declarations are not allowed; remove them"
        raise tileset_error(path, message) from None
    except ET.ParseError as exc:
        raise tileset_error(path, f"malformed XML ({exc}); fix the markup") from None
    if root.tag != "set":
        raise tileset_error(path, f"root element is <{root.tag}>, expected <set>")
    unique_text = root.get("unique", "False").strip().lower()
    if unique_text not in ("true", "false"):
        raise tileset_error(path, f'unique="{root.get("unique")}" must be True or False')

    tiles: list[TileSpec] = []
    tiles_el = root.find("tiles")
    for el in tiles_el.findall("tile") if tiles_el is not None else ():
        name = el.get("name", "")
        weight_text = el.get("weight", "1.0").strip()
        if not _NUMBER.fullmatch(weight_text):
            raise tileset_error(
                path, f'tile "{name}" has weight "{weight_text}"; use a number above 0'
            )
        tile_class = el.get("class")
        tiles.append(TileSpec(name, el.get("symmetry", "X"), float(weight_text), tile_class))

    neighbors: list[tuple[str, str]] = []
    neighbors_el = root.find("neighbors")
    for index, el in enumerate(
        neighbors_el.findall("neighbor") if neighbors_el is not None else ()
    ):
        left, right = el.get("left"), el.get("right")
        if left is None or right is None:
            raise tileset_error(path, f"neighbor {index + 1} needs both left and right")
        neighbors.append((left, right))

    subsets: dict[str, tuple[str, ...]] = {}
    subsets_el = root.find("subsets")
    for el in subsets_el.findall("subset") if subsets_el is not None else ():
        sname = el.get("name", "")
        if not sname or sname in subsets:
            raise tileset_error(path, f'subset name "{sname}" is empty or duplicated')
        subsets[sname] = tuple(t.get("name", "") for t in el.findall("tile"))
    return TilesetSpec(path, unique_text == "true", tuple(tiles), tuple(neighbors), subsets)


def load_tileset_xml(
    path: Path | str,
    subset: str | None = None,
    *,
    load_images: bool = True,
    images_memo: _ImagesMemo | None = None,
) -> Tileset:
    """Load a classic SimpleTiledModel XML tileset (optionally one subset of its tiles)."""
    spec = _parse_xml(Path(path))
    return build_tileset(spec, subset, load_images=load_images, images_memo=images_memo)


def load_tileset_json(
    path: Path | str,
    subset: str | None = None,
    *,
    load_images: bool = True,
    images_memo: _ImagesMemo | None = None,
) -> Tileset:
    """Load a tileset in worldgen's JSON format (``docs/tileset-format.md``)."""
    from worldgen.engine._tileset_json import parse_json  # imported here: it imports this module

    spec = parse_json(Path(path))
    return build_tileset(spec, subset, load_images=load_images, images_memo=images_memo)


def load_tileset(
    path: Path | str,
    subset: str | None = None,
    *,
    load_images: bool = True,
    images_memo: _ImagesMemo | None = None,
) -> Tileset:
    """Load a tileset, choosing the format by the file suffix (``.xml`` or ``.json``);
    ``images_memo`` lets the caller cache the decoded pictures (see the module docstring)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".xml":
        return load_tileset_xml(p, subset, load_images=load_images, images_memo=images_memo)
    if suffix == ".json":
        return load_tileset_json(p, subset, load_images=load_images, images_memo=images_memo)
    raise tileset_error(p, f'unknown file type "{p.suffix}"; use a .xml or .json tileset')


def tileset_to_json(ts_source_path: Path | str) -> dict[str, Any]:
    """Convert a classic XML tileset into a JSON document of our format with the same meaning.

    Image paths are written relative to the XML's folder, so save the JSON next to it.
    """
    from worldgen.engine._tileset_json import spec_to_json  # imported here: it imports us

    path = Path(ts_source_path)
    spec = _parse_xml(path)
    build_tileset(spec, None, load_images=False)  # refuse to convert an invalid tileset
    return spec_to_json(spec)


def render_tiled(tileset: Tileset, grid: npt.NDArray[np.int32]) -> npt.NDArray[np.uint8]:
    """Draw a grid ``(H, W)`` of variant ids as an ``(H*s, W*s, 4)`` RGBA image.

    Cell ``(x, y)`` covers pixels ``[y*s:(y+1)*s, x*s:(x+1)*s]``; ``-1`` (undetermined) cells are
    filled with UNDETERMINED_RGBA.
    """
    if tileset.images is None:
        raise TilesetError(f"tileset {tileset.name} was loaded without images; cannot render it")
    g = np.asarray(grid)
    if g.ndim != 2 or not np.issubdtype(g.dtype, np.integer):
        raise InputError(f"grid must be a 2-D integer array, got {g.dtype} of shape {g.shape}")
    count = tileset.size
    if g.size and (int(g.min()) < -1 or int(g.max()) >= count):
        raise InputError(f"grid holds ids outside -1..{count - 1} for tileset {tileset.name}")
    s = tileset.tile_size
    h, w = g.shape
    cells = tileset.images[np.maximum(g, 0)]  # (H, W, s, s, 4); a fresh copy
    cells[g < 0] = np.array(UNDETERMINED_RGBA, dtype=np.uint8)
    return np.ascontiguousarray(cells.transpose(0, 2, 1, 3, 4).reshape(h * s, w * s, 4))
