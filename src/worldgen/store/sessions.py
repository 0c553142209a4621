"""Server-side sessions and the revocation bus that ends open connections on every instance.

A session is an opaque random token (256 bits) held by the browser in an HttpOnly cookie. Redis
stores only the token's SHA-256 digest (the *session id*, ``sid``): a leaked dump or key listing
holds no usable token. Each session hash carries a TTL that slides with use (``idle_s``) and an
absolute end (``max_s`` after creation) that no use extends.

Invariants:

- A token is accepted only if it has the exact shape :func:`new_token` produces and its digest
  names a live session hash whose absolute end has not passed; anything else is "no session".
- Ending a session (:meth:`SessionStore.revoke`) deletes the hash first and then announces
  ``session-revoked`` through :class:`Revocations`, so a connection told to close can never find
  its session still valid.
- :class:`Revocations` dispatches each event to the local watchers at once *and* publishes it for
  the other instances (which skip their own echo, so each watcher fires once per event). After
  the instance's pub/sub reconnects (a Redis restart), every watched session is checked again
  and every access watcher is told to re-check, so an event lost while the subscriber was down
  still closes what it should.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Final, Literal, TypeVar

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from worldgen.store.keys import Keys, digest, valid_user_id, valid_world_id
from worldgen.store.pubsub import PubSub
from worldgen.store.replies import text as _text

__all__ = [
    "Revocations",
    "Session",
    "SessionStore",
    "new_token",
    "session_id",
]

TOKEN_BYTES: Final = 32
"""Random bytes in a token (256 bits; the floor asked for is 128)."""
_TOKEN_RE: Final = re.compile(r"^[A-Za-z0-9_-]{43}$")
REFRESH_EVERY_S: Final = 60.0
"""A session's sliding TTL is pushed forward at most this often (one write per minute of use)."""

_log = structlog.get_logger("worldgen.security")
_K = TypeVar("_K")


def new_token() -> str:
    """A fresh session token: 32 random bytes, URL-safe base64 without padding (43 chars)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def session_id(token: str) -> str | None:
    """The session id (SHA-256 hex) of a well-formed token, or None for anything else."""
    if not _TOKEN_RE.fullmatch(token):
        return None
    return digest(token)


class Session(BaseModel):
    """A live session: who is signed in, and since when."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    sid: str = Field(pattern=r"^[0-9a-f]{64}$")
    user_id: str = Field(pattern=r"^[A-Za-z0-9_-]{16}$")
    username: str = Field(min_length=1, max_length=64)
    created: float = Field(ge=0)
    seen: float = Field(ge=0)


