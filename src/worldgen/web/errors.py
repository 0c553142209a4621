"""Domain errors → HTTP responses, decided here and nowhere else.

======================================  ======  ====================================================
raised                                  status  body ``{"detail": ...}``
======================================  ======  ====================================================
``RequestValidationError``              422     FastAPI's list of errors (bad fields, malformed
                                                JSON, out-of-range path or query values)
:class:`~worldgen.errors.InputError`    400     its message (written for the user)
:class:`WorldNotFoundError`             404     ``"world not found"``
``HTTPException``                       as is   its detail
``redis.exceptions.RedisError``         503     ``"storage unavailable, retry"`` + ``Retry-After``
:class:`GeneratorUnavailableError`      503     ``"map generation unavailable, retry"`` + ditto
anything else                           500     ``"internal server error"`` (the middleware logs it)
======================================  ======  ====================================================

Bad input never yields a 500: every request field is bounded by a pydantic model, and whatever
the world layer still refuses arrives as an ``InputError``. 5xx bodies are generic and leak no
internals; the log line carries the request id that ties the two together. Each mapped error
increments ``worldgen_errors_total{kind=...}``.
"""

from __future__ import annotations

import json

import structlog
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from worldgen.errors import InputError
from worldgen.web.metrics import Metrics

__all__ = [
    "RETRY_AFTER_S",
    "GeneratorUnavailableError",
    "WorldNotFoundError",
    "install_error_handlers",
    "internal_error_response",
    "invalid",
]

RETRY_AFTER_S = 1
"""Seconds a client should wait before retrying a 503 (Redis restarts take about that long)."""

_log = structlog.get_logger("worldgen.web")


class WorldNotFoundError(LookupError):
    """No world has this id (or the id is not one worldgen would issue)."""


class GeneratorUnavailableError(RuntimeError):
    """The generation pool is broken, shutting down, or took longer than its time limit."""


def _count(request: Request, kind: str) -> None:
    metrics = getattr(request.app.state, "metrics", None)
    if isinstance(metrics, Metrics):
        metrics.errors.labels(kind=kind).inc()


def _unavailable(detail: str) -> JSONResponse:
    return JSONResponse(
        {"detail": detail}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)}
    )


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
    assert isinstance(exc, RequestValidationError)
    return _AsciiJSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    _count(request, "not_found" if exc.status_code == 404 else f"http_{exc.status_code}")
    return await http_exception_handler(request, exc)


async def _on_input(request: Request, exc: Exception) -> Response:
    _count(request, "input")
    return JSONResponse({"detail": str(exc)}, status_code=400)


async def _on_not_found(request: Request, exc: Exception) -> Response:
    _count(request, "not_found")
    return JSONResponse({"detail": "world not found"}, status_code=404)


async def _on_redis(request: Request, exc: Exception) -> Response:
    _count(request, "storage")
    _log.warning("storage unavailable", error=type(exc).__name__, message=str(exc)[:200])
    return _unavailable("storage unavailable, retry")


async def _on_generator(request: Request, exc: Exception) -> Response:
    _count(request, "generator")
    _log.warning("generator unavailable", message=str(exc)[:200])
    return _unavailable("map generation unavailable, retry")


def install_error_handlers(app: FastAPI) -> None:
    """Register every mapping of the table above on ``app``."""
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(InputError, _on_input)
    app.add_exception_handler(WorldNotFoundError, _on_not_found)
    app.add_exception_handler(RedisError, _on_redis)
    app.add_exception_handler(GeneratorUnavailableError, _on_generator)
