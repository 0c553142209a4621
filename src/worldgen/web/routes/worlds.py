"""The JSON API of worlds and of the tilesets they are made from (``/api/...``).

Every request and response is a pydantic model with bounds, so bad input is a 422 before any
work is done. A world's content is a pure function of (tileset, kind, seed); renaming is the only
change a world can undergo. Every world route asks :func:`~worldgen.web.auth.services.authorize`
(creating needs an account; viewers view, editors rename, owners delete), and a private world is a
404 to anyone who is not a member, exactly like a world that does not exist.
"""

from __future__ import annotations

import secrets
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from worldgen.errors import NotFoundError, WorldNotFoundError
from worldgen.store.models import DIGEST_PATTERN
from worldgen.store.worlds import LEGACY_BLOCK_SIZE, MAX_SEED, NAME_MAX, WorldRecord
from worldgen.web import uploads
from worldgen.web.auth.services import authorize, authorize_user, rate_limit, visible_worlds
from worldgen.web.auth.sessions import client_address
from worldgen.web.deps import (
    CurrentUser,
    EditServiceDep,
    ExportSlotsDep,
    GeneratorDep,
    HubDep,
    JobQueueDep,
    SecurityDep,
    StoreDep,
    WorldDep,
    WorldsDep,
)
from worldgen.web.errors import invalid
from worldgen.web.generation import Generator, spec_for, spec_of
from worldgen.web.ladder import bytes_etag, etag_matches
from worldgen.web.params import CANONICAL_INT, JSON_INT
from worldgen.web.routes.tiles import CACHE_CONTROL, PRIVATE_CACHE_CONTROL
from worldgen.world.api import CatalogEntry, bundled_names

__all__ = [
    "NAME_SCHEMA",
    "ExportQuery",
    "ListQuery",
    "RegionOut",
    "RegionQuery",
    "TilesetOut",
    "WorldCreate",
    "WorldList",
    "WorldOut",
    "WorldRename",
    "router",
]

router = APIRouter(prefix="/api", tags=["worlds"])

MAX_COORD = 2**31
"""Largest |x|, |y| of a region or export window (cells)."""
MAX_REGION = 256
MAX_EXPORT = 1024
MAX_SCALE = 16
MAX_EXPORT_PX = 4096
MAX_LIST = 100
PNG = "image/png"
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def _world_name(value: str) -> str:
    """Strip; then 1..80 characters without control or text-direction characters, each refusal
    with a message written for the person who typed the name (the API shows it as is)."""
    name = value.strip()
    if not name:
        raise PydanticCustomError("name_empty", "the name is empty; give the world a name")
    if len(name) > NAME_MAX:
        raise PydanticCustomError(
            "name_too_long",
            "the name has {length} characters; at most {max_length} are allowed",
            {"length": len(name), "max_length": NAME_MAX},
        )
    for ch in name:
        if unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") or ch in _BIDI_CONTROLS:
            raise PydanticCustomError(
                "name_control_character",
                "the name must not contain invisible control or text-direction characters "
                "(found U+{code})",
                {"code": f"{ord(ch):04X}"},
            )
    return name


_NAME_FORBIDDEN = (
    "\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\u061c\\u200e\\u200f"
    "\\u202a-\\u202e\\u2066-\\u2069"
)
_NAME_PATTERN = f"^[^{_NAME_FORBIDDEN}]*[^\\s{_NAME_FORBIDDEN}][^{_NAME_FORBIDDEN}]*$"
"""What :func:`_world_name` takes, for the schema: no control, line/paragraph separator or bidi
character, and something left after stripping spaces. (Lone surrogates, refused too, are left
out: a surrogate range makes the pattern invalid for Unicode regex engines, which would then
ignore it.)"""


