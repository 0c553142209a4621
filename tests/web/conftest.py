"""Web-test fixtures: whole apps (lifespan included) on a real Valkey, driven in-process by httpx.

``make_client(**settings)`` builds an app with :func:`create_app`, runs its lifespan and returns
an ``httpx.AsyncClient`` bound to it (``client.app`` is the app). Apps share one session Valkey
server but each gets its own key prefix, so tests never see each other's data; tests that kill
Redis start their own server with the ``valkey_server`` factory of ``tests/conftest.py``.
Generation runs in threads (:class:`InlineGenerator`) unless a test passes a generator. Every
client is signed in to a fresh account (cheap hashing), since creating a world needs one.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.accounts import fast_passwords, sign_in
from worldgen.settings import Settings
from worldgen.store.embedded import EmbeddedValkey
from worldgen.web.app import create_app
from worldgen.web.generation import Generator, InlineGenerator
from worldgen.web.metrics import Metrics
from worldgen.world.spec import WorldSpec


class WebClient(httpx.AsyncClient):
    """An httpx client talking to one in-process app."""

    app: FastAPI


ClientFactory = Callable[..., Awaitable[WebClient]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def shared_valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real Valkey server for the whole session (apps isolate themselves by key prefix)."""
    server = EmbeddedValkey(tmp_path_factory.mktemp("valkey-shared"))
    url = server.start()
    yield url
    server.stop()


@pytest.fixture
async def make_client(shared_valkey: str, tmp_path: Path) -> AsyncIterator[ClientFactory]:
    """Factory of started apps; every app is shut down (lifespan exit) at teardown."""
    async with AsyncExitStack() as stack:

        async def make(*, generator: Generator | None = None, **overrides: Any) -> WebClient:
            fields: dict[str, Any] = {
                "redis_url": shared_valkey,
                "key_prefix": f"t{uuid.uuid4().hex[:12]}",
                "data_dir": tmp_path / "data",
                "log_json": True,
            }
            fields.update(overrides)
            app = create_app(Settings(**fields), generator=generator or InlineGenerator())
            app.state.passwords = fast_passwords()
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = WebClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver", timeout=30
            )
            client.app = app
            await stack.enter_async_context(client)
            await sign_in(client, outage_ok=True)  # creating worlds needs an account
            return client

        yield make


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
