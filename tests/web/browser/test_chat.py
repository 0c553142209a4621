"""The chat panel in real Chromium: two people on one world chat, see who is here, see each
other's pings where they clicked on the map (with a label), get an unread badge while the panel
is collapsed, and hostile text stays text; through a flaky connection lines keep their author,
a refused line offers a retry, and a deleted world disables Send and Ping. Screenshots land in
``out/test-artifacts/browser/``.
"""

from __future__ import annotations

import json
import re

import httpx
from playwright.sync_api import Page, WebSocketRoute, expect

from tests.web.browser.conftest import PageFactory, Server, screenshot, sign_in

XSS = "<img src=x onerror=alert(1)>"


def open_world(page: Page, world_id: str) -> None:
    page.goto(f"/worlds/{world_id}#0/0/0")
    expect(page.locator("#chat-status")).to_have_text("connected")


def say(page: Page, text: str) -> None:
    page.locator("#chat-input").fill(text)
    page.locator("#chat-send").click()


def test_two_people_chat_and_see_each_others_pings(
    browser_page: PageFactory, server: Server
) -> None:
    world = server.create_world("Chat room")
    ada, bob = browser_page(), browser_page()
    ada_name, bob_name = sign_in(ada, "ada"), sign_in(bob, "bob")  # chatting needs an account
    open_world(ada, world["id"])
    open_world(bob, world["id"])

    # Who is here: both, on both pages.
    for page in (ada, bob):
        expect(page.locator("#chat-people li")).to_have_count(2)
    expect(bob.locator("#chat-people")).to_contain_text(ada_name)

    say(ada, "hello from ada")
    expect(bob.locator("#chat-log .chat-text")).to_have_text(["hello from ada"])
    expect(ada.locator("#chat-log .chat-text")).to_have_text(["hello from ada"])
    expect(ada.locator("#chat-log .pending")).to_have_count(0)  # acknowledged and delivered
    say(bob, "hi ada")
    expect(ada.locator("#chat-log .chat-text")).to_have_text(["hello from ada", "hi ada"])

    # Bob pings the place he clicks, with a label: it appears there on ada's map with bob's
    # name and the label, and fades away.
    bob.locator("#ping-label").fill("look here")
    bob.locator("#chat-ping").click()
    expect(bob.locator("#chat-ping")).to_have_attribute("aria-pressed", "true")
    box = bob.locator("#map").bounding_box()
    assert box
    where = (box["x"] + 150, box["y"] + 120)
    bob.mouse.move(*where)
    m = re.fullmatch(r"x (-?\d+), y (-?\d+)", bob.locator("#cursor-cell").inner_text())
    assert m
    bob.mouse.click(*where)
    ping = ada.locator(".map-ping .map-ping-label")
    expect(ping).to_have_count(1)
    expect(ping).to_have_text(f"{bob_name}: look here")
    expect(bob.locator(".map-ping")).to_have_count(1)
    expect(bob.locator("#chat-ping")).to_have_attribute("aria-pressed", "false")
    expect(ada.locator("#chat-log .chat-goto")).to_have_text(f"pinged {m[1]}, {m[2]} — look here")
    dot = ada.locator(".map-ping .map-ping-dot").bounding_box()
    assert dot
    # The same view on both pages: the dot sits where bob clicked (within the 4-px cell).
    assert abs(dot["x"] + dot["width"] / 2 - where[0]) <= 4
    assert abs(dot["y"] + dot["height"] / 2 - where[1]) <= 4
    screenshot(ada, "chat-two-people")
    expect(ping).to_have_count(0, timeout=15_000)

    # Unread badge while ada's panel is collapsed; cleared when it opens again.
    ada.locator("#panel-toggle").click()
    say(bob, "are you there?")
    expect(ada.locator("#chat-unread")).to_have_text("1 unread")
    screenshot(ada, "chat-unread-badge")
    ada.locator("#panel-toggle").click()
    expect(ada.locator("#chat-unread")).to_be_hidden()


