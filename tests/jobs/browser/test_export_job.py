"""A large export from the world page in real Chromium, on the real single-machine setup:
``worldgen serve`` alone (its own job worker child). The button queues a job, the progress bar
and status follow it, and the download link gives the picture of the whole view. A page follows a
running job by its socket's ``job`` frames, even when reading the job's record fails."""

from __future__ import annotations

import io
import re

from PIL import Image
from playwright.sync_api import Route, expect

from tests.web.browser.conftest import ARTIFACTS, PageFactory, Server, screenshot, sign_in
from tests.web.browser.test_pages import wait_for_map

WAIT_MS = 300_000


def test_large_export_runs_as_a_job(browser_page: PageFactory, server: Server) -> None:
    world = server.create_world("Export job", tileset="pipes", seed=3)
    page = browser_page(width=760, height=420)
    sign_in(page, "exporter")
    page.goto(f"{world['page']}#0/0/0")
    wait_for_map(page, tiles=2, timeout_ms=WAIT_MS)
    note = page.locator("#export-job-note").text_content() or ""
    assert "16384 px a side" in note

    page.get_by_role("button", name="Export a large PNG (background job)").click()
    link = page.locator("#export-job-download")
    expect(link).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#export-job-status")).to_contain_text("Ready")
    assert page.locator("#export-job-progress").evaluate("(p) => p.value") == 100
    screenshot(page, "export-job-page")
    with page.expect_download() as download_info:
        link.click()
    path = ARTIFACTS / "export-job.png"
    download_info.value.save_as(path)
    with Image.open(io.BytesIO(path.read_bytes())) as picture:
        width, height = picture.size
    # the view's cells at 16 px per cell (the largest scale that fits 16384 px)
    assert (width % 16, height % 16) == (0, 0)
    assert min(width, height) >= 16 * 50


def test_a_reopened_page_follows_the_running_export_and_cancels_it(
    browser_page: PageFactory, server: Server
) -> None:
    world = server.create_world("Export job resumed", tileset="pipes", seed=4)
    page = browser_page(width=760, height=420)
    sign_in(page, "resumer")
    big = {"x": 0, "y": 0, "w": 1024, "h": 8192, "scale": 1}  # 8 bands of seconds each
    queued = page.context.request.post(f"/api/worlds/{world['id']}/exports", data=big)
    assert queued.status == 202, queued.text()

    def refuse(route: Route) -> None:
        if route.request.method == "GET":
            route.fulfill(status=503, json={"detail": "refused by the test"})
        else:
            route.continue_()

    # every read of the job's record fails: only the socket's frames can move the page on
    page.route(re.compile(r"/api/jobs/[^/?]+$"), refuse)
    page.goto(f"{world['page']}#0/0/0")
    expect(page.locator("#export-job-progress")).to_be_visible()
    status = page.locator("#export-job-status")
    expect(status).to_contain_text("band", timeout=WAIT_MS)
    first = status.text_content()
    page.wait_for_function(
        "(first) => { const t = document.getElementById('export-job-status').textContent;"
        " return t.includes('band') && t !== first; }",
        arg=first,
        timeout=WAIT_MS,
    )
    cancel = page.get_by_role("button", name="Cancel the export")
    expect(cancel).to_be_visible()
    cancel.click()
    expect(page.locator("#export-job-status")).to_contain_text(
        "cancelled by its owner", timeout=WAIT_MS
    )
    expect(page.locator("#export-job-download")).to_be_hidden()
    expect(page.get_by_role("button", name="Export a large PNG (background job)")).to_be_enabled()
