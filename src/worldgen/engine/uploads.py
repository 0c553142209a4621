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
"""

from __future__ import annotations

import io
import stat
import struct
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from worldgen.engine.patterns import (
    OverlappingModel,
    check_sample_size,
    extract_patterns,
    read_sample,
)
from worldgen.engine.tileset import Tileset, load_tileset
from worldgen.errors import SampleError, TilesetError

__all__ = [
    "MAX_MEMBER_BYTES",
    "MAX_SAMPLE_BYTES",
    "MAX_ZIP_BYTES",
    "MAX_ZIP_ENTRIES",
    "MAX_ZIP_UNPACKED",
    "PNG_SIGNATURE",
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
