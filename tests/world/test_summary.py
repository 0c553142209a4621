"""The far-zoom summary: learnt once and cached, keyed by the bias profile, and predictive."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from worldgen.world import macro, summary
from worldgen.world.api import build_world
from worldgen.world.blocks import World
from worldgen.world.render import Z_FAR, cell_relief, palette_for, tile_rgb
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
    # caching, not prediction, is tested here: few windows (lakes has 9 district groups, whose
    # 48 windows cost ~6 s per learning)
    monkeypatch.setattr(summary, "DISTRICT_WINDOWS", 8)
    world = build_world(LAKES)
    first = build_summary(world, tmp_path)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1
    with np.load(files[0], allow_pickle=False) as data:
        assert set(data.files) == {"counts"}

    def never(*_: object) -> object:
        raise AssertionError("the cached counts should have been read")

    real_learn = summary.learn_counts

    monkeypatch.setattr(summary, "learn_counts", never)
    again = build_summary(build_world(LAKES), tmp_path)
    assert np.array_equal(again.counts, first.counts)
    assert np.array_equal(again.table, first.table)
    monkeypatch.setattr(summary, "learn_counts", real_learn)
    good = files[0].read_bytes()
    # a damaged, empty or truncated file is learnt again
    for bad in (b"not an npz", b"", good[: len(good) // 2]):
        files[0].write_bytes(bad)
        assert np.array_equal(build_summary(world, tmp_path).counts, first.counts)


def test_identical_profiles_share_a_group() -> None:
    for spec in (TERRAIN, LAKES):
        world = build_world(spec)
        found = summary_for(world)
        rows = {world.profiles[p].tobytes(): int(g) for p, g in enumerate(found.group)}
        assert len(set(rows.values())) == len(rows) == found.table.shape[0]
        assert found.counts.shape == (found.table.shape[0], world.model.size)
        windows = summary.learn_windows(found.table.shape[0], world.districts)
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
        total = table.reshape(-1, 3).sum(axis=0)
        # the pixel lit by the relief at its centre over its width (16 cells)
        shade = macro.relief(world.seed, -4096 + 16 * px + 8, 1024 + 16 * py + 8, 16)
        white = 255 * 256 * len(inner) ** 2
        expected = macro.lit(total, shade, white) // (len(inner) ** 2 * 256)
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


def lit_means(world: World, x0: int, y0: int, w: int, h: int) -> npt.NDArray[np.float64]:
    """The mean colour of each final cell of the window as the map shows it: its picture's
    mean, lit by its relief (scaled towards black below 256, blended towards white above)."""
    means = palette_for(world).level(16).reshape(world.model.size, -1, 3).mean(axis=1)
    colour: npt.NDArray[np.float64] = means[world.region(x0, y0, w, h)]
    shade = cell_relief(world, x0, y0, w, h)
    if shade is None:
        return colour
    f = shade[:, :, None].astype(np.float64)
    gain, lift = np.minimum(f, 256), np.maximum(f - 256, 0)
    out: npt.NDArray[np.float64] = (colour * (gain - lift) + 255 * lift) / 256
    return out


def test_far_pixels_predict_the_final_cells() -> None:
    """A far pixel is closer to the mean colour of the lit final cells it covers than the
    world's mean colour is: the summary shows where land, sea and mountains are."""
    world = build_world(TERRAIN)
    x0, y0, side, n = -1024, 256, 128, 8
    actual = lit_means(world, x0, y0, side, side)
    actual = actual.reshape(side // n, n, side // n, n, 3).mean(axis=(1, 3))
    predicted = far_rgb(world, x0, y0, side // n, n).astype(np.float64)
    flat = np.abs(actual - actual.reshape(-1, 3).mean(axis=0)).mean()
    assert np.abs(predicted - actual).mean() < 0.8 * flat
    assert len({tuple(p) for p in far_rgb(world, -8192, -8192, 64, 128).reshape(-1, 3)}) > 8


def test_terrain_is_lit_by_its_relief_at_every_zoom() -> None:
    """Hill shading: a cell tile of a world with continents is its unlit picture lit per cell
    (lit colours stay in range), the far zooms light it too; a sample world is never lit."""
    world = build_world(TERRAIN)
    z, x, y = 0, 3, -2
    n = 64
    cells = world.region(x * n, y * n, n, n)
    shade = cell_relief(world, x * n, y * n, n, n)
    assert shade is not None
    assert int(shade.min()) < 256 < int(shade.max())
    lit = tile_rgb(world, z, x, y).astype(np.int64)
    flat = palette_for(world).draw(cells, 4).astype(np.int64)
    factor = np.repeat(np.repeat(shade, 4, axis=0), 4, axis=1)  # per pixel (4 px per cell)
    assert np.array_equal(lit[factor == 256], flat[factor == 256])
    assert np.all(lit[factor < 256] <= flat[factor < 256])
    assert np.all(lit[factor > 256] >= flat[factor > 256])
    assert np.any(lit != flat)
    sample = build_world(WorldSpec("sample", "lakes", 42))
    assert cell_relief(sample, 0, 0, 8, 8) is None


def test_a_ground_worlds_far_view_is_its_mean_colour_per_row() -> None:
    """flowers (a side view): a far pixel is the mean of its rows' learnt colours, so the ground
    line shows at far zooms, and it predicts the final cells near the ground."""
    world = build_world(WorldSpec.of_kind("overlapping", "flowers", 42))
    found = summary_for(world)
    assert found.rows is not None
    sky = found.rows[0] // 256
    rgb = far_rgb(world, 96, -32, 16, 4).astype(np.int64)  # rows -32..31: ground at pixel row 8
    n = 4
    assert np.all(rgb == rgb[:, :1])  # the same in every column
    assert np.abs(rgb[0, 0] - sky).max() <= 2  # high above the ground: sky
    assert np.abs(rgb[8, 0] - sky).max() > 20  # the ground line
    means = palette_for(world).level(16).reshape(world.model.size, -1, 3).mean(axis=1)
    actual = means[world.region(0, -32, 1024, 64)].reshape(16, n, 1024, 3).mean(axis=(1, 2))
    assert np.abs(rgb[:, 0] - actual).max() < 12
