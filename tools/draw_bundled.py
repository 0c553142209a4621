"""Draw worldgen's bundled tilesets and overlapping-model samples, deterministically, in code.

Writes under ``src/worldgen/tilesets/``: three SimpleTiledModel tilesets in the classic XML
format (``terrain``, ``pipes``, ``roads``), sample bitmaps under ``samples/``, ``LICENSE.txt``
and ``catalog.json``. The only randomness is :func:`ihash` of a fixed seed and every file is
written with fixed settings, so running the script twice gives identical bytes (the test suite
re-draws everything into a temporary directory and compares with the committed files).

Invariants checked while drawing (:func:`check` raises AssertionError, even under ``-O``):

* every tile's pixels obey its declared symmetry class under the classic action table
  (:data:`ACTIONS`: variant ``a(i)`` is ``np.rot90`` of variant ``i``, ``b(i)`` its ``np.fliplr``);
* neighbour rules come from the pictures: variant A may sit left of variant B exactly when A's
  rightmost pixel column equals B's leftmost one; one pair per orbit of the classic expansion
  group (identity, mirror, half turn, vertical flip) is written, and the orbits of the written
  pairs are exactly the matching pairs;
* every oriented variant has a left and a right neighbour, in the whole set and in each subset
  (vertical neighbours are rotated horizontal ones, so that covers all four sides), and one of
  another tile (:func:`check_escape`: no tile that can only continue as itself);
* in ``terrain`` (a corner grid) picture matching equals corner matching, and no ``ocean`` tile
  touches a ``highland`` tile.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

Img = npt.NDArray[np.uint8]  # (s, s, 3) RGB, indexed img[y][x], y downwards
Mask = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]
Colour = tuple[int, int, int]
Layer = tuple[Mask, Colour]
Variant = tuple[int, int]  # (tile index, oriented variant k)
Pair = tuple[Variant, Variant]  # (left, right)

SEED = 20240611
S = 16  # tile size in pixels, for every bundled tileset
TILESETS_DIR = Path(__file__).resolve().parents[1] / "src" / "worldgen" / "tilesets"


def check(condition: bool, message: str) -> None:
    """Raise AssertionError when an invariant of the drawn data is broken."""
    if not condition:
        raise AssertionError(message)


def ihash(*values: int) -> int:
    """A 32-bit integer hash of SEED and ``values`` (multiply-xorshift rounds); never random."""
    h = SEED & 0xFFFFFFFF
    for v in values:
        h = ((h ^ (v & 0xFFFFFFFF)) * 0x9E3779B1) & 0xFFFFFFFF
        h ^= h >> 16
        h = (h * 0x85EBCA6B) & 0xFFFFFFFF
        h ^= h >> 13
    return h


# ---------------------------------------------------------------- symmetry and neighbours

_Act = Callable[[int], int]
ACTIONS: dict[str, tuple[int, _Act, _Act]] = {
    # class: (cardinality, a = quarter turn counter-clockwise, b = left-right mirror)
    "L": (4, lambda i: (i + 1) % 4, lambda i: i + 1 if i % 2 == 0 else i - 1),
    "T": (4, lambda i: (i + 1) % 4, lambda i: i if i % 2 == 0 else 4 - i),
    "I": (2, lambda i: 1 - i, lambda i: i),
    "\\": (2, lambda i: 1 - i, lambda i: 1 - i),
    "F": (8, lambda i: (i + 1) % 4 if i < 4 else 4 + (i - 1) % 4, lambda i: (i + 4) % 8),
    "X": (1, lambda i: i, lambda i: i),
}


def variants_of(img: Img, symmetry: str) -> list[Img]:
    """Every oriented variant from variant 0: k quarter turns ccw for k < 4, then mirrors."""
    card = ACTIONS[symmetry][0]
    out = [np.ascontiguousarray(np.rot90(img, k)) for k in range(min(card, 4))]
    return out + [np.ascontiguousarray(np.fliplr(out[k - 4])) for k in range(4, card)]


def check_symmetry(name: str, symmetry: str, images: list[Img]) -> None:
    """Check image(a(i)) == rot90(image(i)) and image(b(i)) == fliplr(image(i)) for every i."""
    card, a, b = ACTIONS[symmetry]
    check(len(images) == card, f"{name}: {len(images)} images for class {symmetry}")
    for i, img in enumerate(images):
        check(np.array_equal(images[a(i)], np.rot90(img)), f"{name} {i}: turn breaks {symmetry}")
        check(np.array_equal(images[b(i)], np.fliplr(img)), f"{name} {i}: mirror breaks {symmetry}")


@dataclass
class Tile:
    """One ``<tile>``: the variant-0 picture defines it; ``images`` holds every variant."""

    name: str
    symmetry: str
    weight: float
    image: Img
    cls: str | None = None
    corners: tuple[int, ...] = ()  # terrain tiles: terrain at TL, TR, BR, BL of variant 0
    images: list[Img] = field(default_factory=list)
    tags: tuple[str, ...] = ()  # climate tags, written after the class: class="lowland:dry"

    def __post_init__(self) -> None:
        self.images = variants_of(self.image, self.symmetry)
        check_symmetry(self.name, self.symmetry, self.images)


@dataclass
class Tileset:
    """A SimpleTiledModel tileset; ``unique`` stores one PNG per oriented variant."""

    name: str
    unique: bool
    description: str
    tiles: list[Tile]
    subsets: dict[str, list[str]] = field(default_factory=dict)

    def variants(self) -> list[Variant]:
        """Every oriented variant ``(tile index, k)`` in file order."""
        return [(t, k) for t, tile in enumerate(self.tiles) for k in range(len(tile.images))]

    def image(self, v: Variant) -> Img:
        return self.tiles[v[0]].images[v[1]]


def pair_orbit(ts: Tileset, left: Variant, right: Variant) -> set[Pair]:
    """What the classic loader adds for one ``<neighbor>``: the pair, its mirror image, its half
    turn and its vertical flip (mirror and half turn swap the sides)."""
    (tl, kl), (tr, kr) = left, right
    _, al, bl = ACTIONS[ts.tiles[tl].symmetry]
    _, ar, br = ACTIONS[ts.tiles[tr].symmetry]
    return {
        (left, right),
        ((tr, br(kr)), (tl, bl(kl))),
        ((tr, ar(ar(kr))), (tl, al(al(kl)))),
        ((tl, bl(al(al(kl)))), (tr, br(ar(ar(kr))))),
    }


def matching_pairs(ts: Tileset) -> set[Pair]:
    """Every ordered pair (A, B) with A's rightmost pixel column equal to B's leftmost column."""
    by_left: dict[bytes, list[Variant]] = {}
    for v in ts.variants():
        by_left.setdefault(ts.image(v)[:, 0].tobytes(), []).append(v)
    return {(v, w) for v in ts.variants() for w in by_left.get(ts.image(v)[:, -1].tobytes(), [])}


def neighbour_rules(ts: Tileset) -> list[Pair]:
    """The matching pairs, one per orbit of :func:`pair_orbit`, checked to expand back exactly."""
    pairs = matching_pairs(ts)
    kept = sorted(p for p in pairs if p == min(pair_orbit(ts, *p)))
    expanded: set[Pair] = set().union(*(pair_orbit(ts, *p) for p in kept))
    check(expanded == pairs, f"{ts.name}: the matches are not closed under symmetry")
    return kept


def check_closure(ts: Tileset, pairs: set[Pair], names: Iterable[str]) -> None:
    """Check each variant of the tiles ``names`` has a left and a right neighbour among them."""
    inside = {v for v in ts.variants() if ts.tiles[v[0]].name in set(names)}
    has_left = {b for a, b in pairs if a in inside}
    has_right = {a for a, b in pairs if b in inside}
    for v in sorted(inside):
        where = f"{ts.name}: {ts.tiles[v[0]].name} {v[1]}"
        check(v in has_left and v in has_right, f"{where} lacks a horizontal neighbour")


def check_escape(ts: Tileset, pairs: set[Pair]) -> None:
    """Check each variant has a horizontal neighbour of another tile on both sides.

    Vertical neighbours are rotated horizontal ones, so this covers all four sides. A variant whose
    only neighbour on a side is its own tile forces a chain of that tile to run to the edge of the
    output: a plain solve draws lines across the whole picture and a world, whose blocks have
    pinned borders, can never place it at all.
    """
    other_right = {a for a, b in pairs if a[0] != b[0]}
    other_left = {b for a, b in pairs if a[0] != b[0]}
    for v in ts.variants():
        where = f"{ts.name}: {ts.tiles[v[0]].name} {v[1]}"
        check(v in other_right and v in other_left, f"{where} only ever neighbours its own tile")


def tileset_xml(ts: Tileset, rules: list[Pair]) -> str:
    """The classic XML text (LF line endings, fixed attribute order)."""

    def ref(v: Variant) -> str:
        return ts.tiles[v[0]].name + (f" {v[1]}" if v[1] else "")

    lines = [f'<set unique="{ts.unique}">', "  <tiles>"]
    for t in ts.tiles:
        tagged = f"{t.cls}:{'+'.join(t.tags)}" if t.tags else t.cls
        cls = f' class="{tagged}"' if t.cls else ""
        attrs = f'name="{t.name}" symmetry="{t.symmetry}" weight="{t.weight}"{cls}'
        lines.append(f"    <tile {attrs}/>")
    lines += ["  </tiles>", "  <neighbors>"]
    lines += [f'    <neighbor left="{ref(a)}" right="{ref(b)}"/>' for a, b in rules]
    lines.append("  </neighbors>")
    if ts.subsets:
        lines.append("  <subsets>")
        for sub, names in ts.subsets.items():
            lines.append(f'    <subset name="{sub}">')
            lines += [f'      <tile name="{n}"/>' for n in names]
            lines.append("    </subset>")
        lines.append("  </subsets>")
    return "\n".join([*lines, "</set>", ""])


# ---------------------------------------------------------------- drawing helpers (S x S)


def canvas(colour: Colour) -> Img:
    img = np.zeros((S, S, 3), dtype=np.uint8)
    img[:, :] = colour
    return img


def d4_speckle(salt: int, percent: int) -> Mask:
    """A speckle mask invariant under all 8 symmetries of the square, so borders always agree."""
    m = np.zeros((S, S), dtype=np.bool_)
    for y in range(S):
        for x in range(S):
            a, b = sorted((min(x, S - 1 - x), min(y, S - 1 - y)))
            m[y, x] = ihash(salt, a, b) % 100 < percent
    return m


def disc(cx2: int, cy2: int, r2: int) -> Mask:
    """Pixels whose centre is within ``r2/2`` of ``(cx2/2, cy2/2)``, all in half-pixel units
    (pixel x has its centre at x + 1/2, so ``cx2 = 16`` is the middle of a 16 px tile)."""
    y, x = np.mgrid[0:S, 0:S]
    return np.asarray((2 * x + 1 - cx2) ** 2 + (2 * y + 1 - cy2) ** 2 <= r2 * r2)


def rect(x0: int, y0: int, x1: int, y1: int) -> Mask:
    """The inclusive pixel rectangle ``[x0, x1] x [y0, y1]``."""
    m = np.zeros((S, S), dtype=np.bool_)
    m[y0 : y1 + 1, x0 : x1 + 1] = True
    return m


UP, LEFT, DOWN, RIGHT = 0, 1, 2, 3  # quarter turns ccw of an arm drawn to the top edge


def arms(layers: list[Layer], *ports: int) -> list[Layer]:
    """Union each layer (drawn for an arm to the top edge) over the arms to ``ports``.

    Unioning per layer before painting keeps a picture exactly as symmetric as its set of ports.
    """
    out = []
    for mask, colour in layers:
        union = np.zeros_like(mask)
        for p in ports:
            union |= np.rot90(mask, p)
        out.append((union, colour))
    return out


def paint(img: Img, *layers: Layer) -> Img:
    out = img.copy()
    for mask, colour in layers:
        out[mask] = colour
    return out


# ---------------------------------------------------------------- terrain (corner grid)

TERRAINS: list[tuple[str, str, Colour, Colour, int, float]] = [
    # name, class, base colour, texture colour, texture percent, weight of the plain tile
    ("deep", "ocean", (28, 62, 128), (38, 78, 146), 16, 6.0),
    ("shallow", "ocean", (52, 116, 186), (74, 140, 204), 12, 3.0),
    ("sand", "lowland", (224, 204, 146), (204, 180, 122), 14, 2.0),
    ("grass", "lowland", (108, 172, 72), (92, 152, 62), 16, 6.0),
    ("forest", "lowland", (44, 110, 52), (26, 76, 36), 30, 4.0),
    ("hills", "highland", (156, 128, 84), (128, 102, 66), 20, 3.0),
    ("mountain", "highland", (128, 124, 122), (96, 92, 90), 24, 3.0),
    ("snow", "highland", (240, 242, 248), (208, 216, 230), 14, 2.0),
]
# Climate terms of each terrain (worldgen.world.bias): the macro climate favours a terrain where its
# climate is, so biomes form (shallows and beaches at the coast, deep water offshore, sand in
# deserts, grassland where it is mild, forest where it is wet, mountains on the heights, snow where
# it is cold). A transition tile takes both terrains' terms, each raised to its share of corners.
TERRAIN_TAGS: dict[str, tuple[str, ...]] = {
    "deep": ("deep",),
    "shallow": ("shore",),
    "sand": ("beach|dry",),
    "grass": ("mild", "warm"),
    "forest": ("wet", "warm"),
    "mountain": ("high",),
    "snow": ("cold",),
}
FOAM: Colour = (178, 214, 236)


def terrain_picture(lo: int, hi: int, corners: tuple[int, ...]) -> tuple[Img, int]:
    """Picture of terrains ``lo``/``hi`` (marching squares) and its count of ``hi`` pixels.

    ``corners`` says which of TL, TR, BR, BL are ``hi``. With u = x/(S-1), v = y/(S-1) the
    bilinear blend of the corners equals the corner values along the border, so a border column
    depends only on the two corners of its side (and the texture is D4-invariant): matching
    pictures is matching corners. The blend is an integer over (S-1)^2, odd, so it never ties.
    """
    n = S - 1
    y, x = np.mgrid[0:S, 0:S]
    tl, tr, br, bl = corners
    f = tl * (n - x) * (n - y) + tr * x * (n - y) + br * x * y + bl * (n - x) * y
    high = 2 * f > n * n
    img = np.zeros((S, S, 3), dtype=np.uint8)
    for t, where in ((lo, ~high), (hi, high)):
        _, _, base, tex, pct, _ = TERRAINS[t]
        img[where] = base
        img[where & d4_speckle(t, pct)] = tex
    if (TERRAINS[lo][0], TERRAINS[hi][0]) == ("shallow", "sand"):
        img[~high & (7 * 2 * f > 5 * n * n)] = FOAM  # surf on the water side of the coast
    return img, int(np.count_nonzero(high))


def build_terrain() -> Tileset:
    """Terrains in a chain deep-shallow-sand-grass-forest-hills-mountain-snow (16 px).

    Each adjacent pair gets an edge (T), outer corner (L), inner corner (L) and diagonal (\\)
    tile; a tile takes the class of the terrain covering most pixels, ties to the higher class.
    Ocean and highland never share a tile side because the chain puts lowland between them.
    """
    tiles = []
    for i, (name, cls, *_, weight) in enumerate(TERRAINS):
        img = terrain_picture(i, i, (0,) * 4)[0]
        tiles.append(Tile(name, "X", weight, img, cls, (i,) * 4, tags=TERRAIN_TAGS.get(name, ())))
    shapes = [  # suffix, symmetry, weight, which corners (TL, TR, BR, BL) are the higher terrain
        ("edge", "T", 0.5, (0, 0, 1, 1)),
        ("outer", "L", 0.2, (0, 0, 0, 1)),
        ("inner", "L", 0.2, (1, 1, 1, 0)),
        ("diag", "\\", 0.02, (1, 0, 1, 0)),
    ]
    for lo, hi in zip(range(len(TERRAINS) - 1), range(1, len(TERRAINS)), strict=True):
        for suffix, sym, weight, cs in shapes:
            img, n_hi = terrain_picture(lo, hi, cs)
            cls = TERRAINS[hi if 2 * n_hi >= S * S else lo][1]
            name = f"{TERRAINS[lo][0]}_{TERRAINS[hi][0]}_{suffix}"
            tags = transition_terms(TERRAINS[lo][0], TERRAINS[hi][0], sum(cs))
            tiles.append(
                Tile(name, sym, weight, img, cls, tuple(hi if c else lo for c in cs), tags=tags)
            )
    tiles += biome_tiles()
    desc = (
        "world map: deep sea, shallows, beaches, grassland, forest, hills, mountains and snow, "
        "with deserts, swamps and taiga/tundra from the climate"
    )
    return Tileset("terrain", False, desc, tiles)


def transition_terms(lo: str, hi: str, n_hi: int) -> tuple[str, ...]:
    """Climate terms of a tile with ``4 - n_hi`` corners of terrain ``lo`` and ``n_hi`` of ``hi``:
    each terrain's terms raised to its share of the corners (quarters), equal terms merged."""
    quarters: dict[str, int] = {}
    for terrain, n in ((lo, 4 - n_hi), (hi, n_hi)):
        for term in TERRAIN_TAGS.get(terrain, ()):
            quarters[term] = quarters.get(term, 0) + n
    return tuple(t if q == 4 else f"{t}@{q}" for t, q in quarters.items())


