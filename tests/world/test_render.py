from __future__ import annotations

import hashlib

import numpy as np
import pytest

from worldgen.errors import InputError
from worldgen.world.render import Z_DETAIL, Z_MIN, cells_per_tile, render_tile, tile_rgb

from .conftest import BUNDLED_TERRAIN, WorldFactory

# Sample world (bundled lakes, seed 42, S=32, V=4, 2 layers): same rule as below.
GOLDEN_SAMPLE = {
    (2, -1, 3): "85c536fbe45fd0b1120a7ea387912a42068ca51d7871d47ebd286caa45f1d814",
    (0, -1, 3): "d244b0da194a12490304f803cef2f9631f1e2bd2a245cc29052585e8dbd2d92d",
    (-6, 0, 0): "6af9721b8fca39b812456e3092f61a6612b65fa4384b49fd4951a6a9136dcd13",
}

# A digest change must come with a version bump (docs/world.md): ALGORITHM_VERSION (patches.py)
# for content, TILE_VERSION (spec.py) for how tiles are drawn.
# TILE_VERSION 1: z = 0 draws the final cells (not the base layer), far zooms the learnt summary;
# the detail digests did not change.
# ALGORITHM_VERSION 3: terrain biomes (climate tags, decorated tiles), 64 level bands, class cuts
# on band edges, seams with corner margins: every terrain digest changed.
# Engine OUTPUT_VERSION 2 (folded into library_version): solves give other bytes, every digest
# (terrain and sample) changed.
# ALGORITHM_VERSION 5: the goldens pin the default block size, S=32 (was S=16); every digest
# changed (a third layer's offset, S/4, does not enter: these worlds have 2 layers).
# TILE_VERSION 2: terrain is lit by its relief at every zoom; the terrain z=0 and z=-6 digests
# changed (the z=2 tile lies in the sea, which is never shaded), the sample digests did not.
# SUMMARY_VERSION 2 (summary.py: 96 learning windows of 64², was 48 of 32²): the z=-6 digests
# changed.
# TILE_VERSION 4: refinement solves of one-class models are calibrated (world/calibrate.py); the
# sample digests changed, terrain (classed) did not.
# TILE_VERSION 6: one-class samples lean by district (world/districts.py); the sample digests
# changed, terrain did not. Then DISTRICT_WINDOWS (summary.py, 48 learning windows for a world
# with districts): the sample z=-6 digest changed.
# ALGORITHM_VERSION 6: a hashed library's seams share the reference seams' ends (patches.py) and
# the calibration converges (calibrate.py, CALIBRATION_VERSION 2); the sample digests changed,
# terrain (classed: neither) did not.
GOLDEN = {
    (2, -1, 3): "8a6186c2ad8640c6ae0c57511dafb8c5fd4ff6ffef1fe943585f471d2cd32b8d",
    (0, -1, 3): "d0767a502fe382ebdfb35eae86e2109b049152625dc709e76864c3c97563fe97",
    (-6, 0, 0): "65ccea216b83ddfb0ee008adec30c330b9496300ff903e4c69570072977333d4",
}


def test_zoom_convention() -> None:
    assert cells_per_tile(Z_DETAIL) == 16
    assert cells_per_tile(0) == 64
    assert cells_per_tile(Z_MIN) == 16 << (Z_DETAIL - Z_MIN)


@pytest.mark.parametrize(("z", "x", "y"), sorted(GOLDEN))
def test_golden_tile_digests(make_world: WorldFactory, z: int, x: int, y: int) -> None:
    world = make_world(BUNDLED_TERRAIN, seed=42, S=32, V=3)
    png = render_tile(world, z, x, y)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert hashlib.sha256(png).hexdigest() == GOLDEN[(z, x, y)]


def test_tiles_are_pure(make_world: WorldFactory) -> None:
    a = render_tile(make_world(seed=1), 1, 5, -2)
    b = make_world(seed=1)
    render_tile(b, 1, 4, -2)  # warm a neighbour first: caches must not change bytes
    assert render_tile(b, 1, 5, -2) == a


def test_bad_zoom_is_refused(make_world: WorldFactory) -> None:
    with pytest.raises(InputError, match="zoom"):
        render_tile(make_world(), Z_DETAIL + 1, 0, 0)


@pytest.mark.parametrize(("z", "x", "y"), sorted(GOLDEN_SAMPLE))
def test_golden_sample_tile_digests(
    make_sample_world: WorldFactory, z: int, x: int, y: int
) -> None:
    world = make_sample_world("lakes", seed=42, S=32, V=4)
    png = render_tile(world, z, x, y)
    assert hashlib.sha256(png).hexdigest() == GOLDEN_SAMPLE[(z, x, y)]


def test_sample_detail_cells_are_flat_squares(make_sample_world: WorldFactory) -> None:
    world = make_sample_world("city", seed=2)
    rgb = tile_rgb(world, Z_DETAIL, 3, -2)
    assert world.model.colours is not None
    expected = world.model.colours[world.region(48, -32, 16, 16)]
    cells = rgb.reshape(16, 16, 16, 16, 3)  # (cell row, px row, cell col, px col, rgb)
    assert np.all(cells == expected[:, None, :, None, :])


def test_far_zooms_differ_between_samples(make_sample_world: WorldFactory) -> None:
    """Every sample's far view is its own (the summary is learnt from its cells), not one texture
    shared by all."""
    tiles = {
        name: tile_rgb(make_sample_world(name, seed=2), -6, 0, 0) for name in ("lakes", "city")
    }
    assert not np.array_equal(tiles["lakes"], tiles["city"])
