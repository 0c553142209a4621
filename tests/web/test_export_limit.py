"""Concurrent exports per client address are bounded: the limit runs, limit + 1 gets a 429 with
``Retry-After``, and a slot is free again once an export ends (issue 13: 8 anonymous 4096-px
exports kept the generation pool busy for 102 s)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.web.conftest import ClientFactory, StubGenerator
from worldgen.web.concurrency import ClientSlots
from worldgen.world.spec import WorldSpec

pytestmark = pytest.mark.anyio


class HeldExports(StubGenerator):
    """Exports that wait at a gate, so the test controls how many are in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.running = 0

    async def export(self, spec: WorldSpec, x: int, y: int, w: int, h: int, scale: int) -> bytes:
        self.running += 1
        try:
            await self.gate.wait()
            return await super().export(spec, x, y, w, h, scale)
        finally:
            self.running -= 1


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("limit", [1, 2])
async def test_exports_per_client_at_the_limit_and_one_more(
    client_factory: ClientFactory, limit: int
) -> None:
    generator = HeldExports()
    client = await client_factory(generator=generator, exports_per_client=limit)
    await client.post("/api/auth/register", json={"username": f"exp{limit}", "password": "x" * 12})
    made = await client.post("/api/worlds", json={"name": "e", "tileset": "terrain"})
    assert made.status_code == 201, made.text
    base = f"/api/worlds/{made.json()['id']}/export.png?y=0&w=8&h=8&scale=1"
    # distinct windows (distinct ETags): each one is a real export
    held = [asyncio.create_task(client.get(f"{base}&x={i}")) for i in range(limit)]
    await _until(lambda: generator.running == limit)
    refused = await client.get(f"{base}&x=99")
    assert refused.status_code == 429, refused.text
    assert refused.headers["Retry-After"] == "5"
    assert f"at most {limit} exports at a time" in refused.json()["detail"]
    # another client address is not affected by this one's exports
    elsewhere = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=client.app, client=("10.9.8.7", 1234)),
        base_url="http://testserver",
    )
    async with elsewhere:
        other = asyncio.create_task(elsewhere.get(f"{base}&x=98"))
        await _until(lambda: generator.running == limit + 1)
        generator.gate.set()
        assert [r.status_code for r in await asyncio.gather(*held, other)] == [200] * (limit + 1)
    again = await client.get(f"{base}&x=99")  # the slots are free again
    assert again.status_code == 200


async def test_a_failed_export_frees_its_slot() -> None:
    slots = ClientSlots(1)
    with pytest.raises(RuntimeError):
        async with slots.hold("1.2.3.4"):
            raise RuntimeError("the pool broke")
    assert slots.in_flight("1.2.3.4") == 0
    async with slots.hold("1.2.3.4"):
        assert slots.in_flight("1.2.3.4") == 1
    with pytest.raises(ValueError, match="at least 1"):
        ClientSlots(0)
