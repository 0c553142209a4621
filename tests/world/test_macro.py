from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from worldgen.engine.rng import mix
from worldgen.world import macro
from worldgen.world.hashing import mix_array

coords = st.integers(min_value=-(2**40), max_value=2**40)


@given(st.integers(0, 2**64 - 1), coords, coords)
def test_mix_array_matches_scalar_mix(seed: int, a: int, b: int) -> None:
    got = mix_array(seed, 5, np.array([a, b], dtype=np.int64))
    assert int(got[0]) == mix(seed, 5, a)
    assert int(got[1]) == mix(seed, 5, b)


@given(st.integers(0, 2**32), coords, coords)
def test_level_is_pointwise_and_in_range(seed: int, x: int, y: int) -> None:
    xs = np.arange(x - 3, x + 4, dtype=np.int64)
    row = macro.level(seed, xs, np.full(7, y, dtype=np.int64))
    assert all(int(row[k]) == int(macro.level(seed, x - 3 + k, y)) for k in range(7))
    assert int(row.min()) >= 0
    assert int(row.max()) <= 65535


@settings(max_examples=40)
@given(st.integers(0, 2**32), st.integers(-(2**31), 2**31), st.integers(-(2**31), 2**31))
def test_lattice_clamp_and_window_consistency(seed: int, i0: int, j0: int) -> None:
    big = macro.lattice_classes(seed, i0, j0, 12, 10, 16, 3)
    assert np.abs(np.diff(big, axis=0)).max() <= 1
    assert np.abs(np.diff(big, axis=1)).max() <= 1
    small = macro.lattice_classes(seed, i0 + 3, j0 + 2, 5, 4, 16, 3)
    assert np.array_equal(small, big[2:6, 3:8])


def test_classes_cover_all_levels_with_sane_shares() -> None:
    cls = macro.lattice_classes(3, -64, -64, 128, 128, 16, 3)
    shares = np.bincount(cls.ravel(), minlength=3) / cls.size
    assert all(0.05 < s < 0.8 for s in shares), shares


def test_band_multipliers_prefer_the_band_class() -> None:
    table = macro.band_multipliers(3).table
    assert table.shape == (macro.BANDS, 3)
    assert table[0].argmax() == 0
    assert table[-1].argmax() == 2
    assert np.all(table > 0)


@given(st.integers(0, 2**32), coords, coords)
def test_climate_fields_in_range_and_level_consistent(seed: int, x: int, y: int) -> None:
    xs = np.arange(x, x + 6, dtype=np.int64)
    ys = np.arange(y, y + 4, dtype=np.int64)
    lv, moist, temp = macro.climate(seed, xs[None, :], ys[:, None])
    assert np.array_equal(lv, macro.level(seed, xs[None, :], ys[:, None]))
    assert np.array_equal(moist, macro.moisture(seed, xs[None, :], ys[:, None]))
    for field in (moist, temp):
        assert field.shape == (4, 6)
        assert int(field.min()) >= 0
        assert int(field.max()) <= 65535


def test_temperature_falls_with_height() -> None:
    xs = np.arange(-(2**15), 2**15, 61, dtype=np.int64)
    lv, _, temp = macro.climate(5, xs[None, :], xs[:, None])
    high, low = lv >= 51200, (lv >= 28672) & (lv < 40000)
    assert float(temp[high].mean()) < float(temp[low].mean())


def test_relief_shades_land_only_and_faces_the_light() -> None:
    xs = np.arange(-2000, 2000, 7, dtype=np.int64)
    ys = np.arange(-1500, 1500, 7, dtype=np.int64)
    shade = macro.relief(42, xs[None, :], ys[:, None], step=4)
    lv = macro.level(42, xs[None, :], ys[:, None])
    sea = macro.level_cuts(3)[0]
    assert np.all(shade[lv < sea] == macro.RELIEF_ONE)
    land = shade[lv >= sea]
    assert int(land.min()) >= macro.RELIEF_ONE - macro.RELIEF_MAX
    assert int(land.max()) <= macro.RELIEF_ONE + macro.RELIEF_MAX
    assert int(land.min()) < macro.RELIEF_ONE < int(land.max())  # both sides of hills are seen

    # a slope rising towards the south-east faces the north-west light: brighter
    def at(dx: int, dy: int) -> np.ndarray:
        return macro.level(42, xs[None, :] + dx, ys[:, None] + dy)

    rise = (at(4, 0) - at(-4, 0)) + (at(0, 4) - at(0, -4))
    on_land = lv >= sea
    assert float(shade[on_land & (rise > 500)].mean()) > macro.RELIEF_ONE
    assert float(shade[on_land & (rise < -500)].mean()) < macro.RELIEF_ONE
    assert int(macro.relief(42, 10, 20, 4)) == int(
        macro.relief(42, np.array([10]), np.array([20]), 4)[0]
    )