def d4(mask: Mask) -> Mask:
    """The union of ``mask`` under the 8 symmetries of the square (a D4-invariant mask)."""
    out = np.zeros_like(mask)
    for k in range(4):
        turned = np.rot90(mask, k)
        out |= turned | np.fliplr(turned)
    return out


def inner(mask: Mask) -> Mask:
    """``mask`` without the outermost pixel ring, so a decorated tile keeps its terrain's border
    pixels and matches exactly like the plain tile."""
    out = mask.copy()
    out[0, :] = out[-1, :] = out[:, 0] = out[:, -1] = False
    return out


def biome_tiles() -> list[Tile]:
    """Decorated plain tiles (same corners and border pixels as a plain terrain tile, so they sit
    wherever it may): desert dunes and cacti on sand, marsh pools and reeds on grass, tundra on
    grass, snowy conifers (taiga) on forest. Their climate tags make biomes of them."""
    idx = {t[0]: i for i, t in enumerate(TERRAINS)}

    def plain(name: str) -> Img:
        return terrain_picture(idx[name], idx[name], (0,) * 4)[0]

    y, x = np.mgrid[0:S, 0:S]
    # dunes: two wavy ridges with their shaded lee side, symmetric under mirror and half turn (I)
    wave = np.array([0, 1, 1, 2, 2, 1, 1, 0, 0, 1, 1, 2, 2, 1, 1, 0])[x]
    crest = (y == 4 + wave) | (y == 11 - wave)
    lee = (y == 5 + wave) | (y == 10 - wave)
    dunes = paint(plain("sand"), (inner(lee), (184, 152, 94)), (inner(crest), (248, 234, 190)))
    body = rect(7, 3, 8, 12) | rect(3, 7, 12, 8)  # a cactus seen from above: a plus
    shadow = inner(np.roll(body, 1, 0) | np.roll(body, -1, 0) | np.roll(body, 1, 1))
    shadow |= inner(np.roll(body, -1, 1))
    cactus = paint(
        plain("sand"),
        (shadow, (176, 150, 96)),
        (body, (60, 120, 56)),
        (d4(rect(7, 3, 8, 3)) | disc(16, 16, 1), (120, 176, 96)),
    )
    pools = d4(disc(9, 9, 3)) | disc(16, 16, 4)
    reeds = d4(rect(2, 7, 2, 8) | rect(7, 2, 8, 2) | rect(4, 1, 4, 1) | rect(2, 12, 2, 12))
    marsh = paint(
        plain("grass"),
        (inner(d4_speckle(73, 45)), (88, 132, 66)),
        (pools, (66, 108, 104)),
        (d4(disc(8, 8, 1)), (110, 150, 150)),
        (inner(reeds), (52, 80, 36)),
    )
    frost = inner(np.ones((S, S), dtype=np.bool_))
    tundra = paint(
        plain("grass"),
        (frost, (146, 162, 114)),
        (frost & d4_speckle(71, 30), (176, 184, 150)),
        (d4(disc(9, 9, 2)), (128, 126, 120)),
        (d4(disc(7, 13, 1)) | disc(16, 16, 1), (222, 228, 232)),
    )
    trees = d4(disc(9, 9, 6)) | disc(16, 16, 6)
    caps = d4(rect(4, 4, 4, 4)) | rect(7, 7, 8, 8)
    taiga = paint(plain("forest"), (inner(trees), (18, 64, 40)), (caps, (232, 238, 244)))
    return [
        Tile("dunes", "I", 2.0, dunes, "lowland", (idx["sand"],) * 4, tags=("dry",)),
        Tile("cactus", "X", 0.4, cactus, "lowland", (idx["sand"],) * 4, tags=("dry",)),
        Tile("marsh", "X", 2.0, marsh, "lowland", (idx["grass"],) * 4, tags=("marsh",)),
        Tile("tundra", "X", 2.0, tundra, "lowland", (idx["grass"],) * 4, tags=("cold",)),
        Tile("taiga", "X", 2.0, taiga, "lowland", (idx["forest"],) * 4, tags=("cold",)),
    ]


