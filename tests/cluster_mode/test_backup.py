"""``worldgen backup`` and ``restore`` on a Redis Cluster: a cluster's archive restores into a
standalone server and back into the cluster, with the same worlds, accounts and chat."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.cluster import ValkeyCluster
from tests.harness import ClusterHandle, ValkeyHandle
from worldgen.store.chat import Author, ChatRecord, ChatStore
from worldgen.store.client import connect
from worldgen.store.keys import Keys
from worldgen.store.users import UserRepo
from worldgen.store.worlds import WorldRepo

WORLDGEN = str(Path(sys.executable).parent / "worldgen")
HASH = "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"

Content = tuple[list[str], list[int], bool]


async def _seed(url: str) -> None:
    redis = connect(url)
    try:
        user = await UserRepo(redis, Keys()).create("ada_l", HASH)
        for i in range(6):  # spread over the shards
            world = await WorldRepo(redis, Keys()).create(
                name=f"World {i}", tileset="terrain", kind="tiled", seed=i
            )
            for n in range(i):
                record = ChatRecord(id=f"m{n}", user=Author(id=user.id, name="ada_l"), text="hi")
                await ChatStore(redis, Keys()).append(world.id, record)
    finally:
        await redis.aclose()


async def _content(url: str) -> Content:
    redis = connect(url)
    try:
        worlds = await WorldRepo(redis, Keys()).list()
        chat = [await ChatStore(redis, Keys()).length(w.id) for w in worlds]
        account = await UserRepo(redis, Keys()).by_username("ADA_L")
        return [w.id for w in worlds], chat, account is not None
    finally:
        await redis.aclose()


def _cli(*args: str) -> None:
    done = subprocess.run([WORLDGEN, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_a_cluster_backup_restores_into_a_standalone_server_and_back(
    valkey_cluster: ValkeyCluster, valkey_server: Callable[[], ValkeyHandle], tmp_path: Path
) -> None:
    cluster_url = ClusterHandle(valkey_cluster).url  # emptied
    asyncio.run(_seed(cluster_url))
    before = asyncio.run(_content(cluster_url))
    assert len(before[0]) == 6
    assert sum(before[1]) == 15
    archive, again = tmp_path / "cluster.jsonl.gz", tmp_path / "standalone.jsonl.gz"
    _cli("backup", "--redis-url", cluster_url, "--out", str(archive))

    standalone = valkey_server()
    _cli("restore", "--redis-url", standalone.url, str(archive))
    assert asyncio.run(_content(standalone.url)) == before

    _cli("backup", "--redis-url", standalone.url, "--out", str(again))
    cluster_url = ClusterHandle(valkey_cluster).url  # emptied again
    _cli("restore", "--redis-url", cluster_url, str(again))
    assert asyncio.run(_content(cluster_url)) == before
