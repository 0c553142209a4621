"""The security services an app builds once, and the checks routes call with a request.

:class:`SecurityServices` lives on ``app.state.security`` (routes reach it through
``SecurityDep`` in :mod:`worldgen.web.deps`). :func:`authorize` and :func:`authorize_user` are
the one way a route asks the guard about the requester; :func:`rate_limit` counts a hit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from starlette.requests import HTTPConnection

from worldgen.errors import SignInRequiredError
from worldgen.settings import Settings
from worldgen.store.client import StorageError, Store
from worldgen.store.members import MemberRepo
from worldgen.store.ratelimit import Bucket, RateLimiter
from worldgen.store.sessions import Revocations, SessionStore
from worldgen.store.users import UserRepo
from worldgen.store.worlds import WorldRecord, WorldRepo
from worldgen.web.auth.passwords import Passwords
from worldgen.web.auth.policy import Action, Guard
from worldgen.web.auth.sessions import User, user_of

__all__ = [
    "SecurityServices",
    "account_context",
    "authorize",
    "authorize_user",
    "current_user",
    "rate_limit",
    "services_of",
    "visible_worlds",
]


@dataclass(frozen=True)
class SecurityServices:
    """Accounts, sessions, memberships, rate limits, revocations, hashing and the guard."""

    settings: Settings
    users: UserRepo
    sessions: SessionStore
    members: MemberRepo
    limiter: RateLimiter
    revocations: Revocations
    passwords: Passwords
    guard: Guard

    @classmethod
    def build(cls, store: Store, settings: Settings, passwords: Passwords) -> SecurityServices:
        """The services over the app's store (``passwords``: the app's hasher)."""
        return cls(
            settings=settings,
            users=store.users,
            sessions=store.sessions,
            members=store.members,
            limiter=store.limiter,
            revocations=store.revocations,
            passwords=passwords,
            guard=Guard(store.members),
        )


def services_of(conn: HTTPConnection) -> SecurityServices:
    """The app's security services (built by its lifespan)."""
    return cast(SecurityServices, conn.app.state.security)


async def current_user(conn: HTTPConnection) -> User | None:
    """The signed-in user of this request or socket, or None (looked up once per request)."""
    return await user_of(conn, services_of(conn).sessions)


async def account_context(conn: HTTPConnection) -> dict[str, bool | str | None]:
    """What a page tells its scripts about the visitor, so a signed-out page never needs to ask
    ``/api/auth/me``: ``signed_in`` and ``username`` (None when signed out). Empty when storage
    is unreachable (the page's script may then ask for itself)."""
    try:
        user = await current_user(conn)
    except StorageError:
        return {}
    return {"signed_in": user is not None, "username": user.username if user else None}


async def authorize(conn: HTTPConnection, world: WorldRecord, action: Action) -> None:
    """Allow ``action`` on ``world`` for whoever sent ``conn``, else raise 404/401/403.

    Viewing a public world needs no session lookup at all (the map-tile hot path); everything
    else looks the user up (once per request).
    """
    if action == "view" and world.visibility == "public":
        return
    await services_of(conn).guard.require(await current_user(conn), world, action)


async def authorize_user(conn: HTTPConnection, world: WorldRecord, action: Action) -> User:
    """The signed-in user allowed to do ``action`` (every action but viewing needs one).

    The guard answers first, so an anonymous request about a private world gets the same 404 as
    one about a world that does not exist, never a 401 that would reveal it.
    """
    user = await current_user(conn)
    await services_of(conn).guard.require(user, world, action)
    if user is None:
        raise SignInRequiredError
    return user


async def visible_worlds(
    conn: HTTPConnection, worlds: WorldRepo, *, offset: int, limit: int
) -> list[WorldRecord]:
    """The worlds the requester may see, newest first (see :meth:`Guard.visible`)."""
    user = await current_user(conn)
    return await services_of(conn).guard.visible(user, worlds, offset=offset, limit=limit)


async def rate_limit(security: SecurityServices, bucket: Bucket, subject: str) -> None:
    """Count one hit; :class:`~worldgen.errors.RateLimitedError` (a 429 that says when to retry,
    in its message and ``Retry-After``) when the limit is exhausted."""
    await security.limiter.hit(bucket, subject)