def variant_corners(corners: tuple[int, ...], k: int) -> tuple[int, ...]:
    """Corners (TL, TR, BR, BL) of oriented variant k: turns shift them, the mirror swaps."""
    c = corners[k % 4 :] + corners[: k % 4]
    return (c[1], c[0], c[3], c[2]) if k >= 4 else c


def check_terrain(ts: Tileset, pairs: set[Pair]) -> None:
    """Check picture matching equals corner matching and ocean never meets highland."""
    corners = {v: variant_corners(ts.tiles[v[0]].corners, v[1]) for v in ts.variants()}
    by_corners = {
        (a, b)
        for a in ts.variants()
        for b in ts.variants()
        if (corners[a][1], corners[a][2]) == (corners[b][0], corners[b][3])
    }
    check(by_corners == pairs, "terrain: pictures and corners disagree")
    for a, b in pairs:
        classes = {ts.tiles[a[0]].cls, ts.tiles[b[0]].cls}
        check(classes != {"ocean", "highland"}, f"terrain: {a} meets {b}")


# ---------------------------------------------------------------- pipes

PANEL, RIVET = (74, 84, 96), (138, 148, 160)
PIPE_DARK, PIPE, PIPE_LIGHT = (92, 46, 20), (188, 106, 48), (236, 170, 104)
WIRE, CHIP, LED, WHITE = (214, 186, 60), (30, 30, 36), (226, 40, 40), (240, 240, 232)


