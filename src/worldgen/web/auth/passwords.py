"""Passwords: argon2id through ``pwdlib``, hashed off the event loop with bounded concurrency.

A login for an unknown user still runs exactly one verify (against a dummy hash made with the
same parameters), so response time tells nothing about which names exist.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable
from typing import Final, TypeVar

import structlog
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

__all__ = ["DEFAULT_CONCURRENCY", "Passwords"]

DEFAULT_CONCURRENCY: Final = min(4, os.cpu_count() or 1)
"""Hashes computed at once by default (each takes ~64 MiB and ~0.1 s of one core)."""

_T = TypeVar("_T")
_log = structlog.get_logger("worldgen.security")


class Passwords:
    """argon2id hashing and verification, off the event loop, with a bounded thread count.

    ``verify`` runs exactly one argon2 verification whether or not the account exists: for an
    unknown user it verifies against a dummy hash made with the current parameters.
    """

    def __init__(
        self, hasher: PasswordHash | None = None, *, concurrency: int = DEFAULT_CONCURRENCY
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.hasher = hasher or PasswordHash((Argon2Hasher(),))
        self._slots = asyncio.Semaphore(concurrency)
        self._dummy: str | None = None

    async def _run(self, fn: Callable[..., _T], *args: object) -> _T:
        async with self._slots:
            return await asyncio.to_thread(fn, *args)

    async def hash(self, password: str) -> str:
        """The PHC string of a new argon2id hash of ``password`` (random salt)."""
        return await self._run(self.hasher.hash, password)

    async def dummy_hash(self) -> str:
        """A hash of a random password, made once (the stand-in for unknown users)."""
        if self._dummy is None:
            self._dummy = await self.hash(secrets.token_urlsafe(16))
        return self._dummy

    async def verify(self, password: str, stored: str | None) -> tuple[bool, str | None]:
        """``(matches, new hash or None)``; ``stored=None`` (no such user) costs one verify too.

        The new hash is set when the stored one used weaker parameters and should be replaced.
        """
        target = stored if stored is not None else await self.dummy_hash()
        try:
            ok, updated = await self._run(self.hasher.verify_and_update, password, target)
        except Exception:  # an unreadable stored hash is a failed login, not a 500
            _log.warning("unreadable password hash")
            return False, None
        return (ok and stored is not None), (updated if stored is not None else None)
