"""The worker pool: same bytes as serial, reuse across worlds, crash recovery, heavy slots."""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest

from worldgen.errors import GeneratorUnavailableError, InputError
from worldgen.world.api import (
    build_world,
    bundled_names,
    bundled_specs,
    prepare_upload,
    tile_png,
)
from worldgen.world.blocks import World
from worldgen.world.pool import WARMER_NICE, WorkerPool, WorldCache, region_parallel
from worldgen.world.render import render_tile
from worldgen.world.spec import WorldSpec

from .conftest import SHARED_TILESETS, WorldFactory


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    with WorkerPool(2, allow_files=True) as p:
        yield p


def test_pool_matches_serial_and_is_reused(pool: WorkerPool, make_world: WorldFactory) -> None:
    # unaligned (several bands sharing lower-layer rows), few rows (columns too), one cell
    windows = [(-37, -21, 90, 70), (5, 3, 200, 9), (-8, -8, 1, 1)]
    for seed, layers in ((5, 2), (6, 1), (5, 3)):
        for window in windows:
            serial = make_world(seed=seed, layers=layers).region(*window)
            got = pool.region(make_world(seed=seed, layers=layers), *window)
            assert got.dtype == np.int32
            assert np.array_equal(serial, got), (seed, layers, window)
    assert len(pool.start()) == 2  # two distinct processes answer


def test_progress_counts_every_top_block(pool: WorkerPool, make_world: WorldFactory) -> None:
    world = make_world(seed=9)
    seen: list[int] = []
    pool.region(world, 3, -50, 130, 140, seen.append)
    assert sum(seen) == len(world.top_blocks(3, -50, 130, 140))
    assert len(seen) > 1


def test_submit_blocks_tiles_and_windows(pool: WorkerPool, make_world: WorldFactory) -> None:
    world = make_world(seed=11, S=16)
    keys = [(2, 0, 0), (1, -3, 4), (2, 5, -1)]
    got = pool.submit_blocks(world, keys).result()
    assert got.shape == (3, 16, 16)
    assert got.dtype == np.int32
    fresh = make_world(seed=11, S=16)
    for k, key in enumerate(keys):
        assert np.array_equal(got[k], fresh.block(*key))
    assert pool.submit_tile(world, 2, -1, 3).result() == render_tile(fresh, 2, -1, 3)
    assert pool.submit_tile(world, -4, 0, 0).result() == render_tile(fresh, -4, 0, 0)
    window = pool.submit_window(world, -3, -3, 20, 21).result()
    assert np.array_equal(window, fresh.region(-3, -3, 20, 21))
    with pytest.raises(InputError, match="layers"):
        pool.submit_blocks(world, [(3, 0, 0)])


def test_worker_errors_reach_the_caller(pool: WorkerPool, make_world: WorldFactory) -> None:
    with pytest.raises(InputError, match="outside the world"):
        pool.submit_window(make_world(), 2**60, 0, 4, 4).result()
    with pytest.raises(InputError, match="zoom"):
        pool.submit_tile(make_world(), 9, 0, 0).result()


def test_one_shot_parallel_region_matches_serial(make_world: WorldFactory) -> None:
    serial = make_world(seed=5).region(-20, -20, 48, 40)
    assert np.array_equal(region_parallel(make_world(seed=5), -20, -20, 48, 40, workers=1), serial)


def test_spec_worlds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WORLDGEN_CACHE_DIR", str(tmp_path))
    spec = WorldSpec("tileset", "pipes", seed=3, S=8, V=2)
    serial = build_world(spec).region(-10, 4, 40, 30)
    with WorkerPool(1) as one:
        assert np.array_equal(one.region(spec, -10, 4, 40, 30), serial)


def test_bad_use_is_refused(make_world: WorldFactory) -> None:
    with pytest.raises(InputError, match="workers"):
        WorkerPool(0)
    world = make_world()
    bare = World(world.model, 1, S=8, V=3, library=world.lib)
    p = WorkerPool(1)
    with pytest.raises(InputError, match="WorldSpec"):
        p.region(bare, 0, 0, 4, 4)
    p.close()
    with pytest.raises(GeneratorUnavailableError, match="shut down"):
        p.submit_window(world, 0, 0, 4, 4)


def test_shared_tileset_in_pool(pool: WorkerPool, make_world: WorldFactory) -> None:
    world = make_world(SHARED_TILESETS[1], seed=21)
    serial = make_world(SHARED_TILESETS[1], seed=21).region(0, 0, 64, 64)
    assert np.array_equal(pool.region(world, 0, 0, 64, 64), serial)


def _span(pause: float) -> tuple[float, float, int]:
    """Runs in a worker: (start, end) on the system-wide monotonic clock, and the worker's pid."""
    start = time.monotonic()
    time.sleep(pause)
    return start, time.monotonic(), os.getpid()


def _die() -> int:
    """Runs in a worker: kills it (a crash the pool cannot retry its way out of)."""
    os.kill(os.getpid(), signal.SIGKILL)
    return 0


