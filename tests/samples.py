"""Where the tests find the project's sample data: ``tests/data/samples`` (CC0, see its licence).

A copy of the shared samples folder kept in the repository, so a fresh clone runs every test;
nothing here depends on ``../shared``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

__all__ = ["OVERLAPPING", "SAMPLES", "TILESETS", "TILESET_NAMES", "sample_tileset"]

SAMPLES: Final = Path(__file__).resolve().parent / "data" / "samples"
OVERLAPPING: Final = SAMPLES / "overlapping"
"""Sample bitmaps of the overlapping model (``<name>.png``)."""
TILESETS: Final = SAMPLES / "tilesets"
"""Tilesets in the classic XML format (``<name>/<name>.xml`` with their pictures)."""
TILESET_NAMES: Final = ("terrain", "pipes", "dungeon")


def sample_tileset(name: str) -> Path:
    """The XML file of the sample tileset ``name``."""
    return TILESETS / name / f"{name}.xml"
