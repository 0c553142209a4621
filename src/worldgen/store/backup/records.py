"""The records of an archive: one pydantic model per section, and what dump and load report.

Every model here validates one line of the file (:mod:`.fileformat` knows which section uses
which); :class:`Archive` is what a backup holds in memory, with the chat section kept out of
memory by :class:`ChatLog`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

from worldgen.errors import InputError
from worldgen.store.chat import Record, parse_stream_id
from worldgen.store.edits import EditEntry
from worldgen.store.members import Invite, Membership
from worldgen.store.models import ModelRecord
from worldgen.store.users import UserRecord
from worldgen.store.worlds import WorldRecord

ACCESS_MEMBERS_MAX: Final = 10_000
"""Members of one world in an archive (10 times the store's bound, which is checked racily)."""
ACCESS_INVITES_MAX: Final = 1_000
"""Pending invites of one world in an archive (10 times the store's bound)."""
ARGON2_PHC_PATTERN: Final = (
    r"^\$argon2(?:id|i|d)\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$"
)
"""The shape of every password hash worldgen stores (pwdlib's argon2 PHC strings)."""
_ARGON2_RE: Final = re.compile(ARGON2_PHC_PATTERN)


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


MODEL_PART_BYTES: Final = 2 << 20
"""Bytes of a model per archive line (base64: under 3 MiB, within the line bound)."""


class ArchivedModelPart(BaseModel):
    """One part of an uploaded model: its record and the worlds over it (on every part), and
    ``data``, base64 of bytes ``part * MODEL_PART_BYTES`` onwards; parts come in order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: ModelRecord
    worlds: tuple[str, ...] = Field(default=(), max_length=100_000)
    part: int = Field(ge=0, le=64)
    parts: int = Field(ge=1, le=64)
    data: str = Field(max_length=(MODEL_PART_BYTES * 4) // 3 + 4)


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


class ChatOrder:
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
        order = ChatOrder()
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
    edits: tuple[EditEntry, ...] | None = None
    """Each world's edits and markers (:meth:`~worldgen.store.edits.EditStore.export_world`)."""
    models: tuple[ArchivedModelPart, ...] | None = None
    """Uploaded models, each in its parts (in order)."""
    created: str = ""
    key_prefix: str = ""

    def sections(self) -> dict[str, int]:
        """The manifest's ``sections``: each archived section and its record count."""
        counts: dict[str, int | None] = {
            "worlds": len(self.worlds),
            "users": None if self.users is None else len(self.users),
            "members": None if self.members is None else len(self.members),
            "chat": None if self.chat is None else len(self.chat),
            "edits": None if self.edits is None else len(self.edits),
            "models": None if self.models is None else len(self.models),
        }
        return {name: n for name, n in counts.items() if n is not None}


@dataclass(frozen=True)
class DumpReport:
    """What :func:`~worldgen.store.backup.dump` read: the archive, and what it had to leave out."""

    archive: Archive
    skipped: tuple[str, ...]
    """World ids in the index whose metadata is missing or fails validation (not archived)."""
    warnings: tuple[str, ...] = ()
    """Other records left out (unreadable accounts, memberships, invites, chat entries), one
    sentence each, naming ids only (never a username, a hash or a message)."""


@dataclass(frozen=True)
class RestoreReport:
    """What :func:`~worldgen.store.backup.load` wrote."""

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
    edit_ops: int = 0
    """Edit operations written (with their overlays, undo stacks and markers)."""


def utc_now() -> str:
    """The current time as ISO 8601 UTC with a ``Z`` suffix, to the second."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def world_order(record: WorldRecord) -> tuple[float, str]:
    """The archive's order of worlds: oldest first, then by id."""
    return (record.created, record.id)


def user_order(record: UserRecord) -> tuple[float, str]:
    """The archive's order of accounts: oldest first, then by id."""
    return (record.created, record.id)
