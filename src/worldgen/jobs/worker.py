"""A job worker process: Dramatiq worker threads running jobs on a generation pool.

:func:`run_worker` is ``worldgen worker``: it starts a :class:`~worldgen.world.pool.WorkerPool`
(every slot may run exports: no map tile waits here), connects the job store and the broker,
declares the job actor with a :class:`~worldgen.jobs.runner.JobRunner`, and runs ``threads``
Dramatiq worker threads until ``stop`` is set (SIGTERM/SIGINT in the command) or the process
named ``parent_pid`` dies. With ``worker_metrics_port`` set it serves its
:class:`~worldgen.jobs.metrics.JobMetrics` over HTTP on ``host`` at that port. Jobs run as
coroutines on the one event loop of Dramatiq's ``AsyncIO`` middleware, which owns the store's
connections; the pool's processes compute.

:class:`WorkerChild` is how ``worldgen serve`` runs a worker beside itself in the single-machine
setup: ``worldgen worker --parent-pid <serve's pid>`` in a child process, told the resolved
Redis URL and key prefix through its environment, started again if it dies, stopped with
SIGTERM (SIGKILL after a grace period) when the app stops, and ending by itself within a second
if the app dies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import dramatiq
import structlog

from worldgen.jobs.broker import (
    HEARTBEAT_TIMEOUT_MS,
    MAINTENANCE_CHANCE,
    QUEUE,
    build_broker,
    declare_actor,
)
from worldgen.jobs.metrics import JobMetrics
from worldgen.jobs.runner import JobRunner
from worldgen.settings import Settings
from worldgen.store.client import Store
from worldgen.world.pool import WorkerPool

__all__ = [
    "PARENT_CHECK_S",
    "RESTART_MAX_S",
    "RESTART_MIN_S",
    "STOP_TIMEOUT_S",
    "WorkerChild",
    "run_worker",
]

log = structlog.get_logger("worldgen.jobs")

PARENT_CHECK_S = 1.0
"""How often a worker started for a parent checks that the parent still lives."""
RESTART_MIN_S = 1.0
"""First pause before a dead worker child is started again."""
RESTART_MAX_S = 30.0
"""Longest pause between restarts of a worker child that keeps dying."""
STOP_TIMEOUT_S = 10.0
"""How long a stopping worker lets running jobs finish; unfinished ones are redelivered."""


def _watch_parent(parent_pid: int, stop: threading.Event) -> threading.Event:
    """Set ``stop`` once ``parent_pid`` is no longer this process's parent (it died: an orphan
    is re-parented), checked every :data:`PARENT_CHECK_S`; the event returned is set then too
    (an orphan stops at once: its app, and maybe its Redis, are gone)."""
    orphaned = threading.Event()

    def watch() -> None:
        while os.getppid() == parent_pid and not stop.is_set():
            time.sleep(PARENT_CHECK_S)
        if os.getppid() != parent_pid:
            orphaned.set()
        stop.set()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
    return orphaned


def run_worker(
    settings: Settings,
    url: str,
    stop: threading.Event,
    *,
    processes: int,
    threads: int = 2,
    parent_pid: int | None = None,
    heartbeat_timeout_ms: int = HEARTBEAT_TIMEOUT_MS,
    maintenance_chance: int = MAINTENANCE_CHANCE,
    band_px: int | None = None,
) -> None:
    """Run jobs from the broker at ``url`` until ``stop`` is set; the store is on
    ``settings.redis_url`` (else ``url``). Blocks; returns after a graceful stop."""
    orphaned = _watch_parent(parent_pid, stop) if parent_pid is not None else threading.Event()
    pool = WorkerPool(processes, heavy_slots=processes)
    try:
        pool.start()
        store = Store.open(settings.redis_url or url, settings)
        broker = build_broker(
            url,
            store.keys,
            heartbeat_timeout_ms=heartbeat_timeout_ms,
            maintenance_chance=maintenance_chance,
        )
        metrics = JobMetrics(lambda: int(broker.do_qsize(QUEUE)))
        if settings.worker_metrics_port:
            metrics.serve(settings.host, settings.worker_metrics_port)
            log.info("job metrics served", host=settings.host, port=settings.worker_metrics_port)
        runner = JobRunner(pool, store, band_px=band_px, metrics=metrics)
        declare_actor(broker, runner.run)
        worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=1000)
        worker.start()
        log.info("job worker started", processes=processes, threads=threads, pid=os.getpid())
        try:
            while not stop.wait(PARENT_CHECK_S):
                pass
        finally:
            log.info("job worker stopping")
            worker.stop(timeout=1000 if orphaned.is_set() else int(STOP_TIMEOUT_S * 1000))
            broker.close()
    finally:
        # Wait for the pool's manager thread unless orphaned: left running, it races CPython
        # 3.11's exit hook (``concurrent.futures.process._python_exit`` writes to the wake-up
        # pipe that the thread is closing: an EBADF traceback on a clean stop).
        pool.close(wait=not orphaned.is_set())


class WorkerChild:
    """``worldgen worker`` as a child of this process (see the module docstring), restarted
    when it exits unasked (a crash, the OOM killer), after :data:`RESTART_MIN_S` doubling up to
    :data:`RESTART_MAX_S` while it keeps dying within a minute."""

    def __init__(self, settings: Settings, redis_url: str, *, processes: int) -> None:
        self.settings = settings
        self.redis_url = redis_url
        self.processes = processes
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        """How many times the child was started again after it died."""
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._supervisor: threading.Thread | None = None

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env["REDIS_URL"] = self.redis_url
        env["WORLDGEN_BROKER_URL"] = self.settings.broker_url or self.redis_url
        env["WORLDGEN_KEY_PREFIX"] = self.settings.key_prefix
        env["WORLDGEN_JOB_RESULT_TTL_S"] = str(self.settings.job_result_ttl_s)
        env["WORLDGEN_LOG_LEVEL"] = self.settings.log_level
        env["WORLDGEN_LOG_JSON"] = "true" if self.settings.log_json else "false"
        argv = [sys.executable, "-c", "import sys; from worldgen.cli import main; sys.exit(main())"]
        argv += ["worker", "--workers", str(self.processes), "--parent-pid", str(os.getpid())]
        # its own process group: a terminal's Ctrl+C reaches serve, which stops the worker
        # (in serve's group it was interrupted at once, then restarted as if it had crashed)
        process = subprocess.Popen(  # noqa: S603
            argv, env=env, stdin=subprocess.DEVNULL, process_group=0
        )
        log.info("job worker child started", pid=process.pid)
        return process

    def start(self) -> None:
        """Start the child (it connects and starts its pool by itself) and its supervisor."""
        self._stopping.clear()
        with self._lock:
            self.process = self._spawn()
        self._supervisor = threading.Thread(
            target=self._supervise, name="job-worker-supervisor", daemon=True
        )
        self._supervisor.start()

    def _supervise(self) -> None:
        delay = RESTART_MIN_S
        while True:
            with self._lock:
                process = self.process
            if process is None:
                return
            born = time.monotonic()
            code = process.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - born > 60:
                delay = RESTART_MIN_S
            log.warning("job worker child exited; restarting it", code=code, after_s=delay)
            if self._stopping.wait(delay):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                self.process = self._spawn()
                self.restarts += 1
            delay = min(RESTART_MAX_S, delay * 2)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after the worker's own grace period (safe to call twice)."""
        self._stopping.set()
        with self._lock:
            process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_S + 5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if self._supervisor is not None:
            self._supervisor.join(5)
