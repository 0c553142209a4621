"""A PNG written band by band: pictures larger than memory should hold at once.

:class:`PngWriter` takes the rows of an RGB picture in bands, top to bottom, and returns the
bytes of the file as they become ready (signature and header first, one ``IDAT`` chunk per band
that produced compressed data, the last ``IDAT`` and ``IEND`` at the end). Its memory is one
band plus zlib's window. The output is a function of the pixels alone (filter ``None`` on every
row, zlib level 6, no metadata), so a retried export writes the same bytes.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import numpy.typing as npt

__all__ = ["PngWriter"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_LEVEL = 6


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(kind))
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


class PngWriter:
    """An 8-bit RGB PNG of ``width`` x ``height`` pixels, written in bands of rows."""

    def __init__(self, width: int, height: int) -> None:
        if not (1 <= width <= 2**31 - 1 and 1 <= height <= 2**31 - 1):
            raise ValueError(f"a PNG is 1..2**31-1 px a side, got {width}x{height}")
        self.width = width
        self.height = height
        self.rows_written = 0
        self._zlib = zlib.compressobj(_LEVEL)

    def header(self) -> bytes:
        """The signature and the ``IHDR`` chunk (colour type 2: RGB, 8 bits)."""
        ihdr = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return _SIGNATURE + _chunk(b"IHDR", ihdr)

    def band(self, rgb: npt.NDArray[np.uint8]) -> bytes:
        """The bytes ready after the rows ``rgb`` (``(rows, width, 3)`` uint8), possibly none."""
        rows, width = rgb.shape[0], rgb.shape[1]
        if width != self.width or rgb.shape[2:] != (3,) or rgb.dtype != np.uint8:
            raise ValueError(f"expected (rows, {self.width}, 3) uint8 pixels, got {rgb.shape}")
        if self.rows_written + rows > self.height:
            raise ValueError(
                f"{self.rows_written + rows} rows written, the picture has {self.height}"
            )
        self.rows_written += rows
        scan = np.zeros((rows, 1 + 3 * width), dtype=np.uint8)  # column 0: filter type None
        scan[:, 1:] = rgb.reshape(rows, 3 * width)
        data = self._zlib.compress(scan.tobytes())
        return _chunk(b"IDAT", data) if data else b""

    def end(self) -> bytes:
        """The last ``IDAT`` and ``IEND``; every row must have been written."""
        if self.rows_written != self.height:
            raise ValueError(f"{self.rows_written} rows written, the picture has {self.height}")
        return _chunk(b"IDAT", self._zlib.flush()) + _chunk(b"IEND", b"")
