"""A size-bounded Redis cache of rendered map tiles.

Tiles are pure functions of (world, content version, z, x, y), so any entry may be dropped at
any time. The bound is a sorted set of tile keys by last use: after each put, the oldest entries
beyond ``max_tiles`` are deleted. Reads refresh the score, so the bound evicts least recently
used tiles. Metadata is never evicted (the server runs with ``noeviction``).

**Single flight across instances.** Before computing a missing tile an instance takes a lease
on it (:meth:`TileCache.claim`, ``SET NX PX``, the tile's own slot); an instance that finds the
lease held waits for the tile to land in the cache (:meth:`TileCache.wait_for`) instead of
computing it again. A lease holder that dies only delays the others until the lease expires
(:data:`LEASE_MS`); then they compute it themselves. Duplicate work would be harmless (the bytes
are identical), only wasteful: so every failure here falls back to computing.
"""

from __future__ import annotations

import asyncio
import secrets
import time

from redis.asyncio import Redis

from worldgen.store.keys import Keys

MAX_TILE_BYTES = 1 << 20
"""A PNG larger than this is not cached (a 256-px tile is far smaller)."""
LEASE_MS = 60_000
"""Longest one instance may hold the right to compute a tile (past it another may)."""
POLL_S = 0.025
"""How often a waiting instance looks for the tile another one is computing."""

# KEYS[1] lease. ARGV[1] token. Deletes the lease only if it is still ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class TileCache:
    """Get and put PNG bytes of map tiles; at most ``max_tiles`` kept."""

    def __init__(self, redis: Redis, keys: Keys, max_tiles: int) -> None:
        if max_tiles < 1:
            raise ValueError("max_tiles must be at least 1")
        self.redis = redis
        self.keys = keys
        self.max_tiles = max_tiles
        self._release = redis.register_script(_RELEASE)

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

    async def claim(self, world_id: str, version: str, z: int, x: int, y: int) -> str | None:
        """A lease on computing the tile: a token when this caller should compute it (then
        :meth:`release` it), None when another instance is computing it (:meth:`wait_for`)."""
        token = secrets.token_hex(8)
        key = self.keys.tile_lease(world_id, version, z, x, y)
        taken = await self.redis.set(key, token, nx=True, px=LEASE_MS)
        return token if taken else None

    async def release(
        self, world_id: str, version: str, z: int, x: int, y: int, token: str
    ) -> None:
        """Give the lease back (only if it is still this caller's)."""
        key = self.keys.tile_lease(world_id, version, z, x, y)
        await self._release(keys=[key], args=[token])

    async def wait_for(self, world_id: str, version: str, z: int, x: int, y: int) -> bytes | None:
        """The tile once another instance has cached it; None as soon as its lease is gone
        without a tile (it failed or died: compute it yourself), or after :data:`LEASE_MS`."""
        key = self.keys.tile(world_id, version, z, x, y)
        lease = self.keys.tile_lease(world_id, version, z, x, y)
        deadline = time.monotonic() + LEASE_MS / 1000
        while time.monotonic() < deadline:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.get(key)
                pipe.exists(lease)
                value, held = await pipe.execute()
            if isinstance(value, bytes):
                return value
            if not held:
                return await self.get(world_id, version, z, x, y)  # it may have just landed
            await asyncio.sleep(POLL_S)
        return None
