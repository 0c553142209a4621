"""The pub/sub listener against a scripted stand-in for redis-py's PubSub (exact interleavings).

The real-server behaviour (kill -9, CLIENT KILL) is in ``test_recovery.py``; here the races are
forced: a room joins while the listener is in the middle of subscribing, Redis fails mid-read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.realtime.conftest import run
from worldgen.realtime.fanout import Listener


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


def listener(
    fake: FakeRedis, got: list[tuple[str, bytes]], connected: list[bool], woken: list[str]
) -> Listener:
    return Listener(
        cast(Redis, fake),
        "control",
        on_message=lambda ch, data: got.append((ch, data)),
        on_connected=connected.append,
        on_subscribed=woken.append,
        backoff_base_s=0.01,
        backoff_cap_s=0.02,
    )


async def until(pred: Callable[[], bool], timeout: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def test_a_room_joining_during_a_subscribe_is_not_left_out() -> None:
    async def main() -> None:
        fake = FakeRedis()
        got: list[tuple[str, bytes]] = []
        connected: list[bool] = []
        woken: list[str] = []
        lst = listener(fake, got, connected, woken)
        lst.subscribe("room-a")
        fake.during_subscribe = lambda: lst.subscribe("room-late")
        task = asyncio.create_task(lst.run())
        await until(lambda: bool(fake.pubsubs) and "room-late" in fake.pubsubs[-1].channels)
        assert fake.pubsubs[-1].channels == {"control", "room-a", "room-late"}
        # Each room is woken once Redis confirms it, to catch up on what came before.
        await until(lambda: woken == ["room-a", "room-late"])
        lst.subscribe("room-b")
        fake.during_subscribe = lambda: lst.subscribe("room-c")
        assert await lst.wait_subscribed("room-b", 2.0)
        assert await lst.wait_subscribed("room-c", 2.0)
        assert lst.confirmed("room-c")
        assert not await lst.wait_subscribed("room-never", 0.1)
        lst.unsubscribe("room-a")
        await until(lambda: "room-a" not in fake.pubsubs[-1].channels)
        fake.inbox.append({"type": "message", "channel": b"room-b", "data": b"wake"})
        await until(lambda: got == [("room-b", b"wake")])
        task.cancel()
        await asyncio.wait({task})

    run(main())


def test_after_a_failure_the_listener_resubscribes_everything_and_says_so() -> None:
    async def main() -> None:
        fake = FakeRedis()
        connected: list[bool] = []
        lst = listener(fake, [], connected, [])
        lst.subscribe("room-a")
        task = asyncio.create_task(lst.run())
        await until(lambda: connected == [False])
        lst.subscribe("room-b")
        fake.fail_reads = 3  # Redis fails three reads in a row
        await until(lambda: len(connected) == 4)
        assert connected == [False, True, True, True]
        assert lst.reconnects == 3
        assert fake.pubsubs[-1].channels == {"control", "room-a", "room-b"}
        assert fake.closed == 3  # every broken pub/sub was closed, none leaked
        # The back-off grows while the outage lasts, within its cap.
        assert len(lst.delays) == 3
        assert lst.delays[0] <= lst.delays[1] <= 0.02
        assert max(lst.delays) <= 0.02
        assert lst.connected
        task.cancel()
        await asyncio.wait({task})

    run(main())
