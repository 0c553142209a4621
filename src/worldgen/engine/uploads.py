"""Models that users upload: a sample PNG or a tileset zip, as bytes that nobody has checked.

Everything here assumes a hostile client. Each function takes the raw bytes of an upload and
returns a model of the engine, or raises :class:`~worldgen.errors.SampleError` /
:class:`~worldgen.errors.TilesetError` (both :class:`~worldgen.errors.InputError`, a 4xx with a
message that names the problem and the limit). Nothing is written anywhere but a private
temporary folder that is removed before the function returns.

* **Sample PNG** (:func:`sample_from_png`): at most :data:`MAX_SAMPLE_BYTES`; the PNG signature
  is checked before Pillow sees the bytes (only the PNG decoder is allowed); the header's size
  is checked against 128×128 px before any pixel is decoded (a decompression bomb costs
  nothing); at most 256 colours; then the patterns (:func:`extract_patterns`: N 2..5, symmetry
  1/2/4/8, at most 4096 patterns).
* **Tileset zip** (:func:`tileset_from_zip`): the classic XML with its PNG files, or our JSON
  with embedded images (``docs/tileset-format.md``), as one zip of at most :data:`MAX_ZIP_BYTES`
  with at most :data:`MAX_ZIP_ENTRIES` entries. Refused: entries with absolute names, ``..``,
  backslashes, drive letters or control characters (path traversal), symbolic links, encrypted
  entries, an unpacked total over :data:`MAX_ZIP_UNPACKED` or a member over
  :data:`MAX_MEMBER_BYTES` — counted while reading, never trusted from the headers (zip bombs) —
  and anything but exactly one ``.xml`` or ``.json`` tileset. The XML is parsed by defusedxml
  (no DTD, no entities). The tileset is then loaded by the engine's own loader, which checks
  symmetries, unknown tiles in neighbour rules, image sizes and missing images.

An upload becomes a *stored model* (:func:`canonical_upload`): a sample is re-encoded as a plain
RGBA PNG of its decoded pixels (no metadata, no ancillary chunks, deterministic bytes), a
tileset zip is kept as sent once it loads. :func:`model_digest` names a stored model: the
SHA-256 of its kind, its options (canonical JSON) and its canonical bytes, so the same picture
with the same options is one model whoever uploads it. :func:`load_upload` turns the stored
bytes into the engine's model again; :func:`preview_png` is the plain WFC solve of 48x48 cells
shown before a world is made (deterministic: seed 0).
"""

from __future__ import annotations

import hashlib
import io
import json
import stat
import struct
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

import numpy as np
from PIL import Image

from worldgen.engine.generate import generate_overlapping, generate_tiled
from worldgen.engine.patterns import (
    MAX_N,
    MIN_N,
    SYMMETRIES,
    OverlappingModel,
    check_sample_size,
    extract_patterns,
    read_sample,
)
from worldgen.engine.solver import SolverBudget
from worldgen.engine.tileset import Tileset, load_tileset
from worldgen.errors import InputError, SampleError, TilesetError

__all__ = [
    "MAX_MEMBER_BYTES",
    "MAX_SAMPLE_BYTES",
    "MAX_ZIP_BYTES",
    "MAX_ZIP_ENTRIES",
    "MAX_ZIP_UNPACKED",
    "PNG_SIGNATURE",
    "PREVIEW_CELLS",
    "UploadKind",
    "UploadOptions",
    "canonical_upload",
    "load_upload",
    "model_digest",
    "preview_png",
    "sample_from_png",
    "tileset_from_zip",
]

MAX_SAMPLE_BYTES = 1 << 20
"""A sample PNG of 128×128 px is far below this even uncompressed (64 KiB of RGBA)."""
MAX_ZIP_BYTES = 8 << 20
MAX_ZIP_ENTRIES = 512
MAX_ZIP_UNPACKED = 32 << 20
MAX_MEMBER_BYTES = 4 << 20
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_NAME = "upload"


