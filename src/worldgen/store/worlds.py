"""World metadata in Redis: one hash per world plus an index sorted by creation time.

Values are plain strings validated by :class:`WorldRecord` on every read (never pickle). A
record that fails validation is treated as missing and reported, rather than crashing a request.

Invariants:

- ``version`` counts the edits of a record: 1 when created, +1 for every change made through
  :meth:`WorldRepo.update` (name, visibility). A change that names the version it was made
  against is applied only if that is still the current version (compare-and-set in one Lua
  script), so of two people editing the same version one wins and the other is told
  (:class:`~worldgen.errors.StaleVersionError`) instead of silently overwriting.
- An update never recreates a deleted world.
- :meth:`WorldRepo.cached` (the read of every world route, map tiles above all) may answer from
  a small in-process cache, but never with a record older than ``cache_ttl_s`` (at most 1 s), so
  a world made private stops being served to non-members within a second whatever happens to
  pub/sub. Every write through the repository (create/restore, update, delete) drops the local
  entry at once and announces the world id on the ``worlds`` channel, on which every instance's
  one pub/sub listener drops its own entry within milliseconds; after any (re)connection of the
  listener the whole cache is dropped (announcements may have been lost). A read that raced an
  announcement is not kept. Memberships are never cached (the guard reads them each time).
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Final, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from worldgen.errors import StaleVersionError
from worldgen.store.keys import Keys, valid_world_id
from worldgen.store.pubsub import PubSub
from worldgen.store.replies import text as _text

MAX_SEED = 2**53 - 1
"""Largest seed: every seed is an exact JavaScript number too."""
NAME_MAX = 80
Visibility = Literal["public", "private"]
Kind = Literal["tiled", "overlapping"]
LEGACY_BLOCK_SIZE: Final = 32
"""The block size of a world whose record has none: every world made before records pinned it
(they all used the then default, 32)."""
MAX_BLOCK_SIZE: Final = 64
CACHE_TTL_MAX_S: Final = 1.0
"""The longest a cached world record may be served (the privacy rule's bound)."""
CACHE_MAX: Final = 10_000
"""World records kept in the in-process cache (least recently used dropped first)."""

_log = structlog.get_logger("worldgen.store")


class WorldRecord(BaseModel):
    """A world's stored metadata; its content is a pure function of (tileset, kind, seed)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(pattern=r"^[A-Za-z0-9_-]{8,32}$")
    name: str = Field(min_length=1, max_length=NAME_MAX)
    tileset: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    kind: Kind
    seed: int = Field(ge=0, le=MAX_SEED)
    visibility: Visibility = "public"
    owner: str | None = Field(default=None, max_length=64)
    created: float = Field(ge=0)
    version: int = Field(default=1, ge=1)
    """Edits so far + 1 (see the module docstring); clients send it back with a change."""
    model: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    """The uploaded model the world is made from (its sha256), None for a bundled tileset."""
    block_size: int = Field(default=LEGACY_BLOCK_SIZE, ge=4, le=MAX_BLOCK_SIZE, multiple_of=2)
    """The world's block size S, pinned when it was made (its catalog entry's then), so that a
    later change of a catalog default never changes an existing world; a record without the
    field (made before it was pinned) means :data:`LEGACY_BLOCK_SIZE`."""

    def to_hash(self) -> dict[str, str]:
        """The Redis hash fields (strings only; ``owner`` omitted when None)."""
        out = {k: str(v) for k, v in self.model_dump().items() if v is not None}
        out["created"] = repr(self.created)
        return out

    @classmethod
    def from_hash(cls, raw: Mapping[bytes | str, bytes | str]) -> WorldRecord:
        """Parse and validate a hash read from Redis (raises ``ValidationError``)."""
        fields = {_text(k): _text(v) for k, v in raw.items()}
        return cls.model_validate(fields)


# KEYS[1] meta. ARGV[1] expected version ('' = any), then field/value pairs to set.
# Returns {-1, 0} when the world does not exist, {-2, current} when the version is stale,
# else {1, new version}.
_UPDATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 0} end
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '1')
if ARGV[1] ~= '' and tonumber(ARGV[1]) ~= current then return {-2, current} end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[1], 'version', tostring(current + 1))
return {1, current + 1}
"""


