from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from worldgen.engine.tileset import Tileset
from worldgen.errors import InputError
from worldgen.world.patches import (
    allowed_combinations,
    build_library,
    check_library,
    library_version,
    load_or_build,
)

from .conftest import ALL_TILESETS


@pytest.mark.parametrize("path", ALL_TILESETS, ids=lambda p: f"{p.parent.parent.name}/{p.stem}")
def test_library_is_complete_and_sound(
    path: Path, tilesets: dict[Path, Tileset], lib_dir: Path
) -> None:
    ts = tilesets[path]
    lib = load_or_build(ts, 8, 3, lib_dir)
    assert lib.patches.shape == (len(allowed_combinations(lib.classes)), 3, 9, 9)
    assert check_library(lib, ts.allowed) == []
    for tl, tr, br, bl in allowed_combinations(lib.classes):
        assert lib.combo_index[tl, tr, br, bl] >= 0


def test_cache_round_trip_and_versioning(tilesets: dict[Path, Tileset], tmp_path: Path) -> None:
    ts = tilesets[ALL_TILESETS[0]]
    built = load_or_build(ts, 8, 2, tmp_path)
    files = list(tmp_path.glob("*.npz"))
    assert [f.stem for f in files] == [built.version]
    loaded = load_or_build(ts, 8, 2, tmp_path)
    assert np.array_equal(loaded.patches, built.patches)
    assert library_version(ts, 8, 2) != library_version(ts, 8, 3)
    files[0].write_bytes(b"not an npz")  # a broken cache entry is rebuilt, not trusted
    assert np.array_equal(load_or_build(ts, 8, 2, tmp_path).patches, built.patches)


def _toy(allowed_pairs: set[tuple[int, int]], classes: tuple[str, ...]) -> Tileset:
    t = len(classes)
    allowed = np.zeros((4, t, t), dtype=np.bool_)
    for a, b in allowed_pairs:
        for d in range(4):
            allowed[d, a, b] = allowed[d, b, a] = True
    return Tileset(
        name="toy", variant_names=tuple(f"t{k} 0" for k in range(t)),
        tile_of_variant=tuple(f"t{k}" for k in range(t)), classes=classes,
        weights=np.ones(t), allowed=allowed, images=None, tile_size=1,
    )  # fmt: skip


def test_class_without_plain_tile_is_refused() -> None:
    ts = _toy({(0, 0), (0, 1)}, ("a", "b"))
    with pytest.raises(InputError, match="class 'b'"):
        build_library(ts, 8, 2)


def test_unjoinable_classes_are_refused_naming_them() -> None:
    ts = _toy({(0, 0), (1, 1)}, ("sea", "land"))
    with pytest.raises(InputError, match=r"'sea'.*'land'"):
        build_library(ts, 8, 2)


def test_bad_sizes_are_refused(tilesets: dict[Path, Tileset]) -> None:
    ts = tilesets[ALL_TILESETS[0]]
    with pytest.raises(InputError, match="even"):
        build_library(ts, 7, 2)
    with pytest.raises(InputError, match="variants"):
        build_library(ts, 8, 0)
