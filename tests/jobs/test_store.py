"""The job repository and the job runner on a real Valkey: records, the per-user limit, results
that expire, and how an attempt ends (done; failed at once on bad input; retried, then failed
after the last attempt). The runner's pool is a stand-in here (its failures are the point);
tests/jobs/test_worker.py runs the real one behind a real Dramatiq worker."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import Future
from pathlib import Path

import pytest
from PIL import Image

from tests.harness import app_settings
from worldgen.errors import InputError
from worldgen.jobs.runner import JobRunner, spec_params
from worldgen.store.client import Store
from worldgen.store.jobs import JobStore, parse_job_id
from worldgen.world.spec import WorldSpec

pytestmark = pytest.mark.anyio

WORLD = "W0rld-1234"
USER = "u" * 16
SPEC = WorldSpec.of_kind("tiled", "pipes", 1)


@pytest.fixture
async def store(shared_valkey: str, tmp_path: Path) -> AsyncIterator[Store]:
    settings = app_settings(shared_valkey, tmp_path, job_result_ttl_s=60)
    store = Store.open(shared_valkey, settings)
    yield store
    await store.aclose()


def _params(**extra: object) -> dict[str, object]:
    return {"spec": spec_params(SPEC), "x": 0, "y": 0, "w": 4, "h": 4, "scale": 1, **extra}


def test_job_ids() -> None:
    assert parse_job_id(f"{WORLD}.{'a' * 16}") == (WORLD, "a" * 16)
    for bad in ["", WORLD, f"{WORLD}.", f"{WORLD}.{'a' * 15}", f"{WORLD}.{'a' * 15}/", "x.y"]:
        assert parse_job_id(bad) is None, bad


async def test_records_limit_and_results(store: Store) -> None:
    jobs = store.jobs
    first = await jobs.create(WORLD, USER, "export", _params(), limit=2)
    second = await jobs.create(WORLD, USER, "export", _params(), limit=2)
    assert first is not None
    assert second is not None
    assert await jobs.create(WORLD, USER, "export", _params(), limit=2) is None
    assert await jobs.active(USER) == 2

    started = await jobs.start(first.id)
    assert started is not None
    assert (started.state, started.attempts) == ("running", 1)
    await jobs.progress(first.id, 250, "band 1 of 2")
    record = await jobs.get(first.id)
    assert record is not None
    assert (record.percent, record.stage) == (99, "band 1 of 2")
    await jobs.append(first.id, b"abc")
    await jobs.append(first.id, b"def")
    await jobs.complete(first.id, USER)
    done = await jobs.get(first.id)
    assert done is not None
    assert (done.state, done.percent, done.size) == ("done", 100, 6)
    assert await jobs.read_result(first.id, 2, 3) == b"cde"
    assert await jobs.start(first.id) is None  # a redelivered message after the end: skipped
    assert await jobs.active(USER) == 1

    await jobs.fail(second.id, USER, "no such tile")
    failed = await jobs.get(second.id)
    assert failed is not None
    assert (failed.state, failed.message) == ("failed", "no such tile")
    assert await jobs.active(USER) == 0


async def test_results_expire(store: Store) -> None:
    jobs = JobStore(store.jobs.redis, store.keys, result_ttl_s=1)
    record = await jobs.create(WORLD, USER, "export", _params(), limit=5)
    assert record is not None
    await jobs.start(record.id)
    await jobs.append(record.id, b"png")
    await jobs.complete(record.id, USER)
    assert await jobs.result_size(record.id) == 3
    await asyncio.sleep(1.6)
    assert await jobs.result_size(record.id) == 0
    assert await jobs.get(record.id) is None


class FailingPool:
    """Every export fails with ``error``."""

    workers = 1

    def __init__(self, error: Exception) -> None:
        self.error = error

    def _failed(self) -> Future[bytes]:
        future: Future[bytes] = Future()
        future.set_exception(self.error)
        return future

    def submit_export(
        self, spec: WorldSpec, x: int, y: int, w: int, h: int, s: int
    ) -> Future[bytes]:
        return self._failed()

    def submit_tile(self, world: WorldSpec, z: int, x: int, y: int) -> Future[bytes]:
        return self._failed()

    def submit_version(self, spec: WorldSpec) -> Future[str]:
        future: Future[str] = Future()
        future.set_result("v1")
        return future


async def test_bad_input_fails_at_once(store: Store) -> None:
    runner = JobRunner(FailingPool(InputError("the picture is too large")), store)
    record = await store.jobs.create(WORLD, USER, "export", _params(), limit=5)
    assert record is not None
    await runner.run(record.id)  # no exception: nothing to retry
    failed = await store.jobs.get(record.id)
    assert failed is not None
    assert (failed.state, failed.message, failed.attempts) == (
        "failed",
        "the picture is too large",
        1,
    )
    assert _count(runner, "export", "failed") == 1
    assert _count(runner, "export", "done") == 0


async def test_errors_are_retried_then_fail(store: Store) -> None:
    runner = JobRunner(FailingPool(RuntimeError("disk on fire")), store, max_attempts=2)
    owner = uuid.uuid4().hex[:16]
    record = await store.jobs.create(WORLD, owner, "prerender", _params(z_min=0, z_max=0), limit=5)
    assert record is not None
    with pytest.raises(RuntimeError):
        await runner.run(record.id)
    retried = await store.jobs.get(record.id)
    assert retried is not None
    assert (retried.state, retried.stage) == ("queued", "retrying after: internal error")
    assert await store.jobs.active(owner) == 1
    await runner.run(record.id)  # the last attempt: the job ends, the queue is done with it
    failed = await store.jobs.get(record.id)
    assert failed is not None
    assert (failed.state, failed.message) == ("failed", "internal error (after 2 attempts)")
    assert await store.jobs.active(owner) == 0
    assert _count(runner, "prerender", "retried") == 1
    assert _count(runner, "prerender", "failed") == 1
    assert runner.metrics.registry.get_sample_value("worldgen_job_worker_busy") == 0


class HeldPool(FailingPool):
    """Exports wait until the test releases them with a real 4 x 4 px picture."""

    def __init__(self) -> None:
        super().__init__(RuntimeError("unused"))
        self.future: Future[bytes] = Future()

    def submit_export(self, spec: WorldSpec, *window: int) -> Future[bytes]:
        return self.future


async def test_a_cancelled_job_stops_and_stays_cancelled(store: Store) -> None:
    pool = HeldPool()
    runner = JobRunner(pool, store)
    record = await store.jobs.create(WORLD, USER, "export", _params(), limit=50)
    assert record is not None
    attempt = asyncio.create_task(runner.run(record.id))
    while (await store.jobs.get(record.id)).state != "running":  # type: ignore[union-attr]
        await asyncio.sleep(0.01)
    assert await store.jobs.cancel(record.id, USER)
    assert not await store.jobs.cancel(record.id, USER)  # already ended
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="PNG")
    pool.future.set_result(buf.getvalue())
    await asyncio.wait_for(attempt, 10)  # stops at its next progress report, no retry
    ended = await store.jobs.get(record.id)
    assert ended is not None
    assert (ended.state, ended.message) == ("failed", "cancelled by its owner")
    assert _count(runner, "export", "stopped") == 1
    assert await store.jobs.result_size(record.id) == 0
    assert not await store.jobs.complete(record.id, USER)


async def test_a_job_whose_workers_keep_dying_ends_failed(store: Store) -> None:
    runner = JobRunner(FailingPool(RuntimeError("unused")), store, max_attempts=3)
    record = await store.jobs.create(WORLD, USER, "export", _params(), limit=50)
    assert record is not None
    for _ in range(3):  # three attempts whose worker was killed: started, never ended
        assert await store.jobs.start(record.id) is not None
    await runner.run(record.id)  # the fourth delivery gives up without computing
    failed = await store.jobs.get(record.id)
    assert failed is not None
    assert (failed.state, failed.attempts) == ("failed", 4)
    assert failed.message == "the job was interrupted 3 times (a worker died)"
    assert _count(runner, "export", "failed") == 1


def _count(runner: JobRunner, kind: str, outcome: str) -> float:
    """How many attempts of ``kind`` ended with ``outcome`` in the runner's metrics."""
    labels = {"kind": kind, "outcome": outcome}
    value = runner.metrics.registry.get_sample_value("worldgen_jobs_total", labels)
    return value or 0.0
