"""Probes and metrics: ``/healthz`` (the process is up), ``/readyz`` (it can serve), ``/metrics``.

``/readyz`` is what a load balancer or compose ``service_healthy`` should watch: 200 only when
Redis answers PING within :data:`PING_TIMEOUT_S` and the generation pool has warmed up; 503
otherwise, so traffic drains while Redis restarts and returns by itself when it is back.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from worldgen.web.deps import GeneratorDep, MetricsDep, StoreDep

__all__ = ["PING_TIMEOUT_S", "Health", "Readiness", "router"]

router = APIRouter(tags=["health"])

PING_TIMEOUT_S = 2.0


class Health(BaseModel):
    """``/healthz``."""

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """``/readyz``: overall status and each check."""

    status: Literal["ready", "not ready"]
    redis: Literal["ok", "unavailable"]
    generator: Literal["ok", "starting"]


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"description": "The embedded Valkey cannot come back."}},
)
async def healthz(request: Request) -> Response:
    """The process is up (says nothing about a remote Redis).

    With the embedded Valkey, 503 once its supervisor has given up restarting it, so a container
    health check replaces the instance instead of leaving it answering 503 to everything.
    """
    embedded = getattr(request.app.state, "embedded", None)
    if embedded is not None and not embedded.healthy:
        return JSONResponse({"status": "embedded valkey down"}, status_code=503)
    return JSONResponse(Health().model_dump())


@router.get("/readyz", responses={503: {"model": Readiness, "description": "Not ready (yet)."}})
async def readyz(store: StoreDep, generator: GeneratorDep) -> JSONResponse:
    """Ready to serve: Redis reachable and the generation pool warmed up."""
    redis_ok = await store.ping(PING_TIMEOUT_S)
    body = Readiness(
        status="ready" if redis_ok and generator.ready else "not ready",
        redis="ok" if redis_ok else "unavailable",
        generator="ok" if generator.ready else "starting",
    )
    return JSONResponse(body.model_dump(), status_code=200 if body.status == "ready" else 503)


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(metrics: MetricsDep) -> Response:
    """Prometheus text exposition of this app instance."""
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