def build_pipes() -> Tileset:
    """Copper pipes with flanges and gold wires on a riveted panel (16 px, two subsets)."""
    rivets = disc(3, 3, 2) | disc(29, 3, 2)
    base = paint(canvas(PANEL), (rivets | np.flipud(rivets), RIVET))
    pipe = [
        (rect(5, 0, 10, 10), PIPE_DARK),
        (rect(6, 0, 9, 9), PIPE),
        (rect(7, 0, 8, 8), PIPE_LIGHT),
        (rect(4, 0, 11, 1), PIPE_DARK),  # flange at the tile edge
    ]
    wire = [(rect(6, 0, 9, 0), PIPE_DARK), (rect(7, 0, 8, 8), WIRE)]
    pipes = arms(pipe, UP, DOWN)
    gauge = paint(base, *pipes, (disc(25, 9, 5), PIPE_DARK), (disc(25, 9, 3), WHITE))
    gauge = paint(gauge, (rect(12, 4, 12, 4) | rect(13, 3, 13, 3), LED))  # needle: no symmetry
    chip = paint(base, *arms(wire, UP, LEFT, DOWN, RIGHT), (rect(4, 4, 11, 11), CHIP))
    chip = paint(chip, (rect(6, 6, 9, 9), (58, 58, 66)), (rect(7, 7, 8, 8), (96, 96, 108)))
    led = paint(base, *arms(wire, DOWN), (disc(16, 16, 7), (120, 20, 24)), (disc(16, 16, 5), LED))
    led = paint(led, (disc(16, 16, 2), (255, 190, 180)))
    cap = paint(base, *arms(pipe, DOWN), (rect(4, 5, 11, 7), PIPE_DARK), (rect(5, 6, 10, 6), PIPE))
    tiles = [
        Tile("panel", "X", 6.0, base),
        Tile("pipe", "I", 2.0, paint(base, *pipes)),
        Tile("pipe_turn", "L", 1.0, paint(base, *arms(pipe, UP, RIGHT))),
        Tile("pipe_t", "T", 0.5, paint(base, *arms(pipe, LEFT, RIGHT, DOWN))),
        Tile("pipe_cross", "X", 0.2, paint(base, *arms(pipe, UP, LEFT, DOWN, RIGHT))),
        Tile("pipe_cap", "T", 0.3, cap),
        Tile("pipe_gauge", "F", 0.2, gauge),
        Tile("wire", "I", 2.0, paint(base, *arms(wire, UP, DOWN))),
        Tile("wire_turn", "L", 1.0, paint(base, *arms(wire, UP, RIGHT))),
        Tile("wire_t", "T", 0.5, paint(base, *arms(wire, LEFT, RIGHT, DOWN))),
        Tile("chip", "X", 0.3, chip),
        Tile("led", "T", 0.3, led),
        Tile("pipe_over_wire", "I", 0.3, paint(base, *arms(wire, LEFT, RIGHT), *pipes)),
    ]
    subsets = {
        "pipes": ["panel", "pipe", "pipe_turn", "pipe_t", "pipe_cross", "pipe_cap", "pipe_gauge"],
        "wires": ["panel", "wire", "wire_turn", "wire_t", "chip", "led"],
    }
    desc = "copper pipes with caps and a gauge, gold wires with chips and LEDs, on a panel"
    return Tileset("pipes", False, desc, tiles, subsets)


