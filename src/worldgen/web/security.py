"""Who may do what, and the HTTP-level defences around it.

- **Passwords**: argon2id through ``pwdlib``, hashed off the event loop with bounded
  concurrency. A login for an unknown user still runs exactly one verify (against a dummy hash
  made with the same parameters), so response time tells nothing about which names exist.
- **Authorisation**: :func:`decide` is the one policy table and :meth:`Guard.can` the one
  function every HTTP route, tile route and WebSocket asks. A private world answers exactly like
  a world that does not exist to anyone who is not a member.
- **Cross-site requests** (the middlewares live in :mod:`worldgen.web.hardening` and are
  re-exported here): :class:`OriginCheckMiddleware` refuses unsafe methods and WebSocket
  handshakes whose ``Origin`` (or, without one, ``Sec-Fetch-Site``) is foreign; session cookies
  are ``SameSite=Lax`` on top.
- **Headers**: :class:`SecurityHeadersMiddleware` adds a Content-Security-Policy that allows no
  inline script, ``nosniff``, ``frame-ancestors 'none'``, a Referrer-Policy, and HSTS under TLS.
- **Sessions**: the cookie holds an opaque token only (see :mod:`worldgen.store.sessions`);
  ``HttpOnly``, ``SameSite=Lax``, and under TLS ``Secure`` with the ``__Host-`` name prefix.

``docs/security.md`` explains the threat model these pieces answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Final, Literal, TypeVar, cast, get_args

import structlog
from fastapi import Depends, FastAPI
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import HTTPConnection
from starlette.responses import Response

from worldgen.errors import (
    CLOSE_NOT_FOUND,
    CLOSE_SIGNED_OUT,
    ForbiddenError,
    RateLimitedError,
    SignInRequiredError,
    StorageUnavailableError,
    WorldNotFoundError,
)
from worldgen.settings import Settings
from worldgen.store.chat import Author
from worldgen.store.keys import Keys
from worldgen.store.members import ROLE_RANK, MemberRepo, Role
from worldgen.store.ratelimit import Bucket, RateLimiter, RateLimits
from worldgen.store.sessions import Revocations, Session, SessionStore
from worldgen.store.users import UserRepo
from worldgen.store.worlds import WorldRecord, WorldRepo
from worldgen.web.hardening import (
    CONTENT_SECURITY_POLICY,
    MAX_BODY_BYTES,
    BodyLimitMiddleware,
    OriginCheckMiddleware,
    SecurityHeadersMiddleware,
    install_security,
    install_security_headers,
    normalize_origin,
    origin_allowed,
)

__all__ = [
    "ACTIONS",
    "CONTENT_SECURITY_POLICY",
    "COOKIE_NAME",
    "LIST_SCAN_MAX",
    "MAX_BODY_BYTES",
    "SECURE_COOKIE_NAME",
    "Action",
    "BodyLimitMiddleware",
    "CurrentUser",
    "Decision",
    "Guard",
    "GuardDep",
    "OptionalUser",
    "OriginCheckMiddleware",
    "Passwords",
    "SecurityConfig",
    "SecurityDep",
    "SecurityHeadersMiddleware",
    "SecurityServices",
    "SocketClose",
    "User",
    "author_of",
    "authorize",
    "authorize_user",
    "clear_session_cookie",
    "client_address",
    "current_user",
    "decide",
    "get_current_user",
    "get_guard",
    "get_optional_user",
    "get_security",
    "install_security",
    "install_security_headers",
    "is_secure",
    "message_gate",
    "normalize_origin",
    "origin_allowed",
    "rate_limit",
    "security_lifespan",
    "session_token",
    "set_session_cookie",
    "view_check",
    "visible_worlds",
    "watch_socket",
]

_log = structlog.get_logger("worldgen.security")
_T = TypeVar("_T")

# --------------------------------------------------------------------------------------------
# Configuration


class SecurityConfig(BaseModel):
    """Security knobs of one app (built from the app's settings)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    session_idle_s: int = Field(default=7 * 86_400, ge=1, le=365 * 86_400)
    """A session unused this long ends (the TTL slides with use)."""
    session_max_s: int = Field(default=30 * 86_400, ge=1, le=365 * 86_400)
    """A session ends this long after sign-in, however much it is used."""
    rate_limits: RateLimits = RateLimits()
    allowed_origins: tuple[str, ...] = ()
    """Origins allowed besides the request's own (``https://example.org``)."""
    hash_concurrency: int = Field(default=min(4, os.cpu_count() or 1), ge=1, le=64)
    """Password hashes computed at once (each takes ~64 MiB and ~0.1 s of one core)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> SecurityConfig:
        """The security part of the app's settings."""
        return cls(
            session_idle_s=settings.session_idle_s,
            session_max_s=settings.session_max_s,
            rate_limits=settings.rate_limits,
            allowed_origins=tuple(settings.allowed_origins),
        )


# --------------------------------------------------------------------------------------------
# Passwords


class Passwords:
    """argon2id hashing and verification, off the event loop, with a bounded thread count.

    ``verify`` runs exactly one argon2 verification whether or not the account exists: for an
    unknown user it verifies against a dummy hash made with the current parameters.
    """

    def __init__(self, hasher: PasswordHash | None = None, *, concurrency: int = 2) -> None:
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


# --------------------------------------------------------------------------------------------
# Authorisation

Action = Literal["view", "chat", "rename", "change", "delete", "members", "invite", "manage"]
"""What one can do to a world.

``view``: the world, its map tiles, regions, exports, chat history and presence. ``chat``: send
chat messages and pings. ``rename``: change the name. ``change``: other settings (visibility).
``delete``: delete the world. ``members``: see who belongs. ``invite``: create, list and revoke
invite links. ``manage``: change members' roles and remove members.
"""
ACTIONS: Final[tuple[Action, ...]] = get_args(Action)

_MIN_ROLE: Final[dict[Action, Role | None]] = {
    "view": None,
    "chat": None,
    "rename": "editor",
    "change": "owner",
    "delete": "owner",
    "members": "viewer",
    "invite": "owner",
    "manage": "owner",
}
"""The weakest role an action needs (None: none; every action but ``view`` needs an account)."""


class Decision(Enum):
    """The answer of the policy, and how each is told to the client."""

    ALLOW = "allow"
    NOT_FOUND = "not_found"
    """404, exactly like an unknown world: the world's existence is not revealed."""
    SIGN_IN = "sign_in"
    """401: the world is visible, the action needs an account."""
    FORBIDDEN = "forbidden"
    """403: the user's role is too weak."""


def decide(action: Action, *, visibility: str, role: Role | None, signed_in: bool) -> Decision:
    """The whole authorisation policy, as a pure function (tested exhaustively).

    - A private world does not exist for anyone without a role in it.
    - ``view`` of a visible world is always allowed (public worlds: to anyone).
    - Anything else needs an account, and a role at least as strong as :data:`_MIN_ROLE` says.
    """
    if visibility != "public" and role is None:
        return Decision.NOT_FOUND
    if action == "view":
        return Decision.ALLOW
    if not signed_in:
        return Decision.SIGN_IN
    need = _MIN_ROLE[action]
    if need is None or (role is not None and ROLE_RANK[role] >= ROLE_RANK[need]):
        return Decision.ALLOW
    return Decision.FORBIDDEN


class User(BaseModel):
    """The signed-in user of a request or a WebSocket (from its session)."""

    model_config = ConfigDict(frozen=True)

    id: str
    username: str
    sid: str = Field(repr=False)
    """The session's id (the digest of its token), to end it or watch for its end."""

    @classmethod
    def of(cls, session: Session) -> User:
        return cls(id=session.user_id, username=session.username, sid=session.sid)


class Guard:
    """Asks :func:`decide` with the user's role in the world (the one authorisation function)."""

    def __init__(self, members: MemberRepo) -> None:
        self.members = members

    async def role(self, user: User | None, world: WorldRecord) -> Role | None:
        """The user's role: the world's creator is always an owner; else the member hash."""
        if user is None:
            return None
        if world.owner is not None and world.owner == user.id:
            return "owner"
        return await self.members.role(world.id, user.id)

    async def decision(self, user: User | None, world: WorldRecord, action: Action) -> Decision:
        """The policy's answer (no Redis call for viewing a public world: the tile hot path)."""
        if action == "view" and world.visibility == "public":
            return Decision.ALLOW
        role = await self.role(user, world)
        return decide(action, visibility=world.visibility, role=role, signed_in=user is not None)

    async def can(self, user: User | None, world: WorldRecord, action: Action) -> bool:
        """True when ``user`` (None: anonymous) may do ``action`` to ``world``."""
        return await self.decision(user, world, action) is Decision.ALLOW

    async def require(self, user: User | None, world: WorldRecord, action: Action) -> None:
        """Return if allowed; else raise what the client is told (404, 401 or 403)."""
        answer = await self.decision(user, world, action)
        if answer is Decision.ALLOW:
            return
        if answer is Decision.NOT_FOUND:
            raise WorldNotFoundError
        if answer is Decision.SIGN_IN:
            raise SignInRequiredError
        raise ForbiddenError


# --------------------------------------------------------------------------------------------
# Services on app.state


@dataclass(frozen=True)
class SecurityServices:
    """Everything the security layer needs, built once per app by :func:`security_lifespan`."""

    config: SecurityConfig
    users: UserRepo
    sessions: SessionStore
    members: MemberRepo
    limiter: RateLimiter
    passwords: Passwords
    revocations: Revocations
    guard: Guard

    @classmethod
    def build(
        cls,
        redis: Redis,
        keys: Keys,
        config: SecurityConfig,
        *,
        passwords: Passwords | None = None,
    ) -> SecurityServices:
        """Wire the repositories to one Redis client (``passwords`` lets tests count verifies)."""
        revocations = Revocations(redis, keys)
        members = MemberRepo(redis, keys)
        return cls(
            config=config,
            users=UserRepo(redis, keys),
            sessions=SessionStore(
                redis,
                keys,
                revocations,
                idle_s=config.session_idle_s,
                max_s=max(config.session_max_s, config.session_idle_s),
            ),
            members=members,
            limiter=RateLimiter(redis, keys, config.rate_limits),
            passwords=passwords or Passwords(concurrency=config.hash_concurrency),
            revocations=revocations,
            guard=Guard(members),
        )


LISTENER_STOP_S: Final = 5.0
"""Longest the lifespan waits for the revocation listener to end at shutdown."""


@contextlib.asynccontextmanager
async def security_lifespan(
    app: FastAPI, redis: Redis, keys: Keys, config: SecurityConfig
) -> AsyncIterator[SecurityServices]:
    """Put :class:`SecurityServices` on ``app.state.security`` and run the revocation listener.

    A ``Passwords`` object already on ``app.state.passwords`` (a test's instrumented hasher) is
    used as is.
    """
    given = getattr(app.state, "passwords", None)
    services = SecurityServices.build(
        redis, keys, config, passwords=given if isinstance(given, Passwords) else None
    )
    app.state.security = services
    listener = asyncio.create_task(services.revocations.run(), name="security-events")
    try:
        yield services
    finally:
        services.revocations.stop()
        listener.cancel()
        _, pending = await asyncio.wait({listener}, timeout=LISTENER_STOP_S)
        if pending:
            _log.warning("security events listener did not stop in time")


def get_security(conn: HTTPConnection) -> SecurityServices:
    """The app's security services."""
    return cast(SecurityServices, conn.app.state.security)


SecurityDep = Annotated[SecurityServices, Depends(get_security)]


def get_guard(security: SecurityDep) -> Guard:
    """The authorisation guard."""
    return security.guard


GuardDep = Annotated[Guard, Depends(get_guard)]


# --------------------------------------------------------------------------------------------
# Session cookies and the current user

COOKIE_NAME: Final = "wg_session"
SECURE_COOKIE_NAME: Final = "__Host-wg_session"
"""Under TLS: the ``__Host-`` prefix makes the browser insist on Secure, Path=/ and no Domain."""


def is_secure(conn: HTTPConnection) -> bool:
    """True when the client reached us over TLS (directly, or through a trusted proxy)."""
    return conn.url.scheme in ("https", "wss")


def session_token(conn: HTTPConnection) -> str | None:
    """The session token the client sent, if any (only the name that fits the scheme)."""
    return conn.cookies.get(SECURE_COOKIE_NAME if is_secure(conn) else COOKIE_NAME)


def set_session_cookie(response: Response, conn: HTTPConnection, token: str, max_age: int) -> None:
    """Give the browser its session: HttpOnly, SameSite=Lax, Path=/; Secure under TLS."""
    secure = is_secure(conn)
    response.set_cookie(
        SECURE_COOKIE_NAME if secure else COOKIE_NAME,
        token,
        max_age=max_age,
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response, conn: HTTPConnection) -> None:
    """Tell the browser to forget its session cookie."""
    secure = is_secure(conn)
    response.delete_cookie(
        SECURE_COOKIE_NAME if secure else COOKIE_NAME,
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )


_UNSET: Final = object()


async def current_user(conn: HTTPConnection) -> User | None:
    """The signed-in user of this request or socket, or None (no cookie, an ended session, a
    malformed token); looked up once per request and kept on ``conn.state``."""
    cached = getattr(conn.state, "user", _UNSET)
    if cached is not _UNSET:
        return cast(User | None, cached)
    session = await get_security(conn).sessions.get(session_token(conn))
    user = None if session is None else User.of(session)
    conn.state.user = user
    return user


async def get_optional_user(conn: HTTPConnection) -> User | None:
    """The signed-in user, or None (the dependency behind :data:`OptionalUser`)."""
    return await current_user(conn)


OptionalUser = Annotated[User | None, Depends(get_optional_user)]


async def get_current_user(user: OptionalUser) -> User:
    """The signed-in user; 401 when there is none."""
    if user is None:
        raise SignInRequiredError
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def authorize(conn: HTTPConnection, world: WorldRecord, action: Action) -> None:
    """Allow ``action`` on ``world`` for whoever sent ``conn``, else raise 404/401/403.

    Viewing a public world needs no session lookup at all (the map-tile hot path); everything
    else looks the user up (once per request).
    """
    if action == "view" and world.visibility == "public":
        return
    await get_security(conn).guard.require(await current_user(conn), world, action)


async def authorize_user(conn: HTTPConnection, world: WorldRecord, action: Action) -> User:
    """The signed-in user allowed to do ``action`` (every action but viewing needs one).

    The guard answers first, so an anonymous request about a private world gets the same 404 as
    one about a world that does not exist, never a 401 that would reveal it.
    """
    user = await current_user(conn)
    await get_security(conn).guard.require(user, world, action)
    if user is None:
        raise SignInRequiredError
    return user


LIST_SCAN_MAX: Final = 10_000
"""Newest worlds examined per listing: bounds the work of one ``GET /api/worlds``."""
_LIST_BATCH: Final = 200


async def visible_worlds(
    conn: HTTPConnection, worlds: WorldRepo, *, offset: int, limit: int
) -> list[WorldRecord]:
    """The worlds the requester may see, newest first: every public world, and the private
    worlds they belong to (their role checked in each world's member hash, the truth)."""
    security = get_security(conn)
    user = await current_user(conn)
    mine = set(await security.members.world_ids(user.id)) if user is not None else set()
    found: list[WorldRecord] = []
    skipped = 0
    total = await worlds.count()
    start = 0
    while len(found) < limit and start < min(total, LIST_SCAN_MAX):
        batch = await worlds.list(offset=start, limit=_LIST_BATCH)
        start += _LIST_BATCH
        for record in batch:
            if record.visibility != "public":
                if user is None or (record.owner != user.id and record.id not in mine):
                    continue
                if record.owner != user.id and await security.guard.role(user, record) is None:
                    continue
            if skipped < offset:
                skipped += 1
                continue
            found.append(record)
            if len(found) == limit:
                break
    return found


def client_address(conn: HTTPConnection) -> str:
    """The client's address as the server sees it (behind a proxy: what the trusted proxy says,
    see ``--forwarded-allow-ips``); ``"unknown"`` when the transport does not tell."""
    return conn.client.host if conn.client is not None else "unknown"


async def rate_limit(security: SecurityServices, bucket: Bucket, subject: str) -> None:
    """Count one hit; :class:`~worldgen.errors.RateLimitedError` (a 429 that says when to retry,
    in its message and ``Retry-After``) when the limit is exhausted."""
    await security.limiter.hit(bucket, subject)


# --------------------------------------------------------------------------------------------
# Real-time sockets

SocketClose = Callable[[int, str], Awaitable[None]]
"""Closes one socket with a code and a reason."""


def author_of(user: User | None) -> Author | None:
    """A signed-in user as the real-time layer names people (None: the socket is a guest's)."""
    if user is None:
        return None
    return Author(id=user.id, name=user.username, guest=False)


def view_check(conn: HTTPConnection, user: User | None) -> Callable[[WorldRecord], Awaitable[bool]]:
    """:meth:`Guard.can` ``view`` for the socket's user, for the hub to ask at the very point
    where it checks that the world exists: a private world the user does not belong to then
    gets exactly the answer an unknown world gets (``error`` ``not_found``, close 4404)."""
    guard = get_security(conn).guard

    async def can_view(world: WorldRecord) -> bool:
        return await guard.can(user, world, "view")

    return can_view


def watch_socket(
    conn: HTTPConnection, user: User | None, world_id: str, worlds: WorldRepo, close: SocketClose
) -> Callable[[], None]:
    """Close the socket when its session ends (logout, password change: 4401) or when its user
    loses access to the world (removed from a private world: 4404), on whichever instance that
    happens. Returns the function that stops watching (call it when the socket ends)."""
    if user is None:
        return lambda: None
    security = get_security(conn)

    async def signed_out() -> None:
        await close(CLOSE_SIGNED_OUT, "signed out")

    async def recheck() -> None:
        current = await worlds.get(world_id)
        if current is None or not await security.guard.can(user, current, "view"):
            await close(CLOSE_NOT_FOUND, "not_found")

    stop_session = security.revocations.watch_session(user.sid, signed_out)
    stop_access = security.revocations.watch_access(world_id, user.id, recheck)

    def stop() -> None:
        stop_session()
        stop_access()

    return stop


def message_gate(
    security: SecurityServices,
) -> Callable[[Author, str | None], Awaitable[None]]:
    """The check every chat message and ping passes before it is stored: an account is needed
    (guests get ``sign_in_required``), and the account's own rate limit across all its sockets
    (``rate_limited``; the socket stays open, the message is refused)."""

    async def gate(author: Author, ref: str | None) -> None:
        if author.guest:
            raise SignInRequiredError("sign in to chat", ref=ref)
        try:
            await security.limiter.hit("chat", author.id)
        except RateLimitedError as exc:
            raise RateLimitedError(
                f"too many messages from your account; wait {exc.retry_after} s",
                retry_after=exc.retry_after,
                ref=ref,
            ) from None
        except RedisError:
            raise StorageUnavailableError(
                "storage unavailable; retry with the same id", ref=ref
            ) from None

    return gate
