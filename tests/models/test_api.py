"""The models API on a real Valkey, without a worker: uploads, their limits (each tested at the
limit and one past it), hostile files refused with nothing stored, sharing, deleting, and a world
made from a model ("preparing" while no worker builds its library)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.accounts import sign_in
from tests.conftest import ClientFactory
from tests.harness import AppClient, signed_in
from tests.models.conftest import png, stripes
from tests.samples import OVERLAPPING, TILESETS
from worldgen.engine import uploads

pytestmark = pytest.mark.anyio

ISLANDS = (OVERLAPPING / "islands.png").read_bytes()


async def _client(client_factory: ClientFactory, **settings: Any) -> AppClient:
    client = await client_factory(**settings)
    await sign_in(client)
    return client


async def upload(client: AppClient, data: bytes, filename: str = "sample.png", **form: Any) -> Any:
    files = {"file": (filename, data, "application/octet-stream")}
    fields = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in form.items()}
    return await client.post("/api/models", files=files, data=fields)


async def _stored(client: AppClient) -> int:
    """Keys of models in this app's key space (none after a refused upload)."""
    store = client.app.state.store
    count = 0
    async for _ in store.models.redis.scan_iter(match=f"{store.keys.root}:{{m:*", count=1000):
        count += 1
    return count


def colours_png(count: int) -> bytes:
    """A 32x16 PNG using exactly ``count`` distinct colours (count <= 512)."""
    index = np.arange(32 * 16) % count
    rgba = np.zeros((16, 32, 4), dtype=np.uint8)
    rgba[..., 0] = (index % 256).reshape(16, 32)
    rgba[..., 1] = (index // 256).reshape(16, 32)
    rgba[..., 3] = 255
    return png(rgba)


async def test_upload_a_sample_then_list_get_preview(client_factory: ClientFactory) -> None:
    client = await _client(client_factory)
    response = await upload(client, ISLANDS, name="Islands", N=3, symmetry=8)
    assert response.status_code == 201, response.text
    model = response.json()
    assert len(model["id"]) == 64
    assert response.headers["location"] == f"/api/models/{model['id']}"
    assert model["kind"] == "sample"
    assert model["patterns"] > 10
    assert model["options"] == {"N": 3, "symmetry": 8, "periodic": True, "ground": False}
    assert not model["shared"]
    assert model["mine"]
    assert model["library"] == "none"
    again = await upload(client, ISLANDS, name="Islands again")
    assert again.status_code == 200
    assert again.json()["id"] == model["id"]
    other_options = await upload(client, ISLANDS, N=2)
    assert other_options.status_code == 201
    assert other_options.json()["id"] != model["id"]

    listed = (await client.get("/api/models")).json()
    assert [m["id"] for m in listed["models"]] == [other_options.json()["id"], model["id"]]
    assert listed["used_bytes"] == model["size"] + other_options.json()["size"]
    assert (await client.get(f"/api/models/{model['id']}")).json() == model

    preview = await client.get(model["preview"])
    assert preview.status_code == 200
    assert preview.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(preview.content)) as image:
        assert image.size == (48, 48)
    assert (await client.get(model["preview"])).content == preview.content
    cached = await client.get(model["preview"], headers={"If-None-Match": preview.headers["etag"]})
    assert cached.status_code == 304