# ---------------------------------------------------------------- roads and rivers

GRASS, GRASS_DARK, TREE, TREE_LIGHT = (112, 176, 78), (96, 156, 66), (40, 104, 48), (70, 140, 64)
ASPHALT, CURB, DASH = (84, 84, 90), (150, 150, 146), (236, 226, 150)
WATER, BANK, WOOD = (64, 132, 206), (196, 182, 128), (110, 70, 40)
ROOF_DARK, ROOF, RIDGE = (120, 40, 36), (186, 70, 52), (150, 54, 42)


def build_roads() -> Tileset:
    """Roads, houses, rivers, ponds, bridges and trees on grass (16 px, ``unique="True"``)."""
    base = paint(canvas(GRASS), (d4_speckle(101, 14), GRASS_DARK))
    road = [(rect(5, 0, 10, 10), CURB), (rect(6, 0, 9, 9), ASPHALT), (rect(7, 0, 8, 2), DASH)]
    river = [(rect(4, 0, 11, 11), BANK), (rect(5, 0, 10, 10), WATER)]
    trees = base.copy()
    for cx, cy in ((4, 4), (11, 4), (4, 11), (11, 11), (7, 7), (8, 8), (7, 8), (8, 7)):
        trees[disc(2 * cx + 1, 2 * cy + 1, 5)] = TREE
    for cx, cy in ((4, 4), (11, 4), (4, 11), (11, 11)):
        trees[disc(2 * cx + 1, 2 * cy + 1, 2)] = TREE_LIGHT
    roof = [(rect(3, 2, 12, 9), ROOF_DARK), (rect(4, 3, 11, 8), ROOF), (rect(7, 3, 8, 8), RIDGE)]
    house = paint(base, *arms(road, DOWN), *roof)
    pond = paint(base, *arms(river, DOWN), (disc(16, 16, 12), BANK), (disc(16, 16, 10), WATER))
    rails = rect(4, 3, 4, 12) | rect(11, 3, 11, 12)
    # the road's full arms, dash included: its edge pixels must match a road's, or a bridge could
    # only sit next to another bridge and would never appear in a world (check_escape)
    bridge = paint(base, *arms(river, LEFT, RIGHT), *arms(road, UP, DOWN), (rails, WOOD))
    tiles = [
        Tile("grass", "X", 8.0, base),
        Tile("trees", "X", 3.0, trees),
        Tile("road", "I", 2.0, paint(base, *arms(road, UP, DOWN))),
        Tile("road_turn", "L", 1.0, paint(base, *arms(road, UP, RIGHT))),
        Tile("road_t", "T", 0.4, paint(base, *arms(road, LEFT, RIGHT, DOWN))),
        Tile("road_cross", "X", 0.2, paint(base, *arms(road, UP, LEFT, DOWN, RIGHT))),
        Tile("house", "T", 0.5, house),
        Tile("river", "I", 2.0, paint(base, *arms(river, UP, DOWN))),
        Tile("river_turn", "L", 1.0, paint(base, *arms(river, UP, RIGHT))),
        Tile("pond", "T", 0.3, pond),
        Tile("bridge", "I", 0.3, bridge),
    ]
    subsets = {
        "roads": ["grass", "trees", "road", "road_turn", "road_t", "road_cross", "house"],
        "rivers": ["grass", "trees", "river", "river_turn", "pond"],
    }
    desc = "roads with houses, rivers with ponds and bridges, and trees, on grass"
    return Tileset("roads", True, desc, tiles, subsets)


