from __future__ import annotations

import hashlib

import pytest

from worldgen.errors import InputError
from worldgen.world.render import Z_DETAIL, Z_MIN, cells_per_tile, render_tile

from .conftest import BUNDLED_TERRAIN, WorldFactory

# A digest change must come with a library/algorithm version bump (docs/world.md).
GOLDEN = {
    (2, -1, 3): "ecfd14589413e4ba2d7d4937b7e2f9a49d596aadc64c6e6c968b92859845c9bd",
    (0, -1, 3): "6ebe47edbe5b847d2e3fe2e3e73b0df7ff84e3b89db247228e17fa8130aba62a",
    (-6, 0, 0): "514248fe03c65c2d4d71fc0cc8f5f58970520b41094ea96097b3b515acbb126f",
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
