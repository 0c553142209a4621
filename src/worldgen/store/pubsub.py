"""The instance's one Redis pub/sub connection: every subscription and every publish go here.

Real-time fan-out (:mod:`worldgen.realtime.hub`: world channels and the control channel) and the
revocation bus (:class:`worldgen.store.sessions.Revocations`) share one :class:`PubSub`, so an
app instance holds one subscriber connection whatever it listens to, and one implementation of
recovery.

Invariants:

- One task (:meth:`PubSub.run`) owns the subscriber connection. Subscription changes made by
  anyone are applied by that loop within one tick (:data:`TICK_S`), against a snapshot of the
  wanted set, so a channel added while a ``SUBSCRIBE`` is in flight is never left out.
- When Redis goes away the loop reconnects by itself with jittered exponential back-off
  (bounded by ``backoff_cap_s``, every attempt logged) and re-subscribes to every wanted channel.
  redis-py may also reconnect the connection in place inside a read; that counts as a reconnect.
- Pub/sub is lossy: whatever was published while the subscriber was away is gone. After every
  reconnect each :meth:`PubSub.on_connect` callback runs with ``reconnected=True`` so its owner
  can re-check the state the lost messages would have changed (rooms re-read their streams, the
  revocation bus re-checks every watched session and access).
- A channel's handler runs on the loop; a handler that raises is logged and the listener goes on.

Payloads are bytes; their owners validate them (JSON by pydantic, never pickle).

**On a Redis Cluster** every channel is a *shard channel*: published with ``SPUBLISH`` and heard
with ``SSUBSCRIBE`` on the master that owns the channel's slot (a world's channel carries the
world's hash tag, so its wake-ups travel on the shard of its chat stream; the few global channels
each live on one shard). Classic ``PUBLISH`` would be broadcast over the cluster bus to every
node; sharded pub/sub keeps fan-out traffic on one shard, so it grows with the cluster. redis-py's
cluster pub/sub keeps one connection per master holding a subscribed channel; the loop reads them
all. A failover drops a master's connection: the loop then refreshes the cluster's slot map,
reconnects, re-subscribes every channel on its new owner, and tells the owners (as after a
restart of a standalone server).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub as RedisPubSub
from redis.asyncio.cluster import ClusterPubSub, RedisCluster
from redis.exceptions import RedisError

from worldgen._aio import backoff_delay, raise_if_cancelling

__all__ = ["STOP_TIMEOUT_S", "TICK_S", "ConnectCallback", "Handler", "PubSub"]

TICK_S: Final = 0.05
"""Longest wait for a pub/sub message before the loop applies subscription changes."""
STOP_TIMEOUT_S: Final = 5.0
"""Longest :meth:`PubSub.stop` waits for the loop to end."""

Handler = Callable[[bytes], None]
"""Receives one message published on a channel."""
ConnectCallback = Callable[[bool], None]
"""Told of every (re)connection of the subscriber: True when it follows a loss (re-check state)."""

_log = structlog.get_logger("worldgen.store")


@dataclass(slots=True)
class _Channel:
    handler: Handler
    on_confirmed: Callable[[], None] | None


async def _cluster_map(cluster: RedisCluster, *, refresh: bool) -> None:
    """Load the cluster's slot map (a shard channel's owner comes from it); after a loss, read
    it afresh, since a replica may have taken over the master that was lost."""
    if refresh:
        await cluster.nodes_manager.initialize()
    else:
        await cluster.initialize()


class PubSub:
    """Subscribe handlers to channels, publish to channels, survive Redis restarts."""

    def __init__(
        self, redis: Redis, *, backoff_base_s: float = 0.1, backoff_cap_s: float = 5.0
    ) -> None:
        if not 0 < backoff_base_s <= backoff_cap_s:
            raise ValueError("back-off must satisfy 0 < backoff_base_s <= backoff_cap_s")
        self._redis = redis
        self._cluster: RedisCluster | None = redis if isinstance(redis, RedisCluster) else None
        """The cluster client when on a Redis Cluster (sharded pub/sub), else None."""
        self._base = backoff_base_s
        self._cap = backoff_cap_s
        self._channels: dict[str, _Channel] = {}
        self._changes = 0
        """Bumped by every (un)subscribe; the loop re-syncs when it moved."""
        self._on_connect: list[ConnectCallback] = []
        self._confirmed: set[str] = set()
        """Channels Redis confirmed on the current connection."""
        self._waiters: dict[str, asyncio.Event] = {}
        self._healthy = False
        self._stopped = False
        self._task: asyncio.Task[None] | None = None
        self._watched: list[Any] = []
        """Connections whose in-place reconnects are reported (see :meth:`_watch`)."""
        self.connected = False
        """True while the subscriber connection is up."""
        self.reconnects = 0
        """Times the subscriber came back after losing Redis."""
        self.delays: list[float] = []
        """Back-off delays of the current outage (reset once a read succeeds)."""

    # -- publishing --------------------------------------------------------------------------

    async def publish(self, channel: str, payload: str | bytes) -> int:
        """Publish ``payload``; the number of subscribers (all instances) that received it.

        On a cluster: ``SPUBLISH``, and the count is of the subscribers of the channel's shard
        (which are all of them: every instance listens there).

        Raises :data:`~worldgen.store.client.StorageError` when Redis is unreachable.
        """
        if self._cluster is not None:
            return int(await self._cluster.spublish(channel, payload))
        return int(await self._redis.publish(channel, payload))

    # -- subscribing -------------------------------------------------------------------------

    def subscribe(
        self, channel: str, handler: Handler, *, on_confirmed: Callable[[], None] | None = None
    ) -> None:
        """Deliver ``channel``'s messages to ``handler`` from the next tick on.

        ``on_confirmed`` runs each time Redis confirms the subscription (first time and after a
        reconnect): from then on nothing published on the channel is missed, so it is where an
        owner catches up on what came before.
        """
        if channel not in self._channels:
            self._changes += 1
        self._channels[channel] = _Channel(handler, on_confirmed)

    def unsubscribe(self, channel: str) -> None:
        """Stop listening on ``channel`` from the next tick on."""
        if self._channels.pop(channel, None) is not None:
            self._changes += 1
        self._waiters.pop(channel, None)

    def on_connect(self, callback: ConnectCallback) -> Callable[[], None]:
        """Run ``callback(reconnected)`` on every connection of the subscriber (False for the
        first one); returns the function that removes it."""
        self._on_connect.append(callback)
        return lambda: self._on_connect.remove(callback) if callback in self._on_connect else None

    def confirmed(self, channel: str) -> bool:
        """Redis has confirmed the subscription to ``channel`` on the current connection."""
        return channel in self._confirmed

    async def wait_subscribed(self, channel: str, timeout: float) -> bool:  # noqa: ASYNC109  False on time-out, by design
        """Wait until Redis confirms ``channel`` (False after ``timeout``, e.g. Redis is down).

        Whoever waits for this hears every message published from then on.
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

    # -- the loop ----------------------------------------------------------------------------

    def start(self) -> None:
        """Run :meth:`run` in a task of the current loop (once)."""
        if self._task is None:
            self._stopped = False
            self._task = asyncio.create_task(self.run(), name="pubsub-listener")

    async def stop(self) -> None:
        """End the task started by :meth:`start` (bounded by :data:`STOP_TIMEOUT_S`)."""
        task, self._task = self._task, None
        self._stopped = True
        if task is None:
            return
        task.cancel()
        _, pending = await asyncio.wait({task}, timeout=STOP_TIMEOUT_S)
        if pending:
            _log.warning("pub/sub listener did not stop in time")

    async def run(self) -> None:
        """Listen until cancelled or stopped, reconnecting after any failure (Redis's or not).

        The stop flag is checked at every step too, so a cancellation swallowed inside the
        client library cannot keep the loop alive.
        """
        attempt = 0
        while not self._stopped:
            raise_if_cancelling()
            pubsub = self._redis.pubsub()
            self._healthy = False
            self._confirmed.clear()
            try:
                while not self._channels:  # nothing to listen to yet
                    if self._stopped:
                        return
                    await asyncio.sleep(TICK_S)
                if self._cluster is not None:
                    await _cluster_map(self._cluster, refresh=attempt > 0)
                applied = self._changes
                current = set(self._channels)  # a snapshot: owners may add channels meanwhile
                await self._subscribe(pubsub, current)
                # redis-py may reconnect this connection by itself (and resubscribe) inside a
                # read; messages sent meanwhile are lost, so such a reconnect counts as ours.
                self._watch(pubsub)
                self.connected = True
                if attempt:
                    self.reconnects += 1
                    _log.info("pub/sub listener reconnected", attempts=attempt)
                self._notify(attempt > 0)
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
                    _log.warning(
                        "pub/sub listener lost Redis, retrying",
                        error=type(exc).__name__,
                        attempt=attempt,
                        delay_s=round(delay, 3),
                    )
                else:
                    _log.exception("pub/sub listener failed, restarting", attempt=attempt)
                await asyncio.sleep(delay)
            finally:
                self.connected = False
                self._confirmed.clear()
                for connection in self._watched:
                    connection.deregister_connect_callback(self._reconnected_in_place)
                self._watched.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _subscribe(self, pubsub: RedisPubSub, channels: set[str]) -> None:
        if isinstance(pubsub, ClusterPubSub):
            await pubsub.ssubscribe(*channels)
        else:
            await pubsub.subscribe(*channels)

    async def _unsubscribe(self, pubsub: RedisPubSub, channels: set[str]) -> None:
        if isinstance(pubsub, ClusterPubSub):
            await pubsub.sunsubscribe(*channels)
        else:
            await pubsub.unsubscribe(*channels)

    def _watch(self, pubsub: RedisPubSub) -> None:
        """Hear of redis-py reconnecting any of the subscriber's connections in place (one per
        master holding a channel, on a cluster; new ones appear as channels are added)."""
        nodes = (
            list(pubsub.node_pubsub_mapping.values())
            if isinstance(pubsub, ClusterPubSub)
            else [pubsub]
        )
        for connection in (n.connection for n in nodes):
            if connection is not None and connection not in self._watched:
                connection.register_connect_callback(self._reconnected_in_place)
                self._watched.append(connection)

    def _reconnected_in_place(self, connection: object) -> None:
        self.reconnects += 1
        self._confirmed.clear()  # redis-py resubscribes; confirmations come again
        _log.info("pub/sub listener reconnected in place")
        self._notify(True)

    def _notify(self, reconnected: bool) -> None:
        for callback in list(self._on_connect):
            try:
                callback(reconnected)
            except Exception:  # one broken owner must not stop the others
                _log.exception("pub/sub connect callback failed")

    async def _listen(self, pubsub: RedisPubSub, current: set[str], applied: int) -> None:
        while not self._stopped:
            raise_if_cancelling()
            if self._changes != applied:
                applied = self._changes
                wanted = set(self._channels)  # a snapshot, for the same reason as in run()
                added, removed = wanted - current, current - wanted
                if removed:
                    await self._unsubscribe(pubsub, removed)
                    self._confirmed.difference_update(removed)
                if added:
                    await self._subscribe(pubsub, added)
                    self._watch(pubsub)
                current.clear()
                current.update(wanted)
            if not current:  # nothing to read from (redis-py refuses to read unsubscribed)
                await asyncio.sleep(TICK_S)
                self._healthy = True
                continue
            if isinstance(pubsub, ClusterPubSub):
                message = await pubsub.get_sharded_message(timeout=TICK_S / 4)
            else:
                message = await pubsub.get_message(timeout=TICK_S)
            self._healthy = True
            if message is None:
                continue
            kind = message.get("type")
            raw = message["channel"]
            channel = raw.decode() if isinstance(raw, bytes) else str(raw)
            if kind in ("subscribe", "ssubscribe"):
                self._confirm(channel)
            elif kind in ("message", "smessage") and isinstance(message["data"], bytes):
                self._deliver(channel, message["data"])
            elif kind == "sunsubscribe" and channel in self._channels:
                # the server dropped a channel we still want (its slot moved): start over
                raise ConnectionError(f"shard channel {channel} moved")

    def _deliver(self, channel: str, data: bytes) -> None:
        entry = self._channels.get(channel)
        if entry is None:
            return
        try:
            entry.handler(data)
        except Exception:
            _log.exception("pub/sub handler failed", channel=channel)

    def _confirm(self, channel: str) -> None:
        self._confirmed.add(channel)
        waiter = self._waiters.pop(channel, None)
        if waiter is not None:
            waiter.set()
        entry = self._channels.get(channel)
        if entry is not None and entry.on_confirmed is not None:
            try:
                entry.on_confirmed()
            except Exception:
                _log.exception("pub/sub confirmation callback failed", channel=channel)