NAME_SCHEMA: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": NAME_MAX,
    "pattern": _NAME_PATTERN,
    "description": "1..80 characters after stripping spaces at both ends; no control "
    "or text-direction (bidi) characters.",
}
WorldName = Annotated[str, AfterValidator(_world_name), WithJsonSchema(NAME_SCHEMA)]
"""A display name: stripped, 1..80 characters, no control or bidi-override characters."""
_TILESET_SCHEMA: dict[str, Any] = {
    "type": "string",
    "enum": bundled_names(),
    "description": "A bundled tileset or sample (GET /api/tilesets).",
}
TilesetName = Annotated[str, WithJsonSchema(_TILESET_SCHEMA)]
"""A bundled entry's name: the schema lists them (the route answers 422 for any other)."""
Seed = Annotated[int, Field(ge=0, le=MAX_SEED), JSON_INT]
Version = Annotated[int, Field(ge=1, le=MAX_SEED), JSON_INT]
Coord = Annotated[int, Field(ge=-MAX_COORD, le=MAX_COORD), CANONICAL_INT]
ModelId = Annotated[str, StringConstraints(pattern=DIGEST_PATTERN)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Detail(BaseModel):
    """An error body."""

    detail: str


class WorldCreate(_Strict):
    """``POST /api/worlds``: a random seed when none is given."""

    model_config = ConfigDict(
        extra="forbid",
        # the schema says what the validator below checks: a tileset or a model, exactly one
        json_schema_extra={
            "oneOf": [
                {
                    "required": ["tileset"],
                    "properties": {"tileset": _TILESET_SCHEMA, "model": {"type": "null"}},
                },
                {
                    "required": ["model"],
                    "properties": {
                        "model": {"type": "string", "pattern": DIGEST_PATTERN},
                        "tileset": {"type": "null"},
                    },
                },
            ]
        },
    )

    name: WorldName
    tileset: TilesetName | None = Field(
        default=None, description="A name from GET /api/tilesets (or give a model)."
    )
    seed: Seed | None = Field(default=None, description="0..2**53-1; random when absent.")
    visibility: Literal["public", "private"] = "public"
    model: ModelId | None = Field(
        default=None,
        description="An uploaded model's id (GET /api/models), instead of a tileset: the world "
        "is 'preparing' (GET /api/worlds/{id}/preparation) until its patch library is built.",
    )

    @model_validator(mode="after")
    def _tileset_or_model(self) -> WorldCreate:
        if (self.tileset is None) == (self.model is None):
            raise PydanticCustomError(
                "tileset_or_model", "give either a tileset or a model (exactly one)"
            )
        return self


class WorldRename(_Strict):
    """``PATCH /api/worlds/{id}``: a new ``name`` (editors and owners) and/or ``visibility``
    (owners). ``version`` is the world's ``version`` the change was made against: if the world
    was changed since (someone else renamed it), the change is refused with 409 instead of
    overwriting theirs. Without ``version`` the change applies to whatever is current."""

    model_config = ConfigDict(
        extra="forbid",
        # the schema says what the validator below checks: name or visibility, not null
        json_schema_extra={
            "anyOf": [
                {"required": ["name"], "properties": {"name": NAME_SCHEMA}},
                {
                    "required": ["visibility"],
                    "properties": {"visibility": {"type": "string", "enum": ["public", "private"]}},
                },
            ]
        },
    )

    name: WorldName | None = None
    visibility: Literal["public", "private"] | None = None
    version: Version | None = Field(
        default=None, description="The version you edit (from GET); a stale one is a 409."
    )

    @model_validator(mode="after")
    def _something_to_change(self) -> WorldRename:
        if self.name is None and self.visibility is None:
            raise PydanticCustomError(
                "nothing_to_change", "give a new name or visibility (or both)"
            )
        return self


class WorldOut(BaseModel):
    """A world as the API shows it (``created`` is ISO 8601 UTC)."""

    id: str
    name: str
    tileset: str
    kind: Literal["tiled", "overlapping"]
    seed: int
    visibility: Literal["public", "private"]
    created: str
    version: int = Field(
        description="Edits so far + 1; send it back with a change (PATCH) to refuse stale edits."
    )
    tile_url: str = Field(description="Leaflet URL template of the map tiles.")
    preview: str
    page: str
    model: str | None = Field(
        default=None, description="The uploaded model the world is made from, if any."
    )
    block_size: int = Field(
        default=LEGACY_BLOCK_SIZE,
        description="The world's block size S in cells, fixed when it was made (its model's "
        "default then).",
    )

    @classmethod
    def of(cls, record: WorldRecord) -> WorldOut:
        created = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        return cls(
            id=record.id,
            name=record.name,
            tileset=record.tileset,
            kind=record.kind,
            seed=record.seed,
            visibility=record.visibility,
            created=created.replace("+00:00", "Z"),
            version=record.version,
            tile_url=f"/tiles/{record.id}/{{z}}/{{x}}/{{y}}.png",
            preview=f"/tiles/{record.id}/0/0/0.png",
            page=f"/worlds/{record.id}",
            model=record.model,
            block_size=record.block_size,
        )


class WorldList(BaseModel):
    """``GET /api/worlds``: newest first."""

    worlds: list[WorldOut]


class ListQuery(_Strict):
    """Paging of ``GET /api/worlds``."""

    offset: Annotated[int, Field(ge=0, le=1_000_000), CANONICAL_INT] = 0
    limit: Annotated[int, Field(ge=1, le=MAX_LIST), CANONICAL_INT] = MAX_LIST


class RegionQuery(_Strict):
    """A window of at most 256 x 256 cells; ``(x, y)`` is its top-left cell."""

    x: Coord
    y: Coord
    w: Annotated[int, Field(ge=1, le=MAX_REGION), CANONICAL_INT]
    h: Annotated[int, Field(ge=1, le=MAX_REGION), CANONICAL_INT]


class RegionOut(BaseModel):
    """The region JSON of the ``worldgen region`` command: ``cells`` row-major indices into
    ``tiles`` (tilesets: ``"<tile> <k>"``) or ``colors`` (samples: ``"#rrggbb"``)."""

    x: int
    y: int
    width: int
    height: int
    tiles: list[str] | None = None
    colors: list[str] | None = None
    cells: list[int]


class ExportQuery(_Strict):
    """A picture of up to 1024 x 1024 cells at ``scale`` px per cell, at most 4096 px a side."""

    x: Coord
    y: Coord
    w: Annotated[int, Field(ge=1, le=MAX_EXPORT), CANONICAL_INT]
    h: Annotated[int, Field(ge=1, le=MAX_EXPORT), CANONICAL_INT]
    scale: Annotated[int, Field(ge=1, le=MAX_SCALE), CANONICAL_INT] = 4

    @model_validator(mode="after")
    def _bounded_picture(self) -> ExportQuery:
        if max(self.w, self.h) * self.scale > MAX_EXPORT_PX:
            raise ValueError(
                f"the picture would be {self.w * self.scale}x{self.h * self.scale} px; "
                f"at most {MAX_EXPORT_PX} px a side: use a smaller window or scale"
            )
        return self


class TilesetOut(BaseModel):
    """A bundled tileset (``tiles``: oriented variants) or sample (``patterns``)."""

    name: str
    kind: Literal["tiled", "overlapping"]
    tiles: int | None = None
    patterns: int | None = None
    description: str
    preview: str

    @classmethod
    def of(cls, entry: CatalogEntry) -> TilesetOut:
        counts = {"tiles" if entry.kind == "tiled" else "patterns": entry.count}
        return cls(
            name=entry.name,
            kind=entry.kind,
            description=entry.description,
            preview=f"/api/tilesets/{entry.name}/preview.png",
            **counts,
        )


async def _catalog_entry(generator: Generator, name: str, loc: tuple[str, ...]) -> CatalogEntry:
    entries = await generator.catalog()
    for entry in entries:
        if entry.name == name:
            return entry
    names = ", ".join(e.name for e in entries)
    raise invalid(loc, f"unknown tileset {name!r}; available: {names}", name)


# ------------------------------------------------------------------------------- tilesets
@router.get(
    "/tilesets",
    response_model=list[TilesetOut],
    response_model_exclude_none=True,
    tags=["tilesets"],
)
async def list_tilesets(generator: GeneratorDep) -> list[TilesetOut]:
    """The bundled tilesets and samples a world can be made from."""
    return [TilesetOut.of(e) for e in await generator.catalog()]


@router.get(
    "/tilesets/{name}/preview.png",
    response_class=Response,
    responses={200: {"content": {PNG: {}}}, 304: {"description": "Not modified"}},
    tags=["tilesets"],
)
async def tileset_preview(
    name: Annotated[str, StringConstraints(max_length=64)],
    request: Request,
    generator: GeneratorDep,
) -> Response:
    """A small picture of the tileset or sample (cached by the browser for a day)."""
    entries = await generator.catalog()
    if all(e.name != name for e in entries):
        raise NotFoundError("tileset not found")
    previews: dict[str, bytes] = request.app.state.previews
    data = previews.get(name)
    if data is None:
        data = previews[name] = await generator.preview(name)
    etag = bytes_etag(data)
    headers = {"ETag": etag, "Cache-Control": "public, max-age=86400"}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=PNG, headers=headers)


