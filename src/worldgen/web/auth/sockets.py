"""What a WebSocket needs from the security layer: who it is, whether it may see the world,
the watch that closes it when its access ends, and the gate every chat message passes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import HTTPConnection

from worldgen.errors import (
    CLOSE_NOT_FOUND,
    CLOSE_SIGNED_OUT,
    CLOSE_TRY_LATER,
    RateLimitedError,
    SignInRequiredError,
    StorageUnavailableError,
)
from worldgen.store.chat import Author
from worldgen.store.client import StorageError
from worldgen.store.worlds import WorldRecord, WorldRepo
from worldgen.web.auth.services import SecurityServices, services_of
from worldgen.web.auth.sessions import User

__all__ = ["SocketClose", "author_of", "message_gate", "view_check", "watch_socket"]

SocketClose = Callable[[int, str], Awaitable[None]]
"""Closes one socket with a code and a reason."""


def author_of(user: User | None) -> Author | None:
    """A signed-in user as the real-time layer names people (None: the socket is a guest's)."""
    if user is None:
        return None
    return Author(id=user.id, name=user.username, guest=False)


def view_check(conn: HTTPConnection, user: User | None) -> Callable[[WorldRecord], Awaitable[bool]]:
    """:meth:`~worldgen.web.auth.policy.Guard.can` ``view`` for the socket's user, for the hub
    to ask at the very point where it checks that the world exists: a private world the user
    does not belong to then gets exactly the answer an unknown world gets (``error``
    ``not_found``, close 4404)."""
    guard = services_of(conn).guard

    async def can_view(world: WorldRecord) -> bool:
        return await guard.can(user, world, "view")

    return can_view


def watch_socket(
    conn: HTTPConnection, user: User | None, world_id: str, worlds: WorldRepo, close: SocketClose
) -> Callable[[], None]:
    """Close the socket when its session ends (logout, password change: 4401) or when its user
    (or guest) loses access to the world (removed from a private world, or the world made
    private: 4404), on whichever instance that happens. A re-check that cannot reach storage
    fails closed (1013: the client reconnects and is checked again when it joins). Returns the
    function that stops watching (call it when the socket ends)."""
    security = services_of(conn)

    async def signed_out() -> None:
        await close(CLOSE_SIGNED_OUT, "signed out")

    async def recheck() -> None:
        try:
            current = await worlds.get(world_id)
            allowed = current is not None and await security.guard.can(user, current, "view")
        except StorageError:
            await close(CLOSE_TRY_LATER, "unavailable")
            return
        if not allowed:
            await close(CLOSE_NOT_FOUND, "not_found")

    stop_access = security.revocations.watch_access(
        world_id, user.id if user is not None else None, recheck
    )
    if user is None:
        return stop_access
    stop_session = security.revocations.watch_session(user.sid, signed_out)

    def stop() -> None:
        stop_session()
        stop_access()

    return stop


def message_gate(security: SecurityServices) -> Callable[[Author, str | None], Awaitable[None]]:
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
        except StorageError:
            raise StorageUnavailableError(
                "storage unavailable; retry with the same id", ref=ref
            ) from None

    return gate
