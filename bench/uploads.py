"""Uploaded models benchmark (issue 15): the cost of each step of "your own model", per model.

For each shared sample (as a user would upload it: N 3, symmetry 8, periodic) and each shared
tileset (zipped), in one process with a fresh cache folder:

* ``check_s``: the upload's checks and canonical bytes (:func:`~worldgen.engine.uploads.
  canonical_upload`: decode, patterns or tileset loader), what ``POST /api/models`` does;
* ``preview_s``: the 48 x 48 preview solve (:func:`~worldgen.engine.uploads.preview_png`);
* ``library_s``: the library job's work (:func:`~worldgen.world.api.prepare_upload`: the patch
  library and the far-zoom summary), or the refusal's message when it cannot be completed;
* ``patterns``: the model's patterns (or oriented tiles).

Never asserts on time. The kernels are compiled (or loaded from the native module) by a warm-up
solve first. Run: ``.venv/bin/python -m bench.uploads [--only town]``; writes
``bench/results/uploads-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from worldgen.engine import solver, uploads
from worldgen.engine.uploads import UploadKind
from worldgen.errors import InputError
from worldgen.world import api
from worldgen.world.spec import WorldSpec

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "samples"
RESULTS = Path(__file__).resolve().parent / "results"


def _zip(folder: Path) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, path.name)
    return out.getvalue()


def _inputs(only: str | None) -> list[tuple[UploadKind, str, bytes]]:
    samples = sorted((SHARED / "overlapping").glob("*.png"))
    tilesets = [p for p in sorted((SHARED / "tilesets").iterdir()) if p.is_dir()]
    sample: UploadKind = "sample"
    tileset: UploadKind = "tileset"
    found = [(sample, p.stem, p.read_bytes()) for p in samples]
    found += [(tileset, p.name, _zip(p)) for p in tilesets]
    return [f for f in found if only is None or f[1] == only]


def measure(kind: UploadKind, name: str, data: bytes) -> dict[str, Any]:
    """One model's figures (see the module docstring)."""
    options = uploads.UploadOptions()
    started = time.perf_counter()
    stored, model = uploads.canonical_upload(kind, data, options)
    check_s = time.perf_counter() - started
    started = time.perf_counter()
    uploads.preview_png(model, options)
    preview_s = time.perf_counter() - started
    opts = options.as_dict(kind)
    digest = uploads.model_digest(kind, stored, opts)
    api.materialise_upload(digest, kind, opts, stored)
    spec = WorldSpec.of_kind("overlapping" if kind == "sample" else "tiled", f"upload:{digest}", 1)
    started = time.perf_counter()
    try:
        api.prepare_upload(spec)
        outcome = "built"
    except InputError as exc:
        outcome = f"refused: {exc}"[:160]
    library_s = time.perf_counter() - started
    return {
        "kind": kind,
        "name": name,
        "bytes": len(data),
        "stored_bytes": len(stored),
        "patterns": model.size,
        "check_s": round(check_s, 3),
        "preview_s": round(preview_s, 3),
        "library_s": round(library_s, 2),
        "library": outcome,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="one sample or tileset name")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-uploads-") as cache:
        os.environ["WORLDGEN_CACHE_DIR"] = cache  # read by the world layer at each call
        solver.warm_up()
        rows = [measure(*item) for item in _inputs(args.only)]
    for row in rows:
        print(
            f"{row['kind']:8} {row['name']:10} {row['patterns']:5} patterns  "
            f"check {row['check_s']:6.3f} s  preview {row['preview_s']:6.3f} s  "
            f"library {row['library_s']:6.2f} s  {row['library']}"
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"uploads-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"models": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
