"""Where the web app computes world content: the :class:`Generator` interface over the world pool.

Generation is CPU-bound (numba kernels, numpy, PNG encoding) and never runs on the event loop.

* :class:`ProcessGenerator` (production): a thin async adapter over
  :class:`~worldgen.world.pool.WorkerPool`, the one process pool (per-worker LRU of worlds by
  :class:`~worldgen.world.spec.WorldSpec`, crash recovery with one retry, heavy slots for regions
  and exports). Each call waits at most ``timeout_s``; past it, or when the pool is broken or shut
  down, it raises :class:`~worldgen.errors.GeneratorUnavailableError` (mapped to 503).
* :class:`InlineGenerator` (tests, tiny deployments): the same :mod:`worldgen.world.api` functions
  in worker threads of this process, over the same kind of world cache.

:class:`~worldgen.errors.InputError` raised while generating reaches the caller as is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Literal, Protocol, TypeVar, cast, runtime_checkable

from worldgen.engine import solver
from worldgen.errors import GeneratorUnavailableError
from worldgen.store.worlds import WorldRecord
from worldgen.world import api
from worldgen.world.api import CatalogEntry
from worldgen.world.edits import Op
from worldgen.world.pool import WORLDS_PER_PROCESS, WorkerPool, WorldCache
from worldgen.world.spec import UPLOAD_PREFIX, WorldSpec

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
_VERSIONS_KEPT = 4096


@functools.lru_cache(maxsize=_VERSIONS_KEPT)
def spec_of(
    kind: Literal["tiled", "overlapping"], tileset: str, seed: int, S: int | None = None
) -> WorldSpec:
    """The content spec of a world over a tileset (``tiled``) or a sample (``overlapping``):
    its catalog entry's settings (:meth:`WorldSpec.of_kind`), with block size ``S`` when given
    (a stored world's pinned one), else the entry's.

    Remembered per arguments: building one reads the tileset catalog, which cost a third of a
    warm map tile's CPU (specs are immutable values)."""
    spec = WorldSpec.of_kind(kind, tileset, seed)
    return spec if S is None or S == spec.S else dataclasses.replace(spec, S=S)


def spec_for(record: WorldRecord) -> WorldSpec:
    """The content spec of a stored world (``upload:<sha>`` over an uploaded model), at the
    block size its record pins."""
    name = record.tileset if record.model is None else f"{UPLOAD_PREFIX}{record.model}"
    return spec_of(record.kind, name, record.seed, record.block_size)


@runtime_checkable
class Generator(Protocol):
    """Computes world content; every method is safe to await from the event loop.

    ``version(spec)`` identifies the content algorithm of the spec's world (part of every tile
    cache key and ETag). ``ready`` is true once :meth:`warm_up` finished (``/readyz``).
    """

    @property
    def ready(self) -> bool: ...

    @property
    def pending(self) -> int:
        """Generation tasks submitted and not finished (the generation queue's depth)."""
        ...

    async def version(self, spec: WorldSpec) -> str: ...

    async def catalog(self) -> list[CatalogEntry]: ...

    async def tile(self, spec: WorldSpec, z: int, x: int, y: int) -> bytes: ...

    async def region(self, spec: WorldSpec, x: int, y: int, w: int, h: int) -> dict[str, Any]: ...

    async def export(
        self, spec: WorldSpec, x: int, y: int, w: int, h: int, scale: int
    ) -> bytes: ...

    async def preview(self, name: str) -> bytes: ...

    async def edit(
        self,
        spec: WorldSpec,
        op: Op,
        blocks: dict[tuple[int, int], tuple[bytes, int]],
        target: bytes | None = None,
        undone: Sequence[bytes] = (),
    ) -> tuple[bytes, dict[str, int | str] | None]: ...

    async def warm_up(self) -> None: ...

    async def close(self) -> None: ...


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
    """Generation in a :class:`~worldgen.world.pool.WorkerPool` of ``workers`` processes."""

    def __init__(
        self,
        workers: int,
        *,
        context: Literal["spawn", "forkserver"] = "spawn",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        compile_kernels: bool = True,
        warm: Sequence[WorldSpec] = (),
    ) -> None:
        self.pool = WorkerPool(workers, context=context, timeout_s=timeout_s)
        self.workers = workers
        self.timeout_s = timeout_s
        self.compile_kernels = compile_kernels
        self.warm = tuple(warm)
        """Specs whose disk cache the pool's cache warmer fills after :meth:`warm_up`."""
        self._ready = False
        self._versions = _VersionMemo()
        self._catalog: list[CatalogEntry] | None = None

    @property
    def ready(self) -> bool:
        return self._ready and not self.pool.closed

    @property
    def pending(self) -> int:
        return self.pool.pending()

    async def _wait(self, future: Future[T]) -> T:
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout_s)
        except TimeoutError:
            raise GeneratorUnavailableError(
                f"generation took longer than {self.timeout_s:g} s"
            ) from None

    async def version(self, spec: WorldSpec) -> str:
        known = self._versions.get(spec)
        if known is None:
            known = await self._wait(self.pool.submit_version(spec))
            self._versions.put(spec, known)
        return known

    async def catalog(self) -> list[CatalogEntry]:
        if self._catalog is None:
            self._catalog = await self._wait(self.pool.submit_catalog())
        return list(self._catalog)

    async def tile(self, spec: WorldSpec, z: int, x: int, y: int) -> bytes:
        return await self._wait(self.pool.submit_tile(spec, z, x, y))

    async def region(self, spec: WorldSpec, x: int, y: int, w: int, h: int) -> dict[str, Any]:
        doc = await self._wait(self.pool.submit_region_doc(spec, x, y, w, h))
        return cast(dict[str, Any], doc)

    async def export(self, spec: WorldSpec, x: int, y: int, w: int, h: int, scale: int) -> bytes:
        return await self._wait(self.pool.submit_export(spec, x, y, w, h, scale))

    async def preview(self, name: str) -> bytes:
        return await self._wait(self.pool.submit_preview(name))

    async def edit(
        self,
        spec: WorldSpec,
        op: Op,
        blocks: dict[tuple[int, int], tuple[bytes, int]],
        target: bytes | None = None,
        undone: Sequence[bytes] = (),
    ) -> tuple[bytes, dict[str, int | str] | None]:
        """An edit solved in a pool process (:meth:`WorkerPool.submit_edit`)."""
        return await self._wait(self.pool.submit_edit(spec, op, blocks, target, undone))

    async def warm_up(self) -> None:
        """Start every process and compile its kernels (``WorkerPool.start``), then read the
        catalog. With ``compile_kernels=False`` the processes start lazily, on the first request.
        Then start the cache warmer over :attr:`warm` (it runs on after this returns).
        """
        if self.compile_kernels:
            await asyncio.to_thread(self.pool.start)
            await self.catalog()
        if self.warm:
            await asyncio.to_thread(self.pool.start_warmer, self.warm)
        self._ready = True

    async def close(self) -> None:
        """Stop the processes (waits for running tasks; queued ones are cancelled)."""
        await asyncio.to_thread(self.pool.close)


