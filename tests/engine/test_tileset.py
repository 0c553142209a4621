"""Tests of the simple tiled model's tileset loaders (classic XML and worldgen JSON).

The expected adjacency tables of the symmetry-class cases were worked out by hand from the classic
expansion rules; the shared sample tilesets are cross-checked against their pixel edges.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from tests.samples import TILESET_NAMES, sample_tileset
from worldgen.engine.tileset import (
    MAX_FILE_BYTES,
    MAX_IMAGE_SIZE,
    MAX_NEIGHBORS,
    MAX_TILES,
    UNDETERMINED_RGBA,
    Tileset,
    load_tileset,
    load_tileset_json,
    load_tileset_xml,
    render_tiled,
    tileset_to_json,
)
from worldgen.errors import InputError, TilesetError

SHARED_NAMES = TILESET_NAMES

Pairs = set[tuple[str, str]]
Triples = set[tuple[int, str, str]]


def write_xml(
    tmp_path: Path, tiles: str, neighbors: str = "", extra: str = "", **attrs: str
) -> Path:
    """A tiny classic tileset ``t.xml`` in tmp_path."""
    attr_text = "".join(f' {k}="{v}"' for k, v in attrs.items())
    text = (
        f"<set{attr_text}>\n<tiles>{tiles}</tiles>\n"
        f"<neighbors>{neighbors}</neighbors>\n{extra}</set>\n"
    )
    path = tmp_path / "t.xml"
    path.write_text(text, encoding="utf-8")
    return path


def write_json(tmp_path: Path, doc: Any, name: str = "t.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def save_png(path: Path, pixels: npt.NDArray[np.uint8]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def random_rgba(seed: int, size: int = 4, width: int | None = None) -> npt.NDArray[np.uint8]:
    rng = np.random.default_rng(seed)
    shape = (size, size if width is None else width, 4)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def triples(ts: Tileset) -> Triples:
    """The allowed table as (d, a, b) over variant names."""
    names = ts.variant_names
    return {(int(d), names[a], names[b]) for d, a, b in np.argwhere(ts.allowed)}


def expected(horizontal: Pairs, vertical: Pairs) -> Triples:
    """Translate (left, right) and (above, below) pairs into the RuleTable convention.

    d=0: b sits left of a; d=1: b sits below a; d=2: b right of a; d=3: b above a.
    """
    out: Triples = set()
    for left, right in horizontal:
        out |= {(0, right, left), (2, left, right)}
    for above, below in vertical:
        out |= {(1, above, below), (3, below, above)}
    return out


def shared(name: str) -> Path:
    return sample_tileset(name)


# ---------------------------------------------------------------------------------------------
# Hand-worked expansions, one tile of each symmetry class next to a plain X tile "e".
# Oriented variants as drawn: L "c 0" joins up+right, "c 1" left+up, "c 2" down+left,
# "c 3" right+down; T "t 0" joins left+right+down; I "s 0" is vertical, "s 1" horizontal.


class Case(NamedTuple):
    tiles: str
    left: str
    right: str
    horizontal: Pairs  # (left, right): left may sit immediately left of right
    vertical: Pairs  # (above, below): below may sit immediately below above


E = '<tile name="e" symmetry="X"/>'
HAND_CASES = {
    "X": Case(
        '<tile name="a" symmetry="X"/>' + E,
        "a",
        "e",
        {("a 0", "e 0"), ("e 0", "a 0")},
        {("e 0", "a 0"), ("a 0", "e 0")},
    ),
    "L": Case(
        '<tile name="c" symmetry="L"/>' + E,
        "c 1",
        "e",
        {("c 1", "e 0"), ("c 2", "e 0"), ("e 0", "c 0"), ("e 0", "c 3")},
        {("e 0", "c 2"), ("c 1", "e 0"), ("e 0", "c 3"), ("c 0", "e 0")},
    ),
    "L-oriented": Case(
        '<tile name="corner" symmetry="L"/>' + E,
        "corner 3",
        "corner 1",
        {("corner 3", "corner 1"), ("corner 0", "corner 2")},
        {("corner 2", "corner 0"), ("corner 3", "corner 1")},
    ),
    "T": Case(
        '<tile name="t" symmetry="T"/>' + E,
        "t 3",
        "e",
        {("t 3", "e 0"), ("e 0", "t 1")},
        {("e 0", "t 0"), ("t 2", "e 0")},
    ),
    "T-mirrored-entry": Case(
        '<tile name="t" symmetry="T"/>' + E,
        "e",
        "t 1",
        {("t 3", "e 0"), ("e 0", "t 1")},
        {("e 0", "t 0"), ("t 2", "e 0")},
    ),
    "I": Case(
        '<tile name="s" symmetry="I"/>' + E,
        "s 0",
        "e",
        {("s 0", "e 0"), ("e 0", "s 0")},
        {("e 0", "s 1"), ("s 1", "e 0")},
    ),
    "I-oriented": Case(
        '<tile name="s" symmetry="I"/>' + E,
        "s 1",
        "s 1",
        {("s 1", "s 1")},
        {("s 0", "s 0")},
    ),
    "backslash": Case(
        '<tile name="d" symmetry="\\"/>' + E,
        "d 0",
        "e",
        {("d 0", "e 0"), ("d 1", "e 0"), ("e 0", "d 1"), ("e 0", "d 0")},
        {("e 0", "d 1"), ("d 0", "e 0"), ("e 0", "d 0"), ("d 1", "e 0")},
    ),
    "backslash-oriented": Case(
        '<tile name="d" symmetry="\\"/>' + E,
        "d 0",
        "d 0",
        {("d 0", "d 0"), ("d 1", "d 1")},
        {("d 0", "d 0"), ("d 1", "d 1")},
    ),
    "F": Case(
        '<tile name="f" symmetry="F"/>' + E,
        "f 0",
        "e",
        {("f 0", "e 0"), ("f 6", "e 0"), ("e 0", "f 4"), ("e 0", "f 2")},
        {("e 0", "f 1"), ("f 7", "e 0"), ("e 0", "f 5"), ("f 3", "e 0")},
    ),
    "F-oriented": Case(
        '<tile name="f" symmetry="F"/>' + E,
        "f 1",
        "f 4",
        {("f 1", "f 4"), ("f 7", "f 2"), ("f 0", "f 5"), ("f 6", "f 3")},
        {("f 7", "f 2"), ("f 4", "f 1"), ("f 3", "f 6"), ("f 0", "f 5")},
    ),
}


@pytest.mark.parametrize("case", HAND_CASES.values(), ids=HAND_CASES.keys())
def test_hand_worked_expansion(tmp_path: Path, case: Case) -> None:
    neighbor = f'<neighbor left="{case.left}" right="{case.right}"/>'
    ts = load_tileset_xml(write_xml(tmp_path, case.tiles, neighbor), load_images=False)
    assert triples(ts) == expected(case.horizontal, case.vertical)


def test_x_expansion_in_raw_directions(tmp_path: Path) -> None:
    ts = load_tileset_xml(
        write_xml(tmp_path, HAND_CASES["X"].tiles, '<neighbor left="a" right="e"/>'),
        load_images=False,
    )
    pairs = {(d, "a 0", "e 0") for d in range(4)} | {(d, "e 0", "a 0") for d in range(4)}
    assert triples(ts) == pairs
    assert ts.allowed.shape == (4, 2, 2)


def test_variants_weights_and_classes(tmp_path: Path) -> None:
    tiles = (
        '<tile name="c" symmetry="L" weight="0.5" class="land" colour="red"/>'
        '<tile name="s" symmetry="I" class="sea"/><tile name="e"/><tile name="x" class="land"/>'
    )
    ts = load_tileset_xml(write_xml(tmp_path, tiles), load_images=False)
    assert ts.name == "t"
    assert ts.variant_names == ("c 0", "c 1", "c 2", "c 3", "s 0", "s 1", "e 0", "x 0")
    assert ts.tile_of_variant == ("c", "c", "c", "c", "s", "s", "e", "x")
    assert ts.weights.tolist() == [0.5, 0.5, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0]
    assert ts.classes == ("land",) * 4 + ("sea", "sea", None, "land")
    assert ts.class_names() == ("land", "sea")
    assert ts.images is None
    assert ts.tile_size == 0
    assert not ts.allowed.any()
    assert ts.variant_id("s 1") == 5


def test_subset_skips_neighbors_of_excluded_tiles(tmp_path: Path) -> None:
    tiles = '<tile name="a"/><tile name="b"/><tile name="c" symmetry="I"/>'
    neighbors = (
        '<neighbor left="a" right="b"/><neighbor left="b" right="b"/>'
        '<neighbor left="a" right="c 1"/><neighbor left="c 1" right="c 1"/>'
    )
    subsets = '<subsets><subset name="ac"><tile name="c"/><tile name="a"/></subset></subsets>'
    path = write_xml(tmp_path, tiles, neighbors, subsets)
    ts = load_tileset_xml(path, "ac", load_images=False)
    assert ts.variant_names == ("a 0", "c 0", "c 1")  # file order, not subset order
    assert triples(ts) == expected(
        {("a 0", "c 1"), ("c 1", "a 0"), ("c 1", "c 1")},
        {("c 0", "a 0"), ("a 0", "c 0"), ("c 0", "c 0")},
    )


def test_rules_are_a_validated_copy(tmp_path: Path) -> None:
    path = write_xml(tmp_path, HAND_CASES["F"].tiles, '<neighbor left="f 0" right="e"/>')
    ts = load_tileset_xml(path, load_images=False)
    rules = ts.rules()
    assert rules.size == 9
    assert np.array_equal(rules.allowed, ts.allowed)
    assert rules.allowed is not ts.allowed
    assert not ts.allowed.flags.writeable


# ---------------------------------------------------------------------------------------------
# Images


def test_non_unique_variants_are_rotations_and_mirrors(tmp_path: Path) -> None:
    f, s = random_rgba(1), random_rgba(2)
    save_png(tmp_path / "f.png", f)
    save_png(tmp_path / "s.png", s)
    path = write_xml(tmp_path, '<tile name="f" symmetry="F"/><tile name="s" symmetry="I"/>')
    ts = load_tileset_xml(path)
    assert ts.images is not None
    assert ts.images.shape == (10, 4, 4, 4)
    assert ts.tile_size == 4
    want = [f, np.rot90(f), np.rot90(f, 2), np.rot90(f, 3)]
    want += [np.fliplr(w) for w in want]
    want += [s, np.rot90(s)]
    for k, picture in enumerate(want):
        assert np.array_equal(ts.images[k], picture), ts.variant_names[k]


def test_unique_set_loads_one_file_per_variant(tmp_path: Path) -> None:
    pictures = [random_rgba(10 + k) for k in range(4)]
    for k, picture in enumerate(pictures):
        save_png(tmp_path / f"c {k}.png", picture)
    save_png(tmp_path / "e 0.png", random_rgba(20))
    ts = load_tileset_xml(write_xml(tmp_path, HAND_CASES["L"].tiles, unique="True"))
    assert ts.images is not None
    for k, picture in enumerate(pictures):
        assert np.array_equal(ts.images[k], picture)
    assert np.array_equal(ts.images[4], random_rgba(20))


def test_images_in_subfolder_named_after_tileset(tmp_path: Path) -> None:
    save_png(tmp_path / "t" / "a.png", random_rgba(3))
    ts = load_tileset_xml(write_xml(tmp_path, '<tile name="a"/>'))
    assert ts.images is not None
    assert np.array_equal(ts.images[0], random_rgba(3))


def test_grey_and_palette_images_become_rgba(tmp_path: Path) -> None:
    Image.new("L", (2, 2), 7).save(tmp_path / "a.png")
    ts = load_tileset_xml(write_xml(tmp_path, '<tile name="a"/>'))
    assert ts.images is not None
    assert ts.images[0].tolist() == [[[7, 7, 7, 255]] * 2] * 2


@pytest.mark.parametrize("size", [MAX_IMAGE_SIZE, MAX_IMAGE_SIZE + 1])
def test_image_size_limit(tmp_path: Path, size: int) -> None:
    save_png(tmp_path / "a.png", np.zeros((size, size, 4), dtype=np.uint8))
    path = write_xml(tmp_path, '<tile name="a"/>')
    if size <= MAX_IMAGE_SIZE:
        assert load_tileset_xml(path).tile_size == size
    else:
        with pytest.raises(TilesetError, match=f"at most {MAX_IMAGE_SIZE} px"):
            load_tileset_xml(path)


# ---------------------------------------------------------------------------------------------
# The shared sample tilesets


def edge_rule(images: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    """allowed from pixels: a left of b iff a's right column == b's left column, etc."""
    t = images.shape[0]
    right = images[:, :, -1].reshape(t, -1)
    left = images[:, :, 0].reshape(t, -1)
    bottom = images[:, -1].reshape(t, -1)
    top = images[:, 0].reshape(t, -1)
    a_left_of_b = (right[:, None] == left[None]).all(axis=-1)
    b_below_a = (bottom[:, None] == top[None]).all(axis=-1)
    return np.stack([a_left_of_b.T, b_below_a, a_left_of_b, b_below_a.T])


@pytest.mark.parametrize(
    ("name", "subset"),
    [
        ("terrain", None),
        ("pipes", None),
        ("pipes", "thin"),
        ("pipes", "thick"),
        ("dungeon", None),
        ("dungeon", "rooms"),
        ("dungeon", "corridors"),
    ],
)
def test_shared_tilesets_match_pixel_edges(name: str, subset: str | None) -> None:
    ts = load_tileset(shared(name), subset)
    assert ts.images is not None
    assert ts.allowed.any()
    assert np.array_equal(ts.allowed, edge_rule(ts.images))
    ts.rules()  # symmetric, positive weights


@pytest.mark.parametrize(
    ("name", "tiles", "variants", "size"),
    [("terrain", 22, 68, 16), ("pipes", 13, 35, 8), ("dungeon", 15, 46, 16)],
)
def test_shared_tileset_counts(name: str, tiles: int, variants: int, size: int) -> None:
    ts = load_tileset(shared(name))
    assert len(set(ts.tile_of_variant)) == tiles
    assert ts.size == variants == len(ts.weights) == len(ts.classes)
    assert ts.tile_size == size


def test_shared_subsets_and_classes() -> None:
    thin = load_tileset(shared("pipes"), "thin", load_images=False)
    assert set(thin.tile_of_variant) == {
        "empty",
        "straight",
        "corner",
        "tee",
        "cross",
        "endcap",
        "bridge",
        "valve",
    }
    rooms = load_tileset(shared("dungeon"), "rooms", load_images=False)
    assert "corridor" not in rooms.tile_of_variant
    terrain = load_tileset(shared("terrain"), load_images=False)
    assert terrain.class_names() == ("ocean", "lowland", "highland")
    assert terrain.classes[terrain.variant_id("water 0")] == "ocean"


@pytest.mark.parametrize("name", SHARED_NAMES)
def test_json_round_trip(tmp_path: Path, name: str) -> None:
    source = shared(name)
    folder = tmp_path / name
    shutil.copytree(source.parent, folder)
    doc = tileset_to_json(source)
    json_path = write_json(folder, doc, f"{name}.json")
    from_xml = load_tileset(source)
    from_json = load_tileset(json_path)
    assert from_json.name == from_xml.name == name
    assert from_json.variant_names == from_xml.variant_names
    assert from_json.tile_of_variant == from_xml.tile_of_variant
    assert from_json.classes == from_xml.classes
    assert np.array_equal(from_json.weights, from_xml.weights)
    assert np.array_equal(from_json.allowed, from_xml.allowed)
    assert from_json.images is not None
    assert from_xml.images is not None
    assert np.array_equal(from_json.images, from_xml.images)
    for subset in doc["subsets"]:
        a, b = load_tileset(json_path, subset), load_tileset(source, subset)
        assert a.variant_names == b.variant_names
        assert np.array_equal(a.allowed, b.allowed)


# ---------------------------------------------------------------------------------------------
# JSON format


def json_doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": "worldgen-tileset",
        "version": 1,
        "tiles": [{"name": "c", "symmetry": "L", "weight": 2}, {"name": "e", "class": "sea"}],
        "neighbors": [{"left": "c 1", "right": "e"}],
        "subsets": {"just_e": ["e"]},
        "comment": "unknown keys are ignored",
    }
    doc.update(changes)
    return doc


def test_json_means_the_same_as_xml(tmp_path: Path) -> None:
    ts = load_tileset_json(write_json(tmp_path, json_doc()), load_images=False)
    case = HAND_CASES["L"]
    assert triples(ts) == expected(case.horizontal, case.vertical)
    assert ts.weights.tolist() == [2.0] * 4 + [1.0]
    assert ts.classes == (None,) * 4 + ("sea",)
    assert load_tileset_json(tmp_path / "t.json", "just_e", load_images=False).size == 1


def test_json_explicit_images_and_tile_size(tmp_path: Path) -> None:
    save_png(tmp_path / "pics" / "one.png", random_rgba(5))
    tiles = [{"name": "a", "symmetry": "I", "image": "pics/one.png"}]
    ts = load_tileset_json(write_json(tmp_path, json_doc(tiles=tiles, neighbors=[], tile_size=4)))
    assert ts.images is not None
    assert np.array_equal(ts.images[1], np.rot90(random_rgba(5)))
    with pytest.raises(TilesetError, match="tile_size is 8"):
        load_tileset_json(write_json(tmp_path, json_doc(tiles=tiles, neighbors=[], tile_size=8)))


def test_json_unique_images(tmp_path: Path) -> None:
    for k in range(2):
        save_png(tmp_path / f"v{k}.png", random_rgba(30 + k))
    tiles = [{"name": "d", "symmetry": "\\", "images": ["v0.png", "v1.png"]}]
    ts = load_tileset_json(write_json(tmp_path, json_doc(tiles=tiles, neighbors=[], unique=True)))
    assert ts.images is not None
    assert np.array_equal(ts.images[1], random_rgba(31))


@pytest.mark.parametrize("count", [MAX_TILES, MAX_TILES + 1])
def test_tile_count_limit(tmp_path: Path, count: int) -> None:
    tiles = [{"name": f"t{i}"} for i in range(count)]
    path = write_json(tmp_path, json_doc(tiles=tiles, neighbors=[], subsets={}))
    if count <= MAX_TILES:
        assert load_tileset_json(path, load_images=False).size == count
    else:
        with pytest.raises(TilesetError, match=f"at most {MAX_TILES} are allowed"):
            load_tileset_json(path, load_images=False)


def test_tile_count_limit_xml(tmp_path: Path) -> None:
    path = write_xml(tmp_path, "".join(f'<tile name="t{i}"/>' for i in range(MAX_TILES + 1)))
    with pytest.raises(TilesetError, match=f"at most {MAX_TILES} are allowed"):
        load_tileset_xml(path, load_images=False)


@pytest.mark.parametrize("count", [MAX_NEIGHBORS, MAX_NEIGHBORS + 1])
def test_neighbor_count_limit(tmp_path: Path, count: int) -> None:
    neighbors = [{"left": "e", "right": "e"}] * count
    path = write_json(tmp_path, json_doc(neighbors=neighbors))
    if count <= MAX_NEIGHBORS:
        assert load_tileset_json(path, load_images=False).allowed[0, 4, 4]
    else:
        with pytest.raises(TilesetError, match=f"at most {MAX_NEIGHBORS} are allowed"):
            load_tileset_json(path, load_images=False)


@pytest.mark.parametrize("extra", [0, 1])
def test_file_size_limit(tmp_path: Path, extra: int) -> None:
    text = json.dumps(json_doc())
    path = tmp_path / "t.json"
    path.write_text(text + " " * (MAX_FILE_BYTES - len(text) + extra), encoding="utf-8")
    if extra == 0:
        assert load_tileset_json(path, load_images=False).size == 5
    else:
        with pytest.raises(TilesetError, match="larger than"):
            load_tileset_json(path, load_images=False)


BAD_JSON: dict[str, tuple[dict[str, Any], str]] = {
    "format": (json_doc(format="other"), '"format" must be "worldgen-tileset"'),
    "version": (json_doc(version=2), '"version" is 2'),
    "version-bool": (json_doc(version=True), '"version" is True'),
    "unique": (json_doc(unique="yes"), '"unique" must be true or false'),
    "tile_size": (json_doc(tile_size=0), '"tile_size" must be an integer'),
    "tiles-type": (json_doc(tiles={"c": {}}), '"tiles" must be a JSON list'),
    "no-tiles": (json_doc(tiles=[], neighbors=[], subsets={}), "no tiles"),
    "tile-type": (json_doc(tiles=["c"]), r"tiles\[0\] must be a JSON object"),
    "name-missing": (json_doc(tiles=[{"weight": 1}]), r"tiles\[0\].name must be a string"),
    "weight-string": (json_doc(tiles=[{"name": "e", "weight": "2"}]), 'tile "e": weight'),
    "weight-bool": (json_doc(tiles=[{"name": "e", "weight": True}]), 'tile "e": weight'),
    "weight-zero": (json_doc(tiles=[{"name": "e", "weight": 0}]), "finite and > 0"),
    "class-type": (json_doc(tiles=[{"name": "e", "class": 3}]), 'tile "e": class must be'),
    "symmetry": (json_doc(tiles=[{"name": "e", "symmetry": "Z"}]), 'unknown symmetry "Z"'),
    "neighbor-type": (json_doc(neighbors=[["c", "e"]]), r"neighbors\[0\] must be a JSON object"),
    "neighbor-left": (json_doc(neighbors=[{"right": "e"}]), r"neighbors\[0\].left must be"),
    "neighbor-unknown": (json_doc(neighbors=[{"left": "x", "right": "e"}]), 'unknown tile "x"'),
    "subsets-type": (json_doc(subsets=["e"]), '"subsets" must be a JSON object'),
    "subset-member": (json_doc(subsets={"s": [1]}), 'subset "s" entry must be a string'),
    "image-escape": (
        json_doc(tiles=[{"name": "e", "image": "../e.png"}]),
        "must be a relative path inside the tileset folder",
    ),
    "image-absolute": (
        json_doc(tiles=[{"name": "e", "image": "/etc/e.png"}]),
        "must be a relative path",
    ),
    "images-on-non-unique": (
        json_doc(tiles=[{"name": "e", "images": ["e.png"]}]),
        'non-unique set gives one "image"',
    ),
    "image-on-unique": (
        json_doc(unique=True, tiles=[{"name": "e", "image": "e.png"}]),
        'unique set gives "images"',
    ),
    "images-count": (
        json_doc(unique=True, tiles=[{"name": "e", "symmetry": "I", "images": ["a.png"]}]),
        "images lists 1 files but symmetry I has 2 variants",
    ),
}


@pytest.mark.parametrize(("doc", "phrase"), BAD_JSON.values(), ids=BAD_JSON.keys())
def test_json_errors(tmp_path: Path, doc: dict[str, Any], phrase: str) -> None:
    with pytest.raises(TilesetError, match=phrase) as info:
        load_tileset_json(write_json(tmp_path, doc), load_images=False)
    assert str(info.value).startswith("tileset t.json: ")


def test_xml_file_size_limit(tmp_path: Path) -> None:
    path = write_xml(tmp_path, '<tile name="a"/>' + " " * MAX_FILE_BYTES)
    with pytest.raises(TilesetError, match="larger than"):
        load_tileset_xml(path, load_images=False)


def test_json_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text('{\n  "format": "worldgen-tileset",\n  "tiles": [,]\n}', encoding="utf-8")
    with pytest.raises(TilesetError, match="malformed JSON at line 3"):
        load_tileset_json(path)


def test_json_document_not_an_object(tmp_path: Path) -> None:
    with pytest.raises(TilesetError, match="the document must be a JSON object"):
        load_tileset_json(write_json(tmp_path, [1, 2]))


def test_json_missing_explicit_image(tmp_path: Path) -> None:
    path = write_json(tmp_path, json_doc(tiles=[{"name": "e", "image": "e.png"}], neighbors=[]))
    with pytest.raises(TilesetError, match=r'missing image file "e\.png" for tile "e"'):
        load_tileset_json(path)


# ---------------------------------------------------------------------------------------------
# XML errors

XE = '<tile name="a"/><tile name="e"/>'
BAD_XML: dict[str, tuple[str, str, str, str]] = {
    # id: (tiles, neighbors, extra, phrase)
    "unknown-symmetry": (
        '<tile name="a" symmetry="Q"/>',
        "",
        "",
        r'unknown symmetry "Q"; use one of L T I \\ F X',
    ),
    "unknown-neighbor": (
        XE,
        '<neighbor left="pipx" right="e"/>',
        "",
        r'neighbor 1 \("pipx"\) names unknown tile "pipx" \(known tiles: a, e\)',
    ),
    "orientation-range": (
        XE,
        '<neighbor left="a 8" right="e"/>',
        "",
        'orientation 8 is out of range for tile "a" \\(use 0..7',
    ),
    "orientation-syntax": (XE, '<neighbor left="a b" right="e"/>', "", "is not of the form"),
    "orientation-unicode": (XE, '<neighbor left="a ²" right="e"/>', "", "is not of the form"),
    "neighbor-missing-side": (XE, '<neighbor left="a"/>', "", "needs both left and right"),
    "weight-text": ('<tile name="a" weight="heavy"/>', "", "", 'tile "a" has weight "heavy"'),
    "weight-zero": ('<tile name="a" weight="0"/>', "", "", "weights must be finite and > 0"),
    "weight-negative": ('<tile name="a" weight="-2"/>', "", "", "weights must be finite and > 0"),
    "weight-overflow": ('<tile name="a" weight="1e999"/>', "", "", "has weight inf"),
    "weight-nan": ('<tile name="a" weight="nan"/>', "", "", 'has weight "nan"'),
    "duplicate": (
        '<tile name="a"/><tile name="a" symmetry="L"/>',
        "",
        "",
        'duplicate tile name "a"',
    ),
    "no-name": ('<tile symmetry="L"/>', "", "", 'invalid tile name ""'),
    "space-in-name": ('<tile name="a b"/>', "", "", 'invalid tile name "a b"'),
    "no-tiles": ("", "", "", "no tiles"),
    "subset-unknown-tile": (
        XE,
        "",
        '<subsets><subset name="s"><tile name="z"/></subset></subsets>',
        'subset "s" names unknown tile "z"',
    ),
}


@pytest.mark.parametrize(
    ("tiles", "neighbors", "extra", "phrase"), BAD_XML.values(), ids=BAD_XML.keys()
)
def test_xml_errors(tmp_path: Path, tiles: str, neighbors: str, extra: str, phrase: str) -> None:
    path = write_xml(tmp_path, tiles, neighbors, extra)
    with pytest.raises(TilesetError, match=phrase) as info:
        load_tileset_xml(path, "s" if extra else None, load_images=False)
    assert str(info.value).startswith("tileset t.xml: ")


def test_unknown_subset_lists_known_ones(tmp_path: Path) -> None:
    extra = '<subsets><subset name="s1"><tile name="a"/></subset><subset name="s2"/></subsets>'
    path = write_xml(tmp_path, XE, "", extra)
    with pytest.raises(TilesetError, match=r'unknown subset "nope" \(known subsets: s1, s2\)'):
        load_tileset_xml(path, "nope", load_images=False)
    with pytest.raises(TilesetError, match='no tiles in subset "s2"'):
        load_tileset_xml(path, "s2", load_images=False)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TilesetError, match=r"tileset nothere\.xml: cannot read the file"):
        load_tileset(tmp_path / "nothere.xml")


def test_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(TilesetError, match=r'unknown file type "\.yaml"'):
        load_tileset(tmp_path / "t.yaml")


def test_malformed_xml(tmp_path: Path) -> None:
    path = tmp_path / "t.xml"
    path.write_text("<set>\n<tiles>\n<tile name='a'>\n</set>\n", encoding="utf-8")
    with pytest.raises(TilesetError, match=r"malformed XML .*line 4"):
        load_tileset_xml(path)


def test_wrong_root_element(tmp_path: Path) -> None:
    path = tmp_path / "t.xml"
    path.write_text("<tileset/>", encoding="utf-8")
    with pytest.raises(TilesetError, match="expected <set>"):
        load_tileset_xml(path)


@pytest.mark.parametrize(
    ("prolog", "message"),
    [
        ('<!DOCTYPE set [<!ENTITY x "y">]>', "DOCTYPE and ENTITY declarations are not allowed"),
        ('<!DOCTYPE set SYSTEM "file:///etc/passwd">', "DOCTYPE and ENTITY declarations"),
        # XML is case-sensitive: a lower-case doctype is not a declaration but broken markup
        ('<!doctype set SYSTEM "file:///etc/passwd">', "malformed XML"),
    ],
)
def test_doctype_is_refused(tmp_path: Path, prolog: str, message: str) -> None:
    path = tmp_path / "t.xml"
    path.write_text(
        f'<?xml version="1.0"?>\n{prolog}\n<set><tiles><tile name="a"/></tiles></set>',
        encoding="utf-8",
    )
    with pytest.raises(TilesetError, match=message):
        load_tileset_xml(path)


def test_bad_unique_attribute(tmp_path: Path) -> None:
    with pytest.raises(TilesetError, match='unique="yes" must be True or False'):
        load_tileset_xml(write_xml(tmp_path, XE, unique="yes"))


def test_missing_image(tmp_path: Path) -> None:
    save_png(tmp_path / "a.png", random_rgba(1))
    with pytest.raises(TilesetError, match=r'missing image file "e\.png" for tile "e"'):
        load_tileset_xml(write_xml(tmp_path, XE))
    with pytest.raises(TilesetError, match=r'missing image file "a 0\.png" for tile "a"'):
        load_tileset_xml(write_xml(tmp_path, XE, unique="True"))


def test_images_of_different_sizes(tmp_path: Path) -> None:
    save_png(tmp_path / "a.png", random_rgba(1, 4))
    save_png(tmp_path / "e.png", random_rgba(2, 5))
    with pytest.raises(TilesetError, match=r'"e\.png" is 5 px but "a\.png" is 4 px; .* same size'):
        load_tileset_xml(write_xml(tmp_path, XE))


def test_non_square_image(tmp_path: Path) -> None:
    save_png(tmp_path / "a.png", random_rgba(1, 4, 6))
    with pytest.raises(TilesetError, match=r'"a\.png" is 6x4 px; tiles must be square'):
        load_tileset_xml(write_xml(tmp_path, '<tile name="a"/>'))


def test_unreadable_image(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"not a png")
    with pytest.raises(TilesetError, match=r'cannot read image "a\.png"'):
        load_tileset_xml(write_xml(tmp_path, '<tile name="a"/>'))


def test_images_memo_gets_the_files_content_key_and_its_pictures_are_used(tmp_path: Path) -> None:
    """The memo is asked by the SHA-256 of the image files' bytes; what it returns (checked) is
    what the tileset is built from, and a memo that keeps the decoded pictures changes nothing."""
    f, s = random_rgba(1), random_rgba(2)
    save_png(tmp_path / "f.png", f)
    save_png(tmp_path / "s.png", s)
    path = write_xml(tmp_path, '<tile name="f" symmetry="F"/><tile name="s" symmetry="I"/>')
    plain = load_tileset_xml(path)
    kept: dict[str, npt.NDArray[np.uint8]] = {}
    calls: list[str] = []

    def memo(key: str, decode: Callable[[], npt.NDArray[np.uint8]]) -> npt.NDArray[np.uint8]:
        calls.append(key)
        if key not in kept:
            kept[key] = decode()
        return kept[key]

    first, second = load_tileset(path, images_memo=memo), load_tileset(path, images_memo=memo)
    assert plain.images is not None
    assert first.images is not None
    assert second.images is not None
    assert np.array_equal(first.images, plain.images)
    assert np.array_equal(second.images, plain.images)
    assert len(calls) == 2
    assert calls[0] == calls[1]
    assert re.fullmatch(r"[0-9a-f]{64}", calls[0])
    assert np.array_equal(kept[calls[0]], np.stack([f, s]))  # the files' pictures, in order
    save_png(tmp_path / "s.png", random_rgba(3))  # new content, new key
    load_tileset(path, images_memo=memo)
    assert calls[2] != calls[0]


@pytest.mark.parametrize(
    "returned",
    [
        np.zeros((1, 4, 4, 4), np.uint8),  # too few pictures
        np.zeros((2, 4, 4, 3), np.uint8),  # RGB
        np.zeros((2, 4, 4, 4), np.int32),  # not bytes
        np.zeros((2, 0, 0, 4), np.uint8),  # empty
        np.zeros((2, 4, 5, 4), np.uint8),  # not square
        np.zeros(8, np.uint8),
    ],
)
def test_a_memo_that_returns_the_wrong_array_is_ignored(
    tmp_path: Path, returned: npt.NDArray[np.generic]
) -> None:
    save_png(tmp_path / "a.png", random_rgba(1))
    save_png(tmp_path / "e.png", random_rgba(2))
    path = write_xml(tmp_path, XE)
    ts = load_tileset(path, images_memo=lambda key, decode: returned)  # type: ignore[arg-type,return-value]
    plain = load_tileset(path)
    assert ts.images is not None
    assert plain.images is not None
    assert np.array_equal(ts.images, plain.images)


def test_images_memo_sees_decoding_errors(tmp_path: Path) -> None:
    save_png(tmp_path / "a.png", random_rgba(1, 4))
    save_png(tmp_path / "e.png", random_rgba(2, 5))

    def memo(key: str, decode: Callable[[], npt.NDArray[np.uint8]]) -> npt.NDArray[np.uint8]:
        return decode()

    with pytest.raises(TilesetError, match=r'"e\.png" is 5 px but "a\.png" is 4 px'):
        load_tileset_xml(write_xml(tmp_path, XE), images_memo=memo)


# ---------------------------------------------------------------------------------------------
# Rendering


def test_render_tiled_places_variant_images() -> None:
    ts = load_tileset(shared("pipes"))
    assert ts.images is not None
    s = ts.tile_size
    grid = np.random.default_rng(7).integers(-1, ts.size, size=(3, 5)).astype(np.int32)
    grid[0, 0] = -1
    out = render_tiled(ts, grid)
    assert out.shape == (3 * s, 5 * s, 4)
    assert out.dtype == np.uint8
    for y in range(3):
        for x in range(5):
            cell = out[y * s : (y + 1) * s, x * s : (x + 1) * s]
            if grid[y, x] < 0:
                assert (cell == np.array(UNDETERMINED_RGBA, dtype=np.uint8)).all()
            else:
                assert np.array_equal(cell, ts.images[grid[y, x]])


def test_render_tiled_rejects_bad_input(tmp_path: Path) -> None:
    save_png(tmp_path / "a.png", random_rgba(1))
    ts = load_tileset_xml(write_xml(tmp_path, '<tile name="a"/>'))
    with pytest.raises(InputError, match=r"outside -1\.\.0"):
        render_tiled(ts, np.array([[1]], dtype=np.int32))
    with pytest.raises(InputError, match="2-D integer array"):
        render_tiled(ts, np.zeros(3, dtype=np.int32))
    bare = load_tileset_xml(tmp_path / "t.xml", load_images=False)
    with pytest.raises(TilesetError, match="loaded without images"):
        render_tiled(bare, np.zeros((1, 1), dtype=np.int32))


def test_orientation_beyond_cardinality_is_the_classic_action(tmp_path: Path) -> None:
    """Classic semantics: "a k" is action k of variant 0, so "e 3" on an X tile means "e 0"."""
    body = (
        '<set><tiles><tile name="a" symmetry="L"/><tile name="e"/></tiles>'
        "<neighbors>{}</neighbors></set>"
    )
    plain = tmp_path / "plain.xml"
    plain.write_text(body.format('<neighbor left="a 1" right="e 0"/>'))
    beyond = tmp_path / "beyond.xml"
    beyond.write_text(body.format('<neighbor left="a 5" right="e 3"/>'))
    # By hand: for L, action 5 of variant 0 is b(a(0)) = b(1) = 0, so "a 5" names variant 0;
    # "e 3" on an X tile names variant 0.
    explicit = tmp_path / "explicit.xml"
    explicit.write_text(body.format('<neighbor left="a 0" right="e 0"/>'))
    got = load_tileset(beyond, load_images=False).allowed
    assert np.array_equal(got, load_tileset(explicit, load_images=False).allowed)
    assert not np.array_equal(got, load_tileset(plain, load_images=False).allowed)