def sample_from_png(
    data: bytes,
    *,
    N: int = 3,
    symmetry: int = 8,
    periodic_input: bool = True,
    name: str = _NAME,
) -> OverlappingModel:
    """The overlapping model of an uploaded sample PNG (see the module docstring)."""
    if len(data) > MAX_SAMPLE_BYTES:
        raise SampleError(
            f"sample {name!r} is {len(data)} bytes; an uploaded sample may be at most "
            f"{MAX_SAMPLE_BYTES} bytes"
        )
    if not data.startswith(PNG_SIGNATURE):
        raise SampleError(f"sample {name!r} is not a PNG file; save it as PNG")
    if data[12:16] == b"IHDR" and len(data) >= 24:  # the size, before any decoder runs
        width, height = struct.unpack(">II", data[16:24])
        check_sample_size(width, height, name)
    sample, palette = read_sample(io.BytesIO(data), name)
    return extract_patterns(sample, palette, N, symmetry, periodic_input)


def _member_path(info: zipfile.ZipInfo) -> PurePosixPath:
    """The entry's relative path, or a TilesetError if it could leave the folder."""
    raw = info.filename
    if (
        not raw
        or "\\" in raw
        or raw.startswith("/")
        or any(ord(c) < 32 for c in raw)
        or (len(raw) > 1 and raw[1] == ":")
    ):
        raise TilesetError(f"zip entry {raw!r} has an unsafe name; use plain relative paths")
    path = PurePosixPath(raw)
    if any(part in ("..", ".") for part in path.parts):
        raise TilesetError(f"zip entry {raw!r} points outside the archive; remove '..' parts")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise TilesetError(f"zip entry {raw!r} is a symbolic link; links are not allowed")
    if info.flag_bits & 0x1:
        raise TilesetError(f"zip entry {raw!r} is encrypted; upload an unencrypted zip")
    return path


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes:
    """The entry's bytes, read with a cap (a header may lie about the size)."""
    cap = min(MAX_MEMBER_BYTES, budget)
    try:
        with archive.open(info) as member:
            data = member.read(cap + 1)
    except (zipfile.BadZipFile, OSError, NotImplementedError, EOFError) as exc:
        raise TilesetError(f"zip entry {info.filename!r} cannot be read ({exc})") from None
    if len(data) > cap:
        if cap < MAX_MEMBER_BYTES:
            raise TilesetError(
                f"the zip unpacks to more than {MAX_ZIP_UNPACKED} bytes; upload a smaller tileset"
            )
        raise TilesetError(
            f"zip entry {info.filename!r} unpacks to more than {MAX_MEMBER_BYTES} bytes"
        )
    return data


