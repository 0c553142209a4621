"""The process pool that computes worlds: the only one (the web app and the CLI share it).

A :class:`WorkerPool` is a long-lived pool of ``workers`` spawned processes, created once and
reused for any number of worlds and tasks (submitting from several threads is safe):

* every task names its world by a :class:`~worldgen.world.spec.WorldSpec` (frozen, hashable,
  picklable); a worker builds the world on first use and keeps its last ``max_worlds`` worlds,
  with their block caches, in an LRU (:class:`WorldCache`), so a later task on the same world
  pays neither the rebuild nor the blocks it already computed. World content is a pure function
  of the spec, so any worker may answer any task;
* workers load the JIT kernels once, when they start (the initializer); :meth:`WorkerPool.start`
  waits until every worker has;
* only specs, ints, int32 arrays and bytes cross the process boundary (pickled by
  ``multiprocessing``, never stored anywhere). An :class:`~worldgen.errors.InputError` raised in a
  worker reaches the caller as is;
* **crash recovery**: a worker that dies (OOM, signal) breaks the executor; the pool replaces it
  with a fresh one and retries every call that failed that way once; a second failure raises
  :class:`~worldgen.errors.GeneratorUnavailableError`, as does any call after :meth:`close`;
* **two lanes**: a task waits in the parent until a process is free (at most ``workers`` are
  handed to the executor, whose own queue is first come, first served); ``urgent`` tasks, the
  cheap ones that finish what a user is looking at (far tiles, which the map shows scaled while
  near tiles load; drawing a tile whose cells are ready; a world's version), go before every
  other waiting task. So a new world's placeholders and finished tiles do not queue behind
  the chunk computations of the tiles asked for with them;
* **heavy slots**: tasks submitted with ``heavy=True`` (regions and exports) run at most
  ``heavy_slots`` at a time (default ``workers - 1``, at least 1); the others wait in the parent,
  so big jobs cannot occupy every process while map tiles wait;
* **the cache warmer** (:meth:`WorkerPool.start_warmer`): one more process, at the lowest CPU
  priority, that fills the disk cache (libraries, calibrations, district labels, summaries) of
  the models a server will most likely be asked for, so their first visitors wait for none of
  it; workers simply find the files. It ends when done, and is stopped with the pool;
* **timeouts**: :meth:`WorkerPool.call` waits at most ``timeout_s`` (from submission) and then
  raises :class:`~worldgen.errors.GeneratorUnavailableError` (the task itself runs on);
  asynchronous callers (:mod:`worldgen.web.generation`) apply the same limit to the future.

:meth:`WorkerPool.region` cuts a window into pieces (:func:`~worldgen.world.plan.plan_pieces`) and
computes the lower-layer blocks that several pieces read once, first
(:func:`~worldgen.world.plan.shared_blocks`), so the pool computes exactly the blocks a serial run
does; neither the split, the worker, nor the order in which pieces finish can change a byte.

Worker processes are started with ``spawn`` by default: a program that creates a pool must guard
its entry point with ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, InvalidStateError, ProcessPoolExecutor, wait
from concurrent.futures import TimeoutError as FutureTimeoutError
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt

from worldgen.errors import GeneratorUnavailableError, InputError
from worldgen.world import api, edits
from worldgen.world.blocks import World
from worldgen.world.plan import (
    BlockKey,
    ChunkKey,
    Window,
    chunk_pieces,
    offset,
    plan_pieces,
    shared_blocks,
    top_block_count,
)
from worldgen.world.render import Z_DETAIL, Z_FAR, cells_per_tile, render_cells, tile_window
from worldgen.world.spec import WorldSpec
from worldgen.world.summary import summary_for

__all__ = [
    "CHUNK",
    "CHUNKS_KEPT",
    "MAX_WORKERS",
    "WARMER_NICE",
    "WORLDS_PER_PROCESS",
    "WorkerPool",
    "WorldCache",
    "region_parallel",
]

I32Array = npt.NDArray[np.int32]
T = TypeVar("T")
MAX_WORKERS = 64
WORLDS_PER_PROCESS = 16
"""Default number of built worlds (with their block caches) each worker keeps."""
CHUNK = cells_per_tile(0)
"""Side (cells) of the pieces of final cells the parent keeps: one opening-zoom tile."""
CHUNKS_KEPT = 4096
"""Default number of chunks the parent keeps (int16 cells: 8 KiB each, 32 MiB in all)."""
START_TIMEOUT_S = 300.0
"""Longest :meth:`WorkerPool.start` waits for a worker to start and load its kernels."""
Context = Literal["spawn", "forkserver"]
_Waiting = tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]
"""A task waiting for a process: its future, function and arguments."""


class WorldCache:
    """Built worlds by spec, the least recently used dropped past ``size`` (thread-safe).

    ``allow_files`` is passed to :func:`~worldgen.world.api.build_world`: without it only bundled
    tilesets and samples are built (specs from web clients); the CLI allows file paths.
    """

    def __init__(self, size: int, *, allow_files: bool = False) -> None:
        self.size = size
        self.allow_files = allow_files
        self._worlds: OrderedDict[WorldSpec, World] = OrderedDict()
        self._guard = threading.Lock()

    def get(self, spec: WorldSpec) -> World:
        """The world of ``spec``: built on first use (outside the lock: it may take seconds)."""
        with self._guard:
            world = self._worlds.get(spec)
            if world is not None:
                self._worlds.move_to_end(spec)
                return world
        world = api.build_world(spec, allow_files=self.allow_files)
        with self._guard:
            world = self._worlds.setdefault(spec, world)
            self._worlds.move_to_end(spec)
            while len(self._worlds) > self.size:
                self._worlds.popitem(last=False)
        return world


# ---------------------------------------------------------------------------------- worker side
_WORLDS = WorldCache(WORLDS_PER_PROCESS)
"""The worlds of this worker process (each pool process has its own)."""


PARENT_CHECK_S = 1.0
"""How often a worker checks that the process that started it is still alive."""


def _exit_with_parent() -> None:
    """Ends this worker within :data:`PARENT_CHECK_S` of its parent's death (even by SIGKILL,
    which gives the parent no chance to stop its pool): an orphan is re-parented, so its parent
    pid changes. A daemon thread, so it never delays a normal exit."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _init_worker(max_worlds: int, allow_files: bool) -> None:
    """Runs once in each new worker: die with the parent; Ctrl+C is the parent's business; size
    the world cache; load the JIT kernels."""
    global _WORLDS
    _exit_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORLDS = WorldCache(max_worlds, allow_files=allow_files)
    from worldgen.engine.solver import warm_up

    warm_up()


