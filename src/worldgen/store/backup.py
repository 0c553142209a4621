"""Backup archives: everything worldgen cannot recompute, as one versioned file.

An archive is gzip-compressed JSON Lines, never pickle::

    {"format": "worldgen-backup", "version": 1, "created": "2026-11-27T23:00:00Z",
     "generator": "worldgen 0.1.0", "key_prefix": "wg",
     "sections": {"worlds": 2, "users": 1, "members": 1, "chat": 3}}
    {"section": "worlds", "record": {"id": "...", "name": "...", "seed": 7, ...}}
    {"section": "users", "record": {"id": "...", "username": "Ada", "password_hash": "$argon2id$…"}}
    {"section": "members", "record": {"world": "...", "members": [...], "invites": [...]}}
    {"section": "chat", "record": {"world": "...", "id": "1764284400000-0", "entry": {...}}}

The first line is the manifest; every other line is one record of a section named in the
manifest, sections in manifest order (a subsequence of :data:`SECTIONS`), and each section holds
exactly the count the manifest gives. Each record is validated by its section's pydantic model:

- ``worlds``: :class:`~worldgen.store.worlds.WorldRecord`, ids unique.
- ``users``: :class:`ArchivedUser` (a :class:`~worldgen.store.users.UserRecord` whose password
  hash must be an argon2 PHC string: an archive never holds a password), ids unique, usernames
  unique case-insensitively (:func:`~worldgen.store.users.normalize_username`).
- ``members``: :class:`WorldAccess`, at most one per world: the world's members (user id, role,
  joining time) and its pending invites (only the digest of each invite's secret, as stored).
  Its world must be in ``worlds`` and each member in ``users``.
- ``chat``: :class:`ChatEntry`, one per stream entry: the world (in ``worlds``), the stream id
  (``<ms>-<seq>``, above ``0-0``) and the validated chat message or ping. A world's entries are
  contiguous and strictly ascending, so a restore re-adds them with the same ids, in order.

Never archived: map tiles (a pure function of the world record), sessions (a restore signs
everyone out), presence, rate-limit counters and chat de-duplication keys (all short-lived).

Compatibility: new sections are added without a version bump, and a reader refuses a section it
does not know (the archive was made by a newer worldgen). ``version`` changes only when the shape
of an existing section's records changes incompatibly; a reader refuses a version above its own.
A section absent from the manifest was not archived (a worlds-only archive of an older worldgen):
a restore then leaves that kind of data alone.

Invariants: :func:`read_archive` validates the whole file (records, counts, order, references)
before returning, so a restore writes nothing from a corrupt, truncated, foreign or newer
archive; :func:`write_archive` replaces its output atomically (a failed backup never leaves a
half-written file behind) and reads its output back with the same checks before renaming it, so
a backup it accepts is one :func:`read_archive` accepts. Chat, the one section that can be large,
is never held in memory as objects: :class:`ChatLog` re-reads it from the archive's compressed
bytes (or a spool file while backing up).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from worldgen import __version__
from worldgen.errors import InputError
from worldgen.store.chat import PAGE_MAX, ChatStore, Record, parse_stream_id
from worldgen.store.keys import Keys, valid_user_id, valid_world_id
from worldgen.store.members import Invite, MemberRepo, Membership
from worldgen.store.replies import text as _text
from worldgen.store.sessions import Revocations, SessionStore
from worldgen.store.users import UserRecord, UserRepo, normalize_username
from worldgen.store.worlds import WorldRecord, WorldRepo

FORMAT: Final = "worldgen-backup"
VERSION: Final = 1
"""The archive version this code writes and the highest it reads."""
SECTIONS: Final[tuple[str, ...]] = ("worlds", "users", "members", "chat")
"""Sections this code knows, in the order it writes them (and the only order it reads)."""
MAX_LINE_BYTES: Final = 4 << 20
"""Longest line accepted on read (the largest record, a world's members, is under 1 MiB)."""
ACCESS_MEMBERS_MAX: Final = 10_000
"""Members of one world in an archive (10 times the store's bound, which is checked racily)."""
ACCESS_INVITES_MAX: Final = 1_000
"""Pending invites of one world in an archive (10 times the store's bound)."""
CHAT_MAXLEN_DEFAULT: Final = 10_000
"""Entries a restore keeps per world when not told otherwise (the chat stream's default bound)."""
ARGON2_PHC_PATTERN: Final = (
    r"^\$argon2(?:id|i|d)\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$"
)
"""The shape of every password hash worldgen stores (pwdlib's argon2 PHC strings)."""
_ARGON2_RE: Final = re.compile(ARGON2_PHC_PATTERN)
_BATCH: Final = 500
_GZIP_MAGIC: Final = b"\x1f\x8b"
_PLACEHOLDER_USER: Final = "0" * 16


class BackupError(InputError):
    """The archive is unreadable, corrupt, of another format or a newer version, or the restore
    target refuses it; the message says which and what to do. Exit code 2 on the command line."""


# ---- records ------------------------------------------------------------------------------------


class Manifest(BaseModel):
    """The archive's first line."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    format: str
    version: int = Field(ge=1)
    created: str = Field(max_length=64)
    generator: str = Field(default="", max_length=200)
    key_prefix: str = Field(default="", max_length=64)
    sections: dict[str, int]


class ArchivedUser(UserRecord):
    """An account as archived: the stored record, its password hash an argon2 PHC string."""

    @field_validator("password_hash")
    @classmethod
    def _argon2_only(cls, value: str) -> str:
        # Never echo the value: it may be a password typed into the wrong place.
        if not _ARGON2_RE.fullmatch(value):
            raise ValueError("not an argon2 hash (an archive holds password hashes only)")
        return value


class WorldAccess(BaseModel):
    """Who belongs to one world, with which role, and the world's pending invites."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    world: str = Field(pattern=r"^[A-Za-z0-9_-]{8,32}$")
    members: tuple[Membership, ...] = Field(default=(), max_length=ACCESS_MEMBERS_MAX)
    """Earliest first (by joining time, then user id)."""
    invites: tuple[Invite, ...] = Field(default=(), max_length=ACCESS_INVITES_MAX)
    """Oldest first; each with its use count and the digest of its secret (never the secret)."""

    @field_validator("members")
    @classmethod
    def _unique_members(cls, value: tuple[Membership, ...]) -> tuple[Membership, ...]:
        if len({m.user_id for m in value}) != len(value):
            raise ValueError("a user is listed twice")
        return value

    @field_validator("invites")
    @classmethod
    def _unique_invites(cls, value: tuple[Invite, ...]) -> tuple[Invite, ...]:
        if len({i.id for i in value}) != len(value):
            raise ValueError("an invite is listed twice")
        return value


class ChatEntry(BaseModel):
    """One entry of a world's chat stream: its stream id and its message or ping."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    world: str = Field(pattern=r"^[A-Za-z0-9_-]{8,32}$")
    id: str = Field(max_length=41, description="The stream id, <ms>-<seq>, above 0-0.")
    entry: Record

    @field_validator("id")
    @classmethod
    def _stream_id(cls, value: str) -> str:
        if parse_stream_id(value) == (0, 0):  # ValueError for anything but <ms>-<seq>
            raise ValueError("0-0 is not a valid stream entry id")
        return value

    @property
    def key(self) -> tuple[int, int]:
        """The id as a comparable ``(ms, seq)``."""
        return parse_stream_id(self.id)


_MODELS: Final[dict[str, type[BaseModel]]] = {
    "worlds": WorldRecord,
    "users": ArchivedUser,
    "members": WorldAccess,
    "chat": ChatEntry,
}


class _ChatOrder:
    """Checks that chat entries come grouped by world, each world's strictly ascending."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._world: str | None = None
        self._last: tuple[int, int] = (0, 0)
        self._last_id = "0-0"

    def add(self, entry: ChatEntry) -> str | None:
        """Count ``entry``; the reason it is out of place, or None."""
        if entry.world != self._world:
            if entry.world in self.counts:
                return f"the chat of world {entry.world} is split in two runs"
            self._world, self._last, self._last_id = entry.world, (0, 0), "0-0"
            self.counts[entry.world] = 0
        key = entry.key
        if key <= self._last:
            return (
                f"chat entry {entry.id} of world {entry.world} does not come after "
                f"{self._last_id} (entries must be in stream order)"
            )
        self._last, self._last_id = key, entry.id
        self.counts[entry.world] += 1
        return None


class ChatLog:
    """The chat section: entries grouped by world, each world's in stream order.

    Iterable any number of times. The entries are re-read from their source on each pass (the
    archive's compressed bytes, a spool file, or a list), so a large archive is never held in
    memory as objects. :attr:`counts` gives the entries per world, in archive order.
    """

    __hash__ = None  # type: ignore[assignment]

    def __init__(
        self, counts: Mapping[str, int], source: Callable[[], Iterator[ChatEntry]]
    ) -> None:
        self.counts: dict[str, int] = dict(counts)
        self._source = source

    @classmethod
    def of(cls, entries: Iterable[ChatEntry]) -> ChatLog:
        """A log of ``entries`` held in memory (``ValueError`` if they are out of order)."""
        items = tuple(entries)
        order = _ChatOrder()
        for entry in items:
            problem = order.add(entry)
            if problem is not None:
                raise ValueError(problem)
        return cls(order.counts, lambda: iter(items))

    def __len__(self) -> int:
        return sum(self.counts.values())

    def __iter__(self) -> Iterator[ChatEntry]:
        return self._source()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ChatLog):
            return NotImplemented
        return self.counts == other.counts and list(self) == list(other)

    def __repr__(self) -> str:
        return f"ChatLog({len(self)} entries in {len(self.counts)} worlds)"