class InlineGenerator:
    """Generation in worker threads of this process (tests; one core is enough).

    Worlds are kept in a :class:`~worldgen.world.pool.WorldCache` like a pool process's;
    :mod:`worldgen.world.api` serialises calls on one world, so concurrent requests are safe.
    """

    def __init__(self, *, worlds: int = WORLDS_PER_PROCESS) -> None:
        self._worlds = WorldCache(worlds)
        self._ready = False
        self._closed = False
        self._pending = 0

    @property
    def ready(self) -> bool:
        return self._ready and not self._closed

    @property
    def pending(self) -> int:
        return self._pending

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise GeneratorUnavailableError("the generator is shut down")
        self._pending += 1  # the event loop's thread only: no lock needed
        try:
            return await asyncio.to_thread(fn, *args)
        finally:
            self._pending -= 1

    async def version(self, spec: WorldSpec) -> str:
        return (await self._run(self._worlds.get, spec)).version

    async def catalog(self) -> list[CatalogEntry]:
        return await self._run(api.catalog)

    async def tile(self, spec: WorldSpec, z: int, x: int, y: int) -> bytes:
        world = await self._run(self._worlds.get, spec)
        return await self._run(api.tile_png, world, z, x, y)

    async def region(self, spec: WorldSpec, x: int, y: int, w: int, h: int) -> dict[str, Any]:
        world = await self._run(self._worlds.get, spec)
        return await self._run(api.region_doc, world, x, y, w, h)

    async def export(self, spec: WorldSpec, x: int, y: int, w: int, h: int, scale: int) -> bytes:
        world = await self._run(self._worlds.get, spec)
        return await self._run(api.export_png, world, x, y, w, h, scale)

    async def preview(self, name: str) -> bytes:
        return await self._run(api.preview_png, name)

    async def edit(
        self,
        spec: WorldSpec,
        op: Op,
        blocks: dict[tuple[int, int], tuple[bytes, int]],
        target: bytes | None = None,
        undone: Sequence[bytes] = (),
    ) -> tuple[bytes, dict[str, int | str] | None]:
        world = await self._run(self._worlds.get, spec)
        return await self._run(api.compute_edit, world, op, blocks, target, undone)

    async def warm_up(self) -> None:
        await self._run(solver.warm_up)
        self._ready = True

    async def close(self) -> None:
        self._closed = True
