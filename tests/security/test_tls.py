"""``worldgen serve --ssl-certfile --ssl-keyfile``: HTTPS and WSS with a throw-away certificate
authority (``trustme``), a real subprocess and a real Valkey: Secure ``__Host-`` cookies, HSTS,
the WebSocket over TLS, its origin check, and logout closing it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import ValkeyHandle
from tests.security.conftest import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
Json = dict[str, Any]
START_TIMEOUT_S = 90.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class TlsServer:
    url: str
    ws: str
    ca: trustme.CA
    proc: subprocess.Popen[bytes]
    log: Path

    def log_tail(self) -> str:
        """The end of the server's stderr (what a failed assertion shows)."""
        return self.log.read_text(errors="replace")[-3000:]

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


@pytest.fixture
def tls_server(tmp_path: Path, valkey_server: Callable[[], ValkeyHandle]) -> Iterator[TlsServer]:
    valkey = valkey_server()
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    port = _free_port()
    env = dict(os.environ)
    env.update(
        {
            "REDIS_URL": valkey.url,
            "WORLDGEN_WARM_UP": "false",
            "WORLDGEN_WARM_MODELS": "[]",
            "WORLDGEN_LOG_LEVEL": "warning",
            "NUMBA_CACHE_DIR": str(ROOT / ".cache" / "numba"),
        }
    )
    command = [str(Path(sys.executable).with_name("worldgen")), "serve", "--port", str(port)]
    command += ["--workers", "1", "--data-dir", str(tmp_path / "data")]
    command += ["--ssl-certfile", str(certfile), "--ssl-keyfile", str(keyfile)]
    out, err = tmp_path / "serve.out", tmp_path / "serve.err"
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(command, stdout=o, stderr=e, env=env, cwd=tmp_path)
    server = TlsServer(f"https://127.0.0.1:{port}", f"wss://127.0.0.1:{port}", ca, proc, err)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while "serving" not in out.read_text():
            assert proc.poll() is None, err.read_text()[-3000:]
            assert time.monotonic() < deadline, err.read_text()[-3000:]
            time.sleep(0.1)
        assert f"serving {server.url}" in out.read_text()
        yield server
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.standalone_only("its own worldgen serve (tests/cluster_mode serves on the cluster)")
def test_https_and_wss_with_secure_cookies_and_hsts(tls_server: TlsServer) -> None:
    context = tls_server.ssl_context()
    origin = {"origin": tls_server.url}
    with httpx.Client(base_url=tls_server.url, verify=context, timeout=60) as client:
        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.headers["strict-transport-security"].startswith("max-age=")
        registered = client.post(
            "/api/auth/register",
            json={"username": "tls-anna", "password": PASSWORD},
            headers=origin,
        )
        assert registered.status_code == 201, registered.text
        cookie = registered.headers["set-cookie"]
        assert cookie.startswith("__Host-wg_session=")
        for flag in ("Secure", "HttpOnly", "SameSite=lax", "Path=/"):
            assert flag in cookie
        assert "Domain" not in cookie
        token = client.cookies["__Host-wg_session"]
        assert client.get("/api/auth/me").status_code == 200
        world = client.post(
            "/api/worlds",
            json={"name": "Secret", "tileset": "terrain", "visibility": "private"},
            headers=origin,
        )
        assert world.status_code == 201, world.text
        world_id = world.json()["id"]

    # plain HTTP to the TLS port gets nowhere
    with pytest.raises(httpx.HTTPError):
        httpx.get(tls_server.url.replace("https", "http") + "/healthz", timeout=5)
    # the certificate is checked: without our CA the handshake fails
    with pytest.raises(httpx.ConnectError):
        httpx.get(tls_server.url + "/healthz", timeout=5)

    asyncio.run(asyncio.wait_for(_wss(tls_server, context, token, world_id), 60))


async def until_closed(ws: ClientConnection, timeout: float) -> tuple[list[Json], int | None]:
    """Every frame until the server closes the socket, and the close code it sent."""
    frames: list[Json] = []
    try:
        while True:
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), timeout)))
    except ConnectionClosed as closed:
        return frames, closed.rcvd.code if closed.rcvd is not None else None


async def _wss(server: TlsServer, context: ssl.SSLContext, token: str, world_id: str) -> None:
    url = f"{server.ws}/ws/worlds/{world_id}"
    cookie = {"Cookie": f"__Host-wg_session={token}"}
    # a foreign origin is refused at the handshake
    with pytest.raises(InvalidStatus) as refused:
        await connect(
            url, ssl=context, additional_headers={**cookie, "Origin": "https://evil.example"}
        )
    assert refused.value.response.status_code == 403
    # anonymous: the private world does not exist
    anon = await connect(url, ssl=context, additional_headers={"Origin": server.url})
    await anon.send(json.dumps({"type": "hello"}))
    frames, code = await until_closed(anon, 5)
    assert [f.get("code") for f in frames] == ["not_found"]
    assert code == 4404
    # the member chats over WSS
    ws = await connect(url, ssl=context, additional_headers={**cookie, "Origin": server.url})
    await ws.send(json.dumps({"type": "hello"}))
    welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
    while welcome["type"] != "welcome":
        assert welcome["type"] != "error", (welcome, server.log_tail())
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert welcome["you"]["name"] == "tls-anna"
    assert welcome["you"]["guest"] is False
    await ws.send(json.dumps({"type": "chat", "id": "m1", "text": "hello over TLS"}))
    while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "ack":
        pass
    # logout (over HTTPS) closes the socket within a second
    async with httpx.AsyncClient(base_url=server.url, verify=context) as client:
        client.cookies.set("__Host-wg_session", token)
        started = time.monotonic()
        response = await client.post("/api/auth/logout", headers={"origin": server.url})
        assert response.status_code == 204
    _, code = await until_closed(ws, 2)
    assert code == 4401
    assert time.monotonic() - started < 1.0