def test_a_killed_worker_is_replaced_and_the_call_retried_once() -> None:
    with WorkerPool(2) as p:
        first = p.start()
        assert len(first) == 2
        running = p.submit(_span, 0.5)
        time.sleep(0.2)
        for pid in p.processes():
            os.kill(pid, signal.SIGKILL)
        _, _, pid = running.result(60)  # retried on a fresh executor
        assert pid not in first
        assert p.restarts == 1
        with pytest.raises(GeneratorUnavailableError, match="crashed"):
            p.submit(_die).result(60)  # fails on both attempts
        assert p.restarts == 3
        assert p.call(_span, 0.0)[2] > 0  # and the pool still works


def test_heavy_tasks_take_turns_and_close_cancels_the_queue() -> None:
    with WorkerPool(2, heavy_slots=1) as p:
        p.start()
        assert p.pending() == 0
        spans = [p.submit(_span, 0.3, heavy=True) for _ in range(3)]
        assert p.pending() == 3  # one running, two waiting for the heavy slot
        got = sorted(f.result(60)[:2] for f in spans)
        deadline = time.monotonic() + 10
        while p.pending() and time.monotonic() < deadline:  # done callbacks run just after
            time.sleep(0.01)
        assert p.pending() == 0
        for (_, end), (start, _) in itertools.pairwise(got):
            assert end <= start  # one heavy task at a time
        blocker = p.submit(_span, 0.5, heavy=True)
        queued = p.submit(_span, 0.0, heavy=True)
        p.close(wait=True)
        assert blocker.done()  # finished, or cancelled before a worker took it
        with pytest.raises(GeneratorUnavailableError, match="shut down"):
            queued.result(60)


def test_urgent_tasks_go_first_and_waiting_tasks_can_be_cancelled() -> None:
    with WorkerPool(1) as p:
        p.start()
        blocker = p.submit(_span, 0.3)
        earlier = [p.submit(_span, 0.02) for _ in range(3)]
        urgent = p.submit(_span, 0.0, urgent=True)
        # tasks waiting in the parent are cancelled without a process: thousands cost no stack
        dropped = [p.submit(_span, 0.0) for _ in range(3000)]
        assert all(f.cancel() for f in dropped)
        last = p.submit(_span, 0.0)
        start = urgent.result(60)[0]
        assert blocker.result(60)[1] <= start  # a running task is never interrupted ...
        starts = [f.result(60)[0] for f in earlier]
        assert start <= min(starts)  # ... but the urgent one goes before every waiting one
        assert starts == sorted(starts)  # the others in arrival order
        assert last.result(60)[0] >= max(starts)
        deadline = time.monotonic() + 10
        while p.pending() and time.monotonic() < deadline:  # done callbacks run just after
            time.sleep(0.01)
        assert p.pending() == 0
        # a task that reaches the lanes after close() (a submit racing it) is refused, not lost
        p.close()
        late: Future[tuple[float, float, int]] = Future()
        p._enqueue(late, _span, (0.0,), False)
        with pytest.raises(GeneratorUnavailableError, match="shut down"):
            late.result(10)


def test_timeouts_and_cancellation() -> None:
    with WorkerPool(1, timeout_s=0.2) as p:
        p.start()
        with pytest.raises(GeneratorUnavailableError, match=r"longer than 0\.2 s"):
            p.call(_span, 1.0)
        behind = p.submit(_span, 0.0)  # behind the slow task: the caller may give up on it
        assert behind.cancel()
        assert behind.cancelled()
        assert p.submit(_span, 0.0).result(60)[2] > 0  # the pool still serves


