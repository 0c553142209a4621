"""Looking at a world in real Chromium: zooming from 2 to -6 and back never shows a blank tile
(the map's background is painted magenta and no screenshot may show it), and the map can be read:
the legend, the name of the cell under the cursor, the scale bar, "go to x, y", the copy-link
button and the grid. Every screenshot is kept in ``out/test-artifacts/browser/``
(``WORLDGEN_UPDATE_SCREENSHOT=1`` also refreshes the README's ``docs/screenshot.png``).
"""

from __future__ import annotations

import io
import os
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.web.browser.conftest import ARTIFACTS, PageFactory, Server, screenshot, sign_in
from tests.web.browser.test_pages import view_of, wait_for_map

ROOT = Path(__file__).resolve().parents[3]
MAGENTA = (255, 0, 255)
WAIT_MS = 300_000
PAINT_BACKGROUND_JS = "() => { document.getElementById('map').style.background = '#ff00ff'; }"


def blank_pixels(page: Page, name: str) -> int:
    """Pixels of the map (every 3rd in each direction) that show its magenta background; the
    screenshot is saved as ``<name>.png``."""
    box = page.locator("#map").bounding_box()
    assert box
    png = page.screenshot(clip=box)
    (ARTIFACTS / f"{name}.png").write_bytes(png)
    with Image.open(io.BytesIO(png)) as shot:
        rgb = shot.convert("RGB")
        w, h = rgb.size
        return sum(
            1 for y in range(0, h, 3) for x in range(0, w, 3) if rgb.getpixel((x, y)) == MAGENTA
        )


PLACEHOLDER_COVERS_JS = """() => [...document.querySelectorAll('.world-tile-placeholder')]
  .filter((c) => c.isConnected).map((c) => c.dataset.cover ?? 'unset')"""


@pytest.mark.parametrize("tileset", ["terrain", "lakes"])
def test_zooming_out_and_in_never_shows_a_blank_tile(
    browser_page: PageFactory, server: Server, tileset: str
) -> None:
    world = server.create_world(f"Zoom {tileset}", tileset=tileset, seed=42)
    page = browser_page(width=760, height=420)  # a 440 x 420 px map: about 6 tiles a view
    page.goto(f"{world['page']}#2/5000/-3000")  # far from anything this server drew before
    page.evaluate(PAINT_BACKGROUND_JS)
    wait_for_map(page, tiles=2, timeout_ms=WAIT_MS)
    blank: dict[str, int] = {}
    covers: set[str] = set()  # what the placeholders shown said they cover
    steps = [*range(1, -7, -1), *range(-5, 3)]
    for i, z in enumerate(steps):
        button = "Zoom out" if z < view_of(page)[0] else "Zoom in"
        page.get_by_role("button", name=button).click()
        page.wait_for_function(f"() => location.hash.startsWith('#{z}/')")
        # Right after the zoom (new tiles still on their way), and a moment later.
        for when in ("now", "soon"):
            name = f"zoom-{tileset}-{i:02d}-z{z}-{when}"
            blank[name] = blank_pixels(page, name)
            covers.update(page.evaluate(PLACEHOLDER_COVERS_JS))
            page.wait_for_timeout(150)
        # As a user looks at each view: its tiles and cover arrive (cold tiles at z = -1 and -2
        # take a while on the test server's one worker).
        wait_for_map(page, tiles=2, timeout_ms=WAIT_MS)
    assert not any(blank.values()), {k: v for k, v in blank.items() if v}
    assert view_of(page) == (2, 5000, -3000)
    # every painted placeholder says whether it covers its whole tile (bench.web's "view
    # covered" counts only those); zooming in, they are whole (scaled ancestors)
    assert "whole" in covers, covers
    assert covers <= {"whole", "part"}, covers


VIEW_TILES_JS = """() => {
  const map = document.getElementById('map').getBoundingClientRect();
  const levels = [...document.querySelectorAll('.world-tiles .leaflet-tile-container')];
  const top = levels.reduce((a, b) => (+b.style.zIndex > +a.style.zIndex ? b : a));
  const tiles = [...top.querySelectorAll('.world-tile')].filter((t) => {
    const r = t.getBoundingClientRect();
    return r.right > map.left && r.left < map.right && r.bottom > map.top && r.top < map.bottom;
  });
  const own = (t) => t.querySelector('img.world-tile-image') !== null;
  const whole = (t) => t.querySelector('canvas[data-cover="whole"]')?.isConnected === true;
  return {
    tiles: tiles.length,
    own: tiles.filter(own).length,
    covered: tiles.length > 0 && tiles.every((t) => own(t) || whole(t)),
  };
}"""


