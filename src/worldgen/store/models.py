"""Models users upload (issue 15): records, bytes, owners, sharing, quotas, the worlds using them.

A model is content-addressed *per owner*: its id is the SHA-256 of its kind, options and
canonical bytes (:func:`worldgen.engine.uploads.model_digest`), where the options include a
number derived from the uploader's id (:func:`owned_options`). The same upload by the same user
is the same model (a second upload is idempotent), but two users uploading the same bytes get two
models, each theirs: whether anyone else holds a model never shows, not even as an id that
differs from the plain content digest (which anyone can compute). Only stored bytes are
duplicated; the patch library, named by the model's rules, is built once per machine.

Every key of one model carries the hash tag ``{m:<sha>}`` and lives in one cluster slot; a
user's index and byte counter carry the user's tag ``{u:<id>}``. No command spans the two (each
script touches one tag), so the steps that join them are ordered to fail safe:

- **create**: the user's quota is reserved first (one script: refuse past ``quota_bytes``, else
  count the bytes and index the model), then the model is written if it does not exist yet (one
  script); if it did (someone was first) or the write failed, the reservation is taken back.
  A crash in between leaves at worst bytes counted for a model that is not there, never a model
  beyond a quota.
- **delete** is refused while any world uses the model (the model's ``worlds`` set, added to by
  :meth:`ModelRepo.attach` *before* the world is created, in the same slot as the delete check:
  a world can never be left over a deleted model); then the user's bytes are given back.
- The patch library of a model is built by one job at a time: :meth:`ModelRepo.claim_library`
  records the job's id unless the library is ready or another job holds it; the job stores the
  library's bytes (:meth:`ModelRepo.library_ready`) so any machine can install it.

Private by default; a shared model is in the public index (:meth:`ModelRepo.public`). Records
are validated by :class:`ModelRecord` on every read (never pickle).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis.asyncio import Redis

from worldgen.store.keys import Keys, valid_world_id
from worldgen.store.replies import text as _text

__all__ = [
    "DIGEST_PATTERN",
    "MODELS_PER_USER",
    "MODEL_NAME_MAX",
    "OWNER_OPTION",
    "QUOTA_BYTES",
    "ModelKind",
    "ModelRecord",
    "ModelRepo",
    "QuotaExceeded",
    "owned_options",
    "shown_options",
    "valid_digest",
]

DIGEST_PATTERN: Final = r"^[0-9a-f]{64}$"
MODEL_NAME_MAX: Final = 80
QUOTA_BYTES: Final = 64 << 20
"""Default stored bytes per user (a sample is a few KiB, a tileset zip at most 8 MiB)."""
MODELS_PER_USER: Final = 1000
"""Most models one user's list shows."""
PUBLIC_MAX: Final = 200
"""Most shared models the public list shows (newest first)."""
ModelKind = Literal["sample", "tileset"]
OWNER_OPTION: Final = "owner"
"""The stored option that makes a model's id its owner's (:func:`owned_options`); the model's
readers ignore it, the API does not show it."""
_DIGEST_RE = re.compile(DIGEST_PATTERN)
_OWNER_TAG: Final = b"worldgen-model-owner\0"


def owned_options(options: Mapping[str, int | bool], owner: str) -> dict[str, int | bool]:
    """``options`` as ``owner``'s model is stored and hashed with: plus :data:`OWNER_OPTION`, 52
    bits of the SHA-256 of the owner's id (an integer exact in JSON and JavaScript)."""
    number = int.from_bytes(hashlib.sha256(_OWNER_TAG + owner.encode()).digest()[:8]) >> 12
    return {**options, OWNER_OPTION: number}


def shown_options(options: Mapping[str, int | bool]) -> dict[str, int | bool]:
    """A model's options as the API shows them (without :data:`OWNER_OPTION`)."""
    return {k: v for k, v in options.items() if k != OWNER_OPTION}


def valid_digest(digest: str) -> bool:
    """True when ``digest`` is a model id (64 lowercase hex digits: safe inside a key name)."""
    return _DIGEST_RE.fullmatch(digest) is not None


def _bytes(raw: bytes | str | None) -> bytes | None:
    """A binary value read from Redis (the client does not decode), or None."""
    if raw is None:
        return None
    return raw.encode() if isinstance(raw, str) else bytes(raw)