class SessionStore:
    """Create, look up and end sessions (``idle_s`` sliding TTL, ``max_s`` absolute lifetime)."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        revocations: Revocations,
        *,
        idle_s: int,
        max_s: int,
    ) -> None:
        if not 1 <= idle_s <= max_s:
            raise ValueError("session lifetimes must satisfy 1 <= idle_s <= max_s")
        self.redis = redis
        self.keys = keys
        self.revocations = revocations
        self.idle_s = idle_s
        self.max_s = max_s

    async def create(self, user_id: str, username: str) -> tuple[str, Session]:
        """Start a session for the user; returns the token (for the cookie only) and the session."""
        if not valid_user_id(user_id):
            raise ValueError("invalid user id")
        token = new_token()
        now = time.time()
        session = Session(
            sid=digest(token), user_id=user_id, username=username, created=now, seen=now
        )
        key = self.keys.session(session.sid)
        index = self.keys.user_sessions(user_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, mapping={k: str(v) for k, v in session.model_dump().items()})
            pipe.expire(key, self.idle_s)
            pipe.sadd(index, session.sid)
            pipe.expire(index, self.max_s)
            await pipe.execute()
        return token, session

    async def get(self, token: str | None) -> Session | None:
        """The live session of ``token``, or None; pushes the sliding TTL forward when due."""
        sid = session_id(token) if token else None
        if sid is None:
            return None
        return await self.get_by_id(sid)

    async def get_by_id(self, sid: str) -> Session | None:
        """The live session with this id, or None (expired, ended, unreadable)."""
        key = self.keys.session(sid)
        raw = await self.redis.hgetall(key)
        if not raw:
            return None
        try:
            session = Session.model_validate({_text(k): _text(v) for k, v in raw.items()})
        except ValidationError:
            await self.redis.delete(key)
            return None
        now = time.time()
        end = session.created + self.max_s
        if now >= end:
            await self.redis.delete(key)
            return None
        if now - session.seen >= REFRESH_EVERY_S:
            ttl = max(1, min(self.idle_s, int(end - now)))
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hset(key, "seen", str(now))
                pipe.expire(key, ttl)
                await pipe.execute()
        return session

    async def exists(self, sid: str) -> bool:
        """True while the session is live (cheap: one ``EXISTS``; used by long-lived sockets)."""
        return bool(await self.redis.exists(self.keys.session(sid)))

    async def revoke(self, session: Session) -> None:
        """End one session everywhere: delete it, then close its sockets on every instance."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(self.keys.session(session.sid))
            pipe.srem(self.keys.user_sessions(session.user_id), session.sid)
            await pipe.execute()
        await self.revocations.session_revoked(session.sid)

    async def revoke_all(self, user_id: str, *, keep: str | None = None) -> int:
        """End every session of the user except ``keep`` (a sid); returns how many ended."""
        index = self.keys.user_sessions(user_id)
        sids = [_text(s) for s in await self.redis.smembers(index)]
        ended = [s for s in sids if s != keep and re.fullmatch(r"[0-9a-f]{64}", s)]
        if ended:
            async with self.redis.pipeline(transaction=False) as pipe:
                for sid in ended:
                    pipe.delete(self.keys.session(sid))
                pipe.srem(index, *ended)
                await pipe.execute()
            for sid in ended:
                await self.revocations.session_revoked(sid)
        return len(ended)


Callback = Callable[[], Awaitable[None] | None]
"""What a watcher runs when its access may have ended (a coroutine function is scheduled)."""


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["session-revoked", "access-changed", "world-changed"]
    origin: str = Field(default="", max_length=32)
    """The publishing instance (it has dispatched locally already and skips its own echo)."""
    sid: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    world: str | None = Field(default=None, max_length=32)
    user: str | None = Field(default=None, max_length=16)


