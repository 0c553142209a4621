"""One world at every zoom: each cell zoom is the 2x box downsample of the next, for every
bundled model; exports, ``worldgen tile``, ``worldgen region --out X.png`` and the map draw the
same pixels."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from worldgen import tilesets
from worldgen.cli import main
from worldgen.world.api import build_world, export_png, tile_png
from worldgen.world.blocks import World
from worldgen.world.render import TILE_PX, cells_per_tile
from worldgen.world.spec import WorldSpec

MODELS = [WorldSpec.of_kind(e.kind, e.name, 42) for e in tilesets.catalog()]

U8 = npt.NDArray[np.uint8]


@pytest.fixture(autouse=True)
def _cache(world_cache: Path) -> None:
    """Every world here shares the session's library cache."""


def decode(png: bytes) -> npt.NDArray[np.int64]:
    with Image.open(io.BytesIO(png)) as im:
        assert im.mode == "RGB"
        return np.asarray(im, dtype=np.int64)


def tile(world: World, z: int, x: int, y: int) -> npt.NDArray[np.int64]:
    return decode(tile_png(world, z, x, y))


def downsampled_children(world: World, z: int, x: int, y: int) -> npt.NDArray[np.float64]:
    """The four z+1 tiles under ``(z, x, y)``, side by side, then 2x box-downsampled."""
    big = np.empty((2 * TILE_PX, 2 * TILE_PX, 3), dtype=np.int64)
    for j in (0, 1):
        for i in (0, 1):
            big[j * TILE_PX : (j + 1) * TILE_PX, i * TILE_PX : (i + 1) * TILE_PX] = tile(
                world, z + 1, 2 * x + i, 2 * y + j
            )
    out: npt.NDArray[np.float64] = big.reshape(TILE_PX, 2, TILE_PX, 2, 3).mean(axis=(1, 3))
    return out


@pytest.mark.parametrize("spec", MODELS, ids=[m.name for m in MODELS])
def test_each_cell_zoom_is_the_box_downsample_of_the_next(spec: WorldSpec) -> None:
    world = build_world(spec)
    # a chain of tiles from z=-1 down to z=1, left of the origin (negative x), alternating the
    # child it follows so both halves of the lattice are visited
    z, x, y = -1, -1, 0
    for step in range(3):
        parent = tile(world, z, x, y)
        assert np.abs(parent - downsampled_children(world, z, x, y)).max() <= 1, (z, x, y)
        z, x, y = z + 1, 2 * x + step % 2, 2 * y + 1 - step % 2


def test_far_cell_zoom_on_both_sides_of_the_origin() -> None:
    world = build_world(WorldSpec("tileset", "terrain", 42))
    for x, y in ((-1, -1), (0, 0)):
        parent = tile(world, -2, x, y)
        assert np.abs(parent - downsampled_children(world, -2, x, y)).max() <= 1, (x, y)


@pytest.mark.parametrize(
    "spec",
    [WorldSpec("tileset", "terrain", 7), WorldSpec("sample", "lakes", 7)],
    ids=["terrain", "lakes"],
)
def test_exports_draw_the_tiles_pixels(spec: WorldSpec) -> None:
    world = build_world(spec)
    for z, x, y in ((2, -3, 1), (0, -1, -1), (-1, 0, -1)):
        n = cells_per_tile(z)
        exported = export_png(world, x * n, y * n, n, n, TILE_PX // n)
        assert np.array_equal(decode(exported), tile(world, z, x, y)), (z, x, y)


def test_the_cli_draws_the_maps_pixels(tmp_path: Path) -> None:
    world = build_world(WorldSpec("tileset", "terrain", 42))
    model = ("--tileset", "terrain", "--seed", "42")
    for z, x, y in ((0, -1, 2), (-4, -1, 0)):
        out = tmp_path / f"t{z}.png"
        where = ("--z", str(z), "--x", str(x), "--y", str(y))
        assert main(["tile", *model, *where, "--out", str(out)]) == 0
        assert out.read_bytes() == tile_png(world, z, x, y)
    # a region picture is 16 px per cell; its 4x4 box means are the z=0 tile's pixels (within 1:
    # terrain is lit, and each lit 16-px pixel is floored on its own)
    out = tmp_path / "r.png"
    window = ("--x", "-64", "--y", "128", "--width", "64", "--height", "64")
    assert main(["region", *model, *window, "--out", str(out)]) == 0
    region = decode(out.read_bytes())
    assert region.shape == (1024, 1024, 3)
    boxed = region.reshape(TILE_PX, 4, TILE_PX, 4, 3).sum(axis=(1, 3)) // 16
    assert np.abs(boxed - tile(world, 0, -1, 2)).max() <= 1


def test_the_cli_draws_a_bundled_samples_map_world(tmp_path: Path) -> None:
    """A bundled name means the map's world (its catalog settings: flowers is a ground world);
    explicit options still override them."""
    flowers = WorldSpec.of_kind("overlapping", "flowers", 42)
    out = tmp_path / "f.png"
    where = ("--z", "0", "--x", "0", "--y", "-1", "--out", str(out))
    assert main(["tile", "--sample", "flowers", "--seed", "42", *where]) == 0
    assert out.read_bytes() == tile_png(build_world(flowers), 0, 0, -1)
    plain = WorldSpec("sample", "flowers", 42)  # symmetry 8, no ground
    assert main(["tile", "--sample", "flowers", "--seed", "42", "--symmetry", "8",
                 "--no-ground", *where]) == 0  # fmt: skip
    assert out.read_bytes() == tile_png(build_world(plain), 0, 0, -1)
