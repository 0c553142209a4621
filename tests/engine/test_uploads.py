"""Uploaded models: hostile sample PNGs and tileset zips are refused with a clear message."""

from __future__ import annotations

import io
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from tests.samples import OVERLAPPING, TILESETS
from worldgen.engine import uploads
from worldgen.engine.uploads import sample_from_png, tileset_from_zip
from worldgen.errors import InputError, SampleError, TilesetError

DUNGEON = TILESETS / "dungeon"


def png_bytes(rgba: npt.NDArray[np.uint8]) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgba).save(out, format="PNG")
    return out.getvalue()


def checkerboard(width: int, height: int) -> npt.NDArray[np.uint8]:
    rgba = np.full((height, width, 4), 255, dtype=np.uint8)
    rgba[(np.indices((height, width)).sum(axis=0) % 2) == 1, :3] = 0
    return rgba


def with_header_size(data: bytes, width: int, height: int) -> bytes:
    """The same PNG whose IHDR claims another size (a valid CRC: a decompression-bomb header)."""
    start = data.index(b"IHDR")
    fields = struct.pack(">II", width, height) + data[start + 12 : start + 17]
    chunk = b"IHDR" + fields
    crc = struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)
    return data[:start] + chunk + crc + data[start + 4 + 13 + 4 :]


# ---- samples --------------------------------------------------------------------------------


def test_a_sample_png_gives_its_patterns() -> None:
    model = sample_from_png((OVERLAPPING / "islands.png").read_bytes(), N=3, symmetry=8)
    assert model.N == 3
    assert model.patterns.shape[0] > 10


@pytest.mark.parametrize(("side", "refused"), [(128, False), (129, True)])
def test_sample_side_limit(side: int, refused: bool) -> None:
    data = png_bytes(checkerboard(side, 4))
    if refused:
        with pytest.raises(SampleError, match="at most 128x128 px"):
            sample_from_png(data)
    else:
        assert sample_from_png(data).patterns.shape[0] >= 2


def test_a_decompression_bomb_header_is_refused_before_decoding() -> None:
    bomb = with_header_size(png_bytes(checkerboard(8, 8)), 100_000, 100_000)
    with pytest.raises(SampleError, match="100000x100000 px"):
        sample_from_png(bomb)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"GIF89a" + b"\0" * 64, "not a PNG"),
        (b"", "not a PNG"),
        (uploads.PNG_SIGNATURE + b"garbage", "cannot be read|could not be read|not an image"),
        (b"\0" * (uploads.MAX_SAMPLE_BYTES + 1), f"at most {uploads.MAX_SAMPLE_BYTES} bytes"),
    ],
)
def test_bad_sample_bytes(data: bytes, message: str) -> None:
    with pytest.raises(SampleError, match=message):
        sample_from_png(data)


def test_sample_options_are_checked() -> None:
    data = png_bytes(checkerboard(8, 8))
    with pytest.raises(InputError, match="N must be between 2 and 5"):
        sample_from_png(data, N=6)
    with pytest.raises(InputError, match="symmetry must be 1, 2, 4 or 8"):
        sample_from_png(data, symmetry=3)


# ---- tileset zips ---------------------------------------------------------------------------


