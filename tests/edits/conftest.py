"""Edit-test fixtures: a small terrain world for the pure domain, and a started app (real Valkey,
through the harness's ``client_factory``) with an owner, an editor and a viewer of one world."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ClientFactory
from tests.harness import AppClient, signed_in
from worldgen.world.api import build_world
from worldgen.world.blocks import World
from worldgen.world.spec import WorldSpec

_names = itertools.count()


@pytest.fixture(scope="session")
def edit_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("edits-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORLDGEN_CACHE_DIR", str(root))
        yield root


@pytest.fixture
def world(edit_cache: Path) -> World:
    """A fresh terrain world (seed 7, S=8) for the pure tests."""
    return build_world(WorldSpec("tileset", "terrain", 7, S=8, V=2))


@dataclass
class Crew:
    """One world and a client per role."""

    world_id: str
    owner: AppClient
    editor: AppClient
    viewer: AppClient

    def url(self, tail: str) -> str:
        return f"/api/worlds/{self.world_id}/{tail}"


async def _uid(client: AppClient) -> str:
    body: dict[str, Any] = (await client.get("/api/auth/me")).json()
    return str(body["id"])


@pytest.fixture
def make_crew(client_factory: ClientFactory) -> Any:
    """``make_crew(**settings)``: a started app and a public terrain world with three users."""

    async def make(**settings: Any) -> Crew:
        app = await client_factory(**settings)
        tag = next(_names)
        owner = await signed_in(app, f"own{tag}x")
        made = await owner.post("/api/worlds", json={"name": "Edits", "tileset": "terrain"})
        assert made.status_code == 201, made.text
        wid = made.json()["id"]
        editor = await signed_in(app, f"edi{tag}x")
        viewer = await signed_in(app, f"vie{tag}x")
        members = app.security.members
        await members.add(wid, await _uid(editor), "editor")
        await members.add(wid, await _uid(viewer), "viewer")
        return Crew(wid, owner, editor, viewer)

    return make
