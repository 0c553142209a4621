"""Cluster mode is chosen by the URL (``redis+cluster://``, one or several seed nodes); the job
queue must stay standalone."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError
from redis.asyncio.cluster import RedisCluster

from tests.cluster import ValkeyCluster
from tests.harness import ClusterHandle, free_port
from worldgen.settings import Settings
from worldgen.store.client import connect

BROKER = "redis://queue:6379/0"


@pytest.mark.parametrize(
    ("url", "cluster"),
    [
        ("redis://valkey:6379/0", False),
        ("redis+cluster://valkey-1:6379", True),
        ("rediss+cluster://user:pw@valkey-1:6380", True),
    ],
)
def test_the_url_scheme_says_whether_redis_is_a_cluster(url: str, cluster: bool) -> None:
    settings = Settings(redis_url=url, broker_url=BROKER)
    assert settings.redis_cluster is cluster
    assert isinstance(connect(url), RedisCluster) is cluster  # lazy: no I/O


def test_a_cluster_needs_a_standalone_broker_and_says_so() -> None:
    with pytest.raises(ValidationError, match="WORLDGEN_BROKER_URL"):
        Settings(redis_url="redis+cluster://valkey-1:6379")
    with pytest.raises(ValidationError, match="cannot run on a Redis Cluster"):
        Settings(redis_url="redis+cluster://valkey-1:6379", broker_url="redis+cluster://v:1")
    assert Settings(redis_url=None).redis_cluster is False  # the embedded Valkey


def test_worldgen_serve_refuses_a_cluster_without_a_broker_at_start_up(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from worldgen.cli import main

    monkeypatch.setenv("REDIS_URL", "redis+cluster://127.0.0.1:1")
    monkeypatch.delenv("WORLDGEN_BROKER_URL", raising=False)
    assert main(["serve", "--port", "1"]) == 2
    assert "WORLDGEN_BROKER_URL" in capsys.readouterr().err


def test_several_seed_nodes_let_a_client_start_while_one_is_down(
    valkey_cluster: ValkeyCluster,
) -> None:
    live = ClusterHandle(valkey_cluster).port
    url = f"redis+cluster://127.0.0.1:{free_port()},127.0.0.1:{live}/0"  # the first is dead
    assert Settings(redis_url=url, broker_url=BROKER).redis_cluster

    async def ping() -> bool:
        client = connect(url)
        try:
            return bool(await client.ping())
        finally:
            await client.aclose()

    assert asyncio.run(ping())
    with pytest.raises(ValueError, match="host:port"):
        connect("redis+cluster://127.0.0.1:1,nonsense")
