"""Chat and map pings of a world: one Redis Stream per world, the durable record of the room.

Invariants:

- Every entry is one JSON field ``d`` holding a :data:`Record` (validated on every read; never
  pickle). Its time is the stream id's millisecond part, given by the server's clock.
- The stream is bounded: ``XADD ... MAXLEN ~ maxlen`` trims the oldest entries.
- Appends are idempotent by the client's message id: a Lua script checks a per-(world, user,
  id) dedup key (TTL ``dedup_ttl_s``), so a retry - by the browser after a reconnect, or by
  redis-py after a timeout - returns the stream id of the first copy and stores nothing new;
  another user's message with the same client id is a new message.
- Nothing is written for a world whose metadata hash is gone (a deleted world keeps no chat).
- A successful append may publish a wake-up on the world's channel in the same script, so the
  record and the wake-up cannot be reordered (``SPUBLISH`` on a cluster: the channel carries the
  world's hash tag, so it is local to the script's shard).
- On a Redis Cluster an append returns only once ``WAIT`` says a replica has it
  (:data:`ACK_REPLICAS` within :data:`ACK_WAIT_MS`, else a
  :data:`~worldgen.store.client.StorageError` and no acknowledgement): an acknowledged message
  survives the loss of its master. The script and the ``WAIT`` go down one connection to the
  master of the world's slot (``WAIT`` counts that connection's writes). A retry that finds its
  message already stored refreshes the dedup key's TTL, a write, so its ``WAIT`` also covers the
  first copy (replication is ordered).
- A master with no replica at all (the usual state right after a failover, until the dead node
  rejoins as a replica) cannot confirm anything: refusing chat then would turn one failover into
  an outage of its shard. Such a master's appends are acknowledged on its own AOF, logged and
  counted (:attr:`ChatStore.unreplicated`), and ``WAIT`` is tried again after
  :data:`LONELY_RECHECK_S`. A master that has a replica which does not answer in time refuses.

Readers page with bounded counts: :meth:`ChatStore.history` (``XREVRANGE``, newest first in
Redis, returned oldest first) and :meth:`ChatStore.read_after` (``XRANGE (after upto``:
gap-free, in order).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Annotated, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ClusterDownError

from worldgen.errors import WorldNotFoundError
from worldgen.store.keys import Keys
from worldgen.store.replies import text as _text

TEXT_MAX = 2000
"""Longest chat text, in characters (code points)."""
LABEL_MAX = 80
"""Longest ping label, in characters."""
NAME_MAX = 80
"""Longest display name."""
ID_MAX = 64
"""Longest id (client message ids, user ids, session ids)."""
COORD_MAX = 2**31
"""Ping coordinates lie in ``[-COORD_MAX, COORD_MAX]`` (the region API's bound)."""
PAGE_MAX = 1000
"""Most entries one read returns (callers page beyond it)."""

CLIENT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
STREAM_ID_RE = re.compile(r"^(\d{1,20})-(\d{1,20})$")

StreamId = tuple[int, int]


def parse_stream_id(value: str) -> StreamId:
    """``"<ms>-<seq>"`` as a comparable tuple (raises ``ValueError`` on anything else)."""
    match = STREAM_ID_RE.fullmatch(value)
    if match is None:
        raise ValueError(f"not a stream id: {value!r}")
    ms, seq = int(match.group(1)), int(match.group(2))
    if ms >= 2**64 or seq >= 2**64:
        raise ValueError(f"stream id out of range: {value!r}")
    return ms, seq


class Author(BaseModel):
    """Who wrote an entry (a guest now; a signed-in user once accounts exist)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(min_length=1, max_length=ID_MAX)
    name: str = Field(min_length=1, max_length=NAME_MAX)
    guest: bool = True


class ChatRecord(BaseModel):
    """A chat message as stored."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: Literal["chat"] = "chat"
    id: str = Field(pattern=CLIENT_ID_PATTERN)
    user: Author
    text: str = Field(min_length=1, max_length=TEXT_MAX)


class PingRecord(BaseModel):
    """A marker dropped on the map, as stored."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: Literal["ping"] = "ping"
    id: str = Field(pattern=CLIENT_ID_PATTERN)
    user: Author
    x: int = Field(ge=-COORD_MAX, le=COORD_MAX)
    y: int = Field(ge=-COORD_MAX, le=COORD_MAX)
    label: str | None = Field(default=None, max_length=LABEL_MAX)


Record = Annotated[ChatRecord | PingRecord, Field(discriminator="kind")]
_RECORD: TypeAdapter[ChatRecord | PingRecord] = TypeAdapter(Record)


@dataclass(frozen=True, slots=True)
class Entry:
    """One stream entry: its id and its validated record."""

    stream_id: str
    key: StreamId
    record: ChatRecord | PingRecord

    @property
    def ts_ms(self) -> int:
        """Server time of the append, in milliseconds since the epoch."""
        return self.key[0]


@dataclass(frozen=True, slots=True)
class Page:
    """Entries of one bounded read, and where the next read starts."""

    entries: list[Entry]
    last_id: str | None
    """Id of the last entry read, valid or not (None when nothing was read)."""
    full: bool
    """The read returned as many entries as asked for: there may be more."""


@dataclass(frozen=True, slots=True)
class Appended:
    """The result of an append: where the message is, and whether this call stored it."""

    stream_id: str
    created: bool


_APPEND = """
-- KEYS[1] stream, KEYS[2] dedup key, KEYS[3] world meta
-- ARGV[1] maxlen, ARGV[2] dedup ttl (s), ARGV[3] record JSON, ARGV[4] channel, ARGV[5] payload
-- ARGV[6] the publishing command: PUBLISH, or SPUBLISH on a cluster
if redis.call('EXISTS', KEYS[3]) == 0 then return {-1, ''} end
local seen = redis.call('GET', KEYS[2])
if seen then
  redis.call('EXPIRE', KEYS[2], ARGV[2])
  return {0, seen}
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'd', ARGV[3])
redis.call('SET', KEYS[2], id, 'EX', ARGV[2])
if ARGV[4] ~= '' then redis.call(ARGV[6], ARGV[4], ARGV[5]) end
return {1, id}
"""

_log = structlog.get_logger("worldgen.store")

ACK_REPLICAS = 1
"""Replicas that must hold a chat message before it is acknowledged (on a cluster)."""
ACK_WAIT_MS = 1000
"""Longest ``WAIT`` for them; past it the append fails (the client retries, idempotently)."""
LONELY_RECHECK_S = 5.0
"""How long a master found without replicas is trusted alone before ``WAIT`` is tried again."""


_RawEntries = list[tuple[bytes | str | None, dict[bytes | str, bytes | str] | None]] | None
"""An XRANGE reply as redis-py types it (bytes, since clients do not decode responses)."""


class ChatStore:
    """Append to and read one world's chat stream."""

    def __init__(
        self, redis: Redis, keys: Keys, *, maxlen: int = 10_000, dedup_ttl_s: int = 3600
    ) -> None:
        if maxlen < 1 or dedup_ttl_s < 1:
            raise ValueError("maxlen and dedup_ttl_s must be positive")
        self.redis = redis
        self.keys = keys
        self.maxlen = maxlen
        self.dedup_ttl_s = dedup_ttl_s
        self.invalid_entries = 0
        """Entries that failed validation on read (counted and skipped)."""
        self._append = redis.register_script(_APPEND)
        self._cluster = redis if isinstance(redis, RedisCluster) else None
        """The cluster client on a Redis Cluster (then appends are waited for), else None."""
        self.ack_wait_s: list[float] = []
        """Seconds each waited append took, newest last (at most 1,000; for benchmarks)."""
        self.replicated = 0
        """Appends a replica confirmed (``WAIT``) before they were acknowledged."""
        self.unreplicated = 0
        """Appends acknowledged by a master that had no replica (see the module docstring)."""
        self._lonely: dict[str, float] = {}
        """Masters (by node name) found without replicas, and until when that is believed."""

    async def append(
        self,
        world_id: str,
        record: ChatRecord | PingRecord,
        *,
        notify: tuple[str, bytes] | None = None,
    ) -> Appended:
        """Store ``record`` once per client id; publish ``notify`` = (channel, payload) if new.

        Raises :class:`~worldgen.errors.WorldNotFoundError` when the world does not exist, and
        Redis errors (``ConnectionError``/``TimeoutError``) when the server is unreachable: then
        the message may or may not be stored, and retrying with the same id is safe.
        """
        channel, payload = notify if notify is not None else ("", b"")
        keys = [
            self.keys.chat(world_id),
            self.keys.chat_dedup(world_id, record.user.id, record.id),
            self.keys.world(world_id),
        ]
        args: list[str | int | bytes] = [
            self.maxlen, self.dedup_ttl_s, record.model_dump_json(), channel, payload
        ]  # fmt: skip
        if self._cluster is not None:
            reply = await self._append_replicated(self._cluster, keys, [*args, "SPUBLISH"])
        else:
            reply = await self._append(keys=keys, args=[*args, "PUBLISH"])
        status, stream_id = int(reply[0]), _text(reply[1])
        if status < 0:
            raise WorldNotFoundError
        return Appended(stream_id=stream_id, created=status == 1)

    async def _append_replicated(
        self, cluster: RedisCluster, keys: list[str], args: list[str | int | bytes]
    ) -> list[bytes | int]:
        """The append script, then ``WAIT``, pipelined on one connection to the master of the
        world's slot; the script's reply once a replica has the write.

        If the slot moved meanwhile (a failover: redis-py followed the redirect for the script,
        but ``WAIT`` went to the old master), the append is repeated on the new master, where
        the dedup key makes it a write of nothing but that key, and ``WAIT`` covers it there.
        """
        started = time.perf_counter()
        await cluster.initialize()  # the slot map (a no-op once loaded)
        for _ in range(2):
            node = cluster.get_node_from_key(keys[0])
            if node is None:
                raise ClusterDownError("no master serves the world's slot")
            if self._lonely.get(node.name, 0.0) > time.monotonic():
                self.unreplicated += 1
                return list(await cluster.eval(_APPEND, len(keys), *keys, *args))
            async with cluster.pipeline(transaction=False) as pipe:
                pipe.eval(_APPEND, len(keys), *keys, *args)
                pipe.execute_command("WAIT", ACK_REPLICAS, ACK_WAIT_MS, target_nodes=node)
                reply, replicas = await pipe.execute(raise_on_error=False)
            if isinstance(reply, Exception):
                raise reply
            now = cluster.get_node_from_key(keys[0])
            if now is None or now.name != node.name:
                continue  # the write landed on the slot's new master: wait there
            if isinstance(replicas, Exception):
                raise replicas
            if int(replicas) >= ACK_REPLICAS:
                self._lonely.pop(node.name, None)
                self.replicated += 1
                self.ack_wait_s.append(time.perf_counter() - started)
                del self.ack_wait_s[:-1000]
                return list(reply)
            info = await cluster.info("replication", target_nodes=node)
            if info.get("role") != "master" or int(info.get("connected_slaves", 0)) > 0:
                raise ClusterDownError(
                    f"chat append not confirmed by {ACK_REPLICAS} replica in {ACK_WAIT_MS} ms"
                )
            _log.warning("chat acknowledged by a master without replicas", node=node.name)
            self._lonely[node.name] = time.monotonic() + LONELY_RECHECK_S
            self.unreplicated += 1
            return list(reply)
        raise ClusterDownError("the world's slot moved during a chat append; retry")

    async def tail_id(self, world_id: str) -> str:
        """Id of the newest entry, or ``"0-0"`` for an empty stream."""
        raw = await self.redis.xrevrange(self.keys.chat(world_id), "+", "-", count=1)
        return _text(raw[0][0]) if raw else "0-0"

    async def history(
        self, world_id: str, *, before: str | None = None, limit: int = 50, upto: str | None = None
    ) -> list[Entry]:
        """Up to ``limit`` newest entries older than ``before`` (or at most ``upto``), oldest first.

        ``before`` is exclusive, ``upto`` inclusive; with neither, the newest entries.
        """
        if not 1 <= limit <= PAGE_MAX:
            raise ValueError(f"limit must be in 1..{PAGE_MAX}")
        end = "+"
        if before is not None:
            parse_stream_id(before)
            end = f"({before}"
        elif upto is not None:
            parse_stream_id(upto)
            end = upto
        raw = await self.redis.xrevrange(self.keys.chat(world_id), end, "-", count=limit)
        entries = self._parse(raw)
        entries.reverse()
        return entries

    async def read_after(
        self, world_id: str, after: str, *, upto: str = "+", count: int = 100
    ) -> Page:
        """Up to ``count`` entries with ids in ``(after, upto]``, oldest first (gap-free paging).

        Continue from :attr:`Page.last_id` while :attr:`Page.full`; an invalid entry is skipped
        but still moves the cursor, so one bad entry never stalls a reader.
        """
        if not 1 <= count <= PAGE_MAX:
            raise ValueError(f"count must be in 1..{PAGE_MAX}")
        parse_stream_id(after)
        if upto != "+":
            parse_stream_id(upto)
        raw = await self.redis.xrange(self.keys.chat(world_id), f"({after}", upto, count=count)
        raw = raw or []
        last = _text(raw[-1][0]) if raw else None
        return Page(entries=self._parse(raw), last_id=last, full=len(raw) == count)

    async def length(self, world_id: str) -> int:
        """Entries currently in the stream."""
        return int(await self.redis.xlen(self.keys.chat(world_id)))

    def _parse(self, raw: _RawEntries) -> list[Entry]:
        """Entries from an XRANGE/XREVRANGE reply, skipping (and counting) invalid ones."""
        entries: list[Entry] = []
        for raw_id, fields in raw or ():
            if raw_id is None:
                continue
            stream_id = _text(raw_id)
            data = fields.get(b"d") if fields else None
            try:
                record = _RECORD.validate_json(data if data is not None else b"")
            except ValidationError:
                self.invalid_entries += 1
                continue
            entries.append(Entry(stream_id, parse_stream_id(stream_id), record))
        return entries
