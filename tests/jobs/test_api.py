"""The job API's checks on a real Valkey, without a worker: jobs stay queued.

Bounds (16384 px a side: the limit and one more), sign-in, who may see a job, the per-user
limit (``jobs_per_user`` and one more: 429 with ``Retry-After``) and the job's record.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.accounts import sign_in
from tests.conftest import ClientFactory
from tests.harness import AppClient, another

pytestmark = pytest.mark.anyio


async def _world(client: AppClient, visibility: str = "public") -> str:
    response = await client.post("/api/worlds", json={"name": "jobs", "tileset": "pipes"})
    assert response.status_code == 201, response.text
    world_id: str = response.json()["id"]
    if visibility == "private":
        version = response.json()["version"]
        patched = await client.patch(
            f"/api/worlds/{world_id}", json={"visibility": "private", "version": version}
        )
        assert patched.status_code == 200, patched.text
    return world_id


async def _signed(client_factory: ClientFactory, **settings: Any) -> AppClient:
    client = await client_factory(**settings)
    await sign_in(client)
    return client


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"x": 0, "y": 0, "w": 16384, "h": 1, "scale": 1}, 202),
        ({"x": 0, "y": 0, "w": 16385, "h": 1, "scale": 1}, 422),
        ({"x": 0, "y": 0, "w": 1024, "h": 1024, "scale": 16}, 202),
        ({"x": 0, "y": 0, "w": 1025, "h": 1, "scale": 16}, 422),
        ({"x": 0, "y": 0, "w": 1, "h": 1, "scale": 17}, 422),
        ({"x": 0, "y": 0, "w": 0, "h": 1}, 422),
        ({"x": 0, "y": 0, "w": 1, "h": 1, "format": "jpeg"}, 422),
        ({"x": 0, "y": 0, "w": 1, "h": 1, "extra": 1}, 422),
        ({"x": 0, "y": 0, "w": "1", "h": 1}, 422),
        ({"x": 0.5, "y": 0, "w": 1, "h": 1}, 422),
        ({"x": 2**31, "y": -(2**31), "w": 1, "h": 1}, 202),
        ({"x": 2**31 + 1, "y": 0, "w": 1, "h": 1}, 422),
    ],
)
async def test_export_bounds(
    client_factory: ClientFactory, body: dict[str, Any], status: int
) -> None:
    client = await _signed(client_factory, jobs_per_user=20)
    world_id = await _world(client)
    response = await client.post(f"/api/worlds/{world_id}/exports", json=body)
    assert response.status_code == status, response.text
    if status == 422:
        assert response.json()["detail"]
    else:
        job = response.json()
        assert job["state"] == "queued"
        assert job["id"].startswith(f"{world_id}.")
        assert response.headers["location"] == f"/api/jobs/{job['id']}"


@pytest.mark.parametrize("kind", ["prerenders", "tile-archives"])
async def test_tile_job_bounds(client_factory: ClientFactory, kind: str) -> None:
    client = await _signed(client_factory, jobs_per_user=20)
    world_id = await _world(client)
    url = f"/api/worlds/{world_id}/{kind}"
    # zoom 0: 64 cells a tile; 64 x 64 tiles = 4096 (the limit), one more row is 4160
    ok = {"x": 0, "y": 0, "w": 64 * 64, "h": 64 * 64, "z_min": 0, "z_max": 0}
    assert (await client.post(url, json=ok)).status_code == 202
    over = {**ok, "h": 64 * 65}
    response = await client.post(url, json=over)
    assert response.status_code == 422
    assert "at most 4096" in response.text
    backwards = {**ok, "w": 1, "h": 1, "z_min": 1, "z_max": 0}
    assert (await client.post(url, json=backwards)).status_code == 422
    assert (await client.post(url, json={**backwards, "z_min": -11})).status_code == 422


async def test_sign_in_and_visibility(client_factory: ClientFactory) -> None:
    owner = await _signed(client_factory)
    public = await _world(owner)
    private = await _world(owner, "private")
    body = {"x": 0, "y": 0, "w": 8, "h": 8}
    anonymous = await another(owner)
    assert (await anonymous.post(f"/api/worlds/{public}/exports", json=body)).status_code == 401
    assert (await anonymous.post(f"/api/worlds/{private}/exports", json=body)).status_code == 404

    stranger = await another(owner)
    await sign_in(stranger)
    assert (await stranger.post(f"/api/worlds/{private}/exports", json=body)).status_code == 404
    mine = (await owner.post(f"/api/worlds/{public}/exports", json=body)).json()["id"]
    # another user's job, a malformed id and an unknown one: the same 404
    for client, job_id in [
        (stranger, mine),
        (anonymous, mine),
        (owner, "nonsense"),
        (owner, f"{public}.AAAAAAAAAAAAAAAA"),
        (owner, f"{public}.{'A' * 17}"),
    ]:
        response = await client.get(f"/api/jobs/{job_id}")
        assert response.status_code == 404, (job_id, response.text)
        assert (await client.get(f"/api/jobs/{job_id}/result")).status_code == 404
    job = (await owner.get(f"/api/jobs/{mine}")).json()
    assert job["state"] == "queued"
    assert job["kind"] == "export"
    assert job["result"] is None
    # not done yet: no result
    assert (await owner.get(f"/api/jobs/{mine}/result")).status_code == 404


async def test_per_user_limit(client_factory: ClientFactory) -> None:
    client = await _signed(client_factory, jobs_per_user=2)
    world_id = await _world(client)
    body = {"x": 0, "y": 0, "w": 8, "h": 8}
    url = f"/api/worlds/{world_id}/exports"
    assert (await client.post(url, json=body)).status_code == 202
    assert (await client.post(url, json=body)).status_code == 202
    refused = await client.post(url, json=body)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert "2 jobs" in refused.json()["detail"]
    # the limit is per user: someone else may still queue
    other = await another(client)
    await sign_in(other)
    assert (await other.post(url, json=body)).status_code == 202


async def test_result_download_and_expiry(client_factory: ClientFactory) -> None:
    client = await _signed(client_factory)
    world_id = await _world(client)
    body = {"x": 5, "y": -6, "w": 8, "h": 8}
    job_id = (await client.post(f"/api/worlds/{world_id}/exports", json=body)).json()["id"]
    jobs = client.app.state.store.jobs
    # what a worker does (tests/jobs/test_worker.py runs a real one)
    await jobs.start(job_id)
    await jobs.append(job_id, b"\x89PNG" + bytes(3 << 20))  # several download chunks
    await jobs.complete(job_id, (await jobs.get(job_id)).owner)
    job = (await client.get(f"/api/jobs/{job_id}")).json()
    assert job["state"] == "done"
    result = await client.get(job["result"])
    assert result.status_code == 200
    assert result.content == b"\x89PNG" + bytes(3 << 20)
    assert f'filename="{world_id}_5_-6.png"' in result.headers["content-disposition"]
    assert "no-store" in result.headers["cache-control"]
    # the result expires (here: deleted) -> 404 with a message, while the record says done
    token = job_id.split(".")[1]
    await jobs.redis.delete(client.app.state.store.keys.job(world_id, token, "png"))
    gone = await client.get(job["result"])
    assert gone.status_code == 404
    assert "expired" in gone.json()["detail"]


async def test_cancel(client_factory: ClientFactory) -> None:
    client = await _signed(client_factory)
    world_id = await _world(client)
    body = {"x": 0, "y": 0, "w": 8, "h": 8}
    job_id = (await client.post(f"/api/worlds/{world_id}/exports", json=body)).json()["id"]
    stranger = await another(client)
    await sign_in(stranger)
    assert (await stranger.delete(f"/api/jobs/{job_id}")).status_code == 404
    assert (await client.delete(f"/api/jobs/{job_id}")).status_code == 204
    job = (await client.get(f"/api/jobs/{job_id}")).json()
    assert (job["state"], job["message"]) == ("failed", "cancelled by its owner")
    again = await client.delete(f"/api/jobs/{job_id}")
    assert again.status_code == 409
    assert "already ended" in again.json()["detail"]
    # a cancelled job no longer counts against the limit
    assert await client.app.state.store.jobs.active(await _me(client)) == 0


async def _me(client: AppClient) -> str:
    me: str = (await client.get("/api/auth/me")).json()["id"]
    return me


async def test_a_job_hides_with_its_world(client_factory: ClientFactory) -> None:
    owner = await _signed(client_factory)
    world_id = await _world(owner)
    viewer = await another(owner)
    await sign_in(viewer)
    body = {"x": 0, "y": 0, "w": 8, "h": 8}
    job_id = (await viewer.post(f"/api/worlds/{world_id}/exports", json=body)).json()["id"]
    assert (await viewer.get(f"/api/jobs/{job_id}")).status_code == 200
    version = (await owner.get(f"/api/worlds/{world_id}")).json()["version"]
    patched = await owner.patch(
        f"/api/worlds/{world_id}", json={"visibility": "private", "version": version}
    )
    assert patched.status_code == 200
    await asyncio.sleep(1.1)  # the world record cache (world_cache_s) may keep it a second
    assert (await viewer.get(f"/api/jobs/{job_id}")).status_code == 404
    assert (await viewer.delete(f"/api/jobs/{job_id}")).status_code == 404


async def test_list_my_running_jobs(client_factory: ClientFactory) -> None:
    client = await _signed(client_factory, jobs_per_user=5)
    first, second = await _world(client), await _world(client)
    body = {"x": 0, "y": 0, "w": 8, "h": 8}
    a = (await client.post(f"/api/worlds/{first}/exports", json=body)).json()["id"]
    b = (await client.post(f"/api/worlds/{second}/exports", json=body)).json()["id"]
    c = (await client.post(f"/api/worlds/{first}/exports", json=body)).json()["id"]
    assert (await client.delete(f"/api/jobs/{c}")).status_code == 204  # ended: not listed
    listed = (await client.get("/api/jobs")).json()["jobs"]
    assert [j["id"] for j in listed] == [a, b]
    one = (await client.get(f"/api/jobs?world_id={first}")).json()["jobs"]
    assert [j["id"] for j in one] == [a]
    assert (await client.get("/api/jobs?world_id=nonsense")).json() == {"jobs": []}
    assert (await client.get(f"/api/jobs?world_id={'x' * 65}")).status_code == 422
    assert (await (await another(client)).get("/api/jobs")).status_code == 401
