"""Single flight of tile generation across instances: a lease in Redis (store/tiles.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from redis.asyncio import Redis

from tests.conftest import ValkeyHandle
from tests.store.test_repos import run
from worldgen.store.keys import Keys
from worldgen.store.tiles import TileCache

Server = Callable[[], ValkeyHandle]
TILE = ("world-0001", "v1", 3, 1, -2)


def test_one_instance_computes_a_tile_and_the_others_wait_for_it(valkey_server: Server) -> None:
    srv = valkey_server()

    async def body(r: Redis) -> None:
        one, other = TileCache(r, Keys(), 10), TileCache(r, Keys(), 10)
        lease = await one.claim(*TILE)
        assert lease is not None
        assert await other.claim(*TILE) is None  # someone is computing it

        async def later() -> None:
            await asyncio.sleep(0.2)
            await one.put(*TILE, b"png bytes")
            await one.release(*TILE, lease)

        writer = asyncio.create_task(later())
        assert await other.wait_for(*TILE) == b"png bytes"
        await writer
        assert await other.claim(*TILE) is not None  # released: free again

    run(srv.url, body)


def test_a_lease_given_up_without_a_tile_sends_the_waiters_to_compute(
    valkey_server: Server,
) -> None:
    srv = valkey_server()

    async def body(r: Redis) -> None:
        one, other = TileCache(r, Keys(), 10), TileCache(r, Keys(), 10)
        lease = await one.claim(*TILE)
        assert lease is not None
        await other.release(*TILE, "not-the-holders-token")  # only the holder can release
        assert await other.claim(*TILE) is None

        async def fail() -> None:
            await asyncio.sleep(0.1)
            await one.release(*TILE, lease)  # computation failed: no tile

        task = asyncio.create_task(fail())
        assert await other.wait_for(*TILE) is None
        await task

    run(srv.url, body)
