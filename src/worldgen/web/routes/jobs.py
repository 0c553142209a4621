"""Background jobs over HTTP (issue 15): large exports and pre-rendering on the job queue.

* ``POST /api/worlds/{id}/exports`` (a picture of up to 16384 px a side),
  ``POST /api/worlds/{id}/tile-archives`` (a zip of up to 4096 map tiles) and
  ``POST /api/worlds/{id}/prerenders`` (up to 4096 map tiles into the tile cache) queue a job
  and answer ``202`` with its state and a ``Location``; the requester must be signed in and
  allowed to view the world. Each user has at most ``jobs_per_user`` jobs queued or running
  (one more: ``429`` with ``Retry-After``).
* ``GET /api/jobs`` lists your queued and running jobs (``?world_id=`` for one world's), so a
  page opened again follows them.
* ``GET /api/jobs/{id}`` is the job's state (``queued``, ``running`` with ``percent`` and
  ``stage``, ``done``, ``failed`` with ``message``). The same changes reach the owner's open
  sockets of the world live as ``job`` frames (``docs/realtime.md``); pages read this now and
  then as a safety net, and about once a second while their socket is down.
* ``DELETE /api/jobs/{id}`` cancels a queued or running job (``409`` once it has ended).
* ``GET /api/jobs/{id}/result`` streams the result (the PNG) until it expires
  (``job_result_ttl_s``), then ``404``.

A job is visible only to its owner, and only while the owner may view its world: anyone else
gets the ``404`` of an unknown job, so job ids reveal nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from worldgen.errors import (
    ConflictError,
    NotFoundError,
    RateLimitedError,
    SignInRequiredError,
    WorldgenError,
)
from worldgen.jobs.export import MAX_JOB_EXPORT_PX, MAX_PRERENDER_TILES
from worldgen.jobs.runner import spec_params
from worldgen.store.jobs import JobRecord, parse_job_id
from worldgen.web.auth.services import authorize, authorize_user, current_user
from worldgen.web.deps import JobQueueDep, SettingsDep, StoreDep, WorldDep
from worldgen.web.generation import spec_for
from worldgen.web.params import JSON_INT
from worldgen.web.routes.worlds import MAX_COORD, MAX_SCALE, Detail
from worldgen.world.render import Z_DETAIL, Z_MIN, cells_per_tile

__all__ = ["ExportJobIn", "JobOut", "JobsOut", "PrerenderJobIn", "router"]

router = APIRouter(prefix="/api", tags=["jobs"])

RETRY_AFTER_S = 10
"""``Retry-After`` of a refused job: about the time a small export takes."""
_CHUNK = 1 << 20
"""Bytes read from Redis per step of a result download."""

JsonCoord = Annotated[int, Field(ge=-MAX_COORD, le=MAX_COORD), JSON_INT]
JsonSide = Annotated[int, Field(ge=1, le=MAX_JOB_EXPORT_PX), JSON_INT]
JsonZoom = Annotated[int, Field(ge=Z_MIN, le=Z_DETAIL), JSON_INT]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExportJobIn(_Strict):
    """A picture of ``w`` x ``h`` cells from ``(x, y)`` at ``scale`` px per cell, at most 16384
    px a side."""

    x: JsonCoord
    y: JsonCoord
    w: JsonSide
    h: JsonSide
    scale: Annotated[int, Field(ge=1, le=MAX_SCALE), JSON_INT] = 1
    format: Literal["png"] = "png"

    @model_validator(mode="after")
    def _bounded_picture(self) -> ExportJobIn:
        if max(self.w, self.h) * self.scale > MAX_JOB_EXPORT_PX:
            raise ValueError(
                f"the picture would be {self.w * self.scale}x{self.h * self.scale} px; "
                f"at most {MAX_JOB_EXPORT_PX} px a side: use a smaller window or scale"
            )
        return self


class PrerenderJobIn(_Strict):
    """The map tiles over a window of cells at zooms ``z_min..z_max``, at most 4096 tiles."""

    x: JsonCoord
    y: JsonCoord
    w: JsonSide
    h: JsonSide
    z_min: JsonZoom
    z_max: JsonZoom

    @model_validator(mode="after")
    def _bounded_tiles(self) -> PrerenderJobIn:
        if self.z_min > self.z_max:
            raise ValueError("z_min must not exceed z_max")
        count = sum(_tiles_at(self, z) for z in range(self.z_min, self.z_max + 1))
        if count > MAX_PRERENDER_TILES:
            raise ValueError(
                f"{count} tiles; at most {MAX_PRERENDER_TILES}: use a smaller window or fewer zooms"
            )
        return self


def _tiles_at(q: PrerenderJobIn, z: int) -> int:
    """Map tiles of zoom ``z`` over the window (counted, not listed: the window may be huge)."""
    n = cells_per_tile(z)
    return ((q.x + q.w - 1) // n - q.x // n + 1) * ((q.y + q.h - 1) // n - q.y // n + 1)


class JobOut(BaseModel):
    """A job as its owner sees it; ``result`` is the download path once ``done``."""

    id: str
    world_id: str
    kind: str
    state: Literal["queued", "running", "done", "failed"]
    percent: int
    stage: str
    message: str
    size: int
    created: float
    updated: float
    result: str | None = None
    expires: float | None = None


def _out(record: JobRecord, ttl_s: int) -> JobOut:
    done = record.state == "done"
    return JobOut(
        id=record.id,
        world_id=record.world_id,
        kind=record.kind,
        state=record.state,
        percent=record.percent,
        stage=record.stage,
        message=record.message,
        size=record.size,
        created=record.created,
        updated=record.updated,
        result=f"/api/jobs/{record.id}/result" if done else None,
        expires=record.updated + ttl_s if done else None,
    )


async def _queue(
    request: Request,
    world: WorldDep,
    store: StoreDep,
    settings: SettingsDep,
    queue: JobQueueDep,
    kind: str,
    params: dict[str, object],
    response: Response,
) -> JobOut:
    user = await authorize_user(request, world, "view")
    params = {"spec": spec_params(spec_for(world)), **params}
    limit = settings.jobs_per_user
    record = await store.jobs.create(world.id, user.id, kind, params, limit=limit)
    if record is None:
        raise RateLimitedError(
            f"you already have {limit} jobs queued or running; wait for one to finish",
            retry_after=RETRY_AFTER_S,
        )
    try:
        await queue.send(record.id)
    except BaseException:
        await store.jobs.fail(record.id, user.id, "the job could not be queued")
        raise
    response.headers["Location"] = f"/api/jobs/{record.id}"
    return _out(record, settings.job_result_ttl_s)


@router.post("/worlds/{world_id}/exports", status_code=202)
async def create_export(
    world: WorldDep,
    body: ExportJobIn,
    request: Request,
    response: Response,
    store: StoreDep,
    settings: SettingsDep,
    queue: JobQueueDep,
) -> JobOut:
    """Queue a PNG export of a window (signed-in viewers; ``jobs_per_user`` at a time)."""
    params: dict[str, object] = body.model_dump(exclude={"format"})
    return await _queue(request, world, store, settings, queue, "export", params, response)


@router.post("/worlds/{world_id}/prerenders", status_code=202)
async def create_prerender(
    world: WorldDep,
    body: PrerenderJobIn,
    request: Request,
    response: Response,
    store: StoreDep,
    settings: SettingsDep,
    queue: JobQueueDep,
) -> JobOut:
    """Queue the pre-rendering of a window's map tiles at a range of zooms into the cache."""
    params: dict[str, object] = body.model_dump()
    return await _queue(request, world, store, settings, queue, "prerender", params, response)


