"""Connecting to Redis/Valkey, and :class:`Store`: every repository of an app on one client.

A dropped connection is retried a few times with back-off, then the error surfaces
(:data:`StorageError`) so the caller can answer 503. The pool reconnects by itself on the next
command once the server is back: nothing waits forever.

The pool is a *blocking* one of ``settings.redis_pool_size`` connections: a burst of requests
larger than the pool waits (at most ``settings.redis_pool_timeout_s``) for a connection to come
back instead of being refused; only a wait past that bound is a :data:`StorageError` (503).

:class:`Store` is how the rest of worldgen reaches Redis: the web app and the real-time hub get
one and use its repositories; none of them holds (or imports) the client itself.

**On a Redis/Valkey Cluster** (a ``redis+cluster://`` or ``rediss+cluster://`` URL naming any
of its nodes) the client is redis-py's asyncio
:class:`~redis.asyncio.cluster.RedisCluster`, seeded with the URL's node (it discovers the rest
and follows ``MOVED``/``ASK`` and failovers). Its retries are bounded too
(:data:`CLUSTER_RETRIES` with jittered back-off, about 4 s in all: long enough to ride out a
replica's promotion after a master dies, short enough for a 503 rather than a hang). Its pool
is one per node and does not queue: a burst beyond ``max_connections`` per node is a
:data:`StorageError`. The cluster client speaks the same commands as the standalone one, so
every repository works on either; none of them sends a command, transaction or script whose
keys span two slots (``docs/redis-schema.md``, "Cluster").
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    ConnectionError,
    RedisClusterException,
    RedisError,
    SlotNotCoveredError,
    TimeoutError,
    TryAgainError,
)

from worldgen.settings import Settings
from worldgen.store.chat import ChatStore
from worldgen.store.edits import EditStore
from worldgen.store.jobs import JobStore
from worldgen.store.keys import Keys
from worldgen.store.members import MemberRepo
from worldgen.store.models import ModelRepo
from worldgen.store.presence import PresenceStore
from worldgen.store.pubsub import PubSub
from worldgen.store.ratelimit import RateLimiter
from worldgen.store.sessions import Revocations, SessionStore
from worldgen.store.tiles import TileCache
from worldgen.store.users import UserRepo
from worldgen.store.worlds import WorldRepo

__all__ = ["StorageError", "Store", "connect"]

StorageError = RedisError
"""Any failure to reach or use storage (the Redis client's own base error, named here so that
no code outside :mod:`worldgen.store` imports the client library). The web layer answers it
like :class:`~worldgen.errors.StorageUnavailableError`."""

RETRIES = 2
SOCKET_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 2.0
HEALTH_CHECK_INTERVAL_S = 10
POOL_SIZE = 64
"""Connections of a client made without settings (the CLI's backup and restore)."""
POOL_TIMEOUT_S = 5.0
"""Longest wait for a free connection of a client made without settings."""
CLUSTER_RETRIES = 8
"""Attempts after the first of a command on a cluster (back-off 0.05 s doubling, capped at 1 s:
about 4 s in all, enough for a replica to take over a dead master's slots)."""


class _Cluster(RedisCluster):
    """The cluster client, whose failures to reach the cluster are all :data:`StorageError`:
    redis-py raises exceptions that are not a ``RedisError`` when no seed node answers
    (``initialize``) and while a failover leaves slots without a master
    (:class:`~redis.exceptions.SlotNotCoveredError`); to callers both are storage unavailable
    (503, or exit code 2 for the CLI), as with a standalone server."""

    async def initialize(self, *args: Any, **kwargs: Any) -> RedisCluster:
        try:
            return await super().initialize(*args, **kwargs)
        except RedisClusterException as exc:
            raise ConnectionError(str(exc)) from exc

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().execute_command(*args, **kwargs)
        except SlotNotCoveredError as exc:
            raise ClusterDownError(str(exc)) from exc


CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
"""URL schemes that name a cluster, and the scheme of the node URL behind each."""


def _seed_nodes(rest: str) -> tuple[str, list[ClusterNode]]:
    """Split a cluster URL's ``[user:password@]host:port[,host:port...][/0][?...]`` (after the
    scheme) into the URL part of the first node and the other seed nodes: the client needs any
    one of them to answer when it starts."""
    auth, at, hosts = rest.rpartition("@")
    cut = min((i for i in (hosts.find("/"), hosts.find("?")) if i >= 0), default=len(hosts))
    first, *others = hosts[:cut].split(",")
    seeds = []
    for other in others:
        host, _, port = other.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"a cluster seed must be host:port, got {other!r}")
        seeds.append(ClusterNode(host, int(port)))
    return f"{auth}{at}{first}{hosts[cut:]}", seeds


