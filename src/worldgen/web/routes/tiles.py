"""``GET /tiles/{world_id}/{z}/{x}/{y}.png``: the map tiles Leaflet asks for.

The first rung of the ladder is the browser's cache: a tile's bytes never change for a
(world, content version, z, x, y), so it carries a strong ETag derived from that key, and
``If-None-Match`` answers 304 before any cache is read. It is ``Cache-Control: public, no-cache``
rather than immutable: a public world can be made private, so every cache revalidates (the
authorisation check runs before the 304). The remaining rungs live in
:class:`~worldgen.web.ladder.TileLadder`.

Zoom ``z`` runs from -10 (continents) to 2 (one cell per 16 px); ``x`` and ``y`` are any
integers whose cells lie inside the world (|cell| ≤ 2**53), checked per zoom: the schema allows
any |x|, |y| ≤ 2**53, and a tile outside the world at its zoom does not exist (404). Each is written
canonically (``-3``, never ``-03``, ``+3``, ``3.0`` or `` 3``:
:data:`~worldgen.web.params.CANONICAL_INT`).

A private world's tiles are a 404 to non-members
(:func:`~worldgen.web.auth.services.authorize`; a public world's tiles need no session lookup at
all) and are ``Cache-Control: private, no-cache``, so no shared cache keeps them for the next
person.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from worldgen.errors import NotFoundError
from worldgen.jobs.export import content_version
from worldgen.web.auth.services import authorize
from worldgen.web.deps import TilePartsDep, WorldDep
from worldgen.web.generation import spec_for
from worldgen.web.ladder import etag_matches, tile_etag
from worldgen.web.params import CANONICAL_INT
from worldgen.world.blocks import MAX_COORD
from worldgen.world.render import Z_DETAIL, Z_MIN, cells_per_tile

__all__ = ["CACHE_CONTROL", "PRIVATE_CACHE_CONTROL", "router", "tile_range"]

router = APIRouter(tags=["tiles"])

CACHE_CONTROL = "public, no-cache"
"""Any cache may keep a tile but must revalidate it (a cheap 304 on the strong ETag): a public
world can become private, and then its tiles must stop being served to non-members."""
PRIVATE_CACHE_CONTROL = "private, no-cache"
"""A private world's tiles stay out of shared caches (proxies, CDNs) altogether."""
_ANY = 2**53 - 1
"""Schema bound of a tile index: exact as a float, so a validator comparing floats agrees with
the route at the edge (2**53 + 1 would read as 2**53)."""


def tile_range(z: int) -> tuple[int, int]:
    """The smallest and largest tile index at zoom ``z`` whose cells lie inside the world."""
    n = cells_per_tile(z)
    return -(MAX_COORD // n), MAX_COORD // n - 1


@router.get(
    "/tiles/{world_id}/{z}/{x}/{y}.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "A 256 x 256 PNG."},
        304: {"description": "Not modified (If-None-Match)"},
    },
)
async def tile(
    world: WorldDep,
    z: Annotated[
        int, Path(ge=Z_MIN, le=Z_DETAIL, description="Zoom: 2 = detail, 0 opens."), CANONICAL_INT
    ],
    x: Annotated[int, Path(ge=-_ANY, le=_ANY), CANONICAL_INT],
    y: Annotated[int, Path(ge=-_ANY, le=_ANY), CANONICAL_INT],
    request: Request,
    parts: TilePartsDep,
) -> Response:
    """One map tile of a world (with its edits: the key names the last edit of its cells)."""
    await authorize(request, world, "view")
    low, high = tile_range(z)
    for name, value in (("x", x), ("y", y)):
        if not low <= value <= high:
            raise NotFoundError(f"no such tile: at zoom {z} tile {name} must be in {low}..{high}")
    spec = spec_for(world)
    store, edits = parts.store, parts.edits
    version = await parts.generator.version(spec)
    edited = await edits.tile_version(store.edits, world.id, z, x, y)
    key = (world.id, content_version(version, edited), z, x, y)
    etag = tile_etag(key)
    cache = CACHE_CONTROL if world.visibility == "public" else PRIVATE_CACHE_CONTROL
    headers = {"ETag": etag, "Cache-Control": cache}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    compute = (lambda: edits.tile_png(store.edits, world, z, x, y)) if edited else None
    data = await parts.ladder.png(key, spec, parts.tiles, parts.generator, compute)
    return Response(data, media_type="image/png", headers=headers)
