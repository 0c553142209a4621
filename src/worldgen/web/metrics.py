"""Prometheus metrics of one app, in a registry of its own.

Each app owns a :class:`~prometheus_client.CollectorRegistry` (not the process-global one), so
several apps in one test process never clash and ``GET /metrics`` shows exactly this app. Names
follow Prometheus conventions: ``worldgen_`` prefix, base units (seconds), ``_total`` on counters.
Labels are bounded sets (route *templates*, methods, cache layers, error kinds): never a raw
path, a world id or a user id.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_GENERATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The app's collectors; ``render()`` gives the text exposition for ``GET /metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.request_duration = Histogram(
            "worldgen_http_request_duration_seconds",
            "HTTP request latency by route template and method.",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tile_generation = Histogram(
            "worldgen_tile_generation_seconds",
            "Time to compute one map tile in the generation pool (cache misses only).",
            buckets=_GENERATION_BUCKETS,
            registry=self.registry,
        )
        self.cache_hits = Counter(
            "worldgen_tile_cache_hits_total",
            "Tile requests answered by a cache layer (memory = in-process LRU, redis).",
            ["layer"],
            registry=self.registry,
        )
        self.cache_misses = Counter(
            "worldgen_tile_cache_misses_total",
            "Tile requests a cache layer could not answer.",
            ["layer"],
            registry=self.registry,
        )
        self.errors = Counter(
            "worldgen_errors_total",
            "Requests that ended in an error, by kind (validation, not_found, storage, ...).",
            ["kind"],
            registry=self.registry,
        )
        self.websocket_connections = Gauge(
            "worldgen_websocket_connections",
            "WebSocket connections currently open.",
            registry=self.registry,
        )
        self.generation_tasks = Gauge(
            "worldgen_generation_tasks",
            "Generation tasks (tile chunks, exports, edits) submitted to this instance's pool "
            "and not finished: the generation queue's depth.",
            registry=self.registry,
        )
        for layer in ("memory", "redis"):
            self.cache_hits.labels(layer=layer)
            self.cache_misses.labels(layer=layer)

    def render(self) -> tuple[bytes, str]:
        """The exposition body and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