def test_a_jump_two_zooms_out_is_covered_before_its_cell_tiles_arrive(
    browser_page: PageFactory, server: Server
) -> None:
    """Two zooms out at once (a link, the hash): the tiles beyond the last view's far cover
    fetch their far ancestor, and those few cheap requests go before the new zoom's cell tiles
    (hundreds of milliseconds each), which the browser sends six at a time: the whole view
    shows the world while almost none of its own tiles has arrived."""
    world = server.create_world("Jump", tileset="terrain", seed=4242)
    # A 1,120 px map centred on a corner of z = -3 tiles (512 cells): the z = 0 view's far
    # cover (3 x its 280 cells) is those 2 x 2 tiles; the z = -2 view (1,120 cells) is wider.
    page = browser_page(width=1440, height=900)
    page.goto(f"{world['page']}#0/-7168/4096")  # far from anything this server drew before
    wait_for_map(page, tiles=2, timeout_ms=WAIT_MS)
    page.evaluate("() => { location.hash = '#-2/-7168/4096'; }")
    page.wait_for_function(f"() => ({VIEW_TILES_JS})().covered", timeout=WAIT_MS)
    got = page.evaluate(VIEW_TILES_JS)
    screenshot(page, "jump-covered")
    assert got["tiles"] >= 16, got  # the z = -2 view, its outer columns included
    # before: the outer columns' ancestors waited behind most of the view's own tiles
    assert got["own"] <= got["tiles"] // 4, got


FAR_TILES_JS = """() => {
  const far = (name) => /\\/-3\\/-?\\d+\\/-?\\d+\\.png/.test(name);
  return {
    early: (window.worldgenEarlyTiles || []).map((img) => img.src),
    fetched: performance.getEntriesByType('resource').map((e) => e.name).filter(far),
    view: [...document.querySelectorAll('.world-tiles .leaflet-tile img.world-tile-image')]
      .map((img) => img.src),
  };
}"""


def test_the_opening_views_far_tiles_are_asked_for_before_the_map_and_only_once(
    browser_page: PageFactory, server: Server
) -> None:
    world = server.create_world("Early", tileset="pipes", seed=42)
    page = browser_page(width=1280, height=800)
    page.goto(f"{world['page']}#0/3000/-2000")
    wait_for_map(page, tiles=2, timeout_ms=WAIT_MS)
    got = page.evaluate(FAR_TILES_JS)
    assert got["early"], got  # early-tiles.js ran
    # the placeholders' far tiles are the early ones: the browser handed them over, no request
    # was made twice
    assert len(got["fetched"]) == len(set(got["fetched"])), got
    assert set(got["early"]) <= set(got["fetched"]), got
    # ... and they cover the view: each z = 0 tile's z = -3 ancestor is one of them
    ancestors = set()
    for src in got["view"]:
        m = re.search(r"/0/(-?\d+)/(-?\d+)\.png", src)
        assert m, src
        ancestors.add(src[: m.start()] + f"/-3/{int(m[1]) // 8}/{int(m[2]) // 8}.png")
    assert ancestors, got
    assert ancestors <= set(got["early"]), (ancestors, got["early"])