# --------------------------------------------------------------------------------- worlds
@router.post(
    "/worlds",
    status_code=status.HTTP_201_CREATED,
    responses={404: {"model": Detail, "description": "No such model (or not yours to use)."}},
)
async def create_world(
    body: WorldCreate,
    user: CurrentUser,
    security: SecurityDep,
    worlds: WorldsDep,
    generator: GeneratorDep,
    store: StoreDep,
    queue: JobQueueDep,
) -> WorldOut:
    """Create a world (signed in; you become its owner); its content is fixed by (tileset, seed)
    forever, or by (model, seed) over an uploaded model (yours or a shared one)."""
    await rate_limit(security, "world_create", user.id)
    if body.model is not None:  # an uploaded model: web/uploads.py
        record = await uploads.create_world(
            store, queue, digest=body.model, owner=user.id, name=body.name, seed=body.seed,
            visibility=body.visibility,
        )  # fmt: skip
        await security.members.add(record.id, user.id, "owner")
        return WorldOut.of(record)
    assert body.tileset is not None  # noqa: S101  checked by WorldCreate
    entry = await _catalog_entry(generator, body.tileset, ("body", "tileset"))
    seed = body.seed if body.seed is not None else secrets.randbelow(MAX_SEED + 1)
    # Build the world once before storing it: refuses what cannot work, warms a worker.
    spec = spec_of(entry.kind, entry.name, seed)
    await generator.version(spec)
    created = await worlds.create(
        name=body.name,
        tileset=entry.name,
        kind=entry.kind,
        seed=seed,
        visibility=body.visibility,
        owner=user.id,
        block_size=spec.S,
    )
    await security.members.add(created.id, user.id, "owner")
    return WorldOut.of(created)


