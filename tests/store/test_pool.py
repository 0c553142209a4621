"""The Redis connection pool waits (boundedly) for a free connection instead of refusing.

Issue 13: with a 64-connection pool that refused when exhausted, 256 concurrent tile requests got
503s and 200 simultaneous signed-in WebSocket handshakes got 403s while Redis was healthy.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from tests.harness import app_settings
from tests.web.conftest import ClientFactory
from worldgen.settings import Settings
from worldgen.store.client import StorageError, Store, connect

pytestmark = pytest.mark.anyio


async def test_a_burst_larger_than_the_pool_waits_instead_of_failing(shared_valkey: str) -> None:
    redis = connect(shared_valkey, max_connections=2, pool_timeout_s=5.0)
    try:
        # each BLPOP on an empty list holds its connection for 20 ms: 40 at once queue behind 2
        key = f"pool-test-{uuid.uuid4().hex}"
        results = await asyncio.gather(*(redis.blpop([key], timeout=0.02) for _ in range(40)))
        assert len(results) == 40
        assert len(redis.connection_pool._in_use_connections) == 0
    finally:
        await redis.aclose()


async def test_the_wait_for_a_connection_is_bounded(shared_valkey: str) -> None:
    redis = connect(shared_valkey, max_connections=2, pool_timeout_s=0.2)
    try:
        held = [await redis.connection_pool.get_connection() for _ in range(2)]  # type: ignore[no-untyped-call]
        started = time.monotonic()
        with pytest.raises(StorageError, match="No connection available"):
            await redis.ping()
        assert time.monotonic() - started < 3.0  # bounded (0.2 s plus scheduling)
        for connection in held:
            await redis.connection_pool.release(connection)
        assert await redis.ping()
    finally:
        await redis.aclose()


def test_pool_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLDGEN_REDIS_POOL_SIZE", "7")
    monkeypatch.setenv("WORLDGEN_REDIS_POOL_TIMEOUT_S", "1.5")
    settings = Settings()
    assert (settings.redis_pool_size, settings.redis_pool_timeout_s) == (7, 1.5)
    for bad in ({"redis_pool_size": 1}, {"redis_pool_timeout_s": 0}):
        with pytest.raises(ValueError, match="redis_pool"):
            Settings(**bad)  # type: ignore[arg-type]


async def test_store_uses_the_pool_size_of_its_settings(shared_valkey: str, tmp_path: Path) -> None:
    settings = app_settings(shared_valkey, tmp_path, redis_pool_size=3, redis_pool_timeout_s=2.0)
    store = Store.open(shared_valkey, settings)
    try:
        pool = store._redis.connection_pool
        assert (pool.max_connections, pool.timeout) == (3, 2.0)  # type: ignore[attr-defined]
        assert await store.ping(5.0)
    finally:
        await store.aclose()


@pytest.mark.standalone_only(
    "the waiting pool is the standalone client's; a cluster's pool is per node and does not queue"
)
async def test_an_app_with_a_tiny_pool_serves_a_burst_of_signed_in_requests(
    client_factory: ClientFactory,
) -> None:
    # 4 connections (one is the pub/sub listener's) for 120 concurrent session look-ups
    client = await client_factory(redis_pool_size=4, redis_pool_timeout_s=10.0)
    response = await client.post(
        "/api/auth/register", json={"username": "pooled-user", "password": "test password 123"}
    )
    assert response.status_code == 201, response.text
    responses = await asyncio.gather(*(client.get("/api/auth/me") for _ in range(120)))
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 120, sorted(set(statuses))


@pytest.mark.standalone_only(
    "the waiting pool is the standalone client's; a cluster's pool is per node and does not queue"
)
async def test_256_concurrent_tile_requests_with_a_tiny_pool_get_no_503(
    client_factory: ClientFactory,
) -> None:
    # issue 13: 256 concurrent tile requests got 0.35-1.6 % 503s from a pool that refused
    client = await client_factory(redis_pool_size=3, redis_pool_timeout_s=10.0, world_cache_s=0)
    response = await client.post(
        "/api/auth/register", json={"username": "pooled-tiles", "password": "test password 123"}
    )
    assert response.status_code == 201, response.text
    made = await client.post("/api/worlds", json={"name": "p", "tileset": "terrain", "seed": 3})
    assert made.status_code == 201, made.text
    paths = [f"/tiles/{made.json()['id']}/-6/{x}/{y}.png" for x in range(2) for y in range(2)]
    for path in paths:  # computed once; the burst reads the caches
        assert (await client.get(path)).status_code == 200
    responses = await asyncio.gather(*(client.get(paths[i % 4]) for i in range(256)))
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 256, sorted(set(statuses))