WARMER_NICE = 19
"""The cache warmer's niceness: the lowest priority, so a tile request always comes first."""


def _warm_caches(specs: Sequence[WorldSpec]) -> None:
    """The cache warmer's process: :func:`~worldgen.world.api.prepare_upload` for each spec in
    turn, at :data:`WARMER_NICE`. A spec that cannot be prepared (bad input, a full disk) is
    skipped: the request that needs it will say why."""
    _exit_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(WARMER_NICE)
    for spec in specs:
        try:
            api.prepare_upload(spec)
        except (InputError, OSError):
            continue


def _ping(pause: float) -> int:
    """The worker's pid, after ``pause`` seconds (so that one worker cannot answer every ping)."""
    time.sleep(pause)
    return os.getpid()


def _prepare_task(spec: WorldSpec, pause: float) -> int:
    """Build the spec's world and its far-zoom summary in this worker; its pid after ``pause``."""
    summary_for(_WORLDS.get(spec))
    time.sleep(pause)
    return os.getpid()


def _version_task(spec: WorldSpec) -> str:
    return _WORLDS.get(spec).version


def _catalog_task() -> list[api.CatalogEntry]:
    return api.catalog()


def _preview_task(name: str) -> bytes:
    return api.preview_png(name)


def _tile_task(spec: WorldSpec, z: int, x: int, y: int) -> bytes:
    return api.tile_png(_WORLDS.get(spec), z, x, y)


def _region_doc_task(spec: WorldSpec, x: int, y: int, w: int, h: int) -> dict[str, object]:
    return api.region_doc(_WORLDS.get(spec), x, y, w, h)


def _export_task(spec: WorldSpec, x: int, y: int, w: int, h: int, scale: int) -> bytes:
    return api.export_png(_WORLDS.get(spec), x, y, w, h, scale)


def _edit_task(
    spec: WorldSpec,
    op: edits.Op,
    blocks: dict[tuple[int, int], tuple[bytes, int]],
    target: bytes | None,
    undone: list[bytes],
) -> tuple[bytes, dict[str, int | str] | None]:
    return api.compute_edit(_WORLDS.get(spec), op, blocks, target, undone)


def _draw_task(
    spec: WorldSpec, z: int, cells: npt.NDArray[np.integer], origin: tuple[int, int]
) -> bytes:
    return render_cells(_WORLDS.get(spec), z, cells, origin)


def _blocks_task(spec: WorldSpec, keys: list[BlockKey]) -> I32Array:
    world = _WORLDS.get(spec)
    out = np.empty((len(keys), world.S, world.S), dtype=np.int32)
    for n, key in enumerate(keys):
        out[n] = world.block(*key)
    return out


def _window_task(spec: WorldSpec, window: Window) -> I32Array:
    return _WORLDS.get(spec).region(*window)


def _chunk_tile_task(spec: WorldSpec, window: Window, z: int) -> tuple[I32Array, bytes]:
    """A whole chunk's cells and the tile ``window`` is (a z = 0 tile is one chunk), drawn here:
    the same bytes as a :func:`_draw_task` of those cells."""
    world = _WORLDS.get(spec)
    cells = world.region(*window)
    return cells, render_cells(world, z, cells, window[:2])


