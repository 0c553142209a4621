"""Worlds over uploaded models, for the routes: creation, the library job, "preparing".

* :func:`create_world` makes a world over a model the user may use (their own, or a shared one):
  the world is attached to the model first (so the model cannot be deleted under it), then
  stored; if the model's patch library is not built, a library job is queued
  (:func:`start_library`) and the world is "preparing" until it ends.
* :func:`preparation` is what the world page asks while it waits: ``ready``, ``preparing``
  (with the job's percent and stage) or ``failed`` (with the reason). A model whose library was
  never built here and has no job (restored from a backup, which keeps models but not their
  libraries; or its job's record expired) has its build started by the first such question.
* :func:`ensure_files` writes a model's files into this machine's cache before the generator
  builds a world over it (:mod:`worldgen.world` never reads Redis).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Literal

from worldgen.errors import ConflictError, NotFoundError
from worldgen.jobs.broker import JobQueue
from worldgen.jobs.library import LIBRARY_JOB, ensure_model
from worldgen.jobs.runner import spec_params
from worldgen.store.client import Store
from worldgen.store.models import ModelRecord
from worldgen.store.worlds import MAX_SEED, Visibility, WorldRecord, new_world_id
from worldgen.web.generation import spec_for, spec_of
from worldgen.world.spec import UPLOAD_PREFIX

__all__ = [
    "LIBRARY_JOBS_LIMIT",
    "UPLOAD_TILESET",
    "Preparation",
    "create_world",
    "ensure_files",
    "model_kind",
    "preparation",
    "start_library",
]

UPLOAD_TILESET = "upload"
"""The ``tileset`` of a world over an uploaded model (its ``model`` field names the model)."""
LIBRARY_JOBS_LIMIT = 1_000
"""A library job is queued whatever the owner's other jobs (a world cannot open without it)."""


def model_kind(record: ModelRecord) -> Literal["tiled", "overlapping"]:
    """The world kind of a model: ``overlapping`` for a sample, ``tiled`` for a tileset."""
    return "overlapping" if record.kind == "sample" else "tiled"


def usable(record: ModelRecord | None, user_id: str) -> ModelRecord:
    """The model if ``user_id`` may build a world over it (theirs, or shared), else 404."""
    if record is None or (record.owner != user_id and not record.shared):
        raise NotFoundError("model not found")
    return record


async def ensure_files(store: Store, world: WorldRecord) -> None:
    """The world's model files (and library, once built) in this machine's cache."""
    if world.model is not None:
        await ensure_model(store, world.model)


async def start_library(
    store: Store, queue: JobQueue, model: ModelRecord, world_id: str, owner: str
) -> str | None:
    """The id of the job building ``model``'s library (an existing one if running, else a new
    one on ``world_id`` for ``owner``), or None when the library is built."""
    if model.library:
        return None
    stale = ""
    if model.job:
        held = await store.jobs.get(model.job)
        if held is not None and held.active:
            return held.id
        stale = model.job
    world = await store.worlds.get(world_id)
    if world is None:
        return None
    params = {"model": model.id, "spec": spec_params(spec_for(world))}
    job = await store.jobs.create(world_id, owner, LIBRARY_JOB, params, limit=LIBRARY_JOBS_LIMIT)
    if job is None:  # pragma: no cover - the limit is far above any real count
        raise ConflictError("too many jobs; retry later")
    claim = await store.models.claim_library(model.id, job.id, stale)
    if claim != "claimed":
        await store.jobs.fail(job.id, owner, "another job builds this library")
        return None if claim in ("ready", "missing") else claim
    try:
        await queue.send(job.id)
    except BaseException:
        await store.jobs.fail(job.id, owner, "the job could not be queued")
        raise
    return job.id


async def create_world(
    store: Store,
    queue: JobQueue,
    *,
    digest: str,
    owner: str,
    name: str,
    seed: int | None,
    visibility: Visibility,
) -> WorldRecord:
    """A new world over the model ``digest`` (404 unless ``owner`` may use it), its library
    job queued if needed; the caller adds the owner's membership."""
    model = usable(await store.models.get(digest), owner)
    kind = model_kind(model)
    record = WorldRecord(
        id=new_world_id(),
        name=name,
        tileset=UPLOAD_TILESET,
        kind=kind,
        seed=seed if seed is not None else secrets.randbelow(MAX_SEED + 1),
        visibility=visibility,
        owner=owner,
        created=time.time(),
        model=model.id,
        block_size=spec_of(kind, f"{UPLOAD_PREFIX}{model.id}", 0).S,
    )
    if not await store.models.attach(model.id, record.id):
        raise NotFoundError("model not found")
    try:
        await store.worlds.put(record)
    except BaseException:
        await store.models.detach(model.id, record.id)
        raise
    await start_library(store, queue, model, record.id, owner)
    return record


@dataclass(frozen=True)
class Preparation:
    """Whether a world can be drawn: ``ready``, ``preparing`` (``percent``, ``stage``) or
    ``failed`` (``message``)."""

    state: Literal["ready", "preparing", "failed"]
    percent: int = 100
    stage: str = ""
    message: str = ""
    job: str | None = None


async def preparation(
    store: Store, world: WorldRecord, queue: JobQueue | None = None
) -> Preparation:
    """How far the world's model is from ready (a bundled world is always ready). With
    ``queue``, a library that is neither built nor being built (no job record: a restored
    model) starts building, on behalf of the world's owner; a build that failed does not (its
    reason is shown, and a viewer starts it again)."""
    if world.model is None:
        return Preparation("ready")
    model = await store.models.get(world.model)
    if model is None:
        return Preparation("failed", 0, "failed", "the world's model was deleted")
    if model.library:
        await ensure_model(store, model.id)
        return Preparation("ready")
    job = await store.jobs.get(model.job) if model.job else None
    if job is None and queue is not None:
        started = await start_library(store, queue, model, world.id, world.owner or model.owner)
        job = await store.jobs.get(started) if started else None
        if started is None:  # built meanwhile, or the model is gone
            return await preparation(store, world)
    if job is None:
        return Preparation("failed", 0, "failed", "the library build was lost; start it again")
    if job.state == "failed":
        return Preparation("failed", job.percent, "failed", job.message, job.id)
    if job.state == "done":  # the record says ready a moment before the job ends
        return Preparation("ready")
    return Preparation("preparing", job.percent, job.stage, "", job.id)
