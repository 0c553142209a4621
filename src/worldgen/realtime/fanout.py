"""Fan-out across app instances: one pub/sub listener per instance, streams as the record.

A stored message is followed by a small *wake-up* on its world's channel; every instance whose
listener is subscribed to that channel (it has local sockets in the room) reads the stream from
the room's last delivered id. Ephemeral events (presence, world renamed/deleted) travel as the
payload itself. Pub/sub is lossy by design, so nothing depends on it alone: rooms also poll their
stream every few seconds, and presence and world state are re-read periodically.

The :class:`Listener` owns one pub/sub connection. When Redis goes away it reconnects by itself
with jittered exponential back-off (capped, every attempt logged), re-subscribes to every wanted
channel and reports the reconnect so rooms catch up from their last ids: a restart of Redis costs
latency, never a message. Subscription changes are applied by the listener's own loop (one task
owns the connection), within one tick.

Payloads are JSON validated by pydantic on receipt (never pickle); ``o`` is the sending instance,
so an instance ignores its own signals (it already delivered locally).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from typing import Annotated, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from worldgen.realtime._aio import raise_if_cancelling
from worldgen.realtime.protocol import ServerEvent

log = structlog.get_logger("worldgen.realtime")

TICK_S = 0.05
"""Longest wait for a pub/sub message before the loop applies subscription changes."""


class WakeSignal(BaseModel):
    """New entries are in the world's stream."""

    model_config = ConfigDict(frozen=True)
    k: Literal["wake"] = "wake"
    o: str = Field(max_length=64)


class EventSignal(BaseModel):
    """An ephemeral event for every socket in the room."""

    model_config = ConfigDict(frozen=True)
    k: Literal["event"] = "event"
    o: str = Field(max_length=64)
    m: ServerEvent


class CloseUserSignal(BaseModel):
    """Close every socket of one user, on every instance (sent on the control channel)."""

    model_config = ConfigDict(frozen=True)
    k: Literal["close_user"] = "close_user"
    o: str = Field(max_length=64)
    user_id: str = Field(min_length=1, max_length=64)
    code: int = Field(ge=4000, le=4999)
    reason: str = Field(max_length=120)


Signal = Annotated[WakeSignal | EventSignal | CloseUserSignal, Field(discriminator="k")]
_SIGNAL: TypeAdapter[WakeSignal | EventSignal | CloseUserSignal] = TypeAdapter(Signal)


def parse_signal(data: bytes) -> WakeSignal | EventSignal | CloseUserSignal:
    """Validate a payload read from a channel (raises ``ValidationError``)."""
    return _SIGNAL.validate_json(data)


def backoff_delay(attempt: int, base_s: float, cap_s: float) -> float:
    """Delay before retry ``attempt`` (1, 2, ...): exponential, capped, half of it jittered."""
    ceiling = min(cap_s, base_s * 2 ** min(attempt - 1, 30))
    return float(ceiling / 2 + random.uniform(0, ceiling / 2))


