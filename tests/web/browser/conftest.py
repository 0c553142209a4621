"""Browser-test fixtures: one real ``worldgen serve`` (embedded Valkey) and Debian's Chromium.

``server`` runs the same command a user runs, on a free port with a temporary data directory,
waits for ``/readyz`` and, at the end, stops it with SIGINT (SIGKILL after a grace period) and
checks that none of its processes — the embedded Valkey above all — outlived it.
``browser_page`` is a factory of pages in fresh contexts that records JavaScript errors and
dialogs; a test that ends with either fails. Screenshots and downloads go to
``out/test-artifacts/browser/``. Chromium comes from ``scripts/install-browser.sh``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Page, Playwright, sync_playwright

from tests.accounts import PASSWORD, new_username, sign_in_sync

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "out" / "test-artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0


@dataclass
class Server:
    """A running ``worldgen serve``: its base URL and the process tree to check on exit."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    cookies: httpx.Cookies = field(default_factory=httpx.Cookies)
    """The session of the account that :meth:`create_world` uses (made on first use)."""

    def create_world(
        self, name: str, tileset: str = "terrain", seed: int = 7, visibility: str = "public"
    ) -> dict[str, Any]:
        """A world made through the API (tests of other pages need not click through the form),
        by one account of this server (creating a world needs one)."""
        with httpx.Client(base_url=self.url, timeout=60, cookies=self.cookies) as client:
            if not self.cookies:
                sign_in_sync(client, new_username("maker"))
                self.cookies = httpx.Cookies(client.cookies)
            body = {"name": name, "tileset": tileset, "seed": seed, "visibility": visibility}
            response = client.post("/api/worlds", json=body)
        assert response.status_code == 201, response.text
        world: dict[str, Any] = response.json()
        return world


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids of every process now running (from /proc)."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _descendants(pid: int) -> set[int]:
    tree, out, todo = _children(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def _command(pid: int) -> str:
    """The process's name ("" once it has gone)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    """True if ``pid`` is a running (not zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"worldgen serve exited with {proc.returncode}; see {log}")
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{url}/readyz").status_code == 200:
                    return
            time.sleep(0.25)
    pytest.fail(f"worldgen serve was not ready within {READY_TIMEOUT_S:.0f} s; see {log}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT_S)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``worldgen serve`` with an embedded Valkey in a temporary data directory."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    data_dir = tmp_path_factory.mktemp("serve-data")
    log = ARTIFACTS / "server.log"
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))
    # every test signs up its own people from 127.0.0.1: lift the per-address sign-up limit
    env["WORLDGEN_RATE_LIMITS"] = '{"register_address": {"count": 10000, "window_s": 3600}}'
    command = [str(Path(sys.executable).with_name("worldgen")), "serve", "--port", str(port)]
    command += ["--data-dir", str(data_dir), "--workers", "1"]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    family: set[int] = set()
    try:
        _wait_ready(url, proc, log)
        family = _descendants(proc.pid)
        assert any("valkey" in _command(pid) for pid in family), "no embedded Valkey running"
        yield Server(url=url, proc=proc, log=log)
        family |= _descendants(proc.pid)
    finally:
        family |= _descendants(proc.pid)
        _stop(proc)
    # multiprocessing's resource tracker exits only once it reads EOF from its dead parent:
    # give the children a moment to notice before calling them survivors
    deadline = time.monotonic() + 3.0
    while any(_alive(pid) for pid in family) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = sorted(pid for pid in family if _alive(pid))
    for pid in survivors:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not survivors, f"processes outlived worldgen serve (embedded Valkey?): {survivors}"


# Module scope, not session: while the sync API runs it keeps an asyncio loop marked as running
# in this thread, which would break the anyio tests that run after the browser tests.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-browser.sh (needs root)")
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@dataclass
class PageLog:
    """What a page did that a test did not ask for."""

    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


class PageFactory(Protocol):
    def __call__(self, *, width: int = 1280, height: int = 800) -> Page: ...


@pytest.fixture
def browser_page(browser: Browser, server: Server) -> Iterator[PageFactory]:
    """Pages in fresh contexts (own storage, downloads on); fails on JS errors or dialogs."""
    contexts = []
    logs: list[PageLog] = []

    def make(*, width: int = 1280, height: int = 800) -> Page:
        context = browser.new_context(
            base_url=server.url, viewport={"width": width, "height": height}, accept_downloads=True
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(60_000)
        log = PageLog()
        logs.append(log)
        page.on("pageerror", lambda exc: log.errors.append(str(exc)))

        def on_dialog(dialog: Dialog) -> None:
            log.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("dialog", on_dialog)
        return page

    yield make
    for context in contexts:
        context.close()
    for log in logs:
        assert not log.dialogs, f"unexpected dialogs: {log.dialogs}"
        assert not log.errors, f"JavaScript errors: {log.errors}"


def sign_in(page: Page, prefix: str) -> str:
    """Register a fresh account (``<prefix>-<random>``) in the page's browser context, which then
    holds its session cookie; returns the username."""
    username = new_username(prefix)
    response = page.context.request.post(
        "/api/auth/register", data={"username": username, "password": PASSWORD}
    )
    assert response.status == 201, response.text()
    return username


def screenshot(page: Page, name: str) -> Path:
    """Save a screenshot of the page as a test artefact."""
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=path)
    return path
