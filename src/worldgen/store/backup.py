"""Backup archives: every world (and, later, every chat stream) as one versioned file.

An archive is gzip-compressed JSON Lines, never pickle::

    {"format": "worldgen-backup", "version": 1, "created": "2026-11-27T23:00:00Z",
     "generator": "worldgen 0.1.0", "key_prefix": "wg", "sections": {"worlds": 2}}
    {"section": "worlds", "record": {"id": "...", "name": "...", "seed": 7, ...}}
    {"section": "worlds", "record": {...}}

The first line is the manifest; every other line is one record of a section named in the
manifest, sections in manifest order, and each section holds exactly the count the manifest
gives. Records are validated by the section's pydantic model (``worlds``:
:class:`~worldgen.store.worlds.WorldRecord`) on read. Map tiles are never archived: they are a
pure function of the world record and are recomputed on demand.

Compatibility: new sections are added without a version bump, and a reader refuses a section it
does not know (the archive was made by a newer worldgen). ``version`` changes only when the shape
of an existing section's records changes incompatibly; a reader refuses a version above its own.

Invariants: :func:`read_archive` validates the whole file before returning, so a restore writes
nothing from a corrupt, truncated, foreign or newer archive; :func:`write_archive` replaces its
output atomically (a failed backup never leaves a half-written file behind).
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis.asyncio import Redis

from worldgen import __version__
from worldgen.errors import InputError
from worldgen.store.keys import Keys, valid_world_id
from worldgen.store.worlds import WorldRecord, WorldRepo

FORMAT: Final = "worldgen-backup"
VERSION: Final = 1
"""The archive version this code writes and the highest it reads."""
SECTIONS: Final[tuple[str, ...]] = ("worlds",)
"""Sections this code knows, in the order it writes them."""
MAX_LINE_BYTES: Final = 1 << 20
"""Longest line accepted on read (a world record is a few hundred bytes)."""
_BATCH: Final = 500
_GZIP_MAGIC: Final = b"\x1f\x8b"


class BackupError(InputError):
    """The archive is unreadable, corrupt, of another format or a newer version, or the restore
    target refuses it; the message says which and what to do. Exit code 2 on the command line."""


class Manifest(BaseModel):
    """The archive's first line."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    format: str
    version: int = Field(ge=1)
    created: str = Field(max_length=64)
    generator: str = Field(default="", max_length=200)
    key_prefix: str = Field(default="", max_length=64)
    sections: dict[str, int]


@dataclass(frozen=True)
class Archive:
    """The contents of one backup: world records oldest first (by ``created``, then id)."""

    worlds: tuple[WorldRecord, ...]
    created: str = ""
    key_prefix: str = ""


@dataclass(frozen=True)
class DumpReport:
    """What :func:`dump` read: the archive, and index entries it had to leave out."""

    archive: Archive
    skipped: tuple[str, ...]
    """World ids in the index whose metadata is missing or fails validation (not archived)."""


@dataclass(frozen=True)
class RestoreReport:
    """What :func:`load` wrote."""

    restored: int
    """Worlds written from the archive."""
    replaced: int
    """Of those, worlds that existed in the target with other content (their tiles dropped)."""
    kept: int
    """Worlds of the target that are not in the archive (left as they were; ``--force`` only)."""


