"""Shared fixtures over :mod:`tests.harness`: real Valkey servers, started apps, live servers.

- ``shared_valkey`` (session): the URL of the one Valkey that app tests share; each app has its
  own key prefix. Never kill it: a test that breaks Redis starts its own with ``valkey_server``.
- ``valkey_server``: a factory of per-test servers with ``kill()`` and ``restart()``.
- ``client_factory``: started apps (lifespan run) on the shared Valkey, each with its own
  :class:`~tests.harness.AppClient`; all shut down at teardown.
- ``live_servers``: a factory of apps under uvicorn on free ports (real sockets).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.harness import AppClient, LiveServer, ValkeyHandle, app_settings, build_app
from worldgen.settings import RealtimeSettings
from worldgen.web.auth.passwords import Passwords
from worldgen.web.generation import Generator

__all__ = ["ClientFactory", "LiveServers", "ValkeyHandle"]

ClientFactory = Callable[..., Awaitable[AppClient]]
LiveServers = Callable[..., list[LiveServer]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def shared_valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of one real Valkey server for the whole session (apps isolate themselves by key
    prefix)."""
    handle = ValkeyHandle(tmp_path_factory.mktemp("valkey-shared"))
    yield handle.url
    handle.stop()


@pytest.fixture
def valkey_server(tmp_path: Path) -> Iterator[Callable[[], ValkeyHandle]]:
    """Factory: each call starts one more server in its own data folder; all stopped at teardown."""
    handles: list[ValkeyHandle] = []

    def start() -> ValkeyHandle:
        handle = ValkeyHandle(tmp_path / f"valkey-{len(handles)}")
        handles.append(handle)
        return handle

    yield start
    for handle in handles:
        handle.stop()


@pytest.fixture
async def client_factory(shared_valkey: str, tmp_path: Path) -> AsyncIterator[ClientFactory]:
    """``client_factory(generator=None, passwords=None, **settings)``: a started app (on the shared
    Valkey unless ``redis_url`` is given) and a client of it; every app is shut down (lifespan
    exit) at teardown."""
    async with AsyncExitStack() as stack:

        async def make(
            *,
            generator: Generator | None = None,
            passwords: Passwords | None = None,
            **overrides: Any,
        ) -> AppClient:
            redis_url = overrides.pop("redis_url", shared_valkey)
            settings = app_settings(redis_url, tmp_path / "data", **overrides)
            app = build_app(settings, generator=generator, passwords=passwords)
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = AppClient.of(app)
            await stack.enter_async_context(client)
            stack.push_async_callback(client.close_children)
            return client

        yield make


@pytest.fixture
def live_servers(shared_valkey: str, tmp_path: Path) -> Iterator[LiveServers]:
    """``live_servers(n=1, redis_url=None, realtime=None, **settings)``: ``n`` started app
    instances sharing one keyspace (the shared Valkey and a fresh key prefix unless given);
    all stopped at teardown, newest first."""
    started: list[LiveServer] = []

    def start(
        n: int = 1,
        *,
        redis_url: str | None = None,
        realtime: RealtimeSettings | None = None,
        **overrides: Any,
    ) -> list[LiveServer]:
        fields: dict[str, Any] = {"log_level": "warning", "warm_up": False, "workers": 1}
        fields.update(overrides)
        settings = app_settings(redis_url or shared_valkey, tmp_path / "data", **fields)
        servers = []
        for _ in range(n):
            server = LiveServer(build_app(settings, realtime=realtime))
            server.start()
            started.append(server)
            servers.append(server)
        return servers

    yield start
    for server in reversed(started):
        server.stop()