@router.get("/worlds")
async def list_worlds(
    query: Annotated[ListQuery, Query()], request: Request, worlds: WorldsDep
) -> WorldList:
    """The worlds you can see, newest first: the public ones and the private ones you belong to."""
    records = await visible_worlds(request, worlds, offset=query.offset, limit=query.limit)
    return WorldList(worlds=[WorldOut.of(r) for r in records])


@router.get("/worlds/{world_id}")
async def get_world(world: WorldDep, request: Request) -> WorldOut:
    """One world by id."""
    await authorize(request, world, "view")
    return WorldOut.of(world)


@router.patch(
    "/worlds/{world_id}",
    responses={
        401: {"model": Detail, "description": "Not signed in."},
        403: {"model": Detail, "description": "Your role does not allow this change."},
        404: {"model": Detail, "description": "No such world (or a private one)."},
        409: {"model": Detail, "description": "The world changed since ``version``: reload."},
    },
)
async def change_world(
    world: WorldDep,
    body: WorldRename,
    request: Request,
    worlds: WorldsDep,
    hub: HubDep,
    security: SecurityDep,
) -> WorldOut:
    """Rename a world (editors and owners) and/or change its visibility (owners); its content
    does not change. Connected clients hear of it; when a world becomes private, the sockets of
    everyone who may no longer see it close (4404) on every instance."""
    if body.name is not None:
        await authorize_user(request, world, "rename")
    if body.visibility is not None:
        await authorize_user(request, world, "change")
    record = await worlds.update(
        world.id, name=body.name, visibility=body.visibility, expected_version=body.version
    )
    if record is None:
        raise WorldNotFoundError
    if body.name is not None:
        await hub.world_event(world.id, "renamed", name=record.name, version=record.version)
    if body.visibility is not None and body.visibility != world.visibility:
        await hub.world_event(
            world.id, "changed", visibility=record.visibility, version=record.version
        )
        await security.revocations.world_changed(world.id)
    return WorldOut.of(record)


