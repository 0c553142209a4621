"""Presence across instances: who is here, joins and departures, and vanished clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from redis.asyncio import Redis
from websockets.exceptions import ConnectionClosed

from tests.conftest import ValkeyHandle
from tests.realtime.conftest import FAST, AppServers, Client, Json, new_world, run, with_redis
from worldgen.store.chat import Author
from worldgen.store.keys import Keys
from worldgen.store.presence import PresenceStore

Server = Callable[[], ValkeyHandle]


def presence(kind: str, session: str) -> Callable[[Json], bool]:
    return lambda f: f["type"] == "presence" and f.get(kind, {}).get("session") == session


def test_joined_and_left_reach_the_other_instance(
    valkey_server: Server, app_servers: AppServers
) -> None:
    handle = valkey_server()
    a, b = app_servers(handle, 2)

    async def main() -> None:
        wid = await new_world(handle.url)
        alice = await Client.open(a.ws(wid), guest={"id": "g-aaaa0000", "name": "alice"})
        alice.keep_alive()
        bob = await Client.open(b.ws(wid), guest={"id": "g-bbbb0000", "name": "bob"})
        here = {p["session"]: p["user"]["name"] for p in bob.welcome["presence"]}
        assert here == {alice.you["session"]: "alice", bob.you["session"]: "bob"}
        joined = await alice.until(presence("joined", bob.you["session"]))
        assert joined["joined"]["user"] == {"id": "g-bbbb0000", "name": "bob", "guest": True}
        await bob.close()
        left = await alice.until(presence("left", bob.you["session"]))
        assert left["left"]["user"]["name"] == "bob"
        await alice.close()

    run(main())


def test_a_vanished_client_drops_out_within_the_timeout(
    valkey_server: Server, app_servers: AppServers
) -> None:
    handle = valkey_server()
    a, b = app_servers(handle, 2)
    bound = FAST.presence_timeout_s + 3 * FAST.maintenance_s + 1.0

    async def main() -> None:
        wid = await new_world(handle.url)
        alice = await Client.open(a.ws(wid))
        alice.keep_alive()
        silent = await Client.open(b.ws(wid))  # never sends a heartbeat again
        await alice.until(presence("joined", silent.you["session"]))
        start = time.monotonic()
        await alice.until(presence("left", silent.you["session"]), timeout=bound)
        assert time.monotonic() - start <= bound
        error = await silent.until(lambda f: f["type"] == "error", timeout=bound)
        assert error["code"] == "idle_timeout"
        with pytest.raises(ConnectionClosed) as info:
            await silent.until(lambda f: False, timeout=bound)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 4408
        assert [p["session"] for p in alice.welcome["presence"]] == [alice.you["session"]]
        await alice.close()

    run(main())


def test_sessions_of_a_crashed_instance_are_swept_by_the_others(
    valkey_server: Server, app_servers: AppServers
) -> None:
    handle = valkey_server()
    (a,) = app_servers(handle, 1)
    bound = FAST.presence_timeout_s + 3 * FAST.maintenance_s + 1.0

    async def ghost(r: Redis, wid: str) -> None:
        # What a crashed instance leaves behind: a session nobody will refresh or remove.
        store = PresenceStore(r, Keys(), timeout_s=FAST.presence_timeout_s)
        await store.heartbeat(wid, "ghost-session", Author(id="g-dead0000", name="ghost"))

    async def main() -> None:
        wid = await new_world(handle.url)
        alice = await Client.open(a.ws(wid))
        alice.keep_alive()
        await with_redis(handle.url, lambda r: ghost(r, wid))
        await alice.until(presence("joined", "ghost-session"), timeout=bound)
        start = time.monotonic()
        await alice.until(presence("left", "ghost-session"), timeout=bound)
        assert time.monotonic() - start <= bound
        await asyncio.sleep(FAST.maintenance_s * 2)
        await alice.close()

    run(main())