def _piece_task(
    spec: WorldSpec, window: Window, keys: list[BlockKey], blocks: I32Array | None
) -> I32Array:
    """A region piece, given the shared blocks another task computed (identical by purity)."""
    world = _WORLDS.get(spec)
    if blocks is not None:
        for key, grid in zip(keys, blocks, strict=True):
            world.put_block(key, grid)
    return world.region(*window)


# ---------------------------------------------------------------------------------- parent side
def _settle(future: Future[Any], *, value: object = None, exc: BaseException | None = None) -> None:
    """Complete ``future`` unless it is already done (a caller may cancel it at any time)."""
    try:
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(value)
    except InvalidStateError:
        pass


def _chain(source: Future[Any], target: Future[Any]) -> None:
    """Complete ``target`` with ``source``'s outcome when it arrives."""

    def copy(f: Future[Any]) -> None:
        if f.cancelled():
            _settle(target, exc=GeneratorUnavailableError("generation cancelled"))
        elif f.exception() is not None:
            _settle(target, exc=f.exception())
        else:
            _settle(target, value=f.result())

    source.add_done_callback(copy)


class _ChunkStore:
    """The parent's chunks of final cells by ``(spec, chunk)``: an LRU of ``size`` finished ones
    (int16 when every id fits) and the futures of those being computed. Not locked itself: the
    pool calls it under its own lock, except :meth:`publish` and :meth:`fail`, which lock."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._done: OrderedDict[tuple[WorldSpec, ChunkKey], npt.NDArray[np.integer]] = OrderedDict()
        self._flying: dict[tuple[WorldSpec, ChunkKey], Future[npt.NDArray[np.integer]]] = {}
        self._guard = threading.Lock()

    def get(self, spec: WorldSpec, key: ChunkKey) -> npt.NDArray[np.integer] | None:
        """A finished chunk (marked recently used), or None."""
        with self._guard:
            found = self._done.get((spec, key))
            if found is not None:
                self._done.move_to_end((spec, key))
            return found

    def future(self, spec: WorldSpec, key: ChunkKey) -> Future[npt.NDArray[np.integer]] | None:
        """A future of the chunk if it is kept or being computed, else None."""
        found = self.get(spec, key)
        if found is not None:
            ready: Future[npt.NDArray[np.integer]] = Future()
            ready.set_result(found)
            return ready
        with self._guard:
            return self._flying.get((spec, key))

    def expect(self, spec: WorldSpec, key: ChunkKey) -> Future[npt.NDArray[np.integer]]:
        """Register the chunk as being computed; its future completes on publish or fail."""
        future: Future[npt.NDArray[np.integer]] = Future()
        with self._guard:
            self._flying[(spec, key)] = future
        return future

    def publish(self, spec: WorldSpec, key: ChunkKey, cells: I32Array) -> None:
        """Keep a computed chunk and complete its future."""
        kept: npt.NDArray[np.integer] = cells
        if int(cells.max(initial=0)) < 2**15:
            kept = cells.astype(np.int16)
        kept.setflags(write=False)
        with self._guard:
            future = self._flying.pop((spec, key), None)
            if self.size > 0:
                self._done[(spec, key)] = kept
                while len(self._done) > self.size:
                    self._done.popitem(last=False)
        if future is not None:
            _settle(future, value=kept)

    def fail(self, spec: WorldSpec, key: ChunkKey, exc: BaseException) -> None:
        """Forget a chunk being computed and fail its future (a later tile tries again)."""
        with self._guard:
            future = self._flying.pop((spec, key), None)
        if future is not None:
            _settle(future, exc=exc)


def spec_of_world(world: World | WorldSpec) -> WorldSpec:
    """The spec a task names ``world`` by (a :class:`World` must carry one: ``build_world``)."""
    if isinstance(world, WorldSpec):
        return world
    if world.config is None:
        raise InputError("parallel generation needs a world built from a WorldSpec")
    return world.config


class WorkerPool:
    """A long-lived pool of ``workers`` processes (see the module docstring).

    ``max_worlds`` worlds per worker; ``allow_files``: workers may build worlds over tileset and
    sample files (the CLI), not only bundled ones; ``timeout_s`` bounds :meth:`call` (None: no
    limit); ``heavy_slots`` bounds concurrent ``heavy`` tasks; ``chunks_kept`` bounds the
    parent's cache of final cells for map tiles (:meth:`submit_tile`). Processes start on the
    first task (or :meth:`start`). Use as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        workers: int,
        *,
        max_worlds: int = WORLDS_PER_PROCESS,
        allow_files: bool = False,
        context: Context = "spawn",
        timeout_s: float | None = None,
        heavy_slots: int | None = None,
        chunks_kept: int = CHUNKS_KEPT,
    ) -> None:
        if not 1 <= workers <= MAX_WORKERS:
            raise InputError(f"workers must be in 1..{MAX_WORKERS}, got {workers}")
        if max_worlds < 1:
            raise InputError(f"max_worlds must be at least 1, got {max_worlds}")
        self.workers = workers
        self.max_worlds = max_worlds
        self.allow_files = allow_files
        self.timeout_s = timeout_s
        self.heavy_slots = heavy_slots if heavy_slots is not None else max(1, workers - 1)
        self._context = multiprocessing.get_context(context)
        self._lock = threading.RLock()
        self._closed = False
        self._executor: ProcessPoolExecutor | None = None
        self.restarts = 0
        """How many times a broken executor was replaced."""
        self._running = 0
        """Tasks holding a process: handed to the executor (or about to be) and not finished.
        Never more than :attr:`workers`, so the order of the waiting lanes is the order in which
        processes take tasks (and whether workers idle can be told)."""
        self._lanes: tuple[deque[_Waiting], deque[_Waiting]] = (deque(), deque())
        """Tasks waiting for a process: urgent ones first, then the rest, each in arrival order."""
        self._chunks = _ChunkStore(chunks_kept)
        self.chunk_hits = 0
        """Chunks a tile found kept or already being computed."""
        self.chunk_misses = 0
        """Chunks a tile had computed."""
        self._heavy_running = 0
        self._heavy_queue: deque[tuple[Future[Any], Callable[[], None]]] = deque()
        self._pending = 0
        self._warmer: multiprocessing.process.BaseProcess | None = None

    # -------------------------------------------------------------------------------- executor
    @property
    def closed(self) -> bool:
        return self._closed

    def processes(self) -> list[int]:
        """Process ids of the current executor's live workers (for tests and diagnostics)."""
        with self._lock:
            executor = self._executor
            found = getattr(executor, "_processes", None) or {}
            return sorted(int(pid) for pid in found)

    def _current(self) -> ProcessPoolExecutor:
        if self._closed:
            raise GeneratorUnavailableError("the generation pool is shut down")
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                self.workers,
                mp_context=self._context,
                initializer=_init_worker,
                initargs=(self.max_worlds, self.allow_files),
            )
        return self._executor

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        """Drop ``broken`` (if it is still the current executor); the next task starts a new one."""
        with self._lock:
            if self._executor is broken:
                self._executor = None
                self.restarts += 1
        broken.shutdown(wait=False, cancel_futures=True)

    def _enqueue(
        self, outer: Future[Any], fn: Callable[..., Any], args: tuple[Any, ...], urgent: bool
    ) -> None:
        """Run ``fn(*args)`` for ``outer`` when a process is free: at once if one is, else after
        every urgent task and every earlier task of its own lane."""
        with self._lock:
            closed = self._closed  # closed since submit() looked: close() cleared the lanes
            free = not closed and self._running < self.workers
            if free:
                self._running += 1
            elif not closed:
                self._lanes[0 if urgent else 1].append((outer, fn, args))
        if closed:
            _settle(outer, exc=GeneratorUnavailableError("the generation pool is shut down"))
        elif free:
            self._start(outer, fn, args)

    def _release(self) -> None:
        """A task gave its process back: start the next waiting one (dropping those cancelled
        meanwhile). A loop, not a recursion: thousands of cancelled tasks cost no stack."""
        with self._lock:
            self._running -= 1
            follow: _Waiting | None = None
            while follow is None and self._running < self.workers and any(self._lanes):
                lane = self._lanes[0] if self._lanes[0] else self._lanes[1]
                candidate = lane.popleft()
                if not candidate[0].done():
                    follow = candidate
            if follow is not None:
                self._running += 1
        if follow is not None:
            self._start(*follow)

    def _start(self, outer: Future[Any], fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        """Run ``fn(*args)`` for ``outer`` on the process reserved for it (counted in
        :attr:`_running`, given back by :meth:`_release` when ``outer`` is settled), retrying once
        on a fresh executor if one breaks.

        Cancelling ``outer`` cancels the task if it has not started in a worker yet.
        """

        def attempt(retries: int) -> None:
            if outer.done():  # cancelled by the caller meanwhile
                self._release()
                return
            try:
                with self._lock:
                    executor = self._current()
                    inner = executor.submit(fn, *args)
            except BrokenProcessPool:
                recover(executor, retries)
                return
            except BaseException as exc:  # a closed pool, or the executor refused the task
                _settle(outer, exc=exc)
                self._release()
                return
            outer.add_done_callback(lambda o: inner.cancel() if o.cancelled() else None)

            def done(f: Future[Any]) -> None:
                if outer.done():
                    pass
                elif f.cancelled():  # the pool was closed under it
                    _settle(
                        outer, exc=GeneratorUnavailableError("the generation pool is shut down")
                    )
                elif isinstance(f.exception(), BrokenProcessPool):
                    # not from this callback: it runs inside the broken executor's own thread
                    # (the process stays reserved for the retry)
                    threading.Thread(target=recover, args=(executor, retries), daemon=True).start()
                    return
                elif (exc := f.exception()) is not None:
                    _settle(outer, exc=exc)
                else:
                    _settle(outer, value=f.result())
                self._release()

            inner.add_done_callback(done)

        def recover(broken: ProcessPoolExecutor, retries: int) -> None:
            self._replace(broken)
            if retries and not self._closed:
                attempt(retries - 1)
            else:
                _settle(outer, exc=GeneratorUnavailableError("generation worker crashed"))
                self._release()

        attempt(1)

    def submit(
        self, fn: Callable[..., T], *args: Any, heavy: bool = False, urgent: bool = False
    ) -> Future[T]:
        """A future of ``fn(*args)`` run in a worker (``fn`` must be a module-level function).

        Tasks wait in the parent until a process is free; ``urgent`` ones (cheap tasks that
        complete what a user waits for: far tiles, drawing a tile whose cells are ready) go
        before the others. ``heavy`` tasks also wait for one of :attr:`heavy_slots`. A closed
        pool raises :class:`~worldgen.errors.GeneratorUnavailableError` at once. Cancelling the
        future cancels the task unless a worker has started it.
        """
        if self._closed:
            raise GeneratorUnavailableError("the generation pool is shut down")
        outer: Future[T] = Future()
        with self._lock:
            self._pending += 1
        outer.add_done_callback(self._finished)
        if not heavy:
            self._enqueue(outer, fn, args, urgent)
            return outer

        def release(_: Future[T]) -> None:
            with self._lock:
                self._heavy_running -= 1
                follow = self._heavy_queue.popleft() if self._heavy_queue else None
                if follow is not None:
                    self._heavy_running += 1
            if follow is not None:
                follow[1]()

        def launch() -> None:
            outer.add_done_callback(release)
            self._enqueue(outer, fn, args, urgent)

        with self._lock:
            now = self._heavy_running < self.heavy_slots
            if now:
                self._heavy_running += 1
            else:
                self._heavy_queue.append((outer, launch))
        if now:
            launch()
        return outer

    def _finished(self, _: Future[Any]) -> None:
        with self._lock:
            self._pending -= 1

    def pending(self) -> int:
        """Tasks submitted and not finished yet: running, waiting for a process, or waiting for
        a heavy slot (the generation queue's depth; a tile's chunks are tasks of their own)."""
        with self._lock:
            return self._pending

    def call(self, fn: Callable[..., T], *args: Any, heavy: bool = False) -> T:
        """``fn(*args)`` in a worker, waiting at most :attr:`timeout_s`."""
        future = self.submit(fn, *args, heavy=heavy)
        try:
            return future.result(self.timeout_s)
        except FutureTimeoutError:
            raise GeneratorUnavailableError(
                f"generation took longer than {self.timeout_s:g} s"
            ) from None

    # -------------------------------------------------------------------------------- tasks
    def start(self) -> list[int]:
        """Start every worker now and wait until they have loaded the kernels, so that the first
        real task does not pay the process start-up. Returns the process ids that answered,
        sorted (normally every worker's; the rounds of pings are bounded). Waits at most
        ``START_TIMEOUT_S`` per round, not :attr:`timeout_s` (which bounds single tasks)."""
        seen: set[int] = set()
        for _ in range(20):
            futures = [self.submit(_ping, 0.05) for _ in range(self.workers)]
            try:
                seen.update(f.result(START_TIMEOUT_S) for f in futures)
            except FutureTimeoutError:
                raise GeneratorUnavailableError(
                    f"the workers did not start within {START_TIMEOUT_S:g} s"
                ) from None
            if len(seen) >= self.workers:
                break
        return sorted(seen)

    def prepare(self, spec: WorldSpec) -> list[int]:
        """Build the spec's world (library included) and its far-zoom summary in every worker, so
        that no later tile pays for them; returns the process ids that answered (bounded rounds,
        like :meth:`start`). The first call may learn the summary (seconds, once per library)."""
        seen: set[int] = set()
        for _ in range(20):
            futures = [self.submit(_prepare_task, spec, 0.05) for _ in range(self.workers)]
            seen.update(f.result() for f in futures)
            if len(seen) >= self.workers:
                break
        return sorted(seen)

    def start_warmer(self, specs: Sequence[WorldSpec]) -> int | None:
        """Start the cache warmer (see the module docstring) over ``specs``, in order; its pid,
        or None when there is nothing to warm. At most one runs: a second call replaces the first.
        The warmer competes with nothing: at niceness :data:`WARMER_NICE` it runs on idle cores.
        """
        with self._lock:
            if self._closed:
                raise GeneratorUnavailableError("the generation pool is shut down")
            self._stop_warmer()
            if not specs:
                return None
            process = self._context.Process(  # type: ignore[attr-defined]
                target=_warm_caches, args=(list(specs),), name="worldgen-cache-warmer", daemon=True
            )
            process.start()
            self._warmer = process
            return int(process.pid)

    @property
    def warming(self) -> bool:
        """True while the cache warmer runs."""
        warmer = self._warmer
        return warmer is not None and warmer.is_alive()

    def _stop_warmer(self) -> None:
        warmer, self._warmer = self._warmer, None
        if warmer is not None:
            warmer.terminate()  # its files are written atomically: nothing is left half done
            warmer.join(5.0)

    def submit_version(self, spec: WorldSpec) -> Future[str]:
        """The content version of the spec's world (``World.version``)."""
        return self.submit(_version_task, spec, urgent=True)

    def submit_catalog(self) -> Future[list[api.CatalogEntry]]:
        """:func:`~worldgen.world.api.catalog`, computed in a worker."""
        return self.submit(_catalog_task)

    def submit_preview(self, name: str) -> Future[bytes]:
        """:func:`~worldgen.world.api.preview_png` of a bundled entry, in a worker."""
        return self.submit(_preview_task, name)

    def submit_tile(self, world: World | WorldSpec, z: int, x: int, y: int) -> Future[bytes]:
        """PNG bytes of map tile ``(z, x, y)``: the bytes of :func:`~worldgen.world.api.tile_png`.

        A tile of the cell zooms ``-2 <= z <= 0`` is drawn from :data:`CHUNK`-cell chunks of final
        cells that the parent keeps (an LRU of ``chunks_kept``); missing chunks are computed in
        pieces spread over the workers (:func:`~worldgen.world.plan.chunk_pieces`; a lone chunk is
        cut into bands when workers would idle), a chunk already being computed for another tile
        is awaited rather than computed again, and a worker draws the tile from the cells (a
        z = 0 tile is one chunk: when no worker idles, one task computes and draws it). So a
        z = -2 tile computed once serves the z = -1 and z = 0 tiles under it without any solve.
        A detail tile (z = 1, 2) is drawn from its chunk when the parent has it, else computed
        whole by one worker; far tiles (z <= -3) are one task.
        """
        spec = spec_of_world(world)
        z, x, y = int(z), int(x), int(y)
        if not Z_FAR < z <= Z_DETAIL:  # far (cheap: placeholders), or refused by the worker
            return self.submit(_tile_task, spec, z, x, y, urgent=True)
        try:
            x0, y0, n = tile_window(z, x, y)
        except InputError as exc:
            failed: Future[bytes] = Future()
            failed.set_exception(exc)
            return failed
        if n < CHUNK:
            key = (x0 // CHUNK, y0 // CHUNK)
            chunk = self._chunks.get(spec, key)
            if chunk is None:
                return self.submit(_tile_task, spec, z, x, y)
            with self._lock:
                self.chunk_hits += 1
            dx, dy = x0 - key[0] * CHUNK, y0 - key[1] * CHUNK
            cells = chunk[dy : dy + n, dx : dx + n]
            return self.submit(_draw_task, spec, z, cells, (x0, y0), urgent=True)
        if n == CHUNK:
            whole = self._chunk_tile(spec, z, (x0 // CHUNK, y0 // CHUNK))
            if whole is not None:
                return whole
        keys = [
            (cx, cy)
            for cy in range(y0 // CHUNK, (y0 + n) // CHUNK)
            for cx in range(x0 // CHUNK, (x0 + n) // CHUNK)
        ]
        outer: Future[bytes] = Future()
        pending = self._chunk_futures(spec, keys)
        left = [len(pending)]

        def draw() -> None:
            side = n // CHUNK
            cells = np.empty((n, n), dtype=pending[0].result().dtype)
            for index, future in enumerate(pending):
                row, col = divmod(index, side)
                cells[row * CHUNK : (row + 1) * CHUNK, col * CHUNK : (col + 1) * CHUNK] = (
                    future.result()
                )
            _chain(self.submit(_draw_task, spec, z, cells, (x0, y0), urgent=True), outer)

        def arrived(future: Future[npt.NDArray[np.integer]]) -> None:
            if outer.done():
                return
            if future.cancelled() or future.exception() is not None:
                exc = None if future.cancelled() else future.exception()
                _settle(outer, exc=exc or GeneratorUnavailableError("generation cancelled"))
                return
            with self._lock:
                left[0] -= 1
                last = left[0] == 0
            if last:
                try:
                    draw()
                except BaseException as exc:  # e.g. the pool was closed meanwhile
                    _settle(outer, exc=exc)

        for future in pending:
            future.add_done_callback(arrived)
        return outer

    def _chunk_tile(self, spec: WorldSpec, z: int, key: ChunkKey) -> Future[bytes] | None:
        """A tile that is exactly one missing chunk, when no worker idles (so the chunk would be
        computed whole, not in bands): one task computes the chunk and draws the tile
        (:func:`_chunk_tile_task`), and the parent keeps the chunk: one task and no cells sent
        back for a second. (Before the urgent lane, a separate draw task also queued behind
        every chunk asked for meanwhile.) None: the chunk is kept or on its way, or a worker
        idles (the general path bands it)."""
        with self._lock:
            if self.workers - self._running > 1 or self._chunks.future(spec, key) is not None:
                return None
            self._chunks.expect(spec, key)
            self.chunk_misses += 1
        window = (key[0] * CHUNK, key[1] * CHUNK, CHUNK, CHUNK)
        outer: Future[bytes] = Future()

        def arrived(future: Future[tuple[I32Array, bytes]]) -> None:
            if future.cancelled() or future.exception() is not None:
                exc = future.exception() if not future.cancelled() else None
                exc = exc or GeneratorUnavailableError("generation cancelled")
                self._chunks.fail(spec, key, exc)
                _settle(outer, exc=exc)
                return
            cells, png = future.result()
            self._chunks.publish(spec, key, cells)
            _settle(outer, value=png)

        try:
            self.submit(_chunk_tile_task, spec, window, z).add_done_callback(arrived)
        except BaseException as exc:  # e.g. the pool was closed meanwhile
            self._chunks.fail(spec, key, exc)
            raise
        return outer

    def _chunk_futures(
        self, spec: WorldSpec, keys: Sequence[ChunkKey]
    ) -> list[Future[npt.NDArray[np.integer]]]:
        """A future of each chunk's final cells: kept, already being computed, or computed now
        (the missing ones together, in pieces over the workers)."""
        out: list[Future[npt.NDArray[np.integer]]] = []
        missing: list[ChunkKey] = []
        with self._lock:
            idle = max(1, self.workers - self._running)
            for key in keys:
                found = self._chunks.future(spec, key)
                if found is None:
                    found = self._chunks.expect(spec, key)
                    missing.append(key)
                out.append(found)
            self.chunk_misses += len(missing)
            self.chunk_hits += len(keys) - len(missing)
        if missing:
            off = offset(spec.S, spec.layers) if spec.layers else 0
            pieces = chunk_pieces(missing, CHUNK, spec.S, off, idle)
            try:
                self._compute_chunks(spec, missing, pieces)
            except BaseException as exc:
                for key in missing:
                    self._chunks.fail(spec, key, exc)
        return out

    def _compute_chunks(
        self, spec: WorldSpec, missing: Sequence[ChunkKey], pieces: Sequence[Window]
    ) -> None:
        """Submit ``pieces``; as each arrives, copy it into its chunks; publish every chunk whose
        pieces have all arrived (or fail the chunks a failed piece covers)."""
        buffers = {key: np.empty((CHUNK, CHUNK), dtype=np.int32) for key in missing}
        waiting: dict[ChunkKey, int] = dict.fromkeys(missing, 0)
        covers: list[list[ChunkKey]] = []
        for px, py, pw, ph in pieces:
            keys = [
                (cx, cy)
                for cy in range(py // CHUNK, (py + ph - 1) // CHUNK + 1)
                for cx in range(px // CHUNK, (px + pw - 1) // CHUNK + 1)
            ]
            covers.append(keys)
            for key in keys:
                waiting[key] += 1

        def arrived(index: int, future: Future[I32Array]) -> None:
            px, py, pw, ph = pieces[index]
            if future.cancelled() or future.exception() is not None:
                exc = future.exception() if not future.cancelled() else None
                for key in covers[index]:
                    self._chunks.fail(spec, key, exc or GeneratorUnavailableError("cancelled"))
                return
            cells = future.result()
            done: list[ChunkKey] = []
            with self._lock:
                for key in covers[index]:
                    kx, ky = key[0] * CHUNK, key[1] * CHUNK
                    x0, y0 = max(px, kx), max(py, ky)
                    x1, y1 = min(px + pw, kx + CHUNK), min(py + ph, ky + CHUNK)
                    buffers[key][y0 - ky : y1 - ky, x0 - kx : x1 - kx] = cells[
                        y0 - py : y1 - py, x0 - px : x1 - px
                    ]
                    waiting[key] -= 1
                    if waiting[key] == 0:
                        done.append(key)
            for key in done:
                self._chunks.publish(spec, key, buffers.pop(key))

        for index, window in enumerate(pieces):
            future = self.submit(_window_task, spec, window)
            future.add_done_callback(functools.partial(arrived, index))

    def submit_region_doc(
        self, spec: WorldSpec, x: int, y: int, w: int, h: int
    ) -> Future[dict[str, object]]:
        """The region JSON (:func:`~worldgen.world.api.region_doc`), in one worker (heavy)."""
        return self.submit(_region_doc_task, spec, x, y, w, h, heavy=True)

    def submit_export(
        self, spec: WorldSpec, x: int, y: int, w: int, h: int, scale: int
    ) -> Future[bytes]:
        """An exported PNG (:func:`~worldgen.world.api.export_png`), in one worker (heavy)."""
        return self.submit(_export_task, spec, x, y, w, h, scale, heavy=True)

    def submit_edit(
        self,
        spec: WorldSpec,
        op: edits.Op,
        blocks: dict[tuple[int, int], tuple[bytes, int]],
        target: bytes | None = None,
        undone: Sequence[bytes] = (),
    ) -> Future[tuple[bytes, dict[str, int | str] | None]]:
        """An edit operation solved in a worker (:func:`~worldgen.world.api.compute_edit`), so
        no solve runs in the caller's process: the diff's bytes and its reveal."""
        return self.submit(_edit_task, spec, op, dict(blocks), target, list(undone))

    def submit_blocks(self, world: World | WorldSpec, keys: Sequence[BlockKey]) -> Future[I32Array]:
        """Blocks ``keys`` (``(layer, bi, bj)``, layer >= 1) of the world, computed in a worker:
        a future of their ``(len(keys), S, S)`` int32 variant ids, in the order of ``keys``."""
        spec = spec_of_world(world)
        clean = [(int(k[0]), int(k[1]), int(k[2])) for k in keys]
        if any(k[0] < 1 or k[0] > spec.layers for k in clean):
            raise InputError(f"block layers must be in 1..{spec.layers}")
        return self.submit(_blocks_task, spec, clean)

    def submit_window(
        self, world: World | WorldSpec, x: int, y: int, w: int, h: int
    ) -> Future[I32Array]:
        """``World.region(x, y, w, h)`` computed in one worker: a future of ``(h, w)`` int32."""
        window = (int(x), int(y), int(w), int(h))
        return self.submit(_window_task, spec_of_world(world), window)

    def region(
        self,
        world: World | WorldSpec,
        x: int,
        y: int,
        w: int,
        h: int,
        progress: Callable[[int], None] | None = None,
    ) -> I32Array:
        """``World.region(x, y, w, h)`` computed by all workers.

        The window is cut into pieces; the lower-layer blocks that several pieces read are
        computed first, once, in groups, and handed to the pieces that need them, so no block is
        computed twice. A piece starts as soon as its groups are done; results are written into
        the window as they arrive. ``progress(n)`` is called as each piece of ``n`` top-layer
        blocks arrives. The parent's own block cache is neither read nor filled.
        """
        spec = spec_of_world(world)
        if w < 1 or h < 1:
            raise InputError(f"window size must be at least 1x1, got {w}x{h}")
        S, layers = spec.S, spec.layers
        pieces = plan_pieces((x, y, w, h), S, offset(S, layers), self.workers)
        groups, needs = shared_blocks(pieces, S, layers) if layers > 1 else ([], [])
        waiting = [set(n) for n in needs] if needs else [set() for _ in pieces]
        done_groups: dict[int, I32Array] = {}
        out = np.empty((h, w), dtype=np.int32)
        pending: dict[Future[I32Array], tuple[str, int]] = {}

        def submit_piece(index: int) -> None:
            keys = [k for g in needs[index] for k in groups[g]] if needs else []
            blocks = np.concatenate([done_groups[g] for g in needs[index]]) if keys else None
            future = self.submit(_piece_task, spec, pieces[index], keys, blocks)
            pending[future] = ("piece", index)

        try:
            for g, keys in enumerate(groups):
                pending[self.submit(_blocks_task, spec, keys)] = ("group", g)
            for index, wanted in enumerate(waiting):
                if not wanted:
                    submit_piece(index)
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    kind, index = pending.pop(future)
                    result = future.result()
                    if kind == "group":
                        done_groups[index] = result
                        for p, wanted in enumerate(waiting):
                            if index in wanted:
                                wanted.discard(index)
                                if not wanted:
                                    submit_piece(p)
                        continue
                    px, py, pw, ph = pieces[index]
                    out[py - y : py - y + ph, px - x : px - x + pw] = result
                    if progress is not None:
                        progress(top_block_count(pieces[index], S, layers))
        finally:
            for future in pending:
                future.cancel()
        return out

    # -------------------------------------------------------------------------------- lifetime
    def close(self, wait: bool = True) -> None:
        """Stop the workers (after the running tasks when ``wait``); queued tasks are cancelled."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
            queued = [outer for outer, _ in self._heavy_queue]
            queued += [outer for lane in self._lanes for outer, _, _ in lane]
            self._heavy_queue.clear()
            for lane in self._lanes:
                lane.clear()
            self._stop_warmer()
        for outer in queued:  # never started: nobody would complete them
            _settle(outer, exc=GeneratorUnavailableError("the generation pool is shut down"))
        if executor is not None:
            executor.shutdown(wait=wait, cancel_futures=True)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def region_parallel(
    world: World,
    x: int,
    y: int,
    w: int,
    h: int,
    workers: int,
    progress: Callable[[int], None] | None = None,
) -> I32Array:
    """``world.region(x, y, w, h)`` computed by a :class:`WorkerPool` of ``workers`` processes
    started for this call (one-shot use such as the CLI; servers keep a pool instead). Files are
    allowed: the world's spec may name a tileset or sample file.

    ``progress(n)`` is called as each piece of ``n`` top-layer blocks arrives (a progress bar).
    """
    spec = spec_of_world(world)
    with WorkerPool(workers, max_worlds=4, allow_files=True) as pool:
        return pool.region(spec, x, y, w, h, progress)