def build_tilesets() -> list[Tileset]:
    return [build_terrain(), build_pipes(), build_roads()]


# ---------------------------------------------------------------- overlapping-model samples


def torus_dist2(size: int, cx: int, cy: int) -> Ints:
    """Squared wrap-around distance of every pixel to ``(cx, cy)``: samples are periodic."""
    y, x = np.mgrid[0:size, 0:size]
    dx = np.minimum(np.abs(x - cx), size - np.abs(x - cx))
    dy = np.minimum(np.abs(y - cy), size - np.abs(y - cy))
    return np.asarray(dx * dx + dy * dy, dtype=np.int64)


Sample = tuple[Ints, list[Colour]]  # colour indices and palette


def draw_lakes() -> Sample:
    """Lakes ringed by sand, forest groves and grass (32 px)."""
    idx = np.full((32, 32), 2, dtype=np.int64)
    for i in range(3):
        h = ihash(11, i)
        idx[torus_dist2(32, h % 32, (h >> 8) % 32) <= 10 + (h >> 16) % 8] = 3
    for cx, cy, r2 in ((7, 8, 20), (23, 22, 20), (25, 5, 8)):
        d = torus_dist2(32, cx, cy)
        idx[d <= r2 + 2 * int(np.sqrt(r2)) + 1] = 1  # a one-pixel shore
        idx[d <= r2] = 0
    return idx, [(52, 116, 186), (224, 204, 146), (108, 172, 72), (44, 110, 52)]


