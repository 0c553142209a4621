"""The worlds and tilesets API: happy paths, every bound at its limit and one past it."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.web.conftest import ClientFactory, StubGenerator, WebClient, metric
from worldgen.web.deps import get_generator
from worldgen.world.spec import WorldSpec

pytestmark = pytest.mark.anyio

MAX_SEED = 2**53 - 1
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def create(client: WebClient, **body: Any) -> Any:
    body.setdefault("name", "A world")
    body.setdefault("tileset", "terrain")
    return await client.post("/api/worlds", json=body)


# ------------------------------------------------------------------------------- tilesets
async def test_tilesets_list_the_catalog(client: WebClient) -> None:
    response = await client.get("/api/tilesets")
    assert response.status_code == 200
    entries = {e["name"]: e for e in response.json()}
    assert {"terrain", "pipes", "roads", "lakes"} <= set(entries)
    terrain, lakes = entries["terrain"], entries["lakes"]
    assert (terrain["kind"], lakes["kind"]) == ("tiled", "overlapping")
    assert terrain["tiles"] > 0
    assert lakes["patterns"] > 0
    assert "patterns" not in terrain
    assert "tiles" not in lakes
    assert terrain["preview"] == "/api/tilesets/terrain/preview.png"
    assert terrain["description"]


async def test_tileset_preview_png_with_etag(client: WebClient) -> None:
    response = await client.get("/api/tilesets/pipes/preview.png")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG")
    etag = response.headers["etag"]
    again = await client.get("/api/tilesets/pipes/preview.png", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""


async def test_unknown_tileset_preview_is_404(client: WebClient) -> None:
    response = await client.get("/api/tilesets/nope/preview.png")
    assert response.status_code == 404
    assert response.json() == {"detail": "tileset not found"}


# ---------------------------------------------------------------------------- create/read
async def test_create_get_list_rename_delete(client: WebClient) -> None:
    response = await create(client, name="  My world  ", seed=12345)
    assert response.status_code == 201
    world = response.json()
    wid = world["id"]
    assert world["name"] == "My world"
    assert (world["tileset"], world["kind"], world["seed"]) == ("terrain", "tiled", 12345)
    assert world["visibility"] == "public"
    assert ISO_UTC.match(world["created"])
    assert world["tile_url"] == f"/tiles/{wid}/{{z}}/{{x}}/{{y}}.png"
    assert world["preview"] == f"/tiles/{wid}/0/0/0.png"
    assert world["page"] == f"/worlds/{wid}"
    assert world["version"] == 1

    assert (await client.get(f"/api/worlds/{wid}")).json() == world
    listed = (await client.get("/api/worlds")).json()
    assert listed == {"worlds": [world]}

    renamed = await client.patch(f"/api/worlds/{wid}", json={"name": "Renamed"})
    assert renamed.status_code == 200
    assert renamed.json() == world | {"name": "Renamed", "version": 2}
    assert (await client.get(f"/api/worlds/{wid}")).json()["name"] == "Renamed"

    deleted = await client.delete(f"/api/worlds/{wid}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert (await client.get(f"/api/worlds/{wid}")).status_code == 404
    assert (await client.delete(f"/api/worlds/{wid}")).status_code == 404
    assert (await client.get("/api/worlds")).json() == {"worlds": []}


async def test_seed_is_random_when_absent(client: WebClient) -> None:
    seeds = {(await create(client)).json()["seed"] for _ in range(3)}
    assert len(seeds) == 3
    assert all(0 <= s <= MAX_SEED for s in seeds)


async def test_sample_worlds_are_sample_specs_with_colors(make_client: ClientFactory) -> None:
    stub = StubGenerator()  # building a sample's patch library is the world layer's test
    client = await make_client(generator=stub)
    response = await create(client, tileset="corridors", seed=3)
    assert response.status_code == 201
    world = response.json()
    assert world["kind"] == "overlapping"
    assert stub.specs[-1] == WorldSpec(source="sample", name="corridors", seed=3)
    region = await client.get(f"/api/worlds/{world['id']}/region?x=-3&y=5&w=4&h=3")
    assert region.status_code == 200
    doc = region.json()
    assert "tiles" not in doc
    assert doc["colors"] == ["#102030"]
    assert len(doc["cells"]) == 12


async def test_a_world_keeps_the_block_size_it_was_made_with(
    make_client: ClientFactory,
) -> None:
    """A new world pins its catalog entry's block size (lakes 16, terrain 32) in its record and
    is generated at it; a record from before the field existed is generated at 32, the default
    of then, whatever its catalog entry now says."""
    stub = StubGenerator()
    client = await make_client(generator=stub)
    lakes = (await create(client, tileset="lakes", seed=3)).json()
    terrain = (await create(client, tileset="terrain", seed=3)).json()
    assert (lakes["block_size"], terrain["block_size"]) == (16, 32)
    assert stub.specs[-2:] == [
        WorldSpec("sample", "lakes", 3, S=16),
        WorldSpec("tileset", "terrain", 3, S=32),
    ]
    tile = f"/tiles/{lakes['id']}/0/0/0.png"  # the tile route names the world by its spec
    assert (await client.get(tile)).status_code == 200
    assert stub.specs[-1] == WorldSpec("sample", "lakes", 3, S=16)

    worlds = client.app.state.store.worlds
    await worlds.redis.hdel(worlds.keys.world(lakes["id"]), "block_size")  # a legacy record
    worlds.forget(lakes["id"])
    assert (await client.get(f"/api/worlds/{lakes['id']}")).json()["block_size"] == 32
    assert (await client.get(tile)).status_code == 200
    assert stub.specs[-1] == WorldSpec("sample", "lakes", 3, S=32)


async def test_list_is_newest_first_pages_and_hides_private(client: WebClient) -> None:
    ids = [(await create(client, name=f"w{i}")).json()["id"] for i in range(4)]
    hidden = (await create(client, name="secret", visibility="private")).json()
    # Its creator (a member) sees the private world; anyone else sees only the public ones.
    mine = [w["id"] for w in (await client.get("/api/worlds")).json()["worlds"]]
    assert mine == [hidden["id"], *ids[::-1]]
    transport = httpx.ASGITransport(app=client.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        listed = [w["id"] for w in (await other.get("/api/worlds")).json()["worlds"]]
        assert listed == ids[::-1]
        # Paging counts the worlds the caller can see.
        page = (await other.get("/api/worlds?offset=1&limit=2")).json()["worlds"]
        assert [w["id"] for w in page] == ids[::-1][1:3]
        assert (await other.get(f"/api/worlds/{hidden['id']}")).status_code == 404
    assert (await client.get(f"/api/worlds/{hidden['id']}")).json()["visibility"] == "private"


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("limit=100", 200),
        ("limit=101", 422),
        ("limit=0", 422),
        ("offset=-1", 422),
        ("limit=x", 422),
        ("unknown=1", 422),
    ],
)
async def test_list_query_bounds(client: WebClient, query: str, status: int) -> None:
    assert (await client.get(f"/api/worlds?{query}")).status_code == status


# -------------------------------------------------------------------------- create bounds
@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("x" * 80, 201),
        ("x" * 81, 422),
        ("  " + "x" * 80 + "  ", 201),
        ("", 422),
        ("   ", 422),
        ("bell\x07", 422),
        ("new\nline", 422),
        ("evil\u202etxt.exe", 422),
        ("caf\u00e9 \U0001f30d", 201),
    ],
)
async def test_name_bounds(client: WebClient, name: str, status: int) -> None:
    response = await create(client, name=name)
    assert response.status_code == status, response.text
    if status == 201:
        assert response.json()["name"] == name.strip()


@pytest.mark.parametrize(
    ("seed", "status"),
    [
        (0, 201),
        (MAX_SEED, 201),
        (-1, 422),
        (MAX_SEED + 1, 422),
        ("5", 422),
        (True, 422),
        (1.5, 422),
    ],
)
async def test_seed_bounds(client: WebClient, seed: object, status: int) -> None:
    response = await create(client, seed=seed)
    assert response.status_code == status, response.text
    if status == 201:
        assert response.json()["seed"] == seed


@pytest.mark.parametrize(
    "body",
    [
        {"tileset": "terrain"},
        {"name": "a"},
        {"name": 5, "tileset": "terrain"},
        {"name": "a", "tileset": "terrain", "visibility": "secret"},
        {"name": "a", "tileset": "terrain", "owner": "me"},
        {"name": "a", "tileset": "x" * 65},
        ["not", "an", "object"],
    ],
)
async def test_bad_bodies_are_422(client: WebClient, body: object) -> None:
    response = await client.post("/api/worlds", json=body)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


async def test_lone_surrogate_in_name_is_422_not_500(client: WebClient) -> None:
    raw = b'{"name": "a\\ud800b", "tileset": "terrain"}'
    response = await client.post(
        "/api/worlds", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


@pytest.mark.parametrize("raw", [b"{bad json", b"", b'{"name": "a", "tileset": "terrain"'])
async def test_malformed_json_is_422(client: WebClient, raw: bytes) -> None:
    response = await client.post(
        "/api/worlds", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert metric(client, "worldgen_errors_total", kind="validation") >= 1


async def test_unknown_tileset_names_the_available_ones(client: WebClient) -> None:
    response = await create(client, tileset="atlantis")
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "tileset"]
    assert "atlantis" in error["msg"]
    for name in ("terrain", "pipes", "roads", "lakes"):
        assert name in error["msg"]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x" * 81},
        {"name": " "},
        {},
        {"version": 1},  # nothing to change
        {"name": "ok", "tileset": "pipes"},
        {"name": "ok", "version": 0},
        {"name": "ok", "version": "1"},
        {"name": "ok", "version": MAX_SEED + 1},
        {"visibility": "secret"},
    ],
)
async def test_rename_bounds(client: WebClient, world: dict[str, Any], body: object) -> None:
    response = await client.patch(f"/api/worlds/{world['id']}", json=body)
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("x" * 81, "the name has 81 characters; at most 80 are allowed"),
        ("x" * 300, "the name has 300 characters; at most 80 are allowed"),
        ("evil\u202etxt.exe", "text-direction characters (found U+202E)"),
        ("bell\x07", "(found U+0007)"),
        ("   ", "the name is empty"),
    ],
)
async def test_a_refused_name_says_why_in_words(client: WebClient, name: str, says: str) -> None:
    for response in (
        await create(client, name=name),
        await client.patch(
            f"/api/worlds/{(await create(client)).json()['id']}", json={"name": name}
        ),
    ):
        assert response.status_code == 422
        [error] = response.json()["detail"]
        assert error["loc"] == ["body", "name"]
        assert says in error["msg"]
        assert "Value error" not in error["msg"]  # written for people, not pydantic's wording


async def test_a_rename_against_an_old_version_is_refused_not_applied(
    client: WebClient, world: dict[str, Any]
) -> None:
    url = f"/api/worlds/{world['id']}"
    assert world["version"] == 1
    mine = await client.patch(url, json={"name": "Mine", "version": 1})
    assert mine.status_code == 200
    assert (mine.json()["name"], mine.json()["version"]) == ("Mine", 2)
    # someone else still looking at version 1 renames: refused, and nothing is overwritten
    theirs = await client.patch(url, json={"name": "Theirs", "version": 1})
    assert theirs.status_code == 409
    assert "reload" in theirs.json()["detail"]
    current = (await client.get(url)).json()
    assert (current["name"], current["version"]) == ("Mine", 2)
    # with the version they now see, their rename goes through
    again = await client.patch(url, json={"name": "Theirs", "version": current["version"]})
    assert again.status_code == 200
    assert (again.json()["name"], again.json()["version"]) == ("Theirs", 3)
    # without a version (older clients) the last write wins, as before
    blind = await client.patch(url, json={"name": "Blind"})
    assert (blind.status_code, blind.json()["version"]) == (200, 4)


async def test_the_owner_changes_visibility_and_maps_revalidate(
    client: WebClient, world: dict[str, Any]
) -> None:
    url = f"/api/worlds/{world['id']}"
    export = f"{url}/export.png?x=0&y=0&w=8&h=8&scale=1"
    tile = f"/tiles/{world['id']}/0/0/0.png"
    for path in (tile, export):  # no year-long caching: the world may become private
        assert (await client.get(path)).headers["cache-control"] == "public, no-cache"
    hidden = await client.patch(url, json={"visibility": "private", "version": 1})
    assert hidden.status_code == 200
    assert (hidden.json()["visibility"], hidden.json()["version"]) == ("private", 2)
    for path in (tile, export):
        assert (await client.get(path)).headers["cache-control"] == "private, no-cache"
    shown = await client.patch(url, json={"visibility": "public", "name": "Open again"})
    assert shown.status_code == 200
    assert (shown.json()["visibility"], shown.json()["name"]) == ("public", "Open again")


# --------------------------------------------------------------------- unknown worlds: 404
@pytest.mark.parametrize("wid", ["AAAAAAAAAAAA", "bad", "x" * 200, "..%2F..%2Fetc"])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/worlds/{id}", None),
        ("PATCH", "/api/worlds/{id}", {"name": "x"}),
        ("DELETE", "/api/worlds/{id}", None),
        ("GET", "/api/worlds/{id}/region?x=0&y=0&w=1&h=1", None),
        ("GET", "/api/worlds/{id}/export.png?x=0&y=0&w=1&h=1", None),
        ("GET", "/tiles/{id}/0/0/0.png", None),
    ],
)
async def test_unknown_world_is_404(
    client: WebClient, wid: str, method: str, path: str, body: object
) -> None:
    response = await client.request(method, path.format(id=wid), json=body)
    assert response.status_code == 404, response.text
    assert isinstance(response.json()["detail"], str)


# --------------------------------------------------------------------------------- region
async def test_region_happy_path_matches_the_cli_shape(
    client: WebClient, world: dict[str, Any]
) -> None:
    response = await client.get(f"/api/worlds/{world['id']}/region?x=-7&y=3&w=5&h=2")
    assert response.status_code == 200
    doc = response.json()
    assert (doc["x"], doc["y"], doc["width"], doc["height"]) == (-7, 3, 5, 2)
    assert len(doc["cells"]) == 10
    assert all(0 <= c < len(doc["tiles"]) for c in doc["cells"])
    again = await client.get(f"/api/worlds/{world['id']}/region?x=-7&y=3&w=5&h=2")
    assert again.json() == doc


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("x=0&y=0&w=256&h=1", 200),
        ("x=0&y=0&w=257&h=1", 422),
        ("x=0&y=0&w=1&h=257", 422),
        ("x=0&y=0&w=0&h=1", 422),
        (f"x={2**31}&y={-(2**31)}&w=1&h=1", 200),
        (f"x={2**31 + 1}&y=0&w=1&h=1", 422),
        (f"x=0&y={-(2**31) - 1}&w=1&h=1", 422),
        ("x=0&y=0&w=1", 422),
        ("x=a&y=0&w=1&h=1", 422),
    ],
)
async def test_region_bounds(
    client: WebClient, world: dict[str, Any], query: str, status: int
) -> None:
    response = await client.get(f"/api/worlds/{world['id']}/region?{query}")
    assert response.status_code == status, response.text


# --------------------------------------------------------------------------------- export
async def test_export_png(client: WebClient, world: dict[str, Any]) -> None:
    url = f"/api/worlds/{world['id']}/export.png?x=-8&y=-8&w=24&h=16&scale=2"
    response = await client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG")
    width, height = (int.from_bytes(response.content[i : i + 4], "big") for i in (16, 20))
    assert (width, height) == (48, 32)
    etag = response.headers["etag"]
    assert (await client.get(url, headers={"If-None-Match": etag})).status_code == 304


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("w=1024&h=1024&scale=4", 200),
        ("w=1025&h=1&scale=1", 422),
        ("w=1&h=1025&scale=1", 422),
        ("w=256&h=256&scale=16", 200),
        ("w=1&h=1&scale=17", 422),
        ("w=1&h=1&scale=0", 422),
        ("w=1024&h=1&scale=5", 422),
        ("w=1&h=820&scale=5", 422),
        ("w=0&h=1", 422),
    ],
)
async def test_export_bounds(make_client: ClientFactory, query: str, status: int) -> None:
    stub = StubGenerator()
    client = await make_client()
    client.app.dependency_overrides[get_generator] = lambda: stub
    wid = (await create(client)).json()["id"]
    response = await client.get(f"/api/worlds/{wid}/export.png?x=0&y=0&{query}")
    assert response.status_code == status, response.text
    assert len(stub.exports) == (1 if status == 200 else 0)


# ------------------------------------------------------------------------- origin checks
@pytest.mark.parametrize(
    ("origin", "status"),
    [
        (None, 201),
        ("http://testserver", 201),
        ("https://maps.example.org", 201),
        ("http://evil.example", 403),
        ("null", 403),
        ("http://testserver.evil.example", 403),
    ],
)
async def test_writes_from_foreign_origins_are_refused(
    make_client: ClientFactory, origin: str | None, status: int
) -> None:
    client = await make_client(allowed_origins=["https://maps.example.org"])
    headers = {} if origin is None else {"Origin": origin}
    response = await client.post(
        "/api/worlds", json={"name": "o", "tileset": "pipes"}, headers=headers
    )
    assert response.status_code == status, response.text
    if status == 403:
        assert response.json() == {"detail": "cross-origin request refused"}
        wid = (await create(client)).json()["id"]
        assert (await client.delete(f"/api/worlds/{wid}", headers=headers)).status_code == 403
        patch = await client.patch(f"/api/worlds/{wid}", json={"name": "x"}, headers=headers)
        assert patch.status_code == 403
        assert (await client.get(f"/api/worlds/{wid}", headers=headers)).status_code == 200
