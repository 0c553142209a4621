"""The ``highlands`` test tileset: a hard simple-tiled model, drawn here in code (CC0 1.0).

Four terrain bands (water < sand < grass < snow) meet only band to band, through edge and corner
tiles; on the grass run *cliffs* and *roads*, lines that never end. A cliff is one-sided: a
height step between two grass areas that look alike, with a high side (light face ``h``) and a
low side (shadow ``l``), so a cliff must close into a loop or run into the border, and where two
cliffs meet their high sides must agree — constraints no local check sees, as in the classic
"Summer" set. Many solves need repairs, some need restarts.

Every tile is a 5x5 grid of *marks* (one letter each); a tile may sit right of another when their
touching mark columns are equal (below: rows), which :func:`check` verifies against the loaded
tileset in all four directions. The pictures are the marks, :data:`PX` pixels each.
Run ``python -m tests.engine.highlands`` to redraw ``tests/data/tilesets/highlands``.
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
import numpy.typing as npt
from PIL import Image

from worldgen.engine.tileset import Tileset, cardinality, load_tileset

FOLDER = Path(__file__).resolve().parents[1] / "data" / "tilesets" / "highlands"
PX = 3
BANDS = "wdgk"  # water, sand (dune), grass, snow: neighbours in this order only

COLOURS: dict[str, tuple[int, int, int]] = {
    "w": (44, 94, 196),
    "d": (222, 204, 132),
    "g": (92, 168, 72),
    "k": (238, 240, 248),
    "r": (156, 124, 84),
    "h": (150, 186, 110),
    "c": (84, 72, 60),
    "l": (56, 112, 48),
}

Marks = npt.NDArray[np.str_]


@dataclass(frozen=True)
class Tile:
    """One tile of the set: its name, symmetry class, weight and marks (orientation 0)."""

    name: str
    symmetry: str
    weight: float
    marks: Marks


def grid(rows: list[str]) -> Marks:
    return np.array([list(r) for r in rows])


def corner_tile(nw: str, ne: str, se: str, sw: str) -> Marks:
    """Marks of a band transition: corners as given, each border cell takes the nearer corner
    (the middle one the higher band), the inside the nearest corner (ties: the higher band)."""
    corners = {(0, 0): nw, (0, 4): ne, (4, 4): se, (4, 0): sw}
    out = np.empty((5, 5), dtype="<U1")
    for y in range(5):
        for x in range(5):
            best = min(abs(y - cy) + abs(x - cx) for cy, cx in corners)
            near = [v for (cy, cx), v in corners.items() if abs(y - cy) + abs(x - cx) == best]
            out[y, x] = max(near, key=BANDS.index)
    return out


def tiles() -> list[Tile]:
    """The whole set, in file order."""
    weights = (2.0, 1.0, 3.0, 1.0)
    out = [Tile(b, "X", w, corner_tile(b, b, b, b)) for b, w in zip(BANDS, weights, strict=True)]
    for lo, hi in itertools.pairwise(BANDS):
        out.append(Tile(f"{lo}{hi}_edge", "T", 0.6, corner_tile(hi, hi, lo, lo)))
        out.append(Tile(f"{lo}{hi}_out", "L", 0.3, corner_tile(lo, hi, lo, lo)))
        out.append(Tile(f"{lo}{hi}_in", "L", 0.3, corner_tile(hi, hi, hi, lo)))
    out += [
        Tile("cliff", "T", 2.0, grid(["ggggg", "hhhhh", "ccccc", "lllll", "ggggg"])),
        Tile("cliff_out", "L", 1.0, grid(["glchg", "glchh", "glccc", "gllll", "ggggg"])),
        Tile("cliff_in", "L", 1.0, grid(["ggggg", "hhhhg", "ccchg", "llchg", "glchg"])),
        Tile("road", "I", 0.6, grid(["ggrgg"] * 5)),
        Tile("road_turn", "L", 0.4, grid(["ggrgg", "ggrgg", "ggrrr", "ggggg", "ggggg"])),
        Tile("road_t", "T", 0.05, grid(["ggggg", "ggggg", "rrrrr", "ggrgg", "ggrgg"])),
    ]
    return out


def variants(tile: Tile) -> list[Marks]:
    """The oriented variants, made exactly as the loader makes pictures of a non-unique set."""
    out = [tile.marks]
    for k in range(1, cardinality(tile.symmetry)):
        out.append(np.rot90(out[k - 1]) if k < 4 else np.fliplr(out[k - 4]))
    return out


def draw(folder: Path = FOLDER) -> None:
    """Write the pictures and ``highlands.xml`` (neighbours from the marks) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    chosen = tiles()
    oriented = [(t.name, k, v) for t in chosen for k, v in enumerate(variants(t))]
    pairs = [
        (f"{a} {ka}", f"{b} {kb}")
        for a, ka, va in oriented
        for b, kb, vb in oriented
        if np.array_equal(va[:, -1], vb[:, 0])
    ]
    for t in chosen:
        rgb = np.array([[COLOURS[m] for m in row] for row in t.marks], dtype=np.uint8)
        big = np.repeat(np.repeat(rgb, PX, axis=0), PX, axis=1)
        Image.fromarray(big, "RGB").save(folder / f"{t.name}.png", optimize=False)
    lines = ['<set unique="False">', "  <tiles>"]
    for t in chosen:
        lines.append(f'    <tile name="{t.name}" symmetry="{t.symmetry}" weight="{t.weight}"/>')
    lines += ["  </tiles>", "  <neighbors>"]
    lines += [f"    <neighbor left={quoteattr(a)} right={quoteattr(b)}/>" for a, b in pairs]
    lines += ["  </neighbors>", "</set>", ""]
    (folder / "highlands.xml").write_text("\n".join(lines))
    (folder / "LICENSE.txt").write_text(
        "The highlands tileset (pictures and highlands.xml) was drawn by worldgen's test code\n"
        "(tests/engine/highlands.py) and is dedicated to the public domain under CC0 1.0:\n"
        "https://creativecommons.org/publicdomain/zero/1.0/\n"
    )


def load(folder: Path = FOLDER) -> Tileset:
    return load_tileset(folder / "highlands.xml", load_images=False)


def check(tileset: Tileset) -> None:
    """The loaded adjacency is exactly mark matching, in every direction (AssertionError if not)."""
    marks = {f"{t.name} {k}": v for t in tiles() for k, v in enumerate(variants(t))}
    m = [marks[name] for name in tileset.variant_names]
    n = len(m)
    want = np.zeros((4, n, n), dtype=np.bool_)
    for i in range(n):
        for j in range(n):
            want[2, i, j] = np.array_equal(m[i][:, -1], m[j][:, 0])
            want[1, i, j] = np.array_equal(m[i][-1, :], m[j][0, :])
    want[0] = want[2].T
    want[3] = want[1].T
    if not np.array_equal(want, tileset.allowed):
        raise AssertionError("highlands: loaded neighbours differ from the marks")


if __name__ == "__main__":  # pragma: no cover - redraws the committed files
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else FOLDER
    draw(target)
    check(load(target))