@dataclass(frozen=True)
class Archive:
    """The contents of one backup.

    A section that is None was not archived (an archive written before that section existed):
    a restore leaves that kind of data in the target alone. An empty tuple or log means the
    section was archived and had nothing in it.
    """

    worlds: tuple[WorldRecord, ...]
    """Oldest first (by ``created``, then id)."""
    users: tuple[UserRecord, ...] | None = None
    """Oldest first (by ``created``, then id)."""
    members: tuple[WorldAccess, ...] | None = None
    """In the order of their worlds; only worlds with a member or a pending invite."""
    chat: ChatLog | None = None
    created: str = ""
    key_prefix: str = ""

    def sections(self) -> dict[str, int]:
        """The manifest's ``sections``: each archived section and its record count."""
        counts: dict[str, int | None] = {
            "worlds": len(self.worlds),
            "users": None if self.users is None else len(self.users),
            "members": None if self.members is None else len(self.members),
            "chat": None if self.chat is None else len(self.chat),
        }
        return {name: n for name, n in counts.items() if n is not None}


@dataclass(frozen=True)
class DumpReport:
    """What :func:`dump` read: the archive, and what it had to leave out."""

    archive: Archive
    skipped: tuple[str, ...]
    """World ids in the index whose metadata is missing or fails validation (not archived)."""
    warnings: tuple[str, ...] = ()
    """Other records left out (unreadable accounts, memberships, invites, chat entries), one
    sentence each, naming ids only (never a username, a hash or a message)."""


