"""A connection's send queue: ordered, bounded, and a slow client is dropped, never waited for."""

from __future__ import annotations

import asyncio

from tests.realtime.conftest import run
from worldgen.errors import CLOSE_POLICY, CLOSE_TRY_LATER, TransportClosedError
from worldgen.realtime.connection import Connection
from worldgen.realtime.protocol import User
from worldgen.realtime.ratelimit import SlidingWindow
from worldgen.settings import RealtimeSettings


class FakeTransport:
    """Records frames; a cleared ``gate`` blocks sends, like a client that stopped reading."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.closed: list[int] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.gone = False

    async def receive(self) -> str | bytes | None:
        return None

    async def send(self, text: str) -> None:
        await self.gate.wait()
        if self.gone:
            raise TransportClosedError
        self.sent.append(text)

    async def close(self, code: int, reason: str = "") -> None:
        self.closed.append(code)


def connection(transport: FakeTransport, **overrides: float) -> Connection:
    settings = RealtimeSettings(send_queue=8, **overrides)  # type: ignore[arg-type]
    return Connection(
        transport,
        world_id="abcdefgh",
        session="s1",
        user=User(id="g-1", name="n"),
        settings=settings,
        messages=SlidingWindow(100, 60),
        frames=SlidingWindow(300, 60),
    )


def test_frames_are_sent_in_order_then_close_flushes() -> None:
    async def main() -> None:
        transport = FakeTransport()
        conn = connection(transport)
        conn.start()
        for i in range(5):
            assert conn.push(str(i))
        await conn.close(CLOSE_POLICY)
        assert transport.sent == ["0", "1", "2", "3", "4"]
        assert transport.closed == [CLOSE_POLICY]
        await conn.close(CLOSE_POLICY)  # idempotent
        assert transport.closed == [CLOSE_POLICY]
        assert not conn.push("late")
        await conn.finish()

    run(main())


def test_a_client_that_stops_reading_is_dropped_past_the_queue_bound() -> None:
    async def main() -> None:
        transport = FakeTransport()
        transport.gate.clear()
        conn = connection(transport)
        conn.start()
        assert conn.push("0")
        await asyncio.sleep(0.01)  # the writer takes it and blocks in send
        pushed = [conn.push(str(i)) for i in range(1, 10)]
        # Eight more fill the queue; the next one overflows it.
        assert pushed == [True] * 8 + [False]
        assert conn.dropped_slow
        await conn.finish()
        assert transport.closed == [CLOSE_TRY_LATER]
        assert transport.sent == []

    run(main())


def test_a_send_blocked_past_the_timeout_drops_the_client() -> None:
    async def main() -> None:
        transport = FakeTransport()
        transport.gate.clear()
        conn = connection(transport, send_timeout_s=0.1)
        conn.start()
        conn.push("x")
        await asyncio.sleep(0.3)
        assert conn.dropped_slow
        await conn.finish()
        assert transport.closed == [CLOSE_TRY_LATER]

    run(main())


def test_a_gone_socket_stops_the_writer_quietly() -> None:
    async def main() -> None:
        transport = FakeTransport()
        transport.gone = True
        conn = connection(transport)
        conn.start()
        conn.push("x")
        await asyncio.sleep(0.05)
        assert conn.closed
        await conn.finish()

    run(main())
