"""FastAPI dependencies as ``Annotated`` aliases that read like types.

Routes declare what they need (``worlds: WorldsDep``, ``world: WorldDep``, ``user: CurrentUser``)
and never reach into ``app.state`` themselves, so a test or a deployment swaps one piece with
``app.dependency_overrides[get_generator] = ...`` (likewise :func:`get_worlds`,
:func:`get_tile_cache`, :func:`get_templates`, :func:`get_settings`). The objects themselves are
built once per app by the lifespan in :mod:`worldgen.web.app`; the parts a caller may replace
are passed to :func:`~worldgen.web.app.create_app` as :class:`~worldgen.web.app.Parts`.

Every dependency is an ``async def``, even those that only read ``app.state``: FastAPI runs a
plain ``def`` dependency in a worker thread, and a map tile needs several of them (a thread hop
each cost more CPU than the rest of a warm tile's work).

Accounts: ``CurrentUser`` (the signed-in user, else 401), ``OptionalUser`` (or None),
``SecurityDep`` (:class:`~worldgen.web.auth.services.SecurityServices`) and ``GuardDep`` (the
authorisation guard of :mod:`worldgen.web.auth.policy`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, Path, Request
from fastapi.templating import Jinja2Templates
from starlette.requests import HTTPConnection

from worldgen.errors import SignInRequiredError, WorldNotFoundError
from worldgen.jobs.broker import JobQueue
from worldgen.jobs.library import ensure_model
from worldgen.realtime.hub import Hub
from worldgen.settings import Settings
from worldgen.store.client import Store
from worldgen.store.keys import valid_world_id
from worldgen.store.tiles import TileCache
from worldgen.store.worlds import WorldRecord, WorldRepo
from worldgen.web.auth.policy import Guard
from worldgen.web.auth.services import SecurityServices, authorize, current_user, services_of
from worldgen.web.auth.sessions import User
from worldgen.web.concurrency import ClientSlots
from worldgen.web.edits import EditService
from worldgen.web.generation import Generator
from worldgen.web.ladder import TileLadder
from worldgen.web.metrics import Metrics

__all__ = [
    "CurrentUser",
    "EditServiceDep",
    "ExportSlotsDep",
    "GeneratorDep",
    "GuardDep",
    "HubDep",
    "JobQueueDep",
    "MetricsDep",
    "OptionalUser",
    "SecurityDep",
    "SettingsDep",
    "StoreDep",
    "TemplatesDep",
    "TileParts",
    "TilePartsDep",
    "WorldDep",
    "WorldsDep",
    "get_current_user",
    "get_edit_service",
    "get_export_slots",
    "get_generator",
    "get_guard",
    "get_hub",
    "get_metrics",
    "get_optional_user",
    "get_security",
    "get_settings",
    "get_store",
    "get_templates",
    "get_tile_parts",
    "get_world",
    "get_worlds",
]


async def get_settings(request: Request) -> Settings:
    """The app's validated settings."""
    return cast(Settings, request.app.state.settings)


def _store(conn: HTTPConnection) -> Store:
    return cast(Store, conn.app.state.store)


async def get_store(conn: HTTPConnection) -> Store:
    """Every repository of the app, on its Redis client (health checks use it directly)."""
    return cast(Store, conn.app.state.store)


async def get_worlds(conn: HTTPConnection) -> WorldRepo:
    """The world metadata repository."""
    return _store(conn).worlds


async def get_generator(request: Request) -> Generator:
    """Whatever computes world content (a process pool in production)."""
    return cast(Generator, request.app.state.generator)


@dataclass(frozen=True, slots=True)
class TileParts:
    """What the map tile route uses, resolved by one dependency: the tile route answers most of
    the requests, and FastAPI resolves each dependency of a route on every request."""

    store: Store
    tiles: TileCache
    generator: Generator
    ladder: TileLadder
    edits: EditService


