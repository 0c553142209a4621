"""``worldgen worker``: run background jobs (exports, pre-rendering) from the job queue.

The queue is Dramatiq's Redis broker at ``WORLDGEN_BROKER_URL``, else ``REDIS_URL`` (a worker
has no embedded Valkey: it joins the Redis of the app instances, with their key prefix). Any
number of workers may run on any machines; ``worldgen serve`` starts one itself
(``WORLDGEN_JOB_WORKERS``). SIGTERM and SIGINT stop it gracefully: running jobs get
:data:`~worldgen.jobs.worker.STOP_TIMEOUT_S` to finish, the others are redelivered. Exit code 0
after a stop, 2 for bad settings (no Redis URL).
"""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from worldgen.cli._io import settings_from_flags
from worldgen.errors import InputError

__all__ = ["run_worker_command"]


def _add_worker_arguments(worker: argparse.ArgumentParser) -> None:
    worker.add_argument(
        "--workers", type=int, metavar="N", help="generation processes, 1..32 (WORLDGEN_WORKERS)"
    )
    worker.add_argument(
        "--threads", type=int, default=2, metavar="N", help="jobs run at once, 1..64 (2)"
    )
    worker.add_argument(
        "--parent-pid", type=int, metavar="PID", help="stop when this process dies (serve's child)"
    )
    worker.add_argument(
        "--heartbeat-timeout-ms",
        type=int,
        metavar="MS",
        help="a worker silent this long is dead and its jobs are redelivered (60000)",
    )
    worker.add_argument(
        "--maintenance-chance",
        type=int,
        metavar="N",
        help="broker commands per million that also requeue dead workers' jobs (10000)",
    )
    worker.add_argument(
        "--band-px",
        type=int,
        metavar="PX",
        help="rows of an export computed and written at a time, 16..4096 (1024)",
    )
    worker.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus metrics on this port, on WORLDGEN_HOST "
        "(WORLDGEN_WORKER_METRICS_PORT; 0: none)",
    )
    worker.set_defaults(handler=run_worker_command)


def run_worker_command(args: argparse.Namespace) -> int:
    """Run a worker until SIGTERM/SIGINT (or the death of ``--parent-pid``)."""
    from worldgen.jobs import broker
    from worldgen.jobs.worker import run_worker
    from worldgen.web.logging import configure_logging

    settings = settings_from_flags(
        {"workers": args.workers, "worker_metrics_port": args.metrics_port}
    )
    url = settings.broker_url or settings.redis_url
    if url is None:
        raise InputError("a worker needs the queue's Redis: set WORLDGEN_BROKER_URL or REDIS_URL")
    if not 1 <= args.threads <= 64:
        raise InputError(f"--threads must be in 1..64, got {args.threads}")
    if args.band_px is not None and not 16 <= args.band_px <= 4096:
        raise InputError(f"--band-px must be in 16..4096, got {args.band_px}")
    configure_logging(settings.log_level, json=settings.log_json)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    run_worker(
        settings,
        url,
        stop,
        processes=settings.workers,
        threads=args.threads,
        parent_pid=args.parent_pid,
        heartbeat_timeout_ms=args.heartbeat_timeout_ms or broker.HEARTBEAT_TIMEOUT_MS,
        maintenance_chance=args.maintenance_chance or broker.MAINTENANCE_CHANCE,
        band_px=args.band_px,
    )
    return 0
