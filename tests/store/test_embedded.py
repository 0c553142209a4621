"""The embedded Valkey: one server per data folder, restarted when it dies, gone with its owner."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import redis

from worldgen.store import embedded
from worldgen.store.embedded import LOCK_NAME, EmbeddedValkey, EmbeddedValkeyError


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); /proc tells the truth
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


def _wait(predicate: object, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_second_server_on_the_same_folder_is_refused_with_the_owner_pid(tmp_path: Path) -> None:
    with EmbeddedValkey(tmp_path / "v") as first:
        second = EmbeddedValkey(tmp_path / "v")
        with pytest.raises(EmbeddedValkeyError, match=rf"in use .*pid {os.getpid()}"):
            second.start()
        assert redis.Redis.from_url(first.url).ping()
    # released on stop: the folder can be used again
    with EmbeddedValkey(tmp_path / "v") as again:
        assert redis.Redis.from_url(again.url).ping()


def test_a_stale_lock_file_is_taken_over(tmp_path: Path) -> None:
    folder = tmp_path / "v"
    folder.mkdir()
    (folder / LOCK_NAME).write_text("999999\n")  # an owner that died without unlocking
    with EmbeddedValkey(folder) as server:
        assert redis.Redis.from_url(server.url).ping()
        assert (folder / LOCK_NAME).read_text().strip() == str(os.getpid())


def test_a_killed_server_is_restarted_on_the_same_port_with_its_data(tmp_path: Path) -> None:
    server = EmbeddedValkey(tmp_path / "v", supervise=True)
    url = server.start()
    try:
        client = redis.Redis.from_url(url)
        client.set("kept", "yes")
        time.sleep(1.2)  # past one appendfsync everysec tick
        first = server.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        assert _wait(lambda: server.restarts == 1)
        assert server.pid not in (None, first)
        assert server.url == url
        assert client.get("kept") == b"yes"
        assert server.healthy
    finally:
        server.stop()
    assert server.pid is None


def test_supervisor_gives_up_after_the_bounded_restarts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded, "MAX_RESTARTS", 2)
    monkeypatch.setattr(embedded, "BACKOFF_BASE_S", 0.01)
    server = EmbeddedValkey(tmp_path / "v", supervise=True)
    server.start()
    try:
        for expected in (1, 2):
            pid = server.pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            assert _wait(lambda e=expected: server.restarts == e)
        pid = server.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert _wait(lambda: not server.healthy)
        assert server.restarts == 2
    finally:
        server.stop()


def test_without_supervision_a_killed_server_stays_down_until_restart(tmp_path: Path) -> None:
    server = EmbeddedValkey(tmp_path / "v")
    url = server.start()
    try:
        pid = server.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        time.sleep(4 * embedded.POLL_S)
        assert server.restarts == 0
        with pytest.raises(redis.ConnectionError):
            redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
        server.restart()
        assert redis.Redis.from_url(url).ping()
    finally:
        server.stop()


def test_the_server_dies_with_an_owner_killed_by_sigkill(tmp_path: Path) -> None:
    folder = tmp_path / "v"
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from worldgen.store.embedded import EmbeddedValkey
        server = EmbeddedValkey(Path({str(folder)!r}), supervise=True)
        server.start()
        print(server.pid, flush=True)
        time.sleep(600)
        """
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        child = int(owner.stdout.readline())
        assert _alive(child)
        owner.kill()
        owner.wait()
        assert _wait(lambda: not _alive(child)), "the Valkey child outlived its owner"
        # and the folder is free again for the next owner
        with EmbeddedValkey(folder) as server:
            assert redis.Redis.from_url(server.url).ping()
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        if owner.stdout is not None:
            owner.stdout.close()
