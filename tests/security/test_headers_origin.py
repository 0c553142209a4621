"""Security headers on every response, HSTS under TLS only, and the cross-site checks of unsafe
methods (``Origin``, else ``Sec-Fetch-Site``)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.security.conftest import PASSWORD, ClientFactory, SecClient
from worldgen.errors import CLOSE_POLICY
from worldgen.web.hardening import (
    CONTENT_SECURITY_POLICY,
    MAX_BODY_BYTES,
    OriginCheckMiddleware,
    normalize_origin,
)

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.standalone_only(
        "HTTP headers and settings: nothing here depends on the kind of Redis"
    ),
]

TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "worldgen" / "web" / "templates"


def assert_hardened(response: httpx.Response) -> None:
    h = response.headers
    csp = h["content-security-policy"]
    assert csp == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "same-origin"
    assert h["x-frame-options"] == "DENY"


async def test_security_headers_on_pages_api_errors_and_static(client: SecClient) -> None:
    for path in ("/", "/api/auth/me", "/healthz", "/api/worlds/nosuchworld1", "/nope", "/worlds/x"):
        response = await client.get(path)
        assert_hardened(response)
        assert "strict-transport-security" not in response.headers  # plain HTTP


async def test_hsts_under_tls(make_client: ClientFactory) -> None:
    client = await make_client()
    tls = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=client.app), base_url="https://testserver"
    )
    async with tls:
        response = await tls.get("/healthz")
        assert response.headers["strict-transport-security"].startswith("max-age=")
        assert_hardened(response)
        registered = await tls.post(
            "/api/auth/register",
            json={"username": "tls-user", "password": PASSWORD},
            headers={"origin": "https://testserver"},
        )
        assert registered.status_code == 201
        cookie = registered.headers["set-cookie"]
        assert cookie.startswith("__Host-wg_session=")
        assert "Secure" in cookie
        assert "HttpOnly" in cookie
        assert (await tls.get("/api/auth/me")).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/auth/register"),
        ("POST", "/api/auth/login"),
        ("POST", "/api/auth/logout"),
        ("POST", "/api/worlds"),
        ("PATCH", "/api/worlds/abcdefgh1234"),
        ("DELETE", "/api/worlds/abcdefgh1234"),
        ("PUT", "/api/worlds/abcdefgh1234"),
    ],
)
@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "http://evil.example"},
        {"origin": "null"},
        {"origin": "http://testserver:8080"},
        {"origin": "https://testserver"},
        {"origin": "http://testserver.evil.example"},
        {"origin": "not a url"},
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
    ],
)
async def test_foreign_origins_are_refused_on_unsafe_methods(
    client: SecClient, method: str, path: str, headers: dict[str, str]
) -> None:
    response = await client.request(method, path, headers=headers, json={})
    assert response.status_code == 403
    assert response.json() == {"detail": "cross-origin request refused"}
    assert_hardened(response)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"origin": "http://testserver"},
        {"origin": "HTTP://TESTSERVER:80"},
        {"sec-fetch-site": "same-origin"},
        {"sec-fetch-site": "none"},
        {"origin": "http://testserver", "sec-fetch-site": "same-origin"},
    ],
)
async def test_same_origin_and_non_browser_requests_pass(
    client: SecClient, headers: dict[str, str]
) -> None:
    response = await client.post(
        "/api/auth/login", json={"username": "nobody", "password": "x"}, headers=headers
    )
    assert response.status_code == 401


async def test_safe_methods_are_not_checked(client: SecClient) -> None:
    response = await client.get("/api/auth/me", headers={"origin": "http://evil.example"})
    assert response.status_code == 401


async def test_configured_origins_are_allowed(make_client: ClientFactory) -> None:
    client = await make_client(allowed_origins=["https://maps.example.org"])
    ok = await client.post(
        "/api/auth/login",
        json={"username": "nobody", "password": "x"},
        headers={"origin": "https://maps.example.org"},
    )
    assert ok.status_code == 401
    refused = await client.post(
        "/api/auth/login",
        json={"username": "nobody", "password": "x"},
        headers={"origin": "https://other.example.org"},
    )
    assert refused.status_code == 403


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("http://a.example", "http://a.example"),
        ("HTTPS://A.Example:443", "https://a.example"),
        ("http://a.example:80/", "http://a.example"),
        ("http://a.example:8080", "http://a.example:8080"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("null", None),
        ("ftp://a.example", None),
        ("http://user@a.example", None),
        ("http://a.example/path", None),
        ("http://a.example:99999", None),
        ("", None),
    ],
)
def test_origin_normalisation(raw: str, normal: str | None) -> None:
    assert normalize_origin(raw) == normal


def _origin_probe() -> OriginCheckMiddleware:
    """The app's one cross-site check around a tiny app: POST answers 200, a socket is accepted."""

    async def write(_: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close()

    inner = Starlette(routes=[Route("/", write, methods=["POST"]), WebSocketRoute("/ws", socket)])
    return OriginCheckMiddleware(inner, allowed_origins=("https://maps.example.org:8443",))


@pytest.mark.parametrize(
    ("base", "host", "origin", "allowed"),
    [
        ("http://x", "example.org", "http://example.org", True),
        ("http://x", "example.org:80", "http://example.org", True),  # default port on Host
        ("http://x", "example.org", "http://example.org:80", True),  # ... or on Origin
        ("http://x", "EXAMPLE.org", "http://example.ORG", True),  # case
        ("http://x", "example.org:8080", "http://example.org:8080", True),
        ("http://x", "example.org:8080", "http://example.org", False),  # another port
        ("http://x", "example.org", "https://example.org", False),  # another scheme
        ("https://x", "example.org:443", "https://example.org", True),
        ("https://x", "example.org", "https://example.org:443", True),
        ("https://x", "example.org", "http://example.org", False),
        ("http://x", "[::1]:8000", "http://[::1]:8000", True),  # IPv6
        ("http://x", "[::1]", "http://[::1]:80", True),
        ("http://x", "[::1]:8000", "http://[::2]:8000", False),
        ("http://x", "example.org", "https://MAPS.example.org:8443", True),  # allowed_origins
        ("http://x", "example.org", "https://maps.example.org", False),
        ("http://x", "example.org", "http://example.org.evil.example", False),
        ("http://x", "example.org", "null", False),
    ],
)
def test_websocket_handshakes_and_unsafe_requests_get_the_same_answer(
    base: str, host: str, origin: str, allowed: bool
) -> None:
    headers = {"host": host, "origin": origin}
    with TestClient(_origin_probe(), base_url=base) as http:
        post = http.post("/", headers=headers)
        assert post.status_code == (200 if allowed else 403)
        ws_base = base.replace("http", "ws", 1)
        if allowed:
            with http.websocket_connect(f"{ws_base}/ws", headers=headers):
                pass
        else:
            with (
                pytest.raises(WebSocketDisconnect) as refused,
                http.websocket_connect(f"{ws_base}/ws", headers=headers),
            ):
                pass
            assert refused.value.code == CLOSE_POLICY


def test_templates_have_no_inline_script_or_handlers() -> None:
    """The CSP forbids inline script; the templates must not need any. JSON data blocks are not
    script (never executed) and must be filled by ``|tojson``, which escapes ``<``, ``>``, ``&``."""
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        for tag, body in re.findall(
            r"(<script\b[^>]*>)(.*?)</script>", text, flags=re.IGNORECASE | re.DOTALL
        ):
            if 'type="application/json"' in tag:
                assert re.fullmatch(r"\s*\{\{[^}]*\|\s*tojson\s*\}\}\s*", body), template.name
                continue
            assert "src=" in tag, f"inline <script> in {template.name}: {tag}"
            assert not body.strip(), template.name
        assert not re.search(r"\son[a-z]+\s*=", text, flags=re.IGNORECASE), template.name
        assert "javascript:" not in text.lower(), template.name
        assert "|safe" not in text.replace(" ", ""), template.name


async def test_request_bodies_are_bounded(client: SecClient) -> None:
    limit = MAX_BODY_BYTES
    at_limit = b'{"username": "' + b"a" * (limit - 16) + b'"}'
    assert len(at_limit) == limit
    response = await client.post(
        "/api/auth/register", content=at_limit, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422  # parsed and refused by the model, not by size
    over = await client.post(
        "/api/auth/register", content=at_limit + b" ", headers={"content-type": "application/json"}
    )
    assert over.status_code == 413
    assert over.json() == {"detail": "request body too large"}
    assert_hardened(over)

    async def chunks(total: int) -> AsyncIterator[bytes]:
        sent = 0
        while sent < total:
            piece = min(4096, total - sent)
            sent += piece
            yield b" " * piece

    chunked = await client.post(
        "/api/auth/login", content=chunks(limit + 1), headers={"content-type": "application/json"}
    )
    assert chunked.status_code == 413
    small = await client.post(
        "/api/auth/login", content=chunks(100), headers={"content-type": "application/json"}
    )
    assert small.status_code == 422
