"""The band-by-band PNG writer, the streamed tile zip and the export's plan: pixels round-trip,
archives are reproducible, bands and pieces tile the window exactly, within the pool's bounds."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from worldgen.jobs.archive import TileArchive
from worldgen.jobs.export import plan_export, plan_tiles
from worldgen.jobs.png import PngWriter
from worldgen.world.render import cells_per_tile
from worldgen.world.spec import MAX_EXPORT_PX, MAX_REGION_SIDE


@pytest.mark.parametrize("bands", [[37], [1, 36], [10, 0, 27]])
def test_png_round_trips_in_any_bands(bands: list[int]) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (37, 21, 3), dtype=np.uint8)
    writer = PngWriter(21, 37)
    out, row = writer.header(), 0
    for n in bands:
        out += writer.band(rgb[row : row + n])
        row += n
    out += writer.end()
    with Image.open(io.BytesIO(out)) as image:
        assert image.size == (21, 37)
        assert np.array_equal(np.asarray(image.convert("RGB")), rgb)


def test_png_is_the_same_bytes_whatever_the_bands() -> None:
    rgb = np.random.default_rng(2).integers(0, 4, (64, 50, 3), dtype=np.uint8)
    outputs = set()
    for cut in (1, 17, 64):
        writer = PngWriter(50, 64)
        parts = [writer.header()]
        parts += [writer.band(rgb[i : i + cut]) for i in range(0, 64, cut)]
        outputs.add(b"".join([*parts, writer.end()]))
    assert len(outputs) == 1


def test_png_refuses_wrong_rows() -> None:
    writer = PngWriter(4, 2)
    with pytest.raises(ValueError, match="expected"):
        writer.band(np.zeros((1, 5, 3), np.uint8))
    writer.band(np.zeros((2, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="rows"):
        writer.band(np.zeros((1, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="a side"):
        PngWriter(0, 1)
    short = PngWriter(4, 2)
    short.band(np.zeros((1, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="1 rows written"):
        short.end()


@pytest.mark.parametrize(
    ("w", "h", "scale", "band_px", "parallel"),
    [(16384, 3, 1, 1024, 1), (1024, 1024, 16, 1024, 2), (7, 5, 3, 4, 1), (3, 5, 1, 16, 4)],
)
def test_export_plan_tiles_the_window(
    w: int, h: int, scale: int, band_px: int, parallel: int
) -> None:
    x, y = -100, 23
    covered = np.zeros((h, w), np.int8)
    bands = plan_export(x, y, w, h, scale, band_px=band_px, parallel=parallel)
    for band in bands:
        assert len(band.pieces) >= min(parallel, w)
        assert sum(p.w for p in band.pieces) == w
        for p in band.pieces:
            assert (p.y, p.h) == (band.y, band.h)
            assert p.w <= MAX_REGION_SIDE
            assert max(p.w, p.h) * scale <= MAX_EXPORT_PX
            covered[p.y - y : p.y - y + p.h, p.x - x : p.x - x + p.w] += 1
        assert band.h * scale <= max(band_px, scale)
    assert (covered == 1).all()


def test_plan_tiles_covers_the_window_at_each_zoom() -> None:
    tiles = plan_tiles(-1, 0, 66, 1, 0, 1)
    n0, n1 = cells_per_tile(0), cells_per_tile(1)
    assert n0 == 2 * n1
    assert [t for t in tiles if t[0] == 0] == [(0, -1, 0), (0, 0, 0), (0, 1, 0)]
    assert [t for t in tiles if t[0] == 1] == [(1, tx, 0) for tx in range(-1, 3)]


def test_tile_archive_streams_a_reproducible_zip() -> None:
    outputs = []
    for _ in range(2):
        archive = TileArchive()
        parts = [archive.add(0, 1, -2, b"first"), archive.add(-3, 0, 0, b"second" * 100)]
        assert all(parts)  # every tile's bytes are ready at once
        outputs.append(b"".join([*parts, archive.close()]))
    assert outputs[0] == outputs[1]
    with zipfile.ZipFile(io.BytesIO(outputs[0])) as zf:
        assert zf.testzip() is None
        assert zf.namelist() == ["0/1/-2.png", "-3/0/0.png"]
        assert zf.read("-3/0/0.png") == b"second" * 100
