"""The model repository on a real Valkey: one cluster slot per model and per user, the quota,
sharing, attachments that block deletion, the library claim, and a backup round trip."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from worldgen.store.backup import dump, load, read_archive, write_archive
from worldgen.store.backup.records import MODEL_PART_BYTES
from worldgen.store.keys import Keys
from worldgen.store.models import (
    OWNER_OPTION,
    ModelRecord,
    ModelRepo,
    QuotaExceeded,
    owned_options,
    shown_options,
)

pytestmark = pytest.mark.anyio

OWNER = "o" * 16
DIGEST = "a" * 64


@pytest.fixture
async def redis(shared_valkey: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(shared_valkey)
    yield client
    await client.aclose()


def _keys() -> Keys:
    return Keys(f"m{uuid.uuid4().hex[:10]}")


def _record(digest: str = DIGEST, size: int = 10, **fields: object) -> ModelRecord:
    values: dict[str, object] = {
        "id": digest, "name": "m", "kind": "sample", "options": {"N": 3}, "owner": OWNER,
        "created": time.time(), "size": size, "patterns": 5,
    }  # fmt: skip
    return ModelRecord.model_validate(values | fields)


def test_a_models_keys_share_one_slot_and_a_users_keys_theirs() -> None:
    keys = Keys("wg")
    parts = ("meta", "data", "preview", "library", "worlds")
    assert len({key_slot(keys.model(DIGEST, p).encode()) for p in parts}) == 1
    assert key_slot(keys.user_models(OWNER).encode()) == key_slot(keys.model_bytes(OWNER).encode())
    with pytest.raises(ValueError, match="invalid model digest"):
        keys.model("{x}", "meta")


async def test_quota_attach_delete_and_library(redis: Redis) -> None:
    repo = ModelRepo(redis, _keys(), quota_bytes=25)
    _first, created = await repo.create(_record(size=10), b"x" * 10)
    assert created
    assert await repo.used_bytes(OWNER) == 10
    assert (await repo.create(_record(size=10), b"x" * 10))[1] is False  # same id: no charge
    await repo.create(_record("b" * 64, size=15), b"y" * 15)  # exactly the quota
    with pytest.raises(QuotaExceeded) as refused:
        await repo.create(_record("c" * 64, size=1), b"z")
    assert (refused.value.used, refused.value.quota) == (25, 25)
    assert await repo.get("c" * 64) is None
    assert await repo.used_bytes(OWNER) == 25

    assert await repo.attach(DIGEST, "world-0001")
    assert not await repo.attach("d" * 64, "world-0001")
    assert await repo.delete(DIGEST) == 1  # used by one world: nothing deleted
    assert await repo.claim_library(DIGEST, "w.job1") == "claimed"
    assert await repo.claim_library(DIGEST, "w.job2") == "w.job1"
    assert await repo.claim_library(DIGEST, "w.job2", stale="w.job1") == "claimed"
    files = {"patches/" + "f" * 24 + ".npz": b"npz", "summaries/" + "e" * 24 + ".npz": b"s"}
    assert await repo.library_ready(DIGEST, files, "w.job2")
    assert await repo.claim_library(DIGEST, "w.job3") == "ready"
    assert await repo.library(DIGEST) == files
    record = await repo.get(DIGEST)
    assert record is not None
    assert (record.library, record.job) == ("patches/" + "f" * 24 + ".npz", "")
    await repo.detach(DIGEST, "world-0001")
    assert await repo.delete(DIGEST) == 0
    assert await repo.get(DIGEST) is None
    assert await repo.used_bytes(OWNER) == 15
    assert await repo.delete(DIGEST) is None


def test_owned_options_name_the_owner_and_are_hidden_when_shown() -> None:
    options: dict[str, int | bool] = {"N": 3, "periodic": True}
    alice = owned_options(options, "alice")
    assert alice == owned_options(options, "alice")  # the same upload is the same model
    assert alice[OWNER_OPTION] != owned_options(options, "bob")[OWNER_OPTION]
    number = alice[OWNER_OPTION]
    assert isinstance(number, int)
    assert 0 <= number < 2**53  # exact in JSON and JavaScript
    assert shown_options(alice) == options


async def test_sharing_and_lists(redis: Redis) -> None:
    repo = ModelRepo(redis, _keys())
    await repo.create(_record(created=1.0), b"x")
    await repo.create(_record("b" * 64, created=2.0), b"y")
    assert [m.id for m in await repo.mine(OWNER)] == ["b" * 64, DIGEST]
    assert await repo.public() == []
    shared = await repo.update(DIGEST, shared=True, name="shared one")
    assert shared is not None
    assert shared.shared
    assert shared.name == "shared one"
    assert [m.id for m in await repo.public()] == [DIGEST]
    await repo.update(DIGEST, shared=False)
    assert await repo.public() == []


async def test_backup_round_trip_keeps_models(redis: Redis, tmp_path: Path) -> None:
    source, target = _keys(), _keys()
    repo = ModelRepo(redis, source)
    big = bytes(range(256)) * (MODEL_PART_BYTES // 128) + b"end"  # three parts
    await repo.create(_record(size=len(big), shared=True), big)
    await repo.create(_record("b" * 64, size=3), b"abc")
    await repo.attach(DIGEST, "world-0001")
    await repo.library_ready(DIGEST, {"patches/" + "f" * 24 + ".npz": b"npz"}, "")
    report = await dump(redis, source)
    assert report.archive.models is not None
    assert len(report.archive.models) == 3 + 1
    path = tmp_path / "backup.wgb"
    write_archive(path, report.archive)
    archive = read_archive(path)
    await load(redis, target, archive, force=False)
    restored = ModelRepo(redis, target)
    assert await restored.data(DIGEST) == big
    assert await restored.data("b" * 64) == b"abc"
    record = await restored.get(DIGEST)
    assert record is not None
    assert record.shared
    assert record.library == ""
    assert await restored.world_ids(DIGEST) == ["world-0001"]
    assert await restored.used_bytes(OWNER) == len(big) + 3
    assert [m.id for m in await restored.public()] == [DIGEST]
    assert await restored.delete(DIGEST) == 1
