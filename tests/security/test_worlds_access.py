"""The world routes under the authorisation rules: each role x action on public and private
worlds (view, list, region, export, tiles, chat history, rename, delete), private worlds that are
indistinguishable from missing ones everywhere, creation needing an account and its rate limit,
and caching headers that keep private pictures out of shared caches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.security.conftest import ClientFactory, SecClient, another, signed_in
from worldgen.store.ratelimit import Limit, RateLimits
from worldgen.web.generation import InlineGenerator
from worldgen.world.spec import WorldSpec

pytestmark = pytest.mark.anyio

WHO = ("owner", "editor", "viewer", "outsider", "anonymous")
PNG = b"\x89PNG\r\n\x1a\nstub"


class QuickGenerator(InlineGenerator):
    """Real catalog and versions; tiny fixed pictures and regions (access, not drawing, is
    under test here)."""

    async def tile(self, spec: WorldSpec, z: int, x: int, y: int) -> bytes:
        return PNG

    async def export(self, spec: WorldSpec, x: int, y: int, w: int, h: int, scale: int) -> bytes:
        return PNG

    async def region(self, spec: WorldSpec, x: int, y: int, w: int, h: int) -> dict[str, Any]:
        return {"x": x, "y": y, "width": w, "height": h, "tiles": ["t 0"], "cells": [0] * (w * h)}


@dataclass
class Cast:
    world: dict[str, Any]
    clients: dict[str, SecClient]


async def create(client: SecClient, visibility: str, name: str = "Somewhere") -> dict[str, Any]:
    response = await client.post(
        "/api/worlds",
        json={"name": name, "tileset": "terrain", "seed": 5, "visibility": visibility},
    )
    assert response.status_code == 201, response.text
    world: dict[str, Any] = response.json()
    return world


async def cast(client: SecClient, visibility: str, tag: str) -> Cast:
    owner = await signed_in(client, f"own-{tag}")
    world = await create(owner, visibility)
    clients = {"owner": owner, "anonymous": await another(client)}
    for who in ("editor", "viewer", "outsider"):
        clients[who] = await signed_in(client, f"{who}-{tag}")
    members = client.security.members
    for role in ("editor", "viewer"):
        me = (await clients[role].get("/api/auth/me")).json()["id"]
        await members.add(world["id"], me, role)
    return Cast(world, clients)


@pytest.fixture
async def quick(make_client: ClientFactory) -> SecClient:
    return await make_client(generator=QuickGenerator())


READS: dict[str, str] = {
    "get": "/api/worlds/{id}",
    "region": "/api/worlds/{id}/region?x=0&y=0&w=2&h=2",
    "export": "/api/worlds/{id}/export.png?x=0&y=0&w=2&h=2&scale=1",
    "tiles": "/tiles/{id}/0/0/0.png",
    "history": "/api/worlds/{id}/chat",
    "page": "/worlds/{id}",
}


@pytest.mark.parametrize("visibility", ["public", "private"])
async def test_each_role_can_view_or_not(quick: SecClient, visibility: str) -> None:
    c = await cast(quick, visibility, visibility[:3])
    wid = c.world["id"]
    for who in WHO:
        client = c.clients[who]
        expected = 404 if visibility == "private" and who in ("outsider", "anonymous") else 200
        for action, path in READS.items():
            response = await client.get(path.format(id=wid))
            assert response.status_code == expected, (who, action, response.text)
        listed = [w["id"] for w in (await client.get("/api/worlds")).json()["worlds"]]
        assert (wid in listed) is (expected == 200), who
        home = (await client.get("/")).text
        assert ("Somewhere" in home) is (expected == 200), who


RENAME = {
    "public": {"owner": 200, "editor": 200, "viewer": 403, "outsider": 403, "anonymous": 401},
    "private": {"owner": 200, "editor": 200, "viewer": 403, "outsider": 404, "anonymous": 404},
}
DELETE = {
    "public": {"owner": 204, "editor": 403, "viewer": 403, "outsider": 403, "anonymous": 401},
    "private": {"owner": 204, "editor": 403, "viewer": 403, "outsider": 404, "anonymous": 404},
}


@pytest.mark.parametrize("visibility", ["public", "private"])
async def test_viewers_cannot_rename_editors_can_only_owners_delete(
    quick: SecClient, visibility: str
) -> None:
    c = await cast(quick, visibility, "r" + visibility[:3])
    wid = c.world["id"]
    for who, status in RENAME[visibility].items():
        response = await c.clients[who].patch(f"/api/worlds/{wid}", json={"name": f"by {who}"})
        assert response.status_code == status, (who, response.text)
    name = (await c.clients["owner"].get(f"/api/worlds/{wid}")).json()["name"]
    assert name == "by editor"  # the last rename that was allowed
    for who, status in DELETE[visibility].items():
        if who == "owner":
            continue
        response = await c.clients[who].delete(f"/api/worlds/{wid}")
        assert response.status_code == status, (who, response.text)
    assert (await c.clients["owner"].delete(f"/api/worlds/{wid}")).status_code == 204
    for who in WHO:
        assert (await c.clients[who].get(f"/api/worlds/{wid}")).status_code == 404
    # the world is gone from its members' lists and nothing of it is left
    members = await quick.security.members.list_members(wid)
    assert members == []


CHANGE_VISIBILITY: dict[str, dict[str, int]] = {
    "public": {"anonymous": 401, "outsider": 403, "viewer": 403, "editor": 403, "owner": 200},
    "private": {"anonymous": 404, "outsider": 404, "viewer": 403, "editor": 403, "owner": 200},
}


@pytest.mark.parametrize("visibility", ["public", "private"])
async def test_only_owners_change_visibility(quick: SecClient, visibility: str) -> None:
    c = await cast(quick, visibility, "v" + visibility[:3])
    wid = c.world["id"]
    flipped = "private" if visibility == "public" else "public"
    for who, status in CHANGE_VISIBILITY[visibility].items():
        if who == "owner":
            continue
        body = {"visibility": flipped}
        response = await c.clients[who].patch(f"/api/worlds/{wid}", json=body)
        assert response.status_code == status, (who, response.text)
        # a rename that slips a visibility change in is refused whole, not half applied
        both = await c.clients[who].patch(f"/api/worlds/{wid}", json={**body, "name": "sneaky"})
        assert both.status_code == status, (who, both.text)
    current = (await c.clients["owner"].get(f"/api/worlds/{wid}")).json()
    assert (current["visibility"], current["name"], current["version"]) == (
        visibility,
        "Somewhere",
        1,
    )
    changed = await c.clients["owner"].patch(f"/api/worlds/{wid}", json={"visibility": flipped})
    assert changed.status_code == 200
    assert changed.json()["visibility"] == flipped
    seen = await c.clients["outsider"].get(f"/api/worlds/{wid}")
    assert seen.status_code == (404 if flipped == "private" else 200)


async def test_a_world_made_private_stops_answering_cached_tiles(quick: SecClient) -> None:
    owner = await signed_in(quick, "curtain")
    wid = (await create(owner, "public"))["id"]
    stranger = await another(quick)
    tile = READS["tiles"].format(id=wid)
    first = await stranger.get(tile)
    assert first.status_code == 200
    assert "immutable" not in first.headers["cache-control"]  # caches must come back and ask
    etag = first.headers["etag"]
    assert (await stranger.get(tile, headers={"if-none-match": etag})).status_code == 304
    hidden = await owner.patch(f"/api/worlds/{wid}", json={"visibility": "private"})
    assert hidden.status_code == 200
    # the very next revalidation of the cached tile is refused like an unknown world's
    again = await stranger.get(tile, headers={"if-none-match": etag})
    assert again.status_code == 404


async def test_a_hidden_world_answers_exactly_like_a_missing_one(quick: SecClient) -> None:
    owner = await signed_in(quick, "hider")
    world = await create(owner, "private", "Hidden valley")
    outsider = await signed_in(quick, "seeker")
    anonymous = await another(quick)
    missing = "NoSuchWorld1"
    for client in (outsider, anonymous):
        for path in READS.values():
            hidden = await client.get(path.format(id=world["id"]))
            gone = await client.get(path.format(id=missing))
            assert hidden.status_code == gone.status_code == 404, path
            assert hidden.content == gone.content, path
            assert "Hidden valley" not in hidden.text
        for method, body in (("PATCH", {"name": "x"}), ("DELETE", None)):
            hidden = await client.request(method, f"/api/worlds/{world['id']}", json=body)
            gone = await client.request(method, f"/api/worlds/{missing}", json=body)
            assert (hidden.status_code, hidden.content) == (gone.status_code, gone.content)


async def test_creating_a_world_needs_an_account(quick: SecClient) -> None:
    anonymous = await another(quick)
    response = await anonymous.post("/api/worlds", json={"name": "x", "tileset": "terrain"})
    assert response.status_code == 401
    assert response.json() == {"detail": "sign in first"}
    owner = await signed_in(quick, "maker")
    world = await create(owner, "public")
    me = (await owner.get("/api/auth/me")).json()["id"]
    assert (await quick.security.members.role(world["id"], me)) == "owner"
    record = await quick.app.state.store.worlds.get(world["id"])
    assert record.owner == me


async def test_world_creation_limit_at_n_and_n_plus_one(make_client: ClientFactory) -> None:
    client = await make_client(
        generator=QuickGenerator(), rate_limits=RateLimits(world_create=Limit(count=3, window_s=60))
    )
    maker = await signed_in(client, "busy")
    for i in range(3):
        await create(maker, "public", f"w{i}")
    response = await maker.post("/api/worlds", json={"name": "one more", "tileset": "terrain"})
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 60
    other = await signed_in(client, "calm")  # per account: someone else may still create
    await create(other, "public")


async def test_private_pictures_stay_out_of_shared_caches(quick: SecClient) -> None:
    owner = await signed_in(quick, "painter")
    for visibility, scope in (("public", "public"), ("private", "private")):
        wid = (await create(owner, visibility))["id"]
        for path in (READS["tiles"], READS["export"]):
            response = await owner.get(path.format(id=wid))
            assert response.status_code == 200
            assert response.headers["cache-control"].startswith(scope + ","), path
        # a conditional request by a non-member of a private world learns nothing either
        etag = (await owner.get(READS["tiles"].format(id=wid))).headers["etag"]
        stranger = await another(quick)
        again = await stranger.get(READS["tiles"].format(id=wid), headers={"if-none-match": etag})
        assert again.status_code == (304 if visibility == "public" else 404)
