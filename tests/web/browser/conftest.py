"""Browser-test fixtures: one real ``worldgen serve`` (embedded Valkey) and Debian's Chromium.

``server`` runs the same command a user runs (the harness's :class:`~tests.harness.ServeProcess`),
on a free port with a temporary data directory, waits for ``/readyz`` and, at the end, stops it
with SIGINT (SIGKILL after a grace period) and checks that none of its processes — the embedded
Valkey above all — outlived it.
``browser_page`` is a factory of pages in fresh contexts that records JavaScript errors and
dialogs; a test that ends with either fails. Screenshots and downloads go to
``out/test-artifacts/browser/``. Chromium comes from ``scripts/install-browser.sh``.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
from playwright.sync_api import Browser, Dialog, Page, Playwright, sync_playwright

from tests.accounts import PASSWORD, new_username, sign_in_sync
from tests.harness import ROOT, ServeProcess, command_name

__all__ = ["ARTIFACTS", "ROOT", "PageFactory", "Server", "screenshot", "sign_in"]
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


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``worldgen serve`` with an embedded Valkey in a temporary data directory."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "server.log"
    # every test signs up its own people from 127.0.0.1: lift the per-address sign-up limit
    limits = '{"register_address": {"count": 10000, "window_s": 3600}}'
    # as a fresh server does, it prepares the models the map tests zoom far on (on idle cores)
    warm = '["terrain", "lakes"]'
    env = {"WORLDGEN_RATE_LIMITS": limits, "WORLDGEN_WARM_MODELS": warm}
    serve = ServeProcess(tmp_path_factory.mktemp("serve-data"), log, env=env)
    try:
        serve.wait_ready(READY_TIMEOUT_S)
        assert any("valkey" in command_name(pid) for pid in serve.family), "no embedded Valkey"
        yield Server(url=serve.url, proc=serve.proc, log=log)
    finally:
        serve.stop(signal.SIGINT, STOP_TIMEOUT_S)
    assert not serve.survivors, (
        f"processes outlived worldgen serve (embedded Valkey?): {serve.survivors}"
    )


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