def draw_corridors() -> Sample:
    """A wrap-around maze of one-pixel corridors with two small rooms (24 px, wall/floor)."""
    cells = 12
    idx = np.zeros((2 * cells, 2 * cells), dtype=np.int64)
    seen, stack = {(0, 0)}, [(0, 0)]
    while stack:  # depth-first carving, every choice from the hash
        cx, cy = stack[-1]
        idx[2 * cy, 2 * cx] = 1
        steps = [(dx, dy) for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))]
        steps = [(dx, dy) for dx, dy in steps if ((cx + dx) % cells, (cy + dy) % cells) not in seen]
        if not steps:
            stack.pop()
            continue
        dx, dy = steps[ihash(21, cx, cy, len(seen)) % len(steps)]
        idx[(2 * cy + dy) % (2 * cells), (2 * cx + dx) % (2 * cells)] = 1
        seen.add(((cx + dx) % cells, (cy + dy) % cells))
        stack.append(((cx + dx) % cells, (cy + dy) % cells))
    for cx, cy in ((2, 3), (8, 9)):
        idx[2 * cy - 1 : 2 * cy + 2, 2 * cx - 1 : 2 * cx + 2] = 1
    return idx, [(40, 36, 48), (214, 206, 186)]


def draw_flowers() -> Sample:
    """Flowers on a ground strip (32 px): the bottom row is dirt, two grass rows above it, then
    stems with leaves and flower heads in the sky. Meant for symmetry 2 with ground."""
    idx = np.zeros((32, 32), dtype=np.int64)
    idx[29:31], idx[31] = 1, 2
    for i, x in enumerate((2, 8, 13, 19, 24, 29)):
        h = ihash(31, i)
        top = 8 + h % 14  # row of the flower head
        idx[top:29, x] = 1
        leaf = top + 3 + (h >> 8) % max(1, 24 - top)
        if leaf < 28:
            idx[leaf, x + (1 if (h >> 12) % 2 else -1)] = 1
        idx[top - 1, x] = idx[top + 1, x] = idx[top, x - 1] = idx[top, x + 1] = 3
        idx[top, x] = 4
    colours = [(150, 202, 240), (72, 156, 60), (116, 78, 44), (236, 88, 124), (250, 214, 60)]
    return idx, colours


def draw_city() -> Sample:
    """Streets and pavements around blocks of two buildings and a park (32 px)."""
    idx = np.ones((32, 32), dtype=np.int64)
    for r in (0, 16):
        idx[r : r + 2, :] = idx[:, r : r + 2] = 0
    for b, (bx, by) in enumerate(((3, 3), (19, 3), (3, 19))):
        h = ihash(41, b)
        split, cut = 4 + h % 5, 3 + (h >> 8) % 6  # hashed building sizes
        idx[by : by + 12, bx : bx + split] = 2
        idx[by : by + 12, bx + split + 1 : bx + 12] = 3
        idx[by + cut, bx : bx + split] = 1
    idx[19:31, 19:31] = 4
    return idx, [(78, 78, 84), (178, 176, 168), (170, 78, 58), (120, 124, 140), (94, 160, 72)]


SAMPLES: list[tuple[str, Callable[[], Sample], int, bool, str]] = [
    # file stem, drawer, symmetry, ground, description
    ("lakes", draw_lakes, 8, False, "lakes ringed by sand, forest groves and grass"),
    ("corridors", draw_corridors, 8, False, "a maze of one-pixel corridors with small rooms"),
    ("flowers", draw_flowers, 2, True, "flowers on a ground strip: dirt bottom row, grass, sky"),
    ("city", draw_city, 8, False, "streets around blocks of buildings and a park"),
]

