"""The app's embedded Valkey is supervised: a killed server comes back, /healthz tells when not."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from tests.web.conftest import ClientFactory
from worldgen.store import embedded as embedded_module
from worldgen.store.embedded import EmbeddedValkey

pytestmark = pytest.mark.anyio


async def _eventually(check: object, timeout: float = 20.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if callable(check) and await check():
            return True
        await asyncio.sleep(0.1)
    return False


async def test_a_killed_embedded_valkey_is_restarted_and_the_api_recovers(
    make_client: ClientFactory,
) -> None:
    client = await make_client(redis_url=None)
    server = client.app.state.embedded
    assert isinstance(server, EmbeddedValkey)
    made = await client.post("/api/worlds", json={"name": "Kept", "tileset": "terrain", "seed": 1})
    assert made.status_code == 201, made.text
    await asyncio.sleep(1.2)  # past one appendfsync everysec tick
    pid = server.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)

    async def listed() -> bool:
        got = await client.get(f"/api/worlds/{made.json()['id']}")
        return got.status_code == 200 and got.json()["name"] == "Kept"

    async def counted() -> bool:  # the supervisor counts a restart once it answers PING
        return server.restarts == 1

    assert await _eventually(listed)
    assert await _eventually(counted)
    assert (await client.get("/healthz")).status_code == 200


async def test_healthz_fails_when_the_embedded_valkey_cannot_come_back(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded_module, "MAX_RESTARTS", 0)
    client = await make_client(redis_url=None)
    server = client.app.state.embedded
    assert (await client.get("/healthz")).status_code == 200
    pid = server.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)

    async def unhealthy() -> bool:
        return (await client.get("/healthz")).status_code == 503

    assert await _eventually(unhealthy)
    assert (await client.get("/readyz")).status_code == 503
