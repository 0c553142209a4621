"""One connection's life on a hub: hello, join (history or replay), messages, departure.

The sequence is fixed: the world must exist, the first frame must be ``hello`` (within
``hello_timeout_s``), then the join registers the socket in its room *before* any await (so the
room cannot be dropped under it), waits until the instance hears the world's channel, marks the
socket present, fixes its history boundary under the room's lock and sends the welcome. Then
every frame is size-checked, rate-limited, validated and handled in order; a message is
acknowledged only after the store returned. Errors map to frames and close codes through
the classes of :mod:`worldgen.errors` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from worldgen.errors import (
    CLOSE_TRY_LATER,
    FloodError,
    FrameTooLargeError,
    HelloTimeoutError,
    ProtocolError,
    StorageUnavailableError,
    TransportClosedError,
    WorldgenError,
    WorldNotFoundError,
)
from worldgen.realtime.connection import Connection, Transport
from worldgen.realtime.protocol import (
    Ack,
    ChatIn,
    ErrorOut,
    GuestIdentity,
    HeartbeatIn,
    HeartbeatOut,
    HelloIn,
    PingIn,
    PresenceEntry,
    PresenceOut,
    User,
    Welcome,
    WorldInfo,
    You,
    dump,
    entry_message,
    parse_client_message,
)
from worldgen.realtime.ratelimit import SlidingWindow
from worldgen.realtime.room import Room
from worldgen.store.chat import ChatRecord, PingRecord, parse_stream_id
from worldgen.store.client import StorageError
from worldgen.store.keys import valid_world_id
from worldgen.store.worlds import WorldRecord

if TYPE_CHECKING:
    from worldgen.realtime.hub import Hub

SUBSCRIBE_WAIT_S = 2.0
"""Longest a join waits for the instance's subscription to the world's channel."""


def guest_user(identity: GuestIdentity | None) -> User:
    """The guest behind a connection: the identity the browser kept, or a fresh one."""
    if identity is not None:
        return User(id=identity.id, name=identity.name, guest=True)
    guest_id = "g-" + secrets.token_hex(8)
    return User(id=guest_id, name=f"guest-{guest_id[2:6]}", guest=True)


def error_frame(err: WorldgenError) -> str:
    """The ``error`` frame of ``err``."""
    return dump(ErrorOut(code=err.error_code, message=err.message, id=err.ref))


class Session:
    """Serves sockets for one hub (stateless itself: the state lives in rooms and connections)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def run(
        self,
        transport: Transport,
        world_id: str,
        *,
        user: User | None = None,
        can_view: Callable[[WorldRecord], Awaitable[bool]] | None = None,
    ) -> None:
        """Run one accepted socket until it closes: hello, welcome, then its messages.

        ``user`` is the signed-in user when there is one; otherwise the connection is a guest
        whose identity comes from its ``hello``. A world ``can_view`` refuses is "no such world".
        """
        s = self.hub.settings
        frames = SlidingWindow(s.rate_frames, s.rate_window_s)
        try:
            world_name = await self._world_name(world_id, can_view)
            hello = await self._hello(transport, frames)
        except TransportClosedError:
            return
        except WorldgenError as err:
            await self._refuse(transport, err)
            return
        conn = Connection(
            transport,
            world_id=world_id,
            session=secrets.token_urlsafe(9),
            user=user if user is not None else guest_user(hello.guest),
            settings=s,
            messages=SlidingWindow(s.rate_messages, s.rate_window_s),
            frames=frames,
        )
        room = self.hub.room_for(world_id, world_name)
        room.conns[conn.session] = conn
        self.hub.count(+1)
        try:
            try:
                await self._join(room, conn, hello)
            except (TransportClosedError, TimeoutError):
                return
            except WorldgenError as err:
                await self._refuse(transport, err)
                conn.closed = True
                return
            conn.start()
            await self._receive(room, conn)
        finally:
            await self.hub.release(room, conn)

    async def _world_name(
        self, world_id: str, can_view: Callable[[WorldRecord], Awaitable[bool]] | None = None
    ) -> str:
        if not valid_world_id(world_id):
            raise WorldNotFoundError("no such world")
        try:
            async with self.hub.slots:
                record = await self.hub.worlds.get(world_id)
        except StorageError:
            raise StorageUnavailableError("storage unavailable, retry") from None
        if record is None:
            raise WorldNotFoundError("no such world")
        try:
            visible = can_view is None or await can_view(record)
        except StorageError:
            raise StorageUnavailableError("storage unavailable, retry") from None
        if not visible:
            raise WorldNotFoundError("no such world")  # exactly what an unknown world gets
        return record.name

    async def _hello(self, transport: Transport, frames: SlidingWindow) -> HelloIn:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.hub.settings.hello_timeout_s
        while True:
            remaining = deadline - loop.time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                async with asyncio.timeout(remaining):
                    frame = await transport.receive()
            except TimeoutError:
                raise HelloTimeoutError("no hello received in time") from None
            if frame is None:
                raise TransportClosedError
            try:
                message = self._parse(frame, frames)
                if not isinstance(message, HelloIn):
                    raise ProtocolError('the first message must be "hello"', code="hello_required")
            except WorldgenError as err:
                if err.close_code is not None:
                    raise
                await transport.send(error_frame(err))
                continue
            return message

    async def _refuse(self, transport: Transport, err: WorldgenError) -> None:
        """Tell a client why, then close (before or during its join)."""
        self.hub.stats.errors += 1
        with contextlib.suppress(TransportClosedError, TimeoutError):
            async with asyncio.timeout(self.hub.settings.send_timeout_s):
                await transport.send(error_frame(err))
        await transport.close(err.close_code or CLOSE_TRY_LATER, err.error_code)

    async def _join(self, room: Room, conn: Connection, hello: HelloIn) -> None:
        s = self.hub.settings
        world_id = room.world_id
        # Welcome only once this instance hears the world's channel: from then on no event can
        # slip between the welcome and the live feed (if Redis is down, the join fails below).
        await self.hub.pubsub.wait_subscribed(
            self.hub.keys.world_channel(world_id), SUBSCRIBE_WAIT_S
        )
        try:
            async with self.hub.slots:
                added = await self.hub.presence.heartbeat(world_id, conn.session, conn.user)
            if added is None:
                raise WorldNotFoundError("no such world")
            async with room.lock:
                boundary = await room.boundary()
                floor = parse_stream_id(boundary)
                if hello.last_id is not None:
                    floor = max(floor, parse_stream_id(hello.last_id))
                conn.floor = floor
                conn.ready = True
            async with self.hub.slots:
                snap = await self.hub.presence.sync(world_id)
            if hello.last_id is None:
                if s.history:
                    async with self.hub.slots:
                        entries = await self.hub.chat.history(
                            world_id, upto=boundary, limit=s.history
                        )
                else:
                    entries = []
                more = False
            else:
                entries, more, cursor = await self._replay(world_id, hello.last_id, boundary)
        except StorageError:
            raise StorageUnavailableError("storage unavailable, retry") from None
        me = PresenceEntry(session=conn.session, user=conn.user)
        present = {sid: PresenceEntry(session=sid, user=a) for sid, a in snap.present.items()}
        present[conn.session] = me
        room.reconcile(present, exclude=conn)
        welcome = Welcome(
            you=You(**conn.user.model_dump(), session=conn.session),
            world=WorldInfo(id=world_id, name=room.name),
            presence=list(present.values()),
            history=[entry_message(e) for e in entries],
            more=more,
            limits=self.hub.limits,
        )
        await conn.send_now(dump(welcome))
        if more:
            await self._send_rest(conn, cursor, boundary)
        if added:
            await self.hub.publish(world_id, PresenceOut(joined=me))
        for sid, author in snap.gone.items():
            await self.hub.publish(
                world_id, PresenceOut(left=PresenceEntry(session=sid, user=author))
            )

    async def _replay(self, world_id: str, after: str, upto: str) -> tuple[list[Any], bool, str]:
        """Entries after ``after`` up to ``upto`` for the welcome: (entries, more?, cursor)."""
        s = self.hub.settings
        entries: list[Any] = []
        cursor = after
        while len(entries) < s.welcome_replay_max:
            count = min(s.replay_page, s.welcome_replay_max - len(entries))
            async with self.hub.slots:
                page = await self.hub.chat.read_after(world_id, cursor, upto=upto, count=count)
            entries.extend(page.entries)
            if page.last_id is None:
                return entries, False, cursor
            cursor = page.last_id
            if not page.full:
                return entries, False, cursor
        return entries, True, cursor

    async def _send_rest(self, conn: Connection, cursor: str, upto: str) -> None:
        """Send the rest of a long replay as ordinary frames, page by page, before live ones."""
        while True:
            try:
                async with self.hub.slots:
                    page = await self.hub.chat.read_after(
                        conn.world_id, cursor, upto=upto, count=self.hub.settings.replay_page
                    )
            except StorageError:
                raise StorageUnavailableError("storage unavailable, retry") from None
            for entry in page.entries:
                await conn.send_now(dump(entry_message(entry)))
            if page.last_id is None or not page.full:
                return
            cursor = page.last_id

    async def _receive(self, room: Room, conn: Connection) -> None:
        while not conn.closed:
            frame = await conn.transport.receive()
            if frame is None:
                return
            conn.last_seen = time.monotonic()
            try:
                await self._handle(room, conn, self._parse(frame, conn.frames))
            except WorldgenError as err:
                self.hub.stats.errors += 1
                if isinstance(err, FloodError):
                    self.hub.stats.rate_limited += 1
                conn.push(error_frame(err))
                if err.close_code is not None:
                    await conn.close(err.close_code, err.error_code)
                    return

    def _parse(
        self, frame: str | bytes, frames: SlidingWindow
    ) -> HelloIn | ChatIn | PingIn | HeartbeatIn:
        limit = self.hub.settings.max_frame_bytes
        size = len(frame)
        if isinstance(frame, str) and 4 * size > limit:
            size = len(frame.encode())
        if size > limit:
            raise FrameTooLargeError(f"frames are limited to {limit} bytes")
        if not frames.hit():
            raise FloodError("too many frames; slow down")
        if isinstance(frame, bytes):
            raise ProtocolError("binary frames are not supported; send JSON text")
        return parse_client_message(frame)

    async def _handle(
        self, room: Room, conn: Connection, message: HelloIn | ChatIn | PingIn | HeartbeatIn
    ) -> None:
        if isinstance(message, HeartbeatIn):
            await self._heartbeat(room, conn)
            return
        if isinstance(message, HelloIn):
            raise ProtocolError("hello was already received", code="unexpected_hello")
        ref = message.id
        if not conn.messages.hit():
            s = self.hub.settings
            raise FloodError(
                f"more than {s.rate_messages} messages in {s.rate_window_s:g} s", ref=ref
            )
        if self.hub.message_gate is not None:
            await self.hub.message_gate(conn.user, ref)
        record: ChatRecord | PingRecord
        if isinstance(message, ChatIn):
            record = ChatRecord(id=message.id, user=conn.user, text=message.text)
        else:
            record = PingRecord(
                id=message.id or secrets.token_urlsafe(12),
                user=conn.user,
                x=message.x,
                y=message.y,
                label=message.label,
            )
        try:
            async with self.hub.slots:
                stored = await self.hub.chat.append(
                    room.world_id,
                    record,
                    notify=(self.hub.keys.world_channel(room.world_id), self.hub.wake_payload),
                )
        except StorageError:
            raise StorageUnavailableError(
                "storage unavailable; retry with the same id", ref=ref
            ) from None
        except WorldNotFoundError:
            raise WorldNotFoundError("this world was deleted", ref=ref) from None
        self.hub.stats.messages += 1
        if not stored.created:
            self.hub.stats.duplicates += 1
        if ref is not None:
            conn.push(dump(Ack(id=ref, stream_id=stored.stream_id, duplicate=not stored.created)))
        room.wake()

    async def _heartbeat(self, room: Room, conn: Connection) -> None:
        try:
            async with self.hub.slots:
                added = await self.hub.presence.heartbeat(room.world_id, conn.session, conn.user)
        except StorageError:
            raise StorageUnavailableError("storage unavailable, retry") from None
        if added is None:
            raise WorldNotFoundError("this world was deleted")
        if added:  # swept while silent (or storage lost it): present again
            entry = PresenceEntry(session=conn.session, user=conn.user)
            room.joined(entry)
            await self.hub.publish(room.world_id, PresenceOut(joined=entry))
        conn.push(dump(HeartbeatOut()))
