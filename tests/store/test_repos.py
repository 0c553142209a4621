"""Keys, world repository, tile cache and the embedded server, against a real Valkey."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.conftest import ValkeyHandle
from worldgen.errors import StaleVersionError
from worldgen.store.client import connect
from worldgen.store.embedded import EmbeddedValkey
from worldgen.store.keys import Keys, valid_world_id
from worldgen.store.tiles import TileCache
from worldgen.store.worlds import (
    LEGACY_BLOCK_SIZE,
    MAX_BLOCK_SIZE,
    MAX_SEED,
    NAME_MAX,
    WorldRecord,
    WorldRepo,
)

T = TypeVar("T")
Server = Callable[[], ValkeyHandle]


def run(url: str, body: Callable[[Redis], Awaitable[T]]) -> T:
    """Run ``body(client)`` on a fresh client and close it (no leaked sockets)."""

    async def main() -> T:
        client = connect(url)
        try:
            return await body(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def _text(v: str | bytes | None) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def test_keys_share_the_world_hash_tag_and_refuse_foreign_text() -> None:
    keys = Keys("wg")
    wid = "abcDEF12_-"
    assert keys.world(wid) == "wg:1:{w:abcDEF12_-}:meta"
    assert keys.tile(wid, "v1-L2", -3, 4, -5).startswith("wg:1:{w:abcDEF12_-}:tile:")
    for bad in ("short", "x" * 33, "has space!", "a{b}cdefgh", "../../etc"):
        assert not valid_world_id(bad)
        with pytest.raises(ValueError, match="invalid world id"):
            keys.world(bad)
    with pytest.raises(ValueError, match="content version"):
        keys.tile(wid, "bad version", 0, 0, 0)
    with pytest.raises(ValueError, match="prefix"):
        Keys("Bad Prefix")


def test_world_record_bounds() -> None:
    base = {"id": "abcdefgh", "name": "n", "tileset": "terrain", "kind": "tiled", "created": 1.0}
    WorldRecord.model_validate({**base, "seed": MAX_SEED, "name": "x" * NAME_MAX})
    with pytest.raises(ValidationError):
        WorldRecord.model_validate({**base, "seed": MAX_SEED + 1})
    with pytest.raises(ValidationError):
        WorldRecord.model_validate({**base, "seed": 0, "name": "x" * (NAME_MAX + 1)})
    with pytest.raises(ValidationError):
        WorldRecord.model_validate({**base, "seed": -1})
    # the block size: absent (a record made before it was pinned) means 32; even, 4..64
    assert WorldRecord.model_validate({**base, "seed": 0}).block_size == LEGACY_BLOCK_SIZE == 32
    for ok in (4, 16, MAX_BLOCK_SIZE):
        assert WorldRecord.model_validate({**base, "seed": 0, "block_size": ok}).block_size == ok
    for bad in (2, 15, MAX_BLOCK_SIZE + 2, "x"):
        with pytest.raises(ValidationError):
            WorldRecord.model_validate({**base, "seed": 0, "block_size": bad})


def test_world_crud_round_trip(valkey_server: Server) -> None:
    srv = valkey_server()

    async def body(r: Redis) -> None:
        repo = WorldRepo(r, Keys())
        a = await repo.create(name="Alpha", tileset="terrain", kind="tiled", seed=42)
        b = await repo.create(
            name="Beta", tileset="lakes", kind="overlapping", seed=MAX_SEED, visibility="private",
            block_size=16,
        )  # fmt: skip
        assert await repo.get(a.id) == a
        assert (a.block_size, (await repo.get(b.id)).block_size) == (32, 16)  # type: ignore[union-attr]
        assert [w.id for w in await repo.list()] == [b.id, a.id]  # newest first
        assert [w.id for w in await repo.list(offset=1, limit=1)] == [a.id]
        assert await repo.count() == 2
        assert a.version == 1
        renamed = await repo.update(a.id, name="Alpha 2")
        assert renamed is not None
        assert (renamed.name, renamed.version) == ("Alpha 2", 2)
        assert (await repo.get(a.id)) == renamed
        # a change made against the current version applies; one against an older is refused
        hidden = await repo.update(a.id, visibility="private", expected_version=2)
        assert hidden is not None
        assert (hidden.name, hidden.visibility, hidden.version) == ("Alpha 2", "private", 3)
        with pytest.raises(StaleVersionError):
            await repo.update(a.id, name="Alpha 3", expected_version=2)
        assert (await repo.get(a.id)) == hidden  # the stale change wrote nothing
        with pytest.raises(ValidationError):  # validated before anything is written
            await repo.update(a.id, name="x" * 81)
        assert await repo.update("unknown-id-1", name="x") is None
        assert await r.exists(Keys().world("unknown-id-1")) == 0  # never created by an update
        assert await repo.get("nope") is None  # malformed id: None, no key built
        tiles = TileCache(r, Keys(), max_tiles=10)
        await tiles.put(a.id, "v1", 2, 0, 0, b"png")
        assert await repo.delete(a.id)
        assert await repo.get(a.id) is None
        assert await tiles.get(a.id, "v1", 2, 0, 0) is None  # the world's tiles went with it
        assert not await repo.delete(a.id)
        assert [w.id for w in await repo.list()] == [b.id]

    run(srv.url, body)


def test_corrupt_record_reads_as_missing(valkey_server: Server) -> None:
    srv = valkey_server()

    async def body(r: Redis) -> None:
        repo = WorldRepo(r, Keys())
        w = await repo.create(name="A", tileset="terrain", kind="tiled", seed=1)
        await r.hset(Keys().world(w.id), "seed", "not a number")
        assert await repo.get(w.id) is None
        assert repo.invalid_records == 1
        assert await repo.list() == []

    run(srv.url, body)


def test_tile_cache_is_bounded_lru(valkey_server: Server) -> None:
    srv = valkey_server()

    async def body(r: Redis) -> None:
        cache = TileCache(r, Keys(), max_tiles=3)
        wid = "worldid1"
        for x in range(3):
            await cache.put(wid, "v1", 2, x, 0, f"t{x}".encode())
            await asyncio.sleep(0.002)
        assert await cache.get(wid, "v1", 2, 0, 0) == b"t0"  # refresh tile 0
        await asyncio.sleep(0.002)
        await cache.put(wid, "v1", 2, 3, 0, b"t3")  # limit+1: evicts the least recently used
        assert await cache.size() == 3
        assert await cache.get(wid, "v1", 2, 1, 0) is None
        assert await cache.get(wid, "v1", 2, 0, 0) == b"t0"
        assert await cache.get(wid, "v1", 2, 3, 0) == b"t3"
        assert await cache.get(wid, "v2", 2, 3, 0) is None  # another version is another tile

    run(srv.url, body)


@pytest.mark.standalone_only("kills the server (the cluster's failover has its own test)")
def test_worlds_survive_kill_and_restart(valkey_server: Server) -> None:
    """AOF everysec: a SIGKILLed server keeps writes older than the fsync second."""
    srv = valkey_server()

    async def create(r: Redis) -> str:
        w = await WorldRepo(r, Keys()).create(name="Kept", tileset="terrain", kind="tiled", seed=7)
        await asyncio.sleep(1.5)  # past one appendfsync everysec tick
        return w.id

    wid = run(srv.url, create)
    srv.kill()

    async def down(r: Redis) -> None:
        with pytest.raises(RedisConnectionError):
            await r.ping()

    run(srv.url, down)
    srv.restart()

    async def back(r: Redis) -> WorldRecord | None:
        return await WorldRepo(r, Keys()).get(wid)

    got = run(srv.url, back)
    assert got is not None
    assert got.name == "Kept"


@pytest.mark.standalone_only("kills the server (the cluster's failover has its own test)")
def test_client_recovers_after_restart_without_a_new_client(valkey_server: Server) -> None:
    srv = valkey_server()

    async def body(r: Redis) -> None:
        assert await r.ping()
        srv.kill()
        with pytest.raises(RedisConnectionError):
            await r.ping()
        srv.restart()
        assert await r.ping()  # the same client reconnects by itself

    run(srv.url, body)


def test_embedded_valkey_uses_aof_in_its_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with EmbeddedValkey(data) as server:
        assert server.url.startswith("redis://127.0.0.1:")

        async def body(r: Redis) -> dict[str, str]:
            cfg: dict[str, str] = {}
            for name in ("appendonly", "appendfsync", "dir", "bind"):
                got = await r.config_get(name)
                cfg.update({_text(k): _text(v) for k, v in got.items()})
            return cfg

        cfg = run(server.url, body)
    assert cfg["appendonly"] == "yes"
    assert cfg["appendfsync"] == "everysec"
    assert Path(cfg["dir"]) == data.resolve()
    assert cfg["bind"].split()[0] == "127.0.0.1"
    assert any(data.rglob("*.aof*")) or (data / "appendonlydir").is_dir()
