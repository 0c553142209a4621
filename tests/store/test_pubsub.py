"""The one pub/sub listener against a scripted stand-in for redis-py's PubSub (exact
interleavings), and against a real Valkey.

The real-server recovery of its users (kill -9, CLIENT KILL) is tested in
``tests/realtime/test_recovery.py`` (rooms) and ``tests/security/test_store.py`` (revocations);
here the races are forced: a room joins while the listener is in the middle of subscribing,
Redis fails mid-read, a handler raises.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.conftest import ValkeyHandle
from tests.realtime.conftest import run
from worldgen.store.client import connect
from worldgen.store.pubsub import PubSub


class FakePubSub:
    """Records subscriptions; ``during_subscribe`` runs inside the first SUBSCRIBE's await."""

    def __init__(self, owner: FakeRedis) -> None:
        self.owner = owner
        self.connection = None
        self.channels: set[str] = set()

    async def subscribe(self, *channels: str) -> None:
        hook, self.owner.during_subscribe = self.owner.during_subscribe, None
        await asyncio.sleep(0)
        if hook is not None:
            hook()
        await asyncio.sleep(0)
        self.channels.update(channels)
        for channel in channels:  # what Redis answers to SUBSCRIBE
            self.owner.inbox.append({"type": "subscribe", "channel": channel.encode(), "data": 1})

    async def unsubscribe(self, *channels: str) -> None:
        self.channels.difference_update(channels)

    async def get_message(self, timeout: float = 0.0) -> dict[str, Any] | None:
        if self.owner.fail_reads > 0:
            self.owner.fail_reads -= 1
            raise RedisConnectionError("connection lost")
        if self.owner.inbox:
            return self.owner.inbox.pop(0)
        await asyncio.sleep(timeout)
        return None

    async def aclose(self) -> None:
        self.owner.closed += 1


class FakeRedis:
    def __init__(self) -> None:
        self.during_subscribe: Callable[[], None] | None = None
        self.fail_reads = 0
        self.inbox: list[dict[str, Any]] = []
        self.closed = 0
        self.pubsubs: list[FakePubSub] = []

    def pubsub(self, **_: Any) -> FakePubSub:
        ps = FakePubSub(self)
        self.pubsubs.append(ps)
        return ps


class Owner:
    """Records what one user of the listener hears."""

    def __init__(self, bus: PubSub) -> None:
        self.bus = bus
        self.got: list[tuple[str, bytes]] = []
        self.woken: list[str] = []
        self.connected: list[bool] = []
        bus.on_connect(self.connected.append)

    def subscribe(self, channel: str) -> None:
        self.bus.subscribe(
            channel,
            lambda data: self.got.append((channel, data)),
            on_confirmed=lambda: self.woken.append(channel),
        )


def listener(fake: FakeRedis) -> tuple[PubSub, Owner]:
    bus = PubSub(cast(Redis, fake), backoff_base_s=0.01, backoff_cap_s=0.02)
    owner = Owner(bus)
    owner.subscribe("control")
    return bus, owner


async def until(pred: Callable[[], bool], timeout: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def test_a_room_joining_during_a_subscribe_is_not_left_out() -> None:
    async def main() -> None:
        fake = FakeRedis()
        lst, owner = listener(fake)
        owner.subscribe("room-a")
        fake.during_subscribe = lambda: owner.subscribe("room-late")
        task = asyncio.create_task(lst.run())
        await until(lambda: bool(fake.pubsubs) and "room-late" in fake.pubsubs[-1].channels)
        assert fake.pubsubs[-1].channels == {"control", "room-a", "room-late"}
        # Each room is woken once Redis confirms it, to catch up on what came before.
        await until(lambda: sorted(owner.woken) == ["control", "room-a", "room-late"])
        owner.subscribe("room-b")
        fake.during_subscribe = lambda: owner.subscribe("room-c")
        assert await lst.wait_subscribed("room-b", 2.0)
        assert await lst.wait_subscribed("room-c", 2.0)
        assert lst.confirmed("room-c")
        assert not await lst.wait_subscribed("room-never", 0.1)
        lst.unsubscribe("room-a")
        await until(lambda: "room-a" not in fake.pubsubs[-1].channels)
        fake.inbox.append({"type": "message", "channel": b"room-b", "data": b"wake"})
        await until(lambda: owner.got == [("room-b", b"wake")])
        fake.inbox.append({"type": "message", "channel": b"room-a", "data": b"late"})
        await asyncio.sleep(0.05)
        assert owner.got == [("room-b", b"wake")]  # unsubscribed: nobody hears it
        task.cancel()
        await asyncio.wait({task})

    run(main())


def test_after_a_failure_the_listener_resubscribes_everything_and_says_so() -> None:
    async def main() -> None:
        fake = FakeRedis()
        lst, owner = listener(fake)
        other = Owner(lst)  # a second user (the revocation bus) hears the same notices
        owner.subscribe("room-a")
        task = asyncio.create_task(lst.run())
        await until(lambda: owner.connected == [False])
        other.subscribe("events")
        fake.fail_reads = 3  # Redis fails three reads in a row
        await until(lambda: len(owner.connected) == 4)
        assert owner.connected == [False, True, True, True]
        assert other.connected == owner.connected
        assert lst.reconnects == 3
        assert fake.pubsubs[-1].channels == {"control", "room-a", "events"}
        assert fake.closed == 3  # every broken pub/sub was closed, none leaked
        # The back-off grows while the outage lasts, within its cap.
        assert len(lst.delays) == 3
        assert lst.delays[0] <= lst.delays[1] <= 0.02
        assert max(lst.delays) <= 0.02
        assert lst.connected
        task.cancel()
        await asyncio.wait({task})

    run(main())


def test_a_failing_handler_or_callback_does_not_stop_the_listener() -> None:
    async def main() -> None:
        fake = FakeRedis()
        lst, owner = listener(fake)

        def broken(_: object) -> None:
            raise RuntimeError("a bug in one owner")

        lst.subscribe("broken", broken)
        lst.on_connect(broken)
        task = asyncio.create_task(lst.run())
        await until(lambda: owner.connected == [False])
        fake.inbox.append({"type": "message", "channel": b"broken", "data": b"x"})
        fake.inbox.append({"type": "message", "channel": b"control", "data": b"after"})
        await until(lambda: owner.got == [("control", b"after")])
        assert lst.reconnects == 0  # no reconnect: the listener itself never failed
        task.cancel()
        await asyncio.wait({task})

    run(main())


def test_stop_ends_the_loop_and_a_stopped_listener_does_nothing_more() -> None:
    async def main() -> None:
        fake = FakeRedis()
        lst, owner = listener(fake)
        lst.start()
        await until(lambda: owner.connected == [False])
        await lst.stop()
        assert not lst.connected
        assert fake.closed == 1

    run(main())


def test_publish_and_subscribe_through_a_real_valkey(
    valkey_server: Callable[[], ValkeyHandle],
) -> None:
    server = valkey_server()

    async def main() -> None:
        redis = connect(server.url)
        here, there = PubSub(redis), PubSub(redis)
        heard = Owner(there)
        heard.subscribe("chan")
        there.start()
        try:
            assert await there.wait_subscribed("chan", 5)
            assert there.confirmed("chan")
            assert await here.publish("chan", b"hello") == 1
            await until(lambda: heard.got == [("chan", b"hello")])
            assert heard.connected == [False]
        finally:
            await there.stop()
            await redis.aclose()

    run(main())


def test_backoff_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="back-off"):
        PubSub(cast(Redis, FakeRedis()), backoff_base_s=1.0, backoff_cap_s=0.5)