class Revocations:
    """Tells long-lived connections, on every app instance, that their access may have ended.

    A WebSocket registers :meth:`watch_session` (its session id) and :meth:`watch_access` (its
    world and user, or None for a guest); the returned function unregisters.
    ``session-revoked`` fires the session's watchers; ``access-changed`` (a member removed, a
    role changed) fires the watchers of that world and user, and ``world-changed`` (the world
    became private) those of every user and guest in that world: they re-check their permission
    and close if it is gone. Callbacks should be
    idempotent: after a gap in the subscription, the re-check may fire them again.

    Events travel on the instance's one :class:`~worldgen.store.pubsub.PubSub` (its listener is
    run by the app); without one given, a private one is made that can only publish (tools that
    end sessions but hold no connections).
    """

    def __init__(self, redis: Redis, keys: Keys, pubsub: PubSub | None = None) -> None:
        self.redis = redis
        self.keys = keys
        self.channel = keys.security_events()
        self.instance = secrets.token_hex(8)
        self.pubsub = pubsub if pubsub is not None else PubSub(redis)
        self._sessions: dict[str, set[Callback]] = {}
        self._access: dict[tuple[str, str], set[Callback]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.resubscriptions = 0
        """Times the events came back after a gap (each followed by a re-check)."""
        self.pubsub.subscribe(self.channel, self._receive)
        self.pubsub.on_connect(self._connected)

    # -- watching --------------------------------------------------------------------------

    def watch_session(self, sid: str, callback: Callback) -> Callable[[], None]:
        """Run ``callback`` when session ``sid`` ends; returns the unwatch function."""
        self._sessions.setdefault(sid, set()).add(callback)
        return lambda: _discard(self._sessions, sid, callback)

    def watch_access(
        self, world_id: str, user_id: str | None, callback: Callback
    ) -> Callable[[], None]:
        """Run ``callback`` when the user's (None: a guest's) access to the world may have
        changed: their membership changed, or the world's visibility; returns unwatch."""
        key = (world_id, user_id or "")
        self._access.setdefault(key, set()).add(callback)
        return lambda: _discard(self._access, key, callback)

    # -- announcing --------------------------------------------------------------------------

    async def session_revoked(self, sid: str) -> None:
        """Announce that session ``sid`` has ended (it is already deleted)."""
        await self._announce(_Event(type="session-revoked", sid=sid, origin=self.instance))

    async def access_changed(self, world_id: str, user_id: str) -> None:
        """Announce that the user's role in the world changed or was removed."""
        await self._announce(
            _Event(type="access-changed", world=world_id, user=user_id, origin=self.instance)
        )

    async def world_changed(self, world_id: str) -> None:
        """Announce that who may see the world changed (its visibility): everyone re-checks."""
        await self._announce(_Event(type="world-changed", world=world_id, origin=self.instance))

    async def _announce(self, event: _Event) -> None:
        self._dispatch(event)
        await self.pubsub.publish(self.channel, event.model_dump_json(exclude_none=True))

    def _dispatch(self, event: _Event) -> None:
        if event.type == "session-revoked" and event.sid is not None:
            callbacks = set(self._sessions.get(event.sid, ()))
        elif event.type == "access-changed" and event.world and event.user:
            callbacks = set(self._access.get((event.world, event.user), ()))
        elif event.type == "world-changed" and event.world is not None:
            callbacks = {
                cb
                for (world, _), watchers in self._access.items()
                if world == event.world
                for cb in watchers
            }
        else:
            return
        for callback in callbacks:
            self._run(callback)

    def _run(self, callback: Callback) -> None:
        try:
            result = callback()
        except Exception:  # one broken watcher must not stop the others
            _log.exception("revocation watcher failed")
            return
        if inspect.isawaitable(result):
            self._spawn(result)

    def _spawn(self, awaitable: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- listening ---------------------------------------------------------------------------

    def _receive(self, data: bytes) -> None:
        try:
            event = _Event.model_validate(json.loads(data))
        except (ValueError, ValidationError):
            _log.warning("ignored a malformed security event")
            return
        if event.origin == self.instance:
            return
        if event.world is not None and not valid_world_id(event.world):
            return
        self._dispatch(event)

    def _connected(self, reconnected: bool) -> None:
        if reconnected:
            self.resubscriptions += 1
            _log.info("security events resubscribed")
            self._spawn(self._recheck())

    async def sweep_sessions(self) -> int:
        """Fire the watchers of every watched session that ended without an announcement (its
        idle or absolute lifetime ran out: Redis expired it). One pipelined ``EXISTS`` round for
        all of them; returns how many ended. Raises :data:`~worldgen.store.client.StorageError`
        when Redis is unreachable (the caller retries on its next round)."""
        sids = list(self._sessions)
        if not sids:
            return 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid in sids:
                pipe.exists(self.keys.session(sid))
            alive = await pipe.execute()
        ended = [sid for sid, live in zip(sids, alive, strict=True) if not live]
        for sid in ended:
            for callback in set(self._sessions.get(sid, ())):
                self._run(callback)
        return len(ended)

    async def _recheck(self) -> None:
        """After a gap in the subscription: fire watchers whose session is gone, and let every
        access watcher re-check (events published during the gap were lost)."""
        try:
            for sid in list(self._sessions):
                if not await self.redis.exists(self.keys.session(sid)):
                    for callback in set(self._sessions.get(sid, ())):
                        self._run(callback)
        except RedisError as exc:  # the next reconnect re-checks again
            _log.warning("session re-check failed", error=type(exc).__name__)
        for callbacks in list(self._access.values()):
            for callback in set(callbacks):
                self._run(callback)


def _discard(table: dict[_K, set[Callback]], key: _K, callback: Callback) -> None:
    callbacks = table.get(key)
    if callbacks is not None:
        callbacks.discard(callback)
        if not callbacks:
            del table[key]
