"""Who is in a world right now: a sorted set of connection sessions scored by last heartbeat.

Invariants:

- Members are session ids (one per WebSocket connection, made by the server); scores are the
  Redis server's clock (``TIME``) at the last heartbeat, so app instances with skewed clocks
  agree. A parallel hash maps each session to the JSON of its :class:`Author`.
- A session whose last heartbeat is older than ``timeout_s`` is gone: :meth:`PresenceStore.sync`
  removes such sessions (``ZREMRANGEBYSCORE`` semantics, member by member so the caller learns
  who left) every time presence is read; app instances call it periodically.
- Both keys carry a TTL of a few timeouts, refreshed by every heartbeat, so a world nobody visits
  keeps no presence keys; nothing is written for a world whose metadata is gone.
- Removal is atomic per member: of several instances sweeping at once, exactly one sees each
  member go (and announces it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError
from redis.asyncio import Redis

from worldgen.store.chat import Author
from worldgen.store.keys import Keys
from worldgen.store.replies import text as _text

_HEARTBEAT = """
-- KEYS[1] zset, KEYS[2] users hash, KEYS[3] world meta; ARGV[1] session, ARGV[2] user JSON,
-- ARGV[3] key TTL (ms). Returns -1 (no world), 0 (refreshed) or 1 (newly present).
if redis.call('EXISTS', KEYS[3]) == 0 then return -1 end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local added = redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return added
"""

_LEAVE = """
-- KEYS[1] zset, KEYS[2] users hash; ARGV[1] session. Returns the user JSON if it was present.
local user = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then return user or '' end
return false
"""

_SYNC = """
-- KEYS[1] zset, KEYS[2] users hash, KEYS[3] world meta; ARGV[1] timeout (s).
-- Drops sessions older than the timeout; returns {present, gone, world exists, world name}
-- where present and gone are flat [session, user JSON, ...] lists.
local t = redis.call('TIME')
local cutoff = tonumber(t[1]) + tonumber(t[2]) / 1000000 - tonumber(ARGV[1])
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. string.format('%.6f', cutoff))
local gone = {}
for _, s in ipairs(stale) do
  local user = redis.call('HGET', KEYS[2], s)
  redis.call('HDEL', KEYS[2], s)
  if redis.call('ZREM', KEYS[1], s) == 1 then
    gone[#gone + 1] = s
    gone[#gone + 1] = user or ''
  end
end
local present = {}
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
if #members > 0 then
  local users = redis.call('HMGET', KEYS[2], unpack(members))
  for i, s in ipairs(members) do
    present[#present + 1] = s
    present[#present + 1] = users[i] or ''
  end
end
local name = redis.call('HGET', KEYS[3], 'name')
return {present, gone, redis.call('EXISTS', KEYS[3]), name or ''}
"""


@dataclass(frozen=True, slots=True)
class PresenceSnapshot:
    """Presence of one world after a sweep, plus the world's existence and name."""

    present: dict[str, Author] = field(default_factory=dict)
    """Session id -> author, for every live session."""
    gone: dict[str, Author] = field(default_factory=dict)
    """Sessions this sweep removed (this caller is the one to announce them)."""
    world_exists: bool = True
    world_name: str | None = None


class PresenceStore:
    """Heartbeats, departures and sweeps of world presence."""

    def __init__(self, redis: Redis, keys: Keys, *, timeout_s: float = 25.0) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.redis = redis
        self.keys = keys
        self.timeout_s = timeout_s
        self.invalid_entries = 0
        """Hash values that failed validation on read (counted and skipped)."""
        self._ttl_ms = max(60_000, int(timeout_s * 4000))
        self._heartbeat = redis.register_script(_HEARTBEAT)
        self._leave = redis.register_script(_LEAVE)
        self._sync = redis.register_script(_SYNC)

    def _keys(self, world_id: str) -> list[str]:
        return [
            self.keys.presence(world_id),
            self.keys.presence_users(world_id),
            self.keys.world(world_id),
        ]

    async def heartbeat(self, world_id: str, session: str, user: Author) -> bool | None:
        """Mark ``session`` present now; True if it was not present, None if the world is gone."""
        status = int(
            await self._heartbeat(
                keys=self._keys(world_id), args=[session, user.model_dump_json(), self._ttl_ms]
            )
        )
        return None if status < 0 else status == 1

    async def leave(self, world_id: str, session: str) -> Author | None:
        """Remove ``session``; its author if this call removed it (the caller announces it)."""
        reply = await self._leave(keys=self._keys(world_id)[:2], args=[session])
        if reply is None:
            return None
        return self._author(reply) or Author(id="unknown", name="unknown")

    async def sync(self, world_id: str) -> PresenceSnapshot:
        """Sweep sessions older than the timeout and return who is left (one round trip)."""
        present, gone, exists, name = await self._sync(
            keys=self._keys(world_id), args=[self.timeout_s]
        )
        return PresenceSnapshot(
            present=self._pairs(present),
            gone=self._pairs(gone),
            world_exists=int(exists) == 1,
            world_name=_text(name) or None,
        )

    def _pairs(self, flat: list[bytes]) -> dict[str, Author]:
        out: dict[str, Author] = {}
        for i in range(0, len(flat) - 1, 2):
            author = self._author(flat[i + 1])
            if author is not None:
                out[_text(flat[i])] = author
        return out

    def _author(self, raw: object) -> Author | None:
        try:
            return Author.model_validate_json(_text(raw))
        except (ValidationError, TypeError):
            self.invalid_entries += 1
            return None
