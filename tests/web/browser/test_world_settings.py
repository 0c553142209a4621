"""An owner's settings in real Chromium: a rename shows up live on the owner's other tab, a tab
that missed it cannot overwrite it (409: it shows the newer name instead), and the owner makes the
world private and public again, which a visitor's page notices. Signed-out pages never ask the
API who is signed in. Screenshots land in ``out/test-artifacts/browser/``.
"""

from __future__ import annotations

import re

from playwright.sync_api import ConsoleMessage, Page, Request, WebSocketRoute, expect

from tests.web.browser.conftest import PageFactory, Server, screenshot, sign_in


def open_world(page: Page, world_id: str) -> None:
    page.goto(f"/worlds/{world_id}#0/0/0")
    expect(page.locator("#chat-status")).to_have_text("connected")


def rename(page: Page, name: str) -> None:
    page.locator("#rename-input").fill(name)
    page.get_by_role("button", name="Rename").click()


def test_renames_are_live_and_a_stale_tab_cannot_overwrite_them(
    browser_page: PageFactory,
) -> None:
    first = browser_page()
    sign_in(first, "owner")
    made = first.context.request.post("/api/worlds", data={"name": "First", "tileset": "pipes"})
    assert made.status == 201
    world_id = made.json()["id"]
    second = first.context.new_page()  # the owner's other tab
    routes: list[WebSocketRoute] = []
    online = [True]

    def on_socket(ws: WebSocketRoute) -> None:  # the second tab's chat connection
        if not online[0]:
            ws.close(code=1001, reason="offline")
            return
        ws.connect_to_server()
        routes.append(ws)

    second.route_web_socket(re.compile(r"/ws/worlds/"), on_socket)
    open_world(first, world_id)
    open_world(second, world_id)

    # Live: the other tab's header and rename box follow.
    rename(first, "Second")
    expect(first.locator("#people-status")).to_have_text("Renamed.")
    expect(second.locator("#world-name")).to_have_text("Second")
    expect(second.locator("#rename-input")).to_have_value("Second")

    # The second tab loses its connection and misses the next rename...
    online[0] = False
    routes[-1].close(code=1001, reason="network lost")
    expect(second.locator("#chat-status")).to_have_text("reconnecting…")
    rename(first, "Third")
    expect(first.locator("#world-name")).to_have_text("Third")
    expect(second.locator("#world-name")).to_have_text("Second")
    # ...so its rename is refused (409) and it shows the newer name instead.
    rename(second, "Stale")
    expect(second.locator("#people-status")).to_contain_text("“Third”")
    expect(second.locator("#people-status")).to_contain_text("nothing was saved")
    expect(second.locator("#world-name")).to_have_text("Third")
    expect(second.locator("#rename-input")).to_have_value("Third")
    assert first.context.request.get(f"/api/worlds/{world_id}").json()["name"] == "Third"
    screenshot(second, "settings-stale-rename")

    # Visibility: private, and a signed-out visitor's page is told the world is gone for them.
    visitor = browser_page()
    open_world(visitor, world_id)
    first.locator("#visibility-select").select_option("private")
    expect(first.locator("#people-status")).to_have_text("Now private: only members see it.")
    expect(visitor.locator("#chat-status")).to_have_text("this world no longer exists")
    expect(visitor.locator("#chat-send")).to_be_disabled()
    hidden = visitor.goto(f"/worlds/{world_id}")
    assert hidden is not None
    assert hidden.status == 404
    screenshot(first, "settings-private")
    first.locator("#visibility-select").select_option("public")
    expect(first.locator("#people-status")).to_have_text("Now public.")
    shown = visitor.goto(f"/worlds/{world_id}")
    assert shown is not None
    assert shown.status == 200


def test_signed_out_pages_never_ask_who_is_signed_in(
    browser_page: PageFactory, server: Server
) -> None:
    world = server.create_world("Quiet", tileset="roads")
    page = browser_page()
    asked: list[str] = []
    errors: list[str] = []

    def on_request(request: Request) -> None:
        if request.url.endswith("/api/auth/me"):
            asked.append(request.url)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("request", on_request)
    page.on("console", on_console)
    for path in ("/", world["page"], "/login"):
        page.goto(path)
        expect(page.locator("[data-account] .account-login").first).to_be_visible()
    expect(page.locator("#chat-status")).to_have_count(0)  # the login page has no chat
    assert asked == []
    assert errors == []

    # Signed in, a page asks once (the account menu and the People section share the answer).
    name = sign_in(page, "asker")
    page.goto(world["page"])
    expect(page.locator(".panel-bar .account-name")).to_have_text(name)
    expect(page.locator("body")).to_have_attribute("data-role", "none")  # People has asked
    expect(page.locator("#chat-status")).to_have_text("connected")
    assert len(asked) == 1, asked
    assert errors == []