@router.delete("/worlds/{world_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_world(
    world: WorldDep,
    request: Request,
    security: SecurityDep,
    worlds: WorldsDep,
    hub: HubDep,
    store: StoreDep,
) -> Response:
    """Delete a world (owners only) and every key it owns (its cached tiles age out of the LRU).

    Connected clients are told, then their sockets close (4404).
    """
    await authorize_user(request, world, "delete")
    world_id = world.id
    await security.members.forget_world(world_id)
    if not await worlds.delete(world_id):
        raise WorldNotFoundError
    if world.model is not None:  # the model may be deleted once no world uses it
        await store.models.detach(world.model, world_id)
    await hub.world_event(world_id, "deleted")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/worlds/{world_id}/region", response_model_exclude_none=True)
async def world_region(
    world: WorldDep,
    query: Annotated[RegionQuery, Query()],
    request: Request,
    generator: GeneratorDep,
    store: StoreDep,
    edits: EditServiceDep,
) -> RegionOut:
    """The cells of a window, as the ``worldgen region`` command writes them (with edits)."""
    await authorize(request, world, "view")
    doc: dict[str, Any] = await generator.region(
        spec_for(world), query.x, query.y, query.w, query.h
    )
    return RegionOut.model_validate(await edits.region_cells(store.edits, world, doc))


@router.get(
    "/worlds/{world_id}/export.png",
    response_class=Response,
    responses={200: {"content": {PNG: {}}}, 304: {"description": "Not modified"}},
)
async def world_export(
    world: WorldDep,
    query: Annotated[ExportQuery, Query()],
    request: Request,
    generator: GeneratorDep,
    slots: ExportSlotsDep,
    store: StoreDep,
    edits: EditServiceDep,
) -> Response:
    """A PNG picture of a window (the same query always gives the same bytes: a strong ETag;
    caches revalidate, since the world may become private). At most ``exports_per_client``
    exports of one client address run at once; one more is a 429 with ``Retry-After``."""
    await authorize(request, world, "view")
    spec = spec_for(world)
    version = f"{await generator.version(spec)}-e{await store.edits.version(world.id)}"
    etag = bytes_etag(
        f"export:{world.id}:{version}:{query.x}:{query.y}:{query.w}:{query.h}:{query.scale}".encode()
    )
    headers = {
        "ETag": etag,
        "Cache-Control": CACHE_CONTROL if world.visibility == "public" else PRIVATE_CACHE_CONTROL,
        "Content-Disposition": f'inline; filename="{world.id}_{query.x}_{query.y}.png"',
    }
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    async with slots.hold(client_address(request)):
        edited = await edits.export_png(
            store.edits, world, query.x, query.y, query.w, query.h, query.scale
        )
        data = edited or await generator.export(
            spec, query.x, query.y, query.w, query.h, query.scale
        )
    return Response(data, media_type=PNG, headers=headers)
