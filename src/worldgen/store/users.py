"""Accounts in Redis: one hash per user plus a username → id lookup.

Invariants:

- A user id is random (``secrets``, 96 bits) and the only user-derived part of the account's keys;
  the username reaches Redis as a key name only through a SHA-256 digest of its normalised form
  (:meth:`~worldgen.store.keys.Keys.username`), so no user text is ever part of a key name.
- Usernames are unique case-insensitively: :func:`normalize_username` is the identity of a name,
  and the claim on it is one ``SET NX``. The record is written *before* the name is claimed, so a
  claimed name always points at an existing record (a crash in between leaves at worst an
  unreachable record, never a name nobody can use or log into).
- The password hash is stored as given (argon2id, PHC string); this module never sees a password.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis.asyncio import Redis

from worldgen.errors import UsernameTakenError
from worldgen.store.keys import Keys, valid_user_id
from worldgen.store.replies import text as _text

__all__ = [
    "PASSWORD_MAX",
    "PASSWORD_MIN",
    "USERNAME_MAX",
    "USERNAME_MIN",
    "USERNAME_PATTERN",
    "UserRecord",
    "UserRepo",
    "new_user_id",
    "normalize_username",
    "valid_username",
]

USERNAME_MIN: Final = 3
USERNAME_MAX: Final = 32
USERNAME_PATTERN: Final = r"^[A-Za-z0-9_.-]{3,32}$"
"""ASCII letters, digits, ``_ . -``: no look-alike Unicode, nothing that needs escaping anywhere."""
PASSWORD_MIN: Final = 8
PASSWORD_MAX: Final = 1024
"""Characters. The upper bound caps the work one login can cause (argon2 hashes it whole)."""
HASH_MAX: Final = 512

_USERNAME_RE = re.compile(USERNAME_PATTERN)


def valid_username(name: str) -> bool:
    """True when ``name`` may be registered (3..32 of ``[A-Za-z0-9_.-]``)."""
    return _USERNAME_RE.fullmatch(name) is not None


def normalize_username(name: str) -> str:
    """The identity of a username: names equal after this are the same account."""
    return name.casefold()


def new_user_id() -> str:
    """A fresh random user id: 16 URL-safe characters (96 bits)."""
    return secrets.token_urlsafe(12)


class UserRecord(BaseModel):
    """One account as stored; ``password_hash`` never leaves the server."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(pattern=r"^[A-Za-z0-9_-]{16}$")
    username: str = Field(pattern=USERNAME_PATTERN)
    created: float = Field(ge=0)
    password_hash: str = Field(min_length=1, max_length=HASH_MAX, repr=False)

    def to_hash(self) -> dict[str, str]:
        """The Redis hash fields."""
        return {
            "id": self.id,
            "username": self.username,
            "created": repr(self.created),
            "password_hash": self.password_hash,
        }

    @classmethod
    def from_hash(cls, raw: Mapping[bytes | str, bytes | str]) -> UserRecord:
        """Parse and validate a hash read from Redis (raises ``ValidationError``)."""
        return cls.model_validate({_text(k): _text(v) for k, v in raw.items()})


class UserRepo:
    """Create accounts, find them by id or username, replace a password hash."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def create(self, username: str, password_hash: str) -> UserRecord:
        """Store a new account; :class:`~worldgen.errors.UsernameTakenError` if the name is held
        (in any letter case).

        ``username`` must satisfy :func:`valid_username` (the request model checks it first).
        """
        if not valid_username(username):
            raise ValueError("invalid username")
        record = UserRecord(
            id=new_user_id(), username=username, created=time.time(), password_hash=password_hash
        )
        await self.redis.hset(self.keys.user(record.id), mapping=record.to_hash())  # type: ignore[arg-type]
        claimed = await self.redis.set(
            self.keys.username(normalize_username(username)), record.id, nx=True
        )
        if not claimed:
            await self.redis.delete(self.keys.user(record.id))
            raise UsernameTakenError
        return record

    async def get(self, user_id: str) -> UserRecord | None:
        """The account, or None for an unknown or malformed id (or an unreadable record)."""
        if not valid_user_id(user_id):
            return None
        raw = await self.redis.hgetall(self.keys.user(user_id))
        if not raw:
            return None
        try:
            return UserRecord.from_hash(raw)
        except ValidationError:
            return None

    async def by_username(self, username: str) -> UserRecord | None:
        """The account holding ``username`` (any letter case), or None; no Redis call for a
        string that could never be a username."""
        if not valid_username(username):
            return None
        user_id = await self.redis.get(self.keys.username(normalize_username(username)))
        if user_id is None:
            return None
        return await self.get(_text(user_id))

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        """Replace the stored hash (password change, or a rehash with stronger parameters)."""
        if not 0 < len(password_hash) <= HASH_MAX:
            raise ValueError("password hash out of bounds")
        await self.redis.hset(self.keys.user(user_id), "password_hash", password_hash)

    async def usernames(self, user_ids: Iterable[str]) -> dict[str, str]:
        """Display names of several users in one round trip (unknown ids are left out)."""
        ids = [u for u in dict.fromkeys(user_ids) if valid_user_id(u)]
        if not ids:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for user_id in ids:
                pipe.hget(self.keys.user(user_id), "username")
            names = await pipe.execute()
        return {u: _text(n) for u, n in zip(ids, names, strict=True) if n is not None}
