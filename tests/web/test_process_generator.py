"""The production generator: a pool of spawned processes, byte-identical to inline generation."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from tests.web.conftest import ClientFactory
from worldgen.web.generation import InlineGenerator, ProcessGenerator, spec_of

pytestmark = pytest.mark.anyio


async def test_process_pool_serves_the_app_and_survives_a_dead_worker(
    make_client: ClientFactory,
) -> None:
    client = await make_client(generator=ProcessGenerator(1), workers=1)
    generator: ProcessGenerator = client.app.state.generator
    assert generator.ready
    assert (await client.get("/readyz")).status_code == 200

    created = await client.post(
        "/api/worlds", json={"name": "pool", "tileset": "terrain", "seed": 11}
    )
    world: dict[str, Any] = created.json()
    tile = await client.get(f"/tiles/{world['id']}/2/1/-1.png")
    assert tile.status_code == 200
    region = await client.get(f"/api/worlds/{world['id']}/region?x=0&y=0&w=3&h=3")
    export = await client.get(f"/api/worlds/{world['id']}/export.png?x=0&y=0&w=8&h=8&scale=1")
    assert (region.status_code, export.status_code) == (200, 200)

    # Same bytes as generation in this process: content is a pure function of the spec.
    inline = InlineGenerator()
    spec = spec_of("tiled", "terrain", 11)
    assert await inline.tile(spec, 2, 1, -1) == tile.content
    assert await inline.region(spec, 0, 0, 3, 3) == region.json()
    assert await generator.version(spec) == await inline.version(spec)
    # the pool draws cell zooms from chunks of final cells and far zooms from the summary: the
    # same bytes as drawing the tile in one piece
    for z, x, y in ((-1, 0, -1), (0, 1, -1), (-4, 0, 0)):
        pooled = await client.get(f"/tiles/{world['id']}/{z}/{x}/{y}.png")
        assert pooled.content == await inline.tile(spec, z, x, y), (z, x, y)

    # A worker killed from outside: the pool is replaced and the request still succeeds.
    before = generator.pool.processes()
    assert before
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    again = await client.get(f"/tiles/{world['id']}/2/5/5.png")
    assert again.status_code == 200
    assert generator.pool.restarts == 1
    assert not set(generator.pool.processes()) & set(before)
