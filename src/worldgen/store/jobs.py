"""Background jobs' records and results in Redis (issue 15): the job repository.

A job id is ``<world id>.<token>``: the world's id makes every key of the job live under the
world's hash tag, and anyone asking about a job is checked against that world. A job record is
a hash (``Keys.job(..., "meta")``) that the web app creates (``queued``) and a worker moves on
(``running`` with a percent and a stage, then ``done`` or ``failed`` with a message). A result
is written by appending bands to a ``partial`` string, renamed to ``png`` when complete, so a
reader never sees half a picture, and a retried attempt starts by deleting the partial one.
Finished records and results expire after ``result_ttl_s``: the download link expires with them.

Each user has a sorted set of their queued or running jobs (``Keys.user_jobs``), checked and
added to by one script, so the per-user limit holds across app instances. An entry counts until
its job ends or :data:`ACTIVE_TTL_S` passes (a job whose message was lost frees its slot).
Job keys and the user's set are in different slots, so they are written by separate commands.

Every change of a job's state or progress is also announced on its world's pub/sub channel
(``Keys.world_channel``, the channel the real-time hub listens to for the world's rooms; sharded
pub/sub on a cluster, through :class:`~worldgen.store.pubsub.PubSub`), so its owner's open
sockets of that world show it live (the ``job`` frame of ``docs/realtime.md``). The payload is a
:func:`job_signal`; an announcement is best effort (pub/sub is lossy, and a failed publish is
logged, not raised): the record stays the truth, and pages still poll it now and then.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import redis
import structlog
from redis.asyncio import Redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import BusyLoadingError, ConnectionError, RedisError, TimeoutError
from redis.retry import Retry

from worldgen.store.keys import Keys, valid_world_id
from worldgen.store.pubsub import PubSub

__all__ = [
    "ACTIVE_TTL_S",
    "JOB_SIGNAL_ORIGIN",
    "JobRecord",
    "JobState",
    "JobStore",
    "broker_client",
    "job_signal",
    "parse_job_id",
]

log = structlog.get_logger("worldgen.store")

JobState = Literal["queued", "running", "done", "failed"]
ACTIVE_TTL_S = 86_400
"""A queued or running job's record lives this long past its last progress, and counts against
its owner's limit at most this long."""
JOB_SIGNAL_ORIGIN = "jobs"
"""The ``o`` (origin) of a job announcement: not an app instance's id (those are hex), so every
instance delivers it, the one whose request made the change included."""
_TOKEN_BYTES = 12
"""``token_urlsafe(12)``: 16 characters (``Keys.job``'s token shape)."""

_RESERVE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
return 1
"""
"""Prune stale entries, then add the job unless the user is at the limit (1 added, 0 refused)."""

_PROGRESS = """
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then
  return 0
