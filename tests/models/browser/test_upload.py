"""Your own model in real Chromium on the single-machine setup (``worldgen serve`` with its job
worker child): upload a sample on the home page, see its pattern count and the 48x48 preview,
create a world from it, see "preparing" with progress while the library job runs, then the map
shows tiles. The page that waits hears the library job's ``job`` frames on the world's socket."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from tests.samples import OVERLAPPING
from tests.web.browser.conftest import PageFactory, Server, screenshot, sign_in
from tests.web.browser.test_pages import wait_for_map

WAIT_MS = 300_000


def test_upload_preview_create_world_map(browser_page: PageFactory, server: Server) -> None:
    page = browser_page(width=1000, height=800)
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(str(f))))
    sign_in(page, "uploader")
    page.goto("/")
    page.locator("#model-upload-box summary").click()
    # a sample no other test of the session builds a library for: the world must wait for its job
    page.locator("#model-file").set_input_files(str(OVERLAPPING / "rivers.png"))
    page.get_by_role("button", name="Upload and preview").click()
    expect(page.locator("#model-status")).to_contain_text("patterns found", timeout=60_000)
    preview = page.locator("#model-preview")
    expect(preview).to_be_visible()
    page.wait_for_function(
        "() => { const i = document.getElementById('model-preview');"
        " return i.complete && i.naturalWidth === 48; }"
    )
    chosen = page.locator('input[name="tileset"][value^="model:"]')
    expect(chosen).to_be_checked()
    screenshot(page, "upload-preview")

    page.locator("#world-name").fill("My rivers")
    page.get_by_role("button", name="Create world").click()
    page.wait_for_url("**/worlds/*")
    # "preparing" with the job's progress while the worker builds the library (seconds), then
    # the page reloads by itself with the map
    expect(page.locator("#preparing")).to_be_visible()
    expect(page.locator("#preparing-progress")).to_be_visible()
    screenshot(page, "upload-preparing")
    wait_for_map(page, tiles=2, timeout_ms=WAIT_MS)
    expect(page.locator("#preparing")).to_have_count(0)
    expect(page.locator("#world-name")).to_have_text("My rivers")
    jobs = [json.loads(f) for f in frames if '"type":"job"' in f]
    assert jobs, "the waiting page heard no job frame"
    world_id = page.evaluate("JSON.parse(document.getElementById('world-data').textContent).id")
    assert {(j["kind"], j["world_id"]) for j in jobs} == {("library", world_id)}
    screenshot(page, "upload-world")
