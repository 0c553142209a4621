"""``worldgen backup``/``restore`` and the archive format, against real Valkey servers."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import stat
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
from redis.asyncio import Redis

from tests.conftest import ValkeyHandle
from worldgen.cli import main
from worldgen.store.backup import (
    FORMAT,
    MAX_LINE_BYTES,
    VERSION,
    Archive,
    BackupError,
    dump,
    load,
    read_archive,
    write_archive,
)
from worldgen.store.cli_commands import redact
from worldgen.store.client import connect
from worldgen.store.embedded import EmbeddedValkey
from worldgen.store.keys import Keys
from worldgen.store.tiles import TileCache
from worldgen.store.worlds import MAX_SEED, WorldRecord, WorldRepo

T = TypeVar("T")
Server = Callable[[], ValkeyHandle]
KEYS = Keys("wg")
WORLDGEN = str(Path(sys.executable).parent / "worldgen")


def run(url: str, body: Callable[[Redis], Awaitable[T]]) -> T:
    """Run ``body(client)`` on a fresh client and close it."""

    async def go() -> T:
        client = connect(url)
        try:
            return await body(client)
        finally:
            await client.aclose()

    return asyncio.run(go())


def seed_worlds(url: str) -> list[WorldRecord]:
    """Three varied worlds (private, owned, non-ASCII name, the largest seed), oldest first."""

    async def body(redis: Redis) -> list[WorldRecord]:
        repo = WorldRepo(redis, KEYS)
        made = [
            await repo.create(name="Plains", tileset="terrain", kind="tiled", seed=0),
            await repo.create(
                name="Île « secrète » 🌋",
                tileset="terrain",
                kind="tiled",
                seed=MAX_SEED,
                visibility="private",
                owner="u-123",
            ),
            await repo.create(name="Caves", tileset="dungeon", kind="overlapping", seed=42),
        ]
        return made

    return run(url, body)


def all_worlds(url: str) -> list[WorldRecord]:
    async def body(redis: Redis) -> list[WorldRecord]:
        return await WorldRepo(redis, KEYS).list(limit=1000)

    return run(url, body)


def index_scores(url: str) -> dict[bytes, float]:
    async def body(redis: Redis) -> dict[bytes, float]:
        pairs = await redis.zrange(KEYS.worlds_index(), 0, -1, withscores=True)
        return dict(cast(list[tuple[bytes, float]], pairs))

    return run(url, body)


def dbsize(url: str) -> int:
    async def body(redis: Redis) -> int:
        return int(await redis.dbsize())

    return run(url, body)


def cli(*argv: str) -> int:
    return main(list(argv))


@pytest.fixture(autouse=True)
def _no_ambient_target(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands read REDIS_URL & co.; the tests say where explicitly."""
    for name in ("REDIS_URL", "WORLDGEN_DATA_DIR", "WORLDGEN_KEY_PREFIX"):
        monkeypatch.delenv(name, raising=False)


# ---- round trips --------------------------------------------------------------------------------


def test_round_trip_into_an_empty_server_gives_identical_worlds(
    valkey_server: Server, tmp_path: Path
) -> None:
    source, target = valkey_server(), valkey_server()
    made = seed_worlds(source.url)
    report = run(source.url, lambda r: dump(r, KEYS))
    assert report.skipped == ()
    assert [w.id for w in report.archive.worlds] == [w.id for w in made]  # oldest first
    path = tmp_path / "b.jsonl.gz"
    write_archive(path, report.archive)
    archive = read_archive(path)
    assert archive.worlds == report.archive.worlds
    restored = run(target.url, lambda r: load(r, KEYS, archive, force=False))
    assert (restored.restored, restored.replaced, restored.kept) == (3, 0, 0)
    assert all_worlds(target.url) == all_worlds(source.url)
    assert index_scores(target.url) == index_scores(source.url)


def test_archive_layout_is_a_manifest_then_one_record_per_line(
    valkey_server: Server, tmp_path: Path
) -> None:
    source = valkey_server()
    made = seed_worlds(source.url)
    (tmp_path / "out").mkdir()
    path = tmp_path / "out" / "b.gz"
    write_archive(path, run(source.url, lambda r: dump(r, KEYS)).archive)
    lines = [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]
    head = lines[0]
    assert head["format"] == FORMAT
    assert head["version"] == VERSION
    assert head["sections"] == {"worlds": 3}
    assert head["key_prefix"] == "wg"
    assert head["created"].endswith("Z")
    assert head["generator"].startswith("worldgen ")
    assert [line["section"] for line in lines[1:]] == ["worlds"] * 3
    assert [WorldRecord.model_validate(line["record"]) for line in lines[1:]] == made
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # holds private worlds
    assert sorted(p.name for p in path.parent.iterdir()) == ["b.gz"]  # no temporary file left


