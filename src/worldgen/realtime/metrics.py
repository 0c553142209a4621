"""Prometheus view of a hub's counters (``worldgen_realtime_*``), read at scrape time.

A custom collector rather than counters updated on the hot path: the hub already counts, and a
scrape reads the numbers once. No labels, so no user or world id ever becomes a series. The
gauge ``worldgen_websocket_connections`` lives in :mod:`worldgen.web.metrics` and is set by the
hub's ``on_connections`` hook.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from worldgen.realtime.hub import Hub
from worldgen.realtime.stats import DELIVERY_BUCKETS_S


class RealtimeCollector(Collector):
    """Counters and gauges of one hub."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        """One sample per metric, from the hub's current counters."""
        stats = self.hub.stats
        counters = {
            "messages": ("Chat messages and pings stored (retries included).", stats.messages),
            "duplicate_messages": (
                "Retried messages answered from the dedup key.",
                stats.duplicates,
            ),
            "delivered_frames": ("Stream entries queued to local sockets.", stats.delivered),
            "dropped_clients": ("Slow clients dropped past their send queue.", stats.dropped_slow),
            "rate_limited": (
                "Connections closed for exceeding the rate limit.",
                stats.rate_limited,
            ),
            "client_errors": ("Error frames sent to clients.", stats.errors),
            "listener_reconnects": (
                "Times the pub/sub listener came back after losing Redis.",
                self.hub.pubsub.reconnects,
            ),
        }
        for name, (doc, value) in counters.items():
            yield CounterMetricFamily(f"worldgen_realtime_{name}", doc, value=value)
        cumulative, buckets = 0, []
        for bound, count in zip(
            [*(repr(b) for b in DELIVERY_BUCKETS_S), "+Inf"], stats.delivery_buckets, strict=True
        ):
            cumulative += count
            buckets.append((bound, float(cumulative)))
        yield HistogramMetricFamily(
            "worldgen_realtime_delivery_seconds",
            "Age of a stream entry when queued to this instance's sockets (stored -> queued).",
            buckets=buckets,
            sum_value=stats.delivery_sum_s,
        )
        yield GaugeMetricFamily(
            "worldgen_realtime_rooms", "World rooms with local sockets.", value=len(self.hub.rooms)
        )
        yield GaugeMetricFamily(
            "worldgen_realtime_listener_up",
            "1 while the pub/sub listener is connected to Redis.",
            value=1 if self.hub.pubsub.connected else 0,
        )