def utc_now() -> str:
    """The current time as ISO 8601 UTC with a ``Z`` suffix, to the second."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- the file -----------------------------------------------------------------------------------


def write_archive(path: Path, archive: Archive) -> None:
    """Write ``archive`` to ``path`` atomically (a temporary file in the same folder, renamed).

    The file is created with mode 0600: a backup holds every world, private ones included.
    """
    manifest = Manifest(
        format=FORMAT,
        version=VERSION,
        created=archive.created or utc_now(),
        generator=f"worldgen {__version__}",
        key_prefix=archive.key_prefix,
        sections={"worlds": len(archive.worlds)},
    )
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise BackupError(
            f"cannot write to folder {str(folder)!r} ({exc.strerror}); choose another --out"
        ) from None
    tmp = Path(tmp_name)
    try:
        with (
            os.fdopen(fd, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        ):
            _write_line(gz, manifest.model_dump())
            for record in archive.worlds:
                _write_line(gz, {"section": "worlds", "record": record.model_dump(mode="json")})
            gz.close()
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # disk full, permissions, a folder in the way...
        tmp.unlink(missing_ok=True)
        raise BackupError(f"cannot write backup {str(path)!r} ({exc.strerror or exc})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_line(out: gzip.GzipFile, obj: dict[str, Any]) -> None:
    out.write(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n")


def read_archive(path: Path) -> Archive:
    """Read and fully validate the archive at ``path``; :class:`BackupError` if it is not a
    complete worldgen backup this version can restore."""
    try:
        with path.open("rb") as raw:
            if raw.read(2) != _GZIP_MAGIC:
                raise BackupError(
                    f"{str(path)!r} is not a worldgen backup (not gzip-compressed); "
                    "give a file written by `worldgen backup`"
                )
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                return _parse(path, gz)
    except FileNotFoundError:
        raise BackupError(f"backup file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise BackupError(f"{str(path)!r} is a folder; give a backup file") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise BackupError(
            f"backup {str(path)!r} is corrupt or truncated ({exc}); use another copy"
        ) from None
    except OSError as exc:
        raise BackupError(f"cannot read backup {str(path)!r} ({exc.strerror or exc})") from None


def _parse(path: Path, gz: gzip.GzipFile) -> Archive:
    name = repr(str(path))
    lines = _lines(name, gz)
    first = next(lines, None)
    if first is None:
        raise BackupError(f"backup {name} is empty; give a file written by `worldgen backup`")
    _, head = first
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise BackupError(
            f"{name} is not a worldgen backup (no {FORMAT!r} manifest on its first line)"
        )
    try:
        manifest = Manifest.model_validate(head)
    except ValidationError as exc:
        raise BackupError(f"backup {name} has an invalid manifest: {_first_error(exc)}") from None
    if manifest.version > VERSION:
        raise BackupError(
            f"backup {name} has format version {manifest.version}, but this worldgen reads "
            f"version {VERSION} at most; restore it with a newer worldgen"
        )
    unknown = [s for s in manifest.sections if s not in SECTIONS]
    if unknown:
        raise BackupError(
            f"backup {name} has sections this worldgen does not know ({', '.join(unknown)}); "
            "restore it with a newer worldgen"
        )
    if any(n < 0 for n in manifest.sections.values()):
        raise BackupError(f"backup {name} has an invalid manifest: negative section count")

    order = list(manifest.sections)
    counts = dict.fromkeys(order, 0)
    reading = 0  # index in ``order`` of the section being read; sections are contiguous
    worlds: list[WorldRecord] = []
    seen: set[str] = set()
    for lineno, obj in lines:
        where = f"backup {name}, line {lineno}"
        if not isinstance(obj, dict) or set(obj) != {"section", "record"}:
            raise BackupError(f"{where}: expected {{'section': ..., 'record': ...}}; corrupt file")
        section = obj["section"]
        if not isinstance(section, str) or section not in counts:
            raise BackupError(f"{where}: section {section!r} is not in the manifest; corrupt file")
        index = order.index(section)
        if index < reading or any(counts[s] != manifest.sections[s] for s in order[reading:index]):
            raise BackupError(f"{where}: section {section!r} is out of order; corrupt file")
        reading = index
        if counts[section] >= manifest.sections[section]:
            raise BackupError(f"{where}: more {section} records than the manifest says")
        counts[section] += 1
        try:
            record = WorldRecord.model_validate(obj["record"])
        except ValidationError as exc:
            raise BackupError(f"{where}: invalid world record: {_first_error(exc)}") from None
        if record.id in seen:
            raise BackupError(f"{where}: world {record.id} appears twice; corrupt file")
        seen.add(record.id)
        worlds.append(record)
    for section, expected in manifest.sections.items():
        if counts[section] != expected:
            raise BackupError(
                f"backup {name} is incomplete: {counts[section]} of {expected} {section} "
                "records; use another copy"
            )
    return Archive(
        worlds=tuple(sorted(worlds, key=_order)),
        created=manifest.created,
        key_prefix=manifest.key_prefix,
    )


def _lines(name: str, gz: gzip.GzipFile) -> Iterator[tuple[int, Any]]:
    """Yield ``(line number, parsed JSON)`` for each line; BackupError on bad text or JSON."""
    lineno = 0
    while True:
        line = gz.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        lineno += 1
        if len(line) > MAX_LINE_BYTES:
            raise BackupError(f"backup {name}, line {lineno}: longer than {MAX_LINE_BYTES} bytes")
        try:
            obj = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise BackupError(
                f"backup {name}, line {lineno}: not valid JSON; corrupt file"
            ) from None
        yield lineno, obj


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "value"
    return f"{loc}: {err['msg']}"


def _order(record: WorldRecord) -> tuple[float, str]:
    return (record.created, record.id)


# ---- Redis -------------------------------------------------------------------------------------


async def dump(redis: Redis, keys: Keys) -> DumpReport:
    """Read every world in the index (one ZSCAN, then HGETALL in pipelined batches).

    The scan does not block the server and sees every world that exists from its start to its
    end; worlds created or deleted meanwhile may or may not be included.
    """
    ids: dict[str, None] = {}
    async for member, _score in redis.zscan_iter(keys.worlds_index(), count=1000):
        text = member.decode() if isinstance(member, bytes) else str(member)
        ids[text] = None
    worlds: list[WorldRecord] = []
    skipped: list[str] = []
    valid = [i for i in ids if valid_world_id(i)]
    skipped.extend(i for i in ids if not valid_world_id(i))
    for start in range(0, len(valid), _BATCH):
        batch = valid[start : start + _BATCH]
        async with redis.pipeline(transaction=False) as pipe:
            for world_id in batch:
                pipe.hgetall(keys.world(world_id))
            replies = await pipe.execute()
        for world_id, raw in zip(batch, replies, strict=True):
            try:
                if not raw:
                    raise ValueError("no metadata")
                worlds.append(WorldRecord.from_hash(raw))
            except (ValueError, UnicodeDecodeError):  # ValidationError is a ValueError
                skipped.append(world_id)
    archive = Archive(
        worlds=tuple(sorted(worlds, key=_order)),
        created=utc_now(),
        key_prefix=keys.root.split(":", 1)[0],
    )
    return DumpReport(archive=archive, skipped=tuple(skipped))


async def load(redis: Redis, keys: Keys, archive: Archive, *, force: bool) -> RestoreReport:
    """Write the archive's worlds, oldest first, each with :meth:`WorldRepo.put` (atomic per world).

    Without ``force`` the target must hold no world at all (:class:`BackupError` otherwise;
    nothing written). With ``force`` the archive is merged in: its worlds replace those with the
    same id, and a replaced world whose content differs (tileset, kind or seed) loses every other
    key first, so no stale tile survives; worlds not in the archive are kept. Running the same
    restore twice gives the same result.
    """
    repo = WorldRepo(redis, keys)
    existing = await repo.count()
    if existing and not force:
        raise BackupError(
            f"the target already holds {existing} world{'s' if existing != 1 else ''}; restore "
            "into an empty Redis, or pass --force to merge (archived worlds replace those with "
            "the same id, the others are kept)"
        )
    replaced = 0
    archived = {record.id for record in archive.worlds}
    for record in archive.worlds:
        if force and await redis.exists(keys.world(record.id)):
            old = await repo.get(record.id)
            if old is None or _content(old) != _content(record):
                await repo.delete(record.id)
                replaced += 1
        await repo.put(record)
    kept = 0
    if force and existing:
        kept = await repo.count() - len(archived)
    return RestoreReport(restored=len(archive.worlds), replaced=replaced, kept=max(kept, 0))


def _content(record: WorldRecord) -> tuple[str, str, int]:
    """The fields a world's tiles depend on."""
    return (record.tileset, record.kind, record.seed)
