"""The web UI in real Chromium against a real ``worldgen serve``: create a world from the home
page, see its tiles, pan and zoom (never a blank tile on the way), reopen a ``#z/x/y`` link,
read the map (legend, the name under the cursor, scale, go to, copy link, grid), export a PNG,
use a phone-sized screen, and show hostile world names as text. Screenshots land in
``out/test-artifacts/browser/``.
"""

from __future__ import annotations

import io
import re

from PIL import Image
from playwright.sync_api import Page, Route, expect

from tests.web.browser.conftest import ARTIFACTS, PageFactory, Server, screenshot, sign_in

HASH = re.compile(r"#(-?\d+)/(-?\d+)/(-?\d+)$")
XSS_NAME = "<img src=x onerror=alert(1)>"

# Distinct colours of each loaded tile (sampled), read back through a canvas: the tiles are
# same-origin, so the canvas is not tainted.
TILE_COLOURS_JS = """() => [...document.querySelectorAll('.world-tiles .leaflet-tile-loaded img')]
  .map((img) => {
    const c = document.createElement('canvas');
    c.width = c.height = 256;
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, 256, 256).data;
    const seen = new Set();
    for (let i = 0; i < d.length; i += 4 * 61) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    return {w: img.naturalWidth, h: img.naturalHeight, colours: seen.size, src: img.src};
  })"""


def view_of(page: Page) -> tuple[int, int, int]:
    """(z, x, y) from the page's URL hash."""
    m = HASH.search(page.url)
    assert m, f"no #z/x/y hash in {page.url}"
    z, x, y = (int(g) for g in m.groups())
    return z, x, y


def wait_for_map(page: Page, tiles: int = 4, timeout_ms: float | None = None) -> None:
    """Until at least ``tiles`` tiles are shown, none is still loading, the far-zoom cover (the
    placeholders of the next move) has loaded, and the loading indicator has gone."""
    page.wait_for_function(
        f"""() => {{
          const all = [...document.querySelectorAll('.world-tiles .leaflet-tile')];
          const done = all.filter((t) => t.classList.contains('leaflet-tile-loaded'));
          return done.length >= {tiles} && done.length === all.length
            && document.getElementById('map').dataset.cover === '0';
        }}""",
        timeout=timeout_ms,
    )
    expect(page.locator("#map-loading")).to_be_hidden()


def wait_for_images(page: Page) -> None:
    """Until every image on screen has loaded (before a screenshot; lazy ones below wait)."""
    page.wait_for_function(
        """() => [...document.images].every((i) => (i.complete && i.naturalWidth > 0)
          || (i.loading === 'lazy' && i.getBoundingClientRect().top > innerHeight))"""
    )


def test_create_world_from_home_page(browser_page: PageFactory, server: Server) -> None:
    page = browser_page()
    sign_in(page, "maker")  # creating a world needs an account
    page.goto("/")
    expect(page.locator(".tileset-option")).not_to_have_count(0)
    page.get_by_label("Name").fill("Northern Isles")
    page.locator(".tileset-option", has_text="terrain").click()
    expect(page.locator('input[name="tileset"][value="terrain"]')).to_be_checked()
    page.get_by_role("button", name="Random").click()
    assert page.get_by_label("Seed").input_value().isdigit()
    page.get_by_label("Seed").fill("42")  # a known world: land and sea around the origin
    wait_for_images(page)
    screenshot(page, "home-form")
    page.get_by_role("button", name="Create world").click()

    page.wait_for_url(re.compile(r"/worlds/[A-Za-z0-9_-]{8,32}#0/0/0$"))
    world_path = page.url.split("#")[0].removeprefix(server.url)
    expect(page.locator("#world-name")).to_have_text("Northern Isles")
    wait_for_map(page)
    tiles = page.evaluate(TILE_COLOURS_JS)
    assert all(t["w"] == 256 and t["h"] == 256 for t in tiles), tiles
    assert all(t["colours"] >= 2 for t in tiles), tiles  # drawn terrain, not blank tiles
    assert max(t["colours"] for t in tiles) >= 8, tiles  # more than one kind of ground
    screenshot(page, "world-created")

    page.goto("/")
    card = page.locator(".world-card", has=page.locator(f'a[href="{world_path}"]'))
    expect(card.locator(".world-name")).to_have_text("Northern Isles")
    expect(card.locator("img")).to_have_js_property("naturalWidth", 256)
    wait_for_images(page)
    screenshot(page, "home-list")


