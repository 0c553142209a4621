"""The security journey in real Chromium, two people in two browser contexts: Alice registers,
creates a private world and makes an invite link (and copies it); Bob opens it, signs up on the
way and joins as a viewer; both chat; Bob cannot rename the world (no control, and the API says
403); Bob logs out in another tab and his chat connection ends; his old cookie no longer works.
No page breaks the Content-Security-Policy along the way. Too many wrong passwords are answered
with when to try again. Screenshots land in ``out/test-artifacts/browser/``.
"""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.accounts import PASSWORD, new_username
from tests.web.browser.conftest import PageFactory, Server, screenshot
from worldgen.web.auth.sessions import COOKIE_NAME


def watch_csp(page: Page, violations: list[str]) -> None:
    """Record console errors about the Content-Security-Policy."""

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            violations.append(message.text)

    page.on("console", on_console)


def register_on_login_page(page: Page, username: str) -> None:
    page.locator("#login-username").fill(username)
    page.locator("#login-password").fill(PASSWORD)
    page.locator("#register-submit").click()


def say(page: Page, text: str) -> None:
    page.locator("#chat-input").fill(text)
    page.locator("#chat-send").click()


def test_private_world_invite_chat_roles_and_logout(
    browser_page: PageFactory, server: Server
) -> None:
    violations: list[str] = []
    alice_name, bob_name = new_username("alice"), new_username("bob")

    # Alice signs up and creates a private world from the home page.
    alice = browser_page()
    watch_csp(alice, violations)
    alice.goto("/login")
    screenshot(alice, "security-login")
    register_on_login_page(alice, alice_name)
    alice.wait_for_url(f"{server.url}/")
    expect(alice.locator(".site-header .account-name")).to_have_text(alice_name)
    alice.get_by_label("Name").fill("Secret garden")
    alice.locator(".tileset-option", has_text="terrain").click()
    alice.locator('input[name="visibility"][value="private"]').check()
    alice.locator("#create-submit").click()
    alice.wait_for_url(re.compile(r"/worlds/[A-Za-z0-9_-]{8,32}#"))
    world_path = alice.url.split("#")[0].removeprefix(server.url)
    world_id = world_path.rsplit("/", 1)[1]
    expect(alice.locator("#chat-status")).to_have_text("connected")

    # The owner sees the owner's controls and makes an invite link for a viewer.
    expect(alice.locator("#people")).to_be_visible()
    expect(alice.locator("#rename-form")).to_be_visible()
    expect(alice.locator("#member-list .member")).to_have_count(1)
    alice.locator("#invite-role").select_option("viewer")
    alice.locator("#invite-create").click()
    link = alice.locator("#invite-link")
    expect(link).to_be_visible()
    invite_url = link.input_value()
    assert re.fullmatch(rf"{re.escape(server.url)}/invite#{world_id}\.[\w-]+\.[\w-]+", invite_url)
    expect(alice.locator("#invite-list .invite")).to_have_count(1)
    # The link is shown only now: one click copies it.
    alice.context.grant_permissions(["clipboard-read", "clipboard-write"])
    alice.get_by_role("button", name="Copy", exact=True).click()
    copied = "Invite link copied; it is shown only now."
    expect(alice.locator("#people-status")).to_have_text(copied)
    assert alice.evaluate("() => navigator.clipboard.readText()") == invite_url
    screenshot(alice, "security-owner-invites")

    # Bob, in another browser, cannot see the private world before joining...
    bob = browser_page()
    watch_csp(bob, violations)
    hidden = bob.goto(world_path)
    assert hidden is not None
    assert hidden.status == 404
    # ...opens the link, signs up on the way, and joins as a viewer.
    bob.goto(invite_url)
    expect(bob.locator("#invite-world")).to_have_text("Secret garden")
    expect(bob.locator("#invite-role")).to_have_text("viewer")
    screenshot(bob, "security-invite")
    bob.locator("#invite-login a").click()
    bob.wait_for_url(re.compile(r"/login\?next=%2Finvite$"))
    register_on_login_page(bob, bob_name)
    bob.wait_for_url(f"{server.url}/invite")
    bob.locator("#invite-join").click()
    bob.wait_for_url(re.compile(re.escape(world_path)))
    expect(bob.locator("#chat-status")).to_have_text("connected")

    # Both chat, under their account names.
    say(alice, "welcome, bob")
    expect(bob.locator("#chat-log .chat-text")).to_have_text(["welcome, bob"])
    expect(bob.locator("#chat-log .chat-who")).to_have_text([alice_name])
    say(bob, "thanks, alice")
    expect(alice.locator("#chat-log .chat-text")).to_have_text(["welcome, bob", "thanks, alice"])
    expect(alice.locator("#chat-people li")).to_have_count(2)
    screenshot(bob, "security-viewer-chat")

    # The viewer gets no rename, delete or invite controls, and the API refuses a rename.
    expect(bob.locator("#people")).to_be_visible()
    expect(bob.locator("#member-list .member")).to_have_count(2)
    for control in ("#rename-form", "#delete-world", "#invite-form", ".member-remove"):
        expect(bob.locator(control)).to_have_count(0)
    refused = bob.context.request.patch(f"/api/worlds/{world_id}", data={"name": "Bob's now"})
    assert refused.status == 403
    expect(bob.locator("#world-name")).to_have_text("Secret garden")

    # Bob logs out in another tab: the chat connection of his world page ends.
    cookies = {c["name"]: c["value"] for c in bob.context.cookies()}
    old_cookie = cookies[COOKIE_NAME]
    other_tab = bob.context.new_page()
    watch_csp(other_tab, violations)
    other_tab.goto("/")
    expect(other_tab.locator(".site-header .account-name")).to_have_text(bob_name)
    other_tab.locator(".account-logout").click()
    expect(other_tab.locator(".site-header .account-login")).to_be_visible()
    expect(bob.locator("#chat-status")).to_have_text("signed out", timeout=3_000)
    expect(bob.locator("#chat-input")).to_be_disabled()
    screenshot(bob, "security-signed-out")

    # The old cookie no longer works, in the browser or replayed by hand.
    with httpx.Client(base_url=server.url) as replay:
        replay.cookies.set(COOKIE_NAME, old_cookie)
        assert replay.get("/api/auth/me").status_code == 401
        assert replay.get(f"/api/worlds/{world_id}").status_code == 404
    gone = bob.goto(world_path)
    assert gone is not None
    assert gone.status == 404

    # Alice still has her world, and nobody broke the Content-Security-Policy.
    expect(alice.locator("#chat-status")).to_have_text("connected")
    assert not violations, violations


def test_too_many_wrong_passwords_say_when_to_try_again(browser_page: PageFactory) -> None:
    page = browser_page()
    username = new_username("forgetful")
    made = page.context.request.post(
        "/api/auth/register", data={"username": username, "password": PASSWORD}
    )
    assert made.status == 201
    page.context.clear_cookies()
    wrong = {"username": username, "password": "not the password"}
    statuses = [page.context.request.post("/api/auth/login", data=wrong).status for _ in range(10)]
    assert statuses == [401] * 10, statuses
    page.goto("/login")
    page.locator("#login-username").fill(username)
    page.locator("#login-password").fill(PASSWORD)  # the right one, too late
    page.locator("#login-submit").click()
    expect(page.locator("#login-error")).to_have_text(
        re.compile(r"^Too many attempts\. Try again in \d+ (second|minute|hour)s? \(at \d\d:\d\d")
    )
    screenshot(page, "security-login-wait")
