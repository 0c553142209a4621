"""Real-time fixtures: whole apps under uvicorn on free ports, one real Valkey, real sockets.

``app_servers(handle, n)`` starts ``n`` app instances (the harness's
:class:`~tests.harness.LiveServer`: each its own uvicorn server in a thread, with its own event
loop, Redis client and hub) on the Valkey of ``handle``; all are stopped at teardown.
``new_world(url)`` creates a world and returns its id. :class:`Client` is a small protocol
client over the ``websockets`` library.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect

from tests.accounts import sign_in
from tests.conftest import LiveServers, ValkeyHandle
from tests.harness import LiveServer
from worldgen.settings import RealtimeSettings
from worldgen.store.client import connect as redis_connect
from worldgen.store.keys import Keys
from worldgen.store.ratelimit import Limit, RateLimits
from worldgen.store.worlds import WorldRepo
from worldgen.web.auth.sessions import COOKIE_NAME

T = TypeVar("T")
Json = dict[str, Any]

FAST = RealtimeSettings(
    presence_timeout_s=4.0,  # a stall of a busy two-core machine is not a departure
    heartbeat_s=0.5,
    maintenance_s=0.25,
    backoff_base_s=0.05,
    backoff_cap_s=0.5,
    send_timeout_s=3.0,
    hello_timeout_s=3.0,
)
"""Short timeouts so presence and recovery tests take seconds, not minutes."""


RATE_LIMITS = RateLimits(
    register_address=Limit(count=1_000_000, window_s=3600),
    chat=Limit(count=1_000_000, window_s=60),
)
"""Chatting needs an account (issue 6): clients register cheaply and without limits, and the
per-account chat limit stays out of the way of the per-connection one."""

AppServer = LiveServer
AppServers = Callable[..., list[AppServer]]


@pytest.fixture
def app_servers(live_servers: LiveServers) -> AppServers:
    """Factory: ``app_servers(handle, n=2, realtime=FAST)`` -> started servers on the Valkey of
    ``handle``, with the default key prefix (:func:`new_world` writes there directly)."""

    def start(
        handle: ValkeyHandle, n: int = 2, realtime: RealtimeSettings = FAST
    ) -> list[AppServer]:
        return live_servers(
            n,
            redis_url=handle.url,
            realtime=realtime,
            key_prefix="wg",  # the prefix of Keys(), where new_world writes
            rate_limits=RATE_LIMITS,
        )

    return start


_OPEN: list[Client] = []
"""Clients opened by the running test (closed by :func:`run` even when the test fails)."""


def run(coro: Awaitable[T]) -> T:
    """Run a coroutine to completion on a fresh event loop, then close any client it left."""

    async def main() -> T:
        try:
            return await coro
        finally:
            left, _OPEN[:] = list(_OPEN), []
            for client in left:
                await client.close()

    return asyncio.run(main())


async def with_redis(url: str, body: Callable[[Redis], Awaitable[T]]) -> T:
    """Run ``body(client)`` on a fresh Redis client and close it."""
    client = redis_connect(url)
    try:
        return await body(client)
    finally:
        await client.aclose()


async def new_world(url: str, name: str = "Shared world", owner: str | None = None) -> str:
    """Create a world directly in Redis and return its id (``owner``: a user id)."""

    async def create(r: Redis) -> str:
        record = await WorldRepo(r, Keys()).create(
            name=name, tileset="terrain", kind="tiled", seed=7, owner=owner
        )
        return record.id

    return await with_redis(url, create)


async def _session_cookie(ws_url: str, username: str | None) -> str:
    """Register an account on the app behind ``ws_url``; the ``Cookie`` header of its session."""
    base = "http" + ws_url.split("/ws/", 1)[0][2:]
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        await sign_in(http, username)
        return f"{COOKIE_NAME}={http.cookies[COOKIE_NAME]}"


class Client:
    """A protocol client: hello on connect, then typed helpers over JSON frames."""

    def __init__(self, ws: ClientConnection, welcome: Json, cookie: str | None = None) -> None:
        self.ws = ws
        self.welcome = welcome
        self.cookie = cookie
        """The ``Cookie`` header of its session (None for a guest): another socket of the same
        account passes it to :meth:`open`."""
        self.you: Json = welcome["you"]
        self._beat: asyncio.Task[None] | None = None
        _OPEN.append(self)

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        last_id: str | None = None,
        guest: Json | None = None,
        user: str | None = None,
        max_size: int | None = 4 << 20,
        cookie: str | None = None,
    ) -> Client:
        """Connect and say hello: signed in to a new account (named ``user``, or a fresh name),
        to the session of ``cookie`` when given (another socket of the same account), or, when
        ``guest`` is given, as that guest (guests can watch, not chat)."""
        headers: dict[str, str] = {}
        if guest is None:
            cookie = cookie or await _session_cookie(url, user)
            headers["Cookie"] = cookie
        ws = await connect(
            url, max_size=max_size, open_timeout=10, close_timeout=2, additional_headers=headers
        )
        hello: Json = {"type": "hello"}
        if last_id is not None:
            hello["last_id"] = last_id
        if guest is not None:
            hello["guest"] = guest
        try:
            await ws.send(json.dumps(hello))
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if frame["type"] == "welcome":
                    return cls(ws, frame, cookie if guest is None else None)
        except BaseException:
            await ws.close()
            raise

    async def send(self, message: Json | str) -> None:
        """Send a message (a dict is JSON-encoded; a str is sent as is)."""
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))

    async def chat(self, text: str, msg_id: str | None = None) -> str:
        """Send a chat message; returns its client id."""
        msg_id = msg_id or uuid.uuid4().hex
        await self.send({"type": "chat", "id": msg_id, "text": text})
        return msg_id

    async def recv(self, timeout: float = 5.0) -> Json:
        """The next frame."""
        frame: Json = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        return frame

    async def until(self, pred: Callable[[Json], bool], timeout: float = 5.0) -> Json:
        """The first frame matching ``pred`` (others are skipped)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.recv(max(0.01, deadline - loop.time()))
            if pred(frame):
                return frame

    def keep_alive(self, interval: float = 0.4) -> None:
        """Send heartbeats in the background until :meth:`close`."""

        async def beat() -> None:
            while True:
                await asyncio.sleep(interval)
                await self.send({"type": "heartbeat"})

        self._beat = asyncio.create_task(beat())

    async def close(self) -> None:
        """Stop heartbeats and close the socket (normal closure)."""
        beat, self._beat = self._beat, None
        if beat is not None:
            beat.cancel()
            await asyncio.wait({beat})
            if not beat.cancelled():
                beat.exception()  # a closed socket ends the beat; that is expected here
        await self.ws.close()
        if self in _OPEN:
            _OPEN.remove(self)
