from __future__ import annotations

import hashlib

import numpy as np
import pytest

from worldgen.errors import InputError
from worldgen.world.render import Z_DETAIL, Z_MIN, cells_per_tile, render_tile, tile_rgb

from .conftest import BUNDLED_TERRAIN, WorldFactory

# Sample world (bundled lakes, seed 42, S=16, V=4, 2 layers): same rule as above.
GOLDEN_SAMPLE = {
    (2, -1, 3): "0c9efa389c46fb9cdf5fd2e58d02c5dd368cf910219e0af32c79192f0df0d781",
    (0, -1, 3): "fde4a34637bc11a1b3aa9fd7cb450f0ea210e4d6c3675e8195b0d87d0d9b296d",
    (-6, 0, 0): "f2dfe14f7f57f53607fd9e8fd2f18ff3e8c41ecf538cc34ecadf407594d755a6",
}

# A digest change must come with a library/algorithm version bump (docs/world.md).
# ALGORITHM_VERSION 2: the far-zoom digest changed with the fast PNG encoding of far tiles.
GOLDEN = {
    (2, -1, 3): "ecfd14589413e4ba2d7d4937b7e2f9a49d596aadc64c6e6c968b92859845c9bd",
    (0, -1, 3): "6ebe47edbe5b847d2e3fe2e3e73b0df7ff84e3b89db247228e17fa8130aba62a",
    (-6, 0, 0): "e836008b8d6f27e088e00eab31396ce35b9d0fef3dfaf0d4dc0ff91986819290",
}


def test_zoom_convention() -> None:
    assert cells_per_tile(Z_DETAIL) == 16
    assert cells_per_tile(0) == 64
    assert cells_per_tile(Z_MIN) == 16 << (Z_DETAIL - Z_MIN)


@pytest.mark.parametrize(("z", "x", "y"), sorted(GOLDEN))
def test_golden_tile_digests(make_world: WorldFactory, z: int, x: int, y: int) -> None:
    world = make_world(BUNDLED_TERRAIN, seed=42, S=16, V=3)
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
    world = make_sample_world("lakes", seed=42, S=16, V=4)
    png = render_tile(world, z, x, y)
    assert hashlib.sha256(png).hexdigest() == GOLDEN_SAMPLE[(z, x, y)]


def test_sample_detail_cells_are_flat_squares(make_sample_world: WorldFactory) -> None:
    world = make_sample_world("city", seed=2)
    rgb = tile_rgb(world, Z_DETAIL, 3, -2)
    assert world.model.colours is not None
    expected = world.model.colours[world.region(48, -32, 16, 16)]
    cells = rgb.reshape(16, 16, 16, 16, 3)  # (cell row, px row, cell col, px col, rgb)
    assert np.all(cells == expected[:, None, :, None, :])


def test_sample_far_zoom_is_one_colour_shaded_by_level(make_sample_world: WorldFactory) -> None:
    world = make_sample_world("lakes", seed=2)
    rgb = tile_rgb(world, -6, 0, 0).reshape(-1, 3).astype(np.int64)
    mean = world.model.mean_colour()
    shades = {tuple(min(255, int(c)) for c in mean * s // 1000) for s in range(870, 1130)}
    assert {tuple(p) for p in np.unique(rgb, axis=0).tolist()} <= shades
