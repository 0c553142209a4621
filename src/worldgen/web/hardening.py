"""HTTP hardening that needs no knowledge of users: the cross-site check of unsafe requests and
WebSocket handshakes, the security headers (with a Content-Security-Policy that allows no inline
script), and the bound on request bodies. Accounts and the authorisation policy live in
:mod:`worldgen.web.auth`; ``docs/security.md`` explains why each defence exists.

:func:`origin_allowed` is the app's one cross-site check: the middleware applies it to every
unsafe HTTP method and to every WebSocket handshake, so the two can never disagree.

Every middleware here is pure ASGI (no body buffering beyond the bounds stated, WebSockets
included). Order, outermost first: headers, request log, body bound, cross-site check — see
:func:`install_security` and :func:`install_security_headers`.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterable
from typing import Final
from urllib.parse import urlsplit

import structlog
from fastapi import FastAPI, status
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "DOCS_PATHS",
    "HSTS",
    "MAX_BODY_BYTES",
    "SAFE_METHODS",
    "BodyLimitMiddleware",
    "OriginCheckMiddleware",
    "SecurityHeadersMiddleware",
    "docs_policy",
    "install_security",
    "install_security_headers",
    "normalize_origin",
    "origin_allowed",
]

_log = structlog.get_logger("worldgen.security")


# --------------------------------------------------------------------------------------------
# Cross-site request checks

SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_SAME_SITE_OK: Final = frozenset({"same-origin", "none"})


def normalize_origin(value: str) -> str | None:
    """``scheme://host[:port]`` in lower case with default ports dropped; None if malformed."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host or parts.path not in ("", "/"):
        return None
    if parts.username is not None or parts.query or parts.fragment:
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _own_origin(scope: Scope, headers: Headers) -> str | None:
    scheme = {"ws": "http", "wss": "https"}.get(scope.get("scheme", "http"), scope.get("scheme"))
    host = headers.get("host")
    if not host or scheme not in ("http", "https"):
        return None
    return normalize_origin(f"{scheme}://{host}")


def origin_allowed(scope: Scope, allowed: Iterable[str]) -> bool:
    """True when the request may come from where its headers say it comes from.

    ``Origin`` present: it must equal the request's own origin or one of ``allowed`` (``null``
    never passes). Absent: ``Sec-Fetch-Site`` must be ``same-origin`` or ``none`` if present.
    Neither header: not a browser (curl, scripts) - cross-site request forgery needs a browser,
    and every browser sends one of them, so the request passes.
    """
    headers = Headers(scope=scope)
    origin = headers.get("origin")
    if origin is not None:
        mine = normalize_origin(origin)
        if mine is None:
            return False
        return mine == _own_origin(scope, headers) or mine in {normalize_origin(a) for a in allowed}
    site = headers.get("sec-fetch-site")
    return site is None or site.lower() in _SAME_SITE_OK