async def _visible_job(request: Request, job_id: str, store: StoreDep) -> JobRecord:
    """The job, if the requester owns it and may still view its world; else 404."""
    unknown = NotFoundError("no such job (or it has expired)")
    parsed = parse_job_id(job_id)
    user = await current_user(request)
    if parsed is None or user is None:
        raise unknown
    record = await store.jobs.get(job_id)
    if record is None or record.owner != user.id:
        raise unknown
    world = await store.worlds.cached(parsed[0])
    if world is None:
        raise unknown
    try:
        await authorize(request, world, "view")
    except WorldgenError:
        raise unknown from None
    return record


@router.post("/worlds/{world_id}/tile-archives", status_code=202)
async def create_tile_archive(
    world: WorldDep,
    body: PrerenderJobIn,
    request: Request,
    response: Response,
    store: StoreDep,
    settings: SettingsDep,
    queue: JobQueueDep,
) -> JobOut:
    """Queue a zip of a window's map tiles at a range of zooms (``<z>/<x>/<y>.png``)."""
    params: dict[str, object] = body.model_dump()
    return await _queue(request, world, store, settings, queue, "tiles", params, response)


class JobsOut(BaseModel):
    """The requester's jobs that are queued or running."""

    jobs: list[JobOut]


@router.get("/jobs")
async def list_jobs(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    world_id: Annotated[str | None, Query(max_length=64)] = None,
) -> JobsOut:
    """Your queued and running jobs (of one world with ``world_id``), oldest first, so a page
    opened again can follow them; 401 when signed out."""
    user = await current_user(request)
    if user is None:
        raise SignInRequiredError
    out = []
    for job_id in await store.jobs.active_ids(user.id):
        parsed = parse_job_id(job_id)
        if parsed is None or (world_id is not None and parsed[0] != world_id):
            continue
        try:
            record = await _visible_job(request, job_id, store)
        except NotFoundError:
            continue
        if record.active:
            out.append(_out(record, settings.job_result_ttl_s))
    return JobsOut(jobs=out)


