"""The world's WebSocket under the authorisation rules, on real uvicorn servers and real
sockets: each role opens (or does not find) a world and chats (or may not); a private world is
indistinguishable from a missing one; foreign origins are refused at the handshake; logging out
closes that session's sockets within a second on every instance (and only those); a removed
member is disconnected, and so is everyone who may no longer see a world made private; the
per-account chat limit at N and N + 1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Coroutine
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.accounts import PASSWORD
from tests.security.conftest import LiveApp, LiveApps
from worldgen.settings import RealtimeSettings
from worldgen.store.client import connect as redis_connect
from worldgen.store.keys import Keys
from worldgen.store.members import MemberRepo
from worldgen.store.ratelimit import Limit, RateLimits
from worldgen.web.auth.sessions import COOKIE_NAME

Json = dict[str, Any]
TEST_TIMEOUT_S = 60.0


def run(coro: Coroutine[Any, Any, None]) -> None:
    """Run a test's body on a fresh loop; a hang fails it with a traceback, not the suite."""
    asyncio.run(asyncio.wait_for(coro, TEST_TIMEOUT_S))


class Person:
    """An HTTP client holding one session (or none) on a live app."""

    def __init__(self, app: LiveApp, name: str | None) -> None:
        self.app = app
        self.name = name
        self.http = httpx.AsyncClient(base_url=app.url, timeout=30)
        self.id = ""

    async def register(self) -> Person:
        if self.name is not None:
            body = {"username": self.name, "password": PASSWORD}
            response = await self.http.post("/api/auth/register", json=body)
            assert response.status_code == 201, response.text
            self.id = response.json()["id"]
        return self

    async def login_again(self) -> Person:
        """A second session of the same account (its own cookie jar)."""
        other = Person(self.app, self.name)
        body = {"username": self.name, "password": PASSWORD}
        response = await other.http.post("/api/auth/login", json=body)
        assert response.status_code == 200
        other.id = self.id
        return other

    @property
    def headers(self) -> dict[str, str]:
        token = self.http.cookies.get(COOKIE_NAME)
        headers = {"Origin": self.app.url}
        if token is not None:
            headers["Cookie"] = f"{COOKIE_NAME}={token}"
        return headers

    async def socket(self, world_id: str, app: LiveApp | None = None) -> ClientConnection:
        target = app or self.app
        headers = {**self.headers, "Origin": target.url}
        ws = await connect(target.ws(world_id), additional_headers=headers, open_timeout=10)
        # an unknown (or hidden) world is refused at once, maybe before the hello goes out;
        # what the server said stays readable either way
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json.dumps({"type": "hello"}))
        return ws

    async def close(self) -> None:
        await self.http.aclose()


async def next_frame(ws: ClientConnection, kind: str, timeout: float = 5) -> Json:
    while True:
        frame: Json = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if frame["type"] == kind:
            return frame


async def until_closed(ws: ClientConnection, timeout: float = 5) -> tuple[list[Json], int | None]:
    frames: list[Json] = []
    try:
        while True:
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), timeout)))
    except ConnectionClosed as closed:
        return frames, closed.rcvd.code if closed.rcvd is not None else None


async def chat(ws: ClientConnection, text: str) -> Json:
    """Send a chat message; the ack or the error about it."""
    msg_id = uuid.uuid4().hex
    await ws.send(json.dumps({"type": "chat", "id": msg_id, "text": text}))
    while True:
        frame: Json = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if frame["type"] in ("ack", "error") and frame.get("id") == msg_id:
            return frame


async def still_open(ws: ClientConnection) -> None:
    await ws.send(json.dumps({"type": "heartbeat"}))
    await next_frame(ws, "heartbeat")


async def make_world(owner: Person, visibility: str) -> str:
    response = await owner.http.post(
        "/api/worlds",
        json={"name": "Room", "tileset": "terrain", "seed": 3, "visibility": visibility},
        headers={"Origin": owner.app.url},
    )
    assert response.status_code == 201, response.text
    world_id: str = response.json()["id"]
    return world_id


async def people(app: LiveApp, tag: str) -> dict[str, Person]:
    cast = {
        who: await Person(app, None if who == "anonymous" else f"{who}-{tag}").register()
        for who in ("owner", "editor", "viewer", "outsider", "anonymous")
    }
    return cast


async def invite(owner: Person, world_id: str, member: Person, role: str) -> None:
    made = await owner.http.post(
        f"/api/worlds/{world_id}/invites", json={"role": role}, headers={"Origin": owner.app.url}
    )
    assert made.status_code == 201, made.text
    joined = await member.http.post(
        "/api/invites/accept", json={"token": made.json()["token"]}, headers=member.headers
    )
    assert joined.status_code == 200, joined.text


