"""The archive file: gzip-compressed JSON Lines, manifest first (see :mod:`worldgen.store.backup`).

:func:`write_archive` replaces its output atomically and reads it back before the rename;
:func:`read_archive` validates the whole file (records, counts, order, references) before it
returns, so nothing is restored from a corrupt, truncated, foreign or newer archive.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from worldgen import __version__
from worldgen.store.backup.records import (
    Archive,
    ArchivedModelPart,
    ArchivedUser,
    BackupError,
    ChatEntry,
    ChatLog,
    ChatOrder,
    Manifest,
    WorldAccess,
    user_order,
    utc_now,
    world_order,
)
from worldgen.store.edits import EditEntry
from worldgen.store.users import UserRecord, normalize_username
from worldgen.store.worlds import WorldRecord

FORMAT: Final = "worldgen-backup"
VERSION: Final = 1
"""The archive version this code writes and the highest it reads."""
SECTIONS: Final[tuple[str, ...]] = ("worlds", "users", "members", "chat", "edits", "models")
"""Sections this code knows, in the order it writes them (and the only order it reads)."""
MAX_LINE_BYTES: Final = 4 << 20
"""Longest line accepted on read (the largest record, a world's members, is under 1 MiB)."""
_GZIP_MAGIC: Final = b"\x1f\x8b"
_MODELS: Final[dict[str, type[BaseModel]]] = {
    "worlds": WorldRecord,
    "users": ArchivedUser,
    "members": WorldAccess,
    "chat": ChatEntry,
    "edits": EditEntry,
    "models": ArchivedModelPart,
}


def write_archive(path: Path, archive: Archive, *, verify: bool = True) -> None:
    """Write ``archive`` to ``path`` atomically (a temporary file in the same folder, renamed).

    The file is created with mode 0600: a backup holds private worlds and password hashes. With
    ``verify`` the written file is read back with every check of :func:`read_archive` before the
    rename, so an archive that could not be restored never replaces ``path``.
    """
    manifest = Manifest(
        format=FORMAT,
        version=VERSION,
        created=archive.created or utc_now(),
        generator=f"worldgen {__version__}",
        key_prefix=archive.key_prefix,
        sections=archive.sections(),
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
            for section, records in _sections_of(archive):
                for record in records:
                    _write_line(gz, {"section": section, "record": record.model_dump(mode="json")})
            gz.close()
            raw.flush()
            os.fsync(raw.fileno())
        if verify:
            try:
                _parse(repr(str(path)), tmp.read_bytes())
            except BackupError as exc:
                raise BackupError(
                    f"the backup failed its own check, nothing written: {exc}"
                ) from None
        os.replace(tmp, path)
    except OSError as exc:  # disk full, permissions, a folder in the way...
        tmp.unlink(missing_ok=True)
        raise BackupError(f"cannot write backup {str(path)!r} ({exc.strerror or exc})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _sections_of(archive: Archive) -> Iterator[tuple[str, Iterable[BaseModel]]]:
    yield "worlds", archive.worlds
    if archive.users is not None:
        yield "users", archive.users
    if archive.members is not None:
        yield "members", archive.members
    if archive.chat is not None:
        yield "chat", archive.chat
    if archive.edits is not None:
        yield "edits", archive.edits
    if archive.models is not None:
        yield "models", archive.models


def _write_line(out: gzip.GzipFile, obj: dict[str, Any]) -> None:
    out.write(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n")


def read_archive(path: Path) -> Archive:
    """Read and fully validate the archive at ``path``; :class:`BackupError` if it is not a
    complete worldgen backup this version can restore.

    The compressed file is read into memory once; its chat section is re-read from those bytes
    on each pass over :attr:`Archive.chat`, so a later change to the file changes nothing.
    """
    try:
        with path.open("rb") as raw:
            if raw.read(2) != _GZIP_MAGIC:
                raise BackupError(
                    f"{str(path)!r} is not a worldgen backup (not gzip-compressed); "
                    "give a file written by `worldgen backup`"
                )
            raw.seek(0)
            data = raw.read()
    except FileNotFoundError:
        raise BackupError(f"backup file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise BackupError(f"{str(path)!r} is a folder; give a backup file") from None
    except OSError as exc:
        raise BackupError(f"cannot read backup {str(path)!r} ({exc.strerror or exc})") from None
    return _parse(repr(str(path)), data)


def _parse(name: str, data: bytes) -> Archive:
    """The first pass: every record validated, cross-checked and counted; chat not kept."""
    manifest, lines = _open(name, data)
    worlds: list[WorldRecord] = []
    users: list[UserRecord] = []
    access: list[WorldAccess] = []
    world_ids: set[str] = set()
    user_ids: set[str] = set()
    usernames: set[str] = set()
    access_worlds: set[str] = set()
    chat = ChatOrder()
    edits: list[EditEntry] = []
    models: list[ArchivedModelPart] = []
    last_op: dict[str, int] = {}  # world -> last op id read (ops come 1, 2, ... after a state)
    for where, record in _records(name, manifest, lines):
        problem: str | None = None
        if isinstance(record, WorldRecord):
            if record.id in world_ids:
                problem = f"world {record.id} appears twice"
            world_ids.add(record.id)
            worlds.append(record)
        elif isinstance(record, ArchivedUser):
            normalized = normalize_username(record.username)
            if record.id in user_ids:
                problem = f"user {record.id} appears twice"
            elif normalized in usernames:
                problem = f"user {record.id} has the username of another user (in any letter case)"
            user_ids.add(record.id)
            usernames.add(normalized)
            users.append(record)
        elif isinstance(record, WorldAccess):
            missing = [m.user_id for m in record.members if m.user_id not in user_ids]
            if record.world not in world_ids:
                problem = f"members of world {record.world}, which is not in the archive"
            elif record.world in access_worlds:
                problem = f"members of world {record.world} appear twice"
            elif missing:
                problem = (
                    f"member {missing[0]} of world {record.world} has no account in the archive"
                )
            access_worlds.add(record.world)
            access.append(record)
        elif isinstance(record, ChatEntry):
            if record.world not in world_ids:
                problem = f"chat of world {record.world}, which is not in the archive"
            else:
                problem = chat.add(record)
        elif isinstance(record, EditEntry):
            if record.world not in world_ids:
                problem = f"edits of world {record.world}, which is not in the archive"
            elif record.kind == "state":
                if record.world in last_op:
                    problem = f"edits of world {record.world} appear twice"
                last_op[record.world] = 0
            elif record.world not in last_op:
                problem = f"edits of world {record.world} come before its state"
            elif record.op is not None:
                if record.op.id != last_op[record.world] + 1:
                    problem = f"edit {record.op.id} of world {record.world} is out of order"
                last_op[record.world] = record.op.id
            edits.append(record)
        elif isinstance(record, ArchivedModelPart):
            expected = (
                0
                if not models or models[-1].part + 1 == models[-1].parts
                else (models[-1].part + 1)
            )
            if record.part != expected or (expected and record.model.id != models[-1].model.id):
                problem = f"part {record.part} of model {record.model.id[:12]} is out of order"
            models.append(record)
        if problem is not None:
            raise BackupError(f"{where}: {problem}; corrupt file")
    sections = manifest.sections
    return Archive(
        worlds=tuple(sorted(worlds, key=world_order)),
        users=tuple(sorted(users, key=user_order)) if "users" in sections else None,
        members=tuple(access) if "members" in sections else None,
        chat=ChatLog(chat.counts, lambda: _chat_entries(name, data))
        if "chat" in sections
        else None,
        edits=tuple(edits) if "edits" in sections else None,
        models=tuple(models) if "models" in sections else None,
        created=manifest.created,
        key_prefix=manifest.key_prefix,
    )


def _chat_entries(name: str, data: bytes) -> Iterator[ChatEntry]:
    """A later pass over a validated archive: its chat entries, in order."""
    manifest, lines = _open(name, data)
    for _, record in _records(name, manifest, lines):
        if isinstance(record, ChatEntry):
            yield record


def _open(name: str, data: bytes) -> tuple[Manifest, Iterator[tuple[int, Any]]]:
    """The checked manifest, and the lines after it."""
    lines = _lines(name, data)
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
    positions = [SECTIONS.index(s) for s in manifest.sections]
    if positions != sorted(positions):
        raise BackupError(
            f"backup {name} has an invalid manifest: sections must come in the order "
            f"{', '.join(SECTIONS)}"
        )
    return manifest, lines


def _records(
    name: str, manifest: Manifest, lines: Iterator[tuple[int, Any]]
) -> Iterator[tuple[str, BaseModel]]:
    """``(where, record)`` for every record line, each validated by its section's model, with
    the manifest's sections, order and counts checked (:class:`BackupError` on any mismatch)."""
    order = list(manifest.sections)
    counts = dict.fromkeys(order, 0)
    reading = 0  # index in ``order`` of the section being read; sections are contiguous
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
            record = _MODELS[section].model_validate(obj["record"])
        except ValidationError as exc:
            raise BackupError(
                f"{where}: invalid {section} record: {_first_error(exc)}; corrupt file"
            ) from None
        yield where, record
    for section, expected in manifest.sections.items():
        if counts[section] != expected:
            raise BackupError(
                f"backup {name} is incomplete: {counts[section]} of {expected} {section} "
                "records; use another copy"
            )


def _lines(name: str, data: bytes) -> Iterator[tuple[int, Any]]:
    """Yield ``(line number, parsed JSON)`` for each line; BackupError on bad gzip, text, JSON."""
    lineno = 0
    with gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb") as gz:
        while True:
            try:
                line = gz.readline(MAX_LINE_BYTES + 1)
            except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                raise BackupError(
                    f"backup {name} is corrupt or truncated ({exc}); use another copy"
                ) from None
            if not line:
                return
            lineno += 1
            if len(line) > MAX_LINE_BYTES:
                raise BackupError(
                    f"backup {name}, line {lineno}: longer than {MAX_LINE_BYTES} bytes"
                )
            try:
                obj = json.loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise BackupError(
                    f"backup {name}, line {lineno}: not valid JSON; corrupt file"
                ) from None
            yield lineno, obj


def _first_error(exc: ValidationError) -> str:
    # Location and message only: pydantic's input value (a hash, a message) is never shown.
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "value"
    return f"{loc}: {err['msg']}"
