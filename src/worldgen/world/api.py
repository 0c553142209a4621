"""Worlds for callers: a :class:`~worldgen.world.spec.WorldSpec` in; a :class:`World`, JSON and PNG
bytes out. This is the world's surface for the web app (through :mod:`.pool`) and the CLI.

* :func:`build_world` validates a spec and builds the world. By default ``name`` must be a
  *bundled* tileset or sample (:func:`catalog`), so a spec that came from a client can never make
  the server read a file of its choosing; the CLI passes ``allow_files=True`` for paths.
* :func:`region_doc`, :func:`tile_png`, :func:`export_png` read a world. Calls on one
  :class:`World` are serialised by a per-world lock (its block cache is plain Python state); use one
  world per thread for parallel work. Every bad argument raises
  :class:`~worldgen.errors.InputError` with a message fit for a client.
* :func:`catalog` and :func:`preview_png` describe the bundled tilesets and samples.
* **Uploaded models** (``upload:<sha>`` names, :data:`~worldgen.world.spec.UPLOAD_PREFIX`):
  this layer never reads Redis, so the web app or a job first writes the model's stored bytes
  into a content-addressed folder of the cache (:func:`materialise_upload`, which checks the
  digest); :func:`model_for` reads that folder (checking the digest again). The patch library
  of an uploaded model takes seconds to build, so :func:`build_world` never builds it: a job
  calls :func:`prepare_upload` (which builds and caches it), and until then building the world
  raises :class:`~worldgen.errors.UnavailableError` ("still being prepared").
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from worldgen import tilesets
from worldgen.engine.patterns import OverlappingModel, extract_patterns, load_sample
from worldgen.engine.tileset import load_tileset
from worldgen.errors import InputError, UnavailableError
from worldgen.world.blocks import World
from worldgen.world.calibrate import calibration_file
from worldgen.world.districts import districts_file
from worldgen.world.model import CELL_PX, WorldModel, sample_model, tileset_model
from worldgen.world.patches import (
    CACHE_READ_ERRORS,
    PatchLibrary,
    cache_dir,
    library_version,
    load_or_build,
    read_npz,
    write_atomic,
)
from worldgen.world.render import cell_relief, palette_for, png_bytes, render_tile
from worldgen.world.spec import (
    KIND,
    MAX_EXPORT_PX,
    MAX_REGION_SIDE,
    WorldSpec,
    is_int,
    upload_digest,
)
from worldgen.world.summary import GROUND_ROWS, summaries_dir, summary_for, summary_key

if TYPE_CHECKING:  # imported where used: a map tile needs neither (a CLI process starts faster)
    from worldgen.engine import uploads
    from worldgen.world import edits

__all__ = [
    "CatalogEntry",
    "build_world",
    "bundled_names",
    "bundled_specs",
    "catalog",
    "compute_edit",
    "export_png",
    "install_cache_file",
    "materialise_upload",
    "model_for",
    "prepare_upload",
    "preview_png",
    "region_doc",
    "region_document",
    "tile_png",
    "upload_dir",
]

MAX_PREVIEW_PX = 256


@dataclass(frozen=True)
class CatalogEntry:
    """A bundled tileset (``kind="tiled"``) or sample (``kind="overlapping"``).

    ``count`` is the number of oriented tile variants, or the number of patterns a world cuts
    from the sample (with its catalog ``N`` and ``symmetry``: :meth:`WorldSpec.of_kind`).
    """

    name: str
    kind: Literal["tiled", "overlapping"]
    count: int
    description: str


def _tile_pictures(key: str, decode: Callable[[], npt.NDArray[np.uint8]]) -> npt.NDArray[np.uint8]:
    """A tileset's decoded pictures ``(F, s, s, 4)``, cached in ``tilesets/<key>.npz`` beside the
    patch libraries (``key``: the SHA-256 of its image files' bytes, from
    :func:`~worldgen.engine.tileset.load_tileset`); decoded and cached on a miss or when the file
    is damaged. Decoding ``terrain``'s 41 PNGs was ~15 ms of every ``worldgen tile`` process and
    of every worker's first tile; reading the file is ~1 ms."""
    path = cache_dir().parent / "tilesets" / f"{key}.npz"
    try:
        with read_npz(path) as data:
            cached = np.asarray(data["pictures"])
        if cached.dtype == np.uint8 and cached.ndim == 4 and cached.shape[3] == 4:
            return cached  # the loader checks the count and the size
    except CACHE_READ_ERRORS:
        pass
    pictures = decode()
    write_atomic(path, lambda fh: np.savez(fh, pictures=pictures))
    return pictures