class OriginCheckMiddleware:
    """403 JSON for an unsafe method, and a refused handshake for a WebSocket, from a foreign
    origin (pure ASGI: no body buffering, WebSockets included)."""

    def __init__(self, app: ASGIApp, allowed_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = tuple(allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            if not origin_allowed(scope, self.allowed):
                _log.warning("cross-origin request refused", method=scope["method"])
                response = JSONResponse(
                    {"detail": "cross-origin request refused"},
                    status_code=status.HTTP_403_FORBIDDEN,
                )
                await response(scope, receive, send)
                return
        elif scope["type"] == "websocket" and not origin_allowed(scope, self.allowed):
            _log.warning("cross-site websocket refused")
            message = await receive()
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.close", "code": 1008, "reason": ""})
            return
        await self.app(scope, receive, send)


# --------------------------------------------------------------------------------------------
# Security headers

CONTENT_SECURITY_POLICY: Final = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
"""Everything from our own origin; no inline script, no plugins, never framed."""
HSTS: Final = "max-age=63072000; includeSubDomains"
_BASE_HEADERS: Final[tuple[tuple[str, str], ...]] = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
)


DOCS_PATHS: Final = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
"""Generated API documentation pages: the only pages with inline script (our own, fixed)."""
_INLINE_SCRIPT_RE: Final = re.compile(rb"<script>(.*?)</script>", re.DOTALL | re.IGNORECASE)
_DOCS_BODY_MAX: Final = 1 << 20


def docs_policy(html: bytes) -> str:
    """The policy of a generated docs page: its own inline scripts allowed by SHA-256 hash
    (nothing else inline can run), inline styles allowed (the docs' renderers need them)."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'"
        for body in _INLINE_SCRIPT_RE.findall(html)
    )
    return (
        CONTENT_SECURITY_POLICY.replace(
            "script-src 'self'", f"script-src 'self' {hashes}".rstrip()
        ).replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
        + "; worker-src 'self' blob:"
    )


class SecurityHeadersMiddleware:
    """Adds the headers above to every HTTP response (a route's own value wins), HSTS over TLS.

    The generated API docs pages (:data:`DOCS_PATHS`) are buffered and get :func:`docs_policy`.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        secure = scope.get("scheme") == "https"

        def harden(message: Message) -> MutableHeaders:
            headers = MutableHeaders(scope=message)
            for name, value in _BASE_HEADERS:
                if name not in headers:
                    headers[name] = value
            if secure and "strict-transport-security" not in headers:
                headers["strict-transport-security"] = HSTS
            return headers

        if scope.get("path") in DOCS_PATHS:
            await self._docs(scope, receive, send, harden)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                harden(message)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _docs(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        harden: Callable[[Message], MutableHeaders],
    ) -> None:
        start: Message | None = None
        body = bytearray()
        flushed = False

        async def buffer(message: Message) -> None:
            nonlocal start, flushed
            if flushed:
                await send(message)
                return
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            body.extend(message.get("body", b""))
            more = bool(message.get("more_body", False))
            if more and len(body) <= _DOCS_BODY_MAX:
                return
            headers = harden(start)
            headers["content-security-policy"] = docs_policy(bytes(body))
            flushed = True
            await send(start)
            await send({"type": "http.response.body", "body": bytes(body), "more_body": more})

        await self.app(scope, receive, buffer)


# --------------------------------------------------------------------------------------------
# Request body bound

MAX_BODY_BYTES: Final = 64 * 1024
"""Largest request body (the largest legitimate one, a 1024-character password, is ~4 KiB)."""
LARGE_BODIES: Final = {("POST", "/api/models"): (8 << 20) + (64 << 10)}
"""The requests allowed a larger body: a model upload (a tileset zip of up to 8 MiB, plus the
form's other fields)."""


class BodyLimitMiddleware:
    """413 for a request body larger than ``max_bytes``, before anything reads or parses it.

    A declared ``Content-Length`` is checked up front (the server enforces the framing); a
    chunked body is read here, counted, and replayed to the app, so no handler ever holds more
    than ``max_bytes`` of it.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        limit = LARGE_BODIES.get((scope["method"], scope["path"]), self.max_bytes)
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit() or int(length) > limit:
                await _too_large(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        if "chunked" not in headers.get("transfer-encoding", "").lower():
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body: bytes = message.get("body", b"")
            size += len(body)
            if size > limit:
                await _too_large(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    response = JSONResponse(
        {"detail": "request body too large"},
        status_code=status.HTTP_413_CONTENT_TOO_LARGE,
        headers={"Connection": "close"},
    )
    await response(scope, receive, send)


# --------------------------------------------------------------------------------------------
# Installation


def install_security(app: FastAPI, allowed_origins: Iterable[str] = ()) -> None:
    """Add the request checks (body bound, cross-site check) to ``app``.

    Call it *before* adding the request-logging middleware, so refused requests are logged and
    counted like any other; then :func:`install_security_headers` after it, outermost, so every
    response carries the headers (a last-resort 500 included). The lifespan adds the services
    (:func:`security_lifespan`).
    """
    app.add_middleware(OriginCheckMiddleware, allowed_origins=tuple(allowed_origins))
    app.add_middleware(BodyLimitMiddleware)


def install_security_headers(app: FastAPI) -> None:
    """Add :class:`SecurityHeadersMiddleware` (call it last: it must be the outermost)."""
    app.add_middleware(SecurityHeadersMiddleware)
