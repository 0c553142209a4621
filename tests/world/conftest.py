"""Shared factories: worlds over bundled and shared tilesets and samples, with a per-session
library cache (``$WORLDGEN_CACHE_DIR`` points at it for the whole session, spawned workers too)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.samples import OVERLAPPING, TILESET_NAMES, sample_tileset
from worldgen.engine.tileset import Tileset, load_tileset
from worldgen.world.api import build_world
from worldgen.world.blocks import World
from worldgen.world.patches import load_or_build
from worldgen.world.spec import WorldSpec

REPO = Path(__file__).resolve().parents[2]
BUNDLED_TERRAIN = REPO / "src" / "worldgen" / "tilesets" / "terrain" / "terrain.xml"
SHARED_TILESETS = [sample_tileset(n) for n in TILESET_NAMES]
ALL_TILESETS = [BUNDLED_TERRAIN, *SHARED_TILESETS]
BUNDLED_SAMPLES = ["lakes", "corridors", "flowers", "city"]
SHARED_SAMPLES = sorted(str(p) for p in OVERLAPPING.glob("*.png"))
ALL_SAMPLES = [*BUNDLED_SAMPLES, *SHARED_SAMPLES]

WorldFactory = Callable[..., World]


def sample_id(name: str) -> str:
    """A short test id for a bundled name or a shared sample path."""
    return Path(name).stem if name.endswith(".png") else name


@pytest.fixture(scope="session")
def world_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("worldgen-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORLDGEN_CACHE_DIR", str(root))
        yield root


@pytest.fixture(scope="session")
def lib_dir(world_cache: Path) -> Path:
    return world_cache / "patches"


@pytest.fixture(scope="session")
def tilesets() -> dict[Path, Tileset]:
    return {p: load_tileset(p) for p in ALL_TILESETS}


@pytest.fixture
def make_world(lib_dir: Path, tilesets: dict[Path, Tileset]) -> WorldFactory:
    """``make_world(path=BUNDLED_TERRAIN, seed=7, S=8, layers=2, V=3)``: a fresh world over a
    tileset file, carrying the spec a worker rebuilds it from (its library is in ``lib_dir``)."""

    def make(
        path: Path = BUNDLED_TERRAIN, seed: int = 7, S: int = 8, layers: int = 2, V: int = 3
    ) -> World:
        ts = tilesets[path]
        lib = load_or_build(ts, S, V, lib_dir)
        spec = WorldSpec("tileset", str(path), seed, S=S, V=V, layers=layers)
        return World(ts, seed, S=S, V=V, layers=layers, library=lib, config=spec)

    return make


@pytest.fixture
def make_sample_world(world_cache: Path) -> WorldFactory:
    """``make_sample_world(name="lakes", seed=7, S=8, layers=2, V=2)``: a fresh sample world
    (bundled name or a PNG path), built from its :class:`WorldSpec`."""

    def make(name: str = "lakes", seed: int = 7, S: int = 8, layers: int = 2, V: int = 2) -> World:
        spec = WorldSpec("sample", name, seed, S=S, V=V, layers=layers)
        return build_world(spec, allow_files=True)

    return make
