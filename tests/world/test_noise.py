"""The numba twin of the macro level is bit-identical to its numpy specification."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from worldgen.world import _noise, macro

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, database=None)
seeds = st.one_of(st.integers(0, 2**64 - 1), st.integers(-(2**63), -1))
coords = st.integers(-(2**53) + 70_000, 2**53 - 70_000)


@PROPERTY
@given(seeds, coords, coords, st.sampled_from([1, 2, 3, 16, 37, 256, 4096]), st.integers(1, 40))
def test_grid_matches_numpy(seed: int, x0: int, y0: int, step: int, n: int) -> None:
    """Windows of every spacing: fine ones use the lattice table, coarse ones hash per point."""
    xs = x0 + np.arange(n, dtype=np.int64) * step
    ys = y0 - np.arange(n + 3, dtype=np.int64) * step
    fast = macro.level(seed, xs[None, :], ys[:, None])
    assert fast.shape == (n + 3, n)
    assert fast.dtype == np.int64
    assert np.array_equal(fast, macro.level_numpy(seed, xs[None, :], ys[:, None]))


@PROPERTY
@given(seeds, st.lists(st.tuples(coords, coords), min_size=1, max_size=30))
def test_scattered_points_match_numpy(seed: int, points: list[tuple[int, int]]) -> None:
    xs = np.array([p[0] for p in points], dtype=np.int64)
    ys = np.array([p[1] for p in points], dtype=np.int64)
    assert np.array_equal(macro.level(seed, xs, ys), macro.level_numpy(seed, xs, ys))
    assert int(macro.level(seed, int(xs[0]), int(ys[0]))) == int(macro.level_numpy(seed, xs, ys)[0])


def test_extremes_and_mgrid_windows() -> None:
    for edge in (2**53, -(2**53), 0, -1):
        c = np.arange(-6, 6, dtype=np.int64) + edge
        assert np.array_equal(
            macro.level(3, c[None, :], c[:, None]), macro.level_numpy(3, c[None, :], c[:, None])
        )
    yy, xx = np.mgrid[-40:25, 1000:1033].astype(np.int64)  # how cell_bands asks
    assert np.array_equal(macro.level(9, xx, yy), macro.level_numpy(9, xx, yy))
    # the same window through both kernels
    fields = tuple((f, *macro._FIELDS[f]) for f in (macro.FIELD_CONTINENT, macro.FIELD_ELEVATION))
    table = _noise.octave_table(9, fields, macro.PURPOSE_NOISE)
    grid = np.zeros(xx.shape, dtype=np.int64)
    _noise.level_grid(np.array(xx[0]), np.array(yy[:, 0]), table, grid)
    flat = np.zeros(xx.size, dtype=np.int64)
    _noise.level_points(xx.reshape(-1).copy(), yy.reshape(-1).copy(), table, flat)
    assert np.array_equal(grid.reshape(-1), flat)


@PROPERTY
@given(seeds, coords, coords, st.sampled_from([1, 5, 300]), st.integers(1, 25))
def test_climate_matches_numpy(seed: int, x0: int, y0: int, step: int, n: int) -> None:
    """All four noise fields in one kernel pass equal the numpy fields (windows and points)."""
    xs = x0 + np.arange(n, dtype=np.int64) * step
    ys = y0 + np.arange(n + 2, dtype=np.int64) * step
    fast = macro.climate(seed, xs[None, :], ys[:, None])
    slow = macro.climate_numpy(seed, xs[None, :], ys[:, None])
    for a, b in zip(fast, slow, strict=True):
        assert np.array_equal(a, b)
    pts = macro.climate(seed, xs, ys[:n])
    for a, b in zip(pts, macro.climate_numpy(seed, xs, ys[:n]), strict=True):
        assert np.array_equal(a, b)


@PROPERTY
@given(
    seeds,
    coords,
    coords,
    st.sampled_from([1, 37, 256]),
    st.integers(1, 20),
    st.sampled_from([33, 64, 65, 129, 256, 4096]),
)
def test_smoothed_octaves_match_numpy(
    seed: int, x0: int, y0: int, step: int, n: int, min_period: int
) -> None:
    """Far zooms read the fields with octaves below ``min_period`` at their mean: the kernels
    (grids and points, level and climate) equal the numpy specification there too."""
    xs = x0 + np.arange(n, dtype=np.int64) * step
    ys = y0 + np.arange(n + 2, dtype=np.int64) * step
    grid = (xs[None, :], ys[:, None])
    assert np.array_equal(
        macro.level(seed, *grid, min_period), macro.level_numpy(seed, *grid, min_period)
    )
    pts = (xs, ys[:n])
    assert np.array_equal(
        macro.level(seed, *pts, min_period), macro.level_numpy(seed, *pts, min_period)
    )
    for where in (grid, pts):
        fast = macro.climate(seed, *where, min_period)
        for a, b in zip(fast, macro.climate_numpy(seed, *where, min_period), strict=True):
            assert np.array_equal(a, b)


def test_smoothing_only_touches_finer_octaves() -> None:
    """Up to the finest period (32 cells) nothing changes; above it the field is smoother (the
    fine octaves' wiggle between neighbouring cells is gone), and past the coarsest period of
    every field it is one value everywhere."""
    xs = np.arange(-500, 500, 7, dtype=np.int64)
    ys = np.arange(300, 1300, 11, dtype=np.int64)
    grid = (xs[None, :], ys[:, None])
    plain = macro.climate(5, *grid)
    for a, b in zip(macro.climate(5, *grid, 32), plain, strict=True):
        assert np.array_equal(a, b)
    smooth = macro.level(5, *grid, 256)
    assert not np.array_equal(smooth, plain[0])
    wiggle = np.abs(np.diff(plain[0], axis=1)).mean()
    assert np.abs(np.diff(smooth, axis=1)).mean() < wiggle
    for field in macro.climate(5, *grid, 1 << 20):
        assert np.unique(field).size == 1
    table = _noise.octave_table(5, ((macro.FIELD_CONTINENT, 1024, 6),), macro.PURPOSE_NOISE)
    assert _noise.smoothed(table, 32) is table  # nothing below: the memoised table itself
    marked = _noise.smoothed(table, 100)
    assert marked[:, 0].tolist() == [1024, 512, 256, 128, 0, 0]
    assert table[:, 0].tolist() == [1024, 512, 256, 128, 64, 32]  # the shared table is untouched
