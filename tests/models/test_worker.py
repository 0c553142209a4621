"""Uploads end to end on a real Valkey with a real ``worldgen worker`` process: upload a sample,
make a world from it, the library job builds its patch library (progress, then done), and the
world draws map tiles; a second world over the same model needs no job."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.accounts import sign_in
from tests.conftest import ClientFactory
from tests.jobs.test_worker import StartWorker, start_worker  # noqa: F401  the fixture
from tests.models.test_api import ISLANDS, upload

pytestmark = pytest.mark.anyio

WAIT_S = 300.0


@pytest.mark.standalone_only(
    "the worker fixture of tests/jobs runs on the shared standalone Valkey"
)
async def test_upload_library_job_world_tiles(
    client_factory: ClientFactory,
    start_worker: StartWorker,  # noqa: F811
) -> None:
    client = await client_factory()
    await sign_in(client)
    model = (await upload(client, ISLANDS, name="Islands", N=3, symmetry=8)).json()
    response = await client.post("/api/worlds", json={"name": "Mine", "model": model["id"]})
    assert response.status_code == 201, response.text
    world = response.json()
    start_worker(client.app.state.settings.key_prefix)

    states: list[str] = []
    deadline = time.monotonic() + WAIT_S
    while True:
        prep = (await client.get(f"/api/worlds/{world['id']}/preparation")).json()
        states.append(prep["state"])
        if prep["state"] != "preparing":
            break
        assert time.monotonic() < deadline, prep
        await asyncio.sleep(0.2)
    assert prep["state"] == "ready", prep
    assert states[0] == "preparing"
    assert (await client.get(f"/api/models/{model['id']}")).json()["library"] == "ready"
    for z, x, y in ((0, 0, 0), (2, -1, 3), (-6, 0, 0)):
        tile = await client.get(f"/tiles/{world['id']}/{z}/{x}/{y}.png")
        assert tile.status_code == 200, (z, x, y, tile.text)
        assert tile.headers["content-type"] == "image/png"
    region = await client.get(f"/api/worlds/{world['id']}/region?x=0&y=0&w=16&h=16")
    assert region.status_code == 200
    assert len(region.json()["cells"]) == 256

    second = await client.post(
        "/api/worlds", json={"name": "Again", "model": model["id"], "seed": 3}
    )
    again = (await client.get(f"/api/worlds/{second.json()['id']}/preparation")).json()
    assert again["state"] == "ready"  # the library is built once per model
    jobs = (await client.get(f"/api/jobs?world_id={second.json()['id']}")).json()["jobs"]
    assert jobs == []
