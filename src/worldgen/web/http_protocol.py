"""uvicorn's HTTP/1.1 protocol with bounded resources per connection and per instance.

uvicorn (httptools) accepts headers of any size and keeps a connection that never sends a request
open forever. :func:`bounded_protocol` returns a subclass of its ``HttpToolsProtocol`` that, for
plain and TLS serving alike (TLS is below the protocol), enforces :class:`ConnectionLimits`:

* **header size**: a request whose header section (request line included) exceeds
  ``max_header_bytes``, a header line longer than ``max_line_bytes`` or more than ``max_headers``
  headers is answered ``431 Request Header Fields Too Large`` (a request line over
  ``max_line_bytes``: ``414``) and the connection closed. Bytes are counted as they arrive, so a
  flood never reaches the parser's buffers past the limit.
* **header read time**: a connection must deliver a complete header section within
  ``header_timeout_s`` of connecting (or of its previous response: keep-alive idle time is
  uvicorn's ``timeout_keep_alive``); otherwise ``408`` and close. This bounds idle and
  slow-header ("slowloris") sockets.
* **connection caps**: at most ``max_connections`` open HTTP connections per instance and
  ``max_per_client`` per client address; past them a new connection gets ``503`` and is closed
  at once (WebSockets leave the count when they upgrade; their own limits apply).

:class:`RepeatFilter` rate-limits identical log lines (accept errors under fd exhaustion logged
thousands of times a second filled disks).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from worldgen.errors import WorldgenError

__all__ = ["ConnectionLimits", "RepeatFilter", "bounded_protocol"]


@dataclass(frozen=True)
class ConnectionLimits:
    """Per-connection and per-instance bounds of the HTTP server (see the module docstring)."""

    max_header_bytes: int = 64 * 1024
    max_line_bytes: int = 16 * 1024
    max_headers: int = 100
    header_timeout_s: float = 10.0
    max_connections: int = 4096
    max_per_client: int = 128


_REASONS = {
    408: b"Request Timeout",
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}


class _HeaderLimitError(WorldgenError):
    """Raised inside a parser callback; httptools turns it into a parser error (never escapes)."""


def bounded_protocol(limits: ConnectionLimits) -> type[asyncio.Protocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` that enforces ``limits``.

    The per-client counts live in this closure: one table per server (per call).
    """
    per_client: Counter[str] = Counter()

    class BoundedHttpProtocol(HttpToolsProtocol):
        """``HttpToolsProtocol`` plus the bounds of :class:`ConnectionLimits`."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._in_headers = True
            self._header_bytes = 0
            self._tail = b""
            self._header_count = 0
            self._refusal: tuple[int, str] | None = None
            self._header_timer: asyncio.TimerHandle | None = None
            self._counted_as: str | None = None

        # -------------------------------------------------------------- connections
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            address = self.client[0] if self.client else "?"
            if len(self.connections) > limits.max_connections:
                self._refuse(503, "this server has too many open connections; retry shortly")
                return
            if per_client[address] >= limits.max_per_client:
                self._refuse(503, "too many open connections from your address; close some")
                return
            per_client[address] += 1
            self._counted_as = address
            self._arm_header_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_header_timer()
            self._uncount()
            super().connection_lost(exc)

        def handle_websocket_upgrade(self) -> None:
            self._disarm_header_timer()
            self._uncount()
            super().handle_websocket_upgrade()

        def _uncount(self) -> None:
            address, self._counted_as = self._counted_as, None
            if address is not None:
                per_client[address] -= 1
                if per_client[address] <= 0:
                    del per_client[address]

        # -------------------------------------------------------------- header phase
        def _arm_header_timer(self) -> None:
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(
                    limits.header_timeout_s, self._header_timeout
                )

        def _disarm_header_timer(self) -> None:
            timer, self._header_timer = self._header_timer, None
            if timer is not None:
                timer.cancel()

        def _header_timeout(self) -> None:
            self._header_timer = None
            if self._in_headers and not self.transport.is_closing():
                self._refuse(408, "the request headers did not arrive in time")

        def data_received(self, data: bytes) -> None:
            if self.transport.is_closing():
                return
            if self._in_headers:
                # count the header section's bytes exactly (up to its blank line), before the
                # parser buffers any of them; the blank line may straddle two reads
                seen = self._tail + data
                end = seen.find(b"\r\n\r\n")
                self._header_bytes += len(data) if end < 0 else end + 4 - len(self._tail)
                self._tail = seen[-3:] if end < 0 else b""
                if self._header_bytes > limits.max_header_bytes:
                    self._refuse(431, f"request headers exceed {limits.max_header_bytes} bytes")
                    return
            super().data_received(data)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_headers = True
            self._header_count = 0
            self._arm_header_timer()

        def on_url(self, url: bytes) -> None:
            super().on_url(url)
            if len(self.url) > limits.max_line_bytes:
                self._refusal = (414, f"the request line exceeds {limits.max_line_bytes} bytes")
                raise _HeaderLimitError

        def on_header(self, name: bytes, value: bytes) -> None:
            self._header_count += 1
            if len(name) + len(value) > limits.max_line_bytes:
                self._refusal = (431, f"a header line exceeds {limits.max_line_bytes} bytes")
                raise _HeaderLimitError
            if self._header_count > limits.max_headers:
                self._refusal = (431, f"more than {limits.max_headers} request headers")
                raise _HeaderLimitError
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._in_headers = False
            self._header_bytes = 0
            self._tail = b""
            self._disarm_header_timer()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._in_headers = True  # the next request's headers start counting now

        def send_400_response(self, msg: str) -> None:
            if self._refusal is not None:  # a parser error we caused: say what it was
                status, reason = self._refusal
                self._refuse(status, reason)
                return
            super().send_400_response(msg)

        def _refuse(self, status: int, message: str) -> None:
            self._disarm_header_timer()
            body = message.encode("ascii")
            head = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status])]
            for name, value in self.server_state.default_headers:
                head += [name, b": ", value, b"\r\n"]
            head += [
                b"content-type: text/plain; charset=utf-8\r\n",
                b"content-length: %d\r\n" % len(body),
                b"connection: close\r\n\r\n",
                body,
            ]
            self.transport.write(b"".join(head))
            self.transport.close()

    return BoundedHttpProtocol


class RepeatFilter(logging.Filter):
    """Lets an identical (logger, message template) line through at most once per ``every_s``.

    The next line let through after a quiet period carries ``suppressed=N`` in its message, so
    nothing is hidden silently.
    """

    def __init__(self, every_s: float = 10.0) -> None:
        super().__init__()
        self.every_s = every_s
        self._last: dict[tuple[str, str], float] = {}
        self._suppressed: Counter[tuple[str, str]] = Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.every_s:
            self._suppressed[key] += 1
            return False
        self._last[key] = now
        skipped = self._suppressed.pop(key, 0)
        if skipped:
            record.msg = f"{record.msg} (and {skipped} more like it suppressed)"
        if len(self._last) > 4096:  # bounded: forget the oldest templates
            for old in sorted(self._last, key=self._last.__getitem__)[:2048]:
                del self._last[old]
        return True
