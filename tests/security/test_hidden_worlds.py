"""A private world is indistinguishable from a missing one for those who cannot see it, even in
the answers to malformed requests (issue 13: ``/tiles/<private id>/99/0/0.png`` answered 422 and
an unknown id 404, on 13 request shapes)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.accounts import sign_in
from tests.harness import another
from tests.security.conftest import ClientFactory

pytestmark = pytest.mark.anyio

UNKNOWN = "NoSuchWorld1"

SHAPES: list[tuple[str, str, Any]] = [
    ("GET", "/tiles/{id}/99/0/0.png", None),
    ("GET", "/tiles/{id}/0/0.0/0.png", None),
    ("GET", "/tiles/{id}/0/0/99999999999999999999.png", None),
    ("GET", "/tiles/{id}/0/x/0.png", None),
    ("GET", "/api/worlds/{id}/region?x=0&y=0&w=0&h=1", None),
    ("GET", "/api/worlds/{id}/region?x=a", None),
    ("GET", "/api/worlds/{id}/export.png?x=0&y=0&w=1&h=1&scale=99", None),
    ("GET", "/api/worlds/{id}/export.png", None),
    ("GET", "/api/worlds/{id}/chat?before=not-an-id", None),
    ("GET", "/api/worlds/{id}/chat?limit=0", None),
    ("PATCH", "/api/worlds/{id}", {"name": ""}),
    ("PATCH", "/api/worlds/{id}", {"visibility": "secret"}),
    ("PATCH", "/api/worlds/{id}/members/bad-user-id!", {"role": "emperor"}),
    ("POST", "/api/worlds/{id}/invites", {"role": "emperor"}),
    ("DELETE", "/api/worlds/{id}/invites/bad!", None),
    ("GET", "/api/worlds/{id}/legend?extra=1", None),
]


@pytest.mark.parametrize("who", ["outsider", "anonymous"])
async def test_malformed_requests_about_a_private_world_answer_like_an_unknown_world(
    make_client: ClientFactory, who: str
) -> None:
    owner = await make_client()
    await sign_in(owner)
    made = await owner.post(
        "/api/worlds", json={"name": "Hidden", "tileset": "terrain", "visibility": "private"}
    )
    assert made.status_code == 201, made.text
    private = made.json()["id"]
    stranger = await another(owner)
    if who == "outsider":
        await sign_in(stranger)
    differ = []
    for method, template, body in SHAPES:
        answers = []
        for wid in (private, UNKNOWN):
            response = await stranger.request(method, template.format(id=wid), json=body)
            answers.append((response.status_code, response.json()))
        if answers[0] != answers[1] or answers[0][0] != 404:
            differ.append((method, template, answers))
    assert differ == []
    # the owner still gets the validation errors (the world exists for them)
    mine = await owner.get(f"/tiles/{private}/99/0/0.png")
    assert mine.status_code == 422
