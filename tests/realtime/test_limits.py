"""Limits at the limit and one past it: text length, message rate, frame size."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from websockets.exceptions import ConnectionClosed

from tests.conftest import ValkeyHandle
from tests.realtime.conftest import AppServers, Client, Json, new_world, run

Server = Callable[[], ValkeyHandle]


async def closed_with(client: Client) -> int:
    """Read until the server closes; the close code it sent."""

    async def drain() -> None:
        while True:
            await client.recv()

    with pytest.raises(ConnectionClosed) as info:
        await drain()
    assert info.value.rcvd is not None
    return info.value.rcvd.code


def is_error(frame: Json) -> bool:
    return bool(frame["type"] == "error")


def test_text_of_2000_characters_is_stored_and_2001_is_refused(
    valkey_server: Server, app_servers: AppServers
) -> None:
    handle = valkey_server()
    (a,) = app_servers(handle, 1)

    async def main() -> None:
        wid = await new_world(handle.url)
        client = await Client.open(a.ws(wid))
        ok = await client.chat("🌍" * 2000)
        ack = await client.until(lambda f: f["type"] == "ack")
        assert ack["id"] == ok
        await client.chat("x" * 2001, "too-long")
        err = await client.until(is_error)
        assert (err["code"], err["id"]) == ("invalid_message", "too-long")
        # The connection stays open after a malformed message.
        again = await client.chat("still here")
        assert (await client.until(lambda f: f["type"] == "ack"))["id"] == again
        await client.close()

    run(main())


def test_100_messages_a_minute_pass_and_the_101st_closes_1008(
    valkey_server: Server, app_servers: AppServers
) -> None:
    handle = valkey_server()
    (a,) = app_servers(handle, 1)

    async def main() -> None:
        wid = await new_world(handle.url)
        client = await Client.open(a.ws(wid))
        watcher = await Client.open(a.ws(wid))
        for i in range(100):
            if i % 10 == 0:
                await client.send({"type": "ping", "x": i, "y": 0, "id": f"p{i}"})
            else:
                await client.chat(f"message {i}", f"m{i}")
        acks = 0
        while acks < 100:
            frame = await client.recv()
            assert frame["type"] != "error", frame
            acks += frame["type"] == "ack"
        await client.chat("one too many", "m100")
        err = await client.until(is_error)
        assert (err["code"], err["id"]) == ("rate_limited", "m100")
        assert await closed_with(client) == 1008
        # Nothing past the limit was stored: the watcher sees exactly 100 messages.
        seen = 0
        while seen < 100:
            frame = await watcher.recv()
            seen += frame["type"] in ("chat", "ping")
            assert frame.get("id") != "m100"
        await watcher.close()

    run(main())


def test_a_64_kib_frame_is_read_and_one_byte_more_closes_1009(
    valkey_server: Server, app_servers: AppServers
) -> None:
    handle = valkey_server()
    (a,) = app_servers(handle, 1)
    limit = 64 * 1024

    def heartbeat_of(size: int) -> str:
        frame = json.dumps({"type": "heartbeat"})
        return frame[:-1] + " " * (size - len(frame)) + "}"

    async def main() -> None:
        wid = await new_world(handle.url)
        client = await Client.open(a.ws(wid))
        exact = heartbeat_of(limit)
        assert len(exact.encode()) == limit
        await client.send(exact)
        assert (await client.until(lambda f: f["type"] in ("heartbeat", "error")))[
            "type"
        ] == "heartbeat"
        await client.send(heartbeat_of(limit + 1))
        err = await client.until(is_error)
        assert err["code"] == "frame_too_large"
        assert await closed_with(client) == 1009

    run(main())
