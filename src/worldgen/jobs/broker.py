"""The job queue: Dramatiq's Redis broker and the one actor, built per process from settings.

Nothing here exists at import time (Dramatiq's module-level ``@actor`` would create a global
broker on localhost): :func:`build_broker` makes a broker on a URL, under the deployment's key
prefix (``Keys.broker_namespace``), and :func:`declare_actor` declares the job actor on it. The
web app declares it only to send messages; a worker (:mod:`worldgen.jobs.worker`) declares it
with the function that runs jobs.

Messages carry only a job id: the job's kind and input are in its record
(:mod:`worldgen.store.jobs`). Dramatiq acknowledges a message after the actor returns, so a
worker killed mid-job leaves it unacknowledged; once that worker's heartbeat is older than
``heartbeat_timeout_ms``, queue maintenance puts it back and another worker runs it again.
A failed attempt is retried by Dramatiq's ``Retries`` (with back-off) until the runner, which
counts attempts in the record, ends the job ``failed``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AsyncIO

from worldgen.store.jobs import broker_client
from worldgen.store.keys import Keys

__all__ = [
    "ACTOR",
    "HEARTBEAT_TIMEOUT_MS",
    "MAINTENANCE_CHANCE",
    "MAX_ATTEMPTS",
    "QUEUE",
    "TIME_LIMIT_MS",
    "JobQueue",
    "RunJob",
    "build_broker",
    "declare_actor",
]

QUEUE = "jobs"
ACTOR = "worldgen_job"
MAX_ATTEMPTS = 3
"""Attempts of one job (a killed worker's attempt counts), then it ends ``failed``."""
HEARTBEAT_TIMEOUT_MS = 60_000
"""A worker silent this long is dead: its unacknowledged messages go back to the queue."""
MAINTENANCE_CHANCE = 10_000
"""Per million broker commands, how many also run queue maintenance (requeue dead workers'
messages): about one in a hundred, so an idle worker's polls find a dead one within minutes."""
TIME_LIMIT_MS = 6 * 3600 * 1000
"""Longest one attempt may run (a 16384 px export at scale 1 computes 268 M cells)."""

RunJob = Callable[[str], Awaitable[None]]
"""Runs the job with this id (a worker's :meth:`~worldgen.jobs.runner.JobRunner.run`)."""


def build_broker(
    url: str,
    keys: Keys,
    *,
    heartbeat_timeout_ms: int = HEARTBEAT_TIMEOUT_MS,
    maintenance_chance: int = MAINTENANCE_CHANCE,
) -> RedisBroker:
    """A Redis broker on ``url`` under ``keys``' prefix, with Dramatiq's default middleware
    (retries, time limits, ...) and ``AsyncIO`` (the actor is a coroutine)."""
    broker = RedisBroker(  # type: ignore[no-untyped-call]  # Dramatiq's broker is untyped
        client=broker_client(url),
        namespace=keys.broker_namespace(),
        heartbeat_timeout=heartbeat_timeout_ms,
        maintenance_chance=maintenance_chance,
    )
    broker.add_middleware(AsyncIO())
    return broker


async def _not_here(job_id: str) -> None:
    raise RuntimeError("this process only sends jobs; run `worldgen worker` to run them")


def declare_actor(broker: RedisBroker, run: RunJob | None = None) -> dramatiq.Actor[[str], None]:
    """The job actor on ``broker``; ``run`` runs a job (None: this process only sends)."""
    return dramatiq.Actor(
        run or _not_here,
        broker=broker,
        actor_name=ACTOR,
        queue_name=QUEUE,
        priority=0,
        options={
            "max_retries": MAX_ATTEMPTS,
            "min_backoff": 1000,
            "max_backoff": 30_000,
            "time_limit": TIME_LIMIT_MS,
        },
    )


class JobQueue:
    """The sending side, for the web app: the broker and the actor, with an async ``send``."""

    def __init__(self, url: str, keys: Keys) -> None:
        self.broker = build_broker(url, keys)
        self.actor = declare_actor(self.broker)

    async def send(self, job_id: str) -> None:
        """Queue the job ``job_id`` (the broker's client blocks: off the event loop)."""
        await asyncio.to_thread(self.actor.send, job_id)

    def close(self) -> None:
        """Close the broker's connections."""
        self.broker.close()
