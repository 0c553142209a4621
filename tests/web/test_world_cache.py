"""The in-process world-record cache: warm tiles need no Redis read of the world record, and a
world made private stops being served to non-members within one second on every instance."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest

from tests.accounts import sign_in
from tests.conftest import LiveServers
from tests.web.conftest import ClientFactory, WebClient
from worldgen.store.client import connect
from worldgen.store.keys import Keys
from worldgen.store.worlds import WorldRecord, WorldRepo

pytestmark = pytest.mark.anyio

PRIVACY_BOUND_S = 1.0


def count_reads(repo: WorldRepo) -> list[str]:
    """Record every Redis read of a world record made through ``repo``."""
    reads: list[str] = []
    original: Callable[[str], Awaitable[WorldRecord | None]] = repo.get

    async def get(world_id: str) -> WorldRecord | None:
        reads.append(world_id)
        return await original(world_id)

    repo.get = get  # type: ignore[method-assign]
    return reads


async def new_world(client: WebClient, visibility: str = "public") -> str:
    response = await client.post(
        "/api/worlds", json={"name": "cached", "tileset": "terrain", "visibility": visibility}
    )
    assert response.status_code == 201, response.text
    wid: str = response.json()["id"]
    return wid


@pytest.mark.parametrize("ttl", [1.0, 0.0])
async def test_warm_tiles_read_the_world_record_at_most_once_a_second(
    client_factory: ClientFactory, ttl: float
) -> None:
    client = await client_factory(world_cache_s=ttl)
    await sign_in(client)
    wid = await new_world(client)
    path = f"/tiles/{wid}/0/0/0.png"
    assert (await client.get(path)).status_code == 200
    reads = count_reads(client.app.state.store.worlds)
    started = time.monotonic()
    for _ in range(20):
        assert (await client.get(path)).status_code == 200
    elapsed = time.monotonic() - started
    if ttl:
        assert len(reads) <= 1 + int(elapsed / ttl)  # one refresh per time to live at most
    else:
        assert len(reads) == 20  # the cache off: every request reads Redis (the old behaviour)


async def test_a_change_through_the_repository_is_seen_at_once_on_the_same_instance(
    client_factory: ClientFactory,
) -> None:
    client = await client_factory(world_cache_s=1.0)
    await sign_in(client)
    wid = await new_world(client)
    anonymous = httpx.AsyncClient(transport=client._transport, base_url="http://testserver")
    async with anonymous:
        assert (await anonymous.get(f"/api/worlds/{wid}")).status_code == 200
        changed = await client.patch(f"/api/worlds/{wid}", json={"visibility": "private"})
        assert changed.status_code == 200, changed.text
        assert (await anonymous.get(f"/tiles/{wid}/0/0/0.png")).status_code == 404
        assert (await client.get(f"/tiles/{wid}/0/0/0.png")).status_code == 200  # the owner
        assert (await client.delete(f"/api/worlds/{wid}")).status_code == 204
        assert (await client.get(f"/api/worlds/{wid}")).status_code == 404


async def _until_refused(http: httpx.AsyncClient, path: str, limit_s: float) -> float:
    """Seconds until ``path`` answers 404 (polling); fails past ``limit_s``."""
    started = time.monotonic()
    while True:
        status = (await http.get(path)).status_code
        elapsed = time.monotonic() - started
        if status == 404:
            return elapsed
        assert status == 200, status
        assert elapsed < limit_s, f"still served after {elapsed:.2f} s"
        await asyncio.sleep(0.02)


def test_a_world_made_private_stops_being_served_on_every_instance_within_a_second(
    live_servers: LiveServers,
) -> None:
    a, b = live_servers(2, world_cache_s=1.0)
    prefix = a.app.state.settings.key_prefix

    async def main() -> None:
        async with (
            httpx.AsyncClient(base_url=a.url, timeout=30, headers={"Origin": a.url}) as owner,
            httpx.AsyncClient(base_url=b.url, timeout=30) as stranger,
        ):
            await sign_in(owner)
            ids = []
            for name in ("announced", "quiet"):
                made = await owner.post(
                    "/api/worlds", json={"name": name, "tileset": "terrain", "seed": 5}
                )
                assert made.status_code == 201, made.text
                ids.append(made.json()["id"])
            announced, quiet = ids
            for wid in (announced, quiet):  # warm: B's cache holds both records
                for _ in range(3):
                    assert (await stranger.get(f"/tiles/{wid}/-4/0/0.png")).status_code == 200

            # through the API: announced on pub/sub, B drops its entry at once
            started = time.monotonic()
            changed = await owner.patch(f"/api/worlds/{announced}", json={"visibility": "private"})
            assert changed.status_code == 200, changed.text
            await _until_refused(stranger, f"/tiles/{announced}/-4/0/0.png", PRIVACY_BOUND_S)
            assert time.monotonic() - started < PRIVACY_BOUND_S

            # written behind the app's back (no announcement): the time to live still bounds it
            redis = connect(a.app.state.settings.redis_url)
            try:
                await redis.hset(Keys(prefix).world(quiet), "visibility", "private")
            finally:
                await redis.aclose()
            elapsed = await _until_refused(
                stranger, f"/tiles/{quiet}/-4/0/0.png", PRIVACY_BOUND_S + 0.25
            )
            assert elapsed <= PRIVACY_BOUND_S + 0.25  # the TTL plus one poll and scheduling

    asyncio.run(asyncio.wait_for(main(), 60))


async def test_a_reconnect_of_the_listener_drops_the_whole_cache(
    client_factory: ClientFactory,
) -> None:
    client = await client_factory(world_cache_s=1.0)
    await sign_in(client)
    wid = await new_world(client)
    repo: WorldRepo = client.app.state.store.worlds
    assert await repo.cached(wid) is not None
    reads = count_reads(repo)
    await repo.cached(wid)
    assert reads == []
    client.app.state.store.pubsub._notify(True)  # what the listener does after any reconnect
    await repo.cached(wid)
    assert reads == [wid]
