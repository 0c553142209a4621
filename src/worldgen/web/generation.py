"""Where world content is computed: the :class:`Generator` interface and its two implementations.

Generation is CPU-bound (numba kernels, numpy, PNG encoding) and never runs on the event loop.

* :class:`ProcessGenerator` (production): a long-lived ``ProcessPoolExecutor`` of ``workers``
  spawned processes. Each process keeps an LRU of built worlds by :class:`WorldSpec` and calls
  the pure functions of :mod:`worldgen.world.spec`; world content is a pure function of the spec,
  so any process may answer any request. A crashed process (``BrokenProcessPool``) is replaced
  and the call retried once; a call past its time limit raises
  :class:`~worldgen.web.errors.GeneratorUnavailableError` (mapped to 503). Regions and exports hold
  one of ``workers - 1`` "heavy" slots, so big jobs cannot starve map tiles of every process.
* :class:`InlineGenerator` (tests, tiny deployments): the same functions in a worker thread.

Only specs, ints and bytes cross the process boundary (pickled by ``multiprocessing``, never
stored anywhere). :class:`~worldgen.errors.InputError` raised in a worker reaches the caller as is.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from worldgen.engine import solver
from worldgen.store.worlds import WorldRecord
from worldgen.web.errors import GeneratorUnavailableError
from worldgen.world import spec as world_spec
from worldgen.world.blocks import World
from worldgen.world.spec import CatalogEntry, WorldSpec

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "Generator",
    "InlineGenerator",
    "ProcessGenerator",
    "spec_for",
    "spec_of",
]

T = TypeVar("T")
DEFAULT_TIMEOUT_S = 120.0
"""Longest a single generation call may take (a maximal export is well below it)."""
WORLDS_PER_PROCESS = 16
_VERSIONS_KEPT = 4096


def spec_of(kind: Literal["tiled", "overlapping"], tileset: str, seed: int) -> WorldSpec:
    """The content spec of a world over a tileset (``tiled``) or a sample (``overlapping``)."""
    return WorldSpec(source="tileset" if kind == "tiled" else "sample", name=tileset, seed=seed)


def spec_for(record: WorldRecord) -> WorldSpec:
    """The content spec of a stored world."""
    return spec_of(record.kind, record.tileset, record.seed)


@runtime_checkable
class Generator(Protocol):
    """Computes world content; every method is safe to await from the event loop.

    ``version(spec)`` identifies the content algorithm of the spec's world (part of every tile
    cache key and ETag). ``ready`` is true once :meth:`warm_up` finished (``/readyz``).
    """

    @property
    def ready(self) -> bool: ...

    async def version(self, spec: WorldSpec) -> str: ...

    async def catalog(self) -> list[CatalogEntry]: ...

    async def tile(self, spec: WorldSpec, z: int, x: int, y: int) -> bytes: ...

    async def region(self, spec: WorldSpec, x: int, y: int, w: int, h: int) -> dict[str, Any]: ...

    async def export(
        self, spec: WorldSpec, x: int, y: int, w: int, h: int, scale: int
    ) -> bytes: ...

    async def preview(self, name: str) -> bytes: ...

    async def warm_up(self) -> None: ...

    async def close(self) -> None: ...


# ------------------------------------------------------------ work functions (any process)
class _WorldLRU:
    """Built worlds by spec, least recently used dropped past ``size`` (thread-safe)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._worlds: OrderedDict[WorldSpec, World] = OrderedDict()
        self._guard = threading.Lock()

    def get(self, spec: WorldSpec) -> World:
        with self._guard:
            world = self._worlds.get(spec)
            if world is not None:
                self._worlds.move_to_end(spec)
                return world
        world = world_spec.build_world(spec)  # outside the guard: may take seconds
        with self._guard:
            world = self._worlds.setdefault(spec, world)
            self._worlds.move_to_end(spec)
            while len(self._worlds) > self.size:
                self._worlds.popitem(last=False)
        return world


_PROCESS_WORLDS = _WorldLRU(WORLDS_PER_PROCESS)
"""The worlds of this worker process (each pool process has its own)."""