@dataclass(frozen=True)
class RestoreReport:
    """What :func:`load` wrote."""

    restored: int
    """Worlds written from the archive."""
    replaced: int
    """Of those, worlds that existed in the target with other content (their tiles dropped)."""
    kept: int
    """Worlds of the target that are not in the archive (left as they were; ``--force`` only)."""
    users: int = 0
    """Accounts written (with their username claims)."""
    memberships: int = 0
    invites: int = 0
    chat: int = 0
    """Chat entries written, with their archived stream ids."""
    chat_dropped: int = 0
    """Oldest chat entries left out because a world had more than the stream's bound."""
    signed_out: int = 0
    """Sessions ended: those of accounts that existed in the target and were replaced."""


def utc_now() -> str:
    """The current time as ISO 8601 UTC with a ``Z`` suffix, to the second."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- the file -----------------------------------------------------------------------------------


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
    chat = _ChatOrder()
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
        if problem is not None:
            raise BackupError(f"{where}: {problem}; corrupt file")
    sections = manifest.sections
    return Archive(
        worlds=tuple(sorted(worlds, key=_order)),
        users=tuple(sorted(users, key=_user_order)) if "users" in sections else None,
        members=tuple(access) if "members" in sections else None,
        chat=ChatLog(chat.counts, lambda: _chat_entries(name, data))
        if "chat" in sections
        else None,
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


def _order(record: WorldRecord) -> tuple[float, str]:
    return (record.created, record.id)


def _user_order(record: UserRecord) -> tuple[float, str]:
    return (record.created, record.id)


# ---- Redis: reading -----------------------------------------------------------------------------


def _glob_escape(text: str) -> str:
    return re.sub(r"([\\*?\[\]{}])", r"\\\1", text)


def _user_key_parts(keys: Keys) -> tuple[str, str]:
    """The text before and after the user id in :meth:`Keys.user` (to scan for accounts)."""
    head, tail = keys.user(_PLACEHOLDER_USER).split(_PLACEHOLDER_USER)
    return head, tail


async def _user_ids(redis: Redis, keys: Keys, *, first_only: bool = False) -> list[str]:
    """Ids of every account hash (one non-blocking ``SCAN``; there is no account index)."""
    head, tail = _user_key_parts(keys)
    found: dict[str, None] = {}
    pattern = _glob_escape(head) + "*" + _glob_escape(tail)
    async for raw in redis.scan_iter(match=pattern, count=1000):
        key = _text(raw)
        user_id = key[len(head) : len(key) - len(tail)]
        if valid_user_id(user_id) and keys.user(user_id) == key:
            found[user_id] = None
            if first_only:
                break
    return list(found)


async def dump(redis: Redis, keys: Keys, *, spool: IO[bytes] | None = None) -> DumpReport:
    """Read everything a backup holds: worlds, accounts, members and invites, chat streams.

    Worlds come from the index (ZSCAN, then HGETALL in pipelined batches), accounts from a
    ``SCAN`` for account hashes (kept only if their username still points at them), members and
    invites and chat from the keys of each archived world. Scans do not block the server; on a
    live server the result is not one point in time (a record created meanwhile may or may not
    be in it), but it is consistent: every membership names an archived account, every
    membership and chat entry an archived world.

    Chat entries are written to ``spool`` (a binary temporary file the caller owns and keeps open
    while the archive is used) when given, else held in memory.
    """
    skipped: list[str] = []
    warnings: list[str] = []
    worlds = await _dump_worlds(redis, keys, skipped)
    users = await _dump_users(redis, keys, warnings)
    members = await _dump_members(redis, keys, worlds, {u.id for u in users}, warnings)
    chat = await _dump_chat(redis, keys, worlds, spool, warnings)
    archive = Archive(
        worlds=worlds,
        users=users,
        members=members,
        chat=chat,
        created=utc_now(),
        key_prefix=keys.root.split(":", 1)[0],
    )
    return DumpReport(archive=archive, skipped=tuple(skipped), warnings=tuple(warnings))


async def _dump_worlds(redis: Redis, keys: Keys, skipped: list[str]) -> tuple[WorldRecord, ...]:
    ids: dict[str, None] = {}
    async for member, _score in redis.zscan_iter(keys.worlds_index(), count=1000):
        ids[_text(member)] = None
    worlds: list[WorldRecord] = []
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
    return tuple(sorted(worlds, key=_order))


async def _dump_users(redis: Redis, keys: Keys, warnings: list[str]) -> tuple[UserRecord, ...]:
    ids = await _user_ids(redis, keys)
    users: list[UserRecord] = []
    for start in range(0, len(ids), _BATCH):
        batch = ids[start : start + _BATCH]
        async with redis.pipeline(transaction=False) as pipe:
            for user_id in batch:
                pipe.hgetall(keys.user(user_id))
            replies = await pipe.execute()
        readable: list[ArchivedUser] = []
        for user_id, raw in zip(batch, replies, strict=True):
            try:
                record = ArchivedUser.from_hash(raw)
                if record.id != user_id:
                    raise ValueError("id does not match its key")
            except (ValueError, UnicodeDecodeError):
                if raw:  # gone since the scan: nothing to say
                    warnings.append(f"account {user_id} is unreadable; left out")
                continue
            readable.append(_archived_user(record))
        async with redis.pipeline(transaction=False) as pipe:
            for record in readable:
                pipe.get(keys.username(normalize_username(record.username)))
            holders = await pipe.execute()
        for record, holder in zip(readable, holders, strict=True):
            if holder is None or _text(holder) != record.id:
                # A crash between writing the account and claiming its name: nobody can log in
                # to it, and archiving it could collide with the name's real holder.
                warnings.append(f"account {record.id} is not reachable by its username; left out")
                continue
            users.append(record)
    return tuple(sorted(users, key=_user_order))


def _archived_user(record: UserRecord) -> ArchivedUser:
    """``record`` as an :class:`ArchivedUser` (validated: its hash must be argon2)."""
    if isinstance(record, ArchivedUser):
        return record
    return ArchivedUser.model_validate(record.model_dump())


async def _dump_members(
    redis: Redis,
    keys: Keys,
    worlds: Sequence[WorldRecord],
    user_ids: set[str],
    warnings: list[str],
) -> tuple[WorldAccess, ...]:
    now = time.time()
    out: list[WorldAccess] = []
    for start in range(0, len(worlds), _BATCH):
        batch = worlds[start : start + _BATCH]
        async with redis.pipeline(transaction=False) as pipe:
            for world in batch:
                pipe.hgetall(keys.members(world.id))
                pipe.hgetall(keys.invites(world.id))
                pipe.hgetall(keys.invite_uses(world.id))
            replies = await pipe.execute()
        for i, world in enumerate(batch):
            raw_members, raw_invites, raw_uses = replies[3 * i : 3 * i + 3]
            members = _read_members(world.id, raw_members, user_ids, warnings)
            invites = _read_invites(world.id, raw_invites, raw_uses, now, warnings)
            if len(members) > ACCESS_MEMBERS_MAX:
                warnings.append(
                    f"world {world.id} has {len(members)} members; the latest "
                    f"{len(members) - ACCESS_MEMBERS_MAX} left out"
                )
                members = members[:ACCESS_MEMBERS_MAX]
            if len(invites) > ACCESS_INVITES_MAX:
                warnings.append(
                    f"world {world.id} has {len(invites)} pending invites; the latest "
                    f"{len(invites) - ACCESS_INVITES_MAX} left out"
                )
                invites = invites[:ACCESS_INVITES_MAX]
            if members or invites:
                out.append(
                    WorldAccess(world=world.id, members=tuple(members), invites=tuple(invites))
                )
    return tuple(out)


def _read_members(
    world_id: str, raw: Mapping[Any, Any], user_ids: set[str], warnings: list[str]
) -> list[Membership]:
    members: list[Membership] = []
    for field, value in raw.items():
        user_id = _text(field)
        try:
            data = json.loads(_text(value))
            member = Membership(user_id=user_id, role=data["role"], joined=float(data["joined"]))
        except (ValueError, KeyError, TypeError):  # ValidationError is a ValueError
            warnings.append(f"a membership of world {world_id} is unreadable; left out")
            continue
        if member.user_id not in user_ids:
            warnings.append(
                f"membership of {member.user_id} in world {world_id} left out: "
                "no such account in the backup"
            )
            continue
        members.append(member)
    return sorted(members, key=lambda m: (m.joined, m.user_id))


def _read_invites(
    world_id: str,
    raw: Mapping[Any, Any],
    raw_uses: Mapping[Any, Any],
    now: float,
    warnings: list[str],
) -> list[Invite]:
    uses: dict[str, int] = {}
    for field, value in raw_uses.items():
        text = _text(value)
        if text.isdigit():
            uses[_text(field)] = int(text)
    invites: list[Invite] = []
    for field, value in raw.items():
        invite_id = _text(field)
        try:
            data = json.loads(_text(value))
            if not isinstance(data, dict):
                raise TypeError("not an object")
            invite = Invite.model_validate({**data, "uses": uses.get(invite_id, 0)})
            if invite.id != invite_id:
                raise ValueError("id does not match its field")
        except (ValueError, TypeError):
            warnings.append(f"an invite of world {world_id} is unreadable; left out")
            continue
        if invite.expires <= now or (invite.max_uses and invite.uses >= invite.max_uses):
            continue  # dead: it can never be accepted again
        invites.append(invite)
    return sorted(invites, key=lambda i: (i.created, i.id))


async def _dump_chat(
    redis: Redis,
    keys: Keys,
    worlds: Sequence[WorldRecord],
    spool: IO[bytes] | None,
    warnings: list[str],
) -> ChatLog:
    store = ChatStore(redis, keys)
    held: list[ChatEntry] = []
    counts: dict[str, int] = {}
    gz = (
        gzip.GzipFile(filename="", mode="wb", fileobj=spool, mtime=0, compresslevel=1)
        if spool is not None
        else None
    )
    try:
        for world in worlds:
            invalid_before = store.invalid_entries
            after, n = "0-0", 0
            while True:
                page = await store.read_after(world.id, after, count=PAGE_MAX)
                for item in page.entries:
                    entry = ChatEntry(world=world.id, id=item.stream_id, entry=item.record)
                    if gz is not None:
                        gz.write(entry.model_dump_json().encode() + b"\n")
                    else:
                        held.append(entry)
                    n += 1
                if not page.full or page.last_id is None:
                    break
                after = page.last_id
            if n:
                counts[world.id] = n
            invalid = store.invalid_entries - invalid_before
            if invalid:
                warnings.append(
                    f"{invalid} chat entr{'ies' if invalid != 1 else 'y'} of world {world.id} "
                    "failed validation; left out"
                )
    finally:
        if gz is not None:
            gz.close()  # flushes; the spool itself stays open
    if spool is None:
        items = tuple(held)
        return ChatLog(counts, lambda: iter(items))
    return ChatLog(counts, lambda: _spooled(spool))


def _spooled(spool: IO[bytes]) -> Iterator[ChatEntry]:
    spool.seek(0)
    with gzip.GzipFile(fileobj=spool, mode="rb") as gz:
        for line in gz:
            yield ChatEntry.model_validate_json(line)


# ---- Redis: writing -----------------------------------------------------------------------------


async def load(
    redis: Redis,
    keys: Keys,
    archive: Archive,
    *,
    force: bool,
    chat_maxlen: int = CHAT_MAXLEN_DEFAULT,
) -> RestoreReport:
    """Write the archive: accounts, then worlds (oldest first), then members, then chat.

    Without ``force`` the target must hold no world and no account (:class:`BackupError`
    otherwise; nothing written). With ``force`` the archive is merged in, and it is the truth
    about everything it archived:

    - Worlds replace those with the same id; a replaced world whose content differs (tileset,
      kind or seed) loses every other key first, so no stale tile survives. Others are kept.
    - Accounts replace those with the same id (their sessions are ended: a restore may bring
      back an old password). An archived username held by another account of the target
      (in any letter case) is refused before anything is written.
    - If the archive has a ``members`` section, each archived world's members and invites are
      replaced by the archive's (none, for a world it has no record for). Likewise ``chat``:
      each archived world's stream is replaced by its archived entries, with their ids.

    Sections the archive does not have (a worlds-only archive) are left alone. At most
    ``chat_maxlen`` entries, the newest, are restored per world (the stream's bound). Running
    the same restore twice gives the same result.
    """
    if chat_maxlen < 1:
        raise ValueError("chat_maxlen must be positive")
    repo = WorldRepo(redis, keys)
    existing = await repo.count()
    accounts = bool(await _user_ids(redis, keys, first_only=True))
    if (existing or accounts) and not force:
        held = [
            f"{existing} world{'s' if existing != 1 else ''}" if existing else "",
            "accounts" if accounts else "",
        ]
        raise BackupError(
            f"the target already holds {' and '.join(h for h in held if h)}; restore into an "
            "empty Redis, or pass --force to merge (archived worlds and accounts replace those "
            "with the same id, the others are kept)"
        )
    users = archive.users or ()
    if force and users and accounts:
        await _refuse_username_conflicts(redis, keys, users)

    replaced_users = await _load_users(redis, keys, users) if users else []

    members = MemberRepo(redis, keys)
    replaced = 0
    archived = {record.id for record in archive.worlds}
    for record in archive.worlds:
        if force and await redis.exists(keys.world(record.id)):
            old = await repo.get(record.id)
            if old is None or _content(old) != _content(record):
                await members.forget_world(record.id)
                await repo.delete(record.id)
                replaced += 1
        await repo.put(record)
    kept = 0
    if force and existing:
        kept = await repo.count() - len(archived)

    memberships = invites = 0
    if archive.members is not None:
        memberships, invites = await _load_members(redis, keys, archive, force=force)
    chat = dropped = 0
    if archive.chat is not None:
        chat, dropped = await _load_chat(redis, keys, archive, force=force, maxlen=chat_maxlen)

    signed_out = 0
    if replaced_users:
        sessions = SessionStore(redis, keys, Revocations(redis, keys), idle_s=1, max_s=1)
        for user_id in replaced_users:
            signed_out += await sessions.revoke_all(user_id)
    return RestoreReport(
        restored=len(archive.worlds),
        replaced=replaced,
        kept=max(kept, 0),
        users=len(users),
        memberships=memberships,
        invites=invites,
        chat=chat,
        chat_dropped=dropped,
        signed_out=signed_out,
    )


def _content(record: WorldRecord) -> tuple[str, str, int]:
    """The fields a world's tiles depend on."""
    return (record.tileset, record.kind, record.seed)


async def _refuse_username_conflicts(redis: Redis, keys: Keys, users: Sequence[UserRecord]) -> None:
    """BackupError if an archived username is held by another live account of the target."""
    repo = UserRepo(redis, keys)
    conflicts: list[str] = []
    for start in range(0, len(users), _BATCH):
        batch = users[start : start + _BATCH]
        async with redis.pipeline(transaction=False) as pipe:
            for user in batch:
                pipe.get(keys.username(normalize_username(user.username)))
            holders = await pipe.execute()
        for user, holder in zip(batch, holders, strict=True):
            if holder is None or _text(holder) == user.id:
                continue
            other = await repo.get(_text(holder))
            if other is not None and normalize_username(other.username) == normalize_username(
                user.username
            ):
                conflicts.append(user.id)
    if conflicts:
        shown = ", ".join(conflicts[:5]) + (" ..." if len(conflicts) > 5 else "")
        raise BackupError(
            f"{len(conflicts)} archived account(s) ({shown}) have a username that another "
            "account of the target holds (in any letter case); nothing written. Restore into "
            "an empty Redis instead"
        )


async def _load_users(redis: Redis, keys: Keys, users: Sequence[UserRecord]) -> list[str]:
    """Write accounts and claim their usernames; the ids of accounts that existed before."""
    replaced: list[str] = []
    for start in range(0, len(users), _BATCH):
        batch = users[start : start + _BATCH]
        async with redis.pipeline(transaction=False) as pipe:
            for user in batch:
                pipe.hget(keys.user(user.id), "username")
            old_names = await pipe.execute()
        stale: list[tuple[str, str]] = []
        for user, old in zip(batch, old_names, strict=True):
            if old is None:
                continue
            replaced.append(user.id)
            old_name = normalize_username(_text(old))
            if old_name != normalize_username(user.username):
                stale.append((keys.username(old_name), user.id))
        # One transaction per batch: each account's record and its name claim land together.
        async with redis.pipeline(transaction=True) as pipe:
            for user in batch:
                pipe.delete(keys.user(user.id))
                pipe.hset(keys.user(user.id), mapping=user.to_hash())  # type: ignore[arg-type]
                pipe.set(keys.username(normalize_username(user.username)), user.id)
            await pipe.execute()
        for key, user_id in stale:  # the account's former name, if it still points here
            holder = await redis.get(key)
            if holder is not None and _text(holder) == user_id:
                await redis.delete(key)
    return replaced


async def _load_members(
    redis: Redis, keys: Keys, archive: Archive, *, force: bool
) -> tuple[int, int]:
    """Replace each archived world's members and invites with the archive's."""
    by_world = {access.world: access for access in archive.members or ()}
    repo = MemberRepo(redis, keys)
    memberships = invites = 0
    for world in archive.worlds:
        access = by_world.get(world.id)
        if access is None and not force:
            continue  # an empty target: nothing to clear
        if force:
            await repo.forget_world(world.id)  # the old members' "my worlds" entries
        async with redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.members(world.id), keys.invites(world.id), keys.invite_uses(world.id))
            if access is not None and access.members:
                pipe.hset(
                    keys.members(world.id),
                    mapping={m.user_id: _member_json(m) for m in access.members},
                )
            if access is not None and access.invites:
                pipe.hset(
                    keys.invites(world.id),
                    mapping={i.id: _invite_json(i) for i in access.invites},
                )
                used = {i.id: i.uses for i in access.invites if i.uses}
                if used:
                    pipe.hset(keys.invite_uses(world.id), mapping=used)  # type: ignore[arg-type]
            await pipe.execute()
        if access is not None and access.members:
            async with redis.pipeline(transaction=False) as pipe:
                for m in access.members:
                    pipe.zadd(keys.user_worlds(m.user_id), {world.id: m.joined})
                await pipe.execute()
            memberships += len(access.members)
        invites += len(access.invites) if access is not None else 0
    return memberships, invites


