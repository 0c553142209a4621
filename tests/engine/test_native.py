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
    # built for this machine's own level (the server's start-up log names it)
    assert _jit.describe() == f"native {_jit.cpu_level()}"


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
    assert _jit._load_native() is None  # a stamp of before levels: no level named, rebuilt
    stamp.write_text(f"{_jit.source_stamp()} {_jit.GENERIC}")
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


_V2 = frozenset({"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"})
_V3 = _V2 | {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}
_V4 = _V3 | {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}


def test_the_cpu_level_is_the_highest_whose_features_the_machine_has() -> None:
    assert _jit.cpu_level(frozenset()) == _jit.GENERIC  # not x86-64, or no /proc/cpuinfo
    assert _jit.cpu_level(_V2) == "x86-64-v2"
    assert _jit.cpu_level(_V3 - {"fma"}) == "x86-64-v2"  # one feature short of v3
    assert _jit.cpu_level(_V3) == "x86-64-v3"
    assert _jit.cpu_level(_V4 - {"avx512dq"}) == "x86-64-v3"
    assert _jit.cpu_level(_V4 | {"sha_ni", "avx512vnni"}) == "x86-64-v4"


def test_a_module_runs_only_on_a_cpu_of_its_level_or_newer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module built for a newer CPU (a Docker image from another machine) would fault here:
    its stamp names its level, so it is refused and the JIT runs instead; an older level runs."""
    stamp = tmp_path / "stamp"
    monkeypatch.setattr(_jit, "stamp_path", lambda: stamp)
    cases = [  # (level built for, this machine's flags, loaded)
        ("x86-64-v4", _V4, True),
        ("x86-64-v4", _V3, False),
        ("x86-64-v4", frozenset(), False),
        ("x86-64-v3", _V4, True),
        ("x86-64-v3", _V2, False),
        (_jit.GENERIC, frozenset(), True),
        (_jit.GENERIC, _V4, True),
        ("pentium", _V4, False),
    ]
    for level, flags, loaded in cases:
        monkeypatch.setattr(_jit, "_cpu_flags", lambda flags=flags: flags)
        stamp.write_text(f"{_jit.source_stamp()} {level}\n")
        assert (_jit._load_native() is not None) == loaded, (level, sorted(flags))


def test_the_build_level_is_this_machines_unless_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_jit, "_cpu_flags", lambda: _V3)
    monkeypatch.delenv("WORLDGEN_NATIVE_CPU", raising=False)
    assert _jit.build_level() == "x86-64-v3"
    monkeypatch.setenv("WORLDGEN_NATIVE_CPU", "generic")
    assert _jit.build_level() == _jit.GENERIC
    monkeypatch.setenv("WORLDGEN_NATIVE_CPU", "x86-64-v9")
    with pytest.raises(ValueError, match="WORLDGEN_NATIVE_CPU must be one of"):
        _jit.build_level()
