"""Map edits and markers (issue 14): ``/api/worlds/{id}/edits``, ``/undo``, ``/redo``,
``/restore`` and ``/markers``.

* Editors and owners edit (policy action ``edit``); only owners restore an earlier version
  (``change``). A viewer gets 403 with the reason. Every write counts against the author's
  ``edit`` rate limit (429 with ``Retry-After``).
* ``POST /edits`` returns the applied operation and the new content version. The body's
  ``version`` is the version the client saw: the edit is rebased onto the current version unless
  an operation since changed its area (then 409). An edit whose pins contradict each other, the
  locks or the rules is refused with 422 naming the cells; nothing changes.
* Each applied operation and marker change is broadcast on the world's WebSocket (``edit`` and
  ``marker`` events) on every instance.
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from worldgen.errors import ForbiddenError
from worldgen.realtime.protocol import EditOut, MarkerOut
from worldgen.store.edits import MAX_LOG_PAGE, Marker, OpRecord
from worldgen.web.auth.policy import Action
from worldgen.web.auth.services import authorize, authorize_user, rate_limit
from worldgen.web.auth.sessions import User
from worldgen.web.deps import (
    EditServiceDep,
    GeneratorDep,
    HubDep,
    SecurityDep,
    StoreDep,
    WorldDep,
)
from worldgen.web.edits import Applied, EditRequest, EditService
from worldgen.web.params import CANONICAL_INT, JSON_INT
from worldgen.world.edits import MAX_PAINT_CELLS, MAX_RECT_SIDE, Rect

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["edits"])

_COORD = 2**52
_MAX_ID = 2**53 - 1
_REASONS: dict[str, str] = {
    "edit": "only the owner and editors can edit this world; ask the owner for the editor role",
    "change": "only the world's owner can restore an earlier version",
}


Coord = Annotated[int, Field(ge=-_COORD, le=_COORD), JSON_INT]
"""A cell coordinate in a JSON body."""
Variant = Annotated[int, Field(ge=0, le=1_000_000), JSON_INT]
"""A variant: an index into a region document's ``tiles``/``colors`` (checked when applied)."""
Count = Annotated[int, Field(ge=0, le=_MAX_ID), JSON_INT]
"""A version or an operation id."""
Side = Annotated[int, Field(ge=1, le=MAX_RECT_SIDE), JSON_INT]


class RectIn(BaseModel):
    """A rectangle of cells."""

    model_config = ConfigDict(extra="forbid")
    x: Coord
    y: Coord
    w: Side
    h: Side


class _EditBase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Count | None = Field(default=None, description="The version the client saw.")


class RectEditIn(_EditBase):
    """Regenerate or restore a rectangle, or lock or unlock every cell of it."""

    kind: Literal["regenerate", "restore", "lock", "unlock"]
    rect: RectIn


class PaintIn(_EditBase):
    """Paint cells ``[x, y, variant]`` (their box plus a margin is re-solved). Coordinates are
    relative to ``at`` (default ``[0, 0]``), so a paint of 4,096 cells stays small."""

    kind: Literal["paint"]
    at: tuple[Coord, Coord] = (0, 0)
    cells: list[tuple[Coord, Coord, Variant]] = Field(min_length=1, max_length=MAX_PAINT_CELLS)


class LockCellsIn(_EditBase):
    """Lock or unlock cells ``[x, y]`` (the lock brush), relative to ``at`` (default
    ``[0, 0]``)."""

    kind: Literal["lock", "unlock"]
    at: tuple[Coord, Coord] = (0, 0)
    cells: list[tuple[Coord, Coord]] = Field(min_length=1, max_length=MAX_PAINT_CELLS)


EditIn = RectEditIn | PaintIn | LockCellsIn
"""One operation: by its ``kind``, a rectangle or a list of cells."""


class RestoreIn(BaseModel):
    """Restore the world to an earlier version (an operation itself: it can be undone)."""

    model_config = ConfigDict(extra="forbid")
    version: Count


class EditResult(BaseModel):
    """An applied operation, the world's new content version and the reveal of the change."""

    op: OpRecord
    version: int
    reveal: dict[str, int | str] | None = Field(
        default=None,
        description="The changed cells in the order the solver decided them: over the box at "
        "(x, y), h rows of w bytes (base64 data), each the first of `frames` steps in which "
        "one of its step x step cells changes (255: none).",
    )


class EditLog(BaseModel):
    """Operations after ``after``, oldest first, and the current version."""

    ops: list[OpRecord]
    version: int