end
redis.call('HSET', KEYS[1], 'percent', ARGV[1], 'stage', ARGV[2], 'updated', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return redis.call('HMGET', KEYS[1], 'owner', 'kind')
"""
"""Progress of a running job (its owner and kind, to announce it), or nothing when it is not
running (0)."""

_COMPLETE = """
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then
  return 0
end
local size = redis.call('STRLEN', KEYS[2])
redis.call('RENAME', KEYS[2], KEYS[3])
redis.call('EXPIRE', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'done', 'percent', 100, 'stage', 'done', 'size', size,
           'updated', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""
"""meta, partial, png: the partial result becomes the result if the job is still running."""


def broker_client(url: str) -> redis.Redis:
    """A blocking client for the job queue's broker (Dramatiq's Redis broker is synchronous),
    with the same bounded timeouts and retries as the app's own client; lazy, no I/O."""
    pool = redis.ConnectionPool.from_url(
        url,
        retry=Retry(ExponentialWithJitterBackoff(cap=1.0, base=0.05), 2),
        retry_on_error=[ConnectionError, TimeoutError, BusyLoadingError],
        socket_timeout=10.0,
        socket_connect_timeout=2.0,
        health_check_interval=10,
    )
    return redis.Redis(connection_pool=pool)


def job_signal(record: JobRecord) -> str:
    """The announcement of ``record``'s state on its world's channel (JSON): ``{"k": "job",
    "o": "jobs", "owner": <user id>, "m": <the frame>}`` where the frame is what the owner's
    sockets receive: ``{"type": "job", "id", "world_id", "kind", "state", "percent", "stage",
    "message"}`` (validated by :mod:`worldgen.realtime.fanout` on receipt)."""
    frame = {
        "type": "job",
        "id": record.id,
        "world_id": record.world_id,
        "kind": record.kind,
        "state": record.state,
        "percent": record.percent,
        "stage": record.stage,
        "message": record.message,
    }
    signal = {"k": "job", "o": JOB_SIGNAL_ORIGIN, "owner": record.owner, "m": frame}
    return json.dumps(signal, separators=(",", ":"))


def parse_job_id(job_id: str) -> tuple[str, str] | None:
    """``(world id, token)`` of a well-formed job id, else None (ids are opaque to clients)."""
    world_id, dot, token = job_id.partition(".")
    if not dot or not valid_world_id(world_id) or len(token) != 16:
        return None
    if not all(c.isascii() and (c.isalnum() or c in "-_") for c in token):
        return None
    return world_id, token


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One job as stored. ``params`` is the job's input (JSON object: the world's spec and the
    window); ``size`` the result's length in bytes once done; times are epoch seconds."""

    id: str
    world_id: str
    owner: str
    kind: str
    state: JobState
    percent: int
    stage: str
    message: str
    params: dict[str, Any]
    attempts: int
    size: int
    created: float
    updated: float

    @property
    def active(self) -> bool:
        """Queued or running (it counts against the owner's limit)."""
        return self.state in ("queued", "running")

    @classmethod
    def from_hash(cls, job_id: str, raw: Mapping[bytes | str, bytes | str]) -> JobRecord:
        """The record of a ``HGETALL`` reply."""
        f = {_text(k): _text(v) for k, v in raw.items()}
        return cls(
            id=job_id,
            world_id=f["world_id"],
            owner=f["owner"],
            kind=f["kind"],
            state=f["state"],  # type: ignore[arg-type]  # written by this module only
            percent=int(f.get("percent", "0")),
            stage=f.get("stage", ""),
            message=f.get("message", ""),
            params=json.loads(f.get("params", "{}")),
            attempts=int(f.get("attempts", "0")),
            size=int(f.get("size", "0")),
            created=float(f["created"]),
            updated=float(f.get("updated", f["created"])),
        )


class JobStore:
    """Create, read and advance job records; write and read their results."""

    def __init__(
        self, redis: Redis, keys: Keys, *, result_ttl_s: int, pubsub: PubSub | None = None
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.result_ttl_s = result_ttl_s
        self._publisher = pubsub if pubsub is not None else PubSub(redis)
        """Publishes the announcements (publishing needs no running listener)."""
        self._reserve = redis.register_script(_RESERVE)
        self._progress = redis.register_script(_PROGRESS)
        self._complete = redis.register_script(_COMPLETE)

    async def _announce(self, record: JobRecord | None) -> None:
        """Publish ``record``'s state on its world's channel (best effort: never raises)."""
        if record is None:
            return
        try:
            await self._publisher.publish(
                self.keys.world_channel(record.world_id), job_signal(record)
            )
        except RedisError as exc:
            log.info("job state not announced", job=record.id, error=type(exc).__name__)

    def _key(self, job_id: str, part: str = "meta") -> str:
        parsed = parse_job_id(job_id)
        if parsed is None:
            raise ValueError(f"invalid job id {job_id!r}")
        return self.keys.job(parsed[0], parsed[1], part)

    async def create(
        self, world_id: str, owner: str, kind: str, params: dict[str, Any], *, limit: int
    ) -> JobRecord | None:
        """A new ``queued`` job of ``owner`` on ``world_id``; None when ``owner`` already has
        ``limit`` jobs queued or running (nothing is written then)."""
        job_id = f"{world_id}.{secrets.token_urlsafe(_TOKEN_BYTES)}"
        now = time.time()
        user_key = self.keys.user_jobs(owner)
        added = await self._reserve(keys=[user_key], args=[now, limit, now + ACTIVE_TTL_S, job_id])
        if not int(added):
            return None
        record = JobRecord(
            id=job_id,
            world_id=world_id,
            owner=owner,
            kind=kind,
            state="queued",
            percent=0,
            stage="queued",
            message="",
            params=params,
            attempts=0,
            size=0,
            created=now,
            updated=now,
        )
        key = self._key(job_id)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(
                    key,
                    mapping={
                        "world_id": world_id,
                        "owner": owner,
                        "kind": kind,
                        "state": "queued",
                        "percent": 0,
                        "stage": "queued",
                        "message": "",
                        "params": json.dumps(params, separators=(",", ":")),
                        "attempts": 0,
                        "size": 0,
                        "created": repr(now),
                        "updated": repr(now),
                    },
                )
                pipe.expire(key, ACTIVE_TTL_S)
                await pipe.execute()
        except BaseException:
            await self.redis.zrem(user_key, job_id)
            raise
        await self._announce(record)
        return record

    async def get(self, job_id: str) -> JobRecord | None:
        """The job's record, or None (unknown, malformed or expired)."""
        if parse_job_id(job_id) is None:
            return None
        raw = await self.redis.hgetall(self._key(job_id))
        return JobRecord.from_hash(job_id, raw) if raw else None

    async def active_ids(self, owner: str) -> list[str]:
        """Ids of ``owner``'s jobs that count against the limit now, oldest first."""
        key = self.keys.user_jobs(owner)
        ids = await self.redis.zrangebyscore(key, time.time(), "+inf")
        return [_text(i) for i in ids if isinstance(i, bytes | str)]

    async def active(self, owner: str) -> int:
        """How many of ``owner``'s jobs count against the limit now."""
        key = self.keys.user_jobs(owner)
        return int(await self.redis.zcount(key, time.time(), "+inf"))

    async def start(self, job_id: str) -> JobRecord | None:
        """Mark an attempt as started (``running``, one more attempt; any partial result of an
        earlier attempt deleted); None when the job is gone or already ended (skip it)."""
        record = await self.get(job_id)
        if record is None or not record.active:
            return None
        key = self._key(job_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, "attempts", 1)
            pipe.hset(
                key,
                mapping={"state": "running", "percent": 0, "stage": "starting", "updated": _now()},
            )
            pipe.expire(key, ACTIVE_TTL_S)
            pipe.delete(self._key(job_id, "partial"))
            attempts, *_ = await pipe.execute()
        if not attempts:
            return None
        started = JobRecord.from_hash(job_id, await self.redis.hgetall(key))
        await self._announce(started)
        return started

    async def progress(self, job_id: str, percent: int, stage: str) -> bool:
        """Record how far the running attempt is (0..99 while running); False when the job is
        no longer running (cancelled, or ended by another attempt): stop working on it."""
        percent = max(0, min(99, percent))
        now = _now()
        running = await self._progress(
            keys=[self._key(job_id)], args=[percent, stage, now, ACTIVE_TTL_S]
        )
        if not isinstance(running, list):
            return False
        owner, kind = (_text(v) for v in running)
        world_id = job_id.partition(".")[0]
        await self._announce(
            JobRecord(
                id=job_id,
                world_id=world_id,
                owner=owner,
                kind=kind,
                state="running",
                percent=percent,
                stage=stage,
                message="",
                params={},
                attempts=0,
                size=0,
                created=0.0,
                updated=float(now),
            )
        )
        return True

    async def cancel(self, job_id: str, owner: str) -> bool:
        """End a queued or running job ``failed`` ("cancelled"); False if it had already ended.
        A running attempt notices at its next progress report and stops."""
        record = await self.get(job_id)
        if record is None or not record.active:
            return False
        await self.fail(job_id, owner, "cancelled by its owner")
        return True

    async def retrying(self, job_id: str, reason: str) -> None:
        """The attempt failed and the job goes back to the queue (``reason`` shown as stage)."""
        await self.redis.hset(
            self._key(job_id),
            mapping={
                "state": "queued",
                "stage": f"retrying after: {reason}"[:200],
                "updated": _now(),
            },
        )
        await self._announce(await self.get(job_id))

    async def append(self, job_id: str, data: bytes) -> None:
        """Append ``data`` to the attempt's partial result."""
        partial = self._key(job_id, "partial")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.append(partial, data)
            pipe.expire(partial, ACTIVE_TTL_S)
            await pipe.execute()

    async def complete(self, job_id: str, owner: str) -> bool:
        """The partial result becomes the result: ``done``, kept ``result_ttl_s``. False (and
        nothing changed) when the job is no longer running, e.g. cancelled meanwhile."""
        keys = [self._key(job_id, p) for p in ("meta", "partial", "png")]
        done = await self._complete(keys=keys, args=[self.result_ttl_s, _now()])
        if not int(done):
            return False
        await self.redis.zrem(self.keys.user_jobs(owner), job_id)
        await self._announce(await self.get(job_id))
        return True

    async def fail(self, job_id: str, owner: str, message: str) -> None:
        """The job ends ``failed`` with ``message`` (shown to its owner)."""
        key = self._key(job_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={"state": "failed", "stage": "failed", "message": message[:500]},
            )
            pipe.hset(key, "updated", _now())
            pipe.expire(key, self.result_ttl_s)
            pipe.delete(self._key(job_id, "partial"))
            await pipe.execute()
        await self.redis.zrem(self.keys.user_jobs(owner), job_id)
        await self._announce(await self.get(job_id))

    async def result_size(self, job_id: str) -> int:
        """Length of the finished result (0: none, or expired)."""
        return int(await self.redis.strlen(self._key(job_id, "png")))

    async def read_result(self, job_id: str, start: int, length: int) -> bytes:
        """``length`` bytes of the finished result from ``start`` (fewer at its end)."""
        data = await self.redis.getrange(self._key(job_id, "png"), start, start + length - 1)
        return data.encode() if isinstance(data, str) else bytes(data)


def _now() -> str:
    """The current time as stored in a record (``repr`` of epoch seconds)."""
    return repr(time.time())


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
