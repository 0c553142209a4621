"""Same bytes in separate processes (different PYTHONHASHSEED) and with spawn workers."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from worldgen.world.blocks import region_in_order
from worldgen.world.pool import region_parallel
from worldgen.world.spec import WorldSpec

from .conftest import WorldFactory

SCRIPT = """
import hashlib, sys
from worldgen.engine.tileset import load_tileset
from worldgen.world.blocks import World, region_in_order
from worldgen.world.patches import load_or_build
from pathlib import Path
ts = load_tileset(sys.argv[1])
lib = load_or_build(ts, 8, 3, Path(sys.argv[2]))
w = World(ts, 77, S=8, V=3, layers=2, library=lib)
g = region_in_order(w, -45, -2**30, 40, 30, sys.argv[3])
print(hashlib.sha256(g.tobytes()).hexdigest())
"""


def test_processes_with_different_hash_seeds_agree(make_world: WorldFactory, lib_dir: Path) -> None:
    world = make_world(seed=77)  # fills the library cache the children read
    assert isinstance(world.config, WorldSpec)
    expected = hashlib.sha256(world.region(-45, -(2**30), 40, 30).tobytes()).hexdigest()
    for hash_seed, order in (("1", "shuffle"), ("987654", "reverse")):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT, world.config.name, str(lib_dir), order],
            env=env, capture_output=True, text=True, check=True, timeout=120,
        )  # fmt: skip
        assert out.stdout.strip() == expected


def test_spawn_workers_match_serial(make_world: WorldFactory) -> None:
    serial = make_world(seed=5).region(-20, -20, 48, 40)
    parallel = region_parallel(make_world(seed=5), -20, -20, 48, 40, workers=2)
    assert np.array_equal(serial, parallel)


SAMPLE_SCRIPT = """
import hashlib, sys
from worldgen.world.blocks import region_in_order
from worldgen.world.api import build_world
from worldgen.world.spec import WorldSpec
w = build_world(WorldSpec("sample", "city", 77, S=8, V=2))
g = region_in_order(w, -45, -2**40, 40, 30, sys.argv[1])
print(w.version, hashlib.sha256(g.tobytes()).hexdigest())
"""


def test_sample_worlds_agree_across_processes_and_fresh_caches(
    make_sample_world: WorldFactory, tmp_path: Path
) -> None:
    world = make_sample_world("city", seed=77)
    grid = world.region(-45, -(2**40), 40, 30)
    expected = f"{world.version} {hashlib.sha256(grid.tobytes()).hexdigest()}"
    # the second child builds the patch library itself, in an empty cache
    for hash_seed, order, cache in (("3", "shuffle", None), ("424242", "reverse", tmp_path)):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        if cache is not None:
            env["WORLDGEN_CACHE_DIR"] = str(cache)
        out = subprocess.run(
            [sys.executable, "-c", SAMPLE_SCRIPT, order],
            env=env, capture_output=True, text=True, check=True, timeout=120,
        )  # fmt: skip
        assert out.stdout.strip() == expected


def test_sample_spawn_workers_match_serial(make_sample_world: WorldFactory) -> None:
    serial = region_in_order(make_sample_world("lakes", seed=5), -20, -20, 48, 40, "rowmajor")
    seen: list[int] = []
    world = make_sample_world("lakes", seed=5)
    parallel = region_parallel(world, -20, -20, 48, 40, workers=2, progress=seen.append)
    assert np.array_equal(serial, parallel)
    assert sum(seen) == len(world.top_blocks(-20, -20, 48, 40))
