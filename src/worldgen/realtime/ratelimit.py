"""A sliding-window counter: at most ``limit`` events in any ``window_s`` seconds.

Per connection and in memory (a connection lives on one instance). The deque never holds more
than ``limit`` timestamps, so memory per connection is bounded.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class SlidingWindow:
    """Admit an event if fewer than ``limit`` were admitted in the last ``window_s`` seconds."""

    __slots__ = ("_clock", "_times", "limit", "window_s")

    def __init__(
        self, limit: int, window_s: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be >= 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._times: deque[float] = deque(maxlen=limit)

    def hit(self) -> bool:
        """Record one event; False if it exceeds the limit (a refused event is not recorded)."""
        now = self._clock()
        times = self._times
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if len(times) >= self.limit:
            return False
        times.append(now)
        return True