def _member_json(member: Membership) -> str:
    """A member hash value, as :mod:`worldgen.store.members` writes it."""
    return json.dumps({"role": member.role, "joined": member.joined})


def _invite_json(invite: Invite) -> str:
    """An invite hash value, as :mod:`worldgen.store.members` writes it (uses kept apart)."""
    return json.dumps(invite.model_dump(exclude={"uses"}))


async def _load_chat(
    redis: Redis, keys: Keys, archive: Archive, *, force: bool, maxlen: int
) -> tuple[int, int]:
    """Re-add each world's entries with their ids, oldest first, keeping the newest ``maxlen``."""
    chat = archive.chat
    assert chat is not None
    if force:  # the archive is the truth: archived worlds without entries have none
        empty = [w.id for w in archive.worlds if w.id not in chat.counts]
        for start in range(0, len(empty), _BATCH):
            await redis.delete(*(keys.chat(w) for w in empty[start : start + _BATCH]))
    written = dropped = 0
    world: str | None = None
    skip = 0
    pending: list[ChatEntry] = []

    async def flush() -> None:
        nonlocal written
        if not pending:
            return
        async with redis.pipeline(transaction=False) as pipe:
            for entry in pending:
                pipe.xadd(
                    keys.chat(entry.world),
                    {"d": entry.entry.model_dump_json()},
                    id=entry.id,
                    maxlen=maxlen,
                    approximate=True,
                )
            try:
                await pipe.execute()
            except ResponseError as exc:
                raise BackupError(
                    f"the chat of world {pending[-1].world} could not be restored ({exc}); was "
                    "a message posted during the restore? Stop the app and run the same "
                    "restore again with --force"
                ) from None
        written += len(pending)
        pending.clear()

    for entry in chat:
        if entry.world != world:
            await flush()
            world = entry.world
            skip = max(0, chat.counts[world] - maxlen)
            dropped += skip
            await redis.delete(keys.chat(world))
        if skip:
            skip -= 1
            continue
        pending.append(entry)
        if len(pending) >= _BATCH:
            await flush()
    await flush()
    return written, dropped
