"""Redis failures: kill -9 under chat load loses no acknowledged message; listeners come back.

The safety-net poll is pushed out to 30 s here, so a delivery within a second after recovery
proves the pub/sub listener itself resumed (not the poll).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from tests.conftest import ValkeyHandle
from tests.realtime.conftest import FAST, AppServers, Client, Json, new_world, run, with_redis
from worldgen.store.chat import ChatStore
from worldgen.store.keys import Keys

Server = Callable[[], ValkeyHandle]

SLOW_POLL = FAST.model_copy(
    update={
        "maintenance_s": 30.0,
        "presence_timeout_s": 60.0,
        "heartbeat_s": 10.0,
        "rate_messages": 100_000,
        "rate_frames": 100_000,
        # these tests load their clients hard: a test process stalled on a busy machine must
        # not have its sockets dropped as slow consumers (tests/realtime/test_connection does)
        "send_timeout_s": 15.0,
        "send_queue": 20_000,
    }
)


async def stream_ids(url: str, wid: str) -> list[tuple[str, str]]:
    """(client id, stream id) of every entry in the world's stream, in order."""

    async def read(r: Redis) -> list[tuple[str, str]]:
        store = ChatStore(r, Keys())
        out, cursor = [], "0-0"
        while True:
            page = await store.read_after(wid, cursor, count=500)
            out += [(e.record.id, e.stream_id) for e in page.entries]
            if page.last_id is None or not page.full:
                return out
            cursor = page.last_id

    return await with_redis(url, read)


async def kill_pubsub_clients(r: Redis) -> None:
    """Drop every subscriber's connection (what a failover or a proxy restart does)."""
    await r.client_kill_filter(_type="pubsub")


def answers(msg_id: str) -> Callable[[Json], bool]:
    """Matches the ack or the error about one message."""
    return lambda f: f.get("id") == msg_id and f["type"] in ("ack", "error")


@pytest.mark.standalone_only(
    "kills the server (tests/cluster_mode has the cluster's failover under chat load)"
)
def test_kill_9_under_chat_load_loses_no_acknowledged_message(
    valkey_server: Server, app_servers: AppServers
) -> None:
    handle = valkey_server()
    a, b = app_servers(handle, 2, SLOW_POLL)

    async def main() -> None:
        wid = await new_world(handle.url)
        receivers = [await Client.open(a.ws(wid)), await Client.open(b.ws(wid))]
        senders = [await Client.open(s.ws(wid)) for s in (a, b, a, b)]
        acked: dict[str, str] = {}
        received: list[list[tuple[str, str]]] = [[], []]
        stop = asyncio.Event()
        unavailable = 0

        async def send_loop(n: int, client: Client) -> None:
            nonlocal unavailable
            i = 0
            while not stop.is_set():
                msg_id = f"s{n}-{i}"
                while True:  # retry the same id until it is acknowledged
                    await client.chat(f"load {n}/{i}", msg_id)
                    frame = await client.until(answers(msg_id), timeout=15)
                    if frame["type"] == "ack":
                        acked[msg_id] = frame["stream_id"]
                        break
                    assert frame["code"] == "unavailable", frame
                    unavailable += 1
                    await asyncio.sleep(0.05 + random.random() * 0.1)
                i += 1
                await asyncio.sleep(0.005)

        async def receive_loop(k: int, client: Client) -> None:
            while True:
                frame = await client.recv(timeout=60)
                if frame["type"] == "chat":
                    received[k].append((frame["id"], frame["stream_id"]))

        tasks = [asyncio.create_task(send_loop(n, c)) for n, c in enumerate(senders)]
        readers = [asyncio.create_task(receive_loop(k, c)) for k, c in enumerate(receivers)]
        await asyncio.sleep(0.8)
        before_kill = len(acked)
        handle.kill()
        await asyncio.sleep(1.0)
        await asyncio.to_thread(handle.restart)
        await asyncio.sleep(1.5)
        stop.set()
        await asyncio.gather(*tasks)

        # Every acknowledged message is in the stream, once, under the id its ack named.
        stored = await stream_ids(handle.url, wid)
        assert dict(stored) == acked
        assert len(stored) == len(acked)
        # ... and reached both receivers, once each, in stream order.
        deadline = time.monotonic() + 10
        while any(len(r) < len(stored) for r in received) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for r in received:
            assert r == stored
        for t in readers:
            t.cancel()
        await asyncio.wait(readers)
        for c in [*receivers, *senders]:
            await c.close()
        assert before_kill > 20
        assert len(acked) > before_kill
        assert unavailable > 0  # the outage was felt, and retried through

    run(main())
    assert a.app.state.hub.pubsub.reconnects >= 1
    assert b.app.state.hub.pubsub.reconnects >= 1


def test_the_listener_recovers_when_its_connection_is_killed(
    valkey_server: Server, app_servers: AppServers
) -> None:
    handle = valkey_server()
    a, b = app_servers(handle, 2, SLOW_POLL)

    async def main() -> None:
        wid = await new_world(handle.url)
        alice = await Client.open(a.ws(wid))
        bob = await Client.open(b.ws(wid))
        await with_redis(handle.url, kill_pubsub_clients)
        deadline = time.monotonic() + 10
        hub = b.app.state.hub
        while hub.pubsub.reconnects < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert hub.pubsub.reconnects >= 1
        await asyncio.sleep(0.3)  # subscriptions re-established
        start = time.monotonic()
        msg = await alice.chat("after the kill")
        got = await bob.until(lambda f: f["type"] == "chat", timeout=5)
        assert got["id"] == msg
        assert time.monotonic() - start < 1.0
        await alice.close()
        await bob.close()

    run(main())
