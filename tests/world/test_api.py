"""Tests of :mod:`worldgen.world.api` not covered elsewhere: the cache of decoded tile pictures.

A tileset world's model decodes its tile PNGs once per machine: the pictures are kept in
``$WORLDGEN_CACHE_DIR/tilesets/<sha256 of the files>.npz``. The cached path must draw the same
bytes as decoding, and a damaged or partial cache file must be rebuilt, never crash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from worldgen.cli import main
from worldgen.world import api

TILE = ("tile", "--tileset", "terrain", "--seed", "5", "--block-size", "8", "--variants", "3")


@pytest.fixture(autouse=True)
def _fresh_models(world_cache: Path) -> Iterator[None]:
    """Every model is built again (not taken from the process's memo of bundled models)."""
    api._bundled_model.cache_clear()
    yield
    api._bundled_model.cache_clear()


def pictures_files(world_cache: Path) -> list[Path]:
    return sorted((world_cache / "tilesets").glob("*.npz"))


def tile_bytes(tmp_path: Path, name: str) -> bytes:
    api._bundled_model.cache_clear()
    out = tmp_path / name
    assert main([*TILE, "--z", "1", "--x", "-1", "--y", "0", "--out", str(out)]) == 0
    return out.read_bytes()


def no_cache(key: str, decode: Callable[[], npt.NDArray[np.uint8]]) -> npt.NDArray[np.uint8]:
    return decode()


def test_cached_and_decoded_pictures_draw_the_same_tile(
    tmp_path: Path, world_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for old in pictures_files(world_cache):
        old.unlink()
    with monkeypatch.context() as mp:
        mp.setattr(api, "_tile_pictures", no_cache)
        decoded = tile_bytes(tmp_path, "decoded.png")
    assert pictures_files(world_cache) == []
    written = tile_bytes(tmp_path, "miss.png")  # decodes and writes the cache file
    [cached_file] = pictures_files(world_cache)
    assert tile_bytes(tmp_path, "hit.png") == written == decoded
    with np.load(cached_file, allow_pickle=False) as data:
        assert data["pictures"].shape == (41, 16, 16, 4)  # terrain's 41 files, RGBA


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def flipped(data: bytes) -> bytes:
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0xFF
    return bytes(damaged)


def wrong_array(data: bytes) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, pictures=np.zeros((3, 2), np.uint8))
    return buf.getvalue()


def too_few(data: bytes) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, pictures=np.zeros((2, 16, 16, 4), np.uint8))
    return buf.getvalue()


@pytest.mark.parametrize(
    "damage",
    [lambda data: b"", lambda data: b"PK\x03\x04", truncated, flipped, wrong_array, too_few],
    ids=["empty", "zip header", "truncated", "flipped byte", "wrong array", "too few pictures"],
)
def test_a_damaged_pictures_file_is_rebuilt_or_ignored(
    tmp_path: Path, world_cache: Path, damage: Callable[[bytes], bytes]
) -> None:
    good = tile_bytes(tmp_path, "good.png")
    [cached_file] = pictures_files(world_cache)
    intact = cached_file.read_bytes()
    cached_file.write_bytes(damage(intact))
    assert tile_bytes(tmp_path, "again.png") == good
    if damage is not too_few:  # a readable array of RGBA pictures: the loader decodes instead
        with np.load(cached_file, allow_pickle=False) as data:
            assert data["pictures"].shape == (41, 16, 16, 4)  # rebuilt
    cached_file.write_bytes(intact)