def connect(
    url: str,
    *,
    max_connections: int = POOL_SIZE,
    pool_timeout_s: float = POOL_TIMEOUT_S,
) -> Redis:
    """An asyncio client for ``url`` (``redis://``, ``rediss://``, ``unix://``, or a cluster's
    ``redis+cluster://``, ``rediss+cluster://``); lazy, no I/O.

    Its pool holds at most ``max_connections``; a command that finds them all busy waits up to
    ``pool_timeout_s`` for one (then :data:`StorageError`), rather than failing at once.

    With a cluster scheme, ``url`` names any node of a Redis Cluster, or several as seeds
    (``redis+cluster://h1:6379,h2:6379,h3:6379``), and the client is a
    :class:`~redis.asyncio.cluster.RedisCluster` (``max_connections`` per node, no waiting for
    a free one). It is typed as :class:`~redis.asyncio.Redis` because the repositories use only
    the commands both clients share; ``isinstance(client, RedisCluster)`` tells them apart where it
    matters (pub/sub, ``WAIT``).
    """
    scheme, sep, rest = url.partition("://")
    if scheme in CLUSTER_SCHEMES:
        first, more = _seed_nodes(rest)
        cluster = _Cluster.from_url(
            f"{CLUSTER_SCHEMES[scheme]}{sep}{first}",
            startup_nodes=more,
            max_connections=max_connections,
            retry=Retry(ExponentialWithJitterBackoff(cap=1.0, base=0.05), CLUSTER_RETRIES),
            retry_on_error=[ConnectionError, TimeoutError, BusyLoadingError, TryAgainError],
            socket_timeout=SOCKET_TIMEOUT_S,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            health_check_interval=HEALTH_CHECK_INTERVAL_S,
            decode_responses=False,
        )
        return cast(Redis, cluster)
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_timeout_s,
        retry=Retry(ExponentialWithJitterBackoff(cap=1.0, base=0.05), RETRIES),
        retry_on_error=[ConnectionError, TimeoutError, BusyLoadingError],
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        decode_responses=False,
    )
    client = Redis(connection_pool=pool)
    client.auto_close_connection_pool = True  # closing the client closes its pool
    return client


@dataclass(frozen=True, slots=True)
class Store:
    """The repositories of one app instance, all on one Redis client, configured by the app's
    settings. Built by :meth:`open` (lazy: no I/O until the first command); closed once."""

    keys: Keys
    worlds: WorldRepo
    tiles: TileCache
    users: UserRepo
    sessions: SessionStore
    members: MemberRepo
    limiter: RateLimiter
    chat: ChatStore
    presence: PresenceStore
    pubsub: PubSub
    """The instance's one pub/sub listener (run by its owner with ``start``/``stop``)."""
    revocations: Revocations
    edits: EditStore
    """Edit logs, overlays, undo stacks and markers (issue 14)."""
    jobs: JobStore
    """Background jobs' records and results (issue 15)."""
    models: ModelRepo
    """Uploaded models: records, bytes, quotas, sharing, the worlds over them (issue 15)."""
    _redis: Redis = field(repr=False)

    @classmethod
    def open(cls, url: str, settings: Settings) -> Store:
        """The repositories on a new client for ``url``, with the limits of ``settings``."""
        redis = connect(
            url,
            max_connections=settings.redis_pool_size,
            pool_timeout_s=settings.redis_pool_timeout_s,
        )
        keys = Keys(settings.key_prefix)
        rt = settings.realtime
        pubsub = PubSub(redis, backoff_base_s=rt.backoff_base_s, backoff_cap_s=rt.backoff_cap_s)
        revocations = Revocations(redis, keys, pubsub)
        return cls(
            keys=keys,
            worlds=WorldRepo(redis, keys, pubsub=pubsub, cache_ttl_s=settings.world_cache_s),
            tiles=TileCache(redis, keys, settings.tile_cache_max),
            users=UserRepo(redis, keys),
            sessions=SessionStore(
                redis,
                keys,
                revocations,
                idle_s=settings.session_idle_s,
                max_s=max(settings.session_max_s, settings.session_idle_s),
            ),
            members=MemberRepo(redis, keys),
            limiter=RateLimiter(redis, keys, settings.rate_limits),
            chat=ChatStore(redis, keys, maxlen=rt.chat_maxlen, dedup_ttl_s=rt.dedup_ttl_s),
            presence=PresenceStore(redis, keys, timeout_s=rt.presence_timeout_s),
            pubsub=pubsub,
            revocations=revocations,
            edits=EditStore(redis, keys),
            jobs=JobStore(redis, keys, result_ttl_s=settings.job_result_ttl_s, pubsub=pubsub),
            models=ModelRepo(redis, keys, quota_bytes=settings.model_bytes_per_user),
            _redis=redis,
        )

    async def ping(self, timeout_s: float) -> bool:
        """True when Redis answers ``PING`` within ``timeout_s`` (never raises)."""
        try:
            async with asyncio.timeout(timeout_s):
                return bool(await self._redis.ping())
        except (RedisError, OSError, TimeoutError):
            return False

    async def aclose(self) -> None:
        """Stop the pub/sub listener (if running) and close the client's connections."""
        await self.pubsub.stop()
        await self._redis.aclose()
