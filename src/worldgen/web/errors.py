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
from typing import Any, Final

import structlog
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

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
    "document_errors",
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
    if exc.status_code == 405:
        exc.headers = {**(exc.headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    return await http_exception_handler(request, exc)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path (Starlette's own 405 names only the
    methods of the first route whose path matched, not of all routes on that path), found by
    asking each route whether it fully matches the request with that method."""
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


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
    """Register every mapping of the table above on ``app``, and list the answers in its
    OpenAPI document (:func:`document_errors`)."""
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    for cls in _HANDLED:
        app.add_exception_handler(cls, _on_domain)
    app.add_exception_handler(StorageError, _on_storage)
    document_errors(app)


_ERROR_BODY: Final = {
    "application/json": {
        "schema": {
            "type": "object",
            "properties": {"detail": {"description": "What went wrong, for people."}},
            "required": ["detail"],
        }
    }
}
_RETRY_AFTER: Final = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer"},
    }
}
_ERRORS: Final = {
    "400": "Malformed request (e.g. a body that is not UTF-8 or not JSON).",
    "401": "Sign-in required.",
    "403": "Not allowed (a role too low, or a cross-site request).",
    "404": "No such resource (a private world you cannot see is reported like a missing one).",
    "413": "Request body too large.",
    "429": "Too many requests (a rate limit or a per-client bound); see Retry-After.",
    "503": "Storage or capacity unavailable for a moment; see Retry-After.",
}
_UNSAFE: Final = frozenset({"post", "put", "patch", "delete"})
_METHODS: Final = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def _error_codes(method: str, path: str, operation: dict[str, Any]) -> list[str]:
    codes = ["400", "429", "503"]
    if "{" in path:
        codes.append("404")
    if path.startswith("/api/") or method in _UNSAFE:
        codes += ["401", "403"]
    if "requestBody" in operation or method in _UNSAFE:
        codes.append("413")
    return codes


def document_errors(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI document list the error answers its routes give (beyond the 422
    FastAPI documents): 400, 429 and 503 everywhere, 404 where the path names a resource, 401
    and 403 on the API and on every write, 413 where a body is read. Each keeps what a route
    documents itself."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for path, item in schema.get("paths", {}).items():
            for method, operation in item.items():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                responses = operation["responses"]
                for code in _error_codes(method, path, operation):
                    if code not in responses:
                        answer: dict[str, Any] = {
                            "description": _ERRORS[code],
                            "content": _ERROR_BODY,
                        }
                        if code in ("429", "503"):
                            answer["headers"] = _RETRY_AFTER
                        responses[code] = answer
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
