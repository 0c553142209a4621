"""Calibration of refinement solves (world/calibrate.py): which models, what it learns, caching."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from tests.world.conftest import SHARED_TILESETS, WorldFactory
from worldgen.world import calibrate
from worldgen.world.api import build_world, model_for
from worldgen.world.blocks import World
from worldgen.world.spec import WorldSpec


def spec(source: Literal["tileset", "sample"], name: str) -> WorldSpec:
    return WorldSpec(source, name, 42)


def test_only_one_class_models_without_ground_are_calibrated() -> None:
    assert calibrate.wants_calibration(model_for(spec("sample", "lakes")))
    assert calibrate.wants_calibration(model_for(spec("tileset", "pipes")))
    assert not calibrate.wants_calibration(model_for(spec("tileset", "terrain")))  # classes
    flowers = WorldSpec.of_kind("overlapping", "flowers", 42)
    assert not calibrate.wants_calibration(model_for(flowers))  # a ground


def test_labels_drop_the_orientation_and_follow_the_colour() -> None:
    roads = model_for(spec("tileset", "roads"))
    ids = calibrate.label_ids(roads)
    names = [label.rsplit(" ", 1)[0] for label in roads.labels]
    for a, b in [(i, j) for i in range(len(names)) for j in range(len(names))]:
        assert (ids[a] == ids[b]) == (names[a] == names[b])
    lakes = model_for(spec("sample", "lakes"))
    assert lakes.colours is not None
    ids = calibrate.label_ids(lakes)
    assert int(ids.max()) + 1 == len({tuple(c) for c in lakes.colours.tolist()})


def _l1(world: World, target: np.ndarray, labels: np.ndarray) -> float:
    grid = world.region(1000, -700, 192, 192)
    freq = np.bincount(labels[grid].ravel(), minlength=target.shape[0]) / grid.size
    return float(np.abs(freq - target).sum())


def test_calibration_brings_the_label_mix_towards_a_plain_solve(world_cache: Path) -> None:
    """A `pipes` world (32-cell blocks) draws a mix further from a plain solve's than its
    calibrated twin: measured away from the calibration windows, at another seed."""
    world = build_world(WorldSpec("tileset", "pipes", 9))
    assert world.profiles is not world.bias.profiles  # calibrated
    labels = calibrate.label_ids(world.model)
    target = calibrate._target(world.model, labels, int(labels.max()) + 1)
    assert target is not None
    plain = World(
        world.model, 9, S=world.S, V=world.V, layers=world.layers, library=world.lib,
        multipliers=np.ones(world.model.size),
    )  # fmt: skip
    assert _l1(world, target, labels) < 0.8 * _l1(plain, target, labels)


def test_multipliers_come_from_the_disk_cache_and_a_bad_file_is_relearnt(
    make_world: WorldFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a private cache folder and memo: the session's shared cache is never touched (its files
    # are read by the pool's processes of other tests)
    monkeypatch.setattr(calibrate, "calibrations_dir", lambda: tmp_path / "calibrations")
    monkeypatch.setattr(calibrate, "_MEMO", {})
    world = make_world(SHARED_TILESETS[1])
    assert calibrate.wants_calibration(world.model)
    learnt = np.array(world.profiles[0] / world.bias.profiles[0])
    files = sorted((tmp_path / "calibrations").glob("*.npz"))
    assert len(files) == 1
    monkeypatch.setattr(calibrate, "_MEMO", {})  # a new process: memo empty, disk cache warm
    calls: list[int] = []

    def counting(model: object, window: calibrate.Window) -> None:
        calls.append(1)
        return None

    monkeypatch.setattr(calibrate, "learn_multipliers", counting)
    again = World(world.model, 7, S=world.S, V=world.V, layers=world.layers, library=world.lib)
    assert calls == []
    assert np.array_equal(again.profiles[0] / again.bias.profiles[0], learnt)
    monkeypatch.setattr(calibrate, "_MEMO", {})
    good = files[0].read_bytes()
    for bad in (b"not an npz", b"", good[: len(good) // 2]):  # damaged, empty, truncated
        files[0].write_bytes(bad)
        monkeypatch.setattr(calibrate, "_MEMO", {})
        World(world.model, 7, S=world.S, V=world.V, layers=world.layers, library=world.lib)
    assert calls == [1, 1, 1]  # relearnt (here: "not calibratable", stored as ones)


def test_no_refinement_layers_no_calibration(make_sample_world: WorldFactory) -> None:
    world = make_sample_world("lakes", layers=0)
    assert world.profiles is world.bias.profiles


def test_a_weak_response_still_reaches_its_target(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared dungeon's background moves ~0.1x as much as its weight: the step grows while
    a label keeps missing in one direction, so the learnt mix lands near the target anyway. A
    rare label that the windows miss by less than DEAD_BAND does not climb."""
    model = model_for(spec("tileset", "pipes"))
    labels = calibrate.label_ids(model)
    count = int(labels.max()) + 1
    first = np.array([int(np.flatnonzero(labels == k)[0]) for k in range(count)])
    base = np.linspace(1.0, 2.0, count)
    base[-1] = 1e-9  # a label no window shows
    target = np.linspace(2.0, 1.0, count)
    target[-1] = 0.5 * calibrate.DEAD_BAND * target[:-1].sum()
    target /= target.sum()
    monkeypatch.setattr(calibrate, "_target", lambda *_: target)

    def shares(mult: np.ndarray) -> np.ndarray:
        drawn = base * mult**0.1  # a weak response: 10x the weight, +26 % the share
        out: np.ndarray = drawn / drawn.sum()
        return out

    def window(per_variant: np.ndarray, seed: int) -> np.ndarray:
        per_label = np.array([per_variant[first[k]] for k in range(count)])
        cells = np.round(shares(per_label) * 100_000).astype(np.int64)
        return np.repeat(first, cells).astype(np.int32)[None, :]

    learnt = calibrate.learn_multipliers(model, window)
    assert learnt is not None
    per_label = np.array([learnt[first[k]] for k in range(count)])
    before = float(np.abs(shares(np.ones(count)) - target).sum())
    after = float(np.abs(shares(per_label) - target).sum())
    assert after < 0.2 * before
    # label 0 was drawn least against its target: it gained most. The missed rare label kept
    # its weight (the old rule doubled it every round, above every other label)
    assert per_label.max() == per_label[0] == 1.0
    assert per_label[-1] < per_label[0]
