"""A zip of map tiles written as it grows: each tile's bytes are ready as soon as it is added.

:class:`TileArchive` writes a stored (uncompressed: the tiles are PNGs already) zip into a sink
that cannot seek, so the archive can be appended to a job's result tile by tile and memory holds
one tile. Entries are named ``<z>/<x>/<y>.png`` with a fixed date, so the same tiles always give
the same bytes.
"""

from __future__ import annotations

import io
import zipfile

__all__ = ["TileArchive"]

_EPOCH = (1980, 1, 1, 0, 0, 0)
"""The date of every entry (zip's earliest), for reproducible archives."""


class _Sink(io.RawIOBase):
    """Collects what the zip writer writes; tells its position but cannot seek."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        """The bytes written since the last call."""
        out = b"".join(self._parts)
        self._parts.clear()
        return out


class TileArchive:
    """Add tiles, take the archive's bytes as they come, then close it (the central directory)."""

    def __init__(self) -> None:
        self._sink = _Sink()
        self._zip = zipfile.ZipFile(self._sink, "w", zipfile.ZIP_STORED)

    def add(self, z: int, x: int, y: int, png: bytes) -> bytes:
        """Add tile ``(z, x, y)``; returns the archive's bytes written for it."""
        info = zipfile.ZipInfo(f"{z}/{x}/{y}.png", date_time=_EPOCH)
        info.compress_type = zipfile.ZIP_STORED
        info.external_attr = 0o644 << 16
        self._zip.writestr(info, png)
        return self._sink.take()

    def close(self) -> bytes:
        """The end of the archive (its central directory)."""
        self._zip.close()
        return self._sink.take()