Label = Annotated[
    str, StringConstraints(min_length=1, max_length=60, strip_whitespace=True, pattern=r"\S")
]
Text = Annotated[str, StringConstraints(max_length=500)]


class MarkerIn(BaseModel):
    """A new marker."""

    model_config = ConfigDict(extra="forbid")
    x: Coord
    y: Coord
    label: Label
    text: Text = ""


class MarkerPatch(BaseModel):
    """Changes to a marker."""

    model_config = ConfigDict(extra="forbid")
    x: Coord | None = None
    y: Coord | None = None
    label: Label | None = None
    text: Text | None = None


MarkerId = Annotated[int, Path(ge=1, le=_MAX_ID, description="A marker's id."), CANONICAL_INT]


async def _author(
    request: Request, world: WorldDep, security: SecurityDep, action: Action = "edit"
) -> User:
    """The signed-in user allowed to ``action`` (403 with the reason), after one rate-limit hit."""
    try:
        user = await authorize_user(request, world, action)
    except ForbiddenError:
        raise ForbiddenError(_REASONS[action]) from None
    await rate_limit(security, "edit", user.id)
    return user


async def _announce(hub: HubDep, world_id: str, applied: Applied) -> EditResult:
    """Broadcast an applied operation (with its reveal); the answer to its author."""
    record = applied.record
    await hub.edit_event(
        world_id,
        EditOut(
            id=record.id,
            author=record.author,
            author_name=record.author_name,
            kind=record.kind,
            rect=record.rect,
            changed=record.changed,
            version=record.id,
            reveal=applied.reveal,
        ),
    )
    return EditResult(op=record, version=record.id, reveal=applied.reveal)


@router.post(
    "/worlds/{world_id}/edits",
    response_model=EditResult,
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "stale version"}, 422: {"description": "refused"}},
)
async def post_edit(
    world: WorldDep,
    body: EditIn,
    request: Request,
    store: StoreDep,
    security: SecurityDep,
    hub: HubDep,
    service: EditServiceDep,
    generator: GeneratorDep,
) -> EditResult:
    """Apply one operation (regenerate, paint, lock, unlock, restore a rectangle)."""
    user = await _author(request, world, security)
    if isinstance(body, RectEditIn):
        r = body.rect
        request_ = EditRequest(body.kind, rect=Rect(r.x, r.y, r.w, r.h), version=body.version)
    else:
        ax, ay = body.at
        cells = [[c[0] + ax, c[1] + ay, *c[2:]] for c in body.cells]
        request_ = EditRequest(body.kind, cells=cells, version=body.version)
    applied = await service.apply(store.edits, world, user, request_, generator=generator)
    return await _announce(hub, world.id, applied)


@router.get("/worlds/{world_id}/edits", response_model=EditLog)
async def get_edits(
    world: WorldDep,
    request: Request,
    store: StoreDep,
    after: Annotated[int, Query(ge=0, le=_MAX_ID), CANONICAL_INT] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LOG_PAGE), CANONICAL_INT] = MAX_LOG_PAGE,
) -> EditLog:
    """The operation log (history), after version ``after``."""
    await authorize(request, world, "view")
    return EditLog(
        ops=await store.edits.ops(world.id, after, limit),
        version=await store.edits.version(world.id),
    )


async def _stack(
    which: Literal["undo", "redo"],
    world: WorldDep,
    request: Request,
    store: StoreDep,
    security: SecurityDep,
    hub: HubDep,
    service: EditServiceDep,
    generator: GeneratorDep,
) -> EditResult:
    user = await _author(request, world, security)
    applied = await service.apply(
        store.edits,
        world,
        user,
        EditRequest("revert", version=None),
        stacks=which,
        generator=generator,
    )
    return await _announce(hub, world.id, applied)


@router.post(
    "/worlds/{world_id}/undo",
    response_model=EditResult,
    responses={409: {"description": "nothing to undo"}},
)
async def undo(
    world: WorldDep,
    request: Request,
    store: StoreDep,
    security: SecurityDep,
    hub: HubDep,
    service: EditServiceDep,
    generator: GeneratorDep,
) -> EditResult:
    """Revert your last operation; cells others changed since keep their content."""
    return await _stack("undo", world, request, store, security, hub, service, generator)


@router.post(
    "/worlds/{world_id}/redo",
    response_model=EditResult,
    responses={409: {"description": "nothing to redo"}},
)
async def redo(
    world: WorldDep,
    request: Request,
    store: StoreDep,
    security: SecurityDep,
    hub: HubDep,
    service: EditServiceDep,
    generator: GeneratorDep,
) -> EditResult:
    """Re-apply the operation you last undid."""
    return await _stack("redo", world, request, store, security, hub, service, generator)