class QuotaExceeded(Exception):  # noqa: N818 - a result of create, turned into a 413 by the web
    """The owner's stored bytes would pass the quota: ``used`` now, ``quota``, ``size`` asked."""

    def __init__(self, used: int, quota: int, size: int) -> None:
        super().__init__(f"{used} + {size} bytes would pass the quota of {quota}")
        self.used, self.quota, self.size = used, quota, size


class ModelRecord(BaseModel):
    """A stored model's metadata (its bytes are a separate key)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(pattern=DIGEST_PATTERN)
    name: str = Field(min_length=1, max_length=MODEL_NAME_MAX)
    kind: ModelKind
    options: dict[str, int | bool] = Field(default_factory=dict, max_length=8)
    owner: str = Field(max_length=64)
    created: float = Field(ge=0)
    size: int = Field(ge=0)
    """Stored bytes (what the owner's quota counts)."""
    patterns: int = Field(ge=0)
    """Patterns of a sample, oriented tile variants of a tileset."""
    shared: bool = False
    library: str = Field(default="", max_length=64)
    """Cache file of the built patch library ('' until its job is done)."""
    job: str = Field(default="", max_length=64)
    """The library job in flight ('' when none)."""

    def to_hash(self) -> dict[str, str]:
        """The Redis hash fields (strings only)."""
        out = {k: str(v) for k, v in self.model_dump(exclude={"options", "shared"}).items()}
        out["created"] = repr(self.created)
        out["options"] = json.dumps(self.options, sort_keys=True, separators=(",", ":"))
        out["shared"] = "1" if self.shared else "0"
        return out

    @classmethod
    def from_hash(cls, raw: Mapping[bytes | str, bytes | str]) -> ModelRecord:
        """Parse and validate a hash read from Redis (raises ``ValidationError``/``ValueError``)."""
        fields: dict[str, object] = {_text(k): _text(v) for k, v in raw.items()}
        fields["options"] = json.loads(str(fields.get("options", "{}")))
        fields["shared"] = fields.get("shared") == "1"
        return cls.model_validate(fields)


# KEYS: bytes counter, user index. ARGV: size, quota, created, id.
# {1, used after} when reserved (or {2, used} when the id is already indexed: nothing counted),
# {0, used} when the quota refuses it.
_RESERVE: Final = """
if redis.call('ZSCORE', KEYS[2], ARGV[4]) then
  return {2, tonumber(redis.call('GET', KEYS[1]) or '0')}
end
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return {0, used} end
redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return {1, used + tonumber(ARGV[1])}
"""

# KEYS: bytes counter, user index. ARGV: size, id. Gives a reservation back.
_RELEASE: Final = """
if redis.call('ZREM', KEYS[2], ARGV[2]) == 1 then
  local left = redis.call('DECRBY', KEYS[1], ARGV[1])
  if left < 0 then redis.call('SET', KEYS[1], 0) end
end
return 1
"""

# KEYS: meta, data. ARGV: data, then field/value pairs. 1 written, 0 already there.
_CREATE: Final = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[2], ARGV[1])
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
"""

# KEYS: meta, data, preview, library, worlds. {-1, n} used by n worlds, {0, ''} missing,
# {1, owner, size} deleted.
_DELETE: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, ''} end
local n = redis.call('SCARD', KEYS[5])
if n > 0 then return {-1, n} end
local owner = redis.call('HGET', KEYS[1], 'owner')
local size = redis.call('HGET', KEYS[1], 'size')
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
return {1, owner, size}
"""

# KEYS: meta, worlds. ARGV: world id. 1 attached, 0 no such model.
_ATTACH: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"""

# KEYS: meta. ARGV: job id, stale job id ('' = none). 'ready', 'claimed', or the holder's id.
_CLAIM: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
if (redis.call('HGET', KEYS[1], 'library') or '') ~= '' then return 'ready' end
local held = redis.call('HGET', KEYS[1], 'job') or ''
if held ~= '' and held ~= ARGV[2] then return held end
redis.call('HSET', KEYS[1], 'job', ARGV[1])
return 'claimed'
"""

# KEYS: meta, library. ARGV: library file name, job id, then file/bytes pairs. 1 stored, 0 gone.
_LIBRARY: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('DEL', KEYS[2])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[1], 'library', ARGV[1])
if (redis.call('HGET', KEYS[1], 'job') or '') == ARGV[2] then
  redis.call('HSET', KEYS[1], 'job', '')
