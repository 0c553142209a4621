"""Rate limits as Redis counters, so they hold across every app instance.

Each limit is a fixed window: the first hit creates a counter that expires after ``window_s``;
hits beyond ``count`` inside the window are refused with the seconds left until it expires (the
``Retry-After`` a client should honour). The increment and the expiry are one Lua script, so a
counter can never be left without a TTL (which would lock a subject out forever).

Subjects (an address, a username, a user id) enter the key name only as a digest
(:meth:`~worldgen.store.keys.Keys.rate`). A redis-py retry after a dropped reply may count a hit
twice; that errs on the safe side.
"""

from __future__ import annotations

import math
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio import Redis

from worldgen.errors import RateLimitedError
from worldgen.store.keys import Keys

__all__ = ["Bucket", "Limit", "RateLimiter", "RateLimits"]

Bucket = Literal[
    "login_account",
    "login_address",
    "register_address",
    "world_create",
    "chat",
    "edit",
    "model_upload",
]

# KEYS: counter. ARGV: window in ms. Returns {hits so far, ms until the window ends}.
_HIT: Final = """
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
"""


class Limit(BaseModel):
    """At most ``count`` hits per ``window_s`` seconds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    count: int = Field(ge=1, le=1_000_000)
    window_s: int = Field(ge=1, le=86_400)


class RateLimits(BaseModel):
    """Every limit worldgen applies (defaults suit one small community; see docs/security.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    login_account: Limit = Limit(count=10, window_s=900)
    """Login attempts per username (reset by a successful login)."""
    login_address: Limit = Limit(count=50, window_s=900)
    """Login attempts per client address, whatever the username."""
    register_address: Limit = Limit(count=10, window_s=3600)
    """Accounts created per client address."""
    world_create: Limit = Limit(count=30, window_s=3600)
    """Worlds created per account."""
    chat: Limit = Limit(count=60, window_s=60)
    """Chat messages and pings per account, across all its connections."""
    edit: Limit = Limit(count=120, window_s=60)
    """Map edits (operations, undo, redo, markers) per account, across all worlds."""
    model_upload: Limit = Limit(count=20, window_s=3600)
    """Model uploads (samples, tilesets) per account, refused ones included."""


class RateLimiter:
    """Counts hits per (bucket, subject) and refuses those beyond the bucket's limit."""

    def __init__(self, redis: Redis, keys: Keys, limits: RateLimits) -> None:
        self.redis = redis
        self.keys = keys
        self.limits = limits
        self._hit = redis.register_script(_HIT)

    async def hit(self, bucket: Bucket, subject: str) -> None:
        """Count one hit; :class:`~worldgen.errors.RateLimitedError` (with the seconds until the
        window ends) if it is beyond the limit."""
        limit: Limit = getattr(self.limits, bucket)
        n, ttl_ms = await self._hit(
            keys=[self.keys.rate(bucket, subject)], args=[limit.window_s * 1000]
        )
        if int(n) > limit.count:
            wait = max(1, math.ceil(int(ttl_ms) / 1000))
            raise RateLimitedError(f"too many requests; retry in {wait} s", retry_after=wait)

    async def reset(self, bucket: Bucket, subject: str) -> None:
        """Forget the subject's hits (a successful login clears its failed attempts)."""
        await self.redis.delete(self.keys.rate(bucket, subject))
