"""A size-bounded Redis cache of rendered map tiles.

Tiles are pure functions of (world, content version, z, x, y), so any entry may be dropped at
any time. The bound is a sorted set of tile keys by last use: after each put, the oldest entries
beyond ``max_tiles`` are deleted. Reads refresh the score, so the bound evicts least recently
used tiles. Metadata is never evicted (the server runs with ``noeviction``).
"""

from __future__ import annotations

import time

from redis.asyncio import Redis

from worldgen.store.keys import Keys

MAX_TILE_BYTES = 1 << 20
"""A PNG larger than this is not cached (a 256-px tile is far smaller)."""


class TileCache:
    """Get and put PNG bytes of map tiles; at most ``max_tiles`` kept."""

    def __init__(self, redis: Redis, keys: Keys, max_tiles: int) -> None:
        if max_tiles < 1:
            raise ValueError("max_tiles must be at least 1")
        self.redis = redis
        self.keys = keys
        self.max_tiles = max_tiles

    async def get(self, world_id: str, version: str, z: int, x: int, y: int) -> bytes | None:
        """The cached PNG, or None."""
        key = self.keys.tile(world_id, version, z, x, y)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(key)
            pipe.zadd(self.keys.tile_lru(), {key: time.time()}, xx=True)
            value, _ = await pipe.execute()
        return value if isinstance(value, bytes) else None

    async def put(self, world_id: str, version: str, z: int, x: int, y: int, png: bytes) -> None:
        """Store ``png`` and trim the least recently used tiles past the bound."""
        if len(png) > MAX_TILE_BYTES:
            return
        key = self.keys.tile(world_id, version, z, x, y)
        lru = self.keys.tile_lru()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(key, png)
            pipe.zadd(lru, {key: time.time()})
            pipe.zcard(lru)
            replies = await pipe.execute()
        excess = int(replies[-1]) - self.max_tiles
        if excess > 0:
            old = await self.redis.zpopmin(lru, excess)
            stale = [entry[0] for entry in old if isinstance(entry, tuple | list)]
            if stale:
                await self.redis.unlink(*stale)

    async def size(self) -> int:
        """Tiles currently indexed."""
        return int(await self.redis.zcard(self.keys.tile_lru()))
