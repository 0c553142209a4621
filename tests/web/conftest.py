"""Web-test fixtures: whole apps (lifespan included) on a real Valkey, driven in-process by httpx.

``make_client(**settings)`` is the harness's ``client_factory`` (see ``tests/harness.py``) with
every client signed in to a fresh account (cheap hashing), since creating a world needs one:
apps share the session Valkey, each with its own key prefix, and generation runs in threads
unless a test passes a generator. Tests that kill Redis start their own server with the
``valkey_server`` factory.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.accounts import sign_in
from tests.conftest import ClientFactory
from tests.harness import AppClient
from worldgen.web.generation import InlineGenerator
from worldgen.web.metrics import Metrics
from worldgen.world.spec import WorldSpec

__all__ = ["ClientFactory", "CountingGenerator", "StubGenerator", "WebClient", "metric"]

WebClient = AppClient


@pytest.fixture
def make_client(client_factory: ClientFactory) -> ClientFactory:
    """Factory of started apps whose client is signed in (anonymous while storage is down)."""

    async def make(**kwargs: Any) -> WebClient:
        client = await client_factory(**kwargs)
        await sign_in(client, outage_ok=True)  # creating worlds needs an account
        return client

    return make


@pytest.fixture
async def client(make_client: ClientFactory) -> WebClient:
    """A started app with default settings."""
    return await make_client()


@pytest.fixture
async def world(client: WebClient) -> dict[str, Any]:
    """A terrain world (seed 7) in ``client``'s app."""
    response = await client.post("/api/worlds", json={"name": "Test world", "tileset": "terrain"})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def metric(client: WebClient, name: str, **labels: str) -> float:
    """The current value of one sample of the app's metrics (0 when never observed)."""
    metrics: Metrics = client.app.state.metrics
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


class CountingGenerator(InlineGenerator):
    """An inline generator that counts tile computations and can hold them at a gate."""

    def __init__(self) -> None:
        super().__init__()
        self.tile_calls = 0
        self.gate: Any = None

    async def tile(self, spec: WorldSpec, z: int, x: int, y: int) -> bytes:
        self.tile_calls += 1
        if self.gate is not None:
            await self.gate.wait()
        return await super().tile(spec, z, x, y)


class StubGenerator(InlineGenerator):
    """The real catalog, but no world is ever built: fixed versions, regions and pictures.

    For tests of the web layer's own logic (bounds, shapes) that need not pay for generation.
    """

    PNG = b"\x89PNG\r\n\x1a\nstub"

    def __init__(self) -> None:
        super().__init__()
        self.specs: list[WorldSpec] = []
        self.exports: list[tuple[int, int, int, int, int]] = []

    async def version(self, spec: WorldSpec) -> str:
        self.specs.append(spec)
        return "stub-1"

    async def region(self, spec: WorldSpec, x: int, y: int, w: int, h: int) -> dict[str, Any]:
        labels = "tiles" if spec.source == "tileset" else "colors"
        return {
            "x": x,
            "y": y,
            "width": w,
            "height": h,
            labels: ["#102030"],
            "cells": [0] * (w * h),
        }

    async def export(self, spec: WorldSpec, x: int, y: int, w: int, h: int, scale: int) -> bytes:
        self.exports.append((x, y, w, h, scale))
        return self.PNG
