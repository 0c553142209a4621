"""Shared fixtures over :mod:`tests.harness`: real Valkey servers, started apps, live servers.

- ``shared_valkey`` (session): the URL of the one Valkey that app tests share; each app has its
  own key prefix. Never kill it: a test that breaks Redis starts its own with ``valkey_server``.
- ``valkey_server``: a factory of per-test servers with ``kill()`` and ``restart()``.
- ``client_factory``: started apps (lifespan run) on the shared Valkey, each with its own
  :class:`~tests.harness.AppClient`; all shut down at teardown.
- ``live_servers``: a factory of apps under uvicorn on free ports (real sockets).

**Both kinds of Redis.** The store, real-time, security and models suites (:data:`BOTH_MODES`)
run each of their Redis tests twice, ``[standalone]`` and ``[cluster]``: in the cluster pass,
``valkey_server()`` hands out the session's one real 3-master Valkey Cluster
(:class:`tests.cluster.ValkeyCluster`, started at the first cluster test), emptied for the
test, as a ``redis+cluster://`` URL, and apps get the standalone shared Valkey as their job
queue's broker (Dramatiq cannot run on a cluster). A test that needs something a shared cluster
cannot give (killing the server, two servers, a standalone pool) is marked
``@pytest.mark.standalone_only("why")``. ``--redis=standalone|cluster|both`` (default both)
picks the passes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Literal

import pytest

from tests.cluster import ValkeyCluster
from tests.harness import (
    AppClient,
    ClusterHandle,
    LiveServer,
    ValkeyHandle,
    app_settings,
    build_app,
    is_cluster_url,
)
from worldgen.settings import RealtimeSettings
from worldgen.web.auth.passwords import Passwords
from worldgen.web.generation import Generator

__all__ = ["ClientFactory", "LiveServers", "RedisMode", "ValkeyHandle"]

ClientFactory = Callable[..., Awaitable[AppClient]]
LiveServers = Callable[..., list[LiveServer]]
RedisMode = Literal["standalone", "cluster"]
BOTH_MODES = ("store", "realtime", "security", "models")
"""Suites (folders of ``tests/``) whose Redis tests run on a standalone Valkey and a cluster."""
_MODE_FIXTURES = {"valkey_server", "app_redis", "client_factory", "live_servers"}
"""Fixtures that put a test on the Redis of its mode (``shared_valkey`` alone is standalone)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--redis",
        choices=("both", "standalone", "cluster"),
        default="both",
        help="Redis passes of the store, real-time and security suites (default: both)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "standalone_only(reason): a Redis test that cannot run on the shared cluster",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the Redis tests of :data:`BOTH_MODES` once per Redis mode."""
    if "redis_mode" not in metafunc.fixturenames:
        return
    parts = Path(str(metafunc.definition.path)).relative_to(Path(__file__).parent).parts
    if not parts or parts[0] not in BOTH_MODES:
        return
    wanted = metafunc.config.getoption("--redis")
    modes = ["standalone", "cluster"] if wanted == "both" else [wanted]
    if metafunc.definition.get_closest_marker("standalone_only") is not None:
        modes = [m for m in modes if m == "standalone"]
    if "cluster" in modes and not (_MODE_FIXTURES & set(metafunc.fixturenames)):
        modes = ["standalone"]
    metafunc.parametrize("redis_mode", modes or ["standalone"], indirect=True)


@pytest.fixture
def redis_mode(request: pytest.FixtureRequest) -> RedisMode:
    """``standalone`` or ``cluster`` (parametrised in :data:`BOTH_MODES`, else standalone)."""
    mode: RedisMode = getattr(request, "param", "standalone")
    return mode


@pytest.fixture(scope="session")
def valkey_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyCluster]:
    """The session's one real Valkey Cluster (3 masters, 1 replica each), started on first use."""
    started = ValkeyCluster(tmp_path_factory.mktemp("valkey-cluster")).start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def app_redis(
    redis_mode: RedisMode, shared_valkey: str, request: pytest.FixtureRequest
) -> dict[str, Any]:
    """Settings that put an app on this test's Redis: the shared Valkey, or the emptied shared
    cluster with the shared Valkey as the job queue's broker."""
    if redis_mode == "standalone":
        return {"redis_url": shared_valkey}
    cluster: ValkeyCluster = request.getfixturevalue("valkey_cluster")
    return {"redis_url": ClusterHandle(cluster).url, "broker_url": shared_valkey}


def _with_broker(overrides: dict[str, Any], shared_valkey: str) -> dict[str, Any]:
    """A cluster app's broker is a standalone Redis (the shared Valkey unless given)."""
    if is_cluster_url(overrides.get("redis_url")) and overrides.get("broker_url") is None:
        return {**overrides, "broker_url": shared_valkey}
    return overrides


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
def valkey_server(
    tmp_path: Path, redis_mode: RedisMode, request: pytest.FixtureRequest
) -> Iterator[Callable[[], ValkeyHandle]]:
    """Factory: each call starts one more server in its own data folder; all stopped at teardown.

    In the cluster pass it hands out the session's cluster, emptied (once per test: a test that
    needs two servers is ``standalone_only``)."""
    handles: list[ValkeyHandle] = []

    def start() -> ValkeyHandle:
        if redis_mode == "cluster":
            cluster: ValkeyCluster = request.getfixturevalue("valkey_cluster")
            return ClusterHandle(cluster)
        handle = ValkeyHandle(tmp_path / f"valkey-{len(handles)}")
        handles.append(handle)
        return handle

    yield start
    for handle in handles:
        handle.stop()


@pytest.fixture
async def client_factory(
    shared_valkey: str, app_redis: dict[str, Any], tmp_path: Path
) -> AsyncIterator[ClientFactory]:
    """``client_factory(generator=None, passwords=None, **settings)``: a started app (on this
    test's Redis, see :func:`app_redis`, unless ``redis_url`` is given) and a client of it; every
    app is shut down (lifespan exit) at teardown."""
    async with AsyncExitStack() as stack:

        async def make(
            *,
            generator: Generator | None = None,
            passwords: Passwords | None = None,
            **overrides: Any,
        ) -> AppClient:
            overrides = _with_broker({**app_redis, **overrides}, shared_valkey)
            redis_url = overrides.pop("redis_url")
            settings = app_settings(redis_url, tmp_path / "data", **overrides)
            app = build_app(settings, generator=generator, passwords=passwords)
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = AppClient.of(app)
            await stack.enter_async_context(client)
            stack.push_async_callback(client.close_children)
            return client

        yield make


@pytest.fixture
def live_servers(
    shared_valkey: str, app_redis: dict[str, Any], tmp_path: Path
) -> Iterator[LiveServers]:
    """``live_servers(n=1, redis_url=None, realtime=None, **settings)``: ``n`` started app
    instances sharing one keyspace (this test's Redis, see :func:`app_redis`, and a fresh key
    prefix unless given); all stopped at teardown, newest first."""
    started: list[LiveServer] = []

    def start(
        n: int = 1,
        *,
        redis_url: str | None = None,
        realtime: RealtimeSettings | None = None,
        **overrides: Any,
    ) -> list[LiveServer]:
        fields: dict[str, Any] = {"log_level": "warning", "warm_up": False, "workers": 1}
        fields.update(app_redis)
        if redis_url is not None:
            fields.update(redis_url=redis_url, broker_url=None)
        fields = _with_broker({**fields, **overrides}, shared_valkey)
        settings = app_settings(fields.pop("redis_url"), tmp_path / "data", **fields)
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
