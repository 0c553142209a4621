"""The chat panel in real Chromium: two people on one world chat, see who is here, see each
other's pings on the map, get an unread badge while the panel is collapsed, and hostile text
stays text. Screenshots land in ``out/test-artifacts/browser/``.
"""

from __future__ import annotations

import re

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

    # A ping from bob appears on ada's map with bob's name, and fades away.
    bob.locator("#chat-ping").click()
    ping = ada.locator(".map-ping .map-ping-label")
    expect(ping).to_have_count(1)
    expect(ping).to_have_text(bob_name)
    expect(bob.locator(".map-ping")).to_have_count(1)
    expect(ada.locator("#chat-log .chat-goto")).to_contain_text("pinged 0, 0")
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

    # Bob's socket goes through the test: pass-through while "online", refused while not.
    def on_socket(ws: WebSocketRoute) -> None:
        if not online[0]:
            ws.close(code=1001, reason="offline")
            return
        ws.connect_to_server()
        routes.append(ws)

    bob.route_web_socket(re.compile(r"/ws/worlds/"), on_socket)
    sign_in(ada, "ada")
    sign_in(bob, "bob")
    open_world(ada, world["id"])
    open_world(bob, world["id"])
    say(ada, "before")
    expect(bob.locator("#chat-log .chat-text")).to_have_text(["before"])

    online[0] = False
    routes[-1].close(code=1001, reason="network lost")
    expect(bob.locator("#chat-status")).to_have_text("reconnecting…")
    say(ada, "while you were away")
    say(bob, "sent while offline")
    expect(bob.locator("#chat-log .pending")).to_have_count(1)
    screenshot(bob, "chat-reconnecting")

    online[0] = True
    expect(bob.locator("#chat-status")).to_have_text("connected", timeout=30_000)
    # Replayed from bob's last stream id, and bob's pending message re-sent with its id: each
    # line once, in the same order on both pages.
    lines = ["before", "while you were away", "sent while offline"]
    expect(bob.locator("#chat-log .chat-text")).to_have_text(lines)
    expect(ada.locator("#chat-log .chat-text")).to_have_text(lines)
    expect(bob.locator("#chat-log .pending")).to_have_count(0)
