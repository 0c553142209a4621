"""Per-client bounds on concurrent heavy requests (exports): one client cannot keep the
generation pool busy for everyone else.

:class:`ClientSlots` counts the requests of each client address in flight on this instance; a
request beyond ``per_client`` is refused at once with
:class:`~worldgen.errors.RateLimitedError` (429 with ``Retry-After``) instead of queueing
behind the client's own work. Counts live in process: a client spread over several instances
gets ``per_client`` on each, which the generation pool of each instance bounds anyway.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from worldgen.errors import RateLimitedError

__all__ = ["ClientSlots"]


class ClientSlots:
    """At most ``per_client`` requests in flight per client address; the rest get 429."""

    def __init__(self, per_client: int, *, retry_after_s: int = 5, what: str = "exports") -> None:
        if per_client < 1:
            raise ValueError("per_client must be at least 1")
        self.per_client = per_client
        self.retry_after_s = retry_after_s
        self.what = what
        self._in_flight: dict[str, int] = {}

    def in_flight(self, client: str) -> int:
        """Requests of ``client`` running now."""
        return self._in_flight.get(client, 0)

    @asynccontextmanager
    async def hold(self, client: str) -> AsyncIterator[None]:
        """Hold one of ``client``'s slots for the block; 429 when it has none left."""
        held = self._in_flight.get(client, 0)
        if held >= self.per_client:
            raise RateLimitedError(
                f"at most {self.per_client} {self.what} at a time per client; "
                f"retry in {self.retry_after_s} s",
                retry_after=self.retry_after_s,
            )
        self._in_flight[client] = held + 1
        try:
            yield
        finally:
            left = self._in_flight[client] - 1
            if left:
                self._in_flight[client] = left
            else:
                del self._in_flight[client]