def test_create_form_shows_api_errors_inline(browser_page: PageFactory) -> None:
    page = browser_page()

    def reject(route: Route) -> None:
        body = '{"detail": [{"loc": ["body", "name"], "msg": "name is taken by the moon"}]}'
        route.fulfill(status=422, content_type="application/json", body=body)

    def reject_seed(route: Route) -> None:
        body = '{"detail": [{"loc": ["body", "seed"], "msg": "Value error, too lucky"}]}'
        route.fulfill(status=422, content_type="application/json", body=body)

    page.route("**/api/worlds", reject)
    page.goto("/")
    expect(page.locator(".tileset-option")).not_to_have_count(0)
    page.get_by_role("button", name="Create world").click()
    expect(page.locator("#create-error")).to_have_text("Give the world a name.")
    page.get_by_label("Name").fill("Moon")
    page.get_by_role("button", name="Create world").click()
    expect(page.locator("#create-error")).to_have_text("Name is taken by the moon")
    page.unroute("**/api/worlds")
    page.route("**/api/worlds", reject_seed)  # a message that does not name its field
    page.get_by_role("button", name="Create world").click()
    expect(page.locator("#create-error")).to_have_text("seed: too lucky")
    expect(page).to_have_url(re.compile(r"/$"))


def test_pan_and_zoom_update_the_hash(browser_page: PageFactory, server: Server) -> None:
    world = server.create_world("Coral Coast", seed=7)
    page = browser_page()
    page.goto(f"{world['page']}#0/0/0")
    wait_for_map(page)
    box = page.locator("#map").bounding_box()
    assert box
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx - 120, cy - 80, steps=8)
    page.mouse.move(cx - 200, cy - 100, steps=4)
    page.mouse.up()
    # Dragging the map up and left shows what lies right and below: 4 px per cell at z = 0, so
    # (50, 25) cells, and more if the drag's inertia carries the map on.
    page.wait_for_function("() => location.hash !== '#0/0/0'")  # a function: the CSP forbids eval
    z, x, y = view_of(page)
    assert z == 0
    assert 45 <= x <= 150, page.url
    assert 20 <= y <= 80, page.url
    expect(page.locator("#view-centre")).to_have_text(f"{x}, {y}")
    expect(page.locator("#cursor-cell")).to_have_text(re.compile(r"^x -?\d+, y -?\d+$"))

    page.get_by_role("button", name="Zoom in").click()
    page.wait_for_function("() => location.hash.startsWith('#1/')")
    assert view_of(page)[1:] == (x, y)
    page.locator("#map").focus()
    for z in (0, -1):  # one key at a time: Leaflet drops a zoom asked for during an animation
        page.keyboard.press("Minus")
        page.wait_for_function(f"() => location.hash.startsWith('#{z}/')")
    wait_for_map(page)


def test_loading_indicator_shows_while_tiles_load(
    browser_page: PageFactory, server: Server
) -> None:
    world = server.create_world("Slow tiles", seed=13)
    page = browser_page()
    held: list[Route] = []
    released = False

    def hold(route: Route) -> None:  # every tile request waits until the test releases them
        if released:
            route.continue_()
        else:
            held.append(route)

    page.route("**/tiles/**", hold)
    page.goto(world["page"], wait_until="domcontentloaded")  # "load" would wait for the tiles
    loading = page.locator("#map-loading")
    expect(loading).to_have_text(re.compile(r"^Loading tiles… \(\d+\)$"))
    expect(loading).to_be_visible()
    screenshot(page, "world-loading")
    released = True
    for route in held:
        route.continue_()
    wait_for_map(page)


def test_reload_from_a_hash_link_lands_on_the_same_view(
    browser_page: PageFactory, server: Server
) -> None:
    world = server.create_world("Linked view", seed=11)
    page = browser_page()
    page.goto(f"{world['page']}#1/123/-45")
    wait_for_map(page)
    for _ in range(2):
        assert view_of(page) == (1, 123, -45)
        expect(page.locator("#view-zoom")).to_have_text("1")
        expect(page.locator("#view-centre")).to_have_text("123, -45")
        # Cell (123, -45) lies in tile (1, 3, -2) (32 cells a side at z = 1): that tile must be
        # drawn under the map's centre, which checks the CRS against the server's tile grid.
        tile = page.locator('.world-tiles img[src$="/1/3/-2.png"]')
        tb, mb = tile.bounding_box(), page.locator("#map").bounding_box()
        assert tb
        assert mb
        centre = (mb["x"] + mb["width"] / 2, mb["y"] + mb["height"] / 2)
        # The centre cell's middle, at 8 px per cell: (123 - 96 + 0.5, -45 + 64 + 0.5) cells in.
        assert abs(tb["x"] + 27.5 * 8 - centre[0]) <= 1
        assert abs(tb["y"] + 19.5 * 8 - centre[1]) <= 1
        page.reload()
        wait_for_map(page)

    page.evaluate("location.hash = '#2/-7/9'")
    expect(page.locator("#view-centre")).to_have_text("-7, 9")
    expect(page.locator("#view-zoom")).to_have_text("2")


