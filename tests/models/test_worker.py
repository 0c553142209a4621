"""Uploads end to end on a real Valkey with a real ``worldgen worker`` process: upload a sample,
make a world from it, the library job builds its patch library (progress, then done), and the
world draws map tiles; a second world over the same model needs no job. A sample whose library
cannot be completed (random noise) ends the job ``failed`` with the combination named, and the
world says so."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.accounts import sign_in
from tests.conftest import ClientFactory
from tests.harness import AppClient
from tests.jobs.test_worker import StartWorker, start_worker  # noqa: F401  the fixture
from tests.models.conftest import png
from tests.models.test_api import ISLANDS, upload, zipped
from tests.samples import TILESETS
from worldgen.jobs import library
from worldgen.world import api

pytestmark = pytest.mark.anyio

WAIT_S = 300.0


@pytest.mark.standalone_only(
    "the worker fixture of tests/jobs runs on the shared standalone Valkey"
)
async def test_upload_library_job_world_tiles(
    client_factory: ClientFactory,
    start_worker: StartWorker,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = await client_factory()
    await sign_in(client)
    model = (await upload(client, ISLANDS, name="Islands", N=3, symmetry=8)).json()
    response = await client.post("/api/worlds", json={"name": "Mine", "model": model["id"]})
    assert response.status_code == 201, response.text
    world = response.json()
    start_worker(client.app.state.settings.key_prefix)

    states: list[str] = []
    prep = await _prepared(client, world["id"], states)
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

    # another machine (its own empty cache folder, same Redis) draws the world at once: the
    # model's files, library, calibration and summary come from Redis, nothing is rebuilt
    elsewhere = tmp_path / "machine-2"
    monkeypatch.setenv("WORLDGEN_CACHE_DIR", str(elsewhere))
    library._READY.clear()
    api._upload_model.cache_clear()
    other = await client_factory(key_prefix=client.app.state.settings.key_prefix)
    assert (await other.get(f"/tiles/{world['id']}/-6/0/0.png")).status_code == 200
    assert (elsewhere / "uploads" / model["id"] / "data").is_file()
    for folder in ("patches", "calibrations", "summaries"):
        assert len(list((elsewhere / folder).glob("*.npz"))) == 1, folder
    monkeypatch.undo()

    # a tileset zip with tile classes: its world has continents (classes of the macro layer)
    terrain = (await upload(client, zipped(TILESETS / "terrain"), "t.zip", kind="tileset")).json()
    response = await client.post("/api/worlds", json={"name": "Land", "model": terrain["id"]})
    land = response.json()
    assert land["kind"] == "tiled"
    assert (await _prepared(client, land["id"], []))["state"] == "ready"
    answer = await client.get(f"/api/worlds/{land['id']}/legend")
    assert answer.status_code == 200, answer.text
    legend = answer.json()
    assert len(legend["classes"]) > 1, legend
    assert (await client.get(f"/tiles/{land['id']}/-8/0/0.png")).status_code == 200

    rng = np.random.default_rng(1)
    noise = np.full((24, 24, 4), 255, dtype=np.uint8)
    noise[..., 0] = rng.integers(0, 3, (24, 24)) * 60
    bad = (await upload(client, png(noise), N=3, symmetry=1)).json()
    response = await client.post("/api/worlds", json={"name": "Noise", "model": bad["id"]})
    failed = await _prepared(client, response.json()["id"], [])
    assert failed["state"] == "failed"
    assert "cannot be completed" in failed["message"]
    assert "all/all/all/all" in failed["message"]


async def _prepared(client: AppClient, world_id: str, states: list[str]) -> dict[str, Any]:
    """The world's preparation once it is no longer ``preparing`` (each state seen appended)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        prep: dict[str, Any] = (await client.get(f"/api/worlds/{world_id}/preparation")).json()
        states.append(prep["state"])
        if prep["state"] != "preparing":
            return prep
        assert time.monotonic() < deadline, prep
        await asyncio.sleep(0.2)