def new_world_id() -> str:
    """A fresh random id: 12 URL-safe characters (72 bits)."""
    return secrets.token_urlsafe(9)


class WorldRepo:
    """Create, read, rename, delete and list worlds.

    ``pubsub``: the instance's listener, on which other instances' changes drop cached records
    (without it, :meth:`cached` is a plain read and changes are still announced to others).
    ``cache_ttl_s``: how long :meth:`cached` may serve a record (0: no cache; at most
    :data:`CACHE_TTL_MAX_S`).
    """

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        pubsub: PubSub | None = None,
        cache_ttl_s: float = 0.0,
    ) -> None:
        if not 0 <= cache_ttl_s <= CACHE_TTL_MAX_S:
            raise ValueError(f"cache_ttl_s must be in 0..{CACHE_TTL_MAX_S}")
        self.redis = redis
        self.keys = keys
        self.invalid_records = 0
        """Records that failed validation on read (counted, skipped)."""
        self._update = redis.register_script(_UPDATE)
        self.channel = keys.world_changes()
        self._publisher = pubsub if pubsub is not None else PubSub(redis)
        self._ttl = cache_ttl_s if pubsub is not None else 0.0
        self._cache: OrderedDict[str, tuple[float, WorldRecord]] = OrderedDict()
        self._epoch = 0
        """Bumped by every invalidation: a read that started before one is not cached."""
        self.cache_hits = 0
        """Reads :meth:`cached` answered without Redis."""
        if pubsub is not None and self._ttl > 0:
            pubsub.subscribe(self.channel, self._on_changed)
            pubsub.on_connect(lambda _reconnected: self.forget_all())

    # -- the cache ---------------------------------------------------------------------------

    async def cached(self, world_id: str) -> WorldRecord | None:
        """:meth:`get`, answered from the in-process cache when a record no older than the
        cache's time to live is there (see the module's invariants)."""
        if self._ttl <= 0:
            return await self.get(world_id)
        now = time.monotonic()
        entry = self._cache.get(world_id)
        if entry is not None:
            if now - entry[0] < self._ttl:
                self._cache.move_to_end(world_id)
                self.cache_hits += 1
                return entry[1]
            del self._cache[world_id]
        epoch = self._epoch
        record = await self.get(world_id)
        if record is not None and epoch == self._epoch:
            self._cache[world_id] = (now, record)
            if len(self._cache) > CACHE_MAX:
                self._cache.popitem(last=False)
        return record

    def forget(self, world_id: str) -> None:
        """Drop one cached record (its world changed)."""
        self._epoch += 1
        self._cache.pop(world_id, None)

    def forget_all(self) -> None:
        """Drop every cached record (announcements may have been missed)."""
        self._epoch += 1
        self._cache.clear()

    def _on_changed(self, data: bytes) -> None:
        world_id = data.decode("ascii", "replace")
        if valid_world_id(world_id):
            self.forget(world_id)

    async def _changed(self, world_id: str) -> None:
        """The world was written: drop it here and tell every instance (never raises: the write
        is done, and a lost announcement only lets other caches keep it until their TTL)."""
        self.forget(world_id)
        try:
            await self._publisher.publish(self.channel, world_id)
        except RedisError as exc:
            _log.warning("world change not announced", error=type(exc).__name__, world=world_id)

    async def create(
        self,
        *,
        name: str,
        tileset: str,
        kind: Kind,
        seed: int,
        visibility: Visibility = "public",
        owner: str | None = None,
        block_size: int = LEGACY_BLOCK_SIZE,
    ) -> WorldRecord:
        """Store a new world and return it (a fresh id; ``created`` = now). ``block_size``:
        the S of its spec (the web passes its catalog entry's)."""
        record = WorldRecord(
            id=new_world_id(),
            name=name,
            tileset=tileset,
            kind=kind,
            seed=seed,
            visibility=visibility,
            owner=owner,
            created=time.time(),
            block_size=block_size,
        )
        await self.put(record)
        return record

    async def put(self, record: WorldRecord) -> None:
        """Write ``record`` as is (create, or restore from a backup): the record atomically,
        then its index entry.

        The index is one global key, in another cluster slot than the world's, so the two are
        two writes (a transaction may not span slots). The record goes first: a crash in
        between leaves a world that works but is not listed until the same write is repeated
        (a restore is re-run), never a listed world without a record.
        """
        key = self.keys.world(record.id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping=record.to_hash())  # type: ignore[arg-type]
            await pipe.execute()
        await self.redis.zadd(self.keys.worlds_index(), {record.id: record.created})
        await self._changed(record.id)

    async def get(self, world_id: str) -> WorldRecord | None:
        """The world, or None for an unknown or malformed id."""
        if not valid_world_id(world_id):
            return None
        raw = await self.redis.hgetall(self.keys.world(world_id))
        if not raw:
            return None
        try:
            return WorldRecord.from_hash(raw)
        except ValidationError:
            self.invalid_records += 1
            return None

    async def list(self, *, offset: int = 0, limit: int = 100) -> list[WorldRecord]:
        """Worlds, newest first."""
        ids = await self.redis.zrevrange(self.keys.worlds_index(), offset, offset + limit - 1)
        records = []
        for raw_id in ids:
            rec = await self.get(_text(raw_id))
            if rec is not None:
                records.append(rec)
        return records

    async def count(self) -> int:
        """Number of worlds in the index."""
        return int(await self.redis.zcard(self.keys.worlds_index()))

    async def update(
        self,
        world_id: str,
        *,
        name: str | None = None,
        visibility: Visibility | None = None,
        expected_version: int | None = None,
    ) -> WorldRecord | None:
        """Change the name and/or visibility and bump the version; the record after the change,
        or None if the world does not exist.

        With ``expected_version``, the change is made only if the record is still at that
        version; else :class:`~worldgen.errors.StaleVersionError`.
        """
        record = await self.get(world_id)
        if record is None:
            return None
        changes: dict[str, str] = {}
        if name is not None:
            changes["name"] = name
        if visibility is not None:
            changes["visibility"] = visibility
        # validate before writing (model_copy skips validation)
        WorldRecord.model_validate(record.model_dump() | changes)
        args: list[str] = ["" if expected_version is None else str(expected_version)]
        for field_name, value in changes.items():
            args += [field_name, value]
        status, version = await self._update(keys=[self.keys.world(world_id)], args=args)
        if int(status) == -1:
            return None
        if int(status) == -2:
            raise StaleVersionError
        await self._changed(world_id)
        updated = await self.get(world_id)
        if updated is None or updated.version != int(version):  # deleted or edited meanwhile
            return record.model_copy(update={**changes, "version": int(version)})
        return updated

    async def delete(self, world_id: str) -> bool:
        """Remove the world's metadata, index entry and every other key of the world."""
        if not valid_world_id(world_id):
            return False
        existed = await self.redis.zrem(self.keys.worlds_index(), world_id)
        deleted = await self.redis.delete(self.keys.world(world_id))
        await self._changed(world_id)
        batch: list[bytes] = []
        async for key in self.redis.scan_iter(match=self.keys.pattern_world(world_id), count=500):
            batch.append(key)
            if len(batch) >= 500:
                await self.redis.unlink(*batch)
                batch.clear()
        if batch:
            await self.redis.unlink(*batch)
        return bool(existed or deleted)
