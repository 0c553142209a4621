"""Flood benchmark: memory and ``/healthz`` latency of ``worldgen serve`` under socket floods.

Issue 13's probe found that idle and slow-header sockets were never closed (about 20,000 of them
exhausted the file descriptors and ``/healthz`` timed out for everyone) and that huge headers were
read whole (16 parallel 64 MiB headers added 1.04 GB). This starts one ``worldgen serve`` as a
deployment runs it (embedded Valkey, one generation worker, the default limits: 128 connections
per client address, headers within 10 s, 64 KiB of headers) and runs these phases in turn, each
``--seconds`` long:

* ``baseline``: no flood;
* ``idle``: ``--sockets`` connections that send nothing;
* ``slow headers``: ``--sockets`` connections that send a request line, then one header byte
  every 2 s (the probe's 1 byte / 2 s);
* ``big headers``: ``--big`` clients that each stream a 64 MiB header as fast as the server reads;
* ``after``: no flood again (does the server come back to its baseline?).

Flood sockets come from the loopback addresses 127.0.0.2 and up, at most ``--per-address`` each
(below the per-client cap, so the flood is not simply refused at the door); the probe connects
from 127.0.0.1, a fresh connection every 100 ms. Per phase it reports the probe's latency
p50 / p99 / max and its failures, the app process's RSS (min / max), and what happened to the
flood's sockets: how many the server closed, after how long (median, max), and with which status
line (``408``, ``431``, ``503``, or ``close`` for a silent close). Never asserts; prints a table
and writes ``bench/results/flood-<timestamp>.json``.

Run: ``.venv/bin/python -m bench.flood [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from rich.console import Console
from rich.table import Table

from bench.realtime import ROOT, rss_kib, start_app, stop_app

Kind = Literal["idle", "slow", "big"]
RESULTS = ROOT / "bench" / "results"
PROBE_EVERY_S = 0.1
BIG_HEADER_BYTES = 64 << 20
CHUNK = b"a" * 65536


@dataclass
class Phase:
    """The figures of one phase."""

    name: str
    probes: int = 0
    probe_failures: dict[str, int] = field(default_factory=dict)
    probe_p50_ms: float | None = None
    probe_p99_ms: float | None = None
    probe_max_ms: float | None = None
    rss_min_mib: float | None = None
    rss_max_mib: float | None = None
    sockets: int = 0
    connect_failures: int = 0
    closed: int = 0
    close_median_s: float | None = None
    close_max_s: float | None = None
    answers: dict[str, int] = field(default_factory=dict)
    big_bytes_sent_max_mib: float | None = None


def _status(data: bytes) -> str:
    if not data:
        return "close"
    if data.startswith(b"HTTP/"):
        parts = data.split(b" ", 2)
        return parts[1].decode(errors="replace") if len(parts) > 1 else "?"
    return "other"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def probe(
    port: int, stop: asyncio.Event, latencies: list[float], fails: Counter[str]
) -> None:
    """``GET /healthz`` on a fresh connection every :data:`PROBE_EVERY_S` until ``stop``."""
    request = b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    while not stop.is_set():
        started = time.perf_counter()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
            writer.write(request)
            await writer.drain()
            data = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            status = _status(data)
            if status == "200":
                latencies.append((time.perf_counter() - started) * 1000)
            else:
                fails[status] += 1
        except (OSError, TimeoutError) as exc:
            fails[type(exc).__name__] += 1
        await asyncio.sleep(PROBE_EVERY_S)


@dataclass
class FloodLog:
    connect_failures: int = 0
    closed: list[tuple[float, str]] = field(default_factory=list)
    big_sent: list[int] = field(default_factory=list)


async def flood_socket(
    kind: Kind, port: int, source: str, stop: asyncio.Event, log: FloodLog
) -> None:
    """One hostile connection of ``kind`` from ``source`` until the server closes it or ``stop``."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    except OSError:
        log.connect_failures += 1
        return
    opened = time.perf_counter()
    sent = 0
    try:
        if kind == "slow":
            writer.write(b"GET /healthz HTTP/1.1\r\n")
        elif kind == "big":
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nX-Big: ")
        while not stop.is_set():
            if kind == "big" and sent < BIG_HEADER_BYTES:
                writer.write(CHUNK)
                await writer.drain()
                sent += len(CHUNK)  # the server's answer and close surface as OSError here
                continue
            if kind == "slow":
                writer.write(b"X")
                await writer.drain()
            with contextlib.suppress(TimeoutError):
                data = await asyncio.wait_for(reader.read(4096), 2.0)
                log.closed.append((time.perf_counter() - opened, _status(data)))
                return
        if kind == "big" and not stop.is_set():
            data = await asyncio.wait_for(reader.read(4096), 5.0)
            log.closed.append((time.perf_counter() - opened, _status(data)))
    except (OSError, TimeoutError):
        with contextlib.suppress(OSError, TimeoutError):
            data = await asyncio.wait_for(reader.read(4096), 1.0)
            log.closed.append((time.perf_counter() - opened, _status(data) if data else "reset"))
            return
        log.closed.append((time.perf_counter() - opened, "reset"))
    finally:
        log.big_sent.append(sent)
        writer.close()


