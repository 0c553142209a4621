"""The tile ladder (DESIGN.md §5): in-process LRU → Redis tile cache → generator.

A request stops at the first layer that has the tile; a miss fills every layer above the one
that answered. Identical concurrent misses share one flight (:class:`SingleFlight` keyed by the
tile key), so N browsers asking for one new tile cost one Redis read and one computation; and
across instances a lease in Redis (:meth:`~worldgen.store.tiles.TileCache.claim`) lets one
instance compute a missing tile while the others wait for it to land in the Redis cache.

Tiles are pure functions of (world id, content version, z, x, y), so any layer may drop anything
at any time, and a failed write to the Redis cache only costs a later recomputation: it is
logged and counted, and the tile is served anyway. The browser layer above this one is HTTP
caching (strong ETag from :func:`tile_etag`, ``no-cache``), handled by the route.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import structlog

from worldgen.store.client import StorageError
from worldgen.store.tiles import TileCache
from worldgen.web.generation import Generator
from worldgen.web.metrics import Metrics
from worldgen.web.singleflight import SingleFlight
from worldgen.world.spec import WorldSpec

__all__ = ["MemoryLRU", "TileKey", "TileLadder", "bytes_etag", "etag_matches", "tile_etag"]

TileKey = tuple[str, str, int, int, int]
"""(world id, content version, z, x, y): names one tile's bytes forever."""

_log = structlog.get_logger("worldgen.web")


def tile_etag(key: TileKey) -> str:
    """Strong ETag of a tile: its bytes are a pure function of the key, so the key names them."""
    digest = hashlib.sha256(":".join(map(str, key)).encode()).hexdigest()[:32]
    return f'"{digest}"'


def bytes_etag(data: bytes) -> str:
    """Strong ETag of arbitrary bytes (previews, exports)."""
    return f'"{hashlib.sha256(data).hexdigest()[:32]}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 ``If-None-Match``: ``*`` or any listed tag, compared weakly."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    tags = (t.strip().removeprefix("W/") for t in if_none_match.split(","))
    return etag in tags


class MemoryLRU:
    """At most ``size`` tiles' bytes, least recently used dropped first (``size`` 0: off)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[TileKey, bytes] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: TileKey) -> bytes | None:
        data = self._items.get(key)
        if data is not None:
            self._items.move_to_end(key)
        return data

    def put(self, key: TileKey, data: bytes) -> None:
        if self.size <= 0:
            return
        self._items[key] = data
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


class TileLadder:
    """Answers tile requests through the layers; one per app (it owns the memory layer).

    The Redis cache and the generator are passed per call, so dependency overrides of either
    take effect without rebuilding the ladder.
    """

    def __init__(self, metrics: Metrics, memory_tiles: int) -> None:
        self.metrics = metrics
        self.memory = MemoryLRU(memory_tiles)
        self.flights: SingleFlight[TileKey, bytes] = SingleFlight()

    async def png(
        self,
        key: TileKey,
        spec: WorldSpec,
        tiles: TileCache,
        generator: Generator,
        compute: Callable[[], Awaitable[bytes]] | None = None,
    ) -> bytes:
        """The tile's PNG bytes from the highest layer that has them; ``compute`` (optional)
        replaces ``generator.tile`` on a full miss (an edited tile, drawn with its overlay)."""
        data = self.memory.get(key)
        if data is not None:
            self.metrics.cache_hits.labels(layer="memory").inc()
            return data
        self.metrics.cache_misses.labels(layer="memory").inc()
        return await self.flights.do(key, lambda: self._fill(key, spec, tiles, generator, compute))

    async def _fill(
        self,
        key: TileKey,
        spec: WorldSpec,
        tiles: TileCache,
        generator: Generator,
        compute: Callable[[], Awaitable[bytes]] | None = None,
    ) -> bytes:
        world_id, version, z, x, y = key
        data = await tiles.get(world_id, version, z, x, y)
        if data is not None:
            self.metrics.cache_hits.labels(layer="redis").inc()
            self.memory.put(key, data)
            return data
        self.metrics.cache_misses.labels(layer="redis").inc()
        # single flight across instances: one computes, the others wait for its cached tile
        lease = await tiles.claim(world_id, version, z, x, y)
        if lease is None:
            data = await tiles.wait_for(world_id, version, z, x, y)
            if data is not None:
                self.memory.put(key, data)
                return data
        try:
            started = time.perf_counter()
            data = await (compute() if compute is not None else generator.tile(spec, z, x, y))
            self.metrics.tile_generation.observe(time.perf_counter() - started)
            self.memory.put(key, data)
            try:
                await tiles.put(world_id, version, z, x, y, data)
            except StorageError as exc:  # the cache is optional; the tile is good
                self.metrics.errors.labels(kind="tile_cache_write").inc()
                _log.warning("tile cache write failed", error=type(exc).__name__)
        finally:
            if lease is not None:
                with contextlib.suppress(StorageError):  # it expires by itself
                    await tiles.release(world_id, version, z, x, y, lease)
        return data
