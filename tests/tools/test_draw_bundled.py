"""The bundled tilesets and samples: reproducible from tools/draw_bundled.py and correct.

The committed files are read back on their own terms (XML parsed here, PNGs loaded with Pillow,
variants built by the rotation/mirror rules, neighbour entries expanded as the classic
SimpleTiledModel does) and checked against the rules stated in the script's docstring.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

TOOLS = Path(__file__).resolve().parents[2] / "tools"
if str(TOOLS) not in sys.path:
    sys.path.insert(0, str(TOOLS))

import draw_bundled  # noqa: E402

Img = npt.NDArray[np.uint8]
Variant = tuple[str, int]
Pair = tuple[Variant, Variant]
ROOT = draw_bundled.TILESETS_DIR
TILESETS = ["terrain", "pipes", "roads"]
CLASSES = {"ocean", "lowland", "highland"}

_Act = Callable[[int], int]
# The classic action table, written out again here so the script is checked independently.
ACTION: dict[str, tuple[int, _Act, _Act]] = {
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


class Loaded:
    """A committed tileset read back: tiles in order, every variant's pixels, neighbour pairs."""

    def __init__(self, name: str) -> None:
        folder = ROOT / name
        root = ET.parse(folder / f"{name}.xml").getroot()
        self.unique = root.get("unique") == "True"
        self.tiles = {
            t.get("name", ""): t.attrib for t in root.iter("tile") if "symmetry" in t.attrib
        }
        self.images: dict[Variant, Img] = {}
        for tname, attrs in self.tiles.items():
            card = ACTION[attrs["symmetry"]][0]
            if self.unique:
                for k in range(card):
                    self.images[tname, k] = load(folder / f"{tname} {k}.png")
            else:
                first = load(folder / f"{tname}.png")
                for k in range(card):
                    img = np.rot90(first, k % 4)
                    self.images[tname, k] = np.fliplr(img) if k >= 4 else img
        self.entries: list[Pair] = []
        for el in root.iter("neighbor"):
            self.entries.append((ref(el.get("left", "")), ref(el.get("right", ""))))
        self.subsets = {
            el.get("name", ""): [t.get("name", "") for t in el.iter("tile")]
            for el in root.iter("subset")
        }

    def act(self, v: Variant, which: int) -> Variant:
        """Apply a (which=1) or b (which=2) to a variant."""
        _, a, b = ACTION[self.tiles[v[0]]["symmetry"]]
        return (v[0], a(v[1]) if which == 1 else b(v[1]))

    def expanded(self) -> set[Pair]:
        """Horizontal pairs (left, right) the classic loader derives from the entries."""
        out: set[Pair] = set()
        for left, right in self.entries:
            l2 = self.act(self.act(left, 1), 1)
            r2 = self.act(self.act(right, 1), 1)
            out |= {(left, right), (self.act(right, 2), self.act(left, 2)), (r2, l2)}
            out.add((self.act(l2, 2), self.act(r2, 2)))
        return out


def load(path: Path) -> Img:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def ref(text: str) -> Variant:
    name, _, k = text.partition(" ")
    return (name, int(k) if k else 0)


@pytest.fixture(scope="module", params=TILESETS)
def tileset(request: pytest.FixtureRequest) -> Loaded:
    name = request.param
    assert isinstance(name, str)
    return Loaded(name)


def test_redrawing_gives_the_committed_bytes(tmp_path: Path) -> None:
    draw_bundled.write_all(tmp_path)
    drawn = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()}
    committed = {
        p.relative_to(ROOT)
        for p in ROOT.rglob("*")
        if p.is_file() and p.suffix not in {".py", ".pyc"} and "__pycache__" not in p.parts
    }
    assert drawn == committed
    for rel in sorted(drawn):
        assert (tmp_path / rel).read_bytes() == (ROOT / rel).read_bytes(), f"{rel} drifted"


def test_declared_symmetries_hold_for_every_tile(tileset: Loaded) -> None:
    for tname, attrs in tileset.tiles.items():
        card, a, b = ACTION[attrs["symmetry"]]
        for i in range(card):
            img = tileset.images[tname, i]
            assert img.shape[0] == img.shape[1] == draw_bundled.S
            assert np.array_equal(tileset.images[tname, a(i)], np.rot90(img)), (tname, i)
            assert np.array_equal(tileset.images[tname, b(i)], np.fliplr(img)), (tname, i)
        assert float(attrs["weight"]) > 0


