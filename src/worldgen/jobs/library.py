"""Uploaded models on a machine: their files in the cache, and the job that builds a library.

:mod:`worldgen.world` never reads Redis, so before a process of this machine builds a world over
an uploaded model (``upload:<sha>``), the model's stored bytes are written into the cache folder
:func:`worldgen.world.api.materialise_upload` names (:func:`ensure_model`; the folder is
content-addressed and checked against its digest, so writing it twice, or on two machines, is
harmless), together with its patch library once that is built.

The **library job** (kind :data:`LIBRARY_JOB`, queued when a world is created over a model whose
library is not built) computes the library in the generation pool
(:func:`worldgen.world.api.prepare_upload`: seconds to minutes), reporting progress every
:data:`TICK_S`, and stores the library's bytes with its calibration and summary with the model
(:meth:`~worldgen.store.models.ModelRepo.library_ready`), so every machine can install them
instead of computing them again. Retrying it is harmless: they are pure functions of the model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any, Protocol

import structlog

from worldgen.errors import InputError
from worldgen.store.client import Store
from worldgen.store.jobs import JobRecord
from worldgen.world import api
from worldgen.world.patches import cache_dir
from worldgen.world.spec import WorldSpec, upload_digest

__all__ = [
    "LIBRARY_JOB",
    "SECONDS_PER_PATTERN",
    "TICK_S",
    "LibraryPool",
    "build_library",
    "ensure_model",
    "ensure_spec",
]

log = structlog.get_logger("worldgen.jobs")

LIBRARY_JOB = "library"
"""The job kind that builds an uploaded model's patch library."""
TICK_S = 1.0
"""How often a library build reports progress (and notices a cancellation)."""
SECONDS_PER_PATTERN = 0.025
"""Rough build time per pattern (town, 737 patterns: ~16 s on one core), for the estimate the
progress shows; the percent never passes 90 before the build ends."""

Progress = Callable[[int, str], Awaitable[bool]]
"""``progress(percent, stage)``: False when the job is no longer running (stop)."""

_READY: set[tuple[str, str]] = set()
"""(cache folder, digest) of models whose files this process has written or found, library
included: the check is skipped afterwards (the files never change)."""


class LibraryPool(Protocol):
    """What the library job needs of :class:`~worldgen.world.pool.WorkerPool`."""

    def submit(self, fn: Callable[..., Any], *args: Any, heavy: bool = False) -> Future[Any]: ...


async def ensure_model(store: Store, digest: str) -> bool:
    """Write the model ``digest`` (and its library, once built) into this machine's cache
    unless already there; False when there is no such model."""
    here = (str(cache_dir()), digest)
    if here in _READY:
        return True
    record = await store.models.get(digest)
    data = await store.models.data(digest)
    if record is None or data is None:
        return False
    await asyncio.to_thread(api.materialise_upload, digest, record.kind, record.options, data)
    files = await store.models.library(digest)
    if files is not None:
        for name, content in files.items():
            await asyncio.to_thread(api.install_cache_file, name, content)
        _READY.add(here)
    return True


async def ensure_spec(store: Store, spec: WorldSpec) -> None:
    """:func:`ensure_model` for a spec over an uploaded model (nothing for a bundled one)."""
    digest = upload_digest(spec.name)
    if digest is not None and not await ensure_model(store, digest):
        raise InputError("the world's model was deleted")


async def build_library(pool: LibraryPool, store: Store, record: JobRecord) -> None:
    """Run the library job ``record``: build, store and install the model's patch library."""
    digest = str(record.params["model"])
    spec = WorldSpec(**record.params["spec"])
    jobs = store.jobs

    async def progress(percent: int, stage: str) -> bool:
        return await jobs.progress(record.id, percent, stage)

    model = await store.models.get(digest)
    if model is None:
        raise InputError("the model was deleted before its library was built")
    if not await progress(5, "copying the model"):
        return
    await ensure_spec(store, spec)
    if model.library:  # built meanwhile (another job, an earlier attempt)
        await jobs.append(record.id, b'{"library": "ready"}')
        return
    estimate = max(5.0, model.patterns * SECONDS_PER_PATTERN)
    future = asyncio.wrap_future(pool.submit(api.prepare_upload, spec, heavy=True))
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        done, _ = await asyncio.wait({future}, timeout=TICK_S)
        if done:
            break
        elapsed = loop.time() - started
        percent = min(90, 10 + int(80 * elapsed / estimate))
        stage = f"building the patch library: {elapsed:.0f} s (about {estimate:.0f} s)"
        if not await progress(percent, stage):
            future.cancel()
            return
    names: list[str] = future.result()
    await progress(95, "storing the library")
    root = cache_dir().parent
    files = {name: await asyncio.to_thread((root / name).read_bytes) for name in names}
    if not await store.models.library_ready(digest, files, record.id):
        raise InputError("the model was deleted before its library was built")
    log.info("library built", model=digest[:12], seconds=round(loop.time() - started, 1))
    await jobs.append(record.id, b'{"library": "ready"}')
