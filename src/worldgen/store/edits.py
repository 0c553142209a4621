"""A world's edits in Redis: the ordered operation log, derived overlays, undo/redo, markers.

Keys (all under the world's hash tag, :meth:`~worldgen.store.keys.Keys.edits`):

* ``log``: list of operation records (JSON, :class:`OpRecord`), in the order they were applied;
  the operation with id ``n`` is entry ``n - 1``. The log is the truth.
* ``version``: the world's content version, the id of the last applied operation (0: none).
* ``diffs``: op id → the operation's diff (bytes made by the domain, for undo);
  ``blocks``: ``bi:bj`` → one 64 x 64 overlay block (bytes); ``bver``: ``bi:bj`` → the last op id
  that changed the block (tiles key their caches by it); ``bverz``: ``z:x:y`` → the same for the
  far-zoom tiles (z <= -3, each covering many blocks). These are derived from the log
  (``tests/edits`` rebuilds them by replay and compares).
* ``undo:<user>`` / ``redo:<user>``: lists of op ids, per user.
* ``lock``: the edit lock's token (``SET NX PX``): edits of one world are serialised across app
  instances; :meth:`EditStore.commit` writes everything in one ``MULTI`` guarded by ``WATCH`` on
  the lock, so an edit whose lock expired writes nothing.
* ``markers`` (marker id → JSON) and ``marker-seq``.

This module moves bytes and JSON only; what the bytes mean is :mod:`worldgen.world.edits`'s.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from redis.asyncio import Redis
from redis.exceptions import RedisError, WatchError

from worldgen.errors import NotFoundError, TooManyError, UnavailableError
from worldgen.store.keys import WORLD_ID_RE, Keys

__all__ = ["LOCK_MS", "MAX_MARKERS", "EditEntry", "EditStore", "Marker", "OpRecord"]

LOCK_MS = 30_000
"""Longest an edit may hold its world's lock (a 256² regenerate takes about a second)."""
LOCK_WAIT_S = 10.0
"""Longest an edit waits for the lock before a 503 (retry)."""
MAX_MARKERS = 500
"""Markers one world may hold."""
MAX_LOG_PAGE = 500

# KEYS: lock. ARGV: token, ms. Extends the lock only if it is still ours.
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: lock. ARGV: token. Deletes the lock only if it is still ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class OpRecord(BaseModel):
    """One applied operation as stored in the log and served by the API."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int = Field(ge=1)
    kind: str
    author: str
    author_name: str
    ts: float
    rect: list[int] | None = None
    """``[x, y, w, h]`` of the cells the operation could change (None: lock-free kinds)."""
    changed: list[int] | None = None
    """``[x, y, w, h]``: box of the cells it did change (None: none)."""
    cells: list[list[int]] = Field(default_factory=list)
    target: int | None = None
    base_version: int = Field(ge=0)
    """The version the client made it on (the server applied it on ``id - 1``)."""
    seed: str
    """The solver seed (decimal string: a 64-bit integer)."""


class Marker(BaseModel):
    """A marker: a label and a short text at a cell."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    x: int
    y: int
    label: str
    text: str
    author: str
    author_name: str
    ts: float


_BLOCK_RE = r"^-?[0-9]{1,18}:-?[0-9]{1,18}$"
_FAR_RE = r"^-?[0-9]{1,2}:-?[0-9]{1,18}:-?[0-9]{1,18}$"
_NEEDS: dict[str, tuple[str, ...]] = {
    "state": ("version",),
    "op": ("op", "data"),
    "block": ("block", "data", "version"),
    "marker": ("marker",),
}


