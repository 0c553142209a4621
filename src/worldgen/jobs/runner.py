"""Running one job: an attempt, its progress and its end (``done`` or ``failed``).

:meth:`JobRunner.run` is the actor's body in a worker. It marks the attempt started (a job
that is gone or already ended is skipped: a redelivered message after completion does nothing),
computes the job through the generation pool, and ends it. Bad input in the record
(:class:`~worldgen.errors.InputError`, e.g. a tile outside the world) fails the job at once with
its message; any other error is retried by the queue, up to
:data:`~worldgen.jobs.broker.MAX_ATTEMPTS` attempts counted in the record, then the job ends
``failed`` with the reason its owner sees. A job cancelled by its owner stops at its next
progress report (between bands, or batches of tiles). Results are a pure function of the
record, so a retried export writes the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import structlog

from worldgen.errors import InputError, WorldgenError
from worldgen.jobs.archive import TileArchive
from worldgen.jobs.broker import MAX_ATTEMPTS
from worldgen.jobs.export import (
    EditedContent,
    EditedTile,
    GenerationPool,
    Piece,
    plan_tiles,
    prerender_tiles,
    write_export,
)
from worldgen.jobs.library import LIBRARY_JOB, LibraryPool, build_library, ensure_spec
from worldgen.jobs.metrics import JobMetrics, Outcome
from worldgen.store.client import Store
from worldgen.store.jobs import JobRecord
from worldgen.world.edits import Rect
from worldgen.world.pool import WorldCache
from worldgen.world.spec import WorldSpec

__all__ = ["MAX_RESULT_BYTES", "JobRunner", "spec_params"]

log = structlog.get_logger("worldgen.jobs")

MAX_RESULT_BYTES = 480 << 20
"""Largest result: Redis strings hold at most 512 MiB (``proto-max-bulk-len``)."""


class _Stopped(Exception):  # noqa: N818 - not an error: the job ended elsewhere
    """The job is no longer running (cancelled by its owner): stop, without a retry."""


def spec_params(spec: WorldSpec) -> dict[str, Any]:
    """A spec as the JSON object a job record holds (``WorldSpec(**params)`` rebuilds it)."""
    return {
        "source": spec.source,
        "name": spec.name,
        "seed": spec.seed,
        "subset": spec.subset,
        "N": spec.N,
        "symmetry": spec.symmetry,
        "S": spec.S,
        "V": spec.V,
        "layers": spec.layers,
    }


@dataclass
class JobRunner:
    """Runs jobs on ``pool`` with records in ``store`` (used on one event loop only)."""

    pool: GenerationPool
    store: Store
    max_attempts: int = MAX_ATTEMPTS
    band_px: int | None = None
    """Rows per band of an export (None: the default); tests make it small."""
    worlds: WorldCache = field(default_factory=lambda: WorldCache(2))
    """This process's worlds, for pieces and tiles drawn with edits (:class:`EditedContent`)."""
    content: EditedContent = field(init=False)
    metrics: JobMetrics = field(default_factory=JobMetrics)
    """Attempts, durations and the queue gauge (``worldgen worker`` passes its own)."""

    def __post_init__(self) -> None:
        self.content = EditedContent(self.worlds)

    async def run(self, job_id: str) -> None:
        """One attempt at the job ``job_id`` (raises to have the queue retry it)."""
        jobs = self.store.jobs
        record = await jobs.start(job_id)
        if record is None:
            log.info("job skipped: gone or ended", job=job_id)
            return
        with self.metrics.attempt(record.kind) as ended:
            await self._attempt(record, ended)

    async def _attempt(self, record: JobRecord, ended: Callable[[Outcome], None]) -> None:
        jobs, job_id = self.store.jobs, record.id
        if record.attempts > self.max_attempts:
            # earlier attempts ended without a word: their worker died (killed, out of memory)
            log.warning("job abandoned: its workers kept dying", job=job_id)
            message = f"the job was interrupted {record.attempts - 1} times (a worker died)"
            await jobs.fail(job_id, record.owner, message)
            ended("failed")
            return
        log.info("job started", job=job_id, kind=record.kind, attempt=record.attempts)
        try:
            await self._compute(record)
        except _Stopped:
            log.info("job stopped: no longer running", job=job_id)
            ended("stopped")
            return
        except InputError as exc:
            log.info("job refused", job=job_id, reason=str(exc))
            await jobs.fail(job_id, record.owner, str(exc))
            ended("failed")
            return
        except Exception as exc:
            reason = str(exc) if isinstance(exc, WorldgenError) else "internal error"
            log.exception("job attempt failed", job=job_id, attempt=record.attempts)
            if record.attempts >= self.max_attempts:
                await jobs.fail(
                    job_id, record.owner, f"{reason} (after {record.attempts} attempts)"
                )
                ended("failed")
                return
            await jobs.retrying(job_id, reason)
            ended("retried")
            raise
        if await jobs.complete(job_id, record.owner):
            log.info("job done", job=job_id)
            ended("done")
        else:
            ended("stopped")  # cancelled while its last piece was written

    async def _compute(self, record: JobRecord) -> None:
        params = record.params
        if record.kind == LIBRARY_JOB:  # an uploaded model's patch library (jobs/library.py)
            await build_library(cast(LibraryPool, self.pool), self.store, record)
            return
        spec = WorldSpec(**params["spec"])
        await ensure_spec(self.store, spec)  # an uploaded model's files, on this machine
        window = (int(params["x"]), int(params["y"]), int(params["w"]), int(params["h"]))

        async def progress(percent: int, stage: str) -> None:
            if not await self.store.jobs.progress(record.id, percent, stage):
                raise _Stopped

        if record.kind == "export":
            written = 0

            async def write(data: bytes) -> None:
                nonlocal written
                written += len(data)
                if written > MAX_RESULT_BYTES:
                    raise InputError(
                        f"the picture takes more than {MAX_RESULT_BYTES >> 20} MiB as a PNG; "
                        "export a smaller window or scale"
                    )
                await self.store.jobs.append(record.id, data)

            scale = int(params["scale"])
            edited = None
            if await self.store.edits.version(record.world_id):

                async def edited(p: Piece) -> npt.NDArray[np.uint8] | None:
                    rect = Rect(p.x, p.y, p.w, p.h)
                    return await self.content.picture(
                        self.store.edits, record.world_id, spec, rect, scale
                    )

            extra = {} if self.band_px is None else {"band_px": self.band_px}
            await write_export(
                self.pool, spec, window, scale, write, progress, edited=edited, **extra
            )
        elif record.kind == "prerender":
            tiles = plan_tiles(*window, int(params["z_min"]), int(params["z_max"]))

            async def put(version: str, z: int, x: int, y: int, png: bytes) -> None:
                await self.store.tiles.put(record.world_id, version, z, x, y, png)

            await prerender_tiles(
                self.pool, spec, tiles, put, progress, edited=await self._edited_tiles(record)
            )
            # the result of a pre-render is the tiles themselves; a tiny JSON says how many
            await self.store.jobs.append(record.id, b'{"tiles": %d}' % len(tiles))
        elif record.kind == "tiles":
            tiles = plan_tiles(*window, int(params["z_min"]), int(params["z_max"]))
            archive = TileArchive()

            async def add(version: str, z: int, x: int, y: int, png: bytes) -> None:
                await self.store.jobs.append(record.id, archive.add(z, x, y, png))

            await prerender_tiles(
                self.pool, spec, tiles, add, progress, edited=await self._edited_tiles(record)
            )
            await self.store.jobs.append(record.id, archive.close())
        else:
            raise InputError(f"unknown job kind {record.kind!r}")

    async def _edited_tiles(self, record: JobRecord) -> EditedTile | None:
        """Draws the job's tiles whose cells were edited (None: the world has no edit)."""
        if not await self.store.edits.version(record.world_id):
            return None
        spec = WorldSpec(**record.params["spec"])

        async def edited(z: int, x: int, y: int) -> tuple[int, bytes] | None:
            return await self.content.edited_tile(self.store.edits, record.world_id, spec, z, x, y)

        return edited