def test_hostile_text_is_shown_as_text_and_runs_nothing(
    browser_page: PageFactory, server: Server
) -> None:
    world = server.create_world("XSS chat")
    ada, bob = browser_page(), browser_page()
    sign_in(ada, "ada")  # the sender needs an account; bob watches as a guest
    open_world(ada, world["id"])
    open_world(bob, world["id"])
    say(ada, XSS)
    for page in (ada, bob):
        expect(page.locator("#chat-log .chat-text")).to_have_text([XSS])
        assert page.locator("#chat-log img").count() == 0
        assert page.locator("#chat img, .leaflet-marker-pane img").count() == 0
    # Reloading replays it from history, still as text (the fixture fails on any dialog).
    bob.reload()
    expect(bob.locator("#chat-status")).to_have_text("connected")
    expect(bob.locator("#chat-log .chat-text")).to_have_text([XSS])
    assert bob.locator("#chat-log img").count() == 0
    screenshot(bob, "chat-xss-as-text")


def test_reconnect_shows_its_state_replays_and_resends(
    browser_page: PageFactory, server: Server
) -> None:
    world = server.create_world("Flaky network")
    ada, bob = browser_page(), browser_page()
    routes: list[WebSocketRoute] = []
    online = [True]

    refuse = ["refuse me"]  # bob's lines the "server" turns down, once each

    # Bob's socket goes through the test: pass-through while "online", refused while not; a
    # chat line in `refuse` gets an error frame instead of reaching the server.
    def on_socket(ws: WebSocketRoute) -> None:
        if not online[0]:
            ws.close(code=1001, reason="offline")
            return
        server_side = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            frame = json.loads(message) if isinstance(message, str) else {}
            if frame.get("type") == "chat" and frame.get("text") in refuse:
                refuse.remove(frame["text"])
                error = {"type": "error", "code": "rate_limited", "message": "slow down"}
                ws.send(json.dumps(error | {"id": frame["id"]}))
                return
            server_side.send(message)

        ws.on_message(from_page)
        routes.append(ws)

    bob.route_web_socket(re.compile(r"/ws/worlds/"), on_socket)
    sign_in(ada, "ada")
    bob_name = sign_in(bob, "bob")
    open_world(ada, world["id"])
    open_world(bob, world["id"])
    say(ada, "before")
    expect(bob.locator("#chat-log .chat-text")).to_have_text(["before"])

    online[0] = False
    routes[-1].close(code=1001, reason="network lost")
    expect(bob.locator("#chat-status")).to_have_text("reconnecting…")
    say(ada, "while you were away")
    say(bob, "sent while offline")
    pending = bob.locator("#chat-log .pending")
    expect(pending).to_have_count(1)
    expect(pending.locator(".chat-who")).to_have_text(bob_name)  # never "guest-…"
    expect(pending.locator(".chat-time")).to_have_text("waiting for the connection…")
    screenshot(bob, "chat-reconnecting")

    online[0] = True
    expect(bob.locator("#chat-status")).to_have_text("connected", timeout=30_000)
    # Replayed from bob's last stream id, and bob's pending message re-sent with its id: each
    # line once, in the same order on both pages.
    lines = ["before", "while you were away", "sent while offline"]
    expect(bob.locator("#chat-log .chat-text")).to_have_text(lines)
    expect(ada.locator("#chat-log .chat-text")).to_have_text(lines)
    expect(bob.locator("#chat-log .pending")).to_have_count(0)

    # A line the server refuses says so and offers a retry, which sends it (same id).
    say(bob, "refuse me")
    failed = bob.locator("#chat-log .failed")
    expect(failed.locator(".chat-time")).to_have_text("not sent")
    expect(failed).to_contain_text("slow down")
    screenshot(bob, "chat-failed-retry")
    failed.get_by_role("button", name="Retry").click()
    expect(ada.locator("#chat-log .chat-text")).to_have_text([*lines, "refuse me"])
    expect(bob.locator("#chat-log .chat-text")).to_have_text([*lines, "refuse me"])
    expect(bob.locator("#chat-log .failed, #chat-log .pending")).to_have_count(0)

    # The world is deleted: Send and the ping controls are disabled, and the page says why.
    with httpx.Client(base_url=server.url, cookies=server.cookies) as owner:
        assert owner.delete(f"/api/worlds/{world['id']}").status_code == 204
    expect(bob.locator("#chat-status")).to_have_text("world deleted")
    for control in ("#chat-send", "#chat-input", "#chat-ping", "#ping-label"):
        expect(bob.locator(control)).to_be_disabled()
