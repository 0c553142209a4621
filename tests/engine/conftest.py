"""Shared factories of the engine tests: sample folders and models built once per session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from worldgen.engine.patterns import OverlappingModel, extract_patterns, load_sample
from worldgen.engine.tileset import Tileset, load_tileset

REPO = Path(__file__).resolve().parents[2]
SHARED_SAMPLES = REPO.parent / "shared" / "samples"
BUNDLED_TILESETS = REPO / "src" / "worldgen" / "tilesets"

OverlappingFactory = Callable[..., OverlappingModel]
TilesetFactory = Callable[..., Tileset]


@pytest.fixture(scope="session")
def shared_samples() -> Path:
    """The shared sample folder (``../shared/samples``); tests that need it skip without it."""
    if not SHARED_SAMPLES.is_dir():
        pytest.skip(f"shared samples are absent ({SHARED_SAMPLES})")
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

    ``where`` is ``"shared"`` (skipped when the shared samples are absent) or ``"bundled"``.
    """
    cache: dict[tuple[str, str, str | None], Tileset] = {}

    def make(where: str, name: str, subset: str | None = None) -> Tileset:
        root = {"shared": SHARED_SAMPLES / "tilesets", "bundled": BUNDLED_TILESETS}[where]
        path = root / name / f"{name}.xml"
        if not path.is_file():
            pytest.skip(f"tileset {path} is absent")
        key = (where, name, subset)
        if key not in cache:
            cache[key] = load_tileset(path, subset, load_images=False)
        return cache[key]

    return make
