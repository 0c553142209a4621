"""Counters of a hub, exported by :mod:`worldgen.realtime.metrics` (no user or world ids)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

DELIVERY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds of the delivery-age histogram (seconds)."""


@dataclass
class HubStats:
    """Counters of one hub (exported as metrics; no user ids)."""

    connections: int = 0
    accepted: int = 0
    messages: int = 0
    duplicates: int = 0
    delivered: int = 0
    dropped_slow: int = 0
    rate_limited: int = 0
    errors: int = 0
    bad_signals: int = 0
    delivery_buckets: list[int] = field(default_factory=lambda: [0] * (len(DELIVERY_BUCKETS_S) + 1))
    """Entries delivered by age (stored -> queued to local sockets), per bucket; last is +Inf."""
    delivery_sum_s: float = 0.0

    def observe_delivery(self, age_s: float) -> None:
        """Count one entry delivered ``age_s`` after the server stored it."""
        self.delivery_buckets[bisect.bisect_left(DELIVERY_BUCKETS_S, age_s)] += 1
        self.delivery_sum_s += age_s
