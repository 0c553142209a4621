"""The app factory: ``create_app(settings, parts)`` builds one self-contained FastAPI app.

Nothing is built at import time. :class:`Parts` is the one injection point: the pieces a caller
may replace (the generator, the password hasher); everything else follows from ``settings``.
The app's lifespan owns, in start order (stopped in reverse):

1. the embedded Valkey server, when ``settings.redis_url`` is None (data in ``data_dir/valkey``);
2. the :class:`~worldgen.store.client.Store` on ``app.state.store``: the Redis client (bounded
   retries, health checks: it reconnects by itself after an outage, so a Redis restart costs
   503s while it lasts and nothing afterwards), every repository, and the pub/sub listener;
3. the generator (``parts.generator``, else a process pool) and its warm-up (JIT compilation),
   finished before the server accepts its first request, after which the pool's cache warmer
   fills the disk cache of the bundled models (``settings.warm_models``) at the lowest priority;
4. the security services (``app.state.security``: accounts, sessions, members, rate limits, the
   revocation bus, the guard; see :mod:`worldgen.web.auth`);
5. the real-time hub (``app.state.hub``: rooms, presence, fan-out), configured by
   ``settings.realtime``, with the security layer's message gate;
6. the pub/sub listener, started once the hub and the revocation bus have subscribed.

Middleware, outermost first: security headers, request log, body bound, cross-site check.

``app.state`` also holds ``settings``, ``metrics``, ``templates``, ``tile_ladder`` (memory LRU and
single flight) and ``previews``. Routes reach all of them through :mod:`worldgen.web.deps`.
For ``uvicorn --factory`` there is :func:`create_app_from_env`.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import jinja2
import structlog
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from fastapi_offline import FastAPIOffline

from worldgen import __version__
from worldgen.engine import _jit
from worldgen.errors import WorldgenError
from worldgen.jobs.broker import JobQueue
from worldgen.jobs.worker import WorkerChild
from worldgen.realtime.hub import Hub
from worldgen.realtime.metrics import RealtimeCollector
from worldgen.settings import Settings
from worldgen.store.client import Store
from worldgen.store.embedded import EmbeddedValkey
from worldgen.web.auth.passwords import Passwords
from worldgen.web.auth.services import SecurityServices
from worldgen.web.auth.sockets import message_gate
from worldgen.web.concurrency import ClientSlots
from worldgen.web.edits import EditService
from worldgen.web.errors import install_error_handlers
from worldgen.web.generation import Generator, ProcessGenerator
from worldgen.web.hardening import install_security, install_security_headers
from worldgen.web.ladder import TileLadder
from worldgen.web.logging import RequestMiddleware, configure_logging
from worldgen.web.metrics import Metrics
from worldgen.web.modules import module_closure
from worldgen.web.routes import (
    auth,
    edits,
    health,
    jobs,
    legend,
    members,
    models,
    pages,
    realtime,
    tiles,
    worlds,
)
from worldgen.world import api

__all__ = [
    "STATIC_DIR",
    "TEMPLATES_DIR",
    "Parts",
    "create_app",
    "create_app_from_env",
    "leaflet_dir",
]

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"

_log = structlog.get_logger("worldgen.web")
_STARTUP_PING_S = 2.0


@dataclass(frozen=True, slots=True)
class Parts:
    """The replaceable parts of an app; a None part is built from the settings.

    Tests pass an :class:`~worldgen.web.generation.InlineGenerator` (generation in threads) and
    a cheap :class:`~worldgen.web.auth.passwords.Passwords`; a deployment could pass its own
    generator. The app closes the generator on shutdown, whoever made it.
    """

    generator: Generator | None = None
    """Computes world content; None: a :class:`~worldgen.web.generation.ProcessGenerator` of
    ``settings.workers`` processes."""
    passwords: Passwords | None = None
    """Hashes and verifies passwords; None: argon2id with the library's default costs."""


def leaflet_dir() -> Path:
    """The Leaflet files of the ``xstatic-leaflet`` package (``leaflet.js``, ``images/``...)."""
    module = importlib.import_module("xstatic.pkg.leaflet")
    return Path(module.BASE_DIR)


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True, auto_reload=False
    )
    # ``module_preloads("js/world.js", ...)``: a page's module graph, for <link rel=modulepreload>
    env.globals["module_preloads"] = functools.partial(module_closure, STATIC_DIR)
    return Jinja2Templates(env=env)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    try:
        async with _resources(app):
            yield
    except WorldgenError as exc:  # e.g. the embedded Valkey cannot start: say why, in one line
        app.state.startup_error = str(exc)
        raise


