"""Refinement bias: class bands, climate tags, and the profile a cell takes."""

from __future__ import annotations

import numpy as np
import pytest

from worldgen.world import bias, macro
from worldgen.world.bias import CLIMATES, Bias, bias_for, climate_index, tag_multipliers


def test_without_tags_the_profile_is_the_level_band() -> None:
    vclass = np.array([0, 0, 1, 2, -1], dtype=np.int32)
    b = bias_for(vclass, 3)
    band = macro.band_multipliers(3).table
    assert b.climates == 1
    assert b.profiles.shape == (macro.BANDS, 5)
    assert np.array_equal(b.profiles[:, 2], band[:, 1])
    assert np.all(b.profiles[:, 4] == 1.0)  # a variant without a class is never biased
    assert np.array_equal(b.region(3, -40, 17, 30, 20), macro.cell_bands(3, -40, 17, 30, 20))


def test_tags_multiply_the_class_rows() -> None:
    vclass = np.array([0, 1, 1, 1], dtype=np.int32)
    tags = ((), ("dry",), ("wet",), ("dry", "cold"))
    b = bias_for(vclass, 3, tags)
    assert b.climates == CLIMATES
    assert b.profiles.shape == (macro.BANDS * CLIMATES, 4)
    plain = bias_for(vclass, 3)
    rows = b.profiles.reshape(macro.BANDS, CLIMATES, 4)
    for c in range(CLIMATES):
        assert np.array_equal(rows[:, c, 0], plain.profiles[:, 0])  # untagged: the class band
    dry, wet, cold = (tag_multipliers(t, 3) for t in ("dry", "wet", "cold"))
    assert np.allclose(rows[:, :, 1], plain.profiles[:, 1, None] * dry)
    assert np.allclose(rows[:, :, 2], plain.profiles[:, 2, None] * wet)
    assert np.allclose(rows[:, :, 3], plain.profiles[:, 3, None] * dry * cold)
    # a dry temperate cell prefers the dry variant, a wet one the wet variant
    assert rows[20, 4, 1] > rows[20, 4, 2]
    assert rows[20, 6, 2] > rows[20, 6, 1]


def test_tag_zones() -> None:
    sea = macro.level_cuts(3)[0]
    shore = tag_multipliers("shore", 3)[:, 0]
    deep = tag_multipliers("deep", 3)[:, 0]
    assert shore[(sea - 1) >> macro.BAND_SHIFT] == bias.TAG_STRENGTH**2
    assert shore[0] == pytest.approx(1 / bias.TAG_STRENGTH)
    assert deep[0] == bias.TAG_STRENGTH
    assert deep[sea >> macro.BAND_SHIFT] < 1
    cold = tag_multipliers("cold", 3)[0]
    assert cold[0] > 1 > cold[CLIMATES - 1]
    with pytest.raises(ValueError, match="unknown climate tag"):
        tag_multipliers("hot", 3)


def test_climate_index_bands() -> None:
    m = np.array([0, 19999, 20000, 37999, 38000, 51999, 52000, 65535], dtype=np.int64)
    cold = climate_index(m, np.zeros_like(m))
    warm = climate_index(m, np.full_like(m, 65535))
    assert cold.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert warm.tolist() == [4, 4, 5, 5, 6, 6, 7, 7]


def test_region_at_and_block_agree() -> None:
    vclass = np.zeros(3, dtype=np.int32)
    b: Bias = bias_for(vclass, 1, (("marsh",), (), ("cold",)))
    grid = b.region(11, 900, -300, 40, 30)
    xs = np.arange(900, 940, dtype=np.int64)
    ys = np.arange(-300, -270, dtype=np.int64)
    assert np.array_equal(grid, b.at(11, xs[None, :], ys[:, None]))
    # scattered points take the same rows as the window
    pts = b.at(11, xs[[0, 5, 39]], ys[[0, 29, 7]])
    assert pts.tolist() == [int(grid[0, 0]), int(grid[29, 5]), int(grid[7, 39])]
    rows, index = b.block(11, 900, -300, 40, 30)
    assert np.array_equal(rows[index], b.profiles[grid])
    assert rows.shape[0] == len(np.unique(grid))
    assert int(grid.max()) < b.profiles.shape[0]


def test_terms_alternatives_and_powers() -> None:
    assert bias.parse_term("beach|dry@2") == (("beach", "dry"), 2)
    assert bias.parse_term("cold") == (("cold",), 4)
    for bad in ("cold@5", "cold@", "hot", "dry|hot@1"):
        with pytest.raises(ValueError, match="climate"):
            bias.parse_term(bad)
    beach, dry = tag_multipliers("beach", 3), tag_multipliers("dry", 3)
    assert np.allclose(bias.term_multipliers("beach|dry", 3), np.maximum(beach, dry))
    assert np.allclose(bias.term_multipliers("beach|dry@2", 3), np.maximum(beach, dry) ** 0.5)
    # a transition between a dry-favoured and a mild-favoured terrain is neutral where it is dry
    vclass = np.zeros(2, dtype=np.int32)
    b = bias_for(vclass, 3, (("beach|dry@2", "mild@2"), ("mild",)))
    rows = b.profiles.reshape(macro.BANDS, CLIMATES, 2)
    dry_climate = 4  # temperate and dry
    assert np.isfinite(rows).all()
    # the front advances into the dry land
    assert rows[40, dry_climate, 0] > rows[40, dry_climate, 1]