def test_neighbour_entries_are_exactly_the_matching_pictures(tileset: Loaded) -> None:
    images = tileset.images
    matching = {
        (v, w) for v in images for w in images if np.array_equal(images[v][:, -1], images[w][:, 0])
    }
    assert tileset.expanded() == matching
    # vertical rules are the horizontal ones turned a quarter: right above left
    vertical = {(tileset.act(r, 1), tileset.act(left, 1)) for left, r in matching}
    above = {(v, w) for v in images for w in images if np.array_equal(images[v][-1], images[w][0])}
    assert vertical == above


def test_every_variant_has_neighbours_on_all_sides(tileset: Loaded) -> None:
    pairs = tileset.expanded()
    groups = {"": list(tileset.tiles), **tileset.subsets}
    for group, names in groups.items():
        inside = {v for v in tileset.images if v[0] in names}
        within = {(a, b) for a, b in pairs if a in inside and b in inside}
        assert {a for a, _ in within} == inside, f"{group}: a variant has no right neighbour"
        assert {b for _, b in within} == inside, f"{group}: a variant has no left neighbour"


def test_terrain_classes_and_ocean_never_meets_highland() -> None:
    terrain = Loaded("terrain")
    # a class may carry climate tags after a colon (class="lowland:dry"); the class is before it
    classes = {name: attrs["class"].split(":")[0] for name, attrs in terrain.tiles.items()}
    assert set(classes.values()) == CLASSES
    fills = {name for name, attrs in terrain.tiles.items() if attrs["symmetry"] == "X"}
    assert {classes[n] for n in fills} == CLASSES
    for left, right in terrain.expanded():
        pair = {classes[left[0]], classes[right[0]]}
        assert pair != {"ocean", "highland"}, (left, right)
        if left[0] in fills and classes[left[0]] == "ocean":
            assert classes[right[0]] != "highland"


def test_symmetry_classes_and_storage_modes_used() -> None:
    used = {a["symmetry"] for name in TILESETS for a in Loaded(name).tiles.values()}
    assert used == set(ACTION)
    assert {Loaded(name).unique for name in TILESETS} == {True, False}
    assert any(Loaded(name).subsets for name in TILESETS)


def test_catalog_samples_and_licence() -> None:
    catalog = json.loads((ROOT / "catalog.json").read_text(encoding="utf-8"))
    assert {e["name"] for e in catalog if e["kind"] == "tiled"} == set(TILESETS)
    samples = [e for e in catalog if e["kind"] == "overlapping"]
    assert len(samples) >= 3
    for entry in catalog:
        assert set(entry) == {"name", "kind", "path", "description", "defaults"}
        assert (ROOT / entry["path"]).is_file()
        if entry["kind"] == "tiled":
            assert entry["defaults"] == {"subset": None}
            continue
        d = entry["defaults"]
        assert d["N"] == 3
        assert d["symmetry"] in (2, 8)
        assert d["periodic_input"] is True
        assert d["ground"] == (d["symmetry"] == 2)
        img = load(ROOT / entry["path"])
        assert img.shape[0] == img.shape[1]
        assert 16 <= img.shape[0] <= 48
        colours, idx = np.unique(img.reshape(-1, 3), axis=0, return_inverse=True)
        assert 2 <= len(colours) <= 8
        count = draw_bundled.count_patterns(np.asarray(idx).reshape(img.shape[:2]), 3, 8)
        assert 40 <= count <= 250, (entry["name"], count)
    licence = (ROOT / "LICENSE.txt").read_text(encoding="utf-8")
    assert "CC0 1.0" in licence.splitlines()[0]
    listed = {line.split(":")[0][2:] for line in licence.splitlines() if line.startswith("- ")}
    on_disk = {p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*") if p.is_file()}
    assert listed == {p for p in on_disk if not p.endswith((".py", ".pyc"))}


def test_pattern_counter_on_a_tiny_image() -> None:
    stripes = np.array([[0, 1], [0, 1]], dtype=np.int64)  # vertical stripes, period 2
    assert draw_bundled.count_patterns(stripes, 2, 1) == 2
    assert draw_bundled.count_patterns(stripes, 2, 8) == 4
