"""Structured logs (structlog, JSON by default) and the request middleware.

One log line per HTTP request: ``request_id``, ``method``, ``route`` (the template, e.g.
``/tiles/{world_id}/{z}/{x}/{y}.png``), ``path``, ``status``, ``duration_ms``. The request id
comes from a well-formed ``X-Request-ID`` header or is generated, is bound to every log line
written while the request runs, and is echoed in the response's ``X-Request-ID``.

What is never logged: query strings (they may carry tokens), headers, cookies, request bodies,
passwords; a last processor masks any such key that a future caller might pass by mistake.

The middleware also records ``worldgen_http_request_duration_seconds`` and turns an exception
nothing else handled into the generic 500 of :mod:`worldgen.web.errors` (logged with its
traceback), so a bug never reaches the server as an unhandled exception.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worldgen.settings import LogLevel
from worldgen.web.errors import internal_error_response
from worldgen.web.metrics import Metrics

__all__ = ["REQUEST_ID_HEADER", "RequestMiddleware", "configure_logging", "stdlib_handler"]

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_SECRET_KEYS = frozenset({"password", "cookie", "cookies", "authorization", "token", "secret"})
_UNMATCHED = "<unmatched>"

_log = structlog.get_logger("worldgen.web")


def _mask_secrets(
    _logger: object, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in _SECRET_KEYS.intersection(event):
        event[key] = "***"
    return event


class _StderrLogger(structlog.PrintLogger):
    """Writes to whatever ``sys.stderr`` is *now* (test runners swap it between tests)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _mask_secrets,
    ]


def _renderer(json: bool) -> Any:
    return structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()


def configure_logging(level: LogLevel = "info", *, json: bool = True) -> None:
    """Set up structlog for the process (idempotent; the last call wins)."""
    # Tracebacks without local variables: locals may hold request bodies, tokens, passwords.
    tracebacks: Any = (
        structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        )
        if json
        else structlog.processors.format_exc_info
    )
    level_number = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[*_shared_processors(), tracebacks, _renderer(json)],
        wrapper_class=structlog.make_filtering_bound_logger(level_number),
        logger_factory=lambda *_: _StderrLogger(),
        cache_logger_on_first_use=False,
    )


def stdlib_handler(stream: TextIO, *, json: bool = True) -> logging.Handler:
    """A stdlib handler that renders records (uvicorn's, asyncio's) like structlog's lines."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_shared_processors(),
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _renderer(json),
            ],
        )
    )
    return handler


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = bytes(value).decode("latin-1")
            if _REQUEST_ID_RE.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


def _route_template(scope: Scope) -> str:
    path: object = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    return _UNMATCHED


class RequestMiddleware:
    """Pure ASGI middleware: request id, access log, latency histogram, last-resort 500."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = int(message["status"])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        t0 = time.perf_counter()
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                self.metrics.errors.labels(kind="internal").inc()
                _log.exception("unhandled error", method=scope["method"], path=scope["path"])
                if started:  # too late for a 500: the client sees a cut-off response
                    raise
                await internal_error_response()(scope, receive, send_with_id)
            finally:
                elapsed = time.perf_counter() - t0
                route = _route_template(scope)
                self.metrics.request_duration.labels(route=route, method=scope["method"]).observe(
                    elapsed
                )
                _log.info(
                    "request",
                    method=scope["method"],
                    route=route,
                    path=scope["path"],
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                )
