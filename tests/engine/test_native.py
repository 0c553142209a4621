"""The native kernels (ahead-of-time build) are in use, stay fresh, and equal the JIT's output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from worldgen.engine import _jit

ROOT = Path(__file__).resolve().parents[2]

# Solves of every propagation method and a world tile (which runs the noise kernels), printed as
# digests: the same script runs on the native module and under numba's JIT.
_PROBE = """
import hashlib, json, sys
import numpy as np
from worldgen.engine import _jit
from worldgen.engine.generate import OverlappingJob, build_overlapping, generate_overlapping
from worldgen.engine.rules import forbidden_pairs
from worldgen.world.api import build_world, tile_png
from worldgen.world.spec import WorldSpec
model = build_overlapping(OverlappingJob(__import__("pathlib").Path(sys.argv[1])))
out = {"native": _jit.NATIVE is not None, "numba_imported": "numba" in sys.modules}
grid = generate_overlapping(model, 24, 24, periodic=True, seed=5)
out["solve"] = hashlib.sha256(grid.image.tobytes()).hexdigest()
allowed = np.ones((4, 3, 3), dtype=np.bool_)
allowed[:, 0, 2] = allowed[:, 2, 0] = False
out["forbidden"] = forbidden_pairs(np.array([[0, 2], [1, 1]], dtype=np.int32), allowed)
world = build_world(WorldSpec(source="tileset", name="pipes", seed=3))
out["tile"] = hashlib.sha256(tile_png(world, -4, -1, 0)).hexdigest()
from worldgen.engine.solver import solve
decided = solve(world.cr, 20, 12, seed=9)
out["order"] = hashlib.sha256(decided.order.tobytes() + decided.grid.tobytes()).hexdigest()
out["numba_imported"] = "numba" in sys.modules
print(json.dumps(out))
"""


def _probe(sample: Path, **env: str) -> dict[str, object]:
    environ = {**os.environ, **env}
    environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(sample)],
        capture_output=True,
        text=True,
        env=environ,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_native_module_is_built_and_used() -> None:
    assert _jit.NATIVE is not None, (
        "the native kernels are missing or stale: run scripts/bootstrap.sh "
        "(python -m worldgen.engine._native_build)"
    )


def test_native_and_jit_outputs_are_identical_and_native_never_imports_numba() -> None:
    from tests.samples import OVERLAPPING

    sample = OVERLAPPING / "islands.png"
    native = _probe(sample)
    jit = _probe(sample, WORLDGEN_NATIVE="0")
    assert native["native"] is True
    assert native["numba_imported"] is False
    assert jit["native"] is False
    assert jit["numba_imported"] is True
    assert {k: native[k] for k in ("solve", "forbidden", "tile")} == {
        k: jit[k] for k in ("solve", "forbidden", "tile")
    }
    assert native["forbidden"] == 1  # (0, 2) side by side


def test_a_stale_or_refused_native_module_is_not_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stamp = tmp_path / "stamp"
    monkeypatch.setattr(_jit, "stamp_path", lambda: stamp)
    assert _jit._load_native() is None  # no stamp: never built here
    stamp.write_text("0" * 64)
    assert _jit._load_native() is None  # built from other sources
    stamp.write_text(_jit.source_stamp())
    assert _jit._load_native() is not None
    monkeypatch.setenv("WORLDGEN_NATIVE", "0")
    assert _jit._load_native() is None
    monkeypatch.delenv("WORLDGEN_NATIVE")
    monkeypatch.setenv("NUMBA_DISABLE_JIT", "1")
    assert _jit._load_native() is None


def test_the_stamp_covers_the_kernel_sources() -> None:
    package = ROOT / "src" / "worldgen"
    digest = _jit.source_stamp()
    assert len(digest) == 64
    assert digest == _jit.source_stamp()
    sources = {"engine/_kernels.py", "world/_noise.py", "engine/_native_build.py"}
    assert all((package / name).is_file() for name in sources)
    assert sources <= set(_jit._SOURCES)
