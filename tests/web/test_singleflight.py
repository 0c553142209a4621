"""SingleFlight: one computation per key among concurrent callers."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable

import pytest

from worldgen.web.singleflight import SingleFlight

pytestmark = pytest.mark.anyio


async def test_concurrent_calls_share_one_computation() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    gate = asyncio.Event()
    calls = 0

    async def compute() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        return 42

    waiters = [asyncio.ensure_future(flights.do("k", compute)) for _ in range(20)]
    await asyncio.sleep(0)
    assert len(flights) == 1
    gate.set()
    assert await asyncio.gather(*waiters) == [42] * 20
    assert calls == 1
    assert len(flights) == 0


async def test_keys_are_independent_and_forgotten_after_landing() -> None:
    flights: SingleFlight[int, int] = SingleFlight()
    calls: list[int] = []

    async def compute(k: int) -> int:
        calls.append(k)
        await asyncio.sleep(0.01)
        return k * 10

    def call(k: int) -> Callable[[], Awaitable[int]]:
        return lambda: compute(k)

    results = await asyncio.gather(*(flights.do(k % 3, call(k % 3)) for k in range(9)))
    assert results == [0, 10, 20] * 3
    assert sorted(calls) == [0, 1, 2]
    await flights.do(1, lambda: compute(1))  # a later call computes afresh
    assert calls.count(1) == 2


async def test_every_waiter_gets_the_exception() -> None:
    flights: SingleFlight[str, int] = SingleFlight()

    async def fail() -> int:
        await asyncio.sleep(0.01)
        raise ValueError("boom")

    results = await asyncio.gather(
        *(flights.do("k", fail) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, ValueError) for r in results)
    assert len(flights) == 0


async def test_a_cancelled_waiter_does_not_cancel_the_others() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    gate = asyncio.Event()

    async def compute() -> str:
        await gate.wait()
        return "done"

    first = asyncio.ensure_future(flights.do("k", compute))
    second = asyncio.ensure_future(flights.do("k", compute))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    gate.set()
    assert await second == "done"
    assert first.cancelled()


async def test_an_abandoned_failure_is_not_reported_as_unretrieved() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    loop = asyncio.get_running_loop()
    reported: list[object] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))

    async def fail() -> int:
        await asyncio.sleep(0.01)
        raise ValueError("nobody listens")

    waiter = asyncio.ensure_future(flights.do("k", fail))
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.sleep(0.05)
    gc.collect()
    loop.set_exception_handler(None)
    assert reported == []