def _init_worker() -> None:
    """Pool initializer: Ctrl+C is the parent's business; compile the kernels up front."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    solver.warm_up()


def _warm() -> int:
    solver.warm_up()
    return os.getpid()


def _version(spec: WorldSpec) -> str:
    return _PROCESS_WORLDS.get(spec).version


def _catalog() -> list[CatalogEntry]:
    return world_spec.catalog()


def _tile(spec: WorldSpec, z: int, x: int, y: int) -> bytes:
    return world_spec.tile_png(_PROCESS_WORLDS.get(spec), z, x, y)


def _region(spec: WorldSpec, x: int, y: int, w: int, h: int) -> dict[str, Any]:
    return world_spec.region_doc(_PROCESS_WORLDS.get(spec), x, y, w, h)


def _export(spec: WorldSpec, x: int, y: int, w: int, h: int, scale: int) -> bytes:
    return world_spec.export_png(_PROCESS_WORLDS.get(spec), x, y, w, h, scale)


def _preview(name: str) -> bytes:
    return world_spec.preview_png(name)


# ------------------------------------------------------------------------------ generators
class _VersionMemo:
    """Spec → content version, remembered in the app process (versions never change while the
    process runs: they hash the bundled files and the algorithm)."""

    def __init__(self) -> None:
        self._known: OrderedDict[WorldSpec, str] = OrderedDict()

    def get(self, spec: WorldSpec) -> str | None:
        return self._known.get(spec)

    def put(self, spec: WorldSpec, version: str) -> None:
        self._known[spec] = version
        while len(self._known) > _VERSIONS_KEPT:
            self._known.popitem(last=False)


class ProcessGenerator:
    """Generation in a pool of ``workers`` processes (see the module docstring)."""

    def __init__(
        self,
        workers: int,
        *,
        context: Literal["spawn", "forkserver"] = "spawn",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        compile_kernels: bool = True,
    ) -> None:
        if not 1 <= workers <= 64:
            raise ValueError(f"workers must be in 1..64, got {workers}")
        self.workers = workers
        self.timeout_s = timeout_s
        self.compile_kernels = compile_kernels
        self._context = multiprocessing.get_context(context)
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False
        self._ready = False
        self._versions = _VersionMemo()
        self._catalog: list[CatalogEntry] | None = None
        self._heavy = asyncio.Semaphore(max(1, workers - 1))

    @property
    def ready(self) -> bool:
        return self._ready and not self._closed

    def _executor(self) -> ProcessPoolExecutor:
        if self._closed:
            raise GeneratorUnavailableError("the generation pool is shut down")
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=self._context, initializer=_init_worker
            )
        return self._pool

    def _discard(self, pool: Executor) -> None:
        if self._pool is pool:
            self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            pool = self._executor()
            try:
                future = loop.run_in_executor(pool, fn, *args)
                return await asyncio.wait_for(future, self.timeout_s)
            except BrokenProcessPool:
                self._discard(pool)  # a worker died (OOM, signal): start a fresh pool once
                if attempt == 2:
                    raise GeneratorUnavailableError("generation worker crashed") from None
            except TimeoutError:
                raise GeneratorUnavailableError(
                    f"generation took longer than {self.timeout_s:g} s"
                ) from None
        raise AssertionError("unreachable")

    async def version(self, spec: WorldSpec) -> str:
        known = self._versions.get(spec)
        if known is None:
            known = await self._call(_version, spec)
            self._versions.put(spec, known)
        return known

    async def catalog(self) -> list[CatalogEntry]:
        if self._catalog is None:
            self._catalog = await self._call(_catalog)
        return list(self._catalog)

    async def tile(self, spec: WorldSpec, z: int, x: int, y: int) -> bytes:
        return await self._call(_tile, spec, z, x, y)

    async def region(self, spec: WorldSpec, x: int, y: int, w: int, h: int) -> dict[str, Any]:
        async with self._heavy:
            return await self._call(_region, spec, x, y, w, h)

    async def export(self, spec: WorldSpec, x: int, y: int, w: int, h: int, scale: int) -> bytes:
        async with self._heavy:
            return await self._call(_export, spec, x, y, w, h, scale)

    async def preview(self, name: str) -> bytes:
        return await self._call(_preview, name)

    async def warm_up(self) -> None:
        """Start every process and compile its kernels (one task per process, concurrently).

        With ``compile_kernels=False`` the processes start lazily, on the first request.
        """
        if self.compile_kernels:
            await asyncio.gather(*(self._call(_warm) for _ in range(self.workers)))
            await self.catalog()
        self._ready = True

    async def close(self) -> None:
        """Stop the processes (waits for running tasks; queued ones are cancelled)."""
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)


class InlineGenerator:
    """Generation in worker threads of this process (tests; one core is enough).

    Worlds are kept in an LRU like a pool process's; :mod:`worldgen.world.spec` serialises calls
    on one world, so concurrent requests are safe.
    """

    def __init__(self, *, worlds: int = WORLDS_PER_PROCESS) -> None:
        self._worlds = _WorldLRU(worlds)
        self._ready = False
        self._closed = False

    @property
    def ready(self) -> bool:
        return self._ready and not self._closed

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise GeneratorUnavailableError("the generator is shut down")
        return await asyncio.to_thread(fn, *args)

    async def version(self, spec: WorldSpec) -> str:
        return (await self._run(self._worlds.get, spec)).version

    async def catalog(self) -> list[CatalogEntry]:
        return await self._run(world_spec.catalog)

    async def tile(self, spec: WorldSpec, z: int, x: int, y: int) -> bytes:
        world = await self._run(self._worlds.get, spec)
        return await self._run(world_spec.tile_png, world, z, x, y)

    async def region(self, spec: WorldSpec, x: int, y: int, w: int, h: int) -> dict[str, Any]:
        world = await self._run(self._worlds.get, spec)
        return await self._run(world_spec.region_doc, world, x, y, w, h)

    async def export(self, spec: WorldSpec, x: int, y: int, w: int, h: int, scale: int) -> bytes:
        world = await self._run(self._worlds.get, spec)
        return await self._run(world_spec.export_png, world, x, y, w, h, scale)

    async def preview(self, name: str) -> bytes:
        return await self._run(world_spec.preview_png, name)

    async def warm_up(self) -> None:
        await self._run(solver.warm_up)
        self._ready = True

    async def close(self) -> None:
        self._closed = True