def zipped(folder: Path) -> bytes:
    """The files of a tileset folder as one zip."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, path.name)
    return out.getvalue()


async def test_upload_a_tileset_zip(client_factory: ClientFactory) -> None:
    client = await _client(client_factory)
    response = await upload(client, zipped(TILESETS / "pipes"), "pipes.zip", kind="tileset")
    assert response.status_code == 201, response.text
    model = response.json()
    assert model["kind"] == "tileset"
    assert model["options"] == {}
    assert model["patterns"] > 1
    preview = await client.get(model["preview"])
    assert preview.status_code == 200


@pytest.mark.parametrize(
    ("data", "form", "status", "message"),
    [
        (stripes(128, 4), {"symmetry": 1}, 201, None),
        (stripes(129, 4), {"symmetry": 1}, 400, "at most 128x128 px"),
        (stripes(4, 128), {"symmetry": 1}, 201, None),
        (stripes(4, 129), {"symmetry": 1}, 400, "at most 128x128 px"),
        (colours_png(256), {"N": 2, "symmetry": 1}, 201, None),
        (colours_png(257), {"N": 2, "symmetry": 1}, 400, "at most 256"),
        (b"GIF89a not a png", {}, 400, "not a PNG"),
        (ISLANDS, {"N": 1}, 422, None),
        (ISLANDS, {"N": 6}, 422, None),
        (ISLANDS, {"symmetry": 3}, 400, "symmetry must be 1, 2, 4 or 8"),
        (ISLANDS, {"ground": True, "periodic": False}, 400, "ground needs a periodic"),
        (ISLANDS, {"kind": "bitmap"}, 422, None),
        (b"PK\x03\x04 broken", {"kind": "tileset"}, 400, "not a zip"),
    ],
)
async def test_upload_bounds(
    client_factory: ClientFactory,
    data: bytes,
    form: dict[str, Any],
    status: int,
    message: str | None,
) -> None:
    client = await _client(client_factory)
    response = await upload(client, data, **form)
    assert response.status_code == status, response.text
    if message is not None:
        assert message in response.json()["detail"]
    if status != 201:
        assert await _stored(client) == 0
        assert (await client.get("/api/models")).json()["used_bytes"] == 0


async def test_hostile_zips_store_nothing(client_factory: ClientFactory) -> None:
    client = await _client(client_factory)
    bad: list[tuple[bytes, str]] = []
    for name in ("../evil.xml", "/etc/passwd.xml"):
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            archive.writestr(name, "<set/>")
        bad.append((out.getvalue(), "zip entry"))
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("set.xml", "<set/>")
        archive.writestr("big.png", b"\0" * (40 << 20))
    bad.append((bomb.getvalue(), "unpacks to more than"))
    entities = io.BytesIO()
    with zipfile.ZipFile(entities, "w") as archive:
        archive.writestr(
            "set.xml", '<!DOCTYPE s [<!ENTITY a "aaaa">]><set><tiles>&a;</tiles></set>'
        )
    bad.append((entities.getvalue(), ""))
    for data, message in bad:
        response = await upload(client, data, "set.zip", kind="tileset")
        assert response.status_code == 400, response.text
        assert message in response.json()["detail"]
    assert await _stored(client) == 0


async def test_a_file_over_the_size_limit_is_413(client_factory: ClientFactory) -> None:
    client = await _client(client_factory)
    big = ISLANDS + b"\0" * ((1 << 20) - len(ISLANDS) + 1)
    response = await upload(client, big)
    assert response.status_code == 413, response.text
    huge = b"PK" + b"\0" * (9 << 20)
    response = await upload(client, huge, "x.zip", kind="tileset")
    assert response.status_code == 413  # the body bound, before anything reads it
    assert await _stored(client) == 0


async def test_uploads_per_hour(client_factory: ClientFactory) -> None:
    limits = {"model_upload": {"count": 2, "window_s": 3600}}
    client = await _client(client_factory, rate_limits=limits)
    for n in (2, 3):  # the limit: two uploads, then a 429
        response = await upload(client, stripes(n * 2, 4))
        assert response.status_code == 201, response.text
    response = await upload(client, stripes(8, 4))
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0
    assert await _stored(client) == 2 * 2  # meta and data of two models


async def test_stored_bytes_quota(client_factory: ClientFactory) -> None:
    first, second = stripes(6, 4), stripes(10, 4)
    sizes = [len(uploads.canonical_upload("sample", d, uploads.UploadOptions())[0])
             for d in (first, second)]  # fmt: skip
    quota = sum(sizes)  # the two fit exactly
    client = await _client(client_factory, model_bytes_per_user=quota)
    models = client.app.state.store.models
    assert models.quota_bytes == quota
    assert (await upload(client, first)).status_code == 201
    assert (await upload(client, second)).status_code == 201
    third = await upload(client, stripes(12, 4))
    assert third.status_code == 413, third.text
    assert "delete a model first" in third.json()["detail"]
    assert (await client.get("/api/models")).json()["used_bytes"] == models.quota_bytes


async def test_private_shared_and_owner_only(client_factory: ClientFactory) -> None:
    owner = await _client(client_factory)
    model = (await upload(owner, ISLANDS, name="Mine")).json()
    other = await signed_in(owner, "someone-else")
    assert (await other.get(f"/api/models/{model['id']}")).status_code == 404
    assert (await other.get(model["preview"])).status_code == 404
    assert model["id"] not in [m["id"] for m in (await other.get("/api/models")).json()["models"]]
    body = {"name": "x", "model": model["id"]}
    assert (await other.post("/api/worlds", json=body)).status_code == 404
    shared = await owner.patch(f"/api/models/{model['id']}", json={"shared": True})
    assert shared.status_code == 200
    assert shared.json()["shared"]
    seen = (await other.get("/api/models")).json()["models"]
    assert [m["id"] for m in seen] == [model["id"]]
    assert not seen[0]["mine"]
    assert (await other.patch(f"/api/models/{model['id']}", json={"name": "y"})).status_code == 403
    assert (await other.delete(f"/api/models/{model['id']}")).status_code == 403
    renamed = await owner.patch(f"/api/models/{model['id']}", json={"name": "Renamed"})
    assert renamed.json()["name"] == "Renamed"
    assert (await owner.patch(f"/api/models/{model['id']}", json={})).status_code == 422
    nulls = {"name": None, "shared": None}  # the schema admits neither (anyOf name / shared)
    assert (await owner.patch(f"/api/models/{model['id']}", json=nulls)).status_code == 422
    schema = (await owner.get("/openapi.json")).json()["components"]["schemas"]["ModelChange"]
    assert [sorted(alt["required"]) for alt in schema["anyOf"]] == [["name"], ["shared"]]
    assert (await owner.get("/api/models/" + "g" * 64)).status_code == 404  # ids are opaque
    assert (await owner.get("/api/models/" + "0" * 64)).status_code == 404
    signed_out = await client_factory()
    assert (await signed_out.get("/api/models")).status_code == 401
    assert (await upload(signed_out, ISLANDS)).status_code == 401


async def test_the_same_bytes_from_someone_else_make_their_own_model(
    client_factory: ClientFactory,
) -> None:
    # An upload reveals nothing of other people's models: the same bytes and options, private or
    # shared, give the uploader a model of their own (201), and their own repeat is idempotent.
    first = await _client(client_factory)
    secret = (await upload(first, ISLANDS, name="Secret")).json()
    second = await signed_in(first, "same-bytes")
    response = await upload(second, ISLANDS, name="Also mine")
    assert response.status_code == 201, response.text
    model = response.json()
    assert model["id"] != secret["id"]
    assert (model["name"], model["mine"], model["shared"]) == ("Also mine", True, False)
    options = {"N": 3, "symmetry": 8, "periodic": True, "ground": False}
    assert model["options"] == secret["options"] == options  # the owner's number is not shown
    again = await upload(second, ISLANDS, name="Renamed?")
    assert again.status_code == 200
    assert (again.json()["id"], again.json()["name"]) == (model["id"], "Also mine")
    assert [m["id"] for m in (await first.get("/api/models")).json()["models"]] == [secret["id"]]
    listed = (await second.get("/api/models")).json()
    assert [m["id"] for m in listed["models"]] == [model["id"]]
    assert listed["used_bytes"] == model["size"]
    # the second owner's world over their copy never holds up the first owner's delete
    world = await second.post("/api/worlds", json={"name": "Over mine", "model": model["id"]})
    assert world.status_code == 201, world.text
    assert (await first.delete(f"/api/models/{secret['id']}")).status_code == 204
    assert (await second.get(f"/api/models/{model['id']}")).status_code == 200
    # a shared model is no different: the uploader gets their own copy, not the shared one
    public = (await upload(first, ISLANDS, name="Shared", N=2)).json()
    assert (await first.patch(f"/api/models/{public['id']}", json={"shared": True})).is_success
    copy = await upload(second, ISLANDS, name="My copy", N=2)
    assert copy.status_code == 201
    assert copy.json()["id"] != public["id"]
    assert copy.json()["mine"]


async def test_a_cross_site_upload_is_refused(client_factory: ClientFactory) -> None:
    client = await _client(client_factory)
    files = {"file": ("s.png", ISLANDS, "image/png")}
    response = await client.post(
        "/api/models", files=files, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert await _stored(client) == 0


async def test_a_world_from_a_model_is_preparing_and_keeps_its_model(
    client_factory: ClientFactory,
) -> None:
    client = await _client(client_factory)
    # a model no other test builds a library for (the session's cache folder is shared)
    model = (await upload(client, stripes(14, 6, colours=3), N=2)).json()
    response = await client.post("/api/worlds", json={"name": "Mine", "model": model["id"]})
    assert response.status_code == 201, response.text
    world = response.json()
    assert world["model"] == model["id"]
    assert world["kind"] == "overlapping"
    prep = (await client.get(f"/api/worlds/{world['id']}/preparation")).json()
    assert prep["state"] == "preparing"  # no worker runs in this test
    jobs = (await client.get(f"/api/jobs?world_id={world['id']}")).json()["jobs"]
    assert [j["kind"] for j in jobs] == ["library"]
    tile = await client.get(f"/tiles/{world['id']}/0/0/0.png")
    assert tile.status_code == 503  # never built on a request: the job builds the library

    refused = await client.delete(f"/api/models/{model['id']}")
    assert refused.status_code == 409
    assert "1 world use" in refused.json()["detail"]
    both = await client.post(
        "/api/worlds", json={"name": "x", "model": model["id"], "tileset": "pipes"}
    )
    assert both.status_code == 422
    assert (await client.delete(f"/api/worlds/{world['id']}")).status_code == 204
    assert (await client.delete(f"/api/models/{model['id']}")).status_code == 204
    assert (await client.get("/api/models")).json() == {
        "models": [],
        "used_bytes": 0,
        "quota_bytes": client.app.state.store.models.quota_bytes,
    }
    assert await _stored(client) == 0


async def test_a_restored_model_starts_building_its_library_when_its_world_asks(
    client_factory: ClientFactory,
) -> None:
    # A backup keeps models but not their libraries: restore clears ``library`` and ``job``.
    # The world's first question about its preparation starts the build (no "lost" dead end).
    client = await _client(client_factory)
    me = (await client.get("/api/auth/me")).json()["id"]
    model = (await upload(client, stripes(12, 6, colours=3), N=2)).json()
    world = (await client.post("/api/worlds", json={"name": "Old", "model": model["id"]})).json()
    store = client.app.state.store
    (lost,) = (await client.get(f"/api/jobs?world_id={world['id']}")).json()["jobs"]
    await store.jobs.fail(lost["id"], me, "gone with the old server")
    record = await store.models.get(model["id"])
    data = await store.models.data(model["id"])
    assert record is not None
    assert data is not None
    await store.models.restore(record, data, [world["id"]])
    restored = await store.models.get(model["id"])
    assert (restored.library, restored.job) == ("", "")  # as after a restore

    prep = (await client.get(f"/api/worlds/{world['id']}/preparation")).json()
    assert prep["state"] == "preparing", prep
    (job,) = (await client.get(f"/api/jobs?world_id={world['id']}")).json()["jobs"]
    assert (job["kind"], job["state"]) == ("library", "queued")
    assert job["id"] != lost["id"]
    building = await store.models.get(model["id"])
    assert building.job == job["id"]
    assert (await store.jobs.get(job["id"])).owner == me  # the world's owner
    again = (await client.get(f"/api/worlds/{world['id']}/preparation")).json()
    assert again["state"] == "preparing"  # the same build, not a second one
    assert len((await client.get(f"/api/jobs?world_id={world['id']}")).json()["jobs"]) == 1


async def test_openapi_documents_the_model_routes(client_factory: ClientFactory) -> None:
    client = await client_factory()
    paths = (await client.get("/openapi.json")).json()["paths"]
    post = paths["/api/models"]["post"]
    assert "multipart/form-data" in post["requestBody"]["content"]
    assert {"200", "201", "400", "401", "413", "422", "429"} <= set(post["responses"])
    one = paths["/api/models/{digest}"]
    assert {"get", "patch", "delete"} <= set(one)
    assert {"403", "404", "409"} <= set(one["delete"]["responses"])
    assert (
        "image/png"
        in paths["/api/models/{digest}/preview.png"]["get"]["responses"]["200"]["content"]
    )
    assert {"get", "post"} <= set(paths["/api/worlds/{world_id}/preparation"])
    create = (await client.get("/openapi.json")).json()["components"]["schemas"]["WorldCreate"]
    assert "model" in create["properties"]
    assert "tileset" in create["properties"]


async def test_a_failed_preparation_can_be_started_again(client_factory: ClientFactory) -> None:
    client = await _client(client_factory)
    model = (await upload(client, stripes(18, 6, colours=3), N=2)).json()
    world = (await client.post("/api/worlds", json={"name": "W", "model": model["id"]})).json()
    path = f"/api/worlds/{world['id']}/preparation"
    (job,) = (await client.get(f"/api/jobs?world_id={world['id']}")).json()["jobs"]
    assert (await client.delete(f"/api/jobs/{job['id']}")).status_code == 204
    failed = (await client.get(path)).json()
    assert failed["state"] == "failed"
    assert failed["message"] == "cancelled by its owner"
    again = await client.post(path)
    assert again.status_code == 200, again.text
    assert again.json()["state"] == "preparing"
    (second,) = (await client.get(f"/api/jobs?world_id={world['id']}")).json()["jobs"]
    assert second["id"] != job["id"]
    assert second["kind"] == "library"
    # a second world over the same model shares the build in flight
    other = (await client.post("/api/worlds", json={"name": "V", "model": model["id"]})).json()
    assert (await client.get(f"/api/jobs?world_id={other['id']}")).json()["jobs"] == []
    assert (await client.get(f"/api/worlds/{other['id']}/preparation")).json()["state"] == (
        "preparing"
    )
    signed_out = await client_factory()
    assert (await signed_out.post(path)).status_code in (401, 404)
