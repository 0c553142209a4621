"""A world's legend: what each kind of cell is called and what it looks like, from the model alone.

Pure (no HTTP, no Redis): a bundled model's name in, plain data out; the model is the one the
world uses (:func:`worldgen.world.api.model_for`). The web app serves it as
``GET /api/worlds/{id}/legend``; the map page draws the legend from it and names the cell under the
cursor by looking up a region document's labels in :attr:`Legend.names`.

* **Tilesets**: an entry per *family* of tiles, in class order then file order. A tile's family is
  the longest ``_``-separated prefix of its name that is itself a tile, followed to its root
  (``deep_shallow_edge`` -> ``deep``, ``road_t`` -> ``road``, ``pipe_over_wire`` -> ``pipe``); a
  tile with no such prefix is its own family. The picture is the family tile's first orientation.
  :attr:`Legend.names` maps every tile name to a readable name (``"deep shallow edge"``).
* **Samples**: an entry per colour a cell can show (a pattern's top-left pixel), most frequent
  first (weighted by the patterns that show it: for a periodic sample, its pixel share), named
  by hue and lightness (``"light green"``; two colours with one such name add their codes,
  ``"green #3a7d2c"``); :attr:`Legend.names` maps each ``"#rrggbb"`` to that name.

Keys of :attr:`Legend.names` are exactly what a region document holds: the tile part of a
``"<tile> <k>"`` label, or the ``"#rrggbb"`` colour. Shares are weight shares (tilesets) or
pattern weight shares (samples), each entry's in ``[0, 1]``, summing to 1.
"""

from __future__ import annotations

import base64
import colorsys
import functools
import io
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from worldgen import tilesets
from worldgen.errors import InputError
from worldgen.world.api import model_for
from worldgen.world.model import CELL_PX, ModelKind, WorldModel
from worldgen.world.spec import WorldSpec, upload_digest

__all__ = [
    "Legend",
    "LegendEntry",
    "colour_name",
    "legend_document",
    "legend_for",
    "sample_legend",
    "tileset_legend",
]

U8Array = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class LegendEntry:
    """One line of the legend: ``members`` are the keys of :attr:`Legend.names` it stands for."""

    label: str
    class_name: str | None
    members: tuple[str, ...]
    share: float
    picture: bytes
    """A 16 x 16 PNG."""
    colour: str
    """``"#rrggbb"``: the picture's mean colour."""


@dataclass(frozen=True)
class Legend:
    """The legend of one model (see the module docstring)."""

    kind: ModelKind
    classes: tuple[str, ...]
    entries: tuple[LegendEntry, ...]
    names: dict[str, str]


