"""Security-test fixtures: whole apps (lifespan included) on a real Valkey, driven by httpx.

``make_client(passwords=..., **settings)`` builds an app with :func:`create_app`,
runs its lifespan and returns an ``httpx.AsyncClient`` bound to it (``client.app`` is the app).
Apps share one session Valkey server and isolate themselves by key prefix. Most tests use a
cheap argon2id (:func:`fast_passwords`) to stay fast; the tests of hashing itself use the
default parameters. ``signed_in(client, name)`` registers an account and returns a client of the
same app holding that account's cookie.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from tests.accounts import PASSWORD, fast_passwords
from worldgen.settings import Settings
from worldgen.store.embedded import EmbeddedValkey
from worldgen.web.app import create_app
from worldgen.web.generation import Generator, InlineGenerator
from worldgen.web.security import Passwords, SecurityServices

__all__ = ["PASSWORD", "ClientFactory", "LiveApp", "LiveApps", "SecClient", "another", "signed_in"]


class SecClient(httpx.AsyncClient):
    """An httpx client talking to one in-process app."""

    app: FastAPI
    children: list[SecClient]

    async def close_children(self) -> None:
        for child in self.children:
            await child.aclose()

    @property
    def security(self) -> SecurityServices:
        services: SecurityServices = self.app.state.security
        return services


ClientFactory = Callable[..., Awaitable[SecClient]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def shared_valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real Valkey server for the whole session (apps isolate themselves by key prefix)."""
    server = EmbeddedValkey(tmp_path_factory.mktemp("valkey-security"))
    url = server.start()
    yield url
    server.stop()


@pytest.fixture
async def make_client(shared_valkey: str, tmp_path: Path) -> AsyncIterator[ClientFactory]:
    """Factory of started apps; every app is shut down (lifespan exit) at teardown."""
    async with AsyncExitStack() as stack:

        async def make(
            *,
            generator: Generator | None = None,
            passwords: Passwords | None = None,
            **overrides: Any,
        ) -> SecClient:
            fields: dict[str, Any] = {
                "redis_url": shared_valkey,
                "key_prefix": f"t{uuid.uuid4().hex[:12]}",
                "data_dir": tmp_path / "data",
                "log_json": True,
            }
            fields.update(overrides)
            settings = Settings(**fields)
            app = create_app(settings, generator=generator or InlineGenerator())
            app.state.passwords = passwords or fast_passwords()
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = SecClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver", timeout=30
            )
            client.app = app
            client.children = []
            await stack.enter_async_context(client)
            stack.push_async_callback(client.close_children)
            return client

        yield make


@pytest.fixture
async def client(make_client: ClientFactory) -> SecClient:
    """A started app with default settings (fast hashing)."""
    return await make_client()


async def another(client: SecClient) -> SecClient:
    """A second client (its own cookie jar) of the same app, closed with the first one."""
    other = SecClient(
        transport=httpx.ASGITransport(app=client.app), base_url="http://testserver", timeout=30
    )
    other.app = client.app
    other.children = []
    client.children.append(other)
    return other


async def signed_in(client: SecClient, username: str, password: str = PASSWORD) -> SecClient:
    """A new client of the same app, registered (and so signed in) as ``username``."""
    other = await another(client)
    response = await other.post(
        "/api/auth/register", json={"username": username, "password": password}
    )
    assert response.status_code == 201, response.text
    return other


class LiveApp:
    """One app instance served by uvicorn in a background thread (real sockets, WebSockets)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        config = uvicorn.Config(
            app, lifespan="on", log_config=None, access_log=False, timeout_graceful_shutdown=5
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws(self, world_id: str) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/worlds/{world_id}"

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the app server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=30)
        self._sock.close()


LiveApps = Callable[..., list[LiveApp]]


@pytest.fixture
def live_apps(shared_valkey: str, tmp_path: Path) -> Iterator[LiveApps]:
    """Factory: ``live_apps(n, **settings)`` starts ``n`` instances sharing one Redis keyspace."""
    started: list[LiveApp] = []

    def start(n: int = 1, **overrides: Any) -> list[LiveApp]:
        fields: dict[str, Any] = {
            "redis_url": shared_valkey,
            "key_prefix": f"t{uuid.uuid4().hex[:12]}",
            "data_dir": tmp_path / "data",
            "log_level": "warning",
            "warm_up": False,
            "workers": 1,
        }
        fields.update(overrides)
        apps = []
        for _ in range(n):
            app = create_app(Settings(**fields), generator=InlineGenerator())
            app.state.passwords = fast_passwords()
            live = LiveApp(app)
            live.start()
            started.append(live)
            apps.append(live)
        return apps

    yield start
    for live in reversed(started):
        live.stop()
