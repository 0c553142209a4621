"""The kernels' decorator: machine code built ahead of time when it matches, numba's JIT otherwise.

Every numba kernel of the project (``engine/_kernels.py``, ``world/_noise.py``) is decorated with
:func:`njit` from here instead of numba's. When the *native module* ``worldgen._native_kernels``
(built by :mod:`worldgen.engine._native_build` with numba's ahead-of-time compiler, at install
time by ``scripts/bootstrap.sh``, for this machine's CPU level, :func:`cpu_level`) is present,
built from the sources in this checkout (:func:`source_stamp`) for a level this CPU runs, the
exported kernels are its functions and **numba is never imported**: a ``worldgen`` process
that solves then starts in ~0.2 s instead of ~0.7 s (numba's import alone is 0.4 s of CPU,
loading the cached kernels another 0.25 s). Otherwise (no module, a stale one,
``WORLDGEN_NATIVE=0``, or ``NUMBA_DISABLE_JIT=1`` for coverage) the decorator is numba's
``njit`` with the same arguments, exactly as before.

Invariants: both paths compile the same source with the same flags, so outputs are
byte-identical (the golden digests are checked on both); a stale native module is never used
(the stamp covers every source that is compiled into it, the build script, the Python version,
the machine and the CPU level built for); helpers that are only called from other kernels stay plain
Python functions on the native path (nothing calls them from Python).
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

__all__ = [
    "EXPORTS",
    "GENERIC",
    "NATIVE",
    "NATIVE_MODULE",
    "build_level",
    "compiled",
    "cpu_level",
    "describe",
    "njit",
    "runnable_levels",
    "source_stamp",
    "stamp_path",
]

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


_X86_V2 = frozenset({"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"})
_X86_V3 = _X86_V2 | {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}
_X86_V4 = _X86_V3 | {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}
_X86_LEVELS: tuple[tuple[str, frozenset[str]], ...] = (
    ("x86-64-v4", _X86_V4),
    ("x86-64-v3", _X86_V3),
    ("x86-64-v2", _X86_V2),
)
"""LLVM's x86-64 micro-architecture levels and the ``/proc/cpuinfo`` flags each needs."""


GENERIC = "generic"
"""The level name of a module built for the architecture's generic CPU (no x86-64 level)."""


def cpu_level(flags: frozenset[str] | None = None) -> str:
    """The highest x86-64 level all of whose features the machine has (``flags``: its
    ``/proc/cpuinfo`` flags, read when None), or :data:`GENERIC` on other machines or when
    the flags cannot be read: what the native module is built for here unless
    ``WORLDGEN_NATIVE_CPU`` names another (:func:`build_level`).

    The noise kernels gain most: a far terrain tile's climate fields take 6-7 instead of 10-13 ms
    at x86-64-v4 (AVX-512 multiplies 64-bit integers in vectors); the solver a few percent.
    """
    return next(iter(runnable_levels(flags)))


def runnable_levels(flags: frozenset[str] | None = None) -> tuple[str, ...]:
    """Every level a module may be built for and run on this machine, highest first (the last
    is always :data:`GENERIC`)."""
    if flags is None:
        flags = _cpu_flags()
    return (*(name for name, needs in _X86_LEVELS if needs <= flags), GENERIC)


def build_level() -> str:
    """The level a build targets: ``WORLDGEN_NATIVE_CPU`` when set (``generic`` or an x86-64
    level: an image meant for other machines), else this machine's :func:`cpu_level`."""
    chosen = os.environ.get("WORLDGEN_NATIVE_CPU", "") or cpu_level()
    known = (*(name for name, _ in _X86_LEVELS), GENERIC)
    if chosen not in known:
        raise ValueError(f"WORLDGEN_NATIVE_CPU must be one of {', '.join(known)}, got {chosen!r}")
    return chosen


def _cpu_flags() -> frozenset[str]:
    """The first processor's flags in ``/proc/cpuinfo`` (x86-64 Linux), else none."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return frozenset()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            for line in info:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def source_stamp() -> str:
    """A digest of everything the native module's machine code depends on but the CPU level:
    the sources it is compiled from, the Python version and the architecture. The stamp file
    holds it and the level built for (``<digest> <level>``)."""
    digest = hashlib.sha256()
    for name in _SOURCES:
        digest.update(name.encode() + b"\0" + (_PACKAGE / name).read_bytes() + b"\0")
    # numba's version is left out on purpose: the module runs without numba, and reading the
    # installed version costs 16 ms of start-up (importlib.metadata)
    digest.update(f"{sys.version_info[:2]} {platform.machine()}".encode())
    return digest.hexdigest()


def _jit_disabled() -> bool:
    return os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")


def _stamp_fields() -> list[str]:
    """The stamp file's fields (``[digest, level]`` when a build wrote it; none when absent)."""
    try:
        return stamp_path().read_text().split()
    except OSError:
        return []


def _load_native() -> ModuleType | None:
    """The native module if it may be used (present, not refused, built from these sources)."""
    if os.environ.get("WORLDGEN_NATIVE", "1") == "0" or _jit_disabled():
        return None
    built = _stamp_fields()
    # built from these sources, for a level this CPU runs (a module built on a newer machine,
    # e.g. a Docker image, would fault here: the JIT runs instead)
    if len(built) != 2 or built[0] != source_stamp() or built[1] not in runnable_levels():
        return None
    try:
        return importlib.import_module(NATIVE_MODULE)
    except ImportError:
        return None


NATIVE: ModuleType | None = _load_native()
"""The native module in use, or None (numba's JIT compiles the kernels)."""


_COMPILED = NATIVE is not None or not _jit_disabled()  # numba too reads its variable once


def describe() -> str:
    """What runs the kernels, for logs: ``native <level>``, ``jit`` or ``python`` (JIT off)."""
    if NATIVE is not None:
        return " ".join(["native", *_stamp_fields()[1:2]])
    return "jit" if _COMPILED else "python"


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