@pytest.mark.parametrize("visibility", ["public", "private"])
def test_each_role_on_the_socket(live_apps: LiveApps, visibility: str) -> None:
    (app,) = live_apps(1)

    async def main() -> None:
        cast = await people(app, visibility[:3])
        wid = await make_world(cast["owner"], visibility)
        await invite(cast["owner"], wid, cast["editor"], "editor")
        await invite(cast["owner"], wid, cast["viewer"], "viewer")
        unknown = await cast["outsider"].socket("NoSuchWorld1")
        missing = await until_closed(unknown)
        assert missing == (
            [{"type": "error", "code": "not_found", "message": "no such world"}],
            4404,
        )
        for who, person in cast.items():
            ws = await person.socket(wid)
            hidden = visibility == "private" and who in ("outsider", "anonymous")
            if hidden:  # exactly what the unknown world answered
                assert await until_closed(ws) == missing, who
                continue
            welcome = await next_frame(ws, "welcome")
            assert welcome["you"]["guest"] is (who == "anonymous"), who
            if who != "anonymous":
                assert welcome["you"]["name"] == person.name
                assert welcome["you"]["id"] == person.id
            answer = await chat(ws, f"hello from {who}")
            if who == "anonymous":
                assert (answer["type"], answer["code"]) == ("error", "sign_in_required")
                await still_open(ws)  # guests may keep watching
            else:
                assert answer["type"] == "ack", (who, answer)
            await ws.close()
        for person in cast.values():
            await person.close()

    run(main())


def test_foreign_origins_are_refused_at_the_handshake(live_apps: LiveApps) -> None:
    (app,) = live_apps(1)

    async def main() -> None:
        owner = await Person(app, "origin-owner").register()
        wid = await make_world(owner, "public")
        for origin in ("https://evil.example", "null", f"http://127.0.0.1:{app.port + 1}"):
            headers = {**owner.headers, "Origin": origin}
            with pytest.raises(InvalidStatus) as refused:
                await connect(app.ws(wid), additional_headers=headers, open_timeout=10)
            assert refused.value.response.status_code == 403, origin
        for headers in (owner.headers, {"Cookie": owner.headers["Cookie"]}):  # same origin; none
            ws = await connect(app.ws(wid), additional_headers=headers, open_timeout=10)
            await ws.send(json.dumps({"type": "hello"}))
            await next_frame(ws, "welcome")
            await ws.close()
        await owner.close()

    run(main())


def test_logout_closes_that_sessions_sockets_on_every_instance_within_a_second(
    live_apps: LiveApps,
) -> None:
    a, b = live_apps(2)

    async def main() -> None:
        here = await Person(a, "leaver").register()
        elsewhere = await here.login_again()  # the same account, another browser
        wid = await make_world(here, "private")
        on_b = await here.socket(wid, app=b)  # the socket lives on the other instance
        other_session = await elsewhere.socket(wid, app=b)
        await next_frame(on_b, "welcome")
        await next_frame(other_session, "welcome")
        token = here.http.cookies[COOKIE_NAME]
        started = time.monotonic()
        response = await here.http.post("/api/auth/logout", headers={"Origin": a.url})
        assert response.status_code == 204
        _, code = await until_closed(on_b, timeout=2)
        assert code == 4401
        assert time.monotonic() - started < 1.0
        await still_open(other_session)  # only that session's sockets close
        async with httpx.AsyncClient(base_url=b.url) as replay:
            replay.cookies.set(COOKIE_NAME, token)
            assert (await replay.get("/api/auth/me")).status_code == 401
        await other_session.close()
        for person in (here, elsewhere):
            await person.close()

    run(main())


def test_a_removed_member_is_disconnected_and_a_role_change_is_not(live_apps: LiveApps) -> None:
    a, b = live_apps(2)

    async def main() -> None:
        owner = await Person(a, "host").register()
        guest = await Person(a, "visitor").register()
        wid = await make_world(owner, "private")
        await invite(owner, wid, guest, "viewer")
        ws = await guest.socket(wid, app=b)
        await next_frame(ws, "welcome")
        base = f"/api/worlds/{wid}/members/{guest.id}"
        changed = await owner.http.patch(base, json={"role": "editor"}, headers=owner.headers)
        assert changed.status_code == 200
        await asyncio.sleep(0.3)
        await still_open(ws)
        started = time.monotonic()
        removed = await owner.http.delete(base, headers=owner.headers)
        assert removed.status_code == 204
        _, code = await until_closed(ws, timeout=2)
        assert code == 4404
        assert time.monotonic() - started < 1.0
        again = await guest.socket(wid)
        assert (await until_closed(again))[1] == 4404
        for person in (owner, guest):
            await person.close()

    run(main())


