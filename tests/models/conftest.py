"""Model-test fixtures: one cache folder for the session (uploaded models' files and their patch
libraries; ``$WORLDGEN_CACHE_DIR`` points at it, for spawned workers too), and small samples."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image


@pytest.fixture(scope="session", autouse=True)
def models_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("models-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORLDGEN_CACHE_DIR", str(root))
        yield root


def png(rgba: npt.NDArray[np.uint8]) -> bytes:
    """PNG bytes of an RGBA picture."""
    out = io.BytesIO()
    Image.fromarray(rgba).save(out, format="PNG")
    return out.getvalue()


def stripes(width: int, height: int, colours: int = 2) -> bytes:
    """A PNG of vertical stripes of ``colours`` distinct colours (one column each, repeating)."""
    rgba = np.zeros((height, width, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    column = np.arange(width) % colours
    rgba[..., 0] = (column % 256)[None, :]
    rgba[..., 1] = (column // 256)[None, :]
    return png(rgba)