def _model_from_file(path: Path, name: str, spec: WorldSpec) -> WorldModel:
    if spec.source == "tileset":
        return tileset_model(load_tileset(path, spec.subset, images_memo=_tile_pictures))
    sample, palette = load_sample(path)
    patterns = extract_patterns(sample, palette, spec.N, spec.symmetry, True)
    return sample_model(patterns, name, ground=spec.ground)


@functools.lru_cache(maxsize=32)
def _bundled_model(spec: WorldSpec) -> WorldModel:
    """Bundled files never change, so their models (and compiled rules) are shared; ``spec``
    comes with its seed and block settings cleared, so one model serves every world."""
    return _model_from_file(tilesets.resolve(spec.name, spec.kind), spec.name, spec)


@functools.lru_cache(maxsize=64)
def _bundled_library(model: WorldModel, S: int, V: int, folder: str) -> PatchLibrary:
    return load_or_build(model, S, V, Path(folder))


# ---------------------------------------------------------------------------- uploaded models
_UPLOAD_META = "model.json"
_UPLOAD_DATA = "data"
_CACHE_FILE = re.compile(
    r"^(patches|summaries|calibrations|districts)/[0-9a-f]{24}(-rows[0-9]+)?\.npz$"
)


def upload_dir(digest: str) -> Path:
    """The cache folder of the uploaded model ``digest`` (``$WORLDGEN_CACHE_DIR/uploads/<sha>``)."""
    if upload_digest(f"upload:{digest}") is None:
        raise InputError("a model digest is 64 lowercase hex digits")
    return cache_dir().parent / "uploads" / digest


def materialise_upload(
    digest: str, kind: uploads.UploadKind, options: Mapping[str, object], data: bytes
) -> Path:
    """Write a stored model's bytes into its cache folder (once: the folder is immutable,
    written to a temporary folder and renamed); InputError when the bytes and options do not
    hash to ``digest``."""
    from worldgen.engine import uploads

    folder = upload_dir(digest)
    if (folder / _UPLOAD_META).is_file():
        return folder
    if uploads.model_digest(kind, data, options) != digest:
        raise InputError(f"the bytes of model {digest[:12]} do not match its digest")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
    try:
        (tmp / _UPLOAD_DATA).write_bytes(data)
        meta = {"kind": kind, "options": dict(options)}
        (tmp / _UPLOAD_META).write_text(json.dumps(meta, sort_keys=True))
        try:
            os.rename(tmp, folder)
        except OSError:  # another process was first: its folder holds the same bytes
            if not (folder / _UPLOAD_META).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def install_cache_file(name: str, data: bytes) -> None:
    """Put a cache file built elsewhere (one of :func:`prepare_upload`'s files: a patch
    library, a summary, a calibration or district labels, ``<folder>/<24 hex>.npz``) into this
    machine's cache, unless it is there; its readers check what they load."""
    if not _CACHE_FILE.fullmatch(name):
        raise InputError(
            "a cache file is patches/, summaries/, calibrations/ or districts/<24 hex>.npz"
        )
    path = cache_dir().parent / name
    if path.is_file():
        return
    write_atomic(path, lambda fh: fh.write(data))