async def run_phase(
    name: str, port: int, pid: int, seconds: float, kind: Kind | None, sockets: int, per: int
) -> Phase:
    """One phase: the probe, RSS samples and (with ``kind``) the flood, for ``seconds``."""
    stop = asyncio.Event()
    latencies: list[float] = []
    fails: Counter[str] = Counter()
    rss: list[int] = []
    log = FloodLog()

    async def sample_rss() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                rss.append(rss_kib(pid))
            await asyncio.sleep(0.5)

    tasks = [asyncio.create_task(probe(port, stop, latencies, fails))]
    tasks.append(asyncio.create_task(sample_rss()))
    for i in range(sockets if kind else 0):
        source = f"127.0.{1 + i // (per * 250)}.{2 + (i // per) % 250}"
        tasks.append(asyncio.create_task(flood_socket(kind or "idle", port, source, stop, log)))
        if i % 50 == 49:
            await asyncio.sleep(0)  # let the accept loop breathe: a flood, not a SYN storm
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.wait(tasks, timeout=15)
    for task in tasks:
        task.cancel()
    phase = Phase(name, probes=len(latencies) + sum(fails.values()), probe_failures=dict(fails))
    if latencies:
        phase.probe_p50_ms = round(statistics.median(latencies), 1)
        phase.probe_p99_ms = round(_pct(latencies, 0.99), 1)
        phase.probe_max_ms = round(max(latencies), 1)
    if rss:
        phase.rss_min_mib, phase.rss_max_mib = round(min(rss) / 1024, 1), round(max(rss) / 1024, 1)
    if kind:
        phase.sockets, phase.connect_failures = sockets, log.connect_failures
        phase.closed = len(log.closed)
        if log.closed:
            times = [t for t, _ in log.closed]
            phase.close_median_s = round(statistics.median(times), 2)
            phase.close_max_s = round(max(times), 2)
        phase.answers = dict(Counter(status for _, status in log.closed))
        if kind == "big" and log.big_sent:
            phase.big_bytes_sent_max_mib = round(max(log.big_sent) / (1 << 20), 2)
    return phase


def table(phases: list[Phase]) -> Table:
    t = Table(title="worldgen serve under floods: /healthz probe, app RSS, the flood's sockets")
    for col in ("phase", "probe p50/p99/max ms", "probe failures", "RSS MiB min/max"):
        t.add_column(col)
    for col in ("sockets (refused)", "closed by server", "close after s: median/max", "answers"):
        t.add_column(col)
    for p in phases:
        t.add_row(
            p.name,
            f"{p.probe_p50_ms} / {p.probe_p99_ms} / {p.probe_max_ms}",
            ", ".join(f"{k}: {v}" for k, v in p.probe_failures.items()) or "0",
            f"{p.rss_min_mib} / {p.rss_max_mib}",
            f"{p.sockets} ({p.connect_failures})" if p.sockets else "",
            str(p.closed) if p.sockets else "",
            f"{p.close_median_s} / {p.close_max_s}" if p.sockets else "",
            ", ".join(f"{k}: {v}" for k, v in sorted(p.answers.items()))
            + (f" (sent ≤ {p.big_bytes_sent_max_mib} MiB)" if p.big_bytes_sent_max_mib else ""),
        )
    return t


async def run(args: argparse.Namespace, port: int, pid: int) -> list[Phase]:
    plan: list[tuple[str, Kind | None, int]] = [
        ("baseline", None, 0),
        ("idle", "idle", args.sockets),
        ("slow headers", "slow", args.sockets),
        ("big headers", "big", args.big),
        ("after", None, 0),
    ]
    phases = []
    for name, kind, n in plan:
        print(f"  {name} ({args.seconds:.0f} s)...", flush=True)
        phases.append(await run_phase(name, port, pid, args.seconds, kind, n, args.per_address))
    return phases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="12 s phases, 400 sockets")
    parser.add_argument("--seconds", type=float, default=None, help="per phase (default 20)")
    parser.add_argument("--sockets", type=int, default=None, help="idle / slow sockets (1000)")
    parser.add_argument("--big", type=int, default=16, help="big-header clients (16)")
    parser.add_argument("--per-address", type=int, default=100, help="flood sockets per address")
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (12.0 if args.quick else 20.0)
    args.sockets = args.sockets or (400 if args.quick else 1000)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    started = datetime.now()
    with tempfile.TemporaryDirectory(prefix="worldgen-flood-") as tmp:
        tmpdir = Path(tmp)
        # the deployment's per-client cap (bench/realtime raises it for its own load)
        app = start_app(
            None, tmpdir / "data", tmpdir / "app.log",
            extra_env={"WORLDGEN_MAX_CONNECTIONS_PER_CLIENT": "128"},
        )  # fmt: skip
        try:
            phases = asyncio.run(run(args, app.port, app.proc.pid))
        finally:
            stop_app(app)
    Console(width=200).print(table(phases))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"flood-{started:%Y%m%d-%H%M%S}.json"
    doc: dict[str, object] = {"started": started.isoformat(), "args": vars(args)}
    doc["phases"] = [asdict(p) for p in phases]
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
