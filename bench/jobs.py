"""Job queue benchmark (issue 15): queue overhead, export throughput with 1 and 2 generation
processes, and the memory of a 16384 x 16384 px export.

Starts an embedded Valkey in a temporary folder and real ``worldgen worker`` processes (as an
operator runs them), and queues jobs the way the web app does (a record in
:mod:`worldgen.store.jobs`, a message through :class:`~worldgen.jobs.broker.JobQueue`):

* ``overhead``: 1 x 1 px exports one after the other: enqueue -> the worker marks the job
  started (``attempts`` set, read back by polling every 2 ms), and enqueue -> done;
* ``throughput``: one export of ``--cells`` x ``--cells`` cells at scale 1 by a worker whose pool
  has 1, then 2 processes (a fresh world seed each time, so nothing is cached): cells/s and
  the ratio;
* ``memory`` (``--big``): one 16384 x 16384 px export (1024 x 1024 cells at scale 16), then the
  peak RSS (``VmHWM``) of the worker process and of its largest pool process.

Never asserts on time. Run: ``.venv/bin/python -m bench.jobs [--cells 512] [--big]``; writes
``bench/results/jobs-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from worldgen.jobs.broker import JobQueue
from worldgen.jobs.runner import spec_params
from worldgen.settings import Settings
from worldgen.store.client import Store
from worldgen.store.embedded import EmbeddedValkey
from worldgen.world.spec import WorldSpec

RESULTS = Path(__file__).resolve().parent / "results"
WORLD = "benchWorld01"
OWNER = "b" * 16
POLL_S = 0.002


def start_worker(url: str, prefix: str, processes: int, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, REDIS_URL=url, WORLDGEN_KEY_PREFIX=prefix)
    env["WORLDGEN_WORKERS"] = str(processes)
    env["WORLDGEN_LOG_LEVEL"] = "warning"
    argv = [sys.executable, "-c", "import sys; from worldgen.cli import main; sys.exit(main())"]
    with log.open("ab") as out:
        return subprocess.Popen(
            [*argv, "worker", "--threads", "1"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def peak_rss_mb(pid: int) -> float:
    """``VmHWM`` of a process, in MiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


async def run_job(
    store: Store, queue: JobQueue, params: dict[str, Any]
) -> tuple[float, float, int]:
    """(enqueue -> started, enqueue -> done) in seconds, and the result's size in bytes."""
    record = await store.jobs.create(WORLD, OWNER, "export", params, limit=1000)
    if record is None:
        raise RuntimeError("the job limit refused a benchmark job")
    t0 = time.perf_counter()
    await queue.send(record.id)
    started = None
    while True:
        job = await store.jobs.get(record.id)
        if job is None:
            raise RuntimeError(f"job {record.id} disappeared")
        if started is None and job.attempts:
            started = time.perf_counter() - t0
        if job.state in ("done", "failed"):
            if job.state == "failed":
                raise RuntimeError(job.message)
            return started or 0.0, time.perf_counter() - t0, job.size
        await asyncio.sleep(POLL_S)


def export_params(seed: int, cells: int, scale: int) -> dict[str, Any]:
    spec = WorldSpec.of_kind("tiled", "pipes", seed)
    return {"spec": spec_params(spec), "x": 0, "y": 0, "w": cells, "h": cells, "scale": scale}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        valkey = EmbeddedValkey(Path(tmp) / "valkey")
        url = valkey.start()
        prefix = "bench"
        settings = Settings(redis_url=url, key_prefix=prefix)
        store = Store.open(url, settings)
        queue = JobQueue(url, store.keys)
        log = RESULTS / "jobs-worker.log"
        try:
            worker = start_worker(url, prefix, 1, log)
            await run_job(store, queue, export_params(1, 1, 1))  # warm: world built, loop up
            starts, totals = [], []
            for _ in range(args.jobs):
                started, total, _ = await run_job(store, queue, export_params(1, 1, 1))
                starts.append(started * 1000)
                totals.append(total * 1000)
            report["overhead"] = {
                "jobs": args.jobs,
                "enqueue_to_start_ms_p50": statistics.median(starts),
                "enqueue_to_start_ms_max": max(starts),
                "enqueue_to_done_ms_p50": statistics.median(totals),
            }
            print(f"overhead: {report['overhead']}")
            stop_worker(worker)

            rates = {}
            for processes in (1, 2):
                worker = start_worker(url, prefix, processes, log)
                await run_job(store, queue, export_params(100 + processes, 1, 1))  # warm
                params = export_params(200 + processes, args.cells, 1)
                _, total, size = await run_job(store, queue, params)
                rates[processes] = args.cells**2 / total
                print(f"throughput, {processes} process(es): {rates[processes]:,.0f} cells/s "
                      f"({total:.1f} s, {size / 1e6:.1f} MB)")  # fmt: skip
                stop_worker(worker)
            report["throughput"] = {
                "cells": args.cells,
                "cells_per_s_1": rates[1],
                "cells_per_s_2": rates[2],
                "ratio_2_to_1": rates[2] / rates[1],
            }

            if args.big:
                worker = start_worker(url, prefix, 2, log)
                await run_job(store, queue, export_params(300, 1, 1))  # warm
                t0 = time.perf_counter()
                _, total, size = await run_job(store, queue, export_params(301, 1024, 16))
                pool = [peak_rss_mb(pid) for pid in children(worker.pid)]
                report["memory"] = {
                    "picture_px": 16384,
                    "seconds": time.perf_counter() - t0,
                    "png_mb": size / 1e6,
                    "worker_peak_rss_mb": peak_rss_mb(worker.pid),
                    "largest_pool_process_peak_rss_mb": max(pool, default=0.0),
                }
                print(f"memory: {report['memory']}")
                stop_worker(worker)
        finally:
            queue.close()
            await store.aclose()
            valkey.stop()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=30, help="tiny jobs for the overhead")
    parser.add_argument("--cells", type=int, default=512, help="side of the throughput export")
    parser.add_argument("--big", action="store_true", help="also the 16384 px export's memory")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    report = asyncio.run(main_async(args))
    out = RESULTS / f"jobs-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=1))
    print(f"written {out}")


if __name__ == "__main__":
    main()