def _hex(rgb: npt.ArrayLike) -> str:
    r, g, b = (int(v) for v in np.asarray(rgb).reshape(-1)[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


def _png(rgb: U8Array) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB").save(out, "PNG")
    return out.getvalue()


# Hue sectors (upper bound in degrees, name), checked in order.
_HUES = (
    (15, "red"),
    (45, "orange"),
    (70, "yellow"),
    (160, "green"),
    (200, "teal"),
    (255, "blue"),
    (290, "purple"),
    (335, "pink"),
    (360, "red"),
)


def colour_name(rgb: npt.ArrayLike) -> str:
    """A plain name for an RGB colour: a hue (or grey) with "dark"/"light" where it helps.

    Deterministic and coarse on purpose: it tells a reader which part of the legend a colour is
    in, not its exact shade. Dark oranges and yellows are "brown", pale ones "beige".
    """
    r, g, b = (int(v) / 255 for v in np.asarray(rgb).reshape(-1)[:3])
    hue, light, sat = colorsys.rgb_to_hls(r, g, b)
    if light < 0.1:
        return "black"
    if light > 0.93:
        return "white"
    if sat < 0.15 or (max(r, g, b) - min(r, g, b)) < 0.08:
        if light < 0.35:
            return "dark grey"
        return "light grey" if light > 0.7 else "grey"
    degrees = hue * 360
    name = next(n for bound, n in _HUES if degrees < bound)
    if name in ("orange", "yellow") and light < 0.4:
        return "brown"
    if name in ("orange", "yellow") and light > 0.6 and sat < 0.6:
        return "beige"
    if light < 0.3:
        return f"dark {name}"
    if light > 0.72:
        return f"light {name}"
    return name


def _family(tile: str, tiles: frozenset[str]) -> str:
    parts = tile.split("_")
    for end in range(len(parts) - 1, 0, -1):
        prefix = "_".join(parts[:end])
        if prefix in tiles:
            return _family(prefix, tiles)
    return tile


def tileset_legend(model: WorldModel) -> Legend:
    """The legend of a tileset's world model (variant ``v``'s tile is its label's
    ``"<tile> <k>"`` tile part)."""
    if model.images is None:
        raise InputError(f"tileset {model.name} was loaded without pictures; no legend")
    tile_of_variant = tuple(label.rsplit(" ", 1)[0] for label in model.labels)
    first: dict[str, int] = {}
    for v, tile in enumerate(tile_of_variant):
        first.setdefault(tile, v)
    tiles = frozenset(first)
    weight: dict[str, float] = {}
    for v, tile in enumerate(tile_of_variant):
        fam = _family(tile, tiles)
        weight[fam] = weight.get(fam, 0.0) + float(model.weights[v])
    total = sum(weight.values())
    members: dict[str, list[str]] = {}
    for tile in first:
        members.setdefault(_family(tile, tiles), []).append(tile)

    def class_of(tile: str) -> str | None:
        k = int(model.variant_class[first[tile]])
        return model.class_names[k] if k >= 0 and len(model.class_names) > 1 else None

    classes = tuple(model.class_names) if len(model.class_names) > 1 else ()
    order = {name: i for i, name in enumerate(classes)}
    families = sorted(members, key=lambda f: (order.get(class_of(f) or "", len(order)), first[f]))
    entries = []
    for fam in families:
        picture = model.images[first[fam]]
        entries.append(
            LegendEntry(
                label=fam.replace("_", " "),
                class_name=class_of(fam),
                members=tuple(members[fam]),
                share=weight[fam] / total,
                picture=_png(picture),
                colour=_hex(picture.reshape(-1, 3).mean(axis=0)),
            )
        )
    names = {tile: tile.replace("_", " ") for tile in first}
    return Legend("tiled", classes, tuple(entries), names)


def sample_legend(model: WorldModel) -> Legend:
    """The legend of a sample's world model: its colours (the cells' labels), each weighted by
    the patterns that show it (for a periodic sample: the colour's pixel share)."""
    weight: dict[str, float] = {}
    for label, w in zip(model.labels, model.weights, strict=True):
        weight[label] = weight.get(label, 0.0) + float(w)
    total = sum(weight.values())
    by_hex = {key: w / total for key, w in weight.items()}
    ordered = sorted(by_hex.items(), key=lambda kv: (-kv[1], kv[0]))
    rgbs = {key: np.array([int(key[i : i + 2], 16) for i in (1, 3, 5)], np.uint8) for key in by_hex}
    plain = {key: colour_name(rgb) for key, rgb in rgbs.items()}
    taken = [plain[key] for key in by_hex]
    entries = []
    names: dict[str, str] = {}
    for key, share in ordered:
        # Two colours with one plain name keep it apart by their codes.
        name = plain[key] if taken.count(plain[key]) == 1 else f"{plain[key]} {key}"
        names[key] = name
        picture = np.broadcast_to(rgbs[key], (CELL_PX, CELL_PX, 3))
        entries.append(LegendEntry(name, None, (key,), share, _png(picture), key))
    return Legend("overlapping", (), tuple(entries), names)


@functools.lru_cache(maxsize=32)
def _bundled_legend(spec: WorldSpec) -> Legend:
    model = model_for(spec)
    return sample_legend(model) if model.kind == "overlapping" else tileset_legend(model)


def legend_for(spec: WorldSpec) -> Legend:
    """The legend of the bundled or uploaded model a world spec names (cached: bundled files
    never change, an uploaded model is content-addressed).

    Raises :class:`~worldgen.errors.InputError` when ``spec`` names no such model.
    """
    if tilesets.lookup(spec.name, spec.kind) is None and upload_digest(spec.name) is None:
        raise InputError(f"no bundled {spec.source} named {spec.name!r}")
    # the model's fields only (N, symmetry, subset): one legend per model, whatever the seed
    return _bundled_legend(spec.model_key)


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def legend_document(legend: Legend) -> dict[str, object]:
    """The legend as JSON-ready data; pictures become ``data:`` URLs (a few hundred bytes each).

    ``{"kind", "classes", "entries": [{"label", "class", "members", "share", "colour",
    "picture"}], "names": {key: name}}``.
    """
    return {
        "kind": legend.kind,
        "classes": list(legend.classes),
        "entries": [
            {
                "label": e.label,
                "class": e.class_name,
                "members": list(e.members),
                "share": round(e.share, 6),
                "colour": e.colour,
                "picture": _data_url(e.picture),
            }
            for e in legend.entries
        ],
        "names": dict(legend.names),
    }
