"""A world's room on this instance: its local sockets and the pump that feeds them the stream.

Invariants:

- ``last_id`` is the newest stream id delivered to the room's ready sockets; the pump reads
  ``(last_id, +]`` in bounded pages under ``lock`` and advances it, so entries reach every ready
  socket exactly once, in stream order. A socket joins under the same lock (its history ends at
  ``last_id``), so no entry falls between its history and its live feed.
- ``known`` is the presence this instance has announced to its sockets; joined/left events are
  emitted only when they change it, so events from several paths (own joins, pub/sub, periodic
  sweeps) never repeat.
- The pump never dies on a Redis error: it logs, backs off (capped, jittered) and retries.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from worldgen._aio import backoff_delay, raise_if_cancelling
from worldgen.realtime.connection import Connection
from worldgen.realtime.protocol import PresenceEntry, PresenceOut, dump, entry_message
from worldgen.store.chat import ChatStore
from worldgen.store.client import StorageError

log = structlog.get_logger("worldgen.realtime")

STOP_TIMEOUT_S = 5.0


class Room:
    """The local sockets of one world and their delivery cursor."""

    def __init__(
        self,
        world_id: str,
        name: str,
        *,
        chat: ChatStore,
        slots: asyncio.Semaphore,
        page: int,
        backoff: tuple[float, float],
        on_delivered: Callable[[int, float], None],
    ) -> None:
        self.world_id = world_id
        self.name = name
        self.conns: dict[str, Connection] = {}
        self.known: dict[str, PresenceEntry] = {}
        self.last_id: str | None = None
        self.lock = asyncio.Lock()
        self.closing = False
        """The world is gone: the room only says goodbye."""
        self._chat = chat
        self._slots = slots
        self._page = page
        self._backoff = backoff
        self._on_delivered = on_delivered
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the pump."""
        if self._task is None:
            self._task = asyncio.create_task(self._pump(), name=f"room-{self.world_id}")

    async def stop(self) -> None:
        """Stop the pump (the room is empty or the hub is stopping)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=STOP_TIMEOUT_S)

    def wake(self) -> None:
        """Ask the pump to read the stream (new entries were announced or may exist)."""
        self._wake.set()

    async def boundary(self) -> str:
        """``last_id``, read from the stream's tail the first time (call under ``lock``)."""
        if self.last_id is None:
            async with self._slots:
                self.last_id = await self._chat.tail_id(self.world_id)
        return self.last_id

    def broadcast(self, frame: str, *, exclude: Connection | None = None) -> None:
        """Queue ``frame`` for every socket of the room (but ``exclude``)."""
        for conn in list(self.conns.values()):
            if conn is not exclude:
                conn.push(frame)

    def send_to_user(self, user_id: str, frame: str) -> None:
        """Queue ``frame`` for the room's sockets of the signed-in user ``user_id`` (a guest's
        id is chosen by its browser, so it never matches)."""
        for conn in list(self.conns.values()):
            if not conn.user.guest and conn.user.id == user_id:
                conn.push(frame)

    def joined(self, entry: PresenceEntry, *, exclude: Connection | None = None) -> None:
        """Announce ``entry`` unless it was already known."""
        if entry.session in self.known:
            return
        self.known[entry.session] = entry
        self.broadcast(dump(PresenceOut(joined=entry)), exclude=exclude)

    def left(self, entry: PresenceEntry) -> None:
        """Announce that ``entry`` left, if it was known."""
        if self.known.pop(entry.session, None) is not None:
            self.broadcast(dump(PresenceOut(left=entry)))

    def reconcile(
        self, present: dict[str, PresenceEntry], *, exclude: Connection | None = None
    ) -> None:
        """Make ``known`` equal to ``present``, announcing each difference once.

        ``exclude`` (a socket being welcomed with the full list) is not told of the joins.
        """
        for session in [s for s in self.known if s not in present]:
            self.left(self.known[session])
        for entry in present.values():
            self.joined(entry, exclude=exclude)

    async def _pump(self) -> None:
        failures = 0
        while True:
            raise_if_cancelling()
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.catch_up()
            except Exception as exc:  # the pump must outlive any failure; Redis's above all
                failures += 1
                delay = backoff_delay(failures, *self._backoff)
                if not isinstance(exc, StorageError):
                    log.exception("realtime room pump failed", world=self.world_id)
                elif failures == 1 or failures % 20 == 0:
                    log.warning(
                        "realtime room cannot read its stream, retrying",
                        world=self.world_id,
                        error=type(exc).__name__,
                        attempt=failures,
                    )
                await asyncio.sleep(delay)
                self._wake.set()
            else:
                if failures:
                    log.info("realtime room reads its stream again", world=self.world_id)
                failures = 0

    async def catch_up(self) -> None:
        """Deliver every entry after ``last_id`` to the ready sockets, page by page."""
        async with self.lock:
            if self.last_id is None:
                return
            while True:
                async with self._slots:
                    page = await self._chat.read_after(
                        self.world_id, self.last_id, count=self._page
                    )
                if page.last_id is None:
                    return
                now_ms = time.time() * 1000
                targets = [c for c in self.conns.values() if c.ready]
                for entry in page.entries:
                    frame = dump(entry_message(entry))
                    sent = 0
                    for conn in targets:
                        if entry.key > conn.floor and conn.push(frame):
                            sent += 1
                    self._on_delivered(sent, max(0.0, now_ms - entry.ts_ms) / 1000)
                self.last_id = page.last_id
                if not page.full:
                    return