def tileset_from_zip(data: bytes, subset: str | None = None) -> Tileset:
    """The tileset in an uploaded zip, images loaded (see the module docstring)."""
    if len(data) > MAX_ZIP_BYTES:
        raise TilesetError(
            f"the zip is {len(data)} bytes; an uploaded tileset may be at most {MAX_ZIP_BYTES}"
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError):
        raise TilesetError("the upload is not a zip file; zip the tileset's files") from None
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        if len(infos) > MAX_ZIP_ENTRIES:
            raise TilesetError(
                f"the zip has {len(infos)} files; at most {MAX_ZIP_ENTRIES} are allowed"
            )
        paths = [_member_path(i) for i in infos]
        if len({str(p).lower() for p in paths}) != len(paths):
            raise TilesetError("the zip holds two files with the same name")
        definitions = [p for p in paths if p.suffix.lower() in (".xml", ".json")]
        if len(definitions) != 1:
            found = ", ".join(str(p) for p in definitions) or "none"
            raise TilesetError(
                f"the zip must hold exactly one tileset file (.xml or .json); found {found}"
            )
        with tempfile.TemporaryDirectory(prefix="worldgen-upload-") as folder:
            root = Path(folder)
            left = MAX_ZIP_UNPACKED
            for info, path in zip(infos, paths, strict=True):
                content = _read_member(archive, info, left)
                left -= len(content)
                target = root.joinpath(*path.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
            return load_tileset(root.joinpath(*definitions[0].parts), subset)


# ------------------------------------------------------------------------- stored models
UploadKind = Literal["sample", "tileset"]
"""What an upload is: a sample bitmap (overlapping model) or a tileset zip (simple tiled)."""
PREVIEW_CELLS = 48
"""Side of the preview solve (cells)."""
PREVIEW_MAX_PX = 8
"""Largest side of one cell in a tileset preview (tiles are scaled down to it)."""
_DIGEST_TAG = b"worldgen-model/1"
_PREVIEW_BUDGET = SolverBudget(max_attempts=4, max_backtracks=200)


@dataclass(frozen=True)
class UploadOptions:
    """How a sample is read (a tileset zip takes none: its file says everything).

    ``N`` pattern size 2..5, ``symmetry`` 1/2/4/8, ``periodic`` input (patterns wrap around the
    sample's edges), ``ground`` (a side view: the sample's bottom row is the ground, at y = 0).
    """

    N: int = 3
    symmetry: int = 8
    periodic: bool = True
    ground: bool = False

    def check(self) -> None:
        """InputError naming the first option out of range."""
        if not isinstance(self.N, int) or isinstance(self.N, bool) or not MIN_N <= self.N <= MAX_N:
            raise InputError(f"N must be an integer in {MIN_N}..{MAX_N}, got {self.N!r}")
        if self.symmetry not in SYMMETRIES or isinstance(self.symmetry, bool):
            raise InputError(f"symmetry must be 1, 2, 4 or 8, got {self.symmetry!r}")
        if not isinstance(self.periodic, bool) or not isinstance(self.ground, bool):
            raise InputError("periodic and ground must be true or false")
        if self.ground and not self.periodic:
            raise InputError("ground needs a periodic input (the ground pattern wraps to the top)")

    def as_dict(self, kind: UploadKind) -> dict[str, object]:
        """The options as stored and hashed: empty for a tileset."""
        return asdict(self) if kind == "sample" else {}

    @classmethod
    def of(cls, kind: UploadKind, options: Mapping[str, object]) -> UploadOptions:
        """Options read back from :meth:`as_dict` (the defaults for a tileset)."""
        if kind == "tileset":
            return cls()
        known = {k: options[k] for k in ("N", "symmetry", "periodic", "ground") if k in options}
        return cls(**known)  # type: ignore[arg-type]  # checked by check()


def model_digest(kind: UploadKind, data: bytes, options: Mapping[str, object]) -> str:
    """SHA-256 hex naming a stored model: its kind, options (canonical JSON) and bytes."""
    h = hashlib.sha256(_DIGEST_TAG)
    h.update(b"\0" + kind.encode() + b"\0")
    h.update(json.dumps(dict(options), sort_keys=True, separators=(",", ":")).encode())
    h.update(b"\0")
    h.update(data)
    return h.hexdigest()


def _png(rgba: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba, dtype=np.uint8)).save(out, format="PNG")
    return out.getvalue()


def canonical_upload(
    kind: UploadKind, data: bytes, options: UploadOptions
) -> tuple[bytes, OverlappingModel | Tileset]:
    """The bytes to store for an upload and the engine's model of it; raises InputError (the
    problem named) for anything unusable. A sample is stored as the plain RGBA PNG of its
    decoded pixels, so nothing of the uploaded file but its pixels is ever kept."""
    options.check()
    if kind == "tileset":
        return data, tileset_from_zip(data)
    model = sample_from_png(data, N=options.N, symmetry=options.symmetry,
                            periodic_input=options.periodic)  # fmt: skip
    sample, palette = read_sample(io.BytesIO(data), _NAME)
    return _png(palette[sample.astype(np.intp)]), model


def load_upload(
    kind: UploadKind, data: bytes, options: UploadOptions
) -> OverlappingModel | Tileset:
    """The engine's model of stored bytes (:func:`canonical_upload`'s first value)."""
    if kind == "tileset":
        return tileset_from_zip(data)
    return sample_from_png(data, N=options.N, symmetry=options.symmetry,
                           periodic_input=options.periodic)  # fmt: skip


def preview_png(model: OverlappingModel | Tileset, options: UploadOptions) -> bytes:
    """A plain WFC solve of :data:`PREVIEW_CELLS` cells a side (seed 0, periodic output), as
    PNG: one pixel per cell for a sample, tiles of at most :data:`PREVIEW_MAX_PX` px for a
    tileset. Parts a failed solve left undecided are grey; the bytes are deterministic."""
    side = PREVIEW_CELLS
    if isinstance(model, OverlappingModel):
        result = generate_overlapping(
            model, side, side, periodic=True, seed=0, ground=options.ground,
            budget=_PREVIEW_BUDGET,
        )  # fmt: skip
        return _png(result.image)
    tiled = generate_tiled(model, side, side, periodic=True, seed=0, budget=_PREVIEW_BUDGET)
    image = tiled.image
    px = min(model.tile_size, PREVIEW_MAX_PX)
    if px != model.tile_size:
        pick = np.arange(side * px) * model.tile_size // px
        image = image[pick][:, pick]
    return _png(image)
