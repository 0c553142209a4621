"""World renamed or deleted through the API: every connected client hears it, on every instance."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.accounts import sign_in
from tests.conftest import ValkeyHandle
from tests.realtime.conftest import FAST, AppServers, Client, Json, new_world, run, with_redis
from worldgen.store.keys import Keys
from worldgen.store.worlds import WorldRepo

Server = Callable[[], ValkeyHandle]


def world_event(kind: str) -> Callable[[Json], bool]:
    return lambda f: f["type"] == "world" and f["event"] == kind


def test_rename_and_delete_reach_clients_of_both_instances(
    valkey_server: Server, app_servers: AppServers
) -> None:
    handle = valkey_server()
    a, b = app_servers(handle, 2, FAST.model_copy(update={"maintenance_s": 30.0}))

    async def main() -> None:
        async with httpx.AsyncClient(base_url=a.http) as http:
            await sign_in(http)  # renaming and deleting need the world's owner
            owner = (await http.get("/api/auth/me")).json()["id"]
            wid = await new_world(handle.url, "Old name", owner=owner)
            here = await Client.open(a.ws(wid))
            there = await Client.open(b.ws(wid))
            renamed = await http.patch(f"/api/worlds/{wid}", json={"name": "New name"})
            assert renamed.status_code == 200, renamed.text
            for client in (here, there):
                event = await client.until(world_event("renamed"), timeout=2)
                assert event == {
                    "type": "world",
                    "event": "renamed",
                    "world_id": wid,
                    "name": "New name",
                    "version": 2,  # the record's version now (the rename box sends it back)
                }
            assert (await http.delete(f"/api/worlds/{wid}")).status_code == 204
        for client in (here, there):
            await client.until(world_event("deleted"), timeout=2)
            with pytest.raises(ConnectionClosed) as info:
                await client.until(lambda f: False, timeout=5)
            assert info.value.rcvd is not None
            assert info.value.rcvd.code == 4404

    run(main())


def test_a_change_made_behind_the_hubs_back_still_arrives(
    valkey_server: Server, app_servers: AppServers
) -> None:
    # No publish at all (another tool renamed the world): the periodic world check delivers it.
    handle = valkey_server()
    (a,) = app_servers(handle, 1)

    async def rename(r: Redis, wid: str) -> None:
        await WorldRepo(r, Keys()).update(wid, name="Renamed quietly")

    async def main() -> None:
        wid = await new_world(handle.url, "Before")
        client = await Client.open(a.ws(wid))
        client.keep_alive()
        await with_redis(handle.url, lambda r: rename(r, wid))
        event = await client.until(world_event("renamed"), timeout=3)
        assert event["name"] == "Renamed quietly"
        await client.close()

    run(main())


def test_connection_gauge_and_realtime_metrics(
    valkey_server: Server, app_servers: AppServers
) -> None:
    handle = valkey_server()
    (a,) = app_servers(handle, 1)

    def sample(text: str, name: str) -> float:
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"{name} not exported")

    async def main() -> None:
        wid = await new_world(handle.url)
        client = await Client.open(a.ws(wid))
        await client.chat("counted")
        await client.until(lambda f: f["type"] == "ack")
        async with httpx.AsyncClient(base_url=a.http) as http:
            text = (await http.get("/metrics")).text
            assert sample(text, "worldgen_websocket_connections") == 1
            assert sample(text, "worldgen_realtime_messages_total") == 1
            assert sample(text, "worldgen_realtime_rooms") == 1
            assert sample(text, "worldgen_realtime_listener_up") == 1
            await client.close()
            for _ in range(50):
                text = (await http.get("/metrics")).text
                if sample(text, "worldgen_websocket_connections") == 0:
                    break
            assert sample(text, "worldgen_websocket_connections") == 0

    run(main())


def test_a_foreign_origin_is_refused_at_the_handshake(
    valkey_server: Server, app_servers: AppServers
) -> None:
    handle = valkey_server()
    (a,) = app_servers(handle, 1)

    async def main() -> None:
        wid = await new_world(handle.url)
        with pytest.raises(InvalidStatus) as info:
            await connect(a.ws(wid), additional_headers={"Origin": "https://evil.example"})
        assert info.value.response.status_code == 403
        same = await connect(a.ws(wid), additional_headers={"Origin": a.http})
        await same.close()

    run(main())


def test_close_user_closes_that_users_sockets_on_every_instance(
    valkey_server: Server, app_servers: AppServers
) -> None:
    handle = valkey_server()
    a, b = app_servers(handle, 2)
    ada = {"id": "g-ada00000", "name": "ada"}

    async def main() -> None:
        wid = await new_world(handle.url)
        here = await Client.open(a.ws(wid), guest=ada)
        there = await Client.open(b.ws(wid), guest=ada)
        other = await Client.open(b.ws(wid))
        await asyncio.to_thread(a.call, a.app.state.hub.close_user("g-ada00000"))
        for client in (here, there):
            with pytest.raises(ConnectionClosed) as info:
                await client.until(lambda f: False, timeout=5)
            assert info.value.rcvd is not None
            assert info.value.rcvd.code == 4401
        await other.send({"type": "heartbeat"})
        await other.until(lambda f: f["type"] == "heartbeat")  # everyone else stays
        await other.close()

    run(main())