def test_making_a_world_private_closes_every_socket_that_may_no_longer_see_it(
    live_apps: LiveApps,
) -> None:
    a, b = live_apps(2)

    async def main() -> None:
        owner = await Person(a, "keeper").register()
        member = await Person(a, "insider").register()
        outsider = await Person(a, "outsider").register()
        anonymous = Person(a, None)
        wid = await make_world(owner, "public")
        await invite(owner, wid, member, "viewer")
        sockets = {
            "owner": await owner.socket(wid, app=b),
            "member": await member.socket(wid, app=b),
            "outsider": await outsider.socket(wid, app=b),
            "guest": await anonymous.socket(wid, app=b),
            "guest here": await anonymous.socket(wid),
        }
        for ws in sockets.values():
            await next_frame(ws, "welcome")
        started = time.monotonic()
        changed = await owner.http.patch(
            f"/api/worlds/{wid}", json={"visibility": "private"}, headers=owner.headers
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["visibility"] == "private"
        for name in ("outsider", "guest", "guest here"):  # on both instances
            _, code = await until_closed(sockets[name], timeout=2)
            assert code == 4404, name
        assert time.monotonic() - started < 1.5
        for name in ("owner", "member"):
            event = await next_frame(sockets[name], "world")
            assert (event["event"], event["visibility"]) == ("changed", "private")
            assert event["version"] == changed.json()["version"]
            await still_open(sockets[name])
        again = await anonymous.socket(wid)
        assert (await until_closed(again))[1] == 4404
        for ws in sockets.values():
            await ws.close()
        for person in (owner, member, outsider, anonymous):
            await person.close()

    run(main())


def test_chat_limit_per_account_at_n_and_n_plus_one(live_apps: LiveApps) -> None:
    (app,) = live_apps(1, rate_limits=RateLimits(chat=Limit(count=3, window_s=60)))

    async def main() -> None:
        talker = await Person(app, "talker").register()
        second = await talker.login_again()
        other = await Person(app, "listener").register()
        wid = await make_world(talker, "public")
        one, two, theirs = (
            await talker.socket(wid),
            await second.socket(wid),
            await other.socket(wid),
        )
        for ws in (one, two, theirs):
            await next_frame(ws, "welcome")
        answers = [await chat(one, "1"), await chat(two, "2"), await chat(one, "3")]
        assert [a["type"] for a in answers] == ["ack"] * 3  # N across the account's sockets
        refused = await chat(two, "4")  # N + 1
        assert (refused["type"], refused["code"]) == ("error", "rate_limited")
        assert "wait" in refused["message"]
        await still_open(two)  # refused, not disconnected
        assert (await chat(theirs, "mine"))["type"] == "ack"  # another account is unaffected
        for ws in (one, two, theirs):
            await ws.close()
        for person in (talker, second, other):
            await person.close()

    run(main())


@pytest.mark.standalone_only("kills the pub/sub connections of one server")
def test_a_member_removed_while_pubsub_was_down_loses_the_socket_after_the_reconnect(
    live_apps: LiveApps,
) -> None:
    (app,) = live_apps(1)

    async def main() -> None:
        owner = await Person(app, "reowner").register()
        member = await Person(app, "removed-quietly").register()
        wid = await make_world(owner, "private")
        await invite(owner, wid, member, "viewer")
        ws = await member.socket(wid)
        await next_frame(ws, "welcome")
        settings = app.app.state.settings
        redis = redis_connect(settings.redis_url)
        try:
            # the removal's announcement is lost (what happens while the listener is away)
            assert await MemberRepo(redis, Keys(settings.key_prefix)).remove(wid, member.id)
            await asyncio.sleep(0.3)
            await still_open(ws)  # nobody told this instance yet
            await redis.client_kill_filter(_type="pubsub")  # the listener reconnects
        finally:
            await redis.aclose()
        _, code = await until_closed(ws, timeout=5)
        assert code == 4404
        for person in (owner, member):
            await person.close()

    run(main())


def test_a_socket_closes_when_its_session_expires(live_apps: LiveApps) -> None:
    (app,) = live_apps(
        1,
        session_idle_s=2,
        session_max_s=2,
        realtime=RealtimeSettings(maintenance_s=0.25, heartbeat_s=0.5, presence_timeout_s=30),
    )

    async def main() -> None:
        started = time.monotonic()  # before the session exists: it cannot end 2 s before this
        person = await Person(app, "expiring").register()
        wid = await make_world(person, "public")
        ws = await person.socket(wid)
        await next_frame(ws, "welcome")
        closed: list[int | None] = []

        async def heartbeats() -> None:  # the socket is kept alive by its heartbeats
            with contextlib.suppress(ConnectionClosed):
                while not closed:
                    await ws.send(json.dumps({"type": "heartbeat"}))
                    await asyncio.sleep(0.3)

        beat = asyncio.create_task(heartbeats())
        _, code = await until_closed(ws, timeout=6)
        closed.append(code)
        await beat
        assert code == 4401
        # not before the session ended (measured from before it began, so a slow set-up on a
        # loaded machine cannot eat into the margin; 0.1 s for the clocks of two processes)
        assert time.monotonic() - started >= 1.9
        me = await person.http.get("/api/auth/me")
        assert me.status_code == 401
        await person.close()

    run(main())