def test_reading_the_map(browser_page: PageFactory, server: Server) -> None:
    world = server.create_world("Readable", tileset="terrain", seed=42)
    page = browser_page(width=1280, height=800)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(f"{world['page']}#2/0/0")
    wait_for_map(page)

    # The legend: the tileset's families with pictures, under their classes.
    legend = page.locator("#legend")
    expect(legend).to_be_visible()
    expect(legend.locator(".legend-group h3")).to_have_text(["ocean", "lowland", "highland"])
    expect(legend.locator(".legend-entry").first).to_contain_text("deep")
    expect(legend.locator(".legend-entry img").first).to_have_js_property("naturalWidth", 16)

    # The scale bar: 5 cells at 16 px a cell.
    expect(page.locator("#map-scale-text")).to_have_text("5 cells")
    bar = page.locator("#map-scale-bar").bounding_box()
    assert bar
    assert abs(bar["width"] - 80) <= 1

    # The cell under the cursor, named from a 1x1 region and the legend; its legend entry lit.
    box = page.locator("#map").bounding_box()
    assert box
    page.mouse.move(box["x"] + 100, box["y"] + 100)
    cursor = page.locator("#map-cursor")
    expect(cursor).to_have_text(re.compile(r"^\s*Cursor cell:\s*x -?\d+, y -?\d+ — [a-z ]+"))
    m = re.search(r"x (-?\d+), y (-?\d+) — ([a-z ]+?)(?: \((\w+)\))?$", cursor.inner_text())
    assert m, cursor.inner_text()
    x, y, name = int(m[1]), int(m[2]), m[3]
    region = page.context.request.get(f"/api/worlds/{world['id']}/region?x={x}&y={y}&w=1&h=1")
    label = region.json()["tiles"][region.json()["cells"][0]]
    assert name == label.rsplit(" ", 1)[0].replace("_", " ")
    expect(legend.locator(".legend-current")).to_have_count(1)
    screenshot(page, "map-cursor-name")

    # Go to a cell: the view centres on it (its hash says so); nonsense gets a message.
    page.locator("#goto-cell").fill("1200, -345")
    page.locator("#goto-cell").press("Enter")
    page.wait_for_function("() => location.hash === '#2/1200/-345'")
    expect(page.locator(".map-ping-local .map-ping-label")).to_have_text("1200, -345")
    page.locator("#goto-cell").fill("north")
    page.locator("#goto-cell").press("Enter")
    expect(page.locator("#goto-status")).to_contain_text("two whole numbers")
    assert view_of(page) == (2, 1200, -345)

    # Copy link: the clipboard holds the address of this view.
    page.get_by_role("button", name="Copy link").click()
    expect(page.locator("#copy-link-status")).to_have_text("Link copied: it opens this view.")
    assert page.evaluate("() => navigator.clipboard.readText()") == page.url

    # The grid: a line on every cell edge at z = 2 (16 px apart), and gone when unticked.
    page.get_by_label("Grid").check()
    expect(page.locator(".world-grid canvas").first).to_be_visible()
    wait_for_map(page)
    screenshot(page, "map-grid")
    page.get_by_label("Grid").uncheck()
    expect(page.locator(".world-grid")).to_have_count(0)


def test_readme_picture(browser_page: PageFactory, server: Server) -> None:
    """The README's picture: a terrain world at z = -4 (continents, coasts, biomes) seen by its
    owner (the edit tools enabled), with the panel open, the cursor naming its cell, and a ping
    with a label."""
    page = browser_page(width=1440, height=900)
    sign_in(page, "explorer")
    made = page.context.request.post(
        "/api/worlds", data={"name": "Archipelago", "tileset": "terrain", "seed": 42}
    )
    assert made.status == 201, made.text()
    world = made.json()
    page.goto(f"{world['page']}#-4/600/-100")
    expect(page.locator("#chat-status")).to_have_text("connected")
    wait_for_map(page, timeout_ms=WAIT_MS)
    box = page.locator("#map").bounding_box()
    assert box
    page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.45)
    expect(page.locator("#cursor-name")).not_to_be_empty(timeout=60_000)  # a cold block
    page.locator("#chat-input").fill("Meet at the bay?")
    page.locator("#chat-send").click()
    page.locator("#ping-label").fill("the bay")
    page.locator("#chat-ping").click()
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    expect(page.locator(".map-ping .map-ping-label")).to_contain_text("the bay")
    page.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.45)
    expect(page.locator("#cursor-name")).not_to_be_empty()
    page.evaluate("() => { document.getElementById('panel-body').scrollTop = 0; }")
    expect(page.locator("#edit .edit-toolbar button").first).to_be_enabled()
    screenshot(page, "world-desktop")
    if os.environ.get("WORLDGEN_UPDATE_SCREENSHOT"):
        shutil.copyfile(ARTIFACTS / "world-desktop.png", ROOT / "docs" / "screenshot.png")
