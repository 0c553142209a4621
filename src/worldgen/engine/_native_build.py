"""Build the native module: every kernel called from Python, compiled ahead of time.

Run by ``scripts/bootstrap.sh`` after installing (``python -m worldgen.engine._native_build``);
it needs a C compiler (Debian: ``gcc``, ``g++``) and takes about a minute of CPU the first
time. ``--if-stale`` does nothing when the installed module's stamp already matches the sources.

How: the kernels are first compiled by numba's JIT on tiny problems (``solver.warm_up`` and a
rule check: numba's disk cache makes this quick after the first time), so each exported kernel
has exactly the one signature its callers use; numba's ahead-of-time compiler (``numba.pycc``)
then compiles the same Python functions with those signatures into
``worldgen/_native_kernels.*.so`` for this machine's CPU level (:func:`~worldgen.engine._jit.
cpu_level`: x86-64-v4 here; ``WORLDGEN_NATIVE_CPU=generic`` or ``x86-64-v3`` builds a module
for older machines too, e.g. in an image meant for other hosts), and the stamp of the sources
and the level is written last (:func:`worldgen.engine._jit.source_stamp`), so a failed or
interrupted build is never used; a machine whose CPU lacks the level's features never loads it.
Exit status 0 when built or up to date, 1 with a message when the build failed (the kernels then
run under numba's JIT, as before).
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["build", "main"]


def _signatures() -> dict[str, object]:
    """The one signature of each exported kernel, from a JIT compile of tiny problems."""
    import numpy as np

    from worldgen.engine import _jit, solver
    from worldgen.engine.rules import forbidden_pairs

    solver.warm_up()
    forbidden_pairs(np.zeros((2, 2), dtype=np.int32), np.ones((4, 2, 2), dtype=np.bool_))
    found: dict[str, object] = {}
    for module_name, names in _jit.EXPORTS.items():
        module = importlib.import_module(module_name)
        for name in names:
            kernel = getattr(module, name)
            if len(kernel.signatures) != 1:
                raise RuntimeError(f"{module_name}.{name} has {len(kernel.signatures)} signatures")
            found[name] = kernel.overloads[kernel.signatures[0]].signature
    return found


def build(output_dir: Path, level: str) -> Path:
    """Compile the native module for CPU ``level`` (:func:`~worldgen.engine._jit.build_level`)
    into ``output_dir``; returns the module's file.

    The kernels must be numba's in this process (``WORLDGEN_NATIVE=0`` before they were first
    imported, as :func:`main` run as a script does), since the native module is built from them.
    """
    from numba.pycc.cc import CC

    from worldgen.engine import _jit

    if _jit.NATIVE is not None:
        raise RuntimeError(
            "the kernels are already the native module's here; set WORLDGEN_NATIVE=0"
        )

    signatures = _signatures()
    cc = CC(_jit.NATIVE_MODULE.rsplit(".", 1)[1])  # type: ignore[no-untyped-call]
    cc.verbose = False
    cc.target_cpu = "" if level == _jit.GENERIC else level  # "": the architecture's generic CPU
    with tempfile.TemporaryDirectory(prefix="worldgen-native-") as work:
        cc.output_dir = work
        for module_name, names in _jit.EXPORTS.items():
            module = importlib.import_module(module_name)
            for name in names:
                cc.export(name, signatures[name])(  # type: ignore[no-untyped-call]
                    getattr(module, name).py_func
                )
        cc.compile()
        (built,) = Path(work).glob(f"{cc.name}*")
        target = output_dir / built.name
        shutil.move(built, target)
    return target


def main(argv: list[str] | None = None) -> int:
    """Build (or, with ``--if-stale``, check and build when needed); 0 on success."""
    from worldgen.engine import _jit

    parser = argparse.ArgumentParser(prog="python -m worldgen.engine._native_build")
    parser.add_argument("--if-stale", action="store_true", help="skip when up to date")
    args = parser.parse_args(argv)
    stamp = _jit.stamp_path()
    try:
        level = _jit.build_level()
    except ValueError as exc:
        sys.stderr.write(f"worldgen: native kernels not built ({exc}); the JIT compiles them\n")
        return 1
    wanted = f"{_jit.source_stamp()} {level}"
    if args.if_stale and stamp.is_file() and stamp.read_text().strip() == wanted:
        return 0
    started = time.process_time()
    stamp.unlink(missing_ok=True)
    try:
        target = build(stamp.parent, level)
    except Exception as exc:  # any failure: say why; the JIT still works
        sys.stderr.write(f"worldgen: native kernels not built ({exc}); the JIT compiles them\n")
        return 1
    stamp.write_text(wanted + "\n")
    seconds = time.process_time() - started
    sys.stderr.write(
        f"worldgen: native kernels built for {level} ({target.name}, {seconds:.0f} s of CPU)\n"
    )
    return 0


if __name__ == "__main__":
    # Set before anything imports the kernels (this module imports them lazily), and only when
    # run as a script: set at import it would leak into every process that imports this module.
    os.environ["WORLDGEN_NATIVE"] = "0"
    sys.exit(main())
