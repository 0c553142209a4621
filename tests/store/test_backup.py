"""``worldgen backup``/``restore`` and the archive format, against real Valkey servers.

A backup holds everything that cannot be recomputed: worlds, accounts (argon2 hashes as stored),
members, roles and pending invites, and each world's chat stream with its stream ids. Sessions,
presence, rate-limit counters, chat de-duplication keys and tiles are never archived.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import stat
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from redis.asyncio import Redis

from tests.conftest import ValkeyHandle
from worldgen.cli import main
from worldgen.cli.backup import redact
from worldgen.errors import UsernameTakenError
from worldgen.store.backup import (
    FORMAT,
    MAX_LINE_BYTES,
    SECTIONS,
    VERSION,
    Archive,
    BackupError,
    ChatEntry,
    ChatLog,
    dump,
    load,
    read_archive,
    write_archive,
)
from worldgen.store.chat import Author, ChatRecord, ChatStore, PingRecord
from worldgen.store.client import connect
from worldgen.store.embedded import EmbeddedValkey
from worldgen.store.keys import Keys
from worldgen.store.members import MAX_MEMBERS, MemberRepo
from worldgen.store.sessions import Revocations, SessionStore
from worldgen.store.tiles import TileCache
from worldgen.store.users import UserRecord, UserRepo
from worldgen.store.worlds import MAX_SEED, WorldRecord, WorldRepo

T = TypeVar("T")
Server = Callable[[], ValkeyHandle]
KEYS = Keys("wg")
WORLDGEN = str(Path(sys.executable).parent / "worldgen")
PASSWORD = "correct horse battery staple"
HASHER = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))
"""argon2id with tiny costs: the production code path, a thousandth of the time."""
NOT_ARCHIVED = (":session:", ":sessions", ":chat:dedup:", ":rate:", ":presence")
"""Key name parts of what a backup leaves out on purpose (tiles are never made here)."""


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


@dataclass(frozen=True)
class Seeded:
    """What :func:`seed_everything` made."""

    worlds: list[WorldRecord]
    users: dict[str, UserRecord]
    token: str
    """A pending invite link to the private world (editor, 5 uses, 1 used)."""
    expired: str
    """Id of an invite of the private world that has expired (a backup leaves it out)."""


LONG_TEXT = ('Ünïcödé 🌋 "quoted" \\ back\nslash, ' * 80)[:2000]


def seed_everything(url: str, *, caves_chat: int = 1200) -> Seeded:
    """Worlds, four accounts, members of every role, invites, chat, and things never archived
    (a session, de-duplication keys)."""

    async def body(redis: Redis) -> Seeded:
        worlds, users = WorldRepo(redis, KEYS), UserRepo(redis, KEYS)
        members, chat = MemberRepo(redis, KEYS), ChatStore(redis, KEYS)
        made = {
            name: await users.create(name, HASHER.hash(PASSWORD))
            for name in ("Alice", "bob.b-2", "Carol_" + "x" * 26, "dav")
        }
        alice, bob, carol, dav = made.values()
        plains = await worlds.create(
            name="Plains", tileset="terrain", kind="tiled", seed=0, owner=bob.id
        )
        secret = await worlds.create(
            name="Île « secrète » 🌋",
            tileset="terrain",
            kind="tiled",
            seed=MAX_SEED,
            visibility="private",
            owner=alice.id,
        )
        caves = await worlds.create(name="Caves", tileset="dungeon", kind="overlapping", seed=42)
        await worlds.create(name="Quiet", tileset="terrain", kind="tiled", seed=9)  # nothing else
        await members.add(plains.id, bob.id, "owner")
        await members.add(secret.id, alice.id, "owner")
        await members.add(secret.id, bob.id, "editor")
        await members.add(secret.id, carol.id, "viewer")
        _, token = await members.create_invite(
            secret.id, role="editor", ttl_s=3600, created_by=alice.id, max_uses=5
        )
        other, other_token = await members.create_invite(
            secret.id, role="viewer", ttl_s=60, created_by=alice.id
        )
        assert await members.redeem(other_token, dav.id) is not None  # dav: a viewer ...
        assert await members.redeem(token, dav.id) is not None  # ... raised to editor
        # the second invite expires (rewritten as members.py stores it)
        data = other.model_dump(exclude={"uses"}) | {"expires": 1.0}
        await redis.hset(KEYS.invites(secret.id), other.id, json.dumps(data))

        who = Author(id=alice.id, name=alice.username, guest=False)
        await chat.append(plains.id, ChatRecord(id="m1", user=who, text="hello"))
        await chat.append(plains.id, ChatRecord(id="m2", user=who, text=LONG_TEXT))
        await chat.append(
            plains.id,
            PingRecord(
                id="p1",
                user=Author(id=bob.id, name=bob.username, guest=False),
                x=-(2**31),
                y=2**31,
            ),
        )
        await chat.append(
            secret.id,
            PingRecord(id="p2", user=who, x=3, y=-4, label="🏰 " + "l" * 78),
        )
        guest = Author(id="guest-1", name="A guest")
        for i in range(caves_chat):  # more than one page of reads and of writes
            await chat.append(caves.id, ChatRecord(id=f"g{i}", user=guest, text=f"n°{i}"))
        sessions = SessionStore(redis, KEYS, Revocations(redis, KEYS), idle_s=600, max_s=600)
        await sessions.create(alice.id, alice.username)
        return Seeded(
            worlds=[plains, secret, caves],
            users={u.username: u for u in made.values()},
            token=token,
            expired=other.id,
        )

    return run(url, body)


async def _snapshot(redis: Redis) -> dict[str, tuple[str, Any]]:
    """Every key a backup should reproduce, with its value (JSON values parsed, so that an
    equal value written by Lua's cjson or by Python compares equal)."""

    def value(raw: object) -> Any:
        text = _s(raw)
        return json.loads(text) if text.startswith("{") else text

    names = sorted(
        key
        for key in [_s(k) async for k in redis.scan_iter(count=1000)]
        if not any(part in key for part in NOT_ARCHIVED)
    )
    async with redis.pipeline(transaction=False) as pipe:
        for key in names:
            pipe.type(key)
        kinds = [_s(kind) for kind in await pipe.execute()]
    async with redis.pipeline(transaction=False) as pipe:
        for key, kind in zip(names, kinds, strict=True):
            if kind == "hash":
                pipe.hgetall(key)
            elif kind == "zset":
                pipe.zrange(key, 0, -1, withscores=True)
            elif kind == "stream":
                pipe.xrange(key)
            else:
                pipe.get(key)
        replies = await pipe.execute()
    out: dict[str, tuple[str, Any]] = {}
    for key, kind, reply in zip(names, kinds, replies, strict=True):
        if kind == "hash":
            out[key] = (kind, {_s(k): value(v) for k, v in reply.items()})
        elif kind == "zset":
            # scores to 0.01 s: members.py keeps some joining times to 14 digits only
            out[key] = (kind, [(_s(m), round(score, 2)) for m, score in reply])
        elif kind == "stream":
            out[key] = (kind, [(_s(i), dict(f.items())) for i, f in reply])
        else:
            out[key] = (kind, reply)
    return out


def _s(value: object) -> str:
    assert isinstance(value, bytes)
    return value.decode()


def snapshot(url: str) -> dict[str, tuple[str, Any]]:
    return run(url, _snapshot)


def all_keys(url: str) -> list[str]:
    async def body(redis: Redis) -> list[str]:
        return sorted([k.decode() async for k in redis.scan_iter(count=1000)])

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


def backup(url: str, path: Path) -> Archive:
    """Dump ``url`` into ``path`` (through the functions the command uses) and read it back."""

    async def body(redis: Redis) -> None:
        report = await dump(redis, KEYS)
        assert report.skipped == ()
        assert report.warnings == ()
        write_archive(path, report.archive)

    run(url, body)
    return read_archive(path)


@pytest.fixture(autouse=True)
def _no_ambient_target(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands read REDIS_URL & co.; the tests say where explicitly."""
    for name in ("REDIS_URL", "WORLDGEN_DATA_DIR", "WORLDGEN_KEY_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("WORLDGEN_REALTIME_"):
            monkeypatch.delenv(name)


# ---- round trips --------------------------------------------------------------------------------


@pytest.mark.standalone_only("two servers: a backup's source and its restore target")
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


@pytest.mark.standalone_only("two servers: a backup's source and its restore target")
def test_round_trip_reproduces_accounts_members_invites_and_chat(
    valkey_server: Server, tmp_path: Path
) -> None:
    """Every key a backup covers comes back equal; chat with the same stream ids; each account
    logs in with the same password; a pending invite link still works; no session survives."""
    source, target = valkey_server(), valkey_server()
    seeded = seed_everything(source.url)
    archive = backup(source.url, tmp_path / "b.gz")
    assert archive.users is not None
    assert len(archive.users) == 4
    assert archive.members is not None
    assert [a.world for a in archive.members] == [
        seeded.worlds[0].id,
        seeded.worlds[1].id,
    ]
    assert [i.uses for i in archive.members[1].invites] == [1]  # the expired one left out
    assert archive.chat is not None
    assert archive.chat.counts == {
        seeded.worlds[0].id: 3,
        seeded.worlds[1].id: 1,
        seeded.worlds[2].id: 1200,
    }

    report = run(target.url, lambda r: load(r, KEYS, archive, force=False))
    assert (report.restored, report.users, report.memberships, report.invites) == (4, 4, 5, 1)
    assert (report.chat, report.chat_dropped, report.signed_out) == (1204, 0, 0)

    expected = snapshot(source.url)
    invites_key = KEYS.invites(seeded.worlds[1].id)
    del expected[invites_key][1][seeded.expired]  # expired: not archived, nor its use count
    del expected[KEYS.invite_uses(seeded.worlds[1].id)][1][seeded.expired]
    assert snapshot(target.url) == expected
    assert not any(":session" in k or ":dedup:" in k for k in all_keys(target.url))

    async def check(redis: Redis) -> None:
        users, members = UserRepo(redis, KEYS), MemberRepo(redis, KEYS)
        for name, made in seeded.users.items():
            record = await users.by_username(name.upper())  # the index ignores letter case
            assert record == made
            assert HASHER.verify(PASSWORD, record.password_hash)
            assert not HASHER.verify("wrong password", record.password_hash)
        with pytest.raises(UsernameTakenError):
            await users.create("ALICE", HASHER.hash(PASSWORD))
        erin = await users.create("erin", HASHER.hash(PASSWORD))
        joined = await members.redeem(seeded.token, erin.id)
        assert joined is not None
        assert joined[1].role == "editor"
        assert joined[2]
        assert [i.uses for i in await members.invites(seeded.worlds[1].id)] == [2]
        dav = seeded.users["dav"]
        assert await members.world_ids(dav.id) == [seeded.worlds[1].id]
        history = await ChatStore(redis, KEYS).history(seeded.worlds[0].id, limit=10)
        assert [e.record.id for e in history] == ["m1", "m2", "p1"]

    run(target.url, check)


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
    assert head["version"] == VERSION == 1
    assert head["sections"] == {
        "worlds": 3,
        "users": 0,
        "members": 0,
        "chat": 0,
        "edits": 0,
        "models": 0,
    }
    assert list(head["sections"]) == list(SECTIONS)
    assert head["key_prefix"] == "wg"
    assert head["created"].endswith("Z")
    assert head["generator"].startswith("worldgen ")
    assert [line["section"] for line in lines[1:]] == ["worlds"] * 3
    assert [WorldRecord.model_validate(line["record"]) for line in lines[1:]] == made
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # holds private worlds
    assert sorted(p.name for p in path.parent.iterdir()) == ["b.gz"]  # no temporary file left


def test_archive_holds_hashes_and_ids_never_passwords_or_sessions(
    valkey_server: Server, tmp_path: Path
) -> None:
    source = valkey_server()
    seeded = seed_everything(source.url, caves_chat=2)
    path = tmp_path / "b.gz"
    backup(source.url, path)
    text = gzip.decompress(path.read_bytes()).decode()
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0]["sections"] == {
        "worlds": 4,
        "users": 4,
        "members": 2,
        "chat": 6,
        "edits": 0,
        "models": 0,
    }
    assert [line["section"] for line in lines[1:]] == (
        ["worlds"] * 4 + ["users"] * 4 + ["members"] * 2 + ["chat"] * 6
    )
    users = [line["record"] for line in lines if line.get("section") == "users"]
    assert {u["username"] for u in users} == set(seeded.users)
    assert all(u["password_hash"].startswith("$argon2id$") for u in users)
    assert sorted(users[0]) == ["created", "id", "password_hash", "username"]
    assert PASSWORD not in text
    assert seeded.token.rsplit(".", 1)[1] not in text  # only the digest of an invite's secret
    assert ":session" not in text
    chat = [line["record"] for line in lines if line.get("section") == "chat"]
    assert chat[0]["world"] == seeded.worlds[0].id
    assert chat[0]["entry"] == {
        "kind": "chat",
        "id": "m1",
        "user": {"id": seeded.users["Alice"].id, "name": "Alice", "guest": False},
        "text": "hello",
    }
    assert all(c["id"].split("-")[0].isdigit() for c in chat)


@pytest.mark.standalone_only("two servers: a backup's source and its restore target")
def test_cli_round_trip_through_subprocesses(valkey_server: Server, tmp_path: Path) -> None:
    source, target = valkey_server(), valkey_server()
    seed_everything(source.url, caves_chat=3)
    (tmp_path / "backups").mkdir()
    out = tmp_path / "backups" / "backup.jsonl.gz"
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | {"REDIS_URL": source.url}
    done = subprocess.run(
        [WORLDGEN, "backup", "--out", str(out)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        f"wrote {out}: 4 worlds, 4 accounts, 5 memberships, 1 invite, 7 chat entries in "
    )
    assert done.stderr == ""
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no spool left behind
    done = subprocess.run(
        [WORLDGEN, "restore", str(out), "--redis-url", target.url],
        env=env,  # --redis-url wins over REDIS_URL (the source)
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first.startswith(
        f"restored 4 worlds, 4 accounts, 5 memberships, 1 invite, 7 chat entries from {out} in "
    )
    assert second == "sessions are never backed up: everyone signs in again"
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


@pytest.mark.standalone_only("two servers: a backup's source and its restore target")
def test_backup_leaves_out_what_it_cannot_restore_and_says_so(
    valkey_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plaintext "hash", an account its username does not lead to, a membership of a missing
    account, an unreadable membership or invite, an invalid chat entry: each left out with a
    warning that names ids only; the rest of the archive restores."""
    source, target = valkey_server(), valkey_server()
    seeded = seed_everything(source.url, caves_chat=2)
    plains, secret = seeded.worlds[0], seeded.worlds[1]

    async def spoil(redis: Redis) -> dict[str, str]:
        users = UserRepo(redis, KEYS)
        plain = await users.create("plain", "hunter2")  # must never reach an archive
        orphan = UserRecord(
            id="O" * 16, username="bob.B-2", created=1.0, password_hash=HASHER.hash("x")
        )
        await redis.hset(KEYS.user(orphan.id), mapping=orphan.to_hash())  # type: ignore[arg-type]
        await redis.hset(KEYS.members(plains.id), "G" * 16, '{"role": "viewer", "joined": 1}')
        await redis.hset(KEYS.members(plains.id), "H" * 16, "not json")
        await redis.hset(KEYS.invites(plains.id), "I" * 12, '{"id": "wrong"}')
        await redis.xadd(KEYS.chat(secret.id), {"d": b'{"kind": "spam"}'})
        return {"plain": plain.id, "orphan": orphan.id}

    ids = run(source.url, spoil)
    out = tmp_path / "b.gz"
    assert cli("backup", "--redis-url", source.url, "--out", str(out)) == 0
    err = capsys.readouterr().err
    assert f"account {ids['plain']} is unreadable; left out" in err
    assert f"account {ids['orphan']} is not reachable by its username; left out" in err
    assert f"membership of {'G' * 16} in world {plains.id} left out" in err
    assert f"a membership of world {plains.id} is unreadable" in err
    assert f"an invite of world {plains.id} is unreadable" in err
    assert f"1 chat entry of world {secret.id} failed validation" in err
    assert "hunter2" not in err
    assert "hunter2" not in gzip.decompress(out.read_bytes()).decode()
    archive = read_archive(out)
    assert archive.users is not None
    assert {u.username for u in archive.users} == set(seeded.users)
    assert cli("restore", str(out), "--redis-url", target.url) == 0


def test_an_empty_server_gives_an_empty_archive_that_restores(
    valkey_server: Server, tmp_path: Path
) -> None:
    source, target = valkey_server(), valkey_server()
    out = tmp_path / "b.gz"
    assert cli("backup", "--redis-url", source.url, "--out", str(out)) == 0
    archive = read_archive(out)
    assert archive == Archive(
        worlds=(),
        users=(),
        members=(),
        chat=ChatLog.of([]),
        edits=(),
        models=(),
        created=archive.created,
        key_prefix="wg",
    )
    assert cli("restore", str(out), "--redis-url", target.url) == 0
    assert dbsize(target.url) == 0


def test_a_worlds_only_archive_of_version_1_still_restores(
    valkey_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The archive worldgen wrote before accounts and chat: it restores, and a forced restore
    leaves the target's accounts, members and chat alone (the archive says nothing of them)."""
    target = valkey_server()
    path = tmp_path / "old.gz"
    path.write_bytes(GOOD)
    archive = read_archive(path)
    assert (archive.users, archive.members, archive.chat) == (None, None, None)
    assert cli("restore", str(path), "--redis-url", target.url) == 0
    out = capsys.readouterr().out
    assert out.startswith("restored 1 world, 0 accounts, 0 memberships, 0 invites, 0 chat ")
    assert "the archive holds worlds only" in out
    assert [w.id for w in all_worlds(target.url)] == [_record()["id"]]

    seeded = seed_everything(target.url, caves_chat=2)
    before = snapshot(target.url)
    assert cli("restore", str(path), "--redis-url", target.url, "--force") == 0
    after = snapshot(target.url)
    assert after == before
    assert seeded.users["Alice"].id in str(after)


# ---- a target that is not empty -----------------------------------------------------------------


@pytest.mark.standalone_only("two servers: a backup's source and its restore target")
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
    assert "(1 replaced with other content, 1 kept, 0 sessions ended)" in capsys.readouterr().out
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


@pytest.mark.standalone_only("two servers: a backup's source and its restore target")
def test_restore_refuses_a_target_with_accounts_unless_forced(
    valkey_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, target = valkey_server(), valkey_server()
    seed_worlds(source.url)
    out = tmp_path / "b.gz"
    assert cli("backup", "--redis-url", source.url, "--out", str(out)) == 0
    run(target.url, lambda r: UserRepo(r, KEYS).create("someone", HASHER.hash(PASSWORD)))
    before = snapshot(target.url)
    capsys.readouterr()
    assert cli("restore", str(out), "--redis-url", target.url) == 2
    assert "already holds accounts" in capsys.readouterr().err
    assert snapshot(target.url) == before
    assert cli("restore", str(out), "--redis-url", target.url, "--force") == 0


@pytest.mark.standalone_only("two servers: a backup's source and its restore target")
def test_forced_restore_refuses_a_username_held_by_another_account(
    valkey_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, target = valkey_server(), valkey_server()
    seeded = seed_everything(source.url, caves_chat=2)
    out = tmp_path / "b.gz"
    assert cli("backup", "--redis-url", source.url, "--out", str(out)) == 0
    run(target.url, lambda r: UserRepo(r, KEYS).create("ALICE", HASHER.hash("other")))
    before = snapshot(target.url)
    capsys.readouterr()
    assert cli("restore", str(out), "--redis-url", target.url, "--force") == 2
    err = capsys.readouterr().err
    assert f"1 archived account(s) ({seeded.users['Alice'].id})" in err
    assert "nothing written" in err
    assert snapshot(target.url) == before


@pytest.mark.standalone_only("two servers: a backup's source and its restore target")
def test_forced_restore_replaces_archived_data_ends_sessions_and_is_idempotent(
    valkey_server: Server, tmp_path: Path
) -> None:
    """After a first restore, the target drifts (a new message, a new member, a changed
    password, a live session); a forced restore of the same archive puts every archived world
    and account back as archived, signs the replaced accounts out, and keeps the rest."""
    source, target = valkey_server(), valkey_server()
    seeded = seed_everything(source.url, caves_chat=5)
    archive = backup(source.url, tmp_path / "b.gz")
    run(target.url, lambda r: load(r, KEYS, archive, force=False))
    restored = snapshot(target.url)
    alice, plains = seeded.users["Alice"], seeded.worlds[0]

    async def drift(redis: Redis) -> str:
        users, members = UserRepo(redis, KEYS), MemberRepo(redis, KEYS)
        await users.set_password_hash(alice.id, HASHER.hash("changed"))
        sessions = SessionStore(redis, KEYS, Revocations(redis, KEYS), idle_s=600, max_s=600)
        await sessions.create(alice.id, alice.username)
        await sessions.create(alice.id, alice.username)
        newcomer = await users.create("newcomer", HASHER.hash(PASSWORD))
        await members.add(plains.id, newcomer.id, "viewer")
        who = Author(id=newcomer.id, name="newcomer", guest=False)
        await ChatStore(redis, KEYS).append(plains.id, ChatRecord(id="late", user=who, text="!"))
        await redis.delete(KEYS.chat(seeded.worlds[2].id))
        local = await WorldRepo(redis, KEYS).create(
            name="Local", tileset="terrain", kind="tiled", seed=1
        )
        return newcomer.id + " " + local.id

    newcomer_id, local_id = run(target.url, drift).split()
    first = run(target.url, lambda r: load(r, KEYS, archive, force=True))
    assert (first.signed_out, first.kept, first.replaced) == (2, 1, 0)
    after = snapshot(target.url)
    kept = {KEYS.world(local_id), KEYS.user(newcomer_id), KEYS.username("newcomer")}
    assert set(after) == set(restored) | kept  # the newcomer's "my worlds" entry went too
    index = KEYS.worlds_index()
    assert {k: v for k, v in after.items() if k not in kept and k != index} == {
        k: v for k, v in restored.items() if k != index
    }
    assert not any(":session" in k for k in all_keys(target.url))  # alice's sessions ended

    async def alice_may_log_in(redis: Redis) -> bool:
        record = await UserRepo(redis, KEYS).get(alice.id)
        return record is not None and HASHER.verify(PASSWORD, record.password_hash)

    assert run(target.url, alice_may_log_in)  # the archived password is back
    second = run(target.url, lambda r: load(r, KEYS, archive, force=True))
    assert second.signed_out == 0
    assert snapshot(target.url) == after


# ---- chat bounds ---------------------------------------------------------------------------------


def _chat_log(world: str, n: int, *, start_ms: int = 1_700_000_000_000) -> ChatLog:
    who = Author(id="guest", name="Guest")
    return ChatLog.of(
        ChatEntry(
            world=world,
            id=f"{start_ms + i // 3}-{i % 3}",
            entry=ChatRecord(id=f"c{i}", user=who, text=str(i)),
        )
        for i in range(n)
    )


WORLD = WorldRecord.model_validate(
    {"id": "abcdefgh12", "name": "A", "tileset": "terrain", "kind": "tiled", "seed": 1}
    | {"created": 1.5}
)


def test_restore_keeps_the_newest_entries_within_the_stream_bound(
    valkey_server: Server,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = valkey_server()
    path = tmp_path / "b.gz"
    write_archive(
        path, Archive(worlds=(WORLD,), users=(), members=(), chat=_chat_log(WORLD.id, 250))
    )
    assert cli("restore", str(path), "--redis-url", target.url) == 0  # default bound: 10 000
    assert "warning" not in capsys.readouterr().err

    async def ids(redis: Redis) -> list[str]:
        return [_s(i) for i, _ in await redis.xrange(KEYS.chat(WORLD.id)) or ()]

    everything = run(target.url, ids)
    assert len(everything) == 250
    assert everything[:4] == [f"1700000000000-{i}" for i in range(3)] + ["1700000000001-0"]
    other = valkey_server()
    monkeypatch.setenv("WORLDGEN_REALTIME_CHAT_MAXLEN", "100")
    assert cli("restore", str(path), "--redis-url", other.url) == 0
    captured = capsys.readouterr()
    assert "150 oldest chat entries left out: more than 100 in a world" in captured.err
    assert "100 chat entries" in captured.out
    assert run(other.url, ids) == everything[150:]  # the newest, with the same ids

    report = run(
        other.url,
        lambda r: load(r, KEYS, read_archive(path), force=True, chat_maxlen=250),
    )
    assert (report.chat, report.chat_dropped) == (250, 0)
    assert run(other.url, ids) == everything


def test_restored_streams_continue_after_their_archived_ids(
    valkey_server: Server, tmp_path: Path
) -> None:
    """A stream restored with ids from the future still takes new messages, after them."""
    target = valkey_server()
    future = 9_999_999_999_999
    log = _chat_log(WORLD.id, 3, start_ms=future)
    run(
        target.url,
        lambda r: load(r, KEYS, Archive(worlds=(WORLD,), chat=log), force=False),
    )

    async def append(redis: Redis) -> str:
        who = Author(id="guest", name="Guest")
        done = await ChatStore(redis, KEYS).append(
            WORLD.id, ChatRecord(id="new", user=who, text="later")
        )
        return done.stream_id

    assert run(target.url, append) == f"{future}-3"


@pytest.mark.standalone_only("two servers: a backup's source and its restore target")
def test_a_world_at_the_member_bound_round_trips(valkey_server: Server, tmp_path: Path) -> None:
    source, target = valkey_server(), valkey_server()
    seed_worlds(source.url)
    world = all_worlds(source.url)[-1]
    hashed = HASHER.hash(PASSWORD)

    async def fill(redis: Redis) -> None:
        users, members = UserRepo(redis, KEYS), MemberRepo(redis, KEYS)

        async def one(i: int) -> None:
            user = await users.create(f"member-{i:04d}", hashed)
            await members.add(world.id, user.id, "owner" if i == 0 else "viewer")

        for start in range(0, MAX_MEMBERS, 50):
            await asyncio.gather(*(one(i) for i in range(start, start + 50)))

    run(source.url, fill)
    archive = backup(source.url, tmp_path / "b.gz")
    assert archive.members is not None
    assert len(archive.members[0].members) == MAX_MEMBERS
    run(target.url, lambda r: load(r, KEYS, archive, force=False))
    assert snapshot(target.url) == snapshot(source.url)


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

UID = "A" * 16
UID2 = "B" * 16
HASH = "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g"


def _user(**changes: Any) -> dict[str, Any]:
    record = {"id": UID, "username": "Alice", "created": 2.0, "password_hash": HASH} | changes
    return {"section": "users", "record": record}


def _members(**changes: Any) -> dict[str, Any]:
    record = {
        "world": "abcdefgh12",
        "members": [{"user_id": UID, "role": "owner", "joined": 3.0}],
        "invites": [
            {
                "id": "invite-id-12",
                "role": "viewer",
                "created": 3.0,
                "expires": 4_000_000_000.0,
                "created_by": UID,
                "max_uses": 0,
                "token_digest": "0" * 64,
                "uses": 2,
            }
        ],
    } | changes
    return {"section": "members", "record": record}


def _chat(stream_id: str = "5-0", **changes: Any) -> dict[str, Any]:
    entry = {"kind": "chat", "id": "m1", "user": {"id": UID, "name": "Alice"}, "text": "hi"}
    record = {"world": "abcdefgh12", "id": stream_id, "entry": entry} | changes
    return {"section": "chat", "record": record}


def _full(*lines: dict[str, Any], head: dict[str, Any] | None = None) -> bytes:
    """An archive of ``lines`` with a manifest that counts them (in order of appearance)."""
    sections: dict[str, int] = {}
    for line in lines:
        sections[line["section"]] = sections.get(line["section"], 0) + 1
    return _gz(head or _head(sections=sections), *lines)


GOOD_FULL_LINES = (_world(), _user(), _members(), _chat("5-0"), _chat("5-1"), _chat("6-0"))
GOOD_FULL = _full(*GOOD_FULL_LINES)


def _ping(**changes: Any) -> dict[str, Any]:
    entry = {"kind": "ping", "id": "p1", "user": {"id": "g", "name": "G"}, "x": 0, "y": 0}
    return _chat("7-0", entry=entry | changes)


BAD_FILES: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "not gzip"),
    "plain text": (b"hello, world\n", "not gzip"),
    "plain json": (json.dumps(_head()).encode(), "not gzip"),
    "truncated": (GOOD[: len(GOOD) // 2], "corrupt or truncated"),
    "flipped byte": (GOOD[:20] + bytes([GOOD[20] ^ 0xFF]) + GOOD[21:], "corrupt"),
    "truncated full": (GOOD_FULL[:-9], "corrupt or truncated"),
    "empty gzip": (gzip.compress(b""), "is empty"),
    "gzip of garbage": (gzip.compress(b"\x00\xff garbage"), "not valid JSON"),
    "other format": (_gz({"format": "redis-dump", "version": 1}), "not a worldgen backup"),
    "manifest not an object": (_gz([FORMAT, 1]), "not a worldgen backup"),
    "newer version": (_gz(_head(version=2)), "version 2"),
    "version zero": (_gz(_head(version=0)), "invalid manifest"),
    "no sections": (_gz({"format": FORMAT, "version": 1, "created": "x"}), "invalid manifest"),
    "unknown section": (_gz(_head(sections={"worlds": 0, "pictures": 1})), "newer worldgen"),
    "sections out of order": (_gz(_head(sections={"chat": 0, "worlds": 0})), "in the order"),
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
    # accounts
    "plaintext password": (_full(_user(password_hash="hunter2")), "not an argon2 hash"),
    "bcrypt hash": (_full(_user(password_hash="$2b$12$" + "a" * 53)), "not an argon2 hash"),
    "empty hash": (_full(_user(password_hash="")), "password_hash"),
    "bad username": (_full(_user(username="a b")), "username"),
    "bad user id": (_full(_user(id="short")), "users record: id"),
    "duplicate user": (_full(_user(), _user(username="Bob")), f"user {UID} appears twice"),
    "same name, other case": (
        _full(_user(), _user(id=UID2, username="ALICE")),
        "username of another user",
    ),
    # members and invites
    "members of an unknown world": (_full(_user(), _members()), "not in the archive"),
    "member without an account": (
        _full(_world(), _members()),
        f"member {UID} of world abcdefgh12 has no account",
    ),
    "members of a world twice": (
        _full(_world(), _user(), _members(), _members(invites=[])),
        "appear twice",
    ),
    "member twice": (
        _full(_world(), _user(), _members(members=[_members()["record"]["members"][0]] * 2)),
        "listed twice",
    ),
    "unknown role": (
        _full(
            _world(),
            _user(),
            _members(members=[{"user_id": UID, "role": "admin", "joined": 1.0}]),
        ),
        "role",
    ),
    "invite without digest": (
        _full(_world(), _user(), _members(invites=[{"id": "invite-id-12", "role": "viewer"}])),
        "invites",
    ),
    "members with an unknown field": (
        _full(_world(), _user(), _members(extra=1)),
        "extra",
    ),
    # chat
    "chat of an unknown world": (_full(_chat()), "not in the archive"),
    "chat out of order": (_full(_world(), _chat("6-0"), _chat("5-9")), "does not come after"),
    "chat id twice": (_full(_world(), _chat("6-0"), _chat("6-0")), "does not come after"),
    "chat id 0-0": (_full(_world(), _chat("0-0")), "0-0"),
    "chat id not a stream id": (_full(_world(), _chat("12")), "not a stream id"),
    "chat id too large": (_full(_world(), _chat("18446744073709551616-0")), "out of range"),
    "chat split in two runs": (
        _full(
            _world(),
            _world(id="abcdefgh99", created=2.0),
            _chat("5-0"),
            _chat("5-0", world="abcdefgh99"),
            _chat("6-0"),
        ),
        "split in two runs",
    ),
    "chat of an unknown kind": (_full(_world(), _chat(entry={"kind": "vote"})), "entry"),
    "chat text too long": (
        _full(_world(), _chat(entry=_chat()["record"]["entry"] | {"text": "x" * 2001})),
        "text",
    ),
    "ping out of range": (_full(_world(), _ping(x=2**31 + 1)), "entry.ping.x"),
    "chat with an unknown field": (_full(_world(), _chat(extra=1)), "extra"),
}


@pytest.mark.standalone_only("two servers: a backup's source and its restore target")
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
    assert "hunter2" not in err
    assert dbsize(target.url) == 0


@pytest.mark.standalone_only("two servers: a backup's source and its restore target")
def test_the_good_files_of_the_bad_file_table_are_good(
    valkey_server: Server, tmp_path: Path
) -> None:
    path = tmp_path / "good.gz"
    path.write_bytes(GOOD)
    assert read_archive(path) == Archive(
        worlds=(WorldRecord.model_validate(_record()),),
        created="2026-01-01T00:00:00Z",
    )
    path.write_bytes(GOOD_FULL)
    archive = read_archive(path)
    assert archive.users is not None
    assert [u.id for u in archive.users] == [UID]
    assert archive.members is not None
    assert archive.members[0].invites[0].uses == 2
    assert archive.chat is not None
    assert [e.id for e in archive.chat] == ["5-0", "5-1", "6-0"]
    assert list(archive.chat) == list(archive.chat)  # re-iterable
    path.write_bytes(GOOD)  # the archive read its bytes once: a changed file changes nothing
    assert len(list(archive.chat)) == 3

    target = valkey_server()
    report = run(target.url, lambda r: load(r, KEYS, archive, force=False))
    assert (report.users, report.memberships, report.invites, report.chat) == (1, 1, 1, 3)


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


def test_a_backup_that_would_not_restore_is_never_written(tmp_path: Path) -> None:
    """The writer reads its output back with the reader's checks before renaming it."""
    path = tmp_path / "b.gz"
    path.write_bytes(b"previous backup")
    plain = UserRecord(id=UID, username="Alice", created=1.0, password_hash="hunter2")
    with pytest.raises(BackupError, match="failed its own check") as raised:
        write_archive(path, Archive(worlds=(), users=(plain,)))
    assert "hunter2" not in str(raised.value)
    assert path.read_bytes() == b"previous backup"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.gz"]
    with pytest.raises(ValueError, match="does not come after"):
        ChatLog.of(reversed(list(_chat_log(WORLD.id, 2))))


def test_a_bad_chat_bound_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "good.gz"
    path.write_bytes(GOOD)
    monkeypatch.setenv("WORLDGEN_REALTIME_CHAT_MAXLEN", "5")
    assert cli("restore", str(path), "--redis-url", "redis://127.0.0.1:1/0") == 2
    assert "WORLDGEN_REALTIME_" in capsys.readouterr().err


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
    seed_everything(source.url, caves_chat=1)  # under "wg"
    out = tmp_path / "b.gz"
    assert cli("backup", "--redis-url", source.url, "--key-prefix", "other", "--out", str(out)) == 0
    archive = read_archive(out)
    assert (archive.worlds, archive.users, archive.members) == ((), (), ())
    assert archive.key_prefix == "other"
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


# ---- the promise, through the app: same worlds, tiles, chat, logins, members --------------------


@pytest.mark.standalone_only("two servers: a backup's source and its restore target")
def test_restored_server_serves_the_same_worlds_tiles_chat_and_logins(
    valkey_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the real app: worlds, chat and members made on one server, backed up and
    restored into an empty one, give the same API objects, byte-identical tiles (recomputed:
    tiles are not archived), the same chat history, and the same password signs in; the old
    session cookie does not (sessions are never archived)."""
    import httpx

    from tests.accounts import PASSWORD as PASSWORD_API
    from tests.accounts import sign_in
    from tests.harness import build_app
    from worldgen.settings import Settings

    monkeypatch.setenv("WORLDGEN_CACHE_DIR", str(tmp_path / "cache"))
    source, target = valkey_server(), valkey_server()
    tiles = ["0/0/0", "0/-3/2", "2/41/-17"]

    async def through_app(url: str, create: bool, cookies: httpx.Cookies) -> dict[str, Any]:
        settings = Settings(redis_url=url, data_dir=tmp_path / "unused", log_level="warning")
        app = build_app(settings)
        seen: dict[str, Any] = {}
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t", cookies=cookies
            ) as c,
        ):
            if create:
                await sign_in(c, "Round-Tripper")  # creating a world needs an account
                for name, visibility in (("Open", "public"), ("Hidden", "private")):
                    body = {"name": name, "tileset": "terrain", "seed": 4242}
                    made = await c.post("/api/worlds", json=body | {"visibility": visibility})
                    assert made.status_code == 201, made.text
                me = (await c.get("/api/auth/me")).json()
                redis = connect(url)
                try:
                    store = ChatStore(redis, KEYS)
                    who = Author(id=me["id"], name=me["username"], guest=False)
                    for world in (await c.get("/api/worlds")).json()["worlds"]:
                        for i in range(3):
                            text = f"{world['name']} {i} ✓"
                            await store.append(
                                world["id"], ChatRecord(id=f"m{i}", user=who, text=text)
                            )
                        await store.append(world["id"], PingRecord(id="p", user=who, x=1, y=-1))
                finally:
                    await redis.aclose()
                cookies.update(c.cookies)
            else:
                assert (await c.get("/api/auth/me")).status_code == 401  # the old cookie
                login = await c.post(
                    "/api/auth/login", json={"username": "round-tripper", "password": PASSWORD_API}
                )
                assert login.status_code == 200, login.text
            listed = (await c.get("/api/worlds")).json()["worlds"]
            assert len(listed) == 2
            for world in sorted(listed, key=lambda w: w["name"]):
                wid = world["id"]
                seen[world["name"]] = (await c.get(f"/api/worlds/{wid}")).json()
                seen[world["name"] + " chat"] = (await c.get(f"/api/worlds/{wid}/chat")).json()
                seen[world["name"] + " members"] = (
                    await c.get(f"/api/worlds/{wid}/members")
                ).json()
                for zxy in tiles:
                    response = await c.get(f"/tiles/{wid}/{zxy}.png")
                    assert response.status_code == 200
                    seen[f"{wid} {zxy}"] = (response.content, response.headers["etag"])
        return seen

    cookies = httpx.Cookies()
    seen_a = asyncio.run(through_app(source.url, True, cookies))
    assert len(seen_a["Hidden chat"]["messages"]) == 4
    assert seen_a["Hidden members"]["members"][0]["role"] == "owner"
    out = tmp_path / "b.gz"
    assert cli("backup", "--redis-url", source.url, "--out", str(out)) == 0
    assert cli("restore", str(out), "--redis-url", target.url) == 0
    assert not any(":tile:" in k or ":session" in k for k in all_keys(target.url))
    seen_b = asyncio.run(through_app(target.url, False, cookies))
    assert seen_b == seen_a
