"""One client socket on this instance: identity, limits and a bounded send queue.

Invariants:

- Frames reach the socket in the order they were pushed, from a single writer task (after the
  welcome, which is sent before the writer starts).
- The queue holds at most ``send_queue`` frames; a push beyond it drops the client (close 1013):
  one slow reader never slows a room, and memory per connection stays bounded. A single send
  blocked longer than ``send_timeout_s`` drops the client the same way.
- :meth:`Connection.close` is idempotent and bounded in time; it never raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Protocol

import structlog

from worldgen._aio import raise_if_cancelling
from worldgen.errors import CLOSE_TRY_LATER, TransportClosedError
from worldgen.realtime.protocol import User
from worldgen.realtime.ratelimit import SlidingWindow
from worldgen.settings import RealtimeSettings
from worldgen.store.chat import StreamId

log = structlog.get_logger("worldgen.realtime")


class Transport(Protocol):
    """What the hub needs from a WebSocket (the route adapts Starlette's to it)."""

    async def receive(self) -> str | bytes | None:
        """The next frame, or None once the socket is closed."""

    async def send(self, text: str) -> None:
        """Send one text frame; :class:`~worldgen.errors.TransportClosedError` if the socket is
        gone."""

    async def close(self, code: int, reason: str = "") -> None:
        """Close the socket; never raises, idempotent."""


@dataclass(frozen=True, slots=True)
class _Closing:
    code: int
    reason: str


class Connection:
    """A client in a world room (created after its ``hello``)."""

    def __init__(
        self,
        transport: Transport,
        *,
        world_id: str,
        session: str,
        user: User,
        settings: RealtimeSettings,
        messages: SlidingWindow,
        frames: SlidingWindow,
    ) -> None:
        self.transport = transport
        self.world_id = world_id
        self.session = session
        self.user = user
        self.messages = messages
        """Chats and pings admitted in the rate window."""
        self.frames = frames
        """Every frame admitted in the rate window."""
        self.ready = False
        """Set once the connection's history boundary is fixed; only then is it fed entries."""
        self.floor: StreamId = (0, 0)
        """Entries at or below this id already reached the client (history or replay)."""
        self.last_seen = time.monotonic()
        self.closed = False
        self.close_code: int | None = None
        self.dropped_slow = False
        self._send_timeout = settings.send_timeout_s
        self._queue: asyncio.Queue[str | _Closing] = asyncio.Queue(maxsize=settings.send_queue)
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None

    def push(self, frame: str) -> bool:
        """Queue a frame for the writer; past the bound the client is dropped (False)."""
        if self.closed or self.dropped_slow:
            return False
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            self._drop_slow("send queue full")
            return False
        return True

    async def send_now(self, frame: str) -> None:
        """Send directly, before the writer starts (welcome and replay)."""
        async with asyncio.timeout(self._send_timeout):
            await self.transport.send(frame)

    def start(self) -> None:
        """Start the writer task that drains the queue."""
        if self._writer is None:
            self._writer = asyncio.create_task(self._write(), name=f"ws-writer-{self.session}")

    async def _write(self) -> None:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
        # races with the send finishing, and the writer would then wait on the queue forever.
        while not self.closed:
            raise_if_cancelling()
            item = await self._queue.get()
            if isinstance(item, _Closing):
                await self._close_transport(item.code, item.reason)
                return
            try:
                async with asyncio.timeout(self._send_timeout):
                    await self.transport.send(item)
            except TimeoutError:
                self._drop_slow("send timed out")
                return
            except TransportClosedError:
                self.closed = True
                return

    def _drop_slow(self, why: str) -> None:
        if self.dropped_slow or self.closed:
            return
        self.dropped_slow = True
        log.info("realtime client dropped", reason=why, session=self.session)
        closing = self.close(CLOSE_TRY_LATER, "slow consumer", flush=False)
        self._closer = asyncio.create_task(closing)

    async def close(self, code: int, reason: str = "", *, flush: bool = True) -> None:
        """Close after sending what is queued (if ``flush``), within the send timeout."""
        if self.closed:
            return
        writer = self._writer
        if flush and writer is not None and not writer.done():
            try:
                self._queue.put_nowait(_Closing(code, reason))
            except asyncio.QueueFull:
                flush = False
            else:
                done, _ = await asyncio.wait({writer}, timeout=self._send_timeout)
                if not done:
                    flush = False
                if flush:
                    return
        await self._stop_writer()
        await self._close_transport(code, reason)

    async def _close_transport(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self._send_timeout):
                await self.transport.close(code, reason)

    async def finish(self) -> None:
        """Let a pending close end (it is bounded), then stop the writer (leaving the hub)."""
        closer = self._closer
        if closer is not None and closer is not asyncio.current_task():
            await asyncio.wait({closer}, timeout=2 * self._send_timeout)
        await self._stop_writer()
        self.closed = True

    async def _stop_writer(self) -> None:
        """Cancel the writer and wait for it, boundedly (it holds no resource worth more)."""
        writer = self._writer
        if writer is None or writer.done() or writer is asyncio.current_task():
            return
        writer.cancel()
        await asyncio.wait({writer}, timeout=self._send_timeout)
