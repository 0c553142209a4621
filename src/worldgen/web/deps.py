"""FastAPI dependencies as ``Annotated`` aliases that read like types.

Routes declare what they need (``worlds: WorldsDep``, ``world: WorldDep``) and never reach into
``app.state`` themselves, so a test or a deployment swaps one piece with
``app.dependency_overrides[get_generator] = ...`` (likewise :func:`get_worlds`,
:func:`get_tile_cache`, :func:`get_templates`, :func:`get_settings`). The objects themselves are
built once per app by the lifespan in :mod:`worldgen.web.app`.

Accounts: ``CurrentUser`` (the signed-in user, else 401), ``OptionalUser`` (or None),
``SecurityDep`` and ``GuardDep`` come from :mod:`worldgen.web.security`, re-exported here so
routes find every dependency in one place.
"""

from __future__ import annotations

from typing import Annotated, cast
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.templating import Jinja2Templates
from redis.asyncio import Redis

from worldgen.errors import WorldNotFoundError
from worldgen.realtime.hub import Hub
from worldgen.settings import Settings
from worldgen.store.keys import valid_world_id
from worldgen.store.tiles import TileCache
from worldgen.store.worlds import WorldRecord, WorldRepo
from worldgen.web.generation import Generator
from worldgen.web.ladder import TileLadder
from worldgen.web.metrics import Metrics
from worldgen.web.security import CurrentUser, GuardDep, OptionalUser, SecurityDep

__all__ = [
    "CurrentUser",
    "GeneratorDep",
    "GuardDep",
    "HubDep",
    "MetricsDep",
    "OptionalUser",
    "RedisDep",
    "SameOrigin",
    "SecurityDep",
    "SettingsDep",
    "TemplatesDep",
    "TileCacheDep",
    "TileLadderDep",
    "WorldDep",
    "WorldsDep",
    "check_origin",
    "get_generator",
    "get_hub",
    "get_metrics",
    "get_redis",
    "get_settings",
    "get_templates",
    "get_tile_cache",
    "get_tile_ladder",
    "get_world",
    "get_worlds",
]


def get_settings(request: Request) -> Settings:
    """The app's validated settings."""
    return cast(Settings, request.app.state.settings)


def get_redis(request: Request) -> Redis:
    """The app's Redis client (for health checks; data access goes through the repositories)."""
    return cast(Redis, request.app.state.redis)


def get_worlds(request: Request) -> WorldRepo:
    """The world metadata repository."""
    return cast(WorldRepo, request.app.state.worlds)


def get_tile_cache(request: Request) -> TileCache:
    """The Redis tile cache."""
    return cast(TileCache, request.app.state.tiles)


def get_generator(request: Request) -> Generator:
    """Whatever computes world content (a process pool in production)."""
    return cast(Generator, request.app.state.generator)


def get_tile_ladder(request: Request) -> TileLadder:
    """The app's tile ladder (memory LRU + single flight)."""
    return cast(TileLadder, request.app.state.tile_ladder)


def get_templates(request: Request) -> Jinja2Templates:
    """The Jinja2 templates (autoescape on)."""
    return cast(Jinja2Templates, request.app.state.templates)


def get_metrics(request: Request) -> Metrics:
    """The app's Prometheus collectors."""
    return cast(Metrics, request.app.state.metrics)


def get_hub(request: Request) -> Hub:
    """The real-time hub (rooms, presence, fan-out); routes tell it of world changes."""
    return cast(Hub, request.app.state.hub)


SettingsDep = Annotated[Settings, Depends(get_settings)]
RedisDep = Annotated[Redis, Depends(get_redis)]
WorldsDep = Annotated[WorldRepo, Depends(get_worlds)]
TileCacheDep = Annotated[TileCache, Depends(get_tile_cache)]
GeneratorDep = Annotated[Generator, Depends(get_generator)]
TileLadderDep = Annotated[TileLadder, Depends(get_tile_ladder)]
TemplatesDep = Annotated[Jinja2Templates, Depends(get_templates)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
HubDep = Annotated[Hub, Depends(get_hub)]


def check_origin(request: Request, settings: SettingsDep) -> None:
    """Refuse (403) an unsafe request whose ``Origin`` is neither this host nor allowed.

    Browsers send ``Origin`` with every cross-site write; requests without one (curl, other
    servers) are not browser-borne CSRF and pass. ``settings.allowed_origins`` adds origins for
    deployments behind a proxy that rewrites ``Host``.
    """
    origin = request.headers.get("origin")
    if origin is None or origin in settings.allowed_origins:
        return
    parts = urlsplit(origin)
    if parts.scheme in ("http", "https") and parts.netloc == request.headers.get("host"):
        return
    raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-origin request refused")


SameOrigin = Depends(check_origin)
"""For ``dependencies=[SameOrigin]`` on every route that changes state."""


async def get_world(
    world_id: Annotated[str, Path(description="The world's id.")],
    worlds: WorldsDep,
) -> WorldRecord:
    """The world named by the ``{world_id}`` path parameter, else
    :class:`~worldgen.errors.WorldNotFoundError`.

    A malformed id is simply unknown (404, not 422): ids are opaque to clients.
    """
    record = await worlds.get(world_id) if valid_world_id(world_id) else None
    if record is None:
        raise WorldNotFoundError
    return record


WorldDep = Annotated[WorldRecord, Depends(get_world)]
