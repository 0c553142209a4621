"""Your own models over HTTP (issue 15): upload a sample PNG or a tileset zip, share it, make
worlds from it.

* ``POST /api/models`` (multipart, signed in): ``file`` and ``kind`` (``sample``: a PNG of at
  most 128x128 px and 256 colours, with ``N`` 2..5, ``symmetry`` 1/2/4/8, ``periodic``,
  ``ground``; ``tileset``: a zip of the classic XML and its PNGs, or our JSON). Bad input is a
  4xx naming the problem and stores nothing; ``upload`` counts per hour (``rate_limits.
  model_upload``: 429 with ``Retry-After``) and stored bytes per user (413 with a message).
  The same bytes and options uploaded by the same user are the same model (content-addressed
  per owner: its id is a SHA-256 over the bytes, the options and the owner): ``201`` when
  stored, ``200`` when you had uploaded it already. Someone else's identical model, private or
  shared, makes no difference: you get a model of your own (``201``), so an upload reveals
  nothing about other people's models.
* ``GET /api/models`` (yours and the shared ones), ``GET /api/models/{id}``,
  ``GET /api/models/{id}/preview.png`` (a plain WFC solve of 48x48 cells, deterministic),
  ``PATCH`` (rename, share or unshare; the owner), ``DELETE`` (the owner; 409 while worlds use
  it). A private model is a 404 to everyone but its owner.
* A world is made from a model with ``POST /api/worlds`` and ``{"model": "<id>"}``; while its
  patch library is built (a job), ``GET /api/worlds/{id}/preparation`` says how far it is, and
  ``POST`` there starts a failed build again.

Unsafe methods pass the app's cross-site (``Origin``) check like every other route.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Path, Request, Response, UploadFile, status
from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

from worldgen.engine import uploads
from worldgen.errors import ConflictError, ForbiddenError, NotFoundError, QuotaExceededError
from worldgen.store.models import ModelRecord, QuotaExceeded, owned_options, shown_options
from worldgen.web.auth.services import authorize, authorize_user, rate_limit
from worldgen.web.deps import (
    CurrentUser,
    JobQueueDep,
    OptionalUser,
    SecurityDep,
    StoreDep,
    WorldDep,
)
from worldgen.web.ladder import bytes_etag, etag_matches
from worldgen.web.routes.worlds import NAME_SCHEMA, WorldName
from worldgen.web.uploads import Preparation, preparation, start_library

__all__ = [
    "ModelChange",
    "ModelList",
    "ModelOut",
    "PreparationOut",
    "router",
]

router = APIRouter(prefix="/api", tags=["models"])


PNG = "image/png"
Digest = Annotated[
    str, Path(max_length=64, description="The model's id: its SHA-256 (64 lowercase hex digits).")
]
"""A malformed id is simply unknown (404, like a world id): ids are opaque to clients."""


class ModelOut(BaseModel):
    """A model as the API shows it; ``patterns`` counts a sample's patterns or a tileset's
    oriented tiles; ``size`` is what it takes of your quota."""

    id: str
    name: str
    kind: Literal["sample", "tileset"]
    options: dict[str, int | bool]
    patterns: int
    size: int
    shared: bool
    mine: bool
    library: Literal["ready", "none"]
    created: str
    preview: str

    @classmethod
    def of(cls, record: ModelRecord, user_id: str | None) -> ModelOut:
        created = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        return cls(
            id=record.id,
            name=record.name,
            kind=record.kind,
            options=shown_options(record.options),
            patterns=record.patterns,
            size=record.size,
            shared=record.shared,
            mine=record.owner == user_id,
            library="ready" if record.library else "none",
            created=created.replace("+00:00", "Z"),
            preview=f"/api/models/{record.id}/preview.png",
        )


class ModelList(BaseModel):
    """``GET /api/models``: yours first (newest first), then the shared ones of others."""

    models: list[ModelOut]
    used_bytes: int
    quota_bytes: int


class ModelChange(BaseModel):
    """``PATCH /api/models/{id}``: a new ``name`` and/or ``shared`` (listed for everyone)."""

    model_config = ConfigDict(
        extra="forbid",
        # the schema says what the validator below checks: name or shared, not null
        json_schema_extra={
            "anyOf": [
                {"required": ["name"], "properties": {"name": NAME_SCHEMA}},
                {"required": ["shared"], "properties": {"shared": {"type": "boolean"}}},
            ]
        },
    )

    name: WorldName | None = None
    shared: bool | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> ModelChange:
        if self.name is None and self.shared is None:
            raise PydanticCustomError("nothing_to_change", "give a new name or shared (or both)")
        return self


class PreparationOut(BaseModel):
    """Whether a world can be drawn yet: ``ready``; ``preparing`` its model's patch library
    (``percent``, ``stage``); ``failed`` (``message``; ``POST`` the same path to retry)."""

    state: Literal["ready", "preparing", "failed"]
    percent: int
    stage: str
    message: str

    @classmethod
    def of(cls, prep: Preparation) -> PreparationOut:
        return cls(state=prep.state, percent=prep.percent, stage=prep.stage, message=prep.message)


async def _visible(store: StoreDep, digest: str, user_id: str | None) -> ModelRecord:
    record = await store.models.get(digest)
    if record is None or (record.owner != user_id and not record.shared):
        raise NotFoundError("model not found")
    return record


async def _owned(store: StoreDep, digest: str, user_id: str) -> ModelRecord:
    record = await _visible(store, digest, user_id)
    if record.owner != user_id:
        raise ForbiddenError("only the model's owner may change or delete it")
    return record


@router.post(
    "/models",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": ModelOut, "description": "The same model was stored already."},
        413: {"description": "The file is too large, or your models' quota is full."},
        429: {"description": "Too many uploads this hour (see Retry-After)."},
    },
)
async def upload_model(
    file: Annotated[UploadFile, File(description="A sample PNG or a tileset zip.")],
    user: CurrentUser,
    security: SecurityDep,
    store: StoreDep,
    response: Response,
    kind: Annotated[Literal["sample", "tileset"], Form()] = "sample",
    name: Annotated[WorldName, Form()] = "my model",
    N: Annotated[int, Form(ge=2, le=5)] = 3,
    symmetry: Annotated[int, Form(ge=1, le=8)] = 8,
    periodic: Annotated[bool, Form()] = True,
    ground: Annotated[bool, Form()] = False,
) -> ModelOut:
    """Upload a model (signed in); nothing is stored unless it is usable."""
    await rate_limit(security, "model_upload", user.id)
    limit = uploads.MAX_ZIP_BYTES if kind == "tileset" else uploads.MAX_SAMPLE_BYTES
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise QuotaExceededError(f"the file is larger than {limit} bytes, the limit for a {kind}")
    options = uploads.UploadOptions(N=N, symmetry=symmetry, periodic=periodic, ground=ground)
    stored, model = await asyncio.to_thread(uploads.canonical_upload, kind, data, options)
    stored_options = owned_options(options.as_dict(kind), user.id)  # type: ignore[arg-type]
    digest = uploads.model_digest(kind, stored, stored_options)
    patterns = model.size
    record = ModelRecord(
        id=digest,
        name=name,
        kind=kind,
        options=stored_options,
        owner=user.id,
        created=datetime.now(UTC).timestamp(),
        size=len(stored),
        patterns=patterns,
    )
    try:
        saved, created = await store.models.create(record, stored)
    except QuotaExceeded as exc:
        raise QuotaExceededError(
            f"your models take {exc.used} of {exc.quota} bytes; this one needs {exc.size} "
            "more: delete a model first"
        ) from None
    if saved.owner != user.id:  # pragma: no cover - two owners' 52-bit numbers collided
        raise ConflictError("the model could not be stored under your account; change a byte")
    response.headers["Location"] = f"/api/models/{digest}"
    if not created:
        response.status_code = status.HTTP_200_OK
    return ModelOut.of(saved, user.id)


@router.get("/models")
async def list_models(user: CurrentUser, store: StoreDep) -> ModelList:
    """Your models, then the models others share."""
    mine = await store.models.mine(user.id)
    shared = [m for m in await store.models.public() if m.owner != user.id]
    return ModelList(
        models=[ModelOut.of(m, user.id) for m in [*mine, *shared]],
        used_bytes=await store.models.used_bytes(user.id),
        quota_bytes=store.models.quota_bytes,
    )


@router.get("/models/{digest}")
async def get_model(digest: Digest, user: OptionalUser, store: StoreDep) -> ModelOut:
    """One model (yours, or a shared one)."""
    user_id = None if user is None else user.id
    return ModelOut.of(await _visible(store, digest, user_id), user_id)


@router.get(
    "/models/{digest}/preview.png",
    response_class=Response,
    responses={200: {"content": {PNG: {}}}, 304: {"description": "Not modified"}},
)
async def model_preview(
    digest: Digest, request: Request, user: OptionalUser, store: StoreDep
) -> Response:
    """A plain WFC solve of 48x48 cells with the model (the same bytes every time)."""
    record = await _visible(store, digest, None if user is None else user.id)
    etag = bytes_etag(f"model-preview:{digest}".encode())
    headers = {"ETag": etag, "Cache-Control": "private, max-age=86400"}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    png = await store.models.preview(digest)
    if png is None:
        data = await store.models.data(digest)
        if data is None:
            raise NotFoundError("model not found")
        png = await asyncio.to_thread(_preview, record, data)
        await store.models.set_preview(digest, png)
    return Response(png, media_type=PNG, headers=headers)


def _preview(record: ModelRecord, data: bytes) -> bytes:
    options = uploads.UploadOptions.of(record.kind, record.options)
    return uploads.preview_png(uploads.load_upload(record.kind, data, options), options)


@router.patch("/models/{digest}")
async def change_model(
    digest: Digest, body: ModelChange, user: CurrentUser, store: StoreDep
) -> ModelOut:
    """Rename, share or unshare your model."""
    await _owned(store, digest, user.id)
    record = await store.models.update(digest, name=body.name, shared=body.shared)
    if record is None:
        raise NotFoundError("model not found")
    return ModelOut.of(record, user.id)


@router.delete(
    "/models/{digest}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={409: {"description": "Worlds are made from the model: delete them first."}},
)
async def delete_model(digest: Digest, user: CurrentUser, store: StoreDep) -> Response:
    """Delete your model, unless worlds are made from it (409: delete them first)."""
    await _owned(store, digest, user.id)
    used = await store.models.delete(digest)
    if used is None:
        raise NotFoundError("model not found")
    if used:
        raise ConflictError(
            f"{used} world{'s' if used > 1 else ''} use this model; delete "
            f"{'them' if used > 1 else 'it'} first"
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/worlds/{world_id}/preparation")
async def world_preparation(
    world: WorldDep, request: Request, store: StoreDep, queue: JobQueueDep
) -> PreparationOut:
    """Whether the world can be drawn yet (its uploaded model's patch library is built); a
    library with no build at all (a model restored from a backup) starts building now."""
    await authorize(request, world, "view")
    return PreparationOut.of(await preparation(store, world, queue))


@router.post("/worlds/{world_id}/preparation")
async def retry_preparation(
    world: WorldDep, request: Request, store: StoreDep, queue: JobQueueDep
) -> PreparationOut:
    """Start the library build of a world whose build failed (signed-in viewers)."""
    user = await authorize_user(request, world, "view")
    prep = await preparation(store, world)
    if prep.state == "failed" and world.model is not None:
        model = await store.models.get(world.model)
        if model is not None:
            await start_library(store, queue, model, world.id, user.id)
            prep = await preparation(store, world)
    return PreparationOut.of(prep)
