"""Shared factories: worlds over bundled and shared tilesets, with a per-session library cache."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from worldgen.engine.tileset import Tileset, load_tileset
from worldgen.world.blocks import World, WorldConfig
from worldgen.world.patches import load_or_build

REPO = Path(__file__).resolve().parents[2]
BUNDLED_TERRAIN = REPO / "src" / "worldgen" / "tilesets" / "terrain" / "terrain.xml"
SHARED = REPO.parent / "shared" / "samples" / "tilesets"
SHARED_TILESETS = [SHARED / n / f"{n}.xml" for n in ("terrain", "pipes", "dungeon")]
ALL_TILESETS = [BUNDLED_TERRAIN, *(p for p in SHARED_TILESETS if p.is_file())]

WorldFactory = Callable[..., World]


@pytest.fixture(scope="session")
def lib_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("patches")


@pytest.fixture(scope="session")
def tilesets() -> dict[Path, Tileset]:
    return {p: load_tileset(p) for p in ALL_TILESETS}


@pytest.fixture
def make_world(lib_dir: Path, tilesets: dict[Path, Tileset]) -> WorldFactory:
    """``make_world(path=BUNDLED_TERRAIN, seed=7, S=8, layers=2, V=3)``: a fresh world."""

    def make(
        path: Path = BUNDLED_TERRAIN, seed: int = 7, S: int = 8, layers: int = 2, V: int = 3
    ) -> World:
        ts = tilesets[path]
        lib = load_or_build(ts, S, V, lib_dir)
        config = WorldConfig(str(path), None, seed, S, V, layers, str(lib_dir))
        return World(ts, seed, S=S, V=V, layers=layers, library=lib, config=config)

    return make
