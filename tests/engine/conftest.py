"""Shared factories of the engine tests: sample folders and models built once per session.

The samples are the repository's copy in ``tests/data/samples`` (:mod:`tests.samples`), so a
fresh clone runs every test.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.samples import SAMPLES
from worldgen.engine.patterns import OverlappingModel, extract_patterns, load_sample
from worldgen.engine.tileset import Tileset, load_tileset

REPO = Path(__file__).resolve().parents[2]
SHARED_SAMPLES = SAMPLES
BUNDLED_TILESETS = REPO / "src" / "worldgen" / "tilesets"

OverlappingFactory = Callable[..., OverlappingModel]
TilesetFactory = Callable[..., Tileset]


@pytest.fixture(scope="session")
def shared_samples() -> Path:
    """The shared samples folder (its copy in ``tests/data/samples``)."""
    return SHARED_SAMPLES


@pytest.fixture(scope="session")
def overlapping_model(shared_samples: Path) -> OverlappingFactory:
    """``overlapping_model(name, symmetry=8, N=3)``: the model of ``overlapping/<name>.png``."""
    cache: dict[tuple[str, int, int], OverlappingModel] = {}

    def make(name: str, symmetry: int = 8, N: int = 3) -> OverlappingModel:
        key = (name, symmetry, N)
        if key not in cache:
            sample, palette = load_sample(shared_samples / "overlapping" / f"{name}.png")
            cache[key] = extract_patterns(sample, palette, N, symmetry=symmetry)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def tileset() -> TilesetFactory:
    """``tileset(where, name, subset=None)``: a tileset without images.

    ``where`` is ``"shared"`` (the samples in ``tests/data``) or ``"bundled"``.
    """
    cache: dict[tuple[str, str, str | None], Tileset] = {}

    def make(where: str, name: str, subset: str | None = None) -> Tileset:
        root = {"shared": SHARED_SAMPLES / "tilesets", "bundled": BUNDLED_TILESETS}[where]
        path = root / name / f"{name}.xml"
        key = (where, name, subset)
        if key not in cache:
            cache[key] = load_tileset(path, subset, load_images=False)
        return cache[key]

    return make