@asynccontextmanager
async def _resources(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    async with AsyncExitStack() as stack:
        url = settings.redis_url
        app.state.embedded = None
        if url is None:
            # supervised: restarted if it dies; /healthz fails once it cannot come back
            embedded = EmbeddedValkey(settings.data_dir / "valkey", supervise=True)
            app.state.embedded = embedded
            url = await asyncio.to_thread(embedded.start)
            stack.push_async_callback(asyncio.to_thread, embedded.stop)
            where = f"embedded Valkey {url} (data in {embedded.data_dir})"
        else:
            where = settings.redis_url_redacted() or ""
        store = Store.open(url, settings)
        stack.push_async_callback(store.aclose)
        app.state.store = store
        queue = JobQueue(settings.broker_url or url, store.keys)
        stack.callback(queue.close)
        app.state.job_queue = queue
        if app.state.parts.generator is None and settings.job_workers:
            # the single-machine setup: a job worker beside the app that ends with it (an app
            # with an injected generator, as in the tests, runs its job workers itself)
            child = WorkerChild(settings, url, processes=settings.job_workers)
            child.start()
            stack.push_async_callback(asyncio.to_thread, child.stop)

        parts: Parts = app.state.parts
        generator = parts.generator or ProcessGenerator(
            settings.workers,
            compile_kernels=settings.warm_up,
            warm=api.bundled_specs(settings.warm_models),
        )
        stack.push_async_callback(generator.close)
        app.state.generator = generator
        app.state.metrics.generation_tasks.set_function(lambda: generator.pending)
        await generator.warm_up()

        security = SecurityServices.build(store, settings, parts.passwords or Passwords())
        app.state.security = security

        metrics: Metrics = app.state.metrics
        hub = Hub(
            store,
            settings.realtime,
            message_gate=message_gate(security),
            on_connections=metrics.websocket_connections.set,
        )
        app.state.hub = hub
        collector = RealtimeCollector(hub)
        metrics.registry.register(collector)
        stack.callback(metrics.registry.unregister, collector)
        await hub.start()
        stack.push_async_callback(hub.stop)
        store.pubsub.start()  # after the hub and the revocation bus subscribed: one SUBSCRIBE
        stack.push_async_callback(store.pubsub.stop)

        if not await store.ping(_STARTUP_PING_S):  # serve anyway: /readyz says 503 meanwhile
            _log.warning("redis unavailable at start", redis=where)
        _log.info(
            "started", redis=where, generator=type(generator).__name__, kernels=_jit.describe()
        )
        yield
        _log.info("stopping")


def create_app(settings: Settings, parts: Parts | None = None) -> FastAPI:
    """A new app configured by ``settings``, with ``parts`` replacing the defaults it names."""
    configure_logging(settings.log_level, json=settings.log_json)
    metrics = Metrics()
    app = FastAPIOffline(
        title="worldgen",
        version=__version__,
        description="Infinite worlds generated by Wave Function Collapse: worlds, map tiles, "
        "regions and exports. Pages for people live at `/`.",
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.parts = parts or Parts()
    app.state.templates = _templates()
    app.state.tile_ladder = TileLadder(metrics, settings.memory_tile_cache)
    app.state.edits = EditService()
    app.state.export_slots = ClientSlots(settings.exports_per_client)
    app.state.previews = {}
    app.state.startup_error = None

    install_error_handlers(app)
    install_security(app, settings.allowed_origins)
    app.add_middleware(RequestMiddleware, metrics=metrics)
    install_security_headers(app)
    # Routes are matched in order, each a regex test: the map's tiles (most requests by far) and
    # the probes first. No other path starts with /tiles/ or names a probe, so order is free.
    app.include_router(tiles.router)
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(members.router)
    app.include_router(worlds.router)
    app.include_router(legend.router)
    app.include_router(edits.router)
    app.include_router(jobs.router)
    app.include_router(models.router)
    app.include_router(pages.router)
    app.include_router(auth.page_router)
    app.include_router(members.page_router)
    app.include_router(realtime.router)
    # The more specific mount first: "/static" would otherwise swallow "/static/vendor/...".
    app.mount("/static/vendor/leaflet", StaticFiles(directory=leaflet_dir()), name="leaflet")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def create_app_from_env() -> FastAPI:
    """``uvicorn --factory worldgen.web.app:create_app_from_env``: settings from the environment."""
    return create_app(Settings())