end
return 1
"""

# KEYS: meta. ARGV: field/value pairs. 1 changed, 0 missing.
_UPDATE: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
"""


class ModelRepo:
    """Create, read, share, delete models; their bytes, previews, libraries and users."""

    def __init__(self, redis: Redis, keys: Keys, *, quota_bytes: int = QUOTA_BYTES) -> None:
        self.redis = redis
        self.keys = keys
        self.quota_bytes = quota_bytes
        """Stored bytes each user may hold (:class:`QuotaExceeded` past it)."""
        self.invalid_records = 0
        self._reserve = redis.register_script(_RESERVE)
        self._release = redis.register_script(_RELEASE)
        self._create = redis.register_script(_CREATE)
        self._delete = redis.register_script(_DELETE)
        self._attach = redis.register_script(_ATTACH)
        self._claim = redis.register_script(_CLAIM)
        self._library = redis.register_script(_LIBRARY)
        self._update = redis.register_script(_UPDATE)

    def _user(self, owner: str) -> list[str]:
        return [self.keys.model_bytes(owner), self.keys.user_models(owner)]

    async def create(self, record: ModelRecord, data: bytes) -> tuple[ModelRecord, bool]:
        """Store ``record`` and ``data`` unless a model with its id exists: ``(the stored
        record, created?)``. Raises :class:`QuotaExceeded` (nothing stored) when the owner's
        bytes would pass :attr:`quota_bytes`."""
        found = await self.get(record.id)
        if found is not None:
            return found, False
        user = self._user(record.owner)
        status, used = await self._reserve(
            keys=user, args=[record.size, self.quota_bytes, record.created, record.id]
        )
        if int(status) == 0:
            raise QuotaExceeded(int(used), self.quota_bytes, record.size)
        pairs = [x for item in record.to_hash().items() for x in item]
        try:
            written = await self._create(
                keys=[self.keys.model(record.id, "meta"), self.keys.model(record.id, "data")],
                args=[data, *pairs],
            )
        except BaseException:
            if int(status) == 1:
                await self._release(keys=user, args=[record.size, record.id])
            raise
        if not int(written):  # someone stored the same model meanwhile
            if int(status) == 1:
                await self._release(keys=user, args=[record.size, record.id])
            return (await self.get(record.id)) or record, False
        if record.shared:
            await self.redis.zadd(self.keys.public_models(), {record.id: record.created})
        return record, True

    async def get(self, digest: str) -> ModelRecord | None:
        """The model's record, or None (unknown, malformed id, or a record that fails
        validation: counted in :attr:`invalid_records`)."""
        if not valid_digest(digest):
            return None
        raw = await self.redis.hgetall(self.keys.model(digest, "meta"))
        if not raw:
            return None
        try:
            return ModelRecord.from_hash(raw)
        except (ValidationError, ValueError):
            self.invalid_records += 1
            return None

    async def _many(self, ids: list[str]) -> list[ModelRecord]:
        out: list[ModelRecord] = []
        for digest in ids:
            record = await self.get(digest)
            if record is not None:
                out.append(record)
        return out

    async def mine(self, owner: str) -> list[ModelRecord]:
        """The owner's models, newest first."""
        ids = await self.redis.zrevrange(self.keys.user_models(owner), 0, MODELS_PER_USER - 1)
        return await self._many([_text(i) for i in ids])

    async def public(self) -> list[ModelRecord]:
        """Shared models, newest first (at most :data:`PUBLIC_MAX`)."""
        ids = await self.redis.zrevrange(self.keys.public_models(), 0, PUBLIC_MAX - 1)
        return await self._many([_text(i) for i in ids])

    async def used_bytes(self, owner: str) -> int:
        """Bytes the owner's models take (what the quota counts)."""
        return int(await self.redis.get(self.keys.model_bytes(owner)) or 0)

    async def data(self, digest: str) -> bytes | None:
        """The model's stored bytes, or None."""
        if not valid_digest(digest):
            return None
        raw = await self.redis.get(self.keys.model(digest, "data"))
        return _bytes(raw)

    async def update(
        self, digest: str, *, name: str | None = None, shared: bool | None = None
    ) -> ModelRecord | None:
        """Rename and/or share (True) or unshare (False) a model; None when it is gone."""
        fields: dict[str, str] = {}
        if name is not None:
            fields["name"] = name
        if shared is not None:
            fields["shared"] = "1" if shared else "0"
        pairs = [x for item in fields.items() for x in item]
        meta = self.keys.model(digest, "meta")
        if pairs and not int(await self._update(keys=[meta], args=pairs)):
            return None
        record = await self.get(digest)
        if record is not None and shared is not None:
            if shared:
                await self.redis.zadd(self.keys.public_models(), {digest: record.created})
            else:
                await self.redis.zrem(self.keys.public_models(), digest)
        return record

    async def delete(self, digest: str) -> int | None:
        """Delete a model no world uses: 0 done; the number of worlds using it (> 0, nothing
        deleted); None when there is no such model."""
        parts = ("meta", "data", "preview", "library", "worlds")
        keys = [self.keys.model(digest, p) for p in parts]
        reply = await self._delete(keys=keys)
        status = int(reply[0])
        if status == 0:
            return None
        if status < 0:
            return int(reply[1])
        owner, size = _text(reply[1]), int(_text(reply[2]))
        await self.redis.zrem(self.keys.public_models(), digest)
        await self._release(keys=self._user(owner), args=[size, digest])
        return 0

    async def attach(self, digest: str, world_id: str) -> bool:
        """Record that ``world_id`` uses the model (before the world is created); False when
        the model does not exist (any more)."""
        if not valid_world_id(world_id):
            raise ValueError(f"invalid world id {world_id!r}")
        keys = [self.keys.model(digest, "meta"), self.keys.model(digest, "worlds")]
        return bool(int(await self._attach(keys=keys, args=[world_id])))

    async def detach(self, digest: str, world_id: str) -> None:
        """The world no longer uses the model (deleted, or its creation failed)."""
        await self.redis.srem(self.keys.model(digest, "worlds"), world_id)

    async def world_ids(self, digest: str) -> list[str]:
        """Ids of the worlds over the model."""
        members = await self.redis.smembers(self.keys.model(digest, "worlds"))
        return sorted(_text(m) for m in members)

    async def preview(self, digest: str) -> bytes | None:
        """The cached preview PNG, or None."""
        raw = await self.redis.get(self.keys.model(digest, "preview"))
        return _bytes(raw)

    async def set_preview(self, digest: str, png: bytes) -> None:
        """Cache the model's preview PNG (a pure function of the model: any writer agrees)."""
        await self.redis.set(self.keys.model(digest, "preview"), png)

    async def claim_library(self, digest: str, job_id: str, stale: str = "") -> str:
        """Let ``job_id`` build the model's library: ``"claimed"``; ``"ready"`` when it is
        built; ``"missing"`` without the model; else the id of the job that holds it (pass it
        as ``stale`` once that job has ended, to take over)."""
        reply = await self._claim(keys=[self.keys.model(digest, "meta")], args=[job_id, stale])
        return _text(reply)

    async def library_ready(self, digest: str, files: Mapping[str, bytes], job_id: str) -> bool:
        """Store the built library's cache files (name → bytes, the patch library first: its
        name marks the model ready); False when the model is gone."""
        if not files:
            raise ValueError("a built library has at least its patch library file")
        keys = [self.keys.model(digest, "meta"), self.keys.model(digest, "library")]
        pairs = [x for item in files.items() for x in item]
        return bool(int(await self._library(keys=keys, args=[next(iter(files)), job_id, *pairs])))

    async def library(self, digest: str) -> dict[str, bytes] | None:
        """The built library's cache files (name → bytes), or None before it is built."""
        record = await self.get(digest)
        if record is None or not record.library:
            return None
        raw = await self.redis.hgetall(self.keys.model(digest, "library"))
        files = {_text(k): _bytes(v) or b"" for k, v in raw.items()}
        return files or None

    async def restore(self, record: ModelRecord, data: bytes, world_ids: list[str]) -> None:
        """Write an archived model back as it was (backup restore; quota not checked)."""
        pairs = [x for item in record.to_hash().items() for x in item]
        await self._create(
            keys=[self.keys.model(record.id, "meta"), self.keys.model(record.id, "data")],
            args=[data, *pairs],
        )
        meta = self.keys.model(record.id, "meta")
        await self.redis.hset(meta, mapping={"library": "", "job": ""})
        if world_ids:
            await self.redis.sadd(self.keys.model(record.id, "worlds"), *world_ids)
        await self._reserve(
            keys=self._user(record.owner), args=[record.size, 2**62, record.created, record.id]
        )
        if record.shared:
            await self.redis.zadd(self.keys.public_models(), {record.id: record.created})
