"""The HTML pages: home (the worlds you can see and the create form) and a world's map page.

Every page's context says whether the visitor is signed in (``signed_in``, ``username``; see
:func:`~worldgen.web.auth.services.account_context`), so signed-out pages need not ask the API.
Templates render only what the server knows; everything interactive (creating a world, the map)
is plain ES modules under ``web/static/js`` that talk to the JSON API. User text goes through
Jinja's autoescaping on the server and ``textContent`` in the browser, never through ``|safe``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from worldgen.jobs.export import MAX_JOB_EXPORT_PX
from worldgen.store.worlds import WorldRecord
from worldgen.web.auth.services import account_context, visible_worlds
from worldgen.web.deps import GuardDep, OptionalUser, StoreDep, TemplatesDep, WorldsDep
from worldgen.web.routes.worlds import (
    MAX_COORD,
    MAX_EXPORT,
    MAX_EXPORT_PX,
    MAX_REGION,
    MAX_SCALE,
    WorldOut,
)
from worldgen.web.uploads import preparation
from worldgen.world.render import Z_DETAIL, Z_MIN

router = APIRouter(include_in_schema=False)

HOME_LIMIT = 100
"""Worlds listed on the home page (newest first), the API's page size."""


def world_view(record: WorldRecord) -> dict[str, Any]:
    """A world as the API shows it, plus the export URL the world page's script calls."""
    return WorldOut.of(record).model_dump() | {"export_url": f"/api/worlds/{record.id}/export.png"}


PAGE_LIMITS = {
    "zoom_min": Z_MIN,
    "zoom_max": Z_DETAIL,
    "coord_max": MAX_COORD,
    "region_max": MAX_REGION,
    "export_cells": MAX_EXPORT,
    "export_px": MAX_EXPORT_PX,
    "export_scale": MAX_SCALE,
    "job_export_px": MAX_JOB_EXPORT_PX,
}
"""The API's bounds the world page keeps to (``world.limits`` in its page data), so the script
never carries copies of them."""


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, templates: TemplatesDep, worlds: WorldsDep) -> HTMLResponse:
    """The worlds you can see (public, and private ones you belong to), newest first, and the
    form that creates one."""
    records = await visible_worlds(request, worlds, offset=0, limit=HOME_LIMIT)
    visible = [world_view(r) for r in records]
    context = {"worlds": visible, **await account_context(request)}
    return templates.TemplateResponse(request, "home.html", context)


@router.get("/worlds/{world_id}", response_class=HTMLResponse)
async def world_page(
    request: Request,
    world_id: str,
    templates: TemplatesDep,
    worlds: WorldsDep,
    user: OptionalUser,
    guard: GuardDep,
    store: StoreDep,
) -> HTMLResponse:
    """The full-window map of one world; an HTML 404 page for an unknown id (and for a private
    world you do not belong to: the same page)."""
    record = await worlds.get(world_id)
    if record is not None and not await guard.can(user, record, "view"):
        record = None
    account = await account_context(request)
    if record is None:
        return templates.TemplateResponse(
            request, "404.html", {"what": "world", **account}, status_code=404
        )
    prep = await preparation(store, record)  # a world over an uploaded model may be preparing
    view = world_view(record) | {"limits": PAGE_LIMITS, "preparing": prep.state != "ready"}
    return templates.TemplateResponse(request, "world.html", {"world": view, **account})