@functools.lru_cache(maxsize=16)
def _upload_model(digest: str) -> WorldModel:
    """An uploaded model from its cache folder (content-addressed: cached by digest)."""
    from worldgen.engine import uploads

    folder = upload_dir(digest)
    try:
        meta = json.loads((folder / _UPLOAD_META).read_text())
        data = (folder / _UPLOAD_DATA).read_bytes()
    except (OSError, ValueError):
        raise UnavailableError(f"model {digest[:12]} is not on this machine yet") from None
    kind, options = meta["kind"], meta["options"]
    if uploads.model_digest(kind, data, options) != digest:
        raise UnavailableError(f"the cached copy of model {digest[:12]} is damaged")
    opts = uploads.UploadOptions.of(kind, options)
    model = uploads.load_upload(kind, data, opts)
    if isinstance(model, OverlappingModel):
        return sample_model(model, f"upload {digest[:12]}", ground=opts.ground)
    return tileset_model(model)


def prepare_upload(spec: WorldSpec) -> list[str]:
    """Build (or find) the patch library of a world over an uploaded (or bundled) model, and
    learn its refinement calibration, district labels and far-zoom summary, all cached on disk;
    returns their files (relative to the cache folder, the library first) for
    :func:`install_cache_file` on other machines. Seconds to minutes (the library job runs it
    for uploads, the pool's cache warmer for bundled models); InputError naming the combination
    if the library cannot be completed."""
    spec.check()
    model = model_for(spec)
    try:
        lib = load_or_build(model, spec.S, spec.V)
    except InputError as exc:  # a plain InputError crosses a process boundary (pickled)
        raise InputError(str(exc)) from None
    world = World(model, spec.seed, S=spec.S, V=spec.V, layers=spec.layers, library=lib,
                  config=spec)  # fmt: skip
    summary_for(world)
    key = summary_key(world)
    files = [
        cache_dir() / f"{library_version(model, spec.S, spec.V)}.npz",
        calibration_file(world.lib.version, world.layers),
        districts_file(world.lib.version),
        summaries_dir() / f"{key}.npz",
        summaries_dir() / f"{key}-rows{GROUND_ROWS}.npz",
    ]
    root = cache_dir().parent
    return [str(f.relative_to(root)) for f in files if f.is_file()]


def model_for(spec: WorldSpec, *, allow_files: bool = False) -> WorldModel:
    """The world model ``spec`` names (from its source, name, subset, N and symmetry; its seed and
    block settings do not enter); raises InputError for an unknown name.

    A bundled model is loaded once per process and shared by every world over it. Without
    ``allow_files`` the name must be a bundled tileset or sample; with it, a file path too.
    """
    kind = KIND[spec.source]
    digest = upload_digest(spec.name)
    if digest is not None:
        model = _upload_model(digest)
        if model.kind != kind:
            raise InputError(f"model {digest[:12]} is a {model.noun}, not a {spec.source}")
        return model
    if tilesets.lookup(spec.name, kind) is not None:
        return _bundled_model(spec.model_key)
    if allow_files:
        path = tilesets.resolve(spec.name, kind)
        return _model_from_file(path, path.stem, spec)
    known = ", ".join(e.name for e in tilesets.catalog() if e.kind == kind)
    raise InputError(f"unknown {spec.source} {spec.name!r}; use a bundled one ({known})")


def build_world(spec: WorldSpec, *, allow_files: bool = False) -> World:
    """The world ``spec`` describes; raises InputError on a bad spec.

    Without ``allow_files`` the name must be a bundled tileset or sample. The patch library comes
    from the on-disk cache (``$WORLDGEN_CACHE_DIR``), built on a miss (seconds, once per model).
    """
    spec.check()
    model = model_for(spec, allow_files=allow_files)
    if tilesets.lookup(spec.name, spec.kind) is not None:
        lib = _bundled_library(model, spec.S, spec.V, str(cache_dir()))
    elif upload_digest(spec.name) is not None:
        # an uploaded model's library is built by its job (prepare_upload), never here
        if not (cache_dir() / f"{library_version(model, spec.S, spec.V)}.npz").is_file():
            raise UnavailableError("the world's model is still being prepared; retry shortly")
        lib = load_or_build(model, spec.S, spec.V)
    else:
        lib = load_or_build(model, spec.S, spec.V)
    return World(model, spec.seed, S=spec.S, V=spec.V, layers=spec.layers, library=lib, config=spec)


