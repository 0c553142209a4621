"""Districts of one-class worlds (world/districts.py): which labels, the rows, caching, and that
a world and its far zooms really lean by district."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from worldgen.errors import InputError
from worldgen.world import api, districts, macro, summary
from worldgen.world.api import build_world, model_for
from worldgen.world.blocks import World
from worldgen.world.calibrate import label_ids
from worldgen.world.spec import WorldSpec
from worldgen.world.summary import summary_for


@pytest.fixture(autouse=True)
def _cache(world_cache: Path) -> None:
    """Every world here uses the session's library cache, never the user's."""


def test_rows_are_neutral_between_the_districts_and_full_inside() -> None:
    labels = np.array([0, 1, 1, 2, 0], dtype=np.int64)
    rows = districts.rows_for(labels, low=1, high=2)
    assert rows.shape == (macro.BANDS, 5)
    centre = np.arange(macro.BANDS) * macro.BAND_LEVELS + macro.BAND_LEVELS // 2
    low = centre < districts.LOW_FULL
    high = centre > districts.HIGH_FULL
    neutral = (centre > districts.LOW_EDGE) & (centre < districts.HIGH_EDGE)
    assert np.all(rows[low][:, [1, 2]] == districts.STRENGTH)
    assert np.all(rows[low][:, [0, 3, 4]] == 1.0)
    assert np.all(rows[high][:, 3] == districts.STRENGTH)
    assert np.all(rows[high][:, [0, 1, 2, 4]] == 1.0)
    assert np.all(rows[neutral] == 1.0)
    # the fade is monotone and quantised: few distinct rows, so the summary learns few groups
    assert len({r.tobytes() for r in rows}) <= 2 * districts.STEPS + 1
    assert np.all(np.diff(rows[:, 1]) <= 0)
    assert np.all(np.diff(rows[:, 3]) >= 0)


def test_only_one_class_samples_without_ground_get_districts() -> None:
    terrain = model_for(WorldSpec("tileset", "terrain", 1))
    flowers = model_for(WorldSpec.of_kind("overlapping", "flowers", 1))
    assert districts.district_labels(terrain, "any") is None
    assert districts.district_labels(flowers, "any") is None
    pipes = model_for(WorldSpec("tileset", "pipes", 1))  # a tile's boost reshapes structures
    assert districts.district_labels(pipes, "any") is None
    assert build_world(WorldSpec("tileset", "terrain", 1, S=8, V=2)).bias.profiles.shape[0] > 1


def test_a_world_without_refinement_layers_has_no_districts() -> None:
    """Districts weigh refinement solves only; a base-layer world would just split its summary
    into groups that differ by nothing but learning noise."""
    layered = build_world(WorldSpec("sample", "corridors", 3, S=16, V=2))
    bare = build_world(WorldSpec("sample", "corridors", 3, S=16, V=2, layers=0))
    assert layered.districts
    assert not bare.districts
    assert len({r.tobytes() for r in bare.profiles}) == 1


def test_city_leans_to_its_bricks_and_its_parks() -> None:
    """Measured leverage, not weights: city's outlines carry a quarter of its weight but cannot
    grow; its red buildings and its parks can, and they move the colour in opposite ways."""
    city = model_for(WorldSpec("sample", "city", 1))
    pair = districts.learn_labels(city)
    assert pair is not None
    colours = districts.label_colours(city, label_ids(city))
    low, high = (colours[k].astype(int).tolist() for k in pair)
    red, green = [170, 78, 58], [94, 160, 72]
    assert {tuple(low), tuple(high)} == {tuple(red), tuple(green)}


def test_labels_come_from_the_disk_cache_and_a_bad_file_is_relearnt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(districts, "districts_dir", lambda: tmp_path / "districts")
    monkeypatch.setattr(districts, "_MEMO", {})
    model = model_for(WorldSpec("sample", "corridors", 1))
    learnt = districts.district_labels(model, "lib-a")
    assert learnt is not None
    files = sorted((tmp_path / "districts").glob("*.npz"))
    assert len(files) == 1
    calls: list[int] = []

    def counting(m: object) -> tuple[int, int] | None:
        calls.append(1)
        return None

    monkeypatch.setattr(districts, "learn_labels", counting)
    monkeypatch.setattr(districts, "_MEMO", {})  # a new process: disk cache warm
    assert districts.district_labels(model, "lib-a") == learnt
    assert calls == []
    good = files[0].read_bytes()
    for bad in (b"not an npz", b"", good[: len(good) // 2]):  # damaged, empty, truncated
        files[0].write_bytes(bad)
        monkeypatch.setattr(districts, "_MEMO", {})
        assert districts.district_labels(model, "lib-a") is None  # relearnt: "none" this time
    assert calls == [1, 1, 1]
    monkeypatch.setattr(districts, "_MEMO", {})
    assert districts.district_labels(model, "lib-a") is None  # a cached "none" is kept
    assert calls == [1, 1, 1]


def _share(world: World, label: int, x: int, y: int) -> float:
    grid = world.region(x, y, 64, 64)
    return float(np.mean(label_ids(world.model)[grid] == label))


def _place(seed: int, want: str) -> tuple[int, int]:
    """A 64² window whose every cell lies in the ``want`` district (searched on a coarse grid)."""
    for j in range(-200, 200):
        for i in range(-200, 200):
            x, y = i * 613, j * 577
            lv = macro.level(seed, np.arange(x, x + 64)[None, :], np.arange(y, y + 64)[:, None])
            if want == "low" and int(lv.max()) < districts.LOW_FULL:
                return x, y
            if want == "neutral" and districts.LOW_EDGE < int(lv.min()) <= int(lv.max()) < (
                districts.HIGH_EDGE
            ):
                return x, y
    raise AssertionError(f"no {want} window")


def test_a_city_world_leans_inside_its_districts_and_its_summary_shows_them() -> None:
    world = build_world(WorldSpec("sample", "city", 5, S=32, V=2))  # S=16: ring-bound, leans little
    pair = districts.district_labels(world.model, world.lib.version)
    assert pair is not None
    low = pair[0]
    lx, ly = _place(5, "low")
    nx, ny = _place(5, "neutral")
    assert _share(world, low, lx, ly) > _share(world, low, nx, ny) + 0.05
    # the calibration's twin is neutral everywhere: one profile row
    twin = World(world.model, 5, S=32, V=2, layers=world.layers, library=world.lib, districts=False)
    assert len({r.tobytes() for r in twin.profiles}) == 1
    learnt = summary_for(world)
    colours = learnt.colours().astype(int)
    g_low = learnt.group[int(world.profile_at(np.array(lx), np.array(ly)))]
    g_mid = learnt.group[int(world.profile_at(np.array(nx), np.array(ny)))]
    assert int(learnt.counts.sum()) == summary.DISTRICT_WINDOWS * summary.LEARN_SIDE**2
    assert g_low != g_mid
    assert int(np.abs(colours[g_low] - colours[g_mid]).sum()) >= 6  # a far zoom shows the district


def test_district_files_travel_with_an_uploaded_model(world_cache: Path) -> None:
    """A library job copies a model's cache files to other machines (``install_cache_file``):
    district labels are one of them; any other folder name is refused."""
    name = "districts/" + "ab" * 12 + ".npz"
    api.install_cache_file(name, b"payload")
    assert (world_cache / name).read_bytes() == b"payload"
    with pytest.raises(InputError, match="districts/"):
        api.install_cache_file("district/" + "ab" * 12 + ".npz", b"payload")
