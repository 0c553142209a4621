"""The kernels' decorator: machine code built ahead of time when it matches, numba's JIT otherwise.

Every numba kernel of the project (``engine/_kernels.py``, ``world/_noise.py``) is decorated with
:func:`njit` from here instead of numba's. When the *native module* ``worldgen._native_kernels``
(built by :mod:`worldgen.engine._native_build` with numba's ahead-of-time compiler, at install
time by ``scripts/bootstrap.sh``) is present and its stamp equals :func:`source_stamp` of the
sources in this checkout, the exported kernels are its functions and **numba is never
imported**: a ``worldgen`` process that solves then starts in ~0.2 s instead of ~0.7 s (numba's
import alone is 0.4 s of CPU, loading the cached kernels another 0.25 s). Otherwise (no module,
a stale one, ``WORLDGEN_NATIVE=0``, or ``NUMBA_DISABLE_JIT=1`` for coverage) the decorator is
numba's ``njit`` with the same arguments, exactly as before.

Invariants: both paths compile the same source with the same flags, so outputs are
byte-identical (the golden digests are checked on both); a stale native module is never used
(the stamp covers every source that is compiled into it, the build script, the Python version
and the machine); helpers that are only called from other kernels stay plain Python functions
on the native path (nothing calls them from Python).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["EXPORTS", "NATIVE", "NATIVE_MODULE", "compiled", "njit", "source_stamp", "stamp_path"]

NATIVE_MODULE = "worldgen._native_kernels"
"""Import name of the ahead-of-time module (a file next to ``worldgen/__init__.py``)."""

EXPORTS: dict[str, tuple[str, ...]] = {
    "worldgen.engine._kernels": ("solve", "decode_grid", "count_forbidden"),
    "worldgen.world._noise": (
        "level_grid",
        "raw_points",
        "level_points",
        "climate_grid",
        "combine_climate",
    ),
}
"""The kernels called from Python, per module: the native module exports exactly these."""

_PACKAGE = Path(__file__).resolve().parents[1]
_SOURCES = ("engine/_kernels.py", "world/_noise.py", "engine/_native_build.py")


def stamp_path() -> Path:
    """Where the build writes the stamp of the sources it compiled."""
    return _PACKAGE / "_native_kernels.stamp"


def source_stamp() -> str:
    """A digest of everything the native module's machine code depends on."""
    digest = hashlib.sha256()
    for name in _SOURCES:
        digest.update(name.encode() + b"\0" + (_PACKAGE / name).read_bytes() + b"\0")
    # numba's version is left out on purpose: the module runs without numba, and reading the
    # installed version costs 16 ms of start-up (importlib.metadata)
    digest.update(f"{sys.version_info[:2]} {platform.machine()}".encode())
    return digest.hexdigest()


def _jit_disabled() -> bool:
    return os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")


def _load_native() -> ModuleType | None:
    """The native module if it may be used (present, not refused, built from these sources)."""
    if os.environ.get("WORLDGEN_NATIVE", "1") == "0" or _jit_disabled():
        return None
    try:
        built = stamp_path().read_text().strip()
    except OSError:
        return None
    if built != source_stamp():
        return None
    try:
        return importlib.import_module(NATIVE_MODULE)
    except ImportError:
        return None


NATIVE: ModuleType | None = _load_native()
"""The native module in use, or None (numba's JIT compiles the kernels)."""


_COMPILED = NATIVE is not None or not _jit_disabled()  # numba too reads its variable once


def compiled() -> bool:
    """True when kernels run as machine code (native or JIT), False under ``NUMBA_DISABLE_JIT``."""
    return _COMPILED


def njit(*args: Any, **flags: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit(*args, **flags)``, or the native module's function of the same name."""

    def decorate(function: Callable[..., Any]) -> Any:
        if NATIVE is not None:
            if function.__name__ in EXPORTS.get(function.__module__, ()):
                return getattr(NATIVE, function.__name__)
            return function  # a helper inlined into the native kernels; never called from Python
        import numba

        return numba.njit(*args, **flags)(function)

    return decorate