class EditEntry(BaseModel):
    """One piece of a world's edits in a backup archive (section ``edits``): the world's
    ``state`` (content version, marker counter, undo/redo stacks) first, then every ``op`` in
    order with its diff, every overlay ``block`` with its version, every ``marker``. Binary
    values travel as base64."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    world: str = Field(pattern=WORLD_ID_RE.pattern)
    kind: Literal["state", "op", "block", "marker"]
    version: int | None = Field(default=None, ge=0)
    marker_seq: int = Field(default=0, ge=0)
    stacks: dict[str, dict[Literal["undo", "redo"], list[int]]] = Field(default_factory=dict)
    far: dict[Annotated[str, Field(pattern=_FAR_RE)], int] = Field(default_factory=dict)
    """Far-zoom tile ``z:x:y`` → last op id that changed its cells (``state`` entries)."""
    op: OpRecord | None = None
    block: str | None = Field(default=None, pattern=_BLOCK_RE)
    data: str | None = None
    marker: Marker | None = None

    @field_validator("data")
    @classmethod
    def _base64(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                base64.b64decode(value, validate=True)
            except binascii.Error:
                raise ValueError("data must be base64") from None
        return value

    @model_validator(mode="after")
    def _complete(self) -> EditEntry:
        missing = [f for f in _NEEDS[self.kind] if getattr(self, f) is None]
        if missing:
            raise ValueError(f"a {self.kind} entry needs {', '.join(missing)}")
        return self

    def raw(self) -> bytes:
        """The decoded ``data``."""
        return base64.b64decode(self.data or "")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _block_field(key: tuple[int, int]) -> str:
    return f"{key[0]}:{key[1]}"


def _parse_field(raw: bytes | str) -> tuple[int, int]:
    text = raw.decode() if isinstance(raw, bytes) else raw
    a, b = text.split(":")
    return int(a), int(b)


class EditStore:
    """The edit keys of every world, on one Redis client."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._release = redis.register_script(_RELEASE)
        self._extend = redis.register_script(_EXTEND)

    # -------------------------------------------------------------------------------- reading
    async def version(self, world_id: str) -> int:
        """The world's content version (0: never edited)."""
        raw = await self.redis.get(self.keys.edits(world_id, "version"))
        return int(raw) if raw is not None else 0

    async def ops(self, world_id: str, after: int = 0, limit: int = MAX_LOG_PAGE) -> list[OpRecord]:
        """Operations with id > ``after``, oldest first, at most ``limit``."""
        raw = await self.redis.lrange(
            self.keys.edits(world_id, "log"), max(0, after), max(0, after) + limit - 1
        )
        return [OpRecord.model_validate_json(r) for r in raw]

    async def blocks(
        self, world_id: str, keys: Iterable[tuple[int, int]] | None = None
    ) -> dict[tuple[int, int], tuple[bytes, int]]:
        """Overlay blocks ``key → (bytes, version)``: the given ones that exist, or all."""
        bkey, vkey = self.keys.edits(world_id, "blocks"), self.keys.edits(world_id, "bver")
        if keys is None:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hgetall(bkey)
                pipe.hgetall(vkey)
                data, vers = await pipe.execute()
            versions = {_parse_field(k): int(v) for k, v in vers.items()}
            return {_parse_field(k): (v, versions.get(_parse_field(k), 0)) for k, v in data.items()}
        wanted = list(keys)
        if not wanted:
            return {}
        fields = [_block_field(k) for k in wanted]
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hmget(bkey, fields)
            pipe.hmget(vkey, fields)
            data, vers = await pipe.execute()
        return {
            k: (d, int(v or 0)) for k, d, v in zip(wanted, data, vers, strict=True) if d is not None
        }

    async def block_versions(self, world_id: str, keys: list[tuple[int, int]]) -> list[int]:
        """The last op id that changed each block (0: never), in the order of ``keys``."""
        if not keys:
            return []
        raw = await self.redis.hmget(
            self.keys.edits(world_id, "bver"), [_block_field(k) for k in keys]
        )
        return [int(v) if v is not None else 0 for v in raw]

    async def far_version(self, world_id: str, z: int, x: int, y: int) -> int:
        """The last op id that changed the cells of far-zoom tile ``(z, x, y)`` (0: never)."""
        raw = await self.redis.hget(self.keys.edits(world_id, "bverz"), f"{z}:{x}:{y}")
        return int(raw) if raw is not None else 0

    async def block_keys(self, world_id: str) -> list[tuple[int, int]]:
        """Every overlay block of the world (``bi, bj``)."""
        raw = await self.redis.hkeys(self.keys.edits(world_id, "blocks"))
        return [_parse_field(r) for r in raw]

    async def diff(self, world_id: str, op_id: int) -> bytes | None:
        """The stored diff of one operation."""
        raw = await self.redis.hget(self.keys.edits(world_id, "diffs"), str(op_id))
        return raw if isinstance(raw, bytes) else None

    async def stack_top(self, world_id: str, user_id: str, which: Literal["undo", "redo"]) -> int:
        """The last op id of the user's undo or redo stack (0: empty)."""
        raw = await self.redis.lindex(self.keys.edit_stack(world_id, user_id, which), -1)
        return int(raw) if raw is not None else 0

    # -------------------------------------------------------------------------------- writing
    @asynccontextmanager
    async def locked(self, world_id: str) -> AsyncIterator[str]:
        """Hold the world's edit lock (its token is yielded); 503 after :data:`LOCK_WAIT_S`.

        While held, the lock's TTL is renewed every third of :data:`LOCK_MS`, so a long edit (a
        rewind replaying a long log) keeps it; a crashed holder's lock still expires."""
        key = self.keys.edits(world_id, "lock")
        token = secrets.token_hex(16)
        deadline = time.monotonic() + LOCK_WAIT_S
        delay = 0.005
        while not await self.redis.set(key, token, nx=True, px=LOCK_MS):
            if time.monotonic() > deadline:
                raise UnavailableError("the world is busy with other edits; retry")
            await asyncio.sleep(delay)
            delay = min(0.1, delay * 2)

        async def renew() -> None:
            while True:
                await asyncio.sleep(LOCK_MS / 3000)
                await self._extend(keys=[key], args=[token, LOCK_MS])

        renewal = asyncio.create_task(renew())
        try:
            yield token
        finally:
            renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError, RedisError):
                await renewal
            await self._release(keys=[key], args=[token])

    async def commit(
        self,
        world_id: str,
        token: str,
        record: OpRecord,
        diff: bytes,
        blocks: dict[tuple[int, int], bytes | None],
        stacks: Literal["new", "undo", "redo"],
        far: Iterable[str] = (),
    ) -> None:
        """Append ``record`` and write its derived data, all or nothing, if the lock is still
        ours (else 503). ``blocks`` maps each touched block to its new bytes (None: now empty).

        ``stacks``: ``new`` pushes the op on the author's undo stack and clears their redo
        stack; ``undo`` moves the reverted op's id off the undo stack and pushes this op on the
        redo stack; ``redo`` pops the redo stack and pushes this op on the undo stack. ``far``
        names the far-zoom tiles (``z:x:y``) over the touched blocks.
        """
        k = self.keys
        lock = k.edits(world_id, "lock")
        undo = k.edit_stack(world_id, record.author, "undo")
        redo = k.edit_stack(world_id, record.author, "redo")
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(lock)
                if (await pipe.get(lock)) != token.encode():
                    raise UnavailableError("the edit took too long; retry")
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.rpush(k.edits(world_id, "log"), record.model_dump_json())
                pipe.set(k.edits(world_id, "version"), record.id)
                pipe.hset(k.edits(world_id, "diffs"), str(record.id), diff)
                for key, data in blocks.items():
                    name = _block_field(key)
                    if data is None:
                        pipe.hdel(k.edits(world_id, "blocks"), name)
                    else:
                        pipe.hset(k.edits(world_id, "blocks"), name, data)
                    pipe.hset(k.edits(world_id, "bver"), name, record.id)
                for name in far:
                    pipe.hset(k.edits(world_id, "bverz"), name, record.id)
                if stacks == "new":
                    pipe.rpush(undo, record.id)
                    pipe.delete(redo)
                elif stacks == "undo":
                    pipe.rpop(undo)
                    pipe.rpush(redo, record.id)
                else:
                    pipe.rpop(redo)
                    pipe.rpush(undo, record.id)
                await pipe.execute()
            except WatchError:
                raise UnavailableError("the edit took too long; retry") from None

    # -------------------------------------------------------------------------------- backups
    async def _stack_keys(self, world_id: str) -> list[bytes]:
        pattern = self.keys.pattern_world(world_id)[:-1] + "edits:*do:*"
        found: list[bytes] = []
        async for key in self.redis.scan_iter(match=pattern, count=500):
            found.append(key)
        return found

    async def export_world(self, world_id: str) -> list[EditEntry]:
        """Everything of one world's edits and markers, as backup entries (none: no edits)."""
        k = self.keys
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(k.edits(world_id, "version"))
            pipe.get(k.edits(world_id, "marker-seq"))
            pipe.lrange(k.edits(world_id, "log"), 0, -1)
            pipe.hgetall(k.edits(world_id, "diffs"))
            pipe.hgetall(k.edits(world_id, "blocks"))
            pipe.hgetall(k.edits(world_id, "bver"))
            pipe.hvals(k.edits(world_id, "markers"))
            pipe.hgetall(k.edits(world_id, "bverz"))
            version, seq, log, diffs, blocks, bver, markers, far = await pipe.execute()
        stacks: dict[str, dict[Literal["undo", "redo"], list[int]]] = {}
        for key in await self._stack_keys(world_id):
            name = key.decode()
            which, user = name.rsplit(":", 2)[-2:]
            if which in ("undo", "redo"):
                ids = [int(v) for v in await self.redis.lrange(key, 0, -1)]
                stacks.setdefault(user, {})["undo" if which == "undo" else "redo"] = ids
        if version is None and not markers and not stacks:
            return []
        out = [
            EditEntry(
                world=world_id,
                kind="state",
                version=int(version or 0),
                marker_seq=int(seq or 0),
                stacks=stacks,
                far={name.decode(): int(v) for name, v in far.items()},
            )
        ]
        for raw in log:
            record = OpRecord.model_validate_json(raw)
            diff = diffs.get(str(record.id).encode(), b"")
            out.append(EditEntry(world=world_id, kind="op", op=record, data=_b64(diff)))
        for name, data in sorted(blocks.items()):
            out.append(
                EditEntry(
                    world=world_id,
                    kind="block",
                    block=name.decode(),
                    data=_b64(data),
                    version=int(bver.get(name, 0)),
                )
            )
        for raw in markers:
            out.append(
                EditEntry(world=world_id, kind="marker", marker=Marker.model_validate_json(raw))
            )
        return out

    async def import_world(self, world_id: str, entries: list[EditEntry]) -> int:
        """Replace one world's edits and markers by ``entries`` (from :meth:`export_world`);
        returns the operations written."""
        k = self.keys
        old = [k.edits(world_id, p) for p in ("log", "diffs", "blocks", "bver", "bverz", "version")]
        old += [k.edits(world_id, p) for p in ("markers", "marker-seq")]
        old += [key.decode() for key in await self._stack_keys(world_id)]
        ops = 0
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(*old)
            for entry in entries:
                if entry.kind == "state":
                    if entry.version:
                        pipe.set(k.edits(world_id, "version"), entry.version)
                    if entry.marker_seq:
                        pipe.set(k.edits(world_id, "marker-seq"), entry.marker_seq)
                    if entry.far:
                        pipe.hset(k.edits(world_id, "bverz"), mapping=entry.far)  # type: ignore[arg-type]
                    for user, both in entry.stacks.items():
                        for which, ids in both.items():
                            if ids:
                                pipe.rpush(k.edit_stack(world_id, user, which), *ids)
                elif entry.kind == "op" and entry.op is not None:
                    pipe.rpush(k.edits(world_id, "log"), entry.op.model_dump_json())
                    pipe.hset(k.edits(world_id, "diffs"), str(entry.op.id), entry.raw())
                    ops += 1
                elif entry.kind == "block" and entry.block is not None:
                    pipe.hset(k.edits(world_id, "blocks"), entry.block, entry.raw())
                    pipe.hset(k.edits(world_id, "bver"), entry.block, entry.version or 0)
                elif entry.marker is not None:
                    m = entry.marker
                    pipe.hset(k.edits(world_id, "markers"), str(m.id), m.model_dump_json())
            await pipe.execute()
        return ops

    # -------------------------------------------------------------------------------- markers
    async def markers(self, world_id: str) -> list[Marker]:
        """Every marker of the world, by id."""
        raw = await self.redis.hvals(self.keys.edits(world_id, "markers"))
        return sorted((Marker.model_validate_json(r) for r in raw), key=lambda m: m.id)

    async def marker(self, world_id: str, marker_id: int) -> Marker:
        """One marker, else :class:`~worldgen.errors.NotFoundError`."""
        raw = await self.redis.hget(self.keys.edits(world_id, "markers"), str(marker_id))
        if raw is None:
            raise NotFoundError("no such marker")
        return Marker.model_validate_json(raw)

    async def put_marker(self, world_id: str, fields: dict[str, Any]) -> Marker:
        """Create (``fields`` without ``id``) or replace a marker; at most :data:`MAX_MARKERS`."""
        key = self.keys.edits(world_id, "markers")
        if "id" not in fields:
            if await self.redis.hlen(key) >= MAX_MARKERS:
                raise TooManyError(f"a world holds at most {MAX_MARKERS} markers")
            fields = {
                **fields,
                "id": int(await self.redis.incr(self.keys.edits(world_id, "marker-seq"))),
            }
        marker = Marker.model_validate(fields)
        await self.redis.hset(key, str(marker.id), marker.model_dump_json())
        return marker

    async def delete_marker(self, world_id: str, marker_id: int) -> None:
        """Delete a marker (NotFoundError if there is none)."""
        if not await self.redis.hdel(self.keys.edits(world_id, "markers"), str(marker_id)):
            raise NotFoundError("no such marker")
