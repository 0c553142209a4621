"""Bounded HTTP serving: header size/count/time limits and connection caps, plain and TLS."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trustme
import uvicorn

from worldgen.web.http_protocol import ConnectionLimits, RepeatFilter, bounded_protocol

pytestmark = pytest.mark.anyio

LIMITS = ConnectionLimits(
    max_header_bytes=4096,
    max_line_bytes=1024,
    max_headers=20,
    header_timeout_s=0.5,
    max_connections=50,
    max_per_client=3,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def hello(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


@asynccontextmanager
async def serving(
    tls: trustme.CA | None = None,
) -> AsyncIterator[tuple[int, ssl.SSLContext | None]]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    extra: dict[str, Any] = {}
    client_ctx: ssl.SSLContext | None = None
    if tls is not None:
        cert = tls.issue_cert("127.0.0.1")
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(server_ctx)
        client_ctx = ssl.create_default_context()
        tls.configure_trust(client_ctx)
        extra = {"ssl": server_ctx}
    config = uvicorn.Config(
        hello, http=bounded_protocol(LIMITS), log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    if tls is not None:
        # uvicorn builds its SSL context from files; hand the server a ready one instead
        config.ssl = extra["ssl"]
        config.load()
        config.ssl = extra["ssl"]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield port, client_ctx
    finally:
        server.should_exit = True
        await task
        sock.close()


async def exchange(port: int, payload: bytes, ctx: ssl.SSLContext | None = None) -> bytes:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1" if ctx else None
    )
    writer.write(payload)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


def request(*headers: tuple[str, str], pad_to: int | None = None) -> bytes:
    lines = [b"GET / HTTP/1.1", b"Host: x", b"Connection: close"]
    lines += [f"{k}: {v}".encode() for k, v in headers]
    raw = b"\r\n".join(lines) + b"\r\n\r\n"
    if pad_to is not None:  # one more header whose length makes the section exactly pad_to bytes
        fixed = len(raw) + len(b"P: \r\n")
        raw = raw[:-2] + b"P: " + b"p" * (pad_to - fixed) + b"\r\n\r\n"
        assert len(raw) == pad_to
    return raw


def status(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


async def test_header_section_at_the_limit_passes_and_one_byte_more_is_431() -> None:
    filler = tuple((f"H{i}", "v" * 900) for i in range(4))
    async with serving() as (port, _):
        assert status(await exchange(port, request(*filler, pad_to=LIMITS.max_header_bytes))) == 200
        over = await exchange(port, request(*filler, pad_to=LIMITS.max_header_bytes + 1))
        assert status(over) == 431
        assert b"request headers exceed 4096 bytes" in over


async def test_header_line_and_count_limits() -> None:
    line = LIMITS.max_line_bytes - len("Big")
    async with serving() as (port, _):
        assert status(await exchange(port, request(("Big", "b" * line)))) == 200
        reply = await exchange(port, request(("Big", "b" * (line + 1))))
        assert status(reply) == 431
        assert b"header line exceeds" in reply
        many = [(f"X{i}", "1") for i in range(LIMITS.max_headers - 2)]  # + Host + Connection
        assert status(await exchange(port, request(*many))) == 200
        reply = await exchange(port, request(*many, ("One", "more")))
        assert status(reply) == 431
        assert b"more than 20 request headers" in reply


async def test_a_long_request_line_is_414() -> None:
    async with serving() as (port, _):
        reply = await exchange(port, b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status(reply) == 414


async def test_idle_and_slow_header_connections_are_closed_with_408() -> None:
    async with serving() as (port, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        idle = await asyncio.wait_for(reader.read(), 5)  # sent nothing at all
        assert status(idle) == 408
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        reply = asyncio.create_task(reader.read(4096))  # returns as soon as the server answers
        for byte in b"GET / HTTP/1.1\r\nHost: x\r\n":  # one byte every 0.1 s: too slow in total
            if reply.done():
                break
            writer.write(bytes([byte]))
            await asyncio.sleep(0.1)
        slow = await asyncio.wait_for(reply, 5)
        assert status(slow) == 408
        writer.close()


async def test_connections_per_client_are_capped_with_a_clear_503() -> None:
    async with serving() as (port, _):
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        await asyncio.sleep(0.05)
        refused = await exchange(port, request())
        assert status(refused) == 503
        assert b"too many open connections from your address" in refused
        for _, writer in held:
            writer.close()
        await asyncio.sleep(0.1)
        assert status(await exchange(port, request())) == 200


async def test_limits_hold_under_tls() -> None:
    async with serving(trustme.CA()) as (port, ctx):
        assert status(await exchange(port, request(), ctx)) == 200
        big = request(("Big", "b" * 2000))
        assert status(await exchange(port, big, ctx)) == 431


def test_repeat_filter_lets_one_line_through_per_period_and_counts_the_rest() -> None:
    flt = RepeatFilter(every_s=60)

    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, msg, None, None)

    assert flt.filter(record("socket.accept() out of system resource"))
    assert not any(flt.filter(record("socket.accept() out of system resource")) for _ in range(99))
    assert flt.filter(record("another message"))
    flt.every_s = 0
    again = record("socket.accept() out of system resource")
    assert flt.filter(again)
    assert "99 more like it suppressed" in again.getMessage()
