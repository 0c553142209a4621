"""The far-zoom summary: learnt once and cached, keyed by the bias profile, and predictive."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from worldgen.world import summary
from worldgen.world.api import build_world
from worldgen.world.render import Z_FAR, palette_for, tile_rgb
from worldgen.world.spec import WorldSpec
from worldgen.world.summary import build_summary, far_rgb, sample_offsets, summary_for

TERRAIN = WorldSpec("tileset", "terrain", 42)
LAKES = WorldSpec("sample", "lakes", 42)


@pytest.fixture(autouse=True)
def _cache(world_cache: Path) -> None:
    """Every world here shares the session's library (and summary) cache."""


def test_profile_at_points_equals_profile_region() -> None:
    world = build_world(TERRAIN)
    x0, y0 = -(2**33) - 77, 5000
    window = world.profile_region(x0, y0, 40, 30)
    xs = np.arange(x0, x0 + 40, dtype=np.int64)
    ys = np.arange(y0, y0 + 30, dtype=np.int64)
    assert np.array_equal(world.profile_at(xs[None, :], ys[:, None]), window)
    assert np.array_equal(world.profile_at(xs[None, 3:9], ys[5:6, None]), window[5:6, 3:9])


def test_summary_is_learnt_once_and_cached_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = build_world(LAKES)
    first = build_summary(world, tmp_path)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1
    with np.load(files[0], allow_pickle=False) as data:
        assert set(data.files) == {"counts"}

    def never(*_: object) -> object:
        raise AssertionError("the cached counts should have been read")

    monkeypatch.setattr(summary, "learn_counts", never)
    again = build_summary(build_world(LAKES), tmp_path)
    assert np.array_equal(again.counts, first.counts)
    assert np.array_equal(again.table, first.table)
    files[0].write_bytes(b"not an npz")  # a damaged file is learnt again
    monkeypatch.undo()
    assert np.array_equal(build_summary(world, tmp_path).counts, first.counts)


def test_identical_profiles_share_a_group() -> None:
    for spec in (TERRAIN, LAKES):
        world = build_world(spec)
        found = summary_for(world)
        rows = {world.profiles[p].tobytes(): int(g) for p, g in enumerate(found.group)}
        assert len(set(rows.values())) == len(rows) == found.table.shape[0]
        assert found.counts.shape == (found.table.shape[0], world.model.size)
        windows = summary.learn_windows(found.table.shape[0])
        assert int(found.counts.sum()) == windows * summary.LEARN_SIDE**2


def test_far_pixels_average_the_predicted_colour_of_their_sub_samples() -> None:
    world = build_world(TERRAIN)
    found = summary_for(world)
    rgb = far_rgb(world, -4096, 1024, 8, 16)
    inner = sample_offsets(16, summary.SUBSAMPLES)
    for py, px in ((0, 0), (3, 7), (7, 2)):
        xs = -4096 + 16 * px + inner
        ys = 1024 + 16 * py + inner
        table = found.table[found.group[world.profile_at(xs[None, :], ys[:, None])]]
        expected = table.reshape(-1, 3).sum(axis=0) // (len(inner) ** 2 * 256)
        assert np.array_equal(rgb[py, px], expected)
    assert np.array_equal(tile_rgb(world, Z_FAR, -1, 0)[:8, :8], far_rgb(world, -512, 0, 8, 2))


@pytest.mark.parametrize("cells_per_px", [2, 16, summary.SMOOTH_FROM, 256])
def test_far_squares_join_seamlessly(cells_per_px: int) -> None:
    """A pixel depends only on where it is, not on the square drawn around it (the smoothed
    zooms read their neighbours' sub-samples too), so far tiles join without seams."""
    world = build_world(TERRAIN)
    n = cells_per_px
    whole = far_rgb(world, -8 * n, 40 * n, 16, n)
    for dx, dy in ((0, 0), (8, 0), (0, 8), (5, 11)):
        part = far_rgb(world, (dx - 8) * n, (dy + 40) * n, 5, n)
        assert np.array_equal(part, whole[dy : dy + 5, dx : dx + 5]), (dx, dy)


def test_far_pixels_predict_the_final_cells() -> None:
    """A far pixel is closer to the mean colour of the final cells it covers than the world's
    mean colour is: the summary shows where land, sea and mountains are."""
    world = build_world(TERRAIN)
    x0, y0, side, n = -1024, 256, 128, 8
    cells = world.region(x0, y0, side, side)
    means = palette_for(world).level(16).reshape(world.model.size, -1, 3).mean(axis=1)
    actual = means[cells].reshape(side // n, n, side // n, n, 3).mean(axis=(1, 3))
    predicted = far_rgb(world, x0, y0, side // n, n).astype(np.float64)
    flat = np.abs(actual - actual.reshape(-1, 3).mean(axis=0)).mean()
    assert np.abs(predicted - actual).mean() < 0.8 * flat
    assert len({tuple(p) for p in far_rgb(world, -8192, -8192, 64, 128).reshape(-1, 3)}) > 8