# ---------------------------------------------------------------------------------- reading
_LOCKS: weakref.WeakKeyDictionary[World, threading.Lock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _lock(world: World) -> threading.Lock:
    with _LOCKS_GUARD:
        found = _LOCKS.get(world)
        if found is None:
            found = _LOCKS[world] = threading.Lock()
        return found


def _check_side(name: str, value: int, limit: int) -> None:
    if not is_int(value) or not 1 <= value <= limit:
        raise InputError(f"{name} must be an integer in 1..{limit}, got {value!r}")


def region_document(
    world: World, x: int, y: int, grid: npt.NDArray[np.integer]
) -> dict[str, object]:
    """The region JSON of an already computed ``grid`` whose top-left cell is ``(x, y)``.

    ``{"x", "y", "width", "height", "tiles" | "colors", "cells"}``: ``tiles`` lists every oriented
    variant of a tileset (``"<tile> <k>"``); ``colors`` every pattern of a sample as ``"#rrggbb"``
    (its top-left pixel: the colour the cell shows). ``cells`` holds, row-major, the index into
    that list of each cell.
    """
    g = np.asarray(grid)
    height, width = g.shape
    labels = "tiles" if world.model.kind == "tiled" else "colors"
    return {
        "x": int(x),
        "y": int(y),
        "width": int(width),
        "height": int(height),
        labels: list(world.model.labels),
        "cells": g.reshape(-1).astype(np.int64).tolist(),
    }


def region_doc(world: World, x: int, y: int, w: int, h: int) -> dict[str, object]:
    """The region JSON (see :func:`region_document`) of the ``w`` x ``h`` window at ``(x, y)``."""
    _check_side("width", w, MAX_REGION_SIDE)
    _check_side("height", h, MAX_REGION_SIDE)
    with _lock(world):
        grid = world.region(x, y, w, h)
    return region_document(world, x, y, grid)


def tile_png(world: World, z: int, x: int, y: int) -> bytes:
    """PNG bytes of map tile ``(z, x, y)`` (:func:`~worldgen.world.render.render_tile`)."""
    with _lock(world):
        return render_tile(world, z, x, y)


def export_png(world: World, x: int, y: int, w: int, h: int, scale: int) -> bytes:
    """PNG picture of the window at ``scale`` (1..16) pixels per cell, at most 4096 px a side."""
    _check_side("scale", scale, CELL_PX)
    _check_side("width", w, MAX_REGION_SIDE)
    _check_side("height", h, MAX_REGION_SIDE)
    if w * scale > MAX_EXPORT_PX or h * scale > MAX_EXPORT_PX:
        raise InputError(
            f"the picture would be {w * scale}x{h * scale} px; at most {MAX_EXPORT_PX} px a side, "
            "use a smaller window or scale"
        )
    with _lock(world):
        grid = world.region(x, y, w, h)
        rgb = palette_for(world).draw(grid, scale, cell_relief(world, x, y, w, h))
    return png_bytes(rgb)


def compute_edit(
    world: World,
    op: edits.Op,
    blocks: Mapping[tuple[int, int], tuple[bytes, int]],
    target: bytes | None = None,
    undone: Sequence[bytes] = (),
) -> tuple[bytes, dict[str, int | str] | None]:
    """An edit operation solved on ``world`` (:func:`~worldgen.world.edits.compute_packed`: the
    overlay's stored blocks in; the diff's bytes and its reveal out), alone on the world."""
    from worldgen.world import edits

    with _lock(world):
        return edits.compute_packed(world, op, blocks, target, undone)


# ---------------------------------------------------------------------------------- catalog
@functools.lru_cache(maxsize=1)
def _catalog() -> tuple[CatalogEntry, ...]:
    out: list[CatalogEntry] = []
    for entry in tilesets.catalog():
        if entry.kind == "tiled":
            count = load_tileset(entry.path, entry.defaults.get("subset"), load_images=False).size
        else:
            spec = WorldSpec.of_kind("overlapping", entry.name, 0)
            sample, palette = load_sample(entry.path)
            count = extract_patterns(sample, palette, spec.N, spec.symmetry, True).size
        out.append(CatalogEntry(entry.name, entry.kind, count, entry.description))
    return tuple(out)


def catalog() -> list[CatalogEntry]:
    """The bundled tilesets and samples, in catalog order."""
    return list(_catalog())


def bundled_names() -> list[str]:
    """The names of the bundled tilesets and samples, in catalog order (no model is loaded)."""
    return [entry.name for entry in tilesets.catalog()]


def bundled_specs(names: Sequence[str] | None = None) -> list[WorldSpec]:
    """The default spec of each bundled entry in ``names`` (None: every entry, catalog order),
    for the cache warmer: what :func:`prepare_upload` caches does not depend on the seed, so the
    seed is 0. InputError names an unknown entry."""
    entries = tilesets.catalog() if names is None else [_bundled_entry(n) for n in names]
    return [WorldSpec.of_kind(entry.kind, entry.name, 0) for entry in entries]


def _bundled_entry(name: str) -> tilesets.CatalogEntry:
    for entry in tilesets.catalog():
        if entry.name == name:
            return entry
    known = ", ".join(e.name for e in tilesets.catalog())
    raise InputError(f"no bundled tileset or sample named {name!r} (known: {known})")


def _nearest(rgb: npt.NDArray[np.uint8], size: int) -> npt.NDArray[np.uint8]:
    """Nearest-neighbour resample so that the longer side is ``size`` px (aspect kept)."""
    h, w = rgb.shape[:2]
    side = max(h, w)
    oh, ow = max(1, size * h // side), max(1, size * w // side)
    ys = np.arange(oh) * h // oh
    xs = np.arange(ow) * w // ow
    return np.ascontiguousarray(rgb[ys][:, xs])


@functools.lru_cache(maxsize=64)
def preview_png(name: str, size: int = 64) -> bytes:
    """A small deterministic PNG (longer side ``size`` px, 8..256) of a bundled entry.

    A sample shows its bitmap; a tileset a mosaic of its tiles (first orientation of each, in file
    order, ``ceil(sqrt(n))`` per row; slots past the last tile repeat the most frequent tile). Both
    are scaled with nearest-neighbour sampling.
    """
    if not is_int(size) or not 8 <= size <= MAX_PREVIEW_PX:
        raise InputError(f"size must be an integer in 8..{MAX_PREVIEW_PX}, got {size!r}")
    entry = _bundled_entry(name)
    if entry.kind == "overlapping":
        sample, palette = load_sample(entry.path)
        rgb = np.ascontiguousarray(palette[sample.astype(np.intp), :3])
    else:
        model = model_for(WorldSpec.of_kind("tiled", name, 0))
        assert model.images is not None  # noqa: S101  bundled tilesets load with images
        tiles = model.images[[model.labels.index(v) for v in model.labels if v.endswith(" 0")]]
        cols = int(np.ceil(np.sqrt(tiles.shape[0])))
        rows = -(-tiles.shape[0] // cols)
        # Slots past the last tile show the most frequent tile (its ground), not black holes.
        sheet = np.empty((rows * cols, CELL_PX, CELL_PX, 3), dtype=np.uint8)
        sheet[:] = model.images[int(np.argmax(model.weights))]
        sheet[: tiles.shape[0]] = tiles
        rgb = sheet.reshape(rows, cols, CELL_PX, CELL_PX, 3).transpose(0, 2, 1, 3, 4)
        rgb = rgb.reshape(rows * CELL_PX, cols * CELL_PX, 3)
    return png_bytes(_nearest(rgb, size))
