"""Everything that draws a world draws its edits, the way map tiles do: export, pre-render and
tile-archive jobs (:class:`~worldgen.jobs.runner.JobRunner`, here on an in-process pool that calls
the same :mod:`worldgen.world.api` functions as the real one) and ``worldgen region --world``.
Each is compared with the tiles (and regions) the app serves after the edits."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from tests.edits.conftest import Crew
from worldgen.cli import main
from worldgen.jobs.runner import JobRunner, spec_params
from worldgen.store.client import Store
from worldgen.web.generation import spec_for
from worldgen.world import api
from worldgen.world.pool import WorldCache
from worldgen.world.spec import WorldSpec

pytestmark = pytest.mark.anyio

T = TypeVar("T")
WINDOW = {"x": -8, "y": -8, "w": 48, "h": 40}
EDITED = {"x": 2, "y": 3, "w": 24, "h": 20}


class ThreadPool:
    """The job runner's pool in this process: the real pool's functions, in one thread."""

    workers = 2

    def __init__(self) -> None:
        self.worlds = WorldCache(2)
        self._threads = ThreadPoolExecutor(1)

    def _submit(self, fn: Callable[[], T]) -> Future[T]:
        return self._threads.submit(fn)

    def submit_export(
        self, spec: WorldSpec, x: int, y: int, w: int, h: int, scale: int
    ) -> Future[bytes]:
        return self._submit(lambda: api.export_png(self.worlds.get(spec), x, y, w, h, scale))

    def submit_tile(self, spec: WorldSpec, z: int, x: int, y: int) -> Future[bytes]:
        return self._submit(lambda: api.tile_png(self.worlds.get(spec), z, x, y))

    def submit_version(self, spec: WorldSpec) -> Future[str]:
        return self._submit(lambda: self.worlds.get(spec).version)

    def close(self) -> None:
        self._threads.shutdown()


@pytest.fixture
def pool() -> Iterator[ThreadPool]:
    threads = ThreadPool()
    yield threads
    threads.close()


def _pixels(png: bytes) -> npt.NDArray[np.uint8]:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"))


async def _edited_crew(make_crew: Any) -> tuple[Crew, Store, WorldSpec]:
    c: Crew = await make_crew()
    for body in (
        {"kind": "regenerate", "rect": EDITED},
        {"kind": "lock", "rect": {"x": 5, "y": 5, "w": 2, "h": 2}},
    ):
        response = await c.editor.post(c.url("edits"), json=body)
        assert response.status_code == 201, response.text
    store: Store = c.owner.app.state.store
    record = await store.worlds.get(c.world_id)
    assert record is not None
    return c, store, spec_for(record)


async def _run_job(
    store: Store, pool: ThreadPool, c: Crew, spec: WorldSpec, kind: str, **extra: int
) -> bytes:
    params: dict[str, Any] = {"spec": spec_params(spec), **WINDOW, **extra}
    record = await store.jobs.create(c.world_id, "u" * 16, kind, params, limit=5)
    assert record is not None
    await JobRunner(pool, store, band_px=64).run(record.id)
    done = await store.jobs.get(record.id)
    assert done is not None
    assert done.state == "done", done.message
    return await store.jobs.read_result(record.id, 0, done.size)


async def test_tile_archive_and_prerender_jobs_hold_the_served_tiles(
    make_crew: Any, pool: ThreadPool
) -> None:
    c, store, spec = await _edited_crew(make_crew)
    archive = await _run_job(store, pool, c, spec, "tiles", z_min=-3, z_max=2)
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        entries = {name: zf.read(name) for name in zf.namelist()}
    assert len(entries) > 30
    differs = 0
    for name, data in entries.items():
        served = await c.viewer.get(f"/tiles/{c.world_id}/{name}")
        assert served.status_code == 200, name
        assert data == served.content, name
        z, x, rest = name.split("/")
        generated = api.tile_png(pool.worlds.get(spec), int(z), int(x), int(rest.split(".")[0]))
        differs += data != generated
    assert differs >= 6  # the edited cells show at every zoom, -3 .. 2

    # a pre-render puts each edited tile under the cache key the tile route reads
    await _run_job(store, pool, c, spec, "prerender", z_min=1, z_max=1)
    version = pool.worlds.get(spec).version
    edited = await c.owner.app.state.edits.tile_version(store.edits, c.world_id, 1, 0, 0)
    assert edited > 0
    cached = await store.tiles.get(c.world_id, f"{version}-e{edited}", 1, 0, 0)
    assert cached == (await c.viewer.get(f"/tiles/{c.world_id}/1/0/0.png")).content


async def test_an_export_job_matches_the_served_tiles(make_crew: Any, pool: ThreadPool) -> None:
    c, store, spec = await _edited_crew(make_crew)
    # 16 px a cell: the pixels of the z = 2 tiles (16 x 16 cells each) over the window
    window = {"x": 0, "y": 0, "w": 32, "h": 32, "scale": 16}
    params: dict[str, Any] = {"spec": spec_params(spec), **window}
    record = await store.jobs.create(c.world_id, "u" * 16, "export", params, limit=5)
    assert record is not None
    await JobRunner(pool, store, band_px=64).run(record.id)
    done = await store.jobs.get(record.id)
    assert done is not None
    assert done.state == "done", done.message
    pixels = _pixels(await store.jobs.read_result(record.id, 0, done.size))
    tiles = np.concatenate(
        [
            np.concatenate(
                [
                    _pixels((await c.viewer.get(f"/tiles/{c.world_id}/2/{tx}/{ty}.png")).content)
                    for tx in (0, 1)
                ],
                axis=1,
            )
            for ty in (0, 1)
        ],
        axis=0,
    )
    assert np.array_equal(pixels, tiles)
    query = "&".join(f"{k}={v}" for k, v in window.items())
    sync = await c.viewer.get(f"/api/worlds/{c.world_id}/export.png?{query}")
    assert np.array_equal(_pixels(sync.content), tiles)
    generated = _pixels(api.export_png(pool.worlds.get(spec), 0, 0, 32, 32, 16))
    assert not np.array_equal(generated, tiles)


async def test_cli_region_of_a_stored_world_has_its_edits(
    make_crew: Any, shared_valkey: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c, _, spec = await _edited_crew(make_crew)
    prefix = c.owner.app.state.settings.key_prefix
    target = ["--world", c.world_id, "--redis-url", shared_valkey, "--key-prefix", prefix]
    window = ["--x", "16", "--y", "0", "--width", "16", "--height", "16"]
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    for out in (out_json, out_png):
        code = await asyncio.to_thread(main, ["region", *target, *window, "--out", str(out)])
        assert code == 0, capsys.readouterr().err
    doc = json.loads(out_json.read_text())
    served = (await c.viewer.get(c.url("region?x=16&y=0&w=16&h=16"))).json()
    assert doc["cells"] == served["cells"]
    generated = pool_free_region(spec)
    assert doc["cells"] != generated
    tile = (await c.viewer.get(f"/tiles/{c.world_id}/2/1/0.png")).content
    assert np.array_equal(_pixels(out_png.read_bytes()), _pixels(tile))

    # bad input is a clear refusal (exit code 2), not a traceback
    assert await asyncio.to_thread(main, ["region", *target, "--seed", "1", *window,
                                          "--out", str(out_json)]) == 2  # fmt: skip
    no_seed = ["region", "--tileset", "terrain", *window, "--out", str(out_json)]
    assert await asyncio.to_thread(main, no_seed) == 2
    unknown = ["--world", "NoSuchWorld1", *target[2:]]
    assert await asyncio.to_thread(main, ["region", *unknown, *window,
                                          "--out", str(out_json)]) == 2  # fmt: skip


def pool_free_region(spec: WorldSpec) -> list[int]:
    """The generated cells of the CLI test's window (no edits)."""
    cells: list[int] = api.build_world(spec).region(16, 0, 16, 16).reshape(-1).tolist()
    return cells
