"""Editing a world in real Chromium with two people (issue 14): ada (the owner) selects and
regenerates a rectangle and bob's map reloads the changed tiles; bob, who may only view, sees
every tool disabled with the reason; ada paints from the palette and undoes it with Ctrl+Z; a
marker ada places appears on both maps, its text shown as text. A screenshot lands in
``out/test-artifacts/browser/``."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.web.browser.conftest import PageFactory, screenshot, sign_in

XSS = "<img src=x onerror=alert(1)>"


def open_world(page: Page, world_id: str) -> None:
    page.goto(f"/worlds/{world_id}#0/0/0")
    expect(page.locator("#chat-status")).to_have_text("connected")
    expect(page.locator("#edit .edit-toolbar")).to_be_visible()


def drag(page: Page, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=4)
    page.mouse.up()


def test_two_people_edit_undo_and_mark(browser_page: PageFactory) -> None:
    ada, bob = browser_page(), browser_page()
    sign_in(ada, "ada")
    sign_in(bob, "bob")
    made = ada.context.request.post(
        "/api/worlds", data={"name": "Shaped", "tileset": "terrain", "seed": 7}
    )
    assert made.status == 201, made.text()
    world_id = made.json()["id"]
    open_world(ada, world_id)
    open_world(bob, world_id)

    # bob may view, not edit: every tool is disabled and the reason is shown.
    expect(bob.locator("#edit .edit-reason")).to_contain_text("not edit")
    expect(bob.locator("#edit .edit-toolbar button").first).to_be_disabled()

    # ada selects a rectangle and regenerates it; bob's map reloads the tiles over it.
    ada.locator("#edit [data-tool=select]").click()
    box = ada.locator("#map").bounding_box()
    assert box
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    drag(ada, (cx - 80, cy - 80), (cx + 80, cy + 80))
    ada.get_by_role("button", name="Regenerate").click()
    expect(ada.locator("#edit .edit-status")).to_contain_text("done (version 1)")
    expect(bob.locator(".world-tile-edited").first).to_be_attached()
    expect(bob.locator("#edit .edit-history li")).to_have_count(1)
    screenshot(bob, "edit-regenerated")

    # ada paints two cells with the palette's first tile (deep water, in the ocean).
    ada.locator("#edit [data-tool=paint]").click()
    ada.locator("#edit .edit-swatch").first.click()
    drag(ada, (cx - 40, cy), (cx - 36, cy))
    expect(ada.locator("#edit .edit-status")).to_contain_text("Paint: done (version 2)")

    # ada undoes the paint with Ctrl+Z: a third operation, seen by bob too.
    ada.locator("#map").focus()
    ada.keyboard.press("Control+z")
    expect(ada.locator("#edit .edit-status")).to_contain_text("Undo: done (version 3)")
    expect(bob.locator("#edit .edit-history li")).to_have_count(3)

    # ada locks two cells with the lock brush: they are outlined on her map.
    ada.locator("#edit [data-tool=lock]").click()
    drag(ada, (cx + 40, cy), (cx + 44, cy))
    expect(ada.locator("#edit .edit-status")).to_contain_text("Lock: done (version 4)")
    expect(ada.locator("path.edit-locked")).to_have_count(2)

    # A marker: placed by ada, shown on both maps; hostile text stays text.
    ada.locator("#edit [data-tool=marker]").click()
    drag(ada, (cx, cy), (cx, cy))
    ada.locator("#marker-label").fill(XSS)
    ada.get_by_role("button", name="Place marker").click()
    for page in (ada, bob):
        expect(page.locator(".map-marker-label")).to_have_text(XSS)
    expect(bob.locator("#edit .edit-markers li")).to_have_count(1)
