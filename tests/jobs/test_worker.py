"""Jobs end to end: the app on a real Valkey, real ``worldgen worker`` processes (Dramatiq's
Redis broker, a generation pool), the HTTP API from queueing to download.

A worker killed with SIGKILL mid-job (its whole process group: the worker and its pool) leaves
the message unacknowledged; a second worker, whose queue maintenance treats a worker silent for
2 s as dead, gets it back and completes the job (attempt 2) with the right pixels. ``serve``'s
worker child is started again when it dies.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from tests.accounts import sign_in
from tests.conftest import ClientFactory
from tests.harness import AppClient
from worldgen.jobs.worker import WorkerChild

pytestmark = pytest.mark.anyio

WAIT_S = 300.0
"""Longest a test waits for a job (a cold worker builds the world's patch library)."""

StartWorker = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def start_worker(shared_valkey: str, tmp_path: Path) -> Iterator[StartWorker]:
    """``start_worker(prefix, *flags)``: a ``worldgen worker`` process (its own session, so the
    test can kill its pool with it) on the shared Valkey; all killed at teardown."""
    started: list[subprocess.Popen[bytes]] = []

    def start(prefix: str, *flags: str) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env.update(
            {"REDIS_URL": shared_valkey, "WORLDGEN_KEY_PREFIX": prefix, "WORLDGEN_WORKERS": "1"}
        )
        env.pop("WORLDGEN_BROKER_URL", None)
        log = (tmp_path / f"worker-{len(started)}.log").open("wb")
        argv = [sys.executable, "-c", "import sys; from worldgen.cli import main; sys.exit(main())"]
        process = subprocess.Popen(
            [*argv, "worker", "--threads", "1", *flags],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


async def _setup(client_factory: ClientFactory) -> tuple[AppClient, str, str]:
    client = await client_factory()
    await sign_in(client)
    body = {"name": "jobs", "tileset": "pipes", "seed": 7}
    response = await client.post("/api/worlds", json=body)
    assert response.status_code == 201, response.text
    return client, response.json()["id"], client.app.state.settings.key_prefix


async def _wait(
    client: AppClient, job_id: str, until: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while True:
        response = await client.get(f"/api/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if until(job):
            return job
        assert job["state"] != "failed", job
        assert time.monotonic() < deadline, f"job still {job} after {WAIT_S} s"
        await asyncio.sleep(0.2)


def _pixels(png: bytes) -> npt.NDArray[np.uint8]:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"))


async def _sync_export(client: AppClient, world_id: str, **window: int) -> npt.NDArray[np.uint8]:
    query = "&".join(f"{k}={v}" for k, v in window.items())
    response = await client.get(f"/api/worlds/{world_id}/export.png?{query}")
    assert response.status_code == 200, response.text
    return _pixels(response.content)


async def test_export_prerender_and_tile_archive_jobs(
    client_factory: ClientFactory, start_worker: StartWorker
) -> None:
    client, world_id, prefix = await _setup(client_factory)
    metrics_port = _free_port()
    start_worker(prefix, "--band-px", "64", "--metrics-port", str(metrics_port))
    window = {"x": -37, "y": 11, "w": 300, "h": 200, "scale": 2}
    response = await client.post(f"/api/worlds/{world_id}/exports", json=window)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    job = await _wait(client, job_id, lambda j: j["state"] == "done")
    assert job["percent"] == 100
    assert job["result"] == f"/api/jobs/{job_id}/result"
    assert job["expires"] > time.time()
    result = await client.get(job["result"])
    assert result.status_code == 200
    assert result.headers["content-type"] == "image/png"
    assert int(result.headers["content-length"]) == job["size"] == len(result.content)
    # 7 bands of 32 rows of cells, joined: the pixels of the one-piece export
    expected = await _sync_export(client, world_id, **window)
    assert expected.shape == (400, 600, 3)
    assert np.array_equal(_pixels(result.content), expected)
    # the same job again writes the same bytes (what a retried attempt relies on)
    again = await client.post(f"/api/worlds/{world_id}/exports", json=window)
    second = await _wait(client, again.json()["id"], lambda j: j["state"] == "done")
    assert (await client.get(second["result"])).content == result.content

    prerender = {"x": 0, "y": 0, "w": 128, "h": 64, "z_min": 0, "z_max": 1}
    response = await client.post(f"/api/worlds/{world_id}/prerenders", json=prerender)
    assert response.status_code == 202, response.text
    done = await _wait(client, response.json()["id"], lambda j: j["state"] == "done")
    # zoom 0: 64 cells a tile (2 x 1 tiles), zoom 1: 32 (4 x 2)
    assert (await client.get(done["result"])).json() == {"tiles": 2 + 8}
    assert await client.app.state.store.tiles.size() >= 10
    tile = await client.get(f"/tiles/{world_id}/1/3/1.png")  # from the cache the job filled
    assert tile.status_code == 200

    response = await client.post(f"/api/worlds/{world_id}/tile-archives", json=prerender)
    assert response.status_code == 202, response.text
    done = await _wait(client, response.json()["id"], lambda j: j["state"] == "done")
    archive = await client.get(done["result"])
    assert archive.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive.content)) as tiles:
        assert tiles.testzip() is None
        assert len(tiles.namelist()) == 10
        assert tiles.read("1/3/1.png") == tile.content

    # the worker's own metrics: every attempt counted by kind and outcome, the queue drained
    async with httpx.AsyncClient(timeout=5) as http:
        scraped = _samples((await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text)
    assert scraped['worldgen_jobs_total{kind="export",outcome="done"}'] == 2
    assert scraped['worldgen_jobs_total{kind="prerender",outcome="done"}'] == 1
    assert scraped['worldgen_jobs_total{kind="tiles",outcome="done"}'] == 1
    assert scraped['worldgen_job_duration_seconds_count{kind="export",outcome="done"}'] == 2
    assert scraped["worldgen_job_worker_busy"] == 0
    assert scraped["worldgen_job_queue_messages"] == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _samples(text: str) -> dict[str, float]:
    """``name{labels}`` -> value of a Prometheus text exposition (comments skipped)."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


async def test_killed_worker_job_is_redelivered(
    client_factory: ClientFactory, start_worker: StartWorker
) -> None:
    client, world_id, prefix = await _setup(client_factory)
    first = start_worker(prefix, "--band-px", "16")
    window = {"x": 0, "y": 0, "w": 1024, "h": 1024, "scale": 1}
    response = await client.post(f"/api/worlds/{world_id}/exports", json=window)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    running = await _wait(client, job_id, lambda j: j["state"] == "running" and j["percent"] > 0)
    assert running["percent"] < 100
    os.killpg(first.pid, signal.SIGKILL)  # the worker and its generation pool, no clean-up
    first.wait(10)

    start_worker(prefix, "--band-px", "16", "--heartbeat-timeout-ms", "2000",
                 "--maintenance-chance", "1000000")  # fmt: skip
    job = await _wait(client, job_id, lambda j: j["state"] == "done")
    record = await client.app.state.store.jobs.get(job_id)
    assert record.attempts == 2
    result = await client.get(job["result"])
    assert result.status_code == 200
    pixels = _pixels(result.content)
    assert pixels.shape == (1024, 1024, 3)
    part = await _sync_export(client, world_id, x=512, y=900, w=100, h=100, scale=1)
    assert np.array_equal(pixels[900:1000, 512:612], part)


async def test_serves_worker_child_is_restarted_and_runs_jobs(
    client_factory: ClientFactory, shared_valkey: str
) -> None:
    client, world_id, _ = await _setup(client_factory)
    child = WorkerChild(client.app.state.settings, shared_valkey, processes=1)
    child.start()
    try:
        first = child.process
        assert first is not None
        os.kill(first.pid, signal.SIGKILL)  # its pool follows within a second
        deadline = time.monotonic() + 30
        while child.restarts == 0:
            assert time.monotonic() < deadline, "the worker child was not restarted"
            await asyncio.sleep(0.1)
        assert child.process is not None
        assert child.process.pid != first.pid
        window = {"x": 0, "y": 0, "w": 64, "h": 64, "scale": 2}
        response = await client.post(f"/api/worlds/{world_id}/exports", json=window)
        assert response.status_code == 202, response.text
        await _wait(client, response.json()["id"], lambda j: j["state"] == "done")
    finally:
        last = child.process
        await asyncio.to_thread(child.stop)
    assert last is not None
    assert last.poll() is not None
    assert child.process is None


async def test_an_export_job_draws_the_edits(
    client_factory: ClientFactory, start_worker: StartWorker
) -> None:
    client, world_id, prefix = await _setup(client_factory)
    window = {"x": -20, "y": -4, "w": 100, "h": 30, "scale": 3}
    before = await _sync_export(client, world_id, **window)
    url = f"/api/worlds/{world_id}/edits"
    # a new solve of 40 x 8 cells across two pieces of a band (a seeded world: always accepted)
    rect = {"x": 3, "y": 2, "w": 40, "h": 8}
    edit = await client.post(url, json={"kind": "regenerate", "rect": rect})
    assert edit.status_code == 201, edit.text
    start_worker(prefix, "--band-px", "16")
    response = await client.post(f"/api/worlds/{world_id}/exports", json=window)
    assert response.status_code == 202, response.text
    job = await _wait(client, response.json()["id"], lambda j: j["state"] == "done")
    pixels = _pixels((await client.get(job["result"])).content)
    expected = await _sync_export(client, world_id, **window)  # drawn with the edits
    assert not np.array_equal(before, expected)
    assert np.array_equal(pixels, expected)