def zip_of(files: dict[str, bytes], *, mode: int | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if mode is not None:
                info.external_attr = mode << 16
            archive.writestr(info, content)
    return out.getvalue()


def dungeon_files(prefix: str = "") -> dict[str, bytes]:
    return {prefix + p.name: p.read_bytes() for p in sorted(DUNGEON.iterdir()) if p.is_file()}


def test_a_zipped_xml_tileset_loads_with_its_images() -> None:
    tileset = tileset_from_zip(zip_of(dungeon_files()))
    assert tileset.images is not None
    assert len(tileset.variant_names) > 10
    nested = tileset_from_zip(zip_of(dungeon_files("dungeon/")))
    assert nested.variant_names == tileset.variant_names


@pytest.mark.parametrize(
    "name",
    ["../evil.png", "/etc/evil.png", "a/../../evil.png", "C:/evil.png", "a\\..\\evil.png", "a\nb"],
)
def test_path_traversal_and_absolute_names_are_refused(name: str) -> None:
    files = dungeon_files()
    files[name] = b"x"
    with pytest.raises(TilesetError, match=r"unsafe name|outside the archive"):
        tileset_from_zip(zip_of(files))


def test_symbolic_links_are_refused() -> None:
    data = zip_of({"dungeon.xml": b"/etc/passwd"}, mode=stat.S_IFLNK | 0o777)
    with pytest.raises(TilesetError, match="symbolic link"):
        tileset_from_zip(data)


def test_exactly_one_tileset_file() -> None:
    files = dungeon_files()
    with pytest.raises(TilesetError, match=r"exactly one tileset file.*found none"):
        tileset_from_zip(zip_of({k: v for k, v in files.items() if not k.endswith(".xml")}))
    files["second.json"] = b"{}"
    with pytest.raises(TilesetError, match="exactly one tileset file"):
        tileset_from_zip(zip_of(files))


def test_not_a_zip_and_too_big() -> None:
    with pytest.raises(TilesetError, match="not a zip file"):
        tileset_from_zip(b"PK-not-really")
    with pytest.raises(TilesetError, match=f"at most {uploads.MAX_ZIP_BYTES}"):
        tileset_from_zip(b"\0" * (uploads.MAX_ZIP_BYTES + 1))


@pytest.mark.parametrize(("count", "refused"), [(512, False), (513, True)])
def test_entry_count_limit(count: int, refused: bool) -> None:
    files = dungeon_files()
    files.update({f"pad/{i}.txt": b"" for i in range(count - len(files))})
    if refused:
        with pytest.raises(TilesetError, match="at most 512"):
            tileset_from_zip(zip_of(files))
    else:
        assert tileset_from_zip(zip_of(files)).variant_names


def test_zip_bombs_are_stopped_while_reading() -> None:
    member = dungeon_files()
    member["bomb.bin"] = b"\0" * (uploads.MAX_MEMBER_BYTES + 1)
    data = zip_of(member)
    assert len(data) < 100_000  # the bomb compresses to almost nothing
    with pytest.raises(TilesetError, match=f"more than {uploads.MAX_MEMBER_BYTES} bytes"):
        tileset_from_zip(data)
    total = dungeon_files()
    total.update({f"b{i}.bin": b"\0" * uploads.MAX_MEMBER_BYTES for i in range(8)})
    with pytest.raises(TilesetError, match=f"more than {uploads.MAX_ZIP_UNPACKED} bytes"):
        tileset_from_zip(zip_of(total))


def test_xml_entities_are_refused() -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE set [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><set><tiles>&b;</tiles></set>'
    )
    with pytest.raises(TilesetError, match="DOCTYPE and ENTITY declarations are not allowed"):
        tileset_from_zip(zip_of({"set.xml": laughs}))


def test_rule_and_image_errors_name_the_problem() -> None:
    files = dungeon_files()
    xml = files["dungeon.xml"].decode()
    unknown = xml.replace("<neighbors>", '<neighbors><neighbor left="nosuch" right="floor"/>', 1)
    with pytest.raises(TilesetError, match='unknown tile "nosuch"'):
        tileset_from_zip(zip_of({**files, "dungeon.xml": unknown.encode()}))
    escaping = xml.replace('name="floor"', 'name="../floor"', 1)
    with pytest.raises(TilesetError, match="no / or"):
        tileset_from_zip(zip_of({**files, "dungeon.xml": escaping.encode()}))
    missing = {k: v for k, v in files.items() if k != "floor.png"}
    with pytest.raises(TilesetError, match=r'missing image file "floor\.png"'):
        tileset_from_zip(zip_of(missing))


def test_nothing_is_left_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    tileset_from_zip(zip_of(dungeon_files()))
    with pytest.raises(TilesetError):
        tileset_from_zip(zip_of({"x.xml": b"<set/>"}))
    assert list(tmp_path.iterdir()) == []
