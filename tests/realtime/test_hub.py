"""Two app instances on one Valkey: delivery across instances, replay, idempotency, handshakes."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import ValkeyHandle
from tests.realtime.conftest import FAST, AppServers, Client, Json, new_world, run

Server = Callable[[], ValkeyHandle]


def is_type(kind: str) -> Callable[[Json], bool]:
    return lambda frame: frame["type"] == kind


async def acked(client: Client, msg_id: str) -> Json:
    return await client.until(lambda f: f["type"] == "ack" and f["id"] == msg_id)


def test_a_message_sent_through_one_instance_reaches_clients_of_both(
    valkey_server: Server, app_servers: AppServers
) -> None:
    handle = valkey_server()
    a, b = app_servers(handle, 2)

    async def main() -> None:
        wid = await new_world(handle.url, "Meeting place")
        alice = await Client.open(a.ws(wid), user="alice")
        bob = await Client.open(b.ws(wid))
        assert alice.you["name"] == "alice"
        assert alice.you["guest"] is False  # chatting needs an account
        assert bob.you["guest"] is False
        assert alice.welcome["world"] == {"id": wid, "name": "Meeting place"}
        assert alice.welcome["limits"]["rate_messages"] == 100

        msg_id = await alice.chat("hello <b>bob</b>")
        ack = await acked(alice, msg_id)
        assert ack["duplicate"] is False
        got = await bob.until(is_type("chat"))
        assert got["id"] == msg_id
        assert got["stream_id"] == ack["stream_id"]
        assert got["text"] == "hello <b>bob</b>"
        assert got["user"] == {"id": alice.you["id"], "name": "alice", "guest": False}
        assert isinstance(got["ts"], int)
        echo = await alice.until(is_type("chat"))  # the sender sees its message in stream order
        assert echo["stream_id"] == ack["stream_id"]

        await bob.send({"type": "ping", "x": 12, "y": -40, "label": "look", "id": "p1"})
        ping = await alice.until(is_type("ping"))
        assert (ping["x"], ping["y"], ping["label"], ping["user"]["id"]) == (
            12,
            -40,
            "look",
            bob.you["id"],
        )
        await bob.send({"type": "heartbeat"})
        await bob.until(is_type("heartbeat"))

        async with httpx.AsyncClient(base_url=b.http) as http:
            page = (await http.get(f"/api/worlds/{wid}/chat", params={"limit": 1})).json()
            assert [m["type"] for m in page["messages"]] == ["ping"]
            assert page["before"] == page["messages"][0]["stream_id"]
            older = await http.get(
                f"/api/worlds/{wid}/chat", params={"limit": 5, "before": page["before"]}
            )
            assert [m["id"] for m in older.json()["messages"]] == [msg_id]
            assert older.json()["before"] is None
            assert (await http.get("/api/worlds/nosuchworld/chat")).status_code == 404
            bad = await http.get(f"/api/worlds/{wid}/chat", params={"before": "x"})
            assert bad.status_code == 422
            assert (
                await http.get(f"/api/worlds/{wid}/chat", params={"limit": 101})
            ).status_code == 422
        await alice.close()
        await bob.close()

    run(main())


def test_replay_after_reconnect_is_gap_free_and_in_order(
    valkey_server: Server, app_servers: AppServers
) -> None:
    handle = valkey_server()
    a, b = app_servers(handle, 2, FAST.model_copy(update={"welcome_replay_max": 7}))

    async def main() -> None:
        wid = await new_world(handle.url)
        alice = await Client.open(a.ws(wid))
        bob = await Client.open(b.ws(wid))
        first = await alice.chat("before the gap")
        last_seen = (await bob.until(lambda f: f.get("id") == first))["stream_id"]
        await bob.close()

        sent = [await alice.chat(f"missed {i}") for i in range(20)]
        acks = [await acked(alice, i) for i in sent]

        # Back on the other instance, with its last stream id: exactly the 20, in order.
        back = await Client.open(a.ws(wid), last_id=last_seen)
        replay = back.welcome["history"]
        assert back.welcome["more"] is True
        assert len(replay) == 7
        while len(replay) < 20:
            replay.append(await back.until(lambda f: f["type"] == "chat"))
        assert [m["id"] for m in replay] == sent
        assert [m["stream_id"] for m in replay] == [x["stream_id"] for x in acks]

        # Live messages continue after the replay, without repeats.
        live = await alice.chat("after")
        nxt = await back.until(is_type("chat"))
        assert nxt["id"] == live

        # A fresh client (no last_id) gets the last messages as history.
        fresh = await Client.open(b.ws(wid))
        assert [m["id"] for m in fresh.welcome["history"]][-3:] == [sent[-2], sent[-1], live]
        for c in (alice, back, fresh):
            await c.close()

    run(main())


def test_a_retried_message_is_stored_and_delivered_once(
    valkey_server: Server, app_servers: AppServers
) -> None:
    handle = valkey_server()
    a, b = app_servers(handle, 2)

    async def main() -> None:
        wid = await new_world(handle.url)
        alice = await Client.open(a.ws(wid))
        # the same account retries the same message through another instance
        alice_again = await Client.open(b.ws(wid), cookie=alice.cookie)
        carol = await Client.open(b.ws(wid))
        await alice.chat("only once", "dup-1")
        first = await acked(alice, "dup-1")
        await alice.chat("only once", "dup-1")
        second = await acked(alice, "dup-1")
        await alice_again.chat("only once", "dup-1")
        third = await acked(alice_again, "dup-1")
        assert first["stream_id"] == second["stream_id"] == third["stream_id"]
        assert (second["duplicate"], third["duplicate"]) == (True, True)
        dave = await Client.open(a.ws(wid))
        await dave.chat("dave's own", "dup-1")  # another user's id is his, not a retry
        theirs = await acked(dave, "dup-1")
        assert not theirs.get("duplicate")
        assert theirs["stream_id"] != first["stream_id"]
        await alice.chat("marker", "end")
        frames: list[Json] = []
        while not frames or frames[-1].get("id") != "end":
            frames.append(await carol.until(is_type("chat")))
        assert [(f["id"], f["text"]) for f in frames] == [
            ("dup-1", "only once"),
            ("dup-1", "dave's own"),
            ("end", "marker"),
        ]
        for c in (alice, alice_again, carol, dave):
            await c.close()

    run(main())


def test_handshake_errors(valkey_server: Server, app_servers: AppServers) -> None:
    handle = valkey_server()
    (a,) = app_servers(handle, 1, FAST.model_copy(update={"hello_timeout_s": 0.5}))

    async def main() -> None:
        wid = await new_world(handle.url)
        async with connect(a.ws("nosuchworld1")) as ws:
            # the refusal does not wait for the hello: it may already be closing the socket
            with contextlib.suppress(ConnectionClosed):
                await ws.send(json.dumps({"type": "hello"}))
            frame = json.loads(await ws.recv())
            assert (frame["type"], frame["code"]) == ("error", "not_found")
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None
            assert info.value.rcvd.code == 4404

        async with connect(a.ws(wid)) as ws:

            async def next_of(kind: str) -> Json:
                while True:
                    frame: Json = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    if frame["type"] == kind:  # presence events may come in between
                        return frame

            await ws.send(json.dumps({"type": "chat", "id": "x", "text": "too early"}))
            assert (await next_of("error"))["code"] == "hello_required"
            await ws.send("nonsense")
            assert (await next_of("error"))["code"] == "invalid_json"
            await ws.send(json.dumps({"type": "hello"}))
            await next_of("welcome")
            await ws.send(json.dumps({"type": "hello"}))
            assert (await next_of("error"))["code"] == "unexpected_hello"
            await ws.send(b"\x00binary")
            assert (await next_of("error"))["code"] == "invalid_message"

        async with connect(a.ws(wid)) as ws:  # says nothing
            frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert frame["code"] == "hello_timeout"
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None
            assert info.value.rcvd.code == 1008

    run(main())


def test_rooms_joined_at_once_are_all_woken_across_instances(
    valkey_server: Server, app_servers: AppServers
) -> None:
    # Many rooms subscribe while the listener is busy subscribing others; none may be left out
    # (the safety-net poll is pushed out of reach, so only wake-ups deliver in time).
    handle = valkey_server()
    a, b = app_servers(handle, 2, FAST.model_copy(update={"maintenance_s": 30.0}))

    async def main() -> None:
        worlds = [await new_world(handle.url, f"room {i}") for i in range(12)]
        listeners = await asyncio.gather(*(Client.open(b.ws(w)) for w in worlds))
        senders = await asyncio.gather(*(Client.open(a.ws(w)) for w in worlds))
        await asyncio.sleep(0.3)  # one listener tick to apply the subscriptions
        loop = asyncio.get_running_loop()
        for listener, sender in zip(listeners, senders, strict=True):
            start = loop.time()
            msg = await sender.chat("wake up")
            got = await listener.until(is_type("chat"), timeout=5)
            assert got["id"] == msg
            assert loop.time() - start < 1.0
        for c in (*listeners, *senders):
            await c.close()

    run(main())
