"""Markers edited in real Chromium, and an edit revealed in the solver's order (issue 14): ada
places a marker, renames it and moves it to another cell (PATCH /markers/{id}); bob, a viewer,
sees each change live and has no edit button. ada's regenerate reaches bob's map as tiles drawn
step by step in the order the solver decided their cells (a canvas filled from the new image),
not as the geometric wave used when no order is known."""

from __future__ import annotations

from itertools import pairwise

from playwright.sync_api import expect

from tests.web.browser.conftest import PageFactory, screenshot, sign_in
from tests.web.browser.test_edit import drag, open_world

# Records every element added under the map with its classes (before the edit happens), and for
# each ordered-reveal canvas, once a frame until it goes, how many of its pixels are drawn.
WATCH = """() => {
  window.addedTiles = [];
  window.revealed = [];
  const sample = (canvas, counts) => {
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let drawn = 0;
    for (let i = 3; i < data.length; i += 4) drawn += data[i] > 0 ? 1 : 0;
    counts.push(drawn);
    if (canvas.isConnected) requestAnimationFrame(() => sample(canvas, counts));
  };
  new MutationObserver((changes) => {
    for (const change of changes) {
      for (const node of change.addedNodes) {
        if (node.nodeType !== 1) continue;
        window.addedTiles.push(`${node.tagName} ${node.className}`);
        if (node.tagName === "CANVAS" && node.classList.contains("world-tile-ordered")) {
          const counts = [];
          window.revealed.push(counts);
          requestAnimationFrame(() => sample(node, counts));
        }
      }
    }
  }).observe(document.querySelector("#map"), { childList: true, subtree: true });
}"""


def test_markers_are_renamed_and_moved_and_edits_reveal_in_order(
    browser_page: PageFactory,
) -> None:
    ada, bob = browser_page(), browser_page()
    sign_in(ada, "ada")
    sign_in(bob, "bob")
    made = ada.context.request.post(
        "/api/worlds", data={"name": "Marked", "tileset": "terrain", "seed": 7}
    )
    assert made.status == 201, made.text()
    world_id = made.json()["id"]
    open_world(ada, world_id)
    open_world(bob, world_id)
    box = ada.locator("#map").bounding_box()
    assert box
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

    # ada places a marker; both lists show it, only ada's has edit buttons
    ada.locator("#edit [data-tool=marker]").click()
    drag(ada, (cx, cy), (cx, cy))
    ada.locator("#marker-label").fill("Camp")
    ada.get_by_role("button", name="Place marker").click()
    for page in (ada, bob):
        expect(page.locator(".map-marker-label")).to_have_text("Camp")
    first = ada.locator("#edit .edit-markers li").first.inner_text()
    expect(bob.locator("#edit .edit-markers li")).to_have_count(1)
    expect(bob.locator("#edit .edit-markers button")).to_have_count(0)

    # ada renames it and moves it 3 cells to the right (a cell is 4 px at zoom 0)
    ada.locator("#edit .edit-markers li").first.get_by_role("button", name="edit").click()
    expect(ada.locator("#marker-label")).to_have_value("Camp")
    ada.locator("#marker-label").fill("Harbour")
    drag(ada, (cx + 12, cy), (cx + 12, cy))
    ada.get_by_role("button", name="Save marker").click()
    for page in (ada, bob):
        expect(page.locator(".map-marker-label")).to_have_text("Harbour")
        expect(page.locator("#edit .edit-markers li")).to_have_count(1)
    moved = bob.locator("#edit .edit-markers li").first.inner_text()
    assert moved != first.replace("Camp", "Harbour")  # the cell changed too
    x0 = int(first.split("(")[1].split(",")[0])
    x1 = int(moved.split("(")[1].split(",")[0])
    assert x1 == x0 + 3, (first, moved)
    expect(ada.get_by_role("button", name="Place marker")).to_be_visible()  # back to new ones
    screenshot(bob, "marker-moved")

    # ada regenerates a rectangle: bob's tiles are drawn in the solver's order (a canvas)
    bob.evaluate(WATCH)
    ada.locator("#edit [data-tool=select]").click()
    drag(ada, (cx - 80, cy - 80), (cx + 80, cy + 80))
    ada.get_by_role("button", name="Regenerate").click()
    expect(ada.locator("#edit .edit-status")).to_contain_text("done (version 1)")
    expect(bob.locator("img.world-tile-edited.world-tile-ordered").first).to_be_attached()
    added: list[str] = bob.evaluate("window.addedTiles")
    assert any(a.startswith("CANVAS") and "world-tile-ordered" in a for a in added), added
    # the cells appear step by step (never fewer than before), not all at once
    revealed: list[list[int]] = bob.evaluate("window.revealed")
    assert revealed
    grown = max(revealed, key=lambda counts: len(set(counts)))
    assert all(a <= b for a, b in pairwise(grown)), grown
    assert len(set(grown)) >= 4, grown
