"""Connecting to Redis/Valkey with bounded, jittered retries and health checks.

A dropped connection is retried a few times with back-off, then the error surfaces
(``redis.exceptions.ConnectionError``/``TimeoutError``) so the caller can answer 503. The pool
reconnects by itself on the next command once the server is back: nothing waits forever.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import BusyLoadingError, ConnectionError, RedisError, TimeoutError

__all__ = ["StorageError", "connect"]

StorageError = RedisError
"""Any failure to reach or use storage (the Redis client's own base error, named here so that
no code outside :mod:`worldgen.store` imports the client library). The web layer answers it
like :class:`~worldgen.errors.StorageUnavailableError`."""

RETRIES = 2
SOCKET_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 2.0
HEALTH_CHECK_INTERVAL_S = 10


def connect(url: str, *, max_connections: int = 64) -> Redis:
    """An asyncio client for ``url`` (``redis://``, ``rediss://`` or ``unix://``); lazy, no I/O."""
    return Redis.from_url(
        url,
        retry=Retry(ExponentialWithJitterBackoff(cap=1.0, base=0.05), RETRIES),
        retry_on_error=[ConnectionError, TimeoutError, BusyLoadingError],
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        max_connections=max_connections,
        decode_responses=False,
    )
