"""Session cookies and the signed-in user of a request or a WebSocket.

The cookie holds an opaque token only (see :mod:`worldgen.store.sessions`): ``HttpOnly``,
``SameSite=Lax``, ``Path=/``, and under TLS ``Secure`` with the ``__Host-`` name prefix. The
user is looked up once per request and kept on ``conn.state``.
"""

from __future__ import annotations

from typing import Final, cast

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import HTTPConnection
from starlette.responses import Response

from worldgen.store.sessions import Session, SessionStore

__all__ = [
    "COOKIE_NAME",
    "SECURE_COOKIE_NAME",
    "User",
    "clear_session_cookie",
    "client_address",
    "is_secure",
    "session_token",
    "set_session_cookie",
    "user_of",
]

COOKIE_NAME: Final = "wg_session"
SECURE_COOKIE_NAME: Final = "__Host-wg_session"
"""Under TLS: the ``__Host-`` prefix makes the browser insist on Secure, Path=/ and no Domain."""


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


async def user_of(conn: HTTPConnection, sessions: SessionStore) -> User | None:
    """The signed-in user of this request or socket, or None (no cookie, an ended session, a
    malformed token); looked up once per request and kept on ``conn.state``."""
    cached = getattr(conn.state, "user", _UNSET)
    if cached is not _UNSET:
        return cast(User | None, cached)
    session = await sessions.get(session_token(conn))
    user = None if session is None else User.of(session)
    conn.state.user = user
    return user


def client_address(conn: HTTPConnection) -> str:
    """The client's address as the server sees it (behind a proxy: what the trusted proxy says,
    see ``--forwarded-allow-ips``); ``"unknown"`` when the transport does not tell."""
    return conn.client.host if conn.client is not None else "unknown"
