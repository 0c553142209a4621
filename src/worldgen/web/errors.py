"""Errors → HTTP responses, decided here and nowhere else.

Domain errors carry their own status (see the tree in :mod:`worldgen.errors`); this module adds
what lies outside that tree:

=========================================  ======  ================================================
raised                                     status  body ``{"detail": ...}``
=========================================  ======  ================================================
``RequestValidationError``                 422     FastAPI's list of errors (bad fields, malformed
                                                   JSON, out-of-range path or query values)
:class:`~worldgen.errors.WorldgenError`    its     its message below 500; the class's generic
                                           status  message for 503 (+ ``Retry-After``); 429 gets
                                                   ``Retry-After`` from the error
``store.client.StorageError`` (Redis)      503     ``"storage unavailable, retry"``, ``Retry-After``
``HTTPException``                          as is   its detail
anything else                              500     ``"internal server error"`` (the middleware
                                                   logs it)
=========================================  ======  ================================================

Bad input never yields a 500: every request field is bounded by a pydantic model, and whatever
the world layer still refuses arrives as an ``InputError``. 5xx bodies are generic and leak no
internals; the log line carries the request id that ties the two together. Each mapped error
increments ``worldgen_errors_total{kind=...}``.
"""

from __future__ import annotations

import json
from typing import Final

import structlog
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from worldgen.errors import (
    ConflictError,
    ForbiddenError,
    GeneratorUnavailableError,
    InputError,
    NotFoundError,
    RateLimitedError,
    SignInRequiredError,
    StorageUnavailableError,
    UnavailableError,
    WorldgenError,
)
from worldgen.store.client import StorageError
from worldgen.web.metrics import Metrics

__all__ = [
    "RETRY_AFTER_S",
    "error_response",
    "install_error_handlers",
    "internal_error_response",
    "invalid",
]

RETRY_AFTER_S = 1
"""Seconds a client should wait before retrying a 503 (Redis restarts take about that long)."""

_HANDLED: Final[tuple[type[WorldgenError], ...]] = (
    InputError,
    SignInRequiredError,
    ForbiddenError,
    NotFoundError,
    ConflictError,
    RateLimitedError,
    UnavailableError,
)
"""The domain errors answered from their class attributes; any other (``SolveError``, a bug's
``WorldgenError``) is a generic 500 logged with its traceback by the request middleware."""

_KINDS: Final[dict[type[WorldgenError], str]] = {
    InputError: "input",
    NotFoundError: "not_found",
    StorageUnavailableError: "storage",
    GeneratorUnavailableError: "generator",
}
"""``worldgen_errors_total`` kinds of the classes whose kind is not their ``code``."""

_log = structlog.get_logger("worldgen.web")


def _count(request: Request, kind: str) -> None:
    metrics = getattr(request.app.state, "metrics", None)
    if isinstance(metrics, Metrics):
        metrics.errors.labels(kind=kind).inc()


def _kind(exc: WorldgenError) -> str:
    for cls in type(exc).__mro__:
        kind = _KINDS.get(cls)
        if kind is not None:
            return kind
    return exc.code


def error_response(exc: WorldgenError) -> JSONResponse:
    """The response of a domain error: its status, its message (or, from 500 on, the class's
    generic one), ``Retry-After`` where a retry makes sense."""
    headers: dict[str, str] = {}
    detail = exc.message
    if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    if exc.status >= 500:
        detail = type(exc).default_message or "internal server error"
        if isinstance(exc, UnavailableError):
            headers["Retry-After"] = str(RETRY_AFTER_S)
    return JSONResponse({"detail": detail}, status_code=exc.status, headers=headers)


def invalid(loc: tuple[str | int, ...], message: str, value: object) -> RequestValidationError:
    """A 422 in FastAPI's shape for a check no pydantic model can express (e.g. a catalog)."""
    return RequestValidationError(
        [{"type": "value_error", "loc": loc, "msg": message, "input": value}]
    )


def internal_error_response() -> JSONResponse:
    """The generic 500 (the middleware sends it; the traceback goes to the log only)."""
    return JSONResponse({"detail": "internal server error"}, status_code=500)


class _AsciiJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped: an echoed input may hold lone surrogates ("\\ud800" is
    valid JSON but cannot be encoded as UTF-8), and a bad input must never become a 500."""

    def render(self, content: object) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


async def _on_validation(request: Request, exc: Exception) -> Response:
    _count(request, "validation")
    assert isinstance(exc, RequestValidationError)  # noqa: S101  registered for this class only
    return _AsciiJSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101  registered for this class only
    _count(request, "not_found" if exc.status_code == 404 else f"http_{exc.status_code}")
    return await http_exception_handler(request, exc)


async def _on_domain(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WorldgenError)  # noqa: S101  registered for this class only
    _count(request, _kind(exc))
    if exc.status >= 500:
        _log.warning(exc.default_message or "error", message=exc.message[:200])
    return error_response(exc)


async def _on_storage(request: Request, exc: Exception) -> Response:
    _log.warning("storage unavailable", error=type(exc).__name__, message=str(exc)[:200])
    _count(request, "storage")
    return error_response(StorageUnavailableError())


def install_error_handlers(app: FastAPI) -> None:
    """Register every mapping of the table above on ``app``."""
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    for cls in _HANDLED:
        app.add_exception_handler(cls, _on_domain)
    app.add_exception_handler(StorageError, _on_storage)
