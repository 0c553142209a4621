"""The bundled tilesets and sample bitmaps, indexed by ``catalog.json``.

A command-line ``--tileset`` or ``--sample`` accepts either a file path or the *name* of a bundled
entry; :func:`resolve` decides which. A bare word (no folder separator, no file suffix) is looked up
in the catalog first, so ``terrain`` means the bundled tileset; write ``./terrain`` for a local file
of that name. Everything else is a path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from types import MappingProxyType
from typing import Any, Literal

from worldgen.errors import InputError

__all__ = ["ROOT", "CatalogEntry", "Kind", "catalog", "lookup", "resolve"]

Kind = Literal["tiled", "overlapping"]
ROOT = Path(__file__).resolve().parent
"""The folder that holds ``catalog.json`` and the bundled files."""

_NOUN: dict[str, str] = {"tiled": "tileset", "overlapping": "sample"}
_OPTION: dict[str, str] = {"tiled": "--tileset", "overlapping": "--sample"}


@dataclass(frozen=True)
class CatalogEntry:
    """One bundled tileset (``kind="tiled"``) or sample bitmap (``kind="overlapping"``).

    ``defaults`` holds the model settings the entry is meant to be used with (``subset`` for a
    tileset; ``N``, ``symmetry``, ``ground`` and ``periodic_input`` for a sample; ``S``, the
    block size of its new worlds, for either).
    """

    name: str
    kind: Kind
    path: Path
    description: str
    defaults: Mapping[str, Any] = field(default_factory=dict)


def catalog() -> list[CatalogEntry]:
    """Every bundled entry, in catalog order (read from disk on each call: it is tiny)."""
    raw = json.loads((ROOT / "catalog.json").read_text(encoding="utf-8"))
    entries = []
    for item in raw:
        kind = item["kind"]
        if kind not in _NOUN:
            raise ValueError(f"catalog.json: entry {item['name']!r} has unknown kind {kind!r}")
        entries.append(
            CatalogEntry(
                name=item["name"],
                kind=kind,
                path=ROOT / item["path"],
                description=item.get("description", ""),
                defaults=MappingProxyType(dict(item.get("defaults", {}))),
            )
        )
    return entries


def _is_bare_name(text: str) -> bool:
    pure = PurePath(text)
    return bool(text) and "/" not in text and "\\" not in text and not pure.suffix


def lookup(name_or_path: str, kind: Kind) -> CatalogEntry | None:
    """The bundled entry that ``name_or_path`` names, or None when it is to be read as a path.

    Raises :class:`InputError` when it names a bundled entry of the other kind.
    """
    if not _is_bare_name(name_or_path):
        return None
    for entry in catalog():
        if entry.name == name_or_path:
            if entry.kind != kind:
                raise InputError(
                    f"{name_or_path!r} is a bundled {_NOUN[entry.kind]}, not a {_NOUN[kind]}; "
                    f"use {_OPTION[entry.kind]} {name_or_path}"
                )
            return entry
    return None


def resolve(name_or_path: str, kind: Kind) -> Path:
    """The file to load for ``name_or_path``: a bundled entry's file, or the path itself.

    Raises :class:`InputError` when neither a bundled entry nor an existing file matches.
    """
    entry = lookup(name_or_path, kind)
    if entry is not None:
        return entry.path
    path = Path(name_or_path)
    if path.is_file():
        return path
    noun = _NOUN[kind]
    known = ", ".join(e.name for e in catalog() if e.kind == kind)
    if _is_bare_name(name_or_path):
        raise InputError(
            f"no bundled {noun} named {name_or_path!r} and no such file; use a path to a "
            f"{noun} file or one of the bundled names ({known}); `worldgen tilesets` lists them"
        )
    what = "is a directory, not a file" if path.is_dir() else "does not exist"
    raise InputError(f"{noun} file {name_or_path!r} {what}; check the path")