@router.get("/jobs/{job_id}")
async def get_job(job_id: str, request: Request, store: StoreDep, settings: SettingsDep) -> JobOut:
    """The job's state and progress (its owner only)."""
    record = await _visible_job(request, job_id, store)
    return _out(record, settings.job_result_ttl_s)


@router.delete(
    "/jobs/{job_id}",
    status_code=204,
    responses={409: {"model": Detail, "description": "The job has already ended."}},
)
async def cancel_job(job_id: str, request: Request, store: StoreDep) -> Response:
    """Cancel a queued or running job (its owner only): it ends ``failed`` ("cancelled"); a
    running attempt stops at its next progress report. 409 once the job has ended."""
    record = await _visible_job(request, job_id, store)
    if not await store.jobs.cancel(job_id, record.owner):
        raise ConflictError(f"the job has already ended ({record.state})")
    return Response(status_code=204)


@router.get(
    "/jobs/{job_id}/result",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "application/zip": {}, "application/json": {}}}},
)
async def get_job_result(job_id: str, request: Request, store: StoreDep) -> StreamingResponse:
    """The finished job's result, streamed (404 before it is done and after it expires)."""
    record = await _visible_job(request, job_id, store)
    size = await store.jobs.result_size(job_id) if record.state == "done" else 0
    if size == 0:
        raise NotFoundError("the result is not ready, or it has expired: run the job again")

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, size, _CHUNK):
            data = await store.jobs.read_result(job_id, start, _CHUNK)
            if not data:  # expired while streaming: the client sees a short body
                return
            yield data

    p = record.params
    if record.kind == "export":
        media = "image/png"
        disposition = f'attachment; filename="{record.world_id}_{p["x"]}_{p["y"]}.png"'
    elif record.kind == "tiles":
        media = "application/zip"
        name = f"{record.world_id}_tiles_{p['z_min']}_{p['z_max']}_{p['x']}_{p['y']}.zip"
        disposition = f'attachment; filename="{name}"'
    else:
        media, disposition = "application/json", "inline"
    headers = {
        "Content-Length": str(size),
        "Content-Disposition": disposition,
        "Cache-Control": "private, no-store",
    }
    return StreamingResponse(chunks(), media_type=media, headers=headers)