def test_cli_round_trip_through_subprocesses(valkey_server: Server, tmp_path: Path) -> None:
    source, target = valkey_server(), valkey_server()
    seed_worlds(source.url)
    out = tmp_path / "backup.jsonl.gz"
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | {"REDIS_URL": source.url}
    done = subprocess.run(
        [WORLDGEN, "backup", "--out", str(out)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote {out}: 3 worlds")
    done = subprocess.run(
        [WORLDGEN, "restore", str(out), "--redis-url", target.url],
        env=env,  # --redis-url wins over REDIS_URL (the source)
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"restored 3 worlds from {out}")
    assert all_worlds(target.url) == all_worlds(source.url)


def test_embedded_server_round_trip_and_refusal_while_it_runs(
    valkey_server: Server, tmp_path: Path
) -> None:
    source = valkey_server()
    made = seed_worlds(source.url)
    out = tmp_path / "b.gz"
    assert cli("backup", "--redis-url", source.url, "--out", str(out)) == 0
    data = tmp_path / "data"
    assert cli("restore", str(out), "--data-dir", str(data)) == 0
    assert (data / "valkey").is_dir()
    again = tmp_path / "again.gz"
    assert cli("backup", "--data-dir", str(data), "--out", str(again)) == 0  # reads the AOF back
    assert read_archive(again).worlds == tuple(made)

    server = EmbeddedValkey(data / "valkey")  # as `worldgen serve` runs it
    server.start()
    try:
        assert cli("backup", "--data-dir", str(data), "--out", str(tmp_path / "x.gz")) == 2
        assert all_worlds(server.url) == sorted(made, key=lambda w: -w.created)
    finally:
        server.stop()
    assert not (tmp_path / "x.gz").exists()


def test_backup_refuses_a_data_dir_without_a_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("backup", "--data-dir", str(tmp_path / "nothing"), "--out", str(tmp_path / "b")) == 2
    assert "no embedded Valkey data" in capsys.readouterr().err
    assert not (tmp_path / "nothing").exists()


def test_backup_leaves_out_unreadable_worlds_with_a_warning(
    valkey_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = valkey_server()
    made = seed_worlds(source.url)

    async def spoil(redis: Redis) -> None:
        await redis.hset(KEYS.world(made[1].id), "seed", "-5")
        await redis.zadd(KEYS.worlds_index(), {"dangling-id": 1.0})

    run(source.url, spoil)
    out = tmp_path / "b.gz"
    assert cli("backup", "--redis-url", source.url, "--out", str(out)) == 0
    err = capsys.readouterr().err
    assert made[1].id in err
    assert "dangling-id" in err
    assert [w.id for w in read_archive(out).worlds] == [made[0].id, made[2].id]


def test_an_empty_server_gives_an_empty_archive_that_restores(
    valkey_server: Server, tmp_path: Path
) -> None:
    source, target = valkey_server(), valkey_server()
    out = tmp_path / "b.gz"
    assert cli("backup", "--redis-url", source.url, "--out", str(out)) == 0
    assert read_archive(out).worlds == ()
    assert cli("restore", str(out), "--redis-url", target.url) == 0
    assert dbsize(target.url) == 0


# ---- a target that is not empty -----------------------------------------------------------------


def test_restore_refuses_a_target_with_worlds_unless_forced(
    valkey_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, target = valkey_server(), valkey_server()
    made = seed_worlds(source.url)
    out = tmp_path / "b.gz"
    assert cli("backup", "--redis-url", source.url, "--out", str(out)) == 0

    async def prepare(redis: Redis) -> WorldRecord:
        repo = WorldRepo(redis, KEYS)
        tiles = TileCache(redis, KEYS, max_tiles=100)
        # same id and content as an archived world, but renamed: its tiles stay valid
        await repo.put(made[0].model_copy(update={"name": "renamed"}))
        await tiles.put(made[0].id, "v1", 0, 0, 0, b"same-content")
        # same id, other seed: its tiles must not survive the restore
        await repo.put(made[2].model_copy(update={"seed": 7}))
        await tiles.put(made[2].id, "v1", 0, 0, 0, b"stale")
        return await repo.create(name="Local", tileset="terrain", kind="tiled", seed=5)

    local = run(target.url, prepare)
    before = dbsize(target.url)
    capsys.readouterr()
    assert cli("restore", str(out), "--redis-url", target.url) == 2
    assert "already holds 3 worlds" in capsys.readouterr().err
    assert dbsize(target.url) == before

    assert cli("restore", str(out), "--redis-url", target.url, "--force") == 0
    assert "(1 replaced with other content, 1 kept)" in capsys.readouterr().out
    assert {w.id: w for w in all_worlds(target.url)} == {w.id: w for w in [*made, local]}

    async def cached(redis: Redis) -> tuple[bytes | None, bytes | None]:
        tiles = TileCache(redis, KEYS, max_tiles=100)
        return (
            await tiles.get(made[0].id, "v1", 0, 0, 0),
            await tiles.get(made[2].id, "v1", 0, 0, 0),
        )

    assert run(target.url, cached) == (b"same-content", None)
    # idempotent: the same forced restore again changes nothing
    assert cli("restore", str(out), "--redis-url", target.url, "--force") == 0
    assert {w.id for w in all_worlds(target.url)} == {w.id for w in [*made, local]}


# ---- files that must be refused, with nothing written -------------------------------------------


def _gz(*lines: Any) -> bytes:
    return gzip.compress(b"".join(json.dumps(x).encode() + b"\n" for x in lines))


def _record(**changes: Any) -> dict[str, Any]:
    base = {
        "id": "abcdefgh12",
        "name": "A",
        "tileset": "terrain",
        "kind": "tiled",
        "seed": 1,
        "created": 1.5,
    }
    return base | changes


def _head(**changes: Any) -> dict[str, Any]:
    return (
        {"format": FORMAT, "version": 1, "created": "2026-01-01T00:00:00Z"}
        | {"sections": {"worlds": 1}}
        | changes
    )


def _world(**changes: Any) -> dict[str, Any]:
    return {"section": "worlds", "record": _record(**changes)}


GOOD = _gz(_head(), _world())
TWO = {"sections": {"worlds": 2}}

BAD_FILES: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "not gzip"),
    "plain text": (b"hello, world\n", "not gzip"),
    "plain json": (json.dumps(_head()).encode(), "not gzip"),
    "truncated": (GOOD[: len(GOOD) // 2], "corrupt or truncated"),
    "flipped byte": (GOOD[:20] + bytes([GOOD[20] ^ 0xFF]) + GOOD[21:], "corrupt"),
    "empty gzip": (gzip.compress(b""), "is empty"),
    "gzip of garbage": (gzip.compress(b"\x00\xff garbage"), "not valid JSON"),
    "other format": (_gz({"format": "redis-dump", "version": 1}), "not a worldgen backup"),
    "manifest not an object": (_gz([FORMAT, 1]), "not a worldgen backup"),
    "newer version": (_gz(_head(version=2)), "version 2"),
    "version zero": (_gz(_head(version=0)), "invalid manifest"),
    "no sections": (_gz({"format": FORMAT, "version": 1, "created": "x"}), "invalid manifest"),
    "unknown section": (_gz(_head(sections={"worlds": 0, "chat": 1})), "newer worldgen"),
    "negative count": (_gz(_head(sections={"worlds": -1})), "negative"),
    "missing record": (_gz(_head(**TWO), _world()), "1 of 2"),
    "extra record": (_gz(_head(), _world(), _world(id="abcdefgh99")), "more worlds records"),
    "invalid record": (_gz(_head(), _world(seed=-1)), "seed"),
    "bad world id": (_gz(_head(), _world(id="a b")), "id"),
    "record not an object": (_gz(_head(), ["worlds", _record()]), "expected"),
    "unlisted section": (_gz(_head(), {"section": "chat", "record": {}}), "not in the manifest"),
    "duplicate id": (_gz(_head(**TWO), _world(), _world()), "appears twice"),
    "bad utf-8": (gzip.compress(json.dumps(_head()).encode() + b"\n\xff\xfe\n"), "not valid JSON"),
    "huge line": (gzip.compress(b"[" + b" " * MAX_LINE_BYTES + b"]\n"), "longer than"),
}


@pytest.mark.parametrize(("data", "message"), list(BAD_FILES.values()), ids=list(BAD_FILES))
def test_restore_refuses_bad_files_and_writes_nothing(
    data: bytes,
    message: str,
    valkey_server: Server,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = valkey_server()
    path = tmp_path / "bad.gz"
    path.write_bytes(data)
    with pytest.raises(BackupError, match=message):
        read_archive(path)
    assert cli("restore", str(path), "--redis-url", target.url) == 2
    err = capsys.readouterr().err
    assert err.startswith("worldgen: error: ")
    assert err.count("\n") == 1  # one line, no traceback
    assert dbsize(target.url) == 0


def test_the_good_file_of_the_bad_file_table_is_good(tmp_path: Path) -> None:
    path = tmp_path / "good.gz"
    path.write_bytes(GOOD)
    assert read_archive(path) == Archive(
        worlds=(WorldRecord.model_validate(_record()),),
        created="2026-01-01T00:00:00Z",
    )


def test_missing_file_and_folder_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("restore", str(tmp_path / "nope.gz"), "--redis-url", "redis://127.0.0.1:1/0") == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli("restore", str(tmp_path), "--redis-url", "redis://127.0.0.1:1/0") == 2
    assert "is a folder" in capsys.readouterr().err
    assert cli("backup", "--out", str(tmp_path / "no" / "b.gz"), "--redis-url", "x") == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli("backup", "--out", str(tmp_path), "--redis-url", "x") == 2
    assert "is a folder" in capsys.readouterr().err


# ---- reaching Redis -----------------------------------------------------------------------------


def test_unreachable_redis_is_exit_2_without_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "redis://admin:hunter2@127.0.0.1:1/0"
    assert cli("backup", "--out", str(tmp_path / "b.gz"), "--redis-url", url) == 2
    err = capsys.readouterr().err
    assert "redis://admin:***@127.0.0.1:1/0" in err
    assert "hunter2" not in err
    assert not (tmp_path / "b.gz").exists()
    assert cli("backup", "--out", str(tmp_path / "b.gz"), "--redis-url", "http://x") == 2
    assert "invalid Redis URL" in capsys.readouterr().err


def test_key_prefix_selects_the_worlds(valkey_server: Server, tmp_path: Path) -> None:
    source = valkey_server()
    seed_worlds(source.url)  # under "wg"
    out = tmp_path / "b.gz"
    assert cli("backup", "--redis-url", source.url, "--key-prefix", "other", "--out", str(out)) == 0
    assert read_archive(out).worlds == ()
    assert read_archive(out).key_prefix == "other"
    assert cli("backup", "--redis-url", source.url, "--key-prefix", "Bad!", "--out", str(out)) == 2


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("redis://:pw@h:1/0", "redis://:***@h:1/0"),
        ("rediss://user:p%40ss@h/2", "rediss://user:***@h/2"),
        ("unix:///tmp/r.sock", "unix:///tmp/r.sock"),
    ],
)
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown


# ---- the promise: same worlds, same tiles -------------------------------------------------------


def test_restored_worlds_serve_the_same_tiles(
    valkey_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the real app: a world made on one server, backed up and restored into an empty
    one, has the same API object and byte-identical tiles (recomputed: tiles are not archived)."""
    import httpx

    from worldgen.settings import Settings
    from worldgen.web.app import create_app
    from worldgen.web.generation import InlineGenerator

    monkeypatch.setenv("WORLDGEN_CACHE_DIR", str(tmp_path / "cache"))
    source, target = valkey_server(), valkey_server()
    tiles = ["0/0/0", "0/-3/2", "2/41/-17"]

    async def through_app(url: str, create: bool) -> tuple[dict[str, Any], dict[str, bytes]]:
        settings = Settings(redis_url=url, data_dir=tmp_path / "unused", log_level="warning")
        app = create_app(settings, generator=InlineGenerator())
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
        ):
            if create:
                made = await c.post(
                    "/api/worlds", json={"name": "Round trip", "tileset": "terrain", "seed": 4242}
                )
                assert made.status_code == 201, made.text
                wid = made.json()["id"]
            else:
                listed = (await c.get("/api/worlds")).json()["worlds"]
                assert len(listed) == 1
                wid = listed[0]["id"]
            world = (await c.get(f"/api/worlds/{wid}")).json()
            pngs: dict[str, bytes] = {}
            for zxy in tiles:
                response = await c.get(f"/tiles/{wid}/{zxy}.png")
                assert response.status_code == 200
                pngs[zxy] = response.content
                pngs[zxy + " etag"] = response.headers["etag"].encode()
            return world, pngs

    world_a, tiles_a = asyncio.run(through_app(source.url, create=True))
    out = tmp_path / "b.gz"
    assert cli("backup", "--redis-url", source.url, "--out", str(out)) == 0
    assert cli("restore", str(out), "--redis-url", target.url) == 0
    assert dbsize(target.url) == 2  # the world's hash and the index: no tile came along
    world_b, tiles_b = asyncio.run(through_app(target.url, create=False))
    assert world_b == world_a
    assert tiles_b == tiles_a
