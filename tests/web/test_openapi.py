"""The OpenAPI document lists the error answers the routes give, and a 405 names, in ``Allow``,
every method served at that path (issue 13)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.conftest import WebClient

pytestmark = pytest.mark.anyio


async def test_a_405_lists_every_method_of_the_path(
    client: WebClient, world: dict[str, Any]
) -> None:
    for path, allowed in (
        (f"/api/worlds/{world['id']}", "DELETE, GET, PATCH"),
        ("/api/worlds", "GET, POST"),
        (f"/tiles/{world['id']}/0/0/0.png", "GET"),
    ):
        response = await client.request("PUT", path, json={})
        assert response.status_code == 405, path
        assert response.headers["Allow"] == allowed, path


async def test_openapi_lists_the_error_answers(client: WebClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]

    def codes(path: str, method: str) -> set[str]:
        return set(paths[path][method]["responses"])

    tile = codes("/tiles/{world_id}/{z}/{x}/{y}.png", "get")
    assert {"200", "304", "400", "404", "422", "429", "503"} <= tile
    assert {"201", "400", "401", "403", "413", "422", "429", "503"} <= codes("/api/worlds", "post")
    patch = codes("/api/worlds/{world_id}", "patch")
    assert {"401", "403", "404", "409", "413", "429"} <= patch
    assert "409" in codes("/api/jobs/{job_id}", "delete")  # the job has already ended
    export = paths["/api/worlds/{world_id}/export.png"]["get"]["responses"]
    assert "Retry-After" in export["429"]["headers"]
    assert set(export["404"]["content"]["application/json"]["schema"]["required"]) == {"detail"}


async def test_a_world_names_a_bundled_tileset_from_the_schema(client: WebClient) -> None:
    """The schema lists the tilesets a world may be made of, so a schema-valid request names one
    (any other is a 422 from the route, which the schema then predicts)."""
    document = (await client.get("/openapi.json")).json()
    tileset = document["components"]["schemas"]["WorldCreate"]["properties"]["tileset"]
    names = {t["name"] for t in (await client.get("/api/tilesets")).json()}
    listed = next(alt["enum"] for alt in tileset["anyOf"] if "enum" in alt)
    assert set(listed) == names