def test_world_cache_keeps_the_last_worlds(world_cache: Path) -> None:
    cache = WorldCache(2)
    specs = [WorldSpec("tileset", "pipes", seed, S=8, V=2) for seed in range(3)]
    worlds = [cache.get(s) for s in specs]
    assert cache.get(specs[2]) is worlds[2]
    assert cache.get(specs[0]) is not worlds[0]  # dropped: the least recently used
    with pytest.raises(InputError, match="bundled"):
        cache.get(WorldSpec("tileset", "/etc/passwd", 1))
    found = []

    def build() -> None:
        found.append(cache.get(specs[1]))

    threads = [threading.Thread(target=build) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(w is found[0] for w in found)


def test_pool_tiles_are_the_in_process_tiles_and_reuse_chunks(world_cache: Path) -> None:
    spec = WorldSpec("tileset", "pipes", 5)
    world = build_world(spec)
    with WorkerPool(2) as p:
        assert len(p.prepare(spec)) == 2  # world and far-zoom summary built in both workers
        # a lone z=0 tile (cut into bands for the idle workers); a z=-1 tile around it (three new
        # chunks, one kept); detail tiles drawn from a kept chunk, and one from a new chunk
        for key in ((0, -1, 0), (-1, -1, 0), (1, -2, 1), (2, -3, 3), (1, 7, 7)):
            assert p.submit_tile(spec, *key).result(600) == tile_png(world, *key), key
        assert (p.chunk_misses, p.chunk_hits) == (4, 3)
        # a z=-2 tile computed once serves every cell zoom under it without computing again
        assert p.submit_tile(spec, -2, -1, -1).result(600) == tile_png(world, -2, -1, -1)
        misses = p.chunk_misses
        for key in ((-1, -2, -1), (0, -1, -3), (1, -5, -2), (2, -9, -9)):
            assert p.submit_tile(spec, *key).result(600) == tile_png(world, *key), key
        assert p.chunk_misses == misses
        # concurrent tiles sharing chunks; bad tiles fail as in-process ones do
        keys = [(-1, 4, 4), (0, 8, 8), (0, 9, 9), (-2, 2, 2), (-5, 0, -1)]
        futures = [p.submit_tile(spec, *k) for k in keys]
        assert [f.result(600) for f in futures] == [tile_png(world, *k) for k in keys]
        with pytest.raises(InputError, match="outside the world"):
            p.submit_tile(spec, 0, 2**50, 0).result(60)
        with pytest.raises(InputError, match="zoom"):
            p.submit_tile(spec, 3, 0, 0).result(60)


def test_an_opening_view_shows_its_first_tiles_before_its_last_chunks_are_done(
    world_cache: Path,
) -> None:
    spec = WorldSpec("tileset", "terrain", 8)
    world = build_world(spec)
    keys = [(0, x, 5) for x in range(8)]  # z = 0: a tile is one chunk
    with WorkerPool(1) as p:  # no idle worker: each chunk is computed whole, with its tile
        futures = [p.submit_tile(spec, *k) for k in keys]
        first = futures[0].result(600)
        # the first tile came with its own chunk, not after every chunk asked for meanwhile
        assert not futures[-1].done()
        assert p._chunks.get(spec, (7, 5)) is None
        assert first == tile_png(world, *keys[0])
        assert [f.result(600) for f in futures[1:]] == [tile_png(world, *k) for k in keys[1:]]
        # each chunk was kept: the detail tiles over them need no new chunk
        misses = p.chunk_misses
        assert p.submit_tile(spec, 2, 4 * 7, 4 * 5).result(600) == tile_png(world, 2, 28, 20)
        assert p.chunk_misses == misses == len(keys)


def _watch_niceness(pool: WorkerPool, pid: int, until_nice: bool = False) -> int:
    """The highest niceness the warmer ``pid`` had while it ran (polled), or as soon as it is
    at :data:`WARMER_NICE` when ``until_nice``."""
    highest = 0
    deadline = time.monotonic() + 120
    while pool.warming and time.monotonic() < deadline:
        try:
            highest = max(highest, os.getpriority(os.PRIO_PROCESS, pid))
        except ProcessLookupError:
            break
        if until_nice and highest == WARMER_NICE:
            break
        time.sleep(0.005)
    return highest


def test_the_cache_warmer_fills_the_cache_at_the_lowest_priority(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WORLDGEN_CACHE_DIR", str(tmp_path))
    specs = [WorldSpec("tileset", "pipes", 0, S=8, V=2), *bundled_specs(["roads"])]
    with WorkerPool(1) as p:
        pid = p.start_warmer(specs)
        assert pid is not None
        assert p.warming
        assert _watch_niceness(p, pid) == WARMER_NICE
        assert not p.warming
        assert p.start_warmer([]) is None  # nothing to warm: no process
    files = {f: f.stat().st_mtime_ns for f in tmp_path.rglob("*") if f.is_file()}
    for spec in specs:  # everything a world needs was there: nothing is built again
        names = prepare_upload(spec)
        assert len(names) >= 3, names  # library, calibration, summary (and its ground rows)
        for name in names:
            assert files.get(tmp_path / name) == (tmp_path / name).stat().st_mtime_ns, name
    assert not [f for f in files if f.suffix != ".npz"]  # no temporary file left behind


def test_a_closing_pool_stops_its_cache_warmer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WORLDGEN_CACHE_DIR", str(tmp_path))
    p = WorkerPool(1)
    pid = p.start_warmer(bundled_specs(["lakes", "city"]))  # tens of seconds of work
    assert pid is not None
    assert _watch_niceness(p, pid, until_nice=True) == WARMER_NICE
    p.close()
    assert not p.warming
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(GeneratorUnavailableError, match="shut down"):
        p.start_warmer(bundled_specs(["pipes"]))


def test_bundled_specs_are_the_catalog_defaults() -> None:
    specs = bundled_specs()
    assert [s.name for s in specs] == bundled_names()
    assert bundled_specs(["flowers"]) == [WorldSpec.of_kind("overlapping", "flowers", 0)]
    assert bundled_specs(["flowers"])[0].ground  # the catalog's settings, not the field defaults
    with pytest.raises(InputError, match="no bundled tileset or sample named 'nope'"):
        bundled_specs(["nope"])
