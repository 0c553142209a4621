"""Members, roles and invites over HTTP: each role x action, invite links end to end, the
creator's protection, and the bounds of every input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.security.conftest import SecClient, another, signed_in
from worldgen.store.worlds import WorldRecord, WorldRepo

pytestmark = pytest.mark.anyio

WHO = ("owner", "editor", "viewer", "outsider", "anonymous")


@dataclass
class Cast:
    """A world and one client per kind of person."""

    world: WorldRecord
    clients: dict[str, SecClient]
    ids: dict[str, str]
    target: str
    """A viewer that owner-only actions act on."""


async def user_id(client: SecClient) -> str:
    response = await client.get("/api/auth/me")
    assert response.status_code == 200
    uid: str = response.json()["id"]
    return uid


async def make_world(owner: SecClient, visibility: str, name: str = "Home") -> WorldRecord:
    """A world created by ``owner`` through the API (its owner and first member)."""
    response = await owner.post(
        "/api/worlds", json={"name": name, "tileset": "terrain", "visibility": visibility}
    )
    assert response.status_code == 201, response.text
    repo: WorldRepo = owner.app.state.store.worlds
    record = await repo.get(response.json()["id"])
    assert record is not None
    assert record.owner == await user_id(owner)
    return record


async def cast(client: SecClient, visibility: str, tag: str) -> Cast:
    owner = await signed_in(client, f"owner-{tag}")
    world = await make_world(owner, visibility)
    clients = {"owner": owner, "anonymous": await another(client)}
    ids = {"owner": await user_id(owner)}
    for who in ("editor", "viewer", "outsider", "target"):
        c = await signed_in(client, f"{who}-{tag}")
        clients[who] = c
        ids[who] = await user_id(c)
    members = client.security.members
    await members.add(world.id, ids["editor"], "editor")
    await members.add(world.id, ids["viewer"], "viewer")
    await members.add(world.id, ids["target"], "viewer")
    return Cast(world, clients, ids, ids["target"])


# status per who: owner, editor, viewer, outsider, anonymous
MATRIX: dict[str, dict[str, tuple[int, ...]]] = {
    "public": {
        "access": (200, 200, 200, 200, 200),
        "members": (200, 200, 200, 403, 401),
        "create_invite": (201, 403, 403, 403, 401),
        "list_invites": (200, 403, 403, 403, 401),
        "revoke_invite": (204, 403, 403, 403, 401),
        "change_role": (200, 403, 403, 403, 401),
        "remove_member": (204, 403, 403, 403, 401),
    },
    "private": {
        "access": (200, 200, 200, 404, 404),
        "members": (200, 200, 200, 404, 404),
        "create_invite": (201, 403, 403, 404, 404),
        "list_invites": (200, 403, 403, 404, 404),
        "revoke_invite": (204, 403, 403, 404, 404),
        "change_role": (200, 403, 403, 404, 404),
        "remove_member": (204, 403, 403, 404, 404),
    },
}


async def attempt(c: Cast, who: str, action: str) -> int:
    client = c.clients[who]
    base = f"/api/worlds/{c.world.id}"
    security = c.clients["owner"].security
    if action == "access":
        return (await client.get(f"{base}/access")).status_code
    if action == "members":
        return (await client.get(f"{base}/members")).status_code
    if action == "create_invite":
        return (await client.post(f"{base}/invites", json={"role": "viewer"})).status_code
    if action == "list_invites":
        return (await client.get(f"{base}/invites")).status_code
    if action == "revoke_invite":
        invite, _ = await security.members.create_invite(
            c.world.id, role="viewer", ttl_s=60, created_by=c.ids["owner"]
        )
        return (await client.delete(f"{base}/invites/{invite.id}")).status_code
    if action == "change_role":
        status = (
            await client.patch(f"{base}/members/{c.target}", json={"role": "editor"})
        ).status_code
        await security.members.set_role(c.world.id, c.target, "viewer")
        return status
    if action == "remove_member":
        status = (await client.delete(f"{base}/members/{c.target}")).status_code
        await security.members.add(c.world.id, c.target, "viewer")
        return status
    raise AssertionError(action)


@pytest.mark.parametrize("visibility", ["public", "private"])
async def test_each_role_and_action(client: SecClient, visibility: str) -> None:
    c = await cast(client, visibility, visibility[:3])
    got = {
        action: tuple([await attempt(c, who, action) for who in WHO])
        for action in MATRIX[visibility]
    }
    assert got == MATRIX[visibility]


async def test_access_reports_role_and_allowed_actions(client: SecClient) -> None:
    c = await cast(client, "private", "acc")
    expected = {
        "owner": [
            "view",
            "chat",
            "rename",
            "change",
            "delete",
            "members",
            "invite",
            "manage",
            "edit",
        ],
        "editor": ["view", "chat", "rename", "members", "edit"],
        "viewer": ["view", "chat", "members"],
    }
    for who, actions in expected.items():
        body = (await c.clients[who].get(f"/api/worlds/{c.world.id}/access")).json()
        assert body == {"role": who, "signed_in": True, "actions": actions}


async def test_private_world_is_indistinguishable_from_a_missing_one(client: SecClient) -> None:
    c = await cast(client, "private", "hid")
    for who in ("outsider", "anonymous"):
        for path in ("access", "members", "invites"):
            hidden = await c.clients[who].get(f"/api/worlds/{c.world.id}/{path}")
            missing = await c.clients[who].get(f"/api/worlds/nosuchworld1/{path}")
            assert hidden.status_code == missing.status_code == 404
            assert hidden.json() == missing.json()


async def test_invite_link_end_to_end(client: SecClient) -> None:
    owner = await signed_in(client, "olga")
    world = await make_world(owner, "private", "Olga's island")
    created = await owner.post(
        f"/api/worlds/{world.id}/invites", json={"role": "editor", "expires_in": 3600}
    )
    assert created.status_code == 201, created.text
    invite = created.json()
    token = invite["token"]
    assert invite["url"] == f"/invite#{token}"
    assert invite["role"] == "editor"
    listed = (await owner.get(f"/api/worlds/{world.id}/invites")).json()["invites"]
    assert [i["id"] for i in listed] == [invite["id"]]
    assert "token" not in listed[0]

    anon = await another(client)
    preview = await anon.post("/api/invites/preview", json={"token": token})
    assert preview.status_code == 200
    assert preview.json()["world_name"] == "Olga's island"
    assert (await anon.post("/api/invites/accept", json={"token": token})).status_code == 401

    paul = await signed_in(client, "paul")
    assert (await paul.get(f"/api/worlds/{world.id}/access")).status_code == 404
    joined = await paul.post("/api/invites/accept", json={"token": token})
    assert joined.status_code == 200
    assert joined.json() == {
        "world_id": world.id,
        "role": "editor",
        "changed": True,
        "page": f"/worlds/{world.id}",
    }
    access = (await paul.get(f"/api/worlds/{world.id}/access")).json()
    assert access["role"] == "editor"
    again = (await paul.post("/api/invites/accept", json={"token": token})).json()
    assert again["changed"] is False
    # the owner opening their own link stays the owner
    own = (await owner.post("/api/invites/accept", json={"token": token})).json()
    assert own["role"] == "owner"

    members = (await owner.get(f"/api/worlds/{world.id}/members")).json()["members"]
    assert [(m["username"], m["role"], m["creator"]) for m in members] == [
        ("olga", "owner", True),
        ("paul", "editor", False),
    ]
    # revoked: the link is dead for everyone
    assert (await owner.delete(f"/api/worlds/{world.id}/invites/{invite['id']}")).status_code == 204
    assert (await owner.delete(f"/api/worlds/{world.id}/invites/{invite['id']}")).status_code == 404
    quinn = await signed_in(client, "quinn")
    assert (await quinn.post("/api/invites/accept", json={"token": token})).status_code == 404
    assert (await quinn.post("/api/invites/preview", json={"token": token})).status_code == 404
    for bad in ("x", "a.b.c", "A" * 128, token + "x"):
        assert (await quinn.post("/api/invites/accept", json={"token": bad})).status_code == 404
    assert (await quinn.post("/api/invites/accept", json={"token": "A" * 129})).status_code == 422


async def test_roles_change_and_removal_take_effect_and_are_announced(client: SecClient) -> None:
    owner = await signed_in(client, "rita")
    world = await make_world(owner, "private")
    sam = await signed_in(client, "sam")
    sam_id = await user_id(sam)
    await client.security.members.add(world.id, sam_id, "viewer")
    fired: list[str] = []
    client.security.revocations.watch_access(world.id, sam_id, lambda: fired.append("x"))
    base = f"/api/worlds/{world.id}"
    promoted = await owner.patch(f"{base}/members/{sam_id}", json={"role": "owner"})
    assert promoted.status_code == 200
    assert promoted.json()["role"] == "owner"
    assert (await sam.get(f"{base}/invites")).status_code == 200  # a second owner
    assert (
        await owner.patch(f"{base}/members/{sam_id}", json={"role": "viewer"})
    ).status_code == 200
    assert (await sam.get(f"{base}/invites")).status_code == 403
    assert (await owner.delete(f"{base}/members/{sam_id}")).status_code == 204
    assert (await sam.get(f"{base}/access")).status_code == 404
    assert len(fired) == 3
    assert (await owner.delete(f"{base}/members/{sam_id}")).status_code == 404
    assert (
        await owner.patch(f"{base}/members/{sam_id}", json={"role": "viewer"})
    ).status_code == 404


async def test_the_creator_stays_owner_and_members_can_leave(client: SecClient) -> None:
    owner = await signed_in(client, "tina")
    world = await make_world(owner, "private")
    owner_id = await user_id(owner)
    co = await signed_in(client, "ugo")
    co_id = await user_id(co)
    await client.security.members.add(world.id, co_id, "owner")
    base = f"/api/worlds/{world.id}"
    for c in (owner, co):
        assert (
            await c.patch(f"{base}/members/{owner_id}", json={"role": "viewer"})
        ).status_code == 409
        assert (await c.delete(f"{base}/members/{owner_id}")).status_code == 409
    # the creator is owner even if the member hash says otherwise
    await client.security.members.set_role(world.id, owner_id, "viewer")
    assert (await owner.get(f"{base}/access")).json()["role"] == "owner"
    # anyone may leave
    assert (await co.delete(f"{base}/members/{co_id}")).status_code == 204
    assert (await co.get(f"{base}/access")).status_code == 404


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"role": "viewer", "expires_in": 59}, 422),
        ({"role": "viewer", "expires_in": 60}, 201),
        ({"role": "viewer", "expires_in": 30 * 86400}, 201),
        ({"role": "viewer", "expires_in": 30 * 86400 + 1}, 422),
        ({"role": "owner"}, 422),
        ({"role": "admin"}, 422),
        ({"max_uses": 1000}, 201),
        ({"max_uses": 1001}, 422),
        ({"max_uses": -1}, 422),
        ({"max_uses": False}, 422),  # a JSON integer, not a boolean
        ({"max_uses": "3"}, 422),
        ({"max_uses": 3.0}, 201),  # JSON Schema's integer
        ({"expires_in": True}, 422),
        ({"role": "viewer", "extra": 1}, 422),
    ],
)
async def test_invite_bounds(client: SecClient, body: dict[str, Any], status: int) -> None:
    owner = await signed_in(client, "vera")
    world = await make_world(owner, "private")
    assert (await owner.post(f"/api/worlds/{world.id}/invites", json=body)).status_code == status


async def test_path_ids_are_validated(client: SecClient) -> None:
    owner = await signed_in(client, "walt")
    world = await make_world(owner, "public")
    base = f"/api/worlds/{world.id}"
    assert (await owner.patch(f"{base}/members/bad", json={"role": "viewer"})).status_code == 422
    assert (await owner.delete(f"{base}/members/{'x' * 17}")).status_code == 422
    assert (await owner.delete(f"{base}/invites/short")).status_code == 422