@router.post(
    "/worlds/{world_id}/restore",
    response_model=EditResult,
    responses={409: {"description": "no such version yet"}},
)
async def restore(
    world: WorldDep,
    body: RestoreIn,
    request: Request,
    store: StoreDep,
    security: SecurityDep,
    hub: HubDep,
    service: EditServiceDep,
    generator: GeneratorDep,
) -> EditResult:
    """Restore the world's content to an earlier version (owners only; it can be undone)."""
    user = await _author(request, world, security, "change")
    applied = await service.apply(
        store.edits, world, user, EditRequest("rewind", target=body.version), generator=generator
    )
    return await _announce(hub, world.id, applied)


class LocksOut(BaseModel):
    """The locked cells of a window, ``[x, y]`` each (at most ``MAX_LOCKS_SHOWN``)."""

    cells: list[list[int]]
    truncated: bool


MAX_LOCKS_WINDOW = 1024
MAX_LOCKS_SHOWN = 4096


@router.get("/worlds/{world_id}/locks", response_model=LocksOut)
async def get_locks(
    world: WorldDep,
    request: Request,
    store: StoreDep,
    x: Annotated[int, Query(ge=-_COORD, le=_COORD), CANONICAL_INT],
    y: Annotated[int, Query(ge=-_COORD, le=_COORD), CANONICAL_INT],
    w: Annotated[int, Query(ge=1, le=MAX_LOCKS_WINDOW), CANONICAL_INT],
    h: Annotated[int, Query(ge=1, le=MAX_LOCKS_WINDOW), CANONICAL_INT],
) -> LocksOut:
    """The locked cells of a window of at most 1024 x 1024 cells (anyone who may view)."""
    await authorize(request, world, "view")
    rect = Rect(x, y, w, h)
    overlay = await EditService.overlay(store.edits, world.id, rect)
    _, locks = overlay.window(rect)
    ys, xs = locks.nonzero()
    cells = [[int(cx) + x, int(cy) + y] for cy, cx in zip(ys, xs, strict=True)]
    return LocksOut(cells=cells[:MAX_LOCKS_SHOWN], truncated=len(cells) > MAX_LOCKS_SHOWN)


# ------------------------------------------------------------------------------------ markers
@router.get("/worlds/{world_id}/markers", response_model=list[Marker])
async def list_markers(world: WorldDep, request: Request, store: StoreDep) -> list[Marker]:
    """Every marker of the world (anyone who may view it)."""
    await authorize(request, world, "view")
    return await store.edits.markers(world.id)


@router.post(
    "/worlds/{world_id}/markers", response_model=Marker, status_code=status.HTTP_201_CREATED
)
async def create_marker(
    world: WorldDep,
    body: MarkerIn,
    request: Request,
    store: StoreDep,
    security: SecurityDep,
    hub: HubDep,
) -> Marker:
    """Place a marker (editors and owners)."""
    user = await _author(request, world, security)
    marker = await store.edits.put_marker(
        world.id,
        {**body.model_dump(), "author": user.id, "author_name": user.username, "ts": time.time()},
    )
    await hub.edit_event(world.id, MarkerOut(marker=marker.model_dump()))
    return marker


@router.patch("/worlds/{world_id}/markers/{marker_id}", response_model=Marker)
async def update_marker(
    world: WorldDep,
    marker_id: MarkerId,
    body: MarkerPatch,
    request: Request,
    store: StoreDep,
    security: SecurityDep,
    hub: HubDep,
) -> Marker:
    """Change a marker's place, label or text (editors and owners)."""
    await _author(request, world, security)
    old = await store.edits.marker(world.id, marker_id)
    marker = await store.edits.put_marker(
        world.id, {**old.model_dump(), **body.model_dump(exclude_none=True)}
    )
    await hub.edit_event(world.id, MarkerOut(marker=marker.model_dump()))
    return marker


@router.delete("/worlds/{world_id}/markers/{marker_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_marker(
    world: WorldDep,
    marker_id: MarkerId,
    request: Request,
    store: StoreDep,
    security: SecurityDep,
    hub: HubDep,
) -> Response:
    """Delete a marker (editors and owners)."""
    await _author(request, world, security)
    await store.edits.delete_marker(world.id, marker_id)
    await hub.edit_event(world.id, MarkerOut(deleted=marker_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