async def get_tile_parts(
    request: Request, generator: Annotated[Generator, Depends(get_generator)]
) -> TileParts:
    """The store, tile cache, generator (overridable like everywhere: ``get_generator``), tile
    ladder and edit service of the app."""
    state = request.app.state
    store = cast(Store, state.store)
    return TileParts(store, store.tiles, generator, state.tile_ladder, state.edits)


async def get_export_slots(request: Request) -> ClientSlots:
    """The per-client bound on concurrent exports."""
    return cast(ClientSlots, request.app.state.export_slots)


async def get_edit_service(request: Request) -> EditService:
    """The app's edit service (map edits: solves, overlays, edited tiles; issue 14)."""
    return cast(EditService, request.app.state.edits)


async def get_templates(request: Request) -> Jinja2Templates:
    """The Jinja2 templates (autoescape on)."""
    return cast(Jinja2Templates, request.app.state.templates)


async def get_metrics(request: Request) -> Metrics:
    """The app's Prometheus collectors."""
    return cast(Metrics, request.app.state.metrics)


async def get_hub(conn: HTTPConnection) -> Hub:
    """The real-time hub (rooms, presence, fan-out); routes tell it of world changes."""
    return cast(Hub, conn.app.state.hub)


async def get_job_queue(request: Request) -> JobQueue:
    """The job queue's sending side (issue 15)."""
    return cast(JobQueue, request.app.state.job_queue)


async def get_security(conn: HTTPConnection) -> SecurityServices:
    """The app's security services."""
    return services_of(conn)


async def get_guard(conn: HTTPConnection) -> Guard:
    """The authorisation guard."""
    return services_of(conn).guard


async def get_optional_user(conn: HTTPConnection) -> User | None:
    """The signed-in user, or None (looked up once per request)."""
    return await current_user(conn)


async def get_current_user(conn: HTTPConnection) -> User:
    """The signed-in user; 401 when there is none."""
    user = await current_user(conn)
    if user is None:
        raise SignInRequiredError
    return user


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
WorldsDep = Annotated[WorldRepo, Depends(get_worlds)]
GeneratorDep = Annotated[Generator, Depends(get_generator)]
TilePartsDep = Annotated[TileParts, Depends(get_tile_parts)]
ExportSlotsDep = Annotated[ClientSlots, Depends(get_export_slots)]
TemplatesDep = Annotated[Jinja2Templates, Depends(get_templates)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
EditServiceDep = Annotated[EditService, Depends(get_edit_service)]
HubDep = Annotated[Hub, Depends(get_hub)]
JobQueueDep = Annotated[JobQueue, Depends(get_job_queue)]
SecurityDep = Annotated[SecurityServices, Depends(get_security)]
GuardDep = Annotated[Guard, Depends(get_guard)]
OptionalUser = Annotated[User | None, Depends(get_optional_user)]
CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_world(
    world_id: Annotated[str, Path(description="The world's id.")],
    worlds: WorldsDep,
    conn: HTTPConnection,
) -> WorldRecord:
    """The world named by the ``{world_id}`` path parameter, if the requester may view it,
    else :class:`~worldgen.errors.WorldNotFoundError`.

    The view check runs here, before FastAPI validates the route's other parameters, so a
    malformed request about a private world the requester cannot see gets the 404 of an unknown
    world, never a 422 that would tell it exists. Routes still check the action they perform.

    A malformed id is simply unknown (404, not 422): ids are opaque to clients. The record may
    come from the repository's short in-process cache (at most 1 s old, dropped on any change:
    :meth:`~worldgen.store.worlds.WorldRepo.cached`).
    """
    record = await worlds.cached(world_id) if valid_world_id(world_id) else None
    if record is None:
        raise WorldNotFoundError
    await authorize(conn, record, "view")
    if record.model is not None:  # an uploaded model's files, on this machine (jobs/library.py)
        await ensure_model(_store(conn), record.model)
    return record


WorldDep = Annotated[WorldRecord, Depends(get_world)]
