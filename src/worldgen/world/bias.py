"""The weight bias of refinement solves: class bands from the level, climate tags from moisture and
temperature.

A refinement block solves with per-cell weight multipliers, given to the solver as a table of
*profile rows* ``(P, T)`` and the row of each cell. :class:`Bias` holds the rows and says which
row a cell takes; it is a pure function of the model and the macro fields, so every block (and
the far-zoom summary, which is keyed by the profile) sees the same bias at the same cell.

* **Class bands** (every classed tileset): the level quantised to :data:`~.macro.BANDS` bands;
  row ``b`` multiplies the variants of each class by :func:`~.macro.band_multipliers` (x4 inside
  the class's level range, fading outside).
* **Climate tags** (tilesets that declare them): a tile's class may carry *terms* after a colon,
  ``class="lowland:mild+warm"`` (``+`` joins terms; the class is the part before the colon). A
  term is a tag (:data:`TAGS`, each preferring a climate), or alternatives ``beach|dry`` (the
  larger multiplier of the two), optionally raised to ``k/4`` with ``@k`` (``mild@2``: the square
  root). A variant's multiplier is the product of its terms' (an untagged variant's is 1). A
  transition tile takes its corner terrains' terms with exponents by corner share, so a biome's
  front advances over its neighbour exactly as fast as the two terrains' weights say. With tags,
  the profile of a cell is ``band * CLIMATES + climate``, where the climate is one of
  :data:`CLIMATES` (4 moisture bands x cold or not, :func:`climate_index`).

Without tags ``P = BANDS`` and the profile is the level band (exactly the bias before tags existed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from worldgen.world import macro

__all__ = [
    "CLIMATES",
    "COLD_CUT",
    "MOISTURE_CUTS",
    "TAGS",
    "TAG_STRENGTH",
    "Bias",
    "bias_for",
    "climate_index",
    "parse_term",
    "tag_multipliers",
    "term_multipliers",
]

I32Array = npt.NDArray[np.int32]
I64Array = npt.NDArray[np.int64]
F64Array = npt.NDArray[np.float64]

MOISTURE_CUTS = (20000, 38000, 52000)
"""Moisture band edges: dry < 20000 <= mild < 38000 <= wet < 52000 <= marsh (of land, about
25 %, 37 %, 24 % and 14 %)."""
COLD_CUT = 9000
"""Temperature below which a cell is cold (about a fifth of the land, more of the mountains)."""
MOISTURE_BANDS = len(MOISTURE_CUTS) + 1
CLIMATES = 2 * MOISTURE_BANDS
"""Climate index ``temperate * 4 + moisture band`` (:func:`climate_index`)."""
TAG_STRENGTH = 6.0
"""A tag multiplies its variants by up to this inside its climate and by its inverse outside."""
SHORE_LEVELS = 1024
"""Width of the ``shore`` zone (bands whose centre lies up to this far below the sea level) and of
the ``beach`` zone (as far above it); ``deep`` starts twice as far below (one band between)."""
TAGS = ("shore", "beach", "deep", "high", "dry", "mild", "wet", "marsh", "cold", "warm")
"""Known climate tags: ``shore`` just below the sea level (shallows), ``beach`` just above it,
``deep`` far below it, ``high`` the upper half of the top class's level range (peaks),
``dry``/``mild``/``wet``/``marsh`` the four moisture bands,
``cold`` a cold cell (temperature below :data:`COLD_CUT`), ``warm`` any other cell (neutral
there, rare where it is cold)."""
DEFAULT_SEA = 28672
"""The sea level of a model with fewer than two classes (the first cut for three classes)."""


def climate_index(moisture: I64Array, temperature: I64Array) -> I64Array:
    """The climate of each cell: ``4 * (temperature >= COLD_CUT) + moisture band``."""
    band = np.zeros(np.shape(moisture), dtype=np.int64)
    for cut in MOISTURE_CUTS:
        band += moisture >= cut
    out: I64Array = (temperature >= COLD_CUT).astype(np.int64) * MOISTURE_BANDS + band
    return out


def _moisture_row(scores: tuple[float, float, float, float]) -> F64Array:
    """Exponents of TAG_STRENGTH per moisture band, repeated for cold and temperate climates."""
    row = np.array(scores * 2, dtype=np.float64)
    return np.asarray(TAG_STRENGTH**row, dtype=np.float64)


def tag_multipliers(tag: str, classes: int) -> F64Array:
    """Multiplier ``(BANDS, CLIMATES)`` of a variant carrying ``tag`` (see :data:`TAGS`)."""
    sea = macro.level_cuts(classes)[0] if classes >= 2 else DEFAULT_SEA
    centre = np.arange(macro.BANDS, dtype=np.float64) * macro.BAND_LEVELS + macro.BAND_LEVELS // 2
    cuts = macro.level_cuts(classes) if classes >= 2 else (DEFAULT_SEA,)
    zones = {  # level ranges [lo, hi) of the zone tags
        "shore": (sea - SHORE_LEVELS, sea),
        "beach": (sea, sea + SHORE_LEVELS),
        "deep": (-65536, sea - 2 * SHORE_LEVELS),
        "high": (cuts[-1] + (65536 - cuts[-1]) * 3 // 4, 2 * 65536),
    }
    if tag in zones:
        lo, hi = zones[tag]
        # a coast is a thin zone that must win over the plain tiles on either side of it
        top = TAG_STRENGTH**2 if tag in ("shore", "beach") else TAG_STRENGTH
        per_band = np.where((centre >= lo) & (centre < hi), top, 1 / TAG_STRENGTH)
        return np.repeat(per_band[:, None], CLIMATES, axis=1)
    rows = {
        "dry": _moisture_row((1, 0, -1, -1)),
        "mild": _moisture_row((-1, 1, 0, -1)),
        "wet": _moisture_row((-1, 0, 1, 0)),
        "marsh": _moisture_row((-1, -1, 0, 1)),
        "cold": np.array([TAG_STRENGTH] * MOISTURE_BANDS + [1 / TAG_STRENGTH] * MOISTURE_BANDS),
        "warm": np.array([1 / TAG_STRENGTH] * MOISTURE_BANDS + [1.0] * MOISTURE_BANDS),
    }
    if tag not in rows:
        raise ValueError(f"unknown climate tag {tag!r}; known: {', '.join(TAGS)}")
    return np.repeat(np.asarray(rows[tag], dtype=np.float64)[None, :], macro.BANDS, axis=0)


def parse_term(term: str) -> tuple[tuple[str, ...], int]:
    """``"beach|dry@2"`` -> ``(("beach", "dry"), 2)``; ValueError for an unknown tag or bad k."""
    body, at, quarters = term.partition("@")
    alternatives = tuple(body.split("|"))
    for tag in alternatives:
        if tag not in TAGS:
            raise ValueError(f"unknown climate tag {tag!r}; known: {', '.join(TAGS)}")
    k = 4
    if at:
        if quarters not in ("1", "2", "3", "4"):
            raise ValueError(f"climate term {term!r}: the exponent after '@' must be 1..4")
        k = int(quarters)
    return alternatives, k


def term_multipliers(term: str, classes: int) -> F64Array:
    """Multiplier ``(BANDS, CLIMATES)`` of one term (see the module docstring)."""
    alternatives, k = parse_term(term)
    best = np.max([tag_multipliers(t, classes) for t in alternatives], axis=0)
    out: F64Array = best ** (k / 4)
    return out


@dataclass(frozen=True, eq=False)
class Bias:
    """Profile rows ``profiles`` ``(P, T)`` (finite, > 0) and the rule that picks a cell's row.

    ``climates`` is 1 (the row is the level band) or :data:`CLIMATES` (the row is
    ``band * CLIMATES + climate``). ``region`` and ``at`` give the same row at the same cell.
    """

    profiles: F64Array
    climates: int

    def at(
        self,
        seed: int,
        x: int | npt.NDArray[np.integer],
        y: int | npt.NDArray[np.integer],
        min_period: int = 0,
    ) -> I32Array:
        """Profile row at the cells ``(x, y)`` (broadcast; a row and a column vector make a
        separable grid, the fast case). ``min_period`` > 0 (far zooms only: the pixel width)
        reads the macro fields with their finer octaves at their mean (``macro.value_noise``)."""
        if self.climates == 1:
            return (macro.level(seed, x, y, min_period) >> macro.BAND_SHIFT).astype(np.int32)
        lv, moist, temp = macro.climate(seed, x, y, min_period)
        row = (lv >> macro.BAND_SHIFT) * self.climates + climate_index(moist, temp)
        return row.astype(np.int32)

    def region(self, seed: int, x0: int, y0: int, w: int, h: int) -> I32Array:
        """Profile row ``(h, w)`` of every cell of the window at ``(x0, y0)``."""
        xs = np.arange(x0, x0 + w, dtype=np.int64)[None, :]
        ys = np.arange(y0, y0 + h, dtype=np.int64)[:, None]
        return self.at(seed, xs, ys)

    def block(self, seed: int, x0: int, y0: int, w: int, h: int) -> tuple[F64Array, I32Array]:
        """``(rows, index)`` for one solve: only the profile rows the window uses, and each
        cell's index into them (the solver's work per row is then bounded by the window)."""
        full = self.region(seed, x0, y0, w, h)
        used, index = np.unique(full, return_inverse=True)
        return self.profiles[used], index.reshape(h, w).astype(np.int32)


def bias_for(
    variant_class: npt.NDArray[np.integer],
    classes: int,
    variant_tags: tuple[tuple[str, ...], ...] = (),
) -> Bias:
    """The bias of a model with ``classes`` level classes, a class per variant (-1: none) and
    optionally climate terms per variant (see the module docstring)."""
    vclass = np.asarray(variant_class)
    band = macro.band_multipliers(classes).table  # (BANDS, K)
    rows = np.where(vclass[None, :] >= 0, band[:, np.maximum(vclass, 0)], 1.0)  # (BANDS, T)
    if not any(variant_tags):
        return Bias(profiles=rows, climates=1)
    tables = {t: term_multipliers(t, classes) for t in {t for ts in variant_tags for t in ts}}
    mult = np.ones((macro.BANDS, CLIMATES, vclass.shape[0]), dtype=np.float64)
    for v, tags in enumerate(variant_tags):
        for tag in tags:
            mult[:, :, v] *= tables[tag]
    profiles = (rows[:, None, :] * mult).reshape(macro.BANDS * CLIMATES, -1)
    return Bias(profiles=profiles, climates=CLIMATES)
