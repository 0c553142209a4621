"""Same bytes in separate processes (different PYTHONHASHSEED) and with spawn workers."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np

from worldgen.world.parallel import region_parallel

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


def test_processes_with_different_hash_seeds_agree(make_world: WorldFactory) -> None:
    world = make_world(seed=77)  # fills the library cache the children read
    assert world.config is not None
    expected = hashlib.sha256(world.region(-45, -(2**30), 40, 30).tobytes()).hexdigest()
    for hash_seed, order in (("1", "shuffle"), ("987654", "reverse")):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT, world.config.tileset_path,
             str(world.config.cache_dir), order],
            env=env, capture_output=True, text=True, check=True, timeout=120,
        )  # fmt: skip
        assert out.stdout.strip() == expected


def test_spawn_workers_match_serial(make_world: WorldFactory) -> None:
    serial = make_world(seed=5).region(-20, -20, 48, 40)
    parallel = region_parallel(make_world(seed=5), -20, -20, 48, 40, workers=2)
    assert np.array_equal(serial, parallel)