class Listener:
    """The instance's single pub/sub subscriber; hands messages to ``on_message``."""

    def __init__(
        self,
        redis: Redis,
        control_channel: str,
        *,
        on_message: Callable[[str, bytes], None],
        on_connected: Callable[[bool], None],
        on_subscribed: Callable[[str], None],
        backoff_base_s: float,
        backoff_cap_s: float,
    ) -> None:
        self.redis = redis
        self.control_channel = control_channel
        self._on_message = on_message
        self._on_connected = on_connected
        self._on_subscribed = on_subscribed
        self._base = backoff_base_s
        self._cap = backoff_cap_s
        self._wanted: set[str] = set()
        self._changes = 0
        """Bumped by every (un)subscribe; the loop re-syncs when it moved."""
        self.connected = False
        self.reconnects = 0
        """Times the listener came back after losing Redis."""
        self.delays: list[float] = []
        """Back-off delays of the current outage (reset once a read succeeds)."""
        self._healthy = False
        self._confirmed: set[str] = set()
        """Channels Redis confirmed on the current connection."""
        self._waiters: dict[str, asyncio.Event] = {}

    def subscribe(self, channel: str) -> None:
        """Listen on ``channel`` from the next tick on."""
        if channel not in self._wanted:
            self._wanted.add(channel)
            self._changes += 1

    def unsubscribe(self, channel: str) -> None:
        """Stop listening on ``channel`` from the next tick on."""
        if channel in self._wanted:
            self._wanted.discard(channel)
            self._changes += 1
        self._waiters.pop(channel, None)

    def confirmed(self, channel: str) -> bool:
        """Redis has confirmed the subscription to ``channel`` on the current connection."""
        return channel in self._confirmed

    async def wait_subscribed(self, channel: str, timeout: float) -> bool:
        """Wait until Redis confirms ``channel`` (False after ``timeout``, e.g. Redis is down).

        A socket welcomed after this hears every event published from then on.
        """
        if channel in self._confirmed:
            return True
        event = self._waiters.setdefault(channel, asyncio.Event())
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            return False
        return True

    async def run(self) -> None:
        """Listen until cancelled, reconnecting after any failure (Redis or otherwise)."""
        attempt = 0
        while True:
            raise_if_cancelling()
            pubsub = self.redis.pubsub()
            watched = None
            self._healthy = False
            self._confirmed.clear()
            try:
                applied = self._changes
                current = set(self._wanted)  # a snapshot: joins may add channels while we await
                await pubsub.subscribe(self.control_channel, *current)
                # redis-py may reconnect this connection by itself (and resubscribe) inside a
                # read; wake-ups sent meanwhile are lost, so such a reconnect counts as ours.
                watched = pubsub.connection
                if watched is not None:
                    watched.register_connect_callback(self._reconnected)
                self.connected = True
                if attempt:
                    self.reconnects += 1
                    log.info("realtime listener reconnected", attempts=attempt)
                self._on_connected(attempt > 0)
                await self._listen(pubsub, current, applied)
            except Exception as exc:  # the listener must outlive any failure
                self.connected = False
                if self._healthy:  # it worked for a while: a new outage starts from the base
                    attempt = 0
                    self.delays.clear()
                attempt += 1
                delay = backoff_delay(attempt, self._base, self._cap)
                self.delays.append(delay)
                if isinstance(exc, RedisError | OSError):
                    log.warning(
                        "realtime listener lost Redis, retrying",
                        error=type(exc).__name__,
                        attempt=attempt,
                        delay_s=round(delay, 3),
                    )
                else:
                    log.exception("realtime listener failed, restarting", attempt=attempt)
                await asyncio.sleep(delay)
            finally:
                self.connected = False
                self._confirmed.clear()
                if watched is not None:
                    watched.deregister_connect_callback(self._reconnected)
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _reconnected(self, connection: object) -> None:
        self.reconnects += 1
        self._confirmed.clear()  # redis-py resubscribes; confirmations come again
        log.info("realtime listener reconnected in place")
        self._on_connected(True)

    async def _listen(self, pubsub: PubSub, current: set[str], applied: int) -> None:
        while True:
            raise_if_cancelling()
            if self._changes != applied:
                applied = self._changes
                wanted = set(self._wanted)  # a snapshot, for the same reason as in run()
                added, removed = wanted - current, current - wanted
                if removed:
                    await pubsub.unsubscribe(*removed)
                    self._confirmed.difference_update(removed)
                if added:
                    await pubsub.subscribe(*added)
                current.clear()
                current.update(wanted)
            message = await pubsub.get_message(timeout=TICK_S)
            self._healthy = True
            if message is None:
                continue
            kind = message.get("type")
            raw = message["channel"]
            channel = raw.decode() if isinstance(raw, bytes) else str(raw)
            if kind == "subscribe":
                self._confirm(channel)
            elif kind == "message" and isinstance(message["data"], bytes):
                self._on_message(channel, message["data"])

    def _confirm(self, channel: str) -> None:
        self._confirmed.add(channel)
        waiter = self._waiters.pop(channel, None)
        if waiter is not None:
            waiter.set()
        if channel != self.control_channel:
            self._on_subscribed(channel)  # catch up on what was stored before this point
