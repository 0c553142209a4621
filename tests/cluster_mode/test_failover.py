"""A master of a real Valkey Cluster is killed (``kill -9``) under chat load: its replica takes
over, the app instances recover without a restart, and no acknowledged message is lost.

The cluster is the session's shared one; the killed master is started again at the end and
rejoins as a replica, so the cluster is whole for the tests that follow. Chat on a cluster is
acknowledged only after ``WAIT`` says a replica holds the message (``store/chat.py``), which is
what makes the last assertion hold: whatever a client was told is stored survives the loss of
the master that stored it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterator

import pytest
import redis
from redis.crc import key_slot

from tests.cluster import ValkeyCluster
from tests.conftest import LiveServers
from tests.harness import ClusterHandle
from tests.realtime.conftest import RATE_LIMITS, Client, Json, new_world, run
from tests.realtime.test_recovery import SLOW_POLL, answers, stream_ids
from worldgen.store.chat import LONELY_RECHECK_S
from worldgen.store.keys import Keys

FAILOVER_TIMEOUT_S = 30.0


@pytest.fixture
def own_cluster(valkey_cluster: ValkeyCluster) -> Iterator[ValkeyCluster]:
    """The session's shared cluster; whatever node a test killed is started again after it
    (it rejoins as a replica), so the cluster is whole for the tests that follow."""
    yield valkey_cluster
    for node in valkey_cluster.nodes:
        if node.process.poll() is not None:
            valkey_cluster.restart(node)


def delivered(msg_id: str) -> Callable[[Json], bool]:
    """Matches the chat frame of one message."""
    return lambda f: f["type"] == "chat" and f.get("id") == msg_id


def _wait_promoted(cluster: ValkeyCluster, slot: int, dead_port: int) -> float:
    """Seconds until a live node serves ``slot`` (its replica, promoted)."""
    started = time.monotonic()
    while time.monotonic() - started < FAILOVER_TIMEOUT_S:
        try:
            if cluster.master_of_slot(slot).port != dead_port:
                return time.monotonic() - started
        except (redis.RedisError, LookupError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"no replica took over slot {slot} in {FAILOVER_TIMEOUT_S} s")


def test_kill_9_of_a_master_under_chat_load_loses_no_acknowledged_message(
    own_cluster: ValkeyCluster, live_servers: LiveServers
) -> None:
    url = ClusterHandle(own_cluster).url
    a, b = live_servers(
        2, redis_url=url, realtime=SLOW_POLL, key_prefix="wg", rate_limits=RATE_LIMITS
    )

    async def main() -> None:
        wid = await new_world(url)
        slot = key_slot(Keys().chat(wid).encode())
        master = own_cluster.master_of_slot(slot)
        receivers = [await Client.open(a.ws(wid)), await Client.open(b.ws(wid))]
        senders = [await Client.open(s.ws(wid)) for s in (a, b, a, b)]
        acked: dict[str, str] = {}
        received: list[list[tuple[str, str]]] = [[], []]
        stop = asyncio.Event()

        async def send_loop(n: int, client: Client) -> None:
            i = 0
            while not stop.is_set():
                msg_id = f"s{n}-{i}"
                while True:  # retry the same id until it is acknowledged
                    await client.chat(f"load {n}/{i}", msg_id)
                    frame = await client.until(answers(msg_id), timeout=30)
                    if frame["type"] == "ack":
                        acked[msg_id] = frame["stream_id"]
                        break
                    assert frame["code"] == "unavailable", frame
                    await asyncio.sleep(0.05 + random.random() * 0.1)
                i += 1
                await asyncio.sleep(0.02)

        async def receive_loop(k: int, client: Client) -> None:
            while True:
                frame = await client.recv(timeout=120)
                if frame["type"] == "chat":
                    received[k].append((frame["id"], frame["stream_id"]))

        tasks = [asyncio.create_task(send_loop(n, c)) for n, c in enumerate(senders)]
        readers = [asyncio.create_task(receive_loop(k, c)) for k, c in enumerate(receivers)]
        await asyncio.sleep(1.0)
        before_kill = len(acked)
        master.kill()
        await asyncio.to_thread(_wait_promoted, own_cluster, slot, master.port)
        at_promotion = len(acked)
        deadline = time.monotonic() + FAILOVER_TIMEOUT_S
        while len(acked) < at_promotion + 20 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.gather(*tasks)

        # Every acknowledged message is on the promoted replica, once, under the id its ack
        # named; the instances recovered by themselves (more acks after the promotion).
        live = next(n.port for n in own_cluster.nodes if n.process.poll() is None)
        stored = await stream_ids(
            f"redis+cluster://127.0.0.1:{live}/0", wid
        )  # the seed may be dead
        assert dict(stored) == acked
        assert len(stored) == len(acked)
        assert before_kill > 10
        assert len(acked) >= at_promotion + 20, f"no recovery: {len(acked) - at_promotion} acks"
        # ... and reached both receivers, once each, in stream order.
        deadline = time.monotonic() + 15
        while any(len(r) < len(stored) for r in received) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for r in received:
            assert r == stored
        # the killed node, started again, rejoins as the new master's replica: chat is again
        # acknowledged only once a replica has it
        await asyncio.to_thread(own_cluster.restart, master)
        assert own_cluster.master_of_slot(slot).port != master.port
        stores = [s.app.state.store.chat for s in (a, b)]
        waited = sum(s.replicated for s in stores)
        deadline = time.monotonic() + 3 * LONELY_RECHECK_S
        n = 0
        while sum(s.replicated for s in stores) == waited:
            assert time.monotonic() < deadline, "chat is not replicated again after the rejoin"
            msg_id = await senders[0].chat(f"after the rejoin {n}")
            frame = await senders[0].until(answers(msg_id), timeout=30)
            assert frame["type"] == "ack", frame
            n += 1
            await asyncio.sleep(0.2)
        for t in readers:
            t.cancel()
        await asyncio.wait(readers)
        for c in [*receivers, *senders]:
            await c.close()

    run(main())


def test_a_planned_failover_moves_chat_and_fan_out_to_the_new_master(
    own_cluster: ValkeyCluster, live_servers: LiveServers
) -> None:
    # CLUSTER FAILOVER on a replica (a rolling upgrade of the nodes): the old master hands its
    # slots over and drops its shard subscribers; the listeners follow to the new master.
    url = ClusterHandle(own_cluster).url
    a, b = live_servers(
        2, redis_url=url, realtime=SLOW_POLL, key_prefix="wg", rate_limits=RATE_LIMITS
    )

    async def main() -> None:
        wid = await new_world(url)
        slot = key_slot(Keys().chat(wid).encode())
        master = own_cluster.master_of_slot(slot)
        sender, receiver = await Client.open(a.ws(wid)), await Client.open(b.ws(wid))
        replica = next(
            n
            for n in own_cluster.nodes
            if n.process.poll() is None
            and n.client().info("replication").get("master_port") == master.port
        )
        replica.client().execute_command("CLUSTER", "FAILOVER")  # type: ignore[no-untyped-call]
        await asyncio.to_thread(_wait_promoted, own_cluster, slot, master.port)
        await asyncio.to_thread(own_cluster.wait_healthy, 30)
        for n in range(3):
            msg_id = f"handover-{n}"
            for _ in range(20):  # a client retries "unavailable" with the same id
                await sender.chat(f"after the handover {n}", msg_id)
                frame = await sender.until(answers(msg_id), timeout=30)
                if frame["type"] == "ack":
                    break
                assert frame["code"] == "unavailable", frame
                await asyncio.sleep(0.2)
            assert frame["type"] == "ack", frame
            got = await receiver.until(delivered(msg_id), timeout=10)
            assert got["stream_id"] == frame["stream_id"]
        await sender.close()
        await receiver.close()

    run(main())
