"""A job worker's Prometheus metrics: attempts by kind and outcome, their durations, the queue.

Each worker owns a :class:`JobMetrics` with its own registry (not the process-global one), read
by :meth:`JobMetrics.serve`'s HTTP server (``WORLDGEN_WORKER_METRICS_PORT``; every path answers
with the metrics, so ``GET /metrics`` doubles as a liveness probe). The queue gauge asks the
broker on every scrape (one Lua call), so it is never stale and costs nothing between scrapes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

__all__ = ["DURATION_BUCKETS", "JobMetrics", "Outcome"]

Outcome = Literal["done", "failed", "retried", "stopped"]
"""How an attempt ended: the job completed, failed for good, will be retried (the queue
redelivers it), or stopped because it was no longer running (cancelled by its owner)."""

DURATION_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)
"""Seconds: a small export takes a fraction of a second, a 16384² one many minutes."""


class JobMetrics:
    """The metrics of one worker process; ``queue_size`` counts the broker's unacknowledged
    messages (None: no queue gauge, e.g. in tests that have no broker)."""

    def __init__(self, queue_size: Callable[[], int] | None = None) -> None:
        self.registry = CollectorRegistry()
        self.attempts = Counter(
            "worldgen_jobs",
            "Job attempts that ended, by job kind and outcome.",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "worldgen_job_duration_seconds",
            "Wall time of a job attempt, by job kind and outcome.",
            ["kind", "outcome"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.busy = Gauge(
            "worldgen_job_worker_busy", "Jobs this worker runs now.", registry=self.registry
        )
        if queue_size is not None:
            queue = Gauge(
                "worldgen_job_queue_messages",
                "Messages of the job queue not yet acknowledged (waiting or running), as the "
                "broker counts them.",
                registry=self.registry,
            )
            queue.set_function(lambda: float(queue_size()))

    @contextmanager
    def attempt(self, kind: str) -> Iterator[Callable[[Outcome], None]]:
        """Time one attempt of a job of ``kind``: call the yielded function with its outcome
        (an attempt left without one, by an exception, counts as ``retried``)."""
        started = time.perf_counter()
        ended: list[Outcome] = []
        self.busy.inc()
        try:
            yield ended.append
        except BaseException:
            if not ended:
                ended.append("retried")
            raise
        finally:
            self.busy.dec()
            outcome = ended[-1] if ended else "retried"
            self.attempts.labels(kind, outcome).inc()
            self.duration.labels(kind, outcome).observe(time.perf_counter() - started)

    def serve(self, host: str, port: int) -> None:
        """Serve the metrics over HTTP on ``host:port`` from a daemon thread."""
        start_http_server(port, addr=host, registry=self.registry)
