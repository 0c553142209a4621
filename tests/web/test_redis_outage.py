"""Redis killed while requests flow: 503s with Retry-After, then recovery, and no lost world."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import ValkeyHandle
from tests.web.conftest import ClientFactory, WebClient, metric

pytestmark = pytest.mark.anyio

RECOVERY_TIMEOUT_S = 20.0
HAMMER_STOP_TIMEOUT_S = 10.0


async def hammer(
    client: WebClient, paths: list[str], log: list[tuple[float, int]], stop: asyncio.Event
) -> None:
    """Request ``paths`` round-robin until ``stop`` is set, logging (time, status).

    Stopped by a flag rather than by cancellation: a cancellation delivered inside redis-py
    during an outage can be swallowed on Python 3.11, which would hang the test's teardown.
    """
    i = 0
    while not stop.is_set():
        response = await client.get(paths[i % len(paths)])
        log.append((time.monotonic(), response.status_code))
        if response.status_code == 503:
            assert response.json() == {"detail": "storage unavailable, retry"}
            assert int(response.headers["retry-after"]) >= 1
        i += 1
        await asyncio.sleep(0.01)


async def wait_for(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_kill_restart_recovers_without_losing_worlds(
    make_client: ClientFactory, valkey_server: Callable[[], ValkeyHandle]
) -> None:
    server = valkey_server()
    client = await make_client(redis_url=server.url, memory_tile_cache=0)
    created = await client.post("/api/worlds", json={"name": "Durable", "tileset": "terrain"})
    assert created.status_code == 201
    world: dict[str, Any] = created.json()
    wid = world["id"]
    tile = await client.get(f"/tiles/{wid}/0/0/0.png")
    paths = [
        f"/api/worlds/{wid}",
        f"/tiles/{wid}/0/0/0.png",
        f"/api/worlds/{wid}/region?x=0&y=0&w=2&h=2",
    ]

    log: list[tuple[float, int]] = []
    stop = asyncio.Event()
    task = asyncio.ensure_future(hammer(client, paths, log, stop))
    try:
        await wait_for(lambda: len(log) >= 5, 10)
        server.kill()
        killed_at = time.monotonic()
        await wait_for(lambda: sum(s == 503 for _, s in log) >= 3, 10)
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["redis"] == "unavailable"

        await asyncio.to_thread(server.restart)
        restarted_at = time.monotonic()
        await wait_for(
            lambda: sum(s == 200 for t, s in log if t > restarted_at) >= 6, RECOVERY_TIMEOUT_S
        )
    finally:
        stop.set()
        done, _ = await asyncio.wait({task}, timeout=HAMMER_STOP_TIMEOUT_S)
        if not done:
            task.cancel()
    assert done, "the request loop did not stop within its bound"
    task.result()  # re-raise an assertion failure from inside the loop

    assert {s for _, s in log} == {200, 503}, "only answers or 503s, never a 500"
    assert all(s == 200 for t, s in log if t < killed_at)
    assert metric(client, "worldgen_errors_total", kind="storage") >= 3
    assert (await client.get("/readyz")).status_code == 200
    assert (await client.get(f"/api/worlds/{wid}")).json() == world  # nothing lost
    again = await client.get(f"/tiles/{wid}/0/0/0.png")
    assert again.content == tile.content
    after = await client.post("/api/worlds", json={"name": "After", "tileset": "pipes"})
    assert after.status_code == 201


async def test_app_starts_while_redis_is_down_and_recovers(
    make_client: ClientFactory, valkey_server: Callable[[], ValkeyHandle]
) -> None:
    server = valkey_server()
    server.stop()
    client = await make_client(redis_url=server.url)
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code == 503
    response = await client.get("/api/worlds")
    assert response.status_code == 503
    await asyncio.to_thread(server.restart)
    for _ in range(100):
        if (await client.get("/readyz")).status_code == 200:
            break
        await asyncio.sleep(0.05)
    assert (await client.get("/api/worlds")).json() == {"worlds": []}
