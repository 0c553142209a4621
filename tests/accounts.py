"""Accounts for the tests of other features: creating a world and chatting need one (issue 6).

- :func:`fast_passwords`: argon2id with tiny costs for in-process apps (the same code path as
  production, a thousandth of the time); pass it as ``Parts(passwords=...)`` to ``create_app``.
- :func:`sign_in` / :func:`sign_in_sync`: register a fresh account through the API with an
  httpx client, which then holds the session cookie.
- :func:`mint_session`: an account and a session written straight into Redis (no hashing, no
  rate limit), for tests that open many sockets; returns the ``Cookie`` header value.
"""

from __future__ import annotations

import uuid

import httpx
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from redis.asyncio import Redis

from worldgen.store.keys import Keys
from worldgen.store.sessions import Revocations, SessionStore
from worldgen.store.users import UserRepo
from worldgen.web.auth.passwords import Passwords
from worldgen.web.auth.sessions import COOKIE_NAME

PASSWORD = "test password 123"
UNUSABLE_HASH = "!"
"""A stored password hash no password matches (minted accounts cannot log in)."""


def fast_passwords() -> Passwords:
    """argon2id with tiny costs (1 pass, 1 MiB)."""
    return Passwords(PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),)))


def new_username(prefix: str = "tester") -> str:
    """A unique, valid username."""
    return f"{prefix[:20]}-{uuid.uuid4().hex[:8]}"


async def sign_in(
    client: httpx.AsyncClient, username: str | None = None, *, outage_ok: bool = False
) -> str | None:
    """Register ``username`` (a fresh one by default); the client keeps the session cookie.

    ``outage_ok``: when storage is down (503), stay anonymous and return None.
    """
    name = username or new_username()
    response = await client.post(
        "/api/auth/register", json={"username": name, "password": PASSWORD}
    )
    if outage_ok and response.status_code == 503:
        return None
    assert response.status_code == 201, response.text
    return name


def sign_in_sync(client: httpx.Client, username: str | None = None) -> str:
    """:func:`sign_in` for a synchronous client."""
    name = username or new_username()
    response = client.post("/api/auth/register", json={"username": name, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return name


async def mint_session(
    redis: Redis, keys: Keys | None = None, username: str | None = None
) -> tuple[str, str]:
    """A new account with a live session, written directly: ``(user id, Cookie header value)``."""
    keys = keys or Keys()
    record = await UserRepo(redis, keys).create(username or new_username(), UNUSABLE_HASH)
    store = SessionStore(redis, keys, Revocations(redis, keys), idle_s=86_400, max_s=86_400)
    token, _ = await store.create(record.id, record.username)
    return record.id, f"{COOKIE_NAME}={token}"
