"""Tileset previews are mosaics of the tiles with no black holes: slots past the last tile show the
most frequent tile (issue 11: the pipes and roads previews ended in black rectangles)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from worldgen import tilesets
from worldgen.world.api import preview_png

TILESETS = [e.name for e in tilesets.catalog() if e.kind == "tiled"]


@pytest.mark.parametrize("name", TILESETS)
def test_tileset_preview_has_no_black_holes(name: str) -> None:
    with Image.open(io.BytesIO(preview_png(name, 256))) as image:
        rgb = np.asarray(image.convert("RGB"))
    black = (rgb.sum(axis=2) == 0).mean()
    assert black < 0.01, f"{name}: {black:.1%} of the preview is pure black"
