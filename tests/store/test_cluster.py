# mypy: disable-error-code="no-untyped-call"
"""A real 3-master Valkey Cluster (tests/cluster.py): worldgen's world keys share one slot, the
cluster refuses commands across slots, and a killed master's replica takes over with the data a
``WAIT`` confirmed (the groundwork of the scale-out issue)."""

from __future__ import annotations

import inspect
import time

import pytest
import redis
from redis.cluster import ClusterNode as ClusterNodeAddress
from redis.cluster import RedisCluster
from redis.crc import key_slot

from tests.cluster import ValkeyCluster
from worldgen.store.keys import Keys


@pytest.fixture
def cluster(valkey_cluster: ValkeyCluster) -> ValkeyCluster:
    """The session's shared cluster (tests/conftest.py), healthy."""
    valkey_cluster.wait_healthy(30)
    return valkey_cluster


def _world_keys(keys: Keys, world_id: str) -> list[str]:
    """Every key name of :class:`Keys` that belongs to one world; fails when a new world-scoped
    method is not listed here (so every new key is checked)."""
    user = "u" * 16
    calls = {
        "world": (),
        "tile": ("v1", 0, 1, 2),
        "tile_lease": ("v1", 0, 1, 2),
        "members": (),
        "invites": (),
        "invite_uses": (),
        "chat": (),
        "chat_dedup": (user, "client-1"),
        "presence": (),
        "presence_users": (),
        "world_channel": (),
        "edits": ("log",),
        "edit_stack": (user, "undo"),
        "job": ("t" * 16,),
    }
    scoped = {
        name
        for name, method in inspect.getmembers(keys, inspect.ismethod)
        if not name.startswith("_")
        and name != "pattern_world"  # a SCAN pattern over a world's keys, not a key
        and next(iter(inspect.signature(method).parameters), None) == "world_id"
    }
    assert scoped <= set(calls), f"list the new world keys here: {sorted(scoped - set(calls))}"
    return [getattr(keys, name)(world_id, *calls[name]) for name in sorted(scoped)]


def _client(cluster: ValkeyCluster) -> RedisCluster:
    """A cluster client seeded with every live node."""
    live = [
        ClusterNodeAddress("127.0.0.1", node.port)
        for node in cluster.nodes
        if node.process.poll() is None
    ]
    return RedisCluster(startup_nodes=live, decode_responses=True, socket_timeout=5)


def test_every_key_of_a_world_lives_in_one_slot() -> None:
    keys = Keys("wg")
    names = _world_keys(keys, "world-0001")
    assert len(names) >= 10
    assert len({key_slot(n.encode()) for n in names}) == 1
    other = {key_slot(n.encode()) for n in _world_keys(keys, "world-0002")}
    assert other != {key_slot(names[0].encode())}


def test_the_cluster_serves_every_slot_and_refuses_cross_slot_commands(
    cluster: ValkeyCluster,
) -> None:
    info = cluster.nodes[0].client().execute_command("CLUSTER", "INFO")
    assert "cluster_slots_assigned:16384" in info
    assert "cluster_known_nodes:6" in info
    client = _client(cluster)
    try:
        keys = Keys("wg")
        world = _world_keys(keys, "world-alpha")
        with client.pipeline(transaction=True) as tx:  # one slot: a transaction is allowed
            for name in world[:4]:
                tx.set(name, "v")
            assert all(tx.execute())
        plain = cluster.nodes[0].client()
        crossing = [keys.world("world-alpha"), keys.world("world-beta")]
        assert key_slot(crossing[0].encode()) != key_slot(crossing[1].encode())
        with pytest.raises(redis.ResponseError, match=r"CROSSSLOT|MOVED|same slot"):
            plain.mset(dict.fromkeys(crossing, "v"))
    finally:
        client.close()


def test_a_killed_master_is_replaced_by_its_replica_with_waited_writes(
    cluster: ValkeyCluster,
) -> None:
    keys = Keys("wg")
    name = keys.world("world-failover")
    slot = key_slot(name.encode())
    master = cluster.master_of_slot(slot)
    writer = master.client()
    writer.hset(name, mapping={"name": "kept"})
    assert writer.execute_command("WAIT", 1, 5000) >= 1  # a replica has it
    master.kill()
    try:
        _promoted_and_kept(cluster, name, slot, master.port)
    finally:
        cluster.restart(master)  # it rejoins as a replica: the shared cluster is whole again


def _promoted_and_kept(cluster: ValkeyCluster, name: str, slot: int, dead: int) -> None:
    deadline = time.monotonic() + 30
    promoted = None
    while time.monotonic() < deadline:
        try:
            promoted = cluster.master_of_slot(slot)
            if promoted.port != dead:
                break
        except (redis.RedisError, LookupError):
            pass
        time.sleep(0.2)
    assert promoted is not None
    assert promoted.port != dead
    cluster.wait_healthy(30)
    client = _client(cluster)
    try:
        assert client.hget(name, "name") == "kept"
    finally:
        client.close()
