"""The chat stream and presence repositories against a real Valkey."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from tests.conftest import ValkeyHandle
from tests.realtime.conftest import run, with_redis
from worldgen.errors import WorldNotFoundError
from worldgen.store.chat import (
    Author,
    ChatRecord,
    ChatStore,
    PingRecord,
    parse_stream_id,
)
from worldgen.store.keys import Keys
from worldgen.store.presence import PresenceStore
from worldgen.store.worlds import WorldRepo

Server = Callable[[], ValkeyHandle]
ADA = Author(id="g-0000aaaa", name="ada")


async def make_world(r: Redis) -> str:
    record = await WorldRepo(r, Keys()).create(name="w", tileset="terrain", kind="tiled", seed=1)
    return record.id


def chat(i: int | str, text: str = "hi") -> ChatRecord:
    return ChatRecord(id=f"m{i}", user=ADA, text=text)


@pytest.mark.standalone_only(
    "listens with a raw PUBLISH subscriber on a channel outside the world's slot"
)
def test_append_is_idempotent_by_client_id_and_publishes_once(valkey_server: Server) -> None:
    srv = valkey_server()

    async def body(r: Redis) -> None:
        store = ChatStore(r, Keys())
        wid = await make_world(r)
        pubsub = r.pubsub()
        await pubsub.subscribe("chan")
        first = await store.append(wid, chat(1), notify=("chan", b"wake"))
        again = await store.append(wid, chat(1, "a different text"), notify=("chan", b"wake"))
        assert first.created
        assert not again.created
        assert again.stream_id == first.stream_id
        assert await store.length(wid) == 1
        wakes = []
        for _ in range(20):
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05)
            if message is not None:
                wakes.append(message["data"])
        assert wakes == [b"wake"]
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        ttl = await r.ttl(Keys().chat_dedup(wid, ADA.id, "m1"))
        assert 0 < ttl <= store.dedup_ttl_s

    run(with_redis(srv.url, body))


def test_a_client_id_is_deduplicated_per_user_not_per_world(valkey_server: Server) -> None:
    srv = valkey_server()
    bob = Author(id="g-0000bbbb", name="bob")

    async def body(r: Redis) -> None:
        store = ChatStore(r, Keys())
        wid = await make_world(r)
        first = await store.append(wid, chat(1))
        theirs = await store.append(wid, ChatRecord(id="m1", user=bob, text="mine"))
        retry = await store.append(wid, ChatRecord(id="m1", user=bob, text="mine"))
        assert first.created
        assert theirs.created
        assert not retry.created
        assert theirs.stream_id != first.stream_id
        assert retry.stream_id == theirs.stream_id
        records = [e.record for e in (await store.read_after(wid, "0-0", count=10)).entries]
        assert [r.text for r in records if isinstance(r, ChatRecord)] == ["hi", "mine"]
        assert len(records) == 2

    run(with_redis(srv.url, body))


def test_nothing_is_written_for_a_missing_world(valkey_server: Server) -> None:
    srv = valkey_server()

    async def body(r: Redis) -> None:
        store = ChatStore(r, Keys())
        presence = PresenceStore(r, Keys())
        with pytest.raises(WorldNotFoundError):
            await store.append("nosuchworld", chat(1))
        assert await presence.heartbeat("nosuchworld", "s1", ADA) is None
        assert await r.dbsize() == 0

    run(with_redis(srv.url, body))


def test_stream_is_trimmed_approximately_to_maxlen(valkey_server: Server) -> None:
    srv = valkey_server()

    async def body(r: Redis) -> None:
        store = ChatStore(r, Keys(), maxlen=100)
        wid = await make_world(r)
        for i in range(400):
            await store.append(wid, chat(i))
        assert 100 <= await store.length(wid) < 250

    run(with_redis(srv.url, body))


def test_history_and_paging_are_gap_free_and_ordered(valkey_server: Server) -> None:
    srv = valkey_server()

    async def body(r: Redis) -> None:
        store = ChatStore(r, Keys())
        wid = await make_world(r)
        ids = []
        for i in range(25):
            record = chat(i) if i % 5 else PingRecord(id=f"m{i}", user=ADA, x=i, y=-i)
            ids.append((await store.append(wid, record)).stream_id)
        newest = await store.history(wid, limit=10)
        assert [e.stream_id for e in newest] == ids[-10:]
        older = await store.history(wid, before=newest[0].stream_id, limit=10)
        assert [e.stream_id for e in older] == ids[-20:-10]
        upto = await store.history(wid, upto=ids[4], limit=3)
        assert [e.stream_id for e in upto] == ids[2:5]
        seen, cursor = [], "0-0"
        while True:
            page = await store.read_after(wid, cursor, upto=ids[21], count=4)
            seen += [e.stream_id for e in page.entries]
            if page.last_id is None or not page.full:
                break
            cursor = page.last_id
        assert seen == ids[:22]
        assert await store.tail_id(wid) == ids[-1]
        assert parse_stream_id(ids[1]) > parse_stream_id(ids[0])
        assert newest[-1].ts_ms == parse_stream_id(ids[-1])[0]

    run(with_redis(srv.url, body))


def test_an_invalid_entry_is_skipped_but_moves_the_cursor(valkey_server: Server) -> None:
    srv = valkey_server()

    async def body(r: Redis) -> None:
        keys = Keys()
        store = ChatStore(r, keys)
        wid = await make_world(r)
        await store.append(wid, chat(1))
        raw = await r.xadd(keys.chat(wid), {"d": b'{"kind":"chat","id":"x"}'})
        bad = raw.decode() if isinstance(raw, bytes) else raw
        page = await store.read_after(wid, "0-0", count=10)
        assert [e.record.id for e in page.entries] == ["m1"]
        assert page.last_id == bad
        assert store.invalid_entries == 1
        with pytest.raises(ValueError, match="stream id"):
            await store.read_after(wid, "0-0 +", count=1)

    run(with_redis(srv.url, body))


def test_presence_heartbeat_leave_and_sweep(valkey_server: Server) -> None:
    srv = valkey_server()

    async def body(r: Redis) -> None:
        keys = Keys()
        wid = await make_world(r)
        presence = PresenceStore(r, keys, timeout_s=0.5)
        other = PresenceStore(r, keys, timeout_s=0.5)
        bob = Author(id="g-0000bbbb", name="bob")
        assert await presence.heartbeat(wid, "s1", ADA) is True
        assert await presence.heartbeat(wid, "s1", ADA) is False
        assert await presence.heartbeat(wid, "s2", bob) is True
        assert 0 < await r.pttl(keys.presence(wid)) <= 60_000
        snap = await presence.sync(wid)
        assert snap.present == {"s1": ADA, "s2": bob}
        assert snap.world_exists
        assert snap.world_name == "w"
        assert await presence.leave(wid, "s2") == bob
        assert await presence.leave(wid, "s2") is None
        await asyncio.sleep(0.7)
        # Two instances sweep at once: exactly one of them sees s1 go.
        a, b = await asyncio.gather(presence.sync(wid), other.sync(wid))
        assert {**a.gone, **b.gone} == {"s1": ADA}
        assert len(a.gone) + len(b.gone) == 1
        assert a.present == b.present == {}
        await WorldRepo(r, keys).delete(wid)
        gone = await presence.sync(wid)
        assert not gone.world_exists
        assert gone.world_name is None

    run(with_redis(srv.url, body))
