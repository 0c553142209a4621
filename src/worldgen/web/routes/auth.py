"""Accounts and sessions: ``/api/auth/register|login|logout|me|password``.

Invariants:

- Every login attempt costs exactly one argon2 verify, whether the username exists or not, and
  fails with the same message either way (no user enumeration through login; registration does
  reveal that a name is taken, which is rate limited per address).
- A successful login or registration starts a *new* session (a fresh token), ending the one the
  browser held before; the token travels only in the ``Set-Cookie`` header.
- Logging out ends the session server-side and closes its WebSockets on every instance.
- Rate limits are counted before any hashing, so a flood costs Redis counters, not CPU.
- Auth responses are ``Cache-Control: no-store``. Passwords and tokens are never logged.
"""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from worldgen.store.users import (
    PASSWORD_MAX,
    PASSWORD_MIN,
    USERNAME_PATTERN,
    normalize_username,
)
from worldgen.web.auth.services import SecurityServices, account_context, rate_limit
from worldgen.web.auth.sessions import (
    clear_session_cookie,
    client_address,
    session_token,
    set_session_cookie,
)
from worldgen.web.deps import CurrentUser, SecurityDep, TemplatesDep

__all__ = ["Credentials", "PasswordChange", "Registration", "UserOut", "page_router", "router"]

_log = structlog.get_logger("worldgen.security")

NO_STORE = {"Cache-Control": "no-store"}

router = APIRouter(prefix="/api/auth", tags=["auth"])
page_router = APIRouter(include_in_schema=False)

Username = Annotated[str, StringConstraints(pattern=USERNAME_PATTERN)]
NewPassword = Annotated[str, StringConstraints(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)]
AnyPassword = Annotated[str, StringConstraints(min_length=1, max_length=PASSWORD_MAX)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Registration(_Strict):
    """``POST /api/auth/register``: a username (3..32 of ``A-Z a-z 0-9 _ . -``, unique in any
    letter case) and a password of 8..1024 characters."""

    username: Username
    password: NewPassword = Field(json_schema_extra={"format": "password"})


class Credentials(_Strict):
    """``POST /api/auth/login``."""

    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: AnyPassword = Field(json_schema_extra={"format": "password"})


class PasswordChange(_Strict):
    """``POST /api/auth/password``: ends every other session of the account."""

    current_password: AnyPassword = Field(json_schema_extra={"format": "password"})
    new_password: NewPassword = Field(json_schema_extra={"format": "password"})


class UserOut(BaseModel):
    """A signed-in user as the API shows it."""

    id: str
    username: str


class Detail(BaseModel):
    """An error body."""

    detail: str


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Detail, "description": "Not signed in, or wrong username or password."},
    429: {"model": Detail, "description": "Too many attempts; see Retry-After."},
}


async def _start_session(
    security: SecurityServices, request: Request, response: Response, user_id: str, username: str
) -> None:
    """A fresh session in a fresh cookie; the one the browser held before ends."""
    previous = await security.sessions.get(session_token(request))
    if previous is not None:
        await security.sessions.revoke(previous)
    token, _ = await security.sessions.create(user_id, username)
    set_session_cookie(response, request, token, security.settings.session_max_s)
    response.headers.update(NO_STORE)


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    responses={409: {"model": Detail, "description": "Username taken."}, **_ERRORS},
)
async def register(
    body: Registration, request: Request, response: Response, security: SecurityDep
) -> UserOut:
    """Create an account and sign in to it."""
    await rate_limit(security, "register_address", client_address(request))
    password_hash = await security.passwords.hash(body.password)
    record = await security.users.create(body.username, password_hash)
    _log.info("account created", user=record.id)
    await _start_session(security, request, response, record.id, record.username)
    return UserOut(id=record.id, username=record.username)


@router.post("/login", response_model=UserOut, responses=_ERRORS)
async def login(
    body: Credentials, request: Request, response: Response, security: SecurityDep
) -> UserOut:
    """Sign in; sets the session cookie. Wrong name or password: 401, the same for both."""
    account = normalize_username(body.username)
    await rate_limit(security, "login_address", client_address(request))
    await rate_limit(security, "login_account", account)
    record = await security.users.by_username(body.username)
    ok, new_hash = await security.passwords.verify(
        body.password, record.password_hash if record is not None else None
    )
    if record is None or not ok:
        _log.info("login failed")
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "wrong username or password", headers=NO_STORE
        )
    if new_hash is not None:
        await security.users.set_password_hash(record.id, new_hash)
    await security.limiter.reset("login_account", account)
    _log.info("signed in", user=record.id)
    await _start_session(security, request, response, record.id, record.username)
    return UserOut(id=record.id, username=record.username)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(request: Request, security: SecurityDep) -> Response:
    """End this session (its WebSockets close within a second) and clear the cookie."""
    session = await security.sessions.get(session_token(request))
    if session is not None:
        await security.sessions.revoke(session)
        _log.info("signed out", user=session.user_id)
    response = Response(status_code=status.HTTP_204_NO_CONTENT, headers=NO_STORE)
    clear_session_cookie(response, request)
    return response


@router.get("/me", response_model=UserOut, responses={401: _ERRORS[401]})
async def me(user: CurrentUser, response: Response) -> UserOut:
    """The signed-in user, or 401."""
    response.headers.update(NO_STORE)
    return UserOut(id=user.id, username=user.username)


@router.post(
    "/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={403: {"model": Detail, "description": "Wrong current password."}, **_ERRORS},
)
async def change_password(
    body: PasswordChange, user: CurrentUser, security: SecurityDep
) -> Response:
    """Replace the password (the current one is required) and end every other session."""
    await rate_limit(security, "login_account", normalize_username(user.username))
    record = await security.users.get(user.id)
    ok, _ = await security.passwords.verify(
        body.current_password, record.password_hash if record is not None else None
    )
    if record is None or not ok:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "the current password is wrong", headers=NO_STORE
        )
    await security.users.set_password_hash(
        record.id, await security.passwords.hash(body.new_password)
    )
    ended = await security.sessions.revoke_all(record.id, keep=user.sid)
    _log.info("password changed", user=record.id, sessions_ended=ended)
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=NO_STORE)


@page_router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, templates: TemplatesDep) -> HTMLResponse:
    """The sign-in and registration page (its script posts to the API above)."""
    context = await account_context(request)
    return templates.TemplateResponse(request, "login.html", context, headers=NO_STORE)
