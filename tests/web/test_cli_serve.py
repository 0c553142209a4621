"""``worldgen serve``: flags, the printed URL, a clean stop on SIGTERM/SIGINT, data kept."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.accounts import sign_in_sync
from tests.harness import ServeProcess
from worldgen.cli import main
from worldgen.world.api import bundled_specs, model_for
from worldgen.world.patches import library_version

START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0


class Served(ServeProcess):
    """One ``worldgen serve`` (the harness's); stdout and stderr go to files in ``folder``."""

    def __init__(
        self, folder: Path, data_dir: Path, name: str, env: dict[str, str] | None = None
    ) -> None:
        super().__init__(
            data_dir, folder / f"{name}.out", folder / f"{name}.err", env=env, cwd=folder
        )

    def wait_for_url(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            text = self.out.read_text()
            if "serving" in text:
                return text
            assert self.proc.poll() is None, self.err.read_text()[-3000:]
            time.sleep(0.1)
        raise AssertionError(f"no URL within {START_TIMEOUT_S} s: {self.err.read_text()[-3000:]}")

    def stop(
        self,
        sig: signal.Signals = signal.SIGINT,
        timeout_s: float = STOP_TIMEOUT_S,
        *,
        group: bool = False,
    ) -> int:
        """Stop with ``sig``; its exit code. No process of its tree may outlive it."""
        assert self.watch(), "the server should have children (Valkey, workers)"
        code = super().stop(sig, timeout_s, group=group)
        assert not self.survivors, f"outlived the server: {self.survivors}"
        return code


def test_serve_prints_its_url_stops_cleanly_and_keeps_data(tmp_path: Path) -> None:
    data_dir, cache = tmp_path / "data", tmp_path / "cache"
    warm = {"WORLDGEN_WARM_MODELS": '["roads"]', "WORLDGEN_CACHE_DIR": str(cache)}
    first = Served(tmp_path, data_dir, "first", env=warm)
    try:
        assert first.wait_for_url().strip() == f"worldgen: serving {first.url} (Ctrl+C stops)"
        # the cache warmer fills the disk cache of the models it was given, and only theirs
        deadline = time.monotonic() + START_TIMEOUT_S
        while not list(cache.glob("summaries/*.npz")) and time.monotonic() < deadline:
            time.sleep(0.2)
        roads = bundled_specs(["roads"])[0]
        library = library_version(model_for(roads), roads.S, roads.V)
        assert [p.name for p in cache.glob("patches/*.npz")] == [f"{library}.npz"]
        with httpx.Client(base_url=first.url, timeout=60) as http:
            assert http.get("/readyz").json()["status"] == "ready"
            sign_in_sync(http)  # creating a world needs an account
            world = http.post("/api/worlds", json={"name": "kept", "tileset": "terrain"}).json()
            assert http.get(f"/tiles/{world['id']}/0/0/0.png").status_code == 200
    finally:
        code = first.stop(signal.SIGTERM)
    assert code == 0, first.err.read_text()[-3000:]
    assert (data_dir / "valkey" / "appendonlydir").is_dir()

    second = Served(tmp_path, data_dir, "second", env={"WORLDGEN_HEADER_TIMEOUT_S": "1"})
    try:
        second.wait_for_url()
        with httpx.Client(base_url=second.url, timeout=60) as http:
            assert http.get(f"/api/worlds/{world['id']}").json() == world
            # the served protocol is the bounded one: oversized headers are refused
            huge = http.get("/healthz", headers={"x-pad": "a" * (70 * 1024)})
            assert huge.status_code == 431
        # ... and a connection that never sends its headers is answered 408 and closed
        with socket.create_connection(("127.0.0.1", second.port), timeout=10) as idle:
            idle.sendall(b"GET /healthz HTTP/1.1\r\n")
            reply = idle.recv(4096)
            assert reply.startswith(b"HTTP/1.1 408"), reply
    finally:
        code = second.stop(signal.SIGINT, group=True)  # Ctrl+C in its terminal
    assert code == 0, second.err.read_text()[-3000:]
    assert "Traceback" not in second.err.read_text()
    # the signal reached the server alone: it stopped its children, none died and restarted
    assert "restart" not in second.err.read_text()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workers", "0"], "workers"),
        (["--workers", "33"], "workers"),
        (["--port", "70000"], "port"),
        (["--port", "0"], "port"),
    ],
)
def test_bad_flags_exit_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("worldgen: error: invalid settings:")
    assert message in err


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from worldgen.cli import build_parser
    from worldgen.cli.serve import settings_from_args

    monkeypatch.setenv("WORLDGEN_PORT", "9100")
    monkeypatch.setenv("WORLDGEN_WORKERS", "3")
    args = build_parser().parse_args(["serve", "--workers", "4", "--data-dir", "/srv/wg"])
    settings = settings_from_args(args)
    assert (settings.port, settings.workers, settings.data_dir) == (9100, 4, Path("/srv/wg"))
    assert settings.host == "127.0.0.1"
