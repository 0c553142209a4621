"""``GET /api/worlds/{id}/legend``: the legend of a world's model, its names covering every label
of the world's regions, cached by ETag, and hidden like the world itself when private."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.web.conftest import WebClient

pytestmark = pytest.mark.anyio


async def test_legend_names_every_cell_of_a_region(
    client: WebClient, world: dict[str, Any]
) -> None:
    response = await client.get(f"/api/worlds/{world['id']}/legend")
    assert response.status_code == 200
    legend = response.json()
    assert legend["kind"] == "tiled"
    assert legend["classes"] == ["ocean", "lowland", "highland"]
    assert [e["label"] for e in legend["entries"]][:2] == ["deep", "shallow"]
    assert all(e["picture"].startswith("data:image/png;base64,") for e in legend["entries"])
    region = (await client.get(f"/api/worlds/{world['id']}/region?x=-8&y=-8&w=16&h=16")).json()
    for cell in set(region["cells"]):
        tile = region["tiles"][cell].rsplit(" ", 1)[0]
        assert tile in legend["names"]
        assert any(tile in e["members"] for e in legend["entries"])


async def test_sample_legend_names_colours(client: WebClient) -> None:
    made = await client.post("/api/worlds", json={"name": "Lakes", "tileset": "lakes", "seed": 3})
    wid = made.json()["id"]
    legend = (await client.get(f"/api/worlds/{wid}/legend")).json()
    region = (await client.get(f"/api/worlds/{wid}/region?x=0&y=0&w=8&h=8")).json()
    assert {region["colors"][c] for c in region["cells"]} <= set(legend["names"])
    assert legend["kind"] == "overlapping"


async def test_legend_etag_answers_304(client: WebClient, world: dict[str, Any]) -> None:
    first = await client.get(f"/api/worlds/{world['id']}/legend")
    assert first.headers["cache-control"] == "no-cache"
    again = await client.get(
        f"/api/worlds/{world['id']}/legend", headers={"If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.content == b""


async def test_private_legend_is_404_to_strangers(client: WebClient) -> None:
    body = {"name": "Secret", "tileset": "pipes", "visibility": "private"}
    wid = (await client.post("/api/worlds", json=body)).json()["id"]
    mine = await client.get(f"/api/worlds/{wid}/legend")
    assert mine.status_code == 200
    assert mine.headers["cache-control"] == "private, no-cache"
    transport = httpx.ASGITransport(app=client.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as stranger:
        assert (await stranger.get(f"/api/worlds/{wid}/legend")).status_code == 404
        assert (await stranger.get("/api/worlds/nope/legend")).status_code == 404