def test_export_the_visible_area_as_png(browser_page: PageFactory, server: Server) -> None:
    world = server.create_world("Export me", seed=3)
    page = browser_page(width=1024, height=640)
    page.goto(f"{world['page']}#2/10/10")
    wait_for_map(page)
    note = page.locator("#export-note")
    expect(note).to_have_text(re.compile(r"^Exports the visible area \(\d+×\d+ cells"))
    m = re.search(r"\((\d+)×(\d+) cells, (\d+)×(\d+) px\)", note.inner_text())
    assert m
    w, h, pw, ph = (int(g) for g in m.groups())
    with page.expect_download() as info:
        page.get_by_role("button", name="Export PNG of the view").click()
    download = info.value
    expect(page.locator("#export-status")).to_have_text("Exported.")
    path = ARTIFACTS / "export.png"
    download.save_as(path)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (pw, ph)
        assert len(image.convert("RGB").getcolors(1 << 16) or []) > 1  # not blank
    # The panel's width hides part of the map; the visible map is about 700 x 640 px at 16 px/cell.
    assert 40 <= w <= 60, w
    assert 35 <= h <= 50, h

    page.evaluate("location.hash = '#-6/0/0'")
    expect(note).to_have_text(re.compile(r"larger than 1024×1024 cells: the export covers"))


def test_phone_layout(browser_page: PageFactory, server: Server) -> None:
    world = server.create_world("Pocket world", seed=5)
    page = browser_page(width=375, height=740)
    page.goto(world["page"])
    wait_for_map(page, tiles=2)
    map_box = page.locator("#map").bounding_box()
    panel_box = page.locator("#panel").bounding_box()
    assert map_box
    assert panel_box
    assert map_box["width"] == 375, map_box
    assert map_box["height"] >= 350, map_box
    assert panel_box["y"] >= map_box["y"] + map_box["height"] - 1, (map_box, panel_box)
    assert panel_box["y"] + panel_box["height"] <= 740 + 1
    expect(page.get_by_role("button", name="Export PNG of the view")).to_be_visible()
    expect(page.locator("#chat")).to_be_attached()
    screenshot(page, "world-phone")

    toggle = page.get_by_role("button", name="Hide panel")
    toggle.click()
    expect(page.locator("#panel-body")).to_be_hidden()
    show = page.get_by_role("button", name="Show panel")
    expect(show).to_have_attribute("aria-expanded", "false")
    page.wait_for_function(
        "() => document.querySelector('#map').getBoundingClientRect().height > 600"
    )
    wait_for_map(page)
    screenshot(page, "world-phone-collapsed")
    show.click()
    expect(page.locator("#world-name")).to_be_visible()

    page.goto("/")
    expect(page.get_by_role("button", name="Create world")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    expect(page.locator(".tileset-option")).not_to_have_count(0)
    wait_for_images(page)
    screenshot(page, "home-phone")


def test_hostile_world_name_shows_as_text(browser_page: PageFactory, server: Server) -> None:
    world = server.create_world(XSS_NAME, seed=9)
    page = browser_page()
    page.goto("/")
    card = page.locator(".world-card", has=page.locator(f'a[href="{world["page"]}"]'))
    expect(card.locator(".world-name")).to_have_text(XSS_NAME)
    assert page.locator('img[src="x"]').count() == 0
    page.goto(world["page"])
    expect(page.locator("#world-name")).to_have_text(XSS_NAME)
    assert page.title().startswith(XSS_NAME)
    assert page.locator('img[src="x"]').count() == 0
    page.wait_for_timeout(300)  # give an injected handler the chance to fire (it must not)


def test_unknown_world_is_an_html_404(browser_page: PageFactory) -> None:
    page = browser_page()
    response = page.goto("/worlds/NoSuchWorld123")
    assert response
    assert response.status == 404
    assert "text/html" in response.headers["content-type"]
    expect(page.get_by_role("heading", name="World not found")).to_be_visible()
