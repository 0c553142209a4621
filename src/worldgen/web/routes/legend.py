"""``GET /api/worlds/{id}/legend``: what a world's cells are called and what they look like.

The legend depends only on the world's model (:mod:`worldgen.world.legend`), so it is computed once
per model in a worker thread and answered with a strong ETag (``no-cache``: the browser asks again
and gets a 304, so a redeployed tileset is never shown with a stale legend). Viewing rights are
those of the world's tiles: a private world's legend is a 404 to non-members.
"""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from worldgen.web.auth.services import authorize
from worldgen.web.deps import WorldDep
from worldgen.web.generation import spec_for
from worldgen.web.ladder import bytes_etag, etag_matches
from worldgen.world.legend import legend_document, legend_for

__all__ = ["LegendEntryOut", "LegendOut", "router"]

router = APIRouter(prefix="/api", tags=["worlds"])


class LegendEntryOut(BaseModel):
    """One line of the legend."""

    label: str
    class_: str | None = Field(alias="class", description="The tileset class, if it has several.")
    members: list[str] = Field(description="Keys of `names` this entry stands for.")
    share: float = Field(ge=0, le=1, description="Weight (tilesets) or pixel (samples) share.")
    colour: str = Field(pattern=r"^#[0-9a-f]{6}$", description="Mean colour of the picture.")
    picture: str = Field(description="A 16 x 16 PNG as a data: URL.")


class LegendOut(BaseModel):
    """The legend; `names` maps a region document's tile names (the part before the orientation)
    or `#rrggbb` colours to readable names."""

    kind: str
    classes: list[str]
    entries: list[LegendEntryOut]
    names: dict[str, str]


@router.get(
    "/worlds/{world_id}/legend",
    response_model=LegendOut,
    responses={304: {"description": "Not modified (If-None-Match)"}},
)
async def world_legend(world: WorldDep, request: Request) -> Response:
    """The legend of a world: its tile families or sample colours with their pictures."""
    await authorize(request, world, "view")
    legend = await asyncio.to_thread(legend_for, spec_for(world))
    body = json.dumps(legend_document(legend), separators=(",", ":")).encode()
    etag = bytes_etag(body)
    cache = "no-cache" if world.visibility == "public" else "private, no-cache"
    headers = {"ETag": etag, "Cache-Control": cache}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
