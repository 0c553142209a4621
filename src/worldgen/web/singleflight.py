"""Single flight: concurrent calls with the same key share one computation.

The first caller for a key starts the computation as a task; callers that arrive while it runs
await the same task, and all of them get its result or its exception. The key is forgotten as
soon as the task ends, so a later call computes afresh (caching is someone else's job).

A caller that is cancelled (its client went away) does not cancel the shared task: the others
still need it, and a finished tile is worth storing. The task's exception is always retrieved,
so a flight that every caller abandoned never logs "exception was never retrieved".
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["SingleFlight"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """Coalesces concurrent ``do(key, fn)`` calls per key (one event loop only)."""

    def __init__(self) -> None:
        self._flights: dict[K, asyncio.Task[V]] = {}

    def __len__(self) -> int:
        """Keys in flight right now."""
        return len(self._flights)

    async def do(self, key: K, fn: Callable[[], Awaitable[V]]) -> V:
        """``await fn()``, unless a call for ``key`` is already running: then share its outcome."""
        task = self._flights.get(key)
        if task is None:
            task = asyncio.ensure_future(fn())
            self._flights[key] = task
            task.add_done_callback(lambda t: self._landed(key, t))
        return await asyncio.shield(task)

    def _landed(self, key: K, task: asyncio.Task[V]) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]
        if not task.cancelled():
            task.exception()  # mark it retrieved; the waiters re-raise it themselves
