"""worldgen's JSON tileset format: strict parsing into a TilesetSpec, and conversion from XML.

The format says exactly what the classic XML says (``docs/tileset-format.md``). Parsing checks the
type and bounds of every value it reads and ignores unknown keys; the checks shared with the XML
format (names, symmetry, weights, neighbour references, subsets, images) happen in
:func:`worldgen.engine.tileset.build_tileset`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any, Final

from worldgen.engine.tileset import (
    MAX_IMAGE_SIZE,
    MAX_NEIGHBORS,
    MAX_TILES,
    SYMMETRY_LETTERS,
    TilesetSpec,
    TileSpec,
    cardinality,
    default_image_paths,
    read_limited,
    tileset_error,
)
from worldgen.errors import TilesetError

FORMAT: Final = "worldgen-tileset"
VERSION: Final = 1
MAX_PATH_LENGTH: Final = 255


class _Reader:
    """Typed access to JSON values; every failure names the file and the offending key."""

    def __init__(self, source: Path) -> None:
        self.source = source

    def fail(self, message: str) -> TilesetError:
        return tileset_error(self.source, message)

    def obj(self, value: object, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(f"{where} must be a JSON object")
        return value

    def lst(self, value: object, where: str, limit: int) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(f"{where} must be a JSON list")
        if len(value) > limit:
            raise self.fail(f"{where} has {len(value)} entries; at most {limit} are allowed")
        return value

    def string(self, value: object, where: str) -> str:
        if not isinstance(value, str):
            raise self.fail(f"{where} must be a string")
        return value

    def number(self, value: object, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(f"{where} must be a number above 0")
        return float(value)

    def image_path(self, value: object, where: str) -> str:
        rel = self.string(value, where)
        parts = PurePosixPath(rel).parts
        if (
            not rel
            or len(rel) > MAX_PATH_LENGTH
            or "\\" in rel
            or ":" in rel
            or PurePosixPath(rel).is_absolute()
            or ".." in parts
        ):
            raise self.fail(
                f'{where} "{rel}" must be a relative path inside the tileset folder, '
                "with / separators and no '..'"
            )
        return rel


def _parse_tile(r: _Reader, raw: object, index: int, unique: bool) -> TileSpec:
    where = f"tiles[{index}]"
    tile = r.obj(raw, where)
    name = r.string(tile.get("name"), f"{where}.name")
    where = f'tile "{name}"'
    symmetry = r.string(tile.get("symmetry", "X"), f"{where}: symmetry")
    weight = r.number(tile.get("weight", 1.0), f"{where}: weight")
    raw_class = tile.get("class")
    tile_class = None if raw_class is None else r.string(raw_class, f"{where}: class")
    images: tuple[str, ...] | None = None
    if unique:
        if "image" in tile:
            raise r.fail(f'{where}: a unique set gives "images" (one per variant), not "image"')
        if "images" in tile:
            paths = r.lst(tile["images"], f"{where}: images", 8)
            if symmetry in SYMMETRY_LETTERS and len(paths) != cardinality(symmetry):
                raise r.fail(
                    f"{where}: images lists {len(paths)} files but symmetry {symmetry} has "
                    f"{cardinality(symmetry)} variants; give one image per variant"
                )
            images = tuple(r.image_path(p, f"{where}: images[{i}]") for i, p in enumerate(paths))
    elif "images" in tile:
        raise r.fail(f'{where}: a non-unique set gives one "image", not "images"')
    elif "image" in tile:
        images = (r.image_path(tile["image"], f"{where}: image"),)
    return TileSpec(name, symmetry, weight, tile_class, images)


def parse_json(path: Path) -> TilesetSpec:
    """Read and check a JSON tileset file; raise TilesetError naming the first problem."""
    r = _Reader(path)
    data = read_limited(path)
    try:
        doc_raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise r.fail("the file is not UTF-8 text; save it as UTF-8") from None
    except json.JSONDecodeError as exc:
        raise r.fail(
            f"malformed JSON at line {exc.lineno}, column {exc.colno} ({exc.msg}); fix the syntax"
        ) from None
    doc = r.obj(doc_raw, "the document")
    if doc.get("format") != FORMAT:
        raise r.fail(f'"format" must be "{FORMAT}"; is this a worldgen tileset?')
    version = doc.get("version")
    if isinstance(version, bool) or version != VERSION:
        raise r.fail(f'"version" is {version!r}; this worldgen reads version {VERSION}')
    unique = doc.get("unique", False)
    if not isinstance(unique, bool):
        raise r.fail('"unique" must be true or false')
    tile_size = doc.get("tile_size")
    if tile_size is not None and (
        isinstance(tile_size, bool)
        or not isinstance(tile_size, int)
        or not 1 <= tile_size <= MAX_IMAGE_SIZE
    ):
        raise r.fail(f'"tile_size" must be an integer from 1 to {MAX_IMAGE_SIZE}')

    raw_tiles = r.lst(doc.get("tiles", []), '"tiles"', MAX_TILES)
    tiles = tuple(_parse_tile(r, raw, i, unique) for i, raw in enumerate(raw_tiles))

    neighbors: list[tuple[str, str]] = []
    for i, raw in enumerate(r.lst(doc.get("neighbors", []), '"neighbors"', MAX_NEIGHBORS)):
        entry = r.obj(raw, f"neighbors[{i}]")
        left = r.string(entry.get("left"), f"neighbors[{i}].left")
        right = r.string(entry.get("right"), f"neighbors[{i}].right")
        neighbors.append((left, right))

    subsets: dict[str, tuple[str, ...]] = {}
    for name, members in r.obj(doc.get("subsets", {}), '"subsets"').items():
        listed = r.lst(members, f'subset "{name}"', MAX_TILES)
        subsets[name] = tuple(r.string(m, f'subset "{name}" entry') for m in listed)
    return TilesetSpec(path, unique, tiles, tuple(neighbors), subsets, tile_size)


def spec_to_json(spec: TilesetSpec) -> dict[str, Any]:
    """The JSON document for a parsed tileset; image paths relative to the source's folder."""
    folder = spec.source.parent
    tiles: list[dict[str, Any]] = []
    for tile in spec.tiles:
        entry: dict[str, Any] = {"name": tile.name, "symmetry": tile.symmetry}
        entry["weight"] = tile.weight
        if tile.tile_class is not None:
            entry["class"] = tile.tile_class
        found = [p for _, p in default_image_paths(spec, tile)]
        if all(p is not None for p in found):
            rel = [p.relative_to(folder).as_posix() for p in found if p is not None]
            if spec.unique:
                entry["images"] = rel
            else:
                entry["image"] = rel[0]
        tiles.append(entry)
    subsets: Mapping[str, list[str]] = {k: list(v) for k, v in spec.subsets.items()}
    return {
        "format": FORMAT,
        "version": VERSION,
        "unique": spec.unique,
        "tiles": tiles,
        "neighbors": [
            {"left": " ".join(a.split()), "right": " ".join(b.split())} for a, b in spec.neighbors
        ],
        "subsets": dict(subsets),
    }
