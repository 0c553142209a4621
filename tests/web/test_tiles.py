"""Map tiles: PNG bytes, HTTP caching, coordinate bounds, the cache ladder and single flight."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from tests.web.conftest import ClientFactory, CountingGenerator, WebClient, metric
from worldgen.web.routes.tiles import tile_range

pytestmark = pytest.mark.anyio

REVALIDATED = "public, no-cache"  # a world can become private: caches must revalidate


def hits(client: WebClient, layer: str) -> float:
    return metric(client, "worldgen_tile_cache_hits_total", layer=layer)


def misses(client: WebClient, layer: str) -> float:
    return metric(client, "worldgen_tile_cache_misses_total", layer=layer)


async def new_world(client: WebClient, seed: int = 7) -> str:
    response = await client.post(
        "/api/worlds", json={"name": "tiles", "tileset": "terrain", "seed": seed}
    )
    assert response.status_code == 201
    wid: str = response.json()["id"]
    return wid


async def test_tile_is_a_256px_png_with_revalidated_caching(
    client: WebClient, world: dict[str, Any]
) -> None:
    response = await client.get(f"/tiles/{world['id']}/2/-3/5.png")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"] == REVALIDATED
    png = response.content
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (256, 256)
    etag = response.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)  # strong: no W/ prefix


@pytest.mark.parametrize("form", ["{etag}", "W/{etag}", '"other", {etag}', "*"])
async def test_if_none_match_gives_304(client: WebClient, world: dict[str, Any], form: str) -> None:
    url = f"/tiles/{world['id']}/0/0/0.png"
    etag = (await client.get(url)).headers["etag"]
    response = await client.get(url, headers={"If-None-Match": form.format(etag=etag)})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert response.headers["cache-control"] == REVALIDATED


async def test_stale_etag_gives_the_tile(client: WebClient, world: dict[str, Any]) -> None:
    response = await client.get(
        f"/tiles/{world['id']}/0/0/0.png", headers={"If-None-Match": '"not-it"'}
    )
    assert response.status_code == 200


async def test_tiles_differ_and_repeat(client: WebClient) -> None:
    a, b = await new_world(client, seed=1), await new_world(client, seed=2)
    first = await client.get(f"/tiles/{a}/1/0/0.png")
    other_place = await client.get(f"/tiles/{a}/1/1/0.png")
    other_world = await client.get(f"/tiles/{b}/1/0/0.png")
    etags = {r.headers["etag"] for r in (first, other_place, other_world)}
    assert len(etags) == 3
    assert first.content != other_place.content
    assert (await client.get(f"/tiles/{a}/1/0/0.png")).content == first.content


@pytest.mark.parametrize(
    ("z", "status"), [(2, 200), (3, 422), (-10, 200), (-11, 422), ("x", 422), ("1.5", 422)]
)
async def test_zoom_bounds(
    client: WebClient, world: dict[str, Any], z: object, status: int
) -> None:
    response = await client.get(f"/tiles/{world['id']}/{z}/0/0.png")
    assert response.status_code == status, response.text


@pytest.mark.parametrize("z", [2, -10])
async def test_coordinate_bounds_follow_the_zoom(
    client: WebClient, world: dict[str, Any], z: int
) -> None:
    low, high = tile_range(z)
    wid = world["id"]
    for x, y, status in [
        (high, low, 200),
        (low, high, 200),
        (high + 1, 0, 404),  # inside the schema's bounds, outside the world: no such tile
        (0, low - 1, 404),
        (2**80, 0, 422),  # outside the schema's bounds
    ]:
        response = await client.get(f"/tiles/{wid}/{z}/{x}/{y}.png")
        assert response.status_code == status, (x, y, response.text)
        if status == 404:
            assert "no such tile" in response.text
            assert "must be in" in response.text
        if status == 422:
            assert "less than" in response.text


async def test_non_integer_coordinates_are_422(client: WebClient, world: dict[str, Any]) -> None:
    for path in ("0/a/0.png", "0/0/1e3.png", "0/0/0.5.png"):
        assert (await client.get(f"/tiles/{world['id']}/{path}")).status_code == 422


async def test_deleted_world_tiles_are_404(client: WebClient, world: dict[str, Any]) -> None:
    url = f"/tiles/{world['id']}/0/0/0.png"
    assert (await client.get(url)).status_code == 200
    assert (await client.delete(f"/api/worlds/{world['id']}")).status_code == 204
    assert (await client.get(url)).status_code == 404


async def test_cache_ladder_memory_then_redis(make_client: ClientFactory) -> None:
    generator = CountingGenerator()
    client = await make_client(generator=generator)
    wid = await new_world(client)
    url = f"/tiles/{wid}/1/2/3.png"

    first = await client.get(url)
    assert generator.tile_calls == 1
    assert (misses(client, "memory"), misses(client, "redis")) == (1, 1)
    assert metric(client, "worldgen_tile_generation_seconds_count") == 1

    second = await client.get(url)
    assert second.content == first.content
    assert generator.tile_calls == 1
    assert hits(client, "memory") == 1

    # A second app instance on the same Redis: its memory is cold, Redis has the tile.
    other_gen = CountingGenerator()
    key_prefix = client.app.state.settings.key_prefix
    other = await make_client(generator=other_gen, key_prefix=key_prefix)
    third = await other.get(url)
    assert third.content == first.content
    assert third.headers["etag"] == first.headers["etag"]
    assert other_gen.tile_calls == 0
    assert (misses(other, "memory"), hits(other, "redis")) == (1, 1)


async def test_without_memory_layer_redis_answers(make_client: ClientFactory) -> None:
    generator = CountingGenerator()
    client = await make_client(generator=generator, memory_tile_cache=0)
    wid = await new_world(client)
    for _ in range(3):
        assert (await client.get(f"/tiles/{wid}/0/1/1.png")).status_code == 200
    assert generator.tile_calls == 1
    assert (hits(client, "memory"), hits(client, "redis")) == (0, 2)


async def test_concurrent_misses_share_one_generation(make_client: ClientFactory) -> None:
    generator = CountingGenerator()
    client = await make_client(generator=generator)
    wid = await new_world(client)
    generator.gate = asyncio.Event()
    requests = [asyncio.ensure_future(client.get(f"/tiles/{wid}/2/4/4.png")) for _ in range(16)]
    ladder = client.app.state.tile_ladder
    for _ in range(200):  # until the flight is up and every request has reached the ladder
        if generator.tile_calls and misses(client, "memory") == 16:
            break
        await asyncio.sleep(0.01)
    assert len(ladder.flights) == 1
    generator.gate.set()
    responses = await asyncio.gather(*requests)
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert generator.tile_calls == 1
    assert misses(client, "redis") == 1


@pytest.mark.parametrize("text", ["0.0", " 1", "1 ", "+1", "01", "-0", "1_0", "0x1", "1e0"])
async def test_tile_paths_take_canonical_integers_only(
    client: WebClient, world: dict[str, Any], text: str
) -> None:
    for path in (f"{text}/0/0", f"0/{text}/0", f"0/0/{text}"):
        response = await client.get(f"/tiles/{world['id']}/{path}.png")
        assert response.status_code == 422, (path, response.status_code)
    for good in ("0/0/0", "0/-1/1", "-3/10/-10"):
        assert (await client.get(f"/tiles/{world['id']}/{good}.png")).status_code == 200, good


async def test_region_and_export_queries_take_canonical_integers_only(
    client: WebClient, world: dict[str, Any]
) -> None:
    base = f"/api/worlds/{world['id']}"
    for query in ("x=0.0&y=0&w=1&h=1", "x=0&y=+1&w=1&h=1", "x=0&y=0&w=01&h=1"):
        for route in ("region", "export.png"):
            response = await client.get(f"{base}/{route}?{query}")
            assert response.status_code == 422, (route, query, response.status_code)
    assert (await client.get(f"{base}/region?x=-1&y=0&w=1&h=1")).status_code == 200
