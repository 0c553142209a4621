from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest

from worldgen.engine.solver import OUTPUT_VERSION
from worldgen.engine.tileset import Tileset
from worldgen.errors import InputError
from worldgen.world.api import build_world
from worldgen.world.model import WorldModel, tileset_model
from worldgen.world.patches import (
    ALGORITHM_VERSION,
    LIBRARY_SEED,
    MAX_CORNER_COLOURS,
    PAD,
    ROUNDS,
    IncompleteLibraryError,
    all_combinations,
    allowed_combinations,
    build_library,
    check_library,
    library_version,
    load_or_build,
    seam_stub,
)
from worldgen.world.spec import WorldSpec

from .conftest import ALL_SAMPLES, ALL_TILESETS, sample_id


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
    good = files[0].read_bytes()
    # a broken, empty or truncated cache entry is rebuilt, not trusted (and its file closed)
    for bad in (b"not an npz", b"", good[: len(good) // 2]):
        files[0].write_bytes(bad)
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


@pytest.mark.parametrize("name", ALL_SAMPLES, ids=sample_id)
def test_sample_library_is_complete_and_hashed(name: str, world_cache: Path) -> None:
    world = build_world(WorldSpec("sample", name, 0, S=8, V=2), allow_files=True)
    lib, model = world.lib, world.model
    assert lib.hashed
    assert 1 <= lib.classes <= MAX_CORNER_COLOURS
    assert [tuple(c) for c in lib.combos.tolist()] == all_combinations(lib.classes)
    assert check_library(lib, model.allowed) == []
    # every corner colour is the same pattern: seams differ, not corners
    assert len(set(lib.corners.tolist())) == 1


def test_sample_seams_share_their_ends_and_differ_in_the_middle(world_cache: Path) -> None:
    # every seam near a lattice vertex is the reference seam, so any two seams meet at a corner
    # as the reference patch's do (town at S = 32 kept 2 corner colours instead of 1)
    world = build_world(WorldSpec("sample", "lakes", 0, S=16, V=2), allow_files=True)
    lib, k = world.lib, seam_stub(16) + 1
    assert lib.classes >= 2
    for seams in (lib.seams_h, lib.seams_v):
        rows = seams.reshape(-1, 17)
        assert all(np.array_equal(r[:k], rows[0][:k]) for r in rows)
        assert all(np.array_equal(r[-k:], rows[0][-k:]) for r in rows)
        assert len({r[k:-k].tobytes() for r in rows}) > 1


def test_a_rare_most_frequent_pattern_does_not_make_a_one_area_base(world_cache: Path) -> None:
    # city: the park interior is the sample's most frequent pattern but 1 % of a plain city;
    # seams solved between park cells stay park, which made the whole base (and world) park
    world = build_world(WorldSpec("sample", "city", 0, S=16, V=2), allow_files=True)
    model, lib = world.model, world.lib
    park = int(np.argmax(model.weights))
    assert int(lib.corners[0]) != park
    base = world.base_region(-100, 37, 128, 128)
    shown = {model.labels[v] for v in np.unique(base).tolist()}
    assert len(shown) >= 4  # streets, pavements, buildings and roofs, not one area
    grid = world.region(-100, 37, 64, 64)
    assert len({model.labels[v] for v in np.unique(grid).tolist()}) >= 4


def _cyclic_toy(period: int) -> WorldModel:
    """A one-class 'sample' whose rows repeat with ``period`` and whose columns are free."""
    t = period
    right = np.zeros((t, t), dtype=np.bool_)
    for a in range(t):
        right[a, (a + 1) % t] = True
    free = np.ones((t, t), dtype=np.bool_)
    allowed = np.stack([right.T, free, right, free])
    colours = np.zeros((t, 3), dtype=np.uint8)
    colours[:, 0] = np.arange(t) * 40
    return WorldModel(
        name="toy", kind="overlapping", allowed=allowed, weights=np.ones(t),
        labels=tuple(f"#{40 * k:02x}0000" for k in range(t)), class_names=("all",),
        variant_class=np.zeros(t, dtype=np.int32),
        images=np.repeat(np.repeat(colours[:, None, None, :], 16, 1), 16, 2),
        colours=colours, prefer_plain=False,
    )  # fmt: skip


def test_incomplete_sample_library_names_the_combination() -> None:
    # rows of period 3 cannot return to their corner pattern after S = 8 steps
    with pytest.raises(InputError, match=r"sample toy: .*incomplete.*all/all/all/all"):
        build_library(_cyclic_toy(3), 8, 2)
    assert build_library(_cyclic_toy(2), 8, 2).hashed  # period 2 divides S


def test_tileset_library_version_is_unchanged_by_the_model(
    tilesets: dict[Path, Tileset],
) -> None:
    # the version formula of tileset libraries, written out from the tileset's own fields: the
    # world-model layer must not move tileset libraries (nor, therefore, their bytes)
    ts = tilesets[ALL_TILESETS[0]]
    classes = [c.partition(":") for c in ts.classes if c is not None]  # "lowland:dry+cold"
    names = tuple(dict.fromkeys(c[0] for c in classes))
    index = {n: k for k, n in enumerate(names)}
    prefix = f"patches/{ALGORITHM_VERSION}/{OUTPUT_VERSION}/16/4/{PAD}/{ROUNDS}/{LIBRARY_SEED}"
    h = hashlib.sha256(prefix.encode())
    h.update(ts.allowed.tobytes())
    h.update(ts.weights.astype("<f8").tobytes())
    h.update("\x00".join(names).encode())
    h.update(np.array([index[c[0]] for c in classes], "<i4").tobytes())
    h.update("\x00".join(c[2] for c in classes).encode())  # the climate tags, "+"-joined
    assert library_version(ts, 16, 4) == h.hexdigest()[:24]
    assert library_version(tileset_model(ts), 16, 4) == h.hexdigest()[:24]
    assert not build_library(ts, 8, 1).hashed


def test_an_incomplete_library_error_crosses_a_process_boundary() -> None:
    """Raised in a pool process, it reaches the caller as itself (pickled with its combination),
    not as a crashed worker."""
    error = IncompleteLibraryError("all/all/all/all cannot be completed", (0, 0, 0, 0))
    again = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert type(again) is IncompleteLibraryError
    assert (str(again), again.combo) == (str(error), (0, 0, 0, 0))
