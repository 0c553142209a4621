"""The instance's hub: world rooms of local sockets, presence, fan-out and world events.

A message is validated (:mod:`~worldgen.realtime.protocol`), stored (``XADD``, idempotent by the
client id), acknowledged, then announced: the local room's pump is woken directly and other
instances through a pub/sub wake-up (:mod:`~worldgen.realtime.fanout`). Rooms deliver from the
stream, so every socket in a world sees the same messages in the same order whichever instance
stored them.

Each socket is served by :class:`~worldgen.realtime.session.Session` (hello, join, messages);
the hub owns what sockets share. Invariants:

- One :class:`Room` per world with local sockets; created with the first socket (its channel
  subscribed), dropped with the last (unsubscribed).
- A connection is registered in its room before any await of its join, so a room is never
  dropped under a joining socket.
- Redis commands from the hub are bounded by a semaphore (``redis_concurrency``), so a burst of
  joins cannot exhaust the shared connection pool.
- Every Redis failure is contained: a sender gets ``error``/``unavailable`` for its message (retry
  with the same id), pumps and the listener retry with back-off, and the periodic maintenance
  (safety-net poll, presence sweep, world check, idle sockets) converges whatever pub/sub missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Literal

import structlog
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from worldgen.errors import (
    CLOSE_GOING_AWAY,
    CLOSE_IDLE,
    CLOSE_NOT_FOUND,
    CLOSE_SIGNED_OUT,
    IdleTimeoutError,
)
from worldgen.realtime._aio import raise_if_cancelling
from worldgen.realtime.config import RealtimeSettings
from worldgen.realtime.connection import Connection, Transport
from worldgen.realtime.fanout import (
    CloseUserSignal,
    EventSignal,
    Listener,
    WakeSignal,
    parse_signal,
)
from worldgen.realtime.protocol import (
    ChatOut,
    Limits,
    PingOut,
    PresenceEntry,
    PresenceOut,
    User,
    WorldOut,
    dump,
    entry_message,
)
from worldgen.realtime.room import Room
from worldgen.realtime.session import Session, error_frame
from worldgen.realtime.stats import HubStats
from worldgen.store.chat import (
    ChatStore,
)
from worldgen.store.keys import Keys, valid_world_id
from worldgen.store.presence import PresenceStore
from worldgen.store.worlds import WorldRecord, WorldRepo

log = structlog.get_logger("worldgen.realtime")

WorldEvent = Literal["renamed", "deleted"]


class Hub:
    """Rooms, presence and fan-out of one app instance."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        worlds: WorldRepo,
        settings: RealtimeSettings | None = None,
        *,
        instance_id: str | None = None,
        on_connections: Callable[[int], None] | None = None,
    ) -> None:
        self.settings = s = settings if settings is not None else RealtimeSettings()
        self.redis = redis
        self.keys = keys
        self.worlds = worlds
        self.instance_id = instance_id or secrets.token_hex(6)
        self.chat = ChatStore(redis, keys, maxlen=s.chat_maxlen, dedup_ttl_s=s.dedup_ttl_s)
        self.presence = PresenceStore(redis, keys, timeout_s=s.presence_timeout_s)
        self.rooms: dict[str, Room] = {}
        self.stats = HubStats()
        self._on_connections = on_connections
        self.message_gate: Callable[[User, str | None], Awaitable[None]] | None = None
        """Checked before a chat message or ping is stored; raises a ``WorldgenError`` to refuse
        it (the app sets the account check and the per-account rate limit here)."""
        self._channels: dict[str, str] = {}
        self.slots = asyncio.Semaphore(s.redis_concurrency)
        """Bounds the hub's Redis commands in flight (the pool is shared with HTTP routes)."""
        self.wake_payload = WakeSignal(o=self.instance_id).model_dump_json().encode()
        self._session = Session(self)
        self._maintain_now = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._main: list[asyncio.Task[None]] = []
        self._storage_down = False
        self.listener = Listener(
            redis,
            keys.realtime_control(),
            on_message=self._on_signal,
            on_connected=self._on_listener_connected,
            on_subscribed=self._on_subscribed,
            backoff_base_s=s.backoff_base_s,
            backoff_cap_s=s.backoff_cap_s,
        )
        self.limits = Limits(
            rate_messages=s.rate_messages,
            rate_window_s=s.rate_window_s,
            max_frame_bytes=s.max_frame_bytes,
            heartbeat_s=s.heartbeat_s,
        )

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the pub/sub listener and the maintenance loop."""
        if not self._main:
            self._main = [
                asyncio.create_task(self.listener.run(), name="realtime-listener"),
                asyncio.create_task(self._maintenance(), name="realtime-maintenance"),
            ]

    async def stop(self) -> None:
        """Close every socket (1001), stop rooms, the listener and the maintenance loop."""
        conns = [c for room in self.rooms.values() for c in room.conns.values()]
        await asyncio.gather(
            *(c.close(CLOSE_GOING_AWAY, "server shutting down") for c in conns),
            return_exceptions=True,
        )
        tasks = [*self._main, *self._tasks]
        self._main = []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        for room in list(self.rooms.values()):
            await room.stop()

    @property
    def connection_count(self) -> int:
        """Sockets currently served by this instance."""
        return self.stats.connections

    # --- one connection ----------------------------------------------------------------------

    async def serve(
        self,
        transport: Transport,
        world_id: str,
        *,
        user: User | None = None,
        can_view: Callable[[WorldRecord], Awaitable[bool]] | None = None,
    ) -> None:
        """Run one accepted socket until it closes (see :mod:`~worldgen.realtime.session`).

        ``user`` is the signed-in user when there is one; otherwise the connection is a guest
        whose identity comes from its ``hello``. ``can_view`` (the app's authorisation) is asked
        where the world's existence is checked: a world it refuses is "no such world".
        """
        await self._session.run(transport, world_id, user=user, can_view=can_view)

    async def release(self, room: Room, conn: Connection) -> None:
        """A socket left: forget it, announce it, drop its room with the last socket."""
        room.conns.pop(conn.session, None)
        conn.ready = False
        await conn.finish()
        self.count(-1)
        if conn.dropped_slow:
            self.stats.dropped_slow += 1
        try:
            async with self.slots:
                removed = await self.presence.leave(room.world_id, conn.session)
        except RedisError:
            removed = None  # the sweep removes it within the presence timeout
        entry = PresenceEntry(session=conn.session, user=conn.user)
        room.left(entry)
        if removed is not None:
            await self.publish(room.world_id, PresenceOut(left=entry))
        if not room.conns and self.rooms.get(room.world_id) is room:
            del self.rooms[room.world_id]
            channel = self.keys.world_channel(room.world_id)
            self._channels.pop(channel, None)
            self.listener.unsubscribe(channel)
            await room.stop()

    # --- rooms, signals, world events --------------------------------------------------------

    def room_for(self, world_id: str, name: str) -> Room:
        """The world's room, created (and its channel subscribed) with its first socket."""
        room = self.rooms.get(world_id)
        if room is None:
            s = self.settings
            room = Room(
                world_id,
                name,
                chat=self.chat,
                slots=self.slots,
                page=s.replay_page,
                backoff=(s.backoff_base_s, s.backoff_cap_s),
                on_delivered=self._delivered,
            )
            self.rooms[world_id] = room
            channel = self.keys.world_channel(world_id)
            self._channels[channel] = world_id
            self.listener.subscribe(channel)
            room.start()
        return room

    def _delivered(self, frames: int, age_s: float) -> None:
        self.stats.delivered += frames
        if frames:
            self.stats.observe_delivery(age_s)

    def count(self, delta: int) -> None:
        """Sockets served went up or down by ``delta`` (feeds the connections gauge)."""
        self.stats.connections += delta
        if delta > 0:
            self.stats.accepted += delta
        if self._on_connections is not None:
            self._on_connections(self.stats.connections)

    def _on_signal(self, channel: str, data: bytes) -> None:
        world_id = self._channels.get(channel)
        room = self.rooms.get(world_id) if world_id is not None else None
        control = channel == self.listener.control_channel
        if room is None and not control:
            return
        try:
            signal = parse_signal(data)
        except ValidationError:
            self.stats.bad_signals += 1
            return
        if signal.o == self.instance_id:
            return
        if isinstance(signal, CloseUserSignal):
            if control:
                self._close_user_here(signal.user_id, signal.code, signal.reason)
            return
        if room is None:
            return
        if isinstance(signal, WakeSignal):
            room.wake()
            return
        event = signal.m
        if isinstance(event, PresenceOut):
            if event.joined is not None:
                room.joined(event.joined)
            elif event.left is not None:
                room.left(event.left)
        else:
            self._apply_world(room, event)

    def _on_listener_connected(self, reconnected: bool) -> None:
        for room in self.rooms.values():
            room.wake()
        if reconnected:
            self._maintain_now.set()

    def _on_subscribed(self, channel: str) -> None:
        world_id = self._channels.get(channel)
        room = self.rooms.get(world_id) if world_id is not None else None
        if room is not None:
            room.wake()  # entries stored before the subscription took effect

    def _apply_world(self, room: Room, event: WorldOut) -> None:
        if event.event == "renamed":
            if event.name is None or event.name == room.name:
                return
            room.name = event.name
            room.broadcast(dump(event))
            return
        if room.closing:
            return
        room.closing = True
        room.broadcast(dump(event))
        for conn in list(room.conns.values()):
            self._spawn(conn.close(CLOSE_NOT_FOUND, "world deleted"))

    async def world_event(
        self, world_id: str, event: WorldEvent, *, name: str | None = None
    ) -> None:
        """Tell every connected client of the world, on every instance (never raises).

        Called by the HTTP routes after a rename or delete succeeded. If the publish fails, the
        instances' periodic world check still delivers the event within a few seconds.
        """
        if not valid_world_id(world_id):
            return
        message = WorldOut(event=event, world_id=world_id, name=name)
        room = self.rooms.get(world_id)
        if room is not None:
            self._apply_world(room, message)
        await self.publish(world_id, message)

    async def close_user(
        self, user_id: str, *, code: int = CLOSE_SIGNED_OUT, reason: str = "signed out"
    ) -> None:
        """Close every socket of ``user_id`` on every instance (e.g. after a sign-out).

        Local sockets close at once; other instances hear it on the control channel (if that
        publish fails, their sockets stay until the client reconnects and is checked again).
        """
        self._close_user_here(user_id, code, reason)
        signal = CloseUserSignal(o=self.instance_id, user_id=user_id, code=code, reason=reason)
        try:
            async with self.slots:
                await self.redis.publish(self.listener.control_channel, signal.model_dump_json())
        except RedisError as exc:
            log.warning("realtime close_user not published", error=type(exc).__name__)

    def _close_user_here(self, user_id: str, code: int, reason: str) -> None:
        for room in self.rooms.values():
            for conn in list(room.conns.values()):
                if conn.user.id == user_id:
                    self._spawn(conn.close(code, reason))

    async def publish(self, world_id: str, event: PresenceOut | WorldOut) -> None:
        """Send an ephemeral event to the other instances (lost if Redis is down: never raises)."""
        payload = EventSignal(o=self.instance_id, m=event).model_dump_json()
        try:
            async with self.slots:
                await self.redis.publish(self.keys.world_channel(world_id), payload)
        except RedisError as exc:
            log.info("realtime event not published", error=type(exc).__name__, world=world_id)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- maintenance -------------------------------------------------------------------------

    async def _maintenance(self) -> None:
        while True:
            raise_if_cancelling()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.maintenance_s):
                    await self._maintain_now.wait()
            self._maintain_now.clear()
            try:
                await self.maintain()
            except RedisError as exc:
                if not self._storage_down:
                    log.warning("realtime maintenance cannot reach Redis", error=type(exc).__name__)
                self._storage_down = True
            except Exception:  # a bug must not end the safety net for good
                log.exception("realtime maintenance failed")
            else:
                if self._storage_down:
                    log.info("realtime maintenance reaches Redis again")
                self._storage_down = False

    async def maintain(self) -> None:
        """One round: poll streams, close idle sockets, sweep presence, check the worlds."""
        timeout = self.settings.presence_timeout_s
        now = time.monotonic()
        for room in list(self.rooms.values()):
            room.wake()
            for conn in list(room.conns.values()):
                if conn.ready and not conn.closed and now - conn.last_seen > timeout:
                    idle = IdleTimeoutError()
                    conn.push(error_frame(idle))
                    self._spawn(conn.close(CLOSE_IDLE, idle.error_code))
            async with self.slots:
                snap = await self.presence.sync(room.world_id)
            if not snap.world_exists:
                self._apply_world(room, WorldOut(event="deleted", world_id=room.world_id))
                continue
            if snap.world_name is not None and snap.world_name != room.name:
                self._apply_world(
                    room, WorldOut(event="renamed", world_id=room.world_id, name=snap.world_name)
                )
            room.reconcile(
                {sid: PresenceEntry(session=sid, user=a) for sid, a in snap.present.items()}
            )
            for sid, author in snap.gone.items():
                await self.publish(
                    room.world_id, PresenceOut(left=PresenceEntry(session=sid, user=author))
                )

    # --- HTTP history ------------------------------------------------------------------------

    async def history(
        self, world_id: str, *, before: str | None = None, limit: int = 50
    ) -> list[ChatOut | PingOut]:
        """Up to ``limit`` messages older than ``before`` (newest if None), oldest first."""
        async with self.slots:
            entries = await self.chat.history(world_id, before=before, limit=limit)
        return [entry_message(e) for e in entries]
