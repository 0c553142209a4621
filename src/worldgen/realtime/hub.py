"""The instance's hub: world rooms of local sockets, presence, fan-out and world events.

A message is validated (:mod:`~worldgen.realtime.protocol`), stored (``XADD``, idempotent by the
client id), acknowledged, then announced: the local room's pump is woken directly and other
instances through a pub/sub wake-up (:mod:`~worldgen.realtime.fanout`, carried by the instance's
:class:`~worldgen.store.pubsub.PubSub`). Rooms deliver from the
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
- A job's changes (announced by the job store on the world's channel, see
  :mod:`worldgen.store.jobs`) reach only the sockets of the job's owner, never other members.
- Every Redis failure is contained: a sender gets ``error``/``unavailable`` for its message (retry
  with the same id), pumps and the pub/sub listener retry with back-off, and the periodic
  maintenance (safety-net poll, presence sweep, world check, idle sockets, sessions that
  expired) converges whatever pub/sub missed; after a pub/sub reconnect it runs at once.
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

from worldgen._aio import raise_if_cancelling
from worldgen.errors import (
    CLOSE_GOING_AWAY,
    CLOSE_IDLE,
    CLOSE_NOT_FOUND,
    CLOSE_SIGNED_OUT,
    IdleTimeoutError,
)
from worldgen.realtime.connection import Connection, Transport
from worldgen.realtime.fanout import (
    AnySignal,
    CloseUserSignal,
    EventSignal,
    JobSignal,
    WakeSignal,
    parse_signal,
)
from worldgen.realtime.protocol import (
    ChatOut,
    EditOut,
    Limits,
    MarkerOut,
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
from worldgen.settings import RealtimeSettings
from worldgen.store.client import StorageError, Store
from worldgen.store.keys import valid_world_id
from worldgen.store.worlds import WorldRecord

log = structlog.get_logger("worldgen.realtime")

WorldEvent = Literal["renamed", "changed", "deleted"]
MessageGate = Callable[[User, str | None], Awaitable[None]]
"""Checked before a chat message or ping is stored; raises a ``WorldgenError`` to refuse it
(the app's gate: an account is needed, and the per-account rate limit)."""


class Hub:
    """Rooms, presence and fan-out of one app instance."""

    def __init__(
        self,
        store: Store,
        settings: RealtimeSettings,
        *,
        message_gate: MessageGate | None = None,
        instance_id: str | None = None,
        on_connections: Callable[[int], None] | None = None,
    ) -> None:
        self.settings = s = settings
        self.pubsub = store.pubsub
        """The instance's pub/sub (shared with the revocation bus); the app runs it."""
        self.keys = store.keys
        self.worlds = store.worlds
        self.instance_id = instance_id or secrets.token_hex(6)
        self.chat = store.chat
        self.presence = store.presence
        self.revocations = store.revocations
        """Told each maintenance round to close the sockets of sessions that expired."""
        self.rooms: dict[str, Room] = {}
        self.stats = HubStats()
        self._on_connections = on_connections
        self.message_gate = message_gate
        self.control_channel = store.keys.realtime_control()
        self.slots = asyncio.Semaphore(s.redis_concurrency)
        """Bounds the hub's Redis commands in flight (the pool is shared with HTTP routes)."""
        self.wake_payload = WakeSignal(o=self.instance_id).model_dump_json().encode()
        self._session = Session(self)
        self._maintain_now = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._main: list[asyncio.Task[None]] = []
        self._storage_down = False
        self._unwatch_connect: Callable[[], None] | None = None
        self.limits = Limits(
            rate_messages=s.rate_messages,
            rate_window_s=s.rate_window_s,
            max_frame_bytes=s.max_frame_bytes,
            heartbeat_s=s.heartbeat_s,
        )

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on the control channel, hear the pub/sub's reconnects, start maintenance."""
        if not self._main:
            control = self.control_channel
            self.pubsub.subscribe(control, self._on_control)
            self._unwatch_connect = self.pubsub.on_connect(self._on_pubsub_connected)
            self._main = [asyncio.create_task(self._maintenance(), name="realtime-maintenance")]

    async def stop(self) -> None:
        """Close every socket (1001), stop rooms and the maintenance loop, leave the pub/sub."""
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
            self.pubsub.unsubscribe(self.keys.world_channel(room.world_id))
        self.pubsub.unsubscribe(self.control_channel)
        if self._unwatch_connect is not None:
            self._unwatch_connect()
            self._unwatch_connect = None

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
        except StorageError:
            removed = None  # the sweep removes it within the presence timeout
        entry = PresenceEntry(session=conn.session, user=conn.user)
        room.left(entry)
        if removed is not None:
            await self.publish(room.world_id, PresenceOut(left=entry))
        if not room.conns and self.rooms.get(room.world_id) is room:
            del self.rooms[room.world_id]
            self.pubsub.unsubscribe(self.keys.world_channel(room.world_id))
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
            # once Redis confirms the channel, the room reads what was stored before that point
            self.pubsub.subscribe(
                self.keys.world_channel(world_id),
                lambda data: self._on_world_signal(world_id, data),
                on_confirmed=room.wake,
            )
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

    def _parse(self, data: bytes) -> AnySignal | None:
        """A signal from another instance (None: malformed, or our own echo)."""
        try:
            signal = parse_signal(data)
        except ValidationError:
            self.stats.bad_signals += 1
            return None
        return None if signal.o == self.instance_id else signal

    def _on_control(self, data: bytes) -> None:
        signal = self._parse(data)
        if isinstance(signal, CloseUserSignal):
            self._close_user_here(signal.user_id, signal.code, signal.reason)

    def _on_world_signal(self, world_id: str, data: bytes) -> None:
        room = self.rooms.get(world_id)
        signal = self._parse(data) if room is not None else None
        if room is None or signal is None or isinstance(signal, CloseUserSignal):
            return
        if isinstance(signal, WakeSignal):
            room.wake()
            return
        if isinstance(signal, JobSignal):  # the job's owner only, never other members
            room.send_to_user(signal.owner, dump(signal.m))
            return
        event = signal.m
        if isinstance(event, EditOut | MarkerOut):
            room.broadcast(dump(event))
            return
        if isinstance(event, PresenceOut):
            if event.joined is not None:
                room.joined(event.joined)
            elif event.left is not None:
                room.left(event.left)
        else:
            self._apply_world(room, event)

    def _on_pubsub_connected(self, reconnected: bool) -> None:
        """Every room re-reads its stream; after a loss, maintenance runs at once too (presence
        and world events published while the subscriber was away were lost)."""
        for room in self.rooms.values():
            room.wake()
        if reconnected:
            self._maintain_now.set()

    def _apply_world(self, room: Room, event: WorldOut) -> None:
        if event.event == "renamed":
            if event.name is None or event.name == room.name:
                return
            room.name = event.name
            room.broadcast(dump(event))
            return
        if event.event == "changed":  # who may stay is the access watch's call, not the hub's
            room.broadcast(dump(event))
            return
        if room.closing:
            return
        room.closing = True
        room.broadcast(dump(event))
        for conn in list(room.conns.values()):
            self._spawn(conn.close(CLOSE_NOT_FOUND, "world deleted"))

    async def world_event(
        self,
        world_id: str,
        event: WorldEvent,
        *,
        name: str | None = None,
        visibility: Literal["public", "private"] | None = None,
        version: int | None = None,
    ) -> None:
        """Tell every connected client of the world, on every instance (never raises).

        Called by the HTTP routes after a rename, a visibility change or a delete succeeded. If
        the publish fails, the instances' periodic world check still delivers renames and
        deletions within a few seconds.
        """
        if not valid_world_id(world_id):
            return
        message = WorldOut(
            event=event, world_id=world_id, name=name, visibility=visibility, version=version
        )
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
                await self.pubsub.publish(self.control_channel, signal.model_dump_json())
        except StorageError as exc:
            log.warning("realtime close_user not published", error=type(exc).__name__)

    def _close_user_here(self, user_id: str, code: int, reason: str) -> None:
        for room in self.rooms.values():
            for conn in list(room.conns.values()):
                if conn.user.id == user_id:
                    self._spawn(conn.close(code, reason))

    async def edit_event(self, world_id: str, event: EditOut | MarkerOut) -> None:
        """Tell every connected client of the world, on every instance, of an applied edit or
        a marker change (never raises; a lost publish only delays other instances' viewers
        until they re-read the log)."""
        if not valid_world_id(world_id):
            return
        room = self.rooms.get(world_id)
        if room is not None:
            room.broadcast(dump(event))
        await self.publish(world_id, event)

    async def publish(
        self, world_id: str, event: PresenceOut | WorldOut | EditOut | MarkerOut
    ) -> None:
        """Send an ephemeral event to the other instances (lost if Redis is down: never raises)."""
        payload = EventSignal(o=self.instance_id, m=event).model_dump_json()
        try:
            async with self.slots:
                await self.pubsub.publish(self.keys.world_channel(world_id), payload)
        except StorageError as exc:
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
            except StorageError as exc:
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
        """One round: close sockets whose session expired, poll streams, close idle sockets,
        sweep presence, check the worlds."""
        if self.rooms:
            async with self.slots:
                await self.revocations.sweep_sessions()
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