BLOCK_SIZES: dict[str, int] = {"lakes": 16}
"""The block size S of a sample's new worlds where it is not the default 32 (catalog
``defaults.S``): lakes meets every quality target at 16 for 55 % of the CPU (docs/world.md)."""


def count_patterns(idx: Ints, n: int, symmetry: int) -> int:
    """Distinct N x N windows of the periodic image under the first ``symmetry`` of the classic
    eight transforms (p, mirror of p, p turned, mirror of that, ...)."""
    h, w = idx.shape
    seen: set[bytes] = set()
    for y in range(h):
        for x in range(w):
            p = idx[np.ix_((y + np.arange(n)) % h, (x + np.arange(n)) % w)]
            forms = []
            for _ in range(4):
                forms += [p, np.fliplr(p)]
                p = np.rot90(p)
            seen.update(f.tobytes() for f in forms[:symmetry])
    return len(seen)


# ---------------------------------------------------------------- writing


def write_png(path: Path, img: Img) -> None:
    """Write an RGB PNG with fixed settings and no metadata (deterministic bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(img)).save(path, format="PNG", compress_level=9)


def write_tileset(ts: Tileset, root: Path, files: dict[str, str]) -> str:
    """Check and write one tileset (XML and PNGs) under ``root/<name>``; return a report line."""
    pairs = matching_pairs(ts)
    rules = neighbour_rules(ts)
    for names in [[t.name for t in ts.tiles], *ts.subsets.values()]:
        check_closure(ts, pairs, names)
    check_escape(ts, pairs)
    if ts.name == "terrain":
        check_terrain(ts, pairs)
    folder = root / ts.name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{ts.name}.xml").write_text(tileset_xml(ts, rules), encoding="utf-8", newline="\n")
    files[f"{ts.name}/{ts.name}.xml"] = (
        f"{ts.name} tileset (SimpleTiledModel XML): {ts.description}"
    )
    for t in ts.tiles:
        for k in range(len(t.images) if ts.unique else 1):
            fname = f"{t.name} {k}.png" if ts.unique else f"{t.name}.png"
            write_png(folder / fname, t.images[k])
            files[f"{ts.name}/{fname}"] = f"{ts.name} tile {t.name} ({t.symmetry}), variant {k}"
    syms = " ".join(sorted({t.symmetry for t in ts.tiles}))
    return (
        f"{ts.name}: {len(ts.tiles)} tiles, {len(ts.variants())} oriented variants,"
        f" symmetries {syms}, {len(rules)} neighbour entries ({len(pairs)} matching pairs),"
        f" subsets {list(ts.subsets)}"
    )


def write_all(root: Path) -> list[str]:
    """Draw everything into ``root`` (the tilesets directory); return report lines."""
    report: list[str] = []
    files: dict[str, str] = {}
    catalog: list[dict[str, object]] = []
    for ts in build_tilesets():
        report.append(write_tileset(ts, root, files))
        path = f"{ts.name}/{ts.name}.xml"
        entry = {"name": ts.name, "kind": "tiled", "path": path, "description": ts.description}
        catalog.append({**entry, "defaults": {"subset": None}})
    for stem, draw, symmetry, ground, desc in SAMPLES:
        idx, colours = draw()
        write_png(root / "samples" / f"{stem}.png", np.asarray(colours, dtype=np.uint8)[idx])
        files[f"samples/{stem}.png"] = f"overlapping-model sample: {desc}"
        used = len(np.unique(idx))
        counts = {sym: count_patterns(idx, 3, sym) for sym in sorted({8, symmetry})}
        shape = f"{idx.shape[1]}x{idx.shape[0]}"
        report.append(
            f"samples/{stem}.png: {shape}, {used} colours, N=3 patterns by symmetry {counts}"
        )
        entry = {"name": stem, "kind": "overlapping", "path": f"samples/{stem}.png"}
        defaults: dict[str, object] = {
            "N": 3, "symmetry": symmetry, "ground": ground, "periodic_input": True,
        }  # fmt: skip
        if stem in BLOCK_SIZES:
            defaults["S"] = BLOCK_SIZES[stem]
        catalog.append({**entry, "description": desc, "defaults": defaults})
    files["LICENSE.txt"] = "this file"
    files["catalog.json"] = "index of the tilesets and samples, with default model settings"
    license_text = [
        "The tilesets and samples in this directory were drawn for worldgen by"
        " tools/draw_bundled.py and are released under CC0 1.0"
        " (https://creativecommons.org/publicdomain/zero/1.0/).",
        "",
        "Files:",
        *(f"- {path}: {what}" for path, what in sorted(files.items())),
    ]
    (root / "LICENSE.txt").write_text(
        "\n".join([*license_text, ""]), encoding="utf-8", newline="\n"
    )
    catalog_text = json.dumps(catalog, indent=2) + "\n"
    (root / "catalog.json").write_text(catalog_text, encoding="utf-8", newline="\n")
    return report


def main() -> None:
    """Redraw the bundled data in place and print a summary."""
    for line in write_all(TILESETS_DIR):
        print(line)


if __name__ == "__main__":
    main()
